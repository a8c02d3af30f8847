/*
 * refdrv.h - the reference SMMUv3 driver: an in-process guest driver for
 * the SMMUv3 model, for tests and benchmarks.
 *
 * It plays the guest kernel.  It reaches the SMMU only through MMIO
 * (viommu_smmuv3_mmio_read/write, or a hook in front of them) and the
 * structures it builds in a chunk of guest RAM it owns (host pointer plus
 * GPA; the chunk must lie inside the struct viommu_mem the model reads).
 * It follows what the Linux arm-smmu-v3 driver does (DESIGN.md §6), in
 * its own code:
 *
 *  - probe: IDR0 TTENDIAN (little-endian or mixed), S1P or S2P, TTF
 *    AArch64; IDR1 TABLES_PRESET = QUEUES_PRESET = REL = 0 and CMDQS >= 7;
 *    IDR3 RIL; IDR5 granules and OAS.  A failed check is -ENODEV;
 *  - reset: disable (GBPA abort handshake first if SMMUEN was set), CR1
 *    and CR2, stream table, command queue, CFGI_ALL + CMD_SYNC,
 *    TLBI_NSNH_ALL + CMD_SYNC, event queue, IRQ_CTRL handshake, SMMUEN,
 *    every CR0 change acknowledged through CR0ACK;
 *  - queues: commands go in batches of up to 64 entries with the wrap
 *    bit, one PROD write per batch; CMD_SYNC completion is awaited by
 *    polling CMDQ_CONS (or, with @msi_sync, by polling the sync entry
 *    that the SMMU's MSI write zeroes).  A command error (CMDQ_CONS.ERR)
 *    is handled the way Linux does: the bad entry becomes a CMD_SYNC and
 *    GERRORN acknowledges, so the queue runs on; the call that hit it
 *    answers -EIO.  Events are consumed from the event queue, with the
 *    overflow flag acknowledged;
 *  - stream table linear or 2-level (8-bit split, L2 tables on first use),
 *    initialised to abort (or bypass) STEs; CD tables per stream, linear
 *    or 2-level with 64 KiB leaves (when CD2L and more than 1024 CDs);
 *  - STE and CD updates are "hitless" where the architecture allows, like
 *    Linux's arm_smmu_write_entry(): from the bits the SMMU uses in the
 *    current and the target entry it finds the qwords whose used bits
 *    change.  None: write.  One: write the bits the current entry does
 *    not use, sync, write that qword, sync, clear leftovers, sync.  More:
 *    clear V, sync, write qwords 1..7, sync, write qword 0, sync.  Every
 *    qword store is one 64-bit store and every sync is CFGI_STE (or
 *    CFGI_CD) + CMD_SYNC, so a DMA running concurrently sees the old
 *    configuration, the new one, or a fault - never a mixture;
 *  - domains: stage 1 (ASID-tagged, VMID 0), stage 2 (VMID) and nested
 *    (a stage-1 domain over a stage-2 parent; its CD table and stage-1
 *    tables are reached through the parent, in which the driver maps its
 *    own chunk at IPA == PA when the first nested child is created);
 *    map/unmap with the LPAE builder (src/pgtable/lpae.h); unmap is
 *    followed by TLBI_NH_VA (stage 1, nested) or TLBI_S2_IPA (stage 2,
 *    then TLBI_NH_ALL for the VMID if nested children exist), one command
 *    per page or the range form (TG/NUM/SCALE) when IDR3.RIL, and a
 *    CMD_SYNC.  A stream's RID and SubstreamIDs attach to domains; bypass
 *    and abort.
 *
 * Bookkeeping is bounded by the chunk (a page bitmap allocates guest
 * memory) and by the streams and domains the caller creates.  Not
 * thread-safe: one thread drives a driver (DMA through the model's
 * endpoints may run on other threads meanwhile).  Logging only via the
 * configured struct viommu_log.
 *
 * Code: refdrv.c (memory, MMIO, queues, probe, reset) and refdrv_tables.c
 * (entry writer, tables, domains, attachment), in the viommu-refdrv
 * static library; private definitions in refdrv_internal.h.
 */
