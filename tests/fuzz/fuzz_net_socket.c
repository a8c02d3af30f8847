/*
 * fuzz_net_socket.c - libFuzzer target for the socket backend's framing
 * (docs/VIRTIO-NET.md K1-K4): what a hostile peer writes to a NIC's
 * stream or datagram socket.
 *
 * The first input byte picks the mode (bit 0: datagram) and, for a
 * stream, whether the bytes go in one write or in chunks of 1-16 bytes
 * (bit 1; chunk sizes from bits 4-7).  For a stream the rest of the input
 * is written as is; for datagrams it is a sequence of (2-byte length,
 * bytes) records.  A reference parser splits the same bytes into frames
 * (stream: 4-byte big-endian lengths, stopping at a length outside
 * 14..65792 or at the end; datagrams: those of 14 bytes and more).  The
 * NIC (guest-physical addresses, mergeable buffers, always reposted)
 * must deliver, in order, a subsequence of the reference frames byte for
 * byte, and every frame it did not deliver must be counted in
 * backend_rx_drops, with one more for a bad stream length; never a crash
 * or a hang.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <viommu/viommu.h>

#include "refdrv/drvring.h"
#include "fuzz_irq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_GPA 0x40000000ull
#define RAM_SIZE (1u << 20)
#define QSIZE 256
#define RX_OFF 0x40000u
#define BUF 2048u
#define HDR 12u
#define MAX_FRAMES 512
#define MAX_FRAME (65536u + 256u)

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static uint8_t rebuilt[MAX_FRAME];

struct ref {
	uint32_t n;
	const uint8_t *at[MAX_FRAMES];
	uint32_t len[MAX_FRAMES];
	uint32_t bad; /* frames the backend must count as dropped */
};

