/*
 * test_virtio_iommu_scenarios.c - virtio-iommu scenarios beyond single
 * rules (the rules D1-D37 are in test_virtio_iommu.c):
 *
 *   - unmap_example_1..7: the UNMAP examples of VIRTIO 1.3 §5.13.6.6 with
 *     their exact results (byte ranges: page_size_mask bit 0);
 *   - qtest_*: the scenarios of QEMU's tests/qtest/virtio-iommu-test.c,
 *     re-expressed (facts only): config defaults, attach/detach and
 *     map/unmap statuses, on endpoint 0 with byte-granular maps;
 *   - linux_*: what the Linux guest driver relies on: exact used lengths,
 *     batches processed in ring order, the x86 MSI region in PROBE,
 *     identity domains through ATTACH_F_BYPASS;
 *   - fault_*: event-queue reports, the backlog when no buffer is posted;
 *   - reset_*: device reset, system reset, DEVICE_NEEDS_RESET;
 *   - refdrv_*: the reference driver's own API;
 *   - a few device choices where the spec leaves room (domain_range,
 *     inverted ranges, limits, one log line per refusal).
 */
#include <pthread.h>

#include "harness.h"
#include "test_virtio_iommu_fixture.h"
#include "virtio/iommu_internal.h" /* the log limiter, to end a window */

#include <time.h>

/* byte_opts() - ring @r with a byte granule (page_size_mask bit 0). */
static struct vfx_opts byte_opts(int r)
{
	struct vfx_opts o = vfx_ring_opts(r);

	o.dev.page_size_mask = 1;
	return o;
}

/* ------------------------------------------------------------------ */
/* The spec's UNMAP examples (each starts from a blank address space)  */

/*
 * The examples run over every ring kind, once as written with a byte
 * granule (page_size_mask bit 0) and once scaled by 4096 with a 4 KiB
 * granule: A(x) is address x in the example's units.
 */
struct example {
	struct vfx f;
	uint64_t scale;
};

/* A() / E() - first and last byte of example unit @x. */
#define A(x) ((uint64_t)(x) * ex.scale)
#define E(x) ((uint64_t)(x) * ex.scale + ex.scale - 1)
#define FOR_EACH_EXAMPLE(r, k)                                          \
	FOR_EACH_RING(r) for (int k = 0; k < 2; k++)

/* example_setup() - blank domain 1 holding endpoint 8. */
static int example_setup(struct example *ex, int r, int k)
{
	struct vfx_opts o = vfx_ring_opts(r);
	int rc;

	ex->scale = k ? 4096 : 1;
	o.dev.page_size_mask = ex->scale;
	rc = vfx_init(&ex->f, &o);
	if (rc)
		return rc;
	if (vfx_attach(&ex->f, 1, 8, 0) != S_OK) {
		vfx_fini(&ex->f);
		return -EIO;
	}
	return 0;
}

/* ex_map() / ex_unmap() - map(a, b) and unmap(a, b) in example units. */
static uint8_t ex_map(struct example *ex, uint64_t a, uint64_t b,
		      uint64_t pa)
{
	return vfx_map(&ex->f, 1, a * ex->scale, (b + 1) * ex->scale - 1, pa,
		       MAP_R);
}

static uint8_t ex_unmap(struct example *ex, uint64_t a, uint64_t b)
{
	return vfx_unmap(&ex->f, 1, a * ex->scale, (b + 1) * ex->scale - 1);
}

TEST(unmap_example_1)
{
	FOR_EACH_EXAMPLE(r, k) {
		struct example ex;

		REQUIRE(example_setup(&ex, r, k) == 0);
		CHECK_EQ(ex_unmap(&ex, 0, 4), S_OK);
		CHECK_EQ(vfx_maps(ex.f.ep8).n, 0);
		vfx_fini(&ex.f);
	}
}

TEST(unmap_example_2)
{
	FOR_EACH_EXAMPLE(r, k) {
		struct example ex;

		REQUIRE(example_setup(&ex, r, k) == 0);
		CHECK_EQ(ex_map(&ex, 0, 9, 0xa0000), S_OK);
		CHECK_EQ(ex_unmap(&ex, 0, 9), S_OK);
		CHECK_EQ(vfx_maps(ex.f.ep8).n, 0);
		vfx_fini(&ex.f);
	}
}

TEST(unmap_example_3)
{
	FOR_EACH_EXAMPLE(r, k) {
		struct example ex;

		REQUIRE(example_setup(&ex, r, k) == 0);
		CHECK_EQ(ex_map(&ex, 0, 4, 0xa0000), S_OK);
		CHECK_EQ(ex_map(&ex, 5, 9, 0xb0000), S_OK);
		CHECK_EQ(ex_unmap(&ex, 0, 9), S_OK);
		CHECK_EQ(vfx_maps(ex.f.ep8).n, 0);
		vfx_fini(&ex.f);
	}
}

TEST(unmap_example_4)
{
	FOR_EACH_EXAMPLE(r, k) {
		struct vfx_maps l;
		struct example ex;

		REQUIRE(example_setup(&ex, r, k) == 0);
		CHECK_EQ(ex_map(&ex, 0, 9, 0xa0000), S_OK);
		CHECK_EQ(ex_unmap(&ex, 0, 4), S_RANGE);
		l = vfx_maps(ex.f.ep8);
		CHECK_EQ(l.n, 1);
		CHECK(vfx_has_map(&l, A(0), E(9), 0xa0000));
		CHECK_U64(vfx_xlate(ex.f.ep8, A(7), VIOMMU_READ),
			  0xa0000 + A(7));
		vfx_fini(&ex.f);
	}
}

TEST(unmap_example_5)
{
	FOR_EACH_EXAMPLE(r, k) {
		struct vfx_maps l;
		struct example ex;

		REQUIRE(example_setup(&ex, r, k) == 0);
		CHECK_EQ(ex_map(&ex, 0, 4, 0xa0000), S_OK);
		CHECK_EQ(ex_map(&ex, 5, 9, 0xb0000), S_OK);
		CHECK_EQ(ex_unmap(&ex, 0, 4), S_OK);
		l = vfx_maps(ex.f.ep8);
		CHECK_EQ(l.n, 1);
		CHECK(vfx_has_map(&l, A(5), E(9), 0xb0000));
		vfx_fini(&ex.f);
	}
}

TEST(unmap_example_6)
{
	FOR_EACH_EXAMPLE(r, k) {
		struct example ex;

		REQUIRE(example_setup(&ex, r, k) == 0);
		CHECK_EQ(ex_map(&ex, 0, 4, 0xa0000), S_OK);
		CHECK_EQ(ex_unmap(&ex, 0, 9), S_OK);
		CHECK_EQ(vfx_maps(ex.f.ep8).n, 0);
		vfx_fini(&ex.f);
	}
}

TEST(unmap_example_7)
{
	FOR_EACH_EXAMPLE(r, k) {
		struct example ex;

		REQUIRE(example_setup(&ex, r, k) == 0);
		CHECK_EQ(ex_map(&ex, 0, 4, 0xa0000), S_OK);
		CHECK_EQ(ex_map(&ex, 10, 14, 0xb0000), S_OK);
		CHECK_EQ(ex_unmap(&ex, 0, 14), S_OK);
		CHECK_EQ(vfx_maps(ex.f.ep8).n, 0);
		vfx_fini(&ex.f);
	}
}

#undef A
#undef E

/* ------------------------------------------------------------------ */
/* QEMU's qtest scenarios                                             */

