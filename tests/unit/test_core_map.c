/*
 * test_core_map.c - unit tests of the core's mappings and translation: map and unmap (never
 * split, overlaps, gaps, bad ranges), reserved and MSI regions, and
 * translate with its contiguous length and its faults.
 * Every expected errno is the one include/viommu/core.h documents.
 */
#include "harness.h"
#include "core_fixture.h"

#define RW (VIOMMU_READ | VIOMMU_WRITE)
#define NP VIOMMU_NO_PASID

/* ------------------------------------------------------------------ */
/* Map / unmap                                                        */

TEST(map_overlap_eexist)
{
	/* DESIGN.md §3: map rejects overlap. */
	struct env e;
	struct viommu_domain_info i;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x10000, 0x1ffff, 0x0, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x10000, 0x1ffff, 0x0, RW),
		 -EEXIST);
	CHECK_EQ(viommu_domain_map(e.dom, 0x11000, 0x11fff, 0x0, RW),
		 -EEXIST);
	CHECK_EQ(viommu_domain_map(e.dom, 0xf000, 0x10000, 0x0, RW), -EEXIST);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1ffff, 0x20fff, 0x0, RW),
		 -EEXIST);
	CHECK_EQ(viommu_domain_map(e.dom, 0x0, UINT64_MAX, 0x0, RW), -EEXIST);
	i = fx_info(e.dom);
	CHECK_U64(i.mappings, 1);
	CHECK_U64(i.mapped_bytes, 0x10000);
	/* Adjacent on both sides is fine. */
	CHECK_EQ(viommu_domain_map(e.dom, 0xf000, 0xffff, 0x0, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x20000, 0x20fff, 0x0, RW), 0);
	CHECK_U64(fx_info(e.dom).mappings, 3);
	fx_fini(&e.f);
}

TEST(unmap_never_splits)
{
	/* DESIGN.md §3: unmap refuses to split; nothing removed. */
	struct fx_maplist l;
	struct viommu_domain_info i;
	uint64_t n = 77;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x10000, 0x1ffff, 0x30000, RW), 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x10000, 0x10fff, &n), -ERANGE);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x11000, 0x1ffff, &n), -ERANGE);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x0, 0x10fff, &n), -ERANGE);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x1f000, 0xfffff, &n), -ERANGE);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x12000, 0x12fff, &n), -ERANGE);
	i = fx_info(e.dom);
	CHECK_U64(i.mappings, 1);
	CHECK_U64(i.mapped_bytes, 0x10000);
	l = fx_collect(e.dom, 0, UINT64_MAX);
	REQUIRE(l.n == 1);
	CHECK_U64(l.m[0].iova, 0x10000);
	CHECK_U64(l.m[0].last, 0x1ffff);
	CHECK_U64(l.m[0].gpa, 0x30000);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x10000, VIOMMU_READ), 0x30000);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1ffff, VIOMMU_READ), 0x3ffff);
	fx_fini(&e.f);
}

TEST(unmap_straddle_refused_removes_nothing)
{
	/* DESIGN.md §3: unmap refuses to split; nothing removed. */
	struct fx_maplist l;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x1000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x3000, 0x4fff, 0x3000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x6000, 0x6fff, 0x6000, RW), 0);
	/* Fully covers the first two, cuts the third: nothing goes. */
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x0, 0x67ff, NULL), -ERANGE);
	/* Cuts the middle one at its start. */
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x4000, 0x7fff, NULL), -ERANGE);
	l = fx_collect(e.dom, 0, UINT64_MAX);
	CHECK_EQ(l.n, 3);
	CHECK_U64(fx_info(e.dom).mapped_bytes, 0x4000);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1000, VIOMMU_READ), 0x1000);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x6000, VIOMMU_READ), 0x6000);
	fx_fini(&e.f);
}

TEST(unmap_over_gaps_reports_bytes)
{
	/* DESIGN.md §3: unmap succeeds over gaps, reports bytes. */
	uint64_t n = 0;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x1000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x5000, 0x6fff, 0x5000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x9000, 0xbfff, 0x9000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x20000, 0x20fff, 0x9000, RW), 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x2000, 0x4fff, &n), -ENOENT);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x800, 0xcfff, &n), 0);
	CHECK_U64(n, 0x6000);
	CHECK_U64(fx_info(e.dom).mappings, 1);
	CHECK_U64(fx_info(e.dom).mapped_bytes, 0x1000);
	CHECK_EQ(fx_gpa_of(e.ep, NP, 0x5000, VIOMMU_READ), ~0ull);
	/* @unmapped is optional. */
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x20000, 0x20fff, NULL), 0);
	CHECK_U64(fx_info(e.dom).mappings, 0);
	CHECK_U64(fx_info(e.dom).mapped_bytes, 0);
	fx_fini(&e.f);
}

