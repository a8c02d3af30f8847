/*
 * mpqemu.c - the x-pci-proxy-dev link server (see mpqemu.h for the wire
 * format and the rules).
 *
 * Each link reads one message at a time: the 16-byte header with
 * recvmsg() (fds ride on the message's first byte), then exactly the
 * payload the command needs, so a read never reaches into the next
 * message.  Every wait polls three things: the socket, the server's stop
 * eventfd (which stays readable once written, so it interrupts a link in
 * the middle of a message too) and the link's resample eventfd.  The
 * socket is used with MSG_DONTWAIT, so neither a silent nor a flooding
 * peer can block a link past a stop.
 *
 * A message is validated completely (command, exact payload size, fd
 * count, fields) before it touches the PCI function.  A bad one logs one
 * line and ends the link; received fds are always closed unless kept
 * (SET_IRQFD keeps its two; the memory layer dups SYNC_SYSMEM's).
 *
 * Locks: s->lock guards the link table and the stopped flag; s->sysmem_lock
 * guards the guest-RAM owner and serialises viommu_mem_set_regions(),
 * which a link calls only between messages, never inside a memory read
 * section; l->irq_lock guards a link's intr fd and INTx level, since any
 * thread that makes the device raise INTx writes the intr fd.  Counters
 * are relaxed atomics.
 */
#include "link/mpqemu.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RX_FDS_ROOM 16 /* cmsg room per recvmsg; more is MSG_CTRUNC */
#define NAME_LEN 32

/* struct msg - the message being received. */
struct msg {
	int32_t cmd;
	uint64_t size;
	union {
		uint8_t b[MPQEMU_MAX_PAYLOAD];
		uint64_t align;
	} p;
	int fds[MPQEMU_MAX_FDS];
	unsigned int nfds;
	bool fd_overflow; /* more fds than allowed arrived (extras closed) */
};

struct link {
	struct mpqemu_server *srv;
	unsigned int id;
	char name[NAME_LEN];
	struct pci_func *func;
	int sock;       /* connected socket, or -1 */
	int listen_fd;  /* path links until a peer connects, or -1 */
	char *path;     /* bound path to unlink, or NULL */
	bool manual;
	bool ran;       /* serving has begun (or stop() ended it) */
	bool thread_live;
	pthread_t thread;
	pthread_mutex_t irq_lock;
	int intr_fd;     /* guarded by irq_lock */
	bool level;      /* guarded by irq_lock */
	int resample_fd; /* link thread only */
	struct mpqemu_link_stats st;
	struct msg m;
};

struct mpqemu_server {
	struct viommu_mem *mem;
	struct viommu_log log;
	struct viommu_allocator alloc;
	void (*link_ended)(void *opaque, unsigned int id, int why);
	void *opaque;
	unsigned int poll_us;
	int stop_fd;
	pthread_mutex_t lock;
	bool stopped;
	bool stopping; /* atomic: set before the stop eventfd is written */
	unsigned int nlinks;
	struct link *links[MPQEMU_MAX_LINKS];
	pthread_mutex_t sysmem_lock;
	int sysmem_owner; /* link ID, or -1 */
};

static const char *const cmd_names[MPQEMU_CMD_COUNT] = {
	"SYNC_SYSMEM", "RET", "PCI_CFGWRITE", "PCI_CFGREAD",
	"BAR_WRITE", "BAR_READ", "SET_IRQFD", "DEVICE_RESET",
};

/* Exact payload size of each command. */
static const uint64_t cmd_sizes[MPQEMU_CMD_COUNT] = {
	MPQEMU_SYSMEM_SIZE, MPQEMU_RET_SIZE, MPQEMU_CFG_SIZE, MPQEMU_CFG_SIZE,
	MPQEMU_BAR_SIZE, MPQEMU_BAR_SIZE, 0, 0,
};

const char *mpqemu_cmd_name(unsigned int cmd)
{
	return cmd < MPQEMU_CMD_COUNT ? cmd_names[cmd] : "?";
}

const char *mpqemu_end_name(int end)
{
	static const char *const names[] = {
		"open", "hangup", "truncated", "protocol", "io", "stopped",
	};

	return end >= 0 && end < (int)ARRAY_SIZE(names) ? names[end] : "?";
}

