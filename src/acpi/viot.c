/*
 * viot.c - build and check the ACPI VIOT table (layout in viot.h).
 *
 * The builder lays out the header, then the virtio-pci IOMMU node right
 * after it (offset 48, the node every range outputs to), then one PCI
 * range node per range, and finally fixes the checksum byte so the whole
 * table sums to zero.  Fields are written byte by byte in little endian,
 * so the host's layout and alignment never matter.
 *
 * The parser is the checker used by tests and the server: it walks the
 * table the way a guest does, but refuses anything a guest would have to
 * guess about (bad bounds, short nodes, ranges pointing elsewhere).
 */
#include "acpi/viot.h"

#include <viommu/acpi.h>

#include <errno.h>
#include <string.h>

/* Offsets inside the table and its nodes. */
#define H_SIG 0
#define H_LENGTH 4
#define H_REVISION 8
#define H_CHECKSUM 9
#define H_OEM_ID 10
#define H_OEM_TABLE_ID 16
#define H_OEM_REVISION 24
#define H_CREATOR_ID 28
#define H_CREATOR_REVISION 32
#define H_NODE_COUNT 36
#define H_NODE_OFFSET 38

#define N_TYPE 0
#define N_LENGTH 2
#define I_SEGMENT 4
#define I_BDF 6
#define R_ENDPOINT_START 4
#define R_SEGMENT_START 8
#define R_SEGMENT_END 10
#define R_BDF_START 12
#define R_BDF_END 14
#define R_OUTPUT_NODE 16

#define VIOT_REVISION 0
#define CREATOR_ID "VIOM"
#define CREATOR_REVISION 1

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

/* put_str() - @s cut or space-padded to exactly @n bytes. */
static void put_str(uint8_t *p, const char *s, size_t n)
{
	size_t l = strnlen(s, n);

	memcpy(p, s, l);
	memset(p + l, ' ', n - l);
}

/* checksum() - the byte sum of @len bytes. */
static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *p++);
	return sum;
}

/* range_ok() - a range is ordered and its endpoint IDs fit in 32 bits. */
static int range_ok(const struct viot_pci_range *r)
{
	uint64_t top;

	if (r->segment_start > r->segment_end || r->bdf_start > r->bdf_end)
		return 0;
	top = ((uint64_t)(r->segment_end - r->segment_start) << 16) +
	      (r->bdf_end - r->bdf_start) + r->endpoint_start;
	return top <= UINT32_MAX;
}

size_t viot_size(unsigned int nr_ranges)
{
	return VIOT_HEADER_SIZE + VIOT_IOMMU_NODE_SIZE +
	       (size_t)nr_ranges * VIOT_RANGE_NODE_SIZE;
}

/* topology_ok() - validate what viot_build() was given. */
static int topology_ok(const struct viot_topology *t)
{
	if (t->nr_ranges > VIOT_MAX_RANGES || (t->nr_ranges && !t->ranges))
		return 0;
	for (unsigned int i = 0; i < t->nr_ranges; i++)
		if (!range_ok(&t->ranges[i]))
			return 0;
	return 1;
}

/* put_header() - the ACPI header and VIOT fields, checksum still 0. */
static void put_header(const struct viot_topology *t, uint8_t *buf,
		       size_t size)
{
	memcpy(buf + H_SIG, "VIOT", 4);
	put32(buf + H_LENGTH, (uint32_t)size);
	buf[H_REVISION] = VIOT_REVISION;
	put_str(buf + H_OEM_ID, t->oem_id ? t->oem_id : "VIOMMU", 6);
	put_str(buf + H_OEM_TABLE_ID,
		t->oem_table_id ? t->oem_table_id : "VIOMMUVT", 8);
	put32(buf + H_OEM_REVISION, t->oem_revision);
	memcpy(buf + H_CREATOR_ID, CREATOR_ID, 4);
	put32(buf + H_CREATOR_REVISION, CREATOR_REVISION);
	put16(buf + H_NODE_COUNT, (uint16_t)(t->nr_ranges + 1));
	put16(buf + H_NODE_OFFSET, VIOT_HEADER_SIZE);
}

