/*
 * fuzz_regframe_vtd.c - libFuzzer target for the polled register frame
 * (src/link/regframe.c) in front of our VT-d model (regframe_vtd_ops): a
 * hostile guest storing anything into the frame in its RAM, in any order,
 * between polling rounds.
 *
 * The input is cut into 10-byte records: byte 0 picks one of the frame's
 * registers that a unit with 8 fault records has (the list's entries
 * below R_FRCD + 8 x 16, in list order; an index past them stores at a
 * random 8-byte-aligned offset of the frame instead, as a guest may store
 * anywhere), bytes 1-8 are the value (little endian, cut to the register's
 * size), and byte 9's low bit asks for a polling round after the store
 * (bit 1: also a DMA read by source-id 0x08, which may fault and fill a
 * fault record).  One round always runs at the end.  Root tables, queues
 * and status addresses the guest points anywhere lie in the fixture's RAM
 * (which holds the frame itself).
 *
 * Checked: no crash or sanitizer report, every round returns 0 (the frame
 * is RAM), and after every round that published, every register of the
 * unit reads in the frame exactly what the model returns for it - unless
 * the round lost a compare-and-swap (the model's own DMA, an invalidation
 * wait's status write, landed on a writable register: a store the frame
 * must keep) or hit the poll budget (a queue slice still pending, which
 * the model runs on its next register access, the check's included).
 */
#define FX_RAM_SIZE (4ull << 20)
#include "fuzz_ram.h"
#include "unit/test_vtd_fixture.h"
#include "link/regframe.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

#define FRAME 0x40000ull
#define REC 10
#define NFR 8

static void die(const char *why, uint32_t off)
{
	fprintf(stderr, "fuzz_regframe_vtd: %s (offset %#x)\n", why, off);
	abort();
}

static uint64_t le64in(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* in_unit() - whether list entry @r exists on a unit of NFR records. */
static bool in_unit(const struct regframe_reg *r)
{
	return r->offset < VR_FRCD || r->offset >= VR_FRCD + 16 * 128 ||
	       r->offset < VR_FRCD + 16 * NFR;
}

/* check() - after a publishing round: the frame holds the model's view. */
static void check(struct fx *f)
{
	const struct regframe_ops *ops = &regframe_vtd_ops;

	for (unsigned int i = 0; i < ops->nregs; i++) {
		const struct regframe_reg *r = &ops->regs[i];
		void *p = f->ram + FRAME + r->offset;
		uint64_t want = 0, got;

		if (viommu_vtd_mmio_read(f->vtd, r->offset, r->size, &want))
			continue;
		got = r->size == 8 ? *(uint64_t *)p : *(uint32_t *)p;
		if (r->size == 4)
			want &= 0xffffffffull;
		if (got != want)
			die("frame differs from the model after a publish",
			    r->offset);
	}
}

/* round_once() - one polling round; check the invariant if it applies. */
static void round_once(struct fx *f, struct regframe *rf)
{
	struct viommu_regframe_stats a, b;
	bool changed = false;

	regframe_stats(rf, &a);
	if (regframe_round(rf, &changed))
		die("round failed on a frame in RAM", 0);
	regframe_stats(rf, &b);
	if (changed && a.cas_lost == b.cas_lost &&
	    a.poll_capped == b.poll_capped)
		check(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	const struct regframe_ops *ops = &regframe_vtd_ops;
	struct viommu_vtd_config vc = { .nfr = NFR,
					.features = VIOMMU_VTD_F_ALL &
						    ~VIOMMU_VTD_F_5LVL };
	struct regframe_config c = { .size = sizeof(c), .ops = ops,
				     .gpa = FX_RAM_GPA + FRAME };
	const struct regframe_reg *pick[REGFRAME_MAX_REGS];
	unsigned int npick = 0;
	struct regframe *rf = NULL;
	struct fx f;

	if (n > 4096 * REC)
		return -1;
	for (unsigned int i = 0; i < ops->nregs; i++)
		if (in_unit(&ops->regs[i]))
			pick[npick++] = &ops->regs[i];
	if (fx_init(&f, &vc))
		die("fixture", 0);
	c.model = f.vtd;
	c.mem = f.mem;
	if (regframe_create(&c, &rf))
		die("create", 0);
	round_once(&f, rf);
	for (size_t at = 0; at + REC <= n; at += REC) {
		const uint8_t *r = d + at;
		uint64_t v = le64in(r + 1);
		uint32_t off;
		unsigned int size;

		if (r[0] < npick) {
			off = pick[r[0]]->offset;
			size = pick[r[0]]->size;
		} else {
			off = (uint32_t)(v >> 40) % (VIOMMU_VTD_MMIO_SIZE / 8) *
			      8;
			size = 8;
		}
		if (size == 8)
			*(uint64_t *)(f.ram + FRAME + off) = v;
		else
			*(uint32_t *)(f.ram + FRAME + off) = (uint32_t)v;
		if (r[9] & 2) {
			struct viommu_xlate x;
			struct viommu_fault flt;

			viommu_translate(f.ep[0], VIOMMU_NO_PASID,
					 v & 0xffff000, 8, VIOMMU_READ, &x,
					 &flt);
		}
		if (r[9] & 1)
			round_once(&f, rf);
	}
	round_once(&f, rf);
	regframe_destroy(rf);
	fx_fini(&f);
	return 0;
}
