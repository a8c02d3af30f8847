/*
 * mapstore_join.c - the ms_* API of mapstore.h over its two structures:
 * the page index (pageidx.c) for mappings of exactly one page, the B+tree
 * (mapstore.c, mt_* calls) for the rest.
 *
 * Placement.  An insert that pi_fits() goes to the index unless the
 * index's memory rule refuses the nodes it needs (then to the B+tree); any
 * other goes to the B+tree.  Entries never move between the two, so a
 * lock-free reader that looks in the index, then in the B+tree, finds an
 * entry in the one that held it; with writers serialised and overlaps
 * refused across both, "in neither" is true at some instant between the
 * two looks (an entry leaving the B+tree after the reader's first look
 * cannot be replaced by one in the index before it has left).
 *
 * Overlaps and straddles are checked in both before anything changes:
 * a page insert asks the B+tree for an overlap (skipped while the B+tree
 * is empty), a B+tree insert asks the index whether its pages in the
 * range are empty (pi_next(): O(height x 64) with the bitmaps); a removal
 * refuses when the page holding an unaligned start or end is in the index
 * or an entry of the B+tree straddles.  Ordered results (ms_walk(),
 * removal callbacks, ms_first_overlap()) merge the two: the B+tree's own
 * walk drives, and before each of its entries the index's pages below it
 * are taken in order.  Work per call: the entries affected times the
 * index height, plus O(height x 64) and the B+tree's own bound.
 *
 * The store's count, bytes and host_bytes are the two structures' sums,
 * refreshed at the end of every writer call.
 */
#include "core/mapstore_node.h"
#include "core/pageidx.h"
#include "base/util.h"

#include <errno.h>

#define PG_MASK (PI_PAGE_SIZE - 1)

/* page_entry() - the entry of index page @pn with word @w. */
static void page_entry(uint64_t pn, uint64_t w, struct ms_entry *e)
{
	e->start = pn << PI_PAGE_SHIFT;
	e->last = e->start | PG_MASK;
	e->gpa = pi_word_gpa(w);
	e->prot = pi_word_prot(w);
}

/* totals() - the store's figures from its two structures'. */
static void totals(struct mapstore *ms)
{
	uint64_t pages = ms->pi.count << PI_PAGE_SHIFT;

	ms->count = ms->bt.count + ms->pi.count;
	if (__builtin_add_overflow(ms->bt.bytes, pages, &ms->bytes))
		ms->bytes = UINT64_MAX;
	ms->host_bytes = ms->bt.host_bytes + ms->pi.host_bytes;
}

/* ---- life cycle ---------------------------------------------------------- */

/* ms_init() - see mapstore.h. */
void ms_init(struct mapstore *ms, const struct viommu_allocator *alloc,
	     struct rcu *rcu)
{
	memset(ms, 0, sizeof(*ms));
	mt_init(&ms->bt, alloc, rcu);
	pi_init(&ms->pi, alloc, rcu, PI_SLACK_DEFAULT);
}

/* ms_init_tree_only() - see mapstore.h. */
void ms_init_tree_only(struct mapstore *ms,
		       const struct viommu_allocator *alloc, struct rcu *rcu)
{
	ms_init(ms, alloc, rcu);
	ms->pi.slack = 0; /* no node fits the rule: the index stays empty */
}

/* ms_share_pool() - see mapstore.h. */
void ms_share_pool(struct mapstore *ms, struct pi_pool *pool)
{
	ms->pi.pool = pool;
}

/* ms_reinit() - see mapstore.h. */
void ms_reinit(struct mapstore *ms, const struct viommu_allocator *alloc,
	       struct rcu *rcu)
{
	mt_reinit(&ms->bt, alloc, rcu);
	pi_reinit(&ms->pi, alloc, rcu, PI_SLACK_DEFAULT);
	ms->count = ms->bytes = ms->host_bytes = 0;
}

/* ms_destroy() - see mapstore.h. */
void ms_destroy(struct mapstore *ms)
{
	pi_destroy(&ms->pi);
	mt_destroy(&ms->bt);
	totals(ms);
}

/* ---- queries ------------------------------------------------------------- */

/* ms_lookup() - see mapstore.h: the index first. */
int ms_lookup(const struct mapstore *ms, uint64_t iova, struct ms_entry *out)
{
	uint64_t w;

	if (!pi_get(&ms->pi, iova >> PI_PAGE_SHIFT, &w)) {
		page_entry(iova >> PI_PAGE_SHIFT, w, out);
		return 0;
	}
	return mt_lookup(&ms->bt, iova, out);
}

/*
 * ms_lookup_rcu() - see mapstore.h: the index (one load per level, no
 * retry), then the B+tree (which answers at once while empty).
 */
