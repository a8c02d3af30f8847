/*
 * inval.c - VT-d invalidation: the register-based interface (CCMD_REG for
 * the context cache, IVA_REG/IOTLB_REG for the IOTLB) and the queued
 * interface (IQA/IQH/IQT and the descriptors).
 *
 * What an invalidation does here.  The only cache is the core IOTLB of
 * each endpoint's domain (vtd.c), so every invalidation becomes
 * vtd_inval_eps() over the endpoints it covers, for the whole space or for the
 * page-selective range [ADDR & ~(2^(12+AM)-1), +2^(12+AM)-1].  The IH
 * hint (keep paging-structure caches) needs nothing more: there are none.
 * Device-TLB descriptors (with and without PASID) are completed as
 * no-ops: no device has a device-TLB (ECAP.DT = 0).  A PASID-selective
 * PASID-cache invalidation also makes the PASID routable (vtd.c).
 *
 * The queue (rules T5-T7).  A write of IQT_REG runs descriptors from IQH
 * towards the new tail, at most VIOMMU_VTD_QI_SLICE of them; what is left
 * is run a slice at a time by the next MMIO accesses (any register, read
 * or write: Linux reads FSTS while it waits for a wait's status) and by
 * viommu_vtd_poll().  IQH shows the progress.  The tail is
 * checked first: beyond the queue, or not 256-bit aligned in a 256-bit
 * queue, is an invalidation queue error with nothing run.  A descriptor
 * that cannot be read, has an unknown or unsupported type, a reserved
 * field set, or is a scalable-mode type in a 128-bit queue stops the
 * queue with FSTS.IQE, IQERCD.IQEI saying why, and IQH left pointing at
 * it (as Linux's qi_check_fault() expects: it rewrites that slot and
 * clears IQE, and the model resumes from IQH when IQE is cleared).
 * While the queue is enabled the register interface is refused: CAIG and
 * IAIG read 0 (no invalidation done).
 */
#include "vtd_internal.h"

/* psi_range() - the range a page-selective invalidation names. */
static void psi_range(uint64_t addr, unsigned int am, uint64_t *lo,
		      uint64_t *hi)
{
	uint64_t size = 4096ull << am;

	*lo = addr & ~(size - 1) & GENMASK(63, 12);
	*hi = *lo + (size - 1);
}

/* cc_inval() - context-cache invalidation of granularity @g. */
static bool cc_inval(struct viommu_vtd *v, unsigned int g, uint16_t did,
		     uint16_t sid, unsigned int fm)
{
	static const uint16_t fm_mask[4] = { 0, 0x4, 0x6, 0x7 };

	switch (g) {
	case 1:
		vtd_inval_eps(v, false, 0, 0, false, 0, 0, UINT64_MAX, true);
		break;
	case 2:
		vtd_inval_eps(v, false, 0, 0, true, did, 0, UINT64_MAX, true);
		break;
	case 3:
		vtd_inval_eps(v, true, sid, fm_mask[fm & 3], false, 0, 0,
			  UINT64_MAX, true);
		break;
	default:
		return false;
	}
	trace_vtd_inval(&v->tr, 0, g, did, g == 3 ? sid : 0, 0, UINT64_MAX);
	ATOMIC_INC(v->st.ctx_invals);
	return true;
}

/* tlb_inval() - IOTLB invalidation of granularity @g. */
static bool tlb_inval(struct viommu_vtd *v, unsigned int g, uint16_t did,
		      uint64_t addr, unsigned int am)
{
	uint64_t lo = 0, hi = UINT64_MAX;

	switch (g) {
	case 1:
		vtd_inval_eps(v, false, 0, 0, false, 0, 0, UINT64_MAX, false);
		break;
	case 2:
		vtd_inval_eps(v, false, 0, 0, true, did, 0, UINT64_MAX, false);
		break;
	case 3:
		if (am > MAMV)
			return false;
		psi_range(addr, am, &lo, &hi);
		vtd_inval_eps(v, false, 0, 0, true, did, lo, hi, false);
		break;
	default:
		return false;
	}
	trace_vtd_inval(&v->tr, 1, g, g == 1 ? 0 : did, 0, lo, hi);
	ATOMIC_INC(v->st.iotlb_invals);
	return true;
}

