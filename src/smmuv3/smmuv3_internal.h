/*
 * smmuv3_internal.h - the Arm SMMUv3 model's private state and the
 * architecture's encodings (register offsets and fields, STE, CD, command
 * and event formats), shared by the model's source files:
 *
 *   smmuv3.c  object life, endpoint routing, interrupts, public API glue
 *   regs.c    the MMIO register file (page 0 and page 1), queues
 *   cmds.c    command decode and execution
 *   config.c  stream table and CD fetch/decode, configuration cache
 *   xlate.c   the NESTED-domain translate op: walks, IOTLB, fault events
 *   pri.c     the PRI queue (Page Requests, CMD_PRI_RESP) and the stall
 *             model (stalled faults, CMD_RESUME, CMD_STALL_TERM)
 *
 * Locking.  Two model locks:
 *  - smmu->cmd_lock serialises MMIO writes, command processing and endpoint
 *    routing; it is held while calling into the core (attach/detach), so
 *    the order is cmd_lock -> core ctx lock.
 *  - smmu->lock protects the register values, the event queue, the
 *    configuration cache and the IOTLB.  It is a leaf: nothing that holds
 *    it calls into the core.  The translate op (called by the core, maybe
 *    with the ctx lock held) takes only this lock, and runs the whole walk
 *    under it for simplicity (walks are short: at most 4 + 4 x 4 + 4
 *    descriptor reads).
 *  Interrupts are collected under the locks and delivered after both are
 *  dropped (struct irq_batch).
 */
#ifndef VIOMMU_SMMUV3_INTERNAL_H
#define VIOMMU_SMMUV3_INTERNAL_H

#include <viommu/smmuv3.h>
#include <viommu/core.h>
#include "base/util.h"
#include "base/bits.h"
#include "base/trace.h"
#include "pgtable/lpae.h"

#include <errno.h>
#include <pthread.h>


/* ---- registers (offsets in the 128 KiB frame) ---------------------- */
#define R_IDR0 0x00
#define R_IDR1 0x04
#define R_IDR2 0x08
#define R_IDR3 0x0c
#define R_IDR4 0x10
#define R_IDR5 0x14
#define R_IIDR 0x18
#define R_AIDR 0x1c
#define R_CR0 0x20
#define R_CR0ACK 0x24
#define R_CR1 0x28
#define R_CR2 0x2c
#define R_STATUSR 0x40
#define R_GBPA 0x44
#define R_AGBPA 0x48
#define R_IRQ_CTRL 0x50
#define R_IRQ_CTRLACK 0x54
#define R_GERROR 0x60
#define R_GERRORN 0x64
#define R_GERROR_IRQ_CFG0 0x68
#define R_GERROR_IRQ_CFG1 0x70
#define R_GERROR_IRQ_CFG2 0x74
#define R_STRTAB_BASE 0x80
#define R_STRTAB_BASE_CFG 0x88
#define R_CMDQ_BASE 0x90
#define R_CMDQ_PROD 0x98
#define R_CMDQ_CONS 0x9c
#define R_EVTQ_BASE 0xa0
#define R_EVTQ_PROD 0xa8   /* page 0 alias of page 1 */
#define R_EVTQ_CONS 0xac
#define R_EVTQ_IRQ_CFG0 0xb0
#define R_EVTQ_IRQ_CFG1 0xb8
#define R_EVTQ_IRQ_CFG2 0xbc
#define R_PRIQ_BASE 0xc0
#define R_PRIQ_PROD 0xc8
#define R_PRIQ_CONS 0xcc
#define R_PRIQ_IRQ_CFG0 0xd0
#define R_PRIQ_IRQ_CFG1 0xd8
#define R_PRIQ_IRQ_CFG2 0xdc
#define R_IDREGS 0xfd0     /* PIDR4..CIDR3, 0xfd0..0xffc */
#define PAGE1 0x10000

#define CR0_SMMUEN BIT(0)
#define CR0_PRIQEN BIT(1)
#define CR0_EVTQEN BIT(2)
#define CR0_CMDQEN BIT(3)
#define CR0_ATSCHK BIT(4)
#define CR0_MASK 0x1f
#define CR2_E2H BIT(0)
#define CR2_RECINVSID BIT(1)
#define CR2_PTM BIT(2)
#define GBPA_UPDATE BIT(31)
#define GBPA_ABORT BIT(20)
#define GBPA_MASK 0x001fffffull /* fields below UPDATE */
#define IRQ_GERROR BIT(0)
#define IRQ_PRIQ BIT(1)
#define IRQ_EVTQ BIT(2)
#define GERR_CMDQ BIT(0)
#define GERR_EVTQ_ABT BIT(2)
#define GERR_PRIQ_ABT BIT(3)
#define GERR_MSI_CMDQ_ABT BIT(4)
#define GERR_MSI_EVTQ_ABT BIT(5)
#define GERR_MSI_PRIQ_ABT BIT(6)
#define GERR_MSI_GERROR_ABT BIT(7)
#define GERR_MASK 0x1fd
#define MSI_ADDR_MASK GENMASK(51, 2)
#define Q_BASE_ADDR_MASK GENMASK(51, 5)
#define Q_BASE_MASK (BIT(62) | GENMASK(51, 0))
#define Q_OVF BIT(31)
#define CMDQ_CONS_ERR_SHIFT 24
#define STRTAB_ADDR_MASK GENMASK(51, 6)
#define STRTAB_BASE_MASK (BIT(62) | GENMASK(51, 6))
#define STRTAB_CFG_MASK 0x307ff

