/*
 * refdrv_tables.c - the reference SMMUv3 driver, part two: hitless STE and
 * CD updates (the entry writer), stream table and CD tables, domains with
 * map/unmap/TLBI, and attaching StreamIDs and SubstreamIDs.  See refdrv.h
 * and refdrv_internal.h.
 */
#include "refdrv/smmuv3_internal.h"

/* ---- entry writer -------------------------------------------------------- */

/* ste_used() - the STE bits the SMMU reads for @e's configuration. */
static void ste_used(const uint64_t *e, uint64_t *u)
{
	unsigned int cfg = (unsigned int)FIELD(e[0], 3, 1);

	memset(u, 0, 64);
	u[0] = STE0_V;
	if (!(e[0] & STE0_V))
		return;
	u[0] |= STE0_CFG;
	if (cfg == CFG_BYPASS)
		u[1] |= STE1_SHCFG;
	if (cfg <= CFG_BYPASS)
		return;
	u[1] |= STE1_ATTR;
	if (cfg & 1) {
		u[0] |= STE0_S1FMT | STE0_S1CTXPTR | STE0_S1CDMAX;
		u[1] |= STE1_S1DSS | STE1_S1C | STE1_STRW | STE1_EATS;
		u[2] |= STE2_VMID; /* tags stage-1 entries too */
		if (FIELD(e[1], 1, 0) == S1DSS_BYPASS)
			u[1] |= STE1_SHCFG;
	}
	if (cfg & 2) {
		u[1] |= STE1_EATS | STE1_SHCFG;
		u[2] |= STE2_VMID | STE2_S2;
		u[3] |= STE3_S2TTB;
	}
}

/* cd_used() - the CD bits the SMMU reads. */
static void cd_used(const uint64_t *e, uint64_t *u)
{
	memset(u, 0, 64);
	u[0] = CD0_V;
	if (!(e[0] & CD0_V))
		return;
	u[0] = ~0ull;
	if (!(e[0] & CD0_EPD0))
		u[1] = CD_TTB;
	if (!(e[0] & CD0_EPD1))
		u[2] = CD_TTB;
	u[3] = ~0ull;
}

/* struct entry - one STE or CD being updated. */
struct entry {
	enum smmudrv_entry kind;
	uint32_t sid, ssid;
	uint64_t gpa;
	bool hitless;
	unsigned int steps;
};

/* entry_sync() - CFGI_STE / CFGI_CD (leaf) + CMD_SYNC. */
static int entry_sync(struct smmudrv *d, const struct entry *e)
{
	if (e->kind == SMMUDRV_ENTRY_STE)
		return drv_cmd_sync1(d, OP_CFGI_STE | CMD_SID(e->sid), 1);
	return drv_cmd_sync1(d, OP_CFGI_CD | CMD_SID(e->sid) |
			     ((uint64_t)e->ssid << 12), 1);
}

/* tell() - show the entry as it is now to a step or store hook. */
static void tell(struct smmudrv *d, const struct entry *e,
		 void (*fn)(void *, const struct smmudrv_step *))
{
	struct smmudrv_step st = { .kind = e->kind, .sid = e->sid,
				   .ssid = e->ssid, .step = e->steps,
				   .hitless = e->hitless };

	for (int i = 0; i < 8; i++)
		st.q[i] = drv_ld64(d, e->gpa + 8 * i);
	fn(d->cfg.step_opaque, &st);
}

/* entry_set() - store qwords [first, first + n) of @v that differ; sync. */
static int entry_set(struct smmudrv *d, struct entry *e, const uint64_t *v,
		     unsigned int first, unsigned int n)
{
	bool changed = false;
	int ret;

	for (unsigned int i = first; i < first + n; i++) {
		if (drv_ld64(d, e->gpa + 8 * i) == v[i])
			continue;
		drv_st64(d, e->gpa + 8 * i, v[i]);
		changed = true;
		if (d->cfg.store)
			tell(d, e, d->cfg.store);
	}
	if (!changed)
		return 0;
	ret = entry_sync(d, e);
	if (ret)
		return ret;
	d->info.entry_syncs++;
	e->steps++;
	if (d->cfg.step)
		tell(d, e, d->cfg.step);
	return 0;
}

/*
 * write_entry() - move the entry to @target so that the SMMU, reading it
 * at any time, sees the old entry, the new one or an invalid one.
 */
