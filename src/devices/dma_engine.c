/*
 * dma_engine.c - the edu-compatible DMA engine endpoint (semantics in
 * dma_engine.h, register map in docs/REAL-GUEST.md).
 *
 * Every BAR access runs under the engine lock and completes before it
 * returns.  A DMA_CMD write performs its transfer (at most the 256 KiB
 * device buffer) right there.  A RING_TAIL doorbell only starts the ring:
 * ring work is done in slices of at most DMA_ENGINE_SLICE_ENTRIES entries
 * or DMA_ENGINE_SLICE_BYTES bytes (the entry that crosses the byte bound
 * finishes, so a slice copies less than DMA_ENGINE_SLICE_BYTES +
 * DMA_ENGINE_RING_MAX_LEN), one slice per BAR access: the doorbell write
 * runs the first, and every later access (a driver polling RING_HEAD) runs
 * the next before it is served, while EXT_STATUS.RING_BUSY says work is
 * left.  So no guest write makes the link thread that carries it copy
 * more than one slice before it answers, and the link notices a stop
 * request or a dead peer between accesses.  Transfers go piece by piece:
 * each piece is
 * translated with viommu_translate() for the endpoint's requester ID (so
 * a fault reaches the core's fault callback, which the virtio-iommu turns
 * into an event, and we get the fault record for EXT_FAULT_*), then copied
 * through the host pointer inside a guest-memory read section: one per
 * register DMA, and for a ring doorbell one per RING_SECTION_BYTES of
 * entries (entry read, copy and status write share it).  A RAM-to-RAM
 * ring copy translates source and destination pieces and copies between
 * them directly, with no bounce buffer.
 *
 * All guest-supplied numbers (counts, addresses, ring indices, entry
 * lengths) are checked with overflow-safe arithmetic before use, and the
 * work one access can cause is bounded: one register DMA moves at most the
 * device buffer, one access at most one ring slice.
 */
#include "devices/dma_engine.h"
#include "base/util.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>

#define ALL_ONES(size) ((size) >= 8 ? ~0ull : (1ull << ((size) * 8)) - 1)
/* Ring mode: bytes copied under one memory read section (see ring_doorbell). */
#define RING_SECTION_BYTES (1u << 20)

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */

