/*
 * test_mapstore_idx.c - unit tests of the mapping store's page index
 * (src/core/pageidx.c) behind the ms_* API (src/core/mapstore_join.c):
 * which mappings it holds, overlaps refused across the index and the
 * B+tree in both directions, straddles refused across them, walks and
 * removal callbacks merged in order, the memory rule against a sparse
 * guest and (context-wide, with a pool) against one that thins a dense
 * fill, a dense random fill held entirely by the index, the cached leaf
 * (no allocation per map+unmap pair), growth of the height, and
 * allocation failures.  The randomized differential tests and the
 * concurrent readers of the two structures together are in
 * test_mapstore.c (differential_mixed*, *_writer_index).
 */
#include "harness.h"
#include "core/mapstore.h"
#include "core/pageidx.h"
#include "core/rcu.h"
#include "base/util.h"

#include <errno.h>

#define PG 4096ull
#define MAXA UINT64_MAX
#define NODE 528ull /* sizeof(struct pi_node) */

static uint64_t pg(uint64_t i)
{
	return i * PG;
}

/* page() - insert page @i -> gpa page i + 7 with @prot. */
static int page(struct mapstore *ms, uint64_t i, uint32_t prot)
{
	struct ms_entry e = { pg(i), pg(i) + PG - 1, pg(i + 7), prot };

	return ms_insert(ms, &e);
}

/* range() - insert [start, last] -> gpa 0x1000 (the B+tree). */
static int range(struct mapstore *ms, uint64_t start, uint64_t last)
{
	struct ms_entry e = { start, last, 0x1000, 1 };

	return ms_insert(ms, &e);
}

/* Collects walked or removed entries. */
struct collect {
	struct ms_entry e[512];
	size_t n;
	size_t stop_after;
};

static int collect_fn(void *opaque, const struct ms_entry *e)
{
	struct collect *c = opaque;

	if (c->n < ARRAY_SIZE(c->e))
		c->e[c->n] = *e;
	c->n++;
	return c->stop_after && c->n == c->stop_after ? 9 : 0;
}

static void collect_rm(void *opaque, const struct ms_entry *e)
{
	collect_fn(opaque, e);
}

/* ascending() - @c's entries are in ascending order and disjoint. */
static bool ascending(const struct collect *c)
{
	for (size_t i = 1; i < c->n && i < ARRAY_SIZE(c->e); i++)
		if (c->e[i - 1].last >= c->e[i].start)
			return false;
	return true;
}

/* A counting allocator that can fail its Nth call. */
struct fa {
	long calls, fail_at, live;
};

static void *fa_alloc(void *opaque, size_t size)
{
	struct fa *f = opaque;

	if (++f->calls == f->fail_at)
		return NULL;
	f->live++;
	return malloc(size);
}

static void fa_free(void *opaque, void *p)
{
	struct fa *f = opaque;

	f->live--;
	free(p);
}

/* ---- placement ----------------------------------------------------------- */

