/*
 * virtio_pci.h - the virtio-pci modern transport (VIRTIO 1.3 §4.1), device
 * side: a PCI function (pci.h) whose BAR0 and vendor capabilities expose a
 * struct viommu_virtio_dev to a guest's virtio-pci driver.
 *
 * The function (docs/REAL-GUEST.md): vendor 0x1af4, device 0x1040 + the
 * virtio device ID, revision 1, class 0x088000, subsystem 0x1af4:0x1100,
 * INTx pin A and MSI-X.  BAR0 is 16 KiB of 32-bit memory:
 *
 *   0x0000  common configuration  (VIRTIO_PCI_COMMON_LEN bytes)
 *   0x1000  ISR status            (1 byte; reading clears it and INTx)
 *   0x2000  device configuration  (VIRTIO_PCI_DEVICE_LEN bytes)
 *   0x3000  notifications         (queue q at q * 4)
 *
 * BAR1 is 4 KiB of 32-bit memory holding the MSI-X table at 0x000 and the
 * pending-bit array at 0x800 (served by the PCI layer, pci.h).
 *
 * The capability list holds, in this order: common, notify, ISR, device
 * configuration, the PCI configuration access capability (VIRTIO 1.3
 * §4.1.4.9), which reaches BAR0 through configuration space even while
 * memory decoding is off, and MSI-X.
 *
 * MSI-X vectors: the table has nqueues + 1 entries, one per queue and one
 * for configuration changes, so a driver can give every event its own
 * vector (the convention is queue q -> vector q, config -> vector
 * nqueues, but any event may use any vector below the table size, and
 * vectors may be shared).  config_msix_vector and queue_msix_vector hold
 * what the driver wrote if it names a table entry, else NO_VECTOR, and
 * return to NO_VECTOR on reset (VIRTIO 1.3 §4.1.5.1.2).  While MSI-X
 * Enable is set an event is signalled on its vector (none for NO_VECTOR)
 * and INTx is not used; otherwise it asserts INTx, and an ISR read
 * deasserts it.
 *
 * The link feeds the embedded function with pci_cfg_read/write() and
 * pci_bar_access() or pci_bar_rw() (virtio_pci_func()), and sets its
 * intx_fn and msix_fn; DEVICE_RESET (pci_func_reset()) is a system reset
 * of the virtio device.  Queue registers written by the driver are kept
 * here per queue and handed to viommu_virtio_dev_queue_setup() when
 * queue_enable is written 1.
 *
 * Thread safety: BAR and configuration accesses may come from several
 * threads at once; the common configuration is serialised by vp->lock and
 * the virtio device serialises itself.  Reset the virtio device only
 * through this transport (status 0 or pci_func_reset()), so that the
 * queue registers kept here follow.
 */
#ifndef VIOMMU_VIRTIO_PCI_H
#define VIOMMU_VIRTIO_PCI_H

#include <viommu/virtio.h>

#include "transport/pci.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_PCI_REVISION 1
#define VIRTIO_PCI_CLASS 0x088000
#define VIRTIO_PCI_SUBSYS_VENDOR 0x1af4
#define VIRTIO_PCI_SUBSYS 0x1100

#define VIRTIO_PCI_BAR0_SIZE 0x4000
#define VIRTIO_PCI_COMMON_OFF 0x0000
#define VIRTIO_PCI_ISR_OFF 0x1000
#define VIRTIO_PCI_DEVICE_OFF 0x2000
#define VIRTIO_PCI_NOTIFY_OFF 0x3000
#define VIRTIO_PCI_REGION_SIZE 0x1000
#define VIRTIO_PCI_COMMON_LEN 0x40
#define VIRTIO_PCI_ISR_LEN 1
#define VIRTIO_PCI_DEVICE_LEN 0x100
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_PCI_MAX_QUEUES 8

/* BAR1: the MSI-X table and PBA, nqueues + 1 vectors. */
#define VIRTIO_PCI_MSIX_BAR 1
#define VIRTIO_PCI_BAR1_SIZE 0x1000
#define VIRTIO_PCI_MSIX_TABLE_OFF 0x000
#define VIRTIO_PCI_MSIX_PBA_OFF 0x800

