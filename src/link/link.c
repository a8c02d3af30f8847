/*
 * link.c - the link server (include/viommu/link.h): links, their sockets,
 * threads or the embedder's poll loop, stop, guest-RAM ownership and
 * counters, for every protocol (src/link/link.h has the ideas).
 *
 * A link is served one message at a time: the protocol's serve() reads a
 * whole message with link_recv_exact() (which waits, bounded by the stop
 * eventfd, for the rest of a message whose beginning has arrived) and
 * answers it with link_send().  Thread mode loops on that until the link
 * ends; poll mode (viommu_link_server_run_once()) serves while the socket
 * has data and returns.
 *
 * Locks: s->lock guards the link table, the stopped flag and each link's
 * ended flags; s->stop_lock serialises stop() calls (the second waits
 * for the first to have joined every thread); s->ram_lock guards the guest-RAM owner and serialises
 * viommu_mem_set_regions() on the shared memory, which links call only
 * between messages, never inside a memory read section.  Counters are
 * relaxed atomics; end and connected are published with release stores.
 * l->send_lock serialises link_send(): besides the reader's replies, a
 * protocol may send requests from other threads (vfio-user DMA_READ and
 * DMA_WRITE from a device's worker thread, src/link/vfu_dma.c).
 */
#include "link/link.h"
#include "base/util.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct viommu_link_server {
	struct viommu_mem *mem;
	struct viommu_log log;
	struct viommu_allocator alloc;
	void (*link_ended)(void *opaque, unsigned int id, int why);
	void *opaque;
	unsigned int poll_us;
	int stop_fd;
	pthread_mutex_t lock;
	pthread_mutex_t stop_lock;
	bool stopped;
	unsigned int nlinks;
	struct link *links[VIOMMU_LINK_MAX];
	pthread_mutex_t ram_lock;
	int ram_owner; /* link ID owning the shared memory, or -1 */
	struct trace tr; /* typed trace points (lock to set) */
};

/* Per-link poll-mode state lives beside the link. */
struct poll_link {
	struct link l;
	int epoll_fd; /* poll mode: what viommu_link_server_poll_fd() gives */
	bool busy;    /* run_once() is running (s->lock) */
};

static const struct link_proto *proto_of(int proto)
{
	switch (proto) {
	case VIOMMU_LINK_VFIO_USER:
		return &link_proto_vfio_user;
	case VIOMMU_LINK_MPQEMU:
		return &link_proto_mpqemu;
	default:
		return NULL;
	}
}

const char *viommu_link_cmd_name(int proto, unsigned int cmd)
{
	const struct link_proto *p = proto_of(proto);

	return p ? p->cmd_name(cmd) : "?";
}

const char *viommu_link_end_name(int end)
{
	static const char *const names[] = {
		"open", "hangup", "truncated", "protocol", "io", "stopped",
	};

	return end >= 0 && end < (int)ARRAY_SIZE(names) ? names[end] : "?";
}

/* ---- helpers for protocols -------------------------------------------- */

const struct viommu_log *link_log(const struct link *l)
{
	return &l->srv->log;
}

const struct viommu_allocator *link_alloc(const struct link *l)
{
	return &l->srv->alloc;
}

void link_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int link_bad(struct link *l, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn(&l->srv->log, "%s %s: malformed message, link closed: %s",
		 l->proto->name, l->name, why);
	return VIOMMU_LINK_END_PROTOCOL;
}

bool link_fd_ready(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	return fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & events);
}

bool link_fd_shrinkable(const struct link *l, int fd)
{
	struct stat st;
	int seals;

	if (l->trust_fds || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	seals = fcntl(fd, F_GET_SEALS);
	return seals < 0 || !(seals & F_SEAL_SHRINK);
}

uint32_t link_mem_flags(const struct link *l)
{
	return l->trust_fds ? VIOMMU_MEM_F_TRUST_FD : 0;
}

bool link_is_eventfd(int fd)
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

/*
 * link_signal() - the eventfds come from the peer, which shares their file
 * description and could clear O_NONBLOCK behind our back: poll first,
 * never block.
 */
bool link_signal(int fd)
{
	uint64_t one = 1;
	int fl;

	if (fd < 0 || !link_fd_ready(fd, POLLOUT))
		return false;
	/*
	 * Re-assert O_NONBLOCK just before the write: the peer shares the
	 * file description.  A peer that clears it again and fills the
	 * counter in the instant between can still block this write until
	 * it reads its eventfd (LINKS.md L8): eventfds take no RWF_NOWAIT
	 * for writes.
	 */
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	return write(fd, &one, sizeof(one)) == (ssize_t)sizeof(one);
}

int link_eventfd_read(int fd, uint64_t *val)
{
	struct iovec iov = { val, sizeof(*val) };
	ssize_t n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);

	if (n < 0 && errno == EOPNOTSUPP) {
		/* Older kernels: make the read non-blocking ourselves. */
		int fl = fcntl(fd, F_GETFL);

		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
			return -errno;
		n = read(fd, val, sizeof(*val));
	}
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	return n == (ssize_t)sizeof(*val) ? 0 : -EIO;
}

