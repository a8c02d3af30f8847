/*
 * test_viot.c - the ACPI VIOT builder and checker: our topology's table
 * byte by byte against the Linux actbl3.h layout (struct acpi_table_viot,
 * acpi_viot_virtio_iommu_pci, acpi_viot_pci_range), the checksum, -ENOSPC,
 * several ranges, endpoint IDs as a guest computes them, and the checker
 * refusing damaged tables.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <viommu/acpi.h>

#include "acpi/viot.h"
#include "harness.h"

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* fix_sum() - recompute the checksum after a test edits a table. */
static void fix_sum(uint8_t *t, size_t n)
{
	t[9] = 0;
	t[9] = (uint8_t)(0x100 - sum(t, n));
}

/* The real-guest topology: IOMMU 00:04.0, endpoints 00:05.0-00:06.0. */
static const struct viot_pci_range our_range = {
	.segment_start = 0, .segment_end = 0,
	.bdf_start = 0x28, .bdf_end = 0x30, .endpoint_start = 0x28,
};

static struct viot_topology our_topology(void)
{
	struct viot_topology t = {
		.iommu_segment = 0, .iommu_bdf = VIOT_BDF(0, 4, 0),
		.ranges = &our_range, .nr_ranges = 1,
	};

	return t;
}

TEST(bdf_macro)
{
	CHECK_EQ(VIOT_BDF(0, 4, 0), 0x20);
	CHECK_EQ(VIOT_BDF(0, 5, 0), 0x28);
	CHECK_EQ(VIOT_BDF(0, 6, 0), 0x30);
	CHECK_EQ(VIOT_BDF(1, 31, 7), 0x1ff);
}

TEST(our_table_header)
{
	struct viot_topology t = our_topology();
	uint8_t b[256];
	size_t len = 0;

	memset(b, 0xa5, sizeof(b));
	REQUIRE(viot_build(&t, b, sizeof(b), &len) == 0);
	CHECK_EQ(len, 48 + 16 + 24);
	CHECK_EQ(viot_size(1), 88);
	CHECK(memcmp(b, "VIOT", 4) == 0);
	CHECK_EQ(rd32(b + 4), 88);        /* length */
	CHECK_EQ(b[8], 0);                /* revision */
	CHECK_EQ(sum(b, len), 0);         /* checksum makes the sum 0 */
	CHECK(memcmp(b + 10, "VIOMMU", 6) == 0);
	CHECK(memcmp(b + 16, "VIOMMUVT", 8) == 0);
	CHECK_EQ(rd32(b + 24), 0);        /* OEM revision */
	CHECK(memcmp(b + 28, "VIOM", 4) == 0); /* creator ID */
	CHECK_EQ(rd32(b + 32), 1);        /* creator revision */
	CHECK_EQ(rd16(b + 36), 2);        /* node count */
	CHECK_EQ(rd16(b + 38), 48);       /* node offset */
	for (int i = 40; i < 48; i++)
		CHECK_EQ(b[i], 0);        /* reserved */
	CHECK_EQ(b[88], 0xa5);            /* nothing written past the end */
}

TEST(our_table_nodes)
{
	struct viot_topology t = our_topology();
	uint8_t b[88];
	size_t len = 0;
	const uint8_t *n, *r;

	REQUIRE(viot_build(&t, b, sizeof(b), &len) == 0);
	/* acpi_viot_virtio_iommu_pci at 48 */
	n = b + 48;
	CHECK_EQ(n[0], 3);                /* type VIRTIO_IOMMU_PCI */
	CHECK_EQ(n[1], 0);
	CHECK_EQ(rd16(n + 2), 16);        /* length */
	CHECK_EQ(rd16(n + 4), 0);         /* segment */
	CHECK_EQ(rd16(n + 6), 0x20);      /* BDF 00:04.0 */
	for (int i = 8; i < 16; i++)
		CHECK_EQ(n[i], 0);
	/* acpi_viot_pci_range at 64 */
	r = b + 64;
	CHECK_EQ(r[0], 1);                /* type PCI_RANGE */
	CHECK_EQ(r[1], 0);
	CHECK_EQ(rd16(r + 2), 24);        /* length */
	CHECK_EQ(rd32(r + 4), 0x28);      /* endpoint start */
	CHECK_EQ(rd16(r + 8), 0);         /* segment start */
	CHECK_EQ(rd16(r + 10), 0);        /* segment end */
	CHECK_EQ(rd16(r + 12), 0x28);     /* BDF start 00:05.0 */
	CHECK_EQ(rd16(r + 14), 0x30);     /* BDF end 00:06.0 */
	CHECK_EQ(rd16(r + 16), 48);       /* output node: the IOMMU */
	for (int i = 18; i < 24; i++)
		CHECK_EQ(r[i], 0);
}

