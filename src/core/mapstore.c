/*
 * mapstore.c - the B+tree of a PAGING domain's mapping store: the
 * non-overlapping IOVA ranges the page index (pageidx.c) does not hold,
 * keyed by their start (calls: mapstore_node.h; how the two make one store:
 * mapstore.h, mapstore_join.c).
 *
 * Shape.  Leaves hold up to LEAF_CAP entries in struct-of-arrays form and
 * are doubly linked in key order.  Internal nodes hold up to NODE_CAP
 * children; key[i] (i >= 1) routes: every start in child i is >= key[i]
 * and < key[i + 1]; key[0] is unused.  Separators are not refreshed when
 * entries go away, so the predecessor of x is either in the leaf x routes
 * to or is the last entry of the leaf before it.  Any start present in the
 * tree routes exactly to its own leaf.  No node has a parent pointer: every
 * descent records its path in a struct ms_path.
 *
 * Fill.  Every node except the rightmost of its level holds at least half
 * its capacity (LEAF_MIN, NODE_MIN); the rightmost may hold as little as
 * one, and the rightmost leaf (unless it is the root) none: an emptied
 * rightmost leaf stays, so a guest mapping and unmapping one buffer past
 * all its other mappings does not allocate and retire a leaf per pair
 * (each retired node waits for a grace period).  So a full rightmost node receiving an append splits unevenly (the
 * old node stays full, the new one takes only the appended item) and
 * stores filled in ascending order stay ~100% dense.  Elsewhere a full
 * leaf first tries to pass entries to a sibling with room (B*-tree
 * style), which keeps descending runs and runs below other entries dense.
 * Removal merges an underfull node into a sibling or borrows from it,
 * frees emptied nodes and collapses a root with a single child, so no node
 * is ever empty and memory stays proportional to the number of entries.
 *
 * Depth.  With height h >= 2 the root has at least two children; its
 * first child roots a subtree of height h - 1 containing no rightmost node,
 * so holding at least 16^(h-1) entries (both minimums are >= 16).  A store
 * holds fewer than 2^64 = 16^16 entries, hence h <= 16 = MAX_DEPTH and a
 * fixed path array always suffices; insert still refuses to grow past it.
 *
 * Memory.  Insert allocates every node its splits may need before it
 * changes anything, so -ENOMEM leaves the store untouched.  Nothing else
 * allocates.
 *
 * Lock-free readers.  mt_lookup_rcu() (mapstore_rcu.c; node layout in
 * mapstore_node.h) runs without the domain lock, in
 * the style of optimistic lock coupling.  Every node (and the store, for
 * root and height) carries a version: a writer makes it odd before it
 * changes anything a reader reads in that node (wtouch()) and even again
 * once the whole call's changes are in place (wdone()), so a reader that
 * read a version v, then the node's contents, then v again, read one
 * consistent state of the node.  A reader goes down reading a node's
 * version, then the child pointer, then re-checking the version before it
 * follows the pointer; it re-checks the parent's version after it has read
 * the child's.  A node's key range shrinks only when the node itself
 * changes (entries or children moving out), so each node it reaches owned
 * the key when it was reached, and the leaf's answer is the store's at the
 * instant of its last check.  Any odd or changed version sends the reader
 * back to the root; after MS_READ_TRIES it gives up (-EAGAIN) and the
 * caller takes the lock.  Every field a reader reads is written with an
 * atomic store (and child, prev and root pointers with release, read with
 * acquire, so a node is initialised before it can be reached), except
 * that leaf entries move with memmove() outside TSan builds (see
 * leaf_move()); readers clamp counts and depths, so a torn view is always
 * safe to search.
 *
 * Memory reclamation.  A node a writer unlinks (merge, empty leaf, root
 * collapse, destroy) is retired: its version stays odd forever, so
 * readers that reach it retry, and it goes on ms->retired.  It is freed
 * only once a grace period of ms->rcu that began after its unlink is over,
 * i.e. every read section that could hold a pointer to it has ended
 * (rcu.h states the rule).  Writers do not wait for that as a rule: when
 * RETIRE_BATCH nodes have gathered (or the store became empty) and no
 * reader is inside a read section at that moment (rcu_quiet(), one scan
 * of the counters), they are freed at once; otherwise they become the
 * @waiting batch with an rcu_ticket(), and every later writer call polls the ticket without
 * blocking and frees the batch once it is over.  A writer waits
 * (rcu_wait()) only when the retired nodes hold more than RETIRE_MIN
 * bytes and more than a 16th of the store's memory while a batch is still
 * waiting (a reader preempted inside its read section holds a grace
 * period up for a whole time slice), when the store becomes empty, and in
 * mt_destroy().  So a hostile guest that unmaps while another vCPU's DMA
 * translates can cost readers a retry, never a use-after-free, and the
 * memory waiting to be freed stays within max(RETIRE_MIN, 1/16 of the
 * store) plus one batch (counted in host_bytes meanwhile).
 *
 * Bytes.  The sum of sizes reaches 2^64 only when the entries cover the
 * whole IOVA space.  ms->bytes then reads UINT64_MAX and the root's @full
 * flag keeps the missing unit, so bytes is exact again after a removal.
 * (Nothing can be inserted into a full store, so the root stays the same
 * node until the next removal.)
 */
#include "core/mapstore_node.h"
#include "core/rcu.h"
#include "base/util.h"

#include <errno.h>
#include <string.h>

#define RETIRE_BATCH 16u  /* retired nodes per grace period */
#define RETIRE_MIN (128u << 10) /* retired bytes a writer never waits for */
#define RETIRE_SHIFT 4    /* ... nor for a 16th of the store's memory */

/* Internal nodes from the root (level 0) down, and the child taken. */
struct ms_path {
	struct ms_node *node[MAX_DEPTH];
	uint32_t idx[MAX_DEPTH];
};

/* Nodes preallocated by an insert. */
struct ms_spare {
	struct ms_leaf *leaf;
	struct ms_node *node[MAX_DEPTH + 1];
	uint32_t nr;
};

/* ---- small helpers ------------------------------------------------------- */

/* as_leaf() - a child pointer (or the root) known to be a leaf. */
static struct ms_leaf *as_leaf(void *p)
{
	return p;
}

