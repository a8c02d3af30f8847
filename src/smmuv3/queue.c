/*
 * queue.c - the SMMUv3 queues as the model produces into them: geometry
 * (LOG2SIZE capped by IDR1, PROD/CONS with their wrap bit, full), the
 * 32-byte event record encoding and the event queue producer (the PRI
 * queue producer, which shares the geometry, is in pri.c), and the
 * interrupts the queues and global errors raise.
 *
 * Interrupts raised under the locks are queued in a struct irq_batch and
 * delivered by irq_deliver() after the locks are dropped: MSIs are 32-bit
 * writes through the memory layer (a failed one sets the matching
 * GERROR.MSI_*_ABT_ERR), wired ones call the embedder's callback.
 *
 * This is the bottom of the model's chain: registers (regs.c) -> commands
 * (cmds.c), configuration and translation (config.c, xlate.c), PRI (pri.c)
 * -> queues and interrupts (here).  Nothing here calls up into those
 * files.
 */
#include "smmuv3_internal.h"

/* ---- interrupts ---------------------------------------------------------- */

/*
 * irq_raise() - queue an interrupt (lock held): an MSI when MSIs are
 * implemented and @cfg has an address, else the wired line @which.
 */
void irq_raise(struct viommu_smmuv3 *s, struct irq_batch *b,
	       enum viommu_smmuv3_irq which, const struct irq_cfg *cfg,
	       uint64_t gerr_bit)
{
	if (cfg && (s->features & VIOMMU_SMMUV3_F_MSI) && cfg->addr) {
		if (b->nmsi < ARRAY_SIZE(b->msi)) {
			b->msi[b->nmsi].addr = cfg->addr;
			b->msi[b->nmsi].data = cfg->data;
			b->msi[b->nmsi].gerr = gerr_bit;
			b->nmsi++;
		} else {
			/* Callers flush after each unit of work: never here. */
			rl_err(&s->rl, &s->log, "smmuv3: interrupt batch full, MSI "
				"to %#llx dropped",
				(unsigned long long)cfg->addr);
		}
		return;
	}
	b->wired |= 1u << which;
}

/* gerror_raise() - activate GERROR bit @bit unless active (lock held). */
void gerror_raise(struct viommu_smmuv3 *s, struct irq_batch *b, uint32_t bit)
{
	if ((s->gerror ^ s->gerrorn) & bit)
		return;
	s->gerror ^= bit;
	if (s->irq_ctrl & IRQ_GERROR)
		irq_raise(s, b, VIOMMU_SMMUV3_IRQ_GERROR, &s->gerror_irq,
			  GERR_MSI_GERROR_ABT);
}

/* deliver_msi() - one MSI write; on failure flag GERROR (may queue more). */
static void deliver_msi(struct viommu_smmuv3 *s, uint64_t addr,
			uint32_t data, uint64_t gerr, struct irq_batch *next)
{
	uint8_t le[4] = { (uint8_t)data, (uint8_t)(data >> 8),
			  (uint8_t)(data >> 16), (uint8_t)(data >> 24) };

	if (!viommu_mem_write(s->mem, addr, le, sizeof(le))) {
		ATOMIC_INC(s->st.msis);
		return;
	}
	rl_warn(&s->rl, &s->log, "smmuv3: MSI to %#llx is not RAM",
		 (unsigned long long)addr);
	pthread_mutex_lock(&s->lock);
	if (gerr)
		gerror_raise(s, next, (uint32_t)gerr);
	pthread_mutex_unlock(&s->lock);
}

/*
 * irq_flush_msis() - write the MSIs queued in @b now (no model lock
 * held), leaving its wired interrupts queued.  The command queue calls it
 * after each command so that any number of CMD_SYNCs in one doorbell get
 * their completion MSI (the batch holds only a few).
 */
void irq_flush_msis(struct viommu_smmuv3 *s, struct irq_batch *b)
{
	while (b->nmsi) {
		struct irq_batch cur = *b;

		b->nmsi = 0;
		for (unsigned int i = 0; i < cur.nmsi; i++)
			deliver_msi(s, cur.msi[i].addr, cur.msi[i].data,
				    cur.msi[i].gerr, b);
		/* A failed MSI raises GERROR once; an active bit raises none. */
		if (b->nmsi && cur.nmsi == b->nmsi &&
		    !memcmp(cur.msi, b->msi, sizeof(cur.msi[0]) * b->nmsi))
			break;
	}
}

/*
 * irq_deliver() - deliver @b with no model lock held.  A failing MSI may
 * raise a GERROR interrupt in turn; a few rounds settle it (a GERROR bit
 * already active raises nothing).
 */
