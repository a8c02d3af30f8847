/*
 * mapstore_node.h - the mapping store's B+tree: its calls (mt_*, used by
 * mapstore_join.c, which puts the page index beside it behind the ms_*
 * API) and its node layout, private to mapstore.c (writers) and
 * mapstore_rcu.c (lock-free readers).  See mapstore.c for the tree's shape
 * and rules, and for the versions and retirement that make lock-free
 * reading safe.  Each mt_* call does what the ms_* call of the same name
 * in mapstore.h does, over the B+tree alone.
 */
#ifndef VIOMMU_CORE_MAPSTORE_NODE_H
#define VIOMMU_CORE_MAPSTORE_NODE_H

#include "core/mapstore.h"
#include "base/util.h"

#define LEAF_CAP 32u
#define NODE_CAP 64u
#define LEAF_MIN (LEAF_CAP / 2)
#define NODE_MIN (NODE_CAP / 2)
#define MAX_DEPTH 16u
#define MS_READ_TRIES 16u /* optimistic descents before -EAGAIN */

_Static_assert(LEAF_MIN >= 16 && NODE_MIN >= 16,
	       "the MAX_DEPTH bound needs minimum fills of 16");
/* Per level: the node, its parent, two siblings; plus leaf neighbours. */
_Static_assert(MS_TOUCH_MAX >= 4 * MAX_DEPTH + 8, "touch list too short");

/* Head of every node. */
struct ms_hdr {
	uint32_t seq;  /* version: odd while being changed, or once retired */
	uint32_t n;    /* entries or children */
	uint32_t full; /* root only: the entries cover 2^64 bytes */
	uint8_t leaf;  /* fixed for the node's life */
	uint8_t dead;  /* retired (writer only) */
	struct ms_hdr *rnext; /* retired list (writer only) */
};

struct ms_leaf {
	struct ms_hdr h;
	struct ms_leaf *prev, *next; /* next: writer only */
	uint64_t start[LEAF_CAP];
	uint64_t last[LEAF_CAP];
	uint64_t gpa[LEAF_CAP];
	uint32_t prot[LEAF_CAP];
};

/* Internal node; struct mapstore's root points at a leaf when height is 1. */
struct ms_node {
	struct ms_hdr h;
	uint64_t key[NODE_CAP];
	void *child[NODE_CAP];
};

/*
 * Stores to fields lock-free readers read: atomic, so a reader never sees
 * a torn value (and TSan sees no plain racing access).  Pointers that lead
 * to a node are stored with release, so the node's initialisation is
 * visible to a reader that loads the pointer with acquire.
 */
#define SET(x, v) WRITE_ONCE(x, v)
#define SETP(x, v) STORE_RELEASE(x, v)

/*
 * prefetch_keys() - start loading the @bytes of sorted keys at @a, so the
 * binary search's cache misses overlap instead of following each other
 * (at a million mappings the lower levels and the leaves are out of the
 * caches).
 */
static inline void prefetch_keys(const void *a, size_t bytes)
{
	for (size_t off = 0; off < bytes; off += 64)
		__builtin_prefetch((const char *)a + off);
}

void mt_init(struct ms_tree *ms, const struct viommu_allocator *alloc,
	     struct rcu *rcu);
void mt_reinit(struct ms_tree *ms, const struct viommu_allocator *alloc,
	       struct rcu *rcu);
void mt_destroy(struct ms_tree *ms);
int mt_insert(struct ms_tree *ms, const struct ms_entry *e);
int mt_lookup(const struct ms_tree *ms, uint64_t iova, struct ms_entry *out);
int mt_lookup_rcu(const struct ms_tree *ms, uint64_t iova,
		  struct ms_entry *out);
int mt_first_overlap(const struct ms_tree *ms, uint64_t start, uint64_t last,
		     struct ms_entry *out);
long mt_remove_range(struct ms_tree *ms, uint64_t start, uint64_t last,
		     void (*fn)(void *opaque, const struct ms_entry *e),
		     void *opaque, uint64_t *removed_bytes);
int mt_walk(const struct ms_tree *ms, uint64_t start, uint64_t last,
	    int (*fn)(void *opaque, const struct ms_entry *e), void *opaque);
int mt_check(const struct ms_tree *ms);

#endif /* VIOMMU_CORE_MAPSTORE_NODE_H */
