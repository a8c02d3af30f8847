/*
 * refdrv_internal.h - private to the reference SMMUv3 driver: the
 * architecture's encodings as the driver sees them (kept apart from the
 * model's own definitions on purpose, so that a misreading on either side
 * shows up as a failure), the driver's state, and the helpers its two
 * source files share:
 *
 *   refdrv.c         guest memory, MMIO, command and event queues, probe,
 *                    reset, create/destroy
 *   refdrv_tables.c  hitless STE/CD updates, stream and CD tables,
 *                    domains (map, unmap, TLBI) and attachment
 *
 * Every structure the SMMU reads is written with single 64-bit stores
 * through the chunk's host pointer, little-endian; page tables through
 * the LPAE builder, which uses the memory layer.
 */
#ifndef VIOMMU_SMMUV3_REFDRV_INTERNAL_H
#define VIOMMU_SMMUV3_REFDRV_INTERNAL_H

#include "refdrv/smmuv3.h"
#include "base/util.h"
#include "base/bits.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#define PG 4096ull

/* ---- registers ----------------------------------------------------------- */
#define IDR0 0x00
#define IDR1 0x04
#define IDR3 0x0c
#define IDR5 0x14
#define CR0 0x20
#define CR0ACK 0x24
#define CR1 0x28
#define CR2 0x2c
#define GBPA 0x44
#define IRQ_CTRL 0x50
#define IRQ_CTRLACK 0x54
#define GERROR 0x60
#define GERRORN 0x64
#define GERROR_IRQ_CFG0 0x68
#define STRTAB_BASE 0x80
#define STRTAB_BASE_CFG 0x88
#define CMDQ_BASE 0x90
#define CMDQ_PROD 0x98
#define CMDQ_CONS 0x9c
#define EVTQ_BASE 0xa0
#define EVTQ_IRQ_CFG0 0xb0
#define EVTQ_PROD 0x100a8
#define EVTQ_CONS 0x100ac

#define CR0_SMMUEN BIT(0)
#define CR0_EVTQEN BIT(2)
#define CR0_CMDQEN BIT(3)
#define CR1_ISH 3u
#define CR1_WB 1u
#define CR2_RECINVSID BIT(1)
#define CR2_PTM BIT(2)
#define GBPA_UPDATE BIT(31)
#define GBPA_ABORT BIT(20)
#define IRQ_EN_GERROR BIT(0)
#define IRQ_EN_EVTQ BIT(2)
#define GERR_CMDQ BIT(0)
#define GERR_ALL 0x1fdu
#define BASE_RA BIT(62) /* STRTAB_BASE.RA, Q_BASE.RA/WA */
#define Q_OVF BIT(31)
#define STRTAB_SPLIT 8u
#define CD_SPLIT 10u

/* ---- commands ------------------------------------------------------------ */
#define OP_CFGI_STE 0x03
#define OP_CFGI_ALL 0x04 /* CFGI_STE_RANGE, Range 31 */
#define OP_CFGI_CD 0x05
#define OP_TLBI_NH_ALL 0x10
#define OP_TLBI_NH_ASID 0x11
#define OP_TLBI_NH_VA 0x12
#define OP_TLBI_S12_VMALL 0x28
#define OP_TLBI_S2_IPA 0x2a
#define OP_TLBI_NSNH_ALL 0x30
#define OP_CMD_SYNC 0x46
#define SYNC_CS_IRQ 1ull
#define CMD_SID(s) ((uint64_t)(s) << 32)
#define CMD_VMID(v) ((uint64_t)(v) << 32)
#define CMD_ASID(a) ((uint64_t)(a) << 48)

/* ---- STE ----------------------------------------------------------------- */
#define STE0_V BIT(0)
#define STE0_CFG GENMASK(3, 1)
#define STE0_S1FMT GENMASK(5, 4)
#define STE0_S1CTXPTR GENMASK(51, 6)
#define STE0_S1CDMAX GENMASK(63, 59)
#define STE1_S1DSS GENMASK(1, 0)
#define STE1_S1C (GENMASK(7, 2) | BIT(27)) /* CIR COR CSH S1STALLD */
#define STE1_EATS GENMASK(29, 28)
#define STE1_STRW GENMASK(31, 30)
#define STE1_SHCFG GENMASK(45, 44)
#define STE1_ATTR GENMASK(51, 48) /* PRIVCFG INSTCFG */
#define STE2_VMID GENMASK(15, 0)
#define STE2_S2 GENMASK(58, 32)   /* VTCR S2AA64 ... S2R */
#define STE3_S2TTB GENMASK(51, 4)
#define CFG_ABORT 0u
#define CFG_BYPASS 4u
#define CFG_S1 5u
#define CFG_S2 6u
#define CFG_NESTED 7u
#define S1DSS_TERMINATE 0u
#define S1DSS_BYPASS 1u
#define S1DSS_SSID0 2u

