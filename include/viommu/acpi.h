/*
 * acpi.h - the ACPI tables a VMM gives its guest so the guest's IOMMU
 * driver finds our IOMMU and the endpoints behind it.
 *
 * VIOT (Virtual I/O Translation table, ACPI 6.4 §5.2.32; Linux
 * drivers/acpi/viot.c): one virtio-pci IOMMU node and PCI range nodes for
 * the functions it translates.  The result is a whole table, header and
 * checksum included, as QEMU loads it with `-acpitable file=viot.bin`.
 * A function at (segment, BDF) inside a range gets the endpoint ID
 * ((segment - segment_start) << 16) + BDF - bdf_start + endpoint_start:
 * create the core endpoints with exactly those IDs.
 *
 * DMAR (DMA Remapping Reporting table, Intel VT-d spec §8; Linux
 * include/acpi/actbl1.h): one DRHD per VT-d unit (its register frame and
 * the devices it translates: every device of a segment, or listed device
 * scopes), optional RMRRs (reserved memory the firmware's devices keep
 * using).  A whole table too, as `-acpitable file=dmar.bin` loads it.
 * Linux requires an INCLUDE_PCI_ALL unit to be the last of its segment;
 * the builder refuses a table that breaks that rule.  Interrupt remapping
 * is not modelled: the flags byte is the caller's (normally 0, with the
 * guest told intremap=off).
 *
 * Thread safety: pure functions of their arguments.
 */
#ifndef VIOMMU_ACPI_H
#define VIOMMU_ACPI_H

#include <viommu/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** PCI bus:device.function as a 16-bit BDF. */
#define VIOMMU_PCI_BDF(bus, dev, fn) \
	((uint16_t)((((bus) & 0xff) << 8) | (((dev) & 0x1f) << 3) | \
		    ((fn) & 0x7)))

/** Most PCI ranges one VIOT may hold here. */
#define VIOMMU_VIOT_MAX_RANGES 64u

/**
 * struct viommu_viot_range - functions [bdf_start, bdf_end] of segments
 * [segment_start, segment_end] translated by the IOMMU, with endpoint IDs
 * from @endpoint_start on.
 */
struct viommu_viot_range {
	uint16_t segment_start;
	uint16_t segment_end;
	uint16_t bdf_start;
	uint16_t bdf_end;
	uint32_t endpoint_start;
};

/**
 * struct viommu_viot_config - what the table describes.
 * @size:       sizeof(struct viommu_viot_config) as the caller knows it; 0
 *              means the first version (the fields below).  Fields past
 *              @size read as zero.
 * @iommu_segment, @iommu_bdf: where the virtio-iommu PCI function sits.
 * @ranges, @nr_ranges: endpoint ranges (0..VIOMMU_VIOT_MAX_RANGES).
 * @oem_id, @oem_table_id: NULL for "VIOMMU" and "VIOMMUVT"; longer strings
 *              are cut to 6 and 8 bytes, shorter ones space-padded.
 * @oem_revision: the header's OEM revision.
 */
struct viommu_viot_config {
	uint32_t size;
	uint16_t iommu_segment;
	uint16_t iommu_bdf;
	const struct viommu_viot_range *ranges;
	unsigned int nr_ranges;
	const char *oem_id;
	const char *oem_table_id;
	uint32_t oem_revision;
};

/**
 * viommu_viot_build() - write the VIOT for @cfg into @buf.
 * @cap: bytes available at @buf (@buf may be NULL when @cap is 0, to ask
 *       for the length).
 * @len: receives the table's length, also when -ENOSPC is returned.
 * Return: 0; -EINVAL (NULL @cfg or @len, NULL @ranges with @nr_ranges > 0,
 * more than VIOMMU_VIOT_MAX_RANGES ranges, a range with start > end, or
 * whose endpoint IDs would pass UINT32_MAX); -ENOSPC (@cap too small;
 * nothing written).
 */
VIOMMU_EXPORT int viommu_viot_build(const struct viommu_viot_config *cfg,
				    void *buf, size_t cap, size_t *len);

