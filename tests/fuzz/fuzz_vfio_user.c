/*
 * fuzz_vfio_user.c - libFuzzer target for the vfio-user link
 * (src/link/vfio_user.c on the link server of src/link/link.c): an
 * arbitrary byte stream, cut into arbitrary sendmsg() chunks carrying
 * arbitrary fds, goes through a real socketpair into a link serving a real
 * PCI function, with device-side interrupts between the chunks.
 *
 * Input: one mode byte, then chunks {u8 ctl; u8 len; len bytes}.
 *   mode bit 0: the function: 0 the DMA engine (INTx, DMA into the mapped
 *               memfds), 1 virtio-pci around a virtio-iommu (MSI-X);
 *   mode bit 1: thread mode (the link's own thread; a reader thread drains
 *               the replies) instead of poll mode (served here with
 *               viommu_link_server_run_once() after every piece of stream
 *               that ends a message, so it never waits and never blocks
 *               on replies nobody reads);
 *   mode bit 2: the server's poll_us (spin before sleeping);
 *   mode bit 3: DMA mode (dma_mode() below): the harness negotiates and
 *               maps a window without an fd, a worker thread reads and
 *               writes it (DMA_READ / DMA_WRITE requests to this client)
 *               while the chunks play as the client's answers, so the
 *               input reaches the reply parser with a request waiting;
 *               checked: no crash or hang, every access returns 0,
 *               -EIO or (the link over, its window gone) -EFAULT, the
 *               link ends, no fd leaks (no framing model).
 *   ctl bits 0-2: fds to attach to the chunk; bits 3-4 their kind (0
 *   eventfd, 1 memfd of 64 KiB, 2 pipe read end, 3 eventfd and memfd in
 *   turn); bit 5: eventfds start signalled (an INTx unmask eventfd fires);
 *   bits 6-7, before the chunk is sent: 1 the function raises INTx, 2 it
 *   lowers INTx, 3 it signals MSI-X vector (bits 0-2 mod vectors); a
 *   chunk of length 0 carries no fds, only its event.
 * A short last chunk sends what there is; then the client shuts down its
 * side and the link runs to its end.
 *
 * Checked against a reference model of the framing (abort() on any
 * difference): the model walks the stream as the server must (header
 * rules, VERSION first and well-formed) and predicts which messages are
 * answered, the end reason (hangup at a message boundary, truncated inside
 * a message, protocol at the first message that cannot be trusted), the
 * bytes the link consumes and the messages it counts per command.  Every
 * reply must answer the next expected message (same id and command) and
 * have the shape of its command: an error reply is the header alone with
 * an errno; an unknown command gets ENOSYS, a second VERSION EINVAL; a
 * REGION_READ/WRITE reply echoes the request's first 16 bytes, a
 * DMA_UNMAP reply the whole request.  The reply count and bytes match the
 * link's counters, a hangup logs no "link closed" line and any other end
 * exactly one, and the process holds the same fds at the end as before.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <viommu/core.h>
#include <viommu/link.h>
#include <viommu/mem.h>
#include <viommu/virtio_iommu.h>

#include "devices/dma_engine.h"
#include "peer_sock.h"
#include "link/vfio_user.h"
#include "transport/pci.h"
#include "transport/virtio_pci.h"

#define MAX_STREAM (64u << 10)
#define MAX_MSGS (MAX_STREAM / VFU_HDR_SIZE + 1)
#define MAX_CHUNK_FDS 7
#define MAX_TOTAL_FDS 64
#define MEMFD_SIZE 0x10000
#define HEAD 24 /* payload bytes of a message or reply kept for checks */
#define MAX_REPLY (VFU_HDR_SIZE + VFU_RW_SIZE + VFU_MAX_XFER)

/* struct msg - one message of the stream as the model sees it. */
struct msg {
	size_t end;       /* stream offset just past what the link reads */
	uint16_t id, cmd;
	uint32_t flags, plen;
	uint8_t head[HEAD];
	bool terminal;    /* the link ends on it */
	bool reply;       /* a reply from the client: dropped, not counted */
	bool negotiating; /* the VERSION that negotiates */
};

/* struct model - what the server must do with the whole stream. */
struct model {
	struct msg m[MAX_MSGS];
	unsigned int n;
	int end;          /* enum viommu_link_end */
	size_t consumed;  /* bytes the link reads */
	size_t boundary_limit; /* past the terminal message: the link is gone */
	uint64_t counted[VIOMMU_LINK_MAX_CMDS];
};

