/*
 * dirty.h - sparse dirty-page state of one domain: a hash table from 2 MiB
 * chunk number to a 512-bit bitmap (one bit per 4 KiB page).  Memory grows
 * only with the pages actually written and is capped; past the cap the map
 * records `overflow` and readers report conservatively.
 * Not thread-safe: the domain lock serialises every call.
 */
#ifndef VIOMMU_DIRTY_H
#define VIOMMU_DIRTY_H

#include <viommu/common.h>

#define DIRTY_CHUNK_SHIFT 21 /* 2 MiB of IOVA per chunk */
#define DIRTY_CHUNK_WORDS 8  /* 512 pages / 64 */

struct dirty_chunk {
	uint64_t key; /* chunk number + 1; 0 marks an empty slot */
	uint64_t bits[DIRTY_CHUNK_WORDS];
};

struct dirty_map {
	struct dirty_chunk *tab;
	uint32_t cap;   /* power of two or 0 */
	uint32_t used;
	uint32_t max;   /* chunk cap */
	bool overflow;  /* some dirty pages could not be recorded */
};

void dirty_init(struct dirty_map *d, uint32_t max_chunks);
void dirty_clear(struct dirty_map *d, const struct viommu_allocator *a);

/* dirty_mark() - mark pages of [iova, last]; sets overflow past the cap. */
void dirty_mark(struct dirty_map *d, const struct viommu_allocator *a,
		uint64_t iova, uint64_t last);

/*
 * dirty_collect() - OR the dirty bits of pages [iova, last] into @bitmap
 * (bit i = page iova + i * 4 KiB) and clear them unless @keep.  @iova is
 * page-aligned; the caller checked @bitmap is large enough.
 */
void dirty_collect(struct dirty_map *d, uint64_t iova, uint64_t last,
		   uint64_t *bitmap, bool keep);

#endif /* VIOMMU_DIRTY_H */
