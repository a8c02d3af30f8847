/*
 * embed.c - how a VMM embeds the viommu translation core.
 *
 * The program plays both sides of a small virtual machine:
 *   - the VMM: it owns guest RAM (a memfd, as QEMU shares RAM with
 *     out-of-process devices), creates the context, the endpoints of two
 *     PCI devices and a domain, and maps IOVAs the way a guest IOMMU driver
 *     would ask it to;
 *   - the devices: they do DMA by IOVA through viommu_dma_read/write() and
 *     viommu_translate(), and one of them trips a fault.
 * It prints what happens, checks every outcome, and exits 0 only if every
 * check held.  `make check` runs it (suite "examples"); the PCI side of
 * embedding (serving our virtio-iommu from the VMM's own bus) is in
 * embed_virtio_iommu.c.
 *
 * Only the public API (<viommu/viommu.h>) is used.
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

#define MiB (1ull << 20)
#define RAM_LOW_SIZE (2 * MiB)        /* guest RAM at GPA 0 */
#define RAM_HIGH_GPA 0x100000000ull   /* second region at 4 GiB ... */
#define RAM_HIGH_SIZE (64ull << 10)   /* ... of 64 KiB */
#define MSI_START 0xfee00000ull       /* x86 MSI doorbell window */
#define MSI_LAST 0xfeefffffull

/* PCI requester ID of bus:device.function. */
#define RID(bus, dev, fn) (((bus) << 8) | ((dev) << 3) | (fn))

static int checks, failures;

/* check() - record and print one expectation. */
static void check(int ok, const char *what)
{
	checks++;
	if (!ok)
		failures++;
	printf("   %s %s\n", ok ? "[ok]  " : "[FAIL]", what);
}

/* ------------------------------------------------------------------ */
/* Callbacks the VMM registers                                        */

/* The last fault, so the narrative can show it was delivered. */
static struct viommu_fault last_fault;
static int faults_seen;

/*
 * on_fault() - a translation failed.  A real VMM would queue a fault
 * record for the guest (virtio-iommu fault queue, SMMU event queue).
 */
static void on_fault(void *opaque, const struct viommu_fault *f)
{
	(void)opaque;
	last_fault = *f;
	faults_seen++;
	printf("   [fault]  device %02x:%02x.%x %s at IOVA 0x%" PRIx64
	       ": %s\n", f->endpoint >> 8, (f->endpoint >> 3) & 0x1f,
	       f->endpoint & 7, f->access & VIOMMU_WRITE ? "write" : "read",
	       f->address, viommu_fault_reason_str(f->reason));
}

/*
 * on_event() - a notifier: a vhost-style backend with its own IOTLB
 * would update it here.  We just print the event.
 */
static void on_event(void *opaque, const struct viommu_event *ev)
{
	const char *name = opaque;

	switch (ev->type) {
	case VIOMMU_EVENT_MAP:
		printf("   [notify] %s: MAP    IOVA 0x%" PRIx64 "-0x%" PRIx64
		       " -> GPA 0x%" PRIx64 " (%s%s)\n", name, ev->iova,
		       ev->last, ev->gpa, ev->prot & VIOMMU_READ ? "R" : "",
		       ev->prot & VIOMMU_WRITE ? "W" : "");
		break;
	case VIOMMU_EVENT_UNMAP:
		printf("   [notify] %s: UNMAP  IOVA 0x%" PRIx64 "-0x%" PRIx64
		       "\n", name, ev->iova, ev->last);
		break;
	case VIOMMU_EVENT_ATTACH:
	case VIOMMU_EVENT_DETACH:
		printf("   [notify] %s: %s endpoint 0x%x\n", name,
		       ev->type == VIOMMU_EVENT_ATTACH ? "ATTACH" : "DETACH",
		       ev->endpoint);
		break;
	default:
		printf("   [notify] %s: event 0x%x\n", name, ev->type);
		break;
	}
}