/* pages_go_to_the_index - and every other shape to the B+tree. */
TEST(pages_go_to_the_index)
{
	struct mapstore ms;
	struct ms_entry e;

	ms_init(&ms, NULL, NULL);
	CHECK_EQ(page(&ms, 10, 3), 0);
	CHECK_EQ(ms.pi.count, 1);
	CHECK_EQ(ms.bt.count, 0);
	/* unaligned start, two pages, unaligned gpa, prot beyond 11 bits */
	CHECK_EQ(range(&ms, pg(20) + 1, pg(21)), 0);
	CHECK_EQ(range(&ms, pg(30), pg(32) - 1), 0);
	e = (struct ms_entry){ pg(40), pg(41) - 1, 0x1234, 1 };
	CHECK_EQ(ms_insert(&ms, &e), 0);
	CHECK_EQ(page(&ms, 50, 1u << 11), 0);
	CHECK_EQ(page(&ms, 51, (1u << 11) - 1), 0);
	CHECK_EQ(ms.pi.count, 2);
	CHECK_EQ(ms.bt.count, 4);
	CHECK_EQ(ms.count, 6);
	CHECK_U64(ms.bytes, 2 * PG + PG + 2 * PG + PG + PG);
	CHECK_U64(ms.host_bytes, ms.pi.host_bytes + ms.bt.host_bytes);
	CHECK_EQ(ms_lookup(&ms, pg(10) + 5, &e), 0);
	CHECK(e.start == pg(10) && e.last == pg(10) + PG - 1 &&
	      e.gpa == pg(17) && e.prot == 3);
	CHECK_EQ(ms_lookup_rcu(&ms, pg(51) + PG - 1, &e), 0);
	CHECK(e.gpa == pg(58) && e.prot == (1u << 11) - 1);
	CHECK_EQ(ms_lookup_rcu(&ms, pg(50), &e), 0); /* in the B+tree */
	CHECK(e.prot == 1u << 11);
	CHECK_EQ(ms_lookup(&ms, pg(11), &e), -ENOENT);
	CHECK_EQ(ms_lookup_rcu(&ms, pg(11), &e), -ENOENT);
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);
	CHECK_U64(ms.host_bytes, 0);
}

/* height_grows_to_the_top - pages at the ends of the IOVA space. */
TEST(height_grows_to_the_top)
{
	struct mapstore ms;
	struct ms_entry e;
	uint64_t top = MAXA >> 12;

	ms_init(&ms, NULL, NULL);
	CHECK_EQ(page(&ms, 5, 1), 0);
	CHECK_EQ(page(&ms, 64, 1), 0);    /* height 2 */
	CHECK_EQ(page(&ms, 1u << 20, 1), 0);
	CHECK_EQ(page(&ms, top, 1), 0);   /* height 9 */
	CHECK_EQ(page(&ms, top, 1), -EEXIST);
	CHECK_EQ(ms.pi.count, 4);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_lookup_rcu(&ms, MAXA, &e), 0);
	CHECK_U64(e.start, pg(top));
	CHECK_EQ(ms_lookup_rcu(&ms, pg(5), &e), 0);
	CHECK_EQ(ms_first_overlap(&ms, pg(6), MAXA, &e), 0);
	CHECK_U64(e.start, pg(64));
	CHECK_EQ(ms_remove_range(&ms, pg(6), MAXA, NULL, NULL, NULL), 3);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_lookup_rcu(&ms, MAXA, &e), -ENOENT);
	CHECK_EQ(ms_lookup_rcu(&ms, pg(5), &e), 0);
	ms_destroy(&ms);
}

/* ---- overlaps and straddles across the two structures -------------------- */

/* overlap_refused_both_ways - index page vs B+tree range and back. */
TEST(overlap_refused_both_ways)
{
	struct mapstore ms;

	ms_init(&ms, NULL, NULL);
	CHECK_EQ(page(&ms, 100, 1), 0);
	/* B+tree inserts meeting the index page at every position */
	CHECK_EQ(range(&ms, pg(100), pg(100)), -EEXIST);
	CHECK_EQ(range(&ms, pg(100) + PG - 1, pg(102)), -EEXIST);
	CHECK_EQ(range(&ms, pg(99), pg(100)), -EEXIST);
	CHECK_EQ(range(&ms, 0, MAXA), -EEXIST);
	CHECK_EQ(range(&ms, pg(99) + 1, pg(100) - 1), 0); /* touches only */
	CHECK_EQ(range(&ms, pg(101), pg(101) + 10), 0);
	/* index-shaped inserts meeting a B+tree entry */
	CHECK_EQ(page(&ms, 99, 1), -EEXIST);
	CHECK_EQ(page(&ms, 101, 1), -EEXIST);
	CHECK_EQ(page(&ms, 100, 1), -EEXIST);
	CHECK_EQ(range(&ms, pg(200), pg(300) - 1), 0);
	for (uint64_t i = 200; i < 300; i += 7)
		CHECK_EQ(page(&ms, i, 1), -EEXIST);
	CHECK_EQ(page(&ms, 300, 1), 0);
	CHECK_EQ(ms.pi.count, 2);
	CHECK_EQ(ms.bt.count, 3);
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);
}