static void __attribute__((noreturn, format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_net_socket: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static void ref_stream(struct ref *r, const uint8_t *d, size_t n)
{
	size_t pos = 0;

	while (n - pos >= 4 && r->n < MAX_FRAMES) {
		uint32_t len;

		memcpy(&len, d + pos, 4);
		len = ntohl(len);
		if (len < 14 || len > MAX_FRAME) {
			r->bad++;
			return;
		}
		if (n - pos - 4 < len)
			return;
		r->at[r->n] = d + pos + 4;
		r->len[r->n++] = len;
		pos += 4 + len;
	}
}

/*
 * bad_end() - the offset just past the stream's first bad length (where
 * the NIC stops reading, K1), or SIZE_MAX if the framing holds.
 */
static size_t bad_end(const uint8_t *d, size_t n)
{
	size_t pos = 0;

	while (n - pos >= 4) {
		uint32_t len;

		memcpy(&len, d + pos, 4);
		len = ntohl(len);
		if (len < 14 || len > MAX_FRAME)
			return pos + 4;
		if (n - pos - 4 < len)
			break;
		pos += 4 + len;
	}
	return SIZE_MAX;
}

/*
 * writable() - whether @fd takes more within @ms ms (a NIC that stopped
 * reading a stream never drains it; giving up early on a slow one only
 * shortens the input, the reference follows what was written).
 */
static bool writable(int fd, int ms)
{
	struct pollfd pf = { .fd = fd, .events = POLLOUT };

	return poll(&pf, 1, ms) == 1 && (pf.revents & POLLOUT);
}

/*
 * The device's interrupts go to an eventfd (one for the program), so the
 * collecting loop sleeps until the NIC completes a buffer instead of
 * spinning on sched_yield(), which took the CPU from the NIC's own I/O
 * thread.  A frame the backend drops raises no interrupt: after
 * SPIN_YIELDS empty checks the wait is a poll of at most 1 ms, and the
 * drop counter is read again after it.
 */
#define SPIN_YIELDS 8

/* wait_irq() - yield for the first few empty rounds, then sleep until
 * an interrupt or 1 ms. */
static void wait_irq(unsigned int *idle)
{
	fuzz_irq_idle((*idle)++, SPIN_YIELDS, 1000000);
}

static void post(struct drvring *ring, struct viommu_virtio_dev *dev,
		 uint64_t *tok)
{
	while (drvring_num_free(ring)) {
		uint32_t slot = (uint32_t)(*tok % QSIZE);
		struct drvring_seg s = { RAM_GPA + RX_OFF + slot * BUF, BUF,
					 true };

		if (drvring_add(ring, &s, 1, (*tok)++, false))
			break;
	}
	(void)viommu_virtio_dev_notify(dev, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct viommu_mem_region reg = { .gpa = RAM_GPA, .size = RAM_SIZE,
					 .fd = -1, .hva = ram };
	struct viommu_virtio_net_config nc = { .size = sizeof(nc) };
	struct viommu_virtio_net_stats st = { .size = sizeof(st) };
	static struct ref r;
	struct viommu_mem *mem;
	struct viommu_virtio_net *net;
	struct viommu_virtio_dev *dev;
	static struct drvring rings[3];
	struct timespec t0, t;
	uint64_t tok = 0;
	uint32_t next = 0, got = 0;
	unsigned int idle = 0;
	bool dgram;
	int sv[2];
	uint8_t h;

	if (size < 1)
		return 0;
	h = data[0];
	data++;
	size--;
	dgram = h & 1;
	memset(&r, 0, sizeof(r));
	if (fuzz_irq_open())
		fail("eventfd: %s", strerror(errno));
	if (socketpair(AF_UNIX, dgram ? SOCK_DGRAM : SOCK_STREAM, 0, sv))
		fail("socketpair: %s", strerror(errno));
	if (viommu_mem_create(NULL, &mem) ||
	    viommu_mem_set_regions(mem, &reg, 1))
		fail("memory");
	nc.mem = mem;
	nc.queue_size = QSIZE;
	nc.socket_kind = dgram ? VIOMMU_NET_SOCKET_DGRAM
			       : VIOMMU_NET_SOCKET_STREAM;
	nc.socket_fd = sv[0];
	if (viommu_virtio_net_create(&nc, &net))
		fail("create");
	close(sv[0]);
	dev = viommu_virtio_net_dev(net);
	viommu_virtio_dev_set_irq(dev, fuzz_irq_cb, NULL);
	if (viommu_virtio_dev_set_status(dev, 3) ||
	    viommu_virtio_dev_set_driver_features(dev,
			(1ull << VIOMMU_VIRTIO_F_VERSION_1) |
			(1ull << VIOMMU_VIRTIO_NET_F_MRG_RXBUF)) ||
	    viommu_virtio_dev_set_status(dev, 11))
		fail("negotiation");
	for (uint16_t q = 0; q < 3; q++) {
		struct viommu_virtio_queue_cfg cfg;

		if (drvring_init(&rings[q], ram + q * 0x10000,
				 RAM_GPA + q * 0x10000, QSIZE, false, false,
				 false))
			fail("ring");
		drvring_queue_cfg(&rings[q], &cfg);
		if (viommu_virtio_dev_queue_setup(dev, q, &cfg))
			fail("queue set-up");
	}
	if (viommu_virtio_dev_set_status(dev, 15))
		fail("DRIVER_OK");
	post(&rings[0], dev, &tok);

	/* the peer writes, the reference parses */
	if (dgram) {
		size_t pos = 0;

		while (size - pos >= 2 && r.n < MAX_FRAMES) {
			size_t len = (size_t)data[pos] |
				     (size_t)data[pos + 1] << 8;

			pos += 2;
			if (len > size - pos)
				len = size - pos;
			if (!writable(sv[1], 20) ||
			    send(sv[1], data + pos, len, MSG_DONTWAIT) !=
			    (ssize_t)len)
				break;
			if (len < 14) {
				r.bad++;
			} else {
				r.at[r.n] = data + pos;
				r.len[r.n++] = (uint32_t)len;
			}
			pos += len;
		}
	} else {
		/*
		 * Past a bad length the NIC reads no more: what follows is
		 * written only while the socket takes it at once, not waited
		 * for (20 ms per input that had one, most of this target's
		 * time).  The bytes already queued behind the bad length
		 * still show a NIC that kept parsing.
		 */
		size_t pos = 0, bad = bad_end(data, size);

		while (pos < size) {
			size_t c = h & 2 ? 1 + ((h >> 4) + pos) % 16
					 : size - pos;
			ssize_t w;

			if (c > size - pos)
				c = size - pos;
			if (!writable(sv[1], pos >= bad ? 0 : 20))
				break; /* the NIC stopped reading (K1) */
			w = send(sv[1], data + pos, c, MSG_DONTWAIT);
			if (w <= 0)
				break;
			pos += (size_t)w;
		}
		ref_stream(&r, data, pos); /* what was written */
	}

	/* collect until every frame is delivered or counted */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		uint64_t tk;
		uint32_t len, nb;

		int e = drvring_get_used(&rings[0], &tk, &len);

		if (e && e != -ENOENT)
			fail("used ring error %d", e);
		if (e) {
			viommu_virtio_net_stats(net, &st);
			if (got + st.backend_rx_drops >= r.n + r.bad)
				break;
			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec - t0.tv_sec > 20)
				fail("frames neither delivered nor counted: "
				     "%u delivered, %llu dropped, %u + %u "
				     "expected", got, (unsigned long long)
				     st.backend_rx_drops, r.n, r.bad);
			wait_irq(&idle);
			continue;
		}
		idle = 0;
		/* one frame over num_buffers buffers */
		{
			const uint8_t *b = ram + RX_OFF + (tk % QSIZE) * BUF;
			uint32_t off = 0;

			if (len < HDR)
				fail("buffer shorter than the header");
			nb = (uint32_t)b[10] | (uint32_t)b[11] << 8;
			if (b[0] || b[1])
				fail("flags or gso_type set on a socket frame");
			memcpy(rebuilt, b + HDR, len - HDR);
			off = len - HDR;
			for (uint32_t k = 1; k < nb; k++) {
				int e2;

				while ((e2 = drvring_get_used(&rings[0], &tk,
							      &len)) == -ENOENT) {
					clock_gettime(CLOCK_MONOTONIC, &t);
					if (t.tv_sec - t0.tv_sec > 20)
						fail("frame's last buffers "
						     "never came");
					wait_irq(&idle);
				}
				idle = 0;
				if (e2 || off + len > sizeof(rebuilt))
					fail("frame continuation");
				memcpy(rebuilt + off,
				       ram + RX_OFF + (tk % QSIZE) * BUF, len);
				off += len;
			}
			while (next < r.n && (r.len[next] != off ||
					      memcmp(r.at[next], rebuilt, off)))
				next++; /* a frame dropped on the way */
			if (next == r.n)
				fail("delivered a frame the peer did not send "
				     "(%u bytes)", off);
			next++;
			got++;
		}
		post(&rings[0], dev, &tok);
	}
	viommu_virtio_net_stats(net, &st);
	if (got + st.backend_rx_drops != r.n + r.bad)
		fail("%u delivered + %llu dropped != %u sent + %u bad", got,
		     (unsigned long long)st.backend_rx_drops, r.n, r.bad);
	close(sv[1]);
	viommu_virtio_net_destroy(net);
	viommu_mem_destroy(mem);
	return 0;
}
