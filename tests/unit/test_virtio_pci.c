/*
 * test_virtio_pci.c - the virtio-pci modern transport (src/transport/
 * virtio_pci.c) driven the way a guest driver drives it: only through the
 * PCI layer (pci_cfg_read/write and pci_bar_access).  The tests enumerate
 * the capabilities, size and program BAR0, run the whole virtio
 * initialisation of a virtio-iommu device with split rings in hva-backed
 * guest RAM, submit an ATTACH by hand and check the used ring, the ISR and
 * INTx, the PCI configuration access capability, the feature select
 * windows, the queue registers, resets and refused accesses, and MSI-X:
 * the capability and BAR1, the vector registers of VIRTIO 1.3 §4.1.5.1.2
 * and the routing of queue and configuration interrupts to their vectors.
 *
 * Layout values are spelled out here from VIRTIO 1.3 §4.1.4 rather than
 * taken from virtio_pci.h, so the tests check the transport against the
 * spec text.
 */
#include <errno.h>
#include <pthread.h>

#include <viommu/core.h>
#include <viommu/mem.h>
#include <viommu/virtio.h>
#include <viommu/virtio_iommu.h>

#include "harness.h"
#include "transport/virtio_pci.h"
#include "refdrv/drvring.h"

#define RAM_SIZE (16ull << 20)
#define BAR_BASE 0xfe000000u
#define RQ_GPA 0x100000ull
#define EQ_GPA 0x200000ull
#define REQ_GPA 0x300000ull
#define EVT_GPA 0x340000ull
#define BAR1_BASE 0xfe100000u
#define MSI_ADDR 0xfee00000ull
#define NVEC 3 /* two queues and the configuration vector */
#define EP_ID 0x28u
#define QSIZE 64

/* Common configuration offsets (VIRTIO 1.3 §4.1.4.3). */
enum {
	C_DFSELECT = 0x00, C_DF = 0x04, C_GFSELECT = 0x08, C_GF = 0x0c,
	C_MSIX = 0x10, C_NUMQ = 0x12, C_STATUS = 0x14, C_CFGGEN = 0x15,
	C_QSEL = 0x16, C_QSIZE = 0x18, C_QMSIX = 0x1a, C_QENABLE = 0x1c,
	C_QNOFF = 0x1e, C_QDESC = 0x20, C_QDRIVER = 0x28, C_QDEVICE = 0x30,
};
enum { CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4,
       CAP_PCI = 5 };
#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define F_MAP_UNMAP (1ull << 2)
#define F_INPUT_RANGE (1ull << 0)
#define F_DOMAIN_RANGE (1ull << 1)
#define F_PROBE (1ull << 4)
#define F_BYPASS_CONFIG (1ull << 6)
#define F_VERSION_1 (1ull << 32)
#define CFG_BYPASS 36

struct vcap {
	uint8_t at; /* config offset, 0: missing */
	uint8_t len, bar;
	uint32_t offset, length;
};

struct guest {
	uint8_t *ram;
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_endpoint *ep;
	struct viommu_virtio_iommu *vi;
	struct virtio_pci vp;
	struct pci_func *f;
	struct viommu_log log;
	int warns;
	char last[512];
	int intx_calls;
	bool intx;
	int msix_calls;
	int msix_count[8];
	unsigned int msix_vec;
	uint64_t msix_addr;
	uint32_t msix_data;
	struct vcap caps[6];
	uint32_t notify_mult;
	uint16_t noff[2];
	struct drvring rq, eq;
};

static void log_cb(void *opaque, enum viommu_log_level level,
		   const char *line)
{
	struct guest *g = opaque;

	if (level <= VIOMMU_LOG_WARN)
		g->warns++;
	snprintf(g->last, sizeof(g->last), "%s", line);
}

static void intx_cb(void *opaque, bool level)
{
	struct guest *g = opaque;

	g->intx_calls++;
	g->intx = level;
}

static void msix_cb(void *opaque, unsigned int vector, uint64_t addr,
		    uint32_t data)
{
	struct guest *g = opaque;

	g->msix_calls++;
	if (vector < 8)
		g->msix_count[vector]++;
	g->msix_vec = vector;
	g->msix_addr = addr;
	g->msix_data = data;
}

/* g_new() - RAM, context, endpoint 0x28, virtio-iommu, transport. */
static struct guest *g_new(void)
{
	struct guest *g = calloc(1, sizeof(*g));
	struct viommu_mem_region r = { .gpa = 0, .size = RAM_SIZE, .fd = -1 };
	struct viommu_ctx_config cc = { 0 };
	struct viommu_virtio_iommu_config dc = { .size = sizeof(dc) };

	if (!g)
		return NULL;
	g->log = (struct viommu_log){ .fn = log_cb, .opaque = g,
				      .level = VIOMMU_LOG_DEBUG };
	g->ram = calloc(1, RAM_SIZE);
	r.hva = g->ram;
	if (!g->ram || viommu_mem_create(NULL, &g->mem) ||
	    viommu_mem_set_regions(g->mem, &r, 1))
		goto fail;
	cc.mem = g->mem;
	cc.log = g->log;
	if (viommu_ctx_create(&cc, &g->ctx) ||
	    viommu_endpoint_create(g->ctx, EP_ID, &g->ep))
		goto fail;
	dc.ctx = g->ctx;
	dc.mem = g->mem;
	dc.log = g->log;
	if (viommu_virtio_iommu_create(&dc, &g->vi))
		goto fail;
	if (virtio_pci_init(&g->vp, viommu_virtio_iommu_dev(g->vi), "viommu",
			    &g->log))
		goto fail;
	g->f = virtio_pci_func(&g->vp);
	g->f->intx_fn = intx_cb;
	g->f->intx_opaque = g;
	g->f->msix_fn = msix_cb;
	g->f->msix_opaque = g;
	return g;
fail:
	viommu_virtio_iommu_destroy(g->vi);
	viommu_ctx_destroy(g->ctx);
	viommu_mem_destroy(g->mem);
	free(g->ram);
	free(g);
	return NULL;
}

static void g_free(struct guest *g)
{
	virtio_pci_destroy(&g->vp);
	viommu_virtio_iommu_destroy(g->vi);
	viommu_ctx_destroy(g->ctx);
	viommu_mem_destroy(g->mem);
	free(g->ram);
	free(g);
}

static uint32_t cfg_rd(struct guest *g, uint32_t off, unsigned int len)
{
	return pci_cfg_read(g->f, off, len);
}

static void cfg_wr(struct guest *g, uint32_t off, uint32_t v, unsigned int len)
{
	pci_cfg_write(g->f, off, v, len);
}

/* rd() / wr() - BAR0 accesses at BAR offset @off; the access must route. */
static uint64_t rd(struct guest *g, uint32_t off, unsigned int size)
{
	uint64_t v = 0;

	CHECK_EQ(pci_bar_access(g->f, BAR_BASE + off, false, false, &v, size),
		 0);
	return v;
}

static void wr(struct guest *g, uint32_t off, uint64_t val, unsigned int size)
{
	CHECK_EQ(pci_bar_access(g->f, BAR_BASE + off, false, true, &val, size),
		 0);
}

/* cm_rd() / cm_wr() - common configuration through the capability. */
static uint64_t cm_rd(struct guest *g, uint32_t off, unsigned int size)
{
	return rd(g, g->caps[CAP_COMMON].offset + off, size);
}

static void cm_wr(struct guest *g, uint32_t off, uint64_t v, unsigned int size)
{
	wr(g, g->caps[CAP_COMMON].offset + off, v, size);
}