#ifndef VIOMMU_SMMUV3_REFDRV_H
#define VIOMMU_SMMUV3_REFDRV_H

#include <viommu/mem.h>
#include <viommu/smmuv3.h>
#include "refdrv/lpae_build.h"

struct smmudrv;
struct smmudrv_domain;

/* The SubstreamID argument that names a stream's RID (no SubstreamID). */
#define SMMUDRV_NO_SSID UINT32_MAX
/* Commands per batch before a doorbell (Linux: CMDQ_BATCH_ENTRIES). */
#define SMMUDRV_BATCH 64u
/* Iterations a poll loop may spin before -ETIMEDOUT. */
#define SMMUDRV_POLL_MAX 1000000u

/** How unmap and smmudrv_inv_range() invalidate. */
enum smmudrv_tlbi {
	SMMUDRV_TLBI_AUTO = 0,  /* range form when IDR3.RIL, else per page */
	SMMUDRV_TLBI_PAGE = 1,  /* one command per page */
	SMMUDRV_TLBI_RANGE = 2, /* range form (needs IDR3.RIL) */
};

/**
 * struct smmudrv_mmio - optional hook in front of the model's MMIO (tests
 * use it to present other ID register values).  Same contract as
 * viommu_smmuv3_mmio_read/write.
 */
struct smmudrv_mmio {
	int (*read)(void *opaque, uint64_t off, unsigned int size,
		    uint64_t *val);
	int (*write)(void *opaque, uint64_t off, unsigned int size,
		     uint64_t val);
	void *opaque;
};

/** What a step hook is told about. */
enum smmudrv_entry {
	SMMUDRV_ENTRY_STE = 0,
	SMMUDRV_ENTRY_CD = 1,
};

/**
 * struct smmudrv_step - one synchronised step of an entry update: the
 * entry as the SMMU may now see it.
 * @kind:      STE or CD.
 * @sid, @ssid: the entry (@ssid SMMUDRV_NO_SSID for STEs).
 * @step:      1, 2, 3 within this update.
 * @hitless:   the update never clears V.
 * @q:         the entry's eight qwords after the step.
 */
struct smmudrv_step {
	enum smmudrv_entry kind;
	uint32_t sid, ssid;
	unsigned int step;
	bool hitless;
	uint64_t q[8];
};

/**
 * struct smmudrv_config - what to drive and how.  Zero means the default.
 * @smmu:        the model (MMIO target unless @mmio.read is set).
 * @mem:         guest memory holding the chunk (for the LPAE builder).
 * @ram, @ram_gpa, @ram_size: the chunk of guest RAM the driver owns: host
 *               pointer, GPA (4 KiB-aligned), size (4 KiB multiple).
 * @mmio:        optional MMIO hook.
 * @strtab_log2: StreamIDs the stream table covers, log2 (min(SIDSIZE, 8)
 *               linear, min(SIDSIZE, 16) 2-level).
 * @strtab_2lvl: use a 2-level stream table when IDR0.ST_LEVEL allows and
 *               @strtab_log2 > 8.
 * @cd_bits:     SubstreamID bits of each CD table, S1CDMax
 *               (min(SSIDSIZE, 8)); 2-level CD tables when IDR0.CD2L and
 *               @cd_bits > 10.
 * @cmdq_log2, @evtq_log2: queue sizes, 7..IDR1 limit (8, 8).
 * @msi_sync:    complete CMD_SYNC by MSI write polling (needs IDR0.MSI).
 * @bypass_unattached: streams with no domain bypass (else abort, the Linux
 *               default).
 * @tlbi:        invalidation mode (SMMUDRV_TLBI_AUTO).
 * @step, @step_opaque: optional: called after every synchronised step of
 *               an STE or CD update (tests check what DMA sees there).
 * @store:       optional: called after every single qword store of such an
 *               update, before its sync (with @step_opaque; st->step counts
 *               the syncs so far).  It may call smmudrv_cmd(), e.g. a
 *               CFGI to make the SMMU read the entry as it is right then,
 *               as real hardware may at any time.
 * @log, @allocator: see common.h (host memory of the driver).
 */
