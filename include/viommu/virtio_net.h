/*
 * virtio_net.h - a virtio-net device (VIRTIO 1.3 §5.1) whose DMA goes
 * through the translation core, and the in-server switch that joins any
 * number of them.
 *
 * With an endpoint in its configuration the device offers
 * VIRTIO_F_ACCESS_PLATFORM (§6.1) and insists on it: every ring,
 * indirect-table and packet-buffer address the driver gives is then an
 * IOVA of that endpoint, translated with viommu_translate() for the access
 * the device makes, using the contiguous length each translation returns.
 * A failed translation is reported like any other (the context's fault
 * callback); on a ring it puts the device in DEVICE_NEEDS_RESET, on a
 * packet buffer it drops that packet (counted) and the buffer goes back to
 * the driver unwritten (TX: used length 0; RX: the buffers taken for the
 * frame are returned with used length 0).  Every buffer of a packet is
 * translated before any byte of it is copied.
 *
 * Features: VERSION_1, ACCESS_PLATFORM (with an endpoint), MAC, STATUS,
 * MTU (when configured), MRG_RXBUF, CSUM, GUEST_CSUM, HOST_TSO4/6,
 * GUEST_TSO4/6, CTRL_VQ, CTRL_RX, MQ (with more than one queue pair), and
 * the ring features INDIRECT_DESC, EVENT_IDX and RING_PACKED.  The device
 * never segments on the way: a TSO frame crosses as one buffer chain with
 * its virtio_net_hdr gso fields; a receiver that did not negotiate the
 * matching GUEST_TSO gets it cut into MSS-sized TCP segments in software
 * on delivery (gso_segmented), and only a frame that cannot be segmented
 * (headers not plain Ethernet + IPv4/IPv6 + TCP) is dropped and counted
 * (rx_gso_dropped).  A
 * checksum the sender left to the device (NEEDS_CSUM) is completed by the
 * device for a receiver without GUEST_CSUM.  The rules are listed with
 * IDs in docs/VIRTIO-NET.md.
 *
 * Instead of a switch a NIC may talk to a peer over a connected socket in
 * the framing of QEMU's -netdev stream or -netdev dgram (socket_kind).
 *
 * Work per call is bounded: a kick (or poll) transmits at most a budget
 * of packets and delivers at most a budget of received frames; what is
 * left is done by the device's own thread, a budget at a time, with the
 * device lock released in between.  Frames for a NIC wait in a bounded
 * per-port queue of the switch; when it is full they are dropped and
 * counted, so a guest that posts no receive buffers never holds memory or
 * a sender.
 *
 * Thread safety: create and destroy must not race other calls on the same
 * object; every other call may come from any thread.  Destroying a
 * switch while NICs are joined only drops the creator's reference; the
 * last NIC to leave frees it.
 */
#ifndef VIOMMU_VIRTIO_NET_H
#define VIOMMU_VIRTIO_NET_H

#include <viommu/common.h>
#include <viommu/core.h>
#include <viommu/mem.h>
#include <viommu/virtio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Virtio device ID of a network device. */
#define VIOMMU_VIRTIO_NET_DEVICE_ID 1

/** virtio-net feature bits (VIRTIO 1.3 §5.1.3). */
#define VIOMMU_VIRTIO_NET_F_CSUM 0
#define VIOMMU_VIRTIO_NET_F_GUEST_CSUM 1
#define VIOMMU_VIRTIO_NET_F_MTU 3
#define VIOMMU_VIRTIO_NET_F_MAC 5
#define VIOMMU_VIRTIO_NET_F_GUEST_TSO4 7
#define VIOMMU_VIRTIO_NET_F_GUEST_TSO6 8
#define VIOMMU_VIRTIO_NET_F_GUEST_ECN 9
#define VIOMMU_VIRTIO_NET_F_GUEST_UFO 10
#define VIOMMU_VIRTIO_NET_F_HOST_TSO4 11
#define VIOMMU_VIRTIO_NET_F_HOST_TSO6 12
#define VIOMMU_VIRTIO_NET_F_HOST_ECN 13
#define VIOMMU_VIRTIO_NET_F_HOST_UFO 14
#define VIOMMU_VIRTIO_NET_F_MRG_RXBUF 15
#define VIOMMU_VIRTIO_NET_F_STATUS 16
#define VIOMMU_VIRTIO_NET_F_CTRL_VQ 17
#define VIOMMU_VIRTIO_NET_F_CTRL_RX 18
#define VIOMMU_VIRTIO_NET_F_MQ 22

