/*
 * test_dmar.c - the ACPI DMAR builder: our topology's table byte by byte
 * against Linux's layout (struct acpi_table_dmar, acpi_dmar_hardware_unit,
 * acpi_dmar_reserved_memory, acpi_dmar_device_scope), the checksum,
 * -ENOSPC with the length reported, and refused topologies.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "acpi/dmar.h"

#include "harness.h"

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static const struct viommu_dmar_scope eps[2] = {
	{ VIOMMU_DMAR_SCOPE_ENDPOINT, 0, 5, 0 },
	{ VIOMMU_DMAR_SCOPE_ENDPOINT, 0, 6, 0 },
};

TEST(dmar_drhd_with_scopes_and_rmrr)
{
	struct viommu_dmar_unit u = { .reg_base = 0xfed90000, .scopes = eps,
			       .nr_scopes = 2 };
	struct viommu_dmar_rmrr r = { .base = 0x3f000000, .limit = 0x3f0fffff,
			       .scopes = eps, .nr_scopes = 1 };
	struct viommu_dmar_config t = { .haw_bits = 48, .units = &u, .nr_units = 1,
				   .rmrrs = &r, .nr_rmrrs = 1 };
	uint8_t b[256];
	size_t len = 0;

	REQUIRE(viommu_dmar_build(&t, b, sizeof(b), &len) == 0);
	CHECK_EQ(len, 48 + 16 + 16 + 24 + 8);
	CHECK(!memcmp(b, "DMAR", 4));
	CHECK_EQ(rd32(b + 4), len);
	CHECK_EQ(b[8], 1);                          /* revision */
	CHECK_EQ(sum(b, len), 0);                   /* checksum */
	CHECK(!memcmp(b + 10, "VIOMMU", 6));
	CHECK(!memcmp(b + 16, "VIOMMUVT", 8));
	CHECK_EQ(b[36], 47);                        /* HAW - 1 */
	CHECK_EQ(b[37], 0);                         /* no INTR_REMAP */
	/* DRHD */
	CHECK_EQ(rd16(b + 48), 0);
	CHECK_EQ(rd16(b + 50), 32);
	CHECK_EQ(b[52], 0);                         /* not INCLUDE_PCI_ALL */
	CHECK_EQ(rd16(b + 54), 0);                  /* segment */
	CHECK_U64(rd64(b + 56), 0xfed90000);
	/* its first device scope: 00:05.0 */
	CHECK_EQ(b[64], 1);
	CHECK_EQ(b[65], 8);
	CHECK_EQ(b[69], 0);                         /* start bus */
	CHECK_EQ(b[70], 5);
	CHECK_EQ(b[71], 0);
	CHECK_EQ(b[72 + 6], 6);                     /* second: 00:06.0 */
	/* RMRR */
	CHECK_EQ(rd16(b + 80), 1);
	CHECK_EQ(rd16(b + 82), 32);
	CHECK_U64(rd64(b + 88), 0x3f000000);
	CHECK_U64(rd64(b + 96), 0x3f0fffff);
	CHECK_EQ(b[104], 1);
}

TEST(dmar_include_all_and_nospace)
{
	struct viommu_dmar_unit u[2] = {
		{ .reg_base = 0xfed90000, .include_all = true },
		{ .reg_base = 0xfed91000, .segment = 1, .include_all = true },
	};
	struct viommu_dmar_config t = {
		.haw_bits = 39, .units = u, .nr_units = 2,
		.oem_id = "ABCDEFGH", .oem_table_id = "X",
		.flags = VIOMMU_DMAR_FLAG_X2APIC_OPT_OUT };
	uint8_t b[128];
	size_t len = 0;

	CHECK_EQ(viommu_dmar_build(&t, b, 40, &len), -ENOSPC);
	CHECK_EQ(len, 80);
	memset(b, 0xee, sizeof(b));
	REQUIRE(viommu_dmar_build(&t, b, sizeof(b), &len) == 0);
	CHECK_EQ(b[52], 1);                         /* INCLUDE_PCI_ALL */
	CHECK_EQ(rd16(b + 64 + 6), 1);              /* second segment */
	CHECK(!memcmp(b + 10, "ABCDEF", 6));
	CHECK(!memcmp(b + 16, "X       ", 8));
	CHECK_EQ(b[36], 38);
	CHECK_EQ(b[37], 2);
	CHECK_EQ(sum(b, len), 0);
	CHECK_EQ(b[80], 0xee);                      /* nothing past it */
}

