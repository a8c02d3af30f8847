/*
 * viot.h - the ACPI VIOT (Virtual I/O Translation) table for a topology of
 * one virtio-pci IOMMU and PCI endpoint ranges behind it, as a guest
 * loads it with QEMU's `-acpitable file=viot.bin` (a full table, header
 * included).
 *
 * Layout (little endian, offsets in bytes; Linux include/acpi/actbl3.h):
 *
 *   0   ACPI header (36): "VIOT", length, revision 0, checksum (all bytes
 *       of the table sum to 0), OEM ID (6), OEM table ID (8), OEM
 *       revision, creator ID (4), creator revision
 *   36  node count (u16), node offset (u16), reserved (8)
 *   48  virtio-pci IOMMU node (16): type 3, reserved, length 16,
 *       segment (u16), BDF (u16), reserved (8)
 *   64  one PCI range node (24) per range: type 1, reserved, length 24,
 *       endpoint start (u32), segment start/end (u16 each), BDF start/end
 *       (u16 each), output node (u16: offset of the IOMMU node), reserved
 *       (6)
 *
 * A guest gives a PCI function at (segment, BDF) inside a range the
 * endpoint ID ((segment - segment start) << 16) + BDF - BDF start +
 * endpoint start (drivers/acpi/viot.c): that is the ID our device sees.
 */
#ifndef VIOMMU_VIOT_H
#define VIOMMU_VIOT_H

#include <stddef.h>
#include <stdint.h>

#define VIOT_HEADER_SIZE 48u     /* ACPI header + VIOT fields */
#define VIOT_IOMMU_NODE_SIZE 16u /* virtio-pci IOMMU node */
#define VIOT_RANGE_NODE_SIZE 24u /* PCI range node */
#define VIOT_MAX_RANGES 64u      /* ranges one table may hold here */

#define VIOT_NODE_PCI_RANGE 1
#define VIOT_NODE_MMIO 2
#define VIOT_NODE_VIRTIO_IOMMU_PCI 3
#define VIOT_NODE_VIRTIO_IOMMU_MMIO 4

/* PCI BDF of bus @b, device @d, function @f. */
#define VIOT_BDF(b, d, f) \
	((uint16_t)(((b) & 0xff) << 8 | ((d) & 0x1f) << 3 | ((f) & 0x7)))

/*
 * struct viot_pci_range - PCI functions [bdf_start, bdf_end] of segments
 * [segment_start, segment_end], translated by the IOMMU with endpoint IDs
 * from @endpoint_start on.
 */
struct viot_pci_range {
	uint16_t segment_start;
	uint16_t segment_end;
	uint16_t bdf_start;
	uint16_t bdf_end;
	uint32_t endpoint_start;
};

/*
 * struct viot_topology - what to describe.
 * @iommu_segment, @iommu_bdf: where the virtio-pci IOMMU sits.
 * @ranges, @nr_ranges: endpoint ranges (0..VIOT_MAX_RANGES).
 * @oem_id, @oem_table_id: NULL for "VIOMMU" and "VIOMMUVT"; longer
 *             strings are cut to 6 and 8 bytes, shorter ones space-padded.
 * @oem_revision: OEM revision field.
 */
struct viot_topology {
	uint16_t iommu_segment;
	uint16_t iommu_bdf;
	const struct viot_pci_range *ranges;
	unsigned int nr_ranges;
	const char *oem_id;
	const char *oem_table_id;
	uint32_t oem_revision;
};

/*
 * struct viot_info - what viot_parse() found in a table.
 * @revision:  table revision.
 * @nr_nodes:  node count field.
 * @iommu_offset: offset of the (single) virtio-pci IOMMU node.
 * @nr_other:  nodes of other types (skipped, as Linux skips unknown ones).
 */
struct viot_info {
	uint8_t revision;
	uint16_t nr_nodes;
	uint16_t iommu_offset;
	uint16_t iommu_segment;
	uint16_t iommu_bdf;
	unsigned int nr_ranges;
	struct viot_pci_range ranges[VIOT_MAX_RANGES];
	unsigned int nr_other;
};

/*
 * viot_size() - bytes of the table for @nr_ranges ranges.
 */
size_t viot_size(unsigned int nr_ranges);

/*
 * viot_build() - write the table for @t into @buf.
 * @cap: bytes available at @buf (@buf may be NULL when @cap is 0).
 * @len: receives the table's length, also when -ENOSPC is returned.
 * Return: 0; -EINVAL (NULL @t or @len, NULL @ranges with @nr_ranges > 0,
 * more than VIOT_MAX_RANGES ranges, a range with start > end, a range
 * whose endpoint IDs would pass UINT32_MAX); -ENOSPC (@cap too small;
 * nothing written).
 */
int viot_build(const struct viot_topology *t, uint8_t *buf, size_t cap,
	       size_t *len);

/*
 * viot_parse() - validate a VIOT table and describe it.  Checks the
 * signature, the length field against @len, the checksum, that the node
 * offset and every node (header and body) lie inside the table, that node
 * lengths are at least their type's size, that there is exactly one
 * virtio-pci IOMMU node, and that every PCI range outputs to it.
 * @out: may be NULL (validation only).
 * Return: 0; -EINVAL (NULL @buf, or any check above fails); -E2BIG (more
 * than VIOT_MAX_RANGES ranges).
 */
int viot_parse(const uint8_t *buf, size_t len, struct viot_info *out);

/*
 * viot_endpoint_id() - the endpoint ID a guest gives the function at
 * (@segment, @bdf) under the ranges of @info.
 * Return: 0; -EINVAL (NULL args); -ENOENT (in no range).
 */
int viot_endpoint_id(const struct viot_info *info, uint16_t segment,
		     uint16_t bdf, uint32_t *epid);

#endif /* VIOMMU_VIOT_H */
