/*
 * iommu_internal.h - what the files of the virtio-iommu device model
 * share (iommu.c lists them and their concepts): the device structure,
 * the domain and attachment records, the handover state, and the
 * functions one file offers the others.  Not part of the public API.
 */
#ifndef VIOMMU_VIRTIO_IOMMU_INTERNAL_H
#define VIOMMU_VIRTIO_IOMMU_INTERNAL_H

#include <viommu/virtio_iommu.h>

#include <pthread.h>
#include <stdbool.h>

#include "base/sarr.h"
#include "base/trace.h"
#include "virtio/virtio_dev.h"

#define VI_DEVICE_ID 23
#define VI_RQ 0
#define VI_EQ 1

#define VI_FEATURES_ALL                                                   \
	((1ull << VIOMMU_VIRTIO_IOMMU_F_INPUT_RANGE) |                    \
	 (1ull << VIOMMU_VIRTIO_IOMMU_F_DOMAIN_RANGE) |                   \
	 (1ull << VIOMMU_VIRTIO_IOMMU_F_MAP_UNMAP) |                      \
	 (1ull << VIOMMU_VIRTIO_IOMMU_F_PROBE) |                          \
	 (1ull << VIOMMU_VIRTIO_IOMMU_F_MMIO) |                           \
	 (1ull << VIOMMU_VIRTIO_IOMMU_F_BYPASS_CONFIG))
#define VI_FEATURES_TABLE                                                 \
	((1ull << VIOMMU_VIRTIO_IOMMU_F_ATTACH_TABLE) |                   \
	 (1ull << VIOMMU_VIRTIO_IOMMU_F_PAGE_REQ))
#define VI_RING_ALL                                                       \
	((1ull << VIOMMU_VIRTIO_F_INDIRECT_DESC) |                        \
	 (1ull << VIOMMU_VIRTIO_F_EVENT_IDX) |                            \
	 (1ull << VIOMMU_VIRTIO_F_RING_PACKED))

#define VI_DEF_PAGE_SIZE_MASK 0x1000ull
#define VI_DEF_INPUT_END ((1ull << 48) - 1)
#define VI_DEF_PROBE_SIZE 512u
#define VI_MAX_PROBE_SIZE 65536u
#define VI_DEF_QUEUE_SIZE 256u
#define VI_DEF_BACKLOG 64u
#define VI_MAX_BACKLOG 65536u

struct vtab; /* a table-mode domain (iommu_table.c) */

/*
 * A virtio domain: its core domain, kind and the endpoints it holds.  In
 * table mode @tab is set and @dom is the NESTED domain endpoints use.
 */
struct vdom {
	uint32_t id; /* sort key: must stay first */
	uint32_t nep;
	bool bypass;
	struct viommu_domain *dom;
	struct vtab *tab;
};

/* Page-table handover state (iommu_table.c, iommu_pri.c). */
#define VT_MAX_BINDS 1024u  /* PASID bindings per device */
#define VT_MAX_GROUPS 512u  /* bound of pri_groups */

struct vt_bind {
	uint32_t ep, pasid, dom;
	bool cd; /* made by a PASID-table CONFIG invalidation (V33) */
};

/* One outstanding page request group. */
struct vt_group {
	uint32_t ep, pasid, grpid;
	uint64_t deadline_ms;
	uint8_t state; /* VT_G_* (iommu_pri.c) */
	uint8_t resp;
};

/* One page request waiting for an event buffer. */
struct vt_prq {
	uint32_t ep, pasid, grpid, perm;
	uint64_t addr;
	bool last;
};

struct vt_state {
	uint8_t pasid_bits;
	uint16_t pri_groups;
	uint32_t pri_timeout_ms;
	uint64_t (*clock_ms)(void *opaque);
	void *clock_opaque;
	struct vtab *orphans;    /* core refused to destroy: retried */
	struct vt_bind *binds;   /* VT_MAX_BINDS */
	uint32_t nbinds;
	struct vt_group *groups; /* pri_groups */
	struct vt_prq *prq;      /* 2 * pri_groups, a ring */
	uint32_t prq_head, prq_count;
	struct viommu_virtio_iommu_table_stats st;
};

/* An endpoint attached through the device, and to which virtio domain. */
struct vatt {
	uint32_t ep; /* sort key: must stay first */
	uint32_t dom;
};

/* The device's two tables, sorted by key (base/sarr.h). */
SARR_DEFINE(vdoms, struct vdom, id)
SARR_DEFINE(vatts, struct vatt, ep)

struct viommu_virtio_iommu {
	struct viommu_virtio_dev dev;
	struct viommu_ctx *ctx;
	struct viommu_log log;
	struct ratelimit rl; /* guest-triggered log lines of the model */
	struct viommu_allocator alloc;

	/* Parameters (effective values, see config_image()). */
	uint64_t page_size_mask, gmask;
	uint64_t in_start, in_end;
	uint32_t dom_start, dom_end;
	uint32_t probe_size;
	bool boot_bypass, bypass, bypass_offered, msi_region;

