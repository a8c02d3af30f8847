/*
 * test_virtio_iommu.c - conformance of the virtio-iommu device to the
 * device requirements of VIRTIO 1.3 §5.13, one or more tests per rule
 * D1-D37 (shared/DESIGN.md §4, docs/VIRTIO-IOMMU.md), named by rule ID.
 *
 * Every test drives the device the way a guest would: through the
 * reference driver (typed requests) or raw bytes built from the spec's
 * layouts, over real virtqueues in guest RAM, and where the ring matters
 * over every ring configuration (split, packed, with EVENT_IDX and
 * INDIRECT_DESC).  State is checked through the translation core: which
 * domain an endpoint is in, its mappings, and what it can reach.
 *
 * Scenarios (the spec's UNMAP examples, QEMU's qtest, the Linux driver's
 * expectations, faults and resets) are in test_virtio_iommu_scenarios.c.
 */
#include "harness.h"
#include "test_virtio_iommu_fixture.h"

/* ------------------------------------------------------------------ */
/* Features and configuration (D1-D3)                                 */

TEST(D1_features_map_unmap_no_legacy_bypass)
{
	struct vfx_opts o = { 0 };
	struct vfx f;
	uint64_t feat;

	REQUIRE(vfx_init(&f, NULL) == 0);
	feat = viommu_virtio_dev_features(f.dev);
	CHECK(feat & F_MAP_UNMAP);
	CHECK(!(feat & F_BYPASS));
	CHECK(feat & F_VERSION_1);
	CHECK_EQ(viommu_virtio_dev_device_id(f.dev), 23);
	CHECK_EQ(viommu_virtio_dev_num_queues(f.dev), 2);
	CHECK(f.info.features & F_MAP_UNMAP);
	vfx_fini(&f);

	/* Even when the embedder asks for neither. */
	o.dev.features = F_PROBE | F_BYPASS;
	REQUIRE(vfx_init(&f, &o) == 0);
	feat = viommu_virtio_dev_features(f.dev);
	CHECK(feat & F_MAP_UNMAP);
	CHECK(!(feat & F_BYPASS));
	vfx_fini(&f);
}

TEST(D1_features_ok_needs_map_unmap)
{
	struct vfx_opts o = { 0 };
	struct vfx f;
	uint8_t st;

	o.no_driver = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	/* By hand: a driver that refuses MAP_UNMAP is refused. */
	viommu_virtio_dev_set_status(f.dev, 0);
	viommu_virtio_dev_set_status(f.dev, VIOMMU_VIRTIO_S_ACKNOWLEDGE |
				     VIOMMU_VIRTIO_S_DRIVER);
	CHECK_EQ(viommu_virtio_dev_set_driver_features(f.dev, F_VERSION_1 |
							F_PROBE), 0);
	viommu_virtio_dev_set_status(f.dev, VIOMMU_VIRTIO_S_ACKNOWLEDGE |
				     VIOMMU_VIRTIO_S_DRIVER |
				     VIOMMU_VIRTIO_S_FEATURES_OK);
	st = viommu_virtio_dev_status(f.dev);
	CHECK(!(st & VIOMMU_VIRTIO_S_FEATURES_OK));
	/* And without VERSION_1. */
	viommu_virtio_dev_set_status(f.dev, 0);
	viommu_virtio_dev_set_status(f.dev, VIOMMU_VIRTIO_S_ACKNOWLEDGE |
				     VIOMMU_VIRTIO_S_DRIVER);
	viommu_virtio_dev_set_driver_features(f.dev, F_MAP_UNMAP);
	viommu_virtio_dev_set_status(f.dev, VIOMMU_VIRTIO_S_ACKNOWLEDGE |
				     VIOMMU_VIRTIO_S_DRIVER |
				     VIOMMU_VIRTIO_S_FEATURES_OK);
	CHECK(!(viommu_virtio_dev_status(f.dev) &
		VIOMMU_VIRTIO_S_FEATURES_OK));
	vfx_fini(&f);

	/* Through refdrv: creation fails with FAILED set. */
	memset(&o, 0, sizeof(o));
	o.no_driver = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	o.no_driver = false;
	o.drv_features = F_VERSION_1 | F_PROBE | F_BYPASS_CONFIG;
	CHECK_EQ(vfx_driver(&f, &o), -EPROTO);
	CHECK(viommu_virtio_dev_status(f.dev) & VIOMMU_VIRTIO_S_FAILED);
	vfx_fini(&f);
}

TEST(D2_page_size_mask_nonzero)
{
	struct vfx_opts o = { 0 };
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_U64(vfx_cfg(&f, CFG_PSM, 8), 0x1000);
	CHECK_U64(f.info.granule, 0x1000);
	vfx_fini(&f);

	o.dev.page_size_mask = 0x1000 | 0x200000 | 0x40000000;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_U64(vfx_cfg(&f, CFG_PSM, 8), 0x40201000);
	CHECK_U64(f.info.granule, 0x1000);
	vfx_fini(&f);
}

TEST(D3_bypass_reads_0_or_1)
{
	struct vfx_opts o = { 0 };
	struct vfx f;

	o.dev.boot_bypass = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 1);
	CHECK_EQ(f.info.bypass, 1);
	CHECK_EQ(refdrv_set_bypass(f.drv, false), 0);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 0);
	CHECK_EQ(refdrv_set_bypass(f.drv, true), 0);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 1);
	/* The reserved bytes after bypass read zero. */
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS + 1, 2), 0);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS + 3, 1), 0);
	/* Wider reads see the same single bit. */
	CHECK_EQ(vfx_cfg(&f, CFG_PROBE_SIZE, 8) >> 32, 1);
	vfx_fini(&f);
}

TEST(D3_bypass_write_2_ignored)
{
	struct vfx_opts o = { 0 };
	unsigned long w;
	uint8_t v;
	struct vfx f;

	o.dev.boot_bypass = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(refdrv_set_bypass(f.drv, false), 0);
	for (unsigned int x = 2; x < 256; x += 51) {
		w = f.nwarn;
		v = (uint8_t)x;
		viommu_virtio_dev_config_write(f.dev, CFG_BYPASS, &v, 1);
		CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 0);
		CHECK_EQ(f.nwarn, w + 1);
	}
	CHECK_U64(vfx_xlate(f.ep8, 0x3000, VIOMMU_READ), ~0ull);
	CHECK_EQ(refdrv_set_bypass(f.drv, true), 0);
	v = 0xff;
	viommu_virtio_dev_config_write(f.dev, CFG_BYPASS, &v, 1);
	v = 2;
	viommu_virtio_dev_config_write(f.dev, CFG_BYPASS, &v, 1);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 1);
	CHECK_U64(vfx_xlate(f.ep8, 0x3000, VIOMMU_READ), 0x3000);
	vfx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* Every request (D4-D7)                                              */

TEST(D4_ok_on_success)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		struct refdrv_resv rv[4];
		unsigned int n = 0;
		uint8_t s = VFX_ERR;
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0x10000, 0x1ffff, VFX_DATA, MAP_R),
			 S_OK);
		CHECK_EQ(vfx_unmap(&f, 1, 0x10000, 0x1ffff), S_OK);
		CHECK_EQ(refdrv_probe(f.drv, 8, rv, 4, &n, &s), 0);
		CHECK_EQ(s, S_OK);
		CHECK_EQ(vfx_detach(&f, 1, 8), S_OK);
		CHECK_EQ(vfx_attach(&f, 2, 9, ATTACH_F_BYPASS), S_OK);
		CHECK_EQ(vfx_info(&f)->bad_len, 0);
		CHECK_EQ(f.info.tail_rsvd, 0);
		CHECK_EQ(f.info.errors, 0);
		vfx_fini(&f);
	}
}

