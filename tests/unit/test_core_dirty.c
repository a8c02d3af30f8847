/*
 * test_core_dirty.c - unit tests of the core's dirty tracking (marking, clearing, bitmap
 * offsets and sizes) and DMA copies through translation.
 * Every expected errno is the one include/viommu/core.h documents.
 */
#include "harness.h"
#include "core_fixture.h"

#define RW (VIOMMU_READ | VIOMMU_WRITE)
#define NP VIOMMU_NO_PASID

/* ------------------------------------------------------------------ */
/* Dirty tracking                                                     */

#define DBASE 0x20000000ull

/* dirty_env() - env with [DBASE, DBASE + 64 pages) -> 0x400000 RW. */
static int dirty_env(struct env *e)
{
	int rc = env_init(e, NULL);

	if (!rc)
		rc = viommu_domain_map(e->dom, DBASE, DBASE + 64 * PAGE - 1,
				       0x400000, RW);
	return rc;
}

/* dirty_word() - first bitmap word of [DBASE, +64 pages), or ~0 on error. */
static uint64_t dirty_word(struct viommu_domain *d, unsigned int flags)
{
	uint64_t bm = 0;

	if (viommu_domain_dirty_read(d, DBASE, DBASE + 64 * PAGE - 1, &bm, 1,
				     flags))
		return ~0ull;
	return bm;
}

TEST(dirty_disabled_enodev)
{
	/* DESIGN.md §3: dirty tracking (iommufd model). */
	uint64_t bm = 0;
	struct env e;

	REQUIRE(dirty_env(&e) == 0);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE, DBASE + 64 * PAGE - 1,
					  &bm, 1, 0), -ENODEV);
	CHECK(!fx_info(e.dom).dirty_tracking);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	CHECK(fx_info(e.dom).dirty_tracking);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, false), 0);
	CHECK(!fx_info(e.dom).dirty_tracking);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE, DBASE + 64 * PAGE - 1,
					  &bm, 1, 0), -ENODEV);
	fx_fini(&e.f);
}

TEST(dirty_translate_write_marks_pages)
{
	/* DESIGN.md §3: dirty tracking (iommufd model). */
	struct viommu_xlate x;
	struct env e;

	REQUIRE(dirty_env(&e) == 0);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	CHECK_U64(dirty_word(e.dom, 0), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, DBASE + 2 * PAGE + 0x800, PAGE,
				  VIOMMU_WRITE, &x, NULL), 0);
	CHECK_EQ(x.len, PAGE);
	CHECK_EQ(viommu_translate(e.ep, NP, DBASE + 63 * PAGE + 5, 1,
				  VIOMMU_WRITE | VIOMMU_READ, &x, NULL), 0);
	CHECK_U64(dirty_word(e.dom, 0), (1ull << 2) | (1ull << 3) |
					 (1ull << 63));
	fx_fini(&e.f);
}

TEST(dirty_reads_do_not_mark)
{
	/* DESIGN.md §3: dirty tracking (iommufd model). */
	uint8_t buf[64];
	struct viommu_xlate x;
	struct env e;

	REQUIRE(dirty_env(&e) == 0);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, DBASE + 5 * PAGE, PAGE,
				  VIOMMU_READ, &x, NULL), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, DBASE + 6 * PAGE, PAGE,
				  VIOMMU_EXEC, &x, NULL), -EFAULT);
	CHECK_EQ(viommu_dma_read(e.ep, NP, DBASE + 7 * PAGE, buf,
				 sizeof(buf)), 0);
	/* A refused write marks nothing either. */
	CHECK_EQ(viommu_translate(e.ep, NP, DBASE + 64 * PAGE, 4, VIOMMU_WRITE,
				  &x, NULL), -EFAULT);
	CHECK_U64(dirty_word(e.dom, 0), 0);
	fx_fini(&e.f);
}

