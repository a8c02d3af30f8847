/*
 * virtio_pci.c - the virtio-pci modern transport, device side (see
 * virtio_pci.h; VIRTIO 1.3 §4.1).
 *
 * Concept: BAR0 is four 4 KiB windows (common configuration, ISR, device
 * configuration, notifications); each access is checked against its
 * window and, for the common configuration, against a table of fields
 * with their widths (64-bit fields also as two 32-bit halves, the way
 * Linux writes them), then turned into viommu_virtio_dev_* calls.  The
 * selectors, the driver's feature words and the per-queue registers live
 * here until queue_enable hands a queue to the device.  Anything else —
 * an unknown offset, a wrong width, a write to a read-only field, a queue
 * register of a queue that is already enabled or does not exist — reads
 * 0 or is ignored, with one log line (rate limited).
 *
 * Interrupts: with MSI-X enabled (pci_msix_enabled()), a queue interrupt
 * is signalled on the queue's vector and a configuration change on the
 * config vector, through pci_msix_notify(), which keeps it pending while
 * the vector is masked; NO_VECTOR means no interrupt.  The vectors are
 * read without vp->lock (the hook runs under the device lock, which nests
 * inside vp->lock): an interrupt racing a vector write goes to the old or
 * the new vector.  Without MSI-X (or if it was disabled after the check:
 * -ENODEV) a device interrupt asserts INTx and reading the ISR deasserts
 * it, unless another interrupt arrived in between (irq_seq tells): a
 * spurious interrupt is possible, a lost one is not.
 *
 * BAR1 holds only the MSI-X table and PBA, which the PCI layer serves; the
 * rest of it reads 0 and ignores writes, with a log line.
 *
 * The PCI configuration access capability is served from the function's
 * configuration hooks: an access to its pci_cfg_data field performs the
 * BAR0 access its bar/offset/length fields describe.
 */
#include <endian.h>
#include <errno.h>

#include "transport/virtio_pci.h"
#include "base/util.h"

/* One common-configuration field: offset and natural width. */
struct field {
	uint8_t off, size;
};

static const struct field common_fields[] = {
	{ VIRTIO_PCI_COMMON_DFSELECT, 4 }, { VIRTIO_PCI_COMMON_DF, 4 },
	{ VIRTIO_PCI_COMMON_GFSELECT, 4 }, { VIRTIO_PCI_COMMON_GF, 4 },
	{ VIRTIO_PCI_COMMON_MSIX, 2 },     { VIRTIO_PCI_COMMON_NUMQ, 2 },
	{ VIRTIO_PCI_COMMON_STATUS, 1 },   { VIRTIO_PCI_COMMON_CFGGEN, 1 },
	{ VIRTIO_PCI_COMMON_Q_SELECT, 2 }, { VIRTIO_PCI_COMMON_Q_SIZE, 2 },
	{ VIRTIO_PCI_COMMON_Q_MSIX, 2 },   { VIRTIO_PCI_COMMON_Q_ENABLE, 2 },
	{ VIRTIO_PCI_COMMON_Q_NOFF, 2 },   { VIRTIO_PCI_COMMON_Q_DESC, 8 },
	{ VIRTIO_PCI_COMMON_Q_DRIVER, 8 }, { VIRTIO_PCI_COMMON_Q_DEVICE, 8 },
	{ VIRTIO_PCI_COMMON_Q_NDATA, 2 },  { VIRTIO_PCI_COMMON_Q_RESET, 2 },
	{ VIRTIO_PCI_COMMON_ADM_Q_IDX, 2 }, { VIRTIO_PCI_COMMON_ADM_Q_NUM, 2 },
};

/* bad_bar() - log a refused access to BAR @bar (rate-limited). */
static void bad_bar(struct virtio_pci *vp, unsigned int bar, const char *what,
		    uint64_t off, unsigned int size, const char *why)
{
	rl_warn(&vp->rl, &vp->log, "virtio-pci %s: %s of %u bytes at "
		"BAR%u+0x%llx refused: %s", vp->pci.name, what, size, bar,
		(unsigned long long)off, why);
}

