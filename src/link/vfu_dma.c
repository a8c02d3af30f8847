/*
 * vfu_dma.c - vfio-user DMA_READ / DMA_WRITE: device DMA into client
 * memory the client mapped without an fd (vfu_dma.h).
 *
 * Concept.  The memory layer reaches such a window through callbacks
 * (an I/O region, include/viommu/mem.h); they land in vfu_dma_rw(), which
 * sends DMA_READ or DMA_WRITE requests on the link's one socket and waits
 * for each reply, chunk by chunk (at most the client's max_data_xfer_size
 * and our VFU_MAX_XFER).  Wire layout, the spec's (docs/interop/
 * vfio-user.rst) and what QEMU 11.1's client does on the wire (seen with
 * its DMA_READ replies: the data at byte 32): header, u64 address, u64
 * count, then the data; the message is 32 + count bytes.  (QEMU's source
 * names the struct VFIOUserDMARW with a u32 count; the bytes after it are
 * zero, so both readings agree on the count.)  The DMA_READ reply has the
 * same layout; the
 * DMA_WRITE reply is the header alone (or echoes address and count).
 *
 * One request is outstanding per link at a time (d->cur), which makes
 * matching a reply trivial: its id and command must be the outstanding
 * request's, else the request fails.  Who reads the reply:
 *
 *   - the link's reader (the link thread, or run_once() in poll mode,
 *     link_is_reader()) reads the socket itself while it waits (pump()):
 *     replies are delivered, commands from the client are stashed (at most
 *     VFU_STASH_MAX messages and VFU_STASH_BYTES of payload: ~300 KiB
 *     per link at worst, vfu_dma.h),
 *     to be served in order after the current message.  A device model
 *     may thus DMA in the middle of handling a REGION_WRITE doorbell
 *     without recursion into the device or the memory layer (a stashed
 *     DMA_MAP is applied only after the read section of the DMA ended);
 *   - any other thread (an I/O worker) sends, then sleeps on d->cond
 *     until the reader delivers the reply (vfu_dma_reply(), from the
 *     link's normal serve loop).
 *
 * Bounds: each request has the link's stall_ms (peer_timeout_ms, 500 ms
 * unless set) from its start to be sent and answered; the reader's socket waits use that deadline too.
 * No reply in time, a malformed or error reply, a reply with the wrong id
 * or command, or a full stash fails that DMA with -EIO and one log line
 * (rate limited).  The peer closing, a stream that cannot be framed any
 * more (a reply or command of an impossible size, a timeout in the middle
 * of a message) or a stop also fail it and end the link (vfu_dma_end()).
 *
 * Locks: d->lock guards cur, closed, end, the stash and the rate limit;
 * sends are serialised by the link's send lock (link_send()).
 */
#include "link/vfu_dma.h"
#include "base/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One outstanding request, on its waiter's stack. */
struct req {
	uint16_t id, cmd;
	uint64_t addr;
	uint32_t count;
	uint8_t *dst; /* DMA_READ: where the data goes */
	bool done;
	int result;
};

struct stashed {
	struct vfu_rx h;
	uint32_t plen;
	int fds[LINK_MAX_RX_FDS];
	unsigned int nfds;
	bool fd_overflow;
	uint8_t p[]; /* plen bytes */
};

