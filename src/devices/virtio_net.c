/*
 * virtio_net.c - the virtio-net device model (include/viommu/virtio_net.h,
 * rules in docs/VIRTIO-NET.md): configuration space, features, the
 * control queue, the device thread, reset and creation.  The packet paths
 * are in virtio_net_pkt.c, the switch in net_switch.c.
 *
 * Concept: queues are rx0, tx0, rx1, tx1, ... and the control queue,
 * which is queue 2 * max_pairs when MQ was negotiated and queue 2
 * otherwise (VIRTIO 1.3 §5.1.2).  A TX kick transmits up to a budget on
 * the kicking thread; an RX kick (the driver posted buffers) delivers up
 * to a budget of the frames waiting for this NIC.  Whatever is left, and
 * every frame the switch queues for this NIC, is handled by the device's
 * own thread, woken through net->mu, one budget at a time with the device
 * lock taken and released around each round (N14), so that neither a
 * kicking link thread nor the device lock is held for unbounded time.
 *
 * Reset (N15): the hook runs with the device lock held, which the thread
 * also needs to touch rings; it frees the frames waiting for this NIC and
 * returns the control state to its defaults.  Nothing of before the reset
 * is delivered after it.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "devices/virtio_net_internal.h"
#include "base/util.h"

#define RING_ALL ((1ull << VIOMMU_VIRTIO_F_INDIRECT_DESC) | \
		  (1ull << VIOMMU_VIRTIO_F_EVENT_IDX) | \
		  (1ull << VIOMMU_VIRTIO_F_RING_PACKED))
#define DEF_QUEUE_SIZE 256
#define SOCK_DEPTH 256 /* frames queued each way on a socket backend */
#define CONFIG_BYTES 12 /* mac, status, max_virtqueue_pairs, mtu */
#define F(b) (1ull << VIOMMU_VIRTIO_NET_F_##b)

/* ------------------------------------------------------------------ */
/* Configuration space (VIRTIO 1.3 §5.1.4)                            */

static void op_config_read(struct viommu_virtio_dev *dev, uint32_t off,
			   void *buf, uint32_t len)
{
	struct viommu_virtio_net *net = dev->priv;
	uint8_t c[CONFIG_BYTES];
	uint16_t v;

	if (off >= CONFIG_BYTES)
		return;
	memcpy(c, net->mac, 6);
	v = htole16(net->link_up ? NET_S_LINK_UP : 0);
	memcpy(c + 6, &v, 2);
	v = htole16(net->max_pairs);
	memcpy(c + 8, &v, 2);
	v = htole16((uint16_t)net->mtu);
	memcpy(c + 10, &v, 2);
	memcpy(buf, c + off, MIN(len, CONFIG_BYTES - off));
}

static void op_config_write(struct viommu_virtio_dev *dev, uint32_t off,
			    const void *buf, uint32_t len)
{
	struct viommu_virtio_net *net = dev->priv;

	/* N1: VERSION_1 makes every field read-only (mac included). */
	rl_warn(&net->dev.rl, &net->log, "virtio-net: write to read-only "
		"config offset %u ignored (N1)", off);
}

/* ------------------------------------------------------------------ */
/* Helpers shared with virtio_net_pkt.c                               */

void __net_needs_reset(struct viommu_virtio_net *net, const char *why)
{
	if (!(net->dev.status & VIOMMU_VIRTIO_S_NEEDS_RESET))
		ATOMIC_INC(net->st.needs_reset);
	__vdev_needs_reset(&net->dev, why);
}

void __net_wake(struct viommu_virtio_net *net)
{
	pthread_mutex_lock(&net->mu);
	net->wake = true;
	pthread_cond_signal(&net->cv);
	pthread_mutex_unlock(&net->mu);
}

/* rx_ready() - the backend queued a frame for us (backend lock held). */
static void rx_ready(void *opaque)
{
	struct viommu_virtio_net *net = opaque;

	pthread_mutex_lock(&net->mu);
	if (!net->wake) {
		net->wake = true;
		pthread_cond_signal(&net->cv);
	}
	pthread_mutex_unlock(&net->mu);
}