/* enumerate() - walk the capability list; count the vendor capabilities. */
static int enumerate(struct guest *g)
{
	uint32_t p = cfg_rd(g, 0x34, 1);
	int n = 0;

	while (p && n < 48) {
		if (cfg_rd(g, p, 1) == 0x09) {
			uint8_t type = (uint8_t)cfg_rd(g, p + 3, 1);
			struct vcap *c = &g->caps[type < 6 ? type : 0];

			c->at = (uint8_t)p;
			c->len = (uint8_t)cfg_rd(g, p + 2, 1);
			c->bar = (uint8_t)cfg_rd(g, p + 4, 1);
			c->offset = cfg_rd(g, p + 8, 4);
			c->length = cfg_rd(g, p + 12, 4);
			if (type == CAP_NOTIFY)
				g->notify_mult = cfg_rd(g, p + 16, 4);
			n++;
		}
		p = cfg_rd(g, p + 1, 1);
	}
	return n;
}

/* map_bar() - size BAR0, program it at BAR_BASE, enable decoding. */
static uint32_t map_bar(struct guest *g)
{
	uint32_t v;

	cfg_wr(g, 0x10, 0xffffffff, 4);
	v = cfg_rd(g, 0x10, 4);
	cfg_wr(g, 0x10, BAR_BASE, 4);
	cfg_wr(g, 0x04, 0x2 | 0x4, 2); /* MEMORY | MASTER */
	return ~(v & ~0xfu) + 1;
}

/* features() - read the 64 device feature bits through the window. */
static uint64_t features(struct guest *g)
{
	uint64_t f;

	cm_wr(g, C_DFSELECT, 0, 4);
	f = cm_rd(g, C_DF, 4);
	cm_wr(g, C_DFSELECT, 1, 4);
	return f | cm_rd(g, C_DF, 4) << 32;
}

/* set_queue() - set up queue @q with ring @r at @gpa, as Linux does. */
static void set_queue(struct guest *g, uint16_t q, struct drvring *r,
		      uint64_t gpa)
{
	struct viommu_virtio_queue_cfg qc;

	cm_wr(g, C_QSEL, q, 2);
	CHECK_EQ(cm_rd(g, C_QSIZE, 2), 256); /* the device's maximum */
	CHECK_EQ(cm_rd(g, C_QENABLE, 2), 0);
	CHECK_EQ(cm_rd(g, C_QMSIX, 2), 0xffff);
	cm_wr(g, C_QSIZE, QSIZE, 2);
	REQUIRE(drvring_init(r, g->ram + gpa, gpa, QSIZE, false, false,
			     false) == 0);
	drvring_queue_cfg(r, &qc);
	cm_wr(g, C_QDESC, (uint32_t)qc.desc, 4);
	cm_wr(g, C_QDESC + 4, qc.desc >> 32, 4);
	cm_wr(g, C_QDRIVER, (uint32_t)qc.driver, 4);
	cm_wr(g, C_QDRIVER + 4, qc.driver >> 32, 4);
	cm_wr(g, C_QDEVICE, qc.device, 8); /* one 64-bit access works too */
	CHECK_U64(cm_rd(g, C_QDESC, 8), qc.desc);
	CHECK_U64(cm_rd(g, C_QDRIVER + 4, 4), qc.driver >> 32);
	CHECK_U64(cm_rd(g, C_QDEVICE, 4), (uint32_t)qc.device);
	g->noff[q] = (uint16_t)cm_rd(g, C_QNOFF, 2);
	cm_wr(g, C_QENABLE, 1, 2);
	CHECK_EQ(cm_rd(g, C_QENABLE, 2), 1);
	CHECK_EQ(cm_rd(g, C_QSIZE, 2), QSIZE);
}

/*
 * bring_up() - enumerate, map BAR0 and run the virtio initialisation
 * (VIRTIO 1.3 §3.1.1) with both queues.  Return: the features set.
 */
