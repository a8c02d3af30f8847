/*
 * test_virtio_iommu_tables.c - page-table handover and page requests
 * (docs/VIRTIO-IOMMU-TABLES.md, rules V1-V33): one test per rule, the
 * whole flow through the reference driver (bind a table, DMA, fault,
 * populate, respond, retry, unbind), and a randomized test of table
 * edits + INVALIDATE + DMA against a model.
 *
 * Requests are built byte by byte from the document's layouts (tx_req_*)
 * or sent by refdrv_table.c, which also encodes them itself.  No upstream
 * guest driver speaks this protocol: these in-process tests are its proof.
 */
#include "../harness.h"
#include "test_virtio_iommu_fixture.h"

#include <pthread.h>
#include <sched.h>

#include "devices/dma_engine.h"
#include "transport/pci.h"
#include "refdrv/virtio_table.h"

#define F_ATTACH_TABLE (1ull << 8)
#define F_PAGE_REQ (1ull << 10)
#define T_ATTACH_TABLE 6
#define T_INVALIDATE 7
#define T_PAGE_RESP 8
#define LEN_AT 76u
#define LEN_INV 60u
#define LEN_PR 36u
#define POOL_GPA 0x400000ull
#define POOL_SIZE 0x400000ull
#define TCR_4K48 (16ull | (1ull << 23) | (5ull << 32))

/* A fake clock for the PRI timeout (V27): tests advance it. */
static uint64_t fake_ms;

static uint64_t fake_clock(void *opaque)
{
	(void)opaque;
	return fake_ms;
}

struct tx {
	struct vfx f;
	struct refdrv_table *t;
};

/* tx_init() - fixture with the handover features; table in the pool. */
static int tx_init(struct tx *x, uint64_t dev_feats, uint64_t drv_feats)
{
	struct vfx_opts o;
	struct refdrv_table_config tc = { 0 };
	int rc;

	memset(&o, 0, sizeof(o));
	memset(x, 0, sizeof(*x));
	o.dev.features = dev_feats;
	o.dev.pri_timeout_ms = 60000;
	o.drv_features = drv_feats;
	rc = vfx_init(&x->f, &o);
	if (rc)
		return rc;
	tc.drv = x->f.drv;
	tc.mem = x->f.mem;
	tc.pool_gpa = POOL_GPA;
	tc.pool_size = POOL_SIZE;
	tc.asid = 1;
	return refdrv_table_create(&tc, &x->t);
}

static int tx_full(struct tx *x)
{
	return tx_init(x, F_ALL_DEV | F_ATTACH_TABLE | F_PAGE_REQ, 0);
}

static void tx_fini(struct tx *x)
{
	refdrv_table_destroy(x->t);
	vfx_fini(&x->f);
}

/* tx_req_at() - an ATTACH_TABLE page-directory request. */
static uint32_t tx_req_at(uint8_t *b, uint32_t dom, uint32_t ep,
			  uint64_t tcr, uint64_t ttbr0)
{
	memset(b, 0, LEN_AT);
	b[0] = T_ATTACH_TABLE;
	vfx_put(b + 4, dom, 4);
	vfx_put(b + 8, ep, 4);
	vfx_put(b + 12, 1, 2);
	vfx_put(b + 14, 1, 2);
	vfx_put(b + 16, tcr, 8);
	vfx_put(b + 24, ttbr0, 8);
	return LEN_AT;
}

/* tx_req_inv() - an INVALIDATE request. */
static uint32_t tx_req_inv(uint8_t *b, uint32_t dom, uint16_t scope,
			   uint16_t flags, uint32_t pasid, uint64_t id,
			   uint64_t va, uint64_t n, uint8_t gran)
{
	memset(b, 0, LEN_INV);
	b[0] = T_INVALIDATE;
	vfx_put(b + 4, scope, 2);
	vfx_put(b + 6, flags, 2);
	vfx_put(b + 8, dom, 4);
	vfx_put(b + 12, pasid, 4);
	vfx_put(b + 16, id, 8);
	vfx_put(b + 24, va, 8);
	vfx_put(b + 32, n, 8);
	b[40] = gran;
	return LEN_INV;
}

/* tx_req_pr() - a PAGE_RESP request (no PASID). */
static uint32_t tx_req_pr(uint8_t *b, uint32_t dom, uint32_t ep,
			  uint32_t grp, uint16_t code)
{
	memset(b, 0, LEN_PR);
	b[0] = T_PAGE_RESP;
	vfx_put(b + 4, dom, 4);
	vfx_put(b + 8, ep, 4);
	vfx_put(b + 20, grp, 4);
	vfx_put(b + 24, code, 2);
	return LEN_PR;
}

/* tx_bind() - bind the table to (dom, ep RID); the status. */
static uint8_t tx_bind(struct tx *x, uint32_t dom, uint32_t ep)
{
	uint8_t s = VFX_ERR;

	if (refdrv_table_bind(x->t, dom, ep, VIOMMU_NO_PASID, &s))
		return VFX_ERR;
	return s;
}

/* tx_read() - endpoint @ep reads 4 bytes at @iova (0 or -EFAULT). */
static int tx_read(struct viommu_endpoint *ep, uint32_t pasid, uint64_t iova,
		   uint32_t *v)
{
	return viommu_dma_read(ep, pasid, iova, v, sizeof(*v));
}

static void put32(struct vfx *f, uint64_t gpa, uint32_t v)
{
	memcpy(f->ram + gpa, &v, 4);
}

/* tx_stats() - the handover counters. */
static struct viommu_virtio_iommu_table_stats tx_stats(struct tx *x)
{
	struct viommu_virtio_iommu_table_stats st;

	memset(&st, 0, sizeof(st));
	viommu_virtio_iommu_table_stats(x->f.vi, &st, sizeof(st));
	return st;
}

/* ------------------------------------------------------------------ */
/* V1: feature bits, and an unchanged device for a driver without them */

/* snap() - config bytes, PROBE reply of endpoint 8, types 6-8 answers. */
static void snap(struct vfx *f, uint8_t *cfg, uint8_t *probe, long *used)
{
	uint8_t req[128], rep[1024];

	for (uint32_t o = 0; o < 40; o += 4)
		viommu_virtio_dev_config_read(f->dev, o, cfg + o, 4);
	vfx_req_probe(req, 8);
	memset(probe, 0, 516);
	used[0] = vfx_raw(f, req, LEN_PROBE, 512 + 4, probe);
	for (int t = 6; t <= 8; t++) {
		memset(req, 0, sizeof(req));
		req[0] = (uint8_t)t;
		used[t - 5] = vfx_raw(f, req, 76, 4, rep);
	}
}