/* count_le() - how many of the sorted @a[0..n) are <= @x (branch-free). */
static uint32_t count_le(const uint64_t *a, uint32_t n, uint64_t x)
{
	const uint64_t *base = a;

	if (!n)
		return 0;
	while (n > 1) {
		uint32_t half = n / 2;

		base = base[half - 1] <= x ? base + half : base;
		n -= half;
	}
	return (uint32_t)(base - a) + (*base <= x);
}

/* count_lt() - how many of the sorted @a[0..n) are < @x. */
static uint32_t count_lt(const uint64_t *a, uint32_t n, uint64_t x)
{
	return x ? count_le(a, n, x - 1) : 0;
}

/* leaf_get() - copy entry @i of @l to *@e. */
static void leaf_get(const struct ms_leaf *l, uint32_t i, struct ms_entry *e)
{
	e->start = l->start[i];
	e->last = l->last[i];
	e->gpa = l->gpa[i];
	e->prot = l->prot[i];
}

/*
 * Leaf entries may be moved with memmove() instead of one atomic store per
 * element (a third of a page-sized map or unmap's instructions): they are
 * data, never followed as pointers, and every reader that reads them checks
 * the leaf's version afterwards, so a value torn by a concurrent move is
 * thrown away (and a torn key only picks a wrong index, which readers
 * clamp).  Under ThreadSanitizer the element-wise atomic stores stay, so
 * the race detector sees only the accesses the design calls racy.
 */
#if defined(__SANITIZE_THREAD__)
#define MS_LEAF_ATOMIC_MOVE 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MS_LEAF_ATOMIC_MOVE 1
#endif
#endif

/*
 * mv64() / mv32() / mvptr() - memmove() of @cnt elements with one atomic
 * store each (readers may be reading the destination).
 */
static void mv64(uint64_t *d, const uint64_t *s, uint32_t cnt)
{
	if (d < s)
		for (uint32_t i = 0; i < cnt; i++)
			SET(d[i], s[i]);
	else if (d > s)
		for (uint32_t i = cnt; i--;)
			SET(d[i], s[i]);
}

#ifdef MS_LEAF_ATOMIC_MOVE
static void mv32(uint32_t *d, const uint32_t *s, uint32_t cnt)
{
	if (d < s)
		for (uint32_t i = 0; i < cnt; i++)
			SET(d[i], s[i]);
	else if (d > s)
		for (uint32_t i = cnt; i--;)
			SET(d[i], s[i]);
}
#endif

static void mvptr(void **d, void *const *s, uint32_t cnt)
{
	if (d < s)
		for (uint32_t i = 0; i < cnt; i++)
			SETP(d[i], s[i]);
	else if (d > s)
		for (uint32_t i = cnt; i--;)
			SETP(d[i], s[i]);
}

/* leaf_move() - move @cnt entries from @s[si] to @d[di] (may overlap). */
static void leaf_move(struct ms_leaf *d, uint32_t di, struct ms_leaf *s,
		      uint32_t si, uint32_t cnt)
{
#ifdef MS_LEAF_ATOMIC_MOVE
	mv64(&d->start[di], &s->start[si], cnt);
	mv64(&d->last[di], &s->last[si], cnt);
	mv64(&d->gpa[di], &s->gpa[si], cnt);
	mv32(&d->prot[di], &s->prot[si], cnt);
#else
	if (!cnt)
		return;
	memmove(&d->start[di], &s->start[si], cnt * sizeof(d->start[0]));
	memmove(&d->last[di], &s->last[si], cnt * sizeof(d->last[0]));
	memmove(&d->gpa[di], &s->gpa[si], cnt * sizeof(d->gpa[0]));
	memmove(&d->prot[di], &s->prot[si], cnt * sizeof(d->prot[0]));
#endif
}

/* setn() - a node's count, as readers see it. */
static void setn(void *p, uint32_t n)
{
	SET(((struct ms_hdr *)p)->n, n);
}

/* leaf_put() - insert @e at position @i of a non-full leaf. */
static void leaf_put(struct ms_leaf *l, uint32_t i, const struct ms_entry *e)
{
	leaf_move(l, i + 1, l, i, l->h.n - i);
	SET(l->start[i], e->start);
	SET(l->last[i], e->last);
	SET(l->gpa[i], e->gpa);
	SET(l->prot[i], e->prot);
	setn(l, l->h.n + 1);
}

/* node_move() - move @cnt keys and children from @s[si] to @d[di]. */
static void node_move(struct ms_node *d, uint32_t di, struct ms_node *s,
		      uint32_t si, uint32_t cnt)
{
	mv64(&d->key[di], &s->key[si], cnt);
	mvptr(&d->child[di], &s->child[si], cnt);
}

/* node_put() - insert child @c with separator @key at @i (>= 1). */
static void node_put(struct ms_node *nd, uint32_t i, uint64_t key, void *c)
{
	node_move(nd, i + 1, nd, i, nd->h.n - i);
	SET(nd->key[i], key);
	SETP(nd->child[i], c);
	setn(nd, nd->h.n + 1);
}

/* node_drop() - remove child @i (and the separator that routes to it). */
static void node_drop(struct ms_node *nd, uint32_t i)
{
	node_move(nd, i, nd, i + 1, nd->h.n - i - 1);
	setn(nd, nd->h.n - 1);
}

/* leaf_new() - an empty, unlinked leaf; NULL on allocation failure. */
static struct ms_leaf *leaf_new(struct ms_tree *ms)
{
	struct ms_leaf *l = xalloc(ms->alloc, sizeof(*l));

	if (!l)
		return NULL;
	memset(&l->h, 0, sizeof(l->h));
	l->h.leaf = 1;
	l->prev = l->next = NULL;
	ms->host_bytes += sizeof(*l);
	return l;
}

/* node_new() - an empty internal node; NULL on allocation failure. */
static struct ms_node *node_new(struct ms_tree *ms)
{
	struct ms_node *nd = xalloc(ms->alloc, sizeof(*nd));

	if (!nd)
		return NULL;
	memset(&nd->h, 0, sizeof(nd->h));
	ms->host_bytes += sizeof(*nd);
	return nd;
}

/*
 * leaf_free() - release a leaf that readers cannot reach: never published,
 * or retired and past a grace period.
 */
