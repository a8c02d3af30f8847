/*
 * test_core_ext.c - unit tests of the translation core, second half (the
 * first is test_core.c): the IOTLB, PASIDs, notifiers, limits, dirty
 * tracking, DMA copies, nested domains and NULL-argument checks.  Every
 * expected errno is the one include/viommu/core.h documents.
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

TEST(pasid_limit_enomem_changes_nothing)
{
	/* DESIGN.md §3: limits answer NOMEM, nothing changes. */
	struct fx_opts o = { .limits = { .max_pasids_per_endpoint = 2 } };
	struct viommu_domain *b;
	struct env e;

	REQUIRE(env_init(&e, &o) == 0);
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 1, b), 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 2, b), 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 3, b), -ENOMEM);
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

/* ------------------------------------------------------------------ */
/* Notifiers                                                          */

TEST(notifier_map_event_fields)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL;
	const struct viommu_event *ev;
	struct evlog l = { 0 };
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l, &n),
		 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x4000, 0x5fff, 0x9000,
				   VIOMMU_READ | VIOMMU_EXEC), 0);
	CHECK_EQ(l.n, 1);
	REQUIRE((ev = ev_nth(&l, VIOMMU_EVENT_MAP, 0)) != NULL);
	CHECK(ev->domain == e.dom);
	CHECK_U64(ev->tag, 10);
	CHECK_U64(ev->iova, 0x4000);
	CHECK_U64(ev->last, 0x5fff);
	CHECK_U64(ev->gpa, 0x9000);
	CHECK_EQ(ev->prot, VIOMMU_READ | VIOMMU_EXEC);
	CHECK_EQ(ev->endpoint, 0);
	CHECK_EQ(ev->pasid, 0);
	/* A refused map tells nobody. */
	CHECK_EQ(viommu_domain_map(e.dom, 0x4000, 0x4fff, 0x9000, RW),
		 -EEXIST);
	CHECK_EQ(l.n, 1);
	viommu_notifier_remove(n);
	fx_fini(&e.f);
}

TEST(notifier_unmap_one_event_per_mapping_in_order)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL;
	const struct viommu_event *ev;
	struct evlog l = { 0 };
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x7000, 0x7fff, 0x70000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x2fff, 0x10000,
				   VIOMMU_READ), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x4000, 0x4fff, 0x40000, RW), 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_UNMAP, ev_cb, &l, &n),
		 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x0, 0x1800, NULL), -ERANGE);
	CHECK_EQ(l.n, 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x0, 0xffff, NULL), 0);
	REQUIRE(l.n == 3);
	CHECK_EQ(l.ev[0].type, VIOMMU_EVENT_UNMAP);
	CHECK_U64(l.ev[0].iova, 0x1000);
	CHECK_U64(l.ev[0].last, 0x2fff);
	CHECK_U64(l.ev[0].gpa, 0x10000);
	CHECK_EQ(l.ev[0].prot, VIOMMU_READ);
	CHECK_U64(l.ev[1].iova, 0x4000);
	CHECK_U64(l.ev[1].gpa, 0x40000);
	CHECK_U64(l.ev[2].iova, 0x7000);
	CHECK_U64(l.ev[2].last, 0x7fff);
	CHECK_EQ(l.ev[2].prot, RW);
	REQUIRE((ev = ev_nth(&l, VIOMMU_EVENT_UNMAP, 2)) != NULL);
	CHECK(ev->domain == e.dom);
	CHECK_U64(ev->tag, 10);
	viommu_notifier_remove(n);
	fx_fini(&e.f);
}

TEST(notifier_invalidate_events)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL, *n2 = NULL;
	const struct viommu_event *ev;
	struct evlog l = { 0 }, l2 = { 0 };
	struct viommu_domain *b;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_INVALIDATE, ev_cb, &l,
				     &n), 0);
	CHECK_EQ(viommu_notifier_add(b, VIOMMU_EVENT_INVALIDATE, ev_cb, &l2,
				     &n2), 0);
	CHECK_EQ(viommu_domain_invalidate(e.dom, 0x3000, 0x5fff), 0);
	REQUIRE(l.n == 1);
	CHECK_EQ(l.ev[0].type, VIOMMU_EVENT_INVALIDATE);
	CHECK_U64(l.ev[0].iova, 0x3000);
	CHECK_U64(l.ev[0].last, 0x5fff);
	CHECK(l.ev[0].domain == e.dom);
	CHECK_U64(l.ev[0].tag, 10);
	CHECK_EQ(l2.n, 0);
	CHECK_EQ(viommu_domain_invalidate_all(e.dom), 0);
	CHECK_EQ(ev_count(&l, VIOMMU_EVENT_INVALIDATE), 2);
	REQUIRE((ev = ev_nth(&l, VIOMMU_EVENT_INVALIDATE, 1)) != NULL);
	CHECK(ev->iova <= ev->last);
	CHECK_EQ(viommu_ctx_invalidate_all(e.f.ctx), 0);
	CHECK_EQ(ev_count(&l, VIOMMU_EVENT_INVALIDATE), 3);
	CHECK_EQ(ev_count(&l2, VIOMMU_EVENT_INVALIDATE), 1);
	viommu_notifier_remove(n);
	viommu_notifier_remove(n2);
	fx_fini(&e.f);
}