TEST(our_table_parses_and_maps_endpoints)
{
	struct viot_topology t = our_topology();
	struct viot_info info;
	uint8_t b[88];
	uint32_t id = 0;
	size_t len;

	REQUIRE(viot_build(&t, b, sizeof(b), &len) == 0);
	REQUIRE(viot_parse(b, len, &info) == 0);
	CHECK_EQ(info.revision, 0);
	CHECK_EQ(info.nr_nodes, 2);
	CHECK_EQ(info.iommu_offset, 48);
	CHECK_EQ(info.iommu_segment, 0);
	CHECK_EQ(info.iommu_bdf, 0x20);
	CHECK_EQ(info.nr_ranges, 1);
	CHECK_EQ(info.nr_other, 0);
	CHECK(memcmp(&info.ranges[0], &our_range, sizeof(our_range)) == 0);
	CHECK_EQ(viot_endpoint_id(&info, 0, VIOT_BDF(0, 5, 0), &id), 0);
	CHECK_EQ(id, 0x28);
	CHECK_EQ(viot_endpoint_id(&info, 0, VIOT_BDF(0, 6, 0), &id), 0);
	CHECK_EQ(id, 0x30);
	CHECK_EQ(viot_endpoint_id(&info, 0, VIOT_BDF(0, 4, 0), &id), -ENOENT);
	CHECK_EQ(viot_endpoint_id(&info, 0, VIOT_BDF(0, 6, 1), &id), -ENOENT);
	CHECK_EQ(viot_endpoint_id(&info, 1, VIOT_BDF(0, 5, 0), &id), -ENOENT);
	CHECK_EQ(viot_endpoint_id(NULL, 0, 0, &id), -EINVAL);
	CHECK_EQ(viot_endpoint_id(&info, 0, 0, NULL), -EINVAL);
}

TEST(enospc_and_size_query)
{
	struct viot_topology t = our_topology();
	uint8_t b[88];
	size_t len = 0;

	memset(b, 0x5a, sizeof(b));
	CHECK_EQ(viot_build(&t, b, 87, &len), -ENOSPC);
	CHECK_EQ(len, 88);
	for (size_t i = 0; i < sizeof(b); i++)
		CHECK_EQ(b[i], 0x5a);    /* nothing written */
	len = 0;
	CHECK_EQ(viot_build(&t, NULL, 0, &len), -ENOSPC);
	CHECK_EQ(len, 88);
	CHECK_EQ(viot_build(&t, b, 88, &len), 0);
}

TEST(bad_topologies)
{
	struct viot_pci_range r[VIOT_MAX_RANGES + 1];
	struct viot_topology t = our_topology();
	uint8_t b[4096];
	size_t len;

	memset(r, 0, sizeof(r));
	CHECK_EQ(viot_build(NULL, b, sizeof(b), &len), -EINVAL);
	CHECK_EQ(viot_build(&t, b, sizeof(b), NULL), -EINVAL);
	t.ranges = NULL;
	CHECK_EQ(viot_build(&t, b, sizeof(b), &len), -EINVAL);
	t.ranges = r;
	t.nr_ranges = VIOT_MAX_RANGES + 1;
	CHECK_EQ(viot_build(&t, b, sizeof(b), &len), -EINVAL);
	t.nr_ranges = 1;
	r[0].bdf_start = 0x30;
	r[0].bdf_end = 0x28;                      /* start > end */
	CHECK_EQ(viot_build(&t, b, sizeof(b), &len), -EINVAL);
	r[0] = (struct viot_pci_range){ .segment_start = 2, .segment_end = 1 };
	CHECK_EQ(viot_build(&t, b, sizeof(b), &len), -EINVAL);
	/* endpoint IDs past UINT32_MAX */
	r[0] = (struct viot_pci_range){ .bdf_end = 0xff,
					.endpoint_start = UINT32_MAX - 0xfe };
	CHECK_EQ(viot_build(&t, b, sizeof(b), &len), -EINVAL);
	r[0].endpoint_start = UINT32_MAX - 0xff;  /* last ID exactly 2^32-1 */
	CHECK_EQ(viot_build(&t, b, sizeof(b), &len), 0);
	/* zero ranges: a valid table with just the IOMMU */
	t.nr_ranges = 0;
	CHECK_EQ(viot_build(&t, b, sizeof(b), &len), 0);
	CHECK_EQ(len, 64);
	CHECK_EQ(viot_parse(b, len, NULL), 0);
}