TEST(V1_driver_without_the_features_sees_todays_device)
{
	struct vfx a;
	struct tx b;
	uint8_t ca[40], cb[40], pa[516], pb[516];
	long ua[4], ub[4];
	uint32_t v = 0;
	struct refdrv_fault fa, fb;

	REQUIRE(vfx_init(&a, NULL) == 0);
	REQUIRE(tx_init(&b, F_ALL_DEV | F_ATTACH_TABLE | F_PAGE_REQ,
			F_ALL_DEV | F_VERSION_1) == 0);
	CHECK(viommu_virtio_dev_features(b.f.dev) & F_ATTACH_TABLE);
	CHECK(viommu_virtio_dev_features(b.f.dev) & F_PAGE_REQ);
	CHECK(!(viommu_virtio_dev_features(a.dev) & F_ATTACH_TABLE));
	CHECK(!(b.f.info.features & (F_ATTACH_TABLE | F_PAGE_REQ)));
	snap(&a, ca, pa, ua);
	snap(&b.f, cb, pb, ub);
	for (int i = 0; i < 40; i++)
		if (ca[i] != cb[i])
			printf("#   config byte %d: %02x != %02x\n", i, ca[i],
			       cb[i]);
	CHECK(memcmp(ca, cb, sizeof(ca)) == 0);
	CHECK(memcmp(pa, pb, sizeof(pa)) == 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(ua[i], ub[i]);
	CHECK_EQ(ua[1], 0); /* type 6 unknown: D5 */
	/* A fault report keeps its 24-byte layout. */
	CHECK_EQ(tx_read(a.ep8, VIOMMU_NO_PASID, 0x1000, &v), -EFAULT);
	CHECK_EQ(tx_read(b.f.ep8, VIOMMU_NO_PASID, 0x1000, &v), -EFAULT);
	REQUIRE(refdrv_events_poll(a.drv, &fa, 1) == 1);
	REQUIRE(refdrv_events_poll(b.f.drv, &fb, 1) == 1);
	CHECK_EQ(fa.used_len, 24);
	CHECK_EQ(fb.used_len, 24);
	CHECK(memcmp(fa.raw, fb.raw, 24) == 0);
	vfx_fini(&a);
	tx_fini(&b);
}

TEST(V1_page_req_only_with_attach_table_and_only_when_asked)
{
	struct tx x;

	REQUIRE(tx_init(&x, F_ALL_DEV | F_PAGE_REQ, 0) == 0);
	CHECK(!(viommu_virtio_dev_features(x.f.dev) & F_PAGE_REQ));
	tx_fini(&x);
	REQUIRE(tx_init(&x, 0, 0) == 0); /* defaults: nothing new */
	CHECK(!(viommu_virtio_dev_features(x.f.dev) &
		(F_PAGE_REQ | F_ATTACH_TABLE)));
	tx_fini(&x);
	/* ATTACH_TABLE without PAGE_REQ: PAGE_RESP is an unknown type. */
	REQUIRE(tx_init(&x, F_ALL_DEV | F_ATTACH_TABLE, 0) == 0);
	{
		uint8_t b[64], r[4];

		tx_req_pr(b, 1, 8, 0, 0);
		CHECK_EQ(vfx_raw(&x.f, b, LEN_PR, 4, r), 0);
		CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	}
	tx_fini(&x);
}

/* ------------------------------------------------------------------ */
/* V2-V4: PROBE properties                                            */

TEST(V2_V3_V4_probe_table_properties)
{
	struct tx x;
	uint8_t req[LEN_PROBE], p[516];
	unsigned int off = 0, seen = 0;

	REQUIRE(tx_full(&x) == 0);
	vfx_req_probe(req, 8);
	REQUIRE(vfx_raw(&x.f, req, LEN_PROBE, 516, p) == 516);
	CHECK_EQ(p[512], S_OK);
	while (off + 4 <= 512) {
		unsigned int type = (unsigned int)vfx_get(p + off, 2) & 0xfff;
		unsigned int len = (unsigned int)vfx_get(p + off + 2, 2);
		const uint8_t *v = p + off + 4;

		if (!type)
			break;
		CHECK_EQ((len + 4) % 8, 0); /* V3 */
		switch (type) {
		case 2:
			CHECK_EQ(len, 12);
			CHECK_U64(vfx_get(v + 4, 8), 0x62215000ull);
			seen |= 1;
			break;
		case 3:
			CHECK_EQ(len, 20);
			CHECK_U64(vfx_get(v + 12, 8), (1ull << 48) - 1);
			seen |= 2;
			break;
		case 4:
			CHECK_EQ(v[0], 48);
			seen |= 4;
			break;
		case 5:
			CHECK_EQ(v[0], 20);
			seen |= 8;
			break;
		case 6:
			CHECK_EQ(vfx_get(v, 2), 1);
			CHECK_EQ(v[2], 16);
			CHECK_U64(vfx_get(v + 4, 8), 0xb);
			seen |= 16;
			break;
		case 7:
			CHECK_EQ(len, 12);
			CHECK_EQ(vfx_get(v, 2), 2); /* V4: SMMUv3 CD table */
			seen |= 32;
			break;
		}
		off += 4 + len;
	}
	CHECK_EQ(seen, 63);
	tx_fini(&x);
}

/* ------------------------------------------------------------------ */
/* ATTACH_TABLE                                                       */

TEST(V5_request_shape)
{
	struct tx x;
	uint8_t b[128], r[8];

	REQUIRE(tx_full(&x) == 0);
	tx_req_at(b, 1, 8, TCR_4K48, refdrv_table_root(x.t));
	CHECK_EQ(vfx_raw(&x.f, b, LEN_AT, 8, r), 0); /* tail ambiguous */
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT - 1), S_INVAL);
	tx_fini(&x);
}

TEST(V6_format_endpoint_and_domain)
{
	struct tx x;
	uint8_t b[128];

	REQUIRE(tx_init(&x, F_ALL_DEV | F_ATTACH_TABLE | F_PAGE_REQ, 0) == 0);
	tx_req_at(b, 1, 8, TCR_4K48, refdrv_table_root(x.t));
	vfx_put(b + 12, 9, 2);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL);
	tx_req_at(b, 1, 1234, TCR_4K48, refdrv_table_root(x.t));
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_NOENT);
	tx_fini(&x);
}

TEST(V7_reserved_flags_and_stray_pasid_inval_nothing_changes)
{
	struct tx x;
	uint8_t b[128];
	struct viommu_domain *d = (void *)1;
	unsigned long w;

	REQUIRE(tx_full(&x) == 0);
	w = x.f.nwarn;
	tx_req_at(b, 1, 8, TCR_4K48, refdrv_table_root(x.t));
	b[70] = 1;
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL);
	tx_req_at(b, 1, 8, TCR_4K48, refdrv_table_root(x.t));
	vfx_put(b + 52, 4, 4);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL);
	tx_req_at(b, 1, 8, TCR_4K48, refdrv_table_root(x.t));
	vfx_put(b + 48, 5, 4);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL);
	CHECK_EQ(viommu_endpoint_domain(x.f.ep8, VIOMMU_NO_PASID, &d), 0);
	CHECK(d == NULL);
	CHECK_EQ(x.f.nwarn - w, 3); /* V29: one line each */
	tx_fini(&x);
}

TEST(V8_descriptor_fields_validated)
{
	struct tx x;
	uint8_t b[128];
	uint64_t root;
	struct viommu_domain *d = (void *)1;
	const struct { uint64_t tcr, ttbr0, ttbr1; uint16_t asid; } bad[] = {
		{ TCR_4K48 | (1ull << 37), 0, 0, 1 },       /* TBI0 */
		{ TCR_4K48 | (1ull << 7), 0, 0, 1 },        /* EPD0 */
		{ TCR_4K48 & ~(1ull << 23), 0, 0, 1 },      /* EPD1 clear */
		{ TCR_4K48, 0, 0x1000, 1 },                 /* TTBR1 */
		{ TCR_4K48 | (3ull << 14), 0, 0, 1 },       /* TG0 reserved */
		{ (TCR_4K48 & ~0x3full) | 8, 0, 0, 1 },     /* 56-bit input */
		{ (TCR_4K48 & ~0x3full) | 40, 0, 0, 1 },    /* 24-bit input */
		{ (TCR_4K48 & ~(7ull << 32)) | (6ull << 32), 0, 0, 1 }, /* IPS */
		{ TCR_4K48 | (1ull << 40), 0, 0, 1 },       /* HD w/o HA */
		{ TCR_4K48, 0x10, 0, 1 },                   /* misaligned */
		{ TCR_4K48, 1ull << 48, 0, 1 },             /* ASID bits */
	};

	REQUIRE(tx_full(&x) == 0);
	root = refdrv_table_root(x.t);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tx_req_at(b, 1, 8, bad[i].tcr, root + bad[i].ttbr0);
		vfx_put(b + 32, bad[i].ttbr1, 8);
		if (vfx_raw_status(&x.f, b, LEN_AT) != S_INVAL) {
			printf("#   case %zu accepted\n", i);
			CHECK(0);
		}
	}
	CHECK_EQ(viommu_endpoint_domain(x.f.ep8, VIOMMU_NO_PASID, &d), 0);
	CHECK(d == NULL);
	tx_req_at(b, 1, 8, TCR_4K48, root);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_OK);
	tx_fini(&x);
}

