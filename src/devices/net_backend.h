/*
 * net_backend.h - the interface between a virtio-net device model and
 * whatever carries its frames (the in-server switch, net_switch.c; later
 * a socket backend).  An ops table in the style of kvmtool's net backends
 * and libvfio-user's device callbacks: the NIC is a "port" of a backend.
 *
 * Sending: the NIC hands a whole frame (contiguous host bytes) and its
 * virtio_net_hdr, in host byte order, to send(); the backend copies what
 * it keeps, so the NIC's buffer is free again when send() returns.
 * Receiving: the backend queues frames for the port (bounded) and calls
 * the port's rx_ready() hook; the NIC, on its own time, takes them with
 * peek() / consume().  Only the port's owner calls peek, consume and
 * flush, so the frame peek() returns stays valid until it consumes or
 * flushes it.
 *
 * Locks: a NIC calls send(), peek(), consume() and flush() holding its
 * virtio device lock; the backend's own lock nests inside it and no
 * backend call takes any device lock, so two NICs sending to each other
 * cannot deadlock.  rx_ready() is called with the backend lock held: it
 * may only take a leaf lock (the NIC's wake-up mutex).
 */
#ifndef VIOMMU_NET_BACKEND_H
#define VIOMMU_NET_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include <viommu/common.h>

/* virtio_net_hdr (VIRTIO 1.3 §5.1.6), host byte order, num_buffers apart. */
#define NET_HDR_F_NEEDS_CSUM 1u
#define NET_HDR_F_DATA_VALID 2u
#define NET_HDR_GSO_NONE 0u
#define NET_HDR_GSO_TCPV4 1u
#define NET_HDR_GSO_UDP 3u
#define NET_HDR_GSO_TCPV6 4u
#define NET_HDR_GSO_UDP_L4 5u
#define NET_HDR_GSO_ECN 0x80u
#define NET_HDR_BYTES 12u /* with num_buffers: VERSION_1 */

/* The largest frame that crosses a backend (64 KiB of TSO payload plus
 * headers), without the virtio_net_hdr. */
#define NET_MAX_FRAME (65536u + 256u)
#define NET_ETH_HLEN 14u

struct net_hdr {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset;
};

struct net_frame {
	struct net_frame *next;
	struct net_hdr hdr;
	uint32_t len;
	uint8_t data[];
};

/*
 * struct net_port - a NIC's attachment to a backend, and the bounded queue
 * of frames waiting for its receive side.  The backend owns it and
 * protects the queue with its own lock.
 */
struct net_port {
	void *be;             /* the backend */
	uint32_t idx;         /* the backend's port number */
	void (*rx_ready)(void *opaque);
	void *opaque;
	struct net_frame *head, *tail;
	uint32_t count;
	bool up;
};

struct net_backend_ops {
	/* join() - a new port with @mac (a hint for learning); @rx_ready
	 * is called when a frame was queued for it.  Return: 0; -ENOSPC;
	 * -ENOMEM. */
	int (*join)(void *be, const uint8_t mac[6],
		    void (*rx_ready)(void *opaque), void *opaque,
		    struct net_port **out);
	/* leave() - remove the port, freeing its queued frames. */
	void (*leave)(struct net_port *p);
	/* send() - switch a frame of @len bytes (>= 14) from port @p. */
	void (*send)(struct net_port *p, const struct net_hdr *h,
		     const uint8_t *frame, uint32_t len);
	/* peek() / consume() - the oldest frame queued for @p. */
	struct net_frame *(*peek)(struct net_port *p);
	void (*consume)(struct net_port *p);
	/* flush() - free every frame queued for @p (device reset). */
	void (*flush)(struct net_port *p);
	/* set_up() - whether @p accepts frames (link state). */
	void (*set_up)(struct net_port *p, bool up);
	/* drops() - frames this backend dropped on @p's behalf: arriving
	 * for it (queue full, link down, bad framing) and leaving from it
	 * (output queue full, socket error).  NULL: none counted here. */
	void (*drops)(struct net_port *p, uint64_t *rx, uint64_t *tx);
};

extern const struct net_backend_ops net_switch_ops;
extern const struct net_backend_ops net_socket_ops;

/*
 * net_socket_open() - a socket backend over a copy of @fd (@stream: the
 * 4-byte big-endian length framing of QEMU's -netdev stream; else one
 * frame per datagram, -netdev dgram), with an I/O thread.  Pass the
 * result to net_socket_ops.join(); leave() closes and frees it.
 * Return: 0; -EBADF; -ENOMEM; -errno of fcntl, eventfd, pthread_create.
 */
int net_socket_open(int fd, bool stream, uint32_t depth,
		    const struct viommu_log *log, void **out);

#endif /* VIOMMU_NET_BACKEND_H */