TEST(dirty_read_clears)
{
	/* DESIGN.md §3: dirty tracking (iommufd model). */
	struct env e;

	REQUIRE(dirty_env(&e) == 0);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, DBASE + 9 * PAGE, VIOMMU_WRITE),
		  0x400000 + 9 * PAGE);
	CHECK_U64(dirty_word(e.dom, 0), 1ull << 9);
	CHECK_U64(dirty_word(e.dom, 0), 0);
	/* Written again: reported again. */
	CHECK_U64(fx_gpa_of(e.ep, NP, DBASE + 9 * PAGE, VIOMMU_WRITE),
		  0x400000 + 9 * PAGE);
	CHECK_U64(dirty_word(e.dom, 0), 1ull << 9);
	fx_fini(&e.f);
}

TEST(dirty_no_clear_keeps_bits)
{
	/* DESIGN.md §3: dirty tracking (iommufd model). */
	struct env e;

	REQUIRE(dirty_env(&e) == 0);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	fx_gpa_of(e.ep, NP, DBASE + 1 * PAGE, VIOMMU_WRITE);
	CHECK_U64(dirty_word(e.dom, VIOMMU_DIRTY_NO_CLEAR), 1ull << 1);
	CHECK_U64(dirty_word(e.dom, VIOMMU_DIRTY_NO_CLEAR), 1ull << 1);
	CHECK_U64(dirty_word(e.dom, 0), 1ull << 1);
	CHECK_U64(dirty_word(e.dom, 0), 0);
	fx_fini(&e.f);
}

TEST(dirty_bits_set_never_cleared_in_bitmap)
{
	/* DESIGN.md §3: dirty tracking (iommufd model). */
	uint64_t bm = 1ull << 40;
	struct env e;

	REQUIRE(dirty_env(&e) == 0);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	fx_gpa_of(e.ep, NP, DBASE + 4 * PAGE, VIOMMU_WRITE);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE, DBASE + 64 * PAGE - 1,
					  &bm, 1, 0), 0);
	CHECK_U64(bm, (1ull << 40) | (1ull << 4));
	fx_fini(&e.f);
}

TEST(dirty_read_subrange_offsets_bits)
{
	/* DESIGN.md §3: dirty tracking (iommufd model). */
	uint64_t bm[2] = { 0, 0 };
	struct env e;

	REQUIRE(dirty_env(&e) == 0);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	fx_gpa_of(e.ep, NP, DBASE + 5 * PAGE, VIOMMU_WRITE);
	fx_gpa_of(e.ep, NP, DBASE + 20 * PAGE, VIOMMU_WRITE);
	/* Only [4, 8) pages: bit 1; page 20 stays dirty. */
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE + 4 * PAGE,
					  DBASE + 8 * PAGE - 1, bm, 1, 0), 0);
	CHECK_U64(bm[0], 1ull << 1);
	/* Read more than 64 pages, starting before the mapping. */
	bm[0] = 0;
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE - 16 * PAGE,
					  DBASE + 112 * PAGE - 1, bm, 2, 0),
		 0);
	CHECK_U64(bm[0], 1ull << 36);
	CHECK_U64(bm[1], 0);
	fx_fini(&e.f);
}

TEST(dirty_dma_write_marks_pages)
{
	/* DESIGN.md §3: dirty tracking (iommufd model). */
	uint8_t buf[3] = { 1, 2, 3 };
	struct env e;

	REQUIRE(dirty_env(&e) == 0);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	CHECK_EQ(viommu_dma_write(e.ep, NP, DBASE + 7 * PAGE - 1, buf, 3), 0);
	CHECK_U64(dirty_word(e.dom, 0), (1ull << 6) | (1ull << 7));
	CHECK(memcmp(e.f.ram0 + 0x400000 + 7 * PAGE - 1, buf, 3) == 0);
	fx_fini(&e.f);
}

