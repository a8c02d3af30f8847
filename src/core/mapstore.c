/*
 * mapstore.c - the mapping store of a PAGING domain: a B+tree of
 * non-overlapping IOVA ranges keyed by their start (see mapstore.h).
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
 * one.  So a full rightmost node receiving an append splits unevenly (the
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
 * Bytes.  The sum of sizes reaches 2^64 only when the entries cover the
 * whole IOVA space.  ms->bytes then reads UINT64_MAX and the root's @full
 * flag keeps the missing unit, so bytes is exact again after a removal.
 * (Nothing can be inserted into a full store, so the root stays the same
 * node until the next removal.)
 */
#include "mapstore.h"
#include "base/util.h"

#include <errno.h>

#define LEAF_CAP 32u
#define NODE_CAP 32u
#define LEAF_MIN (LEAF_CAP / 2)
#define NODE_MIN (NODE_CAP / 2)
#define MAX_DEPTH 16u

_Static_assert(LEAF_MIN >= 16 && NODE_MIN >= 16,
	       "the MAX_DEPTH bound needs minimum fills of 16");

struct ms_leaf {
	uint32_t n;
	uint32_t full; /* root only: the entries cover 2^64 bytes */
	struct ms_leaf *prev, *next;
	uint64_t start[LEAF_CAP];
	uint64_t last[LEAF_CAP];
	uint64_t gpa[LEAF_CAP];
	uint32_t prot[LEAF_CAP];
};

/* Internal node; struct mapstore's root points at a leaf when height is 1. */
struct ms_node {
	uint32_t n;
	uint32_t full; /* as in struct ms_leaf */
	uint64_t key[NODE_CAP];
	void *child[NODE_CAP];
};

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

/* leaf_move() - move @cnt entries from @s[si] to @d[di] (may overlap). */
static void leaf_move(struct ms_leaf *d, uint32_t di, struct ms_leaf *s,
		      uint32_t si, uint32_t cnt)
{
	memmove(&d->start[di], &s->start[si], cnt * sizeof(d->start[0]));
	memmove(&d->last[di], &s->last[si], cnt * sizeof(d->last[0]));
	memmove(&d->gpa[di], &s->gpa[si], cnt * sizeof(d->gpa[0]));
	memmove(&d->prot[di], &s->prot[si], cnt * sizeof(d->prot[0]));
}

/* leaf_put() - insert @e at position @i of a non-full leaf. */
static void leaf_put(struct ms_leaf *l, uint32_t i, const struct ms_entry *e)
{
	leaf_move(l, i + 1, l, i, l->n - i);
	l->start[i] = e->start;
	l->last[i] = e->last;
	l->gpa[i] = e->gpa;
	l->prot[i] = e->prot;
	l->n++;
}

/* node_move() - move @cnt keys and children from @s[si] to @d[di]. */
static void node_move(struct ms_node *d, uint32_t di, struct ms_node *s,
		      uint32_t si, uint32_t cnt)
{
	memmove(&d->key[di], &s->key[si], cnt * sizeof(d->key[0]));
	memmove(&d->child[di], &s->child[si], cnt * sizeof(d->child[0]));
}

/* node_put() - insert child @c with separator @key at @i (>= 1). */
static void node_put(struct ms_node *nd, uint32_t i, uint64_t key, void *c)
{
	node_move(nd, i + 1, nd, i, nd->n - i);
	nd->key[i] = key;
	nd->child[i] = c;
	nd->n++;
}

/* node_drop() - remove child @i (and the separator that routes to it). */
static void node_drop(struct ms_node *nd, uint32_t i)
{
	node_move(nd, i, nd, i + 1, nd->n - i - 1);
	nd->n--;
}

/* leaf_new() - an empty, unlinked leaf; NULL on allocation failure. */
static struct ms_leaf *leaf_new(struct mapstore *ms)
{
	struct ms_leaf *l = xalloc(ms->alloc, sizeof(*l));

	if (!l)
		return NULL;
	l->n = 0;
	l->full = 0;
	l->prev = l->next = NULL;
	ms->host_bytes += sizeof(*l);
	return l;
}

