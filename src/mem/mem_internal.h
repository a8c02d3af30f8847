/*
 * mem_internal.h - what the rest of the library may ask of the memory layer
 * beyond the public mem.h: region look-up for callers that cache host
 * pointers (the core's IOTLB), tagged with the generation they came from.
 */
#ifndef VIOMMU_MEM_INTERNAL_H
#define VIOMMU_MEM_INTERNAL_H

#include <viommu/mem.h>

/*
 * MEM_F_IO - internal piece flag: an I/O region (viommu_mem_set_layout()),
 * hva NULL, reached only through mem_access_in() and the public read/write.
 */
#define MEM_F_IO (1u << 31)

/*
 * struct mem_piece - the region holding a GPA: [gpa, gpa + size) lives at
 * host address hva (NULL for an I/O region); flags are VIOMMU_MEM_F_* and
 * MEM_F_IO.
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

/*
 * mem_check_in() - whether [@gpa, @gpa + @len) is RAM all the way (any
 * kind of region, adjacent regions fine), writable if @write, for a
 * caller inside a read section.  Return: 0; -EFAULT; -EPERM.
 */
int mem_check_in(struct viommu_mem *mem, uint64_t gpa, uint64_t len,
		 bool write);

/*
 * struct mem_cache - the region a caller found last, tagged with the ID of
 * the region table it came from, for callers that make many small accesses
 * near each other (a virtqueue touches its rings and request buffers a
 * dozen times per request).  Zero-initialised it is empty (table IDs start
 * at 1).  Owned by one thread at a time.
 */
struct mem_cache {
	uint64_t table_id;
	struct mem_piece piece;
};

/*
 * struct mem_published - the first member of struct viommu_mem (mem.c):
 * the published region table, whose first member is its ID (a
 * uint64_t).  Declared here so that mem_table_id() runs inline; nothing
 * else outside mem.c may look at it.
 */
struct mem_table;
struct mem_published {
	struct mem_table *table;
};

/*
 * mem_table_id() - the ID of the current region table, 0 when there is
 * no RAM.  IDs are unique per mem and never reused, so a host address
 * found in the table with this ID stays valid while the ID is still the
 * current one and the caller is inside a read section.  Barrier: the
 * seq_cst load of current_table() (mem.c), a plain load on x86.
 */
static inline uint64_t mem_table_id(struct viommu_mem *mem)
{
	struct mem_published *p = (struct mem_published *)(void *)mem;
	const uint64_t *id = (const uint64_t *)(const void *)
		__atomic_load_n(&p->table, __ATOMIC_SEQ_CST);

	return id ? *id : 0;
}

/*
 * mem_cache_hit() - whether @c's region answers for [@gpa, @gpa + @len)
 * (@len > 0) as mem_cached_ptr() would with 0: its table is the current
 * one, the range lies inside it, it is RAM with a host address, and
 * writable if @write.  Then *@hva is set.  Nothing is looked up.
 */
static inline bool mem_cache_in(const struct mem_cache *c, uint64_t gpa,
				uint64_t len, bool write);

static inline bool mem_cache_hit(struct viommu_mem *mem,
				 const struct mem_cache *c, uint64_t gpa,
				 uint64_t len, bool write, void **hva)
{
	if (mem_table_id(mem) != c->table_id ||
	    !mem_cache_in(c, gpa, len, write))
		return false;
	*hva = c->piece.hva + (gpa - c->piece.gpa);
	return true;
}

/*
 * mem_cache_in() - mem_cache_hit() without the table-ID check, for a
 * caller that checked mem_table_id() == @c->table_id itself (once for
 * several ranges): whether [@gpa, @gpa + @len) (@len > 0) lies inside
 * @c's region, which is RAM with a host address, writable if @write.
 */
static inline bool mem_cache_in(const struct mem_cache *c, uint64_t gpa,
				uint64_t len, bool write)
{
	uint64_t off = gpa - c->piece.gpa;
	uint32_t bad = MEM_F_IO | (write ? VIOMMU_MEM_F_READONLY : 0);

	return off < c->piece.size && len <= c->piece.size - off &&
	       !(c->piece.flags & bad);
}

/*
 * mem_cached_fill() - mem_cached_ptr() when the cached region does not
 * answer: look the region up, refill @c, and check as mem_cached_ptr().
 */
int mem_cached_fill(struct viommu_mem *mem, struct mem_cache *c, uint64_t gpa,
		    size_t len, bool write, void **hva);

/*
 * mem_cached_ptr() - host address of [@gpa, @gpa + @len) when the range lies
 * inside one region, trying @c's region first and refilling @c otherwise.
 * The caller is inside a read section; the pointer is valid until it ends.
 * A cached region is used only while its table is still the current one,
 * so a replacement of the region set is always seen.  @len must be > 0.
 * The hit is inline (a table-ID compare and a range check); a miss, a
 * read-only region written and an I/O region go to mem_cached_fill().
 * Return: 0; -EFAULT (@gpa not RAM); -E2BIG (the range leaves the region:
 * the caller falls back to mem_access_in()/mem_ptr_in(), which walk
 * adjacent regions); -EREMOTE (an I/O region: no host address, the caller
 * falls back to mem_access_in()); -EPERM (@write and a read-only region).
 */
static inline int mem_cached_ptr(struct viommu_mem *mem, struct mem_cache *c,
				 uint64_t gpa, size_t len, bool write,
				 void **hva)
{
	if (__builtin_expect(mem_cache_hit(mem, c, gpa, len, write, hva), 1))
		return 0;
	return mem_cached_fill(mem, c, gpa, len, write, hva);
}

#endif /* VIOMMU_MEM_INTERNAL_H */
