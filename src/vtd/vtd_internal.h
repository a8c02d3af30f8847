/*
 * vtd_internal.h - the VT-d model's private state and the architecture's
 * encodings (register offsets and fields, root/context/PASID entries,
 * invalidation descriptors, fault reasons), shared by its source files:
 *
 *   vtd.c     object life, endpoint routing, interrupts, public API glue
 *   regs.c    the register file: capabilities, global command/status
 *             handshakes, fault recording and event registers
 *   inval.c   invalidations: register-based (CCMD, IOTLB) and the
 *             invalidation queue with its descriptors
 *   tables.c  root, context, PASID directory and PASID entry fetch/decode
 *   xlate.c   the NESTED-domain translate op: tables, paging walk, faults
 *   iotlb.c   the model's IOTLB (4-way sets of page translations)
 *   (the paging formats are in src/pgtable/vtdpt.c)
 *
 * Locking.  Two model locks, as in the SMMUv3 model:
 *  - v->cmd_lock serialises MMIO writes, invalidation processing and
 *    endpoint routing; it is held while calling into the core (attach,
 *    detach, invalidate), so the order is cmd_lock -> core locks.
 *  - v->lock protects the register values and fault records.  It is a
 *    leaf: nothing holding it calls into the core.  The translate op
 *    (called by the core, maybe with the ctx lock held) takes only it and
 *    runs the whole walk under it.
 *  Interrupts are collected under the locks (a bit mask) and delivered
 *  after they are dropped.
 */
#ifndef VIOMMU_VTD_INTERNAL_H
#define VIOMMU_VTD_INTERNAL_H

#include <viommu/vtd.h>
#include <viommu/core.h>
#include "base/bits.h"
#include "base/trace.h"
#include "base/util.h"
#include "pgtable/vtdpt.h"

#include <errno.h>
#include <pthread.h>


/* ---- registers ------------------------------------------------------ */
#define R_VER 0x00
#define R_CAP 0x08
#define R_ECAP 0x10
#define R_GCMD 0x18
#define R_GSTS 0x1c
#define R_RTADDR 0x20
#define R_CCMD 0x28
#define R_FSTS 0x34
#define R_FECTL 0x38
#define R_FEDATA 0x3c
#define R_FEADDR 0x40
#define R_FEUADDR 0x44
#define R_AFLOG 0x58
#define R_PMEN 0x64
#define R_IQH 0x80
#define R_IQT 0x88
#define R_IQA 0x90
#define R_ICS 0x9c
#define R_IECTL 0xa0
#define R_IEDATA 0xa4
#define R_IEADDR 0xa8
#define R_IEUADDR 0xac
#define R_IQERCD 0xb0
#define R_IRTA 0xb8
#define R_IVA 0x200    /* ECAP.IRO = 0x20 */
#define R_IOTLB 0x208
#define R_FRCD 0x220   /* CAP.FRO = 0x22; 16 bytes per record */
#define IRO 0x20
#define FRO 0x22

#define VER_VALUE 0x10

/* CAP_REG */
#define CAP_ND_16 6ull            /* 16-bit domain IDs */
#define CAP_RWBF BIT(4)
#define CAP_CM BIT(7)
#define CAP_SAGAW_SHIFT 8
#define CAP_SAGAW_39 BIT(9)       /* 3-level */
#define CAP_SAGAW_48 BIT(10)      /* 4-level */
#define CAP_SAGAW_57 BIT(11)      /* 5-level */
#define CAP_MGAW_SHIFT 16
#define CAP_FRO_SHIFT 24
#define CAP_SLLPS_2M BIT(34)
#define CAP_SLLPS_1G BIT(35)
#define CAP_PSI BIT(39)
#define CAP_NFR_SHIFT 40
#define CAP_MAMV_SHIFT 48
#define CAP_FL1GP BIT(56)
#define CAP_FL5LP BIT(60)
#define MAMV 18u