struct vfu_dma {
	struct link *l;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	struct req *cur;
	uint16_t next_id;
	uint32_t xfer;
	bool closed;
	int end;
	/* the last request that ended without its reply (a late one drops) */
	bool stale;
	uint16_t stale_id, stale_cmd;
	uint32_t complaints;
	/* stash: a ring of VFU_STASH_MAX (reader only, counts under lock) */
	struct stashed *stash[VFU_STASH_MAX];
	unsigned int shead, scount;
	size_t sbytes; /* payload bytes held */
	/* the reader's receive buffer while pumping */
	uint8_t *rx;
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* complain() - one rate-limited WARN line about DMA to the client. */
static void complain(struct vfu_dma *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void complain(struct vfu_dma *d, const char *fmt, ...)
{
	uint32_t n = __atomic_add_fetch(&d->complaints, 1, __ATOMIC_RELAXED);
	char why[160];
	va_list ap;

	ATOMIC_INC(d->l->st.errors);
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	rl_warn(&d->l->rl, link_log(d->l), "vfio-user %s: DMA to the client "
		"failed: %s (%u so far)", d->l->name, why, n);
}

int vfu_dma_create(struct link *l, struct vfu_dma **out)
{
	struct vfu_dma *d = xzalloc(link_alloc(l), sizeof(*d));
	pthread_condattr_t ca;

	if (!d)
		return -ENOMEM;
	d->rx = xalloc(link_alloc(l), VFU_MAX_PAYLOAD);
	if (!d->rx) {
		xfree(link_alloc(l), d);
		return -ENOMEM;
	}
	d->l = l;
	d->xfer = VFU_MAX_XFER;
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = d;
	return 0;
}

/* drop_stashed() - free stash entry @s and close its fds. */
static void drop_stashed(struct vfu_dma *d, struct stashed *s)
{
	for (unsigned int i = 0; i < s->nfds; i++)
		link_close_fd(&s->fds[i]);
	xfree(link_alloc(d->l), s);
}

void vfu_dma_destroy(struct vfu_dma *d)
{
	if (!d)
		return;
	while (d->scount) {
		drop_stashed(d, d->stash[d->shead]);
		d->shead = (d->shead + 1) % VFU_STASH_MAX;
		d->scount--;
	}
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	xfree(link_alloc(d->l), d->rx);
	xfree(link_alloc(d->l), d);
}

void vfu_dma_set_xfer(struct vfu_dma *d, const char *json)
{
	static const char key[] = "\"max_data_xfer_size\"";
	unsigned long long v = VFU_DEFAULT_CLIENT_XFER;
	const char *p = json ? strstr(json, key) : NULL;

	if (p) {
		p += sizeof(key) - 1;
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == ':')
			p++;
		if (*p >= '0' && *p <= '9') {
			char *end;
			unsigned long long x = strtoull(p, &end, 10);

			if (x > 0)
				v = x;
		}
	}
	/* read by other threads' requests: one relaxed store */
	WRITE_ONCE(d->xfer, (uint32_t)MIN(v, (unsigned long long)VFU_MAX_XFER));
}

/* ---- replies -------------------------------------------------------- */

/* finish() - complete @r with @result and wake its waiter.  d->lock held. */
static void finish(struct vfu_dma *d, struct req *r, int result)
{
	r->done = true;
	r->result = result;
	if (d->cur == r)
		d->cur = NULL;
	pthread_cond_broadcast(&d->cond);
}

/* check_reply() - whether reply @h/@p answers @r; copies DMA_READ data. */
static int check_reply(struct vfu_dma *d, struct req *r,
		       const struct vfu_rx *h, const uint8_t *p,
		       uint32_t plen)
{
	const char *what = r->cmd == VFU_DMA_READ ? "DMA_READ" : "DMA_WRITE";

	if (h->id != r->id || h->cmd != r->cmd) {
		complain(d, "%s %#llx: reply has id %u command %u, not %u %u",
			 what, (unsigned long long)r->addr, h->id, h->cmd,
			 r->id, r->cmd);
		return -EIO;
	}
	if (h->flags & VFU_F_ERROR) {
		complain(d, "%s [%#llx, +%u): the client answered error %u",
			 what, (unsigned long long)r->addr, r->count, h->error);
		return -EIO;
	}
	if (r->cmd == VFU_DMA_WRITE && plen == 0)
		return 0; /* QEMU: the header alone */
	if (plen != (r->cmd == VFU_DMA_READ ? VFU_DMARW_SIZE + r->count :
					      VFU_DMARW_SIZE) ||
	    link_get64(p) != r->addr || link_get64(p + 8) != r->count) {
		complain(d, "%s [%#llx, +%u): reply of %u bytes for address "
			 "%#llx count %llu", what, (unsigned long long)r->addr,
			 r->count, plen,
			 plen >= 16 ? (unsigned long long)link_get64(p) : 0ull,
			 plen >= 16 ? (unsigned long long)link_get64(p + 8) :
				      0ull);
		return -EIO;
	}
	if (r->cmd == VFU_DMA_READ)
		memcpy(r->dst, p + VFU_DMARW_DATA, r->count);
	return 0;
}

void vfu_dma_reply(struct vfu_dma *d, const struct vfu_rx *h,
		   const uint8_t *p, uint32_t plen)
{
	pthread_mutex_lock(&d->lock);
	if (d->stale && h->id == d->stale_id && h->cmd == d->stale_cmd) {
		/* the answer to a request that gave up: not the current one's */
		d->stale = false;
		complain(d, "a late reply (id %u) dropped", h->id);
	} else if (!d->cur)
		complain(d, "a reply (id %u, command %u) to no request", h->id,
			 h->cmd);
	else
		finish(d, d->cur, check_reply(d, d->cur, h, p, plen));
	pthread_mutex_unlock(&d->lock);
}

/* ---- the reader: read the socket while waiting ------------------------- */

/* set_end() - the link must end with @why (first reason kept). */
static void set_end(struct vfu_dma *d, int why)
{
	pthread_mutex_lock(&d->lock);
	if (!d->end)
		d->end = why;
	pthread_mutex_unlock(&d->lock);
}

int vfu_dma_end(struct vfu_dma *d)
{
	int end;

	pthread_mutex_lock(&d->lock);
	end = d->end;
	pthread_mutex_unlock(&d->lock);
	return end;
}

/*
 * stash() - keep command @h (payload in d->rx, fds in l->rx_fds) for
 * later.  Return: 0; -ENOMEM.
 */
static int stash(struct vfu_dma *d, const struct vfu_rx *h, uint32_t plen)
{
	struct link *l = d->l;
	struct stashed *s = xalloc(link_alloc(l), sizeof(*s) + plen);

	if (!s)
		return -ENOMEM;
	s->h = *h;
	s->plen = plen;
	memcpy(s->p, d->rx, plen);
	memcpy(s->fds, l->rx_fds, sizeof(s->fds));
	s->nfds = l->rx_nfds;
	s->fd_overflow = l->rx_fd_overflow;
	l->rx_nfds = 0; /* now the stash's */
	l->rx_fd_overflow = false;
	pthread_mutex_lock(&d->lock);
	d->stash[(d->shead + d->scount) % VFU_STASH_MAX] = s;
	d->sbytes += plen;
	__atomic_store_n(&d->scount, d->scount + 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/*
 * recv_one() - read one whole message into @h and d->rx.  The link's fds
 * of the message in service were set aside by the caller.
 * Return: 0 with *@plen; -EIO (nothing read in time: the stream is still
 * framed); or an enum viommu_link_end (> 0) that ends the link.
 */
static int recv_one(struct vfu_dma *d, struct vfu_rx *h, uint32_t *plen)
{
	struct link *l = d->l;
	uint8_t hb[VFU_HDR_SIZE];
	size_t got;
	int err = link_recv_exact(l, hb, sizeof(hb), &got);

	if (err == -ETIMEDOUT && got == 0)
		return -EIO;
	if (err)
		return link_recv_end(l, err, got);
	memcpy(&h->id, hb, 2);
	memcpy(&h->cmd, hb + 2, 2);
	h->size = link_get32(hb + 4);
	h->flags = link_get32(hb + 8);
	h->error = link_get32(hb + 12);
	if (h->size < VFU_HDR_SIZE || h->size - VFU_HDR_SIZE > VFU_MAX_PAYLOAD)
		return link_bad(l, "message of %u bytes while waiting for a "
				"DMA reply", h->size);
	*plen = h->size - VFU_HDR_SIZE;
	err = link_recv_exact(l, d->rx, *plen, &got);
	if (err)
		return link_recv_end(l, err, VFU_HDR_SIZE + got);
	return 0; /* a stashed command is counted when it is served */
}

/*
 * pump() - the reader waits for @r: read one message; deliver a reply,
 * stash a command.  Return: 0; -EIO (@r failed, logged).
 */
static int pump(struct vfu_dma *d, struct req *r)
{
	struct link *l = d->l;
	int saved[LINK_MAX_RX_FDS];
	unsigned int nsaved = l->rx_nfds;
	bool overflow = l->rx_fd_overflow;
	struct vfu_rx h;
	uint32_t plen = 0;
	int err;

	/* room for any next message, or the request gives up */
	if (d->scount >= VFU_STASH_MAX ||
	    d->sbytes > VFU_STASH_BYTES - VFU_MAX_PAYLOAD) {
		complain(d, "%u client commands (%zu bytes) arrived while "
			 "waiting for a reply", d->scount, d->sbytes);
		return -EIO;
	}
	/* the message in service keeps its fds; this one's come fresh */
	memcpy(saved, l->rx_fds, sizeof(saved));
	l->rx_nfds = 0;
	l->rx_fd_overflow = false;
	err = recv_one(d, &h, &plen);
	if (!err && (h.flags & VFU_F_TYPE) == VFU_T_REPLY)
		vfu_dma_reply(d, &h, d->rx, plen);
	else if (!err && stash(d, &h, plen))
		err = -EIO; /* out of memory: logged below */
	link_close_rx_fds(l); /* a reply's fds, or a stash that failed */
	memcpy(l->rx_fds, saved, sizeof(saved));
	l->rx_nfds = nsaved;
	l->rx_fd_overflow = overflow;
	if (err > 0)
		set_end(d, err);
	if (err == -EIO && !r->done)
		complain(d, "no reply to id %u within %u ms", r->id,
			 d->l->stall_ms);
	return err ? -EIO : 0;
}

/* ---- requests --------------------------------------------------------- */

/*
 * acquire() - make @r the outstanding request, waiting (bounded by
 * @deadline) for one in flight to complete.  d->lock held.
 * Return: 0; -EIO.
 */
static int acquire(struct vfu_dma *d, struct req *r, bool reader,
		   uint64_t deadline)
{
	while (d->cur && !d->closed) {
		if (now_ns() >= deadline) {
			complain(d, "another request held the link %u ms",
				 d->l->stall_ms);
			return -EIO;
		}
		if (reader) {
			/* the other request's reply may be ours to read */
			struct req *other = d->cur;
			int err;

			pthread_mutex_unlock(&d->lock);
			err = pump(d, other);
			pthread_mutex_lock(&d->lock);
			if (err)
				return -EIO;
		} else {
			struct timespec ts = {
				.tv_sec = (time_t)(deadline / 1000000000ull),
				.tv_nsec = (long)(deadline % 1000000000ull),
			};

			pthread_cond_timedwait(&d->cond, &d->lock, &ts);
		}
	}
	if (d->closed || d->end)
		return -EIO;
	r->id = d->next_id++;
	d->cur = r;
	return 0;
}

/* send_req() - send @r (with @data for DMA_WRITE).  0; -EIO. */
static int send_req(struct vfu_dma *d, struct req *r, const void *data)
{
	uint8_t h[VFU_HDR_SIZE + VFU_DMARW_SIZE];
	uint32_t size = VFU_HDR_SIZE + VFU_DMARW_SIZE +
			(r->cmd == VFU_DMA_WRITE ? r->count : 0);
	struct iovec iov[2] = {
		{ h, sizeof(h) }, { (void *)data, r->count },
	};
	uint32_t zero = 0, flags = VFU_T_COMMAND;
	uint64_t count = r->count;
	int why;

	memcpy(h, &r->id, 2);
	memcpy(h + 2, &r->cmd, 2);
	memcpy(h + 4, &size, 4);
	memcpy(h + 8, &flags, 4);
	memcpy(h + 12, &zero, 4);
	memcpy(h + 16, &r->addr, 8);
	memcpy(h + 24, &count, 8);
	why = link_send_request(d->l, iov, r->cmd == VFU_DMA_READ ? 1 : 2);
	if (!why)
		return 0;
	if (why != VIOMMU_LINK_END_STOPPED)
		complain(d, "cannot send the request (%s)",
			 viommu_link_end_name(why));
	/*
	 * The request may be half sent: nothing more may follow it on the
	 * stream.  The link ends (the reader's next send fails at once).
	 */
	set_end(d, why);
	if (!link_is_reader(d->l))
		link_close_sends(d->l);
	return -EIO;
}

/* wait_reply() - wait for @r's reply until @deadline.  0; -EIO. */
static int wait_reply(struct vfu_dma *d, struct req *r, bool reader,
		      uint64_t deadline)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / 1000000000ull),
		.tv_nsec = (long)(deadline % 1000000000ull),
	};
	int err = 0;

