/*
 * link_cap.h - log and link-end capture for the link servers' tests
 * (mpqemu_fixture.h, vfu_fixture.h): a log sink that counts the WARN lines
 * naming one link kind (LINK_CAP_TAG, defined before this header: "mpqemu"
 * or "vfio-user") and keeps the last, and a link_ended callback that
 * records why each link ended and wakes waiters.  One capture per
 * translation unit (static state), reset by cap_reset() in each fixture's
 * init.
 */
#ifndef VIOMMU_TEST_LINK_CAP_H
#define VIOMMU_TEST_LINK_CAP_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <viommu/link.h>

#ifndef LINK_CAP_TAG
#error "define LINK_CAP_TAG (the link kind's log prefix) first"
#endif

#define LINK_CAP_WAIT_S 30 /* wait_end(): a hang becomes a failure */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int warn_lines;   /* WARN lines naming LINK_CAP_TAG */
	int closed_lines; /* ... saying that a link was closed */
	char last[256];
	int end[VIOMMU_LINK_MAX];
	int end_calls[VIOMMU_LINK_MAX];
} cap = { .lock = PTHREAD_MUTEX_INITIALIZER,
	  .cond = PTHREAD_COND_INITIALIZER };

/* cap_log() - the log sink: count LINK_CAP_TAG WARN lines, keep the last. */
static inline void cap_log(void *opaque, enum viommu_log_level lvl,
			   const char *s)
{
	(void)opaque;
	pthread_mutex_lock(&cap.lock);
	if (lvl <= VIOMMU_LOG_WARN && strstr(s, LINK_CAP_TAG)) {
		cap.warn_lines++;
		if (strstr(s, "link closed"))
			cap.closed_lines++;
		snprintf(cap.last, sizeof(cap.last), "%s", s);
	}
	pthread_mutex_unlock(&cap.lock);
	if (getenv("TEST_VERBOSE"))
		printf("# log: %s\n", s);
}

static const struct viommu_log test_log = { cap_log, NULL, VIOMMU_LOG_INFO };

/* cap_ended() - link_ended: record why link @id ended, wake waiters. */
static inline void cap_ended(void *opaque, unsigned int id, int why)
{
	(void)opaque;
	pthread_mutex_lock(&cap.lock);
	if (id < VIOMMU_LINK_MAX) {
		cap.end[id] = why;
		cap.end_calls[id]++;
	}
	pthread_cond_broadcast(&cap.cond);
	pthread_mutex_unlock(&cap.lock);
}

/* cap_reset() - forget what earlier tests captured. */
static inline void cap_reset(void)
{
	pthread_mutex_lock(&cap.lock);
	cap.warn_lines = cap.closed_lines = 0;
	cap.last[0] = '\0';
	memset(cap.end, 0, sizeof(cap.end));
	memset(cap.end_calls, 0, sizeof(cap.end_calls));
	pthread_mutex_unlock(&cap.lock);
}

/* cap_get() - read one captured counter under the lock. */
static inline int cap_get(const int *field)
{
	int v;

	pthread_mutex_lock(&cap.lock);
	v = *field;
	pthread_mutex_unlock(&cap.lock);
	return v;
}

/* wait_end() - wait for link @id to end; 0 if it did not in 30 s. */
static inline int wait_end(unsigned int id)
{
	struct timespec ts;
	int why;

	if (id >= VIOMMU_LINK_MAX)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += LINK_CAP_WAIT_S;
	pthread_mutex_lock(&cap.lock);
	while (!cap.end[id])
		if (pthread_cond_timedwait(&cap.cond, &cap.lock, &ts))
			break;
	why = cap.end[id];
	pthread_mutex_unlock(&cap.lock);
	return why;
}

#endif /* VIOMMU_TEST_LINK_CAP_H */
