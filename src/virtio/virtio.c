/*
 * virtio.c - the transport-facing virtio device core (include/viommu/
 * virtio.h) shared by every device model: device status and feature
 * negotiation (VIRTIO 1.3 §2.1, §2.2, §3.1), queue set-up, notifications,
 * configuration space dispatch, the ISR, and DEVICE_NEEDS_RESET.
 *
 * Concept: a device model embeds struct viommu_virtio_dev (virtio_dev.h)
 * and supplies struct vdev_ops; every public call takes dev->lock and
 * then runs the model's hooks, so a model never sees two calls at once.
 * The core is strict about the status protocol: a driver may not clear
 * status bits (other than by writing 0, which resets), FEATURES_OK needs
 * VERSION_1 and the model's consent, queues are set up between
 * FEATURES_OK and DRIVER_OK, and nothing is processed before DRIVER_OK or
 * after DEVICE_NEEDS_RESET.  A queue that breaks (virtqueue.c logs why)
 * puts the device in DEVICE_NEEDS_RESET without a second log line.
 */
#include <errno.h>

#include "virtio_dev.h"
#include "base/util.h"

#define S_ACK VIOMMU_VIRTIO_S_ACKNOWLEDGE
#define S_DRIVER VIOMMU_VIRTIO_S_DRIVER
#define S_DRIVER_OK VIOMMU_VIRTIO_S_DRIVER_OK
#define S_FEATURES_OK VIOMMU_VIRTIO_S_FEATURES_OK
#define S_NEEDS_RESET VIOMMU_VIRTIO_S_NEEDS_RESET
#define S_FAILED VIOMMU_VIRTIO_S_FAILED
#define S_DRIVER_BITS (S_ACK | S_DRIVER | S_DRIVER_OK | S_FEATURES_OK | \
		       S_FAILED)
#define NO_QUEUE 0xffff

static const char *const queue_names[VDEV_MAX_QUEUES] = {
	"virtqueue 0", "virtqueue 1", "virtqueue 2", "virtqueue 3",
	"virtqueue 4", "virtqueue 5", "virtqueue 6", "virtqueue 7",
};

/* lock() / unlock() - the device lock (const getters cast it away). */
static void lock(const struct viommu_virtio_dev *dev)
{
	pthread_mutex_lock((pthread_mutex_t *)&dev->lock);
}

static void unlock(const struct viommu_virtio_dev *dev)
{
	pthread_mutex_unlock((pthread_mutex_t *)&dev->lock);
}

int vdev_init(struct viommu_virtio_dev *dev, const struct vdev_ops *ops,
	      void *priv, struct viommu_mem *mem, const struct viommu_log *log,
	      const struct viommu_allocator *alloc, uint64_t features,
	      uint16_t nqueues, uint16_t queue_max)
{
	uint16_t q;
	int err;

	if (!dev || !ops || !mem || nqueues == 0 ||
	    nqueues > VDEV_MAX_QUEUES || queue_max == 0 ||
	    queue_max > VIOMMU_VIRTIO_QUEUE_MAX)
		return -EINVAL;
	memset(dev, 0, sizeof(*dev));
	dev->ops = ops;
	dev->priv = priv;
	dev->mem = mem;
	if (log)
		dev->log = *log;
	if (alloc)
		dev->alloc = *alloc;
	dev->host_features = features |
			     (1ull << VIOMMU_VIRTIO_F_VERSION_1);
	for (q = 0; q < nqueues; q++) {
		err = vq_init(&dev->vqs[q], mem, &dev->log, &dev->alloc,
			      queue_names[q], queue_max);
		if (err)
			goto fail;
		vq_reset(&dev->vqs[q]);
	}
	dev->nqueues = nqueues;
	if (pthread_mutex_init(&dev->lock, NULL)) {
		err = -ENOMEM;
		goto fail;
	}
	return 0;
fail:
	while (q--)
		vq_destroy(&dev->vqs[q]);
	return err;
}

