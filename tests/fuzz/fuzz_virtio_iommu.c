/*
 * fuzz_virtio_iommu.c - libFuzzer target for the virtio-iommu device fed
 * arbitrary request bytes through the reference driver.
 *
 * The input is a two-byte header choosing the device and driver set-up
 * (ring kind, granule, input and domain ranges, probe size, boot bypass,
 * MSI region, which features the driver accepts), then a sequence of
 * operations, each an opcode byte followed by its arguments:
 *
 *   - a typed request (ATTACH/DETACH/MAP/UNMAP/PROBE) whose fields come
 *     from small tables (domains 0-3, endpoints 0, 1, 8, 9 and unknown
 *     ones, granule-sized IOVAs plus edge values), with an occasional
 *     reserved byte, unknown flag, wrong length or wrong type;
 *   - a request of raw bytes: any type, any body, any writable length;
 *   - a request split into arbitrary descriptors (raw_segs), possibly in
 *     the wrong order or outside guest RAM;
 *   - a config-space write, a device reset or a system reset;
 *   - endpoint DMA (translate or read), then a poll of the event queue;
 *   - a burst: ATTACH then a run of MAPs, to reach the core's limits.
 *
 * After each request the target checks what must always hold and calls
 * abort() otherwise:
 *   - the used length is 0 or exactly the writable size; with 0 the
 *     writable bytes are untouched; unknown types are never written;
 *   - a written reply has a status 0..8 and zeroed tail reserved bytes;
 *     a PROBE reply's properties follow D31/D33/D34;
 *   - a refused (non-OK or unwritten) request changed nothing: the state
 *     signature (each endpoint's domain and each domain's mappings) is
 *     the same before and after;
 *   - an accepted ATTACH attached, DETACH detached, MAP made the range
 *     translate, UNMAP left nothing overlapping its range;
 *   - every mapping is granule-aligned, inside input_range and clear of
 *     the endpoints' reserved regions, and every paging domain's tag lies
 *     in domain_range;
 *   - the driver only loses requests when the device says NEEDS_RESET;
 *   - fault reports have zeroed reserved fields, known flags, a valid
 *     endpoint ID and are 24 bytes long.
 *
 * Everything is created per input over a static 1 MiB guest RAM.
 *
 * Two check levels (docs/FUZZING.md).  The full one (fuzz_virtio_iommu_full
 * and the replay program) does all of the above for every request.  The
 * fast one (-DFUZZ_FAST: fuzz_virtio_iommu, what CI runs) checks every
 * reply, every accepted request's effect and every refused request's
 * effect on the attachments and on each domain's mapping count and mapped
 * bytes; the exact mapping contents (a refused request left every
 * mapping as it was) and the whole-state invariants are checked on every
 * FAST_FULL_EVERY-th request and at the end of the input.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <viommu/core.h>
#include <viommu/mem.h>
#include <viommu/virtio.h>
#include <viommu/virtio_iommu.h>

#include "refdrv/virtio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_SIZE (1u << 20)
#define DRV_GPA 0x80000ull
#define DRV_SIZE 0x40000ull
#define MAX_OPS 128
#define NEPS 4
#define MAX_W 2048 /* largest writable part tried */
#define MAX_R 256  /* largest readable part tried */
#define POISON REFDRV_POISON
#define FAST_FULL_EVERY 8 /* fast mode: deep checks every N requests */

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));

static const uint32_t ep_ids[NEPS] = { 0, 1, 8, 9 };

/* One fuzzing run. */
struct fz {
	const uint8_t *d;
	size_t n, pos;
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_virtio_iommu *vi;
	struct viommu_virtio_dev *dev;
	struct refdrv *drv;
	struct refdrv_info info;
	struct viommu_endpoint *ep[NEPS];
	uint64_t gmask, in_start, in_end;
	uint32_t dom_start, dom_end, probe_size;
	int op;
	unsigned int nreq; /* requests submitted */
	bool deep;         /* this request gets the deep checks */
};

/* ------------------------------------------------------------------ */
/* Input and failure                                                  */

static uint8_t next8(struct fz *z)
{
	return z->pos < z->n ? z->d[z->pos++] : 0;
}