/* ---- CD ------------------------------------------------------------------ */
#define CD0_EPD0 BIT(14)
#define CD0_EPD1 BIT(30)
#define CD0_V BIT(31)
#define CD_TTB GENMASK(51, 4)
#define MAIR_VALUE 0x04ff44ull /* idx 0 NC, 1 WB, 2 Device-nGnRE */

/* ---- state --------------------------------------------------------------- */

/* struct q - one queue as the driver tracks it (indices with wrap bit). */
struct q {
	uint64_t base;
	unsigned int log2;
	uint32_t prod, cons;
};

/* struct cdtab - a CD table: linear, or L1 + 64 KiB leaves. */
struct cdtab {
	uint64_t gpa;
	uint64_t *leaves;
	unsigned int nleaves;
};

struct pasid_ent {
	uint32_t ssid;
	struct smmudrv_domain *dom;
};

enum rid_mode {
	RID_ABORT = 0,
	RID_BYPASS,
	RID_DOMAIN,
};

/*
 * struct master - a StreamID the driver has touched: where its RID goes,
 * its two CD tables ([0] stage-1 family, [1] nested: S1ContextPtr an IPA)
 * and its attached SubstreamIDs.
 */
struct master {
	struct master *next;
	uint32_t sid;
	enum rid_mode rid;
	struct smmudrv_domain *rdom;
	struct cdtab cd[2];
	unsigned int npasids, cap;
	struct pasid_ent *pasids;
};

struct smmudrv_domain {
	struct smmudrv *d;
	struct smmudrv_domain *next;
	enum smmudrv_stage stage;
	struct lpae_cfg lp;
	uint64_t root;
	uint16_t asid, vmid;
	struct smmudrv_domain *parent;
	unsigned int attached, children;
	bool chunk_mapped;
	bool httu;
};

struct smmudrv {
	struct smmudrv_config cfg;
	struct smmudrv_mmio mmio;
	struct viommu_allocator alloc;
	uint8_t *ram;
	uint64_t npages;
	uint64_t *pagemap;          /* bit per chunk page: allocated */
	struct lpae_ops ops;
	struct smmudrv_info info;
	struct q cmdq, evtq;
	uint64_t strtab;
	uint64_t *l2;               /* 2-level: L2 table GPA per L1 entry */
	unsigned int nl1;
	uint64_t *asids, *vmids;    /* ID bitmaps */
	unsigned int asid_max, vmid_max;
	struct master *masters;
	struct smmudrv_domain *domains;
	bool cerr;                  /* command error since last report */
	bool mmio_err;
};

/* struct batch - commands gathered for one doorbell. */
struct batch {
	uint64_t c[SMMUDRV_BATCH][2];
	unsigned int n;
};

/* ---- shared helpers ---------------------------------------------------- */

/* PS / IPS / OAS encodings 0..5. */
extern const unsigned int drv_ps_bits[6];

/* refdrv.c */
int drv_gmem_alloc(struct smmudrv *d, uint64_t size, uint64_t align,
		   uint64_t *gpa);
void drv_st64(const struct smmudrv *d, uint64_t gpa, uint64_t v);
uint64_t drv_ld64(const struct smmudrv *d, uint64_t gpa);
int drv_cmd_sync1(struct smmudrv *d, uint64_t d0, uint64_t d1);
int drv_batch_add(struct smmudrv *d, struct batch *b, uint64_t d0,
		  uint64_t d1);
int drv_batch_submit(struct smmudrv *d, struct batch *b);
void drv_init_stes(struct smmudrv *d, uint64_t gpa, uint64_t n);

/* refdrv_tables.c */
void drv_free_master(struct smmudrv *d, struct master *m);

#endif /* VIOMMU_SMMUV3_REFDRV_INTERNAL_H */
