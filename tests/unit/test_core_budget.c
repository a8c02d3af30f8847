/*
 * test_core_budget.c - the context-wide cap on mappings
 * (struct viommu_limits.max_mappings, issue 17 item 4) and the sized
 * struct viommu_ctx_config.
 *
 * The per-domain cap alone lets many domains together hold far more than
 * any one may; the context-wide cap bounds their sum.  These tests fill
 * several domains, each under its own cap, past the context's, and check
 * that the refusal comes at exactly the mapping that would pass it, that
 * unmap and domain destruction give budget back, that re-mapping a range
 * as two pieces (how a front end splits a mapping, since the core refuses
 * partial unmaps) takes two units, that racing maps on different domains
 * never overshoot, and that the counters (mappings, mappings_refused,
 * mapstore_bytes) follow.
 */
#include "harness.h"
#include "core_fixture.h"

#define RW (VIOMMU_READ | VIOMMU_WRITE)
#define NP VIOMMU_NO_PASID

/* map_page() - map page @i of @d's IOVA space to page @i of RAM0. */
static int map_page(struct viommu_domain *d, uint64_t i)
{
	return viommu_domain_map(d, i * PAGE, i * PAGE + PAGE - 1, i * PAGE,
				 RW);
}

TEST(budget_default_is_4m_and_given_value_kept)
{
	struct fx_opts o = { .limits = { .max_mappings = 7 } };
	struct viommu_limits l;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	viommu_ctx_limits(f.ctx, &l, sizeof(l));
	CHECK_EQ(l.max_mappings, 1u << 22);
	CHECK_EQ(l.max_mappings_per_domain, 1u << 20);
	fx_fini(&f);
	REQUIRE(fx_init(&f, &o) == 0);
	viommu_ctx_limits(f.ctx, &l, sizeof(l));
	CHECK_EQ(l.max_mappings, 7);
	fx_fini(&f);
}

/*
 * Four domains with a cap of 4 each (16 in all) under a context cap of 10:
 * the 11th mapping is refused wherever it goes, with -ENOSPC, nothing
 * added, and one refusal counted.
 */
TEST(budget_many_domains_under_own_cap_refused_at_global_cap)
{
	struct fx_opts o = { .limits = { .max_mappings_per_domain = 4,
					 .max_mappings = 10 } };
	struct viommu_domain *d[4];
	struct viommu_ctx_stats s;
	struct fx f;
	int i, j;

	REQUIRE(fx_init(&f, &o) == 0);
	for (i = 0; i < 4; i++)
		REQUIRE((d[i] = fx_paging(&f, 100 + i)) != NULL);
	for (i = 0; i < 3; i++)
		for (j = 0; j < 3; j++)
			CHECK_EQ(map_page(d[i], j), 0);
	CHECK_EQ(map_page(d[3], 0), 0); /* the 10th */
	CHECK_EQ(map_page(d[3], 1), -ENOSPC);
	CHECK_EQ(map_page(d[0], 3), -ENOSPC); /* d[0] has room of its own */
	s = fx_stats(&f);
	CHECK_U64(s.mappings, 10);
	CHECK_U64(s.maps, 10);
	CHECK_U64(s.mappings_refused, 2);
	CHECK_U64(fx_info(d[3]).mappings, 1);
	CHECK_U64(fx_info(d[0]).mappings, 3);
	/* The refused range really is not mapped. */
	CHECK_EQ(viommu_domain_unmap(d[3], PAGE, 2 * PAGE - 1, NULL), -ENOENT);
	/* The per-domain cap still applies first, and is not counted here. */
	CHECK_EQ(viommu_domain_unmap(d[0], 0, PAGE - 1, NULL), 0);
	CHECK_EQ(map_page(d[3], 1), 0);
	CHECK_EQ(viommu_domain_unmap(d[1], 0, PAGE - 1, NULL), 0);
	CHECK_EQ(map_page(d[3], 2), 0);
	CHECK_EQ(viommu_domain_unmap(d[2], 0, PAGE - 1, NULL), 0);
	CHECK_EQ(map_page(d[3], 3), 0); /* d[3] now holds its own cap */
	CHECK_EQ(viommu_domain_unmap(d[2], PAGE, 2 * PAGE - 1, NULL), 0);
	CHECK_EQ(map_page(d[3], 4), -ENOSPC); /* d[3]'s own cap... */
	CHECK_U64(fx_stats(&f).mappings_refused, 2); /* ...not the global */
	CHECK_U64(fx_stats(&f).mappings, 9);
	fx_fini(&f);
}

