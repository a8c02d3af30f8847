/*
 * smmuv3.h - an Arm SMMUv3 model on the viommu translation core.
 *
 * Concepts
 *  - The model is a register file (the 128 KiB MMIO frame: page 0 and
 *    page 1) that a transport forwards guest accesses to, plus the
 *    structures the guest builds in its RAM: stream table (linear or
 *    2-level), context descriptors (linear or 2-level CD tables), stage-1
 *    and stage-2 LPAE page tables, and the command, event and PRI queues.
 *    All guest memory is reached through struct viommu_mem.
 *  - Devices are core endpoints (viommu_endpoint_create()); the endpoint ID
 *    is the StreamID.  The embedder registers each one with
 *    viommu_smmuv3_add_endpoint().  The model then attaches the endpoint's
 *    RID to the context's BLOCKED domain (abort STE, or SMMUEN=0 with
 *    GBPA.ABORT=1), to the IDENTITY domain (bypass STE, or SMMUEN=0 with
 *    GBPA.ABORT=0) or to a NESTED domain of its own (any other STE,
 *    including invalid ones, so that transactions raise the architected
 *    event).  That domain's stage-1 op runs the SMMU translation: STE and
 *    CD look-up, stage 1, stage 2 or both, with the model's configuration
 *    cache and IOTLB.  Endpoint DMA therefore goes through
 *    viommu_translate() / viommu_dma_*() like any other endpoint.
 *  - Routes are recomputed when the guest issues CFGI_STE, CFGI_STE_RANGE,
 *    CFGI_ALL, when SMMUEN changes and when GBPA is updated.  A PASID
 *    (SubstreamID) becomes routable to the NESTED domain when the guest
 *    issues CFGI_CD for it (as the Linux driver does after every CD write);
 *    up to min(64, the context's max_pasids_per_endpoint) per endpoint.
 *  - Faults are written to the event queue (C_BAD_STREAMID, F_STE_FETCH,
 *    C_BAD_STE, F_STREAM_DISABLED, C_BAD_SUBSTREAMID, F_CD_FETCH, C_BAD_CD,
 *    F_WALK_EABT, F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION) and
 *    the translation fails with -EFAULT (the core also reports it to its
 *    own fault callback as VIOMMU_FAULT_STAGE1).
 *  - Interrupts: wired lines through the @irq callback, or MSIs written
 *    through the memory layer when the guest programs *_IRQ_CFG0.
 *  - PRI (VIOMMU_SMMUV3_F_PRI, IDR0.PRI): the embedder plays the PCIe
 *    endpoint and submits Page Requests with viommu_smmuv3_page_request();
 *    the model writes them to the guest's PRI queue and raises the PRIQ
 *    interrupt.  The guest answers with CMD_PRI_RESP; the embedder learns
 *    the answer with viommu_smmuv3_pri_response().
 *  - Stall (VIOMMU_SMMUV3_F_STALL, IDR0.STALL_MODEL = stall supported):
 *    a stage-1 fault under a CD with CD.S set, or a stage-2 fault under an
 *    STE with S2S set, is recorded with Stall = 1 and a STAG and the
 *    transaction is remembered as stalled.  DMA here is synchronous, so the
 *    translation still fails at once with -EFAULT; the guest completes the
 *    stall with CMD_RESUME (retry, abort, terminate) or CMD_STALL_TERM and
 *    the embedder observes that with viommu_smmuv3_stall_status(): after
 *    "retry" it may issue the DMA again.
 *
 * Not modelled: ATS (PRI is advertised without it), STALL_MODEL "stall
 * forced", AArch32 tables, big-endian tables, secure state, EL2 (E2H)
 * stream worlds, 52-bit addresses.  With PRI or stall not enabled,
 * CMD_PRI_RESP and CMD_RESUME are accepted as no-ops and CMD_STALL_TERM is
 * illegal.
 *
 * Thread safety: every function may be called from any thread.  MMIO
 * accesses and command processing are serialised by a model lock; DMA
 * translations may run on any number of threads concurrently with them.
 * viommu_smmuv3_destroy() must not race any other call on the model.
 * The @irq callback runs with no model lock held, on the thread that
 * raised the interrupt: an MMIO writer, or a DMA thread inside
 * viommu_translate() (an event) - it must not call back into the model or
 * the core (inject the interrupt, e.g. write an eventfd, and return).
 * Translations run the whole walk under the model's state lock.
 */
#ifndef VIOMMU_SMMUV3_H
#define VIOMMU_SMMUV3_H