/* bad() - log a refused access to BAR0. */
static void bad(struct virtio_pci *vp, const char *what, uint64_t off,
		unsigned int size, const char *why)
{
	bad_bar(vp, 0, what, off, size, why);
}

/*
 * find_field() - the common field a @size-byte access at @off hits.
 * 64-bit fields also take 32-bit halves.  Return: the field or NULL.
 */
static const struct field *find_field(uint32_t off, unsigned int size)
{
	for (size_t i = 0; i < ARRAY_SIZE(common_fields); i++) {
		const struct field *f = &common_fields[i];

		if (off < f->off || off >= f->off + f->size)
			continue;
		if (off == f->off && size == f->size)
			return f;
		if (f->size == 8 && size == 4 && (off - f->off) % 4 == 0)
			return f;
		return NULL;
	}
	return NULL;
}

/* reset_state() - transport state after a device reset.  vp->lock held. */
static void reset_state(struct virtio_pci *vp)
{
	vp->dfselect = 0;
	vp->gfselect = 0;
	vp->gfeatures = 0;
	vp->queue_sel = 0;
	WRITE_ONCE(vp->config_vector, VIRTIO_PCI_NO_VECTOR);
	for (uint16_t q = 0; q < vp->nqueues; q++) {
		vp->queues[q] = (struct virtio_pci_queue){
			.size = viommu_virtio_dev_queue_max(vp->dev, q),
		};
		WRITE_ONCE(vp->queue_vector[q], VIRTIO_PCI_NO_VECTOR);
	}
}

/* intx_drop() - deassert INTx unless an interrupt came after @seq. */
static void intx_drop(struct virtio_pci *vp, uint32_t seq)
{
	pthread_mutex_lock(&vp->irq_lock);
	if (vp->irq_seq == seq)
		pci_set_intx(&vp->pci, false);
	pthread_mutex_unlock(&vp->irq_lock);
}

/* irq_seq() - the interrupt counter now. */
static uint32_t irq_seq(struct virtio_pci *vp)
{
	uint32_t seq;

	pthread_mutex_lock(&vp->irq_lock);
	seq = vp->irq_seq;
	pthread_mutex_unlock(&vp->irq_lock);
	return seq;
}

/* event_vector() - the MSI-X vector of an interrupt (lock-free read). */
static uint16_t event_vector(struct virtio_pci *vp, uint8_t isr, uint16_t q)
{
	if (isr & VIOMMU_VIRTIO_ISR_CONFIG)
		return READ_ONCE(vp->config_vector);
	if (q < vp->nqueues)
		return READ_ONCE(vp->queue_vector[q]);
	return VIRTIO_PCI_NO_VECTOR;
}

/*
 * irq_cb() - the device raised an interrupt (device lock held).  MSI-X
 * enabled: signal the event's vector (none for NO_VECTOR).  Otherwise, or
 * if MSI-X was disabled meanwhile, assert INTx; the ISR bit is already
 * set, so a later ISR read drops it.
 */
static void irq_cb(void *opaque, uint8_t isr, uint16_t q)
{
	struct virtio_pci *vp = opaque;
	uint16_t vec;

	if (pci_msix_enabled(&vp->pci)) {
		vec = event_vector(vp, isr, q);
		if (vec == VIRTIO_PCI_NO_VECTOR ||
		    pci_msix_notify(&vp->pci, vec) != -ENODEV)
			return;
	}
	pthread_mutex_lock(&vp->irq_lock);
	vp->irq_seq++;
	pci_set_intx(&vp->pci, true);
	pthread_mutex_unlock(&vp->irq_lock);
}