int ms_lookup_rcu(const struct mapstore *ms, uint64_t iova,
		  struct ms_entry *out)
{
	uint64_t w;

	if (!pi_lookup_rcu(&ms->pi, iova >> PI_PAGE_SHIFT, &w)) {
		page_entry(iova >> PI_PAGE_SHIFT, w, out);
		return 0;
	}
	return mt_lookup_rcu(&ms->bt, iova, out);
}

/* ms_first_overlap() - see mapstore.h: the lower of the two answers. */
int ms_first_overlap(const struct mapstore *ms, uint64_t start, uint64_t last,
		     struct ms_entry *out)
{
	struct ms_entry t;
	uint64_t pn, w;
	int ret;

	if (start > last)
		return -EINVAL;
	ret = mt_first_overlap(&ms->bt, start, last, out);
	if (!pi_next(&ms->pi, start >> PI_PAGE_SHIFT, last >> PI_PAGE_SHIFT,
		     &pn, &w)) {
		page_entry(pn, w, &t);
		if (ret || t.start < out->start)
			*out = t;
		return 0;
	}
	return ret;
}

/* Index pages not yet merged into an ordered walk: [next, hi]. */
struct merge {
	struct mapstore *ms;
	uint64_t next, hi;
	bool done;
	int (*walk_fn)(void *opaque, const struct ms_entry *e);
	void (*rm_fn)(void *opaque, const struct ms_entry *e);
	void *opaque;
	long removed; /* index pages removed */
};

/*
 * pages_upto() - hand the index pages in [m->next, min(@end, m->hi)] to
 * the walk (removing them first for a removal), in order.  Return: the
 * walk callback's non-zero value, or 0.
 */
static int pages_upto(struct merge *m, uint64_t end)
{
	uint64_t hi = MIN(end, m->hi), pn, w;
	struct ms_entry e;
	int ret;

	while (!m->done && m->next <= hi &&
	       !pi_next(&m->ms->pi, m->next, hi, &pn, &w)) {
		page_entry(pn, w, &e);
		if (pn == m->hi)
			m->done = true;
		m->next = pn + 1;
		if (m->rm_fn || !m->walk_fn) {
			pi_remove(&m->ms->pi, pn, NULL);
			m->removed++;
			if (m->rm_fn)
				m->rm_fn(m->opaque, &e);
		} else {
			ret = m->walk_fn(m->opaque, &e);
			if (ret)
				return ret;
		}
	}
	if (hi == m->hi)
		m->done = true;
	else if (m->next <= hi)
		m->next = hi + 1;
	return 0;
}

/*
 * before_entry() - a B+tree entry @e comes next: first the index pages
 * below it, then skip the pages it covers (none is in the index).
 */
static int before_entry(struct merge *m, const struct ms_entry *e)
{
	int ret = 0;

	if (e->start >> PI_PAGE_SHIFT)
		ret = pages_upto(m, (e->start >> PI_PAGE_SHIFT) - 1);
	if (!m->done) {
		if ((e->last >> PI_PAGE_SHIFT) >= m->hi)
			m->done = true;
		else
			m->next = MAX(m->next, (e->last >> PI_PAGE_SHIFT) + 1);
	}
	return ret;
}

static int walk_merged(void *opaque, const struct ms_entry *e)
{
	struct merge *m = opaque;
	int ret = before_entry(m, e);

	return ret ? ret : m->walk_fn(m->opaque, e);
}

/* ms_walk() - see mapstore.h. */
int ms_walk(const struct mapstore *ms, uint64_t start, uint64_t last,
	    int (*fn)(void *opaque, const struct ms_entry *e), void *opaque)
{
	struct merge m = {
		/* pages_upto() does not write the store when walking */
		.ms = (struct mapstore *)ms, .next = start >> PI_PAGE_SHIFT,
		.hi = last >> PI_PAGE_SHIFT, .done = !ms->pi.count,
		.walk_fn = fn, .opaque = opaque,
	};
	int ret;

	if (start > last)
		return -EINVAL;
	if (ms->bt.count) {
		ret = mt_walk(&ms->bt, start, last, walk_merged, &m);
		if (ret)
			return ret;
	}
	return pages_upto(&m, m.hi);
}

/* ---- insert -------------------------------------------------------------- */