TEST(notifier_attach_detach_events)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *na = NULL, *nb = NULL;
	const struct viommu_event *ev;
	struct evlog la = { 0 }, lb = { 0 };
	const uint32_t m = VIOMMU_EVENT_ATTACH | VIOMMU_EVENT_DETACH;
	struct viommu_domain *b;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_notifier_add(e.dom, m, ev_cb, &la, &na), 0);
	CHECK_EQ(viommu_notifier_add(b, m, ev_cb, &lb, &nb), 0);
	/* Move the RID from dom to b. */
	CHECK_EQ(viommu_endpoint_attach(e.ep, NP, b), 0);
	REQUIRE((ev = ev_nth(&la, VIOMMU_EVENT_DETACH, 0)) != NULL);
	CHECK_EQ(ev->endpoint, 1);
	CHECK_U64(ev->pasid, NP);
	CHECK(ev->domain == e.dom);
	CHECK_U64(ev->tag, 10);
	REQUIRE((ev = ev_nth(&lb, VIOMMU_EVENT_ATTACH, 0)) != NULL);
	CHECK_EQ(ev->endpoint, 1);
	CHECK_U64(ev->pasid, NP);
	CHECK(ev->domain == b);
	CHECK_EQ(la.n, 1);
	CHECK_EQ(lb.n, 1);
	/* A PASID. */
	CHECK_EQ(viommu_endpoint_attach(e.ep, 5, e.dom), 0);
	REQUIRE((ev = ev_nth(&la, VIOMMU_EVENT_ATTACH, 0)) != NULL);
	CHECK_EQ(ev->pasid, 5);
	CHECK_EQ(viommu_endpoint_detach(e.ep, 5), 0);
	REQUIRE((ev = ev_nth(&la, VIOMMU_EVENT_DETACH, 1)) != NULL);
	CHECK_EQ(ev->pasid, 5);
	CHECK_EQ(ev->endpoint, 1);
	/* A failed attach tells nobody. */
	CHECK_EQ(viommu_endpoint_attach(e.ep, VIOMMU_PASID_MAX + 1, e.dom),
		 -EINVAL);
	CHECK_EQ(la.n, 3);
	CHECK_EQ(lb.n, 1);
	viommu_notifier_remove(na);
	viommu_notifier_remove(nb);
	fx_fini(&e.f);
}

TEST(notifier_endpoint_destroy_tells_detach)
{
	struct viommu_notifier *n = NULL;
	const struct viommu_event *ev;
	struct evlog l = { 0 };
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 6, e.dom), 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_DETACH, ev_cb, &l,
				     &n), 0);
	viommu_endpoint_destroy(e.ep);
	CHECK_EQ(ev_count(&l, VIOMMU_EVENT_DETACH), 2);
	REQUIRE((ev = ev_nth(&l, VIOMMU_EVENT_DETACH, 0)) != NULL);
	CHECK_EQ(ev->endpoint, 1);
	CHECK_EQ(fx_info(e.dom).endpoints, 0);
	viommu_notifier_remove(n);
	fx_fini(&e.f);
}

TEST(notifier_destroy_event)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL;
	const struct viommu_event *ev;
	struct evlog l = { 0 };
	struct viommu_domain *b;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE((b = fx_paging(&f, 77)) != NULL);
	CHECK_EQ(viommu_domain_map(b, 0x1000, 0x1fff, 0x1000, RW), 0);
	CHECK_EQ(viommu_notifier_add(b, VIOMMU_EVENT_DESTROY, ev_cb, &l, &n),
		 0);
	CHECK_EQ(viommu_domain_destroy(b), 0);
	CHECK_EQ(l.n, 1);
	REQUIRE((ev = ev_nth(&l, VIOMMU_EVENT_DESTROY, 0)) != NULL);
	CHECK(ev->domain == b);
	CHECK_U64(ev->tag, 77);
	fx_fini(&f);
}

