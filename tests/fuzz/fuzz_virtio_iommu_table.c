/*
 * fuzz_virtio_iommu_table.c - libFuzzer target for virtio-iommu page-table
 * handover (docs/VIRTIO-IOMMU-TABLES.md): ATTACH_TABLE, INVALIDATE and
 * PAGE_RESP requests, page requests from endpoints, hostile table
 * contents, endpoint DMA through guest tables.
 *
 * The input is a sequence of operations, an opcode byte then arguments:
 *   - ATTACH_TABLE built from small tables of good and bad values (domain,
 *     endpoint, TCR, TTBR0, flags, PASID) with an occasional stray byte;
 *   - INVALIDATE with fuzzed scope, flags, range and granule;
 *   - PAGE_RESP for a group from a small set, with fuzzed fields;
 *   - a page request from an endpoint (the PRI side);
 *   - a table edit: any 8-byte value written at any descriptor slot of the
 *     table pool (self references, pointers out of RAM, reserved bits);
 *   - endpoint DMA (read or write) through whatever is attached;
 *   - a plain ATTACH / DETACH / MAP (mode switching);
 *   - an event poll; a device reset;
 *   - a raw request of any type 6-8 with arbitrary bytes and lengths;
 *   - a PASID-table ATTACH_TABLE over a CD table in the pool, and an
 *     INVALIDATE CONFIG announcing a PASID (V31-V33).
 *
 * Checks (abort() on failure):
 *   - the used length is 0 or 4 (the tail), a written status is 0..8
 *     with zeroed reserved tail bytes (V5);
 *   - a refused request changed nothing: the attachment signature (RID
 *     and PASID domains of every endpoint) is the same before and after;
 *   - PAGE_RESP is accepted exactly when the model says its group is
 *     outstanding and complete, and then the endpoint collects that
 *     answer (V24); a page request is accepted only within the bounds
 *     (V27) and never past them;
 *   - every event is 48 bytes with zeroed reserved fields (V21, V22);
 *   - DMA never reaches outside guest RAM (the memory layer would fail)
 *     and never hangs (the walk is bounded, V12).
 *
 * Everything is created per input over a static 1 MiB guest RAM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <viommu/core.h>
#include <viommu/mem.h>
#include <viommu/virtio.h>
#include <viommu/virtio_iommu.h>

#include "refdrv/virtio.h"
#include "refdrv/virtio_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_SIZE (1u << 20)
#define DRV_GPA 0x80000ull
#define DRV_SIZE 0x40000ull
#define POOL_GPA 0x40000ull
#define POOL_SIZE 0x40000ull
#define DATA_GPA 0x10000ull
#define MAX_OPS 96
#define NEPS 3
#define NGRP 4
#define NPASID 3
#define PRI_GROUPS 3

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static const uint32_t ep_ids[NEPS] = { 8, 9, 1234 /* unknown */ };
static const uint32_t pasids[NPASID] = { 1, 77, 1u << 20 };

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint64_t u64(struct in *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)u8(in) << (8 * i);
	return v;
}

