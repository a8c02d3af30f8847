/*
 * dma_engine.h - a DMA-engine PCI endpoint whose every access to guest
 * memory goes through the translation core with its requester ID.
 *
 * It speaks the register subset of QEMU's `edu` device (so one guest
 * program drives both) plus extensions; the register map is the contract
 * in docs/REAL-GUEST.md.  Points the contract leaves open, fixed here:
 *
 *  - Access sizes: 32-bit registers take 4-byte accesses only (edu allows
 *    nothing else below 0x80); 64-bit registers take 8 bytes, or 4 bytes
 *    at either half.  A 4-byte write to the low half sets the whole
 *    register (the high half becomes 0, as edu); one to the high half (+4)
 *    sets only the high half, so "low then high" programs a 64-bit value.
 *    Other sizes, unaligned accesses and unknown or write-only registers
 *    read all ones; such writes are dropped.  The device buffer window at
 *    BAR0 0x40000 takes 1, 2, 4 and 8-byte accesses (edu has nothing
 *    there).
 *  - DMA needs bus mastering (PCI COMMAND bit 2): without it a register
 *    DMA fails like a bad range (EXT_STATUS bit 0) and a doorbell is a
 *    ring error (bit 1); nothing moves.
 *  - A DMA_CMD write without bit 0 is ignored (as edu).  DMA_COUNT 0 is a
 *    DMA that moves nothing.  The completion interrupt (DMA_CMD bit 2, ring
 *    flags bit 0: IRQ_STATUS bit 8) is raised when the DMA ends, failed or
 *    not; EXT_STATUS tells which.
 *  - A translation fault (or a translated address that is not guest RAM:
 *    reason 0) stops the transfer: bytes before the faulting piece have
 *    moved, nothing after.  EXT_FAULT_ADDR/INFO keep the last fault; a bad
 *    device range leaves them alone.
 *  - FACTORIAL computes n! modulo 2^32 at once; with STATUS bit 7 set it
 *    raises IRQ_STATUS bit 0.
 *  - Ring: RING_SIZE accepts only powers of two 1..4096 (other writes are
 *    dropped); writing RING_BASE or RING_SIZE sets RING_HEAD and RING_TAIL
 *    to 0.  A RING_TAIL write >= RING_SIZE, or with no ring configured, is
 *    a ring error (EXT_STATUS bit 1) and processes nothing (work an
 *    earlier doorbell started goes on).  A doorbell sets RING_TAIL and
 *    EXT_STATUS.RING_BUSY (bit 2, read-only) and processes the first
 *    slice; each later BAR access, read or write, processes the next slice
 *    before it is served, until RING_HEAD reaches RING_TAIL (RING_BUSY
 *    clears), a ring error stops the ring (RING_BUSY clears, RING_HEAD at
 *    the entry), bus mastering goes off (a ring error), or RING_BASE,
 *    RING_SIZE or a reset rewinds it.  A slice is at most
 *    DMA_ENGINE_SLICE_ENTRIES entries and ends after the entry that
 *    reaches DMA_ENGINE_SLICE_BYTES copied.  A driver polls RING_HEAD (as
 *    it must for edu's timer-driven DMA too).  An entry is bad (status 3)
 *    if len > DMA_ENGINE_RING_MAX_LEN, an address range wraps, flags has
 *    unknown bits or rsvd is not 0; a zero len completes with nothing
 *    moved.  An entry whose copy faults gets status 2 and sets EXT_STATUS
 *    bit 0; processing goes on with the next entry.  A ring entry that
 *    cannot be read, or whose status cannot be written, sets EXT_STATUS
 *    bit 1 and stops with RING_HEAD at that entry.
 *  - EXT_DMA_COUNT counts register DMAs and ring entries that completed
 *    without error.
 *  - Reset (PCI function reset) clears every register and the device
 *    buffer; the statistics are kept.
 *  - PASID and PRI (docs/VIRTIO-IOMMU-TABLES.md, the vSVM endpoint):
 *    PASID (bit 31 enable, bits 19:0 the PASID) tags every translation of
 *    the engine's DMA.  With PRI_CTRL bit 0 set and page request ops
 *    given (dma_engine_set_pri()), a register DMA first looks up each
 *    page as PCIe ATS would (viommu_domain_lookup(): no fault recorded);
 *    for the first page it cannot use it sends a page request (one group
 *    per request, last set) through the ops and parks: STATUS bit 0
 *    (computing) and PRI_STATUS.WAIT stay set, nothing moves.  Each later
 *    BAR access polls the answer: Success runs the DMA again from the
 *    start (another missing page asks again, at most
 *    DMA_ENGINE_PRI_ROUNDS times); Invalid or Failure ends it as a
 *    faulting DMA (EXT_STATUS bit 0, PRI_STATUS.GAVE_UP) and Failure also
 *    clears PRI_CTRL (PCIe: the function stops using PRI).  The engine
 *    holds at most one outstanding group.
 *
 * Thread safety: one lock per engine serialises BAR accesses (they may
 * come from several link threads), resets and statistics.  DMA runs under
 * it, inside short guest-memory read sections, at most one register DMA
 * or one ring slice per access.
 */