TEST(unmap_nothing_in_range_enoent)
{
	/* DESIGN.md §3: unmap semantics (nothing in range). */
	uint64_t n;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0, UINT64_MAX, &n), -ENOENT);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x1000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x4000, 0x4fff, 0x1000, RW), 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x2000, 0x3fff, &n), -ENOENT);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x5000, UINT64_MAX, &n), -ENOENT);
	CHECK_U64(fx_info(e.dom).mappings, 2);
	fx_fini(&e.f);
}

TEST(unmap_bad_range_einval)
{
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x1000, RW), 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x2000, 0x1000, NULL), -EINVAL);
	CHECK_U64(fx_info(e.dom).mappings, 1);
	fx_fini(&e.f);
}

TEST(map_permissions_stored_and_reported)
{
	static const uint32_t prots[] = {
		VIOMMU_READ, VIOMMU_WRITE, VIOMMU_EXEC, RW,
		VIOMMU_READ | VIOMMU_EXEC, RW | VIOMMU_MAP_MMIO,
		RW | VIOMMU_EXEC | VIOMMU_MAP_MMIO,
	};
	const unsigned int n = sizeof(prots) / sizeof(prots[0]);
	struct viommu_xlate x;
	struct fx_maplist l;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	for (unsigned int i = 0; i < n; i++)
		CHECK_EQ(viommu_domain_map(e.dom, 0x100000 + i * PAGE,
					   0x100fff + i * PAGE, i * PAGE,
					   prots[i]), 0);
	l = fx_collect(e.dom, 0, UINT64_MAX);
	REQUIRE(l.n == n);
	for (unsigned int i = 0; i < n; i++) {
		unsigned int acc = prots[i] & VIOMMU_READ ? VIOMMU_READ :
				   prots[i] & VIOMMU_WRITE ? VIOMMU_WRITE :
				   VIOMMU_EXEC;

		CHECK_EQ(l.m[i].prot, prots[i]);
		CHECK_U64(l.m[i].iova, 0x100000 + i * PAGE);
		CHECK_EQ(viommu_translate(e.ep, NP, 0x100000 + i * PAGE, 1,
					  acc, &x, NULL), 0);
		CHECK_EQ(x.perm, prots[i]);
		CHECK_EQ(viommu_domain_lookup(e.dom, 0x100000 + i * PAGE, 1,
					      acc, &x), 0);
		CHECK_EQ(x.perm, prots[i]);
	}
	fx_fini(&e.f);
}

TEST(map_bad_prot_einval)
{
	static const uint32_t bad[] = { 1u << 4, 1u << 7, 1u << 31,
					RW | (1u << 5) };
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0, bad[i]),
			 -EINVAL);
	CHECK_U64(fx_info(e.dom).mappings, 0);
	fx_fini(&e.f);
}

TEST(map_iova_after_last_einval)
{
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x2000, 0x1fff, 0, RW), -EINVAL);
	CHECK_EQ(viommu_domain_map(e.dom, UINT64_MAX, 0, 0, RW), -EINVAL);
	CHECK_U64(fx_info(e.dom).mappings, 0);
	fx_fini(&e.f);
}

TEST(map_gpa_wrap_einval)
{
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x0, 0x1fff, UINT64_MAX - 0xfff, RW),
		 -EINVAL);
	CHECK_EQ(viommu_domain_map(e.dom, 0x0, UINT64_MAX, 1, RW), -EINVAL);
	CHECK_U64(fx_info(e.dom).mappings, 0);
	/* Ending exactly at the top does not wrap. */
	CHECK_EQ(viommu_domain_map(e.dom, 0x0, 0xfff, UINT64_MAX - 0xfff, RW),
		 0);
	fx_fini(&e.f);
}

