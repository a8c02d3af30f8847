/*
 * iommu_table.c - virtio-iommu page-table handover: ATTACH_TABLE,
 * INVALIDATE and the table PROBE properties (docs/VIRTIO-IOMMU-TABLES.md,
 * rules V1-V33; page requests live in iommu_pri.c).
 *
 * Concepts
 *  - A virtio domain is in MAP mode (created by ATTACH: a core PAGING
 *    domain the driver fills with MAP) or in table mode (struct vtab: a
 *    core NESTED domain whose stage 1 is the guest's Arm LPAE page
 *    directory, walked from guest memory by src/pgtable/lpae.c on every
 *    translation).  Under the guest's table sits either the domain's MAP
 *    mappings (a MAP-mode domain switched to table mode: its PAGING domain
 *    becomes the stage 2 and MAP/UNMAP keep editing it) or nothing (a
 *    domain created by ATTACH_TABLE: the table outputs guest-physical
 *    addresses).  The descriptor (ASID, TCR, TTBR0, MAIR) of a vtab never
 *    changes: re-attaching another table builds a new NESTED domain, moves
 *    the endpoint and destroys the old one, so a concurrent walk never
 *    sees a torn descriptor.
 *  - Formats.  Format 1 is one Arm LPAE page directory (TCR/TTBR0/MAIR).
 *    Format 2 is the guest's SMMUv3 context-descriptor table: the stage 1
 *    reads CD[pasid] on every translation (V32), and a PASID is routed to
 *    the domain in the core when the driver announces its CD with an
 *    INVALIDATE CONFIG (V33: a vt_bind with cd set, removed when the
 *    endpoint leaves the domain).
 *  - Bindings.  Without VI_TBL_F_PASID the endpoint's requester ID joins
 *    the domain, recorded in iommu.c's attachment table like ATTACH does
 *    (so DETACH, implicit detach and D17 work unchanged).  With it, one
 *    PASID of the endpoint is bound (a record here, bounded by
 *    VT_MAX_BINDS and the core's max_pasids_per_endpoint); each binding
 *    counts as an endpoint of the domain for D17.
 *  - The device caches no stage-1 translation (the core does not IOTLB
 *    NESTED domains), so INVALIDATE only validates, drops core IOTLB
 *    entries of the domain and tells the domain's notifiers; the rules
 *    still let a device cache until INVALIDATE (V18).
 *
 * Everything runs under the device lock (request hooks, reset) except the
 * stage-1 walk, which the core calls on any translating thread: it reads
 * only the immutable vtab and counts with atomics.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "pgtable/lpae.h"
#include "virtio/iommu_internal.h"
#include "virtio/iommu_table_wire.h"

#define VT_ASID_BITS 16u
#define VT_OAS 48u
/* Page sizes of the three granules with their block sizes. */
#define VT_PGSIZES                                                        \
	((1ull << 12) | (1ull << 21) | (1ull << 30) | (1ull << 14) |      \
	 (1ull << 25) | (1ull << 16) | (1ull << 29))

/* A table-mode domain: immutable after creation (see above). */
struct vtab {
	struct viommu_virtio_iommu *vi;
	uint32_t id;
	struct viommu_domain *nested;
	struct viommu_domain *s2; /* PAGING stage 2, or NULL (identity) */
	struct lpae_cfg cfg;
	uint64_t root;
	uint16_t asid;
	uint64_t tcr, ttbr0, mair;
	/* PASID table (format 2): CD table, log2 of its entries, S1DSS. */
	uint16_t fmt;
	uint64_t cdptr;
	uint8_t cdmax, dss;
	struct vtab *next_orphan;
};

/* One validated ATTACH_TABLE descriptor. */
struct vt_desc {
	struct lpae_cfg cfg;
	uint64_t root;
	uint16_t asid;
	uint64_t tcr, ttbr0, mair;
	uint16_t fmt;
	uint64_t cdptr;
	uint8_t cdmax, dss;
};

/* ------------------------------------------------------------------ */
/* Stage 1: the guest's table                                          */

/* s2_table_addr() - a table IPA through the MAP-based stage 2. */
static int s2_table_addr(void *opaque, unsigned int level, uint64_t ipa,
			 unsigned int access, uint64_t *pa)
{
	const struct vtab *t = opaque;
	struct viommu_xlate x;

	(void)level;
	if (viommu_domain_lookup(t->s2, ipa, 8, access & VIOMMU_WRITE ?
				 VIOMMU_WRITE : VIOMMU_READ, &x) ||
	    x.len < 8)
		return -EFAULT;
	*pa = x.gpa;
	return 0;
}

static const struct lpae_visitor s2_visitor = {
	.table_addr = s2_table_addr,
};

static unsigned int ips_bits(unsigned int ips);

/*
 * cd_read() - V32: read and decode context descriptor @ssid of @t's
 * PASID table (through the stage 2 when there is one).
 * Return: 0 with *@c and *@root; -EFAULT (not RAM, or not a valid
 * AArch64 little-endian CD with TTB0 walks).
 */
static int cd_read(const struct vtab *t, uint32_t ssid, struct lpae_cfg *c,
		   uint64_t *root)
{
	static const unsigned int tg0[4] = { 4096, 65536, 16384, 0 };
	uint64_t addr = t->cdptr + (uint64_t)ssid * 64, q[2], w0;
	struct viommu_xlate x;

	if (t->s2) {
		if (viommu_domain_lookup(t->s2, addr, 64, VIOMMU_READ, &x) ||
		    x.len < 64)
			return -EFAULT;
		addr = x.gpa;
	}
	if (viommu_mem_read(t->vi->dev.mem, addr, q, sizeof(q)))
		return -EFAULT;
	w0 = le64toh(q[0]);
	if (!(w0 & (1ull << 31)) || !(w0 & (1ull << 41)) ||
	    (w0 & (1ull << 15)) || (w0 & (1ull << 14)))
		return -EFAULT; /* !V, AArch32, big-endian, EPD0 */
	memset(c, 0, sizeof(*c));
	c->stage = LPAE_STAGE1;
	c->granule = tg0[(w0 >> 6) & 3];
	c->ias = 64 - (unsigned int)(w0 & 0x3f);
	c->oas = ips_bits((unsigned int)((w0 >> 32) & 7));
	c->start_level = LPAE_SL_AUTO;
	c->hd = w0 & (1ull << 42);
	c->ha = (w0 & (1ull << 43)) || c->hd;
	if (!c->granule || !c->oas || c->oas > VT_OAS || c->ias > 48 ||
	    lpae_cfg_validate(c))
		return -EFAULT;
	*root = le64toh(q[1]) & 0x000ffffffffffff0ull;
	return 0;
}

