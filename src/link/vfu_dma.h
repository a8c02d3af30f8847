/*
 * vfu_dma.h - the server-to-client half of a vfio-user link: device DMA
 * into client memory that came without an fd, carried as DMA_READ /
 * DMA_WRITE requests on the link's socket (src/link/vfu_dma.c has the
 * ideas).  Used by vfio_user.c only.
 */
#ifndef VIOMMU_VFU_DMA_H
#define VIOMMU_VFU_DMA_H

#include "link/link.h"
#include "link/vfio_user.h"

/*
 * Commands received while our own request waited for its reply: at most
 * VFU_STASH_MAX messages and VFU_STASH_BYTES of payload (QEMU posts
 * doorbell writes without waiting, dozens while one request of ours is
 * answered by its main loop).  Worst case per link: VFU_STASH_BYTES plus
 * one message, plus VFU_STASH_MAX small headers (~300 KiB).
 */
#define VFU_STASH_MAX 256u
#define VFU_STASH_BYTES (256u << 10)
/* The spec's default max_data_xfer_size when the client names none. */
#define VFU_DEFAULT_CLIENT_XFER (1u << 20)
/* DMA_READ/WRITE payload: u64 address, u64 count, data (vfu_dma.c). */
#define VFU_DMARW_DATA 16u /* payload offset of the data */
#define VFU_DMARW_SIZE 16u /* payload bytes besides the data */

struct vfu_dma;

/* A message as received: header fields and payload. */
struct vfu_rx {
	uint16_t id, cmd;
	uint32_t size, flags, error;
};

/* vfu_dma_create() - the channel of link @l.  0; -ENOMEM. */
int vfu_dma_create(struct link *l, struct vfu_dma **out);

/* vfu_dma_destroy() - free; every waiter must be gone (link not running). */
void vfu_dma_destroy(struct vfu_dma *d);

/*
 * vfu_dma_set_xfer() - the client's max_data_xfer_size from its VERSION
 * JSON (@json NUL-terminated, or NULL: the spec's default).  Requests are
 * chunked to min(that, VFU_MAX_XFER).
 */
void vfu_dma_set_xfer(struct vfu_dma *d, const char *json);

/*
 * vfu_dma_rw() - copy @len bytes between @buf and client address @addr
 * with DMA_READ (!@write) or DMA_WRITE requests, waiting for each reply.
 * Any thread.  Return: 0; -EIO (no link, no reply within the link's stall_ms,
 * a bad or error reply, the stash full, the peer gone or the link
 * stopping: one log line each).
 */
int vfu_dma_rw(struct vfu_dma *d, uint64_t addr, void *buf, size_t len,
	       bool write);

/*
 * vfu_dma_reply() - the link thread received reply @h with payload @p
 * (@plen bytes): hand it to the request waiting for it, or drop it with a
 * log line.
 */
void vfu_dma_reply(struct vfu_dma *d, const struct vfu_rx *h,
		   const uint8_t *p, uint32_t plen);

/*
 * vfu_dma_unstash() - take the oldest command stashed during a wait:
 * header into *@h, payload into @p (VFU_MAX_PAYLOAD bytes), its fds into
 * l->rx_fds.  Link thread only.  Return: true if there was one.
 */
bool vfu_dma_unstash(struct vfu_dma *d, struct vfu_rx *h, uint8_t *p);

/*
 * vfu_dma_drain() - the reader, before it changes guest memory: deliver
 * the reply of a request another thread has outstanding (reading the
 * socket, stashing commands), bounded by the link's stall_ms.  That thread sits
 * in a memory read section the change would otherwise wait for, while it
 * waits for the reader: without the drain both would wait until the
 * request's deadline and the DMA would fail.  A request started between
 * the drain and the change still meets that (rare) bounded wait.
 */
void vfu_dma_drain(struct vfu_dma *d);

/* vfu_dma_stashed() - whether commands wait in the stash. */
bool vfu_dma_stashed(struct vfu_dma *d);

/*
 * vfu_dma_end() - an enum viommu_link_end the channel met while it read
 * the socket for a reply (peer gone, malformed stream, stop), or 0.
 */
int vfu_dma_end(struct vfu_dma *d);

/*
 * vfu_dma_close() - the link is ending: fail waiting requests and every
 * later one.  Returns once no request is being sent.
 */
void vfu_dma_close(struct vfu_dma *d);

#endif /* VIOMMU_VFU_DMA_H */
