/*
 * common.h - definitions shared by every viommu object: export macro,
 * logging and allocator hooks, access flags.  Included by the other public
 * headers; embedders normally include <viommu/viommu.h>.
 */
#ifndef VIOMMU_COMMON_H
#define VIOMMU_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIOMMU_VERSION_MAJOR 0
#define VIOMMU_VERSION_MINOR 2
#define VIOMMU_VERSION_PATCH 0

#if defined(VIOMMU_BUILDING_LIBRARY)
#define VIOMMU_EXPORT __attribute__((visibility("default")))
#else
#define VIOMMU_EXPORT
#endif

/** Severity of a log line handed to a struct viommu_log callback. */
enum viommu_log_level {
	VIOMMU_LOG_ERROR = 0, /* internal error, the object may be unusable */
	VIOMMU_LOG_WARN = 1,  /* bad input from a guest or caller, refused */
	VIOMMU_LOG_INFO = 2,  /* state changes worth a line (attach, reset) */
	VIOMMU_LOG_DEBUG = 3, /* per-request tracing */
};

/**
 * struct viommu_log - where an object sends its log lines.
 * @fn:     called with one complete line (no trailing newline); may be
 *          called from any thread that calls into the object, possibly with
 *          internal locks held: it must not call back into viommu.
 * @opaque: passed back to @fn.
 * @level:  lines above this level are not formatted at all.
 * A NULL @fn discards everything.
 */
struct viommu_log {
	void (*fn)(void *opaque, enum viommu_log_level level, const char *line);
	void *opaque;
	enum viommu_log_level level;
};

/**
 * struct viommu_allocator - memory allocator used by an object for all of
 * its host memory.  NULL @alloc means malloc/free.  Tests plug a
 * fault-injecting allocator in here; every allocation failure is reported to
 * the caller as -ENOMEM and leaves the object as it was before the call.
 * (A limit reached is -ENOSPC, never -ENOMEM: docs/API.md, "Errno
 * summary".)
 * @alloc must return memory aligned for any type (like malloc) and may be
 * called from any thread.
 */
struct viommu_allocator {
	void *(*alloc)(void *opaque, size_t size);
	void (*free)(void *opaque, void *ptr);
	void *opaque;
};

/** Access kinds, used for permissions, translation requests and faults. */
#define VIOMMU_READ  (1u << 0)
#define VIOMMU_WRITE (1u << 1)
#define VIOMMU_EXEC  (1u << 2)

/** viommu_version() - the library version as "major.minor.patch". */
VIOMMU_EXPORT const char *viommu_version(void);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_COMMON_H */