/*
 * pst_translate() - V32: the stage 1 of a PASID-table domain: CD[pasid],
 * or for traffic without a PASID what S1DSS says.
 */
static int pst_translate(struct vtab *t, uint32_t pasid, uint64_t iova,
			 unsigned int access, struct lpae_result *r)
{
	struct lpae_cfg c;
	uint64_t root;
	uint32_t ssid = pasid;

	if (pasid == VIOMMU_NO_PASID) {
		if (t->dss == VI_PST_DSS_BYPASS) {
			r->oa = iova;
			r->size = 0; /* the caller's "up to 2^64" */
			r->perm = VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC;
			return 0;
		}
		if (t->dss == VI_PST_DSS_TERM)
			return -EFAULT;
		ssid = 0;
	}
	if ((uint64_t)ssid >> t->cdmax || cd_read(t, ssid, &c, &root))
		return -EFAULT;
	return lpae_walk(&c, t->vi->dev.mem, root, iova, access,
			 t->s2 ? &s2_visitor : NULL, t, r) ? -EFAULT : 0;
}

/*
 * s1_translate() - the NESTED domain's stage 1 (struct viommu_stage1_ops):
 * walk the guest's table for @iova.  Bounded: the walker reads at most
 * four descriptors (V12: a looping table cannot loop the walk).
 */
static int s1_translate(void *opaque, uint32_t pasid, uint64_t iova,
			unsigned int access, uint64_t *ipa, uint64_t *len,
			uint32_t *perm)
{
	struct vtab *t = opaque;
	struct viommu_virtio_iommu *vi = t->vi;
	struct lpae_result r;
	uint64_t off;

	ATOMIC_INC(vi->vt.st.walks);
	if (t->fmt == VI_TBL_FMT_PST_ARM) {
		if (pst_translate(t, pasid, iova, access, &r))
			goto fault;
		if (!r.size) { /* S1DSS bypass */
			*ipa = iova;
			*len = iova ? 0 - iova : UINT64_MAX;
			*perm = r.perm;
			return 0;
		}
	} else if (lpae_walk(&t->cfg, vi->dev.mem, t->root, iova, access,
			     t->s2 ? &s2_visitor : NULL, t, &r)) {
		/* a page directory: the binding chose it, whatever @pasid */
		goto fault;
	}
	off = iova & (r.size - 1);
	*ipa = r.oa;
	*len = r.size - off;
	*perm = r.perm;
	return 0;
fault:
	ATOMIC_INC(vi->vt.st.walk_faults);
	return -EFAULT;
}

static const struct viommu_stage1_ops s1_ops = {
	.translate = s1_translate,
};

/* ------------------------------------------------------------------ */
/* Table domains                                                       */

/*
 * vt_dom_free() - see iommu_internal.h.  If the core refuses to destroy
 * the NESTED domain (an embedder attached something to it behind the
 * device's back) the vtab stays allocated - the domain's stage 1 still
 * points at it - on the orphan list, retried at every reset and at
 * destruction (vt_teardown()); the caller reports the refusal (D36).
 */
int vt_dom_free(struct viommu_virtio_iommu *vi, struct vtab *t)
{
	int ret;

	for (uint32_t i = 0; i < vi->vt.nbinds;) {
		struct vt_bind *b = &vi->vt.binds[i];
		struct viommu_endpoint *ep;

		if (!b->cd || b->dom != t->id) {
			i++;
			continue;
		}
		if (!viommu_endpoint_lookup(vi->ctx, b->ep, &ep))
			viommu_endpoint_detach(ep, b->pasid);
		*b = vi->vt.binds[--vi->vt.nbinds];
	}
	ret = viommu_domain_destroy(t->nested);

	if (ret) {
		t->next_orphan = vi->vt.orphans;
		vi->vt.orphans = t;
		return ret;
	}
	if (t->s2)
		ret = viommu_domain_destroy(t->s2);
	xfree(&vi->alloc, t);
	return ret;
}

/* vt_map_target() - see iommu_internal.h. */
struct viommu_domain *vt_map_target(const struct vtab *t)
{
	return t->s2;
}

/*
 * tab_new() - a vtab for @d over stage 2 @s2 with its NESTED domain.
 * Return: 0; -ENOSPC (core limit); -ENOMEM; -EIO.
 */
static int tab_new(struct viommu_virtio_iommu *vi, uint32_t id,
		   const struct vt_desc *dsc, struct viommu_domain *s2,
		   struct vtab **out)
{
	struct vtab *t = xzalloc(&vi->alloc, sizeof(*t));
	struct viommu_domain_config cfg = {
		.kind = VIOMMU_DOMAIN_NESTED, .tag = id, .parent = s2,
		.s1 = &s1_ops,
	};
	int ret;

	if (!t)
		return -ENOMEM;
	t->vi = vi;
	t->id = id;
	t->s2 = s2;
	t->cfg = dsc->cfg;
	t->root = dsc->root;
	t->asid = dsc->asid;
	t->tcr = dsc->tcr;
	t->ttbr0 = dsc->ttbr0;
	t->mair = dsc->mair;
	t->fmt = dsc->fmt;
	t->cdptr = dsc->cdptr;
	t->cdmax = dsc->cdmax;
	t->dss = dsc->dss;
	cfg.s1_opaque = t;
	ret = viommu_domain_create(vi->ctx, &cfg, &t->nested);
	if (ret) {
		xfree(&vi->alloc, t);
		return vi_nomem(ret) ? ret : -EIO;
	}
	*out = t;
	return 0;
}