TEST(qtest_config)
{
	struct vfx_opts o = { 0 };
	struct vfx f;

	o.dev.boot_bypass = true; /* QEMU's default boot-bypass */
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_U64(vfx_cfg(&f, CFG_IN_START, 8), 0);
	CHECK(vfx_cfg(&f, CFG_IN_END, 8) >= UINT32_MAX);
	CHECK_EQ(vfx_cfg(&f, CFG_DOM_START, 4), 0);
	CHECK_U64(vfx_cfg(&f, CFG_DOM_END, 4), UINT32_MAX);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 1);
	vfx_fini(&f);
}

TEST(qtest_attach_detach)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = byte_opts(r);
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(vfx_attach(&f, 0, 0, 0), S_OK);
		CHECK_EQ(vfx_attach(&f, 0, 444, 0), S_NOENT);
		CHECK_EQ(vfx_detach(&f, 0, 1), S_NOENT);
		CHECK_EQ(vfx_attach(&f, 1, 0, 0), S_OK);   /* move */
		CHECK_EQ(vfx_detach(&f, 0, 0), S_INVAL);   /* not there */
		CHECK_EQ(vfx_detach(&f, 1, 0), S_OK);
		CHECK_EQ(vfx_attach(&f, 1, 0, 0), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0x0, 0xfff, 0xa1000, MAP_R), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0x2000, 0x2fff, 0xb1000, MAP_R), S_OK);
		CHECK_EQ(vfx_detach(&f, 1, 0), S_OK);      /* with mappings */
		CHECK_EQ(vfx_ctx_domains(&f), 0);
		vfx_fini(&f);
	}
}

TEST(qtest_map_unmap)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = byte_opts(r);
		struct vfx_maps l;
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(vfx_attach(&f, 1, 0, 0), S_OK);
		CHECK_EQ(vfx_map(&f, 0, 0, 0xfff, 0xa1000, MAP_R), S_NOENT);
		CHECK_EQ(vfx_map(&f, 1, 0, 0xfff, 0xa1000, MAP_R), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0, 0xffff, 0xb1000, MAP_R), S_INVAL);
		CHECK_EQ(vfx_unmap(&f, 4, 0x10, 0xfff), S_NOENT);
		CHECK_EQ(vfx_unmap(&f, 1, 0x10, 0xfff), S_RANGE);
		CHECK_EQ(vfx_unmap(&f, 1, 0, 0x1000), S_OK);
		CHECK_EQ(vfx_maps(f.ep0).n, 0);
		/* The spec sequence, one after the other. */
		CHECK_EQ(vfx_unmap(&f, 1, 0, 4), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0, 9, 0xa1000, MAP_R), S_OK);
		CHECK_EQ(vfx_unmap(&f, 1, 0, 9), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0, 4, 0xb1000, MAP_R), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 5, 9, 0xb2000, MAP_R), S_OK);
		CHECK_EQ(vfx_unmap(&f, 1, 0, 9), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0, 9, 0xc1000, MAP_R), S_OK);
		CHECK_EQ(vfx_unmap(&f, 1, 0, 4), S_RANGE);
		CHECK_EQ(vfx_unmap(&f, 1, 0, 10), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0, 4, 0xd1000, MAP_R), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 5, 9, 0xd2000, MAP_R), S_OK);
		CHECK_EQ(vfx_unmap(&f, 1, 0, 4), S_OK);
		CHECK_EQ(vfx_unmap(&f, 1, 5, 9), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0, 4, 0xe2000, MAP_R), S_OK);
		CHECK_EQ(vfx_unmap(&f, 1, 0, 9), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0, 4, 0xf2000, MAP_R), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 10, 14, 0xf3000, MAP_R), S_OK);
		CHECK_EQ(vfx_unmap(&f, 1, 0, 14), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 10, 14, 0xf3000, MAP_R), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0, 4, 0xf2000, MAP_R), S_OK);
		CHECK_EQ(vfx_unmap(&f, 1, 0, 4), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 10, 14, 0xf3000, MAP_R), S_INVAL);
		l = vfx_maps(f.ep0);
		CHECK_EQ(l.n, 1);
		CHECK(vfx_has_map(&l, 10, 14, 0xf3000));
		vfx_fini(&f);
	}
}

/* ------------------------------------------------------------------ */
/* What the Linux driver relies on                                    */

TEST(linux_used_length_full)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		uint8_t req[LEN_PROBE], reply[516];
		struct vfx f;
		uint32_t n;

		REQUIRE(vfx_init(&f, &o) == 0);
		/* Successes and failures of every type: 4 bytes each. */
		n = vfx_req_attach(req, 1, 8, 0);
		CHECK_EQ(vfx_raw(&f, req, n, 4, reply), 4);
		n = vfx_req_attach(req, 1, 99, 0);
		CHECK_EQ(vfx_raw(&f, req, n, 4, reply), 4);
		n = vfx_req_map(req, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R);
		CHECK_EQ(vfx_raw(&f, req, n, 4, reply), 4);
		CHECK_EQ(vfx_raw(&f, req, n, 4, reply), 4); /* INVAL */
		n = vfx_req_unmap(req, 1, 0x1800, 0x1fff);
		CHECK_EQ(vfx_raw(&f, req, n, 4, reply), 4); /* RANGE */
		n = vfx_req_unmap(req, 1, 0x1000, 0x1fff);
		CHECK_EQ(vfx_raw(&f, req, n, 4, reply), 4);
		n = vfx_req_detach(req, 3, 8);
		CHECK_EQ(vfx_raw(&f, req, n, 4, reply), 4); /* INVAL */
		/* PROBE: the whole properties buffer plus the tail. */
		n = vfx_req_probe(req, 8);
		CHECK_EQ(vfx_raw(&f, req, n, 516, reply), 516);
		n = vfx_req_probe(req, 77);
		CHECK_EQ(vfx_raw(&f, req, n, 516, reply), 516);
		CHECK_EQ(reply[512], S_NOENT);
		/* The driver saw no short reply in any of its own requests
		 * either. */
		CHECK_EQ(vfx_attach(&f, 2, 9, 0), S_OK);
		CHECK_EQ(vfx_map(&f, 2, 0, 0xfff, 0, 0x80), S_INVAL);
		CHECK_EQ(vfx_info(&f)->bad_len, 0);
		vfx_fini(&f);
	}
}

TEST(linux_batch_ring_order)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		uint8_t s[3] = { 0xaa, 0xaa, 0xaa };
		uint64_t kicks;
		struct vfx_maps l;
		struct vfx f;

		o.mode = REFDRV_BATCHED;
		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		kicks = refdrv_kicks(f.drv);
		CHECK_EQ(refdrv_map(f.drv, 1, 0x10000, VFX_DATA, 0x4000,
				    MAP_R, &s[0]), 0);
		CHECK_EQ(refdrv_unmap(f.drv, 1, 0x10000, 0x4000, &s[1]), 0);
		CHECK_EQ(refdrv_map(f.drv, 1, 0x10000, VFX_DATA + 0x8000,
				    0x4000, MAP_R | MAP_W, &s[2]), 0);
		CHECK_EQ(s[0], REFDRV_S_PENDING);
		CHECK_U64(refdrv_kicks(f.drv), kicks);
		CHECK_EQ(refdrv_commit(f.drv), 0);
		CHECK_U64(refdrv_kicks(f.drv), kicks + 1);
		CHECK_EQ(s[0], S_OK);
		CHECK_EQ(s[1], S_OK);
		CHECK_EQ(s[2], S_OK);
		l = vfx_maps(f.ep8);
		CHECK_EQ(l.n, 1);
		CHECK(vfx_has_map(&l, 0x10000, 0x13fff, VFX_DATA + 0x8000));
		CHECK_U64(vfx_xlate(f.ep8, 0x10010, VIOMMU_WRITE),
			  VFX_DATA + 0x8010);
		vfx_fini(&f);
	}
}

