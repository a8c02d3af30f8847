/*
 * embed_virtio_iommu.c - how a VMM embeds our virtio-iommu as a PCI
 * function on its own bus, with one endpoint whose DMA it translates.
 *
 * The program plays three parts, each through the public API only
 * (<viommu/viommu.h>):
 *   - the VMM: guest RAM in a sealed memfd, the core context, the
 *     virtio-iommu device wrapped in the virtio-pci transport, and a tiny
 *     "bus" that routes the guest's configuration and MMIO accesses to the
 *     function (viommu_pci_func_cfg_*, viommu_pci_func_bar_*) and takes
 *     its MSI-X messages (viommu_pci_func_attach); it also writes the ACPI
 *     VIOT that would tell a real guest where the IOMMU and endpoint are;
 *   - the guest's virtio-iommu driver: finds the virtio capabilities,
 *     negotiates features, sets up the request and event queues (split
 *     rings) and sends ATTACH, MAP and UNMAP requests (VIRTIO 1.3 §5.13);
 *   - a device behind the IOMMU (PCI 00:03.0): it does DMA by IOVA with
 *     viommu_dma_write(), and its bad DMA becomes a fault report on the
 *     guest's event queue.
 * Every step is checked; the exit status is 0 only if every check held.
 * A real VMM keeps the first part and gets the other two from its guest.
 */
#include <viommu/viommu.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM_SIZE (1u << 20)     /* 1 MiB of guest RAM at GPA 0 */
#define BAR0_GPA 0xe0000000u    /* where the guest places the BARs */
#define BAR1_GPA 0xe0004000u
#define EP_RID 0x18u            /* PCI 00:03.0, the endpoint */
#define IOMMU_BDF 0x10u         /* PCI 00:02.0, the virtio-iommu */

/* Guest RAM layout the "driver" uses. */
#define RQ_DESC 0x1000u         /* request queue: descriptors, */
#define RQ_AVAIL 0x2000u        /* available ring, */
#define RQ_USED 0x3000u         /* used ring */
#define EQ_DESC 0x4000u         /* event queue, same shape */
#define EQ_AVAIL 0x5000u
#define EQ_USED 0x6000u
#define REQ_BUF 0x8000u         /* one request at a time */
#define EVT_BUF 0x9000u         /* event buffers, 64 bytes each */
#define DATA_GPA 0x80000u       /* the page the endpoint may write */
#define QSIZE 16u

/* virtio-pci (VIRTIO 1.3 §4.1.4) and virtio-iommu (§5.13) constants. */
#define CAP_ID_VNDR 0x09
#define CAP_ID_MSIX 0x11
#define CFG_COMMON 1
#define CFG_NOTIFY 2
#define CFG_DEVICE 4
#define STATUS_ACK 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define F_VERSION_1 (1ull << 32)
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define REQ_ATTACH 1
#define REQ_MAP 3
#define REQ_UNMAP 4
#define MAP_F_READ 1
#define MAP_F_WRITE 2

static int checks, failures;

static void check(int ok, const char *what)
{
	checks++;
	if (!ok)
		failures++;
	printf("   %s %s\n", ok ? "[ok]  " : "[FAIL]", what);
}

/* ------------------------------------------------------------------ */
/* The VMM                                                            */

struct vmm {
	int fd;
	uint8_t *ram;                 /* the VMM's view of guest RAM */
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_endpoint *ep;   /* 00:03.0 */
	struct viommu_virtio_iommu *vi;
	struct viommu_virtio_pci *vp;
	struct viommu_pci_func *fn;   /* what the bus serves */
	unsigned int msix_count[4];   /* MSI-X messages per vector */
	uint32_t last_msi_data;
};

/*
 * on_msix() - the function fired an MSI-X vector; a VMM writes @data to
 * @addr in its interrupt controller.  We count it.
 */
static void on_msix(void *opaque, unsigned int vector, uint64_t addr,
		    uint32_t data)
{
	struct vmm *v = opaque;

	(void)addr;
	if (vector < 4)
		v->msix_count[vector]++;
	v->last_msi_data = data;
}

static void on_log(void *opaque, enum viommu_log_level level,
		   const char *line)
{
	(void)opaque;
	(void)level;
	printf("   [log]    %s\n", line);
}

