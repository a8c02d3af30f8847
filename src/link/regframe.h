/*
 * regframe.h - a device's register frame kept in shared guest RAM and
 * served by polling: the way a real guest drives a register-based IOMMU
 * model (SMMUv3 on arm64, VT-d on x86) when the VMM has no way to trap the
 * guest's accesses into our process (docs/SMMUV3-GUEST.md).
 *
 * Concepts
 *  - The guest's firmware tables (a device-tree node, a DMAR or IORT
 *    table) name a range of guest RAM as the device's MMIO frame; the
 *    kernel is kept off it (no-map reserved memory, memmap=) and its
 *    driver maps it like device memory.  Under TCG those are plain stores
 *    into RAM, which the VMM shares with us (a file the memory layer
 *    mmaps).
 *  - A model plugs in through an ops table (struct regframe_ops): its
 *    registers (offset, size 4 or 8, writable by the guest or not) and
 *    its read, write and poll callbacks.  The register list is also the
 *    FEED ORDER: in each round the writable registers whose frame value
 *    changed are handed to @write in list order, so a model puts the
 *    registers that configure (queue bases, IRQ configuration) before the
 *    ones that act on that configuration (enables, doorbells).
 *  - After any change, and every REGFRAME_REPUBLISH_ROUNDS quiet rounds
 *    (state that moves by itself: queue indexes advanced by DMA threads,
 *    error registers), every register's @read value is published back
 *    into the frame: a plain atomic store for read-only registers, a
 *    compare-and-swap against the last value seen for writable ones, so a
 *    guest store racing the publish is never overwritten - it is seen as
 *    a change in the next round.
 *  - One round does bounded work whatever the guest writes: at most one
 *    @write per register, at most REGFRAME_POLL_BUDGET @poll calls, one
 *    publish pass.
 *  - The frame is looked up through viommu_mem_ptr() at every round
 *    inside a memory read section, so a replaced region set (QEMU re-sends
 *    its memory map) is followed and nothing outside guest RAM is ever
 *    touched.  Until the frame's range is RAM with a host address (the VMM
 *    has not sent its memory yet) rounds do nothing.
 *
 * What polling cannot do (the model's documentation says how it copes):
 * the model sees values, not accesses - a repeated identical write is
 * invisible, two writes between rounds look like the last one, a 64-bit
 * register written as two halves may be seen half-done, access sizes and
 * stores to read-only registers are lost; reads have no side effects (a
 * register whose read changes state cannot be served); and no interrupts
 * reach the guest from here.
 *
 * A model plugs in with an ops table (regframe_smmuv3_ops,
 * regframe_vtd_ops); the embedder names the frame to the guest (a device-tree node
 * over no-map memory on arm64, a memmap= range named by the DMAR table on
 * x86) and runs one struct regframe per frame.
 *
 * Thread safety: regframe_round() and the thread of regframe_start() must
 * not run at once (the thread calls it); regframe_stats() may be called
 * from any thread at any time.  The ops callbacks run on the polling
 * thread with no regframe lock held.
 */
#ifndef VIOMMU_REGFRAME_H
#define VIOMMU_REGFRAME_H

#include <viommu/common.h>
#include <viommu/mem.h>
#include <viommu/regframe.h>
#include <pthread.h>
#include <stdbool.h>

#include "base/trace.h"
#include "base/util.h"

#define REGFRAME_MAX_REGS 512          /* registers one model may list */
#define REGFRAME_MAX_SIZE (1u << 20)   /* largest frame */
#define REGFRAME_POLL_BUDGET 64        /* @poll calls per round */
#define REGFRAME_REPUBLISH_ROUNDS 64   /* quiet rounds between publishes */
#define REGFRAME_IDLE_US 20            /* default nap when a round was idle */
#define REGFRAME_MAX_IDLE_US VIOMMU_REGFRAME_MAX_IDLE_US /* longest nap */

/* One register of the frame. */
struct regframe_reg {
	uint32_t offset;  /* in the frame; aligned to @size */
	uint8_t size;     /* 4 or 8 bytes */
	bool writable;    /* the guest writes it (fed to @write) */
};

/*
 * struct regframe_ops - a model's register interface.
 * @regs, @nregs: the registers, writable ones in feed order (above).
 * @frame_size:   bytes of the frame (every register inside it).
 * @read:         the value a guest read of @size bytes at @off returns;
 *                0 or -errno (the register is then not published).
 * @write:        a guest write; 0 or -errno (counted, logged, not retried).
 * @poll:         optional: more work of the model's own (a command queue
 *                consumed in slices): 1 if it did work and more is left,
 *                2 if it did work and none is left, 0 if it did nothing,
 *                <0 on error.  Called each round after the writes, while
 *                it returns 1, up to REGFRAME_POLL_BUDGET times; work done
 *                makes the round publish.
 */
