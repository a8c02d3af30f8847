/*
 * iommu_table_wire.h - the wire format of virtio-iommu page-table handover
 * (docs/VIRTIO-IOMMU-TABLES.md, rules V1-V33): ATTACH_TABLE, INVALIDATE and
 * PAGE_RESP requests, the table PROBE properties and the 48-byte event
 * layout used once PAGE_REQ is negotiated.
 *
 * The layouts follow the 2021 RFC series (J-P. Brucker's "virtio-iommu:
 * page table support" uapi, v0.9-devel, for ATTACH_TABLE, INVALIDATE and
 * the properties; V. Gautam's "nested translation" RFC for PAGE_RESP and
 * the page request event); where they are silent the document says what
 * we chose.  Little-endian, packed, reserved bytes must be zero.  Private
 * to src/virtio (and tests that build requests by hand).
 */
#ifndef VIOMMU_IOMMU_TABLE_WIRE_H
#define VIOMMU_IOMMU_TABLE_WIRE_H

#include <stdint.h>

#include "virtio/iommu_wire.h"

/* Request types. */
#define VI_T_ATTACH_TABLE 6u
#define VI_T_INVALIDATE 7u
#define VI_T_PAGE_RESP 8u

/* ATTACH_TABLE formats. */
#define VI_TBL_FMT_PGT_ARM 1u /* Arm LPAE stage-1 page directory */
#define VI_TBL_FMT_PST_ARM 2u /* SMMUv3 context-descriptor (PASID) table */

/* ATTACH_TABLE flags (our extension in the RFC's reserved bytes, V9). */
#define VI_TBL_F_PASID 1u  /* bind to (endpoint, pasid) */
#define VI_TBL_F_UNBIND 2u /* with F_PASID: remove that binding */

/* TCR fields the device reads (TCR_EL1 layout, as the RFC). */
#define VI_TCR_T0SZ_MASK 0x3full
#define VI_TCR_EPD0 (1ull << 7)
#define VI_TCR_IRGN0 (3ull << 8)
#define VI_TCR_ORGN0 (3ull << 10)
#define VI_TCR_SH0 (3ull << 12)
#define VI_TCR_TG0_SHIFT 14
#define VI_TCR_TG0_MASK (3ull << 14)
#define VI_TCR_EPD1 (1ull << 23)
#define VI_TCR_IPS_SHIFT 32
#define VI_TCR_IPS_MASK (7ull << 32)
#define VI_TCR_HA (1ull << 39)
#define VI_TCR_HD (1ull << 40)
#define VI_TCR_HPD0 (1ull << 41)
#define VI_TCR_HPD1 (1ull << 42)
#define VI_TCR_HWU0 (0xfull << 43) /* HWU059..062: ignored */
#define VI_TCR_KNOWN                                                     \
	(VI_TCR_T0SZ_MASK | VI_TCR_EPD0 | VI_TCR_IRGN0 | VI_TCR_ORGN0 |   \
	 VI_TCR_SH0 | VI_TCR_TG0_MASK | VI_TCR_EPD1 | VI_TCR_IPS_MASK |   \
	 VI_TCR_HA | VI_TCR_HD | VI_TCR_HPD0 | VI_TCR_HPD1 | VI_TCR_HWU0)

struct vi_req_attach_pgt_arm {
	struct vi_head head;
	uint32_t domain;
	uint32_t endpoint;
	uint16_t format;
	uint16_t asid;
	uint64_t tcr;
	uint64_t ttbr0;
	uint64_t ttbr1;
	uint64_t mair;
	uint32_t pasid; /* V9: with VI_TBL_F_PASID */
	uint32_t flags;
	uint8_t rsvd[20];
} __attribute__((packed));

#define VI_PST_S1FMT_LINEAR 0u
#define VI_PST_DSS_TERM 0u
#define VI_PST_DSS_BYPASS 1u
#define VI_PST_DSS_SSID0 2u

struct vi_req_attach_pst_arm {
	struct vi_head head;
	uint32_t domain;
	uint32_t endpoint;
	uint16_t format;
	uint8_t s1fmt;
	uint8_t s1dss;
	uint64_t s1contextptr;
	uint32_t s1cdmax;
	uint8_t rsvd[48];
} __attribute__((packed));

/* INVALIDATE scopes (exactly one) and flags. */
#define VI_INV_S_DOMAIN 1u /* everything the domain caches */
#define VI_INV_S_PASID 2u  /* everything tagged with @pasid */
#define VI_INV_S_VA 4u     /* a range of @pasid / @id */
#define VI_INV_S_ASID 8u   /* everything tagged with ASID @id (ours) */