/* ---- small helpers ---------------------------------------------------- */

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* close_fd() - close *@fd if open and mark it closed. */
static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* bad() - log one "malformed message" line; returns MPQEMU_END_PROTOCOL. */
static int bad(struct link *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad(struct link *l, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn(&l->srv->log, "mpqemu %s: malformed message, link closed: %s",
		 l->name, why);
	return MPQEMU_END_PROTOCOL;
}

/*
 * is_eventfd() - whether @fd is an eventfd, judged by its /proc link; true
 * when /proc cannot tell.
 */
static bool is_eventfd(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return true;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

/* ---- interrupts ------------------------------------------------------- */

/*
 * fd_ready() - whether @fd can be read (or written) without blocking.  The
 * eventfds come from the peer, which shares their file description and
 * could clear O_NONBLOCK behind our back: poll first, never block.
 */
static bool fd_ready(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, 0) == 1 && (p.revents & events);
}

/* signal_intr() - write 1 to the intr eventfd.  irq_lock held. */
static void signal_intr(struct link *l)
{
	uint64_t one = 1;

	if (l->intr_fd < 0 || !fd_ready(l->intr_fd, POLLOUT))
		return;
	if (write(l->intr_fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
		ATOMIC_INC(l->st.irq_signals);
}

/* link_intx() - the function's INTx sink: signal on a rising edge. */
static void link_intx(void *opaque, bool level)
{
	struct link *l = opaque;

	pthread_mutex_lock(&l->irq_lock);
	if (level && !l->level)
		signal_intr(l);
	l->level = level;
	pthread_mutex_unlock(&l->irq_lock);
}

/*
 * resample() - the guest ended the interrupt: consume the notification and
 * re-signal if the line is still asserted.  A resample fd that does not
 * behave like an eventfd (EOF, short read, error) is dropped.
 */
static void resample(struct link *l)
{
	uint64_t v;
	ssize_t n;

	if (!fd_ready(l->resample_fd, POLLIN))
		return;
	n = read(l->resample_fd, &v, sizeof(v));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != (ssize_t)sizeof(v)) {
		log_warn(&l->srv->log,
			 "mpqemu %s: resample fd unreadable, ignoring it",
			 l->name);
		close_fd(&l->resample_fd);
		return;
	}
	ATOMIC_INC(l->st.resamples);
	pthread_mutex_lock(&l->irq_lock);
	if (l->level)
		signal_intr(l);
	pthread_mutex_unlock(&l->irq_lock);
}

/* ---- socket I/O ------------------------------------------------------- */

/*
 * spin_ready() - check @fd without blocking for up to @us microseconds.
 * Sleeping in poll() costs a wake-up of this thread when the message
 * arrives (tens of microseconds across CPUs here); the peer's kicks often
 * come in quick succession.
 */
static bool spin_ready(int fd, short events, unsigned int us)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (fd_ready(fd, events))
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000ull +
		 (uint64_t)(t.tv_nsec - t0.tv_nsec) < (uint64_t)us * 1000);
	return false;
}

/*
 * wait_fd() - wait until @fd is ready for @events, serving resample
 * notifications meanwhile.  Return: 0; -ECANCELED (server stopping);
 * -errno from poll().
 */
static int wait_fd(struct link *l, int fd, short events)
{
	if (l->srv->poll_us && spin_ready(fd, events, l->srv->poll_us)) {
		if (l->resample_fd >= 0)
			resample(l);
		return 0;
	}
	for (;;) {
		struct pollfd p[3] = {
			{ .fd = fd, .events = events },
			{ .fd = l->srv->stop_fd, .events = POLLIN },
			{ .fd = l->resample_fd, .events = POLLIN },
		};

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[1].revents)
			return -ECANCELED;
		if (p[2].revents && l->resample_fd >= 0)
			resample(l);
		if (p[0].revents)
			return 0;
	}
}

/* take_fds() - move the SCM_RIGHTS fds of @mh into the message. */
static void take_fds(struct link *l, struct msghdr *mh)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t i, n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			ATOMIC_INC(l->st.fds_in);
			if (l->m.nfds < MPQEMU_MAX_FDS) {
				l->m.fds[l->m.nfds++] = fd;
			} else {
				close(fd);
				l->m.fd_overflow = true;
			}
		}
	}
}

/*
 * recv_chunk() - one non-blocking recvmsg() of up to @len bytes, keeping
 * any fds.  Return: bytes (0 at EOF); -errno.
 */