/* struct rep - one reply received. */
struct rep {
	uint16_t id, cmd;
	uint32_t flags, error, dlen;
	uint8_t head[HEAD];
	uint8_t last; /* its last payload byte */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned long closed_lines;
	bool ended;
	bool verbose;
	struct model mo;
	uint8_t stream[MAX_STREAM];
	struct rep rep[MAX_MSGS];
	unsigned int nrep;
	uint64_t rep_bytes;
	/* the server's own DMA_READ/DMA_WRITE requests (device DMA into a
	 * window mapped without an fd), left unanswered outside DMA mode */
	unsigned int ndma;
	uint64_t dma_bytes;
	uint8_t rx[2 * MAX_REPLY];
	size_t rx_len;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER };

/* count_line() - the log sink: count vfio-user "link closed" lines. */
static void count_line(void *opaque, enum viommu_log_level l, const char *s)
{
	(void)opaque;
	if (g.verbose)
		fprintf(stderr, "log: %s\n", s);
	if (l <= VIOMMU_LOG_WARN && strstr(s, "vfio-user") &&
	    strstr(s, "link closed")) {
		pthread_mutex_lock(&g.lock);
		g.closed_lines++;
		pthread_mutex_unlock(&g.lock);
	}
}

static const struct viommu_log fuzz_log = { count_line, NULL,
					    VIOMMU_LOG_WARN };

/* on_end() - link_ended: the link is over (thread mode waits for it). */
static void on_end(void *opaque, unsigned int id, int why)
{
	(void)opaque;
	(void)id;
	(void)why;
	pthread_mutex_lock(&g.lock);
	g.ended = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
}

/* get32() - a host-order u32 at @p. */
static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/*
 * The DMA engine's 256 KiB buffer, kept across inputs: allocated per
 * input it was an mmap under ASan, a page fault per page when the engine
 * zeroes it and an munmap at the end - a fifth of an execution.  The
 * engine still zeroes it at each dma_engine_init() (xzalloc), so an input
 * sees what it saw before; ASan's redzones around the one malloc() block
 * stay.  Only that buffer goes through this allocator.
 */
static void *eng_buf;
static bool eng_buf_busy;

static void *eng_alloc(void *opaque, size_t size)
{
	(void)opaque;
	if (size != DMA_ENGINE_BUF_SIZE || eng_buf_busy)
		return malloc(size);
	if (!eng_buf)
		eng_buf = malloc(size);
	eng_buf_busy = eng_buf != NULL;
	return eng_buf;
}

static void eng_free(void *opaque, void *p)
{
	(void)opaque;
	if (p && p == eng_buf)
		eng_buf_busy = false;
	else
		free(p);
}

static const struct viommu_allocator eng_allocator = { eng_alloc, eng_free,
							NULL };

/* count_fds() - open fds of this process. */
static int count_fds(void)
{
	int n = peer_count_fds();

	if (n < 0)
		abort();
	return n;
}

/* ---- the model ------------------------------------------------------ */

/* header_ok() - what read_header() accepts (VERSION rule aside). */
static bool header_ok(uint32_t size, uint32_t flags)
{
	return (flags & VFU_F_TYPE) == VFU_T_COMMAND &&
	       !(flags & ~(VFU_F_TYPE | VFU_F_NO_REPLY)) &&
	       size >= VFU_HDR_SIZE && size - VFU_HDR_SIZE <= VFU_MAX_PAYLOAD;
}

/*
 * reply_ok() - a reply the server takes (and drops with a log line when
 * no request of its own waits): after VERSION, well framed.
 */
static bool reply_ok(uint32_t size, uint32_t flags, bool negotiated)
{
	return negotiated && (flags & VFU_F_TYPE) == VFU_T_REPLY &&
	       !(flags & ~(VFU_F_TYPE | VFU_F_ERROR)) &&
	       size >= VFU_HDR_SIZE && size - VFU_HDR_SIZE <= VFU_MAX_PAYLOAD;
}

/* version_ok() - the negotiating VERSION's payload is acceptable. */
static bool version_ok(const uint8_t *p, uint32_t plen)
{
	if (plen < 4 || p[0] || p[1])
		return false;
	return plen == 4 || (plen - 4 <= VFU_MAX_VERSION_DATA &&
			     p[plen - 1] == '\0');
}