/** Socket backends (struct viommu_virtio_net_config.socket_kind). */
#define VIOMMU_NET_SOCKET_STREAM 1
#define VIOMMU_NET_SOCKET_DGRAM 2

/** The most queue pairs a device may have (the control queue is extra). */
#define VIOMMU_VIRTIO_NET_MAX_PAIRS 3

struct viommu_virtio_net;
struct viommu_net_switch;

/**
 * struct viommu_net_switch_config - creation parameters; [default].
 * @size:        sizeof as the caller built it (0: the first release's
 *               struct, these five fields).
 * @mac_table:   MAC addresses learnt, 1..4096 [256]; when full, new
 *               addresses are not learnt (counted) and frames to them are
 *               flooded.
 * @queue_depth: frames waiting per port for the NIC's receive side,
 *               1..4096 [256]; a frame for a full queue is dropped and
 *               counted.  Each waiting frame holds at most 64 KiB + 256
 *               bytes of host memory.
 * @max_ports:   NICs that may join, 1..256 [32].
 * @log:         where log lines go.
 */
struct viommu_net_switch_config {
	size_t size;
	uint32_t mac_table;
	uint32_t queue_depth;
	uint32_t max_ports;
	struct viommu_log log;
};

/**
 * viommu_net_switch_create() - an empty learning switch.
 * Return: 0; -EINVAL (NULL argument, @size too large, limits out of
 * range); -ENOMEM.
 */
VIOMMU_EXPORT int
viommu_net_switch_create(const struct viommu_net_switch_config *cfg,
			 struct viommu_net_switch **out);

/**
 * viommu_net_switch_destroy() - drop the creator's reference: the switch
 * is freed now if no NIC is joined, else when the last one is destroyed.
 * NULL is accepted.  Must not race viommu_virtio_net_create() with this
 * switch.
 */
VIOMMU_EXPORT void viommu_net_switch_destroy(struct viommu_net_switch *sw);

/**
 * struct viommu_net_switch_stats - counters since creation.
 * @size:         sizeof as the caller knows it.
 * @frames:       frames the switch was handed.
 * @unicast:      frames sent to the one port their MAC was learnt on.
 * @flooded:      frames sent to every other port (broadcast, multicast,
 *                unknown destination).
 * @delivered:    frame copies queued for a port.
 * @queue_drops:  frame copies dropped because the port's queue was full.
 * @learned:      MAC table entries made or moved.
 * @table_full:   source MACs not learnt because the table was full.
 * @filtered:     frames not sent (destination learnt on the sending port).
 * @ports:        NICs joined now.
 */
struct viommu_net_switch_stats {
	size_t size;
	uint64_t frames, unicast, flooded, delivered, queue_drops;
	uint64_t learned, table_full, filtered;
	uint32_t ports;
};

/**
 * viommu_net_switch_stats() - snapshot the counters into @st (its @size
 * set by the caller; 0: the first release's struct, up to @ports).
 * Thread-safe.
 * Return: 0; -EINVAL (NULL argument, @size too large).
 */
VIOMMU_EXPORT int viommu_net_switch_stats(struct viommu_net_switch *sw,
					  struct viommu_net_switch_stats *st);

