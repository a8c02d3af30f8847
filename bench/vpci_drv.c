/*
 * vpci_drv.c - a register-level virtio-iommu driver over an abstract bus
 * (see vpci_drv.h), written from the VIRTIO 1.x and PCI specifications:
 * BAR sizing and placement, the vendor capability list, the device status
 * handshake, one split virtqueue and two-descriptor request chains.
 *
 * Every bus operation goes through one of six counting wrappers, so the
 * statistics say exactly how many accesses a batch cost.  Guest memory is
 * never trusted: used elements are checked (ID of a slot of this batch,
 * each once, used length 4) before a status is believed.
 */
#include "vpci_drv.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* PCI configuration space. */
#define PCI_VENDOR 0x00
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34
#define PCI_CMD_MEMORY 0x2
#define PCI_CMD_MASTER 0x4
#define PCI_STATUS_CAPS 0x10
#define PCI_CAP_VENDOR 0x09
#define MAX_CAPS 48

/* virtio-pci capability types and common configuration (VIRTIO 1.x). */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_STATUS 0x14
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_ENABLE 0x1c
#define CC_Q_NOFF 0x1e
#define CC_Q_DESC 0x20
#define CC_Q_DRIVER 0x28
#define CC_Q_DEVICE 0x30

#define ST_ACK 0x01
#define ST_DRIVER 0x02
#define ST_DRIVER_OK 0x04
#define ST_FEATURES_OK 0x08
#define ST_NEEDS_RESET 0x40
#define ST_FAILED 0x80

#define F_MAP_UNMAP (1ull << 2)
#define F_VERSION_1 (1ull << 32)

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_IOMMU_DEVICE 0x1057 /* 0x1040 + device ID 23 */

#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define AVAIL_F_NO_INTERRUPT 1
#define USED_F_NO_NOTIFY 1
#define TAIL_LEN 4
#define RING_ALIGN 4096ull
#define RESET_POLLS 1000
#define DIRECT_WAIT_NS 2000000000ull /* vpci_wait() on a direct_mem bus */

/* Readable bytes (head + body) of each request type. */
static const uint8_t req_len[] = {
	[VPCI_REQ_ATTACH] = 20, [VPCI_REQ_DETACH] = 20,
	[VPCI_REQ_MAP] = 36, [VPCI_REQ_UNMAP] = 28,
};

/* fail() - record why, return @err. */
static int __attribute__((format(printf, 3, 4)))
fail(struct vpci_dev *d, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	return err;
}

/* ------------------------------------------------------------------ */
/* Counting bus wrappers                                                */

static int cfg_rd(struct vpci_dev *d, uint16_t off, int size, uint32_t *v)
{
	int err = d->bus->ops->cfg_read(d->bus->opaque, d->bdf, off, size, v);

	d->st.cfg++;
	return err ? fail(d, err, "config read at %#x failed", off) : 0;
}

static int cfg_wr(struct vpci_dev *d, uint16_t off, int size, uint32_t v)
{
	int err = d->bus->ops->cfg_write(d->bus->opaque, d->bdf, off, size,
					 v);

	d->st.cfg++;
	return err ? fail(d, err, "config write at %#x failed", off) : 0;
}

static int mmio_rd(struct vpci_dev *d, uint64_t a, int size, uint64_t *v)
{
	int err = d->bus->ops->mmio_read(d->bus->opaque, a, size, v);

	d->st.mmio_rd++;
	return err ? fail(d, err, "MMIO read at %#llx failed",
			  (unsigned long long)a) : 0;
}

static int mmio_wr(struct vpci_dev *d, uint64_t a, int size, uint64_t v)
{
	int err = d->bus->ops->mmio_write(d->bus->opaque, a, size, v);

	d->st.mmio_wr++;
	return err ? fail(d, err, "MMIO write at %#llx failed",
			  (unsigned long long)a) : 0;
}