#include <viommu/common.h>
#include <viommu/core.h>
#include <viommu/mem.h>
#include <viommu/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

struct viommu_smmuv3;

/** Size of the MMIO frame (page 0 and page 1). */
#define VIOMMU_SMMUV3_MMIO_SIZE 0x20000

/**
 * Commands consumed per slice.  A CMDQ_PROD write consumes at most this
 * many commands (and re-routes endpoints at most once); CMDQ_CONS shows
 * the progress.  Commands left are consumed a slice at a time by the next
 * MMIO accesses (read or write, any register: a driver polling CMDQ_CONS
 * drives the queue) and by viommu_smmuv3_poll().  A driver that waits for
 * a CMD_SYNC's MSI write in memory without touching a register (Linux does
 * so with IDR0.MSI on a coherent SMMU, "MSIPOLL") after publishing more
 * than a slice at once needs the embedder to call viommu_smmuv3_poll()
 * while it returns 1.  Linux publishes batches of at most 64 commands
 * plus a CMD_SYNC, which fit one slice.
 */
#define VIOMMU_SMMUV3_CMDQ_SLICE 256
/**
 * A slice also ends after the CMD_SYNC (or last command) that brings the
 * endpoint re-routes it did (each an STE read, for CFGI_STE*, CFGI_ALL)
 * to this many.  Re-routes are merged until the next CMD_SYNC, so a queue
 * of CFGI_ALL costs one pass over the endpoints per CMD_SYNC, not per
 * command.
 */
#define VIOMMU_SMMUV3_CMDQ_SLICE_ROUTES 4096

/** Optional features (struct viommu_smmuv3_config.features). */
#define VIOMMU_SMMUV3_F_STAGE1   (1u << 0) /* IDR0.S1P */
#define VIOMMU_SMMUV3_F_STAGE2   (1u << 1) /* IDR0.S2P */
#define VIOMMU_SMMUV3_F_HTTU     (1u << 2) /* HW access flag + dirty state */
#define VIOMMU_SMMUV3_F_RIL      (1u << 3) /* IDR3.RIL range invalidation */
#define VIOMMU_SMMUV3_F_MSI      (1u << 4) /* IDR0.MSI */
#define VIOMMU_SMMUV3_F_2LVL_STE (1u << 5) /* IDR0.ST_LEVEL 2-level */
#define VIOMMU_SMMUV3_F_CD2L     (1u << 6) /* IDR0.CD2L 2-level CD tables */
#define VIOMMU_SMMUV3_F_DEFAULT  0x7fu     /* all of the above */
#define VIOMMU_SMMUV3_F_PRI      (1u << 7) /* IDR0.PRI: PRI queue, requests */
#define VIOMMU_SMMUV3_F_STALL    (1u << 8) /* IDR0.STALL_MODEL: stalls */
#define VIOMMU_SMMUV3_F_ALL      0x1ffu    /* every feature */

/* Bounds of the PRI and stall bookkeeping (per model). */
#define VIOMMU_SMMUV3_PRI_GROUPS 64  /* outstanding Page Request Groups */
#define VIOMMU_SMMUV3_STALLS     64  /* remembered stalled transactions */

/** Interrupt lines, for the @irq callback. */
enum viommu_smmuv3_irq {
	VIOMMU_SMMUV3_IRQ_EVTQ = 0,     /* event queue (wired) */
	VIOMMU_SMMUV3_IRQ_PRIQ = 1,     /* PRI queue (wired) */
	VIOMMU_SMMUV3_IRQ_GERROR = 2,   /* global error (wired) */
	VIOMMU_SMMUV3_IRQ_CMD_SYNC = 3, /* CMD_SYNC CS=IRQ with MSIAddr 0 */
	VIOMMU_SMMUV3_IRQ_SEV = 4,      /* CMD_SYNC CS=SEV: send event */
};

