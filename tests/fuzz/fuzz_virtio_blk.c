/*
 * fuzz_virtio_blk.c - libFuzzer target for the virtio-blk request path
 * (docs/VIRTIO-BLK.md) over a fuzzed IOMMU state.
 *
 * The input is a header byte choosing the set-up (ring kind, EVENT_IDX,
 * INDIRECT, read-only, two queues, no IOMMU at all), then a sequence of
 * operations, each an opcode byte and its arguments:
 *
 *   - map / unmap pages of the IOVA window (any of 64 IOVA pages onto any
 *     of the data pages, read, write or both), the ring pages included;
 *   - fill data pages with a pattern;
 *   - a request: a type (the known ones, unknown ones), a sector (small
 *     values and edges), 0-4 data segments each at any IOVA page, offset
 *     and length, readable or writable, header and status byte at fuzzed
 *     addresses, optionally through an indirect table;
 *   - inject faults; reset the device.
 *
 * Every request is kicked and waited for (one worker thread, so a run is
 * deterministic), then the target checks, abort()ing otherwise:
 *   - it completes or the device says DEVICE_NEEDS_RESET: never a hang;
 *   - a status byte is 0, 1 or 2; an OK IN's used length is its data + 1;
 *   - guest RAM outside the rings, the status byte and the bytes the
 *     request's writable segments translate to (for writing) is unchanged
 *     (no write outside the translated buffers);
 *   - an OK request's data segments all translate with the right
 *     permission, and a request with a data byte that does not gets no OK;
 *   - a reference model of the disk: an OK OUT or WRITE_ZEROES updates
 *     it, anything else leaves it (B9: a faulting write leaves the image
 *     untouched), and an OK IN whose destinations do not alias returns
 *     exactly the model's bytes.
 * Everything is created per input over a static guest RAM.  With
 * FUZZ_VIRTIO_BLK_TRACE set in the environment each request's outcome
 * is printed (to see what a corpus input exercises).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <viommu/viommu.h>

#include "refdrv/drvring.h"
#include "fuzz_vdev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WHO "fuzz_virtio_blk"
#define fail(...) vf_fail(WHO, __VA_ARGS__)

#define PAGE 4096u
#define RAM_GPA 0x10000000ull
#define RAM_SIZE (64u * PAGE)     /* pages 0-7 rings, 8-63 data */
#define RING_PAGES 8u
#define RING_BYTES (4u * PAGE)    /* per queue */
#define IOVA_BASE 0x100000000ull  /* 64 IOVA pages */
#define NIOVA 64u
#define QSIZE 16
#define CAP_SECTORS 128u
#define MAX_OPS 64
#define MAX_SEGS 4
#define EP_ID 3u

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static uint8_t before[RAM_SIZE];
static uint8_t may_change[RAM_SIZE];
static uint8_t model[CAP_SECTORS * 512];
static uint8_t src[MAX_SEGS * 8192];

struct fz {
	struct vdev_fuzz v; /* input, RAM, IOVA window (fuzz_vdev.h) */
	bool packed, evidx, indirect, ro;
	uint16_t nq;
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_domain *dom;
	struct viommu_endpoint *ep;
	struct viommu_virtio_blk *blk;
	struct viommu_virtio_dev *dev;
	struct drvring rings[2];
	uint64_t tok;
};

/* bus_of() - the bus address of RAM offset @off (rings live there). */
static uint64_t bus_of(const struct fz *z, uint64_t off)
{
	return (z->v.gpa ? RAM_GPA : IOVA_BASE) + off;
}

/* ------------------------------------------------------------------ */
/* Set-up                                                             */

static int driver_init(struct fz *z)
{
	uint8_t s = VIOMMU_VIRTIO_S_ACKNOWLEDGE | VIOMMU_VIRTIO_S_DRIVER;
	uint64_t f = viommu_virtio_dev_features(z->dev);

	if (!z->packed)
		f &= ~(1ull << VIOMMU_VIRTIO_F_RING_PACKED);
	if (!z->evidx)
		f &= ~(1ull << VIOMMU_VIRTIO_F_EVENT_IDX);
	if (!z->indirect)
		f &= ~(1ull << VIOMMU_VIRTIO_F_INDIRECT_DESC);
	if (viommu_virtio_dev_set_status(z->dev, 0) ||
	    viommu_virtio_dev_set_status(z->dev, s) ||
	    viommu_virtio_dev_set_driver_features(z->dev, f) ||
	    viommu_virtio_dev_set_status(z->dev,
					 s | VIOMMU_VIRTIO_S_FEATURES_OK))
		return -1;
	s |= VIOMMU_VIRTIO_S_FEATURES_OK;
	for (uint16_t q = 0; q < z->nq; q++) {
		struct viommu_virtio_queue_cfg cfg;

		if (drvring_init(&z->rings[q], ram + q * RING_BYTES,
				 bus_of(z, q * RING_BYTES), QSIZE, z->packed,
				 z->evidx, z->indirect))
			return -1;
		drvring_queue_cfg(&z->rings[q], &cfg);
		if (viommu_virtio_dev_queue_setup(z->dev, q, &cfg))
			return -1;
	}
	return viommu_virtio_dev_set_status(z->dev,
					    s | VIOMMU_VIRTIO_S_DRIVER_OK);
}

