/*
 * tables.c - the VT-d translation structures above the page tables: root
 * entries, context entries (legacy 128-bit and scalable-mode 256-bit),
 * the PASID directory and PASID table entries.  vtd_cfg_get() turns a
 * request's (source-id, PASID) into a struct vtd_cfg, or into the
 * architected fault reason (rules T2, T3).
 *
 * Every entry is copied out of guest memory once (viommu_mem_read), then
 * validated, then used.  The walk has a fixed depth (root, context,
 * directory, PASID entry), so pointers to nowhere are fetch faults and
 * pointers to themselves or to each other are read as whatever bytes they
 * name: never a loop.  Reserved fields set in a present entry are the
 * entry's "non-zero reserved field" reason; field values the model does
 * not support (an address width not in SAGAW, a translation type it does
 * not advertise, DTE or PRE set) are "invalid entry" reasons.  FPD in a
 * present context, directory or PASID entry suppresses the recording of
 * the faults found after it.
 */
#include "vtd_internal.h"

/* rd_entry() - copy @n bytes at @gpa into qwords.  0 or -EFAULT. */
static int rd_entry(struct viommu_vtd *v, uint64_t gpa, uint64_t *q,
		    unsigned int n)
{
	uint8_t raw[64];

	if (viommu_mem_read(v->mem, gpa, raw, n))
		return -EFAULT;
	for (unsigned int i = 0; i < n / 8; i++) {
		uint64_t x = 0;

		for (int b = 7; b >= 0; b--)
			x = x << 8 | raw[i * 8 + b];
		q[i] = x;
	}
	return 0;
}

/* fail() - set the fault reason and return -EFAULT. */
static int fail(struct vtd_fault *f, uint8_t reason)
{
	f->reason = reason;
	return -EFAULT;
}

/* beyond() - whether the address field of @e passes the host width. */
static bool beyond(const struct viommu_vtd *v, uint64_t e)
{
	return (e & GENMASK(63, 12)) >> v->aw != 0;
}

/* sl_cfg() - second level with address-width field @aw; false if bad. */
static bool sl_cfg(const struct viommu_vtd *v, uint64_t aw,
		   struct vtdpt_cfg *c)
{
	if (aw < 1 || aw > 3 || !(v->cap & BIT(CAP_SAGAW_SHIFT + aw)))
		return false;
	c->fmt = VTDPT_SL;
	c->levels = (unsigned int)aw + 2;
	c->haw = v->aw;
	c->large = 3;
	return true;
}

/* legacy() - root and context entry in legacy mode. */
static int legacy(struct viommu_vtd *v, uint64_t rta, uint16_t sid,
		  struct vtd_cfg *out, struct vtd_fault *f)
{
	uint64_t re[2], ce[2];
	unsigned int t;

	if (rd_entry(v, rta + (uint64_t)(sid >> 8) * 16, re, 16))
		return fail(f, FR_ROOT_FETCH);
	if (!(re[0] & 1))
		return fail(f, FR_ROOT_P);
	if ((re[0] & GENMASK(11, 1)) || beyond(v, re[0]) || re[1])
		return fail(f, FR_ROOT_RSVD);
	if (rd_entry(v, (re[0] & GENMASK(63, 12)) + (sid & 0xffu) * 16ull,
		     ce, 16))
		return fail(f, FR_CTX_FETCH);
	if (!(ce[0] & 1))
		return fail(f, FR_CTX_P);
	f->fpd = out->fpd = ce[0] & 2;
	if ((ce[0] & GENMASK(11, 4)) || beyond(v, ce[0]) ||
	    (ce[1] & (BIT(7) | GENMASK(63, 24))))
		return fail(f, FR_CTX_RSVD);
	t = (unsigned int)FIELD(ce[0], 3, 2);
	out->did = (uint16_t)FIELD(ce[1], 23, 8);
	if (t == 2 && (v->ecap & ECAP_PT)) {
		out->pgtt = PGTT_PT;
		return 0;
	}
	if (t != 0 || !sl_cfg(v, ce[1] & 7, &out->sl))
		return fail(f, FR_CTX_INV);
	out->pgtt = PGTT_SL;
	out->slptr = ce[0] & GENMASK(63, 12);
	return 0;
}

/* pasid_entry() - decode the 512-bit PASID entry @pe. */
static int pasid_entry(struct viommu_vtd *v, const uint64_t *pe,
		       struct vtd_cfg *out, struct vtd_fault *f)
{
	unsigned int pgtt = (unsigned int)FIELD(pe[0], 8, 6);
	bool fl = v->features & VIOMMU_VTD_F_FL;

