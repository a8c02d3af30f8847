/*
 * link.h - serve emulated PCI functions to a VMM that runs them out of
 * process: the "doors" through which a real guest reaches viommu's
 * devices.
 *
 * A link server holds links; a link is one connection (a UNIX stream
 * socket) to one peer, serving one PCI function (struct viommu_pci_func,
 * obtained from a device model: viommu_virtio_pci_func(),
 * viommu_dma_engine_func()).  Every link speaks one protocol:
 *
 *   VIOMMU_LINK_VFIO_USER  the vfio-user protocol (QEMU docs/interop/
 *                          vfio-user.rst), as QEMU 10.1 and later speak it
 *                          with `-device vfio-user-pci`: the peer connects
 *                          to our socket, maps guest RAM with DMA_MAP
 *                          (fds), reaches configuration space and BARs
 *                          with REGION_READ/WRITE (writes posted), and
 *                          gets INTx and MSI-X through eventfds.
 *
 *   VIOMMU_LINK_MPQEMU     QEMU 7.2's x-pci-proxy-dev ("mpqemu", QEMU
 *                          hw/remote/): the peer's socket is handed to us
 *                          (@fd), guest RAM comes as SYNC_SYSMEM fds,
 *                          every access waits for our reply, INTx goes
 *                          through an irqfd pair (which QEMU delivers only
 *                          with KVM).  It has no error reply: a bad message
 *                          ends the link.  QEMU 10.1 and later crash
 *                          realizing x-pci-proxy-dev without KVM.
 *
 * Many links are served at once over one IOMMU state: links made without
 * a memory of their own share the server's guest memory (the first link
 * to map guest RAM owns it; every QEMU device sends the same map).  A
 * link made with its own memory (@mem in struct viommu_link_config) fills
 * that one alone: the case of a device behind the VMM's own vIOMMU, whose
 * DMA maps are IOVAs.
 *
 * Two ways to run a link:
 *   - thread mode (the default): the server starts a thread per link that
 *     serves it until the peer leaves or viommu_link_server_stop();
 *   - poll mode (@poll_mode): no thread.  The embedder adds the fd of
 *     viommu_link_server_poll_fd() to its own event loop and calls
 *     viommu_link_server_run_once() whenever it is readable.
 *
 * A malformed message gets the protocol's error reply or, when the stream
 * cannot be trusted any more, ends that link with one log line; the other
 * links go on.  Every received fd the link does not keep is closed.  No
 * message makes the server read or write outside guest RAM the peer
 * mapped.
 *
 * Thread safety: every function may be called from any thread, except
 * that viommu_link_server_destroy() must not race any other call, and a
 * poll-mode link must not be run from two threads at once.  The
 * link_ended callback runs on the thread that served the link (or in
 * viommu_link_server_stop()) with no lock held; it must not call
 * viommu_link_server_stop() or _destroy().
 */
#ifndef VIOMMU_LINK_H
#define VIOMMU_LINK_H

#include <viommu/common.h>
#include <viommu/mem.h>
#include <viommu/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Links one server may hold. */
#define VIOMMU_LINK_MAX 32
/** Commands counted per link (index = the protocol's command number). */
#define VIOMMU_LINK_MAX_CMDS 32

/** Link protocols. */
enum viommu_link_proto {
	VIOMMU_LINK_VFIO_USER = 1,
	VIOMMU_LINK_MPQEMU = 2,
};

/** Why a link ended (or that it has not). */
enum viommu_link_end {
	VIOMMU_LINK_OPEN = 0,      /* still serving (or waiting for a peer) */
	VIOMMU_LINK_END_HANGUP,    /* the peer closed between messages */
	VIOMMU_LINK_END_TRUNCATED, /* the peer closed inside a message */
	VIOMMU_LINK_END_PROTOCOL,  /* a malformed message */
	VIOMMU_LINK_END_IO,        /* a socket error */
	VIOMMU_LINK_END_STOPPED,   /* viommu_link_server_stop() */
};

/** An emulated PCI function (opaque; see viommu_virtio_pci_func()). */
struct viommu_pci_func;

/**
 * struct viommu_link_server_config - creation parameters.
 * @size:       sizeof(struct viommu_link_server_config) as the caller
 *              knows it (lets the struct grow without breaking built
 *              embedders); 0 is taken as the original size.
 * @mem:        guest memory shared by the links that have none of their
 *              own (required).
 * @log, @allocator: see common.h.
 * @link_ended: called once per link when it ends, with the link ID and an
 *              enum viommu_link_end; may be NULL.
 * @opaque:     for @link_ended.
 * @poll_us:    before sleeping for a link's next message, check its socket
 *              without blocking for up to this many microseconds (0:
 *              never; at most 1000000).  Trades CPU for wake-up latency.
 */
struct viommu_link_server_config {
	uint32_t size;
	struct viommu_mem *mem;
	struct viommu_log log;
	struct viommu_allocator allocator;
	void (*link_ended)(void *opaque, unsigned int id, int why);
	void *opaque;
	unsigned int poll_us;
};

