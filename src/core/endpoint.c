/*
 * endpoint.c - endpoints: creation and look-up by ID, reserved regions,
 * and attachment of the RID or a PASID to a domain.
 *
 * Every change to what an endpoint translates through (ep->dom,
 * ep->pasids[], ep->resv[]) happens under ctx->lock inside an ep->seq write
 * section, so lock-free translate() either sees the old state or the new
 * one, never a mix, and retries if it overlapped a change.
 *
 * Attach is all-or-nothing: every check and every allocation happens
 * before the first change.  The reserved-region union of the domain being
 * joined may need to grow (allocation); the union of the domain being left
 * only shrinks (in place), so moving to a static domain cannot fail.
 */
#include "internal.h"

#include <errno.h>

static uint32_t ep_hash(uint32_t id, uint32_t mask)
{
	return (id * 0x9e3779b1u) >> 16 & mask;
}

static struct viommu_endpoint *__ep_find(struct viommu_ctx *ctx, uint32_t id)
{
	struct viommu_endpoint *ep = ctx->ep_hash[ep_hash(id, ctx->ep_hash_mask)];

	while (ep && ep->id != id)
		ep = ep->hnext;
	return ep;
}

VIOMMU_EXPORT int viommu_endpoint_create(struct viommu_ctx *ctx, uint32_t id,
					 struct viommu_endpoint **out)
{
	struct viommu_endpoint *ep = NULL;
	uint32_t h;
	int ret;

	if (!ctx || !out)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	ret = -EEXIST;
	if (__ep_find(ctx, id))
		goto fail;
	ret = -ENOSPC;
	if (ctx->nendpoints >= ctx->lim.max_endpoints) {
		rl_debug(&ctx->rl, &ctx->log, "endpoint %#x: limit of %u endpoints "
			 "reached", id, ctx->lim.max_endpoints);
		goto fail;
	}
	ret = -ENOMEM;
	ep = xzalloc(&ctx->alloc, sizeof(*ep));
	if (!ep)
		goto fail;
	ep->pasids = xzalloc(&ctx->alloc, ctx->lim.max_pasids_per_endpoint *
					   sizeof(*ep->pasids));
	ep->resv = xzalloc(&ctx->alloc, ctx->lim.max_resv_per_endpoint *
					 sizeof(*ep->resv));
	if (!ep->pasids || !ep->resv)
		goto fail;
	ep->ctx = ctx;
	ep->id = id;
	h = ep_hash(id, ctx->ep_hash_mask);
	ep->hnext = ctx->ep_hash[h];
	ctx->ep_hash[h] = ep;
	ctx->nendpoints++;
	pthread_mutex_unlock(&ctx->lock);
	*out = ep;
	return 0;
fail:
	if (ep) {
		xfree(&ctx->alloc, ep->pasids);
		xfree(&ctx->alloc, ep->resv);
		xfree(&ctx->alloc, ep);
	}
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

VIOMMU_EXPORT int viommu_endpoint_lookup(struct viommu_ctx *ctx, uint32_t id,
					 struct viommu_endpoint **out)
{
	struct viommu_endpoint *ep;

	if (!ctx || !out)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	ep = __ep_find(ctx, id);
	pthread_mutex_unlock(&ctx->lock);
	if (!ep)
		return -ENOENT;
	*out = ep;
	return 0;
}

VIOMMU_EXPORT uint32_t viommu_endpoint_id(const struct viommu_endpoint *ep)
{
	return ep ? ep->id : 0;
}

/* Where the RID (NO_PASID) or a PASID's domain pointer lives. */
static struct viommu_domain **__slot_of(struct viommu_endpoint *ep,
					uint32_t pasid)
{
	uint32_t i;

	if (pasid == VIOMMU_NO_PASID)
		return &ep->dom;
	for (i = 0; i < ep->ctx->lim.max_pasids_per_endpoint; i++)
		if (ep->pasids[i].dom && ep->pasids[i].pasid == pasid)
			return &ep->pasids[i].dom;
	return NULL;
}

static struct ep_pasid *__free_pasid(struct viommu_endpoint *ep)
{
	uint32_t i;

