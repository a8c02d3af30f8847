/*
 * virtio_iommu.h - the virtio-iommu device (VIRTIO 1.3 §5.13, device ID 23)
 * on the translation core.
 *
 * The device decodes ATTACH, DETACH, MAP, UNMAP and PROBE requests from its
 * request queue and turns them into core calls on the context it was given;
 * endpoint IDs are the core's endpoint IDs (the embedder creates the
 * endpoints: an unknown ID answers NOENT).  Virtio-iommu domain IDs map to
 * core PAGING domains created on first ATTACH and destroyed when their last
 * endpoint leaves (or to the core's IDENTITY domain for ATTACH_F_BYPASS).
 * Failed endpoint translations become fault reports on the event queue.
 *
 * It is strict: every device requirement of the spec is enforced (see
 * docs/VIRTIO-IOMMU.md for the rule list D1-D37 and how each is met), and a
 * malformed request gets the status its rule names and one log line.
 *
 * The device is transport-agnostic: hand viommu_virtio_iommu_dev() to a
 * transport (see virtio.h).
 */
#ifndef VIOMMU_VIRTIO_IOMMU_H
#define VIOMMU_VIRTIO_IOMMU_H

#include <viommu/core.h>
#include <viommu/virtio.h>
#include <viommu/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Feature bits (device-specific). */
#define VIOMMU_VIRTIO_IOMMU_F_INPUT_RANGE 0
#define VIOMMU_VIRTIO_IOMMU_F_DOMAIN_RANGE 1
#define VIOMMU_VIRTIO_IOMMU_F_MAP_UNMAP 2
#define VIOMMU_VIRTIO_IOMMU_F_BYPASS 3 /* legacy: never offered */
#define VIOMMU_VIRTIO_IOMMU_F_PROBE 4
#define VIOMMU_VIRTIO_IOMMU_F_MMIO 5
#define VIOMMU_VIRTIO_IOMMU_F_BYPASS_CONFIG 6
/*
 * Page-table handover (docs/VIRTIO-IOMMU-TABLES.md; the 2021 RFC series,
 * never merged into VIRTIO): ATTACH_TABLE, INVALIDATE and the table PROBE
 * properties; page requests on the event queue and PAGE_RESP.  Offered
 * only when @features in the config asks for them.
 */
#define VIOMMU_VIRTIO_IOMMU_F_ATTACH_TABLE 8
#define VIOMMU_VIRTIO_IOMMU_F_PAGE_REQ 10

/** Default MSI doorbell window reported for x86 endpoints. */
#define VIOMMU_X86_MSI_START 0xfee00000ull
#define VIOMMU_X86_MSI_LAST 0xfeefffffull

struct viommu_virtio_iommu;

