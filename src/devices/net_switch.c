/*
 * net_switch.c - the in-server learning switch (include/viommu/virtio_net.h,
 * rules S1-S5 of docs/VIRTIO-NET.md), the first backend of
 * net_backend.h.
 *
 * Concept: every joined NIC is a port.  A frame sent by a port teaches the
 * switch that its source MAC lives there (a bounded table: when full, new
 * addresses are not learnt and frames to them flood, S2), then goes to
 * the one port its destination was learnt on, or to every other port for
 * broadcast, multicast and unknown destinations (S1).  Going to a port
 * means a copy appended to that port's queue, bounded by queue_depth;
 * a full queue, or a port whose link is down, drops the copy and counts it
 * (S3): the sender is never blocked by a receiver, and the memory a port
 * holds is at most queue_depth frames.  The receiving NIC is woken through
 * its rx_ready hook and drains its queue on its own thread.
 *
 * One mutex protects everything here; it nests inside the NICs' device
 * locks and takes none itself (net_backend.h).  The switch is reference
 * counted (the creator plus one per port) so that destroy before the NICs
 * is harmless (S5).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <viommu/virtio_net.h>

#include "base/util.h"
#include "devices/net_backend.h"

#define DEF_MAC_TABLE 256
#define DEF_QUEUE_DEPTH 256
#define DEF_PORTS 32
#define MAX_MAC_TABLE 4096
#define MAX_QUEUE_DEPTH 4096
#define MAX_PORTS 256

struct mac_entry {
	uint8_t mac[6];
	uint16_t port; /* index + 1; 0: free */
};

struct viommu_net_switch {
	pthread_mutex_t mu;
	struct viommu_allocator alloc;
	struct viommu_log log;
	uint32_t depth, nmac, nports_max;
	uint32_t refs;         /* creator + ports */
	bool dead;             /* destroy() was called */
	struct net_port **ports;
	struct mac_entry *macs;
	struct viommu_net_switch_stats st;
};

static bool is_multicast(const uint8_t *mac)
{
	return mac[0] & 1;
}

/* __lookup() - the table entry of @mac, or NULL.  mu held. */
static struct mac_entry *__lookup(struct viommu_net_switch *sw,
				  const uint8_t *mac)
{
	for (uint32_t i = 0; i < sw->nmac; i++)
		if (sw->macs[i].port && !memcmp(sw->macs[i].mac, mac, 6))
			return &sw->macs[i];
	return NULL;
}

/* __learn() - @mac was seen on @p (S2).  mu held. */
static void __learn(struct viommu_net_switch *sw, const uint8_t *mac,
		    struct net_port *p)
{
	struct mac_entry *e;

	if (is_multicast(mac))
		return;
	e = __lookup(sw, mac);
	if (e) {
		if (e->port != p->idx + 1) {
			e->port = (uint16_t)(p->idx + 1);
			sw->st.learned++;
		}
		return;
	}
	for (uint32_t i = 0; i < sw->nmac; i++) {
		if (!sw->macs[i].port) {
			memcpy(sw->macs[i].mac, mac, 6);
			sw->macs[i].port = (uint16_t)(p->idx + 1);
			sw->st.learned++;
			return;
		}
	}
	sw->st.table_full++;
}

/* __enqueue() - a copy of the frame for @p, or a counted drop (S3). */
static void __enqueue(struct viommu_net_switch *sw, struct net_port *p,
		      const struct net_hdr *h, const uint8_t *data,
		      uint32_t len)
{
	struct net_frame *f;

	if (!p->up || p->count >= sw->depth ||
	    !(f = xalloc(&sw->alloc, sizeof(*f) + len))) {
		sw->st.queue_drops++;
		return;
	}
	f->next = NULL;
	f->hdr = *h;
	f->len = len;
	memcpy(f->data, data, len);
	if (p->tail)
		p->tail->next = f;
	else
		p->head = f;
	p->tail = f;
	p->count++;
	sw->st.delivered++;
	p->rx_ready(p->opaque);
}