	for (i = 0; i < ep->ctx->lim.max_pasids_per_endpoint; i++)
		if (!ep->pasids[i].dom)
			return &ep->pasids[i];
	return NULL;
}

static void __notify_attach(struct viommu_domain *dom, uint32_t type,
			    const struct viommu_endpoint *ep, uint32_t pasid)
{
	struct viommu_event ev = {
		.type = type, .domain = dom, .tag = dom->tag,
		.endpoint = ep->id, .pasid = pasid,
	};

	__notify(dom, &ev);
}

/* Domains that keep a reserved-region union: the ones that take maps. */
static bool has_union(const struct viommu_domain *dom)
{
	return dom && dom->kind == VIOMMU_DOMAIN_PAGING;
}

/* Lock two domains (either may be NULL or equal); ctx->lock is held. */
static void lock2(struct viommu_domain *a, struct viommu_domain *b)
{
	if (a)
		pthread_mutex_lock(&a->lock);
	if (b && b != a)
		pthread_mutex_lock(&b->lock);
}

static void unlock2(struct viommu_domain *a, struct viommu_domain *b)
{
	if (b && b != a)
		pthread_mutex_unlock(&b->lock);
	if (a)
		pthread_mutex_unlock(&a->lock);
}

/*
 * __move() - switch the attachment at *slot from its domain to @to (NULL:
 * detach).  All checks and allocations are done; cannot fail.
 */
static void __move(struct viommu_endpoint *ep, uint32_t pasid,
		   struct viommu_domain **slot, struct ep_pasid *newp,
		   struct viommu_domain *to)
{
	struct viommu_domain *from = slot ? *slot : NULL;

	lock2(from, to);
	seq_write_begin(&ep->seq);
	if (newp) {
		WRITE_ONCE(newp->pasid, pasid);
		WRITE_ONCE(newp->dom, to);
	} else {
		WRITE_ONCE(*slot, to);
	}
	seq_write_end(&ep->seq);
	if (from) {
		from->attached--;
		if (has_union(from))
			__resv_union_del(from, ep, pasid);
		__notify_attach(from, VIOMMU_EVENT_DETACH, ep, pasid);
		trace_core_attach(&ep->ctx->tr, ep->id, pasid, from->tag,
				  false);
	}
	if (to) {
		to->attached++;
		if (has_union(to))
			__resv_union_add(to, ep, pasid);
		__notify_attach(to, VIOMMU_EVENT_ATTACH, ep, pasid);
		trace_core_attach(&ep->ctx->tr, ep->id, pasid, to->tag, true);
	}
	unlock2(from, to);
}

VIOMMU_EXPORT int viommu_endpoint_attach(struct viommu_endpoint *ep,
					 uint32_t pasid,
					 struct viommu_domain *dom)
{
	struct viommu_domain **slot;
	struct ep_pasid *newp = NULL;
	struct viommu_ctx *ctx;
	int ret = 0;

