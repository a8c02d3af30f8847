/*
 * pageidx.c - the page index: a radix tree over IOVA page numbers for the
 * mappings that are exactly one 4 KiB page (see pageidx.h, mapstore.h).
 *
 * Shape.  Every node has 64 slots and a 64-bit bitmap of the occupied
 * ones; a node at level lv (leaves: 0) is indexed by bits [6 lv, 6 lv + 6)
 * of the page number.  Leaf slots hold one word per page: gpa | prot << 1 |
 * 1 (bit 0: present); other slots hold child pointers.  The height (1 to
 * PI_MAX_HEIGHT) is the least that covers the highest page inserted; it
 * grows by adding roots above (the old root becomes child 0) and never
 * shrinks while the index has a node.  Root and height are one word
 * (@top: the pointer, 16-byte aligned, with the height in its low bits),
 * so a reader never pairs a root with another root's height.
 *
 * Fill.  Every linked node has a present entry below it, with one
 * exception: the leaf emptied last stays linked (@keep, with its
 * ancestors), so mapping and unmapping one page - the steady state of a
 * device that maps a buffer per request, even in an otherwise empty
 * domain - neither allocates nor retires a node per pair.  When another
 * leaf empties, the kept one is unlinked (and its ancestors that become
 * empty).  So the bitmaps give ordered iteration (ctz) and range
 * emptiness in O(height x 64) word operations: a subtree wholly inside the
 * range is non-empty unless it holds the kept leaf, and only the two
 * boundary subtrees per level can hold nothing in the range.
 *
 * Memory.  A node is 528 bytes.  A hostile guest mapping one page per
 * 256 KiB of IOVA would make every leaf hold one entry (528 B per
 * mapping), so the index allocates a node only while its memory, retired
 * nodes included, stays within 64 B per entry (the store's target) plus
 * @slack per store: pi_insert() says -ENOSPC otherwise and the mapping
 * goes to the B+tree, for good (entries never move between stores).  A
 * dense fill of 2^20 pages in random order passes through a sparse phase
 * (about 5.6 MiB over 64 B per entry after some 35,000 pages), hence
 * PI_SLACK_DEFAULT = 8 MiB.  That bounds what an insert may build, but
 * unmapping does not move entries: a store filled and then thinned to one
 * entry per leaf (or per chain of nodes) keeps them, up to 64 B x the
 * most entries it ever held + slack + one path, and a guest could repeat
 * that in domain after domain.  So the rule has a context-wide half too
 * (@pool, when the store belongs to a context): all indexes of the
 * context together take a node only while their memory stays within 64 B
 * per live mapping of the context plus the pool's slack.  Index memory
 * only grows by allocation, and live mappings never exceed the context's
 * max_mappings, so the context's indexes never hold more than 64 B x
 * max_mappings + the pool's slack (+ one path per writer racing on the
 * relaxed counters); docs/API.md states the figures.  Insert allocates
 * every node it needs before it links anything, so -ENOMEM leaves the
 * index unchanged.
 *
 * Lock-free readers.  pi_lookup_rcu() loads @top (acquire), then one
 * child pointer per level (acquire) and the leaf word (relaxed): no
 * versions, no retry.  Writers store slots and @top atomically; a new
 * subtree is built completely and published with one release store (a
 * parent slot or @top), so a reader that reaches a node sees it
 * initialised.  A leaf is unlinked only when empty and never written
 * afterwards, so a reader still inside it reads "absent", which was true
 * when it was unlinked; a present word it reads was present at that
 * instant.  Unlinked nodes are retired and freed after a grace period of
 * @rcu as in the B+tree (mapstore.c, "Memory reclamation"): batches of
 * PI_RETIRE_BATCH, freed at once when no reader is inside a read section,
 * polled otherwise, waited for only when retired memory passes
 * max(PI_RETIRE_MIN, 1/16 of the index) or on destroy.  The IOTLB fill
 * of a word read this way is validated by the domain's invalidation count
 * like any other look-up (domain.c, "Lock-free fills"): removals happen
 * inside __inval_begin()/__inval_end().
 */
#include "core/pageidx.h"
#include "core/rcu.h"
#include "base/util.h"

#include <errno.h>

#define NODE_SZ ((uint64_t)sizeof(struct pi_node))
#define ENTRY_BUDGET 64u           /* bytes per entry the rule allows */
#define PI_RETIRE_BATCH 16u
#define PI_RETIRE_MIN (128u << 10)
#define PI_RETIRE_SHIFT 4
#define TOP_HMASK ((uintptr_t)15)  /* height bits of @top */