TEST(dirty_alignment_einval)
{
	/* DESIGN.md §3: dirty tracking (iommufd model). */
	uint64_t bm[2] = { 0 };
	struct env e;

	REQUIRE(dirty_env(&e) == 0);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE + 1, DBASE + PAGE - 1,
					  bm, 1, 0), -EINVAL);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE, DBASE + PAGE - 2, bm,
					  1, 0), -EINVAL);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE, DBASE + PAGE, bm, 1,
					  0), -EINVAL);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE + PAGE, DBASE - 1, bm,
					  1, 0), -EINVAL);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE, DBASE + PAGE - 1, bm,
					  1, 1u << 5), -EINVAL);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE, DBASE + PAGE - 1,
					  NULL, 1, 0), -EINVAL);
	/* The top page of the address space is a valid range. */
	CHECK_EQ(viommu_domain_dirty_read(e.dom, UINT64_MAX - PAGE + 1,
					  UINT64_MAX, bm, 1, 0), 0);
	CHECK_U64(bm[0], 0);
	fx_fini(&e.f);
}

TEST(dirty_bitmap_too_small_einval)
{
	/* DESIGN.md §3: dirty tracking (iommufd model). */
	uint64_t bm[2] = { 0 };
	struct env e;

	REQUIRE(dirty_env(&e) == 0);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	fx_gpa_of(e.ep, NP, DBASE, VIOMMU_WRITE);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE, DBASE + 65 * PAGE - 1,
					  bm, 1, 0), -EINVAL);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE, DBASE + PAGE - 1, bm,
					  0, 0), -EINVAL);
	/* Refused reads cleared nothing. */
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE, DBASE + 65 * PAGE - 1,
					  bm, 2, 0), 0);
	CHECK_U64(bm[0], 1);
	fx_fini(&e.f);
}

TEST(dirty_enable_clears_previous_state)
{
	/* DESIGN.md §3: dirty tracking (iommufd model). */
	struct env e;

	REQUIRE(dirty_env(&e) == 0);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	fx_gpa_of(e.ep, NP, DBASE + 3 * PAGE, VIOMMU_WRITE);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, false), 0);
	/* Writes while disabled are not tracked. */
	fx_gpa_of(e.ep, NP, DBASE + 4 * PAGE, VIOMMU_WRITE);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	CHECK_U64(dirty_word(e.dom, 0), 0);
	fx_fini(&e.f);
}

TEST(dirty_multi_page_write_marks_every_page)
{
	struct viommu_xlate x;
	struct env e;

	REQUIRE(dirty_env(&e) == 0);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, DBASE + 10 * PAGE + 0x800,
				  3 * PAGE, VIOMMU_WRITE, &x, NULL), 0);
	CHECK_EQ(x.len, 3 * PAGE);
	CHECK_U64(dirty_word(e.dom, 0), 0xfull << 10);
	/* A write clipped at the mapping end marks only what it covers. */
	CHECK_EQ(viommu_translate(e.ep, NP, DBASE + 63 * PAGE + 0x800,
				  4 * PAGE, VIOMMU_WRITE, &x, NULL), 0);
	CHECK_EQ(x.len, 0x800);
	CHECK_U64(dirty_word(e.dom, 0), 1ull << 63);
	fx_fini(&e.f);
}

TEST(dirty_top_of_address_space)
{
	const uint64_t top = UINT64_MAX - 4 * PAGE + 1;
	uint64_t bm = 0;
	uint8_t b = 7;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, top, UINT64_MAX, 0x400000, RW), 0);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	CHECK_EQ(viommu_dma_write(e.ep, NP, UINT64_MAX, &b, 1), 0);
	CHECK_EQ(e.f.ram0[0x400000 + 4 * PAGE - 1], 7);
	CHECK_U64(fx_gpa_of(e.ep, NP, top + PAGE, VIOMMU_WRITE),
		  0x400000 + PAGE);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, top, UINT64_MAX, &bm, 1, 0),
		 0);
	CHECK_U64(bm, (1ull << 3) | (1ull << 1));
	fx_fini(&e.f);
}

