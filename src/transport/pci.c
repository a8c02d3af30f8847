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
 * MSI-X: the capability's Message Control has two writable bits (Enable,
 * Function Mask) and lives in f->cfg like any other register; the vector
 * table, the pending-bit array and the link's per-vector masks live in one
 * allocation beside it, guarded by f->lock.  Accesses that touch the table
 * or PBA window of the MSI-X BAR are served here instead of by the BAR's
 * ops.  A vector is "due" when it is pending, MSI-X is enabled and neither
 * the function nor the vector is masked; every event that can make a
 * vector due (a signal, a table write, a Message Control write, an
 * unmask by the link) runs under f->intx_lock and delivers what became
 * due, one vector at a time, dropping f->lock around msix_fn.  Because
 * setting a pending bit and looking for due vectors are both done under
 * f->intx_lock, a signal racing an unmask is delivered exactly once: the
 * signal either finds the vector unmasked (direct delivery) or leaves the
 * bit for the unmask to find.  The message (addr, data) is read under
 * f->lock at the moment of delivery; a table write racing a delivery may
 * see the message that was in flight, as on real hardware.
 *
 * The MSI-X table is the only allocation (pci_func_add_msix, freed by
 * pci_func_destroy); every guest-controlled offset and size is checked,
 * and refused accesses log one line each (rate limited).
 */
#include <errno.h>

#include "transport/pci.h"
#include "base/util.h"

#define PCI_CACHE_LINE_SIZE 0x0c
#define PCI_COMMAND_PARITY 0x40
#define PCI_COMMAND_SERR 0x100
/* Status: master data parity error, signaled/received target abort,
 * received master abort, signaled system error, detected parity error. */
#define PCI_STATUS_W1C 0xf900
#define PCI_CAP_START 0x40

/* Which MSI-X window an access touches. */
enum msix_win { WIN_NONE, WIN_TABLE, WIN_PBA };

/* One MSI-X message to deliver once f->lock is dropped. */
struct msix_msg {
	unsigned int vector;
	uint64_t addr;
	uint32_t data;
};

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
	xfree(NULL, f->msix_table);
	f->msix_table = NULL;
	f->msix_pending = NULL;
	f->msix_peer_masked = NULL;
	f->msix_nvec = 0;
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

/* msix_ctrl() - MSI-X Message Control (0 without MSI-X).  f->lock held. */
static uint16_t msix_ctrl(struct pci_func *f)
{
	if (!f->msix_nvec)
		return 0;
	return (uint16_t)get_le(f->cfg, f->msix_cap + PCI_MSIX_FLAGS, 2);
}

/* msix_on() - MSI-X Enable is set.  f->lock held. */
static bool msix_on(struct pci_func *f)
{
	return msix_ctrl(f) & PCI_MSIX_FLAGS_ENABLE;
}

/*
 * intx_update() - recompute STATUS.INTERRUPT and the line the sink sees
 * (low while INTX_DISABLE or MSI-X Enable is set).  f->intx_lock and
 * f->lock held.  Return: whether the sink must be told *@level (it
 * changed and there is a sink).
 */
