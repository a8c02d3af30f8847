/*
 * test_core_iommufd.c - the map/unmap scenarios of the Linux iommufd
 * selftest, re-expressed for our core (our own code, not a port): unmap
 * on an empty domain, unmapping part of a two-page area, overlapping maps,
 * unmap of the whole 64-bit space, and four 8-page areas 16 pages apart
 * unmapped by cutting and by superset ranges.  Where iommufd answers
 * ENOENT for a cut we answer -ERANGE (core.h), and nothing is removed.
 */
#include "harness.h"
#include "core_fixture.h"

#define RW (VIOMMU_READ | VIOMMU_WRITE)
#define NP VIOMMU_NO_PASID
#define BASE 0x40000000ull /* an aligned IOVA, as buffer_iova */
#define P(n) ((uint64_t)(n) * PAGE)

/* map_pages() - map @n pages at BASE + P(@at) to GPA P(@at) (in RAM0). */
static int map_pages(struct env *e, uint64_t at, uint64_t n)
{
	return viommu_domain_map(e->dom, BASE + P(at), BASE + P(at + n) - 1,
				 P(at), RW);
}

/* unmap_pages() - unmap [BASE + P(@at), +@n pages); bytes in *@bytes. */
static int unmap_pages(struct env *e, uint64_t at, uint64_t n,
		       uint64_t *bytes)
{
	return viommu_domain_unmap(e->dom, BASE + P(at), BASE + P(at + n) - 1,
				   bytes);
}

/* mapped() - whether the page at BASE + P(@at) translates to P(@at). */
static bool mapped(struct env *e, uint64_t at)
{
	return fx_gpa_of(e->ep, NP, BASE + P(at), VIOMMU_READ) == P(at);
}

TEST(unmap_empty_domain_refused)
{
	/* DESIGN.md §3 / issue 2: iommufd selftest scenario. */
	uint64_t bytes = 123;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(unmap_pages(&e, 0, 1, &bytes), -ENOENT);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0, UINT64_MAX, &bytes), -ENOENT);
	CHECK_U64(fx_info(e.dom).mappings, 0);
	fx_fini(&e.f);
}

TEST(unmap_one_page_of_two_refused)
{
	/* DESIGN.md §3 / issue 2: iommufd selftest scenario. */
	uint64_t bytes;
	struct fx_maplist l;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(map_pages(&e, 16, 2), 0);
	CHECK_EQ(unmap_pages(&e, 16, 1, &bytes), -ERANGE);
	CHECK_EQ(unmap_pages(&e, 17, 1, &bytes), -ERANGE);
	CHECK_U64(fx_info(e.dom).mappings, 1);
	CHECK_U64(fx_info(e.dom).mapped_bytes, P(2));
	l = fx_collect(e.dom, 0, UINT64_MAX);
	REQUIRE(l.n == 1);
	CHECK_U64(l.m[0].iova, BASE + P(16));
	CHECK_U64(l.m[0].last, BASE + P(18) - 1);
	CHECK(mapped(&e, 16));
	CHECK(mapped(&e, 17));
	/* The whole area goes in one call. */
	CHECK_EQ(unmap_pages(&e, 16, 2, &bytes), 0);
	CHECK_U64(bytes, P(2));
	CHECK(!mapped(&e, 16));
	fx_fini(&e.f);
}

TEST(overlapping_maps_refused)
{
	/* DESIGN.md §3 / issue 2: iommufd selftest scenario. */
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(map_pages(&e, 16, 2), 0);
	CHECK_EQ(map_pages(&e, 15, 2), -EEXIST);
	CHECK_EQ(map_pages(&e, 16, 1), -EEXIST);
	CHECK_EQ(map_pages(&e, 16, 2), -EEXIST);
	CHECK_EQ(map_pages(&e, 17, 2), -EEXIST);
	CHECK_EQ(map_pages(&e, 17, 1), -EEXIST);
	CHECK_EQ(map_pages(&e, 14, 8), -EEXIST);
	CHECK_U64(fx_info(e.dom).mappings, 1);
	CHECK_U64(fx_info(e.dom).mapped_bytes, P(2));
	CHECK(!mapped(&e, 15));
	CHECK(!mapped(&e, 18));
	/* Touching it is not overlapping. */
	CHECK_EQ(map_pages(&e, 15, 1), 0);
	CHECK_EQ(map_pages(&e, 18, 1), 0);
	fx_fini(&e.f);
}

