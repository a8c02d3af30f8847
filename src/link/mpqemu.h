/*
 * mpqemu.h - the device side of QEMU's x-pci-proxy-dev link ("mpqemu",
 * QEMU 7.2 hw/remote/), serving emulated PCI functions (src/transport/pci.h)
 * to a QEMU that runs them out of process.
 *
 * Wire format (x86-64, native byte order), one message after another on a
 * UNIX stream socket, one socket per PCI function:
 *
 *   header   int32 cmd; 4 bytes padding; uint64 size      (16 bytes)
 *   payload  size bytes (at most 192)
 *   fds      SCM_RIGHTS on the message's bytes (at most 8)
 *
 *   cmd  name          payload                              fds  reply
 *   0    SYNC_SYSMEM   u64 gpa[8]; u64 size[8]; i64 off[8]  1-8  none
 *   1    RET           u64 value                            0    (ours)
 *   2    PCI_CFGWRITE  u32 addr; u32 val; i32 len           0    RET 0
 *   3    PCI_CFGREAD   u32 addr; u32 val; i32 len           0    RET value
 *   4    BAR_WRITE     u64 addr; u64 val; u32 size; u8 mem  0    RET 0
 *   5    BAR_READ      u64 addr; u64 val; u32 size; u8 mem  0    RET value
 *   6    SET_IRQFD     none                                 2    none
 *   7    DEVICE_RESET  none                                 0    RET 0
 *
 * QEMU sends, per proxy device: SYNC_SYSMEM at realize and again whenever
 * its memory map changes; SET_IRQFD {intr, resample} at realize; then
 * configuration probing (BAR sizing) and the guest's accesses, each
 * waiting for its RET; DEVICE_RESET on system reset.  BAR accesses carry
 * the absolute guest-physical (or I/O port) address.
 *
 * A link server (struct mpqemu_server) serves any number of links over one
 * shared struct viommu_mem; each link is bound to one struct pci_func and
 * is served by its own thread (QEMU's vCPUs run in parallel), or, for
 * tests and fuzzing, in the caller's thread (a "manual" link).
 *
 * Validation is strict: an unknown command, a size other than the
 * command's, a wrong number of fds, an oversized payload, a bad field or a
 * peer closing mid-message ends that link with one log line; the other
 * links go on.  Every received fd the link does not keep is closed.  A link
 * allocates nothing per message.
 *
 * Guest RAM: every proxy device sends the same memory map, so the first
 * link to send SYNC_SYSMEM owns guest RAM and its maps are applied; maps
 * from other links are validated and dropped (counted), which keeps a
 * lagging link from re-installing a stale map.  When the owner ends, the
 * next link to send a map takes over.
 *
 * INTx: the link installs itself as the function's intx_fn.  A rising edge
 * writes 1 to the intr eventfd; when the resample eventfd fires (the guest
 * ended the interrupt) and the line is still asserted, intr is written
 * again (KVM irqfd level semantics).  Under TCG QEMU delivers neither.
 *
 * Thread safety: every function may be called from any thread, except
 * that mpqemu_server_destroy() must not race any other call.  The
 * link_ended callback runs on the link's thread and must not call
 * mpqemu_server_stop() or _destroy().
 */
#ifndef VIOMMU_MPQEMU_H
#define VIOMMU_MPQEMU_H

#include <viommu/mem.h>

#include "transport/pci.h"

#define MPQEMU_MAX_LINKS 32
#define MPQEMU_MAX_FDS 8
#define MPQEMU_HDR_SIZE 16
#define MPQEMU_MAX_PAYLOAD 192

/* Commands (QEMU 7.2 MPQemuCmd). */
enum mpqemu_cmd {
	MPQEMU_SYNC_SYSMEM = 0,
	MPQEMU_RET = 1,
	MPQEMU_PCI_CFGWRITE = 2,
	MPQEMU_PCI_CFGREAD = 3,
	MPQEMU_BAR_WRITE = 4,
	MPQEMU_BAR_READ = 5,
	MPQEMU_SET_IRQFD = 6,
	MPQEMU_DEVICE_RESET = 7,
	MPQEMU_CMD_COUNT = 8,
};

/* Payload sizes. */
#define MPQEMU_SYSMEM_SIZE 192
#define MPQEMU_RET_SIZE 8
#define MPQEMU_CFG_SIZE 12
#define MPQEMU_BAR_SIZE 24

/* Why a link ended (or that it has not). */
enum mpqemu_end {
	MPQEMU_OPEN = 0,      /* still serving (or waiting for a peer) */
	MPQEMU_END_HANGUP,    /* the peer closed between messages */
	MPQEMU_END_TRUNCATED, /* the peer closed in the middle of a message */
	MPQEMU_END_PROTOCOL,  /* a malformed message */
	MPQEMU_END_IO,        /* a socket error */
	MPQEMU_END_STOPPED,   /* mpqemu_server_stop() */
};

