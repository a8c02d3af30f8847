/*
 * mapstore.h - the mapping store of a PAGING domain: a set of
 * non-overlapping IOVA ranges [start, last] -> (gpa, prot), kept in a
 * B+tree ordered by start.  Leaves hold entries in struct-of-arrays form
 * and are linked to their neighbours so range walks and predecessor
 * look-ups never climb the tree.
 *
 * Rules (DESIGN.md §3): insert rejects any overlap; remove_range removes
 * only entries lying wholly inside the range, refuses (changing nothing)
 * when an entry straddles either end, succeeds over gaps.
 *
 * Not thread-safe: the domain lock serialises every call.  No call
 * allocates except insert (at most one leaf plus one node per level).
 */
#ifndef VIOMMU_MAPSTORE_H
#define VIOMMU_MAPSTORE_H

#include <viommu/common.h>

struct ms_entry {
	uint64_t start;
	uint64_t last;
	uint64_t gpa;
	uint32_t prot;
};

struct ms_node; /* private to mapstore.c */

struct mapstore {
	struct ms_node *root;
	const struct viommu_allocator *alloc;
	uint64_t count;      /* entries */
	uint64_t bytes;      /* sum of sizes, saturating at UINT64_MAX */
	uint64_t host_bytes; /* memory held by nodes */
	uint32_t height;     /* 0 when empty; 1 = a single leaf */
};

/* ms_init() - an empty store that allocates through @alloc (may be NULL). */
void ms_init(struct mapstore *ms, const struct viommu_allocator *alloc);

/* ms_destroy() - free every node; the store is empty afterwards. */
void ms_destroy(struct mapstore *ms);

/*
 * ms_insert() - add @e.  Return: 0; -EINVAL (start > last); -EEXIST
 * (overlap); -ENOMEM (allocation; the store is unchanged).
 */
int ms_insert(struct mapstore *ms, const struct ms_entry *e);

/*
 * ms_lookup() - the entry containing @iova.  Return: 0 with *@out; -ENOENT.
 */
int ms_lookup(const struct mapstore *ms, uint64_t iova, struct ms_entry *out);

/*
 * ms_first_overlap() - the lowest entry overlapping [start, last].
 * Return: 0 with *@out; -ENOENT.
 */
int ms_first_overlap(const struct mapstore *ms, uint64_t start, uint64_t last,
		     struct ms_entry *out);

/*
 * ms_remove_range() - remove entries inside [start, last].
 * @fn (optional) is called for each removed entry, in order, before the
 * call returns.  *@removed_bytes (optional) receives the sum of their sizes
 * (saturating).
 * Return: number of entries removed (>= 0); -ERANGE if an entry straddles
 * start or last (nothing removed); -EINVAL (start > last).
 */
long ms_remove_range(struct mapstore *ms, uint64_t start, uint64_t last,
		     void (*fn)(void *opaque, const struct ms_entry *e),
		     void *opaque, uint64_t *removed_bytes);

/*
 * ms_walk() - call @fn for each entry overlapping [start, last] in order;
 * a non-zero return stops the walk and is returned.  @fn must not modify
 * the store.
 */
int ms_walk(const struct mapstore *ms, uint64_t start, uint64_t last,
	    int (*fn)(void *opaque, const struct ms_entry *e), void *opaque);
int ms_check(const struct mapstore *ms); /* tests: invariants, 0/-EUCLEAN */

#endif /* VIOMMU_MAPSTORE_H */