TEST(V9_pasid_bind_unbind_width)
{
	struct tx x;
	uint8_t s = 0;
	uint32_t v = 0;

	REQUIRE(tx_full(&x) == 0);
	put32(&x.f, VFX_DATA, 0xabcd);
	CHECK_EQ(refdrv_table_map(x.t, 0x10000, VFX_DATA, 0x1000,
				  VIOMMU_READ), 0);
	CHECK_EQ(refdrv_table_bind(x.t, 3, 8, 5, &s), 0);
	CHECK_EQ(s, S_OK);
	CHECK_EQ(tx_read(x.f.ep8, 5, 0x10000, &v), 0);
	CHECK_EQ(v, 0xabcd);
	CHECK_EQ(tx_read(x.f.ep8, VIOMMU_NO_PASID, 0x10000, &v), -EFAULT);
	CHECK_EQ(refdrv_table_bind(x.t, 3, 8, 1u << 20, &s), 0);
	CHECK_EQ(s, S_RANGE);
	/* Not to a MAP-mode domain. */
	CHECK_EQ(vfx_attach(&x.f, 4, 9, 0), S_OK);
	CHECK_EQ(refdrv_table_bind(x.t, 4, 9, 6, &s), 0);
	CHECK_EQ(s, S_INVAL);
	CHECK_EQ(refdrv_table_unbind(x.t, 4, 8, 5, &s), 0);
	CHECK_EQ(s, S_INVAL); /* wrong domain */
	CHECK_EQ(refdrv_table_unbind(x.t, 3, 8, 5, &s), 0);
	CHECK_EQ(s, S_OK);
	CHECK_EQ(tx_read(x.f.ep8, 5, 0x10000, &v), -EFAULT);
	CHECK_EQ(refdrv_table_unbind(x.t, 3, 8, 5, &s), 0);
	CHECK_EQ(s, S_INVAL); /* nothing bound any more */
	tx_fini(&x);
}

TEST(V10_table_outside_ram_inval)
{
	struct tx x;
	uint8_t b[128];

	REQUIRE(tx_full(&x) == 0);
	tx_req_at(b, 1, 8, TCR_4K48, VFX_RAM_SIZE + 0x1000);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL);
	tx_req_at(b, 1, 8, TCR_4K48, 0x7fff000000ull);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL);
	tx_fini(&x);
}

TEST(V11_bypass_domain_cannot_take_a_table)
{
	struct tx x;

	REQUIRE(tx_full(&x) == 0);
	CHECK_EQ(vfx_attach(&x.f, 2, 9, ATTACH_F_BYPASS), S_OK);
	CHECK_EQ(tx_bind(&x, 2, 9), S_INVAL);
	CHECK_EQ(tx_bind(&x, 2, 8), S_INVAL);
	tx_fini(&x);
}

TEST(V12_looping_and_outside_tables_fault_bounded)
{
	struct tx x;
	uint64_t root;
	uint32_t v;
	struct refdrv_fault ev[4];
	struct viommu_virtio_iommu_table_stats st;

	REQUIRE(tx_full(&x) == 0);
	root = refdrv_table_root(x.t);
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	/* Entry 0 of every level points back at the root table. */
	uint64_t self = root | 3 | (1ull << 10);
	memcpy(x.f.ram + root, &self, 8);
	/* Entry 1 of the root points outside RAM. */
	uint64_t out = 0x7ffff000ull | 3;
	memcpy(x.f.ram + root + 8, &out, 8);
	st = tx_stats(&x);
	/* The level-3 walk reads the root as a page: bounded, whatever. */
	tx_read(x.f.ep8, VIOMMU_NO_PASID, 0x0, &v);
	CHECK_EQ(tx_read(x.f.ep8, VIOMMU_NO_PASID, 1ull << 39, &v), -EFAULT);
	CHECK_EQ(tx_stats(&x).walks - st.walks, 2);
	CHECK(tx_stats(&x).walk_faults > st.walk_faults);
	CHECK(refdrv_events_poll(x.f.drv, ev, 4) >= 1);
	tx_fini(&x);
}

TEST(V13_map_mode_switch_and_plain_attach_refused)
{
	struct tx x;
	uint32_t v = 0;

	REQUIRE(tx_full(&x) == 0);
	/* Stage 2: identity over the table pool and the data page. */
	CHECK_EQ(vfx_attach(&x.f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&x.f, 1, POOL_GPA, POOL_GPA + POOL_SIZE - 1,
			 POOL_GPA, MAP_R | MAP_W), S_OK);
	CHECK_EQ(vfx_map(&x.f, 1, 0x200000, 0x200fff, VFX_DATA, MAP_R),
		 S_OK);
	put32(&x.f, VFX_DATA + 8, 0x5151);
	CHECK_EQ(refdrv_table_map(x.t, 0x30000, 0x200000, 0x1000,
				  VIOMMU_READ), 0);
	/* Another endpoint in the domain: refused, nothing changes. */
	CHECK_EQ(vfx_attach(&x.f, 1, 9, 0), S_OK);
	CHECK_EQ(tx_bind(&x, 1, 8), S_INVAL);
	CHECK_EQ(tx_read(x.f.ep8, VIOMMU_NO_PASID, 0x200008, &v), 0);
	CHECK_EQ(v, 0x5151);
	CHECK_EQ(vfx_detach(&x.f, 1, 9), S_OK);
	/* Now the switch: stage 1 (0x30000 -> 0x200000) over stage 2. */
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	v = 0;
	CHECK_EQ(tx_read(x.f.ep8, VIOMMU_NO_PASID, 0x30008, &v), 0);
	CHECK_EQ(v, 0x5151);
	CHECK_EQ(tx_read(x.f.ep8, VIOMMU_NO_PASID, 0x200008, &v), -EFAULT);
	CHECK_EQ(vfx_attach(&x.f, 1, 9, 0), S_INVAL);
	tx_fini(&x);
}

TEST(V14_same_table_shared_other_table_replaces_only_alone)
{
	struct tx x;
	struct refdrv_table *t2;
	struct refdrv_table_config tc = { 0 };
	uint8_t s = 0;
	uint32_t v = 0;

	REQUIRE(tx_full(&x) == 0);
	tc = (struct refdrv_table_config){ .drv = x.f.drv, .mem = x.f.mem,
					   .pool_gpa = 0x300000,
					   .pool_size = 0x100000, .asid = 2 };
	REQUIRE(refdrv_table_create(&tc, &t2) == 0);
	put32(&x.f, VFX_DATA, 0x1111);
	put32(&x.f, VFX_DATA + 0x1000, 0x2222);
	refdrv_table_map(x.t, 0x40000, VFX_DATA, 0x1000, VIOMMU_READ);
	refdrv_table_map(t2, 0x40000, VFX_DATA + 0x1000, 0x1000, VIOMMU_READ);
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK); /* again: nothing changes */
	CHECK_EQ(tx_bind(&x, 1, 9), S_OK); /* shared */
	CHECK_EQ(refdrv_table_bind(t2, 1, 8, VIOMMU_NO_PASID, &s), 0);
	CHECK_EQ(s, S_INVAL); /* two endpoints: no replacement */
	CHECK_EQ(tx_read(x.f.ep9, VIOMMU_NO_PASID, 0x40000, &v), 0);
	CHECK_EQ(v, 0x1111);
	CHECK_EQ(vfx_detach(&x.f, 1, 9), S_OK);
	CHECK_EQ(refdrv_table_bind(t2, 1, 8, VIOMMU_NO_PASID, &s), 0);
	CHECK_EQ(s, S_OK);
	CHECK_EQ(tx_read(x.f.ep8, VIOMMU_NO_PASID, 0x40000, &v), 0);
	CHECK_EQ(v, 0x2222);
	refdrv_table_destroy(t2);
	tx_fini(&x);
}