void vdev_destroy(struct viommu_virtio_dev *dev)
{
	if (!dev || !dev->ops)
		return;
	for (uint16_t q = 0; q < dev->nqueues; q++)
		vq_destroy(&dev->vqs[q]);
	pthread_mutex_destroy(&dev->lock);
	dev->ops = NULL;
}

uint64_t vdev_log_suppressed(const struct viommu_virtio_dev *dev)
{
	uint64_t n = rl_suppressed(&dev->rl);

	for (uint16_t q = 0; q < dev->nqueues; q++)
		n += rl_suppressed(&dev->vqs[q].rl);
	return n;
}

struct vq *vdev_queue(struct viommu_virtio_dev *dev, uint16_t q)
{
	return dev && q < dev->nqueues ? &dev->vqs[q] : NULL;
}

void __vdev_irq(struct viommu_virtio_dev *dev, uint8_t isr, uint16_t q)
{
	dev->isr |= isr;
	if (dev->irq_fn)
		dev->irq_fn(dev->irq_opaque, isr, q);
}

/* any_broken() - whether a queue broke (and so logged its reason). */
static bool any_broken(const struct viommu_virtio_dev *dev)
{
	for (uint16_t q = 0; q < dev->nqueues; q++)
		if (dev->vqs[q].broken)
			return true;
	return false;
}

void __vdev_needs_reset(struct viommu_virtio_dev *dev, const char *why)
{
	if (dev->status & S_NEEDS_RESET)
		return;
	/* A broken queue has already said why: one line per episode. */
	if (why && !any_broken(dev))
		rl_warn(&dev->rl, &dev->log, "virtio device %u: %s; device needs reset",
			 dev->ops->device_id, why);
	dev->status |= S_NEEDS_RESET;
	if (dev->status & S_DRIVER_OK)
		__vdev_irq(dev, VIOMMU_VIRTIO_ISR_CONFIG, NO_QUEUE);
}

void __vdev_queue_done(struct viommu_virtio_dev *dev, uint16_t q)
{
	if (q < dev->nqueues && vq_need_notify(&dev->vqs[q]))
		__vdev_irq(dev, VIOMMU_VIRTIO_ISR_QUEUE, q);
}

void __vdev_config_changed(struct viommu_virtio_dev *dev)
{
	dev->config_gen++;
	if (dev->status & S_DRIVER_OK)
		__vdev_irq(dev, VIOMMU_VIRTIO_ISR_CONFIG, NO_QUEUE);
}

/* sync_broken() - a queue broke outside a hook's view: needs reset. */
static void sync_broken(struct viommu_virtio_dev *dev)
{
	if (!(dev->status & S_NEEDS_RESET) && any_broken(dev))
		__vdev_needs_reset(dev, NULL);
}

/* do_reset() - device reset (@system: power cycle).  Lock held. */
static void do_reset(struct viommu_virtio_dev *dev, bool system)
{
	dev->status = 0;
	dev->guest_features = 0;
	dev->isr = 0;
	for (uint16_t q = 0; q < dev->nqueues; q++)
		vq_reset(&dev->vqs[q]);
	if (dev->ops->reset)
		dev->ops->reset(dev, system);
}

VIOMMU_EXPORT uint32_t
viommu_virtio_dev_device_id(const struct viommu_virtio_dev *dev)
{
	return dev ? dev->ops->device_id : 0; /* immutable: no lock */
}

VIOMMU_EXPORT uint64_t
viommu_virtio_dev_features(const struct viommu_virtio_dev *dev)
{
	return dev ? dev->host_features : 0; /* immutable: no lock */
}

VIOMMU_EXPORT int
viommu_virtio_dev_set_driver_features(struct viommu_virtio_dev *dev,
				      uint64_t features)
{
	int err = 0;

	if (!dev)
		return -EINVAL;
	lock(dev);
	if (dev->status & S_FEATURES_OK) {
		rl_warn(&dev->rl, &dev->log, "virtio device %u: driver features "
			 "written after FEATURES_OK: ignored",
			 dev->ops->device_id);
		err = -EBUSY;
	} else {
		dev->guest_features = features & dev->host_features;
	}
	unlock(dev);
	return err;
}