/* straddle_refused_across - neither structure changes on -ERANGE. */
TEST(straddle_refused_across)
{
	struct mapstore ms;
	struct collect c = { .n = 0 };
	uint64_t b = 7;

	ms_init(&ms, NULL, NULL);
	CHECK_EQ(page(&ms, 10, 1), 0);
	CHECK_EQ(page(&ms, 12, 1), 0);
	CHECK_EQ(range(&ms, pg(11), pg(12) - 1), 0);
	CHECK_EQ(range(&ms, pg(13), pg(15) - 1), 0);
	/* an index page straddles the start, B+tree entries inside */
	CHECK_EQ(ms_remove_range(&ms, pg(10) + 1, pg(13) - 1, collect_rm, &c,
				 &b), -ERANGE);
	/* an index page straddles the end */
	CHECK_EQ(ms_remove_range(&ms, pg(11), pg(12) + 5, collect_rm, &c, &b),
		 -ERANGE);
	/* a B+tree entry straddles the end, an index page inside */
	CHECK_EQ(ms_remove_range(&ms, pg(10), pg(14), collect_rm, &c, &b),
		 -ERANGE);
	CHECK_EQ(c.n, 0);
	CHECK_U64(b, 0);
	CHECK_EQ(ms.count, 4);
	CHECK_EQ(ms_check(&ms), 0);
	/* a page-sized range over a B+tree entry's middle */
	CHECK_EQ(range(&ms, pg(20), pg(23) - 1), 0);
	CHECK_EQ(ms_remove_range(&ms, pg(21), pg(22) - 1, NULL, NULL, NULL),
		 -ERANGE);
	/* gaps are fine */
	CHECK_EQ(ms_remove_range(&ms, pg(16), pg(19) + 77, NULL, NULL, NULL),
		 0);
	CHECK_EQ(ms_remove_range(&ms, pg(10), pg(15) - 1, collect_rm, &c, &b),
		 4);
	CHECK_U64(b, 5 * PG);
	CHECK_EQ(c.n, 4);
	CHECK(ascending(&c));
	CHECK_EQ(ms.count, 1);
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);
}

/* ---- ordered merges ------------------------------------------------------ */

/* walk_and_remove_merge_in_order - interleaved pages and ranges. */
TEST(walk_and_remove_merge_in_order)
{
	struct mapstore ms;
	struct collect c = { .n = 0 };
	struct ms_entry e;
	uint64_t b;

	ms_init(&ms, NULL, NULL);
	/* pages at 3k, ranges of two pages at 3k + 1 (k < 100) */
	for (uint64_t k = 0; k < 100; k++) {
		CHECK_EQ(page(&ms, 3 * k, 1), 0);
		CHECK_EQ(range(&ms, pg(3 * k + 1), pg(3 * k + 3) - 1), 0);
	}
	CHECK_EQ(ms.pi.count, 100);
	CHECK_EQ(ms.bt.count, 100);
	CHECK_EQ(ms_walk(&ms, 0, MAXA, collect_fn, &c), 0);
	CHECK_EQ(c.n, 200);
	CHECK(ascending(&c));
	for (size_t i = 0; i < c.n; i++)
		CHECK_U64(c.e[i].start, pg(3 * (i / 2) + (i & 1)));
	/* a sub-range starting inside a B+tree entry; a stopped walk */
	c.n = 0;
	CHECK_EQ(ms_walk(&ms, pg(2), pg(9), collect_fn, &c), 0);
	CHECK_EQ(c.n, 6);
	CHECK_U64(c.e[0].start, pg(1));
	CHECK_U64(c.e[5].start, pg(9));
	c.n = 0;
	c.stop_after = 3;
	CHECK_EQ(ms_walk(&ms, 0, MAXA, collect_fn, &c), 9);
	CHECK_EQ(c.n, 3);
	c.stop_after = 0;
	CHECK_EQ(ms_first_overlap(&ms, pg(1) + 5, MAXA, &e), 0);
	CHECK_U64(e.start, pg(1));
	CHECK_EQ(ms_first_overlap(&ms, pg(3) + 5, MAXA, &e), 0);
	CHECK_U64(e.start, pg(3));
	/* removal callbacks in order across both */
	c.n = 0;
	CHECK_EQ(ms_remove_range(&ms, pg(30), pg(90) - 1, collect_rm, &c, &b),
		 40);
	CHECK_U64(b, 20 * PG + 20 * 2 * PG);
	CHECK_EQ(c.n, 40);
	CHECK(ascending(&c));
	CHECK_U64(c.e[0].start, pg(30));
	CHECK_U64(c.e[39].start, pg(88));
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_remove_range(&ms, 0, MAXA, NULL, NULL, &b), 160);
	CHECK_EQ(ms.count, 0);
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);
}