TEST(D5_unknown_type_unwritten)
{
	static const uint8_t types[] = { 0, 6, 7, 0x80, 0xff };

	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		uint8_t req[LEN_MAP], reply[64];
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		for (unsigned int i = 0; i < sizeof(types); i++) {
			vfx_req_map(req, 1, 0, 0xfff, VFX_DATA, MAP_R);
			req[0] = types[i];
			CHECK_EQ(vfx_raw(&f, req, LEN_MAP, 4, reply), 0);
			CHECK(vfx_all(reply, 4, REFDRV_POISON));
			CHECK_EQ(vfx_raw(&f, req, 4, 64, reply), 0);
			CHECK(vfx_all(reply, 64, REFDRV_POISON));
		}
		/* The device carries on with the next request. */
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		CHECK(!(viommu_virtio_dev_status(f.dev) &
			VIOMMU_VIRTIO_S_NEEDS_RESET));
		vfx_fini(&f);
	}
}

TEST(D6_head_rsvd_ignored_tail_rsvd_zero)
{
	uint8_t req[LEN_MAP];
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	vfx_req_attach(req, 1, 8, 0);
	req[1] = 0xff;
	req[2] = 0x5a;
	req[3] = 0x01;
	/* vfx_raw_status() also checks the tail's reserved bytes. */
	CHECK_EQ(vfx_raw_status(&f, req, LEN_ATTACH), S_OK);
	vfx_req_map(req, 1, 0x4000, 0x4fff, VFX_DATA, MAP_R);
	req[1] = req[2] = req[3] = 0x80;
	CHECK_EQ(vfx_raw_status(&f, req, LEN_MAP), S_OK);
	CHECK_U64(vfx_xlate(f.ep8, 0x4000, VIOMMU_READ), VFX_DATA);
	vfx_req_unmap(req, 1, 0x4000, 0x4fff);
	req[3] = 0xff;
	CHECK_EQ(vfx_raw_status(&f, req, LEN_UNMAP), S_OK);
	vfx_req_detach(req, 1, 8);
	req[2] = 0x33;
	CHECK_EQ(vfx_raw_status(&f, req, LEN_DETACH), S_OK);
	CHECK(vfx_dom(f.ep8) == NULL);
	vfx_fini(&f);
}

TEST(D6_tail_rsvd_zero_every_status)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		uint8_t req[LEN_MAP];
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		/* Success and several failure statuses: all tails clean. */
		vfx_req_attach(req, 1, 8, 0);
		CHECK_EQ(vfx_raw_status(&f, req, LEN_ATTACH), S_OK);
		vfx_req_attach(req, 1, 77, 0);
		CHECK_EQ(vfx_raw_status(&f, req, LEN_ATTACH), S_NOENT);
		vfx_req_map(req, 1, 0x1001, 0x1fff, VFX_DATA, MAP_R);
		CHECK_EQ(vfx_raw_status(&f, req, LEN_MAP), S_RANGE);
		vfx_req_map(req, 1, 0x1000, 0x1fff, VFX_DATA, 0x100);
		CHECK_EQ(vfx_raw_status(&f, req, LEN_MAP), S_INVAL);
		vfx_req_unmap(req, 5, 0, 0xfff);
		CHECK_EQ(vfx_raw_status(&f, req, LEN_UNMAP), S_NOENT);
		vfx_req_detach(req, 1, 8);
		CHECK_EQ(vfx_raw_status(&f, req, LEN_DETACH), S_OK);
		/* The driver's own count of dirty tails. */
		CHECK_EQ(vfx_info(&f)->tail_rsvd, 0);
		vfx_fini(&f);
	}
}

TEST(D7_unattached_endpoint_blocked)
{
	struct vfx_opts o = { 0 };
	uint8_t buf[16] = { 1, 2, 3 };
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_cfg(&f, CFG_BYPASS, 1), 0);
	CHECK_U64(vfx_xlate(f.ep8, VFX_DATA, VIOMMU_READ), ~0ull);
	CHECK_EQ(viommu_dma_write(f.ep8, VIOMMU_NO_PASID, VFX_DATA, buf, 16),
		 -EFAULT);
	CHECK(vfx_all(f.ram + VFX_DATA, 16, 0));
	CHECK_EQ(viommu_dma_read(f.ep9, VIOMMU_NO_PASID, 0, buf, 16),
		 -EFAULT);
	vfx_fini(&f);

	/* With bypass on, unattached endpoints reach GPA == IOVA. */
	o.dev.boot_bypass = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_U64(vfx_xlate(f.ep8, VFX_DATA, VIOMMU_READ), VFX_DATA);
	CHECK_EQ(viommu_dma_write(f.ep8, VIOMMU_NO_PASID, VFX_DATA, buf, 16),
		 0);
	CHECK_EQ(f.ram[VFX_DATA + 1], 2);
	/* Bypass off again: no access. */
	CHECK_EQ(refdrv_set_bypass(f.drv, false), 0);
	CHECK_U64(vfx_xlate(f.ep8, VFX_DATA, VIOMMU_READ), ~0ull);
	vfx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* ATTACH (D8-D14)                                                    */

TEST(D8_attach_rsvd_inval)
{
	uint8_t req[LEN_ATTACH];
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	for (int i = 16; i < 20; i++) {
		vfx_req_attach(req, 1, 8, 0);
		req[i] = (uint8_t)(1u << (i - 14));
		CHECK_EQ(vfx_raw_status(&f, req, LEN_ATTACH), S_INVAL);
	}
	CHECK(vfx_dom(f.ep8) == NULL);
	CHECK_EQ(vfx_ctx_domains(&f), 0);
	/* Nothing changed for an endpoint already attached elsewhere. */
	CHECK_EQ(vfx_attach(&f, 2, 8, 0), S_OK);
	vfx_req_attach(req, 3, 8, 0);
	req[19] = 1;
	CHECK_EQ(vfx_raw_status(&f, req, LEN_ATTACH), S_INVAL);
	CHECK_EQ(viommu_domain_tag(vfx_dom(f.ep8)), 2);
	vfx_fini(&f);
}

TEST(D8_attach_unknown_flag_inval)
{
	static const uint32_t bad[] = { 2, 4, 0x100, 0x80000000u, 3 };
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	for (unsigned int i = 0; i < 5; i++)
		CHECK_EQ(vfx_attach(&f, 1, 8, bad[i]), S_INVAL);
	CHECK(vfx_dom(f.ep8) == NULL);
	CHECK_EQ(vfx_ctx_domains(&f), 0);
	vfx_fini(&f);
}

TEST(D8_attach_bypass_flag_without_feature_inval)
{
	struct vfx_opts o = { 0 };
	struct vfx f;

	/* ATTACH_F_BYPASS is unknown unless BYPASS_CONFIG was negotiated. */
	o.drv_features = F_VERSION_1 | F_MAP_UNMAP | F_PROBE;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, ATTACH_F_BYPASS), S_INVAL);
	CHECK(vfx_dom(f.ep8) == NULL);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	vfx_fini(&f);

	/* Not offered at all: the same. */
	memset(&o, 0, sizeof(o));
	o.dev.features = F_ALL_DEV & ~F_BYPASS_CONFIG;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, ATTACH_F_BYPASS), S_INVAL);
	CHECK(vfx_dom(f.ep8) == NULL);
	vfx_fini(&f);
}

TEST(D9_attach_unknown_endpoint_noent)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 444, 0), S_NOENT);
	CHECK_EQ(vfx_attach(&f, 1, 0xffffffffu, 0), S_NOENT);
	CHECK_EQ(vfx_attach(&f, 1, 444, ATTACH_F_BYPASS), S_NOENT);
	/* No domain was left behind by the refused requests. */
	CHECK_EQ(vfx_ctx_domains(&f), 0);
	CHECK_EQ(vfx_map(&f, 1, 0, 0xfff, VFX_DATA, MAP_R), S_NOENT);
	/* An endpoint the embedder destroys becomes unknown. */
	CHECK_EQ(vfx_attach(&f, 1, 9, 0), S_OK);
	viommu_endpoint_destroy(f.ep9);
	f.ep9 = NULL;
	CHECK_EQ(vfx_attach(&f, 2, 9, 0), S_NOENT);
	CHECK_EQ(vfx_detach(&f, 1, 9), S_NOENT);
	vfx_fini(&f);
}

