/*
 * test_trace.c - typed trace points (<viommu/trace.h>, src/base/trace.h):
 * the sink's rules (mask validation, versioned struct, off means no
 * call), the log routing when the sink has no function (one DEBUG line
 * with every field named), and the events the front ends emit: a
 * virtio-iommu request's type, status, domain and range, a fault report,
 * an SMMUv3 command's opcode and error, an SMMUv3 event record.  The
 * core, VT-d and link events are driven in the other test_trace_*.c
 * files of this program (one TEST_MAIN() here).
 */
#include <stdio.h>

#include "harness.h"
#include "base/trace.h"
#include "trace_recs.h"
#include "test_smmuv3_fixture.h"
#include "../conformance/test_virtio_iommu_fixture.h"

/* find() - the @k-th record of event @id, or NULL. */
static const struct viommu_trace_record *find(const struct recs *rs,
					      enum viommu_trace_id id, int k)
{
	for (int i = 0; i < rs->n && i < MAXREC; i++)
		if (rs->r[i].id == id && !k--)
			return &rs->r[i];
	return NULL;
}

struct lines {
	int n;
	enum viommu_log_level level;
	char last[256];
};

static void line_fn(void *opaque, enum viommu_log_level level,
		    const char *line)
{
	struct lines *l = opaque;

	l->n++;
	l->level = level;
	snprintf(l->last, sizeof(l->last), "%s", line);
}

/* The base: validation, off, record contents, log routing. */
TEST(sink_rules_and_log_routing)
{
	struct lines l = { 0 };
	struct viommu_log log = { .fn = line_fn, .opaque = &l,
				  .level = VIOMMU_LOG_DEBUG };
	struct recs rs = { 0 };
	struct viommu_trace_sink s = {
		.size = sizeof(s), .mask = VIOMMU_TRACE_ALL, .fn = rec_fn,
		.opaque = &rs,
	};
	struct {
		struct viommu_trace_sink s;
		uint64_t future;
	} big = { .s = s };
	struct trace t = { 0 };

	CHECK_STR(viommu_trace_name(VIOMMU_TRACE_VI_REQUEST), "vi_request");
	CHECK_STR(viommu_trace_name(VIOMMU_TRACE_SMMU_EVENT), "smmu_event");
	CHECK(viommu_trace_name(VIOMMU_TRACE_COUNT) == NULL);
	CHECK_STR(viommu_trace_name(VIOMMU_TRACE_CORE_MAP), "core_map");
	CHECK_STR(viommu_trace_name(VIOMMU_TRACE_VTD_QI_DESC), "vtd_qi_desc");
	CHECK_STR(viommu_trace_name(VIOMMU_TRACE_FRAME_ROUND), "frame_round");
	/* every event named, each name once */
	for (unsigned int i = 0; i < VIOMMU_TRACE_COUNT; i++) {
		REQUIRE(viommu_trace_name(i) != NULL);
		for (unsigned int j = 0; j < i; j++)
			CHECK(strcmp(viommu_trace_name(i),
				     viommu_trace_name(j)) != 0);
	}
	/* off: nothing is called */
	trace_vi_fault(&t, 1, 2, 3, 4);
	CHECK_EQ(rs.n, 0);
	/* unknown mask bits, a longer struct with a non-zero tail */
	s.mask = 1ull << VIOMMU_TRACE_COUNT;
	CHECK_EQ(trace_set(&t, &log, &s), -EINVAL);
	big.s.size = sizeof(big);
	big.future = 1;
	CHECK_EQ(trace_set(&t, &log, &big.s), -EINVAL);
	big.future = 0;
	CHECK_EQ(trace_set(&t, &log, &big.s), 0);
	trace_vi_fault(&t, 2, 0x3, 0x18, 0x10000);
	REQUIRE(rs.n == 1);
	CHECK_EQ(rs.r[0].id, VIOMMU_TRACE_VI_FAULT);
	CHECK_STR(rs.r[0].event, "vi_fault");
	CHECK_EQ(rs.r[0].nfields, 4);
	CHECK_STR(rs.r[0].names[2], "endpoint");
	CHECK_U64(rs.r[0].values[2], 0x18);
	CHECK_U64(rs.r[0].values[3], 0x10000);
	/* only the events in the mask */
	s.mask = 1ull << VIOMMU_TRACE_SMMU_CMD;
	CHECK_EQ(trace_set(&t, &log, &s), 0);
	trace_vi_fault(&t, 2, 0x3, 0x18, 0x10000);
	trace_smmu_cmd(&t, 0x46, 0, 7);
	CHECK_EQ(rs.n, 2);
	CHECK_EQ(rs.r[1].id, VIOMMU_TRACE_SMMU_CMD);
	/* no function: one DEBUG line to the log, every field named */
	s.fn = NULL;
	s.size = 0; /* the first layout */
	CHECK_EQ(trace_set(&t, &log, &s), 0);
	trace_smmu_cmd(&t, 0x46, 1, 7);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(l.level, VIOMMU_LOG_DEBUG);
	CHECK_STR(l.last, "trace: smmu_cmd opcode=0x46 error=0x1 index=0x7");
	/* a log that does not let DEBUG through gets nothing */
	log.level = VIOMMU_LOG_INFO;
	trace_smmu_cmd(&t, 0x46, 1, 7);
	CHECK_EQ(l.n, 1);
	/* NULL: off */
	CHECK_EQ(trace_set(&t, &log, NULL), 0);
	trace_smmu_cmd(&t, 0x46, 1, 7);
	CHECK_EQ(rs.n, 2);
	CHECK_EQ(l.n, 1);
}