TEST(map_whole_address_space)
{
	struct viommu_xlate x;
	uint64_t n = 0;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0, UINT64_MAX, 0, RW), 0);
	CHECK_U64(fx_info(e.dom).mapped_bytes, UINT64_MAX);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x2000, 16, VIOMMU_READ, &x, NULL),
		 0);
	CHECK(x.hva == e.f.ram0 + 0x2000);
	CHECK_EQ(viommu_translate(e.ep, NP, UINT64_MAX, 16, VIOMMU_READ, &x,
				  NULL), 0);
	CHECK_U64(x.gpa, UINT64_MAX);
	CHECK_EQ(x.len, 1);
	CHECK(x.hva == NULL);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0, UINT64_MAX, &n), 0);
	CHECK_U64(n, UINT64_MAX);
	CHECK_U64(fx_info(e.dom).mappings, 0);
	fx_fini(&e.f);
}

/* stop_at_cb() - collect, and stop with 5 after the second mapping. */
static int stop_at_cb(void *opaque, const struct viommu_mapping *m)
{
	struct fx_maplist *l = opaque;

	fx_collect_cb(l, m);
	return l->n == 2 ? 5 : 0;
}

TEST(for_each_mapping_order_range_and_stop)
{
	struct fx_maplist l;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	/* Insert out of order. */
	CHECK_EQ(viommu_domain_map(e.dom, 0x5000, 0x5fff, 0x50000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x2fff, 0x10000,
				   VIOMMU_READ), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x9000, 0x9fff, 0x90000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x3000, 0x3fff, 0x30000, RW), 0);
	l = fx_collect(e.dom, 0, UINT64_MAX);
	REQUIRE(l.n == 4);
	CHECK_U64(l.m[0].iova, 0x1000);
	CHECK_U64(l.m[0].last, 0x2fff);
	CHECK_U64(l.m[0].gpa, 0x10000);
	CHECK_EQ(l.m[0].prot, VIOMMU_READ);
	CHECK_U64(l.m[1].iova, 0x3000);
	CHECK_U64(l.m[2].iova, 0x5000);
	CHECK_U64(l.m[3].iova, 0x9000);
	/* Overlapping ranges, not containment. */
	l = fx_collect(e.dom, 0x2fff, 0x5000);
	REQUIRE(l.n == 3);
	CHECK_U64(l.m[0].iova, 0x1000);
	CHECK_U64(l.m[2].iova, 0x5000);
	l = fx_collect(e.dom, 0x6000, 0x8fff);
	CHECK_EQ(l.n, 0);
	memset(&l, 0, sizeof(l));
	CHECK_EQ(viommu_domain_for_each_mapping(e.dom, 0, UINT64_MAX,
						stop_at_cb, &l), 5);
	CHECK_EQ(l.n, 2);
	CHECK_EQ(viommu_domain_for_each_mapping(e.dom, 5, 4, fx_collect_cb,
						&l), -EINVAL);
	fx_fini(&e.f);
}

/* ------------------------------------------------------------------ */
/* Reserved regions                                                   */

TEST(resv_get_sorted_and_counted)
{
	/* DESIGN.md §3: reserved regions; a map over one is rejected. */
	struct viommu_resv r[4];
	unsigned int n = 0;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_endpoint_get_resv(e.ep, NULL, 0, &n), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0xfee00000, 0xfeefffff,
					  VIOMMU_RESV_MSI), 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x1000, 0x1fff,
					  VIOMMU_RESV_RESERVED), 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x80000000, 0x8fffffff,
					  VIOMMU_RESV_RESERVED), 0);
	CHECK_EQ(viommu_endpoint_get_resv(e.ep, r, 4, &n), 0);
	REQUIRE(n == 3);
	CHECK_U64(r[0].start, 0x1000);
	CHECK_U64(r[0].last, 0x1fff);
	CHECK_EQ(r[0].type, VIOMMU_RESV_RESERVED);
	CHECK_U64(r[1].start, 0x80000000);
	CHECK_U64(r[2].start, 0xfee00000);
	CHECK_U64(r[2].last, 0xfeefffff);
	CHECK_EQ(r[2].type, VIOMMU_RESV_MSI);
	/* Fewer slots than regions: the first ones, and the total. */
	memset(r, 0, sizeof(r));
	CHECK_EQ(viommu_endpoint_get_resv(e.ep, r, 1, &n), 0);
	CHECK_EQ(n, 3);
	CHECK_U64(r[0].start, 0x1000);
	CHECK_U64(r[1].start, 0);
	CHECK_EQ(viommu_endpoint_get_resv(e.ep, NULL, 0, &n), 0);
	CHECK_EQ(n, 3);
	fx_fini(&e.f);
}