/*
 * vmm_create() - RAM, context, endpoint, device, transport, bus sink.
 * The context gets no fault callback: the virtio-iommu device consumes
 * the context's faults and reports them to the guest.
 */
static int vmm_create(struct vmm *v)
{
	struct viommu_mem_region r = { .gpa = 0, .size = RAM_SIZE };
	struct viommu_ctx_config cc = {
		.size = sizeof(cc),
		.log = { .fn = on_log, .level = VIOMMU_LOG_WARN },
		.bypass_unattached = false,
	};
	struct viommu_virtio_iommu_config ic = {
		.size = sizeof(ic),
		.log = { .fn = on_log, .level = VIOMMU_LOG_WARN },
	};
	struct viommu_pci_sink sink = {
		.size = sizeof(sink), .msix = on_msix, .opaque = v,
	};
	int rc;

	v->fd = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	/* sealed against shrinking: viommu refuses RAM that can vanish */
	if (v->fd < 0 || ftruncate(v->fd, RAM_SIZE) ||
	    fcntl(v->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		return -errno;
	v->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->fd, 0);
	if (v->ram == MAP_FAILED)
		return -errno;
	r.fd = v->fd;
	if ((rc = viommu_mem_create(NULL, &v->mem)) ||
	    (rc = viommu_mem_set_regions(v->mem, &r, 1)))
		return rc;
	cc.mem = v->mem;
	if ((rc = viommu_ctx_create(&cc, &v->ctx)) ||
	    (rc = viommu_endpoint_create(v->ctx, EP_RID, &v->ep)))
		return rc;
	ic.ctx = v->ctx;
	ic.mem = v->mem;
	if ((rc = viommu_virtio_iommu_create(&ic, &v->vi)) ||
	    (rc = viommu_virtio_pci_create(viommu_virtio_iommu_dev(v->vi),
					   "virtio-iommu", NULL, NULL,
					   &v->vp)))
		return rc;
	v->fn = viommu_virtio_pci_func(v->vp);
	return viommu_pci_func_attach(v->fn, &sink);
}

static void vmm_destroy(struct vmm *v)
{
	/* the bus first, then the device, then what it uses */
	viommu_pci_func_detach(v->fn);
	viommu_virtio_pci_destroy(v->vp);
	viommu_virtio_iommu_destroy(v->vi);
	viommu_ctx_destroy(v->ctx);
	viommu_mem_destroy(v->mem);
	if (v->ram != MAP_FAILED)
		munmap(v->ram, RAM_SIZE);
	if (v->fd >= 0)
		close(v->fd);
}

/*
 * bus_mmio() - the VMM's MMIO dispatch: the address falls in a BAR the
 * guest programmed while memory decoding is on, so it becomes a BAR
 * access at an offset.  Anything else would go to other devices.
 */
static int bus_mmio(struct vmm *v, uint64_t addr, unsigned int size,
		    bool write, uint64_t *val)
{
	uint32_t cmd, bar;
	uint64_t bsize;

	viommu_pci_func_cfg_read(v->fn, 0x04, 2, &cmd);
	if (!(cmd & 0x2))                  /* COMMAND.Memory Space */
		return -ENOENT;
	for (unsigned int i = 0; i < 6; i++) {
		if (viommu_pci_func_bar_size(v->fn, i, &bsize, NULL))
			continue;
		viommu_pci_func_cfg_read(v->fn, 0x10 + 4 * i, 4, &bar);
		bar &= ~0xfu;
		if (addr < bar || addr - bar >= bsize)
			continue;
		return write ? viommu_pci_func_bar_write(v->fn, i, addr - bar,
							 size, *val)
			     : viommu_pci_func_bar_read(v->fn, i, addr - bar,
							size, val);
	}
	return -ENOENT;
}

/* ------------------------------------------------------------------ */
/* The guest's driver, reaching the device only through the bus       */

struct drv {
	struct vmm *v;
	uint64_t common, notify, device; /* MMIO addresses of the windows */
	uint32_t notify_mult;
	uint16_t rq_notify_off, eq_notify_off;
	uint16_t rq_avail, rq_used_seen;
	uint16_t eq_used_seen;
};

static uint64_t rd(struct drv *d, uint64_t addr, unsigned int size)
{
	uint64_t val = ~0ull;

	bus_mmio(d->v, addr, size, false, &val);
	return val;
}

static void wr(struct drv *d, uint64_t addr, unsigned int size, uint64_t val)
{
	bus_mmio(d->v, addr, size, true, &val);
}

/* Little-endian stores into guest RAM (the host is little endian here). */
static void put(struct drv *d, uint64_t gpa, const void *p, size_t n)
{
	memcpy(d->v->ram + gpa, p, n);
}

/*
 * find_caps() - program the BARs, enable decoding and bus mastering,
 * then walk the capability list for the virtio windows and MSI-X.
 */
static int find_caps(struct drv *d, uint8_t *msix_cap)
{
	struct viommu_pci_func *f = d->v->fn;
	uint32_t ptr, id, type, bar, off, bars[2] = { BAR0_GPA, BAR1_GPA };
	int found = 0;

	for (unsigned int i = 0; i < 2; i++)
		viommu_pci_func_cfg_write(f, 0x10 + 4 * i, 4, bars[i]);
	viommu_pci_func_cfg_write(f, 0x04, 2, 0x6); /* Memory | Master */
	viommu_pci_func_cfg_read(f, 0x34, 1, &ptr);
	for (unsigned int n = 0; ptr && n < 48; n++) {
		viommu_pci_func_cfg_read(f, ptr, 1, &id);
		if (id == CAP_ID_MSIX)
			*msix_cap = (uint8_t)ptr;
		if (id == CAP_ID_VNDR) {
			viommu_pci_func_cfg_read(f, ptr + 3, 1, &type);
			viommu_pci_func_cfg_read(f, ptr + 4, 1, &bar);
			viommu_pci_func_cfg_read(f, ptr + 8, 4, &off);
			if (bar < 2) {
				uint64_t a = bars[bar] + off;

				if (type == CFG_COMMON)
					d->common = a, found |= 1;
				if (type == CFG_DEVICE)
					d->device = a, found |= 2;
				if (type == CFG_NOTIFY) {
					d->notify = a, found |= 4;
					viommu_pci_func_cfg_read(
						f, ptr + 16, 4,
						&d->notify_mult);
				}
			}
		}
		viommu_pci_func_cfg_read(f, ptr + 1, 1, &ptr);
	}
	return found == 7 && *msix_cap ? 0 : -ENODEV;
}

/* msix_setup() - enable MSI-X, unmask vectors 0 (requests), 1 (events). */
static void msix_setup(struct drv *d, uint8_t cap)
{
	uint32_t ctrl;

	viommu_pci_func_cfg_read(d->v->fn, cap + 2, 2, &ctrl);
	viommu_pci_func_cfg_write(d->v->fn, cap + 2, 2, ctrl | 0x8000);
	for (unsigned int vec = 0; vec < 2; vec++) {
		uint64_t e = BAR1_GPA + 16 * vec; /* table at BAR1 offset 0 */

		wr(d, e + 0, 4, 0xfee00000u);      /* address */
		wr(d, e + 4, 4, 0);
		wr(d, e + 8, 4, 0x40 + vec);       /* data: the guest's IRQ */
		wr(d, e + 12, 4, 0);               /* unmask */
	}
}

/* queue_setup() - split ring @q of QSIZE entries at the given GPAs. */
static int queue_setup(struct drv *d, uint16_t q, uint64_t desc,
		       uint64_t avail, uint64_t used, uint16_t vector,
		       uint16_t *notify_off)
{
	wr(d, d->common + 0x16, 2, q);                 /* queue_select */
	if (rd(d, d->common + 0x18, 2) < QSIZE)        /* queue_size max */
		return -ENOSPC;
	wr(d, d->common + 0x18, 2, QSIZE);
	wr(d, d->common + 0x1a, 2, vector);            /* queue_msix_vector */
	if (rd(d, d->common + 0x1a, 2) != vector)
		return -EIO;
	wr(d, d->common + 0x20, 8, desc);
	wr(d, d->common + 0x28, 8, avail);
	wr(d, d->common + 0x30, 8, used);
	*notify_off = (uint16_t)rd(d, d->common + 0x1e, 2);
	wr(d, d->common + 0x1c, 2, 1);                 /* queue_enable */
	return 0;
}

/* drv_init() - VIRTIO 1.3 §3.1.1 driver initialisation. */
static int drv_init(struct drv *d, uint64_t *features)
{
	uint64_t dev_f, want;
	uint8_t msix_cap = 0;
	int rc;

	if ((rc = find_caps(d, &msix_cap)))
		return rc;
	msix_setup(d, msix_cap);
	wr(d, d->common + 0x14, 1, 0);                 /* reset */
	wr(d, d->common + 0x14, 1, STATUS_ACK | STATUS_DRIVER);
	wr(d, d->common + 0x00, 4, 0);
	dev_f = rd(d, d->common + 0x04, 4);
	wr(d, d->common + 0x00, 4, 1);
	dev_f |= rd(d, d->common + 0x04, 4) << 32;
	want = F_VERSION_1 |
	       (1ull << VIOMMU_VIRTIO_IOMMU_F_MAP_UNMAP) |
	       (1ull << VIOMMU_VIRTIO_IOMMU_F_INPUT_RANGE);
	*features = dev_f & want;
	wr(d, d->common + 0x08, 4, 0);
	wr(d, d->common + 0x0c, 4, (uint32_t)*features);
	wr(d, d->common + 0x08, 4, 1);
	wr(d, d->common + 0x0c, 4, (uint32_t)(*features >> 32));
	wr(d, d->common + 0x14, 1, STATUS_ACK | STATUS_DRIVER |
	   STATUS_FEATURES_OK);
	if (!(rd(d, d->common + 0x14, 1) & STATUS_FEATURES_OK))
		return -EPROTO;
	if ((rc = queue_setup(d, 0, RQ_DESC, RQ_AVAIL, RQ_USED, 0,
			      &d->rq_notify_off)) ||
	    (rc = queue_setup(d, 1, EQ_DESC, EQ_AVAIL, EQ_USED, 1,
			      &d->eq_notify_off)))
		return rc;
	/* post every event buffer (64 bytes each, device-writable) */
	for (uint16_t i = 0; i < QSIZE; i++) {
		uint64_t a = EVT_BUF + 64u * i;
		uint32_t len = 64;
		uint16_t fl = DESC_F_WRITE;

		put(d, EQ_DESC + 16u * i, &a, 8);
		put(d, EQ_DESC + 16u * i + 8, &len, 4);
		put(d, EQ_DESC + 16u * i + 12, &fl, 2);
		put(d, EQ_AVAIL + 4 + 2u * i, &i, 2);
	}
	{
		uint16_t idx = QSIZE;

		put(d, EQ_AVAIL + 2, &idx, 2);
	}
	wr(d, d->common + 0x14, 1, STATUS_ACK | STATUS_DRIVER |
	   STATUS_FEATURES_OK | STATUS_DRIVER_OK);
	wr(d, d->notify + d->eq_notify_off * d->notify_mult, 2, 1);
	return 0;
}

/*
 * request() - send one request (@body, @len bytes, device-readable) plus
 * a 4-byte device-writable tail; the device answers in the kick itself
 * (it runs in the calling thread).  Returns the status, or -1.
 */
static int request(struct drv *d, const void *body, uint32_t len)
{
	uint64_t a = REQ_BUF, t = REQ_BUF + 0x800;
	uint16_t fl = DESC_F_NEXT, next = 1, wfl = DESC_F_WRITE, slot, idx;
	uint32_t tlen = 4;
	uint8_t tail[4] = { 0xff };

	put(d, REQ_BUF, body, len);
	put(d, t, tail, 4);
	put(d, RQ_DESC + 0, &a, 8);
	put(d, RQ_DESC + 8, &len, 4);
	put(d, RQ_DESC + 12, &fl, 2);
	put(d, RQ_DESC + 14, &next, 2);
	put(d, RQ_DESC + 16, &t, 8);
	put(d, RQ_DESC + 24, &tlen, 4);
	put(d, RQ_DESC + 28, &wfl, 2);
	slot = 0;
	put(d, RQ_AVAIL + 4 + 2u * (d->rq_avail % QSIZE), &slot, 2);
	idx = ++d->rq_avail;
	/*
	 * A real driver puts a write barrier here (the ring entry before the
	 * index) and another before the notify; this "guest" shares the
	 * device's thread, so program order is enough.
	 */
	put(d, RQ_AVAIL + 2, &idx, 2);
	wr(d, d->notify + d->rq_notify_off * d->notify_mult, 2, 0);
	memcpy(&idx, d->v->ram + RQ_USED + 2, 2);
	if (idx != (uint16_t)(d->rq_used_seen + 1))
		return -1;
	d->rq_used_seen = idx;
	return d->v->ram[t];
}

static int req_attach(struct drv *d, uint32_t domain, uint32_t ep)
{
	uint8_t b[20] = { REQ_ATTACH };

	memcpy(b + 4, &domain, 4);
	memcpy(b + 8, &ep, 4);
	return request(d, b, sizeof(b));
}

static int req_map(struct drv *d, uint32_t domain, uint64_t iova,
		   uint64_t last, uint64_t gpa, uint32_t flags)
{
	uint8_t b[36] = { REQ_MAP };

	memcpy(b + 4, &domain, 4);
	memcpy(b + 8, &iova, 8);
	memcpy(b + 16, &last, 8);
	memcpy(b + 24, &gpa, 8);
	memcpy(b + 32, &flags, 4);
	return request(d, b, sizeof(b));
}

static int req_unmap(struct drv *d, uint32_t domain, uint64_t iova,
		     uint64_t last)
{
	uint8_t b[28] = { REQ_UNMAP };

	memcpy(b + 4, &domain, 4);
	memcpy(b + 8, &iova, 8);
	memcpy(b + 16, &last, 8);
	return request(d, b, sizeof(b));
}

/* ------------------------------------------------------------------ */
/* The story                                                          */

/* step_viot() - the table a VMM would hand the guest's firmware. */
static void step_viot(void)
{
	const struct viommu_viot_range r = {
		.bdf_start = EP_RID, .bdf_end = EP_RID,
		.endpoint_start = EP_RID,
	};
	struct viommu_viot_config c = {
		.size = sizeof(c), .iommu_bdf = IOMMU_BDF,
		.ranges = &r, .nr_ranges = 1,
	};
	uint8_t t[128], sum = 0;
	size_t len = 0;

	printf("\n2. The ACPI VIOT: virtio-iommu at 00:02.0 translates "
	       "00:03.0 (endpoint 0x%x).\n", EP_RID);
	check(!viommu_viot_build(&c, t, sizeof(t), &len) && len == 88 &&
	      !memcmp(t, "VIOT", 4), "VIOT built: 88 bytes");
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + t[i]);
	check(sum == 0, "its checksum holds");
}

