/*
 * test_vtd_pt.c - the VT-d page-table walker and builder (T3):
 * second-level 3/4/5 levels and large leaves, permission AND across
 * levels, reserved bits per level, first-level canonical addresses, A/D
 * updates, XD, the nested table hook, and the builder's refusals.
 */
#include <inttypes.h>
#include <stdio.h>

#include "harness.h"
#include "test_vtd_fixture.h"

TEST(t3_sl_walk_levels_and_leaf_sizes)
{
	struct fx f;
	struct vtdpt_result r;

	REQUIRE(fx_init(&f, NULL) == 0);
	for (unsigned int lv = 3; lv <= 5; lv++) {
		struct vtdpt_cfg c = fx_cfg(VTDPT_SL, lv);
		uint64_t root, top = 1ull << (12 + 9 * lv);

		REQUIRE(vtdpt_alloc_root(&f.ops, &root) == 0);
		REQUIRE(vtdpt_map(&c, &f.ops, root, top - (1ull << 30),
				  1ull << 30, 1ull << 30, VIOMMU_READ) == 0);
		REQUIRE(vtdpt_map(&c, &f.ops, root, 0x200000, 0x400000,
				  2ull << 20, VIOMMU_WRITE) == 0);
		REQUIRE(vtdpt_map(&c, &f.ops, root, 0x1000, 0x5000, 4096,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
		CHECK_EQ(vtdpt_walk(&c, f.mem, root, top - 1, VIOMMU_READ,
				    NULL, NULL, &r), 0);
		CHECK_U64(r.oa, (2ull << 30) - 1);
		CHECK_U64(r.size, 1ull << 30);
		CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0x200123, VIOMMU_WRITE,
				    NULL, NULL, &r), 0);
		CHECK_U64(r.oa, 0x400123);
		CHECK_U64(r.size, 2ull << 20);
		CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0x200123, VIOMMU_READ,
				    NULL, NULL, &r), -EFAULT);
		CHECK_EQ(r.fault, VTDPT_F_READ);        /* write-only leaf */
		CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0x1fff, VIOMMU_WRITE,
				    NULL, NULL, &r), 0);
		CHECK_U64(r.oa, 0x5fff);
		CHECK_EQ(vtdpt_walk(&c, f.mem, root, top, VIOMMU_READ,
				    NULL, NULL, &r), -EFAULT);
		CHECK_EQ(r.fault, VTDPT_F_RANGE);
		CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0x3000, VIOMMU_READ,
				    NULL, NULL, &r), -EFAULT);
		CHECK_EQ(r.fault, VTDPT_F_NOT_PRESENT);
		CHECK_EQ(r.level, 1);
	}
	fx_fini(&f);
}

TEST(t3_sl_permissions_and_reserved_bits)
{
	struct vtdpt_cfg c = fx_cfg(VTDPT_SL, 4);
	struct vtdpt_result r;
	struct fx f;
	uint64_t root, l4e;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE(vtdpt_alloc_root(&f.ops, &root) == 0);
	REQUIRE(vtdpt_map(&c, &f.ops, root, 0, 0x10000, 4096,
			  VIOMMU_READ | VIOMMU_WRITE) == 0);
	l4e = root;
	/* a non-leaf without W makes the whole subtree read-only */
	gw64(&f, l4e, gr64(&f, l4e) & ~2ull);
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0, VIOMMU_WRITE, NULL, NULL, &r),
		 -EFAULT);
	CHECK_EQ(r.fault, VTDPT_F_WRITE);
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0, VIOMMU_READ, NULL, NULL, &r),
		 0);
	CHECK_EQ(r.perm & VIOMMU_WRITE, 0);
	gw64(&f, l4e, gr64(&f, l4e) | 2);
	/* PS at level 4 is reserved */
	gw64(&f, l4e, gr64(&f, l4e) | 0x80);
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0, VIOMMU_READ, NULL, NULL, &r),
		 -EFAULT);
	CHECK_EQ(r.fault, VTDPT_F_RSVD);
	CHECK_EQ(r.level, 4);
	gw64(&f, l4e, gr64(&f, l4e) & ~0x80ull);
	/* an address bit at or above HAW is reserved; bits 52+ ignored */
	gw64(&f, l4e, gr64(&f, l4e) | (1ull << 50));
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0, VIOMMU_READ, NULL, NULL, &r),
		 -EFAULT);
	CHECK_EQ(r.fault, VTDPT_F_RSVD);
	gw64(&f, l4e, (gr64(&f, l4e) & ~(1ull << 50)) | (1ull << 60));
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0, VIOMMU_READ, NULL, NULL, &r),
		 0);
	/* a misaligned 2 MiB leaf */
	REQUIRE(vtdpt_map(&c, &f.ops, root, 0x40000000, 0x200000, 2ull << 20,
			  VIOMMU_READ) == 0);
	REQUIRE(vtdpt_walk(&c, f.mem, root, 0x40000000, 0, NULL, NULL,
			   &r) == 0);
	gw64(&f, r.fetch, gr64(&f, r.fetch) | 0x1000);
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0x40000000, VIOMMU_READ, NULL,
			    NULL, &r), -EFAULT);
	CHECK_EQ(r.fault, VTDPT_F_RSVD);
	/* a root that is not aligned or not RAM */
	CHECK_EQ(vtdpt_walk(&c, f.mem, root | 8, 0, VIOMMU_READ, NULL, NULL,
			    &r), -EFAULT);
	CHECK_EQ(r.fault, VTDPT_F_RSVD);
	CHECK_EQ(vtdpt_walk(&c, f.mem, 1ull << 40, 0, VIOMMU_READ, NULL, NULL,
			    &r), -EFAULT);
	CHECK_EQ(r.fault, VTDPT_F_FETCH);
	fx_fini(&f);
}

