/*
 * config.c - SMMUv3 configuration structures: stream table look-up (linear
 * and 2-level), STE fetch and decode, CD table look-up (one CD, linear, or
 * 2-level with 4K or 64K leaf tables), CD fetch and decode, and the
 * configuration cache that holds decoded STEs (tagged by StreamID) and CDs
 * (tagged by StreamID and SubstreamID) until CFGI_* drops them.
 *
 * Every guest-supplied value is checked: an STE or CD the model cannot
 * honour is ILLEGAL (C_BAD_STE / C_BAD_CD), a StreamID beyond the table or
 * an unpopulated 2-level span is C_BAD_STREAMID, a SubstreamID beyond
 * S1CDMax or behind an invalid L1 CD descriptor is C_BAD_SUBSTREAMID, and
 * a structure that is not guest RAM gives F_STE_FETCH / F_CD_FETCH.  With
 * stage 2 enabled, CD and L1 CD descriptor addresses are IPAs: they go
 * through the STE's stage 2 first and a stage-2 fault there is reported
 * as that fault with Class CD.  Failures are never cached.
 *
 * Stall fields: STE.S1STALLD, STE.S2S and CD.S are ILLEGAL unless stalls
 * are advertised (IDR0.STALL_MODEL 0b00), and CD.S is ILLEGAL under an STE
 * with S1STALLD set.  Stage-2 faults of stalling streams are recorded
 * whatever S2R says (a stall must reach software to be resumed).
 *
 * All functions here run with smmu->lock held.
 */
#include "smmuv3_internal.h"

static const unsigned int ps_bits[8] = { 32, 36, 40, 42, 44, 48, 52, 52 };

/* le64() - little-endian load. */
static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* bad() - fill a configuration error event; returns -EFAULT. */
static int bad(struct evt *e, uint8_t type, uint64_t fetch)
{
	e->type = type;
	e->fetch = fetch;
	return -EFAULT;
}

/* read_qwords() - @n little-endian u64s at @gpa. */
static int read_qwords(struct viommu_smmuv3 *s, uint64_t gpa, uint64_t *q,
		       unsigned int n)
{
	uint8_t buf[64];

	if (viommu_mem_read(s->mem, gpa, buf, n * 8))
		return -EFAULT;
	for (unsigned int i = 0; i < n; i++)
		q[i] = le64(buf + 8 * i);
	return 0;
}

/* ---- stream table ------------------------------------------------------ */

/* l2_ste_addr() - 2-level look-up of @sid's STE address. */
static int l2_ste_addr(struct viommu_smmuv3 *s, uint32_t sid,
		       unsigned int log2size, uint64_t *addr, struct evt *e)
{
	unsigned int split = (unsigned int)FIELD(s->strtab_cfg, 10, 6), span;
	uint64_t l1base, l1, l1addr, l2idx;

	if (split != 6 && split != 8 && split != 10)
		split = 6; /* reserved values behave as 6 */
	if (split > log2size)
		split = log2size;
	l1base = s->strtab_base & STRTAB_ADDR_MASK &
		 ~((8ull << (log2size - split)) - 1);
	l1addr = l1base + ((uint64_t)sid >> split) * 8;
	if (read_qwords(s, l1addr, &l1, 1))
		return bad(e, EVT_F_STE_FETCH, l1addr);
	span = (unsigned int)(l1 & 0x1f);
	l2idx = sid & ((1ull << split) - 1);
	if (span == 0 || span > split + 1 || (l2idx >> (span - 1)))
		return bad(e, EVT_C_BAD_STREAMID, 0);
	*addr = (l1 & STRTAB_ADDR_MASK & ~((64ull << (span - 1)) - 1)) +
		l2idx * STE_SIZE;
	return 0;
}

/* ste_addr() - where @sid's STE lives. */
static int ste_addr(struct viommu_smmuv3 *s, uint32_t sid, uint64_t *addr,
		    struct evt *e)
{
	unsigned int log2size = s->strtab_cfg & 0x3f;
	unsigned int fmt = (unsigned int)FIELD(s->strtab_cfg, 17, 16);