/* model_build() - walk @len stream bytes as the server must. */
static void model_build(struct model *mo, const uint8_t *s, size_t len)
{
	bool negotiated = false;
	size_t pos = 0;

	memset(mo, 0, sizeof(*mo));
	mo->boundary_limit = SIZE_MAX;
	while (pos + VFU_HDR_SIZE <= len) {
		struct msg *m = &mo->m[mo->n];
		uint32_t size = get32(s + pos + 4);

		memcpy(&m->id, s + pos, 2);
		memcpy(&m->cmd, s + pos + 2, 2);
		m->flags = get32(s + pos + 8);
		m->reply = reply_ok(size, m->flags, negotiated);
		if (!m->reply && (!header_ok(size, m->flags) ||
				  (!negotiated && m->cmd != VFU_VERSION))) {
			m->terminal = true;
			m->end = pos + VFU_HDR_SIZE;
			break;
		}
		if (size > len - pos)
			break; /* cut inside the payload */
		m->plen = size - VFU_HDR_SIZE;
		m->end = pos + size;
		memcpy(m->head, s + pos + VFU_HDR_SIZE,
		       m->plen < HEAD ? m->plen : HEAD);
		if (m->cmd < VIOMMU_LINK_MAX_CMDS && !m->reply)
			mo->counted[m->cmd]++;
		if (m->cmd == VFU_VERSION && !negotiated && !m->reply) {
			if (!version_ok(s + pos + VFU_HDR_SIZE, m->plen)) {
				m->terminal = true;
				break;
			}
			negotiated = m->negotiating = true;
		}
		mo->n++;
		pos = m->end;
	}
	if (mo->n < MAX_MSGS && mo->m[mo->n].terminal) {
		mo->end = VIOMMU_LINK_END_PROTOCOL;
		mo->consumed = mo->boundary_limit = mo->m[mo->n].end;
		mo->n++;
	} else {
		mo->end = pos == len ? VIOMMU_LINK_END_HANGUP :
				       VIOMMU_LINK_END_TRUNCATED;
		mo->consumed = len;
	}
}

/* at_boundary() - the link can serve up to stream offset @off without
 * waiting: a message ends there, or the link has ended before it. */
static bool at_boundary(const struct model *mo, size_t off)
{
	if (off == 0 || off >= mo->boundary_limit)
		return true;
	for (unsigned int i = 0; i < mo->n; i++)
		if (mo->m[i].end == off)
			return true;
	return false;
}

/* next_cut() - the first message end in (@from, @to), else @to. */
static size_t next_cut(const struct model *mo, size_t from, size_t to)
{
	size_t cut = to;

	for (unsigned int i = 0; i < mo->n; i++)
		if (mo->m[i].end > from && mo->m[i].end < cut)
			cut = mo->m[i].end;
	return cut;
}

/* ---- replies -------------------------------------------------------- */

/*
 * take_replies() - parse the complete replies in g.rx; the server's own
 * DMA_READ/DMA_WRITE requests are counted apart (the harness does not
 * answer them here: the server fails that DMA at its deadline).
 */
static void take_replies(void)
{
	size_t off = 0;

	while (g.rx_len - off >= VFU_HDR_SIZE) {
		const uint8_t *h = g.rx + off;
		uint32_t size = get32(h + 4);
		struct rep *r;

		if (size < VFU_HDR_SIZE || size > MAX_REPLY ||
		    g.nrep >= MAX_MSGS)
			abort();
		if (g.rx_len - off < size)
			break;
		if (!(get32(h + 8) & VFU_T_REPLY) &&
		    (get16(h + 2) == VFU_DMA_READ ||
		     get16(h + 2) == VFU_DMA_WRITE)) {
			g.ndma++;
			g.dma_bytes += size;
			off += size;
			continue;
		}
		r = &g.rep[g.nrep++];
		memcpy(&r->id, h, 2);
		memcpy(&r->cmd, h + 2, 2);
		r->flags = get32(h + 8);
		r->error = get32(h + 12);
		r->dlen = size - VFU_HDR_SIZE;
		memset(r->head, 0, HEAD);
		memcpy(r->head, h + VFU_HDR_SIZE, r->dlen < HEAD ? r->dlen : HEAD);
		r->last = r->dlen ? h[size - 1] : 0;
		g.rep_bytes += size;
		off += size;
	}
	memmove(g.rx, g.rx + off, g.rx_len - off);
	g.rx_len -= off;
}