TEST(linux_batch_statuses_in_order)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		uint8_t s[6];
		struct vfx f;

		o.mode = REFDRV_BATCHED;
		REQUIRE(vfx_init(&f, &o) == 0);
		memset(s, 0xaa, sizeof(s));
		refdrv_attach(f.drv, 1, 8, 0, &s[0]);
		refdrv_map(f.drv, 1, 0x1000, VFX_DATA, 0x2000, MAP_R, &s[1]);
		refdrv_map(f.drv, 1, 0x2000, VFX_DATA, 0x1000, MAP_R, &s[2]);
		refdrv_unmap(f.drv, 1, 0x1000, 0x1000, &s[3]);
		refdrv_detach(f.drv, 1, 8, &s[4]);
		refdrv_map(f.drv, 1, 0x1000, VFX_DATA, 0x1000, MAP_R, &s[5]);
		CHECK_EQ(refdrv_commit(f.drv), 3);
		CHECK_EQ(s[0], S_OK);
		CHECK_EQ(s[1], S_OK);
		CHECK_EQ(s[2], S_INVAL);  /* overlaps s[1]'s mapping */
		CHECK_EQ(s[3], S_RANGE);  /* would split it */
		CHECK_EQ(s[4], S_OK);
		CHECK_EQ(s[5], S_NOENT);  /* the domain died with s[4] */
		CHECK_EQ(refdrv_commit(f.drv), 0); /* nothing new */
		vfx_fini(&f);
	}
}

TEST(linux_batch_full_ring_commits_itself)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		uint8_t s[100];
		struct vfx f;

		o.mode = REFDRV_BATCHED;
		o.queue_size = 8;
		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(f.info.queue_size, 8);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		for (int i = 0; i < 100; i++)
			CHECK_EQ(refdrv_map_page(f.drv, 1, 0x1000ull * i,
						 VFX_DATA, MAP_R, &s[i]), 0);
		CHECK(refdrv_kicks(f.drv) >= 13); /* 100 maps, <= 8 a kick */
		CHECK_EQ(refdrv_commit(f.drv), 0);
		for (int i = 0; i < 100; i++)
			CHECK_EQ(s[i], S_OK);
		CHECK_EQ(vfx_maps(f.ep8).n, 100);
		CHECK_EQ(vfx_info(&f)->requests, 101);
		vfx_fini(&f);
	}
}

TEST(linux_strict_kicks_every_request)
{
	struct vfx_opts o = { 0 };
	uint64_t k0;
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	k0 = refdrv_kicks(f.drv);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(vfx_map(&f, 1, 0x1000ull * i, 0x1000ull * i + 0xfff,
				 VFX_DATA, MAP_R), S_OK);
	CHECK_U64(refdrv_kicks(f.drv), k0 + 10);
	CHECK_EQ(vfx_stats(&f).kicks, k0 + 10);
	vfx_fini(&f);

	o.mode = REFDRV_BATCHED;
	REQUIRE(vfx_init(&f, &o) == 0);
	refdrv_attach(f.drv, 1, 8, 0, NULL);
	for (int i = 0; i < 10; i++)
		refdrv_map_page(f.drv, 1, 0x1000ull * i, VFX_DATA, MAP_R,
				NULL);
	CHECK_EQ(refdrv_commit(f.drv), 0);
	CHECK_U64(refdrv_kicks(f.drv), 1);
	CHECK_EQ(vfx_stats(&f).kicks, 1);
	vfx_fini(&f);
}

TEST(linux_msi_region_x86)
{
	struct vfx_opts o = { 0 };
	struct refdrv_resv rv[4];
	unsigned int n = 0;
	uint8_t s = 0xaa;
	struct vfx f;

	FOR_EACH_RING(r) {
		o = vfx_ring_opts(r);
		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(refdrv_probe(f.drv, 8, rv, 4, &n, &s), 0);
		CHECK_EQ(s, S_OK);
		REQUIRE(n == 1);
		CHECK_EQ(rv[0].subtype, RESV_T_MSI);
		CHECK_U64(rv[0].start, MSI_START);
		CHECK_U64(rv[0].end, MSI_END);
		/* Every endpoint, before any attach. */
		CHECK_EQ(refdrv_probe(f.drv, 0, rv, 4, &n, &s), 0);
		CHECK_EQ(n, 1);
		vfx_fini(&f);
	}

	/* no_msi_region: nothing reported, the window can be mapped. */
	memset(&o, 0, sizeof(o));
	o.dev.no_msi_region = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(refdrv_probe(f.drv, 8, rv, 4, &n, &s), 0);
	CHECK_EQ(s, S_OK);
	CHECK_EQ(n, 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, MSI_START, MSI_START + 0xfff, 0xfee00000ull,
			 MAP_W | MAP_MMIO), S_OK);
	vfx_fini(&f);
}

TEST(linux_identity_bypass_attach)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		uint8_t b[4] = { 0xde, 0xad, 0xbe, 0xef };
		struct viommu_xlate x;
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK(f.info.features & F_BYPASS_CONFIG);
		CHECK_EQ(vfx_attach(&f, 3, 8, ATTACH_F_BYPASS), S_OK);
		CHECK_EQ(vfx_attach(&f, 3, 9, ATTACH_F_BYPASS), S_OK);
		memset(&x, 0, sizeof(x));
		CHECK_EQ(viommu_translate(f.ep8, VIOMMU_NO_PASID, 0x234567, 16,
					  VIOMMU_READ | VIOMMU_WRITE, &x, NULL),
			 0);
		CHECK_U64(x.gpa, 0x234567);
		CHECK(x.flags & VIOMMU_XLATE_BYPASS);
		CHECK(x.hva == f.ram + 0x234567);
		CHECK_EQ(viommu_dma_write(f.ep9, VIOMMU_NO_PASID, 0x300000, b,
					  4), 0);
		CHECK_EQ(f.ram[0x300003], 0xef);
		/* Global bypass off does not matter to a bypass domain. */
		CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 0);
		CHECK_EQ(vfx_events(&f, NULL, 0), 0);
		vfx_fini(&f);
	}
}

/* A DMA thread racing MAP/UNMAP: each translation is a fault or right. */
struct race {
	struct vfx *f;
	volatile int stop;
	unsigned long ok, faults, wrong;
};

static void *race_dma(void *opaque)
{
	struct race *r = opaque;
	struct viommu_xlate x;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		int rc = viommu_translate(r->f->ep8, VIOMMU_NO_PASID, 0x10080,
					  4, VIOMMU_READ, &x, NULL);

		if (rc == 0 && x.gpa == VFX_DATA + 0x80)
			r->ok++;
		else if (rc == -EFAULT)
			r->faults++;
		else
			r->wrong++;
	}
	return NULL;
}