static int setup(struct fz *z, uint8_t h)
{
	struct viommu_mem_region reg = { .gpa = RAM_GPA, .size = RAM_SIZE,
					 .fd = -1, .hva = ram };
	struct viommu_ctx_config cc = { 0 };
	struct viommu_domain_config dc = { .kind = VIOMMU_DOMAIN_PAGING,
					   .tag = 1 };
	struct viommu_virtio_blk_config bc = { 0 };

	z->packed = h & 1;
	z->evidx = h & 2;
	z->indirect = h & 4;
	z->ro = h & 8;
	z->nq = h & 16 ? 2 : 1;
	z->v.gpa = (h & 0xe0) == 0xe0;
	z->v.ram = ram;
	z->v.ram_gpa = RAM_GPA;
	z->v.pages = RAM_SIZE / PAGE;
	z->v.ring_pages = RING_PAGES;
	z->v.iova_base = IOVA_BASE;
	z->v.niova = NIOVA;
	z->v.before = before;
	z->v.may_change = may_change;
	z->v.mc_lo = 0; /* whatever the last input marked */
	z->v.mc_hi = z->v.pages;
	memset(ram, 0, sizeof(ram));
	memset(model, 0, sizeof(model));
	if (viommu_mem_create(NULL, &z->mem) ||
	    viommu_mem_set_regions(z->mem, &reg, 1))
		return -1;
	cc.mem = z->mem;
	if (viommu_ctx_create(&cc, &z->ctx) ||
	    viommu_endpoint_create(z->ctx, EP_ID, &z->ep) ||
	    viommu_domain_create(z->ctx, &dc, &z->dom) ||
	    viommu_endpoint_attach(z->ep, VIOMMU_NO_PASID, z->dom))
		return -1;
	z->v.dom = z->dom;
	/* the rings' pages, one mapping each (op_ring() unmaps one) */
	for (uint32_t p = 0; p < RING_PAGES; p++)
		if (viommu_domain_map(z->dom, IOVA_BASE + p * PAGE,
				      IOVA_BASE + (p + 1) * PAGE - 1,
				      RAM_GPA + p * PAGE,
				      VIOMMU_READ | VIOMMU_WRITE))
			return -1;
	bc.size = sizeof(bc);
	bc.mem = z->mem;
	bc.ep = z->v.gpa ? NULL : z->ep;
	bc.capacity = CAP_SECTORS * 512;
	bc.read_only = z->ro;
	bc.num_queues = z->nq;
	bc.queue_size = QSIZE;
	bc.max_inflight = 4;
	bc.io_threads = 1;
	if (viommu_virtio_blk_create(&bc, &z->blk))
		return -1;
	z->dev = viommu_virtio_blk_dev(z->blk);
	vf_irq(WHO, z->dev);
	return driver_init(z);
}

static void teardown(struct fz *z)
{
	viommu_virtio_blk_destroy(z->blk);
	viommu_ctx_destroy(z->ctx);
	viommu_mem_destroy(z->mem);
}

/* ------------------------------------------------------------------ */
/* Operations                                                         */

static uint64_t pick_sector(struct fz *z)
{
	static const uint64_t edge[] = { 0, 1, CAP_SECTORS - 1, CAP_SECTORS,
					 CAP_SECTORS + 1, UINT64_MAX,
					 UINT64_MAX / 512, 1ull << 55 };
	uint8_t v = vf_next8(&z->v);

	return v & 0x80 ? edge[v & 7] : v % CAP_SECTORS;
}

static uint32_t pick_type(struct fz *z)
{
	static const uint32_t types[] = { 0, 1, 4, 8, 11, 13, 10, 14, 2, 99 };
	uint8_t v = vf_next8(&z->v);

	return v < 0xf0 ? types[v % 10] : vf_next_n(&z->v, 4);
}