static int mem_rd(struct vpci_dev *d, uint64_t a, void *buf, size_t len)
{
	int err = d->bus->ops->mem_read(d->bus->opaque, a, buf, len);

	d->st.mem_rd++;
	return err ? fail(d, err, "RAM read at %#llx failed",
			  (unsigned long long)a) : 0;
}

static int mem_wr(struct vpci_dev *d, uint64_t a, const void *buf,
		  size_t len)
{
	int err = d->bus->ops->mem_write(d->bus->opaque, a, buf, len);

	d->st.mem_wr++;
	return err ? fail(d, err, "RAM write at %#llx failed",
			  (unsigned long long)a) : 0;
}

/* Common configuration accessors. */
static int cc_rd(struct vpci_dev *d, unsigned off, int size, uint64_t *v)
{
	return mmio_rd(d, d->common + off, size, v);
}

static int cc_wr(struct vpci_dev *d, unsigned off, int size, uint64_t v)
{
	return mmio_wr(d, d->common + off, size, v);
}

/* Little-endian stores into a byte buffer. */
static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* ------------------------------------------------------------------ */
/* PCI: BARs and capabilities                                           */

/*
 * probe_bar() - size BAR @i (and its upper half if 64-bit); *@is64 says
 * whether it took two slots.  A zero *@size: the BAR is absent or an I/O BAR.
 */
static int probe_bar(struct vpci_dev *d, int i, uint64_t *size, bool *is64)
{
	uint16_t off = (uint16_t)(PCI_BAR0 + 4 * i);
	uint32_t orig, lo, hi_orig = 0, hi = 0xffffffff;
	uint64_t mask;
	int err;

	*size = 0;
	*is64 = false;
	if ((err = cfg_rd(d, off, 4, &orig)) ||
	    (err = cfg_wr(d, off, 4, 0xffffffff)) ||
	    (err = cfg_rd(d, off, 4, &lo)) || (err = cfg_wr(d, off, 4, orig)))
		return err;
	if (orig & 1)
		return 0; /* I/O space: not used by this driver */
	*is64 = ((orig >> 1) & 3) == 2;
	if (*is64 && i < 5) {
		if ((err = cfg_rd(d, off + 4, 4, &hi_orig)) ||
		    (err = cfg_wr(d, off + 4, 4, 0xffffffff)) ||
		    (err = cfg_rd(d, off + 4, 4, &hi)) ||
		    (err = cfg_wr(d, off + 4, 4, hi_orig)))
			return err;
	}
	mask = (uint64_t)hi << 32 | (lo & ~0xfu);
	if ((uint32_t)mask == 0 && (!*is64 || !hi))
		return 0;
	*size = ~mask + 1;
	return 0;
}

/* place_bar() - put BAR @i of @size in the bus's MMIO window. */
static int place_bar(struct vpci_dev *d, int i, uint64_t size, bool is64)
{
	uint16_t off = (uint16_t)(PCI_BAR0 + 4 * i);
	uint64_t a = align_up(d->bus->mmio_next, size < 4096 ? 4096 : size);
	int err;

	if (a + size > d->bus->mmio_end || a + size < a ||
	    (!is64 && a + size > (1ull << 32)))
		return fail(d, -ENOSPC, "BAR%d (%#llx bytes) does not fit "
			    "the MMIO window", i, (unsigned long long)size);
	err = cfg_wr(d, off, 4, (uint32_t)a);
	if (!err && is64)
		err = cfg_wr(d, off + 4, 4, (uint32_t)(a >> 32));
	if (err)
		return err;
	d->bar[i] = a;
	d->bar_size[i] = size;
	d->bus->mmio_next = a + size;
	return 0;
}

