/*
 * smmuv3.c - the SMMUv3 model object: creation and destruction, the public
 * entry points, and routing of registered endpoints
 * onto core domains.
 *
 * Routing.  Each registered endpoint's RID is attached to the context's
 * BLOCKED domain (abort STE; SMMUEN=0 with GBPA.ABORT), IDENTITY domain
 * (bypass STE; SMMUEN=0 without GBPA.ABORT) or to the endpoint's own
 * NESTED domain (created on first need, tag = StreamID, no parent) whose
 * stage-1 op is xlate_op().  Invalid or unreadable STEs route to the
 * NESTED domain too, so that each transaction raises its event.  The route
 * is recomputed whenever the STE may have changed in a way the guest
 * announces (CFGI_STE*, CFGI_ALL) and when SMMUEN or GBPA change.
 * PASIDs named by CFGI_CD are attached to the NESTED domain while the RID
 * is routed there (and detached, but remembered, while it is not).
 *
 * Interrupts (irq_raise(), irq_deliver()) are in queue.c.
 */
#include "smmuv3_internal.h"

static const struct viommu_stage1_ops smmu_s1_ops = {
	.translate = xlate_op,
};

/* ---- routing ---------------------------------------------------------------- */

/* want_route() - where @sid's RID belongs now. */
static enum route want_route(struct viommu_smmuv3 *s, uint32_t sid)
{
	struct ste ste;
	struct evt e = { 0 };
	enum route r;

