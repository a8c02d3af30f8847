/*
 * test_core_iotlb.c - unit tests of the core's IOTLB (no stale entry after unmap, detach or
 * destroy; block slots at several cache sizes) and PASID attachment.
 * Every expected errno is the one include/viommu/core.h documents.
 */
#include "harness.h"
#include "core_fixture.h"

#define RW (VIOMMU_READ | VIOMMU_WRITE)
#define NP VIOMMU_NO_PASID

/* ------------------------------------------------------------------ */
/* IOTLB                                                              */

TEST(iotlb_unmap_then_translate_faults)
{
	/* Issue 2: no IOTLB entry is used after its unmap returned. */
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x3000, RW), 0);
	for (int i = 0; i < 3; i++)
		CHECK_U64(fx_gpa_of(e.ep, NP, 0x1008, VIOMMU_READ), 0x3008);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x1000, 0x1fff, NULL), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1008, 4, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_NO_MAPPING);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1008, 4, VIOMMU_WRITE, &x, &flt),
		 -EFAULT);
	fx_fini(&e.f);
}

TEST(iotlb_block_slots_hold_large_mappings)
{
	/*
	 * Two 4 MiB mappings whose pages share page slots (both start on a
	 * 1 MiB boundary): alternating between them hits once both are in
	 * block slots; unmap and invalidation still drop those entries.
	 */
	const uint64_t a = 0x40000000, b = 0x80000000, sz = 4ull << 20;
	struct viommu_ctx_stats s0, s1;
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;
	bool ok = true;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, a, a + sz - 1, 0, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, b, b + sz - 1, sz, RW), 0);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			s0 = fx_stats(&e.f);
		for (uint64_t off = 0; off < sz; off += PAGE) {
			ok &= fx_gpa_of(e.ep, NP, a + off, VIOMMU_READ) == off;
			ok &= fx_gpa_of(e.ep, NP, b + off + 8, VIOMMU_WRITE) ==
			      sz + off + 8;
		}
	}
	s1 = fx_stats(&e.f);
	CHECK(ok);
	CHECK_U64(s1.iotlb_misses - s0.iotlb_misses, 0);
	/* invalidating part of A drops its block entry; it refills right */
	CHECK_EQ(viommu_domain_invalidate(e.dom, a + 0x1000, a + 0x1fff), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, a + 0x1f0000, VIOMMU_READ), 0x1f0000);
	CHECK(fx_stats(&e.f).iotlb_misses > s1.iotlb_misses);
	/* unmapping B: no block entry of it survives */
	CHECK_EQ(viommu_domain_unmap(e.dom, b, b + sz - 1, NULL), 0);
	for (uint64_t off = 0; off < sz; off += 1ull << 20)
		CHECK_EQ(viommu_translate(e.ep, NP, b + off, 4, VIOMMU_READ, &x,
					  &flt), -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_NO_MAPPING);
	CHECK_U64(fx_gpa_of(e.ep, NP, a + sz - 8, VIOMMU_READ), sz - 8);
	fx_fini(&e.f);
}

/*
 * block_unmap_case() - with @entries page slots, 2 MiB block mappings at
 * 256 consecutive blocks (their block slots cover every slot, the last
 * one included): each one cached, unmapped alone, then faults.  Then
 * mappings of several blocks, one block cached, unmapped in one call.  The
 * IOTLB size picks the invalidation path (whole-table scan, per-block
 * slots, or every block slot), so each size tests a different one.
 */
static void block_unmap_case(uint32_t entries)
{
	struct fx_opts o = { .limits = { .iotlb_entries = entries } };
	const uint64_t base = 0x40000000, blk = 2ull << 20;
	struct env e;
	bool ok = true;

	REQUIRE(env_init(&e, &o) == 0);
	for (uint64_t k = 0; k < 256; k++) {
		uint64_t a = base + k * blk, gpa = (k % 4) * blk;

		ok &= viommu_domain_map(e.dom, a, a + blk - 1, gpa, RW) == 0;
		for (int pass = 0; pass < 2; pass++)
			ok &= fx_gpa_of(e.ep, NP, a + 0x1234, VIOMMU_READ) ==
			      gpa + 0x1234;
		ok &= viommu_domain_unmap(e.dom, a, a + blk - 1, NULL) == 0;
		ok &= fx_gpa_of(e.ep, NP, a + 0x1234, VIOMMU_READ) ==
		      UINT64_MAX;
		ok &= fx_gpa_of(e.ep, NP, a + blk - 8, VIOMMU_READ) ==
		      UINT64_MAX;
	}
	CHECK(ok);
	/*
	 * Multi-block mappings, one block cached, all unmapped in one call:
	 * each span and cached block r; 33 and more blocks take the "every
	 * block slot" path when the page slots outnumber the pages.  MMIO
	 * mappings, so that each whole block is one piece (RAM is smaller).
	 */
	static const uint64_t spans[] = { 2, 3, 33, 127 };
	for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
		uint64_t last = base + spans[i] * blk - 1;

		for (uint64_t r = 0; r < spans[i]; r++) {
			uint64_t a = base + r * blk + 8;

			ok &= viommu_domain_map(e.dom, base, last, 0,
						RW | VIOMMU_MAP_MMIO) == 0;
			ok &= fx_gpa_of(e.ep, NP, a, VIOMMU_READ) == r * blk + 8;
			ok &= fx_gpa_of(e.ep, NP, a, VIOMMU_READ) == r * blk + 8;
			ok &= viommu_domain_unmap(e.dom, base, last, NULL) == 0;
			ok &= fx_gpa_of(e.ep, NP, a, VIOMMU_READ) == UINT64_MAX;
		}
	}
	CHECK(ok);
	fx_fini(&e.f);
}