VIOMMU_EXPORT uint64_t
viommu_virtio_dev_driver_features(const struct viommu_virtio_dev *dev)
{
	uint64_t f;

	if (!dev)
		return 0;
	lock(dev);
	f = dev->guest_features;
	unlock(dev);
	return f;
}

/*
 * accept_features() - whether FEATURES_OK may be set now.  Lock held.
 * Return: NULL, or why not (for the log line).
 */
static const char *accept_features(struct viommu_virtio_dev *dev,
				   uint8_t status)
{
	if ((status & (S_ACK | S_DRIVER)) != (S_ACK | S_DRIVER))
		return "FEATURES_OK before ACKNOWLEDGE and DRIVER";
	if (!__vdev_has(dev, VIOMMU_VIRTIO_F_VERSION_1))
		return "VIRTIO_F_VERSION_1 not accepted";
	if (dev->ops->features_ok &&
	    dev->ops->features_ok(dev, dev->guest_features))
		return "the device refuses this feature set";
	return NULL;
}

/*
 * apply_status() - the driver set the bits in @added (never 0, never a
 * clear).  Refused bits stay clear.  Lock held.  Return: 0; -EINVAL.
 */
static int apply_status(struct viommu_virtio_dev *dev, uint8_t added)
{
	uint8_t requested = dev->status | added, status = requested;
	const char *why = NULL;

	if (added & S_FEATURES_OK) {
		why = accept_features(dev, status);
		if (why)
			status &= (uint8_t)~(S_FEATURES_OK | S_DRIVER_OK);
	}
	if (!why && (added & S_DRIVER_OK) && !(status & S_FEATURES_OK)) {
		why = "DRIVER_OK without FEATURES_OK";
		status &= (uint8_t)~S_DRIVER_OK;
	}
	dev->status = status;
	if (why) {
		rl_warn(&dev->rl, &dev->log, "virtio device %u: status 0x%02x refused: "
			 "%s (features 0x%llx)", dev->ops->device_id,
			 requested, why,
			 (unsigned long long)dev->guest_features);
		return -EINVAL;
	}
	if (added & S_FAILED)
		rl_info(&dev->rl, &dev->log, "virtio device %u: driver set FAILED",
			 dev->ops->device_id);
	return 0;
}

VIOMMU_EXPORT int viommu_virtio_dev_set_status(struct viommu_virtio_dev *dev,
					       uint8_t status)
{
	uint8_t cur, want, cleared;
	int err = 0;

	if (!dev)
		return -EINVAL;
	lock(dev);
	if (status == 0) {
		do_reset(dev, false);
		goto out;
	}
	/* NEEDS_RESET is the device's: a driver writing it back is fine. */
	cur = dev->status & S_DRIVER_BITS;
	want = status & S_DRIVER_BITS;
	cleared = cur & (uint8_t)~want;
	if (cleared || (status & ~(S_DRIVER_BITS | S_NEEDS_RESET))) {
		rl_warn(&dev->rl, &dev->log, "virtio device %u: status 0x%02x refused: "
			 "a driver may not clear bits (0x%02x) or set unknown "
			 "ones", dev->ops->device_id, status, cleared);
		err = -EINVAL;
		goto out;
	}
	if (want != cur)
		err = apply_status(dev, want & (uint8_t)~cur);
out:
	unlock(dev);
	return err;
}

VIOMMU_EXPORT uint8_t viommu_virtio_dev_status(struct viommu_virtio_dev *dev)
{
	uint8_t s;

	if (!dev)
		return 0;
	lock(dev);
	sync_broken(dev);
	s = dev->status;
	unlock(dev);
	return s;
}

VIOMMU_EXPORT uint16_t
viommu_virtio_dev_num_queues(const struct viommu_virtio_dev *dev)
{
	return dev ? dev->nqueues : 0; /* immutable: no lock */
}

VIOMMU_EXPORT uint16_t
viommu_virtio_dev_queue_max(const struct viommu_virtio_dev *dev, uint16_t q)
{
	return dev && q < dev->nqueues ? dev->vqs[q].max_size : 0;
}

