/*
 * iommu_pri.c - virtio-iommu page requests (docs/VIRTIO-IOMMU-TABLES.md,
 * V20-V28): an endpoint with PRI asks for a page; the request travels to
 * the driver as a 48-byte event; the driver populates its table and
 * answers with PAGE_RESP on the request queue; the endpoint collects the
 * answer and retries or gives up.
 *
 * Bounds (V27).  At most pri_groups groups are outstanding per device and
 * at most twice that many requests wait for event buffers; a request past
 * either bound is refused to the endpoint (-EBUSY: it retries later), so
 * a driver that never posts buffers or never answers holds no memory
 * beyond the two fixed tables.  A group the driver has not answered
 * pri_timeout_ms after its first request is answered FAILURE by the
 * device; a late PAGE_RESP for it finds no group (INVAL).  Answered groups
 * the endpoint has not collected are reclaimed, oldest slot first, when a
 * new group needs room.  Device reset and unbinding answer every affected
 * group FAILURE.
 *
 * Everything runs under the device lock; the two public calls take it.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "virtio/iommu_internal.h"
#include "virtio/iommu_table_wire.h"

enum {
	VT_G_FREE = 0,
	VT_G_OPEN,     /* requests sent, the last one not yet */
	VT_G_SENT,     /* complete: waiting for PAGE_RESP */
	VT_G_ANSWERED, /* answered (or timed out): endpoint to collect */
};

#define PRI_PERMS (VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC | \
		   VIOMMU_VI_PRI_PRIV)
#define PRI_GRPID_MAX 511u