TEST(iotlb_block_unmap_clears_every_block_slot)
{
	/* Issue 2: no IOTLB entry is used after its unmap returned. */
	block_unmap_case(256);
	block_unmap_case(1024);
	block_unmap_case(65536);
}

TEST(iotlb_unaligned_large_mapping_translates_every_page)
{
	/* 3 MiB starting mid-block: only its one whole block is a block
	 * entry; every page still translates to its own GPA. */
	const uint64_t a = 0x40100000, sz = 3ull << 20;
	struct env e;
	bool ok = true;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, a, a + sz - 1, 0x200000, RW), 0);
	for (int pass = 0; pass < 2; pass++)
		for (uint64_t off = 0; off < sz; off += PAGE)
			ok &= fx_gpa_of(e.ep, NP, a + off, VIOMMU_READ) ==
			      0x200000 + off;
	CHECK(ok);
	CHECK_EQ(viommu_domain_unmap(e.dom, a, a + sz - 1, NULL), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, a + 0x100000, VIOMMU_READ), UINT64_MAX);
	fx_fini(&e.f);
}

TEST(iotlb_invalidate_keeps_translations)
{
	/* Issue 2: no IOTLB entry is used after its unmap returned. */
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x3000, RW), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1008, VIOMMU_READ), 0x3008);
	CHECK_EQ(viommu_domain_invalidate(e.dom, 0x1000, 0x1fff), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1008, VIOMMU_READ), 0x3008);
	CHECK_EQ(viommu_domain_invalidate(e.dom, 0, UINT64_MAX), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1008, VIOMMU_WRITE), 0x3008);
	CHECK_EQ(viommu_domain_invalidate_all(e.dom), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1008, VIOMMU_READ), 0x3008);
	CHECK_EQ(viommu_ctx_invalidate_all(e.f.ctx), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1008, VIOMMU_READ), 0x3008);
	CHECK_EQ(viommu_domain_invalidate(e.dom, 0x2000, 0x1000), -EINVAL);
	CHECK_EQ(viommu_domain_invalidate(NULL, 0, 1), -EINVAL);
	CHECK_EQ(viommu_domain_invalidate_all(NULL), -EINVAL);
	CHECK_EQ(viommu_ctx_invalidate_all(NULL), -EINVAL);
	CHECK_EQ(fx_faults(&e.f), 0);
	fx_fini(&e.f);
}

TEST(iotlb_remap_gives_new_gpa)
{
	/* Issue 2: no IOTLB entry is used after its unmap returned. */
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x3000, RW), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1008, VIOMMU_READ), 0x3008);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x1000, 0x1fff, NULL), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, RAM1_GPA + 0x9000,
				   RW), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1008, 4, VIOMMU_READ, &x, NULL),
		 0);
	CHECK_U64(x.gpa, RAM1_GPA + 0x9008);
	CHECK(x.hva == e.f.ram1 + 0x9008);
	fx_fini(&e.f);
}

TEST(iotlb_prot_change_after_remap)
{
	/* Issue 2: no IOTLB entry is used after its unmap returned. */
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x3000, RW), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1000, VIOMMU_WRITE), 0x3000);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x1000, 0x1fff, NULL), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x3000,
				   VIOMMU_READ), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1000, 4, VIOMMU_WRITE, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_PERMISSION);
	fx_fini(&e.f);
}