	/* Device state, under the device lock. */
	struct vdoms doms; /* domain ID -> struct vdom */
	struct vatts atts; /* endpoint ID -> struct vatt */
	uint8_t *probe_buf;       /* probe_size + tail */
	struct viommu_resv *resv; /* scratch, nresv entries */
	unsigned int nresv;
	struct viommu_virtio_iommu_stats st;
	void (*trace)(void *opaque, uint8_t type, uint8_t status,
		      const char *line);
	void *trace_opaque;
	struct trace tr;          /* typed trace points (dev.lock to set) */
	/* the context's fault handler before ours: chained, then restored */
	void (*prev_fault_fn)(void *opaque, const struct viommu_fault *f);
	void *prev_fault_opaque;

	/* Which thread runs a hook (see the lock comment above). */
	pthread_t owner;
	int owned;

	/* Fault backlog, under ev_lock. */
	pthread_mutex_t ev_lock;
	struct viommu_fault *ev;
	uint32_t ev_cap, ev_head, ev_count;
	uint64_t ev_dropped;

	/* Page-table handover, under the device lock. */
	struct vt_state vt;
};

/* vi_of() - the device model behind a virtio device. */
static inline struct viommu_virtio_iommu *vi_of(struct viommu_virtio_dev *dev)
{
	return dev->priv;
}

/* needs_reset() - D36: enter DEVICE_NEEDS_RESET (counted once). */
static inline void needs_reset(struct viommu_virtio_iommu *vi, const char *why)
{
	if (!(vi->dev.status & VIOMMU_VIRTIO_S_NEEDS_RESET))
		vi->st.needs_reset++;
	__vdev_needs_reset(&vi->dev, why);
}

/* vi_has() - whether device feature @bit was negotiated. */
static inline bool vi_has(const struct viommu_virtio_iommu *vi,
			  unsigned int bit)
{
	return __vdev_has(&vi->dev, bit);
}

/*
 * vi_nomem() - whether @err, a core or table errno, is one the device
 * answers VIOMMU_VI_S_NOMEM for: a limit reached (-ENOSPC) or host memory
 * exhausted (-ENOMEM).  The guest sees one status for both (the spec has
 * no other); the refusal's log line tells them apart.
 */
static inline bool vi_nomem(int err)
{
	return err == -ENOSPC || err == -ENOMEM;
}

/* vi_nomem_why() - the log line's reason for @err (vi_nomem() true). */
static inline const char *vi_nomem_why(int err, const char *limit)
{
	return err == -ENOSPC ? limit : "out of host memory";
}

/* hook_enter() - note that this thread runs a hook of the device. */
static inline void hook_enter(struct viommu_virtio_iommu *vi)
{
	pthread_t self = pthread_self();

	__atomic_store(&vi->owner, &self, __ATOMIC_RELAXED);
	__atomic_store_n(&vi->owned, 1, __ATOMIC_RELEASE);
}

/* in_own_hook() - whether the calling thread holds the device lock. */
static inline bool in_own_hook(struct viommu_virtio_iommu *vi)
{
	pthread_t owner;

	if (!__atomic_load_n(&vi->owned, __ATOMIC_ACQUIRE))
		return false;
	__atomic_load(&vi->owner, &owner, __ATOMIC_RELAXED);
	return pthread_equal(owner, pthread_self());
}

/*
 * vi_hook_exit() - deliver pending fault reports, then leave the hook
 * (iommu_event.c).  Device lock held.
 */
void vi_hook_exit(struct viommu_virtio_iommu *vi);

/* vi_ev_flush() - deliver queued reports now (device lock held). */
void vi_ev_flush(struct viommu_virtio_iommu *vi);

/* vi_ev_clear() - drop every queued report (device reset; iommu_event.c). */
void vi_ev_clear(struct viommu_virtio_iommu *vi);

/* vi_fault_cb() - the context's fault callback (iommu_event.c). */
void vi_fault_cb(void *opaque, const struct viommu_fault *fault);

/* ---- iommu_req.c (device lock held) -------------------------------- */

/* vi_process_requests() - answer the available requests (a batch). */
void vi_process_requests(struct viommu_virtio_iommu *vi);

/* ---- iommu_dom.c (device lock held) -------------------------------- */

/* vi_dom_find() - the virtio domain @id, or NULL. */
struct vdom *vi_dom_find(struct viommu_virtio_iommu *vi, uint32_t id);
/* vi_att_find() - the attachment record of endpoint @ep, or NULL. */
struct vatt *vi_att_find(struct viommu_virtio_iommu *vi, uint32_t ep);
/*
 * vi_dom_create() - MAP-mode (or, @bypass, bypass) virtio domain @id.
 * Return: 0; -ENOSPC (the device's table or a core limit); -ENOMEM;
 * -EIO.
 */
