/*
 * test_abi.c - the rule that lets public structs grow without breaking an
 * embedder built against an older header (docs/API.md, "Conventions").
 *
 * Concept.  A config or stats struct with a @size member is read (or
 * written) only up to the @size its caller passes: a field the caller's
 * header did not have reads as zero, which is its default.  So a library
 * that appends a field keeps working with a binary built before it.  Each
 * test here plays such an old binary: it declares a frozen copy of a
 * shorter layout (a prefix of today's struct, cut where the next field
 * starts exactly at the old sizeof, as the append rule demands), fills
 * it, and places it so that it ends where a PROT_NONE guard page begins.
 * Any byte read or written past the caller's @size then kills the test
 * with SIGSEGV; the test also checks, where a default is observable, that
 * the field the old caller lacks took its default.
 *
 * The other direction - a caller newer than the library - is refused with
 * -EINVAL where the header documents it: with non-zero bytes past what the
 * library knows (ctx, SMMUv3, link server, memory layout, domain and
 * memory configs), or for any larger @size (virtio-blk, virtio-net, the
 * net switch, their stats).  Counters and limits passed with a size
 * argument (SMMUv3, context, domain info, VT-d, virtio-iommu and its
 * table handover, DMA engine, link server) read zero in what the library lacks, and a size 0 is
 * refused.
 * struct viommu_limits, embedded in the context config, grows into its
 * reserved words instead, which must be zero.
 * A @size of 0 stands for the first sized layout: frozen copies of those
 * layouts (v1_*) against the guard page prove that the library pins
 * their size rather than using its own, growing sizeof.
 *
 * The _Static_asserts below pin the frozen layouts to today's headers: a
 * field moved or inserted in front of an old one breaks the build here.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <viommu/viommu.h>

#include "harness.h"

#define RAM_GPA 0x40000000ull
#define RAM_SIZE (1u << 20)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The append rule, for frozen layout @old of today's @cur: same offsets,
 * and the first field @old lacks starts at sizeof(@old). */