/**
 * struct viommu_link_config - one link.
 * @size:      sizeof(struct viommu_link_config) as the caller knows it; 0
 *             is taken as the original size.
 * @proto:     enum viommu_link_proto.
 * @func:      the PCI function served (required; one link per function).
 *             The link becomes the function's interrupt sink.
 * @fd:        a connected UNIX stream socket, owned by the server from the
 *             call on (closed even when the call fails); -1 to use @path.
 * @path:      with @fd == -1: a UNIX socket path to listen on; bound before
 *             the call returns; the link accepts one connection, then
 *             closes the listener and removes the path.  The path is also
 *             removed when the link ends or the server is destroyed.
 * @name:      short name for log lines (copied; NULL: "link<id>").
 * @poll_mode: no thread: the caller serves the link with
 *             viommu_link_server_run_once().
 * @mem:       guest memory of this link alone (NULL: the server's).
 * @domain:    vfio-user only, with @mem: the peer's DMA windows are IOVAs
 *             (a device behind the VMM's own vIOMMU): each becomes a
 *             mapping of this PAGING domain, IOVA -> the window's place in
 *             @mem, which the link fills with the windows' files (one
 *             region per distinct file, each at its own 1 TiB slot).  The
 *             device's endpoint must be attached to @domain; translation
 *             then enforces the windows' permissions and faults on IOVAs
 *             the VMM never mapped.  NULL: windows are guest-physical RAM.
 * @trust_peer_fds: accept guest-RAM files the peer could still shrink
 *             (regular files without the F_SEAL_SHRINK seal, e.g. files
 *             that cannot be sealed): the peer is trusted not to truncate
 *             them, which would kill this process with SIGBUS at the next
 *             DMA.  false (the default): such an fd is refused (vfio-user
 *             DMA_MAP: EPERM; mpqemu SYNC_SYSMEM: the link ends).  QEMU's
 *             memory-backend-memfd seals its file by default.
 * @path_mode: with @path: the socket file's permission bits (0: 0600,
 *             the owner alone may connect; at most 0777).  Set between
 *             bind() and listen(), so no one connects before.
 * @check_peer_uid: accept only a peer whose SO_PEERCRED uid is @peer_uid:
 *             a path link closes any other connection (one log line,
 *             rate limited) and goes on listening; a link given @fd is
 *             refused at once (-EACCES).
 * @peer_uid:  the expected uid, with @check_peer_uid.
 * @peer_timeout_ms: how long the peer may take over one message of a
 *             poll-mode link (from its first byte to its last, and to
 *             read our reply), and to answer a request this server sent
 *             it (vfio-user DMA_READ/DMA_WRITE); past it the link ends or
 *             the request fails.  0: 500 ms; at most 60000.
 */
struct viommu_link_config {
	uint32_t size;
	int proto;
	struct viommu_pci_func *func;
	int fd;
	const char *path;
	const char *name;
	bool poll_mode;
	struct viommu_mem *mem;
	struct viommu_domain *domain;
	bool trust_peer_fds;
	uint32_t path_mode;
	bool check_peer_uid;
	uint32_t peer_uid;
	uint32_t peer_timeout_ms;
};

/**
 * struct viommu_link_stats - counters of one link.
 * @msgs:        messages received, by command number.
 * @bytes_in, @bytes_out: wire bytes.
 * @fds_in:      file descriptors received.
 * @replies:     replies sent (error replies included).
 * @errors:      error replies sent and refused posted messages.
 * @irq_signals: interrupts delivered to the peer (eventfd writes).
 * @unmasks:     INTx unmask requests served.
 * @ram_applied, @ram_ignored: guest-RAM maps installed / dropped because
 *               another link owns guest RAM.
 * @connected:   a peer is (or was) connected.
 * @end:         enum viommu_link_end.
 * @dma_requests: vfio-user DMA_READ/DMA_WRITE requests sent to the peer
 *               (device DMA into windows without an fd).
 * @dma_failed:  of those, the ones that failed (no reply, a bad or error
 *               reply, the link ending).
 */
struct viommu_link_stats {
	uint64_t msgs[VIOMMU_LINK_MAX_CMDS];
	uint64_t bytes_in, bytes_out;
	uint64_t fds_in;
	uint64_t replies, errors;
	uint64_t irq_signals, unmasks;
	uint64_t ram_applied, ram_ignored;
	bool connected;
	int end;
	uint64_t dma_requests, dma_failed;
};

struct viommu_link_server;

/**
 * viommu_link_server_create() - an empty server.
 * Return: 0; -EINVAL (NULL @cfg, @out or @cfg->mem, or a @size larger than
 * this library knows with non-zero bytes past what it knows); -ENOMEM; or
 * the negative errno of eventfd().
 */
VIOMMU_EXPORT int
viommu_link_server_create(const struct viommu_link_server_config *cfg,
			  struct viommu_link_server **out);