TEST(budget_unmap_and_destroy_give_units_back)
{
	struct fx_opts o = { .limits = { .max_mappings = 4 } };
	struct viommu_domain *a, *b;
	uint64_t bytes = 0;
	struct fx f;
	int i;

	REQUIRE(fx_init(&f, &o) == 0);
	REQUIRE((a = fx_paging(&f, 1)) != NULL);
	REQUIRE((b = fx_paging(&f, 2)) != NULL);
	for (i = 0; i < 4; i++)
		CHECK_EQ(map_page(a, i), 0);
	CHECK_EQ(map_page(b, 0), -ENOSPC);
	/* One unmap call removing three mappings frees three units. */
	CHECK_EQ(viommu_domain_unmap(a, 0, 3 * PAGE - 1, &bytes), 0);
	CHECK_U64(bytes, 3 * PAGE);
	CHECK_U64(fx_stats(&f).mappings, 1);
	for (i = 0; i < 3; i++)
		CHECK_EQ(map_page(b, i), 0);
	CHECK_EQ(map_page(b, 3), -ENOSPC);
	/* Destroying a domain gives back what it still held. */
	CHECK_EQ(viommu_domain_destroy(b), 0);
	CHECK_U64(fx_stats(&f).mappings, 1);
	REQUIRE((b = fx_paging(&f, 3)) != NULL);
	for (i = 0; i < 3; i++)
		CHECK_EQ(map_page(b, i), 0);
	CHECK_EQ(map_page(b, 3), -ENOSPC);
	fx_fini(&f);
}

/*
 * The core refuses an unmap that would split a mapping (D27, -ERANGE,
 * nothing removed), so a front end splits by unmapping the whole and
 * mapping the pieces: each piece is a mapping and takes a unit.
 */
TEST(budget_split_into_two_pieces_takes_two_units)
{
	struct fx_opts o = { .limits = { .max_mappings = 3 } };
	struct viommu_domain *d;
	struct fx f;

	REQUIRE(fx_init(&f, &o) == 0);
	REQUIRE((d = fx_paging(&f, 1)) != NULL);
	CHECK_EQ(viommu_domain_map(d, 0, 4 * PAGE - 1, 0, RW), 0);
	CHECK_EQ(map_page(d, 8), 0);
	CHECK_EQ(map_page(d, 9), 0);
	/* Partial unmap: refused, nothing removed, the budget unchanged. */
	CHECK_EQ(viommu_domain_unmap(d, PAGE, 2 * PAGE - 1, NULL), -ERANGE);
	CHECK_U64(fx_stats(&f).mappings, 3);
	/* Split [0, 4 pages) into [0, 1) and [2, 4): needs one more unit. */
	CHECK_EQ(viommu_domain_unmap(d, 0, 4 * PAGE - 1, NULL), 0);
	CHECK_EQ(viommu_domain_map(d, 0, PAGE - 1, 0, RW), 0);
	CHECK_EQ(viommu_domain_map(d, 2 * PAGE, 4 * PAGE - 1, 2 * PAGE, RW),
		 -ENOSPC);
	CHECK_U64(fx_stats(&f).mappings, 3);
	CHECK_U64(fx_stats(&f).mappings_refused, 1);
	/* With one unit freed elsewhere, the second piece fits. */
	CHECK_EQ(viommu_domain_unmap(d, 8 * PAGE, 9 * PAGE - 1, NULL), 0);
	CHECK_EQ(viommu_domain_map(d, 2 * PAGE, 4 * PAGE - 1, 2 * PAGE, RW),
		 0);
	CHECK_U64(fx_info(d).mappings, 3);
	fx_fini(&f);
}

/*
 * mapstore_bytes is the sum of the stores' host_bytes; an emptied store
 * keeps at most one cached index path, a destroyed one nothing.
 */
TEST(budget_mapstore_bytes_follow_the_stores)
{
	struct viommu_domain *a, *b;
	struct fx f;
	int i;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE((a = fx_paging(&f, 1)) != NULL);
	REQUIRE((b = fx_paging(&f, 2)) != NULL);
	CHECK_U64(fx_stats(&f).mapstore_bytes, 0);
	for (i = 0; i < 300; i++) {
		CHECK_EQ(map_page(a, (uint64_t)i * 2), 0);
		if (i < 40)
			CHECK_EQ(map_page(b, (uint64_t)i), 0);
	}
	CHECK(fx_info(a).host_bytes > 0);
	CHECK_U64(fx_stats(&f).mapstore_bytes,
		  fx_info(a).host_bytes + fx_info(b).host_bytes);
	/* Removing half of a's mappings frees leaves. */
	CHECK_EQ(viommu_domain_unmap(a, 0, 300 * PAGE - 1, NULL), 0);
	CHECK_U64(fx_stats(&f).mapstore_bytes,
		  fx_info(a).host_bytes + fx_info(b).host_bytes);
	CHECK_EQ(viommu_domain_destroy(b), 0);
	CHECK_U64(fx_stats(&f).mapstore_bytes, fx_info(a).host_bytes);
	CHECK_EQ(viommu_domain_unmap(a, 0, ~0ull, NULL), 0);
	/*
	 * An emptied store keeps only the page index's cached path (one
	 * leaf and its ancestors, src/core/pageidx.c "Fill"): page maps
	 * were made, so it is there, and at most 9 nodes of 528 bytes.
	 */
	CHECK_U64(fx_stats(&f).mapstore_bytes, fx_info(a).host_bytes);
	CHECK(fx_stats(&f).mapstore_bytes > 0);
	CHECK(fx_stats(&f).mapstore_bytes <= 9 * 528);
	CHECK_U64(fx_stats(&f).mappings, 0);
	/* Destroying the domain frees that too. */
	CHECK_EQ(viommu_domain_destroy(a), 0);
	CHECK_U64(fx_stats(&f).mapstore_bytes, 0);
	fx_fini(&f);
}