/* cur_queue() - the selected queue, or NULL if none.  vp->lock held. */
static struct virtio_pci_queue *cur_queue(struct virtio_pci *vp)
{
	return vp->queue_sel < vp->nqueues ? &vp->queues[vp->queue_sel] : NULL;
}

/* queue_addr() - the 64-bit address field at @fo of @q. */
static uint64_t *queue_addr(struct virtio_pci_queue *q, uint32_t fo)
{
	if (fo == VIRTIO_PCI_COMMON_Q_DESC)
		return &q->desc;
	return fo == VIRTIO_PCI_COMMON_Q_DRIVER ? &q->driver : &q->device;
}

/* feature_word() - 32 bits of @features selected by @sel (0 past 1). */
static uint32_t feature_word(uint64_t features, uint32_t sel)
{
	return sel < 2 ? (uint32_t)(features >> (32 * sel)) : 0;
}

/* common_read_field() - the value of field @fo.  vp->lock held. */
static uint64_t common_read_field(struct virtio_pci *vp, uint32_t fo)
{
	struct virtio_pci_queue *q = cur_queue(vp);

	switch (fo) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		return vp->dfselect;
	case VIRTIO_PCI_COMMON_DF:
		return feature_word(viommu_virtio_dev_features(vp->dev),
				    vp->dfselect);
	case VIRTIO_PCI_COMMON_GFSELECT:
		return vp->gfselect;
	case VIRTIO_PCI_COMMON_GF:
		return feature_word(vp->gfeatures, vp->gfselect);
	case VIRTIO_PCI_COMMON_MSIX:
		return vp->config_vector;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		return q ? vp->queue_vector[vp->queue_sel] :
			   VIRTIO_PCI_NO_VECTOR;
	case VIRTIO_PCI_COMMON_NUMQ:
		return vp->nqueues;
	case VIRTIO_PCI_COMMON_STATUS:
		return viommu_virtio_dev_status(vp->dev);
	case VIRTIO_PCI_COMMON_CFGGEN:
		return viommu_virtio_dev_config_generation(vp->dev) & 0xff;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		return vp->queue_sel;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		return q ? q->size : 0;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		return q ? q->enabled : 0;
	case VIRTIO_PCI_COMMON_Q_NOFF:
		return q ? vp->queue_sel : 0;
	case VIRTIO_PCI_COMMON_Q_DESC:
	case VIRTIO_PCI_COMMON_Q_DRIVER:
	case VIRTIO_PCI_COMMON_Q_DEVICE:
		return q ? *queue_addr(q, fo) : 0;
	default: /* notify_data, queue_reset, admin queue: not offered */
		return 0;
	}
}

/* common_read() - a checked read of the common configuration. */
static uint64_t common_read(struct virtio_pci *vp, uint32_t off,
			    unsigned int size)
{
	const struct field *f = find_field(off, size);
	uint64_t v;

	if (!f) {
		bad(vp, "common config read", off, size, "no such field");
		return 0;
	}
	pthread_mutex_lock(&vp->lock);
	v = common_read_field(vp, f->off);
	pthread_mutex_unlock(&vp->lock);
	v >>= 8 * (off - f->off);
	return size == 8 ? v : v & ((1ull << (8 * size)) - 1);
}

/* write_features() - the driver wrote a feature word.  vp->lock held. */
static const char *write_features(struct virtio_pci *vp, uint32_t val)
{
	uint64_t old = vp->gfeatures;
	unsigned int shift = 32 * vp->gfselect;

	if (vp->gfselect >= 2)
		return val ? "feature word past 63 not zero" : NULL;
	vp->gfeatures &= ~(0xffffffffull << shift);
	vp->gfeatures |= (uint64_t)val << shift;
	/* Refused after FEATURES_OK: keep the old word (the device logged). */
	if (viommu_virtio_dev_set_driver_features(vp->dev, vp->gfeatures))
		vp->gfeatures = old;
	return NULL;
}