TEST(resv_bad_args_einval)
{
	/* DESIGN.md §3: reserved regions; a map over one is rejected. */
	unsigned int n = 0;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x2000, 0x1fff,
					  VIOMMU_RESV_RESERVED), -EINVAL);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x1000, 0x1fff,
					  (enum viommu_resv_type)7), -EINVAL);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x1000, 0x1fff,
					  VIOMMU_RESV_RESERVED), 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x1fff, 0x2fff,
					  VIOMMU_RESV_RESERVED), -EINVAL);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x0, 0x1000,
					  VIOMMU_RESV_MSI), -EINVAL);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x0, 0xfff,
					  VIOMMU_RESV_RESERVED), 0);
	CHECK_EQ(viommu_endpoint_get_resv(e.ep, NULL, 0, &n), 0);
	CHECK_EQ(n, 2);
	fx_fini(&e.f);
}

TEST(resv_second_msi_einval)
{
	/* DESIGN.md §3: reserved regions; a map over one is rejected. */
	unsigned int n = 0;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0xfee00000, 0xfeefffff,
					  VIOMMU_RESV_MSI), 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x8000000, 0x800ffff,
					  VIOMMU_RESV_MSI), -EINVAL);
	CHECK_EQ(viommu_endpoint_get_resv(e.ep, NULL, 0, &n), 0);
	CHECK_EQ(n, 1);
	fx_fini(&e.f);
}

TEST(resv_limit_enospc)
{
	/* DESIGN.md §3: reserved regions; a map over one is rejected. */
	struct fx_opts o = { .limits = { .max_resv_per_endpoint = 2 } };
	unsigned int n = 0;
	struct env e;

	REQUIRE(env_init(&e, &o) == 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x1000, 0x1fff,
					  VIOMMU_RESV_RESERVED), 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x3000, 0x3fff,
					  VIOMMU_RESV_RESERVED), 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x5000, 0x5fff,
					  VIOMMU_RESV_RESERVED), -ENOSPC);
	CHECK_EQ(viommu_endpoint_get_resv(e.ep, NULL, 0, &n), 0);
	CHECK_EQ(n, 2);
	fx_fini(&e.f);
}

TEST(map_over_resv_of_attached_endpoint_eaddrinuse)
{
	/* DESIGN.md §3: reserved regions; a map over one is rejected. */
	struct viommu_endpoint *ep2;
	struct viommu_domain *b;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x10000, 0x1ffff,
					  VIOMMU_RESV_RESERVED), 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0xfee00000, 0xfeefffff,
					  VIOMMU_RESV_MSI), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x10000, 0x10fff, 0, RW),
		 -EADDRINUSE);
	CHECK_EQ(viommu_domain_map(e.dom, 0xf000, 0x10000, 0, RW),
		 -EADDRINUSE);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1ffff, 0x20fff, 0, RW),
		 -EADDRINUSE);
	CHECK_EQ(viommu_domain_map(e.dom, 0xfeef0000, 0xfeefffff, 0, RW),
		 -EADDRINUSE);
	CHECK_EQ(viommu_domain_map(e.dom, 0, UINT64_MAX, 0, RW), -EADDRINUSE);
	CHECK_U64(fx_info(e.dom).mappings, 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0xf000, 0xffff, 0, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x20000, 0x20fff, 0, RW), 0);
	/* Through a PASID attachment too. */
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 1, b), 0);
	CHECK_EQ(viommu_domain_map(b, 0x10000, 0x10fff, 0, RW), -EADDRINUSE);
	/* A domain nobody with that region is attached to may map it. */
	CHECK_EQ(viommu_endpoint_detach(e.ep, 1), 0);
	REQUIRE((ep2 = fx_ep(&e.f, 2)) != NULL);
	CHECK_EQ(viommu_endpoint_attach(ep2, NP, b), 0);
	CHECK_EQ(viommu_domain_map(b, 0x10000, 0x10fff, 0, RW), 0);
	fx_fini(&e.f);
}

