/*
 * test_vtd_frame.c - the VT-d model served through a register frame in
 * guest RAM by polling (regframe_vtd_ops, src/link/regframe_vtd.c;
 * docs/VTD.md "A polled frame"): a guest store becomes a register write,
 * the model's values come back into the frame, writes between two rounds
 * are fed in the list's order (an address before the command that uses
 * it), a store racing the publish is not lost, a fault record's F bit is
 * cleared by Linux's 32-bit store, and the reference driver enables the
 * unit, maps, DMAs, unmaps strictly and sees a fault with the frame served
 * by the polling thread, as a real guest is (tools/server_frame.c).
 */
#include <stdio.h>

#include "harness.h"
#include "test_vtd_fixture.h"
#include "frame_access.h"
#include "refdrv/vtd.h"
#include <viommu/regframe.h>

#define FRAME 0xf000ull

/* the racing store a test injects while the poller feeds a write */
static struct { struct fx *f; uint64_t off, val; bool armed; } race;

static int racing_write(void *o, uint64_t off, unsigned int size,
			uint64_t v)
{
	if (race.armed) {
		race.armed = false;
		gw64(race.f, FRAME + race.off, race.val);
	}
	return regframe_vtd_ops.write(o, off, size, v);
}

static struct regframe_ops racing_ops;

/* frame_up() - a frame over @f's unit at FRAME, primed by one round. */
static int frame_up(struct fx *f, const struct regframe_ops *ops,
		    struct regframe **rf)
{
	struct regframe_config c = { .size = sizeof(c), .ops = ops,
				     .model = f->vtd, .mem = f->mem,
				     .gpa = FRAME, .name = "vtd" };

	if (regframe_create(&c, rf))
		return -1;
	return regframe_round(*rf, NULL);
}

static unsigned int fed(struct regframe *rf)
{
	struct viommu_regframe_stats st;

	regframe_stats(rf, &st);
	return (unsigned int)st.writes;
}

static uint32_t fr32(struct fx *f, uint64_t off)
{
	return (uint32_t)gr64(f, FRAME + off);
}

static void fw32(struct fx *f, uint64_t off, uint32_t v)
{
	uint64_t old = gr64(f, FRAME + off);

	gw64(f, FRAME + off, (old & ~0xffffffffull) | v);
}

TEST(frame_vtd_ops_are_accepted)
{
	const struct regframe_ops *o = &regframe_vtd_ops;
	unsigned int records = 0;

	CHECK_U64(o->frame_size, VIOMMU_VTD_MMIO_SIZE);
	for (unsigned int i = 0; i < o->nregs; i++)
		if (o->regs[i].offset >= VR_FRCD && o->regs[i].offset <
		    VR_FRCD + 16 * VIOMMU_VTD_MAX_NFR)
			records++;
	CHECK_EQ(records, 2 * VIOMMU_VTD_MAX_NFR);
	/* the last writable register fed is the queue tail */
	for (unsigned int i = o->nregs; i-- > 0;)
		if (o->regs[i].writable) {
			CHECK_EQ(o->regs[i].offset, VR_IQT);
			break;
		}
}

TEST(frame_publishes_and_feeds)
{
	struct regframe *rf;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE(frame_up(&f, &regframe_vtd_ops, &rf) == 0);
	CHECK_U64(gr64(&f, FRAME + VR_CAP), mr(&f, VR_CAP, 8));
	CHECK_EQ(fr32(&f, 0), 0x10);                /* VER */
	CHECK_EQ(regframe_round(rf, NULL), 0);      /* nothing written */
	CHECK_EQ(fed(rf), 0);
	/* a store to FECTL reaches the model */
	fw32(&f, VR_FECTL, 0);
	CHECK_EQ(regframe_round(rf, NULL), 0);
	CHECK_EQ(fed(rf), 1);
	CHECK_EQ(mr(&f, VR_FECTL, 4), 0);
	/* a store to a read-only register is not fed: the publish puts
	 * the register back */
	gw64(&f, FRAME + VR_CAP, 0);
	for (int i = 0; i <= REGFRAME_REPUBLISH_ROUNDS; i++)
		regframe_round(rf, NULL);
	CHECK_EQ(fed(rf), 1);
	CHECK_U64(gr64(&f, FRAME + VR_CAP), mr(&f, VR_CAP, 8));
	regframe_destroy(rf);
	fx_fini(&f);
}