static void step_probe(struct drv *d)
{
	uint64_t features = 0, psm;

	printf("\n3. The guest's driver finds the virtio capabilities, "
	       "enables MSI-X and\n   negotiates features; request queue "
	       "on vector 0, event queue on vector 1.\n");
	check(!drv_init(d, &features), "driver initialised (DRIVER_OK)");
	check((features & F_VERSION_1) &&
	      (features & (1ull << VIOMMU_VIRTIO_IOMMU_F_MAP_UNMAP)),
	      "VERSION_1 and MAP_UNMAP negotiated");
	psm = rd(d, d->device + 0, 8);
	printf("         page_size_mask 0x%" PRIx64 ", input range 0x%"
	       PRIx64 "-0x%" PRIx64 "\n", psm, rd(d, d->device + 8, 8),
	       rd(d, d->device + 16, 8));
	check(psm & 0x1000, "the device offers 4 KiB pages");
}

static void step_map(struct vmm *v, struct drv *d)
{
	static const char msg[] = "written by 00:03.0 through the IOMMU";
	unsigned int irqs = v->msix_count[0];

	printf("\n4. ATTACH endpoint 0x%x to domain 1, MAP IOVA 0x10000 -> "
	       "GPA 0x%x (read-write);\n   the endpoint's DMA lands there.\n",
	       EP_RID, DATA_GPA);
	check(viommu_dma_write(v->ep, VIOMMU_NO_PASID, 0x10000, "x", 1) ==
	      -EFAULT && v->ram[EVT_BUF] == 1,
	      "before ATTACH the endpoint's DMA is refused (event: DOMAIN)");
	check(req_attach(d, 1, EP_RID) == VIOMMU_VI_S_OK, "ATTACH: OK");
	check(req_map(d, 1, 0x10000, 0x10fff, DATA_GPA,
		      MAP_F_READ | MAP_F_WRITE) == VIOMMU_VI_S_OK, "MAP: OK");
	check(req_map(d, 1, 0x10000, 0x11fff, DATA_GPA,
		      MAP_F_READ) == VIOMMU_VI_S_INVAL,
	      "an overlapping MAP: INVAL (docs/VIRTIO-IOMMU.md)");
	check(v->msix_count[0] == irqs + 3,
	      "each answer raised MSI-X vector 0");
	check(!viommu_dma_write(v->ep, VIOMMU_NO_PASID, 0x10000, msg,
				sizeof(msg)) &&
	      !strcmp((char *)v->ram + DATA_GPA, msg),
	      "DMA write at IOVA 0x10000 landed at GPA 0x80000");
}

