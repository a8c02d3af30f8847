/*
 * mapstore_rcu.c - mt_lookup_rcu(): searching the mapping store's B+tree
 * (ms_lookup_rcu() looks in the page index first, mapstore_join.c) without
 * the lock that serialises its writers, in the style of optimistic lock
 * coupling.  The reader's side of the scheme described in mapstore.c
 * ("Lock-free readers", "Memory reclamation"):
 *  - read a node's version (odd: retry), then what is needed of it, then
 *    re-check the version before using it - a child pointer is followed
 *    only once the node that held it is known not to have changed;
 *  - after reading a child's version, re-check the parent's, so the child
 *    was the parent's child, and owned the key, at that moment;
 *  - counts are clamped and depths bounded, so a torn view is always safe
 *    to search; every load is atomic (writers store atomically);
 *  - the caller is inside a read section of the store's rcu, so no node
 *    reached this way is freed before the search ends.
 * A reader never writes shared memory and never blocks.
 */
#include "core/mapstore_node.h"

#include <errno.h>

/* cpu_relax() - a spin-wait hint. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* count_le_rd() - count_le() over an array a writer may be changing. */
static uint32_t count_le_rd(const uint64_t *a, uint32_t n, uint64_t x)
{
	const uint64_t *base = a;

	if (!n)
		return 0;
	while (n > 1) {
		uint32_t half = n / 2;

		base = READ_ONCE(base[half - 1]) <= x ? base + half : base;
		n -= half;
	}
	return (uint32_t)(base - a) + (READ_ONCE(*base) <= x);
}


/* ver() - a node's version, odd meaning "retry". */
static inline uint32_t ver(const void *p)
{
	return LOAD_ACQUIRE(((const struct ms_hdr *)p)->seq);
}

/*
 * same() - whether @seq still reads @v.  Barrier: acquire fence, so the
 * reads before it (the node's contents) are ordered before the re-check.
 */
static inline bool same(const uint32_t *seq, uint32_t v)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return READ_ONCE(*seq) == v;
}

/* rd_n() - a node's count, clamped so that a torn view stays in bounds. */
static inline uint32_t rd_n(const void *p, uint32_t cap)
{
	uint32_t n = READ_ONCE(((const struct ms_hdr *)p)->n);

	return n > cap ? cap : n;
}

/*
 * rd_entry() - entry @i of @l, read inside @l's version check.  Return:
 * whether it holds @iova (else *@out is not the answer).
 */
static inline bool rd_entry(const struct ms_leaf *l, uint32_t i,
			    uint64_t iova, struct ms_entry *out)
{
	out->start = READ_ONCE(l->start[i]);
	out->last = READ_ONCE(l->last[i]);
	out->gpa = READ_ONCE(l->gpa[i]);
	out->prot = READ_ONCE(l->prot[i]);
	return out->start <= iova && out->last >= iova;
}

/*
 * lookup_once() - one optimistic descent (see "Lock-free readers" at the
 * top).  Return: 0, -ENOENT, or -EAGAIN when a version moved.
 */
static int lookup_once(const struct ms_tree *ms, uint64_t iova,
		       struct ms_entry *out)
{
	const uint32_t *pseq = &ms->seq;
	const struct ms_leaf *l, *pv;
	uint32_t pvv, v, lv, h, n, i;
	const void *nd;
	bool hit;

	v = LOAD_ACQUIRE(ms->seq);
	if (v & 1)
		return -EAGAIN;
	nd = LOAD_ACQUIRE(ms->root);
	h = READ_ONCE(ms->height);
	if (!same(&ms->seq, v))
		return -EAGAIN;
	if (!nd)
		return -ENOENT;
	if (h == 0 || h > MAX_DEPTH)
		return -EAGAIN;
	for (lv = 0; lv + 1 < h; lv++) {
		const struct ms_node *in = nd;
		uint32_t nv = ver(in);

		/* @in was @pseq's child when @pseq read @v: check it still is. */
		if ((nv & 1) || !same(pseq, v) || in->h.leaf)
			return -EAGAIN;
		prefetch_keys(in->key, sizeof(in->key));
		n = rd_n(in, NODE_CAP);
		if (!n)
			return -EAGAIN;
		i = count_le_rd(in->key + 1, n - 1, iova);
		nd = LOAD_ACQUIRE(in->child[i]);
		if (!same(&in->h.seq, nv) || !nd)
			return -EAGAIN;
		pseq = &in->h.seq;
		v = nv;
	}
	l = nd;
	lv = ver(l);
	if ((lv & 1) || !same(pseq, v) || !l->h.leaf)
		return -EAGAIN;
	prefetch_keys(l->start, sizeof(l->start));
	n = rd_n(l, LEAF_CAP);
	i = count_le_rd(l->start, n, iova);
	if (i > 0) {
		hit = rd_entry(l, i - 1, iova, out);
		if (!same(&l->h.seq, lv))
			return -EAGAIN;
		return hit ? 0 : -ENOENT;
	}
	/* Nothing in @l starts at or below @iova (it may be the empty
	 * rightmost leaf): the predecessor, if any, is the last entry of
	 * the leaf before, which is never empty. */
	pv = LOAD_ACQUIRE(l->prev);
	if (!same(&l->h.seq, lv))
		return -EAGAIN;
	if (!pv)
		return -ENOENT;
	pvv = ver(pv);
	/* @pv was still @l's neighbour when its version was read. */
	if ((pvv & 1) || !same(&l->h.seq, lv) || !pv->h.leaf)
		return -EAGAIN;
	n = rd_n(pv, LEAF_CAP);
	if (!n)
		return -EAGAIN;
	hit = rd_entry(pv, n - 1, iova, out);
	if (!same(&pv->h.seq, pvv))
		return -EAGAIN;
	return hit ? 0 : -ENOENT;
}

/* mt_lookup_rcu() - see mapstore_node.h. */
int mt_lookup_rcu(const struct ms_tree *ms, uint64_t iova,
		  struct ms_entry *out)
{
	for (uint32_t t = 0; t < MS_READ_TRIES; t++) {
		int ret = lookup_once(ms, iova, out);

		if (ret != -EAGAIN)
			return ret;
		cpu_relax();
	}
	return -EAGAIN;
}