/**
 * struct viommu_virtio_iommu_config - device parameters.  Zero fields take
 * the default in brackets.
 * @size:           sizeof(struct viommu_virtio_iommu_config) as the caller
 *                  knows it; 0 means the first layout (@ctx to @log).
 *                  Fields past @size read as zero; a larger @size whose
 *                  unknown bytes are not all zero is refused (docs/API.md,
 *                  "Structs that grow").
 * @ctx, @mem:      the core context (required) and its guest memory
 *                  (required, and the same as the context's: the rings
 *                  live there and MAP targets are its addresses).
 * @features:       device-specific feature bits to offer [INPUT_RANGE |
 *                  DOMAIN_RANGE | MAP_UNMAP | PROBE | MMIO | BYPASS_CONFIG];
 *                  MAP_UNMAP is always offered, legacy BYPASS never.
 * @ring_features:  transport-independent bits to offer [INDIRECT_DESC |
 *                  EVENT_IDX | RING_PACKED]; VERSION_1 is always offered.
 * @page_size_mask: [0x1000, 4 KiB only]; must not be 0 after defaults.
 * @input_start, @input_end: IOVA range [0, 2^48 - 1] (end 0 = default).
 * @domain_start, @domain_end: domain IDs [0, 2^32 - 1] (end 0 = default).
 * @probe_size:     bytes of PROBE properties [512], multiple of 4, >= 64.
 * @boot_bypass:    `bypass` after system reset [false].
 * @no_msi_region:  do not report the x86 MSI region in PROBE (it is also
 *                  added to every endpoint as a core MSI reserved region).
 * @queue_size:     maximum queue size [256], power of two <= 1024.
 * @event_backlog:  fault reports kept while the driver has posted no event
 *                  buffer [64]; older ones are dropped (counted).
 * @log:            log sink.
 * Page-table handover (used only when @features has ATTACH_TABLE):
 * @pasid_bits:     PASID width advertised and enforced [20], 1..20.
 * @pri_groups:     outstanding page request groups [64], 1..512.
 * @pri_timeout_ms: a group the driver has not answered after this long is
 *                  answered FAILURE by the device [1000].
 * @clock_ms:       the clock of that timeout, in ms [NULL:
 *                  CLOCK_MONOTONIC]; lets a simulation or a test run it
 *                  deterministically.  Called with the device lock held.
 * @allocator:      the device's host allocations [malloc/free] (lets an
 *                  embedder inject faults or account memory, as with the
 *                  context and SMMUv3).
 */
struct viommu_virtio_iommu_config {
	uint32_t size;
	struct viommu_ctx *ctx;
	struct viommu_mem *mem;
	uint64_t features;
	uint64_t ring_features;
	uint64_t page_size_mask;
	uint64_t input_start, input_end;
	uint32_t domain_start, domain_end;
	uint32_t probe_size;
	bool boot_bypass;
	bool no_msi_region;
	uint16_t queue_size;
	uint32_t event_backlog;
	struct viommu_log log;
	uint8_t pasid_bits;
	uint16_t pri_groups;
	uint32_t pri_timeout_ms;
	uint64_t (*clock_ms)(void *opaque);
	void *clock_opaque;
	struct viommu_allocator allocator;
};

/**
 * viommu_virtio_iommu_create() - create the device.  It installs itself as
 * the consumer of the context's faults (each becomes a fault report on the
 * event queue) and chains to the handler the context had: the embedder's
 * callback still sees every fault, after the device queued its report.
 * viommu_virtio_iommu_destroy() puts that handler back.  One virtio-iommu
 * per context.
 * Return: 0; -EINVAL (missing ctx/mem, @mem not the context's memory, a
 * @size with unknown non-zero bytes, page_size_mask 0, bad ranges,
 * probe_size, queue_size); -ENOMEM (allocation failed).
 */
VIOMMU_EXPORT int
viommu_virtio_iommu_create(const struct viommu_virtio_iommu_config *cfg,
			   struct viommu_virtio_iommu **out);

/** viommu_virtio_iommu_destroy() - destroy the device; NULL is accepted. */
VIOMMU_EXPORT void viommu_virtio_iommu_destroy(struct viommu_virtio_iommu *vi);

/** viommu_virtio_iommu_dev() - the virtio device, for a transport. */
VIOMMU_EXPORT struct viommu_virtio_dev *
viommu_virtio_iommu_dev(struct viommu_virtio_iommu *vi);

/**
 * viommu_virtio_iommu_report_fault() - queue a fault report on the event
 * queue (the context's fault callback does this for translation faults;
 * front ends may inject others).  Return: 0; -EINVAL; -ENOSPC (backlog
 * full, report dropped).
 */
VIOMMU_EXPORT int
viommu_virtio_iommu_report_fault(struct viommu_virtio_iommu *vi,
				 const struct viommu_fault *fault);