TEST(several_ranges_and_oem_fields)
{
	const struct viot_pci_range r[3] = {
		{ 0, 0, VIOT_BDF(0, 5, 0), VIOT_BDF(0, 6, 0), 0x28 },
		{ 0, 0, VIOT_BDF(0, 8, 0), VIOT_BDF(0, 9, 7), 0x1000 },
		{ 1, 3, VIOT_BDF(2, 0, 0), VIOT_BDF(2, 31, 7), 0x20000 },
	};
	struct viot_topology t = {
		.iommu_segment = 0, .iommu_bdf = VIOT_BDF(0, 4, 0),
		.ranges = r, .nr_ranges = 3,
		.oem_id = "ABCDEFGHIJ", .oem_table_id = "XY",
		.oem_revision = 0x01020304,
	};
	struct viot_info info;
	uint8_t b[256];
	uint32_t id = 0;
	size_t len;

	REQUIRE(viot_build(&t, b, sizeof(b), &len) == 0);
	CHECK_EQ(len, 48 + 16 + 3 * 24);
	CHECK_EQ(rd32(b + 4), len);
	CHECK_EQ(sum(b, len), 0);
	CHECK_EQ(rd16(b + 36), 4);
	CHECK(memcmp(b + 10, "ABCDEF", 6) == 0);     /* cut to 6 */
	CHECK(memcmp(b + 16, "XY      ", 8) == 0);   /* space-padded */
	CHECK_EQ(rd32(b + 24), 0x01020304);
	for (int i = 0; i < 3; i++) {
		const uint8_t *n = b + 64 + 24 * i;

		CHECK_EQ(n[0], 1);
		CHECK_EQ(rd16(n + 2), 24);
		CHECK_EQ(rd32(n + 4), r[i].endpoint_start);
		CHECK_EQ(rd16(n + 8), r[i].segment_start);
		CHECK_EQ(rd16(n + 10), r[i].segment_end);
		CHECK_EQ(rd16(n + 12), r[i].bdf_start);
		CHECK_EQ(rd16(n + 14), r[i].bdf_end);
		CHECK_EQ(rd16(n + 16), 48);
	}
	REQUIRE(viot_parse(b, len, &info) == 0);
	CHECK_EQ(info.nr_ranges, 3);
	CHECK_EQ(viot_endpoint_id(&info, 0, VIOT_BDF(0, 9, 3), &id), 0);
	CHECK_EQ(id, 0x1000 + VIOT_BDF(0, 9, 3) - VIOT_BDF(0, 8, 0));
	/* segment 3, bus 2 dev 1 fn 0: (3 - 1) << 16 + 8 + 0x20000 */
	CHECK_EQ(viot_endpoint_id(&info, 3, VIOT_BDF(2, 1, 0), &id), 0);
	CHECK_U64(id, 0x20000 + (2u << 16) + 8);
	CHECK_EQ(viot_endpoint_id(&info, 0, VIOT_BDF(0, 7, 0), &id), -ENOENT);
}

