/*
 * test_mapstore.c - unit tests of the mapping store (src/core/mapstore.c,
 * and with the page index beside it, src/core/pageidx.c): look-ups,
 * overlap rejection at every relative position, remove_range refusing
 * splits and accepting gaps, the ends of the IOVA space and the
 * full-space entry, density of ascending inserts, other insert orders, a
 * randomized differential test against a sorted-array model (the B+tree
 * alone, and mixing page and other mappings over both structures, with
 * and without lock-free readers' grace periods, with allocation failures
 * injected), allocation-failure injection, the lock-free search
 * (ms_lookup_rcu; against a concurrent writer: test_mapstore_threads.c),
 * and the memory-reclamation rule (no node freed while a reader that may
 * hold it is inside its read section).  ms_check() verifies the store
 * after each step that matters.  Page-index specifics:
 * test_mapstore_idx.c.
 */
#include "harness.h"
#include "core/mapstore.h"
#include "core/rcu.h"
#include "base/util.h"

#include <errno.h>
#include <pthread.h>

#define PG 4096ull
#define MAXA UINT64_MAX

/* ---- helpers ------------------------------------------------------------- */

/* ent() - an entry by value. */
static struct ms_entry ent(uint64_t start, uint64_t last, uint64_t gpa,
			   uint32_t prot)
{
	return (struct ms_entry){ .start = start, .last = last, .gpa = gpa,
				  .prot = prot };
}

/* ins() - insert [start, last] with a gpa and prot derived from start. */
static int ins(struct mapstore *ms, uint64_t start, uint64_t last)
{
	struct ms_entry e = ent(start, last, start ^ 0x5a5a000, start & 7);

	return ms_insert(ms, &e);
}

/* same_entry() - all four fields equal. */
static int same_entry(const struct ms_entry *a, const struct ms_entry *b)
{
	return a->start == b->start && a->last == b->last &&
	       a->gpa == b->gpa && a->prot == b->prot;
}

/* Deterministic xorshift64* generator; tests seed rng_state. */
static uint64_t rng_state;

/* rnd() - the next 64 random bits. */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

/* rnd_below() - uniform-ish in [0, n), n > 0. */
static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

/* Collects walked entries. */
struct collect {
	struct ms_entry *e;
	size_t n, cap;
	int stop_after; /* return 7 after this many; 0 = never */
};

/* collect_fn() - ms_walk() callback appending to a struct collect. */
static int collect_fn(void *opaque, const struct ms_entry *e)
{
	struct collect *c = opaque;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->e = realloc(c->e, c->cap * sizeof(*c->e));
	}
	c->e[c->n++] = *e;
	return c->stop_after && (int)c->n == c->stop_after ? 7 : 0;
}

/* collect_removed() - ms_remove_range() callback, same. */
static void collect_removed(void *opaque, const struct ms_entry *e)
{
	collect_fn(opaque, e);
}

/* ---- a sorted-array reference model -------------------------------------- */

struct model {
	struct ms_entry *e;
	size_t n, cap;
};

/* m_first() - index of the first entry whose last is >= @x. */
static size_t m_first(const struct model *m, uint64_t x)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->e[mid].last < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* m_insert() - model of ms_insert(). */
static int m_insert(struct model *m, const struct ms_entry *e)
{
	size_t i;

	if (e->start > e->last)
		return -EINVAL;
	i = m_first(m, e->start);
	if (i < m->n && m->e[i].start <= e->last)
		return -EEXIST;
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->e = realloc(m->e, m->cap * sizeof(*m->e));
	}
	memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof(*m->e));
	m->e[i] = *e;
	m->n++;
	return 0;
}

/* m_lookup() - model of ms_lookup(). */
static int m_lookup(const struct model *m, uint64_t x, struct ms_entry *out)
{
	size_t i = m_first(m, x);

	if (i == m->n || m->e[i].start > x)
		return -ENOENT;
	*out = m->e[i];
	return 0;
}

/* m_first_overlap() - model of ms_first_overlap(). */
static int m_first_overlap(const struct model *m, uint64_t s, uint64_t l,
			   struct ms_entry *out)
{
	size_t i = m_first(m, s);

	if (s > l)
		return -EINVAL;
	if (i == m->n || m->e[i].start > l)
		return -ENOENT;
	*out = m->e[i];
	return 0;
}

/* m_sum() - saturating sum of sizes of @n entries. */
static uint64_t m_sum(const struct ms_entry *e, size_t n)
{
	uint64_t spans = 0, total;

	for (size_t i = 0; i < n; i++)
		spans += e[i].last - e[i].start;
	if (__builtin_add_overflow(spans, (uint64_t)n, &total))
		return MAXA;
	return total;
}

/* m_remove() - model of ms_remove_range(), without the callback. */
static long m_remove(struct model *m, uint64_t s, uint64_t l, uint64_t *bytes)
{
	size_t i, j;

	*bytes = 0;
	if (s > l)
		return -EINVAL;
	i = m_first(m, s);
	if (i < m->n && m->e[i].start < s && m->e[i].last >= s)
		return -ERANGE;
	for (j = i; j < m->n && m->e[j].start <= l; j++)
		if (m->e[j].last > l)
			return -ERANGE;
	*bytes = m_sum(&m->e[i], j - i);
	memmove(&m->e[i], &m->e[j], (m->n - j) * sizeof(*m->e));
	m->n -= j - i;
	return (long)(j - i);
}

/* same_as_model() - full contents, count and bytes agree, tree is sound. */
static int same_as_model(const struct mapstore *ms, const struct model *m)
{
	struct collect c = { 0 };
	int ok = ms_walk(ms, 0, MAXA, collect_fn, &c) == 0 && c.n == m->n &&
		 ms->count == m->n && ms->bytes == m_sum(m->e, m->n) &&
		 ms_check(ms) == 0;

	for (size_t i = 0; ok && i < m->n; i++)
		ok = same_entry(&c.e[i], &m->e[i]);
	free(c.e);
	return ok;
}

/* ---- a counting, fault-injecting allocator ------------------------------- */

struct fa {
	long calls;     /* allocation calls so far */
	long fail_at;   /* fail this call (1-based); 0 = never */
	long fail_from; /* fail this call and every later one; 0 = never */
	long live;      /* allocations not yet freed */
	uint64_t live_bytes;
};

/* fa_alloc() - malloc with a size header, failing as configured. */
static void *fa_alloc(void *opaque, size_t size)
{
	struct fa *f = opaque;
	uint64_t *p;

	f->calls++;
	if (f->calls == f->fail_at ||
	    (f->fail_from && f->calls >= f->fail_from))
		return NULL;
	p = malloc(size + 16);
	if (!p)
		return NULL;
	p[0] = size;
	f->live++;
	f->live_bytes += size;
	return p + 2;
}

/* fa_free() - release an fa_alloc() block. */
static void fa_free(void *opaque, void *ptr)
{
	struct fa *f = opaque;
	uint64_t *p = (uint64_t *)ptr - 2;

	f->live--;
	f->live_bytes -= p[0];
	free(p);
}

/* ---- basics -------------------------------------------------------------- */

/* empty_store - every call on an empty store. */
TEST(empty_store)
{
	struct mapstore ms;
	struct ms_entry e;
	uint64_t b = 1;

	ms_init_tree_only(&ms, NULL, NULL);
	CHECK_EQ(ms_lookup(&ms, 0, &e), -ENOENT);
	CHECK_EQ(ms_lookup(&ms, MAXA, &e), -ENOENT);
	CHECK_EQ(ms_first_overlap(&ms, 0, MAXA, &e), -ENOENT);
	CHECK_EQ(ms_remove_range(&ms, 0, MAXA, NULL, NULL, &b), 0);
	CHECK_U64(b, 0);
	CHECK_EQ(ms_remove_range(&ms, 5, 4, NULL, NULL, NULL), -EINVAL);
	CHECK_EQ(ms_walk(&ms, 0, MAXA, collect_fn, NULL), 0);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms.bt.height, 0);
	CHECK_U64(ms.host_bytes, 0);
	ms_destroy(&ms);
}