static uint64_t get_le(const uint8_t *p, unsigned int size)
{
	uint64_t v = 0;

	for (unsigned int i = size; i--;)
		v = v << 8 | p[i];
	return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned int size)
{
	for (unsigned int i = 0; i < size; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* factorial() - n! modulo 2^32; 34! and above are multiples of 2^32. */
static uint32_t factorial(uint32_t n)
{
	uint32_t r = 1;

	if (n >= 34)
		return 0;
	while (n > 1)
		r *= n--;
	return r;
}

/* raise_irq() - set IRQ_STATUS bits and assert INTx.  Lock held. */
static void raise_irq(struct dma_engine *e, uint32_t bits)
{
	e->r.irq_status |= bits;
	if (bits)
		e->stats.irqs++;
	if (e->r.irq_status)
		pci_set_intx(&e->pci, true);
}

/* lower_irq() - clear IRQ_STATUS bits; INTx drops at 0.  Lock held. */
static void lower_irq(struct dma_engine *e, uint32_t bits)
{
	e->r.irq_status &= ~bits;
	if (!e->r.irq_status)
		pci_set_intx(&e->pci, false);
}

/*
 * guest_error() - count a refused guest request; always true.  Its log
 * line goes through e->rl, so a guest cannot flood the log.
 */
static bool guest_error(struct dma_engine *e)
{
	e->stats.errors++;
	return true;
}

/* master_on() - whether the guest enabled bus mastering. */
static bool master_on(struct dma_engine *e)
{
	return pci_cfg_read(&e->pci, PCI_COMMAND, 2) & PCI_COMMAND_MASTER;
}

/* ------------------------------------------------------------------ */
/* Translated transfers                                               */

/* record_fault() - latch a fault in EXT_FAULT_* and count it. */
static void record_fault(struct dma_engine *e, uint64_t iova,
			 uint32_t reason, uint32_t access)
{
	e->r.fault_addr = iova;
	e->r.fault_info = reason << 8 | (access & 0xff);
	e->stats.faults++;
	log_debug(&e->log, "%s: DMA fault at 0x%llx (%s, access %u)", e->name,
		  (unsigned long long)iova,
		  reason ? viommu_fault_reason_str(reason) : "not RAM",
		  access);
}

/* cur_pasid() - the PASID the engine's DMA carries. */
static uint32_t cur_pasid(const struct dma_engine *e)
{
	return e->r.pasid & DMAE_PASID_EN ? e->r.pasid & DMAE_PASID_MASK :
					    VIOMMU_NO_PASID;
}

/*
 * xlate() - translate the piece of [iova, iova + len) that starts at
 * @iova to guest RAM.  Caller is inside a memory read section.
 * Return: 0 with *@x filled; -EFAULT after recording the fault.
 */
static int xlate(struct dma_engine *e, uint64_t iova, size_t len,
		 unsigned int access, struct viommu_xlate *x)
{
	struct viommu_fault f;
	int ret;

	memset(&f, 0, sizeof(f));
	ret = viommu_translate(e->ep, cur_pasid(e), iova, len, access, x,
			       &f);
	if (ret) {
		record_fault(e, iova, ret == -EFAULT ? f.reason : 0, access);
		return -EFAULT;
	}
	if (!x->hva && ((x->perm & VIOMMU_MAP_MMIO) ||
			(x->flags & VIOMMU_XLATE_MSI))) {
		record_fault(e, iova, 0, access);
		return -EFAULT;
	}
	return 0; /* hva NULL: RAM of an I/O region, see ram_move() */
}

/*
 * ram_move() - move @n bytes between @buf and the RAM @x translated to:
 * by memcpy, or through the memory layer for RAM without a host address
 * (an I/O region, e.g. a vfio-user window without an fd).  A failure
 * there is a fault at @iova.  Return: 0; -EFAULT.
 */
static int ram_move(struct dma_engine *e, const struct viommu_xlate *x,
		    uint64_t iova, uint8_t *buf, size_t n,
		    unsigned int access)
{
	int err;

	if (x->hva) {
		if (access == VIOMMU_WRITE)
			memcpy(x->hva, buf, n);
		else
			memcpy(buf, x->hva, n);
		return 0;
	}
	err = access == VIOMMU_WRITE ? viommu_mem_write(e->mem, x->gpa, buf, n) :
				       viommu_mem_read(e->mem, x->gpa, buf, n);
	if (err) {
		record_fault(e, iova, 0, access);
		return -EFAULT;
	}
	return 0;
}

/*
 * xfer_in() - move @len bytes between IOVA @iova and device-side @buf:
 * @access VIOMMU_READ reads guest memory into @buf, VIOMMU_WRITE writes
 * @buf to guest memory.  The caller is inside a memory read section.
 * *@moved receives the bytes moved.
 * Return: 0; -EFAULT (fault recorded; the rest is not moved); -ERANGE
 * (the IOVA range wraps; nothing moved).
 */
static int xfer_in(struct dma_engine *e, uint64_t iova, uint8_t *buf,
		   size_t len, unsigned int access, size_t *moved)
{
	uint64_t last;
	int ret = 0;

	*moved = 0;
	if (len && !range_last(iova, len, &last))
		return -ERANGE;
	while (len) {
		struct viommu_xlate x;

		ret = xlate(e, iova, len, access, &x);
		if (!ret)
			ret = ram_move(e, &x, iova, buf, x.len, access);
		if (ret)
			break;
		buf += x.len;
		iova += x.len;
		len -= x.len;
		*moved += x.len;
	}
	return ret;
}

/* dev_xfer() - xfer_in() in a read section of its own. */
static int dev_xfer(struct dma_engine *e, uint64_t iova, uint8_t *buf,
		    size_t len, unsigned int access, size_t *moved)
{
	unsigned int tok = viommu_mem_read_lock(e->mem);
	int ret = xfer_in(e, iova, buf, len, access, moved);

	viommu_mem_read_unlock(e->mem, tok);
	return ret;
}

/*
 * copy_in() - copy @len bytes from IOVA @src to IOVA @dst, both ranges
 * already checked not to wrap.  The caller is inside a memory read
 * section.  Return: 0; -EFAULT (fault recorded).
 */
static int copy_in(struct dma_engine *e, uint64_t src, uint64_t dst,
		   size_t len)
{
	int ret = 0;

	while (len) {
		struct viommu_xlate xs, xd;

		ret = xlate(e, src, len, VIOMMU_READ, &xs);
		if (!ret)
			ret = xlate(e, dst, xs.len, VIOMMU_WRITE, &xd);
		if (ret)
			break;
		if (xd.hva && xs.hva) {
			memmove(xd.hva, xs.hva, xd.len);
		} else {
			/* an I/O region on either side: through a bounce */
			uint8_t bounce[512];

			xd.len = MIN(xd.len, sizeof(bounce));
			ret = ram_move(e, &xs, src, bounce, xd.len,
				       VIOMMU_READ);
			if (!ret)
				ret = ram_move(e, &xd, dst, bounce, xd.len,
					       VIOMMU_WRITE);
			if (ret)
				break;
		}
		src += xd.len;
		dst += xd.len;
		len -= xd.len;
		e->stats.bytes_read += xd.len;
		e->stats.bytes_written += xd.len;
	}
	return ret;
}

/* ------------------------------------------------------------------ */
/* Register-mode DMA                                                  */

/* dev_range_ok() - [dev, dev + count) lies inside the device buffer. */
static bool dev_range_ok(uint64_t dev, uint64_t count)
{
	return count <= DMA_ENGINE_BUF_SIZE && dev >= DMA_ENGINE_BUF_ADDR &&
	       dev - DMA_ENGINE_BUF_ADDR <= DMA_ENGINE_BUF_SIZE - count;
}

/* dma_error() - flag a DMA error (EXT_STATUS bit 0) with a log line. */
static void dma_error(struct dma_engine *e, const char *why)
{
	e->r.ext_status |= DMAE_EXT_ERR_DMA;
	if (!guest_error(e))
		return;
	rl_warn(&e->rl, &e->log, "%s: DMA refused: %s (src 0x%llx dst 0x%llx "
		 "count 0x%llx)", e->name, why,
		 (unsigned long long)e->r.src, (unsigned long long)e->r.dst,
		 (unsigned long long)e->r.count);
}

/* dma_transfer() - the checked transfer of a started DMA. */
static int dma_transfer(struct dma_engine *e)
{
	struct dma_engine_regs *r = &e->r;
	bool to_ram = r->cmd & DMAE_CMD_TO_RAM;
	uint64_t dev = to_ram ? r->src : r->dst;
	uint64_t iova = to_ram ? r->dst : r->src;
	size_t moved;
	int ret;

	if (!dev_range_ok(dev, r->count)) {
		dma_error(e, "device range outside the buffer");
		return -ERANGE;
	}
	if (!master_on(e)) {
		dma_error(e, "bus mastering disabled");
		return -EPERM;
	}
	ret = dev_xfer(e, iova, e->buf + (dev - DMA_ENGINE_BUF_ADDR),
		       (size_t)r->count,
		       to_ram ? VIOMMU_WRITE : VIOMMU_READ, &moved);
	if (to_ram)
		e->stats.bytes_written += moved;
	else
		e->stats.bytes_read += moved;
	if (ret == -ERANGE)
		dma_error(e, "IOVA range wraps");
	else if (ret)
		r->ext_status |= DMAE_EXT_ERR_DMA;
	return ret;
}

/* dma_finish() - the DMA ended (@ok or not): clear START, interrupt. */
static void dma_finish(struct dma_engine *e, bool ok)
{
	if (ok)
		e->r.dma_count++;
	e->pri.parked = false;
	e->r.pri_status &= ~DMAE_PRI_WAIT;
	e->r.status &= ~DMAE_STATUS_COMPUTING;
	e->r.cmd &= ~(uint64_t)DMAE_CMD_START;
	if (e->r.cmd & DMAE_CMD_IRQ)
		raise_irq(e, DMAE_IRQ_DMA);
}

/* pri_on() - whether the engine uses PRI. */
static bool pri_on(const struct dma_engine *e)
{
	return (e->r.pri_ctrl & DMAE_PRI_EN) && e->pri_ops;
}

/*
 * ats_missing() - the first page of the programmed DMA that an ATS-style
 * look-up (no fault recorded) cannot use, in *@page.  Return: whether
 * there is one.
 */
static bool ats_missing(struct dma_engine *e, uint64_t *page,
			unsigned int *perm)
{
	bool to_ram = e->r.cmd & DMAE_CMD_TO_RAM;
	uint64_t iova = to_ram ? e->r.dst : e->r.src, last;
	unsigned int access = to_ram ? VIOMMU_WRITE : VIOMMU_READ;
	struct viommu_domain *d = NULL;
	struct viommu_xlate x;

	if (!e->r.count || !range_last(iova, e->r.count, &last))
		return false; /* dma_transfer() reports it */
	viommu_endpoint_domain(e->ep, cur_pasid(e), &d);
	for (uint64_t p = iova & ~0xfffull;; p += 0x1000) {
		uint64_t a = MAX(p, iova);

		if (!d || viommu_domain_lookup(d, a, 1, access, &x)) {
			*page = a;
			*perm = access;
			return true;
		}
		if (p >= (last & ~0xfffull))
			return false;
	}
}

/* pri_ask() - send the parked DMA's page request (or retry later). */
static void pri_ask(struct dma_engine *e)
{
	int ret = e->pri_ops->request(e->pri_opaque, cur_pasid(e),
				      e->pri.page, e->pri.perm, true,
				      e->pri.grpid);

	if (ret == -EBUSY)
		return; /* asked again at the next access */
	if (ret) {
		e->r.pri_status |= DMAE_PRI_GAVE_UP;
		e->r.ext_status |= DMAE_EXT_ERR_DMA;
		dma_finish(e, false);
		return;
	}
	e->pri.asked = true;
	e->stats.page_requests++;
}

/*
 * pri_park() - the DMA needs a page: park it behind a page request.
 * Return: whether it was parked (else run it now).
 */
static bool pri_park(struct dma_engine *e)
{
	if (!pri_on(e) || !master_on(e) ||
	    !ats_missing(e, &e->pri.page, &e->pri.perm))
		return false;
	if (e->pri.rounds++ >= DMA_ENGINE_PRI_ROUNDS)
		return false; /* give up asking: the DMA faults */
	e->pri.parked = true;
	e->pri.asked = false;
	e->pri.grpid = e->next_grp++ % 512u;
	e->r.pri_status |= DMAE_PRI_WAIT;
	e->r.status |= DMAE_STATUS_COMPUTING;
	pri_ask(e);
	return true;
}

/* dma_run() - the DMA, or its parking behind a page request. */
static void dma_run(struct dma_engine *e)
{
	if (pri_park(e))
		return;
	dma_finish(e, !dma_transfer(e));
}

/* dma_start() - run the DMA programmed in the registers. */
static void dma_start(struct dma_engine *e)
{
	e->stats.dmas++;
	e->pri.rounds = 0;
	e->r.pri_status &= ~DMAE_PRI_GAVE_UP;
	dma_run(e);
}

/* pri_poll() - a parked DMA: ask, or collect the answer and act. */
static void pri_poll(struct dma_engine *e)
{
	int code = 0, ret;

	if (!e->pri.parked)
		return;
	if (!e->pri.asked) {
		pri_ask(e);
		return;
	}
	ret = e->pri_ops->response(e->pri_opaque, e->pri.grpid, &code);
	if (ret == -EAGAIN)
		return;
	e->pri.parked = false;
	if (!ret && code == 0) {
		e->stats.pri_retries++;
		dma_run(e);
		return;
	}
	if (!ret && code == 2)
		e->r.pri_ctrl &= ~DMAE_PRI_EN; /* Response Failure */
	e->r.pri_status |= DMAE_PRI_GAVE_UP;
	e->r.ext_status |= DMAE_EXT_ERR_DMA;
	e->stats.faults++;
	dma_finish(e, false);
}

/* ------------------------------------------------------------------ */
/* Ring mode                                                          */

struct ring_entry {
	uint64_t src, dst;
	uint32_t len, flags, status, rsvd;
};

/*
 * ring_error() - flag a ring error (EXT_STATUS bit 1) with a log line; the
 * ring stops (RING_BUSY clears) until the next doorbell.
 */
static void ring_error(struct dma_engine *e, const char *why)
{
	e->r.ext_status |= DMAE_EXT_ERR_RING;
	e->r.ext_status &= ~DMAE_EXT_RING_BUSY;
	if (!guest_error(e))
		return;
	rl_warn(&e->rl, &e->log, "%s: ring error: %s (base 0x%llx size %u head %u)",
		 e->name, why, (unsigned long long)e->r.ring_base,
		 e->r.ring_size, e->r.ring_head);
}

/* entry_run() - perform one decoded entry; returns its status value. */
static uint32_t entry_run(struct dma_engine *e, const struct ring_entry *d)
{
	uint64_t last;

	if ((d->flags & ~DMAE_RING_F_IRQ) || d->rsvd ||
	    d->len > DMA_ENGINE_RING_MAX_LEN ||
	    (d->len && (!range_last(d->src, d->len, &last) ||
			!range_last(d->dst, d->len, &last)))) {
		if (guest_error(e))
			rl_warn(&e->rl, &e->log, "%s: bad ring entry %u (len 0x%x "
				 "flags 0x%x)", e->name, e->r.ring_head,
				 d->len, d->flags);
		return DMAE_RING_BAD;
	}
	if (copy_in(e, d->src, d->dst, d->len)) {
		e->r.ext_status |= DMAE_EXT_ERR_DMA;
		return DMAE_RING_FAULT;
	}
	return DMAE_RING_DONE;
}

/*
 * ring_step() - read, run and complete the entry at RING_HEAD, inside the
 * caller's memory read section.
 * Return: 0 to go on; -EIO on a ring error (RING_HEAD not advanced).
 */
static int ring_step(struct dma_engine *e)
{
	uint8_t raw[DMA_ENGINE_RING_ENTRY], st[4];
	uint64_t at = e->r.ring_base, last;
	struct ring_entry d;
	size_t moved;

	/* ring_head < ring_size <= 4096, so the product cannot overflow. */
	if (!range_last(at, (uint64_t)(e->r.ring_head + 1) *
				    DMA_ENGINE_RING_ENTRY, &last)) {
		ring_error(e, "ring wraps the address space");
		return -EIO;
	}
	at += (uint64_t)e->r.ring_head * DMA_ENGINE_RING_ENTRY;
	if (xfer_in(e, at, raw, sizeof(raw), VIOMMU_READ, &moved)) {
		ring_error(e, "entry unreadable");
		return -EIO;
	}
	d.src = get_le(raw, 8);
	d.dst = get_le(raw + 8, 8);
	d.len = (uint32_t)get_le(raw + 16, 4);
	d.flags = (uint32_t)get_le(raw + 20, 4);
	d.rsvd = (uint32_t)get_le(raw + 28, 4);
	d.status = entry_run(e, &d);
	e->stats.ring_entries++;
	put_le(st, d.status, 4);
	if (xfer_in(e, at + 24, st, sizeof(st), VIOMMU_WRITE, &moved)) {
		ring_error(e, "status unwritable");
		return -EIO;
	}
	if (d.status == DMAE_RING_DONE)
		e->r.dma_count++;
	if (d.flags & DMAE_RING_F_IRQ)
		raise_irq(e, DMAE_IRQ_DMA);
	return 0;
}

/*
 * ring_doorbell() - RING_TAIL written: entries HEAD..TAIL-1 are to be
 * processed; ring_slice(), run right after the write, does the first
 * slice.
 */
static void ring_doorbell(struct dma_engine *e, uint32_t tail)
{
	struct dma_engine_regs *r = &e->r;

	e->stats.ring_doorbells++;
	if (!r->ring_size || tail >= r->ring_size) {
		/* Refused: work started by an earlier doorbell goes on. */
		r->ext_status |= DMAE_EXT_ERR_RING;
		if (guest_error(e))
			log_warn(&e->log, "%s: ring error: %s", e->name,
				 r->ring_size ? "tail past the ring"
					      : "no ring configured");
		return;
	}
	if (!master_on(e)) {
		ring_error(e, "bus mastering disabled");
		return;
	}
	r->ring_tail = tail;
	if (r->ring_head != tail)
		r->ext_status |= DMAE_EXT_RING_BUSY;
}

/*
 * ring_slice() - if the ring is busy, process one slice of it (see the top
 * of the file): at most DMA_ENGINE_SLICE_ENTRIES entries, stopping after
 * the entry that reaches DMA_ENGINE_SLICE_BYTES.  Lock held.
 */
static void ring_slice(struct dma_engine *e)
{
	struct dma_engine_regs *r = &e->r;
	uint64_t done = 0, sect = 0;
	unsigned int tok, n;

	if (!(r->ext_status & DMAE_EXT_RING_BUSY))
		return;
	if (!master_on(e)) {
		ring_error(e, "bus mastering disabled");
		return;
	}
	e->stats.ring_slices++;
	/*
	 * One memory read section per RING_SECTION_BYTES of copies rather
	 * than three per entry: short entries are dominated by the section's
	 * atomic counter updates, and the bound keeps a region-set writer
	 * (which waits for open sections) from waiting on a whole slice.
	 */
	tok = viommu_mem_read_lock(e->mem);
	for (n = 0; n < DMA_ENGINE_SLICE_ENTRIES && r->ring_head != r->ring_tail &&
		    done < DMA_ENGINE_SLICE_BYTES; n++) {
		uint64_t before = e->stats.bytes_read;

		if (ring_step(e))
			break; /* ring_error() cleared RING_BUSY */
		r->ring_head = (r->ring_head + 1) & (r->ring_size - 1);
		done += e->stats.bytes_read - before;
		sect += e->stats.bytes_read - before + DMA_ENGINE_RING_ENTRY;
		if (sect >= RING_SECTION_BYTES) {
			viommu_mem_read_unlock(e->mem, tok);
			tok = viommu_mem_read_lock(e->mem);
			sect = 0;
		}
	}
	viommu_mem_read_unlock(e->mem, tok);
	if (r->ring_head == r->ring_tail)
		r->ext_status &= ~DMAE_EXT_RING_BUSY;
}

/* ring_size_write() - accept a power of two 1..4096 and rewind. */
static void ring_size_write(struct dma_engine *e, uint32_t v)
{
	if (!v || v > DMA_ENGINE_RING_MAX || (v & (v - 1))) {
		if (guest_error(e))
			rl_warn(&e->rl, &e->log, "%s: RING_SIZE %u refused", e->name,
				 v);
		return;
	}
	e->r.ring_size = v;
	e->r.ring_head = e->r.ring_tail = 0;
	e->r.ext_status &= ~DMAE_EXT_RING_BUSY;
}

/* ------------------------------------------------------------------ */
/* Registers                                                          */

/* reg64() - the 64-bit register at 8-aligned @off, or NULL. */
static uint64_t *reg64(struct dma_engine *e, uint64_t off)
{
	switch (off) {
	case DMAE_DMA_SRC:
		return &e->r.src;
	case DMAE_DMA_DST:
		return &e->r.dst;
	case DMAE_DMA_COUNT:
		return &e->r.count;
	case DMAE_DMA_CMD:
		return &e->r.cmd;
	case DMAE_EXT_FAULT_ADDR:
		return &e->r.fault_addr;
	case DMAE_RING_BASE:
		return &e->r.ring_base;
	default:
		return NULL;
	}
}

/*
 * The readable 32-bit registers: a constant, or a field of struct
 * dma_engine_regs given by its offset.
 */
#define REG_CONST(o, v) { (o), true, (v) }
#define REG_FIELD(o, f) { (o), false, offsetof(struct dma_engine_regs, f) }
static const struct reg32 {
	uint16_t off;
	bool constant;
	uint32_t val; /* the value, or the field's offset */
} regs32[] = {
	REG_CONST(DMAE_ID, DMAE_ID_VALUE),
	REG_FIELD(DMAE_LIVENESS, liveness),
	REG_FIELD(DMAE_FACTORIAL, fact),
	REG_FIELD(DMAE_STATUS, status),
	REG_FIELD(DMAE_IRQ_STATUS, irq_status),
	REG_CONST(DMAE_EXT_ID, DMAE_EXT_ID_VALUE),
	REG_CONST(DMAE_EXT_VERSION, DMAE_EXT_VERSION_VALUE),
	REG_FIELD(DMAE_EXT_STATUS, ext_status),
	REG_FIELD(DMAE_EXT_FAULT_INFO, fault_info),
	REG_CONST(DMAE_EXT_BUF_SIZE, DMA_ENGINE_BUF_SIZE),
	REG_FIELD(DMAE_EXT_DMA_COUNT, dma_count),
	REG_FIELD(DMAE_RING_SIZE, ring_size),
	REG_FIELD(DMAE_RING_HEAD, ring_head),
	REG_FIELD(DMAE_RING_TAIL, ring_tail),
	REG_FIELD(DMAE_PASID, pasid),
	REG_FIELD(DMAE_PRI_CTRL, pri_ctrl),
	REG_FIELD(DMAE_PRI_STATUS, pri_status),
};

/* reg32_read() - a 32-bit register; false if @off names none readable. */
static bool reg32_read(struct dma_engine *e, uint64_t off, uint32_t *v)
{
	for (size_t i = 0; i < ARRAY_SIZE(regs32); i++) {
		const struct reg32 *g = &regs32[i];

		if (g->off != off)
			continue;
		if (g->constant)
			*v = g->val;
		else
			memcpy(v, (const uint8_t *)&e->r + g->val, sizeof(*v));
		return true;
	}
	return false;
}

/* reg32_write() - a 32-bit register write (unknown ones dropped). */
static void reg32_write(struct dma_engine *e, uint64_t off, uint32_t v)
{
	struct dma_engine_regs *r = &e->r;

	switch (off) {
	case DMAE_LIVENESS:
		r->liveness = ~v;
		break;
	case DMAE_FACTORIAL:
		r->fact = factorial(v);
		if (r->status & DMAE_STATUS_IRQFACT)
			raise_irq(e, DMAE_IRQ_FACT);
		break;
	case DMAE_STATUS:
		r->status = v & DMAE_STATUS_IRQFACT;
		break;
	case DMAE_IRQ_RAISE:
		raise_irq(e, v);
		break;
	case DMAE_IRQ_ACK:
		lower_irq(e, v);
		break;
	case DMAE_EXT_STATUS: /* RW1C, RING_BUSY read-only */
		r->ext_status &= ~(v & ~DMAE_EXT_RING_BUSY);
		break;
	case DMAE_RING_SIZE:
		ring_size_write(e, v);
		break;
	case DMAE_RING_TAIL:
		ring_doorbell(e, v);
		break;
	case DMAE_PASID:
		if (!e->pri.parked)
			r->pasid = v & (DMAE_PASID_EN | DMAE_PASID_MASK);
		break;
	case DMAE_PRI_CTRL:
		r->pri_ctrl = v & DMAE_PRI_EN;
		break;
	default:
		break;
	}
}

/* reg64_write() - store to a 64-bit register and act on it. */
static void reg64_write(struct dma_engine *e, uint64_t base, uint64_t *reg,
			uint64_t off, uint64_t val, unsigned int size)
{
	uint64_t v;

	if (base == DMAE_EXT_FAULT_ADDR)
		return; /* read-only */
	if (size == 8)
		v = val;
	else if (off == base)
		v = (uint32_t)val;
	else
		v = (*reg & 0xffffffffull) | (uint64_t)(uint32_t)val << 32;
	if (base == DMAE_DMA_CMD) {
		if ((v & DMAE_CMD_START) && !e->pri.parked) {
			*reg = v;
			dma_start(e);
		}
		return;
	}
	*reg = v;
	if (base == DMAE_RING_BASE) {
		e->r.ring_head = e->r.ring_tail = 0;
		e->r.ext_status &= ~DMAE_EXT_RING_BUSY;
	}
}

/* size_ok() - naturally aligned 4 bytes, or 8 for a 64-bit register. */
static bool size_ok(uint64_t off, unsigned int size, bool is64)
{
	if (size == 4)
		return !(off & 3);
	return size == 8 && is64 && !(off & 7);
}

/* ------------------------------------------------------------------ */
/* BAR handlers                                                       */

/* in_buf() - the access lies inside the device buffer window. */
static bool in_buf(uint64_t off, unsigned int size)
{
	return off >= DMA_ENGINE_BUF_ADDR &&
	       off - DMA_ENGINE_BUF_ADDR <= DMA_ENGINE_BUF_SIZE - size;
}

/* reg_read() - a register read (lock held). */
static uint64_t reg_read(struct dma_engine *e, uint64_t off,
			 unsigned int size)
{
	uint64_t base = off & ~7ull, *p = reg64(e, base);
	uint32_t v;

	if (!size_ok(off, size, p != NULL))
		return ALL_ONES(size);
	if (p)
		return size == 8 ? *p : (uint32_t)(*p >> (off - base) * 8);
	if (reg32_read(e, off, &v))
		return v;
	return ALL_ONES(size);
}

/* reg_write() - a register write (lock held). */
static void reg_write(struct dma_engine *e, uint64_t off, uint64_t val,
		      unsigned int size)
{
	uint64_t base = off & ~7ull, *p = reg64(e, base);

	if (!size_ok(off, size, p != NULL)) {
		log_debug(&e->log, "%s: %u-byte write at 0x%llx dropped",
			  e->name, size, (unsigned long long)off);
		return;
	}
	if (p)
		reg64_write(e, base, p, off, val, size);
	else
		reg32_write(e, off, (uint32_t)val);
}

static bool size_valid(unsigned int size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned int size)
{
	struct dma_engine *e = opaque;
	uint64_t v;

	if (!size_valid(size))
		return ~0ull;
	pthread_mutex_lock(&e->lock);
	pri_poll(e); /* a parked DMA goes on when answered */
	ring_slice(e); /* a driver polling RING_HEAD drives the ring */
	if (in_buf(off, size))
		v = get_le(e->buf + (off - DMA_ENGINE_BUF_ADDR), size);
	else
		v = reg_read(e, off, size);
	pthread_mutex_unlock(&e->lock);
	return v;
}

static void bar_write(void *opaque, uint64_t off, uint64_t val,
		      unsigned int size)
{
	struct dma_engine *e = opaque;

	if (!size_valid(size))
		return;
	pthread_mutex_lock(&e->lock);
	pri_poll(e);
	if (in_buf(off, size))
		put_le(e->buf + (off - DMA_ENGINE_BUF_ADDR), val, size);
	else
		reg_write(e, off, val, size);
	ring_slice(e); /* the doorbell's first slice, or the next one */
	pthread_mutex_unlock(&e->lock);
}

static const struct pci_bar_ops bar_ops = {
	.read = bar_read,
	.write = bar_write,
};

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */

/* reset_state() - registers and buffer to power-on values (lock held). */
static void reset_state(struct dma_engine *e)
{
	memset(&e->r, 0, sizeof(e->r));
	memset(&e->pri, 0, sizeof(e->pri)); /* a parked DMA is dropped */
	memset(e->buf, 0, DMA_ENGINE_BUF_SIZE);
}

void dma_engine_reset(struct dma_engine *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	reset_state(e);
	pci_set_intx(&e->pci, false);
	pthread_mutex_unlock(&e->lock);
	log_debug(&e->log, "%s: reset", e->name); /* peer-driven */
}

/* reset_hook() - the PCI function's reset_fn (called with no lock). */
static void reset_hook(void *opaque)
{
	dma_engine_reset(opaque);
}

int dma_engine_init(struct dma_engine *e, struct viommu_endpoint *ep,
		    struct viommu_mem *mem, const char *name,
		    const struct viommu_log *log,
		    const struct viommu_allocator *a)
{
	int ret;

	if (!e || !ep || !mem)
		return -EINVAL;
	memset(e, 0, sizeof(*e));
	e->ep = ep;
	e->mem = mem;
	if (log)
		e->log = *log;
	if (a)
		e->alloc = *a;
	snprintf(e->name, sizeof(e->name), "%s", name ? name : "dma");
	e->buf = xzalloc(&e->alloc, DMA_ENGINE_BUF_SIZE);
	if (!e->buf)
		return -ENOMEM;
	ret = -pthread_mutex_init(&e->lock, NULL);
	if (ret)
		goto fail_buf;
	pci_func_init(&e->pci, e->name, &e->log, DMA_ENGINE_VENDOR,
		      DMA_ENGINE_DEVICE, DMA_ENGINE_CLASS, DMA_ENGINE_REVISION,
		      DMA_ENGINE_SUBSYS_VENDOR, DMA_ENGINE_SUBSYS);
	ret = pci_func_add_bar(&e->pci, 0, DMA_ENGINE_BAR_SIZE, false,
			       &bar_ops, e);
	if (ret)
		goto fail_pci;
	e->pci.reset_fn = reset_hook;
	e->pci.reset_opaque = e;
	return 0;
fail_pci:
	pci_func_destroy(&e->pci);
	pthread_mutex_destroy(&e->lock);
fail_buf:
	xfree(&e->alloc, e->buf);
	e->buf = NULL;
	return ret;
}

void dma_engine_destroy(struct dma_engine *e)
{
	if (!e || !e->buf)
		return;
	pci_func_destroy(&e->pci);
	pthread_mutex_destroy(&e->lock);
	xfree(&e->alloc, e->buf);
	e->buf = NULL;
}

void dma_engine_set_pri(struct dma_engine *e,
			const struct dma_engine_pri_ops *ops, void *opaque)
{
	pthread_mutex_lock(&e->lock);
	e->pri_ops = ops;
	e->pri_opaque = opaque;
	pthread_mutex_unlock(&e->lock);
}

struct pci_func *dma_engine_func(struct dma_engine *e)
{
	return e ? &e->pci : NULL;
}

int dma_engine_stats(struct dma_engine *e, struct dma_engine_stats *out)
{
	if (!e || !out)
		return -EINVAL;
	pthread_mutex_lock(&e->lock);
	*out = e->stats;
	out->log_suppressed = rl_suppressed(&e->rl);
	pthread_mutex_unlock(&e->lock);
	return 0;
}