	if (!(pe[0] & 1))
		return fail(f, FR_SM_PE_P);
	if (pe[0] & 2)
		f->fpd = out->fpd = true;
	if ((pe[0] & GENMASK(11, 10)) || (pe[1] & GENMASK(22, 16)) ||
	    (pe[2] & GENMASK(11, 8)))
		return fail(f, FR_SM_PE_RSVD);
	out->pgtt = pgtt;
	out->did = (uint16_t)pe[1];
	switch (pgtt) {
	case PGTT_PT:
		if (!(v->ecap & ECAP_PT))
			return fail(f, FR_SM_PE_INV);
		return 0;
	case PGTT_FL:
	case PGTT_SL:
	case PGTT_NESTED:
		break;
	default:
		return fail(f, FR_SM_PE_INV);
	}
	if (pgtt != PGTT_SL) {
		unsigned int flpm = (unsigned int)FIELD(pe[2], 3, 2);

		if (!fl || flpm > 1 || (flpm == 1 && !(v->cap & CAP_FL5LP)))
			return fail(f, FR_SM_PE_INV);
		if (beyond(v, pe[2]))
			return fail(f, FR_SM_PE_RSVD);
		out->fl.fmt = VTDPT_FL;
		out->fl.levels = 4 + flpm;
		out->fl.haw = v->aw;
		out->fl.large = 3;
		out->flptr = pe[2] & GENMASK(63, 12);
	}
	if (pgtt != PGTT_FL) {
		if (!sl_cfg(v, FIELD(pe[0], 4, 2), &out->sl))
			return fail(f, FR_SM_PE_INV);
		if (beyond(v, pe[0]))
			return fail(f, FR_SM_PE_RSVD);
		out->slptr = pe[0] & GENMASK(63, 12);
	}
	return 0;
}

/* scalable() - root, context, PASID directory and entry (scalable mode). */
static int scalable(struct viommu_vtd *v, uint64_t rta, uint16_t sid,
		    uint32_t pasid, struct vtd_cfg *out, struct vtd_fault *f)
{
	uint64_t re[2], ce[4], de, pe[8], half;
	unsigned int devfn = sid & 0xff;
	uint32_t p;

	if (rd_entry(v, rta + (uint64_t)(sid >> 8) * 16, re, 16))
		return fail(f, FR_SM_ROOT_FETCH);
	half = re[devfn >= 128];
	if (!(half & 1))
		return fail(f, FR_SM_ROOT_P);
	if ((half & GENMASK(11, 1)) || beyond(v, half))
		return fail(f, FR_SM_ROOT_RSVD);
	if (rd_entry(v, (half & GENMASK(63, 12)) + (devfn & 127u) * 32ull,
		     ce, 32))
		return fail(f, FR_SM_CTX_FETCH);
	if (!(ce[0] & 1))
		return fail(f, FR_SM_CTX_P);
	f->fpd = out->fpd = ce[0] & 2;
	if ((ce[0] & GENMASK(8, 5)) || beyond(v, ce[0]) ||
	    (ce[1] & GENMASK(63, 21)) || ce[2] || ce[3])
		return fail(f, FR_SM_CTX_RSVD);
	if (ce[0] & (BIT(2) | BIT(4))) /* DTE, PRE: not supported */
		return fail(f, FR_SM_CTX_INV);
	if (pasid != VIOMMU_NO_PASID && !(ce[0] & BIT(3)))
		return fail(f, FR_SM_PASIDE);
	p = pasid != VIOMMU_NO_PASID ? pasid : (uint32_t)FIELD(ce[1], 19, 0);
	if ((p >> 6) >= (1u << (FIELD(ce[0], 11, 9) + 7)))
		return fail(f, FR_SM_PASID_MAX);
	if (rd_entry(v, (ce[0] & GENMASK(63, 12)) + (uint64_t)(p >> 6) * 8,
		     &de, 8))
		return fail(f, FR_SM_PDIR_FETCH);
	if (!(de & 1))
		return fail(f, FR_SM_PDIR_P);
	if (de & 2)
		f->fpd = out->fpd = true;
	if ((de & GENMASK(11, 2)) || beyond(v, de))
		return fail(f, FR_SM_PDIR_RSVD);
	if (rd_entry(v, (de & GENMASK(63, 12)) + (p & 63u) * 64ull, pe, 64))
		return fail(f, FR_SM_PTE_FETCH);
	return pasid_entry(v, pe, out, f);
}

/*
 * vtd_cfg_get() - the translation setup of (@sid, @pasid) (lock held).
 * Return: 0; -EFAULT with f->reason set (0: blocked without a record,
 * the root table in abort-DMA mode).
 */
int vtd_cfg_get(struct viommu_vtd *v, uint16_t sid, uint32_t pasid,
	    struct vtd_cfg *out, struct vtd_fault *f)
{
	uint64_t rta = v->rta_active & GENMASK(63, 12);
	unsigned int ttm = (unsigned int)RTADDR_TTM(v->rta_active);

	memset(out, 0, sizeof(*out));
	if (ttm == TTM_ABORT)
		return fail(f, 0);
	if (ttm == 2 || (ttm == TTM_SCALABLE &&
			 !(v->features & VIOMMU_VTD_F_SM)) || beyond(v, rta))
		return fail(f, FR_SM_RTADDR);
	if (ttm == TTM_LEGACY) {
		if (pasid != VIOMMU_NO_PASID)
			return fail(f, FR_SM_PASID_TTM0);
		return legacy(v, rta, sid, out, f);
	}
	return scalable(v, rta, sid, pasid, out, f);
}
