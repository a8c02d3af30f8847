/*
 * test_vtd_frame.c - the VT-d model served through a register frame in
 * guest RAM by polling (transport/regframe.h, docs/VTD.md "A polled
 * frame"): a guest store becomes a register write, the model's values come
 * back into the frame, writes between two polls are fed in the table's
 * order (an address before the command that uses it), a store racing the
 * publish is not lost, and the reference driver enables the unit, maps,
 * DMAs, unmaps strictly and clears a fault with the frame served by a
 * polling thread, as a real guest would be.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

#include "harness.h"
#include "test_vtd_fixture.h"
#include "vtd/frame.h"
#include "refdrv/vtd.h"

#define FRAME 0xf000ull

static int m_read(void *o, uint64_t off, unsigned int size, uint64_t *v)
{
	return viommu_vtd_mmio_read(o, off, size, v);
}

/* the racing store a test injects while the poller feeds a write */
static struct { struct fx *f; uint64_t off, val; bool armed; } race;

static int m_write(void *o, uint64_t off, unsigned int size, uint64_t v)
{
	if (race.armed) {
		race.armed = false;
		gw64(race.f, FRAME + race.off, race.val);
	}
	return viommu_vtd_mmio_write(o, off, size, v);
}

static int m_poll(void *o)
{
	return viommu_vtd_poll(o);
}

static int frame_up(struct fx *f, struct regframe *rf,
		    struct regframe_reg *regs)
{
	struct regframe_ops ops = { m_read, m_write, m_poll, f->vtd };
	unsigned int n = vtd_frame_regs(8, regs, 64);

	return n ? regframe_init(rf, f->mem, FRAME, regs, n, &ops) : -EINVAL;
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

TEST(frame_publishes_and_feeds)
{
	struct regframe_reg regs[64];
	struct regframe rf;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE(frame_up(&f, &rf, regs) == 0);
	CHECK_U64(gr64(&f, FRAME + VR_CAP), mr(&f, VR_CAP, 8));
	CHECK_EQ(fr32(&f, 0), 0x10);
	CHECK_EQ(regframe_poll(&rf), 0);            /* nothing written */
	/* a store to FECTL reaches the model; GSTS comes back */
	fw32(&f, VR_FECTL, 0);
	CHECK_EQ(regframe_poll(&rf), 1);
	CHECK_EQ(mr(&f, VR_FECTL, 4), 0);
	/* a store to a read-only register is fed (and refused) and the
	 * frame shows the register again */
	gw64(&f, FRAME + VR_CAP, 0);
	CHECK_EQ(regframe_poll(&rf), 1);
	CHECK_U64(gr64(&f, FRAME + VR_CAP), mr(&f, VR_CAP, 8));
	fx_fini(&f);
}

TEST(frame_feeds_an_address_before_its_command)
{
	struct regframe_reg regs[64];
	struct regframe rf;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE(frame_up(&f, &rf, regs) == 0);
	/* RTADDR then GCMD.SRTP between two polls: GCMD (0x18) sits below
	 * RTADDR (0x20) in the frame, but the root is latched right */
	gw64(&f, FRAME + VR_RTADDR, 0x7000);
	fw32(&f, VR_GCMD, GC_SRTP);
	CHECK_EQ(regframe_poll(&rf), 2);
	CHECK(fr32(&f, VR_GSTS) & GC_SRTP);
	CHECK_EQ(fr32(&f, VR_GCMD), 0);             /* write-only: reads 0 */
	/* the root at 0x7000 was latched: its bus-0 entry (reserved bit
	 * set) gives reason 0xa; the reset root at 0 would give 0x1 */
	gw64(&f, 0x7000, 1 | (1u << 5));
	fw32(&f, VR_GCMD, GC_TE);
	CHECK_EQ(regframe_poll(&rf), 1);
	CHECK(fr32(&f, VR_GSTS) & GC_TE);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0x1000, NULL), -EFAULT);
	CHECK_EQ(fx_last(&f), 0xa);
	fx_fini(&f);
}

