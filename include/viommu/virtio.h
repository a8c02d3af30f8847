/*
 * virtio.h - device-side virtio: what a transport calls into.
 *
 * A struct viommu_virtio_dev is one virtio device (virtio-iommu, created
 * by viommu_virtio_iommu_create(), or virtio-blk, viommu_virtio_blk_create()).  A transport — our virtio-pci
 * implementation, the in-process reference driver, or an embedder's own
 * virtio-mmio — turns guest register accesses into the calls below:
 * feature negotiation, status, queue set-up, notifications, the device
 * configuration space and the ISR.  The device tells the transport to
 * raise an interrupt through the callback set with
 * viommu_virtio_dev_set_irq().
 *
 * Virtqueues live in guest memory and are read through the memory layer
 * (for a device behind an IOMMU that negotiated VIRTIO_F_ACCESS_PLATFORM,
 * every ring address is an IOVA translated through the core first):
 * split rings (with VIRTIO_F_EVENT_IDX and VIRTIO_F_INDIRECT_DESC) and
 * packed rings (VIRTIO_F_RING_PACKED).  A malformed ring never makes the
 * device read outside guest RAM, loop or allocate without bound: the device
 * logs one line, sets DEVICE_NEEDS_RESET and raises a configuration-change
 * interrupt.
 *
 * Thread safety: calls on one device are serialised internally (a device
 * lock), so a transport may call from several threads (e.g. one per vCPU
 * link).  Notifications are processed synchronously in the calling thread
 * (virtio-blk only pops requests there: its worker threads do the I/O and
 * complete them, raising interrupts from those threads).
 * The interrupt callback is invoked with the device lock held and must not
 * call back into the device, nor make an endpoint translate (the fault path
 * of a device such as virtio-iommu takes the device lock).
 */
#ifndef VIOMMU_VIRTIO_H
#define VIOMMU_VIRTIO_H

#include <viommu/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct viommu_virtio_dev;

/* Device status bits (VIRTIO 1.3 §2.1). */
#define VIOMMU_VIRTIO_S_ACKNOWLEDGE 1u
#define VIOMMU_VIRTIO_S_DRIVER 2u
#define VIOMMU_VIRTIO_S_DRIVER_OK 4u
#define VIOMMU_VIRTIO_S_FEATURES_OK 8u
#define VIOMMU_VIRTIO_S_NEEDS_RESET 64u
#define VIOMMU_VIRTIO_S_FAILED 128u

/* Transport-independent feature bits the device core handles. */
#define VIOMMU_VIRTIO_F_INDIRECT_DESC 28
#define VIOMMU_VIRTIO_F_EVENT_IDX 29
#define VIOMMU_VIRTIO_F_VERSION_1 32
#define VIOMMU_VIRTIO_F_ACCESS_PLATFORM 33
#define VIOMMU_VIRTIO_F_RING_PACKED 34

/* ISR bits. */
#define VIOMMU_VIRTIO_ISR_QUEUE 1u
#define VIOMMU_VIRTIO_ISR_CONFIG 2u

/** The largest queue size a device accepts. */
#define VIOMMU_VIRTIO_QUEUE_MAX 1024

/**
 * struct viommu_virtio_queue_cfg - where the driver put a queue.
 * @size:   number of entries (1..queue max; a power of two for split
 *          rings, any value for packed rings).
 * @desc:   GPA of the descriptor table (packed: the descriptor ring).
 * @driver: GPA of the available ring (packed: driver event suppression).
 * @device: GPA of the used ring (packed: device event suppression).
 */
struct viommu_virtio_queue_cfg {
	uint16_t size;
	uint64_t desc;
	uint64_t driver;
	uint64_t device;
};

/** viommu_virtio_dev_device_id() - the virtio device ID (23: IOMMU, 2: block). */
VIOMMU_EXPORT uint32_t
viommu_virtio_dev_device_id(const struct viommu_virtio_dev *dev);

/** viommu_virtio_dev_features() - the 64 feature bits the device offers. */
VIOMMU_EXPORT uint64_t
viommu_virtio_dev_features(const struct viommu_virtio_dev *dev);

/**
 * viommu_virtio_dev_set_driver_features() - record the driver's features
 * (before FEATURES_OK).  Bits the device did not offer are dropped.
 * Return: 0; -EINVAL (NULL); -EBUSY (FEATURES_OK already set).
 */
VIOMMU_EXPORT int
viommu_virtio_dev_set_driver_features(struct viommu_virtio_dev *dev,
				      uint64_t features);

/** viommu_virtio_dev_driver_features() - the negotiated features. */
VIOMMU_EXPORT uint64_t
viommu_virtio_dev_driver_features(const struct viommu_virtio_dev *dev);

/**
 * viommu_virtio_dev_set_status() - the driver writes the status byte.
 * Writing 0 resets the device (VIRTIO 1.3 §2.4).  Setting FEATURES_OK
 * is refused (the bit stays clear, as the spec asks) when the features
 * are unacceptable (e.g. VERSION_1 or a feature the device requires
 * missing).  Setting DRIVER_OK starts processing.
 * Return: 0; -EINVAL.
 */
VIOMMU_EXPORT int viommu_virtio_dev_set_status(struct viommu_virtio_dev *dev,
					       uint8_t status);

/** viommu_virtio_dev_status() - the status byte as the driver reads it. */
VIOMMU_EXPORT uint8_t viommu_virtio_dev_status(struct viommu_virtio_dev *dev);

/** viommu_virtio_dev_num_queues() - number of virtqueues. */
VIOMMU_EXPORT uint16_t
viommu_virtio_dev_num_queues(const struct viommu_virtio_dev *dev);

