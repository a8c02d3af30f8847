/*
 * xlate.c - VT-d translation: the stage-1 op of each endpoint's NESTED
 * domain.  For a request (source-id, optional PASID, address, access) it
 * decodes the root/context/PASID entries (tables.c), then translates as
 * the entry says: second level, first level, nested (every first-level
 * table address and the first-level output go through the second level)
 * or pass-through.  The result is a guest-physical address the core then
 * reads.  Each translated page goes into the model's IOTLB (iotlb.c),
 * which answers later requests for it until the guest invalidates.
 *
 * Faults (rule T3) get the architected reason: legacy codes 1-0xd for a
 * legacy-mode root table, the scalable-mode codes 0x30-0x86 otherwise,
 * and go to the fault recording registers (regs.c) unless a present
 * entry's FPD says not to; the op returns -EFAULT.  Everything runs under
 * v->lock, which is also what serialises fault recording.
 */
#include "vtd_internal.h"

/* struct xreq - one request being translated. */
struct xreq {
	struct viommu_vtd *v;
	struct vtd_cfg c;
	struct vtd_fault *f;
	bool sm;
	uint8_t hook_reason;
};

/* reason() - the fault reason of walk fault @wf at @fmt. */
static uint8_t reason(const struct xreq *x, enum vtdpt_fault wf,
		      enum vtdpt_fmt fmt, bool write)
{
	if (!x->sm) {
		static const uint8_t legacy[] = {
			[VTDPT_F_RANGE] = FR_MGAW,
			[VTDPT_F_FETCH] = FR_PTE_FETCH,
			[VTDPT_F_RSVD] = FR_PTE_RSVD,
			[VTDPT_F_READ] = FR_READ,
			[VTDPT_F_WRITE] = FR_WRITE,
		};

		if (wf == VTDPT_F_NOT_PRESENT)
			return write ? FR_WRITE : FR_READ;
		return wf < ARRAY_SIZE(legacy) && legacy[wf] ?
		       legacy[wf] : FR_PTE_FETCH;
	}
	switch (wf) {
	case VTDPT_F_RANGE:
		return fmt == VTDPT_FL ? FR_SM_NONCANON : FR_SM_MGAW;
	case VTDPT_F_FETCH:
		return fmt == VTDPT_FL ? FR_SM_FL_FETCH : FR_SM_SL_FETCH;
	case VTDPT_F_NOT_PRESENT:
		if (fmt == VTDPT_FL)
			return FR_SM_FL_P;
		return write ? FR_SM_WRITE : FR_SM_READ;
	case VTDPT_F_RSVD:
		return fmt == VTDPT_FL ? FR_SM_FL_RSVD : FR_SM_SL_RSVD;
	case VTDPT_F_READ:
		return FR_SM_READ;
	case VTDPT_F_WRITE:
		return FR_SM_WRITE;
	case VTDPT_F_EXEC:
		return FR_SM_EXEC;
	case VTDPT_F_HOOK:
		return x->hook_reason;
	default:
		return FR_SM_SL_FETCH;
	}
}

/* sl_hook() - nested: a first-level table address through the SL. */
static int sl_hook(void *opaque, uint64_t addr, bool write, uint64_t *gpa)
{
	struct xreq *x = opaque;
	struct vtdpt_result r;
	unsigned int acc = write ? VIOMMU_READ | VIOMMU_WRITE : VIOMMU_READ;

	if (vtdpt_walk(&x->c.sl, x->v->mem, x->c.slptr, addr, acc, NULL,
		       NULL, &r)) {
		/* fetching a table is a read; only a refused A/D update of
		 * a read-only table page is a write fault */
		x->hook_reason = reason(x, r.fault, VTDPT_SL,
					r.fault == VTDPT_F_WRITE);
		return -EFAULT;
	}
	*gpa = r.oa;
	return 0;
}

/* record_did() - remember that @e's translations carry @did (locked). */
static void record_did(struct vtd_ep *e, uint16_t did)
{
	for (unsigned int i = 0; i < e->ndids; i++)
		if (e->dids[i] == did)
			return;
	if (e->ndids < VTD_EP_DIDS)
		e->dids[e->ndids++] = did;
	else
		e->did_any = true;
}

