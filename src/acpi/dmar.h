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
 * The public side (types, bounds, viommu_dmar_build()) is in
 * <viommu/acpi.h>; this header keeps the layout's sizes for the builder
 * and the test that reads the bytes back.
 */
#ifndef VIOMMU_DMAR_H
#define VIOMMU_DMAR_H

#include <viommu/acpi.h>

#define DMAR_HEADER_SIZE 48u
#define DMAR_DRHD_SIZE 16u
#define DMAR_RMRR_SIZE 24u
#define DMAR_SCOPE_SIZE 8u  /* one path element */
#define DMAR_TYPE_DRHD 0
#define DMAR_TYPE_RMRR 1

#endif /* VIOMMU_DMAR_H */