void link_close_rx_fds(struct link *l)
{
	for (unsigned int i = 0; i < l->rx_nfds; i++)
		link_close_fd(&l->rx_fds[i]);
	l->rx_nfds = 0;
	l->rx_fd_overflow = false;
}

/*
 * spin_ready() - check @fd without blocking for up to @us microseconds:
 * sleeping in poll() costs a wake-up when the message arrives, and a
 * peer's messages often come in quick succession.
 */
static bool spin_ready(int fd, short events, unsigned int us)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (link_fd_ready(fd, events))
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000ull +
		 (uint64_t)(t.tv_nsec - t0.tv_nsec) < (uint64_t)us * 1000);
	return false;
}

/* now_ns() - CLOCK_MONOTONIC in nanoseconds. */
static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/*
 * my_tid() - the calling thread's identity as a number (pthread_t is an
 * integer or a pointer on Linux C libraries; never 0 for a live thread).
 * No system call: link_send() asks for every reply.
 */
static uintptr_t my_tid(void)
{
	return (uintptr_t)pthread_self();
}

bool link_is_reader(const struct link *l)
{
	return __atomic_load_n(&l->reader_tid, __ATOMIC_RELAXED) == my_tid();
}

/* serve_event() - the protocol's event fd is readable. */
static void serve_event(struct link *l)
{
	if (l->event_fd >= 0 && l->proto->event)
		l->proto->event(l);
}

/*
 * wait_fd() - wait until @fd is ready for @events, serving the protocol's
 * event fd meanwhile.  A poll-mode link waits at most l->stall_ms (it
 * holds the embedder's loop): a peer that stops in the middle of a message,
 * or does not read our replies, ends its link instead.
 * Return: 0; -ECANCELED (stopping); -ETIMEDOUT (poll mode); -errno.
 */
static int wait_fd(struct link *l, int fd, short events)
{
	int timeout = -1;

	if (l->poll_mode || l->dma_deadline_ns) {
		/*
		 * The whole message, not each wait, has l->stall_ms; so
		 * does a request of ours waiting for its reply.
		 */
		uint64_t dl = l->dma_deadline_ns ? l->dma_deadline_ns :
						   l->deadline_ns;
		int64_t left = (int64_t)(dl - now_ns()) / 1000000;

		if (left <= 0)
			return -ETIMEDOUT;
		timeout = (int)MIN(left, (int64_t)l->stall_ms);
	}

	if (l->srv->poll_us && spin_ready(fd, events, l->srv->poll_us)) {
		/* a flooding peer keeps the socket ready: look at stop too */
		if (link_fd_ready(l->srv->stop_fd, POLLIN))
			return -ECANCELED;
		if (link_fd_ready(l->event_fd, POLLIN))
			serve_event(l);
		return 0;
	}
	for (;;) {
		struct pollfd p[3] = {
			{ .fd = fd, .events = events },
			{ .fd = l->srv->stop_fd, .events = POLLIN },
			{ .fd = l->event_fd, .events = POLLIN },
		};

		int n = poll(p, 3, timeout);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ETIMEDOUT;
		if (p[1].revents)
			return -ECANCELED;
		if (p[2].revents)
			serve_event(l);
		if (p[0].revents)
			return 0;
	}
}

/* take_fds() - move the SCM_RIGHTS fds of @mh into l->rx_fds. */
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
			if (l->rx_nfds < LINK_MAX_RX_FDS) {
				l->rx_fds[l->rx_nfds++] = fd;
			} else {
				close(fd);
				l->rx_fd_overflow = true;
			}
		}
	}
}

/* recv_chunk() - one non-blocking recvmsg(); bytes (0 at EOF) or -errno. */
static ssize_t recv_chunk(struct link *l, void *buf, size_t len)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(LINK_MAX_RX_FDS * sizeof(int))];
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
		l->rx_fd_overflow = true;
	take_fds(l, &mh);
	ATOMIC_ADD(l->st.bytes_in, (uint64_t)n);
	return n;
}

int link_recv_exact(struct link *l, void *buf, size_t len, size_t *got)
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