	if (log2size > s->sid_bits)
		log2size = s->sid_bits;
	if ((uint64_t)sid >> log2size)
		return bad(e, EVT_C_BAD_STREAMID, 0);
	if (fmt == 1 && (s->features & VIOMMU_SMMUV3_F_2LVL_STE))
		return l2_ste_addr(s, sid, log2size, addr, e);
	/* Linear (reserved formats behave as linear). */
	*addr = (s->strtab_base & STRTAB_ADDR_MASK &
		 ~((64ull << log2size) - 1)) + (uint64_t)sid * STE_SIZE;
	return 0;
}

/* s2_start_level() - the level SL0 selects for granule @g, or -1. */
static int s2_start_level(unsigned int g, unsigned int sl0)
{
	static const int l4k[4] = { 2, 1, 0, -1 };
	static const int l16k[4] = { 3, 2, 1, 0 };
	static const int l64k[4] = { 3, 2, 1, -1 };

	if (g == 4096)
		return l4k[sl0];
	return g == 16384 ? l16k[sl0] : l64k[sl0];
}

/* decode_s2() - the stage-2 fields of STE dwords 2 and 3. */
static int decode_s2(struct viommu_smmuv3 *s, const uint64_t *q,
		     struct s2cfg *c)
{
	static const unsigned int tg[4] = { 4096, 65536, 16384, 0 };
	uint64_t d2 = q[2];
	bool hw = s->features & VIOMMU_SMMUV3_F_HTTU;
	unsigned int oas = ps_bits[FIELD(d2, 50, 48)];
	int sl;

	if (!(d2 & BIT(51)) || (d2 & BIT(52)))
		return -EINVAL; /* AArch32, big-endian */
	if ((d2 & BIT(57)) && !(s->features & VIOMMU_SMMUV3_F_STALL))
		return -EINVAL; /* S2S without stall support */
	memset(c, 0, sizeof(*c));
	c->lp.stage = LPAE_STAGE2;
	c->lp.granule = tg[FIELD(d2, 47, 46)];
	if (!c->lp.granule)
		return -EINVAL;
	c->lp.ias = 64 - (unsigned int)FIELD(d2, 37, 32);
	c->lp.oas = oas > s->oas ? s->oas : oas;
	sl = s2_start_level(c->lp.granule, (unsigned int)FIELD(d2, 39, 38));
	if (sl < 0)
		return -EINVAL;
	c->lp.start_level = sl;
	c->lp.hd = hw && (d2 & BIT(55));
	c->lp.ha = hw && ((d2 & BIT(56)) || c->lp.hd);
	if (lpae_cfg_validate(&c->lp))
		return -EINVAL;
	c->ttb = q[3] & GENMASK(51, 4);
	c->vmid = (uint16_t)FIELD(d2, 15, 0);
	c->affd = d2 & BIT(53);
	c->ptw = d2 & BIT(54);
	c->record = d2 & BIT(58);
	c->stall = d2 & BIT(57);
	return 0;
}

/* decode_s1() - the stage-1 (CD table) fields of an STE. */
static int decode_s1(struct viommu_smmuv3 *s, const uint64_t *q,
		     struct ste *t)
{
	t->s1ctxptr = q[0] & GENMASK(51, 6);
	t->s1fmt = (unsigned int)FIELD(q[0], 5, 4);
	t->s1cdmax = (unsigned int)FIELD(q[0], 63, 59);
	t->s1dss = (unsigned int)FIELD(q[1], 1, 0);
	if (FIELD(q[1], 31, 30))
		return -EINVAL; /* STRW: only NS-EL1 */
	t->s1stalld = q[1] & BIT(27);
	if (t->s1stalld && !(s->features & VIOMMU_SMMUV3_F_STALL))
		return -EINVAL; /* S1STALLD needs STALL_MODEL 0b00 */
	if (!t->s1cdmax)
		return 0;
	if (t->s1cdmax > s->ssid_bits || t->s1dss == 3 || t->s1fmt == 3)
		return -EINVAL;
	if (t->s1fmt && !(s->idr[0] & BIT(19)))
		return -EINVAL; /* 2-level CD tables not advertised */
	return 0;
}

