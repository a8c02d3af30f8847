/*
 * dirty.c - sparse dirty-page tracking for a domain (see dirty.h), and the
 * public dirty-tracking calls built on it.
 *
 * Writes through translate() land here on the locked path, so the table
 * may grow (allocate) while a DMA write is translated; growth is bounded by
 * max_dirty_chunks and a failed allocation degrades to `overflow`, which
 * makes viommu_domain_dirty_read() report every mapped page of its range:
 * dirty tracking may over-report, never under-report.
 */
#include "internal.h"

#include <errno.h>

void dirty_init(struct dirty_map *d, uint32_t max_chunks)
{
	memset(d, 0, sizeof(*d));
	d->max = max_chunks;
}

void dirty_clear(struct dirty_map *d, const struct viommu_allocator *a)
{
	xfree(a, d->tab);
	d->tab = NULL;
	d->cap = d->used = 0;
	d->overflow = false;
}

static uint32_t chunk_hash(uint64_t key, uint32_t mask)
{
	key *= 0x9e3779b97f4a7c15ull;
	return (uint32_t)(key >> 32) & mask;
}

static struct dirty_chunk *chunk_find(struct dirty_map *d, uint64_t key)
{
	uint32_t mask = d->cap - 1, i;

	if (!d->cap)
		return NULL;
	for (i = chunk_hash(key, mask);; i = (i + 1) & mask) {
		if (d->tab[i].key == key)
			return &d->tab[i];
		if (d->tab[i].key == 0)
			return NULL;
	}
}

static struct dirty_chunk *slot_for(struct dirty_chunk *tab, uint32_t cap,
				    uint64_t key)
{
	uint32_t mask = cap - 1, i;

	for (i = chunk_hash(key, mask); tab[i].key && tab[i].key != key;
	     i = (i + 1) & mask)
		;
	return &tab[i];
}

/* grow() - double the table (rehash); false when out of memory. */
static bool grow(struct dirty_map *d, const struct viommu_allocator *a)
{
	uint32_t ncap = d->cap ? d->cap * 2 : 16, i;
	struct dirty_chunk *nt;

	if (ncap < d->cap)
		return false;
	nt = xzalloc(a, (size_t)ncap * sizeof(*nt));
	if (!nt)
		return false;
	for (i = 0; i < d->cap; i++)
		if (d->tab[i].key)
			*slot_for(nt, ncap, d->tab[i].key) = d->tab[i];
	xfree(a, d->tab);
	d->tab = nt;
	d->cap = ncap;
	return true;
}

static struct dirty_chunk *chunk_get(struct dirty_map *d,
				     const struct viommu_allocator *a,
				     uint64_t key)
{
	struct dirty_chunk *c = chunk_find(d, key);

	if (c)
		return c;
	if (d->used >= d->max)
		return NULL;
	/* Keep the load factor at or below one half. */
	if ((d->used + 1) * 2 > d->cap && !grow(d, a))
		return NULL;
	c = slot_for(d->tab, d->cap, key);
	c->key = key;
	d->used++;
	return c;
}

void dirty_mark(struct dirty_map *d, const struct viommu_allocator *a,
		uint64_t iova, uint64_t last)
{
	uint64_t pg = iova >> PAGE_SHIFT, lastpg = last >> PAGE_SHIFT;

	for (;;) {
		uint64_t key = (pg >> (DIRTY_CHUNK_SHIFT - PAGE_SHIFT)) + 1;
		struct dirty_chunk *c = chunk_get(d, a, key);
		uint32_t bit = pg & 511;

		if (!c) {
			d->overflow = true;
			return;
		}
		for (; bit < 512; bit++, pg++) {
			c->bits[bit / 64] |= 1ull << (bit % 64);
			if (pg == lastpg)
				return;
		}
	}
}