/* same_desc() - whether @t was attached with descriptor @d. */
static bool same_desc(const struct vtab *t, const struct vt_desc *d)
{
	return t->fmt == d->fmt && t->asid == d->asid && t->tcr == d->tcr &&
	       t->ttbr0 == d->ttbr0 && t->mair == d->mair &&
	       t->cdptr == d->cdptr && t->cdmax == d->cdmax &&
	       t->dss == d->dss;
}

/* ------------------------------------------------------------------ */
/* ATTACH_TABLE                                                        */

/* status() - record the rule and return @s. */
static uint8_t status(const char **rule, uint8_t s, const char *why)
{
	*rule = why;
	return s;
}

/* rsvd_nz() - whether any of @n bytes is set. */
static bool rsvd_nz(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return true;
	return false;
}

/* tg0_granule() - bytes of TCR.TG0 @tg (0 4K, 1 64K, 2 16K); 0 if bad. */
static unsigned int tg0_granule(unsigned int tg)
{
	static const unsigned int g[4] = { 4096, 65536, 16384, 0 };

	return g[tg & 3];
}

/* ips_bits() - output bits of TCR.IPS @ips; 0 if reserved. */
static unsigned int ips_bits(unsigned int ips)
{
	static const unsigned int b[8] = { 32, 36, 40, 42, 44, 48, 0, 0 };

	return b[ips & 7];
}

/*
 * pgt_decode() - V7/V8: validate an Arm LPAE page-directory descriptor.
 * Return: a status; VIOMMU_VI_S_OK with *@d filled.
 */
static uint8_t pgt_decode(struct viommu_virtio_iommu *vi,
			  const struct vi_req_attach_pgt_arm *q,
			  struct vt_desc *d, const char **rule)
{
	uint64_t tcr = le64toh(q->tcr), ttbr0 = le64toh(q->ttbr0);
	unsigned int t0sz = tcr & VI_TCR_T0SZ_MASK;

	memset(d, 0, sizeof(*d));
	d->fmt = VI_TBL_FMT_PGT_ARM;
	d->asid = le16toh(q->asid);
	d->tcr = tcr;
	d->ttbr0 = ttbr0;
	d->mair = le64toh(q->mair);
	if (tcr & ~VI_TCR_KNOWN)
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V8: TCR bit the device does not implement");
	if ((tcr & VI_TCR_EPD0) || !(tcr & VI_TCR_EPD1) || q->ttbr1)
		return status(rule, VIOMMU_VI_S_INVAL, "V8: only TTBR0 walks "
			      "(EPD0 clear, EPD1 set, TTBR1 zero)");
	if ((tcr & VI_TCR_HD) && !(tcr & VI_TCR_HA))
		return status(rule, VIOMMU_VI_S_INVAL, "V8: HD without HA");
	d->cfg.stage = LPAE_STAGE1;
	d->cfg.granule = tg0_granule((tcr & VI_TCR_TG0_MASK) >>
				     VI_TCR_TG0_SHIFT);
	d->cfg.ias = 64 - t0sz;
	d->cfg.oas = ips_bits((unsigned int)((tcr & VI_TCR_IPS_MASK) >>
					     VI_TCR_IPS_SHIFT));
	d->cfg.start_level = LPAE_SL_AUTO;
	d->cfg.ha = tcr & VI_TCR_HA;
	d->cfg.hd = tcr & VI_TCR_HD;
	d->cfg.hpd = tcr & VI_TCR_HPD0;
	if (!d->cfg.granule || !d->cfg.oas || d->cfg.oas > VT_OAS ||
	    d->cfg.ias > 48 || d->cfg.ias < 25 ||
	    (vi->in_end != UINT64_MAX && d->cfg.ias < 64 &&
	     ((1ull << d->cfg.ias) - 1) > vi->in_end) ||
	    lpae_cfg_validate(&d->cfg))
		return status(rule, VIOMMU_VI_S_INVAL, "V8: TG0, T0SZ or IPS "
			      "outside what PROBE advertised");
	if ((uint32_t)d->asid >> VT_ASID_BITS)
		return status(rule, VIOMMU_VI_S_INVAL, "V8: ASID too wide");
	d->root = ttbr0 & ~1ull; /* CnP is a hint */
	if ((d->root >> 48) || (d->root & (lpae_pgd_size(&d->cfg) - 1)) ||
	    (d->root >> d->cfg.oas))
		return status(rule, VIOMMU_VI_S_INVAL, "V8: TTBR0 ASID bits "
			      "set, misaligned or beyond IPS");
	return VIOMMU_VI_S_OK;
}

/*
 * pst_decode() - V31: validate a PASID-table (SMMUv3 CD table)
 * descriptor.  Return: a status; VIOMMU_VI_S_OK with *@d filled.
 */
static uint8_t pst_decode(struct viommu_virtio_iommu *vi,
			  const struct vi_req_attach_pst_arm *q,
			  struct vt_desc *d, const char **rule)
{
	uint32_t cdmax = le32toh(q->s1cdmax);

	memset(d, 0, sizeof(*d));
	d->fmt = VI_TBL_FMT_PST_ARM;
	d->cdptr = le64toh(q->s1contextptr);
	d->dss = q->s1dss;
	if (rsvd_nz(q->rsvd, sizeof(q->rsvd)))
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V7: reserved bytes set");
	if (q->s1fmt != VI_PST_S1FMT_LINEAR || q->s1dss > VI_PST_DSS_SSID0)
		return status(rule, VIOMMU_VI_S_INVAL, "V31: only linear "
			      "tables; S1DSS terminate, bypass or SSID 0");
	if (cdmax > vi->vt.pasid_bits)
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V31: s1cdmax beyond PASID_SIZE");
	d->cdmax = (uint8_t)cdmax;
	if ((d->cdptr & 63) || (d->cdptr >> VT_OAS))
		return status(rule, VIOMMU_VI_S_INVAL, "V31: s1contextptr "
			      "misaligned or beyond the output size");
	d->root = d->cdptr;
	return VIOMMU_VI_S_OK;
}

