/*
 * regs.c - the VT-d register file: version and capabilities, the global
 * command/status handshakes, root table address, fault status and the
 * fault recording registers, the fault and invalidation-completion event
 * controls.  Invalidation registers (CCMD, IVA/IOTLB, IQH/IQT/IQA) are
 * stored here and acted on in inval.c.
 *
 * Global commands (GCMD_REG, write-only; GSTS_REG reflects them).  A
 * write is compared with the status: TE and QIE are levels (a changed
 * bit enables or disables; status follows at once), SRTP and WBF are
 * one-shot (SRTP latches RTADDR_REG and sets RTPS; WBF completes at once,
 * WBFS reads clear).  IRE, SIRTP, SFL, EAFL and CFI name features the
 * model does not have: ignored with a log line.  Because every command
 * completes before the write returns, a driver polling GSTS sees the
 * final state on its first read, and a guest flipping commands in any
 * order or mid-operation only ever meets one consistent state (rule T4).
 *
 * Fault recording (rule T9).  A fault goes into the record at FSTS.FRI if
 * its F bit is clear (then FRI advances, wrapping at CAP.NFR, and PPF
 * reads set); otherwise it is lost and FSTS.PFO is set.  A fault event
 * interrupt is raised when a status bit (PPF, PFO, IQE, ICE, ITE) becomes
 * set while none was; with FECTL.IM set FECTL.IP is set instead and the
 * interrupt is delivered when the guest clears IM.  The invalidation
 * completion event (ICS.IWC, IECTL) works the same way.
 */
#include "vtd_internal.h"

/* ---- fault status ------------------------------------------------------ */

/* ppf() - whether any fault record is pending (lock held). */
static bool ppf(const struct viommu_vtd *v)
{
	for (unsigned int i = 0; i < v->nfr; i++)
		if (v->frcd[2 * i + 1] & FRCD_F)
			return true;
	return false;
}

/* fsts_now() - FSTS as read (lock held). */
static uint32_t fsts_now(const struct viommu_vtd *v)
{
	return v->fsts | (ppf(v) ? (uint32_t)FSTS_PPF : 0);
}

/*
 * event() - an event condition became true on @xctl (FECTL or IECTL):
 * interrupt @bit now, or set IP while masked.  Lock held.
 */
static uint32_t event(uint32_t *xctl, uint32_t bit)
{
	if (*xctl & XCTL_IM) {
		*xctl |= (uint32_t)XCTL_IP;
		return 0;
	}
	*xctl &= ~(uint32_t)XCTL_IP;
	return bit;
}

/* vtd_fsts_raise() - set status @bit; the interrupt to deliver (lock held). */
uint32_t vtd_fsts_raise(struct viommu_vtd *v, uint32_t bit)
{
	uint32_t before = fsts_now(v);

	v->fsts |= bit & ~(uint32_t)FSTS_PPF;
	if (before & (FSTS_PPF | FSTS_W1C))
		return 0;
	return event(&v->fectl, IRQ_FAULT_BIT);
}

/*
 * vtd_fault_record() - record fault @f (lock held).  Return: the interrupt
 * bits to deliver once the lock is dropped.
 */
uint32_t vtd_fault_record(struct viommu_vtd *v, const struct vtd_fault *f)
{
	uint32_t before = fsts_now(v), fri;
	uint64_t *r;

	if (f->fpd) {
		trace_vtd_fault(&v->tr, f->sid, f->pasid, f->addr, f->reason,
				1, 0);
		return 0;
	}
	fri = (v->fsts >> FSTS_FRI_SHIFT) & 0xff;
	if (fri >= v->nfr)
		fri = 0;
	r = &v->frcd[2 * fri];
	if (r[1] & FRCD_F) {
		v->st.faults_lost++;
		trace_vtd_fault(&v->tr, f->sid, f->pasid, f->addr, f->reason,
				2, fri);
		return vtd_fsts_raise(v, FSTS_PFO);
	}
	trace_vtd_fault(&v->tr, f->sid, f->pasid, f->addr, f->reason, 0, fri);
	r[0] = f->addr & ~0xfffull;
	r[1] = FRCD_F | f->sid | (uint64_t)f->reason << FRCD_FR_SHIFT |
	       (f->read ? FRCD_T1 : 0) | (f->exec ? FRCD_EXE : 0) |
	       (f->pp ? FRCD_PP | (uint64_t)(f->pasid & 0xfffff) <<
		FRCD_PV_SHIFT : 0);
	fri = (fri + 1) % v->nfr;
	v->fsts = (v->fsts & ~(0xffu << FSTS_FRI_SHIFT)) |
		  fri << FSTS_FRI_SHIFT;
	v->st.faults_recorded++;
	if (before & (FSTS_PPF | FSTS_W1C))
		return 0;
	return event(&v->fectl, IRQ_FAULT_BIT);
}