/* on_log() - the library's own warnings (refused requests). */
static void on_log(void *opaque, enum viommu_log_level level,
		   const char *line)
{
	(void)opaque;
	(void)level;
	printf("   [log]    %s\n", line);
}

/* ------------------------------------------------------------------ */
/* The VMM's guest memory                                             */

struct guest {
	int fd;         /* memfd holding all guest RAM */
	uint8_t *low;   /* the VMM's own view of the 2 MiB at GPA 0 */
	struct viommu_mem *mem;
};

/*
 * guest_ram() - one memfd, two regions: [0, 2 MiB) from offset 0 and
 * [4 GiB, 4 GiB + 64 KiB) from offset 2 MiB.  viommu maps the fd itself
 * (MAP_SHARED), so what the VMM writes through its own mapping is what
 * devices read.
 */
static int guest_ram(struct guest *g)
{
	struct viommu_mem_region regs[2] = {
		{ .gpa = 0, .size = RAM_LOW_SIZE, .fd = -1, .fd_offset = 0 },
		{ .gpa = RAM_HIGH_GPA, .size = RAM_HIGH_SIZE, .fd = -1,
		  .fd_offset = RAM_LOW_SIZE },
	};
	int rc;

	g->fd = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	/*
	 * Sealed against shrinking, as QEMU seals its memfd RAM: viommu
	 * refuses an fd that someone else could truncate under its mapping.
	 */
	if (g->fd < 0 || ftruncate(g->fd, RAM_LOW_SIZE + RAM_HIGH_SIZE) ||
	    fcntl(g->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		return -errno;
	g->low = mmap(NULL, RAM_LOW_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      g->fd, 0);
	if (g->low == MAP_FAILED)
		return -errno;
	regs[0].fd = regs[1].fd = g->fd; /* viommu dup()s it */
	rc = viommu_mem_create(NULL, &g->mem);
	if (!rc)
		rc = viommu_mem_set_regions(g->mem, regs, 2);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The story                                                          */

struct vm {
	struct guest g;
	struct viommu_ctx *ctx;
	struct viommu_endpoint *net, *blk;
	struct viommu_domain *dom;
	struct viommu_notifier *nt;
};

/* setup() - context, two endpoints with an MSI window, one domain. */
static int setup(struct vm *vm)
{
	struct viommu_ctx_config cfg = {
		.size = sizeof(cfg), /* lets the struct grow (docs/API.md) */
		.mem = vm->g.mem,
		.log = { .fn = on_log, .level = VIOMMU_LOG_WARN },
		.fault = on_fault,
		.bypass_unattached = false, /* unattached devices: no DMA */
	};
	struct viommu_domain_config dc = {
		.kind = VIOMMU_DOMAIN_PAGING, .tag = 1,
	};
	int rc;

	if ((rc = viommu_ctx_create(&cfg, &vm->ctx)) ||
	    (rc = viommu_endpoint_create(vm->ctx, RID(0, 3, 0), &vm->net)) ||
	    (rc = viommu_endpoint_create(vm->ctx, RID(0, 4, 0), &vm->blk)) ||
	    (rc = viommu_endpoint_add_resv(vm->net, MSI_START, MSI_LAST,
					   VIOMMU_RESV_MSI)) ||
	    (rc = viommu_endpoint_add_resv(vm->blk, MSI_START, MSI_LAST,
					   VIOMMU_RESV_MSI)) ||
	    (rc = viommu_domain_create(vm->ctx, &dc, &vm->dom)))
		return rc;
	return viommu_notifier_add(vm->dom, VIOMMU_EVENT_MAP |
				   VIOMMU_EVENT_UNMAP | VIOMMU_EVENT_ATTACH |
				   VIOMMU_EVENT_DETACH, on_event,
				   "domain 1", &vm->nt);
}

/* step_map() - the guest driver maps two buffers; one map is refused. */
static void step_map(struct vm *vm)
{
	printf("\n3. The guest maps a 16 KiB RX/TX buffer (IOVA 0x10000 -> "
	       "GPA 0x80000, read-write)\n   and a 4 KiB read-only "
	       "descriptor page in high RAM, then attaches 00:03.0.\n");
	check(!viommu_domain_map(vm->dom, 0x10000, 0x13fff, 0x80000,
				 VIOMMU_READ | VIOMMU_WRITE),
	      "map IOVA 0x10000-0x13fff -> GPA 0x80000");
	check(!viommu_domain_map(vm->dom, 0x20000, 0x20fff, RAM_HIGH_GPA,
				 VIOMMU_READ),
	      "map IOVA 0x20000-0x20fff -> GPA 0x100000000, read-only");
	check(viommu_domain_map(vm->dom, 0x12000, 0x12fff, 0, VIOMMU_READ) ==
	      -EEXIST, "an overlapping map is refused (-EEXIST)");
	check(!viommu_endpoint_attach(vm->net, VIOMMU_NO_PASID, vm->dom),
	      "attach 00:03.0 to domain 1");
	check(viommu_domain_map(vm->dom, MSI_START, MSI_START + 0xfff, 0,
				VIOMMU_WRITE) == -EADDRINUSE,
	      "mapping over the MSI window is refused (-EADDRINUSE)");
}

/* step_dma() - device 00:03.0 reads and writes guest memory by IOVA. */
static void step_dma(struct vm *vm)
{
	static const char msg[] = "hello from the guest";
	char buf[64] = { 0 };
	struct viommu_xlate x;

	printf("\n4. The guest puts a message at GPA 0x80000; device 00:03.0 "
	       "reads it by IOVA\n   and writes a reply at IOVA 0x11000.\n");
	memcpy(vm->g.low + 0x80000, msg, sizeof(msg));
	check(!viommu_dma_read(vm->net, VIOMMU_NO_PASID, 0x10000, buf,
			       sizeof(msg)) && !strcmp(buf, msg),
	      "DMA read at IOVA 0x10000 returns the guest's message");
	printf("         device read: \"%s\"\n", buf);
	snprintf(buf, sizeof(buf), "reply from 00:03.0");
	check(!viommu_dma_write(vm->net, VIOMMU_NO_PASID, 0x11000, buf,
				strlen(buf) + 1) &&
	      !strcmp((char *)vm->g.low + 0x81000, buf),
	      "DMA write at IOVA 0x11000 lands at GPA 0x81000");
	/* translate hands out a host pointer into viommu's own mapping of
	 * the memfd: same pages as the VMM's view, different address. */
	memcpy(vm->g.low + 0x82000, "marker", 7);
	check(!viommu_translate(vm->net, VIOMMU_NO_PASID, 0x12000, 0x8000,
				VIOMMU_READ, &x, NULL) &&
	      x.gpa == 0x82000 && x.len == 0x2000 && x.hva &&
	      !memcmp(x.hva, "marker", 7),
	      "translate 32 KiB at IOVA 0x12000: GPA 0x82000, 8 KiB "
	      "contiguous (the mapping ends)");
	printf("         translate: GPA 0x%" PRIx64 ", %zu bytes "
	       "contiguous\n", x.gpa, x.len);
	/* The VMM can also write guest RAM by GPA through the layer. */
	memset(buf, 0, sizeof(buf));
	check(!viommu_mem_write(vm->g.mem, RAM_HIGH_GPA, "descriptor", 11) &&
	      !viommu_dma_read(vm->net, VIOMMU_NO_PASID, 0x20000, buf, 11) &&
	      !strcmp(buf, "descriptor"),
	      "DMA read at IOVA 0x20000 reaches the region at 4 GiB");
	check(!viommu_translate(vm->net, VIOMMU_NO_PASID, MSI_START + 0x40,
				4, VIOMMU_WRITE, &x, NULL) &&
	      (x.flags & VIOMMU_XLATE_MSI) && x.gpa == MSI_START + 0x40,
	      "a write to the MSI doorbell translates 1:1, flagged MSI");
}

/* step_faults() - three DMAs that must fail, each reported. */
static void step_faults(struct vm *vm)
{
	uint8_t b = 0;
	int before = faults_seen;

	printf("\n5. Bad DMA: each failure reaches the fault callback.\n");
	check(viommu_dma_write(vm->net, VIOMMU_NO_PASID, 0x20000, &b, 1) ==
	      -EFAULT && last_fault.reason == VIOMMU_FAULT_PERMISSION,
	      "write to the read-only page: PERMISSION fault");
	check(viommu_dma_read(vm->net, VIOMMU_NO_PASID, 0x30000, &b, 1) ==
	      -EFAULT && last_fault.reason == VIOMMU_FAULT_NO_MAPPING,
	      "read of an unmapped IOVA: NO_MAPPING fault");
	check(viommu_dma_read(vm->blk, VIOMMU_NO_PASID, 0x10000, &b, 1) ==
	      -EFAULT && last_fault.reason == VIOMMU_FAULT_UNATTACHED &&
	      last_fault.endpoint == RID(0, 4, 0),
	      "00:04.0 is not attached and bypass is off: UNATTACHED");
	check(faults_seen == before + 3, "three faults delivered");
}

/* step_unmap() - unmap; the IOTLB must not serve the old translation. */
static void step_unmap(struct vm *vm)
{
	struct viommu_xlate x;
	uint64_t bytes = 0;

	printf("\n6. The guest unmaps the buffer; the device's next DMA "
	       "faults (no stale IOTLB entry).\n");
	check(viommu_domain_unmap(vm->dom, 0x10000, 0x10fff, &bytes) ==
	      -ERANGE, "unmapping part of a mapping is refused (-ERANGE)");
	check(!viommu_domain_unmap(vm->dom, 0x0, 0x1ffff, &bytes) &&
	      bytes == 0x4000, "unmap IOVA 0-0x1ffff removes 16 KiB");
	check(viommu_translate(vm->net, VIOMMU_NO_PASID, 0x10000, 1,
			       VIOMMU_READ, &x, NULL) == -EFAULT &&
	      last_fault.reason == VIOMMU_FAULT_NO_MAPPING,
	      "translate of the unmapped IOVA faults");
}

int main(void)
{
	struct vm vm = { .g = { .fd = -1, .low = MAP_FAILED } };
	int rc;

	printf("viommu %s embedding example: a VMM with two PCI devices\n",
	       viommu_version());
	printf("\n1. Guest RAM: one memfd, 2 MiB at GPA 0 and 64 KiB at GPA "
	       "0x100000000.\n");
	rc = guest_ram(&vm.g);
	check(!rc && viommu_mem_ram_size(vm.g.mem) ==
		     RAM_LOW_SIZE + RAM_HIGH_SIZE, "guest RAM registered");
	if (rc)
		goto out;
	printf("\n2. Context (bypass off), endpoints 00:03.0 (RID 0x18) and "
	       "00:04.0 (RID 0x20),\n   each with the MSI window 0x%llx-"
	       "0x%llx reserved; domain 1 with a notifier.\n",
	       (unsigned long long)MSI_START, (unsigned long long)MSI_LAST);
	rc = setup(&vm);
	check(!rc, "context, endpoints, domain and notifier created");
	if (rc)
		goto out;
	step_map(&vm);
	step_dma(&vm);
	step_faults(&vm);
	step_unmap(&vm);
	printf("\n7. Tear-down: detach, destroy the domain and the "
	       "context.\n");
	check(!viommu_endpoint_detach(vm.net, VIOMMU_NO_PASID) &&
	      !viommu_domain_destroy(vm.dom), "domain 1 destroyed");
out:
	viommu_ctx_destroy(vm.ctx);
	viommu_mem_destroy(vm.g.mem);
	if (vm.g.low != MAP_FAILED)
		munmap(vm.g.low, RAM_LOW_SIZE);
	if (vm.g.fd >= 0)
		close(vm.g.fd);
	printf("\n%d checks, %d failed: %s\n", checks, failures,
	       failures ? "FAILURE" : "everything held");
	return failures ? 1 : 0;
}