/* write_status() - the driver wrote device_status.  vp->lock held. */
static void write_status(struct virtio_pci *vp, uint8_t status)
{
	uint32_t seq = irq_seq(vp);

	viommu_virtio_dev_set_status(vp->dev, status); /* logs refusals */
	if (status == 0) {
		reset_state(vp);
		intx_drop(vp, seq); /* the reset cleared the ISR */
	}
}

/* enable_queue() - queue_enable written 1.  vp->lock held. */
static const char *enable_queue(struct virtio_pci *vp,
				struct virtio_pci_queue *q, uint64_t val)
{
	struct viommu_virtio_queue_cfg cfg;

	if (val == 0)
		return "queue_enable 0 (reset the device instead)";
	if (val != 1)
		return "queue_enable value not 1";
	if (q->enabled)
		return NULL;
	cfg = (struct viommu_virtio_queue_cfg){ .size = q->size,
		.desc = q->desc, .driver = q->driver, .device = q->device };
	/* A refused queue stays disabled; the device logged why. */
	if (viommu_virtio_dev_queue_setup(vp->dev, vp->queue_sel, &cfg) == 0)
		q->enabled = true;
	return NULL;
}

/* write_queue_addr() - a whole or half 64-bit queue address. */
static void write_queue_addr(struct virtio_pci_queue *q, uint32_t fo,
			     uint32_t off, uint64_t val, unsigned int size)
{
	uint64_t *a = queue_addr(q, fo);

	if (size == 8)
		*a = val;
	else if (off == fo)
		*a = (*a & ~0xffffffffull) | (uint32_t)val;
	else
		*a = (*a & 0xffffffffull) | (val << 32);
}

/*
 * write_vector() - the driver maps an event to MSI-X vector @val: a table
 * entry sticks, anything else reads back NO_VECTOR (VIRTIO 1.3
 * §4.1.5.1.2), with a log line unless it was NO_VECTOR itself.  Also while
 * the queue is enabled: Linux unmaps its queues that way before a reset.
 * vp->lock held.  Return: NULL, or why the vector was refused.
 */
static const char *write_vector(struct virtio_pci *vp, uint16_t *vec,
				uint64_t val)
{
	if (val < vp->nvec) {
		WRITE_ONCE(*vec, (uint16_t)val);
		return NULL;
	}
	WRITE_ONCE(*vec, VIRTIO_PCI_NO_VECTOR);
	return val == VIRTIO_PCI_NO_VECTOR ? NULL :
	       "MSI-X vector past the table (reads NO_VECTOR)";
}

/*
 * write_queue_field() - a write to a register of the selected queue.
 * vp->lock held.  Return: NULL, or why it was refused.
 */
static const char *write_queue_field(struct virtio_pci *vp, uint32_t fo,
				     uint32_t off, uint64_t val,
				     unsigned int size)
{
	struct virtio_pci_queue *q = cur_queue(vp);

	if (!q)
		return "no such queue selected";
	if (fo == VIRTIO_PCI_COMMON_Q_MSIX)
		return write_vector(vp, &vp->queue_vector[vp->queue_sel], val);
	if (fo == VIRTIO_PCI_COMMON_Q_ENABLE)
		return enable_queue(vp, q, val);
	if (q->enabled)
		return "queue already enabled";
	if (fo == VIRTIO_PCI_COMMON_Q_SIZE) {
		if (val == 0 ||
		    val > viommu_virtio_dev_queue_max(vp->dev, vp->queue_sel))
			return "queue_size out of range";
		q->size = (uint16_t)val;
		return NULL;
	}
	write_queue_addr(q, fo, off, val, size);
	return NULL;
}

/*
 * common_write_field() - a write to field @fo.  vp->lock held.
 * Return: NULL, or why it was refused.
 */