/* An allocator that fails every call once armed. */
static bool fail_armed;

static void *fail_alloc(void *opaque, size_t size)
{
	(void)opaque;
	return __atomic_load_n(&fail_armed, __ATOMIC_RELAXED) ? NULL :
								malloc(size);
}

static void fail_free(void *opaque, void *p)
{
	(void)opaque;
	free(p);
}

/*
 * A map that fails to allocate gives its reserved unit back, and says so
 * with -ENOMEM; the cap itself is -ENOSPC: a VMM tells host memory
 * pressure from a guest flood by the errno.
 */
TEST(budget_allocation_failure_returns_the_unit)
{
	static const struct viommu_allocator al = { fail_alloc, fail_free,
						    NULL };
	struct fx_opts o = { .limits = { .max_mappings = 2 }, .alloc = &al };
	struct viommu_domain *a, *b;
	struct fx f;

	REQUIRE(fx_init(&f, &o) == 0);
	REQUIRE((a = fx_paging(&f, 1)) != NULL);
	REQUIRE((b = fx_paging(&f, 2)) != NULL);
	CHECK_EQ(map_page(a, 0), 0);
	/* b's store is empty: its first map must allocate a leaf. */
	__atomic_store_n(&fail_armed, true, __ATOMIC_RELAXED);
	CHECK_EQ(map_page(b, 0), -ENOMEM);
	__atomic_store_n(&fail_armed, false, __ATOMIC_RELAXED);
	CHECK_U64(fx_stats(&f).mappings, 1);
	CHECK_U64(fx_stats(&f).mappings_refused, 0);
	CHECK_EQ(map_page(b, 0), 0);
	CHECK_EQ(map_page(b, 1), -ENOSPC);
	fx_fini(&f);
}

struct racer {
	struct viommu_domain *d;
	int mapped;
};

/* racer_main() - map pages until refused. */
static void *racer_main(void *opaque)
{
	struct racer *r = opaque;

	for (uint64_t i = 0; i < 4096; i++) {
		if (map_page(r->d, i))
			break;
		r->mapped++;
	}
	return NULL;
}

/* Maps racing on four domains (four domain locks) stop exactly at the cap. */
TEST(budget_racing_maps_never_overshoot)
{
	struct fx_opts o = { .limits = { .max_mappings = 1000 } };
	struct racer r[4];
	pthread_t t[4];
	struct fx f;
	int i, total = 0;

	REQUIRE(fx_init(&f, &o) == 0);
	for (i = 0; i < 4; i++) {
		r[i].mapped = 0;
		REQUIRE((r[i].d = fx_paging(&f, 1 + i)) != NULL);
	}
	for (i = 0; i < 4; i++)
		REQUIRE(pthread_create(&t[i], NULL, racer_main, &r[i]) == 0);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += r[i].mapped;
	}
	CHECK_EQ(total, 1000);
	CHECK_U64(fx_stats(&f).mappings, 1000);
	CHECK_U64(fx_stats(&f).mappings_refused, 4);
	fx_fini(&f);
}

/* The size rule of struct viommu_ctx_config (as in link.h). */
TEST(ctx_config_size_rule)
{
	struct {
		struct viommu_ctx_config c;
		uint8_t more[16];
	} big;
	struct viommu_ctx *ctx = NULL;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	memset(&big, 0, sizeof(big));
	big.c = fx_ctx_config(&f, NULL);
	big.c.limits.max_mappings = 5;
	/* 0: the first sized layout, every field read. */
	big.c.size = 0;
	CHECK_EQ(viommu_ctx_create(&big.c, &ctx), 0);
	if (ctx) {
		struct viommu_limits l;

		viommu_ctx_limits(ctx, &l, sizeof(l));
		CHECK_EQ(l.max_mappings, 5);
		viommu_ctx_destroy(ctx);
	}
	/* A newer caller's larger struct: fine while the rest is zero... */
	big.c.size = sizeof(big);
	ctx = NULL;
	CHECK_EQ(viommu_ctx_create(&big.c, &ctx), 0);
	viommu_ctx_destroy(ctx);
	/* ...refused when it asks for something we do not know. */
	big.more[3] = 1;
	ctx = (struct viommu_ctx *)&f;
	CHECK_EQ(viommu_ctx_create(&big.c, &ctx), -EINVAL);
	CHECK(ctx == (struct viommu_ctx *)&f);
	fx_fini(&f);
}

TEST_MAIN()