/** viommu_virtio_dev_queue_max() - the largest size of queue @q (0: none). */
VIOMMU_EXPORT uint16_t
viommu_virtio_dev_queue_max(const struct viommu_virtio_dev *dev, uint16_t q);

/**
 * viommu_virtio_dev_queue_setup() - configure and enable queue @q, or
 * disable it with @cfg == NULL.  Ring addresses are checked against guest
 * RAM and alignment when the queue is enabled; a bad one is refused.
 * Return: 0; -EINVAL (bad queue index, size, address or alignment, or the
 * ring not inside guest RAM); -EBUSY (DRIVER_OK already set).
 */
VIOMMU_EXPORT int
viommu_virtio_dev_queue_setup(struct viommu_virtio_dev *dev, uint16_t q,
			      const struct viommu_virtio_queue_cfg *cfg);

/**
 * viommu_virtio_dev_notify() - the driver kicked queue @q: process what it
 * made available, in ring order, in this thread.
 * Return: 0 (including when the device is not ready or needs reset: the
 * kick is then ignored); -EINVAL (bad queue index).
 */
VIOMMU_EXPORT int viommu_virtio_dev_notify(struct viommu_virtio_dev *dev,
					   uint16_t q);

/**
 * viommu_virtio_dev_poll() - for a VMM thread that polls queue @q instead
 * of waiting for kicks: process what the driver made available, as
 * viommu_virtio_dev_notify() does, and tell the driver whether to notify
 * at all (VIRTIO 1.3 §2.7.10, §2.8.10, the device's side of notification
 * suppression).  @kicks false asks the driver not to notify (split rings:
 * used.flags NO_NOTIFY, or with EVENT_IDX avail_event kept behind the
 * ring; packed rings: device event flags DISABLE), so that a guest's
 * requests reach the device with no VM exit as long as someone polls.
 * @kicks true asks for notifications again and looks at the ring once more
 * (a request made just before may have gone unnotified); call it before
 * the polling thread stops.  A device reset turns kicks back on.
 * @done (may be NULL) receives the number of chains processed.
 * Thread safety: like viommu_virtio_dev_notify(), which may run at the
 * same time (the device lock serialises them).
 * Return: 0 (nothing is done when the device is not ready); -EINVAL (NULL
 * @dev, bad queue index).
 */
VIOMMU_EXPORT int viommu_virtio_dev_poll(struct viommu_virtio_dev *dev,
					 uint16_t q, bool kicks,
					 unsigned int *done);

/**
 * viommu_virtio_dev_config_read() / _write() - access the device-specific
 * configuration space.  Reads past the end return zeroes; writes to
 * read-only fields are ignored with a log line.
 * Return: 0; -EINVAL (NULL, or @len not 1, 2, 4 or 8).
 */
VIOMMU_EXPORT int viommu_virtio_dev_config_read(struct viommu_virtio_dev *dev,
						uint32_t offset, void *buf,
						uint32_t len);
VIOMMU_EXPORT int
viommu_virtio_dev_config_write(struct viommu_virtio_dev *dev, uint32_t offset,
			       const void *buf, uint32_t len);

/** viommu_virtio_dev_config_generation() - bumped on each config change. */
VIOMMU_EXPORT uint32_t
viommu_virtio_dev_config_generation(struct viommu_virtio_dev *dev);

/**
 * viommu_virtio_dev_notify_config() - the device's configuration changed
 * behind the driver's back (a backend event, or a test of the driver's
 * handling): bump config_generation and, once DRIVER_OK is set, send a
 * configuration-change interrupt (VIRTIO 1.3 §2.5.1, §4.1.5.3).
 * Thread-safe; takes the device lock; the interrupt sink runs under it.
 */
VIOMMU_EXPORT void viommu_virtio_dev_notify_config(struct viommu_virtio_dev *dev);

/**
 * viommu_virtio_dev_set_needs_reset() - the device met an error it cannot
 * recover from (a backend failure, or a test injecting one): set
 * DEVICE_NEEDS_RESET, log @why (NULL: a generic reason) once, and, once
 * DRIVER_OK is set, send a configuration-change interrupt (VIRTIO 1.3
 * §2.1.2).  The device serves no request until the driver resets it.
 * Idempotent.  Thread-safe; takes the device lock.
 */
VIOMMU_EXPORT void
viommu_virtio_dev_set_needs_reset(struct viommu_virtio_dev *dev,
				  const char *why);

/**
 * viommu_virtio_dev_read_isr() - read and clear the ISR (legacy INTx
 * semantics: reading acknowledges).
 */
VIOMMU_EXPORT uint8_t viommu_virtio_dev_read_isr(struct viommu_virtio_dev *dev);

/**
 * viommu_virtio_dev_set_irq() - where interrupts go.  @fn is called with
 * VIOMMU_VIRTIO_ISR_QUEUE (and the queue index) or VIOMMU_VIRTIO_ISR_CONFIG
 * (queue 0xffff) after the ISR bit is set.  NULL disables interrupts.
 */
VIOMMU_EXPORT void
viommu_virtio_dev_set_irq(struct viommu_virtio_dev *dev,
			  void (*fn)(void *opaque, uint8_t isr, uint16_t q),
			  void *opaque);

/**
 * viommu_virtio_dev_reset() - system reset (power cycle): like a device
 * reset, and device-specific state that survives device reset (the
 * virtio-iommu `bypass` bit) returns to its boot value.
 */
VIOMMU_EXPORT void viommu_virtio_dev_reset(struct viommu_virtio_dev *dev);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_VIRTIO_H */
