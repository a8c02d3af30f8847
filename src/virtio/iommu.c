/*
 * iommu.c - the virtio-iommu device model (VIRTIO 1.3 §5.13, device ID 23)
 * on the translation core.  docs/VIRTIO-IOMMU.md lists the spec's device
 * rules D1-D37 and how each is met here.
 *
 * Concepts
 *  - The device embeds the device-side virtio core (virtio_dev.h): feature
 *    negotiation, status and queues are handled there, and this file only
 *    provides the hooks of struct vdev_ops.  Queue 0 is the request queue,
 *    queue 1 the event queue.
 *  - Requests.  On a request-queue notification every available chain is
 *    popped in ring order and answered before the next one is looked at;
 *    the batch ends with one __vdev_queue_done().  A chain is parsed from
 *    its lengths alone, never trusting the guest: the readable part holds
 *    the head and body, the writable part is exactly the 4-byte tail (PROBE:
 *    probe_size bytes of properties, then the tail).  A chain whose tail
 *    cannot be located (D37), an unknown type (D5) and a PROBE without the
 *    feature (D30) are returned unwritten with used length 0; everything
 *    else gets a full reply whose used length is the whole writable part
 *    (the Linux driver needs that).  Each refused request gets one WARN
 *    line naming its rule.
 *  - Domains.  A virtio domain ID names either a core PAGING domain (tag =
 *    the ID), created on the first ATTACH and destroyed when its last
 *    endpoint leaves (D17), or a bypass domain (ATTACH_F_BYPASS) whose
 *    endpoints are attached to the core's IDENTITY domain.  Two sorted
 *    arrays keep the device's view: domain ID -> {core domain, bypass,
 *    endpoint count} and endpoint ID -> domain ID (base/sarr.h).  Both are
 *    bounded (core max_domains + max_endpoints, and max_endpoints).  An endpoint that the
 *    embedder destroyed or re-attached behind the device's back is noticed
 *    at its next ATTACH/DETACH and its stale record dropped.
 *  - The x86 MSI window 0xfee00000-0xfeefffff is added (unless
 *    no_msi_region) as a core MSI reserved region to an endpoint the first
 *    time the guest names it in ATTACH or PROBE, if the endpoint has no MSI
 *    region yet: the core offers no way to enumerate endpoints at creation.
 *  - Bypass.  The effective state for unattached endpoints is config.bypass
 *    when BYPASS_CONFIG is offered (whether or not the driver accepted it,
 *    as the spec says), else off (legacy BYPASS is never offered); it is
 *    pushed into the core with viommu_ctx_set_bypass().  `bypass` survives
 *    device reset; system reset restores boot_bypass.
 *  - Events.  The device is the context's fault callback: a core fault
 *    becomes a virtio fault report queued in a bounded backlog (oldest
 *    dropped when full) and written into posted event buffers, one report
 *    per buffer, when the driver has posted some (on an event-queue
 *    notification, when a fault arrives, and at the end of every hook).
 *    That part lives in iommu_event.c; iommu_internal.h holds what the two
 *    files share.
 *
 * Locks.  The device lock (dev.lock) is held by the virtio core around
 * every hook; under it the device calls into the core, which takes the
 * context lock and then a domain lock: the order is device -> ctx ->
 * domain.  The backlog has its own leaf lock (ev_lock), never held while
 * calling anything.  The fault callback runs with no core lock held: it
 * queues the report under ev_lock, then takes the device lock to deliver it
 * - unless the faulting thread is itself inside one of this device's hooks,
 * in which case the hook delivers the report on its way out.  The device
 * never calls translate, so none of its core calls can re-enter the fault
 * callback.  The transport's interrupt callback must not make endpoints
 * translate (virtio.h): outside a hook it runs with dev.lock held, and a
 * fault reported from it would wait for that lock.
 */
#include <viommu/virtio_iommu.h>

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "virtio/iommu_internal.h"
#include "virtio/iommu_wire.h"
#include "virtio/virtio_dev.h"

/* One request being handled. */
struct req {
	const struct vq_elem *e;
	uint8_t type;      /* head.type; 0 when the head is unreadable */
	uint8_t status;    /* reply status (for stats/trace if unwritten) */
	bool unwritten;    /* return the chain with used length 0 */
	bool parsed;       /* body read into u */
	bool props;        /* probe_buf holds the properties */
	bool table;        /* a handover request (iommu_table.c) */
	const char *rule;  /* why it was refused */
	/* last: handle_one() zeroes only what comes before it */
	union {
		struct vi_head head;
		struct vi_req_attach attach;
		struct vi_req_detach detach;
		struct vi_req_map map;
		struct vi_req_unmap unmap;
		struct vi_req_probe probe;
	} u;
};

static const uint8_t req_size[VIOMMU_VI_REQ_TYPES] = {
	[VIOMMU_VI_REQ_ATTACH] = sizeof(struct vi_req_attach),
	[VIOMMU_VI_REQ_DETACH] = sizeof(struct vi_req_detach),
	[VIOMMU_VI_REQ_MAP] = sizeof(struct vi_req_map),
	[VIOMMU_VI_REQ_UNMAP] = sizeof(struct vi_req_unmap),
	[VIOMMU_VI_REQ_PROBE] = sizeof(struct vi_req_probe),
};

static const char *const req_names[VIOMMU_VI_REQ_TYPES] = {
	"request", "ATTACH", "DETACH", "MAP", "UNMAP", "PROBE",
};