/**
 * struct viommu_smmuv3_config - creation parameters.  Zero means the
 * default shown.
 * @size:      sizeof(struct viommu_smmuv3_config) as the caller knows it
 *             (lets the struct grow at its end without breaking built
 *             embedders; docs/API.md, "Conventions"); 0 is taken as this
 *             first sized layout.  Fields past @size read as zero (their
 *             defaults).  A larger @size than the library knows is refused
 *             unless the bytes past what it knows are zero.
 * @ctx:       the core context holding endpoints and domains (required).
 * @mem:       guest memory for tables and queues (required; the
 *             context's own, checked).
 * @log, @allocator: see common.h.
 * @features:  VIOMMU_SMMUV3_F_*; 0 means VIOMMU_SMMUV3_F_DEFAULT (which
 *             has neither PRI nor STALL).  At least one of STAGE1 and
 *             STAGE2.
 * @sid_bits:  IDR1.SIDSIZE, 1..32 (16).
 * @ssid_bits: IDR1.SSIDSIZE, 0..20 (20); use VIOMMU_SMMUV3_NO_SSID for 0.
 * @oas_bits:  IDR5.OAS: 32, 36, 40, 42, 44 or 48 (48).
 * @cmdq_log2, @evtq_log2, @priq_log2: IDR1 queue size limits, 7..19
 *             (10, 10, 8).
 * @iotlb_entries, @cfg_entries: cache sizes, powers of two up to 65536
 *             (1024, 256).
 * @gbpa_abort: reset value of GBPA.ABORT.
 * @irq, @irq_opaque: wired interrupt callback (may be NULL).
 */
struct viommu_smmuv3_config {
	uint32_t size;
	struct viommu_ctx *ctx;
	struct viommu_mem *mem;
	struct viommu_log log;
	struct viommu_allocator allocator;
	uint32_t features;
	unsigned int sid_bits;
	unsigned int ssid_bits;
	unsigned int oas_bits;
	unsigned int cmdq_log2, evtq_log2, priq_log2;
	unsigned int iotlb_entries, cfg_entries;
	bool gbpa_abort;
	void (*irq)(void *opaque, enum viommu_smmuv3_irq irq);
	void *irq_opaque;
};

/** @ssid_bits value that advertises no SubstreamID support. */
#define VIOMMU_SMMUV3_NO_SSID 0xffu

/**
 * viommu_smmuv3_create() - create a model in its reset state.
 * Return: 0; -EINVAL (NULL @cfg, @out, @cfg->ctx or @cfg->mem, a field out
 * of range, no stage, @size larger than known with non-zero bytes past
 * what the library knows); -ENOMEM (allocation failed).  Thread-safe (no
 * shared state).
 */
VIOMMU_EXPORT int viommu_smmuv3_create(const struct viommu_smmuv3_config *cfg,
				       struct viommu_smmuv3 **out);

/**
 * viommu_smmuv3_destroy() - detach the registered endpoints (their RIDs go
 * to the BLOCKED domain), destroy the model's domains and free it.  The
 * endpoints themselves stay.  NULL is accepted.
 */
VIOMMU_EXPORT void viommu_smmuv3_destroy(struct viommu_smmuv3 *smmu);

/**
 * viommu_smmuv3_reset() - back to the reset state: registers, queues,
 * caches; outstanding PRI groups are forgotten and pending stalls
 * terminated; every registered endpoint is re-routed per GBPA.
 * Return: 0; -EINVAL for NULL.
 */
VIOMMU_EXPORT int viommu_smmuv3_reset(struct viommu_smmuv3 *smmu);

/**
 * viommu_smmuv3_mmio_read() - a guest read of @size bytes (4 or 8) at
 * @offset in the frame.  64-bit registers may be read whole or as two
 * 32-bit halves; 32-bit registers only as 32 bits.  Unknown offsets read
 * as zero.
 * Return: 0 with *@val set; -EINVAL (NULL args, offset outside the frame,
 * size not 4 or 8, misaligned, or an 8-byte access to a 32-bit register:
 * *@val is then 0).
 */
VIOMMU_EXPORT int viommu_smmuv3_mmio_read(struct viommu_smmuv3 *smmu,
					  uint64_t offset, unsigned int size,
					  uint64_t *val);

/**
 * viommu_smmuv3_mmio_write() - a guest write.  Side effects (enabling,
 * re-routing endpoints, interrupts, and one slice of command processing -
 * see VIOMMU_SMMUV3_CMDQ_SLICE) are complete when it returns.  Writes to
 * read-only or unknown registers are ignored (one log line).  Same access
 * rules as reads.
 * Return: 0; -EINVAL (as for reads; nothing is written).
 */
VIOMMU_EXPORT int viommu_smmuv3_mmio_write(struct viommu_smmuv3 *smmu,
					   uint64_t offset, unsigned int size,
					   uint64_t val);

/**
 * viommu_smmuv3_poll() - if a slice left commands in the queue, consume
 * the next slice (VIOMMU_SMMUV3_CMDQ_SLICE) and deliver its interrupts.
 * For an embedder's idle loop or timer; MMIO accesses do the same.  Same
 * thread-safety as viommu_smmuv3_mmio_write().
 * Return: 1 (commands still left: call again), 0 (none), -EINVAL (NULL).
 */