struct smmudrv_config {
	struct viommu_smmuv3 *smmu;
	struct viommu_mem *mem;
	void *ram;
	uint64_t ram_gpa, ram_size;
	struct smmudrv_mmio mmio;
	unsigned int strtab_log2;
	bool strtab_2lvl;
	unsigned int cd_bits;
	unsigned int cmdq_log2, evtq_log2;
	bool msi_sync;
	bool bypass_unattached;
	enum smmudrv_tlbi tlbi;
	void (*step)(void *opaque, const struct smmudrv_step *st);
	void (*store)(void *opaque, const struct smmudrv_step *st);
	void *step_opaque;
	struct viommu_log log;
	struct viommu_allocator allocator;
};

/**
 * struct smmudrv_info - what the driver probed and chose, and counters
 * since creation.
 */
struct smmudrv_info {
	uint32_t idr[6];
	bool stage1, stage2, ril, msi, sev, httu_ha, httu_hd;
	bool cd2l, st2l, asid16, vmid16;
	unsigned int sid_bits, ssid_bits, oas;
	uint64_t pgsize_bitmap;     /* leaf sizes of the granules IDR5 lists */
	unsigned int cmdq_log2, evtq_log2, strtab_log2, cd_bits;
	bool strtab_2lvl, cd_2lvl, msi_sync;
	enum smmudrv_tlbi tlbi;
	uint64_t mem_used;          /* bytes of the chunk allocated */
	/* counters */
	uint64_t cmds;              /* commands written, CMD_SYNCs included */
	uint64_t syncs;             /* CMD_SYNCs completed */
	uint64_t doorbells;         /* CMDQ_PROD writes */
	uint64_t polls;             /* poll iterations that found work left */
	uint64_t cmd_errors;        /* CMDQ_CONS.ERR seen and skipped */
	uint32_t last_cerror;       /* its CMDQ_CONS.ERR code */
	uint64_t tlbi_cmds;         /* TLBI commands issued */
	uint64_t ste_updates, cd_updates; /* entry updates that wrote */
	uint64_t hitless, disruptive; /* ... without / with clearing V */
	uint64_t entry_syncs;       /* synchronised steps of those updates */
	uint64_t events;            /* events consumed */
	uint64_t evtq_overflows;    /* overflow flags acknowledged */
	uint64_t gerrors;           /* GERROR bits acknowledged */
};

/**
 * struct smmudrv_event - one event record, decoded (fields as the
 * architecture places them) and raw.
 * @type:  event number (0x10 F_TRANSLATION, ...).
 * @addr:  InputAddr (qword 2).
 * @ipa:   IPA of a stage-2 fault (qword 3 bits 51:12).
 * @fetch: FetchAddr of *_FETCH and F_WALK_EABT (qword 3 bits 51:3).
 * @cls:   Class: 0 CD, 1 TTD, 2 IN.
 */
struct smmudrv_event {
	uint8_t type;
	bool ssv, s2, rnw, ind, pnu;
	uint8_t cls;
	uint32_t sid, ssid;
	uint64_t addr, ipa, fetch;
	uint64_t raw[4];
};

/** Domain stages. */
enum smmudrv_stage {
	SMMUDRV_STAGE1 = 1,
	SMMUDRV_STAGE2 = 2,
	SMMUDRV_NESTED = 3, /* stage 1 over a stage-2 parent */
};

/**
 * struct smmudrv_domain_config - a domain to allocate.
 * @stage:   see enum smmudrv_stage.
 * @granule: 4096, 16384 or 65536 (0: 4 KiB if IDR5 lists it, else the
 *           smallest listed).
 * @ias:     input bits (0: 48 at stage 1; the OAS at stage 2).
 * @parent:  NESTED only: a STAGE2 domain of the same driver.
 * @httu:    ask for hardware access/dirty updates (CD HA/HD, STE S2HA/
 *           S2HD) where IDR0.HTTU offers them.
 */