static void step_unmap(struct vmm *v, struct drv *d)
{
	unsigned int evirqs = v->msix_count[1];
	uint16_t used;
	uint32_t ep;
	uint64_t addr;
	uint8_t reason;

	printf("\n5. UNMAP; the endpoint's next DMA faults and the fault "
	       "reaches the guest's\n   event queue.\n");
	check(req_unmap(d, 1, 0, 0xfffff) == VIOMMU_VI_S_OK, "UNMAP: OK");
	check(viommu_dma_write(v->ep, VIOMMU_NO_PASID, 0x10000, "y", 1) ==
	      -EFAULT, "DMA after UNMAP is refused (no stale IOTLB entry)");
	memcpy(&used, v->ram + EQ_USED + 2, 2);
	/* fault report: reason u8, rsvd[3], flags le32, endpoint le32,
	 * rsvd[4], address le64 (VIRTIO 1.3 §5.13.6.9) */
	reason = v->ram[EVT_BUF + 64];   /* the second report */
	memcpy(&ep, v->ram + EVT_BUF + 64 + 8, 4);
	memcpy(&addr, v->ram + EVT_BUF + 64 + 16, 8);
	check(used == 2 && ep == EP_RID && addr == 0x10000 && reason == 2,
	      "fault report: endpoint 0x18, address 0x10000, reason "
	      "MAPPING");
	check(v->msix_count[1] == evirqs + 1, "MSI-X vector 1 fired");
	printf("         event: reason %u, endpoint 0x%x, address 0x%" PRIx64
	       "\n", reason, ep, addr);
}