_Static_assert(PI_MAX_HEIGHT <= TOP_HMASK, "height must fit @top");
_Static_assert(PI_BITS * PI_MAX_HEIGHT + PI_PAGE_SHIFT >= 64,
	       "the index must cover every page number");

/* ---- small helpers ------------------------------------------------------- */

static inline struct pi_node *top_root(uintptr_t top)
{
	return (struct pi_node *)(top & ~TOP_HMASK);
}

static inline unsigned top_height(uintptr_t top)
{
	return (unsigned)(top & TOP_HMASK);
}

/* idx() - the slot of page @pn in a node at level @lv. */
static inline unsigned idx(uint64_t pn, unsigned lv)
{
	return (unsigned)(pn >> (PI_BITS * lv)) & (PI_SLOTS - 1);
}

/* beyond() - whether @pn lies past what height @h covers. */
static inline bool beyond(uint64_t pn, unsigned h)
{
	return h < PI_MAX_HEIGHT && (pn >> (PI_BITS * h));
}

/* height_for() - the least height covering @pn. */
static unsigned height_for(uint64_t pn)
{
	unsigned h = 1;

	while (beyond(pn, h))
		h++;
	return h;
}

static inline struct pi_node *child(const struct pi_node *n, unsigned i)
{
	return (struct pi_node *)(uintptr_t)n->slot[i];
}

/* mask() - bits @a..@b (a <= b <= 63). */
static inline uint64_t mask(unsigned a, unsigned b)
{
	return (~0ull << a) & (~0ull >> (63 - b));
}

/* ---- retirement ---------------------------------------------------------- */

/* retire() - @n is unlinked: free it after a grace period. */
static void retire(struct pageidx *pi, struct pi_node *n)
{
	n->rnext = pi->retired;
	pi->retired = n;
	pi->nretired++;
	pi->retired_bytes += NODE_SZ;
}

/* free_list() - free the nodes of list @n (past their grace period). */
static void free_list(struct pageidx *pi, struct pi_node *n)
{
	struct pi_node *nx;

	for (; n; n = nx) {
		nx = n->rnext;
		pi->retired_bytes -= NODE_SZ;
		pi->host_bytes -= NODE_SZ;
		if (pi->pool)
			__atomic_fetch_sub(&pi->pool->bytes, NODE_SZ,
					   __ATOMIC_RELAXED);
		xfree(pi->alloc, n);
	}
}

/* pi_reclaim() - see pageidx.h and "Lock-free readers" at the top. */
void pi_reclaim(struct pageidx *pi, bool force)
{
	struct pi_node *w;

	if (!pi->retired && !pi->waiting)
		return;
	if (!pi->rcu ||
	    ((force || (!pi->waiting && pi->nretired >= PI_RETIRE_BATCH)) &&
	     rcu_quiet(pi->rcu))) {
		w = pi->waiting;
		pi->waiting = NULL;
		free_list(pi, w);
		w = pi->retired;
		pi->retired = NULL;
		pi->nretired = 0;
		free_list(pi, w);
		return;
	}
	if (pi->waiting) {
		if (force ||
		    (pi->retired_bytes > PI_RETIRE_MIN &&
		     pi->retired_bytes > pi->host_bytes >> PI_RETIRE_SHIFT))
			rcu_wait(pi->rcu, pi->ticket);
		else if (!rcu_poll(pi->rcu, pi->ticket))
			return;
		w = pi->waiting;
		pi->waiting = NULL;
		free_list(pi, w);
	}
	if (!pi->retired || (!force && pi->nretired < PI_RETIRE_BATCH))
		return;
	pi->waiting = pi->retired;
	pi->retired = NULL;
	pi->nretired = 0;
	pi->ticket = rcu_ticket(pi->rcu);
	if (force) {
		rcu_wait(pi->rcu, pi->ticket);
		w = pi->waiting;
		pi->waiting = NULL;
		free_list(pi, w);
	}
}

/* ---- life cycle ---------------------------------------------------------- */

/* pi_init() - see pageidx.h. */
void pi_init(struct pageidx *pi, const struct viommu_allocator *alloc,
	     struct rcu *rcu, uint64_t slack)
{
	memset(pi, 0, sizeof(*pi));
	pi->alloc = alloc;
	pi->rcu = rcu;
	pi->slack = slack;
}