static int write_entry(struct smmudrv *d, struct entry *e,
		       const uint64_t *target)
{
	uint64_t cur[8], cu[8], tu[8], upd[8], vbit;
	unsigned int diff = 0;
	int ret;

	for (int i = 0; i < 8; i++)
		cur[i] = drv_ld64(d, e->gpa + 8 * i);
	if (e->kind == SMMUDRV_ENTRY_STE) {
		ste_used(cur, cu);
		ste_used(target, tu);
		vbit = STE0_V;
	} else {
		cd_used(cur, cu);
		cd_used(target, tu);
		vbit = CD0_V;
	}
	for (int i = 0; i < 8; i++) {
		upd[i] = (cur[i] & cu[i]) | (target[i] & ~cu[i]);
		if ((upd[i] & tu[i]) != (target[i] & tu[i]))
			diff |= 1u << i;
	}
	e->hitless = __builtin_popcount(diff) <= 1;
	if (__builtin_popcount(diff) == 1) {
		unsigned int crit = (unsigned int)__builtin_ctz(diff);

		upd[crit] = cur[crit];
		ret = entry_set(d, e, upd, 0, 8);
		if (!ret)
			ret = entry_set(d, e, target, crit, 1);
	} else if (diff) {
		upd[0] = cur[0] & ~vbit;
		ret = entry_set(d, e, upd, 0, 1);
		if (!ret)
			ret = entry_set(d, e, target, 1, 7);
	} else {
		ret = 0;
	}
	if (!ret)
		ret = entry_set(d, e, target, 0, 8);
	if (!ret && e->steps) {
		if (e->kind == SMMUDRV_ENTRY_STE)
			d->info.ste_updates++;
		else
			d->info.cd_updates++;
		if (e->hitless)
			d->info.hitless++;
		else
			d->info.disruptive++;
	}
	return ret;
}

/* ---- stream table and CD tables ------------------------------------------ */

/* ste_gpa() - where @sid's STE lives (2-level: L2 table made on demand). */
static int ste_gpa(struct smmudrv *d, uint32_t sid, uint64_t *gpa)
{
	uint64_t l2, sz = 64ull << STRTAB_SPLIT;
	uint32_t i1;
	int ret;

	if (d->info.strtab_log2 < 32 && (sid >> d->info.strtab_log2))
		return -EINVAL;
	if (!d->info.strtab_2lvl) {
		*gpa = d->strtab + (uint64_t)sid * 64;
		return 0;
	}
	i1 = sid >> STRTAB_SPLIT;
	if (!d->l2[i1]) {
		ret = drv_gmem_alloc(d, sz, sz, &l2);
		if (ret)
			return ret;
		drv_init_stes(d, l2, 1ull << STRTAB_SPLIT);
		/* SPAN = SPLIT + 1: the L2 table holds 2^SPLIT STEs. */
		drv_st64(d, d->strtab + 8ull * i1,
			 (l2 & GENMASK(51, 6)) | (STRTAB_SPLIT + 1));
		d->l2[i1] = l2;
	}
	*gpa = d->l2[i1] + (uint64_t)(sid & ((1u << STRTAB_SPLIT) - 1)) * 64;
	return 0;
}

/* s1fmt() - the STE S1Fmt of the driver's CD tables. */
static unsigned int s1fmt(const struct smmudrv *d)
{
	return d->info.cd_2lvl ? 2 : 0; /* 64 KiB leaves, or linear */
}

/* cdtab_alloc() - the table (linear, or L1) of @t. */
static int cdtab_alloc(struct smmudrv *d, struct cdtab *t)
{
	unsigned int bits = d->info.cd_bits;
	uint64_t sz;

	if (t->gpa)
		return 0;
	if (!d->info.cd_2lvl) {
		sz = 64ull << bits;
		return drv_gmem_alloc(d, sz, sz, &t->gpa);
	}
	t->nleaves = 1u << (bits - CD_SPLIT);
	t->leaves = xzalloc(&d->alloc, t->nleaves * sizeof(*t->leaves));
	if (!t->leaves)
		return -ENOMEM;
	sz = 8ull * t->nleaves;
	if (!drv_gmem_alloc(d, sz, MAX(sz, 64), &t->gpa))
		return 0;
	xfree(&d->alloc, t->leaves);
	t->leaves = NULL;
	return -ENOSPC;
}