/* setup_bars() - size and place every memory BAR, enable decoding. */
static int setup_bars(struct vpci_dev *d)
{
	int err = cfg_wr(d, PCI_COMMAND, 2, 0);

	for (int i = 0; !err && i < 6; i++) {
		uint64_t size;
		bool is64;

		err = probe_bar(d, i, &size, &is64);
		if (!err && size)
			err = place_bar(d, i, size, is64);
		if (is64)
			i++;
	}
	if (!err)
		err = cfg_wr(d, PCI_COMMAND, 2, PCI_CMD_MEMORY |
			     PCI_CMD_MASTER);
	return err;
}

/*
 * take_cap() - record a virtio capability (the first usable one of each
 * type wins): BAR @bar, [@off, @off + @len).
 */
static void take_cap(struct vpci_dev *d, uint8_t type, uint8_t bar,
		     uint32_t off, uint32_t len, uint32_t mult)
{
	uint64_t *slot[] = { [CAP_COMMON] = &d->common,
			     [CAP_NOTIFY] = &d->notify_base,
			     [CAP_ISR] = &d->isr, [CAP_DEVICE] = &d->devcfg };

	if (type < CAP_COMMON || type > CAP_DEVICE || *slot[type] ||
	    bar > 5 || !d->bar_size[bar] ||
	    (uint64_t)off + len > d->bar_size[bar])
		return;
	*slot[type] = d->bar[bar] + off;
	if (type == CAP_NOTIFY)
		d->notify_mult = mult;
}

/* walk_caps() - find the virtio structures in the capability list. */
static int walk_caps(struct vpci_dev *d)
{
	uint32_t st, ptr, w0, w1, off, len, mult = 0;
	int err = cfg_rd(d, PCI_STATUS, 2, &st);

	if (!err && !(st & PCI_STATUS_CAPS))
		return fail(d, -ENODEV, "no capability list");
	if (!err)
		err = cfg_rd(d, PCI_CAP_PTR, 1, &ptr);
	for (int n = 0; !err && (ptr &= 0xfc) && n < MAX_CAPS; n++) {
		if ((err = cfg_rd(d, (uint16_t)ptr, 4, &w0)))
			break;
		if ((w0 & 0xff) == PCI_CAP_VENDOR &&
		    ((w0 >> 16) & 0xff) >= 16) {
			err = cfg_rd(d, (uint16_t)(ptr + 4), 4, &w1);
			if (!err)
				err = cfg_rd(d, (uint16_t)(ptr + 8), 4, &off);
			if (!err)
				err = cfg_rd(d, (uint16_t)(ptr + 12), 4, &len);
			if (!err && (w0 >> 24) == CAP_NOTIFY)
				err = cfg_rd(d, (uint16_t)(ptr + 16), 4,
					     &mult);
			if (!err)
				take_cap(d, (uint8_t)(w0 >> 24),
					 (uint8_t)w1, off, len, mult);
		}
		ptr = (w0 >> 8) & 0xff;
	}
	if (err)
		return err;
	if (!d->common || !d->notify_base || !d->devcfg)
		return fail(d, -ENODEV, "virtio common, notify or device "
			    "configuration capability missing");
	return 0;
}

/* ------------------------------------------------------------------ */
/* virtio: status, features, configuration, queue                      */

/* set_status() - write the device status, read it back into *@now. */
static int set_status(struct vpci_dev *d, uint8_t s, uint64_t *now)
{
	int err = cc_wr(d, CC_STATUS, 1, s);

	return err ? err : cc_rd(d, CC_STATUS, 1, now);
}

/* reset() - status 0, then wait (bounded) until it reads back 0. */
static int reset(struct vpci_dev *d)
{
	uint64_t s = 1;
	int err = cc_wr(d, CC_STATUS, 1, 0);

	for (int i = 0; !err && i < RESET_POLLS; i++) {
		err = cc_rd(d, CC_STATUS, 1, &s);
		if (!err && !s)
			return 0;
	}
	return err ? err : fail(d, -ETIMEDOUT, "device reset never ended");
}