#define VI_INV_F_CONFIG 1u /* also the PASID-table entry of @pasid */
#define VI_INV_F_LEAF 2u   /* only leaf entries changed */
#define VI_INV_F_PASID 4u  /* @pasid is valid */
#define VI_INV_F_ID 8u     /* @id (the ASID) is valid */

struct vi_req_invalidate {
	struct vi_head head;
	uint16_t scope;
	uint16_t flags;
	uint32_t domain;
	uint32_t pasid;
	uint64_t id;
	uint64_t virt_start;
	uint64_t nr_pages;
	uint8_t granule; /* log2 of the page size */
	uint8_t rsvd[19];
} __attribute__((packed));

/* PAGE_RESP. */
#define VI_PRESP_F_PASID_VALID 1u
#define VI_PRESP_SUCCESS 0u
#define VI_PRESP_INVALID 1u
#define VI_PRESP_FAILURE 2u

struct vi_req_page_resp {
	struct vi_head head;
	uint32_t domain;
	uint32_t endpoint;
	uint32_t flags;
	uint32_t pasid;
	uint32_t grpid;
	uint16_t resp_code;
	uint8_t pasid_valid; /* the RFC's copy of the flag: must agree */
	uint8_t rsvd[9];
} __attribute__((packed));

/* PROBE properties. */
#define VI_PROBE_T_PAGE_SIZE_MASK 2u
#define VI_PROBE_T_INPUT_RANGE 3u
#define VI_PROBE_T_OUTPUT_SIZE 4u
#define VI_PROBE_T_PASID_SIZE 5u
#define VI_PROBE_T_PAGE_TABLE_FMT 6u
#define VI_PROBE_T_PASID_TABLE_FMT 7u

struct vi_prop_page_size_mask {
	struct vi_prop_head head;
	uint8_t rsvd[4];
	uint64_t mask;
} __attribute__((packed));

struct vi_prop_input_range {
	struct vi_prop_head head;
	uint8_t rsvd[4];
	uint64_t start;
	uint64_t end;
} __attribute__((packed));

struct vi_prop_bits { /* OUTPUT_SIZE, PASID_SIZE */
	struct vi_prop_head head;
	uint8_t bits;
	uint8_t rsvd[3];
} __attribute__((packed));

#define VI_PGTF_F_HW_ACCESS 1ull
#define VI_PGTF_F_HW_DIRTY 2ull
#define VI_PGTF_F_HPD 8ull

struct vi_prop_pgtf_arm {
	struct vi_prop_head head;
	uint16_t format;
	uint8_t asid_bits;
	uint8_t rsvd;
	uint64_t flags;
} __attribute__((packed));

struct vi_prop_pstf_arm {
	struct vi_prop_head head;
	uint16_t format;
	uint8_t rsvd[2];
	uint64_t flags;
} __attribute__((packed));

/* The 48-byte event (PAGE_REQ negotiated). */
#define VI_EVT_UNRECOV 1u
#define VI_EVT_PAGE_REQ 2u
#define VI_PRQ_F_PASID_VALID 1u
#define VI_PRQ_F_LAST_PAGE 2u
#define VI_UNREC_F_PASID_VALID 1u
#define VI_UNREC_F_ADDR_VALID 2u
#define VI_FAULT_F_PRIV 8u

struct vi_event_ext {
	uint8_t reason;
	uint8_t rsvd[3];
	uint16_t flt_type;
	uint8_t rsvd2[2];
	uint32_t flags;    /* VI_FAULT_F_READ/WRITE/EXEC/PRIV */
	uint32_t pr_flags; /* VI_PRQ_F_* or VI_UNREC_F_* */
	uint32_t endpoint;
	uint32_t pasid;
	uint32_t grpid;
	uint8_t rsvd3[4];
	uint64_t address;
	uint8_t rsvd4[8];
} __attribute__((packed));

_Static_assert(sizeof(struct vi_req_attach_pgt_arm) == 76, "pgt");
_Static_assert(sizeof(struct vi_req_attach_pst_arm) == 76, "pst");
_Static_assert(sizeof(struct vi_req_invalidate) == 60, "invalidate");
_Static_assert(sizeof(struct vi_req_page_resp) == 36, "page_resp");
_Static_assert(sizeof(struct vi_prop_page_size_mask) == 16, "psm");
_Static_assert(sizeof(struct vi_prop_input_range) == 24, "ir");
_Static_assert(sizeof(struct vi_prop_bits) == 8, "bits");
_Static_assert(sizeof(struct vi_prop_pgtf_arm) == 16, "pgtf");
_Static_assert(sizeof(struct vi_event_ext) == 48, "event");

#endif /* VIOMMU_IOMMU_TABLE_WIRE_H */