TEST(V15_map_edits_stage2_or_inval_without_one)
{
	struct tx x;

	REQUIRE(tx_full(&x) == 0);
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	CHECK_EQ(vfx_map(&x.f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_INVAL);
	CHECK_EQ(vfx_unmap(&x.f, 1, 0x1000, 0x1fff), S_INVAL);
	tx_fini(&x);
}

/* ------------------------------------------------------------------ */
/* PASID table (format 2, SMMUv3 CD table)                            */

#define CDT_GPA 0x380000ull

/* tx_req_pst() - ATTACH_TABLE with a PASID table. */
static uint32_t tx_req_pst(uint8_t *b, uint32_t dom, uint32_t ep,
			   uint8_t fmt, uint8_t dss, uint64_t ptr,
			   uint32_t cdmax)
{
	memset(b, 0, LEN_AT);
	b[0] = T_ATTACH_TABLE;
	vfx_put(b + 4, dom, 4);
	vfx_put(b + 8, ep, 4);
	vfx_put(b + 12, 2, 2);
	b[14] = fmt;
	b[15] = dss;
	vfx_put(b + 16, ptr, 8);
	vfx_put(b + 24, cdmax, 4);
	return LEN_AT;
}

/* cd_write() - CD @i of the table at CDT_GPA: valid for @root or not. */
static void cd_write(struct vfx *f, uint32_t i, uint64_t root, bool valid)
{
	uint64_t w[8] = { 0 };

	if (valid) {
		w[0] = 16 | (1ull << 31) | (5ull << 32) | (1ull << 41) |
		       (3ull << 48);
		w[1] = root;
	}
	memcpy(f->ram + CDT_GPA + (uint64_t)i * 64, w, sizeof(w));
}

/* cd_config() - INVALIDATE scope PASID with CONFIG for @pasid. */
static uint8_t cd_config(struct tx *x, uint32_t dom, uint32_t pasid)
{
	uint8_t b[LEN_INV];

	tx_req_inv(b, dom, 2, 1 | 4, pasid, 0, 0, 0, 0);
	return vfx_raw_status(&x->f, b, LEN_INV);
}

TEST(V31_pasid_table_descriptor_validated)
{
	struct tx x;
	uint8_t b[LEN_AT];

	REQUIRE(tx_full(&x) == 0);
	tx_req_pst(b, 1, 8, 1, 2, CDT_GPA, 4);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL); /* 2-level */
	tx_req_pst(b, 1, 8, 0, 3, CDT_GPA, 4);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL); /* S1DSS */
	tx_req_pst(b, 1, 8, 0, 2, CDT_GPA, 21);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL); /* > PASID_SIZE */
	tx_req_pst(b, 1, 8, 0, 2, CDT_GPA + 8, 4);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL); /* misaligned */
	tx_req_pst(b, 1, 8, 0, 2, VFX_RAM_SIZE - 64, 4);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL); /* runs out */
	tx_req_pst(b, 1, 8, 0, 2, CDT_GPA, 4);
	b[40] = 1;
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL); /* reserved */
	tx_req_pst(b, 1, 8, 0, 2, CDT_GPA, 4);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_OK);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_OK); /* again: OK */
	tx_req_pst(b, 1, 9, 0, 2, CDT_GPA, 4);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL); /* 2nd ep */
	tx_fini(&x);
}

TEST(V32_V33_pasid_table_cd_walk_config_and_detach)
{
	struct tx x;
	uint8_t b[LEN_AT];
	uint32_t v = 0;
	struct viommu_domain *d = NULL;

	REQUIRE(tx_full(&x) == 0);
	put32(&x.f, VFX_DATA, 0x600d);
	refdrv_table_map(x.t, 0x9000, VFX_DATA, 0x1000, VIOMMU_READ);
	cd_write(&x.f, 5, refdrv_table_root(x.t), true);
	tx_req_pst(b, 1, 8, 0, 2, CDT_GPA, 4);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_OK);
	/* PASID 5 not announced yet: the core has no route. */
	CHECK_EQ(tx_read(x.f.ep8, 5, 0x9000, &v), -EFAULT);
	CHECK_EQ(cd_config(&x, 1, 5), S_OK);
	CHECK_EQ(tx_read(x.f.ep8, 5, 0x9000, &v), 0);
	CHECK_EQ(v, 0x600d);
	/* No PASID: S1DSS SSID0 uses CD 0, still invalid. */
	CHECK_EQ(tx_read(x.f.ep8, VIOMMU_NO_PASID, 0x9000, &v), -EFAULT);
	cd_write(&x.f, 0, refdrv_table_root(x.t), true);
	CHECK_EQ(tx_read(x.f.ep8, VIOMMU_NO_PASID, 0x9000, &v), 0);
	/* A PASID past 2^s1cdmax never translates. */
	CHECK_EQ(cd_config(&x, 1, 16), S_OK);
	CHECK_EQ(tx_read(x.f.ep8, 16, 0x9000, &v), -EFAULT);
	/* Clearing CD 5 stops it at once; CONFIG then drops the route. */
	cd_write(&x.f, 5, 0, false);
	CHECK_EQ(tx_read(x.f.ep8, 5, 0x9000, &v), -EFAULT);
	CHECK_EQ(cd_config(&x, 1, 5), S_OK);
	CHECK_EQ(viommu_endpoint_domain(x.f.ep8, 5, &d), 0);
	CHECK(d == NULL);
	/* Announce it again, then DETACH: every PASID goes with the RID. */
	cd_write(&x.f, 5, refdrv_table_root(x.t), true);
	CHECK_EQ(cd_config(&x, 1, 5), S_OK);
	CHECK_EQ(vfx_detach(&x.f, 1, 8), S_OK);
	d = (void *)1;
	CHECK_EQ(viommu_endpoint_domain(x.f.ep8, 5, &d), 0);
	CHECK(d == NULL);
	CHECK_EQ(tx_read(x.f.ep8, 5, 0x9000, &v), -EFAULT);
	tx_fini(&x);
}

TEST(V33_replacing_a_pasid_table_drops_its_routes)
{
	struct tx x;
	uint8_t b[LEN_AT];
	uint32_t v = 0;
	struct viommu_domain *d = (void *)1;

	/* Regression: a refused re-attach with another PASID table dropped
	 * PASID 5's route before the new descriptor was checked. */
	REQUIRE(tx_full(&x) == 0);
	put32(&x.f, VFX_DATA, 0x600d);
	refdrv_table_map(x.t, 0x9000, VFX_DATA, 0x1000, VIOMMU_READ);
	cd_write(&x.f, 5, refdrv_table_root(x.t), true);
	tx_req_pst(b, 1, 8, 0, 2, CDT_GPA, 4);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_OK);
	CHECK_EQ(cd_config(&x, 1, 5), S_OK);
	CHECK_EQ(tx_read(x.f.ep8, 5, 0x9000, &v), 0);
	/* Failed replacements change nothing (tables outside RAM). */
	tx_req_at(b, 1, 8, TCR_4K48, VFX_RAM_SIZE);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL);
	CHECK_EQ(tx_read(x.f.ep8, 5, 0x9000, &v), 0);
	tx_req_pst(b, 1, 8, 0, 2, VFX_RAM_SIZE - 64, 4);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_INVAL);
	CHECK_EQ(tx_read(x.f.ep8, 5, 0x9000, &v), 0);
	/* The replacement. */
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	CHECK_EQ(viommu_endpoint_domain(x.f.ep8, 5, &d), 0);
	CHECK(d == NULL);
	CHECK_EQ(tx_read(x.f.ep8, 5, 0x9000, &v), -EFAULT);
	CHECK_EQ(tx_read(x.f.ep8, VIOMMU_NO_PASID, 0x9000, &v), 0);
	tx_fini(&x);
}

TEST(V32_pasid_table_s1dss_bypass_and_terminate)
{
	struct tx x;
	uint8_t b[LEN_AT];
	uint32_t v = 0;

	REQUIRE(tx_full(&x) == 0);
	put32(&x.f, VFX_DATA, 0xb1b1);
	tx_req_pst(b, 1, 8, 0, 1, CDT_GPA, 2);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_OK);
	CHECK_EQ(tx_read(x.f.ep8, VIOMMU_NO_PASID, VFX_DATA, &v), 0);
	CHECK_EQ(v, 0xb1b1);
	tx_req_pst(b, 2, 9, 0, 0, CDT_GPA, 2);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_AT), S_OK);
	CHECK_EQ(tx_read(x.f.ep9, VIOMMU_NO_PASID, VFX_DATA, &v), -EFAULT);
	tx_fini(&x);
}

/* ------------------------------------------------------------------ */
/* INVALIDATE                                                         */