/** Bounds of one DMAR. */
#define VIOMMU_DMAR_MAX_UNITS 16u
#define VIOMMU_DMAR_MAX_RMRRS 16u
#define VIOMMU_DMAR_MAX_SCOPES 64u /* per unit or RMRR */

/** Device scope types and table flags of the DMAR. */
#define VIOMMU_DMAR_SCOPE_ENDPOINT 1
#define VIOMMU_DMAR_SCOPE_BRIDGE 2
#define VIOMMU_DMAR_FLAG_INTR_REMAP 0x1
#define VIOMMU_DMAR_FLAG_X2APIC_OPT_OUT 0x2
#define VIOMMU_DMAR_FLAG_DMA_CTRL_OPT_IN 0x4

/**
 * struct viommu_dmar_scope - one PCI device (VIOMMU_DMAR_SCOPE_ENDPOINT)
 * or bridge (VIOMMU_DMAR_SCOPE_BRIDGE) by bus, device and function.
 */
struct viommu_dmar_scope {
	uint8_t type;
	uint8_t bus, dev, fn;
};

/**
 * struct viommu_dmar_unit - one DRHD: the unit's register frame at
 * @reg_base (4 KiB aligned), translating every device of @segment
 * (@include_all) or the devices of @scopes.
 */
struct viommu_dmar_unit {
	uint64_t reg_base;
	uint16_t segment;
	bool include_all;
	const struct viommu_dmar_scope *scopes;
	unsigned int nr_scopes;
};

/**
 * struct viommu_dmar_rmrr - a reserved memory region [@base, @limit] (4 KiB
 * aligned, @limit the last byte) the devices of @scopes keep using.
 */
struct viommu_dmar_rmrr {
	uint16_t segment;
	uint64_t base, limit;
	const struct viommu_dmar_scope *scopes;
	unsigned int nr_scopes;
};

/**
 * struct viommu_dmar_config - what the table describes.
 * @size:     sizeof(struct viommu_dmar_config) as the caller knows it; 0
 *            means the first version (the fields below).  Fields past
 *            @size read as zero.
 * @haw_bits: host address width, 32..64 (the units' MGAW, normally).
 * @flags:    VIOMMU_DMAR_FLAG_*.
 * @units, @nr_units: the DRHDs, in table order (1..VIOMMU_DMAR_MAX_UNITS).
 * @rmrrs, @nr_rmrrs: reserved regions (0..VIOMMU_DMAR_MAX_RMRRS).
 * @oem_id, @oem_table_id: NULL for "VIOMMU" and "VIOMMUVT"; cut to 6 and
 *            8 bytes, shorter ones space-padded.
 * @oem_revision: the header's OEM revision.
 */
struct viommu_dmar_config {
	uint32_t size;
	unsigned int haw_bits;
	uint8_t flags;
	const struct viommu_dmar_unit *units;
	unsigned int nr_units;
	const struct viommu_dmar_rmrr *rmrrs;
	unsigned int nr_rmrrs;
	const char *oem_id;
	const char *oem_table_id;
	uint32_t oem_revision;
};

/**
 * viommu_dmar_build() - write the DMAR for @cfg into @buf.
 * @cap: bytes available at @buf (@buf may be NULL when @cap is 0, to ask
 *       for the length).
 * @len: receives the table's length, also when -ENOSPC is returned.
 * Return: 0; -EINVAL (NULL @cfg or @len, no unit, more than the
 * VIOMMU_DMAR_MAX_* units, RMRRs or scopes, NULL scopes with a count,
 * @haw_bits out of range, a register base not 4 KiB aligned, an
 * INCLUDE_PCI_ALL unit followed by another unit of its segment, an RMRR
 * with base > limit or not 4 KiB aligned (limit + 1 included), a scope of
 * unknown type, device > 31 or function > 7); -ENOSPC (@cap too small;
 * nothing written).
 */
VIOMMU_EXPORT int viommu_dmar_build(const struct viommu_dmar_config *cfg,
				    void *buf, size_t cap, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_ACPI_H */
