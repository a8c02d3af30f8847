/*
 * vpci_drv.h - a register-level virtio-iommu driver for a virtio-pci
 * (modern, VIRTIO 1.x) function, over an abstract bus.
 *
 * The bus is a handful of callbacks: PCI configuration read/write of one
 * function, an MMIO read/write of 1, 2, 4 or 8 bytes at a guest-physical
 * address, and guest-RAM reads and writes of byte ranges.  The driver is
 * written against that alone, so the same code can drive QEMU's device
 * through qtest, ours through QEMU's proxy or over the proxy link itself,
 * with guest RAM through qtest or mapped directly (viommu-bench qemu) -
 * or anything else that offers the callbacks.
 *
 * What the driver does:
 *  - init: check the IDs (0x1af4:0x1057), size every BAR (writing all
 *    ones) and place the memory BARs in the bus's MMIO window, enable
 *    memory decoding and bus mastering, walk the capability list for the
 *    virtio common, notify, ISR and device configuration structures, reset
 *    the device, negotiate VERSION_1 + MAP_UNMAP (nothing else), read the
 *    device configuration, set up queue 0 (the request queue) as a split
 *    ring with VIRTQ_AVAIL_F_NO_INTERRUPT, and set DRIVER_OK.  The event
 *    queue is not set up.
 *  - requests: a batch of n (<= queue size / 2) ATTACH, DETACH, MAP or
 *    UNMAP requests is placed in n slots, each a two-descriptor chain
 *    (device-readable request, device-writable 4-byte tail); the driver
 *    writes the slot descriptors (only when a slot's length changes), the
 *    request bodies (one RAM write), the available ring and its index (one
 *    write), kicks (one 16-bit write to the notify address), polls the used
 *    index, then reads the used elements and the tails (one read each) and
 *    checks every element: known ID, used length 4.
 *
 * Ring memory: [ram_base, ram_base + vpci_ram_needed(qsize)) is the
 * driver's: descriptor table, available ring, used ring (each 4 KiB
 * aligned), request slots of VPCI_SLOT_SIZE bytes, tails.
 *
 * A batch completes before the next one is submitted (one batch in flight
 * at most).  Functions return 0 or a negative errno; d->err says what went
 * wrong.  Nothing prints or exits.  d->st counts bus operations, so a
 * caller can tell how many round trips a figure includes.
 */
#ifndef VIOMMU_BENCH_VPCI_DRV_H
#define VIOMMU_BENCH_VPCI_DRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* virtio-iommu request types and the MAP flags used here. */
#define VPCI_REQ_ATTACH 1
#define VPCI_REQ_DETACH 2
#define VPCI_REQ_MAP 3
#define VPCI_REQ_UNMAP 4
#define VPCI_MAP_READ 1u
#define VPCI_MAP_WRITE 2u

#define VPCI_SLOT_SIZE 48u /* bytes per request slot (MAP needs 36) */
#define VPCI_MAX_QUEUE 1024

/**
 * struct vpci_bus_ops - how the driver reaches the machine.
 * @cfg_read/@cfg_write: configuration space of function @bdf (bus << 8 |
 *                       dev << 3 | fn), @size 1, 2 or 4, @off aligned.
 * @mmio_read/@mmio_write: one access of @size 1, 2, 4 or 8 bytes.
 * @mem_read/@mem_write: @len > 0 bytes of guest RAM.
 * Each returns 0 or a negative errno.
 */
struct vpci_bus_ops {
	int (*cfg_read)(void *opaque, uint16_t bdf, uint16_t off, int size,
			uint32_t *val);
	int (*cfg_write)(void *opaque, uint16_t bdf, uint16_t off, int size,
			 uint32_t val);
	int (*mmio_read)(void *opaque, uint64_t addr, int size,
			 uint64_t *val);
	int (*mmio_write)(void *opaque, uint64_t addr, int size,
			  uint64_t val);
	int (*mem_read)(void *opaque, uint64_t gpa, void *buf, size_t len);
	int (*mem_write)(void *opaque, uint64_t gpa, const void *buf,
			 size_t len);
};

/**
 * struct vpci_bus - a bus and its MMIO window for BARs.
 * @mmio_next: where the next BAR goes (advanced by each device's init);
 *             @mmio_end: first address past the window.
 */
struct vpci_bus {
	const struct vpci_bus_ops *ops;
	void *opaque;
	uint64_t mmio_next, mmio_end;
	bool direct_mem; /* RAM reads cost no round trip: see vpci_kick() */
};