/* ms_insert() - see mapstore.h and "Placement" at the top. */
int ms_insert(struct mapstore *ms, const struct ms_entry *e)
{
	struct ms_entry t;
	uint64_t pn, w;
	int ret;

	if (e->start > e->last)
		return -EINVAL;
	if (ms->pi.slack && pi_fits(e->start, e->last, e->gpa, e->prot)) {
		if (ms->bt.count &&
		    !mt_first_overlap(&ms->bt, e->start, e->last, &t))
			return -EEXIST;
		ret = pi_insert(&ms->pi, e->start >> PI_PAGE_SHIFT,
				pi_word(e->gpa, e->prot));
		if (ret != -ENOSPC) {
			totals(ms);
			return ret;
		}
		/* The rule refused a node: the page was absent; B+tree. */
	} else if (!pi_next(&ms->pi, e->start >> PI_PAGE_SHIFT,
			    e->last >> PI_PAGE_SHIFT, &pn, &w)) {
		return -EEXIST;
	}
	ret = mt_insert(&ms->bt, e);
	totals(ms);
	return ret;
}

/* ---- removal ------------------------------------------------------------- */

static void rm_merged(void *opaque, const struct ms_entry *e)
{
	struct merge *m = opaque;

	before_entry(m, e);
	if (m->rm_fn)
		m->rm_fn(m->opaque, e);
}

/*
 * remove_merged() - ms_remove_range() when the range is not one index
 * page: straddles are refused in both structures before anything changes
 * (the B+tree's own check comes before its first callback), then the
 * B+tree's removal drives the merge.
 */
static long remove_merged(struct mapstore *ms, uint64_t start, uint64_t last,
			  void (*fn)(void *opaque, const struct ms_entry *e),
			  void *opaque, uint64_t *removed_bytes)
{
	struct merge m = {
		.ms = ms, .next = start >> PI_PAGE_SHIFT,
		.hi = last >> PI_PAGE_SHIFT, .done = !ms->pi.count,
		.rm_fn = fn, .opaque = opaque,
	};
	uint64_t w, bytes = 0, pages;
	long n = 0;

	if (((start & PG_MASK) && !pi_get(&ms->pi, start >> PI_PAGE_SHIFT, &w)) ||
	    ((last & PG_MASK) != PG_MASK &&
	     !pi_get(&ms->pi, last >> PI_PAGE_SHIFT, &w)))
		return -ERANGE;
	if (ms->bt.count) {
		n = mt_remove_range(&ms->bt, start, last, rm_merged, &m, &bytes);
		if (n < 0)
			return n;
	}
	pages_upto(&m, m.hi);
	pi_reclaim(&ms->pi, !ms->pi.count);
	totals(ms);
	n += m.removed;
	pages = (uint64_t)m.removed << PI_PAGE_SHIFT;
	if (removed_bytes &&
	    __builtin_add_overflow(bytes, pages, removed_bytes))
		*removed_bytes = UINT64_MAX;
	return n;
}

/*
 * ms_remove_range() - see mapstore.h.  A range that is one page the index
 * holds is the common unmap: nothing else lies in it and nothing can
 * straddle it, so it is removed at once.
 */
long ms_remove_range(struct mapstore *ms, uint64_t start, uint64_t last,
		     void (*fn)(void *opaque, const struct ms_entry *e),
		     void *opaque, uint64_t *removed_bytes)
{
	struct ms_entry e;
	uint64_t w;

	if (removed_bytes)
		*removed_bytes = 0;
	if (start > last)
		return -EINVAL;
	if ((start & PG_MASK) || last != (start | PG_MASK) ||
	    pi_remove(&ms->pi, start >> PI_PAGE_SHIFT, &w))
		return remove_merged(ms, start, last, fn, opaque,
				     removed_bytes);
	page_entry(start >> PI_PAGE_SHIFT, w, &e);
	if (fn)
		fn(opaque, &e);
	if (ms->pi.retired || ms->pi.waiting)
		pi_reclaim(&ms->pi, !ms->pi.count);
	totals(ms);
	if (removed_bytes)
		*removed_bytes = PI_PAGE_SIZE;
	return 1;
}

/* ---- self-check ---------------------------------------------------------- */

/* no_page_in() - ms_check(): a B+tree entry has no index page beside it. */
static int no_page_in(void *opaque, const struct ms_entry *e)
{
	uint64_t pn, w;

	return pi_next(opaque, e->start >> PI_PAGE_SHIFT,
		       e->last >> PI_PAGE_SHIFT, &pn, &w) ? 0 : -EUCLEAN;
}

/*
 * ms_check() - see mapstore.h: both structures' invariants, no entry in
 * both ranges, and the totals.
 */
int ms_check(const struct mapstore *ms)
{
	struct mapstore t = *ms;
	int ret = mt_check(&ms->bt);

	if (!ret)
		ret = pi_check(&ms->pi);
	if (!ret && ms->pi.count && ms->bt.count)
		ret = mt_walk(&ms->bt, 0, UINT64_MAX, no_page_in,
			      (void *)&ms->pi);
	if (ret)
		return -EUCLEAN;
	totals(&t);
	return t.count != ms->count || t.bytes != ms->bytes ||
	       t.host_bytes != ms->host_bytes ? -EUCLEAN : 0;
}