TEST(D10_attach_two_endpoints_one_domain)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x2000, 0x2fff, VFX_DATA, MAP_R), S_OK);
	/* This device can share: the second endpoint joins, not UNSUPP. */
	CHECK_EQ(vfx_attach(&f, 1, 9, 0), S_OK);
	CHECK(vfx_dom(f.ep8) == vfx_dom(f.ep9));
	CHECK_U64(vfx_xlate(f.ep9, 0x2000, VIOMMU_READ), VFX_DATA);
	CHECK_EQ(vfx_ctx_domains(&f), 1);
	/* One leaving keeps the domain alive for the other. */
	CHECK_EQ(vfx_detach(&f, 1, 8), S_OK);
	CHECK_U64(vfx_xlate(f.ep9, 0x2000, VIOMMU_READ), VFX_DATA);
	vfx_fini(&f);
}

TEST(D11_attach_bypass_inconsistent_inval)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, ATTACH_F_BYPASS), S_OK);
	CHECK_EQ(vfx_attach(&f, 1, 9, 0), S_INVAL);
	CHECK(vfx_dom(f.ep9) == NULL);
	CHECK_EQ(vfx_attach(&f, 2, 9, 0), S_OK);
	CHECK_EQ(vfx_attach(&f, 2, 0, ATTACH_F_BYPASS), S_INVAL);
	CHECK(vfx_dom(f.ep0) == NULL);
	/* A refused move leaves the endpoint where it was. */
	CHECK_EQ(vfx_attach(&f, 1, 9, 0), S_INVAL);
	CHECK_EQ(viommu_domain_tag(vfx_dom(f.ep9)), 2);
	/* Consistent flags are fine. */
	CHECK_EQ(vfx_attach(&f, 1, 0, ATTACH_F_BYPASS), S_OK);
	CHECK_EQ(vfx_attach(&f, 2, 8, 0), S_OK);
	vfx_fini(&f);
}

TEST(D12_attach_moves_endpoint)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R),
			 S_OK);
		CHECK_EQ(vfx_attach(&f, 2, 8, 0), S_OK);
		CHECK_EQ(viommu_domain_tag(vfx_dom(f.ep8)), 2);
		CHECK_U64(vfx_xlate(f.ep8, 0x1000, VIOMMU_READ), ~0ull);
		/* As if DETACH came first: domain 1 is gone (D17). */
		CHECK_EQ(vfx_map(&f, 1, 0x3000, 0x3fff, VFX_DATA, MAP_R),
			 S_NOENT);
		CHECK_EQ(vfx_ctx_domains(&f), 1);
		CHECK_EQ(vfx_detach(&f, 1, 8), S_INVAL);
		/* Moving into a bypass domain and back. */
		CHECK_EQ(vfx_attach(&f, 3, 8, ATTACH_F_BYPASS), S_OK);
		CHECK_U64(vfx_xlate(f.ep8, 0x5000, VIOMMU_READ), 0x5000);
		CHECK_EQ(vfx_ctx_domains(&f), 0);
		CHECK_EQ(vfx_attach(&f, 4, 8, 0), S_OK);
		CHECK_U64(vfx_xlate(f.ep8, 0x5000, VIOMMU_READ), ~0ull);
		/* Re-attaching to the same domain is a no-op success. */
		CHECK_EQ(vfx_map(&f, 4, 0x1000, 0x1fff, VFX_DATA, MAP_W),
			 S_OK);
		CHECK_EQ(vfx_attach(&f, 4, 8, 0), S_OK);
		CHECK_EQ(vfx_maps(f.ep8).n, 1);
		vfx_fini(&f);
	}
}

TEST(D12_attach_move_destroys_empty_domain)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_attach(&f, 1, 9, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_attach(&f, 2, 8, 0), S_OK);
	/* ep9 still holds domain 1. */
	CHECK_EQ(vfx_ctx_domains(&f), 2);
	CHECK_U64(vfx_xlate(f.ep9, 0x1000, VIOMMU_READ), VFX_DATA);
	CHECK_EQ(vfx_attach(&f, 2, 9, 0), S_OK);
	/* Domain 1 lost its last endpoint: gone with its mapping. */
	CHECK_EQ(vfx_ctx_domains(&f), 1);
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_NOENT);
	CHECK_EQ(vfx_attach(&f, 1, 0, 0), S_OK);
	CHECK_EQ(vfx_maps(f.ep0).n, 0);
	vfx_fini(&f);
}

TEST(D13_incompatible_endpoint_unsupp)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	/* ep9 has a reserved region where domain 1 already maps. */
	REQUIRE(viommu_endpoint_add_resv(f.ep9, 0x8000, 0x8fff,
					 VIOMMU_RESV_RESERVED) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x8000, 0x8fff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_attach(&f, 1, 9, 0), S_UNSUPP);
	CHECK(vfx_dom(f.ep9) == NULL);
	/* Attached elsewhere first: the failed move changes nothing. */
	CHECK_EQ(vfx_attach(&f, 2, 9, 0), S_OK);
	CHECK_EQ(vfx_attach(&f, 1, 9, 0), S_UNSUPP);
	CHECK_EQ(viommu_domain_tag(vfx_dom(f.ep9)), 2);
	CHECK_EQ(vfx_ctx_domains(&f), 2);
	vfx_fini(&f);
}

TEST(D14_attach_not_rejected_attaches)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 7, 8, 0), S_OK);
	REQUIRE(vfx_dom(f.ep8) != NULL);
	CHECK_EQ(viommu_domain_kind(vfx_dom(f.ep8)), VIOMMU_DOMAIN_PAGING);
	CHECK_EQ(viommu_domain_tag(vfx_dom(f.ep8)), 7);
	/* Attached to an empty paging domain: no access at all. */
	CHECK_U64(vfx_xlate(f.ep8, 0, VIOMMU_READ), ~0ull);
	CHECK_EQ(vfx_map(&f, 7, 0x7000, 0x7fff, VFX_DATA + 0x7000,
			 MAP_R | MAP_W), S_OK);
	CHECK_U64(vfx_xlate(f.ep8, 0x7abc, VIOMMU_WRITE), VFX_DATA + 0x7abc);
	CHECK_EQ(vfx_attach(&f, 8, 9, ATTACH_F_BYPASS), S_OK);
	CHECK(vfx_dom(f.ep9) == viommu_ctx_identity_domain(f.ctx));
	vfx_fini(&f);
}

TEST(D14_attach_failure_changes_nothing)
{
	struct vfx_opts o = { 0 };
	struct vfx f;

	o.limits.max_domains = 1;
	REQUIRE(vfx_init(&f, &o) == 0);
	REQUIRE(viommu_endpoint_add_resv(f.ep9, 0x8000, 0x8fff,
					 VIOMMU_RESV_RESERVED) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x8000, 0x8fff, VFX_DATA, MAP_R), S_OK);
	/* NOMEM for a new domain: the endpoint stays where it was. */
	CHECK_EQ(vfx_attach(&f, 2, 8, 0), S_NOMEM);
	CHECK_EQ(viommu_domain_tag(vfx_dom(f.ep8)), 1);
	CHECK_EQ(vfx_maps(f.ep8).n, 1);
	CHECK_EQ(vfx_map(&f, 2, 0, 0xfff, VFX_DATA, MAP_R), S_NOENT);
	/* UNSUPP into an existing domain: nothing changes either. */
	CHECK_EQ(vfx_attach(&f, 1, 9, 0), S_UNSUPP);
	CHECK(vfx_dom(f.ep9) == NULL);
	CHECK_EQ(vfx_ctx_domains(&f), 1);
	/* The domain still works, and a new one fits once it is gone. */
	CHECK_EQ(vfx_detach(&f, 1, 8), S_OK);
	CHECK_EQ(vfx_attach(&f, 2, 8, 0), S_OK);
	vfx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* DETACH (D15-D17)                                                   */