/* ste_decode() - validate and decode the 8 dwords of an STE. */
static int ste_decode(struct viommu_smmuv3 *s, const uint64_t *q,
		      struct ste *t)
{
	memset(t, 0, sizeof(*t));
	if (!(q[0] & 1))
		return -EINVAL;
	t->config = (unsigned int)FIELD(q[0], 3, 1);
	if (t->config == STE_CFG_ABORT || t->config == STE_CFG_BYPASS)
		return 0;
	if (t->config < STE_CFG_BYPASS)
		return -EINVAL;
	t->s1 = t->config & 1;
	t->s2 = t->config & 2;
	if (t->s1 && !(s->features & VIOMMU_SMMUV3_F_STAGE1))
		return -EINVAL;
	if (t->s2 && !(s->features & VIOMMU_SMMUV3_F_STAGE2))
		return -EINVAL;
	if (t->s1 && decode_s1(s, q, t))
		return -EINVAL;
	if (t->s2 && decode_s2(s, q, &t->s2c))
		return -EINVAL;
	t->privcfg = (unsigned int)FIELD(q[1], 49, 48);
	t->instcfg = (unsigned int)FIELD(q[1], 51, 50);
	if (s->features & VIOMMU_SMMUV3_F_STAGE2)
		t->vmid = (uint16_t)FIELD(q[2], 15, 0);
	return 0;
}

/*
 * ste_get() - the decoded STE of @sid, from the cache or guest memory.
 * Return: 0; -EFAULT with @e->type (and @e->fetch) set.
 */
int ste_get(struct viommu_smmuv3 *s, uint32_t sid, struct ste *out,
	    struct evt *e)
{
	struct ste_slot *sl = &s->ste_cache[sid & s->ste_mask];
	uint64_t addr, q[8];
	int ret;

	if (sl->valid && sl->gen == s->cfg_gen && sl->sid == sid) {
		s->st.cfg_hits++;
		*out = sl->ste;
		return 0;
	}
	s->st.cfg_misses++;
	ret = ste_addr(s, sid, &addr, e);
	if (ret)
		return ret;
	if (read_qwords(s, addr, q, 8))
		return bad(e, EVT_F_STE_FETCH, addr);
	if (ste_decode(s, q, out)) {
		rl_warn(&s->rl, &s->log, "smmuv3: sid %#x: bad STE %#llx %#llx "
			 "%#llx %#llx", sid, (unsigned long long)q[0],
			 (unsigned long long)q[1], (unsigned long long)q[2],
			 (unsigned long long)q[3]);
		return bad(e, EVT_C_BAD_STE, 0);
	}
	sl->valid = true;
	sl->gen = s->cfg_gen;
	sl->sid = sid;
	sl->ste = *out;
	return 0;
}

/* ---- context descriptors --------------------------------------------------- */

/*
 * cd_fetch() - read @n dwords of a CD structure at @addr (an IPA when the
 * STE has stage 2).
 */
static int cd_fetch(struct viommu_smmuv3 *s, const struct ste *t,
		    uint64_t addr, uint64_t *q, unsigned int n,
		    struct evt *e)
{
	uint64_t pa = addr;

	if (t->s2) {
		struct lpae_result r;

		if (s2_translate(s, &t->s2c, addr, VIOMMU_READ, CLASS_CD,
				 &pa, &r, e))
			return -EFAULT;
	}
	if (read_qwords(s, pa, q, n))
		return bad(e, EVT_F_CD_FETCH, pa);
	return 0;
}

/* cd_addr() - where the CD for @ssid lives (an IPA with stage 2). */
static int cd_addr(struct viommu_smmuv3 *s, const struct ste *t,
		   uint32_t ssid, uint64_t *addr, struct evt *e)
{
	unsigned int l2bits;
	uint64_t l1;

	if (!t->s1cdmax || t->s1fmt == 0) {
		*addr = t->s1ctxptr + (uint64_t)ssid * CD_SIZE;
		return 0;
	}
	l2bits = t->s1fmt == 1 ? 6 : 10; /* 4K or 64K leaf tables */
	if (cd_fetch(s, t, t->s1ctxptr + (uint64_t)(ssid >> l2bits) * 8, &l1,
		     1, e))
		return -EFAULT;
	if (!(l1 & 1))
		return bad(e, EVT_C_BAD_SUBSTREAMID, 0);
	*addr = (l1 & GENMASK(51, 12)) +
		(uint64_t)(ssid & ((1u << l2bits) - 1)) * CD_SIZE;
	return 0;
}