/* ECAP_REG */
#define ECAP_C BIT(0)
#define ECAP_QI BIT(1)
#define ECAP_PT BIT(6)
#define ECAP_IRO_SHIFT 8
#define ECAP_NEST BIT(26)
#define ECAP_PSS_SHIFT 35
#define ECAP_PASID BIT(40)
#define ECAP_SMTS BIT(43)
#define ECAP_SLTS BIT(46)
#define ECAP_FLTS BIT(47)

/* GCMD / GSTS */
#define G_TE BIT(31)
#define G_SRTP BIT(30)
#define G_SFL BIT(29)
#define G_EAFL BIT(28)
#define G_WBF BIT(27)
#define G_QIE BIT(26)
#define G_IRE BIT(25)
#define G_SIRTP BIT(24)
#define G_CFI BIT(23)

/* RTADDR_REG */
#define RTADDR_TTM(v) FIELD(v, 11, 10)
#define TTM_LEGACY 0
#define TTM_SCALABLE 1
#define TTM_ABORT 3

/* CCMD_REG */
#define CCMD_ICC BIT(63)
#define CCMD_CIRG(v) FIELD(v, 62, 61)
#define CCMD_CAIG_SHIFT 59
#define CCMD_FM(v) FIELD(v, 33, 32)
#define CCMD_SID(v) FIELD(v, 31, 16)
#define CCMD_DID(v) FIELD(v, 15, 0)

/* IOTLB_REG and IVA_REG */
#define IOTLB_IVT BIT(63)
#define IOTLB_IIRG(v) FIELD(v, 61, 60)
#define IOTLB_IAIG_SHIFT 57
#define IOTLB_DID(v) FIELD(v, 47, 32)
#define IVA_AM(v) FIELD(v, 5, 0)
#define IVA_IH BIT(6)

/* FSTS / FECTL / IECTL / ICS */
#define FSTS_PFO BIT(0)
#define FSTS_PPF BIT(1)
#define FSTS_IQE BIT(4)
#define FSTS_ICE BIT(5)
#define FSTS_ITE BIT(6)
#define FSTS_FRI_SHIFT 8
#define FSTS_W1C (FSTS_PFO | FSTS_IQE | FSTS_ICE | FSTS_ITE)
#define XCTL_IM BIT(31)
#define XCTL_IP BIT(30)
#define ICS_IWC BIT(0)

/* FRCD high qword */
#define FRCD_F BIT(63)
#define FRCD_T1 BIT(62)           /* 1 = read */
#define FRCD_PV_SHIFT 40
#define FRCD_FR_SHIFT 32
#define FRCD_PP BIT(31)
#define FRCD_EXE BIT(30)

/* IQA_REG, IQH/IQT, IQERCD */
#define IQA_DW BIT(11)
#define IQA_QS(v) FIELD(v, 2, 0)
#define IQA_ADDR(v) ((v) & GENMASK(63, 12))
#define IQ_OFF_MASK GENMASK(18, 4)
#define IQEI_TAIL 1   /* tail beyond the queue, or not aligned to DW */
#define IQEI_FETCH 2  /* descriptor not readable guest RAM */
#define IQEI_TYPE 3   /* invalid or unsupported descriptor type */
#define IQEI_RSVD 4   /* reserved field set */
#define IQEI_WIDTH 5  /* scalable-mode descriptor in a 128-bit queue */

/* descriptor types */
#define D_CC 1
#define D_IOTLB 2
#define D_DEVTLB 3
#define D_IEC 4
#define D_WAIT 5
#define D_PIOTLB 6
#define D_PC 7
#define D_PDEVTLB 8
#define D_PGRP 9