TEST(D15_detach_rsvd_ignored)
{
	uint8_t req[LEN_DETACH];
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	vfx_req_detach(req, 1, 8);
	memset(req + 12, 0xff, 8);
	CHECK_EQ(vfx_raw_status(&f, req, LEN_DETACH), S_OK);
	CHECK(vfx_dom(f.ep8) == NULL);
	vfx_fini(&f);
}

TEST(D15_detach_unknown_endpoint_noent)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_detach(&f, 1, 1), S_NOENT);
	CHECK_EQ(vfx_detach(&f, 1, 0xdead), S_NOENT);
	CHECK(vfx_dom(f.ep8) != NULL);
	vfx_fini(&f);
}

TEST(D15_detach_wrong_domain_inval)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_attach(&f, 2, 9, 0), S_OK);
	CHECK_EQ(vfx_detach(&f, 2, 8), S_INVAL);   /* other domain */
	CHECK_EQ(vfx_detach(&f, 99, 8), S_INVAL);  /* no such domain */
	CHECK_EQ(vfx_detach(&f, 1, 0), S_INVAL);   /* not attached */
	CHECK_EQ(viommu_domain_tag(vfx_dom(f.ep8)), 1);
	CHECK_EQ(viommu_domain_tag(vfx_dom(f.ep9)), 2);
	CHECK_EQ(vfx_ctx_domains(&f), 2);
	vfx_fini(&f);
}

TEST(D16_detach_endpoint_loses_mappings)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		uint8_t b[8] = { 9, 9, 9, 9, 9, 9, 9, 9 };
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		CHECK_EQ(vfx_attach(&f, 1, 9, 0), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0x40000, 0x40fff, VFX_DATA,
				 MAP_R | MAP_W), S_OK);
		CHECK_EQ(viommu_dma_write(f.ep8, VIOMMU_NO_PASID, 0x40000, b,
					  8), 0);
		CHECK_EQ(vfx_detach(&f, 1, 8), S_OK);
		CHECK_U64(vfx_xlate(f.ep8, 0x40000, VIOMMU_READ), ~0ull);
		memset(f.ram + VFX_DATA, 0, 8);
		CHECK_EQ(viommu_dma_write(f.ep8, VIOMMU_NO_PASID, 0x40000, b,
					  8), -EFAULT);
		CHECK(vfx_all(f.ram + VFX_DATA, 8, 0));
		/* The other endpoint keeps them. */
		CHECK_U64(vfx_xlate(f.ep9, 0x40000, VIOMMU_READ), VFX_DATA);
		/* With bypass the detached endpoint reaches GPA == IOVA,
		 * not the domain's mapping. */
		CHECK_EQ(refdrv_set_bypass(f.drv, true), 0);
		CHECK_U64(vfx_xlate(f.ep8, 0x40000, VIOMMU_READ), 0x40000);
		vfx_fini(&f);
	}
}

TEST(D17_empty_domain_destroyed)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x9000, 0x9fff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_ctx_domains(&f), 1);
	CHECK_EQ(vfx_detach(&f, 1, 8), S_OK);
	CHECK_EQ(vfx_ctx_domains(&f), 0);
	CHECK_EQ(vfx_map(&f, 1, 0x3000, 0x3fff, VFX_DATA, MAP_R), S_NOENT);
	CHECK_EQ(vfx_unmap(&f, 1, 0, 0xffff), S_NOENT);
	/* The ID is reusable and the new domain starts empty. */
	CHECK_EQ(vfx_attach(&f, 1, 9, 0), S_OK);
	CHECK_EQ(vfx_maps(f.ep9).n, 0);
	CHECK_U64(vfx_xlate(f.ep9, 0x1000, VIOMMU_READ), ~0ull);
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_OK);
	/* A bypass domain ends the same way and can come back paging. */
	CHECK_EQ(vfx_attach(&f, 5, 8, ATTACH_F_BYPASS), S_OK);
	CHECK_EQ(vfx_detach(&f, 5, 8), S_OK);
	CHECK_EQ(vfx_attach(&f, 5, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 5, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_OK);
	vfx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* MAP (D18-D24)                                                      */

TEST(D18_map_unaligned_range)
{
	struct vfx_opts o = { 0 };
	struct vfx f;

	o.dev.page_size_mask = 0x1000 | 0x200000;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x1800, 0x2fff, VFX_DATA, MAP_R), S_RANGE);
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA + 1, MAP_R),
		 S_RANGE);
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1ffe, VFX_DATA, MAP_R), S_RANGE);
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x2000, VFX_DATA, MAP_R), S_RANGE);
	CHECK_EQ(vfx_maps(f.ep8).n, 0);
	/* Granule-aligned but not 2 MiB-aligned is fine: bits above the
	 * lowest are hints. */
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x200000, 0x3fffff, 0x200000, MAP_R), S_OK);
	CHECK_EQ(vfx_maps(f.ep8).n, 2);
	vfx_fini(&f);

	/* A 64 KiB granule. */
	memset(&o, 0, sizeof(o));
	o.dev.page_size_mask = 0x10000;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_RANGE);
	CHECK_EQ(vfx_map(&f, 1, 0x10000, 0x1ffff, VFX_DATA + 0x1000, MAP_R),
		 S_RANGE);
	CHECK_EQ(vfx_map(&f, 1, 0x10000, 0x1ffff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(refdrv_map_page(f.drv, 1, 0x20000, VFX_DATA, MAP_R, NULL), 0);
	CHECK_EQ(vfx_maps(f.ep8).n, 2);
	vfx_fini(&f);
}

TEST(D19_map_overlap_inval)
{
	struct vfx_maps l;
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x10000, 0x13fff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x10000, 0x13fff, VFX_DATA, MAP_R), S_INVAL);
	CHECK_EQ(vfx_map(&f, 1, 0xf000, 0x10fff, VFX_DATA, MAP_R), S_INVAL);
	CHECK_EQ(vfx_map(&f, 1, 0x13000, 0x14fff, VFX_DATA, MAP_R), S_INVAL);
	CHECK_EQ(vfx_map(&f, 1, 0x11000, 0x11fff, VFX_DATA, MAP_R), S_INVAL);
	CHECK_EQ(vfx_map(&f, 1, 0x0, 0xfffff, VFX_DATA, MAP_R), S_INVAL);
	/* Adjacent is not overlapping. */
	CHECK_EQ(vfx_map(&f, 1, 0xf000, 0xffff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x14000, 0x14fff, VFX_DATA, MAP_R), S_OK);
	l = vfx_maps(f.ep8);
	CHECK_EQ(l.n, 3);
	CHECK(vfx_has_map(&l, 0x10000, 0x13fff, VFX_DATA));
	vfx_fini(&f);
}

TEST(D20_map_unknown_flag_inval)
{
	static const uint32_t bad[] = { 8, 0x10, 0x100, 0x80000000u,
					MAP_R | 0x40 };
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	for (unsigned int i = 0; i < 5; i++)
		CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, bad[i]),
			 S_INVAL);
	CHECK_EQ(vfx_maps(f.ep8).n, 0);
	/* MMIO is known with the MMIO feature. */
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, 0xfe000000ull,
			 MAP_R | MAP_W | MAP_MMIO), S_OK);
	/* No flags at all is a valid (inaccessible) mapping. */
	CHECK_EQ(vfx_map(&f, 1, 0x2000, 0x2fff, VFX_DATA, 0), S_OK);
	CHECK_U64(vfx_xlate(f.ep8, 0x2000, VIOMMU_READ), ~0ull);
	vfx_fini(&f);
}

