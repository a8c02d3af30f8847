/*
 * cmds.c - the SMMUv3 command queue consumer.  A write to CMDQ_PROD (or
 * enabling the queue, or acknowledging a command error) runs
 * cmdq_process(): commands from CMDQ_CONS up to CMDQ_PROD are read through
 * the memory layer and executed in order, each completely before the next
 * (so a CMD_SYNC completes as it is consumed: its interrupt or MSI is
 * delivered before the access that consumed it returns).
 *
 * Bounded work.  One call consumes at most VIOMMU_SMMUV3_CMDQ_SLICE
 * commands; CMDQ_CONS shows how far it got (the architecture lets the SMMU
 * consume at its own pace; drivers poll CONS, or the CMD_SYNC MSI).  If
 * commands are left, the next MMIO access of any register - the driver
 * polling CMDQ_CONS, a PROD write - or viommu_smmuv3_poll() runs the next
 * slice first.  Per command the cost does not grow with the number of
 * endpoints: CFGI_ALL bumps the configuration cache generation (config.c)
 * and re-routes are merged and done once per CMD_SYNC (a CFGI takes effect
 * by the next CMD_SYNC, as the architecture allows), and a slice stops
 * after VIOMMU_SMMUV3_CMDQ_SLICE_ROUTES endpoint re-routes.  So a queue of
 * half a million CFGI_ALL costs O(1) each plus one pass over the endpoints
 * per slice, and a slice re-routes fewer than SLICE_ROUTES + endpoints.
 *
 * Errors follow the architecture: an unknown or unsupported opcode, or an
 * illegal field, stops the queue with CMDQ_CONS.ERR = CERROR_ILL and
 * GERROR.CMDQ_ERR toggled, CMDQ_CONS pointing at the bad command; a queue
 * entry that is not guest RAM gives CERROR_ABT.  Nothing more is consumed
 * until the guest acknowledges through GERRORN (regs.c), after which
 * processing resumes from CMDQ_CONS.
 *
 * CMD_PRI_RESP, CMD_RESUME and CMD_STALL_TERM are executed in pri.c.
 *
 * Invalidation is exact or wider, never narrower: TTL and Leaf hints are
 * ignored (every level is invalidated), and TLBI_S2_IPA also drops the
 * combined stage-1+2 entries of the VMID, which cannot be found by IPA.
 */
#include "smmuv3_internal.h"

/* Work for after the state lock is dropped (core attach calls). */
struct post {
	bool route, pasid;
	uint32_t first, last, sid, ssid;
};

/* le64() - little-endian load. */
static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* tlbi_range() - [lo, hi] of a TLBI VA/IPA command (range form or not). */
static void tlbi_range(const struct viommu_smmuv3 *s, uint64_t d0,
		       uint64_t d1, uint64_t amask, uint64_t *lo, uint64_t *hi)
{
	unsigned int tg = (unsigned int)FIELD(d1, 11, 10), sh;
	uint64_t num = FIELD(d0, 16, 12), scale = FIELD(d0, 24, 20), len;

	*lo = d1 & amask;
	if (!tg || !(s->features & VIOMMU_SMMUV3_F_RIL)) {
		*hi = *lo;
		return;
	}
	sh = tg == 1 ? 12 : tg == 2 ? 14 : 16;
	*lo &= ~((1ull << sh) - 1);
	len = (num + 1) << (scale + sh); /* at most 2^52 */
	*hi = range_last(*lo, len, hi) ? *hi : UINT64_MAX;
}

/* cfgi_range() - CFGI_STE_RANGE: 2^(Range+1) StreamIDs, aligned. */
static void cfgi_range(uint64_t d0, uint64_t d1, struct post *p)
{
	unsigned int range = (unsigned int)(d1 & 0x1f);
	uint64_t n = 2ull << range, first = (d0 >> 32) & ~(n - 1);

	p->route = true;
	p->first = (uint32_t)first;
	p->last = range == 31 ? UINT32_MAX : (uint32_t)(first + n - 1);
}

/* cmd_sync() - complete a CMD_SYNC: signal as CS asks. */
static int cmd_sync(struct viommu_smmuv3 *s, uint64_t d0, uint64_t d1,
		    struct irq_batch *b)
{
	unsigned int cs = (unsigned int)FIELD(d0, 13, 12);
	struct irq_cfg msi = {
		.addr = d1 & GENMASK(51, 2),
		.data = (uint32_t)(d0 >> 32),
	};

	if (cs == 3)
		return -EINVAL;
	s->st.syncs++;
	if (cs == 1)
		irq_raise(s, b, VIOMMU_SMMUV3_IRQ_CMD_SYNC, &msi,
			  GERR_MSI_CMDQ_ABT);
	else if (cs == 2)
		irq_raise(s, b, VIOMMU_SMMUV3_IRQ_SEV, NULL, 0);
	return 0;
}