TEST(linux_unmap_races_dma)
{
	struct race rc = { 0 };
	struct refdrv_fault ev[16];
	pthread_t t;
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	rc.f = &f;
	REQUIRE(pthread_create(&t, NULL, race_dma, &rc) == 0);
	for (int i = 0; i < 300; i++) {
		CHECK_EQ(vfx_map(&f, 1, 0x10000, 0x10fff, VFX_DATA, MAP_R),
			 S_OK);
		CHECK_U64(vfx_xlate(f.ep8, 0x10080, VIOMMU_READ),
			  VFX_DATA + 0x80);
		CHECK_EQ(vfx_unmap(&f, 1, 0x10000, 0x10fff), S_OK);
		/* Once UNMAP has completed nothing reaches the page. */
		CHECK_U64(vfx_xlate(f.ep8, 0x10080, VIOMMU_READ), ~0ull);
		while (vfx_events(&f, ev, 16) > 0)
			;
	}
	__atomic_store_n(&rc.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	CHECK_EQ(rc.wrong, 0);
	CHECK(viommu_virtio_dev_status(f.dev) & VIOMMU_VIRTIO_S_DRIVER_OK);
	CHECK(!(viommu_virtio_dev_status(f.dev) &
		VIOMMU_VIRTIO_S_NEEDS_RESET));
	vfx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* Faults on the event queue                                          */

TEST(fault_unmapped_write_reports_mapping)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		struct refdrv_fault ev[2];
		uint8_t b[8] = { 0 };
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA,
				 MAP_R | MAP_W), S_OK);
		CHECK_EQ(viommu_dma_write(f.ep8, VIOMMU_NO_PASID, 0xabc000, b,
					  8), -EFAULT);
		REQUIRE(vfx_events(&f, ev, 2) == 1);
		CHECK_EQ(ev[0].reason, FAULT_R_MAPPING);
		CHECK_EQ(ev[0].flags, FAULT_F_WRITE | FAULT_F_ADDRESS);
		CHECK_EQ(ev[0].endpoint, 8);
		CHECK_U64(ev[0].address, 0xabc000);
		CHECK(vfx_all(ev[0].rsvd, 3, 0));
		CHECK_EQ(ev[0].rsvd1, 0);
		CHECK_EQ(ev[0].used_len, 24);
		CHECK(vfx_info(&f)->queue_irqs > 0);
		vfx_fini(&f);
	}
}

TEST(fault_unattached_endpoint_reports_domain)
{
	struct refdrv_fault ev[2];
	uint8_t b[8];
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(viommu_dma_read(f.ep9, VIOMMU_NO_PASID, 0x4000, b, 8),
		 -EFAULT);
	REQUIRE(vfx_events(&f, ev, 2) == 1);
	CHECK_EQ(ev[0].reason, FAULT_R_DOMAIN);
	CHECK_EQ(ev[0].endpoint, 9);
	CHECK_EQ(ev[0].flags & ~(FAULT_F_READ | FAULT_F_ADDRESS), 0);
	CHECK(ev[0].flags & FAULT_F_READ);
	if (ev[0].flags & FAULT_F_ADDRESS)
		CHECK_U64(ev[0].address, 0x4000);
	CHECK(vfx_all(ev[0].rsvd, 3, 0));
	CHECK_EQ(ev[0].rsvd1, 0);
	/* With bypass on, the same access is fine and reports nothing. */
	CHECK_EQ(refdrv_set_bypass(f.drv, true), 0);
	CHECK_EQ(viommu_dma_read(f.ep9, VIOMMU_NO_PASID, 0x4000, b, 8), 0);
	CHECK_EQ(vfx_events(&f, ev, 2), 0);
	vfx_fini(&f);
}

TEST(D35_fault_backlog_drops_oldest)
{
	struct vfx_opts o = { 0 };
	struct refdrv_fault ev[16];
	uint8_t b[4];
	struct vfx f;

	o.no_events = true;
	o.dev.event_backlog = 4;
	REQUIRE(vfx_init(&f, &o) == 0);
	for (int i = 0; i < 10; i++)
		viommu_dma_read(f.ep8, VIOMMU_NO_PASID, 0x1000ull * i, b, 4);
	CHECK_EQ(vfx_events(&f, ev, 16), 0);
	CHECK_EQ(vfx_stats(&f).events_dropped, 6);
	CHECK_EQ(refdrv_events_post(f.drv, 8), 8);
	REQUIRE(vfx_events(&f, ev, 16) == 4);
	for (int i = 0; i < 4; i++)
		CHECK_U64(ev[i].address, 0x1000ull * (6 + i));
	CHECK_EQ(vfx_stats(&f).events_sent, 4);
	vfx_fini(&f);
}

TEST(fault_backlog_cleared_by_reset)
{
	struct vfx_opts o = { 0 };
	struct refdrv_fault ev[4];
	uint8_t b[4];
	struct vfx f;

	o.no_events = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	viommu_dma_read(f.ep8, VIOMMU_NO_PASID, 0x1000, b, 4);
	CHECK_EQ(refdrv_reset(f.drv), 0);
	CHECK_EQ(refdrv_events_post(f.drv, 4), 4);
	CHECK_EQ(vfx_events(&f, ev, 4), 0);
	vfx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* Resets                                                             */

TEST(reset_detaches_everything)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		CHECK_EQ(vfx_attach(&f, 2, 9, ATTACH_F_BYPASS), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R),
			 S_OK);
		CHECK_EQ(refdrv_set_bypass(f.drv, true), 0);
		CHECK_EQ(refdrv_reset(f.drv), 0);
		CHECK(vfx_dom(f.ep8) == NULL);
		CHECK(vfx_dom(f.ep9) == NULL);
		CHECK_EQ(vfx_ctx_domains(&f), 0);
		CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 1);
		CHECK_U64(vfx_xlate(f.ep8, 0x1000, VIOMMU_READ), 0x1000);
		/* Domain IDs are free again, the old mappings gone. */
		CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R),
			 S_NOENT);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		CHECK_EQ(vfx_maps(f.ep8).n, 0);
		vfx_fini(&f);
	}
}

TEST(reset_status_zero_mid_batch)
{
	struct vfx_opts o = { 0 };
	uint8_t s[3];
	struct vfx f;

	o.mode = REFDRV_BATCHED;
	REQUIRE(vfx_init(&f, &o) == 0);
	refdrv_attach(f.drv, 1, 8, 0, &s[0]);
	refdrv_map_page(f.drv, 1, 0x1000, VFX_DATA, MAP_R, &s[1]);
	/* The driver resets before committing: nothing was done and the
	 * queued requests are lost. */
	CHECK_EQ(refdrv_reset(f.drv), 0);
	CHECK_EQ(s[0], REFDRV_S_LOST);
	CHECK_EQ(s[1], REFDRV_S_LOST);
	CHECK(vfx_dom(f.ep8) == NULL);
	refdrv_attach(f.drv, 1, 8, 0, &s[2]);
	CHECK_EQ(refdrv_commit(f.drv), 0);
	CHECK_EQ(s[2], S_OK);
	vfx_fini(&f);
}

TEST(config_bypass_survives_device_reset)
{
	struct vfx_opts o = { 0 };
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(refdrv_set_bypass(f.drv, true), 0);
	viommu_virtio_dev_set_status(f.dev, 0);
	CHECK_EQ(viommu_virtio_dev_status(f.dev), 0);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 1);
	CHECK_U64(vfx_xlate(f.ep8, 0x7000, VIOMMU_READ), 0x7000);
	CHECK_EQ(refdrv_reset(f.drv), 0);
	CHECK_EQ(vfx_info(&f)->bypass, 1);
	vfx_fini(&f);

	o.dev.boot_bypass = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(refdrv_set_bypass(f.drv, false), 0);
	CHECK_EQ(refdrv_reset(f.drv), 0);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 0);
	CHECK_U64(vfx_xlate(f.ep8, 0x7000, VIOMMU_READ), ~0ull);
	vfx_fini(&f);
}

TEST(config_system_reset_restores_boot_bypass)
{
	struct vfx_opts o = { 0 };
	struct vfx f;

	o.dev.boot_bypass = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(refdrv_set_bypass(f.drv, false), 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_U64(vfx_xlate(f.ep9, 0x2000, VIOMMU_READ), ~0ull);
	/* Device reset keeps the written value. */
	CHECK_EQ(refdrv_reset(f.drv), 0);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 0);
	/* System reset: boot value, nothing attached. */
	viommu_virtio_dev_reset(f.dev);
	CHECK_EQ(viommu_virtio_dev_status(f.dev), 0);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 1);
	CHECK(vfx_dom(f.ep8) == NULL);
	CHECK_U64(vfx_xlate(f.ep9, 0x2000, VIOMMU_READ), 0x2000);
	CHECK_EQ(refdrv_reset(f.drv), 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	vfx_fini(&f);

	/* boot_bypass off: a system reset turns a written 1 back off. */
	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(refdrv_set_bypass(f.drv, true), 0);
	viommu_virtio_dev_reset(f.dev);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 0);
	CHECK_U64(vfx_xlate(f.ep9, 0x2000, VIOMMU_READ), ~0ull);
	vfx_fini(&f);
}

