/*
 * test_dma_engine.c - the edu-compatible DMA engine endpoint, driven the
 * way a link drives it: configuration writes (BAR0 base, COMMAND) through
 * pci_cfg_write() and register accesses through pci_bar_access() at the
 * absolute BAR address.
 *
 * The rig is the core fixture (two hva-backed RAM regions, a context whose
 * fault callback records faults) plus endpoint 0x28 attached to a PAGING
 * domain and one engine on it, with an INTx sink that records the line.
 * Tests cover the edu registers, DMA both ways with data verified, faults
 * (unmapped, read-only, partial, non-RAM), device-side range checks, ring
 * mode (several entries, a faulting one, bad ones, wrap-around, an
 * unmapped or read-only ring), bypass and identity, access sizes, reset,
 * and two engines driven from two threads at once.
 */
#include <errno.h>
#include <pthread.h>

#include "core_fixture.h"
#include "devices/dma_engine.h"
#include "transport/pci.h"
#include "harness.h"

#include <time.h>

#define BAR_BASE 0xfe000000ull
#define EP_ID 0x28
#define BUF DMA_ENGINE_BUF_ADDR

/* struct rig - fixture, endpoint, domain, engine, INTx record. */
struct rig {
	struct fx f;
	struct viommu_endpoint *ep;
	struct viommu_domain *dom;
	struct dma_engine e;
	struct pci_func *pf;
	pthread_mutex_t lock;
	bool intx;
	unsigned int intx_changes;
};

static void intx_cb(void *opaque, bool level)
{
	struct rig *r = opaque;

	pthread_mutex_lock(&r->lock);
	r->intx = level;
	r->intx_changes++;
	pthread_mutex_unlock(&r->lock);
}

static bool intx(struct rig *r)
{
	bool v;

	pthread_mutex_lock(&r->lock);
	v = r->intx;
	pthread_mutex_unlock(&r->lock);
	return v;
}

/* engine_up() - init @e on @ep, BAR0 at @base, memory + bus master on. */
static int engine_up(struct rig *r, struct dma_engine *e,
		     struct viommu_endpoint *ep, uint64_t base)
{
	struct pci_func *pf;
	int ret = dma_engine_init(e, ep, r->f.mem, "dma-test", NULL, NULL);

	if (ret)
		return ret;
	pf = dma_engine_func(e);
	pf->intx_fn = intx_cb;
	pf->intx_opaque = r;
	pci_cfg_write(pf, PCI_BAR0, (uint32_t)base, 4);
	pci_cfg_write(pf, PCI_COMMAND,
		      PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	return 0;
}

static int rig_init(struct rig *r, const struct fx_opts *o)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	if (fx_init(&r->f, o))
		return -1;
	r->ep = fx_ep(&r->f, EP_ID);
	r->dom = fx_paging(&r->f, 7);
	if (!r->ep || !r->dom ||
	    viommu_endpoint_attach(r->ep, VIOMMU_NO_PASID, r->dom))
		return -1;
	if (engine_up(r, &r->e, r->ep, BAR_BASE))
		return -1;
	r->pf = dma_engine_func(&r->e);
	return 0;
}

static void rig_fini(struct rig *r)
{
	if (r->pf)
		dma_engine_destroy(&r->e);
	fx_fini(&r->f);
	pthread_mutex_destroy(&r->lock);
}

static uint64_t rd_at(struct pci_func *pf, uint64_t base, uint64_t off,
		      unsigned int size)
{
	uint64_t v = 0xdeadbeef;

	if (pci_bar_access(pf, base + off, false, false, &v, size))
		return 0xbad0bad0bad0ull;
	return v;
}

static void wr_at(struct pci_func *pf, uint64_t base, uint64_t off,
		  uint64_t v, unsigned int size)
{
	pci_bar_access(pf, base + off, false, true, &v, size);
}

static uint64_t rd(struct rig *r, uint64_t off, unsigned int size)
{
	return rd_at(r->pf, BAR_BASE, off, size);
}

static void wr(struct rig *r, uint64_t off, uint64_t v, unsigned int size)
{
	wr_at(r->pf, BAR_BASE, off, v, size);
}

static uint32_t rd32(struct rig *r, uint64_t off)
{
	return (uint32_t)rd(r, off, 4);
}

/* dma() - program and start a register-mode DMA. */
static void dma(struct rig *r, uint64_t src, uint64_t dst, uint64_t count,
		uint64_t cmd)
{
	wr(r, DMAE_DMA_SRC, src, 8);
	wr(r, DMAE_DMA_DST, dst, 8);
	wr(r, DMAE_DMA_COUNT, count, 8);
	wr(r, DMAE_DMA_CMD, cmd, 8);
}

/* fill() - a recognisable pattern seeded by @seed. */
static void fill(uint8_t *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed + (i >> 8));
}

static bool is_pattern(const uint8_t *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)(i * 7 + seed + (i >> 8)))
			return false;
	return true;
}

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* buf_read() - read @n device-buffer bytes from @off through the BAR. */
static void buf_read(struct rig *r, uint32_t off, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)rd(r, BUF + off + i, 1);
}

static struct dma_engine_stats stats(struct dma_engine *e)
{
	struct dma_engine_stats s;

	memset(&s, 0xff, sizeof(s));
	dma_engine_stats(e, &s);
	return s;
}

/* ------------------------------------------------------------------ */

TEST(init_arguments)
{
	struct rig r;
	struct dma_engine e;

	REQUIRE(rig_init(&r, NULL) == 0);
	CHECK_EQ(dma_engine_init(NULL, r.ep, r.f.mem, "x", NULL, NULL),
		 -EINVAL);
	CHECK_EQ(dma_engine_init(&e, NULL, r.f.mem, "x", NULL, NULL),
		 -EINVAL);
	CHECK_EQ(dma_engine_init(&e, r.ep, NULL, "x", NULL, NULL), -EINVAL);
	CHECK(dma_engine_func(NULL) == NULL);
	CHECK_EQ(dma_engine_stats(NULL, NULL), -EINVAL);
	CHECK_EQ(dma_engine_stats(&r.e, NULL), -EINVAL);
	dma_engine_destroy(NULL);
	dma_engine_reset(NULL);
	rig_fini(&r);
}

static void *fail_alloc(void *opaque, size_t size)
{
	(void)opaque;
	(void)size;
	return NULL;
}

static void no_free(void *opaque, void *p)
{
	(void)opaque;
	(void)p;
}

TEST(init_out_of_memory)
{
	struct viommu_allocator a = { fail_alloc, no_free, NULL };
	struct dma_engine e;
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	CHECK_EQ(dma_engine_init(&e, r.ep, r.f.mem, NULL, NULL, &a), -ENOMEM);
	rig_fini(&r);
}

TEST(pci_identity_and_bar_sizing)
{
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	CHECK_EQ(pci_cfg_read(r.pf, PCI_VENDOR_ID, 2), 0x1234);
	CHECK_EQ(pci_cfg_read(r.pf, PCI_DEVICE_ID, 2), 0x11e8);
	CHECK_EQ(pci_cfg_read(r.pf, PCI_REVISION_ID, 1), 0x10);
	CHECK_EQ(pci_cfg_read(r.pf, PCI_CLASS_PROG, 1), 0x00);
	CHECK_EQ(pci_cfg_read(r.pf, PCI_CLASS_PROG + 1, 2), 0x00ff);
	CHECK_EQ(pci_cfg_read(r.pf, PCI_INTERRUPT_PIN, 1), 1);
	CHECK_EQ(pci_cfg_read(r.pf, PCI_BAR0, 4), BAR_BASE);
	pci_cfg_write(r.pf, PCI_BAR0, 0xffffffff, 4);
	CHECK_U64(pci_cfg_read(r.pf, PCI_BAR0, 4), 0xfff00000); /* 1 MiB */
	CHECK_EQ(pci_cfg_read(r.pf, PCI_BAR0 + 4, 4), 0);       /* no BAR1 */
	pci_cfg_write(r.pf, PCI_BAR0, (uint32_t)BAR_BASE, 4);
	CHECK_EQ(rd32(&r, DMAE_ID), DMAE_ID_VALUE);
	rig_fini(&r);
}