VIOMMU_EXPORT int viommu_smmuv3_poll(struct viommu_smmuv3 *smmu);

/**
 * viommu_smmuv3_add_endpoint() - put @ep (StreamID = its ID) behind the
 * SMMU and attach it according to the current configuration.
 * Return: 0; -EINVAL (NULL, @ep of another context, ID beyond SIDSIZE);
 * -EEXIST (already added); -ENOMEM (allocation failed).  No core limit
 * surfaces here: an endpoint whose STE needs a domain the core refuses
 * (max_domains) is routed to the blocked domain with a log line: its DMA
 * is refused, as for a bad STE.
 */
VIOMMU_EXPORT int viommu_smmuv3_add_endpoint(struct viommu_smmuv3 *smmu,
					     struct viommu_endpoint *ep);

/**
 * viommu_smmuv3_remove_endpoint() - take @ep out: its RID and PASIDs are
 * detached (the endpoint is left unattached) and the model forgets it.
 * Call it before viommu_endpoint_destroy().
 * Return: 0; -EINVAL (NULL); -ENOENT (not added).
 */
VIOMMU_EXPORT int viommu_smmuv3_remove_endpoint(struct viommu_smmuv3 *smmu,
						struct viommu_endpoint *ep);

/** struct viommu_smmuv3_stats - counters since creation. */
struct viommu_smmuv3_stats {
	uint64_t commands;      /* commands executed */
	uint64_t cmd_errors;    /* CERROR_* raised */
	uint64_t syncs;         /* CMD_SYNCs completed */
	uint64_t events;        /* events written to the queue */
	uint64_t events_lost;   /* events dropped (queue full/off/abort) */
	uint64_t translations;  /* translate ops run */
	uint64_t faults;        /* translate ops that failed */
	uint64_t iotlb_hits, iotlb_misses;
	uint64_t cfg_hits, cfg_misses; /* STE + CD cache */
	uint64_t invalidations; /* IOTLB entries dropped by TLBI */
	uint64_t irqs;          /* wired interrupts signalled */
	uint64_t msis;          /* MSI writes done */
	uint64_t pri_requests;  /* Page Requests written to the PRI queue */
	uint64_t pri_lost;      /* Page Requests discarded */
	uint64_t pri_responses; /* CMD_PRI_RESP matching an outstanding group */
	uint64_t stalls;        /* transactions stalled */
	uint64_t resumes;       /* stalls completed by RESUME or STALL_TERM */
	uint64_t resume_unmatched; /* RESUME / PRI_RESP matching nothing */
	/*
	 * Log lines a guest triggered (bad STEs and CDs, command errors,
	 * refused register writes...) that the rate limit dropped: at most
	 * 32 lines per 5 s, the first line after a drop says how many.  The
	 * counters above still count every event.
	 */
	uint64_t log_suppressed;
};

/**
 * viommu_smmuv3_stats() - snapshot the counters into @out, of which the
 * caller knows @size bytes (sizeof(struct viommu_smmuv3_stats) as it was
 * built), so counters can be appended without breaking built embedders:
 * an older caller gets the counters it knows, a newer one reads zero in
 * the counters this library does not have.  Thread-safe.
 * Return: 0; -EINVAL (NULL args, @size 0).
 */
VIOMMU_EXPORT int viommu_smmuv3_stats(struct viommu_smmuv3 *smmu,
				      struct viommu_smmuv3_stats *out,
				      size_t size);

/* ---- PRI ------------------------------------------------------------- */

/** Page Request permission bit beyond VIOMMU_READ/WRITE/EXEC. */
#define VIOMMU_SMMUV3_PRI_PRIV (1u << 3) /* privileged access requested */

/** CMD_PRI_RESP response codes (the command's Resp field). */
enum viommu_smmuv3_pri_resp {
	VIOMMU_SMMUV3_PRI_DENY = 0,     /* Invalid Request */
	VIOMMU_SMMUV3_PRI_FAIL = 1,     /* Response Failure */
	VIOMMU_SMMUV3_PRI_SUCCESS = 2,  /* Success */
};