TEST(D20_map_mmio_without_feature_inval)
{
	struct vfx_opts o = { 0 };
	struct vfx f;

	o.drv_features = F_VERSION_1 | F_MAP_UNMAP | F_BYPASS_CONFIG;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, 0xfe000000ull,
			 MAP_R | MAP_MMIO), S_INVAL);
	CHECK_EQ(vfx_maps(f.ep8).n, 0);
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, 0xfe000000ull, MAP_R), S_OK);
	vfx_fini(&f);
}

TEST(D21_map_no_domain_noent)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_NOENT);
	CHECK_EQ(vfx_map(&f, 0, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_NOENT);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 2, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_NOENT);
	CHECK_EQ(vfx_maps(f.ep8).n, 0);
	vfx_fini(&f);
}

TEST(D21_map_bypass_domain_inval)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 2, 8, ATTACH_F_BYPASS), S_OK);
	CHECK_EQ(vfx_map(&f, 2, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_INVAL);
	/* Bypass still means identity: nothing was mapped. */
	CHECK_U64(vfx_xlate(f.ep8, 0x1000, VIOMMU_READ), 0x1000);
	vfx_fini(&f);
}

TEST(D22_map_read_only_blocks_writes)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		uint8_t b[4] = { 1, 2, 3, 4 }, rb[4];
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R),
			 S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0x2000, 0x2fff, VFX_DATA + 0x1000,
				 MAP_MMIO), S_OK);
		CHECK_EQ(viommu_dma_write(f.ep8, VIOMMU_NO_PASID, 0x1000, b,
					  4), -EFAULT);
		CHECK(vfx_all(f.ram + VFX_DATA, 4, 0));
		CHECK_EQ(viommu_dma_write(f.ep8, VIOMMU_NO_PASID, 0x2000, b,
					  4), -EFAULT);
		CHECK_EQ(viommu_dma_read(f.ep8, VIOMMU_NO_PASID, 0x1000, rb,
					 4), 0);
		CHECK_U64(vfx_xlate(f.ep8, 0x1000, VIOMMU_WRITE), ~0ull);
		/* WRITE allows writes. */
		CHECK_EQ(vfx_map(&f, 1, 0x3000, 0x3fff, VFX_DATA + 0x2000,
				 MAP_R | MAP_W), S_OK);
		CHECK_EQ(viommu_dma_write(f.ep8, VIOMMU_NO_PASID, 0x3000, b,
					  4), 0);
		CHECK_EQ(f.ram[VFX_DATA + 0x2003], 4);
		vfx_fini(&f);
	}
}

TEST(D23_map_outside_input_range)
{
	struct vfx_opts o = { 0 };
	struct vfx f;

	o.dev.input_start = 0x100000;
	o.dev.input_end = 0xffffffffull;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_U64(f.info.input_start, 0x100000);
	CHECK_U64(f.info.input_end, 0xffffffff);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0, 0xfff, VFX_DATA, MAP_R), S_RANGE);
	CHECK_EQ(vfx_map(&f, 1, 0xff000, 0x100fff, VFX_DATA, MAP_R), S_RANGE);
	CHECK_EQ(vfx_map(&f, 1, 0xfffff000ull, 0x100000fffull, VFX_DATA,
			 MAP_R), S_RANGE);
	CHECK_EQ(vfx_map(&f, 1, 0x100000000ull, 0x100000fffull, VFX_DATA,
			 MAP_R), S_RANGE);
	CHECK_EQ(vfx_maps(f.ep8).n, 0);
	/* Both ends inside are fine. */
	CHECK_EQ(vfx_map(&f, 1, 0x100000, 0x100fff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0xfffff000ull, 0xffffffffull, VFX_DATA,
			 MAP_R), S_OK);
	vfx_fini(&f);

	/* Default input range is 48 bits. */
	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_U64(vfx_cfg(&f, CFG_IN_END, 8), (1ull << 48) - 1);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 1ull << 48, (1ull << 48) + 0xfff, VFX_DATA,
			 MAP_R), S_RANGE);
	CHECK_EQ(vfx_map(&f, 1, (1ull << 48) - 0x1000, (1ull << 48) - 1,
			 VFX_DATA, MAP_R), S_OK);
	vfx_fini(&f);
}

TEST(D24_map_over_resv_mem_inval)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	REQUIRE(viommu_endpoint_add_resv(f.ep8, 0x80000, 0x8ffff,
					 VIOMMU_RESV_RESERVED) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x8f000, 0x8ffff, VFX_DATA, MAP_R), S_INVAL);
	CHECK_EQ(vfx_map(&f, 1, 0x70000, 0x80fff, VFX_DATA, MAP_R), S_INVAL);
	CHECK_EQ(vfx_map(&f, 1, 0x0, 0xfffff, VFX_DATA, MAP_R), S_INVAL);
	CHECK_EQ(vfx_maps(f.ep8).n, 0);
	/* Right next to it is fine. */
	CHECK_EQ(vfx_map(&f, 1, 0x90000, 0x90fff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x7f000, 0x7ffff, VFX_DATA, MAP_R), S_OK);
	/* Another endpoint's region counts once it shares the domain. */
	REQUIRE(viommu_endpoint_add_resv(f.ep9, 0x200000, 0x200fff,
					 VIOMMU_RESV_RESERVED) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 9, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x200000, 0x200fff, VFX_DATA, MAP_R),
		 S_INVAL);
	vfx_fini(&f);
}

TEST(D24_map_over_msi_region_inval)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, MSI_START, MSI_END, MSI_START, MAP_W),
		 S_INVAL);
	CHECK_EQ(vfx_map(&f, 1, 0xfe000000ull, 0xfeefffffull, VFX_DATA,
			 MAP_R), S_INVAL);
	CHECK_EQ(vfx_map(&f, 1, 0xfeeff000ull, 0xfef00fffull, VFX_DATA,
			 MAP_R), S_INVAL);
	CHECK_EQ(vfx_maps(f.ep8).n, 0);
	CHECK_EQ(vfx_map(&f, 1, 0xfef00000ull, 0xfef00fffull, VFX_DATA,
			 MAP_R), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0xfedff000ull, 0xfedfffffull, VFX_DATA,
			 MAP_R), S_OK);
	vfx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* UNMAP (D25-D28)                                                    */

TEST(D25_unmap_rsvd_inval)
{
	uint8_t req[LEN_UNMAP];
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_OK);
	for (int i = 24; i < 28; i++) {
		vfx_req_unmap(req, 1, 0x1000, 0x1fff);
		req[i] = 0x10;
		CHECK_EQ(vfx_raw_status(&f, req, LEN_UNMAP), S_INVAL);
	}
	vfx_req_unmap(req, 1, 0x1000, 0x1fff);
	CHECK_EQ(vfx_raw_status(&f, req, LEN_UNMAP), S_OK);
	CHECK_EQ(vfx_maps(f.ep8).n, 0);
	vfx_fini(&f);
}

TEST(D26_unmap_no_domain_noent)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_unmap(&f, 4, 0x10, 0xfff), S_NOENT);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_unmap(&f, 4, 0x10, 0xfff), S_NOENT);
	CHECK_EQ(vfx_unmap(&f, 1, 0x10, 0xfff), S_OK);
	vfx_fini(&f);
}

TEST(D26_unmap_bypass_domain_inval)
{
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 2, 8, ATTACH_F_BYPASS), S_OK);
	CHECK_EQ(vfx_unmap(&f, 2, 0, 0xfff), S_INVAL);
	CHECK_U64(vfx_xlate(f.ep8, 0x1000, VIOMMU_READ), 0x1000);
	vfx_fini(&f);
}