	pthread_mutex_lock(&s->lock);
	if (!smmu_enabled(s))
		r = (s->gbpa & GBPA_ABORT) ? ROUTE_BLOCKED : ROUTE_IDENTITY;
	else if (ste_get(s, sid, &ste, &e))
		r = ROUTE_NESTED; /* let transactions raise the event */
	else if (ste.config == STE_CFG_ABORT)
		r = ROUTE_BLOCKED;
	else if (ste.config == STE_CFG_BYPASS)
		r = ROUTE_IDENTITY;
	else
		r = ROUTE_NESTED;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* ensure_domain() - the endpoint's NESTED domain, created on first use. */
static int ensure_domain(struct viommu_smmuv3 *s, struct smmu_ep *e)
{
	struct viommu_domain_config dc = {
		.kind = VIOMMU_DOMAIN_NESTED,
		.tag = e->sid,
		.s1 = &smmu_s1_ops,
		.s1_opaque = e,
	};

	if (e->dom)
		return 0;
	return viommu_domain_create(s->ctx, &dc, &e->dom);
}

/* pasids_follow() - attach or detach the remembered PASIDs. */
static void pasids_follow(struct viommu_smmuv3 *s, struct smmu_ep *e,
			  bool attach)
{
	for (unsigned int i = 0; i < e->npasids;) {
		if (!attach) {
			viommu_endpoint_detach(e->ep, e->pasids[i++]);
			continue;
		}
		if (!viommu_endpoint_attach(e->ep, e->pasids[i], e->dom)) {
			i++;
			continue;
		}
		rl_warn(&s->rl, &s->log, "smmuv3: sid %#x: cannot attach PASID %#x",
			 e->sid, e->pasids[i]);
		e->pasids[i] = e->pasids[--e->npasids];
	}
}

/* route_ep() - re-route one endpoint (cmd_lock held). */
static void route_ep(struct viommu_smmuv3 *s, struct smmu_ep *e)
{
	enum route r = want_route(s, e->sid);
	struct viommu_domain *dom;

	if (r == ROUTE_NESTED && ensure_domain(s, e)) {
		rl_warn(&s->rl, &s->log, "smmuv3: sid %#x: no domain left, "
			 "blocking", e->sid);
		r = ROUTE_BLOCKED;
	}
	if (r == e->route)
		return;
	if (r == ROUTE_BLOCKED)
		dom = viommu_ctx_blocked_domain(s->ctx);
	else if (r == ROUTE_IDENTITY)
		dom = viommu_ctx_identity_domain(s->ctx);
	else
		dom = e->dom;
	if (viommu_endpoint_attach(e->ep, VIOMMU_NO_PASID, dom)) {
		rl_err(&s->rl, &s->log, "smmuv3: sid %#x: attach failed", e->sid);
		return;
	}
	pasids_follow(s, e, r == ROUTE_NESTED);
	e->route = r;
}

/*
 * route_sid_range() - re-route endpoints with StreamIDs in [first, last].
 * Return: how many were looked at (their STEs read), the measure of work
 * cmds.c bounds per slice.
 */
unsigned int route_sid_range(struct viommu_smmuv3 *s, uint32_t first,
			     uint32_t last)
{
	unsigned int n = 0;

	for (struct smmu_ep *e = s->eps; e; e = e->next)
		if (e->sid >= first && e->sid <= last) {
			route_ep(s, e);
			n++;
		}
	return n;
}

/* route_pasid() - CFGI_CD named (@sid, @ssid): make the PASID routable. */
void route_pasid(struct viommu_smmuv3 *s, uint32_t sid, uint32_t ssid)
{
	struct smmu_ep *e;
	unsigned int i;

	for (e = s->eps; e && e->sid != sid; e = e->next)
		;
	if (!e)
		return;
	for (i = 0; i < e->npasids && e->pasids[i] != ssid; i++)
		;
	if (i < e->npasids)
		return;
	if (e->npasids == SMMU_EP_PASIDS) {
		rl_warn(&s->rl, &s->log, "smmuv3: sid %#x: too many PASIDs", sid);
		return;
	}
	e->pasids[e->npasids++] = ssid;
	if (e->route != ROUTE_NESTED)
		return;
	if (viommu_endpoint_attach(e->ep, ssid, e->dom)) {
		rl_warn(&s->rl, &s->log, "smmuv3: sid %#x: cannot attach PASID %#x",
			 sid, ssid);
		e->npasids--;
	}
}

/* ---- object ------------------------------------------------------------------ */

/* pow2_or() - @v, or @def when 0; -1 when not a power of two <= 65536. */
static long pow2_or(unsigned int v, unsigned int def)
{
	if (!v)
		v = def;
	if (v > 65536 || (v & (v - 1)))
		return -1;
	return v;
}

/* oas_encode() - IDR5.OAS encoding of @bits, or -1. */
static int oas_encode(unsigned int bits)
{
	static const unsigned int enc[6] = { 32, 36, 40, 42, 44, 48 };

	for (int i = 0; i < 6; i++)
		if (enc[i] == bits)
			return i;
	return -1;
}

/* qsize_or() - a queue size limit, or -1. */
static int qsize_or(unsigned int v, unsigned int def)
{
	if (!v)
		v = def;
	return v < 7 || v > 19 ? -1 : (int)v;
}

/* apply_config() - check @cfg and fill the capability fields of @s. */
static int apply_config(struct viommu_smmuv3 *s,
			const struct viommu_smmuv3_config *cfg)
{
	int oas = oas_encode(cfg->oas_bits ? cfg->oas_bits : 48);
	int cq = qsize_or(cfg->cmdq_log2, 10), eq = qsize_or(cfg->evtq_log2, 10);
	int pq = qsize_or(cfg->priq_log2, 8);

	s->features = cfg->features ? cfg->features : VIOMMU_SMMUV3_F_DEFAULT;
	if ((s->features & ~VIOMMU_SMMUV3_F_ALL) ||
	    !(s->features & (VIOMMU_SMMUV3_F_STAGE1 | VIOMMU_SMMUV3_F_STAGE2)))
		return -EINVAL;
	s->sid_bits = cfg->sid_bits ? cfg->sid_bits : 16;
	s->ssid_bits = cfg->ssid_bits == VIOMMU_SMMUV3_NO_SSID ? 0 :
		       cfg->ssid_bits ? cfg->ssid_bits : 20;
	if (s->sid_bits > 32 || s->ssid_bits > 20 || oas < 0 || cq < 0 ||
	    eq < 0 || pq < 0)
		return -EINVAL;
	s->oas_enc = (unsigned int)oas;
	s->oas = cfg->oas_bits ? cfg->oas_bits : 48;
	s->cmdq.max_log2 = (unsigned int)cq;
	s->evtq.max_log2 = (unsigned int)eq;
	s->priq.max_log2 = (unsigned int)pq;
	return 0;
}

/* alloc_caches() - configuration cache and IOTLB arrays. */
static int alloc_caches(struct viommu_smmuv3 *s,
			const struct viommu_smmuv3_config *cfg)
{
	long nt = pow2_or(cfg->iotlb_entries, 1024);
	long nc = pow2_or(cfg->cfg_entries, 256);

	if (nt < 0 || nc < 0)
		return -EINVAL;
	s->tlb = xzalloc(&s->alloc, (size_t)nt * sizeof(*s->tlb));
	s->ste_cache = xzalloc(&s->alloc, (size_t)nc * sizeof(*s->ste_cache));
	s->cd_cache = xzalloc(&s->alloc, (size_t)nc * sizeof(*s->cd_cache));
	if (!s->tlb || !s->ste_cache || !s->cd_cache)
		return -ENOMEM;
	s->tlb_mask = (uint32_t)nt - 1;
	s->ste_mask = s->cd_mask = (uint32_t)nc - 1;
	return 0;
}

/* free_smmu() - release the memory of @s. */
static void free_smmu(struct viommu_smmuv3 *s)
{
	struct viommu_allocator a = s->alloc;

	xfree(&a, s->tlb);
	xfree(&a, s->ste_cache);
	xfree(&a, s->cd_cache);
	xfree(&a, s);
}

/*
 * The layout a @size of 0 stands for: the first one with a size field
 * (the one before it had no @size at all; docs/API.md, "Conventions").
 */
#define CONFIG_SIZE_V1 \
	(offsetof(struct viommu_smmuv3_config, irq_opaque) + sizeof(void *))

/*
 * config_copy() - the caller's config as this library knows it: its first
 * @size bytes, the rest 0.  Return: false when @size is larger than we
 * know and the bytes past what we know are not all zero (the caller asks
 * for something this library cannot do).
 */
static bool config_copy(const struct viommu_smmuv3_config *user,
			struct viommu_smmuv3_config *out)
{
	size_t n = user->size ? user->size : CONFIG_SIZE_V1;