/* exec_tlbi() - the TLBI commands; -EINVAL for an unsupported one. */
static int exec_tlbi(struct viommu_smmuv3 *s, unsigned int op, uint64_t d0,
		     uint64_t d1)
{
	bool s1 = s->features & VIOMMU_SMMUV3_F_STAGE1;
	bool s2 = s->features & VIOMMU_SMMUV3_F_STAGE2;
	uint16_t vmid = s2 ? (uint16_t)FIELD(d0, 47, 32) : 0;
	uint16_t asid = (uint16_t)FIELD(d0, 63, 48);
	uint64_t lo, hi;

	switch (op) {
	case OP_TLBI_NH_ALL:
	case OP_TLBI_NH_ASID:
	case OP_TLBI_NH_VA:
	case OP_TLBI_NH_VAA:
		if (!s1)
			return -EINVAL;
		break;
	case OP_TLBI_S12_VMALL:
	case OP_TLBI_S2_IPA:
		if (!s2)
			return -EINVAL;
		break;
	default:
		break;
	}
	switch (op) {
	case OP_TLBI_NH_ALL:
		tlb_inval(s, TLBI_S1_VMID, vmid, 0, 0, UINT64_MAX);
		break;
	case OP_TLBI_NH_ASID:
		tlb_inval(s, TLBI_S1_ASID, vmid, asid, 0, UINT64_MAX);
		break;
	case OP_TLBI_NH_VA:
	case OP_TLBI_NH_VAA:
		tlbi_range(s, d0, d1, GENMASK(63, 12), &lo, &hi);
		tlb_inval(s, op == OP_TLBI_NH_VA ? TLBI_S1_VA : TLBI_S1_VAA,
			  vmid, asid, lo, hi);
		break;
	case OP_TLBI_S12_VMALL:
		tlb_inval(s, TLBI_VMID, vmid, 0, 0, UINT64_MAX);
		break;
	case OP_TLBI_S2_IPA:
		tlbi_range(s, d0, d1, GENMASK(51, 12), &lo, &hi);
		tlb_inval(s, TLBI_S2_IPA, vmid, 0, lo, hi);
		break;
	default: /* OP_TLBI_NSNH_ALL */
		tlb_inval(s, TLBI_ALL, 0, 0, 0, UINT64_MAX);
		break;
	}
	return 0;
}

/* exec() - one command (lock held).  Return 0 or -EINVAL (CERROR_ILL). */
static int exec(struct viommu_smmuv3 *s, uint64_t d0, uint64_t d1,
		struct irq_batch *b, struct post *p)
{
	unsigned int op = (unsigned int)(d0 & 0xff);
	uint32_t sid = (uint32_t)(d0 >> 32);

	switch (op) {
	case OP_PREFETCH_CONFIG:
	case OP_PREFETCH_ADDR:
		return 0;
	case OP_PRI_RESP:
		return cmd_pri_resp(s, d0, d1);
	case OP_RESUME:
		return cmd_resume(s, d0, d1);
	case OP_STALL_TERM:
		return cmd_stall_term(s, d0);
	case OP_CFGI_STE:
		cfg_inval_ste(s, sid, sid);
		p->route = true;
		p->first = p->last = sid;
		return 0;
	case OP_CFGI_STE_RANGE:
		cfgi_range(d0, d1, p);
		cfg_inval_ste(s, p->first, p->last);
		return 0;
	case OP_CFGI_CD:
		p->ssid = (uint32_t)FIELD(d0, 31, 12);
		if (s->ssid_bits < 20 && (p->ssid >> s->ssid_bits))
			return -EINVAL;
		cfg_inval_cd(s, sid, p->ssid, false);
		p->pasid = true;
		p->sid = sid;
		return 0;
	case OP_CFGI_CD_ALL:
		cfg_inval_cd(s, sid, 0, true);
		return 0;
	case OP_TLBI_NH_ALL:
	case OP_TLBI_NH_ASID:
	case OP_TLBI_NH_VA:
	case OP_TLBI_NH_VAA:
	case OP_TLBI_S12_VMALL:
	case OP_TLBI_S2_IPA:
	case OP_TLBI_NSNH_ALL:
		return exec_tlbi(s, op, d0, d1);
	case OP_CMD_SYNC:
		return cmd_sync(s, d0, d1, b);
	default:
		return -EINVAL;
	}
}

/* cmd_error() - stop the queue with CMDQ_CONS.ERR = @code (lock held). */
static void cmd_error(struct viommu_smmuv3 *s, struct irq_batch *b,
		      unsigned int code, uint64_t d0)
{
	rl_warn(&s->rl, &s->log, "smmuv3: command %#llx at CONS %#x: %s",
		 (unsigned long long)d0, s->cmdq.cons,
		 code == CERROR_ILL ? "CERROR_ILL" : "CERROR_ABT");
	s->cmdq.cons = (s->cmdq.cons & ~(0x7fu << CMDQ_CONS_ERR_SHIFT)) |
		       (code << CMDQ_CONS_ERR_SHIFT);
	s->cmdq_stalled = true;
	s->st.cmd_errors++;
	gerror_raise(s, b, GERR_CMDQ);
}