/**
 * viommu_smmuv3_page_request() - a PCIe Page Request from endpoint @sid
 * (@ssid a PASID, or VIOMMU_NO_PASID) for the page holding @iova with
 * @perm (VIOMMU_READ/WRITE/EXEC, VIOMMU_SMMUV3_PRI_PRIV; EXEC and PRIV only
 * with a PASID), @last set on the last request of Page Request Group
 * @grpidx (0..511).  A request with a PASID, @last and no permission is a
 * Stop Marker: queued, but no group is kept for it.  The entry is written
 * to the PRI queue and the PRIQ interrupt raised (if IRQ_CTRL enables it).
 * The group stays outstanding until the guest's CMD_PRI_RESP, collected
 * with viommu_smmuv3_pri_response().
 *
 * A request the queue cannot take is discarded; when it was the last of
 * its group the model answers it itself with Success (the endpoint then
 * retries), which viommu_smmuv3_pri_response() reports.
 * Return: 0 queued; -EINVAL (NULL, StreamID beyond SIDSIZE, PASID beyond
 * SSIDSIZE, @grpidx > 511, unknown @perm bits, EXEC/PRIV without PASID);
 * -EOPNOTSUPP (no VIOMMU_SMMUV3_F_PRI); -EBUSY (VIOMMU_SMMUV3_PRI_GROUPS
 * groups already outstanding: nothing done, retry later); -EAGAIN
 * (discarded: SMMUEN or PRIQEN clear); -ENOSPC (discarded: queue full or
 * its overflow not yet acknowledged; PRIQ_PROD.OVFLG toggled); -EIO
 * (discarded: the queue is not guest RAM; GERROR.PRIQ_ABT_ERR).
 */
VIOMMU_EXPORT int viommu_smmuv3_page_request(struct viommu_smmuv3 *smmu,
					     uint32_t sid, uint32_t ssid,
					     uint64_t iova, unsigned int perm,
					     bool last, unsigned int grpidx);

/**
 * viommu_smmuv3_pri_response() - the response to group @grpidx of @sid.
 * A returned response is consumed (the group is forgotten).
 * Return: 0 with *@resp set; -EAGAIN (outstanding, not answered yet);
 * -ENOENT (no such group); -EINVAL (NULL args).
 */
VIOMMU_EXPORT int viommu_smmuv3_pri_response(struct viommu_smmuv3 *smmu,
					     uint32_t sid, unsigned int grpidx,
					     enum viommu_smmuv3_pri_resp *resp);

/* ---- stall -------------------------------------------------------------- */

/** States of a stalled transaction. */
enum viommu_smmuv3_stall_state {
	VIOMMU_SMMUV3_STALL_PENDING = 0, /* stalled, not resumed yet */
	VIOMMU_SMMUV3_STALL_RETRY,       /* CMD_RESUME Retry: issue it again */
	VIOMMU_SMMUV3_STALL_ABORT,       /* CMD_RESUME Abort */
	VIOMMU_SMMUV3_STALL_TERM,        /* RESUME Terminate, CMD_STALL_TERM,
					    SMMUEN cleared or reset */
};

/**
 * viommu_smmuv3_stall_find() - the STAG of the newest remembered stall of
 * @sid whose address is in the 4 KiB page of @iova.
 * Return: 0 with *@stag set; -ENOENT; -EINVAL (NULL args).
 */
VIOMMU_EXPORT int viommu_smmuv3_stall_find(struct viommu_smmuv3 *smmu,
					   uint32_t sid, uint64_t iova,
					   uint16_t *stag);

/**
 * viommu_smmuv3_stall_status() - the state of stall (@sid, @stag).  A
 * completed state (anything but PENDING) is reported once: the entry is
 * then forgotten.  Completed entries not collected are dropped, oldest
 * first, when room is needed for a new stall.
 * Return: 0 with *@state set; -ENOENT; -EINVAL (NULL args).
 */
VIOMMU_EXPORT int
viommu_smmuv3_stall_status(struct viommu_smmuv3 *smmu, uint32_t sid,
			   uint16_t stag, enum viommu_smmuv3_stall_state *state);

/**
 * viommu_smmuv3_set_trace_sink() - typed trace points (<viommu/trace.h>):
 * VIOMMU_TRACE_SMMU_CMD for each command consumed (or refused: error
 * CERROR_ILL 1 / CERROR_ABT 2), VIOMMU_TRACE_SMMU_EVENT for each event
 * record written or lost.  @sink NULL (or a zero mask) turns them off.
 * Any thread; the sink's function runs with the model's state lock held
 * and must not call back into the model.
 * Return: 0; -EINVAL (NULL @smmu, unknown mask bits, a @size with unknown
 * non-zero bytes).
 */
VIOMMU_EXPORT int viommu_smmuv3_set_trace_sink(struct viommu_smmuv3 *smmu,
					       const struct viommu_trace_sink *sink);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_SMMUV3_H */
