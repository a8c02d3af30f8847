/*
 * test_trace_core.c - the translation core's typed trace points (part of
 * the test_trace program): map, unmap, invalidate, attach and detach,
 * notifier calls, dirty tracking, an IOTLB miss and a fault, each with
 * its fields; none once the sink is off.  Also measures (prints, never
 * asserts) what an event costs when it is off: an emitter in a loop, and
 * map+unmap pairs with the sink off against a sink that counts.
 */
#include <pthread.h>
#include <time.h>

#include "harness.h"
#include "base/trace.h"
#include "trace_recs.h"
#include "core_fixture.h"

static void count_fn(void *opaque, const struct viommu_trace_record *rec)
{
	(void)rec;
	(*(uint64_t *)opaque)++;
}

static void note_fn(void *opaque, const struct viommu_event *ev)
{
	(void)ev;
	(*(int *)opaque)++;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * A sink change racing emitters: each event reaches a function together
 * with that function's own opaque, never the other sink's (the set is
 * published under a sequence count).
 */
static int tag_a, tag_b;
static uint64_t good_a, good_b, mixed;

static void fn_a(void *opaque, const struct viommu_trace_record *rec)
{
	(void)rec;
	if (opaque == &tag_a)
		__atomic_fetch_add(&good_a, 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&mixed, 1, __ATOMIC_RELAXED);
}

static void fn_b(void *opaque, const struct viommu_trace_record *rec)
{
	(void)rec;
	if (opaque == &tag_b)
		__atomic_fetch_add(&good_b, 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&mixed, 1, __ATOMIC_RELAXED);
}

struct flipper {
	struct trace *t;
	int stop;
	uint64_t flips;
};

static void *flip(void *arg)
{
	struct flipper *fl = arg;
	struct viommu_trace_sink a = { .size = sizeof(a), .fn = fn_a,
				       .opaque = &tag_a,
				       .mask = VIOMMU_TRACE_ALL };
	struct viommu_trace_sink b = a;

	b.fn = fn_b;
	b.opaque = &tag_b;
	for (unsigned int i = 0; !__atomic_load_n(&fl->stop, __ATOMIC_RELAXED);
	     i++) {
		trace_set(fl->t, NULL, (i & 1) ? &b : &a);
		__atomic_fetch_add(&fl->flips, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

TEST(sink_change_never_mixes_pairs)
{
	struct trace t = { 0 };
	struct flipper fl = { .t = &t };
	pthread_t th;

	/* on from the start, so events flow whatever the scheduling */
	REQUIRE(trace_set(&t, NULL, &(struct viommu_trace_sink){
				  .size = sizeof(struct viommu_trace_sink),
				  .fn = fn_a, .opaque = &tag_a,
				  .mask = VIOMMU_TRACE_ALL }) == 0);
	REQUIRE(pthread_create(&th, NULL, flip, &fl) == 0);
	/* at least 2M events and 20,000 changes (bounded: 200M events) */
	for (uint64_t i = 0; i < 200000000; i++) {
		trace_core_map(&t, 1, i, i + 0xfff, i, 3, 0);
		if (i >= 2000000 &&
		    __atomic_load_n(&fl.flips, __ATOMIC_RELAXED) >= 20000)
			break;
	}
	__atomic_store_n(&fl.stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	printf("# %llu sink changes; %llu events to a, %llu to b, %llu "
	       "mixed\n", (unsigned long long)fl.flips,
	       (unsigned long long)good_a, (unsigned long long)good_b,
	       (unsigned long long)mixed);
	CHECK_EQ(mixed, 0);
	CHECK(good_a + good_b > 0);
}

TEST(core_events_and_fields)
{
	struct recs rs;
	struct viommu_trace_sink s = {
		.size = sizeof(s), .mask = VIOMMU_TRACE_ALL, .fn = rec_fn,
		.opaque = &rs,
	};
	struct viommu_trace_record r;
	struct viommu_notifier *nt = NULL;
	struct viommu_xlate x;
	uint64_t unmapped = 0, bitmap[1];
	int notes = 0, n;
	struct env e;

	recs_init(&rs);
	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_ctx_set_trace_sink(NULL, &s), -EINVAL);
	s.mask = 1ull << VIOMMU_TRACE_COUNT;
	CHECK_EQ(viommu_ctx_set_trace_sink(e.f.ctx, &s), -EINVAL);
	s.mask = VIOMMU_TRACE_ALL;
	REQUIRE(viommu_ctx_set_trace_sink(e.f.ctx, &s) == 0);

	/* map: domain tag, range, gpa, prot, error */
	CHECK_EQ(viommu_domain_map(e.dom, 0x10000, 0x10fff, 0x200000,
				   VIOMMU_READ | VIOMMU_WRITE), 0);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_CORE_MAP, 0, &r));
	CHECK_STR(r.event, "core_map");
	CHECK_EQ(r.nfields, 6);
	CHECK_U64(r.values[0], 10);
	CHECK_U64(r.values[1], 0x10000);
	CHECK_U64(r.values[2], 0x10fff);
	CHECK_U64(r.values[3], 0x200000);
	CHECK_U64(r.values[4], VIOMMU_READ | VIOMMU_WRITE);
	CHECK_U64(r.values[5], 0);
	/* a refused map is traced with its errno */
	CHECK(viommu_domain_map(e.dom, 0x10000, 0x10fff, 0x300000,
				VIOMMU_READ) < 0);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_CORE_MAP, 1, &r));
	CHECK((int64_t)r.values[5] < 0);

	/* a translation: an IOTLB miss first */
	CHECK_EQ(viommu_translate(e.ep, VIOMMU_NO_PASID, 0x10010, 4,
				  VIOMMU_READ, &x, NULL), 0);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_CORE_MISS, 0, &r));
	CHECK_U64(r.values[0], 1);
	CHECK_U64(r.values[1], VIOMMU_NO_PASID);
	CHECK_U64(r.values[2], 0x10010);
	CHECK_U64(r.values[3], VIOMMU_READ);

	/* unmap with a notifier: the notifier call, then the unmap */
	REQUIRE(viommu_notifier_add(e.dom, VIOMMU_EVENT_UNMAP, note_fn, &notes,
				    &nt) == 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x10000, 0x10fff, &unmapped), 0);
	CHECK_EQ(notes, 1);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_CORE_NOTIFY, 0, &r));
	CHECK_U64(r.values[0], 10);
	CHECK_U64(r.values[1], VIOMMU_EVENT_UNMAP);
	CHECK_U64(r.values[2], 0x10000);
	CHECK_U64(r.values[4], 1);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_CORE_UNMAP, 0, &r));
	CHECK_U64(r.values[3], 0x1000);
	CHECK_U64(r.values[4], 0);
	viommu_notifier_remove(nt);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x10000, 0x10fff, NULL), -ENOENT);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_CORE_UNMAP, 1, &r));
	CHECK_U64(r.values[4], (uint64_t)(int64_t)-ENOENT);

	/* the DMA after the unmap: a fault, delivered to the handler */
	CHECK_EQ(viommu_translate(e.ep, VIOMMU_NO_PASID, 0x10010, 4,
				  VIOMMU_WRITE, &x, NULL), -EFAULT);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_CORE_FAULT, 0, &r));
	CHECK_U64(r.values[0], VIOMMU_FAULT_NO_MAPPING);
	CHECK_U64(r.values[1], VIOMMU_WRITE);
	CHECK_U64(r.values[2], 1);
	CHECK_U64(r.values[4], 0x10010);
	CHECK_U64(r.values[5], 1);
	CHECK_EQ(fx_faults(&e.f), 1);

	/* invalidate, dirty tracking */
	CHECK_EQ(viommu_domain_invalidate(e.dom, 0x4000, 0x7fff), 0);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_CORE_INVAL, 0, &r));
	CHECK_U64(r.values[0], 10);
	CHECK_U64(r.values[1], 0x4000);
	CHECK_U64(r.values[2], 0x7fff);
	CHECK_EQ(viommu_domain_dirty_enable(e.dom, true), 0);
	CHECK_EQ(viommu_domain_dirty_read(e.dom, 0, 0x3fff, bitmap, 1, 0), 0);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_CORE_DIRTY, 0, &r));
	CHECK_U64(r.values[1], 1);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_CORE_DIRTY, 1, &r));
	CHECK_U64(r.values[1], 2);
	CHECK_U64(r.values[3], 0x3fff);
	CHECK_U64(r.values[4], 0);

	/* detach, then attach again */
	CHECK_EQ(viommu_endpoint_detach(e.ep, VIOMMU_NO_PASID), 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, VIOMMU_NO_PASID, e.dom), 0);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_CORE_ATTACH, 0, &r));
	CHECK_U64(r.values[0], 1);
	CHECK_U64(r.values[2], 10);
	CHECK_U64(r.values[3], 0);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_CORE_ATTACH, 1, &r));
	CHECK_U64(r.values[3], 1);

	/* off: nothing more */
	CHECK_EQ(viommu_ctx_set_trace_sink(e.f.ctx, NULL), 0);
	n = recs_count(&rs);
	CHECK_EQ(viommu_domain_map(e.dom, 0x20000, 0x20fff, 0x200000,
				   VIOMMU_READ), 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x20000, 0x20fff, NULL), 0);
	CHECK_EQ(recs_count(&rs), n);
	fx_fini(&e.f);
}