	for (size_t i = sizeof(*out); i < n; i++)
		if (((const uint8_t *)user)[i])
			return false;
	memset(out, 0, sizeof(*out));
	memcpy(out, user, MIN(n, sizeof(*out)));
	return true;
}

VIOMMU_EXPORT int viommu_smmuv3_create(const struct viommu_smmuv3_config *user,
				       struct viommu_smmuv3 **out)
{
	struct viommu_smmuv3_config c, *cfg = &c;
	struct viommu_smmuv3 *s;
	int ret;

	if (!user || !out || !config_copy(user, &c) || !cfg->ctx ||
	    !cfg->mem || cfg->mem != viommu_ctx_mem(cfg->ctx))
		return -EINVAL;
	s = xzalloc(&cfg->allocator, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->alloc = cfg->allocator;
	s->ctx = cfg->ctx;
	s->mem = cfg->mem;
	s->log = cfg->log;
	s->irq_fn = cfg->irq;
	s->irq_opaque = cfg->irq_opaque;
	ret = apply_config(s, cfg);
	if (!ret)
		ret = alloc_caches(s, cfg);
	if (ret) {
		free_smmu(s);
		return ret;
	}
	pthread_mutex_init(&s->cmd_lock, NULL);
	pthread_mutex_init(&s->lock, NULL);
	s->gbpa = cfg->gbpa_abort ? GBPA_ABORT : 0;
	regs_reset(s);
	*out = s;
	return 0;
}

/* drop_ep() - detach and forget one endpoint (cmd_lock held). */
static void drop_ep(struct viommu_smmuv3 *s, struct smmu_ep *e)
{
	for (unsigned int i = 0; i < e->npasids; i++)
		viommu_endpoint_detach(e->ep, e->pasids[i]);
	viommu_endpoint_detach(e->ep, VIOMMU_NO_PASID);
	if (e->dom && viommu_domain_destroy(e->dom))
		rl_err(&s->rl, &s->log, "smmuv3: sid %#x: domain still busy", e->sid);
	xfree(&s->alloc, e);
}

VIOMMU_EXPORT void viommu_smmuv3_destroy(struct viommu_smmuv3 *smmu)
{
	if (!smmu)
		return;
	while (smmu->eps) {
		struct smmu_ep *e = smmu->eps;

		smmu->eps = e->next;
		viommu_endpoint_attach(e->ep, VIOMMU_NO_PASID,
				       viommu_ctx_blocked_domain(smmu->ctx));
		for (unsigned int i = 0; i < e->npasids; i++)
			viommu_endpoint_detach(e->ep, e->pasids[i]);
		if (e->dom && viommu_domain_destroy(e->dom))
			rl_err(&smmu->rl, &smmu->log, "smmuv3: domain still busy");
		xfree(&smmu->alloc, e);
	}
	pthread_mutex_destroy(&smmu->cmd_lock);
	pthread_mutex_destroy(&smmu->lock);
	free_smmu(smmu);
}

VIOMMU_EXPORT int viommu_smmuv3_reset(struct viommu_smmuv3 *smmu)
{
	if (!smmu)
		return -EINVAL;
	pthread_mutex_lock(&smmu->cmd_lock);
	pthread_mutex_lock(&smmu->lock);
	regs_reset(smmu);
	cfg_inval_ste(smmu, 0, UINT32_MAX);
	tlb_inval(smmu, TLBI_ALL, 0, 0, 0, UINT64_MAX);
	pthread_mutex_unlock(&smmu->lock);
	route_sid_range(smmu, 0, UINT32_MAX);
	pthread_mutex_unlock(&smmu->cmd_lock);
	rl_info(&smmu->rl, &smmu->log, "smmuv3: reset");
	return 0;
}

VIOMMU_EXPORT int viommu_smmuv3_mmio_read(struct viommu_smmuv3 *smmu,
					  uint64_t offset, unsigned int size,
					  uint64_t *val)
{
	if (!smmu || !val)
		return -EINVAL;
	/* Commands left by a slice: this access runs the next (cmds.c). */
	if (__atomic_load_n(&smmu->cmdq_pending, __ATOMIC_RELAXED)) {
		pthread_mutex_lock(&smmu->cmd_lock);
		cmdq_resume(smmu);
		pthread_mutex_unlock(&smmu->cmd_lock);
	}
	return regs_read(smmu, offset, size, val);
}

VIOMMU_EXPORT int viommu_smmuv3_poll(struct viommu_smmuv3 *smmu)
{
	int left;

	if (!smmu)
		return -EINVAL;
	pthread_mutex_lock(&smmu->cmd_lock);
	left = cmdq_resume(smmu);
	pthread_mutex_unlock(&smmu->cmd_lock);
	return left;
}

VIOMMU_EXPORT int viommu_smmuv3_mmio_write(struct viommu_smmuv3 *smmu,
					   uint64_t offset, unsigned int size,
					   uint64_t val)
{
	int ret;

	if (!smmu)
		return -EINVAL;
	pthread_mutex_lock(&smmu->cmd_lock);
	ret = regs_write(smmu, offset, size, val);
	pthread_mutex_unlock(&smmu->cmd_lock);
	return ret;
}

VIOMMU_EXPORT int viommu_smmuv3_add_endpoint(struct viommu_smmuv3 *smmu,
					     struct viommu_endpoint *ep)
{
	struct viommu_endpoint *found = NULL;
	struct smmu_ep *e;
	uint32_t sid;

