/*
 * test_pci_api.c - the public PCI calls an embedder's own bus uses
 * (<viommu/pci.h>): the interrupt sink (attach refused while a link
 * serves the function, a level raised before attach delivered, INTx and
 * MSI-X reaching the sink, nothing after detach, the versioned struct),
 * configuration accesses with their errors, BAR sizes and offset-based
 * BAR accesses, reset, and the DMA engine's versioned counters.
 */
#include <errno.h>
#include <string.h>

#include <viommu/pci.h>

#include "harness.h"
#include "transport/pci.h"

#define BAR0_SIZE 0x4000u
#define IO_SIZE 0x20u
#define TBL 0x3000u
#define PBA 0x3800u

struct bardev {
	int reads, writes;
	uint64_t off, val;
	unsigned int size;
};

static uint64_t bd_read(void *opaque, uint64_t off, unsigned int size)
{
	struct bardev *b = opaque;

	b->reads++;
	b->off = off;
	b->size = size;
	return 0xa5a5000000000000ull + off;
}

static void bd_write(void *opaque, uint64_t off, uint64_t val,
		     unsigned int size)
{
	struct bardev *b = opaque;

	b->writes++;
	b->off = off;
	b->val = val;
	b->size = size;
}

static const struct pci_bar_ops bd_ops = { bd_read, bd_write };

/* What the embedder's sink saw. */
struct seen {
	int intx_calls;
	bool level;
	int msix_calls;
	unsigned int vector;
	uint64_t addr;
	uint32_t data;
	int resets;
};

static void sink_intx(void *opaque, bool level)
{
	struct seen *s = opaque;

	s->intx_calls++;
	s->level = level;
}

static void sink_msix(void *opaque, unsigned int vector, uint64_t addr,
		      uint32_t data)
{
	struct seen *s = opaque;

	s->msix_calls++;
	s->vector = vector;
	s->addr = addr;
	s->data = data;
}

static void on_reset(void *opaque)
{
	((struct seen *)opaque)->resets++;
}

/* a link's sink, to prove attach refuses a function already served */
static void link_intx(void *opaque, bool level)
{
	(void)opaque;
	(void)level;
}

struct fx {
	struct pci_func f;
	struct viommu_pci_func *pf;
	struct bardev mem, io;
	struct seen seen;
};

static void fx_init(struct fx *x)
{
	memset(x, 0, sizeof(*x));
	pci_func_init(&x->f, "api", NULL, 0x1234, 0x5678, 0x088000, 1,
		      0x1af4, 0x1100);
	REQUIRE(pci_func_add_bar(&x->f, 0, BAR0_SIZE, false, &bd_ops,
				 &x->mem) == 0);
	REQUIRE(pci_func_add_bar(&x->f, 2, IO_SIZE, true, &bd_ops,
				 &x->io) == 0);
	REQUIRE(pci_func_add_msix(&x->f, 4, 0, TBL, PBA) == 0);
	x->f.reset_fn = on_reset;
	x->f.reset_opaque = &x->seen;
	x->pf = (struct viommu_pci_func *)&x->f;
}

static int attach(struct fx *x)
{
	struct viommu_pci_sink s = {
		.size = sizeof(s), .intx = sink_intx, .msix = sink_msix,
		.opaque = &x->seen,
	};

	return viommu_pci_func_attach(x->pf, &s);
}