TEST(V16_V17_invalidate_fields)
{
	struct tx x;
	uint8_t b[LEN_INV];
	const struct {
		uint16_t scope, flags;
		uint32_t pasid;
		uint64_t id, va, n;
		uint8_t gran, want;
	} c[] = {
		{ 1, 0, 0, 0, 0, 0, 0, S_OK },
		{ 4, 2, 0, 0, 0x1000, 1, 12, S_OK },
		{ 4, 8, 0, 1, 0x200000, 1, 21, S_OK },
		{ 8, 8, 0, 1, 0, 0, 0, S_OK },
		{ 2, 4, 5, 0, 0, 0, 0, S_OK },
		{ 3, 0, 0, 0, 0, 0, 0, S_INVAL },         /* two scopes */
		{ 0, 0, 0, 0, 0, 0, 0, S_INVAL },
		{ 1, 0x10, 0, 0, 0, 0, 0, S_INVAL },      /* unknown flag */
		{ 2, 0, 5, 0, 0, 0, 0, S_INVAL },         /* PASID w/o flag */
		{ 8, 0, 0, 1, 0, 0, 0, S_INVAL },         /* ASID w/o flag */
		{ 2, 4, 1u << 20, 0, 0, 0, 0, S_RANGE },
		{ 8, 8, 0, 1u << 16, 0, 0, 0, S_RANGE },
		{ 4, 0, 0, 0, 0x1000, 1, 13, S_INVAL },   /* granule */
		{ 4, 0, 0, 0, 0x1000, 1, 64, S_INVAL },
		{ 4, 0, 0, 0, 0x1000, 0, 12, S_RANGE },   /* empty */
		{ 4, 0, 0, 0, 0x1800, 1, 12, S_RANGE },   /* misaligned */
		{ 4, 0, 0, 0, ~0xfffull, 2, 12, S_RANGE },/* wraps */
		{ 4, 0, 0, 0, 0, 1ull << 53, 12, S_RANGE },
	};

	REQUIRE(tx_full(&x) == 0);
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		tx_req_inv(b, 1, c[i].scope, c[i].flags, c[i].pasid, c[i].id,
			   c[i].va, c[i].n, c[i].gran);
		uint8_t s = vfx_raw_status(&x.f, b, LEN_INV);

		if (s != c[i].want) {
			printf("#   case %zu: status %u want %u\n", i, s,
			       c[i].want);
			CHECK(0);
		}
	}
	tx_req_inv(b, 1, 1, 0, 0, 0, 0, 0, 0);
	b[50] = 1;
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_INV), S_INVAL);
	tx_req_inv(b, 77, 1, 0, 0, 0, 0, 0, 0);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_INV), S_NOENT);
	CHECK_EQ(vfx_attach(&x.f, 2, 9, 0), S_OK);
	tx_req_inv(b, 2, 1, 0, 0, 0, 0, 0, 0);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_INV), S_INVAL); /* MAP mode */
	tx_fini(&x);
}

/* Model of the randomized test: page -> target page or none. */
#define RND_PAGES 64
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

TEST(V18_random_table_edits_invalidate_dma_against_model)
{
	struct tx x;
	int64_t model[RND_PAGES];
	uint64_t base = 0x7f0000000ull;
	uint8_t s = 0;
	unsigned int bad = 0;

	REQUIRE(tx_full(&x) == 0);
	for (int i = 0; i < RND_PAGES; i++) {
		model[i] = -1;
		put32(&x.f, VFX_DATA + (uint64_t)i * 0x1000, 0xd0000000u | i);
	}
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	for (int step = 0; step < 3000; step++) {
		unsigned int p = rnd() % RND_PAGES, op = rnd() % 4;
		uint64_t iova = base + (uint64_t)p * 0x1000;
		uint32_t v = 0;
		int rc;

		if (op == 0 && model[p] < 0) {
			unsigned int tgt = rnd() % RND_PAGES;

			REQUIRE(refdrv_table_map(x.t, iova, VFX_DATA +
						 tgt * 0x1000ull, 0x1000,
						 VIOMMU_READ) == 0);
			model[p] = tgt; /* no INVALIDATE needed (V18) */
		} else if (op == 1 && model[p] >= 0) {
			/* unmap + leaf INVALIDATE of the page, or of a
			 * wider range, or of the whole domain */
			unsigned int how = rnd() % 3;

			REQUIRE(refdrv_table_unmap(x.t, iova, 0x1000,
						   UINT32_MAX, NULL) == 0);
			if (how == 0)
				refdrv_invalidate(x.f.drv, 1, 4, 10, 0, 1,
						  iova, 1, 12, &s);
			else if (how == 1)
				refdrv_invalidate(x.f.drv, 1, 4, 8, 0, 1,
						  base, RND_PAGES, 12, &s);
			else
				refdrv_invalidate(x.f.drv, 1, 1, 0, 0, 0, 0,
						  0, 0, &s);
			CHECK_EQ(s, S_OK);
			model[p] = -1;
		} else {
			rc = tx_read(x.f.ep8, VIOMMU_NO_PASID, iova, &v);
			if (model[p] < 0 ? rc != -EFAULT :
			    rc || v != (0xd0000000u | (uint32_t)model[p]))
				bad++;
		}
	}
	CHECK_EQ(bad, 0);
	tx_fini(&x);
}

/* Racing reader: every read faults or sees a value that was mapped. */
struct racer {
	struct viommu_endpoint *ep;
	int stop; /* __atomic */
	unsigned long reads, faults, torn;
};

static void *race_reader(void *opaque)
{
	struct racer *r = opaque;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		uint32_t v = 0;
		int rc = viommu_dma_read(r->ep, VIOMMU_NO_PASID, 0x50000, &v, 4);

		__atomic_fetch_add(&r->reads, 1, __ATOMIC_RELEASE);
		if (rc)
			r->faults++;
		else if (v != 0xa1a1a1a1u && v != 0xb2b2b2b2u)
			r->torn++;
	}
	return NULL;
}

TEST(V18_dma_racing_table_edits_invalidate_and_replacement)
{
	struct tx x;
	struct refdrv_table *t2;
	struct refdrv_table_config tc;
	struct racer r = { 0 };
	pthread_t th;
	uint8_t s = 0;
	unsigned int stale = 0;

	REQUIRE(tx_full(&x) == 0);
	tc = (struct refdrv_table_config){ .drv = x.f.drv, .mem = x.f.mem,
					   .pool_gpa = 0x300000,
					   .pool_size = 0x100000, .asid = 2 };
	REQUIRE(refdrv_table_create(&tc, &t2) == 0);
	memset(x.f.ram + VFX_DATA, 0xa1, 0x1000);
	memset(x.f.ram + VFX_DATA + 0x1000, 0xb2, 0x1000);
	refdrv_table_map(t2, 0x50000, VFX_DATA + 0x1000, 0x1000, VIOMMU_READ);
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	r.ep = x.f.ep8;
	REQUIRE(pthread_create(&th, NULL, race_reader, &r) == 0);
	while (!__atomic_load_n(&r.reads, __ATOMIC_ACQUIRE))
		sched_yield(); /* the reader runs before the edits start */
	for (int i = 0; i < 300; i++) {
		uint32_t v;

		if (i % 16 == 0)
			sched_yield(); /* let the reader interleave */
		refdrv_table_map(x.t, 0x50000, VFX_DATA, 0x1000, VIOMMU_READ);
		CHECK_EQ(refdrv_table_unmap(x.t, 0x50000, 0x1000, 1, &s), 0);
		CHECK_EQ(s, S_OK);
		/* V18: after INVALIDATE returned, the entry is gone. */
		if (tx_read(x.f.ep8, VIOMMU_NO_PASID, 0x50000, &v) != -EFAULT)
			stale++;
		if (i % 50 == 49) { /* replace the table, and back */
			CHECK_EQ(refdrv_table_bind(t2, 1, 8, VIOMMU_NO_PASID,
						   &s), 0);
			CHECK_EQ(s, S_OK);
			CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
		}
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CHECK_EQ(stale, 0);
	CHECK_EQ(r.torn, 0);
	CHECK(r.reads > 0);
	refdrv_table_destroy(t2);
	tx_fini(&x);
}

TEST(V19_last_endpoint_leaves_domain_gone_table_untouched)
{
	struct tx x;
	uint8_t b[LEN_INV], before[4096];
	uint64_t root;

	REQUIRE(tx_full(&x) == 0);
	root = refdrv_table_root(x.t);
	refdrv_table_map(x.t, 0x1000, VFX_DATA, 0x1000, VIOMMU_READ);
	memcpy(before, x.f.ram + root, sizeof(before));
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	CHECK_EQ(vfx_detach(&x.f, 1, 8), S_OK);
	tx_req_inv(b, 1, 1, 0, 0, 0, 0, 0, 0);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_INV), S_NOENT);
	CHECK(memcmp(before, x.f.ram + root, sizeof(before)) == 0);
	/* The ID comes back as a MAP-mode domain. */
	CHECK_EQ(vfx_attach(&x.f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&x.f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_OK);
	tx_fini(&x);
}

