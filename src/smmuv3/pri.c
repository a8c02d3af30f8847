/*
 * pri.c - the SMMUv3 PRI queue and stall model.
 *
 * PRI.  The embedder plays a PCIe endpoint and hands Page Requests (PPRs)
 * to viommu_smmuv3_page_request().  Each becomes a 16-byte PRI queue entry
 * (StreamID, SubstreamID and SSV, the Priv/Exec/Read/Write/Last bits,
 * PRGIndex, page address) written at PRIQ_PROD, and raises the PRIQ
 * interrupt when IRQ_CTRL enables it.  A request that cannot be queued is
 * discarded: SMMUEN or PRIQEN clear, a PRI-queue abort outstanding, or the
 * queue full - then PRIQ_PROD.OVFLG toggles and, until the guest
 * acknowledges the overflow through PRIQ_CONS.OVACKFLG, every request is
 * discarded even when there is room again.  When a discarded request was
 * the last of its group, the model answers the group itself with Success
 * (the endpoint retries).  Page Request Groups are tracked per (StreamID,
 * PRGIndex) in a bounded table (VIOMMU_SMMUV3_PRI_GROUPS) until the
 * embedder collects the answer; a Stop Marker (PASID, Last, no R/W) is
 * queued but opens no group.  CMD_PRI_RESP is checked (reserved Resp,
 * StreamID beyond SIDSIZE, SSV with a SubstreamID beyond SSIDSIZE:
 * CERROR_ILL) and recorded on its group; a response for a group the model
 * does not know is forwarded to nobody, as the architecture allows.
 *
 * Stall.  With stalls advertised (IDR0.STALL_MODEL 0b00), a translation
 * fault (F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION) at stage 1
 * under a CD with S set, or at stage 2 (input or table-walk class) under
 * an STE with S2S set, stalls: the event is recorded with Stall = 1 and a
 * STAG unique among the StreamID's stalled transactions, and the
 * transaction is remembered in a bounded table (VIOMMU_SMMUV3_STALLS).
 * Our DMA is synchronous, so the translate op fails at once; the embedder
 * watches the stall with viommu_smmuv3_stall_status() and may issue the
 * access again after a RESUME with Retry.  The model cannot hold a stall
 * that software would never hear of: when the event cannot be written
 * (queue off, full or aborted) the transaction is terminated instead, and
 * when the table holds only pending stalls the fault is recorded without
 * Stall and terminated.  CMD_RESUME (Action Terminate, Retry, Abort;
 * reserved Action is CERROR_ILL) completes the stall it names; a RESUME
 * naming no stalled transaction is ignored, as the architecture says.
 * CMD_STALL_TERM terminates every stall of a StreamID; clearing SMMUEN or
 * resetting terminates them all.
 *
 * Everything here runs under smmu->lock; the public functions take it.
 */
#include "smmuv3_internal.h"

#define PRI_PERMS (VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC | \
		   VIOMMU_SMMUV3_PRI_PRIV)

/* ---- PRI groups ------------------------------------------------------- */

/* pri_find() - the group (@sid, @grpidx), or NULL. */
static struct pri_grp *pri_find(struct viommu_smmuv3 *s, uint32_t sid,
				unsigned int grpidx)
{
	for (unsigned int i = 0; i < VIOMMU_SMMUV3_PRI_GROUPS; i++) {
		struct pri_grp *g = &s->pri[i];

		if (g->used && g->sid == sid && g->grpidx == grpidx)
			return g;
	}
	return NULL;
}

/*
 * pri_open() - the group a request of (@sid, @grpidx) belongs to: the
 * outstanding one, or a new one (an answered group with the same index
 * is replaced: the endpoint has moved on).  NULL when the table is full.
 */
