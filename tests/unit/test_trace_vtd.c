/*
 * test_trace_vtd.c - the VT-d model's typed trace points (part of the
 * test_trace program), driven the way the Linux intel-iommu driver does:
 * the enable sequence's register writes and global command handshakes,
 * its queued invalidation descriptors (context cache, IOTLB, wait) and
 * the invalidations they do, a descriptor the queue refuses, and a
 * translation fault recorded in a fault recording register.
 */
#include "harness.h"
#include "trace_recs.h"
#include "test_vtd_fixture.h"

#define GC_BITS(v) ((v) & (GC_TE | GC_SRTP | GC_QIE))

TEST(vtd_registers_queue_invalidations_and_faults)
{
	struct viommu_vtd_config c = { .size = sizeof(c) };
	struct recs rs;
	struct viommu_trace_sink s = {
		.size = sizeof(s), .mask = VIOMMU_TRACE_ALL, .fn = rec_fn,
		.opaque = &rs,
	};
	struct viommu_trace_record r;
	uint32_t v;
	int k;
	struct fx f;

	recs_init(&rs);
	REQUIRE(fx_init(&f, &c) == 0);
	CHECK_EQ(viommu_vtd_set_trace_sink(NULL, &s), -EINVAL);
	REQUIRE(viommu_vtd_set_trace_sink(f.vtd, &s) == 0);
	REQUIRE(fx_enable(&f, false) == 0);

	/* the first register write: IQA, as the driver sets the queue up */
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_VTD_REG_WRITE, 0, &r));
	CHECK_STR(r.event, "vtd_reg_write");
	CHECK_U64(r.values[0], VR_IQA);
	CHECK_U64(r.values[1], 8);
	CHECK_U64(r.values[2], f.iq | FX_QS);
	/* GCMD handshakes: QIE, then SRTP (one-shot), then TE */
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_VTD_GCMD, 0, &r));
	CHECK_U64(r.values[0], GC_QIE);
	CHECK_U64(GC_BITS(r.values[1]), GC_QIE);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_VTD_GCMD, 1, &r));
	CHECK_U64(r.values[0], GC_QIE | GC_SRTP);
	CHECK_U64(GC_BITS(r.values[1]), GC_QIE | GC_SRTP);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_VTD_GCMD, 2, &r));
	CHECK_U64(GC_BITS(r.values[1]), GC_QIE | GC_SRTP | GC_TE);
	/* the queued flushes: context cache, IOTLB, wait, in queue order */
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_VTD_QI_DESC, 0, &r));
	CHECK_U64(r.values[0], 0);      /* head */
	CHECK_U64(r.values[1], 1);      /* context-cache invalidate */
	CHECK_U64(r.values[2], D_CC_GLOBAL);
	CHECK_U64(r.values[4], 0);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_VTD_QI_DESC, 1, &r));
	CHECK_U64(r.values[0], 16);
	CHECK_U64(r.values[1], 2);      /* IOTLB invalidate */
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_VTD_QI_DESC, 2, &r));
	CHECK_U64(r.values[1], 5);      /* invalidation wait */
	CHECK_U64(r.values[3], f.status);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_VTD_INVAL, 0, &r));
	CHECK_U64(r.values[0], 0);      /* context cache */
	CHECK_U64(r.values[1], 1);      /* global */
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_VTD_INVAL, 1, &r));
	CHECK_U64(r.values[0], 1);      /* IOTLB */
	CHECK_U64(r.values[1], 1);
	CHECK_U64(r.values[4], 0);
	CHECK_U64(r.values[5], UINT64_MAX);

	/* a domain-selective IOTLB flush names its DID */
	fx_desc(&f, D_IOTLB_DSI(7), 0);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_VTD_INVAL, 2, &r));
	CHECK_U64(r.values[1], 2);
	CHECK_U64(r.values[2], 7);

	/* a DMA with no context entry: fault recorded in record 0 */
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0x1000, &v), -EFAULT);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_VTD_FAULT, 0, &r));
	CHECK_STR(r.event, "vtd_fault");
	CHECK_U64(r.values[0], fx_sids[0]);
	CHECK_U64(r.values[2], 0x1000);
	CHECK(r.values[3] != 0);        /* a reason */
	CHECK_U64(r.values[4], 0);      /* recorded */
	CHECK_U64(r.values[5], 0);

	/* an unknown descriptor type stops the queue: traced with its code */
	k = count_rec(&rs, VIOMMU_TRACE_VTD_QI_DESC);
	fx_desc(&f, 0xf, 0);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_VTD_QI_DESC, k, &r));
	CHECK_U64(r.values[1], 0xf);
	CHECK(r.values[4] != 0);

	/* off */
	CHECK_EQ(viommu_vtd_set_trace_sink(f.vtd, NULL), 0);
	k = recs_count(&rs);
	mw(&f, VR_FSTS, 4, 0x7f);
	CHECK_EQ(recs_count(&rs), k);
	fx_fini(&f);
}