/*
 * root_reachable() - V10: the start table lies in guest RAM (through the
 * stage 2 when there is one).
 */
static bool root_reachable(struct viommu_virtio_iommu *vi,
			   const struct vt_desc *d, struct viommu_domain *s2)
{
	uint64_t ends[2] = { d->root, d->root }, v;
	struct viommu_xlate x;

	if (d->fmt == VI_TBL_FMT_PST_ARM) /* V31: the whole CD table */
		ends[1] = d->cdptr + (64ull << d->cdmax) - 8;
	for (int i = 0; i < 2; i++) {
		uint64_t gpa = ends[i];

		if (s2) {
			if (viommu_domain_lookup(s2, ends[i], 8, VIOMMU_READ,
						 &x))
				return false;
			gpa = x.gpa;
		}
		if (viommu_mem_read(vi->dev.mem, gpa, &v, sizeof(v)))
			return false;
	}
	return true;
}

/* bind_find() - the PASID binding of (@ep, @pasid), or NULL. */
static struct vt_bind *bind_find(struct viommu_virtio_iommu *vi, uint32_t ep,
				 uint32_t pasid)
{
	for (uint32_t i = 0; i < vi->vt.nbinds; i++)
		if (vi->vt.binds[i].ep == ep && vi->vt.binds[i].pasid == pasid)
			return &vi->vt.binds[i];
	return NULL;
}

/* bind_drop() - remove binding @b (core detach done by the caller). */
static void bind_drop(struct viommu_virtio_iommu *vi, struct vt_bind *b)
{
	uint32_t dom = b->dom;

	*b = vi->vt.binds[--vi->vt.nbinds];
	vi_dom_put(vi, dom);
}

/*
 * dom_for_table() - the table domain @id ready for descriptor @d: created
 * (identity stage 2) when missing.  *@created says whether it was.
 */
static uint8_t dom_for_table(struct viommu_virtio_iommu *vi, uint32_t id,
			     const struct vt_desc *d, bool *created,
			     const char **rule)
{
	struct vdom rec = { .id = id };
	struct vtab *t;
	int ret;

	*created = false;
	if (vi_dom_find(vi, id))
		return VIOMMU_VI_S_OK;
	if (!root_reachable(vi, d, NULL))
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V10: table outside guest RAM");
	ret = tab_new(vi, id, d, NULL, &t);
	if (ret)
		return status(rule, vi_nomem(ret) ? VIOMMU_VI_S_NOMEM :
			      VIOMMU_VI_S_DEVERR, vi_nomem(ret) ?
			      vi_nomem_why(ret, "too many domains") :
			      "core refused the domain");
	rec.dom = t->nested;
	rec.tab = t;
	ret = vi_dom_add(vi, &rec);
	if (ret) {
		vt_dom_free(vi, t);
		return status(rule, VIOMMU_VI_S_NOMEM,
			      vi_nomem_why(ret, "too many domains"));
	}
	*created = true;
	return VIOMMU_VI_S_OK;
}

/*
 * join_table() - attach (@ep, @pasid) to table domain @id, creating the
 * domain for descriptor @d when missing (and destroying it again if the
 * attach fails), and count the new endpoint of the domain (D17).
 */
static uint8_t join_table(struct viommu_virtio_iommu *vi, uint32_t id,
			  struct viommu_endpoint *ep, uint32_t pasid,
			  const struct vt_desc *d, const char **rule)
{
	struct vdom *dm;
	bool created;
	uint8_t s;
	int ret;

	s = dom_for_table(vi, id, d, &created, rule);
	if (s != VIOMMU_VI_S_OK)
		return s;
	dm = vi_dom_find(vi, id);
	ret = viommu_endpoint_attach(ep, pasid, dm->dom);
	if (ret) {
		if (created)
			vi_dom_free(vi, id);
		return status(rule, vi_nomem(ret) ? VIOMMU_VI_S_NOMEM :
			      VIOMMU_VI_S_INVAL, vi_nomem(ret) ?
			      vi_nomem_why(ret, "core limit reached") :
			      pasid == VIOMMU_NO_PASID ? "core refused attach" :
			      "core refused the PASID");
	}
	dm->nep++;
	return VIOMMU_VI_S_OK;
}

/*
 * tab_move() - the checks and the move that switching (V13, @replace
 * false) and replacing (V14) a table share: @ep must be the only endpoint
 * of @dm, the new table reachable through stage 2 @s2; a new table domain
 * over @s2 is made and @ep moved onto it.  On success *@out is the new
 * vtab (@dm not yet updated); on failure nothing changed.
 */
static uint8_t tab_move(struct viommu_virtio_iommu *vi, struct vdom *dm,
			struct viommu_endpoint *ep, const struct vt_desc *d,
			struct viommu_domain *s2, bool replace,
			struct vtab **out, const char **rule)
{
	struct vatt *a = vi_att_find(vi, viommu_endpoint_id(ep));
	struct vtab *t;
	int ret;

	if (dm->nep != 1 || !a || a->dom != dm->id)
		return status(rule, VIOMMU_VI_S_INVAL, replace ?
			      "V14: the domain's table differs and other "
			      "endpoints use it" : "V13: MAP-mode domain has "
			      "other endpoints: cannot switch to a table");
	if (!root_reachable(vi, d, s2))
		return status(rule, VIOMMU_VI_S_INVAL, replace ?
			      "V10: table outside guest RAM" :
			      "V10: table outside guest RAM (through stage 2)");
	ret = tab_new(vi, dm->id, d, s2, &t);
	if (ret)
		return status(rule, vi_nomem(ret) ? VIOMMU_VI_S_NOMEM :
			      VIOMMU_VI_S_DEVERR, vi_nomem(ret) ?
			      vi_nomem_why(ret, "too many domains") :
			      "core refused the domain");
	ret = viommu_endpoint_attach(ep, VIOMMU_NO_PASID, t->nested);
	if (ret) {
		t->s2 = NULL; /* still @dm's: keep it */
		vt_dom_free(vi, t);
		return status(rule, VIOMMU_VI_S_DEVERR, "core refused attach");
	}
	*out = t;
	return VIOMMU_VI_S_OK;
}

