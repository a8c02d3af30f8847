/*
 * xlate.c - SMMUv3 translation: the stage-1 op of each StreamID's NESTED
 * domain.  For a transaction (StreamID, optional SubstreamID = core PASID,
 * address, access) it finds the STE, picks the CD (SubstreamID, or the
 * S1DSS default), looks in the IOTLB, and otherwise walks stage 1 (the CD's
 * TTB0 or TTB1), stage 2 (the STE's S2TTB) or both nested - then every
 * stage-1 table address is an IPA that goes through stage 2 first (visitor
 * hook).  The result is a guest-physical address the core then reads.
 *
 * IOTLB: a direct-mapped array of struct tlb_entry.  An entry holds one
 * translation of a (combined) leaf, [lo, hi] -> out, tagged with VMID,
 * ASID (unless the stage-1 leaf is global, nG clear) and which stages made
 * it.  A hit needs the access within the cached permissions; otherwise the
 * walk runs again (so a write to a writable-clean page still reaches the
 * hardware dirty update).  Faults are never cached.  tlb_inval() serves
 * every TLBI command; invalidation scans the whole array (bounded).
 *
 * Faults become events (smmuv3_internal.h struct evt) written to the event
 * queue, unless CD.R / STE.S2R say not to record them; the op returns
 * -EFAULT.  A fault that stalls (CD.S for stage 1, STE.S2S for stage 2;
 * pri.c) is always recorded, with Stall and a STAG.  Everything runs under
 * smmu->lock (see smmuv3_internal.h).
 */
#include "smmuv3_internal.h"

/* struct xreq - one transaction being translated. */
struct xreq {
	struct viommu_smmuv3 *s;
	struct ste ste;
	struct cd cd;
	bool s1, s2;
	unsigned int acc;     /* walker access: VIOMMU_* | LPAE_ACC_PRIV */
	struct evt *e;
	uint64_t out;         /* result */
	uint64_t lo_off;      /* bytes of the leaf before the address */
	uint64_t hi_len;      /* bytes of the leaf from the address on */
	uint32_t perm;
	bool global;
};

/* tlb_slot() - the IOTLB slot of a tag and address. */
static struct tlb_entry *tlb_slot(struct viommu_smmuv3 *s, uint8_t stages,
				  uint16_t vmid, uint16_t asid, uint64_t va)
{
	uint64_t h = (va >> 12) * 0x9e3779b97f4a7c15ull;

	h ^= ((uint64_t)vmid << 24 | (uint64_t)asid << 4 | stages) *
	     0xc2b2ae3d27d4eb4full;
	return &s->tlb[(h ^ (h >> 29)) & s->tlb_mask];
}

/* tlb_lookup() - a usable entry for @va and the access, or NULL. */
static struct tlb_entry *tlb_lookup(struct xreq *x, uint64_t va)
{
	uint8_t st = (x->s1 ? TLB_S1 : 0) | (x->s2 ? TLB_S2 : 0);
	uint16_t vmid = x->ste.vmid, asid = x->s1 ? x->cd.asid : 0;
	struct tlb_entry *t = tlb_slot(x->s, st, vmid, asid, va);

	if (!t->valid || t->stages != st || t->vmid != vmid ||
	    (x->s1 && !t->global && t->asid != asid) ||
	    t->priv != !!(x->acc & LPAE_ACC_PRIV) || va < t->lo ||
	    va > t->hi || ((x->acc & 7) & ~t->perm))
		return NULL;
	return t;
}

/* tlb_insert() - remember the translation of @va just walked. */
static void tlb_insert(struct xreq *x, uint64_t va)
{
	uint8_t st = (x->s1 ? TLB_S1 : 0) | (x->s2 ? TLB_S2 : 0);
	uint16_t asid = x->s1 ? x->cd.asid : 0;
	struct tlb_entry *t = tlb_slot(x->s, st, x->ste.vmid, asid, va);

	t->valid = true;
	t->global = x->global;
	/* Stage-1 permissions depend on privilege (PRIVCFG): tag it. */
	t->priv = !!(x->acc & LPAE_ACC_PRIV);
	t->stages = st;
	t->vmid = x->ste.vmid;
	t->asid = asid;
	t->lo = va - x->lo_off;
	t->hi = va + (x->hi_len - 1);
	t->out = x->out - x->lo_off;
	t->perm = x->perm;
}