/* fault reasons (legacy) */
#define FR_ROOT_P 0x1
#define FR_CTX_P 0x2
#define FR_CTX_INV 0x3
#define FR_MGAW 0x4
#define FR_WRITE 0x5
#define FR_READ 0x6
#define FR_PTE_FETCH 0x7
#define FR_ROOT_FETCH 0x8
#define FR_CTX_FETCH 0x9
#define FR_ROOT_RSVD 0xa
#define FR_CTX_RSVD 0xb
#define FR_PTE_RSVD 0xc
/* scalable mode */
#define FR_SM_RTADDR 0x30
#define FR_SM_PASID_TTM0 0x31
#define FR_SM_ROOT_FETCH 0x38
#define FR_SM_ROOT_P 0x39
#define FR_SM_ROOT_RSVD 0x3a
#define FR_SM_CTX_FETCH 0x40
#define FR_SM_CTX_P 0x41
#define FR_SM_CTX_RSVD 0x42
#define FR_SM_CTX_INV 0x43
#define FR_SM_PASIDE 0x45
#define FR_SM_PASID_MAX 0x46
#define FR_SM_PDIR_FETCH 0x50
#define FR_SM_PDIR_P 0x51
#define FR_SM_PDIR_RSVD 0x52
#define FR_SM_PTE_FETCH 0x58
#define FR_SM_PE_P 0x59
#define FR_SM_PE_RSVD 0x5a
#define FR_SM_PE_INV 0x5b
#define FR_SM_FL_FETCH 0x70
#define FR_SM_FL_P 0x71
#define FR_SM_FL_RSVD 0x72
#define FR_SM_SL_FETCH 0x78
#define FR_SM_SL_RSVD 0x7a
#define FR_SM_NONCANON 0x80
#define FR_SM_EXEC 0x82
#define FR_SM_MGAW 0x83
#define FR_SM_WRITE 0x85
#define FR_SM_READ 0x86

/* PASID entry PGTT */
#define PGTT_FL 1
#define PGTT_SL 2
#define PGTT_NESTED 3
#define PGTT_PT 4

/* ---- decoded translation setup -------------------------------------- */

/*
 * struct vtd_cfg - what a request of (source-id, PASID) translates with,
 * once root, context and PASID entries are decoded.
 * @pgtt:   PGTT_* (legacy: PGTT_SL or PGTT_PT).
 * @did:    domain ID.
 * @fpd:    fault processing disabled (context or PASID entry FPD).
 * @sl, @fl: paging configurations; @slptr, @flptr their roots.
 */
struct vtd_cfg {
	unsigned int pgtt;
	uint16_t did;
	bool fpd;
	struct vtdpt_cfg sl, fl;
	uint64_t slptr, flptr;
};

/* struct vtd_fault - one fault before recording. */
struct vtd_fault {
	uint8_t reason;
	bool fpd;          /* suppress recording */
	bool pp;           /* PASID present */
	bool read, exec;
	uint16_t sid;
	uint32_t pasid;
	uint64_t addr;
};

/*
 * struct vtd_tlbe - one cached translation: input page @page of
 * (@sid, @pasid) -> output page @out with @perm, tagged with @did.
 */
struct vtd_tlbe {
	bool valid;
	uint16_t sid, did;
	uint32_t pasid;
	uint32_t perm;
	uint64_t page;
	uint64_t out;
};

/* ---- endpoints -------------------------------------------------------- */

enum route {
	ROUTE_NONE = 0,
	ROUTE_IDENTITY,
	ROUTE_NESTED,
};

#define VTD_EP_PASIDS 8
#define VTD_EP_DIDS 4

/*
 * struct vtd_ep - a core endpoint registered with the model, its NESTED
 * domain, where its RID is attached, the PASIDs routed to the domain,
 * and the domain IDs its translations were tagged with since the last
 * context invalidation (what DID-selective invalidations match; more
 * than VTD_EP_DIDS make @did_any match every DID).
 */
struct vtd_ep {
	struct vtd_ep *next;
	struct viommu_vtd *v;
	struct viommu_endpoint *ep;
	uint16_t sid;
	struct viommu_domain *dom;
	enum route route;
	unsigned int npasids;
	uint32_t pasids[VTD_EP_PASIDS];
	/* under v->lock */
	unsigned int ndids;
	uint16_t dids[VTD_EP_DIDS];
	bool did_any;
};

/* ---- the model ------------------------------------------------------- */

#define IRQ_FAULT_BIT (1u << VIOMMU_VTD_IRQ_FAULT)
#define IRQ_INV_BIT (1u << VIOMMU_VTD_IRQ_INV)