/* CMDQ_CONS.ERR codes */
#define CERROR_NONE 0
#define CERROR_ILL 1
#define CERROR_ABT 2

/* ---- command opcodes ------------------------------------------------ */
#define OP_PREFETCH_CONFIG 0x01
#define OP_PREFETCH_ADDR 0x02
#define OP_CFGI_STE 0x03
#define OP_CFGI_STE_RANGE 0x04 /* CFGI_ALL is Range 31 */
#define OP_CFGI_CD 0x05
#define OP_CFGI_CD_ALL 0x06
#define OP_TLBI_NH_ALL 0x10
#define OP_TLBI_NH_ASID 0x11
#define OP_TLBI_NH_VA 0x12
#define OP_TLBI_NH_VAA 0x13
#define OP_TLBI_S12_VMALL 0x28
#define OP_TLBI_S2_IPA 0x2a
#define OP_TLBI_NSNH_ALL 0x30
#define OP_PRI_RESP 0x41
#define OP_RESUME 0x44
#define OP_STALL_TERM 0x45
#define OP_CMD_SYNC 0x46

/* ---- event types ------------------------------------------------------ */
#define EVT_C_BAD_STREAMID 0x02
#define EVT_F_STE_FETCH 0x03
#define EVT_C_BAD_STE 0x04
#define EVT_F_STREAM_DISABLED 0x06
#define EVT_C_BAD_SUBSTREAMID 0x08
#define EVT_F_CD_FETCH 0x09
#define EVT_C_BAD_CD 0x0a
#define EVT_F_WALK_EABT 0x0b
#define EVT_F_TRANSLATION 0x10
#define EVT_F_ADDR_SIZE 0x11
#define EVT_F_ACCESS 0x12
#define EVT_F_PERMISSION 0x13

/* Event Class field */
#define CLASS_CD 0
#define CLASS_TTD 1
#define CLASS_IN 2

/* STE Config values */
#define STE_CFG_ABORT 0
#define STE_CFG_BYPASS 4
#define STE_CFG_S1 5
#define STE_CFG_S2 6
#define STE_CFG_NESTED 7

#define STE_SIZE 64
#define CD_SIZE 64
#define CMD_SIZE 16
#define EVT_SIZE 32
#define PRI_SIZE 16

/* ---- decoded configuration ------------------------------------------ */

/* struct s2cfg - the stage-2 half of an STE. */
struct s2cfg {
	struct lpae_cfg lp;
	uint64_t ttb;
	uint16_t vmid;
	bool affd, ptw, stall, record;
};

/* struct ste - a decoded, validated STE. */
struct ste {
	unsigned int config;   /* STE_CFG_* */
	bool s1, s2;
	uint64_t s1ctxptr;
	unsigned int s1fmt, s1cdmax, s1dss;
	unsigned int privcfg, instcfg;
	uint16_t vmid;         /* S2VMID, tags stage-1 entries too */
	bool s1stalld;         /* STE.S1STALLD */
	struct s2cfg s2c;
};

/* struct cd_half - one of TTB0/TTB1 of a CD. */
struct cd_half {
	bool enabled;          /* !EPDx */
	struct lpae_cfg lp;
	uint64_t ttb;
};

/* struct cd - a decoded, validated context descriptor. */
struct cd {
	struct cd_half t[2];
	uint16_t asid;
	bool affd, record, tbi0, tbi1;
	bool stall;            /* CD.S */
};

/*
 * struct evt - one event record before encoding.  @fetch holds FetchAddr
 * for the *_FETCH and F_WALK_EABT events; @ipa the IPA of stage-2 faults.
 */
struct evt {
	uint8_t type;
	bool ssv, s2, rnw, ind, pnu;
	bool stall;            /* Stall field: @stag names the transaction */
	uint16_t stag;
	uint8_t cls;
	uint32_t sid, ssid;
	uint64_t addr, ipa, fetch;
};

