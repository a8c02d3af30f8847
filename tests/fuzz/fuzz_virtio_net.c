/*
 * fuzz_virtio_net.c - libFuzzer target for the virtio-net TX path and
 * control queue (docs/VIRTIO-NET.md) over a fuzzed IOMMU state.
 *
 * Two NICs join one switch.  NIC A is the one under attack: its endpoint
 * is attached to a domain the input maps and unmaps page by page (its
 * ring pages included).  NIC B is the well-behaved receiver: its own
 * domain maps its own RAM once, and it always has receive buffers.
 *
 * The input is a header byte choosing A's set-up (ring kind, EVENT_IDX,
 * INDIRECT, CSUM/HOST_TSO negotiated or not, MRG_RXBUF at B), then
 * operations, each an opcode byte and its arguments:
 *   - map / unmap pages of A's IOVA window, unmap or re-map a ring page;
 *   - fill data pages of A with a pattern;
 *   - a TX chain: a virtio_net_hdr (fuzzed or plausible fields) written
 *     where it translates, 1-4 segments at any IOVA, offset and length
 *     (sometimes writable), optionally through an indirect table;
 *   - a control command (class, command, fuzzed data, ack byte anywhere);
 *   - inject one fault; reset A.
 * After each operation the target checks, abort()ing otherwise:
 *   - A's chain comes back (used length 0 for TX, 0 or 1 for control) or A
 *     says DEVICE_NEEDS_RESET: never a hang;
 *   - A's guest RAM outside its rings and the ack byte is unchanged (the
 *     TX path never writes guest memory);
 *   - a frame is sent only if every readable byte translated for reading,
 *     and then B receives exactly the bytes those translations hold after
 *     the 12-byte header, with valid gso fields (N4-N8).
 */
#include <endian.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <viommu/viommu.h>

#include "refdrv/drvring.h"
#include "fuzz_vdev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WHO "fuzz_virtio_net"
#define fail(...) vf_fail(WHO, __VA_ARGS__)

#define PAGE 4096u
#define RAM_GPA 0x10000000ull
#define A_PAGES 64u                /* pages 0-3 A's rings, 4-63 data */
#define RING_PAGES 4u
#define B_OFF (A_PAGES * PAGE)
#define B_PAGES 320u               /* rings, then RX buffers */
#define RAM_SIZE ((A_PAGES + B_PAGES) * PAGE)
#define IOVA_BASE 0x100000000ull   /* A: 64 IOVA pages */
#define NIOVA 64u
#define B_IOVA 0x200000000ull      /* B: all of B's RAM */
#define QSIZE 16
#define B_QSIZE 64
#define B_RXBUF 4096u
#define B_NBUF 64u
#define B_RX_OFF (16u * PAGE)      /* in B's area */
#define MAX_OPS 48
#define MAX_SEGS 4
#define HDR 12u

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static uint8_t before[A_PAGES * PAGE];
static uint8_t may_change[A_PAGES * PAGE];
static uint8_t sent[MAX_SEGS * 8192];
static uint8_t got[MAX_SEGS * 8192 + B_RXBUF];

struct fz {
	struct vdev_fuzz v; /* input, A's RAM and window (fuzz_vdev.h) */
	bool packed, evidx, indirect, csum, tso, mrg;
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_net_switch *sw;
	struct viommu_domain *dom, *bdom;
	struct viommu_endpoint *ep, *bep;
	struct viommu_virtio_net *a, *b;
	struct viommu_virtio_dev *adev, *bdev;
	struct drvring ar[3], br[3];
	uint64_t tok, btok;
};

static struct viommu_virtio_net_stats nst(struct viommu_virtio_net *n)
{
	struct viommu_virtio_net_stats s = { .size = sizeof(s) };

	viommu_virtio_net_stats(n, &s);
	return s;
}

/* sst() - frame copies the switch queued (for B: the only other port). */
static uint64_t sst(struct fz *z)
{
	struct viommu_net_switch_stats s = { .size = sizeof(s) };

	viommu_net_switch_stats(z->sw, &s);
	return s.delivered;
}

/* ------------------------------------------------------------------ */
/* Set-up                                                             */