TEST(add_resv_overlapping_mapping_einval)
{
	/* DESIGN.md §3: reserved regions; a map over one is rejected. */
	struct viommu_domain *b;
	unsigned int n = 9;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_domain_map(e.dom, 0x10000, 0x10fff, 0, RW), 0);
	CHECK_EQ(viommu_domain_map(b, 0x30000, 0x30fff, 0, RW), 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x10000, 0x1ffff,
					  VIOMMU_RESV_RESERVED), -EINVAL);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x0, 0x10000,
					  VIOMMU_RESV_MSI), -EINVAL);
	/* b is not attached to the endpoint yet: fine. */
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x30000, 0x30fff,
					  VIOMMU_RESV_RESERVED), 0);
	CHECK_EQ(viommu_endpoint_get_resv(e.ep, NULL, 0, &n), 0);
	CHECK_EQ(n, 1);
	/* Domains reached through a PASID count as well. */
	CHECK_EQ(viommu_domain_map(b, 0x50000, 0x50fff, 0, RW), 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 2, b), -EINVAL);
	CHECK_EQ(viommu_domain_unmap(b, 0x30000, 0x30fff, NULL), 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 2, b), 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x50000, 0x50fff,
					  VIOMMU_RESV_RESERVED), -EINVAL);
	CHECK_EQ(viommu_endpoint_get_resv(e.ep, NULL, 0, &n), 0);
	CHECK_EQ(n, 1);
	fx_fini(&e.f);
}

TEST(translate_msi_region_identity)
{
	/* DESIGN.md §3: reserved regions; a map over one is rejected. */
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0xfee00000, 0xfeefffff,
					  VIOMMU_RESV_MSI), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0xfee00040, 4, VIOMMU_WRITE, &x,
				  NULL), 0);
	CHECK(x.flags & VIOMMU_XLATE_MSI);
	CHECK_U64(x.gpa, 0xfee00040);
	CHECK(x.hva == NULL);
	CHECK_EQ(x.len, 4);
	CHECK_EQ(viommu_translate(e.ep, NP, 0xfeeffff0, 64, VIOMMU_WRITE, &x,
				  NULL), 0);
	CHECK_EQ(x.len, 16);
	CHECK_EQ(fx_faults(&e.f), 0);
	fx_fini(&e.f);
}

/*
 * Regression (fuzz_core corpus regress-msi-window-not-ram): an MSI window
 * placed over guest RAM is still a doorbell: no host pointer, and the
 * length runs to the window's end, not the RAM region's.
 */
TEST(translate_msi_window_over_ram_has_no_hva)
{
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x200000, 0x20ffff,
					  VIOMMU_RESV_MSI), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x200010, 0x100000, VIOMMU_WRITE,
				  &x, NULL), 0);
	CHECK(x.flags & VIOMMU_XLATE_MSI);
	CHECK(x.hva == NULL);
	CHECK_U64(x.gpa, 0x200010);
	CHECK_EQ(x.len, 0x10000 - 0x10);
	/* So a DMA write cannot land in RAM behind the doorbell. */
	CHECK_EQ(viommu_dma_write(e.ep, NP, 0x200000, "x", 1), -EFAULT);
	fx_fini(&e.f);
}

TEST(translate_reserved_region_faults)
{
	/* DESIGN.md §3: reserved regions; a map over one is rejected. */
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x8000, 0x8fff,
					  VIOMMU_RESV_RESERVED), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x8010, 4, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_RESERVED);
	CHECK_U64(flt.address, 0x8010);
	CHECK_EQ(flt.endpoint, 1);
	CHECK_EQ(fx_faults(&e.f), 1);
	CHECK_EQ(e.f.last_fault.reason, VIOMMU_FAULT_RESERVED);
	fx_fini(&e.f);
}