/* insert_lookup_basic - fields, edges, gaps, counters, -EINVAL. */
TEST(insert_lookup_basic)
{
	struct mapstore ms;
	struct ms_entry e, got;

	ms_init_tree_only(&ms, NULL, NULL);
	e = ent(0x10000, 0x1ffff, 0xabc000, 3);
	CHECK_EQ(ms_insert(&ms, &e), 0);
	e = ent(0x30000, 0x30fff, 0xdef000, 1);
	CHECK_EQ(ms_insert(&ms, &e), 0);
	CHECK_EQ(ms.count, 2);
	CHECK_U64(ms.bytes, 0x11000);
	CHECK_EQ(ms.bt.height, 1);
	CHECK(ms.host_bytes > 0);

	CHECK_EQ(ms_lookup(&ms, 0x10000, &got), 0);
	CHECK_U64(got.start, 0x10000);
	CHECK_U64(got.last, 0x1ffff);
	CHECK_U64(got.gpa, 0xabc000);
	CHECK_EQ(got.prot, 3);
	CHECK_EQ(ms_lookup(&ms, 0x1ffff, &got), 0);
	CHECK_U64(got.start, 0x10000);
	CHECK_EQ(ms_lookup(&ms, 0x30800, &got), 0);
	CHECK_U64(got.gpa, 0xdef000);
	CHECK_EQ(ms_lookup(&ms, 0xffff, &got), -ENOENT);
	CHECK_EQ(ms_lookup(&ms, 0x20000, &got), -ENOENT);
	CHECK_EQ(ms_lookup(&ms, 0x31000, &got), -ENOENT);

	CHECK_EQ(ms_first_overlap(&ms, 0, 0xffff, &got), -ENOENT);
	CHECK_EQ(ms_first_overlap(&ms, 0, 0x10000, &got), 0);
	CHECK_U64(got.start, 0x10000);
	CHECK_EQ(ms_first_overlap(&ms, 0x1ffff, MAXA, &got), 0);
	CHECK_U64(got.start, 0x10000);
	CHECK_EQ(ms_first_overlap(&ms, 0x20000, MAXA, &got), 0);
	CHECK_U64(got.start, 0x30000);
	CHECK_EQ(ms_first_overlap(&ms, 0x20000, 0x2ffff, &got), -ENOENT);
	CHECK_EQ(ms_first_overlap(&ms, 2, 1, &got), -EINVAL);

	e = ent(5, 4, 0, 0);
	CHECK_EQ(ms_insert(&ms, &e), -EINVAL);
	CHECK_EQ(ms.count, 2);
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);
	CHECK_U64(ms.host_bytes, 0);
	CHECK_EQ(ms.count, 0);
	CHECK(ms.bt.root == NULL);
}

/* walk_order_and_stop - overlap semantics, order, early stop. */
TEST(walk_order_and_stop)
{
	struct mapstore ms;
	struct collect c = { 0 };

	ms_init_tree_only(&ms, NULL, NULL);
	for (uint64_t i = 0; i < 200; i++)
		CHECK_EQ(ins(&ms, i * 0x10000, i * 0x10000 + 0xfff), 0);
	CHECK_EQ(ms_walk(&ms, 0x10800, 0x50000, collect_fn, &c), 0);
	CHECK_EQ(c.n, 5); /* 0x10000 (overlaps) .. 0x50000 */
	if (c.n == 5)
		for (size_t i = 0; i < 5; i++)
			CHECK_U64(c.e[i].start, (i + 1) * 0x10000);
	c.n = 0;
	c.stop_after = 3;
	CHECK_EQ(ms_walk(&ms, 0, MAXA, collect_fn, &c), 7);
	CHECK_EQ(c.n, 3);
	c.n = 0;
	c.stop_after = 0;
	CHECK_EQ(ms_walk(&ms, 0x11000, 0x1ffff, collect_fn, &c), 0);
	CHECK_EQ(c.n, 0);
	CHECK_EQ(ms_walk(&ms, 1, 0, collect_fn, &c), -EINVAL);
	free(c.e);
	ms_destroy(&ms);
}

/*
 * overlap_every_position - against [lo, hi] with neighbours either in the
 * same leaf or in other leaves, every relative position of a new range is
 * rejected and the adjacent ones accepted.
 */
TEST(overlap_every_position)
{
	struct mapstore ms;
	uint64_t n = 2100, lo, hi; /* more than 64 leaves: three levels */

	ms_init_tree_only(&ms, NULL, NULL);
	for (uint64_t i = 0; i < n; i++) /* entries [i*100, i*100 + 49] */
		REQUIRE(ins(&ms, i * 100, i * 100 + 49) == 0);
	REQUIRE(ms.bt.height >= 3);
	for (uint64_t i = 1; i + 1 < n; i++) {
		lo = i * 100;
		hi = lo + 49;
		CHECK_EQ(ins(&ms, lo - 10, lo), -EEXIST);     /* to start */
		CHECK_EQ(ins(&ms, lo - 10, lo + 5), -EEXIST); /* covers start */
		CHECK_EQ(ins(&ms, lo, hi), -EEXIST);          /* same */
		CHECK_EQ(ins(&ms, lo, lo), -EEXIST);          /* first byte */
		CHECK_EQ(ins(&ms, hi, hi), -EEXIST);          /* last byte */
		CHECK_EQ(ins(&ms, lo + 5, lo + 6), -EEXIST);  /* inside */
		CHECK_EQ(ins(&ms, lo + 5, hi + 10), -EEXIST); /* covers last */
		CHECK_EQ(ins(&ms, hi, hi + 10), -EEXIST);     /* from last */
		CHECK_EQ(ins(&ms, lo - 60, hi + 60), -EEXIST); /* meets 3 */
		CHECK_EQ(ins(&ms, lo - 1, hi + 1), -EEXIST);  /* encloses */
	}
	CHECK_EQ(ins(&ms, 0, MAXA), -EEXIST);
	CHECK_EQ(ms.count, n);
	CHECK_EQ(ms_check(&ms), 0);
	/* Every gap [i*100 + 50, i*100 + 99] fits exactly. */
	for (uint64_t i = 0; i < n; i++)
		CHECK_EQ(ins(&ms, i * 100 + 50, i * 100 + 99), 0);
	CHECK_EQ(ms.count, 2 * n);
	CHECK_U64(ms.bytes, n * 100);
	CHECK_EQ(ins(&ms, n * 100 - 1, n * 100), -EEXIST);
	CHECK_EQ(ins(&ms, n * 100, MAXA), 0);
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);
}

/* pg() - address of page @i. */
static uint64_t pg(uint64_t i)
{
	return i * PG;
}