/* put_range() - one PCI range node at @p, outputting to the IOMMU node. */
static void put_range(uint8_t *p, const struct viot_pci_range *r)
{
	p[N_TYPE] = VIOT_NODE_PCI_RANGE;
	put16(p + N_LENGTH, VIOT_RANGE_NODE_SIZE);
	put32(p + R_ENDPOINT_START, r->endpoint_start);
	put16(p + R_SEGMENT_START, r->segment_start);
	put16(p + R_SEGMENT_END, r->segment_end);
	put16(p + R_BDF_START, r->bdf_start);
	put16(p + R_BDF_END, r->bdf_end);
	put16(p + R_OUTPUT_NODE, VIOT_HEADER_SIZE);
}

int viot_build(const struct viot_topology *t, uint8_t *buf, size_t cap,
	       size_t *len)
{
	uint8_t *p;
	size_t size;

	if (!t || !len || !topology_ok(t))
		return -EINVAL;
	size = viot_size(t->nr_ranges);
	*len = size;
	if (!buf || cap < size)
		return -ENOSPC;
	memset(buf, 0, size);
	put_header(t, buf, size);
	p = buf + VIOT_HEADER_SIZE;
	p[N_TYPE] = VIOT_NODE_VIRTIO_IOMMU_PCI;
	put16(p + N_LENGTH, VIOT_IOMMU_NODE_SIZE);
	put16(p + I_SEGMENT, t->iommu_segment);
	put16(p + I_BDF, t->iommu_bdf);
	p += VIOT_IOMMU_NODE_SIZE;
	for (unsigned int i = 0; i < t->nr_ranges; i++) {
		put_range(p, &t->ranges[i]);
		p += VIOT_RANGE_NODE_SIZE;
	}
	buf[H_CHECKSUM] = (uint8_t)(0x100 - checksum(buf, size));
	return 0;
}

/* header_ok() - signature, length and checksum; *@first: node offset. */
static int header_ok(const uint8_t *buf, size_t len, size_t *first)
{
	size_t off;

	if (len < VIOT_HEADER_SIZE || memcmp(buf + H_SIG, "VIOT", 4) ||
	    get32(buf + H_LENGTH) != len || checksum(buf, len) != 0)
		return 0;
	off = get16(buf + H_NODE_OFFSET);
	if (off < VIOT_HEADER_SIZE || off > len)
		return 0;
	*first = off;
	return 1;
}

/* min_node_size() - the size a node of @type needs (4 if unknown). */
static size_t min_node_size(uint8_t type)
{
	switch (type) {
	case VIOT_NODE_PCI_RANGE:
		return VIOT_RANGE_NODE_SIZE;
	case VIOT_NODE_MMIO:
		return 24;
	case VIOT_NODE_VIRTIO_IOMMU_PCI:
		return VIOT_IOMMU_NODE_SIZE;
	case VIOT_NODE_VIRTIO_IOMMU_MMIO:
		return 16;
	default:
		return 4;
	}
}

/* get_range() - decode a PCI range node; *@out_node: its output node. */
static void get_range(const uint8_t *p, struct viot_pci_range *r,
		      uint16_t *out_node)
{
	r->endpoint_start = get32(p + R_ENDPOINT_START);
	r->segment_start = get16(p + R_SEGMENT_START);
	r->segment_end = get16(p + R_SEGMENT_END);
	r->bdf_start = get16(p + R_BDF_START);
	r->bdf_end = get16(p + R_BDF_END);
	*out_node = get16(p + R_OUTPUT_NODE);
}

/*
 * walk_nodes() - visit every node from @off, filling @info; ranges'
 * output nodes are collected in @outs for the final check.
 */