int link_recv_some(struct link *l, void *buf, size_t len, size_t *got)
{
	*got = 0;
	for (;;) {
		ssize_t n = recv_chunk(l, buf, len);
		int err;

		if (n == 0)
			return -EPIPE;
		if (n > 0) {
			*got = (size_t)n;
			return 0;
		}
		if (n != -EAGAIN && n != -EINTR)
			return (int)n;
		err = wait_fd(l, l->sock, POLLIN);
		if (err)
			return err;
	}
}

int link_recv_end(struct link *l, int err, size_t got)
{
	if (err == -ECANCELED)
		return VIOMMU_LINK_END_STOPPED;
	/* ECONNRESET: the peer died with our last reply unread. */
	if ((err == -EPIPE || err == -ECONNRESET) && got == 0)
		return VIOMMU_LINK_END_HANGUP;
	if (err == -EPIPE || err == -ECONNRESET) {
		log_warn(&l->srv->log, "%s %s: peer closed in the middle of a "
			 "message (%zu bytes of it received), link closed",
			 l->proto->name, l->name, got);
		return VIOMMU_LINK_END_TRUNCATED;
	}
	if (err == -ETIMEDOUT) {
		log_warn(&l->srv->log, "%s %s: peer stalled %u ms in the middle "
			 "of a message (%zu bytes of it received), link closed",
			 l->proto->name, l->name, l->stall_ms, got);
		return VIOMMU_LINK_END_TRUNCATED;
	}
	log_warn(&l->srv->log, "%s %s: receive: %s, link closed",
		 l->proto->name, l->name, strerror(-err));
	return VIOMMU_LINK_END_IO;
}

/*
 * wait_out() - a thread other than the reader waits until the socket
 * takes more, or @deadline.  0; -ECANCELED; -ETIMEDOUT; -errno.
 */
static int wait_out(struct link *l, uint64_t deadline)
{
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = l->sock, .events = POLLOUT },
			{ .fd = l->srv->stop_fd, .events = POLLIN },
		};
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(p, 2, (int)MIN(left, (int64_t)l->stall_ms));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0 && p[1].revents)
			return -ECANCELED;
		if (n > 0 && p[0].revents)
			return 0;
	}
}

static int send_locked(struct link *l, const struct iovec *iov,
		       unsigned int n, bool reply);

/* do_send() - link_send() and link_send_request(). */
static int do_send(struct link *l, const struct iovec *iov, unsigned int n,
		   bool reply)
{
	int why;

	pthread_mutex_lock(&l->send_lock);
	why = l->sends_closed ? VIOMMU_LINK_END_IO :
				send_locked(l, iov, n, reply);
	pthread_mutex_unlock(&l->send_lock);
	return why;
}

int link_send(struct link *l, const struct iovec *iov, unsigned int n)
{
	return do_send(l, iov, n, true);
}

int link_send_request(struct link *l, const struct iovec *iov, unsigned int n)
{
	return do_send(l, iov, n, false);
}

void link_close_sends(struct link *l)
{
	pthread_mutex_lock(&l->send_lock);
	l->sends_closed = true;
	pthread_mutex_unlock(&l->send_lock);
}