TEST(max_ranges)
{
	struct viot_pci_range r[VIOT_MAX_RANGES];
	struct viot_topology t = our_topology();
	struct viot_info info;
	static uint8_t b[8192];
	size_t len;

	for (unsigned int i = 0; i < VIOT_MAX_RANGES; i++)
		r[i] = (struct viot_pci_range){ 0, 0, (uint16_t)(i * 8),
						(uint16_t)(i * 8 + 7),
						i * 8 };
	t.ranges = r;
	t.nr_ranges = VIOT_MAX_RANGES;
	REQUIRE(viot_build(&t, b, sizeof(b), &len) == 0);
	CHECK_EQ(len, viot_size(VIOT_MAX_RANGES));
	REQUIRE(viot_parse(b, len, &info) == 0);
	CHECK_EQ(info.nr_ranges, VIOT_MAX_RANGES);
	CHECK_EQ(info.ranges[VIOT_MAX_RANGES - 1].bdf_end,
		 (VIOT_MAX_RANGES - 1) * 8 + 7);
}

/* A fresh copy of our table in @b; returns its length. */
static size_t fresh(uint8_t *b)
{
	struct viot_topology t = our_topology();
	size_t len = 0;

	viot_build(&t, b, 256, &len);
	return len;
}

TEST(parse_refuses_damage)
{
	uint8_t b[256];
	size_t len;

	CHECK_EQ(viot_parse(NULL, 88, NULL), -EINVAL);
	len = fresh(b);
	CHECK_EQ(viot_parse(b, len, NULL), 0);
	CHECK_EQ(viot_parse(b, len - 1, NULL), -EINVAL); /* length field */
	CHECK_EQ(viot_parse(b, 40, NULL), -EINVAL);      /* short */
	b[20] ^= 1;                                      /* checksum */
	CHECK_EQ(viot_parse(b, len, NULL), -EINVAL);
	len = fresh(b);
	b[0] = 'X';
	fix_sum(b, len);
	CHECK_EQ(viot_parse(b, len, NULL), -EINVAL);     /* signature */
	len = fresh(b);
	wr16(b + 38, 40);                                /* offset < 48 */
	fix_sum(b, len);
	CHECK_EQ(viot_parse(b, len, NULL), -EINVAL);
	len = fresh(b);
	wr16(b + 38, 200);                               /* offset > len */
	fix_sum(b, len);
	CHECK_EQ(viot_parse(b, len, NULL), -EINVAL);
	len = fresh(b);
	wr16(b + 36, 3);                                 /* a node too many */
	fix_sum(b, len);
	CHECK_EQ(viot_parse(b, len, NULL), -EINVAL);
	len = fresh(b);
	wr16(b + 64 + 2, 20);                            /* short range */
	fix_sum(b, len);
	CHECK_EQ(viot_parse(b, len, NULL), -EINVAL);
	len = fresh(b);
	wr16(b + 64 + 2, 28);                            /* past the end */
	fix_sum(b, len);
	CHECK_EQ(viot_parse(b, len, NULL), -EINVAL);
	len = fresh(b);
	wr16(b + 48 + 2, 0);                             /* empty node */
	fix_sum(b, len);
	CHECK_EQ(viot_parse(b, len, NULL), -EINVAL);
	len = fresh(b);
	wr16(b + 64 + 16, 64);                           /* output elsewhere */
	fix_sum(b, len);
	CHECK_EQ(viot_parse(b, len, NULL), -EINVAL);
	len = fresh(b);
	b[48] = 9;                                       /* no IOMMU node */
	fix_sum(b, len);
	CHECK_EQ(viot_parse(b, len, NULL), -EINVAL);
	len = fresh(b);
	b[64] = 3;                                       /* two IOMMUs */
	fix_sum(b, len);
	CHECK_EQ(viot_parse(b, len, NULL), -EINVAL);
	len = fresh(b);
	wr16(b + 64 + 12, 0x31);                         /* BDF start > end */
	fix_sum(b, len);
	CHECK_EQ(viot_parse(b, len, NULL), -EINVAL);
}