/* cd_gpa() - where the CD of @ssid lives in @t (leaves made on demand). */
static int cd_gpa(struct smmudrv *d, struct cdtab *t, uint32_t sid,
		  uint32_t ssid, uint64_t *gpa)
{
	uint64_t leaf, sz = 64ull << CD_SPLIT;
	uint32_t li = ssid >> CD_SPLIT;
	int ret = cdtab_alloc(d, t);

	if (ret)
		return ret;
	if (!d->info.cd_2lvl) {
		*gpa = t->gpa + (uint64_t)ssid * 64;
		return 0;
	}
	if (!t->leaves[li]) {
		ret = drv_gmem_alloc(d, sz, sz, &leaf);
		if (ret)
			return ret;
		drv_st64(d, t->gpa + 8ull * li, (leaf & GENMASK(51, 12)) | 1);
		t->leaves[li] = leaf;
		/* An invalid L1 descriptor may be cached: CFGI_CD, not leaf. */
		ret = drv_cmd_sync1(d, OP_CFGI_CD | CMD_SID(sid) |
				    ((uint64_t)ssid << 12), 0);
		if (ret)
			return ret;
	}
	*gpa = t->leaves[li] + (uint64_t)(ssid & ((1u << CD_SPLIT) - 1)) * 64;
	return 0;
}

/* cd_present() - whether the CD of @ssid has memory in @t yet. */
static bool cd_present(const struct smmudrv *d, const struct cdtab *t,
		       uint32_t ssid)
{
	if (!t->gpa)
		return false;
	return !d->info.cd_2lvl || t->leaves[ssid >> CD_SPLIT];
}

/* ps_enc() - the PS/IPS encoding of at least @bits. */
static unsigned int ps_enc(unsigned int bits)
{
	for (unsigned int i = 0; i < 6; i++)
		if (drv_ps_bits[i] >= bits)
			return i;
	return 5;
}

/* tg_enc() - TG0 / STE S2TG encoding of a granule. */
static uint64_t tg_enc(unsigned int g)
{
	return g == 4096 ? 0 : g == 65536 ? 1 : 2;
}

/* make_cd() - the CD of a stage-1 or nested domain. */
static void make_cd(const struct smmudrv_domain *dom, uint64_t q[8])
{
	const struct lpae_cfg *c = &dom->lp;

	memset(q, 0, 64);
	q[0] = (64 - c->ias) | (tg_enc(c->granule) << 6) | (1ull << 8) |
	       (1ull << 10) | (3ull << 12) | CD0_EPD1 | CD0_V |
	       ((uint64_t)ps_enc(c->oas) << 32) | BIT(41) /* AA64 */ |
	       BIT(45) /* R */ | BIT(46) /* A */ | BIT(47) /* ASET */ |
	       ((uint64_t)dom->asid << 48);
	if (c->hd)
		q[0] |= BIT(42);
	if (c->ha)
		q[0] |= BIT(43);
	q[1] = dom->root & CD_TTB;
	q[3] = MAIR_VALUE;
}

/* ste_add_s2() - stage-2 fields of @dom (a STAGE2 domain) into @q. */
static void ste_add_s2(const struct smmudrv_domain *dom, uint64_t q[8])
{
	const struct lpae_cfg *c = &dom->lp;
	uint64_t sl0 = c->granule == 4096 ? 2 - c->sl : 3 - c->sl;
	uint64_t vtcr = (64 - c->ias) | (sl0 << 6) | (1ull << 8) |
			(1ull << 10) | (3ull << 12) |
			(tg_enc(c->granule) << 14) |
			((uint64_t)ps_enc(c->oas) << 16);

	q[1] |= 1ull << 44; /* SHCFG: incoming */
	q[2] = dom->vmid | (vtcr << 32) | BIT(51) /* S2AA64 */ |
	       BIT(54) /* S2PTW */ | BIT(58) /* S2R */;
	if (c->hd)
		q[2] |= BIT(55);
	if (c->ha)
		q[2] |= BIT(56);
	q[3] = dom->root & STE3_S2TTB;
}

/* family() - which CD table the master's STE points at (1: nested). */
static unsigned int family(const struct master *m)
{
	return m->rid == RID_DOMAIN && m->rdom->stage == SMMUDRV_NESTED;
}