static bool __live(const struct viommu_virtio_net *net)
{
	return (net->dev.status & (VIOMMU_VIRTIO_S_DRIVER_OK |
				   VIOMMU_VIRTIO_S_NEEDS_RESET |
				   VIOMMU_VIRTIO_S_FAILED)) ==
	       VIOMMU_VIRTIO_S_DRIVER_OK;
}

/* __ctrl_index() - the control queue's index under the negotiated
 * features. */
static uint16_t __ctrl_index(const struct viommu_virtio_net *net)
{
	return __vdev_has(&net->dev, VIOMMU_VIRTIO_NET_F_MQ)
		       ? (uint16_t)(2 * net->max_pairs) : 2;
}

/* __pairs_usable() - queue pairs whose queues may carry packets. */
static uint16_t __pairs_usable(const struct viommu_virtio_net *net)
{
	return __vdev_has(&net->dev, VIOMMU_VIRTIO_NET_F_MQ) ? net->max_pairs
							     : 1;
}

/* ------------------------------------------------------------------ */
/* Control queue (VIRTIO 1.3 §5.1.6.5; N12)                           */

/* ctrl_read() - @len bytes at @off of the command's readable part. */
static int ctrl_read(struct viommu_virtio_net *net, struct vq *vq,
		     const struct vq_elem *e, uint32_t off, void *buf,
		     uint32_t len)
{
	int err;

	net->npc = 0;
	err = net_map(net, vq, e, false, off, len, false);
	return err ? err : net_copy(net, 0, buf, false);
}

/* ctrl_exec() - run one command; its ack. */
static uint8_t ctrl_exec(struct viommu_virtio_net *net, struct vq *vq,
			 const struct vq_elem *e)
{
	uint32_t dlen = e->read_len - 2;
	uint8_t cmd[2], b;
	uint16_t pairs;
	uint32_t n1, n2;

	if (ctrl_read(net, vq, e, 0, cmd, 2))
		return NET_CTRL_ERR;
	if (cmd[0] == NET_CTRL_RX &&
	    __vdev_has(&net->dev, VIOMMU_VIRTIO_NET_F_CTRL_RX) &&
	    (cmd[1] == NET_CTRL_RX_PROMISC ||
	     cmd[1] == NET_CTRL_RX_ALLMULTI)) {
		if (dlen != 1 || ctrl_read(net, vq, e, 2, &b, 1))
			return NET_CTRL_ERR;
		if (cmd[1] == NET_CTRL_RX_PROMISC)
			net->promisc = b != 0;
		else
			net->allmulti = b != 0;
		return NET_CTRL_OK;
	}
	if (cmd[0] == NET_CTRL_MAC && cmd[1] == NET_CTRL_MAC_TABLE_SET &&
	    __vdev_has(&net->dev, VIOMMU_VIRTIO_NET_F_CTRL_RX)) {
		/* two tables: le32 entries, entries * 6 bytes (N12) */
		if (dlen < 8 || ctrl_read(net, vq, e, 2, &n1, 4))
			return NET_CTRL_ERR;
		n1 = le32toh(n1);
		if (n1 > NET_MAC_TABLE_MAX || dlen < 8 + 6 * n1 ||
		    ctrl_read(net, vq, e, 6 + 6 * n1, &n2, 4))
			return NET_CTRL_ERR;
		n2 = le32toh(n2);
		if (n2 > NET_MAC_TABLE_MAX || dlen != 8 + 6 * (n1 + n2))
			return NET_CTRL_ERR;
		return NET_CTRL_OK; /* accepted; the NIC does not filter */
	}
	if (cmd[0] == NET_CTRL_MQ && cmd[1] == NET_CTRL_MQ_VQ_PAIRS_SET &&
	    __vdev_has(&net->dev, VIOMMU_VIRTIO_NET_F_MQ)) {
		if (dlen != 2 || ctrl_read(net, vq, e, 2, &pairs, 2))
			return NET_CTRL_ERR;
		pairs = le16toh(pairs);
		if (pairs < 1 || pairs > net->max_pairs)
			return NET_CTRL_ERR;
		net->curr_pairs = pairs;
		return NET_CTRL_OK;
	}
	return NET_CTRL_ERR;
}