static int queues_init(struct viommu_virtio_dev *dev, struct drvring *r,
		       uint8_t *base, uint64_t bus, uint16_t qs, bool packed,
		       bool evidx, bool ind)
{
	for (uint16_t q = 0; q < 3; q++) {
		struct viommu_virtio_queue_cfg cfg;

		if (drvring_init(&r[q], base + q * PAGE * (qs > 16 ? 4 : 1),
				 bus + q * PAGE * (qs > 16 ? 4 : 1), qs,
				 packed, evidx, ind))
			return -1;
		drvring_queue_cfg(&r[q], &cfg);
		if (viommu_virtio_dev_queue_setup(dev, q, &cfg))
			return -1;
	}
	return 0;
}

static int negotiate(struct viommu_virtio_dev *dev, uint64_t f)
{
	uint8_t s = VIOMMU_VIRTIO_S_ACKNOWLEDGE | VIOMMU_VIRTIO_S_DRIVER;

	if (viommu_virtio_dev_set_status(dev, 0) ||
	    viommu_virtio_dev_set_status(dev, s) ||
	    viommu_virtio_dev_set_driver_features(dev, f) ||
	    viommu_virtio_dev_set_status(dev, s | VIOMMU_VIRTIO_S_FEATURES_OK) ||
	    !(viommu_virtio_dev_status(dev) & VIOMMU_VIRTIO_S_FEATURES_OK))
		return -1;
	return 0;
}

static int a_init(struct fz *z)
{
	uint64_t f = viommu_virtio_dev_features(z->adev);

	if (!z->packed)
		f &= ~(1ull << VIOMMU_VIRTIO_F_RING_PACKED);
	if (!z->evidx)
		f &= ~(1ull << VIOMMU_VIRTIO_F_EVENT_IDX);
	if (!z->indirect)
		f &= ~(1ull << VIOMMU_VIRTIO_F_INDIRECT_DESC);
	if (!z->tso)
		f &= ~((1ull << VIOMMU_VIRTIO_NET_F_HOST_TSO4) |
		       (1ull << VIOMMU_VIRTIO_NET_F_HOST_TSO6));
	if (!z->csum)
		f &= ~((1ull << VIOMMU_VIRTIO_NET_F_HOST_TSO4) |
		       (1ull << VIOMMU_VIRTIO_NET_F_HOST_TSO6) |
		       (1ull << VIOMMU_VIRTIO_NET_F_CSUM));
	if (negotiate(z->adev, f) ||
	    queues_init(z->adev, z->ar, ram, IOVA_BASE, QSIZE, z->packed,
			z->evidx, z->indirect))
		return -1;
	return viommu_virtio_dev_set_status(z->adev, 15);
}

static int b_post(struct fz *z)
{
	while (drvring_num_free(&z->br[0])) {
		uint32_t slot = (uint32_t)(z->btok++ % B_NBUF);
		struct drvring_seg s = { B_IOVA + B_RX_OFF + slot * B_RXBUF,
					 B_RXBUF, true };

		if (drvring_add(&z->br[0], &s, 1, slot, false))
			return -1;
	}
	return viommu_virtio_dev_notify(z->bdev, 0);
}

static int b_init(struct fz *z)
{
	uint64_t f = viommu_virtio_dev_features(z->bdev);

	f &= ~(1ull << VIOMMU_VIRTIO_F_RING_PACKED);
	if (!z->mrg)
		f &= ~(1ull << VIOMMU_VIRTIO_NET_F_MRG_RXBUF);
	if (negotiate(z->bdev, f) ||
	    queues_init(z->bdev, z->br, ram + B_OFF, B_IOVA, B_QSIZE, false,
			false, false) ||
	    viommu_virtio_dev_set_status(z->bdev, 15))
		return -1;
	return b_post(z);
}