/* make_ste() - the STE the master's state calls for. */
static void make_ste(const struct smmudrv *d, const struct master *m,
		     uint64_t q[8])
{
	unsigned int fam = family(m), dss;

	memset(q, 0, 64);
	if (m->rid == RID_BYPASS && !m->npasids) {
		q[0] = STE0_V | ((uint64_t)CFG_BYPASS << 1);
		q[1] = 1ull << 44; /* SHCFG: incoming */
		return;
	}
	if (m->rid == RID_ABORT && !m->npasids) {
		q[0] = STE0_V | ((uint64_t)CFG_ABORT << 1);
		return;
	}
	if (m->rid == RID_DOMAIN && m->rdom->stage == SMMUDRV_STAGE2) {
		q[0] = STE0_V | ((uint64_t)CFG_S2 << 1);
		ste_add_s2(m->rdom, q);
		return;
	}
	dss = m->rid == RID_DOMAIN ? S1DSS_SSID0 :
	      m->rid == RID_BYPASS ? S1DSS_BYPASS : S1DSS_TERMINATE;
	q[0] = STE0_V | ((uint64_t)(fam ? CFG_NESTED : CFG_S1) << 1) |
	       ((uint64_t)s1fmt(d) << 4) | (m->cd[fam].gpa & STE0_S1CTXPTR) |
	       ((uint64_t)d->info.cd_bits << 59);
	q[1] = dss | (1ull << 2) | (1ull << 4) | (3ull << 6);
	if (dss == S1DSS_BYPASS)
		q[1] |= 1ull << 44;
	if (fam)
		ste_add_s2(m->rdom->parent, q);
}

/* write_ste() - bring @m's STE to what its state calls for. */
static int write_ste(struct smmudrv *d, struct master *m)
{
	struct entry e = { .kind = SMMUDRV_ENTRY_STE, .sid = m->sid,
			   .ssid = SMMUDRV_NO_SSID };
	uint64_t q[8];
	int ret = ste_gpa(d, m->sid, &e.gpa);

	if (ret)
		return ret;
	make_ste(d, m, q);
	return write_entry(d, &e, q);
}

/* write_cd() - CD @ssid of @m's table @fam: @dom's, or invalid (NULL). */
static int write_cd(struct smmudrv *d, struct master *m, unsigned int fam,
		    uint32_t ssid, const struct smmudrv_domain *dom)
{
	struct entry e = { .kind = SMMUDRV_ENTRY_CD, .sid = m->sid,
			   .ssid = ssid };
	uint64_t q[8] = { 0 };
	int ret;

	if (!dom && !cd_present(d, &m->cd[fam], ssid))
		return 0;
	ret = cd_gpa(d, &m->cd[fam], m->sid, ssid, &e.gpa);
	if (ret)
		return ret;
	if (dom)
		make_cd(dom, q);
	return write_entry(d, &e, q);
}

/* drv_free_master() - host memory of a master. */
void drv_free_master(struct smmudrv *d, struct master *m)
{
	for (int f = 0; f < 2; f++)
		xfree(&d->alloc, m->cd[f].leaves);
	xfree(&d->alloc, m->pasids);
	xfree(&d->alloc, m);
}

/* ---- domains ------------------------------------------------------------- */

/* id_get() / id_put() - ASIDs and VMIDs, 1..max (0 stays reserved). */
static int id_get(uint64_t *map, unsigned int max, uint16_t *id)
{
	for (unsigned int i = 1; i <= max; i++) {
		if (!(map[i / 64] & BIT(i % 64))) {
			map[i / 64] |= BIT(i % 64);
			*id = (uint16_t)i;
			return 0;
		}
	}
	return -ENOSPC;
}

/* id_put() - free an ID. */
static void id_put(uint64_t *map, uint16_t id)
{
	map[id / 64] &= ~BIT(id % 64);
}

