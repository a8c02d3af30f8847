/*
 * net_socket.c - the socket backend of net_backend.h: one NIC talks to a
 * peer over a connected socket, in the framing of QEMU's -netdev stream
 * (each frame preceded by its length, 4 bytes big-endian) or -netdev
 * dgram (one frame per datagram).  Rules K1-K4 of docs/VIRTIO-NET.md.
 *
 * Concept: the framing carries no virtio_net_hdr, so the NIC offers no
 * checksum or segmentation offload on this backend (virtio_net.c) and
 * frames cross as plain Ethernet.  An I/O thread owns the socket (a
 * non-blocking copy of the caller's descriptor): it reads frames and
 * appends them to the port's receive queue (bounded; full or link down:
 * dropped and counted, K2), and writes the frames the NIC sent, which
 * wait in a bounded output queue (full: dropped and counted, K3) so the
 * NIC's transmit path never blocks on the peer.  A stream length outside
 * 14..64 KiB + 256, or a datagram shorter than 14 bytes, is bad framing
 * (K1): a bad datagram is dropped; a bad stream length ends reading from
 * that stream (the framing is lost), with one log line.
 *
 * Locks: s->mu protects both queues and nests inside the NIC's device
 * lock (net_backend.h); the I/O thread calls rx_ready() with it held.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"
#include "devices/net_backend.h"

struct net_sock {
	struct net_port port;        /* must stay first: port.be == this */
	struct viommu_allocator alloc;
	struct viommu_log log;
	pthread_mutex_t mu;
	pthread_t th;
	bool started;
	int fd, efd;
	bool stream;
	uint32_t depth;
	bool stopping;               /* mu */
	/* output queue (mu) */
	struct net_frame *out_head, *out_tail;
	uint32_t out_count;
	/* I/O thread only */
	uint32_t out_off;            /* bytes of the head frame written */
	uint8_t lenbuf[4];
	uint32_t len_got;
	struct net_frame *partial;   /* stream frame being read */
	uint32_t part_got;
	bool rd_dead;                /* peer closed, error or bad framing */
	uint8_t *dgram;              /* NET_MAX_FRAME + 1 */
	/* counters (mu) */
	uint64_t rx_drops, tx_drops;
};

static struct net_sock *sock_of(struct net_port *p)
{
	return p->be;
}

/* __deliver() - a frame for the NIC (K2).  mu held; takes @f. */
static void __deliver(struct net_sock *s, struct net_frame *f)
{
	struct net_port *p = &s->port;

	if (!p->up || p->count >= s->depth) {
		s->rx_drops++;
		xfree(&s->alloc, f);
		return;
	}
	f->next = NULL;
	memset(&f->hdr, 0, sizeof(f->hdr));
	if (p->tail)
		p->tail->next = f;
	else
		p->head = f;
	p->tail = f;
	p->count++;
	p->rx_ready(p->opaque);
}

/* read_dead() - stop reading, one log line. */
static void read_dead(struct net_sock *s, const char *why)
{
	if (!s->rd_dead)
		log_warn(&s->log, "virtio-net socket backend: stop reading: "
			 "%s", why);
	s->rd_dead = true;
}

/* read_stream() - read what the stream has; deliver whole frames. */
static void read_stream(struct net_sock *s)
{
	for (int rounds = 0; rounds < 64 && !s->rd_dead; rounds++) {
		ssize_t n;

		if (!s->partial) {
			uint32_t len;

			n = read(s->fd, s->lenbuf + s->len_got,
				 4 - s->len_got);
			if (n <= 0)
				goto end;
			s->len_got += (uint32_t)n;
			if (s->len_got < 4)
				continue;
			s->len_got = 0;
			memcpy(&len, s->lenbuf, 4);
			len = ntohl(len);
			if (len < NET_ETH_HLEN || len > NET_MAX_FRAME) {
				pthread_mutex_lock(&s->mu);
				s->rx_drops++;
				pthread_mutex_unlock(&s->mu);
				read_dead(s, "frame length outside 14..65792 "
					  "(K1)");
				return;
			}
			s->partial = xalloc(&s->alloc,
					    sizeof(*s->partial) + len);
			if (!s->partial) {
				read_dead(s, "out of memory");
				return;
			}
			s->partial->len = len;
			s->part_got = 0;
		}
		n = read(s->fd, s->partial->data + s->part_got,
			 s->partial->len - s->part_got);
		if (n <= 0)
			goto end;
		s->part_got += (uint32_t)n;
		if (s->part_got == s->partial->len) {
			pthread_mutex_lock(&s->mu);
			__deliver(s, s->partial);
			pthread_mutex_unlock(&s->mu);
			s->partial = NULL;
		}
		continue;
end:
		if (n == 0)
			read_dead(s, "peer closed the stream");
		else if (errno != EAGAIN && errno != EINTR)
			read_dead(s, strerror(errno));
		return;
	}
}

