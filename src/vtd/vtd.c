/*
 * vtd.c - the VT-d model object: creation and destruction, the public
 * entry points, interrupt delivery, routing of registered endpoints onto
 * core domains, and the invalidation of their cached translations.
 *
 * Routing.  While GSTS.TES is clear every registered endpoint's RID is on
 * the context's IDENTITY domain (DMA is not remapped).  While it is set,
 * on the endpoint's own NESTED domain (created on first need, tag =
 * source-id, no parent) whose stage-1 op is vtd_xlate_op(): that op reads the
 * root, context and PASID entries and walks the tables for each
 * translation the core has not cached, so a missing or malformed entry
 * becomes the architected fault of that transaction.  PASIDs named by a
 * PASID-selective PASID-cache invalidation are attached to the domain too
 * (up to VTD_EP_PASIDS and the context's per-endpoint limit).
 *
 * Invalidation.  The core caches what vtd_xlate_op() returns per domain.  The
 * guest's invalidations map onto viommu_domain_invalidate() of the
 * endpoints they cover: by source-id (with the function mask), by domain
 * ID (the DIDs each endpoint's translations carried, recorded by
 * vtd_xlate_op()), or all.  Covering more than the guest asked is allowed
 * (hardware may drop any cached entry at any time); covering less never
 * happens: an endpoint whose DID list overflowed matches every DID.
 */
#include "vtd_internal.h"

#include <stddef.h>

static const struct viommu_stage1_ops vtd_s1_ops = {
	.translate = vtd_xlate_op,
};

/* vtd_irq_deliver() - call the embedder for each bit of @bits (no lock). */
void vtd_irq_deliver(struct viommu_vtd *v, uint32_t bits)
{
	for (unsigned int i = 0; i < 2; i++) {
		if (!(bits & (1u << i)))
			continue;
		ATOMIC_INC(v->st.irqs);
		if (v->irq_fn)
			v->irq_fn(v->irq_opaque, (enum viommu_vtd_irq)i);
	}
}

/* vtd_sm() - whether the latched root table is in scalable mode. */
bool vtd_sm(const struct viommu_vtd *v)
{
	return RTADDR_TTM(v->rta_active) == TTM_SCALABLE;
}

/* ---- routing ---------------------------------------------------------- */

/* ensure_domain() - the endpoint's NESTED domain, created on first use. */
static int ensure_domain(struct viommu_vtd *v, struct vtd_ep *e)
{
	struct viommu_domain_config dc = {
		.kind = VIOMMU_DOMAIN_NESTED,
		.tag = e->sid,
		.s1 = &vtd_s1_ops,
		.s1_opaque = e,
	};

	if (e->dom)
		return 0;
	return viommu_domain_create(v->ctx, &dc, &e->dom);
}

/* pasids_follow() - attach or detach the remembered PASIDs. */
static void pasids_follow(struct viommu_vtd *v, struct vtd_ep *e, bool on)
{
	for (unsigned int i = 0; i < e->npasids;) {
		if (!on) {
			viommu_endpoint_detach(e->ep, e->pasids[i++]);
			continue;
		}
		if (!viommu_endpoint_attach(e->ep, e->pasids[i], e->dom)) {
			i++;
			continue;
		}
		rl_warn(&v->rl, &v->log, "vtd: sid %#x: cannot attach PASID %#x",
			e->sid, e->pasids[i]);
		e->pasids[i] = e->pasids[--e->npasids];
	}
}