/*
 * switch_to_table() - V13: a MAP-mode domain whose only endpoint is @ep
 * becomes a table domain; its mappings become the stage 2.
 */
static uint8_t switch_to_table(struct viommu_virtio_iommu *vi,
			       struct vdom *dm, struct viommu_endpoint *ep,
			       const struct vt_desc *d, const char **rule)
{
	struct vtab *t;
	uint8_t s;

	s = tab_move(vi, dm, ep, d, dm->dom, false, &t, rule);
	if (s != VIOMMU_VI_S_OK)
		return s;
	dm->dom = t->nested;
	dm->tab = t;
	return VIOMMU_VI_S_OK;
}

/*
 * replace_table() - V14: the only endpoint of table domain @dm re-attaches
 * with another descriptor: a new NESTED domain over the same stage 2.
 */
static uint8_t replace_table(struct viommu_virtio_iommu *vi, struct vdom *dm,
			     struct viommu_endpoint *ep,
			     const struct vt_desc *d, const char **rule)
{
	struct vtab *old = dm->tab, *t;
	uint8_t s;

	s = tab_move(vi, dm, ep, d, old->s2, true, &t, rule);
	if (s != VIOMMU_VI_S_OK)
		return s;
	/* V33: PASIDs the old PASID table routed are announced again. */
	vt_ep_left(vi, viommu_endpoint_id(ep), dm->id);
	dm->dom = t->nested;
	dm->tab = t;
	old->s2 = NULL; /* now t's */
	if (vt_dom_free(vi, old))
		rl_err(&vi->rl, &vi->log, "virtio-iommu: domain %u: old table "
		       "domain not destroyed", dm->id);
	return VIOMMU_VI_S_OK;
}

/* attach_rid() - bind @ep's requester ID to table domain @id (V11-V14). */
static uint8_t attach_rid(struct viommu_virtio_iommu *vi, uint32_t id,
			  struct viommu_endpoint *ep, const struct vt_desc *d,
			  const char **rule)
{
	uint32_t eid = viommu_endpoint_id(ep);
	struct vatt *a = vi_att_find(vi, eid);
	struct vdom *dm = vi_dom_find(vi, id);
	uint8_t s;
	int ret;

	if (dm && dm->bypass)
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V11: bypass domain cannot take a table");
	if (dm && !dm->tab)
		return switch_to_table(vi, dm, ep, d, rule);
	if (dm && !same_desc(dm->tab, d))
		return replace_table(vi, dm, ep, d, rule);
	if (a && a->dom == id)
		return VIOMMU_VI_S_OK; /* V14: same table again */
	ret = vi_att_reserve(vi);
	if (ret)
		return status(rule, VIOMMU_VI_S_NOMEM,
			      vi_nomem_why(ret, "too many endpoints"));
	s = join_table(vi, id, ep, VIOMMU_NO_PASID, d, rule);
	if (s != VIOMMU_VI_S_OK)
		return s;
	vi_att_set(vi, eid, id); /* implicit detach from the old one (D12) */
	return VIOMMU_VI_S_OK;
}

/* bind_pasid() - V9: bind (@ep, @pasid) to table domain @id. */
static uint8_t bind_pasid(struct viommu_virtio_iommu *vi, uint32_t id,
			  struct viommu_endpoint *ep, uint32_t pasid,
			  const struct vt_desc *d, const char **rule)
{
	uint32_t eid = viommu_endpoint_id(ep);
	struct vt_bind *b = bind_find(vi, eid, pasid);
	struct vdom *dm = vi_dom_find(vi, id);
	uint8_t s;

	if (dm && (dm->bypass || !dm->tab))
		return status(rule, VIOMMU_VI_S_INVAL, "V9: PASID binding to "
			      "a MAP-mode or bypass domain");
	if (dm && !same_desc(dm->tab, d))
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V14: the domain holds another table");
	if (b && b->cd)
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V33: that PASID belongs to a PASID table");
	if (b && b->dom == id)
		return VIOMMU_VI_S_OK;
	if (!b && vi->vt.nbinds == VT_MAX_BINDS)
		return status(rule, VIOMMU_VI_S_NOMEM, "too many bindings");
	s = join_table(vi, id, ep, pasid, d, rule);
	if (s != VIOMMU_VI_S_OK)
		return s;
	if (b) {
		uint32_t old = b->dom;

		b->dom = id;
		vi_dom_put(vi, old);
	} else {
		vi->vt.binds[vi->vt.nbinds++] =
			(struct vt_bind){ eid, pasid, id, false };
	}
	return VIOMMU_VI_S_OK;
}

/* unbind_pasid() - V9: remove the binding (@ep, @pasid) of domain @id. */
static uint8_t unbind_pasid(struct viommu_virtio_iommu *vi, uint32_t id,
			    struct viommu_endpoint *ep, uint32_t pasid,
			    const char **rule)
{
	struct vt_bind *b = bind_find(vi, viommu_endpoint_id(ep), pasid);

	if (!b || b->dom != id || b->cd)
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V9: no such PASID binding in that domain");
	viommu_endpoint_detach(ep, pasid);
	vt_pri_forget(vi, viommu_endpoint_id(ep), pasid);
	bind_drop(vi, b);
	return VIOMMU_VI_S_OK;
}

