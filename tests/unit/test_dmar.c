/*
 * test_dmar.c - the ACPI DMAR builder: our topology's table byte by byte
 * against Linux's layout (struct acpi_table_dmar, acpi_dmar_hardware_unit,
 * acpi_dmar_reserved_memory, acpi_dmar_device_scope), the checksum,
 * -ENOSPC with the length reported, and refused topologies.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

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

static const struct dmar_scope eps[2] = {
	{ DMAR_SCOPE_ENDPOINT, 0, 5, 0 },
	{ DMAR_SCOPE_ENDPOINT, 0, 6, 0 },
};

TEST(dmar_drhd_with_scopes_and_rmrr)
{
	struct dmar_unit u = { .reg_base = 0xfed90000, .scopes = eps,
			       .nr_scopes = 2 };
	struct dmar_rmrr r = { .base = 0x3f000000, .limit = 0x3f0fffff,
			       .scopes = eps, .nr_scopes = 1 };
	struct dmar_topology t = { .haw_bits = 48, .units = &u, .nr_units = 1,
				   .rmrrs = &r, .nr_rmrrs = 1 };
	uint8_t b[256];
	size_t len = 0;

	REQUIRE(dmar_build(&t, b, sizeof(b), &len) == 0);
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
	struct dmar_unit u[2] = {
		{ .reg_base = 0xfed90000, .include_all = true },
		{ .reg_base = 0xfed91000, .segment = 1, .include_all = true },
	};
	struct dmar_topology t = { .haw_bits = 39, .units = u, .nr_units = 2,
				   .oem_id = "ABCDEFGH", .oem_table_id = "X",
				   .flags = DMAR_FLAG_X2APIC_OPT_OUT };
	uint8_t b[128];
	size_t len = 0;

	CHECK_EQ(dmar_build(&t, b, 40, &len), -ENOSPC);
	CHECK_EQ(len, 80);
	memset(b, 0xee, sizeof(b));
	REQUIRE(dmar_build(&t, b, sizeof(b), &len) == 0);
	CHECK_EQ(b[52], 1);                         /* INCLUDE_PCI_ALL */
	CHECK_EQ(rd16(b + 64 + 6), 1);              /* second segment */
	CHECK(!memcmp(b + 10, "ABCDEF", 6));
	CHECK(!memcmp(b + 16, "X       ", 8));
	CHECK_EQ(b[36], 38);
	CHECK_EQ(b[37], 2);
	CHECK_EQ(sum(b, len), 0);
	CHECK_EQ(b[80], 0xee);                      /* nothing past it */
}

TEST(dmar_refused)
{
	struct dmar_scope bad = { 7, 0, 1, 0 };
	struct dmar_unit u[2] = {
		{ .reg_base = 0xfed90000, .include_all = true },
		{ .reg_base = 0xfed91000 },
	};
	struct dmar_rmrr r = { .base = 0x2000, .limit = 0x1fff };
	struct dmar_topology t = { .haw_bits = 48, .units = u, .nr_units = 2 };
	uint8_t b[256];
	size_t len;

	/* INCLUDE_PCI_ALL followed by a unit of the same segment */
	CHECK_EQ(dmar_build(&t, b, sizeof(b), &len), -EINVAL);
	t.nr_units = 1;
	t.haw_bits = 31;
	CHECK_EQ(dmar_build(&t, b, sizeof(b), &len), -EINVAL);
	t.haw_bits = 48;
	u[0].reg_base = 0xfed90800;
	CHECK_EQ(dmar_build(&t, b, sizeof(b), &len), -EINVAL);
	u[0].reg_base = 0xfed90000;
	u[0].scopes = &bad;
	u[0].nr_scopes = 1;
	CHECK_EQ(dmar_build(&t, b, sizeof(b), &len), -EINVAL);
	u[0].nr_scopes = 0;
	t.rmrrs = &r;
	t.nr_rmrrs = 1;
	CHECK_EQ(dmar_build(&t, b, sizeof(b), &len), -EINVAL);
	r.limit = 0x2fff;
	CHECK_EQ(dmar_build(&t, b, sizeof(b), &len), 0);
	t.nr_units = 0;
	CHECK_EQ(dmar_build(&t, b, sizeof(b), &len), -EINVAL);
	CHECK_EQ(dmar_build(NULL, b, sizeof(b), &len), -EINVAL);
}

TEST_MAIN()