/* qi_on() - whether the queue is enabled (takes lock). */
static bool qi_on(struct viommu_vtd *v)
{
	bool on;

	pthread_mutex_lock(&v->lock);
	on = v->gsts & G_QIE;
	pthread_mutex_unlock(&v->lock);
	return on;
}

/* vtd_ccmd_write() - CCMD_REG written with ICC set (cmd_lock held). */
uint32_t vtd_ccmd_write(struct viommu_vtd *v, uint64_t val)
{
	unsigned int g = (unsigned int)CCMD_CIRG(val), done = 0;

	if (qi_on(v))
		rl_warn(&v->rl, &v->log, "vtd: CCMD while the invalidation "
			"queue is enabled: refused (T5)");
	else if (cc_inval(v, g, (uint16_t)CCMD_DID(val),
			  (uint16_t)CCMD_SID(val), (unsigned int)CCMD_FM(val)))
		done = g;
	else
		rl_warn(&v->rl, &v->log, "vtd: CCMD granularity 0 refused (T5)");
	pthread_mutex_lock(&v->lock);
	v->ccmd = (val & ~(CCMD_ICC | GENMASK(60, 59))) |
		  (uint64_t)done << CCMD_CAIG_SHIFT;
	pthread_mutex_unlock(&v->lock);
	return 0;
}

/* vtd_iotlb_write() - IOTLB_REG written with IVT set (cmd_lock held). */
uint32_t vtd_iotlb_write(struct viommu_vtd *v, uint64_t val)
{
	unsigned int g = (unsigned int)IOTLB_IIRG(val), done = 0;
	uint64_t iva;

	pthread_mutex_lock(&v->lock);
	iva = v->iva;
	pthread_mutex_unlock(&v->lock);
	if (qi_on(v))
		rl_warn(&v->rl, &v->log, "vtd: IOTLB_REG while the "
			"invalidation queue is enabled: refused (T5)");
	else if (tlb_inval(v, g, (uint16_t)IOTLB_DID(val), iva,
			   (unsigned int)IVA_AM(iva)))
		done = g;
	else
		rl_warn(&v->rl, &v->log, "vtd: IOTLB_REG granularity %u / AM "
			"%u refused (T5)", g, (unsigned int)IVA_AM(iva));
	pthread_mutex_lock(&v->lock);
	v->iotlb = (val & ~(IOTLB_IVT | GENMASK(58, 57))) |
		   (uint64_t)done << IOTLB_IAIG_SHIFT;
	pthread_mutex_unlock(&v->lock);
	return 0;
}

/* vtd_qi_enable() - GCMD.QIE changed to @on (lock held). */
void vtd_qi_enable(struct viommu_vtd *v, bool on)
{
	if (on) {
		v->iqh = 0;
		v->gsts |= (uint32_t)G_QIE;
		return;
	}
	if (v->iqh != v->iqt)
		rl_warn(&v->rl, &v->log, "vtd: queue disabled with "
			"descriptors pending (head %#llx tail %#llx) (T4)",
			(unsigned long long)v->iqh, (unsigned long long)v->iqt);
	v->gsts &= ~(uint32_t)G_QIE;
}

/* ---- descriptors ------------------------------------------------------- */

/* struct qdesc - one descriptor copied out of the queue. */
struct qdesc {
	uint64_t q[4];
	bool wide;
};

/*
 * status_write() - the 32-bit status of a wait at @addr (4-byte aligned):
 * one atomic store where it is plain RAM, so a driver polling the word
 * never sees it half written; through the memory layer otherwise.
 */
static int status_write(struct viommu_vtd *v, uint64_t addr, uint32_t data)
{
	uint8_t le[4] = { (uint8_t)data, (uint8_t)(data >> 8),
			  (uint8_t)(data >> 16), (uint8_t)(data >> 24) };
	unsigned int tok = viommu_mem_read_lock(v->mem);
	size_t contig;
	void *hva;
	int r = -1;

	if (!viommu_mem_ptr(v->mem, addr, 4, VIOMMU_WRITE, &hva, &contig) &&
	    contig >= 4 && !((uintptr_t)hva & 3)) {
		uint32_t x;

		memcpy(&x, le, 4); /* little-endian in guest memory */
		__atomic_store_n((uint32_t *)hva, x, __ATOMIC_RELEASE);
		r = 0;
	}
	viommu_mem_read_unlock(v->mem, tok);
	if (r)
		r = viommu_mem_write(v->mem, addr, le, 4);
	return r;
}