/** Request types and statuses, for statistics and tracing. */
enum {
	VIOMMU_VI_REQ_ATTACH = 1,
	VIOMMU_VI_REQ_DETACH = 2,
	VIOMMU_VI_REQ_MAP = 3,
	VIOMMU_VI_REQ_UNMAP = 4,
	VIOMMU_VI_REQ_PROBE = 5,
	VIOMMU_VI_REQ_TYPES = 6, /* index 0 counts unknown types */
};
enum {
	VIOMMU_VI_S_OK = 0,
	VIOMMU_VI_S_IOERR = 1,
	VIOMMU_VI_S_UNSUPP = 2,
	VIOMMU_VI_S_DEVERR = 3,
	VIOMMU_VI_S_INVAL = 4,
	VIOMMU_VI_S_RANGE = 5,
	VIOMMU_VI_S_NOENT = 6,
	VIOMMU_VI_S_FAULT = 7,
	VIOMMU_VI_S_NOMEM = 8, /* a core or device limit (core -ENOSPC) or no
				  host memory (-ENOMEM): the spec has one
				  status for both; the WARN line tells */
	VIOMMU_VI_S_COUNT = 9,
};

/** Request types of the page-table handover (not counted in requests[]). */
enum {
	VIOMMU_VI_REQ_ATTACH_TABLE = 6,
	VIOMMU_VI_REQ_INVALIDATE = 7,
	VIOMMU_VI_REQ_PAGE_RESP = 8,
};

/** struct viommu_virtio_iommu_stats - counters since creation. */
struct viommu_virtio_iommu_stats {
	uint64_t requests[VIOMMU_VI_REQ_TYPES][VIOMMU_VI_S_COUNT];
	uint64_t kicks;
	uint64_t events_sent;
	uint64_t events_dropped;
	uint64_t needs_reset; /* times the device entered NEEDS_RESET */
	/*
	 * Log lines a guest triggered that the rate limit dropped (at most
	 * 32 lines per 5 s per source; the first line after a drop says
	 * how many).  The counters above still count every event.
	 */
	uint64_t log_suppressed;
};

/**
 * viommu_virtio_iommu_stats() - copy the counters into @out, of which the
 * caller knows @size bytes (sizeof(struct viommu_virtio_iommu_stats) as
 * it was built): an older caller gets the counters it knows and nothing
 * past them is written, a newer one reads zero in the counters this
 * library lacks.  Thread-safe.
 * Return: 0; -EINVAL (NULL args, @size 0).
 */
VIOMMU_EXPORT int
viommu_virtio_iommu_stats(struct viommu_virtio_iommu *vi,
			  struct viommu_virtio_iommu_stats *out, size_t size);

/**
 * viommu_virtio_iommu_set_trace() - call @fn after each request with its
 * type, status and a one-line description (for `viommu-server --trace`).
 * NULL stops tracing.  Called with the device lock held.
 */
VIOMMU_EXPORT void viommu_virtio_iommu_set_trace(
	struct viommu_virtio_iommu *vi,
	void (*fn)(void *opaque, uint8_t type, uint8_t status,
		   const char *line),
	void *opaque);

/* ------------------------------------------------------------------ */
/* Page-table handover and page requests (docs/VIRTIO-IOMMU-TABLES.md)  */

/** Page request permission bit beyond VIOMMU_READ/WRITE/EXEC. */
#define VIOMMU_VI_PRI_PRIV (1u << 3)

/** PAGE_RESP codes (the request's resp_code). */
enum viommu_vi_page_resp {
	VIOMMU_VI_PAGE_RESP_SUCCESS = 0, /* populated: retry the access */
	VIOMMU_VI_PAGE_RESP_INVALID = 1, /* the access is invalid: give up */
	VIOMMU_VI_PAGE_RESP_FAILURE = 2, /* unrecoverable: disable PRI */
};