/* ---- caches ----------------------------------------------------------- */

/*
 * Configuration cache slots are valid while @valid and @gen equals
 * smmu->cfg_gen: invalidating every StreamID (CFGI_ALL, CFGI_STE_RANGE
 * with Range 31, reset) bumps cfg_gen instead of visiting every slot.
 */
struct ste_slot {
	bool valid;
	uint64_t gen;
	uint32_t sid;
	struct ste ste;
};

struct cd_slot {
	bool valid;
	uint64_t gen;
	uint32_t sid, ssid;
	struct cd cd;
};

/* Which stages an IOTLB entry spans. */
#define TLB_S1 1u
#define TLB_S2 2u

/*
 * struct tlb_entry - one translation, [lo, hi] -> out.  Tagged by VMID
 * (entries with a stage-1 part: the STE's S2VMID; stage-2 only: VMID),
 * ASID (stage-1 part, unless @global) and @stages.
 */
struct tlb_entry {
	bool valid, global;
	bool priv;      /* filled by a privileged access: perms differ */
	uint8_t stages;
	uint16_t vmid, asid;
	uint64_t lo, hi, out;
	uint32_t perm;
};

/* ---- queues ----------------------------------------------------------- */

/* struct queue - a queue's BASE/PROD/CONS registers. */
struct queue {
	uint64_t base;
	uint32_t prod, cons;
	unsigned int max_log2;  /* IDR1 limit */
};

/* struct irq_cfg - the *_IRQ_CFG0/1/2 registers of one interrupt. */
struct irq_cfg {
	uint64_t addr;
	uint32_t data, attr;
};

/*
 * struct irq_batch - interrupts raised under the locks, delivered after
 * they are dropped: wired lines (callback bits) and MSI writes.
 */
struct irq_batch {
	uint32_t wired;         /* bit per enum viommu_smmuv3_irq */
	unsigned int nmsi;
	struct { uint64_t addr; uint32_t data; uint64_t gerr; } msi[4];
};

/* ---- PRI and stall bookkeeping (pri.c) ------------------------------- */

/*
 * struct pri_grp - an outstanding Page Request Group of StreamID @sid:
 * requests seen (@last once the last one came), then the response.
 */
struct pri_grp {
	bool used, last, answered;
	uint8_t resp;
	uint16_t grpidx;
	uint32_t sid;
};

/* struct stall_slot - a stalled transaction and how it completed. */
struct stall_slot {
	bool used;
	uint8_t state;          /* enum viommu_smmuv3_stall_state */
	uint16_t stag;
	uint32_t sid;
	uint64_t iova;
	uint64_t seq;           /* age, for dropping old completed entries */
};

/* ---- endpoints ---------------------------------------------------------- */

enum route {
	ROUTE_NONE = 0,
	ROUTE_BLOCKED,
	ROUTE_IDENTITY,
	ROUTE_NESTED,
};

#define SMMU_EP_PASIDS 64

/*
 * struct smmu_ep - a core endpoint registered with the model (its ID is the
 * StreamID), the NESTED domain that runs this model's translation for it,
 * where its RID is attached, and the PASIDs (SubstreamIDs) routed to the
 * NESTED domain so far.
 */
struct smmu_ep {
	struct smmu_ep *next;
	struct viommu_smmuv3 *smmu;
	struct viommu_endpoint *ep;
	uint32_t sid;
	struct viommu_domain *dom;
	enum route route;
	unsigned int npasids;
	uint32_t pasids[SMMU_EP_PASIDS];
};

/* ---- the model ------------------------------------------------------------ */

struct viommu_smmuv3 {
	struct viommu_ctx *ctx;
	struct viommu_mem *mem;
	struct viommu_log log;
	struct ratelimit rl; /* guest-triggered log lines */
	struct trace tr;     /* typed trace points (set under lock) */
	struct viommu_allocator alloc;
	void (*irq_fn)(void *opaque, enum viommu_smmuv3_irq irq);
	void *irq_opaque;

	/* capabilities */
	uint32_t features;
	unsigned int sid_bits, ssid_bits, oas, oas_enc;
	uint32_t idr[6];

	pthread_mutex_t cmd_lock;
	pthread_mutex_t lock;

	/* registers (under lock) */
	uint32_t cr0, cr1, cr2, gbpa, irq_ctrl, gerror, gerrorn;
	uint64_t strtab_base;
	uint32_t strtab_cfg;
	struct queue cmdq, evtq, priq;
	struct irq_cfg gerror_irq, evtq_irq, priq_irq;
	bool cmdq_stalled;      /* CMDQ_ERR active: wait for GERRORN */
	bool cmdq_pending;      /* commands left after a slice (cmds.c) */
	uint64_t cfg_gen;       /* configuration cache generation */