/**
 * struct viommu_virtio_net_config - creation parameters; [default].
 * @size:        sizeof(struct viommu_virtio_net_config) as the caller
 *               built it; 0 is the first release's struct (up to @log:
 *               without @socket_kind and @socket_fd).
 * @mem:         guest RAM (required).
 * @ep:          the function's endpoint: with it ACCESS_PLATFORM is
 *               offered (and required) and every ring and buffer address
 *               is an IOVA of it; NULL: guest-physical addresses.
 * @mac:         the MAC address; all zero: 52:54:00:xx:yy:zz, the last
 *               three bytes a hash of the device's host address (set one
 *               for a stable address or one unique by construction).
 * @queue_pairs: 1..VIOMMU_VIRTIO_NET_MAX_PAIRS [1]; MQ is offered when
 *               > 1.  A control queue always follows the pairs.
 * @queue_size:  largest queue, a power of two, 2..1024 [256].
 * @ring_features: VIRTIO_F_INDIRECT_DESC | EVENT_IDX | RING_PACKED bits to
 *               offer [all three]; other bits are ignored.
 * @mtu:         0: no MTU feature; else 68..65535, offered as VIRTIO_NET_F_MTU
 *               and enforced on transmit (frames longer than mtu + 14
 *               without GSO are dropped).
 * @net_switch:  the switch to join (NULL: frames sent go nowhere and are
 *               counted as tx_no_backend, unless @socket_kind is set).
 * @log:         where log lines go.
 * @socket_kind: instead of a switch, a connected socket to a peer:
 *               VIOMMU_NET_SOCKET_STREAM (QEMU's -netdev stream framing:
 *               each frame preceded by its length, 4 bytes big-endian) or
 *               VIOMMU_NET_SOCKET_DGRAM (-netdev dgram: one frame per
 *               datagram); 0: none.  The framing carries no
 *               virtio_net_hdr, so no checksum or TSO feature is offered.
 * @socket_fd:   the socket (stream, datagram or seqpacket, connected); the
 *               NIC uses its own copy (F_DUPFD_CLOEXEC, made non-blocking
 *               - which the file status flags share with the caller's).
 */
struct viommu_virtio_net_config {
	size_t size;
	struct viommu_mem *mem;
	struct viommu_endpoint *ep;
	uint8_t mac[6];
	uint16_t queue_pairs;
	uint16_t queue_size;
	uint64_t ring_features;
	uint32_t mtu;
	struct viommu_net_switch *net_switch;
	struct viommu_log log;
	uint32_t socket_kind;
	int socket_fd;
};

/**
 * viommu_virtio_net_create() - make a NIC (reset state, link up), join its
 * switch and start its thread.
 * Return: 0; -EINVAL (NULL @cfg, @out or @cfg->mem, @size larger than
 * this library knows, bad queue_pairs, queue_size or mtu, both a switch
 * and a socket, an unknown socket_kind); -EBADF (bad socket_fd); -ENOSPC
 * (the switch has max_ports NICs); -ENOMEM; -EAGAIN (pthread_create()).
 */
VIOMMU_EXPORT int
viommu_virtio_net_create(const struct viommu_virtio_net_config *cfg,
			 struct viommu_virtio_net **out);

/**
 * viommu_virtio_net_destroy() - leave the switch (frames waiting for this
 * NIC are freed), stop the thread, free the device.  NULL is accepted.
 * Must not race any other call on @net, including the transport's.
 */
VIOMMU_EXPORT void viommu_virtio_net_destroy(struct viommu_virtio_net *net);

/**
 * viommu_virtio_net_dev() - the virtio device, for viommu_virtio_pci_create()
 * and the calls of include/viommu/virtio.h.  NULL for NULL.
 */
VIOMMU_EXPORT struct viommu_virtio_dev *
viommu_virtio_net_dev(struct viommu_virtio_net *net);

