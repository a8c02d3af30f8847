/*
 * virtio_net_pkt.c - the packet paths of the virtio-net model (VIRTIO 1.3
 * §5.1.6; rule IDs from docs/VIRTIO-NET.md).
 *
 * Transmit: a TX chain is device-readable only: a 12-byte virtio_net_hdr
 * (it may span descriptors) then the frame.  The chain is translated piece
 * by piece (IOVA mode: viommu_translate() for reading, using the
 * contiguous length each translation returns) and copied into the
 * device's transmit buffer; a fault drops the packet (N8).  The header is
 * validated (N4-N6) and the frame handed to the backend with its gso and
 * checksum fields; the device never segments or checksums on transmit.
 * The chain goes back to the driver with used length 0 in every case.
 *
 * Receive: the oldest frame the backend queued for this port picks a
 * receive queue (a flow hash over the IP addresses, modulo the pairs in
 * use), then takes as many receive chains as it needs (one without
 * MRG_RXBUF), translates every byte range it will write for writing
 * (N9), and only then writes the header (num_buffers = chains taken) and
 * the frame.  Too few chains: they are given back (vq_unpop) and the
 * frame waits for the driver's next RX kick.  A fault: the chains go back
 * with used length 0, nothing written, the frame dropped.  The offload
 * rules of the receiver (N10, N11) are applied first: a GSO frame the
 * receiver cannot take is dropped and counted; a checksum the sender
 * left to the device is completed when the receiver lacks GUEST_CSUM.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "devices/virtio_net_internal.h"
#include "devices/net_gso.h"
#include "base/util.h"
#include "mem/mem_internal.h"

static bool has(const struct viommu_virtio_net *net, unsigned int bit)
{
	return __vdev_has(&net->dev, bit);
}

/* ------------------------------------------------------------------ */
/* Translation into pieces                                            */

int net_map(struct viommu_virtio_net *net, const struct vq *vq,
	    const struct vq_elem *e, bool write, uint32_t off, uint32_t len,
	    bool may_inject)
{
	return vq_elem_pieces(vq->io, net->dev.mem, e, write, off, len,
			      may_inject, net->pc, NET_MAX_PIECES, &net->npc);
}

int net_copy(struct viommu_virtio_net *net, uint32_t from, uint8_t *buf,
	     bool to_guest)
{
	return vq_pieces_copy(net->dev.mem, net->pc, from, net->npc, buf,
			      to_guest);
}

/* ------------------------------------------------------------------ */
/* Transmit                                                           */

