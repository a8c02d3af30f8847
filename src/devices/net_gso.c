/*
 * net_gso.c - software TCP segmentation (net_gso.h).
 *
 * The device never segments on transmit: a TSO frame crosses the switch
 * as one frame with its gso fields (docs/VIRTIO-NET.md N6).  Only on
 * delivery to a NIC whose driver did not negotiate the matching
 * GUEST_TSO4 / GUEST_TSO6 is it cut into MSS-sized segments here, one at
 * a time (virtio_net_pkt.c keeps the offset of the next one, so a frame
 * whose segments do not all fit the receive buffers at once resumes where
 * it stopped).  Pure functions: no device state, no allocation.
 */
#include "devices/net_gso.h"
#include "devices/net_backend.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define ETH_TYPE_IPV4 0x0800u
#define ETH_TYPE_IPV6 0x86ddu
#define IPPROTO_TCP_ 6u
#define TCP_FIN 0x01u
#define TCP_PSH 0x08u
#define TCP_CWR 0x80u

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* sum() - ones' complement sum of @n bytes of @p added to @s (unfolded). */
static uint64_t sum(const uint8_t *p, uint32_t n, uint64_t s)
{
	uint32_t i = 0;

	for (; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (i < n)
		s += (uint32_t)p[i] << 8;
	return s;
}

/* fold() - the one's complement of the folded sum @s. */
static uint16_t fold(uint64_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* The headers of a TSO frame, as parsed. */
struct hdrs {
	uint32_t l3;      /* IP header offset */
	uint32_t l4;      /* TCP header offset */
	uint32_t payload; /* payload offset (all headers) */
	bool v6;
};

/* parse() - the frame's Ethernet, IP and TCP headers; -EINVAL if not. */
static int parse(const uint8_t *f, uint32_t len, uint8_t type, struct hdrs *h)
{
	uint16_t et;
	uint32_t doff;

	if (len < NET_ETH_HLEN)
		return -EINVAL;
	et = get16(f + 12);
	h->l3 = NET_ETH_HLEN;
	if (et == ETH_TYPE_IPV4 && type == NET_HDR_GSO_TCPV4) {
		uint32_t ihl;

		if (len < h->l3 + 20 || (f[h->l3] >> 4) != 4)
			return -EINVAL;
		ihl = (f[h->l3] & 0xfu) * 4u;
		/* no fragments: MF clear, offset 0 (DF may be set) */
		if (ihl < 20 || f[h->l3 + 9] != IPPROTO_TCP_ ||
		    (get16(f + h->l3 + 6) & 0x3fff))
			return -EINVAL;
		h->l4 = h->l3 + ihl;
		h->v6 = false;
	} else if (et == ETH_TYPE_IPV6 && type == NET_HDR_GSO_TCPV6) {
		if (len < h->l3 + 40 || (f[h->l3] >> 4) != 6 ||
		    f[h->l3 + 6] != IPPROTO_TCP_)
			return -EINVAL;
		h->l4 = h->l3 + 40;
		h->v6 = true;
	} else {
		return -EINVAL;
	}
	if (len < h->l4 + 20)
		return -EINVAL;
	doff = (uint32_t)(f[h->l4 + 12] >> 4) * 4u;
	if (doff < 20 || len < h->l4 + doff)
		return -EINVAL;
	h->payload = h->l4 + doff;
	return 0;
}

/* tcp_csum() - the TCP checksum of the segment @s (@n bytes, headers @h). */
static uint16_t tcp_csum(const uint8_t *s, uint32_t n, const struct hdrs *h)
{
	uint32_t tcp_len = n - h->l4;
	uint64_t acc = 0;

	if (h->v6) {
		acc = sum(s + h->l3 + 8, 32, 0); /* source, destination */
		acc += tcp_len >> 16;
		acc += tcp_len & 0xffff;
	} else {
		acc = sum(s + h->l3 + 12, 8, 0);
		acc += tcp_len;
	}
	acc += IPPROTO_TCP_;
	return fold(sum(s + h->l4, tcp_len, acc));
}

/* net_gso_segment() - see net_gso.h. */
int net_gso_segment(const uint8_t *frame, uint32_t len, uint8_t type,
		    uint16_t mss, uint32_t off, uint8_t *out, uint32_t cap,
		    uint32_t *out_len, uint32_t *next)
{
	struct hdrs h;
	uint32_t plen, seg, n, k, seq;
	uint8_t flags;
	uint16_t c;

	if (!frame || !out || !out_len || !next || !mss ||
	    parse(frame, len, type, &h))
		return -EINVAL;
	plen = len - h.payload;
	if (off % mss || (off && off >= plen))
		return -EINVAL;
	seg = plen - off < mss ? plen - off : mss;
	n = h.payload + seg;
	if (n > cap)
		return -ENOSPC;
	k = off / mss;
	memcpy(out, frame, h.payload);
	memcpy(out + h.payload, frame + h.payload + off, seg);
	if (h.v6) {
		put16(out + h.l3 + 4, (uint16_t)(n - h.l4));
	} else {
		put16(out + h.l3 + 2, (uint16_t)(n - h.l3));
		put16(out + h.l3 + 4, (uint16_t)(get16(frame + h.l3 + 4) + k));
		put16(out + h.l3 + 10, 0);
		put16(out + h.l3 + 10, fold(sum(out + h.l3, h.l4 - h.l3, 0)));
	}
	seq = (uint32_t)frame[h.l4 + 4] << 24 |
	      (uint32_t)frame[h.l4 + 5] << 16 |
	      (uint32_t)frame[h.l4 + 6] << 8 | frame[h.l4 + 7];
	seq += off;
	out[h.l4 + 4] = (uint8_t)(seq >> 24);
	out[h.l4 + 5] = (uint8_t)(seq >> 16);
	out[h.l4 + 6] = (uint8_t)(seq >> 8);
	out[h.l4 + 7] = (uint8_t)seq;
	flags = frame[h.l4 + 13];
	if (off + seg < plen)
		flags &= (uint8_t)~(TCP_FIN | TCP_PSH);
	if (k)
		flags &= (uint8_t)~TCP_CWR;
	out[h.l4 + 13] = flags;
	put16(out + h.l4 + 16, 0);
	c = tcp_csum(out, n, &h);
	put16(out + h.l4 + 16, c);
	*out_len = n;
	*next = off + seg < plen ? off + seg : 0;
	return 0;
}