TEST(notifier_mask_filters)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL;
	struct evlog l = { 0 };
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l, &n),
		 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x1000, RW), 0);
	CHECK_EQ(viommu_domain_invalidate_all(e.dom), 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x1000, 0x1fff, NULL), 0);
	CHECK_EQ(viommu_endpoint_detach(e.ep, NP), 0);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(l.ev[0].type, VIOMMU_EVENT_MAP);
	viommu_notifier_remove(n);
	fx_fini(&e.f);
}

TEST(notifier_remove_stops_delivery)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL, *keep = NULL;
	struct evlog l = { 0 }, lk = { 0 };
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l, &n),
		 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &lk,
				     &keep), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x1000, RW), 0);
	viommu_notifier_remove(n);
	CHECK_EQ(viommu_domain_map(e.dom, 0x2000, 0x2fff, 0x1000, RW), 0);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(lk.n, 2);
	viommu_notifier_remove(NULL);
	viommu_notifier_remove(keep);
	fx_fini(&e.f);
}

TEST(notifier_bad_args_einval)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL;
	struct evlog l = { 0 };
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_notifier_add(e.dom, 0, ev_cb, &l, &n), -EINVAL);
	CHECK_EQ(viommu_notifier_add(e.dom, 1u << 6, ev_cb, &l, &n), -EINVAL);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP | (1u << 20),
				     ev_cb, &l, &n), -EINVAL);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, NULL, &l, &n),
		 -EINVAL);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l, NULL),
		 -EINVAL);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x1000, RW), 0);
	CHECK_EQ(l.n, 0);
	fx_fini(&e.f);
}

TEST(notifier_limit_enomem)
{
	/* DESIGN.md §3: limits answer NOMEM, nothing changes. */
	struct fx_opts o = { .limits = { .max_notifiers_per_domain = 2 } };
	struct viommu_notifier *n[3] = { 0 };
	struct evlog l[3] = { 0 };
	struct env e;

	REQUIRE(env_init(&e, &o) == 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l[0],
				     &n[0]), 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l[1],
				     &n[1]), 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l[2],
				     &n[2]), -ENOMEM);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x1000, RW), 0);
	CHECK_EQ(l[2].n, 0);
	viommu_notifier_remove(n[0]);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l[2],
				     &n[2]), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x2000, 0x2fff, 0x1000, RW), 0);
	CHECK_EQ(l[0].n, 1);
	CHECK_EQ(l[1].n, 2);
	CHECK_EQ(l[2].n, 1);
	viommu_notifier_remove(n[1]);
	viommu_notifier_remove(n[2]);
	fx_fini(&e.f);
}

/* ------------------------------------------------------------------ */
/* Limits                                                             */

TEST(limit_max_domains_enomem)
{
	/* DESIGN.md §3: limits answer NOMEM, nothing changes. */
	struct fx_opts o = { .limits = { .max_domains = 2 } };
	struct viommu_domain_config c = { .kind = VIOMMU_DOMAIN_PAGING };
	struct viommu_domain *a, *b, *d = NULL;
	struct fx f;

	REQUIRE(fx_init(&f, &o) == 0);
	REQUIRE((a = fx_paging(&f, 1)) && (b = fx_paging(&f, 2)));
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -ENOMEM);
	CHECK_U64(fx_stats(&f).domains, 2);
	CHECK_EQ(viommu_domain_destroy(b), 0);
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), 0);
	CHECK_U64(fx_stats(&f).domains, 2);
	fx_fini(&f);
}

TEST(limit_max_mappings_per_domain_enomem)
{
	/* DESIGN.md §3: limits answer NOMEM, nothing changes. */
	struct fx_opts o = { .limits = { .max_mappings_per_domain = 3 } };
	struct viommu_domain *b;
	struct env e;

	REQUIRE(env_init(&e, &o) == 0);
	for (uint64_t i = 0; i < 3; i++)
		CHECK_EQ(viommu_domain_map(e.dom, i * PAGE, i * PAGE + 0xfff,
					   0, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x10000, 0x10fff, 0x5000, RW),
		 -ENOMEM);
	CHECK_U64(fx_info(e.dom).mappings, 3);
	CHECK_U64(fx_info(e.dom).mapped_bytes, 3 * PAGE);
	CHECK_EQ(fx_gpa_of(e.ep, NP, 0x10000, VIOMMU_READ), ~0ull);
	/* Per domain: another domain has its own budget. */
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_domain_map(b, 0x10000, 0x10fff, 0x5000, RW), 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0, 0xfff, NULL), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x10000, 0x10fff, 0x5000, RW), 0);
	fx_fini(&e.f);
}

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

/* ------------------------------------------------------------------ */
/* Nested domains                                                     */