TEST(reset_needs_reset_on_corrupt_avail_index)
{
	struct vfx_opts o = { 0 };
	struct drvring *rq;
	uint8_t *avail;
	uint16_t idx;
	struct vfx f;

	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	rq = refdrv_ring(f.drv, 0);
	REQUIRE(rq != NULL);
	avail = drvring_driver_area(rq);
	idx = (uint16_t)vfx_get(avail + 2, 2);
	vfx_put(avail + 2, (uint16_t)(idx + f.info.queue_size + 1), 2);
	CHECK_EQ(viommu_virtio_dev_notify(f.dev, 0), 0);
	CHECK(viommu_virtio_dev_status(f.dev) & VIOMMU_VIRTIO_S_NEEDS_RESET);
	CHECK(vfx_info(&f)->config_irqs >= 1);
	CHECK(viommu_virtio_dev_read_isr(f.dev) & VIOMMU_VIRTIO_ISR_CONFIG);
	/* Kicks are ignored now; the attachment made before stays until
	 * the driver resets. */
	CHECK_EQ(viommu_virtio_dev_notify(f.dev, 0), 0);
	CHECK(vfx_dom(f.ep8) != NULL);
	CHECK_EQ(refdrv_reset(f.drv), 0);
	CHECK(vfx_dom(f.ep8) == NULL);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	vfx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* Configuration space                                                */

TEST(config_readonly_write_ignored)
{
	struct vfx_opts o = { 0 };
	uint8_t b[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct vfx f;
	uint64_t before[5];
	const uint32_t offs[5] = { CFG_PSM, CFG_IN_START, CFG_IN_END,
				   CFG_DOM_START, CFG_PROBE_SIZE };

	o.dev.input_start = 0x10000;
	o.dev.input_end = 0xffffffffffull;
	o.dev.domain_start = 1;
	o.dev.domain_end = 100;
	REQUIRE(vfx_init(&f, &o) == 0);
	for (int i = 0; i < 5; i++)
		before[i] = vfx_cfg(&f, offs[i], 8);
	for (int i = 0; i < 5; i++) {
		unsigned long w = f.nwarn;

		viommu_virtio_dev_config_write(f.dev, offs[i], b, 8);
		viommu_virtio_dev_config_write(f.dev, offs[i], b, 4);
		viommu_virtio_dev_config_write(f.dev, offs[i], b, 1);
		CHECK_EQ(f.nwarn, w + 3); /* one line each */
	}
	/* A multi-byte write covering bypass is not a bypass write. */
	viommu_virtio_dev_config_write(f.dev, CFG_BYPASS, b, 4);
	for (int i = 0; i < 5; i++)
		CHECK_U64(vfx_cfg(&f, offs[i], 8), before[i]);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 0);
	CHECK_U64(vfx_cfg(&f, CFG_IN_START, 8), 0x10000);
	CHECK_U64(vfx_cfg(&f, CFG_IN_END, 8), 0xffffffffffull);
	CHECK_EQ(vfx_cfg(&f, CFG_DOM_START, 4), 1);
	CHECK_EQ(vfx_cfg(&f, CFG_DOM_END, 4), 100);
	CHECK_EQ(vfx_cfg(&f, CFG_PROBE_SIZE, 4), 512);
	vfx_fini(&f);
}

TEST(D3_bypass_write_needs_feature)
{
	struct vfx_opts o = { 0 };
	uint8_t v = 1;
	struct vfx f;

	/* Offered but not accepted by the driver: writes are ignored. */
	o.drv_features = F_VERSION_1 | F_MAP_UNMAP | F_PROBE | F_INPUT_RANGE;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK(!(f.info.features & F_BYPASS_CONFIG));
	CHECK_EQ(refdrv_set_bypass(f.drv, true), -EOPNOTSUPP);
	viommu_virtio_dev_config_write(f.dev, CFG_BYPASS, &v, 1);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 0);
	CHECK_U64(vfx_xlate(f.ep8, 0x3000, VIOMMU_READ), ~0ull);
	vfx_fini(&f);

	/* Not offered: reads 0, writes ignored, even with boot_bypass. */
	memset(&o, 0, sizeof(o));
	o.dev.features = F_ALL_DEV & ~F_BYPASS_CONFIG;
	o.dev.boot_bypass = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 0);
	viommu_virtio_dev_config_write(f.dev, CFG_BYPASS, &v, 1);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 0);
	vfx_fini(&f);
}

TEST(config_layout)
{
	struct vfx_opts o = { 0 };
	uint8_t all[48];
	struct vfx f;

	o.dev.page_size_mask = 0x201000;
	o.dev.input_start = 0x1000;
	o.dev.input_end = 0x7fffffffffull;
	o.dev.domain_start = 3;
	o.dev.domain_end = 300;
	o.dev.probe_size = 256;
	o.dev.boot_bypass = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	for (uint32_t i = 0; i < sizeof(all); i++)
		all[i] = (uint8_t)vfx_cfg(&f, i, 1);
	CHECK_U64(vfx_get(all + 0, 8), 0x201000);
	CHECK_U64(vfx_get(all + 8, 8), 0x1000);
	CHECK_U64(vfx_get(all + 16, 8), 0x7fffffffffull);
	CHECK_EQ(vfx_get(all + 24, 4), 3);
	CHECK_EQ(vfx_get(all + 28, 4), 300);
	CHECK_EQ(vfx_get(all + 32, 4), 256);
	CHECK_EQ(all[36], 1);
	CHECK(vfx_all(all + 37, 11, 0)); /* reserved, then past the end */
	/* The driver read the same through its own accessors. */
	CHECK_U64(f.info.page_size_mask, 0x201000);
	CHECK_U64(f.info.granule, 0x1000);
	CHECK_EQ(f.info.probe_size, 256);
	CHECK_EQ(f.info.domain_start, 3);
	vfx_fini(&f);

	/* Without INPUT_RANGE / DOMAIN_RANGE / PROBE: the spec's defaults. */
	memset(&o, 0, sizeof(o));
	o.dev.features = F_MAP_UNMAP | F_BYPASS_CONFIG;
	o.dev.input_start = 0x1000;
	o.dev.domain_start = 3;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(vfx_cfg(&f, CFG_PROBE_SIZE, 4), 0);
	CHECK_U64(f.info.input_start, 0);
	CHECK_U64(f.info.input_end, UINT64_MAX);
	CHECK_EQ(f.info.domain_start, 0);
	CHECK_U64(f.info.domain_end, UINT32_MAX);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0, 0xfff, VFX_DATA, MAP_R), S_OK);
	vfx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* Device choices where the spec leaves room                          */

TEST(attach_domain_outside_range)
{
	struct vfx_opts o = { 0 };
	struct vfx f;

	o.dev.domain_start = 10;
	o.dev.domain_end = 12;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(f.info.domain_start, 10);
	CHECK_EQ(f.info.domain_end, 12);
	CHECK_EQ(vfx_attach(&f, 9, 8, 0), S_RANGE);
	CHECK_EQ(vfx_attach(&f, 13, 8, 0), S_RANGE);
	CHECK(vfx_dom(f.ep8) == NULL);
	CHECK_EQ(vfx_attach(&f, 12, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 13, 0, 0xfff, VFX_DATA, MAP_R), S_NOENT);
	vfx_fini(&f);
}