#define SAME_AT(old, cur, f) \
	_Static_assert(offsetof(old, f) == offsetof(cur, f), #f " moved")
#define ENDS_AT(old, cur, next) \
	_Static_assert(sizeof(old) == offsetof(cur, next), \
		       #old " must end where " #next " starts")

/* ---- frozen "old" layouts ------------------------------------------- */

/* struct viommu_ctx_config before fault, fault_opaque, bypass_unattached */
struct old_ctx_config {
	uint32_t size;
	struct viommu_mem *mem;
	struct viommu_limits limits;
	struct viommu_log log;
	struct viommu_allocator allocator;
};
SAME_AT(struct old_ctx_config, struct viommu_ctx_config, mem);
SAME_AT(struct old_ctx_config, struct viommu_ctx_config, limits);
SAME_AT(struct old_ctx_config, struct viommu_ctx_config, allocator);
ENDS_AT(struct old_ctx_config, struct viommu_ctx_config, fault);

/* struct viommu_smmuv3_config before features and everything after */
struct old_smmuv3_config {
	uint32_t size;
	struct viommu_ctx *ctx;
	struct viommu_mem *mem;
	struct viommu_log log;
	struct viommu_allocator allocator;
};
SAME_AT(struct old_smmuv3_config, struct viommu_smmuv3_config, ctx);
SAME_AT(struct old_smmuv3_config, struct viommu_smmuv3_config, mem);
SAME_AT(struct old_smmuv3_config, struct viommu_smmuv3_config, allocator);
ENDS_AT(struct old_smmuv3_config, struct viommu_smmuv3_config, features);

/* struct viommu_link_server_config before link_ended, opaque, poll_us */
struct old_link_server_config {
	uint32_t size;
	struct viommu_mem *mem;
	struct viommu_log log;
	struct viommu_allocator allocator;
};
SAME_AT(struct old_link_server_config, struct viommu_link_server_config,
	mem);
SAME_AT(struct old_link_server_config, struct viommu_link_server_config,
	allocator);
ENDS_AT(struct old_link_server_config, struct viommu_link_server_config,
	link_ended);

/* struct viommu_mem_layout before its I/O regions */
struct old_mem_layout {
	uint32_t size;
	const struct viommu_mem_region *regions;
	unsigned int n;
};
SAME_AT(struct old_mem_layout, struct viommu_mem_layout, regions);
SAME_AT(struct old_mem_layout, struct viommu_mem_layout, n);
ENDS_AT(struct old_mem_layout, struct viommu_mem_layout, io);

/* struct viommu_viot_config before the OEM fields */
struct old_viot_config {
	uint32_t size;
	uint16_t iommu_segment;
	uint16_t iommu_bdf;
	const struct viommu_viot_range *ranges;
	unsigned int nr_ranges;
};
SAME_AT(struct old_viot_config, struct viommu_viot_config, iommu_bdf);
SAME_AT(struct old_viot_config, struct viommu_viot_config, ranges);
SAME_AT(struct old_viot_config, struct viommu_viot_config, nr_ranges);
ENDS_AT(struct old_viot_config, struct viommu_viot_config, oem_id);

/* struct viommu_virtio_blk_config before read_only and what follows */
struct old_blk_config {
	size_t size;
	struct viommu_mem *mem;
	struct viommu_endpoint *ep;
	const char *path;
	uint64_t capacity;
};
SAME_AT(struct old_blk_config, struct viommu_virtio_blk_config, path);
SAME_AT(struct old_blk_config, struct viommu_virtio_blk_config, capacity);
ENDS_AT(struct old_blk_config, struct viommu_virtio_blk_config, read_only);

/* struct viommu_virtio_net_config before mac and what follows */
struct old_net_config {
	size_t size;
	struct viommu_mem *mem;
	struct viommu_endpoint *ep;
};
SAME_AT(struct old_net_config, struct viommu_virtio_net_config, ep);
ENDS_AT(struct old_net_config, struct viommu_virtio_net_config, mac);

/* struct viommu_net_switch_config before max_ports and log */
struct old_switch_config {
	size_t size;
	uint32_t mac_table;
	uint32_t queue_depth;
};
SAME_AT(struct old_switch_config, struct viommu_net_switch_config,
	queue_depth);
ENDS_AT(struct old_switch_config, struct viommu_net_switch_config,
	max_ports);

/* struct viommu_domain_config before parent, s1 and s1_opaque */
struct old_domain_config {
	uint32_t size;
	enum viommu_domain_kind kind;
	uint64_t tag;
};
SAME_AT(struct old_domain_config, struct viommu_domain_config, kind);
SAME_AT(struct old_domain_config, struct viommu_domain_config, tag);
ENDS_AT(struct old_domain_config, struct viommu_domain_config, parent);

/* struct viommu_mem_config before allocator */
struct old_mem_config {
	uint32_t size;
	struct viommu_log log;
};
SAME_AT(struct old_mem_config, struct viommu_mem_config, log);
ENDS_AT(struct old_mem_config, struct viommu_mem_config, allocator);

/* The three stats structs with @size, cut after their first counter. */
struct old_stats {
	size_t size;
	uint64_t first;
};
ENDS_AT(struct old_stats, struct viommu_virtio_blk_stats, writes);
ENDS_AT(struct old_stats, struct viommu_virtio_net_stats, tx_bytes);
ENDS_AT(struct old_stats, struct viommu_net_switch_stats, unicast);

/*
 * The first layouts that had a @size: what a @size of 0 stands for.  A
 * caller built against them and passing 0 must never have bytes read
 * past them, however the struct grows (the library pins these sizes; it
 * must not use its own sizeof).
 */
struct v1_ctx_config {
	uint32_t size;
	struct viommu_mem *mem;
	struct viommu_limits limits;
	struct viommu_log log;
	struct viommu_allocator allocator;
	void (*fault)(void *opaque, const struct viommu_fault *fault);
	void *fault_opaque;
	bool bypass_unattached;
};
SAME_AT(struct v1_ctx_config, struct viommu_ctx_config, bypass_unattached);

struct v1_smmuv3_config {
	uint32_t size;
	struct viommu_ctx *ctx;
	struct viommu_mem *mem;
	struct viommu_log log;
	struct viommu_allocator allocator;
	uint32_t features;
	unsigned int sid_bits, ssid_bits, oas_bits;
	unsigned int cmdq_log2, evtq_log2, priq_log2;
	unsigned int iotlb_entries, cfg_entries;
	bool gbpa_abort;
	void (*irq)(void *opaque, enum viommu_smmuv3_irq irq);
	void *irq_opaque;
};
SAME_AT(struct v1_smmuv3_config, struct viommu_smmuv3_config, sid_bits);
SAME_AT(struct v1_smmuv3_config, struct viommu_smmuv3_config, gbpa_abort);
SAME_AT(struct v1_smmuv3_config, struct viommu_smmuv3_config, irq_opaque);

struct v1_link_server_config {
	uint32_t size;
	struct viommu_mem *mem;
	struct viommu_log log;
	struct viommu_allocator allocator;
	void (*link_ended)(void *opaque, unsigned int id, int why);
	void *opaque;
	unsigned int poll_us;
};
SAME_AT(struct v1_link_server_config, struct viommu_link_server_config,
	poll_us);

/* The first link config had no @domain and nothing after it. */
struct v1_link_config {
	uint32_t size;
	int proto;
	struct viommu_pci_func *func;
	int fd;
	const char *path;
	const char *name;
	bool poll_mode;
	struct viommu_mem *mem;
};
SAME_AT(struct v1_link_config, struct viommu_link_config, poll_mode);
SAME_AT(struct v1_link_config, struct viommu_link_config, mem);
ENDS_AT(struct v1_link_config, struct viommu_link_config, domain);

struct v1_viot_config {
	uint32_t size;
	uint16_t iommu_segment;
	uint16_t iommu_bdf;
	const struct viommu_viot_range *ranges;
	unsigned int nr_ranges;
	const char *oem_id;
	const char *oem_table_id;
	uint32_t oem_revision;
};
SAME_AT(struct v1_viot_config, struct viommu_viot_config, oem_revision);

struct v1_pci_sink {
	uint32_t size;
	void (*intx)(void *opaque, bool level);
	void (*msix)(void *opaque, unsigned int vector, uint64_t addr,
		     uint32_t data);
	void *opaque;
};
SAME_AT(struct v1_pci_sink, struct viommu_pci_sink, opaque);

struct v1_blk_config {
	size_t size;
	struct viommu_mem *mem;
	struct viommu_endpoint *ep;
	const char *path;
	uint64_t capacity;
	bool read_only;
	uint16_t num_queues;
	uint16_t queue_size;
	uint64_t ring_features;
	const char *serial;
	uint32_t max_inflight;
	struct viommu_log log;
	uint32_t io_threads;
};
SAME_AT(struct v1_blk_config, struct viommu_virtio_blk_config, num_queues);
SAME_AT(struct v1_blk_config, struct viommu_virtio_blk_config, io_threads);

struct v1_blk_stats {
	size_t size;
	uint64_t reads, writes, flushes, discards, write_zeroes, get_id;
	uint64_t bytes_read, bytes_written;
	uint64_t ioerr, unsupp;
	uint64_t faults, injected_faults, needs_reset;
};
SAME_AT(struct v1_blk_stats, struct viommu_virtio_blk_stats, needs_reset);

struct v1_net_config {
	size_t size;
	struct viommu_mem *mem;
	struct viommu_endpoint *ep;
	uint8_t mac[6];
	uint16_t queue_pairs;
	uint16_t queue_size;
	uint64_t ring_features;
	uint32_t mtu;
	struct viommu_net_switch *net_switch;
	struct viommu_log log;
};
SAME_AT(struct v1_net_config, struct viommu_virtio_net_config, mtu);
SAME_AT(struct v1_net_config, struct viommu_virtio_net_config, log);

struct v1_net_stats {
	size_t size;
	uint64_t tx_packets, tx_bytes, tx_dropped, tx_bad, tx_faults;
	uint64_t tx_no_backend;
	uint64_t rx_packets, rx_bytes, rx_dropped, rx_faults, rx_too_big;
	uint64_t rx_gso_dropped, csum_completed;
	uint64_t ctrl_ok, ctrl_err;
	uint64_t faults, injected_faults, needs_reset, budget_yields;
};
SAME_AT(struct v1_net_stats, struct viommu_virtio_net_stats, budget_yields);

struct v1_switch_config {
	size_t size;
	uint32_t mac_table;
	uint32_t queue_depth;
	uint32_t max_ports;
	struct viommu_log log;
};
SAME_AT(struct v1_switch_config, struct viommu_net_switch_config, log);

struct v1_switch_stats {
	size_t size;
	uint64_t frames, unicast, flooded, delivered, queue_drops;
	uint64_t learned, table_full, filtered;
	uint32_t ports;
};
SAME_AT(struct v1_switch_stats, struct viommu_net_switch_stats, ports);

struct v1_domain_config {
	uint32_t size;
	enum viommu_domain_kind kind;
	uint64_t tag;
	struct viommu_domain *parent;
	const struct viommu_stage1_ops *s1;
	void *s1_opaque;
};
SAME_AT(struct v1_domain_config, struct viommu_domain_config, s1_opaque);

struct v1_mem_config {
	uint32_t size;
	struct viommu_log log;
	struct viommu_allocator allocator;
};
SAME_AT(struct v1_mem_config, struct viommu_mem_config, allocator);

/*
 * struct viommu_limits cannot grow at its end (struct viommu_ctx_config
 * goes on after it): it grows into @reserved, so its size and the
 * context config's layout stay put.
 */
_Static_assert(sizeof(struct viommu_limits) == 64, "viommu_limits grew");
_Static_assert(offsetof(struct viommu_limits, reserved) == 36,
	       "a limit was inserted in front of an old one");

/* ---- the guard page -------------------------------------------------- */

/* struct guard - a page followed by a PROT_NONE page. */
struct guard {
	uint8_t *base;
	size_t pg;
};

static int guard_init(struct guard *g)
{
	g->pg = (size_t)sysconf(_SC_PAGESIZE);
	g->base = mmap(NULL, 2 * g->pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->base == MAP_FAILED)
		return -1;
	return mprotect(g->base + g->pg, g->pg, PROT_NONE);
}

static void guard_fini(struct guard *g)
{
	munmap(g->base, 2 * g->pg);
}

/*
 * at_guard() - zeroed room for @n bytes that end where the guard page
 * starts (@n is a struct size, so the result is aligned for it).
 */
static void *at_guard(struct guard *g, size_t n)
{
	memset(g->base, 0, g->pg);
	return g->base + g->pg - n;
}

/* ---- shared fixture: one MiB of guest RAM --------------------------- */

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));