/* attach_pst() - ATTACH_TABLE with a PASID table (V31). */
static uint8_t attach_pst(struct viommu_virtio_iommu *vi,
			  const struct vi_req_attach_pst_arm *q,
			  const char **rule)
{
	uint32_t id = le32toh(q->domain), eid = le32toh(q->endpoint);
	struct viommu_endpoint *ep;
	struct vdom *dm;
	struct vatt *a;
	struct vt_desc d;
	uint8_t s;

	if (id < vi->dom_start || id > vi->dom_end)
		return status(rule, VIOMMU_VI_S_RANGE,
			      "domain outside domain_range");
	ep = vi_lookup_ep(vi, eid);
	if (!ep)
		return status(rule, VIOMMU_VI_S_NOENT, "V6: no such endpoint");
	vi_att_sync(vi, eid, ep);
	s = pst_decode(vi, q, &d, rule);
	if (s != VIOMMU_VI_S_OK)
		return s;
	dm = vi_dom_find(vi, id);
	a = vi_att_find(vi, eid);
	if (dm && dm->tab && dm->tab->fmt == VI_TBL_FMT_PST_ARM &&
	    same_desc(dm->tab, &d) && !(a && a->dom == id))
		return status(rule, VIOMMU_VI_S_INVAL, "V31: a PASID-table "
			      "domain holds one endpoint");
	return attach_rid(vi, id, ep, &d, rule);
}

/* do_attach_table() - ATTACH_TABLE (V6-V15). */
static uint8_t do_attach_table(struct viommu_virtio_iommu *vi,
			       const struct vi_req_attach_pgt_arm *q,
			       const char **rule)
{
	uint32_t id = le32toh(q->domain), eid = le32toh(q->endpoint);
	uint32_t flags = le32toh(q->flags), pasid = le32toh(q->pasid);
	struct viommu_endpoint *ep;
	struct vt_desc d;
	uint8_t s;

	if (le16toh(q->format) == VI_TBL_FMT_PST_ARM)
		return attach_pst(vi, (const void *)q, rule);
	if (le16toh(q->format) != VI_TBL_FMT_PGT_ARM)
		return status(rule, VIOMMU_VI_S_INVAL, "V6: unknown format");
	if (rsvd_nz(q->rsvd, sizeof(q->rsvd)) ||
	    (flags & ~(VI_TBL_F_PASID | VI_TBL_F_UNBIND)))
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V7: reserved bytes or unknown flag set");
	if ((flags & VI_TBL_F_UNBIND) && !(flags & VI_TBL_F_PASID))
		return status(rule, VIOMMU_VI_S_INVAL, "V9: UNBIND without PASID");
	if (!(flags & VI_TBL_F_PASID) && pasid)
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V7: pasid set without F_PASID");
	if ((flags & VI_TBL_F_PASID) && (pasid >> vi->vt.pasid_bits))
		return status(rule, VIOMMU_VI_S_RANGE,
			      "V9: PASID past the advertised width");
	if (id < vi->dom_start || id > vi->dom_end)
		return status(rule, VIOMMU_VI_S_RANGE,
			      "domain outside domain_range");
	ep = vi_lookup_ep(vi, eid);
	if (!ep)
		return status(rule, VIOMMU_VI_S_NOENT, "V6: no such endpoint");
	vi_att_sync(vi, eid, ep);
	if (flags & VI_TBL_F_UNBIND)
		return unbind_pasid(vi, id, ep, pasid, rule);
	s = pgt_decode(vi, q, &d, rule);
	if (s != VIOMMU_VI_S_OK)
		return s;
	if (flags & VI_TBL_F_PASID)
		return bind_pasid(vi, id, ep, pasid, &d, rule);
	return attach_rid(vi, id, ep, &d, rule);
}

/* ------------------------------------------------------------------ */
/* INVALIDATE                                                          */

/* inval_check() - V16/V17: the fields, before any domain is looked at. */
static uint8_t inval_check(struct viommu_virtio_iommu *vi,
			   const struct vi_req_invalidate *q, uint64_t *last,
			   const char **rule)
{
	uint16_t scope = le16toh(q->scope), flags = le16toh(q->flags);
	uint64_t va = le64toh(q->virt_start), n = le64toh(q->nr_pages);
	const uint16_t known = VI_INV_F_CONFIG | VI_INV_F_LEAF |
			       VI_INV_F_PASID | VI_INV_F_ID;

	if (rsvd_nz(q->rsvd, sizeof(q->rsvd)) || (flags & ~known))
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V16: reserved bytes or unknown flag set");
	if (scope != VI_INV_S_DOMAIN && scope != VI_INV_S_PASID &&
	    scope != VI_INV_S_VA && scope != VI_INV_S_ASID)
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V16: scope is not exactly one known scope");
	if ((scope == VI_INV_S_PASID && !(flags & VI_INV_F_PASID)) ||
	    (scope == VI_INV_S_ASID && !(flags & VI_INV_F_ID)))
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V16: scope without its tag flag");
	if ((flags & VI_INV_F_PASID) &&
	    (le32toh(q->pasid) >> vi->vt.pasid_bits))
		return status(rule, VIOMMU_VI_S_RANGE,
			      "V16: PASID past the advertised width");
	if ((flags & VI_INV_F_ID) && (le64toh(q->id) >> VT_ASID_BITS))
		return status(rule, VIOMMU_VI_S_RANGE, "V16: ASID too wide");
	if (scope != VI_INV_S_VA)
		return VIOMMU_VI_S_OK;
	if (q->granule >= 64 || !((VT_PGSIZES >> q->granule) & 1))
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V17: granule is not a supported page size");
	if (!n || (n >> (64 - q->granule)) ||
	    (va & ((1ull << q->granule) - 1)) ||
	    !range_last(va, n << q->granule, last))
		return status(rule, VIOMMU_VI_S_RANGE, "V17: empty, misaligned "
			      "or wrapping range");
	return VIOMMU_VI_S_OK;
}

/*
 * pst_config() - V33: the CD of @pasid changed: the domain's endpoint's
 * PASID starts or stops reaching the domain.
 */