/*
 * step() - consume one command (lock held).  With @hold_sync, a CMD_SYNC
 * is left unconsumed (CONS stays before it) so that the caller can finish
 * the re-routes it must cover first: a driver polling CONS must not see
 * the sync consumed before they are done.
 * Return 1 when one was consumed, 2 for a held CMD_SYNC, 0 when the queue
 * is empty, stopped or disabled.
 */
static int step(struct viommu_smmuv3 *s, struct irq_batch *b,
		struct post *p, bool hold_sync)
{
	struct queue *q = &s->cmdq;
	unsigned int l = q_log2(q);
	uint32_t wm = (2u << l) - 1, cons = q->cons & wm;
	uint64_t addr, d0, d1;
	uint8_t raw[CMD_SIZE];

	if (!(s->cr0 & CR0_CMDQEN) || s->cmdq_stalled ||
	    (q->prod & wm) == cons)
		return 0;
	addr = (q->base & Q_BASE_ADDR_MASK & ~((16ull << l) - 1)) +
	       (uint64_t)(cons & ((1u << l) - 1)) * CMD_SIZE;
	if (viommu_mem_read(s->mem, addr, raw, sizeof(raw))) {
		cmd_error(s, b, CERROR_ABT, 0);
		trace_smmu_cmd(&s->tr, 0, CERROR_ABT, cons);
		return 0;
	}
	d0 = get_le64(raw);
	d1 = get_le64(raw + 8);
	if (hold_sync && (d0 & 0xff) == OP_CMD_SYNC)
		return 2;
	if (exec(s, d0, d1, b, p)) {
		cmd_error(s, b, CERROR_ILL, d0);
		trace_smmu_cmd(&s->tr, (uint8_t)d0, CERROR_ILL, cons);
		return 0;
	}
	s->st.commands++;
	trace_smmu_cmd(&s->tr, (uint8_t)d0, 0, cons);
	q->cons = (q->cons & ~wm) | ((cons + 1) & wm);
	return 1;
}

/* __cmdq_left() - commands are waiting and may be consumed (lock held). */
static bool __cmdq_left(struct viommu_smmuv3 *s)
{
	uint32_t wm = (2u << q_log2(&s->cmdq)) - 1;

	return (s->cr0 & CR0_CMDQEN) && !s->cmdq_stalled &&
	       (s->cmdq.prod & wm) != (s->cmdq.cons & wm);
}

/*
 * cmdq_process() - run one slice of the command queue (cmd_lock held, lock
 * not held): at most VIOMMU_SMMUV3_CMDQ_SLICE commands (see the top of the
 * file).  Endpoint re-routes asked for by CFGI_STE* are merged into one
 * StreamID range and done when the next CMD_SYNC is reached - before it is
 * consumed (CONS passes it) and signalled - or at the end of the slice.
 * The slice also ends once
 * VIOMMU_SMMUV3_CMDQ_SLICE_ROUTES endpoint re-routes have been done, so
 * it re-routes fewer than that plus the number of endpoints.
 */
void cmdq_process(struct viommu_smmuv3 *s, struct irq_batch *b)
{
	uint32_t rlo = UINT32_MAX, rhi = 0;
	unsigned int n, routed = 0;
	bool route = false;

	for (n = 0; n < VIOMMU_SMMUV3_CMDQ_SLICE &&
		    routed < VIOMMU_SMMUV3_CMDQ_SLICE_ROUTES; n++) {
		struct post p = { 0 };
		int more;

		pthread_mutex_lock(&s->lock);
		more = step(s, b, &p, route);
		pthread_mutex_unlock(&s->lock);
		if (more == 2) { /* a CMD_SYNC: re-route, then consume it */
			routed += route_sid_range(s, rlo, rhi);
			route = false;
			continue;
		}
		if (p.route) {
			rlo = MIN(rlo, p.first);
			rhi = MAX(rhi, p.last);
			route = true;
		}
		if (p.pasid)
			route_pasid(s, p.sid, p.ssid);
		/* CMD_SYNC completion MSIs go out as each command retires. */
		irq_flush_msis(s, b);
		if (!more)
			break;
	}
	if (route)
		route_sid_range(s, rlo, rhi);
	pthread_mutex_lock(&s->lock);
	/* Atomic: viommu_smmuv3_mmio_read() peeks without cmd_lock. */
	__atomic_store_n(&s->cmdq_pending, __cmdq_left(s), __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->lock);
}

/*
 * cmdq_resume() - if a slice left commands, run the next slice and deliver
 * its interrupts (cmd_lock held).  Return: whether commands are still left.
 */
bool cmdq_resume(struct viommu_smmuv3 *s)
{
	struct irq_batch b = { 0 };

	if (!__atomic_load_n(&s->cmdq_pending, __ATOMIC_RELAXED))
		return false;
	cmdq_process(s, &b);
	irq_deliver(s, &b);
	return __atomic_load_n(&s->cmdq_pending, __ATOMIC_RELAXED);
}
