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

/*
 * sized_out() - hand a caller that knows @size bytes of a struct the
 * library has as @n bytes at @src: the first min(@size, @n) bytes, and
 * zero in what the library lacks (a caller built against a newer header).
 * Nothing past @size is written.
 */
static inline void sized_out(void *out, size_t size, const void *src,
			     size_t n)
{
	memcpy(out, src, MIN(size, n));
	if (size > n)
		memset((unsigned char *)out + n, 0, size - n);
}

/*
 * sized_in() - the caller's config as this library knows it (@n bytes at
 * @dst): its first @size bytes, the rest zero (each field's default).
 * Return: false when @size is larger than @n and a byte past @n is not
 * zero (the caller asks for something this library cannot do).  Nothing
 * past @size is read.
 */
static inline bool sized_in(void *dst, size_t n, const void *src,
			    size_t size)
{
	for (size_t i = n; i < size; i++)
		if (((const unsigned char *)src)[i])
			return false;
	memset(dst, 0, n);
	memcpy(dst, src, MIN(size, n));
	return true;
}

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

/*
 * struct ratelimit - the one limiter for log lines a guest (or a peer) can
 * trigger.  Each device or context embeds its own (no global state); a
 * zeroed one is ready.  At most RL_BURST lines pass per RL_INTERVAL_NS
 * window; the lines beyond are counted, not formatted, and the first line
 * of a later window carries "(N similar messages suppressed)".  The
 * callers' own statistics count every event; this counts only lines.
 * Lock-free (relaxed atomics) and callable from any thread: a race at a
 * window's turn may let a few extra lines through, never unboundedly many.
 * Lines the log would discard (no callback, level filtered) cost nothing
 * and are not counted.
 */
struct ratelimit {
	uint64_t window;     /* CLOCK_MONOTONIC ns the window opened; 0 none */
	uint64_t lines;      /* lines passed or refused in this window */
	uint64_t pending;    /* suppressed since the last report */
	uint64_t suppressed; /* suppressed in all, for statistics */
};

#define RL_BURST 32
#define RL_INTERVAL_NS (5ull * 1000000000ull)

/*
 * rl_log() - vlog() through @rl: emit the line if the window has room,
 * else count it as suppressed.
 */
void rl_log(struct ratelimit *rl, const struct viommu_log *log,
	    enum viommu_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define rl_err(rl, l, ...) rl_log((rl), (l), VIOMMU_LOG_ERROR, __VA_ARGS__)
#define rl_warn(rl, l, ...) rl_log((rl), (l), VIOMMU_LOG_WARN, __VA_ARGS__)
#define rl_info(rl, l, ...) rl_log((rl), (l), VIOMMU_LOG_INFO, __VA_ARGS__)
#define rl_debug(rl, l, ...) rl_log((rl), (l), VIOMMU_LOG_DEBUG, __VA_ARGS__)

/* rl_suppressed() - lines @rl has suppressed so far. */
static inline uint64_t rl_suppressed(const struct ratelimit *rl)
{
	return __atomic_load_n(&rl->suppressed, __ATOMIC_RELAXED);
}

/*
 * rl_expire() - close @rl's current window, so that the next line opens a
 * new one (and reports what was suppressed).  For tests, which must not
 * wait RL_INTERVAL_NS.
 */
static inline void rl_expire(struct ratelimit *rl)
{
	__atomic_store_n(&rl->window, 0, __ATOMIC_RELAXED);
}

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