TEST(iotlb_mem_replacement_gives_new_hva)
{
	/* Issue 2: no IOTLB entry is used after its unmap returned. */
	uint8_t *other = calloc(1, RAM_SIZE);
	struct viommu_mem_region r = { .gpa = RAM0_GPA, .size = RAM_SIZE,
				       .fd = -1, .hva = other };
	struct viommu_xlate x;
	struct env e;

	REQUIRE(other != NULL);
	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x3000, RW), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1008, 4, VIOMMU_READ, &x, NULL),
		 0);
	CHECK(x.hva == e.f.ram0 + 0x3008);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1008, 4, VIOMMU_READ, &x, NULL),
		 0);
	CHECK_EQ(viommu_mem_set_regions(e.f.mem, &r, 1), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1008, 4, VIOMMU_READ, &x, NULL),
		 0);
	CHECK(x.hva == other + 0x3008);
	/* RAM removed: the GPA stays, the host pointer goes. */
	CHECK_EQ(viommu_mem_set_regions(e.f.mem, NULL, 0), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1008, 4, VIOMMU_READ, &x, NULL),
		 0);
	CHECK_U64(x.gpa, 0x3008);
	CHECK(x.hva == NULL);
	fx_fini(&e.f);
	free(other);
}

/* iotlb_sizes_case() - 64 scattered pages; translate, unmap half, again. */
static void iotlb_sizes_case(uint32_t entries)
{
	struct fx_opts o = { .limits = { .iotlb_entries = entries } };
	struct env e;

	REQUIRE(env_init(&e, &o) == 0);
	for (uint64_t i = 0; i < 64; i++)
		CHECK_EQ(viommu_domain_map(e.dom, 0x100000 + i * PAGE,
					   0x100fff + i * PAGE,
					   ((i * 37) % 64) * PAGE, RW), 0);
	for (int round = 0; round < 2; round++)
		for (uint64_t i = 0; i < 64; i++)
			CHECK_U64(fx_gpa_of(e.ep, NP, 0x100000 + i * PAGE + 8,
					    VIOMMU_READ),
				  ((i * 37) % 64) * PAGE + 8);
	for (uint64_t i = 0; i < 64; i += 2)
		CHECK_EQ(viommu_domain_unmap(e.dom, 0x100000 + i * PAGE,
					     0x100fff + i * PAGE, NULL), 0);
	for (uint64_t i = 0; i < 64; i++)
		CHECK_U64(fx_gpa_of(e.ep, NP, 0x100000 + i * PAGE + 8,
				    VIOMMU_READ),
			  i % 2 ? ((i * 37) % 64) * PAGE + 8 : ~0ull);
	fx_fini(&e.f);
}

TEST(iotlb_any_size_translates_correctly)
{
	/* Issue 2: no IOTLB entry is used after its unmap returned. */
	iotlb_sizes_case(1);
	iotlb_sizes_case(2);
	iotlb_sizes_case(65536);
}

TEST(iotlb_detach_then_translate_faults)
{
	/* Issue 2: no IOTLB entry is used after its unmap returned. */
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x3000, RW), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1000, VIOMMU_READ), 0x3000);
	CHECK_EQ(viommu_endpoint_attach(e.ep, NP,
					viommu_ctx_blocked_domain(e.f.ctx)), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1000, 4, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_BLOCKED);
	fx_fini(&e.f);
}

TEST(iotlb_domain_destroy_and_recreate)
{
	/* Issue 2: no IOTLB entry is used after its unmap returned. */
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	for (uint64_t i = 0; i < 8; i++) {
		struct viommu_domain *d;

		REQUIRE((d = fx_paging(&e.f, 100 + i)) != NULL);
		CHECK_EQ(viommu_domain_map(d, 0x1000, 0x1fff, i * PAGE, RW),
			 0);
		CHECK_EQ(viommu_endpoint_attach(e.ep, NP, d), 0);
		CHECK_U64(fx_gpa_of(e.ep, NP, 0x1004, VIOMMU_READ),
			  i * PAGE + 4);
		CHECK_EQ(viommu_endpoint_detach(e.ep, NP), 0);
		CHECK_EQ(viommu_domain_destroy(d), 0);
	}
	fx_fini(&e.f);
}

/* ------------------------------------------------------------------ */
/* PASIDs                                                             */