static uint64_t bring_up(struct guest *g)
{
	uint64_t want = F_VERSION_1 | F_MAP_UNMAP | F_INPUT_RANGE |
			F_DOMAIN_RANGE | F_PROBE | F_BYPASS_CONFIG, feat;

	CHECK_EQ(enumerate(g), 5);
	CHECK_EQ(map_bar(g), 0x4000);
	cm_wr(g, C_STATUS, 0, 1);
	CHECK_EQ(cm_rd(g, C_STATUS, 1), 0);
	cm_wr(g, C_STATUS, S_ACK, 1);
	cm_wr(g, C_STATUS, S_ACK | S_DRIVER, 1);
	feat = features(g) & want;
	CHECK_U64(feat, want);
	cm_wr(g, C_GFSELECT, 0, 4);
	cm_wr(g, C_GF, (uint32_t)feat, 4);
	cm_wr(g, C_GFSELECT, 1, 4);
	cm_wr(g, C_GF, feat >> 32, 4);
	cm_wr(g, C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK, 1);
	CHECK_EQ(cm_rd(g, C_STATUS, 1), S_ACK | S_DRIVER | S_FEATURES_OK);
	CHECK_EQ(cm_rd(g, C_NUMQ, 2), 2);
	CHECK_EQ(cm_rd(g, C_MSIX, 2), 0xffff);
	set_queue(g, 0, &g->rq, RQ_GPA);
	set_queue(g, 1, &g->eq, EQ_GPA);
	cm_wr(g, C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK, 1);
	CHECK_EQ(cm_rd(g, C_STATUS, 1),
		 S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return feat;
}

/* kick() - notify queue @q through the notify region. */
static void kick(struct guest *g, uint16_t q)
{
	wr(g, g->caps[CAP_NOTIFY].offset + g->noff[q] * g->notify_mult, q, 2);
}

/*
 * attach() - submit ATTACH(domain, EP_ID) on the request queue by hand and
 * wait for it in the used ring.  Return: the status byte, or -1.
 */
static int attach(struct guest *g, uint32_t domain)
{
	uint8_t *req = g->ram + REQ_GPA, *tail = g->ram + REQ_GPA + 0x100;
	struct drvring_seg segs[2] = {
		{ REQ_GPA, 20, false }, { REQ_GPA + 0x100, 4, true },
	};
	uint64_t token = 0;
	uint32_t len = 0;

	memset(req, 0, 20);
	req[0] = 1; /* VIRTIO_IOMMU_T_ATTACH */
	memcpy(req + 4, &domain, 4);
	req[8] = EP_ID;
	memset(tail, 0xff, 4);
	if (drvring_add(&g->rq, segs, 2, 77, false))
		return -1;
	kick(g, 0);
	if (drvring_get_used(&g->rq, &token, &len) || token != 77 || len != 4)
		return -1;
	return tail[0];
}

TEST(identity_and_capabilities)
{
	struct guest *g = g_new();
	uint32_t p;
	int i;

	REQUIRE(g);
	CHECK_U64(cfg_rd(g, 0x00, 4), 0x10571af4);
	CHECK_U64(cfg_rd(g, 0x08, 4), 0x08800001);
	CHECK_U64(cfg_rd(g, 0x0e, 1), 0);
	CHECK_U64(cfg_rd(g, 0x2c, 4), 0x11001af4);
	CHECK_U64(cfg_rd(g, 0x3d, 1), 1);
	CHECK(cfg_rd(g, 0x06, 2) & 0x10);
	CHECK_EQ(enumerate(g), 5);
	/* Order: common, notify, ISR, device, PCI-cfg. */
	p = cfg_rd(g, 0x34, 1);
	for (i = 1; i <= 5 && p; i++) {
		CHECK_EQ(cfg_rd(g, p + 3, 1), i);
		p = cfg_rd(g, p + 1, 1);
	}
	CHECK_EQ(i, 6);
	/* Then MSI-X, last. */
	CHECK_EQ(cfg_rd(g, p, 1), 0x11);
	CHECK_EQ(cfg_rd(g, p + 1, 1), 0);
	for (int t = 1; t <= 5; t++) {
		struct vcap *c = &g->caps[t];

		CHECK(c->at >= 0x40 && c->at % 4 == 0);
		CHECK_EQ(c->bar, 0);
		CHECK_EQ(c->len, t == CAP_NOTIFY || t == CAP_PCI ? 20 : 16);
		CHECK(c->offset + c->length <= 0x4000);
	}
	CHECK_EQ(g->caps[CAP_COMMON].offset, 0x0000);
	CHECK(g->caps[CAP_COMMON].length >= 0x38);
	CHECK_EQ(g->caps[CAP_ISR].offset, 0x1000);
	CHECK(g->caps[CAP_ISR].length >= 1);
	CHECK_EQ(g->caps[CAP_DEVICE].offset, 0x2000);
	CHECK(g->caps[CAP_DEVICE].length >= 40);
	CHECK_EQ(g->caps[CAP_NOTIFY].offset, 0x3000);
	CHECK_EQ(g->notify_mult, 4);
	CHECK(g->caps[CAP_NOTIFY].length >= 2 * 4);
	/* BAR0: 16 KiB, 32-bit memory, non-prefetchable. */
	CHECK_U64(cfg_rd(g, 0x10, 4), 0);
	CHECK_EQ(map_bar(g), 0x4000);
	CHECK_U64(cfg_rd(g, 0x10, 4), BAR_BASE);
	/* BAR1: 4 KiB, 32-bit memory (the MSI-X table); no others. */
	cfg_wr(g, 0x14, 0xffffffff, 4);
	CHECK_U64(cfg_rd(g, 0x14, 4), 0xfffff000u);
	for (int b = 2; b < 6; b++) {
		cfg_wr(g, 0x10 + 4 * b, 0xffffffff, 4);
		CHECK_U64(cfg_rd(g, 0x10 + 4 * b, 4), 0);
	}
	/* The capabilities are read-only for the guest. */
	cfg_wr(g, g->caps[CAP_COMMON].at + 8, 0x1234, 4);
	CHECK_U64(cfg_rd(g, g->caps[CAP_COMMON].at + 8, 4), 0);
	g_free(g);
}

TEST(init_attach_used_ring_and_isr)
{
	struct guest *g = g_new();
	struct viommu_domain *dom = NULL;
	int warns;

	REQUIRE(g);
	bring_up(g);
	warns = g->warns;
	CHECK_EQ(g->intx_calls, 0);
	CHECK_EQ(attach(g, 1), 0);
	REQUIRE(viommu_endpoint_domain(g->ep, VIOMMU_NO_PASID, &dom) == 0);
	CHECK(dom != NULL);
	CHECK_EQ(g->warns, warns);
	/* The used buffer raised INTx; STATUS.INTERRUPT shows it. */
	CHECK(g->intx);
	CHECK_EQ(g->intx_calls, 1);
	CHECK(cfg_rd(g, 0x06, 2) & 0x08);
	/* Reading the ISR returns the queue bit, clears it and drops INTx. */
	CHECK_EQ(rd(g, g->caps[CAP_ISR].offset, 1), 1);
	CHECK(!g->intx);
	CHECK_EQ(g->intx_calls, 2);
	CHECK(!(cfg_rd(g, 0x06, 2) & 0x08));
	CHECK_EQ(rd(g, g->caps[CAP_ISR].offset, 1), 0);
	CHECK_EQ(g->intx_calls, 2);
	/* With INTX_DISABLE the line stays low, the status bit still moves. */
	cfg_wr(g, 0x04, 0x2 | 0x4 | 0x400, 2);
	CHECK_EQ(attach(g, 2), 0);
	CHECK(!g->intx);
	CHECK(cfg_rd(g, 0x06, 2) & 0x08);
	CHECK_EQ(rd(g, g->caps[CAP_ISR].offset, 1), 1);
	CHECK(!(cfg_rd(g, 0x06, 2) & 0x08));
	CHECK_EQ(g->intx_calls, 2);
	g_free(g);
}

/* cap_window() - program the PCI-cfg capability's bar/offset/length. */
static void cap_window(struct guest *g, uint8_t bar, uint32_t off,
		       uint32_t len)
{
	uint8_t c = g->caps[CAP_PCI].at;

	cfg_wr(g, c + 4, bar, 1);
	cfg_wr(g, c + 8, off, 4);
	cfg_wr(g, c + 12, len, 4);
}

/* cap_rd() / cap_wr() - a BAR0 access through pci_cfg_data. */
static uint32_t cap_rd(struct guest *g, uint32_t off, uint32_t len)
{
	cap_window(g, 0, off, len);
	return cfg_rd(g, g->caps[CAP_PCI].at + 16, 4);
}

static void cap_wr(struct guest *g, uint32_t off, uint32_t v, uint32_t len)
{
	cap_window(g, 0, off, len);
	cfg_wr(g, g->caps[CAP_PCI].at + 16, v, 4);
}

TEST(pci_cfg_access_capability)
{
	struct guest *g = g_new();
	uint64_t v;
	int warns;

	REQUIRE(g);
	REQUIRE(enumerate(g) == 5);
	REQUIRE(g->caps[CAP_PCI].at);
	/* No BAR programmed, decoding off: only the capability reaches it. */
	CHECK_EQ(pci_bar_access(g->f, BAR_BASE, false, false, &v, 4), -ENOENT);
	CHECK_EQ(cap_rd(g, C_NUMQ, 2), 2);
	cap_wr(g, C_DFSELECT, 1, 4);
	CHECK_EQ(cap_rd(g, C_DFSELECT, 4), 1);
	CHECK_EQ(cap_rd(g, C_DF, 4) & 1, 1); /* VERSION_1 is bit 32 */
	cap_wr(g, C_STATUS, S_ACK, 1);
	CHECK_EQ(cap_rd(g, C_STATUS, 1), S_ACK);
	CHECK_EQ(viommu_virtio_dev_status(viommu_virtio_iommu_dev(g->vi)),
		 S_ACK);
	CHECK_EQ(cap_rd(g, 0x2000, 4), 0x1000); /* page_size_mask low */
	CHECK_EQ(cap_rd(g, 0x1000, 1), 0);      /* ISR */
	/* The window fields read back as written. */
	cap_window(g, 0, 0x16, 2);
	CHECK_EQ(cfg_rd(g, g->caps[CAP_PCI].at + 8, 4), 0x16);
	CHECK_EQ(cfg_rd(g, g->caps[CAP_PCI].at + 12, 4), 2);
	/* Bad windows: nothing is accessed, the data reads 0, one line. */
	warns = g->warns;
	CHECK_EQ(cap_rd(g, C_NUMQ, 3), 0);
	CHECK_EQ(cap_rd(g, C_NUMQ + 1, 2), 0);
	CHECK_EQ(cap_rd(g, 0x4000, 4), 0);
	CHECK_EQ(cap_rd(g, 0xfffffffc, 4), 0);
	cap_window(g, 1, C_NUMQ, 2);
	CHECK_EQ(cfg_rd(g, g->caps[CAP_PCI].at + 16, 4), 0);
	cap_window(g, 0xff, C_NUMQ, 2);
	CHECK_EQ(cfg_rd(g, g->caps[CAP_PCI].at + 16, 4), 0);
	CHECK_EQ(g->warns, warns + 6);
	cap_wr(g, C_STATUS, 0, 3); /* bad: the status is not reset */
	CHECK_EQ(g->warns, warns + 7);
	CHECK_EQ(cap_rd(g, C_STATUS, 1), S_ACK);
	/* A window on a bad BAR0 offset is refused by the BAR model. */
	CHECK_EQ(cap_rd(g, 0x40, 4), 0);
	CHECK_EQ(g->warns, warns + 8);
	g_free(g);
}

TEST(feature_select_windows)
{
	struct guest *g = g_new();
	uint64_t dev;
	int warns;

	REQUIRE(g);
	REQUIRE(enumerate(g) == 5);
	map_bar(g);
	dev = viommu_virtio_dev_features(viommu_virtio_iommu_dev(g->vi));
	CHECK_U64(features(g), dev);
	CHECK(dev & F_VERSION_1);
	CHECK(dev & F_MAP_UNMAP);
	cm_wr(g, C_DFSELECT, 2, 4);
	CHECK_EQ(cm_rd(g, C_DF, 4), 0);
	CHECK_EQ(cm_rd(g, C_DFSELECT, 4), 2);
	cm_wr(g, C_DFSELECT, 0xffffffff, 4);
	CHECK_EQ(cm_rd(g, C_DF, 4), 0);
	/* Driver features: two words; the device keeps what it offers. */
	cm_wr(g, C_STATUS, S_ACK | S_DRIVER, 1);
	cm_wr(g, C_GFSELECT, 0, 4);
	cm_wr(g, C_GF, (uint32_t)(F_MAP_UNMAP | F_PROBE), 4);
	cm_wr(g, C_GFSELECT, 1, 4);
	cm_wr(g, C_GF, 1, 4);
	CHECK_EQ(cm_rd(g, C_GF, 4), 1);
	cm_wr(g, C_GFSELECT, 0, 4);
	CHECK_EQ(cm_rd(g, C_GF, 4), F_MAP_UNMAP | F_PROBE);
	CHECK_U64(viommu_virtio_dev_driver_features(
			  viommu_virtio_iommu_dev(g->vi)),
		  F_VERSION_1 | F_MAP_UNMAP | F_PROBE);
	warns = g->warns;
	cm_wr(g, C_GFSELECT, 2, 4);
	cm_wr(g, C_GF, 0, 4);
	CHECK_EQ(g->warns, warns);
	cm_wr(g, C_GF, 0x10, 4);
	CHECK_EQ(g->warns, warns + 1);
	CHECK_EQ(cm_rd(g, C_GF, 4), 0);
	/* After FEATURES_OK the words are frozen. */
	cm_wr(g, C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK, 1);
	CHECK_EQ(cm_rd(g, C_STATUS, 1), S_ACK | S_DRIVER | S_FEATURES_OK);
	cm_wr(g, C_GFSELECT, 0, 4);
	cm_wr(g, C_GF, 0, 4);
	CHECK_EQ(cm_rd(g, C_GF, 4), F_MAP_UNMAP | F_PROBE);
	CHECK_U64(viommu_virtio_dev_driver_features(
			  viommu_virtio_iommu_dev(g->vi)),
		  F_VERSION_1 | F_MAP_UNMAP | F_PROBE);
	g_free(g);
}

TEST(features_ok_refused_without_map_unmap)
{
	struct guest *g = g_new();

	REQUIRE(g);
	REQUIRE(enumerate(g) == 5);
	map_bar(g);
	cm_wr(g, C_STATUS, S_ACK | S_DRIVER, 1);
	cm_wr(g, C_GFSELECT, 1, 4);
	cm_wr(g, C_GF, 1, 4);
	cm_wr(g, C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK, 1);
	CHECK_EQ(cm_rd(g, C_STATUS, 1), S_ACK | S_DRIVER);
	g_free(g);
}

TEST(queue_registers)
{
	struct guest *g = g_new();
	int warns;

	REQUIRE(g);
	REQUIRE(enumerate(g) == 5);
	map_bar(g);
	cm_wr(g, C_STATUS, S_ACK | S_DRIVER, 1);
	cm_wr(g, C_GFSELECT, 0, 4);
	cm_wr(g, C_GF, (uint32_t)F_MAP_UNMAP, 4);
	cm_wr(g, C_GFSELECT, 1, 4);
	cm_wr(g, C_GF, 1, 4);
	cm_wr(g, C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK, 1);
	/* queue_notify_off is the queue index. */
	for (uint16_t q = 0; q < 2; q++) {
		cm_wr(g, C_QSEL, q, 2);
		CHECK_EQ(cm_rd(g, C_QSEL, 2), q);
		CHECK_EQ(cm_rd(g, C_QNOFF, 2), q);
	}
	/* A queue that does not exist: size 0, writes refused. */
	warns = g->warns;
	cm_wr(g, C_QSEL, 2, 2);
	CHECK_EQ(cm_rd(g, C_QSIZE, 2), 0);
	CHECK_EQ(cm_rd(g, C_QENABLE, 2), 0);
	CHECK_EQ(cm_rd(g, C_QNOFF, 2), 0);
	cm_wr(g, C_QSIZE, 16, 2);
	cm_wr(g, C_QENABLE, 1, 2);
	cm_wr(g, C_QDESC, 0x1000, 4);
	CHECK_EQ(cm_rd(g, C_QDESC, 8), 0);
	CHECK_EQ(g->warns, warns + 3);
	/* queue_size is bounded by the maximum. */
	cm_wr(g, C_QSEL, 0, 2);
	cm_wr(g, C_QSIZE, 512, 2);
	cm_wr(g, C_QSIZE, 0, 2);
	CHECK_EQ(cm_rd(g, C_QSIZE, 2), 256);
	CHECK_EQ(g->warns, warns + 5);
	cm_wr(g, C_QSIZE, 32, 2);
	CHECK_EQ(cm_rd(g, C_QSIZE, 2), 32);
	/* Rings outside guest RAM: queue_enable stays 0. */
	cm_wr(g, C_QDESC, 0x7ff000000000ull, 8);
	cm_wr(g, C_QDRIVER, RQ_GPA + 0x1000, 8);
	cm_wr(g, C_QDEVICE, RQ_GPA + 0x2000, 8);
	cm_wr(g, C_QENABLE, 1, 2);
	CHECK_EQ(cm_rd(g, C_QENABLE, 2), 0);
	/* Fix it and enable; then the queue's registers are frozen. */
	cm_wr(g, C_QDESC + 4, 0, 4);
	cm_wr(g, C_QDESC, RQ_GPA, 4);
	CHECK_U64(cm_rd(g, C_QDESC, 8), RQ_GPA);
	cm_wr(g, C_QENABLE, 1, 2);
	CHECK_EQ(cm_rd(g, C_QENABLE, 2), 1);
	warns = g->warns;
	cm_wr(g, C_QSIZE, 16, 2);
	cm_wr(g, C_QDESC, 0, 4);
	cm_wr(g, C_QENABLE, 0, 2);
	CHECK_EQ(g->warns, warns + 3);
	CHECK_EQ(cm_rd(g, C_QSIZE, 2), 32);
	CHECK_U64(cm_rd(g, C_QDESC, 8), RQ_GPA);
	CHECK_EQ(cm_rd(g, C_QENABLE, 2), 1);
	/* MSI-X vectors (§4.1.5.1.2): past the table reads NO_VECTOR. */
	cm_wr(g, C_QMSIX, NVEC, 2);
	cm_wr(g, C_MSIX, 0, 2);
	CHECK_EQ(cm_rd(g, C_QMSIX, 2), 0xffff);
	CHECK_EQ(cm_rd(g, C_MSIX, 2), 0);
	g_free(g);
}

TEST(bad_offsets_and_sizes)
{
	struct guest *g = g_new();
	uint32_t notify;
	uint64_t v;
	int warns;

	REQUIRE(g);
	bring_up(g);
	notify = g->caps[CAP_NOTIFY].offset;
	warns = g->warns;
	/* Common config: wrong widths, middles of fields, past the end. */
	CHECK_EQ(cm_rd(g, C_DF, 2), 0);
	CHECK_EQ(cm_rd(g, C_DF + 1, 1), 0);
	CHECK_EQ(cm_rd(g, C_STATUS, 2), 0);
	CHECK_EQ(cm_rd(g, C_NUMQ, 4), 0);
	CHECK_EQ(cm_rd(g, C_QDESC + 2, 2), 0);
	CHECK_EQ(cm_rd(g, C_QDESC, 2), 0);
	CHECK_EQ(cm_rd(g, 0x40, 4), 0);
	CHECK_EQ(cm_rd(g, 0xffc, 4), 0);
	CHECK_EQ(g->warns, warns + 8);
	/* Read-only fields. */
	cm_wr(g, C_NUMQ, 7, 2);
	cm_wr(g, C_CFGGEN, 7, 1);
	cm_wr(g, C_DF, 0, 4);
	cm_wr(g, C_QNOFF, 5, 2);
	CHECK_EQ(g->warns, warns + 12);
	CHECK_EQ(cm_rd(g, C_NUMQ, 2), 2);
	/* A misaligned status write does not reset the device. */
	cm_wr(g, C_STATUS, 0, 2);
	CHECK_EQ(cm_rd(g, C_STATUS, 1), 0xf);
	/* ISR: one register; writes refused. */
	CHECK_EQ(rd(g, 0x1001, 1), 0);
	wr(g, 0x1000, 0, 1);
	/* Device config: aligned, within the capability, sizes 1/2/4/8. */
	CHECK_EQ(rd(g, 0x2001, 2), 0);
	CHECK_EQ(rd(g, 0x2000 + g->caps[CAP_DEVICE].length, 4), 0);
	/* Notify: reads, bad widths, bad offsets, queues past the end. */
	CHECK_EQ(rd(g, notify, 2), 0);
	wr(g, notify, 0, 1);
	wr(g, notify + 2, 0, 2);
	wr(g, notify + 2 * 4, 2, 2);
	wr(g, notify, 0, 8);
	/* Gaps between the windows of BAR0. */
	CHECK_EQ(rd(g, 0x3ffc, 4), 0);
	CHECK_EQ(g->warns, warns + 23);
	CHECK_EQ(cm_rd(g, C_STATUS, 1), 0xf);
	/* Past the BAR end the PCI layer refuses it. */
	CHECK_EQ(pci_bar_access(g->f, BAR_BASE + 0x3ffe, false, false, &v, 4),
		 -EINVAL);
	/* The transport still works. */
	CHECK_EQ(attach(g, 3), 0);
	g_free(g);
}

TEST(device_config_region)
{
	struct guest *g = g_new();
	uint32_t dc;
	uint64_t feat;

	REQUIRE(g);
	feat = bring_up(g);
	REQUIRE(feat & F_BYPASS_CONFIG);
	dc = g->caps[CAP_DEVICE].offset;
	/* page_size_mask: as 64 bits or as two halves (Linux). */
	CHECK_U64(rd(g, dc, 8), 0x1000);
	CHECK_U64(rd(g, dc, 4), 0x1000);
	CHECK_U64(rd(g, dc + 4, 4), 0);
	CHECK_U64(rd(g, dc + 16, 4), 0xffffffffu); /* input_end low */
	CHECK_U64(rd(g, dc + 20, 4), 0xffff);      /* input_end high */
	CHECK_U64(rd(g, dc + 32, 4), 512);          /* probe_size */
	CHECK_U64(rd(g, dc + CFG_BYPASS, 1), 0);
	/* bypass is the one writable field. */
	wr(g, dc + CFG_BYPASS, 1, 1);
	CHECK_U64(rd(g, dc + CFG_BYPASS, 1), 1);
	CHECK_U64(rd(g, dc + 0x80, 4), 0); /* past the struct: zero */
	CHECK_EQ(cm_rd(g, C_CFGGEN, 1),
		 viommu_virtio_dev_config_generation(
			 viommu_virtio_iommu_dev(g->vi)) & 0xff);
	g_free(g);
}

TEST(device_reset_and_pci_reset)
{
	struct guest *g = g_new();
	int calls;

	REQUIRE(g);
	bring_up(g);
	CHECK_EQ(attach(g, 1), 0);
	CHECK(g->intx);
	/* Status 0: device reset; transport registers back to defaults. */
	cm_wr(g, C_STATUS, 0, 1);
	CHECK_EQ(cm_rd(g, C_STATUS, 1), 0);
	CHECK(!g->intx);
	CHECK_EQ(rd(g, g->caps[CAP_ISR].offset, 1), 0);
	for (uint16_t q = 0; q < 2; q++) {
		cm_wr(g, C_QSEL, q, 2);
		CHECK_EQ(cm_rd(g, C_QENABLE, 2), 0);
		CHECK_EQ(cm_rd(g, C_QSIZE, 2), 256);
		CHECK_U64(cm_rd(g, C_QDESC, 8), 0);
		CHECK_U64(cm_rd(g, C_QDEVICE, 8), 0);
	}
	CHECK_EQ(cm_rd(g, C_GF, 4), 0);
	/* The driver can come up again on fresh rings. */
	bring_up(g);
	CHECK_EQ(attach(g, 1), 0);
	wr(g, g->caps[CAP_DEVICE].offset + CFG_BYPASS, 1, 1);
	/* PCI reset (DEVICE_RESET): config space and device both reset. */
	calls = g->intx_calls;
	pci_func_reset(g->f);
	CHECK(!g->intx);
	CHECK(g->intx_calls > calls);
	CHECK_U64(cfg_rd(g, 0x10, 4), 0);
	CHECK_U64(cfg_rd(g, 0x04, 2), 0);
	CHECK_EQ(viommu_virtio_dev_status(viommu_virtio_iommu_dev(g->vi)), 0);
	map_bar(g);
	CHECK_EQ(cm_rd(g, C_STATUS, 1), 0);
	CHECK_U64(rd(g, g->caps[CAP_DEVICE].offset + CFG_BYPASS, 1), 0);
	cm_wr(g, C_QSEL, 0, 2);
	CHECK_EQ(cm_rd(g, C_QENABLE, 2), 0);
	/* The PCI-cfg capability window is writable state: cleared too. */
	CHECK_U64(cfg_rd(g, g->caps[CAP_PCI].at + 8, 4), 0);
	g_free(g);
}

/* An ISR reader racing the device's interrupts. */
struct isr_thr {
	struct guest *g;
	pthread_mutex_t lock; /* stop and reads (plain: helgrind-friendly) */
	bool stop;
	unsigned long reads;
};

/* isr_step() - count @add reads; the total so far (0 once stopped). */
static unsigned long isr_step(struct isr_thr *t, unsigned long add)
{
	unsigned long n;

	pthread_mutex_lock(&t->lock);
	t->reads += add;
	n = t->stop ? 0 : t->reads;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static void *isr_thread(void *arg)
{
	struct isr_thr *t = arg;
	uint64_t v;

	do
		pci_bar_access(t->g->f, BAR_BASE + 0x1000, false, false, &v, 1);
	while (isr_step(t, 1));
	return NULL;
}

TEST(isr_reads_race_interrupts_without_loss)
{
	struct guest *g = g_new();
	struct isr_thr t = { .lock = PTHREAD_MUTEX_INITIALIZER };
	pthread_t th;
	bool level;

	REQUIRE(g);
	bring_up(g);
	t.g = g;
	REQUIRE(pthread_create(&th, NULL, isr_thread, &t) == 0);
	while (isr_step(&t, 0) == 0)
		; /* let the reader start before the requests */
	for (int i = 0; i < 2000; i++)
		CHECK_EQ(attach(g, 1 + (i & 3)), 0);
	pthread_mutex_lock(&t.lock);
	t.stop = true;
	pthread_mutex_unlock(&t.lock);
	pthread_join(th, NULL);
	/* A pending ISR bit always has INTx up: none was lost. */
	level = g->intx;
	if (rd(g, 0x1000, 1))
		CHECK(level);
	CHECK(!g->intx);
	g_free(g);
}

/* find_msix() - the MSI-X capability's config offset, 0 if none. */
static uint8_t find_msix(struct guest *g)
{
	uint32_t p = cfg_rd(g, 0x34, 1);

	for (int n = 0; p && n < 48; n++) {
		if (cfg_rd(g, p, 1) == 0x11)
			return (uint8_t)p;
		p = cfg_rd(g, p + 1, 1);
	}
	return 0;
}

/* b1_rd() / b1_wr() - BAR1 accesses at @off; the access must route. */
static uint64_t b1_rd(struct guest *g, uint32_t off, unsigned int size)
{
	uint64_t v = 0;

	CHECK_EQ(pci_bar_access(g->f, BAR1_BASE + off, false, false, &v, size),
		 0);
	return v;
}

static void b1_wr(struct guest *g, uint32_t off, uint64_t val,
		  unsigned int size)
{
	CHECK_EQ(pci_bar_access(g->f, BAR1_BASE + off, false, true, &val,
				size), 0);
}

/* msix_ctrl_wr() - write MSI-X Message Control. */
static void msix_ctrl_wr(struct guest *g, uint16_t v)
{
	cfg_wr(g, find_msix(g) + 2, v, 2);
}

/*
 * msix_program() - BAR1 at BAR1_BASE (BAR0 must be mapped: decoding on),
 * table entry v = { MSI_ADDR + v * 0x1000, data 0x40 + v, unmasked }, and
 * MSI-X Enable if @enable.
 */
static void msix_program(struct guest *g, bool enable)
{
	cfg_wr(g, 0x14, BAR1_BASE, 4);
	for (uint32_t v = 0; v < NVEC; v++) {
		b1_wr(g, v * 16, MSI_ADDR + v * 0x1000, 4);
		b1_wr(g, v * 16 + 4, 0, 4);
		b1_wr(g, v * 16 + 8, 0x40 + v, 4);
		b1_wr(g, v * 16 + 12, 0, 4);
	}
	if (enable)
		msix_ctrl_wr(g, 0x8000);
}

/* map_vectors() - requestq -> 0, eventq -> 1, config changes -> 2. */
static void map_vectors(struct guest *g)
{
	cm_wr(g, C_MSIX, 2, 2);
	CHECK_EQ(cm_rd(g, C_MSIX, 2), 2);
	for (uint16_t q = 0; q < 2; q++) {
		cm_wr(g, C_QSEL, q, 2);
		cm_wr(g, C_QMSIX, q, 2);
		CHECK_EQ(cm_rd(g, C_QMSIX, 2), q);
	}
}

/*
 * post_fault() - post an event buffer, report a fault: the device fills
 * the buffer (a used buffer on the eventq).  Return: 0 when it came back.
 */
static int post_fault(struct guest *g)
{
	struct drvring_seg seg = { EVT_GPA, 64, true };
	struct viommu_fault ft = { .reason = VIOMMU_FAULT_NO_MAPPING,
				   .endpoint = EP_ID, .address = 0x5000 };
	uint64_t token = 0;
	uint32_t len = 0;

	if (drvring_add(&g->eq, &seg, 1, 55, false))
		return -1;
	kick(g, 1);
	if (viommu_virtio_iommu_report_fault(g->vi, &ft))
		return -1;
	if (drvring_get_used(&g->eq, &token, &len) || token != 55)
		return -1;
	return 0;
}

/*
 * break_requestq() - a request outside guest RAM: the queue breaks, the
 * device enters NEEDS_RESET and signals a configuration change.
 */
static void break_requestq(struct guest *g)
{
	struct drvring_seg segs[2] = {
		{ 0x7000000000ull, 20, false }, { REQ_GPA + 0x100, 4, true },
	};

	REQUIRE(drvring_add(&g->rq, segs, 2, 78, false) == 0);
	kick(g, 0);
}

TEST(msix_capability_and_bar1)
{
	struct guest *g = g_new();
	uint8_t c;
	uint64_t v = 0;
	int warns;

	REQUIRE(g);
	c = find_msix(g);
	REQUIRE(c);
	CHECK(c >= 0x40 && c % 4 == 0);
	/* Table size N - 1 = 2; table at BAR1 + 0, PBA at BAR1 + 0x800. */
	CHECK_U64(cfg_rd(g, c + 2, 2), NVEC - 1);
	CHECK_U64(cfg_rd(g, c + 4, 4), 0x000 | 1);
	CHECK_U64(cfg_rd(g, c + 8, 4), 0x800 | 1);
	/* Only Enable and Function Mask are writable; the rest is not. */
	cfg_wr(g, c + 2, 0xffff, 2);
	CHECK_U64(cfg_rd(g, c + 2, 2), 0xc000 | (NVEC - 1));
	cfg_wr(g, c, 0xffffffff, 4);
	CHECK_U64(cfg_rd(g, c, 4), 0xc0020011u);
	cfg_wr(g, c + 2, 0, 2);
	CHECK_U64(cfg_rd(g, c + 2, 2), NVEC - 1);
	cfg_wr(g, c + 4, 0xffffffff, 4);
	cfg_wr(g, c + 8, 0xffffffff, 4);
	CHECK_U64(cfg_rd(g, c + 4, 4), 0x000 | 1);
	CHECK_U64(cfg_rd(g, c + 8, 4), 0x800 | 1);
	/* The table: every entry zero and masked at power-on. */
	REQUIRE(enumerate(g) == 5);
	map_bar(g);
	cfg_wr(g, 0x14, BAR1_BASE, 4);
	for (uint32_t e = 0; e < NVEC; e++) {
		CHECK_U64(b1_rd(g, e * 16, 8), 0);
		CHECK_U64(b1_rd(g, e * 16 + 8, 4), 0);
		CHECK_U64(b1_rd(g, e * 16 + 12, 4), 1);
	}
	CHECK_U64(b1_rd(g, 0x800, 8), 0);
	/* Writable, read back through both the address and BAR1 + offset. */
	b1_wr(g, 16, MSI_ADDR + 0x1000, 4);
	b1_wr(g, 20, 0x12, 4);
	b1_wr(g, 24, 0x0000000000000041ull, 8);
	CHECK_U64(b1_rd(g, 16, 8), 0x12fee01000ull);
	CHECK_U64(b1_rd(g, 24, 8), 0x41);
	CHECK_EQ(pci_bar_rw(g->f, 1, 24, false, &v, 4), 0);
	CHECK_U64(v, 0x41);
	/* Outside the table and PBA BAR1 has nothing: 0, one line each. */
	warns = g->warns;
	CHECK_U64(b1_rd(g, 0x100, 4), 0);
	b1_wr(g, 0x808, 1, 4);
	CHECK_U64(b1_rd(g, 0x808, 4), 0);
	CHECK_EQ(g->warns, warns + 3);
	/* BAR0 is where it was. */
	CHECK_EQ(cm_rd(g, C_NUMQ, 2), 2);
	g_free(g);
}

TEST(msix_vector_registers)
{
	/* VIRTIO 1.3 §4.1.5.1.2: a table entry sticks, others NO_VECTOR. */
	struct guest *g = g_new();
	int warns;

	REQUIRE(g);
	REQUIRE(enumerate(g) == 5);
	map_bar(g);
	CHECK_EQ(cm_rd(g, C_MSIX, 2), 0xffff);
	warns = g->warns;
	cm_wr(g, C_MSIX, 2, 2);
	CHECK_EQ(cm_rd(g, C_MSIX, 2), 2);
	cm_wr(g, C_MSIX, NVEC, 2);
	CHECK_EQ(cm_rd(g, C_MSIX, 2), 0xffff);
	CHECK_EQ(g->warns, warns + 1);
	cm_wr(g, C_MSIX, 1, 2);
	cm_wr(g, C_MSIX, 0xffff, 2); /* unmapping is not refused */
	CHECK_EQ(cm_rd(g, C_MSIX, 2), 0xffff);
	CHECK_EQ(g->warns, warns + 1);
	/* Per queue, kept separately. */
	cm_wr(g, C_QSEL, 0, 2);
	CHECK_EQ(cm_rd(g, C_QMSIX, 2), 0xffff);
	cm_wr(g, C_QMSIX, 0, 2);
	cm_wr(g, C_QSEL, 1, 2);
	cm_wr(g, C_QMSIX, 2, 2);
	CHECK_EQ(cm_rd(g, C_QMSIX, 2), 2);
	cm_wr(g, C_QSEL, 0, 2);
	CHECK_EQ(cm_rd(g, C_QMSIX, 2), 0);
	cm_wr(g, C_QSEL, 1, 2);
	cm_wr(g, C_QMSIX, 0x7ff, 2);
	CHECK_EQ(cm_rd(g, C_QMSIX, 2), 0xffff);
	CHECK_EQ(g->warns, warns + 2);
	/* A queue that does not exist has no vector. */
	cm_wr(g, C_QSEL, 2, 2);
	cm_wr(g, C_QMSIX, 0, 2);
	CHECK_EQ(cm_rd(g, C_QMSIX, 2), 0xffff);
	CHECK_EQ(g->warns, warns + 3);
	/* Device reset: every event unmapped. */
	cm_wr(g, C_MSIX, 2, 2);
	cm_wr(g, C_STATUS, 0, 1);
	CHECK_EQ(cm_rd(g, C_MSIX, 2), 0xffff);
	cm_wr(g, C_QSEL, 0, 2);
	CHECK_EQ(cm_rd(g, C_QMSIX, 2), 0xffff);
	/* Writable while the queue is enabled (Linux unmaps that way). */
	bring_up(g);
	cm_wr(g, C_QSEL, 0, 2);
	cm_wr(g, C_QMSIX, 1, 2);
	CHECK_EQ(cm_rd(g, C_QMSIX, 2), 1);
	cm_wr(g, C_QMSIX, 0xffff, 2);
	CHECK_EQ(cm_rd(g, C_QMSIX, 2), 0xffff);
	/* PCI reset: unmapped too. */
	map_vectors(g);
	pci_func_reset(g->f);
	map_bar(g);
	CHECK_EQ(cm_rd(g, C_MSIX, 2), 0xffff);
	for (uint16_t q = 0; q < 2; q++) {
		cm_wr(g, C_QSEL, q, 2);
		CHECK_EQ(cm_rd(g, C_QMSIX, 2), 0xffff);
	}
	g_free(g);
}

TEST(msix_queue_and_config_interrupts)
{
	struct guest *g = g_new();

	REQUIRE(g);
	bring_up(g);
	msix_program(g, true);
	map_vectors(g);
	/* A used buffer on the requestq: vector 0, entry 0's message. */
	CHECK_EQ(attach(g, 1), 0);
	CHECK_EQ(g->msix_calls, 1);
	CHECK_EQ(g->msix_count[0], 1);
	CHECK_U64(g->msix_addr, MSI_ADDR);
	CHECK_U64(g->msix_data, 0x40);
	/* No INTx with MSI-X enabled. */
	CHECK_EQ(g->intx_calls, 0);
	CHECK(!g->intx);
	CHECK(!(cfg_rd(g, 0x06, 2) & 0x08));
	/* A fault report on the eventq: vector 1. */
	CHECK_EQ(post_fault(g), 0);
	CHECK_EQ(g->msix_calls, 2);
	CHECK_EQ(g->msix_count[1], 1);
	CHECK_U64(g->msix_addr, MSI_ADDR + 0x1000);
	CHECK_U64(g->msix_data, 0x41);
	/* A configuration change (NEEDS_RESET): the config vector, 2. */
	break_requestq(g);
	CHECK(cm_rd(g, C_STATUS, 1) & 0x40);
	CHECK_EQ(g->msix_count[2], 1);
	CHECK_EQ(g->msix_vec, 2);
	CHECK_U64(g->msix_addr, MSI_ADDR + 0x2000);
	CHECK_U64(g->msix_data, 0x42);
	CHECK_EQ(g->msix_calls, 3);
	CHECK_EQ(g->msix_count[0], 1);
	CHECK_EQ(g->msix_count[1], 1);
	CHECK_EQ(g->intx_calls, 0);
	g_free(g);
}

TEST(msix_shared_vector_and_no_vector)
{
	struct guest *g = g_new();

	REQUIRE(g);
	bring_up(g);
	msix_program(g, true);
	map_vectors(g);
	/* Both queues on vector 1: any event may use any vector. */
	cm_wr(g, C_QSEL, 0, 2);
	cm_wr(g, C_QMSIX, 1, 2);
	CHECK_EQ(attach(g, 1), 0);
	CHECK_EQ(post_fault(g), 0);
	CHECK_EQ(g->msix_count[1], 2);
	CHECK_EQ(g->msix_calls, 2);
	/* NO_VECTOR: the used buffer arrives, no interrupt of any kind. */
	cm_wr(g, C_QMSIX, 0xffff, 2);
	CHECK_EQ(attach(g, 2), 0);
	CHECK_EQ(g->msix_calls, 2);
	CHECK_EQ(g->intx_calls, 0);
	CHECK_U64(b1_rd(g, 0x800, 8), 0);
	g_free(g);
}

TEST(msix_masked_vector_pending_until_unmasked)
{
	struct guest *g = g_new();
	uint8_t c;

	REQUIRE(g);
	bring_up(g);
	msix_program(g, true);
	map_vectors(g);
	c = find_msix(g);
	/* Entry 0 masked: the interrupt waits in the PBA. */
	b1_wr(g, 12, 1, 4);
	CHECK_EQ(attach(g, 1), 0);
	CHECK_EQ(g->msix_calls, 0);
	CHECK_U64(b1_rd(g, 0x800, 8), 1);
	CHECK_U64(b1_rd(g, 0x800, 4), 1);
	/* The guest moves the message while masked; unmasking sends it. */
	b1_wr(g, 8, 0x77, 4);
	b1_wr(g, 12, 0, 4);
	CHECK_EQ(g->msix_calls, 1);
	CHECK_EQ(g->msix_vec, 0);
	CHECK_U64(g->msix_data, 0x77);
	CHECK_U64(b1_rd(g, 0x800, 8), 0);
	b1_wr(g, 12, 0, 4); /* unmasking again: nothing more */
	CHECK_EQ(g->msix_calls, 1);
	/* Function Mask: the same, for the eventq's vector. */
	cfg_wr(g, c + 2, 0xc000, 2);
	CHECK_EQ(post_fault(g), 0);
	CHECK_EQ(g->msix_calls, 1);
	CHECK_U64(b1_rd(g, 0x800, 8), 2);
	cfg_wr(g, c + 2, 0x8000, 2);
	CHECK_EQ(g->msix_calls, 2);
	CHECK_EQ(g->msix_vec, 1);
	CHECK_U64(b1_rd(g, 0x800, 8), 0);
	CHECK_EQ(g->intx_calls, 0);
	g_free(g);
}

TEST(msix_disabled_uses_intx)
{
	struct guest *g = g_new();

	REQUIRE(g);
	bring_up(g);
	msix_program(g, false);
	map_vectors(g);
	CHECK(!pci_msix_enabled(g->f));
	/* Vectors mapped, MSI-X Enable clear: INTx as before. */
	CHECK_EQ(attach(g, 1), 0);
	CHECK_EQ(g->msix_calls, 0);
	CHECK(g->intx);
	CHECK_EQ(g->intx_calls, 1);
	CHECK_EQ(pci_msix_notify(g->f, 0), -ENODEV);
	CHECK_U64(b1_rd(g, 0x800, 8), 0);
	/* Enabling MSI-X takes the line away, the status bit stays. */
	msix_ctrl_wr(g, 0x8000);
	CHECK(pci_msix_enabled(g->f));
	CHECK(!g->intx);
	CHECK(cfg_rd(g, 0x06, 2) & 0x08);
	CHECK_EQ(attach(g, 2), 0);
	CHECK_EQ(g->msix_calls, 1);
	CHECK_EQ(g->intx_calls, 2);
	/* Disabled again: the unread ISR's INTx is back; a read drops it. */
	msix_ctrl_wr(g, 0);
	CHECK(g->intx);
	CHECK_EQ(rd(g, g->caps[CAP_ISR].offset, 1), 1);
	CHECK(!g->intx);
	CHECK_EQ(attach(g, 3), 0);
	CHECK(g->intx);
	CHECK_EQ(g->msix_calls, 1);
	g_free(g);
}

TEST(msix_reset_state)
{
	struct guest *g = g_new();
	uint8_t c;

	REQUIRE(g);
	bring_up(g);
	msix_program(g, true);
	map_vectors(g);
	c = find_msix(g);
	/* Device reset (status 0): vectors unmapped, the PCI side stays. */
	cm_wr(g, C_STATUS, 0, 1);
	CHECK_EQ(cm_rd(g, C_MSIX, 2), 0xffff);
	CHECK_U64(cfg_rd(g, c + 2, 2), 0x8000 | (NVEC - 1));
	CHECK_U64(b1_rd(g, 8, 4), 0x40);
	/* The driver comes back with MSI-X still enabled. */
	bring_up(g);
	map_vectors(g);
	CHECK_EQ(attach(g, 1), 0);
	CHECK_EQ(g->msix_count[0], 1);
	/* PCI reset: MSI-X off, the table zero and masked. */
	b1_wr(g, 12, 1, 4);
	CHECK_EQ(attach(g, 2), 0);
	CHECK_U64(b1_rd(g, 0x800, 8), 1);
	pci_func_reset(g->f);
	CHECK_U64(cfg_rd(g, c + 2, 2), NVEC - 1);
	CHECK(!pci_msix_enabled(g->f));
	map_bar(g);
	cfg_wr(g, 0x14, BAR1_BASE, 4);
	CHECK_U64(b1_rd(g, 0, 8), 0);
	CHECK_U64(b1_rd(g, 8, 8), 1ull << 32);
	CHECK_U64(b1_rd(g, 0x800, 8), 0);
	CHECK_EQ(g->msix_calls, 1);
	g_free(g);
}

TEST(msix_hostile_bar1_accesses)
{
	struct guest *g = g_new();
	uint64_t before[NVEC * 2], v;
	int warns;

	REQUIRE(g);
	bring_up(g);
	msix_program(g, true);
	map_vectors(g);
	b1_wr(g, 12, 1, 4); /* vector 0 masked */
	CHECK_EQ(attach(g, 1), 0);
	for (uint32_t i = 0; i < NVEC * 2; i++)
		before[i] = b1_rd(g, i * 8, 8);
	warns = g->warns;
	/* Sizes 1 and 2, misaligned, 8 bytes at 4 mod 8: all ones. */
	CHECK_U64(b1_rd(g, 8, 1), 0xff);
	CHECK_U64(b1_rd(g, 8, 2), 0xffff);
	CHECK_U64(b1_rd(g, 2, 4), 0xffffffffu);
	CHECK_U64(b1_rd(g, 4, 8), ~0ull);
	CHECK_U64(b1_rd(g, 0x801, 1), 0xff);
	CHECK_EQ(g->warns, warns + 5);
	/* Writes of those shapes change nothing, nor do PBA writes. */
	b1_wr(g, 12, 0, 1);
	b1_wr(g, 12, 0, 2);
	b1_wr(g, 10, 0, 4);
	b1_wr(g, 4, 0, 8);
	b1_wr(g, 0x800, 0, 8);
	b1_wr(g, 0x800, 0, 4);
	CHECK_EQ(g->warns, warns + 11);
	for (uint32_t i = 0; i < NVEC * 2; i++)
		CHECK_U64(b1_rd(g, i * 8, 8), before[i]);
	CHECK_U64(b1_rd(g, 0x800, 8), 1);
	CHECK_EQ(g->msix_calls, 0);
	/* Past the BAR end the PCI layer refuses it. */
	CHECK_EQ(pci_bar_access(g->f, BAR1_BASE + 0xffc, false, false, &v, 8),
		 -EINVAL);
	CHECK_EQ(pci_bar_rw(g->f, 1, 0x1000, false, &v, 4), -EINVAL);
	/* Unmasking still delivers the one pending interrupt. */
	b1_wr(g, 12, 0, 4);
	CHECK_EQ(g->msix_calls, 1);
	CHECK_U64(b1_rd(g, 0x800, 8), 0);
	g_free(g);
}

TEST(init_refuses_bad_arguments)
{
	struct virtio_pci vp;

	CHECK_EQ(virtio_pci_init(NULL, NULL, "x", NULL), -EINVAL);
	CHECK_EQ(virtio_pci_init(&vp, NULL, "x", NULL), -EINVAL);
	CHECK(virtio_pci_func(NULL) == NULL);
	virtio_pci_destroy(NULL);
}

TEST_MAIN()