static struct viommu_mem *mem_new(void)
{
	struct viommu_mem_region r = {
		.gpa = RAM_GPA, .size = RAM_SIZE, .fd = -1, .hva = ram,
	};
	struct viommu_mem *m = NULL;

	if (viommu_mem_create(NULL, &m))
		return NULL;
	if (viommu_mem_set_regions(m, &r, 1)) {
		viommu_mem_destroy(m);
		return NULL;
	}
	return m;
}

static int fault_calls;

static void count_fault(void *opaque, const struct viommu_fault *f)
{
	(void)opaque;
	(void)f;
	fault_calls++;
}

/* ---- context ---------------------------------------------------------- */

/*
 * An old context config: no fault callback and no bypass in it, so an
 * unattached endpoint's DMA faults (bypass off) and nothing is called.
 */
TEST(ctx_old_layout_gets_defaults)
{
	struct viommu_mem *m = mem_new();
	struct old_ctx_config *o;
	struct viommu_ctx *ctx = NULL;
	struct viommu_endpoint *ep;
	struct guard g;

	REQUIRE(m && !guard_init(&g));
	o = at_guard(&g, sizeof(*o));
	o->size = sizeof(*o);
	o->mem = m;
	CHECK_EQ(viommu_ctx_create((const void *)o, &ctx), 0);
	if (ctx) {
		REQUIRE(!viommu_endpoint_create(ctx, 1, &ep));
		CHECK_EQ(viommu_dma_write(ep, VIOMMU_NO_PASID, RAM_GPA, "x", 1),
			 -EFAULT);
		viommu_ctx_destroy(ctx);
	}
	guard_fini(&g);
	viommu_mem_destroy(m);
}

/* A newer caller: zero bytes past what we know are fine, others not. */
TEST(ctx_newer_layout_refused_unless_tail_zero)
{
	struct {
		struct viommu_ctx_config c;
		uint64_t future;
	} n = { .c = { .size = sizeof(n) } };
	struct viommu_mem *m = mem_new();
	struct viommu_ctx *ctx = NULL;

	REQUIRE(m);
	n.c.mem = m;
	n.future = 1;
	CHECK_EQ(viommu_ctx_create(&n.c, &ctx), -EINVAL);
	n.future = 0;
	CHECK_EQ(viommu_ctx_create(&n.c, &ctx), 0);
	viommu_ctx_destroy(ctx);
	viommu_mem_destroy(m);
}

/* Size 0 is the first sized layout: every field of it is read. */
TEST(ctx_size_zero_is_first_layout)
{
	struct viommu_ctx_config c = {
		.size = 0, .fault = count_fault, .bypass_unattached = false,
	};
	struct viommu_mem *m = mem_new();
	struct viommu_ctx *ctx = NULL;
	struct viommu_endpoint *ep;

	REQUIRE(m);
	c.mem = m;
	REQUIRE(!viommu_ctx_create(&c, &ctx));
	REQUIRE(!viommu_endpoint_create(ctx, 1, &ep));
	fault_calls = 0;
	CHECK_EQ(viommu_dma_write(ep, VIOMMU_NO_PASID, RAM_GPA, "x", 1),
		 -EFAULT);
	CHECK_EQ(fault_calls, 1);
	viommu_ctx_destroy(ctx);
	viommu_mem_destroy(m);
}

/* ---- SMMUv3 ------------------------------------------------------------ */

static struct viommu_ctx *ctx_new(struct viommu_mem *m)
{
	struct viommu_ctx_config c = { .size = sizeof(c), .mem = m };
	struct viommu_ctx *ctx = NULL;

	return viommu_ctx_create(&c, &ctx) ? NULL : ctx;
}

static uint32_t smmu_reg(struct viommu_smmuv3 *s, uint64_t off)
{
	uint64_t v = ~0ull;

	viommu_smmuv3_mmio_read(s, off, 4, &v);
	return (uint32_t)v;
}

/*
 * An old SMMUv3 config without any knob: the ID registers show the
 * defaults (SIDSIZE 16, SSIDSIZE 20, OAS 48, no PRI) and GBPA.ABORT is
 * clear.
 */