/* dom_check() - the stage, granule and parent of @c are usable. */
static int dom_check(const struct smmudrv *d,
		     const struct smmudrv_domain_config *c, unsigned int *g)
{
	const struct smmudrv_info *in = &d->info;
	bool s1 = c->stage == SMMUDRV_STAGE1 || c->stage == SMMUDRV_NESTED;
	bool s2 = c->stage == SMMUDRV_STAGE2 || c->stage == SMMUDRV_NESTED;

	if (c->stage < SMMUDRV_STAGE1 || c->stage > SMMUDRV_NESTED ||
	    (c->stage == SMMUDRV_NESTED) != !!c->parent)
		return -EINVAL;
	if (c->parent && (c->parent->d != d ||
			  c->parent->stage != SMMUDRV_STAGE2))
		return -EINVAL;
	if ((s1 && !in->stage1) || (s2 && !in->stage2))
		return -EOPNOTSUPP;
	*g = c->granule;
	if (!*g)
		*g = (in->pgsize_bitmap & PG) ? PG :
		     1u << __builtin_ctzll(in->pgsize_bitmap);
	if (*g != 4096 && *g != 16384 && *g != 65536)
		return -EINVAL;
	return (in->pgsize_bitmap & *g) ? 0 : -EOPNOTSUPP;
}

/* dom_format() - the LPAE format of a new domain. */
static int dom_format(const struct smmudrv *d, struct smmudrv_domain *dom,
		      const struct smmudrv_domain_config *c, unsigned int g)
{
	struct lpae_cfg *lp = &dom->lp;

	memset(lp, 0, sizeof(*lp));
	lp->granule = g;
	lp->start_level = LPAE_SL_AUTO;
	if (c->stage == SMMUDRV_STAGE2) {
		lp->stage = LPAE_STAGE2;
		lp->ias = c->ias ? c->ias : d->info.oas;
		lp->oas = d->info.oas;
	} else {
		lp->stage = LPAE_STAGE1;
		lp->ias = c->ias ? c->ias : 48;
		lp->oas = c->parent ? drv_ps_bits[ps_enc(c->parent->lp.ias)] :
			  d->info.oas;
	}
	lp->ha = c->httu && d->info.httu_ha;
	lp->hd = c->httu && d->info.httu_hd;
	return lpae_cfg_validate(lp) ? -EINVAL : 0;
}

/* map_chunk() - map the driver's chunk at IPA == PA in a stage-2 parent. */
static int map_chunk(struct smmudrv *d, struct smmudrv_domain *p)
{
	int ret;

	if (p->chunk_mapped)
		return 0;
	ret = lpae_map(&p->lp, &d->ops, p->root, d->cfg.ram_gpa,
		       d->cfg.ram_gpa, d->cfg.ram_size,
		       VIOMMU_READ | VIOMMU_WRITE);
	if (!ret)
		p->chunk_mapped = true;
	return ret;
}

/* smmudrv_domain_alloc() - see refdrv.h. */
int smmudrv_domain_alloc(struct smmudrv *d,
			 const struct smmudrv_domain_config *cfg,
			 struct smmudrv_domain **out)
{
	struct smmudrv_domain *dom;
	unsigned int g;
	int ret;

	if (!d || !cfg || !out)
		return -EINVAL;
	ret = dom_check(d, cfg, &g);
	if (ret)
		return ret;
	dom = xzalloc(&d->alloc, sizeof(*dom));
	if (!dom)
		return -ENOMEM;
	dom->d = d;
	dom->stage = cfg->stage;
	dom->parent = cfg->parent;
	ret = dom_format(d, dom, cfg, g);
	if (!ret && cfg->stage == SMMUDRV_STAGE2)
		ret = id_get(d->vmids, d->vmid_max, &dom->vmid);
	else if (!ret)
		ret = id_get(d->asids, d->asid_max, &dom->asid);
	if (ret)
		goto fail;
	ret = lpae_alloc_root(&dom->lp, &d->ops, &dom->root);
	if (ret)
		goto fail_id;
	if (dom->parent)
		ret = map_chunk(d, dom->parent);
	if (ret)
		goto fail_root;
	if (dom->parent) {
		dom->parent->children++;
		dom->vmid = dom->parent->vmid;
	}
	dom->next = d->domains;
	d->domains = dom;
	*out = dom;
	return 0;
fail_root:
	lpae_free_tables(&dom->lp, &d->ops, dom->root);
fail_id:
	if (cfg->stage == SMMUDRV_STAGE2)
		id_put(d->vmids, dom->vmid);
	else
		id_put(d->asids, dom->asid);
fail:
	xfree(&d->alloc, dom);
	return ret == -ENOMEM ? -ENOSPC : ret;
}