static struct pri_grp *pri_open(struct viommu_smmuv3 *s, uint32_t sid,
				unsigned int grpidx)
{
	struct pri_grp *g = pri_find(s, sid, grpidx);

	if (g && !g->answered)
		return g;
	if (!g) {
		for (unsigned int i = 0; i < VIOMMU_SMMUV3_PRI_GROUPS; i++)
			if (!s->pri[i].used) {
				g = &s->pri[i];
				break;
			}
	}
	if (!g)
		return NULL;
	memset(g, 0, sizeof(*g));
	g->used = true;
	g->sid = sid;
	g->grpidx = (uint16_t)grpidx;
	return g;
}

/* pri_reset() - forget the groups; terminate stalls (lock held). */
void pri_reset(struct viommu_smmuv3 *s)
{
	memset(s->pri, 0, sizeof(s->pri));
	stall_term_all(s);
}

/* ---- PRI queue ----------------------------------------------------------- */

/* struct ppr - one Page Request being queued. */
struct ppr {
	uint32_t sid, ssid;
	bool ssv, last;
	unsigned int perm, grpidx;
	uint64_t iova;
};

/* ppr_encode() - the 16-byte PRI queue entry. */
static void ppr_encode(const struct ppr *r, uint8_t out[PRI_SIZE])
{
	uint64_t d0, d1;

	d0 = r->sid | ((uint64_t)(r->ssv ? r->ssid & 0xfffff : 0) << 32) |
	     ((uint64_t)!!(r->perm & VIOMMU_SMMUV3_PRI_PRIV) << 58) |
	     ((uint64_t)!!(r->perm & VIOMMU_EXEC) << 59) |
	     ((uint64_t)!!(r->perm & VIOMMU_READ) << 60) |
	     ((uint64_t)!!(r->perm & VIOMMU_WRITE) << 61) |
	     ((uint64_t)r->last << 62) | ((uint64_t)r->ssv << 63);
	d1 = r->grpidx | (r->iova & GENMASK(63, 12));
	put_le64(out, d0);
	put_le64(out + 8, d1);
}

/*
 * priq_write() - put @r on the PRI queue (lock held).
 * Return: 0; -EAGAIN, -ENOSPC, -EIO when discarded (see smmuv3.h).
 */
static int priq_write(struct viommu_smmuv3 *s, const struct ppr *r,
		      struct irq_batch *b)
{
	struct queue *q = &s->priq;
	unsigned int l = q_log2(q);
	uint8_t ent[PRI_SIZE];
	uint64_t addr;

	if (!smmu_enabled(s) || !(s->cr0 & CR0_PRIQEN))
		return -EAGAIN;
	if ((s->gerror ^ s->gerrorn) & GERR_PRIQ_ABT)
		return -EIO;
	if ((q->prod ^ q->cons) & Q_OVF)
		return -ENOSPC; /* overflow not acknowledged yet */
	if (q_full(q)) {
		q->prod ^= Q_OVF;
		rl_warn(&s->rl, &s->log, "smmuv3: PRI queue overflow");
		return -ENOSPC;
	}
	ppr_encode(r, ent);
	addr = (q->base & Q_BASE_ADDR_MASK & ~((16ull << l) - 1)) +
	       (uint64_t)(q->prod & ((1u << l) - 1)) * PRI_SIZE;
	if (viommu_mem_write(s->mem, addr, ent, sizeof(ent))) {
		rl_warn(&s->rl, &s->log, "smmuv3: PRI queue at %#llx not writable "
			 "RAM", (unsigned long long)addr);
		gerror_raise(s, b, GERR_PRIQ_ABT);
		return -EIO;
	}
	q->prod = (q->prod & Q_OVF) | ((q->prod + 1) & ((2u << l) - 1));
	s->st.pri_requests++;
	if (s->irq_ctrl & IRQ_PRIQ)
		irq_raise(s, b, VIOMMU_SMMUV3_IRQ_PRIQ, &s->priq_irq,
			  GERR_MSI_PRIQ_ABT);
	return 0;
}