/* read_dgram() - read up to 64 datagrams, one frame each. */
static void read_dgram(struct net_sock *s)
{
	for (int rounds = 0; rounds < 64 && !s->rd_dead; rounds++) {
		ssize_t n = recv(s->fd, s->dgram, NET_MAX_FRAME + 1, 0);
		struct net_frame *f;

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				read_dead(s, strerror(errno));
			return;
		}
		pthread_mutex_lock(&s->mu);
		if (n < (ssize_t)NET_ETH_HLEN || n > (ssize_t)NET_MAX_FRAME ||
		    !(f = xalloc(&s->alloc, sizeof(*f) + (size_t)n))) {
			s->rx_drops++; /* K1 */
		} else {
			f->len = (uint32_t)n;
			memcpy(f->data, s->dgram, (size_t)n);
			__deliver(s, f);
		}
		pthread_mutex_unlock(&s->mu);
	}
}

/* write_out() - write queued frames until the socket would block. */
static void write_out(struct net_sock *s)
{
	for (;;) {
		struct net_frame *f;
		ssize_t n;

		pthread_mutex_lock(&s->mu);
		f = s->out_head;
		pthread_mutex_unlock(&s->mu);
		if (!f)
			return;
		if (s->stream) {
			uint32_t be = htonl(f->len);
			uint8_t hdr[4];
			struct iovec v[2];
			int nv = 0;

			memcpy(hdr, &be, 4);
			if (s->out_off < 4)
				v[nv++] = (struct iovec){ hdr + s->out_off,
							  4 - s->out_off };
			v[nv] = (struct iovec){
				f->data + (s->out_off > 4 ? s->out_off - 4 : 0),
				f->len - (s->out_off > 4 ? s->out_off - 4 : 0) };
			nv++;
			n = sendmsg(s->fd, &(struct msghdr){ .msg_iov = v,
							     .msg_iovlen =
							     (size_t)nv },
				    MSG_NOSIGNAL);
			if (n == 0 ||
			    (n < 0 && (errno == EAGAIN || errno == EINTR)))
				return;
			if (n > 0) {
				s->out_off += (uint32_t)n;
				if (s->out_off < 4 + f->len)
					continue;
			}
		} else {
			n = send(s->fd, f->data, f->len, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
		}
		pthread_mutex_lock(&s->mu);
		if (n < 0)
			s->tx_drops++; /* K3: the peer is gone or refused */
		s->out_head = f->next;
		if (!s->out_head)
			s->out_tail = NULL;
		s->out_count--;
		pthread_mutex_unlock(&s->mu);
		s->out_off = 0;
		xfree(&s->alloc, f);
	}
}

static void *io_main(void *arg)
{
	struct net_sock *s = arg;

	for (;;) {
		struct pollfd pf[2] = { { .fd = s->efd, .events = POLLIN },
					{ .fd = s->fd } };
		uint64_t v;
		bool stop;

		pthread_mutex_lock(&s->mu);
		stop = s->stopping;
		if (s->out_head)
			pf[1].events |= POLLOUT;
		pthread_mutex_unlock(&s->mu);
		if (stop)
			break;
		if (!s->rd_dead)
			pf[1].events |= POLLIN;
		if (!pf[1].events)
			pf[1].fd = -1; /* a hung-up socket would spin poll */
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[0].revents & POLLIN)
			(void)!read(s->efd, &v, sizeof(v));
		if (pf[1].revents & (POLLIN | POLLHUP | POLLERR) &&
		    !s->rd_dead) {
			if (s->stream)
				read_stream(s);
			else
				read_dgram(s);
		}
		if (pf[1].revents & (POLLOUT | POLLERR | POLLHUP) ||
		    (pf[0].revents & POLLIN))
			write_out(s);
	}
	return NULL;
}

/* kick() - wake the I/O thread. */
static void kick(struct net_sock *s)
{
	uint64_t one = 1;

	(void)!write(s->efd, &one, sizeof(one));
}

static void free_queue(struct net_sock *s, struct net_frame *f)
{
	while (f) {
		struct net_frame *n = f->next;

		xfree(&s->alloc, f);
		f = n;
	}
}