static int walk_nodes(const uint8_t *buf, size_t len, size_t off,
		      struct viot_info *info, uint16_t *outs)
{
	for (unsigned int i = 0; i < info->nr_nodes; i++) {
		const uint8_t *p = buf + off;
		size_t nlen;

		if (len - off < 4)
			return -EINVAL;
		nlen = get16(p + N_LENGTH);
		if (nlen < min_node_size(p[N_TYPE]) || nlen > len - off)
			return -EINVAL;
		if (p[N_TYPE] == VIOT_NODE_VIRTIO_IOMMU_PCI) {
			if (info->iommu_offset || off > UINT16_MAX)
				return -EINVAL;
			info->iommu_offset = (uint16_t)off;
			info->iommu_segment = get16(p + I_SEGMENT);
			info->iommu_bdf = get16(p + I_BDF);
		} else if (p[N_TYPE] == VIOT_NODE_PCI_RANGE) {
			if (info->nr_ranges == VIOT_MAX_RANGES)
				return -E2BIG;
			get_range(p, &info->ranges[info->nr_ranges],
				  &outs[info->nr_ranges]);
			info->nr_ranges++;
		} else {
			info->nr_other++;
		}
		off += nlen;
	}
	return 0;
}

int viot_parse(const uint8_t *buf, size_t len, struct viot_info *out)
{
	uint16_t outs[VIOT_MAX_RANGES];
	struct viot_info info;
	size_t first;
	int ret;

	if (!buf || !header_ok(buf, len, &first))
		return -EINVAL;
	memset(&info, 0, sizeof(info));
	info.revision = buf[H_REVISION];
	info.nr_nodes = get16(buf + H_NODE_COUNT);
	ret = walk_nodes(buf, len, first, &info, outs);
	if (ret)
		return ret;
	if (!info.iommu_offset)
		return -EINVAL;
	for (unsigned int i = 0; i < info.nr_ranges; i++)
		if (outs[i] != info.iommu_offset ||
		    info.ranges[i].segment_start > info.ranges[i].segment_end ||
		    info.ranges[i].bdf_start > info.ranges[i].bdf_end)
			return -EINVAL;
	if (out)
		*out = info;
	return 0;
}

int viot_endpoint_id(const struct viot_info *info, uint16_t segment,
		     uint16_t bdf, uint32_t *epid)
{
	if (!info || !epid)
		return -EINVAL;
	for (unsigned int i = 0; i < info->nr_ranges && i < VIOT_MAX_RANGES;
	     i++) {
		const struct viot_pci_range *r = &info->ranges[i];

		if (segment < r->segment_start || segment > r->segment_end ||
		    bdf < r->bdf_start || bdf > r->bdf_end)
			continue;
		*epid = (uint32_t)((segment - r->segment_start) << 16) +
			(uint32_t)(bdf - r->bdf_start) + r->endpoint_start;
		return 0;
	}
	return -ENOENT;
}

/* ------------------------------------------------------------------ */
/* The public builder (<viommu/acpi.h>)                                 */

/* struct viommu_viot_config as the first release had it (size 0). */
#define VIOT_CONFIG_SIZE_V1 \
	(offsetof(struct viommu_viot_config, oem_revision) + sizeof(uint32_t))

int viommu_viot_build(const struct viommu_viot_config *cfg, void *buf,
		      size_t cap, size_t *len)
{
	struct viot_pci_range r[VIOT_MAX_RANGES];
	struct viommu_viot_config c = { 0 };
	struct viot_topology t;
	size_t n;

	if (!cfg || !len)
		return -EINVAL;
	/* size 0 is the first version; never read past what the caller has */
	n = cfg->size ? cfg->size : VIOT_CONFIG_SIZE_V1;
	memcpy(&c, cfg, n < sizeof(c) ? n : sizeof(c));
	if (c.nr_ranges > VIOT_MAX_RANGES || (c.nr_ranges && !c.ranges))
		return -EINVAL;
	for (unsigned int i = 0; i < c.nr_ranges; i++)
		r[i] = (struct viot_pci_range){
			.segment_start = c.ranges[i].segment_start,
			.segment_end = c.ranges[i].segment_end,
			.bdf_start = c.ranges[i].bdf_start,
			.bdf_end = c.ranges[i].bdf_end,
			.endpoint_start = c.ranges[i].endpoint_start,
		};
	t = (struct viot_topology){
		.iommu_segment = c.iommu_segment,
		.iommu_bdf = c.iommu_bdf,
		.ranges = r,
		.nr_ranges = c.nr_ranges,
		.oem_id = c.oem_id,
		.oem_table_id = c.oem_table_id,
		.oem_revision = c.oem_revision,
	};
	return viot_build(&t, buf, cap, len);
}
