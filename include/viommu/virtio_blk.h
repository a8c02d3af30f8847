/*
 * virtio_blk.h - a virtio-blk device (VIRTIO 1.3 §5.2) whose DMA goes
 * through the translation core.
 *
 * The device serves a raw image file or anonymous memory.  With an
 * endpoint in its configuration it offers VIRTIO_F_ACCESS_PLATFORM
 * (§6.1) and insists on it: every ring, indirect-table and data address
 * the driver gives is then an IOVA of that endpoint, translated with
 * viommu_translate() for the access the device makes, using the
 * contiguous length each translation returns.  A failed translation is
 * reported like any other (the context's fault callback: the virtio-iommu
 * device turns it into a fault event); on a ring it puts the device in
 * DEVICE_NEEDS_RESET, on a data buffer it ends that request with
 * VIRTIO_BLK_S_IOERR (or DEVICE_NEEDS_RESET when even the status byte
 * cannot be written), and every translation of a request is done before
 * any write reaches the image, which is therefore left untouched.
 *
 * Features: VERSION_1, ACCESS_PLATFORM (with an endpoint), split and
 * packed rings, EVENT_IDX, INDIRECT_DESC, SIZE_MAX, SEG_MAX, BLK_SIZE
 * (512), FLUSH, GET_ID, MQ (with more than one request queue), RO, and
 * DISCARD and WRITE_ZEROES on a writable backend (fallocate on files,
 * memset on anonymous memory).  The rules the device applies are listed
 * with IDs in docs/VIRTIO-BLK.md.
 *
 * I/O runs on the device's own worker threads, never on the thread that
 * kicked (a link thread): a kick only pops requests, up to max_inflight
 * across queues; a worker translates, does the I/O, and completes the
 * request on the used ring under the device lock, raising the interrupt
 * through the transport's hook.  A device reset (and destroy) waits for
 * requests whose I/O has started and drops those that have not: no worker
 * touches guest memory after the reset returns, and no request of before
 * the reset is ever completed after it.
 *
 * Thread safety: create and destroy must not race other calls on the same
 * device; every other call may come from any thread.  The transport calls
 * on viommu_virtio_blk_dev() follow include/viommu/virtio.h.
 */
#ifndef VIOMMU_VIRTIO_BLK_H
#define VIOMMU_VIRTIO_BLK_H

#include <viommu/common.h>
#include <viommu/core.h>
#include <viommu/mem.h>
#include <viommu/virtio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Virtio device ID of a block device. */
#define VIOMMU_VIRTIO_BLK_DEVICE_ID 2

/** virtio-blk feature bits (VIRTIO 1.3 §5.2.3). */
#define VIOMMU_VIRTIO_BLK_F_SIZE_MAX 1
#define VIOMMU_VIRTIO_BLK_F_SEG_MAX 2
#define VIOMMU_VIRTIO_BLK_F_RO 5
#define VIOMMU_VIRTIO_BLK_F_BLK_SIZE 6
#define VIOMMU_VIRTIO_BLK_F_FLUSH 9
#define VIOMMU_VIRTIO_BLK_F_MQ 12
#define VIOMMU_VIRTIO_BLK_F_DISCARD 13
#define VIOMMU_VIRTIO_BLK_F_WRITE_ZEROES 14

/** The most request queues a device may have. */
#define VIOMMU_VIRTIO_BLK_MAX_QUEUES 8
/** The longest GET_ID string. */
#define VIOMMU_VIRTIO_BLK_ID_BYTES 20

struct viommu_virtio_blk;

/**
 * struct viommu_virtio_blk_config - creation parameters; [default].
 * @size:        sizeof(struct viommu_virtio_blk_config) as the caller
 *               built it (lets the struct grow; see link.h); 0 is taken as
 *               this first version's size.
 * @mem:         guest RAM (required).
 * @ep:          the function's endpoint: with it, ACCESS_PLATFORM is
 *               offered (and required of the driver) and every ring and
 *               buffer address is an IOVA translated for this endpoint;
 *               NULL: addresses are guest-physical (no IOMMU in front).
 * @path:        raw image file, opened read-write (read-only with
 *               @read_only); its size, rounded down to 512 bytes, is the
 *               capacity.  NULL: anonymous memory of @capacity bytes.
 * @capacity:    bytes, a non-zero multiple of 512, for anonymous backing
 *               (ignored with @path).
 * @read_only:   open read-only and report VIRTIO_BLK_F_RO.
 * @num_queues:  request queues, 1..VIOMMU_VIRTIO_BLK_MAX_QUEUES [1]; MQ is
 *               offered when > 1.
 * @queue_size:  largest queue, a power of two, 2..1024 [256].
 * @ring_features: VIRTIO_F_INDIRECT_DESC | EVENT_IDX | RING_PACKED bits to
 *               offer [all three]; other bits are ignored.
 * @serial:      GET_ID string, at most 20 bytes ["viommu-blk"].
 * @max_inflight: requests in flight across queues, 1..4096 [64].
 * @log:         where log lines go.
 * @io_threads:  worker threads doing the I/O, 1..16 [2].
 */