#ifndef VIOMMU_DMA_ENGINE_H
#define VIOMMU_DMA_ENGINE_H

#include <viommu/core.h>
#include <pthread.h>

#include "transport/pci.h"

/* PCI identity (edu's IDs). */
#define DMA_ENGINE_VENDOR 0x1234
#define DMA_ENGINE_DEVICE 0x11e8
#define DMA_ENGINE_REVISION 0x10
#define DMA_ENGINE_CLASS 0x00ff00
#define DMA_ENGINE_SUBSYS_VENDOR 0x1af4
#define DMA_ENGINE_SUBSYS 0x1100
#define DMA_ENGINE_BAR_SIZE (1u << 20)

/* The device buffer: device address and BAR0 offset, and its size. */
#define DMA_ENGINE_BUF_ADDR 0x40000u
#define DMA_ENGINE_BUF_SIZE (256u << 10)
/* Largest len of one ring entry. */
#define DMA_ENGINE_RING_MAX_LEN (16u << 20)
#define DMA_ENGINE_RING_MAX 4096u
#define DMA_ENGINE_RING_ENTRY 32u
/* Ring work per BAR access (see "Ring" above). */
#define DMA_ENGINE_SLICE_ENTRIES 256u
#define DMA_ENGINE_SLICE_BYTES (4u << 20)

/* Registers (BAR0 offsets). */
#define DMAE_ID 0x00
#define DMAE_LIVENESS 0x04
#define DMAE_FACTORIAL 0x08
#define DMAE_STATUS 0x20
#define DMAE_IRQ_STATUS 0x24
#define DMAE_IRQ_RAISE 0x60
#define DMAE_IRQ_ACK 0x64
#define DMAE_DMA_SRC 0x80
#define DMAE_DMA_DST 0x88
#define DMAE_DMA_COUNT 0x90
#define DMAE_DMA_CMD 0x98
#define DMAE_EXT_ID 0x100
#define DMAE_EXT_VERSION 0x104
#define DMAE_EXT_STATUS 0x108
#define DMAE_EXT_FAULT_ADDR 0x110
#define DMAE_EXT_FAULT_INFO 0x118
#define DMAE_EXT_BUF_SIZE 0x120
#define DMAE_EXT_DMA_COUNT 0x124
#define DMAE_RING_BASE 0x140
#define DMAE_RING_SIZE 0x148
#define DMAE_RING_HEAD 0x14c
#define DMAE_RING_TAIL 0x150
#define DMAE_PASID 0x160
#define DMAE_PRI_CTRL 0x164
#define DMAE_PRI_STATUS 0x168 /* read-only */

/* Register values and bits. */
#define DMAE_ID_VALUE 0x010000edu
#define DMAE_EXT_ID_VALUE 0x4d4f4956u /* "VIOM" */
#define DMAE_EXT_VERSION_VALUE 1u
#define DMAE_STATUS_COMPUTING (1u << 0)
#define DMAE_STATUS_IRQFACT (1u << 7)
#define DMAE_IRQ_FACT (1u << 0)
#define DMAE_IRQ_DMA (1u << 8)
#define DMAE_CMD_START (1u << 0)
#define DMAE_CMD_TO_RAM (1u << 1) /* device buffer -> RAM */
#define DMAE_CMD_IRQ (1u << 2)
#define DMAE_EXT_ERR_DMA (1u << 0)
#define DMAE_EXT_ERR_RING (1u << 1)
#define DMAE_EXT_RING_BUSY (1u << 2) /* ring work left (read-only) */
#define DMAE_PASID_EN (1u << 31)
#define DMAE_PASID_MASK 0xfffffu
#define DMAE_PRI_EN (1u << 0)
#define DMAE_PRI_WAIT (1u << 0)    /* a page request is outstanding */
#define DMAE_PRI_GAVE_UP (1u << 1) /* the last DMA ended Invalid/Failure */
#define DMA_ENGINE_PRI_ROUNDS 64u

/*
 * struct dma_engine_pri_ops - how the engine's page requests reach the
 * IOMMU (the embedder glues them to e.g. viommu_virtio_iommu_page_request
 * with the engine's endpoint ID).  Called with the engine lock held.
 * @request:  send a page request; 0, or a negative errno (-EBUSY: try
 *            again later; anything else: give up).
 * @response: the answer to @grpid: 0 with *@code set (0 Success, 1
 *            Invalid, 2 Failure), -EAGAIN (not yet), other: give up.
 */
struct dma_engine_pri_ops {
	int (*request)(void *opaque, uint32_t pasid, uint64_t iova,
		       unsigned int perm, bool last, uint32_t grpid);
	int (*response)(void *opaque, uint32_t grpid, int *code);
};