/* remove_refuses_splits - -ERANGE at either end removes nothing. */
TEST(remove_refuses_splits)
{
	struct mapstore ms;
	struct collect c = { 0 };
	struct ms_entry e;
	uint64_t b = 123;

	ms_init_tree_only(&ms, NULL, NULL);
	for (uint64_t i = 1; i <= 3; i++)
		REQUIRE(ins(&ms, pg(i), pg(i + 1) - 1) == 0);
	/* start inside the first entry */
	CHECK_EQ(ms_remove_range(&ms, pg(1) + 1, pg(4) - 1, collect_removed,
				 &c, &b), -ERANGE);
	/* last inside the third entry */
	CHECK_EQ(ms_remove_range(&ms, pg(1), pg(4) - 2, collect_removed, &c,
				 &b), -ERANGE);
	/* both ends inside one entry */
	CHECK_EQ(ms_remove_range(&ms, pg(2) + 1, pg(2) + 2, collect_removed,
				 &c, &b), -ERANGE);
	/* last on the first byte of an entry */
	CHECK_EQ(ms_remove_range(&ms, 0, pg(2), collect_removed, &c, &b),
		 -ERANGE);
	CHECK_EQ(ms_remove_range(&ms, pg(4) - 1, MAXA, collect_removed, &c,
				 &b), -ERANGE);
	CHECK_EQ(c.n, 0);
	CHECK_U64(b, 0);
	CHECK_EQ(ms.count, 3);
	CHECK_U64(ms.bytes, 3 * PG);

	/* gaps are fine */
	CHECK_EQ(ms_remove_range(&ms, 0, pg(1) - 1, NULL, NULL, &b), 0);
	CHECK_EQ(ms_remove_range(&ms, pg(4), MAXA, NULL, NULL, &b), 0);
	CHECK_EQ(ms.count, 3);

	/* wholly inside, with gaps around: removed in order */
	CHECK_EQ(ms_remove_range(&ms, 1, pg(3) - 1, collect_removed, &c, &b),
		 2);
	CHECK_U64(b, 2 * PG);
	CHECK_EQ(c.n, 2);
	if (c.n == 2) {
		CHECK_U64(c.e[0].start, pg(1));
		CHECK_U64(c.e[1].start, pg(2));
		CHECK_U64(c.e[1].gpa, pg(2) ^ 0x5a5a000);
	}
	CHECK_EQ(ms.count, 1);
	CHECK_U64(ms.bytes, PG);
	CHECK_EQ(ms_lookup(&ms, pg(3), &e), 0);
	CHECK_EQ(ms_lookup(&ms, pg(2), &e), -ENOENT);
	CHECK_EQ(ms_check(&ms), 0);
	free(c.e);
	ms_destroy(&ms);
}

/* remove_refuses_across_leaves - the straddle check in a tall tree. */
TEST(remove_refuses_across_leaves)
{
	struct mapstore ms;
	uint64_t n = 5000;

	ms_init_tree_only(&ms, NULL, NULL);
	for (uint64_t i = 0; i < n; i++)
		REQUIRE(ins(&ms, pg(2 * i), pg(2 * i + 1) - 1) == 0);
	for (uint64_t i = 1; i + 40 < n; i += 37) {
		CHECK_EQ(ms_remove_range(&ms, pg(2 * i) + 1, pg(2 * i + 80),
					 NULL, NULL, NULL), -ERANGE);
		CHECK_EQ(ms_remove_range(&ms, pg(2 * i), pg(2 * i + 60) + 5,
					 NULL, NULL, NULL), -ERANGE);
	}
	CHECK_EQ(ms.count, n);
	CHECK_EQ(ms_check(&ms), 0);
	/* a long range with gaps at both ends */
	CHECK_EQ(ms_remove_range(&ms, pg(2 * 100 - 1), pg(2 * 4000 + 1) - 1,
				 NULL, NULL, NULL), 3901);
	CHECK_EQ(ms.count, n - 3901);
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);
}

/* remove_everything - [0, UINT64_MAX] empties a store using both ends. */
TEST(remove_everything)
{
	struct mapstore ms;
	struct collect c = { 0 };
	struct ms_entry e;
	uint64_t b;

	ms_init_tree_only(&ms, NULL, NULL);
	CHECK_EQ(ins(&ms, 0, 0), 0);
	CHECK_EQ(ins(&ms, MAXA, MAXA), 0);
	CHECK_EQ(ins(&ms, MAXA - PG, MAXA - 1), 0);
	for (uint64_t i = 1; i < 3000; i++)
		CHECK_EQ(ins(&ms, pg(i), pg(i) + i), 0);
	CHECK_EQ(ms_lookup(&ms, 0, &e), 0);
	CHECK_U64(e.last, 0);
	CHECK_EQ(ms_lookup(&ms, 1, &e), -ENOENT);
	CHECK_EQ(ms_lookup(&ms, MAXA, &e), 0);
	CHECK_U64(e.start, MAXA);
	CHECK_EQ(ms_lookup(&ms, MAXA - 1, &e), 0);
	CHECK_U64(e.start, MAXA - PG);
	CHECK_EQ(ms_first_overlap(&ms, MAXA, MAXA, &e), 0);
	CHECK_U64(e.start, MAXA);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_remove_range(&ms, 0, MAXA, collect_removed, &c, &b),
		 3002);
	CHECK_U64(b, 1 + 1 + PG + (2999ull * 3000 / 2 + 2999));
	CHECK_EQ(c.n, 3002);
	for (size_t i = 1; i < c.n; i++)
		CHECK(c.e[i - 1].start < c.e[i].start);
	CHECK_EQ(ms.count, 0);
	CHECK_U64(ms.bytes, 0);
	CHECK_U64(ms.host_bytes, 0);
	CHECK_EQ(ms.bt.height, 0);
	CHECK(ms.bt.root == NULL);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_lookup(&ms, 0, &e), -ENOENT);
	CHECK_EQ(ins(&ms, 7, 9), 0); /* usable again */
	CHECK_EQ(ms_check(&ms), 0);
	free(c.e);
	ms_destroy(&ms);
}

/* full_space - the entry [0, UINT64_MAX] and saturating bytes. */
TEST(full_space)
{
	struct mapstore ms;
	struct ms_entry e;
	uint64_t b, half = 1ull << 63;

	ms_init_tree_only(&ms, NULL, NULL);
	CHECK_EQ(ins(&ms, 0, MAXA), 0);
	CHECK_U64(ms.bytes, MAXA);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_lookup(&ms, 0, &e), 0);
	CHECK_EQ(ms_lookup(&ms, MAXA, &e), 0);
	CHECK_EQ(ms_lookup(&ms, half, &e), 0);
	CHECK_U64(e.last, MAXA);
	CHECK_EQ(ins(&ms, 0, 0), -EEXIST);
	CHECK_EQ(ins(&ms, MAXA, MAXA), -EEXIST);
	CHECK_EQ(ms_remove_range(&ms, 0, MAXA - 1, NULL, NULL, &b), -ERANGE);
	CHECK_EQ(ms_remove_range(&ms, 1, MAXA, NULL, NULL, &b), -ERANGE);
	CHECK_EQ(ms_remove_range(&ms, 0, MAXA, NULL, NULL, &b), 1);
	CHECK_U64(b, MAXA);
	CHECK_U64(ms.bytes, 0);
	CHECK_EQ(ms_check(&ms), 0);

	/* two halves: saturated, then exact again */
	CHECK_EQ(ins(&ms, half, MAXA), 0);
	CHECK_U64(ms.bytes, half);
	CHECK_EQ(ins(&ms, 0, half - 1), 0);
	CHECK_U64(ms.bytes, MAXA);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_remove_range(&ms, half, MAXA, NULL, NULL, &b), 1);
	CHECK_U64(b, half);
	CHECK_U64(ms.bytes, half);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_remove_range(&ms, 0, MAXA, NULL, NULL, &b), 1);

	/* 2^64 - 1 bytes is exact; filling the last byte saturates */
	CHECK_EQ(ins(&ms, 0, MAXA - 1), 0);
	CHECK_U64(ms.bytes, MAXA);
	CHECK_EQ(ins(&ms, MAXA, MAXA), 0);
	CHECK_U64(ms.bytes, MAXA);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_remove_range(&ms, MAXA, MAXA, NULL, NULL, &b), 1);
	CHECK_U64(b, 1);
	CHECK_U64(ms.bytes, MAXA); /* 2^64 - 1, exactly */
	CHECK_EQ(ms_remove_range(&ms, 0, 0, NULL, NULL, &b), -ERANGE);
	CHECK_EQ(ms_remove_range(&ms, 0, MAXA - 1, NULL, NULL, &b), 1);
	CHECK_U64(b, MAXA);
	CHECK_U64(ms.bytes, 0);
	CHECK_EQ(ms_check(&ms), 0);

	/* a full space made of many entries, emptied piecewise */
	for (uint64_t i = 0; i < 999; i++)
		CHECK_EQ(ins(&ms, i << 40, ((i + 1) << 40) - 1), 0);
	CHECK_EQ(ins(&ms, 999ull << 40, MAXA), 0);
	CHECK_U64(ms.bytes, MAXA);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_remove_range(&ms, 5ull << 40, (6ull << 40) - 1, NULL,
				 NULL, &b), 1);
	CHECK_U64(b, 1ull << 40);
	CHECK_U64(ms.bytes, 0 - (1ull << 40));
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_remove_range(&ms, 0, MAXA, NULL, NULL, &b), 999);
	CHECK_U64(b, 0 - (1ull << 40));
	CHECK_U64(ms.host_bytes, 0);
	ms_destroy(&ms);
}