/* rd64_halves() - a 64-bit field as two 32-bit reads at @a. */
static int rd64_halves(struct vpci_dev *d, uint64_t a, uint64_t *v)
{
	uint64_t lo, hi;
	int err = mmio_rd(d, a, 4, &lo);

	if (!err)
		err = mmio_rd(d, a + 4, 4, &hi);
	if (!err)
		*v = hi << 32 | (lo & 0xffffffff);
	return err;
}

/* negotiate() - VERSION_1 + MAP_UNMAP, FEATURES_OK. */
static int negotiate(struct vpci_dev *d)
{
	uint64_t lo, hi, s;
	int err;

	if ((err = cc_wr(d, CC_DFSELECT, 4, 0)) ||
	    (err = cc_rd(d, CC_DF, 4, &lo)) ||
	    (err = cc_wr(d, CC_DFSELECT, 4, 1)) ||
	    (err = cc_rd(d, CC_DF, 4, &hi)))
		return err;
	d->dev_features = hi << 32 | lo;
	if ((d->dev_features & (F_VERSION_1 | F_MAP_UNMAP)) !=
	    (F_VERSION_1 | F_MAP_UNMAP))
		return fail(d, -ENOTSUP, "device features %#llx lack "
			    "VERSION_1 or MAP_UNMAP",
			    (unsigned long long)d->dev_features);
	d->drv_features = F_VERSION_1 | F_MAP_UNMAP;
	if ((err = cc_wr(d, CC_GFSELECT, 4, 0)) ||
	    (err = cc_wr(d, CC_GF, 4, (uint32_t)d->drv_features)) ||
	    (err = cc_wr(d, CC_GFSELECT, 4, 1)) ||
	    (err = cc_wr(d, CC_GF, 4, d->drv_features >> 32)) ||
	    (err = set_status(d, ST_ACK | ST_DRIVER | ST_FEATURES_OK, &s)))
		return err;
	if (!(s & ST_FEATURES_OK))
		return fail(d, -ENOTSUP, "device refused the features "
			    "(status %#llx)", (unsigned long long)s);
	return 0;
}

/* read_config() - the virtio-iommu configuration fields. */
static int read_config(struct vpci_dev *d)
{
	struct vpci_viommu_cfg *c = &d->cfg;
	uint64_t v;
	int err;

	if ((err = rd64_halves(d, d->devcfg, &c->page_size_mask)) ||
	    (err = rd64_halves(d, d->devcfg + 8, &c->input_start)) ||
	    (err = rd64_halves(d, d->devcfg + 16, &c->input_end)) ||
	    (err = mmio_rd(d, d->devcfg + 24, 4, &v)))
		return err;
	c->domain_start = (uint32_t)v;
	if ((err = mmio_rd(d, d->devcfg + 28, 4, &v)))
		return err;
	c->domain_end = (uint32_t)v;
	if ((err = mmio_rd(d, d->devcfg + 32, 4, &v)))
		return err;
	c->probe_size = (uint32_t)v;
	return 0;
}

/* ring_layout() - the guest addresses of everything, from @base. */
static uint64_t ring_layout(uint16_t q, uint64_t base, uint64_t *avail,
			    uint64_t *used, uint64_t *slots, uint64_t *tails)
{
	uint64_t a = base + align_up(16ull * q, RING_ALIGN);
	uint64_t u = a + align_up(6ull + 2ull * q, RING_ALIGN);
	uint64_t s = u + align_up(6ull + 8ull * q, RING_ALIGN);
	uint64_t t = s + align_up((uint64_t)(q / 2) * VPCI_SLOT_SIZE, 64);

	if (avail) {
		*avail = a;
		*used = u;
		*slots = s;
		*tails = t;
	}
	return t + (uint64_t)(q / 2) * TAIL_LEN - base;
}

uint64_t vpci_ram_needed(uint16_t qsize)
{
	return ring_layout(qsize, 0, NULL, NULL, NULL, NULL);
}

