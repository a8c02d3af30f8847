/*
 * test_virtio_iommu_fixture.h - shared set-up for the virtio-iommu
 * conformance tests.
 *
 * A fixture is 16 MiB of hva-backed guest RAM at GPA 0, a translation
 * context on it (no fault callback: the device takes the faults), the
 * endpoints 0, 8 and 9, a virtio-iommu device and the reference driver
 * (refdrv) owning 4 MiB of that RAM at VFX_DRV_GPA.  Options vary the
 * device configuration, the ring kind (split / packed, with or without
 * EVENT_IDX and INDIRECT_DESC), the driver's mode and features.
 *
 * Requests are built here byte by byte from the VIRTIO 1.3 layouts
 * (independently of the device's wire header and of refdrv) so that the
 * raw tests check the device against the spec text.  Helpers return the
 * device's status byte, or VFX_ERR when the transport failed.
 *
 * Everything is static inline so each test program takes what it uses.
 */
#ifndef VIOMMU_TEST_VIRTIO_IOMMU_FIXTURE_H
#define VIOMMU_TEST_VIRTIO_IOMMU_FIXTURE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <viommu/core.h>
#include <viommu/mem.h>
#include <viommu/virtio.h>
#include <viommu/virtio_iommu.h>

#include "refdrv/drvring.h"
#include "refdrv/virtio.h"

#define VFX_RAM_SIZE (16ull << 20)
#define VFX_DRV_GPA 0xc00000ull
#define VFX_DRV_SIZE (4ull << 20)
#define VFX_DATA 0x100000ull /* a free part of RAM for DMA targets */
#define VFX_PAGE 0x1000ull
#define VFX_ERR 0xee /* transport error in a helper */

/* Spec values (VIRTIO 1.3 §5.13), spelled out independently here. */
enum {
	T_ATTACH = 1, T_DETACH = 2, T_MAP = 3, T_UNMAP = 4, T_PROBE = 5,
};
enum {
	S_OK = 0, S_IOERR = 1, S_UNSUPP = 2, S_DEVERR = 3, S_INVAL = 4,
	S_RANGE = 5, S_NOENT = 6, S_FAULT = 7, S_NOMEM = 8,
};
#define F_INPUT_RANGE (1ull << 0)
#define F_DOMAIN_RANGE (1ull << 1)
#define F_MAP_UNMAP (1ull << 2)
#define F_BYPASS (1ull << 3)
#define F_PROBE (1ull << 4)
#define F_MMIO (1ull << 5)
#define F_BYPASS_CONFIG (1ull << 6)
#define F_ALL_DEV (F_INPUT_RANGE | F_DOMAIN_RANGE | F_MAP_UNMAP | F_PROBE | \
		   F_MMIO | F_BYPASS_CONFIG)
#define F_VERSION_1 (1ull << 32)
#define ATTACH_F_BYPASS 1u
#define MAP_R 1u
#define MAP_W 2u
#define MAP_MMIO 4u
#define FAULT_R_UNKNOWN 0
#define FAULT_R_DOMAIN 1
#define FAULT_R_MAPPING 2
#define FAULT_F_READ 1u
#define FAULT_F_WRITE 2u
#define FAULT_F_EXEC 4u
#define FAULT_F_ADDRESS 0x100u
#define RESV_T_RESERVED 0
#define RESV_T_MSI 1
#define CFG_PSM 0
#define CFG_IN_START 8
#define CFG_IN_END 16
#define CFG_DOM_START 24
#define CFG_DOM_END 28
#define CFG_PROBE_SIZE 32
#define CFG_BYPASS 36
#define MSI_START 0xfee00000ull
#define MSI_END 0xfeefffffull

/* Request lengths (readable part, head included). */
#define LEN_ATTACH 20u
#define LEN_DETACH 20u
#define LEN_MAP 36u
#define LEN_UNMAP 28u
#define LEN_PROBE 72u