	pthread_mutex_lock(&d->lock);
	while (!r->done && !d->closed && !err) {
		if (reader) {
			pthread_mutex_unlock(&d->lock);
			err = pump(d, r);
			pthread_mutex_lock(&d->lock);
		} else if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) ==
			   ETIMEDOUT && !r->done) {
			complain(d, "no reply to id %u within %u ms", r->id,
				 d->l->stall_ms);
			err = -EIO;
		}
	}
	if (!r->done) {
		finish(d, r, -EIO); /* also drops it as d->cur */
		d->stale = true; /* its reply may still come */
		d->stale_id = r->id;
		d->stale_cmd = r->cmd;
	}
	err = r->result;
	pthread_mutex_unlock(&d->lock);
	return err;
}

/* one_req() - one request of at most d->xfer bytes.  0; -EIO. */
static int one_req(struct vfu_dma *d, uint64_t addr, uint8_t *buf,
		   uint32_t count, bool write)
{
	bool reader = link_is_reader(d->l);
	uint64_t deadline = now_ns() + (uint64_t)d->l->stall_ms * 1000000;
	struct req r = {
		.cmd = write ? VFU_DMA_WRITE : VFU_DMA_READ,
		.addr = addr, .count = count, .dst = buf,
	};
	int err;

	if (reader)
		d->l->dma_deadline_ns = deadline;
	ATOMIC_INC(d->l->st.dma_requests);
	pthread_mutex_lock(&d->lock);
	err = acquire(d, &r, reader, deadline);
	pthread_mutex_unlock(&d->lock);
	if (!err) {
		err = send_req(d, &r, buf);
		if (err) {
			pthread_mutex_lock(&d->lock);
			finish(d, &r, -EIO);
			pthread_mutex_unlock(&d->lock);
		} else {
			err = wait_reply(d, &r, reader, deadline);
		}
	}
	if (err)
		ATOMIC_INC(d->l->st.dma_failed);
	if (reader) {
		d->l->dma_deadline_ns = 0;
		/* poll mode: the message in service gets a fresh budget */
		d->l->deadline_ns = now_ns() + (uint64_t)d->l->stall_ms *
					       1000000;
	}
	return err;
}