/* do_wait() - an invalidation-wait descriptor.  Return IQEI or 0. */
static int do_wait(struct viommu_vtd *v, const struct qdesc *d,
		   uint32_t *irq)
{
	uint64_t q0 = d->q[0], addr = d->q[1] & GENMASK(63, 2);
	uint32_t data = (uint32_t)(q0 >> 32);

	if ((q0 & (GENMASK(31, 12) | BIT(8))) || (d->q[1] & 3))
		return IQEI_RSVD;
	if ((q0 & BIT(5)) && status_write(v, addr, data))
		return IQEI_FETCH;
	ATOMIC_INC(v->st.waits);
	if (q0 & BIT(4)) {
		pthread_mutex_lock(&v->lock);
		if (!(v->ics & ICS_IWC)) {
			v->ics |= (uint32_t)ICS_IWC;
			if (v->iectl & XCTL_IM)
				v->iectl |= (uint32_t)XCTL_IP;
			else
				*irq |= IRQ_INV_BIT;
		}
		pthread_mutex_unlock(&v->lock);
	}
	return 0;
}

/* do_pc() - a PASID-cache invalidation. */
static int do_pc(struct viommu_vtd *v, uint64_t q0)
{
	unsigned int g = (unsigned int)FIELD(q0, 5, 4);
	uint16_t did = (uint16_t)FIELD(q0, 31, 16);
	uint32_t pasid = (uint32_t)FIELD(q0, 51, 32);

	if (q0 & (GENMASK(63, 52) | GENMASK(15, 12) | GENMASK(8, 6)) ||
	    g == 2)
		return IQEI_RSVD;
	if (g == 1)
		vtd_route_pasid(v, pasid);
	if (g == 3)
		vtd_inval_eps(v, false, 0, 0, false, 0, 0, UINT64_MAX, false);
	else
		vtd_inval_eps(v, false, 0, 0, true, did, 0, UINT64_MAX, false);
	trace_vtd_inval(&v->tr, 2, g, g == 3 ? 0 : did, 0, 0, UINT64_MAX);
	ATOMIC_INC(v->st.pasid_invals);
	return 0;
}

/* do_piotlb() - a PASID-based IOTLB invalidation. */
static int do_piotlb(struct viommu_vtd *v, uint64_t q0, uint64_t q1)
{
	unsigned int g = (unsigned int)FIELD(q0, 5, 4);
	uint16_t did = (uint16_t)FIELD(q0, 31, 16);

	if ((q0 & (GENMASK(63, 52) | GENMASK(15, 12) | GENMASK(8, 6))) ||
	    (q1 & GENMASK(11, 7)) || g < 2 ||
	    (g == 3 && IVA_AM(q1) > MAMV))
		return IQEI_RSVD;
	if (!tlb_inval(v, g == 3 ? 3 : 2, did, q1, (unsigned int)IVA_AM(q1)))
		return IQEI_RSVD;
	return 0;
}

/* desc_type() - a descriptor's type (its low and high type fields). */
static unsigned int desc_type(uint64_t q0)
{
	return (unsigned int)(FIELD(q0, 3, 0) | FIELD(q0, 11, 9) << 4);
}

/* run_desc() - validate and run one descriptor.  Return IQEI or 0. */
static int run_desc(struct viommu_vtd *v, const struct qdesc *d,
		    uint32_t *irq)
{
	uint64_t q0 = d->q[0], q1 = d->q[1];
	unsigned int type = desc_type(q0);
	bool sm = v->features & VIOMMU_VTD_F_SM;

	if (type >= D_PIOTLB && type <= D_PDEVTLB) {
		if (!sm)
			return IQEI_TYPE;
		if (!d->wide)
			return IQEI_WIDTH;
	}
	if (d->wide && type != D_WAIT && (d->q[2] || d->q[3]))
		return IQEI_RSVD;
	switch (type) {
	case D_CC:
		if ((q0 & (GENMASK(63, 50) | GENMASK(15, 12) | GENMASK(8, 6))) ||
		    q1)
			return IQEI_RSVD;
		return cc_inval(v, (unsigned int)FIELD(q0, 5, 4),
				(uint16_t)FIELD(q0, 31, 16),
				(uint16_t)FIELD(q0, 47, 32),
				(unsigned int)FIELD(q0, 49, 48)) ? 0 : IQEI_RSVD;
	case D_IOTLB:
		if ((q0 & (GENMASK(63, 32) | GENMASK(15, 12) | BIT(8))) ||
		    (q1 & GENMASK(11, 7)))
			return IQEI_RSVD;
		return tlb_inval(v, (unsigned int)FIELD(q0, 5, 4),
				 (uint16_t)FIELD(q0, 31, 16), q1,
				 (unsigned int)IVA_AM(q1)) ? 0 : IQEI_RSVD;
	case D_DEVTLB:
	case D_PDEVTLB:
		return 0; /* no device-TLBs: nothing to drop (T6) */
	case D_WAIT:
		if (d->wide && (d->q[2] || d->q[3]))
			return IQEI_RSVD;
		return do_wait(v, d, irq);
	case D_PIOTLB:
		return do_piotlb(v, q0, q1);
	case D_PC:
		return do_pc(v, q0);
	default:
		/* D_IEC (no interrupt remapping), D_PGRP (no PRS), unknown */
		return IQEI_TYPE;
	}
}

