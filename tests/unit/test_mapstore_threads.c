/*
 * test_mapstore_threads.c - the mapping store's lock-free search
 * (ms_lookup_rcu()) against a concurrent writer, for the B+tree alone and
 * with the page index beside it (src/core/mapstore.c, pageidx.c,
 * "Lock-free readers").  Split from test_mapstore.c, whose helpers it
 * repeats.  Run under ASan (a node freed too early) and TSan (a missing
 * barrier) too.
 */
#include "harness.h"
#include "core/mapstore.h"
#include "core/rcu.h"
#include "base/util.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>

#define PG 4096ull

/* ent() - an entry by value. */
static struct ms_entry ent(uint64_t start, uint64_t last, uint64_t gpa,
			   uint32_t prot)
{
	return (struct ms_entry){ .start = start, .last = last, .gpa = gpa,
				  .prot = prot };
}

static uint64_t pg(uint64_t i)
{
	return i * PG;
}

/*
 * Concurrent test: page CC_RUN * i is anchor i (never removed); the
 * CC_RUN - 1 pages after it are run i, which the writer maps page by page
 * and unmaps with one range at random, splitting, shifting, merging and
 * emptying leaves, so nodes are retired all the time.  Readers search
 * without the lock: an anchor must always be found, exactly; a run page
 * is found exactly or not at all.  Under ASan a node freed too early is a
 * use-after-free report; under TSan a missing barrier is a race report.
 */
#define CC_ANCHORS 256u
#define CC_RUN 64u
#define CC_READERS 2
#define CC_WRITES 1500u
#define CC_READ_CAP 100000000ul /* a bound; readers stop with the writer */

struct cc {
	struct mapstore ms;
	struct rcu rcu;
	pthread_mutex_t lock;
	int stop;
	uint32_t aprot; /* the anchors' prot */
	unsigned long errors, reads, again, churn_found;
	uint64_t first_bad;
};

/* cc_gpa() - the GPA page @p maps to. */
static uint64_t cc_gpa(uint64_t p)
{
	return (p * 0x10001ull) << 12 ^ 0x5a5a000ull; /* page-aligned */
}

/* cc_writer() - fill or empty random runs under the lock. */
static void *cc_writer(void *arg)
{
	struct cc *c = arg;
	uint64_t st = 0x853c49e6748fea9bull;
	bool full[CC_ANCHORS] = { false };
	struct ms_entry e;
	long want;

	for (uint32_t k = 0; k < CC_WRITES; k++) {
		uint64_t i, p0;

		st ^= st << 13;
		st ^= st >> 7;
		st ^= st << 17;
		i = st % CC_ANCHORS;
		p0 = CC_RUN * i + 1;
		pthread_mutex_lock(&c->lock);
		if (full[i]) {
			want = CC_RUN - 1;
			if (ms_remove_range(&c->ms, pg(p0),
					    pg(p0 + CC_RUN - 1) - 1, NULL, NULL,
					    NULL) != want)
				__atomic_fetch_add(&c->errors, 1,
						   __ATOMIC_RELAXED);
		} else {
			for (uint64_t p = p0; p < p0 + CC_RUN - 1; p++) {
				e = ent(pg(p), pg(p) + PG - 1, cc_gpa(p), 3);
				if (ms_insert(&c->ms, &e))
					__atomic_fetch_add(&c->errors, 1,
							   __ATOMIC_RELAXED);
			}
		}
		full[i] = !full[i];
		if (k % 256 == 0 && ms_check(&c->ms))
			__atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&c->lock);
		if (k % 4 == 0)
			sched_yield(); /* let readers overlap on one CPU too */
	}
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* cc_reader() - search random pages lock-free and judge the answers. */
static void *cc_reader(void *arg)
{
	struct cc *c = arg;
	uint64_t st = (uint64_t)(uintptr_t)&st | 1;
	unsigned long n = 0, again = 0, churn = 0;
	struct ms_entry e;

	for (; n < CC_READ_CAP && !__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE);
	     n++) {
		uint64_t p, iova;
		uint32_t tok;
		int rc;
		bool ok, anchor;

		st ^= st << 13;
		st ^= st >> 7;
		st ^= st << 17;
		p = st % (CC_RUN * CC_ANCHORS + 2);
		iova = pg(p) + (st >> 40) % PG;
		tok = rcu_read_lock(&c->rcu);
		rc = ms_lookup_rcu(&c->ms, iova, &e);
		rcu_read_unlock(&c->rcu, tok);
		if (rc == -EAGAIN) {
			again++;
			pthread_mutex_lock(&c->lock);
			rc = ms_lookup(&c->ms, iova, &e);
			pthread_mutex_unlock(&c->lock);
		}
		anchor = p % CC_RUN == 0 && p < CC_RUN * CC_ANCHORS;
		ok = rc == 0 ? e.start == pg(p) && e.last == pg(p) + PG - 1 &&
				       e.gpa == cc_gpa(p) &&
				       e.prot == (anchor ? c->aprot : 3u) &&
				       p < CC_RUN * CC_ANCHORS
			     : rc == -ENOENT && !anchor;
		churn += rc == 0 && !anchor;
		if (!ok && !__atomic_fetch_add(&c->errors, 1,
					       __ATOMIC_RELAXED))
			c->first_bad = iova;
	}
	__atomic_fetch_add(&c->reads, n, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->again, again, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->churn_found, churn, __ATOMIC_RELAXED);
	return NULL;
}

