/*
 * iommu.c - the virtio-iommu device model (VIRTIO 1.3 §5.13, device ID 23)
 * on the translation core: its life cycle (creation from a config,
 * feature negotiation, configuration space, reset, destruction) and the
 * public calls.  docs/VIRTIO-IOMMU.md lists the spec's device rules
 * D1-D37 and how each is met.
 *
 * The model's files, by concept:
 *   iommu.c        life cycle, configuration space, bypass, public calls
 *   iommu_req.c    the request queue: parse, run, reply, account
 *   iommu_dom.c    domain and attachment bookkeeping, the MSI window
 *   iommu_event.c  fault reports: the backlog and the event queue
 *   iommu_table.c  page-table handover (ATTACH_TABLE, INVALIDATE)
 *   iommu_pri.c    page requests and PAGE_RESP
 * iommu_internal.h holds what they share.
 *
 * Concepts
 *  - The device embeds the device-side virtio core (virtio_dev.h): feature
 *    negotiation, status and queues are handled there, and this file only
 *    provides the hooks of struct vdev_ops.  Queue 0 is the request queue
 *    (iommu_req.c), queue 1 the event queue (iommu_event.c).
 *  - Bypass.  The effective state for unattached endpoints is config.bypass
 *    when BYPASS_CONFIG is offered (whether or not the driver accepted it,
 *    as the spec says), else off (legacy BYPASS is never offered); it is
 *    pushed into the core with viommu_ctx_set_bypass().  `bypass` survives
 *    device reset; system reset restores boot_bypass.
 *  - Events.  The device chains itself in front of the context's fault
 *    handler: a core fault becomes a virtio fault report queued in a
 *    bounded backlog (oldest dropped when full) and written into posted
 *    event buffers, one report per buffer, when the driver has posted some
 *    (on an event-queue notification, when a fault arrives, and at the end
 *    of every hook).  Destruction puts the embedder's handler back.
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
#include <string.h>

#include "base/util.h"
#include "virtio/iommu_internal.h"
#include "virtio/iommu_wire.h"
#include "virtio/virtio_dev.h"

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
		vi_process_requests(vi);
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
	if (!vi_has(vi, VIOMMU_VIRTIO_IOMMU_F_BYPASS_CONFIG)) {
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
	vi_teardown(vi);
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

	viommu_ctx_limits(vi->ctx, &lim, sizeof(lim));
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
	vi_teardown(vi);
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
			  struct viommu_virtio_iommu_stats *out, size_t size)
{
	struct viommu_virtio_iommu_stats st;

	if (!vi || !out || !size)
		return -EINVAL;
	pthread_mutex_lock(&vi->dev.lock);
	st = vi->st;
	pthread_mutex_lock(&vi->ev_lock);
	st.events_dropped = vi->ev_dropped;
	pthread_mutex_unlock(&vi->ev_lock);
	st.log_suppressed = rl_suppressed(&vi->rl) +
			    vdev_log_suppressed(&vi->dev);
	pthread_mutex_unlock(&vi->dev.lock);
	/* never write past what the caller has; what we lack reads as 0 */
	sized_out(out, size, &st, sizeof(st));
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