struct viommu_vtd {
	struct viommu_ctx *ctx;
	struct viommu_mem *mem;
	struct viommu_log log;
	struct ratelimit rl;
	struct viommu_allocator alloc;
	void (*irq_fn)(void *opaque, enum viommu_vtd_irq irq);
	void *irq_opaque;

	uint32_t features;
	unsigned int aw;        /* MGAW = HAW bits */
	unsigned int nfr;
	uint64_t cap, ecap;

	pthread_mutex_t cmd_lock;
	pthread_mutex_t lock;

	/* registers (under lock) */
	uint32_t gsts;
	uint64_t rtaddr;        /* as written */
	uint64_t rta_active;    /* latched by SRTP */
	uint64_t ccmd, iva, iotlb;
	uint32_t fsts, fectl, fedata, feaddr, feuaddr;
	uint64_t iqh, iqt, iqa, iqercd;
	uint32_t ics, iectl, iedata, ieaddr, ieuaddr;
	uint64_t irta;
	uint64_t *frcd;         /* 2 qwords per record */
	bool qi_pending;        /* descriptors left after a slice (atomic) */

	/* IOTLB (under lock) */
	struct vtd_tlbe *tlb;
	unsigned int tlb_entries;
	uint64_t tlb_sets_mask;
	unsigned int tlb_rr;
	unsigned int tlb_live;  /* entries valid: a scan stops at the last */

	/* endpoints (under cmd_lock) */
	struct vtd_ep *eps;

	struct viommu_vtd_stats st;
	struct trace tr;        /* typed trace points (both locks to set) */
};

/* ---- cross-file functions -------------------------------------------- */

/* vtd.c */
void vtd_irq_deliver(struct viommu_vtd *v, uint32_t bits);
void vtd_route_all(struct viommu_vtd *v);
void vtd_route_pasid(struct viommu_vtd *v, uint32_t pasid);
void vtd_inval_eps(struct viommu_vtd *v, bool by_sid, uint16_t sid,
	       uint16_t fm_mask, bool by_did, uint16_t did, uint64_t lo,
	       uint64_t hi, bool forget_dids);
bool vtd_sm(const struct viommu_vtd *v);

/* regs.c */
int vtd_regs_read(struct viommu_vtd *v, uint64_t off, unsigned int size,
	      uint64_t *val);
int vtd_regs_write(struct viommu_vtd *v, uint64_t off, unsigned int size,
	       uint64_t val);
void vtd_regs_reset(struct viommu_vtd *v);
uint32_t vtd_fault_record(struct viommu_vtd *v, const struct vtd_fault *f);
uint32_t vtd_fsts_raise(struct viommu_vtd *v, uint32_t bit);

/* inval.c */
uint32_t vtd_ccmd_write(struct viommu_vtd *v, uint64_t val);
uint32_t vtd_iotlb_write(struct viommu_vtd *v, uint64_t val);
uint32_t vtd_qi_run(struct viommu_vtd *v);
void vtd_qi_enable(struct viommu_vtd *v, bool on);

/* tables.c */
int vtd_cfg_get(struct viommu_vtd *v, uint16_t sid, uint32_t pasid,
	    struct vtd_cfg *out, struct vtd_fault *f);

/* iotlb.c */
int vtd_tlb_alloc(struct viommu_vtd *v, unsigned int entries);
const struct vtd_tlbe *vtd_tlb_lookup(struct viommu_vtd *v, uint16_t sid,
				      uint32_t pasid, uint64_t va,
				      unsigned int access);
void vtd_tlb_insert(struct viommu_vtd *v, uint16_t sid, uint32_t pasid,
		    uint16_t did, uint64_t va, uint64_t out_page,
		    uint32_t perm);
void vtd_tlb_inval(struct viommu_vtd *v, bool by_sid, uint16_t sid,
		   uint16_t fm_mask, bool by_did, uint16_t did, uint64_t lo,
		   uint64_t hi);

/* xlate.c */
int vtd_xlate_op(void *opaque, uint32_t pasid, uint64_t iova,
	     unsigned int access, uint64_t *ipa, uint64_t *len,
	     uint32_t *perm);

#endif /* VIOMMU_VTD_INTERNAL_H */