/* send_locked() - link_send() under l->send_lock. */
static int send_locked(struct link *l, const struct iovec *iov,
		       unsigned int n, bool reply)
{
	bool reader = link_is_reader(l);
	uint64_t deadline = now_ns() + (uint64_t)l->stall_ms * 1000000;
	struct iovec v[4];
	struct msghdr mh = { .msg_iov = v };
	size_t total = 0;

	if (n > ARRAY_SIZE(v))
		return VIOMMU_LINK_END_IO;
	for (unsigned int i = 0; i < n; i++) {
		v[i] = iov[i];
		total += iov[i].iov_len;
	}
	mh.msg_iovlen = n;
	/* Counted first: the peer may look at the counters once it has it.
	 * The server's own requests are counted by their sender. */
	if (reply)
		ATOMIC_INC(l->st.replies);
	ATOMIC_ADD(l->st.bytes_out, (uint64_t)total);
	while (mh.msg_iovlen) {
		ssize_t sent = sendmsg(l->sock, &mh, MSG_DONTWAIT |
				       MSG_NOSIGNAL);
		int err;

		if (sent >= 0) {
			size_t left = (size_t)sent;

			while (mh.msg_iovlen && left >= mh.msg_iov->iov_len) {
				left -= mh.msg_iov->iov_len;
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
			if (mh.msg_iovlen) {
				mh.msg_iov->iov_base =
					(uint8_t *)mh.msg_iov->iov_base + left;
				mh.msg_iov->iov_len -= left;
			}
			continue;
		}
		if (errno == EPIPE || errno == ECONNRESET)
			return VIOMMU_LINK_END_HANGUP;
		if (errno != EAGAIN && errno != EINTR)
			goto io_error;
		err = reader ? wait_fd(l, l->sock, POLLOUT) :
			       wait_out(l, deadline);
		if (err == -ECANCELED)
			return VIOMMU_LINK_END_STOPPED;
		if (err) {
			errno = -err;
			goto io_error;
		}
	}
	return 0;

io_error:
	log_warn(&l->srv->log, "%s %s: send: %s", l->proto->name, l->name,
		 strerror(errno));
	return VIOMMU_LINK_END_IO;
}

int link_apply_ram(struct link *l, const struct viommu_mem_region *regions,
		   unsigned int n)
{
	struct viommu_mem_layout lay = { .size = sizeof(lay),
					 .regions = regions, .n = n };

	return link_apply_layout(l, &lay);
}

int link_apply_layout(struct link *l, const struct viommu_mem_layout *lay)
{
	struct viommu_link_server *s = l->srv;
	unsigned int n = lay->n + lay->nio;
	int err = 1;

	if (l->own_mem) {
		err = viommu_mem_set_layout(l->mem, lay);
		if (!err)
			ATOMIC_INC(l->st.ram_applied);
		return err;
	}
	pthread_mutex_lock(&s->ram_lock);
	if (s->ram_owner < 0 && n == 0) {
		/* Removing nothing from nothing claims no ownership. */
		ATOMIC_INC(l->st.ram_ignored);
	} else if (s->ram_owner < 0 || s->ram_owner == (int)l->id) {
		err = viommu_mem_set_layout(l->mem, lay);
		if (!err) {
			if (s->ram_owner < 0)
				log_info(&s->log, "%s %s: owns guest RAM now",
					 l->proto->name, l->name);
			s->ram_owner = (int)l->id;
			ATOMIC_INC(l->st.ram_applied);
		}
	} else {
		ATOMIC_INC(l->st.ram_ignored);
	}
	pthread_mutex_unlock(&s->ram_lock);
	return err;
}

/* ---- link life -------------------------------------------------------- */

static struct poll_link *as_poll(struct link *l)
{
	return (struct poll_link *)l;
}

/* drop_listener() - close the listening socket and remove its path. */
static void drop_listener(struct link *l)
{
	link_close_fd(&l->listen_fd);
	if (l->path) {
		unlink(l->path);
		xfree(&l->srv->alloc, l->path);
		l->path = NULL;
	}
}

/* watch() - poll mode: make @fd part of the link's poll fd. */
static int watch(struct link *l, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	if (!l->poll_mode || fd < 0)
		return 0;
	return epoll_ctl(as_poll(l)->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ?
	       -errno : 0;
}

void link_set_event_fd(struct link *l, int fd)
{
	if (l->poll_mode && l->event_fd >= 0)
		epoll_ctl(as_poll(l)->epoll_fd, EPOLL_CTL_DEL, l->event_fd,
			  NULL);
	link_close_fd(&l->event_fd);
	l->event_fd = fd;
	if (fd >= 0 && watch(l, fd))
		log_warn(&l->srv->log, "%s %s: epoll: %s", l->proto->name,
			 l->name, strerror(errno));
}

/*
 * peer_uid_ok() - with check_uid: whether connected socket @fd's peer
 * (SO_PEERCRED) is the expected user; refusals are logged at a falling
 * rate (a local user may connect as often as it likes).
 */
static bool peer_uid_ok(struct link *l, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	uint32_t n;

	if (!l->check_uid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
	    len == sizeof(cr) && (uint32_t)cr.uid == l->peer_uid)
		return true;
	n = ++l->uid_refusals;
	rl_warn(&l->rl, &l->srv->log, "%s %s: connection refused: peer uid "
		"%ld, expected %u (%u refused so far)", l->proto->name,
		l->name, len == sizeof(cr) ? (long)cr.uid : -1L, l->peer_uid,
		n);
	return false;
}

/* take_peer() - accept one waiting peer.  0; -EAGAIN; or an end reason. */
static int take_peer(struct link *l)
{
	int fd = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno == EAGAIN || errno == EINTR ||
		    errno == ECONNABORTED)
			return -EAGAIN;
		log_warn(&l->srv->log, "%s %s: accept: %s", l->proto->name,
			 l->name, strerror(errno));
		return VIOMMU_LINK_END_IO;
	}
	if (!peer_uid_ok(l, fd)) {
		close(fd); /* not our user: go on listening */
		return -EAGAIN;
	}
	l->sock = fd;
	drop_listener(l);
	if (watch(l, fd)) {
		log_warn(&l->srv->log, "%s %s: epoll: %s", l->proto->name,
			 l->name, strerror(errno));
		return VIOMMU_LINK_END_IO;
	}
	STORE_RELEASE(l->st.connected, true);
	log_info(&l->srv->log, "%s %s: peer connected", l->proto->name,
		 l->name);
	return 0;
}