TEST(translate_resv_regions_include_first_and_last_byte)
{
	/*
	 * DESIGN.md §3: reserved regions are inclusive [start, last]: the
	 * last byte of a RESERVED region faults RESERVED (not NO_MAPPING),
	 * the last byte of an MSI region is a doorbell, and the bytes just
	 * outside translate through the domain.
	 */
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x8000, 0x8fff,
					  VIOMMU_RESV_RESERVED), 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0xfee00000, 0xfeefffff,
					  VIOMMU_RESV_MSI), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x7000, 0x7fff, 0x3000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x9000, 0x9fff, 0x4000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0xfedff000, 0xfedfffff, 0x5000, RW),
		 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0xfef00000, 0xfef00fff, 0x6000, RW),
		 0);
	for (int pass = 0; pass < 2; pass++) {
		static const uint64_t ends[] = { 0x8000, 0x8fff };

		for (int i = 0; i < 2; i++) {
			memset(&flt, 0, sizeof(flt));
			CHECK_EQ(viommu_translate(e.ep, NP, ends[i], 1,
						  VIOMMU_READ, &x, &flt),
				 -EFAULT);
			CHECK_EQ(flt.reason, VIOMMU_FAULT_RESERVED);
			CHECK_U64(flt.address, ends[i]);
		}
		CHECK_U64(fx_gpa_of(e.ep, NP, 0x7fff, VIOMMU_READ), 0x3fff);
		CHECK_U64(fx_gpa_of(e.ep, NP, 0x9000, VIOMMU_READ), 0x4000);
		CHECK_EQ(viommu_translate(e.ep, NP, 0xfeefffff, 1,
					  VIOMMU_WRITE, &x, NULL), 0);
		CHECK(x.flags & VIOMMU_XLATE_MSI);
		CHECK_U64(x.gpa, 0xfeefffff);
		CHECK_EQ(x.len, 1);
		CHECK(x.hva == NULL);
		CHECK_EQ(viommu_translate(e.ep, NP, 0xfee00000, 4,
					  VIOMMU_WRITE, &x, NULL), 0);
		CHECK(x.flags & VIOMMU_XLATE_MSI);
		CHECK_U64(fx_gpa_of(e.ep, NP, 0xfedfffff, VIOMMU_READ),
			  0x5fff);
		CHECK_U64(fx_gpa_of(e.ep, NP, 0xfef00000, VIOMMU_READ),
			  0x6000);
		CHECK_EQ(viommu_translate(e.ep, NP, 0xfef00000, 4,
					  VIOMMU_READ, &x, NULL), 0);
		CHECK(!(x.flags & VIOMMU_XLATE_MSI));
	}
	fx_fini(&e.f);
}

/* ------------------------------------------------------------------ */
/* Translate                                                          */

TEST(translate_gpa_hva_len)
{
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x100000, 0x10ffff, 0x200000, RW),
		 0);
	memset(&x, 0xee, sizeof(x));
	CHECK_EQ(viommu_translate(e.ep, NP, 0x100010, 0x100, VIOMMU_READ, &x,
				  &flt), 0);
	CHECK_U64(x.gpa, 0x200010);
	CHECK(x.hva == e.f.ram0 + 0x200010);
	CHECK_EQ(x.len, 0x100);
	CHECK_EQ(x.perm, RW);
	CHECK_EQ(x.flags, 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x100000, 0x10000,
				  VIOMMU_READ | VIOMMU_WRITE, &x, NULL), 0);
	CHECK_EQ(x.len, 0x10000);
	CHECK(x.hva == e.f.ram0 + 0x200000);
	CHECK_EQ(fx_faults(&e.f), 0);
	fx_fini(&e.f);
}

TEST(translate_ram1_region)
{
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x8000, 0x9fff, RAM1_GPA + 0x6000,
				   RW), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x9ffc, 8, VIOMMU_WRITE, &x,
				  NULL), 0);
	CHECK_U64(x.gpa, RAM1_GPA + 0x7ffc);
	CHECK(x.hva == e.f.ram1 + 0x7ffc);
	CHECK_EQ(x.len, 4);
	fx_fini(&e.f);
}

TEST(translate_len_clipped_at_mapping_end)
{
	/* DESIGN.md §3: contiguous length, never past a region. */
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x10000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x3000, 0x3fff, 0x11000, RW), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1ff0, 0x1000, VIOMMU_READ, &x,
				  NULL), 0);
	CHECK_EQ(x.len, 0x10);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1fff, 2, VIOMMU_READ, &x, NULL),
		 0);
	CHECK_EQ(x.len, 1);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1000, SIZE_MAX, VIOMMU_READ, &x,
				  NULL), 0);
	CHECK_EQ(x.len, 0x1000);
	fx_fini(&e.f);
}

TEST(translate_len_clipped_at_ram_region_end)
{
	/* DESIGN.md §3: contiguous length, never past a region. */
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x10000000, 0x10001fff,
				   RAM_SIZE - PAGE, RW), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x10000000, 2 * PAGE, VIOMMU_READ,
				  &x, NULL), 0);
	CHECK_EQ(x.len, PAGE);
	CHECK(x.hva == e.f.ram0 + RAM_SIZE - PAGE);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x10000800, 2 * PAGE, VIOMMU_READ,
				  &x, NULL), 0);
	CHECK_EQ(x.len, 0x800);
	/* The second page is a hole: GPA, no host pointer. */
	CHECK_EQ(viommu_translate(e.ep, NP, 0x10001000, 2 * PAGE, VIOMMU_READ,
				  &x, NULL), 0);
	CHECK_U64(x.gpa, RAM_SIZE);
	CHECK(x.hva == NULL);
	CHECK_EQ(x.len, PAGE);
	fx_fini(&e.f);
}