TEST(pasid_attach_uses_its_domain)
{
	struct viommu_domain *b;
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x3000, RW), 0);
	CHECK_EQ(viommu_domain_map(b, 0x1000, 0x1fff, 0x7000, RW), 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 1, b), 0);
	CHECK(fx_ep_domain(e.ep, 1) == b);
	CHECK(fx_ep_domain(e.ep, NP) == e.dom);
	CHECK_EQ(fx_info(b).endpoints, 1);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1000, VIOMMU_READ), 0x3000);
	CHECK_U64(fx_gpa_of(e.ep, 1, 0x1000, VIOMMU_READ), 0x7000);
	CHECK_EQ(viommu_translate(e.ep, 1, 0x2000, 4, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.pasid, 1);
	CHECK_U64(flt.domain_tag, 11);
	/* The same domain for RID and PASID counts twice. */
	CHECK_EQ(viommu_endpoint_attach(e.ep, 2, e.dom), 0);
	CHECK_EQ(fx_info(e.dom).endpoints, 2);
	CHECK_U64(fx_gpa_of(e.ep, 2, 0x1000, VIOMMU_READ), 0x3000);
	/* A PASID to the blocked domain. */
	CHECK_EQ(viommu_endpoint_attach(e.ep, 3,
					viommu_ctx_blocked_domain(e.f.ctx)), 0);
	CHECK_EQ(viommu_translate(e.ep, 3, 0x1000, 4, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_BLOCKED);
	fx_fini(&e.f);
}

/*
 * Regression (fuzz_core corpus regress-resv-union-rid-and-pasid): with the
 * RID and a PASID attached to one domain, a reserved region added later
 * must be refused to maps for both attachments; add_resv reserved room for
 * only one copy in the domain's union and the second was silently dropped.
 */
TEST(resv_added_with_rid_and_pasid_on_same_domain)
{
	struct env e;
	unsigned int k;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 1, e.dom), 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 2, e.dom), 0);
	for (k = 0; k < 3; k++)
		CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x100000 * (k + 1),
						  0x100000 * (k + 1) + 0xfff,
						  VIOMMU_RESV_RESERVED), 0);
	for (k = 0; k < 3; k++)
		CHECK_EQ(viommu_domain_map(e.dom, 0x100000 * (k + 1),
					   0x100000 * (k + 1) + 0xfff, 0x3000,
					   RW), -EADDRINUSE);
	/* With the RID gone, the PASIDs' copies must still be there. */
	CHECK_EQ(viommu_endpoint_detach(e.ep, NP), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x100000, 0x100fff, 0x3000, RW),
		 -EADDRINUSE);
	CHECK_EQ(viommu_endpoint_detach(e.ep, 1), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x200000, 0x200fff, 0x3000, RW),
		 -EADDRINUSE);
	fx_fini(&e.f);
}

TEST(pasid_unattached_faults_no_pasid)
{
	struct viommu_domain *d = (void *)1;
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x3000, RW), 0);
	CHECK_EQ(viommu_translate(e.ep, 9, 0x1000, 4, VIOMMU_WRITE, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_NO_PASID);
	CHECK_EQ(flt.pasid, 9);
	CHECK_EQ(flt.endpoint, 1);
	CHECK_U64(flt.address, 0x1000);
	CHECK_EQ(flt.access, VIOMMU_WRITE);
	CHECK_EQ(fx_faults(&e.f), 1);
	CHECK_EQ(e.f.last_fault.pasid, 9);
	CHECK_EQ(viommu_endpoint_domain(e.ep, 9, &d), 0);
	CHECK(d == NULL);
	fx_fini(&e.f);
}

TEST(pasid_limit_enospc_changes_nothing)
{
	/* DESIGN.md §3: limits answer NOMEM, nothing changes. */
	struct fx_opts o = { .limits = { .max_pasids_per_endpoint = 2 } };
	struct viommu_domain *b;
	struct env e;

	REQUIRE(env_init(&e, &o) == 0);
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 1, b), 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 2, b), 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 3, b), -ENOSPC);
	CHECK(fx_ep_domain(e.ep, 3) == NULL);
	CHECK_EQ(fx_info(b).endpoints, 2);
	/* Moving an attached PASID needs no new slot; nor does the RID. */
	CHECK_EQ(viommu_endpoint_attach(e.ep, 1, e.dom), 0);
	CHECK(fx_ep_domain(e.ep, 1) == e.dom);
	CHECK_EQ(viommu_endpoint_attach(e.ep, NP, b), 0);
	CHECK_EQ(viommu_endpoint_detach(e.ep, 2), 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 3, b), 0);
	fx_fini(&e.f);
}

TEST(pasid_detach)
{
	struct viommu_domain *b;
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_domain_map(b, 0x1000, 0x1fff, 0x7000, RW), 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, VIOMMU_PASID_MAX, b), 0);
	CHECK_U64(fx_gpa_of(e.ep, VIOMMU_PASID_MAX, 0x1000, VIOMMU_READ),
		  0x7000);
	CHECK_EQ(viommu_endpoint_detach(e.ep, VIOMMU_PASID_MAX), 0);
	CHECK_EQ(fx_info(b).endpoints, 0);
	CHECK(fx_ep_domain(e.ep, VIOMMU_PASID_MAX) == NULL);
	CHECK(fx_ep_domain(e.ep, NP) == e.dom);
	CHECK_EQ(viommu_translate(e.ep, VIOMMU_PASID_MAX, 0x1000, 4,
				  VIOMMU_READ, &x, &flt), -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_NO_PASID);
	CHECK_EQ(viommu_endpoint_detach(e.ep, VIOMMU_PASID_MAX), -ENOENT);
	CHECK_EQ(viommu_domain_destroy(b), 0);
	fx_fini(&e.f);
}

TEST_MAIN()