#define S1_BASE 0x1000000ull
#define S1_IPA 0x40000000ull

/*
 * struct s1_toy - a stage 1 over [S1_BASE, +32 pages): ipa = iova - S1_BASE
 * + S1_IPA + shift, one page at a time (or to the end with long_len), perm
 * from a table.
 */
struct s1_toy {
	uint64_t shift;
	bool long_len; /* contiguous to the end of the 32 pages */
	uint32_t perm[32];
	uint32_t last_pasid;
	unsigned int calls;
};

/* s1_translate() - struct viommu_stage1_ops.translate of the toy. */
static int s1_translate(void *opaque, uint32_t pasid, uint64_t iova,
			unsigned int access, uint64_t *ipa, uint64_t *len,
			uint32_t *perm)
{
	struct s1_toy *t = opaque;

	(void)access;
	t->calls++;
	t->last_pasid = pasid;
	if (iova < S1_BASE || iova - S1_BASE >= 32 * PAGE)
		return -EFAULT;
	*ipa = iova - S1_BASE + S1_IPA + t->shift;
	*len = t->long_len ? S1_BASE + 32 * PAGE - iova
			   : PAGE - (iova & (PAGE - 1));
	*perm = t->perm[(iova - S1_BASE) / PAGE];
	return 0;
}

static const struct viommu_stage1_ops s1_ops = { .translate = s1_translate };

/* struct nenv - env whose endpoint is attached to a NESTED domain. */
struct nenv {
	struct env e;
	struct viommu_domain *nested;
	struct s1_toy t;
};

/*
 * nested_env() - parent maps [S1_IPA, +16 pages) -> 0x300000 RW and
 * [S1_IPA + 16 pages, +1 page) -> 0x310000 read-only; stage 1 page 0 is
 * read-only, the rest RW.
 */
static int nested_env(struct nenv *n)
{
	struct viommu_domain_config c = { .kind = VIOMMU_DOMAIN_NESTED,
					  .tag = 20, .s1 = &s1_ops };
	int rc;

	memset(&n->t, 0, sizeof(n->t));
	for (int i = 0; i < 32; i++)
		n->t.perm[i] = i == 0 ? VIOMMU_READ : RW;
	rc = env_init(&n->e, NULL);
	if (rc)
		return rc;
	rc = viommu_endpoint_detach(n->e.ep, NP);
	if (!rc)
		rc = viommu_domain_map(n->e.dom, S1_IPA, S1_IPA + 16 * PAGE - 1,
				       0x300000, RW);
	if (!rc)
		rc = viommu_domain_map(n->e.dom, S1_IPA + 16 * PAGE,
				       S1_IPA + 17 * PAGE - 1, 0x310000,
				       VIOMMU_READ);
	c.parent = n->e.dom;
	c.s1_opaque = &n->t;
	if (!rc)
		rc = viommu_domain_create(n->e.f.ctx, &c, &n->nested);
	if (!rc)
		rc = viommu_endpoint_attach(n->e.ep, NP, n->nested);
	return rc;
}

TEST(nested_translate_composes_stages)
{
	struct viommu_xlate x;
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	CHECK_EQ(viommu_domain_kind(n.nested), VIOMMU_DOMAIN_NESTED);
	CHECK_U64(viommu_domain_tag(n.nested), 20);
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 0x10, 0x20,
				  VIOMMU_READ, &x, NULL), 0);
	CHECK_U64(x.gpa, 0x300010);
	CHECK(x.hva == n.e.f.ram0 + 0x300010);
	CHECK_EQ(x.len, 0x20);
	CHECK_EQ(n.t.last_pasid, NP);
	/* Stage 1 contiguity bounds the length. */
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 3 * PAGE - 8, 64,
				  VIOMMU_WRITE, &x, NULL), 0);
	CHECK_U64(x.gpa, 0x303000 - 8);
	CHECK_EQ(x.len, 8);
	/* Stage 2 mapping end bounds it as well. */
	n.t.long_len = true;
	CHECK_EQ(viommu_domain_lookup(n.nested, S1_BASE + 15 * PAGE, 2 * PAGE,
				      VIOMMU_READ, &x), 0);
	CHECK_U64(x.gpa, 0x30f000);
	CHECK_EQ(x.len, PAGE);
	CHECK_EQ(fx_faults(&n.e.f), 0);
	fx_fini(&n.e.f);
}