TEST(smmuv3_old_layout_gets_defaults)
{
	struct viommu_mem *m = mem_new();
	struct viommu_ctx *ctx = m ? ctx_new(m) : NULL;
	struct old_smmuv3_config *o;
	struct viommu_smmuv3 *s = NULL;
	struct guard g;

	REQUIRE(ctx && !guard_init(&g));
	o = at_guard(&g, sizeof(*o));
	o->size = sizeof(*o);
	o->ctx = ctx;
	o->mem = m;
	CHECK_EQ(viommu_smmuv3_create((const void *)o, &s), 0);
	if (s) {
		uint32_t idr0 = smmu_reg(s, 0x00), idr1 = smmu_reg(s, 0x04);

		CHECK_EQ(idr1 & 0x3f, 16);          /* SIDSIZE */
		CHECK_EQ((idr1 >> 6) & 0x1f, 20);   /* SSIDSIZE */
		CHECK_EQ(smmu_reg(s, 0x14) & 7, 5); /* IDR5.OAS: 48 bits */
		CHECK_EQ(idr0 & 3, 3);              /* S1P and S2P */
		CHECK_EQ(idr0 & (1u << 16), 0);     /* PRI off by default */
		CHECK_EQ(smmu_reg(s, 0x44) & (1u << 20), 0); /* GBPA.ABORT */
		viommu_smmuv3_destroy(s);
	}
	guard_fini(&g);
	viommu_ctx_destroy(ctx);
	viommu_mem_destroy(m);
}

TEST(smmuv3_newer_layout_refused_unless_tail_zero)
{
	struct {
		struct viommu_smmuv3_config c;
		uint64_t future;
	} n = { .c = { .size = sizeof(n) } };
	struct viommu_mem *m = mem_new();
	struct viommu_ctx *ctx = m ? ctx_new(m) : NULL;
	struct viommu_smmuv3 *s = NULL;

	REQUIRE(ctx);
	n.c.ctx = ctx;
	n.c.mem = m;
	n.future = 0x100;
	CHECK_EQ(viommu_smmuv3_create(&n.c, &s), -EINVAL);
	n.future = 0;
	CHECK_EQ(viommu_smmuv3_create(&n.c, &s), 0);
	viommu_smmuv3_destroy(s);
	viommu_ctx_destroy(ctx);
	viommu_mem_destroy(m);
}

/* Size 0: the first sized layout, knobs honoured (sid_bits, gbpa_abort). */
TEST(smmuv3_size_zero_is_first_layout)
{
	struct viommu_smmuv3_config c = {
		.size = 0, .sid_bits = 8, .gbpa_abort = true,
	};
	struct viommu_mem *m = mem_new();
	struct viommu_ctx *ctx = m ? ctx_new(m) : NULL;
	struct viommu_smmuv3 *s = NULL;

	REQUIRE(ctx);
	c.ctx = ctx;
	c.mem = m;
	CHECK_EQ(viommu_smmuv3_create(&c, &s), 0);
	if (s) {
		CHECK_EQ(smmu_reg(s, 0x04) & 0x3f, 8);
		CHECK(smmu_reg(s, 0x44) & (1u << 20));
		viommu_smmuv3_destroy(s);
	}
	viommu_ctx_destroy(ctx);
	viommu_mem_destroy(m);
}

/*
 * SMMUv3 counters take their size as an argument: an old caller knowing
 * only the first counter gets it and nothing is written past it; a newer
 * caller reads zero in the counters this library lacks.
 */
TEST(smmuv3_stats_old_and_newer)
{
	struct {
		struct viommu_smmuv3_stats st;
		uint64_t future;
	} n;
	struct viommu_smmuv3_config c = { .size = sizeof(c) };
	struct viommu_mem *m = mem_new();
	struct viommu_ctx *ctx = m ? ctx_new(m) : NULL;
	struct viommu_smmuv3 *s = NULL;
	uint64_t *old;
	struct guard g;

	REQUIRE(ctx && !guard_init(&g));
	c.ctx = ctx;
	c.mem = m;
	REQUIRE(!viommu_smmuv3_create(&c, &s));
	old = at_guard(&g, sizeof(*old));
	*old = ~0ull;
	CHECK_EQ(viommu_smmuv3_stats(s, (void *)old, sizeof(*old)), 0);
	CHECK_EQ(*old, 0);                          /* commands */
	memset(&n, 0xff, sizeof(n));
	CHECK_EQ(viommu_smmuv3_stats(s, &n.st, sizeof(n)), 0);
	CHECK_EQ(n.st.faults, 0);
	CHECK_U64(n.future, 0);
	CHECK_EQ(viommu_smmuv3_stats(s, &n.st, 0), -EINVAL);
	viommu_smmuv3_destroy(s);
	guard_fini(&g);
	viommu_ctx_destroy(ctx);
	viommu_mem_destroy(m);
}

/* ---- link server ------------------------------------------------------- */

TEST(link_server_old_layout_and_newer_tail)
{
	struct {
		struct viommu_link_server_config c;
		uint64_t future;
	} n = { .c = { .size = sizeof(n) } };
	struct viommu_mem *m = mem_new();
	struct old_link_server_config *o;
	struct viommu_link_server *s = NULL;
	struct guard g;

	REQUIRE(m && !guard_init(&g));
	o = at_guard(&g, sizeof(*o));
	o->size = sizeof(*o);
	o->mem = m;
	CHECK_EQ(viommu_link_server_create((const void *)o, &s), 0);
	viommu_link_server_destroy(s);
	s = NULL;
	n.c.mem = m;
	n.future = ~0ull;
	CHECK_EQ(viommu_link_server_create(&n.c, &s), -EINVAL);
	n.future = 0;
	CHECK_EQ(viommu_link_server_create(&n.c, &s), 0);
	viommu_link_server_destroy(s);
	guard_fini(&g);
	viommu_mem_destroy(m);
}

/* ---- memory layout ----------------------------------------------------- */

