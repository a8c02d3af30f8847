/*
 * regs.c - the SMMUv3 register file: the 128 KiB MMIO frame (page 0 with
 * the ID, control, error, stream-table and queue registers; page 1 with
 * the event and PRI queue PROD/CONS).  The queues themselves (geometry,
 * the event queue producer) are in queue.c, below both this file and the
 * command, translation and PRI code that fill them.
 *
 * Register rules modelled: CR0 and IRQ_CTRL are acknowledged at once
 * (CR0ACK/IRQ_CTRLACK read back the written value); GBPA changes only when
 * written with UPDATE set and reads back with UPDATE clear; GERROR is
 * read-only and toggled by the model, GERRORN acknowledges.  Registers the
 * architecture freezes while a unit is enabled (STRTAB_* and CR1/CR2 with
 * SMMUEN, *Q_BASE and the SMMU-owned index with the queue's enable) ignore
 * writes then, with a log line.  64-bit registers accept 64-bit accesses
 * and 32-bit accesses to either half; 32-bit registers only 32-bit ones.
 */
#include "smmuv3_internal.h"

/* Actions a register write asks for once the state lock is dropped. */
#define ACT_CMDQ 1u
#define ACT_ROUTE 2u

struct reg64 {
	uint32_t off;
	uint64_t mask;
};

static const struct reg64 regs64[] = {
	{ R_GERROR_IRQ_CFG0, MSI_ADDR_MASK },
	{ R_STRTAB_BASE, STRTAB_BASE_MASK },
	{ R_CMDQ_BASE, Q_BASE_MASK },
	{ R_EVTQ_BASE, Q_BASE_MASK },
	{ R_EVTQ_IRQ_CFG0, MSI_ADDR_MASK },
	{ R_PRIQ_BASE, Q_BASE_MASK },
	{ R_PRIQ_IRQ_CFG0, MSI_ADDR_MASK },
};

/* find64() - the 64-bit register containing @off, or NULL. */
static const struct reg64 *find64(uint64_t off)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(regs64); i++)
		if (off >= regs64[i].off && off < regs64[i].off + 8)
			return &regs64[i];
	return NULL;
}

/* q_idx_mask() - PROD/CONS bits that matter: index plus wrap bit. */
static uint32_t q_idx_mask(const struct queue *q)
{
	return (2u << q_log2(q)) - 1;
}

bool smmu_enabled(const struct viommu_smmuv3 *s)
{
	return s->cr0 & CR0_SMMUEN;
}

/* reg64_ptr() - storage of a 64-bit register. */
static uint64_t *reg64_ptr(struct viommu_smmuv3 *s, uint32_t off)
{
	switch (off) {
	case R_GERROR_IRQ_CFG0: return &s->gerror_irq.addr;
	case R_STRTAB_BASE: return &s->strtab_base;
	case R_CMDQ_BASE: return &s->cmdq.base;
	case R_EVTQ_BASE: return &s->evtq.base;
	case R_EVTQ_IRQ_CFG0: return &s->evtq_irq.addr;
	case R_PRIQ_BASE: return &s->priq.base;
	default: return &s->priq_irq.addr;
	}
}

/* read32() - a 32-bit register's value (lock held). */
static uint32_t read32(struct viommu_smmuv3 *s, uint32_t off)
{
	switch (off) {
	case R_IDR0: case R_IDR1: case R_IDR2:
	case R_IDR3: case R_IDR4: case R_IDR5:
		return s->idr[off / 4];
	case R_IIDR: return 0;
	case R_AIDR: return 0x02; /* SMMUv3.2 */
	case R_CR0: case R_CR0ACK: return s->cr0;
	case R_CR1: return s->cr1;
	case R_CR2: return s->cr2;
	case R_GBPA: return s->gbpa;
	case R_IRQ_CTRL: case R_IRQ_CTRLACK: return s->irq_ctrl;
	case R_GERROR: return s->gerror;
	case R_GERRORN: return s->gerrorn;
	case R_GERROR_IRQ_CFG1: return s->gerror_irq.data;
	case R_GERROR_IRQ_CFG2: return s->gerror_irq.attr;
	case R_STRTAB_BASE_CFG: return s->strtab_cfg;
	case R_CMDQ_PROD: return s->cmdq.prod;
	case R_CMDQ_CONS: return s->cmdq.cons;
	case R_EVTQ_PROD: return s->evtq.prod;
	case R_EVTQ_CONS: return s->evtq.cons;
	case R_EVTQ_IRQ_CFG1: return s->evtq_irq.data;
	case R_EVTQ_IRQ_CFG2: return s->evtq_irq.attr;
	case R_PRIQ_PROD: return s->priq.prod;
	case R_PRIQ_CONS: return s->priq.cons;
	case R_PRIQ_IRQ_CFG1: return s->priq_irq.data;
	case R_PRIQ_IRQ_CFG2: return s->priq_irq.attr;
	case 0xff0: return 0x0d; /* CIDR0..3: a CoreLink component */
	case 0xff4: return 0xf0;
	case 0xff8: return 0x05;
	case 0xffc: return 0xb1;
	default: return 0;
	}
}

