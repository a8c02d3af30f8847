/*
 * util.c - logging and allocation helpers (see util.h), the log rate
 * limiter, and the version string.  Nothing here keeps state: every call
 * is told which log, which limiter and which allocator to use.
 */
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef VIOMMU_VERSION_STRING
#define VIOMMU_VERSION_STRING "0.1.0"
#endif

VIOMMU_EXPORT const char *viommu_version(void)
{
	return VIOMMU_VERSION_STRING;
}

void vlog(const struct viommu_log *log, enum viommu_log_level level,
	  const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!log || !log->fn || level > log->level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log->fn(log->opaque, level, line);
}

/* mono_ns() - CLOCK_MONOTONIC in ns, never 0 (0 means "no window"). */
static uint64_t mono_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts))
		return 1;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + 1;
}

/*
 * rl_allow() - whether one more line may pass @rl; *@report gets the
 * count of lines suppressed before it when it opens a new window.
 */
static bool rl_allow(struct ratelimit *rl, uint64_t *report)
{
	uint64_t now = mono_ns(), w = READ_ONCE(rl->window);

	*report = 0;
	if ((w == 0 || now - w >= RL_INTERVAL_NS) &&
	    __atomic_compare_exchange_n(&rl->window, &w, now, false,
					__ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		WRITE_ONCE(rl->lines, 0);
		*report = __atomic_exchange_n(&rl->pending, 0,
					      __ATOMIC_RELAXED);
	}
	if (ATOMIC_INC(rl->lines) < RL_BURST)
		return true;
	/* A report taken in a lost race goes back for the next line. */
	ATOMIC_ADD(rl->pending, *report + 1);
	ATOMIC_INC(rl->suppressed);
	return false;
}

void rl_log(struct ratelimit *rl, const struct viommu_log *log,
	    enum viommu_log_level level, const char *fmt, ...)
{
	char line[512];
	uint64_t report;
	va_list ap;
	int n;

	if (!log || !log->fn || level > log->level || !rl_allow(rl, &report))
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (report) {
		/* Room for the suffix even after a truncated line. */
		size_t at = n < 0 ? 0 : MIN((size_t)n, sizeof(line) - 64);

		snprintf(line + at, sizeof(line) - at,
			 " (%llu similar messages suppressed)",
			 (unsigned long long)report);
	}
	log->fn(log->opaque, level, line);
}

void *xalloc(const struct viommu_allocator *a, size_t size)
{
	if (size == 0)
		size = 1;
	if (a && a->alloc)
		return a->alloc(a->opaque, size);
	return malloc(size);
}

void *xzalloc(const struct viommu_allocator *a, size_t size)
{
	void *p = xalloc(a, size);

	if (p)
		memset(p, 0, size);
	return p;
}

void xfree(const struct viommu_allocator *a, void *p)
{
	if (!p)
		return;
	if (a && a->alloc) {
		if (a->free)
			a->free(a->opaque, p);
		return;
	}
	free(p);
}
