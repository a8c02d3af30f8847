/*
 * test_faultinject.c - allocation-failure injection.  A counting allocator
 * (plugged into both the memory object and the context) fails the Nth
 * allocation.  For N = 1, 2, ... a scenario runs: memory and context,
 * endpoints, domains, a notifier, hundreds of mappings in scattered order
 * (tree splits), reserved regions, attach, PASID attach, a nested domain,
 * dirty tracking and dirty writes, unmaps, a move, teardown.  At every
 * -ENOMEM the test checks that the call changed nothing (counts as before,
 * existing mappings still translate) and retries; after teardown no
 * allocation may be live.  The loop ends at the first N the scenario
 * completes without reaching.  A second pass makes every allocation from
 * the Nth on fail and stops the scenario at the first -ENOMEM instead.
 */
#include "harness.h"
#include "core_fixture.h"

#define RW (VIOMMU_READ | VIOMMU_WRITE)
#define NP VIOMMU_NO_PASID
#define NMAP 300
#define MBASE 0x10000000ull
#define N_CAP 20000 /* safety bound on the N loop */

/* struct fi - the counting allocator's state. */
struct fi {
	long calls;   /* allocations attempted */
	long fail_at; /* 1-based; 0: never fail */
	bool sticky;  /* fail every call from fail_at on */
	long live;    /* allocations not yet freed */
	long injected;
};

#define FI_HDR 16 /* keeps malloc's alignment for max_align_t */

