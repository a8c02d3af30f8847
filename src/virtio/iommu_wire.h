/*
 * iommu_wire.h - the virtio-iommu wire format (VIRTIO 1.3 §5.13): request
 * layouts, probe properties, fault reports and the configuration space.
 *
 * Every multi-byte field is little-endian on the wire; the structs hold the
 * raw bytes and the device converts with le*toh()/htole*().  Requests are
 * declared with their 4-byte head so that the 64-bit fields sit where the
 * spec puts them; they are packed because a request (e.g. MAP, 36 bytes)
 * need not be a multiple of 8 long.  Private to src/virtio/iommu.c (and
 * tests that build requests by hand).
 */
#ifndef VIOMMU_IOMMU_WIRE_H
#define VIOMMU_IOMMU_WIRE_H

#include <stdint.h>

/* Request head and tail. */
struct vi_head {
	uint8_t type;
	uint8_t rsvd[3];
} __attribute__((packed));

struct vi_tail {
	uint8_t status;
	uint8_t rsvd[3];
} __attribute__((packed));

#define VI_ATTACH_F_BYPASS 1u

struct vi_req_attach {
	struct vi_head head;
	uint32_t domain;
	uint32_t endpoint;
	uint32_t flags;
	uint8_t rsvd[4];
} __attribute__((packed));

struct vi_req_detach {
	struct vi_head head;
	uint32_t domain;
	uint32_t endpoint;
	uint8_t rsvd[8];
} __attribute__((packed));

#define VI_MAP_F_READ 1u
#define VI_MAP_F_WRITE 2u
#define VI_MAP_F_MMIO 4u

struct vi_req_map {
	struct vi_head head;
	uint32_t domain;
	uint64_t virt_start;
	uint64_t virt_end;
	uint64_t phys_start;
	uint32_t flags;
} __attribute__((packed));

struct vi_req_unmap {
	struct vi_head head;
	uint32_t domain;
	uint64_t virt_start;
	uint64_t virt_end;
	uint8_t rsvd[4];
} __attribute__((packed));

struct vi_req_probe {
	struct vi_head head;
	uint32_t endpoint;
	uint8_t rsvd[64];
} __attribute__((packed));

/* Probe properties. */
#define VI_PROBE_T_NONE 0u
#define VI_PROBE_T_RESV_MEM 1u
#define VI_PROBE_TYPE_MASK 0x0fffu

#define VI_RESV_MEM_T_RESERVED 0u
#define VI_RESV_MEM_T_MSI 1u

struct vi_prop_head {
	uint16_t type;   /* type:12, reserved:4 */
	uint16_t length; /* bytes after this header */
} __attribute__((packed));

struct vi_prop_resv_mem {
	struct vi_prop_head head;
	uint8_t subtype;
	uint8_t rsvd[3];
	uint64_t start;
	uint64_t end;
} __attribute__((packed));

/* Fault reports (event queue). */
#define VI_FAULT_R_UNKNOWN 0u
#define VI_FAULT_R_DOMAIN 1u
#define VI_FAULT_R_MAPPING 2u

#define VI_FAULT_F_READ 1u
#define VI_FAULT_F_WRITE 2u
#define VI_FAULT_F_EXEC 4u /* Linux uapi; not in VIRTIO 1.3 itself */
#define VI_FAULT_F_ADDRESS 0x100u

struct vi_fault {
	uint8_t reason;
	uint8_t rsvd[3];
	uint32_t flags;
	uint32_t endpoint;
	uint32_t rsvd1;
	uint64_t address;
} __attribute__((packed));

/* Configuration space. */
struct vi_config {
	uint64_t page_size_mask;
	uint64_t input_start;
	uint64_t input_end;
	uint32_t domain_start;
	uint32_t domain_end;
	uint32_t probe_size;
	uint8_t bypass;
	uint8_t rsvd[3];
} __attribute__((packed));

#define VI_CFG_BYPASS_OFF 36u

_Static_assert(sizeof(struct vi_head) == 4, "head");
_Static_assert(sizeof(struct vi_tail) == 4, "tail");
_Static_assert(sizeof(struct vi_req_attach) == 20, "attach");
_Static_assert(sizeof(struct vi_req_detach) == 20, "detach");
_Static_assert(sizeof(struct vi_req_map) == 36, "map");
_Static_assert(sizeof(struct vi_req_unmap) == 28, "unmap");
_Static_assert(sizeof(struct vi_req_probe) == 72, "probe");
_Static_assert(sizeof(struct vi_prop_resv_mem) == 24, "resv_mem");
_Static_assert(sizeof(struct vi_fault) == 24, "fault");
_Static_assert(sizeof(struct vi_config) == 40, "config");
_Static_assert(__builtin_offsetof(struct vi_config, bypass) ==
		       VI_CFG_BYPASS_OFF, "bypass offset");

#endif /* VIOMMU_IOMMU_WIRE_H */
