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

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_ACPI_H */