static const char *common_write_field(struct virtio_pci *vp, uint32_t fo,
				      uint32_t off, uint64_t val,
				      unsigned int size)
{
	switch (fo) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		vp->dfselect = (uint32_t)val;
		return NULL;
	case VIRTIO_PCI_COMMON_GFSELECT:
		vp->gfselect = (uint32_t)val;
		return NULL;
	case VIRTIO_PCI_COMMON_GF:
		return write_features(vp, (uint32_t)val);
	case VIRTIO_PCI_COMMON_MSIX:
		return write_vector(vp, &vp->config_vector, val);
	case VIRTIO_PCI_COMMON_STATUS:
		write_status(vp, (uint8_t)val);
		return NULL;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		vp->queue_sel = (uint16_t)val;
		return NULL;
	case VIRTIO_PCI_COMMON_Q_SIZE:
	case VIRTIO_PCI_COMMON_Q_MSIX:
	case VIRTIO_PCI_COMMON_Q_ENABLE:
	case VIRTIO_PCI_COMMON_Q_DESC:
	case VIRTIO_PCI_COMMON_Q_DRIVER:
	case VIRTIO_PCI_COMMON_Q_DEVICE:
		return write_queue_field(vp, fo, off, val, size);
	case VIRTIO_PCI_COMMON_Q_RESET:
		return "queue_reset not offered";
	default:
		return "read-only field";
	}
}

/* common_write() - a checked write to the common configuration. */
static void common_write(struct virtio_pci *vp, uint32_t off, uint64_t val,
			 unsigned int size)
{
	const struct field *f = find_field(off, size);
	const char *why;

	if (!f) {
		bad(vp, "common config write", off, size, "no such field");
		return;
	}
	pthread_mutex_lock(&vp->lock);
	why = common_write_field(vp, f->off, off, val, size);
	pthread_mutex_unlock(&vp->lock);
	if (why)
		bad(vp, "common config write", off, size, why);
}

/* isr_read() - read and clear the ISR; drop INTx (legacy semantics). */
static uint64_t isr_read(struct virtio_pci *vp)
{
	uint32_t seq = irq_seq(vp);
	uint8_t isr = viommu_virtio_dev_read_isr(vp->dev);

	intx_drop(vp, seq);
	return isr;
}

/* device_cfg_ok() - a device-config access of @size at @off is valid. */
static bool device_cfg_ok(uint32_t off, unsigned int size)
{
	return (size == 1 || size == 2 || size == 4 || size == 8) &&
	       off % size == 0 && off + size <= VIRTIO_PCI_DEVICE_LEN;
}

/* notify_queue() - the queue a notification at @off names, or -1. */
static int notify_queue(struct virtio_pci *vp, uint32_t off,
			unsigned int size)
{
	uint32_t q = off / VIRTIO_PCI_NOTIFY_MULT;

	if ((size != 2 && size != 4) || off % VIRTIO_PCI_NOTIFY_MULT ||
	    q >= vp->nqueues)
		return -1;
	return (int)q;
}

/* bar_read() - BAR0 read handler. */
static uint64_t bar_read(void *opaque, uint64_t off, unsigned int size)
{
	struct virtio_pci *vp = opaque;
	uint32_t ro = (uint32_t)(off % VIRTIO_PCI_REGION_SIZE);
	uint64_t v = 0;

	switch (off / VIRTIO_PCI_REGION_SIZE) {
	case VIRTIO_PCI_COMMON_OFF / VIRTIO_PCI_REGION_SIZE:
		if (ro < VIRTIO_PCI_COMMON_LEN)
			return common_read(vp, ro, size);
		break;
	case VIRTIO_PCI_ISR_OFF / VIRTIO_PCI_REGION_SIZE:
		if (ro == 0 && size <= 4)
			return isr_read(vp);
		break;
	case VIRTIO_PCI_DEVICE_OFF / VIRTIO_PCI_REGION_SIZE:
		if (!device_cfg_ok(ro, size))
			break;
		viommu_virtio_dev_config_read(vp->dev, ro, &v, size);
		return le64toh(v);
	default:
		break;
	}
	bad(vp, "read", off, size, "no register there");
	return 0;
}