/** struct viommu_virtio_iommu_table_stats - handover counters. */
struct viommu_virtio_iommu_table_stats {
	uint64_t requests[3][VIOMMU_VI_S_COUNT]; /* ATTACH_TABLE, INVALIDATE,
						    PAGE_RESP by status */
	uint64_t walks;          /* stage-1 walks of guest tables */
	uint64_t walk_faults;    /* walks that found no usable entry */
	uint64_t page_requests;  /* page requests queued */
	uint64_t page_req_sent;  /* page requests written to the event queue */
	uint64_t page_req_busy;  /* refused: groups or backlog full */
	uint64_t timeouts;       /* groups answered FAILURE by the device */
	uint64_t responses;      /* PAGE_RESP matching an outstanding group */
};

/**
 * viommu_virtio_iommu_page_request() - endpoint @endpoint (playing a PCIe
 * function with PRI) asks for the page holding @iova, with @perm
 * (VIOMMU_READ/WRITE/EXEC, VIOMMU_VI_PRI_PRIV), in page request group
 * @grpid (0..511), @last on the group's last request, for @pasid (or
 * VIOMMU_NO_PASID).  The request goes to the driver as a page request on
 * the event queue (V22); the group stays outstanding until the driver's
 * PAGE_RESP, a timeout (pri_timeout_ms) or a reset, and its answer is
 * collected with viommu_virtio_iommu_page_response().
 * Thread-safe; takes the device lock (do not call it from a transport
 * callback of this device).
 * Return: 0 queued; -EINVAL (NULL, unknown @perm bit, @grpid > 511,
 * @pasid past pasid_bits, @perm empty); -EOPNOTSUPP (PAGE_REQ not
 * negotiated or the driver not running); -ENOENT (no such endpoint, or
 * the endpoint (PASID) is not bound through a table: V30);
 * -EBUSY (pri_groups groups outstanding, or the group already complete:
 * nothing done, retry later).
 */
VIOMMU_EXPORT int
viommu_virtio_iommu_page_request(struct viommu_virtio_iommu *vi,
				 uint32_t endpoint, uint32_t pasid,
				 uint64_t iova, unsigned int perm, bool last,
				 uint32_t grpid);

/**
 * viommu_virtio_iommu_page_response() - the answer to group @grpid of
 * @endpoint.  A returned answer is consumed (the group is forgotten).  A
 * group past pri_timeout_ms is answered FAILURE here (V27).
 * Thread-safe; takes the device lock.
 * Return: 0 with *@resp set; -EAGAIN (outstanding, not answered yet);
 * -ENOENT (no such group); -EINVAL (NULL args).
 */
VIOMMU_EXPORT int
viommu_virtio_iommu_page_response(struct viommu_virtio_iommu *vi,
				  uint32_t endpoint, uint32_t grpid,
				  enum viommu_vi_page_resp *resp);

/**
 * viommu_virtio_iommu_table_stats() - copy the handover counters into
 * @out, of which the caller knows @size bytes
 * (sizeof(struct viommu_virtio_iommu_table_stats) as it was built), with
 * the same rule as viommu_virtio_iommu_stats().  Thread-safe.
 * Return: 0; -EINVAL (NULL args, @size 0).
 */
VIOMMU_EXPORT int
viommu_virtio_iommu_table_stats(struct viommu_virtio_iommu *vi,
				struct viommu_virtio_iommu_table_stats *out,
				size_t size);

/**
 * viommu_virtio_iommu_set_trace_sink() - typed trace points
 * (<viommu/trace.h>): VIOMMU_TRACE_VI_REQUEST after each request,
 * VIOMMU_TRACE_VI_FAULT for each fault report written to the event queue.
 * @sink NULL (or a zero mask) turns them off.  Any thread; the sink's
 * function is called with the device lock held.
 * Return: 0; -EINVAL (NULL @vi, unknown mask bits, a @size with unknown
 * non-zero bytes).
 */
VIOMMU_EXPORT int
viommu_virtio_iommu_set_trace_sink(struct viommu_virtio_iommu *vi,
				   const struct viommu_trace_sink *sink);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_VIRTIO_IOMMU_H */
