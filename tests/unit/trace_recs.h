/*
 * trace_recs.h - a trace sink for the test_trace program's files: it
 * records each struct viommu_trace_record under a mutex (link events
 * arrive on the link's thread), and finds the k-th record of an event.
 */
#ifndef VIOMMU_TESTS_TRACE_RECS_H
#define VIOMMU_TESTS_TRACE_RECS_H

#include <pthread.h>
#include <string.h>

#include <viommu/trace.h>

#define MAXREC 256

/* CHECK_STR() - two strings equal (NULL never is). */
#define CHECK_STR(a, b) CHECK((a) && (b) && !strcmp((a), (b)))

struct recs {
	pthread_mutex_t lock;
	int n;
	struct viommu_trace_record r[MAXREC];
};

static inline void recs_init(struct recs *rs)
{
	memset(rs, 0, sizeof(*rs));
	pthread_mutex_init(&rs->lock, NULL);
}

static inline void rec_fn(void *opaque, const struct viommu_trace_record *rec)
{
	struct recs *rs = opaque;

	pthread_mutex_lock(&rs->lock);
	if (rs->n < MAXREC)
		rs->r[rs->n] = *rec;
	rs->n++;
	pthread_mutex_unlock(&rs->lock);
}

/* recs_count() - records received so far. */
static inline int recs_count(struct recs *rs)
{
	int n;

	pthread_mutex_lock(&rs->lock);
	n = rs->n;
	pthread_mutex_unlock(&rs->lock);
	return n;
}

/*
 * find_rec() - copy the @k-th record of event @id into *@out; false if
 * there is none.
 */
static inline bool find_rec(struct recs *rs, enum viommu_trace_id id, int k,
			    struct viommu_trace_record *out)
{
	bool found = false;

	pthread_mutex_lock(&rs->lock);
	for (int i = 0; i < rs->n && i < MAXREC; i++)
		if (rs->r[i].id == id && !k--) {
			*out = rs->r[i];
			found = true;
			break;
		}
	pthread_mutex_unlock(&rs->lock);
	return found;
}

/* count_rec() - records of event @id. */
static inline int count_rec(struct recs *rs, enum viommu_trace_id id)
{
	int c = 0;

	pthread_mutex_lock(&rs->lock);
	for (int i = 0; i < rs->n && i < MAXREC; i++)
		c += rs->r[i].id == id;
	pthread_mutex_unlock(&rs->lock);
	return c;
}

#endif /* VIOMMU_TESTS_TRACE_RECS_H */