/* __ctrl() - answer what the control queue has (bounded by its size). */
static void __ctrl(struct viommu_virtio_net *net, uint16_t q)
{
	struct vq *vq = &net->dev.vqs[q];
	uint32_t n;

	for (n = 0; n < vq->size; n++) {
		struct vq_elem e;
		uint32_t used = 0;
		uint8_t ack = NET_CTRL_ERR;
		int err = vq_pop(vq, &e);

		if (err == -ENOENT)
			break;
		if (err) {
			__net_needs_reset(net, NULL);
			return;
		}
		if (e.read_len >= 2 && e.write_len >= 1)
			ack = ctrl_exec(net, vq, &e);
		if (e.write_len >= 1) {
			net->npc = 0;
			/* the ack is the first device-writable byte (the
			 * struct's layout; QEMU writes it there too) */
			if (!net_map(net, vq, &e, true, 0, 1, false) &&
			    !net_copy(net, 0, &ack, true))
				used = 1;
		}
		if (used && ack == NET_CTRL_OK)
			ATOMIC_INC(net->st.ctrl_ok);
		else
			ATOMIC_INC(net->st.ctrl_err);
		if (vq_push(vq, &e, used)) {
			__net_needs_reset(net, NULL);
			return;
		}
	}
	if (n)
		__vdev_queue_done(&net->dev, q);
}

/* ------------------------------------------------------------------ */
/* Hooks                                                              */

static void op_queue_notify(struct viommu_virtio_dev *dev, uint16_t q)
{
	struct viommu_virtio_net *net = dev->priv;

	if (q == __ctrl_index(net)) {
		__ctrl(net, q);
		return;
	}
	if (q >= 2 * __pairs_usable(net))
		return; /* a queue the negotiated features do not use */
	if (q & 1)
		__net_tx(net, q / 2);
	else
		__net_rx(net);
}

static void op_reset(struct viommu_virtio_dev *dev, bool system)
{
	struct viommu_virtio_net *net = dev->priv;

	if (net->port)
		net->be->flush(net->port);
	net->seg_of = NULL;
	net->seg_off = 0;
	net->curr_pairs = 1;
	net->promisc = net->allmulti = false;
	memset(net->tx_more, 0, sizeof(net->tx_more));
}

static int op_features_ok(struct viommu_virtio_dev *dev, uint64_t f)
{
	struct viommu_virtio_net *net = dev->priv;
	const char *why = NULL;

	if (net->io.ep && !((f >> VIOMMU_VIRTIO_F_ACCESS_PLATFORM) & 1))
		why = "VIRTIO_F_ACCESS_PLATFORM refused; the device is behind "
		      "an IOMMU";
	else if ((f & (F(GUEST_TSO4) | F(GUEST_TSO6))) && !(f & F(GUEST_CSUM)))
		why = "GUEST_TSO4/6 without GUEST_CSUM";
	else if ((f & (F(HOST_TSO4) | F(HOST_TSO6))) && !(f & F(CSUM)))
		why = "HOST_TSO4/6 without CSUM";
	else if ((f & (F(CTRL_RX) | F(MQ))) && !(f & F(CTRL_VQ)))
		why = "CTRL_RX or MQ without CTRL_VQ";
	if (why) {
		rl_warn(&net->dev.rl, &net->log,
			"virtio-net: features refused (N2): %s", why);
		return -EINVAL;
	}
	return 0;
}

static const struct vdev_ops net_ops = {
	.device_id = VIOMMU_VIRTIO_NET_DEVICE_ID,
	.features_ok = op_features_ok,
	.queue_notify = op_queue_notify,
	.config_read = op_config_read,
	.config_write = op_config_write,
	.reset = op_reset,
};

/* ------------------------------------------------------------------ */
/* The device thread                                                  */

