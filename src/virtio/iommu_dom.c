/*
 * iommu_dom.c - the virtio-iommu device's view of domains and endpoints:
 * which virtio domain IDs exist, what each stands for in the core, and
 * which endpoint is attached to which.  The request handlers
 * (iommu_req.c, iommu_table.c) decide; this file keeps the books.
 *
 * Concepts
 *  - A virtio domain ID names either a core PAGING domain (tag = the ID),
 *    created on the first ATTACH and destroyed when its last endpoint
 *    leaves (D17), a bypass domain (ATTACH_F_BYPASS) whose endpoints are
 *    attached to the core's IDENTITY domain, or a table-mode domain
 *    (iommu_table.c: a core NESTED domain).
 *  - Two sorted arrays (base/sarr.h) keep the device's view: domain ID ->
 *    struct vdom {core domain, bypass, table, endpoint count} and endpoint
 *    ID -> domain ID.  Both are bounded (core max_domains + max_endpoints,
 *    and max_endpoints).  Room is reserved before anything changes, so a
 *    refused request leaves the books as they were.
 *  - An endpoint that the embedder destroyed or re-attached behind the
 *    device's back is noticed at its next ATTACH/DETACH/PROBE
 *    (vi_att_sync) and its stale record dropped.
 *  - The x86 MSI window 0xfee00000-0xfeefffff is added (unless
 *    no_msi_region) as a core MSI reserved region to an endpoint the first
 *    time the guest names it (vi_lookup_ep), if the endpoint has no MSI
 *    region yet: the core offers no way to enumerate endpoints at creation.
 *
 * Everything here runs under the device lock (iommu.c, "Locks").
 */
#include <errno.h>

#include "base/util.h"
#include "virtio/iommu_internal.h"

/* vi_dom_find() - the virtio domain @id, or NULL. */
struct vdom *vi_dom_find(struct viommu_virtio_iommu *vi, uint32_t id)
{
	return vdoms_find(&vi->doms, id);
}

/* vi_att_find() - the attachment record of endpoint @ep, or NULL. */
struct vatt *vi_att_find(struct viommu_virtio_iommu *vi, uint32_t ep)
{
	return vatts_find(&vi->atts, ep);
}

/*
 * vi_dom_free() - destroy virtio domain @id and its core domain (D17).  A
 * core refusal is an internal error not tied to a request: D36.
 */
void vi_dom_free(struct viommu_virtio_iommu *vi, uint32_t id)
{
	struct vdom *d = vi_dom_find(vi, id);
	int ret;

	if (!d)
		return;
	if (d->tab) {
		ret = vt_dom_free(vi, d->tab);
		if (ret)
			rl_err(&vi->rl, &vi->log, "virtio-iommu: domain %u: "
			       "core refused to destroy its table domain (%d)",
			       id, ret);
	} else if (!d->bypass) {
		ret = viommu_domain_destroy(d->dom);
		if (ret) {
			rl_err(&vi->rl, &vi->log, "virtio-iommu: domain %u: core "
				"refused to destroy it (%d)", id, ret);
			needs_reset(vi, "virtio-iommu: internal error "
				    "destroying a domain");
		}
	}
	log_debug(&vi->log, "virtio-iommu: domain %u destroyed", id);
	vdoms_remove(&vi->doms, id);
}

/* vi_dom_put() - an endpoint left domain @id: destroy it when empty. */
void vi_dom_put(struct viommu_virtio_iommu *vi, uint32_t id)
{
	struct vdom *d = vi_dom_find(vi, id);

	if (d && d->nep && --d->nep == 0)
		vi_dom_free(vi, id);
}

/*
 * vi_dom_create() - create virtio domain @id: a core PAGING domain tagged
 * with @id, or (bypass) a reference to the core IDENTITY domain.
 * Return: 0; -ENOSPC (the device's table or a core limit); -ENOMEM;
 * -EIO.
 */
int vi_dom_create(struct viommu_virtio_iommu *vi, uint32_t id, bool bypass)
{
	struct viommu_domain_config cfg = {
		.kind = VIOMMU_DOMAIN_PAGING,
		.tag = id,
	};
	struct vdom d = { .id = id, .bypass = bypass };
	int ret;

	ret = vdoms_reserve(&vi->doms, &vi->alloc);
	if (ret)
		return ret;
	if (bypass)
		d.dom = viommu_ctx_identity_domain(vi->ctx);
	else
		ret = viommu_domain_create(vi->ctx, &cfg, &d.dom);
	if (ret)
		return vi_nomem(ret) ? ret : -EIO;
	vdoms_insert(&vi->doms, &d);
	return 0;
}

/* vi_att_drop() - forget endpoint @ep's attachment record (if any). */
void vi_att_drop(struct viommu_virtio_iommu *vi, uint32_t ep)
{
	struct vatt *a = vi_att_find(vi, ep);
	uint32_t dom;

	if (!a)
		return;
	dom = a->dom;
	vatts_remove(&vi->atts, ep);
	vt_ep_left(vi, ep, dom); /* its PASID-table PASIDs go too (V33) */
	vi_dom_put(vi, dom);
}

/*
 * vi_att_sync() - drop endpoint @id's record if the core no longer agrees
 * with it (the embedder destroyed the endpoint, @ep == NULL, or attached
 * it elsewhere itself).
 */