TEST(frame_feeds_an_address_before_its_command)
{
	struct regframe *rf;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE(frame_up(&f, &regframe_vtd_ops, &rf) == 0);
	/* RTADDR then GCMD.SRTP between two rounds: GCMD (0x18) sits below
	 * RTADDR (0x20) in the frame, but the root is latched right */
	gw64(&f, FRAME + VR_RTADDR, 0x7000);
	fw32(&f, VR_GCMD, GC_SRTP);
	CHECK_EQ(regframe_round(rf, NULL), 0);
	CHECK_EQ(fed(rf), 2);
	CHECK(fr32(&f, VR_GSTS) & GC_SRTP);
	CHECK_EQ(fr32(&f, VR_GCMD), 0);             /* write-only: reads 0 */
	/* the root at 0x7000 was latched: its bus-0 entry (reserved bit
	 * set) gives reason 0xa; the reset root at 0 would give 0x1 */
	gw64(&f, 0x7000, 1 | (1u << 5));
	fw32(&f, VR_GCMD, GC_TE);
	CHECK_EQ(regframe_round(rf, NULL), 0);
	CHECK(fr32(&f, VR_GSTS) & GC_TE);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0x1000, NULL), -EFAULT);
	CHECK_EQ(fx_last(&f), 0xa);
	/* the record and PPF show once a publish runs; then Linux's handler
	 * clears F with a 32-bit store of F alone into the upper half */
	for (int i = 0; i <= REGFRAME_REPUBLISH_ROUNDS; i++)
		regframe_round(rf, NULL);
	CHECK(fr32(&f, VR_FSTS) & 2);                   /* PPF */
	CHECK_EQ((gr64(&f, FRAME + VR_FRCD + 8) >> 32) & 0xff, 0xa);
	*(volatile uint32_t *)(void *)(f.ram + FRAME + VR_FRCD + 12) =
		1u << 31;
	CHECK_EQ(regframe_round(rf, NULL), 0);
	CHECK(!(mr(&f, VR_FSTS, 4) & 2));
	CHECK(!(fr32(&f, VR_FSTS) & 2));
	CHECK(!(gr64(&f, FRAME + VR_FRCD + 8) >> 63));
	regframe_destroy(rf);
	fx_fini(&f);
}

TEST(frame_store_racing_the_publish_is_not_lost)
{
	struct regframe *rf;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	racing_ops = regframe_vtd_ops;
	racing_ops.write = racing_write;
	REQUIRE(frame_up(&f, &racing_ops, &rf) == 0);
	/* while the FECTL write is fed, the "guest" stores IVA (listed
	 * before FECTL, so this round has already looked at it) */
	race.f = &f;
	race.off = VR_IVA;
	race.val = 0x5000;
	race.armed = true;
	fw32(&f, VR_FECTL, 0);
	CHECK_EQ(regframe_round(rf, NULL), 0);
	CHECK(!race.armed);
	CHECK_U64(gr64(&f, FRAME + VR_IVA), 0x5000);  /* not overwritten */
	CHECK_U64(mr(&f, VR_IVA, 8), 0);
	CHECK_EQ(regframe_round(rf, NULL), 0);        /* fed next time */
	CHECK_U64(mr(&f, VR_IVA, 8), 0x5000);
	regframe_destroy(rf);
	fx_fini(&f);
}

/* ---- the reference driver through the frame, served by a thread ------ */

static uint64_t h_read(void *o, uint64_t off, unsigned int size)
{
	return fa_load(o, off, size);
}

static void h_write(void *o, uint64_t off, unsigned int size, uint64_t v)
{
	fa_store(o, off, size, v);
}