static int setup(struct fz *z, uint8_t h)
{
	struct viommu_mem_region reg = { .gpa = RAM_GPA, .size = RAM_SIZE,
					 .fd = -1, .hva = ram };
	struct viommu_ctx_config cc = { 0 };
	struct viommu_net_switch_config sc = { .size = sizeof(sc),
					       .queue_depth = 8 };
	struct viommu_virtio_net_config nc = { .size = sizeof(nc) };

	z->packed = h & 1;
	z->evidx = h & 2;
	z->indirect = h & 4;
	z->csum = !(h & 8);
	z->tso = !(h & 16);
	z->mrg = !(h & 32);
	z->v.ram = ram;
	z->v.ram_gpa = RAM_GPA;
	z->v.pages = A_PAGES;
	z->v.ring_pages = RING_PAGES;
	z->v.iova_base = IOVA_BASE;
	z->v.niova = NIOVA;
	z->v.before = before;
	z->v.may_change = may_change;
	z->v.mc_lo = 0; /* whatever the last input marked */
	z->v.mc_hi = z->v.pages;
	memset(ram, 0, sizeof(ram));
	if (viommu_mem_create(NULL, &z->mem) ||
	    viommu_mem_set_regions(z->mem, &reg, 1))
		return -1;
	cc.mem = z->mem;
	if (viommu_ctx_create(&cc, &z->ctx) ||
	    viommu_endpoint_create(z->ctx, 3, &z->ep) ||
	    viommu_endpoint_create(z->ctx, 4, &z->bep) ||
	    viommu_domain_create(z->ctx, &(struct viommu_domain_config){
					 .kind = VIOMMU_DOMAIN_PAGING,
					 .tag = 1 }, &z->dom) ||
	    viommu_domain_create(z->ctx, &(struct viommu_domain_config){
					 .kind = VIOMMU_DOMAIN_PAGING,
					 .tag = 2 }, &z->bdom) ||
	    viommu_endpoint_attach(z->ep, VIOMMU_NO_PASID, z->dom) ||
	    viommu_endpoint_attach(z->bep, VIOMMU_NO_PASID, z->bdom) ||
	    viommu_domain_map(z->bdom, B_IOVA, B_IOVA + B_PAGES * PAGE - 1,
			      RAM_GPA + B_OFF, VIOMMU_READ | VIOMMU_WRITE))
		return -1;
	z->v.dom = z->dom;
	for (uint32_t p = 0; p < RING_PAGES; p++)
		if (viommu_domain_map(z->dom, IOVA_BASE + p * PAGE,
				      IOVA_BASE + (p + 1) * PAGE - 1,
				      RAM_GPA + p * PAGE,
				      VIOMMU_READ | VIOMMU_WRITE))
			return -1;
	if (viommu_net_switch_create(&sc, &z->sw))
		return -1;
	nc.mem = z->mem;
	nc.queue_size = QSIZE;
	nc.net_switch = z->sw;
	nc.ep = z->ep;
	nc.mac[0] = 2;
	nc.mac[5] = 0xa;
	if (viommu_virtio_net_create(&nc, &z->a))
		return -1;
	nc.ep = z->bep;
	nc.queue_size = B_QSIZE;
	nc.mac[5] = 0xb;
	if (viommu_virtio_net_create(&nc, &z->b))
		return -1;
	z->adev = viommu_virtio_net_dev(z->a);
	z->bdev = viommu_virtio_net_dev(z->b);
	vf_irq(WHO, z->adev);
	return a_init(z) || b_init(z) ? -1 : 0;
}

static void teardown(struct fz *z)
{
	viommu_virtio_net_destroy(z->a);
	viommu_virtio_net_destroy(z->b);
	viommu_net_switch_destroy(z->sw);
	viommu_ctx_destroy(z->ctx);
	viommu_mem_destroy(z->mem);
}

/* ------------------------------------------------------------------ */
/* Operations                                                         */

static void reinit_a(struct fz *z)
{
	(void)viommu_virtio_net_inject_faults(z->a, 0);
	if (a_init(z))
		fail("re-initialisation of A failed");
}

/* b_receive() - the frame B got (waits for it): its bytes in got[],
 * header in @h.  Return: frame length. */
static uint32_t b_receive(struct fz *z, uint8_t *h)
{
	struct timespec t0, t;
	uint32_t off = 0, nb = 1, len;
	uint64_t tok;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint32_t k = 0; k < nb;) {
		int err = drvring_get_used(&z->br[0], &tok, &len);
		const uint8_t *buf = ram + B_OFF + B_RX_OFF + tok * B_RXBUF;

		if (err == -ENOENT) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec - t0.tv_sec > 20)
				fail("B never received the frame A sent");
			sched_yield();
			continue;
		}
		if (err)
			fail("B: used ring error %d", err);
		if (k == 0) {
			if (len < HDR)
				fail("B: first buffer shorter than the header");
			memcpy(h, buf, HDR);
			nb = (uint32_t)h[10] | (uint32_t)h[11] << 8;
			if (nb == 0 || (!z->mrg && nb != 1))
				fail("B: num_buffers %u", nb);
			buf += HDR;
			len -= HDR;
		}
		if (off + len > sizeof(got))
			fail("B: frame too long");
		memcpy(got + off, buf, len);
		off += len;
		k++;
	}
	if (b_post(z))
		fail("B: reposting failed");
	return off;
}