/* accept_peer() - thread mode: wait for the peer.  0 or an end reason. */
static int accept_peer(struct link *l)
{
	for (;;) {
		int err = wait_fd(l, l->listen_fd, POLLIN);

		if (err == -ECANCELED)
			return VIOMMU_LINK_END_STOPPED;
		if (err)
			return VIOMMU_LINK_END_IO;
		err = take_peer(l);
		if (err != -EAGAIN)
			return err;
	}
}

/*
 * link_end() - close what the link holds, give up guest-RAM ownership,
 * publish the end reason and tell the server's owner.  Once per link.
 */
static void link_end(struct link *l, int why)
{
	struct viommu_link_server *s = l->srv;

	pthread_mutex_lock(&s->lock);
	if (l->ended) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	l->ended = true;
	pthread_mutex_unlock(&s->lock);
	link_close_rx_fds(l);
	if (l->proto->peer_gone)
		l->proto->peer_gone(l);
	link_close_sends(l); /* no thread sends on the socket past here */
	link_close_fd(&l->sock);
	drop_listener(l);
	pthread_mutex_lock(&s->ram_lock);
	if (s->ram_owner == (int)l->id)
		s->ram_owner = -1;
	pthread_mutex_unlock(&s->ram_lock);
	if (why == VIOMMU_LINK_END_HANGUP)
		log_info(&s->log, "%s %s: peer hung up", l->proto->name,
			 l->name);
	STORE_RELEASE(l->st.end, why);
	trace_link_end(l->tr, l->id, why);
	if (s->link_ended)
		s->link_ended(s->opaque, l->id, why);
}

/* pending() - whether the protocol holds messages to serve. */
static bool pending(struct link *l)
{
	return l->proto->pending && l->proto->pending(l);
}

/* serve_one() - one message (the socket is readable).  0 or end reason. */
static int serve_one(struct link *l)
{
	int why;

	l->deadline_ns = now_ns() + (uint64_t)l->stall_ms * 1000000;
	why = l->proto->serve(l);

	link_close_rx_fds(l);
	return why;
}

static void *link_thread(void *arg)
{
	struct link *l = arg;
	int why = 0;

	__atomic_store_n(&l->reader_tid, my_tid(), __ATOMIC_RELAXED);
	if (l->listen_fd >= 0)
		why = accept_peer(l);
	else
		STORE_RELEASE(l->st.connected, true);
	while (!why) {
		int err;

		if (!pending(l))
			err = wait_fd(l, l->sock, POLLIN);
		else /* held messages first; a stop still wins */
			err = link_fd_ready(l->srv->stop_fd, POLLIN) ?
			      -ECANCELED : 0;
		if (err == -ECANCELED)
			why = VIOMMU_LINK_END_STOPPED;
		else if (err)
			why = VIOMMU_LINK_END_IO;
		else
			why = serve_one(l);
	}
	link_end(l, why);
	__atomic_store_n(&l->reader_tid, 0, __ATOMIC_RELAXED);
	return NULL;
}

/* ---- server ----------------------------------------------------------- */

/* size_ok() - a caller's struct of @size bytes, of which we know @known. */
static bool size_ok(const void *p, uint32_t size, size_t known)
{
	for (size_t i = known; i < size; i++)
		if (((const uint8_t *)p)[i])
			return false;
	return true;
}

/*
 * The size of struct viommu_link_server_config as the first release had
 * it: what a @size of 0 means (never today's sizeof, which grows).
 */
#define SERVER_CONFIG_SIZE_V1 \
	(offsetof(struct viommu_link_server_config, poll_us) + \
	 sizeof(unsigned int))

int viommu_link_server_create(const struct viommu_link_server_config *user,
			      struct viommu_link_server **out)
{
	struct viommu_link_server_config c, *cfg = &c;
	struct viommu_link_server *s;

	if (!user || !out || !size_ok(user, user->size, sizeof(c)))
		return -EINVAL;
	/* An older caller's struct is shorter: what it lacks stays 0. */
	memset(&c, 0, sizeof(c));
	memcpy(&c, user, user->size ? MIN(user->size, sizeof(c)) :
				      SERVER_CONFIG_SIZE_V1);
	if (!cfg->mem)
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
	s->ram_owner = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->stop_lock, NULL);
	pthread_mutex_init(&s->ram_lock, NULL);
	*out = s;
	return 0;
}

