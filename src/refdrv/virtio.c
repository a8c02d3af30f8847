/*
 * refdrv.c - the reference virtio-iommu guest driver (see refdrv.h).
 *
 * Concept: the driver owns a chunk of guest RAM laid out as
 *
 *   [request ring][event ring][request slots][event buffers][scratch]
 *
 * Each typed request (ATTACH, DETACH, MAP, UNMAP) takes one
 * REFDRV_SLOT_SIZE slot: its device-readable bytes at the slot's start and
 * its 4-byte tail at SLOT_TAIL.  The ring token of a request is its slot
 * number; PROBE and raw requests use the scratch area and RAW_TOKEN (one
 * at a time: they always commit).  Requests are encoded here from the
 * VIRTIO 1.3 text, byte by byte in little-endian, independently of the
 * device's own wire header, so that a layout mistake on either side shows.
 *
 * A commit kicks the request queue once (if the device asks), then drains
 * the used ring, completing each request: the reply's used length is
 * checked against the writable size, the status copied to the caller.
 * Event buffers are REFDRV_EVENT_SIZE bytes (REFDRV_EVENT_SIZE_EXT once
 * PAGE_REQ is negotiated: docs/VIRTIO-IOMMU-TABLES.md V20), token =
 * buffer number.
 */
#include <errno.h>
#include <string.h>

#include "base/bits.h"
#include "base/util.h"
#include "refdrv/drvring.h"
#include "refdrv/virtio.h"

/* Wire constants (VIRTIO 1.3 §5.13.6). */
#define T_ATTACH 1
#define T_DETACH 2
#define T_MAP 3
#define T_UNMAP 4
#define T_PROBE 5
#define TAIL_LEN 4u
#define PROBE_REQ_LEN 72u
#define PROP_RESV_MEM 1u
#define RESV_MEM_LEN 20u /* value bytes after the property header */
/* Config space offsets. */
#define CFG_PAGE_SIZE_MASK 0
#define CFG_INPUT_START 8
#define CFG_INPUT_END 16
#define CFG_DOMAIN_START 24
#define CFG_DOMAIN_END 28
#define CFG_PROBE_SIZE 32
#define CFG_BYPASS 36
/* Feature bits. */
#define F_RING_BITS                                                       \
	(BIT(VIOMMU_VIRTIO_F_INDIRECT_DESC) | BIT(VIOMMU_VIRTIO_F_EVENT_IDX) | \
	 BIT(VIOMMU_VIRTIO_F_RING_PACKED))
#define F_KNOWN                                                           \
	(BIT(VIOMMU_VIRTIO_F_VERSION_1) |                                  \
	 BIT(VIOMMU_VIRTIO_F_ACCESS_PLATFORM) |                            \
	 BIT(VIOMMU_VIRTIO_IOMMU_F_INPUT_RANGE) |                          \
	 BIT(VIOMMU_VIRTIO_IOMMU_F_DOMAIN_RANGE) |                         \
	 BIT(VIOMMU_VIRTIO_IOMMU_F_MAP_UNMAP) |                            \
	 BIT(VIOMMU_VIRTIO_IOMMU_F_PROBE) | BIT(VIOMMU_VIRTIO_IOMMU_F_MMIO) | \
	 BIT(VIOMMU_VIRTIO_IOMMU_F_BYPASS_CONFIG) |                        \
	 BIT(VIOMMU_VIRTIO_IOMMU_F_ATTACH_TABLE) |                         \
	 BIT(VIOMMU_VIRTIO_IOMMU_F_PAGE_REQ))

#define SLOT_TAIL 48u          /* tail offset inside a request slot */
#define EVENT_STRIDE 64u       /* event buffers are this far apart */
#define RAW_TOKEN 0x10000u     /* token of the PROBE / raw request */
#define RAW_TABLE_BYTES (REFDRV_RAW_MAX_SEGS * 16u)
#define SCRATCH_MIN 256u       /* scratch beyond probe_size + its table */
#define DEFAULT_QUEUE 64u
#define CFG_RETRIES 16

struct slot {
	uint8_t *status; /* the caller's status byte (may be NULL) */
	bool busy;
};

struct refdrv {
	struct refdrv_config cfg;
	struct viommu_virtio_dev *dev;
	uint8_t *ram;
	struct drvring rq, eq;
	uint64_t slots_off, events_off, scratch_off;

	struct slot slots[DRVRING_MAX_SIZE];
	uint16_t free_slots[DRVRING_MAX_SIZE];
	uint16_t nfree;
	bool ev_posted[DRVRING_MAX_SIZE];

	uint64_t domains[REFDRV_MAX_DOMAINS / 64];
	unsigned int inflight; /* typed and raw requests in the ring */
	unsigned int queued;   /* added since the last kick */
	int failed;            /* non-OK completions since refdrv_commit() */
	bool broken;
	uint32_t raw_used;

	struct refdrv_info info;
};