struct smmudrv_domain_config {
	enum smmudrv_stage stage;
	unsigned int granule;
	unsigned int ias;
	struct smmudrv_domain *parent;
	bool httu;
};

/** struct smmudrv_domain_info - a domain as the driver set it up. */
struct smmudrv_domain_info {
	enum smmudrv_stage stage;
	uint16_t asid, vmid;        /* vmid: own (stage 2) or parent's */
	uint64_t root;              /* table root GPA */
	struct lpae_cfg lp;         /* validated table format */
	unsigned int attached;      /* RIDs and SubstreamIDs using it */
};

/**
 * smmudrv_create() - probe the SMMU, carve queues and the stream table
 * out of the chunk and run the reset sequence; on success the SMMU is
 * enabled with every stream aborting (or bypassing).
 * Return: 0; -EINVAL (NULL or bad @cfg); -ENODEV (a probe check failed);
 * -EOPNOTSUPP (@msi_sync without IDR0.MSI, SMMUDRV_TLBI_RANGE without
 * IDR3.RIL); -ENOSPC (chunk too small); -ETIMEDOUT (a register handshake
 * or a CMD_SYNC never completed); -EIO (a command or an MMIO access
 * failed); -ENOMEM.
 */
int smmudrv_create(const struct smmudrv_config *cfg, struct smmudrv **out);

/**
 * smmudrv_destroy() - disable the SMMU (CR0 = 0) and free the driver and
 * every domain it still has.  NULL is accepted.
 */
void smmudrv_destroy(struct smmudrv *drv);

/** smmudrv_info() - fill @out.  Return: 0; -EINVAL. */
int smmudrv_info(const struct smmudrv *drv, struct smmudrv_info *out);

/**
 * smmudrv_set_tlbi() - change the invalidation mode.
 * Return: 0; -EINVAL; -EOPNOTSUPP (RANGE without IDR3.RIL).
 */
int smmudrv_set_tlbi(struct smmudrv *drv, enum smmudrv_tlbi mode);

/* ---- commands and events ---------------------------------------------- */

/**
 * smmudrv_cmd() - issue one raw command (@d0, @d1), then a CMD_SYNC if
 * @sync, and wait for it.  Return: 0; -EIO (a command error was hit and
 * skipped); -ETIMEDOUT; -EINVAL.
 */
int smmudrv_cmd(struct smmudrv *drv, uint64_t d0, uint64_t d1, bool sync);

/**
 * smmudrv_event_pop() - take the next event off the event queue.
 * Return: 1 with *@ev filled; 0 when the queue is empty; -EINVAL.
 */
int smmudrv_event_pop(struct smmudrv *drv, struct smmudrv_event *ev);

/**
 * smmudrv_gerror() - acknowledge every active GERROR bit (a command-queue
 * error is handled as by a command); store them in *@active (optional).
 * Return: 0; -EINVAL; -EIO if the command queue error was among them.
 */
int smmudrv_gerror(struct smmudrv *drv, uint32_t *active);

/* ---- domains ----------------------------------------------------------- */

/**
 * smmudrv_domain_alloc() - a domain with an empty table tree, an ASID
 * (stage 1, nested) or VMID (stage 2).
 * Return: 0; -EINVAL (bad config, parent not STAGE2 of this driver);
 * -EOPNOTSUPP (stage or granule not offered); -ENOSPC (guest memory,
 * IDs); -ENOMEM; or an error of mapping the chunk into the parent.
 */
int smmudrv_domain_alloc(struct smmudrv *drv,
			 const struct smmudrv_domain_config *cfg,
			 struct smmudrv_domain **out);

/**
 * smmudrv_domain_free() - invalidate the domain's TLB entries
 * (TLBI_NH_ASID / TLBI_S12_VMALL + CMD_SYNC), free its tables and IDs.
 * Return: 0; -EINVAL; -EBUSY (still attached, or a nested parent).
 */