/* Capability cfg_type values (VIRTIO 1.3 §4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5

/* Capability fields, from the capability's start. */
#define VIRTIO_PCI_CAP_LEN 2
#define VIRTIO_PCI_CAP_CFG_TYPE 3
#define VIRTIO_PCI_CAP_BAR 4
#define VIRTIO_PCI_CAP_ID 5
#define VIRTIO_PCI_CAP_OFFSET 8
#define VIRTIO_PCI_CAP_LENGTH 12
#define VIRTIO_PCI_CAP_NOTIFY_MULT 16 /* notify capability */
#define VIRTIO_PCI_CAP_CFG_DATA 16    /* PCI-cfg access capability */

/* Common configuration fields (VIRTIO 1.3 §4.1.4.3). */
#define VIRTIO_PCI_COMMON_DFSELECT 0x00
#define VIRTIO_PCI_COMMON_DF 0x04
#define VIRTIO_PCI_COMMON_GFSELECT 0x08
#define VIRTIO_PCI_COMMON_GF 0x0c
#define VIRTIO_PCI_COMMON_MSIX 0x10
#define VIRTIO_PCI_COMMON_NUMQ 0x12
#define VIRTIO_PCI_COMMON_STATUS 0x14
#define VIRTIO_PCI_COMMON_CFGGEN 0x15
#define VIRTIO_PCI_COMMON_Q_SELECT 0x16
#define VIRTIO_PCI_COMMON_Q_SIZE 0x18
#define VIRTIO_PCI_COMMON_Q_MSIX 0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE 0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF 0x1e
#define VIRTIO_PCI_COMMON_Q_DESC 0x20
#define VIRTIO_PCI_COMMON_Q_DRIVER 0x28
#define VIRTIO_PCI_COMMON_Q_DEVICE 0x30
#define VIRTIO_PCI_COMMON_Q_NDATA 0x38
#define VIRTIO_PCI_COMMON_Q_RESET 0x3a
#define VIRTIO_PCI_COMMON_ADM_Q_IDX 0x3c
#define VIRTIO_PCI_COMMON_ADM_Q_NUM 0x3e

#define VIRTIO_PCI_NO_VECTOR 0xffff

/* What the driver wrote for one queue, applied on queue_enable. */
struct virtio_pci_queue {
	uint16_t size;
	bool enabled;
	uint64_t desc, driver, device;
};

struct virtio_pci {
	struct pci_func pci;
	struct viommu_virtio_dev *dev;
	struct viommu_log log;
	uint16_t nqueues;
	uint16_t nvec;   /* MSI-X vectors: nqueues + 1 */
	uint8_t cfg_cap; /* config offset of the PCI-cfg access capability */

	pthread_mutex_t lock; /* the common configuration state below */
	uint32_t dfselect, gfselect;
	uint64_t gfeatures;
	uint16_t queue_sel;
	struct virtio_pci_queue queues[VIRTIO_PCI_MAX_QUEUES];
	/*
	 * MSI-X vectors of the config-change event and of each queue
	 * (NO_VECTOR: none): written under vp->lock with WRITE_ONCE, read by
	 * the interrupt hook with READ_ONCE and no lock (it runs under the
	 * device lock, which nests inside vp->lock).
	 */
	uint16_t config_vector;
	uint16_t queue_vector[VIRTIO_PCI_MAX_QUEUES];

	/* orders an interrupt against the INTx drop after an ISR read */
	pthread_mutex_t irq_lock;
	uint32_t irq_seq;
	struct ratelimit rl;   /* log lines of refused guest accesses */
};

/*
 * virtio_pci_init() - build the PCI function for @dev (see the top of this
 * file) and route @dev's interrupts to its MSI-X vectors or INTx.  @name
 * and @log are kept by reference and copied respectively; @dev must
 * outlive @vp.
 * Return: 0; -EINVAL (NULL @vp or @dev, a device ID above 0x3f, or more
 * than VIRTIO_PCI_MAX_QUEUES queues); -ENOMEM (the MSI-X table).
 */
int virtio_pci_init(struct virtio_pci *vp, struct viommu_virtio_dev *dev,
		    const char *name, const struct viommu_log *log);

/* virtio_pci_func() - the PCI function a link drives. */
struct pci_func *virtio_pci_func(struct virtio_pci *vp);

/*
 * virtio_pci_destroy() - detach from the device's interrupt and release
 * the function.  No access may run concurrently or follow.
 */
void virtio_pci_destroy(struct virtio_pci *vp);

#endif /* VIOMMU_VIRTIO_PCI_H */