	if (!ep || !dom || !pasid_ok(pasid) || dom->ctx != ep->ctx)
		return -EINVAL;
	ctx = ep->ctx;
	pthread_mutex_lock(&ctx->lock);
	if (!dom->alive) {
		ret = -EINVAL;
		goto out;
	}
	slot = __slot_of(ep, pasid);
	if (slot && *slot == dom)
		goto out;
	if (!slot) {
		newp = __free_pasid(ep);
		if (!newp) {
			rl_debug(&ctx->rl, &ctx->log, "endpoint %#x: no room for PASID "
				 "%#x (limit %u)", ep->id, pasid,
				 ctx->lim.max_pasids_per_endpoint);
			ret = -ENOSPC;
			goto out;
		}
	}
	if (has_union(dom)) {
		pthread_mutex_lock(&dom->lock);
		ret = __domain_resv_conflict(dom, ep->resv, ep->nresv);
		if (ret)
			rl_debug(&ctx->rl, &ctx->log, "endpoint %#x: attach refused, a "
				 "mapping overlaps a reserved region", ep->id);
		pthread_mutex_unlock(&dom->lock);
		if (!ret)
			ret = resv_union_reserve(dom, ep->nresv);
		if (ret)
			goto out;
	}
	__move(ep, pasid, slot, newp, dom);
out:
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

VIOMMU_EXPORT int viommu_endpoint_detach(struct viommu_endpoint *ep,
					 uint32_t pasid)
{
	struct viommu_domain **slot;
	int ret = 0;

	if (!ep || !pasid_ok(pasid))
		return -EINVAL;
	pthread_mutex_lock(&ep->ctx->lock);
	slot = __slot_of(ep, pasid);
	if (!slot || !*slot)
		ret = -ENOENT;
	else
		__move(ep, pasid, slot, NULL, NULL);
	pthread_mutex_unlock(&ep->ctx->lock);
	return ret;
}

VIOMMU_EXPORT int viommu_endpoint_domain(struct viommu_endpoint *ep,
					 uint32_t pasid,
					 struct viommu_domain **out)
{
	struct viommu_domain **slot;

	if (!ep || !out || !pasid_ok(pasid))
		return -EINVAL;
	pthread_mutex_lock(&ep->ctx->lock);
	slot = __slot_of(ep, pasid);
	*out = slot ? *slot : NULL;
	pthread_mutex_unlock(&ep->ctx->lock);
	return 0;
}

VIOMMU_EXPORT void viommu_endpoint_destroy(struct viommu_endpoint *ep)
{
	struct viommu_endpoint **pp;
	struct viommu_ctx *ctx;
	uint32_t i;

	if (!ep)
		return;
	ctx = ep->ctx;
	pthread_mutex_lock(&ctx->lock);
	if (ep->dom)
		__move(ep, VIOMMU_NO_PASID, &ep->dom, NULL, NULL);
	for (i = 0; i < ctx->lim.max_pasids_per_endpoint; i++)
		if (ep->pasids[i].dom)
			__move(ep, ep->pasids[i].pasid, &ep->pasids[i].dom,
			       NULL, NULL);
	pp = &ctx->ep_hash[ep_hash(ep->id, ctx->ep_hash_mask)];
	while (*pp != ep)
		pp = &(*pp)->hnext;
	*pp = ep->hnext;
	ctx->nendpoints--;
	pthread_mutex_unlock(&ctx->lock);
	xfree(&ctx->alloc, ep->pasids);
	xfree(&ctx->alloc, ep->resv);
	xfree(&ctx->alloc, ep);
}

/* ------------------------------------------------------------------ */
/* Reserved regions                                                   */

static int resv_check_new(struct viommu_endpoint *ep, uint64_t start,
			  uint64_t last, enum viommu_resv_type type)
{
	uint32_t i;

	if (start > last ||
	    (type != VIOMMU_RESV_RESERVED && type != VIOMMU_RESV_MSI))
		return -EINVAL;
	for (i = 0; i < ep->nresv; i++) {
		if (ranges_overlap(start, last, ep->resv[i].start,
				   ep->resv[i].last))
			return -EINVAL;
		if (type == VIOMMU_RESV_MSI &&
		    ep->resv[i].type == VIOMMU_RESV_MSI)
			return -EINVAL;
	}
	return 0;
}

/* Every domain @ep is attached to, for the reserved-region checks. */
static uint32_t __ep_domains(struct viommu_endpoint *ep,
			     struct viommu_domain **doms, uint32_t *pasids)
{
	uint32_t i, n = 0;