int vfu_dma_rw(struct vfu_dma *d, uint64_t addr, void *buf, size_t len,
	       bool write)
{
	uint8_t *b = buf;

	while (len) {
		uint32_t n = (uint32_t)MIN(len, (size_t)READ_ONCE(d->xfer));
		int err = one_req(d, addr, b, n, write);

		if (err)
			return err;
		addr += n;
		b += n;
		len -= n;
	}
	return 0;
}

void vfu_dma_drain(struct vfu_dma *d)
{
	uint64_t deadline = now_ns() + (uint64_t)d->l->stall_ms * 1000000;

	if (!link_is_reader(d->l))
		return;
	d->l->dma_deadline_ns = deadline;
	pthread_mutex_lock(&d->lock);
	while (d->cur && !d->closed && !d->end && now_ns() < deadline) {
		struct req *other = d->cur;

		pthread_mutex_unlock(&d->lock);
		if (pump(d, other))
			deadline = 0; /* logged; the request ends on its own */
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	d->l->dma_deadline_ns = 0;
}

/* ---- stash ---------------------------------------------------------- */

bool vfu_dma_stashed(struct vfu_dma *d)
{
	/* only the reader changes scount: no lock needed to look */
	return __atomic_load_n(&d->scount, __ATOMIC_RELAXED) != 0;
}

bool vfu_dma_unstash(struct vfu_dma *d, struct vfu_rx *h, uint8_t *p)
{
	struct link *l = d->l;
	struct stashed *s;

	pthread_mutex_lock(&d->lock);
	if (!d->scount) {
		pthread_mutex_unlock(&d->lock);
		return false;
	}
	s = d->stash[d->shead];
	d->shead = (d->shead + 1) % VFU_STASH_MAX;
	__atomic_store_n(&d->scount, d->scount - 1, __ATOMIC_RELAXED);
	d->sbytes -= s->plen;
	pthread_mutex_unlock(&d->lock);
	*h = s->h;
	memcpy(p, s->p, s->plen);
	link_close_rx_fds(l);
	memcpy(l->rx_fds, s->fds, sizeof(s->fds));
	l->rx_nfds = s->nfds;
	l->rx_fd_overflow = s->fd_overflow;
	s->nfds = 0; /* the link's now */
	drop_stashed(d, s);
	return true;
}

void vfu_dma_close(struct vfu_dma *d)
{
	pthread_mutex_lock(&d->lock);
	d->closed = true;
	if (d->cur)
		finish(d, d->cur, -EIO);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	link_close_sends(d->l);
}