/* route_ep() - re-route one endpoint (cmd_lock held). */
static void route_ep(struct viommu_vtd *v, struct vtd_ep *e)
{
	enum route r;
	struct viommu_domain *dom;

	pthread_mutex_lock(&v->lock);
	r = (v->gsts & G_TE) ? ROUTE_NESTED : ROUTE_IDENTITY;
	pthread_mutex_unlock(&v->lock);
	if (r == ROUTE_NESTED && ensure_domain(v, e)) {
		rl_warn(&v->rl, &v->log, "vtd: sid %#x: no domain left, "
			"blocking", e->sid);
		viommu_endpoint_attach(e->ep, VIOMMU_NO_PASID,
				       viommu_ctx_blocked_domain(v->ctx));
		pasids_follow(v, e, false);
		e->route = ROUTE_NONE;
		return;
	}
	if (r == e->route)
		return;
	dom = r == ROUTE_NESTED ? e->dom : viommu_ctx_identity_domain(v->ctx);
	if (viommu_endpoint_attach(e->ep, VIOMMU_NO_PASID, dom)) {
		rl_err(&v->rl, &v->log, "vtd: sid %#x: attach failed", e->sid);
		return;
	}
	pasids_follow(v, e, r == ROUTE_NESTED);
	e->route = r;
}

/* vtd_route_all() - re-route every endpoint (cmd_lock held). */
void vtd_route_all(struct viommu_vtd *v)
{
	for (struct vtd_ep *e = v->eps; e; e = e->next)
		route_ep(v, e);
}

/* vtd_route_pasid() - make @pasid routable on every endpoint (cmd_lock held). */
void vtd_route_pasid(struct viommu_vtd *v, uint32_t pasid)
{
	for (struct vtd_ep *e = v->eps; e; e = e->next) {
		unsigned int i;

		for (i = 0; i < e->npasids && e->pasids[i] != pasid; i++)
			;
		if (i < e->npasids)
			continue;
		if (e->npasids == VTD_EP_PASIDS) {
			rl_warn(&v->rl, &v->log, "vtd: sid %#x: too many "
				"PASIDs, %#x not routed", e->sid, pasid);
			continue;
		}
		e->pasids[e->npasids++] = pasid;
		if (e->route != ROUTE_NESTED)
			continue;
		if (viommu_endpoint_attach(e->ep, pasid, e->dom)) {
			rl_warn(&v->rl, &v->log, "vtd: sid %#x: cannot attach "
				"PASID %#x", e->sid, pasid);
			e->npasids--;
		}
	}
}

/* did_match() - whether @e's translations may carry @did (v->lock held). */
static bool did_match(const struct vtd_ep *e, uint16_t did)
{
	if (e->did_any)
		return true;
	for (unsigned int i = 0; i < e->ndids; i++)
		if (e->dids[i] == did)
			return true;
	return false;
}

/*
 * vtd_inval_eps() - drop cached translations over [lo, hi] of the endpoints
 * selected by source-id (@sid, ignoring the bits of @fm_mask) and/or by
 * domain ID; with neither, all of them.  @forget_dids: a context-cache
 * invalidation - the endpoints' recorded DIDs start over.  cmd_lock held.
 */
void vtd_inval_eps(struct viommu_vtd *v, bool by_sid, uint16_t sid,
	       uint16_t fm_mask, bool by_did, uint16_t did, uint64_t lo,
	       uint64_t hi, bool forget_dids)
{
	pthread_mutex_lock(&v->lock);
	vtd_tlb_inval(v, by_sid, sid, fm_mask, by_did, did, lo, hi);
	pthread_mutex_unlock(&v->lock);
	for (struct vtd_ep *e = v->eps; e; e = e->next) {
		bool hit = true;

		if (by_sid && (e->sid & ~fm_mask) != (sid & ~fm_mask))
			continue;
		pthread_mutex_lock(&v->lock);
		if (by_did)
			hit = did_match(e, did);
		if (hit && forget_dids) {
			e->ndids = 0;
			e->did_any = false;
		}
		pthread_mutex_unlock(&v->lock);
		if (hit && e->dom)
			viommu_domain_invalidate(e->dom, lo, hi);
	}
}

/* ---- object ------------------------------------------------------------ */

/* The layout a @size of 0 stands for: this one. */
#define VTD_CONFIG_SIZE_V1 sizeof(struct viommu_vtd_config)