TEST(nested_permission_faults)
{
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	/* Stage 1 says read-only. */
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE, 4, VIOMMU_WRITE, &x,
				  &flt), -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_PERMISSION);
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE, 4, VIOMMU_READ, &x,
				  &flt), 0);
	/* Stage 2 says read-only. */
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 16 * PAGE, 4,
				  VIOMMU_WRITE, &x, &flt), -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_PERMISSION);
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 16 * PAGE, 4,
				  VIOMMU_READ, &x, &flt), 0);
	CHECK_U64(x.gpa, 0x310000);
	fx_fini(&n.e.f);
}

TEST(nested_stage1_refusal_faults_stage1)
{
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 32 * PAGE, 4,
				  VIOMMU_READ, &x, &flt), -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_STAGE1);
	CHECK_U64(flt.address, S1_BASE + 32 * PAGE);
	CHECK_U64(flt.domain_tag, 20);
	CHECK_EQ(viommu_translate(n.e.ep, NP, 0, 4, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_STAGE1);
	CHECK_EQ(n.e.f.last_fault.reason, VIOMMU_FAULT_STAGE1);
	/* Stage 1 fine, stage 2 has nothing there. */
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 20 * PAGE, 4,
				  VIOMMU_READ, &x, &flt), -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_NO_MAPPING);
	fx_fini(&n.e.f);
}

TEST(nested_parent_destroy_busy)
{
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	CHECK_EQ(viommu_domain_destroy(n.e.dom), -EBUSY);
	CHECK_EQ(viommu_domain_destroy(n.nested), -EBUSY);
	CHECK_EQ(viommu_endpoint_detach(n.e.ep, NP), 0);
	CHECK_EQ(viommu_domain_destroy(n.e.dom), -EBUSY);
	CHECK_U64(fx_info(n.e.dom).mappings, 2);
	CHECK_EQ(viommu_domain_destroy(n.nested), 0);
	CHECK_EQ(viommu_domain_destroy(n.e.dom), 0);
	fx_fini(&n.e.f);
}

/*
 * A NESTED domain without a parent: the stage-1 ops' output is a GPA
 * (a front end that walks both guest stages itself, like SMMUv3).
 */
TEST(nested_without_parent_stage1_gives_gpa)
{
	struct viommu_domain_config c = { .kind = VIOMMU_DOMAIN_NESTED,
					  .tag = 21, .s1 = &s1_ops };
	struct viommu_domain *d;
	struct viommu_xlate x;
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	c.s1_opaque = &n.t;
	REQUIRE(viommu_domain_create(n.e.f.ctx, &c, &d) == 0);
	REQUIRE(viommu_endpoint_attach(n.e.ep, NP, d) == 0);
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 0x10, 0x20,
				  VIOMMU_READ, &x, NULL), 0);
	/* The toy stage 1 outputs S1_IPA + offset; no stage 2 applies. */
	CHECK_U64(x.gpa, S1_IPA + 0x10);
	CHECK_EQ(x.len, 0x20);
	/* Stage-1 permissions still apply: page 0 is read-only. */
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE, 4, VIOMMU_WRITE, &x,
				  NULL), -EFAULT);
	fx_fini(&n.e.f);
}

TEST(nested_create_bad_args)
{
	struct viommu_stage1_ops empty = { 0 };
	struct viommu_domain_config c = { .kind = VIOMMU_DOMAIN_NESTED,
					  .s1 = &s1_ops };
	struct viommu_domain *d = NULL, *p;
	struct viommu_ctx *ctx2 = NULL;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE((p = fx_paging(&f, 1)) != NULL);
	/* No parent is allowed: stage 1 then yields GPAs. */
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), 0);
	CHECK_EQ(viommu_domain_destroy(d), 0);
	c.parent = viommu_ctx_identity_domain(f.ctx);
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	c.parent = p;
	c.s1 = NULL;
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	c.s1 = &empty;
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	c.s1 = &s1_ops;
	c.kind = VIOMMU_DOMAIN_IDENTITY;
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	c.kind = VIOMMU_DOMAIN_BLOCKED;
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	c.kind = (enum viommu_domain_kind)99;
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	/* A parent from another context. */
	struct viommu_ctx_config cc = fx_ctx_config(&f, NULL);
	REQUIRE(viommu_ctx_create(&cc, &ctx2) == 0);
	c.kind = VIOMMU_DOMAIN_NESTED;
	CHECK_EQ(viommu_domain_create(ctx2, &c, &d), -EINVAL);
	/* A nested parent is not PAGING. */
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), 0);
	c.parent = d;
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	CHECK_U64(fx_stats(&f).domains, 2);
	viommu_ctx_destroy(ctx2);
	fx_fini(&f);
}

