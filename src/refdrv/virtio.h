/*
 * refdrv.h - the reference virtio-iommu guest driver: an in-process driver
 * for tests, fuzzers and benchmarks.
 *
 * It plays the guest.  Its rings, requests and event buffers live in a
 * chunk of guest RAM it owns (given as a host pointer plus its GPA; the
 * chunk must be inside the struct viommu_mem the device reads), and it
 * reaches the device only through the transport calls of
 * include/viommu/virtio.h: status, features, queue set-up, notify and the
 * configuration space.  The device completes requests synchronously in
 * notify, but the driver still finds completions the way a real driver
 * does, by polling the used ring.
 *
 * The API follows the 2007 "KVM friendly IOMMU API" (domain alloc/free,
 * add/remove device, map/unmap page and range, commit) over the VIRTIO 1.3
 * virtio-iommu requests:
 *
 *   - STRICT mode: every request is made available, kicked and waited for
 *     before the call returns (its status is filled then);
 *   - BATCHED mode: requests are only queued (each status reads
 *     REFDRV_S_PENDING) until refdrv_commit() submits them all with one
 *     kick, the way the Linux driver batches MAP/UNMAP until iotlb_sync.
 *     A full ring (or a full set of request slots) commits on its own.
 *
 * The typed calls send whatever values they are given (unknown flags,
 * domains never attached...) so conformance tests can provoke every
 * status; reserved fields are always zero there.  refdrv_raw() and
 * refdrv_raw_segs() submit arbitrary bytes and descriptor layouts.
 *
 * Every reply is checked against the length the driver expects, like the
 * Linux driver does: a used length different from the writable size turns
 * the status into REFDRV_S_NOT_WRITTEN (0) or REFDRV_S_BAD_LEN (other).
 *
 * If the device stops completing requests (it entered DEVICE_NEEDS_RESET,
 * or returned a buffer that was not in flight) the driver is broken: the
 * statuses of lost requests read REFDRV_S_LOST and every call answers -EIO
 * until refdrv_reset().
 *
 * Bookkeeping is bounded: two struct drvring, one record per request slot
 * (at most the queue size) and a bitmap of REFDRV_MAX_DOMAINS domain IDs.
 * Not thread-safe: one thread drives a driver.  The driver installs itself
 * as the device's interrupt handler (it only counts interrupts).
 */
#ifndef VIOMMU_REFDRV_H
#define VIOMMU_REFDRV_H

#include <viommu/virtio.h>
#include <viommu/virtio_iommu.h>

struct refdrv;

/* Pseudo statuses (never sent by a device: valid statuses are 0..8). */
#define REFDRV_S_PENDING 0xfc     /* queued, not committed yet */
#define REFDRV_S_BAD_LEN 0xfd     /* used length != writable size, != 0 */
#define REFDRV_S_NOT_WRITTEN 0xfe /* used length 0: request failed */
#define REFDRV_S_LOST 0xff        /* never completed (device broken) */

/* Byte refdrv_raw() fills the writable part with before submitting. */
#define REFDRV_POISON 0xa5

/* Domain IDs the driver-side allocator manages (from domain_range.start). */
#define REFDRV_MAX_DOMAINS 4096u
/* Most segments refdrv_raw_segs() accepts. */
#define REFDRV_RAW_MAX_SEGS 64u
/* Size of each request slot (room for every request but PROBE). */
#define REFDRV_SLOT_SIZE 64u
/* Size of each event buffer the driver posts (struct virtio_iommu_fault). */
#define REFDRV_EVENT_SIZE 24u
/* ... and once PAGE_REQ is negotiated (docs/VIRTIO-IOMMU-TABLES.md V20). */
#define REFDRV_EVENT_SIZE_EXT 48u

enum refdrv_mode {
	REFDRV_STRICT = 0,
	REFDRV_BATCHED = 1,
};