/* An old layout has no I/O regions; its RAM region works. */
TEST(mem_layout_old_and_newer)
{
	struct viommu_mem_region r = {
		.gpa = RAM_GPA, .size = RAM_SIZE, .fd = -1, .hva = ram,
	};
	struct {
		struct viommu_mem_layout l;
		uint64_t future;
	} n = { .l = { .size = sizeof(n), .regions = &r, .n = 1 } };
	struct viommu_mem *m = NULL;
	struct old_mem_layout *o;
	struct guard g;
	uint8_t b = 0;

	REQUIRE(!viommu_mem_create(NULL, &m) && !guard_init(&g));
	o = at_guard(&g, sizeof(*o));
	o->size = sizeof(*o);
	o->regions = &r;
	o->n = 1;
	ram[5] = 0x5a;
	CHECK_EQ(viommu_mem_set_layout(m, (const void *)o), 0);
	CHECK_EQ(viommu_mem_read(m, RAM_GPA + 5, &b, 1), 0);
	CHECK_EQ(b, 0x5a);
	n.future = 1;
	CHECK_EQ(viommu_mem_set_layout(m, &n.l), -EINVAL);
	n.future = 0;
	CHECK_EQ(viommu_mem_set_layout(m, &n.l), 0);
	n.l.size = 0; /* documented: must be non-zero */
	CHECK_EQ(viommu_mem_set_layout(m, &n.l), -EINVAL);
	guard_fini(&g);
	viommu_mem_destroy(m);
}

/* ---- VIOT ------------------------------------------------------------- */

/* An old VIOT config: the OEM fields take their defaults. */
TEST(viot_old_layout_gets_default_oem)
{
	const struct viommu_viot_range r = {
		.bdf_start = 0x18, .bdf_end = 0x18, .endpoint_start = 0x18,
	};
	struct old_viot_config *o;
	uint8_t t[128];
	size_t len = 0;
	struct guard g;

	REQUIRE(!guard_init(&g));
	o = at_guard(&g, sizeof(*o));
	o->size = sizeof(*o);
	o->iommu_bdf = 0x10;
	o->ranges = &r;
	o->nr_ranges = 1;
	CHECK_EQ(viommu_viot_build((const void *)o, t, sizeof(t), &len), 0);
	CHECK_EQ(len, 88);
	CHECK(!memcmp(t + 10, "VIOMMU", 6));
	CHECK(!memcmp(t + 16, "VIOMMUVT", 8));
	CHECK(t[24] == 0 && t[25] == 0 && t[26] == 0 && t[27] == 0);
	guard_fini(&g);
}

/* ---- virtio-blk, virtio-net, the switch --------------------------------- */

/*
 * An old virtio-blk config (anonymous backing, nothing past @capacity):
 * read-write, one queue; a larger @size is refused whatever its tail.
 */
TEST(virtio_blk_old_layout_and_stats)
{
	struct {
		struct viommu_virtio_blk_config c;
		uint64_t future;
	} n = { .c = { .size = sizeof(n), .capacity = 4096 } };
	struct viommu_mem *m = mem_new();
	struct viommu_virtio_blk *blk = NULL;
	struct old_blk_config *o;
	struct old_stats *st;
	struct guard g;
	uint64_t cap = 0;

	REQUIRE(m && !guard_init(&g));
	o = at_guard(&g, sizeof(*o));
	o->size = sizeof(*o);
	o->mem = m;
	o->capacity = 64 * 512;
	CHECK_EQ(viommu_virtio_blk_create((const void *)o, &blk), 0);
	if (blk) {
		struct viommu_virtio_dev *dev = viommu_virtio_blk_dev(blk);
		uint64_t f = viommu_virtio_dev_features(dev);

		CHECK_EQ(viommu_virtio_dev_config_read(dev, 0, &cap, 8), 0);
		CHECK_EQ(cap, 64);                 /* sectors */
		CHECK_EQ(f & (1ull << 5), 0);      /* VIRTIO_BLK_F_RO */
		CHECK_EQ(f & (1ull << 12), 0);     /* VIRTIO_BLK_F_MQ */
		/* an old stats struct: only its @size bytes are written */
		st = at_guard(&g, sizeof(*st));
		st->size = sizeof(*st);
		st->first = ~0ull;
		CHECK_EQ(viommu_virtio_blk_stats(blk, (void *)st), 0);
		CHECK_EQ(st->first, 0);            /* reads completed */
		st->size = sizeof(struct viommu_virtio_blk_stats) + 8;
		CHECK_EQ(viommu_virtio_blk_stats(blk, (void *)st), -EINVAL);
		viommu_virtio_blk_destroy(blk);
	}
	blk = NULL;
	n.c.mem = m;
	CHECK_EQ(viommu_virtio_blk_create(&n.c, &blk), -EINVAL);
	guard_fini(&g);
	viommu_mem_destroy(m);
}

/* An old virtio-net config: one queue pair, no MTU; stats as for blk. */
TEST(virtio_net_old_layout_and_stats)
{
	struct {
		struct viommu_virtio_net_config c;
		uint64_t future;
	} n = { .c = { .size = sizeof(n) } };
	struct viommu_mem *m = mem_new();
	struct viommu_virtio_net *net = NULL;
	struct old_net_config *o;
	struct old_stats *st;
	struct guard g;

	REQUIRE(m && !guard_init(&g));
	o = at_guard(&g, sizeof(*o));
	o->size = sizeof(*o);
	o->mem = m;
	CHECK_EQ(viommu_virtio_net_create((const void *)o, &net), 0);
	if (net) {
		uint64_t f = viommu_virtio_dev_features(
			viommu_virtio_net_dev(net));

		CHECK_EQ(f & (1ull << 22), 0);     /* VIRTIO_NET_F_MQ */
		CHECK_EQ(f & (1ull << 3), 0);      /* VIRTIO_NET_F_MTU */
		st = at_guard(&g, sizeof(*st));
		st->size = sizeof(*st);
		st->first = ~0ull;
		CHECK_EQ(viommu_virtio_net_stats(net, (void *)st), 0);
		CHECK_EQ(st->first, 0);            /* tx_packets */
		st->size = sizeof(struct viommu_virtio_net_stats) + 8;
		CHECK_EQ(viommu_virtio_net_stats(net, (void *)st), -EINVAL);
		viommu_virtio_net_destroy(net);
	}
	net = NULL;
	n.c.mem = m;
	CHECK_EQ(viommu_virtio_net_create(&n.c, &net), -EINVAL);
	guard_fini(&g);
	viommu_mem_destroy(m);
}

