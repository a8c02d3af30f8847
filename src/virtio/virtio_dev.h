/*
 * virtio_dev.h - the device-side virtio core shared by every virtio device
 * model: status and feature negotiation, queues, ISR, config generation,
 * NEEDS_RESET, and the device lock.  A device model embeds a struct
 * viommu_virtio_dev and fills in a struct vdev_ops; the public calls of
 * include/viommu/virtio.h are implemented once in virtio.c on top of it.
 */
#ifndef VIOMMU_VIRTIO_DEV_H
#define VIOMMU_VIRTIO_DEV_H

#include <viommu/virtio.h>
#include <pthread.h>

#include "virtqueue.h"

#define VDEV_MAX_QUEUES 8

struct viommu_virtio_dev;

/*
 * struct vdev_ops - what a device model provides.  Every hook runs with
 * dev->lock held.
 * @features_ok:  accept or refuse the negotiated features (return 0 or
 *                -EINVAL); NULL accepts anything with VERSION_1.
 * @queue_notify: process queue @q (the queue is ready, the device is
 *                DRIVER_OK and not broken).
 * @config_read / @config_write: device-specific config space; the
 *                core checked @len is 1, 2, 4 or 8.
 * @reset:        device reset (status written 0); @system: also restore
 *                values that survive device reset.
 */
struct vdev_ops {
	uint32_t device_id;
	int (*features_ok)(struct viommu_virtio_dev *dev, uint64_t features);
	void (*queue_notify)(struct viommu_virtio_dev *dev, uint16_t q);
	void (*config_read)(struct viommu_virtio_dev *dev, uint32_t off,
			    void *buf, uint32_t len);
	void (*config_write)(struct viommu_virtio_dev *dev, uint32_t off,
			     const void *buf, uint32_t len);
	void (*reset)(struct viommu_virtio_dev *dev, bool system);
};

struct viommu_virtio_dev {
	const struct vdev_ops *ops;
	void *priv; /* the device model */
	pthread_mutex_t lock;
	struct viommu_mem *mem;
	struct viommu_log log;
	struct viommu_allocator alloc;
	struct ratelimit rl; /* guest-triggered log lines (queues: their own) */

	uint64_t host_features;
	uint64_t guest_features;
	uint8_t status;
	uint8_t isr;
	uint32_t config_gen;

	uint16_t nqueues;
	struct vq vqs[VDEV_MAX_QUEUES];
	/* IOVA mode (virtqueue.h): set by a model whose device sits behind an
	 * IOMMU; its queues use it when VIRTIO_F_ACCESS_PLATFORM was
	 * negotiated, else their addresses are GPAs. */
	struct vq_iommu *iommu;

	void (*irq_fn)(void *opaque, uint8_t isr, uint16_t q);
	void *irq_opaque;
};

/*
 * vdev_init() - set up the common part: @nqueues queues of at most
 * @queue_max entries, offering @features.  Return: 0; -ENOMEM.
 */
int vdev_init(struct viommu_virtio_dev *dev, const struct vdev_ops *ops,
	      void *priv, struct viommu_mem *mem, const struct viommu_log *log,
	      const struct viommu_allocator *alloc, uint64_t features,
	      uint16_t nqueues, uint16_t queue_max);
void vdev_destroy(struct viommu_virtio_dev *dev);

/*
 * vdev_log_suppressed() - log lines the rate limits of @dev and its
 * queues have dropped.
 */
uint64_t vdev_log_suppressed(const struct viommu_virtio_dev *dev);

/* __vdev_has() - whether feature @bit was negotiated. */
static inline bool __vdev_has(const struct viommu_virtio_dev *dev,
			      unsigned int bit)
{
	return (dev->guest_features >> bit) & 1;
}

/*
 * __vdev_needs_reset() - enter DEVICE_NEEDS_RESET (VIRTIO 1.3 §2.1.2):
 * log @why once, stop processing, raise a config interrupt.
 */
void __vdev_needs_reset(struct viommu_virtio_dev *dev, const char *why);

/* __vdev_irq() - set ISR bits and call the transport's interrupt hook. */
void __vdev_irq(struct viommu_virtio_dev *dev, uint8_t isr, uint16_t q);

/*
 * __vdev_queue_done() - after pushing a batch on queue @q: interrupt the
 * driver if the queue's suppression state asks for one.
 */
void __vdev_queue_done(struct viommu_virtio_dev *dev, uint16_t q);

/* __vdev_config_changed() - bump the generation, raise a config irq. */
void __vdev_config_changed(struct viommu_virtio_dev *dev);

#endif /* VIOMMU_VIRTIO_DEV_H */