/* page_off() - fold page 1 onto page 0 (only the queue indices live there). */
static int page_off(uint64_t off, uint32_t *out)
{
	if (off >= PAGE1) {
		off -= PAGE1;
		if (off != R_EVTQ_PROD && off != R_EVTQ_CONS &&
		    off != R_PRIQ_PROD && off != R_PRIQ_CONS)
			return -ENOENT;
	}
	*out = (uint32_t)off;
	return 0;
}

/* check_access() - offset and size rules shared by reads and writes. */
static int check_access(uint64_t off, unsigned int size)
{
	if (off >= VIOMMU_SMMUV3_MMIO_SIZE || (size != 4 && size != 8) ||
	    (off & (size - 1)))
		return -EINVAL;
	return 0;
}

int regs_read(struct viommu_smmuv3 *s, uint64_t off, unsigned int size,
	      uint64_t *val)
{
	const struct reg64 *r;
	uint32_t o;
	int ret;

	*val = 0;
	ret = check_access(off, size);
	if (ret)
		return ret;
	if (page_off(off, &o))
		return 0;
	r = find64(o);
	if (!r && size == 8)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (r) {
		uint64_t v = *reg64_ptr(s, r->off);

		*val = size == 8 ? v : (uint32_t)(v >> ((o - r->off) * 8));
	} else {
		*val = read32(s, o);
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* write_cr0() - CR0 (acknowledged at once). */
static unsigned int write_cr0(struct viommu_smmuv3 *s, uint32_t v)
{
	uint32_t old = s->cr0;
	unsigned int act = 0;

	v &= CR0_MASK;
	s->cr0 = v;
	if ((v ^ old) & CR0_SMMUEN) {
		/* Caches start empty on both edges (over-invalidation). */
		cfg_inval_ste(s, 0, UINT32_MAX);
		tlb_inval(s, TLBI_ALL, 0, 0, 0, UINT64_MAX);
		act |= ACT_ROUTE;
		if (!(v & CR0_SMMUEN))
			stall_term_all(s);
		rl_info(&s->rl, &s->log, "smmuv3: SMMUEN %u", !!(v & CR0_SMMUEN));
	}
	if (v & CR0_CMDQEN)
		act |= ACT_CMDQ;
	return act;
}

/* write_gerrorn() - acknowledge global errors; a CMDQ error ack resumes. */
static unsigned int write_gerrorn(struct viommu_smmuv3 *s, uint32_t v)
{
	s->gerrorn = v & GERR_MASK;
	if (s->cmdq_stalled && !((s->gerror ^ s->gerrorn) & GERR_CMDQ)) {
		s->cmdq_stalled = false;
		return ACT_CMDQ;
	}
	return 0;
}

/* frozen() - log and say true when a write must be ignored. */
static bool frozen(struct viommu_smmuv3 *s, bool cond, uint32_t off)
{
	if (cond)
		rl_warn(&s->rl, &s->log, "smmuv3: write to %#x ignored while enabled",
			 off);
	return cond;
}

/* write_q_index() - a PROD or CONS register write. */
static void write_q_index(struct queue *q, uint32_t *reg, uint32_t v,
			  uint32_t keep)
{
	*reg = (v & (q_idx_mask(q) | keep));
}

/* write32() - a 32-bit register write (lock held); returns ACT_*. */
static unsigned int write32(struct viommu_smmuv3 *s, uint32_t off, uint32_t v)
{
	switch (off) {
	case R_CR0:
		return write_cr0(s, v);
	case R_CR1:
		if (!frozen(s, smmu_enabled(s), off))
			s->cr1 = v & 0xfff;
		return 0;
	case R_CR2:
		if (!frozen(s, smmu_enabled(s), off))
			s->cr2 = v & (CR2_RECINVSID | CR2_PTM);
		return 0;
	case R_GBPA:
		if (!(v & GBPA_UPDATE))
			return 0;
		s->gbpa = v & GBPA_MASK;
		return smmu_enabled(s) ? 0 : ACT_ROUTE;
	case R_IRQ_CTRL:
		s->irq_ctrl = v & (IRQ_GERROR | IRQ_PRIQ | IRQ_EVTQ);
		return 0;
	case R_GERRORN:
		return write_gerrorn(s, v);
	case R_GERROR_IRQ_CFG1: s->gerror_irq.data = v; return 0;
	case R_GERROR_IRQ_CFG2: s->gerror_irq.attr = v & 0x3f; return 0;
	case R_EVTQ_IRQ_CFG1: s->evtq_irq.data = v; return 0;
	case R_EVTQ_IRQ_CFG2: s->evtq_irq.attr = v & 0x3f; return 0;
	case R_PRIQ_IRQ_CFG1: s->priq_irq.data = v; return 0;
	case R_PRIQ_IRQ_CFG2: s->priq_irq.attr = v & 0x3f; return 0;
	case R_STRTAB_BASE_CFG:
		if (!frozen(s, smmu_enabled(s), off))
			s->strtab_cfg = v & STRTAB_CFG_MASK;
		return 0;
	case R_CMDQ_PROD:
		write_q_index(&s->cmdq, &s->cmdq.prod, v, 0);
		return ACT_CMDQ;
	case R_CMDQ_CONS:
		if (!frozen(s, s->cr0 & CR0_CMDQEN, off))
			write_q_index(&s->cmdq, &s->cmdq.cons, v, 0x7f << 24);
		return 0;
	case R_EVTQ_PROD:
		if (!frozen(s, s->cr0 & CR0_EVTQEN, off))
			write_q_index(&s->evtq, &s->evtq.prod, v, Q_OVF);
		return 0;
	case R_EVTQ_CONS:
		write_q_index(&s->evtq, &s->evtq.cons, v, Q_OVF);
		return 0;
	case R_PRIQ_PROD:
		if (!frozen(s, s->cr0 & CR0_PRIQEN, off))
			write_q_index(&s->priq, &s->priq.prod, v, Q_OVF);
		return 0;
	case R_PRIQ_CONS:
		write_q_index(&s->priq, &s->priq.cons, v, Q_OVF);
		return 0;
	default:
		rl_warn(&s->rl, &s->log, "smmuv3: write to read-only/unknown "
			 "register %#x ignored", off);
		return 0;
	}
}

/* write64() - a (merged) 64-bit register write (lock held). */
static void write64(struct viommu_smmuv3 *s, const struct reg64 *r,
		    uint64_t v)
{
	bool busy = false;

	switch (r->off) {
	case R_STRTAB_BASE: busy = smmu_enabled(s); break;
	case R_CMDQ_BASE: busy = s->cr0 & CR0_CMDQEN; break;
	case R_EVTQ_BASE: busy = s->cr0 & CR0_EVTQEN; break;
	case R_PRIQ_BASE: busy = s->cr0 & CR0_PRIQEN; break;
	default: break;
	}
	if (!frozen(s, busy, r->off))
		*reg64_ptr(s, r->off) = v & r->mask;
}

int regs_write(struct viommu_smmuv3 *s, uint64_t off, unsigned int size,
	       uint64_t val)
{
	struct irq_batch b = { 0 };
	const struct reg64 *r;
	unsigned int act = 0;
	uint32_t o;
	int ret;

	ret = check_access(off, size);
	if (ret)
		return ret;
	if (page_off(off, &o)) {
		rl_warn(&s->rl, &s->log, "smmuv3: write to page-1 offset %#llx "
			 "ignored", (unsigned long long)off);
		return 0;
	}
	r = find64(o);
	if (!r && size == 8)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (r) {
		uint64_t cur = *reg64_ptr(s, r->off), v = val;

		if (size == 4) {
			unsigned int sh = (o - r->off) * 8;

			v = (cur & ~(0xffffffffull << sh)) |
			    ((val & 0xffffffffull) << sh);
		}
		write64(s, r, v);
	} else {
		act = write32(s, o, (uint32_t)val);
	}
	pthread_mutex_unlock(&s->lock);
	if (act & ACT_ROUTE)
		route_sid_range(s, 0, UINT32_MAX);
	/* A PROD write, or any write while a slice left commands (cmds.c). */
	if ((act & ACT_CMDQ) ||
	    __atomic_load_n(&s->cmdq_pending, __ATOMIC_RELAXED))
		cmdq_process(s, &b);
	irq_deliver(s, &b);
	return 0;
}

/* build_idrs() - the ID registers from the capabilities. */
static void build_idrs(struct viommu_smmuv3 *s)
{
	uint32_t f = s->features, i0 = 0, i3 = 0;

	if (f & VIOMMU_SMMUV3_F_STAGE2)
		i0 |= BIT(0);
	if (f & VIOMMU_SMMUV3_F_STAGE1)
		i0 |= BIT(1);
	i0 |= 2u << 2;   /* TTF: AArch64 */
	i0 |= BIT(4);    /* COHACC */
	if (f & VIOMMU_SMMUV3_F_HTTU)
		i0 |= 2u << 6; /* HTTU: access flag and dirty state */
	i0 |= BIT(12);   /* ASID16 */
	if (f & VIOMMU_SMMUV3_F_MSI)
		i0 |= BIT(13);
	i0 |= BIT(14);   /* SEV */
	i0 |= BIT(18);   /* VMID16 */
	if ((f & VIOMMU_SMMUV3_F_CD2L) && s->ssid_bits)
		i0 |= BIT(19);
	if (f & VIOMMU_SMMUV3_F_PRI)
		i0 |= BIT(16);
	i0 |= 2u << 21;  /* TTENDIAN: little-endian */
	if (!(f & VIOMMU_SMMUV3_F_STALL))
		i0 |= 1u << 24; /* STALL_MODEL: stall not supported */
	i0 |= BIT(26);   /* TERM_MODEL: terminate aborts */
	if (f & VIOMMU_SMMUV3_F_2LVL_STE)
		i0 |= 1u << 27;
	if (f & VIOMMU_SMMUV3_F_RIL)
		i3 |= BIT(10);
	s->idr[0] = i0;
	s->idr[1] = s->sid_bits | (s->ssid_bits << 6) |
		    (s->priq.max_log2 << 11) | (s->evtq.max_log2 << 16) |
		    (s->cmdq.max_log2 << 21);
	s->idr[2] = 0;
	s->idr[3] = i3;
	s->idr[4] = 0;
	s->idr[5] = s->oas_enc | BIT(4) | BIT(5) | BIT(6);
}

/* regs_reset() - architected reset values (lock held). */
void regs_reset(struct viommu_smmuv3 *s)
{
	build_idrs(s);
	s->cr0 = s->cr1 = s->cr2 = 0;
	s->gbpa = (1u << 12) | (s->gbpa & GBPA_ABORT); /* SHCFG incoming */
	s->irq_ctrl = s->gerror = s->gerrorn = 0;
	s->strtab_base = 0;
	s->strtab_cfg = 0;
	s->cmdq.base = s->evtq.base = s->priq.base = 0;
	s->cmdq.prod = s->cmdq.cons = 0;
	s->evtq.prod = s->evtq.cons = 0;
	s->priq.prod = s->priq.cons = 0;
	memset(&s->gerror_irq, 0, sizeof(s->gerror_irq));
	memset(&s->evtq_irq, 0, sizeof(s->evtq_irq));
	memset(&s->priq_irq, 0, sizeof(s->priq_irq));
	s->cmdq_stalled = false;
	__atomic_store_n(&s->cmdq_pending, false, __ATOMIC_RELAXED);
	pri_reset(s);
}