/* ---- memory -------------------------------------------------------------- */

/*
 * sparse_fill_stays_under_the_rule - one page per 256 KiB (one per leaf):
 * the index stops taking pages when its memory would pass 64 B per entry
 * plus the slack; the rest go to the B+tree and are all found.
 */
TEST(sparse_fill_stays_under_the_rule)
{
	struct mapstore ms;
	struct ms_entry e;
	uint64_t n = 60000;

	ms_init(&ms, NULL, NULL);
	for (uint64_t i = 0; i < n; i++)
		REQUIRE(page(&ms, 64 * i, 1) == 0);
	printf("#   index %llu pages in %llu B, B+tree %llu pages in %llu B\n",
	       (unsigned long long)ms.pi.count,
	       (unsigned long long)ms.pi.host_bytes,
	       (unsigned long long)ms.bt.count,
	       (unsigned long long)ms.bt.host_bytes);
	CHECK(ms.pi.host_bytes <= 64 * ms.pi.count + PI_SLACK_DEFAULT);
	CHECK(ms.bt.count > 0);
	CHECK(ms.pi.count > 0);
	CHECK_EQ(ms.count, n);
	for (uint64_t i = 0; i < n; i += 997) {
		CHECK_EQ(ms_lookup_rcu(&ms, pg(64 * i) + 9, &e), 0);
		CHECK_U64(e.gpa, pg(64 * i + 7));
	}
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);
}

/*
 * dense_random_fill_all_in_index - 2^20 pages in random order all land
 * in the index (the slack covers the sparse phase), at well under 64 B per
 * mapping; emptying in random order leaves the cached path only.
 */
TEST(dense_random_fill_all_in_index)
{
	uint32_t n = 1u << 20, *order = malloc(n * sizeof(*order));
	uint64_t st = 0x9e3779b97f4a7c15ull, peak = 0;
	struct mapstore ms;

	REQUIRE(order != NULL);
	for (uint32_t i = 0; i < n; i++)
		order[i] = i;
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j, t;

		st ^= st << 13;
		st ^= st >> 7;
		st ^= st << 17;
		j = (uint32_t)(st % (i + 1));
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	ms_init(&ms, NULL, NULL);
	for (uint32_t i = 0; i < n; i++) {
		REQUIRE(page(&ms, order[i], 1) == 0);
		if (ms.pi.host_bytes > 64 * ms.pi.count)
			peak = MAX(peak, ms.pi.host_bytes - 64 * ms.pi.count);
	}
	printf("#   %.2f B per mapping; peak over 64 B/entry: %llu B\n",
	       (double)ms.host_bytes / n, (unsigned long long)peak);
	CHECK_EQ(ms.bt.count, 0);
	CHECK_EQ(ms.pi.count, n);
	CHECK(ms.host_bytes / n <= 16);
	CHECK(peak <= PI_SLACK_DEFAULT);
	CHECK_EQ(ms_check(&ms), 0);
	for (uint32_t i = 0; i < n; i++)
		REQUIRE(ms_remove_range(&ms, pg(order[i]),
					pg(order[i]) + PG - 1, NULL, NULL,
					NULL) == 1);
	CHECK_EQ(ms.count, 0);
	CHECK(ms.host_bytes <= 9 * NODE);
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);
	free(order);
}