TEST(frame_reference_driver_strict_dma_and_fault)
{
	struct vtddrv_config dc = { 0 };
	struct frame_access fa = { 0 };
	struct vtddrv_domain *dom;
	struct viommu_regframe_stats st;
	struct regframe *rf;
	struct vtddrv *d;
	struct fx f;
	uint32_t v;
	int r;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE(frame_up(&f, &regframe_vtd_ops, &rf) == 0);
	fa.frame = f.ram + FRAME;
	fa.rf = rf;
	fa.threaded = true;
	REQUIRE(regframe_start(rf) == 0);
	dc.vtd = f.vtd;
	dc.mem = f.mem;
	dc.chunk = f.ram + (8ull << 20);
	dc.chunk_gpa = 8ull << 20;
	dc.chunk_size = 8ull << 20;
	dc.mmio_read = h_read;
	dc.mmio_write = h_write;
	dc.mmio_opaque = &fa;
	r = vtddrv_create(&dc, &d);
	CHECK_EQ(r, 0);
	if (!r) {
		CHECK(mr(&f, VR_GSTS, 4) & GC_TE);   /* the model is on */
		CHECK(mr(&f, VR_GSTS, 4) & GC_QIE);
		REQUIRE(vtddrv_domain_create(d, 1, VTDDRV_STRICT, &dom) == 0);
		REQUIRE(vtddrv_attach(d, dom, fx_sids[0]) == 0);
		gw64(&f, 0x200000, 0x77);
		REQUIRE(vtddrv_map(d, dom, 0x80000000, 0x200000, 4096,
				   VIOMMU_READ) == 0);
		CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0x80000000, &v), 0);
		CHECK_EQ(v, 0x77);
		/* strict: the unmap's invalidation completed before it
		 * returned, so the model's IOTLB no longer has the page */
		REQUIRE(vtddrv_unmap(d, dom, 0x80000000, 4096) == 0);
		CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0x80000000, &v),
			 -EFAULT);
		CHECK_EQ(fx_last(&f), 0x6);                /* not present */
		/* the fault shows in the frame once a publish has run */
		fa_settle_publish(&fa);
		CHECK(h_read(&fa, VR_FSTS, 4) & 2);        /* PPF */
		CHECK_EQ((h_read(&fa, VR_FRCD + 8, 8) >> 32) & 0xff, 0x6);
		/* Linux's handler, through the frame */
		h_write(&fa, VR_FRCD + 12, 4, 1u << 31);
		CHECK(!(h_read(&fa, VR_FSTS, 4) & 2));
		CHECK(!(mr(&f, VR_FSTS, 4) & 2));
		vtddrv_destroy(d);
		CHECK(!(mr(&f, VR_GSTS, 4) & GC_TE));
	}
	regframe_stop(rf);
	regframe_stats(rf, &st);
	CHECK(st.writes > 0);
	CHECK_EQ(st.write_errors, 0);
	CHECK_EQ(fa.timeouts, 0);
	regframe_destroy(rf);
	fx_fini(&f);
}

/*
 * The public face (<viommu/regframe.h>): an embedder serves the VT-d
 * model by kind, with no private header; bad configs are refused; a
 * frame outside RAM does nothing; a short stats struct gets only what it
 * knows.
 */
TEST(public_api_serves_the_vtd_frame)
{
	struct viommu_regframe_config c = {
		.size = sizeof(c), .kind = VIOMMU_REGFRAME_VTD, .mem = NULL,
		.gpa = FRAME, .name = "vtd",
	};
	struct {
		struct viommu_regframe_config c;
		uint64_t future;
	} big;
	struct viommu_regframe_stats st;
	uint64_t rounds_only[2] = { 0, 0xeeee };
	struct viommu_regframe *rf = NULL;
	bool changed = false;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	c.model = f.vtd;
	CHECK_EQ(viommu_regframe_create(&c, &rf), -EINVAL);   /* no mem */
	c.mem = f.mem;
	c.kind = 0;
	CHECK_EQ(viommu_regframe_create(&c, &rf), -EINVAL);   /* no kind */
	c.kind = VIOMMU_REGFRAME_VTD;
	c.gpa = FRAME + 4;
	CHECK_EQ(viommu_regframe_create(&c, &rf), -EINVAL);   /* misaligned */
	c.gpa = FRAME;
	memset(&big, 0, sizeof(big));
	big.c = c;
	big.c.size = sizeof(big);
	big.future = 1;                     /* a field this library lacks */
	CHECK_EQ(viommu_regframe_create(&big.c, &rf), -EINVAL);
	big.future = 0;
	REQUIRE(viommu_regframe_create(&big.c, &rf) == 0);
	viommu_regframe_destroy(rf);
	rf = NULL;
	REQUIRE(viommu_regframe_create(&c, &rf) == 0);
	CHECK_EQ(viommu_regframe_round(NULL, NULL), -EINVAL);
	CHECK_EQ(viommu_regframe_round(rf, &changed), 0);
	CHECK(changed);                                       /* published */
	CHECK_U64(gr64(&f, FRAME + VR_CAP), mr(&f, VR_CAP, 8));
	fw32(&f, VR_FECTL, 0);                                /* a guest store */
	CHECK_EQ(viommu_regframe_round(rf, &changed), 0);
	CHECK_EQ(mr(&f, VR_FECTL, 4), 0);
	CHECK_EQ(viommu_regframe_stats(rf, &st, 0), -EINVAL);
	REQUIRE(viommu_regframe_stats(rf, &st, sizeof(st)) == 0);
	CHECK_U64(st.rounds, 2);
	CHECK_U64(st.writes, 1);
	/* an old caller that knows only the first counter */
	REQUIRE(viommu_regframe_stats(rf, (void *)rounds_only,
				      sizeof(uint64_t)) == 0);
	CHECK_U64(rounds_only[0], 2);
	CHECK_U64(rounds_only[1], 0xeeee);
	CHECK_EQ(viommu_regframe_start(rf), 0);
	CHECK_EQ(viommu_regframe_start(rf), -EBUSY);
	viommu_regframe_stop(rf);
	viommu_regframe_destroy(rf);
	viommu_regframe_destroy(NULL);
	fx_fini(&f);
}

TEST_MAIN()