TEST(nested_refuses_paging_ops)
{
	uint64_t bm = 0;
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	CHECK_EQ(viommu_domain_map(n.nested, 0, 0xfff, 0, RW), -EOPNOTSUPP);
	CHECK_EQ(viommu_domain_unmap(n.nested, 0, 0xfff, NULL), -EOPNOTSUPP);
	CHECK_EQ(viommu_domain_dirty_enable(n.nested, true), -EOPNOTSUPP);
	CHECK_EQ(viommu_domain_dirty_read(n.nested, 0, 0xfff, &bm, 1, 0),
		 -EOPNOTSUPP);
	CHECK_EQ(fx_info(n.nested).kind, VIOMMU_DOMAIN_NESTED);
	CHECK_EQ(fx_info(n.nested).endpoints, 1);
	fx_fini(&n.e.f);
}

TEST(nested_parent_unmap_invalidates)
{
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	for (int i = 0; i < 2; i++)
		CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + PAGE, VIOMMU_READ),
			  0x301000);
	CHECK_EQ(viommu_domain_unmap(n.e.dom, S1_IPA, S1_IPA + 16 * PAGE - 1,
				     NULL), 0);
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + PAGE, 4, VIOMMU_READ,
				  &x, &flt), -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_NO_MAPPING);
	CHECK_EQ(viommu_domain_map(n.e.dom, S1_IPA, S1_IPA + 16 * PAGE - 1,
				   0x500000, RW), 0);
	CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + PAGE, VIOMMU_READ),
		  0x501000);
	fx_fini(&n.e.f);
}

TEST(nested_invalidate_sees_new_stage1)
{
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + PAGE, VIOMMU_READ),
		  0x301000);
	n.t.shift = 2 * PAGE;
	CHECK_EQ(viommu_domain_invalidate(n.nested, S1_BASE + PAGE,
					  S1_BASE + 2 * PAGE - 1), 0);
	CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + PAGE, VIOMMU_READ),
		  0x303000);
	CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + 2 * PAGE, VIOMMU_READ),
		  0x304000);
	n.t.shift = 4 * PAGE;
	CHECK_EQ(viommu_domain_invalidate_all(n.nested), 0);
	CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + PAGE, VIOMMU_READ),
		  0x305000);
	n.t.shift = 0;
	CHECK_EQ(viommu_ctx_invalidate_all(n.e.f.ctx), 0);
	CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + PAGE, VIOMMU_READ),
		  0x301000);
	fx_fini(&n.e.f);
}

TEST(nested_pasid_passed_to_stage1)
{
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	CHECK_EQ(viommu_endpoint_attach(n.e.ep, 5, n.nested), 0);
	CHECK_U64(fx_gpa_of(n.e.ep, 5, S1_BASE + 0x20, VIOMMU_READ),
		  0x300020);
	CHECK_EQ(n.t.last_pasid, 5);
	CHECK(n.t.calls >= 1);
	fx_fini(&n.e.f);
}

/* ------------------------------------------------------------------ */
/* NULL arguments                                                     */

/* Objects the NULL cases below use. */
static struct env nul;

#define NCASE(name, expr)                                                  \
	static int nc_##name(void)                                         \
	{                                                                  \
		return (expr);                                             \
	}
#define NROW(name) { #name, nc_##name }

static struct viommu_ctx *nul_ctx_out;
static struct viommu_endpoint *nul_ep_out;
static struct viommu_domain *nul_dom_out;
static struct viommu_notifier *nul_n_out;
static struct viommu_ctx_stats nul_stats;
static struct viommu_domain_info nul_info;
static struct viommu_xlate nul_x;
static struct viommu_resv nul_resv[2];
static unsigned int nul_n;
static void *nul_hva;
static size_t nul_len;
static uint64_t nul_bm[4];
static uint8_t nul_buf[8];
static const struct viommu_domain_config nul_dcfg = {
	.kind = VIOMMU_DOMAIN_PAGING };
static const struct viommu_mem_region nul_region = {
	.gpa = 0, .size = 4096, .fd = -1, .hva = nul_buf };

NCASE(ctx_create_cfg, viommu_ctx_create(NULL, &nul_ctx_out))
NCASE(ctx_create_out, viommu_ctx_create(&(struct viommu_ctx_config){
	.mem = nul.f.mem }, NULL))
NCASE(ctx_create_mem, viommu_ctx_create(&(struct viommu_ctx_config){
	.mem = NULL }, &nul_ctx_out))