/* drain() - read what has arrived (all of it until EOF if @to_eof). */
static void drain(int sock, bool to_eof)
{
	for (;;) {
		ssize_t n = recv(sock, g.rx + g.rx_len, sizeof(g.rx) - g.rx_len,
				 to_eof ? 0 : MSG_DONTWAIT);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		g.rx_len += (size_t)n;
		take_replies();
	}
	if (to_eof && g.rx_len)
		abort(); /* a reply cut short */
}

/* reader() - thread mode: drain the replies until the link closes. */
static void *reader(void *arg)
{
	drain(*(int *)arg, true);
	return NULL;
}

/* ok_errno() - errnos a refusal may carry. */
static bool ok_errno(uint32_t e)
{
	static const uint32_t ok[] = { EINVAL, EEXIST, ENOENT, ENOTSUP,
				       ENOSYS, ENOSPC, EBADF, ENOMEM, EACCES,
				       ENODEV, EOVERFLOW, EPERM, ENXIO };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (e == ok[i])
			return true;
	return false;
}

/* success_len() - the payload size of @m's success reply (-1: any). */
static long success_len(const struct msg *m)
{
	switch (m->cmd) {
	case VFU_DMA_MAP:
	case VFU_SET_IRQS:
	case VFU_DEVICE_RESET:
		return 0;
	case VFU_DMA_UNMAP:
		return VFU_DMA_UNMAP_SIZE;
	case VFU_DEVICE_GET_INFO:
	case VFU_GET_IRQ_INFO:
		return VFU_INFO_SIZE;
	case VFU_GET_REGION_INFO:
		return VFU_REGION_INFO_SIZE;
	case VFU_REGION_READ:
		return VFU_RW_SIZE + (long)get32(m->head + 12);
	case VFU_REGION_WRITE:
		return VFU_RW_SIZE;
	default:
		return -1;
	}
}

/* check_reply() - @r answers @m with the right shape. */
static void check_reply(const struct msg *m, const struct rep *r)
{
	bool served = m->cmd == VFU_VERSION || success_len(m) >= 0;

	if (r->id != m->id || r->cmd != m->cmd)
		abort();
	if (r->flags == (VFU_T_REPLY | VFU_F_ERROR)) {
		if (r->dlen || !ok_errno(r->error) || m->negotiating)
			abort();
		if (!served && r->error != ENOSYS)
			abort();
		if (m->cmd == VFU_VERSION && r->error != EINVAL)
			abort();
		return;
	}
	if (r->flags != VFU_T_REPLY || r->error || !served)
		abort();
	if (m->cmd == VFU_VERSION) {
		/* only the negotiating one succeeds: 0.0 and a C string */
		if (!m->negotiating || r->dlen < 5 || get32(r->head) ||
		    r->last != '\0')
			abort();
		return;
	}
	if ((long)r->dlen != success_len(m))
		abort();
	if ((m->cmd == VFU_REGION_READ || m->cmd == VFU_REGION_WRITE) &&
	    memcmp(r->head, m->head, VFU_RW_SIZE))
		abort();
	if (m->cmd == VFU_DMA_UNMAP && memcmp(r->head, m->head, HEAD))
		abort();
	if (m->cmd == VFU_DEVICE_GET_INFO &&
	    (get32(r->head + 4) != (VFU_DEV_FLAG_RESET | VFU_DEV_FLAG_PCI) ||
	     get32(r->head + 8) != VFU_NUM_REGIONS ||
	     get32(r->head + 12) != VFU_NUM_IRQS))
		abort();
}

/* check_all() - replies, counters and log lines against the model. */
static void check_all(const struct viommu_link_stats *st, int why)
{
	const struct model *mo = &g.mo;
	unsigned int r = 0;

	for (unsigned int i = 0; i < mo->n; i++) {
		const struct msg *m = &mo->m[i];

		if (m->terminal || m->reply || (m->flags & VFU_F_NO_REPLY))
			continue;
		if (r >= g.nrep)
			abort(); /* an answer missing */
		check_reply(m, &g.rep[r++]);
	}
	if (r != g.nrep || st->replies != g.nrep ||
	    st->bytes_out != g.rep_bytes + g.dma_bytes ||
	    st->dma_requests != g.ndma)
		abort();
	if (why != mo->end || st->end != why || st->bytes_in != mo->consumed)
		abort();
	for (unsigned int c = 0; c < VIOMMU_LINK_MAX_CMDS; c++)
		if (st->msgs[c] != mo->counted[c])
			abort();
	if (g.closed_lines != (why == VIOMMU_LINK_END_HANGUP ? 0u : 1u))
		abort();
}

