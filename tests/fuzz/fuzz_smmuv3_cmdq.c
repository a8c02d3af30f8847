/*
 * fuzz_smmuv3_cmdq.c - libFuzzer target for the SMMUv3 command queue.
 *
 * A model is reset the way the Linux driver does it, with a stage-1 STE
 * for StreamID 1 (one 4K page mapped), a bypass STE for StreamID 2 and a
 * stage-2 STE for StreamID 3.  The input is then consumed as commands:
 * byte 0 picks the model's features (low bits: no stage 2, no RIL, no
 * MSI), the rest is cut into 16-byte commands written into the queue in
 * batches of up to 8, each batch followed by a doorbell.  When the model
 * reports a command error the harness does what the Linux driver does
 * (replace the bad command by a CMD_SYNC, acknowledge GERRORN).  After each
 * batch every endpoint does a DMA read with and without a PASID.
 *
 * Checked: no crash or sanitizer report, CMDQ_CONS never passes CMDQ_PROD,
 * an outstanding CMDQ_ERR always comes with CERROR_ILL or CERROR_ABT in
 * CMDQ_CONS.ERR, the queue always drains after the acknowledgement, and
 * StreamID 1 translates to its page whenever it translates at all.
 */
#define FX_RAM_SIZE (4ull << 20)
#include "fuzz_ram.h"
#include "unit/test_smmuv3_fixture.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

#define DATA 0x300000ull

static uint64_t le64in(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void die(const char *why)
{
	fprintf(stderr, "fuzz_smmuv3_cmdq: %s\n", why);
	abort();
}

/* prepare() - STEs for StreamIDs 1-3 and their tables. */
static int prepare(struct fx *f)
{
	struct lpae_cfg c1, c2;
	uint64_t r1, r2, q[8], cd = fx_alloc(f, 64, 64);

	if (fx_lcfg(&c1, LPAE_STAGE1, 4096, 48, 48) ||
	    lpae_alloc_root(&c1, &f->ops, &r1) ||
	    lpae_map(&c1, &f->ops, r1, 0x1000, DATA, 0x1000, VIOMMU_READ))
		return -1;
	fx_cd(q, &c1, r1, 1);
	for (int i = 0; i < 8; i++)
		gw64(f, cd + 8 * i, q[i]);
	fx_ste_s1(q, cd, 0, 0, 0);
	fx_ste(f, 1, q);
	memset(q, 0, sizeof(q));
	q[0] = 1 | (4u << 1);
	fx_ste(f, 2, q);
	if (fx_lcfg(&c2, LPAE_STAGE2, 4096, 40, 40) ||
	    lpae_alloc_root(&c2, &f->ops, &r2) ||
	    lpae_map(&c2, &f->ops, r2, 0, 0, 0x200000, VIOMMU_READ))
		return -1;
	memset(q, 0, sizeof(q));
	fx_ste_add_s2(q, &c2, r2, 2);
	fx_ste(f, 3, q);
	for (uint32_t s = 1; s <= 3; s++)
		if (!fx_cfgi_ste(f, s))
			return -1;
	return 0;
}

/* check_queue() - queue invariants; acknowledge an error like Linux. */
static void check_queue(struct fx *f)
{
	uint32_t w = (2u << FX_Q_LOG2) - 1, m = (1u << FX_Q_LOG2) - 1;

	for (int tries = 0; tries < 16; tries++) {
		uint32_t cons = (uint32_t)mr(f, 0x9c, 4);
		uint32_t err = (cons >> 24) & 0x7f;
		uint32_t active = (uint32_t)(mr(f, 0x60, 4) ^ mr(f, 0x64, 4));

		if (((f->cmd_prod - cons) & w) > (1u << FX_Q_LOG2))
			die("CONS passed PROD");
		if (!(active & 1)) {
			if ((cons & w) != f->cmd_prod)
				die("queue not drained");
			return;
		}
		if (err != 1 && err != 2)
			die("CMDQ_ERR without CERROR_ILL/ABT");
		gw64(f, f->cmdq + (uint64_t)(cons & m) * 16, 0x46);
		gw64(f, f->cmdq + (uint64_t)(cons & m) * 16 + 8, 0);
		mw(f, 0x64, 4, (uint32_t)mr(f, 0x60, 4));
	}
	die("command errors did not settle");
}

/* dmas() - every endpoint reads; StreamID 1 must see its page. */
static void dmas(struct fx *f)
{
	uint64_t e[4];
	uint32_t v;

	for (int i = 0; i < FX_NEP; i++) {
		viommu_dma_read(f->ep[i], VIOMMU_NO_PASID, 0x1000, &v, 4);
		viommu_dma_read(f->ep[i], 1, 0x1000, &v, 4);
	}
	if (!viommu_dma_read(f->ep[1], VIOMMU_NO_PASID, 0x1000, &v, 4) &&
	    v != 0x600dcafe && mr(f, 0x20, 4) & 1)
		die("StreamID 1 translated elsewhere");
	while (fx_evt(f, e))
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct viommu_smmuv3_config c = { .size = sizeof(c) };
	struct fx f;
	uint32_t magic = 0x600dcafe;

	if (n < 1)
		return 0;
	c.features = VIOMMU_SMMUV3_F_DEFAULT;
	if (d[0] & 1)
		c.features &= ~VIOMMU_SMMUV3_F_STAGE2;
	if (d[0] & 2)
		c.features &= ~VIOMMU_SMMUV3_F_RIL;
	if (d[0] & 4)
		c.features &= ~VIOMMU_SMMUV3_F_MSI;
	if (fx_init(&f, &c) || fx_reset(&f) || prepare(&f))
		die("setup");
	memcpy(f.ram + DATA, &magic, 4);
	d++;
	n--;
	while (n >= 16) {
		uint32_t m = (1u << FX_Q_LOG2) - 1, w = (2u << FX_Q_LOG2) - 1;
		int k;

		for (k = 0; k < 8 && n >= 16; k++, d += 16, n -= 16) {
			uint64_t a = f.cmdq + (uint64_t)(f.cmd_prod & m) * 16;

			gw64(&f, a, le64in(d));
			gw64(&f, a + 8, le64in(d + 8));
			f.cmd_prod = (f.cmd_prod + 1) & w;
		}
		mw(&f, 0x98, 4, f.cmd_prod);
		check_queue(&f);
		memcpy(f.ram + DATA, &magic, 4);
		dmas(&f);
	}
	fx_fini(&f);
	return 0;
}
