/*
 * test_smmuv3_cmdq.c - bounded work per guest write in the SMMUv3 command
 * queue (issue 17 item 3).  One CMDQ_PROD write used to consume the whole
 * queue - half a million CFGI_ALL, each re-routing every endpoint - under
 * the command lock.  Now a write consumes one slice
 * (VIOMMU_SMMUV3_CMDQ_SLICE commands, fewer if it re-routed
 * VIOMMU_SMMUV3_CMDQ_SLICE_ROUTES endpoints), CMDQ_CONS shows the
 * progress, and later MMIO accesses (a driver polling CONS) or
 * viommu_smmuv3_poll() (a driver waiting for the CMD_SYNC MSI in memory)
 * consume the rest.  CFGI_ALL bumps a generation instead of visiting the
 * caches, and re-routes wait for the next CMD_SYNC.
 */
#define FX_RAM_SIZE (32ull << 20)
#include "harness.h"
#include "unit/test_smmuv3_fixture.h"

#include <stdio.h>
#include <time.h>

#define BIG_LOG2 16
#define CR0_SMMUEN 1u
#define CR0_EVTQEN (1u << 2)
#define CR0_CMDQEN (1u << 3)
#define R_CR0 0x20
#define R_CR0ACK 0x24
#define R_GBPA 0x44
#define R_CMDQ_BASE 0x90
#define R_CMDQ_PROD 0x98
#define R_CMDQ_CONS 0x9c
#define OP_CFGI_ALL 0x04ull
#define OP_SYNC 0x46ull
#define SYNC_CS_IRQ (1ull << 12)

/* struct bigq - a command queue of 2^BIG_LOG2 entries the test fills. */
struct bigq {
	uint64_t base;
	uint32_t prod;
};

static uint32_t wrap_mask(void)
{
	return (2u << BIG_LOG2) - 1;
}

/*
 * bigq_init() - move the command queue to a fresh one of 2^BIG_LOG2
 * entries; the SMMU stays enabled (@smmuen) or not.  Return: 0 or -1.
 */
static int bigq_init(struct fx *f, struct bigq *q, bool smmuen)
{
	uint32_t cr0 = smmuen ? (CR0_SMMUEN | CR0_EVTQEN) : 0;

	q->base = fx_alloc(f, 16ull << BIG_LOG2, 16ull << BIG_LOG2);
	q->prod = 0;
	if (!q->base)
		return -1;
	mw(f, R_CR0, 4, cr0);
	if (mr(f, R_CR0ACK, 4) != cr0)
		return -1;
	mw(f, R_CMDQ_BASE, 8, q->base | (1ull << 62) | BIG_LOG2);
	mw(f, R_CMDQ_PROD, 4, 0);
	mw(f, R_CMDQ_CONS, 4, 0);
	mw(f, R_CR0, 4, cr0 | CR0_CMDQEN);
	return mr(f, R_CR0ACK, 4) == (cr0 | CR0_CMDQEN) ? 0 : -1;
}

/* bigq_put() - write one command at PROD (no doorbell). */
static void bigq_put(struct fx *f, struct bigq *q, uint64_t d0, uint64_t d1)
{
	uint64_t a = q->base +
		     (uint64_t)(q->prod & ((1u << BIG_LOG2) - 1)) * 16;

	gw64(f, a, d0);
	gw64(f, a + 8, d1);
	q->prod = (q->prod + 1) & wrap_mask();
}