/*
 * pool_bounds_thinned_stores - two stores sharing a context's pool: one
 * filled densely, then thinned to one page per leaf, keeps its leaves;
 * the other's sparse pages then find the pool's rule refusing new nodes
 * (per-store slack alone would take them all) and go to its B+tree, so
 * the pool never passes 64 B per live mapping + its slack.
 */
TEST(pool_bounds_thinned_stores)
{
	uint64_t live = 0, worst = 0;
	struct pi_pool pool = { .slack = 64 << 10, .entries = &live };
	struct mapstore a, b;

	ms_init(&a, NULL, NULL);
	ms_init(&b, NULL, NULL);
	ms_share_pool(&a, &pool);
	ms_share_pool(&b, &pool);
	for (uint64_t i = 0; i < 8192; i++) {
		live++; /* as the context reserves its unit first */
		REQUIRE(page(&a, i, 1) == 0);
	}
	CHECK_EQ(a.pi.count, 8192);
	for (uint64_t i = 0; i < 8192; i++)
		if (i % 64) {
			REQUIRE(ms_remove_range(&a, pg(i), pg(i) + PG - 1,
						NULL, NULL, NULL) == 1);
			live--;
		}
	CHECK_EQ(a.pi.count, 128);
	for (uint64_t k = 0; k < 1000; k++) {
		live++;
		REQUIRE(page(&b, (1u << 20) + 64 * k, 1) == 0);
		if (pool.bytes > 64 * live)
			worst = MAX(worst, pool.bytes - 64 * live);
	}
	printf("#   pool %llu B for %llu live; b: index %llu, B+tree %llu\n",
	       (unsigned long long)pool.bytes, (unsigned long long)live,
	       (unsigned long long)b.pi.count, (unsigned long long)b.bt.count);
	CHECK(b.bt.count > 800); /* about one page in 8 pays for a leaf */
	CHECK_U64(pool.bytes, a.pi.host_bytes + b.pi.host_bytes);
	CHECK(worst <= pool.slack + 9 * NODE);
	CHECK_EQ(ms_check(&a), 0);
	CHECK_EQ(ms_check(&b), 0);
	ms_destroy(&a);
	ms_destroy(&b);
	CHECK_U64(pool.bytes, 0);
}

/*
 * cached_leaf_no_alloc - mapping and unmapping pages of one leaf in an
 * otherwise empty store, or beside other mappings, allocates nothing
 * after the first pair; moving to another leaf frees the old one.
 */
TEST(cached_leaf_no_alloc)
{
	struct fa f = { 0 };
	struct viommu_allocator a = { fa_alloc, fa_free, &f };
	struct mapstore ms;
	long calls;

	ms_init(&ms, &a, NULL);
	CHECK_EQ(page(&ms, 1000, 1), 0);
	CHECK_EQ(ms_remove_range(&ms, pg(1000), pg(1001) - 1, NULL, NULL,
				 NULL), 1);
	calls = f.calls;
	for (uint64_t i = 0; i < 1000; i++) {
		CHECK_EQ(page(&ms, 960 + i % 64, 1), 0);
		CHECK_EQ(ms_remove_range(&ms, pg(960 + i % 64),
					 pg(961 + i % 64) - 1, NULL, NULL,
					 NULL), 1);
	}
	CHECK_EQ(f.calls, calls);
	CHECK_EQ(ms_check(&ms), 0);
	/* beside other mappings (another leaf, and a range) */
	CHECK_EQ(page(&ms, 5, 1), 0);
	CHECK_EQ(range(&ms, pg(70) + 1, pg(71)), 0);
	calls = f.calls;
	for (uint64_t i = 0; i < 1000; i++) {
		CHECK_EQ(page(&ms, 960 + i % 64, 1), 0);
		CHECK_EQ(ms_remove_range(&ms, pg(960 + i % 64),
					 pg(961 + i % 64) - 1, NULL, NULL,
					 NULL), 1);
	}
	CHECK_EQ(f.calls, calls);
	/* another leaf empties: only one empty leaf stays */
	CHECK_EQ(ms_remove_range(&ms, pg(5), pg(6) - 1, NULL, NULL, NULL), 1);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK(ms.pi.host_bytes <= 9 * NODE);
	ms_destroy(&ms);
	CHECK_EQ(f.live, 0);
}