static void sw_send(struct net_port *from, const struct net_hdr *h,
		    const uint8_t *frame, uint32_t len)
{
	struct viommu_net_switch *sw = from->be;
	struct mac_entry *e;

	if (len < NET_ETH_HLEN || len > NET_MAX_FRAME)
		return; /* the NIC checked; never trust it blindly */
	pthread_mutex_lock(&sw->mu);
	sw->st.frames++;
	__learn(sw, frame + 6, from);
	e = is_multicast(frame) ? NULL : __lookup(sw, frame);
	if (e) {
		struct net_port *to = sw->ports[e->port - 1];

		if (to == from) {
			sw->st.filtered++;
		} else {
			sw->st.unicast++;
			__enqueue(sw, to, h, frame, len);
		}
	} else {
		sw->st.flooded++;
		for (uint32_t i = 0; i < sw->nports_max; i++)
			if (sw->ports[i] && sw->ports[i] != from)
				__enqueue(sw, sw->ports[i], h, frame, len);
	}
	pthread_mutex_unlock(&sw->mu);
}

static struct net_frame *sw_peek(struct net_port *p)
{
	struct net_frame *f;

	pthread_mutex_lock(&((struct viommu_net_switch *)p->be)->mu);
	f = p->head;
	pthread_mutex_unlock(&((struct viommu_net_switch *)p->be)->mu);
	return f;
}

static void sw_consume(struct net_port *p)
{
	struct viommu_net_switch *sw = p->be;
	struct net_frame *f;

	pthread_mutex_lock(&sw->mu);
	f = p->head;
	if (f) {
		p->head = f->next;
		if (!p->head)
			p->tail = NULL;
		p->count--;
	}
	pthread_mutex_unlock(&sw->mu);
	xfree(&sw->alloc, f);
}

/* __flush() - free @p's queue.  mu held. */
static void __flush(struct net_port *p)
{
	while (p->head) {
		struct net_frame *f = p->head;

		p->head = f->next;
		xfree(&((struct viommu_net_switch *)p->be)->alloc, f);
	}
	p->tail = NULL;
	p->count = 0;
}

static void sw_flush(struct net_port *p)
{
	pthread_mutex_lock(&((struct viommu_net_switch *)p->be)->mu);
	__flush(p);
	pthread_mutex_unlock(&((struct viommu_net_switch *)p->be)->mu);
}

static void sw_set_up(struct net_port *p, bool up)
{
	pthread_mutex_lock(&((struct viommu_net_switch *)p->be)->mu);
	p->up = up;
	pthread_mutex_unlock(&((struct viommu_net_switch *)p->be)->mu);
}

static void free_switch(struct viommu_net_switch *sw)
{
	struct viommu_allocator alloc = sw->alloc;

	pthread_mutex_destroy(&sw->mu);
	xfree(&alloc, sw->ports);
	xfree(&alloc, sw->macs);
	xfree(&alloc, sw);
}

static int sw_join(void *be, const uint8_t mac[6],
		   void (*rx_ready)(void *opaque), void *opaque,
		   struct net_port **out)
{
	struct viommu_net_switch *sw = be;
	struct net_port *p = xzalloc(&sw->alloc, sizeof(*p));
	int err = -ENOSPC;

	if (!p)
		return -ENOMEM;
	pthread_mutex_lock(&sw->mu);
	for (uint32_t i = 0; i < sw->nports_max; i++) {
		if (sw->ports[i])
			continue;
		p->be = sw;
		p->idx = i;
		p->rx_ready = rx_ready;
		p->opaque = opaque;
		p->up = true;
		sw->ports[i] = p;
		sw->refs++;
		sw->st.ports++;
		__learn(sw, mac, p);
		err = 0;
		break;
	}
	pthread_mutex_unlock(&sw->mu);
	if (err)
		xfree(&sw->alloc, p);
	else
		*out = p;
	return err;
}