/* single_bytes - one-byte entries back to back, at both ends. */
TEST(single_bytes)
{
	struct mapstore ms;
	struct ms_entry e;

	ms_init_tree_only(&ms, NULL, NULL);
	for (uint64_t i = 0; i < 500; i++) {
		CHECK_EQ(ins(&ms, i, i), 0);
		CHECK_EQ(ins(&ms, MAXA - i, MAXA - i), 0);
	}
	CHECK_EQ(ms.count, 1000);
	CHECK_U64(ms.bytes, 1000);
	CHECK_EQ(ms_check(&ms), 0);
	for (uint64_t i = 0; i < 500; i++) {
		CHECK_EQ(ms_lookup(&ms, i, &e), 0);
		CHECK_U64(e.start, i);
		CHECK_EQ(ms_lookup(&ms, MAXA - i, &e), 0);
		CHECK_U64(e.last, MAXA - i);
	}
	CHECK_EQ(ms_lookup(&ms, 500, &e), -ENOENT);
	CHECK_EQ(ms_first_overlap(&ms, 500, MAXA, &e), 0);
	CHECK_U64(e.start, MAXA - 499);
	CHECK_EQ(ms_remove_range(&ms, MAXA - 10, MAXA, NULL, NULL, NULL), 11);
	CHECK_EQ(ms_remove_range(&ms, 0, 10, NULL, NULL, NULL), 11);
	CHECK_EQ(ms_lookup(&ms, MAXA, &e), -ENOENT);
	CHECK_EQ(ms_lookup(&ms, 11, &e), 0);
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);
}

/*
 * stale_separator - separators are not refreshed on removal, so the entry
 * holding an address may sit in the leaf before the one it routes to.
 * Ascending inserts put entries 32k.. in leaf k, routed from start(32k);
 * removing entry 32k and mapping a range from just below that separator to
 * just above it puts such an entry at the end of the previous leaf.
 */
TEST(stale_separator)
{
	struct mapstore ms;
	struct ms_entry e;
	uint64_t n = 3200, sep;
	int bad = 0;

	ms_init_tree_only(&ms, NULL, NULL);
	for (uint64_t i = 0; i < n; i++) /* even pages */
		REQUIRE(ins(&ms, pg(2 * i), pg(2 * i + 1) - 1) == 0);
	for (uint64_t k = 1; k < n / 32; k++) {
		sep = pg(64 * k);
		bad |= ms_remove_range(&ms, sep, sep + PG - 1, NULL, NULL,
				       NULL) != 1;
		bad |= ins(&ms, sep - 100, sep + 100) != 0;
		bad |= ins(&ms, sep + 5, sep + 5) != -EEXIST;
		bad |= ins(&ms, sep + 100, sep + 200) != -EEXIST;
		bad |= ins(&ms, sep, pg(64 * k + 2) - 1) != -EEXIST;
		bad |= ms_lookup(&ms, sep + 50, &e) || e.start != sep - 100;
		bad |= ms_first_overlap(&ms, sep + 100, MAXA, &e) ||
		       e.start != sep - 100;
		bad |= ms_remove_range(&ms, sep + 100, sep + PG, NULL, NULL,
				       NULL) != -ERANGE;
		bad |= ins(&ms, sep + 101, sep + PG - 1) != 0;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms.count, n + n / 32 - 1);
	ms_destroy(&ms);
}

/* ---- shapes and density -------------------------------------------------- */

/* ascending_dense - sequential inserts keep leaves full: <= 40 B/entry. */
TEST(ascending_dense)
{
	struct mapstore ms;
	struct ms_entry e;
	uint64_t n = 100000, base = 1ull << 32;
	int bad = 0;

	ms_init_tree_only(&ms, NULL, NULL);
	for (uint64_t i = 0; i < n; i++)
		REQUIRE(ins(&ms, base + pg(i), base + pg(i + 1) - 1) == 0);
	CHECK_EQ(ms.count, n);
	CHECK_U64(ms.bytes, n * PG);
	CHECK(ms.host_bytes / ms.count <= 40);
	printf("# ascending: %" PRIu64 " host bytes/entry, height %u\n",
	       ms.host_bytes / ms.count, ms.bt.height);
	CHECK(ms.bt.height >= 3);
	CHECK_EQ(ms_check(&ms), 0);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t a = base + pg(i) + (i % 3 == 0 ? 0 :
					      i % 3 == 1 ? PG / 2 : PG - 1);

		if (ms_lookup(&ms, a, &e) || e.start != base + pg(i) ||
		    e.gpa != ((base + pg(i)) ^ 0x5a5a000))
			bad++;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(ms_lookup(&ms, base - 1, &e), -ENOENT);
	CHECK_EQ(ms_lookup(&ms, base + pg(n), &e), -ENOENT);
	ms_destroy(&ms);
	CHECK_U64(ms.host_bytes, 0);
}

/*
 * runs_stay_dense - descending runs, and ascending runs below an existing
 * entry (neither appends to the last leaf), also stay <= 40 B/entry.
 */
TEST(runs_stay_dense)
{
	struct mapstore ms;
	struct ms_entry e;
	uint64_t n = 100000, top = 1ull << 40;
	int bad = 0;

	ms_init_tree_only(&ms, NULL, NULL);
	for (uint64_t i = n; i-- > 0;)
		REQUIRE(ins(&ms, pg(i), pg(i + 1) - 1) == 0);
	CHECK(ms.host_bytes / ms.count <= 40);
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);

	REQUIRE(ins(&ms, top, top + PG - 1) == 0);
	for (uint64_t i = 0; i < n; i++)
		REQUIRE(ins(&ms, pg(i), pg(i + 1) - 1) == 0);
	CHECK(ms.host_bytes / ms.count <= 40);
	CHECK_EQ(ms_check(&ms), 0);
	for (uint64_t i = 0; i < n; i++)
		bad |= ms_lookup(&ms, pg(i) + 7, &e) || e.start != pg(i);
	CHECK_EQ(bad, 0);
	CHECK_EQ(ms_lookup(&ms, top, &e), 0);
	ms_destroy(&ms);
}

