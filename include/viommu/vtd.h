/*
 * vtd.h - an Intel VT-d (DMA remapping) model on the viommu translation
 * core.
 *
 * Concepts
 *  - The model is a 4 KiB register frame (one DRHD unit) that a transport
 *    forwards guest accesses to, plus the structures the guest builds in
 *    its RAM: the root table, context tables (legacy 128-bit entries, or
 *    scalable-mode 256-bit entries with PASID directories and 512-bit PASID
 *    table entries), second-level (4- or 5-level) and first-level page
 *    tables, and the invalidation queue.  All guest memory is reached
 *    through struct viommu_mem.
 *  - Devices are core endpoints whose ID is the PCI source-id
 *    (bus << 8 | devfn, segment 0).  The embedder registers each one with
 *    viommu_vtd_add_endpoint().  While translation is disabled (GSTS.TES
 *    clear) the endpoint's RID is attached to the context's IDENTITY
 *    domain; while it is enabled, to a NESTED domain of its own whose
 *    stage-1 op runs the VT-d translation: root and context entry, PASID
 *    entry in scalable mode, and the second-level, first-level, nested
 *    (first level through second level) or pass-through translation the
 *    entry selects.  A PASID becomes routable to that domain when the
 *    guest issues a PASID-selective PASID-cache invalidation naming it
 *    (as the Linux driver does after writing a PASID entry).
 *  - Caches: the model's IOTLB (page translations tagged with source-id,
 *    PASID and domain ID) holds what the walks produced; nothing else is
 *    cached (no context, PASID or paging-structure caches: entries are
 *    read afresh on every miss).  The guest's invalidations
 *    (register-based through CCMD_REG and IOTLB_REG, or queued, a slice
 *    at a time: VIOMMU_VTD_QI_SLICE) drop them: context-cache, IOTLB
 *    (global, domain-selective, page-selective with the address mask; the
 *    IH hint is accepted and, with no paging-structure cache, has nothing
 *    more to keep), PASID-cache and PASID-based IOTLB invalidations; the
 *    device-TLB ones are no-ops.  Without an invalidation a translation
 *    the IOTLB holds stays in use, as on hardware.
 *  - Caching mode (VIOMMU_VTD_F_CM, CAP.CM): the driver must then
 *    invalidate after it makes entries present too (QEMU's mode for VFIO).
 *    The model's behaviour is the same either way; only the bit and the
 *    guest's extra invalidations differ.
 *  - Faults are written to the fault recording registers (CAP.FRO,
 *    CAP.NFR) with the architected reason code; FSTS and FECTL follow the
 *    spec, and the fault event interrupt is the @irq callback
 *    (VIOMMU_VTD_IRQ_FAULT): x86 MSIs are not memory writes.  The
 *    invalidation-wait descriptor writes its status (one atomic 32-bit
 *    store where the address is plain RAM) and, with IF set, raises VIOMMU_VTD_IRQ_INV (IECTL, ICS).
 *    The translation fails with -EFAULT and the core also reports
 *    VIOMMU_FAULT_STAGE1 to its own fault callback.
 *
 * Not modelled: interrupt remapping (ECAP.IR = 0: the guest runs with it
 * off; the interrupt entry cache descriptor is then an invalid type),
 * advanced fault logging, protected memory regions, page requests (PRS),
 * device-TLBs and ATS (ECAP.DT = 0: translated requests do not exist),
 * snoop / memory-type controls (accepted, ignored), the posted-interrupt
 * and performance-monitoring parts, more than one segment.
 * docs/VTD.md lists the rules (T1...) the model follows.
 *
 * Thread safety: every function may be called from any thread.  MMIO
 * accesses are serialised by a model lock; DMA translations may run on
 * any number of threads concurrently with them (the walk runs under the
 * model's state lock).  viommu_vtd_destroy() must not race any other call
 * on the model.  The @irq callback runs with no model lock held, on the
 * thread that raised it (an MMIO writer, or a DMA thread inside
 * viommu_translate()); it must not call back into the model or the core.
 */
#ifndef VIOMMU_VTD_H
#define VIOMMU_VTD_H

#include <viommu/common.h>
#include <viommu/core.h>
#include <viommu/mem.h>
#include <viommu/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

struct viommu_vtd;

/** Size of the register frame. */
#define VIOMMU_VTD_MMIO_SIZE 0x1000

/**
 * Descriptors run per slice.  A write of the invalidation queue tail runs
 * at most this many; the rest is run a slice at a time by each following
 * MMIO access (read or write, any register, before it is served) and by
 * viommu_vtd_poll(), IQH showing the progress.  Linux waits for an
 * invalidation-wait status while reading FSTS, which drives the queue.
 */
#define VIOMMU_VTD_QI_SLICE 256