void vi_att_sync(struct viommu_virtio_iommu *vi, uint32_t id,
		 struct viommu_endpoint *ep)
{
	struct vatt *a = vi_att_find(vi, id);
	struct viommu_domain *cur = NULL;
	struct vdom *d;

	if (!a)
		return;
	d = vi_dom_find(vi, a->dom);
	if (ep && d && !viommu_endpoint_domain(ep, VIOMMU_NO_PASID, &cur) &&
	    cur == d->dom)
		return;
	rl_info(&vi->rl, &vi->log, "virtio-iommu: endpoint %#x changed behind the "
		 "device's back: its attachment to domain %u is forgotten",
		 id, a->dom);
	vi_att_drop(vi, id);
}

/*
 * ensure_msi() - give @ep the x86 MSI window if it has no MSI region and
 * no region of its own overlaps the window.
 */
static void ensure_msi(struct viommu_virtio_iommu *vi,
		       struct viommu_endpoint *ep)
{
	unsigned int i, n = 0;
	int ret;

	if (!vi->msi_region)
		return;
	if (viommu_endpoint_get_resv(ep, vi->resv, vi->nresv, &n))
		return;
	for (i = 0; i < MIN(n, vi->nresv); i++)
		if (vi->resv[i].type == VIOMMU_RESV_MSI ||
		    ranges_overlap(vi->resv[i].start, vi->resv[i].last,
				   VIOMMU_X86_MSI_START, VIOMMU_X86_MSI_LAST))
			return; /* has one, or a region is in the way */
	ret = viommu_endpoint_add_resv(ep, VIOMMU_X86_MSI_START,
				       VIOMMU_X86_MSI_LAST, VIOMMU_RESV_MSI);
	if (ret)
		rl_info(&vi->rl, &vi->log, "virtio-iommu: endpoint %#x: x86 MSI "
			 "window not added (%d: overlaps a region or a "
			 "mapping, or limit)", viommu_endpoint_id(ep), ret);
}

/* vi_teardown() - detach every endpoint and destroy every domain. */
void vi_teardown(struct viommu_virtio_iommu *vi)
{
	struct viommu_domain *cur;
	struct viommu_endpoint *ep;
	struct vatt *a;
	struct vdom *d;
	uint32_t i;

	vt_teardown(vi); /* PASID bindings first: they pin domains */
	for (i = 0; i < vatts_count(&vi->atts); i++) {
		a = vatts_at(&vi->atts, i);
		d = vi_dom_find(vi, a->dom);
		cur = NULL;
		if (viommu_endpoint_lookup(vi->ctx, a->ep, &ep) ||
		    viommu_endpoint_domain(ep, VIOMMU_NO_PASID, &cur) ||
		    !d || cur != d->dom)
			continue;
		viommu_endpoint_detach(ep, VIOMMU_NO_PASID);
	}
	vatts_clear(&vi->atts);
	for (i = 0; i < vdoms_count(&vi->doms); i++) {
		d = vdoms_at(&vi->doms, i);
		if (d->tab ? vt_dom_free(vi, d->tab) != 0 :
		    !d->bypass && viommu_domain_destroy(d->dom))
			rl_err(&vi->rl, &vi->log, "virtio-iommu: domain %u: core "
				"refused to destroy it on reset", d->id);
	}
	vdoms_clear(&vi->doms);
}

/* vi_dom_add() - insert domain record @d (iommu_table.c's table domains). */
int vi_dom_add(struct viommu_virtio_iommu *vi, const struct vdom *d)
{
	int ret = vdoms_reserve(&vi->doms, &vi->alloc);

	if (ret)
		return ret;
	vdoms_insert(&vi->doms, d);
	return 0;
}

/* vi_att_reserve() - room for one more attachment record. */
int vi_att_reserve(struct viommu_virtio_iommu *vi)
{
	return vatts_reserve(&vi->atts, &vi->alloc);
}

/*
 * vi_att_set() - record endpoint @ep in domain @id (room reserved unless
 * it has a record), putting its previous domain: D12, as if detached first.
 */
void vi_att_set(struct viommu_virtio_iommu *vi, uint32_t ep, uint32_t id)
{
	struct vatt rec = { .ep = ep, .dom = id };
	struct vatt *cur = vi_att_find(vi, ep);
	uint32_t old;

	if (!cur) {
		vatts_insert(&vi->atts, &rec);
		return;
	}
	old = cur->dom;
	cur->dom = id;
	vt_ep_left(vi, ep, old);
	vi_dom_put(vi, old);
}

/* vi_dom_endpoint() - an endpoint attached to @dom (the first found). */
bool vi_dom_endpoint(struct viommu_virtio_iommu *vi, uint32_t dom,
		     uint32_t *ep)
{
	for (uint32_t i = 0; i < vatts_count(&vi->atts); i++) {
		const struct vatt *a = vatts_at(&vi->atts, i);

		if (a->dom == dom) {
			*ep = a->ep;
			return true;
		}
	}
	return false;
}

/* vi_lookup_ep() - the core endpoint @id (lazily given its MSI region). */
struct viommu_endpoint *vi_lookup_ep(struct viommu_virtio_iommu *vi,
				     uint32_t id)
{
	struct viommu_endpoint *ep;

	if (viommu_endpoint_lookup(vi->ctx, id, &ep)) {
		vi_att_sync(vi, id, NULL);
		return NULL;
	}
	ensure_msi(vi, ep);
	return ep;
}