TEST(edu_registers)
{
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	CHECK_U64(rd32(&r, DMAE_ID), 0x010000ed);
	CHECK_EQ(rd32(&r, DMAE_LIVENESS), 0);
	wr(&r, DMAE_LIVENESS, 0x12345678, 4);
	CHECK_U64(rd32(&r, DMAE_LIVENESS), 0xedcba987);
	wr(&r, DMAE_FACTORIAL, 5, 4);
	CHECK_EQ(rd32(&r, DMAE_FACTORIAL), 120);
	wr(&r, DMAE_FACTORIAL, 0, 4);
	CHECK_EQ(rd32(&r, DMAE_FACTORIAL), 1);
	wr(&r, DMAE_FACTORIAL, 12, 4);
	CHECK_EQ(rd32(&r, DMAE_FACTORIAL), 479001600);
	wr(&r, DMAE_FACTORIAL, 13, 4);                 /* modulo 2^32 */
	CHECK_U64(rd32(&r, DMAE_FACTORIAL), 6227020800ull & 0xffffffff);
	wr(&r, DMAE_FACTORIAL, 33, 4);                 /* 2^31 * odd */
	CHECK_U64(rd32(&r, DMAE_FACTORIAL), 0x80000000u);
	wr(&r, DMAE_FACTORIAL, 0xffffffff, 4);         /* bounded work */
	CHECK_EQ(rd32(&r, DMAE_FACTORIAL), 0);
	wr(&r, DMAE_STATUS, 0x81, 4);                  /* bit 0 read-only */
	CHECK_U64(rd32(&r, DMAE_STATUS), 0x80);
	wr(&r, DMAE_STATUS, 0, 4);
	CHECK_EQ(rd32(&r, DMAE_STATUS), 0);
	CHECK_U64(rd32(&r, DMAE_EXT_ID), 0x4d4f4956);
	CHECK_EQ(rd32(&r, DMAE_EXT_VERSION), 1);
	CHECK_EQ(rd32(&r, DMAE_EXT_BUF_SIZE), 262144);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	CHECK_EQ(rd32(&r, DMAE_EXT_DMA_COUNT), 0);
	CHECK_EQ(rd32(&r, DMAE_RING_SIZE), 0);
	rig_fini(&r);
}