TEST(V19_embedder_pins_table_domain_no_use_after_free)
{
	struct tx x;
	struct viommu_domain *nested = NULL;
	uint32_t v = 0;

	/* Regression: the vtab was freed although the core kept the NESTED
	 * domain (and its stage-1 pointer) alive. */
	REQUIRE(tx_full(&x) == 0);
	put32(&x.f, VFX_DATA, 0x7777);
	refdrv_table_map(x.t, 0x1000, VFX_DATA, 0x1000, VIOMMU_READ);
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	CHECK_EQ(viommu_endpoint_domain(x.f.ep8, VIOMMU_NO_PASID, &nested), 0);
	REQUIRE(nested != NULL);
	/* The embedder attaches endpoint 9 behind the device's back. */
	CHECK_EQ(viommu_endpoint_attach(x.f.ep9, VIOMMU_NO_PASID, nested), 0);
	CHECK_EQ(vfx_detach(&x.f, 1, 8), S_OK);
	CHECK_EQ(tx_read(x.f.ep9, VIOMMU_NO_PASID, 0x1000, &v), 0);
	CHECK_EQ(v, 0x7777);
	CHECK_EQ(viommu_endpoint_detach(x.f.ep9, VIOMMU_NO_PASID), 0);
	tx_fini(&x);
}

/* ------------------------------------------------------------------ */
/* Page requests                                                      */

/* populate_data() - give the faulting page its twin in VFX_DATA. */
static int populate_data(void *opaque, const struct refdrv_prq *p,
			 uint64_t *pa, unsigned int *prot)
{
	unsigned int *calls = opaque;

	(*calls)++;
	if (p->addr >= 0x100000000ull)
		return -1; /* "segfault": denied */
	*pa = VFX_DATA + (p->addr & 0xff000);
	*prot = VIOMMU_READ | VIOMMU_WRITE;
	return 0;
}

/*
 * ep_access() - the PRI endpoint: an ATS-style look-up (no fault report),
 * a page request when it fails, the driver's turn, the response, retry.
 * Return: 0 with *@v read; or the response code + 1 when it gave up.
 */
static int ep_access(struct tx *x, struct viommu_endpoint *ep,
		     uint32_t pasid, uint64_t iova, uint32_t *v,
		     unsigned int *calls, uint32_t grp)
{
	struct viommu_domain *d = NULL;
	struct viommu_xlate xl;
	enum viommu_vi_page_resp resp;
	uint32_t id = viommu_endpoint_id(ep);

	for (int tries = 0; tries < 2; tries++) {
		viommu_endpoint_domain(ep, pasid, &d);
		if (d && !viommu_domain_lookup(d, iova, 4, VIOMMU_READ, &xl))
			return viommu_dma_read(ep, pasid, iova, v, 4);
		if (viommu_virtio_iommu_page_request(x->f.vi, id, pasid, iova,
						     VIOMMU_READ, true, grp))
			return -100;
		refdrv_table_handle_faults(x->t, 1, populate_data, calls, 8);
		if (viommu_virtio_iommu_page_response(x->f.vi, id, grp, &resp))
			return -101;
		if (resp != VIOMMU_VI_PAGE_RESP_SUCCESS)
			return (int)resp + 1;
	}
	return -102;
}

TEST(V20_V22_V26_flow_bind_dma_fault_populate_respond_retry_unbind)
{
	struct tx x;
	unsigned int calls = 0;
	uint32_t v = 0;
	struct viommu_virtio_iommu_table_stats st;

	REQUIRE(tx_full(&x) == 0);
	CHECK(x.f.info.features & F_PAGE_REQ);
	put32(&x.f, VFX_DATA + 0x45000, 0xfeed);
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	/* Fault, populate, SUCCESS, retry: the read lands. */
	CHECK_EQ(ep_access(&x, x.f.ep8, VIOMMU_NO_PASID, 0x12345000, &v,
			   &calls, 7), 0);
	CHECK_EQ(v, 0xfeed);
	CHECK_EQ(calls, 1);
	/* Now mapped: no page request. */
	CHECK_EQ(ep_access(&x, x.f.ep8, VIOMMU_NO_PASID, 0x12345000, &v,
			   &calls, 7), 0);
	CHECK_EQ(calls, 1);
	/* Denied: INVALID, the endpoint gives up (V26). */
	CHECK_EQ(ep_access(&x, x.f.ep8, VIOMMU_NO_PASID, 0x123400000ull, &v,
			   &calls, 8), 1 + VIOMMU_VI_PAGE_RESP_INVALID);
	st = tx_stats(&x);
	CHECK_EQ(st.page_requests, 2);
	CHECK_EQ(st.page_req_sent, 2);
	CHECK_EQ(st.responses, 2);
	/* Unbind: the endpoint's DMA faults again. */
	uint8_t s;
	CHECK_EQ(refdrv_table_unbind(x.t, 1, 8, VIOMMU_NO_PASID, &s), 0);
	CHECK_EQ(s, S_OK);
	CHECK_EQ(tx_read(x.f.ep8, VIOMMU_NO_PASID, 0x12345000, &v), -EFAULT);
	tx_fini(&x);
}

TEST(V20_short_event_buffer_returned_unused_report_waits)
{
	struct vfx_opts o;
	struct tx x;
	struct drvring *eq;
	struct drvring_seg seg = { VFX_DATA + 0x8000, 24, true };
	struct refdrv_fault ev[2];
	uint64_t token = 0;
	uint32_t len = 99, v;
	unsigned long w;

	memset(&o, 0, sizeof(o));
	memset(&x, 0, sizeof(x));
	o.dev.features = F_ALL_DEV | F_ATTACH_TABLE | F_PAGE_REQ;
	o.no_events = true;
	REQUIRE(vfx_init(&x.f, &o) == 0);
	/* The driver posts one 24-byte buffer behind refdrv's back. */
	eq = refdrv_ring(x.f.drv, 1);
	REQUIRE(eq != NULL);
	REQUIRE(drvring_add(eq, &seg, 1, 77, false) == 0);
	viommu_virtio_dev_notify(x.f.dev, 1);
	w = x.f.nwarn;
	CHECK_EQ(tx_read(x.f.ep9, VIOMMU_NO_PASID, 0x3000, &v), -EFAULT);
	CHECK_EQ(drvring_get_used(eq, &token, &len), 0);
	CHECK_EQ(token, 77);
	CHECK_EQ(len, 0);
	CHECK_EQ(x.f.nwarn - w, 1); /* V29 */
	CHECK(strstr(x.f.last_warn, "V20") != NULL);
	/* A 48-byte buffer then gets the report that waited. */
	CHECK_EQ(refdrv_events_post(x.f.drv, 1), 1);
	REQUIRE(refdrv_events_poll(x.f.drv, ev, 2) == 1);
	CHECK_EQ(ev[0].used_len, 48);
	CHECK_EQ(vfx_get(ev[0].raw + 16, 4), 9);
	vfx_fini(&x.f);
}