TEST(unmap_whole_space_removes_everything)
{
	/* DESIGN.md §3 / issue 2: iommufd selftest scenario. */
	uint64_t bytes = 0;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(map_pages(&e, 0, 1), 0);
	CHECK_EQ(map_pages(&e, 16, 2), 0);
	CHECK_EQ(map_pages(&e, 100, 7), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0, 0xfff, 0, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, UINT64_MAX - 0xfff, UINT64_MAX, 0,
				   RW), 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0, UINT64_MAX, &bytes), 0);
	CHECK_U64(bytes, P(1 + 2 + 7 + 1 + 1));
	CHECK_U64(fx_info(e.dom).mappings, 0);
	CHECK_U64(fx_info(e.dom).mapped_bytes, 0);
	CHECK(!mapped(&e, 0));
	CHECK(!mapped(&e, 16));
	CHECK(!mapped(&e, 100));
	CHECK_EQ(viommu_domain_unmap(e.dom, 0, UINT64_MAX, &bytes), -ENOENT);
	fx_fini(&e.f);
}

/* four_areas() - 8-page areas at pages 0, 16, 32, 48 from BASE. */
static int four_areas(struct env *e)
{
	int rc = 0;

	for (uint64_t i = 0; i < 4 && !rc; i++)
		rc = map_pages(e, 16 * i, 8);
	return rc;
}

/* all_four_mapped() - every page of the four areas still translates. */
static bool all_four_mapped(struct env *e)
{
	for (uint64_t i = 0; i < 4; i++)
		for (uint64_t p = 0; p < 8; p++)
			if (!mapped(e, 16 * i + p))
				return false;
	return fx_info(e->dom).mappings == 4 &&
	       fx_info(e->dom).mapped_bytes == P(32);
}

TEST(areas_cut_range_refused)
{
	/* DESIGN.md §3 / issue 2: iommufd selftest scenario. */
	uint64_t bytes;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE(four_areas(&e) == 0);
	/* Starts one page before the first area, cuts it at its end. */
	CHECK_EQ(viommu_domain_unmap(e.dom, BASE - P(1), BASE + P(7) - 1,
				     &bytes), -ERANGE);
	/* Covers the first two, cuts the third. */
	CHECK_EQ(unmap_pages(&e, 0, 36, &bytes), -ERANGE);
	/* Starts inside the second, covers the rest. */
	CHECK_EQ(unmap_pages(&e, 20, 60, &bytes), -ERANGE);
	/* Cuts only the last at its end. */
	CHECK_EQ(unmap_pages(&e, 0, 55, &bytes), -ERANGE);
	/* Inside one area. */
	CHECK_EQ(unmap_pages(&e, 34, 2, &bytes), -ERANGE);
	CHECK(all_four_mapped(&e));
	fx_fini(&e.f);
}

TEST(areas_superset_range_unmaps_32_pages)
{
	/* DESIGN.md §3 / issue 2: iommufd selftest scenario. */
	uint64_t bytes = 0;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE(four_areas(&e) == 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, BASE - P(1), BASE + P(64) - 1,
				     &bytes), 0);
	CHECK_U64(bytes, P(32));
	CHECK_U64(fx_info(e.dom).mappings, 0);
	for (uint64_t i = 0; i < 4; i++)
		CHECK(!mapped(&e, 16 * i));
	/* The exact span of the areas works as well. */
	REQUIRE(four_areas(&e) == 0);
	CHECK_EQ(unmap_pages(&e, 0, 56, &bytes), 0);
	CHECK_U64(bytes, P(32));
	/* And a range holding only the middle two. */
	REQUIRE(four_areas(&e) == 0);
	CHECK_EQ(unmap_pages(&e, 8, 40, &bytes), 0);
	CHECK_U64(bytes, P(16));
	CHECK(mapped(&e, 0));
	CHECK(!mapped(&e, 16));
	CHECK(!mapped(&e, 32));
	CHECK(mapped(&e, 48));
	CHECK_U64(fx_info(e.dom).mappings, 2);
	fx_fini(&e.f);
}

TEST_MAIN()