static uint8_t pst_config(struct viommu_virtio_iommu *vi, struct vdom *dm,
			  uint32_t pasid, const char **rule)
{
	struct viommu_endpoint *ep = NULL;
	struct vt_bind *b = NULL;
	uint32_t eid = 0;
	struct lpae_cfg c;
	uint64_t root;
	bool valid;
	int ret;

	for (uint32_t i = 0; i < vi->vt.nbinds; i++)
		if (vi->vt.binds[i].dom == dm->id && vi->vt.binds[i].cd &&
		    vi->vt.binds[i].pasid == pasid)
			b = &vi->vt.binds[i];
	if (!vi_dom_endpoint(vi, dm->id, &eid) ||
	    viommu_endpoint_lookup(vi->ctx, eid, &ep))
		return VIOMMU_VI_S_OK; /* nobody to route: nothing to do */
	valid = ((uint64_t)pasid >> dm->tab->cdmax) == 0 &&
		cd_read(dm->tab, pasid, &c, &root) == 0;
	if (!valid && b) {
		viommu_endpoint_detach(ep, pasid);
		*b = vi->vt.binds[--vi->vt.nbinds];
	} else if (valid && !b) {
		if (vi->vt.nbinds == VT_MAX_BINDS)
			return status(rule, VIOMMU_VI_S_NOMEM,
				      "too many bindings");
		ret = viommu_endpoint_attach(ep, pasid, dm->dom);
		if (ret)
			return status(rule, vi_nomem(ret) ? VIOMMU_VI_S_NOMEM :
				      VIOMMU_VI_S_INVAL, vi_nomem(ret) ?
				      vi_nomem_why(ret, "V33: core refused the "
						   "PASID (max_pasids_per_"
						   "endpoint)") :
				      "V33: core refused the PASID");
		vi->vt.binds[vi->vt.nbinds++] =
			(struct vt_bind){ eid, pasid, dm->id, true };
	}
	return VIOMMU_VI_S_OK;
}

/* do_invalidate() - INVALIDATE (V16-V19). */
static uint8_t do_invalidate(struct viommu_virtio_iommu *vi,
			     const struct vi_req_invalidate *q,
			     const char **rule)
{
	struct vdom *dm;
	uint64_t last = 0;
	uint8_t s;

	s = inval_check(vi, q, &last, rule);
	if (s != VIOMMU_VI_S_OK)
		return s;
	dm = vi_dom_find(vi, le32toh(q->domain));
	if (!dm)
		return status(rule, VIOMMU_VI_S_NOENT, "V16: no such domain");
	if (!dm->tab)
		return status(rule, VIOMMU_VI_S_INVAL,
			      "V16: not a table-mode domain");
	if ((le16toh(q->flags) & VI_INV_F_CONFIG) &&
	    le16toh(q->scope) == VI_INV_S_PASID &&
	    dm->tab->fmt == VI_TBL_FMT_PST_ARM) {
		s = pst_config(vi, dm, le32toh(q->pasid), rule);
		if (s != VIOMMU_VI_S_OK)
			return s;
	}
	/*
	 * V18: nothing of the guest's table is cached by this device; the
	 * core's IOTLB entries of the domain (none for NESTED today) and the
	 * notifiers' copies are dropped.
	 */
	if (le16toh(q->scope) == VI_INV_S_VA)
		viommu_domain_invalidate(dm->dom, le64toh(q->virt_start), last);
	else
		viommu_domain_invalidate_all(dm->dom);
	return VIOMMU_VI_S_OK;
}

/* ------------------------------------------------------------------ */
/* Requests, PROBE, lifetime                                           */

/* vt_type() - see iommu_internal.h. */
bool vt_type(const struct viommu_virtio_iommu *vi, uint8_t type)
{
	if (!__vdev_has(&vi->dev, VIOMMU_VIRTIO_IOMMU_F_ATTACH_TABLE))
		return false;
	if (type == VI_T_PAGE_RESP)
		return __vdev_has(&vi->dev, VIOMMU_VIRTIO_IOMMU_F_PAGE_REQ);
	return type == VI_T_ATTACH_TABLE || type == VI_T_INVALIDATE;
}

/* req_len() - readable bytes request @type needs. */
static uint32_t req_len(uint8_t type)
{
	switch (type) {
	case VI_T_ATTACH_TABLE:
		return sizeof(struct vi_req_attach_pgt_arm);
	case VI_T_INVALIDATE:
		return sizeof(struct vi_req_invalidate);
	default:
		return sizeof(struct vi_req_page_resp);
	}
}

/* vt_request() - see iommu_internal.h. */
uint8_t vt_request(struct viommu_virtio_iommu *vi, struct vq *vq,
		   const struct vq_elem *e, uint8_t type, const char **rule)
{
	union {
		struct vi_req_attach_pgt_arm at;
		struct vi_req_invalidate inv;
		struct vi_req_page_resp pr;
	} u;
	uint32_t n = req_len(type);
	unsigned int k = type - VI_T_ATTACH_TABLE;
	uint8_t s;

	if (e->read_len < n)
		s = status(rule, VIOMMU_VI_S_INVAL, "V5: readable part shorter "
			   "than the request");
	else if (vq_read(vq, e, 0, &u, n))
		s = status(rule, VIOMMU_VI_S_IOERR, "request not readable");
	else if (type == VI_T_ATTACH_TABLE)
		s = do_attach_table(vi, &u.at, rule);
	else if (type == VI_T_INVALIDATE)
		s = do_invalidate(vi, &u.inv, rule);
	else
		s = vt_page_resp(vi, &u.pr, rule);
	vi->vt.st.requests[k][s < VIOMMU_VI_S_COUNT ? s : 0]++;
	return s;
}

/* put_prop() - append @len bytes of property @p if they fit. */
static size_t put_prop(uint8_t *buf, size_t room, size_t at, const void *p,
		       size_t len)
{
	if (at + len > room)
		return at;
	memcpy(buf + at, p, len);
	return at + len;
}