static ssize_t recv_chunk(struct link *l, void *buf, size_t len)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(RX_FDS_ROOM * sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.b,
		.msg_controllen = sizeof(ctl.b),
	};
	ssize_t n = recvmsg(l->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return -errno;
	if (mh.msg_flags & MSG_CTRUNC)
		l->m.fd_overflow = true;
	take_fds(l, &mh);
	ATOMIC_ADD(l->st.bytes_in, (uint64_t)n);
	return n;
}

/*
 * recv_exact() - receive exactly @len bytes; *@got counts those received.
 * Return: 0; -EPIPE (EOF first); -ECANCELED; -errno.
 */
static int recv_exact(struct link *l, void *buf, size_t len, size_t *got)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = recv_chunk(l, (uint8_t *)buf + *got, len - *got);
		int err;

		if (n == 0)
			return -EPIPE;
		if (n > 0) {
			*got += (size_t)n;
			continue;
		}
		if (n != -EAGAIN && n != -EINTR)
			return (int)n;
		err = wait_fd(l, l->sock, POLLIN);
		if (err)
			return err;
	}
	return 0;
}

/*
 * send_all() - send @len bytes.  Return: 0, or the enum mpqemu_end that
 * ends the link.
 */
static int send_all(struct link *l, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(l->sock, (const uint8_t *)buf + done,
				 len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
		int err;

		if (n >= 0) {
			done += (size_t)n;
			continue;
		}
		if (errno == EPIPE || errno == ECONNRESET)
			return MPQEMU_END_HANGUP;
		if (errno != EAGAIN && errno != EINTR)
			goto io_error;
		err = wait_fd(l, l->sock, POLLOUT);
		if (err == -ECANCELED)
			return MPQEMU_END_STOPPED;
		if (err) {
			errno = -err;
			goto io_error;
		}
	}
	return 0;

io_error:
	log_warn(&l->srv->log, "mpqemu %s: send: %s", l->name,
		 strerror(errno));
	return MPQEMU_END_IO;
}

/* send_ret() - reply RET with @value.  Return: 0 or an enum mpqemu_end. */
static int send_ret(struct link *l, uint64_t value)
{
	uint8_t buf[MPQEMU_HDR_SIZE + MPQEMU_RET_SIZE] = { 0 };
	int32_t cmd = MPQEMU_RET;
	uint64_t size = MPQEMU_RET_SIZE;

	memcpy(buf, &cmd, sizeof(cmd));
	memcpy(buf + 8, &size, sizeof(size));
	memcpy(buf + MPQEMU_HDR_SIZE, &value, sizeof(value));
	/* Counted first: the peer may look at the counters once it has it. */
	ATOMIC_INC(l->st.replies);
	ATOMIC_ADD(l->st.bytes_out, (uint64_t)sizeof(buf));
	return send_all(l, buf, sizeof(buf));
}

/*
 * recv_end() - the enum mpqemu_end for a failed receive of which @got
 * bytes of the current message had arrived; logs truncation and errors.
 */
static int recv_end(struct link *l, int err, size_t got)
{
	if (err == -ECANCELED)
		return MPQEMU_END_STOPPED;
	/* ECONNRESET: the peer died with our last reply unread. */
	if ((err == -EPIPE || err == -ECONNRESET) && got == 0)
		return MPQEMU_END_HANGUP;
	if (err == -EPIPE || err == -ECONNRESET) {
		log_warn(&l->srv->log,
			 "mpqemu %s: peer closed in the middle of a message "
			 "(%zu bytes of it received), link closed",
			 l->name, got);
		return MPQEMU_END_TRUNCATED;
	}
	log_warn(&l->srv->log, "mpqemu %s: receive: %s, link closed",
		 l->name, strerror(-err));
	return MPQEMU_END_IO;
}

/* check_header() - validate command and size.  0 or an enum mpqemu_end. */
static int check_header(struct link *l)
{
	const struct msg *m = &l->m;

	if (m->cmd < 0 || m->cmd >= MPQEMU_CMD_COUNT)
		return bad(l, "unknown command %d", m->cmd);
	if (m->size > MPQEMU_MAX_PAYLOAD)
		return bad(l, "%s payload of %llu bytes is too big",
			   cmd_names[m->cmd], (unsigned long long)m->size);
	if (m->size != cmd_sizes[m->cmd])
		return bad(l, "%s with %llu payload bytes (expected %llu)",
			   cmd_names[m->cmd], (unsigned long long)m->size,
			   (unsigned long long)cmd_sizes[m->cmd]);
	return 0;
}