int smmudrv_domain_free(struct smmudrv_domain *dom);

/** smmudrv_domain_info() - fill @out.  Return: 0; -EINVAL. */
int smmudrv_domain_info(const struct smmudrv_domain *dom,
			struct smmudrv_domain_info *out);

/**
 * smmudrv_domain_ops() - the builder's view of the domain's tables (for
 * tests that edit tables behind the driver's back).
 */
const struct lpae_ops *smmudrv_domain_ops(const struct smmudrv_domain *dom);

/**
 * smmudrv_map() - map [@iova, @iova + @size) to @pa (an IPA for nested
 * domains) with @prot (VIOMMU_READ/WRITE/EXEC and LPAE_PROT_*).  No
 * invalidation is needed (the SMMU caches no invalid entries).
 * Return: as lpae_map().
 */
int smmudrv_map(struct smmudrv_domain *dom, uint64_t iova, uint64_t pa,
		uint64_t size, unsigned int prot);

/**
 * smmudrv_unmap() - unmap [@iova, @iova + @size), then invalidate that
 * range (TLBI + CMD_SYNC) if anything was unmapped.
 * Return: 0 with *@unmapped (optional) set; lpae_unmap()'s errors; -EIO;
 * -ETIMEDOUT.
 */
int smmudrv_unmap(struct smmudrv_domain *dom, uint64_t iova, uint64_t size,
		  uint64_t *unmapped);

/**
 * smmudrv_inv_range() - invalidate [@iova, @iova + @size) of @dom in the
 * current mode, then CMD_SYNC.  @iova and @size are granule-aligned.
 * Return: 0; -EINVAL; -EIO; -ETIMEDOUT.
 */
int smmudrv_inv_range(struct smmudrv_domain *dom, uint64_t iova,
		      uint64_t size);

/** smmudrv_inv_all() - TLBI_NH_ASID or TLBI_S12_VMALL + CMD_SYNC. */
int smmudrv_inv_all(struct smmudrv_domain *dom);

/* ---- streams ------------------------------------------------------------ */

/**
 * smmudrv_attach() - attach StreamID @sid's RID (@ssid SMMUDRV_NO_SSID)
 * or SubstreamID @ssid (1 .. 2^cd_bits - 1) to @dom.
 * RID: stage 1 -> CD table STE with the domain's CD at SSID 0; stage 2 ->
 * stage-2 STE (no SubstreamIDs may be attached); nested -> nested STE
 * (S1ContextPtr an IPA) with the domain's CD at SSID 0.
 * SubstreamID: stage-1 domains while the RID is stage 1, aborting or
 * bypassing (the STE then carries the CD table with S1DSS terminate or
 * bypass); nested domains of the RID's parent while the RID is nested.
 * Return: 0; -EINVAL (bad IDs, a domain of another driver, a combination
 * the rules above refuse); -EBUSY (stage 2 or another parent while
 * SubstreamIDs are attached); -ENOSPC; -ENOMEM; -EIO; -ETIMEDOUT.
 */
int smmudrv_attach(struct smmudrv *drv, uint32_t sid, uint32_t ssid,
		   struct smmudrv_domain *dom);

/**
 * smmudrv_detach() - RID: back to abort (or bypass, per
 * @bypass_unattached); SubstreamID: its CD is cleared.
 * Return: 0; -EINVAL; -ENOENT (not attached); -EIO; -ETIMEDOUT.
 */
int smmudrv_detach(struct smmudrv *drv, uint32_t sid, uint32_t ssid);

/**
 * smmudrv_set_bypass() / smmudrv_set_abort() - the RID bypasses / aborts
 * (with SubstreamIDs attached: S1DSS bypass / terminate).
 * Return: as smmudrv_detach().
 */
int smmudrv_set_bypass(struct smmudrv *drv, uint32_t sid);
int smmudrv_set_abort(struct smmudrv *drv, uint32_t sid);

#endif /* VIOMMU_SMMUV3_REFDRV_H */