static uint32_t cons(struct fx *f)
{
	return (uint32_t)mr(f, R_CMDQ_CONS, 4) & wrap_mask();
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* dma() - one 4-byte read by endpoint @i; returns the errno. */
static int dma(struct fx *f, int i, uint64_t iova)
{
	uint32_t v;

	return viommu_dma_read(f->ep[i], VIOMMU_NO_PASID, iova, &v, 4);
}

/*
 * A queue of 65534 CFGI_ALL and a CMD_SYNC: the doorbell consumes one
 * slice, each CONS read one more (before it answers), the re-route and the
 * sync's MSI happen only when the sync is reached.
 */
TEST(cmdq_huge_cfgi_all_queue_consumed_in_slices)
{
	struct viommu_smmuv3_config c = {
		.size = sizeof(c), .cmdq_log2 = BIG_LOG2,
	};
	const uint32_t n = (1u << BIG_LOG2) - 1, slice =
		VIOMMU_SMMUV3_CMDQ_SLICE;
	uint64_t q[8] = { 0 }, msi = 0x1000, t0;
	uint32_t prev, now, reads = 0;
	struct bigq bq;
	struct fx f;

	REQUIRE(fx_init(&f, &c) == 0);
	REQUIRE(fx_reset(&f) == 0);
	q[0] = 1; /* abort, cached */
	fx_ste(&f, 1, q);
	CHECK(fx_cfgi_ste(&f, 1));
	REQUIRE(bigq_init(&f, &bq, true) == 0);
	q[0] = 1 | (4u << 1); /* bypass, not yet announced by a CFGI */
	fx_ste(&f, 1, q);
	CHECK_EQ(dma(&f, 1, 0x2000), -EFAULT);
	gw64(&f, msi, ~0ull);
	for (uint32_t i = 0; i < n - 1; i++)
		bigq_put(&f, &bq, OP_CFGI_ALL, 31);
	bigq_put(&f, &bq, OP_SYNC | SYNC_CS_IRQ | (0x5a5aull << 32), msi);
	t0 = mono_ns();
	mw(&f, R_CMDQ_PROD, 4, bq.prod);
	printf("# PROD write for %u commands returned after %.3f ms\n", n,
	       (double)(mono_ns() - t0) / 1e6);
	CHECK_U64(gr64(&f, msi), ~0ull); /* the sync is far away */
	prev = cons(&f); /* the read runs the second slice first */
	CHECK_EQ(prev, 2 * slice);
	t0 = mono_ns();
	while ((now = cons(&f)) != bq.prod && reads < 2 * n) {
		CHECK(now - prev == slice);
		prev = now;
		reads++;
	}
	printf("# the rest took %u more reads, %.3f ms\n", reads + 1,
	       (double)(mono_ns() - t0) / 1e6);
	CHECK_EQ(now, bq.prod);
	CHECK_EQ(reads, (n + slice - 1) / slice - 3);
	CHECK_U64(gr64(&f, msi) & 0xffffffff, 0x5a5a);
	CHECK_EQ(dma(&f, 1, 0x2000), 0); /* re-routed before the MSI */
	CHECK_EQ(viommu_smmuv3_poll(f.smmu), 0);
	fx_fini(&f);
}

/*
 * A driver that waits for the CMD_SYNC MSI in memory (Linux's MSIPOLL)
 * reads no register: viommu_smmuv3_poll() drives the queue instead.
 */
TEST(cmdq_poll_hook_completes_msi_sync)
{
	struct viommu_smmuv3_config c = {
		.size = sizeof(c), .cmdq_log2 = BIG_LOG2,
	};
	const uint32_t n = 2001, slice = VIOMMU_SMMUV3_CMDQ_SLICE;
	uint64_t msi = 0x1000;
	unsigned int calls = 0;
	struct bigq bq;
	struct fx f;
	int r;

	REQUIRE(fx_init(&f, &c) == 0);
	REQUIRE(fx_reset(&f) == 0);
	REQUIRE(bigq_init(&f, &bq, true) == 0);
	gw64(&f, msi, ~0ull);
	for (uint32_t i = 0; i < n - 1; i++)
		bigq_put(&f, &bq, OP_CFGI_ALL, 31);
	bigq_put(&f, &bq, OP_SYNC | SYNC_CS_IRQ | (7ull << 32), msi);
	mw(&f, R_CMDQ_PROD, 4, bq.prod);
	while ((r = viommu_smmuv3_poll(f.smmu)) == 1 && calls < n) {
		calls++;
		CHECK_U64(gr64(&f, msi), ~0ull);
	}
	CHECK_EQ(r, 0);
	CHECK_EQ(calls, (n + slice - 1) / slice - 2);
	CHECK_U64(gr64(&f, msi) & 0xffffffff, 7);
	CHECK_EQ(cons(&f), bq.prod);
	CHECK_EQ(viommu_smmuv3_poll(NULL), -EINVAL);
	fx_fini(&f);
}

/*
 * With 4096 endpoints, each CFGI_ALL + CMD_SYNC pair re-routes all of
 * them: a slice stops after one such pass (VIOMMU_SMMUV3_CMDQ_SLICE_ROUTES)
 * instead of running 128 passes, and the pass comes before CONS passes the
 * sync (a driver polling CONS must not see the sync done first).  With the SMMU disabled routes follow
 * GBPA, so no NESTED domains are made.
 */
TEST(cmdq_reroute_work_bounded_per_slice)
{
	struct viommu_smmuv3_config c = {
		.size = sizeof(c), .cmdq_log2 = BIG_LOG2,
	};
	struct viommu_endpoint *ep;
	uint32_t id, before;
	struct bigq bq;
	struct fx f;

	REQUIRE(fx_init(&f, &c) == 0);
	for (id = FX_NEP; id < 4096; id++) {
		REQUIRE(viommu_endpoint_create(f.ctx, id, &ep) == 0);
		REQUIRE(viommu_smmuv3_add_endpoint(f.smmu, ep) == 0);
	}
	REQUIRE(bigq_init(&f, &bq, false) == 0);
	for (int i = 0; i < 10; i++) {
		bigq_put(&f, &bq, OP_CFGI_ALL, 31);
		bigq_put(&f, &bq, OP_SYNC, 0);
	}
	mw(&f, R_CMDQ_PROD, 4, bq.prod);
	/*
	 * The write's slice: CFGI_ALL, then the re-route pass the CMD_SYNC
	 * must cover, done before the sync is consumed - and the slice is
	 * spent (CONS 1).  The read's slice: that sync, the next CFGI_ALL,
	 * the next pass (CONS 3).  One pass per access from then on.
	 */
	CHECK_EQ(cons(&f), 3);
	before = cons(&f);
	CHECK_EQ(before, 5);
	while (cons(&f) != bq.prod && before < 100)
		before++;
	CHECK_EQ(cons(&f), 20);
	fx_fini(&f);
}

/*
 * CFGI_ALL drops every cached STE (by generation) and CFGI_STE only the
 * StreamID's own: the next look-ups miss exactly there.
 */
TEST(cmdq_cfgi_all_generation_drops_cached_config)
{
	struct viommu_smmuv3_stats st0, st1;
	uint64_t q[8] = { 0 };
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE(fx_reset(&f) == 0);
	q[0] = 1 | (4u << 1);
	fx_ste(&f, 0, q);
	fx_ste(&f, 1, q);
	CHECK(fx_cfgi_ste(&f, 0));
	CHECK(fx_cfgi_ste(&f, 1));
	CHECK_EQ(dma(&f, 0, 0x2000), 0);
	/* Abort both STEs; CFGI_STE for 0 only: 1 keeps its cached STE. */
	q[0] = 1;
	fx_ste(&f, 0, q);
	fx_ste(&f, 1, q);
	CHECK(fx_cfgi_ste(&f, 0));
	CHECK_EQ(dma(&f, 0, 0x2000), -EFAULT);
	CHECK_EQ(dma(&f, 1, 0x2000), 0);
	viommu_smmuv3_stats(f.smmu, &st0, sizeof(st0));
	fx_cmd(&f, OP_CFGI_ALL, 31);
	CHECK(fx_sync(&f));
	viommu_smmuv3_stats(f.smmu, &st1, sizeof(st1));
	/* The re-route after CFGI_ALL fetched every endpoint's STE again. */
	CHECK_U64(st1.cfg_misses - st0.cfg_misses, FX_NEP);
	CHECK_EQ(dma(&f, 1, 0x2000), -EFAULT);
	fx_fini(&f);
}

TEST_MAIN()