static bool intx_update(struct pci_func *f, bool *level)
{
	uint16_t cmd = (uint16_t)get_le(f->cfg, PCI_COMMAND, 2);
	bool line = f->intx_level && !(cmd & PCI_COMMAND_INTX_DISABLE) &&
		    !msix_on(f);

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

/* bit_test() / bit_set() - bit @n of the bitmap @map. */
static bool bit_test(const uint64_t *map, unsigned int n)
{
	return (map[n / 64] >> (n % 64)) & 1;
}

static void bit_set(uint64_t *map, unsigned int n, bool on)
{
	if (on)
		map[n / 64] |= 1ull << (n % 64);
	else
		map[n / 64] &= ~(1ull << (n % 64));
}

/* msix_pba_words() - 64-bit words of the PBA of @nvec vectors. */
static unsigned int msix_pba_words(unsigned int nvec)
{
	return (nvec + 63) / 64;
}

/*
 * vector_masked() - vector @v is masked: by the link (pci_msix_set_mask),
 * or by its table entry unless the peer owns the table.  f->lock held.
 */
static bool vector_masked(struct pci_func *f, unsigned int v)
{
	if (bit_test(f->msix_peer_masked, v))
		return true;
	return !f->msix_peer_table &&
	       (f->msix_table[v][3] & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

/*
 * msix_take_due() - the lowest due vector in [@first, @last] (pending,
 * MSI-X enabled, neither the function nor the vector masked): clear its
 * pending bit and fill @m with its message.  f->lock held.
 * Return: whether there was one.
 */
static bool msix_take_due(struct pci_func *f, unsigned int first,
			  unsigned int last, struct msix_msg *m)
{
	uint16_t ctrl = msix_ctrl(f);

	if (!(ctrl & PCI_MSIX_FLAGS_ENABLE) || (ctrl & PCI_MSIX_FLAGS_MASKALL))
		return false;
	for (unsigned int w = first / 64; w <= last / 64; w++) {
		uint64_t bits = f->msix_pending[w];

		if (w == first / 64)
			bits &= ~0ull << (first % 64);
		if (w == last / 64 && last % 64 != 63)
			bits &= (1ull << (last % 64 + 1)) - 1;
		for (; bits; bits &= bits - 1) {
			unsigned int v = w * 64 +
					 (unsigned int)__builtin_ctzll(bits);

			if (vector_masked(f, v))
				continue;
			bit_set(f->msix_pending, v, false);
			m->vector = v;
			m->addr = 0;
			m->data = 0;
			if (!f->msix_peer_table) {
				m->addr = (uint64_t)f->msix_table[v][1] << 32 |
					  f->msix_table[v][0];
				m->data = f->msix_table[v][2];
			}
			return true;
		}
	}
	return false;
}

/* msix_send() - hand @m to the sink.  f->intx_lock held, f->lock not. */
static void msix_send(struct pci_func *f, const struct msix_msg *m)
{
	if (f->msix_fn)
		f->msix_fn(f->msix_opaque, m->vector, m->addr, m->data);
}

/*
 * msix_flush() - deliver every due vector in [@first, @last], lowest
 * first.  f->intx_lock held, f->lock not.  Bounded: each round moves past
 * the vector it delivered.
 */
static void msix_flush(struct pci_func *f, unsigned int first,
		       unsigned int last)
{
	struct msix_msg m;
	unsigned int v = first;
	bool found;

	while (f->msix_nvec && v <= last) {
		pthread_mutex_lock(&f->lock);
		found = msix_take_due(f, v, last, &m);
		pthread_mutex_unlock(&f->lock);
		if (!found)
			break;
		msix_send(f, &m);
		v = m.vector + 1;
	}
}

/* msix_reset() - power-on MSI-X state (all vectors masked).  f->lock held. */
static void msix_reset(struct pci_func *f)
{
	unsigned int words = msix_pba_words(f->msix_nvec);

	if (!f->msix_nvec)
		return;
	memset(f->msix_table, 0, sizeof(f->msix_table[0]) * f->msix_nvec);
	for (unsigned int v = 0; v < f->msix_nvec; v++)
		f->msix_table[v][3] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
	memset(f->msix_pending, 0, sizeof(uint64_t) * words);
	memset(f->msix_peer_masked, 0, sizeof(uint64_t) * words);
}

void pci_func_hide_msix(struct pci_func *f)
{
	unsigned int prev = PCI_CAPABILITY_LIST, hops = 0;

	if (!f || !f->msix_nvec)
		return;
	pthread_mutex_lock(&f->lock);
	/* unlink the capability; a bounded walk (the list is ours) */
	while (f->cfg[prev] && f->cfg[prev] != f->msix_cap && hops++ < 64)
		prev = f->cfg[prev] + 1u;
	if (f->cfg[prev] == f->msix_cap)
		f->cfg[prev] = f->cfg[f->msix_cap + 1u];
	pthread_mutex_unlock(&f->lock);
}

/*
 * msix_layout_ok() - the windows of pci_func_add_msix() fit BAR @bar, are
 * aligned and disjoint.  f->lock held.  Return: 0; -EINVAL; -EEXIST.
 */
static int msix_layout_ok(struct pci_func *f, unsigned int nvec,
			  unsigned int bar, uint32_t table_off,
			  uint32_t pba_off)
{
	uint64_t tlen = (uint64_t)nvec * PCI_MSIX_ENTRY_SIZE;
	uint64_t plen = (uint64_t)msix_pba_words(nvec) * 8;
	const struct pci_bar *b = &f->bars[bar];

	if (f->msix_nvec)
		return -EEXIST;
	if (!b->size || b->io || table_off % 8 || pba_off % 8)
		return -EINVAL;
	if (table_off + tlen > b->size || pba_off + plen > b->size)
		return -EINVAL;
	if (ranges_overlap(table_off, table_off + tlen - 1, pba_off,
			   pba_off + plen - 1))
		return -EINVAL;
	return 0;
}

int pci_func_add_msix(struct pci_func *f, unsigned int nvec, unsigned int bar,
		      uint32_t table_off, uint32_t pba_off)
{
	uint8_t body[PCI_MSIX_CAP_LEN - 2], cap = 0;
	unsigned int words = msix_pba_words(nvec);
	uint32_t (*table)[4];
	int err;

	if (!f || nvec == 0 || nvec > PCI_MSIX_MAX_VECTORS ||
	    bar >= PCI_NUM_BARS)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	err = msix_layout_ok(f, nvec, bar, table_off, pba_off);
	pthread_mutex_unlock(&f->lock);
	if (err)
		return err;
	/* The table, then the PBA, then the link's masks: 8-byte aligned. */
	table = xzalloc(NULL, (size_t)nvec * PCI_MSIX_ENTRY_SIZE +
			2 * sizeof(uint64_t) * words);
	if (!table)
		return -ENOMEM;
	put_le(body, PCI_MSIX_FLAGS - 2, nvec - 1, 2);
	put_le(body, PCI_MSIX_TABLE - 2, table_off | bar, 4);
	put_le(body, PCI_MSIX_PBA - 2, pba_off | bar, 4);
	err = pci_func_add_cap(f, PCI_CAP_ID_MSIX, body, sizeof(body), &cap);
	if (err) {
		xfree(NULL, table);
		return err;
	}
	pthread_mutex_lock(&f->lock);
	f->msix_table = table;
	f->msix_pending = (uint64_t *)(table + nvec);
	f->msix_peer_masked = f->msix_pending + words;
	f->msix_cap = cap;
	f->msix_bar = (uint8_t)bar;
	f->msix_table_off = table_off;
	f->msix_pba_off = pba_off;
	f->msix_nvec = nvec;
	msix_reset(f);
	put_le(f->wmask, cap + PCI_MSIX_FLAGS,
	       PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

bool pci_msix_enabled(struct pci_func *f)
{
	bool on;

	if (!f)
		return false;
	pthread_mutex_lock(&f->lock);
	on = msix_on(f);
	pthread_mutex_unlock(&f->lock);
	return on;
}

int pci_msix_notify(struct pci_func *f, unsigned int vector)
{
	struct msix_msg m;
	bool send = false;
	int err = 0;

	if (!f)
		return -EINVAL;
	pthread_mutex_lock(&f->intx_lock);
	pthread_mutex_lock(&f->lock);
	if (!f->msix_nvec) {
		err = -ENODEV;
	} else if (vector >= f->msix_nvec) {
		err = -EINVAL;
	} else if (!msix_on(f)) {
		err = -ENODEV;
	} else {
		/* Pending until sent: masked, it stays for the unmask. */
		bit_set(f->msix_pending, vector, true);
		send = msix_take_due(f, vector, vector, &m);
	}
	pthread_mutex_unlock(&f->lock);
	if (send)
		msix_send(f, &m);
	pthread_mutex_unlock(&f->intx_lock);
	return err;
}

int pci_msix_set_mask(struct pci_func *f, unsigned int vector, bool masked)
{
	int err = 0;

	if (!f)
		return -EINVAL;
	pthread_mutex_lock(&f->intx_lock);
	pthread_mutex_lock(&f->lock);
	if (vector >= f->msix_nvec)
		err = -EINVAL;
	else
		bit_set(f->msix_peer_masked, vector, masked);
	pthread_mutex_unlock(&f->lock);
	if (!err && !masked)
		msix_flush(f, vector, vector);
	pthread_mutex_unlock(&f->intx_lock);
	return err;
}

uint32_t pci_cfg_read(struct pci_func *f, uint32_t off, unsigned int len)
{
	bool handled = false;
	uint32_t v;

	if (!cfg_access_ok(off, len)) {
		rl_warn(&f->rl, f->log, "pci %s: config read of %u bytes at "
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

/* hits_msix_ctrl() - a config write of @len at @off touches Message Control. */
static bool hits_msix_ctrl(struct pci_func *f, uint32_t off, unsigned int len)
{
	uint32_t c = f->msix_cap + PCI_MSIX_FLAGS;

	return f->msix_nvec && off < c + 2 && off + len > c;
}

void pci_cfg_write(struct pci_func *f, uint32_t off, uint32_t val,
		   unsigned int len)
{
	bool tell, level = false;

	if (!cfg_access_ok(off, len)) {
		rl_warn(&f->rl, f->log, "pci %s: config write of %u bytes at "
			 "0x%x refused (size or alignment)", f->name,
			 len, off);
		return;
	}
	if (off >= PCI_CFG_SIZE)
		return;
	pthread_mutex_lock(&f->intx_lock);
	pthread_mutex_lock(&f->lock);
	cfg_store(f, off, val, len);
	/* INTX_DISABLE or MSI-X Enable may have changed */
	tell = intx_update(f, &level);
	pthread_mutex_unlock(&f->lock);
	if (tell)
		f->intx_fn(f->intx_opaque, level);
	/* Enable set or Function Mask cleared: pending vectors may be due. */
	if (hits_msix_ctrl(f, off, len))
		msix_flush(f, 0, f->msix_nvec - 1);
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

/* struct bar_target - who serves a decoded access (snapshot under lock). */
struct bar_target {
	const struct pci_bar_ops *ops;
	void *opaque;
	enum msix_win win;
};

/*
 * msix_window() - the MSI-X window a @size-byte access at @off of BAR @idx
 * touches, if any (also when it only partly overlaps one).  The layout
 * never changes once set.
 */
static enum msix_win msix_window(struct pci_func *f, unsigned int idx,
				 uint64_t off, unsigned int size)
{
	uint64_t t = f->msix_table_off, p = f->msix_pba_off;

	if (!f->msix_nvec || idx != f->msix_bar)
		return WIN_NONE;
	if (off < t + (uint64_t)f->msix_nvec * PCI_MSIX_ENTRY_SIZE &&
	    off + size > t)
		return WIN_TABLE;
	if (off < p + (uint64_t)msix_pba_words(f->msix_nvec) * 8 &&
	    off + size > p)
		return WIN_PBA;
	return WIN_NONE;
}

/* target_get() - snapshot the server of BAR @idx.  f->lock held. */
static void target_get(struct pci_func *f, unsigned int idx, uint64_t off,
		       unsigned int size, struct bar_target *t)
{
	t->ops = f->bars[idx].ops;
	t->opaque = f->bars[idx].opaque;
	t->win = msix_window(f, idx, off, size);
}

/* table_read() - @size (4 or 8) bytes at @o of the table.  Aligned. */
static uint64_t table_read(struct pci_func *f, uint64_t o, unsigned int size)
{
	unsigned int e = (unsigned int)(o / PCI_MSIX_ENTRY_SIZE);
	unsigned int w = (unsigned int)(o % PCI_MSIX_ENTRY_SIZE) / 4;
	uint64_t v;

	pthread_mutex_lock(&f->lock);
	v = f->msix_table[e][w];
	if (size == 8)
		v |= (uint64_t)f->msix_table[e][w + 1] << 32;
	pthread_mutex_unlock(&f->lock);
	return v;
}

/*
 * table_write() - @size (4 or 8) bytes at @o of the table (aligned);
 * address bits 1:0 and vector control bits 31:1 stay 0.  Clearing the
 * mask bit delivers the vector if it is pending.
 */
static void table_write(struct pci_func *f, uint64_t o, uint64_t val,
			unsigned int size)
{
	unsigned int e = (unsigned int)(o / PCI_MSIX_ENTRY_SIZE);
	unsigned int w = (unsigned int)(o % PCI_MSIX_ENTRY_SIZE) / 4;
	static const uint32_t keep[4] = {
		~3u, ~0u, ~0u, PCI_MSIX_ENTRY_CTRL_MASKBIT,
	};

	pthread_mutex_lock(&f->intx_lock);
	pthread_mutex_lock(&f->lock);
	f->msix_table[e][w] = (uint32_t)val & keep[w];
	if (size == 8)
		f->msix_table[e][w + 1] = (uint32_t)(val >> 32) & keep[w + 1];
	pthread_mutex_unlock(&f->lock);
	msix_flush(f, e, e);
	pthread_mutex_unlock(&f->intx_lock);
}

/* pba_read() - @size (4 or 8) bytes at @o of the PBA.  Aligned. */
static uint64_t pba_read(struct pci_func *f, uint64_t o, unsigned int size)
{
	uint64_t v;

	pthread_mutex_lock(&f->lock);
	v = f->msix_pending[o / 8];
	pthread_mutex_unlock(&f->lock);
	if (size == 4)
		v = (uint32_t)(v >> (8 * (o % 8)));
	return v;
}

/*
 * msix_access() - a decoded access at @off of the MSI-X BAR touching
 * window @win: aligned 4- or 8-byte accesses inside the window are
 * served, PBA writes and anything else refused (reads all ones, one log
 * line, rate limited).
 */
static void msix_access(struct pci_func *f, enum msix_win win, uint64_t off,
			bool write, uint64_t *val, unsigned int size)
{
	bool table = win == WIN_TABLE;
	uint64_t base = table ? f->msix_table_off : f->msix_pba_off;
	uint64_t len = table ? (uint64_t)f->msix_nvec * PCI_MSIX_ENTRY_SIZE :
			       (uint64_t)msix_pba_words(f->msix_nvec) * 8;
	const char *why = NULL;

	if ((size != 4 && size != 8) || off % size)
		why = "not an aligned 4- or 8-byte access";
	else if (off < base || off - base + size > len)
		why = "crosses the window's edge";
	else if (write && !table)
		why = "the PBA is read-only";
	if (why) {
		rl_warn(&f->rl, f->log, "pci %s: MSI-X %s %s of %u bytes at "
			 "BAR%u+0x%llx refused (%s)", f->name,
			 table ? "table" : "PBA",
			 write ? "write" : "read", size, f->msix_bar,
			 (unsigned long long)off, why);
		if (!write)
			*val = size_mask(size);
		return;
	}
	if (!table)
		*val = pba_read(f, off - base, size);
	else if (write)
		table_write(f, off - base, *val & size_mask(size), size);
	else
		*val = table_read(f, off - base, size);
}

/* bar_dispatch() - perform a decoded access at @off of a BAR. */
static void bar_dispatch(struct pci_func *f, const struct bar_target *t,
			 uint64_t off, bool write, uint64_t *val,
			 unsigned int size)
{
	if (t->win != WIN_NONE) {
		msix_access(f, t->win, off, write, val, size);
	} else if (write) {
		if (t->ops && t->ops->write)
			t->ops->write(t->opaque, off, *val & size_mask(size),
				      size);
	} else {
		*val = t->ops && t->ops->read ?
		       t->ops->read(t->opaque, off, size) & size_mask(size) :
		       0;
	}
}

int pci_bar_access(struct pci_func *f, uint64_t addr, bool io, bool write,
		   uint64_t *val, unsigned int size)
{
	struct bar_target t = { 0 };
	unsigned int idx = 0;
	uint64_t off = 0;
	int err = -EINVAL;

	if (!f || !val)
		return -EINVAL;
	if (size == 1 || size == 2 || size == 4 || size == 8) {
		pthread_mutex_lock(&f->lock);
		err = find_bar(f, addr, io, size, &idx, &off);
		if (!err)
			target_get(f, idx, off, size, &t);
		pthread_mutex_unlock(&f->lock);
	}
	if (err) {
		rl_warn(&f->rl, f->log, "pci %s: %s %s of %u bytes at 0x%llx "
			 "refused (%s)", f->name, io ? "I/O" : "memory",
			 write ? "write" : "read", size,
			 (unsigned long long)addr,
			 err == -ENOENT ? "no enabled BAR decodes it" :
			 "bad size or crosses the BAR end");
		if (!write)
			*val = size_mask(size);
		return err;
	}
	bar_dispatch(f, &t, off, write, val, size);
	return 0;
}

int pci_bar_rw(struct pci_func *f, unsigned int idx, uint64_t off,
	       bool write, uint64_t *val, unsigned int size)
{
	struct bar_target t = { 0 };
	int err = -EINVAL;

	if (!f || !val)
		return -EINVAL;
	if ((size == 1 || size == 2 || size == 4 || size == 8) &&
	    idx < PCI_NUM_BARS) {
		pthread_mutex_lock(&f->lock);
		if (!f->bars[idx].size)
			err = -ENOENT;
		else if (off < f->bars[idx].size &&
			 size <= f->bars[idx].size - off)
			err = 0;
		if (!err)
			target_get(f, idx, off, size, &t);
		pthread_mutex_unlock(&f->lock);
	}
	if (err) {
		rl_warn(&f->rl, f->log, "pci %s: %s of %u bytes at "
			 "BAR%u+0x%llx refused (%s)", f->name,
			 write ? "write" : "read", size, idx,
			 (unsigned long long)off,
			 err == -ENOENT ? "no such BAR" :
			 "bad size or outside the BAR");
		if (!write)
			*val = size_mask(size);
		return err;
	}
	bar_dispatch(f, &t, off, write, val, size);
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
	msix_reset(f);
	f->intx_level = false;
	tell = intx_update(f, &line);
	pthread_mutex_unlock(&f->lock);
	if (tell)
		f->intx_fn(f->intx_opaque, line);
	pthread_mutex_unlock(&f->intx_lock);
	rl_debug(&f->rl, f->log, "pci %s: reset", f->name); /* peer-driven */
	if (f->reset_fn)
		f->reset_fn(f->reset_opaque);
}