/* bar_write() - BAR0 write handler. */
static void bar_write(void *opaque, uint64_t off, uint64_t val,
		      unsigned int size)
{
	struct virtio_pci *vp = opaque;
	uint32_t ro = (uint32_t)(off % VIRTIO_PCI_REGION_SIZE);
	uint64_t le = htole64(val);
	int q;

	switch (off / VIRTIO_PCI_REGION_SIZE) {
	case VIRTIO_PCI_COMMON_OFF / VIRTIO_PCI_REGION_SIZE:
		if (ro < VIRTIO_PCI_COMMON_LEN) {
			common_write(vp, ro, val, size);
			return;
		}
		break;
	case VIRTIO_PCI_DEVICE_OFF / VIRTIO_PCI_REGION_SIZE:
		if (!device_cfg_ok(ro, size))
			break;
		viommu_virtio_dev_config_write(vp->dev, ro, &le, size);
		return;
	case VIRTIO_PCI_NOTIFY_OFF / VIRTIO_PCI_REGION_SIZE:
		q = notify_queue(vp, ro, size);
		if (q < 0)
			break;
		viommu_virtio_dev_notify(vp->dev, (uint16_t)q);
		return;
	default:
		break;
	}
	bad(vp, "write", off, size, "no writable register there");
}

static const struct pci_bar_ops bar_ops = {
	.read = bar_read,
	.write = bar_write,
};

/*
 * bar1_read() - BAR1 outside the MSI-X table and PBA (the PCI layer
 * serves those): nothing there.
 */
static uint64_t bar1_read(void *opaque, uint64_t off, unsigned int size)
{
	bad_bar(opaque, VIRTIO_PCI_MSIX_BAR, "read", off, size,
		"outside the MSI-X table and PBA");
	return 0;
}

/* bar1_write() - BAR1 outside the MSI-X table and PBA: ignored. */
static void bar1_write(void *opaque, uint64_t off, uint64_t val,
		       unsigned int size)
{
	(void)val;
	bad_bar(opaque, VIRTIO_PCI_MSIX_BAR, "write", off, size,
		"outside the MSI-X table and PBA");
}

static const struct pci_bar_ops bar1_ops = {
	.read = bar1_read,
	.write = bar1_write,
};

/* struct cfg_window - the PCI-cfg capability's bar/offset/length/data. */
struct cfg_window {
	uint8_t bar;
	uint32_t offset, length, data;
};

/* cfg_window_get() - snapshot the capability's fields. */
static void cfg_window_get(struct virtio_pci *vp, struct cfg_window *w)
{
	const uint8_t *c = &vp->pci.cfg[vp->cfg_cap];
	uint32_t v[3];

	pthread_mutex_lock(&vp->pci.lock);
	w->bar = c[VIRTIO_PCI_CAP_BAR];
	memcpy(v, c + VIRTIO_PCI_CAP_OFFSET, sizeof(v));
	pthread_mutex_unlock(&vp->pci.lock);
	w->offset = le32toh(v[0]);
	w->length = le32toh(v[1]);
	w->data = le32toh(v[2]);
}

/* cfg_window_ok() - the window names an aligned 1/2/4-byte BAR0 access. */
static bool cfg_window_ok(const struct cfg_window *w)
{
	return w->bar == 0 &&
	       (w->length == 1 || w->length == 2 || w->length == 4) &&
	       w->offset % w->length == 0 &&
	       w->offset <= VIRTIO_PCI_BAR0_SIZE - w->length;
}

/* cfg_hits_data() - whether a config access touches pci_cfg_data. */
static bool cfg_hits_data(struct virtio_pci *vp, uint32_t off,
			  unsigned int len)
{
	uint32_t d = vp->cfg_cap + VIRTIO_PCI_CAP_CFG_DATA;

	return off < d + 4 && off + len > d;
}