/* pi_reinit() - see pageidx.h. */
void pi_reinit(struct pageidx *pi, const struct viommu_allocator *alloc,
	       struct rcu *rcu, uint64_t slack)
{
	STORE_RELEASE(pi->top, (uintptr_t)0);
	pi->alloc = alloc;
	pi->rcu = rcu;
	pi->count = pi->host_bytes = 0;
	pi->slack = slack;
	pi->keep = NULL;
	pi->keep_pn = 0;
	pi->retired = pi->waiting = NULL;
	pi->ticket = pi->retired_bytes = 0;
	pi->nretired = 0;
}

/* retire_all() - retire @n (at level @lv) and everything below it. */
static void retire_all(struct pageidx *pi, struct pi_node *n, unsigned lv)
{
	if (lv)
		for (uint64_t b = n->bitmap; b; b &= b - 1)
			retire_all(pi, child(n, (unsigned)__builtin_ctzll(b)),
				   lv - 1);
	retire(pi, n);
}

/* pi_destroy() - see pageidx.h; unpublishes the root first. */
void pi_destroy(struct pageidx *pi)
{
	uintptr_t top = pi->top;

	STORE_RELEASE(pi->top, (uintptr_t)0);
	if (top)
		retire_all(pi, top_root(top), top_height(top) - 1);
	pi->count = 0;
	pi->keep = NULL;
	pi_reclaim(pi, true);
}

/* ---- writers ------------------------------------------------------------- */

/* leaf_of() - the leaf that would hold page @pn (writer side), or NULL. */
static struct pi_node *leaf_of(const struct pageidx *pi, uint64_t pn)
{
	struct pi_node *n = top_root(pi->top);
	unsigned h = top_height(pi->top);

	if (!n || beyond(pn, h))
		return NULL;
	for (unsigned lv = h - 1; lv > 0 && n; lv--)
		n = child(n, idx(pn, lv));
	return n;
}

/* pi_get() - see pageidx.h. */
int pi_get(const struct pageidx *pi, uint64_t pn, uint64_t *w)
{
	struct pi_node *n = leaf_of(pi, pn);
	uint64_t v;

	if (!n)
		return -ENOENT;
	v = n->slot[idx(pn, 0)];
	if (!(v & 1))
		return -ENOENT;
	*w = v;
	return 0;
}

/*
 * next_in() - the lowest present page in [lo, hi] below @n (level @lv,
 * first page @base); lo and hi lie in @n's range.
 */
static int next_in(const struct pi_node *n, unsigned lv, uint64_t base,
		   uint64_t lo, uint64_t hi, uint64_t *pn, uint64_t *w)
{
	unsigned sh = PI_BITS * lv;
	uint64_t bits = n->bitmap & mask((unsigned)((lo - base) >> sh),
					 (unsigned)((hi - base) >> sh));

	for (; bits; bits &= bits - 1) {
		unsigned i = (unsigned)__builtin_ctzll(bits);
		uint64_t cb = base + ((uint64_t)i << sh);

		if (!lv) {
			*pn = cb;
			*w = n->slot[i];
			return 0;
		}
		if (!next_in(child(n, i), lv - 1, cb, MAX(lo, cb),
			     MIN(hi, cb + ((1ull << sh) - 1)), pn, w))
			return 0;
	}
	return -ENOENT;
}

/* pi_next() - see pageidx.h. */
int pi_next(const struct pageidx *pi, uint64_t lo, uint64_t hi, uint64_t *pn,
	    uint64_t *w)
{
	struct pi_node *root = top_root(pi->top);
	unsigned h = top_height(pi->top);

	if (!pi->count || lo > hi || beyond(lo, h))
		return -ENOENT;
	if (beyond(hi, h))
		hi = (1ull << (PI_BITS * h)) - 1;
	return next_in(root, h - 1, 0, lo, hi, pn, w);
}

/*
 * unlink_leaf() - unlink the empty leaf covering @pn and the ancestors
 * that it leaves empty; retire them.
 */
static void unlink_leaf(struct pageidx *pi, uint64_t pn)
{
	struct pi_node *path[PI_MAX_HEIGHT], *n = top_root(pi->top);
	unsigned h = top_height(pi->top), lv;

	for (lv = h - 1; lv > 0; lv--) {
		path[lv] = n;
		n = child(n, idx(pn, lv));
	}
	retire(pi, n);
	for (lv = 1; lv < h; lv++) {
		n = path[lv];
		WRITE_ONCE(n->slot[idx(pn, lv)], 0);
		n->bitmap &= ~(1ull << idx(pn, lv));
		if (n->bitmap)
			return;
		retire(pi, n);
	}
	/* The root emptied: the index has no node left. */
	STORE_RELEASE(pi->top, (uintptr_t)0);
}