/*
 * read_msg() - receive one whole message into l->m.
 * Return: 0, or the enum mpqemu_end that ends the link.
 */
static int read_msg(struct link *l)
{
	uint8_t hdr[MPQEMU_HDR_SIZE];
	size_t got;
	int err;

	l->m.nfds = 0;
	l->m.fd_overflow = false;
	/* A peer that keeps the socket full never blocks in poll(). */
	if (LOAD_ACQUIRE(l->srv->stopping))
		return MPQEMU_END_STOPPED;
	/*
	 * Wait before the first read: the peer normally waits for our reply
	 * before sending, so a speculative read would only fail.  The wait
	 * also serves a resample that happened before this message was sent
	 * (poll() reports both; wait_fd() takes the resample first), so it is
	 * seen before the message even when the message is already queued.
	 */
	err = wait_fd(l, l->sock, POLLIN);
	if (err)
		return recv_end(l, err, 0);
	err = recv_exact(l, hdr, sizeof(hdr), &got);
	if (err)
		return recv_end(l, err, got);
	memcpy(&l->m.cmd, hdr, sizeof(l->m.cmd));
	memcpy(&l->m.size, hdr + 8, sizeof(l->m.size));
	err = check_header(l);
	if (err)
		return err;
	err = recv_exact(l, l->m.p.b, (size_t)l->m.size, &got);
	if (err)
		return recv_end(l, err, got + sizeof(hdr));
	ATOMIC_INC(l->st.msgs[l->m.cmd]);
	return 0;
}

/* close_msg_fds() - close the fds of the current message not kept. */
static void close_msg_fds(struct link *l)
{
	unsigned int i;

	for (i = 0; i < l->m.nfds; i++)
		close_fd(&l->m.fds[i]);
	l->m.nfds = 0;
}

/* ---- commands --------------------------------------------------------- */

/* want_fds() - the message must carry exactly @n fds. */
static int want_fds(struct link *l, unsigned int n)
{
	if (l->m.fd_overflow || l->m.nfds != n)
		return bad(l, "%s with %s%u fds (expected %u)",
			   cmd_names[l->m.cmd], l->m.fd_overflow ? "over " : "",
			   l->m.nfds, n);
	return 0;
}

/*
 * apply_sysmem() - install @n regions if this link owns guest RAM (or
 * takes ownership now); drop them otherwise.
 */
static int apply_sysmem(struct link *l, const struct viommu_mem_region *r,
			unsigned int n)
{
	struct mpqemu_server *s = l->srv;
	uint64_t bytes = 0;
	unsigned int i;
	int err = 0;

	pthread_mutex_lock(&s->sysmem_lock);
	if (s->sysmem_owner < 0)
		s->sysmem_owner = (int)l->id;
	if (s->sysmem_owner == (int)l->id)
		err = viommu_mem_set_regions(s->mem, r, n);
	else
		err = 1;
	pthread_mutex_unlock(&s->sysmem_lock);
	if (err == 1) {
		ATOMIC_INC(l->st.sysmem_ignored);
		return 0;
	}
	if (err)
		return bad(l, "SYNC_SYSMEM refused by guest memory: %s",
			   strerror(-err));
	for (i = 0; i < n; i++)
		bytes += r[i].size;
	/* QEMU re-sends the map on every change (dozens per boot). */
	vlog(&s->log, ATOMIC_INC(l->st.sysmem_applied) ? VIOMMU_LOG_DEBUG :
							VIOMMU_LOG_INFO,
	     "mpqemu %s: guest RAM set: %u regions, %llu KiB", l->name, n,
	     (unsigned long long)(bytes >> 10));
	return 0;
}

