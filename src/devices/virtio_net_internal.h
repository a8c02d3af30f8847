/*
 * virtio_net_internal.h - what the halves of the virtio-net model share:
 * virtio_net.c (the device: config space, features, control queue, the
 * device thread, reset, creation) and virtio_net_pkt.c (the packet paths:
 * TX chains into frames for the backend, backend frames into RX buffers,
 * header rules, checksum completion).  Rules are those of
 * docs/VIRTIO-NET.md (N1...).
 *
 * Locks: dev.lock (the virtio device lock: rings, status, hooks, and
 * every field marked "dev.lock" below, the scratch space included) before
 * the backend's lock (net_backend.h) before net->mu (the thread's wake-up
 * state only).  Packet work always runs with dev.lock and a guest-memory
 * read section held, on the kicking thread (a budget) or on the device
 * thread (the rest, a budget at a time).
 */
#ifndef VIOMMU_VIRTIO_NET_INTERNAL_H
#define VIOMMU_VIRTIO_NET_INTERNAL_H

#include <viommu/virtio_net.h>
#include <pthread.h>

#include "devices/net_backend.h"
#include "virtio/virtio_dev.h"

/* Control queue (VIRTIO 1.3 §5.1.6.5). */
#define NET_CTRL_OK 0u
#define NET_CTRL_ERR 1u
#define NET_CTRL_RX 0u
#define NET_CTRL_RX_PROMISC 0u
#define NET_CTRL_RX_ALLMULTI 1u
#define NET_CTRL_MAC 1u
#define NET_CTRL_MAC_TABLE_SET 0u
#define NET_CTRL_MQ 4u
#define NET_CTRL_MQ_VQ_PAIRS_SET 0u
#define NET_S_LINK_UP 1u

#define NET_TX_BUDGET 64u     /* TX chains per call (N14) */
#define NET_RX_BUDGET 64u     /* frames delivered per call (N14) */
#define NET_MAX_PIECES 2048u  /* translated pieces per packet (N9) */
#define NET_MAC_TABLE_MAX 64u /* entries in one CTRL_MAC table (N12) */

struct viommu_virtio_net {
	struct viommu_virtio_dev dev;
	struct vq_iommu io;
	struct viommu_allocator alloc;
	struct viommu_log log;

	uint8_t mac[6];
	uint16_t max_pairs, qsize;
	uint32_t mtu;

	const struct net_backend_ops *be;
	struct net_port *port;

	/* dev.lock */
	uint16_t curr_pairs;
	bool link_up, promisc, allmulti;
	bool tx_more[VIOMMU_VIRTIO_NET_MAX_PAIRS];
	uint8_t *txbuf;            /* NET_HDR_BYTES + NET_MAX_FRAME */
	struct vq_piece *pc;      /* NET_MAX_PIECES */
	uint32_t npc;
	struct vq_elem *rx_elems;  /* qsize: chains taken for one frame */
	uint32_t *rx_used;         /* qsize */
	/* software segmentation (N10): the segment being delivered */
	struct net_frame *segf;    /* NET_MAX_FRAME bytes of data */
	const struct net_frame *seg_of; /* the frame it comes from */
	uint32_t seg_off;          /* its payload offset; 0: first */

	/* the device thread (mu) */
	pthread_t th;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool wake, stopping;

	struct viommu_virtio_net_stats st; /* relaxed atomics */
};

/* Queue roles. */
static inline uint16_t net_rxq(uint16_t pair) { return (uint16_t)(2 * pair); }
static inline uint16_t net_txq(uint16_t pair)
{
	return (uint16_t)(2 * pair + 1);
}


/* __net_needs_reset() - enter DEVICE_NEEDS_RESET, counted.  dev.lock. */
void __net_needs_reset(struct viommu_virtio_net *net, const char *why);

/* __net_wake() - have the device thread run (work left at a budget). */
void __net_wake(struct viommu_virtio_net *net);

/*
 * __net_tx() - transmit up to NET_TX_BUDGET chains of pair @pair's TX
 * queue; leaves the rest to the device thread.  dev.lock and a memory
 * read section held, device live.
 */
void __net_tx(struct viommu_virtio_net *net, uint16_t pair);

/*
 * __net_rx() - deliver up to NET_RX_BUDGET frames the backend queued for
 * this port, while receive buffers last.  Same context as __net_tx().
 */
void __net_rx(struct viommu_virtio_net *net);

/*
 * net_map() - append to net->pc the pieces of bytes [@off, @off + @len)
 * of @e's writable (@write) or readable part.  Return: 0; -EFAULT
 * (translation fault, reported); -EIO (not guest RAM); -E2BIG (too many
 * pieces); -ERANGE (past the part).
 */
int net_map(struct viommu_virtio_net *net, const struct vq *vq,
	    const struct vq_elem *e, bool write, uint32_t off, uint32_t len,
	    bool may_inject);

/* net_copy() - copy between @buf and pieces [@from, net->npc). */
int net_copy(struct viommu_virtio_net *net, uint32_t from, uint8_t *buf,
	     bool to_guest);

#endif /* VIOMMU_VIRTIO_NET_INTERNAL_H */
