/*
 * lpae_build.h - the LPAE table builder: writes Arm VMSAv8-64 tables into
 * guest memory the way a guest's io-pgtable does (largest leaves that
 * alignment allows, contiguous hints, table freeing on unmap), for the
 * reference drivers, tests, fuzzers and benchmarks.  Not part of the
 * shipped library: it plays the guest.  The formats and the walker that
 * reads these tables are in src/pgtable/lpae.h.
 */
#ifndef VIOMMU_REFDRV_LPAE_BUILD_H
#define VIOMMU_REFDRV_LPAE_BUILD_H

#include "pgtable/lpae.h"

/* ---- builder ---------------------------------------------------------- */

/** Protection flags for lpae_map() beyond VIOMMU_READ/WRITE/EXEC. */
#define LPAE_PROT_PRIV   (1u << 8)  /* stage 1: privileged access only */
#define LPAE_PROT_CACHE  (1u << 9)  /* cacheable memory attributes */
#define LPAE_PROT_MMIO   (1u << 10) /* device memory attributes */
#define LPAE_PROT_NO_AF  (1u << 11) /* leave AF clear (lazy AF) */
#define LPAE_PROT_DBM    (1u << 12) /* writable leaves start clean + DBM */
#define LPAE_PROT_CONTIG (1u << 13) /* set the contiguous hint where it fits */
#define LPAE_PROT_GLOBAL (1u << 14) /* stage 1: clear nG */

/*
 * Memory attributes the builder writes: stage-1 AttrIndx values (the
 * reference driver programs MAIR to match: 0 Normal non-cacheable, 1
 * Normal write-back, 2 Device-nGnRE), stage-2 MemAttr values, and the
 * shareability of every leaf (inner shareable).
 */
#define LPAE_MAIR_IDX_NC       0
#define LPAE_MAIR_IDX_CACHE    1
#define LPAE_MAIR_IDX_DEV      2
#define LPAE_S2_MEMATTR_DEV    0x1
#define LPAE_S2_MEMATTR_NC     0x5
#define LPAE_S2_MEMATTR_WB     0xf
#define LPAE_SH_INNER          3

/**
 * struct lpae_ops - how the builder reaches guest memory.
 * @mem:      guest memory the tables live in.
 * @alloc:    give a table of @size bytes aligned to @align (both powers
 *            of two) in guest RAM, its GPA in *@gpa.  The builder zeroes
 *            it.  Return 0 or a negative errno (-ENOMEM).
 * @free:     take back a table from @alloc (may be NULL: leak).
 * @opaque:   passed to @alloc and @free.
 * @pgsizes:  leaf sizes the builder may use (bitmap of sizes); 0 for
 *            every size the granule allows.
 */
struct lpae_ops {
	struct viommu_mem *mem;
	int (*alloc)(void *opaque, uint64_t size, uint64_t align,
		     uint64_t *gpa);
	void (*free)(void *opaque, uint64_t gpa, uint64_t size);
	void *opaque;
	uint64_t pgsizes;
};

/**
 * lpae_alloc_root() - allocate and zero a start table for @c.
 * Return: 0 with its GPA in *@root; -EINVAL; the allocator's errno;
 * -EFAULT if the allocator's table is not writable guest RAM.
 */
int lpae_alloc_root(const struct lpae_cfg *c, const struct lpae_ops *ops,
		    uint64_t *root);

/**
 * lpae_free_tables() - free every table reachable from @root, and @root.
 * Descriptors are trusted only as far as the builder wrote them: reads
 * that fail stop the descent there.
 */
void lpae_free_tables(const struct lpae_cfg *c, const struct lpae_ops *ops,
		      uint64_t root);

/**
 * lpae_map() - map [@iova, @iova + @size) to @pa with @prot, using the
 * largest leaves that alignment and ops->pgsizes allow (like io-pgtable).
 * @size and both addresses must be granule-aligned; @prot needs READ or
 * WRITE (stage 1 cannot express write-only: WRITE maps read-write).
 * Return: 0; -EINVAL (alignment, range beyond IAS/OAS, no access);
 * -EEXIST if any part is already mapped; -ENOMEM or the allocator's errno;
 * -EFAULT if a table is not guest RAM.  On failure nothing this call
 * mapped stays mapped (tables it allocated may remain, empty).
 */
int lpae_map(const struct lpae_cfg *c, const struct lpae_ops *ops,
	     uint64_t root, uint64_t iova, uint64_t pa, uint64_t size,
	     unsigned int prot);

/**
 * lpae_unmap() - remove every leaf wholly inside [@iova, @iova + @size).
 * Gaps are fine.  Tables whose whole span the range covers are freed.
 * A leaf in a contiguous group loses the group: the hint is cleared on
 * the other entries of the group.
 * Return: 0 with the bytes unmapped in *@unmapped (may be 0); -EINVAL
 * (alignment, range); -ERANGE if a leaf straddles either end (nothing is
 * changed); -EFAULT if a table is not guest RAM.
 */
int lpae_unmap(const struct lpae_cfg *c, const struct lpae_ops *ops,
	       uint64_t root, uint64_t iova, uint64_t size,
	       uint64_t *unmapped);

#endif /* VIOMMU_REFDRV_LPAE_BUILD_H */
