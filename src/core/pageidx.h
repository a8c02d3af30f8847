/*
 * pageidx.h - the page index of a mapping store: a radix tree over IOVA
 * page numbers (4 KiB pages) holding one 8-byte word per mapping that is
 * exactly one page, so a random look-up among a million such mappings
 * costs about one cache miss (the leaf) instead of a B+tree's five.
 *
 * Private to the mapping store (mapstore.h): struct mapstore keeps
 * page-sized mappings here when they fit and everything else in its
 * B+tree, and its ms_* calls consult both.  See pageidx.c for the shape,
 * the memory rule and lock-free reading.
 *
 * Writers (every call but pi_lookup_rcu()) are serialised by the caller
 * (the domain lock).  pi_lookup_rcu() runs concurrently with them inside
 * a read section of the index's rcu.
 */
#ifndef VIOMMU_CORE_PAGEIDX_H
#define VIOMMU_CORE_PAGEIDX_H

#include <viommu/common.h>

#define PI_PAGE_SHIFT 12
#define PI_PAGE_SIZE (1ull << PI_PAGE_SHIFT)
#define PI_BITS 6                 /* slots per node: 64 */
#define PI_SLOTS (1u << PI_BITS)
#define PI_MAX_HEIGHT 9           /* 9 x 6 = 54 bits >= 52-bit page numbers */
#define PI_PROT_BITS 11           /* prot bits an index word can hold */
/*
 * Default per-store slack of the memory rule (pageidx.c, "Memory"): what a
 * dense fill of 2^20 pages in random order needs at its sparsest moment
 * (about 5.6 MiB), rounded up.
 */
#define PI_SLACK_DEFAULT (8ull << 20)
/* Default slack of a context's pool (four such fills at once). */
#define PI_POOL_SLACK_DEFAULT (32ull << 20)

struct rcu;
struct viommu_allocator;

/* A node: 64 slots and the bitmap of the occupied ones (leaf or not). */
struct pi_node {
	uint64_t bitmap;        /* writer only */
	struct pi_node *rnext;  /* retired list (writer only) */
	uint64_t slot[PI_SLOTS]; /* leaf: entry words; else child pointers */
};

/*
 * The context-wide half of the memory rule (pageidx.c, "Memory"), shared
 * by the indexes of one context's stores.
 */
struct pi_pool {
	uint64_t bytes;          /* memory of every index (atomic) */
	uint64_t slack;
	const uint64_t *entries; /* the context's live mappings (atomic) */
};

struct pageidx {
	/*
	 * Root pointer | height (1..PI_MAX_HEIGHT) in the low bits, one word
	 * so a lock-free reader never pairs a root with another's height; 0
	 * when the index has no node.
	 */
	uintptr_t top;
	const struct viommu_allocator *alloc;
	struct rcu *rcu;
	uint64_t slack;      /* memory rule: see pageidx.c; 0 = index unused */
	struct pi_pool *pool; /* the context's half of the rule, or NULL */
	/*
	 * What every map or unmap writes starts 64 bytes after @top, so
	 * readers loading @top do not share its cache line.
	 */
	uint64_t pad_[4];
	uint64_t count;      /* entries */
	uint64_t host_bytes; /* nodes, retired ones included */
	/* writer-only state */
	struct pi_node *keep;   /* the one empty leaf left linked, or NULL */
	uint64_t keep_pn;       /* a page number @keep covers */
	struct pi_node *retired; /* unlinked, no grace period asked yet */
	struct pi_node *waiting; /* unlinked, grace period running */
	uint64_t ticket;
	uint64_t retired_bytes;
	uint32_t nretired;
};

/* pi_word() - the index word of a page mapping (see pi_fits()). */
static inline uint64_t pi_word(uint64_t gpa, uint32_t prot)
{
	return gpa | (uint64_t)prot << 1 | 1;
}

/* pi_word_gpa() / pi_word_prot() - the fields of a present word. */
static inline uint64_t pi_word_gpa(uint64_t w)
{
	return w & ~(PI_PAGE_SIZE - 1);
}

static inline uint32_t pi_word_prot(uint64_t w)
{
	return (uint32_t)(w >> 1) & ((1u << PI_PROT_BITS) - 1);
}

/*
 * pi_fits() - whether [start, last] -> gpa, prot may live in the index:
 * exactly one 4 KiB-aligned page, gpa 4 KiB-aligned, prot within
 * PI_PROT_BITS bits.
 */
static inline bool pi_fits(uint64_t start, uint64_t last, uint64_t gpa,
			   uint32_t prot)
{
	return !(start & (PI_PAGE_SIZE - 1)) &&
	       last == start + (PI_PAGE_SIZE - 1) &&
	       !(gpa & (PI_PAGE_SIZE - 1)) && !(prot >> PI_PROT_BITS);
}

/*
 * pi_init() - an empty index; @slack as in pageidx.c, "Memory"; no pool
 * (the caller may set @pool before the first insert).
 */
void pi_init(struct pageidx *pi, const struct viommu_allocator *alloc,
	     struct rcu *rcu, uint64_t slack);

/*
 * pi_reinit() - pi_init() for a destroyed index lock-free readers may
 * still be looking at: the root word is cleared atomically.  Keeps @pool.
 */
void pi_reinit(struct pageidx *pi, const struct viommu_allocator *alloc,
	       struct rcu *rcu, uint64_t slack);

/* pi_destroy() - free every node (after a grace period with an rcu). */
void pi_destroy(struct pageidx *pi);

/*
 * pi_insert() - add page @pn with word @w (pi_word()).  Return: 0;
 * -EEXIST (the page is present); -ENOSPC (it needs a node the memory rule
 * refuses, or the allocator returned a misaligned one: keep the mapping
 * elsewhere; the index is unchanged); -ENOMEM (allocation failed; the
 * index is unchanged).
 */
int pi_insert(struct pageidx *pi, uint64_t pn, uint64_t w);

/* pi_get() - the word of page @pn.  Return: 0 with *@w; -ENOENT. */
int pi_get(const struct pageidx *pi, uint64_t pn, uint64_t *w);

/*
 * pi_next() - the lowest present page in [@lo, @hi].  Return: 0 with *@pn
 * and *@w; -ENOENT.  Work: O(height x 64) word operations.
 */
int pi_next(const struct pageidx *pi, uint64_t lo, uint64_t hi, uint64_t *pn,
	    uint64_t *w);

/*
 * pi_remove() - remove page @pn; emptied nodes are unlinked and retired
 * (pi_reclaim() frees them later).  Return: 0 with its word in *@w
 * (optional); -ENOENT.
 */
int pi_remove(struct pageidx *pi, uint64_t pn, uint64_t *w);

/*
 * pi_reclaim() - free retired nodes whose grace period is over; with
 * @force all of them, waiting if need be.  Never inside a read section.
 */
void pi_reclaim(struct pageidx *pi, bool force);

/*
 * pi_lookup_rcu() - pi_get() for a reader that does not hold the writers'
 * lock, inside a read section of the index's rcu.  Never blocks, never
 * writes shared memory.  Return: 0 with a word that was page @pn's at one
 * instant during the call; -ENOENT (no word was at one such instant).
 */
int pi_lookup_rcu(const struct pageidx *pi, uint64_t pn, uint64_t *w);

/* pi_check() - tests: invariants (bitmaps, counts, memory). 0/-EUCLEAN. */
int pi_check(const struct pageidx *pi);

#endif /* VIOMMU_CORE_PAGEIDX_H */
