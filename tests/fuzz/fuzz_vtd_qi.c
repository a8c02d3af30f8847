/*
 * fuzz_vtd_qi.c - libFuzzer target for the VT-d invalidation queue and the
 * registers around it.
 *
 * A unit is enabled the way the Linux driver does it (legacy or scalable
 * mode, from byte 0), endpoint 0 gets a stable mapping IOVA -> DATA, and
 * the rest of the input is a list of steps (byte 0 of each picks it):
 *   0: a batch of up to 8 descriptors (16 or 32 bytes each from the
 *      input) written at the tail, then the tail register written;
 *   1: a raw IQT value from the input (tails past the queue, misaligned);
 *   2: a GCMD write from the input (TE, QIE, SRTP flipped at any time);
 *   3: a 32- or 64-bit write of any register from the input;
 *   4: the Linux fault handler (records cleared, FSTS written back).
 * After an invalidation queue error the harness does what Linux's
 * qi_check_fault() does: rewrite the descriptor at IQH as an invalidation
 * wait and clear FSTS.IQE.
 *
 * Checked: viommu_vtd_poll() finishes a queue left by slices within its
 * size; IQH stays inside the queue and aligned to the descriptor size;
 * an active IQE comes with an IQEI code 1..5; after recovery the queue is
 * drained (IQH == IQT) whenever it is enabled and the tail valid; and as
 * long as the root table was not touched (RTADDR, SRTP, or a wait's
 * status write into the tables or the data page) and TE is set, endpoint
 * 0 reads DATA's magic at IOVA (invalidations never change what tables
 * say).
 */
#define FX_RAM_SIZE (4ull << 20)
#include "fuzz_ram.h"
#include "unit/test_vtd_fixture.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

#define DATA 0x300000ull
#define MAP_IOVA 0x10000ull
#define MAGIC 0x600dcafeu

static void die(const char *why)
{
	fprintf(stderr, "fuzz_vtd_qi: %s\n", why);
	abort();
}

