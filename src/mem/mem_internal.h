/*
 * mem_internal.h - what the rest of the library may ask of the memory layer
 * beyond the public mem.h: region look-up for callers that cache host
 * pointers (the core's IOTLB), tagged with the generation they came from.
 */
#ifndef VIOMMU_MEM_INTERNAL_H
#define VIOMMU_MEM_INTERNAL_H

#include <viommu/mem.h>

/*
 * struct mem_piece - the region holding a GPA: [gpa, gpa + size) lives at
 * host address hva; flags are VIOMMU_MEM_F_*.
 */
struct mem_piece {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	uint32_t flags;
};

/*
 * mem_find() - the region containing @gpa.  The caller is inside a read
 * section (viommu_mem_read_lock) or otherwise excludes replacement; the
 * piece stays valid until the section ends.  Lock-free, no allocation.
 * Return: 0; -EFAULT if @gpa is not guest RAM.
 */
int mem_find(struct viommu_mem *mem, uint64_t gpa, struct mem_piece *out);

/*
 * mem_next_ram() - lowest region start greater than @gpa, or UINT64_MAX if
 * none (used to bound the contiguous length of a hole).  Same rules as
 * mem_find().
 */
uint64_t mem_next_ram(struct viommu_mem *mem, uint64_t gpa);

/*
 * mem_access_in() / mem_ptr_in() - viommu_mem_read/write() and
 * viommu_mem_ptr() for a caller already inside a read section (saves the
 * two atomic counter updates a section costs; the virtqueue code makes
 * many small accesses per request).  Same checks and errnos.
 */
int mem_access_in(struct viommu_mem *mem, uint64_t gpa, void *buf,
		  size_t len, bool write);
int mem_ptr_in(struct viommu_mem *mem, uint64_t gpa, size_t len,
	       unsigned int access, void **hva, size_t *contig);

#endif /* VIOMMU_MEM_INTERNAL_H */