/* inv_all_cmd() - the command that drops every entry of @dom. */
static void inv_all_cmd(const struct smmudrv_domain *dom, uint64_t *d0)
{
	if (dom->stage == SMMUDRV_STAGE2)
		*d0 = OP_TLBI_S12_VMALL | CMD_VMID(dom->vmid);
	else
		*d0 = OP_TLBI_NH_ASID | CMD_VMID(dom->vmid) |
		      CMD_ASID(dom->asid);
}

/* smmudrv_inv_all() - see refdrv.h. */
int smmudrv_inv_all(struct smmudrv_domain *dom)
{
	uint64_t d0;

	if (!dom)
		return -EINVAL;
	inv_all_cmd(dom, &d0);
	dom->d->info.tlbi_cmds++;
	return drv_cmd_sync1(dom->d, d0, 0);
}

/* smmudrv_domain_free() - see refdrv.h. */
int smmudrv_domain_free(struct smmudrv_domain *dom)
{
	struct smmudrv_domain **pp;
	struct smmudrv *d;
	int ret;

	if (!dom)
		return -EINVAL;
	if (dom->attached || dom->children)
		return -EBUSY;
	d = dom->d;
	ret = smmudrv_inv_all(dom);
	lpae_free_tables(&dom->lp, &d->ops, dom->root);
	if (dom->stage == SMMUDRV_STAGE2)
		id_put(d->vmids, dom->vmid);
	else
		id_put(d->asids, dom->asid);
	if (dom->parent)
		dom->parent->children--;
	for (pp = &d->domains; *pp != dom; pp = &(*pp)->next)
		;
	*pp = dom->next;
	xfree(&d->alloc, dom);
	return ret;
}

/* smmudrv_domain_info() - see refdrv.h. */
int smmudrv_domain_info(const struct smmudrv_domain *dom,
			struct smmudrv_domain_info *out)
{
	if (!dom || !out)
		return -EINVAL;
	out->stage = dom->stage;
	out->asid = dom->asid;
	out->vmid = dom->vmid;
	out->root = dom->root;
	out->lp = dom->lp;
	out->attached = dom->attached;
	return 0;
}

/* smmudrv_domain_ops() - see refdrv.h. */
const struct lpae_ops *smmudrv_domain_ops(const struct smmudrv_domain *dom)
{
	return dom ? &dom->d->ops : NULL;
}

/* smmudrv_map() - see refdrv.h. */
int smmudrv_map(struct smmudrv_domain *dom, uint64_t iova, uint64_t pa,
		uint64_t size, unsigned int prot)
{
	if (!dom)
		return -EINVAL;
	return lpae_map(&dom->lp, &dom->d->ops, dom->root, iova, pa, size,
			prot);
}

/*
 * emit_range() - TLBI commands for [@iova, @iova + @size): one per page,
 * or range commands, each covering (NUM + 1) << SCALE pages: the page
 * count is consumed from its lowest set bit up, five bits of NUM at a time.
 */
static int emit_range(struct smmudrv *d, struct batch *b, uint64_t op,
		      uint64_t amask, unsigned int shift, uint64_t tg,
		      uint64_t iova, uint64_t size, bool range)
{
	uint64_t pages = size >> shift;
	int ret = 0;

	while (pages && !ret) {
		uint64_t num = 1, scale = 0, d1 = iova & amask;

		if (range) {
			scale = (uint64_t)__builtin_ctzll(pages);
			if (scale > 31)
				scale = 31;
			num = (pages >> scale) & 31;
			if (!num)
				num = 1;
			d1 |= tg << 10;
		}
		ret = drv_batch_add(d, b, op | ((range ? num - 1 : 0) << 12) |
				    (scale << 20), d1);
		d->info.tlbi_cmds++;
		iova += (num << scale) << shift;
		pages -= num << scale;
	}
	return ret;
}

