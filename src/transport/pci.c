/*
 * pci.c - one emulated PCI function, device side (see pci.h).
 *
 * Concept: the 256-byte type-0 configuration header lives in f->cfg, with
 * two byte masks beside it.  A guest write changes only the bits of
 * f->wmask and clears the bits of f->w1cmask that it writes as 1; every
 * other bit is read-only.  BAR sizing falls out of that rule: a BAR's
 * writable bits are its address bits above the size, so writing all ones
 * reads back ~(size - 1) plus the read-only type bits, and an unused BAR
 * (no writable bits, value 0) reads 0 and ignores writes.  Power-on values
 * are simply "every writable and write-one-to-clear bit 0".
 *
 * BAR accesses are routed by the base the guest programmed, only while the
 * command register enables that kind of decoding; an access that starts in
 * a BAR but runs past its end is refused.  INTx is level-triggered: the
 * device's level shows in STATUS.INTERRUPT, and what reaches the sink is
 * that level masked by COMMAND.INTX_DISABLE, delivered on change only and
 * in order (f->intx_lock).
 *
 * Nothing here allocates; every guest-controlled offset and size is
 * checked, and refused accesses log one line each (rate limited).
 */
#include <errno.h>

#include "transport/pci.h"
#include "core/util.h"

#define PCI_CACHE_LINE_SIZE 0x0c
#define PCI_COMMAND_PARITY 0x40
#define PCI_COMMAND_SERR 0x100
/* Status: master data parity error, signaled/received target abort,
 * received master abort, signaled system error, detected parity error. */
#define PCI_STATUS_W1C 0xf900
#define PCI_CAP_START 0x40

/* get_le() - @len (1..4) little-endian bytes of @p at @off. */
static uint32_t get_le(const uint8_t *p, uint32_t off, unsigned int len)
{
	uint32_t v = 0;

	for (unsigned int i = 0; i < len; i++)
		v |= (uint32_t)p[off + i] << (8 * i);
	return v;
}

/* put_le() - store the low @len (1..4) bytes of @v at @p + @off. */
static void put_le(uint8_t *p, uint32_t off, uint32_t v, unsigned int len)
{
	for (unsigned int i = 0; i < len; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}

/* size_mask() - the value bits of a @size-byte access (1, 2, 4 or 8). */
static uint64_t size_mask(unsigned int size)
{
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

/*
 * should_log() - count a refused access; whether to log it (the first 64,
 * then every power of two) so a guest cannot flood the log.
 */
static bool should_log(struct pci_func *f)
{
	uint32_t n = ATOMIC_INC(f->bad_accesses) + 1;

	return n <= 64 || (n & (n - 1)) == 0;
}

void pci_func_init(struct pci_func *f, const char *name,
		   const struct viommu_log *log, uint16_t vendor,
		   uint16_t device, uint32_t class_code, uint8_t revision,
		   uint16_t subsys_vendor, uint16_t subsys)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->intx_lock, NULL);
	f->name = name ? name : "pci";
	f->log = log;
	put_le(f->cfg, PCI_VENDOR_ID, vendor, 2);
	put_le(f->cfg, PCI_DEVICE_ID, device, 2);
	f->cfg[PCI_REVISION_ID] = revision;
	put_le(f->cfg, PCI_CLASS_PROG, class_code & 0xffffff, 3);
	f->cfg[PCI_HEADER_TYPE] = 0;
	put_le(f->cfg, PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor, 2);
	put_le(f->cfg, PCI_SUBSYSTEM_ID, subsys, 2);
	f->cfg[PCI_INTERRUPT_PIN] = 1;
	/* IO and MEMORY become writable when a BAR of that kind exists. */
	put_le(f->wmask, PCI_COMMAND, PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |
	       PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE, 2);
	put_le(f->w1cmask, PCI_STATUS, PCI_STATUS_W1C, 2);
	f->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	f->wmask[PCI_INTERRUPT_LINE] = 0xff;
	f->cap_end = PCI_CAP_START;
}

void pci_func_destroy(struct pci_func *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->intx_lock);
	pthread_mutex_destroy(&f->lock);
}

