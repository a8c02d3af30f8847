/*
 * link.h - the link server's inside: what a protocol (src/link/vfio_user.c)
 * sees of a link, and the socket helpers every protocol shares.
 *
 * A link server (link.c, public API in include/viommu/link.h) owns a table
 * of links.  A link is one connection to one peer serving one PCI
 * function (src/transport/pci.h); its protocol is a struct link_proto, an
 * ops table in the style of libvfio-user's transport ops: the server does
 * everything that is the same for every protocol (sockets, listening and
 * accepting, threads or the embedder's poll loop, stop and peer death,
 * guest-RAM ownership, counters) and calls the protocol to receive and
 * handle one message at a time.
 *
 * Waiting: every wait of a link polls its socket, the server's stop
 * eventfd (readable for good once written, so it ends a link even in the
 * middle of a message) and the protocol's event fd (l->event_fd, e.g. the
 * vfio-user INTx unmask eventfd), so neither a silent nor a flooding peer
 * can hold a link past a stop.  Sockets are used with MSG_DONTWAIT.
 *
 * Guest RAM: links built without a memory of their own share the server's
 * struct viommu_mem.  Every QEMU device sends the same memory map, so the
 * first link to apply one owns guest RAM; maps from the others are
 * validated and dropped (counted), which keeps a lagging link from
 * re-installing a stale map.  When the owner ends, the next link to apply
 * a map takes over.  A link given its own memory always applies.
 */
#ifndef VIOMMU_LINK_INTERNAL_H
#define VIOMMU_LINK_INTERNAL_H

#include <viommu/link.h>
#include <pthread.h>
#include <string.h>
#include <sys/uio.h>

#include "base/trace.h"
#include "transport/pci.h"

#define LINK_NAME_LEN 32
#define LINK_MAX_RX_FDS 16 /* fds one message may carry (more: closed) */
#define LINK_STALL_MS 500  /* default of l->stall_ms (peer_timeout_ms) */
#define LINK_STALL_MS_MAX 60000
#define LINK_RUN_BATCH 64  /* poll mode: messages served per run_once() */

struct link;

/*
 * struct link_proto - one protocol.
 * @name:      "vfio-user", ...
 * @cmd_name:  name of a command number ("?" for unknown).
 * @init:      set up the protocol's state (l->ps) and hook the function's
 *             interrupts; called once, before serving, under no lock.
 *             Return 0 or -errno.
 * @fini:      undo @init; the link no longer runs.
 * @serve:     receive and handle one message; called when the socket is
 *             readable.  Return 0 to go on or an enum viommu_link_end.
 * @event:     l->event_fd became readable.
 * @peer_gone: the link ended: drop what the peer gave (DMA maps, eventfds).
 * @pending:   whether messages received earlier wait to be served (serve()
 *             is then called without the socket being readable); may be
 *             NULL.
 */
struct link_proto {
	const char *name;
	const char *(*cmd_name)(unsigned int cmd);
	int (*init)(struct link *l);
	void (*fini)(struct link *l);
	int (*serve)(struct link *l);
	void (*event)(struct link *l);
	void (*peer_gone)(struct link *l);
	bool (*pending)(struct link *l);
};

extern const struct link_proto link_proto_vfio_user;
extern const struct link_proto link_proto_mpqemu;

/* Counters shared by every protocol (relaxed atomics). */
struct link_counters {
	uint64_t msgs[VIOMMU_LINK_MAX_CMDS];
	uint64_t bytes_in, bytes_out, fds_in, replies, errors;
	uint64_t irq_signals, unmasks;
	uint64_t ram_applied, ram_ignored;
	bool connected;
	int end;
	uint64_t dma_requests, dma_failed;
};

struct link {
	struct viommu_link_server *srv;
	const struct link_proto *proto;
	void *ps; /* the protocol's state */
	unsigned int id;
	char name[LINK_NAME_LEN];
	struct pci_func *func;
	struct viommu_mem *mem; /* guest RAM this link fills */
	bool own_mem;           /* mem is the link's alone */
	struct viommu_domain *domain; /* DMA windows are IOVAs of it, or NULL */
	bool trust_fds;         /* accept RAM files without F_SEAL_SHRINK */
	bool check_uid;         /* SO_PEERCRED must give peer_uid */
	uint32_t peer_uid;
	uint32_t uid_refusals;  /* connections refused for their uid */
	int sock;               /* connected socket, or -1 */
	int listen_fd;          /* path links until a peer connects, or -1 */
	char *path;             /* bound path to unlink, or NULL */
	int event_fd;           /* the protocol's extra fd, or -1 */
	bool poll_mode;         /* served by viommu_link_server_run_once() */
	uint32_t stall_ms;      /* peer_timeout_ms, or LINK_STALL_MS */
	uint64_t deadline_ns;   /* poll mode: the current message's deadline */
	uint64_t dma_deadline_ns; /* reader's waits while its own request
				   * waits for a reply (0: none) */
	uintptr_t reader_tid;   /* thread reading the socket now, or 0 */
	int more_fd;            /* poll mode: readable while pending() */
	pthread_mutex_t send_lock; /* serialises link_send() */
	bool sends_closed;      /* send_lock: the socket is going away */
	bool ended;
	bool thread_live;
	pthread_t thread;
	/* fds of the message being received */
	int rx_fds[LINK_MAX_RX_FDS];
	unsigned int rx_nfds;
	bool rx_fd_overflow;
	struct link_counters st;
	struct ratelimit rl;    /* log lines the peer can trigger */
	const struct trace *tr; /* the server's trace points */
};