/* fi_alloc() - count the call; fail it if it is the chosen one. */
static void *fi_alloc(void *opaque, size_t size)
{
	struct fi *fi = opaque;
	long n = __atomic_add_fetch(&fi->calls, 1, __ATOMIC_RELAXED);
	uint8_t *p;

	if (fi->fail_at && (n == fi->fail_at ||
			    (fi->sticky && n > fi->fail_at))) {
		__atomic_add_fetch(&fi->injected, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	p = malloc(size + FI_HDR);
	if (!p)
		return NULL;
	__atomic_add_fetch(&fi->live, 1, __ATOMIC_RELAXED);
	return p + FI_HDR;
}

/* fi_free() - release a block from fi_alloc(). */
static void fi_free(void *opaque, void *ptr)
{
	struct fi *fi = opaque;

	if (!ptr)
		return;
	__atomic_sub_fetch(&fi->live, 1, __ATOMIC_RELAXED);
	free((uint8_t *)ptr - FI_HDR);
}

/* A toy stage 1 for the nested domain: ipa = iova. */
static int s1_ident(void *opaque, uint32_t pasid, uint64_t iova,
		    unsigned int access, uint64_t *ipa, uint64_t *len,
		    uint32_t *perm)
{
	(void)opaque;
	(void)pasid;
	(void)access;
	*ipa = iova;
	*len = PAGE - (iova & (PAGE - 1));
	*perm = RW;
	return 0;
}

static const struct viommu_stage1_ops s1_ops = { .translate = s1_ident };

/* struct sc - one scenario run: objects and the model of dom[0]. */
struct sc {
	struct fi fi;
	struct viommu_allocator alloc;
	uint8_t *ram;
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_endpoint *ep[3];
	struct viommu_domain *dom[2], *nested;
	struct viommu_notifier *n0, *n1;
	unsigned long map_events;
	bool present[NMAP];
	bool ep0_attached;
	unsigned long enomem; /* -ENOMEM answers seen */
};

/* map_iova() - IOVA of mapping @i: a permutation of every other page. */
static uint64_t map_iova(unsigned int i)
{
	return MBASE + ((i * 7919u) % NMAP) * 2 * PAGE;
}

/* map_gpa() - GPA of mapping @i. */
static uint64_t map_gpa(unsigned int i)
{
	return (i % 2048) * PAGE;
}

/* count_map() - notifier callback counting MAP events. */
static void count_map(void *opaque, const struct viommu_event *ev)
{
	struct sc *sc = opaque;

	if (ev->type == VIOMMU_EVENT_MAP)
		sc->map_events++;
}

/* model_count() - mappings of dom[0] the model says exist. */
static uint64_t model_count(struct sc *sc)
{
	uint64_t n = 0;

	for (unsigned int i = 0; i < NMAP; i++)
		n += sc->present[i];
	return n;
}

/*
 * verify_dom0() - dom[0] holds exactly the model's mappings and each one
 * translates (through ep[0] and its IOTLB once attached).
 */
static void verify_dom0(struct sc *sc)
{
	struct viommu_xlate x;
	struct viommu_domain_info i;

	if (!sc->dom[0])
		return;
	i = fx_info(sc->dom[0]);
	CHECK_U64(i.mappings, model_count(sc));
	CHECK_U64(i.mapped_bytes, model_count(sc) * PAGE);
	for (unsigned int k = 0; k < NMAP; k++) {
		int rc;

		if (sc->ep0_attached)
			rc = viommu_translate(sc->ep[0], NP, map_iova(k) + 8,
					      8, VIOMMU_READ, &x, NULL);
		else
			rc = viommu_domain_lookup(sc->dom[0], map_iova(k) + 8,
						  8, VIOMMU_READ, &x);
		if (!sc->present[k]) {
			CHECK_EQ(rc, -EFAULT);
			continue;
		}
		CHECK_EQ(rc, 0);
		if (!rc)
			CHECK_U64(x.gpa, map_gpa(k) + 8);
	}
}

/*
 * STEP() - run @call; on -ENOMEM run @check (the call changed nothing),
 * verify dom[0], then retry (single failure) or stop (sticky).  Any other
 * error fails the test and stops the scenario.
 */
#define STEP(sc, call, check)                                              \
	do {                                                               \
		int rc_ = (call);                                          \
		if (rc_ == -ENOMEM) {                                      \
			(sc)->enomem++;                                    \
			check;                                             \
			verify_dom0(sc);                                   \
			if ((sc)->fi.sticky)                               \
				goto teardown;                             \
			rc_ = (call);                                      \
		}                                                          \
		if (rc_) {                                                 \
			CHECK_EQ(rc_, 0);                                  \
			goto teardown;                                     \
		}                                                          \
	} while (0)

/* check_attach_unchanged() - after a failed attach of @ep/@pasid. */
static void check_attach_unchanged(struct viommu_endpoint *ep, uint32_t pasid,
				   struct viommu_domain *old,
				   struct viommu_domain *to, uint32_t old_n,
				   uint32_t to_n)
{
	CHECK(fx_ep_domain(ep, pasid) == old);
	if (old)
		CHECK_EQ(fx_info(old).endpoints, old_n);
	CHECK_EQ(fx_info(to).endpoints, to_n);
}

/* setup() - memory, context, endpoints, domains, notifier. */
static int setup(struct sc *sc)
{
	struct viommu_mem_config mc = { .allocator = sc->alloc };
	struct viommu_mem_region r = { .gpa = 0, .size = RAM_SIZE, .fd = -1,
				       .hva = sc->ram };
	struct viommu_ctx_config cc = { .allocator = sc->alloc };
	struct viommu_domain_config dc = { .kind = VIOMMU_DOMAIN_PAGING };

	STEP(sc, viommu_mem_create(&mc, &sc->mem), CHECK(sc->mem == NULL));
	STEP(sc, viommu_mem_set_regions(sc->mem, &r, 1),
	     CHECK_U64(viommu_mem_ram_size(sc->mem), 0));
	cc.mem = sc->mem;
	STEP(sc, viommu_ctx_create(&cc, &sc->ctx), CHECK(sc->ctx == NULL));
	for (uint32_t i = 0; i < 3; i++) {
		struct viommu_endpoint *got;

		STEP(sc, viommu_endpoint_create(sc->ctx, i + 1, &sc->ep[i]), {
			CHECK_EQ(viommu_endpoint_lookup(sc->ctx, i + 1, &got),
				 -ENOENT);
			CHECK_U64(fx_stats_ctx(sc->ctx).endpoints, i);
		});
	}
	for (int i = 0; i < 2; i++) {
		dc.tag = i + 1;
		STEP(sc, viommu_domain_create(sc->ctx, &dc, &sc->dom[i]),
		     CHECK_U64(fx_stats_ctx(sc->ctx).domains, i));
	}
	STEP(sc, viommu_notifier_add(sc->dom[0], VIOMMU_EVENT_MAP, count_map,
				     sc, &sc->n0), (void)0);
	return 0;
teardown:
	return -1;
}

/* map_all() - NMAP one-page mappings in scattered order, before attach. */
static int map_all(struct sc *sc)
{
	for (unsigned int i = 0; i < NMAP; i++) {
		struct viommu_domain_info before = fx_info(sc->dom[0]);
		struct viommu_xlate x;

		STEP(sc, viommu_domain_map(sc->dom[0], map_iova(i),
					   map_iova(i) + PAGE - 1, map_gpa(i),
					   RW), {
			struct viommu_domain_info now = fx_info(sc->dom[0]);

			CHECK_U64(now.mappings, before.mappings);
			CHECK_U64(now.mapped_bytes, before.mapped_bytes);
			CHECK_EQ(viommu_domain_lookup(sc->dom[0], map_iova(i),
						      1, VIOMMU_READ, &x),
				 -EFAULT);
		});
		sc->present[i] = true;
	}
	CHECK_EQ(sc->map_events, NMAP);
	verify_dom0(sc);
	return 0;
teardown:
	return -1;
}

/* attach_all() - reserved regions, RIDs, PASIDs, static domains. */
static int attach_all(struct sc *sc)
{
	struct viommu_domain *id = viommu_ctx_identity_domain(sc->ctx);
	struct viommu_domain *bl = viommu_ctx_blocked_domain(sc->ctx);
	unsigned int n0 = 0, n;

	STEP(sc, viommu_endpoint_add_resv(sc->ep[0], 0xfee00000, 0xfeefffff,
					  VIOMMU_RESV_MSI), {
		viommu_endpoint_get_resv(sc->ep[0], NULL, 0, &n);
		CHECK_EQ(n, n0);
	});
	n0 = 1;
	STEP(sc, viommu_endpoint_add_resv(sc->ep[0], 0x7f000000, 0x7f00ffff,
					  VIOMMU_RESV_RESERVED), {
		viommu_endpoint_get_resv(sc->ep[0], NULL, 0, &n);
		CHECK_EQ(n, n0);
	});
	for (int i = 0; i < 2; i++) {
		uint32_t before = fx_info(sc->dom[0]).endpoints;

		STEP(sc, viommu_endpoint_attach(sc->ep[i], NP, sc->dom[0]),
		     check_attach_unchanged(sc->ep[i], NP, NULL, sc->dom[0],
					    0, before));
		sc->ep0_attached = true;
	}
	for (uint32_t p = 1; p <= 3; p++) {
		uint32_t before = fx_info(sc->dom[1]).endpoints;

		STEP(sc, viommu_endpoint_attach(sc->ep[0], p, sc->dom[1]),
		     check_attach_unchanged(sc->ep[0], p, NULL, sc->dom[1], 0,
					    before));
	}
	/* Static domains: cannot fail, whatever the allocator says. */
	CHECK_EQ(viommu_endpoint_attach(sc->ep[2], NP, id), 0);
	CHECK_EQ(viommu_endpoint_attach(sc->ep[2], NP, bl), 0);
	CHECK_EQ(viommu_endpoint_attach(sc->ep[2], NP, id), 0);
	CHECK(fx_ep_domain(sc->ep[2], NP) == id);
	verify_dom0(sc);
	return 0;
teardown:
	return -1;
}

/* dirty_part() - enable tracking, write through DMA, read the bitmap. */
static int dirty_part(struct sc *sc)
{
	uint64_t bm[(NMAP * 2 + 63) / 64] = { 0 };
	const size_t words = sizeof(bm) / sizeof(bm[0]);
	uint8_t buf[32];
	struct viommu_xlate x;

	STEP(sc, viommu_domain_dirty_enable(sc->dom[0], true),
	     CHECK(!fx_info(sc->dom[0]).dirty_tracking));
	memset(buf, 0x5c, sizeof(buf));
	for (unsigned int i = 0; i < NMAP; i += 15) {
		CHECK_EQ(viommu_dma_write(sc->ep[0], NP, map_iova(i) + 100,
					  buf, sizeof(buf)), 0);
		CHECK_EQ(sc->ram[map_gpa(i) + 100], 0x5c);
		CHECK_EQ(viommu_translate(sc->ep[1], NP, map_iova(i + 1),
					  4, VIOMMU_WRITE, &x, NULL), 0);
	}
	STEP(sc, viommu_domain_dirty_read(sc->dom[0], MBASE,
					  MBASE + words * 64 * PAGE - 1, bm,
					  words, 0), (void)0);
	/* Every written page is reported (more is allowed: conservative). */
	for (unsigned int i = 0; i < NMAP; i += 15) {
		uint64_t p = (map_iova(i) - MBASE) / PAGE;
		uint64_t q = (map_iova(i + 1) - MBASE) / PAGE;

		CHECK(bm[p / 64] & (1ull << (p % 64)));
		CHECK(bm[q / 64] & (1ull << (q % 64)));
	}
	return 0;
teardown:
	return -1;
}

/* unmap_part() - unmap half one by one, then the rest in one call. */
static int unmap_part(struct sc *sc)
{
	uint64_t bytes = 0, left;

	for (unsigned int i = 0; i < NMAP; i += 2) {
		STEP(sc, viommu_domain_unmap(sc->dom[0], map_iova(i),
					     map_iova(i) + PAGE - 1, NULL),
		     (void)0);
		sc->present[i] = false;
	}
	verify_dom0(sc);
	left = model_count(sc);
	STEP(sc, viommu_domain_unmap(sc->dom[0], 0, UINT64_MAX, &bytes),
	     (void)0);
	CHECK_U64(bytes, left * PAGE);
	memset(sc->present, 0, sizeof(sc->present));
	verify_dom0(sc);
	return 0;
teardown:
	return -1;
}

/* nested_part() - a nested domain over dom[1], a PASID on it, a move. */
static int nested_part(struct sc *sc)
{
	struct viommu_domain_config dc = { .kind = VIOMMU_DOMAIN_NESTED,
					   .tag = 9, .parent = sc->dom[1],
					   .s1 = &s1_ops };
	uint64_t ndom = fx_stats_ctx(sc->ctx).domains;
	uint32_t before0, before1;

	STEP(sc, viommu_domain_map(sc->dom[1], 0x1000, 0x1fff, 0x3000, RW),
	     CHECK_U64(fx_info(sc->dom[1]).mappings, 0));
	STEP(sc, viommu_domain_create(sc->ctx, &dc, &sc->nested),
	     CHECK_U64(fx_stats_ctx(sc->ctx).domains, ndom));
	STEP(sc, viommu_endpoint_attach(sc->ep[1], 4, sc->nested),
	     check_attach_unchanged(sc->ep[1], 4, NULL, sc->nested, 0, 0));
	CHECK_U64(fx_gpa_of(sc->ep[1], 4, 0x1010, VIOMMU_READ), 0x3010);
	/* Move ep[1]'s RID from dom[0] to dom[1]. */
	before0 = fx_info(sc->dom[0]).endpoints;
	before1 = fx_info(sc->dom[1]).endpoints;
	STEP(sc, viommu_endpoint_attach(sc->ep[1], NP, sc->dom[1]),
	     check_attach_unchanged(sc->ep[1], NP, sc->dom[0], sc->dom[1],
				    before0, before1));
	CHECK_U64(fx_gpa_of(sc->ep[1], NP, 0x1010, VIOMMU_READ), 0x3010);
	/* A notifier left in place for ctx_destroy to free. */
	STEP(sc, viommu_notifier_add(sc->dom[1], VIOMMU_EVENT_UNMAP,
				     count_map, sc, &sc->n1), (void)0);
	viommu_notifier_remove(sc->n0);
	sc->n0 = NULL;
	return 0;
teardown:
	return -1;
}

/* run_scenario() - the whole scenario, then teardown; live must be 0. */
static void run_scenario(struct sc *sc)
{
	if (setup(sc) || map_all(sc) || attach_all(sc) || dirty_part(sc) ||
	    unmap_part(sc) || nested_part(sc))
		goto teardown;
	/* Remap after everything: the store still works. */
	STEP(sc, viommu_domain_map(sc->dom[0], map_iova(0),
				   map_iova(0) + PAGE - 1, map_gpa(0), RW),
	     (void)0);
	sc->present[0] = true;
	verify_dom0(sc);
teardown:
	viommu_ctx_destroy(sc->ctx);
	viommu_mem_destroy(sc->mem);
}

/*
 * sweep() - run the scenario failing allocation N for N = 1.. until a run
 * injects nothing.  Returns the number of runs.
 */
static long sweep(bool sticky, uint8_t *ram)
{
	unsigned long enomem = 0, silent = 0;
	long n;

	for (n = 1; n < N_CAP; n++) {
		struct sc *sc = calloc(1, sizeof(*sc));
		int before = test_failed_checks;
		bool done;

		if (!sc)
			break;
		sc->fi.fail_at = n;
		sc->fi.sticky = sticky;
		sc->alloc = (struct viommu_allocator){ fi_alloc, fi_free,
						       &sc->fi };
		sc->ram = ram;
		memset(ram, 0, RAM_SIZE);
		run_scenario(sc);
		CHECK_EQ(sc->fi.live, 0);
		enomem += sc->enomem;
		/* Failures no call reported (e.g. absorbed by translate). */
		silent += sc->fi.injected && !sc->enomem;
		done = sc->fi.injected == 0;
		if (test_failed_checks != before)
			printf("#   failures above: %s N = %ld (of %ld "
			       "allocations)\n", sticky ? "sticky" : "single",
			       n, sc->fi.calls);
		free(sc);
		if (done || test_failed_checks - before > 0)
			break;
	}
	printf("#   %s: %ld runs, %lu -ENOMEM answers, %lu runs with the "
	       "failure absorbed\n", sticky ? "sticky" : "single", n, enomem,
	       silent);
	return n;
}

TEST(fail_nth_allocation_single)
{
	uint8_t *ram = calloc(1, RAM_SIZE);
	long runs;

	REQUIRE(ram != NULL);
	runs = sweep(false, ram);
	CHECK(runs > 10);
	CHECK(runs < N_CAP);
	free(ram);
}

TEST(fail_every_allocation_from_nth)
{
	uint8_t *ram = calloc(1, RAM_SIZE);
	long runs;

	REQUIRE(ram != NULL);
	runs = sweep(true, ram);
	CHECK(runs > 10);
	CHECK(runs < N_CAP);
	free(ram);
}

TEST(no_injection_no_leak)
{
	struct sc *sc = calloc(1, sizeof(*sc));
	uint8_t *ram = calloc(1, RAM_SIZE);

	REQUIRE(sc && ram);
	sc->alloc = (struct viommu_allocator){ fi_alloc, fi_free, &sc->fi };
	sc->ram = ram;
	run_scenario(sc);
	CHECK_EQ(sc->enomem, 0);
	CHECK(sc->fi.calls > 0);
	CHECK_EQ(sc->fi.live, 0);
	free(sc);
	free(ram);
}

TEST_MAIN()