static void sock_free(struct net_sock *s)
{
	struct viommu_allocator alloc = s->alloc;

	free_queue(s, s->port.head);
	free_queue(s, s->out_head);
	xfree(&alloc, s->partial);
	xfree(&alloc, s->dgram);
	if (s->fd >= 0)
		close(s->fd);
	if (s->efd >= 0)
		close(s->efd);
	pthread_mutex_destroy(&s->mu);
	xfree(&alloc, s);
}

int net_socket_open(int fd, bool stream, uint32_t depth,
		    const struct viommu_log *log, void **out)
{
	struct viommu_allocator alloc = { 0 };
	struct net_sock *s;
	int err;

	if (fd < 0)
		return -EBADF;
	s = xzalloc(&alloc, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->alloc = alloc;
	s->log = *log;
	s->stream = stream;
	s->depth = depth;
	s->efd = -1;
	s->port.be = s;
	s->port.up = true;
	if (pthread_mutex_init(&s->mu, NULL)) {
		xfree(&alloc, s);
		return -ENOMEM;
	}
	s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (s->fd < 0) {
		err = -errno;
		goto fail;
	}
	if (fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    (s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		err = -errno;
		goto fail;
	}
	if (!stream && !(s->dgram = xalloc(&alloc, NET_MAX_FRAME + 1))) {
		err = -ENOMEM;
		goto fail;
	}
	*out = s;
	return 0;
fail:
	sock_free(s);
	return err;
}

static int sk_join(void *be, const uint8_t mac[6],
		   void (*rx_ready)(void *opaque), void *opaque,
		   struct net_port **out)
{
	struct net_sock *s = be;
	int err;

	s->port.rx_ready = rx_ready;
	s->port.opaque = opaque;
	err = -pthread_create(&s->th, NULL, io_main, s);
	if (err)
		return err;
	s->started = true;
	*out = &s->port;
	return 0;
}

static void sk_leave(struct net_port *p)
{
	struct net_sock *s = sock_of(p);

	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_mutex_unlock(&s->mu);
	kick(s);
	if (s->started)
		pthread_join(s->th, NULL);
	sock_free(s);
}

static void sk_send(struct net_port *p, const struct net_hdr *h,
		    const uint8_t *frame, uint32_t len)
{
	struct net_sock *s = sock_of(p);
	struct net_frame *f;

	pthread_mutex_lock(&s->mu);
	if (s->out_count >= s->depth || len > NET_MAX_FRAME ||
	    !(f = xalloc(&s->alloc, sizeof(*f) + len))) {
		s->tx_drops++; /* K3 */
		pthread_mutex_unlock(&s->mu);
		return;
	}
	f->next = NULL;
	f->len = len;
	memcpy(f->data, frame, len);
	if (s->out_tail)
		s->out_tail->next = f;
	else
		s->out_head = f;
	s->out_tail = f;
	s->out_count++;
	pthread_mutex_unlock(&s->mu);
	kick(s);
}

static struct net_frame *sk_peek(struct net_port *p)
{
	struct net_sock *s = sock_of(p);
	struct net_frame *f;

	pthread_mutex_lock(&s->mu);
	f = p->head;
	pthread_mutex_unlock(&s->mu);
	return f;
}

static void sk_consume(struct net_port *p)
{
	struct net_sock *s = sock_of(p);
	struct net_frame *f;

	pthread_mutex_lock(&s->mu);
	f = p->head;
	if (f) {
		p->head = f->next;
		if (!p->head)
			p->tail = NULL;
		p->count--;
	}
	pthread_mutex_unlock(&s->mu);
	xfree(&s->alloc, f);
}

static void sk_flush(struct net_port *p)
{
	struct net_sock *s = sock_of(p);
	struct net_frame *f;

	pthread_mutex_lock(&s->mu);
	f = p->head;
	p->head = p->tail = NULL;
	p->count = 0;
	pthread_mutex_unlock(&s->mu);
	free_queue(s, f);
}

static void sk_set_up(struct net_port *p, bool up)
{
	struct net_sock *s = sock_of(p);

	pthread_mutex_lock(&s->mu);
	p->up = up;
	pthread_mutex_unlock(&s->mu);
}

static void sk_drops(struct net_port *p, uint64_t *rx, uint64_t *tx)
{
	struct net_sock *s = sock_of(p);

	pthread_mutex_lock(&s->mu);
	*rx = s->rx_drops;
	*tx = s->tx_drops;
	pthread_mutex_unlock(&s->mu);
}

const struct net_backend_ops net_socket_ops = {
	.join = sk_join,
	.leave = sk_leave,
	.send = sk_send,
	.peek = sk_peek,
	.consume = sk_consume,
	.flush = sk_flush,
	.set_up = sk_set_up,
	.drops = sk_drops,
};
