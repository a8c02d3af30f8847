/*
 * iommu_req.c - the virtio-iommu request queue (VIRTIO 1.3 §5.13.6):
 * parsing each chain, running ATTACH, DETACH, MAP, UNMAP and PROBE
 * against the core, writing the reply, and accounting for it (statistics,
 * the refusal log line, traces).  docs/VIRTIO-IOMMU.md lists the rules
 * D1-D37 this file meets; the handover requests (ATTACH_TABLE, INVALIDATE,
 * PAGE_RESP) are parsed here and run by iommu_table.c and iommu_pri.c.
 *
 * Concepts
 *  - On a request-queue notification every available chain is popped in
 *    ring order and answered before the next one is looked at; the batch
 *    ends with one __vdev_queue_done().  The loop is bounded by twice the
 *    ring size.
 *  - A chain is parsed from its lengths alone, never trusting the guest:
 *    the readable part holds the head and body, the writable part is
 *    exactly the 4-byte tail (PROBE: probe_size bytes of properties, then
 *    the tail).  The request is copied into host memory once, then
 *    validated, then used.  A chain whose tail cannot be located (D37), an
 *    unknown type (D5) and a PROBE without the feature (D30) are returned
 *    unwritten with used length 0; everything else gets a full reply whose
 *    used length is the whole writable part (the Linux driver needs that).
 *  - Each refused request gets its rule's status and one rate-limited
 *    WARN line naming the rule.  A core errno becomes a status in one
 *    place (core_status()).
 *  - Domain and attachment bookkeeping is iommu_dom.c's.
 *
 * Everything here runs under the device lock, inside a hook (iommu.c).
 */
#include <viommu/virtio_iommu.h>

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "virtio/iommu_internal.h"
#include "virtio/iommu_table_wire.h"
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

/* parse() asks vt_type() only about types past the base ones */
_Static_assert(VI_T_ATTACH_TABLE >= VIOMMU_VI_REQ_TYPES &&
	       VI_T_INVALIDATE >= VIOMMU_VI_REQ_TYPES &&
	       VI_T_PAGE_RESP >= VIOMMU_VI_REQ_TYPES,
	       "handover request types follow the base ones");

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
	case -ENOMEM:
		return refuse(r, VIOMMU_VI_S_NOMEM,
			      vi_nomem_why(err, "limit reached"));
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

/*
 * attach_new() - attach @ep to virtio domain @id, creating the domain if
 * needed; nothing changes on failure (D12, D14).
 */
static uint8_t attach_new(struct viommu_virtio_iommu *vi, struct req *r,
			  struct viommu_endpoint *ep, uint32_t id, bool bypass)
{
	uint32_t eid = viommu_endpoint_id(ep);
	bool created = false;
	struct vdom *d;
	int ret = vi_att_find(vi, eid) ? 0 : vi_att_reserve(vi);

	if (ret)
		return refuse(r, VIOMMU_VI_S_NOMEM,
			      vi_nomem_why(ret, "too many endpoints"));
	if (!vi_dom_find(vi, id)) {
		ret = vi_dom_create(vi, id, bypass);
		if (ret)
			return core_status(r, ret);
		created = true;
	}
	d = vi_dom_find(vi, id);
	ret = viommu_endpoint_attach(ep, VIOMMU_NO_PASID, d->dom);
	if (ret) {
		if (created)
			vi_dom_free(vi, id);
		if (ret == -EINVAL) /* the endpoint's PROBE properties */
			return refuse(r, VIOMMU_VI_S_UNSUPP, "D13: a mapping "
				      "of the domain overlaps a reserved "
				      "region of the endpoint");
		return core_status(r, ret);
	}
	d->nep++;
	vi_att_set(vi, eid, id); /* D12: as if detached first; D17 */
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

	if (vi_has(vi, VIOMMU_VIRTIO_IOMMU_F_BYPASS_CONFIG))
		known = VI_ATTACH_F_BYPASS;
	if (rsvd_set(q->rsvd, sizeof(q->rsvd)))
		return refuse(r, VIOMMU_VI_S_INVAL, "D8: reserved bytes set");
	if (flags & ~known)
		return refuse(r, VIOMMU_VI_S_INVAL, "D8: unknown flag");
	if (dom < vi->dom_start || dom > vi->dom_end)
		return refuse(r, VIOMMU_VI_S_RANGE,
			      "domain outside domain_range");
	ep = vi_lookup_ep(vi, id);
	if (!ep)
		return refuse(r, VIOMMU_VI_S_NOENT, "D9: no such endpoint");
	vi_att_sync(vi, id, ep);
	d = vi_dom_find(vi, dom);
	if (d && d->tab)
		return refuse(r, VIOMMU_VI_S_INVAL, "V13: ATTACH to a "
			      "table-mode domain (use ATTACH_TABLE)");
	if (d && d->bypass != bypass)
		return refuse(r, VIOMMU_VI_S_INVAL,
			      "D11: bypass flag inconsistent with the domain");
	cur = vi_att_find(vi, id);
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
	ep = vi_lookup_ep(vi, id);
	if (!ep)
		return refuse(r, VIOMMU_VI_S_NOENT, "D15: no such endpoint");
	vi_att_sync(vi, id, ep);
	cur = vi_att_find(vi, id);
	if (!cur || cur->dom != dom)
		return refuse(r, VIOMMU_VI_S_INVAL,
			      "D15: endpoint not attached to that domain");
	ret = viommu_endpoint_detach(ep, VIOMMU_NO_PASID);
	if (ret && ret != -ENOENT)
		return core_status(r, ret);
	vi_att_drop(vi, id); /* D16, D17 */
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

	if (vi_has(vi, VIOMMU_VIRTIO_IOMMU_F_MMIO))
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
	d = vi_dom_find(vi, le32toh(q->domain));
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
	d = vi_dom_find(vi, le32toh(q->domain));
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
	ep = vi_lookup_ep(vi, le32toh(r->u.probe.endpoint));
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
	/* the handover types (V5) are all past the base ones */
	if (r->type >= VIOMMU_VI_REQ_TYPES && vt_type(vi, r->type)) {
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
	    !vi_has(vi, VIOMMU_VIRTIO_IOMMU_F_PROBE))
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
 * vi_process_requests() - answer every available request in ring order,
 * then signal the batch once.  The loop is bounded by twice the ring size
 * so a driver that keeps refilling cannot hold the device forever; what is
 * left is handled at the next notification.
 */
void vi_process_requests(struct viommu_virtio_iommu *vi)
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