/* qi_error() - stop the queue with IQE and code @iqei (takes lock). */
static uint32_t qi_error(struct viommu_vtd *v, int iqei, uint64_t head)
{
	uint32_t irq;

	WRITE_ONCE(v->qi_pending, false);
	pthread_mutex_lock(&v->lock);
	v->iqercd = (uint64_t)iqei & 0xf;
	v->iqh = head;
	v->st.queue_errors++;
	irq = vtd_fsts_raise(v, FSTS_IQE);
	pthread_mutex_unlock(&v->lock);
	rl_warn(&v->rl, &v->log, "vtd: invalidation queue error %d at head "
		"%#llx (T6)", iqei, (unsigned long long)head);
	return irq;
}

/* read_desc() - copy the descriptor at @gpa.  0 or -EFAULT. */
static int read_desc(struct viommu_vtd *v, uint64_t gpa, struct qdesc *d)
{
	uint8_t raw[32];
	size_t n = d->wide ? 32 : 16;

	if (viommu_mem_read(v->mem, gpa, raw, n))
		return -EFAULT;
	for (unsigned int i = 0; i < n / 8; i++) {
		uint64_t x = 0;

		for (int b = 7; b >= 0; b--)
			x = x << 8 | raw[i * 8 + b];
		d->q[i] = x;
	}
	return 0;
}

/*
 * vtd_qi_run() - run one slice of the queue from IQH towards IQT (cmd_lock
 * held); v->qi_pending says whether descriptors are left.  Return the
 * interrupts to deliver.
 */
uint32_t vtd_qi_run(struct viommu_vtd *v)
{
	uint64_t base, bytes, head, tail;
	uint32_t irq = 0;
	bool wide;

	pthread_mutex_lock(&v->lock);
	if (!(v->gsts & G_QIE) || (v->fsts & FSTS_IQE)) {
		pthread_mutex_unlock(&v->lock);
		WRITE_ONCE(v->qi_pending, false);
		return 0;
	}
	wide = (v->iqa & IQA_DW) && (v->features & VIOMMU_VTD_F_SM);
	base = IQA_ADDR(v->iqa);
	bytes = 4096ull << IQA_QS(v->iqa);
	head = v->iqh;
	tail = v->iqt;
	pthread_mutex_unlock(&v->lock);
	if (tail >= bytes || (wide && (tail & 0x10)))
		return qi_error(v, IQEI_TAIL, head);
	/* Bounded: one slice of descriptors per MMIO access (T7). */
	for (unsigned int n = 0; head != tail && n < VIOMMU_VTD_QI_SLICE; n++) {
		struct qdesc d = { .wide = wide };
		int e;

		if (read_desc(v, base + head, &d))
			return irq | qi_error(v, IQEI_FETCH, head);
		e = run_desc(v, &d, &irq);
		trace_vtd_qi_desc(&v->tr, head, desc_type(d.q[0]), d.q[0],
				  d.q[1], e);
		if (e)
			return irq | qi_error(v, e, head);
		ATOMIC_INC(v->st.descriptors);
		head = (head + (wide ? 32 : 16)) % bytes;
		pthread_mutex_lock(&v->lock);
		v->iqh = head;
		pthread_mutex_unlock(&v->lock);
	}
	WRITE_ONCE(v->qi_pending, head != tail);
	return irq;
}