static void op_tx(struct fz *z)
{
	uint8_t ctl = vf_next8(&z->v), h[HDR];
	struct drvring_seg s[MAX_SEGS];
	unsigned int n = 1 + (ctl & 3);
	bool ind = z->indirect && (ctl & 0x80), all_ok = true, anyw = false;
	struct viommu_virtio_net_stats a0 = nst(z->a), a1, b0 = nst(z->b);
	uint64_t d0 = sst(z);
	uint32_t nsent = 0, used = 0;
	uint16_t gsz;

	/* header: plausible most of the time, raw bytes sometimes */
	if (ctl & 0x40) {
		for (unsigned int i = 0; i < HDR; i++)
			h[i] = vf_next8(&z->v);
	} else {
		uint8_t t = vf_next8(&z->v);

		memset(h, 0, HDR);
		h[0] = t & 1;                              /* NEEDS_CSUM */
		h[1] = (uint8_t[]){ 0, 1, 4, 3, 0x81, 0 }[(t >> 1) % 6];
		gsz = (uint16_t)vf_next_n(&z->v, 2) % 3000;
		h[4] = (uint8_t)gsz;
		h[5] = (uint8_t)(gsz >> 8);
		h[6] = 34;                                 /* csum_start */
		h[8] = (uint8_t)(t & 0x20 ? 16 : 6);       /* csum_offset */
		h[2] = 54;
	}
	for (unsigned int i = 0; i < n; i++) {
		uint8_t f = vf_next8(&z->v);

		s[i].gpa = vf_pick_addr(&z->v);
		s[i].len = f & 0x80 ? (uint32_t)vf_next_n(&z->v, 2) & 0x1fff
				    : 64u * (1 + (f & 31));
		s[i].write = (f & 0x60) == 0x60;
		anyw |= s[i].write && s[i].len;
	}
	if (s[0].len >= HDR) /* the header goes where it translates */
		for (unsigned int i = 0; i < HDR; i++) {
			long o = vf_xl(&z->v, s[0].gpa + i, VIOMMU_READ);

			if (o >= 0)
				ram[o] = h[i];
		}
	/* what the device must read, as the translations hold it now */
	for (unsigned int i = 0; i < n; i++) {
		if (s[i].write)
			continue;
		for (uint32_t j = 0, c; j < s[i].len; j += c) {
			long o = vf_xl_len(&z->v, s[i].gpa + j, s[i].len - j,
					   VIOMMU_READ, &c);
			uint32_t room = sizeof(sent) - nsent;

			if (o < 0) {
				all_ok = false;
				continue;
			}
			memcpy(sent + nsent, ram + o, c < room ? c : room);
			nsent += c < room ? c : room;
		}
	}
	if (vf_next8(&z->v) & 1)
		(void)viommu_virtio_net_inject_faults(z->a, 1);
	vf_snapshot(&z->v);
	z->tok++;
	if (drvring_add(&z->ar[1], s, n, z->tok, ind))
		return;
	(void)viommu_virtio_dev_notify(z->adev, 1);
	if (!vf_wait_used(WHO, "chain", &z->ar[1], z->adev, z->tok,
			  &used)) {
		vf_check_ram(WHO, &z->v);
		reinit_a(z);
		return;
	}
	(void)viommu_virtio_net_inject_faults(z->a, 0);
	vf_check_ram(WHO, &z->v);
	if (used != 0)
		fail("TX used length %u", used);
	a1 = nst(z->a);
	if (getenv("FUZZ_VIRTIO_NET_TRACE"))
		fprintf(stderr, "tx %u segs, %u bytes: sent %d bad %d fault %d "
			"queued %d\n", n, nsent,
			(int)(a1.tx_packets - a0.tx_packets),
			(int)(a1.tx_bad - a0.tx_bad),
			(int)(a1.tx_faults - a0.tx_faults),
			(int)(sst(z) - d0));
	if (a1.tx_packets == a0.tx_packets)
		return;
	if (a1.tx_packets != a0.tx_packets + 1)
		fail("one chain, %llu frames", (unsigned long long)
		     (a1.tx_packets - a0.tx_packets));
	if (!all_ok || anyw)
		fail("frame sent from a chain that does not wholly translate "
		     "or has a writable part");
	if (sst(z) == d0)
		return; /* filtered (sent to A's own MAC) or queue full */
	if (!z->mrg && nsent > B_RXBUF) {
		/* too big for one of B's buffers: dropped there (N12) */
		struct timespec t0, t;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (nst(z->b).rx_too_big == b0.rx_too_big) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec - t0.tv_sec > 20)
				fail("B neither received nor dropped");
			sched_yield();
		}
		return;
	}
	{
		uint8_t rh[HDR] = { 0 };
		uint32_t glen = b_receive(z, rh);
		uint16_t gso = (uint16_t)(rh[4] | rh[5] << 8);

		if (glen != nsent - HDR || memcmp(got, sent + HDR, glen))
			fail("B received other bytes than A's chain held "
			     "(%u vs %u)", glen, nsent - HDR);
		if (rh[1] != 0 && rh[1] != 1 && rh[1] != 4)
			fail("gso_type 0x%x crossed", rh[1]);
		if (rh[1] && (!gso || gso >= glen))
			fail("gso_size %u crossed for %u bytes", gso, glen);
		if (rh[1] && !z->tso)
			fail("GSO crossed without HOST_TSO");
	}
}