static uint64_t le64in(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t le32in(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* prepare() - endpoint 0: IOVA -> DATA, read-only. */
static int prepare(struct fx *f)
{
	struct vtdpt_cfg c = fx_cfg(VTDPT_SL, 4);
	uint64_t root;

	if (vtdpt_alloc_root(&f->ops, &root) ||
	    vtdpt_map(&c, &f->ops, root, MAP_IOVA, DATA, 4096, VIOMMU_READ))
		return -1;
	if (f->sm) {
		uint64_t dir = fx_sm_ctx(f, fx_sids[0], 0);

		fx_pasid_entry(f, dir, 0, 2, 1, root, 2, 0, 0);
	} else {
		fx_legacy_ctx(f, fx_sids[0], 1, root, 2, 0);
	}
	return fx_flush_all(f) ? 0 : -1;
}

/* overlaps_state() - whether a 4-byte status write at @a hits the
 * structures or the data page the stable mapping relies on. */
static bool overlaps_state(const struct fx *f, uint64_t a)
{
	a &= ~3ull;
	return (a + 4 > 0x100000 && a < f->next) ||
	       (a + 4 > DATA && a < DATA + 4096);
}

/* check() - queue invariants; recover from IQE like Linux. */
static void check(struct fx *f, bool tables_ok)
{
	uint64_t sz = f->wide ? 32 : 16, bytes = 4096ull << FX_QS;
	uint32_t v;

	for (int tries = 0; tries < 4; tries++) {
		uint64_t iqh, iqt;
		int polls = 0;

		/* a queue larger than a slice: drive it like an idle loop */
		while (viommu_vtd_poll(f->vtd) == 1)
			if (++polls > 200)
				die("viommu_vtd_poll() never finished");
		iqh = mr(f, VR_IQH, 8);
		iqt = mr(f, VR_IQT, 8);
		uint32_t fsts = (uint32_t)mr(f, VR_FSTS, 4);
		uint64_t iqa = mr(f, VR_IQA, 8);
		uint64_t qb = 4096ull << (iqa & 7);

		if (iqh >= qb || (iqh & 0xf))
			die("IQH outside the queue");
		if (fsts & (1u << 4)) {
			unsigned int iqei = mr(f, VR_IQERCD, 8) & 0xf;

			if (iqei < 1 || iqei > 5)
				die("IQE without a reason");
			if ((iqa & ~0xfffull) == f->iq && iqh + sz <= bytes) {
				gw64(f, f->iq + iqh, 5);
				gw64(f, f->iq + iqh + 8, 0);
				if (f->wide) {
					gw64(f, f->iq + iqh + 16, 0);
					gw64(f, f->iq + iqh + 24, 0);
				}
			}
			mw(f, VR_FSTS, 4, 1u << 4);
			continue;
		}
		if ((mr(f, VR_GSTS, 4) & GC_QIE) && iqt < qb &&
		    (iqa & ~0xfffull) == f->iq && !(f->wide && (iqt & 0x10)) &&
		    iqh != iqt)
			die("queue not drained");
		break;
	}
	if (tables_ok && (mr(f, VR_GSTS, 4) & GC_TE)) {
		if (fx_read(f, 0, VIOMMU_NO_PASID, MAP_IOVA, &v) || v != MAGIC)
			die("a stable mapping changed");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct viommu_vtd_config c = { 0 };
	struct fx f;
	bool sm, tables_ok = true;
	uint32_t magic = MAGIC;

	if (n < 1)
		return 0;
	sm = d[0] & 1;
	c.features = VIOMMU_VTD_F_QI | VIOMMU_VTD_F_PT |
		     (sm ? VIOMMU_VTD_F_SM | VIOMMU_VTD_F_FL : 0);
	if (fx_init(&f, &c) || fx_enable(&f, sm) || prepare(&f))
		die("setup");
	memcpy(f.ram + DATA, &magic, 4);
	d++;
	n--;
	while (n >= 1) {
		unsigned int op = d[0] % 5;
		size_t sz = f.wide ? 32 : 16;

		d++;
		n--;
		if (op == 0) {
			for (int k = 0; k < 8 && n >= sz; k++, d += sz, n -= sz) {
				uint64_t at = f.iq + (f.iqt % (4096ull << FX_QS));

				for (size_t q = 0; q < sz; q += 8)
					gw64(&f, at + q, le64in(d + q));
				/* a wait's status write may land on the
				 * tables or the data: the guest's own doing */
				if ((le64in(d) & 0xe2f) == 0x25 &&
				    overlaps_state(&f, le64in(d + 8)))
					tables_ok = false;
				f.iqt = (f.iqt + sz) % (4096ull << FX_QS);
			}
			mw(&f, VR_IQT, 8, f.iqt);
		} else if (op == 1 && n >= 4) {
			mw(&f, VR_IQT, 4, le32in(d));
			d += 4;
			n -= 4;
		} else if (op == 2 && n >= 4) {
			uint32_t g = le32in(d);

			if (g & GC_SRTP)
				tables_ok = false;
			mw(&f, VR_GCMD, 4, g);
			d += 4;
			n -= 4;
		} else if (op == 3 && n >= 10) {
			uint64_t off = (d[0] | (uint64_t)d[1] << 8) & 0xff8;

			if (off == VR_RTADDR)
				tables_ok = false;
			mw(&f, off | (d[1] & 0x80 ? 4 : 0), d[1] & 0x40 ? 8 : 4,
			   le64in(d + 2));
			d += 10;
			n -= 10;
		} else if (op == 4) {
			fx_clear_faults(&f, 8);
		} else {
			break;
		}
		/* the driver's view of the tail follows the register */
		f.iqt = mr(&f, VR_IQT, 8) % (4096ull << FX_QS);
		check(&f, tables_ok);
	}
	fx_fini(&f);
	return 0;
}