TEST(irq_raise_ack_intx)
{
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	CHECK(!intx(&r));
	wr(&r, DMAE_IRQ_RAISE, 0, 4);          /* no bits: no interrupt */
	CHECK(!intx(&r));
	wr(&r, DMAE_IRQ_RAISE, 0x5, 4);
	CHECK_EQ(rd32(&r, DMAE_IRQ_STATUS), 0x5);
	CHECK(intx(&r));
	CHECK(pci_cfg_read(r.pf, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	wr(&r, DMAE_IRQ_ACK, 0x1, 4);
	CHECK_EQ(rd32(&r, DMAE_IRQ_STATUS), 0x4);
	CHECK(intx(&r));                       /* still pending bits */
	wr(&r, DMAE_IRQ_ACK, 0x4, 4);
	CHECK_EQ(rd32(&r, DMAE_IRQ_STATUS), 0);
	CHECK(!intx(&r));
	CHECK_U64(rd(&r, DMAE_IRQ_RAISE, 4), 0xffffffff); /* write-only */
	CHECK_U64(rd(&r, DMAE_IRQ_ACK, 4), 0xffffffff);
	wr(&r, DMAE_IRQ_STATUS, 0xff, 4);      /* read-only */
	CHECK_EQ(rd32(&r, DMAE_IRQ_STATUS), 0);
	/* factorial with STATUS bit 7: IRQ_STATUS bit 0 */
	wr(&r, DMAE_FACTORIAL, 3, 4);
	CHECK_EQ(rd32(&r, DMAE_IRQ_STATUS), 0); /* no irq without bit 7 */
	wr(&r, DMAE_STATUS, DMAE_STATUS_IRQFACT, 4);
	wr(&r, DMAE_FACTORIAL, 4, 4);
	CHECK_EQ(rd32(&r, DMAE_FACTORIAL), 24);
	CHECK_EQ(rd32(&r, DMAE_IRQ_STATUS), DMAE_IRQ_FACT);
	CHECK(intx(&r));
	wr(&r, DMAE_IRQ_ACK, DMAE_IRQ_FACT, 4);
	CHECK(!intx(&r));
	/* INTX_DISABLE masks the line, not IRQ_STATUS */
	pci_cfg_write(r.pf, PCI_COMMAND, PCI_COMMAND_MEMORY |
		      PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE, 2);
	wr(&r, DMAE_IRQ_RAISE, 0x2, 4);
	CHECK_EQ(rd32(&r, DMAE_IRQ_STATUS), 0x2);
	CHECK(!intx(&r));
	CHECK(stats(&r.e).irqs == 3);
	rig_fini(&r);
}

TEST(dma_both_directions)
{
	uint8_t got[0x3000];
	struct rig r;
	uint8_t *ram;

	REQUIRE(rig_init(&r, NULL) == 0);
	REQUIRE(viommu_domain_map(r.dom, 0x100000, 0x10ffff, 0x200000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	ram = fx_hva(&r.f, 0x200000);
	fill(ram, 0x3000, 1);
	/* RAM -> device buffer at offset 0x100 */
	dma(&r, 0x100000, BUF + 0x100, 0x3000, DMAE_CMD_START);
	CHECK_EQ(rd(&r, DMAE_DMA_CMD, 8), 0);   /* done: bit 0 clear */
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	CHECK_EQ(rd32(&r, DMAE_EXT_DMA_COUNT), 1);
	buf_read(&r, 0x100, got, sizeof(got));
	CHECK(is_pattern(got, sizeof(got), 1));
	CHECK_EQ(rd32(&r, DMAE_IRQ_STATUS), 0); /* no irq asked */
	/* device buffer -> RAM at IOVA 0x108000, irq on completion */
	dma(&r, BUF + 0x100, 0x108000, 0x3000,
	    DMAE_CMD_START | DMAE_CMD_TO_RAM | DMAE_CMD_IRQ);
	CHECK_U64(rd(&r, DMAE_DMA_CMD, 8), DMAE_CMD_TO_RAM | DMAE_CMD_IRQ);
	CHECK(is_pattern(ram + 0x8000, 0x3000, 1));
	CHECK(all_bytes(ram + 0xb000, 0x1000, 0));  /* not one byte more */
	CHECK_EQ(rd32(&r, DMAE_IRQ_STATUS), DMAE_IRQ_DMA);
	CHECK(intx(&r));
	CHECK_EQ(rd32(&r, DMAE_EXT_DMA_COUNT), 2);
	CHECK_EQ(fx_faults(&r.f), 0);
	CHECK(stats(&r.e).dmas == 2);
	CHECK(stats(&r.e).bytes_read == 0x3000);
	CHECK(stats(&r.e).bytes_written == 0x3000);
	CHECK(stats(&r.e).faults == 0);
	rig_fini(&r);
}

TEST(dma_across_scattered_pages_and_regions)
{
	uint8_t got[3 * PAGE];
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	/* three IOVA pages -> three unrelated GPAs, one in the 4 GiB region */
	REQUIRE(viommu_domain_map(r.dom, 0x500000, 0x500fff, 0x30000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(viommu_domain_map(r.dom, 0x501000, 0x501fff,
				  RAM1_GPA + 0x7000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(viommu_domain_map(r.dom, 0x502000, 0x502fff, 0x10000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	for (int i = 0; i < 3; i++) {
		uint64_t g = i == 0 ? 0x30000 : i == 1 ? RAM1_GPA + 0x7000 :
						   0x10000;

		fill(fx_hva(&r.f, g), PAGE, 10 + i);
	}
	dma(&r, 0x500800, BUF, 2 * PAGE, DMAE_CMD_START);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	buf_read(&r, 0, got, 2 * PAGE);
	CHECK(memcmp(got, (uint8_t *)fx_hva(&r.f, 0x30000) + 0x800, 0x800) ==
	      0);
	CHECK(memcmp(got + 0x800, fx_hva(&r.f, RAM1_GPA + 0x7000), PAGE) ==
	      0);
	CHECK(memcmp(got + 0x1800, fx_hva(&r.f, 0x10000), 0x800) == 0);
	/* and back, shifted, into the same scattered pages */
	dma(&r, BUF, 0x500000, 3 * PAGE, DMAE_CMD_START | DMAE_CMD_TO_RAM);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	buf_read(&r, 0, got, 3 * PAGE);
	CHECK(memcmp(got, fx_hva(&r.f, 0x30000), PAGE) == 0);
	CHECK(memcmp(got + PAGE, fx_hva(&r.f, RAM1_GPA + 0x7000), PAGE) == 0);
	CHECK(memcmp(got + 2 * PAGE, fx_hva(&r.f, 0x10000), PAGE) == 0);
	rig_fini(&r);
}

TEST(dma_unmapped_iova_faults)
{
	uint8_t got[0x200];
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	fill(fx_hva(&r.f, 0x900000), 0x200, 3); /* RAM there, but unmapped */
	for (int i = 0; i < 0x200; i++)
		wr(&r, BUF + i, 0x5a, 1);
	dma(&r, 0x900000, BUF, 0x200, DMAE_CMD_START | DMAE_CMD_IRQ);
	CHECK_EQ(rd(&r, DMAE_DMA_CMD, 8), DMAE_CMD_IRQ);  /* completed */
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_DMA);
	CHECK_U64(rd(&r, DMAE_EXT_FAULT_ADDR, 8), 0x900000);
	CHECK_EQ(rd32(&r, DMAE_EXT_FAULT_INFO),
		 VIOMMU_FAULT_NO_MAPPING << 8 | VIOMMU_READ);
	CHECK_EQ(rd32(&r, DMAE_IRQ_STATUS), DMAE_IRQ_DMA);
	CHECK_EQ(rd32(&r, DMAE_EXT_DMA_COUNT), 0);
	buf_read(&r, 0, got, sizeof(got));
	CHECK(all_bytes(got, sizeof(got), 0x5a));       /* nothing moved */
	/* the core's fault callback saw it, with our requester ID */
	CHECK_EQ(fx_faults(&r.f), 1);
	CHECK_EQ(r.f.last_fault.endpoint, EP_ID);
	CHECK_EQ(r.f.last_fault.reason, VIOMMU_FAULT_NO_MAPPING);
	CHECK_EQ(r.f.last_fault.access, VIOMMU_READ);
	CHECK_U64(r.f.last_fault.address, 0x900000);
	CHECK_EQ(r.f.last_fault.domain_tag, 7);
	/* EXT_STATUS is write-one-to-clear */
	wr(&r, DMAE_EXT_STATUS, 0x2, 4);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_DMA);
	wr(&r, DMAE_EXT_STATUS, DMAE_EXT_ERR_DMA, 4);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	/* the other direction: a write fault; RAM untouched */
	dma(&r, BUF, 0x900000, 0x200, DMAE_CMD_START | DMAE_CMD_TO_RAM);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_DMA);
	CHECK_EQ(rd32(&r, DMAE_EXT_FAULT_INFO),
		 VIOMMU_FAULT_NO_MAPPING << 8 | VIOMMU_WRITE);
	CHECK(is_pattern(fx_hva(&r.f, 0x900000), 0x200, 3));
	CHECK_EQ(fx_faults(&r.f), 2);
	CHECK(stats(&r.e).faults == 2);
	CHECK(stats(&r.e).bytes_read == 0);
	CHECK(stats(&r.e).bytes_written == 0);
	/* EXT_FAULT_ADDR is read-only */
	wr(&r, DMAE_EXT_FAULT_ADDR, 0, 8);
	CHECK_U64(rd(&r, DMAE_EXT_FAULT_ADDR, 8), 0x900000);
	rig_fini(&r);
}

TEST(dma_partial_fault_stops_at_the_hole)
{
	struct rig r;
	uint8_t *ram;

	REQUIRE(rig_init(&r, NULL) == 0);
	REQUIRE(viommu_domain_map(r.dom, 0x400000, 0x400fff, 0x400000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	ram = fx_hva(&r.f, 0x400000);
	memset(ram, 0xee, 2 * PAGE);
	for (int i = 0; i < 16; i++)
		wr(&r, BUF + i * 8, 0x0101010101010101ull * (uint64_t)i, 8);
	dma(&r, BUF, 0x400f80, 0x100, DMAE_CMD_START | DMAE_CMD_TO_RAM);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_DMA);
	CHECK_U64(rd(&r, DMAE_EXT_FAULT_ADDR, 8), 0x401000);
	CHECK_EQ(ram[0xf80], 0);          /* the first piece moved */
	CHECK_EQ(ram[0xff8], 15);
	CHECK(all_bytes(ram + PAGE, PAGE, 0xee)); /* nothing after */
	CHECK(stats(&r.e).bytes_written == 0x80);
	rig_fini(&r);
}

TEST(dma_read_only_mapping)
{
	uint8_t got[0x100];
	struct rig r;
	uint8_t *ram;

	REQUIRE(rig_init(&r, NULL) == 0);
	REQUIRE(viommu_domain_map(r.dom, 0x600000, 0x600fff, 0x600000,
				  VIOMMU_READ) == 0);
	ram = fx_hva(&r.f, 0x600000);
	fill(ram, PAGE, 4);
	/* the device may read it */
	dma(&r, 0x600000, BUF, 0x100, DMAE_CMD_START);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	buf_read(&r, 0, got, sizeof(got));
	CHECK(is_pattern(got, sizeof(got), 4));
	/* but not write it */
	for (int i = 0; i < 0x100; i++)
		wr(&r, BUF + i, 0, 1);
	dma(&r, BUF, 0x600000, 0x100, DMAE_CMD_START | DMAE_CMD_TO_RAM);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_DMA);
	CHECK_EQ(rd32(&r, DMAE_EXT_FAULT_INFO),
		 VIOMMU_FAULT_PERMISSION << 8 | VIOMMU_WRITE);
	CHECK(is_pattern(ram, PAGE, 4));  /* no byte changed */
	CHECK_EQ(fx_faults(&r.f), 1);
	CHECK_EQ(r.f.last_fault.reason, VIOMMU_FAULT_PERMISSION);
	CHECK_EQ(rd32(&r, DMAE_EXT_DMA_COUNT), 1);
	rig_fini(&r);
}

TEST(dma_non_ram_target)
{
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	/* an MSI doorbell translates but is not RAM */
	REQUIRE(viommu_endpoint_add_resv(r.ep, 0xfee00000, 0xfeefffff,
					 VIOMMU_RESV_MSI) == 0);
	dma(&r, BUF, 0xfee00000, 4, DMAE_CMD_START | DMAE_CMD_TO_RAM);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_DMA);
	CHECK_U64(rd(&r, DMAE_EXT_FAULT_ADDR, 8), 0xfee00000);
	CHECK_EQ(rd32(&r, DMAE_EXT_FAULT_INFO), VIOMMU_WRITE); /* reason 0 */
	CHECK_EQ(fx_faults(&r.f), 0);     /* not a translation fault */
	/* nor is an MMIO mapping */
	REQUIRE(viommu_domain_map(r.dom, 0x700000, 0x700fff, 0xfd000000,
				  VIOMMU_READ | VIOMMU_MAP_MMIO) == 0);
	dma(&r, 0x700000, BUF, 4, DMAE_CMD_START);
	CHECK_EQ(rd32(&r, DMAE_EXT_FAULT_INFO), VIOMMU_READ);
	CHECK(stats(&r.e).faults == 2);
	rig_fini(&r);
}

TEST(dma_device_range_checks)
{
	static const struct { uint64_t dev, count; } bad[] = {
		{ BUF - 1, 1 },
		{ BUF + DMA_ENGINE_BUF_SIZE - 0x10, 0x11 },
		{ BUF + DMA_ENGINE_BUF_SIZE, 1 },
		{ BUF, DMA_ENGINE_BUF_SIZE + 1 },
		{ BUF, UINT64_MAX },
		{ BUF + 0x10, UINT64_MAX - 0xf }, /* end wraps to BUF */
		{ UINT64_MAX, 2 },
		{ 0, 0x100 },
	};
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	REQUIRE(viommu_domain_map(r.dom, 0, 0xffffff, 0,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	memset(fx_hva(&r.f, 0), 0x77, 0x100000);
	for (size_t i = 0; i < (sizeof(bad) / sizeof(bad[0])); i++) {
		for (int dir = 0; dir < 2; dir++) {
			uint64_t cmd = DMAE_CMD_START |
				       (dir ? DMAE_CMD_TO_RAM : 0);

			wr(&r, DMAE_EXT_STATUS, 3, 4);
			if (dir)
				dma(&r, bad[i].dev, 0x1000, bad[i].count, cmd);
			else
				dma(&r, 0x1000, bad[i].dev, bad[i].count, cmd);
			CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_DMA);
			CHECK_EQ(rd(&r, DMAE_DMA_CMD, 8) & 1, 0);
		}
	}
	CHECK(all_bytes(fx_hva(&r.f, 0), 0x100000, 0x77));
	CHECK(stats(&r.e).bytes_read == 0);
	CHECK(stats(&r.e).bytes_written == 0);
	CHECK(stats(&r.e).errors == 2 * (sizeof(bad) / sizeof(bad[0])));
	CHECK_EQ(rd32(&r, DMAE_EXT_FAULT_INFO), 0);  /* not faults */
	CHECK_EQ(fx_faults(&r.f), 0);
	/* the whole buffer, exactly, is fine; so is a count of 0 */
	wr(&r, DMAE_EXT_STATUS, 3, 4);
	dma(&r, 0, BUF, DMA_ENGINE_BUF_SIZE, DMAE_CMD_START);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	dma(&r, 0, BUF + DMA_ENGINE_BUF_SIZE, 0, DMAE_CMD_START);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	CHECK_EQ(rd32(&r, DMAE_EXT_DMA_COUNT), 2);
	/* an IOVA range that wraps the address space */
	dma(&r, UINT64_MAX - 0xf, BUF, 0x20, DMAE_CMD_START);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_DMA);
	CHECK_EQ(fx_faults(&r.f), 0);     /* refused before translating */
	rig_fini(&r);
}

static void count_warn(void *opaque, enum viommu_log_level level,
		       const char *line)
{
	unsigned int *n = opaque;

	if (level == VIOMMU_LOG_WARN && strstr(line, "dma-log"))
		(*n)++;
}

TEST(guest_errors_log_rate_limited)
{
	unsigned int lines = 0;
	struct viommu_log log = { count_warn, &lines, VIOMMU_LOG_DEBUG };
	struct dma_engine e;
	struct pci_func *pf;
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	REQUIRE(dma_engine_init(&e, r.ep, r.f.mem, "dma-log", &log, NULL) ==
		0);
	pf = dma_engine_func(&e);
	pci_cfg_write(pf, PCI_BAR0, 0xfd000000, 4);
	pci_cfg_write(pf, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	wr_at(pf, 0xfd000000, DMAE_DMA_DST, 0, 8);        /* bad range */
	for (int i = 0; i < 100; i++)
		wr_at(pf, 0xfd000000, DMAE_DMA_CMD, 1, 8);
	CHECK(stats(&e).errors == 100);
	/*
	 * Every error is a line or a suppressed line; at least a burst got
	 * out, and (the loop taking far less than a 5 s window, but not
	 * assumed) no more than one burst per window begun.
	 */
	CHECK_U64(lines + stats(&e).log_suppressed, 100);
	CHECK(lines >= RL_BURST);
	CHECK(lines < 100);
	dma_engine_destroy(&e);
	rig_fini(&r);
}

TEST(dma_needs_bus_master)
{
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	REQUIRE(viommu_domain_map(r.dom, 0x100000, 0x100fff, 0x100000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	memset(fx_hva(&r.f, 0x100000), 0x11, 0x100);
	pci_cfg_write(r.pf, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	dma(&r, BUF, 0x100000, 0x100, DMAE_CMD_START | DMAE_CMD_TO_RAM);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_DMA);
	CHECK(all_bytes(fx_hva(&r.f, 0x100000), 0x100, 0x11));
	wr(&r, DMAE_RING_SIZE, 4, 4);
	wr(&r, DMAE_RING_TAIL, 1, 4);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS) & DMAE_EXT_ERR_RING,
		 DMAE_EXT_ERR_RING);
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 0);
	rig_fini(&r);
}

/* ------------------------------------------------------------------ */
/* Ring mode                                                          */

#define RING_IOVA 0x300000ull
#define RING_GPA 0x380000ull

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* entry() - write ring entry @i (status preset to 0xff). */
static void entry(struct rig *r, unsigned int i, uint64_t src, uint64_t dst,
		  uint32_t len, uint32_t flags)
{
	uint8_t *e = (uint8_t *)fx_hva(&r->f, RING_GPA) + 32 * i;

	put64(e, src);
	put64(e + 8, dst);
	put32(e + 16, len);
	put32(e + 20, flags);
	put32(e + 24, 0xff);
	put32(e + 28, 0);
}

static uint32_t entry_status(struct rig *r, unsigned int i)
{
	return get32((uint8_t *)fx_hva(&r->f, RING_GPA) + 32 * i + 24);
}

/* ring_rig() - rig plus a RW ring mapping and a RW data window. */
static int ring_rig(struct rig *r)
{
	if (rig_init(r, NULL))
		return -1;
	if (viommu_domain_map(r->dom, RING_IOVA, RING_IOVA + PAGE - 1,
			      RING_GPA, VIOMMU_READ | VIOMMU_WRITE))
		return -1;
	/* data: IOVA 0x1000000.. -> GPA 0x800000.., 1 MiB */
	return viommu_domain_map(r->dom, 0x1000000, 0x10fffff, 0x800000,
				 VIOMMU_READ | VIOMMU_WRITE);
}

#define D(off) (0x1000000ull + (off))
#define DH(r, off) ((uint8_t *)fx_hva(&(r)->f, 0x800000 + (off)))

TEST(ring_several_entries)
{
	struct rig r;

	REQUIRE(ring_rig(&r) == 0);
	fill(DH(&r, 0), 0x2800, 21);
	fill(DH(&r, 0x10000), 0x100, 22);
	entry(&r, 0, D(0), D(0x40000), 0x2800, 0);          /* ok */
	entry(&r, 1, 0x7000000, D(0x50000), 0x100, 0);      /* src unmapped */
	entry(&r, 2, D(0), D(0x60000), 0x10, 0x2);          /* bad flags */
	entry(&r, 3, D(0), D(0x60000), 0, 0);               /* len 0 */
	entry(&r, 4, D(0x10000), D(0x70000), 0x100, DMAE_RING_F_IRQ);
	entry(&r, 5, D(0), D(0x60000), DMA_ENGINE_RING_MAX_LEN + 1, 0);
	entry(&r, 6, UINT64_MAX - 0xf, D(0x60000), 0x20, 0); /* wraps */
	entry(&r, 7, D(0), UINT64_MAX - 0xf, 0x20, 0);       /* wraps */
	wr(&r, DMAE_RING_BASE, RING_IOVA, 8);
	wr(&r, DMAE_RING_SIZE, 16, 4);
	wr(&r, DMAE_RING_TAIL, 8, 4);
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 8);
	CHECK_EQ(rd32(&r, DMAE_RING_TAIL), 8);
	CHECK_EQ(entry_status(&r, 0), DMAE_RING_DONE);
	CHECK_EQ(entry_status(&r, 1), DMAE_RING_FAULT);
	CHECK_EQ(entry_status(&r, 2), DMAE_RING_BAD);
	CHECK_EQ(entry_status(&r, 3), DMAE_RING_DONE);
	CHECK_EQ(entry_status(&r, 4), DMAE_RING_DONE);
	CHECK_EQ(entry_status(&r, 5), DMAE_RING_BAD);
	CHECK_EQ(entry_status(&r, 6), DMAE_RING_BAD);
	CHECK_EQ(entry_status(&r, 7), DMAE_RING_BAD);
	CHECK_EQ(entry_status(&r, 8), 0);                   /* untouched */
	CHECK(is_pattern(DH(&r, 0x40000), 0x2800, 21));
	CHECK(all_bytes(DH(&r, 0x50000), 0x100, 0));
	CHECK(all_bytes(DH(&r, 0x60000), 0x100, 0));
	CHECK(is_pattern(DH(&r, 0x70000), 0x100, 22));
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_DMA);
	CHECK_U64(rd(&r, DMAE_EXT_FAULT_ADDR, 8), 0x7000000);
	CHECK_EQ(rd32(&r, DMAE_EXT_FAULT_INFO),
		 VIOMMU_FAULT_NO_MAPPING << 8 | VIOMMU_READ);
	CHECK_EQ(fx_faults(&r.f), 1);
	CHECK_EQ(rd32(&r, DMAE_EXT_DMA_COUNT), 3);
	CHECK_EQ(rd32(&r, DMAE_IRQ_STATUS), DMAE_IRQ_DMA);
	CHECK(intx(&r));
	CHECK(stats(&r.e).ring_entries == 8);
	CHECK(stats(&r.e).ring_doorbells == 1);
	CHECK(stats(&r.e).bytes_read == 0x2900);
	CHECK(stats(&r.e).bytes_written == 0x2900);
	/* a doorbell with nothing new does nothing */
	wr(&r, DMAE_RING_TAIL, 8, 4);
	CHECK_EQ(entry_status(&r, 8), 0);
	CHECK(stats(&r.e).ring_entries == 8);
	rig_fini(&r);
}

TEST(ring_wraps_around)
{
	struct rig r;

	REQUIRE(ring_rig(&r) == 0);
	wr(&r, DMAE_RING_BASE, RING_IOVA, 8);
	wr(&r, DMAE_RING_SIZE, 4, 4);
	fill(DH(&r, 0), 0x1000, 5);
	for (unsigned int i = 0; i < 3; i++)
		entry(&r, i, D(0), D(0x10000 * (i + 1)), 0x1000, 0);
	wr(&r, DMAE_RING_TAIL, 3, 4);
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 3);
	/* next batch: entries 3, 0, 1 */
	entry(&r, 3, D(0), D(0x80000), 0x1000, 0);
	entry(&r, 0, D(0), D(0x90000), 0x1000, 0);
	entry(&r, 1, D(0), D(0xa0000), 0x1000, 0);
	wr(&r, DMAE_RING_TAIL, 2, 4);
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 2);
	CHECK_EQ(entry_status(&r, 3), DMAE_RING_DONE);
	CHECK_EQ(entry_status(&r, 0), DMAE_RING_DONE);
	CHECK_EQ(entry_status(&r, 1), DMAE_RING_DONE);
	CHECK_EQ(entry_status(&r, 2), DMAE_RING_DONE); /* from batch 1 */
	CHECK(is_pattern(DH(&r, 0x80000), 0x1000, 5));
	CHECK(is_pattern(DH(&r, 0x90000), 0x1000, 5));
	CHECK(is_pattern(DH(&r, 0xa0000), 0x1000, 5));
	CHECK_EQ(rd32(&r, DMAE_EXT_DMA_COUNT), 6);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	rig_fini(&r);
}

TEST(ring_copy_between_scattered_pages)
{
	struct rig r;
	uint8_t *a, *b;

	REQUIRE(ring_rig(&r) == 0);
	/* destination: IOVA 0x2000000 -> GPA 0xa00000, next page -> 0xb00000 */
	REQUIRE(viommu_domain_map(r.dom, 0x2000000, 0x2000fff, 0xa00000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(viommu_domain_map(r.dom, 0x2001000, 0x2001fff, 0xb00000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	a = fx_hva(&r.f, 0xa00000);
	b = fx_hva(&r.f, 0xb00000);
	memset(a, 0xcc, 2 * PAGE);
	memset(b, 0xcc, 2 * PAGE);
	fill(DH(&r, 0), 0x1800, 31);           /* contiguous source */
	entry(&r, 0, D(0), 0x2000800, 0x1800, 0);
	wr(&r, DMAE_RING_BASE, RING_IOVA, 8);
	wr(&r, DMAE_RING_SIZE, 2, 4);
	wr(&r, DMAE_RING_TAIL, 1, 4);
	CHECK_EQ(entry_status(&r, 0), DMAE_RING_DONE);
	CHECK(all_bytes(a, 0x800, 0xcc));
	CHECK(memcmp(a + 0x800, DH(&r, 0), 0x800) == 0);
	CHECK(all_bytes(a + PAGE, PAGE, 0xcc)); /* not past the piece */
	CHECK(memcmp(b, DH(&r, 0x800), PAGE) == 0);
	CHECK(all_bytes(b + PAGE, PAGE, 0xcc));
	/* and back: scattered source, contiguous destination */
	memset(DH(&r, 0x10000), 0xcc, 0x3000);
	entry(&r, 1, 0x2000800, D(0x10000), 0x1800, 0);
	wr(&r, DMAE_RING_TAIL, 0, 4);
	CHECK_EQ(entry_status(&r, 1), DMAE_RING_DONE);
	CHECK(memcmp(DH(&r, 0x10000), a + 0x800, 0x800) == 0);
	CHECK(memcmp(DH(&r, 0x10800), b, PAGE) == 0);
	CHECK(all_bytes(DH(&r, 0x11800), 0x1800, 0xcc));
	rig_fini(&r);
}

TEST(ring_unmapped_base)
{
	struct rig r;

	REQUIRE(ring_rig(&r) == 0);
	wr(&r, DMAE_RING_BASE, 0xdead000, 8);
	wr(&r, DMAE_RING_SIZE, 16, 4);
	wr(&r, DMAE_RING_TAIL, 3, 4);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_RING);
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 0);      /* stopped at entry 0 */
	CHECK_U64(rd(&r, DMAE_EXT_FAULT_ADDR, 8), 0xdead000);
	CHECK_EQ(rd32(&r, DMAE_EXT_FAULT_INFO),
		 VIOMMU_FAULT_NO_MAPPING << 8 | VIOMMU_READ);
	CHECK_EQ(fx_faults(&r.f), 1);               /* one read, then stop */
	CHECK(stats(&r.e).ring_entries == 0);
	/* a base whose entries would wrap the address space */
	wr(&r, DMAE_EXT_STATUS, 3, 4);
	wr(&r, DMAE_RING_BASE, UINT64_MAX - 0xf, 8);
	wr(&r, DMAE_RING_TAIL, 3, 4);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_RING);
	CHECK_EQ(fx_faults(&r.f), 1);               /* refused before use */
	rig_fini(&r);
}

TEST(ring_never_wraps_the_address_space)
{
	struct rig r;
	uint8_t *top, *low;

	REQUIRE(rig_init(&r, NULL) == 0);
	/* the top IOVA page and IOVA 0 are both mapped */
	REQUIRE(viommu_domain_map(r.dom, UINT64_MAX - 0xfff, UINT64_MAX,
				  0xc00000, VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(viommu_domain_map(r.dom, 0, 0xfff, 0xc01000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	top = fx_hva(&r.f, 0xc00000);
	low = fx_hva(&r.f, 0xc01000);
	/* entries 0 and 1 end exactly at 2^64; entry 2 would wrap to 0 */
	for (int i = 0; i < 2; i++) {
		put32(top + 0xfc0 + 32 * i + 16, 0);     /* len 0: done */
		put32(top + 0xfc0 + 32 * i + 24, 0xff);
	}
	put32(low + 24, 0xff);                   /* a valid entry at 0 */
	wr(&r, DMAE_RING_BASE, UINT64_MAX - 63, 8);
	wr(&r, DMAE_RING_SIZE, 4, 4);
	wr(&r, DMAE_RING_TAIL, 3, 4);
	CHECK_EQ(get32(top + 0xfc0 + 24), DMAE_RING_DONE);
	CHECK_EQ(get32(top + 0xfe0 + 24), DMAE_RING_DONE);
	CHECK_EQ(get32(low + 24), 0xff);         /* not read as entry 2 */
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 2);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_RING);
	rig_fini(&r);
}

TEST(ring_read_only_status)
{
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	REQUIRE(viommu_domain_map(r.dom, RING_IOVA, RING_IOVA + PAGE - 1,
				  RING_GPA, VIOMMU_READ) == 0);
	REQUIRE(viommu_domain_map(r.dom, 0x1000000, 0x10fffff, 0x800000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	fill(DH(&r, 0), 0x40, 9);
	entry(&r, 0, D(0), D(0x1000), 0x40, 0);
	entry(&r, 1, D(0), D(0x2000), 0x40, 0);
	wr(&r, DMAE_RING_BASE, RING_IOVA, 8);
	wr(&r, DMAE_RING_SIZE, 4, 4);
	wr(&r, DMAE_RING_TAIL, 2, 4);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_RING);
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 0);
	CHECK_EQ(entry_status(&r, 0), 0xff);
	CHECK_U64(rd(&r, DMAE_EXT_FAULT_ADDR, 8), RING_IOVA + 24);
	CHECK_EQ(rd32(&r, DMAE_EXT_FAULT_INFO),
		 VIOMMU_FAULT_PERMISSION << 8 | VIOMMU_WRITE);
	CHECK(all_bytes(DH(&r, 0x2000), 0x40, 0));  /* entry 1 not run */
	rig_fini(&r);
}

TEST(ring_register_rules)
{
	struct rig r;

	REQUIRE(ring_rig(&r) == 0);
	/* no ring configured */
	wr(&r, DMAE_RING_TAIL, 0, 4);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_RING);
	wr(&r, DMAE_EXT_STATUS, DMAE_EXT_ERR_RING, 4);
	/* sizes: powers of two 1..4096 only */
	wr(&r, DMAE_RING_SIZE, 3, 4);
	CHECK_EQ(rd32(&r, DMAE_RING_SIZE), 0);
	wr(&r, DMAE_RING_SIZE, 8192, 4);
	CHECK_EQ(rd32(&r, DMAE_RING_SIZE), 0);
	wr(&r, DMAE_RING_SIZE, 4096, 4);
	CHECK_EQ(rd32(&r, DMAE_RING_SIZE), 4096);
	wr(&r, DMAE_RING_SIZE, 0, 4);
	CHECK_EQ(rd32(&r, DMAE_RING_SIZE), 4096);
	wr(&r, DMAE_RING_SIZE, 1, 4);
	CHECK_EQ(rd32(&r, DMAE_RING_SIZE), 1);
	/* size 1: the ring is always empty, tail 0 is the only index */
	wr(&r, DMAE_RING_BASE, RING_IOVA, 8);
	wr(&r, DMAE_RING_TAIL, 0, 4);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	wr(&r, DMAE_RING_TAIL, 1, 4);             /* tail past the ring */
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_RING);
	CHECK_EQ(rd32(&r, DMAE_RING_TAIL), 0);
	/* base and size writes rewind head and tail */
	wr(&r, DMAE_RING_SIZE, 4, 4);
	entry(&r, 0, D(0), D(0x1000), 0x10, 0);
	wr(&r, DMAE_RING_TAIL, 1, 4);
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 1);
	wr(&r, DMAE_RING_BASE, RING_IOVA, 8);
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 0);
	CHECK_EQ(rd32(&r, DMAE_RING_TAIL), 0);
	CHECK_U64(rd(&r, DMAE_RING_BASE, 8), RING_IOVA);
	wr(&r, DMAE_RING_HEAD, 3, 4);             /* read-only */
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 0);
	/* reserved bits make an entry bad */
	entry(&r, 0, D(0), D(0x1000), 0x10, 0);
	put32((uint8_t *)fx_hva(&r.f, RING_GPA) + 28, 1);
	wr(&r, DMAE_RING_TAIL, 1, 4);
	CHECK_EQ(entry_status(&r, 0), DMAE_RING_BAD);
	rig_fini(&r);
}