void irq_deliver(struct viommu_smmuv3 *s, struct irq_batch *b)
{
	for (int round = 0; round < 3 && (b->nmsi || b->wired); round++) {
		struct irq_batch cur = *b;

		memset(b, 0, sizeof(*b));
		for (unsigned int i = 0; i < cur.nmsi; i++)
			deliver_msi(s, cur.msi[i].addr, cur.msi[i].data,
				    cur.msi[i].gerr, b);
		for (unsigned int i = 0; i < 32; i++) {
			if (!(cur.wired & (1u << i)))
				continue;
			ATOMIC_INC(s->st.irqs);
			if (s->irq_fn)
				s->irq_fn(s->irq_opaque,
					  (enum viommu_smmuv3_irq)i);
		}
	}
}

/* q_log2() - the queue's effective log2 of entries (LOG2SIZE, capped). */
unsigned int q_log2(const struct queue *q)
{
	unsigned int l = (unsigned int)(q->base & 0x1f);

	return l > q->max_log2 ? q->max_log2 : l;
}

/* put_le64() - store @v little-endian at @p. */
void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* evt_encode() - the 32-byte event record. */
static void evt_encode(const struct evt *e, uint8_t out[EVT_SIZE])
{
	uint64_t d0, d1 = 0, d3 = 0;

	d0 = e->type | ((uint64_t)e->ssv << 11) |
	     ((uint64_t)(e->ssid & 0xfffff) << 12) | ((uint64_t)e->sid << 32);
	switch (e->type) {
	case EVT_F_STE_FETCH:
	case EVT_F_CD_FETCH:
		d3 = e->fetch & GENMASK(51, 3);
		break;
	case EVT_F_WALK_EABT:
	case EVT_F_TRANSLATION:
	case EVT_F_ADDR_SIZE:
	case EVT_F_ACCESS:
	case EVT_F_PERMISSION:
		d1 = e->stag | ((uint64_t)e->stall << 31) |
		     ((uint64_t)e->pnu << 33) | ((uint64_t)e->ind << 34) |
		     ((uint64_t)e->rnw << 35) | ((uint64_t)e->s2 << 39) |
		     ((uint64_t)(e->cls & 3) << 40);
		if (e->type == EVT_F_WALK_EABT)
			d3 = e->fetch & GENMASK(51, 3);
		else if (e->s2)
			d3 = e->ipa & GENMASK(51, 12);
		break;
	default:
		break;
	}
	put_le64(out, d0);
	put_le64(out + 8, d1);
	put_le64(out + 16, e->type >= EVT_F_WALK_EABT ? e->addr : 0);
	put_le64(out + 24, d3);
}

/* q_full() - PROD and CONS at the same index, opposite wrap bits. */
bool q_full(const struct queue *q)
{
	unsigned int l = q_log2(q);
	uint32_t m = (1u << l) - 1;

	return (q->prod & m) == (q->cons & m) &&
	       ((q->prod >> l) & 1) != ((q->cons >> l) & 1);
}

/*
 * evtq_write() - record @e (lock held).  Dropped when EVTQEN is clear, an
 * event-queue abort is outstanding or the queue is full (then the overflow
 * flag toggles once until the guest acknowledges it).
 * Return: 0 when written, -1 when lost.
 */
int evtq_write(struct viommu_smmuv3 *s, const struct evt *e,
	       struct irq_batch *b)
{
	struct queue *q = &s->evtq;
	unsigned int l = q_log2(q);
	uint32_t m = (1u << l) - 1, p = q->prod, c = q->cons;
	uint8_t rec[EVT_SIZE];
	uint64_t addr;

	if (!(s->cr0 & CR0_EVTQEN) ||
	    ((s->gerror ^ s->gerrorn) & GERR_EVTQ_ABT))
		goto lost;
	if (q_full(q)) {
		if ((p & Q_OVF) == (c & Q_OVF))
			q->prod ^= Q_OVF;
		goto lost;
	}
	evt_encode(e, rec);
	addr = (q->base & Q_BASE_ADDR_MASK & ~((32ull << l) - 1)) +
	       (uint64_t)(p & m) * EVT_SIZE;
	if (viommu_mem_write(s->mem, addr, rec, sizeof(rec))) {
		rl_warn(&s->rl, &s->log, "smmuv3: event queue at %#llx not "
			 "writable RAM", (unsigned long long)addr);
		gerror_raise(s, b, GERR_EVTQ_ABT);
		goto lost;
	}
	q->prod = (q->prod & Q_OVF) | ((p + 1) & ((2u << l) - 1));
	s->st.events++;
	trace_smmu_event(&s->tr, (uint8_t)e->type, e->sid, e->ssid, e->addr,
			 false);
	if (s->irq_ctrl & IRQ_EVTQ)
		irq_raise(s, b, VIOMMU_SMMUV3_IRQ_EVTQ, &s->evtq_irq,
			  GERR_MSI_EVTQ_ABT);
	return 0;
lost:
	s->st.events_lost++;
	trace_smmu_event(&s->tr, (uint8_t)e->type, e->sid, e->ssid, e->addr,
			 true);
	return -1;
}