/* Ring entry: {le64 src; le64 dst; le32 len; le32 flags; le32 status;
 * le32 rsvd}. */
#define DMAE_RING_F_IRQ (1u << 0)
#define DMAE_RING_DONE 1u
#define DMAE_RING_FAULT 2u
#define DMAE_RING_BAD 3u

/*
 * struct dma_engine_stats - counters since init (reset keeps them).
 * @dmas:          register-mode DMAs started.
 * @bytes_read:    payload bytes the device read from guest memory.
 * @bytes_written: payload bytes the device wrote to guest memory.
 * @faults:        transfers stopped by a translation fault (or a
 *                 non-RAM target), ring reads included.
 * @errors:        bad device ranges, DMA without bus mastering, bad ring
 *                 entries, ring errors, refused RING_SIZE values (each
 *                 counted; their log lines are rate-limited, see
 *                 struct ratelimit in base/util.h).
 * @log_suppressed: log lines of those errors the rate limit dropped.
 * @ring_doorbells, @ring_entries: RING_TAIL writes; entries processed
 *                 (any status).
 * @ring_slices:   ring slices run (see "Ring" above).
 * @irqs:          interrupts raised (IRQ_STATUS bits set).
 */
struct dma_engine_stats {
	uint64_t dmas;
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t faults;
	uint64_t errors;
	uint64_t ring_doorbells;
	uint64_t ring_entries;
	uint64_t ring_slices;
	uint64_t irqs;
	uint64_t log_suppressed;
	uint64_t page_requests; /* page requests sent */
	uint64_t pri_retries;   /* DMAs run again after Success */
};

/* Register state (guest visible). */
struct dma_engine_regs {
	uint32_t liveness;
	uint32_t fact;
	uint32_t status;
	uint32_t irq_status;
	uint64_t src, dst, count, cmd;
	uint32_t ext_status;
	uint64_t fault_addr;
	uint32_t fault_info;
	uint32_t dma_count;
	uint64_t ring_base;
	uint32_t ring_size, ring_head, ring_tail;
	uint32_t pasid, pri_ctrl, pri_status;
};

/* PRI state of the one parked register DMA. */
struct dma_engine_pri {
	bool parked, asked;
	uint32_t grpid, rounds;
	uint64_t page;
	unsigned int perm;
};

/* struct dma_engine - one engine; embed it, treat the fields as private. */
struct dma_engine {
	struct pci_func pci;
	pthread_mutex_t lock;
	struct viommu_endpoint *ep;
	struct viommu_mem *mem;
	struct viommu_log log;
	struct viommu_allocator alloc;
	char name[32];
	uint8_t *buf; /* DMA_ENGINE_BUF_SIZE bytes */
	struct dma_engine_regs r;
	struct dma_engine_stats stats;
	struct ratelimit rl;        /* guest-error log lines */
	const struct dma_engine_pri_ops *pri_ops;
	void *pri_opaque;
	struct dma_engine_pri pri;
	uint32_t next_grp;
};

/*
 * dma_engine_init() - set up @e as a PCI function (BAR0, 1 MiB, 32-bit
 * memory; INTx pin A) whose DMA is made by endpoint @ep over @mem.
 * @name: for log lines (copied, cut to 31 bytes); NULL for "dma".
 * @log, @a: may be NULL.
 * Register @e's function (dma_engine_func()) with a link afterwards.
 * Return: 0; -EINVAL (NULL @e, @ep or @mem); -ENOMEM; or the error of
 * pci_func_add_bar().
 */
int dma_engine_init(struct dma_engine *e, struct viommu_endpoint *ep,
		    struct viommu_mem *mem, const char *name,
		    const struct viommu_log *log,
		    const struct viommu_allocator *a);

/* dma_engine_destroy() - free what init took; no access may race it. */
void dma_engine_destroy(struct dma_engine *e);

/*
 * dma_engine_set_pri() - give the engine page request @ops (NULL: none;
 * PRI_CTRL then has no effect).  Takes the engine lock.
 */
void dma_engine_set_pri(struct dma_engine *e,
			const struct dma_engine_pri_ops *ops, void *opaque);

/* dma_engine_func() - the engine's PCI function (for the link). */
struct pci_func *dma_engine_func(struct dma_engine *e);

/* dma_engine_stats() - copy the counters.  Return: 0; -EINVAL. */
int dma_engine_stats(struct dma_engine *e, struct dma_engine_stats *out);

/*
 * dma_engine_reset() - device reset: registers and buffer to power-on
 * values and INTx lowered.  It is also the function's reset_fn, so
 * pci_func_reset() (mpqemu DEVICE_RESET) ends here.
 */
void dma_engine_reset(struct dma_engine *e);

#endif /* VIOMMU_DMA_ENGINE_H */