int pci_func_add_bar(struct pci_func *f, unsigned int idx, uint32_t size,
		     bool io, const struct pci_bar_ops *ops, void *opaque)
{
	uint32_t off = PCI_BAR0 + 4 * idx;
	uint16_t cmd_bit = io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;

	if (!f || idx >= PCI_NUM_BARS || size < (io ? 4u : 16u) ||
	    (size & (size - 1)) || size > 0x80000000u)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	f->bars[idx] = (struct pci_bar){ .size = size, .io = io, .ops = ops,
					 .opaque = opaque };
	/* I/O: bit 0 set; memory: 32-bit, non-prefetchable (type bits 0). */
	put_le(f->cfg, off, io ? 1 : 0, 4);
	put_le(f->wmask, off, ~(size - 1) & (io ? ~3u : ~0xfu), 4);
	put_le(f->wmask, PCI_COMMAND,
	       get_le(f->wmask, PCI_COMMAND, 2) | cmd_bit, 2);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int pci_func_add_cap(struct pci_func *f, uint8_t id, const void *body,
		     unsigned int len, uint8_t *off)
{
	unsigned int o;
	uint16_t status;

	if (!f || (len && !body))
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	o = (f->cap_end + 3u) & ~3u;
	if (o < PCI_CAP_START)
		o = PCI_CAP_START;
	if (len > PCI_CFG_SIZE || o + 2 + len > PCI_CFG_SIZE) {
		pthread_mutex_unlock(&f->lock);
		return -ENOSPC;
	}
	f->cfg[o] = id;
	f->cfg[o + 1] = 0;
	if (len)
		memcpy(&f->cfg[o + 2], body, len);
	if (f->last_cap)
		f->cfg[f->last_cap + 1] = (uint8_t)o;
	else
		f->cfg[PCI_CAPABILITY_LIST] = (uint8_t)o;
	status = (uint16_t)get_le(f->cfg, PCI_STATUS, 2);
	put_le(f->cfg, PCI_STATUS, status | PCI_STATUS_CAP_LIST, 2);
	f->last_cap = (uint8_t)o;
	f->cap_end = (uint8_t)MIN(o + 2 + len, 0xffu);
	pthread_mutex_unlock(&f->lock);
	if (off)
		*off = (uint8_t)o;
	return 0;
}

int pci_func_set_wmask(struct pci_func *f, uint32_t off, uint32_t mask,
		       unsigned int len)
{
	if (!f || len == 0 || len > 4 || off >= PCI_CFG_SIZE ||
	    len > PCI_CFG_SIZE - off)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	put_le(f->wmask, off, mask, len);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* cfg_access_ok() - @len 1, 2 or 4 and @off naturally aligned. */
static bool cfg_access_ok(uint32_t off, unsigned int len)
{
	return (len == 1 || len == 2 || len == 4) && (off & (len - 1)) == 0;
}

/*
 * intx_update() - recompute STATUS.INTERRUPT and the line the sink sees.
 * f->intx_lock and f->lock held.  Return: whether the sink must be told
 * *@level (it changed and there is a sink).
 */
static bool intx_update(struct pci_func *f, bool *level)
{
	uint16_t cmd = (uint16_t)get_le(f->cfg, PCI_COMMAND, 2);
	bool line = f->intx_level && !(cmd & PCI_COMMAND_INTX_DISABLE);

	if (f->intx_level)
		f->cfg[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
	else
		f->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
	if (line == f->intx_out)
		return false;
	f->intx_out = line;
	*level = line;
	return f->intx_fn != NULL;
}

uint32_t pci_cfg_read(struct pci_func *f, uint32_t off, unsigned int len)
{
	bool handled = false;
	uint32_t v;

	if (!cfg_access_ok(off, len)) {
		if (should_log(f))
			log_warn(f->log, "pci %s: config read of %u bytes at "
				 "0x%x refused (size or alignment)", f->name,
				 len, off);
		return 0xffffffffu;
	}
	if (off >= PCI_CFG_SIZE)
		return 0;
	if (f->cfg_read_fn) {
		v = f->cfg_read_fn(f->cfg_opaque, off, len, &handled);
		if (handled)
			return (uint32_t)(v & size_mask(len));
	}
	pthread_mutex_lock(&f->lock);
	v = get_le(f->cfg, off, len);
	pthread_mutex_unlock(&f->lock);
	return v;
}

/* cfg_store() - apply a guest write through the masks.  Lock held. */
static void cfg_store(struct pci_func *f, uint32_t off, uint32_t val,
		      unsigned int len)
{
	for (unsigned int i = 0; i < len; i++) {
		uint32_t o = off + i;
		uint8_t b = (uint8_t)(val >> (8 * i));

		f->cfg[o] = (uint8_t)((f->cfg[o] & ~f->wmask[o]) |
				      (b & f->wmask[o]));
		f->cfg[o] &= (uint8_t)~(b & f->w1cmask[o]);
	}
}

void pci_cfg_write(struct pci_func *f, uint32_t off, uint32_t val,
		   unsigned int len)
{
	bool tell, level = false;

	if (!cfg_access_ok(off, len)) {
		if (should_log(f))
			log_warn(f->log, "pci %s: config write of %u bytes at "
				 "0x%x refused (size or alignment)", f->name,
				 len, off);
		return;
	}
	if (off >= PCI_CFG_SIZE)
		return;
	pthread_mutex_lock(&f->intx_lock);
	pthread_mutex_lock(&f->lock);
	cfg_store(f, off, val, len);
	tell = intx_update(f, &level); /* INTX_DISABLE may have changed */
	pthread_mutex_unlock(&f->lock);
	if (tell)
		f->intx_fn(f->intx_opaque, level);
	pthread_mutex_unlock(&f->intx_lock);
	if (f->cfg_write_fn)
		f->cfg_write_fn(f->cfg_opaque, off, val, len);
}

/*
 * find_bar() - the BAR decoding [@addr, @addr + @size).  Lock held.
 * Return: 0 with *@idx and *@off; -ENOENT; -EINVAL (crosses the end).
 */
static int find_bar(struct pci_func *f, uint64_t addr, bool io,
		    unsigned int size, unsigned int *idx, uint64_t *off)
{
	uint16_t cmd = (uint16_t)get_le(f->cfg, PCI_COMMAND, 2);

	if (!(cmd & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)))
		return -ENOENT;
	for (unsigned int i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar *b = &f->bars[i];
		uint64_t base = get_le(f->cfg, PCI_BAR0 + 4 * i, 4);

		if (!b->size || b->io != io)
			continue;
		base &= io ? ~3ull : ~0xfull;
		if (base == 0 || addr < base || addr - base >= b->size)
			continue;
		*idx = i;
		*off = addr - base;
		return *off + size > b->size ? -EINVAL : 0;
	}
	return -ENOENT;
}

int pci_bar_access(struct pci_func *f, uint64_t addr, bool io, bool write,
		   uint64_t *val, unsigned int size)
{
	const struct pci_bar_ops *ops = NULL;
	void *opaque = NULL;
	unsigned int idx = 0;
	uint64_t off = 0;
	int err = -EINVAL;

	if (!f || !val)
		return -EINVAL;
	if (size == 1 || size == 2 || size == 4 || size == 8) {
		pthread_mutex_lock(&f->lock);
		err = find_bar(f, addr, io, size, &idx, &off);
		ops = f->bars[idx].ops;
		opaque = f->bars[idx].opaque;
		pthread_mutex_unlock(&f->lock);
	}
	if (err) {
		if (should_log(f))
			log_warn(f->log, "pci %s: %s %s of %u bytes at 0x%llx "
				 "refused (%s)", f->name, io ? "I/O" : "memory",
				 write ? "write" : "read", size,
				 (unsigned long long)addr,
				 err == -ENOENT ? "no enabled BAR decodes it" :
				 "bad size or crosses the BAR end");
		if (!write)
			*val = size_mask(size);
		return err;
	}
	if (write) {
		if (ops && ops->write)
			ops->write(opaque, off, *val & size_mask(size), size);
	} else {
		*val = ops && ops->read ?
		       ops->read(opaque, off, size) & size_mask(size) : 0;
	}
	return 0;
}

void pci_set_intx(struct pci_func *f, bool level)
{
	bool tell, line = false;

	if (!f)
		return;
	pthread_mutex_lock(&f->intx_lock);
	pthread_mutex_lock(&f->lock);
	f->intx_level = level;
	tell = intx_update(f, &line);
	pthread_mutex_unlock(&f->lock);
	if (tell)
		f->intx_fn(f->intx_opaque, line);
	pthread_mutex_unlock(&f->intx_lock);
}

void pci_func_reset(struct pci_func *f)
{
	bool tell, line = false;

	if (!f)
		return;
	pthread_mutex_lock(&f->intx_lock);
	pthread_mutex_lock(&f->lock);
	for (unsigned int i = 0; i < PCI_CFG_SIZE; i++)
		f->cfg[i] &= (uint8_t)~(f->wmask[i] | f->w1cmask[i]);
	f->intx_level = false;
	tell = intx_update(f, &line);
	pthread_mutex_unlock(&f->lock);
	if (tell)
		f->intx_fn(f->intx_opaque, line);
	pthread_mutex_unlock(&f->intx_lock);
	log_info(f->log, "pci %s: reset", f->name);
	if (f->reset_fn)
		f->reset_fn(f->reset_opaque);
}