/* copy_config() - @user as this library knows it; false if refused. */
static bool copy_config(const struct viommu_vtd_config *user,
			struct viommu_vtd_config *out)
{
	size_t n = user->size ? user->size : VTD_CONFIG_SIZE_V1;

	for (size_t i = sizeof(*out); i < n; i++)
		if (((const uint8_t *)user)[i])
			return false;
	if (n < offsetof(struct viommu_vtd_config, ctx))
		return false;
	memset(out, 0, sizeof(*out));
	memcpy(out, user, MIN(n, sizeof(*out)));
	return true;
}

/* apply_config() - check @c and derive the capability registers. */
static int apply_config(struct viommu_vtd *v, const struct viommu_vtd_config *c)
{
	uint32_t f = c->features ? c->features : VIOMMU_VTD_F_DEFAULT;
	unsigned int aw = c->aw_bits ? c->aw_bits :
			  (f & VIOMMU_VTD_F_5LVL) ? 57 : 48;
	unsigned int nfr = c->nfr ? c->nfr : 8;

	if ((f & ~VIOMMU_VTD_F_ALL) || nfr > VIOMMU_VTD_MAX_NFR ||
	    (aw != 39 && aw != 48 && aw != 57) ||
	    ((f & VIOMMU_VTD_F_FL) && !(f & VIOMMU_VTD_F_SM)) ||
	    ((f & VIOMMU_VTD_F_SM) && !(f & VIOMMU_VTD_F_QI)) ||
	    ((f & VIOMMU_VTD_F_5LVL) && aw != 57) ||
	    (aw == 57 && !(f & VIOMMU_VTD_F_5LVL)))
		return -EINVAL;
	v->features = f;
	/* Table addresses and outputs are checked against 52 bits at most. */
	v->aw = MIN(aw, 52u);
	v->nfr = nfr;
	v->cap = CAP_ND_16 | CAP_SAGAW_39 | CAP_SAGAW_48 |
		 (uint64_t)(aw - 1) << CAP_MGAW_SHIFT |
		 (uint64_t)FRO << CAP_FRO_SHIFT | CAP_SLLPS_2M | CAP_SLLPS_1G |
		 CAP_PSI | (uint64_t)(nfr - 1) << CAP_NFR_SHIFT |
		 (uint64_t)MAMV << CAP_MAMV_SHIFT;
	if (aw == 39)
		v->cap &= ~CAP_SAGAW_48;
	if (f & VIOMMU_VTD_F_5LVL)
		v->cap |= CAP_SAGAW_57 | CAP_FL5LP;
	if (f & VIOMMU_VTD_F_CM)
		v->cap |= CAP_CM;
	if (f & VIOMMU_VTD_F_FL)
		v->cap |= CAP_FL1GP;
	v->ecap = ECAP_C | (uint64_t)IRO << ECAP_IRO_SHIFT;
	if (f & VIOMMU_VTD_F_QI)
		v->ecap |= ECAP_QI;
	if (f & VIOMMU_VTD_F_PT)
		v->ecap |= ECAP_PT;
	if (f & VIOMMU_VTD_F_SM)
		v->ecap |= ECAP_SMTS | ECAP_SLTS | ECAP_PASID |
			   19ull << ECAP_PSS_SHIFT;
	if (f & VIOMMU_VTD_F_FL)
		v->ecap |= ECAP_FLTS | ECAP_NEST;
	return 0;
}

/* free_vtd() - release the memory of @v. */
static void free_vtd(struct viommu_vtd *v)
{
	struct viommu_allocator a = v->alloc;

	xfree(&a, v->frcd);
	xfree(&a, v->tlb);
	xfree(&a, v);
}

VIOMMU_EXPORT int viommu_vtd_create(const struct viommu_vtd_config *cfg,
				    struct viommu_vtd **out)
{
	struct viommu_vtd_config c;
	struct viommu_vtd *v;
	int ret;