/* setup_queue() - queue_setup with the lock held.  Return: 0/-errno. */
static int setup_queue(struct viommu_virtio_dev *dev, uint16_t q,
		       const struct viommu_virtio_queue_cfg *cfg)
{
	struct vq *vq = &dev->vqs[q];
	unsigned int tok;
	int ret;

	if (dev->status & S_DRIVER_OK) {
		rl_warn(&dev->rl, &dev->log, "virtio device %u: queue %u set-up after "
			 "DRIVER_OK refused", dev->ops->device_id, q);
		return -EBUSY;
	}
	if (!cfg) {
		vq_reset(vq);
		return 0;
	}
	if (!(dev->status & S_FEATURES_OK)) {
		rl_warn(&dev->rl, &dev->log, "virtio device %u: queue %u set-up before "
			 "FEATURES_OK refused", dev->ops->device_id, q);
		return -EINVAL;
	}
	vq->io = dev->iommu &&
		 __vdev_has(dev, VIOMMU_VIRTIO_F_ACCESS_PLATFORM) ?
		 dev->iommu : NULL;
	tok = viommu_mem_read_lock(dev->mem);
	ret = vq_configure(vq, cfg->size, cfg->desc, cfg->driver, cfg->device,
			   __vdev_has(dev, VIOMMU_VIRTIO_F_RING_PACKED),
			   __vdev_has(dev, VIOMMU_VIRTIO_F_EVENT_IDX),
			   __vdev_has(dev, VIOMMU_VIRTIO_F_INDIRECT_DESC));
	viommu_mem_read_unlock(dev->mem, tok);
	return ret;
}

VIOMMU_EXPORT int
viommu_virtio_dev_queue_setup(struct viommu_virtio_dev *dev, uint16_t q,
			      const struct viommu_virtio_queue_cfg *cfg)
{
	int err;

	if (!dev || q >= dev->nqueues)
		return -EINVAL;
	lock(dev);
	err = setup_queue(dev, q, cfg);
	unlock(dev);
	return err;
}

/*
 * queue_idle_why() - why queue @q cannot run now (device not live, queue
 * disabled or broken, no handler), or NULL if it can.  Lock held.
 */
static const char *queue_idle_why(const struct viommu_virtio_dev *dev,
				  uint16_t q)
{
	if ((dev->status & (S_DRIVER_OK | S_NEEDS_RESET | S_FAILED)) !=
	    S_DRIVER_OK)
		return "device not live";
	if (!dev->vqs[q].ready || dev->vqs[q].broken)
		return "queue disabled";
	return dev->ops->queue_notify ? NULL : "no handler";
}

VIOMMU_EXPORT int viommu_virtio_dev_notify(struct viommu_virtio_dev *dev,
					   uint16_t q)
{
	const char *why;

	if (!dev || q >= dev->nqueues)
		return -EINVAL;
	lock(dev);
	why = queue_idle_why(dev, q);
	if (why) {
		log_debug(&dev->log, "virtio device %u: kick on queue %u "
			  "ignored: %s (status 0x%02x)", dev->ops->device_id,
			  q, why, dev->status);
	} else {
		/*
		 * One memory read section for the whole batch: the virtqueue
		 * code accesses the rings without opening its own (see
		 * virtqueue.h); replacement of the region set waits for it.
		 */
		unsigned int tok = viommu_mem_read_lock(dev->mem);

		dev->ops->queue_notify(dev, q);
		viommu_mem_read_unlock(dev->mem, tok);
		sync_broken(dev);
	}
	unlock(dev);
	return 0;
}

/*
 * poll_queue() - viommu_virtio_dev_poll() with the lock and a memory read
 * section held.  The kick state is written first (turning kicks on ends
 * with a full fence), so the look at the ring that follows also catches a
 * chain the driver added without notifying while kicks were off.
 */