/**
 * Most fault recording registers: they sit at CAP.FRO = 0x220, 16 bytes
 * each, and must end inside the 4 KiB frame.
 */
#define VIOMMU_VTD_MAX_NFR 128

/** Optional features (struct viommu_vtd_config.features). */
#define VIOMMU_VTD_F_QI      (1u << 0) /* ECAP.QI: invalidation queue */
#define VIOMMU_VTD_F_CM      (1u << 1) /* CAP.CM: caching mode */
#define VIOMMU_VTD_F_SM      (1u << 2) /* ECAP.SMTS + PASID: scalable mode */
#define VIOMMU_VTD_F_FL      (1u << 3) /* ECAP.FLTS (+NEST): first level */
#define VIOMMU_VTD_F_5LVL    (1u << 4) /* SAGAW 5-level, CAP.FL5LP */
#define VIOMMU_VTD_F_PT      (1u << 5) /* ECAP.PT: pass-through */
#define VIOMMU_VTD_F_DEFAULT 0x21u     /* QI | PT: what Linux needs */
#define VIOMMU_VTD_F_ALL     0x3fu

/** Interrupts, for the @irq callback. */
enum viommu_vtd_irq {
	VIOMMU_VTD_IRQ_FAULT = 0, /* fault event (FECTL/FEDATA/FEADDR) */
	VIOMMU_VTD_IRQ_INV = 1,   /* invalidation completion (IECTL) */
};

/**
 * struct viommu_vtd_config - creation parameters.  Zero means the default
 * shown.
 * @size:     sizeof(struct viommu_vtd_config) as the caller knows it (lets
 *            the struct grow at its end, as in link.h); 0 means this
 *            layout.  A larger @size is refused unless the bytes past what
 *            the library knows are zero.
 * @ctx:      the core context holding endpoints and domains (required).
 * @mem:      guest memory for tables and queues (required).
 * @log, @allocator: see common.h.
 * @features: VIOMMU_VTD_F_*; 0 means VIOMMU_VTD_F_DEFAULT.
 * @aw_bits:  MGAW, 39 or 48 (48; 57 with VIOMMU_VTD_F_5LVL); also the
 *            host address width the entries' address fields are checked
 *            against.
 * @nfr:      fault recording registers, 1..VIOMMU_VTD_MAX_NFR (8).
 * @iotlb_entries: the model's IOTLB, a power of two 4..65536 (1024).
 * @irq, @irq_opaque: interrupt callback (may be NULL).
 */
struct viommu_vtd_config {
	uint32_t size;
	struct viommu_ctx *ctx;
	struct viommu_mem *mem;
	struct viommu_log log;
	struct viommu_allocator allocator;
	uint32_t features;
	unsigned int aw_bits;
	unsigned int nfr;
	unsigned int iotlb_entries;
	void (*irq)(void *opaque, enum viommu_vtd_irq irq);
	void *irq_opaque;
};

/**
 * viommu_vtd_create() - create a model in its reset state (translation
 * off, every registered endpoint on the IDENTITY domain).
 * Return: 0; -EINVAL (NULL @cfg, @out, @cfg->ctx or @cfg->mem, unknown
 * feature, FL without SM, SM without QI, @aw_bits not 39/48/57 or 57
 * without 5LVL (and 5LVL with another), @nfr > VIOMMU_VTD_MAX_NFR,
 * @iotlb_entries not a power of two in 4..65536, @size larger than known
 * with non-zero bytes past it); -ENOMEM (allocation failed).
 */
VIOMMU_EXPORT int viommu_vtd_create(const struct viommu_vtd_config *cfg,
				    struct viommu_vtd **out);

/**
 * viommu_vtd_destroy() - detach the registered endpoints (their RIDs go to
 * the BLOCKED domain), destroy the model's domains and free it.  The
 * endpoints themselves stay.  NULL is accepted.
 */
VIOMMU_EXPORT void viommu_vtd_destroy(struct viommu_vtd *vtd);

/**
 * viommu_vtd_reset() - back to the reset state: registers, queue, fault
 * records; every endpoint is re-routed (IDENTITY) and its translations
 * dropped.  Return: 0; -EINVAL for NULL.
 */
VIOMMU_EXPORT int viommu_vtd_reset(struct viommu_vtd *vtd);

/**
 * viommu_vtd_mmio_read() - a guest read of @size bytes (4 or 8) at
 * @offset.  64-bit registers may be read whole or as two 32-bit halves;
 * 32-bit registers only as 32 bits.  Unknown offsets read as zero.
 * Return: 0 with *@val set; -EINVAL (NULL args, offset outside the frame,
 * size not 4 or 8, misaligned, an 8-byte access to a 32-bit register:
 * *@val is then 0).
 */