/*
 * A full ring of 4095 short entries: the doorbell processes one slice of
 * DMA_ENGINE_SLICE_ENTRIES, each later access (polling RING_HEAD) one
 * more, RING_BUSY stays up until the last, and nothing goes past TAIL.
 */
TEST(ring_full_ring_in_slices)
{
	unsigned int polls = 0;
	uint32_t head;
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	/* 4096 entries of 32 bytes = 128 KiB of ring */
	REQUIRE(viommu_domain_map(r.dom, RING_IOVA, RING_IOVA + 0x1ffff,
				  RING_GPA, VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(viommu_domain_map(r.dom, 0x1000000, 0x10fffff, 0x800000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	for (unsigned int i = 0; i < 4096; i++)
		entry(&r, i, D(0), D(0x1000), 8, 0);
	wr(&r, DMAE_RING_BASE, RING_IOVA, 8);
	wr(&r, DMAE_RING_SIZE, 4096, 4);
	wr(&r, DMAE_RING_TAIL, 4095, 4);
	CHECK_U64(stats(&r.e).ring_entries, DMA_ENGINE_SLICE_ENTRIES);
	CHECK_EQ(entry_status(&r, DMA_ENGINE_SLICE_ENTRIES - 1),
		 DMAE_RING_DONE);
	CHECK_EQ(entry_status(&r, DMA_ENGINE_SLICE_ENTRIES), 0xff);
	/* This read runs the second slice first. */
	CHECK(rd32(&r, DMAE_EXT_STATUS) & DMAE_EXT_RING_BUSY);
	CHECK_U64(stats(&r.e).ring_entries, 2 * DMA_ENGINE_SLICE_ENTRIES);
	while ((head = rd32(&r, DMAE_RING_HEAD)) != 4095 && polls < 100)
		polls++;
	CHECK_EQ(head, 4095);
	CHECK_EQ(polls, 4095 / DMA_ENGINE_SLICE_ENTRIES - 2);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	CHECK_EQ(entry_status(&r, 4094), DMAE_RING_DONE);
	CHECK_EQ(entry_status(&r, 4095), 0xff);
	CHECK(stats(&r.e).ring_entries == 4095);
	rig_fini(&r);
}

/* huge_ring_rig() - @n entries of 8 MiB, RAM1's first half to its second. */
static int huge_ring_rig(struct rig *r, unsigned int n)
{
	if (rig_init(r, NULL) ||
	    viommu_domain_map(r->dom, RING_IOVA, RING_IOVA + 0x1ffff,
			      RING_GPA, VIOMMU_READ | VIOMMU_WRITE) ||
	    viommu_domain_map(r->dom, 0x10000000, 0x10000000 + RAM_SIZE - 1,
			      RAM1_GPA, VIOMMU_READ | VIOMMU_WRITE))
		return -1;
	for (unsigned int i = 0; i < n; i++)
		entry(r, i, 0x10000000, 0x10000000 + RAM_SIZE / 2,
		      RAM_SIZE / 2, 0);
	wr(r, DMAE_RING_BASE, RING_IOVA, 8);
	wr(r, DMAE_RING_SIZE, 4096, 4);
	return 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Issue 17 item 3: one doorbell for a ring of large entries used to copy
 * the whole ring (up to 4095 x 16 MiB) before the write returned.  Now the
 * write copies at most one slice - the entry that crosses
 * DMA_ENGINE_SLICE_BYTES finishes, so less than that plus one maximal
 * entry - and the ring completes over the accesses that follow.
 */
TEST(ring_huge_entries_bounded_per_access)
{
	const uint64_t bound = DMA_ENGINE_SLICE_BYTES + DMA_ENGINE_RING_MAX_LEN;
	unsigned int n = 8, accesses = 0;
	uint64_t t0, prev, now;
	struct rig r;

	REQUIRE(huge_ring_rig(&r, n) == 0);
	t0 = mono_ns();
	wr(&r, DMAE_RING_TAIL, n, 4);
	printf("# doorbell for %u x 8 MiB returned after %.3f ms\n", n,
	       (double)(mono_ns() - t0) / 1e6);
	prev = stats(&r.e).bytes_read;
	CHECK(prev <= bound);
	CHECK_U64(prev, RAM_SIZE / 2); /* an 8 MiB entry passes 4 MiB */
	CHECK_EQ(entry_status(&r, 0), DMAE_RING_DONE);
	CHECK_EQ(entry_status(&r, 1), 0xff);
	while (rd32(&r, DMAE_EXT_STATUS) & DMAE_EXT_RING_BUSY &&
	       accesses < 100) {
		now = stats(&r.e).bytes_read;
		CHECK(now - prev <= bound);
		prev = now;
		accesses++;
	}
	CHECK_EQ(accesses, n - 2); /* the last slice's read sees it idle */
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), n);
	CHECK_U64(stats(&r.e).bytes_read, (uint64_t)n * (RAM_SIZE / 2));
	CHECK_EQ(entry_status(&r, n - 1), DMAE_RING_DONE);
	CHECK_EQ(rd32(&r, DMAE_EXT_DMA_COUNT), n);
	rig_fini(&r);
}

/* A busy ring stops cleanly: RING_BASE rewinds, bus mastering off errs. */
TEST(ring_busy_stops_on_rewind_and_master_off)
{
	struct rig r;

	REQUIRE(huge_ring_rig(&r, 8) == 0);
	wr(&r, DMAE_RING_TAIL, 8, 4);
	CHECK(rd32(&r, DMAE_EXT_STATUS) & DMAE_EXT_RING_BUSY);
	/* RING_BUSY is read-only: writing it clears nothing. */
	wr(&r, DMAE_EXT_STATUS, DMAE_EXT_RING_BUSY, 4);
	CHECK(rd32(&r, DMAE_EXT_STATUS) & DMAE_EXT_RING_BUSY);
	pci_cfg_write(r.pf, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_RING);
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 4); /* one slice per access */
	CHECK_EQ(entry_status(&r, 4), 0xff);
	pci_cfg_write(r.pf, PCI_COMMAND,
		      PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	wr(&r, DMAE_EXT_STATUS, DMAE_EXT_ERR_RING, 4);
	/* A new doorbell resumes from HEAD; RING_BASE rewinds it. */
	wr(&r, DMAE_RING_TAIL, 8, 4);
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 6);
	wr(&r, DMAE_RING_BASE, RING_IOVA, 8);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 0);
	CHECK_EQ(entry_status(&r, 6), 0xff);
	CHECK_U64(stats(&r.e).bytes_read, 6 * (RAM_SIZE / 2));
	rig_fini(&r);
}

/* ------------------------------------------------------------------ */

TEST(identity_and_bypass)
{
	struct fx_opts o = { .bypass = true };
	struct viommu_endpoint *ep2;
	struct dma_engine e2;
	uint8_t got[0x80];
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	REQUIRE(viommu_endpoint_attach(r.ep, VIOMMU_NO_PASID,
			viommu_ctx_identity_domain(r.f.ctx)) == 0);
	fill(fx_hva(&r.f, RAM1_GPA + 0x5000), 0x80, 8);
	dma(&r, RAM1_GPA + 0x5000, BUF, 0x80, DMAE_CMD_START);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	buf_read(&r, 0, got, sizeof(got));
	CHECK(is_pattern(got, sizeof(got), 8));
	dma(&r, BUF, 0x9000, 0x80, DMAE_CMD_START | DMAE_CMD_TO_RAM);
	CHECK(is_pattern(fx_hva(&r.f, 0x9000), 0x80, 8));
	/* a hole in guest-physical space is not RAM */
	dma(&r, BUF, 0x80000000ull, 0x80, DMAE_CMD_START | DMAE_CMD_TO_RAM);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), DMAE_EXT_ERR_DMA);
	rig_fini(&r);

	/* an unattached endpoint of a bypass context */
	REQUIRE(rig_init(&r, &o) == 0);
	ep2 = fx_ep(&r.f, 0x30);
	REQUIRE(ep2 != NULL);
	REQUIRE(engine_up(&r, &e2, ep2, 0xfd000000) == 0);
	fill(fx_hva(&r.f, 0x20000), 0x80, 9);
	wr_at(dma_engine_func(&e2), 0xfd000000, DMAE_DMA_SRC, 0x20000, 8);
	wr_at(dma_engine_func(&e2), 0xfd000000, DMAE_DMA_DST, BUF, 8);
	wr_at(dma_engine_func(&e2), 0xfd000000, DMAE_DMA_COUNT, 0x80, 8);
	wr_at(dma_engine_func(&e2), 0xfd000000, DMAE_DMA_CMD, 1, 8);
	CHECK_EQ(rd_at(dma_engine_func(&e2), 0xfd000000, DMAE_EXT_STATUS, 4),
		 0);
	CHECK_EQ(rd_at(dma_engine_func(&e2), 0xfd000000, BUF + 0x7f, 1),
		 (uint8_t)(0x7f * 7 + 9));
	/* turned off: unattached faults */
	viommu_ctx_set_bypass(r.f.ctx, false);
	wr_at(dma_engine_func(&e2), 0xfd000000, DMAE_DMA_CMD, 1, 8);
	CHECK_EQ(rd_at(dma_engine_func(&e2), 0xfd000000, DMAE_EXT_FAULT_INFO,
		       4), VIOMMU_FAULT_UNATTACHED << 8 | VIOMMU_READ);
	CHECK_EQ(r.f.last_fault.endpoint, 0x30);
	dma_engine_destroy(&e2);
	rig_fini(&r);
}