/* ppr_check() - argument rules of viommu_smmuv3_page_request(). */
static int ppr_check(const struct viommu_smmuv3 *s, const struct ppr *r)
{
	if (s->sid_bits < 32 && (r->sid >> s->sid_bits))
		return -EINVAL;
	if (r->ssv && (!s->ssid_bits || (r->ssid >> s->ssid_bits)))
		return -EINVAL;
	if (r->grpidx > 511 || (r->perm & ~PRI_PERMS))
		return -EINVAL;
	if (!r->ssv && (r->perm & (VIOMMU_EXEC | VIOMMU_SMMUV3_PRI_PRIV)))
		return -EINVAL;
	return 0;
}

/* page_request() - queue @r and track its group (lock held). */
static int page_request(struct viommu_smmuv3 *s, const struct ppr *r,
			struct irq_batch *b)
{
	bool stop = r->ssv && r->last &&
		    !(r->perm & (VIOMMU_READ | VIOMMU_WRITE));
	struct pri_grp *g = NULL;
	int ret;

	if (!stop) {
		g = pri_open(s, r->sid, r->grpidx);
		if (!g)
			return -EBUSY;
	}
	ret = priq_write(s, r, b);
	if (ret) {
		s->st.pri_lost++;
		if (g && r->last) {
			g->answered = true;
			g->resp = VIOMMU_SMMUV3_PRI_SUCCESS;
		}
	}
	if (g)
		g->last |= r->last;
	return ret;
}

VIOMMU_EXPORT int viommu_smmuv3_page_request(struct viommu_smmuv3 *smmu,
					     uint32_t sid, uint32_t ssid,
					     uint64_t iova, unsigned int perm,
					     bool last, unsigned int grpidx)
{
	struct irq_batch b = { 0 };
	struct ppr r = {
		.sid = sid, .ssid = ssid, .ssv = ssid != VIOMMU_NO_PASID,
		.last = last, .perm = perm, .grpidx = grpidx, .iova = iova,
	};
	int ret;

	if (!smmu)
		return -EINVAL;
	if (!(smmu->features & VIOMMU_SMMUV3_F_PRI))
		return -EOPNOTSUPP;
	ret = ppr_check(smmu, &r);
	if (ret)
		return ret;
	pthread_mutex_lock(&smmu->lock);
	ret = page_request(smmu, &r, &b);
	pthread_mutex_unlock(&smmu->lock);
	irq_deliver(smmu, &b);
	return ret;
}

VIOMMU_EXPORT int viommu_smmuv3_pri_response(struct viommu_smmuv3 *smmu,
					     uint32_t sid, unsigned int grpidx,
					     enum viommu_smmuv3_pri_resp *resp)
{
	struct pri_grp *g;
	int ret = -ENOENT;

	if (!smmu || !resp)
		return -EINVAL;
	pthread_mutex_lock(&smmu->lock);
	g = pri_find(smmu, sid, grpidx);
	if (g && !g->answered) {
		ret = -EAGAIN;
	} else if (g) {
		*resp = (enum viommu_smmuv3_pri_resp)g->resp;
		g->used = false;
		ret = 0;
	}
	pthread_mutex_unlock(&smmu->lock);
	return ret;
}

/*
 * cmd_pri_resp() - CMD_PRI_RESP (lock held).  A no-op without PRI.
 * Return: 0; -EINVAL for CERROR_ILL.
 */
int cmd_pri_resp(struct viommu_smmuv3 *s, uint64_t d0, uint64_t d1)
{
	uint32_t sid = (uint32_t)(d0 >> 32), ssid = (uint32_t)FIELD(d0, 31, 12);
	unsigned int grpidx = (unsigned int)FIELD(d1, 8, 0);
	unsigned int resp = (unsigned int)FIELD(d1, 13, 12);
	bool ssv = d0 & BIT(11);
	struct pri_grp *g;

	if (!(s->features & VIOMMU_SMMUV3_F_PRI))
		return 0;
	if (resp == 3 || (s->sid_bits < 32 && (sid >> s->sid_bits)) ||
	    (ssv && (!s->ssid_bits || (ssid >> s->ssid_bits))))
		return -EINVAL;
	g = pri_find(s, sid, grpidx);
	if (!g || g->answered) {
		rl_info(&s->rl, &s->log, "smmuv3: PRI_RESP sid %#x group %u: no "
			 "outstanding group", sid, grpidx);
		s->st.resume_unmatched++;
		return 0;
	}
	g->answered = true;
	g->resp = (uint8_t)resp;
	s->st.pri_responses++;
	return 0;
}