TEST(frame_store_racing_the_publish_is_not_lost)
{
	struct regframe_reg regs[64];
	struct regframe rf;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE(frame_up(&f, &rf, regs) == 0);
	/* while the FECTL write is fed, the "guest" stores IVA */
	race.f = &f;
	race.off = VR_IVA;
	race.val = 0x5000;
	race.armed = true;
	fw32(&f, VR_FECTL, 0);
	CHECK_EQ(regframe_poll(&rf), 1);
	CHECK_U64(gr64(&f, FRAME + VR_IVA), 0x5000);  /* not overwritten */
	CHECK_U64(mr(&f, VR_IVA, 8), 0);
	CHECK_EQ(regframe_poll(&rf), 1);              /* fed next time */
	CHECK_U64(mr(&f, VR_IVA, 8), 0x5000);
	fx_fini(&f);
}

/* ---- the reference driver through the frame, served by a thread ------ */

struct server {
	struct regframe *rf;
	int stop;
	long polls;
};

static void *serve(void *o)
{
	struct server *s = o;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		regframe_poll(s->rf);
		s->polls++;
		sched_yield();
	}
	return NULL;
}

static uint64_t h_read(void *o, uint64_t off, unsigned int size)
{
	struct fx *f = o;
	void *p = f->ram + FRAME + off;

	sched_yield(); /* a polling driver: let the server run */
	return size == 8 ? __atomic_load_n((uint64_t *)p, __ATOMIC_ACQUIRE) :
	       __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE);
}

static void h_write(void *o, uint64_t off, unsigned int size, uint64_t v)
{
	struct fx *f = o;
	void *p = f->ram + FRAME + off;

	if (size == 8)
		__atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
	else
		__atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_RELEASE);
}

TEST(frame_reference_driver_strict_dma_and_fault)
{
	struct regframe_reg regs[64];
	struct vtddrv_config dc = { 0 };
	struct vtddrv_domain *dom;
	struct server s = { 0 };
	struct regframe rf;
	struct vtddrv *d;
	struct fx f;
	pthread_t th;
	uint32_t v;
	int r;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE(frame_up(&f, &rf, regs) == 0);
	s.rf = &rf;
	REQUIRE(pthread_create(&th, NULL, serve, &s) == 0);
	dc.vtd = f.vtd;
	dc.mem = f.mem;
	dc.chunk = f.ram + (8ull << 20);
	dc.chunk_gpa = 8ull << 20;
	dc.chunk_size = 8ull << 20;
	dc.mmio_read = h_read;
	dc.mmio_write = h_write;
	dc.mmio_opaque = &f;
	r = vtddrv_create(&dc, &d);
	CHECK_EQ(r, 0);
	if (!r) {
		CHECK(mr(&f, VR_GSTS, 4) & GC_TE);   /* the model is on */
		REQUIRE(vtddrv_domain_create(d, 1, VTDDRV_STRICT, &dom) == 0);
		REQUIRE(vtddrv_attach(d, dom, fx_sids[0]) == 0);
		gw64(&f, 0x200000, 0x77);
		REQUIRE(vtddrv_map(d, dom, 0x80000000, 0x200000, 4096,
				   VIOMMU_READ) == 0);
		CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0x80000000, &v), 0);
		CHECK_EQ(v, 0x77);
		REQUIRE(vtddrv_unmap(d, dom, 0x80000000, 4096) == 0);
		CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0x80000000, &v),
			 -EFAULT);
		/*
		 * The fault shows in the frame once a publish has run after
		 * it: a publish that read FRCD just before the fault and
		 * FSTS just after shows PPF with the record a poll later.
		 */
		for (int i = 0; i < 100000 &&
		     (!(h_read(&f, VR_FSTS, 4) & 2) ||
		      !((h_read(&f, VR_FRCD + 8, 8) >> 32) & 0xff)); i++)
			;
		CHECK(h_read(&f, VR_FSTS, 4) & 2);        /* PPF */
		CHECK_EQ((h_read(&f, VR_FRCD + 8, 8) >> 32) & 0xff, 0x6);
		/* Linux's handler, through the frame */
		h_write(&f, VR_FRCD + 12, 4, 1u << 31);
		for (int i = 0; i < 100000 && (mr(&f, VR_FSTS, 4) & 2); i++)
			sched_yield();
		CHECK(!(mr(&f, VR_FSTS, 4) & 2));
		vtddrv_destroy(d);
	}
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CHECK(s.polls > 0);
	fx_fini(&f);
}

TEST_MAIN()