/*
 * cfg_read_hook() - a read of pci_cfg_data performs the BAR0 read and
 * leaves its bytes in the field (zero for a bad window); the PCI layer
 * then returns them.
 */
static uint32_t cfg_read_hook(void *opaque, uint32_t off, unsigned int len,
			      bool *handled)
{
	struct virtio_pci *vp = opaque;
	uint32_t d = vp->cfg_cap + VIRTIO_PCI_CAP_CFG_DATA, data = 0;
	struct cfg_window w;

	*handled = false;
	if (!cfg_hits_data(vp, off, len))
		return 0;
	cfg_window_get(vp, &w);
	if (cfg_window_ok(&w))
		data = htole32((uint32_t)bar_read(vp, w.offset, w.length));
	else
		bad(vp, "PCI-cfg capability read", w.offset, w.length,
		    "bad bar, length or alignment");
	pthread_mutex_lock(&vp->pci.lock);
	memcpy(&vp->pci.cfg[d], &data, sizeof(data));
	pthread_mutex_unlock(&vp->pci.lock);
	return 0;
}

/* cfg_write_hook() - a write of pci_cfg_data performs the BAR0 write. */
static void cfg_write_hook(void *opaque, uint32_t off, uint32_t val,
			   unsigned int len)
{
	struct virtio_pci *vp = opaque;
	struct cfg_window w;

	if (!cfg_hits_data(vp, off, len))
		return;
	cfg_window_get(vp, &w);
	if (!cfg_window_ok(&w)) {
		bad(vp, "PCI-cfg capability write", w.offset, w.length,
		    "bad bar, length or alignment");
		return;
	}
	bar_write(vp, w.offset,
		  w.data & (uint32_t)((1ull << (8 * w.length)) - 1), w.length);
}

/* reset_hook() - PCI reset (mpqemu DEVICE_RESET): a system reset. */
static void reset_hook(void *opaque)
{
	struct virtio_pci *vp = opaque;
	uint32_t seq = irq_seq(vp);

	pthread_mutex_lock(&vp->lock);
	viommu_virtio_dev_reset(vp->dev);
	reset_state(vp);
	pthread_mutex_unlock(&vp->lock);
	intx_drop(vp, seq);
}

/*
 * add_vcap() - append a virtio vendor capability of @type for
 * [@off, @off + @len) of BAR0, with @extra (notify multiplier / cfg data).
 */
static int add_vcap(struct virtio_pci *vp, uint8_t type, uint32_t off,
		    uint32_t len, uint32_t extra, bool has_extra, uint8_t *at)
{
	uint8_t body[18] = { 0 }; /* from cap_len on */
	uint32_t le;

	body[0] = has_extra ? 20 : 16; /* cap_len */
	body[1] = type;
	body[2] = 0;                    /* bar */
	le = htole32(off);
	memcpy(&body[6], &le, 4);
	le = htole32(len);
	memcpy(&body[10], &le, 4);
	le = htole32(extra);
	memcpy(&body[14], &le, 4);
	return pci_func_add_cap(&vp->pci, PCI_CAP_ID_VNDR, body,
				has_extra ? 18 : 14, at);
}