/* virtio-iommu: a record per request, and per fault report. */
TEST(virtio_iommu_requests_and_faults)
{
	struct recs rs = { 0 };
	struct viommu_trace_sink s = {
		.size = sizeof(s), .mask = VIOMMU_TRACE_ALL, .fn = rec_fn,
		.opaque = &rs,
	};
	const struct viommu_trace_record *r;
	uint8_t b[4];
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(viommu_virtio_iommu_set_trace_sink(NULL, &s), -EINVAL);
	s.mask |= 1ull << 63;
	CHECK_EQ(viommu_virtio_iommu_set_trace_sink(f.vi, &s), -EINVAL);
	s.mask = VIOMMU_TRACE_ALL;
	CHECK_EQ(viommu_virtio_iommu_set_trace_sink(f.vi, &s), 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), VIOMMU_VI_S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x10000, 0x10fff, 0x200000,
			 VIOMMU_READ | VIOMMU_WRITE), VIOMMU_VI_S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x10000, 0x11fff, 0x200000, VIOMMU_READ),
		 VIOMMU_VI_S_INVAL);
	CHECK_EQ(vfx_unmap(&f, 1, 0x10000, 0x10fff), VIOMMU_VI_S_OK);
	r = find(&rs, VIOMMU_TRACE_VI_REQUEST, 0);
	REQUIRE(r != NULL);
	CHECK_U64(r->values[0], VIOMMU_VI_REQ_ATTACH);
	CHECK_U64(r->values[1], VIOMMU_VI_S_OK);
	CHECK_U64(r->values[2], 1);
	CHECK_U64(r->values[3], 8);
	r = find(&rs, VIOMMU_TRACE_VI_REQUEST, 1);
	REQUIRE(r != NULL);
	CHECK_U64(r->values[0], VIOMMU_VI_REQ_MAP);
	CHECK_U64(r->values[4], 0x10000);
	CHECK_U64(r->values[5], 0x10fff);
	r = find(&rs, VIOMMU_TRACE_VI_REQUEST, 2);
	REQUIRE(r != NULL);
	CHECK_U64(r->values[1], VIOMMU_VI_S_INVAL);
	CHECK_U64(r->values[5], 0x11fff);
	r = find(&rs, VIOMMU_TRACE_VI_REQUEST, 3);
	REQUIRE(r != NULL);
	CHECK_U64(r->values[0], VIOMMU_VI_REQ_UNMAP);
	/* the endpoint's DMA after the unmap: a fault report, traced */
	CHECK_EQ(viommu_dma_read(f.ep8, VIOMMU_NO_PASID, 0x10000, b, 4),
		 -EFAULT);
	r = find(&rs, VIOMMU_TRACE_VI_FAULT, 0);
	REQUIRE(r != NULL);
	CHECK_U64(r->values[0], 2); /* VIRTIO_IOMMU_FAULT_R_MAPPING */
	CHECK_U64(r->values[2], 8);
	CHECK_U64(r->values[3], 0x10000);
	/* off: no more records */
	CHECK_EQ(viommu_virtio_iommu_set_trace_sink(f.vi, NULL), 0);
	rs.n = 0;
	CHECK_EQ(vfx_detach(&f, 1, 8), VIOMMU_VI_S_OK);
	CHECK_EQ(rs.n, 0);
	vfx_fini(&f);
}

/* SMMUv3: commands (with a refused one) and an event record. */
TEST(smmuv3_commands_and_events)
{
	struct viommu_smmuv3_config c = { .size = sizeof(c) };
	struct recs rs = { 0 };
	struct viommu_trace_sink s = {
		.size = sizeof(s), .mask = VIOMMU_TRACE_ALL, .fn = rec_fn,
		.opaque = &rs,
	};
	const struct viommu_trace_record *r;
	struct viommu_xlate x;
	struct fx f;
	int n;

	REQUIRE(fx_init(&f, &c) == 0);
	CHECK_EQ(viommu_smmuv3_set_trace_sink(NULL, &s), -EINVAL);
	CHECK_EQ(viommu_smmuv3_set_trace_sink(f.smmu, &s), 0);
	REQUIRE(fx_reset(&f) == 0);
	r = find(&rs, VIOMMU_TRACE_SMMU_CMD, 0);
	REQUIRE(r != NULL);
	CHECK_U64(r->values[0], 0x04); /* CFGI_ALL first */
	CHECK_U64(r->values[1], 0);
	r = find(&rs, VIOMMU_TRACE_SMMU_CMD, 1);
	REQUIRE(r != NULL);
	CHECK_U64(r->values[0], 0x46); /* CMD_SYNC */
	/* an unknown opcode: refused with CERROR_ILL, traced as such */
	n = rs.n;
	fx_cmd(&f, 0x7f, 0);
	r = NULL;
	for (int i = n; i < rs.n && i < MAXREC; i++)
		if (rs.r[i].id == VIOMMU_TRACE_SMMU_CMD &&
		    rs.r[i].values[0] == 0x7f)
			r = &rs.r[i];
	REQUIRE(r != NULL);
	CHECK_U64(r->values[0], 0x7f);
	CHECK_U64(r->values[1], 1); /* CERROR_ILL */
	/* a transaction through an invalid STE: C_BAD_STE (0x04) */
	CHECK_EQ(viommu_translate(f.ep[1], VIOMMU_NO_PASID, 0x1000, 4,
				  VIOMMU_READ, &x, NULL), -EFAULT);
	r = find(&rs, VIOMMU_TRACE_SMMU_EVENT, 0);
	REQUIRE(r != NULL);
	CHECK_U64(r->values[0], 0x04);
	CHECK_U64(r->values[1], viommu_endpoint_id(f.ep[1]));
	CHECK_U64(r->values[4], 0); /* written, not lost */
	fx_fini(&f);
}

TEST_MAIN()
