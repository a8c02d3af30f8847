/*
 * vfu_client_dma.h - the client side of vfio-user DMA_READ / DMA_WRITE
 * for the link tests: client memory that the server reaches only through
 * messages (a window mapped without an fd), answered well or badly.
 *
 * Two ways to play the client: synchronously (dc_call(): send a command,
 * answer DMA requests until its reply comes, for DMA the link thread makes
 * while it handles the command, e.g. the DMA engine's doorbell), or from a
 * thread of its own (dc_start()/dc_stop(), for DMA another thread makes
 * while the test thread waits for it).  The wire layout is the spec's and
 * QEMU 11.1's (src/link/vfu_dma.c): u64 address, u64 count, data; 32 +
 * count bytes.
 */
#ifndef VIOMMU_TESTS_VFU_CLIENT_DMA_H
#define VIOMMU_TESTS_VFU_CLIENT_DMA_H

#include "vfu_fixture.h"

enum dc_mode {
	DC_GOOD,     /* answer correctly */
	DC_WRONG_ID, /* reply with another id */
	DC_SHORT,    /* DMA_READ reply without its data */
	DC_ERROR,    /* error reply (EFAULT) */
	DC_SILENT,   /* never answer */
	DC_CLOSE,    /* close the socket on the first request */
	DC_LATE,     /* answer the first request only with the second */
};

struct dclient {
	int *sock;       /* the fixture's peer slot (closed by DC_CLOSE) */
	uint64_t base;   /* client address of mem[0] */
	uint8_t mem[3 * 4096];
	enum dc_mode mode;
	unsigned int reads, writes, bad; /* requests seen; malformed ones */
	uint64_t last_addr;
	bool held;   /* DC_LATE: the first request, kept unanswered */
	uint8_t held_h[VFU_HDR_SIZE], held_p[16];
	pthread_t thread;
	bool stop; /* atomic */
};

/* dc_answer() - answer request @h/@p (a DMA_READ or DMA_WRITE). */
static inline void dc_answer(struct dclient *c, const uint8_t *h,
			     const uint8_t *p, uint32_t plen)
{
	uint8_t out[VFU_HDR_SIZE + 16 + VFU_MAX_XFER];
	uint16_t id, cmd;
	uint64_t addr = plen >= 16 ? get64(p) : 0;
	uint64_t count = plen >= 16 ? get64(p + 8) : 0;
	uint32_t size = VFU_HDR_SIZE;
	bool ok;

	memcpy(&id, h, 2);
	memcpy(&cmd, h + 2, 2);
	c->last_addr = addr;
	ok = plen >= 16 && addr >= c->base && count <= VFU_MAX_XFER &&
	     count <= sizeof(c->mem) && addr - c->base <= sizeof(c->mem) - count;
	if (cmd == VFU_DMA_WRITE)
		ok = ok && plen == 16 + count;
	else
		ok = ok && cmd == VFU_DMA_READ && plen == 16;
	if (!ok)
		c->bad++;
	if (cmd == VFU_DMA_READ)
		c->reads++;
	else
		c->writes++;
	if (c->mode == DC_SILENT)
		return;
	if (c->mode == DC_LATE && !c->held && plen == 16) {
		c->held = true;
		memcpy(c->held_h, h, VFU_HDR_SIZE);
		memcpy(c->held_p, p, 16);
		return;
	}
	if (c->mode == DC_LATE && c->held) {
		c->mode = DC_GOOD; /* the late answer, then this one */
		c->held = false;
		c->reads--;
		dc_answer(c, c->held_h, c->held_p, 16);
	}
	if (c->mode == DC_CLOSE) {
		close(*c->sock);
		*c->sock = -1;
		return;
	}
	memset(out, 0, sizeof(out));
	if (c->mode == DC_ERROR || !ok) {
		put_hdr(out, id, cmd, VFU_HDR_SIZE, VFU_T_REPLY | VFU_F_ERROR);
		put32(out + 12, EFAULT);
	} else if (cmd == VFU_DMA_READ) {
		size = VFU_HDR_SIZE + 16 + count;
		if (c->mode == DC_SHORT)
			size = VFU_HDR_SIZE + 16;
		put_hdr(out, id, cmd, size, VFU_T_REPLY);
		put64(out + 16, addr);
		put64(out + 24, count);
		if (c->mode != DC_SHORT)
			memcpy(out + 32, c->mem + (addr - c->base), count);
	} else {
		memcpy(c->mem + (addr - c->base), p + 16, count);
		put_hdr(out, id, cmd, VFU_HDR_SIZE, VFU_T_REPLY);
	}
	if (c->mode == DC_WRONG_ID)
		put_hdr(out, (uint16_t)(id + 1), cmd, size,
			get32(out + 8));
	send_raw(*c->sock, out, size, NULL, 0);
}