TEST(register_access_sizes)
{
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	/* below 0x80: 4 bytes only */
	CHECK_U64(rd(&r, DMAE_ID, 2), 0xffff);
	CHECK_U64(rd(&r, DMAE_ID, 1), 0xff);
	CHECK_U64(rd(&r, DMAE_ID, 8), ~0ull);
	wr(&r, DMAE_LIVENESS, 0x1234, 2);
	CHECK_EQ(rd32(&r, DMAE_LIVENESS), 0);
	wr(&r, DMAE_LIVENESS, 0x1234, 8);
	CHECK_EQ(rd32(&r, DMAE_LIVENESS), 0);
	CHECK_U64(rd(&r, 0x0c, 4), 0xffffffff);          /* unknown */
	CHECK_U64(rd(&r, 0x02, 4), 0xffffffff);          /* unaligned */
	/* 64-bit registers: 8 bytes, or either half */
	wr(&r, DMAE_DMA_SRC, 0x1122334455667788ull, 8);
	CHECK_U64(rd(&r, DMAE_DMA_SRC, 8), 0x1122334455667788ull);
	CHECK_U64(rd(&r, DMAE_DMA_SRC, 4), 0x55667788);
	CHECK_U64(rd(&r, DMAE_DMA_SRC + 4, 4), 0x11223344);
	wr(&r, DMAE_DMA_SRC, 0xaabbccdd, 4);             /* edu: high 0 */
	CHECK_U64(rd(&r, DMAE_DMA_SRC, 8), 0xaabbccdd);
	wr(&r, DMAE_DMA_SRC + 4, 0x12, 4);               /* then high */
	CHECK_U64(rd(&r, DMAE_DMA_SRC, 8), 0x12aabbccddull);
	CHECK_U64(rd(&r, DMAE_DMA_SRC + 4, 8), ~0ull);   /* unaligned 8 */
	CHECK_U64(rd(&r, DMAE_DMA_SRC, 2), 0xffff);
	wr(&r, DMAE_DMA_SRC, 0, 2);                       /* dropped */
	CHECK_U64(rd(&r, DMAE_DMA_SRC, 8), 0x12aabbccddull);
	/* 32-bit extension registers take no 8-byte access */
	CHECK_U64(rd(&r, DMAE_EXT_ID, 8), ~0ull);
	wr(&r, DMAE_RING_SIZE, 8, 8);
	CHECK_EQ(rd32(&r, DMAE_RING_SIZE), 0);
	CHECK_U64(rd(&r, DMAE_EXT_ID + 0x3c, 4), 0xffffffff); /* hole */
	/* DMA_CMD without the start bit is ignored */
	wr(&r, DMAE_DMA_CMD, DMAE_CMD_IRQ, 8);
	CHECK_EQ(rd(&r, DMAE_DMA_CMD, 8), 0);
	CHECK(stats(&r.e).dmas == 0);
	/* device buffer window: any size, little endian */
	wr(&r, BUF + 8, 0x0807060504030201ull, 8);
	CHECK_EQ(rd(&r, BUF + 8, 1), 0x01);
	CHECK_EQ(rd(&r, BUF + 9, 2), 0x0302);
	CHECK_U64(rd(&r, BUF + 12, 4), 0x08070605);
	wr(&r, BUF + 10, 0xbeef, 2);
	CHECK_U64(rd(&r, BUF + 8, 8), 0x08070605beef0201ull);
	wr(&r, BUF + DMA_ENGINE_BUF_SIZE - 8, 0x42, 8);
	CHECK_EQ(rd(&r, BUF + DMA_ENGINE_BUF_SIZE - 8, 8), 0x42);
	CHECK_U64(rd(&r, BUF + DMA_ENGINE_BUF_SIZE, 4), 0xffffffff);
	CHECK_U64(rd(&r, BUF + DMA_ENGINE_BUF_SIZE - 2, 4), 0xffffffff);
	/* past the BAR: the PCI layer refuses it */
	CHECK_U64(rd(&r, DMA_ENGINE_BAR_SIZE - 4, 8), 0xbad0bad0bad0ull);
	CHECK_U64(rd(&r, DMA_ENGINE_BAR_SIZE - 4, 4), 0xffffffff);
	rig_fini(&r);
}