TEST(device_inverted_ranges_inval)
{
	uint8_t req[LEN_MAP];
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	vfx_req_map(&req[0], 1, 0x2000, 0x0fff, VFX_DATA, MAP_R);
	CHECK_EQ(vfx_raw_status(&f, req, LEN_MAP), S_INVAL);
	vfx_req_unmap(&req[0], 1, 0x2000, 0x0fff);
	CHECK_EQ(vfx_raw_status(&f, req, LEN_UNMAP), S_INVAL);
	/* A physical range wrapping past 2^64. */
	vfx_req_map(&req[0], 1, 0x0, 0x1fff, 0xfffffffffffff000ull, MAP_R);
	CHECK_EQ(vfx_raw_status(&f, req, LEN_MAP), S_RANGE);
	CHECK_EQ(vfx_maps(f.ep8).n, 0);
	vfx_fini(&f);
}

TEST(device_whole_64bit_space)
{
	struct vfx_opts o = { 0 };
	uint8_t req[LEN_MAP];
	struct vfx f;

	o.dev.features = F_ALL_DEV & ~F_INPUT_RANGE;
	o.dev.no_msi_region = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_U64(f.info.input_end, UINT64_MAX);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	vfx_req_map(req, 1, 0, UINT64_MAX, 0, MAP_R | MAP_W);
	CHECK_EQ(vfx_raw_status(&f, req, LEN_MAP), S_OK);
	CHECK_U64(vfx_xlate(f.ep8, 0x5000, VIOMMU_WRITE), 0x5000);
	vfx_req_unmap(req, 1, 0, UINT64_MAX);
	CHECK_EQ(vfx_raw_status(&f, req, LEN_UNMAP), S_OK);
	CHECK_EQ(vfx_maps(f.ep8).n, 0);
	vfx_fini(&f);
}

TEST(limits_nomem)
{
	struct vfx_opts o = { 0 };
	struct vfx f;

	o.limits.max_domains = 2;
	o.limits.max_mappings_per_domain = 3;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_attach(&f, 2, 9, 0), S_OK);
	CHECK_EQ(vfx_attach(&f, 3, 0, 0), S_NOMEM);
	CHECK(vfx_dom(f.ep0) == NULL);
	/* Bypass domains cost no core domain. */
	CHECK_EQ(vfx_attach(&f, 4, 0, ATTACH_F_BYPASS), S_OK);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(vfx_map(&f, 1, 0x1000ull * i, 0x1000ull * i + 0xfff,
				 VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x10000, 0x10fff, VFX_DATA, MAP_R), S_NOMEM);
	CHECK_EQ(vfx_maps(f.ep8).n, 3);
	/* Moving ep9 into domain 1 frees domain 2: room for one more. */
	CHECK_EQ(vfx_attach(&f, 1, 9, 0), S_OK);
	CHECK_EQ(vfx_attach(&f, 3, 0, 0), S_OK);
	vfx_fini(&f);
}

/*
 * D20 with the context-wide cap (issue 17 item 4): three domains, each
 * under its own cap of 4, share a context cap of 6.  The guest gets NOMEM
 * at the 7th mapping whichever domain it goes to, the refused range stays
 * unmapped, and an UNMAP elsewhere makes room again - also for splitting a
 * mapping into two, which takes two.
 */
TEST(limits_nomem_context_wide_cap)
{
	struct vfx_opts o = { 0 };
	struct vfx f;
	int i;

	o.limits.max_mappings_per_domain = 4;
	o.limits.max_mappings = 6;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_attach(&f, 2, 9, 0), S_OK);
	CHECK_EQ(vfx_attach(&f, 3, 0, 0), S_OK);
	for (i = 0; i < 3; i++) {
		CHECK_EQ(vfx_map(&f, 1, 0x1000ull * i, 0x1000ull * i + 0xfff,
				 VFX_DATA, MAP_R), S_OK);
		CHECK_EQ(vfx_map(&f, 2, 0x1000ull * i, 0x1000ull * i + 0xfff,
				 VFX_DATA, MAP_R), S_OK);
	}
	CHECK_EQ(vfx_map(&f, 3, 0, 0xfff, VFX_DATA, MAP_R), S_NOMEM);
	CHECK_EQ(vfx_map(&f, 1, 0x8000, 0x8fff, VFX_DATA, MAP_R), S_NOMEM);
	CHECK_EQ(vfx_maps(f.ep0).n, 0);
	CHECK_EQ(vfx_maps(f.ep8).n, 3);
	CHECK_U64(vfx_xlate(f.ep0, 0x10, VIOMMU_READ), UINT64_MAX);
	/* A partial UNMAP is refused and frees nothing. */
	CHECK_EQ(vfx_unmap(&f, 1, 0x1000, 0x17ff), S_RANGE);
	CHECK_EQ(vfx_map(&f, 3, 0, 0xfff, VFX_DATA, MAP_R), S_NOMEM);
	/* UNMAP in domain 1 makes room in domain 3. */
	CHECK_EQ(vfx_unmap(&f, 1, 0, 0xfff), S_OK);
	CHECK_EQ(vfx_map(&f, 3, 0, 0x1fff, VFX_DATA, MAP_R), S_OK);
	CHECK_U64(vfx_xlate(f.ep0, 0x10, VIOMMU_READ), VFX_DATA + 0x10);
	/* Split [0, 0x1fff] into two pages: the second piece is NOMEM. */
	CHECK_EQ(vfx_unmap(&f, 3, 0, 0x1fff), S_OK);
	CHECK_EQ(vfx_map(&f, 3, 0, 0xfff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_map(&f, 3, 0x1000, 0x1fff, VFX_DATA + 0x1000, MAP_R),
		 S_NOMEM);
	CHECK_EQ(vfx_maps(f.ep0).n, 1);
	vfx_fini(&f);
}

/* The device's allocator: fails every call while armed. */
static bool dev_alloc_armed;

static void *dev_alloc(void *opaque, size_t size)
{
	(void)opaque;
	return __atomic_load_n(&dev_alloc_armed, __ATOMIC_RELAXED) ? NULL :
								     malloc(size);
}

static void dev_free(void *opaque, void *p)
{
	(void)opaque;
	free(p);
}

/*
 * Issue 16 item 6: the guest gets NOMEM both for a limit and for host
 * memory running out (the spec has one status), but the two are not the
 * same failure: the device's WARN line says which, as the core's errno
 * (-ENOSPC vs -ENOMEM) does to an embedder.
 */
TEST(limits_nomem_log_tells_limit_from_memory)
{
	struct vfx_opts o = { 0 };
	struct vfx f;

	o.limits.max_domains = 1;
	o.dev.allocator = (struct viommu_allocator){ dev_alloc, dev_free,
						     NULL };
	REQUIRE(vfx_init(&f, &o) == 0);
	/* the first ATTACH grows the device's attachment table: no memory */
	__atomic_store_n(&dev_alloc_armed, true, __ATOMIC_RELAXED);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_NOMEM);
	__atomic_store_n(&dev_alloc_armed, false, __ATOMIC_RELAXED);
	CHECK(strstr(f.last_warn, "out of host memory") != NULL);
	CHECK(vfx_dom(f.ep8) == NULL);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	/* a second core domain passes max_domains: a limit */
	CHECK_EQ(vfx_attach(&f, 2, 9, 0), S_NOMEM);
	CHECK(strstr(f.last_warn, "limit reached") != NULL);
	CHECK(strstr(f.last_warn, "out of host memory") == NULL);
	CHECK(vfx_dom(f.ep9) == NULL);
	vfx_fini(&f);
}