/* alloc_shadows() - the driver's own copies and scratch buffer. */
static int alloc_shadows(struct vpci_dev *d, uint64_t need)
{
	d->buf_size = need > 65536 ? need : 65536;
	d->avail_ring = calloc(d->qsize, sizeof(*d->avail_ring));
	d->slot_len = calloc(d->qsize / 2, 1);
	d->buf = calloc(1, d->buf_size);
	if (!d->avail_ring || !d->slot_len || !d->buf)
		return fail(d, -ENOMEM, "out of memory");
	return 0;
}

/* place_rings() - lay out and clear the ring memory. */
static int place_rings(struct vpci_dev *d, const struct vpci_config *c)
{
	uint64_t need = ring_layout(d->qsize, c->ram_base, &d->avail,
				    &d->used, &d->slots, &d->tails);
	int err;

	if (c->ram_base % RING_ALIGN || need > c->ram_size)
		return fail(d, -ENOSPC, "ring memory at %#llx: %#llx bytes, "
			    "need %#llx (4 KiB aligned)",
			    (unsigned long long)c->ram_base,
			    (unsigned long long)c->ram_size,
			    (unsigned long long)need);
	d->desc = c->ram_base;
	err = alloc_shadows(d, need);
	if (err)
		return err;
	memset(d->buf, 0, need);
	put16(d->buf + (d->avail - d->desc), AVAIL_F_NO_INTERRUPT);
	return mem_wr(d, d->desc, d->buf, need);
}

/* setup_queue() - queue 0: size, rings, notify address, enable. */
static int setup_queue(struct vpci_dev *d, const struct vpci_config *c)
{
	static const unsigned reg[3] = { CC_Q_DESC, CC_Q_DRIVER,
					 CC_Q_DEVICE };
	uint64_t max, noff;
	int err;

	if ((err = cc_wr(d, CC_Q_SELECT, 2, 0)) ||
	    (err = cc_rd(d, CC_Q_SIZE, 2, &max)))
		return err;
	if (max < 2)
		return fail(d, -ENODEV, "request queue size %llu",
			    (unsigned long long)max);
	d->qsize = (uint16_t)(max > VPCI_MAX_QUEUE ? VPCI_MAX_QUEUE : max);
	if (c->queue_size && c->queue_size < d->qsize)
		d->qsize = c->queue_size;
	if (d->qsize & (d->qsize - 1))
		return fail(d, -EINVAL, "queue size %u is not a power of two",
			    d->qsize);
	if ((d->qsize != max && (err = cc_wr(d, CC_Q_SIZE, 2, d->qsize))) ||
	    (err = place_rings(d, c)))
		return err;
	for (int i = 0; i < 3; i++) {
		uint64_t a = i == 0 ? d->desc : i == 1 ? d->avail : d->used;

		if ((err = cc_wr(d, reg[i], 4, (uint32_t)a)) ||
		    (err = cc_wr(d, reg[i] + 4, 4, a >> 32)))
			return err;
	}
	if ((err = cc_rd(d, CC_Q_NOFF, 2, &noff)) ||
	    (err = cc_wr(d, CC_Q_ENABLE, 2, 1)))
		return err;
	d->notify_addr = d->notify_base + noff * d->notify_mult;
	return 0;
}

/* check_ids() - a modern virtio-iommu function. */
static int check_ids(struct vpci_dev *d)
{
	uint32_t id;
	int err = cfg_rd(d, PCI_VENDOR, 4, &id);

	if (err)
		return err;
	if ((id & 0xffff) != VIRTIO_VENDOR || id >> 16 != VIRTIO_IOMMU_DEVICE)
		return fail(d, -ENODEV, "%02x:%02x.%x is %04x:%04x, not a "
			    "modern virtio-iommu (%04x:%04x)", d->bdf >> 8,
			    (d->bdf >> 3) & 31, d->bdf & 7, id & 0xffff,
			    id >> 16, VIRTIO_VENDOR, VIRTIO_IOMMU_DEVICE);
	return 0;
}