int main(void)
{
	struct vmm v = { .fd = -1, .ram = MAP_FAILED };
	struct drv d = { .v = &v };
	struct viommu_virtio_iommu_stats st;
	int rc;

	printf("viommu %s: a VMM embedding virtio-iommu on its own PCI bus\n",
	       viommu_version());
	printf("\n1. Guest RAM (1 MiB memfd), context, endpoint 00:03.0, "
	       "virtio-iommu in the\n   virtio-pci transport, MSI-X "
	       "delivered to the VMM's callback.\n");
	rc = vmm_create(&v);
	check(!rc, "VMM objects created and the bus sink attached");
	if (rc)
		goto out;
	step_viot();
	step_probe(&d);
	step_map(&v, &d);
	step_unmap(&v, &d);
	check(!viommu_virtio_iommu_stats(v.vi, &st, sizeof(st)) &&
	      st.requests[VIOMMU_VI_REQ_MAP][VIOMMU_VI_S_OK] == 1 &&
	      st.requests[VIOMMU_VI_REQ_MAP][VIOMMU_VI_S_INVAL] == 1 &&
	      st.events_sent == 2, "the device's counters agree");
out:
	vmm_destroy(&v);
	printf("\n%d checks, %d failed\n", checks, failures);
	return failures || rc ? 1 : 0;
}