TEST(device_one_log_line_per_refusal)
{
	uint8_t req[LEN_MAP];
	unsigned long w;
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	w = f.nwarn;
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0, 0xfff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(f.nwarn, w);
	CHECK_EQ(vfx_attach(&f, 1, 555, 0), S_NOENT);
	CHECK_EQ(f.nwarn, w + 1);
	CHECK_EQ(vfx_map(&f, 1, 0, 0xfff, VFX_DATA, MAP_R), S_INVAL);
	CHECK_EQ(f.nwarn, w + 2);
	CHECK_EQ(vfx_unmap(&f, 1, 0x800, 0xfff), S_RANGE);
	CHECK_EQ(f.nwarn, w + 3);
	vfx_req_map(req, 1, 0, 0xfff, 0, 0);
	req[0] = 0x42;
	CHECK_EQ(vfx_raw(&f, req, LEN_MAP, 4, NULL), 0);
	CHECK_EQ(f.nwarn, w + 4);
	CHECK(strstr(f.last_warn, "D5") != NULL);
	vfx_fini(&f);
}

TEST(device_stats_count_requests)
{
	struct viommu_virtio_iommu_stats st;
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	vfx_attach(&f, 1, 8, 0);
	vfx_attach(&f, 1, 99, 0);
	vfx_map(&f, 1, 0, 0xfff, VFX_DATA, MAP_R);
	vfx_map(&f, 1, 0, 0xfff, VFX_DATA, MAP_R);
	vfx_unmap(&f, 1, 0x800, 0x8ff);
	st = vfx_stats(&f);
	CHECK_EQ(st.requests[T_ATTACH][S_OK], 1);
	CHECK_EQ(st.requests[T_ATTACH][S_NOENT], 1);
	CHECK_EQ(st.requests[T_MAP][S_OK], 1);
	CHECK_EQ(st.requests[T_MAP][S_INVAL], 1);
	CHECK_EQ(st.requests[T_UNMAP][S_RANGE], 1);
	CHECK_EQ(st.kicks, 5);
	vfx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* The reference driver's own API                                     */

TEST(refdrv_domain_ids_within_range)
{
	struct vfx_opts o = { 0 };
	uint32_t d[4];
	struct vfx f;

	o.dev.domain_start = 10;
	o.dev.domain_end = 12;
	REQUIRE(vfx_init(&f, &o) == 0);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(refdrv_domain_alloc(f.drv, &d[i]), 0);
		CHECK_EQ(d[i], 10 + i);
	}
	CHECK_EQ(refdrv_domain_alloc(f.drv, &d[3]), -ENOSPC);
	CHECK_EQ(refdrv_domain_free(f.drv, 11), 0);
	CHECK_EQ(refdrv_domain_free(f.drv, 11), -ENOENT);
	CHECK_EQ(refdrv_domain_free(f.drv, 9), -ENOENT);
	CHECK_EQ(refdrv_domain_alloc(f.drv, &d[3]), 0);
	CHECK_EQ(d[3], 11);
	CHECK_EQ(vfx_attach(&f, d[3], 8, 0), S_OK);
	vfx_fini(&f);
}

TEST(refdrv_api_2007_sequence)
{
	struct vfx_opts o = { 0 };
	uint8_t s = 0xaa;
	uint32_t dom;
	struct vfx f;

	/* alloc, add device, map pages and a range, commit, unmap, remove
	 * device, free: the 2007 API over virtio-iommu. */
	o.mode = REFDRV_BATCHED;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(refdrv_domain_alloc(f.drv, &dom), 0);
	CHECK_EQ(refdrv_attach(f.drv, dom, 8, 0, &s), 0);
	CHECK_EQ(refdrv_map_page(f.drv, dom, 0x1000, VFX_DATA, MAP_R, NULL),
		 0);
	CHECK_EQ(refdrv_map(f.drv, dom, 0x10000, VFX_DATA, 0x10000,
			    MAP_R | MAP_W, NULL), 0);
	CHECK(vfx_dom(f.ep8) == NULL); /* nothing before commit */
	CHECK_EQ(refdrv_commit(f.drv), 0);
	CHECK_EQ(s, S_OK);
	CHECK_EQ(vfx_maps(f.ep8).n, 2);
	CHECK_EQ(refdrv_unmap_page(f.drv, dom, 0x1000, NULL), 0);
	CHECK_EQ(refdrv_unmap(f.drv, dom, 0x10000, 0x10000, NULL), 0);
	CHECK_EQ(refdrv_detach(f.drv, dom, 8, NULL), 0);
	CHECK_EQ(refdrv_commit(f.drv), 0);
	CHECK(vfx_dom(f.ep8) == NULL);
	CHECK_EQ(refdrv_domain_free(f.drv, dom), 0);
	/* Switching to STRICT commits what is queued. */
	CHECK_EQ(refdrv_attach(f.drv, dom, 9, 0, &s), 0);
	CHECK_EQ(s, REFDRV_S_PENDING);
	CHECK_EQ(refdrv_set_mode(f.drv, REFDRV_STRICT), 0);
	CHECK_EQ(s, S_OK);
	vfx_fini(&f);
}

TEST(refdrv_argument_errors)
{
	struct refdrv_config c;
	struct refdrv *d = NULL;
	struct vfx_opts o = { 0 };
	struct vfx f;

	o.no_driver = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	memset(&c, 0, sizeof(c));
	CHECK_EQ(refdrv_create(&c, &d), -EINVAL);
	c.dev = f.dev;
	c.ram = f.ram + VFX_DRV_GPA;
	c.ram_gpa = VFX_DRV_GPA;
	c.ram_size = 4096;
	CHECK_EQ(refdrv_create(&c, &d), -ENOSPC);
	CHECK(viommu_virtio_dev_status(f.dev) & VIOMMU_VIRTIO_S_FAILED);
	c.ram_size = VFX_DRV_SIZE;
	c.queue_size = 12; /* not a power of two for a split ring */
	CHECK_EQ(refdrv_create(&c, &d), -EINVAL);
	c.queue_size = 2048;
	CHECK_EQ(refdrv_create(&c, &d), -EINVAL);
	c.queue_size = 0;
	c.event_buffers = 100000;
	CHECK_EQ(refdrv_create(&c, &d), -EINVAL);
	c.event_buffers = 4;
	c.ram_gpa = VFX_DRV_GPA + 8;
	CHECK_EQ(refdrv_create(&c, &d), -EINVAL);
	c.ram_gpa = VFX_DRV_GPA;
	REQUIRE(refdrv_create(&c, &d) == 0);
	CHECK_EQ(refdrv_map(d, 1, 0, 0, 0, MAP_R, NULL), -EINVAL);
	CHECK_EQ(refdrv_map(d, 1, UINT64_MAX, 0, 2, MAP_R, NULL), -EINVAL);
	CHECK_EQ(refdrv_unmap(d, 1, 0, 0, NULL), -EINVAL);
	CHECK_EQ(refdrv_raw(d, NULL, 0, 0, NULL, NULL), -EINVAL);
	CHECK_EQ(refdrv_raw(d, "x", 1, 1u << 30, NULL, NULL), -EMSGSIZE);
	CHECK_EQ(refdrv_raw_segs(d, NULL, 0, 0, NULL), -EINVAL);
	CHECK_EQ(refdrv_set_mode(d, (enum refdrv_mode)7), -EINVAL);
	CHECK(refdrv_ring(d, 2) == NULL);
	CHECK_EQ(refdrv_attach(NULL, 1, 8, 0, NULL), -EINVAL);
	refdrv_destroy(d);
	CHECK_EQ(viommu_virtio_dev_status(f.dev), 0);
	vfx_fini(&f);
}