/*
 * The config can grow (issue 16 item 5): size 0 is the first version and
 * gives the same table as the full size; bytes past a smaller @size are
 * never read (the config sits at the end of a page, the next unmapped).
 */
TEST(dmar_config_size_versions)
{
	struct viommu_dmar_unit u = { .reg_base = 0xfed90000,
				      .include_all = true };
	struct viommu_dmar_config t = { .size = sizeof(t), .haw_bits = 48,
					.units = &u, .nr_units = 1 };
	uint8_t a[64], b[64];
	size_t la = 0, lb = 0;
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *m = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct viommu_dmar_config *edge;

	REQUIRE(viommu_dmar_build(&t, a, sizeof(a), &la) == 0);
	t.size = 0;
	REQUIRE(viommu_dmar_build(&t, b, sizeof(b), &lb) == 0);
	CHECK_EQ(la, lb);
	CHECK(!memcmp(a, b, la));
	REQUIRE(m != MAP_FAILED);
	REQUIRE(munmap(m + pg, (size_t)pg) == 0);
	/* an "old" caller whose struct ends at oem_table_id */
	edge = (void *)(m + pg - offsetof(struct viommu_dmar_config,
					  oem_revision));
	memcpy(edge, &t, offsetof(struct viommu_dmar_config, oem_revision));
	edge->size = offsetof(struct viommu_dmar_config, oem_revision);
	CHECK_EQ(viommu_dmar_build(edge, b, sizeof(b), &lb), 0);
	CHECK(!memcmp(a, b, la));
	munmap(m, (size_t)pg);
}

TEST(dmar_refused)
{
	struct viommu_dmar_scope bad = { 7, 0, 1, 0 };
	struct viommu_dmar_unit u[2] = {
		{ .reg_base = 0xfed90000, .include_all = true },
		{ .reg_base = 0xfed91000 },
	};
	struct viommu_dmar_rmrr r = { .base = 0x2000, .limit = 0x1fff };
	struct viommu_dmar_config t = { .haw_bits = 48, .units = u, .nr_units = 2 };
	uint8_t b[256];
	size_t len;

	/* INCLUDE_PCI_ALL followed by a unit of the same segment */
	CHECK_EQ(viommu_dmar_build(&t, b, sizeof(b), &len), -EINVAL);
	t.nr_units = 1;
	t.haw_bits = 31;
	CHECK_EQ(viommu_dmar_build(&t, b, sizeof(b), &len), -EINVAL);
	t.haw_bits = 48;
	u[0].reg_base = 0xfed90800;
	CHECK_EQ(viommu_dmar_build(&t, b, sizeof(b), &len), -EINVAL);
	u[0].reg_base = 0xfed90000;
	u[0].scopes = &bad;
	u[0].nr_scopes = 1;
	CHECK_EQ(viommu_dmar_build(&t, b, sizeof(b), &len), -EINVAL);
	u[0].nr_scopes = 0;
	t.rmrrs = &r;
	t.nr_rmrrs = 1;
	CHECK_EQ(viommu_dmar_build(&t, b, sizeof(b), &len), -EINVAL);
	r.limit = 0x2fff;
	CHECK_EQ(viommu_dmar_build(&t, b, sizeof(b), &len), 0);
	t.nr_units = 0;
	CHECK_EQ(viommu_dmar_build(&t, b, sizeof(b), &len), -EINVAL);
	CHECK_EQ(viommu_dmar_build(NULL, b, sizeof(b), &len), -EINVAL);
}

TEST_MAIN()
