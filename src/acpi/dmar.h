/*
 * dmar.h - the ACPI DMAR (DMA Remapping) table that describes VT-d units
 * to an x86 guest, as it loads it with QEMU's `-acpitable file=dmar.bin`
 * (a full table, header included).
 *
 * Layout (little endian, offsets in bytes; Linux include/acpi/actbl1.h,
 * struct acpi_table_dmar and friends):
 *
 *   0   ACPI header (36): "DMAR", length, revision 1, checksum (all bytes
 *       of the table sum to 0), OEM ID (6), OEM table ID (8), OEM
 *       revision, creator ID (4), creator revision
 *   36  host address width (u8: HAW - 1), flags (u8: bit 0 INTR_REMAP,
 *       bit 1 X2APIC_OPT_OUT, bit 2 DMA_CTRL_PLATFORM_OPT_IN), reserved
 *       (10)
 *   48  remapping structures, each type (u16), length (u16):
 *       DRHD (type 0, 16 + scopes): flags (u8: bit 0 INCLUDE_PCI_ALL),
 *         size (u8: register set of 2^size 4 KiB pages), segment (u16),
 *         register base address (u64), device scopes
 *       RMRR (type 1, 24 + scopes): reserved (u16), segment (u16), base
 *         address (u64), limit address (u64, the last byte), scopes
 *   Device scope (6 + 2 per path element): type (u8: 1 PCI endpoint,
 *   2 PCI sub-hierarchy), length (u8), reserved (u16), enumeration ID
 *   (u8), start bus (u8), path (device u8, function u8).
 *
 * Linux requires an INCLUDE_PCI_ALL DRHD to come last in its segment; the
 * builder writes units in the order given and refuses a table that breaks
 * that rule.  Interrupt remapping is not modelled: the flags byte is the
 * caller's (normally 0, with the guest told intremap=off).
 */
#ifndef VIOMMU_DMAR_H
#define VIOMMU_DMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DMAR_HEADER_SIZE 48u
#define DMAR_DRHD_SIZE 16u
#define DMAR_RMRR_SIZE 24u
#define DMAR_SCOPE_SIZE 8u  /* one path element */
#define DMAR_MAX_SCOPES 64u /* per structure */
#define DMAR_MAX_UNITS 16u
#define DMAR_MAX_RMRRS 16u

#define DMAR_TYPE_DRHD 0
#define DMAR_TYPE_RMRR 1
#define DMAR_SCOPE_ENDPOINT 1
#define DMAR_SCOPE_BRIDGE 2
#define DMAR_FLAG_INTR_REMAP 0x1
#define DMAR_FLAG_X2APIC_OPT_OUT 0x2
#define DMAR_FLAG_DMA_CTRL_OPT_IN 0x4

/* struct dmar_scope - one PCI device (or bridge) by bus/device/function. */
struct dmar_scope {
	uint8_t type; /* DMAR_SCOPE_ENDPOINT or DMAR_SCOPE_BRIDGE */
	uint8_t bus, dev, fn;
};

/*
 * struct dmar_unit - one DRHD: its register frame at @reg_base (4 KiB
 * aligned), and either every device of @segment (@include_all) or the
 * devices of @scopes.
 */
struct dmar_unit {
	uint64_t reg_base;
	uint16_t segment;
	bool include_all;
	const struct dmar_scope *scopes;
	unsigned int nr_scopes;
};

/* struct dmar_rmrr - a reserved memory region [base, limit] of devices. */
struct dmar_rmrr {
	uint16_t segment;
	uint64_t base, limit;
	const struct dmar_scope *scopes;
	unsigned int nr_scopes;
};

/*
 * struct dmar_topology - what to describe.
 * @haw_bits: host address width, 32..64 (the unit's MGAW, normally).
 * @flags:    DMAR_FLAG_*.
 * @oem_id, @oem_table_id: NULL for "VIOMMU" and "VIOMMUVT".
 */
struct dmar_topology {
	unsigned int haw_bits;
	uint8_t flags;
	const struct dmar_unit *units;
	unsigned int nr_units;
	const struct dmar_rmrr *rmrrs;
	unsigned int nr_rmrrs;
	const char *oem_id;
	const char *oem_table_id;
	uint32_t oem_revision;
};

/*
 * dmar_build() - write the table for @t into @buf.
 * @cap: bytes at @buf (@buf may be NULL when @cap is 0).
 * @len: receives the table's length, also when -ENOSPC is returned.
 * Return: 0; -EINVAL (NULL @t or @len, no unit, more than
 * DMAR_MAX_UNITS/RMRRS or DMAR_MAX_SCOPES, NULL scopes with a count,
 * @haw_bits out of range, a register base not 4 KiB aligned, an
 * INCLUDE_PCI_ALL unit followed by another unit of its segment, an RMRR
 * with base > limit or not 4 KiB aligned (limit + 1 included), a scope of
 * unknown type or device > 31 or function > 7); -ENOSPC (@cap too small;
 * nothing written).
 */
int dmar_build(const struct dmar_topology *t, uint8_t *buf, size_t cap,
	       size_t *len);

#endif /* VIOMMU_DMAR_H */