TEST(net_switch_old_layout_and_stats)
{
	struct {
		struct viommu_net_switch_config c;
		uint64_t future;
	} n = { .c = { .size = sizeof(n) } };
	struct viommu_net_switch *sw = NULL;
	struct old_switch_config *o;
	struct old_stats *st;
	struct guard g;

	REQUIRE(!guard_init(&g));
	o = at_guard(&g, sizeof(*o));
	o->size = sizeof(*o);
	o->mac_table = 16;
	CHECK_EQ(viommu_net_switch_create((const void *)o, &sw), 0);
	if (sw) {
		st = at_guard(&g, sizeof(*st));
		st->size = sizeof(*st);
		st->first = ~0ull;
		CHECK_EQ(viommu_net_switch_stats(sw, (void *)st), 0);
		CHECK_EQ(st->first, 0);            /* frames */
		st->size = sizeof(struct viommu_net_switch_stats) + 8;
		CHECK_EQ(viommu_net_switch_stats(sw, (void *)st), -EINVAL);
		viommu_net_switch_destroy(sw);
	}
	sw = NULL;
	CHECK_EQ(viommu_net_switch_create(&n.c, &sw), -EINVAL);
	guard_fini(&g);
}

/* ---- size 0: the first layout, and not a byte more -------------------- */

static int sink_msix;

static void on_msix(void *opaque, unsigned int vector, uint64_t addr,
		    uint32_t data)
{
	(void)opaque;
	(void)vector;
	(void)addr;
	(void)data;
	sink_msix++;
}

/*
 * Each first layout sits against the guard page with @size 0: the call
 * works and reads what the layout has (a knob set in it takes effect).
 */