TEST(parse_skips_unknown_nodes)
{
	uint8_t b[256];
	struct viot_info info;
	size_t len = fresh(b);

	/* append an unknown 8-byte node type 0x7f */
	memset(b + len, 0, 8);
	b[len] = 0x7f;
	wr16(b + len + 2, 8);
	len += 8;
	b[4] = (uint8_t)len;
	wr16(b + 36, 3);
	fix_sum(b, len);
	REQUIRE(viot_parse(b, len, &info) == 0);
	CHECK_EQ(info.nr_other, 1);
	CHECK_EQ(info.nr_ranges, 1);
}

/*
 * The public builder (<viommu/acpi.h>) writes the same bytes as the
 * internal one, takes the first version of its struct (size 0) and a
 * longer one, and refuses what the internal one refuses.
 */
TEST(public_builder)
{
	const struct viommu_viot_range pr[2] = {
		{ .bdf_start = 0x18, .bdf_end = 0x1f, .endpoint_start = 0x18 },
		{ .segment_start = 1, .segment_end = 1, .bdf_start = 0,
		  .bdf_end = 0xff, .endpoint_start = 0x10000 },
	};
	const struct viot_pci_range ir[2] = {
		{ .bdf_start = 0x18, .bdf_end = 0x1f, .endpoint_start = 0x18 },
		{ .segment_start = 1, .segment_end = 1, .bdf_start = 0,
		  .bdf_end = 0xff, .endpoint_start = 0x10000 },
	};
	struct viommu_viot_config c = {
		.size = sizeof(c), .iommu_bdf = 0x10, .ranges = pr,
		.nr_ranges = 2, .oem_revision = 3,
	};
	struct viot_topology t = {
		.iommu_bdf = 0x10, .ranges = ir, .nr_ranges = 2,
		.oem_revision = 3,
	};
	struct {
		struct viommu_viot_config c;
		uint64_t future;
	} big;
	struct viommu_viot_range bad = { .bdf_start = 2, .bdf_end = 1 };
	uint8_t a[256], b[256];
	size_t la = 0, lb = 0;

	CHECK_EQ(viommu_viot_build(&c, a, sizeof(a), &la), 0);
	CHECK_EQ(viot_build(&t, b, sizeof(b), &lb), 0);
	CHECK_EQ(la, lb);
	CHECK_EQ(la, viot_size(2));
	CHECK(!memcmp(a, b, la));
	CHECK_EQ(viot_parse(a, la, NULL), 0);
	c.size = 0; /* the first version */
	memset(a, 0, sizeof(a));
	CHECK_EQ(viommu_viot_build(&c, a, sizeof(a), &la), 0);
	CHECK(!memcmp(a, b, la));
	memset(&big, 0, sizeof(big));
	big.c = c;
	big.c.size = sizeof(big);
	big.future = 1;
	CHECK_EQ(viommu_viot_build(&big.c, a, sizeof(a), &la), 0);
	CHECK(!memcmp(a, b, la));
	/* too small: the length is still reported, nothing written */
	memset(a, 0x5a, sizeof(a));
	CHECK_EQ(viommu_viot_build(&c, a, la - 1, &la), -ENOSPC);
	CHECK_EQ(la, lb);
	CHECK_EQ(a[0], 0x5a);
	CHECK_EQ(viommu_viot_build(&c, NULL, 0, &la), -ENOSPC);
	CHECK_EQ(la, lb);
	CHECK_EQ(viommu_viot_build(NULL, a, sizeof(a), &la), -EINVAL);
	CHECK_EQ(viommu_viot_build(&c, a, sizeof(a), NULL), -EINVAL);
	c.nr_ranges = VIOMMU_VIOT_MAX_RANGES + 1;
	CHECK_EQ(viommu_viot_build(&c, a, sizeof(a), &la), -EINVAL);
	c.ranges = NULL;
	c.nr_ranges = 1;
	CHECK_EQ(viommu_viot_build(&c, a, sizeof(a), &la), -EINVAL);
	c.ranges = &bad;
	CHECK_EQ(viommu_viot_build(&c, a, sizeof(a), &la), -EINVAL);
	CHECK_EQ(VIOMMU_PCI_BDF(0, 3, 0), VIOT_BDF(0, 3, 0));
	CHECK_EQ(VIOMMU_PCI_BDF(0xff, 0x1f, 7), 0xffff);
}

TEST_MAIN()
