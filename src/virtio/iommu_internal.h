/*
 * iommu_internal.h - what the two halves of the virtio-iommu device model
 * share: iommu.c (requests, domains, hooks, creation) and iommu_event.c
 * (the fault backlog and the event queue).  Not part of the public API.
 */
#ifndef VIOMMU_VIRTIO_IOMMU_INTERNAL_H
#define VIOMMU_VIRTIO_IOMMU_INTERNAL_H

#include <viommu/virtio_iommu.h>

#include <pthread.h>
#include <stdbool.h>

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

/* A virtio domain: its core domain, kind and the endpoints it holds. */
struct vdom {
	uint32_t id; /* sort key: must stay first */
	uint32_t nep;
	bool bypass;
	struct viommu_domain *dom;
};

/* An endpoint attached through the device, and to which virtio domain. */
struct vatt {
	uint32_t ep; /* sort key: must stay first */
	uint32_t dom;
};

/* A sorted array of records keyed by their first uint32_t, bounded. */
struct sarr {
	void *v;
	size_t esz;
	uint32_t n, cap, max;
	uint32_t hint; /* index sarr_find() found last (checked before use) */
};

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
	struct sarr doms, atts;
	uint8_t *probe_buf;       /* probe_size + tail */
	struct viommu_resv *resv; /* scratch, nresv entries */
	unsigned int nresv;
	struct viommu_virtio_iommu_stats st;
	void (*trace)(void *opaque, uint8_t type, uint8_t status,
		      const char *line);
	void *trace_opaque;

	/* Which thread runs a hook (see the lock comment above). */
	pthread_t owner;
	int owned;

	/* Fault backlog, under ev_lock. */
	pthread_mutex_t ev_lock;
	struct viommu_fault *ev;
	uint32_t ev_cap, ev_head, ev_count;
	uint64_t ev_dropped;
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

/* vi_ev_clear() - drop every queued report (device reset; iommu_event.c). */
void vi_ev_clear(struct viommu_virtio_iommu *vi);

/* vi_fault_cb() - the context's fault callback (iommu_event.c). */
void vi_fault_cb(void *opaque, const struct viommu_fault *fault);

#endif /* VIOMMU_VIRTIO_IOMMU_INTERNAL_H */
