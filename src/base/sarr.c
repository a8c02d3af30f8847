/*
 * sarr.c - the bounded sorted array (see sarr.h): binary search with a
 * one-entry hint, growth by doubling up to the bound, insert and remove by
 * shifting the tail.
 */
#include "base/sarr.h"

#include <errno.h>
#include <string.h>

#include "base/util.h"

#define SARR_FIRST_CAP 16u

void sarr_init(struct sarr *a, size_t esz, uint32_t max)
{
	memset(a, 0, sizeof(*a));
	a->esz = esz;
	a->max = max;
}

void sarr_fini(struct sarr *a, const struct viommu_allocator *al)
{
	xfree(al, a->v);
	a->v = NULL;
	a->n = a->cap = a->hint = 0;
}

/* key_at() - the key of the record at index @i. */
static uint32_t key_at(const struct sarr *a, uint32_t i)
{
	uint32_t k;

	memcpy(&k, sarr_at(a, i), sizeof(k));
	return k;
}

/*
 * search() - index of the first record whose key is >= @key; *@found
 * tells whether it equals @key.
 */
static uint32_t search(const struct sarr *a, uint32_t key, bool *found)
{
	uint32_t lo = 0, hi = a->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (key_at(a, mid) < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < a->n && key_at(a, lo) == key;
	return lo;
}

void *sarr_find(struct sarr *a, uint32_t key)
{
	bool found;
	uint32_t i;

	if (a->hint < a->n && key_at(a, a->hint) == key)
		return sarr_at(a, a->hint);
	i = search(a, key, &found);
	if (!found)
		return NULL;
	a->hint = i;
	return sarr_at(a, i);
}

int sarr_reserve(struct sarr *a, const struct viommu_allocator *al)
{
	uint32_t cap;
	void *v;

	if (a->n < a->cap)
		return 0;
	if (a->n >= a->max)
		return -ENOSPC;
	cap = a->cap ? a->cap : SARR_FIRST_CAP;
	while (cap <= a->n)
		cap = cap > a->max / 2 ? a->max : cap * 2;
	cap = MIN(cap, a->max);
	v = xalloc(al, (size_t)cap * a->esz);
	if (!v)
		return -ENOMEM;
	if (a->n)
		memcpy(v, a->v, (size_t)a->n * a->esz);
	xfree(al, a->v);
	a->v = v;
	a->cap = cap;
	return 0;
}

void *sarr_insert(struct sarr *a, const void *rec)
{
	uint32_t key, i;
	bool found;

	memcpy(&key, rec, sizeof(key));
	i = search(a, key, &found);
	memmove(sarr_at(a, i + 1), sarr_at(a, i), (size_t)(a->n - i) * a->esz);
	memcpy(sarr_at(a, i), rec, a->esz);
	a->n++;
	return sarr_at(a, i);
}

bool sarr_remove(struct sarr *a, uint32_t key)
{
	bool found;
	uint32_t i = search(a, key, &found);

	if (!found)
		return false;
	memmove(sarr_at(a, i), sarr_at(a, i + 1),
		(size_t)(a->n - i - 1) * a->esz);
	a->n--;
	return true;
}