struct regframe_ops {
	const struct regframe_reg *regs;
	unsigned int nregs;
	uint64_t frame_size;
	int (*read)(void *model, uint64_t off, unsigned int size,
		    uint64_t *val);
	int (*write)(void *model, uint64_t off, unsigned int size,
		     uint64_t val);
	int (*poll)(void *model);
};

/*
 * The SMMUv3 model's ops (regframe_smmuv3.c; @model is a struct
 * viommu_smmuv3): its registers in feed order.
 */
extern const struct regframe_ops regframe_smmuv3_ops;

/*
 * The VT-d model's ops (regframe_vtd.c; @model is a struct viommu_vtd):
 * its registers in feed order, every fault record a unit may have.
 */
extern const struct regframe_ops regframe_vtd_ops;

/*
 * struct regframe_config - creation parameters.
 * @size:    sizeof(struct regframe_config) as the caller knows it.
 * @ops, @model: the model (both required; @ops must outlive the frame).
 * @mem:     guest memory holding the frame (required).
 * @gpa:     the frame's guest-physical address (8-byte aligned).
 * @idle_us: nap after an idle round (0: REGFRAME_IDLE_US); doubled after
 *           each further idle round up to @max_idle_us, back to @idle_us
 *           as soon as the guest writes.
 * @max_idle_us: the longest nap (0: REGFRAME_MAX_IDLE_US; at most that);
 *           @idle_us is cut to it.  Equal to @idle_us: a fixed nap, so a
 *           guest write waits at most that long however quiet the guest
 *           was (what an invalidation wait costs; docs/VTD.md).  When
 *           given, the polling thread also sets its timer slack to 1 us
 *           (Linux adds up to 50 us to every sleep by default).
 * @log:     log sink.
 * @name:    for log lines ("smmuv3", copied up to 15 characters).
 * @after_round, @opaque: optional: called at the end of every round that
 *           found the frame, outside the memory read section (e.g. to read
 *           an event queue); @changed says whether the round fed, polled
 *           or published anything.
 * @trace:   optional: typed trace points (<viommu/trace.h>): a
 *           VIOMMU_TRACE_FRAME_WRITE per register fed, a _FRAME_ROUND per
 *           round that did something; copied; its function runs on the
 *           polling thread.
 */
struct regframe_config {
	size_t size;
	const struct regframe_ops *ops;
	void *model;
	struct viommu_mem *mem;
	uint64_t gpa;
	unsigned int idle_us;
	struct viommu_log log;
	const char *name;
	void (*after_round)(void *opaque, bool changed);
	void *opaque;
	const struct viommu_trace_sink *trace;
	unsigned int max_idle_us;
};

/* The counters are the public struct viommu_regframe_stats. */

struct regframe {
	const struct regframe_ops *ops;
	void *model;
	struct viommu_mem *mem;
	uint64_t gpa;
	unsigned int idle_us, max_idle_us;
	bool fixed_nap;       /* max_idle_us given: the poller thread's timer
			       * slack is 1 us, not the default 50 us */
	struct viommu_log log;
	void (*after_round)(void *opaque, bool changed);
	void *opaque;
	struct ratelimit rl;
	char name[16];
	uint64_t *last;       /* per register: the value we believe the frame holds */
	unsigned int quiet;   /* rounds since the last publish */
	bool primed;          /* last[] read from the frame once */
	struct viommu_regframe_stats st;
	struct trace tr;
	pthread_t thread;
	bool running;
	int stop;             /* atomic */
};

/*
 * regframe_create() - check @cfg and its ops table and set up a frame
 * (not yet polled).  Return: 0; -EINVAL (NULL or missing field, a register
 * misaligned, of a size other than 4 and 8, outside the frame or
 * overlapping another, too many registers, a frame too large or wrapping,
 * @gpa not 8-byte aligned, a @trace sink trace_set() refuses); -ENOMEM.
 */
int regframe_create(const struct regframe_config *cfg, struct regframe **out);

/* regframe_destroy() - stop the thread if running and free.  NULL is ok. */
void regframe_destroy(struct regframe *rf);

/*
 * regframe_round() - one round: feed changed writable registers, poll,
 * publish (see the top of this file).  *@changed (may be NULL) says
 * whether anything was fed, polled or published.
 * Return: 0; -EFAULT if the frame is not (wholly) guest RAM with a host
 * address (nothing was done; counted in absent).
 */
int regframe_round(struct regframe *rf, bool *changed);

/*
 * regframe_start() - poll in a thread of its own until regframe_stop().
 * Return: 0; -EBUSY (already running); -errno from pthread_create.
 */
int regframe_start(struct regframe *rf);

/*
 * regframe_stop() - ask the thread to stop and join it: it notices within
 * one nap (at most REGFRAME_MAX_IDLE_US) plus one round.  No-op when not
 * running.
 */
void regframe_stop(struct regframe *rf);

/* regframe_stats() - a snapshot of the counters (relaxed reads). */
void regframe_stats(const struct regframe *rf, struct viommu_regframe_stats *st);

#endif /* VIOMMU_REGFRAME_H */