/*
 * dc_next() - read one message from the socket; answer it if it is a DMA
 * request.  Return: 1 it was a reply (in @r); 0 a request (answered); -1
 * EOF, timeout or a message too large.
 */
static inline int dc_next(struct dclient *c, struct reply *r)
{
	uint8_t h[VFU_HDR_SIZE];

	if (*c->sock < 0 || recv_full(*c->sock, h, sizeof(h)))
		return -1;
	memcpy(&r->id, h, 2);
	memcpy(&r->cmd, h + 2, 2);
	r->size = get32(h + 4);
	r->flags = get32(h + 8);
	r->error = get32(h + 12);
	if (r->size < VFU_HDR_SIZE || r->size - VFU_HDR_SIZE > sizeof(r->d))
		return -1;
	r->dlen = r->size - VFU_HDR_SIZE;
	if (recv_full(*c->sock, r->d, r->dlen))
		return -1;
	if ((r->flags & VFU_F_TYPE) == VFU_T_REPLY)
		return 1;
	dc_answer(c, h, r->d, r->dlen);
	return 0;
}

/*
 * dc_call() - send a command on link @l and answer DMA requests until its
 * reply.  Return: 0; -errno (error reply); BADREPLY.
 */
static inline int dc_call(struct fx *x, unsigned int l, struct dclient *c,
			  uint16_t cmd, const void *p, size_t plen)
{
	static struct reply r;
	int id = send_cmd(x, l, cmd, 0, p, plen, NULL, 0), got;

	if (id < 0)
		return BADREPLY;
	while ((got = dc_next(c, &r)) == 0)
		;
	if (got < 0 || r.id != (uint16_t)id || r.cmd != cmd)
		return BADREPLY;
	if (r.flags & VFU_F_ERROR)
		return -(int)r.error;
	return 0;
}

/* dc_wr() / dc_rd() - REGION_WRITE / REGION_READ of BAR0 through dc_call. */
static inline int dc_wr(struct fx *x, unsigned int l, struct dclient *c,
			uint64_t off, uint64_t val)
{
	uint8_t p[VFU_RW_SIZE + 8];

	put64(p, off);
	put32(p + 8, 0);
	put32(p + 12, 8);
	put64(p + 16, val);
	return dc_call(x, l, c, VFU_REGION_WRITE, p, sizeof(p));
}

/* dc_thread() - answer until told to stop. */
static inline void *dc_thread(void *arg)
{
	struct dclient *c = arg;
	struct reply *r = malloc(sizeof(*r));

	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED) && *c->sock >= 0) {
		if (!wait_readable(*c->sock, 20))
			continue;
		if (dc_next(c, r) < 0)
			break;
	}
	free(r);
	return NULL;
}

static inline int dc_start(struct dclient *c)
{
	__atomic_store_n(&c->stop, false, __ATOMIC_RELAXED);
	return pthread_create(&c->thread, NULL, dc_thread, c);
}

static inline void dc_stop(struct dclient *c)
{
	__atomic_store_n(&c->stop, true, __ATOMIC_RELAXED);
	pthread_join(c->thread, NULL);
}

#endif /* VIOMMU_TESTS_VFU_CLIENT_DMA_H */