/* mark_writable() - bytes a writable segment may change (B8). */
static void mark_writable(struct fz *z, uint64_t a, uint32_t len)
{
	while (len) {
		uint32_t c;
		long o = vf_xl_len(&z->v, a, len, VIOMMU_WRITE, &c);

		if (o >= 0)
			vf_may_change(&z->v, (uint32_t)o, c);
		a += c;
		len -= c;
	}
}

/* seg_ok() - whether every byte of a segment translates for @access. */
static bool seg_ok(struct fz *z, uint64_t a, uint32_t len,
		   unsigned int access)
{
	while (len) {
		uint32_t c;

		if (vf_xl_len(&z->v, a, len, access, &c) < 0)
			return false;
		a += c;
		len -= c;
	}
	return true;
}

struct req {
	uint32_t type;
	uint64_t sector;
	struct drvring_seg s[MAX_SEGS + 2];
	unsigned int nseg; /* data segments */
	bool indirect;
	uint16_t q;
};

/* read_src() - what the readable data segments hold now (the model's
 * view of an OUT's data or a DISCARD / WRITE_ZEROES segment list). */
static uint32_t read_src(struct fz *z, const struct req *r)
{
	uint32_t n = 0;

	for (unsigned int i = 1; i <= r->nseg; i++) {
		uint64_t a = r->s[i].gpa;
		uint32_t left = r->s[i].write ? 0 : r->s[i].len;

		while (left) {
			uint32_t c;
			long o = vf_xl_len(&z->v, a, left, VIOMMU_READ, &c);

			if (o < 0)
				memset(src + n, 0, c);
			else
				memcpy(src + n, ram + o, c);
			n += c;
			a += c;
			left -= c;
		}
	}
	return n;
}

/* check_in() - an OK IN read the model's bytes into its writable data
 * segments (readable ones after the header are ignored), where the
 * destinations do not alias. */
static void check_in(struct fz *z, const struct req *r, uint32_t used)
{
	uint64_t off = r->sector * 512;
	uint32_t dlen = 0;
	static uint8_t seen[RAM_SIZE];
	long so;

	for (unsigned int i = 1; i <= r->nseg; i++)
		dlen += r->s[i].write ? r->s[i].len : 0;
	if (used != dlen + 1)
		fail("IN used length %u, data %u", used, dlen);
	memset(seen, 0, sizeof(seen));
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned int i = 1; i <= r->nseg; i++) {
			uint64_t a = r->s[i].gpa;
			uint32_t left = r->s[i].write ? r->s[i].len : 0;

			while (left) {
				uint32_t c;
				long o = vf_xl_len(&z->v, a, left, VIOMMU_WRITE, &c);

				if (o < 0)
					fail("OK IN into an untranslatable "
					     "byte");
				for (uint32_t j = 0; j < c && !pass; j++)
					if (seen[o + j]++)
						return; /* aliased */
				if (pass && memcmp(ram + o, model + off, c))
					fail("IN returned bytes the disk does "
					     "not hold");
				off += pass ? c : 0;
				a += c;
				left -= c;
			}
		}
		so = vf_xl(&z->v, r->s[r->nseg + 1].gpa, VIOMMU_WRITE);
		if (!pass && so >= 0 && seen[so])
			return; /* the status byte overwrote data */
	}
}

/* apply() - the model's side of a completed request. */
static void apply(struct fz *z, const struct req *r, uint8_t status,
		  uint32_t used, uint32_t nsrc)
{
	if (getenv("FUZZ_VIRTIO_BLK_TRACE"))
		fprintf(stderr, "type %u sector %llu segs %u: status %u used "
			"%u\n", r->type, (unsigned long long)r->sector,
			r->nseg, status, used);
	if (status > 2)
		fail("status %u", status);
	if (status != 0)
		return;
	switch (r->type) {
	case 0:
		check_in(z, r, used);
		break;
	case 1:
		if (z->ro)
			fail("OK write on a read-only device");
		if (r->sector > CAP_SECTORS ||
		    nsrc > (CAP_SECTORS - r->sector) * 512 || nsrc % 512)
			fail("OK write outside the capacity");
		memcpy(model + r->sector * 512, src, nsrc);
		break;
	case 11:
	case 13:
		/* segments came from the source bytes captured before */
		for (uint32_t i = 0; i + 16 <= nsrc; i += 16) {
			uint64_t s;
			uint32_t n;

			memcpy(&s, src + i, 8);
			memcpy(&n, src + i + 8, 4);
			if (s > CAP_SECTORS || n > CAP_SECTORS - s)
				fail("OK discard/zeroes outside capacity");
			memset(model + s * 512, 0, (size_t)n * 512);
		}
		break;
	default:
		break;
	}
}