/**
 * struct refdrv_config - what to drive and how.
 * @dev:           the device (not owned).
 * @ram, @ram_gpa, @ram_size: the guest-RAM chunk the driver owns (host
 *                 pointer, GPA, bytes); 16-byte aligned GPA.  It must be
 *                 large enough for both rings, the request slots, the
 *                 event buffers and a scratch area (see refdrv_create()).
 * @packed:        negotiate VIRTIO_F_RING_PACKED (else split rings).
 * @event_idx:     negotiate VIRTIO_F_EVENT_IDX.
 * @indirect:      negotiate VIRTIO_F_INDIRECT_DESC and put every request
 *                 in an indirect table.
 * @queue_size:    entries per queue [0: min(64, device max)]; a power of
 *                 two for split rings.  The event queue uses the same size
 *                 clamped to its own maximum.
 * @mode:          REFDRV_STRICT or REFDRV_BATCHED.
 * @features_mask: feature bits the driver accepts [0: all it knows:
 *                 VERSION_1, ACCESS_PLATFORM, INPUT_RANGE, DOMAIN_RANGE,
 *                 MAP_UNMAP, PROBE, MMIO, BYPASS_CONFIG, ATTACH_TABLE,
 *                 PAGE_REQ (the last two only if offered)]; the ring
 *                 features come from the three booleans above.
 * @event_buffers: event buffers posted at initialisation (0: none; more
 *                 can be posted with refdrv_events_post()); at most the
 *                 event queue size.
 * @log:           where the driver's log lines go (optional).
 */
struct refdrv_config {
	struct viommu_virtio_dev *dev;
	void *ram;
	uint64_t ram_gpa;
	uint64_t ram_size;
	bool packed, event_idx, indirect;
	uint16_t queue_size;
	enum refdrv_mode mode;
	uint64_t features_mask;
	uint32_t event_buffers;
	struct viommu_log log;
};

/**
 * struct refdrv_info - what the driver negotiated and read, and counters.
 * Ranges are the defaults of VIRTIO 1.3 when their feature was not
 * negotiated (input [0, 2^64-1], domains [0, 2^32-1]); @probe_size is 0
 * without PROBE.  @granule is the lowest bit of @page_size_mask.
 */
struct refdrv_info {
	uint64_t features;
	uint64_t page_size_mask;
	uint64_t granule;
	uint64_t input_start, input_end;
	uint32_t domain_start, domain_end;
	uint32_t probe_size;
	uint8_t bypass; /* as read at initialisation */
	uint16_t queue_size, event_queue_size;
	bool packed, event_idx, indirect;
	enum refdrv_mode mode;
	/* The scratch area refdrv_raw() uses; free for refdrv_raw_segs(). */
	void *scratch;
	uint64_t scratch_gpa, scratch_size;
	/* Counters since creation. */
	uint64_t kicks;          /* request queue notifications */
	uint64_t event_kicks;    /* event queue notifications */
	uint64_t requests;       /* requests completed */
	uint64_t errors;         /* completed with a status != OK */
	uint64_t bad_len;        /* used length not the writable size */
	uint64_t tail_rsvd;      /* tails with non-zero reserved bytes */
	uint64_t events;         /* event buffers consumed */
	uint64_t queue_irqs, config_irqs; /* interrupts the device raised */
	uint64_t resets;         /* refdrv_reset() calls */
};

/** struct refdrv_resv - one RESV_MEM property of a PROBE reply. */
struct refdrv_resv {
	uint8_t subtype; /* VIRTIO_IOMMU_RESV_MEM_T_RESERVED 0 / MSI 1 */
	uint64_t start, end; /* inclusive */
};

/**
 * struct refdrv_fault - one fault report read from the event queue, field
 * by field (reserved fields included, so tests can check them).
 */
struct refdrv_fault {
	uint8_t reason;
	uint8_t rsvd[3];
	uint32_t flags;
	uint32_t endpoint;
	uint32_t rsvd1;
	uint64_t address;
	uint32_t used_len; /* bytes the device wrote */
	uint8_t raw[REFDRV_EVENT_SIZE_EXT]; /* the buffer as written */
};