TEST(reset_clears_registers_and_buffer)
{
	struct rig r;

	REQUIRE(ring_rig(&r) == 0);
	wr(&r, DMAE_LIVENESS, 1, 4);
	wr(&r, DMAE_FACTORIAL, 3, 4);
	wr(&r, DMAE_STATUS, DMAE_STATUS_IRQFACT, 4);
	wr(&r, DMAE_IRQ_RAISE, 0x10, 4);
	wr(&r, BUF + 0x100, 0x99, 1);
	dma(&r, 0xbad000, BUF, 4, DMAE_CMD_START);       /* a fault */
	wr(&r, DMAE_RING_BASE, RING_IOVA, 8);
	wr(&r, DMAE_RING_SIZE, 4, 4);
	entry(&r, 0, D(0), D(0x100), 4, 0);
	wr(&r, DMAE_RING_TAIL, 1, 4);
	CHECK(intx(&r));
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 1);
	pci_func_reset(r.pf);                 /* mpqemu DEVICE_RESET */
	CHECK(!intx(&r));
	CHECK_EQ(pci_cfg_read(r.pf, PCI_COMMAND, 2), 0);
	pci_cfg_write(r.pf, PCI_BAR0, (uint32_t)BAR_BASE, 4);
	pci_cfg_write(r.pf, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	CHECK_EQ(rd32(&r, DMAE_LIVENESS), 0);
	CHECK_EQ(rd32(&r, DMAE_FACTORIAL), 0);
	CHECK_EQ(rd32(&r, DMAE_STATUS), 0);
	CHECK_EQ(rd32(&r, DMAE_IRQ_STATUS), 0);
	CHECK_EQ(rd(&r, BUF + 0x100, 1), 0);
	CHECK_EQ(rd(&r, DMAE_DMA_SRC, 8), 0);
	CHECK_EQ(rd32(&r, DMAE_EXT_STATUS), 0);
	CHECK_EQ(rd(&r, DMAE_EXT_FAULT_ADDR, 8), 0);
	CHECK_EQ(rd32(&r, DMAE_EXT_FAULT_INFO), 0);
	CHECK_EQ(rd32(&r, DMAE_EXT_DMA_COUNT), 0);
	CHECK_EQ(rd(&r, DMAE_RING_BASE, 8), 0);
	CHECK_EQ(rd32(&r, DMAE_RING_SIZE), 0);
	CHECK_EQ(rd32(&r, DMAE_RING_HEAD), 0);
	CHECK_EQ(rd32(&r, DMAE_EXT_ID), DMAE_EXT_ID_VALUE);
	CHECK(stats(&r.e).dmas == 1);         /* statistics survive */
	CHECK(stats(&r.e).ring_entries == 1);
	/* the direct reset also drops INTx */
	wr(&r, DMAE_IRQ_RAISE, 1, 4);
	CHECK(intx(&r));
	dma_engine_reset(&r.e);
	CHECK(!intx(&r));
	CHECK_EQ(rd32(&r, DMAE_IRQ_STATUS), 0);
	rig_fini(&r);
}