/* node_new() - an empty internal node; NULL on allocation failure. */
static struct ms_node *node_new(struct mapstore *ms)
{
	struct ms_node *nd = xalloc(ms->alloc, sizeof(*nd));

	if (!nd)
		return NULL;
	nd->n = 0;
	nd->full = 0;
	ms->host_bytes += sizeof(*nd);
	return nd;
}

/* leaf_free() - release a leaf, unlinked by the caller. */
static void leaf_free(struct mapstore *ms, struct ms_leaf *l)
{
	ms->host_bytes -= sizeof(*l);
	xfree(ms->alloc, l);
}

/* node_free() - release an internal node (not its children). */
static void node_free(struct mapstore *ms, struct ms_node *nd)
{
	ms->host_bytes -= sizeof(*nd);
	xfree(ms->alloc, nd);
}

/* root_full() - the root's "covers all 2^64 bytes" flag. */
static uint32_t *root_full(const struct mapstore *ms)
{
	if (ms->height == 1)
		return &as_leaf(ms->root)->full;
	return &ms->root->full;
}

/*
 * descend() - the leaf @x routes to; records the internal nodes and child
 * indices in @p when it is not NULL.  The store must not be empty.
 */
static struct ms_leaf *descend(const struct mapstore *ms, uint64_t x,
			       struct ms_path *p)
{
	struct ms_node *nd = ms->root;

	for (uint32_t lv = 0; lv + 1 < ms->height; lv++) {
		uint32_t i = count_le(nd->key + 1, nd->n - 1, x);

		if (p) {
			p->node[lv] = nd;
			p->idx[lv] = i;
		}
		nd = nd->child[i];
	}
	return as_leaf(nd);
}

/*
 * is_rightmost() - whether the node at @level of @p is the last of its
 * level (every ancestor took its last child).
 */
static int is_rightmost(const struct ms_path *p, uint32_t level)
{
	for (uint32_t lv = 0; lv < level; lv++)
		if (p->idx[lv] != p->node[lv]->n - 1)
			return 0;
	return 1;
}

/*
 * seek() - the first entry whose last is >= @x: either the entry holding
 * @x or the first one after it.  Return: its leaf with *@idx; NULL if no
 * such entry.
 */
static struct ms_leaf *seek(const struct mapstore *ms, uint64_t x,
			    uint32_t *idx)
{
	struct ms_leaf *l, *pv;
	uint32_t i;

	if (!ms->root)
		return NULL;
	l = descend(ms, x, NULL);
	i = count_le(l->start, l->n, x);
	if (i > 0) {
		if (l->last[i - 1] >= x) {
			*idx = i - 1;
			return l;
		}
	} else {
		pv = l->prev;
		if (pv && pv->last[pv->n - 1] >= x) {
			*idx = pv->n - 1;
			return pv;
		}
	}
	if (i == l->n) {
		l = l->next;
		i = 0;
	}
	*idx = i;
	return l;
}

/* ---- life cycle ---------------------------------------------------------- */

/* ms_init() - see mapstore.h. */
void ms_init(struct mapstore *ms, const struct viommu_allocator *alloc)
{
	memset(ms, 0, sizeof(*ms));
	ms->alloc = alloc;
}

/* free_subtree() - free @nd and everything below; @depth 1 is a leaf. */
static void free_subtree(struct mapstore *ms, void *nd, uint32_t depth)
{
	struct ms_node *in = nd;

	if (depth == 1) {
		leaf_free(ms, as_leaf(nd));
		return;
	}
	for (uint32_t i = 0; i < in->n; i++)
		free_subtree(ms, in->child[i], depth - 1);
	node_free(ms, in);
}

/* ms_destroy() - see mapstore.h; host_bytes drops to 0. */
void ms_destroy(struct mapstore *ms)
{
	if (ms->root)
		free_subtree(ms, ms->root, ms->height);
	ms->root = NULL;
	ms->count = 0;
	ms->bytes = 0;
	ms->height = 0;
}

/* ---- queries ------------------------------------------------------------- */

/* ms_lookup() - see mapstore.h: one descent, then at most one step left. */
int ms_lookup(const struct mapstore *ms, uint64_t iova, struct ms_entry *out)
{
	uint32_t i;
	struct ms_leaf *l = seek(ms, iova, &i);

	if (!l || l->start[i] > iova)
		return -ENOENT;
	leaf_get(l, i, out);
	return 0;
}