/* shuffle() - a random permutation of 0..n-1. */
static uint64_t *shuffle(uint64_t n)
{
	uint64_t *p = malloc(n * sizeof(*p)), t, j;

	for (uint64_t i = 0; i < n; i++)
		p[i] = i;
	for (uint64_t i = n - 1; i > 0; i--) {
		j = rnd_below(i + 1);
		t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
	return p;
}

/*
 * fill_and_drain() - insert n two-page entries in the order @order (NULL:
 * descending), check every look-up, then remove them one by one in random
 * order checking the tree now and then.
 */
static void fill_and_drain(uint64_t n, const uint64_t *order)
{
	struct mapstore ms;
	struct ms_entry e;
	uint64_t *rm = shuffle(n), k;
	int bad = 0;

	ms_init_tree_only(&ms, NULL, NULL);
	for (uint64_t i = 0; i < n; i++) {
		k = order ? order[i] : n - 1 - i;
		if (ins(&ms, pg(3 * k), pg(3 * k + 2) - 1))
			bad++;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(ms.count, n);
	CHECK(ms.bt.height >= 3);
	CHECK_EQ(ms_check(&ms), 0);
	for (uint64_t i = 0; i < n; i++) {
		if (ms_lookup(&ms, pg(3 * i) + i % (2 * PG), &e) ||
		    e.start != pg(3 * i))
			bad++;
		if (ms_lookup(&ms, pg(3 * i + 2), &e) != -ENOENT)
			bad++;
	}
	CHECK_EQ(bad, 0);
	for (uint64_t i = 0; i < n; i++) {
		k = rm[i];
		if (ms_remove_range(&ms, pg(3 * k), pg(3 * k + 2) - 1, NULL,
				    NULL, NULL) != 1)
			bad++;
		if (i % 997 == 0 && ms_check(&ms))
			bad++;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(ms.count, 0);
	CHECK_U64(ms.host_bytes, 0);
	CHECK_EQ(ms.bt.height, 0);
	free(rm);
	ms_destroy(&ms);
}

/* descending_inserts - always at the front of the first leaf. */
TEST(descending_inserts)
{
	rng_state = 0x1234567;
	fill_and_drain(30000, NULL);
}

/* random_inserts - even splits everywhere. */
TEST(random_inserts)
{
	uint64_t *order;

	rng_state = 0x7654321;
	order = shuffle(30000);
	fill_and_drain(30000, order);
	free(order);
}

/*
 * rebalance_internal - with ascending inserts every node is full: leaf k
 * holds entries TL*k..TL*k+TL-1 (TL = 32 entries a leaf), level-1 node j
 * leaves TF*j..TF*j+TF-1 (TF = 64 children a node).  Emptying the last 40
 * leaves of level-1 node TF-1 (the last child of a non-rightmost level-2
 * node) leaves it under half full, so it borrows children from its left
 * sibling; emptying node 33 drops it and rebalances around it.
 */
#define TL 32ull
#define TF 64ull
TEST(rebalance_internal)
{
	struct mapstore ms;
	struct ms_entry e;
	uint64_t n = TL * TF * TF + 8000;
	uint64_t cut = TL * ((TF - 1) * TF + TF - 40);

	ms_init_tree_only(&ms, NULL, NULL);
	for (uint64_t i = 0; i < n; i++)
		REQUIRE(ins(&ms, pg(i), pg(i + 1) - 1) == 0);
	REQUIRE(ms.bt.height == 4);
	CHECK_EQ(ms_remove_range(&ms, pg(cut), pg(TL * TF * TF) - 1, NULL,
				 NULL, NULL), 40 * TL);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_remove_range(&ms, pg(33 * TF * TL), pg(34 * TF * TL) - 1,
				 NULL, NULL, NULL), TF * TL);
	CHECK_EQ(ms_check(&ms), 0);
	for (uint64_t i = 0; i < TL * 40; i++)
		ms_remove_range(&ms, pg(i * 31), pg(i * 31 + 5) - 1, NULL,
				NULL, NULL);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_lookup(&ms, pg(cut) - 1, &e), 0);
	CHECK_EQ(ms_lookup(&ms, pg(cut), &e), -ENOENT);
	CHECK_EQ(ms_lookup(&ms, pg(TL * TF * TF + 10), &e), 0);
	CHECK_EQ(ms_lookup(&ms, pg(n) - 1, &e), 0);
	ms_destroy(&ms);
}

/* ---- randomized differential test ---------------------------------------- */

/* Three 64 MiB windows: the bottom, the middle and the top of the space. */
#define WIN (1ull << 26)
static const uint64_t win_base[] = { 0, 1ull << 40, MAXA - WIN + 1 };

/* rnd_addr() - a random address in a random window. */
static uint64_t rnd_addr(void)
{
	return win_base[rnd_below(3)] + rnd_below(WIN);
}

/* rnd_len() - 1, a page, a few pages or anything up to 64 KiB. */
static uint64_t rnd_len(void)
{
	switch (rnd_below(4)) {
	case 0:
		return 1 + rnd_below(16);
	case 1:
		return PG;
	case 2:
		return PG * (1 + rnd_below(4));
	default:
		return 1 + rnd_below(0x10000);
	}
}

/* rnd_range() - [*s, *l] starting at @a, clipped to the top of the space. */
static void rnd_range(uint64_t a, uint64_t len, uint64_t *s, uint64_t *l)
{
	*s = a;
	*l = a + len - 1 < a ? MAXA : a + len - 1;
}

/* diff_pick_removal() - a range to remove, often spanning whole entries. */
static void diff_pick_removal(const struct model *m, uint64_t *s,
			      uint64_t *l)
{
	uint64_t d;
	size_t i, j;

	if (!m->n || rnd_below(10) < 3) {
		rnd_range(rnd_addr(), rnd_len() * (1 + rnd_below(8)), s, l);
		return;
	}
	i = rnd_below(m->n);
	j = i + rnd_below(rnd_below(8) ? 3 : 40);
	j = MIN(j, m->n - 1);
	*s = m->e[i].start;
	*l = m->e[j].last;
	if (rnd_below(3) == 0) /* into a gap or the previous entry */
		*s = *s < 64 ? 0 : *s - 1 - rnd_below(64);
	if (rnd_below(3) == 0 && *l < MAXA) /* into a gap or the next one */
		rnd_range(*l + 1, 1 + rnd_below(64), &d, l);
	if (rnd_below(2000) == 0) { /* a whole window */
		*s = win_base[rnd_below(3)];
		*l = *s + WIN - 1;
	}
}

/*
 * Index mode of the differential test (mapstore.h: page-sized mappings go
 * to the page index): this percentage of inserts are exactly one aligned
 * page with an aligned gpa; 0 = the B+tree alone.
 */
static int diff_pages;
/* Fail one allocation in this many (0: never), from its own generator. */
static uint64_t diff_fail_rate, diff_fail_state;

static void *diff_alloc(void *opaque, size_t size)
{
	(void)opaque;
	diff_fail_state = diff_fail_state * 6364136223846793005ull + 1;
	if (diff_fail_rate && (diff_fail_state >> 33) % diff_fail_rate == 0)
		return NULL;
	return malloc(size);
}

static void diff_free(void *opaque, void *p)
{
	(void)opaque;
	free(p);
}

/* Percentages of inserts and removals in a phase; the rest are queries. */
struct mix {
	int ins, rem;
};

/* diff_step() - one random operation on both; 0 if they agree. */
static int diff_step(struct mapstore *ms, struct model *m, struct mix mx,
		     struct collect *c1, struct collect *c2)
{
	struct ms_entry e, a = { 0 }, b = { 0 };
	uint64_t s, l, b1, b2;
	long r1, r2;
	int op = (int)rnd_below(100), q = 100 - mx.ins - mx.rem;

	if (op < mx.ins) {
		uint64_t cnt = ms->count, host = ms->host_bytes;

		rnd_range(rnd_addr(), rnd_len(), &s, &l);
		e = ent(s, l, rnd(), (uint32_t)rnd_below(8));
		if ((int)rnd_below(100) < diff_pages) {
			e.start &= ~(PG - 1);
			e.last = e.start + PG - 1;
			e.gpa &= ~(PG - 1);
		}
		r1 = ms_insert(ms, &e);
		/* -ENOMEM (injected) leaves the store as it was */
		if (r1 == -ENOMEM)
			return !diff_fail_rate || ms->count != cnt ||
			       ms->host_bytes != host;
		return r1 != m_insert(m, &e);
	}
	if (op < mx.ins + mx.rem) {
		diff_pick_removal(m, &s, &l);
		c1->n = 0;
		r1 = ms_remove_range(ms, s, l, collect_removed, c1, &b1);
		r2 = m_remove(m, s, l, &b2);
		if (r1 != r2 || b1 != b2 || (r1 > 0 && c1->n != (size_t)r1))
			return 1;
		return 0;
	}
	s = rnd_addr();
	op -= mx.ins + mx.rem;
	if (op < q / 3) {
		r1 = ms_lookup(ms, s, &a);
		r2 = m_lookup(m, s, &b);
		if (r1 != r2 || (!r1 && !same_entry(&a, &b)))
			return 1;
		/* The lock-free search agrees when nothing changes. */
		r1 = ms_lookup_rcu(ms, s, &a);
		return r1 != r2 || (!r1 && !same_entry(&a, &b));
	}
	rnd_range(s, rnd_len() * (1 + rnd_below(16)), &s, &l);
	if (op < 2 * q / 3) {
		r1 = ms_first_overlap(ms, s, l, &a);
		r2 = m_first_overlap(m, s, l, &b);
		return r1 != r2 || (!r1 && !same_entry(&a, &b));
	}
	c1->n = 0;
	c2->n = 0;
	if (ms_walk(ms, s, l, collect_fn, c1))
		return 1;
	for (size_t i = m_first(m, s); i < m->n && m->e[i].start <= l; i++)
		collect_fn(c2, &m->e[i]);
	if (c1->n != c2->n)
		return 1;
	for (size_t i = 0; i < c1->n; i++)
		if (!same_entry(&c1->e[i], &c2->e[i]))
			return 1;
	return 0;
}

/*
 * diff_run_idx() - four phases (grow, churn, shrink, regrow) of @nbatch
 * batches of @batch random operations, comparing every result with the
 * model and, after each batch, the full contents and the tree invariants.
 */
static void diff_run_idx(uint64_t seed, int batch, int nbatch,
			 struct rcu *rcu, int pages, uint64_t fail_rate,
			 uint64_t slack)
{
	static const struct mix phase[] = {
		{ 80, 3 }, { 45, 12 }, { 15, 35 }, { 70, 5 },
	};
	struct viommu_allocator a = { diff_alloc, diff_free, NULL };
	struct collect c1 = { 0 }, c2 = { 0 };
	struct mapstore ms;
	struct model m = { 0 };
	uint32_t max_h = 0, min_h_after = 99;
	uint64_t in_idx = 0, in_tree = 0;
	long ops = 0;
	int done = 0;

	rng_state = seed;
	diff_pages = pages;
	diff_fail_rate = fail_rate;
	diff_fail_state = seed;
	if (pages) {
		ms_init(&ms, &a, rcu);
		if (slack != ~0ull)
			ms.pi.slack = slack;
	} else {
		ms_init_tree_only(&ms, NULL, rcu);
	}
	for (size_t ph = 0; ph < ARRAY_SIZE(phase); ph++) {
		for (int bt = 0; bt < nbatch; bt++) {
			for (int k = 0; k < batch; k++, ops++)
				if (diff_step(&ms, &m, phase[ph], &c1, &c2)) {
					printf("# mismatch at op %ld\n", ops);
					goto out;
				}
			if (!same_as_model(&ms, &m)) {
				printf("# contents differ after op %ld\n", ops);
				goto out;
			}
			max_h = MAX(max_h, ms.bt.height);
			if (max_h >= 3)
				min_h_after = MIN(min_h_after, ms.bt.height);
			in_idx = MAX(in_idx, ms.pi.count);
			in_tree = MAX(in_tree, ms.bt.count);
		}
		printf("# phase %zu: %zu entries (index %llu), height %u\n",
		       ph, m.n, (unsigned long long)ms.pi.count, ms.bt.height);
	}
	if (!pages) {
		CHECK(max_h >= 3);
		CHECK(min_h_after < max_h); /* the tree also shrank */
	} else {
		/* both structures held a share */
		CHECK(in_idx > 100 && in_tree > 100);
	}
	diff_fail_rate = 0;
	CHECK_EQ(ms_remove_range(&ms, 0, MAXA, NULL, NULL, NULL), (long)m.n);
	/* at most the index's cached path is left (pageidx.c, "Fill") */
	CHECK(ms.host_bytes <= (pages ? 9 * 528 : 0));
	done = 1;
out:
	CHECK(done);
	free(c1.e);
	free(c2.e);
	free(m.e);
	ms_destroy(&ms);
}

/* diff_run() - the B+tree alone (the page index unused). */
static void diff_run(uint64_t seed, int batch, int nbatch, struct rcu *rcu)
{
	diff_run_idx(seed, batch, nbatch, rcu, 0, 0, ~0ull);
}

/* differential_random - 40000 operations, checked every 250. */
TEST(differential_random)
{
	diff_run(0x9e3779b97f4a7c15ull, 250, 40, NULL);
}

/*
 * differential_random_rcu - the same with lock-free readers enabled: the
 * nodes writers unlink wait for grace periods (retired and waiting lists),
 * and ms_check() accounts for them in host_bytes.
 */
TEST(differential_random_rcu)
{
	struct rcu r;

	rcu_init(&r);
	diff_run(0x2545f4914f6cdd1dull, 250, 40, &r);
	rcu_fini(&r);
}

/* differential_every_op - 12000 operations, checked after each one. */
TEST(differential_every_op)
{
	diff_run(0xc0ffee, 1, 3000, NULL);
}

/*
 * differential_mixed* - the same against the two structures together:
 * half the inserts are page-sized (the page index), the rest go to the
 * B+tree, with overlaps, straddles, walks and removals across both.
 */
TEST(differential_mixed)
{
	diff_run_idx(0x51ed270b27fa4c3dull, 250, 40, NULL, 50, 0, ~0ull);
}

/* ... with grace periods (retired index and B+tree nodes). */
TEST(differential_mixed_rcu)
{
	struct rcu r;

	rcu_init(&r);
	diff_run_idx(0x7f4a7c159e3779b9ull, 250, 40, &r, 50, 0, ~0ull);
	rcu_fini(&r);
}

/*
 * ... with a slack of 16 KiB: sparse pages soon exceed the index's memory
 * rule and go to the B+tree, so pages sit in both structures.
 */
TEST(differential_mixed_small_slack)
{
	diff_run_idx(0x94d049bb133111ebull, 250, 40, NULL, 70, 0, 16 << 10);
}

/* ... with one allocation in 23 failing (-ENOMEM changes nothing). */
TEST(differential_mixed_faults)
{
	struct rcu r;

	rcu_init(&r);
	diff_run_idx(0xbf58476d1ce4e5b9ull, 250, 40, &r, 50, 23, 64 << 10);
	rcu_fini(&r);
}

/* ... checked after every operation, one allocation in 11 failing. */
TEST(differential_mixed_every_op)
{
	diff_run_idx(0xfeedull, 1, 3000, NULL, 50, 11, ~0ull);
}

/* ---- allocation failures ------------------------------------------------- */

/*
 * fault_run() - insert @n entries (ascending if @order is NULL, else at
 * keys @order) with allocation @fail_at (or every one from @fail_from)
 * failing.  Every -ENOMEM must leave contents, count, bytes and host
 * memory as before; a failed insert is retried once.  Return: how many
 * inserts failed, or -1 on a mismatch.
 */
static long fault_run(uint64_t n, const uint64_t *order, long fail_at,
		      long fail_from, long *calls)
{
	struct fa f = { .fail_at = fail_at, .fail_from = fail_from };
	struct viommu_allocator a = { fa_alloc, fa_free, &f };
	struct mapstore ms;
	struct model m = { 0 };
	struct ms_entry e;
	long failed = 0, bad = 0;
	uint64_t host, k;
	int rc;

	ms_init_tree_only(&ms, &a, NULL);
	for (uint64_t i = 0; i < n && !bad; i++) {
		k = order ? order[i] : i;
		e = ent(pg(2 * k), pg(2 * k + 1) + 17, k, 1);
		host = ms.host_bytes;
		rc = ms_insert(&ms, &e);
		if (rc == -ENOMEM) {
			failed++;
			bad |= ms.host_bytes != host || !same_as_model(&ms, &m);
			rc = ms_insert(&ms, &e);
			if (rc == -ENOMEM)
				continue;
		}
		bad |= rc != 0 || m_insert(&m, &e) != 0;
		bad |= ms.host_bytes != f.live_bytes;
	}
	bad |= !same_as_model(&ms, &m);
	bad |= ms.host_bytes != f.live_bytes;
	ms_destroy(&ms);
	bad |= f.live != 0 || f.live_bytes != 0 || ms.host_bytes != 0;
	free(m.e);
	if (calls)
		*calls = f.calls;
	return bad ? -1 : failed;
}

/* fault_injection_nth - fail each allocation of a run in turn. */
TEST(fault_injection_nth)
{
	uint64_t n = 1200, *order;
	long total, rc;

	/* ascending: uneven splits, up to a new root over a full path */
	REQUIRE(fault_run(n, NULL, 0, 0, &total) == 0);
	for (long k = 1; k <= total; k++) {
		rc = fault_run(n, NULL, k, 0, NULL);
		CHECK_EQ(rc, 1);
		if (rc != 1)
			printf("#   fail_at %ld\n", k);
	}
	/* random order: even splits in the middle of the tree */
	rng_state = 42;
	order = shuffle(n);
	REQUIRE(fault_run(n, order, 0, 0, &total) == 0);
	for (long k = 1; k <= total; k++) {
		rc = fault_run(n, order, k, 0, NULL);
		CHECK_EQ(rc, 1);
		if (rc != 1)
			printf("#   fail_at %ld\n", k);
	}
	free(order);
}

/* fault_injection_from_nth - every allocation fails from the Nth on. */
TEST(fault_injection_from_nth)
{
	uint64_t n = 1200, *order;
	long total, rc;

	rng_state = 43;
	order = shuffle(n);
	REQUIRE(fault_run(n, order, 0, 0, &total) == 0);
	for (long k = 1; k <= total; k += 3) {
		rc = fault_run(n, order, 0, k, NULL);
		CHECK(rc >= 1);
		if (rc < 1)
			printf("#   fail_from %ld\n", k);
	}
	REQUIRE(fault_run(n, NULL, 0, 0, &total) == 0);
	for (long k = 1; k <= total; k++)
		CHECK(fault_run(n, NULL, 0, k, NULL) >= 1);
	free(order);
}

/* remove_never_allocates - removal works with every allocation failing. */
TEST(remove_never_allocates)
{
	struct fa f = { 0 };
	struct viommu_allocator a = { fa_alloc, fa_free, &f };
	struct mapstore ms;
	long calls;

	ms_init_tree_only(&ms, &a, NULL);
	for (uint64_t i = 0; i < 3000; i++)
		REQUIRE(ins(&ms, pg(i), pg(i) + 100) == 0);
	calls = f.calls;
	f.fail_from = calls + 1;
	for (uint64_t i = 0; i < 3000; i += 2)
		CHECK_EQ(ms_remove_range(&ms, pg(i), pg(i) + 100, NULL, NULL,
					 NULL), 1);
	CHECK_EQ(ms_remove_range(&ms, 0, MAXA, NULL, NULL, NULL), 1500);
	CHECK_EQ(f.calls, calls);
	CHECK_EQ(f.live, 0);
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);
}