/**
 * struct vpci_config - one device.
 * @bdf:        the function.
 * @ram_base:   guest RAM for the rings and requests (4 KiB aligned);
 * @ram_size:   its size (at least vpci_ram_needed()).
 * @queue_size: request queue size (power of two; 0: the device maximum,
 *              at most VPCI_MAX_QUEUE).
 */
struct vpci_config {
	uint16_t bdf;
	uint64_t ram_base, ram_size;
	uint16_t queue_size;
};

/** struct vpci_req - one request (fields unused by a type are ignored). */
struct vpci_req {
	uint8_t type;
	uint32_t domain, endpoint, flags;
	uint64_t virt_start, virt_end, phys_start;
};

/** struct vpci_stats - bus operations issued by the driver. */
struct vpci_stats {
	uint64_t cfg, mmio_rd, mmio_wr, mem_rd, mem_wr;
	uint64_t kicks, polls, requests;
	uint64_t kicks_skipped; /* the device asked for no notification */
};

/** struct vpci_viommu_cfg - the device configuration read at init. */
struct vpci_viommu_cfg {
	uint64_t page_size_mask;
	uint64_t input_start, input_end;
	uint32_t domain_start, domain_end;
	uint32_t probe_size;
};

struct vpci_dev {
	struct vpci_bus *bus;
	uint16_t bdf;
	uint64_t bar[6], bar_size[6];
	uint64_t common, notify_base, isr, devcfg; /* absolute addresses */
	uint32_t notify_mult;
	uint64_t notify_addr; /* queue 0 */
	uint64_t dev_features, drv_features;
	struct vpci_viommu_cfg cfg;
	uint16_t qsize;
	uint64_t desc, avail, used, slots, tails; /* guest addresses */
	uint16_t avail_idx, used_idx; /* driver's shadows */
	uint16_t *avail_ring;         /* shadow of the available ring */
	uint8_t *slot_len;            /* readable length each slot has now */
	uint32_t inflight;            /* requests of the batch in flight */
	uint8_t *buf;                 /* scratch for building writes */
	size_t buf_size;
	struct vpci_stats st;
	char err[200];
};

/* vpci_ram_needed() - bytes of guest RAM the rings of @qsize take. */
uint64_t vpci_ram_needed(uint16_t qsize);

/*
 * vpci_init() - find, configure and start the device (see the top of this
 * file).  On failure the device may be left half set up; call
 * vpci_fini() in any case.
 */
int vpci_init(struct vpci_dev *d, struct vpci_bus *bus,
	      const struct vpci_config *c);

/* vpci_fini() - reset the device (status 0) if it was started; free. */
void vpci_fini(struct vpci_dev *d);

/* vpci_submit() - place @n requests and make them available (no kick). */
int vpci_submit(struct vpci_dev *d, const struct vpci_req *r, unsigned n);

/*
 * vpci_kick() - notify the request queue, unless the device asked for no
 * notification (used.flags NO_NOTIFY) and the bus reads RAM for free
 * (@direct_mem): then the kick is skipped and counted in kicks_skipped.
 */
int vpci_kick(struct vpci_dev *d);

/*
 * vpci_wait() - poll the used index until the batch in flight is used,
 * at most @max_polls reads (-ETIMEDOUT then); on a direct_mem bus with
 * @max_polls > 1, for up to 2 seconds instead, yielding now and then.
 */
int vpci_wait(struct vpci_dev *d, unsigned max_polls);

/*
 * vpci_complete() - after vpci_wait(): read and check the used elements
 * and the tails; the batch's statuses into @status[0..n).
 */
int vpci_complete(struct vpci_dev *d, uint8_t *status, unsigned n);

/* vpci_run() - submit, kick, wait and complete one batch. */
int vpci_run(struct vpci_dev *d, const struct vpci_req *r, unsigned n,
	     uint8_t *status);

/*
 * vpci_set_bus() - reach the started device through @bus from now on.
 * @bus must lead to the same function and the same guest RAM (another
 * route to them, e.g. RAM mapped directly instead of through qtest): the
 * driver's shadows (ring indexes, slot lengths) stay valid because both
 * routes see the same memory.  Not while a batch is in flight (-EBUSY).
 */
int vpci_set_bus(struct vpci_dev *d, struct vpci_bus *bus);

/* vpci_round_trips() - every bus operation so far. */
uint64_t vpci_round_trips(const struct vpci_dev *d);

#endif /* VIOMMU_BENCH_VPCI_DRV_H */