TEST(t3_fl_canonical_xd_and_ad)
{
	struct vtdpt_cfg c = fx_cfg(VTDPT_FL, 4);
	struct vtdpt_result r;
	struct fx f;
	uint64_t root, hi = 0xffff800000000000ull;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE(vtdpt_alloc_root(&f.ops, &root) == 0);
	CHECK_EQ(vtdpt_map(&c, &f.ops, root, hi, 0x10000, 4096, VIOMMU_READ),
		 -EINVAL);                          /* builder: low half only */
	REQUIRE(vtdpt_map(&c, &f.ops, root, 0x1000, 0x10000, 4096,
			  VIOMMU_READ) == 0);
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, hi, VIOMMU_READ, NULL, NULL, &r),
		 -EFAULT);
	CHECK_EQ(r.fault, VTDPT_F_NOT_PRESENT);     /* canonical, unmapped */
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, 1ull << 47, VIOMMU_READ, NULL,
			    NULL, &r), -EFAULT);
	CHECK_EQ(r.fault, VTDPT_F_RANGE);
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0x1000, VIOMMU_EXEC, NULL, NULL,
			    &r), -EFAULT);
	CHECK_EQ(r.fault, VTDPT_F_EXEC);            /* XD set by builder */
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0x1000, VIOMMU_WRITE, NULL, NULL,
			    &r), -EFAULT);
	CHECK_EQ(r.fault, VTDPT_F_WRITE);
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0x1000, 0, NULL, NULL, &r), 0);
	/* refused and probing walks leave the leaf's A clear (the
	 * upper levels of a refused walk may have it set, as on x86) */
	CHECK(!(gr64(&f, r.fetch) & 0x20));
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0x1000, VIOMMU_READ, NULL, NULL,
			    &r), 0);
	CHECK(gr64(&f, r.fetch) & 0x20);            /* leaf A */
	CHECK(gr64(&f, root) & 0x20);               /* and the top level */
	CHECK(!(gr64(&f, r.fetch) & 0x40));
	fx_fini(&f);
}

/* hook_off() - nested hook for the test: table addresses + 1 MiB. */
static int hook_off(void *o, uint64_t addr, bool write, uint64_t *gpa)
{
	int *calls = o;

	(void)write;
	(*calls)++;
	if (addr >= (8ull << 20))
		return -1;
	*gpa = addr;
	return 0;
}

TEST(t3_fl_nested_hook_sees_every_table)
{
	struct vtdpt_cfg c = fx_cfg(VTDPT_FL, 5);
	struct vtdpt_result r;
	struct fx f;
	uint64_t root;
	int calls = 0;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE(vtdpt_alloc_root(&f.ops, &root) == 0);
	REQUIRE(vtdpt_map(&c, &f.ops, root, 0x1000, 0x10000, 4096,
			  VIOMMU_READ) == 0);
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0x1000, VIOMMU_READ, hook_off,
			    &calls, &r), 0);
	CHECK_EQ(calls, 5);
	gw64(&f, root, (9ull << 20) | 7);
	CHECK_EQ(vtdpt_walk(&c, f.mem, root, 0x1000, VIOMMU_READ, hook_off,
			    &calls, &r), -EFAULT);
	CHECK_EQ(r.fault, VTDPT_F_HOOK);
	CHECK_EQ(r.level, 4);
	fx_fini(&f);
}

TEST(t3_builder_refusals_and_unmap)
{
	struct vtdpt_cfg c = fx_cfg(VTDPT_SL, 4);
	struct fx f;
	uint64_t root, n = 0;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE(vtdpt_alloc_root(&f.ops, &root) == 0);
	CHECK_EQ(vtdpt_map(&c, &f.ops, root, 0x1001, 0, 4096, VIOMMU_READ),
		 -EINVAL);
	CHECK_EQ(vtdpt_map(&c, &f.ops, root, 0, 0, 4096, 0), -EINVAL);
	CHECK_EQ(vtdpt_map(&c, &f.ops, root, 1ull << 48, 0, 4096,
			   VIOMMU_READ), -EINVAL);
	REQUIRE(vtdpt_map(&c, &f.ops, root, 0x200000, 0, 2ull << 20,
			  VIOMMU_READ) == 0);
	CHECK_EQ(vtdpt_map(&c, &f.ops, root, 0x201000, 0, 4096, VIOMMU_READ),
		 -EEXIST);
	CHECK_EQ(vtdpt_unmap(&c, &f.ops, root, 0x200000, 4096, &n), -ERANGE);
	CHECK_EQ(vtdpt_unmap(&c, &f.ops, root, 0, 8ull << 20, &n), 0);
	CHECK_U64(n, 2ull << 20);
	CHECK_EQ(vtdpt_unmap(&c, &f.ops, root, 0, 8ull << 20, &n), 0);
	CHECK_U64(n, 0);
	fx_fini(&f);
}

TEST_MAIN()