/** struct vfx_ring - one ring configuration. */
struct vfx_ring {
	const char *name;
	bool packed, event_idx, indirect;
};

static const struct vfx_ring vfx_rings[] = {
	{ "split", false, false, false },
	{ "packed", true, false, false },
	{ "split+evidx+indirect", false, true, true },
	{ "packed+evidx+indirect", true, true, true },
};
#define VFX_NRINGS 4
/* Iterate @r over every ring configuration. */
#define FOR_EACH_RING(r) for (int r = 0; r < VFX_NRINGS; r++)

/** struct vfx_opts - what to vary (zeroed: defaults). */
struct vfx_opts {
	struct viommu_virtio_iommu_config dev; /* ctx, mem, log: filled in */
	struct viommu_limits limits;
	int ring;                  /* index into vfx_rings */
	enum refdrv_mode mode;
	uint64_t drv_features;     /* refdrv features_mask (0: all) */
	uint16_t queue_size;       /* refdrv queue size (0: default) */
	unsigned int event_buffers; /* 0: 8 unless no_events */
	bool no_events;            /* post no event buffer at init */
	bool no_driver;            /* device only */
	/* the embedder's fault callback on the context (the device chains) */
	void (*fault)(void *opaque, const struct viommu_fault *f);
	void *fault_opaque;
};

/** struct vfx - one fixture. */
struct vfx {
	uint8_t *ram;
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_virtio_iommu *vi;
	struct viommu_virtio_dev *dev;
	struct refdrv *drv;
	struct refdrv_info info;
	struct viommu_endpoint *ep0, *ep8, *ep9;
	unsigned long nwarn; /* device WARN/ERROR lines */
	char last_warn[512];
};

/* vfx_log_cb() - count the device's WARN and ERROR lines. */
static inline void vfx_log_cb(void *opaque, enum viommu_log_level level,
			      const char *line)
{
	struct vfx *f = opaque;

	if (level > VIOMMU_LOG_WARN)
		return;
	f->nwarn++;
	snprintf(f->last_warn, sizeof(f->last_warn), "%s", line);
	if (getenv("VFX_VERBOSE"))
		printf("#   log: %s\n", line);
}

static inline void vfx_fini(struct vfx *f);

/* vfx_ram() - create the memory object over a fresh, zeroed RAM. */
static inline int vfx_ram(struct vfx *f)
{
	struct viommu_mem_region r = { .gpa = 0, .size = VFX_RAM_SIZE,
				       .fd = -1 };
	int rc;

	f->ram = aligned_alloc(4096, VFX_RAM_SIZE);
	if (!f->ram)
		return -ENOMEM;
	memset(f->ram, 0, VFX_RAM_SIZE);
	r.hva = f->ram;
	rc = viommu_mem_create(NULL, &f->mem);
	if (!rc)
		rc = viommu_mem_set_regions(f->mem, &r, 1);
	return rc;
}

/* vfx_driver() - (re)create the reference driver with options @o. */
static inline int vfx_driver(struct vfx *f, const struct vfx_opts *o)
{
	const struct vfx_ring *rg = &vfx_rings[o ? o->ring : 0];
	struct refdrv_config dc = {
		.dev = f->dev,
		.ram = f->ram + VFX_DRV_GPA,
		.ram_gpa = VFX_DRV_GPA,
		.ram_size = VFX_DRV_SIZE,
		.packed = rg->packed,
		.event_idx = rg->event_idx,
		.indirect = rg->indirect,
		.event_buffers = 8,
		.log = { .fn = vfx_log_cb, .opaque = f,
			 .level = VIOMMU_LOG_WARN },
	};
	int rc;

	if (o) {
		dc.mode = o->mode;
		dc.features_mask = o->drv_features;
		dc.queue_size = o->queue_size;
		if (o->event_buffers)
			dc.event_buffers = o->event_buffers;
		if (o->no_events)
			dc.event_buffers = 0;
	}
	refdrv_destroy(f->drv);
	f->drv = NULL;
	rc = refdrv_create(&dc, &f->drv);
	if (!rc)
		refdrv_info(f->drv, &f->info);
	return rc;
}