/* now_ms() - the embedder's clock, or a monotonic one, in ms. */
static uint64_t now_ms(const struct viommu_virtio_iommu *vi)
{
	struct timespec ts;

	if (vi->vt.clock_ms)
		return vi->vt.clock_ms(vi->vt.clock_opaque);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int vt_pri_alloc(struct viommu_virtio_iommu *vi)
{
	vi->vt.binds = xzalloc(&vi->alloc, VT_MAX_BINDS *
					   sizeof(*vi->vt.binds));
	vi->vt.groups = xzalloc(&vi->alloc, vi->vt.pri_groups *
					    sizeof(*vi->vt.groups));
	vi->vt.prq = xzalloc(&vi->alloc, 2u * vi->vt.pri_groups *
					 sizeof(*vi->vt.prq));
	if (!vi->vt.binds || !vi->vt.groups || !vi->vt.prq)
		return -ENOMEM;
	return 0;
}

void vt_pri_free(struct viommu_virtio_iommu *vi)
{
	xfree(&vi->alloc, vi->vt.binds);
	xfree(&vi->alloc, vi->vt.groups);
	xfree(&vi->alloc, vi->vt.prq);
}

/* answer() - group @g gets @resp for the endpoint to collect. */
static void answer(struct vt_group *g, uint8_t resp)
{
	g->state = VT_G_ANSWERED;
	g->resp = resp;
}

/* expire() - V27: outstanding groups past their deadline fail. */
static void expire(struct viommu_virtio_iommu *vi, uint64_t now)
{
	for (uint32_t i = 0; i < vi->vt.pri_groups; i++) {
		struct vt_group *g = &vi->vt.groups[i];

		if ((g->state == VT_G_OPEN || g->state == VT_G_SENT) &&
		    now >= g->deadline_ms) {
			answer(g, VIOMMU_VI_PAGE_RESP_FAILURE);
			vi->vt.st.timeouts++;
			rl_warn(&vi->rl, &vi->log, "virtio-iommu: page request "
				"group %u of endpoint %#x not answered in %u ms "
				"(V27): answered FAILURE", g->grpid, g->ep,
				vi->vt.pri_timeout_ms);
		}
	}
}

void vt_pri_reset(struct viommu_virtio_iommu *vi)
{
	for (uint32_t i = 0; vi->vt.groups && i < vi->vt.pri_groups; i++)
		if (vi->vt.groups[i].state == VT_G_OPEN ||
		    vi->vt.groups[i].state == VT_G_SENT)
			answer(&vi->vt.groups[i], VIOMMU_VI_PAGE_RESP_FAILURE);
	vi->vt.prq_head = 0;
	vi->vt.prq_count = 0;
}

void vt_pri_forget(struct viommu_virtio_iommu *vi, uint32_t ep,
		   uint32_t pasid)
{
	for (uint32_t i = 0; i < vi->vt.pri_groups; i++) {
		struct vt_group *g = &vi->vt.groups[i];

		if (g->ep == ep && g->pasid == pasid &&
		    (g->state == VT_G_OPEN || g->state == VT_G_SENT))
			answer(g, VIOMMU_VI_PAGE_RESP_FAILURE);
	}
}

/* group_find() - the group (@ep, @grpid) not yet collected, or NULL. */
static struct vt_group *group_find(struct viommu_virtio_iommu *vi,
				   uint32_t ep, uint32_t grpid)
{
	for (uint32_t i = 0; i < vi->vt.pri_groups; i++) {
		struct vt_group *g = &vi->vt.groups[i];

		if (g->state != VT_G_FREE && g->ep == ep && g->grpid == grpid)
			return g;
	}
	return NULL;
}

/* group_new() - a free slot, or an answered one reclaimed; or NULL. */
static struct vt_group *group_new(struct viommu_virtio_iommu *vi)
{
	struct vt_group *ans = NULL;

	for (uint32_t i = 0; i < vi->vt.pri_groups; i++) {
		struct vt_group *g = &vi->vt.groups[i];

		if (g->state == VT_G_FREE)
			return g;
		if (g->state == VT_G_ANSWERED && !ans)
			ans = g;
	}
	return ans;
}

bool vt_ext_events(const struct viommu_virtio_iommu *vi)
{
	return __vdev_has(&vi->dev, VIOMMU_VIRTIO_IOMMU_F_PAGE_REQ);
}

bool vt_prq_pending(const struct viommu_virtio_iommu *vi)
{
	return __atomic_load_n(&vi->vt.prq_count, __ATOMIC_RELAXED) != 0;
}

/* perm_flags() - event permission flags of VIOMMU_* access bits. */
static uint32_t perm_flags(uint32_t perm)
{
	uint32_t f = 0;

	if (perm & VIOMMU_READ)
		f |= VI_FAULT_F_READ;
	if (perm & VIOMMU_WRITE)
		f |= VI_FAULT_F_WRITE;
	if (perm & VIOMMU_EXEC)
		f |= VI_FAULT_F_EXEC;
	if (perm & VIOMMU_VI_PRI_PRIV)
		f |= VI_FAULT_F_PRIV;
	return f;
}

void vt_fault_encode(const struct viommu_fault *f, uint8_t reason,
		     uint32_t flags, struct vi_event_ext *w)
{
	uint32_t pr = VI_UNREC_F_ADDR_VALID;

	memset(w, 0, sizeof(*w));
	w->reason = reason;
	w->flt_type = htole16(VI_EVT_UNRECOV);
	w->flags = htole32(flags & ~VI_FAULT_F_ADDRESS);
	if (f->pasid != VIOMMU_NO_PASID) {
		pr |= VI_UNREC_F_PASID_VALID;
		w->pasid = htole32(f->pasid);
	}
	w->pr_flags = htole32(pr);
	w->endpoint = htole32(f->endpoint);
	w->address = htole64(f->address);
}

uint32_t vt_prq_send(struct viommu_virtio_iommu *vi, struct vq *vq,
		     const struct vq_elem *e)
{
	struct vt_prq *p = &vi->vt.prq[vi->vt.prq_head];
	struct vi_event_ext w;
	uint32_t pr = 0;

	if (e->write_len < sizeof(w)) {
		rl_warn(&vi->rl, &vi->log, "virtio-iommu: eventq buffer has %u "
			"writable bytes, a page request needs %zu (V20): "
			"returned unused", e->write_len, sizeof(w));
		return 0;
	}
	memset(&w, 0, sizeof(w));
	w.flt_type = htole16(VI_EVT_PAGE_REQ);
	w.flags = htole32(perm_flags(p->perm));
	if (p->pasid != VIOMMU_NO_PASID) {
		pr |= VI_PRQ_F_PASID_VALID;
		w.pasid = htole32(p->pasid);
	}
	if (p->last)
		pr |= VI_PRQ_F_LAST_PAGE;
	w.pr_flags = htole32(pr);
	w.endpoint = htole32(p->ep);
	w.grpid = htole32(p->grpid);
	w.address = htole64(p->addr);
	vi->vt.prq_head = (vi->vt.prq_head + 1) % (2u * vi->vt.pri_groups);
	__atomic_store_n(&vi->vt.prq_count, vi->vt.prq_count - 1,
			 __ATOMIC_RELAXED);
	if (vq_write(vq, e, 0, &w, sizeof(w))) {
		rl_warn(&vi->rl, &vi->log, "virtio-iommu: eventq buffer not "
			"writable, page request of endpoint %#x dropped (its "
			"group will time out)", p->ep);
		return 0;
	}
	vi->vt.st.page_req_sent++;
	vi->st.events_sent++;
	return sizeof(w);
}

/* table_bound() - V30: (@ep, @pasid) is attached through a table. */
static bool table_bound(struct viommu_virtio_iommu *vi, uint32_t ep,
			uint32_t pasid)
{
	struct vatt *a;
	struct vdom *d;

	if (pasid != VIOMMU_NO_PASID) {
		for (uint32_t i = 0; i < vi->vt.nbinds; i++)
			if (vi->vt.binds[i].ep == ep &&
			    vi->vt.binds[i].pasid == pasid)
				return true;
		return false;
	}
	a = vi_att_find(vi, ep);
	d = a ? vi_dom_find(vi, a->dom) : NULL;
	return d && d->tab;
}

/*
 * __page_request() - the checks and the queueing of
 * viommu_virtio_iommu_page_request(); device lock held.
 */
static int __page_request(struct viommu_virtio_iommu *vi, uint32_t endpoint,
			  uint32_t pasid, uint64_t iova, unsigned int perm,
			  bool last, uint32_t grpid)
{
	uint32_t cap = 2u * vi->vt.pri_groups;
	struct viommu_endpoint *ep;
	struct vt_group *g;
	uint64_t now = now_ms(vi);

	if (!vt_ext_events(vi) ||
	    !(vi->dev.status & VIOMMU_VIRTIO_S_DRIVER_OK))
		return -EOPNOTSUPP;
	if (pasid != VIOMMU_NO_PASID && (pasid >> vi->vt.pasid_bits))
		return -EINVAL;
	if (viommu_endpoint_lookup(vi->ctx, endpoint, &ep) ||
	    !table_bound(vi, endpoint, pasid))
		return -ENOENT; /* V30 */
	expire(vi, now);
	g = group_find(vi, endpoint, grpid);
	if (g && g->state != VT_G_OPEN)
		return -EBUSY; /* complete: collect its answer first */
	if (g && g->pasid != pasid)
		return -EINVAL;
	if (!g)
		g = group_new(vi);
	if (!g || vi->vt.prq_count == cap) {
		vi->vt.st.page_req_busy++;
		return -EBUSY;
	}
	if (g->state != VT_G_OPEN) {
		*g = (struct vt_group){ .ep = endpoint, .pasid = pasid,
					.grpid = grpid, .state = VT_G_OPEN,
					.deadline_ms = now +
						       vi->vt.pri_timeout_ms };
	}
	if (last)
		g->state = VT_G_SENT;
	vi->vt.prq[(vi->vt.prq_head + vi->vt.prq_count) % cap] =
		(struct vt_prq){ endpoint, pasid, grpid, perm,
				 iova & ~0xfffull, last };
	__atomic_store_n(&vi->vt.prq_count, vi->vt.prq_count + 1,
			 __ATOMIC_RELAXED);
	vi->vt.st.page_requests++;
	return 0;
}

VIOMMU_EXPORT int
viommu_virtio_iommu_page_request(struct viommu_virtio_iommu *vi,
				 uint32_t endpoint, uint32_t pasid,
				 uint64_t iova, unsigned int perm, bool last,
				 uint32_t grpid)
{
	int ret;

	if (!vi || !perm || (perm & ~PRI_PERMS) || grpid > PRI_GRPID_MAX)
		return -EINVAL;
	pthread_mutex_lock(&vi->dev.lock);
	ret = __page_request(vi, endpoint, pasid, iova, perm, last, grpid);
	if (!ret)
		vi_ev_flush(vi);
	else /* V29 */
		rl_warn(&vi->rl, &vi->log, "virtio-iommu: page request of "
			"endpoint %#x pasid %#x group %u refused (%d: %s)",
			endpoint, pasid, grpid, ret, ret == -EBUSY ?
			"V27: groups or backlog full, or group complete" :
			"V30: not negotiated, not running or not bound "
			"through a table");
	pthread_mutex_unlock(&vi->dev.lock);
	return ret;
}

VIOMMU_EXPORT int
viommu_virtio_iommu_page_response(struct viommu_virtio_iommu *vi,
				  uint32_t endpoint, uint32_t grpid,
				  enum viommu_vi_page_resp *resp)
{
	struct vt_group *g;
	int ret = -ENOENT;

	if (!vi || !resp)
		return -EINVAL;
	pthread_mutex_lock(&vi->dev.lock);
	if (vi->vt.groups) {
		expire(vi, now_ms(vi));
		g = group_find(vi, endpoint, grpid);
		if (g && g->state == VT_G_ANSWERED) {
			*resp = g->resp;
			g->state = VT_G_FREE;
			ret = 0;
		} else if (g) {
			ret = -EAGAIN;
		}
	}
	pthread_mutex_unlock(&vi->dev.lock);
	return ret;
}

/* resp_domain_ok() - V25: the (endpoint, PASID) is in domain @dom. */
static bool resp_domain_ok(struct viommu_virtio_iommu *vi, uint32_t ep,
			   uint32_t pasid, uint32_t dom)
{
	struct vatt *a;

	if (pasid == VIOMMU_NO_PASID) {
		a = vi_att_find(vi, ep);
		return a && a->dom == dom;
	}
	for (uint32_t i = 0; i < vi->vt.nbinds; i++)
		if (vi->vt.binds[i].ep == ep && vi->vt.binds[i].pasid == pasid)
			return vi->vt.binds[i].dom == dom;
	return false;
}

uint8_t vt_page_resp(struct viommu_virtio_iommu *vi,
		     const struct vi_req_page_resp *q, const char **rule)
{
	uint32_t flags = le32toh(q->flags), grpid = le32toh(q->grpid);
	uint32_t ep = le32toh(q->endpoint), pasid = le32toh(q->pasid);
	uint16_t code = le16toh(q->resp_code);
	bool pv = flags & VI_PRESP_F_PASID_VALID;
	struct viommu_endpoint *e;
	struct vt_group *g;

	for (size_t i = 0; i < sizeof(q->rsvd); i++)
		if (q->rsvd[i]) {
			*rule = "V23: reserved bytes set";
			return VIOMMU_VI_S_INVAL;
		}
	if ((flags & ~VI_PRESP_F_PASID_VALID) || q->pasid_valid != pv ||
	    (!pv && pasid) || code > VI_PRESP_FAILURE ||
	    grpid > PRI_GRPID_MAX) {
		*rule = "V23: unknown flag, resp_code or group, or pasid_valid "
			"disagrees with flags";
		return VIOMMU_VI_S_INVAL;
	}
	if (pv && (pasid >> vi->vt.pasid_bits)) {
		*rule = "V23: PASID past the advertised width";
		return VIOMMU_VI_S_RANGE;
	}
	if (viommu_endpoint_lookup(vi->ctx, ep, &e)) {
		*rule = "V23: no such endpoint";
		return VIOMMU_VI_S_NOENT;
	}
	if (!pv)
		pasid = VIOMMU_NO_PASID;
	if (!resp_domain_ok(vi, ep, pasid, le32toh(q->domain))) {
		*rule = "V25: endpoint (PASID) not in that domain";
		return VIOMMU_VI_S_INVAL;
	}
	expire(vi, now_ms(vi));
	g = group_find(vi, ep, grpid);
	if (!g || g->state != VT_G_SENT || g->pasid != pasid) {
		*rule = "V24: no complete outstanding group of that ID "
			"(never sent, already answered or timed out)";
		return VIOMMU_VI_S_INVAL;
	}
	answer(g, (uint8_t)code);
	vi->vt.st.responses++;
	return VIOMMU_VI_S_OK;
}
