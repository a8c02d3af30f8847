/*
 * engine.c - driving a DMA engine: registers, register-mode DMA, rings.
 *
 * The same code drives QEMU's edu and our engine (docs/REAL-GUEST.md): the
 * edu subset (ID, liveness, DMA_SRC/DST/COUNT/CMD, device buffer at device
 * address 0x40000) is common; EXT_ID tells ours, which adds an error status
 * with the faulting IOVA, a larger buffer and ring mode.  Completion is
 * always polled against a deadline (no interrupts under TCG; edu completes
 * on a 100 ms timer; ours finishes a register DMA before the write returns
 * and works through a ring a slice per register access), so a device that
 * never completes is a -ETIMEDOUT, never a hang.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

/* Deadlines for one DMA or one ring doorbell. */
#define OURS_TIMEOUT_NS (2ull * 1000000000ull)
#define EDU_TIMEOUT_NS (10ull * 1000000000ull)

/* rd32() - 32-bit BAR0 read. */
uint32_t rd32(struct eng *e, unsigned off)
{
	return *(volatile uint32_t *)(e->bar + off);
}

/* wr32() - 32-bit BAR0 write. */
void wr32(struct eng *e, unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(e->bar + off) = v;
}

/* rd64() - 64-bit BAR0 read (one access). */
uint64_t rd64(struct eng *e, unsigned off)
{
	return *(volatile uint64_t *)(e->bar + off);
}

/* wr64() - 64-bit BAR0 write (one access). */
void wr64(struct eng *e, unsigned off, uint64_t v)
{
	*(volatile uint64_t *)(e->bar + off) = v;
}