/** struct refdrv_seg - one descriptor for refdrv_raw_segs(). */
struct refdrv_seg {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

/* Flags for refdrv_raw_segs(). */
#define REFDRV_RAW_INDIRECT (1u << 0) /* one descriptor -> indirect table */

/**
 * refdrv_create() - initialise the device as VIRTIO 1.3 §3.1.1 says: reset,
 * ACKNOWLEDGE, DRIVER, features, FEATURES_OK (read back), queue set-up,
 * event buffers, DRIVER_OK; then read the configuration space.
 * The chunk holds, in order: the request ring, the event ring, one
 * REFDRV_SLOT_SIZE slot per request queue entry, one event buffer per event
 * queue entry, and the scratch area (the rest, at least probe_size + 256
 * bytes).
 * Return: 0; -EINVAL (NULL or bad @cfg: queue size, alignment, more event
 * buffers than entries); -ENOSPC (chunk too small); -EOPNOTSUPP (a ring
 * feature asked for, VERSION_1 or MAP_UNMAP not offered); -EPROTO (the
 * device refused FEATURES_OK or a queue, or page_size_mask is 0);
 * -ENOMEM.  On failure the device is left with FAILED set.
 */
int refdrv_create(const struct refdrv_config *cfg, struct refdrv **out);

/**
 * refdrv_destroy() - reset the device and free the driver; NULL is
 * accepted.  Requests still queued are dropped (their status LOST).
 */
void refdrv_destroy(struct refdrv *drv);

/**
 * refdrv_reset() - reset the device (status 0) and run the whole
 * initialisation again with the same configuration; queued requests are
 * dropped (status LOST), the domain allocator is emptied.  Also the way
 * out of a broken driver.  Return: as refdrv_create().
 */
int refdrv_reset(struct refdrv *drv);

/** refdrv_info() - fill @out.  Return: 0; -EINVAL. */
int refdrv_info(const struct refdrv *drv, struct refdrv_info *out);

/**
 * refdrv_set_mode() - switch between STRICT and BATCHED; switching to
 * STRICT commits what is queued.  Return: 0; -EINVAL; -EIO (broken).
 */
int refdrv_set_mode(struct refdrv *drv, enum refdrv_mode mode);

/**
 * refdrv_domain_alloc() - the lowest free domain ID of domain_range (among
 * its first REFDRV_MAX_DOMAINS IDs).  The device creates the domain on the
 * first ATTACH.  Return: 0; -EINVAL; -ENOSPC (all in use).
 */
int refdrv_domain_alloc(struct refdrv *drv, uint32_t *domain);

/**
 * refdrv_domain_free() - give a domain ID back (the device destroyed the
 * domain when its last endpoint was detached).
 * Return: 0; -EINVAL (NULL); -ENOENT (not allocated).
 */
int refdrv_domain_free(struct refdrv *drv, uint32_t domain);

/**
 * refdrv_attach() - ATTACH @endpoint to @domain with @flags
 * (VIRTIO_IOMMU_ATTACH_F_BYPASS = 1).  @status (optional) receives the
 * device's status: at return in STRICT mode, at commit in BATCHED mode
 * (REFDRV_S_PENDING until then: keep it valid).
 * Return: 0 (the request was submitted or queued; see @status);
 * -EINVAL (NULL @drv); -EIO (broken driver or device).
 */
int refdrv_attach(struct refdrv *drv, uint32_t domain, uint32_t endpoint,
		  uint32_t flags, uint8_t *status);

/** refdrv_detach() - DETACH @endpoint from @domain; as refdrv_attach(). */
int refdrv_detach(struct refdrv *drv, uint32_t domain, uint32_t endpoint,
		  uint8_t *status);

/**
 * refdrv_map() - MAP [iova, iova + size - 1] of @domain to @phys with
 * @flags (READ 1, WRITE 2, MMIO 4; others are sent as given).
 * Return: 0; -EINVAL (NULL @drv, @size 0, range wraps); -EIO.
 */
int refdrv_map(struct refdrv *drv, uint32_t domain, uint64_t iova,
	       uint64_t phys, uint64_t size, uint32_t flags, uint8_t *status);

/** refdrv_map_page() - refdrv_map() of one granule. */
int refdrv_map_page(struct refdrv *drv, uint32_t domain, uint64_t iova,
		    uint64_t phys, uint32_t flags, uint8_t *status);

/**
 * refdrv_unmap() - UNMAP [iova, iova + size - 1] of @domain.
 * Return: 0; -EINVAL (NULL @drv, @size 0, range wraps); -EIO.
 */
int refdrv_unmap(struct refdrv *drv, uint32_t domain, uint64_t iova,
		 uint64_t size, uint8_t *status);

/** refdrv_unmap_page() - refdrv_unmap() of one granule. */
int refdrv_unmap_page(struct refdrv *drv, uint32_t domain, uint64_t iova,
		      uint8_t *status);

/**
 * refdrv_probe() - PROBE @endpoint (always synchronous: what is queued is
 * committed with it, in one kick) and parse the properties: up to @max
 * RESV_MEM properties go to @out, their total number to *@n; unknown
 * types and properties with reserved bits set are skipped.  *@n is 0
 * unless the status is OK.
 * Return: 0 (see @status); -EINVAL (NULL @drv/@n, NULL @out with @max);
 * -EOPNOTSUPP (PROBE not negotiated); -EBADMSG (status OK but a property
 * runs past probe_size, or a RESV_MEM property is shorter than its value);
 * -EIO.
 */
int refdrv_probe(struct refdrv *drv, uint32_t endpoint,
		 struct refdrv_resv *out, unsigned int max, unsigned int *n,
		 uint8_t *status);

/**
 * refdrv_commit() - submit everything queued with one kick (unless the
 * device suppressed notifications), collect every completion from the used
 * ring and fill each status.
 * Return: the number of requests completed since the previous
 * refdrv_commit() (including automatic commits) whose status is not OK;
 * -EINVAL; -EIO (the device did not complete them: the driver is broken).
 */
int refdrv_commit(struct refdrv *drv);

/**
 * refdrv_set_bypass() - write the `bypass` config field (0 or 1) and read
 * it back.  Return: 0; -EINVAL; -EOPNOTSUPP (BYPASS_CONFIG not
 * negotiated); -EIO (the value did not stick).
 */
int refdrv_set_bypass(struct refdrv *drv, bool bypass);

/**
 * refdrv_events_post() - post up to @n more event buffers (those not
 * already posted) and kick the event queue if the device asks.
 * Return: the number posted; -EINVAL; -EIO.
 */
int refdrv_events_post(struct refdrv *drv, unsigned int n);

/**
 * refdrv_events_poll() - read up to @max completed event buffers into
 * @out, oldest first, re-posting each buffer (and kicking the event queue,
 * which lets the device deliver reports it kept back).
 * Return: the number read; -EINVAL; -EIO (the device returned a buffer
 * that was not posted).
 */
int refdrv_events_poll(struct refdrv *drv, struct refdrv_fault *out,
		       unsigned int max);

/** refdrv_kicks() - request queue notifications sent since creation. */
uint64_t refdrv_kicks(const struct refdrv *drv);

/**
 * refdrv_raw() - submit @req_len bytes of @req as one device-readable
 * segment and @write_len bytes (filled with REFDRV_POISON) as one
 * device-writable segment (either may be 0, not both), commit it with
 * anything queued, and copy the writable part back to @reply (optional,
 * @write_len bytes) and the used length to @used_len (optional).
 * The bytes live in the scratch area.
 * Return: 0; -EINVAL; -EMSGSIZE (larger than the scratch area); -EIO.
 */
int refdrv_raw(struct refdrv *drv, const void *req, uint32_t req_len,
	       uint32_t write_len, void *reply, uint32_t *used_len);

/**
 * refdrv_raw_segs() - submit @n descriptors exactly as given (any GPA,
 * length and order) as one buffer, commit it with anything queued and
 * store the used length.  With REFDRV_RAW_INDIRECT the chain goes into an
 * indirect table (needs the feature; the table lives at the end of the
 * scratch area).  The caller places the bytes (e.g. in the scratch area).
 * Return: 0; -EINVAL (@n 0 or > REFDRV_RAW_MAX_SEGS, unknown flag, or
 * indirect not negotiated); -ENOSPC (more descriptors than the ring
 * holds); -EIO.
 */
int refdrv_raw_segs(struct refdrv *drv, const struct refdrv_seg *segs,
		    unsigned int n, unsigned int flags, uint32_t *used_len);

/**
 * refdrv_ring() - the driver's ring for queue @q (0 requests, 1 events),
 * for tests that look at or corrupt ring memory (see drvring.h); NULL for
 * another @q.
 */
struct drvring *refdrv_ring(struct refdrv *drv, uint16_t q);

#endif /* VIOMMU_REFDRV_H */