/* count_fn() - ms_walk() callback counting entries in *(uint64_t *)@o. */
static int count_fn(void *o, const struct ms_entry *e)
{
	(void)e;
	(*(uint64_t *)o)++;
	return 0;
}

/*
 * empty_rightmost_leaf_is_not_data - regression (fuzz_core): an emptied
 * rightmost leaf keeps stale keys; overlap checks, look-ups, walks and
 * removals must not read them.  Even pages 0..64: a full leaf of 32, then
 * page 64 alone in the rightmost leaf, which the removal empties.
 */
TEST(empty_rightmost_leaf_is_not_data)
{
	struct mapstore ms;
	struct ms_entry e;
	uint64_t n = 0;

	ms_init_tree_only(&ms, NULL, NULL);
	for (uint64_t i = 0; i <= 32; i++)
		REQUIRE(ins(&ms, pg(2 * i), pg(2 * i) + PG - 1) == 0);
	REQUIRE(ms.bt.height == 2);
	CHECK_EQ(ms_remove_range(&ms, pg(64), pg(65) - 1, NULL, NULL, NULL),
		 1);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_first_overlap(&ms, pg(63), pg(70), &e), -ENOENT);
	CHECK_EQ(ms_lookup(&ms, pg(64), &e), -ENOENT);
	CHECK_EQ(ms_lookup_rcu(&ms, pg(64), &e), -ENOENT);
	CHECK_EQ(ms_walk(&ms, pg(63), MAXA, count_fn, &n), 0);
	CHECK_U64(n, 0);
	CHECK_EQ(ms_remove_range(&ms, pg(63), MAXA, NULL, NULL, NULL), 0);
	/* Starts in the full leaf, ends past the stale key: no overlap. */
	CHECK_EQ(ins(&ms, pg(63), pg(65)), 0);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_lookup(&ms, pg(64), &e), 0);
	CHECK_U64(e.start, pg(63));
	ms_destroy(&ms);
}