TEST(translate_len_clipped_between_adjacent_regions)
{
	/* DESIGN.md §3: contiguous length, never past a region. */
	uint8_t *b0 = calloc(1, 1 << 20), *b1 = calloc(1, 1 << 20);
	struct viommu_mem_region r[2] = {
		{ .gpa = 0, .size = 1 << 20, .fd = -1, .hva = b0 },
		{ .gpa = 1 << 20, .size = 1 << 20, .fd = -1, .hva = b1 },
	};
	struct viommu_endpoint *ep = NULL;
	struct viommu_domain *d = NULL;
	struct viommu_xlate x;
	uint8_t buf[64];
	struct fx f;

	REQUIRE(b0 && b1);
	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE(viommu_mem_set_regions(f.mem, r, 2) == 0);
	REQUIRE((ep = fx_ep(&f, 1)) && (d = fx_paging(&f, 1)));
	REQUIRE(viommu_endpoint_attach(ep, NP, d) == 0);
	CHECK_EQ(viommu_domain_map(d, 0x40000000, 0x401fffff, 0, RW), 0);
	CHECK_EQ(viommu_translate(ep, NP, 0x40000000 + (1 << 20) - 16, 64,
				  VIOMMU_READ, &x, NULL), 0);
	CHECK_EQ(x.len, 16);
	CHECK(x.hva == b0 + (1 << 20) - 16);
	CHECK_EQ(viommu_translate(ep, NP, 0x40000000 + (1 << 20), 64,
				  VIOMMU_READ, &x, NULL), 0);
	CHECK_EQ(x.len, 64);
	CHECK(x.hva == b1);
	/* A DMA copy crosses the boundary piece by piece. */
	for (int i = 0; i < 64; i++)
		buf[i] = (uint8_t)(i + 1);
	CHECK_EQ(viommu_dma_write(ep, NP, 0x40000000 + (1 << 20) - 16, buf,
				  64), 0);
	CHECK(memcmp(b0 + (1 << 20) - 16, buf, 16) == 0);
	CHECK(memcmp(b1, buf + 16, 48) == 0);
	fx_fini(&f);
	free(b0);
	free(b1);
}

TEST(translate_permission_fault)
{
	/* DESIGN.md §3: translate checks permission on every access. */
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x5000,
				   VIOMMU_READ), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x2000, 0x2fff, 0x6000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x3000, 0x3fff, 0x7000,
				   VIOMMU_READ | VIOMMU_EXEC), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1000, 4, VIOMMU_READ, &x, &flt),
		 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1004, 4, VIOMMU_WRITE, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_PERMISSION);
	CHECK_EQ(flt.access, VIOMMU_WRITE);
	CHECK_U64(flt.address, 0x1004);
	CHECK_U64(flt.domain_tag, 10);
	CHECK_EQ(flt.endpoint, 1);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1000, 4, RW, &x, &flt), -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_PERMISSION);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x2000, 4, VIOMMU_EXEC, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_PERMISSION);
	CHECK_EQ(flt.access, VIOMMU_EXEC);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x3000, 4, VIOMMU_EXEC, &x, &flt),
		 0);
	CHECK_EQ(fx_faults(&e.f), 3);
	CHECK_EQ(e.f.last_fault.reason, VIOMMU_FAULT_PERMISSION);
	/* The lookup helper says -EACCES and reports nothing. */
	CHECK_EQ(viommu_domain_lookup(e.dom, 0x1000, 4, VIOMMU_WRITE, &x),
		 -EACCES);
	CHECK_EQ(fx_faults(&e.f), 3);
	fx_fini(&e.f);
}