/**
 * viommu_virtio_net_set_link() - link up or down (config status field,
 * VIRTIO_NET_S_LINK_UP); a change raises a configuration change
 * interrupt.  While down, frames sent are dropped (tx_dropped) and frames
 * arriving are dropped by the switch (queue_drops).  Thread-safe.
 * Return: 0; -EINVAL (NULL @net).
 */
VIOMMU_EXPORT int viommu_virtio_net_set_link(struct viommu_virtio_net *net,
					     bool up);

/**
 * viommu_virtio_net_inject_faults() - make the next @n translations of
 * packet buffers (TX or RX, any queue) fail as if unmapped: each is
 * reported to the context's fault callback as a NO_MAPPING fault and the
 * packet it hits is dropped.  Ring and control-queue translations are not
 * affected.  Replaces any pending count; 0 cancels.  Thread-safe.
 * Return: 0; -EINVAL (NULL @net); -ENODEV (no endpoint).
 */
VIOMMU_EXPORT int viommu_virtio_net_inject_faults(struct viommu_virtio_net *net,
						  uint32_t n);

/**
 * struct viommu_virtio_net_stats - counters since creation.
 * @size:        sizeof as the caller knows it (the call fills that much;
 *               0: the first release's struct, up to @budget_yields).
 * @tx_packets, @tx_bytes: frames handed to the switch (bytes without the
 *               virtio_net_hdr).
 * @tx_dropped:  TX chains not sent, for any reason below or link down.
 * @tx_bad:      TX chains refused by a rule (short, writable part,
 *               header invalid, too long).
 * @tx_faults:   TX chains dropped because a buffer did not translate.
 * @tx_no_backend: frames sent with no switch joined.
 * @rx_packets, @rx_bytes: frames written into receive buffers.
 * @rx_dropped:  frames taken from the switch queue and not delivered.
 * @rx_faults:   ... because a receive buffer did not translate for write.
 * @rx_too_big:  ... because they did not fit the buffers (no MRG_RXBUF,
 *               or more buffers than num_buffers can count).
 * @rx_gso_dropped: ... because the receiver lacks the GUEST_TSO feature
 *               the frame's gso_type needs and the frame could not be
 *               segmented in software.
 * @csum_completed: checksums the device completed for a receiver without
 *               GUEST_CSUM.
 * @ctrl_ok, @ctrl_err: control commands answered OK / ERR.
 * @faults:      failed translations (injected ones included).
 * @injected_faults: translations failed by inject_faults().
 * @needs_reset: times the device entered DEVICE_NEEDS_RESET.
 * @budget_yields: times a call stopped at its budget and left the rest
 *               to the device thread.
 * @backend_rx_drops, @backend_tx_drops: socket backend: frames from the
 *               peer dropped (receive queue full, link down, bad framing)
 *               and frames for the peer dropped (output queue full, send
 *               error).  The switch counts its own (switch stats).
 * @gso_segmented: GSO frames cut into segments in software for this
 *               receiver (each segment then counts as an rx_packet).
 */
struct viommu_virtio_net_stats {
	size_t size;
	uint64_t tx_packets, tx_bytes, tx_dropped, tx_bad, tx_faults;
	uint64_t tx_no_backend;
	uint64_t rx_packets, rx_bytes, rx_dropped, rx_faults, rx_too_big;
	uint64_t rx_gso_dropped, csum_completed;
	uint64_t ctrl_ok, ctrl_err;
	uint64_t faults, injected_faults, needs_reset, budget_yields;
	uint64_t backend_rx_drops, backend_tx_drops;
	uint64_t gso_segmented;
};

/**
 * viommu_virtio_net_stats() - snapshot the counters into @st, whose @size
 * the caller sets (0: the first release's struct, which ended at
 * @budget_yields).  Thread-safe.
 * Return: 0; -EINVAL (NULL argument, @size larger than this library's).
 */
VIOMMU_EXPORT int viommu_virtio_net_stats(struct viommu_virtio_net *net,
					  struct viommu_virtio_net_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_VIRTIO_NET_H */