static void leaf_free(struct ms_tree *ms, struct ms_leaf *l)
{
	ms->host_bytes -= sizeof(*l);
	xfree(ms->alloc, l);
}

/* node_free() - as leaf_free(), for an internal node (not its children). */
static void node_free(struct ms_tree *ms, struct ms_node *nd)
{
	ms->host_bytes -= sizeof(*nd);
	xfree(ms->alloc, nd);
}

/* root_full() - the root's "covers all 2^64 bytes" flag. */
static uint32_t *root_full(const struct ms_tree *ms)
{
	return &((struct ms_hdr *)ms->root)->full;
}

/* ---- writers: versions and retirement ------------------------------------ */

/*
 * wtouch() - make @p's version odd before this call changes it (once per
 * call: an odd version means touched already, or retired).  Readers that
 * meet it from now on retry.
 */
static void wtouch(struct ms_tree *ms, void *p)
{
	struct ms_hdr *h = p;

	if (h->seq & 1)
		return;
	SET(h->seq, h->seq + 1);
	/* Barrier: the odd version is visible before any change to @p. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	ms->touched[ms->ntouched++] = h;
}

/* wtouch_top() - wtouch() for the store's root and height. */
static void wtouch_top(struct ms_tree *ms)
{
	if (ms->seq & 1)
		return;
	SET(ms->seq, ms->seq + 1);
	/* Barrier: the odd version is visible before the new root. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

/*
 * wdone() - publish this call's changes: every touched node (and the top)
 * gets an even version again.  Retired nodes stay odd.
 */
static void wdone(struct ms_tree *ms)
{
	for (uint32_t i = 0; i < ms->ntouched; i++) {
		struct ms_hdr *h = ms->touched[i];

		/* Barrier: release, the changes before the even version. */
		if (!h->dead)
			STORE_RELEASE(h->seq, h->seq + 1);
	}
	ms->ntouched = 0;
	if (ms->seq & 1)
		STORE_RELEASE(ms->seq, ms->seq + 1); /* Barrier: as above. */
}

/*
 * retire() - @p has been unlinked (no published pointer leads to it any
 * more once the call's changes are in place): make its version odd for
 * good and queue it for freeing after a grace period.
 */
static void retire(struct ms_tree *ms, void *p)
{
	struct ms_hdr *h = p;

	if (!(h->seq & 1)) {
		SET(h->seq, h->seq + 1);
		/* Barrier: readers that see the unlink's effects retry. */
		__atomic_thread_fence(__ATOMIC_RELEASE);
	}
	h->dead = 1;
	h->rnext = ms->retired;
	ms->retired = h;
	ms->nretired++;
	ms->retired_bytes += h->leaf ? sizeof(struct ms_leaf) :
				       sizeof(struct ms_node);
}

/* free_list() - free the nodes of list @h (past their grace period). */
static void free_list(struct ms_tree *ms, struct ms_hdr *h)
{
	struct ms_hdr *nx;

	for (; h; h = nx) {
		nx = h->rnext;
		ms->retired_bytes -= h->leaf ? sizeof(struct ms_leaf) :
					       sizeof(struct ms_node);
		if (h->leaf)
			leaf_free(ms, (struct ms_leaf *)h);
		else
			node_free(ms, (struct ms_node *)h);
	}
}

/*
 * reclaim() - free retired nodes no reader can hold any more (see "Memory
 * reclamation" at the top); with @force, all of them, waiting if need be.
 * Without an rcu there are no lock-free readers: free at once.  Called
 * after wdone(), so every unlink is published.
 */
static void reclaim(struct ms_tree *ms, bool force)
{
	struct ms_hdr *w;

	if (!ms->rcu) {
		free_list(ms, ms->retired);
		ms->retired = NULL;
		ms->nretired = 0;
		return;
	}
	/*
	 * When a batch would be set waiting, or everything must go: if no
	 * reader is inside a read section now, the grace period is already
	 * over for every retired node (all unlinked and published before
	 * this call), so free them without a ticket.
	 */
	if ((ms->retired || ms->waiting) &&
	    (force || (!ms->waiting && ms->nretired >= RETIRE_BATCH)) &&
	    rcu_quiet(ms->rcu)) {
		w = ms->waiting;
		ms->waiting = NULL;
		free_list(ms, w);
		w = ms->retired;
		ms->retired = NULL;
		ms->nretired = 0;
		free_list(ms, w);
		return;
	}
	if (ms->waiting) {
		if (force || (ms->retired_bytes > RETIRE_MIN &&
			      ms->retired_bytes > ms->host_bytes >> RETIRE_SHIFT))
			rcu_wait(ms->rcu, ms->ticket);
		else if (!rcu_poll(ms->rcu, ms->ticket))
			return;
		w = ms->waiting;
		ms->waiting = NULL;
		free_list(ms, w);
	}
	if (!ms->retired || (!force && ms->nretired < RETIRE_BATCH))
		return;
	ms->waiting = ms->retired;
	ms->retired = NULL;
	ms->nretired = 0;
	ms->ticket = rcu_ticket(ms->rcu);
	if (force) {
		rcu_wait(ms->rcu, ms->ticket);
		w = ms->waiting;
		ms->waiting = NULL;
		free_list(ms, w);
	}
}

/*
 * descend() - the leaf @x routes to; records the internal nodes and child
 * indices in @p when it is not NULL.  The store must not be empty.
 */
static struct ms_leaf *descend(const struct ms_tree *ms, uint64_t x,
			       struct ms_path *p)
{
	struct ms_node *nd = ms->root;

	for (uint32_t lv = 0; lv + 1 < ms->height; lv++) {
		uint32_t i;

		prefetch_keys(nd->key, sizeof(nd->key));
		i = count_le(nd->key + 1, nd->h.n - 1, x);

		if (p) {
			p->node[lv] = nd;
			p->idx[lv] = i;
		}
		nd = nd->child[i];
	}
	prefetch_keys(as_leaf(nd)->start, sizeof(as_leaf(nd)->start));
	return as_leaf(nd);
}

/*
 * data_next() - the leaf after @l if it holds entries: only the rightmost
 * leaf may be empty (see "Fill"), and it has nothing to offer.
 */
static struct ms_leaf *data_next(const struct ms_leaf *l)
{
	return l->next && l->next->h.n ? l->next : NULL;
}

/*
 * is_rightmost() - whether the node at @level of @p is the last of its
 * level (every ancestor took its last child).
 */
static int is_rightmost(const struct ms_path *p, uint32_t level)
{
	for (uint32_t lv = 0; lv < level; lv++)
		if (p->idx[lv] != p->node[lv]->h.n - 1)
			return 0;
	return 1;
}

/*
 * seek() - the first entry whose last is >= @x: either the entry holding
 * @x or the first one after it.  Return: its leaf with *@idx; NULL if no
 * such entry.
 */
static struct ms_leaf *seek(const struct ms_tree *ms, uint64_t x,
			    uint32_t *idx)
{
	struct ms_leaf *l, *pv;
	uint32_t i;

	if (!ms->root)
		return NULL;
	l = descend(ms, x, NULL);
	i = count_le(l->start, l->h.n, x);
	if (i > 0) {
		if (l->last[i - 1] >= x) {
			*idx = i - 1;
			return l;
		}
	} else {
		pv = l->prev;
		if (pv && pv->last[pv->h.n - 1] >= x) {
			*idx = pv->h.n - 1;
			return pv;
		}
	}
	if (i == l->h.n) {
		l = data_next(l);
		i = 0;
	}
	*idx = i;
	return l;
}

/* ---- life cycle ---------------------------------------------------------- */

/* mt_init() - see mapstore_node.h. */
void mt_init(struct ms_tree *ms, const struct viommu_allocator *alloc,
	     struct rcu *rcu)
{
	memset(ms, 0, sizeof(*ms));
	ms->alloc = alloc;
	ms->rcu = rcu;
}

/* mt_reinit() - see mapstore_node.h. */
void mt_reinit(struct ms_tree *ms, const struct viommu_allocator *alloc,
	       struct rcu *rcu)
{
	/*
	 * Field by field, not memset(): on a reused store, stale lock-free
	 * readers may still load root, height and seq (atomically).  The
	 * version keeps counting, so they see a change.
	 */
	SETP(ms->root, NULL);
	SET(ms->height, 0);
	SET(ms->seq, ms->seq + (ms->seq & 1));
	ms->alloc = alloc;
	ms->rcu = rcu;
	ms->count = ms->bytes = ms->host_bytes = 0;
	ms->retired = ms->waiting = NULL;
	ms->ticket = 0;
	ms->nretired = ms->ntouched = 0;
	ms->retired_bytes = 0;
}

/* retire_subtree() - retire @nd and everything below; depth 1: a leaf. */
static void retire_subtree(struct ms_tree *ms, void *nd, uint32_t depth)
{
	struct ms_node *in = nd;

	if (depth > 1)
		for (uint32_t i = 0; i < in->h.n; i++)
			retire_subtree(ms, in->child[i], depth - 1);
	retire(ms, nd);
}

/*
 * mt_destroy() - see mapstore_node.h; host_bytes drops to 0.  Unpublishes the
 * root first, so the grace period covers every reader still inside.
 */
void mt_destroy(struct ms_tree *ms)
{
	void *root = ms->root;
	uint32_t height = ms->height;

	wtouch_top(ms);
	SETP(ms->root, NULL);
	SET(ms->height, 0);
	wdone(ms);
	if (root)
		retire_subtree(ms, root, height);
	reclaim(ms, true);
	ms->count = 0;
	ms->bytes = 0;
}

/* ---- queries ------------------------------------------------------------- */

/* mt_lookup() - see mapstore_node.h: one descent, then at most one step left. */
int mt_lookup(const struct ms_tree *ms, uint64_t iova, struct ms_entry *out)
{
	uint32_t i;
	struct ms_leaf *l = seek(ms, iova, &i);

	if (!l || l->start[i] > iova)
		return -ENOENT;
	leaf_get(l, i, out);
	return 0;
}

/*
 * mt_first_overlap() - see mapstore_node.h.  An inverted range (start > last)
 * gives -EINVAL, here and in mt_walk().
 */
int mt_first_overlap(const struct ms_tree *ms, uint64_t start, uint64_t last,
		     struct ms_entry *out)
{
	uint32_t i;
	struct ms_leaf *l;

	if (start > last)
		return -EINVAL;
	l = seek(ms, start, &i);
	if (!l || l->start[i] > last)
		return -ENOENT;
	leaf_get(l, i, out);
	return 0;
}

/* mt_walk() - see mapstore_node.h; follows the leaf links after one descent. */
int mt_walk(const struct ms_tree *ms, uint64_t start, uint64_t last,
	    int (*fn)(void *opaque, const struct ms_entry *e), void *opaque)
{
	struct ms_entry e;
	uint32_t i;
	struct ms_leaf *l;
	int ret;

	if (start > last)
		return -EINVAL;
	for (l = seek(ms, start, &i); l; l = l->next, i = 0) {
		for (; i < l->h.n; i++) {
			if (l->start[i] > last)
				return 0;
			leaf_get(l, i, &e);
			ret = fn(opaque, &e);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* ---- insert -------------------------------------------------------------- */

/*
 * overlaps() - whether @e meets its would-be predecessor or successor when
 * inserted at @pos of @l.
 */
static int overlaps(const struct ms_leaf *l, uint32_t pos,
		    const struct ms_entry *e)
{
	const struct ms_leaf *pv = l->prev, *nx = data_next(l);

	if (pos > 0 && l->last[pos - 1] >= e->start)
		return 1;
	if (pos == 0 && pv && pv->last[pv->h.n - 1] >= e->start)
		return 1;
	if (pos < l->h.n && l->start[pos] <= e->last)
		return 1;
	if (pos == l->h.n && nx && nx->start[0] <= e->last)
		return 1;
	return 0;
}

/* spare_release() - free the unused preallocated nodes. */
static void spare_release(struct ms_tree *ms, struct ms_spare *sp)
{
	if (sp->leaf)
		leaf_free(ms, sp->leaf);
	for (uint32_t i = 0; i < sp->nr; i++)
		node_free(ms, sp->node[i]);
	sp->leaf = NULL;
	sp->nr = 0;
}

/*
 * reserve() - allocate what splitting the full leaf reached through @p
 * takes: a leaf, a node per full ancestor above it, and a new root if the
 * root splits too.  Return: 0; -ENOMEM (nothing held).
 */
static int reserve(struct ms_tree *ms, const struct ms_path *p,
		   struct ms_spare *sp)
{
	int lv = (int)ms->height - 2;
	uint32_t need = 0;

	sp->leaf = NULL;
	sp->nr = 0;
	while (lv >= 0 && p->node[lv]->h.n == NODE_CAP) {
		need++;
		lv--;
	}
	if (lv < 0) {
		if (ms->height >= MAX_DEPTH) /* unreachable: "Depth" above */
			return -ENOMEM;
		need++;
	}
	sp->leaf = leaf_new(ms);
	if (!sp->leaf)
		return -ENOMEM;
	while (sp->nr < need) {
		sp->node[sp->nr] = node_new(ms);
		if (!sp->node[sp->nr]) {
			spare_release(ms, sp);
			return -ENOMEM;
		}
		sp->nr++;
	}
	return 0;
}

/* spare_node() - take one preallocated internal node. */
static struct ms_node *spare_node(struct ms_spare *sp)
{
	return sp->node[--sp->nr];
}

/*
 * split_node() - make room in the full @nd for child @c with separator
 * *@key at @j, moving part of it to @q.  An append to the rightmost node
 * (@append) leaves @nd full and puts @c alone in @q.  On return *@key is
 * the separator routing to @q.
 */
static void split_node(struct ms_node *nd, struct ms_node *q, uint32_t j,
		       uint64_t *key, void *c, int append)
{
	uint32_t m = NODE_CAP / 2;
	uint64_t up;

	if (append) {
		q->child[0] = c;
		q->h.n = 1;
		return;
	}
	up = nd->key[m];
	node_move(q, 0, nd, m, NODE_CAP - m);
	q->h.n = NODE_CAP - m;
	setn(nd, m);
	if (j <= m)
		node_put(nd, j, *key, c);
	else
		node_put(q, j - m, *key, c);
	*key = up;
}

/*
 * grow_parents() - insert child @c (separator @key) after the child taken
 * at @lv of @p, splitting full nodes upwards and adding a root if needed.
 */
static void grow_parents(struct ms_tree *ms, const struct ms_path *p,
			 int lv, uint64_t key, void *c, struct ms_spare *sp)
{
	struct ms_node *nd, *q;
	uint32_t j;

	for (; lv >= 0; lv--) {
		nd = p->node[lv];
		j = p->idx[lv] + 1;
		wtouch(ms, nd);
		if (nd->h.n < NODE_CAP) {
			node_put(nd, j, key, c);
			return;
		}
		q = spare_node(sp);
		split_node(nd, q, j, &key, c,
			   j == nd->h.n && is_rightmost(p, (uint32_t)lv));
		c = q;
	}
	q = spare_node(sp);
	q->child[0] = ms->root;
	q->child[1] = c;
	q->key[1] = key;
	q->h.n = 2;
	wtouch_top(ms);
	SETP(ms->root, q);
	SET(ms->height, ms->height + 1);
}

/*
 * split_leaf() - insert @e at @pos of the full leaf @l using the spare
 * leaf, then hook the new leaf into the parents.
 */
static void split_leaf(struct ms_tree *ms, const struct ms_path *p,
		       struct ms_leaf *l, uint32_t pos,
		       const struct ms_entry *e, struct ms_spare *sp)
{
	struct ms_leaf *r = sp->leaf;
	uint32_t m = LEAF_CAP / 2;

	sp->leaf = NULL;
	wtouch(ms, l);
	if (!l->next && pos == l->h.n) {
		leaf_put(r, 0, e);
	} else {
		leaf_move(r, 0, l, m, LEAF_CAP - m);
		r->h.n = LEAF_CAP - m;
		setn(l, m);
		if (pos <= m)
			leaf_put(l, pos, e);
		else
			leaf_put(r, pos - m, e);
	}
	r->prev = l;
	r->next = l->next;
	if (l->next) {
		wtouch(ms, l->next);
		SETP(l->next->prev, r);
	}
	l->next = r;
	grow_parents(ms, p, (int)ms->height - 2, r->start[0], r, sp);
}

/*
 * shift_insert() - insert @e at @pos of the full leaf @l (reached through
 * @p) without splitting, by first moving entries to a sibling with room:
 * those before @pos to the left sibling, or those from @pos on to the
 * right one; @l keeps at least LEAF_MIN.  Ascending or descending runs in
 * the middle of the tree stay dense this way.  Not for appends to the
 * rightmost leaf, which split unevenly instead.  Return: whether @e was
 * inserted.
 */
static int shift_insert(struct ms_tree *ms, const struct ms_path *p,
			struct ms_leaf *l, uint32_t pos,
			const struct ms_entry *e)
{
	int lv = (int)ms->height - 2;
	struct ms_node *up;
	struct ms_leaf *s;
	uint32_t i, k;

	if (lv < 0 || (!l->next && pos == l->h.n))
		return 0;
	up = p->node[lv];
	i = p->idx[lv];
	if (i > 0 && pos > 0) {
		s = up->child[i - 1];
		k = MIN(MIN(LEAF_CAP - s->h.n, pos), LEAF_CAP - LEAF_MIN);
		if (k) {
			wtouch(ms, s);
			wtouch(ms, l);
			wtouch(ms, up);
			leaf_move(s, s->h.n, l, 0, k);
			leaf_move(l, 0, l, k, l->h.n - k);
			setn(s, s->h.n + k);
			setn(l, l->h.n - k);
			leaf_put(l, pos - k, e);
			SET(up->key[i], l->start[0]);
			return 1;
		}
	}
	if (i + 1 < up->h.n && pos < l->h.n) {
		s = up->child[i + 1];
		k = MIN(MIN(LEAF_CAP - s->h.n, l->h.n - pos), LEAF_CAP - LEAF_MIN);
		if (k) {
			wtouch(ms, s);
			wtouch(ms, l);
			wtouch(ms, up);
			leaf_move(s, k, s, 0, s->h.n);
			leaf_move(s, 0, l, l->h.n - k, k);
			setn(s, s->h.n + k);
			setn(l, l->h.n - k);
			leaf_put(l, pos, e);
			SET(up->key[i + 1], s->start[0]);
			return 1;
		}
	}
	return 0;
}

/* account_insert() - add the size of [start, last] to ms->bytes. */
static void account_insert(struct ms_tree *ms, uint64_t start, uint64_t last)
{
	uint64_t span = last - start, sum;

	if (span == UINT64_MAX ||
	    __builtin_add_overflow(ms->bytes, span + 1, &sum)) {
		ms->bytes = UINT64_MAX;
		*root_full(ms) = 1;
		return;
	}
	ms->bytes = sum;
}

/*
 * mt_insert() - see mapstore_node.h: one descent records the path; the
 * neighbours decide -EEXIST; a full leaf shifts entries to a sibling or
 * splits, after reserve() has made -ENOMEM free of side effects.
 */
int mt_insert(struct ms_tree *ms, const struct ms_entry *e)
{
	struct ms_spare sp;
	struct ms_path p;
	struct ms_leaf *l;
	uint32_t pos;
	int ret;

	if (e->start > e->last)
		return -EINVAL;
	if (!ms->root) {
		l = leaf_new(ms);
		if (!l)
			return -ENOMEM;
		leaf_put(l, 0, e);
		wtouch_top(ms);
		SETP(ms->root, (struct ms_node *)l);
		SET(ms->height, 1);
		goto done;
	}
	l = descend(ms, e->start, &p);
	pos = count_le(l->start, l->h.n, e->start);
	if (overlaps(l, pos, e))
		return -EEXIST;
	if (l->h.n < LEAF_CAP) {
		wtouch(ms, l);
		leaf_put(l, pos, e);
		goto done;
	}
	if (shift_insert(ms, &p, l, pos, e))
		goto done;
	ret = reserve(ms, &p, &sp);
	if (ret)
		return ret;
	split_leaf(ms, &p, l, pos, e, &sp);
	spare_release(ms, &sp); /* normally empty */
done:
	wdone(ms);
	ms->count++;
	account_insert(ms, e->start, e->last);
	return 0;
}

/* ---- removal ------------------------------------------------------------- */

/* leaves_merge() - append @b to @a and retire @b. */
static void leaves_merge(struct ms_tree *ms, struct ms_leaf *a,
			 struct ms_leaf *b)
{
	wtouch(ms, a);
	retire(ms, b);
	leaf_move(a, a->h.n, b, 0, b->h.n);
	setn(a, a->h.n + b->h.n);
	a->next = b->next;
	if (b->next) {
		wtouch(ms, b->next);
		SETP(b->next->prev, a);
	}
}

/* leaves_even() - share the entries of neighbours @a, @b evenly. */
static void leaves_even(struct ms_tree *ms, struct ms_leaf *a,
			struct ms_leaf *b)
{
	uint32_t want = (a->h.n + b->h.n) / 2, k;

	wtouch(ms, a);
	wtouch(ms, b);
	if (a->h.n < want) {
		k = want - a->h.n;
		leaf_move(a, a->h.n, b, 0, k);
		leaf_move(b, 0, b, k, b->h.n - k);
		setn(a, a->h.n + k);
		setn(b, b->h.n - k);
	} else {
		k = a->h.n - want;
		leaf_move(b, k, b, 0, b->h.n);
		leaf_move(b, 0, a, want, k);
		setn(a, a->h.n - k);
		setn(b, b->h.n + k);
	}
}

/*
 * nodes_merge() - append @b (routed to by separator @sep) to @a; retire
 * @b.
 */
static void nodes_merge(struct ms_tree *ms, struct ms_node *a,
			struct ms_node *b, uint64_t sep)
{
	wtouch(ms, a);
	retire(ms, b);
	SET(b->key[0], sep);
	node_move(a, a->h.n, b, 0, b->h.n);
	setn(a, a->h.n + b->h.n);
}

/*
 * nodes_even() - share the children of neighbours @a, @b evenly.  *@sep is
 * the separator routing to @b, updated on return.
 */
static void nodes_even(struct ms_tree *ms, struct ms_node *a,
		       struct ms_node *b, uint64_t *sep)
{
	uint32_t want = (a->h.n + b->h.n) / 2, k;

	wtouch(ms, a);
	wtouch(ms, b);
	SET(b->key[0], *sep);
	if (a->h.n < want) {
		k = want - a->h.n;
		node_move(a, a->h.n, b, 0, k);
		node_move(b, 0, b, k, b->h.n - k);
		setn(a, a->h.n + k);
		setn(b, b->h.n - k);
	} else {
		k = a->h.n - want;
		node_move(b, k, b, 0, b->h.n);
		node_move(b, 0, a, want, k);
		setn(a, a->h.n - k);
		setn(b, b->h.n + k);
	}
	*sep = b->key[0];
}

/* collapse_root() - drop (retire) roots with a single child. */
static void collapse_root(struct ms_tree *ms)
{
	struct ms_node *old;

	while (ms->height > 1 && ms->root->h.n <= 1) {
		old = ms->root;
		wtouch_top(ms);
		retire(ms, old);
		SETP(ms->root, old->h.n ? old->child[0] : NULL);
		SET(ms->height, old->h.n ? ms->height - 1 : 0);
	}
}

/*
 * fix_node() - the internal node at @lv of @p lost a child: free it if
 * empty, else merge or rebalance it with a sibling if it is underfull and
 * not the rightmost of its level; continue upwards while parents lose
 * children.
 */
static void fix_node(struct ms_tree *ms, const struct ms_path *p, uint32_t lv)
{
	struct ms_node *nd, *up, *a, *b;
	uint32_t i;

	for (; lv > 0; lv--) {
		nd = p->node[lv];
		up = p->node[lv - 1];
		i = p->idx[lv - 1];
		if (!nd->h.n) {
			retire(ms, nd);
			wtouch(ms, up);
			node_drop(up, i);
			continue;
		}
		if (nd->h.n >= NODE_MIN || is_rightmost(p, lv))
			return;
		if (i + 1 == up->h.n) /* has a left sibling: see fix_leaf() */
			i--;
		a = up->child[i];
		b = up->child[i + 1];
		wtouch(ms, up);
		if (a->h.n + b->h.n > NODE_CAP) {
			uint64_t sep = up->key[i + 1];

			nodes_even(ms, a, b, &sep);
			SET(up->key[i + 1], sep);
			return;
		}
		nodes_merge(ms, a, b, up->key[i + 1]);
		node_drop(up, i + 1);
	}
	collapse_root(ms);
}

/*
 * fix_leaf() - @l (reached through @p) lost entries: free it if empty,
 * else merge or rebalance it with a sibling if it is underfull and not
 * the rightmost leaf.  A node that is not the rightmost of its level
 * always has a sibling: its parent is the root (two children or more),
 * not rightmost (NODE_MIN children), or rightmost with another child
 * after it.
 */
static void fix_leaf(struct ms_tree *ms, const struct ms_path *p,
		     struct ms_leaf *l)
{
	int lv = (int)ms->height - 2;
	struct ms_leaf *a, *b;
	struct ms_node *up;
	uint32_t i;

	if (!l->h.n && l->next) {
		retire(ms, l);
		if (l->prev)
			l->prev->next = l->next;
		if (l->next) {
			wtouch(ms, l->next);
			SETP(l->next->prev, l->prev);
		}
		wtouch(ms, p->node[lv]);
		node_drop(p->node[lv], p->idx[lv]);
		fix_node(ms, p, (uint32_t)lv);
		return;
	}
	/* The rightmost leaf stays, even empty (see "Fill"). */
	if (l->h.n >= LEAF_MIN || !l->next || lv < 0)
		return;
	up = p->node[lv];
	i = p->idx[lv];
	if (i + 1 == up->h.n)
		i--;
	a = up->child[i];
	b = up->child[i + 1];
	wtouch(ms, up);
	if (a->h.n + b->h.n > LEAF_CAP) {
		leaves_even(ms, a, b);
		SET(up->key[i + 1], b->start[0]);
		return;
	}
	leaves_merge(ms, a, b);
	node_drop(up, i + 1);
	fix_node(ms, p, (uint32_t)lv);
}

/* Progress of one mt_remove_range(). */
struct ms_cut {
	uint64_t next;  /* lowest start not yet examined */
	uint64_t last;  /* end of the range */
	uint64_t spans; /* sum of (last - start) of removed entries */
	long nr;        /* entries removed */
	void (*fn)(void *opaque, const struct ms_entry *e);
	void *opaque;
};

/*
 * cut_entries() - remove entries [@pos, @end) of @l (reached through @p),
 * which all lie in [c->next, c->last]: the callbacks first, then the cut,
 * the rebalancing and its publication.
 */
static void cut_entries(struct ms_tree *ms, const struct ms_path *p,
			struct ms_leaf *l, uint32_t pos, uint32_t end,
			struct ms_cut *c)
{
	struct ms_entry e;

	for (uint32_t i = pos; i < end; i++) {
		c->spans += l->last[i] - l->start[i];
		if (c->fn) {
			leaf_get(l, i, &e);
			c->fn(c->opaque, &e);
		}
	}
	/* The callbacks ran above: readers are held off only from here. */
	wtouch(ms, l);
	leaf_move(l, pos, l, end, l->h.n - end);
	setn(l, l->h.n - (end - pos));
	ms->count -= end - pos;
	c->nr += end - pos;
	fix_leaf(ms, p, l);
	/* Each leaf's cut is a consistent tree: publish it. */
	wdone(ms);
}

/*
 * cut_from() - remove the entries in [c->next, c->last] held by @l, the
 * leaf c->next routes to (reached through @p), or by the leaf after it.
 * Return: whether more may follow.
 */
static int cut_from(struct ms_tree *ms, const struct ms_path *p,
		    struct ms_leaf *l, struct ms_cut *c)
{
	uint32_t pos = count_lt(l->start, l->h.n, c->next), end;
	int more;

	if (pos == l->h.n) {
		if (!data_next(l) || l->next->start[0] > c->last)
			return 0;
		c->next = l->next->start[0]; /* routes to l->next */
		return 1;
	}
	for (end = pos; end < l->h.n && l->start[end] <= c->last; end++)
		;
	if (end == pos)
		return 0;
	more = end == l->h.n && l->start[end - 1] < c->last;
	c->next = l->start[end - 1] + 1; /* unused unless more */
	cut_entries(ms, p, l, pos, end, c);
	return more;
}

/* cut_next() - cut_from() the leaf c->next routes to. */
static int cut_next(struct ms_tree *ms, struct ms_cut *c)
{
	struct ms_path p;
	struct ms_leaf *l;

	if (!ms->root)
		return 0;
	l = descend(ms, c->next, &p);
	return cut_from(ms, &p, l, c);
}

/*
 * straddles() - whether an entry crosses @start or @last; @l is the leaf
 * @start routes to.  Stays in @l and its neighbours unless the range
 * reaches past the next leaf.
 */
static int straddles(const struct ms_tree *ms, const struct ms_leaf *l,
		     uint64_t start, uint64_t last)
{
	uint32_t i = count_lt(l->start, l->h.n, start);
	const struct ms_leaf *pv = l->prev, *nx = data_next(l);
	struct ms_entry e;

	/* the entry before @start, which begins below it */
	if (i > 0 ? l->last[i - 1] >= start :
		    pv && pv->last[pv->h.n - 1] >= start)
		return 1;
	/* the last entry beginning at or below @last */
	if (nx && nx->start[0] <= last)
		return !mt_lookup(ms, last, &e) && e.last > last;
	i = count_le(l->start, l->h.n, last);
	return i > 0 && l->last[i - 1] > last;
}

/*
 * mt_remove_range() - see mapstore_node.h.  Refuses straddles before touching
 * anything, then cuts leaf by leaf (one descent per leaf), rebalancing as
 * it goes; never allocates.
 */
long mt_remove_range(struct ms_tree *ms, uint64_t start, uint64_t last,
		     void (*fn)(void *opaque, const struct ms_entry *e),
		     void *opaque, uint64_t *removed_bytes)
{
	struct ms_cut c = { .next = start, .last = last, .fn = fn,
			    .opaque = opaque };
	struct ms_path p;
	struct ms_leaf *l;
	uint64_t full, sum;
	uint32_t i;

	if (removed_bytes)
		*removed_bytes = 0;
	if (start > last)
		return -EINVAL;
	if (!ms->root)
		return 0;
	l = descend(ms, start, &p);
	i = count_le(l->start, l->h.n, start);
	full = *root_full(ms);
	if (i && l->start[i - 1] == start && l->last[i - 1] == last) {
		/*
		 * Exactly one entry, the common unmap of one mapping: it
		 * covers the range, so nothing straddles it, no other entry
		 * lies in it, and it is in @l (every start routes to its own
		 * leaf).
		 */
		cut_entries(ms, &p, l, i - 1, i, &c);
	} else {
		if (straddles(ms, l, start, last))
			return -ERANGE;
		if (cut_from(ms, &p, l, &c))
			while (cut_next(ms, &c))
				;
	}
	if (!ms->count && ms->root) {
		/* Only an empty rightmost leaf (and its parents) is left. */
		void *root = ms->root;
		uint32_t height = ms->height;

		wtouch_top(ms);
		SETP(ms->root, NULL);
		SET(ms->height, 0);
		retire_subtree(ms, root, height);
		wdone(ms);
	}
	/* An emptied store holds no memory (what the statistics promise). */
	reclaim(ms, !ms->root);
	if (!c.nr)
		return 0;
	/*
	 * Exact: old total = bytes + full >= spans + nr, the removed total,
	 * and spans + nr <= 2^64 with nr >= 1 >= full.
	 */
	ms->bytes = ms->bytes - c.spans - ((uint64_t)c.nr - full);
	if (ms->root)
		*root_full(ms) = 0;
	if (removed_bytes) {
		if (__builtin_add_overflow(c.spans, (uint64_t)c.nr, &sum))
			sum = UINT64_MAX;
		*removed_bytes = sum;
	}
	return c.nr;
}

/* ---- self-check ---------------------------------------------------------- */

struct ms_chk {
	const struct ms_tree *ms;
	const struct ms_leaf *prev; /* leaf visited last */
	uint64_t count, spans, host;
};

/* Bounds of a subtree: starts in [lo, hi), hi meaningless if !has_hi. */
struct ms_bounds {
	uint64_t lo, hi;
	int has_hi, rightmost, root;
};

/* check_leaf() - verify @l against @b and the leaves visited before. */
static int check_leaf(struct ms_chk *k, const struct ms_leaf *l,
		      const struct ms_bounds *b)
{
	k->host += sizeof(*l);
	if ((l->h.seq & 1) || !l->h.leaf || l->h.dead)
		return -EUCLEAN;
	if ((!l->h.n && (!b->rightmost || b->root)) || l->h.n > LEAF_CAP ||
	    (l->h.full && !b->root))
		return -EUCLEAN;
	if (!b->rightmost && !b->root && l->h.n < LEAF_MIN)
		return -EUCLEAN;
	if (l->prev != k->prev || (k->prev && k->prev->next != l) ||
	    (!l->next) != !!b->rightmost)
		return -EUCLEAN;
	for (uint32_t i = 0; i < l->h.n; i++) {
		if (l->start[i] > l->last[i] || l->start[i] < b->lo ||
		    (b->has_hi && l->start[i] >= b->hi))
			return -EUCLEAN;
		if (i == 0 && k->prev &&
		    k->prev->last[k->prev->h.n - 1] >= l->start[0])
			return -EUCLEAN;
		if (i > 0 && l->last[i - 1] >= l->start[i])
			return -EUCLEAN;
		k->spans += l->last[i] - l->start[i];
		k->count++;
	}
	k->prev = l;
	return 0;
}

/* check_node() - verify the subtree @p of height @depth within @b. */
static int check_node(struct ms_chk *k, const void *p, uint32_t depth,
		      const struct ms_bounds *b)
{
	const struct ms_node *nd = p;
	struct ms_bounds cb;
	int ret;

	if (depth == 1)
		return check_leaf(k, p, b);
	k->host += sizeof(*nd);
	if ((nd->h.seq & 1) || nd->h.leaf || nd->h.dead)
		return -EUCLEAN;
	if (!nd->h.n || nd->h.n > NODE_CAP || (nd->h.full && !b->root) ||
	    (b->root && nd->h.n < 2) ||
	    (!b->root && !b->rightmost && nd->h.n < NODE_MIN))
		return -EUCLEAN;
	for (uint32_t i = 0; i < nd->h.n; i++) {
		cb.lo = i ? nd->key[i] : b->lo;
		cb.has_hi = i + 1 < nd->h.n ? 1 : b->has_hi;
		cb.hi = i + 1 < nd->h.n ? nd->key[i + 1] : b->hi;
		cb.rightmost = b->rightmost && i + 1 == nd->h.n;
		cb.root = 0;
		if (i && (nd->key[i] < b->lo || (b->has_hi &&
						 nd->key[i] >= b->hi)))
			return -EUCLEAN;
		if (cb.has_hi && cb.hi <= cb.lo)
			return -EUCLEAN;
		ret = check_node(k, nd->child[i], depth - 1, &cb);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * mt_check() - verify the tree invariants: entries sorted and disjoint,
 * separators routing every start to its leaf, leaf links, fill, depth,
 * and count, bytes, host_bytes, height.  For tests.
 * Return: 0; -EUCLEAN on the first violation found.
 */
int mt_check(const struct ms_tree *ms)
{
	struct ms_bounds b = { .rightmost = 1, .root = 1 };
	struct ms_chk k = { .ms = ms };
	uint64_t total;
	int full, ret;

	if ((ms->seq & 1) || ms->ntouched ||
	    (!ms->retired && !ms->waiting) != (ms->retired_bytes == 0))
		return -EUCLEAN;
	if (!ms->root)
		return ms->height || ms->count || ms->bytes ||
		       ms->host_bytes != ms->retired_bytes ? -EUCLEAN : 0;
	if (!ms->height || ms->height > MAX_DEPTH)
		return -EUCLEAN;
	ret = check_node(&k, ms->root, ms->height, &b);
	if (ret)
		return ret;
	full = __builtin_add_overflow(k.spans, k.count, &total);
	if (full)
		total = UINT64_MAX;
	if (k.count != ms->count || total != ms->bytes ||
	    k.host + ms->retired_bytes != ms->host_bytes || k.prev->next ||
	    full != (int)*root_full(ms))
		return -EUCLEAN;
	return 0;
}