NCASE(ctx_set_bypass, viommu_ctx_set_bypass(NULL, true))
NCASE(ctx_invalidate_all, viommu_ctx_invalidate_all(NULL))
NCASE(ctx_stats_ctx, viommu_ctx_stats(NULL, &nul_stats))
NCASE(ctx_stats_out, viommu_ctx_stats(nul.f.ctx, NULL))
NCASE(ep_create_ctx, viommu_endpoint_create(NULL, 5, &nul_ep_out))
NCASE(ep_create_out, viommu_endpoint_create(nul.f.ctx, 5, NULL))
NCASE(ep_lookup_ctx, viommu_endpoint_lookup(NULL, 1, &nul_ep_out))
NCASE(ep_lookup_out, viommu_endpoint_lookup(nul.f.ctx, 1, NULL))
NCASE(ep_add_resv, viommu_endpoint_add_resv(NULL, 0, 0xfff,
					     VIOMMU_RESV_RESERVED))
NCASE(ep_get_resv_ep, viommu_endpoint_get_resv(NULL, nul_resv, 2, &nul_n))
NCASE(ep_get_resv_out, viommu_endpoint_get_resv(nul.ep, NULL, 2, &nul_n))
NCASE(ep_get_resv_n, viommu_endpoint_get_resv(nul.ep, nul_resv, 2, NULL))
NCASE(ep_attach_ep, viommu_endpoint_attach(NULL, NP, nul.dom))
NCASE(ep_attach_dom, viommu_endpoint_attach(nul.ep, NP, NULL))
NCASE(ep_attach_pasid_dom, viommu_endpoint_attach(nul.ep, 1, NULL))
NCASE(ep_detach, viommu_endpoint_detach(NULL, NP))
NCASE(ep_domain_ep, viommu_endpoint_domain(NULL, NP, &nul_dom_out))
NCASE(ep_domain_out, viommu_endpoint_domain(nul.ep, NP, NULL))
NCASE(dom_create_ctx, viommu_domain_create(NULL, &nul_dcfg, &nul_dom_out))
NCASE(dom_create_cfg, viommu_domain_create(nul.f.ctx, NULL, &nul_dom_out))
NCASE(dom_create_out, viommu_domain_create(nul.f.ctx, &nul_dcfg, NULL))
NCASE(dom_destroy, viommu_domain_destroy(NULL))
NCASE(dom_map, viommu_domain_map(NULL, 0, 0xfff, 0, RW))
NCASE(dom_unmap, viommu_domain_unmap(NULL, 0, 0xfff, NULL))
NCASE(dom_invalidate, viommu_domain_invalidate(NULL, 0, 0xfff))
NCASE(dom_invalidate_all, viommu_domain_invalidate_all(NULL))
NCASE(dom_lookup_dom, viommu_domain_lookup(NULL, 0, 1, VIOMMU_READ, &nul_x))
NCASE(dom_lookup_out, viommu_domain_lookup(nul.dom, 0, 1, VIOMMU_READ, NULL))
NCASE(dom_for_each_dom, viommu_domain_for_each_mapping(NULL, 0, 1,
						       fx_collect_cb, NULL))
NCASE(dom_for_each_fn, viommu_domain_for_each_mapping(nul.dom, 0, 1, NULL,
						      NULL))
NCASE(dom_info_dom, viommu_domain_info(NULL, &nul_info))
NCASE(dom_info_out, viommu_domain_info(nul.dom, NULL))
NCASE(translate_ep, viommu_translate(NULL, NP, 0, 1, VIOMMU_READ, &nul_x,
				     NULL))
NCASE(translate_out, viommu_translate(nul.ep, NP, 0, 1, VIOMMU_READ, NULL,
				      NULL))
NCASE(dma_read_ep, viommu_dma_read(NULL, NP, 0, nul_buf, 4))
NCASE(dma_read_buf, viommu_dma_read(nul.ep, NP, 0, NULL, 4))
NCASE(dma_write_ep, viommu_dma_write(NULL, NP, 0, nul_buf, 4))
NCASE(dma_write_buf, viommu_dma_write(nul.ep, NP, 0, NULL, 4))
NCASE(dirty_enable, viommu_domain_dirty_enable(NULL, true))
NCASE(dirty_read_dom, viommu_domain_dirty_read(NULL, 0, 0xfff, nul_bm, 4, 0))
NCASE(dirty_read_bm, viommu_domain_dirty_read(nul.dom, 0, 0xfff, NULL, 4, 0))
NCASE(notifier_add_dom, viommu_notifier_add(NULL, VIOMMU_EVENT_MAP, ev_cb,
					    NULL, &nul_n_out))
NCASE(notifier_add_fn, viommu_notifier_add(nul.dom, VIOMMU_EVENT_MAP, NULL,
					   NULL, &nul_n_out))
NCASE(notifier_add_out, viommu_notifier_add(nul.dom, VIOMMU_EVENT_MAP, ev_cb,
					    NULL, NULL))