int vpci_init(struct vpci_dev *d, struct vpci_bus *bus,
	      const struct vpci_config *c)
{
	uint64_t s;
	int err;

	memset(d, 0, sizeof(*d));
	d->bus = bus;
	d->bdf = c->bdf;
	if ((err = check_ids(d)) || (err = setup_bars(d)) ||
	    (err = walk_caps(d)) || (err = reset(d)) ||
	    (err = set_status(d, ST_ACK, &s)) ||
	    (err = set_status(d, ST_ACK | ST_DRIVER, &s)) ||
	    (err = negotiate(d)) || (err = read_config(d)) ||
	    (err = setup_queue(d, c)) ||
	    (err = set_status(d, ST_ACK | ST_DRIVER | ST_FEATURES_OK |
			      ST_DRIVER_OK, &s)))
		return err;
	if (!(s & ST_DRIVER_OK) || (s & (ST_NEEDS_RESET | ST_FAILED)))
		return fail(d, -EIO, "device status %#llx after DRIVER_OK",
			    (unsigned long long)s);
	return 0;
}

void vpci_fini(struct vpci_dev *d)
{
	if (d->common && d->bus)
		(void)cc_wr(d, CC_STATUS, 1, 0);
	free(d->avail_ring);
	free(d->slot_len);
	free(d->buf);
	d->avail_ring = NULL;
	d->slot_len = NULL;
	d->buf = NULL;
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

/* encode() - the readable bytes of @r at @p; returns their length. */
static unsigned encode(const struct vpci_req *r, uint8_t *p)
{
	unsigned len = req_len[r->type];

	memset(p, 0, len);
	p[0] = r->type;
	put32(p + 4, r->domain);
	switch (r->type) {
	case VPCI_REQ_ATTACH:
	case VPCI_REQ_DETACH:
		put32(p + 8, r->endpoint);
		put32(p + 12, r->type == VPCI_REQ_ATTACH ? r->flags : 0);
		break;
	case VPCI_REQ_MAP:
		put64(p + 8, r->virt_start);
		put64(p + 16, r->virt_end);
		put64(p + 24, r->phys_start);
		put32(p + 32, r->flags);
		break;
	default: /* UNMAP */
		put64(p + 8, r->virt_start);
		put64(p + 16, r->virt_end);
		break;
	}
	return len;
}

/* write_descs() - rewrite the chains of slots whose length changed. */
static int write_descs(struct vpci_dev *d, const uint8_t *len, unsigned n,
		       uint8_t *scratch)
{
	unsigned lo = n, hi = 0;

	for (unsigned j = 0; j < n; j++)
		if (d->slot_len[j] != len[j]) {
			lo = j < lo ? j : lo;
			hi = j;
		}
	if (lo == n)
		return 0;
	for (unsigned j = lo; j <= hi; j++) {
		uint8_t *p = scratch + 32 * (j - lo);

		put64(p, d->slots + (uint64_t)j * VPCI_SLOT_SIZE);
		put32(p + 8, len[j]);
		put16(p + 12, DESC_F_NEXT);
		put16(p + 14, (uint16_t)(2 * j + 1));
		put64(p + 16, d->tails + (uint64_t)j * TAIL_LEN);
		put32(p + 24, TAIL_LEN);
		put16(p + 28, DESC_F_WRITE);
		put16(p + 30, 0);
		d->slot_len[j] = len[j];
	}
	return mem_wr(d, d->desc + 32ull * lo, scratch, 32ull * (hi - lo + 1));
}

/*
 * publish() - add slots 0..n-1 to the available ring and move its index:
 * one write from the index to the last ring entry touched (the whole
 * ring when the batch wraps).
 */
static int publish(struct vpci_dev *d, unsigned n, uint8_t *scratch)
{
	unsigned start = d->avail_idx % d->qsize, end;
	uint16_t idx = (uint16_t)(d->avail_idx + n);

	for (unsigned j = 0; j < n; j++)
		d->avail_ring[(start + j) % d->qsize] = (uint16_t)(2 * j);
	end = start + n <= d->qsize ? start + n : d->qsize;
	put16(scratch, idx);
	for (unsigned k = 0; k < end; k++)
		put16(scratch + 2 + 2 * k, d->avail_ring[k]);
	d->avail_idx = idx;
	return mem_wr(d, d->avail + 2, scratch, 2 + 2ull * end);
}

int vpci_submit(struct vpci_dev *d, const struct vpci_req *r, unsigned n)
{
	uint8_t len[VPCI_MAX_QUEUE / 2];
	uint8_t *scratch = d->buf + (size_t)n * VPCI_SLOT_SIZE;
	size_t bytes = 0;
	int err;

	if (d->inflight)
		return fail(d, -EBUSY, "a batch is still in flight");
	if (!n || n > d->qsize / 2)
		return fail(d, -EINVAL, "batch of %u: 1..%u requests", n,
			    d->qsize / 2);
	for (unsigned j = 0; j < n; j++) {
		if (r[j].type < VPCI_REQ_ATTACH || r[j].type > VPCI_REQ_UNMAP)
			return fail(d, -EINVAL, "request type %u", r[j].type);
		len[j] = (uint8_t)encode(&r[j], d->buf + j * VPCI_SLOT_SIZE);
		bytes = j * VPCI_SLOT_SIZE + len[j];
	}
	if ((err = write_descs(d, len, n, scratch)) ||
	    (err = mem_wr(d, d->slots, d->buf, bytes)) ||
	    (err = publish(d, n, scratch)))
		return err;
	d->inflight = n;
	d->st.requests += n;
	return 0;
}

/*
 * vpci_kick() - notify the device, unless it asked not to be (used.flags
 * NO_NOTIFY, VIRTIO 1.x §2.7.10: a device that polls the ring) and the
 * bus reads RAM for free; on a bus where reading costs a round trip the
 * driver kicks without looking, as the kick costs no more.
 */
int vpci_kick(struct vpci_dev *d)
{
	uint8_t f[2];
	int err;

	if (d->bus->direct_mem) {
		/* Barrier: our avail.idx store before the flags load. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		err = mem_rd(d, d->used, f, 2);
		if (err)
			return err;
		if (get16(f) & USED_F_NO_NOTIFY) {
			d->st.kicks_skipped++;
			return 0;
		}
	}
	d->st.kicks++;
	return mmio_wr(d, d->notify_addr, 2, 0);
}

/* used_done() - 1 if the batch in flight is used, 0 if not yet, or -errno. */
static int used_done(struct vpci_dev *d)
{
	uint8_t b[2];
	uint16_t done;
	int err;

	d->st.polls++;
	if ((err = mem_rd(d, d->used + 2, b, 2)))
		return err;
	done = (uint16_t)(get16(b) - d->used_idx);
	if (done > d->inflight)
		return fail(d, -EPROTO, "device used %u of %u requests", done,
			    d->inflight);
	return done == d->inflight;
}

/*
 * wait_direct() - on a bus that reads RAM for free a poll costs
 * nanoseconds, so a count says little: poll for up to DIRECT_WAIT_NS,
 * yielding the CPU now and then (a device thread that polls the ring may
 * be waiting for it).
 */
static int wait_direct(struct vpci_dev *d)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 1;; i++) {
		int r = used_done(d);

		if (r)
			return r < 0 ? r : 0;
		if (i % 256)
			continue;
		sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000ull +
		    (uint64_t)(t.tv_nsec - t0.tv_nsec) > DIRECT_WAIT_NS)
			return -ETIMEDOUT;
	}
}