/* The sink: refused while a link serves, then attach, deliver, detach. */
TEST(sink_attach_deliver_detach)
{
	struct fx x;
	uint64_t v;

	fx_init(&x);
	CHECK_EQ(viommu_pci_func_attach(NULL, NULL), -EINVAL);
	CHECK_EQ(viommu_pci_func_attach(x.pf, NULL), -EINVAL);
	x.f.intx_fn = link_intx; /* a link serves the function */
	CHECK_EQ(attach(&x), -EBUSY);
	x.f.intx_fn = NULL;
	/* a level raised while nobody listened arrives at attach */
	pci_set_intx(&x.f, true);
	CHECK_EQ(attach(&x), 0);
	CHECK_EQ(x.seen.intx_calls, 1);
	CHECK(x.seen.level);
	CHECK_EQ(attach(&x), -EBUSY); /* one sink at a time */
	pci_set_intx(&x.f, false);
	CHECK_EQ(x.seen.intx_calls, 2);
	CHECK(!x.seen.level);
	/* MSI-X: enable, program and unmask vector 2, signal it */
	CHECK_EQ(viommu_pci_func_cfg_write(x.pf, x.f.msix_cap + 2, 2,
					   PCI_MSIX_FLAGS_ENABLE), 0);
	CHECK_EQ(viommu_pci_func_bar_write(x.pf, 0, TBL + 32, 8,
					   0xfee01000ull), 0);
	CHECK_EQ(viommu_pci_func_bar_write(x.pf, 0, TBL + 40, 4, 0x4242), 0);
	CHECK_EQ(viommu_pci_func_bar_write(x.pf, 0, TBL + 44, 4, 0), 0);
	CHECK_EQ(pci_msix_notify(&x.f, 2), 0);
	CHECK_EQ(x.seen.msix_calls, 1);
	CHECK_EQ(x.seen.vector, 2);
	CHECK_U64(x.seen.addr, 0xfee01000ull);
	CHECK_EQ(x.seen.data, 0x4242);
	/* the table is ours (not the peer's): masking it holds the signal */
	CHECK_EQ(viommu_pci_func_bar_write(x.pf, 0, TBL + 44, 4, 1), 0);
	CHECK_EQ(pci_msix_notify(&x.f, 2), 0);
	CHECK_EQ(x.seen.msix_calls, 1);
	CHECK_EQ(viommu_pci_func_bar_read(x.pf, 0, PBA, 8, &v), 0);
	CHECK_U64(v, 1u << 2);
	CHECK_EQ(viommu_pci_func_bar_write(x.pf, 0, TBL + 44, 4, 0), 0);
	CHECK_EQ(x.seen.msix_calls, 2); /* delivered at unmask */
	/* detach: nothing reaches the sink any more; attach works again */
	viommu_pci_func_detach(x.pf);
	viommu_pci_func_detach(x.pf); /* twice is harmless */
	viommu_pci_func_detach(NULL);
	CHECK_EQ(pci_msix_notify(&x.f, 2), 0);
	pci_set_intx(&x.f, true);
	CHECK_EQ(x.seen.msix_calls, 2);
	CHECK_EQ(x.seen.intx_calls, 2);
	CHECK(x.f.intx_fn == NULL && x.f.msix_fn == NULL);
	CHECK_EQ(attach(&x), 0);
	viommu_pci_func_detach(x.pf);
	pci_func_destroy(&x.f);
}

/* detach leaves a link's sink alone; size 0 and a longer size work. */
TEST(sink_versions_and_foreign_sinks)
{
	struct fx x;
	struct {
		struct viommu_pci_sink s;
		uint64_t future_field;
	} big;
	struct viommu_pci_sink v0 = { 0 };

	fx_init(&x);
	x.f.intx_fn = link_intx;
	viommu_pci_func_detach(x.pf); /* not ours: untouched */
	CHECK(x.f.intx_fn == link_intx);
	x.f.intx_fn = NULL;
	/* size 0: the first version of the struct */
	v0.intx = sink_intx;
	v0.opaque = &x.seen;
	CHECK_EQ(viommu_pci_func_attach(x.pf, &v0), 0);
	pci_set_intx(&x.f, true);
	CHECK_EQ(x.seen.intx_calls, 1);
	viommu_pci_func_detach(x.pf);
	/* a caller built against a longer struct: known fields are used */
	memset(&big, 0, sizeof(big));
	big.s.size = sizeof(big);
	big.s.intx = sink_intx;
	big.s.opaque = &x.seen;
	big.future_field = 7;
	CHECK_EQ(viommu_pci_func_attach(x.pf, &big.s), 0);
	pci_set_intx(&x.f, false);
	CHECK_EQ(x.seen.intx_calls, 3); /* the high level at attach, the low */
	CHECK(!x.seen.level);
	viommu_pci_func_detach(x.pf);
	pci_func_destroy(&x.f);
}

