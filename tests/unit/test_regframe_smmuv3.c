/*
 * test_regframe_smmuv3.c - our SMMUv3 model driven only through a polled
 * register frame (regframe_smmuv3_ops, src/link/regframe_smmuv3.c), the
 * way a real guest's arm-smmu-v3 driver drives it (docs/SMMUV3-GUEST.md):
 * the "guest" stores into the frame in RAM and reads what was published,
 * one regframe_round() standing for the polling thread.
 *
 * Checks: the ID registers appear in the frame; the Linux reset sequence
 * (DESIGN.md 6) completes with every acknowledgement read from the frame;
 * queue bases and the enable stored before one round are fed in the
 * table's order (bases first) so the queue works; CMD_SYNC completion is
 * published through CMDQ_CONS; GBPA.UPDATE clears; a translation after
 * the driver's STE reaches the page the guest's tables map, and a
 * permission fault leaves F_PERMISSION in the event queue in RAM.
 */
#include "unit/test_smmuv3_fixture.h"
#include "harness.h"
#include "link/regframe.h"

#define FRAME 0x40000ull /* in the fixture's first MiB */
#define DATA 0x300000ull

struct ffx {
	struct fx f;
	struct regframe *rf;
};

static uint64_t fload(struct ffx *x, uint32_t off, unsigned int size)
{
	void *p = x->f.ram + FRAME + off;

	return size == 8 ? __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST) :
			   __atomic_load_n((uint32_t *)p, __ATOMIC_SEQ_CST);
}

static void fstore(struct ffx *x, uint32_t off, unsigned int size,
		   uint64_t v)
{
	void *p = x->f.ram + FRAME + off;

	if (size == 8)
		__atomic_store_n((uint64_t *)p, v, __ATOMIC_SEQ_CST);
	else
		__atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_SEQ_CST);
}

/* poll() - the polling thread's turn: one round. */
static int poll_round(struct ffx *x)
{
	return regframe_round(x->rf, NULL);
}

/* gw() - a guest store followed by a round; gr() - a guest load. */
static void gw(struct ffx *x, uint32_t off, unsigned int size, uint64_t v)
{
	fstore(x, off, size, v);
	poll_round(x);
}

static int ffx_init(struct ffx *x)
{
	struct regframe_config c = { .size = sizeof(c),
				     .ops = &regframe_smmuv3_ops,
				     .gpa = FX_RAM_GPA + FRAME,
				     .name = "smmuv3" };

	memset(x, 0, sizeof(*x));
	if (fx_init(&x->f, NULL))
		return -1;
	c.model = x->f.smmu;
	c.mem = x->f.mem;
	if (regframe_create(&c, &x->rf))
		return -1;
	return poll_round(x);
}

static void ffx_fini(struct ffx *x)
{
	regframe_destroy(x->rf);
	fx_fini(&x->f);
}

/* cmd() - queue a command in RAM and ring the doorbell in the frame. */
static void cmd(struct ffx *x, uint64_t d0, uint64_t d1)
{
	uint32_t m = (1u << FX_Q_LOG2) - 1, w = (2u << FX_Q_LOG2) - 1;
	uint64_t a = x->f.cmdq + (uint64_t)(x->f.cmd_prod & m) * 16;

	gw64(&x->f, a, d0);
	gw64(&x->f, a + 8, d1);
	x->f.cmd_prod = (x->f.cmd_prod + 1) & w;
	gw(x, 0x98, 4, x->f.cmd_prod);
}

/* sync() - CMD_SYNC; whether CMDQ_CONS in the frame caught up. */
static bool sync_done(struct ffx *x)
{
	cmd(x, 0x46, 0);
	return (fload(x, 0x9c, 4) & ((2u << FX_Q_LOG2) - 1)) == x->f.cmd_prod;
}