/* pi_remove() - see pageidx.h; keeps the emptied leaf (see "Fill"). */
int pi_remove(struct pageidx *pi, uint64_t pn, uint64_t *w)
{
	struct pi_node *n = leaf_of(pi, pn);
	unsigned i = idx(pn, 0);
	uint64_t v;

	if (!n)
		return -ENOENT;
	v = n->slot[i];
	if (!(v & 1))
		return -ENOENT;
	WRITE_ONCE(n->slot[i], 0);
	n->bitmap &= ~(1ull << i);
	pi->count--;
	if (w)
		*w = v;
	if (!n->bitmap) {
		if (pi->keep)
			unlink_leaf(pi, pi->keep_pn);
		pi->keep = n;
		pi->keep_pn = pn;
	}
	return 0;
}

/* node_alloc() - a zeroed node; NULL and *@ret on failure. */
static struct pi_node *node_alloc(struct pageidx *pi, int *ret)
{
	struct pi_node *n = xalloc(pi->alloc, sizeof(*n));

	if (!n) {
		*ret = -ENOMEM;
		return NULL;
	}
	if ((uintptr_t)n & TOP_HMASK) { /* no room for the height in @top */
		xfree(pi->alloc, n);
		*ret = -ENOSPC;
		return NULL;
	}
	memset(n, 0, sizeof(*n));
	return n;
}

/*
 * pi_insert() - see pageidx.h.  Finds where @pn's path leaves the nodes
 * that exist (a slot at level @alv of an existing node @att, of a new
 * root, or the top itself), allocates what is missing, builds it
 * unpublished and publishes it with one release store.
 */
int pi_insert(struct pageidx *pi, uint64_t pn, uint64_t w)
{
	struct pi_node *sp[2 * PI_MAX_HEIGHT], *root = top_root(pi->top);
	struct pi_node *n = root, *att = NULL, *prev = NULL, *c;
	unsigned h = top_height(pi->top), hn, alv = 0, need, lv, k;
	int ret = 0;

	hn = MAX(h, height_for(pn));
	if (!root) {
		alv = hn;
	} else {
		for (lv = hn - 1; lv >= h; lv--)
			if (idx(pn, lv)) {
				alv = lv;
				break;
			}
		for (lv = h - 1; !alv && lv > 0; lv--) {
			c = child(n, idx(pn, lv));
			if (!c) {
				alv = lv;
				att = n;
			}
			n = c;
		}
	}
	need = alv + (root ? hn - h : 0);
	if (!need) {
		/* The leaf exists: @n. */
		unsigned i = idx(pn, 0);

		if (n->slot[i] & 1)
			return -EEXIST;
		WRITE_ONCE(n->slot[i], w);
		n->bitmap |= 1ull << i;
		if (n == pi->keep)
			pi->keep = NULL;
		pi->count++;
		return 0;
	}
	/* The memory rule (see "Memory"): this store's, the context's. */
	if (pi->host_bytes + need * NODE_SZ >
		    ENTRY_BUDGET * (pi->count + 1) + pi->slack ||
	    (pi->pool && READ_ONCE(pi->pool->bytes) + need * NODE_SZ >
				 ENTRY_BUDGET * READ_ONCE(*pi->pool->entries) +
					 pi->pool->slack))
		return -ENOSPC;
	for (k = 0; k < need; k++) {
		sp[k] = node_alloc(pi, &ret);
		if (!sp[k]) {
			while (k--)
				xfree(pi->alloc, sp[k]);
			return ret;
		}
	}
	pi->host_bytes += need * NODE_SZ;
	if (pi->pool)
		ATOMIC_ADD(pi->pool->bytes, need * NODE_SZ);
	/* The missing chain, levels alv - 1 .. 0 (sp[0] the leaf). */
	for (lv = 0; lv < alv; lv++) {
		c = sp[lv];
		c->slot[idx(pn, lv)] = lv ? (uint64_t)(uintptr_t)prev : w;
		c->bitmap = 1ull << idx(pn, lv);
		prev = c;
	}
	if (!root) {
		STORE_RELEASE(pi->top, (uintptr_t)prev | hn);
	} else if (hn > h) {
		struct pi_node *chain = prev;

		/* New roots at levels h .. hn - 1, the old root below. */
		prev = root;
		for (lv = h, k = alv; lv < hn; lv++, k++) {
			c = sp[k];
			c->slot[0] = (uint64_t)(uintptr_t)prev;
			c->bitmap = 1;
			if (lv == alv) {
				c->slot[idx(pn, lv)] = (uint64_t)(uintptr_t)chain;
				c->bitmap |= 1ull << idx(pn, lv);
			}
			prev = c;
		}
		STORE_RELEASE(pi->top, (uintptr_t)prev | hn);
	} else {
		STORE_RELEASE(att->slot[idx(pn, alv)], (uint64_t)(uintptr_t)prev);
		att->bitmap |= 1ull << idx(pn, alv);
	}
	pi->count++;
	return 0;
}