/*
 * vfx_init() - build the fixture.  Return: 0 or the failing call's errno
 * (everything is torn down then).
 */
static inline int vfx_init(struct vfx *f, const struct vfx_opts *o)
{
	struct viommu_ctx_config cc = { 0 };
	struct viommu_virtio_iommu_config dc = { .size = sizeof(dc) };
	int rc;

	memset(f, 0, sizeof(*f));
	rc = vfx_ram(f);
	if (rc)
		goto fail;
	cc.mem = f->mem;
	if (o) {
		cc.limits = o->limits;
		cc.fault = o->fault;
		cc.fault_opaque = o->fault_opaque;
	}
	rc = viommu_ctx_create(&cc, &f->ctx);
	if (rc)
		goto fail;
	rc = viommu_endpoint_create(f->ctx, 0, &f->ep0);
	if (!rc)
		rc = viommu_endpoint_create(f->ctx, 8, &f->ep8);
	if (!rc)
		rc = viommu_endpoint_create(f->ctx, 9, &f->ep9);
	if (rc)
		goto fail;
	if (o)
		dc = o->dev;
	dc.size = sizeof(dc);
	dc.ctx = f->ctx;
	dc.mem = f->mem;
	dc.log = (struct viommu_log){ .fn = vfx_log_cb, .opaque = f,
				      .level = VIOMMU_LOG_WARN };
	rc = viommu_virtio_iommu_create(&dc, &f->vi);
	if (rc)
		goto fail;
	f->dev = viommu_virtio_iommu_dev(f->vi);
	if (!o || !o->no_driver)
		rc = vfx_driver(f, o);
	if (rc)
		goto fail;
	return 0;
fail:
	if (getenv("VFX_VERBOSE"))
		printf("#   vfx_init failed: %d\n", rc);
	vfx_fini(f);
	return rc;
}

/* vfx_fini() - tear the fixture down (driver, device, context, RAM). */
static inline void vfx_fini(struct vfx *f)
{
	refdrv_destroy(f->drv);
	viommu_virtio_iommu_destroy(f->vi);
	viommu_ctx_destroy(f->ctx);
	viommu_mem_destroy(f->mem);
	free(f->ram);
	memset(f, 0, sizeof(*f));
}

/* vfx_ring_opts() - default options over ring configuration @r. */
static inline struct vfx_opts vfx_ring_opts(int r)
{
	struct vfx_opts o;

	memset(&o, 0, sizeof(o));
	o.ring = r;
	return o;
}

/* ------------------------------------------------------------------ */
/* Typed requests through refdrv (status byte or VFX_ERR)             */

/*
 * vfx_done() - a helper's request is synchronous whatever the driver's
 * mode: commit it if it was only queued (its status byte is local).
 */
static inline uint8_t vfx_done(struct vfx *f, int rc, uint8_t *s)
{
	if (rc)
		return VFX_ERR;
	if (*s == REFDRV_S_PENDING && refdrv_commit(f->drv) < 0)
		return VFX_ERR;
	return *s;
}

static inline uint8_t vfx_attach(struct vfx *f, uint32_t dom, uint32_t ep,
				 uint32_t flags)
{
	uint8_t s = VFX_ERR;

	return vfx_done(f, refdrv_attach(f->drv, dom, ep, flags, &s), &s);
}

static inline uint8_t vfx_detach(struct vfx *f, uint32_t dom, uint32_t ep)
{
	uint8_t s = VFX_ERR;

	return vfx_done(f, refdrv_detach(f->drv, dom, ep, &s), &s);
}

