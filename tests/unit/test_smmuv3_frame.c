/*
 * test_smmuv3_frame.c - the SMMUv3 model served through a register frame
 * in guest RAM by polling, the same mechanism as VT-d's
 * (transport/regframe.h): the reference SMMUv3 driver runs its reset
 * sequence (CR0/CR0ACK, GBPA and IRQ_CTRL handshakes, queues with CMD_SYNC
 * completion polled through CMDQ_CONS), maps a stage-1 domain, DMAs,
 * unmaps with TLBI + CMD_SYNC and reads the translation fault from the
 * event queue, all through a frame that a thread polls.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

#include "harness.h"
#include "test_smmuv3_fixture.h"
#include "smmuv3/frame.h"
#include "refdrv/smmuv3.h"

#define FRAME 0x20000ull  /* 128 KiB: page 0 and page 1 */
#define CHUNK (8ull << 20)
#define DATA 0x200000ull
#define IOVA 0x40000000ull

static int m_read(void *o, uint64_t off, unsigned int size, uint64_t *v)
{
	return viommu_smmuv3_mmio_read(o, off, size, v);
}

static int m_write(void *o, uint64_t off, unsigned int size, uint64_t v)
{
	return viommu_smmuv3_mmio_write(o, off, size, v);
}

static int m_poll(void *o)
{
	return viommu_smmuv3_poll(o);
}

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

/* the driver's MMIO goes to the frame in RAM */
static int h_read(void *o, uint64_t off, unsigned int size, uint64_t *v)
{
	struct fx *f = o;
	void *p = f->ram + FRAME + off;

	sched_yield(); /* a polling driver: let the server run */
	*v = size == 8 ? __atomic_load_n((uint64_t *)p, __ATOMIC_ACQUIRE) :
	     __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE);
	return 0;
}

static int h_write(void *o, uint64_t off, unsigned int size, uint64_t v)
{
	struct fx *f = o;
	void *p = f->ram + FRAME + off;

	if (size == 8)
		__atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
	else
		__atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_RELEASE);
	return 0;
}

TEST(frame_smmuv3_reference_driver_stage1_dma_and_event)
{
	struct regframe_reg regs[SMMUV3_FRAME_NREGS];
	struct regframe_ops ops = { m_read, m_write, m_poll, NULL };
	struct smmudrv_domain_config dc = { .stage = SMMUDRV_STAGE1 };
	struct smmudrv_config c = { 0 };
	struct smmudrv_domain *dom = NULL;
	struct smmudrv_event ev;
	struct server s = { 0 };
	struct regframe rf;
	struct smmudrv *d = NULL;
	struct fx f;
	pthread_t th;
	uint32_t v = 0;
	unsigned int n;
	int r;

	REQUIRE(fx_init(&f, NULL) == 0);
	ops.opaque = f.smmu;
	n = smmuv3_frame_regs(regs, SMMUV3_FRAME_NREGS);
	REQUIRE(n == SMMUV3_FRAME_NREGS);
	REQUIRE(regframe_init(&rf, f.mem, FRAME, regs, n, &ops) == 0);
	CHECK_EQ(gr64(&f, FRAME) & 0xffffffff, mr(&f, 0, 4)); /* IDR0 */
	s.rf = &rf;
	REQUIRE(pthread_create(&th, NULL, serve, &s) == 0);
	c.smmu = f.smmu;
	c.mem = f.mem;
	c.ram = f.ram + CHUNK;
	c.ram_gpa = CHUNK;
	c.ram_size = FX_RAM_SIZE - CHUNK;
	c.mmio.read = h_read;
	c.mmio.write = h_write;
	c.mmio.opaque = &f;
	r = smmudrv_create(&c, &d);
	CHECK_EQ(r, 0);
	if (!r) {
		CHECK(mr(&f, 0x20, 4) & 1);                 /* SMMUEN */
		REQUIRE(smmudrv_domain_alloc(d, &dc, &dom) == 0);
		REQUIRE(smmudrv_map(dom, IOVA, DATA, 0x1000, VIOMMU_READ) == 0);
		REQUIRE(smmudrv_attach(d, 1, SMMUDRV_NO_SSID, dom) == 0);
		gw64(&f, DATA + 8, 0x5151);
		CHECK_EQ(viommu_dma_read(f.ep[1], VIOMMU_NO_PASID, IOVA + 8, &v,
					 4), 0);
		CHECK_EQ(v, 0x5151);
		REQUIRE(smmudrv_unmap(dom, IOVA, 0x1000, NULL) == 0);
		CHECK_EQ(viommu_dma_read(f.ep[1], VIOMMU_NO_PASID, IOVA + 8, &v,
					 4), -EFAULT);
		/* the event shows once a poll has published EVTQ_PROD */
		r = 0;
		for (int i = 0; i < 100000 && r == 0; i++)
			r = smmudrv_event_pop(d, &ev);
		CHECK_EQ(r, 1);
		CHECK_EQ(ev.type, 0x10);                     /* F_TRANSLATION */
		CHECK_U64(ev.addr, IOVA + 8);
		smmudrv_detach(d, 1, SMMUDRV_NO_SSID);
		smmudrv_destroy(d);
	}
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CHECK(s.polls > 0);
	CHECK(rf.writes > 0);
	fx_fini(&f);
}

TEST_MAIN()