TEST(refdrv_ring_feature_not_offered)
{
	struct vfx_opts o = vfx_ring_opts(1); /* packed */
	struct vfx f;

	o.dev.ring_features = 1ull << VIOMMU_VIRTIO_F_INDIRECT_DESC;
	CHECK_EQ(vfx_init(&f, &o), -EOPNOTSUPP);
	o = vfx_ring_opts(0);
	o.dev.ring_features = 1ull << VIOMMU_VIRTIO_F_INDIRECT_DESC;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK(!(f.info.features & (1ull << VIOMMU_VIRTIO_F_RING_PACKED)));
	CHECK(!(f.info.features & (1ull << VIOMMU_VIRTIO_F_EVENT_IDX)));
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	vfx_fini(&f);
}

TEST(refdrv_packed_odd_queue_size)
{
	struct vfx_opts o = vfx_ring_opts(3); /* packed+evidx+indirect */
	uint8_t st[40];
	struct vfx f;

	o.queue_size = 13;
	o.mode = REFDRV_BATCHED;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(f.info.queue_size, 13);
	CHECK_EQ(f.info.event_queue_size, 13);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	for (int i = 0; i < 40; i++)
		refdrv_map_page(f.drv, 1, 0x1000ull * i, VFX_DATA, MAP_R,
				&st[i]);
	CHECK_EQ(refdrv_commit(f.drv), 0);
	for (int i = 0; i < 40; i++)
		CHECK_EQ(st[i], S_OK);
	CHECK_EQ(vfx_maps(f.ep8).n, 40);
	vfx_fini(&f);
}

TEST(refdrv_raw_segs_layouts)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		struct refdrv_seg seg[8];
		uint32_t used = 0;
		uint8_t *s;
		uint64_t g;
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		s = f.info.scratch;
		g = f.info.scratch_gpa;
		/* An ATTACH split over 5 readable pieces and 2 writable. */
		vfx_req_attach(s, 1, 8, 0);
		seg[0] = (struct refdrv_seg){ g, 1, false };
		seg[1] = (struct refdrv_seg){ g + 1, 3, false };
		seg[2] = (struct refdrv_seg){ g + 4, 8, false };
		seg[3] = (struct refdrv_seg){ g + 12, 7, false };
		seg[4] = (struct refdrv_seg){ g + 19, 1, false };
		memset(s + 64, REFDRV_POISON, 4);
		seg[5] = (struct refdrv_seg){ g + 64, 1, true };
		seg[6] = (struct refdrv_seg){ g + 65, 3, true };
		CHECK_EQ(refdrv_raw_segs(f.drv, seg, 7, 0, &used), 0);
		CHECK_EQ(used, 4);
		CHECK_EQ(s[64], S_OK);
		CHECK(vfx_all(s + 65, 3, 0));
		CHECK(vfx_dom(f.ep8) != NULL);
		if (f.info.indirect) {
			vfx_req_detach(s, 1, 8);
			memset(s + 64, REFDRV_POISON, 4);
			CHECK_EQ(refdrv_raw_segs(f.drv, seg, 7,
						 REFDRV_RAW_INDIRECT, &used),
				 0);
			CHECK_EQ(used, 4);
			CHECK_EQ(s[64], S_OK);
			CHECK(vfx_dom(f.ep8) == NULL);
		} else {
			CHECK_EQ(refdrv_raw_segs(f.drv, seg, 7,
						 REFDRV_RAW_INDIRECT, &used),
				 -EINVAL);
		}
		vfx_fini(&f);
	}
}

TEST_MAIN()

/* ------------------------------------------------------------------ */
/* Log flood (hostile-guest rule: one rate-limited line per refusal)   */

#define FLOOD 50000

/* mono_ns() - CLOCK_MONOTONIC in ns, for the rate limit's bound. */
static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * flood_bound() - most lines one limiter may pass in @ns: a burst per
 * window begun.  The test does not depend on the machine's speed: a slow
 * run (valgrind, sanitizers) only allows more windows.
 */
static unsigned long flood_bound(uint64_t ns)
{
	return RL_BURST * (unsigned long)(ns / RL_INTERVAL_NS + 2);
}

/*
 * check_report() - after a flood: end the limiter's window, cause one
 * more refusal with @again, and expect its line to say how many lines
 * were suppressed (every one the stats counted).
 */
static void check_report(struct vfx *f, struct ratelimit *rl,
			 void (*again)(struct vfx *f))
{
	uint64_t sup = vfx_stats(f).log_suppressed;
	unsigned long w = f->nwarn;
	char want[64];

	rl_expire(rl);
	again(f);
	CHECK_EQ(f->nwarn, w + 1);
	snprintf(want, sizeof(want), "(%llu similar messages suppressed)",
		 (unsigned long long)sup);
	CHECK(strstr(f->last_warn, want) != NULL);
	if (!strstr(f->last_warn, want))
		printf("#   last line: %s (want %s)\n", f->last_warn, want);
	CHECK_U64(vfx_stats(f).log_suppressed, sup);
	/* The window is open again: the next refusal logs plainly. */
	again(f);
	CHECK_EQ(f->nwarn, w + 2);
	CHECK(strstr(f->last_warn, "suppressed") == NULL);
}

static void refused_attach(struct vfx *f)
{
	CHECK_EQ(vfx_attach(f, 1, 0x1234, 0), VIOMMU_VI_S_NOENT);
}

TEST(flood_refused_requests_bounded_log)
{
	/*
	 * 50,000 refused requests (ATTACH of an endpoint that does not
	 * exist): the counters count all of them, the log gets a bounded
	 * number of lines, the rest are counted as suppressed and reported.
	 */
	struct viommu_virtio_iommu_stats st;
	unsigned long w, lines;
	uint64_t t0, ns;
	struct vfx f;
	bool ok = true;

	REQUIRE(vfx_init(&f, NULL) == 0);
	w = f.nwarn;
	t0 = mono_ns();
	for (int i = 0; i < FLOOD; i++)
		ok &= vfx_attach(&f, 1, 0x1234, 0) == VIOMMU_VI_S_NOENT;
	ns = mono_ns() - t0;
	CHECK(ok);
	lines = f.nwarn - w;
	st = vfx_stats(&f);
	CHECK_U64(st.requests[VIOMMU_VI_REQ_ATTACH][VIOMMU_VI_S_NOENT],
		  FLOOD);
	CHECK(lines >= RL_BURST);
	CHECK(lines <= flood_bound(ns));
	CHECK_U64(st.log_suppressed + lines, FLOOD);
	printf("#   %d refusals in %.2f s: %lu lines, %llu suppressed\n",
	       FLOOD, ns / 1e9, lines, (unsigned long long)st.log_suppressed);
	check_report(&f, &f.vi->rl, refused_attach);
	vfx_fini(&f);
}

static void readonly_write(struct vfx *f)
{
	uint8_t b[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	viommu_virtio_dev_config_write(f->dev, CFG_IN_START, b, 8);
}

TEST(flood_readonly_config_writes_bounded_log)
{
	/* 50,000 writes to a read-only config field: same rule. */
	unsigned long w, lines;
	uint64_t t0, ns, sup;
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	w = f.nwarn;
	t0 = mono_ns();
	for (int i = 0; i < FLOOD; i++)
		readonly_write(&f);
	ns = mono_ns() - t0;
	lines = f.nwarn - w;
	sup = vfx_stats(&f).log_suppressed;
	CHECK(lines >= RL_BURST);
	CHECK(lines <= flood_bound(ns));
	CHECK_U64(sup + lines, FLOOD);
	CHECK_U64(vfx_cfg(&f, CFG_IN_START, 8), 0);
	check_report(&f, &f.vi->rl, readonly_write);
	vfx_fini(&f);
}