/* ---- stall ------------------------------------------------------------ */

/*
 * stall_applies() - whether fault @e stalls: a translation-class fault at
 * stage 1 with CD.S, or at stage 2 (not during a CD fetch) with STE.S2S.
 */
bool stall_applies(const struct ste *ste, const struct cd *cd, bool s1,
		   const struct evt *e)
{
	if (e->type < EVT_F_TRANSLATION || e->type > EVT_F_PERMISSION)
		return false;
	if (e->s2)
		return ste->s2 && ste->s2c.stall && e->cls != CLASS_CD;
	return s1 && cd->stall;
}

/* stall_lookup() - the pending stall (@sid, @stag), or NULL. */
static struct stall_slot *stall_lookup(struct viommu_smmuv3 *s, uint32_t sid,
				       uint16_t stag)
{
	for (unsigned int i = 0; i < VIOMMU_SMMUV3_STALLS; i++) {
		struct stall_slot *t = &s->stall[i];

		if (t->used && t->sid == sid && t->stag == stag)
			return t;
	}
	return NULL;
}

/*
 * stall_slot_get() - a free slot, else the oldest completed one; NULL when
 * every slot holds a pending stall.
 */
static struct stall_slot *stall_slot_get(struct viommu_smmuv3 *s)
{
	struct stall_slot *old = NULL;

	for (unsigned int i = 0; i < VIOMMU_SMMUV3_STALLS; i++) {
		struct stall_slot *t = &s->stall[i];

		if (!t->used)
			return t;
		if (t->state != VIOMMU_SMMUV3_STALL_PENDING &&
		    (!old || t->seq < old->seq))
			old = t;
	}
	return old;
}

/* stag_next() - a STAG no remembered stall of @sid uses. */
static uint16_t stag_next(struct viommu_smmuv3 *s, uint32_t sid)
{
	/* At most VIOMMU_SMMUV3_STALLS tags are taken: this ends. */
	while (stall_lookup(s, sid, s->next_stag))
		s->next_stag++;
	return s->next_stag++;
}

/*
 * stall_fault() - fault @e stalls (lock held): record it with Stall and a
 * STAG and remember the transaction, or terminate it when it cannot be.
 */
void stall_fault(struct viommu_smmuv3 *s, struct evt *e, struct irq_batch *b)
{
	struct stall_slot *t = stall_slot_get(s);

	if (!t) {
		rl_warn(&s->rl, &s->log, "smmuv3: sid %#x: too many stalls, "
			 "terminating", e->sid);
		e->stall = false;
		evtq_write(s, e, b);
		return;
	}
	memset(t, 0, sizeof(*t));
	e->stall = true;
	e->stag = stag_next(s, e->sid);
	if (evtq_write(s, e, b)) {
		rl_warn(&s->rl, &s->log, "smmuv3: sid %#x: stall event lost, "
			 "terminating", e->sid);
		return;
	}
	t->used = true;
	t->state = VIOMMU_SMMUV3_STALL_PENDING;
	t->sid = e->sid;
	t->stag = e->stag;
	t->iova = e->addr;
	t->seq = ++s->stall_seq;
	s->st.stalls++;
}

/* stall_complete() - a pending stall gets its end @state. */
static void stall_complete(struct viommu_smmuv3 *s, struct stall_slot *t,
			   unsigned int state)
{
	t->state = (uint8_t)state;
	t->seq = ++s->stall_seq;
	s->st.resumes++;
}