/* do_sysmem() - SYNC_SYSMEM: validate the regions, then apply them. */
static int do_sysmem(struct link *l)
{
	struct viommu_mem_region r[MPQEMU_MAX_FDS];
	const uint8_t *p = l->m.p.b;
	unsigned int i, n = l->m.nfds;
	uint64_t last;

	if (l->m.fd_overflow || n == 0)
		return bad(l, "SYNC_SYSMEM with %s%u fds (expected 1 to %d)",
			   l->m.fd_overflow ? "over " : "", n,
			   MPQEMU_MAX_FDS);
	for (i = 0; i < MPQEMU_MAX_FDS; i++) {
		uint64_t gpa = get64(p + 8 * i), size = get64(p + 64 + 8 * i);
		int64_t off = (int64_t)get64(p + 128 + 8 * i);

		if (i >= n) {
			if (gpa || size || off)
				return bad(l, "SYNC_SYSMEM region %u has no fd",
					   i);
			continue;
		}
		if (!range_last(gpa, size, &last) || off < 0)
			return bad(l, "SYNC_SYSMEM region %u: gpa 0x%llx size "
				   "0x%llx offset %lld", i,
				   (unsigned long long)gpa,
				   (unsigned long long)size, (long long)off);
		r[i] = (struct viommu_mem_region){ .gpa = gpa, .size = size,
						   .fd = l->m.fds[i],
						   .fd_offset = (uint64_t)off };
	}
	return apply_sysmem(l, r, n);
}

/* do_cfg() - PCI_CFGREAD / PCI_CFGWRITE. */
static int do_cfg(struct link *l, bool write)
{
	const uint8_t *p = l->m.p.b;
	uint32_t addr = get32(p), val = get32(p + 4);
	int32_t len = (int32_t)get32(p + 8);
	int err = want_fds(l, 0);

	if (err)
		return err;
	if ((len != 1 && len != 2 && len != 4) ||
	    addr > PCI_CFG_SIZE - (uint32_t)len)
		return bad(l, "%s at 0x%x length %d", cmd_names[l->m.cmd],
			   addr, len);
	if (write) {
		pci_cfg_write(l->func, addr, val, (unsigned int)len);
		return send_ret(l, 0);
	}
	return send_ret(l, pci_cfg_read(l->func, addr, (unsigned int)len));
}

/* do_bar() - BAR_READ / BAR_WRITE at an absolute address. */
static int do_bar(struct link *l, bool write)
{
	const uint8_t *p = l->m.p.b;
	uint64_t addr = get64(p), val = get64(p + 8);
	uint32_t size = get32(p + 16);
	uint8_t memory = p[20];
	int err = want_fds(l, 0);

	if (err)
		return err;
	if ((size != 1 && size != 2 && size != 4 && size != 8) || memory > 1)
		return bad(l, "%s size %u memory %u", cmd_names[l->m.cmd],
			   size, memory);
	err = pci_bar_access(l->func, addr, !memory, write, &val, size);
	if (err) {
		ATOMIC_INC(l->st.bar_unclaimed);
		log_debug(&l->srv->log, "mpqemu %s: %s 0x%llx/%u unclaimed",
			  l->name, cmd_names[l->m.cmd],
			  (unsigned long long)addr, size);
		val = UINT64_MAX;
	}
	if (write)
		return send_ret(l, 0);
	if (size < 8)
		val &= (1ull << (size * 8)) - 1;
	return send_ret(l, val);
}

/* do_irqfd() - SET_IRQFD: keep {intr, resample}, replacing older ones. */
static int do_irqfd(struct link *l)
{
	int err = want_fds(l, 2), i;

	if (err)
		return err;
	for (i = 0; i < 2; i++) {
		int fl = fcntl(l->m.fds[i], F_GETFL);

		if (!is_eventfd(l->m.fds[i]))
			return bad(l, "SET_IRQFD fd %d is not an eventfd", i);
		if (fl < 0 || fcntl(l->m.fds[i], F_SETFL, fl | O_NONBLOCK) < 0)
			return bad(l, "SET_IRQFD fd %d: %s", i,
				   strerror(errno));
	}
	close_fd(&l->resample_fd);
	l->resample_fd = l->m.fds[1];
	pthread_mutex_lock(&l->irq_lock);
	close_fd(&l->intr_fd);
	l->intr_fd = l->m.fds[0];
	if (l->level)
		signal_intr(l);
	pthread_mutex_unlock(&l->irq_lock);
	l->m.fds[0] = l->m.fds[1] = -1;
	return 0;
}

