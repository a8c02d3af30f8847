/*
 * test_frontends.c - front ends sharing one context, and the context's
 * fault handler as they use it: virtio-iommu chains to the embedder's
 * handler (the embedder still sees every fault) and gives it back on
 * destroy; virtio-iommu and SMMUv3 run on one context at once, each
 * translating its own endpoints; a handler is published as one (function,
 * opaque) pair and, once the setter returns, the old one is never called
 * again even while faults race the change.
 */
#include <pthread.h>
#include <time.h>
#include <sched.h>

#include "harness.h"
#include "test_smmuv3_fixture.h"
#include "../conformance/test_virtio_iommu_fixture.h"

struct seen {
	int magic;
	int faults;
	uint32_t last_ep;
	int retired;   /* set once the setter replacing this handler returned */
	int late;      /* calls after that: must stay 0 */
	int mixed;     /* called with another handler's opaque: must stay 0 */
};

#define MAGIC_A 0x41
#define MAGIC_B 0x42

static void on_fault_a(void *opaque, const struct viommu_fault *f)
{
	struct seen *s = opaque;

	if (s->magic != MAGIC_A)
		__atomic_fetch_add(&s->mixed, 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&s->retired, __ATOMIC_ACQUIRE))
		__atomic_fetch_add(&s->late, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->faults, 1, __ATOMIC_RELAXED);
	s->last_ep = f->endpoint;
}

static void on_fault_b(void *opaque, const struct viommu_fault *f)
{
	struct seen *s = opaque;

	(void)f;
	if (s->magic != MAGIC_B)
		__atomic_fetch_add(&s->mixed, 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&s->retired, __ATOMIC_ACQUIRE))
		__atomic_fetch_add(&s->late, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->faults, 1, __ATOMIC_RELAXED);
}

/* virtio-iommu chains to the embedder's handler and restores it. */
TEST(virtio_iommu_chains_the_embedders_handler)
{
	struct seen a = { .magic = MAGIC_A };
	struct vfx_opts o = { .fault = on_fault_a, .fault_opaque = &a };
	void (*fn)(void *, const struct viommu_fault *) = NULL;
	struct refdrv_fault ev[4];
	void *op = NULL;
	uint8_t b[4];
	struct vfx f;

	REQUIRE(vfx_init(&f, &o) == 0);
	CHECK_EQ(viommu_ctx_fault_handler(NULL, &fn, &op), -EINVAL);
	CHECK_EQ(viommu_ctx_fault_handler(f.ctx, &fn, &op), 0);
	CHECK(fn != on_fault_a);               /* the device is installed */
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), VIOMMU_VI_S_OK);
	CHECK_EQ(viommu_dma_read(f.ep8, VIOMMU_NO_PASID, 0x10000, b, 4),
		 -EFAULT);
	/* the guest got its report, and the embedder saw the fault too */
	CHECK_EQ(vfx_events(&f, ev, 4), 1);
	CHECK_EQ(a.faults, 1);
	CHECK_EQ(a.last_ep, 8);
	vfx_fini(&f); /* destroys the device, then the context */
	CHECK_EQ(a.late + a.mixed, 0);
}

/* The handler comes back when the device goes. */
TEST(virtio_iommu_destroy_restores_the_handler)
{
	struct viommu_mem_region r = { .gpa = 0, .size = 1 << 20, .fd = -1 };
	struct seen a = { .magic = MAGIC_A };
	struct viommu_ctx_config cc = {
		.size = sizeof(cc), .fault = on_fault_a, .fault_opaque = &a,
	};
	struct viommu_virtio_iommu_config vc = { .size = sizeof(vc) };
	void (*fn)(void *, const struct viommu_fault *) = NULL;
	struct viommu_virtio_iommu *vi = NULL;
	struct viommu_endpoint *ep = NULL;
	struct viommu_ctx *ctx = NULL;
	struct viommu_mem *mem = NULL, *other = NULL;
	void *op = NULL;
	uint8_t b[4];

	r.hva = calloc(1, 1 << 20);
	REQUIRE(r.hva && !viommu_mem_create(NULL, &mem) &&
		!viommu_mem_set_regions(mem, &r, 1) &&
		!viommu_mem_create(NULL, &other));
	cc.mem = mem;
	REQUIRE(viommu_ctx_create(&cc, &ctx) == 0);
	REQUIRE(viommu_endpoint_create(ctx, 8, &ep) == 0);
	vc.ctx = ctx;
	vc.mem = other; /* not the context's memory: refused */
	CHECK_EQ(viommu_virtio_iommu_create(&vc, &vi), -EINVAL);
	vc.mem = mem;
	REQUIRE(viommu_virtio_iommu_create(&vc, &vi) == 0);
	CHECK_EQ(viommu_dma_read(ep, VIOMMU_NO_PASID, 0x1000, b, 4), -EFAULT);
	CHECK_EQ(a.faults, 1); /* chained */
	viommu_virtio_iommu_destroy(vi);
	CHECK_EQ(viommu_ctx_fault_handler(ctx, &fn, &op), 0);
	CHECK(fn == on_fault_a && op == &a);
	CHECK_EQ(viommu_dma_read(ep, VIOMMU_NO_PASID, 0x1000, b, 4), -EFAULT);
	CHECK_EQ(a.faults, 2);
	viommu_ctx_destroy(ctx);
	viommu_mem_destroy(other);
	viommu_mem_destroy(mem);
	free(r.hva);
}