	/* caches (under lock) */
	struct ste_slot *ste_cache;
	struct cd_slot *cd_cache;
	uint32_t ste_mask, cd_mask;
	struct tlb_entry *tlb;
	uint32_t tlb_mask;

	/* PRI groups and stalls (under lock) */
	struct pri_grp pri[VIOMMU_SMMUV3_PRI_GROUPS];
	struct stall_slot stall[VIOMMU_SMMUV3_STALLS];
	uint16_t next_stag;
	uint64_t stall_seq;

	/* endpoints (under cmd_lock) */
	struct smmu_ep *eps;

	struct viommu_smmuv3_stats st;
};

/* ---- cross-file functions ---------------------------------------------------- */

/* smmuv3.c */
void irq_raise(struct viommu_smmuv3 *s, struct irq_batch *b,
	       enum viommu_smmuv3_irq which, const struct irq_cfg *cfg,
	       uint64_t gerr_bit);
void irq_deliver(struct viommu_smmuv3 *s, struct irq_batch *b);
void irq_flush_msis(struct viommu_smmuv3 *s, struct irq_batch *b);
void gerror_raise(struct viommu_smmuv3 *s, struct irq_batch *b, uint32_t bit);
unsigned int route_sid_range(struct viommu_smmuv3 *s, uint32_t first,
			     uint32_t last);
void route_pasid(struct viommu_smmuv3 *s, uint32_t sid, uint32_t ssid);

/* regs.c */
int regs_read(struct viommu_smmuv3 *s, uint64_t off, unsigned int size,
	      uint64_t *val);
int regs_write(struct viommu_smmuv3 *s, uint64_t off, unsigned int size,
	       uint64_t val);
void regs_reset(struct viommu_smmuv3 *s);
unsigned int q_log2(const struct queue *q);
int evtq_write(struct viommu_smmuv3 *s, const struct evt *e,
	       struct irq_batch *b);
bool q_full(const struct queue *q);
void put_le64(uint8_t *p, uint64_t v);
bool smmu_enabled(const struct viommu_smmuv3 *s);

/* cmds.c */
void cmdq_process(struct viommu_smmuv3 *s, struct irq_batch *b);
bool cmdq_resume(struct viommu_smmuv3 *s);

/* config.c */
int ste_get(struct viommu_smmuv3 *s, uint32_t sid, struct ste *out,
	    struct evt *e);
int cd_get(struct viommu_smmuv3 *s, const struct ste *ste, uint32_t sid,
	   uint32_t ssid, struct cd *out, struct evt *e);
void cfg_inval_ste(struct viommu_smmuv3 *s, uint32_t first, uint32_t last);
void cfg_inval_cd(struct viommu_smmuv3 *s, uint32_t sid, uint32_t ssid,
		  bool all);
int s2_translate(struct viommu_smmuv3 *s, const struct s2cfg *c,
		 uint64_t ipa, unsigned int access, uint8_t cls,
		 uint64_t *pa, struct lpae_result *res, struct evt *e);
void evt_from_walk(const struct lpae_result *r, struct evt *e);

/* pri.c */
int cmd_pri_resp(struct viommu_smmuv3 *s, uint64_t d0, uint64_t d1);
int cmd_resume(struct viommu_smmuv3 *s, uint64_t d0, uint64_t d1);
int cmd_stall_term(struct viommu_smmuv3 *s, uint64_t d0);
bool stall_applies(const struct ste *ste, const struct cd *cd, bool s1,
		   const struct evt *e);
void stall_fault(struct viommu_smmuv3 *s, struct evt *e, struct irq_batch *b);
void stall_term_all(struct viommu_smmuv3 *s);
void pri_reset(struct viommu_smmuv3 *s);

/* xlate.c */
int xlate_op(void *opaque, uint32_t pasid, uint64_t iova,
	     unsigned int access, uint64_t *ipa, uint64_t *len,
	     uint32_t *perm);
void tlb_inval(struct viommu_smmuv3 *s, unsigned int what, uint16_t vmid,
	       uint16_t asid, uint64_t lo, uint64_t hi);

/* tlb_inval() selectors */
#define TLBI_ALL 0          /* everything */
#define TLBI_VMID 1         /* every entry of @vmid */
#define TLBI_S1_VMID 2      /* stage-1 and nested entries of @vmid */
#define TLBI_S1_ASID 3      /* ... with @asid, global ones excepted */
#define TLBI_S1_VA 4        /* ... with @asid or global, over [lo, hi] */
#define TLBI_S1_VAA 5       /* ... any ASID, over [lo, hi] */
#define TLBI_S2_IPA 6       /* stage-2 entries of @vmid over [lo, hi] */

#endif /* VIOMMU_SMMUV3_INTERNAL_H */