/* smmudrv_inv_range() - see refdrv.h. */
int smmudrv_inv_range(struct smmudrv_domain *dom, uint64_t iova,
		      uint64_t size)
{
	struct batch b = { .n = 0 };
	struct smmudrv *d;
	unsigned int sh;
	uint64_t op, amask;
	bool range;
	int ret;

	if (!dom || !size || ((iova | size) & (dom->lp.granule - 1)) ||
	    iova + (size - 1) < iova)
		return -EINVAL;
	d = dom->d;
	sh = dom->lp.pg_shift;
	range = d->info.tlbi == SMMUDRV_TLBI_RANGE ||
		(d->info.tlbi == SMMUDRV_TLBI_AUTO && d->info.ril);
	if (dom->stage == SMMUDRV_STAGE2) {
		op = OP_TLBI_S2_IPA | CMD_VMID(dom->vmid);
		amask = GENMASK(51, 12);
	} else {
		op = OP_TLBI_NH_VA | CMD_VMID(dom->vmid) |
		     CMD_ASID(dom->asid);
		amask = GENMASK(63, 12);
	}
	ret = emit_range(d, &b, op, amask, sh, sh == 12 ? 1 : sh == 14 ? 2 : 3,
			 iova, size, range);
	/* Nested stage-1 entries were built over this stage 2 too. */
	if (!ret && dom->stage == SMMUDRV_STAGE2 && dom->children) {
		ret = drv_batch_add(d, &b, OP_TLBI_NH_ALL |
				    CMD_VMID(dom->vmid), 0);
		d->info.tlbi_cmds++;
	}
	if (!ret)
		ret = drv_batch_submit(d, &b);
	return ret;
}

/* smmudrv_unmap() - see refdrv.h. */
int smmudrv_unmap(struct smmudrv_domain *dom, uint64_t iova, uint64_t size,
		  uint64_t *unmapped)
{
	uint64_t n = 0;
	int ret;

	if (!dom)
		return -EINVAL;
	ret = lpae_unmap(&dom->lp, &dom->d->ops, dom->root, iova, size, &n);
	if (!ret && n)
		ret = smmudrv_inv_range(dom, iova, size);
	if (unmapped)
		*unmapped = n;
	return ret;
}

/* ---- attachment ---------------------------------------------------------- */

/* master_get() - the master of @sid, made on first use. */
static int master_get(struct smmudrv *d, uint32_t sid, bool create,
		      struct master **out)
{
	struct master *m;

	if (d->info.strtab_log2 < 32 && (sid >> d->info.strtab_log2))
		return -EINVAL;
	for (m = d->masters; m && m->sid != sid; m = m->next)
		;
	if (!m && create) {
		m = xzalloc(&d->alloc, sizeof(*m));
		if (!m)
			return -ENOMEM;
		m->sid = sid;
		m->rid = d->cfg.bypass_unattached ? RID_BYPASS : RID_ABORT;
		m->next = d->masters;
		d->masters = m;
	}
	*out = m;
	return m ? 0 : -ENOENT;
}

/* pasid_find() - index of @ssid in @m's list, or -1. */
static int pasid_find(const struct master *m, uint32_t ssid)
{
	for (unsigned int i = 0; i < m->npasids; i++)
		if (m->pasids[i].ssid == ssid)
			return (int)i;
	return -1;
}

/* pasid_parent() - the stage-2 parent SubstreamIDs share, or NULL. */
static const struct smmudrv_domain *pasid_parent(const struct master *m)
{
	return m->npasids ? m->pasids[0].dom->parent : NULL;
}

/* rid_switch() - the RID's new state @mode/@dom: CD, STE, old CD. */
static int rid_switch(struct smmudrv *d, struct master *m,
		      enum rid_mode mode, struct smmudrv_domain *dom)
{
	struct smmudrv_domain *old = m->rid == RID_DOMAIN ? m->rdom : NULL;
	unsigned int ofam = family(m), nfam;
	int ret = 0;

	m->rid = mode;
	m->rdom = dom;
	nfam = family(m);
	/* The new CD first: its table is not live, or this is CD 0 in place. */
	if (dom && dom->stage != SMMUDRV_STAGE2)
		ret = write_cd(d, m, nfam, 0, dom);
	if (!ret)
		ret = write_ste(d, m);
	if (!ret && old && old->stage != SMMUDRV_STAGE2 &&
	    (!dom || dom->stage == SMMUDRV_STAGE2 || ofam != nfam))
		ret = write_cd(d, m, ofam, 0, NULL);
	if (old && old != dom)
		old->attached--;
	if (dom && old != dom)
		dom->attached++;
	return ret;
}

/* rid_ok() - whether the RID may go to @dom given the SubstreamIDs. */
static int rid_ok(const struct master *m, const struct smmudrv_domain *dom)
{
	const struct smmudrv_domain *pp = pasid_parent(m);

	if (!m->npasids)
		return 0;
	if (!dom)
		return pp ? -EBUSY : 0;
	if (dom->stage == SMMUDRV_STAGE2 || dom->parent != pp)
		return -EBUSY;
	return 0;
}