VIOMMU_EXPORT int viommu_vtd_mmio_read(struct viommu_vtd *vtd,
				       uint64_t offset, unsigned int size,
				       uint64_t *val);

/**
 * viommu_vtd_mmio_write() - a guest write.  Its side effects (global
 * commands, invalidations, one slice of the queue - VIOMMU_VTD_QI_SLICE -,
 * interrupts) are complete when it returns.  Reads and writes first run
 * the next slice of a queue a previous write left unfinished.  Writes to read-only or unknown registers are
 * ignored (one rate-limited log line).  Same access rules as reads.
 * Return: 0; -EINVAL (as for reads; nothing is written).
 */
VIOMMU_EXPORT int viommu_vtd_mmio_write(struct viommu_vtd *vtd,
					uint64_t offset, unsigned int size,
					uint64_t val);

/**
 * viommu_vtd_poll() - if the invalidation queue has descriptors left by a
 * slice, run the next slice and deliver its interrupts.  For an
 * embedder's idle loop or timer; MMIO accesses do the same.  Same
 * thread-safety as viommu_vtd_mmio_write().
 * Return: 1 (descriptors still left: call again), 0 (none), -EINVAL.
 */
VIOMMU_EXPORT int viommu_vtd_poll(struct viommu_vtd *vtd);

/**
 * viommu_vtd_add_endpoint() - put @ep (source-id = its ID) behind the
 * unit and attach it according to the current state.
 * Return: 0; -EINVAL (NULL, @ep of another context, ID above 0xffff);
 * -EEXIST (already added); -ENOMEM (allocation failed).  No core limit
 * surfaces here: an endpoint whose context entry needs a domain the core
 * refuses (max_domains) is blocked with a log line: its DMA is refused.
 */
VIOMMU_EXPORT int viommu_vtd_add_endpoint(struct viommu_vtd *vtd,
					  struct viommu_endpoint *ep);

/**
 * viommu_vtd_remove_endpoint() - take @ep out: its RID and PASIDs are
 * detached and the model forgets it.  Call it before
 * viommu_endpoint_destroy().
 * Return: 0; -EINVAL (NULL); -ENOENT (not added).
 */
VIOMMU_EXPORT int viommu_vtd_remove_endpoint(struct viommu_vtd *vtd,
					     struct viommu_endpoint *ep);

/** struct viommu_vtd_stats - counters since creation. */
struct viommu_vtd_stats {
	uint64_t translations;   /* translate ops run */
	uint64_t faults;         /* translate ops that failed */
	uint64_t faults_recorded;/* written to a fault recording register */
	uint64_t faults_lost;    /* overflow (FSTS.PFO) */
	uint64_t descriptors;    /* queued invalidation descriptors run */
	uint64_t queue_errors;   /* FSTS.IQE raised */
	uint64_t waits;          /* invalidation-wait descriptors */
	uint64_t ctx_invals;     /* context-cache invalidations */
	uint64_t iotlb_invals;   /* IOTLB + PASID-IOTLB invalidations */
	uint64_t iotlb_hits, iotlb_misses; /* the model's IOTLB */
	uint64_t iotlb_dropped;  /* IOTLB entries invalidated */
	uint64_t pasid_invals;   /* PASID-cache invalidations */
	uint64_t irqs;           /* interrupts signalled */
	/* guest-triggered log lines the rate limit dropped */
	uint64_t log_suppressed;
};

/**
 * viommu_vtd_stats() - snapshot the counters into @out, of which the
 * caller knows @size bytes (sizeof(struct viommu_vtd_stats) as it was
 * built): an older caller gets the counters it knows and nothing past
 * them is written, a newer one reads zero in the counters this library
 * lacks.  Thread-safe.
 * Return: 0; -EINVAL (NULL args, @size 0).
 */
VIOMMU_EXPORT int viommu_vtd_stats(struct viommu_vtd *vtd,
				   struct viommu_vtd_stats *out, size_t size);

/**
 * viommu_vtd_set_trace_sink() - typed trace points (<viommu/trace.h>):
 * VIOMMU_TRACE_VTD_REG_WRITE for each MMIO write, _GCMD for each global
 * command, _QI_DESC for each queued invalidation descriptor consumed,
 * _INVAL for each context-cache, IOTLB or PASID-cache invalidation done,
 * _FAULT for each translation fault.  @sink NULL (or a zero mask) turns
 * them off.  Any thread; the sink's function runs with a model lock held
 * and must not call back into the model.
 * Return: 0; -EINVAL (NULL @vtd, unknown mask bits, a @size with unknown
 * non-zero bytes).
 */
VIOMMU_EXPORT int viommu_vtd_set_trace_sink(struct viommu_vtd *vtd,
					    const struct viommu_trace_sink *sink);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_VTD_H */