static const char *const status_names[VIOMMU_VI_S_COUNT] = {
	"OK", "IOERR", "UNSUPP", "DEVERR", "INVAL",
	"RANGE", "NOENT", "FAULT", "NOMEM",
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */

/* has() - whether device feature @bit was negotiated. */
static bool has(const struct viommu_virtio_iommu *vi, unsigned int bit)
{
	return __vdev_has(&vi->dev, bit);
}

/* offered() - whether the device offers feature @bit. */
static bool offered(const struct viommu_virtio_iommu *vi, unsigned int bit)
{
	return (vi->dev.host_features >> bit) & 1;
}

/* apply_bypass() - push the effective bypass state into the core. */
static void apply_bypass(struct viommu_virtio_iommu *vi)
{
	viommu_ctx_set_bypass(vi->ctx, vi->bypass_offered && vi->bypass);
}

/* ------------------------------------------------------------------ */
/* Domains and attachments                                            */

/* dom_find() - the virtio domain @id, or NULL. */
static struct vdom *dom_find(struct viommu_virtio_iommu *vi, uint32_t id)
{
	return vdoms_find(&vi->doms, id);
}

/* att_find() - the attachment record of endpoint @ep, or NULL. */
static struct vatt *att_find(struct viommu_virtio_iommu *vi, uint32_t ep)
{
	return vatts_find(&vi->atts, ep);
}

/*
 * dom_free() - destroy virtio domain @id and its core domain (D17).  A
 * core refusal is an internal error not tied to a request: D36.
 */
static void dom_free(struct viommu_virtio_iommu *vi, uint32_t id)
{
	struct vdom *d = dom_find(vi, id);
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

/* dom_put() - an endpoint left domain @id: destroy it when empty. */
static void dom_put(struct viommu_virtio_iommu *vi, uint32_t id)
{
	struct vdom *d = dom_find(vi, id);

	if (d && d->nep && --d->nep == 0)
		dom_free(vi, id);
}

/*
 * dom_create() - create virtio domain @id: a core PAGING domain tagged
 * with @id, or (bypass) a reference to the core IDENTITY domain.
 * Return: 0; -ENOSPC (table full); -ENOMEM (core limit or allocation);
 * -EIO.
 */
static int dom_create(struct viommu_virtio_iommu *vi, uint32_t id,
		      bool bypass)
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
		return ret == -ENOMEM ? -ENOMEM : -EIO;
	vdoms_insert(&vi->doms, &d);
	return 0;
}

/* att_drop() - forget endpoint @ep's attachment record (if any). */
static void att_drop(struct viommu_virtio_iommu *vi, uint32_t ep)
{
	struct vatt *a = att_find(vi, ep);
	uint32_t dom;

	if (!a)
		return;
	dom = a->dom;
	vatts_remove(&vi->atts, ep);
	vt_ep_left(vi, ep, dom); /* its PASID-table PASIDs go too (V33) */
	dom_put(vi, dom);
}

/*
 * att_sync() - drop endpoint @id's record if the core no longer agrees
 * with it (the embedder destroyed the endpoint, @ep == NULL, or attached
 * it elsewhere itself).
 */
static void att_sync(struct viommu_virtio_iommu *vi, uint32_t id,
		     struct viommu_endpoint *ep)
{
	struct vatt *a = att_find(vi, id);
	struct viommu_domain *cur = NULL;
	struct vdom *d;

	if (!a)
		return;
	d = dom_find(vi, a->dom);
	if (ep && d && !viommu_endpoint_domain(ep, VIOMMU_NO_PASID, &cur) &&
	    cur == d->dom)
		return;
	rl_info(&vi->rl, &vi->log, "virtio-iommu: endpoint %#x changed behind the "
		 "device's back: its attachment to domain %u is forgotten",
		 id, a->dom);
	att_drop(vi, id);
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

/* teardown() - detach every endpoint and destroy every domain. */
static void teardown(struct viommu_virtio_iommu *vi)
{
	struct viommu_domain *cur;
	struct viommu_endpoint *ep;
	struct vatt *a;
	struct vdom *d;
	uint32_t i;

	vt_teardown(vi); /* PASID bindings first: they pin domains */
	for (i = 0; i < vatts_count(&vi->atts); i++) {
		a = vatts_at(&vi->atts, i);
		d = dom_find(vi, a->dom);
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

/* Wrappers for iommu_table.c (iommu_internal.h); device lock held. */
struct vdom *vi_dom_find(struct viommu_virtio_iommu *vi, uint32_t id)
{
	return dom_find(vi, id);
}

struct vatt *vi_att_find(struct viommu_virtio_iommu *vi, uint32_t ep)
{
	return att_find(vi, ep);
}

int vi_dom_add(struct viommu_virtio_iommu *vi, const struct vdom *d)
{
	int ret = vdoms_reserve(&vi->doms, &vi->alloc);

	if (ret)
		return ret;
	vdoms_insert(&vi->doms, d);
	return 0;
}

void vi_dom_put(struct viommu_virtio_iommu *vi, uint32_t id)
{
	dom_put(vi, id);
}

void vi_dom_free(struct viommu_virtio_iommu *vi, uint32_t id)
{
	dom_free(vi, id);
}

int vi_att_reserve(struct viommu_virtio_iommu *vi)
{
	return vatts_reserve(&vi->atts, &vi->alloc);
}

void vi_att_set(struct viommu_virtio_iommu *vi, uint32_t ep, uint32_t id)
{
	struct vatt rec = { .ep = ep, .dom = id };
	struct vatt *cur = att_find(vi, ep);
	uint32_t old;

	if (!cur) {
		vatts_insert(&vi->atts, &rec);
		return;
	}
	old = cur->dom;
	cur->dom = id;
	vt_ep_left(vi, ep, old);
	dom_put(vi, old);
}

void vi_att_sync(struct viommu_virtio_iommu *vi, uint32_t id,
		 struct viommu_endpoint *ep)
{
	att_sync(vi, id, ep);
}

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

/* ------------------------------------------------------------------ */
/* Requests                                                           */

/* refuse() - record why a request is refused and return @status. */
static uint8_t refuse(struct req *r, uint8_t status, const char *rule)
{
	r->rule = rule;
	return status;
}

/* core_status() - status for a core errno of an attach or map. */
static uint8_t core_status(struct req *r, int err)
{
	switch (err) {
	case -ENOSPC:
		return refuse(r, VIOMMU_VI_S_NOMEM, "limit reached");
	case -ENOMEM:
		return refuse(r, VIOMMU_VI_S_NOMEM, "core limit reached");
	case -EINVAL:
		return refuse(r, VIOMMU_VI_S_INVAL, "core refused it");
	default:
		return refuse(r, VIOMMU_VI_S_DEVERR, "internal error");
	}
}

/* rsvd_set() - whether any of @n bytes at @p is non-zero. */
static bool rsvd_set(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return true;
	return false;
}

/* lookup_ep() - the core endpoint @id (lazily given its MSI region). */
static struct viommu_endpoint *lookup_ep(struct viommu_virtio_iommu *vi,
					 uint32_t id)
{
	struct viommu_endpoint *ep;

	if (viommu_endpoint_lookup(vi->ctx, id, &ep)) {
		att_sync(vi, id, NULL);
		return NULL;
	}
	ensure_msi(vi, ep);
	return ep;
}

struct viommu_endpoint *vi_lookup_ep(struct viommu_virtio_iommu *vi,
				     uint32_t id)
{
	return lookup_ep(vi, id);
}

/*
 * attach_new() - attach @ep (record @cur, or none) to virtio domain @id,
 * creating the domain if needed; nothing changes on failure (D12, D14).
 */
static uint8_t attach_new(struct viommu_virtio_iommu *vi, struct req *r,
			  struct viommu_endpoint *ep, uint32_t id, bool bypass)
{
	struct vatt *cur = att_find(vi, viommu_endpoint_id(ep));
	struct vatt rec = { .ep = viommu_endpoint_id(ep), .dom = id };
	bool created = false;
	struct vdom *d;
	uint32_t old;
	int ret;

	if (!cur && vatts_reserve(&vi->atts, &vi->alloc))
		return refuse(r, VIOMMU_VI_S_NOMEM, "too many endpoints");
	if (!dom_find(vi, id)) {
		ret = dom_create(vi, id, bypass);
		if (ret)
			return core_status(r, ret);
		created = true;
	}
	d = dom_find(vi, id);
	ret = viommu_endpoint_attach(ep, VIOMMU_NO_PASID, d->dom);
	if (ret) {
		if (created)
			dom_free(vi, id);
		if (ret == -EINVAL) /* the endpoint's PROBE properties */
			return refuse(r, VIOMMU_VI_S_UNSUPP, "D13: a mapping "
				      "of the domain overlaps a reserved "
				      "region of the endpoint");
		return core_status(r, ret);
	}
	d->nep++;
	cur = att_find(vi, rec.ep);
	if (!cur) {
		vatts_insert(&vi->atts, &rec);
		return VIOMMU_VI_S_OK;
	}
	old = cur->dom;
	cur->dom = id;
	vt_ep_left(vi, rec.ep, old);
	dom_put(vi, old); /* D12: as if detached first; D17 */
	return VIOMMU_VI_S_OK;
}

/* do_attach() - ATTACH (D8-D14). */
static uint8_t do_attach(struct viommu_virtio_iommu *vi, struct req *r)
{
	const struct vi_req_attach *q = &r->u.attach;
	uint32_t dom = le32toh(q->domain), id = le32toh(q->endpoint);
	uint32_t flags = le32toh(q->flags), known = 0;
	bool bypass = flags & VI_ATTACH_F_BYPASS;
	struct viommu_endpoint *ep;
	struct vatt *cur;
	struct vdom *d;

	if (has(vi, VIOMMU_VIRTIO_IOMMU_F_BYPASS_CONFIG))
		known = VI_ATTACH_F_BYPASS;
	if (rsvd_set(q->rsvd, sizeof(q->rsvd)))
		return refuse(r, VIOMMU_VI_S_INVAL, "D8: reserved bytes set");
	if (flags & ~known)
		return refuse(r, VIOMMU_VI_S_INVAL, "D8: unknown flag");
	if (dom < vi->dom_start || dom > vi->dom_end)
		return refuse(r, VIOMMU_VI_S_RANGE,
			      "domain outside domain_range");
	ep = lookup_ep(vi, id);
	if (!ep)
		return refuse(r, VIOMMU_VI_S_NOENT, "D9: no such endpoint");
	att_sync(vi, id, ep);
	d = dom_find(vi, dom);
	if (d && d->tab)
		return refuse(r, VIOMMU_VI_S_INVAL, "V13: ATTACH to a "
			      "table-mode domain (use ATTACH_TABLE)");
	if (d && d->bypass != bypass)
		return refuse(r, VIOMMU_VI_S_INVAL,
			      "D11: bypass flag inconsistent with the domain");
	cur = att_find(vi, id);
	if (cur && cur->dom == dom)
		return VIOMMU_VI_S_OK; /* already there */
	return attach_new(vi, r, ep, dom, bypass);
}

/* do_detach() - DETACH (D15-D17). */
static uint8_t do_detach(struct viommu_virtio_iommu *vi, struct req *r)
{
	const struct vi_req_detach *q = &r->u.detach;
	uint32_t dom = le32toh(q->domain), id = le32toh(q->endpoint);
	struct viommu_endpoint *ep;
	struct vatt *cur;
	int ret;

	/* D15: reserved bytes are ignored. */
	ep = lookup_ep(vi, id);
	if (!ep)
		return refuse(r, VIOMMU_VI_S_NOENT, "D15: no such endpoint");
	att_sync(vi, id, ep);
	cur = att_find(vi, id);
	if (!cur || cur->dom != dom)
		return refuse(r, VIOMMU_VI_S_INVAL,
			      "D15: endpoint not attached to that domain");
	ret = viommu_endpoint_detach(ep, VIOMMU_NO_PASID);
	if (ret && ret != -ENOENT)
		return core_status(r, ret);
	att_drop(vi, id); /* D16, D17 */
	return VIOMMU_VI_S_OK;
}

/* map_prot() - core permissions for virtio MAP flags (D22). */
static uint32_t map_prot(uint32_t flags)
{
	uint32_t prot = 0;

	if (flags & VI_MAP_F_READ)
		prot |= VIOMMU_READ;
	if (flags & VI_MAP_F_WRITE)
		prot |= VIOMMU_WRITE;
	if (flags & VI_MAP_F_MMIO)
		prot |= VIOMMU_MAP_MMIO;
	return prot;
}

/* map_check() - the MAP checks that need no domain (D18, D20, D23). */
static uint8_t map_check(struct viommu_virtio_iommu *vi, struct req *r,
			 uint64_t va, uint64_t last, uint64_t pa,
			 uint32_t flags)
{
	uint32_t known = VI_MAP_F_READ | VI_MAP_F_WRITE;

	if (has(vi, VIOMMU_VIRTIO_IOMMU_F_MMIO))
		known |= VI_MAP_F_MMIO;
	if (flags & ~known)
		return refuse(r, VIOMMU_VI_S_INVAL, flags & VI_MAP_F_MMIO &&
			      !(flags & ~(known | VI_MAP_F_MMIO)) ?
			      "D20: MMIO flag without the MMIO feature" :
			      "D20: unknown flag");
	if (last < va)
		return refuse(r, VIOMMU_VI_S_INVAL, "virt_end < virt_start");
	if ((va & vi->gmask) || (pa & vi->gmask) || ((last + 1) & vi->gmask))
		return refuse(r, VIOMMU_VI_S_RANGE,
			      "D18: not aligned on the granule");
	if (pa + (last - va) < pa)
		return refuse(r, VIOMMU_VI_S_RANGE,
			      "physical range wraps past 2^64");
	if (va < vi->in_start || last > vi->in_end)
		return refuse(r, VIOMMU_VI_S_RANGE,
			      "D23: outside input_range");
	return VIOMMU_VI_S_OK;
}

/* do_map() - MAP (D18-D24). */
static uint8_t do_map(struct viommu_virtio_iommu *vi, struct req *r)
{
	const struct vi_req_map *q = &r->u.map;
	uint64_t va = le64toh(q->virt_start), last = le64toh(q->virt_end);
	uint64_t pa = le64toh(q->phys_start);
	uint32_t flags = le32toh(q->flags);
	struct vdom *d;
	uint8_t s;
	int ret;

	s = map_check(vi, r, va, last, pa, flags);
	if (s != VIOMMU_VI_S_OK)
		return s;
	d = dom_find(vi, le32toh(q->domain));
	if (!d)
		return refuse(r, VIOMMU_VI_S_NOENT, "D21: no such domain");
	if (d->bypass)
		return refuse(r, VIOMMU_VI_S_INVAL, "D21: bypass domain");
	if (d->tab && !vt_map_target(d->tab))
		return refuse(r, VIOMMU_VI_S_INVAL, "V15: table-mode domain "
			      "without a MAP stage 2");
	ret = viommu_domain_map(d->tab ? vt_map_target(d->tab) : d->dom, va,
				last, pa, map_prot(flags));
	switch (ret) {
	case 0:
		return VIOMMU_VI_S_OK;
	case -EEXIST:
		return refuse(r, VIOMMU_VI_S_INVAL,
			      "D19: overlaps an existing mapping");
	case -EADDRINUSE:
		return refuse(r, VIOMMU_VI_S_INVAL,
			      "D24: overlaps a reserved region");
	default:
		return core_status(r, ret);
	}
}

/* do_unmap() - UNMAP (D25-D28). */
static uint8_t do_unmap(struct viommu_virtio_iommu *vi, struct req *r)
{
	const struct vi_req_unmap *q = &r->u.unmap;
	uint64_t va = le64toh(q->virt_start), last = le64toh(q->virt_end);
	struct vdom *d;
	int ret;

	if (rsvd_set(q->rsvd, sizeof(q->rsvd)))
		return refuse(r, VIOMMU_VI_S_INVAL, "D25: reserved bytes set");
	if (last < va)
		return refuse(r, VIOMMU_VI_S_INVAL, "virt_end < virt_start");
	d = dom_find(vi, le32toh(q->domain));
	if (!d)
		return refuse(r, VIOMMU_VI_S_NOENT, "D26: no such domain");
	if (d->bypass)
		return refuse(r, VIOMMU_VI_S_INVAL, "D26: bypass domain");
	if (d->tab && !vt_map_target(d->tab))
		return refuse(r, VIOMMU_VI_S_INVAL, "V15: table-mode domain "
			      "without a MAP stage 2");
	ret = viommu_domain_unmap(d->tab ? vt_map_target(d->tab) : d->dom, va,
				  last, NULL);
	switch (ret) {
	case 0:
	case -ENOENT: /* D28: nothing (or only gaps) in the range */
		return VIOMMU_VI_S_OK;
	case -ERANGE:
		return refuse(r, VIOMMU_VI_S_RANGE,
			      "D27: would split a mapping, nothing removed");
	case -EINVAL:
		return refuse(r, VIOMMU_VI_S_INVAL, "core refused it");
	default:
		return refuse(r, VIOMMU_VI_S_DEVERR, "internal error");
	}
}

/*
 * probe_fill() - write @ep's RESV_MEM properties into probe_buf (D31,
 * D33, D34: the core keeps regions disjoint with at most one MSI).
 */
static void probe_fill(struct viommu_virtio_iommu *vi,
		       struct viommu_endpoint *ep)
{
	struct vi_prop_resv_mem p;
	unsigned int i, n = 0;

	memset(vi->probe_buf, 0, vi->probe_size);
	if (viommu_endpoint_get_resv(ep, vi->resv, vi->nresv, &n))
		n = 0;
	for (i = 0; i < MIN(n, vi->nresv); i++) {
		memset(&p, 0, sizeof(p));
		p.head.type = htole16(VI_PROBE_T_RESV_MEM);
		p.head.length = htole16(sizeof(p) - sizeof(p.head));
		p.subtype = vi->resv[i].type == VIOMMU_RESV_MSI ?
				    VI_RESV_MEM_T_MSI :
				    VI_RESV_MEM_T_RESERVED;
		p.start = htole64(vi->resv[i].start);
		p.end = htole64(vi->resv[i].last);
		memcpy(vi->probe_buf + (size_t)i * sizeof(p), &p, sizeof(p));
	}
	/* V2: the handover properties follow, when negotiated. */
	i = MIN(n, vi->nresv) * (unsigned int)sizeof(p);
	vt_probe_props(vi, vi->probe_buf + i, vi->probe_size - i);
	if (n > vi->nresv)
		rl_warn(&vi->rl, &vi->log, "virtio-iommu: endpoint %#x has %u reserved "
			 "regions, probe_size %u holds %u: the rest are not "
			 "reported (maps over them still fail)",
			 viommu_endpoint_id(ep), n, vi->probe_size, vi->nresv);
}

/* do_probe() - PROBE (D29-D34); the buffer shape was checked (D30, D32). */
static uint8_t do_probe(struct viommu_virtio_iommu *vi, struct req *r)
{
	struct viommu_endpoint *ep;

	/* D29: reserved bytes are ignored. */
	ep = lookup_ep(vi, le32toh(r->u.probe.endpoint));
	if (!ep)
		return refuse(r, VIOMMU_VI_S_NOENT, "D29: no such endpoint");
	probe_fill(vi, ep);
	r->props = true;
	return VIOMMU_VI_S_OK;
}

/* dispatch() - run a parsed request.  Return: the status. */
static uint8_t dispatch(struct viommu_virtio_iommu *vi, struct req *r)
{
	if (r->table)
		return vt_request(vi, &vi->dev.vqs[VI_RQ], r->e, r->type,
				  &r->rule);
	switch (r->type) {
	case VIOMMU_VI_REQ_ATTACH:
		return do_attach(vi, r);
	case VIOMMU_VI_REQ_DETACH:
		return do_detach(vi, r);
	case VIOMMU_VI_REQ_MAP:
		return do_map(vi, r);
	case VIOMMU_VI_REQ_UNMAP:
		return do_unmap(vi, r);
	default:
		return do_probe(vi, r);
	}
}

/* unwritten() - the chain goes back with used length 0. */
static bool unwritten(struct req *r, uint8_t stat, const char *rule)
{
	r->unwritten = true;
	r->status = stat;
	r->rule = rule;
	return false;
}

/* expected_wlen() - size of the writable part of request type @t. */
static uint32_t expected_wlen(const struct viommu_virtio_iommu *vi,
			      uint8_t t)
{
	uint32_t n = sizeof(struct vi_tail);

	return t == VIOMMU_VI_REQ_PROBE ? n + vi->probe_size : n;
}

/*
 * parse() - check the chain's shape and read the request (D5, D30, D32,
 * D37).  Return: true when the request should be executed; otherwise
 * r->unwritten or r->status says what to answer.
 */
static bool parse(struct viommu_virtio_iommu *vi, struct vq *vq,
		  struct req *r)
{
	const struct vq_elem *e = r->e;
	uint32_t want, got = MIN(e->read_len, (uint32_t)sizeof(r->u));

	/* Head and body in one read; if that fails, the head alone. */
	if (e->read_len < sizeof(struct vi_head))
		return unwritten(r, VIOMMU_VI_S_IOERR,
				 "D37: no readable head, request unparsable");
	if (vq_read(vq, e, 0, &r->u, got)) {
		got = 0;
		if (vq_read(vq, e, 0, &r->u.head, sizeof(r->u.head)))
			return unwritten(r, VIOMMU_VI_S_IOERR, "D37: no "
					 "readable head, request unparsable");
	}
	r->type = r->u.head.type; /* D6: head.rsvd is ignored */
	if (vt_type(vi, r->type)) {
		/* V5: handover requests end with the 4-byte tail. */
		if (e->write_len != sizeof(struct vi_tail))
			return unwritten(r, VIOMMU_VI_S_IOERR, "D37: writable "
					 "part is not the 4-byte tail");
		r->table = true;
		return true;
	}
	if (r->type == 0 || r->type >= VIOMMU_VI_REQ_TYPES)
		return unwritten(r, VIOMMU_VI_S_IOERR, "D5: unknown type");
	if (r->type == VIOMMU_VI_REQ_PROBE &&
	    !has(vi, VIOMMU_VIRTIO_IOMMU_F_PROBE))
		return unwritten(r, VIOMMU_VI_S_UNSUPP,
				 "D30: PROBE not negotiated");
	want = expected_wlen(vi, r->type);
	if (e->write_len < sizeof(struct vi_tail))
		return unwritten(r, VIOMMU_VI_S_IOERR,
				 "D37: no room for the tail");
	if (e->write_len > want)
		return unwritten(r, VIOMMU_VI_S_IOERR,
				 "D37: writable part longer than the reply, "
				 "tail position ambiguous");
	if (e->write_len < want) {
		r->status = refuse(r, VIOMMU_VI_S_INVAL, "D32: properties "
				   "buffer smaller than probe_size");
		return false;
	}
	if (e->read_len < req_size[r->type]) {
		r->status = refuse(r, VIOMMU_VI_S_INVAL,
				   "readable part shorter than the request "
				   "(tail found)");
		return false;
	}
	if (got < req_size[r->type] &&
	    vq_read(vq, e, 0, &r->u, req_size[r->type]))
		return unwritten(r, VIOMMU_VI_S_IOERR,
				 "D37: request body not readable");
	r->parsed = true;
	return true;
}

/*
 * reply() - write the reply: properties (PROBE) or zeroes before the tail,
 * then the tail with zeroed reserved bytes (D6).  Return: the used length
 * (the whole writable part), or 0 if guest memory refused the write.
 */
static uint32_t reply(struct viommu_virtio_iommu *vi, struct vq *vq,
		      struct req *r)
{
	uint32_t wl = r->e->write_len;
	struct vi_tail t = { .status = r->status };
	int ret;

	if (wl == sizeof(t)) {
		ret = vq_write(vq, r->e, 0, &t, sizeof(t));
	} else {
		/* PROBE only: wl <= probe_size + tail (parse()). */
		if (!r->props)
			memset(vi->probe_buf, 0, wl - sizeof(t));
		memcpy(vi->probe_buf + wl - sizeof(t), &t, sizeof(t));
		ret = vq_write(vq, r->e, 0, vi->probe_buf, wl);
	}
	if (!ret)
		return wl;
	r->unwritten = true;
	r->rule = "reply buffer not writable";
	return 0;
}

/* describe() - one line naming request @r, for logs and traces. */
static void describe(const struct req *r, char *buf, size_t size)
{
	const char *name = req_names[r->type < VIOMMU_VI_REQ_TYPES ?
				     r->type : 0];

	if (r->table) {
		snprintf(buf, size, "%s", r->type == VIOMMU_VI_REQ_ATTACH_TABLE ?
			 "ATTACH_TABLE" : r->type == VIOMMU_VI_REQ_INVALIDATE ?
			 "INVALIDATE" : "PAGE_RESP");
		return;
	}
	if (!r->parsed) {
		snprintf(buf, size, "%s type %u (readable %u, writable %u)",
			 name, r->type, r->e->read_len, r->e->write_len);
		return;
	}
	switch (r->type) {
	case VIOMMU_VI_REQ_ATTACH:
		snprintf(buf, size, "ATTACH domain %u endpoint %#x flags %#x",
			 le32toh(r->u.attach.domain),
			 le32toh(r->u.attach.endpoint),
			 le32toh(r->u.attach.flags));
		break;
	case VIOMMU_VI_REQ_DETACH:
		snprintf(buf, size, "DETACH domain %u endpoint %#x",
			 le32toh(r->u.detach.domain),
			 le32toh(r->u.detach.endpoint));
		break;
	case VIOMMU_VI_REQ_MAP:
		snprintf(buf, size, "MAP domain %u [%#llx-%#llx] -> %#llx "
			 "flags %#x", le32toh(r->u.map.domain),
			 (unsigned long long)le64toh(r->u.map.virt_start),
			 (unsigned long long)le64toh(r->u.map.virt_end),
			 (unsigned long long)le64toh(r->u.map.phys_start),
			 le32toh(r->u.map.flags));
		break;
	case VIOMMU_VI_REQ_UNMAP:
		snprintf(buf, size, "UNMAP domain %u [%#llx-%#llx]",
			 le32toh(r->u.unmap.domain),
			 (unsigned long long)le64toh(r->u.unmap.virt_start),
			 (unsigned long long)le64toh(r->u.unmap.virt_end));
		break;
	default:
		snprintf(buf, size, "PROBE endpoint %#x",
			 le32toh(r->u.probe.endpoint));
		break;
	}
}

/*
 * trace_req() - the typed vi_request event: the request's domain,
 * endpoint and range where it has them (0 otherwise).
 */
static void trace_req(struct viommu_virtio_iommu *vi, const struct req *r)
{
	uint32_t dom = 0, ep = 0;
	uint64_t start = 0, end = 0;

	if (r->parsed && !r->table) {
		switch (r->type) {
		case VIOMMU_VI_REQ_ATTACH:
			dom = le32toh(r->u.attach.domain);
			ep = le32toh(r->u.attach.endpoint);
			break;
		case VIOMMU_VI_REQ_DETACH:
			dom = le32toh(r->u.detach.domain);
			ep = le32toh(r->u.detach.endpoint);
			break;
		case VIOMMU_VI_REQ_MAP:
			dom = le32toh(r->u.map.domain);
			start = le64toh(r->u.map.virt_start);
			end = le64toh(r->u.map.virt_end);
			break;
		case VIOMMU_VI_REQ_UNMAP:
			dom = le32toh(r->u.unmap.domain);
			start = le64toh(r->u.unmap.virt_start);
			end = le64toh(r->u.unmap.virt_end);
			break;
		default:
			ep = le32toh(r->u.probe.endpoint);
			break;
		}
	}
	trace_vi_request(&vi->tr, r->type, r->unwritten ? 0xff : r->status,
			 dom, ep, start, end);
}

/* account() - statistics, the refusal log line and the trace line. */
static void account(struct viommu_virtio_iommu *vi, const struct req *r)
{
	unsigned int t = r->type < VIOMMU_VI_REQ_TYPES ? r->type : 0;
	bool refused = r->unwritten || r->status != VIOMMU_VI_S_OK;
	bool warn = refused && vi->log.fn && vi->log.level >= VIOMMU_LOG_WARN;
	char what[160], line[320];
	const char *res;

	if (!r->table) /* handover requests: viommu_virtio_iommu_table_stats */
		vi->st.requests[t][r->status]++;
	if (trace_on(&vi->tr, VIOMMU_TRACE_VI_REQUEST))
		trace_req(vi, r);
	if (!warn && !vi->trace)
		return;
	describe(r, what, sizeof(what));
	res = r->unwritten ? "returned unwritten (used length 0)" :
			     status_names[r->status];
	if (warn)
		rl_warn(&vi->rl, &vi->log, "virtio-iommu: %s: %s -> %s", what,
			 r->rule ? r->rule : "refused", res);
	if (vi->trace) {
		snprintf(line, sizeof(line), "%s -> %s", what, res);
		vi->trace(vi->trace_opaque, r->type, r->status, line);
	}
}

/* handle_one() - answer chain @e.  Return: its used length. */
static uint32_t handle_one(struct viommu_virtio_iommu *vi, struct vq *vq,
			   const struct vq_elem *e)
{
	struct req r;
	uint32_t used = 0;

	/* everything but the body, which parse() reads over */
	memset(&r, 0, offsetof(struct req, u));
	r.e = e;
	if (parse(vi, vq, &r))
		r.status = dispatch(vi, &r);
	if (!r.unwritten)
		used = reply(vi, vq, &r);
	account(vi, &r);
	return used;
}

/*
 * process_requests() - answer every available request in ring order, then
 * signal the batch once.  The loop is bounded by twice the ring size so a
 * driver that keeps refilling cannot hold the device forever; what is left
 * is handled at the next notification.
 */
static void process_requests(struct viommu_virtio_iommu *vi)
{
	struct vq *vq = &vi->dev.vqs[VI_RQ];
	uint32_t budget = 2u * (vq->size ? vq->size : vq->max_size);
	uint32_t pushed = 0;
	struct vq_elem e;
	int ret = 0;

	vi->st.kicks++;
	while (budget--) {
		ret = vq_pop(vq, &e);
		if (ret)
			break;
		ret = vq_push(vq, &e, handle_one(vi, vq, &e));
		if (ret)
			break;
		pushed++;
		if (vi->dev.status & VIOMMU_VIRTIO_S_NEEDS_RESET)
			break;
	}
	if (pushed)
		__vdev_queue_done(&vi->dev, VI_RQ);
	if (ret == -EIO)
		needs_reset(vi, "virtio-iommu: requestq is broken");
}

/* ------------------------------------------------------------------ */
/* virtio hooks                                                       */

/* op_features_ok() - the driver must accept VERSION_1 and MAP_UNMAP. */
static int op_features_ok(struct viommu_virtio_dev *dev, uint64_t features)
{
	struct viommu_virtio_iommu *vi = vi_of(dev);

	if (!((features >> VIOMMU_VIRTIO_F_VERSION_1) & 1) ||
	    !((features >> VIOMMU_VIRTIO_IOMMU_F_MAP_UNMAP) & 1)) {
		rl_info(&vi->rl, &vi->log, "virtio-iommu: features %#llx refused: "
			 "VERSION_1 and MAP_UNMAP are required",
			 (unsigned long long)features);
		return -EINVAL;
	}
	return 0;
}

/* op_queue_notify() - requestq: run the batch; eventq: deliver reports. */
static void op_queue_notify(struct viommu_virtio_dev *dev, uint16_t q)
{
	struct viommu_virtio_iommu *vi = vi_of(dev);

	hook_enter(vi);
	if (q == VI_RQ)
		process_requests(vi);
	vi_hook_exit(vi); /* delivers pending reports (eventq too) */
}

/* config_image() - the configuration space as the driver sees it. */
static void config_image(const struct viommu_virtio_iommu *vi,
			 struct vi_config *c)
{
	memset(c, 0, sizeof(*c));
	c->page_size_mask = htole64(vi->page_size_mask);
	c->input_start = htole64(vi->in_start);
	c->input_end = htole64(vi->in_end);
	c->domain_start = htole32(vi->dom_start);
	c->domain_end = htole32(vi->dom_end);
	if (offered(vi, VIOMMU_VIRTIO_IOMMU_F_PROBE))
		c->probe_size = htole32(vi->probe_size);
	c->bypass = vi->bypass_offered && vi->bypass; /* D3: 0 or 1 */
}

/* op_config_read() - read config bytes; past the end reads zero. */
static void op_config_read(struct viommu_virtio_dev *dev, uint32_t off,
			   void *buf, uint32_t len)
{
	struct viommu_virtio_iommu *vi = vi_of(dev);
	struct vi_config c;
	uint8_t *out = buf;
	uint64_t pos;
	uint32_t i;

	config_image(vi, &c);
	for (i = 0; i < len; i++) {
		pos = (uint64_t)off + i;
		out[i] = pos < sizeof(c) ? ((const uint8_t *)&c)[pos] : 0;
	}
}

/*
 * op_config_write() - only a 1-byte write of `bypass`, with BYPASS_CONFIG
 * negotiated, of 0 or 1 (D3) is taken; anything else is ignored with a
 * log line.
 */
static void op_config_write(struct viommu_virtio_dev *dev, uint32_t off,
			    const void *buf, uint32_t len)
{
	struct viommu_virtio_iommu *vi = vi_of(dev);
	uint8_t v = *(const uint8_t *)buf;

	if (off != VI_CFG_BYPASS_OFF || len != 1) {
		rl_warn(&vi->rl, &vi->log, "virtio-iommu: config write of %u bytes at "
			 "%#x ignored: only the 1-byte bypass field is "
			 "writable", len, off);
		return;
	}
	if (!has(vi, VIOMMU_VIRTIO_IOMMU_F_BYPASS_CONFIG)) {
		rl_warn(&vi->rl, &vi->log, "virtio-iommu: bypass write ignored: "
			 "BYPASS_CONFIG not negotiated");
		return;
	}
	if (v > 1) {
		rl_warn(&vi->rl, &vi->log, "virtio-iommu: bypass value %u ignored "
			 "(D3: only 0 or 1)", v);
		return;
	}
	if (v == vi->bypass)
		return;
	vi->bypass = v;
	apply_bypass(vi);
	rl_info(&vi->rl, &vi->log, "virtio-iommu: bypass %s for unattached endpoints",
		 v ? "on" : "off");
}

/*
 * op_reset() - device reset: no endpoint attached, every domain gone, the
 * backlog emptied, `bypass` kept; @system also restores boot_bypass.
 * Bypass is set first so no endpoint briefly bypasses a system reset.
 */
static void op_reset(struct viommu_virtio_dev *dev, bool system)
{
	struct viommu_virtio_iommu *vi = vi_of(dev);

	hook_enter(vi);
	if (system)
		vi->bypass = vi->boot_bypass;
	apply_bypass(vi);
	teardown(vi);
	vi_ev_clear(vi);
	rl_info(&vi->rl, &vi->log, "virtio-iommu: %s reset", system ? "system" :
		 "device");
	__atomic_store_n(&vi->owned, 0, __ATOMIC_RELEASE);
}

static const struct vdev_ops vi_ops = {
	.device_id = VI_DEVICE_ID,
	.features_ok = op_features_ok,
	.queue_notify = op_queue_notify,
	.config_read = op_config_read,
	.config_write = op_config_write,
	.reset = op_reset,
};

/* ------------------------------------------------------------------ */
/* Creation                                                           */

/* is_pow2() - whether @v is a non-zero power of two. */
static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/*
 * settings() - validate @cfg and fill in @vi's parameters and the feature
 * words.  Return: 0; -EINVAL.
 */
static int settings(struct viommu_virtio_iommu *vi,
		    const struct viommu_virtio_iommu_config *cfg,
		    uint64_t *features, uint16_t *qsize, uint32_t *backlog)
{
	uint64_t dev = cfg->features ? cfg->features : VI_FEATURES_ALL;
	uint64_t ring = cfg->ring_features ? cfg->ring_features : VI_RING_ALL;
	uint64_t in_end = cfg->input_end ? cfg->input_end : VI_DEF_INPUT_END;
	uint32_t dom_end = cfg->domain_end ? cfg->domain_end : UINT32_MAX;

	vi->page_size_mask = cfg->page_size_mask ? cfg->page_size_mask :
						   VI_DEF_PAGE_SIZE_MASK;
	vi->probe_size = cfg->probe_size ? cfg->probe_size : VI_DEF_PROBE_SIZE;
	*qsize = cfg->queue_size ? cfg->queue_size : VI_DEF_QUEUE_SIZE;
	*backlog = cfg->event_backlog ? cfg->event_backlog : VI_DEF_BACKLOG;
	if (cfg->input_start > in_end || cfg->domain_start > dom_end ||
	    vi->probe_size % 4 || vi->probe_size < 64 ||
	    vi->probe_size > VI_MAX_PROBE_SIZE || !is_pow2(*qsize) ||
	    *qsize > VIOMMU_VIRTIO_QUEUE_MAX || *backlog > VI_MAX_BACKLOG)
		return -EINVAL;
	if ((dev & ~VI_FEATURES_ALL & ~VI_FEATURES_TABLE &
	     ~(1ull << VIOMMU_VIRTIO_IOMMU_F_BYPASS)) ||
	    (ring & ~VI_RING_ALL))
		log_warn(&cfg->log, "virtio-iommu: unknown feature bits "
			 "ignored");
	/* V1: the handover bits only when asked for; PAGE_REQ needs both. */
	if (!((dev >> VIOMMU_VIRTIO_IOMMU_F_ATTACH_TABLE) & 1))
		dev &= ~(1ull << VIOMMU_VIRTIO_IOMMU_F_PAGE_REQ);
	dev = (dev & (VI_FEATURES_ALL | VI_FEATURES_TABLE)) |
	      (1ull << VIOMMU_VIRTIO_IOMMU_F_MAP_UNMAP);
	if (vt_settings(vi, cfg))
		return -EINVAL;
	*features = dev | (ring & VI_RING_ALL) |
		    (1ull << VIOMMU_VIRTIO_F_VERSION_1);
	vi->gmask = (vi->page_size_mask & -vi->page_size_mask) - 1;
	vi->bypass_offered = (dev >> VIOMMU_VIRTIO_IOMMU_F_BYPASS_CONFIG) & 1;
	vi->boot_bypass = cfg->boot_bypass && vi->bypass_offered;
	if (cfg->boot_bypass && !vi->bypass_offered)
		log_warn(&cfg->log, "virtio-iommu: boot_bypass needs "
			 "BYPASS_CONFIG: bypass is off");
	vi->bypass = vi->boot_bypass;
	vi->msi_region = !cfg->no_msi_region;
	/* Without INPUT_RANGE / DOMAIN_RANGE every value is valid (spec). */
	vi->in_start = 0;
	vi->in_end = UINT64_MAX;
	if ((dev >> VIOMMU_VIRTIO_IOMMU_F_INPUT_RANGE) & 1) {
		vi->in_start = cfg->input_start;
		vi->in_end = in_end;
	}
	vi->dom_start = 0;
	vi->dom_end = UINT32_MAX;
	if ((dev >> VIOMMU_VIRTIO_IOMMU_F_DOMAIN_RANGE) & 1) {
		vi->dom_start = cfg->domain_start;
		vi->dom_end = dom_end;
	}
	return 0;
}

/* alloc_state() - the tables, scratch buffers and backlog. */
static int alloc_state(struct viommu_virtio_iommu *vi, uint32_t backlog)
{
	struct viommu_limits lim;
	uint32_t max_doms;

	viommu_ctx_limits(vi->ctx, &lim);
	/* bypass domains count against no core limit: an endpoint each */
	max_doms = lim.max_domains + lim.max_endpoints;
	if (max_doms < lim.max_domains)
		max_doms = UINT32_MAX;
	vdoms_init(&vi->doms, max_doms);
	vatts_init(&vi->atts, lim.max_endpoints);
	vi->nresv = vi->probe_size / sizeof(struct vi_prop_resv_mem);
	vi->probe_buf = xzalloc(&vi->alloc, vi->probe_size +
					    sizeof(struct vi_tail));
	vi->resv = xzalloc(&vi->alloc, vi->nresv * sizeof(*vi->resv));
	vi->ev_cap = backlog;
	vi->ev = xzalloc(&vi->alloc, backlog * sizeof(*vi->ev));
	if (!vi->probe_buf || !vi->resv || !vi->ev)
		return -ENOMEM;
	return vt_pri_alloc(vi);
}

/* free_state() - release what alloc_state() and the tables hold. */
static void free_state(struct viommu_virtio_iommu *vi)
{
	vdoms_fini(&vi->doms, &vi->alloc);
	vatts_fini(&vi->atts, &vi->alloc);
	xfree(&vi->alloc, vi->probe_buf);
	xfree(&vi->alloc, vi->resv);
	xfree(&vi->alloc, vi->ev);
	vt_pri_free(vi);
}

/*
 * The layout a @size of 0 stands for: the first one (@ctx to @log; the
 * handover fields and the allocator came later).
 */
#define CONFIG_SIZE_V1 \
	(offsetof(struct viommu_virtio_iommu_config, log) + \
	 sizeof(struct viommu_log))

/*
 * config_copy() - the caller's config as this library knows it: its first
 * @size bytes, the rest 0.  Return: false when @size is larger than we
 * know and the bytes past what we know are not all zero.
 */
static bool config_copy(const struct viommu_virtio_iommu_config *user,
			struct viommu_virtio_iommu_config *out)
{
	size_t n = user->size ? user->size : CONFIG_SIZE_V1;

	for (size_t i = sizeof(*out); i < n; i++)
		if (((const uint8_t *)user)[i])
			return false;
	memset(out, 0, sizeof(*out));
	memcpy(out, user, MIN(n, sizeof(*out)));
	return true;
}

VIOMMU_EXPORT int
viommu_virtio_iommu_create(const struct viommu_virtio_iommu_config *user,
			   struct viommu_virtio_iommu **out)
{
	struct viommu_virtio_iommu_config c, *cfg = &c;
	struct viommu_allocator alloc;
	struct viommu_virtio_iommu *vi;
	uint64_t features;
	uint16_t qsize;
	uint32_t backlog;
	int ret;

	if (!user || !out || !config_copy(user, &c) || !cfg->ctx ||
	    !cfg->mem || cfg->mem != viommu_ctx_mem(cfg->ctx))
		return -EINVAL;
	alloc = cfg->allocator;
	vi = xzalloc(&alloc, sizeof(*vi));
	if (!vi)
		return -ENOMEM;
	vi->alloc = alloc;
	vi->ctx = cfg->ctx;
	vi->log = cfg->log;
	ret = settings(vi, cfg, &features, &qsize, &backlog);
	if (ret)
		goto err_free;
	ret = alloc_state(vi, backlog);
	if (ret)
		goto err_free;
	ret = pthread_mutex_init(&vi->ev_lock, NULL) ? -ENOMEM : 0;
	if (ret)
		goto err_free;
	ret = vdev_init(&vi->dev, &vi_ops, vi, cfg->mem, &vi->log, &vi->alloc,
			features, 2, qsize);
	if (ret)
		goto err_mutex;
	apply_bypass(vi);
	viommu_ctx_fault_handler(vi->ctx, &vi->prev_fault_fn,
				 &vi->prev_fault_opaque);
	viommu_ctx_set_fault_handler(vi->ctx, vi_fault_cb, vi);
	rl_info(&vi->rl, &vi->log, "virtio-iommu: created, features %#llx, granule "
		 "%#llx, bypass %u", (unsigned long long)features,
		 (unsigned long long)(vi->gmask + 1), vi->bypass);
	*out = vi;
	return 0;

err_mutex:
	pthread_mutex_destroy(&vi->ev_lock);
err_free:
	free_state(vi);
	xfree(&alloc, vi);
	return ret;
}

VIOMMU_EXPORT void viommu_virtio_iommu_destroy(struct viommu_virtio_iommu *vi)
{
	struct viommu_allocator alloc;

	if (!vi)
		return;
	/* the embedder's handler back; no delivery to us runs after this */
	viommu_ctx_set_fault_handler(vi->ctx, vi->prev_fault_fn,
				     vi->prev_fault_opaque);
	pthread_mutex_lock(&vi->dev.lock);
	teardown(vi);
	pthread_mutex_unlock(&vi->dev.lock);
	vdev_destroy(&vi->dev);
	pthread_mutex_destroy(&vi->ev_lock);
	free_state(vi);
	alloc = vi->alloc;
	xfree(&alloc, vi);
}

VIOMMU_EXPORT struct viommu_virtio_dev *
viommu_virtio_iommu_dev(struct viommu_virtio_iommu *vi)
{
	return vi ? &vi->dev : NULL;
}

VIOMMU_EXPORT int
viommu_virtio_iommu_stats(struct viommu_virtio_iommu *vi,
			  struct viommu_virtio_iommu_stats *out)
{
	if (!vi || !out)
		return -EINVAL;
	pthread_mutex_lock(&vi->dev.lock);
	*out = vi->st;
	pthread_mutex_lock(&vi->ev_lock);
	out->events_dropped = vi->ev_dropped;
	pthread_mutex_unlock(&vi->ev_lock);
	out->log_suppressed = rl_suppressed(&vi->rl) +
			      vdev_log_suppressed(&vi->dev);
	pthread_mutex_unlock(&vi->dev.lock);
	return 0;
}

VIOMMU_EXPORT void viommu_virtio_iommu_set_trace(
	struct viommu_virtio_iommu *vi,
	void (*fn)(void *opaque, uint8_t type, uint8_t status,
		   const char *line),
	void *opaque)
{
	if (!vi)
		return;
	pthread_mutex_lock(&vi->dev.lock);
	vi->trace = fn;
	vi->trace_opaque = opaque;
	pthread_mutex_unlock(&vi->dev.lock);
}

VIOMMU_EXPORT int
viommu_virtio_iommu_set_trace_sink(struct viommu_virtio_iommu *vi,
				   const struct viommu_trace_sink *sink)
{
	int err;

	if (!vi)
		return -EINVAL;
	/* requests are accounted and reports delivered under dev.lock */
	pthread_mutex_lock(&vi->dev.lock);
	err = trace_set(&vi->tr, &vi->log, sink);
	pthread_mutex_unlock(&vi->dev.lock);
	return err;
}