/* cfg_rw() - access the engine's PCI config space (VFIO or sysfs). */
static int cfg_rw(struct eng *e, off_t off, void *buf, size_t len,
		  bool write)
{
	int fd = e->cfgfd >= 0 ? e->cfgfd : e->devfd;
	off_t base = e->cfgfd >= 0 ? 0 : e->cfg_off;
	ssize_t n;

	if (write)
		n = pwrite(fd, buf, len, base + off);
	else
		n = pread(fd, buf, len, base + off);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* eng_cfg_busmaster() - set memory decoding and bus mastering. */
int eng_cfg_busmaster(struct eng *e)
{
	uint16_t cmd;
	int err = cfg_rw(e, 4, &cmd, sizeof(cmd), false);

	if (err)
		return err;
	if ((cmd & 0x6) == 0x6)
		return 0;
	cmd |= 0x6;
	err = cfg_rw(e, 4, &cmd, sizeof(cmd), true);
	if (err)
		return err;
	err = cfg_rw(e, 4, &cmd, sizeof(cmd), false);
	if (err)
		return err;
	return (cmd & 0x6) == 0x6 ? 0 : -EIO;
}

/*
 * eng_identify() - check the edu ID and liveness registers, tell ours from
 * edu by EXT_ID and learn the device buffer size.
 */
int eng_identify(struct eng *e)
{
	uint32_t id = rd32(e, R_ID), probe = 0x5a5a1234u, bs;

	if (id != ID_VALUE)
		return -ENODEV;
	wr32(e, R_LIVENESS, probe);
	if (rd32(e, R_LIVENESS) != ~probe)
		return -EIO;
	e->ours = rd32(e, R_EXT_ID) == EXT_ID_VALUE;
	/* edu refuses (aborts QEMU on) a DMA that ends at its buffer end. */
	e->buf_size = EDU_BUF_SIZE - 1;
	if (e->ours) {
		bs = rd32(e, R_EXT_BUF_SIZE);
		if (bs < EDU_BUF_SIZE || bs > (16u << 20))
			return -EIO;
		e->buf_size = bs;
		wr32(e, R_EXT_STATUS, EXT_ERR_DMA | EXT_ERR_RING);
	}
	return 0;
}

/* pause_poll() - back off between polls: yield for ours, sleep for edu. */
static void pause_poll(struct eng *e)
{
	struct timespec ts = { 0, 200000 };

	if (e->ours)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

/*
 * eng_dma() - one register-mode DMA of @count bytes, polled to completion.
 * @to_ram: device buffer -> RAM (else RAM -> device buffer).
 * @ext_status: EXT_STATUS after the DMA (0 for edu); may be NULL.
 * Return: 0; -EIO if ours reported a DMA error (cleared again);
 * -ETIMEDOUT if the start bit never cleared.
 */
int eng_dma(struct eng *e, uint64_t src, uint64_t dst, uint64_t count,
	    bool to_ram, uint32_t *ext_status)
{
	uint64_t deadline;
	uint32_t st = 0;

	if (e->ours)
		wr32(e, R_EXT_STATUS, EXT_ERR_DMA | EXT_ERR_RING);
	wr64(e, R_DMA_SRC, src);
	wr64(e, R_DMA_DST, dst);
	wr64(e, R_DMA_COUNT, count);
	__sync_synchronize();
	wr64(e, R_DMA_CMD, CMD_START | (to_ram ? CMD_TO_RAM : 0));
	deadline = now_ns() + (e->ours ? OURS_TIMEOUT_NS : EDU_TIMEOUT_NS);
	while (rd32(e, R_DMA_CMD) & CMD_START) {
		if (now_ns() > deadline)
			return -ETIMEDOUT;
		pause_poll(e);
	}
	__sync_synchronize();
	if (e->ours) {
		st = rd32(e, R_EXT_STATUS);
		if (st)
			wr32(e, R_EXT_STATUS, st);
	}
	if (ext_status)
		*ext_status = st;
	return (st & EXT_ERR_DMA) ? -EIO : 0;
}

/* eng_to_dev() - DMA @len bytes from @iova to device buffer offset @off. */
int eng_to_dev(struct eng *e, uint64_t iova, uint32_t off, uint32_t len,
	       uint32_t *ext_status)
{
	return eng_dma(e, iova, DEV_BUF + off, len, false, ext_status);
}

/* eng_to_ram() - DMA @len bytes from device buffer offset @off to @iova. */
int eng_to_ram(struct eng *e, uint32_t off, uint64_t iova, uint32_t len,
	       uint32_t *ext_status)
{
	return eng_dma(e, DEV_BUF + off, iova, len, true, ext_status);
}

/* eng_fault() - the last fault ours recorded: IOVA and reason<<8|access. */
void eng_fault(struct eng *e, uint64_t *addr, uint32_t *info)
{
	*addr = e->ours ? rd64(e, R_EXT_FAULT_ADDR) : 0;
	*info = e->ours ? rd32(e, R_EXT_FAULT_INFO) : 0;
}

/*
 * ring_setup() - a ring of @entries descriptors (power of two) in a new
 * buffer, mapped writable in @c (or, with @c NULL, in one page addressed by
 * its guest-physical address), programmed into engine @e (ours only).
 */
int ring_setup(struct eng *e, struct ctr *c, struct ring *ring,
	       uint32_t entries)
{
	size_t bytes = (size_t)entries * sizeof(struct ring_desc);
	int err;

	memset(ring, 0, sizeof(*ring));
	if (!e->ours)
		return -ENOTSUP;
	if (!c && bytes > PAGE)
		return -EINVAL;
	err = buf_alloc(&ring->mem, bytes, PAGE);
	if (err)
		return err;
	if (c) {
		err = buf_map(c, &ring->mem, true);
		ring->addr = ring->mem.iova;
	} else {
		err = virt_to_phys(ring->mem.va, &ring->addr);
	}
	if (err) {
		buf_free(&ring->mem);
		return err;
	}
	ring->size = entries;
	wr64(e, R_RING_BASE, ring->addr);
	wr32(e, R_RING_SIZE, entries);
	if (rd32(e, R_RING_SIZE) != entries)
		return -EIO;
	ring->head = rd32(e, R_RING_HEAD);
	return ring->head < entries ? 0 : -EIO;
}

/* ring_teardown() - forget the ring in the device, unmap and free it. */
void ring_teardown(struct eng *e, struct ctr *c, struct ring *ring)
{
	if (e->bar && e->ours) {
		wr64(e, R_RING_BASE, 0);
		wr32(e, R_EXT_STATUS, EXT_ERR_DMA | EXT_ERR_RING);
	}
	if (c)
		buf_unmap(c, &ring->mem);
	buf_free(&ring->mem);
}

/*
 * ring_wait() - poll RING_HEAD until it reaches @tail or the deadline.
 * Our engine works through a long ring in slices, one per register access
 * (EXT_STATUS bit 2 is set meanwhile): these reads are what drive it, so
 * keep polling rather than waiting for an interrupt.
 */
static int ring_wait(struct eng *e, uint32_t tail)
{
	uint64_t deadline = now_ns() + OURS_TIMEOUT_NS;

	while (rd32(e, R_RING_HEAD) != tail) {
		if (rd32(e, R_EXT_STATUS) & EXT_ERR_RING)
			return -EIO;
		if (now_ns() > deadline)
			return -ETIMEDOUT;
		sched_yield();
	}
	return 0;
}

/*
 * ring_run() - post @n descriptors (n < ring size), ring the doorbell, wait
 * for the device to consume them and copy their statuses to @status.
 * Return: 0 (check the statuses); -EIO on a ring error; -ETIMEDOUT.
 */
int ring_run(struct eng *e, struct ring *ring, const struct ring_desc *d,
	     uint32_t n, uint32_t *status)
{
	volatile struct ring_desc *slots = (void *)ring->mem.va;
	uint32_t i, idx, tail;
	int err;

	if (!n || n >= ring->size)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		idx = (ring->head + i) & (ring->size - 1);
		slots[idx].src = d[i].src;
		slots[idx].dst = d[i].dst;
		slots[idx].len = d[i].len;
		slots[idx].flags = d[i].flags;
		slots[idx].status = 0;
		slots[idx].rsvd = 0;
	}
	tail = (ring->head + n) & (ring->size - 1);
	wr32(e, R_EXT_STATUS, EXT_ERR_DMA | EXT_ERR_RING);
	__sync_synchronize();
	wr32(e, R_RING_TAIL, tail);
	err = ring_wait(e, tail);
	__sync_synchronize();
	for (i = 0; i < n; i++) {
		idx = (ring->head + i) & (ring->size - 1);
		status[i] = slots[idx].status;
	}
	if (!err)
		ring->head = tail;
	else
		ring->head = rd32(e, R_RING_HEAD) & (ring->size - 1);
	wr32(e, R_EXT_STATUS, EXT_ERR_DMA | EXT_ERR_RING);
	return err;
}