void dirty_collect(struct dirty_map *d, uint64_t iova, uint64_t last,
		   uint64_t *bitmap, bool keep)
{
	uint64_t first = iova >> PAGE_SHIFT, lastpg = last >> PAGE_SHIFT;
	uint32_t i;

	/* Walk the table, not the range: the range may span 2^52 pages. */
	for (i = 0; i < d->cap; i++) {
		struct dirty_chunk *c = &d->tab[i];
		uint64_t base;
		uint32_t b;

		if (!c->key)
			continue;
		base = (c->key - 1) << (DIRTY_CHUNK_SHIFT - PAGE_SHIFT);
		for (b = 0; b < 512; b++) {
			uint64_t pg = base + b, off;

			if (!(c->bits[b / 64] & (1ull << (b % 64))))
				continue;
			if (pg < first || pg > lastpg)
				continue;
			off = pg - first;
			bitmap[off / 64] |= 1ull << (off % 64);
			if (!keep)
				c->bits[b / 64] &= ~(1ull << (b % 64));
		}
	}
}

VIOMMU_EXPORT int viommu_domain_dirty_enable(struct viommu_domain *dom,
					     bool enable)
{
	if (!dom)
		return -EINVAL;
	if (dom->kind != VIOMMU_DOMAIN_PAGING)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&dom->lock);
	dirty_clear(&dom->dirty, &dom->ctx->alloc);
	/*
	 * Lock-free translate() reads dirty_on to decide whether a write must
	 * take the locked path; a write that read the old value is ordered
	 * before this call.
	 */
	__atomic_store_n(&dom->dirty_on, enable, __ATOMIC_SEQ_CST);
	trace_core_dirty(&dom->ctx->tr, dom->tag, enable, 0, UINT64_MAX, 0);
	pthread_mutex_unlock(&dom->lock);
	return 0;
}

struct overflow_walk {
	uint64_t first, last; /* pages */
	uint64_t *bitmap;
};

static int mark_mapped(void *opaque, const struct ms_entry *e)
{
	struct overflow_walk *w = opaque;
	uint64_t pg = MAX(e->start >> PAGE_SHIFT, w->first);
	uint64_t end = MIN(e->last >> PAGE_SHIFT, w->last);

	for (; pg <= end; pg++) {
		uint64_t off = pg - w->first;

		w->bitmap[off / 64] |= 1ull << (off % 64);
		if (pg == UINT64_MAX)
			break;
	}
	return 0;
}

VIOMMU_EXPORT int viommu_domain_dirty_read(struct viommu_domain *dom,
					   uint64_t iova, uint64_t last,
					   uint64_t *bitmap, size_t words,
					   unsigned int flags)
{
	uint64_t npages;
	int ret = 0;

	if (!dom || !bitmap || iova > last || (flags & ~VIOMMU_DIRTY_NO_CLEAR))
		return -EINVAL;
	if ((iova & (PAGE_SIZE - 1)) ||
	    (last != UINT64_MAX && ((last + 1) & (PAGE_SIZE - 1))))
		return -EINVAL;
	npages = (last >> PAGE_SHIFT) - (iova >> PAGE_SHIFT) + 1;
	if (npages == 0 || words < (npages + 63) / 64 || npages + 63 < npages)
		return -EINVAL;
	if (dom->kind != VIOMMU_DOMAIN_PAGING)
		return -EOPNOTSUPP;

	pthread_mutex_lock(&dom->lock);
	if (!dom->dirty_on) {
		ret = -ENODEV;
		goto out;
	}
	if (dom->dirty.overflow) {
		struct overflow_walk w = { iova >> PAGE_SHIFT,
					   last >> PAGE_SHIFT, bitmap };

		ms_walk(&dom->ms, iova, last, mark_mapped, &w);
	}
	dirty_collect(&dom->dirty, iova, last, bitmap,
		      flags & VIOMMU_DIRTY_NO_CLEAR);
out:
	trace_core_dirty(&dom->ctx->tr, dom->tag, 2, iova, last, ret);
	pthread_mutex_unlock(&dom->lock);
	return ret;
}