/* walk() - translate @iova per x->c; out address and span. */
static int walk(struct xreq *x, uint64_t iova, unsigned int access,
		uint64_t *out, uint64_t *len, uint32_t *perm)
{
	struct viommu_mem *mem = x->v->mem;
	bool w = access & VIOMMU_WRITE;
	struct vtdpt_result r, r2;

	if (x->c.pgtt == PGTT_PT) {
		*out = iova;
		*len = iova ? 0 - iova : UINT64_MAX;
		*perm = VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC;
		return 0;
	}
	if (x->c.pgtt == PGTT_SL) {
		if (vtdpt_walk(&x->c.sl, mem, x->c.slptr, iova, access, NULL,
			       NULL, &r))
			goto sl_fault;
	} else {
		if (vtdpt_walk(&x->c.fl, mem, x->c.flptr, iova, access,
			       x->c.pgtt == PGTT_NESTED ? sl_hook : NULL, x,
			       &r)) {
			x->f->reason = reason(x, r.fault, VTDPT_FL, w);
			return -EFAULT;
		}
	}
	*out = r.oa;
	*len = r.size - (iova & (r.size - 1));
	*perm = r.perm;
	if (x->c.pgtt != PGTT_NESTED)
		return 0;
	if (vtdpt_walk(&x->c.sl, mem, x->c.slptr, r.oa, access, NULL, NULL,
		       &r2)) {
		r = r2;
		goto sl_fault;
	}
	*out = r2.oa;
	*len = MIN(*len, r2.size - (r.oa & (r2.size - 1)));
	*perm &= r2.perm;
	return 0;
sl_fault:
	x->f->reason = reason(x, r.fault, VTDPT_SL, w);
	return -EFAULT;
}

int vtd_xlate_op(void *opaque, uint32_t pasid, uint64_t iova,
	     unsigned int access, uint64_t *ipa, uint64_t *len,
	     uint32_t *perm)
{
	struct vtd_ep *e = opaque;
	struct viommu_vtd *v = e->v;
	struct vtd_fault f = {
		.sid = e->sid, .pasid = pasid,
		.pp = pasid != VIOMMU_NO_PASID, .addr = iova,
		.read = !(access & VIOMMU_WRITE),
		.exec = access & VIOMMU_EXEC,
	};
	struct xreq x = { .v = v, .f = &f };
	uint32_t irq = 0;
	int ret = 0;

	pthread_mutex_lock(&v->lock);
	v->st.translations++;
	if (!(v->gsts & G_TE)) {
		/* raced a TE change: not remapped */
		x.c.pgtt = PGTT_PT;
	} else {
		const struct vtd_tlbe *t = vtd_tlb_lookup(v, e->sid, pasid, iova,
							  access);

		if (t) {
			v->st.iotlb_hits++;
			*ipa = t->out | (iova & 0xfff);
			*len = 0x1000 - (iova & 0xfff);
			*perm = t->perm;
			pthread_mutex_unlock(&v->lock);
			return 0;
		}
		v->st.iotlb_misses++;
		x.sm = vtd_sm(v);
		ret = vtd_cfg_get(v, e->sid, pasid, &x.c, &f);
		if (!ret)
			record_did(e, x.c.did);
	}
	if (!ret)
		ret = walk(&x, iova, access, ipa, len, perm);
	if (!ret && x.c.pgtt != PGTT_PT) {
		/* a first-level read did not set D: writes must walk */
		uint32_t p = *perm;

		if (x.c.pgtt != PGTT_SL && !(access & VIOMMU_WRITE))
			p &= ~(uint32_t)VIOMMU_WRITE;
		vtd_tlb_insert(v, e->sid, pasid, x.c.did, iova,
			       (*ipa - (iova & 0xfff)) & ~0xfffull, p);
	}
	if (ret) {
		v->st.faults++;
		if (f.reason)
			irq = vtd_fault_record(v, &f);
	}
	pthread_mutex_unlock(&v->lock);
	vtd_irq_deliver(v, irq);
	if (ret && f.reason && !f.fpd)
		rl_debug(&v->rl, &v->log, "vtd: sid %#x pasid %#x iova %#llx: "
			 "fault reason %#x", e->sid, pasid,
			 (unsigned long long)iova, f.reason);
	return ret ? -EFAULT : 0;
}
