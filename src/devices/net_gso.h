/*
 * net_gso.h - software TCP segmentation of a GSO frame, for a receiver
 * that did not negotiate the GUEST_TSO feature the frame needs.
 *
 * A TSO frame (virtio_net_hdr gso_type TCPV4 or TCPV6, gso_size the MSS)
 * is one Ethernet + IPv4/IPv6 + TCP header followed by up to 64 KiB of
 * payload.  net_gso_segment() builds the segment that starts at a given
 * payload offset as a plain frame, the way the sender's NIC would have
 * put it on the wire: the headers copied, the IP length fields (and the
 * IPv4 ID, + segment index, and header checksum) and the TCP sequence
 * number adjusted, FIN and PSH only on the last segment, CWR only on the
 * first, and the TCP checksum computed in full over the pseudo-header and
 * the segment.  The frame is parsed, never trusted: what is not a plain
 * Ethernet (no VLAN tag) IPv4 (no fragment) or IPv6 (TCP as the first
 * next header) frame with a TCP header inside it is refused.
 */
#ifndef VIOMMU_NET_GSO_H
#define VIOMMU_NET_GSO_H

#include <stdint.h>

/*
 * net_gso_segment() - the segment of @frame (@len bytes, gso_type @type,
 * MSS @mss) whose payload starts at offset @off into @out (@cap bytes).
 * *@out_len gets its length, *@next the next segment's payload offset
 * (0 after the last one).
 * Return: 0; -EINVAL (not a TCP frame that can be segmented: bad or
 * truncated headers, @type not TCPV4/TCPV6 or not matching the IP
 * version, @mss 0, @off not a multiple of @mss inside the payload);
 * -ENOSPC (@cap too small for the segment).
 */
int net_gso_segment(const uint8_t *frame, uint32_t len, uint8_t type,
		    uint16_t mss, uint32_t off, uint8_t *out, uint32_t cap,
		    uint32_t *out_len, uint32_t *next);

#endif