static void put(uint8_t *b, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static void die(const char *why)
{
	fprintf(stderr, "fuzz_virtio_iommu_table: %s\n", why);
	abort();
}

/* Model of one page request group: 0 none, 1 open, 2 sent, 3 answered. */
struct grp {
	int state;
	uint32_t ep;
};

struct run {
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_virtio_iommu *vi;
	struct refdrv *drv;
	struct refdrv_table *t;
	struct viommu_endpoint *eps[2];
	struct grp g[NEPS][NGRP];
};

/* sig() - the attachment signature. */
static uint64_t sig(struct run *r)
{
	uint64_t h = 1469598103934665603ull;
	struct viommu_domain *d;

	for (int i = 0; i < 2; i++) {
		d = NULL;
		viommu_endpoint_domain(r->eps[i], VIOMMU_NO_PASID, &d);
		h = (h ^ (uintptr_t)d) * 1099511628211ull;
		for (int k = 0; k < 2; k++) {
			d = NULL;
			viommu_endpoint_domain(r->eps[i], pasids[k], &d);
			h = (h ^ (uintptr_t)d) * 1099511628211ull;
		}
	}
	return h;
}

/* send() - a request with a 4-byte tail; checks V5.  Status or 0xff. */
static uint8_t send(struct run *r, const uint8_t *b, uint32_t len,
		    uint32_t wlen)
{
	uint8_t tail[16]; /* op_raw asks for up to 11 writable bytes */
	uint32_t used = 0;

	if (refdrv_raw(r->drv, b, len, wlen, tail, &used))
		return 0xff;
	if (used == 0)
		return 0xfe;
	if (used != 4 || wlen != 4)
		die("used length not the tail");
	if (tail[0] > 8 || tail[1] || tail[2] || tail[3])
		die("bad tail");
	return tail[0];
}

/* checked() - send, and a refusal must change nothing. */
static uint8_t checked(struct run *r, const uint8_t *b, uint32_t len)
{
	uint64_t before = sig(r);
	uint8_t s = send(r, b, len, 4);

	if (s != 0 && sig(r) != before)
		die("refused request changed the attachments");
	return s;
}

static const uint64_t tcrs[] = {
	16ull | (1ull << 23) | (5ull << 32),                 /* 4K, 48 */
	16ull | (1ull << 23) | (5ull << 32) | (1ull << 39),   /* +HA */
	25ull | (1ull << 23) | (2ull << 32) | (2ull << 14),   /* 16K */
	22ull | (1ull << 23) | (5ull << 32) | (1ull << 14),   /* 64K */
	16ull | (5ull << 32),                                 /* EPD1 clear */
	0,
};

static void op_attach_table(struct run *r, struct in *in)
{
	uint8_t b[76] = { 6 };
	uint8_t k = u8(in);
	uint64_t ttbr = POOL_GPA + (uint64_t)(u8(in) & 0x3f) * 0x1000;

	if (k & 0x80)
		ttbr = u64(in);
	put(b + 4, u8(in) & 3, 4);
	put(b + 8, ep_ids[k % NEPS], 4);
	put(b + 12, (k & 0x40) ? u8(in) & 3 : 1, 2);
	put(b + 14, u8(in), 2);
	put(b + 16, tcrs[(k >> 2) % 6], 8);
	put(b + 24, ttbr, 8);
	if (k & 0x20) {
		put(b + 52, u8(in) & 3, 4);
		put(b + 48, pasids[u8(in) % NPASID], 4);
	}
	if ((k & 0x18) == 0x18)
		b[u8(in) % 76] ^= u8(in);
	if (checked(r, b, sizeof(b)) == 0 && !(k & 0x20) &&
	    ep_ids[k % NEPS] == 1234)
		die("unknown endpoint attached");
}

static void op_invalidate(struct run *r, struct in *in)
{
	uint8_t b[60] = { 7 };

	put(b + 4, u8(in) & 0xf, 2);
	put(b + 6, u8(in) & 0x1f, 2);
	put(b + 8, u8(in) & 3, 4);
	put(b + 12, u8(in) & 1 ? pasids[u8(in) % NPASID] : 0, 4);
	put(b + 16, u8(in), 8);
	put(b + 24, (uint64_t)u8(in) << 12 | (u8(in) & 1 ? u64(in) : 0), 8);
	put(b + 32, u8(in) & 1 ? u64(in) : u8(in), 8);
	b[40] = u8(in);
	if (u8(in) == 0x5a)
		b[41 + u8(in) % 19] = 1;
	checked(r, b, sizeof(b));
}

static void op_page_resp(struct run *r, struct in *in)
{
	uint8_t b[36] = { 8 };
	uint8_t k = u8(in);
	unsigned int e = k % NEPS, g = (k >> 2) % NGRP;
	uint16_t code = u8(in) % 4;
	bool bad = false;
	uint8_t s;

	put(b + 4, 1, 4);
	put(b + 8, ep_ids[e], 4);
	put(b + 20, g, 4);
	put(b + 24, code, 2);
	if (k & 0x80) {
		/* Bytes whose change always makes the request invalid. */
		static const uint8_t at[] = { 12, 13, 16, 17, 26, 27, 30, 35 };

		b[at[u8(in) % sizeof(at)]] ^= (uint8_t)(u8(in) | 1);
		bad = true;
	}
	s = checked(r, b, sizeof(b));
	if (s == 0) {
		if (bad || code > 2 || r->g[e][g].state != 2)
			die("PAGE_RESP accepted for no complete group");
		r->g[e][g].state = 3;
	}
}

static void op_page_request(struct run *r, struct in *in)
{
	uint8_t k = u8(in);
	unsigned int e = k % NEPS, g = (k >> 2) % NGRP;
	bool last = k & 0x40;
	int ret, n = 0;

	for (unsigned int i = 0; i < NEPS; i++)
		for (unsigned int j = 0; j < NGRP; j++)
			n += r->g[i][j].state == 1 || r->g[i][j].state == 2;
	ret = viommu_virtio_iommu_page_request(r->vi, ep_ids[e],
					       VIOMMU_NO_PASID,
					       (uint64_t)u8(in) << 12,
					       VIOMMU_READ, last, g);
	if (ret == 0) {
		if (r->g[e][g].state == 2)
			die("request accepted for a complete group");
		if (r->g[e][g].state != 1 && n >= PRI_GROUPS)
			die("more groups than pri_groups");
		r->g[e][g].state = last ? 2 : 1;
	}
}

static void op_collect(struct run *r, struct in *in)
{
	uint8_t k = u8(in);
	unsigned int e = k % NEPS, g = (k >> 2) % NGRP;
	enum viommu_vi_page_resp resp;
	int ret = viommu_virtio_iommu_page_response(r->vi, ep_ids[e], g,
						    &resp);

	if (ret == 0) {
		if (r->g[e][g].state != 3 && r->g[e][g].state != 2 &&
		    r->g[e][g].state != 1)
			die("answer for a group never requested");
		r->g[e][g].state = 0;
	}
}

static void op_table_edit(struct run *r, struct in *in)
{
	uint64_t slot = (u64(in) % (POOL_SIZE / 8)) * 8, v = u64(in);

	memcpy(ram + POOL_GPA + slot, &v, 8);
}

static void op_dma(struct run *r, struct in *in)
{
	uint8_t k = u8(in), buf[64] = { 0 };
	uint64_t iova = u8(in) & 1 ? u64(in) : (uint64_t)u8(in) << 12;
	uint32_t pasid = k & 2 ? pasids[u8(in) % NPASID] : VIOMMU_NO_PASID;

	if (pasid > VIOMMU_PASID_MAX)
		pasid = VIOMMU_NO_PASID;
	if (k & 1)
		viommu_dma_write(r->eps[(k >> 2) & 1], pasid, iova, buf,
				 sizeof(buf));
	else
		viommu_dma_read(r->eps[(k >> 2) & 1], pasid, iova, buf,
				sizeof(buf));
}

static void op_plain(struct run *r, struct in *in)
{
	uint8_t k = u8(in), s;
	uint32_t dom = u8(in) & 3, ep = ep_ids[k % NEPS];

	if (k & 4)
		refdrv_attach(r->drv, dom, ep, 0, &s);
	else if (k & 8)
		refdrv_detach(r->drv, dom, ep, &s);
	else
		refdrv_map(r->drv, dom, POOL_GPA, POOL_GPA, POOL_SIZE, 3, &s);
	refdrv_commit(r->drv);
}

static void op_events(struct run *r)
{
	struct refdrv_fault ev[8];
	int n = refdrv_events_poll(r->drv, ev, 8);

	for (int i = 0; i < n; i++) {
		const uint8_t *p = ev[i].raw;
		static const uint8_t z[8];

		if (ev[i].used_len != 48)
			die("event not 48 bytes");
		if (memcmp(p + 1, z, 3) || memcmp(p + 6, z, 2) ||
		    memcmp(p + 28, z, 4) || memcmp(p + 40, z, 8))
			die("event reserved bytes set");
	}
}

static void op_raw(struct run *r, struct in *in)
{
	uint8_t b[96];
	uint32_t len = u8(in) % sizeof(b), wlen = u8(in) % 12;

	uint32_t take = len < in->n ? len : (uint32_t)in->n;

	/* u8()'s zeros past the input's end, in one copy */
	memcpy(b, in->p, take);
	memset(b + take, 0, len - take);
	in->p += take;
	in->n -= take;
	if (len)
		b[0] = 6 + u8(in) % 3;
	if (len || wlen)
		send(r, b, len, wlen);
}

static void op_pst(struct run *r, struct in *in)
{
	uint8_t b[76] = { 6 }, k = u8(in);

	if (k & 1) { /* INVALIDATE scope PASID + CONFIG */
		uint8_t v[60] = { 7 };

		put(v + 4, 2, 2);
		put(v + 6, 1 | 4, 2);
		put(v + 8, u8(in) & 3, 4);
		put(v + 12, pasids[u8(in) % NPASID] & 0xf, 4);
		checked(r, v, sizeof(v));
		return;
	}
	put(b + 4, u8(in) & 3, 4);
	put(b + 8, ep_ids[(k >> 1) % NEPS], 4);
	put(b + 12, 2, 2);
	b[14] = (k & 0x40) ? u8(in) : 0;
	b[15] = u8(in) % 4;
	put(b + 16, POOL_GPA + (uint64_t)(u8(in) & 0x3f) * 64, 8);
	put(b + 24, u8(in) % 24, 4);
	checked(r, b, sizeof(b));
}

static int setup(struct run *r)
{
	struct viommu_mem_region reg = { .gpa = 0, .size = RAM_SIZE,
					 .hva = ram, .fd = -1 };
	struct viommu_ctx_config cc = { 0 };
	struct viommu_virtio_iommu_config dc = { .size = sizeof(dc) };
	struct refdrv_config rc = { 0 };
	struct refdrv_table_config tc = { 0 };

	memset(ram, 0, sizeof(ram));
	if (viommu_mem_create(NULL, &r->mem) ||
	    viommu_mem_set_regions(r->mem, &reg, 1))
		return -1;
	cc.mem = r->mem;
	if (viommu_ctx_create(&cc, &r->ctx) ||
	    viommu_endpoint_create(r->ctx, 8, &r->eps[0]) ||
	    viommu_endpoint_create(r->ctx, 9, &r->eps[1]))
		return -1;
	dc.ctx = r->ctx;
	dc.mem = r->mem;
	dc.features = 0x7full | (1ull << 8) | (1ull << 10);
	dc.pri_groups = PRI_GROUPS;
	dc.pri_timeout_ms = 600000; /* no timeouts within one input */
	if (viommu_virtio_iommu_create(&dc, &r->vi))
		return -1;
	rc.dev = viommu_virtio_iommu_dev(r->vi);
	rc.ram = ram + DRV_GPA;
	rc.ram_gpa = DRV_GPA;
	rc.ram_size = DRV_SIZE;
	rc.event_buffers = 4;
	if (refdrv_create(&rc, &r->drv))
		return -1;
	tc.drv = r->drv;
	tc.mem = r->mem;
	tc.pool_gpa = POOL_GPA;
	tc.pool_size = POOL_SIZE;
	tc.asid = 1;
	if (refdrv_table_create(&tc, &r->t))
		return -1;
	refdrv_table_map(r->t, 0x100000, DATA_GPA, 0x1000, VIOMMU_READ);
	return 0;
}

static void teardown(struct run *r)
{
	refdrv_table_destroy(r->t);
	refdrv_destroy(r->drv);
	viommu_virtio_iommu_destroy(r->vi);
	viommu_ctx_destroy(r->ctx);
	viommu_mem_destroy(r->mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct run r;

	memset(&r, 0, sizeof(r));
	if (setup(&r)) {
		teardown(&r);
		return 0;
	}
	for (int op = 0; op < MAX_OPS && in.n; op++) {
		switch (u8(&in) % 13) {
		case 0: op_attach_table(&r, &in); break;
		case 1: op_invalidate(&r, &in); break;
		case 2: op_page_resp(&r, &in); break;
		case 3: op_page_request(&r, &in); break;
		case 4: op_collect(&r, &in); break;
		case 5: op_table_edit(&r, &in); break;
		case 6: op_dma(&r, &in); break;
		case 7: op_plain(&r, &in); break;
		case 8: op_events(&r); break;
		case 9: op_raw(&r, &in); break;
		case 10: op_dma(&r, &in); op_events(&r); break;
		case 11: op_pst(&r, &in); break;
		default:
			if (u8(&in) == 0xee) {
				refdrv_reset(r.drv);
				for (int i = 0; i < NEPS; i++)
					for (int j = 0; j < NGRP; j++)
						if (r.g[i][j].state == 1 ||
						    r.g[i][j].state == 2)
							r.g[i][j].state = 3;
			}
			break;
		}
	}
	op_events(&r);
	teardown(&r);
	return 0;
}