TEST(size_zero_reads_first_layout_only)
{
	struct viommu_mem *m = mem_new();
	struct viommu_ctx *ctx = NULL;
	struct viommu_endpoint *ep = NULL;
	struct viommu_smmuv3 *smmu = NULL;
	struct viommu_link_server *srv = NULL;
	struct viommu_dma_engine *eng = NULL;
	struct viommu_virtio_blk *blk = NULL;
	struct guard g;

	REQUIRE(m && !guard_init(&g));
	{
		struct v1_ctx_config *c = at_guard(&g, sizeof(*c));

		c->mem = m;
		c->bypass_unattached = true;
		CHECK_EQ(viommu_ctx_create((const void *)c, &ctx), 0);
		REQUIRE(ctx && !viommu_endpoint_create(ctx, 3, &ep));
		CHECK_EQ(viommu_dma_write(ep, VIOMMU_NO_PASID, RAM_GPA, "x", 1),
			 0); /* bypass was read */
	}
	{
		struct v1_smmuv3_config *c = at_guard(&g, sizeof(*c));

		c->ctx = ctx;
		c->mem = m;
		c->sid_bits = 9;
		CHECK_EQ(viommu_smmuv3_create((const void *)c, &smmu), 0);
		if (smmu)
			CHECK_EQ(smmu_reg(smmu, 0x04) & 0x3f, 9);
		viommu_smmuv3_destroy(smmu);
	}
	{
		struct v1_viot_config *c = at_guard(&g, sizeof(*c));
		uint8_t t[64];
		size_t len = 0;

		c->oem_revision = 0x01020304;
		CHECK_EQ(viommu_viot_build((const void *)c, t, sizeof(t), &len),
			 0);
		CHECK(t[24] == 4 && t[25] == 3 && t[26] == 2 && t[27] == 1);
	}
	{
		struct v1_link_server_config *c = at_guard(&g, sizeof(*c));

		c->mem = m;
		CHECK_EQ(viommu_link_server_create((const void *)c, &srv), 0);
	}
	REQUIRE(!viommu_dma_engine_create(ep, m, "abi", NULL, NULL, &eng));
	{
		struct v1_pci_sink *c = at_guard(&g, sizeof(*c));
		struct viommu_pci_func *fn = viommu_dma_engine_func(eng);

		c->msix = on_msix;
		CHECK_EQ(viommu_pci_func_attach(fn, (const void *)c), 0);
		viommu_pci_func_detach(fn);
	}
	if (srv) {
		struct v1_link_config *c = at_guard(&g, sizeof(*c));
		int sv[2];
		unsigned int id;

		REQUIRE(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
		c->proto = VIOMMU_LINK_VFIO_USER;
		c->func = viommu_dma_engine_func(eng);
		c->fd = sv[0];
		c->poll_mode = true;
		CHECK_EQ(viommu_link_server_add(srv, (const void *)c, &id), 0);
		viommu_link_server_destroy(srv);
		close(sv[1]);
	}
	viommu_dma_engine_destroy(eng);
	{
		struct v1_blk_config *c = at_guard(&g, sizeof(*c));
		struct v1_blk_stats *st;

		c->mem = m;
		c->capacity = 8 * 512;
		c->num_queues = 2;
		CHECK_EQ(viommu_virtio_blk_create((const void *)c, &blk), 0);
		if (blk) {
			CHECK(viommu_virtio_dev_features(viommu_virtio_blk_dev(
				      blk)) & (1ull << 12)); /* MQ: read */
			st = at_guard(&g, sizeof(*st));
			st->needs_reset = ~0ull;
			CHECK_EQ(viommu_virtio_blk_stats(blk, (void *)st), 0);
			CHECK_EQ(st->needs_reset, 0);
			CHECK_EQ(st->size, sizeof(*st));
		}
		viommu_virtio_blk_destroy(blk);
	}
	viommu_ctx_destroy(ctx);
	guard_fini(&g);
	viommu_mem_destroy(m);
}

/*
 * virtio-net and the switch: their first layouts (before the socket
 * backend and the backend/GSO counters) with @size 0 against the guard
 * page: creation reads only them, stats write only them.
 */
TEST(net_size_zero_reads_first_layout_only)
{
	struct viommu_mem *m = mem_new();
	struct viommu_net_switch *sw = NULL;
	struct viommu_virtio_net *net = NULL;
	struct guard g;

	REQUIRE(m && !guard_init(&g));
	{
		struct v1_switch_config *c = at_guard(&g, sizeof(*c));

		c->max_ports = 1;
		CHECK_EQ(viommu_net_switch_create((const void *)c, &sw), 0);
	}
	if (sw) {
		struct v1_net_config *c = at_guard(&g, sizeof(*c));

		c->mem = m;
		c->queue_pairs = 1;
		c->net_switch = sw;
		CHECK_EQ(viommu_virtio_net_create((const void *)c, &net), 0);
	}
	if (net) {
		struct v1_net_config *c = at_guard(&g, sizeof(*c));
		struct viommu_virtio_net *net2 = NULL;
		struct v1_net_stats *st = at_guard(&g, sizeof(*st));

		st->budget_yields = ~0ull;
		CHECK_EQ(viommu_virtio_net_stats(net, (void *)st), 0);
		CHECK_EQ(st->budget_yields, 0);
		/* max_ports 1, read from the first layout: a second NIC
		 * does not fit on the switch */
		c->mem = m;
		c->net_switch = sw;
		CHECK_EQ(viommu_virtio_net_create((const void *)c, &net2),
			 -ENOSPC);
		viommu_virtio_net_destroy(net2);
	}
	if (sw) {
		struct v1_switch_stats *st = at_guard(&g, sizeof(*st));

		st->ports = 77;
		CHECK_EQ(viommu_net_switch_stats(sw, (void *)st), 0);
		CHECK_EQ(st->ports, 1);
	}
	viommu_virtio_net_destroy(net);
	viommu_net_switch_destroy(sw);
	guard_fini(&g);
	viommu_mem_destroy(m);
}

/* ---- getters that take the caller's size -------------------------------- */

/*
 * stats_old_and_newer() - a getter @get(@obj, out, size) against an old
 * caller knowing only the first field, @fsz bytes (at the guard page:
 * nothing is written past it, and it is written: @first expected), a
 * newer caller (zero past the library's @n bytes), and size 0 (-EINVAL).
 */
typedef int (*sized_get)(void *obj, void *out, size_t size);

static void stats_old_and_newer(struct guard *g, sized_get get, void *obj,
				size_t n, size_t fsz, uint64_t first)
{
	uint8_t *old = at_guard(g, fsz);
	uint8_t buf[4096];
	uint64_t v = 0;

	REQUIRE(n + 64 < sizeof(buf) && fsz <= sizeof(v));
	memset(old, 0xff, fsz);
	CHECK_EQ(get(obj, old, fsz), 0);
	memcpy(&v, old, fsz);
	CHECK_U64(v, first);
	memset(buf, 0xff, sizeof(buf));
	CHECK_EQ(get(obj, buf, n + 64), 0);
	for (size_t i = n; i < n + 64; i++)
		CHECK_EQ(buf[i], 0);
	CHECK_EQ(buf[n + 64], 0xff);         /* not a byte past @size */
	CHECK_EQ(get(obj, buf, 0), -EINVAL);
	CHECK_EQ(get(obj, NULL, n), -EINVAL);
}

static int get_ctx_stats(void *o, void *out, size_t size)
{
	return viommu_ctx_stats(o, out, size);
}

static int get_ctx_limits(void *o, void *out, size_t size)
{
	return viommu_ctx_limits(o, out, size);
}

static int get_domain_info(void *o, void *out, size_t size)
{
	return viommu_domain_info(o, out, size);
}

static int get_dma_engine_stats(void *o, void *out, size_t size)
{
	return viommu_dma_engine_stats(o, out, size);
}

static int get_vtd_stats(void *o, void *out, size_t size)
{
	return viommu_vtd_stats(o, out, size);
}

static int get_vi_stats(void *o, void *out, size_t size)
{
	return viommu_virtio_iommu_stats(o, out, size);
}

static int get_vi_table_stats(void *o, void *out, size_t size)
{
	return viommu_virtio_iommu_table_stats(o, out, size);
}

/*
 * The context's counters and limits, a domain's info (first fields:
 * domains 1, max_domains 5, kind PAGING).
 */
TEST(ctx_stats_and_limits_old_and_newer)
{
	struct viommu_mem *m = mem_new();
	struct viommu_ctx_config c = {
		.size = sizeof(c), .mem = m, .limits = { .max_domains = 5 },
	};
	struct viommu_domain_config dc = { .kind = VIOMMU_DOMAIN_PAGING };
	struct viommu_ctx *ctx = NULL;
	struct viommu_domain *d = NULL;
	struct viommu_limits l;
	struct guard g;

	REQUIRE(m && !guard_init(&g));
	REQUIRE(!viommu_ctx_create(&c, &ctx));
	REQUIRE(!viommu_domain_create(ctx, &dc, &d));
	stats_old_and_newer(&g, get_ctx_stats, ctx,
			    sizeof(struct viommu_ctx_stats), 8, 1);
	/* domain info, first field: kind PAGING */
	stats_old_and_newer(&g, get_domain_info, d,
			    sizeof(struct viommu_domain_info), 4,
			    VIOMMU_DOMAIN_PAGING);
	CHECK_EQ(get_ctx_stats(NULL, &l, sizeof(l)), -EINVAL);
	stats_old_and_newer(&g, get_ctx_limits, ctx,
			    sizeof(struct viommu_limits), 4, 5);
	/* all limits filled in, reserved room reads zero */
	memset(&l, 0xff, sizeof(l));
	CHECK_EQ(viommu_ctx_limits(ctx, &l, sizeof(l)), 0);
	CHECK_EQ(l.max_endpoints, 4096);
	for (size_t i = 0; i < ARRAY_LEN(l.reserved); i++)
		CHECK_EQ(l.reserved[i], 0);
	/* NULL context: the defaults */
	CHECK_EQ(viommu_ctx_limits(NULL, &l, sizeof(l)), 0);
	CHECK_EQ(l.max_domains, 1024);
	viommu_domain_destroy(d);
	viommu_ctx_destroy(ctx);
	guard_fini(&g);
	viommu_mem_destroy(m);
}

/*
 * A limit this library does not know (a reserved word set by a caller
 * built against a newer header) is refused, not silently ignored.
 */
TEST(ctx_limits_reserved_must_be_zero)
{
	struct viommu_mem *m = mem_new();
	struct viommu_ctx_config c = { .size = sizeof(c), .mem = m };
	struct viommu_ctx *ctx = NULL;

	REQUIRE(m);
	for (size_t i = 0; i < ARRAY_LEN(c.limits.reserved); i++) {
		c.limits.reserved[i] = 1;
		CHECK_EQ(viommu_ctx_create(&c, &ctx), -EINVAL);
		c.limits.reserved[i] = 0;
	}
	CHECK_EQ(viommu_ctx_create(&c, &ctx), 0);
	viommu_ctx_destroy(ctx);
	viommu_mem_destroy(m);
}

TEST(vtd_stats_old_and_newer)
{
	struct viommu_mem *m = mem_new();
	struct viommu_ctx *ctx = m ? ctx_new(m) : NULL;
	struct viommu_vtd_config c = { .size = sizeof(c) };
	struct viommu_vtd *vtd = NULL;
	struct guard g;

	REQUIRE(ctx && !guard_init(&g));
	c.ctx = ctx;
	c.mem = m;
	REQUIRE(!viommu_vtd_create(&c, &vtd));
	stats_old_and_newer(&g, get_vtd_stats, vtd,
			    sizeof(struct viommu_vtd_stats), 8, 0);
	viommu_vtd_destroy(vtd);
	guard_fini(&g);
	viommu_ctx_destroy(ctx);
	viommu_mem_destroy(m);
}

TEST(virtio_iommu_stats_old_and_newer)
{
	struct viommu_mem *m = mem_new();
	struct viommu_ctx *ctx = m ? ctx_new(m) : NULL;
	struct viommu_virtio_iommu_config c = { .size = sizeof(c) };
	struct viommu_virtio_iommu *vi = NULL;
	struct guard g;

	REQUIRE(ctx && !guard_init(&g));
	c.ctx = ctx;
	c.mem = m;
	REQUIRE(!viommu_virtio_iommu_create(&c, &vi));
	stats_old_and_newer(&g, get_vi_stats, vi,
			    sizeof(struct viommu_virtio_iommu_stats), 8, 0);
	stats_old_and_newer(&g, get_vi_table_stats, vi,
			    sizeof(struct viommu_virtio_iommu_table_stats), 8, 0);
	viommu_virtio_iommu_destroy(vi);
	guard_fini(&g);
	viommu_ctx_destroy(ctx);
	viommu_mem_destroy(m);
}

TEST(dma_engine_stats_old_and_newer)
{
	struct viommu_mem *m = mem_new();
	struct viommu_ctx *ctx = m ? ctx_new(m) : NULL;
	struct viommu_endpoint *ep = NULL;
	struct viommu_dma_engine *eng = NULL;
	struct guard g;

	REQUIRE(ctx && !guard_init(&g));
	REQUIRE(!viommu_endpoint_create(ctx, 1, &ep));
	REQUIRE(!viommu_dma_engine_create(ep, m, "abi", NULL, NULL, &eng));
	stats_old_and_newer(&g, get_dma_engine_stats, eng,
			    sizeof(struct viommu_dma_engine_stats), 8, 0);
	viommu_dma_engine_destroy(eng);
	guard_fini(&g);
	viommu_ctx_destroy(ctx);
	viommu_mem_destroy(m);
}

/* ---- domain and memory configs ------------------------------------------ */

static const struct viommu_stage1_ops s1_none;

/*
 * An old domain config (kind and tag only) against the guard page, a
 * first layout with @size 0 (every field read: a NESTED domain without
 * @s1->translate is refused, so @s1 was read), and a newer caller.
 */
TEST(domain_config_old_first_and_newer)
{
	struct {
		struct viommu_domain_config c;
		uint64_t future;
	} n = { .c = { .size = sizeof(n), .kind = VIOMMU_DOMAIN_PAGING } };
	struct viommu_mem *m = mem_new();
	struct viommu_ctx *ctx = m ? ctx_new(m) : NULL;
	struct viommu_domain *d = NULL;
	struct guard g;

	REQUIRE(ctx && !guard_init(&g));
	{
		struct old_domain_config *o = at_guard(&g, sizeof(*o));

		o->size = sizeof(*o);
		o->kind = VIOMMU_DOMAIN_PAGING;
		o->tag = 42;
		CHECK_EQ(viommu_domain_create(ctx, (const void *)o, &d), 0);
		viommu_domain_destroy(d);
		d = NULL;
		/* NESTED needs @s1, which an old caller cannot give */
		o->kind = VIOMMU_DOMAIN_NESTED;
		CHECK_EQ(viommu_domain_create(ctx, (const void *)o, &d),
			 -EINVAL);
	}
	{
		struct v1_domain_config *c = at_guard(&g, sizeof(*c));

		c->kind = VIOMMU_DOMAIN_NESTED;
		c->s1 = &s1_none;
		CHECK_EQ(viommu_domain_create(ctx, (const void *)c, &d),
			 -EINVAL);
		c->kind = VIOMMU_DOMAIN_PAGING;
		CHECK_EQ(viommu_domain_create(ctx, (const void *)c, &d), 0);
		viommu_domain_destroy(d);
		d = NULL;
	}
	n.future = 1;
	CHECK_EQ(viommu_domain_create(ctx, &n.c, &d), -EINVAL);
	n.future = 0;
	CHECK_EQ(viommu_domain_create(ctx, &n.c, &d), 0);
	viommu_domain_destroy(d);
	guard_fini(&g);
	viommu_ctx_destroy(ctx);
	viommu_mem_destroy(m);
}

static int mem_allocs;

static void *count_alloc(void *opaque, size_t size)
{
	(void)opaque;
	mem_allocs++;
	return malloc(size);
}

static void count_free(void *opaque, void *p)
{
	(void)opaque;
	free(p);
}

/*
 * An old memory config (log only): the default allocator; the first
 * layout with @size 0 against the guard page: its allocator is used; a
 * newer caller: refused unless the tail is zero.
 */
TEST(mem_config_old_first_and_newer)
{
	struct {
		struct viommu_mem_config c;
		uint64_t future;
	} n = { .c = { .size = sizeof(n) } };
	struct viommu_mem *m = NULL;
	struct guard g;

	REQUIRE(!guard_init(&g));
	{
		struct old_mem_config *o = at_guard(&g, sizeof(*o));

		o->size = sizeof(*o);
		CHECK_EQ(viommu_mem_create((const void *)o, &m), 0);
		viommu_mem_destroy(m);
		m = NULL;
	}
	{
		struct v1_mem_config *c = at_guard(&g, sizeof(*c));

		c->allocator.alloc = count_alloc;
		c->allocator.free = count_free;
		mem_allocs = 0;
		CHECK_EQ(viommu_mem_create((const void *)c, &m), 0);
		CHECK(mem_allocs > 0);           /* the allocator was read */
		viommu_mem_destroy(m);
		m = NULL;
	}
	n.future = 1;
	CHECK_EQ(viommu_mem_create(&n.c, &m), -EINVAL);
	n.future = 0;
	CHECK_EQ(viommu_mem_create(&n.c, &m), 0);
	viommu_mem_destroy(m);
	guard_fini(&g);
}

TEST_MAIN()