/*
 * struct mpqemu_link_stats - counters of one link.
 * @msgs:           messages received, by command (unknown ones are not
 *                  counted here: they end the link).
 * @bytes_in, @bytes_out: wire bytes received and sent.
 * @fds_in:         file descriptors received.
 * @replies:        RET messages sent.
 * @bar_unclaimed:  BAR accesses no enabled BAR decoded (read all ones).
 * @irq_signals:    writes to the intr eventfd.
 * @resamples:      resample notifications consumed.
 * @sysmem_applied, @sysmem_ignored: SYNC_SYSMEM maps installed / dropped
 *                  because another link owns guest RAM.
 * @connected:      a peer is (or was) connected.
 * @end:            enum mpqemu_end.
 */
struct mpqemu_link_stats {
	uint64_t msgs[MPQEMU_CMD_COUNT];
	uint64_t bytes_in, bytes_out;
	uint64_t fds_in;
	uint64_t replies;
	uint64_t bar_unclaimed;
	uint64_t irq_signals;
	uint64_t resamples;
	uint64_t sysmem_applied, sysmem_ignored;
	bool connected;
	int end;
};

/*
 * struct mpqemu_server_config - creation parameters.
 * @mem:        guest memory that SYNC_SYSMEM fills (required, shared).
 * @log, @allocator: see common.h.
 * @link_ended: called once per link when it ends, on the link's thread
 *              (or in mpqemu_server_stop() for a link that never ran),
 *              with the link ID and an enum mpqemu_end; may be NULL.
 * @poll_us:    before sleeping in poll() for the next message, check the
 *              socket without blocking for up to this many microseconds
 *              (0: never).  Trades CPU time for wake-up latency on links
 *              whose messages come in quick succession (kicks).
 */
struct mpqemu_server_config {
	struct viommu_mem *mem;
	struct viommu_log log;
	struct viommu_allocator allocator;
	void (*link_ended)(void *opaque, unsigned int id, int why);
	void *opaque;
	unsigned int poll_us;
};

/*
 * struct mpqemu_link_config - one link.
 * @func:   the PCI function served (required; one link per function).
 *          The link sets its intx_fn/intx_opaque.
 * @fd:     a connected stream socket, owned by the server from the call
 *          on (closed even when the call fails); -1 to use @path.
 * @path:   with @fd == -1: a UNIX socket path to listen on; the link
 *          accepts one connection, then closes and unlinks the listener.
 *          The path is bound before mpqemu_server_add_link() returns.
 * @name:   short name for log lines (copied; NULL: "link<id>").
 * @manual: no thread: the caller serves it with mpqemu_server_run_link().
 */
struct mpqemu_link_config {
	struct pci_func *func;
	int fd;
	const char *path;
	const char *name;
	bool manual;
};

struct mpqemu_server;

/*
 * mpqemu_server_create() - an empty server.
 * Return: 0; -EINVAL (NULL @cfg, @out or @cfg->mem); -ENOMEM; or the
 * negative errno of eventfd().
 */
int mpqemu_server_create(const struct mpqemu_server_config *cfg,
			 struct mpqemu_server **out);

/*
 * mpqemu_server_add_link() - add a link and, unless manual, start its
 * thread.  IDs are given in order from 0; *@id receives it.
 * Return: 0; -EINVAL (bad config); -EBUSY (@func already served); -ENOSPC
 * (MPQEMU_MAX_LINKS); -ENOMEM; -ESHUTDOWN (server stopped); or the
 * negative errno of socket/bind/listen/pthread_create.
 */
int mpqemu_server_add_link(struct mpqemu_server *s,
			   const struct mpqemu_link_config *lc,
			   unsigned int *id);

/*
 * mpqemu_server_run_link() - serve manual link @id in the calling thread
 * until it ends.  Return: the enum mpqemu_end (> 0); -EINVAL (no such
 * link, not manual, or already run).
 */
int mpqemu_server_run_link(struct mpqemu_server *s, unsigned int id);

/*
 * mpqemu_server_stop() - end every link (MPQEMU_END_STOPPED for those
 * still open) and wait for their threads.  Idempotent; no link can be
 * added afterwards.  Must not be called from a link_ended callback.
 */
void mpqemu_server_stop(struct mpqemu_server *s);

/*
 * mpqemu_server_destroy() - stop, detach from the PCI functions, close
 * everything and free.  NULL is accepted.
 */
void mpqemu_server_destroy(struct mpqemu_server *s);

/* mpqemu_server_num_links() - links added so far. */
unsigned int mpqemu_server_num_links(struct mpqemu_server *s);

/* mpqemu_server_open_links() - links not yet ended. */
unsigned int mpqemu_server_open_links(struct mpqemu_server *s);

/* mpqemu_server_link_stats() - copy link @id's counters. 0; -EINVAL. */
int mpqemu_server_link_stats(struct mpqemu_server *s, unsigned int id,
			     struct mpqemu_link_stats *out);

/* mpqemu_server_link_name() - the name of link @id, or NULL. */
const char *mpqemu_server_link_name(struct mpqemu_server *s, unsigned int id);

/* mpqemu_cmd_name() - "SYNC_SYSMEM", ...; "?" for unknown values. */
const char *mpqemu_cmd_name(unsigned int cmd);

/* mpqemu_end_name() - "open", "hangup", ...; "?" for unknown values. */
const char *mpqemu_end_name(int end);

#endif /* VIOMMU_MPQEMU_H */