TEST(dirty_out_of_chunks_reports_all_mapped_pages)
{
	struct fx_opts o = { .limits = { .max_dirty_chunks = 1 } };
	const uint64_t far = DBASE + (4ull << 20);
	uint64_t bm[17] = { 0 };
	struct env e;

	REQUIRE(env_init(&e, &o) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, DBASE, DBASE + 64 * PAGE - 1,
				   0x400000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, far, far + 64 * PAGE - 1, 0x600000,
				   RW), 0);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	/* Two 2 MiB chunks written, room for one. */
	CHECK_U64(fx_gpa_of(e.ep, NP, DBASE + 3 * PAGE, VIOMMU_WRITE),
		  0x400000 + 3 * PAGE);
	CHECK_U64(fx_gpa_of(e.ep, NP, far + 5 * PAGE, VIOMMU_WRITE),
		  0x600000 + 5 * PAGE);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, DBASE, far + 64 * PAGE - 1,
					  bm, 17, 0), 0);
	/* Conservative: every mapped page, and nothing unmapped. */
	CHECK_U64(bm[0], UINT64_MAX);
	for (int i = 1; i < 16; i++)
		CHECK_U64(bm[i], 0);
	CHECK_U64(bm[16], UINT64_MAX);
	fx_fini(&e.f);
}

TEST(dirty_write_after_iotlb_fill_marks)
{
	/* DESIGN.md §3: dirty tracking (iommufd model). */
	struct env e;

	REQUIRE(dirty_env(&e) == 0);
	for (int i = 0; i < 3; i++)
		CHECK_U64(fx_gpa_of(e.ep, NP, DBASE + 9 * PAGE, VIOMMU_WRITE),
			  0x400000 + 9 * PAGE);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, DBASE + 9 * PAGE, VIOMMU_WRITE),
		  0x400000 + 9 * PAGE);
	CHECK_U64(dirty_word(e.dom, 0), 1ull << 9);
	/* And hits after a write miss under tracking keep marking. */
	fx_gpa_of(e.ep, NP, DBASE + 9 * PAGE, VIOMMU_READ);
	CHECK_U64(fx_gpa_of(e.ep, NP, DBASE + 9 * PAGE, VIOMMU_WRITE),
		  0x400000 + 9 * PAGE);
	CHECK_U64(dirty_word(e.dom, 0), 1ull << 9);
	fx_fini(&e.f);
}

/* ------------------------------------------------------------------ */
/* DMA copies                                                         */

/* dma_env() - three one-page mappings over both RAM regions. */
static int dma_env(struct env *e)
{
	int rc = env_init(e, NULL);

	if (!rc)
		rc = viommu_domain_map(e->dom, 0x10000, 0x10fff, 0x5000, RW);
	if (!rc)
		rc = viommu_domain_map(e->dom, 0x11000, 0x11fff,
				       RAM1_GPA + 0x3000, RW);
	if (!rc)
		rc = viommu_domain_map(e->dom, 0x12000, 0x12fff, 0x9000, RW);
	return rc;
}