	if (!cfg || !out || !copy_config(cfg, &c) || !c.ctx || !c.mem)
		return -EINVAL;
	v = xzalloc(&c.allocator, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->alloc = c.allocator;
	v->ctx = c.ctx;
	v->mem = c.mem;
	v->log = c.log;
	v->irq_fn = c.irq;
	v->irq_opaque = c.irq_opaque;
	ret = apply_config(v, &c);
	if (!ret) {
		v->frcd = xzalloc(&v->alloc, (size_t)v->nfr * 16);
		if (!v->frcd)
			ret = -ENOMEM;
	}
	if (!ret)
		ret = vtd_tlb_alloc(v, c.iotlb_entries);
	if (ret) {
		free_vtd(v);
		return ret;
	}
	pthread_mutex_init(&v->cmd_lock, NULL);
	pthread_mutex_init(&v->lock, NULL);
	vtd_regs_reset(v);
	*out = v;
	return 0;
}

/* drop_ep() - detach and forget one endpoint (cmd_lock held). */
static void drop_ep(struct viommu_vtd *v, struct vtd_ep *e, bool block)
{
	if (block)
		viommu_endpoint_attach(e->ep, VIOMMU_NO_PASID,
				       viommu_ctx_blocked_domain(v->ctx));
	for (unsigned int i = 0; i < e->npasids; i++)
		viommu_endpoint_detach(e->ep, e->pasids[i]);
	if (!block)
		viommu_endpoint_detach(e->ep, VIOMMU_NO_PASID);
	if (e->dom && viommu_domain_destroy(e->dom))
		rl_err(&v->rl, &v->log, "vtd: sid %#x: domain still busy",
		       e->sid);
	xfree(&v->alloc, e);
}

VIOMMU_EXPORT void viommu_vtd_destroy(struct viommu_vtd *vtd)
{
	if (!vtd)
		return;
	while (vtd->eps) {
		struct vtd_ep *e = vtd->eps;

		vtd->eps = e->next;
		drop_ep(vtd, e, true);
	}
	pthread_mutex_destroy(&vtd->cmd_lock);
	pthread_mutex_destroy(&vtd->lock);
	free_vtd(vtd);
}

VIOMMU_EXPORT int viommu_vtd_reset(struct viommu_vtd *vtd)
{
	if (!vtd)
		return -EINVAL;
	pthread_mutex_lock(&vtd->cmd_lock);
	pthread_mutex_lock(&vtd->lock);
	vtd_regs_reset(vtd);
	pthread_mutex_unlock(&vtd->lock);
	WRITE_ONCE(vtd->qi_pending, false);
	vtd_route_all(vtd);
	vtd_inval_eps(vtd, false, 0, 0, false, 0, 0, UINT64_MAX, true);
	pthread_mutex_unlock(&vtd->cmd_lock);
	rl_info(&vtd->rl, &vtd->log, "vtd: reset");
	return 0;
}

/* qi_resume() - the next slice of a queue left unfinished (cmd_lock). */
static void qi_resume(struct viommu_vtd *v)
{
	if (READ_ONCE(v->qi_pending))
		vtd_irq_deliver(v, vtd_qi_run(v));
}

VIOMMU_EXPORT int viommu_vtd_mmio_read(struct viommu_vtd *vtd,
				       uint64_t offset, unsigned int size,
				       uint64_t *val)
{
	if (!vtd || !val)
		return -EINVAL;
	if (READ_ONCE(vtd->qi_pending)) {
		pthread_mutex_lock(&vtd->cmd_lock);
		qi_resume(vtd);
		pthread_mutex_unlock(&vtd->cmd_lock);
	}
	return vtd_regs_read(vtd, offset, size, val);
}

VIOMMU_EXPORT int viommu_vtd_mmio_write(struct viommu_vtd *vtd,
					uint64_t offset, unsigned int size,
					uint64_t val)
{
	int ret;

	if (!vtd)
		return -EINVAL;
	pthread_mutex_lock(&vtd->cmd_lock);
	qi_resume(vtd);
	ret = vtd_regs_write(vtd, offset, size, val);
	pthread_mutex_unlock(&vtd->cmd_lock);
	return ret;
}

VIOMMU_EXPORT int viommu_vtd_poll(struct viommu_vtd *vtd)
{
	int left;

	if (!vtd)
		return -EINVAL;
	pthread_mutex_lock(&vtd->cmd_lock);
	qi_resume(vtd);
	left = READ_ONCE(vtd->qi_pending) ? 1 : 0;
	pthread_mutex_unlock(&vtd->cmd_lock);
	return left;
}

VIOMMU_EXPORT int viommu_vtd_add_endpoint(struct viommu_vtd *vtd,
					  struct viommu_endpoint *ep)
{
	struct viommu_endpoint *found = NULL;
	struct vtd_ep *e;
	uint32_t id;