struct viommu_virtio_blk_config {
	size_t size;
	struct viommu_mem *mem;
	struct viommu_endpoint *ep;
	const char *path;
	uint64_t capacity;
	bool read_only;
	uint16_t num_queues;
	uint16_t queue_size;
	uint64_t ring_features;
	const char *serial;
	uint32_t max_inflight;
	struct viommu_log log;
	uint32_t io_threads;
};

/**
 * viommu_virtio_blk_create() - make a device (reset state) and start its
 * worker threads.  The image file is opened here and closed by destroy.
 * Return: 0; -EINVAL (NULL @cfg, @out or @cfg->mem, @size larger than
 * this library knows, bad capacity, queue count, queue size, serial,
 * max_inflight or io_threads, an image that is empty or not a regular
 * file or block device); -ENOMEM; the negative errno of open(), fstat(),
 * lseek() or pthread_create() (-EAGAIN).  Thread-safe (no shared state).
 */
VIOMMU_EXPORT int
viommu_virtio_blk_create(const struct viommu_virtio_blk_config *cfg,
			 struct viommu_virtio_blk **out);

/**
 * viommu_virtio_blk_destroy() - stop the workers and free the device.
 * Requests whose I/O has started finish (their I/O, not their completion:
 * nothing is written to the rings); the rest are dropped.  NULL is
 * accepted.  Must not race any other call on @blk, including the
 * transport's calls on its virtio device.
 */
VIOMMU_EXPORT void viommu_virtio_blk_destroy(struct viommu_virtio_blk *blk);

/**
 * viommu_virtio_blk_dev() - the virtio device, for viommu_virtio_pci_create()
 * and the other calls of include/viommu/virtio.h.  NULL for NULL.
 */
VIOMMU_EXPORT struct viommu_virtio_dev *
viommu_virtio_blk_dev(struct viommu_virtio_blk *blk);

/**
 * viommu_virtio_blk_inject_faults() - make the next @n translations of
 * request buffers (header, data, DISCARD segments, GET_ID string; any
 * queue or worker) fail as if the address were unmapped: each is reported
 * to the context's fault callback as a NO_MAPPING fault and handled like
 * a real one, so the request it hits ends with VIRTIO_BLK_S_IOERR and the
 * image is untouched.  Ring translations and the status byte's are not
 * affected (a fault there puts the device in DEVICE_NEEDS_RESET, which a
 * stock driver does not survive; unmap a ring to test that).  Replaces any
 * count still pending; 0 cancels.  Needs an endpoint.  Thread-safe.
 * Return: 0; -EINVAL (NULL @blk); -ENODEV (no endpoint).
 */
VIOMMU_EXPORT int viommu_virtio_blk_inject_faults(struct viommu_virtio_blk *blk,
						  uint32_t n);

/**
 * struct viommu_virtio_blk_stats - counters since creation.
 * @size:     sizeof as the caller knows it (the call fills that much).
 * @reads, @writes, @flushes, @discards, @write_zeroes, @get_id: requests
 *            completed with VIRTIO_BLK_S_OK, by type.
 * @bytes_read, @bytes_written: data moved to / from the guest.
 * @ioerr, @unsupp: requests answered VIRTIO_BLK_S_IOERR / _UNSUPP.
 * @faults:   failed translations (injected ones included).
 * @injected_faults: translations failed by inject_faults().
 * @needs_reset: times the device entered DEVICE_NEEDS_RESET.
 */
struct viommu_virtio_blk_stats {
	size_t size;
	uint64_t reads, writes, flushes, discards, write_zeroes, get_id;
	uint64_t bytes_read, bytes_written;
	uint64_t ioerr, unsupp;
	uint64_t faults, injected_faults, needs_reset;
};

/**
 * viommu_virtio_blk_stats() - snapshot the counters into @st, whose @size
 * the caller sets (0: the first version's size, the fields up to
 * @needs_reset).  Thread-safe.
 * Return: 0; -EINVAL (NULL argument, @size larger than this library's).
 */
VIOMMU_EXPORT int viommu_virtio_blk_stats(struct viommu_virtio_blk *blk,
					  struct viommu_virtio_blk_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_VIRTIO_BLK_H */