/* ------------------------------------------------------------------ */
/* Two engines, two threads                                           */

struct worker {
	struct rig *r;
	struct dma_engine *e;
	uint64_t base;     /* BAR0 */
	uint64_t iova;     /* 64 KiB mapped RW */
	uint8_t *ram;      /* its host bytes */
	unsigned int seed;
	int bad;
};

static void *worker_fn(void *opaque)
{
	struct worker *w = opaque;
	struct pci_func *pf = dma_engine_func(w->e);

	for (unsigned int it = 0; it < 200; it++) {
		unsigned int s = w->seed + it;
		uint32_t n = 0x100 + (it * 0x35) % 0x3000;

		fill(w->ram, n, s);
		wr_at(pf, w->base, DMAE_DMA_SRC, w->iova, 8);
		wr_at(pf, w->base, DMAE_DMA_DST, BUF, 8);
		wr_at(pf, w->base, DMAE_DMA_COUNT, n, 8);
		wr_at(pf, w->base, DMAE_DMA_CMD, DMAE_CMD_START, 8);
		wr_at(pf, w->base, DMAE_DMA_SRC, BUF, 8);
		wr_at(pf, w->base, DMAE_DMA_DST, w->iova + 0x8000, 8);
		wr_at(pf, w->base, DMAE_DMA_CMD,
		      DMAE_CMD_START | DMAE_CMD_TO_RAM, 8);
		if (rd_at(pf, w->base, DMAE_EXT_STATUS, 4) ||
		    !is_pattern(w->ram + 0x8000, n, s))
			w->bad++;
	}
	return NULL;
}