/* decode_half() - TTB0 (@i 0) or TTB1 (@i 1) of a CD. */
static int decode_half(struct viommu_smmuv3 *s, const uint64_t *q,
		       unsigned int i, unsigned int ips, struct cd_half *h)
{
	static const unsigned int tg0[4] = { 4096, 65536, 16384, 0 };
	static const unsigned int tg1[4] = { 0, 16384, 4096, 65536 };
	bool hw = s->features & VIOMMU_SMMUV3_F_HTTU;
	unsigned int sh = i ? 16 : 0;

	memset(h, 0, sizeof(*h));
	h->enabled = !(q[0] & BIT(i ? 30 : 14));
	if (!h->enabled)
		return 0;
	h->lp.stage = LPAE_STAGE1;
	h->lp.granule = (i ? tg1 : tg0)[FIELD(q[0], sh + 7, sh + 6)];
	if (!h->lp.granule)
		return -EINVAL;
	h->lp.ias = 64 - (unsigned int)FIELD(q[0], sh + 5, sh);
	h->lp.oas = ips;
	h->lp.start_level = LPAE_SL_AUTO;
	h->lp.hd = hw && (q[0] & BIT(42));
	h->lp.ha = hw && ((q[0] & BIT(43)) || h->lp.hd);
	if (lpae_cfg_validate(&h->lp))
		return -EINVAL;
	h->ttb = q[1 + i] & GENMASK(51, 4);
	return 0;
}

/* cd_decode() - validate and decode a CD. */
static int cd_decode(struct viommu_smmuv3 *s, const uint64_t *q,
		     struct cd *c)
{
	unsigned int ips = ps_bits[FIELD(q[0], 34, 32)];

	memset(c, 0, sizeof(*c));
	if (!(q[0] & BIT(31)) || !(q[0] & BIT(41)) || (q[0] & BIT(15)))
		return -EINVAL; /* !V, AArch32, big-endian */
	if (ips > s->oas)
		ips = s->oas;
	if (decode_half(s, q, 0, ips, &c->t[0]) ||
	    decode_half(s, q, 1, ips, &c->t[1]))
		return -EINVAL;
	c->asid = (uint16_t)FIELD(q[0], 63, 48);
	c->affd = q[0] & BIT(35);
	c->tbi0 = q[0] & BIT(38);
	c->tbi1 = q[0] & BIT(39);
	c->record = q[0] & BIT(45);
	c->stall = q[0] & BIT(44);
	return 0;
}

/* cd_slot_of() - the cache slot for (@sid, @ssid). */
static struct cd_slot *cd_slot_of(struct viommu_smmuv3 *s, uint32_t sid,
				  uint32_t ssid)
{
	uint32_t h = sid * 0x9e3779b1u ^ ssid * 0x85ebca6bu;

	return &s->cd_cache[(h ^ (h >> 15)) & s->cd_mask];
}

/*
 * cd_get() - the decoded CD of (@sid, @ssid) under STE @t (stage 1
 * enabled, @ssid already checked against S1CDMax).
 * Return: 0; -EFAULT with @e filled.
 */
int cd_get(struct viommu_smmuv3 *s, const struct ste *t, uint32_t sid,
	   uint32_t ssid, struct cd *out, struct evt *e)
{
	struct cd_slot *sl = cd_slot_of(s, sid, ssid);
	uint64_t addr, q[8];

	if (sl->valid && sl->gen == s->cfg_gen && sl->sid == sid &&
	    sl->ssid == ssid) {
		s->st.cfg_hits++;
		*out = sl->cd;
		return 0;
	}
	s->st.cfg_misses++;
	if (cd_addr(s, t, ssid, &addr, e) || cd_fetch(s, t, addr, q, 8, e))
		return -EFAULT;
	if (cd_decode(s, q, out) || (out->stall &&
	    (!(s->features & VIOMMU_SMMUV3_F_STALL) || t->s1stalld))) {
		rl_warn(&s->rl, &s->log, "smmuv3: sid %#x ssid %#x: bad CD %#llx "
			 "%#llx", sid, ssid, (unsigned long long)q[0],
			 (unsigned long long)q[1]);
		return bad(e, EVT_C_BAD_CD, 0);
	}
	sl->valid = true;
	sl->gen = s->cfg_gen;
	sl->sid = sid;
	sl->ssid = ssid;
	sl->cd = *out;
	return 0;
}