static void op_request(struct fz *z)
{
	struct req r = { 0 };
	uint8_t ctl = vf_next8(&z->v);
	uint8_t hdr[16] = { 0 };
	uint32_t used = 0, nsrc = 0;
	long ho, so;
	unsigned int n;
	bool data_ok = true;

	r.type = pick_type(z);
	r.sector = pick_sector(z);
	r.nseg = (ctl & 7) % (MAX_SEGS + 1);
	r.indirect = z->indirect && (ctl & 0x80);
	r.q = z->nq > 1 && (ctl & 0x40) ? 1 : 0;
	r.s[0] = (struct drvring_seg){ vf_pick_addr(&z->v), 16, false };
	for (unsigned int i = 1; i <= r.nseg; i++) {
		uint8_t f = vf_next8(&z->v);

		r.s[i].gpa = vf_pick_addr(&z->v);
		r.s[i].len = f & 0x80 ? (uint32_t)vf_next_n(&z->v, 2) & 0x1fff
				      : 512u * (1 + (f & 7));
		r.s[i].write = (r.type == 0 || r.type == 8) ^ !!(f & 0x40);
	}
	r.s[r.nseg + 1] = (struct drvring_seg){ vf_pick_addr(&z->v), 1, true };
	n = r.nseg + 2;
	/* the header, where it translates */
	memcpy(hdr, &r.type, 4);
	memcpy(hdr + 8, &r.sector, 8);
	for (unsigned int i = 0; i < 16; i++) {
		ho = vf_xl(&z->v, r.s[0].gpa + i, VIOMMU_READ);
		if (ho >= 0)
			ram[ho] = hdr[i];
	}
	if (r.type == 1 || r.type == 11 || r.type == 13)
		nsrc = read_src(z, &r);
	/* the data the device must translate: IN's writable segments, the
	 * readable ones after the header for OUT, DISCARD, WRITE_ZEROES */
	for (unsigned int i = 1; i <= r.nseg; i++)
		if (r.type == 0 ? r.s[i].write :
		    (r.type == 1 || r.type == 11 || r.type == 13) &&
		    !r.s[i].write)
			data_ok &= seg_ok(z, r.s[i].gpa, r.s[i].len,
					  r.s[i].write ? VIOMMU_WRITE
						       : VIOMMU_READ);
	if (vf_next8(&z->v) & 1) /* sometimes inject one fault */
		(void)viommu_virtio_blk_inject_faults(z->blk, 1);
	vf_snapshot(&z->v);
	for (unsigned int i = 1; i <= r.nseg + 1; i++)
		if (r.s[i].write)
			mark_writable(z, r.s[i].gpa, r.s[i].len);
	z->tok++;
	if (drvring_add(&z->rings[r.q], r.s, n, z->tok, r.indirect))
		return;
	(void)viommu_virtio_dev_notify(z->dev, r.q);
	if (!vf_wait_used(WHO, "request", &z->rings[r.q], z->dev,
			  z->tok, &used)) {
		if (getenv("FUZZ_VIRTIO_BLK_TRACE"))
			fprintf(stderr, "type %u: needs reset\n", r.type);
		(void)viommu_virtio_blk_inject_faults(z->blk, 0);
		vf_check_ram(WHO, &z->v);
		if (driver_init(z))
			fail("re-initialisation after needs reset failed");
		return;
	}
	(void)viommu_virtio_blk_inject_faults(z->blk, 0);
	vf_check_ram(WHO, &z->v);
	so = vf_xl(&z->v, r.s[r.nseg + 1].gpa, VIOMMU_WRITE);
	if (so < 0)
		fail("completed with an untranslatable status byte");
	if (ram[so] == 0 && !data_ok)
		fail("OK for a request whose data does not translate");
	apply(z, &r, ram[so], used, nsrc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz z;

	memset(&z, 0, sizeof(z));
	z.v.d = data;
	z.v.n = size;
	if (setup(&z, vf_next8(&z.v)))
		fail("set-up failed");
	for (int op = 0; op < MAX_OPS && z.v.pos < z.v.n; op++) {
		uint8_t o = vf_next8(&z.v);

		if (vf_op_window(&z.v, o))
			continue;
		if (o % 8 == 7) {
			if (driver_init(&z))
				fail("reset failed");
		} else { /* 4, 5 */
			op_request(&z);
		}
	}
	teardown(&z);
	return 0;
}