TEST(two_engines_two_threads)
{
	struct viommu_domain *dom2;
	struct viommu_endpoint *ep2;
	struct worker w[2];
	struct dma_engine e2;
	pthread_t t[2];
	struct rig r;

	REQUIRE(rig_init(&r, NULL) == 0);
	ep2 = fx_ep(&r.f, 0x30);
	dom2 = fx_paging(&r.f, 8);
	REQUIRE(ep2 && dom2);
	REQUIRE(viommu_endpoint_attach(ep2, VIOMMU_NO_PASID, dom2) == 0);
	REQUIRE(engine_up(&r, &e2, ep2, 0xfd000000) == 0);
	REQUIRE(viommu_domain_map(r.dom, 0x100000, 0x10ffff, 0x100000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(viommu_domain_map(dom2, 0x100000, 0x10ffff, 0x200000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	w[0] = (struct worker){ &r, &r.e, BAR_BASE, 0x100000,
				fx_hva(&r.f, 0x100000), 1, 0 };
	w[1] = (struct worker){ &r, &e2, 0xfd000000, 0x100000,
				fx_hva(&r.f, 0x200000), 100, 0 };
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&t[i], NULL, worker_fn, &w[i]) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(w[0].bad, 0);
	CHECK_EQ(w[1].bad, 0);
	CHECK(stats(&r.e).dmas == 400);
	CHECK(stats(&e2).dmas == 400);
	CHECK_EQ(fx_faults(&r.f), 0);
	/* each endpoint reaches only its own domain's GPAs */
	fill(fx_hva(&r.f, 0x100000), 0x10, 50);
	wr_at(dma_engine_func(&e2), 0xfd000000, DMAE_DMA_SRC, 0x110000, 8);
	wr_at(dma_engine_func(&e2), 0xfd000000, DMAE_DMA_DST, BUF, 8);
	wr_at(dma_engine_func(&e2), 0xfd000000, DMAE_DMA_COUNT, 0x10, 8);
	wr_at(dma_engine_func(&e2), 0xfd000000, DMAE_DMA_CMD, 1, 8);
	CHECK_EQ(rd_at(dma_engine_func(&e2), 0xfd000000, DMAE_EXT_STATUS, 4),
		 DMAE_EXT_ERR_DMA);
	CHECK_EQ(r.f.last_fault.endpoint, 0x30);
	dma_engine_destroy(&e2);
	rig_fini(&r);
}

TEST_MAIN()