/* tlb_match() - whether entry @t falls under a TLBI selector. */
static bool tlb_match(const struct tlb_entry *t, unsigned int what,
		      uint16_t vmid, uint16_t asid, uint64_t lo, uint64_t hi)
{
	bool s1 = t->stages & TLB_S1, in = ranges_overlap(t->lo, t->hi, lo, hi);

	if (what == TLBI_ALL)
		return true;
	if (t->vmid != vmid)
		return false;
	switch (what) {
	case TLBI_VMID: return true;
	case TLBI_S1_VMID: return s1;
	case TLBI_S1_ASID: return s1 && !t->global && t->asid == asid;
	case TLBI_S1_VA: return s1 && in && (t->global || t->asid == asid);
	case TLBI_S1_VAA: return s1 && in;
	/* Combined entries cannot be found by IPA: drop them all. */
	case TLBI_S2_IPA: return s1 ? (t->stages & TLB_S2) : in;
	default: return false;
	}
}

/* tlb_inval() - drop every IOTLB entry the selector covers (lock held). */
void tlb_inval(struct viommu_smmuv3 *s, unsigned int what, uint16_t vmid,
	       uint16_t asid, uint64_t lo, uint64_t hi)
{
	for (uint32_t i = 0; i <= s->tlb_mask; i++) {
		struct tlb_entry *t = &s->tlb[i];

		if (t->valid && tlb_match(t, what, vmid, asid, lo, hi)) {
			t->valid = false;
			s->st.invalidations++;
		}
	}
}

/* table_hook() - nested: a stage-1 table address (IPA) through stage 2. */
static int table_hook(void *opaque, unsigned int level, uint64_t ipa,
		      unsigned int access, uint64_t *pa)
{
	struct xreq *x = opaque;
	struct lpae_result r;

	(void)level;
	return s2_translate(x->s, &x->ste.s2c, ipa, access & VIOMMU_WRITE ?
			    VIOMMU_WRITE : VIOMMU_READ, CLASS_TTD, pa, &r,
			    x->e);
}

/* walk_fault() - turn a failed stage-1 walk into its event. */
static int walk_fault(struct xreq *x, int ret, const struct lpae_result *r)
{
	if (ret == -EFAULT && r->fault == LPAE_FAULT_TABLE_HOOK)
		return -EFAULT; /* the hook filled the stage-2 event */
	if (ret == -EFAULT)
		evt_from_walk(r, x->e);
	else
		x->e->type = EVT_F_TRANSLATION;
	x->e->cls = x->e->type == EVT_F_WALK_EABT ? CLASS_TTD : CLASS_IN;
	if (!x->cd.record && !x->cd.stall && x->e->type != EVT_F_WALK_EABT)
		x->e->type = 0;
	return -EFAULT;
}

/* s1_half() - pick TTB0/TTB1 for @va; the in-range input in *@in. */
static const struct cd_half *s1_half(struct xreq *x, uint64_t va,
				     uint64_t *in)
{
	unsigned int sel = (va >> 55) & 1, top;
	const struct cd_half *h = &x->cd.t[sel];
	bool tbi = sel ? x->cd.tbi1 : x->cd.tbi0;
	uint64_t upper, want;

	if (!h->enabled)
		return NULL;
	top = tbi ? 56 : 64;
	upper = top - h->lp.ias >= 64 ? 0 : (va >> h->lp.ias);
	if (top < 64)
		upper &= (1ull << (top - h->lp.ias)) - 1;
	want = sel ? (1ull << (top - h->lp.ias)) - 1 : 0;
	if (upper != want)
		return NULL;
	*in = va & ((1ull << h->lp.ias) - 1);
	return h;
}

/* walk_s1() - stage 1 of @va: x->out becomes the IPA (or PA). */
static int walk_s1(struct xreq *x, uint64_t va)
{
	static const struct lpae_visitor hook = { .table_addr = table_hook };
	const struct cd_half *h;
	struct lpae_result r;
	uint64_t in, off;
	int ret;

	h = s1_half(x, va, &in);
	if (!h) {
		x->e->type = x->cd.record || x->cd.stall ?
			     EVT_F_TRANSLATION : 0;
		x->e->cls = CLASS_IN;
		return -EFAULT;
	}
	ret = lpae_walk(&h->lp, x->s->mem, h->ttb, in, x->acc,
			x->s2 ? &hook : NULL, x, &r);
	if (ret == -EFAULT && r.fault == LPAE_FAULT_ACCESS && x->cd.affd &&
	    !((x->acc & 7) & ~r.perm))
		ret = 0; /* AFFD: access flag faults disabled */
	if (ret)
		return walk_fault(x, ret, &r);
	off = in & (r.size - 1);
	x->out = r.oa;
	x->lo_off = off;
	x->hi_len = r.size - off;
	x->perm = r.perm;
	x->global = !r.desc.ng;
	return 0;
}

/* walk_s2() - stage 2 of x->out (an IPA), narrowing the leaf span. */
static int walk_s2(struct xreq *x)
{
	struct lpae_result r;
	uint64_t pa, off;

	if (s2_translate(x->s, &x->ste.s2c, x->out, x->acc & 7, CLASS_IN,
			 &pa, &r, x->e))
		return -EFAULT;
	off = x->out & (r.size - 1);
	x->out = pa;
	x->lo_off = MIN(x->lo_off, off);
	x->hi_len = MIN(x->hi_len, r.size - off);
	x->perm &= r.perm;
	return 0;
}