/* link_get32() / link_get64() - a host-order field of a message. */
static inline uint32_t link_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t link_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* link_log() - the server's log. */
const struct viommu_log *link_log(const struct link *l);

/* link_alloc() - the server's allocator. */
const struct viommu_allocator *link_alloc(const struct link *l);

/*
 * link_recv_exact() - receive exactly @len bytes of the current message,
 * collecting fds in l->rx_fds; *@got counts the bytes received.
 * Return: 0; -EPIPE (EOF first); -ECANCELED (stopping); -errno.
 */
int link_recv_exact(struct link *l, void *buf, size_t len, size_t *got);

/*
 * link_recv_some() - one receive of up to @len bytes (@len > 0), waiting
 * as link_recv_exact() does until at least one byte is there; fds go to
 * l->rx_fds.  A stream receive may end inside a message or take bytes of
 * the next ones: the caller keeps what it did not use (mpqemu.c).
 * Return: 0 with *@got > 0; -EPIPE (EOF); -ECANCELED (stopping); -errno.
 */
int link_recv_some(struct link *l, void *buf, size_t len, size_t *got);

/* link_recv_end() - the enum viommu_link_end for a failed receive. */
int link_recv_end(struct link *l, int err, size_t got);

/*
 * link_send() - send the @n pieces of @iov as one message.  Any thread:
 * sends are serialised; a thread other than the reader waits at most
 * the link's stall_ms for room and never serves the event fd.
 * Return: 0, or the enum viommu_link_end that ends the link (for a thread
 * other than the reader: the link's thread notices it by itself).
 */
int link_send(struct link *l, const struct iovec *iov, unsigned int n);

/*
 * link_send_request() - as link_send(), for a request of the server's own
 * (vfio-user DMA_READ/DMA_WRITE): not counted as a reply.
 */
int link_send_request(struct link *l, const struct iovec *iov,
		      unsigned int n);

/*
 * link_is_reader() - whether the calling thread is the one serving the
 * link (the link thread, or run_once() in poll mode).
 */
bool link_is_reader(const struct link *l);

/*
 * link_close_sends() - no more link_send() on this link; returns once
 * none is running (bounded by the link's stall_ms).
 */
void link_close_sends(struct link *l);

/* link_close_rx_fds() - close the fds of the current message not taken. */
void link_close_rx_fds(struct link *l);

/* link_bad() - one "malformed message" log line; VIOMMU_LINK_END_PROTOCOL. */
int link_bad(struct link *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * link_apply_ram() - make @regions the guest RAM, if this link owns it
 * (or takes ownership now).  Return: 0 applied; 1 dropped (another link
 * owns guest RAM); or viommu_mem_set_regions()'s -errno.
 */
int link_apply_ram(struct link *l, const struct viommu_mem_region *regions,
		   unsigned int n);

/* link_apply_layout() - link_apply_ram() with I/O regions too. */
int link_apply_layout(struct link *l, const struct viommu_mem_layout *lay);

/* link_fd_ready() - whether @fd is ready for @events now (never blocks). */
bool link_fd_ready(int fd, short events);

/*
 * link_fd_shrinkable() - whether RAM file @fd could still be shrunk by the
 * peer (a regular file without F_SEAL_SHRINK) while this link does not
 * trust it: such an fd is refused (the memory layer would refuse it too).
 */
bool link_fd_shrinkable(const struct link *l, int fd);

/* link_mem_flags() - VIOMMU_MEM_F_* every RAM region of this link gets. */
uint32_t link_mem_flags(const struct link *l);

/* link_is_eventfd() - whether @fd is an eventfd (true when unknowable). */
bool link_is_eventfd(int fd);

/*
 * link_eventfd_read() - consume eventfd @fd without ever blocking (the peer
 * shares its file description and may clear O_NONBLOCK or drain it between
 * our poll and our read).  Return: 0; -EAGAIN (nothing to read); -EIO (not
 * eventfd-like: EOF or a short read); -errno.
 */
int link_eventfd_read(int fd, uint64_t *val);

/* link_signal() - write 1 to eventfd @fd if that cannot block. */
bool link_signal(int fd);

/*
 * link_set_event_fd() - make @fd (or -1) the protocol's event fd, closing
 * the previous one; the link owns it from now on.  Link thread only.
 */
void link_set_event_fd(struct link *l, int fd);

/* link_close_fd() - close *@fd if open and mark it closed. */
void link_close_fd(int *fd);

#endif /* VIOMMU_LINK_INTERNAL_H */