/*
 * What "off" costs: printed, not asserted (timings vary with the
 * machine).  An off emitter is one relaxed load and a not-taken branch.
 */
TEST(core_off_cost_measured)
{
	enum { LOOPS = 4000000, PAIRS = 20000 };
	struct trace t = { 0 };
	struct viommu_trace_sink s = {
		.size = sizeof(s), .fn = count_fn,
	};
	uint64_t t0, t1, count = 0, off_ns = 0, on_ns = 0, none_ns;
	volatile uint64_t sink = 0;
	struct env e;

	/* the emitter alone, off, against the same loop without it */
	t0 = now_ns();
	for (uint64_t i = 0; i < LOOPS; i++)
		sink += i;
	none_ns = now_ns() - t0;
	t0 = now_ns();
	for (uint64_t i = 0; i < LOOPS; i++) {
		trace_core_map(&t, 1, i, i + 0xfff, i, 3, 0);
		sink += i;
	}
	t1 = now_ns();
	printf("# off emitter: %.2f ns per event site (loop alone %.2f ns)\n",
	       (double)(t1 - t0) / LOOPS, (double)none_ns / LOOPS);
	(void)sink; /* only there to keep the loops */

	/* map+unmap pairs: sink off, then a sink that counts every event */
	REQUIRE(env_init(&e, NULL) == 0);
	for (int pass = 0; pass < 2; pass++) {
		s.mask = pass ? VIOMMU_TRACE_ALL : 0;
		s.opaque = &count;
		REQUIRE(viommu_ctx_set_trace_sink(e.f.ctx, &s) == 0);
		t0 = now_ns();
		for (uint64_t i = 0; i < PAIRS; i++) {
			uint64_t iova = 0x100000 + (i % 256) * PAGE;

			if (viommu_domain_map(e.dom, iova, iova + PAGE - 1,
					      0x200000, VIOMMU_READ) ||
			    viommu_domain_unmap(e.dom, iova, iova + PAGE - 1,
						NULL))
				break;
		}
		t1 = now_ns();
		if (pass)
			on_ns = t1 - t0;
		else
			off_ns = t1 - t0;
	}
	printf("# map+unmap pair: %.1f ns with tracing off, %.1f ns with a "
	       "counting sink (%llu events)\n", (double)off_ns / PAIRS,
	       (double)on_ns / PAIRS, (unsigned long long)count);
	CHECK_EQ(count, 2 * PAIRS);
	fx_fini(&e.f);
}