/* add_caps() - the five capabilities, in the documented order. */
static int add_caps(struct virtio_pci *vp)
{
	uint32_t notify_len = vp->nqueues * VIRTIO_PCI_NOTIFY_MULT;
	uint8_t c = 0;
	int err;

	err = add_vcap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
		       VIRTIO_PCI_COMMON_LEN, 0, false, NULL);
	if (!err)
		err = add_vcap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG,
			       VIRTIO_PCI_NOTIFY_OFF, notify_len,
			       VIRTIO_PCI_NOTIFY_MULT, true, NULL);
	if (!err)
		err = add_vcap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF,
			       VIRTIO_PCI_ISR_LEN, 0, false, NULL);
	if (!err)
		err = add_vcap(vp, VIRTIO_PCI_CAP_DEVICE_CFG,
			       VIRTIO_PCI_DEVICE_OFF, VIRTIO_PCI_DEVICE_LEN, 0,
			       false, NULL);
	if (!err)
		err = add_vcap(vp, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 0, true, &c);
	if (err)
		return err;
	vp->cfg_cap = c;
	/* The driver programs bar, offset, length and data. */
	pci_func_set_wmask(&vp->pci, c + VIRTIO_PCI_CAP_BAR, 0xff, 1);
	pci_func_set_wmask(&vp->pci, c + VIRTIO_PCI_CAP_OFFSET, ~0u, 4);
	pci_func_set_wmask(&vp->pci, c + VIRTIO_PCI_CAP_LENGTH, ~0u, 4);
	pci_func_set_wmask(&vp->pci, c + VIRTIO_PCI_CAP_CFG_DATA, ~0u, 4);
	return 0;
}

int virtio_pci_init(struct virtio_pci *vp, struct viommu_virtio_dev *dev,
		    const char *name, const struct viommu_log *log)
{
	uint32_t id;
	uint16_t nq;
	int err;

	if (!vp || !dev)
		return -EINVAL;
	id = viommu_virtio_dev_device_id(dev);
	nq = viommu_virtio_dev_num_queues(dev);
	if (id > 0x3f || nq == 0 || nq > VIRTIO_PCI_MAX_QUEUES)
		return -EINVAL;
	memset(vp, 0, sizeof(*vp));
	vp->dev = dev;
	vp->nqueues = nq;
	if (log)
		vp->log = *log;
	pci_func_init(&vp->pci, name, &vp->log, VIRTIO_PCI_VENDOR,
		      (uint16_t)(VIRTIO_PCI_DEVICE_BASE + id), VIRTIO_PCI_CLASS,
		      VIRTIO_PCI_REVISION, VIRTIO_PCI_SUBSYS_VENDOR,
		      VIRTIO_PCI_SUBSYS);
	err = pci_func_add_bar(&vp->pci, 0, VIRTIO_PCI_BAR0_SIZE, false,
			       &bar_ops, vp);
	if (!err)
		err = pci_func_add_bar(&vp->pci, VIRTIO_PCI_MSIX_BAR,
				       VIRTIO_PCI_BAR1_SIZE, false, &bar1_ops,
				       vp);
	if (!err)
		err = add_caps(vp);
	/* One vector per queue and one for configuration changes. */
	vp->nvec = nq + 1;
	if (!err)
		err = pci_func_add_msix(&vp->pci, vp->nvec, VIRTIO_PCI_MSIX_BAR,
					VIRTIO_PCI_MSIX_TABLE_OFF,
					VIRTIO_PCI_MSIX_PBA_OFF);
	if (err) {
		pci_func_destroy(&vp->pci);
		return err;
	}
	vp->pci.cfg_read_fn = cfg_read_hook;
	vp->pci.cfg_write_fn = cfg_write_hook;
	vp->pci.cfg_opaque = vp;
	vp->pci.reset_fn = reset_hook;
	vp->pci.reset_opaque = vp;
	pthread_mutex_init(&vp->lock, NULL);
	pthread_mutex_init(&vp->irq_lock, NULL);
	reset_state(vp);
	viommu_virtio_dev_set_irq(dev, irq_cb, vp);
	return 0;
}

struct pci_func *virtio_pci_func(struct virtio_pci *vp)
{
	return vp ? &vp->pci : NULL;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp || !vp->dev)
		return;
	viommu_virtio_dev_set_irq(vp->dev, NULL, NULL);
	pthread_mutex_destroy(&vp->irq_lock);
	pthread_mutex_destroy(&vp->lock);
	pci_func_destroy(&vp->pci);
	vp->dev = NULL;
}
