/*
 * util.c - logging and allocation helpers (see util.h) and the version
 * string.  Nothing here keeps state: every call is told which log and
 * which allocator to use.
 */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>

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