static uint64_t next_n(struct fz *z, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v |= (uint64_t)next8(z) << (8 * i);
	return v;
}

static void put(uint8_t *p, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static bool all(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* fail() - report a broken invariant and abort. */
static void __attribute__((noreturn, format(printf, 2, 3)))
fail(struct fz *z, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_virtio_iommu: op %d (input byte %zu): ", z->op,
		z->pos);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* ------------------------------------------------------------------ */
/* State signature and invariants                                     */

struct dom_sig {
	struct viommu_domain *dom;
	uint64_t mappings, bytes, sum;
};

struct sig {
	struct viommu_domain *ep_dom[NEPS];
	struct dom_sig dom[NEPS];
	uint8_t bypass;
};

static int sum_cb(void *opaque, const struct viommu_mapping *m)
{
	uint64_t *s = opaque;

	*s = *s * 31 + m->iova * 7 + m->last * 3 + m->gpa + m->prot;
	return 0;
}

/* signature() - what a refused request must not change. */
static void signature(struct fz *z, struct sig *s)
{
	struct viommu_domain_info di;

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < NEPS; i++) {
		struct viommu_domain *d = NULL;

		viommu_endpoint_domain(z->ep[i], VIOMMU_NO_PASID, &d);
		s->ep_dom[i] = d;
		s->dom[i].dom = d;
		if (!d || viommu_domain_kind(d) != VIOMMU_DOMAIN_PAGING)
			continue;
		memset(&di, 0, sizeof(di));
		viommu_domain_info(d, &di, sizeof(di));
		s->dom[i].mappings = di.mappings;
		s->dom[i].bytes = di.mapped_bytes;
		if (z->deep)
			viommu_domain_for_each_mapping(d, 0, UINT64_MAX, sum_cb,
						       &s->dom[i].sum);
	}
	viommu_virtio_dev_config_read(z->dev, 36, &s->bypass, 1);
}

struct mcheck {
	struct fz *z;
	struct viommu_resv resv[16];
	unsigned int nresv;
};

static int mapping_cb(void *opaque, const struct viommu_mapping *m)
{
	struct mcheck *c = opaque;
	struct fz *z = c->z;

	if ((m->iova & z->gmask) || ((m->last + 1) & z->gmask) ||
	    (m->gpa & z->gmask))
		fail(z, "mapping [%#" PRIx64 "-%#" PRIx64 "] -> %#" PRIx64
		     " not granule-aligned", m->iova, m->last, m->gpa);
	if (m->iova < z->in_start || m->last > z->in_end)
		fail(z, "mapping [%#" PRIx64 "-%#" PRIx64 "] outside "
		     "input_range", m->iova, m->last);
	for (unsigned int i = 0; i < c->nresv && i < 16; i++)
		if (m->iova <= c->resv[i].last && c->resv[i].start <= m->last)
			fail(z, "mapping [%#" PRIx64 "-%#" PRIx64 "] over a "
			     "reserved region", m->iova, m->last);
	return 0;
}

/* check_state() - invariants of the whole core state. */
static void check_state(struct fz *z)
{
	struct mcheck c = { .z = z };

	for (int i = 0; i < NEPS; i++) {
		struct viommu_domain *d = NULL;
		uint64_t tag;

		viommu_endpoint_domain(z->ep[i], VIOMMU_NO_PASID, &d);
		if (!d || viommu_domain_kind(d) != VIOMMU_DOMAIN_PAGING)
			continue;
		tag = viommu_domain_tag(d);
		if (tag < z->dom_start || tag > z->dom_end)
			fail(z, "domain %" PRIu64 " outside domain_range", tag);
		c.nresv = 0;
		viommu_endpoint_get_resv(z->ep[i], c.resv, 16, &c.nresv);
		viommu_domain_for_each_mapping(d, 0, UINT64_MAX, mapping_cb,
					       &c);
	}
}

/* ep_index() - the fixture slot of endpoint @id, or -1. */
static int ep_index(uint32_t id)
{
	for (int i = 0; i < NEPS; i++)
		if (ep_ids[i] == id)
			return i;
	return -1;
}

/* dom_of_tag() - a paging domain with tag @id some endpoint is in. */
static struct viommu_domain *dom_of_tag(struct fz *z, uint32_t id)
{
	for (int i = 0; i < NEPS; i++) {
		struct viommu_domain *d = NULL;

		viommu_endpoint_domain(z->ep[i], VIOMMU_NO_PASID, &d);
		if (d && viommu_domain_kind(d) == VIOMMU_DOMAIN_PAGING &&
		    viommu_domain_tag(d) == id)
			return d;
	}
	return NULL;
}

static int overlap_cb(void *opaque, const struct viommu_mapping *m)
{
	(void)opaque;
	(void)m;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Reply checks                                                       */

/* check_probe() - D31/D33/D34 on a PROBE reply's properties. */
static void check_probe(struct fz *z, const uint8_t *p, uint32_t psz)
{
	uint64_t st[32], en[32];
	uint32_t off = 0;
	unsigned int n = 0, msi = 0;

	while (off + 4 <= psz) {
		uint16_t t = (uint16_t)get(p + off, 2);
		uint16_t len = (uint16_t)get(p + off + 2, 2);

		if (t == 0)
			break;
		if (t != 1 || len != 20 || off + 4 + len > psz)
			fail(z, "probe property type %#x len %u at %u", t, len,
			     off);
		if (!all(p + off + 5, 3, 0) || p[off + 4] > 1)
			fail(z, "probe RESV_MEM subtype/reserved bytes");
		msi += p[off + 4];
		if (n < 32) {
			st[n] = get(p + off + 8, 8);
			en[n] = get(p + off + 16, 8);
			if (st[n] > en[n])
				fail(z, "probe region start > end");
			for (unsigned int i = 0; i < n; i++)
				if (st[i] <= en[n] && st[n] <= en[i])
					fail(z, "overlapping probe regions");
		}
		n++;
		off += 4 + len;
	}
	if (!all(p + off, psz - off, 0))
		fail(z, "probe properties tail not zero-filled");
	if (msi > 1)
		fail(z, "%u MSI regions", msi);
}

/*
 * check_reply() - the reply of a request of @type with @wlen writable
 * bytes at @w, used length @used.  Return: the status, or -1 when
 * unwritten.
 */
static int check_reply(struct fz *z, uint8_t type, uint32_t rlen,
		       const uint8_t *w, uint32_t wlen, uint32_t used)
{
	uint8_t st;

	if (used == 0) {
		if (!all(w, wlen, POISON))
			fail(z, "used length 0 but the buffer was written");
		return -1;
	}
	if (used != wlen)
		fail(z, "used length %u, writable %u", used, wlen);
	if (type < 1 || type > 5 || rlen < 4)
		fail(z, "type %u (readable %u) answered", type, rlen);
	if (wlen < 4)
		fail(z, "reply without room for a tail");
	st = w[wlen - 4];
	if (st > 8)
		fail(z, "status %u", st);
	if (!all(w + wlen - 3, 3, 0))
		fail(z, "tail reserved bytes not zero");
	if (type == 5 && st == 0) {
		if (wlen - 4 != z->probe_size)
			fail(z, "PROBE OK with %u bytes of properties",
			     wlen - 4);
		check_probe(z, w, wlen - 4);
	} else if (!all(w, wlen - 4, 0) && !all(w, wlen - 4, POISON)) {
		fail(z, "status %u reply wrote more than its tail", st);
	}
	return st;
}

/*
 * check_effect() - what an OK request must have done, and that a refused
 * one did nothing (@before is the signature taken before it).
 */
static void check_effect(struct fz *z, const uint8_t *req, uint32_t rlen,
			 int st, const struct sig *before)
{
	struct viommu_domain *d = NULL;
	struct sig after;
	uint32_t dom, ep;
	static const uint32_t size[6] = { 0, 20, 20, 36, 28, 72 };
	uint64_t va, last;
	int i;

	if (st != 0) {
		signature(z, &after);
		if (memcmp(before, &after, sizeof(after)))
			fail(z, "refused request (status %d) changed state",
			     st);
		return;
	}
	if (rlen < size[req[0]])
		fail(z, "type %u with %u readable bytes answered OK", req[0],
		     rlen);
	dom = (uint32_t)get(req + 4, 4);
	switch (req[0]) {
	case 1: /* ATTACH */
		ep = (uint32_t)get(req + 8, 4);
		i = ep_index(ep);
		if (i < 0)
			fail(z, "ATTACH of unknown endpoint %u OK", ep);
		viommu_endpoint_domain(z->ep[i], VIOMMU_NO_PASID, &d);
		if (!d || (get(req + 12, 4) & 1 ?
			   d != viommu_ctx_identity_domain(z->ctx) :
			   viommu_domain_tag(d) != dom))
			fail(z, "ATTACH OK but endpoint %u not in domain %u",
			     ep, dom);
		break;
	case 2: /* DETACH */
		i = ep_index((uint32_t)get(req + 8, 4));
		if (i < 0)
			fail(z, "DETACH of unknown endpoint OK");
		viommu_endpoint_domain(z->ep[i], VIOMMU_NO_PASID, &d);
		if (d)
			fail(z, "DETACH OK but endpoint still attached");
		break;
	case 3: /* MAP */
		va = get(req + 8, 8);
		if (get(req + 16, 8) < va)
			fail(z, "MAP with virt_end < virt_start accepted");
		d = dom_of_tag(z, dom);
		if (!d)
			fail(z, "MAP OK on domain %u with no endpoint", dom);
		if (viommu_domain_for_each_mapping(d, va, va, overlap_cb,
						   NULL) != 1)
			fail(z, "MAP OK but %#" PRIx64 " unmapped", va);
		break;
	case 4: /* UNMAP */
		va = get(req + 8, 8);
		last = get(req + 16, 8);
		d = dom_of_tag(z, dom);
		if (!d)
			fail(z, "UNMAP OK on domain %u with no endpoint", dom);
		if (viommu_domain_for_each_mapping(d, va, last, overlap_cb,
						   NULL))
			fail(z, "UNMAP OK but a mapping overlaps the range");
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Operations                                                         */

/* broken() - the driver lost requests: the device must say why. */
static void broken(struct fz *z, int rc)
{
	if (rc != -EIO)
		fail(z, "refdrv returned %d", rc);
	if (!(viommu_virtio_dev_status(z->dev) & VIOMMU_VIRTIO_S_NEEDS_RESET))
		fail(z, "requests lost without DEVICE_NEEDS_RESET");
	if (refdrv_reset(z->drv))
		fail(z, "refdrv_reset failed");
	refdrv_info(z->drv, &z->info);
}

/* submit() - send @req, check the reply and the effect. */
static void submit(struct fz *z, const uint8_t *req, uint32_t rlen,
		   uint32_t wlen)
{
	static uint8_t reply[MAX_W];
	uint32_t used = 0;
	struct sig before;
	int rc, st;

#ifdef FUZZ_FAST
	z->deep = z->nreq++ % FAST_FULL_EVERY == 0;
#else
	z->deep = true;
#endif
	signature(z, &before);
	rc = refdrv_raw(z->drv, req, rlen, wlen, reply, &used);
	if (rc) {
		broken(z, rc);
		return;
	}
	st = check_reply(z, rlen ? req[0] : 0, rlen, reply, wlen, used);
	if (rlen >= 4)
		check_effect(z, req, rlen, st, &before);
	if (z->deep)
		check_state(z);
}

/* pick_addr() - an IOVA or GPA from a small table or the input. */
static uint64_t pick_addr(struct fz *z)
{
	static const uint64_t edge[] = {
		0, 0xfee00000ull, 0xfeeff000ull, 0xffffffffull,
		(1ull << 48) - 0x1000, 1ull << 48, UINT64_MAX - 0xfff,
		0x80000, 0xff000,
	};
	uint8_t k = next8(z);

	if (k < 0xc0)
		return (uint64_t)(k & 0x3f) * (z->gmask + 1) *
		       (1 + (k >> 6));
	if (k < 0xf0)
		return edge[k % (sizeof(edge) / sizeof(edge[0]))];
	return next_n(z, 8);
}

/* op_typed() - a mostly well-formed request with tweaks. */
static void op_typed(struct fz *z, uint8_t op)
{
	uint8_t req[MAX_R];
	uint8_t type = (uint8_t)(1 + op % 5), tweak = next8(z);
	uint32_t rlen, wlen = 4;
	uint64_t va, size;

	memset(req, 0, sizeof(req));
	req[0] = type;
	put(req + 4, next8(z) & 3, 4); /* domain, or PROBE's endpoint */
	switch (type) {
	case 1:
	case 2:
		put(req + 8, ep_ids[next8(z) % NEPS] + (tweak & 0x80 ? 3 : 0),
		    4);
		if (type == 1)
			put(req + 12, next8(z) & 3 ? 0 : 1, 4);
		rlen = 20;
		break;
	case 3:
	case 4:
		va = pick_addr(z);
		size = (uint64_t)(1 + (next8(z) & 15)) * (z->gmask + 1);
		if (tweak & 0x40)
			size = next_n(z, 2);
		put(req + 8, va, 8);
		put(req + 16, va + size - 1, 8);
		if (type == 3) {
			put(req + 24, pick_addr(z), 8);
			put(req + 32, next8(z) & 7, 4);
		}
		rlen = type == 3 ? 36 : 28;
		break;
	default:
		put(req + 4, ep_ids[next8(z) % NEPS] + (tweak & 0x80 ? 3 : 0),
		    4);
		rlen = 72;
		wlen = z->probe_size + 4;
		break;
	}
	if ((tweak & 7) == 1)
		req[rlen - 1 - (next8(z) % 4)] |= 1; /* reserved / flags */
	if ((tweak & 7) == 2)
		rlen = next8(z) % (rlen + 1);
	if ((tweak & 7) == 3)
		wlen = next8(z) % (wlen + 8);
	if ((tweak & 7) == 4)
		req[1 + next8(z) % 3] = 0xff; /* head reserved: ignored */
	submit(z, req, rlen, wlen);
}

/*
 * op_burst() - attach an endpoint to a domain and map a run of granules
 * into it, so that domain and mapping limits (NOMEM) are reached.
 */
static void op_burst(struct fz *z)
{
	uint8_t req[36];
	uint32_t dom = next8(z) & 3, n = 1 + next8(z) % 16;
	uint64_t base = (uint64_t)(next8(z) & 0x3f) * (z->gmask + 1);

	memset(req, 0, sizeof(req));
	req[0] = 1;
	put(req + 4, dom, 4);
	put(req + 8, ep_ids[next8(z) % NEPS], 4);
	submit(z, req, 20, 4);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t va = base + (uint64_t)i * (z->gmask + 1);

		memset(req, 0, sizeof(req));
		req[0] = 3;
		put(req + 4, dom, 4);
		put(req + 8, va, 8);
		put(req + 16, va + z->gmask, 8);
		put(req + 24, va, 8);
		put(req + 32, 3, 4);
		submit(z, req, 36, 4);
	}
}

/* op_raw() - a request of arbitrary bytes. */
static void op_raw(struct fz *z)
{
	uint8_t req[MAX_R];
	uint32_t rlen = next8(z), wlen = next_n(z, 2) % MAX_W;

	rlen = rlen % MAX_R;
	memset(req, 0, sizeof(req));
	for (uint32_t i = 0; i < rlen; i++)
		req[i] = next8(z);
	if (rlen == 0 && wlen == 0)
		wlen = 4;
	submit(z, req, rlen, wlen);
}

/* op_segs() - a request split into arbitrary descriptors. */
static void op_segs(struct fz *z)
{
	struct refdrv_seg segs[8];
	uint8_t *s = z->info.scratch;
	uint64_t g = z->info.scratch_gpa;
	unsigned int n = 1 + next8(z) % 8, flags = 0;
	uint32_t off = 0, used = 0, wtot = 0;
	bool ordered = true, seen_w = false;
	int rc;

	for (unsigned int i = 0; i < n; i++) {
		uint8_t k = next8(z);

		segs[i].len = 1 + (k & 31);
		segs[i].write = k & 0x80;
		segs[i].gpa = g + off;
		if ((k & 0x60) == 0x60 && next8(z) == 0x5a)
			segs[i].gpa = 0x7000000000ull; /* outside RAM */
		for (uint32_t j = 0; j < segs[i].len; j++)
			s[off + j] = segs[i].write ? POISON : next8(z);
		off += segs[i].len;
		if (segs[i].write)
			wtot += segs[i].len;
		if (!segs[i].write && seen_w)
			ordered = false;
		seen_w |= segs[i].write;
	}
	if (z->info.indirect && (next8(z) & 1))
		flags = REFDRV_RAW_INDIRECT;
	rc = refdrv_raw_segs(z->drv, segs, n, flags, &used);
	if (rc == -ENOSPC)
		return;
	if (rc) {
		broken(z, rc);
		return;
	}
	if (!ordered)
		fail(z, "writable-then-readable chain accepted");
	if (used != 0 && used != wtot)
		fail(z, "raw_segs used %u of %u writable", used, wtot);
	check_state(z);
}

/* op_config() - a config-space write (only bypass 0/1 sticks). */
static void op_config(struct fz *z)
{
	uint8_t b[8], old = 0, now = 0;
	uint32_t off = next8(z) % 48, len = 1u << (next8(z) % 4);

	for (int i = 0; i < 8; i++)
		b[i] = next8(z) & 3;
	viommu_virtio_dev_config_read(z->dev, 36, &old, 1);
	viommu_virtio_dev_config_write(z->dev, off, b, len);
	viommu_virtio_dev_config_read(z->dev, 36, &now, 1);
	if (now > 1)
		fail(z, "bypass reads %u", now);
	if (now != old && (off != 36 || len != 1 || b[0] != now))
		fail(z, "bypass changed by a write of %u bytes at %u", len,
		     off);
}

/* op_reset() - device or system reset, then the driver's init. */
static void op_reset(struct fz *z)
{
	uint8_t old = 0, now = 0;
	bool system = next8(z) & 1;

	viommu_virtio_dev_config_read(z->dev, 36, &old, 1);
	if (system)
		viommu_virtio_dev_reset(z->dev);
	if (refdrv_reset(z->drv))
		fail(z, "refdrv_reset failed");
	refdrv_info(z->drv, &z->info);
	viommu_virtio_dev_config_read(z->dev, 36, &now, 1);
	if (!system && now != old)
		fail(z, "device reset changed bypass");
	for (int i = 0; i < NEPS; i++) {
		struct viommu_domain *d = NULL;

		viommu_endpoint_domain(z->ep[i], VIOMMU_NO_PASID, &d);
		if (d)
			fail(z, "endpoint attached after reset");
	}
}

/* op_dma() - endpoint DMA, then read and check fault reports. */
static void op_dma(struct fz *z)
{
	struct refdrv_fault ev[8];
	struct viommu_xlate x;
	uint8_t buf[16];
	int i = next8(z) % NEPS, n;
	uint64_t iova = pick_addr(z);
	unsigned int acc = next8(z) & 1 ? VIOMMU_WRITE : VIOMMU_READ;

	if (acc == VIOMMU_READ)
		viommu_dma_read(z->ep[i], VIOMMU_NO_PASID, iova, buf, 16);
	else
		viommu_translate(z->ep[i], VIOMMU_NO_PASID, iova, 16, acc, &x,
				 NULL);
	n = refdrv_events_poll(z->drv, ev, 8);
	if (n < 0) {
		broken(z, n);
		return;
	}
	for (int k = 0; k < n; k++) {
		if (ev[k].used_len != 24 || !all(ev[k].rsvd, 3, 0) ||
		    ev[k].rsvd1 || ev[k].reason > 2 ||
		    (ev[k].flags & ~0x107u) || ep_index(ev[k].endpoint) < 0)
			fail(z, "fault report len %u reason %u flags %#x ep %u",
			     ev[k].used_len, ev[k].reason, ev[k].flags,
			     ev[k].endpoint);
	}
}

/* ------------------------------------------------------------------ */
/* Set-up                                                             */

/* setup() - memory, context, endpoints, device and driver from @h. */
static int setup(struct fz *z, uint8_t h0, uint8_t h1)
{
	static const uint64_t psm[4] = { 0x1000, 0x1, 0x10000, 0x201000 };
	static const uint32_t probe[4] = { 64, 128, 512, 256 };
	struct viommu_mem_region r = { .gpa = 0, .size = RAM_SIZE, .fd = -1,
				       .hva = ram };
	struct viommu_ctx_config cc = { 0 };
	struct viommu_virtio_iommu_config dc = { .size = sizeof(dc) };
	struct refdrv_config rc = { 0 };
	int ret;

	memset(ram + DRV_GPA, 0, DRV_SIZE);
	if (viommu_mem_create(NULL, &z->mem) ||
	    viommu_mem_set_regions(z->mem, &r, 1))
		return -1;
	cc.mem = z->mem;
	cc.limits.max_domains = 2;
	cc.limits.max_mappings_per_domain = 8;
	if (viommu_ctx_create(&cc, &z->ctx))
		return -1;
	for (int i = 0; i < NEPS; i++)
		if (viommu_endpoint_create(z->ctx, ep_ids[i], &z->ep[i]))
			return -1;
	dc.ctx = z->ctx;
	dc.mem = z->mem;
	dc.page_size_mask = psm[(h0 >> 2) & 3];
	dc.boot_bypass = h0 & 0x10;
	dc.no_msi_region = h0 & 0x20;
	if (h0 & 0x40) {
		dc.input_start = 0x10000;
		dc.input_end = 0xfffffffffull;
	}
	if (h0 & 0x80) {
		dc.domain_start = 2;
		dc.domain_end = 5;
	}
	dc.probe_size = probe[h1 & 3];
	dc.queue_size = 16;
	dc.event_backlog = 4;
	if (h1 & 0x80)
		dc.features = (1ull << VIOMMU_VIRTIO_IOMMU_F_MAP_UNMAP) |
			      (1ull << VIOMMU_VIRTIO_IOMMU_F_MMIO);
	if (viommu_virtio_iommu_create(&dc, &z->vi))
		return -1;
	z->dev = viommu_virtio_iommu_dev(z->vi);
	rc.dev = z->dev;
	rc.ram = ram + DRV_GPA;
	rc.ram_gpa = DRV_GPA;
	rc.ram_size = DRV_SIZE;
	rc.packed = h0 & 1;
	rc.event_idx = h0 & 2;
	rc.indirect = h0 & 2;
	rc.queue_size = (h1 & 4) ? 4 : 16;
	rc.event_buffers = (h1 >> 3) & 3;
	if (h1 & 0x20)
		rc.features_mask = (1ull << VIOMMU_VIRTIO_F_VERSION_1) |
				   (1ull << VIOMMU_VIRTIO_IOMMU_F_MAP_UNMAP) |
				   (1ull << VIOMMU_VIRTIO_IOMMU_F_PROBE);
	ret = refdrv_create(&rc, &z->drv);
	if (ret)
		return -1;
	refdrv_info(z->drv, &z->info);
	z->gmask = z->info.granule - 1;
	z->in_start = z->info.input_start;
	z->in_end = z->info.input_end;
	z->dom_start = z->info.domain_start;
	z->dom_end = z->info.domain_end;
	z->probe_size = z->info.probe_size;
	/* Without PROBE negotiated, the device's real probe_size is what a
	 * PROBE would need; it answers such requests unwritten anyway. */
	if (!z->probe_size)
		z->probe_size = dc.probe_size;
	return 0;
}

static void teardown(struct fz *z)
{
	refdrv_destroy(z->drv);
	viommu_virtio_iommu_destroy(z->vi);
	viommu_ctx_destroy(z->ctx);
	viommu_mem_destroy(z->mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz z;
	uint8_t h0, h1;

	memset(&z, 0, sizeof(z));
	z.d = data;
	z.n = size;
	h0 = next8(&z);
	h1 = next8(&z);
	if (setup(&z, h0, h1))
		fail(&z, "set-up failed");
	for (z.op = 0; z.op < MAX_OPS && z.pos < z.n; z.op++) {
		uint8_t op = next8(&z);

		switch (op >> 4) {
		case 0 ... 7:
			op_typed(&z, op);
			break;
		case 8:
		case 9:
			op_raw(&z);
			break;
		case 10:
			op_segs(&z);
			break;
		case 11:
			op_config(&z);
			break;
		case 12:
			op_reset(&z);
			break;
		case 15:
			op_burst(&z);
			break;
		default:
			op_dma(&z);
			break;
		}
	}
	check_state(&z); /* every level: the whole state at the end */
	teardown(&z);
	return 0;
}
