/*
 * test_smmuv3_frame.c - the reference SMMUv3 driver through a polled
 * register frame (regframe_smmuv3_ops, link/regframe.h) served by the
 * polling thread, as a real arm64 guest's driver is
 * (docs/SMMUV3-GUEST.md): its reset sequence (CR0/CR0ACK, GBPA and
 * IRQ_CTRL handshakes, queues with CMD_SYNC completion polled through
 * CMDQ_CONS), a stage-1 map, DMA, unmap with TLBI + CMD_SYNC and the
 * translation fault read from the event queue, all through the frame.
 */
#include <stdio.h>

#include "harness.h"
#include "test_smmuv3_fixture.h"
#include "frame_access.h"
#include "refdrv/smmuv3.h"

#define FRAME 0x20000ull  /* 128 KiB: page 0 and page 1 */
#define CHUNK (8ull << 20)
#define DATA 0x200000ull
#define IOVA 0x40000000ull

/* the driver's MMIO goes to the frame in RAM */
static int h_read(void *o, uint64_t off, unsigned int size, uint64_t *v)
{
	*v = fa_load(o, off, size);
	return 0;
}

static int h_write(void *o, uint64_t off, unsigned int size, uint64_t v)
{
	fa_store(o, off, size, v);
	return 0;
}

TEST(frame_smmuv3_reference_driver_stage1_dma_and_event)
{
	struct regframe_config rc = { .size = sizeof(rc),
				      .ops = &regframe_smmuv3_ops,
				      .gpa = FX_RAM_GPA + FRAME,
				      .name = "smmuv3" };
	struct smmudrv_domain_config dc = { .stage = SMMUDRV_STAGE1 };
	struct smmudrv_config c = { 0 };
	struct smmudrv_domain *dom = NULL;
	struct frame_access fa = { 0 };
	struct viommu_regframe_stats st;
	struct smmudrv_event ev;
	struct smmudrv *d = NULL;
	struct regframe *rf;
	struct fx f;
	uint32_t v = 0;
	int r;

	REQUIRE(fx_init(&f, NULL) == 0);
	rc.model = f.smmu;
	rc.mem = f.mem;
	REQUIRE(regframe_create(&rc, &rf) == 0);
	REQUIRE(regframe_round(rf, NULL) == 0);
	CHECK_EQ(gr64(&f, FRAME) & 0xffffffff, mr(&f, 0, 4)); /* IDR0 */
	fa.frame = f.ram + FRAME;
	fa.rf = rf;
	fa.threaded = true;
	REQUIRE(regframe_start(rf) == 0);
	c.smmu = f.smmu;
	c.mem = f.mem;
	c.ram = f.ram + CHUNK;
	c.ram_gpa = CHUNK;
	c.ram_size = FX_RAM_SIZE - CHUNK;
	c.mmio.read = h_read;
	c.mmio.write = h_write;
	c.mmio.opaque = &fa;
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
		/* strict: TLBI + CMD_SYNC completed before the unmap
		 * returned */
		REQUIRE(smmudrv_unmap(dom, IOVA, 0x1000, NULL) == 0);
		CHECK_EQ(viommu_dma_read(f.ep[1], VIOMMU_NO_PASID, IOVA + 8, &v,
					 4), -EFAULT);
		/* the event shows once a publish has run after it */
		fa_settle_publish(&fa);
		r = smmudrv_event_pop(d, &ev);
		CHECK_EQ(r, 1);
		if (r == 1) {
			CHECK_EQ(ev.type, 0x10);            /* F_TRANSLATION */
			CHECK_U64(ev.addr, IOVA + 8);
		}
		smmudrv_detach(d, 1, SMMUDRV_NO_SSID);
		smmudrv_destroy(d);
	}
	regframe_stop(rf);
	regframe_stats(rf, &st);
	CHECK(st.writes > 0);
	CHECK_EQ(st.write_errors, 0);
	CHECK_EQ(fa.timeouts, 0);
	regframe_destroy(rf);
	fx_fini(&f);
}

TEST_MAIN()
