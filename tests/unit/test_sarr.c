/*
 * test_sarr.c - the bounded sorted array of src/base/sarr.h, through its
 * typed interface: random inserts, removals and look-ups checked against
 * a trivial model (a present flag and a value per key), the bound
 * (-ENOSPC, nothing changed), growth that fails in the allocator
 * (-ENOMEM, nothing changed, no leak) and the capacity clamp.
 */
#include "harness.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/sarr.h"

struct trec {
	uint32_t key;
	uint32_t pad;
	uint64_t val;
};

SARR_DEFINE(trecs, struct trec, key)

/* A counting allocator that fails the chosen calls. */
struct fa {
	long calls;   /* allocations attempted */
	long fail_at; /* 1-based; 0: never */
	long live;    /* blocks not yet freed */
};

static void *fa_alloc(void *opaque, size_t size)
{
	struct fa *fa = opaque;

	if (++fa->calls == fa->fail_at)
		return NULL;
	fa->live++;
	return malloc(size);
}

static void fa_free(void *opaque, void *p)
{
	struct fa *fa = opaque;

	if (p)
		fa->live--;
	free(p);
}

static struct viommu_allocator fa_of(struct fa *fa)
{
	return (struct viommu_allocator){ fa_alloc, fa_free, fa };
}

/* add() - reserve, then insert {@key, @val}.  Return: reserve's result. */
static int add(struct trecs *t, const struct viommu_allocator *al,
	       uint32_t key, uint64_t val)
{
	struct trec r = { .key = key, .val = val };
	int ret = trecs_reserve(t, al);

	if (!ret)
		CHECK(trecs_insert(t, &r)->val == val);
	return ret;
}

/* sorted() - whether the keys ascend strictly. */
static bool sorted(const struct trecs *t)
{
	for (uint32_t i = 1; i < trecs_count(t); i++)
		if (trecs_at(t, i - 1)->key >= trecs_at(t, i)->key)
			return false;
	return true;
}

/* xorshift32: a deterministic stream for the random walk. */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

#define NKEYS 96u
#define MAXREC 40u /* below the walk's balance (NKEYS / 2) */

TEST(model)
{
	struct fa fa = { 0 };
	struct viommu_allocator al = fa_of(&fa);
	bool present[NKEYS] = { false };
	uint64_t val[NKEYS] = { 0 };
	uint32_t s = 0x9e3779b9, n = 0, full = 0;
	struct trecs t;

	trecs_init(&t, MAXREC);
	for (int op = 0; op < 20000; op++) {
		uint32_t k = rnd(&s) % NKEYS, what = rnd(&s) % 3;
		struct trec *r;

		if (what == 0 && !present[k]) {
			int ret = add(&t, &al, k, (uint64_t)op);

			if (n == MAXREC) {
				CHECK_EQ(ret, -ENOSPC);
				full++;
			} else {
				CHECK_EQ(ret, 0);
				present[k] = true;
				val[k] = (uint64_t)op;
				n++;
			}
		} else if (what == 1) {
			CHECK_EQ(trecs_remove(&t, k), present[k]);
			n -= present[k];
			present[k] = false;
		} else {
			r = trecs_find(&t, k);
			CHECK_EQ(r != NULL, present[k]);
			if (r && present[k]) {
				CHECK_EQ(r->key, k);
				CHECK_U64(r->val, val[k]);
				/* the hint: asked again, the same record */
				CHECK(trecs_find(&t, k) == r);
			}
		}
		REQUIRE(trecs_count(&t) == n);
		REQUIRE(sorted(&t));
	}
	CHECK(full > 0); /* the walk did reach the bound */
	for (uint32_t k = 0; k < NKEYS; k++)
		CHECK_EQ(trecs_find(&t, k) != NULL, present[k]);
	trecs_fini(&t, &al);
	CHECK_EQ(trecs_count(&t), 0);
	CHECK_EQ(fa.live, 0);
}

TEST(bounds)
{
	struct viommu_allocator al = { 0 };
	struct trecs t;

	trecs_init(&t, 3);
	CHECK(trecs_find(&t, 0) == NULL); /* empty, never allocated */
	CHECK(!trecs_remove(&t, 0));
	CHECK_EQ(add(&t, &al, UINT32_MAX, 1), 0);
	CHECK_EQ(add(&t, &al, 0, 2), 0);
	CHECK_EQ(add(&t, &al, 7, 3), 0);
	CHECK_EQ(t.a.cap, 3); /* clamped to the bound, not 16 */
	CHECK_EQ(add(&t, &al, 5, 4), -ENOSPC);
	CHECK_EQ(trecs_count(&t), 3);
	CHECK(trecs_find(&t, 5) == NULL);
	CHECK_EQ(trecs_at(&t, 0)->key, 0);
	CHECK_EQ(trecs_at(&t, 1)->key, 7);
	CHECK_EQ(trecs_at(&t, 2)->key, UINT32_MAX);
	CHECK_U64(trecs_find(&t, UINT32_MAX)->val, 1);
	/* a removal makes room again without a new allocation */
	CHECK(trecs_remove(&t, 7));
	CHECK(!trecs_remove(&t, 7));
	CHECK_EQ(add(&t, &al, 5, 4), 0);
	CHECK_EQ(trecs_at(&t, 1)->key, 5);
	trecs_clear(&t);
	CHECK_EQ(trecs_count(&t), 0);
	CHECK(trecs_find(&t, 0) == NULL); /* a stale hint is not trusted */
	trecs_fini(&t, &al);

	trecs_init(&t, 0); /* a bound of 0 takes nothing */
	CHECK_EQ(trecs_reserve(&t, &al), -ENOSPC);
	trecs_fini(&t, &al);
}

TEST(growth_failure)
{
	struct fa fa = { 0 };
	struct viommu_allocator al = fa_of(&fa);
	struct trecs t;
	uint32_t k;

	trecs_init(&t, 40);
	fa.fail_at = 1; /* the first block */
	CHECK_EQ(add(&t, &al, 10, 10), -ENOMEM);
	CHECK_EQ(trecs_count(&t), 0);
	CHECK_EQ(fa.live, 0);
	for (k = 0; k < 16; k++) /* 16 records: the first block is full */
		REQUIRE(add(&t, &al, 2 * k, k) == 0);
	CHECK_EQ(t.a.cap, 16);
	fa.fail_at = fa.calls + 1; /* the growth to 32 */
	CHECK_EQ(add(&t, &al, 1, 99), -ENOMEM);
	CHECK_EQ(trecs_count(&t), 16);
	CHECK_EQ(t.a.cap, 16);
	CHECK_EQ(fa.live, 1);
	for (k = 0; k < 16; k++)
		CHECK_U64(trecs_find(&t, 2 * k)->val, k);
	CHECK(trecs_find(&t, 1) == NULL);
	CHECK(sorted(&t));
	CHECK_EQ(add(&t, &al, 1, 99), 0); /* the retry grows */
	CHECK_EQ(t.a.cap, 32);
	for (k = 17; k < 40; k++)
		REQUIRE(add(&t, &al, 1000 + k, k) == 0);
	CHECK_EQ(t.a.cap, 40); /* the last growth stops at the bound */
	CHECK_EQ(add(&t, &al, 5000, 0), -ENOSPC);
	CHECK_EQ(fa.live, 1);
	trecs_fini(&t, &al);
	CHECK_EQ(fa.live, 0);
}

TEST_MAIN()
