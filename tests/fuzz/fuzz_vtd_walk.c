/*
 * fuzz_vtd_walk.c - libFuzzer target for the VT-d translation structures
 * and page-table walker: root, context (legacy and scalable), PASID
 * directory and PASID entries, second- and first-level tables, all taken
 * from the input.
 *
 * Input: byte 0 picks the mode (bit 0 scalable, bit 1 5-level support,
 * bit 2 a 39-bit unit), byte 1 how many requests to make; then up to
 * 32 KiB are copied into a window of guest RAM at WIN.  The root table is
 * the window's first page, so every pointer the input holds lands in the
 * window, elsewhere in RAM, or outside RAM (the top of the window holds
 * the request list: 16 bytes each, endpoint, PASID, IOVA, access).
 *
 * Checked, beyond survival: a request that succeeded once gives the same
 * output when repeated (an IOTLB hit) and again after a global IOTLB
 * invalidation (a fresh walk of the unchanged tables); its output lies
 * in RAM; FSTS.FRI stays below the number of records and PPF is set
 * exactly when a record holds F; every failure with a reason leaves a
 * record or overflow (PFO) unless an entry's FPD applied - only counted
 * here, as FPD cannot be told from outside.  The walker is
 * also driven directly with a configuration from the input: a successful
 * walk's output keeps the input's offset within the leaf.
 */
#define FX_RAM_SIZE (4ull << 20)
#include "fuzz_ram.h"
#include "unit/test_vtd_fixture.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

#define WIN 0x200000ull
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define WIN_SIZE 0x8000ull

static void die(const char *why)
{
	fprintf(stderr, "fuzz_vtd_walk: %s\n", why);
	abort();
}

static uint64_t le64in(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* check_faults() - FSTS/FRCD invariants. */
static void check_faults(struct fx *f)
{
	uint32_t fsts = (uint32_t)mr(f, VR_FSTS, 4);
	bool any = false;

	if (((fsts >> 8) & 0xff) >= 8)
		die("FRI beyond NFR");
	for (unsigned int i = 0; i < 8; i++)
		any |= fx_frcd_hi(f, i) >> 63;
	if (any != !!(fsts & 2))
		die("PPF does not match the records");
}

/* request() - one request from the list, checked. */
static void request(struct fx *f, const uint8_t *r)
{
	int i = r[0] % FX_NEP;
	uint32_t pasid = (r[1] & 1) ? (uint32_t)(le64in(r) >> 8) & 0xfffff :
		VIOMMU_NO_PASID;
	uint64_t iova = le64in(r + 8);
	unsigned int acc = (r[1] >> 1) & 1 ? VIOMMU_WRITE : VIOMMU_READ;
	struct viommu_xlate x1, x2, x3;
	struct viommu_vtd_stats a, b;

	if (r[1] & 4)
		iova &= 0xffffffffull;
	viommu_vtd_stats(f->vtd, &a, sizeof(a));
	if (viommu_translate(f->ep[i], pasid, iova, 4, acc, &x1, NULL)) {
		viommu_vtd_stats(f->vtd, &b, sizeof(b));
		/* a refusal by the model is counted (a PASID the core does
		 * not route never reaches it) */
		if (b.translations != a.translations && b.faults == a.faults)
			die("a failed translation was not counted");
		check_faults(f);
		return;
	}
	if (x1.hva && (x1.gpa >= FX_RAM_SIZE || x1.gpa + x1.len > FX_RAM_SIZE))
		die("host pointer outside RAM");
	if (viommu_translate(f->ep[i], pasid, iova, 4, acc, &x2, NULL) ||
	    x2.gpa != x1.gpa)
		die("a repeated translation changed");
	fx_desc(f, D_IOTLB_GLOBAL, 0);
	if (!(mr(f, VR_FSTS, 4) & (1u << 4)) &&
	    (viommu_translate(f->ep[i], pasid, iova, 4, acc, &x3, NULL) ||
	     x3.gpa != x1.gpa))
		die("a fresh walk of the same tables differs");
	check_faults(f);
}

/* walker() - vtdpt_walk() directly with a configuration from @c. */
static void walker(struct fx *f, const uint8_t *c)
{
	struct vtdpt_cfg cfg = {
		.fmt = c[0] & 1 ? VTDPT_FL : VTDPT_SL,
		.levels = 3 + (c[1] % 3),
		.haw = 39 + (c[2] % 14),
		.large = 1 + (c[3] % 3),
	};
	uint64_t iova = le64in(c + 8);
	struct vtdpt_result r;

	if (!vtdpt_cfg_ok(&cfg))
		return;
	if (vtdpt_walk(&cfg, f->mem, WIN + ((c[4] & 7) << 12), iova,
		       c[5] & 7, NULL, NULL, &r) == 0) {
		if ((r.oa & (r.size - 1)) != (iova & (r.size - 1)))
			die("walk lost the offset within the leaf");
		if (r.size != 4096 && r.size != (2u << 20) &&
		    r.size != (1u << 30))
			die("bad leaf size");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct viommu_vtd_config c = { 0 };
	struct fx f;
	unsigned int nreq;
	size_t len;

	if (n < 2)
		return 0;
	c.features = VIOMMU_VTD_F_QI | VIOMMU_VTD_F_PT;
	if (d[0] & 1)
		c.features |= VIOMMU_VTD_F_SM | VIOMMU_VTD_F_FL;
	if (d[0] & 2)
		c.features |= VIOMMU_VTD_F_5LVL;
	else if (d[0] & 4)
		c.aw_bits = 39;
	nreq = d[1] % 32;
	if (fx_init(&f, &c))
		die("setup");
	len = MIN(n - 2, WIN_SIZE);
	memcpy(f.ram + WIN, d + 2, len);
	/* fx_enable() takes the next free pages: point it at the window */
	f.next = 0x100000;
	if (fx_enable(&f, d[0] & 1))
		die("enable");
	mw(&f, VR_RTADDR, 8, WIN | ((d[0] & 1) ? 1ull << 10 : 0));
	fx_gcmd(&f, GC_SRTP, true);
	fx_flush_all(&f);
	for (unsigned int i = 0; i < nreq; i++) {
		const uint8_t *r = f.ram + WIN + WIN_SIZE - 16 * (i + 1);

		request(&f, r);
		walker(&f, r);
	}
	fx_fini(&f);
	return 0;
}