TEST(dma_copies_across_mappings_and_regions)
{
	static uint8_t buf[0x2000], back[0x2000];
	struct env e;

	REQUIRE(dma_env(&e) == 0);
	for (unsigned int i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	CHECK_EQ(viommu_dma_write(e.ep, NP, 0x10800, buf, sizeof(buf)), 0);
	CHECK(memcmp(e.f.ram0 + 0x5800, buf, 0x800) == 0);
	CHECK(memcmp(e.f.ram1 + 0x3000, buf + 0x800, 0x1000) == 0);
	CHECK(memcmp(e.f.ram0 + 0x9000, buf + 0x1800, 0x800) == 0);
	CHECK_EQ(e.f.ram0[0x57ff], 0);
	CHECK_EQ(e.f.ram0[0x9800], 0);
	memset(back, 0, sizeof(back));
	CHECK_EQ(viommu_dma_read(e.ep, NP, 0x10800, back, sizeof(back)), 0);
	CHECK(memcmp(back, buf, sizeof(buf)) == 0);
	/* Bytes put in RAM directly come out through the IOVA. */
	memset(e.f.ram1 + 0x3ff0, 0x5a, 0x10);
	CHECK_EQ(viommu_dma_read(e.ep, NP, 0x11ff0, back, 0x10), 0);
	CHECK_EQ(back[0], 0x5a);
	CHECK_EQ(back[15], 0x5a);
	CHECK_EQ(fx_faults(&e.f), 0);
	fx_fini(&e.f);
}

TEST(dma_stops_at_first_unmapped_byte)
{
	static uint8_t buf[0x1800], back[0x1800];
	struct env e;

	REQUIRE(dma_env(&e) == 0);
	memset(buf, 0xab, sizeof(buf));
	CHECK_EQ(viommu_dma_write(e.ep, NP, 0x12800, buf, sizeof(buf)),
		 -EFAULT);
	CHECK(memcmp(e.f.ram0 + 0x9800, buf, 0x800) == 0);
	CHECK_EQ(fx_faults(&e.f), 1);
	CHECK_EQ(e.f.last_fault.reason, VIOMMU_FAULT_NO_MAPPING);
	CHECK_U64(e.f.last_fault.address, 0x13000);
	CHECK_EQ(e.f.last_fault.access, VIOMMU_WRITE);
	memset(back, 0, sizeof(back));
	CHECK_EQ(viommu_dma_read(e.ep, NP, 0x12800, back, sizeof(back)),
		 -EFAULT);
	CHECK(memcmp(back, buf, 0x800) == 0);
	CHECK_EQ(fx_faults(&e.f), 2);
	CHECK_EQ(e.f.last_fault.access, VIOMMU_READ);
	CHECK_U64(e.f.last_fault.address, 0x13000);
	/* Starting unmapped: nothing copied. */
	CHECK_EQ(viommu_dma_write(e.ep, NP, 0xf000, buf, 16), -EFAULT);
	fx_fini(&e.f);
}

TEST(dma_permission_fault)
{
	/* DESIGN.md §3: translate checks permission on every access. */
	uint8_t buf[16];
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x5000,
				   VIOMMU_READ), 0);
	memset(buf, 0x11, sizeof(buf));
	CHECK_EQ(viommu_dma_write(e.ep, NP, 0x1000, buf, sizeof(buf)),
		 -EFAULT);
	CHECK_EQ(e.f.last_fault.reason, VIOMMU_FAULT_PERMISSION);
	CHECK_EQ(e.f.ram0[0x5000], 0);
	CHECK_EQ(viommu_dma_read(e.ep, NP, 0x1000, buf, sizeof(buf)), 0);
	CHECK_EQ(buf[0], 0);
	fx_fini(&e.f);
}

TEST(dma_to_mmio_or_hole_efault)
{
	uint8_t buf[16];
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x2000,
				   RW | VIOMMU_MAP_MMIO), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x3000, 0x3fff, 0x80000000, RW), 0);
	memset(buf, 0x22, sizeof(buf));
	CHECK_EQ(viommu_dma_write(e.ep, NP, 0x1000, buf, sizeof(buf)),
		 -EFAULT);
	CHECK_EQ(e.f.ram0[0x2000], 0);
	CHECK_EQ(viommu_dma_write(e.ep, NP, 0x3000, buf, sizeof(buf)),
		 -EFAULT);
	CHECK_EQ(viommu_dma_read(e.ep, NP, 0x3000, buf, sizeof(buf)), -EFAULT);
	fx_fini(&e.f);
}

TEST(dma_bad_args_einval)
{
	uint8_t buf[4];
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x2000, RW), 0);
	CHECK_EQ(viommu_dma_read(NULL, NP, 0x1000, buf, 4), -EINVAL);
	CHECK_EQ(viommu_dma_read(e.ep, NP, 0x1000, NULL, 4), -EINVAL);
	CHECK_EQ(viommu_dma_write(NULL, NP, 0x1000, buf, 4), -EINVAL);
	CHECK_EQ(viommu_dma_write(e.ep, NP, 0x1000, NULL, 4), -EINVAL);
	CHECK_EQ(viommu_dma_write(e.ep, VIOMMU_PASID_MAX + 1, 0x1000, buf, 4),
		 -EINVAL);
	CHECK_EQ(fx_faults(&e.f), 0);
	fx_fini(&e.f);
}

TEST_MAIN()