TEST(D27_unmap_split_range_nothing_removed)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		struct vfx_maps l;
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R),
			 S_OK);
		CHECK_EQ(vfx_map(&f, 1, 0x4000, 0x7fff, VFX_DATA, MAP_R),
			 S_OK);
		/* The first mapping is wholly inside, the second split:
		 * nothing at all may go. */
		CHECK_EQ(vfx_unmap(&f, 1, 0x0, 0x5fff), S_RANGE);
		CHECK_EQ(vfx_unmap(&f, 1, 0x5000, 0x8fff), S_RANGE);
		CHECK_EQ(vfx_unmap(&f, 1, 0x5000, 0x5fff), S_RANGE);
		l = vfx_maps(f.ep8);
		CHECK_EQ(l.n, 2);
		CHECK(vfx_has_map(&l, 0x1000, 0x1fff, VFX_DATA));
		CHECK(vfx_has_map(&l, 0x4000, 0x7fff, VFX_DATA));
		CHECK_U64(vfx_xlate(f.ep8, 0x1000, VIOMMU_READ), VFX_DATA);
		vfx_fini(&f);
	}
}

TEST(D28_unmap_gaps_ok)
{
	struct vfx_maps l;
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
	CHECK_EQ(vfx_unmap(&f, 1, 0, 0xffffff), S_OK); /* nothing there */
	CHECK_EQ(vfx_map(&f, 1, 0x1000, 0x1fff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x3000, 0x3fff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x9000, 0x9fff, VFX_DATA, MAP_R), S_OK);
	CHECK_EQ(vfx_unmap(&f, 1, 0x0, 0x4fff), S_OK);
	l = vfx_maps(f.ep8);
	CHECK_EQ(l.n, 1);
	CHECK(vfx_has_map(&l, 0x9000, 0x9fff, VFX_DATA));
	/* The whole 64-bit space through a raw request. */
	{
		uint8_t req[LEN_UNMAP];

		vfx_req_unmap(req, 1, 0, UINT64_MAX);
		CHECK_EQ(vfx_raw_status(&f, req, LEN_UNMAP), S_OK);
	}
	CHECK_EQ(vfx_maps(f.ep8).n, 0);
	vfx_fini(&f);
}

TEST(D28_unmap_empty_ok)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		uint8_t req[LEN_UNMAP];
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		CHECK_EQ(vfx_unmap(&f, 1, 0x1000, 0x1fff), S_OK);
		/* Unaligned or outside input_range: nothing can be mapped
		 * there, so it is a gap. */
		CHECK_EQ(vfx_unmap(&f, 1, 0x1001, 0x1002), S_OK);
		vfx_req_unmap(req, 1, 1ull << 60, UINT64_MAX);
		CHECK_EQ(vfx_raw_status(&f, req, LEN_UNMAP), S_OK);
		CHECK_EQ(vfx_maps(f.ep8).n, 0);
		vfx_fini(&f);
	}
}

/* ------------------------------------------------------------------ */
/* PROBE (D29-D34)                                                    */

TEST(D29_probe_rsvd_ignored)
{
	uint8_t req[LEN_PROBE], reply[512 + 4];
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	vfx_req_probe(req, 8);
	memset(req + 8, 0xee, 64);
	req[1] = 0x11;
	CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, 512 + 4, reply), 512 + 4);
	CHECK_EQ(reply[512], S_OK);
	CHECK_EQ(vfx_get(reply, 2) & 0xfff, 1); /* a RESV_MEM property */
	vfx_fini(&f);
}

TEST(D29_probe_unknown_endpoint_noent)
{
	struct refdrv_resv rv[2];
	uint8_t req[LEN_PROBE], reply[512 + 4];
	unsigned int n = 7;
	uint8_t s = 0;
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	CHECK_EQ(refdrv_probe(f.drv, 1234, rv, 2, &n, &s), 0);
	CHECK_EQ(s, S_NOENT);
	CHECK_EQ(n, 0);
	/* Full reply, no property. */
	vfx_req_probe(req, 1234);
	CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, 512 + 4, reply), 512 + 4);
	CHECK_EQ(reply[512], S_NOENT);
	CHECK(vfx_all(reply, 512, 0));
	CHECK(vfx_all(reply + 513, 3, 0));
	vfx_fini(&f);
}

TEST(D30_probe_not_negotiated_unwritten)
{
	struct vfx_opts o = { 0 };
	uint8_t req[LEN_PROBE], reply[516];
	struct refdrv_resv rv[1];
	unsigned int n;
	struct vfx f;

	FOR_EACH_RING(r) {
		o = vfx_ring_opts(r);
		o.dev.features = F_ALL_DEV & ~F_PROBE;
		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK(!(viommu_virtio_dev_features(f.dev) & F_PROBE));
		CHECK_EQ(vfx_cfg(&f, CFG_PROBE_SIZE, 4), 0);
		vfx_req_probe(req, 8);
		CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, 516, reply), 0);
		CHECK(vfx_all(reply, 516, REFDRV_POISON));
		CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, 4, reply), 0);
		CHECK(vfx_all(reply, 4, REFDRV_POISON));
		CHECK_EQ(refdrv_probe(f.drv, 8, rv, 1, &n, NULL), -EOPNOTSUPP);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		vfx_fini(&f);
	}
	/* Offered but not accepted by the driver: the same. */
	memset(&o, 0, sizeof(o));
	o.drv_features = F_VERSION_1 | F_MAP_UNMAP | F_BYPASS_CONFIG;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK(viommu_virtio_dev_features(f.dev) & F_PROBE);
	CHECK(!(f.info.features & F_PROBE));
	vfx_req_probe(req, 8);
	CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, 516, reply), 0);
	CHECK(vfx_all(reply, 516, REFDRV_POISON));
	vfx_fini(&f);
}

/*
 * check_props() - walk a PROBE reply of @psz bytes the way the spec lays
 * it out; check D31/D33/D34 and return the number of RESV_MEM found,
 * copying them to @out.
 */
static unsigned int check_props(const uint8_t *p, uint32_t psz,
				struct refdrv_resv *out, unsigned int max)
{
	uint32_t off = 0;
	unsigned int n = 0, msi = 0;

	while (off + 4 <= psz) {
		uint16_t t = (uint16_t)vfx_get(p + off, 2);
		uint16_t len = (uint16_t)vfx_get(p + off + 2, 2);

		if (t == 0)
			break;
		CHECK_EQ(t >> 12, 0);          /* property reserved bits */
		CHECK_EQ(t & 0xfff, 1);        /* RESV_MEM is all we expect */
		CHECK_EQ(len, 20);             /* D31: header excluded */
		if (off + 4 + len > psz) {
			CHECK(off + 4 + len <= psz);
			break;
		}
		CHECK(vfx_all(p + off + 5, 3, 0)); /* resv_mem reserved */
		if (n < max)
			out[n] = (struct refdrv_resv){
				p[off + 4], vfx_get(p + off + 8, 8),
				vfx_get(p + off + 16, 8) };
		msi += p[off + 4] == RESV_T_MSI;
		n++;
		off += 4 + len; /* D31: next at length + 4 */
	}
	/* D33: everything after the last property is zero. */
	CHECK(vfx_all(p + off, psz - off, 0));
	CHECK(msi <= 1); /* D34 */
	for (unsigned int i = 0; i < n && i < max; i++)
		for (unsigned int j = i + 1; j < n && j < max; j++)
			CHECK(out[i].end < out[j].start ||
			      out[j].end < out[i].start);
	return n;
}