	if (!vtd || !ep)
		return -EINVAL;
	id = viommu_endpoint_id(ep);
	if (id > 0xffff || viommu_endpoint_lookup(vtd->ctx, id, &found) ||
	    found != ep)
		return -EINVAL;
	pthread_mutex_lock(&vtd->cmd_lock);
	for (e = vtd->eps; e && e->ep != ep; e = e->next)
		;
	if (e) {
		pthread_mutex_unlock(&vtd->cmd_lock);
		return -EEXIST;
	}
	e = xzalloc(&vtd->alloc, sizeof(*e));
	if (!e) {
		pthread_mutex_unlock(&vtd->cmd_lock);
		return -ENOMEM;
	}
	e->v = vtd;
	e->ep = ep;
	e->sid = (uint16_t)id;
	e->next = vtd->eps;
	vtd->eps = e;
	route_ep(vtd, e);
	pthread_mutex_unlock(&vtd->cmd_lock);
	return 0;
}

VIOMMU_EXPORT int viommu_vtd_remove_endpoint(struct viommu_vtd *vtd,
					     struct viommu_endpoint *ep)
{
	struct vtd_ep **pp, *e;

	if (!vtd || !ep)
		return -EINVAL;
	pthread_mutex_lock(&vtd->cmd_lock);
	for (pp = &vtd->eps; *pp && (*pp)->ep != ep; pp = &(*pp)->next)
		;
	if (!*pp) {
		pthread_mutex_unlock(&vtd->cmd_lock);
		return -ENOENT;
	}
	e = *pp;
	*pp = e->next;
	drop_ep(vtd, e, false);
	pthread_mutex_unlock(&vtd->cmd_lock);
	return 0;
}

VIOMMU_EXPORT int viommu_vtd_set_trace_sink(struct viommu_vtd *vtd,
					    const struct viommu_trace_sink *sink)
{
	int err;

	if (!vtd)
		return -EINVAL;
	/* events come from under either lock: hold both */
	pthread_mutex_lock(&vtd->cmd_lock);
	pthread_mutex_lock(&vtd->lock);
	err = trace_set(&vtd->tr, &vtd->log, sink);
	pthread_mutex_unlock(&vtd->lock);
	pthread_mutex_unlock(&vtd->cmd_lock);
	return err;
}

VIOMMU_EXPORT int viommu_vtd_stats(struct viommu_vtd *vtd,
				   struct viommu_vtd_stats *out, size_t size)
{
	struct viommu_vtd_stats st;

	if (!vtd || !out || !size)
		return -EINVAL;
	pthread_mutex_lock(&vtd->lock);
	st = vtd->st;
	st.irqs = READ_ONCE(vtd->st.irqs);
	st.log_suppressed = rl_suppressed(&vtd->rl);
	pthread_mutex_unlock(&vtd->lock);
	/* never write past what the caller has; what we lack reads as 0 */
	sized_out(out, size, &st, sizeof(st));
	return 0;
}