/* check_socket() - @fd must be a UNIX stream socket. */
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

/*
 * listen_path() - bind and listen on @path for link @l, the socket file
 * given @mode (0: 0600) before listen(): nobody can connect to a socket
 * that does not listen yet, so no one connects through wider permissions.
 */
static int listen_path(struct link *l, const char *path, uint32_t mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len + 1);
	l->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
			      SOCK_NONBLOCK, 0);
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
	if (chmod(path, mode ? (mode_t)mode : 0600) < 0 ||
	    listen(l->listen_fd, 1) < 0)
		return -errno;
	return 0;
}

/* link_free() - release a link that is not (or no longer) running. */
static void link_free(struct link *l)
{
	struct viommu_link_server *s = l->srv;

	link_close_rx_fds(l);
	if (l->ps)
		l->proto->fini(l);
	link_close_fd(&l->sock);
	drop_listener(l);
	if (l->poll_mode)
		link_close_fd(&as_poll(l)->epoll_fd);
	link_close_fd(&l->more_fd);
	pthread_mutex_destroy(&l->send_lock);
	xfree(&s->alloc, as_poll(l));
}

/* open_link() - the link's socket (or listener) and poll fd. */
static int open_link(struct link *l, const struct viommu_link_config *lc)
{
	int err;

	if (l->poll_mode) {
		as_poll(l)->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
		if (as_poll(l)->epoll_fd < 0)
			return -errno;
		l->more_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (l->more_fd < 0)
			return -errno;
		err = watch(l, l->more_fd);
		if (err)
			return err;
	}
	err = lc->fd >= 0 ? check_socket(lc->fd) :
			    listen_path(l, lc->path, lc->path_mode);
	if (!err && lc->fd >= 0 && !peer_uid_ok(l, lc->fd))
		err = -EACCES;
	if (!err)
		err = watch(l, lc->fd >= 0 ? l->sock : l->listen_fd);
	return err;
}

/*
 * link_new() - allocate link @id for @lc, open its socket and set up its
 * protocol.  Takes ownership of lc->fd.  Return: 0; -errno.
 */
static int link_new(struct viommu_link_server *s,
		    const struct viommu_link_config *lc, unsigned int id,
		    struct link **out)
{
	struct poll_link *pl = xzalloc(&s->alloc, sizeof(*pl));
	struct link *l = &pl->l;
	int err;

	if (!pl) {
		if (lc->fd >= 0)
			close(lc->fd);
		return -ENOMEM;
	}
	pl->epoll_fd = -1;
	l->more_fd = -1;
	pthread_mutex_init(&l->send_lock, NULL);
	l->srv = s;
	l->tr = &s->tr;
	l->proto = proto_of(lc->proto);
	l->id = id;
	l->func = (struct pci_func *)lc->func;
	l->mem = lc->mem ? lc->mem : s->mem;
	l->own_mem = lc->mem != NULL;
	l->domain = lc->domain;
	l->trust_fds = lc->trust_peer_fds;
	l->check_uid = lc->check_peer_uid;
	l->peer_uid = lc->peer_uid;
	l->sock = lc->fd;
	l->listen_fd = l->event_fd = -1;
	l->poll_mode = lc->poll_mode;
	l->stall_ms = lc->peer_timeout_ms ? lc->peer_timeout_ms : LINK_STALL_MS;
	if (lc->name)
		snprintf(l->name, sizeof(l->name), "%s", lc->name);
	else
		snprintf(l->name, sizeof(l->name), "link%u", id);
	err = open_link(l, lc);
	if (!err)
		err = l->proto->init(l);
	if (!err)
		err = watch(l, l->event_fd);
	if (err) {
		link_free(l);
		return err;
	}
	*out = l;
	return 0;
}

/* admit() - whether link @lc may be added now.  s->lock held. */
static int admit(struct viommu_link_server *s,
		 const struct viommu_link_config *lc)
{
	if (s->stopped)
		return -ESHUTDOWN;
	if (s->nlinks >= VIOMMU_LINK_MAX)
		return -ENOSPC;
	for (unsigned int i = 0; i < s->nlinks; i++)
		if (s->links[i]->func == (struct pci_func *)lc->func)
			return -EBUSY;
	return 0;
}