/* reset() - Linux's reset through the frame; 0 or the failing step. */
static int reset(struct ffx *x)
{
	struct fx *f = &x->f;

	f->strtab = fx_alloc(f, 64ull << FX_STRTAB_LOG2, 64ull << FX_STRTAB_LOG2);
	f->cmdq = fx_alloc(f, 16ull << FX_Q_LOG2, 16ull << FX_Q_LOG2);
	f->evtq = fx_alloc(f, 32ull << FX_Q_LOG2, 32ull << FX_Q_LOG2);
	gw(x, 0x20, 4, 0);
	if (fload(x, 0x24, 4) != 0)
		return 1;
	/* bases and the enable in one go: fed bases first */
	fstore(x, 0x28, 4, (3u << 10) | (1u << 8) | (1u << 6) | (3u << 4) |
	       (1u << 2) | 1u);
	fstore(x, 0x20, 4, 1u << 3); /* CMDQEN, stored before the bases */
	fstore(x, 0x80, 8, f->strtab | (1ull << 62));
	fstore(x, 0x88, 4, FX_STRTAB_LOG2);
	fstore(x, 0x90, 8, f->cmdq | (1ull << 62) | FX_Q_LOG2);
	poll_round(x);
	if (fload(x, 0x24, 4) != (1u << 3))
		return 2;
	cmd(x, 0x04, 31); /* CFGI_ALL */
	if (!sync_done(x))
		return 3;
	gw(x, 0xa0, 8, f->evtq | (1ull << 62) | FX_Q_LOG2);
	gw(x, 0x20, 4, (1u << 3) | (1u << 2));
	if (fload(x, 0x24, 4) != ((1u << 3) | (1u << 2)))
		return 4;
	gw(x, 0x50, 4, 5);
	if (fload(x, 0x54, 4) != 5)
		return 5;
	gw(x, 0x20, 4, (1u << 3) | (1u << 2) | 1u);
	if (fload(x, 0x24, 4) != ((1u << 3) | (1u << 2) | 1u))
		return 6;
	return 0;
}

/* DESIGN 6: ID registers published; the reset handshake via the frame */
TEST(smmuv3_frame_ids_and_reset)
{
	struct ffx x;

	REQUIRE(ffx_init(&x) == 0);
	CHECK_U64(fload(&x, 0x00, 4), mr(&x.f, 0x00, 4));
	CHECK(fload(&x, 0x00, 4) != 0);
	CHECK_U64(fload(&x, 0x14, 4), mr(&x.f, 0x14, 4));
	CHECK_U64(fload(&x, 0xfe0, 4), mr(&x.f, 0xfe0, 4));
	CHECK_EQ(reset(&x), 0);
	CHECK_U64(mr(&x.f, 0x24, 4) & 1, 1);
	/* GBPA.UPDATE is cleared by the model and published */
	gw(&x, 0x44, 4, (1u << 31) | (1u << 20));
	CHECK_U64(fload(&x, 0x44, 4), 1u << 20);
	ffx_fini(&x);
}

/* DESIGN 6: a stage-1 STE and CD built by the "driver": a read
 * translates, a write to the read-only page is refused with F_PERMISSION
 * in the event queue */
TEST(smmuv3_frame_translate_and_permission_event)
{
	struct ffx x;
	struct lpae_cfg c1;
	uint64_t r1, q[8], cd, evt;
	struct viommu_xlate xl;
	struct viommu_fault flt;
	uint32_t prod;

	REQUIRE(ffx_init(&x) == 0);
	REQUIRE(reset(&x) == 0);
	cd = fx_alloc(&x.f, 64, 64);
	REQUIRE(!fx_lcfg(&c1, LPAE_STAGE1, 4096, 48, 48) &&
		!lpae_alloc_root(&c1, &x.f.ops, &r1) &&
		!lpae_map(&c1, &x.f.ops, r1, 0x1000, DATA, 0x1000,
			  VIOMMU_READ));
	fx_cd(q, &c1, r1, 1);
	for (int i = 0; i < 8; i++)
		gw64(&x.f, cd + 8 * i, q[i]);
	fx_ste_s1(q, cd, 0, 0, 0);
	fx_ste(&x.f, 1, q);
	cmd(&x, 0x03 | CMD_SID(1), 1); /* CFGI_STE */
	REQUIRE(sync_done(&x));
	CHECK_EQ(viommu_translate(x.f.ep[1], VIOMMU_NO_PASID, 0x1010, 4,
				  VIOMMU_READ, &xl, &flt), 0);
	CHECK_U64(xl.gpa, DATA + 0x10);
	CHECK(viommu_translate(x.f.ep[1], VIOMMU_NO_PASID, 0x1010, 4,
			       VIOMMU_WRITE, &xl, &flt) != 0);
	poll_round(&x); /* EVTQ_PROD moved by the DMA thread: republished */
	for (int i = 0; i < REGFRAME_REPUBLISH_ROUNDS; i++)
		poll_round(&x);
	prod = (uint32_t)fload(&x, 0x100a8, 4);
	CHECK_EQ(prod & ((2u << FX_Q_LOG2) - 1), 1);
	evt = gr64(&x.f, x.f.evtq);
	CHECK_U64(evt & 0xff, 0x13); /* F_PERMISSION */
	CHECK_U64(evt >> 32, 1);     /* StreamID */
	ffx_fini(&x);
}

TEST_MAIN()