/* virtio-iommu and SMMUv3 on one context, each with its endpoints. */
TEST(virtio_iommu_and_smmuv3_share_a_context)
{
	struct viommu_smmuv3_config sc = { .size = sizeof(sc) };
	struct viommu_smmuv3 *smmu = NULL;
	struct viommu_endpoint *sep = NULL;
	struct viommu_xlate x;
	uint32_t v = 0x5a5a5a5a, got = 0;
	struct vfx f;

	REQUIRE(vfx_init(&f, NULL) == 0);
	sc.ctx = f.ctx;
	sc.mem = f.mem;
	REQUIRE(viommu_smmuv3_create(&sc, &smmu) == 0);
	REQUIRE(viommu_endpoint_create(f.ctx, 0x20, &sep) == 0);
	REQUIRE(viommu_smmuv3_add_endpoint(smmu, sep) == 0);
	/* virtio-iommu translates endpoint 8 through its domain ... */
	CHECK_EQ(vfx_attach(&f, 1, 8, 0), VIOMMU_VI_S_OK);
	CHECK_EQ(vfx_map(&f, 1, 0x40000, 0x40fff, 0x300000,
			 VIOMMU_READ | VIOMMU_WRITE), VIOMMU_VI_S_OK);
	CHECK_EQ(viommu_dma_write(f.ep8, VIOMMU_NO_PASID, 0x40010, &v, 4), 0);
	CHECK(!memcmp(f.ram + 0x300010, &v, 4));
	/* ... while the SMMU, reset with GBPA.ABORT clear, lets 0x20 bypass */
	CHECK_EQ(viommu_translate(sep, VIOMMU_NO_PASID, 0x300010, 4,
				  VIOMMU_READ, &x, NULL), 0);
	CHECK_U64(x.gpa, 0x300010);
	CHECK_EQ(viommu_dma_read(sep, VIOMMU_NO_PASID, 0x300010, &got, 4), 0);
	CHECK_EQ(got, v);
	/* GBPA.ABORT (with UPDATE): the SMMU's endpoint is blocked, the
	 * virtio-iommu's is not */
	CHECK_EQ(viommu_smmuv3_mmio_write(smmu, 0x44, 4,
					  (1u << 31) | (1u << 20)), 0);
	CHECK_EQ(viommu_dma_read(sep, VIOMMU_NO_PASID, 0x300010, &got, 4),
		 -EFAULT);
	CHECK_EQ(viommu_dma_read(f.ep8, VIOMMU_NO_PASID, 0x40010, &got, 4), 0);
	viommu_smmuv3_remove_endpoint(smmu, sep);
	viommu_smmuv3_destroy(smmu);
	viommu_endpoint_destroy(sep);
	vfx_fini(&f);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct race {
	struct viommu_ctx *ctx;
	struct viommu_endpoint *ep;
	int stop;
	long faults;
};

static void *faulter(void *o)
{
	struct race *r = o;
	uint8_t b;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		(void)viommu_dma_read(r->ep, VIOMMU_NO_PASID, 0x1000, &b, 1);
		r->faults++;
	}
	return NULL;
}

/*
 * Two threads fault while the handler flips between two pairs: never a
 * mix, never a call to a pair after the setter that replaced it returned.
 */
TEST(handler_pairs_never_mix_or_outlive_their_setter)
{
	struct viommu_mem_region reg = { .gpa = 0, .size = 1 << 20, .fd = -1 };
	struct viommu_ctx_config cc = { .size = sizeof(cc) };
	struct seen s[2] = { { .magic = MAGIC_A }, { .magic = MAGIC_B } };
	struct race r = { 0 };
	struct viommu_mem *mem = NULL;
	pthread_t th[2];
	int late = 0, mixed = 0;

	reg.hva = calloc(1, 1 << 20);
	REQUIRE(reg.hva && !viommu_mem_create(NULL, &mem) &&
		!viommu_mem_set_regions(mem, &reg, 1));
	cc.mem = mem;
	REQUIRE(viommu_ctx_create(&cc, &r.ctx) == 0);
	REQUIRE(viommu_endpoint_create(r.ctx, 8, &r.ep) == 0);
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&th[i], NULL, faulter, &r) == 0);
	/*
	 * At least 4000 changes, and on until the faulting threads have
	 * delivered some faults during them (on a loaded machine they may
	 * not have run yet); bounded at 10 s.
	 */
	uint64_t t_end = now_ns() + 10000000000ull;

	for (int i = 0; i < 4000 ||
	     (__atomic_load_n(&s[0].faults, __ATOMIC_RELAXED) +
	      __atomic_load_n(&s[1].faults, __ATOMIC_RELAXED) < 100 &&
	      now_ns() < t_end); i++) {
		int k = i & 1;

		__atomic_store_n(&s[k].retired, 0, __ATOMIC_RELEASE);
		viommu_ctx_set_fault_handler(r.ctx, k ? on_fault_b : on_fault_a,
					     &s[k]);
		/* the other pair is gone: no call to it may start or run */
		__atomic_store_n(&s[!k].retired, 1, __ATOMIC_RELEASE);
		if (!(i & 63))
			sched_yield();
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++) {
		late += s[i].late;
		mixed += s[i].mixed;
	}
	CHECK_EQ(mixed, 0);
	CHECK_EQ(late, 0);
	CHECK(s[0].faults + s[1].faults > 0);
	viommu_ctx_destroy(r.ctx);
	viommu_mem_destroy(mem);
	free(reg.hva);
}

TEST_MAIN()