/* tx_refuse() - a TX chain refused by rule @rule (rate-limited line). */
static void tx_refuse(struct viommu_virtio_net *net, const char *rule,
		      const char *why)
{
	rl_warn(&net->dev.rl, &net->log,
		"virtio-net: TX packet dropped (%s): %s", rule, why);
	ATOMIC_INC(net->st.tx_bad);
	ATOMIC_INC(net->st.tx_dropped);
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

/*
 * check_tx_hdr() - the rules of N5/N6 for the header @h of a frame of
 * @len bytes.  Return: NULL, or why it is refused.
 */
static const char *check_tx_hdr(struct viommu_virtio_net *net,
				struct net_hdr *h, uint32_t len)
{
	uint8_t type = h->gso_type;

	h->flags &= NET_HDR_F_NEEDS_CSUM; /* others mean nothing on TX */
	if (h->flags & NET_HDR_F_NEEDS_CSUM) {
		if (!has(net, VIOMMU_VIRTIO_NET_F_CSUM))
			return "NEEDS_CSUM without VIRTIO_NET_F_CSUM";
		if ((uint32_t)h->csum_start + h->csum_offset + 2 > len)
			return "checksum field outside the frame";
	}
	if (type == NET_HDR_GSO_NONE) {
		h->gso_size = 0;
		if (net->mtu && len > net->mtu + NET_ETH_HLEN)
			return "frame longer than the MTU";
		return NULL;
	}
	if (type == NET_HDR_GSO_TCPV4 && !has(net,
					      VIOMMU_VIRTIO_NET_F_HOST_TSO4))
		return "GSO_TCPV4 without HOST_TSO4";
	if (type == NET_HDR_GSO_TCPV6 && !has(net,
					      VIOMMU_VIRTIO_NET_F_HOST_TSO6))
		return "GSO_TCPV6 without HOST_TSO6";
	if (type != NET_HDR_GSO_TCPV4 && type != NET_HDR_GSO_TCPV6)
		return "gso_type not offered (UDP, ECN or unknown)";
	if (!(h->flags & NET_HDR_F_NEEDS_CSUM))
		return "GSO without NEEDS_CSUM";
	if (h->gso_size == 0 || h->gso_size >= len)
		return "gso_size zero or not below the frame length";
	if (h->hdr_len > len)
		return "hdr_len past the frame";
	return NULL;
}

/* tx_one() - one popped TX chain (N3-N8). */
static void tx_one(struct viommu_virtio_net *net, struct vq *vq,
		   const struct vq_elem *e)
{
	struct net_hdr h;
	const char *why;
	uint32_t len;
	int err;

	if (e->write_len)
		return tx_refuse(net, "N3", "TX chain with a device-writable "
				 "part");
	if (e->read_len < NET_HDR_BYTES + NET_ETH_HLEN)
		return tx_refuse(net, "N4", "shorter than the header plus an "
				 "Ethernet header");
	len = e->read_len - NET_HDR_BYTES;
	if (len > NET_MAX_FRAME)
		return tx_refuse(net, "N4", "frame longer than 64 KiB + 256");
	net->npc = 0;
	err = net_map(net, vq, e, false, 0, e->read_len, true);
	if (!err)
		err = net_copy(net, 0, net->txbuf, false);
	if (err == -EFAULT) {
		ATOMIC_INC(net->st.tx_faults);
		ATOMIC_INC(net->st.tx_dropped);
		return;
	}
	if (err)
		return tx_refuse(net, "N8", err == -E2BIG ?
				 "buffer in too many translated pieces" :
				 "buffer not guest RAM");
	h.flags = net->txbuf[0];
	h.gso_type = net->txbuf[1];
	h.hdr_len = get16(net->txbuf + 2);
	h.gso_size = get16(net->txbuf + 4);
	h.csum_start = get16(net->txbuf + 6);
	h.csum_offset = get16(net->txbuf + 8);
	why = check_tx_hdr(net, &h, len);
	if (why)
		return tx_refuse(net, "N5", why);
	if (!net->link_up) {
		ATOMIC_INC(net->st.tx_dropped);
		return;
	}
	if (!net->port) {
		ATOMIC_INC(net->st.tx_no_backend);
		return;
	}
	net->be->send(net->port, &h, net->txbuf + NET_HDR_BYTES, len);
	ATOMIC_INC(net->st.tx_packets);
	__atomic_fetch_add(&net->st.tx_bytes, len, __ATOMIC_RELAXED);
}

void __net_tx(struct viommu_virtio_net *net, uint16_t pair)
{
	struct vq *vq = &net->dev.vqs[net_txq(pair)];
	uint32_t n;

	net->tx_more[pair] = false;
	for (n = 0; n < NET_TX_BUDGET; n++) {
		struct vq_elem e;
		int err = vq_pop(vq, &e);

		if (err == -ENOENT)
			break;
		if (err) {
			__net_needs_reset(net, NULL); /* the queue said why */
			return;
		}
		tx_one(net, vq, &e);
		if (vq_push(vq, &e, 0)) {
			__net_needs_reset(net, NULL);
			return;
		}
	}
	if (n == NET_TX_BUDGET && vq_has_avail(vq)) {
		net->tx_more[pair] = true; /* N14 */
		ATOMIC_INC(net->st.budget_yields);
		__net_wake(net);
	}
	if (n)
		__vdev_queue_done(&net->dev, net_txq(pair));
}

/* ------------------------------------------------------------------ */
/* Receive                                                            */

/* csum_complete() - the checksum the sender left to the device (N11):
 * ones' complement sum from @start to the end, into the field at
 * @start + @off (which holds the pseudo-header sum). */
static void csum_complete(uint8_t *d, uint32_t len, uint16_t start,
			  uint16_t off)
{
	uint64_t sum = 0;
	uint32_t i = start;
	uint16_t r;

	for (; i + 1 < len; i += 2)
		sum += (uint32_t)d[i] << 8 | d[i + 1];
	if (i < len)
		sum += (uint32_t)d[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	r = (uint16_t)~sum;
	if (r == 0)
		r = 0xffff;
	d[start + off] = (uint8_t)(r >> 8);
	d[start + off + 1] = (uint8_t)r;
}

/* pick_pair() - the receive queue pair of a frame: a hash of its IP
 * addresses, so a flow stays on one queue (N13). */
static uint16_t pick_pair(const struct viommu_virtio_net *net,
			  const struct net_frame *f)
{
	uint32_t h = 2166136261u, from, to;
	uint16_t et;

	if (net->curr_pairs < 2 || f->len < NET_ETH_HLEN)
		return 0;
	et = (uint16_t)(f->data[12] << 8 | f->data[13]);
	if (et == 0x0800) {
		from = 26;
		to = 34;
	} else if (et == 0x86dd) {
		from = 22;
		to = 54;
	} else {
		return 0;
	}
	if (f->len < to)
		return 0;
	for (uint32_t i = from; i < to; i++)
		h = (h ^ f->data[i]) * 16777619u;
	return (uint16_t)(h % net->curr_pairs);
}

#define RX_DONE 0
#define RX_NOBUF 1

/* rx_drop() - count a frame taken from the queue and not delivered. */
static int rx_drop(struct viommu_virtio_net *net, uint64_t *ctr)
{
	if (ctr)
		ATOMIC_INC(*ctr);
	ATOMIC_INC(net->st.rx_dropped);
	return RX_DONE;
}

/* give_back() - return chains [0, @n) to the driver unwritten (N9). */
static int give_back(struct viommu_virtio_net *net, struct vq *vq,
		     uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (vq_push(vq, &net->rx_elems[i], 0))
			return -EIO;
	return 0;
}

/*
 * copy_out() - write the header @hdr then the frame @data of @len bytes
 * into pieces [0, net->npc) (they cover exactly that many bytes).
 * Return: 0; -EIO (memory layer refused).
 */
static int copy_out(struct viommu_virtio_net *net, const uint8_t *hdr,
		    const uint8_t *data, uint32_t len)
{
	uint32_t pos = 0; /* byte of hdr ++ data */

	for (uint32_t i = 0; i < net->npc; i++) {
		const struct vq_piece *p = &net->pc[i];
		uint32_t done = 0;

		while (done < p->len) {
			const uint8_t *src;
			uint32_t n;

			if (pos < NET_HDR_BYTES) {
				src = hdr + pos;
				n = NET_HDR_BYTES - pos;
			} else {
				src = data + (pos - NET_HDR_BYTES);
				n = NET_HDR_BYTES + len - pos;
			}
			n = MIN(n, p->len - done);
			if (p->hva)
				memcpy(p->hva + done, src, n);
			else if (mem_access_in(net->dev.mem, p->gpa + done,
					       (void *)src, n, true))
				return -EIO;
			done += n;
			pos += n;
		}
	}
	return 0;
}

/* rx_abort() - give the chains taken for a frame back: unwritten and
 * still available (@unpop), or used with length 0. */
static int rx_abort(struct viommu_virtio_net *net, struct vq *vq,
		    uint32_t nb, bool unpop, bool *pushed)
{
	if (unpop) {
		while (nb)
			vq_unpop(vq, &net->rx_elems[--nb]);
		return 0;
	}
	if (nb)
		*pushed = true;
	return give_back(net, vq, nb);
}

/* gso_ok() - whether the receiver negotiated what a frame's gso_type
 * needs (N10). */
static bool gso_ok(const struct viommu_virtio_net *net, uint8_t type)
{
	if (type == NET_HDR_GSO_NONE)
		return true;
	if (type == NET_HDR_GSO_TCPV4)
		return has(net, VIOMMU_VIRTIO_NET_F_GUEST_TSO4);
	if (type == NET_HDR_GSO_TCPV6)
		return has(net, VIOMMU_VIRTIO_NET_F_GUEST_TSO6);
	return false;
}

/*
 * rx_one() - deliver frame @f (N9-N13) on the queue it picks (*@qout);
 * *@pushed tells whether used entries were written.  Return: RX_DONE
 * (delivered or dropped: the caller consumes it), RX_NOBUF (not enough
 * receive buffers: wait for the next RX kick), or -EIO (ring broken).
 */
static int rx_one(struct viommu_virtio_net *net, struct net_frame *f,
		  bool *pushed, uint16_t *qout)
{
	uint16_t q = net_rxq(pick_pair(net, f));
	struct vq *vq = &net->dev.vqs[q];
	bool mrg = has(net, VIOMMU_VIRTIO_NET_F_MRG_RXBUF);
	uint32_t total = NET_HDR_BYTES + f->len, got = 0, nb = 0;
	uint32_t maxb = mrg ? MIN(net->qsize, UINT16_MAX) : 1;
	uint8_t hdr[NET_HDR_BYTES];
	struct net_hdr h = f->hdr;
	int err;

	*qout = q;
	*pushed = false;
	if (!vq->ready)
		return rx_drop(net, NULL);
	if (!gso_ok(net, h.gso_type))
		return rx_drop(net, &net->st.rx_gso_dropped);
	/* Take chains until the frame fits, translating each as it comes
	 * (its segments are only valid until the next pop): N9, N12. */
	net->npc = 0;
	while (got < total) {
		struct vq_elem *e = &net->rx_elems[nb];
		uint32_t n;

		if (nb == maxb) {
			err = rx_abort(net, vq, nb, true, pushed);
			return err ? err : rx_drop(net, &net->st.rx_too_big);
		}
		err = vq_pop(vq, e);
		if (err == -ENOENT) {
			(void)rx_abort(net, vq, nb, true, pushed);
			return RX_NOBUF;
		}
		if (err)
			return -EIO;
		nb++;
		if (!mrg && e->write_len < total) {
			(void)rx_abort(net, vq, nb, true, pushed);
			return rx_drop(net, &net->st.rx_too_big);
		}
		if (mrg && e->write_len < NET_HDR_BYTES) {
			rl_warn(&net->dev.rl, &net->log, "virtio-net: RX "
				"buffer shorter than the header (N12)");
			err = rx_abort(net, vq, nb, false, pushed);
			return err ? err : rx_drop(net, NULL);
		}
		n = MIN(e->write_len, total - got);
		err = net_map(net, vq, e, true, 0, n, true);
		if (err) {
			bool fault = err == -EFAULT;

			if (!fault)
				rl_warn(&net->dev.rl, &net->log, "virtio-net: "
					"RX buffer not writable guest RAM (N9)");
			err = rx_abort(net, vq, nb, false, pushed);
			return err ? err : rx_drop(net, fault ?
					&net->st.rx_faults : NULL);
		}
		net->rx_used[nb - 1] = n;
		got += n;
	}
	/* N11: offloads as the receiver negotiated them. */
	if ((h.flags & NET_HDR_F_NEEDS_CSUM) &&
	    !has(net, VIOMMU_VIRTIO_NET_F_GUEST_CSUM)) {
		csum_complete(f->data, f->len, h.csum_start, h.csum_offset);
		ATOMIC_INC(net->st.csum_completed);
		h.flags = 0;
		h.csum_start = h.csum_offset = 0;
	}
	hdr[0] = h.flags & NET_HDR_F_NEEDS_CSUM;
	hdr[1] = h.gso_type;
	put16(hdr + 2, h.gso_type ? h.hdr_len : 0);
	put16(hdr + 4, h.gso_type ? h.gso_size : 0);
	put16(hdr + 6, hdr[0] ? h.csum_start : 0);
	put16(hdr + 8, hdr[0] ? h.csum_offset : 0);
	put16(hdr + 10, (uint16_t)nb);
	if (copy_out(net, hdr, f->data, f->len)) {
		err = rx_abort(net, vq, nb, false, pushed);
		return err ? err : rx_drop(net, NULL);
	}
	*pushed = true;
	for (uint32_t i = 0; i < nb; i++)
		if (vq_push(vq, &net->rx_elems[i], net->rx_used[i]))
			return -EIO;
	ATOMIC_INC(net->st.rx_packets);
	__atomic_fetch_add(&net->st.rx_bytes, f->len, __ATOMIC_RELAXED);
	return RX_DONE;
}

/*
 * rx_segment() - the next TCP segment of GSO frame @f, which the receiver
 * cannot take whole (N10), through rx_one(); net->seg_off says which.
 * Return: as rx_one(), plus *@last: the frame is done with (its last
 * segment went, or it cannot be segmented).
 */
static int rx_segment(struct viommu_virtio_net *net, struct net_frame *f,
		      bool *pushed, uint16_t *qout, bool *last)
{
	struct net_frame *s = net->segf;
	uint32_t next = 0;
	int r;

	*last = true;
	*pushed = false;
	*qout = 0;
	if (net->seg_of != f) { /* a new frame */
		net->seg_of = f;
		net->seg_off = 0;
	}
	if (net_gso_segment(f->data, f->len, f->hdr.gso_type,
			    f->hdr.gso_size, net->seg_off, s->data,
			    NET_MAX_FRAME, &s->len, &next)) {
		net->seg_of = NULL;
		return rx_drop(net, &net->st.rx_gso_dropped);
	}
	/* a plain frame with its checksums complete */
	s->hdr = (struct net_hdr){ 0 };
	r = rx_one(net, s, pushed, qout);
	if (r != RX_DONE)
		return r; /* the same segment again next time */
	if (!net->seg_off)
		ATOMIC_INC(net->st.gso_segmented);
	net->seg_off = next;
	*last = next == 0;
	if (*last)
		net->seg_of = NULL;
	return r;
}

void __net_rx(struct viommu_virtio_net *net)
{
	bool dirty[VIOMMU_VIRTIO_NET_MAX_PAIRS] = { false };
	struct net_frame *f = NULL;
	uint32_t n;

	if (!net->port)
		return;
	for (n = 0; n < NET_RX_BUDGET; n++) {
		bool pushed;
		uint16_t q;
		int r;

		bool last = true;

		f = net->be->peek(net->port);
		if (!f)
			break;
		if (f->hdr.gso_type != NET_HDR_GSO_NONE &&
		    !gso_ok(net, f->hdr.gso_type))
			r = rx_segment(net, f, &pushed, &q, &last);
		else
			r = rx_one(net, f, &pushed, &q);
		if (pushed)
			dirty[q / 2] = true;
		if (r < 0) {
			__net_needs_reset(net, NULL);
			return;
		}
		if (r == RX_NOBUF)
			break;
		if (!last)
			continue; /* more segments of this frame */
		net->be->consume(net->port);
		f = NULL;
	}
	if (n == NET_RX_BUDGET && net->be->peek(net->port)) {
		ATOMIC_INC(net->st.budget_yields); /* N14 */
		__net_wake(net);
	}
	for (uint16_t p = 0; p < VIOMMU_VIRTIO_NET_MAX_PAIRS; p++)
		if (dirty[p])
			__vdev_queue_done(&net->dev, net_rxq(p));
}
