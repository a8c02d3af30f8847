/*
 * util.h - private helpers shared by every part of the library: logging
 * through the embedder's callback, allocation through the embedder's
 * allocator, overflow-checked range arithmetic, and atomics shorthands.
 */
#ifndef VIOMMU_UTIL_H
#define VIOMMU_UTIL_H

#include <viommu/common.h>
#include <stdarg.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Relaxed atomics for seqlock-protected fields and counters. */
#define READ_ONCE(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define LOAD_ACQUIRE(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE_RELEASE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define ATOMIC_INC(x) __atomic_fetch_add(&(x), 1, __ATOMIC_RELAXED)
#define ATOMIC_ADD(x, v) __atomic_fetch_add(&(x), (v), __ATOMIC_RELAXED)

/*
 * vlog() - format and emit one log line if @log accepts @level.  Safe with
 * a zeroed struct viommu_log (discards).
 */
void vlog(const struct viommu_log *log, enum viommu_log_level level,
	  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_err(l, ...) vlog((l), VIOMMU_LOG_ERROR, __VA_ARGS__)
#define log_warn(l, ...) vlog((l), VIOMMU_LOG_WARN, __VA_ARGS__)
#define log_info(l, ...) vlog((l), VIOMMU_LOG_INFO, __VA_ARGS__)
#define log_debug(l, ...) vlog((l), VIOMMU_LOG_DEBUG, __VA_ARGS__)

/* Allocation through an embedder allocator (NULL hooks mean malloc). */
void *xalloc(const struct viommu_allocator *a, size_t size);
void *xzalloc(const struct viommu_allocator *a, size_t size);
void xfree(const struct viommu_allocator *a, void *p);

/*
 * range_last() - last byte of [start, start + len); false if @len is 0 or
 * the range wraps past UINT64_MAX.
 */
static inline int range_last(uint64_t start, uint64_t len, uint64_t *last)
{
	if (len == 0 || start + (len - 1) < start)
		return 0;
	*last = start + (len - 1);
	return 1;
}

/* ranges_overlap() - whether inclusive ranges [a0,a1] and [b0,b1] meet. */
static inline int ranges_overlap(uint64_t a0, uint64_t a1, uint64_t b0,
				 uint64_t b1)
{
	return a0 <= b1 && b0 <= a1;
}

#endif /* VIOMMU_UTIL_H */