NCASE(mem_create_out, viommu_mem_create(NULL, NULL))
NCASE(mem_set_regions_mem, viommu_mem_set_regions(NULL, &nul_region, 1))
NCASE(mem_set_regions_regions, viommu_mem_set_regions(nul.f.mem, NULL, 1))
NCASE(mem_read_mem, viommu_mem_read(NULL, 0, nul_buf, 4))
NCASE(mem_read_buf, viommu_mem_read(nul.f.mem, 0, NULL, 4))
NCASE(mem_write_mem, viommu_mem_write(NULL, 0, nul_buf, 4))
NCASE(mem_write_buf, viommu_mem_write(nul.f.mem, 0, NULL, 4))
NCASE(mem_ptr_mem, viommu_mem_ptr(NULL, 0, 4, VIOMMU_READ, &nul_hva,
				  &nul_len))
NCASE(mem_ptr_hva, viommu_mem_ptr(nul.f.mem, 0, 4, VIOMMU_READ, NULL,
				  &nul_len))
NCASE(mem_ptr_contig, viommu_mem_ptr(nul.f.mem, 0, 4, VIOMMU_READ, &nul_hva,
				     NULL))

static const struct {
	const char *name;
	int (*fn)(void);
} null_cases[] = {
	NROW(ctx_create_cfg), NROW(ctx_create_out), NROW(ctx_create_mem),
	NROW(ctx_set_bypass), NROW(ctx_invalidate_all), NROW(ctx_stats_ctx),
	NROW(ctx_stats_out), NROW(ep_create_ctx), NROW(ep_create_out),
	NROW(ep_lookup_ctx), NROW(ep_lookup_out), NROW(ep_add_resv),
	NROW(ep_get_resv_ep), NROW(ep_get_resv_out), NROW(ep_get_resv_n),
	NROW(ep_attach_ep), NROW(ep_attach_dom), NROW(ep_attach_pasid_dom),
	NROW(ep_detach), NROW(ep_domain_ep), NROW(ep_domain_out),
	NROW(dom_create_ctx), NROW(dom_create_cfg), NROW(dom_create_out),
	NROW(dom_destroy), NROW(dom_map), NROW(dom_unmap),
	NROW(dom_invalidate), NROW(dom_invalidate_all), NROW(dom_lookup_dom),
	NROW(dom_lookup_out), NROW(dom_for_each_dom), NROW(dom_for_each_fn),
	NROW(dom_info_dom), NROW(dom_info_out), NROW(translate_ep),
	NROW(translate_out), NROW(dma_read_ep), NROW(dma_read_buf),
	NROW(dma_write_ep), NROW(dma_write_buf), NROW(dirty_enable),
	NROW(dirty_read_dom), NROW(dirty_read_bm), NROW(notifier_add_dom),
	NROW(notifier_add_fn), NROW(notifier_add_out), NROW(mem_create_out),
	NROW(mem_set_regions_mem), NROW(mem_set_regions_regions),
	NROW(mem_read_mem), NROW(mem_read_buf), NROW(mem_write_mem),
	NROW(mem_write_buf), NROW(mem_ptr_mem), NROW(mem_ptr_hva),
	NROW(mem_ptr_contig),
};

TEST(null_args_rejected)
{
	struct viommu_ctx_stats s0;

	REQUIRE(env_init(&nul, NULL) == 0);
	REQUIRE(viommu_domain_map(nul.dom, 0, 0xfff, 0, RW) == 0);
	REQUIRE(viommu_domain_dirty_enable(nul.dom, true) == 0);
	s0 = fx_stats(&nul.f);
	for (unsigned int i = 0; i < sizeof(null_cases) / sizeof(null_cases[0]);
	     i++) {
		int rc = null_cases[i].fn();

		if (rc != -EINVAL)
			printf("#   NULL case %s: got %d, want %d\n",
			       null_cases[i].name, rc, -EINVAL);
		CHECK_EQ(rc, -EINVAL);
	}
	/* Nothing changed. */
	CHECK_U64(fx_stats(&nul.f).endpoints, s0.endpoints);
	CHECK_U64(fx_stats(&nul.f).domains, s0.domains);
	CHECK_U64(fx_info(nul.dom).mappings, 1);
	CHECK_U64(fx_gpa_of(nul.ep, NP, 0x10, VIOMMU_READ), 0x10);
	/* Destructors take NULL. */
	viommu_ctx_destroy(NULL);
	viommu_endpoint_destroy(NULL);
	viommu_notifier_remove(NULL);
	viommu_mem_destroy(NULL);
	fx_fini(&nul.f);
}

TEST_MAIN()