/* attach_pasid() - SubstreamID @ssid of @m to @dom. */
static int attach_pasid(struct smmudrv *d, struct master *m, uint32_t ssid,
			struct smmudrv_domain *dom)
{
	unsigned int fam = dom->stage == SMMUDRV_NESTED;
	int i = pasid_find(m, ssid), ret;

	if (!ssid || (ssid >> d->info.cd_bits) ||
	    dom->stage == SMMUDRV_STAGE2 || fam != family(m) ||
	    (fam && dom->parent != m->rdom->parent) ||
	    (m->rid == RID_DOMAIN && m->rdom->stage == SMMUDRV_STAGE2))
		return -EINVAL;
	if (i < 0 && m->npasids == m->cap) {
		unsigned int cap = m->cap ? 2 * m->cap : 4;
		struct pasid_ent *p = xzalloc(&d->alloc, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		if (m->npasids)
			memcpy(p, m->pasids, m->npasids * sizeof(*p));
		xfree(&d->alloc, m->pasids);
		m->pasids = p;
		m->cap = cap;
	}
	ret = write_cd(d, m, fam, ssid, dom);
	if (ret)
		return ret;
	if (i >= 0) {
		m->pasids[i].dom->attached--;
		m->pasids[i].dom = dom;
	} else {
		m->pasids[m->npasids].ssid = ssid;
		m->pasids[m->npasids++].dom = dom;
	}
	dom->attached++;
	/* An aborting/bypassing RID now needs the CD table STE. */
	return m->npasids == 1 && i < 0 ? write_ste(d, m) : 0;
}

/* detach_pasid() - clear the CD of @ssid. */
static int detach_pasid(struct smmudrv *d, struct master *m, uint32_t ssid)
{
	int i = pasid_find(m, ssid), ret;

	if (i < 0)
		return -ENOENT;
	ret = write_cd(d, m, family(m), ssid, NULL);
	m->pasids[i].dom->attached--;
	m->pasids[i] = m->pasids[--m->npasids];
	if (!ret && !m->npasids && m->rid != RID_DOMAIN)
		ret = write_ste(d, m);
	return ret;
}

/* smmudrv_attach() - see refdrv.h. */
int smmudrv_attach(struct smmudrv *d, uint32_t sid, uint32_t ssid,
		   struct smmudrv_domain *dom)
{
	struct master *m;
	int ret;

	if (!d || !dom || dom->d != d)
		return -EINVAL;
	ret = master_get(d, sid, true, &m);
	if (ret)
		return ret;
	if (ssid != SMMUDRV_NO_SSID)
		return attach_pasid(d, m, ssid, dom);
	ret = rid_ok(m, dom);
	return ret ? ret : rid_switch(d, m, RID_DOMAIN, dom);
}

/* rid_plain() - the RID aborts or bypasses. */
static int rid_plain(struct smmudrv *d, uint32_t sid, enum rid_mode mode)
{
	struct master *m;
	int ret;

	if (!d)
		return -EINVAL;
	ret = master_get(d, sid, true, &m);
	if (!ret)
		ret = rid_ok(m, NULL);
	return ret ? ret : rid_switch(d, m, mode, NULL);
}

/* smmudrv_set_bypass() / smmudrv_set_abort() - see refdrv.h. */
int smmudrv_set_bypass(struct smmudrv *d, uint32_t sid)
{
	return rid_plain(d, sid, RID_BYPASS);
}

int smmudrv_set_abort(struct smmudrv *d, uint32_t sid)
{
	return rid_plain(d, sid, RID_ABORT);
}

/* smmudrv_detach() - see refdrv.h. */
int smmudrv_detach(struct smmudrv *d, uint32_t sid, uint32_t ssid)
{
	struct master *m;
	int ret;

	if (!d)
		return -EINVAL;
	ret = master_get(d, sid, false, &m);
	if (ret)
		return ret;
	if (ssid != SMMUDRV_NO_SSID)
		return detach_pasid(d, m, ssid);
	if (m->rid != RID_DOMAIN)
		return -ENOENT;
	return rid_plain(d, sid, d->cfg.bypass_unattached ? RID_BYPASS :
			 RID_ABORT);
}