/*
 * ms_first_overlap() - see mapstore.h.  An inverted range (start > last)
 * gives -EINVAL, here and in ms_walk().
 */
int ms_first_overlap(const struct mapstore *ms, uint64_t start, uint64_t last,
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

/* ms_walk() - see mapstore.h; follows the leaf links after one descent. */
int ms_walk(const struct mapstore *ms, uint64_t start, uint64_t last,
	    int (*fn)(void *opaque, const struct ms_entry *e), void *opaque)
{
	struct ms_entry e;
	uint32_t i;
	struct ms_leaf *l;
	int ret;

	if (start > last)
		return -EINVAL;
	for (l = seek(ms, start, &i); l; l = l->next, i = 0) {
		for (; i < l->n; i++) {
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
	const struct ms_leaf *pv = l->prev, *nx = l->next;

	if (pos > 0 && l->last[pos - 1] >= e->start)
		return 1;
	if (pos == 0 && pv && pv->last[pv->n - 1] >= e->start)
		return 1;
	if (pos < l->n && l->start[pos] <= e->last)
		return 1;
	if (pos == l->n && nx && nx->start[0] <= e->last)
		return 1;
	return 0;
}

/* spare_release() - free the unused preallocated nodes. */
static void spare_release(struct mapstore *ms, struct ms_spare *sp)
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
static int reserve(struct mapstore *ms, const struct ms_path *p,
		   struct ms_spare *sp)
{
	int lv = (int)ms->height - 2;
	uint32_t need = 0;

	sp->leaf = NULL;
	sp->nr = 0;
	while (lv >= 0 && p->node[lv]->n == NODE_CAP) {
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
		q->n = 1;
		return;
	}
	up = nd->key[m];
	node_move(q, 0, nd, m, NODE_CAP - m);
	q->n = NODE_CAP - m;
	nd->n = m;
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
static void grow_parents(struct mapstore *ms, const struct ms_path *p,
			 int lv, uint64_t key, void *c, struct ms_spare *sp)
{
	struct ms_node *nd, *q;
	uint32_t j;

	for (; lv >= 0; lv--) {
		nd = p->node[lv];
		j = p->idx[lv] + 1;
		if (nd->n < NODE_CAP) {
			node_put(nd, j, key, c);
			return;
		}
		q = spare_node(sp);
		split_node(nd, q, j, &key, c,
			   j == nd->n && is_rightmost(p, (uint32_t)lv));
		c = q;
	}
	q = spare_node(sp);
	q->child[0] = ms->root;
	q->child[1] = c;
	q->key[1] = key;
	q->n = 2;
	ms->root = q;
	ms->height++;
}

/*
 * split_leaf() - insert @e at @pos of the full leaf @l using the spare
 * leaf, then hook the new leaf into the parents.
 */
static void split_leaf(struct mapstore *ms, const struct ms_path *p,
		       struct ms_leaf *l, uint32_t pos,
		       const struct ms_entry *e, struct ms_spare *sp)
{
	struct ms_leaf *r = sp->leaf;
	uint32_t m = LEAF_CAP / 2;

	sp->leaf = NULL;
	if (!l->next && pos == l->n) {
		leaf_put(r, 0, e);
	} else {
		leaf_move(r, 0, l, m, LEAF_CAP - m);
		r->n = LEAF_CAP - m;
		l->n = m;
		if (pos <= m)
			leaf_put(l, pos, e);
		else
			leaf_put(r, pos - m, e);
	}
	r->prev = l;
	r->next = l->next;
	if (l->next)
		l->next->prev = r;
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
static int shift_insert(const struct mapstore *ms, const struct ms_path *p,
			struct ms_leaf *l, uint32_t pos,
			const struct ms_entry *e)
{
	int lv = (int)ms->height - 2;
	struct ms_node *up;
	struct ms_leaf *s;
	uint32_t i, k;

	if (lv < 0 || (!l->next && pos == l->n))
		return 0;
	up = p->node[lv];
	i = p->idx[lv];
	if (i > 0 && pos > 0) {
		s = up->child[i - 1];
		k = MIN(MIN(LEAF_CAP - s->n, pos), LEAF_CAP - LEAF_MIN);
		if (k) {
			leaf_move(s, s->n, l, 0, k);
			leaf_move(l, 0, l, k, l->n - k);
			s->n += k;
			l->n -= k;
			leaf_put(l, pos - k, e);
			up->key[i] = l->start[0];
			return 1;
		}
	}
	if (i + 1 < up->n && pos < l->n) {
		s = up->child[i + 1];
		k = MIN(MIN(LEAF_CAP - s->n, l->n - pos), LEAF_CAP - LEAF_MIN);
		if (k) {
			leaf_move(s, k, s, 0, s->n);
			leaf_move(s, 0, l, l->n - k, k);
			s->n += k;
			l->n -= k;
			leaf_put(l, pos, e);
			up->key[i + 1] = s->start[0];
			return 1;
		}
	}
	return 0;
}

/* account_insert() - add the size of [start, last] to ms->bytes. */
static void account_insert(struct mapstore *ms, uint64_t start, uint64_t last)
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
 * ms_insert() - see mapstore.h: one descent records the path; the
 * neighbours decide -EEXIST; a full leaf shifts entries to a sibling or
 * splits, after reserve() has made -ENOMEM free of side effects.
 */
int ms_insert(struct mapstore *ms, const struct ms_entry *e)
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
		ms->root = (struct ms_node *)l;
		ms->height = 1;
		leaf_put(l, 0, e);
		goto done;
	}
	l = descend(ms, e->start, &p);
	pos = count_le(l->start, l->n, e->start);
	if (overlaps(l, pos, e))
		return -EEXIST;
	if (l->n < LEAF_CAP) {
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
	ms->count++;
	account_insert(ms, e->start, e->last);
	return 0;
}

/* ---- removal ------------------------------------------------------------- */

/* leaves_merge() - append @b to @a and free @b. */
static void leaves_merge(struct mapstore *ms, struct ms_leaf *a,
			 struct ms_leaf *b)
{
	leaf_move(a, a->n, b, 0, b->n);
	a->n += b->n;
	a->next = b->next;
	if (b->next)
		b->next->prev = a;
	leaf_free(ms, b);
}

/* leaves_even() - share the entries of neighbours @a, @b evenly. */
static void leaves_even(struct ms_leaf *a, struct ms_leaf *b)
{
	uint32_t want = (a->n + b->n) / 2, k;

	if (a->n < want) {
		k = want - a->n;
		leaf_move(a, a->n, b, 0, k);
		leaf_move(b, 0, b, k, b->n - k);
		a->n += k;
		b->n -= k;
	} else {
		k = a->n - want;
		leaf_move(b, k, b, 0, b->n);
		leaf_move(b, 0, a, want, k);
		a->n -= k;
		b->n += k;
	}
}

/*
 * nodes_merge() - append @b (routed to by separator @sep) to @a; free @b.
 */
static void nodes_merge(struct mapstore *ms, struct ms_node *a,
			struct ms_node *b, uint64_t sep)
{
	b->key[0] = sep;
	node_move(a, a->n, b, 0, b->n);
	a->n += b->n;
	node_free(ms, b);
}

/*
 * nodes_even() - share the children of neighbours @a, @b evenly.  *@sep is
 * the separator routing to @b, updated on return.
 */
static void nodes_even(struct ms_node *a, struct ms_node *b, uint64_t *sep)
{
	uint32_t want = (a->n + b->n) / 2, k;

	b->key[0] = *sep;
	if (a->n < want) {
		k = want - a->n;
		node_move(a, a->n, b, 0, k);
		node_move(b, 0, b, k, b->n - k);
		a->n += k;
		b->n -= k;
	} else {
		k = a->n - want;
		node_move(b, k, b, 0, b->n);
		node_move(b, 0, a, want, k);
		a->n -= k;
		b->n += k;
	}
	*sep = b->key[0];
}

/* collapse_root() - drop roots with a single child. */
static void collapse_root(struct mapstore *ms)
{
	struct ms_node *old;

	while (ms->height > 1 && ms->root->n <= 1) {
		old = ms->root;
		ms->root = old->n ? old->child[0] : NULL;
		ms->height = old->n ? ms->height - 1 : 0;
		node_free(ms, old);
	}
}

/*
 * fix_node() - the internal node at @lv of @p lost a child: free it if
 * empty, else merge or rebalance it with a sibling if it is underfull and
 * not the rightmost of its level; continue upwards while parents lose
 * children.
 */
static void fix_node(struct mapstore *ms, const struct ms_path *p, uint32_t lv)
{
	struct ms_node *nd, *up, *a, *b;
	uint32_t i;

	for (; lv > 0; lv--) {
		nd = p->node[lv];
		up = p->node[lv - 1];
		i = p->idx[lv - 1];
		if (!nd->n) {
			node_free(ms, nd);
			node_drop(up, i);
			continue;
		}
		if (nd->n >= NODE_MIN || is_rightmost(p, lv))
			return;
		if (i + 1 == up->n) /* has a left sibling: see fix_leaf() */
			i--;
		a = up->child[i];
		b = up->child[i + 1];
		if (a->n + b->n > NODE_CAP) {
			nodes_even(a, b, &up->key[i + 1]);
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
static void fix_leaf(struct mapstore *ms, const struct ms_path *p,
		     struct ms_leaf *l)
{
	int lv = (int)ms->height - 2;
	struct ms_leaf *a, *b;
	struct ms_node *up;
	uint32_t i;

	if (!l->n) {
		if (l->prev)
			l->prev->next = l->next;
		if (l->next)
			l->next->prev = l->prev;
		leaf_free(ms, l);
		if (lv < 0) {
			ms->root = NULL;
			ms->height = 0;
			return;
		}
		node_drop(p->node[lv], p->idx[lv]);
		fix_node(ms, p, (uint32_t)lv);
		return;
	}
	if (l->n >= LEAF_MIN || !l->next || lv < 0)
		return;
	up = p->node[lv];
	i = p->idx[lv];
	if (i + 1 == up->n)
		i--;
	a = up->child[i];
	b = up->child[i + 1];
	if (a->n + b->n > LEAF_CAP) {
		leaves_even(a, b);
		up->key[i + 1] = b->start[0];
		return;
	}
	leaves_merge(ms, a, b);
	node_drop(up, i + 1);
	fix_node(ms, p, (uint32_t)lv);
}

/* Progress of one ms_remove_range(). */
struct ms_cut {
	uint64_t next;  /* lowest start not yet examined */
	uint64_t last;  /* end of the range */
	uint64_t spans; /* sum of (last - start) of removed entries */
	long nr;        /* entries removed */
	void (*fn)(void *opaque, const struct ms_entry *e);
	void *opaque;
};

/*
 * cut_from() - remove the entries in [c->next, c->last] held by @l, the
 * leaf c->next routes to (reached through @p), or by the leaf after it.
 * Return: whether more may follow.
 */
static int cut_from(struct mapstore *ms, const struct ms_path *p,
		    struct ms_leaf *l, struct ms_cut *c)
{
	uint32_t pos = count_lt(l->start, l->n, c->next), end;
	struct ms_entry e;
	int more;

	if (pos == l->n) {
		if (!l->next || l->next->start[0] > c->last)
			return 0;
		c->next = l->next->start[0]; /* routes to l->next */
		return 1;
	}
	for (end = pos; end < l->n && l->start[end] <= c->last; end++) {
		c->spans += l->last[end] - l->start[end];
		if (c->fn) {
			leaf_get(l, end, &e);
			c->fn(c->opaque, &e);
		}
	}
	if (end == pos)
		return 0;
	more = end == l->n && l->start[end - 1] < c->last;
	c->next = l->start[end - 1] + 1; /* unused unless more */
	leaf_move(l, pos, l, end, l->n - end);
	l->n -= end - pos;
	ms->count -= end - pos;
	c->nr += end - pos;
	fix_leaf(ms, p, l);
	return more;
}

/* cut_next() - cut_from() the leaf c->next routes to. */
static int cut_next(struct mapstore *ms, struct ms_cut *c)
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
static int straddles(const struct mapstore *ms, const struct ms_leaf *l,
		     uint64_t start, uint64_t last)
{
	uint32_t i = count_lt(l->start, l->n, start);
	const struct ms_leaf *pv = l->prev, *nx = l->next;
	struct ms_entry e;

	/* the entry before @start, which begins below it */
	if (i > 0 ? l->last[i - 1] >= start :
		    pv && pv->last[pv->n - 1] >= start)
		return 1;
	/* the last entry beginning at or below @last */
	if (nx && nx->start[0] <= last)
		return !ms_lookup(ms, last, &e) && e.last > last;
	i = count_le(l->start, l->n, last);
	return i > 0 && l->last[i - 1] > last;
}

/*
 * ms_remove_range() - see mapstore.h.  Refuses straddles before touching
 * anything, then cuts leaf by leaf (one descent per leaf), rebalancing as
 * it goes; never allocates.
 */
long ms_remove_range(struct mapstore *ms, uint64_t start, uint64_t last,
		     void (*fn)(void *opaque, const struct ms_entry *e),
		     void *opaque, uint64_t *removed_bytes)
{
	struct ms_cut c = { .next = start, .last = last, .fn = fn,
			    .opaque = opaque };
	struct ms_path p;
	struct ms_leaf *l;
	uint64_t full, sum;

	if (removed_bytes)
		*removed_bytes = 0;
	if (start > last)
		return -EINVAL;
	if (!ms->root)
		return 0;
	l = descend(ms, start, &p);
	if (straddles(ms, l, start, last))
		return -ERANGE;
	full = *root_full(ms);
	if (cut_from(ms, &p, l, &c))
		while (cut_next(ms, &c))
			;
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
	const struct mapstore *ms;
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
	if (!l->n || l->n > LEAF_CAP || (l->full && !b->root))
		return -EUCLEAN;
	if (!b->rightmost && !b->root && l->n < LEAF_MIN)
		return -EUCLEAN;
	if (l->prev != k->prev || (k->prev && k->prev->next != l) ||
	    (!l->next) != !!b->rightmost)
		return -EUCLEAN;
	for (uint32_t i = 0; i < l->n; i++) {
		if (l->start[i] > l->last[i] || l->start[i] < b->lo ||
		    (b->has_hi && l->start[i] >= b->hi))
			return -EUCLEAN;
		if (i == 0 && k->prev &&
		    k->prev->last[k->prev->n - 1] >= l->start[0])
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
	if (!nd->n || nd->n > NODE_CAP || (nd->full && !b->root) ||
	    (b->root && nd->n < 2) ||
	    (!b->root && !b->rightmost && nd->n < NODE_MIN))
		return -EUCLEAN;
	for (uint32_t i = 0; i < nd->n; i++) {
		cb.lo = i ? nd->key[i] : b->lo;
		cb.has_hi = i + 1 < nd->n ? 1 : b->has_hi;
		cb.hi = i + 1 < nd->n ? nd->key[i + 1] : b->hi;
		cb.rightmost = b->rightmost && i + 1 == nd->n;
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
 * ms_check() - verify the tree invariants: entries sorted and disjoint,
 * separators routing every start to its leaf, leaf links, fill, depth,
 * and count, bytes, host_bytes, height.  For tests.
 * Return: 0; -EUCLEAN on the first violation found.
 */
int ms_check(const struct mapstore *ms)
{
	struct ms_bounds b = { .rightmost = 1, .root = 1 };
	struct ms_chk k = { .ms = ms };
	uint64_t total;
	int full, ret;

	if (!ms->root)
		return ms->height || ms->count || ms->bytes || ms->host_bytes ?
			       -EUCLEAN : 0;
	if (!ms->height || ms->height > MAX_DEPTH)
		return -EUCLEAN;
	ret = check_node(&k, ms->root, ms->height, &b);
	if (ret)
		return ret;
	full = __builtin_add_overflow(k.spans, k.count, &total);
	if (full)
		total = UINT64_MAX;
	if (k.count != ms->count || total != ms->bytes ||
	    k.host != ms->host_bytes || k.prev->next ||
	    full != (int)*root_full(ms))
		return -EUCLEAN;
	return 0;
}