static void poll_queue(struct viommu_virtio_dev *dev, uint16_t q, bool kicks,
		       unsigned int *done)
{
	struct vq *vq = &dev->vqs[q];
	uint32_t before = vq->popped;

	if (vq_set_kicks(vq, kicks) == 0 && vq_has_avail(vq)) {
		dev->ops->queue_notify(dev, q);
		if (!kicks)
			(void)vq_set_kicks(vq, false); /* EVENT_IDX: new mark */
	}
	*done = vq->popped - before;
}

VIOMMU_EXPORT int viommu_virtio_dev_poll(struct viommu_virtio_dev *dev,
					 uint16_t q, bool kicks,
					 unsigned int *done)
{
	unsigned int n = 0;

	if (!dev || q >= dev->nqueues)
		return -EINVAL;
	lock(dev);
	if (!queue_idle_why(dev, q)) {
		/* One memory read section, as in viommu_virtio_dev_notify(). */
		unsigned int tok = viommu_mem_read_lock(dev->mem);

		poll_queue(dev, q, kicks, &n);
		viommu_mem_read_unlock(dev->mem, tok);
		sync_broken(dev);
	}
	unlock(dev);
	if (done)
		*done = n;
	return 0;
}

VIOMMU_EXPORT int viommu_virtio_dev_config_read(struct viommu_virtio_dev *dev,
						uint32_t offset, void *buf,
						uint32_t len)
{
	if (!dev || !buf || (len != 1 && len != 2 && len != 4 && len != 8))
		return -EINVAL;
	memset(buf, 0, len); /* past the end reads as zeroes */
	lock(dev);
	if (dev->ops->config_read)
		dev->ops->config_read(dev, offset, buf, len);
	unlock(dev);
	return 0;
}

VIOMMU_EXPORT int
viommu_virtio_dev_config_write(struct viommu_virtio_dev *dev, uint32_t offset,
			       const void *buf, uint32_t len)
{
	if (!dev || !buf || (len != 1 && len != 2 && len != 4 && len != 8))
		return -EINVAL;
	lock(dev);
	if (dev->ops->config_write)
		dev->ops->config_write(dev, offset, buf, len);
	else
		rl_warn(&dev->rl, &dev->log, "virtio device %u: write to read-only "
			 "config offset %u ignored", dev->ops->device_id,
			 offset);
	unlock(dev);
	return 0;
}

VIOMMU_EXPORT uint32_t
viommu_virtio_dev_config_generation(struct viommu_virtio_dev *dev)
{
	uint32_t g;

	if (!dev)
		return 0;
	lock(dev);
	g = dev->config_gen;
	unlock(dev);
	return g;
}

VIOMMU_EXPORT void viommu_virtio_dev_notify_config(struct viommu_virtio_dev *dev)
{
	if (!dev)
		return;
	lock(dev);
	__vdev_config_changed(dev);
	unlock(dev);
}

VIOMMU_EXPORT void viommu_virtio_dev_set_needs_reset(struct viommu_virtio_dev *dev,
						     const char *why)
{
	if (!dev)
		return;
	lock(dev);
	__vdev_needs_reset(dev, why ? why : "needs reset requested");
	unlock(dev);
}

VIOMMU_EXPORT uint8_t viommu_virtio_dev_read_isr(struct viommu_virtio_dev *dev)
{
	uint8_t isr;

	if (!dev)
		return 0;
	lock(dev);
	isr = dev->isr;
	dev->isr = 0;
	unlock(dev);
	return isr;
}

VIOMMU_EXPORT void
viommu_virtio_dev_set_irq(struct viommu_virtio_dev *dev,
			  void (*fn)(void *opaque, uint8_t isr, uint16_t q),
			  void *opaque)
{
	if (!dev)
		return;
	lock(dev);
	dev->irq_fn = fn;
	dev->irq_opaque = fn ? opaque : NULL;
	unlock(dev);
}

VIOMMU_EXPORT void viommu_virtio_dev_reset(struct viommu_virtio_dev *dev)
{
	if (!dev)
		return;
	lock(dev);
	do_reset(dev, true);
	unlock(dev);
}