/*
 * cc_run() - see "Concurrent test" above; with @index, the runs' pages go
 * to the page index and the anchors (prot beyond what an index word
 * holds) to the B+tree, so the index's leaves empty and are unlinked and
 * retired while readers search both structures.
 */
static void cc_run(bool index)
{
	struct cc *c = calloc(1, sizeof(*c));
	pthread_t w, rd[CC_READERS];
	struct ms_entry e;

	REQUIRE(c != NULL);
	rcu_init(&c->rcu);
	pthread_mutex_init(&c->lock, NULL);
	if (index)
		ms_init(&c->ms, NULL, &c->rcu);
	else
		ms_init_tree_only(&c->ms, NULL, &c->rcu);
	c->aprot = index ? 1u | 1u << 12 : 1u;
	for (uint64_t i = 0; i < CC_ANCHORS; i++) {
		e = ent(pg(CC_RUN * i), pg(CC_RUN * i) + PG - 1,
			cc_gpa(CC_RUN * i), c->aprot);
		REQUIRE(ms_insert(&c->ms, &e) == 0);
	}
	for (int i = 0; i < CC_READERS; i++)
		REQUIRE(pthread_create(&rd[i], NULL, cc_reader, c) == 0);
	REQUIRE(pthread_create(&w, NULL, cc_writer, c) == 0);
	pthread_join(w, NULL);
	for (int i = 0; i < CC_READERS; i++)
		pthread_join(rd[i], NULL);
	printf("#   reads %lu, churn pages found %lu, fell back to the lock "
	       "%lu\n", c->reads, c->churn_found, c->again);
	if (c->errors)
		printf("#   %lu errors, first at iova 0x%llx\n", c->errors,
		       (unsigned long long)c->first_bad);
	CHECK_EQ(c->errors, 0);
	CHECK(c->reads > 0);
	printf("#   index %llu, tree %llu\n", (unsigned long long)c->ms.pi.count, (unsigned long long)c->ms.bt.count);
	CHECK(!index || (c->ms.pi.count > 0 && c->ms.bt.count == CC_ANCHORS));
	CHECK_EQ(ms_check(&c->ms), 0);
	ms_destroy(&c->ms);
	CHECK_U64(c->ms.host_bytes, 0);
	pthread_mutex_destroy(&c->lock);
	rcu_fini(&c->rcu);
	free(c);
}

/* lockfree_readers_against_writer - the B+tree alone. */
TEST(lockfree_readers_against_writer)
{
	cc_run(false);
}

/* lockfree_readers_against_writer_index - the page index beside it. */
TEST(lockfree_readers_against_writer_index)
{
	cc_run(true);
}

TEST_MAIN()