static void sw_leave(struct net_port *p)
{
	struct viommu_net_switch *sw = p->be;
	bool last;

	pthread_mutex_lock(&sw->mu);
	for (uint32_t i = 0; i < sw->nmac; i++)
		if (sw->macs[i].port == p->idx + 1)
			sw->macs[i].port = 0;
	__flush(p);
	sw->ports[p->idx] = NULL;
	sw->st.ports--;
	last = --sw->refs == 0;
	pthread_mutex_unlock(&sw->mu);
	xfree(&sw->alloc, p);
	if (last)
		free_switch(sw);
}

const struct net_backend_ops net_switch_ops = {
	.join = sw_join,
	.leave = sw_leave,
	.send = sw_send,
	.peek = sw_peek,
	.consume = sw_consume,
	.flush = sw_flush,
	.set_up = sw_set_up,
};

/*
 * The config and stats structs as the first release had them: what a
 * @size of 0 means (pinned, so that the structs can grow).
 */
#define SW_CONFIG_SIZE_V1 \
	(offsetof(struct viommu_net_switch_config, log) + \
	 sizeof(struct viommu_log))
#define SW_STATS_SIZE_V1 \
	(offsetof(struct viommu_net_switch_stats, ports) + sizeof(uint32_t))


VIOMMU_EXPORT int
viommu_net_switch_create(const struct viommu_net_switch_config *user,
			 struct viommu_net_switch **out)
{
	struct viommu_allocator alloc = { 0 };
	struct viommu_net_switch_config c;
	struct viommu_net_switch *sw;

	if (!user || !out || user->size > sizeof(c))
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	memcpy(&c, user, user->size ? user->size : SW_CONFIG_SIZE_V1);
	if (!c.mac_table)
		c.mac_table = DEF_MAC_TABLE;
	if (!c.queue_depth)
		c.queue_depth = DEF_QUEUE_DEPTH;
	if (!c.max_ports)
		c.max_ports = DEF_PORTS;
	if (c.mac_table > MAX_MAC_TABLE || c.queue_depth > MAX_QUEUE_DEPTH ||
	    c.max_ports > MAX_PORTS)
		return -EINVAL;
	sw = xzalloc(&alloc, sizeof(*sw));
	if (!sw)
		return -ENOMEM;
	sw->alloc = alloc;
	sw->log = c.log;
	sw->depth = c.queue_depth;
	sw->nmac = c.mac_table;
	sw->nports_max = c.max_ports;
	sw->refs = 1;
	sw->ports = xzalloc(&alloc, c.max_ports * sizeof(*sw->ports));
	sw->macs = xzalloc(&alloc, c.mac_table * sizeof(*sw->macs));
	if (!sw->ports || !sw->macs || pthread_mutex_init(&sw->mu, NULL)) {
		xfree(&alloc, sw->ports);
		xfree(&alloc, sw->macs);
		xfree(&alloc, sw);
		return -ENOMEM;
	}
	*out = sw;
	return 0;
}

VIOMMU_EXPORT void viommu_net_switch_destroy(struct viommu_net_switch *sw)
{
	bool last;

	if (!sw)
		return;
	pthread_mutex_lock(&sw->mu);
	sw->dead = true;
	last = --sw->refs == 0;
	pthread_mutex_unlock(&sw->mu);
	if (last)
		free_switch(sw);
}

VIOMMU_EXPORT int viommu_net_switch_stats(struct viommu_net_switch *sw,
					  struct viommu_net_switch_stats *st)
{
	struct viommu_net_switch_stats s;
	size_t n;

	if (!sw || !st || st->size > sizeof(s))
		return -EINVAL;
	n = st->size ? st->size : SW_STATS_SIZE_V1;
	pthread_mutex_lock(&sw->mu);
	s = sw->st;
	pthread_mutex_unlock(&sw->mu);
	s.size = n;
	memcpy(st, &s, n);
	return 0;
}