/*
 * pick_cd() - apply SubstreamID rules and load the CD if stage 1 applies
 * to this transaction (x->s1 may become false for S1DSS bypass).
 */
static int pick_cd(struct xreq *x, uint32_t sid, const struct evt *in)
{
	const struct ste *t = &x->ste;
	uint32_t ssid = 0;

	if (in->ssv) {
		if (!x->s1 || !t->s1cdmax || (in->ssid >> t->s1cdmax) ||
		    (t->s1dss == 2 && in->ssid == 0)) {
			x->e->type = EVT_C_BAD_SUBSTREAMID;
			return -EFAULT;
		}
		ssid = in->ssid;
	} else if (x->s1 && t->s1cdmax) {
		if (t->s1dss == 0) {
			x->e->type = EVT_F_STREAM_DISABLED;
			return -EFAULT;
		}
		if (t->s1dss == 1)
			x->s1 = false;
	}
	if (!x->s1)
		return 0;
	return cd_get(x->s, t, sid, ssid, &x->cd, x->e);
}

/* translate() - the whole translation under the lock. */
static int translate(struct xreq *x, uint32_t sid, uint64_t va,
		     unsigned int access)
{
	struct viommu_smmuv3 *s = x->s;
	struct tlb_entry *t;

	if (!smmu_enabled(s))
		goto gbpa;
	if (ste_get(s, sid, &x->ste, x->e))
		return -EFAULT;
	if (x->ste.config == STE_CFG_ABORT)
		return -EFAULT; /* silent abort */
	if (x->ste.config == STE_CFG_BYPASS)
		goto bypass;
	x->s1 = x->ste.s1;
	x->s2 = x->ste.s2;
	x->acc = access & 7;
	if (x->ste.privcfg == 3)
		x->acc |= LPAE_ACC_PRIV;
	x->e->pnu = x->acc & LPAE_ACC_PRIV;
	if (pick_cd(x, sid, x->e))
		return -EFAULT;
	if (!x->s1 && !x->s2)
		goto bypass;
	t = tlb_lookup(x, va);
	if (t) {
		s->st.iotlb_hits++;
		x->out = t->out + (va - t->lo);
		x->hi_len = t->hi - va + 1;
		x->perm = t->perm;
		return 0;
	}
	s->st.iotlb_misses++;
	x->out = va;
	x->lo_off = va & 0xfff;
	x->hi_len = 0x1000 - x->lo_off;
	x->perm = VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC;
	if (x->s1 && walk_s1(x, va))
		return -EFAULT;
	if (x->s2 && walk_s2(x))
		return -EFAULT;
	if (!x->s1) {
		/* stage-2 only: the leaf span is the stage-2 one. */
		x->global = false;
	}
	tlb_insert(x, va);
	return 0;
gbpa:
	if (s->gbpa & GBPA_ABORT)
		return -EFAULT;
bypass:
	x->out = va;
	x->hi_len = va ? (0 - va) : UINT64_MAX;
	x->perm = VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC;
	return 0;
}

/* record() - whether event @e goes to the queue. */
static bool record(const struct viommu_smmuv3 *s, const struct evt *e)
{
	if (!e->type)
		return false;
	return e->type != EVT_C_BAD_STREAMID || (s->cr2 & CR2_RECINVSID);
}

int xlate_op(void *opaque, uint32_t pasid, uint64_t iova,
	     unsigned int access, uint64_t *ipa, uint64_t *len,
	     uint32_t *perm)
{
	struct smmu_ep *sep = opaque;
	struct viommu_smmuv3 *s = sep->smmu;
	struct irq_batch b = { 0 };
	struct evt e = { 0 };
	struct xreq x = { .s = s, .e = &e };
	int ret;

	e.sid = sep->sid;
	e.ssv = pasid != VIOMMU_NO_PASID;
	e.ssid = e.ssv ? pasid : 0;
	e.addr = iova;
	e.rnw = !(access & VIOMMU_WRITE);
	e.ind = access & VIOMMU_EXEC;
	pthread_mutex_lock(&s->lock);
	s->st.translations++;
	x.hi_len = 1;
	ret = translate(&x, sep->sid, iova, access);
	if (ret) {
		s->st.faults++;
		if (e.type && stall_applies(&x.ste, &x.cd, x.s1, &e))
			stall_fault(s, &e, &b);
		else if (record(s, &e))
			evtq_write(s, &e, &b);
	}
	pthread_mutex_unlock(&s->lock);
	irq_deliver(s, &b);
	if (ret)
		return -EFAULT;
	*ipa = x.out;
	*len = x.hi_len;
	*perm = x.perm;
	return 0;
}