/* ---- the client ----------------------------------------------------- */

/* make_fd() - one fd of @kind (see the top of the file); -1 on failure. */
static int make_fd(unsigned int kind, unsigned int i, bool signalled)
{
	int fd, p[2];

	if (kind == 3)
		kind = i & 1;
	switch (kind) {
	case 0:
		return eventfd(signalled ? 1 : 0, EFD_CLOEXEC);
	case 1:
		fd = memfd_create("fuzz-ram", MFD_CLOEXEC |
				  MFD_ALLOW_SEALING);
		if (fd >= 0 && (ftruncate(fd, MEMFD_SIZE) < 0 ||
				fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK |
				      F_SEAL_GROW) < 0)) {
			close(fd);
			return -1;
		}
		return fd;
	default:
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		close(p[1]);
		return p[0];
	}
}

/* send_piece() - one sendmsg() of @len bytes with @n fds.  false: the
 * link has gone (EPIPE, ECONNRESET). */
static bool send_piece(int sock, const uint8_t *d, size_t len,
		       const int *fds, unsigned int n)
{
	struct iovec iov = { .iov_base = (void *)d, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	union peer_ctl c;

	while (iov.iov_len) {
		ssize_t sent;

		peer_attach_fds(&mh, &c, fds, n);
		sent = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (sent < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return false;
			abort();
		}
		n = 0; /* the fds went with the first byte */
		iov.iov_base = (uint8_t *)iov.iov_base + sent;
		iov.iov_len -= (size_t)sent;
	}
	return true;
}

/* struct run - one input being run. */
struct run {
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_endpoint *ep;
	struct viommu_virtio_iommu *vi;
	struct dma_engine eng;
	struct virtio_pci vp;
	bool use_vp, thread;
	struct pci_func *f;
	struct viommu_link_server *srv;
	unsigned int id;
	int sock;
	bool gone; /* the link ended (poll mode) or the socket refused */
};

/* device_event() - what bits 6-7 of @ctl ask of the function. */
static void device_event(struct run *w, uint8_t ctl)
{
	switch (ctl >> 6) {
	case 1:
		pci_set_intx(w->f, true);
		break;
	case 2:
		pci_set_intx(w->f, false);
		break;
	case 3:
		if (w->f->msix_nvec)
			pci_msix_notify(w->f, (ctl & 7u) % w->f->msix_nvec);
		break;
	}
}

/*
 * run_all() - run_once() until the link ends or has nothing left that
 * arrived: each call serves LINK_RUN_BATCH messages at most, and a call
 * that returns 0 with data still waiting must have served a full batch
 * (the cap, not a stall).  Return: 0 or the end reason.
 */
static int run_all(struct run *w)
{
	for (unsigned int calls = 0; calls < 100000; calls++) {
		struct pollfd p = {
			.fd = viommu_link_server_poll_fd(w->srv, w->id),
			.events = POLLIN,
		};
		int why = viommu_link_server_run_once(w->srv, w->id);

		if (why < 0)
			abort();
		if (why || poll(&p, 1, 0) != 1)
			return why;
	}
	abort();
}

/* serve_poll() - poll mode: run the link if it can go that far. */
static void serve_poll(struct run *w, size_t sent)
{
	int why;

	if (w->thread || !at_boundary(&g.mo, sent))
		return;
	why = run_all(w);
	drain(w->sock, false);
	if (why)
		w->gone = true;
}

/* send_chunk() - chunk [@pos, @pos + @len) of the stream with its fds;
 * in poll mode cut at message ends and served after each piece. */
static void send_chunk(struct run *w, uint8_t ctl, size_t pos, size_t len,
		       unsigned int *total_fds)
{
	unsigned int n = ctl & 7, i, made = 0, to_send;
	int fds[MAX_CHUNK_FDS];
	size_t end = pos + len;

	if (*total_fds + n > MAX_TOTAL_FDS || len == 0)
		n = 0;
	for (i = 0; i < n; i++) {
		fds[made] = make_fd((ctl >> 3) & 3, i, ctl & 0x20);
		if (fds[made] >= 0)
			made++;
	}
	*total_fds += made;
	to_send = made;
	while (pos < end && !w->gone) {
		size_t cut = w->thread ? end : next_cut(&g.mo, pos, end);

		if (!send_piece(w->sock, g.stream + pos, cut - pos, fds,
				to_send))
			w->gone = true;
		to_send = 0;
		pos = cut;
		serve_poll(w, pos);
	}
	for (i = 0; i < made; i++)
		close(fds[i]);
}

/* layout() - copy the chunks' bytes into g.stream; returns its length. */
static size_t layout(const uint8_t *d, size_t n)
{
	size_t pos = 0, len = 0;

	while (pos + 2 <= n && len < MAX_STREAM) {
		size_t l = d[pos + 1];

		pos += 2;
		if (l > n - pos)
			l = n - pos;
		if (l > MAX_STREAM - len)
			l = MAX_STREAM - len;
		memcpy(g.stream + len, d + pos, l);
		pos += l;
		len += l;
	}
	return len;
}

/* play() - send the chunks (device events between them). */
static void play(struct run *w, const uint8_t *d, size_t n)
{
	unsigned int total_fds = 0;
	size_t pos = 0, spos = 0;

	while (pos + 2 <= n && spos < MAX_STREAM) {
		uint8_t ctl = d[pos];
		size_t l = d[pos + 1];

		pos += 2;
		if (l > n - pos)
			l = n - pos;
		if (l > MAX_STREAM - spos)
			l = MAX_STREAM - spos;
		device_event(w, ctl);
		send_chunk(w, ctl, spos, l, &total_fds);
		pos += l;
		spos += l;
	}
}

/* world_up() - memory, context, the function, server and link. */
/*
 * The link's peer timeout: an input that leaves a DMA request of ours
 * unanswered, or stops mid-message in poll mode, costs this long instead
 * of the library's 500 ms (which held such inputs at ~130 executions/s).
 */
#define FUZZ_PEER_TIMEOUT_MS 20

static void world_up(struct run *w, uint8_t mode, int sock)
{
	struct viommu_mem_config mc = { .log = fuzz_log };
	struct viommu_ctx_config cc = { .log = fuzz_log };
	struct viommu_virtio_iommu_config dc = { .size = sizeof(dc),
						 .log = fuzz_log };
	struct viommu_link_server_config sc = {
		.size = sizeof(sc), .log = fuzz_log, .link_ended = on_end,
		.poll_us = mode & 4 ? 20 : 0,
	};
	struct viommu_link_config lc = {
		.size = sizeof(lc), .proto = VIOMMU_LINK_VFIO_USER,
		.name = "fuzz", .fd = sock, .poll_mode = !(mode & 2),
		.peer_timeout_ms = FUZZ_PEER_TIMEOUT_MS,
	};

	w->use_vp = mode & 1;
	w->thread = mode & 2;
	if (viommu_mem_create(&mc, &w->mem))
		abort();
	cc.mem = dc.mem = sc.mem = w->mem;
	if (viommu_ctx_create(&cc, &w->ctx) ||
	    viommu_endpoint_create(w->ctx, 0x28, &w->ep) ||
	    viommu_endpoint_attach(w->ep, VIOMMU_NO_PASID,
				   viommu_ctx_identity_domain(w->ctx)))
		abort();
	if (w->use_vp) {
		dc.ctx = w->ctx;
		if (viommu_virtio_iommu_create(&dc, &w->vi) ||
		    virtio_pci_init(&w->vp, viommu_virtio_iommu_dev(w->vi),
				    "vp", &fuzz_log))
			abort();
		w->f = virtio_pci_func(&w->vp);
	} else {
		if (dma_engine_init(&w->eng, w->ep, w->mem, "dma", &fuzz_log,
				    &eng_allocator))
			abort();
		w->f = dma_engine_func(&w->eng);
	}
	lc.func = (struct viommu_pci_func *)w->f;
	if (viommu_link_server_create(&sc, &w->srv) ||
	    viommu_link_server_add(w->srv, &lc, &w->id))
		abort();
}

/* world_down() - free everything world_up() made. */
static void world_down(struct run *w)
{
	viommu_link_server_destroy(w->srv);
	if (w->use_vp) {
		virtio_pci_destroy(&w->vp);
		viommu_virtio_iommu_destroy(w->vi);
	} else {
		dma_engine_destroy(&w->eng);
	}
	viommu_ctx_destroy(w->ctx);
	viommu_mem_destroy(w->mem);
}

/* finish() - the client is done sending: run the link to its end. */
static int finish(struct run *w, pthread_t *rd)
{
	int why = 0;

	if (shutdown(w->sock, SHUT_WR) < 0 && errno != ENOTCONN)
		abort();
	if (w->thread) {
		pthread_mutex_lock(&g.lock);
		while (!g.ended)
			pthread_cond_wait(&g.cond, &g.lock);
		pthread_mutex_unlock(&g.lock);
		pthread_join(*rd, NULL);
	} else {
		why = run_all(w);
		if (why <= 0 ||
		    viommu_link_server_run_once(w->srv, w->id) != why)
			abort();
		drain(w->sock, true);
	}
	return why;
}

/* ---- DMA mode: the client's answers to DMA_READ / DMA_WRITE ---------- */

#define DMA_WIN 0x100000ull

struct dma_run {
	struct viommu_mem *mem;
	int results[4];
	uint8_t buf[6000];
};

/* dma_worker() - device DMA into the fd-less window from a thread. */
static void *dma_worker(void *arg)
{
	struct dma_run *d = arg;

	for (unsigned int i = 0; i < 4; i++) {
		size_t len = i & 1 ? sizeof(d->buf) : 16;

		d->results[i] = i & 2 ?
			viommu_mem_write(d->mem, DMA_WIN + 8 * i, d->buf, len) :
			viommu_mem_read(d->mem, DMA_WIN + 8 * i, d->buf, len);
	}
	return NULL;
}

/* sink() - read and drop everything the server sends, until EOF. */
static void *sink(void *arg)
{
	int sock = *(int *)arg;
	uint8_t b[4096];

	while (read(sock, b, sizeof(b)) > 0)
		;
	return NULL;
}

/* read_full() - exactly @n bytes (a stream may deliver a reply in
 * pieces); false on EOF or an error. */
static bool read_full(int sock, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = read(sock, p, n);

		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/* setup_failed() - the harness's own exchange broke: say where. */
static void __attribute__((noreturn)) setup_failed(const char *step)
{
	fprintf(stderr, "fuzz_vfio_user: DMA mode set-up: %s\n", step);
	abort();
}

/* dma_setup() - VERSION and DMA_MAP without an fd, replies read whole. */
static void dma_setup(int sock)
{
	uint8_t m[VFU_HDR_SIZE + VFU_DMA_MAP_SIZE] = { 0 }, r[256];
	uint32_t size = VFU_HDR_SIZE + 4, v;
	uint64_t q;
	uint16_t cmd = VFU_VERSION;

	memcpy(m + 2, &cmd, 2);
	memcpy(m + 4, &size, 4);
	if (write(sock, m, size) != (ssize_t)size)
		setup_failed("VERSION not sent");
	if (!read_full(sock, r, 16) || get32(r + 4) <= 16 ||
	    get32(r + 4) - 16 > sizeof(r) ||
	    !read_full(sock, r, get32(r + 4) - 16))
		setup_failed("no whole VERSION reply");
	memset(m, 0, sizeof(m));
	cmd = VFU_DMA_MAP;
	size = sizeof(m);
	memcpy(m, &cmd, 2); /* id 2 */
	memcpy(m + 2, &cmd, 2);
	memcpy(m + 4, &size, 4);
	v = VFU_DMA_MAP_SIZE;
	memcpy(m + 16, &v, 4);
	v = VFU_DMA_READ_OK | VFU_DMA_WRITE_OK;
	memcpy(m + 20, &v, 4);
	q = DMA_WIN;
	memcpy(m + 32, &q, 8);
	q = 0x10000;
	memcpy(m + 40, &q, 8);
	if (write(sock, m, size) != (ssize_t)size)
		setup_failed("DMA_MAP not sent");
	if (!read_full(sock, r, 16) || get32(r + 8) != VFU_T_REPLY)
		setup_failed("no DMA_MAP reply");
}

/* dma_mode() - mode bit 3 (see the top of the file). */
static void dma_mode(const uint8_t *data, size_t size)
{
	struct viommu_mem_config mc = { .log = fuzz_log };
	struct viommu_ctx_config cc = { .log = fuzz_log };
	struct viommu_link_server_config sc = {
		.size = sizeof(sc), .log = fuzz_log, .link_ended = on_end,
	};
	struct viommu_link_config lc = {
		.size = sizeof(lc), .proto = VIOMMU_LINK_VFIO_USER,
		.name = "fuzz", .peer_timeout_ms = FUZZ_PEER_TIMEOUT_MS,
	};
	static struct dma_run d;
	int sv[2], fds_before = count_fds();
	pthread_t wk, sk;
	struct run w;

	memset(&w, 0, sizeof(w));
	memset(&d, 0, sizeof(d));
	g.ended = false;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ||
	    viommu_mem_create(&mc, &w.mem))
		abort();
	cc.mem = sc.mem = d.mem = w.mem;
	if (viommu_ctx_create(&cc, &w.ctx) ||
	    viommu_endpoint_create(w.ctx, 0x28, &w.ep) ||
	    viommu_endpoint_attach(w.ep, VIOMMU_NO_PASID,
				   viommu_ctx_identity_domain(w.ctx)) ||
	    dma_engine_init(&w.eng, w.ep, w.mem, "dma", &fuzz_log,
			    &eng_allocator))
		abort();
	lc.func = (struct viommu_pci_func *)dma_engine_func(&w.eng);
	lc.fd = sv[1];
	if (viommu_link_server_create(&sc, &w.srv) ||
	    viommu_link_server_add(w.srv, &lc, &w.id))
		abort();
	dma_setup(sv[0]);
	if (pthread_create(&sk, NULL, sink, &sv[0]) ||
	    pthread_create(&wk, NULL, dma_worker, &d))
		abort();
	/* the chunks, without fds or events: the client's side of the talk */
	for (size_t pos = 0; pos + 2 <= size;) {
		size_t l = data[pos + 1];

		pos += 2;
		if (l > size - pos)
			l = size - pos;
		if (l && send(sv[0], data + pos, l, MSG_NOSIGNAL) < 0)
			break;
		pos += l;
	}
	shutdown(sv[0], SHUT_WR);
	pthread_join(wk, NULL);
	pthread_mutex_lock(&g.lock);
	while (!g.ended)
		pthread_cond_wait(&g.cond, &g.lock);
	pthread_mutex_unlock(&g.lock);
	pthread_join(sk, NULL);
	for (unsigned int i = 0; i < 4; i++)
		if (d.results[i] != 0 && d.results[i] != -EIO &&
		    d.results[i] != -EFAULT) { /* EFAULT: window gone */
			fprintf(stderr, "access %u: %d\n", i, d.results[i]);
			abort();
		}
	close(sv[0]);
	viommu_link_server_destroy(w.srv);
	dma_engine_destroy(&w.eng);
	viommu_ctx_destroy(w.ctx);
	viommu_mem_destroy(w.mem);
	if (count_fds() != fds_before) {
		fprintf(stderr, "fds %d, before %d\n", count_fds(),
			fds_before);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput() - run one input (see the top of the file). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct viommu_link_stats st;
	int sv[2], fds_before = count_fds(), why;
	struct run w;
	pthread_t rd;

	if (size < 1)
		return 0;
	if (data[0] & 8) {
		dma_mode(data + 1, size - 1);
		return 0;
	}
	memset(&w, 0, sizeof(w));
	g.verbose = getenv("FUZZ_VFIO_USER_VERBOSE") != NULL;
	g.closed_lines = 0;
	g.ended = false;
	g.nrep = 0;
	g.rep_bytes = 0;
	g.ndma = 0;
	g.dma_bytes = 0;
	g.rx_len = 0;
	model_build(&g.mo, g.stream, layout(data + 1, size - 1));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	w.sock = sv[0];
	world_up(&w, data[0], sv[1]);
	if (w.thread && pthread_create(&rd, NULL, reader, &w.sock))
		abort();
	play(&w, data + 1, size - 1);
	why = finish(&w, &rd);
	if (viommu_link_server_stats(w.srv, w.id, &st, sizeof(st)))
		abort();
	if (w.thread)
		why = st.end;
	if (g.ndma) {
		/* The stream made our DMA engine reach a window mapped
		 * without an fd, so the server sent its own DMA requests,
		 * which this mode leaves unanswered: each must fail (at its
		 * deadline or when the peer goes) and be counted, and what
		 * follows it is outside the reply model (the DMA mode, bit
		 * 3, answers them). */
		if (st.dma_requests != g.ndma || st.dma_failed != g.ndma ||
		    st.replies != g.nrep ||
		    st.bytes_out != g.rep_bytes + g.dma_bytes)
			abort();
	} else {
		check_all(&st, why);
	}
	close(w.sock);
	world_down(&w);
	if (count_fds() != fds_before)
		abort();
	return 0;
}
