/*
 * fuzz_net_gso.c - libFuzzer target for software TCP segmentation
 * (src/devices/net_gso.c, docs/VIRTIO-NET.md N10): the headers of a GSO
 * frame another guest sent, parsed by the device on delivery to a NIC
 * without GUEST_TSO.
 *
 * Input: byte 0 the gso_type (low 3 bits: 1 TCPV4, 4 TCPV6, anything
 * else as is), bytes 1-2 the MSS (big-endian), the rest the frame.  Every
 * segment is asked for from offset 0 on, following *next, as the device
 * does.  Checked: each call either refuses at once (offset 0) or keeps
 * succeeding to the end; each segment is no longer than the output and
 * no longer than the headers plus the MSS; the payloads put together are
 * exactly the frame's payload; the offsets advance by the MSS; never a
 * crash, an out-of-bounds access (ASan) or more segments than payload
 * bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/net_gso.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_CAP 70000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[OUT_CAP];
	uint32_t off = 0, next, len, segs = 0, h = 0, flen, seg;
	const uint8_t *f;
	uint16_t mss;
	uint8_t type;
	int r;

	if (size < 3 || size > 3 + 65536 + 256)
		return 0;
	type = data[0] & 7;
	mss = (uint16_t)(data[1] << 8 | data[2]);
	f = data + 3;
	flen = (uint32_t)(size - 3);
	for (;;) {
		r = net_gso_segment(f, flen, type, mss, off, out, OUT_CAP, &len,
				    &next);
		if (r) {
			/* refused at once, never half way */
			if (off || (r != -EINVAL && r != -ENOSPC))
				abort();
			return 0;
		}
		if (len > OUT_CAP || len > flen || memcmp(out, f, 12))
			abort();
		if (!segs) {
			if (!next) { /* one segment: the whole frame */
				if (len != flen)
					abort();
				return 0;
			}
			if (len <= mss)
				abort();
			h = len - mss; /* the headers */
		}
		if (len <= h)
			abort();
		seg = len - h;
		if (seg > mss || (next && seg != mss) ||
		    memcmp(out + h, f + h + off, seg))
			abort();
		if (++segs > flen)
			abort();
		if (!next) {
			if (h + off + seg != flen) /* all the payload */
				abort();
			return 0;
		}
		if (next != off + mss)
			abort();
		off = next;
	}
}