/**
 * viommu_link_server_add() - add a link and, unless @poll_mode, start its
 * thread.  IDs are given in order from 0; *@id receives it.
 * Return: 0; -EINVAL (bad config, e.g. @domain without @mem or with
 * mpqemu, @path_mode above 0777, @peer_timeout_ms above 60000); -EACCES
 * (@fd's peer is not @peer_uid);
 * -EPROTONOSUPPORT (unknown @proto);
 * -EBUSY (@func already served); -ENOSPC (VIOMMU_LINK_MAX); -ENOMEM;
 * -ESHUTDOWN (server stopped); -ENAMETOOLONG (@path); or the negative
 * errno of socket/bind/listen/epoll/pthread_create.
 */
VIOMMU_EXPORT int
viommu_link_server_add(struct viommu_link_server *s,
		       const struct viommu_link_config *lc, unsigned int *id);

/**
 * viommu_link_server_poll_fd() - the fd to watch for poll-mode link @id:
 * readable (POLLIN) whenever viommu_link_server_run_once() has work.  It
 * stays the same for the life of the link.
 * Return: the fd (>= 0); -EINVAL (no such link, or not in poll mode).
 */
VIOMMU_EXPORT int viommu_link_server_poll_fd(struct viommu_link_server *s,
					     unsigned int id);

/**
 * viommu_link_server_run_once() - serve poll-mode link @id: accept the
 * peer, handle the messages that have arrived, at most 64 (the poll fd
 * stays readable if more are waiting), then return without waiting for
 * more.  A message whose beginning has arrived gets 500 ms to arrive
 * whole and for the peer to take our reply; a peer that stalls longer
 * ends its link (truncated).
 * Return: 0 (still open); the enum viommu_link_end (> 0) once it has
 * ended (again on later calls); -EINVAL (no such link, or not in poll
 * mode).  Must not run concurrently for the same link.
 */
VIOMMU_EXPORT int viommu_link_server_run_once(struct viommu_link_server *s,
					      unsigned int id);

/**
 * viommu_link_server_stop() - end every link (VIOMMU_LINK_END_STOPPED for
 * those still open) and wait for their threads.  A poll-mode link ends at
 * once if it is not being run, else at its next wait.  Idempotent; no link
 * can be added afterwards.  Must not be called from a link_ended callback.
 */
VIOMMU_EXPORT void viommu_link_server_stop(struct viommu_link_server *s);

/**
 * viommu_link_server_destroy() - stop, detach from the PCI functions,
 * close everything (socket paths removed) and free.  NULL is accepted.
 */
VIOMMU_EXPORT void viommu_link_server_destroy(struct viommu_link_server *s);

/** viommu_link_server_num_links() - links added so far. */
VIOMMU_EXPORT unsigned int
viommu_link_server_num_links(struct viommu_link_server *s);

/** viommu_link_server_open_links() - links not yet ended. */
VIOMMU_EXPORT unsigned int
viommu_link_server_open_links(struct viommu_link_server *s);

/**
 * viommu_link_server_stats() - copy link @id's counters into @out, of
 * which the caller knows @size bytes (sizeof(struct viommu_link_stats) as
 * it was built): nothing past @size is written, and a newer caller reads
 * zero in the counters this library lacks.
 * Return: 0; -EINVAL (no such link, NULL @out, @size 0).
 */
VIOMMU_EXPORT int viommu_link_server_stats(struct viommu_link_server *s,
					   unsigned int id,
					   struct viommu_link_stats *out,
					   size_t size);

/**
 * viommu_link_server_set_trace_sink() - typed trace points
 * (<viommu/trace.h>) of every link of @s: VIOMMU_TRACE_LINK_MSG for each
 * command received, _REPLY for each reply sent, _DMA for each vfio-user
 * DMA window added or removed (and each mpqemu guest-RAM region set),
 * _IRQ for each interrupt signalled to the peer, _END when a link ends.
 * @sink NULL (or a zero mask) turns them off.  Any thread; the sink's
 * function runs on the link's thread (or the thread raising an
 * interrupt), possibly with a link lock held, and must not call back into
 * the server.  Events racing the call may reach the old function.
 * Return: 0; -EINVAL (NULL @s, unknown mask bits, a @size with unknown
 * non-zero bytes).
 */
VIOMMU_EXPORT int
viommu_link_server_set_trace_sink(struct viommu_link_server *s,
				  const struct viommu_trace_sink *sink);

/** viommu_link_server_name() - the name of link @id, or NULL. */
VIOMMU_EXPORT const char *
viommu_link_server_name(struct viommu_link_server *s, unsigned int id);

/**
 * viommu_link_cmd_name() - the name of command @cmd of protocol @proto
 * ("DMA_MAP", ...); "?" if unknown.
 */
VIOMMU_EXPORT const char *viommu_link_cmd_name(int proto, unsigned int cmd);

/** viommu_link_end_name() - "open", "hangup", ...; "?" if unknown. */
VIOMMU_EXPORT const char *viommu_link_end_name(int end);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_LINK_H */