TEST(V21_V22_event_layouts)
{
	struct tx x;
	struct refdrv_fault ev[2];
	uint32_t v;
	const uint8_t *p;

	REQUIRE(tx_full(&x) == 0);
	/* An unrecoverable fault in the 48-byte layout (V21). */
	CHECK_EQ(tx_read(x.f.ep9, VIOMMU_NO_PASID, 0x3000, &v), -EFAULT);
	REQUIRE(refdrv_events_poll(x.f.drv, ev, 2) == 1);
	p = ev[0].raw;
	CHECK_EQ(ev[0].used_len, 48);
	CHECK_EQ(p[0], FAULT_R_DOMAIN);
	CHECK_EQ(vfx_get(p + 4, 2), 1);
	CHECK_EQ(vfx_get(p + 8, 4), FAULT_F_READ);
	CHECK_EQ(vfx_get(p + 12, 4), 2);
	CHECK_EQ(vfx_get(p + 16, 4), 9);
	CHECK_U64(vfx_get(p + 32, 8), 0x3000);
	CHECK(vfx_all(p + 40, 8, 0));
	/* A page request with a PASID (V22). */
	CHECK_EQ(refdrv_table_bind(x.t, 2, 8, 33, &(uint8_t){ 0 }), 0);
	CHECK_EQ(viommu_virtio_iommu_page_request(x.f.vi, 8, 33, 0x7654321,
						  VIOMMU_WRITE, false, 300), 0);
	REQUIRE(refdrv_events_poll(x.f.drv, ev, 2) == 1);
	p = ev[0].raw;
	CHECK_EQ(p[0], 0);
	CHECK_EQ(vfx_get(p + 4, 2), 2);
	CHECK_EQ(vfx_get(p + 8, 4), 2);
	CHECK_EQ(vfx_get(p + 12, 4), 1); /* PASID_VALID, not LAST */
	CHECK_EQ(vfx_get(p + 20, 4), 33);
	CHECK_EQ(vfx_get(p + 24, 4), 300);
	CHECK_U64(vfx_get(p + 32, 8), 0x7654000);
	CHECK(vfx_all(p + 1, 3, 0) && vfx_all(p + 6, 2, 0) &&
	      vfx_all(p + 28, 4, 0) && vfx_all(p + 40, 8, 0));
	tx_fini(&x);
}

TEST(V23_V24_V25_page_resp_refusals_change_nothing)
{
	struct tx x;
	uint8_t b[LEN_PR];
	enum viommu_vi_page_resp r;
	struct refdrv_fault ev[2];

	REQUIRE(tx_full(&x) == 0);
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	/* Never requested. */
	tx_req_pr(b, 1, 8, 4, 0);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_PR), S_INVAL);
	/* Group 4 open, not last yet: INVAL. */
	CHECK_EQ(viommu_virtio_iommu_page_request(x.f.vi, 8, VIOMMU_NO_PASID,
						  0x1000, VIOMMU_READ, false,
						  4), 0);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_PR), S_INVAL);
	CHECK_EQ(viommu_virtio_iommu_page_request(x.f.vi, 8, VIOMMU_NO_PASID,
						  0x2000, VIOMMU_READ, true,
						  4), 0);
	CHECK_EQ(refdrv_events_poll(x.f.drv, ev, 2), 2);
	/* Field refusals. */
	tx_req_pr(b, 1, 8, 4, 3);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_PR), S_INVAL);
	tx_req_pr(b, 1, 8, 4, 0);
	b[27] = 1;
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_PR), S_INVAL);
	tx_req_pr(b, 1, 8, 4, 0);
	b[26] = 1; /* pasid_valid without the flag */
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_PR), S_INVAL);
	tx_req_pr(b, 1, 8, 4, 0);
	vfx_put(b + 12, 1, 4);
	b[26] = 1;
	vfx_put(b + 16, 1u << 20, 4);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_PR), S_RANGE);
	tx_req_pr(b, 1, 1234, 4, 0);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_PR), S_NOENT);
	tx_req_pr(b, 2, 8, 4, 0);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_PR), S_INVAL); /* V25 */
	CHECK_EQ(viommu_virtio_iommu_page_response(x.f.vi, 8, 4, &r), -EAGAIN);
	/* The right one, then the same again (V24). */
	tx_req_pr(b, 1, 8, 4, 2);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_PR), S_OK);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_PR), S_INVAL);
	CHECK_EQ(viommu_virtio_iommu_page_response(x.f.vi, 8, 4, &r), 0);
	CHECK_EQ(r, VIOMMU_VI_PAGE_RESP_FAILURE);
	CHECK_EQ(viommu_virtio_iommu_page_response(x.f.vi, 8, 4, &r), -ENOENT);
	tx_fini(&x);
}

TEST(V27_bounded_groups_and_timeout)
{
	struct vfx_opts o;
	struct tx x;
	enum viommu_vi_page_resp r;
	uint8_t b[LEN_PR];

	memset(&o, 0, sizeof(o));
	memset(&x, 0, sizeof(x));
	o.dev.features = F_ALL_DEV | F_ATTACH_TABLE | F_PAGE_REQ;
	o.dev.pri_groups = 4;
	o.dev.pri_timeout_ms = 5;
	o.dev.clock_ms = fake_clock;
	o.no_events = true; /* the driver posts no event buffer at all */
	REQUIRE(vfx_init(&x.f, &o) == 0);
	struct refdrv_table_config tc = { .drv = x.f.drv, .mem = x.f.mem,
		.pool_gpa = POOL_GPA, .pool_size = POOL_SIZE, .asid = 1 };
	REQUIRE(refdrv_table_create(&tc, &x.t) == 0);
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	for (uint32_t g = 0; g < 4; g++)
		CHECK_EQ(viommu_virtio_iommu_page_request(
				 x.f.vi, 8, VIOMMU_NO_PASID, g << 12,
				 VIOMMU_READ, true, g), 0);
	CHECK_EQ(viommu_virtio_iommu_page_request(x.f.vi, 8, VIOMMU_NO_PASID,
						  0, VIOMMU_READ, true, 9),
		 -EBUSY);
	CHECK_EQ(tx_stats(&x).page_req_busy, 1);
	CHECK(strstr(x.f.last_warn, "V27") != NULL); /* V29: one line */
	/* The driver never answers: past the timeout the device does. */
	fake_ms += 4;
	CHECK_EQ(viommu_virtio_iommu_page_response(x.f.vi, 8, 0, &r), -EAGAIN);
	fake_ms += 1;
	CHECK_EQ(viommu_virtio_iommu_page_response(x.f.vi, 8, 0, &r), 0);
	CHECK_EQ(r, VIOMMU_VI_PAGE_RESP_FAILURE);
	CHECK_EQ(tx_stats(&x).timeouts, 4);
	tx_req_pr(b, 1, 8, 1, 0);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_PR), S_INVAL); /* too late */
	/* Answered groups are reclaimed: new groups fit again. */
	for (uint32_t g = 10; g < 14; g++)
		CHECK_EQ(viommu_virtio_iommu_page_request(
				 x.f.vi, 8, VIOMMU_NO_PASID, 0, VIOMMU_READ,
				 true, g), 0);
	tx_fini(&x);
}

TEST(V28_reset_answers_failure)
{
	struct tx x;
	enum viommu_vi_page_resp r;

	REQUIRE(tx_full(&x) == 0);
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	CHECK_EQ(viommu_virtio_iommu_page_request(x.f.vi, 8, VIOMMU_NO_PASID,
						  0, VIOMMU_READ, true, 1), 0);
	CHECK_EQ(refdrv_reset(x.f.drv), 0);
	CHECK_EQ(viommu_virtio_iommu_page_response(x.f.vi, 8, 1, &r), 0);
	CHECK_EQ(r, VIOMMU_VI_PAGE_RESP_FAILURE);
	tx_fini(&x);
}

TEST(V29_one_warn_line_per_refusal)
{
	struct tx x;
	uint8_t b[LEN_INV];
	unsigned long w;

	REQUIRE(tx_full(&x) == 0);
	w = x.f.nwarn;
	tx_req_inv(b, 5, 1, 0, 0, 0, 0, 0, 0);
	CHECK_EQ(vfx_raw_status(&x.f, b, LEN_INV), S_NOENT);
	CHECK_EQ(x.f.nwarn - w, 1);
	CHECK(strstr(x.f.last_warn, "V16") != NULL);
	tx_fini(&x);
}