/* check_config() - the fields of @lc (size rule of link.h). */
static int check_config(const struct viommu_link_config *lc)
{
	if (!lc->func ||
	    (lc->fd < 0 && (!lc->path || !*lc->path)) ||
	    (lc->domain && (!lc->mem || lc->proto != VIOMMU_LINK_VFIO_USER)) ||
	    (lc->path_mode & ~0777u) ||
	    lc->peer_timeout_ms > LINK_STALL_MS_MAX)
		return -EINVAL;
	return proto_of(lc->proto) ? 0 : -EPROTONOSUPPORT;
}

/*
 * The size of struct viommu_link_config as the first release had it (no
 * @domain): what a @size of 0 means.
 */
#define LINK_CONFIG_SIZE_V1 offsetof(struct viommu_link_config, domain)

/*
 * normalize() - @lc as this library knows it: the caller's first @size
 * bytes (an older caller knows fewer fields: the rest stays 0).
 */
static void normalize(const struct viommu_link_config *lc,
		      struct viommu_link_config *out)
{
	size_t n = lc->size ? MIN(lc->size, sizeof(*out)) : LINK_CONFIG_SIZE_V1;

	memset(out, 0, sizeof(*out));
	memcpy(out, lc, n);
}

int viommu_link_server_add(struct viommu_link_server *s,
			   const struct viommu_link_config *user,
			   unsigned int *id)
{
	struct viommu_link_config c, *lc = &c;
	struct link *l = NULL;
	int err;

	if (!s || !user || !id) {
		if (user && user->fd >= 0)
			close(user->fd);
		return -EINVAL;
	}
	normalize(user, &c);
	err = size_ok(user, user->size, sizeof(c)) ? check_config(lc) :
						     -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (!err)
		err = admit(s, lc);
	if (err) {
		if (lc->fd >= 0)
			close(lc->fd);
		goto out;
	}
	err = link_new(s, lc, s->nlinks, &l);
	if (err)
		goto out;
	if (!l->poll_mode) {
		err = -pthread_create(&l->thread, NULL, link_thread, l);
		if (err) {
			link_free(l);
			goto out;
		}
		l->thread_live = true;
	}
	*id = l->id;
	s->links[s->nlinks++] = l;
out:
	pthread_mutex_unlock(&s->lock);
	return err;
}

/* get_link() - link @id or NULL. */
static struct link *get_link(struct viommu_link_server *s, unsigned int id)
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

int viommu_link_server_poll_fd(struct viommu_link_server *s, unsigned int id)
{
	struct link *l = get_link(s, id);

	if (!l || !l->poll_mode)
		return -EINVAL;
	return as_poll(l)->epoll_fd;
}

/* run_poll() - serve what is there.  0 or an end reason. */
static int run_poll(struct link *l)
{
	int why = 0;

	if (LOAD_ACQUIRE(l->srv->stopped))
		return VIOMMU_LINK_END_STOPPED;
	if (link_fd_ready(l->event_fd, POLLIN))
		serve_event(l);
	if (l->listen_fd >= 0) {
		why = take_peer(l);
		if (why == -EAGAIN)
			return 0;
		if (why)
			return why;
	} else {
		/* a link given its socket: connected, as link_thread() says */
		STORE_RELEASE(l->st.connected, true);
	}
	/*
	 * At most LINK_RUN_BATCH messages per call, and none once stopping:
	 * a peer that floods the socket cannot hold the embedder's loop (the
	 * poll fd stays readable, so the loop comes back).
	 */
	for (unsigned int n = 0; !why && n < LINK_RUN_BATCH &&
	     (pending(l) || link_fd_ready(l->sock, POLLIN)); n++) {
		if (LOAD_ACQUIRE(l->srv->stopped))
			return VIOMMU_LINK_END_STOPPED;
		why = serve_one(l);
	}
	/* held messages left: keep the poll fd readable for the next call */
	if (!why && pending(l))
		link_signal(l->more_fd);
	return why;
}

int viommu_link_server_run_once(struct viommu_link_server *s,
				unsigned int id)
{
	struct link *l = get_link(s, id);
	int why;

	if (!l || !l->poll_mode)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (l->ended || as_poll(l)->busy) {
		why = l->ended ? LOAD_ACQUIRE(l->st.end) : -EBUSY;
		pthread_mutex_unlock(&s->lock);
		return why;
	}
	as_poll(l)->busy = true;
	pthread_mutex_unlock(&s->lock);
	if (l->more_fd >= 0) {
		uint64_t v;

		link_eventfd_read(l->more_fd, &v);
	}
	__atomic_store_n(&l->reader_tid, my_tid(), __ATOMIC_RELAXED);
	why = run_poll(l);
	if (why)
		link_end(l, why);
	__atomic_store_n(&l->reader_tid, 0, __ATOMIC_RELAXED);
	pthread_mutex_lock(&s->lock);
	as_poll(l)->busy = false;
	pthread_mutex_unlock(&s->lock);
	return why ? LOAD_ACQUIRE(l->st.end) : 0;
}