/* ---- reset -------------------------------------------------------------- */

/* vtd_regs_reset() - every register to its reset value (lock held or init). */
void vtd_regs_reset(struct viommu_vtd *v)
{
	v->gsts = 0;
	v->rtaddr = v->rta_active = 0;
	v->ccmd = v->iva = v->iotlb = 0;
	v->fsts = 0;
	v->fectl = XCTL_IM;
	v->fedata = v->feaddr = v->feuaddr = 0;
	v->iqh = v->iqt = v->iqa = v->iqercd = 0;
	v->ics = 0;
	v->iectl = XCTL_IM;
	v->iedata = v->ieaddr = v->ieuaddr = 0;
	v->irta = 0;
	memset(v->frcd, 0, (size_t)v->nfr * 16);
}

/* ---- access decoding ---------------------------------------------------- */

enum width { W_NONE = 0, W32, W64 };

/* reg_width() - the width of the register at @off (8-byte aligned base). */
static enum width reg_width(const struct viommu_vtd *v, uint64_t off)
{
	switch (off) {
	case R_VER: case R_GCMD: case R_GSTS: case R_FSTS: case R_FECTL:
	case R_FEDATA: case R_FEADDR: case R_FEUADDR: case R_PMEN:
	case R_ICS: case R_IECTL: case R_IEDATA: case R_IEADDR:
	case R_IEUADDR:
		return W32;
	case R_CAP: case R_ECAP: case R_RTADDR: case R_CCMD: case R_AFLOG:
	case R_IQH: case R_IQT: case R_IQA: case R_IQERCD: case R_IRTA:
	case R_IVA: case R_IOTLB:
		return W64;
	default:
		if (off >= R_FRCD && off < R_FRCD + 16ull * v->nfr &&
		    !(off & 7))
			return W64;
		return W_NONE;
	}
}

/* read64() - the value of 64-bit register @off (lock held). */
static uint64_t read64(struct viommu_vtd *v, uint64_t off)
{
	switch (off) {
	case R_CAP: return v->cap;
	case R_ECAP: return v->ecap;
	case R_RTADDR: return v->rtaddr;
	case R_CCMD: return v->ccmd;
	case R_IQH: return v->iqh;
	case R_IQT: return v->iqt;
	case R_IQA: return v->iqa;
	case R_IQERCD: return v->iqercd;
	case R_IRTA: return v->irta;
	case R_IVA: return v->iva;
	case R_IOTLB: return v->iotlb;
	default:
		if (off >= R_FRCD && off < R_FRCD + 16ull * v->nfr)
			return v->frcd[(off - R_FRCD) / 8];
		return 0;
	}
}

/* read32() - the value of 32-bit register @off (lock held). */
static uint32_t read32(struct viommu_vtd *v, uint64_t off)
{
	switch (off) {
	case R_VER: return VER_VALUE;
	case R_GSTS: return v->gsts;
	case R_FSTS: return fsts_now(v);
	case R_FECTL: return v->fectl;
	case R_FEDATA: return v->fedata;
	case R_FEADDR: return v->feaddr;
	case R_FEUADDR: return v->feuaddr;
	case R_ICS: return v->ics;
	case R_IECTL: return v->iectl;
	case R_IEDATA: return v->iedata;
	case R_IEADDR: return v->ieaddr;
	case R_IEUADDR: return v->ieuaddr;
	default: return 0; /* GCMD is write-only; PMEN not implemented */
	}
}

/*
 * decode() - check an access: @base gets the register's base, @hi whether
 * it is the upper half of a 64-bit register.  Return 0 or -EINVAL.
 */
static int decode(const struct viommu_vtd *v, uint64_t off,
		  unsigned int size, uint64_t *base, bool *hi, enum width *w)
{
	if (off >= VIOMMU_VTD_MMIO_SIZE || (size != 4 && size != 8) ||
	    (off & (size - 1)))
		return -EINVAL;
	*hi = false;
	*base = off;
	*w = reg_width(v, off);
	if (*w == W_NONE && size == 4 && (off & 4) &&
	    reg_width(v, off - 4) == W64) {
		*base = off - 4;
		*hi = true;
		*w = W64;
	}
	if (*w == W32 && size == 8)
		return -EINVAL;
	return 0;
}