/* Configuration accesses: sizes, alignment, bounds, write masks. */
TEST(config_accesses)
{
	struct fx x;
	uint32_t v = 0;

	fx_init(&x);
	CHECK_EQ(viommu_pci_func_cfg_read(x.pf, 0, 4, NULL), -EINVAL);
	CHECK_EQ(viommu_pci_func_cfg_read(NULL, 0, 4, &v), -EINVAL);
	CHECK_EQ(v, 0xffffffffu);
	CHECK_EQ(viommu_pci_func_cfg_read(x.pf, 0, 4, &v), 0);
	CHECK_EQ(v, 0x56781234u);
	CHECK_EQ(viommu_pci_func_cfg_read(x.pf, 1, 2, &v), -EINVAL);
	CHECK_EQ(v, 0xffffffffu);
	CHECK_EQ(viommu_pci_func_cfg_read(x.pf, 0, 3, &v), -EINVAL);
	CHECK_EQ(viommu_pci_func_cfg_read(x.pf, 0x1000, 4, &v), -EINVAL);
	CHECK_EQ(viommu_pci_func_cfg_read(x.pf, 0x104, 4, &v), 0);
	CHECK_EQ(v, 0); /* extended space reads zero */
	CHECK_EQ(viommu_pci_func_cfg_write(x.pf, 2, 4, 0), -EINVAL);
	CHECK_EQ(viommu_pci_func_cfg_write(NULL, 0, 4, 0), -EINVAL);
	/* vendor ID is read-only; COMMAND takes Memory and Master */
	CHECK_EQ(viommu_pci_func_cfg_write(x.pf, 0, 2, 0xffff), 0);
	CHECK_EQ(viommu_pci_func_cfg_read(x.pf, 0, 2, &v), 0);
	CHECK_EQ(v, 0x1234);
	CHECK_EQ(viommu_pci_func_cfg_write(x.pf, PCI_COMMAND, 2, 0x6), 0);
	CHECK_EQ(viommu_pci_func_cfg_read(x.pf, PCI_COMMAND, 2, &v), 0);
	CHECK_EQ(v, 0x6);
	/* BAR sizing through the public calls */
	CHECK_EQ(viommu_pci_func_cfg_write(x.pf, PCI_BAR0, 4, 0xffffffffu),
		 0);
	CHECK_EQ(viommu_pci_func_cfg_read(x.pf, PCI_BAR0, 4, &v), 0);
	CHECK_EQ(v, (uint32_t)~(BAR0_SIZE - 1));
	/* reset: registers to power-on values, the model's hook runs */
	viommu_pci_func_reset(x.pf);
	viommu_pci_func_reset(NULL);
	CHECK_EQ(viommu_pci_func_cfg_read(x.pf, PCI_COMMAND, 2, &v), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(x.seen.resets, 1);
	pci_func_destroy(&x.f);
}

/* BAR sizes and offset-based accesses. */
TEST(bar_accesses)
{
	struct fx x;
	uint64_t size = 1, v = 0;
	bool io = true;

	fx_init(&x);
	CHECK_EQ(viommu_pci_func_bar_size(x.pf, 0, &size, &io), 0);
	CHECK_U64(size, BAR0_SIZE);
	CHECK(!io);
	CHECK_EQ(viommu_pci_func_bar_size(x.pf, 2, &size, &io), 0);
	CHECK_U64(size, IO_SIZE);
	CHECK(io);
	CHECK_EQ(viommu_pci_func_bar_size(x.pf, 1, &size, NULL), -ENOENT);
	CHECK_U64(size, 0);
	CHECK_EQ(viommu_pci_func_bar_size(x.pf, 6, &size, NULL), -EINVAL);
	CHECK_EQ(viommu_pci_func_bar_size(x.pf, 0, NULL, NULL), -EINVAL);
	CHECK_EQ(viommu_pci_func_bar_size(NULL, 0, &size, NULL), -EINVAL);
	/* accesses reach the model at their offset, decoding or not */
	CHECK_EQ(viommu_pci_func_bar_read(x.pf, 0, 0x10, 4, &v), 0);
	CHECK_EQ(x.mem.reads, 1);
	CHECK_U64(x.mem.off, 0x10);
	CHECK_U64(v, (0xa5a5000000000000ull + 0x10) & 0xffffffffu);
	CHECK_EQ(viommu_pci_func_bar_write(x.pf, 2, 4, 2, 0xbeef), 0);
	CHECK_EQ(x.io.writes, 1);
	CHECK_U64(x.io.val, 0xbeef);
	CHECK_EQ(x.io.size, 2);
	/* refused: past the end, bad size, no such BAR, NULLs */
	CHECK_EQ(viommu_pci_func_bar_read(x.pf, 0, BAR0_SIZE - 2, 4, &v),
		 -EINVAL);
	CHECK_EQ(viommu_pci_func_bar_write(x.pf, 0, 0, 3, 0), -EINVAL);
	CHECK_EQ(viommu_pci_func_bar_write(x.pf, 0, UINT64_MAX - 1, 4, 0),
		 -EINVAL);
	CHECK_EQ(viommu_pci_func_bar_read(x.pf, 1, 0, 4, &v), -ENOENT);
	CHECK_EQ(viommu_pci_func_bar_read(x.pf, 7, 0, 4, &v), -EINVAL);
	CHECK_EQ(viommu_pci_func_bar_read(x.pf, 0, 0, 4, NULL), -EINVAL);
	CHECK_EQ(viommu_pci_func_bar_write(NULL, 0, 0, 4, 0), -EINVAL);
	CHECK_EQ(x.mem.reads, 1);
	CHECK_EQ(x.mem.writes, 0);
	pci_func_destroy(&x.f);
}

/* The DMA engine's counters: a short (older) struct gets its prefix. */
TEST(dma_engine_stats_versioned)
{
	struct viommu_ctx_config cc = { .size = sizeof(cc) };
	struct viommu_mem_region r = { .gpa = 0, .size = 1 << 16, .fd = -1 };
	struct viommu_dma_engine_stats st;
	struct viommu_dma_engine *e = NULL;
	struct viommu_endpoint *ep = NULL;
	struct viommu_ctx *ctx = NULL;
	struct viommu_mem *mem = NULL;
	static uint8_t ram[1 << 16];

	r.hva = ram;
	REQUIRE(viommu_mem_create(NULL, &mem) == 0);
	REQUIRE(viommu_mem_set_regions(mem, &r, 1) == 0);
	cc.mem = mem;
	REQUIRE(viommu_ctx_create(&cc, &ctx) == 0);
	REQUIRE(viommu_endpoint_create(ctx, 8, &ep) == 0);
	CHECK_EQ(viommu_dma_engine_create(ep, mem, "d", NULL, NULL, NULL),
		 -EINVAL);
	REQUIRE(viommu_dma_engine_create(ep, mem, "d", NULL, NULL, &e) == 0);
	CHECK(viommu_dma_engine_func(e) != NULL);
	CHECK_EQ(viommu_dma_engine_stats(NULL, &st, sizeof(st)), -EINVAL);
	CHECK_EQ(viommu_dma_engine_stats(e, NULL, sizeof(st)), -EINVAL);
	memset(&st, 0xee, sizeof(st));
	CHECK_EQ(viommu_dma_engine_stats(e, &st, sizeof(st)), 0);
	CHECK_U64(st.dmas, 0);
	CHECK_U64(st.log_suppressed, 0);
	memset(&st, 0xee, sizeof(st));
	CHECK_EQ(viommu_dma_engine_stats(e, &st, 2 * sizeof(uint64_t)), 0);
	CHECK_U64(st.dmas, 0);
	CHECK_U64(st.bytes_read, 0);
	CHECK_U64(st.bytes_written, 0xeeeeeeeeeeeeeeeeull); /* untouched */
	viommu_dma_engine_destroy(e);
	viommu_dma_engine_destroy(NULL);
	viommu_ctx_destroy(ctx);
	viommu_mem_destroy(mem);
}

TEST_MAIN()