	if (ep->dom) {
		doms[n] = ep->dom;
		pasids[n++] = VIOMMU_NO_PASID;
	}
	for (i = 0; i < ep->ctx->lim.max_pasids_per_endpoint; i++)
		if (ep->pasids[i].dom) {
			doms[n] = ep->pasids[i].dom;
			pasids[n++] = ep->pasids[i].pasid;
		}
	return n;
}

VIOMMU_EXPORT int viommu_endpoint_add_resv(struct viommu_endpoint *ep,
					   uint64_t start, uint64_t last,
					   enum viommu_resv_type type)
{
	struct viommu_resv r = { start, last, type };
	struct viommu_domain **doms = NULL;
	uint32_t *pasids = NULL, n, i, pos;
	struct viommu_ctx *ctx;
	int ret;

	if (!ep)
		return -EINVAL;
	ctx = ep->ctx;
	pthread_mutex_lock(&ctx->lock);
	ret = resv_check_new(ep, start, last, type);
	if (ret)
		goto out;
	ret = -ENOSPC;
	if (ep->nresv >= ctx->lim.max_resv_per_endpoint)
		goto out;
	ret = -ENOMEM;
	n = ctx->lim.max_pasids_per_endpoint + 1;
	doms = xalloc(&ctx->alloc, n * sizeof(*doms));
	pasids = xalloc(&ctx->alloc, n * sizeof(*pasids));
	if (!doms || !pasids)
		goto out;
	n = __ep_domains(ep, doms, pasids);
	ret = 0;
	for (i = 0; i < n && !ret; i++) {
		uint32_t j, same = 0;

		if (!has_union(doms[i]))
			continue;
		pthread_mutex_lock(&doms[i]->lock);
		ret = __domain_resv_conflict(doms[i], &r, 1);
		pthread_mutex_unlock(&doms[i]->lock);
		/*
		 * The RID and several PASIDs may share a domain: each such
		 * attachment adds its own copy of the new region.
		 */
		for (j = 0; j < n; j++)
			same += doms[j] == doms[i];
		if (!ret)
			ret = resv_union_reserve(doms[i], same);
	}
	if (ret)
		goto out;

	for (pos = ep->nresv; pos && ep->resv[pos - 1].start > start; pos--)
		;
	seq_write_begin(&ep->seq);
	memmove(&ep->resv[pos + 1], &ep->resv[pos],
		(ep->nresv - pos) * sizeof(r));
	ep->resv[pos] = r;
	WRITE_ONCE(ep->nresv, ep->nresv + 1);
	seq_write_end(&ep->seq);
	/* Rebuild this endpoint's share of each union (room reserved). */
	for (i = 0; i < n; i++) {
		if (!has_union(doms[i]))
			continue;
		pthread_mutex_lock(&doms[i]->lock);
		__resv_union_del(doms[i], ep, pasids[i]);
		__resv_union_add(doms[i], ep, pasids[i]);
		pthread_mutex_unlock(&doms[i]->lock);
	}
out:
	if (ret == -EINVAL)
		rl_debug(&ctx->rl, &ctx->log, "endpoint %#x: reserved region [%#llx, "
			 "%#llx] refused", ep->id, (unsigned long long)start,
			 (unsigned long long)last);
	xfree(&ctx->alloc, doms);
	xfree(&ctx->alloc, pasids);
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

VIOMMU_EXPORT int viommu_endpoint_get_resv(struct viommu_endpoint *ep,
					   struct viommu_resv *out,
					   unsigned int max, unsigned int *n)
{
	unsigned int i;

	if (!ep || !n || (!out && max))
		return -EINVAL;
	pthread_mutex_lock(&ep->ctx->lock);
	for (i = 0; i < ep->nresv && i < max; i++)
		out[i] = ep->resv[i];
	*n = ep->nresv;
	pthread_mutex_unlock(&ep->ctx->lock);
	return 0;
}