	if (!smmu || !ep)
		return -EINVAL;
	sid = viommu_endpoint_id(ep);
	if (viommu_endpoint_lookup(smmu->ctx, sid, &found) || found != ep ||
	    (smmu->sid_bits < 32 && (sid >> smmu->sid_bits)))
		return -EINVAL;
	pthread_mutex_lock(&smmu->cmd_lock);
	for (e = smmu->eps; e && e->ep != ep; e = e->next)
		;
	if (e) {
		pthread_mutex_unlock(&smmu->cmd_lock);
		return -EEXIST;
	}
	e = xzalloc(&smmu->alloc, sizeof(*e));
	if (!e) {
		pthread_mutex_unlock(&smmu->cmd_lock);
		return -ENOMEM;
	}
	e->smmu = smmu;
	e->ep = ep;
	e->sid = sid;
	e->next = smmu->eps;
	smmu->eps = e;
	route_ep(smmu, e);
	pthread_mutex_unlock(&smmu->cmd_lock);
	return 0;
}

VIOMMU_EXPORT int viommu_smmuv3_remove_endpoint(struct viommu_smmuv3 *smmu,
						struct viommu_endpoint *ep)
{
	struct smmu_ep **pp;

	if (!smmu || !ep)
		return -EINVAL;
	pthread_mutex_lock(&smmu->cmd_lock);
	for (pp = &smmu->eps; *pp && (*pp)->ep != ep; pp = &(*pp)->next)
		;
	if (!*pp) {
		pthread_mutex_unlock(&smmu->cmd_lock);
		return -ENOENT;
	}
	struct smmu_ep *e = *pp;

	*pp = e->next;
	drop_ep(smmu, e);
	pthread_mutex_unlock(&smmu->cmd_lock);
	return 0;
}

VIOMMU_EXPORT int viommu_smmuv3_stats(struct viommu_smmuv3 *smmu,
				      struct viommu_smmuv3_stats *out,
				      size_t size)
{
	struct viommu_smmuv3_stats st;

	if (!smmu || !out || !size)
		return -EINVAL;
	pthread_mutex_lock(&smmu->lock);
	st = smmu->st;
	st.irqs = READ_ONCE(smmu->st.irqs);
	st.msis = READ_ONCE(smmu->st.msis);
	st.log_suppressed = rl_suppressed(&smmu->rl);
	pthread_mutex_unlock(&smmu->lock);
	/* never write past what the caller has; what we lack reads as 0 */
	sized_out(out, size, &st, sizeof(st));
	return 0;
}

VIOMMU_EXPORT int viommu_smmuv3_set_trace_sink(struct viommu_smmuv3 *smmu,
					       const struct viommu_trace_sink *sink)
{
	int err;

	if (!smmu)
		return -EINVAL;
	/* commands run and events are written under the state lock */
	pthread_mutex_lock(&smmu->lock);
	err = trace_set(&smmu->tr, &smmu->log, sink);
	pthread_mutex_unlock(&smmu->lock);
	return err;
}
