/*
 * test_net_gso.c - software TCP segmentation (src/devices/net_gso.c,
 * docs/VIRTIO-NET.md N10): the segments of IPv4 and IPv6 TSO frames,
 * checked as a receiver would check them (lengths, IPv4 header checksum,
 * TCP checksum over the pseudo-header, sequence numbers, IP IDs, flags,
 * payload), and the frames that must be refused.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "devices/net_backend.h"
#include "devices/net_gso.h"

#define SEQ0 0x7ffffc00u /* wraps inside the frame */

/* csum() - ones' complement sum of @n bytes folded, plus @s. */
static uint16_t csum(const uint8_t *p, uint32_t n, uint32_t s)
{
	for (uint32_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static uint16_t g16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t g32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/*
 * tso() - an Ethernet + IPv4 (@v6: IPv6) + TCP (with 12 bytes of options)
 * frame carrying @plen payload bytes, TCP flags @flags, as a TSO sender
 * leaves it (IP length of the whole, checksum fields not final).
 * Return: the frame length; the payload offset in *@poff.
 */
static uint32_t tso(uint8_t *f, bool v6, uint32_t plen, uint8_t flags,
		    uint32_t *poff)
{
	uint32_t l3 = 14, l4 = v6 ? l3 + 40 : l3 + 20, doff = 32;
	uint32_t n = l4 + doff + plen;

	memset(f, 0, l4 + doff);
	memcpy(f, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	if (v6) {
		f[12] = 0x86;
		f[13] = 0xdd;
		f[l3] = 0x60;
		f[l3 + 4] = (uint8_t)((n - l4) >> 8);
		f[l3 + 5] = (uint8_t)(n - l4);
		f[l3 + 6] = 6;
		f[l3 + 7] = 64;
		for (int i = 0; i < 32; i++)
			f[l3 + 8 + i] = (uint8_t)(0xfd + i);
	} else {
		f[12] = 0x08;
		f[13] = 0x00;
		f[l3] = 0x45;
		f[l3 + 6] = 0x40; /* DF */
		f[l3 + 4] = 0x12;
		f[l3 + 5] = 0x34; /* ID */
		f[l3 + 8] = 64;
		f[l3 + 9] = 6;
		memcpy(f + l3 + 12, "\x0a\x0d\x00\x01\x0a\x0d\x00\x02", 8);
	}
	f[l4] = 0x13;
	f[l4 + 1] = 0x89;
	f[l4 + 2] = 0xc0;
	f[l4 + 3] = 0x01;
	f[l4 + 4] = SEQ0 >> 24;
	f[l4 + 5] = (uint8_t)(SEQ0 >> 16);
	f[l4 + 6] = (uint8_t)(SEQ0 >> 8);
	f[l4 + 7] = (uint8_t)SEQ0;
	f[l4 + 12] = (uint8_t)(doff / 4) << 4;
	f[l4 + 13] = flags;
	f[l4 + 16] = 0xab; /* a partial checksum: must be replaced */
	memset(f + l4 + 20, 1, 12); /* NOP options */
	for (uint32_t i = 0; i < plen; i++)
		f[l4 + doff + i] = (uint8_t)(i * 7 + (i >> 9));
	*poff = l4 + doff;
	return n;
}

/* tcp_ok() - whether segment @s (@n bytes) has a valid TCP checksum. */
static bool tcp_ok(const uint8_t *s, uint32_t n, bool v6)
{
	uint32_t l4 = v6 ? 54 : 34, tl = n - l4, ps = 6 + tl;

	if (v6)
		ps += csum(s + 22, 32, 0);
	else
		ps += csum(s + 26, 8, 0);
	return csum(s + l4, tl, ps) == 0xffff;
}

/* run() - segment a frame of @plen payload with MSS @mss and check all. */
static void run(bool v6, uint32_t plen, uint16_t mss, uint8_t flags)
{
	uint8_t *f = malloc(70000), *s = malloc(70000);
	uint32_t poff, n = tso(f, v6, plen, flags, &poff), off = 0, next;
	uint32_t len, k = 0, got = 0, l4 = v6 ? 54 : 34;
	uint8_t type = v6 ? NET_HDR_GSO_TCPV6 : NET_HDR_GSO_TCPV4;

	REQUIRE(f && s);
	do {
		uint32_t seg = plen - off < mss ? plen - off : mss;
		bool last = off + seg == plen;

		CHECK_EQ(net_gso_segment(f, n, type, mss, off, s, 70000, &len,
					 &next), 0);
		CHECK_EQ(len, poff + seg);
		CHECK(memcmp(s, f, 14) == 0);
		if (v6) {
			CHECK_EQ(g16(s + 18), len - 54);
		} else {
			CHECK_EQ(g16(s + 16), len - 14);
			CHECK_EQ(g16(s + 18), 0x1234 + k);
			CHECK_EQ(csum(s + 14, 20, 0), 0xffff);
		}
		CHECK_EQ(g32(s + l4 + 4), SEQ0 + off);
		CHECK_EQ(s[l4 + 13] & 0x09, last ? flags & 0x09 : 0);
		CHECK_EQ(s[l4 + 13] & 0x80, k ? 0 : flags & 0x80);
		CHECK_EQ(s[l4 + 13] & 0x10, flags & 0x10); /* ACK kept */
		CHECK(tcp_ok(s, len, v6));
		CHECK(memcmp(s + l4 + 20, f + l4 + 20, 12) == 0);
		CHECK(memcmp(s + poff, f + poff + off, seg) == 0);
		CHECK_EQ(next, last ? 0 : off + seg);
		got += seg;
		off = next;
		k++;
	} while (off && k < 100);
	CHECK_EQ(got, plen);
	CHECK_EQ(k, (plen + mss - 1) / mss);
	free(f);
	free(s);
}

TEST(n10_gso_ipv4_64k_segments_valid_in_order)
{
	run(false, 65536 - 66, 1448, 0x19 | 0x80); /* FIN PSH ACK CWR */
}

TEST(n10_gso_ipv4_exact_multiple_and_short_tail)
{
	run(false, 1448 * 3, 1448, 0x18);
	run(false, 1448 * 3 + 1, 1448, 0x18);
	run(false, 10, 1448, 0x18); /* one segment only */
}

TEST(n10_gso_ipv6_segments_valid_in_order)
{
	run(true, 40000, 1428, 0x19);
}

TEST(n10_gso_refuses_what_it_cannot_segment)
{
	uint8_t *f = malloc(70000), *s = malloc(70000);
	uint32_t poff, n = tso(f, false, 5000, 0x10, &poff), len, next;

	REQUIRE(f && s);
	/* wrong type for the IP version, unknown type */
	CHECK_EQ(net_gso_segment(f, n, NET_HDR_GSO_TCPV6, 1448, 0, s, 70000,
				 &len, &next), -EINVAL);
	CHECK_EQ(net_gso_segment(f, n, NET_HDR_GSO_UDP, 1448, 0, s, 70000,
				 &len, &next), -EINVAL);
	/* MSS 0; an offset not on a segment; past the payload */
	CHECK_EQ(net_gso_segment(f, n, NET_HDR_GSO_TCPV4, 0, 0, s, 70000,
				 &len, &next), -EINVAL);
	CHECK_EQ(net_gso_segment(f, n, NET_HDR_GSO_TCPV4, 1448, 100, s, 70000,
				 &len, &next), -EINVAL);
	CHECK_EQ(net_gso_segment(f, n, NET_HDR_GSO_TCPV4, 1000, 5000, s, 70000,
				 &len, &next), -EINVAL);
	/* the output too small */
	CHECK_EQ(net_gso_segment(f, n, NET_HDR_GSO_TCPV4, 1448, 0, s, 100,
				 &len, &next), -ENOSPC);
	/* truncated inside the TCP header or its options */
	CHECK_EQ(net_gso_segment(f, 40, NET_HDR_GSO_TCPV4, 1448, 0, s, 70000,
				 &len, &next), -EINVAL);
	CHECK_EQ(net_gso_segment(f, poff - 1, NET_HDR_GSO_TCPV4, 1448, 0, s,
				 70000, &len, &next), -EINVAL);
	/* not TCP; a fragment; IHL below 5; data offset below 5 */
	f[23] = 17;
	CHECK_EQ(net_gso_segment(f, n, NET_HDR_GSO_TCPV4, 1448, 0, s, 70000,
				 &len, &next), -EINVAL);
	f[23] = 6;
	f[20] = 0x20; /* MF */
	CHECK_EQ(net_gso_segment(f, n, NET_HDR_GSO_TCPV4, 1448, 0, s, 70000,
				 &len, &next), -EINVAL);
	f[20] = 0x40;
	f[14] = 0x44;
	CHECK_EQ(net_gso_segment(f, n, NET_HDR_GSO_TCPV4, 1448, 0, s, 70000,
				 &len, &next), -EINVAL);
	f[14] = 0x45;
	f[34 + 12] = 0x40;
	CHECK_EQ(net_gso_segment(f, n, NET_HDR_GSO_TCPV4, 1448, 0, s, 70000,
				 &len, &next), -EINVAL);
	f[34 + 12] = 0x80;
	/* a VLAN tag, another ethertype */
	f[12] = 0x81;
	CHECK_EQ(net_gso_segment(f, n, NET_HDR_GSO_TCPV4, 1448, 0, s, 70000,
				 &len, &next), -EINVAL);
	f[12] = 0x08;
	CHECK_EQ(net_gso_segment(f, n, NET_HDR_GSO_TCPV4, 1448, 0, s, 70000,
				 &len, &next), 0);
	/* IPv6 with an extension header first */
	n = tso(f, true, 5000, 0x10, &poff);
	f[20] = 0; /* hop-by-hop */
	CHECK_EQ(net_gso_segment(f, n, NET_HDR_GSO_TCPV6, 1448, 0, s, 70000,
				 &len, &next), -EINVAL);
	CHECK_EQ(net_gso_segment(NULL, n, NET_HDR_GSO_TCPV6, 1448, 0, s, 70000,
				 &len, &next), -EINVAL);
	free(f);
	free(s);
}

TEST_MAIN()