/*
 * rightmost_leaf_kept_empty - unmapping the only entry of the rightmost
 * leaf keeps the leaf, so mapping and unmapping one buffer past all other
 * mappings allocates (and retires) nothing per pair; an emptied store
 * still frees everything.
 */
TEST(rightmost_leaf_kept_empty)
{
	struct fa f = { 0 };
	struct viommu_allocator a = { fa_alloc, fa_free, &f };
	struct mapstore ms;
	struct ms_entry e;
	long calls;

	ms_init_tree_only(&ms, &a, NULL);
	for (uint64_t i = 0; i < 33; i++) /* a full leaf, then one entry */
		REQUIRE(ins(&ms, pg(i), pg(i) + PG - 1) == 0);
	REQUIRE(ms.bt.height == 2);
	calls = f.calls;
	for (int k = 0; k < 100; k++) {
		CHECK_EQ(ms_remove_range(&ms, pg(32), pg(33) - 1, NULL, NULL,
					 NULL), 1);
		CHECK_EQ(ms_check(&ms), 0);
		CHECK_EQ(ms_lookup(&ms, pg(32), &e), -ENOENT);
		CHECK_EQ(ms_lookup_rcu(&ms, pg(32), &e), -ENOENT);
		CHECK_EQ(ms_lookup_rcu(&ms, pg(31) + 5, &e), 0);
		CHECK_EQ(ms_lookup(&ms, pg(31) + 5, &e), 0);
		REQUIRE(ins(&ms, pg(32), pg(32) + PG - 1) == 0);
	}
	CHECK_EQ(f.calls, calls); /* no allocation per pair */
	CHECK_EQ(ms_remove_range(&ms, pg(32), pg(33) - 1, NULL, NULL, NULL),
		 1);
	CHECK_EQ(ms_remove_range(&ms, 0, MAXA, NULL, NULL, NULL), 32);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK(ms.bt.root == NULL && ms.host_bytes == 0 && f.live == 0);
	ms_destroy(&ms);
}