/*
 * retired_nodes_wait_for_readers - leaves unlinked while a reader is
 * inside a read section are retired, not freed (it may hold them); once
 * it has left, emptying the store frees them.
 */
TEST(retired_nodes_wait_for_readers)
{
	struct fa f = { 0 };
	struct viommu_allocator a = { fa_alloc, fa_free, &f };
	struct mapstore ms;
	struct rcu r;
	long live;
	uint32_t tok;

	rcu_init(&r);
	ms_init(&ms, &a, &r);
	for (uint64_t i = 0; i < 40; i++) /* one page per leaf */
		CHECK_EQ(page(&ms, 64 * i, 1), 0);
	live = f.live;
	tok = rcu_read_lock(&r);
	for (uint64_t i = 0; i < 39; i++)
		CHECK_EQ(ms_remove_range(&ms, pg(64 * i), pg(64 * i) + PG - 1,
					 NULL, NULL, NULL), 1);
	/* 38 leaves unlinked (the last emptied one stays), none freed */
	CHECK_U64(ms.pi.retired_bytes, 38 * NODE);
	CHECK_EQ(f.live, live);
	CHECK_EQ(ms_check(&ms), 0);
	rcu_read_unlock(&r, tok);
	CHECK_EQ(ms_remove_range(&ms, pg(64 * 39), pg(64 * 39) + PG - 1, NULL,
				 NULL, NULL), 1);
	CHECK(ms.pi.retired == NULL && ms.pi.waiting == NULL);
	CHECK_EQ(f.live, live - 39);
	CHECK(ms.host_bytes <= 9 * NODE);
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);
	CHECK_EQ(f.live, 0);
	rcu_fini(&r);
}

/*
 * alloc_failure_changes_nothing - fail each allocation of a page insert
 * that needs a new path (growth, new leaf, new subtree) in turn.
 */
TEST(alloc_failure_changes_nothing)
{
	static const uint64_t seq[] = { 3, 70, 1u << 20, 1ull << 40, 5000, 65 };

	for (long k = 1; k <= 40; k++) {
		struct fa f = { .fail_at = k };
		struct viommu_allocator a = { fa_alloc, fa_free, &f };
		struct mapstore ms;
		int failed = 0, rc;

		ms_init(&ms, &a, NULL);
		for (size_t i = 0; i < ARRAY_SIZE(seq); i++) {
			uint64_t host = ms.host_bytes, cnt = ms.count;

			rc = page(&ms, seq[i], 1);
			if (rc == -ENOMEM) {
				failed++;
				CHECK_U64(ms.host_bytes, host);
				CHECK_EQ(ms.count, cnt);
				CHECK_EQ(ms_check(&ms), 0);
				rc = page(&ms, seq[i], 1);
			}
			CHECK_EQ(rc, 0);
		}
		CHECK(failed <= 1);
		CHECK_EQ(ms.pi.count, ARRAY_SIZE(seq));
		CHECK_EQ(ms_check(&ms), 0);
		ms_destroy(&ms);
		CHECK_EQ(f.live, 0);
	}
}

TEST_MAIN()