/* ------------------------------------------------------------------ */
/* Little-endian helpers                                              */

/* put_le() / get_le() - @bytes little-endian bytes at @p. */
static void put_le(uint8_t *p, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* align16() - @v rounded up to a multiple of 16. */
static uint64_t align16(uint64_t v)
{
	return (v + 15) & ~15ull;
}

/* ------------------------------------------------------------------ */
/* Device access                                                      */

/* irq_cb() - the device's interrupt hook: count, nothing else. */
static void irq_cb(void *opaque, uint8_t isr, uint16_t q)
{
	struct refdrv *drv = opaque;

	(void)q;
	/* Any thread may raise one (a DMA fault delivered to the eventq). */
	if (isr & VIOMMU_VIRTIO_ISR_QUEUE)
		__atomic_fetch_add(&drv->info.queue_irqs, 1, __ATOMIC_RELAXED);
	if (isr & VIOMMU_VIRTIO_ISR_CONFIG)
		__atomic_fetch_add(&drv->info.config_irqs, 1,
				   __ATOMIC_RELAXED);
}

/* cfg_read() - @len bytes of config space at @off, little-endian. */
static uint64_t cfg_read(struct refdrv *drv, uint32_t off, uint32_t len)
{
	uint8_t b[8] = { 0 };

	if (viommu_virtio_dev_config_read(drv->dev, off, b, len))
		return 0;
	return get_le(b, len);
}

/* add_status() - OR @bits into the device status. */
static void add_status(struct refdrv *drv, uint8_t bits)
{
	uint8_t s = viommu_virtio_dev_status(drv->dev);

	viommu_virtio_dev_set_status(drv->dev, (uint8_t)(s | bits));
}

/* kick() - notify queue @q if the ring says the device wants it. */
static void kick(struct refdrv *drv, uint16_t q)
{
	struct drvring *r = q ? &drv->eq : &drv->rq;

	if (!drvring_kick_needed(r))
		return;
	viommu_virtio_dev_notify(drv->dev, q);
	if (q)
		drv->info.event_kicks++;
	else
		drv->info.kicks++;
}

/* ------------------------------------------------------------------ */
/* Completion                                                         */

/* slot_hva() / slot_gpa() - where request slot @i lives. */
static uint8_t *slot_hva(struct refdrv *drv, unsigned int i)
{
	return drv->ram + drv->slots_off + (uint64_t)i * REFDRV_SLOT_SIZE;
}

static uint64_t slot_gpa(struct refdrv *drv, unsigned int i)
{
	return drv->cfg.ram_gpa + drv->slots_off +
	       (uint64_t)i * REFDRV_SLOT_SIZE;
}

/* scratch() - host address of the scratch area. */
static uint8_t *scratch(struct refdrv *drv)
{
	return drv->ram + drv->scratch_off;
}

/*
 * reply_status() - the status of a reply whose tail is at @tail, given
 * the used length and the writable size; counts bad lengths and non-zero
 * tail reserved bytes.
 */
static uint8_t reply_status(struct refdrv *drv, const uint8_t *tail,
			    uint32_t used, uint32_t wlen)
{
	if (used != wlen) {
		drv->info.bad_len++;
		return used ? REFDRV_S_BAD_LEN : REFDRV_S_NOT_WRITTEN;
	}
	if (tail[1] | tail[2] | tail[3])
		drv->info.tail_rsvd++;
	return tail[0];
}

/* count_status() - account one typed request's final status. */
static void count_status(struct refdrv *drv, uint8_t st)
{
	drv->info.requests++;
	if (st != VIOMMU_VI_S_OK) {
		drv->info.errors++;
		drv->failed++;
	}
}

/* complete() - the device used buffer @token with @len bytes. */
static void complete(struct refdrv *drv, uint64_t token, uint32_t len)
{
	struct slot *s;
	uint8_t st;

	drv->inflight--;
	if (token == RAW_TOKEN) {
		drv->raw_used = len;
		return;
	}
	s = &drv->slots[token];
	st = reply_status(drv, slot_hva(drv, (unsigned int)token) + SLOT_TAIL,
			  len, TAIL_LEN);
	count_status(drv, st);
	if (s->status)
		*s->status = st;
	s->status = NULL;
	s->busy = false;
	drv->free_slots[drv->nfree++] = (uint16_t)token;
}

/*
 * lose_all() - the driver gives up on what is in flight: statuses read
 * LOST and are forgotten (the caller's bytes may go away).
 */
static void lose_all(struct refdrv *drv)
{
	for (unsigned int i = 0; i < DRVRING_MAX_SIZE; i++) {
		if (drv->slots[i].busy && drv->slots[i].status)
			*drv->slots[i].status = REFDRV_S_LOST;
		drv->slots[i].status = NULL;
	}
}

/* fail() - mark the driver broken with one log line.  Return: -EIO. */
static int fail(struct refdrv *drv, const char *why)
{
	if (!drv->broken)
		log_warn(&drv->cfg.log,
			 "refdrv: %s (status 0x%x); reset needed", why,
			 viommu_virtio_dev_status(drv->dev));
	drv->broken = true;
	lose_all(drv);
	return -EIO;
}

/*
 * flush() - kick what was added and drain the used ring; every request in
 * flight must be complete afterwards (the device is synchronous).
 */
static int flush(struct refdrv *drv)
{
	uint64_t token;
	uint32_t len;
	int rc;

	if (drv->broken)
		return -EIO;
	if (drv->queued) {
		drv->queued = 0;
		kick(drv, 0);
	}
	while ((rc = drvring_get_used(&drv->rq, &token, &len)) == 0)
		complete(drv, token, len);
	if (rc != -ENOENT)
		return fail(drv, "device used a buffer not in flight");
	if (drv->inflight)
		return fail(drv, "device left requests uncompleted");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Submission                                                         */

/* descs_per_req() - ring descriptors one 2-segment request takes. */
static unsigned int descs_per_req(const struct refdrv *drv)
{
	return drv->info.indirect ? 1 : 2;
}

/*
 * make_room() - commit what is queued when the ring lacks @descs free
 * descriptors or (@slot) no request slot is free.
 */
static int make_room(struct refdrv *drv, unsigned int descs, bool slot)
{
	if (drvring_num_free(&drv->rq) >= descs && (!slot || drv->nfree))
		return 0;
	return flush(drv);
}

/*
 * submit() - queue a typed request whose readable bytes are @req[0..@len)
 * with a 4-byte tail; commit it at once in STRICT mode.
 */
static int submit(struct refdrv *drv, const uint8_t *req, uint32_t len,
		  uint8_t *status)
{
	struct drvring_seg segs[2];
	unsigned int i;
	uint8_t *p;
	int rc;

	if (drv->broken)
		return -EIO;
	if (status)
		*status = REFDRV_S_PENDING;
	rc = make_room(drv, descs_per_req(drv), true);
	if (rc)
		return rc;
	i = drv->free_slots[--drv->nfree];
	p = slot_hva(drv, i);
	memcpy(p, req, len);
	memset(p + SLOT_TAIL, REFDRV_POISON, TAIL_LEN);
	segs[0] = (struct drvring_seg){ slot_gpa(drv, i), len, false };
	segs[1] = (struct drvring_seg){ slot_gpa(drv, i) + SLOT_TAIL,
					TAIL_LEN, true };
	rc = drvring_add(&drv->rq, segs, 2, i, drv->info.indirect);
	if (rc) {
		drv->free_slots[drv->nfree++] = (uint16_t)i;
		return fail(drv, "ring refused a request");
	}
	drv->slots[i] = (struct slot){ status, true };
	drv->inflight++;
	drv->queued++;
	if (drv->info.mode == REFDRV_STRICT)
		return flush(drv);
	return 0;
}

/*
 * submit_raw() - add @n segments as the one raw request (through @table
 * when given: an indirect table of the scratch area), commit everything
 * and return the used length.
 */
static int submit_raw(struct refdrv *drv, const struct drvring_seg *segs,
		      unsigned int n, bool ring_ind, bool table,
		      uint32_t *used)
{
	unsigned int descs = (ring_ind || table) ? 1 : n;
	uint64_t tgpa;
	int rc;

	if (drv->broken)
		return -EIO;
	rc = make_room(drv, descs, false);
	if (rc)
		return rc;
	if (drvring_num_free(&drv->rq) < descs)
		return -ENOSPC;
	if (table) {
		tgpa = drv->cfg.ram_gpa + drv->scratch_off +
		       drv->info.scratch_size;
		rc = drvring_add_indirect(&drv->rq, segs, n, RAW_TOKEN,
					  scratch(drv) + drv->info.scratch_size,
					  tgpa);
	} else {
		rc = drvring_add(&drv->rq, segs, n, RAW_TOKEN, ring_ind);
	}
	if (rc)
		return rc == -ENOSPC ? rc : -EINVAL;
	drv->inflight++;
	drv->queued++;
	rc = flush(drv);
	if (rc)
		return rc;
	*used = drv->raw_used;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Initialisation                                                     */

/* read_config() - the config fields, consistent per the generation. */
static void read_config(struct refdrv *drv)
{
	struct refdrv_info *in = &drv->info;
	uint64_t f = in->features;
	uint32_t gen;

	for (int i = 0; i < CFG_RETRIES; i++) {
		gen = viommu_virtio_dev_config_generation(drv->dev);
		in->page_size_mask = cfg_read(drv, CFG_PAGE_SIZE_MASK, 8);
		in->input_start = 0;
		in->input_end = UINT64_MAX;
		if (f & BIT(VIOMMU_VIRTIO_IOMMU_F_INPUT_RANGE)) {
			in->input_start = cfg_read(drv, CFG_INPUT_START, 8);
			in->input_end = cfg_read(drv, CFG_INPUT_END, 8);
		}
		in->domain_start = 0;
		in->domain_end = UINT32_MAX;
		if (f & BIT(VIOMMU_VIRTIO_IOMMU_F_DOMAIN_RANGE)) {
			in->domain_start =
				(uint32_t)cfg_read(drv, CFG_DOMAIN_START, 4);
			in->domain_end =
				(uint32_t)cfg_read(drv, CFG_DOMAIN_END, 4);
		}
		in->probe_size = 0;
		if (f & BIT(VIOMMU_VIRTIO_IOMMU_F_PROBE))
			in->probe_size =
				(uint32_t)cfg_read(drv, CFG_PROBE_SIZE, 4);
		in->bypass = (uint8_t)cfg_read(drv, CFG_BYPASS, 1);
		if (gen == viommu_virtio_dev_config_generation(drv->dev))
			break;
	}
	in->granule = in->page_size_mask & (~in->page_size_mask + 1);
}

/* pick_features() - what the driver accepts of what the device offers. */
static int pick_features(struct refdrv *drv, uint64_t *out)
{
	const struct refdrv_config *c = &drv->cfg;
	uint64_t offered = viommu_virtio_dev_features(drv->dev);
	uint64_t want = (c->features_mask ? c->features_mask : F_KNOWN) &
			~F_RING_BITS;
	uint64_t ring = 0;

	if (c->packed)
		ring |= BIT(VIOMMU_VIRTIO_F_RING_PACKED);
	if (c->event_idx)
		ring |= BIT(VIOMMU_VIRTIO_F_EVENT_IDX);
	if (c->indirect)
		ring |= BIT(VIOMMU_VIRTIO_F_INDIRECT_DESC);
	if ((offered & ring) != ring ||
	    !(offered & BIT(VIOMMU_VIRTIO_F_VERSION_1)) ||
	    !(offered & BIT(VIOMMU_VIRTIO_IOMMU_F_MAP_UNMAP)))
		return -EOPNOTSUPP;
	*out = (offered & want) | ring | BIT(VIOMMU_VIRTIO_F_VERSION_1);
	return 0;
}

/* queue_sizes() - the request and event queue sizes to use. */
static int queue_sizes(struct refdrv *drv, uint16_t *rq, uint16_t *eq)
{
	uint16_t m0 = viommu_virtio_dev_queue_max(drv->dev, 0);
	uint16_t m1 = viommu_virtio_dev_queue_max(drv->dev, 1);
	uint16_t s = drv->cfg.queue_size ? drv->cfg.queue_size
					 : (uint16_t)MIN(DEFAULT_QUEUE, m0);

	if (s == 0 || s > m0 || m1 == 0 ||
	    (!drv->cfg.packed && (s & (s - 1))))
		return -EINVAL;
	*rq = s;
	*eq = (uint16_t)MIN(s, m1);
	if (!drv->cfg.packed)
		while (*eq & (*eq - 1))
			*eq &= (uint16_t)(*eq - 1);
	return 0;
}

/* layout() - carve the chunk for queues of @qs / @es entries. */
static int layout(struct refdrv *drv, uint16_t qs, uint16_t es)
{
	bool p = drv->cfg.packed;
	uint64_t off, need;

	off = align16(drvring_bytes(qs, p)) + align16(drvring_bytes(es, p));
	drv->slots_off = off;
	off += (uint64_t)qs * REFDRV_SLOT_SIZE;
	drv->events_off = off;
	off += (uint64_t)es * EVENT_STRIDE;
	drv->scratch_off = off;
	need = off + align16((uint64_t)drv->info.probe_size + PROBE_REQ_LEN +
			     TAIL_LEN) + SCRATCH_MIN + RAW_TABLE_BYTES;
	if (need > drv->cfg.ram_size)
		return -ENOSPC;
	drv->info.scratch = drv->ram + drv->scratch_off;
	drv->info.scratch_gpa = drv->cfg.ram_gpa + drv->scratch_off;
	drv->info.scratch_size =
		(drv->cfg.ram_size - drv->scratch_off - RAW_TABLE_BYTES) &
		~15ull;
	return 0;
}

/* setup_queue() - lay ring @r out at @off and hand it to the device. */
static int setup_queue(struct refdrv *drv, struct drvring *r, uint16_t q,
		       uint64_t off, uint16_t size)
{
	struct viommu_virtio_queue_cfg qc;
	int rc;

	rc = drvring_init(r, drv->ram + off, drv->cfg.ram_gpa + off, size,
			  drv->info.packed, drv->info.event_idx,
			  drv->info.indirect);
	if (rc)
		return rc;
	drvring_queue_cfg(r, &qc);
	if (viommu_virtio_dev_queue_setup(drv->dev, q, &qc))
		return -EPROTO;
	return 0;
}

/* reset_state() - forget requests, slots, events and domains. */
static void reset_state(struct refdrv *drv)
{
	lose_all(drv);
	memset(drv->slots, 0, sizeof(drv->slots));
	memset(drv->ev_posted, 0, sizeof(drv->ev_posted));
	memset(drv->domains, 0, sizeof(drv->domains));
	drv->nfree = 0;
	drv->inflight = drv->queued = 0;
	drv->failed = 0;
	drv->broken = false;
}

/* negotiate() - steps 1-6 of §3.1.1: reset .. FEATURES_OK read back. */
static int negotiate(struct refdrv *drv)
{
	uint64_t feat;
	int rc;

	viommu_virtio_dev_set_status(drv->dev, 0);
	if (viommu_virtio_dev_status(drv->dev) != 0)
		return -EPROTO;
	add_status(drv, VIOMMU_VIRTIO_S_ACKNOWLEDGE);
	add_status(drv, VIOMMU_VIRTIO_S_DRIVER);
	rc = pick_features(drv, &feat);
	if (rc)
		return rc;
	if (viommu_virtio_dev_set_driver_features(drv->dev, feat))
		return -EPROTO;
	add_status(drv, VIOMMU_VIRTIO_S_FEATURES_OK);
	if (!(viommu_virtio_dev_status(drv->dev) & VIOMMU_VIRTIO_S_FEATURES_OK))
		return -EPROTO;
	drv->info.features = viommu_virtio_dev_driver_features(drv->dev);
	drv->info.packed = feat & BIT(VIOMMU_VIRTIO_F_RING_PACKED);
	drv->info.event_idx = feat & BIT(VIOMMU_VIRTIO_F_EVENT_IDX);
	drv->info.indirect = feat & BIT(VIOMMU_VIRTIO_F_INDIRECT_DESC);
	return 0;
}

/* ev_size() - bytes of each event buffer (V20: 48 with PAGE_REQ). */
static uint32_t ev_size(const struct refdrv *drv)
{
	return drv->info.features & BIT(VIOMMU_VIRTIO_IOMMU_F_PAGE_REQ) ?
		       REFDRV_EVENT_SIZE_EXT : REFDRV_EVENT_SIZE;
}

/* post_events() - post up to @n unposted event buffers; the count. */
static int post_events(struct refdrv *drv, unsigned int n)
{
	struct drvring_seg seg;
	int posted = 0;

	for (unsigned int e = 0; e < drv->info.event_queue_size && n; e++) {
		uint64_t off = drv->events_off + (uint64_t)e * EVENT_STRIDE;

		if (drv->ev_posted[e])
			continue;
		memset(drv->ram + off, REFDRV_POISON, ev_size(drv));
		seg = (struct drvring_seg){ drv->cfg.ram_gpa + off,
					    ev_size(drv), true };
		if (drvring_add(&drv->eq, &seg, 1, e, false))
			break;
		drv->ev_posted[e] = true;
		posted++;
		n--;
	}
	return posted;
}

/* init_device() - the whole initialisation sequence. */
static int init_device(struct refdrv *drv)
{
	uint16_t qs, es;
	int rc;

	reset_state(drv);
	rc = negotiate(drv);
	if (rc)
		goto failed;
	read_config(drv);
	rc = -EPROTO;
	if (drv->info.page_size_mask == 0)
		goto failed;
	rc = queue_sizes(drv, &qs, &es);
	if (!rc && drv->cfg.event_buffers > es)
		rc = -EINVAL;
	if (!rc)
		rc = layout(drv, qs, es);
	if (rc)
		goto failed;
	drv->info.queue_size = qs;
	drv->info.event_queue_size = es;
	rc = setup_queue(drv, &drv->rq, 0, 0, qs);
	if (!rc)
		rc = setup_queue(drv, &drv->eq, 1,
				 align16(drvring_bytes(qs, drv->info.packed)),
				 es);
	if (rc)
		goto failed;
	for (uint16_t i = 0; i < qs; i++)
		drv->free_slots[drv->nfree++] = (uint16_t)(qs - 1 - i);
	post_events(drv, drv->cfg.event_buffers);
	add_status(drv, VIOMMU_VIRTIO_S_DRIVER_OK);
	kick(drv, 1);
	return 0;
failed:
	add_status(drv, VIOMMU_VIRTIO_S_FAILED);
	drv->broken = true;
	log_warn(&drv->cfg.log, "refdrv: initialisation failed (%d)", rc);
	return rc;
}

/* check_config() - the parts of @cfg that can be checked up front. */
static bool check_config(const struct refdrv_config *cfg)
{
	return cfg && cfg->dev && cfg->ram && !(cfg->ram_gpa & 15) &&
	       !((uintptr_t)cfg->ram & 15) &&
	       cfg->ram_gpa + cfg->ram_size >= cfg->ram_gpa &&
	       (cfg->mode == REFDRV_STRICT || cfg->mode == REFDRV_BATCHED) &&
	       cfg->queue_size <= DRVRING_MAX_SIZE;
}

int refdrv_create(const struct refdrv_config *cfg, struct refdrv **out)
{
	struct refdrv *drv;
	int rc;

	if (!out || !check_config(cfg))
		return -EINVAL;
	drv = xzalloc(NULL, sizeof(*drv));
	if (!drv)
		return -ENOMEM;
	drv->cfg = *cfg;
	drv->dev = cfg->dev;
	drv->ram = cfg->ram;
	drv->info.mode = cfg->mode;
	viommu_virtio_dev_set_irq(drv->dev, irq_cb, drv);
	rc = init_device(drv);
	if (rc) {
		viommu_virtio_dev_set_irq(drv->dev, NULL, NULL);
		xfree(NULL, drv);
		return rc;
	}
	*out = drv;
	return 0;
}

void refdrv_destroy(struct refdrv *drv)
{
	if (!drv)
		return;
	lose_all(drv);
	viommu_virtio_dev_set_irq(drv->dev, NULL, NULL);
	viommu_virtio_dev_set_status(drv->dev, 0);
	xfree(NULL, drv);
}

int refdrv_reset(struct refdrv *drv)
{
	if (!drv)
		return -EINVAL;
	drv->info.resets++;
	return init_device(drv);
}

int refdrv_info(const struct refdrv *drv, struct refdrv_info *out)
{
	if (!drv || !out)
		return -EINVAL;
	*out = drv->info;
	out->queue_irqs = __atomic_load_n(&drv->info.queue_irqs,
					  __ATOMIC_RELAXED);
	out->config_irqs = __atomic_load_n(&drv->info.config_irqs,
					   __ATOMIC_RELAXED);
	return 0;
}

int refdrv_set_mode(struct refdrv *drv, enum refdrv_mode mode)
{
	if (!drv || (mode != REFDRV_STRICT && mode != REFDRV_BATCHED))
		return -EINVAL;
	drv->info.mode = mode;
	return mode == REFDRV_STRICT ? flush(drv) : (drv->broken ? -EIO : 0);
}

uint64_t refdrv_kicks(const struct refdrv *drv)
{
	return drv ? drv->info.kicks : 0;
}

struct drvring *refdrv_ring(struct refdrv *drv, uint16_t q)
{
	if (!drv || q > 1)
		return NULL;
	return q ? &drv->eq : &drv->rq;
}

/* ------------------------------------------------------------------ */
/* Domain IDs                                                         */

/* domain_span() - how many IDs of domain_range the allocator manages. */
static uint32_t domain_span(const struct refdrv *drv)
{
	uint64_t n = (uint64_t)drv->info.domain_end -
		     drv->info.domain_start + 1;

	if (drv->info.domain_end < drv->info.domain_start)
		return 0;
	return (uint32_t)MIN(n, (uint64_t)REFDRV_MAX_DOMAINS);
}

int refdrv_domain_alloc(struct refdrv *drv, uint32_t *domain)
{
	uint32_t n;

	if (!drv || !domain)
		return -EINVAL;
	n = domain_span(drv);
	for (uint32_t i = 0; i < n; i++) {
		if (drv->domains[i / 64] & BIT(i % 64))
			continue;
		drv->domains[i / 64] |= BIT(i % 64);
		*domain = drv->info.domain_start + i;
		return 0;
	}
	return -ENOSPC;
}

int refdrv_domain_free(struct refdrv *drv, uint32_t domain)
{
	uint32_t i;

	if (!drv)
		return -EINVAL;
	i = domain - drv->info.domain_start;
	if (domain < drv->info.domain_start || i >= domain_span(drv) ||
	    !(drv->domains[i / 64] & BIT(i % 64)))
		return -ENOENT;
	drv->domains[i / 64] &= ~BIT(i % 64);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */

/* head() - start a request of @type in @b (zeroed, @len bytes). */
static void head(uint8_t *b, size_t len, uint8_t type)
{
	memset(b, 0, len);
	b[0] = type;
}

int refdrv_attach(struct refdrv *drv, uint32_t domain, uint32_t endpoint,
		  uint32_t flags, uint8_t *status)
{
	uint8_t b[20];

	if (!drv)
		return -EINVAL;
	head(b, sizeof(b), T_ATTACH);
	put_le(b + 4, domain, 4);
	put_le(b + 8, endpoint, 4);
	put_le(b + 12, flags, 4);
	return submit(drv, b, sizeof(b), status);
}

int refdrv_detach(struct refdrv *drv, uint32_t domain, uint32_t endpoint,
		  uint8_t *status)
{
	uint8_t b[20];

	if (!drv)
		return -EINVAL;
	head(b, sizeof(b), T_DETACH);
	put_le(b + 4, domain, 4);
	put_le(b + 8, endpoint, 4);
	return submit(drv, b, sizeof(b), status);
}

int refdrv_map(struct refdrv *drv, uint32_t domain, uint64_t iova,
	       uint64_t phys, uint64_t size, uint32_t flags, uint8_t *status)
{
	uint8_t b[36];

	if (!drv || size == 0 || iova + (size - 1) < iova)
		return -EINVAL;
	head(b, sizeof(b), T_MAP);
	put_le(b + 4, domain, 4);
	put_le(b + 8, iova, 8);
	put_le(b + 16, iova + (size - 1), 8);
	put_le(b + 24, phys, 8);
	put_le(b + 32, flags, 4);
	return submit(drv, b, sizeof(b), status);
}

int refdrv_map_page(struct refdrv *drv, uint32_t domain, uint64_t iova,
		    uint64_t phys, uint32_t flags, uint8_t *status)
{
	if (!drv)
		return -EINVAL;
	return refdrv_map(drv, domain, iova, phys, drv->info.granule, flags,
			  status);
}

int refdrv_unmap(struct refdrv *drv, uint32_t domain, uint64_t iova,
		 uint64_t size, uint8_t *status)
{
	uint8_t b[28];

	if (!drv || size == 0 || iova + (size - 1) < iova)
		return -EINVAL;
	head(b, sizeof(b), T_UNMAP);
	put_le(b + 4, domain, 4);
	put_le(b + 8, iova, 8);
	put_le(b + 16, iova + (size - 1), 8);
	return submit(drv, b, sizeof(b), status);
}

int refdrv_unmap_page(struct refdrv *drv, uint32_t domain, uint64_t iova,
		      uint8_t *status)
{
	if (!drv)
		return -EINVAL;
	return refdrv_unmap(drv, domain, iova, drv->info.granule, status);
}

int refdrv_commit(struct refdrv *drv)
{
	int rc, n;

	if (!drv)
		return -EINVAL;
	rc = flush(drv);
	n = drv->failed;
	drv->failed = 0;
	return rc ? rc : n;
}

/* ------------------------------------------------------------------ */
/* PROBE                                                              */

/*
 * parse_props() - walk @psz bytes of properties at @p; RESV_MEM ones go
 * to @out (up to @max), their count to *@n.  Return: 0; -EBADMSG.
 */
static int parse_props(const uint8_t *p, uint32_t psz,
		       struct refdrv_resv *out, unsigned int max,
		       unsigned int *n)
{
	uint64_t off = 0;

	*n = 0;
	while (off + 4 <= psz) {
		uint16_t t = (uint16_t)get_le(p + off, 2);
		uint16_t len = (uint16_t)get_le(p + off + 2, 2);
		const uint8_t *v = p + off + 4;

		if ((t & 0xfff) == 0)
			break;
		if (off + 4 + len > psz)
			return -EBADMSG;
		if ((t >> 12) == 0 && (t & 0xfff) == PROP_RESV_MEM) {
			if (len < RESV_MEM_LEN)
				return -EBADMSG;
			if (*n < max)
				out[*n] = (struct refdrv_resv){
					v[0], get_le(v + 4, 8),
					get_le(v + 12, 8) };
			(*n)++;
		}
		off += 4 + (uint64_t)len;
	}
	return 0;
}

int refdrv_probe(struct refdrv *drv, uint32_t endpoint,
		 struct refdrv_resv *out, unsigned int max, unsigned int *n,
		 uint8_t *status)
{
	uint32_t psz, wlen, used = 0;
	struct drvring_seg segs[2];
	uint8_t *s, *w, st;
	int rc;

	if (!drv || !n || (!out && max))
		return -EINVAL;
	*n = 0;
	if (!(drv->info.features & BIT(VIOMMU_VIRTIO_IOMMU_F_PROBE)))
		return -EOPNOTSUPP;
	psz = drv->info.probe_size;
	wlen = psz + TAIL_LEN;
	s = scratch(drv);
	w = s + 128;
	head(s, PROBE_REQ_LEN, T_PROBE);
	put_le(s + 4, endpoint, 4);
	memset(w, REFDRV_POISON, wlen);
	segs[0] = (struct drvring_seg){ drv->info.scratch_gpa, PROBE_REQ_LEN,
					false };
	segs[1] = (struct drvring_seg){ drv->info.scratch_gpa + 128, wlen,
					true };
	rc = submit_raw(drv, segs, 2, drv->info.indirect, false, &used);
	if (rc)
		return rc;
	st = reply_status(drv, w + psz, used, wlen);
	count_status(drv, st);
	if (status)
		*status = st;
	if (st != VIOMMU_VI_S_OK)
		return 0;
	return parse_props(w, psz, out, max, n);
}

/* ------------------------------------------------------------------ */
/* Raw requests                                                       */

int refdrv_raw(struct refdrv *drv, const void *req, uint32_t req_len,
	       uint32_t write_len, void *reply, uint32_t *used_len)
{
	struct drvring_seg segs[2];
	uint64_t woff = align16(req_len);
	uint32_t used = 0;
	unsigned int n = 0;
	int rc;

	if (!drv || (req_len && !req) || (req_len == 0 && write_len == 0))
		return -EINVAL;
	if (woff + write_len > drv->info.scratch_size)
		return -EMSGSIZE;
	if (req_len) {
		memcpy(scratch(drv), req, req_len);
		segs[n++] = (struct drvring_seg){ drv->info.scratch_gpa,
						  req_len, false };
	}
	if (write_len) {
		memset(scratch(drv) + woff, REFDRV_POISON, write_len);
		segs[n++] = (struct drvring_seg){ drv->info.scratch_gpa + woff,
						  write_len, true };
	}
	rc = submit_raw(drv, segs, n, drv->info.indirect, false, &used);
	if (rc)
		return rc;
	if (reply && write_len)
		memcpy(reply, scratch(drv) + woff, write_len);
	if (used_len)
		*used_len = used;
	return 0;
}

int refdrv_raw_segs(struct refdrv *drv, const struct refdrv_seg *segs,
		    unsigned int n, unsigned int flags, uint32_t *used_len)
{
	struct drvring_seg ds[REFDRV_RAW_MAX_SEGS];
	bool table = flags & REFDRV_RAW_INDIRECT;
	uint32_t used = 0;
	int rc;

	if (!drv || !segs || n == 0 || n > REFDRV_RAW_MAX_SEGS ||
	    (flags & ~REFDRV_RAW_INDIRECT) || (table && !drv->info.indirect))
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++)
		ds[i] = (struct drvring_seg){ segs[i].gpa, segs[i].len,
					      segs[i].write };
	rc = submit_raw(drv, ds, n, false, table, &used);
	if (rc)
		return rc;
	if (used_len)
		*used_len = used;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Bypass and events                                                  */

int refdrv_set_bypass(struct refdrv *drv, bool bypass)
{
	uint8_t v = bypass ? 1 : 0;

	if (!drv)
		return -EINVAL;
	if (!(drv->info.features & BIT(VIOMMU_VIRTIO_IOMMU_F_BYPASS_CONFIG)))
		return -EOPNOTSUPP;
	if (viommu_virtio_dev_config_write(drv->dev, CFG_BYPASS, &v, 1))
		return -EIO;
	return cfg_read(drv, CFG_BYPASS, 1) == v ? 0 : -EIO;
}

int refdrv_events_post(struct refdrv *drv, unsigned int n)
{
	int posted;

	if (!drv)
		return -EINVAL;
	if (drv->broken)
		return -EIO;
	posted = post_events(drv, n);
	kick(drv, 1);
	return posted;
}

/* decode_fault() - event buffer @e, used with @len bytes, into @f. */
static void decode_fault(struct refdrv *drv, unsigned int e, uint32_t len,
			 struct refdrv_fault *f)
{
	const uint8_t *p = drv->ram + drv->events_off +
			   (uint64_t)e * EVENT_STRIDE;

	f->reason = p[0];
	memcpy(f->rsvd, p + 1, 3);
	f->flags = (uint32_t)get_le(p + 4, 4);
	f->endpoint = (uint32_t)get_le(p + 8, 4);
	f->rsvd1 = (uint32_t)get_le(p + 12, 4);
	f->address = get_le(p + 16, 8);
	f->used_len = len;
	memcpy(f->raw, p, ev_size(drv));
}

/*
 * take_events() - move up to @max used event buffers into @out.
 * Return: how many; -EIO (the device used a buffer that was not posted).
 */
static int take_events(struct refdrv *drv, struct refdrv_fault *out,
		       unsigned int max)
{
	unsigned int n = 0;
	uint64_t token;
	uint32_t len;
	int rc = 0;

	while (n < max &&
	       (rc = drvring_get_used(&drv->eq, &token, &len)) == 0) {
		if (token >= drv->info.event_queue_size ||
		    !drv->ev_posted[token])
			return fail(drv, "bad event buffer token");
		decode_fault(drv, (unsigned int)token, len, &out[n++]);
		drv->ev_posted[token] = false;
		drv->info.events++;
	}
	if (rc && rc != -ENOENT)
		return fail(drv, "device used an unposted event buffer");
	return (int)n;
}

int refdrv_events_poll(struct refdrv *drv, struct refdrv_fault *out,
		       unsigned int max)
{
	unsigned int count = 0;
	int round;

	if (!drv || (!out && max))
		return -EINVAL;
	if (drv->broken)
		return -EIO;
	if (max == 0)
		return 0;
	do {
		round = take_events(drv, out + count, max - count);
		if (round < 0)
			return round;
		count += (unsigned int)round;
		if (round) {
			post_events(drv, (unsigned int)round);
			kick(drv, 1);
		}
	} while (round && count < max);
	return (int)count;
}