static void op_ctrl(struct fz *z)
{
	uint8_t cls = vf_next8(&z->v) % 6, cmd = vf_next8(&z->v) % 3;
	uint32_t dlen = vf_next8(&z->v) % 40;
	struct drvring_seg s[3];
	uint32_t used;
	long o;

	s[0] = (struct drvring_seg){ vf_pick_addr(&z->v), 2, false };
	s[1] = (struct drvring_seg){ vf_pick_addr(&z->v), dlen, false };
	s[2] = (struct drvring_seg){ vf_pick_addr(&z->v), 1 + (vf_next8(&z->v) & 1), true };
	for (unsigned int i = 0; i < 2; i++) {
		o = vf_xl(&z->v, s[0].gpa + i, VIOMMU_READ);
		if (o >= 0)
			ram[o] = i ? cmd : cls;
	}
	for (uint32_t i = 0; i < dlen; i++) {
		o = vf_xl(&z->v, s[1].gpa + i, VIOMMU_READ);
		if (o >= 0)
			ram[o] = vf_next8(&z->v);
	}
	vf_snapshot(&z->v);
	o = vf_xl(&z->v, s[2].gpa, VIOMMU_WRITE); /* the ack: first writable byte */
	if (o >= 0)
		vf_may_change(&z->v, (uint32_t)o, 1);
	z->tok++;
	if (drvring_add(&z->ar[2], dlen ? s : (struct drvring_seg[]){ s[0],
			s[2] }, dlen ? 3 : 2, z->tok, false))
		return;
	(void)viommu_virtio_dev_notify(z->adev, 2);
	if (!vf_wait_used(WHO, "chain", &z->ar[2], z->adev, z->tok,
			  &used)) {
		vf_check_ram(WHO, &z->v);
		reinit_a(z);
		return;
	}
	vf_check_ram(WHO, &z->v);
	if (used > 1)
		fail("control used length %u", used);
	if (used == 1 && (o < 0 || ram[o] > 1))
		fail("ack %d", o < 0 ? -1 : ram[o]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz z;

	memset(&z, 0, sizeof(z));
	z.v.d = data;
	z.v.n = size;
	if (setup(&z, vf_next8(&z.v)))
		fail("set-up failed");
	for (int op = 0; op < MAX_OPS && z.v.pos < z.v.n; op++) {
		uint8_t o = vf_next8(&z.v);

		if (vf_op_window(&z.v, o))
			continue;
		if (o % 8 == 4)
			op_ctrl(&z);
		else if (o % 8 == 7 && (o & 0x80))
			reinit_a(&z);
		else /* 5, 7 */
			op_tx(&z);
	}
	teardown(&z);
	return 0;
}