/* stall_term_all() - terminate every pending stall (lock held). */
void stall_term_all(struct viommu_smmuv3 *s)
{
	for (unsigned int i = 0; i < VIOMMU_SMMUV3_STALLS; i++) {
		struct stall_slot *t = &s->stall[i];

		if (t->used && t->state == VIOMMU_SMMUV3_STALL_PENDING)
			stall_complete(s, t, VIOMMU_SMMUV3_STALL_TERM);
	}
}

/*
 * cmd_resume() - CMD_RESUME (lock held).  A no-op without stall support.
 * Return: 0; -EINVAL for CERROR_ILL (reserved Action).
 */
int cmd_resume(struct viommu_smmuv3 *s, uint64_t d0, uint64_t d1)
{
	static const unsigned int to_state[3] = {
		VIOMMU_SMMUV3_STALL_TERM,
		VIOMMU_SMMUV3_STALL_RETRY,
		VIOMMU_SMMUV3_STALL_ABORT,
	};
	unsigned int action = (unsigned int)FIELD(d0, 13, 12);
	uint32_t sid = (uint32_t)(d0 >> 32);
	uint16_t stag = (uint16_t)d1;
	struct stall_slot *t;

	if (!(s->features & VIOMMU_SMMUV3_F_STALL))
		return 0;
	if (action == 3)
		return -EINVAL;
	t = stall_lookup(s, sid, stag);
	if (!t || t->state != VIOMMU_SMMUV3_STALL_PENDING) {
		rl_info(&s->rl, &s->log, "smmuv3: RESUME sid %#x stag %#x: no "
			 "stalled transaction, ignored", sid, stag);
		s->st.resume_unmatched++;
		return 0;
	}
	stall_complete(s, t, to_state[action]);
	return 0;
}

/*
 * cmd_stall_term() - CMD_STALL_TERM: terminate the stalls of a StreamID
 * (lock held).  Return: 0; -EINVAL (CERROR_ILL) without stall support.
 */
int cmd_stall_term(struct viommu_smmuv3 *s, uint64_t d0)
{
	uint32_t sid = (uint32_t)(d0 >> 32);

	if (!(s->features & VIOMMU_SMMUV3_F_STALL))
		return -EINVAL;
	for (unsigned int i = 0; i < VIOMMU_SMMUV3_STALLS; i++) {
		struct stall_slot *t = &s->stall[i];

		if (t->used && t->sid == sid &&
		    t->state == VIOMMU_SMMUV3_STALL_PENDING)
			stall_complete(s, t, VIOMMU_SMMUV3_STALL_TERM);
	}
	return 0;
}

VIOMMU_EXPORT int viommu_smmuv3_stall_find(struct viommu_smmuv3 *smmu,
					   uint32_t sid, uint64_t iova,
					   uint16_t *stag)
{
	const struct stall_slot *best = NULL;
	int ret = -ENOENT;

	if (!smmu || !stag)
		return -EINVAL;
	pthread_mutex_lock(&smmu->lock);
	for (unsigned int i = 0; i < VIOMMU_SMMUV3_STALLS; i++) {
		const struct stall_slot *t = &smmu->stall[i];

		if (t->used && t->sid == sid && (t->iova >> 12) == (iova >> 12)
		    && (!best || t->seq > best->seq))
			best = t;
	}
	if (best) {
		*stag = best->stag;
		ret = 0;
	}
	pthread_mutex_unlock(&smmu->lock);
	return ret;
}

VIOMMU_EXPORT int
viommu_smmuv3_stall_status(struct viommu_smmuv3 *smmu, uint32_t sid,
			   uint16_t stag, enum viommu_smmuv3_stall_state *state)
{
	struct stall_slot *t;
	int ret = -ENOENT;

	if (!smmu || !state)
		return -EINVAL;
	pthread_mutex_lock(&smmu->lock);
	t = stall_lookup(smmu, sid, stag);
	if (t) {
		*state = (enum viommu_smmuv3_stall_state)t->state;
		if (t->state != VIOMMU_SMMUV3_STALL_PENDING)
			t->used = false;
		ret = 0;
	}
	pthread_mutex_unlock(&smmu->lock);
	return ret;
}