/* ---- lock-free readers --------------------------------------------------- */

/* pi_lookup_rcu() - see pageidx.h and "Lock-free readers" at the top. */
int pi_lookup_rcu(const struct pageidx *pi, uint64_t pn, uint64_t *w)
{
	uintptr_t top = LOAD_ACQUIRE(pi->top);
	const struct pi_node *n = top_root(top);
	unsigned h = top_height(top);
	uint64_t v;

	if (!n || beyond(pn, h))
		return -ENOENT;
	for (unsigned lv = h - 1; lv > 0; lv--) {
		n = (const struct pi_node *)(uintptr_t)LOAD_ACQUIRE(
			n->slot[idx(pn, lv)]);
		if (!n)
			return -ENOENT;
	}
	v = READ_ONCE(n->slot[idx(pn, 0)]);
	if (!(v & 1))
		return -ENOENT;
	*w = v;
	return 0;
}

/* ---- self-check ---------------------------------------------------------- */

struct pi_chk {
	const struct pageidx *pi;
	uint64_t entries, nodes;
	bool keep_seen;
};

/*
 * check_node() - verify @n at level @lv; *@sub receives the entries below.
 * A subtree without entries must hold the kept leaf.
 */
static int check_node(struct pi_chk *k, const struct pi_node *n, unsigned lv,
		      uint64_t *sub, bool *has_keep)
{
	uint64_t bits = 0, below = 0, s;
	bool kp = n == k->pi->keep, ck;

	k->nodes++;
	if ((uintptr_t)n & TOP_HMASK)
		return -EUCLEAN;
	for (unsigned i = 0; i < PI_SLOTS; i++) {
		if (!n->slot[i])
			continue;
		bits |= 1ull << i;
		if (!lv) {
			if (!(n->slot[i] & 1))
				return -EUCLEAN;
			below++;
			continue;
		}
		if (check_node(k, child(n, i), lv - 1, &s, &ck))
			return -EUCLEAN;
		below += s;
		kp |= ck;
	}
	if (bits != n->bitmap || (!below && !kp) || (kp && !lv && below))
		return -EUCLEAN;
	if (n == k->pi->keep) {
		if (lv || k->keep_seen)
			return -EUCLEAN;
		k->keep_seen = true;
	}
	k->entries += lv ? 0 : below;
	*sub = below;
	*has_keep = kp;
	return 0;
}

/* pi_check() - see pageidx.h. */
int pi_check(const struct pageidx *pi)
{
	struct pi_chk k = { .pi = pi };
	uint64_t retired = 0, sub;
	const struct pi_node *r;
	bool kp;
	uint32_t nr = 0;

	for (r = pi->retired; r; r = r->rnext, nr++)
		retired += NODE_SZ;
	if (nr != pi->nretired)
		return -EUCLEAN;
	for (r = pi->waiting; r; r = r->rnext)
		retired += NODE_SZ;
	if (retired != pi->retired_bytes)
		return -EUCLEAN;
	if (!pi->top)
		return pi->count || pi->keep ||
		       pi->host_bytes != pi->retired_bytes ? -EUCLEAN : 0;
	if (!top_height(pi->top) || top_height(pi->top) > PI_MAX_HEIGHT)
		return -EUCLEAN;
	if (check_node(&k, top_root(pi->top), top_height(pi->top) - 1, &sub,
		       &kp))
		return -EUCLEAN;
	if (k.entries != pi->count || k.keep_seen != !!pi->keep ||
	    k.nodes * NODE_SZ + pi->retired_bytes != pi->host_bytes)
		return -EUCLEAN;
	if (pi->keep) {
		uint64_t w;

		/* @keep_pn leads to @keep. */
		const struct pi_node *n = top_root(pi->top);

		for (unsigned lv = top_height(pi->top) - 1; n && lv > 0; lv--)
			n = child(n, idx(pi->keep_pn, lv));
		if (n != pi->keep || !pi_get(pi, pi->keep_pn, &w))
			return -EUCLEAN;
	}
	return 0;
}