int vpci_wait(struct vpci_dev *d, unsigned max_polls)
{
	uint64_t s = 0;
	int r = 0;

	if (d->bus->direct_mem && max_polls > 1) {
		r = wait_direct(d);
	} else {
		for (unsigned i = 0; i < max_polls && !r; i++)
			r = used_done(d);
		r = r == 1 ? 0 : r ? r : -ETIMEDOUT;
	}
	if (r != -ETIMEDOUT)
		return r;
	(void)cc_rd(d, CC_STATUS, 1, &s);
	return fail(d, -ETIMEDOUT, "batch of %u not used (%s; device status "
		    "%#llx)", d->inflight, d->bus->direct_mem && max_polls > 1 ?
		    "for 2 s" : "after the polls allowed",
		    (unsigned long long)s);
}

/* read_used() - the batch's used elements into @e (two reads on wrap). */
static int read_used(struct vpci_dev *d, uint8_t *e, unsigned n)
{
	unsigned start = d->used_idx % d->qsize;
	unsigned first = start + n <= d->qsize ? n : d->qsize - start;
	int err = mem_rd(d, d->used + 4 + 8ull * start, e, 8ull * first);

	if (!err && first < n)
		err = mem_rd(d, d->used + 4, e + 8 * first,
			     8ull * (n - first));
	return err;
}