/* vt_probe_props() - see iommu_internal.h (V2-V4). */
size_t vt_probe_props(struct viommu_virtio_iommu *vi, uint8_t *buf,
		      size_t room)
{
	struct vi_prop_page_size_mask psm = { { 0, 0 }, { 0 }, 0 };
	struct vi_prop_input_range ir;
	struct vi_prop_bits ob, pb;
	struct vi_prop_pgtf_arm pg;
	struct vi_prop_pstf_arm ps;
	size_t at = 0;

	if (!__vdev_has(&vi->dev, VIOMMU_VIRTIO_IOMMU_F_ATTACH_TABLE))
		return 0;
	psm.head.type = htole16(VI_PROBE_T_PAGE_SIZE_MASK);
	psm.head.length = htole16(sizeof(psm) - sizeof(psm.head));
	psm.mask = htole64(VT_PGSIZES);
	at = put_prop(buf, room, at, &psm, sizeof(psm));
	memset(&ir, 0, sizeof(ir));
	ir.head.type = htole16(VI_PROBE_T_INPUT_RANGE);
	ir.head.length = htole16(sizeof(ir) - sizeof(ir.head));
	ir.start = htole64(0);
	ir.end = htole64(MIN(vi->in_end, (1ull << 48) - 1));
	at = put_prop(buf, room, at, &ir, sizeof(ir));
	memset(&ob, 0, sizeof(ob));
	ob.head.type = htole16(VI_PROBE_T_OUTPUT_SIZE);
	ob.head.length = htole16(sizeof(ob) - sizeof(ob.head));
	ob.bits = VT_OAS;
	at = put_prop(buf, room, at, &ob, sizeof(ob));
	pb = ob;
	pb.head.type = htole16(VI_PROBE_T_PASID_SIZE);
	pb.bits = vi->vt.pasid_bits;
	at = put_prop(buf, room, at, &pb, sizeof(pb));
	memset(&pg, 0, sizeof(pg));
	pg.head.type = htole16(VI_PROBE_T_PAGE_TABLE_FMT);
	pg.head.length = htole16(sizeof(pg) - sizeof(pg.head));
	pg.format = htole16(VI_TBL_FMT_PGT_ARM);
	pg.asid_bits = VT_ASID_BITS;
	pg.flags = htole64(VI_PGTF_F_HW_ACCESS | VI_PGTF_F_HW_DIRTY |
			   VI_PGTF_F_HPD);
	at = put_prop(buf, room, at, &pg, sizeof(pg));
	memset(&ps, 0, sizeof(ps));
	ps.head.type = htole16(VI_PROBE_T_PASID_TABLE_FMT);
	ps.head.length = htole16(sizeof(ps) - sizeof(ps.head));
	ps.format = htole16(VI_TBL_FMT_PST_ARM);
	return put_prop(buf, room, at, &ps, sizeof(ps));
}

/* vt_ep_left() - see iommu_internal.h. */
void vt_ep_left(struct viommu_virtio_iommu *vi, uint32_t ep, uint32_t dom)
{
	struct viommu_endpoint *e = NULL;

	if (viommu_endpoint_lookup(vi->ctx, ep, &e))
		e = NULL;
	for (uint32_t i = 0; i < vi->vt.nbinds;) {
		struct vt_bind *b = &vi->vt.binds[i];

		if (!b->cd || b->ep != ep || b->dom != dom) {
			i++;
			continue;
		}
		if (e)
			viommu_endpoint_detach(e, b->pasid);
		vt_pri_forget(vi, ep, b->pasid);
		*b = vi->vt.binds[--vi->vt.nbinds];
	}
}

/* vt_teardown() - see iommu_internal.h. */
void vt_teardown(struct viommu_virtio_iommu *vi)
{
	struct viommu_endpoint *ep;

	for (uint32_t i = 0; i < vi->vt.nbinds; i++) {
		struct vt_bind *b = &vi->vt.binds[i];

		if (!viommu_endpoint_lookup(vi->ctx, b->ep, &ep))
			viommu_endpoint_detach(ep, b->pasid);
	}
	vi->vt.nbinds = 0;
	vt_pri_reset(vi);
	/* Orphans whose NESTED domain the core now lets go. */
	for (struct vtab **pp = &vi->vt.orphans; *pp;) {
		struct vtab *t = *pp;

		if (viommu_domain_destroy(t->nested)) {
			pp = &t->next_orphan;
			continue;
		}
		*pp = t->next_orphan;
		if (t->s2 && viommu_domain_destroy(t->s2))
			rl_err(&vi->rl, &vi->log, "virtio-iommu: domain %u: "
			       "stage 2 not destroyed", t->id);
		xfree(&vi->alloc, t);
	}
}

/* vt_settings() - see iommu_internal.h. */
int vt_settings(struct viommu_virtio_iommu *vi,
		const struct viommu_virtio_iommu_config *cfg)
{
	vi->vt.pasid_bits = cfg->pasid_bits ? cfg->pasid_bits : 20;
	vi->vt.pri_groups = cfg->pri_groups ? cfg->pri_groups : 64;
	vi->vt.pri_timeout_ms = cfg->pri_timeout_ms ? cfg->pri_timeout_ms :
						      1000;
	vi->vt.clock_ms = cfg->clock_ms;
	vi->vt.clock_opaque = cfg->clock_opaque;
	if (vi->vt.pasid_bits > 20 || vi->vt.pri_groups > VT_MAX_GROUPS)
		return -EINVAL;
	return 0;
}

VIOMMU_EXPORT int
viommu_virtio_iommu_table_stats(struct viommu_virtio_iommu *vi,
				struct viommu_virtio_iommu_table_stats *out,
				size_t size)
{
	struct viommu_virtio_iommu_table_stats st;

	if (!vi || !out || !size)
		return -EINVAL;
	pthread_mutex_lock(&vi->dev.lock);
	st = vi->vt.st;
	st.walks = __atomic_load_n(&vi->vt.st.walks, __ATOMIC_RELAXED);
	st.walk_faults = __atomic_load_n(&vi->vt.st.walk_faults,
					 __ATOMIC_RELAXED);
	pthread_mutex_unlock(&vi->dev.lock);
	/* never write past what the caller has; what we lack reads as 0 */
	sized_out(out, size, &st, sizeof(st));
	return 0;
}