int vtd_regs_read(struct viommu_vtd *v, uint64_t off, unsigned int size,
	      uint64_t *val)
{
	uint64_t base;
	enum width w;
	bool hi;

	*val = 0;
	if (decode(v, off, size, &base, &hi, &w))
		return -EINVAL;
	pthread_mutex_lock(&v->lock);
	if (w == W32) {
		*val = read32(v, base);
	} else if (w == W64) {
		uint64_t r = read64(v, base);

		*val = size == 8 ? r : hi ? r >> 32 : (uint32_t)r;
	}
	pthread_mutex_unlock(&v->lock);
	return 0;
}

/* ---- global command ---------------------------------------------------- */

/* gcmd() - act on a GCMD_REG write (cmd_lock held; takes lock). */
static uint32_t gcmd(struct viommu_vtd *v, uint32_t val)
{
	uint32_t bits = 0, old;
	bool reroute = false, run = false;

	pthread_mutex_lock(&v->lock);
	old = v->gsts;
	if (val & G_SRTP) {
		v->rta_active = v->rtaddr;
		v->gsts |= (uint32_t)G_SRTP;
	}
	if (val & (G_IRE | G_SIRTP | G_SFL | G_EAFL | G_CFI))
		rl_warn(&v->rl, &v->log, "vtd: GCMD %#x: interrupt remapping "
			"and fault logs are not implemented (T4)", val);
	if ((val ^ old) & G_QIE) {
		if (!(v->ecap & ECAP_QI))
			rl_warn(&v->rl, &v->log, "vtd: GCMD.QIE without "
				"ECAP.QI ignored (T4)");
		else
			vtd_qi_enable(v, val & G_QIE);
		/* enabled with a tail already written: fetch up to it */
		run = v->gsts & G_QIE;
	}
	if ((val ^ old) & G_TE) {
		v->gsts ^= (uint32_t)G_TE;
		reroute = true;
	}
	trace_vtd_gcmd(&v->tr, val, v->gsts);
	pthread_mutex_unlock(&v->lock);
	/* WBF: nothing is buffered; WBFS never reads as set. */
	if (reroute)
		vtd_route_all(v);
	if (run)
		bits |= vtd_qi_run(v);
	return bits;
}

/* ---- writes ---------------------------------------------------------------- */

/* merge() - a 64-bit register after a write of @size at half @hi. */
static uint64_t merge(uint64_t old, uint64_t val, unsigned int size, bool hi)
{
	if (size == 8)
		return val;
	if (hi)
		return (old & 0xffffffffull) | val << 32;
	return (old & ~0xffffffffull) | (uint32_t)val;
}

/* write_frcd() - RW1C of F in a fault record's upper qword (lock held). */
static void write_frcd(struct viommu_vtd *v, uint64_t base, uint64_t val)
{
	unsigned int q = (unsigned int)((base - R_FRCD) / 8);

	if ((q & 1) && (val & FRCD_F))
		v->frcd[q] &= ~FRCD_F;
}

/* write_fsts() - RW1C bits; clearing IQE resumes the queue (lock held). */
static bool write_fsts(struct viommu_vtd *v, uint32_t val)
{
	bool iqe = (v->fsts & FSTS_IQE) && (val & FSTS_IQE);

	v->fsts &= ~(val & (uint32_t)FSTS_W1C);
	if (!(fsts_now(v) & (FSTS_PPF | FSTS_W1C)))
		v->fectl &= ~(uint32_t)XCTL_IP;
	return iqe;
}

/* write_xctl() - FECTL/IECTL: IM; unmasking delivers a pending event. */
static uint32_t write_xctl(uint32_t *xctl, uint32_t val, uint32_t bit)
{
	*xctl = (*xctl & ~(uint32_t)XCTL_IM) | (val & (uint32_t)XCTL_IM);
	if (!(*xctl & XCTL_IM) && (*xctl & XCTL_IP)) {
		*xctl &= ~(uint32_t)XCTL_IP;
		return bit;
	}
	return 0;
}