TEST(translate_no_mapping_fault)
{
	/* DESIGN.md §3: a failed translate records a fault. */
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x5000, RW), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x2000, 4, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_NO_MAPPING);
	CHECK_U64(flt.address, 0x2000);
	CHECK_EQ(flt.access, VIOMMU_READ);
	CHECK_U64(flt.pasid, NP);
	CHECK_EQ(viommu_translate(e.ep, NP, 0xfff, 4, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(viommu_translate(e.ep, NP, UINT64_MAX, 1, VIOMMU_READ, &x,
				  &flt), -EFAULT);
	CHECK_EQ(fx_faults(&e.f), 3);
	CHECK_EQ(viommu_domain_lookup(e.dom, 0x2000, 4, VIOMMU_READ, &x),
		 -EFAULT);
	CHECK_EQ(fx_faults(&e.f), 3);
	CHECK_U64(fx_stats(&e.f).faults, 3);
	fx_fini(&e.f);
}

TEST(translate_mmio_mapping_hva_null)
{
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x2000,
				   RW | VIOMMU_MAP_MMIO), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1010, 8, VIOMMU_WRITE, &x, NULL),
		 0);
	CHECK_U64(x.gpa, 0x2010);
	CHECK(x.hva == NULL);
	CHECK_EQ(x.len, 8);
	CHECK(x.perm & VIOMMU_MAP_MMIO);
	fx_fini(&e.f);
}

TEST(translate_gpa_hole_hva_null)
{
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x80000000, RW), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1100, 0x100, VIOMMU_READ, &x,
				  NULL), 0);
	CHECK_U64(x.gpa, 0x80000100);
	CHECK(x.hva == NULL);
	CHECK(x.len >= 1 && x.len <= 0x100);
	fx_fini(&e.f);
}

TEST(translate_bad_args_einval)
{
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x2000, RW), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1000, 0, VIOMMU_READ, &x, NULL),
		 -EINVAL);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1000, 4, 0, &x, NULL), -EINVAL);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1000, 4, 1u << 3, &x, NULL),
		 -EINVAL);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1000, 4, VIOMMU_READ | (1u << 9),
				  &x, NULL), -EINVAL);
	CHECK_EQ(viommu_translate(e.ep, VIOMMU_PASID_MAX + 1, 0x1000, 4,
				  VIOMMU_READ, &x, NULL), -EINVAL);
	CHECK_EQ(viommu_translate(e.ep, NP - 1, 0x1000, 4, VIOMMU_READ, &x,
				  NULL), -EINVAL);
	CHECK_EQ(viommu_translate(NULL, NP, 0x1000, 4, VIOMMU_READ, &x, NULL),
		 -EINVAL);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1000, 4, VIOMMU_READ, NULL,
				  NULL), -EINVAL);
	/* VIOMMU_PASID_MAX itself is a valid (unattached) PASID. */
	CHECK_EQ(viommu_translate(e.ep, VIOMMU_PASID_MAX, 0x1000, 4,
				  VIOMMU_READ, &x, NULL), -EFAULT);
	CHECK_EQ(e.f.last_fault.reason, VIOMMU_FAULT_NO_PASID);
	fx_fini(&e.f);
}

TEST(translate_fault_record_optional)
{
	/* DESIGN.md §3: a failed translate records a fault. */
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1000, 4, VIOMMU_READ, &x, NULL),
		 -EFAULT);
	CHECK_EQ(fx_faults(&e.f), 1);
	CHECK_EQ(e.f.last_fault.reason, VIOMMU_FAULT_NO_MAPPING);
	CHECK_U64(e.f.last_fault.domain_tag, 10);
	fx_fini(&e.f);
}

TEST(domain_lookup_without_endpoint)
{
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x3000, VIOMMU_READ),
		 0);
	CHECK_EQ(viommu_domain_lookup(e.dom, 0x1800, 0x1000, VIOMMU_READ, &x),
		 0);
	CHECK_U64(x.gpa, 0x3800);
	CHECK(x.hva == e.f.ram0 + 0x3800);
	CHECK_EQ(x.len, 0x800);
	CHECK_EQ(viommu_domain_lookup(e.dom, 0x1800, 0, VIOMMU_READ, &x),
		 -EINVAL);
	CHECK_EQ(viommu_domain_lookup(viommu_ctx_blocked_domain(e.f.ctx),
				      0x1000, 4, VIOMMU_READ, &x), -EFAULT);
	CHECK_EQ(viommu_domain_lookup(viommu_ctx_identity_domain(e.f.ctx),
				      0x1000, 4, VIOMMU_READ, &x), 0);
	CHECK_U64(x.gpa, 0x1000);
	CHECK_EQ(fx_faults(&e.f), 0);
	CHECK_U64(fx_stats(&e.f).faults, 0);
	fx_fini(&e.f);
}

TEST_MAIN()