/* ---- invalidation ---------------------------------------------------------- */

/*
 * cfg_inval_ste() - drop STEs and CDs of StreamIDs [first, last]: one
 * StreamID looks at its STE slot and scans the CD slots, every StreamID
 * only bumps the generation (O(1), whatever the cache sizes), any other
 * range scans both caches (bounded by cfg_entries, never by endpoints).
 */
void cfg_inval_ste(struct viommu_smmuv3 *s, uint32_t first, uint32_t last)
{
	if (first == 0 && last == UINT32_MAX) {
		s->cfg_gen++;
		return;
	}
	if (first == last) {
		struct ste_slot *sl = &s->ste_cache[first & s->ste_mask];

		if (sl->sid == first)
			sl->valid = false;
	}
	for (uint32_t i = 0; first != last && i <= s->ste_mask; i++) {
		struct ste_slot *sl = &s->ste_cache[i];

		if (sl->valid && sl->sid >= first && sl->sid <= last)
			sl->valid = false;
	}
	for (uint32_t i = 0; i <= s->cd_mask; i++) {
		struct cd_slot *sl = &s->cd_cache[i];

		if (sl->valid && sl->sid >= first && sl->sid <= last)
			sl->valid = false;
	}
}

/* cfg_inval_cd() - drop the CD of (@sid, @ssid), or every CD of @sid. */
void cfg_inval_cd(struct viommu_smmuv3 *s, uint32_t sid, uint32_t ssid,
		  bool all)
{
	if (!all) {
		struct cd_slot *sl = cd_slot_of(s, sid, ssid);

		if (sl->valid && sl->sid == sid && sl->ssid == ssid)
			sl->valid = false;
		return;
	}
	for (uint32_t i = 0; i <= s->cd_mask; i++) {
		struct cd_slot *sl = &s->cd_cache[i];

		if (sl->valid && sl->sid == sid)
			sl->valid = false;
	}
}

/* ---- stage 2 ------------------------------------------------------------------ */

/* evt_from_walk() - the event type and addresses of a walk fault. */
void evt_from_walk(const struct lpae_result *r, struct evt *e)
{
	switch (r->fault) {
	case LPAE_FAULT_ADDR_SIZE: e->type = EVT_F_ADDR_SIZE; break;
	case LPAE_FAULT_ACCESS: e->type = EVT_F_ACCESS; break;
	case LPAE_FAULT_PERMISSION: e->type = EVT_F_PERMISSION; break;
	case LPAE_FAULT_WALK_EABT:
		e->type = EVT_F_WALK_EABT;
		e->fetch = r->fault_addr;
		break;
	default: e->type = EVT_F_TRANSLATION; break;
	}
}

/* quiet() - whether a fault of @type is unrecorded (R / S2R clear). */
static bool quiet(uint8_t type, bool record)
{
	return !record && type != EVT_F_WALK_EABT;
}

/*
 * s2_translate() - IPA -> PA through stage 2 @c for @access.  On a fault
 * fill @e as a stage-2 fault of Class @cls at @ipa (type 0 when the STE
 * does not record it) and return -EFAULT.  @res receives the walk result.
 */
int s2_translate(struct viommu_smmuv3 *s, const struct s2cfg *c,
		 uint64_t ipa, unsigned int access, uint8_t cls,
		 uint64_t *pa, struct lpae_result *res, struct evt *e)
{
	int ret = lpae_walk(&c->lp, s->mem, c->ttb, ipa, access, NULL, NULL,
			    res);

	if (ret == -EFAULT && res->fault == LPAE_FAULT_ACCESS && c->affd &&
	    !(access & ~res->perm))
		ret = 0; /* AFFD: access flag faults disabled */
	if (!ret) {
		*pa = res->oa;
		return 0;
	}
	if (ret != -EFAULT)
		res->fault = LPAE_FAULT_TRANSLATION;
	evt_from_walk(res, e);
	if (quiet(e->type, c->record || (c->stall && cls != CLASS_CD)))
		e->type = 0;
	e->s2 = true;
	e->cls = cls;
	e->ipa = ipa;
	return -EFAULT;
}
