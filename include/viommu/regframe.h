/*
 * regframe.h - a register-based IOMMU model (SMMUv3, VT-d) served to a
 * real guest through a register frame kept in shared guest RAM and
 * polled, for VMMs that cannot trap the guest's MMIO accesses into the
 * process that runs the model (a vfio-user server beside QEMU, say).
 *
 * The embedder reserves a range of guest RAM for the frame (a no-map
 * reserved-memory node on arm64, `memmap=SIZE$GPA` on x86), names it to
 * the guest as the IOMMU's MMIO frame (device tree / IORT, or the DMAR of
 * viommu_dmar_build()), and runs one viommu_regframe per frame.  Each
 * round feeds the writable registers whose frame value changed to the
 * model in a fixed order (configuration before enables and doorbells),
 * lets the model work through its queues in bounded slices, and
 * publishes every register's value back into the frame (a
 * compare-and-swap for writable ones, so a racing guest store is never
 * lost).  One round does bounded work whatever the guest writes.
 *
 * What polling cannot do: the model sees values, not accesses (a repeated
 * identical write is invisible, two writes between rounds look like the
 * last, a 64-bit register written as two halves may be seen half-done);
 * reads have no side effects; no interrupt reaches the guest from here
 * (drain the fault/event records in @after_round, as viommu-server does).
 * docs/SMMUV3-GUEST.md and docs/VTD.md say how each model copes.
 *
 * Thread safety: viommu_regframe_round() and the thread of
 * viommu_regframe_start() must not run at once; viommu_regframe_stats()
 * may be called from any thread at any time; create/destroy/start/stop
 * from one thread.  The callbacks run on the polling thread.
 */
#ifndef VIOMMU_REGFRAME_API_H
#define VIOMMU_REGFRAME_API_H

#include <viommu/common.h>
#include <viommu/mem.h>
#include <viommu/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

struct viommu_regframe;

/** The longest nap between polling rounds, in microseconds. */
#define VIOMMU_REGFRAME_MAX_IDLE_US 2000u

/** The model behind a frame. */
enum viommu_regframe_model {
	VIOMMU_REGFRAME_SMMUV3 = 1, /* @model is a struct viommu_smmuv3 */
	VIOMMU_REGFRAME_VTD = 2,    /* @model is a struct viommu_vtd */
};

/**
 * struct viommu_regframe_config - creation parameters.
 * @size:    sizeof(struct viommu_regframe_config) as the caller knows it;
 *           0 means the first version (the fields below).
 * @kind, @model: the model (both required; the model outlives the frame).
 * @mem:     guest memory holding the frame (required; the model's).
 * @gpa:     the frame's guest-physical address (8-byte aligned); the frame
 *           is 128 KiB for SMMUv3 (both pages), 4 KiB for VT-d.
 * @idle_us: nap after an idle round (0: 20 us), doubled after each further
 *           idle round up to @max_idle_us.
 * @max_idle_us: the longest nap (0: 2000 us, also the most); @idle_us
 *           is cut to it.  Equal to @idle_us: a fixed nap, so a guest
 *           write waits at most that long however quiet the guest was.
 *           When given, the polling thread also sets its timer slack to
 *           1 us (Linux adds up to 50 us to every sleep by default).
 * @log:     log sink (lines a guest can trigger are rate-limited).
 * @name:    for log lines (copied, up to 15 characters; NULL "regframe").
 * @after_round, @opaque: optional, called at the end of every round that
 *           found the frame; @changed says whether it fed, polled or
 *           published anything.
 * @trace:   optional typed trace points (VIOMMU_TRACE_FRAME_*); copied.
 */
struct viommu_regframe_config {
	uint32_t size;
	enum viommu_regframe_model kind;
	void *model;
	struct viommu_mem *mem;
	uint64_t gpa;
	unsigned int idle_us;
	unsigned int max_idle_us;
	struct viommu_log log;
	const char *name;
	void (*after_round)(void *opaque, bool changed);
	void *opaque;
	const struct viommu_trace_sink *trace;
};

/** struct viommu_regframe_stats - counters since creation. */
struct viommu_regframe_stats {
	uint64_t rounds;      /* rounds run */
	uint64_t absent;      /* rounds the frame was not guest RAM */
	uint64_t writes;      /* values fed to the model */
	uint64_t write_errors;
	uint64_t publishes;   /* publish passes */
	uint64_t cas_lost;    /* publishes a guest store won (seen next round) */
	uint64_t polls;       /* model work slices that did work */
	uint64_t poll_capped; /* rounds that hit the per-round slice budget */
};

/**
 * viommu_regframe_create() - check @cfg and set a frame up (not polled
 * until viommu_regframe_start() or viommu_regframe_round()).
 * Return: 0; -EINVAL (NULL @cfg, @out, @model or @mem, an unknown @kind,
 * @gpa not 8-byte aligned or the frame wrapping the address space, a
 * @size larger than known with non-zero bytes past what the library
 * knows, a @trace sink with unknown bits); -ENOMEM.
 */
VIOMMU_EXPORT int
viommu_regframe_create(const struct viommu_regframe_config *cfg,
		       struct viommu_regframe **out);

/** viommu_regframe_destroy() - stop polling and free.  NULL is ok. */
VIOMMU_EXPORT void viommu_regframe_destroy(struct viommu_regframe *rf);

/**
 * viommu_regframe_start() - poll in a thread of its own until
 * viommu_regframe_stop() or destroy.
 * Return: 0; -EINVAL (NULL); -EBUSY (already running); -errno of
 * pthread_create.
 */
VIOMMU_EXPORT int viommu_regframe_start(struct viommu_regframe *rf);

/**
 * viommu_regframe_stop() - stop the thread and join it: it notices within
 * one nap (at most 2 ms) plus one round.  No-op when not running.
 */
VIOMMU_EXPORT void viommu_regframe_stop(struct viommu_regframe *rf);

/**
 * viommu_regframe_round() - one round on the caller's thread (for an
 * embedder that polls from its own loop instead of starting a thread).
 * *@changed (may be NULL) says whether anything was fed, polled or
 * published.
 * Return: 0; -EINVAL (NULL @rf); -EFAULT (the frame is not wholly guest
 * RAM with a host address yet: nothing done, counted in @absent).
 */
VIOMMU_EXPORT int viommu_regframe_round(struct viommu_regframe *rf,
					bool *changed);

/**
 * viommu_regframe_stats() - copy the counters into @out, of which the
 * caller knows @size bytes (sizeof(struct viommu_regframe_stats) as it
 * was built).  Relaxed reads: each counter is exact, the set is not a
 * snapshot.  Return: 0; -EINVAL (NULL, or @size 0).
 */
VIOMMU_EXPORT int viommu_regframe_stats(const struct viommu_regframe *rf,
					struct viommu_regframe_stats *out,
					size_t size);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_REGFRAME_API_H */