int vi_dom_create(struct viommu_virtio_iommu *vi, uint32_t id, bool bypass);
/* vi_dom_add() - insert domain record @d.  Return: 0; -ENOSPC; -ENOMEM. */
int vi_dom_add(struct viommu_virtio_iommu *vi, const struct vdom *d);
/* vi_dom_put() - one endpoint left domain @id: destroy it when empty. */
void vi_dom_put(struct viommu_virtio_iommu *vi, uint32_t id);
/* vi_dom_free() - destroy domain @id now. */
void vi_dom_free(struct viommu_virtio_iommu *vi, uint32_t id);
/*
 * vi_att_reserve() - room for one more attachment.
 * Return: 0; -ENOSPC (max_endpoints records); -ENOMEM.
 */
int vi_att_reserve(struct viommu_virtio_iommu *vi);
/*
 * vi_att_set() - record endpoint @ep in domain @id (room reserved),
 * putting its previous domain (D12).
 */
void vi_att_set(struct viommu_virtio_iommu *vi, uint32_t ep, uint32_t id);
/* vi_att_drop() - forget endpoint @ep's record, putting its domain. */
void vi_att_drop(struct viommu_virtio_iommu *vi, uint32_t ep);
/* vi_lookup_ep() - the core endpoint @id (given its MSI region), or NULL. */
struct viommu_endpoint *vi_lookup_ep(struct viommu_virtio_iommu *vi,
				     uint32_t id);
/* vi_att_sync() - drop @id's record if the core no longer agrees. */
void vi_att_sync(struct viommu_virtio_iommu *vi, uint32_t id,
		 struct viommu_endpoint *ep);
/* vi_dom_endpoint() - an endpoint attached to @dom (the first found). */
bool vi_dom_endpoint(struct viommu_virtio_iommu *vi, uint32_t dom,
		     uint32_t *ep);
/* vi_teardown() - detach every endpoint, destroy every domain (reset). */
void vi_teardown(struct viommu_virtio_iommu *vi);

/* ---- iommu_table.c -------------------------------------------------- */

/* vt_type() - whether @type is a negotiated handover request. */
bool vt_type(const struct viommu_virtio_iommu *vi, uint8_t type);
/*
 * vt_request() - read and run handover request @type of chain @e (its
 * writable part is the 4-byte tail).  Return: the status; *@rule names
 * the refused rule.
 */
uint8_t vt_request(struct viommu_virtio_iommu *vi, struct vq *vq,
		   const struct vq_elem *e, uint8_t type, const char **rule);
/* vt_dom_free() - destroy table domain @t (NESTED, then stage 2). */
int vt_dom_free(struct viommu_virtio_iommu *vi, struct vtab *t);
/* vt_map_target() - the stage 2 MAP/UNMAP edit, or NULL (V15). */
struct viommu_domain *vt_map_target(const struct vtab *t);
/* vt_probe_props() - append the table properties; bytes written. */
size_t vt_probe_props(struct viommu_virtio_iommu *vi, uint8_t *buf,
		      size_t room);
/* vt_ep_left() - endpoint @ep left domain @dom: drop its V33 PASIDs. */
void vt_ep_left(struct viommu_virtio_iommu *vi, uint32_t ep, uint32_t dom);
/* vt_teardown() - drop every PASID binding and page request (reset). */
void vt_teardown(struct viommu_virtio_iommu *vi);
/* vt_settings() - the handover parameters of @cfg.  Return: 0; -EINVAL. */
int vt_settings(struct viommu_virtio_iommu *vi,
		const struct viommu_virtio_iommu_config *cfg);

/* ---- iommu_pri.c ---------------------------------------------------- */

struct vi_req_page_resp;
/* vt_pri_alloc() / vt_pri_free() - the group table and request ring. */
int vt_pri_alloc(struct viommu_virtio_iommu *vi);
void vt_pri_free(struct viommu_virtio_iommu *vi);
/* vt_pri_reset() - answer every group FAILURE, drop queued requests. */
void vt_pri_reset(struct viommu_virtio_iommu *vi);
/* vt_pri_forget() - answer FAILURE the groups of (@ep, @pasid). */
void vt_pri_forget(struct viommu_virtio_iommu *vi, uint32_t ep,
		   uint32_t pasid);
/* vt_page_resp() - PAGE_RESP (V23-V26). */
uint8_t vt_page_resp(struct viommu_virtio_iommu *vi,
		     const struct vi_req_page_resp *q, const char **rule);
/* vt_ext_events() - whether events use the 48-byte layout (V20). */
bool vt_ext_events(const struct viommu_virtio_iommu *vi);
/* vt_prq_pending() - whether page requests wait for a buffer. */
bool vt_prq_pending(const struct viommu_virtio_iommu *vi);
/*
 * vt_prq_send() - write the oldest page request into @e.
 * Return: used length (48), or 0 if the buffer was unusable.
 */
uint32_t vt_prq_send(struct viommu_virtio_iommu *vi, struct vq *vq,
		     const struct vq_elem *e);
/* vt_fault_encode() - the 48-byte form of core fault @f (V21). */
struct vi_event_ext;
void vt_fault_encode(const struct viommu_fault *f, uint8_t reason,
		     uint32_t flags, struct vi_event_ext *w);

#endif /* VIOMMU_VIRTIO_IOMMU_INTERNAL_H */
