/*
 * fuzz_regframe.c - libFuzzer target for the polled register frame
 * (src/link/regframe.c) in front of our SMMUv3 model
 * (regframe_smmuv3_ops): a hostile guest storing anything into the frame
 * in its RAM, in any order, between polling rounds.
 *
 * The input is cut into 10-byte records: byte 0 picks a register of the
 * ops table (modulo its size; an index past it stores at a random
 * 8-byte-aligned offset of the frame instead, as a guest may store
 * anywhere), bytes 1-8 are the value (little endian, cut to the
 * register's size), and byte 9's low bit asks for a polling round after
 * the store (bit 1: also a DMA read by StreamID 0, which may fault and
 * write an event).  One round always runs at the end.  Queues and tables
 * the guest points anywhere lie in the fixture's RAM (which holds the
 * frame itself).
 *
 * Checked: no crash or sanitizer report, every round returns 0 (the frame
 * is RAM), and after every round that published, every register of the
 * table reads in the frame exactly what the model returns for it (the
 * publish invariant: nothing the guest stored survives a publish unless
 * the model agrees).
 */
#define FX_RAM_SIZE (4ull << 20)
#include "fuzz_ram.h"
#include "unit/test_smmuv3_fixture.h"
#include "link/regframe.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

#define FRAME 0x40000ull
#define REC 10

static void die(const char *why, uint32_t off)
{
	fprintf(stderr, "fuzz_regframe: %s (offset %#x)\n", why, off);
	abort();
}

static uint64_t le64in(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* check() - after a publishing round: the frame holds the model's view. */
static void check(struct fx *f)
{
	const struct regframe_ops *ops = &regframe_smmuv3_ops;

	for (unsigned int i = 0; i < ops->nregs; i++) {
		const struct regframe_reg *r = &ops->regs[i];
		void *p = f->ram + FRAME + r->offset;
		uint64_t want = 0, got;

		if (viommu_smmuv3_mmio_read(f->smmu, r->offset, r->size,
					    &want))
			continue;
		got = r->size == 8 ? *(uint64_t *)p : *(uint32_t *)p;
		if (r->size == 4)
			want &= 0xffffffffull;
		if (got != want)
			die("frame differs from the model after a publish",
			    r->offset);
	}
}

/* round() - one polling round; check the invariant if it published. */
static void round_once(struct fx *f, struct regframe *rf)
{
	bool changed = false;

	if (regframe_round(rf, &changed))
		die("round failed on a frame in RAM", 0);
	if (changed)
		check(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	const struct regframe_ops *ops = &regframe_smmuv3_ops;
	struct regframe_config c = { .size = sizeof(c), .ops = ops,
				     .gpa = FX_RAM_GPA + FRAME };
	struct regframe *rf = NULL;
	struct fx f;

	if (n > 4096 * REC)
		return -1;
	if (fx_init(&f, NULL))
		die("fixture", 0);
	c.model = f.smmu;
	c.mem = f.mem;
	if (regframe_create(&c, &rf))
		die("create", 0);
	round_once(&f, rf);
	for (size_t at = 0; at + REC <= n; at += REC) {
		const uint8_t *r = d + at;
		uint64_t v = le64in(r + 1);
		uint32_t off;
		unsigned int size;

		if (r[0] < ops->nregs) {
			off = ops->regs[r[0]].offset;
			size = ops->regs[r[0]].size;
		} else {
			off = (uint32_t)(v >> 40) % (VIOMMU_SMMUV3_MMIO_SIZE /
						     8) * 8;
			size = 8;
		}
		if (size == 8)
			*(uint64_t *)(f.ram + FRAME + off) = v;
		else
			*(uint32_t *)(f.ram + FRAME + off) = (uint32_t)v;
		if (r[9] & 2) {
			struct viommu_xlate x;
			struct viommu_fault flt;

			viommu_translate(f.ep[0], VIOMMU_NO_PASID, v & 0xffff000,
					 8, VIOMMU_READ, &x, &flt);
		}
		if (r[9] & 1)
			round_once(&f, rf);
	}
	round_once(&f, rf);
	regframe_destroy(rf);
	fx_fini(&f);
	return 0;
}