TEST(D31_probe_property_length)
{
	uint8_t req[LEN_PROBE], reply[512 + 4];
	struct refdrv_resv rv[8];
	unsigned int n;
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	REQUIRE(viommu_endpoint_add_resv(f.ep8, 0x10000, 0x1ffff,
					 VIOMMU_RESV_RESERVED) == 0);
	REQUIRE(viommu_endpoint_add_resv(f.ep8, 0x40000000, 0x4fffffff,
					 VIOMMU_RESV_RESERVED) == 0);
	vfx_req_probe(req, 8);
	CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, 516, reply), 516);
	CHECK_EQ(reply[512], S_OK);
	n = check_props(reply, 512, rv, 8);
	CHECK_EQ(n, 3);
	/* Properties at offsets 0, 24 and 48. */
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(vfx_get(reply + 24 * i, 2), 1);
		CHECK_EQ(vfx_get(reply + 24 * i + 2, 2), 20);
	}
	CHECK_EQ(vfx_get(reply + 72, 4), 0);
	/* refdrv parses the same thing. */
	{
		struct refdrv_resv d[8];
		unsigned int m = 0;
		uint8_t s = 0xff;

		CHECK_EQ(refdrv_probe(f.drv, 8, d, 8, &m, &s), 0);
		CHECK_EQ(s, S_OK);
		CHECK_EQ(m, 3);
		for (unsigned int i = 0; i < 3 && i < m; i++) {
			CHECK_U64(d[i].start, rv[i].start);
			CHECK_U64(d[i].end, rv[i].end);
			CHECK_EQ(d[i].subtype, rv[i].subtype);
		}
	}
	vfx_fini(&f);
}

TEST(D32_probe_small_buffer_inval)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		uint8_t req[LEN_PROBE], reply[512 + 4];
		uint32_t sizes[] = { 4, 8, 24 + 4, 508 + 4 };
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		vfx_req_probe(req, 8);
		for (unsigned int i = 0; i < 4; i++) {
			uint32_t w = sizes[i];

			CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, w, reply), w);
			CHECK_EQ(reply[w - 4], S_INVAL);
			CHECK(vfx_all(reply + w - 3, 3, 0));
			/* No property written: the area before the tail holds
			 * no property header (zero or untouched). */
			CHECK(vfx_all(reply, w - 4, 0) ||
			      vfx_all(reply, w - 4, REFDRV_POISON));
		}
		/* Then a correct one still works. */
		CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, 516, reply), 516);
		CHECK_EQ(reply[512], S_OK);
		vfx_fini(&f);
	}
}

TEST(D33_probe_tail_zero_filled)
{
	struct vfx_opts o = { 0 };
	uint8_t req[LEN_PROBE], reply[1024 + 4];
	struct refdrv_resv rv[4];
	struct vfx f;

	o.dev.probe_size = 1024;
	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(f.info.probe_size, 1024);
	vfx_req_probe(req, 9);
	CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, 1028, reply), 1028);
	CHECK_EQ(reply[1024], S_OK);
	CHECK_EQ(check_props(reply, 1024, rv, 4), 1);
	CHECK(vfx_all(reply + 24, 1000, 0));
	vfx_fini(&f);
}

TEST(D34_probe_one_msi_no_overlap)
{
	uint8_t req[LEN_PROBE], reply[512 + 4];
	struct refdrv_resv rv[8];
	unsigned int n;
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	/* The embedder's own MSI region replaces the x86 default. */
	REQUIRE(viommu_endpoint_add_resv(f.ep9, 0x8000000, 0x80fffff,
					 VIOMMU_RESV_MSI) == 0);
	REQUIRE(viommu_endpoint_add_resv(f.ep9, 0x100000, 0x1fffff,
					 VIOMMU_RESV_RESERVED) == 0);
	vfx_req_probe(req, 9);
	CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, 516, reply), 516);
	CHECK_EQ(reply[512], S_OK);
	n = check_props(reply, 512, rv, 8);
	CHECK_EQ(n, 2);
	for (unsigned int i = 0; i < n && i < 8; i++)
		if (rv[i].subtype == RESV_T_MSI)
			CHECK_U64(rv[i].start, 0x8000000);
	/* Probing twice does not add a second region. */
	CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, 516, reply), 516);
	CHECK_EQ(check_props(reply, 512, rv, 8), 2);
	/* An endpoint whose RESERVED region overlaps the x86 window keeps
	 * its region alone (no overlapping properties). */
	REQUIRE(viommu_endpoint_add_resv(f.ep0, 0xfe000000ull, 0xfeffffffull,
					 VIOMMU_RESV_RESERVED) == 0);
	vfx_req_probe(req, 0);
	CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, 516, reply), 516);
	CHECK_EQ(check_props(reply, 512, rv, 8), 1);
	vfx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* Faults and internal errors (D35-D37)                               */

TEST(D35_fault_report_fields)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		struct refdrv_fault ev[4];
		uint8_t b[8] = { 0 };
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		CHECK_EQ(viommu_dma_write(f.ep8, VIOMMU_NO_PASID, 0x123400, b,
					  8), -EFAULT);
		CHECK_EQ(viommu_dma_read(f.ep8, VIOMMU_NO_PASID, 0x5000, b,
					 4), -EFAULT);
		REQUIRE(vfx_events(&f, ev, 4) == 2);
		/* One report per buffer, each written in full. */
		for (int i = 0; i < 2; i++) {
			CHECK_EQ(ev[i].used_len, 24);
			CHECK_EQ(ev[i].reason, FAULT_R_MAPPING);
			CHECK(vfx_all(ev[i].rsvd, 3, 0));
			CHECK_EQ(ev[i].rsvd1, 0);
			CHECK_EQ(ev[i].endpoint, 8);
			CHECK_EQ(ev[i].flags & ~(FAULT_F_READ | FAULT_F_WRITE |
						 FAULT_F_EXEC |
						 FAULT_F_ADDRESS), 0);
		}
		CHECK_EQ(ev[0].flags, FAULT_F_WRITE | FAULT_F_ADDRESS);
		CHECK_U64(ev[0].address, 0x123400);
		CHECK_EQ(ev[1].flags, FAULT_F_READ | FAULT_F_ADDRESS);
		CHECK_U64(ev[1].address, 0x5000);
		CHECK_EQ(vfx_events(&f, ev, 4), 0);
		vfx_fini(&f);
	}
}

TEST(D35_fault_waits_for_buffer)
{
	struct vfx_opts o = { 0 };
	struct refdrv_fault ev[8];
	uint8_t b[4];
	struct vfx f;

	o.no_events = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(viommu_dma_read(f.ep9, VIOMMU_NO_PASID,
					 0x1000 * (i + 1), b, 4), -EFAULT);
	CHECK_EQ(vfx_events(&f, ev, 8), 0);
	CHECK_EQ(refdrv_events_post(f.drv, 1), 1);
	/* One buffer at a time: the driver re-posts and the device goes
	 * on with the next report, oldest first. */
	REQUIRE(vfx_events(&f, ev, 8) == 3);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(ev[i].endpoint, 9);
		CHECK_EQ(ev[i].reason, FAULT_R_DOMAIN);
		if (ev[i].flags & FAULT_F_ADDRESS)
			CHECK_U64(ev[i].address, 0x1000 * (i + 1));
	}
	CHECK_EQ(vfx_stats(&f).events_dropped, 0);
	CHECK_EQ(vfx_stats(&f).events_sent, 3);
	vfx_fini(&f);
}