/* check_used() - every element names a distinct slot, length 4. */
static int check_used(struct vpci_dev *d, const uint8_t *e, unsigned n,
		      uint8_t *seen)
{
	memset(seen, 0, n);
	for (unsigned k = 0; k < n; k++) {
		uint32_t id = get32(e + 8 * k), len = get32(e + 8 * k + 4);

		if (id % 2 || id / 2 >= n || seen[id / 2])
			return fail(d, -EPROTO, "used element %u: bad ID %u",
				    k, id);
		seen[id / 2] = 1;
		if (len != TAIL_LEN)
			return fail(d, -EPROTO, "used element %u (slot %u): "
				    "length %u, expected %u", k, id / 2, len,
				    TAIL_LEN);
	}
	return 0;
}

int vpci_complete(struct vpci_dev *d, uint8_t *status, unsigned n)
{
	uint8_t *e = d->buf, *seen = d->buf + 8 * VPCI_MAX_QUEUE;
	uint8_t *tails = seen + VPCI_MAX_QUEUE;
	int err;

	if (n != d->inflight)
		return fail(d, -EINVAL, "completing %u of a batch of %u", n,
			    d->inflight);
	err = read_used(d, e, n);
	if (!err)
		err = check_used(d, e, n, seen);
	d->used_idx = (uint16_t)(d->used_idx + n);
	d->inflight = 0;
	if (!err)
		err = mem_rd(d, d->tails, tails, (size_t)n * TAIL_LEN);
	for (unsigned j = 0; !err && j < n; j++)
		status[j] = tails[TAIL_LEN * j];
	return err;
}

int vpci_run(struct vpci_dev *d, const struct vpci_req *r, unsigned n,
	     uint8_t *status)
{
	int err = vpci_submit(d, r, n);

	if (!err)
		err = vpci_kick(d);
	if (!err)
		err = vpci_wait(d, 10000);
	if (!err)
		err = vpci_complete(d, status, n);
	return err;
}

int vpci_set_bus(struct vpci_dev *d, struct vpci_bus *bus)
{
	if (!bus || !bus->ops)
		return fail(d, -EINVAL, "no bus");
	if (d->inflight)
		return fail(d, -EBUSY, "switching buses with a batch of %u "
			    "in flight", d->inflight);
	d->bus = bus;
	return 0;
}

uint64_t vpci_round_trips(const struct vpci_dev *d)
{
	return d->st.cfg + d->st.mmio_rd + d->st.mmio_wr + d->st.mem_rd +
	       d->st.mem_wr;
}