/* vfx_map() - MAP [va, last] -> pa (inclusive end, like the wire). */
static inline uint8_t vfx_map(struct vfx *f, uint32_t dom, uint64_t va,
			      uint64_t last, uint64_t pa, uint32_t flags)
{
	uint8_t s = VFX_ERR;

	return vfx_done(f, refdrv_map(f->drv, dom, va, pa, last - va + 1,
				       flags, &s), &s);
}

static inline uint8_t vfx_unmap(struct vfx *f, uint32_t dom, uint64_t va,
				uint64_t last)
{
	uint8_t s = VFX_ERR;

	return vfx_done(f, refdrv_unmap(f->drv, dom, va, last - va + 1, &s),
			&s);
}

/* ------------------------------------------------------------------ */
/* Raw requests, built from the spec layout                           */

static inline void vfx_put(uint8_t *p, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t vfx_get(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Fill @b (zeroed first) with a request; return its readable length. */
static inline uint32_t vfx_req_attach(uint8_t *b, uint32_t dom, uint32_t ep,
				      uint32_t flags)
{
	memset(b, 0, LEN_ATTACH);
	b[0] = T_ATTACH;
	vfx_put(b + 4, dom, 4);
	vfx_put(b + 8, ep, 4);
	vfx_put(b + 12, flags, 4);
	return LEN_ATTACH;
}

static inline uint32_t vfx_req_detach(uint8_t *b, uint32_t dom, uint32_t ep)
{
	memset(b, 0, LEN_DETACH);
	b[0] = T_DETACH;
	vfx_put(b + 4, dom, 4);
	vfx_put(b + 8, ep, 4);
	return LEN_DETACH;
}

static inline uint32_t vfx_req_map(uint8_t *b, uint32_t dom, uint64_t va,
				   uint64_t last, uint64_t pa, uint32_t flags)
{
	memset(b, 0, LEN_MAP);
	b[0] = T_MAP;
	vfx_put(b + 4, dom, 4);
	vfx_put(b + 8, va, 8);
	vfx_put(b + 16, last, 8);
	vfx_put(b + 24, pa, 8);
	vfx_put(b + 32, flags, 4);
	return LEN_MAP;
}

static inline uint32_t vfx_req_unmap(uint8_t *b, uint32_t dom, uint64_t va,
				     uint64_t last)
{
	memset(b, 0, LEN_UNMAP);
	b[0] = T_UNMAP;
	vfx_put(b + 4, dom, 4);
	vfx_put(b + 8, va, 8);
	vfx_put(b + 16, last, 8);
	return LEN_UNMAP;
}

static inline uint32_t vfx_req_probe(uint8_t *b, uint32_t ep)
{
	memset(b, 0, LEN_PROBE);
	b[0] = T_PROBE;
	vfx_put(b + 4, ep, 4);
	return LEN_PROBE;
}

/*
 * vfx_raw() - submit @req (@rlen bytes) with a @wlen-byte writable part;
 * the reply goes to @reply (>= @wlen bytes, optional).  Return: the used
 * length, or -1 on a transport error.
 */
static inline long vfx_raw(struct vfx *f, const void *req, uint32_t rlen,
			   uint32_t wlen, void *reply)
{
	uint32_t used = 0xdeadbeef;

	if (refdrv_raw(f->drv, req, rlen, wlen, reply, &used))
		return -1;
	return used;
}

/*
 * vfx_raw_status() - submit a request with a 4-byte tail and return the
 * status; checks the used length is exactly 4 and the tail's reserved
 * bytes are zero (D6), counting a failure otherwise (VFX_ERR returned).
 */
static inline uint8_t vfx_raw_status(struct vfx *f, const void *req,
				     uint32_t rlen)
{
	uint8_t t[4];
	long used = vfx_raw(f, req, rlen, 4, t);

	if (used != 4 || t[1] || t[2] || t[3]) {
		printf("#   raw reply: used %ld tail %02x %02x %02x %02x\n",
		       used, t[0], t[1], t[2], t[3]);
		return VFX_ERR;
	}
	return t[0];
}

/* vfx_all() - whether @n bytes at @p all equal @v. */
static inline bool vfx_all(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* Looking at the core and the device                                 */

/* vfx_dom() - the core domain endpoint @ep is attached to (or NULL). */
static inline struct viommu_domain *vfx_dom(struct viommu_endpoint *ep)
{
	struct viommu_domain *d = NULL;

	if (viommu_endpoint_domain(ep, VIOMMU_NO_PASID, &d))
		return NULL;
	return d;
}

#define VFX_MAX_MAPS 32
struct vfx_maps {
	unsigned int n;
	struct viommu_mapping m[VFX_MAX_MAPS];
};

static inline int vfx_maps_cb(void *opaque, const struct viommu_mapping *m)
{
	struct vfx_maps *l = opaque;

	if (l->n < VFX_MAX_MAPS)
		l->m[l->n] = *m;
	l->n++;
	return 0;
}

/* vfx_maps() - every mapping of @ep's domain (n = -1u if none/error). */
static inline struct vfx_maps vfx_maps(struct viommu_endpoint *ep)
{
	struct viommu_domain *d = vfx_dom(ep);
	struct vfx_maps l;

	memset(&l, 0, sizeof(l));
	if (!d || viommu_domain_for_each_mapping(d, 0, UINT64_MAX,
						 vfx_maps_cb, &l))
		l.n = -1u;
	return l;
}

/* vfx_has_map() - whether @l holds exactly [va, last] -> pa. */
static inline bool vfx_has_map(const struct vfx_maps *l, uint64_t va,
			       uint64_t last, uint64_t pa)
{
	for (unsigned int i = 0; i < l->n && i < VFX_MAX_MAPS; i++)
		if (l->m[i].iova == va && l->m[i].last == last &&
		    l->m[i].gpa == pa)
			return true;
	return false;
}

/* vfx_xlate() - GPA @ep reaches at @iova with @access, or ~0 (fault). */
static inline uint64_t vfx_xlate(struct viommu_endpoint *ep, uint64_t iova,
				 unsigned int access)
{
	struct viommu_xlate x;

	if (viommu_translate(ep, VIOMMU_NO_PASID, iova, 1, access, &x, NULL))
		return ~0ull;
	return x.gpa;
}

/* vfx_cfg() - @len bytes of config space at @off. */
static inline uint64_t vfx_cfg(struct vfx *f, uint32_t off, uint32_t len)
{
	uint8_t b[8] = { 0 };

	if (viommu_virtio_dev_config_read(f->dev, off, b, len))
		return ~0ull;
	return vfx_get(b, len);
}

/* vfx_stats() - the device's counters. */
static inline struct viommu_virtio_iommu_stats vfx_stats(struct vfx *f)
{
	struct viommu_virtio_iommu_stats s;

	memset(&s, 0, sizeof(s));
	viommu_virtio_iommu_stats(f->vi, &s, sizeof(s));
	return s;
}

/* vfx_ctx_domains() - PAGING domains alive in the context. */
static inline uint64_t vfx_ctx_domains(struct vfx *f)
{
	struct viommu_ctx_stats s;

	memset(&s, 0, sizeof(s));
	viommu_ctx_stats(f->ctx, &s, sizeof(s));
	return s.domains;
}

/* vfx_events() - poll up to @max fault reports. */
static inline int vfx_events(struct vfx *f, struct refdrv_fault *out,
			     unsigned int max)
{
	return refdrv_events_poll(f->drv, out, max);
}

/* vfx_info() - refresh and return the driver's info. */
static inline struct refdrv_info *vfx_info(struct vfx *f)
{
	refdrv_info(f->drv, &f->info);
	return &f->info;
}

#endif /* VIOMMU_TEST_VIRTIO_IOMMU_FIXTURE_H */