TEST(D35_fault_small_buffer_unused)
{
	struct vfx_opts o = { 0 };
	struct refdrv_fault ev[2];
	struct drvring_seg seg;
	struct drvring *eq;
	uint64_t token = 0;
	uint32_t len = 99;
	uint8_t *small;
	uint8_t b[4];
	struct vfx f;

	o.no_events = true;
	REQUIRE(vfx_init(&f, &o) == 0);
	/* A 16-byte event buffer, posted by hand. */
	eq = refdrv_ring(f.drv, 1);
	small = f.info.scratch;
	memset(small, REFDRV_POISON, 16);
	seg = (struct drvring_seg){ f.info.scratch_gpa, 16, true };
	REQUIRE(drvring_add(eq, &seg, 1, 0x1234, false) == 0);
	if (drvring_kick_needed(eq))
		viommu_virtio_dev_notify(f.dev, 1);
	CHECK_EQ(viommu_dma_read(f.ep8, VIOMMU_NO_PASID, 0x6000, b, 4),
		 -EFAULT);
	CHECK_EQ(drvring_get_used(eq, &token, &len), 0);
	CHECK_U64(token, 0x1234);
	CHECK_EQ(len, 0);
	CHECK(vfx_all(small, 16, REFDRV_POISON));
	/* The report waited for a buffer that fits. */
	CHECK_EQ(refdrv_events_post(f.drv, 1), 1);
	REQUIRE(vfx_events(&f, ev, 2) == 1);
	CHECK_EQ(ev[0].used_len, 24);
	CHECK_U64(ev[0].address, 0x6000);
	CHECK_EQ(vfx_stats(&f).events_dropped, 0);
	vfx_fini(&f);
}

TEST(D36_broken_queue_needs_reset)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		struct refdrv_seg seg[2];
		uint32_t used = 0;
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		/* A buffer outside guest RAM. */
		seg[0] = (struct refdrv_seg){ 0x7000000000ull, 20, false };
		seg[1] = (struct refdrv_seg){ VFX_DRV_GPA + 0x300000, 4,
					      true };
		CHECK_EQ(refdrv_raw_segs(f.drv, seg, 2, 0, &used), -EIO);
		CHECK(viommu_virtio_dev_status(f.dev) &
		      VIOMMU_VIRTIO_S_NEEDS_RESET);
		CHECK(vfx_info(&f)->config_irqs >= 1);
		CHECK_EQ(vfx_stats(&f).needs_reset, 1);
		/* Everything else is refused until reset. */
		CHECK_EQ(vfx_attach(&f, 2, 9, 0), VFX_ERR);
		CHECK(vfx_dom(f.ep9) == NULL);
		/* A reset brings it back; attachments are gone. */
		CHECK_EQ(refdrv_reset(f.drv), 0);
		CHECK(!(viommu_virtio_dev_status(f.dev) &
			VIOMMU_VIRTIO_S_NEEDS_RESET));
		CHECK(vfx_dom(f.ep8) == NULL);
		CHECK_EQ(vfx_attach(&f, 2, 9, 0), S_OK);
		vfx_fini(&f);
	}
}

TEST(D36_broken_event_queue_needs_reset)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		struct drvring_seg seg;
		struct drvring *eq;
		uint8_t b[4];
		struct vfx f;

		o.no_events = true;
		REQUIRE(vfx_init(&f, &o) == 0);
		/* An event buffer outside guest RAM. */
		eq = refdrv_ring(f.drv, 1);
		seg = (struct drvring_seg){ 0x7000000000ull, 24, true };
		REQUIRE(drvring_add(eq, &seg, 1, 0x99, false) == 0);
		if (drvring_kick_needed(eq))
			viommu_virtio_dev_notify(f.dev, 1);
		CHECK_EQ(viommu_dma_read(f.ep8, VIOMMU_NO_PASID, 0x6000, b, 4),
			 -EFAULT);
		CHECK(viommu_virtio_dev_status(f.dev) &
		      VIOMMU_VIRTIO_S_NEEDS_RESET);
		CHECK_EQ(vfx_stats(&f).needs_reset, 1);
		CHECK_EQ(refdrv_reset(f.drv), 0);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		vfx_fini(&f);
	}
}

TEST(D36_segments_out_of_order_needs_reset)
{
	struct refdrv_seg seg[3];
	uint8_t *s;
	uint32_t used;
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	s = f.info.scratch;
	vfx_req_attach(s, 1, 8, 0);
	/* writable, then readable */
	seg[0] = (struct refdrv_seg){ f.info.scratch_gpa + 64, 4, true };
	seg[1] = (struct refdrv_seg){ f.info.scratch_gpa, LEN_ATTACH, false };
	CHECK_EQ(refdrv_raw_segs(f.drv, seg, 2, 0, &used), -EIO);
	CHECK(viommu_virtio_dev_status(f.dev) & VIOMMU_VIRTIO_S_NEEDS_RESET);
	CHECK(vfx_dom(f.ep8) == NULL);
	vfx_fini(&f);
}

TEST(D37_short_head_unwritten)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		uint8_t req[LEN_ATTACH], reply[8];
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		vfx_req_attach(req, 1, 8, 0);
		for (uint32_t n = 0; n < 4; n++) {
			CHECK_EQ(vfx_raw(&f, req, n, 4, reply), 0);
			CHECK(vfx_all(reply, 4, REFDRV_POISON));
		}
		CHECK(vfx_dom(f.ep8) == NULL);
		CHECK(!(viommu_virtio_dev_status(f.dev) &
			VIOMMU_VIRTIO_S_NEEDS_RESET));
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		vfx_fini(&f);
	}
}

TEST(D37_no_tail_unwritten)
{
	FOR_EACH_RING(r) {
		struct vfx_opts o = vfx_ring_opts(r);
		uint8_t req[LEN_PROBE], reply[8];
		struct vfx f;

		REQUIRE(vfx_init(&f, &o) == 0);
		vfx_req_attach(req, 1, 8, 0);
		/* No writable part at all. */
		CHECK_EQ(vfx_raw(&f, req, LEN_ATTACH, 0, NULL), 0);
		/* A writable part too small for the tail. */
		for (uint32_t w = 1; w < 4; w++) {
			CHECK_EQ(vfx_raw(&f, req, LEN_ATTACH, w, reply), 0);
			CHECK(vfx_all(reply, w, REFDRV_POISON));
		}
		vfx_req_probe(req, 8);
		CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, 3, reply), 0);
		CHECK(vfx_all(reply, 3, REFDRV_POISON));
		CHECK(vfx_dom(f.ep8) == NULL);
		CHECK_EQ(vfx_attach(&f, 1, 8, 0), S_OK);
		vfx_fini(&f);
	}
}

TEST(D37_long_writable_unwritten)
{
	uint8_t req[LEN_PROBE], reply[1024];
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	vfx_req_attach(req, 1, 8, 0);
	CHECK_EQ(vfx_raw(&f, req, LEN_ATTACH, 8, reply), 0);
	CHECK(vfx_all(reply, 8, REFDRV_POISON));
	CHECK(vfx_dom(f.ep8) == NULL);
	vfx_req_probe(req, 8);
	CHECK_EQ(vfx_raw(&f, req, LEN_PROBE, 520, reply), 0);
	CHECK(vfx_all(reply, 520, REFDRV_POISON));
	/* A longer readable part is fine (extra bytes ignored). */
	memset(req, 0, sizeof(req));
	vfx_req_attach(req, 1, 8, 0);
	CHECK_EQ(vfx_raw_status(&f, req, LEN_ATTACH + 16), S_OK);
	vfx_fini(&f);
}

TEST(D37_short_body_inval)
{
	uint8_t req[LEN_MAP], reply[4];
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	/* The tail can be found but the body is short: refused in full,
	 * nothing done. */
	vfx_req_attach(req, 1, 8, 0);
	CHECK_EQ(vfx_raw(&f, req, 12, 4, reply), 4);
	CHECK_EQ(reply[0], S_INVAL);
	CHECK(vfx_dom(f.ep8) == NULL);
	vfx_req_map(req, 1, 0, 0xfff, VFX_DATA, MAP_R);
	CHECK_EQ(vfx_raw(&f, req, LEN_MAP - 1, 4, reply), 4);
	CHECK_EQ(reply[0], S_INVAL);
	vfx_fini(&f);
}

TEST_MAIN()
