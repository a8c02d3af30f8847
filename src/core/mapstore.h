/*
 * mapstore.h - the mapping store of a PAGING domain: a set of
 * non-overlapping IOVA ranges [start, last] -> (gpa, prot), kept in two
 * structures behind one API:
 *  - the page index (pageidx.h): a radix tree over IOVA page numbers
 *    holding the mappings that are exactly one 4 KiB page (aligned start
 *    and gpa, prot in 11 bits), one 8-byte word each, while its memory
 *    rule allows (pageidx.c, "Memory"); a random look-up costs about one
 *    cache miss at a million mappings;
 *  - a B+tree ordered by start (mapstore.c) for every other mapping.
 *    Leaves hold entries in struct-of-arrays form and are linked to their
 *    neighbours so range walks and predecessor look-ups never climb the
 *    tree.
 * A mapping lives in one of them for its whole life (never moved); every
 * ms_* call consults both (mapstore_join.c).
 *
 * Rules (DESIGN.md §3), across both structures: insert rejects any
 * overlap; remove_range removes only entries lying wholly inside the
 * range, refuses (changing nothing) when an entry straddles either end,
 * succeeds over gaps; walks and removal callbacks come in ascending IOVA
 * order.
 *
 * Writers (every call but ms_lookup_rcu()) are serialised by the domain
 * lock.  Readers may run ms_lookup_rcu() concurrently with them, without
 * the lock (see mapstore.c and pageidx.c, "Lock-free readers").  No call
 * allocates except insert (at most one B+tree leaf plus one node per
 * level, or the index nodes of one path).
 */
#ifndef VIOMMU_MAPSTORE_H
#define VIOMMU_MAPSTORE_H

#include <viommu/common.h>

#include "core/pageidx.h"

struct ms_entry {
	uint64_t start;
	uint64_t last;
	uint64_t gpa;
	uint32_t prot;
};

struct ms_node; /* private to mapstore.c */
struct ms_hdr;
struct rcu;

/* Nodes one writer call may change before it publishes them (see .c). */
#define MS_TOUCH_MAX 96

/* The B+tree (mapstore.c). */
struct ms_tree {
	struct ms_node *root;
	const struct viommu_allocator *alloc;
	struct rcu *rcu;     /* grace periods for lock-free readers, or NULL */
	uint64_t count;      /* entries */
	uint64_t bytes;      /* sum of sizes, saturating at UINT64_MAX */
	uint64_t host_bytes; /* memory held by nodes, retired ones included */
	uint32_t height;     /* 0 when empty; 1 = a single leaf */
	uint32_t seq;        /* version of root and height (see .c) */
	/* writer-only state */
	struct ms_hdr *retired; /* unlinked nodes, no grace period asked yet */
	struct ms_hdr *waiting; /* unlinked nodes whose grace period runs */
	uint64_t ticket;        /* rcu_ticket() of @waiting */
	uint32_t nretired;      /* nodes on @retired */
	uint32_t ntouched;
	uint64_t retired_bytes; /* memory of @retired and @waiting */
	struct ms_hdr *touched[MS_TOUCH_MAX];
};

/*
 * Layout: what every page map or unmap writes (the index's counters and
 * the totals) lies between the index's root word and the B+tree, and the
 * B+tree's writer-only touch list comes last, so neither the lock-free
 * readers' words nor the fields a domain keeps after its store share a
 * line with a busy mapper's stores.  (The fields an IOTLB hit reads are
 * at the domain's start, away from all of it: internal.h.)
 */
struct mapstore {
	struct pageidx pi;   /* page-sized mappings (pageidx.h) */
	/* both together, for the domain's statistics and limits */
	uint64_t count;      /* entries */
	uint64_t bytes;      /* sum of sizes, saturating at UINT64_MAX */
	uint64_t host_bytes; /* memory held by both, retired nodes included */
	struct ms_tree bt;   /* every mapping the index does not hold */
};

/*
 * ms_init() - an empty store that allocates through @alloc (may be NULL).
 * @rcu (may be NULL) is the grace-period source of lock-free readers
 * (ms_lookup_rcu()); without one, unlinked nodes are freed at once and
 * ms_lookup_rcu() may only run while no writer does.
 */
void ms_init(struct mapstore *ms, const struct viommu_allocator *alloc,
	     struct rcu *rcu);

/*
 * ms_reinit() - ms_init() for a zeroed or destroyed store that lock-free
 * readers may still be looking at (a reused domain): writes the fields
 * they read atomically, and the version keeps counting, so a reader
 * holding a stale view retries.
 */
void ms_reinit(struct mapstore *ms, const struct viommu_allocator *alloc,
	       struct rcu *rcu);

/*
 * ms_destroy() - free every node; the store is empty afterwards.  With an
 * rcu, waits for a grace period first (lock-free readers may be inside).
 * (ms_remove_range() emptying the store frees the B+tree's nodes but may
 * leave the index's cached path: one leaf and its ancestors.)
 */
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
 * ms_lookup_rcu() - ms_lookup() for a reader that does NOT hold the lock
 * serialising writers, inside an rcu_read_lock() section of ms->rcu.
 * Optimistic: validates every node it reads against the node's version
 * and retries a bounded number of times.
 * Return: 0 with *@out (an entry that was in the store at one instant
 * during the call); -ENOENT (no entry held @iova at one such instant);
 * -EAGAIN (writers kept changing the nodes on the way: take the lock and
 * call ms_lookup()).  Never blocks, never writes shared memory.
 */
int ms_lookup_rcu(const struct mapstore *ms, uint64_t iova,
		  struct ms_entry *out);

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

/*
 * ms_share_pool() - make @pool (shared by the stores of one context, may
 * be NULL) the context-wide half of the page index's memory rule
 * (pageidx.c, "Memory").  Call on an empty store.
 */
void ms_share_pool(struct mapstore *ms, struct pi_pool *pool);

/*
 * ms_init_tree_only() - tests: ms_init() with the page index unused, so
 * every mapping goes to the B+tree.
 */
void ms_init_tree_only(struct mapstore *ms,
		       const struct viommu_allocator *alloc, struct rcu *rcu);

#endif /* VIOMMU_MAPSTORE_H */