TEST(V30_page_request_needs_driver_feature_and_table)
{
	struct tx x;

	REQUIRE(tx_init(&x, F_ALL_DEV | F_ATTACH_TABLE | F_PAGE_REQ,
			F_ALL_DEV | F_VERSION_1 | F_ATTACH_TABLE) == 0);
	CHECK_EQ(tx_bind(&x, 1, 8), S_OK);
	CHECK_EQ(viommu_virtio_iommu_page_request(x.f.vi, 8, VIOMMU_NO_PASID,
						  0, VIOMMU_READ, true, 1),
		 -EOPNOTSUPP);
	tx_fini(&x);
	REQUIRE(tx_full(&x) == 0);
	CHECK_EQ(viommu_virtio_iommu_page_request(x.f.vi, 8, VIOMMU_NO_PASID,
						  0, VIOMMU_READ, true, 1),
		 -ENOENT); /* not bound through a table */
	CHECK_EQ(vfx_attach(&x.f, 2, 8, 0), S_OK);
	CHECK_EQ(viommu_virtio_iommu_page_request(x.f.vi, 8, VIOMMU_NO_PASID,
						  0, VIOMMU_READ, true, 1),
		 -ENOENT); /* MAP mode */
	CHECK_EQ(viommu_virtio_iommu_page_request(x.f.vi, 8, VIOMMU_NO_PASID,
						  0, 0x80, true, 1), -EINVAL);
	CHECK_EQ(viommu_virtio_iommu_page_request(x.f.vi, 8, VIOMMU_NO_PASID,
						  0, VIOMMU_READ, true, 512),
		 -EINVAL);
	tx_fini(&x);
}

/* ------------------------------------------------------------------ */
/* The DMA engine as a PASID + PRI endpoint                           */

#define EBAR 0xfe000000ull

/* Glue: the engine's page requests go to the virtio-iommu for ep 8. */
static int glue_req(void *opaque, uint32_t pasid, uint64_t iova,
		    unsigned int perm, bool last, uint32_t grp)
{
	return viommu_virtio_iommu_page_request(opaque, 8, pasid, iova, perm,
						last, grp);
}

static int glue_resp(void *opaque, uint32_t grp, int *code)
{
	enum viommu_vi_page_resp r;
	int ret = viommu_virtio_iommu_page_response(opaque, 8, grp, &r);

	*code = (int)r;
	return ret;
}

static const struct dma_engine_pri_ops glue = { glue_req, glue_resp };

static uint64_t erd(struct dma_engine *e, uint64_t off)
{
	uint64_t v = 0;

	pci_bar_access(dma_engine_func(e), EBAR + off, false, false, &v, 4);
	return v;
}

static void ewr(struct dma_engine *e, uint64_t off, uint64_t v,
		unsigned int size)
{
	pci_bar_access(dma_engine_func(e), EBAR + off, false, true, &v, size);
}

TEST(V22_V26_dma_engine_pasid_pri_fault_populate_retry_give_up)
{
	struct tx x;
	struct dma_engine e;
	unsigned int calls = 0;
	uint8_t s = 0;
	uint32_t got = 0;

	REQUIRE(tx_full(&x) == 0);
	REQUIRE(dma_engine_init(&e, x.f.ep8, x.f.mem, "pri", NULL, NULL) == 0);
	pci_cfg_write(dma_engine_func(&e), PCI_BAR0, (uint32_t)EBAR, 4);
	pci_cfg_write(dma_engine_func(&e), PCI_COMMAND,
		      PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	dma_engine_set_pri(&e, &glue, x.f.vi);
	CHECK_EQ(refdrv_table_bind(x.t, 1, 8, 5, &s), 0);
	CHECK_EQ(s, S_OK);
	ewr(&e, DMA_ENGINE_BUF_ADDR, 0x11223344, 4);
	ewr(&e, DMA_ENGINE_BUF_ADDR + 4096, 0x55667788, 4);
	ewr(&e, DMAE_PASID, DMAE_PASID_EN | 5, 4);
	ewr(&e, DMAE_PRI_CTRL, DMAE_PRI_EN, 4);
	/* Two pages to RAM at an IOVA nothing maps yet. */
	ewr(&e, DMAE_DMA_SRC, DMA_ENGINE_BUF_ADDR, 8);
	ewr(&e, DMAE_DMA_DST, 0x20000000, 8);
	ewr(&e, DMAE_DMA_COUNT, 8192, 8);
	ewr(&e, DMAE_DMA_CMD, DMAE_CMD_START | DMAE_CMD_TO_RAM, 8);
	for (int round = 0; round < 4 && (erd(&e, DMAE_PRI_STATUS) &
					  DMAE_PRI_WAIT); round++)
		refdrv_table_handle_faults(x.t, 1, populate_data, &calls, 8);
	CHECK_EQ(erd(&e, DMAE_PRI_STATUS), 0);
	CHECK_EQ(erd(&e, DMAE_EXT_DMA_COUNT), 1);
	CHECK_EQ(calls, 2); /* one page request per missing page */
	memcpy(&got, x.f.ram + VFX_DATA, 4);
	CHECK_EQ(got, 0x11223344);
	memcpy(&got, x.f.ram + VFX_DATA + 0x1000, 4);
	CHECK_EQ(got, 0x55667788);
	CHECK_EQ(e.stats.page_requests, 2);
	/* Denied by the driver: INVALID, the engine gives up. */
	ewr(&e, DMAE_DMA_DST, 0x7700000000ull, 8);
	ewr(&e, DMAE_DMA_COUNT, 16, 8);
	ewr(&e, DMAE_DMA_CMD, DMAE_CMD_START | DMAE_CMD_TO_RAM, 8);
	CHECK(erd(&e, DMAE_PRI_STATUS) & DMAE_PRI_WAIT);
	refdrv_table_handle_faults(x.t, 1, populate_data, &calls, 8);
	CHECK_EQ(erd(&e, DMAE_PRI_STATUS), DMAE_PRI_GAVE_UP);
	CHECK(erd(&e, DMAE_EXT_STATUS) & DMAE_EXT_ERR_DMA);
	CHECK_EQ(erd(&e, DMAE_EXT_DMA_COUNT), 1);
	/* A driver that never answers: the device times the group out. */
	dma_engine_destroy(&e);
	tx_fini(&x);
}

TEST(V27_dma_engine_silent_driver_times_out)
{
	struct vfx_opts o;
	struct tx x;
	struct dma_engine e;
	uint8_t s = 0;

	memset(&o, 0, sizeof(o));
	memset(&x, 0, sizeof(x));
	o.dev.features = F_ALL_DEV | F_ATTACH_TABLE | F_PAGE_REQ;
	o.dev.pri_timeout_ms = 5;
	o.dev.clock_ms = fake_clock;
	REQUIRE(vfx_init(&x.f, &o) == 0);
	struct refdrv_table_config tc = { .drv = x.f.drv, .mem = x.f.mem,
		.pool_gpa = POOL_GPA, .pool_size = POOL_SIZE, .asid = 1 };
	REQUIRE(refdrv_table_create(&tc, &x.t) == 0);
	REQUIRE(dma_engine_init(&e, x.f.ep8, x.f.mem, "pri", NULL, NULL) == 0);
	pci_cfg_write(dma_engine_func(&e), PCI_BAR0, (uint32_t)EBAR, 4);
	pci_cfg_write(dma_engine_func(&e), PCI_COMMAND,
		      PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	dma_engine_set_pri(&e, &glue, x.f.vi);
	CHECK_EQ(refdrv_table_bind(x.t, 1, 8, VIOMMU_NO_PASID, &s), 0);
	ewr(&e, DMAE_PRI_CTRL, DMAE_PRI_EN, 4);
	ewr(&e, DMAE_DMA_SRC, DMA_ENGINE_BUF_ADDR, 8);
	ewr(&e, DMAE_DMA_DST, 0x20000000, 8);
	ewr(&e, DMAE_DMA_COUNT, 64, 8);
	ewr(&e, DMAE_DMA_CMD, DMAE_CMD_START | DMAE_CMD_TO_RAM, 8);
	CHECK(erd(&e, DMAE_PRI_STATUS) & DMAE_PRI_WAIT);
	fake_ms += 4;
	CHECK(erd(&e, DMAE_PRI_STATUS) & DMAE_PRI_WAIT);
	fake_ms += 1;
	/* Failure: the engine gives up and turns PRI off. */
	CHECK_EQ(erd(&e, DMAE_PRI_STATUS), DMAE_PRI_GAVE_UP);
	CHECK_EQ(erd(&e, DMAE_PRI_CTRL), 0);
	CHECK_EQ(tx_stats(&x).timeouts, 1);
	dma_engine_destroy(&e);
	tx_fini(&x);
}

TEST_MAIN()