/* process() - act on the validated header's message.  0 or an end. */
static int process(struct link *l)
{
	int err;

	switch (l->m.cmd) {
	case MPQEMU_SYNC_SYSMEM:
		return do_sysmem(l);
	case MPQEMU_PCI_CFGWRITE:
	case MPQEMU_PCI_CFGREAD:
		return do_cfg(l, l->m.cmd == MPQEMU_PCI_CFGWRITE);
	case MPQEMU_BAR_WRITE:
	case MPQEMU_BAR_READ:
		return do_bar(l, l->m.cmd == MPQEMU_BAR_WRITE);
	case MPQEMU_SET_IRQFD:
		return do_irqfd(l);
	case MPQEMU_DEVICE_RESET:
		err = want_fds(l, 0);
		if (err)
			return err;
		pci_func_reset(l->func);
		return send_ret(l, 0);
	default: /* MPQEMU_RET */
		return bad(l, "unexpected RET from the peer");
	}
}

/* ---- link life -------------------------------------------------------- */

/* drop_listener() - close the listening socket and remove its path. */
static void drop_listener(struct link *l)
{
	close_fd(&l->listen_fd);
	if (l->path) {
		unlink(l->path);
		xfree(&l->srv->alloc, l->path);
		l->path = NULL;
	}
}

/* accept_peer() - path links: wait for QEMU.  0 or an enum mpqemu_end. */
static int accept_peer(struct link *l)
{
	for (;;) {
		int fd, err = wait_fd(l, l->listen_fd, POLLIN);

		if (err == -ECANCELED)
			return MPQEMU_END_STOPPED;
		if (err)
			return MPQEMU_END_IO;
		fd = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			l->sock = fd;
			drop_listener(l);
			return 0;
		}
		if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED) {
			log_warn(&l->srv->log, "mpqemu %s: accept: %s",
				 l->name, strerror(errno));
			return MPQEMU_END_IO;
		}
	}
}

/*
 * link_end() - close everything the link holds, give up guest-RAM
 * ownership, publish the end reason and tell the server's owner.
 */
static void link_end(struct link *l, int why)
{
	struct mpqemu_server *s = l->srv;

	close_msg_fds(l);
	close_fd(&l->resample_fd);
	pthread_mutex_lock(&l->irq_lock);
	close_fd(&l->intr_fd);
	pthread_mutex_unlock(&l->irq_lock);
	close_fd(&l->sock);
	drop_listener(l);
	pthread_mutex_lock(&s->sysmem_lock);
	if (s->sysmem_owner == (int)l->id)
		s->sysmem_owner = -1;
	pthread_mutex_unlock(&s->sysmem_lock);
	if (why == MPQEMU_END_HANGUP)
		log_info(&s->log, "mpqemu %s: peer hung up", l->name);
	STORE_RELEASE(l->st.end, why);
	if (s->link_ended)
		s->link_ended(s->opaque, l->id, why);
}

/* link_serve() - serve until the link ends; returns the end reason. */
static int link_serve(struct link *l)
{
	int why = 0;

	if (l->listen_fd >= 0)
		why = accept_peer(l);
	if (!why) {
		STORE_RELEASE(l->st.connected, true);
		log_info(&l->srv->log, "mpqemu %s: peer connected", l->name);
	}
	while (!why) {
		why = read_msg(l);
		if (!why)
			why = process(l);
		close_msg_fds(l);
	}
	link_end(l, why);
	return why;
}

static void *link_thread(void *arg)
{
	link_serve(arg);
	return NULL;
}

/* ---- server ----------------------------------------------------------- */

int mpqemu_server_create(const struct mpqemu_server_config *cfg,
			 struct mpqemu_server **out)
{
	struct mpqemu_server *s;

	if (!cfg || !out || !cfg->mem)
		return -EINVAL;
	s = xzalloc(&cfg->allocator, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0) {
		int err = -errno;

		xfree(&cfg->allocator, s);
		return err;
	}
	s->mem = cfg->mem;
	s->log = cfg->log;
	s->alloc = cfg->allocator;
	s->link_ended = cfg->link_ended;
	s->opaque = cfg->opaque;
	s->poll_us = cfg->poll_us > 1000000 ? 1000000 : cfg->poll_us;
	s->sysmem_owner = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->sysmem_lock, NULL);
	*out = s;
	return 0;
}

/* check_socket() - @fd must be a connected UNIX stream socket. */
static int check_socket(int fd)
{
	int type = 0, domain = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return errno == ENOTSOCK ? -EINVAL : -errno;
	len = sizeof(domain);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return -errno;
	return type == SOCK_STREAM && domain == AF_UNIX ? 0 : -EINVAL;
}