/* write32() - a 32-bit register (lock held); *@resume: run the queue. */
static uint32_t write32(struct viommu_vtd *v, uint64_t off, uint32_t val,
			bool *resume)
{
	switch (off) {
	case R_FSTS:
		*resume = write_fsts(v, val);
		return 0;
	case R_FECTL: return write_xctl(&v->fectl, val, IRQ_FAULT_BIT);
	case R_FEDATA: v->fedata = val; return 0;
	case R_FEADDR: v->feaddr = val & ~3u; return 0;
	case R_FEUADDR: v->feuaddr = val; return 0;
	case R_ICS:
		v->ics &= ~(val & (uint32_t)ICS_IWC);
		if (!(v->ics & ICS_IWC))
			v->iectl &= ~(uint32_t)XCTL_IP;
		return 0;
	case R_IECTL: return write_xctl(&v->iectl, val, IRQ_INV_BIT);
	case R_IEDATA: v->iedata = val; return 0;
	case R_IEADDR: v->ieaddr = val & ~3u; return 0;
	case R_IEUADDR: v->ieuaddr = val; return 0;
	default:
		rl_warn(&v->rl, &v->log, "vtd: write %#x to read-only register "
			"%#llx ignored (T1)", val, (unsigned long long)off);
		return 0;
	}
}

/*
 * write64() - a (part of a) 64-bit register (lock held).  *@act: 1 CCMD,
 * 2 IOTLB, 3 queue tail - the action to run once the lock is dropped.
 */
static void write64(struct viommu_vtd *v, uint64_t base, uint64_t val,
		    unsigned int size, bool hi, int *act)
{
	switch (base) {
	case R_RTADDR:
		v->rtaddr = merge(v->rtaddr, val, size, hi) &
			    (GENMASK(63, 12) | GENMASK(11, 10));
		return;
	case R_CCMD:
		v->ccmd = merge(v->ccmd, val, size, hi);
		if ((size == 8 || hi) && (v->ccmd & CCMD_ICC))
			*act = 1;
		return;
	case R_IVA:
		v->iva = merge(v->iva, val, size, hi) &
			 (GENMASK(63, 12) | IVA_IH | GENMASK(5, 0));
		return;
	case R_IOTLB:
		v->iotlb = merge(v->iotlb, val, size, hi);
		if ((size == 8 || hi) && (v->iotlb & IOTLB_IVT))
			*act = 2;
		return;
	case R_IQT:
		v->iqt = merge(v->iqt, val, size, hi) & IQ_OFF_MASK;
		if (size == 8 || !hi)
			*act = 3;
		return;
	case R_IQA:
		if (v->gsts & G_QIE) {
			rl_warn(&v->rl, &v->log, "vtd: IQA written while the "
				"queue is enabled: ignored (T4)");
			return;
		}
		v->iqa = merge(v->iqa, val, size, hi) &
			 (GENMASK(63, 12) | IQA_DW | GENMASK(2, 0));
		return;
	case R_IRTA:
		v->irta = merge(v->irta, val, size, hi);
		return;
	default:
		if (base >= R_FRCD && base < R_FRCD + 16ull * v->nfr) {
			write_frcd(v, base, size == 8 ? val :
				   hi ? val << 32 : 0);
			return;
		}
		rl_warn(&v->rl, &v->log, "vtd: write to read-only register "
			"%#llx ignored (T1)", (unsigned long long)base);
	}
}

int vtd_regs_write(struct viommu_vtd *v, uint64_t off, unsigned int size,
	       uint64_t val)
{
	uint32_t irq = 0;
	uint64_t base;
	bool hi, resume = false;
	enum width w;
	int act = 0;

	if (decode(v, off, size, &base, &hi, &w))
		return -EINVAL;
	trace_vtd_reg_write(&v->tr, off, size, val);
	if (w == W32 && base == R_GCMD) {
		irq = gcmd(v, (uint32_t)val);
		vtd_irq_deliver(v, irq);
		return 0;
	}
	pthread_mutex_lock(&v->lock);
	if (w == W32)
		irq = write32(v, base, (uint32_t)val, &resume);
	else if (w == W64)
		write64(v, base, val, size, hi, &act);
	else
		rl_warn(&v->rl, &v->log, "vtd: write to unknown offset %#llx "
			"ignored (T1)", (unsigned long long)off);
	pthread_mutex_unlock(&v->lock);
	if (act == 1)
		irq |= vtd_ccmd_write(v, v->ccmd);
	else if (act == 2)
		irq |= vtd_iotlb_write(v, v->iotlb);
	else if (act == 3 || resume)
		irq |= vtd_qi_run(v);
	vtd_irq_deliver(v, irq);
	return 0;
}