void viommu_link_server_stop(struct viommu_link_server *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	pthread_mutex_lock(&s->stop_lock);
	pthread_mutex_lock(&s->lock);
	STORE_RELEASE(s->stopped, true);
	pthread_mutex_unlock(&s->lock);
	if (write(s->stop_fd, &one, sizeof(one)) < 0) {
		/* the counter is already non-zero: stop was signalled */
	}
	for (unsigned int i = 0; i < VIOMMU_LINK_MAX; i++) {
		struct link *l = get_link(s, i);
		bool idle;

		if (!l)
			break;
		/*
		 * An idle poll-mode link is ended here; holding its busy flag
		 * meanwhile keeps a run_once() from starting on it (-EBUSY).
		 */
		pthread_mutex_lock(&s->lock);
		idle = l->poll_mode && !as_poll(l)->busy;
		if (idle)
			as_poll(l)->busy = true;
		pthread_mutex_unlock(&s->lock);
		if (idle) {
			link_end(l, VIOMMU_LINK_END_STOPPED);
			pthread_mutex_lock(&s->lock);
			as_poll(l)->busy = false;
			pthread_mutex_unlock(&s->lock);
		}
		if (l->thread_live) {
			pthread_join(l->thread, NULL);
			l->thread_live = false;
		}
	}
	pthread_mutex_unlock(&s->stop_lock);
}

void viommu_link_server_destroy(struct viommu_link_server *s)
{
	if (!s)
		return;
	viommu_link_server_stop(s);
	for (unsigned int i = 0; i < s->nlinks; i++)
		link_free(s->links[i]);
	close(s->stop_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->stop_lock);
	pthread_mutex_destroy(&s->ram_lock);
	xfree(&s->alloc, s);
}

unsigned int viommu_link_server_num_links(struct viommu_link_server *s)
{
	unsigned int n;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	n = s->nlinks;
	pthread_mutex_unlock(&s->lock);
	return n;
}

unsigned int viommu_link_server_open_links(struct viommu_link_server *s)
{
	unsigned int i, n = 0, total = viommu_link_server_num_links(s);

	for (i = 0; i < total; i++) {
		struct link *l = get_link(s, i);

		if (l && LOAD_ACQUIRE(l->st.end) == VIOMMU_LINK_OPEN)
			n++;
	}
	return n;
}

int viommu_link_server_stats(struct viommu_link_server *s, unsigned int id,
			     struct viommu_link_stats *out, size_t size)
{
	struct link *l = get_link(s, id);
	struct viommu_link_stats st;

	if (!l || !out || size == 0)
		return -EINVAL;
	memset(&st, 0, sizeof(st));
	for (unsigned int i = 0; i < VIOMMU_LINK_MAX_CMDS; i++)
		st.msgs[i] = READ_ONCE(l->st.msgs[i]);
	st.bytes_in = READ_ONCE(l->st.bytes_in);
	st.bytes_out = READ_ONCE(l->st.bytes_out);
	st.fds_in = READ_ONCE(l->st.fds_in);
	st.replies = READ_ONCE(l->st.replies);
	st.errors = READ_ONCE(l->st.errors);
	st.irq_signals = READ_ONCE(l->st.irq_signals);
	st.unmasks = READ_ONCE(l->st.unmasks);
	st.ram_applied = READ_ONCE(l->st.ram_applied);
	st.ram_ignored = READ_ONCE(l->st.ram_ignored);
	st.connected = LOAD_ACQUIRE(l->st.connected);
	st.end = LOAD_ACQUIRE(l->st.end);
	st.dma_requests = READ_ONCE(l->st.dma_requests);
	st.dma_failed = READ_ONCE(l->st.dma_failed);
	/* never write past what the caller has; what we lack reads as 0 */
	sized_out(out, size, &st, sizeof(st));
	return 0;
}

int viommu_link_server_set_trace_sink(struct viommu_link_server *s,
				      const struct viommu_trace_sink *sink)
{
	int err;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	err = trace_set(&s->tr, &s->log, sink);
	pthread_mutex_unlock(&s->lock);
	return err;
}

const char *viommu_link_server_name(struct viommu_link_server *s,
				    unsigned int id)
{
	struct link *l = get_link(s, id);

	return l ? l->name : NULL;
}