/* ---- lock-free readers ----------------------------------------------------- */

/* rcu_grace_period_waits_for_readers - a ticket is over only after every
 * read section that began before it has ended. */
TEST(rcu_grace_period_waits_for_readers)
{
	struct rcu r;
	uint32_t tok;
	uint64_t t;
	bool done = false;

	rcu_init(&r);
	t = rcu_ticket(&r);
	CHECK(rcu_poll(&r, t)); /* no reader: over at once */
	tok = rcu_read_lock(&r);
	t = rcu_ticket(&r);
	for (int i = 0; i < 100; i++)
		done |= rcu_poll(&r, t);
	CHECK(!done);
	rcu_read_unlock(&r, tok);
	CHECK(rcu_poll(&r, t));
	rcu_synchronize(&r); /* returns with no reader inside */
	rcu_fini(&r);
}

/*
 * rcu_quiet_sees_every_reader - the one-scan check says "no reader" only
 * when no read section is open, on either index (a reader that entered
 * before a flip and one after it).
 */
TEST(rcu_quiet_sees_every_reader)
{
	struct rcu r;
	uint32_t t1, t2;

	rcu_init(&r);
	CHECK(rcu_quiet(&r));
	t1 = rcu_read_lock(&r);
	CHECK(!rcu_quiet(&r));
	(void)rcu_poll(&r, rcu_ticket(&r)); /* flips the index once */
	t2 = rcu_read_lock(&r);
	CHECK((t1 & 1) != (t2 & 1));
	CHECK(!rcu_quiet(&r));
	rcu_read_unlock(&r, t1);
	CHECK(!rcu_quiet(&r)); /* the reader on the other index is inside */
	rcu_read_unlock(&r, t2);
	CHECK(rcu_quiet(&r));
	rcu_fini(&r);
}

/*
 * retired_nodes_freed_at_once_when_quiet - with no reader inside, a
 * removal that retires a batch of nodes frees them in the same call (no
 * ticket left waiting), and emptying the store frees everything.
 */
TEST(retired_nodes_freed_at_once_when_quiet)
{
	struct fa f = { 0 };
	struct viommu_allocator a = { fa_alloc, fa_free, &f };
	struct mapstore ms;
	struct rcu r;
	uint64_t live_before;

	rcu_init(&r);
	ms_init_tree_only(&ms, &a, &r);
	for (uint64_t i = 0; i < 4000; i++)
		REQUIRE(ins(&ms, pg(i), pg(i) + PG - 1) == 0);
	live_before = f.live_bytes;
	/* About 40 leaves empty: more than a batch. */
	CHECK_EQ(ms_remove_range(&ms, pg(100), pg(1380) - 1, NULL, NULL,
				 NULL), 1280);
	CHECK(f.live_bytes < live_before);
	CHECK(ms.bt.retired == NULL && ms.bt.waiting == NULL);
	CHECK_U64(ms.bt.retired_bytes, 0);
	CHECK_U64(ms.host_bytes, f.live_bytes);
	CHECK_EQ(ms_check(&ms), 0);
	CHECK_EQ(ms_remove_range(&ms, 0, MAXA, NULL, NULL, NULL), 4000 - 1280);
	CHECK(f.live == 0 && ms.host_bytes == 0);
	ms_destroy(&ms);
	rcu_fini(&r);
}

/*
 * remove_exact_entry - removing exactly one entry's range (the fast path)
 * between abutting neighbours, at both ends of a leaf and of the store:
 * the callback sees that entry, the byte count is its size, neighbours
 * stay, and a range one byte short or long of it is still refused.
 */
TEST(remove_exact_entry)
{
	struct collect c = { 0 };
	struct mapstore ms;
	struct ms_entry e;
	uint64_t b;
	long bad = 0;

	ms_init_tree_only(&ms, NULL, NULL);
	for (uint64_t i = 0; i < 200; i++)
		REQUIRE(ins(&ms, pg(i), pg(i) + PG - 1) == 0);
	CHECK_EQ(ms_remove_range(&ms, pg(5), pg(5) + PG - 2, NULL, NULL, &b),
		 -ERANGE);
	CHECK_EQ(ms_remove_range(&ms, pg(5), pg(5) + PG, NULL, NULL, &b),
		 -ERANGE);
	for (uint64_t i = 0; i < 200; i += 3) {
		c.n = 0;
		bad |= ms_remove_range(&ms, pg(i), pg(i) + PG - 1,
				       collect_removed, &c, &b) != 1;
		bad |= c.n != 1 || c.e[0].start != pg(i) ||
		       c.e[0].last != pg(i) + PG - 1 ||
		       c.e[0].gpa != (pg(i) ^ 0x5a5a000) || b != PG;
		bad |= ms_lookup(&ms, pg(i), &e) != -ENOENT;
		bad |= i && ms_lookup(&ms, pg(i) - 1, &e) != 0;
		bad |= i + 1 < 200 && ms_lookup(&ms, pg(i + 1), &e) != 0;
		bad |= ms_check(&ms) != 0;
	}
	CHECK(!bad);
	CHECK_EQ(ms.count, 200 - 67);
	CHECK_EQ(ms_remove_range(&ms, pg(199), pg(199) + PG - 1, NULL, NULL,
				 &b), 1);
	CHECK_EQ(ms_remove_range(&ms, pg(199), pg(199) + PG - 1, NULL, NULL,
				 &b), 0);
	free(c.e);
	ms_destroy(&ms);
}

/*
 * retired_nodes_outlive_read_sections - nodes a removal unlinks while a
 * reader is inside stay allocated (counted in host_bytes) until the reader
 * leaves; the next writer call then frees them without waiting.
 */
TEST(retired_nodes_outlive_read_sections)
{
	struct fa f = { 0 };
	struct viommu_allocator a = { fa_alloc, fa_free, &f };
	struct mapstore ms;
	struct ms_entry e;
	struct rcu r;
	uint64_t live_before;
	uint32_t tok;

	rcu_init(&r);
	ms_init_tree_only(&ms, &a, &r);
	for (uint64_t i = 0; i < 4000; i++)
		REQUIRE(ins(&ms, pg(i), pg(i) + PG - 1) == 0);
	tok = rcu_read_lock(&r);
	live_before = f.live_bytes;
	/* Dense leaves of 32: about 40 leaves empty and are retired. */
	CHECK_EQ(ms_remove_range(&ms, pg(100), pg(1380) - 1, NULL, NULL,
				 NULL), 1280);
	CHECK(ms.bt.retired_bytes > 0);
	CHECK_U64(f.live_bytes, live_before); /* nothing freed */
	CHECK_U64(ms.host_bytes, f.live_bytes);
	CHECK_EQ(ms_lookup_rcu(&ms, pg(99), &e), 0);
	CHECK_EQ(ms_lookup_rcu(&ms, pg(100), &e), -ENOENT);
	CHECK_EQ(ms_check(&ms), 0);
	rcu_read_unlock(&r, tok);
	CHECK_EQ(ms_remove_range(&ms, pg(2000), pg(2001) - 1, NULL, NULL,
				 NULL), 1);
	CHECK(f.live_bytes < live_before);
	CHECK_U64(ms.host_bytes, f.live_bytes);
	CHECK_EQ(ms_check(&ms), 0);
	ms_destroy(&ms);
	CHECK(f.live == 0 && ms.host_bytes == 0);
	rcu_fini(&r);
}

TEST_MAIN()