/* listen_path() - bind and listen on @path for link @l. */
static int listen_path(struct link *l, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len + 1);
	l->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->listen_fd < 0)
		return -errno;
	if (bind(l->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	/* From here on the path is ours: drop_listener() unlinks it. */
	l->path = xalloc(&l->srv->alloc, len + 1);
	if (!l->path) {
		unlink(path);
		return -ENOMEM;
	}
	memcpy(l->path, path, len + 1);
	if (listen(l->listen_fd, 1) < 0)
		return -errno;
	return 0;
}

/*
 * hook_intx() - become @l's function's INTx sink, starting from the level
 * the function last reported (under its intx_lock, so no edge is lost).
 */
static void hook_intx(struct link *l)
{
	struct pci_func *f = l->func;

	pthread_mutex_lock(&f->intx_lock);
	pthread_mutex_lock(&l->irq_lock);
	l->level = f->intx_out;
	pthread_mutex_unlock(&l->irq_lock);
	f->intx_fn = link_intx;
	f->intx_opaque = l;
	pthread_mutex_unlock(&f->intx_lock);
}

/* unhook_intx() - stop being the function's INTx sink, if we are. */
static void unhook_intx(struct link *l)
{
	struct pci_func *f = l->func;

	if (!f)
		return;
	pthread_mutex_lock(&f->intx_lock);
	if (f->intx_fn == link_intx && f->intx_opaque == l) {
		f->intx_fn = NULL;
		f->intx_opaque = NULL;
	}
	pthread_mutex_unlock(&f->intx_lock);
}

/* link_free() - release a link that is not (or no longer) running. */
static void link_free(struct link *l)
{
	close_msg_fds(l);
	close_fd(&l->resample_fd);
	close_fd(&l->intr_fd);
	close_fd(&l->sock);
	drop_listener(l);
	unhook_intx(l);
	pthread_mutex_destroy(&l->irq_lock);
	xfree(&l->srv->alloc, l);
}

/*
 * link_new() - allocate link @id for @lc and open its socket.  Takes
 * ownership of lc->fd.  Return: 0; -errno.
 */
static int link_new(struct mpqemu_server *s,
		    const struct mpqemu_link_config *lc, unsigned int id,
		    struct link **out)
{
	struct link *l = xzalloc(&s->alloc, sizeof(*l));
	int err;

	if (!l) {
		if (lc->fd >= 0)
			close(lc->fd);
		return -ENOMEM;
	}
	l->srv = s;
	l->id = id;
	l->func = lc->func;
	l->sock = lc->fd;
	l->listen_fd = l->intr_fd = l->resample_fd = -1;
	l->manual = lc->manual;
	pthread_mutex_init(&l->irq_lock, NULL);
	if (lc->name)
		snprintf(l->name, sizeof(l->name), "%s", lc->name);
	else
		snprintf(l->name, sizeof(l->name), "link%u", id);
	err = lc->fd >= 0 ? check_socket(lc->fd) : listen_path(l, lc->path);
	if (err) {
		link_free(l);
		return err;
	}
	*out = l;
	return 0;
}

/* func_taken() - whether a link of @s already serves @f.  s->lock held. */
static bool func_taken(struct mpqemu_server *s, struct pci_func *f)
{
	unsigned int i;

	for (i = 0; i < s->nlinks; i++)
		if (s->links[i]->func == f)
			return true;
	return false;
}

/* admit() - whether a link may be added now.  s->lock held. */
static int admit(struct mpqemu_server *s, const struct mpqemu_link_config *lc)
{
	if (s->stopped)
		return -ESHUTDOWN;
	if (s->nlinks >= MPQEMU_MAX_LINKS)
		return -ENOSPC;
	if (func_taken(s, lc->func))
		return -EBUSY;
	return 0;
}

/* start_link() - hook INTx and start the thread.  s->lock held. */
static int start_link(struct link *l)
{
	int err;

	hook_intx(l);
	if (l->manual)
		return 0;
	err = pthread_create(&l->thread, NULL, link_thread, l);
	if (err)
		return -err;
	l->ran = l->thread_live = true;
	return 0;
}

int mpqemu_server_add_link(struct mpqemu_server *s,
			   const struct mpqemu_link_config *lc,
			   unsigned int *id)
{
	struct link *l = NULL;
	int err;

	if (!s || !lc || !id || !lc->func ||
	    (lc->fd < 0 && (!lc->path || !*lc->path))) {
		if (lc && lc->fd >= 0)
			close(lc->fd);
		return -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	err = admit(s, lc);
	if (err) {
		if (lc->fd >= 0)
			close(lc->fd);
		goto out;
	}
	err = link_new(s, lc, s->nlinks, &l);
	if (err)
		goto out;
	err = start_link(l);
	if (err) {
		link_free(l);
		goto out;
	}
	*id = l->id;
	s->links[s->nlinks++] = l;
out:
	pthread_mutex_unlock(&s->lock);
	return err;
}

/* get_link() - link @id or NULL. */
static struct link *get_link(struct mpqemu_server *s, unsigned int id)
{
	struct link *l = NULL;

	if (!s)
		return NULL;
	pthread_mutex_lock(&s->lock);
	if (id < s->nlinks)
		l = s->links[id];
	pthread_mutex_unlock(&s->lock);
	return l;
}

int mpqemu_server_run_link(struct mpqemu_server *s, unsigned int id)
{
	struct link *l = get_link(s, id);
	bool ok;

	if (!l)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	ok = l->manual && !l->ran;
	l->ran = true;
	pthread_mutex_unlock(&s->lock);
	if (!ok)
		return -EINVAL;
	return link_serve(l);
}

void mpqemu_server_stop(struct mpqemu_server *s)
{
	uint64_t one = 1;
	unsigned int i;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopped = true;
	pthread_mutex_unlock(&s->lock);
	STORE_RELEASE(s->stopping, true);
	if (write(s->stop_fd, &one, sizeof(one)) < 0) {
		/* the counter is already non-zero: stop was signalled */
	}
	for (i = 0; i < MPQEMU_MAX_LINKS; i++) {
		struct link *l = get_link(s, i);
		bool never_ran;

		if (!l)
			break;
		pthread_mutex_lock(&s->lock);
		never_ran = !l->ran;
		l->ran = true;
		pthread_mutex_unlock(&s->lock);
		if (never_ran)
			link_end(l, MPQEMU_END_STOPPED);
		if (l->thread_live) {
			pthread_join(l->thread, NULL);
			l->thread_live = false;
		}
	}
}

void mpqemu_server_destroy(struct mpqemu_server *s)
{
	unsigned int i;

	if (!s)
		return;
	mpqemu_server_stop(s);
	for (i = 0; i < s->nlinks; i++)
		link_free(s->links[i]);
	close(s->stop_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->sysmem_lock);
	xfree(&s->alloc, s);
}

unsigned int mpqemu_server_num_links(struct mpqemu_server *s)
{
	unsigned int n;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	n = s->nlinks;
	pthread_mutex_unlock(&s->lock);
	return n;
}

unsigned int mpqemu_server_open_links(struct mpqemu_server *s)
{
	unsigned int i, n = 0, total = mpqemu_server_num_links(s);

	for (i = 0; i < total; i++)
		if (LOAD_ACQUIRE(get_link(s, i)->st.end) == MPQEMU_OPEN)
			n++;
	return n;
}

int mpqemu_server_link_stats(struct mpqemu_server *s, unsigned int id,
			     struct mpqemu_link_stats *out)
{
	struct link *l = get_link(s, id);
	unsigned int i;

	if (!l || !out)
		return -EINVAL;
	for (i = 0; i < MPQEMU_CMD_COUNT; i++)
		out->msgs[i] = READ_ONCE(l->st.msgs[i]);
	out->bytes_in = READ_ONCE(l->st.bytes_in);
	out->bytes_out = READ_ONCE(l->st.bytes_out);
	out->fds_in = READ_ONCE(l->st.fds_in);
	out->replies = READ_ONCE(l->st.replies);
	out->bar_unclaimed = READ_ONCE(l->st.bar_unclaimed);
	out->irq_signals = READ_ONCE(l->st.irq_signals);
	out->resamples = READ_ONCE(l->st.resamples);
	out->sysmem_applied = READ_ONCE(l->st.sysmem_applied);
	out->sysmem_ignored = READ_ONCE(l->st.sysmem_ignored);
	out->connected = LOAD_ACQUIRE(l->st.connected);
	out->end = LOAD_ACQUIRE(l->st.end);
	return 0;
}

const char *mpqemu_server_link_name(struct mpqemu_server *s, unsigned int id)
{
	struct link *l = get_link(s, id);

	return l ? l->name : NULL;
}