/* round() - one budget of everything pending.  Return: whether work is
 * (probably) left. */
static void round_once(struct viommu_virtio_net *net)
{
	struct viommu_virtio_dev *dev = &net->dev;
	unsigned int tok;

	pthread_mutex_lock(&dev->lock);
	if (!__live(net)) {
		pthread_mutex_unlock(&dev->lock);
		return;
	}
	tok = viommu_mem_read_lock(dev->mem);
	for (uint16_t p = 0; p < __pairs_usable(net) && __live(net); p++) {
		struct vq *vq = &dev->vqs[net_txq(p)];

		if (net->tx_more[p] && vq->ready && !vq->broken)
			__net_tx(net, p);
	}
	if (__live(net))
		__net_rx(net);
	viommu_mem_read_unlock(dev->mem, tok);
	pthread_mutex_unlock(&dev->lock);
}

static void *thread_main(void *arg)
{
	struct viommu_virtio_net *net = arg;

	pthread_mutex_lock(&net->mu);
	for (;;) {
		while (!net->stopping && !net->wake)
			pthread_cond_wait(&net->cv, &net->mu);
		if (net->stopping)
			break;
		net->wake = false;
		pthread_mutex_unlock(&net->mu);
		round_once(net); /* re-wakes itself when a budget ran out */
		pthread_mutex_lock(&net->mu);
	}
	pthread_mutex_unlock(&net->mu);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Creation                                                           */

static int check_config(struct viommu_virtio_net_config *c)
{
	if (!c->queue_pairs)
		c->queue_pairs = 1;
	if (!c->queue_size)
		c->queue_size = DEF_QUEUE_SIZE;
	if (!c->ring_features)
		c->ring_features = RING_ALL;
	if (!c->mem || c->queue_pairs > VIOMMU_VIRTIO_NET_MAX_PAIRS ||
	    c->queue_size < 2 || c->queue_size > VIOMMU_VIRTIO_QUEUE_MAX ||
	    (c->queue_size & (c->queue_size - 1)) ||
	    (c->mtu && (c->mtu < 68 || c->mtu > 65535)) ||
	    c->socket_kind > VIOMMU_NET_SOCKET_DGRAM ||
	    (c->socket_kind && c->net_switch))
		return -EINVAL;
	return 0;
}

static uint64_t offered(const struct viommu_virtio_net_config *c)
{
	uint64_t f = (c->ring_features & RING_ALL) | F(MAC) | F(STATUS) |
		     F(MRG_RXBUF) | F(CSUM) | F(GUEST_CSUM) | F(HOST_TSO4) |
		     F(HOST_TSO6) | F(GUEST_TSO4) | F(GUEST_TSO6) |
		     F(CTRL_VQ) | F(CTRL_RX);

	if (c->socket_kind) /* K4: no virtio_net_hdr on the wire */
		f &= ~(F(CSUM) | F(GUEST_CSUM) | F(HOST_TSO4) | F(HOST_TSO6) |
		       F(GUEST_TSO4) | F(GUEST_TSO6));
	if (c->queue_pairs > 1)
		f |= F(MQ);
	if (c->mtu)
		f |= F(MTU);
	if (c->ep)
		f |= 1ull << VIOMMU_VIRTIO_F_ACCESS_PLATFORM;
	return f;
}

static void free_net(struct viommu_virtio_net *net)
{
	struct viommu_allocator alloc = net->alloc;

	xfree(&alloc, net->txbuf);
	xfree(&alloc, net->pc);
	xfree(&alloc, net->rx_elems);
	xfree(&alloc, net->rx_used);
	xfree(&alloc, net->segf);
	xfree(&alloc, net);
}

/*
 * The config and stats structs as the first release had them: what a
 * @size of 0 means (never today's sizeof, which grows: socket_kind and
 * socket_fd, backend_*_drops and gso_segmented came later).
 */
#define CONFIG_SIZE_V1 \
	(offsetof(struct viommu_virtio_net_config, log) + \
	 sizeof(struct viommu_log))
#define STATS_SIZE_V1 \
	(offsetof(struct viommu_virtio_net_stats, budget_yields) + \
	 sizeof(uint64_t))

VIOMMU_EXPORT int
viommu_virtio_net_create(const struct viommu_virtio_net_config *user,
			 struct viommu_virtio_net **out)
{
	static const uint8_t zero[6];
	struct viommu_allocator alloc = { 0 };
	struct viommu_virtio_net_config c;
	struct viommu_virtio_net *net;
	int err;

	if (!user || !out || user->size > sizeof(c))
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	memcpy(&c, user, user->size ? user->size : CONFIG_SIZE_V1);
	err = check_config(&c);
	if (err)
		return err;
	net = xzalloc(&alloc, sizeof(*net));
	if (!net)
		return -ENOMEM;
	net->alloc = alloc;
	net->log = c.log;
	net->max_pairs = c.queue_pairs;
	net->qsize = c.queue_size;
	net->mtu = c.mtu;
	net->curr_pairs = 1;
	net->link_up = true;
	net->io.ep = c.ep;
	if (memcmp(c.mac, zero, 6)) {
		memcpy(net->mac, c.mac, 6);
	} else {
		uint64_t a = (uint64_t)(uintptr_t)net * 0x9e3779b97f4a7c15ull;

		net->mac[0] = 0x52;
		net->mac[1] = 0x54;
		net->mac[2] = 0x00;
		net->mac[3] = (uint8_t)(a >> 56);
		net->mac[4] = (uint8_t)(a >> 48);
		net->mac[5] = (uint8_t)(a >> 40);
	}
	net->txbuf = xalloc(&alloc, NET_HDR_BYTES + NET_MAX_FRAME);
	net->pc = xalloc(&alloc, NET_MAX_PIECES * sizeof(*net->pc));
	net->rx_elems = xzalloc(&alloc, net->qsize * sizeof(*net->rx_elems));
	net->rx_used = xzalloc(&alloc, net->qsize * sizeof(*net->rx_used));
	net->segf = xzalloc(&alloc, sizeof(*net->segf) + NET_MAX_FRAME);
	if (!net->txbuf || !net->pc || !net->rx_elems || !net->rx_used ||
	    !net->segf) {
		free_net(net);
		return -ENOMEM;
	}
	if (pthread_mutex_init(&net->mu, NULL)) {
		free_net(net);
		return -ENOMEM;
	}
	if (pthread_cond_init(&net->cv, NULL)) {
		err = -ENOMEM;
		goto err_mu;
	}
	err = vdev_init(&net->dev, &net_ops, net, c.mem, &net->log,
			&net->alloc, offered(&c),
			(uint16_t)(2 * net->max_pairs + 1), net->qsize);
	if (err)
		goto err_cv;
	net->dev.iommu = c.ep ? &net->io : NULL;
	if (c.net_switch) {
		net->be = &net_switch_ops;
		err = net->be->join(c.net_switch, net->mac, rx_ready, net,
				    &net->port);
		if (err)
			goto err_dev;
	} else if (c.socket_kind) {
		void *be;

		net->be = &net_socket_ops;
		err = net_socket_open(c.socket_fd, c.socket_kind ==
				      VIOMMU_NET_SOCKET_STREAM, SOCK_DEPTH,
				      &net->log, &be);
		if (err)
			goto err_dev;
		err = net->be->join(be, net->mac, rx_ready, net, &net->port);
		if (err) {
			net->be->leave(&((struct net_port){ .be = be }));
			goto err_dev;
		}
	}
	err = -pthread_create(&net->th, NULL, thread_main, net);
	if (err)
		goto err_port;
	net->started = true;
	log_info(&net->log, "virtio-net: %02x:%02x:%02x:%02x:%02x:%02x, %u "
		 "queue pair(s) of %u, %s, %s", net->mac[0], net->mac[1],
		 net->mac[2], net->mac[3], net->mac[4], net->mac[5],
		 net->max_pairs, net->qsize, c.net_switch ? "on a switch" :
		 c.socket_kind ? "on a socket" : "no backend", c.ep ? "behind an IOMMU" :
		 "guest-physical addresses");
	*out = net;
	return 0;

err_port:
	if (net->port)
		net->be->leave(net->port);
err_dev:
	vdev_destroy(&net->dev);
err_cv:
	pthread_cond_destroy(&net->cv);
err_mu:
	pthread_mutex_destroy(&net->mu);
	free_net(net);
	return err;
}

VIOMMU_EXPORT void viommu_virtio_net_destroy(struct viommu_virtio_net *net)
{
	if (!net)
		return;
	/* Leave first: no frame is queued for us and no rx_ready comes. */
	pthread_mutex_lock(&net->dev.lock);
	if (net->port)
		net->be->leave(net->port);
	net->port = NULL;
	pthread_mutex_unlock(&net->dev.lock);
	pthread_mutex_lock(&net->mu);
	net->stopping = true;
	pthread_cond_signal(&net->cv);
	pthread_mutex_unlock(&net->mu);
	if (net->started)
		pthread_join(net->th, NULL);
	vdev_destroy(&net->dev);
	pthread_cond_destroy(&net->cv);
	pthread_mutex_destroy(&net->mu);
	free_net(net);
}

VIOMMU_EXPORT struct viommu_virtio_dev *
viommu_virtio_net_dev(struct viommu_virtio_net *net)
{
	return net ? &net->dev : NULL;
}

VIOMMU_EXPORT int viommu_virtio_net_set_link(struct viommu_virtio_net *net,
					     bool up)
{
	if (!net)
		return -EINVAL;
	pthread_mutex_lock(&net->dev.lock);
	if (net->link_up != up) {
		net->link_up = up;
		if (net->port)
			net->be->set_up(net->port, up);
		/* N1: a config change interrupt for a driver that reads it */
		if (__vdev_has(&net->dev, VIOMMU_VIRTIO_NET_F_STATUS) &&
		    (net->dev.status & VIOMMU_VIRTIO_S_DRIVER_OK))
			__vdev_config_changed(&net->dev);
		else
			net->dev.config_gen++;
	}
	pthread_mutex_unlock(&net->dev.lock);
	return 0;
}

VIOMMU_EXPORT int viommu_virtio_net_inject_faults(struct viommu_virtio_net *net,
						  uint32_t n)
{
	if (!net)
		return -EINVAL;
	if (!net->io.ep)
		return -ENODEV;
	__atomic_store_n(&net->io.inject, n, __ATOMIC_RELAXED);
	return 0;
}

VIOMMU_EXPORT int viommu_virtio_net_stats(struct viommu_virtio_net *net,
					  struct viommu_virtio_net_stats *st)
{
	struct viommu_virtio_net_stats s;
	size_t n;

	if (!net || !st || st->size > sizeof(s))
		return -EINVAL;
	n = st->size ? st->size : STATS_SIZE_V1;
#define LD(f) s.f = __atomic_load_n(&net->st.f, __ATOMIC_RELAXED)
	LD(tx_packets); LD(tx_bytes); LD(tx_dropped); LD(tx_bad);
	LD(tx_faults); LD(tx_no_backend); LD(rx_packets); LD(rx_bytes);
	LD(rx_dropped); LD(rx_faults); LD(rx_too_big); LD(rx_gso_dropped);
	LD(csum_completed); LD(ctrl_ok); LD(ctrl_err); LD(needs_reset);
	LD(budget_yields); LD(gso_segmented);
#undef LD
	s.backend_rx_drops = s.backend_tx_drops = 0;
	/* port is set by create and cleared by destroy only: no lock (this
	 * may be called from the transport's interrupt hook) */
	if (net->port && net->be->drops)
		net->be->drops(net->port, &s.backend_rx_drops,
			       &s.backend_tx_drops);
	s.faults = __atomic_load_n(&net->io.faults, __ATOMIC_RELAXED);
	s.injected_faults = __atomic_load_n(&net->io.injected,
					    __ATOMIC_RELAXED);
	s.size = n;
	memcpy(st, &s, n);
	return 0;
}
