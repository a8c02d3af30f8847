/*
 * test_core_threads.c - the core under concurrency: threads translate in
 * a loop while another thread maps, unmaps, remaps, invalidates, attaches
 * and detaches.  Every result is checked against what the changing thread
 * has published: the changer stores its progress in an atomic sequence
 * before and after each call, and a reader that loaded the sequence before
 * translating knows which results are possible.  In particular a translate
 * that starts after unmap returned must never yield the old GPA, and a
 * mapping that stayed in place for the whole translate must be found.
 *
 * Iteration counts are bounded (each test finishes in well under a second
 * on an ordinary machine); there are no timing assertions.  Worker threads
 * never use CHECK (it is not thread-safe): they count errors and record the
 * first one, and the main thread checks after joining.
 */
#include <sched.h>
#include <stdarg.h>

#include "harness.h"
#include "core_fixture.h"

#define RW (VIOMMU_READ | VIOMMU_WRITE)
#define NP VIOMMU_NO_PASID
#define NREADERS 3
#define READER_CAP 2000000 /* upper bound of reader iterations */

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define INC(x) __atomic_fetch_add(&(x), 1, __ATOMIC_RELAXED)

/* rnd() - xorshift64. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Shared error record for a test. */
struct errs {
	unsigned long count;
	pthread_mutex_t lock;
	char first[256];
};

/* err_note() - count an error and keep the first message. */
static void err_note(struct errs *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void err_note(struct errs *e, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&e->lock);
	if (e->count++ == 0) {
		va_start(ap, fmt);
		vsnprintf(e->first, sizeof(e->first), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&e->lock);
}

/* err_report() - print the first error (if any); returns the count. */
static unsigned long err_report(struct errs *e)
{
	if (e->count)
		printf("#   %lu errors, first: %s\n", e->count, e->first);
	return e->count;
}

/*
 * struct pace - keeps the changing thread and the readers in step, so
 * their work overlaps whatever the scheduler does: before each change the
 * changer waits until some reader finished a call since its last change
 * (or every reader has left), and a reader does at most PACE_RATIO calls
 * per change.  A handshake, not a timing assumption.
 */
#define PACE_RATIO 16
struct pace {
	unsigned long reads;   /* reader calls, all readers */
	unsigned long changes; /* changer steps */
	int alive;             /* readers still running */
	int done;              /* changer finished */
};

/* pace_read() - a reader finished one call (*@mine counts its own). */
static void pace_read(struct pace *p, unsigned long *mine)
{
	INC(p->reads);
	(*mine)++;
	while (*mine > (LOAD(p->changes) + 1) * PACE_RATIO && !LOAD(p->done))
		sched_yield();
}

/* pace_finish() - the changer has no more steps. */
static void pace_finish(struct pace *p)
{
	STORE(p->done, 1);
}

/* pace_leave() - a reader is done. */
static void pace_leave(struct pace *p)
{
	__atomic_fetch_sub(&p->alive, 1, __ATOMIC_RELEASE);
}

/* pace_wait() - the changer waits for reader progress past *@last. */
static void pace_wait(struct pace *p, unsigned long *last)
{
	while (LOAD(p->reads) == *last && LOAD(p->alive) > 0)
		sched_yield();
	*last = LOAD(p->reads);
	INC(p->changes);
}

/* ------------------------------------------------------------------ */
/* Map / unmap / remap while translating                              */

#define NSLOT 16
#define SBASE 0x80000000ull
#define MAP_ITERS 12000

/*
 * Slot s is the page SBASE + s * PAGE.  Generation h of slot s maps it to
 * slot_gpa(s, h): RAM0 for even h, RAM1 for odd h, at a 64 KiB step of
 * (h / 2) % 256, plus s pages.  A GPA therefore tells h modulo 512.
 *
 * seq[s] = 4 * g + phase, phase 0: gen g mapped; 1: unmap of g running;
 * 2: unmap of g returned; 3: map of g + 1 running.
 */
struct mapper_test {
	struct fx f;
	struct viommu_domain *dom;
	struct viommu_endpoint *ep[2];
	uint64_t seq[NSLOT];
	int stop;
	unsigned long reads, hits, faults, inconclusive;
	pthread_barrier_t start;
	struct pace pace;
	struct errs err;
};

/* slot_gpa() - the GPA generation @h of slot @s maps to. */
static uint64_t slot_gpa(unsigned int s, uint64_t h)
{
	return (h & 1 ? RAM1_GPA : RAM0_GPA) + ((h >> 1) % 256) * 0x10000 +
	       s * PAGE;
}

/* slot_code() - h mod 512 from a page GPA of slot @s; -1 if not one. */
static int slot_code(unsigned int s, uint64_t gpa)
{
	uint64_t off;
	int odd;

	if (gpa - RAM0_GPA < RAM_SIZE) {
		off = gpa - RAM0_GPA;
		odd = 0;
	} else if (gpa - RAM1_GPA < RAM_SIZE) {
		off = gpa - RAM1_GPA;
		odd = 1;
	} else {
		return -1;
	}
	if ((off & (PAGE - 1)) || ((off >> 12) & 0xf) != s)
		return -1;
	return (int)((off >> 16) * 2 + odd);
}

/* mapper_fn() - unmap and remap every slot in turn, publishing seq. */
static void *mapper_fn(void *arg)
{
	struct mapper_test *t = arg;
	uint64_t gen[NSLOT] = { 0 };
	unsigned long last = 0;
	int rc;

	pthread_barrier_wait(&t->start);
	for (unsigned int it = 0; it < MAP_ITERS; it++) {
		unsigned int s = it % NSLOT;
		uint64_t g = gen[s], iova = SBASE + s * PAGE;

		pace_wait(&t->pace, &last);
		STORE(t->seq[s], 4 * g + 1);
		rc = viommu_domain_unmap(t->dom, iova, iova + PAGE - 1, NULL);
		if (rc)
			err_note(&t->err, "unmap slot %u: %d", s, rc);
		STORE(t->seq[s], 4 * g + 2);
		if (it % 97 == 0)
			viommu_domain_invalidate(t->dom, SBASE,
						 SBASE + NSLOT * PAGE - 1);
		if (it % 251 == 0)
			viommu_ctx_invalidate_all(t->f.ctx);
		/* Let the readers see the unmapped window too. */
		pace_wait(&t->pace, &last);
		STORE(t->seq[s], 4 * g + 3);
		rc = viommu_domain_map(t->dom, iova, iova + PAGE - 1,
				       slot_gpa(s, g + 1), RW);
		if (rc)
			err_note(&t->err, "map slot %u: %d", s, rc);
		gen[s] = g + 1;
		STORE(t->seq[s], 4 * (g + 1));
	}
	STORE(t->stop, 1);
	pace_finish(&t->pace);
	return NULL;
}

/* check_hit() - judge a successful translation of slot @s. */
static void check_hit(struct mapper_test *t, unsigned int s, uint64_t off,
		      size_t want, const struct viommu_xlate *x, uint64_t v1,
		      uint64_t v2)
{
	uint64_t lo = v1 / 4 + (v1 % 4 >= 2), hi = v2 / 4 + (v2 % 4 == 3);
	uint64_t page = x->gpa - off, h;
	int code = slot_code(s, page);

	if (code < 0) {
		err_note(&t->err, "slot %u: foreign GPA 0x%llx", s,
			 (unsigned long long)x->gpa);
		return;
	}
	if (x->hva != (uint8_t *)fx_hva(&t->f, page) + off ||
	    x->len != (want < PAGE - off ? want : PAGE - off)) {
		err_note(&t->err, "slot %u: hva/len wrong for GPA 0x%llx",
			 s, (unsigned long long)x->gpa);
		return;
	}
	if (hi < lo) {
		err_note(&t->err, "slot %u: hit while unmapped (seq %llu)", s,
			 (unsigned long long)v1);
		return;
	}
	if (hi - lo >= 512) {
		INC(t->inconclusive);
		return;
	}
	for (h = lo; h <= hi; h++)
		if ((int)(h % 512) == code)
			return;
	err_note(&t->err, "slot %u: stale GPA 0x%llx (gen mod 512 = %d, "
		 "allowed gens %llu..%llu)", s, (unsigned long long)x->gpa,
		 code, (unsigned long long)lo, (unsigned long long)hi);
}

/* map_reader_fn() - translate random slots and judge each result. */
static void *map_reader_fn(void *arg)
{
	struct mapper_test *t = ((void **)arg)[0];
	uintptr_t idx = (uintptr_t)((void **)arg)[1];
	struct viommu_endpoint *ep = t->ep[idx % 2];
	uint64_t rs = 0x9e3779b97f4a7c15ull * (idx + 1);
	unsigned long mine = 0;
	struct viommu_fault flt;
	struct viommu_xlate x;

	pthread_barrier_wait(&t->start);
	for (unsigned long i = 0; i < READER_CAP && !LOAD(t->stop); i++) {
		unsigned int s = rnd(&rs) % NSLOT;
		uint64_t off = rnd(&rs) % PAGE, v1, v2;
		size_t want = 1 + rnd(&rs) % (2 * PAGE);
		unsigned int acc = rnd(&rs) & 1 ? VIOMMU_READ : VIOMMU_WRITE;
		int rc;

		v1 = LOAD(t->seq[s]);
		rc = viommu_translate(ep, NP, SBASE + s * PAGE + off, want,
				      acc, &x, &flt);
		v2 = LOAD(t->seq[s]);
		INC(t->reads);
		pace_read(&t->pace, &mine);
		if (rc == 0) {
			INC(t->hits);
			check_hit(t, s, off, want, &x, v1, v2);
		} else if (rc != -EFAULT ||
			   flt.reason != VIOMMU_FAULT_NO_MAPPING) {
			err_note(&t->err, "slot %u: rc %d reason %u", s, rc,
				 flt.reason);
		} else {
			INC(t->faults);
			if (v1 == v2 && v1 % 4 == 0)
				err_note(&t->err, "slot %u: fault while mapped "
					 "(seq %llu)", s,
					 (unsigned long long)v1);
		}
	}
	pace_leave(&t->pace);
	return NULL;
}

TEST(translate_during_map_unmap_remap_never_stale)
{
	pthread_t mapper, readers[NREADERS];
	void *args[NREADERS][2];
	struct mapper_test *t = calloc(1, sizeof(*t));

	REQUIRE(t != NULL);
	REQUIRE(fx_init(&t->f, NULL) == 0);
	pthread_mutex_init(&t->err.lock, NULL);
	REQUIRE((t->dom = fx_paging(&t->f, 1)) != NULL);
	REQUIRE((t->ep[0] = fx_ep(&t->f, 1)) && (t->ep[1] = fx_ep(&t->f, 2)));
	REQUIRE(viommu_endpoint_attach(t->ep[0], NP, t->dom) == 0);
	REQUIRE(viommu_endpoint_attach(t->ep[1], NP, t->dom) == 0);
	for (unsigned int s = 0; s < NSLOT; s++)
		REQUIRE(viommu_domain_map(t->dom, SBASE + s * PAGE,
					  SBASE + s * PAGE + PAGE - 1,
					  slot_gpa(s, 0), RW) == 0);
	pthread_barrier_init(&t->start, NULL, NREADERS + 1);
	t->pace.alive = NREADERS;
	for (uintptr_t i = 0; i < NREADERS; i++) {
		args[i][0] = t;
		args[i][1] = (void *)i;
		REQUIRE(pthread_create(&readers[i], NULL, map_reader_fn,
				       args[i]) == 0);
	}
	REQUIRE(pthread_create(&mapper, NULL, mapper_fn, t) == 0);
	pthread_join(mapper, NULL);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(readers[i], NULL);
	printf("#   reads %lu hits %lu faults %lu inconclusive %lu\n",
	       t->reads, t->hits, t->faults, t->inconclusive);
	CHECK_EQ(err_report(&t->err), 0);
	CHECK(t->reads > 0);
	/* Quiescent: every slot holds its last generation. */
	for (unsigned int s = 0; s < NSLOT; s++)
		CHECK_U64(fx_gpa_of(t->ep[0], NP, SBASE + s * PAGE,
				    VIOMMU_READ),
			  slot_gpa(s, t->seq[s] / 4));
	CHECK_U64(fx_info(t->dom).mappings, NSLOT);
	pthread_barrier_destroy(&t->start);
	fx_fini(&t->f);
	free(t);
}

/* ------------------------------------------------------------------ */
/* Stable mappings while the tree is restructured                     */

#define STABLE_N 64
#define CHURN_N 1000
#define CHURN_ROUNDS 4

struct tree_test {
	struct fx f;
	struct viommu_domain *dom;
	struct viommu_endpoint *ep;
	int stop;
	pthread_barrier_t start;
	struct pace pace;
	struct errs err;
};

/* stable_iova() - stable mapping i sits between churned ones. */
static uint64_t stable_iova(uint64_t i)
{
	return 0x10000000ull + i * 64 * PAGE;
}

/* churn_iova() - churned page @i, interleaved with the stable ones. */
static uint64_t churn_iova(uint64_t i)
{
	return stable_iova(i % STABLE_N) + PAGE + (i / STABLE_N) * PAGE;
}

/*
 * tree_churn_fn() - insert CHURN_N pages around the stable ones (splits),
 * then remove them one by one in reverse order (merges), several rounds.
 */
static void *tree_churn_fn(void *arg)
{
	struct tree_test *t = arg;
	unsigned long last = 0;
	int rc;

	pthread_barrier_wait(&t->start);
	for (int r = 0; r < CHURN_ROUNDS; r++) {
		for (uint64_t i = 0; i < CHURN_N; i++) {
			uint64_t iova = churn_iova(i);

			pace_wait(&t->pace, &last);
			rc = viommu_domain_map(t->dom, iova, iova + PAGE - 1,
					       i * PAGE, VIOMMU_READ);
			if (rc)
				err_note(&t->err, "churn map %llu: %d",
					 (unsigned long long)i, rc);
		}
		for (uint64_t i = CHURN_N; i-- > 0;) {
			uint64_t iova = churn_iova(i);

			pace_wait(&t->pace, &last);
			rc = viommu_domain_unmap(t->dom, iova, iova + PAGE - 1,
						 NULL);
			if (rc)
				err_note(&t->err, "churn unmap %llu: %d",
					 (unsigned long long)i, rc);
		}
	}
	STORE(t->stop, 1);
	pace_finish(&t->pace);
	return NULL;
}

TEST(translate_during_tree_restructuring)
{
	struct tree_test *t = calloc(1, sizeof(*t));
	struct viommu_xlate x;
	pthread_t churn;
	unsigned long reads = 0, faults = 0, mine = 0;
	uint64_t rs = 12345;

	REQUIRE(t != NULL);
	REQUIRE(fx_init(&t->f, NULL) == 0);
	pthread_mutex_init(&t->err.lock, NULL);
	REQUIRE((t->dom = fx_paging(&t->f, 1)) && (t->ep = fx_ep(&t->f, 1)));
	REQUIRE(viommu_endpoint_attach(t->ep, NP, t->dom) == 0);
	for (uint64_t i = 0; i < STABLE_N; i++)
		REQUIRE(viommu_domain_map(t->dom, stable_iova(i),
					  stable_iova(i) + PAGE - 1,
					  0x800000 + i * PAGE, RW) == 0);
	pthread_barrier_init(&t->start, NULL, 2);
	t->pace.alive = 1;
	REQUIRE(pthread_create(&churn, NULL, tree_churn_fn, t) == 0);
	pthread_barrier_wait(&t->start);
	/* The stable mappings never move: every translate must hit. */
	for (unsigned long i = 0; i < READER_CAP && !LOAD(t->stop); i++) {
		uint64_t k = rnd(&rs) % STABLE_N;
		int rc = viommu_translate(t->ep, NP, stable_iova(k) + 8, 8,
					  VIOMMU_READ, &x, NULL);

		reads++;
		pace_read(&t->pace, &mine);
		if (rc) {
			faults++;
			err_note(&t->err, "stable %llu: fault %d",
				 (unsigned long long)k, rc);
			continue;
		}
		if (x.gpa != 0x800000 + k * PAGE + 8 ||
		    x.hva != t->f.ram0 + 0x800000 + k * PAGE + 8 || x.len != 8)
			err_note(&t->err, "stable %llu: GPA 0x%llx",
				 (unsigned long long)k,
				 (unsigned long long)x.gpa);
	}
	pace_leave(&t->pace);
	pthread_join(churn, NULL);
	printf("#   reads %lu faults %lu\n", reads, faults);
	CHECK_EQ(err_report(&t->err), 0);
	for (uint64_t i = 0; i < STABLE_N; i++)
		CHECK_U64(fx_gpa_of(t->ep, NP, stable_iova(i), VIOMMU_READ),
			  0x800000 + i * PAGE);
	pthread_barrier_destroy(&t->start);
	fx_fini(&t->f);
	free(t);
}

/* ------------------------------------------------------------------ */
/* Attach / detach churn                                              */

#define CHURN_ITERS 10000
#define XIOVA 0x30000ull
#define GPA_A 0x100000ull
#define GPA_B (RAM1_GPA + 0x200000ull)

/* Outcome kinds, in the order the churner moves through them. */
enum { K_A, K_B, K_DETACHED, K_BLOCKED, K_IDENTITY, K_NKINDS };

struct attach_test {
	struct fx f;
	struct viommu_domain *a, *b;
	struct viommu_endpoint *ep;
	uint64_t seq; /* 2k: in state k; 2k + 1: moving to state k + 1 */
	int stop;
	unsigned long reads, per_kind[K_NKINDS];
	pthread_barrier_t start;
	struct pace pace;
	struct errs err;
};

/* enter_kind() - make the endpoint's RID match @kind. */
static int enter_kind(struct attach_test *t, int kind)
{
	switch (kind) {
	case K_A:
		return viommu_endpoint_attach(t->ep, NP, t->a);
	case K_B:
		return viommu_endpoint_attach(t->ep, NP, t->b);
	case K_DETACHED:
		return viommu_endpoint_detach(t->ep, NP);
	case K_BLOCKED:
		return viommu_endpoint_attach(t->ep, NP,
				viommu_ctx_blocked_domain(t->f.ctx));
	default:
		return viommu_endpoint_attach(t->ep, NP,
				viommu_ctx_identity_domain(t->f.ctx));
	}
}

/* attach_churn_fn() - move the RID through the states, publishing seq. */
static void *attach_churn_fn(void *arg)
{
	struct attach_test *t = arg;
	unsigned long last = 0;
	int rc;

	pthread_barrier_wait(&t->start);
	for (uint64_t k = 0; k < CHURN_ITERS; k++) {
		pace_wait(&t->pace, &last);
		STORE(t->seq, 2 * k + 1);
		rc = enter_kind(t, (int)((k + 1) % K_NKINDS));
		if (rc)
			err_note(&t->err, "enter kind %d: %d",
				 (int)((k + 1) % K_NKINDS), rc);
		STORE(t->seq, 2 * (k + 1));
	}
	STORE(t->stop, 1);
	pace_finish(&t->pace);
	return NULL;
}

/* outcome_kind() - which state a translate result belongs to, or -1. */
static int outcome_kind(int rc, const struct viommu_xlate *x,
			const struct viommu_fault *flt, uint64_t off)
{
	if (rc == -EFAULT && flt->reason == VIOMMU_FAULT_UNATTACHED)
		return K_DETACHED;
	if (rc == -EFAULT && flt->reason == VIOMMU_FAULT_BLOCKED)
		return K_BLOCKED;
	if (rc)
		return -1;
	if (x->gpa == GPA_A + off)
		return K_A;
	if (x->gpa == GPA_B + off)
		return K_B;
	if (x->gpa == XIOVA + off)
		return K_IDENTITY;
	return -1;
}

/* attach_reader_fn() - translate and check the outcome fits seq. */
static void *attach_reader_fn(void *arg)
{
	struct attach_test *t = ((void **)arg)[0];
	uint64_t rs = 0x1234567ull + (uintptr_t)((void **)arg)[1];
	unsigned long mine = 0;
	struct viommu_fault flt;
	struct viommu_xlate x;

	pthread_barrier_wait(&t->start);
	for (unsigned long i = 0; i < READER_CAP && !LOAD(t->stop); i++) {
		uint64_t off = rnd(&rs) % PAGE, v1, v2, lo, hi, k;
		int rc, kind;

		v1 = LOAD(t->seq);
		rc = viommu_translate(t->ep, NP, XIOVA + off, 1, VIOMMU_READ,
				      &x, &flt);
		v2 = LOAD(t->seq);
		INC(t->reads);
		pace_read(&t->pace, &mine);
		kind = outcome_kind(rc, &x, &flt, off);
		if (kind < 0) {
			err_note(&t->err, "rc %d reason %u gpa 0x%llx", rc,
				 rc ? flt.reason : 0,
				 rc ? 0ull : (unsigned long long)x.gpa);
			continue;
		}
		INC(t->per_kind[kind]);
		lo = v1 / 2;
		hi = v2 / 2 + (v2 & 1);
		if (hi - lo >= K_NKINDS)
			continue;
		for (k = lo; k <= hi; k++)
			if ((int)(k % K_NKINDS) == kind)
				break;
		if (k > hi)
			err_note(&t->err,
				 "outcome %d outside states %llu..%llu", kind,
				 (unsigned long long)lo,
				 (unsigned long long)hi);
	}
	pace_leave(&t->pace);
	return NULL;
}

TEST(translate_during_attach_detach_churn)
{
	struct attach_test *t = calloc(1, sizeof(*t));
	pthread_t churn, readers[NREADERS];
	void *args[NREADERS][2];

	REQUIRE(t != NULL);
	REQUIRE(fx_init(&t->f, NULL) == 0);
	pthread_mutex_init(&t->err.lock, NULL);
	REQUIRE((t->a = fx_paging(&t->f, 1)) && (t->b = fx_paging(&t->f, 2)));
	REQUIRE((t->ep = fx_ep(&t->f, 1)) != NULL);
	REQUIRE(viommu_domain_map(t->a, XIOVA, XIOVA + PAGE - 1, GPA_A, RW) ==
		0);
	REQUIRE(viommu_domain_map(t->b, XIOVA, XIOVA + PAGE - 1, GPA_B, RW) ==
		0);
	REQUIRE(viommu_endpoint_attach(t->ep, NP, t->a) == 0);
	pthread_barrier_init(&t->start, NULL, NREADERS + 1);
	t->pace.alive = NREADERS;
	for (uintptr_t i = 0; i < NREADERS; i++) {
		args[i][0] = t;
		args[i][1] = (void *)i;
		REQUIRE(pthread_create(&readers[i], NULL, attach_reader_fn,
				       args[i]) == 0);
	}
	REQUIRE(pthread_create(&churn, NULL, attach_churn_fn, t) == 0);
	pthread_join(churn, NULL);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(readers[i], NULL);
	printf("#   reads %lu (A %lu B %lu detached %lu blocked %lu "
	       "identity %lu)\n", t->reads, t->per_kind[K_A],
	       t->per_kind[K_B], t->per_kind[K_DETACHED],
	       t->per_kind[K_BLOCKED], t->per_kind[K_IDENTITY]);
	CHECK_EQ(err_report(&t->err), 0);
	CHECK_EQ(fx_info(t->a).endpoints + fx_info(t->b).endpoints,
		 CHURN_ITERS % K_NKINDS <= K_B ? 1 : 0);
	pthread_barrier_destroy(&t->start);
	fx_fini(&t->f);
	free(t);
}

/* ------------------------------------------------------------------ */
/* Domains created, used and destroyed while another endpoint works   */

#define LIFE_ITERS 3000

struct life_test {
	struct fx f;
	struct viommu_endpoint *ep, *steady;
	int stop;
	pthread_barrier_t start;
	struct pace pace;
	struct errs err;
};

/*
 * life_fn() - the virtio-iommu pattern: create a domain, map, attach,
 * detach (the domain now has no endpoint) and destroy it, while readers
 * translate for the endpoint being moved and for a steady one.
 */
static void *life_fn(void *arg)
{
	struct life_test *t = arg;
	unsigned long last = 0;
	int rc;

	pthread_barrier_wait(&t->start);
	for (uint64_t i = 0; i < LIFE_ITERS; i++) {
		struct viommu_domain *d;

		pace_wait(&t->pace, &last);
		d = fx_paging(&t->f, 100 + i);
		if (!d) {
			err_note(&t->err, "create %llu",
				 (unsigned long long)i);
			break;
		}
		rc = viommu_domain_map(d, XIOVA, XIOVA + PAGE - 1,
				       (i % 64) * PAGE, RW);
		rc = rc ? rc : viommu_endpoint_attach(t->ep, NP, d);
		rc = rc ? rc : viommu_endpoint_detach(t->ep, NP);
		rc = rc ? rc : viommu_domain_destroy(d);
		if (rc)
			err_note(&t->err, "iteration %llu: %d",
				 (unsigned long long)i, rc);
	}
	STORE(t->stop, 1);
	pace_finish(&t->pace);
	return NULL;
}

/* life_reader_fn() - translate for the moving and the steady endpoint. */
static void *life_reader_fn(void *arg)
{
	struct life_test *t = arg;
	struct viommu_fault flt;
	struct viommu_xlate x;
	unsigned long mine = 0;

	pthread_barrier_wait(&t->start);
	for (unsigned long i = 0; i < READER_CAP && !LOAD(t->stop); i++) {
		int rc = viommu_translate(t->ep, NP, XIOVA + 16, 8,
					  VIOMMU_WRITE, &x, &flt);

		if (rc == 0 && ((x.gpa & (PAGE - 1)) != 16 ||
				x.gpa >= 64 * PAGE))
			err_note(&t->err, "moving: GPA 0x%llx",
				 (unsigned long long)x.gpa);
		else if (rc && (rc != -EFAULT ||
				flt.reason != VIOMMU_FAULT_UNATTACHED))
			err_note(&t->err, "moving: rc %d reason %u", rc,
				 flt.reason);
		rc = viommu_translate(t->steady, NP, XIOVA + 16, 8,
				      VIOMMU_READ, &x, &flt);
		if (rc || x.gpa != GPA_A + 16)
			err_note(&t->err, "steady: rc %d", rc);
		pace_read(&t->pace, &mine);
	}
	pace_leave(&t->pace);
	return NULL;
}

TEST(domain_lifecycle_while_translating)
{
	struct life_test *t = calloc(1, sizeof(*t));
	pthread_t life, readers[NREADERS];
	struct viommu_domain *sd;

	REQUIRE(t != NULL);
	REQUIRE(fx_init(&t->f, NULL) == 0);
	pthread_mutex_init(&t->err.lock, NULL);
	REQUIRE((t->ep = fx_ep(&t->f, 1)) && (t->steady = fx_ep(&t->f, 2)));
	REQUIRE((sd = fx_paging(&t->f, 1)) != NULL);
	REQUIRE(viommu_domain_map(sd, XIOVA, XIOVA + PAGE - 1, GPA_A, RW) ==
		0);
	REQUIRE(viommu_endpoint_attach(t->steady, NP, sd) == 0);
	pthread_barrier_init(&t->start, NULL, NREADERS + 1);
	t->pace.alive = NREADERS;
	for (int i = 0; i < NREADERS; i++)
		REQUIRE(pthread_create(&readers[i], NULL, life_reader_fn, t) ==
			0);
	REQUIRE(pthread_create(&life, NULL, life_fn, t) == 0);
	pthread_join(life, NULL);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(readers[i], NULL);
	CHECK_EQ(err_report(&t->err), 0);
	CHECK_U64(fx_stats(&t->f).domains, 1);
	pthread_barrier_destroy(&t->start);
	fx_fini(&t->f);
	free(t);
}

/* ------------------------------------------------------------------ */
/* Guest memory replaced while translating                            */

#define MEM_ITERS 3000

/*
 * The RAM region at GPA 0 alternates between two buffers; seq = 2k while
 * buffer k % 2 is in place, 2k + 1 while viommu_mem_set_regions() runs.
 * A translate that starts after a replacement returned must not return a
 * host pointer into the old buffer (the IOTLB caches host pointers).
 */
struct memswap_test {
	struct fx f;
	struct viommu_endpoint *ep;
	uint8_t *buf[2];
	uint64_t seq;
	int stop;
	pthread_barrier_t start;
	struct pace pace;
	struct errs err;
};

/* memswap_fn() - swap the RAM buffer back and forth, publishing seq. */
static void *memswap_fn(void *arg)
{
	struct memswap_test *t = arg;
	unsigned long last = 0;

	pthread_barrier_wait(&t->start);
	for (uint64_t k = 0; k < MEM_ITERS; k++) {
		struct viommu_mem_region r = { .gpa = RAM0_GPA,
					       .size = RAM_SIZE, .fd = -1,
					       .hva = t->buf[(k + 1) % 2] };
		int rc;

		pace_wait(&t->pace, &last);
		STORE(t->seq, 2 * k + 1);
		rc = viommu_mem_set_regions(t->f.mem, &r, 1);
		if (rc)
			err_note(&t->err, "set_regions: %d", rc);
		STORE(t->seq, 2 * (k + 1));
	}
	STORE(t->stop, 1);
	pace_finish(&t->pace);
	return NULL;
}

/* memswap_reader_fn() - translate and check the host pointer's buffer. */
static void *memswap_reader_fn(void *arg)
{
	struct memswap_test *t = arg;
	unsigned long mine = 0;
	struct viommu_xlate x;

	pthread_barrier_wait(&t->start);
	for (unsigned long i = 0; i < READER_CAP && !LOAD(t->stop); i++) {
		uint64_t v1, v2, lo, hi;
		int rc, which;

		v1 = LOAD(t->seq);
		rc = viommu_translate(t->ep, NP, XIOVA + 8, 8, VIOMMU_READ,
				      &x, NULL);
		v2 = LOAD(t->seq);
		pace_read(&t->pace, &mine);
		if (rc || x.gpa != GPA_A + 8) {
			err_note(&t->err, "rc %d", rc);
			continue;
		}
		which = x.hva == t->buf[0] + GPA_A + 8 ? 0 :
			x.hva == t->buf[1] + GPA_A + 8 ? 1 : -1;
		lo = v1 / 2;
		hi = v2 / 2 + (v2 & 1);
		if (which < 0)
			err_note(&t->err, "hva %p in neither buffer", x.hva);
		else if (hi == lo && (int)(lo % 2) != which)
			err_note(&t->err, "stale hva (buffer %d, state %llu)",
				 which, (unsigned long long)lo);
	}
	pace_leave(&t->pace);
	return NULL;
}

TEST(translate_during_mem_replacement_never_stale)
{
	struct memswap_test *t = calloc(1, sizeof(*t));
	pthread_t swapper, readers[NREADERS];
	struct viommu_domain *d;

	REQUIRE(t != NULL);
	REQUIRE(fx_init(&t->f, &(struct fx_opts){ .one_region = true }) == 0);
	pthread_mutex_init(&t->err.lock, NULL);
	t->buf[0] = t->f.ram0;
	REQUIRE((t->buf[1] = calloc(1, RAM_SIZE)) != NULL);
	REQUIRE((t->ep = fx_ep(&t->f, 1)) && (d = fx_paging(&t->f, 1)));
	REQUIRE(viommu_endpoint_attach(t->ep, NP, d) == 0);
	REQUIRE(viommu_domain_map(d, XIOVA, XIOVA + PAGE - 1, GPA_A, RW) == 0);
	pthread_barrier_init(&t->start, NULL, NREADERS + 1);
	t->pace.alive = NREADERS;
	for (int i = 0; i < NREADERS; i++)
		REQUIRE(pthread_create(&readers[i], NULL, memswap_reader_fn,
				       t) == 0);
	REQUIRE(pthread_create(&swapper, NULL, memswap_fn, t) == 0);
	pthread_join(swapper, NULL);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(readers[i], NULL);
	CHECK_EQ(err_report(&t->err), 0);
	pthread_barrier_destroy(&t->start);
	fx_fini(&t->f);
	free(t->buf[1]);
	free(t);
}

/* ------------------------------------------------------------------ */
/* Dirty tracking: concurrent writes and read-and-clear lose nothing  */

#define DPAGES 256
#define DBASE 0x20000000ull
#define DWRITES 20000

struct dirty_test {
	struct fx f;
	struct viommu_domain *dom;
	struct viommu_endpoint *ep;
	uint64_t written[DPAGES / 64]; /* set by writers, atomically */
	uint64_t seen[DPAGES / 64];    /* collected by the reader */
	int writers_left;
	pthread_barrier_t start;
	struct pace pace;
	struct errs err;
};

/* dirty_writer_fn() - DMA-write random even pages, noting each one. */
static void *dirty_writer_fn(void *arg)
{
	struct dirty_test *t = ((void **)arg)[0];
	uint64_t rs = 777 + (uintptr_t)((void **)arg)[1];
	unsigned long last = 0;
	struct viommu_xlate x;

	pthread_barrier_wait(&t->start);
	for (int i = 0; i < DWRITES; i++) {
		/* Only even pages are written, so odd ones stay clean. */
		uint64_t p = (rnd(&rs) % (DPAGES / 2)) * 2;

		if (i % 16 == 0)
			pace_wait(&t->pace, &last);
		if (viommu_translate(t->ep, NP, DBASE + p * PAGE, 16,
				     VIOMMU_WRITE, &x, NULL)) {
			err_note(&t->err, "write page %llu faulted",
				 (unsigned long long)p);
			continue;
		}
		__atomic_fetch_or(&t->written[p / 64], 1ull << (p % 64),
				  __ATOMIC_RELAXED);
	}
	if (__atomic_sub_fetch(&t->writers_left, 1, __ATOMIC_RELEASE) == 0)
		pace_finish(&t->pace);
	return NULL;
}

/* dirty_collect() - read-and-clear the whole range into t->seen. */
static void dirty_collect(struct dirty_test *t)
{
	uint64_t bm[DPAGES / 64] = { 0 };
	int rc = viommu_domain_dirty_read(t->dom, DBASE,
					  DBASE + DPAGES * PAGE - 1, bm,
					  DPAGES / 64, 0);

	if (rc)
		err_note(&t->err, "dirty_read: %d", rc);
	for (int i = 0; i < DPAGES / 64; i++)
		t->seen[i] |= bm[i];
}

TEST(dirty_read_and_clear_during_writes_loses_nothing)
{
	struct dirty_test *t = calloc(1, sizeof(*t));
	pthread_t w[2];
	void *args[2][2];
	unsigned long mine = 0;

	REQUIRE(t != NULL);
	REQUIRE(fx_init(&t->f, NULL) == 0);
	pthread_mutex_init(&t->err.lock, NULL);
	REQUIRE((t->dom = fx_paging(&t->f, 1)) && (t->ep = fx_ep(&t->f, 1)));
	REQUIRE(viommu_endpoint_attach(t->ep, NP, t->dom) == 0);
	REQUIRE(viommu_domain_map(t->dom, DBASE, DBASE + DPAGES * PAGE - 1,
				  0x100000, RW) == 0);
	REQUIRE(viommu_domain_dirty_enable(t->dom, true) == 0);
	t->writers_left = 2;
	t->pace.alive = 1;
	pthread_barrier_init(&t->start, NULL, 3);
	for (uintptr_t i = 0; i < 2; i++) {
		args[i][0] = t;
		args[i][1] = (void *)i;
		REQUIRE(pthread_create(&w[i], NULL, dirty_writer_fn,
				       args[i]) == 0);
	}
	pthread_barrier_wait(&t->start);
	for (int i = 0; i < 100000 && LOAD(t->writers_left) > 0; i++) {
		dirty_collect(t);
		pace_read(&t->pace, &mine);
	}
	pace_leave(&t->pace);
	for (int i = 0; i < 2; i++)
		pthread_join(w[i], NULL);
	dirty_collect(t);
	CHECK_EQ(err_report(&t->err), 0);
	for (int i = 0; i < DPAGES / 64; i++)
		CHECK_U64(t->seen[i], t->written[i]);
	pthread_barrier_destroy(&t->start);
	fx_fini(&t->f);
	free(t);
}

/* ------------------------------------------------------------------ */
/* The lock-free miss path over a large, restructuring tree           */

#define MP_STABLE 2048u /* stable pages, interleaved with churn pages */
#define MP_TOGGLES 6000u
#define MP_BASE 0x40000000ull

/*
 * Page p of the range is stable when even, churn page p / 2 when odd; it
 * maps to GPA (p % 4096) pages into RAM0.  A one-entry IOTLB makes nearly
 * every translate take the miss path, which searches the store without
 * the domain lock while the churner's maps and unmaps split, shift and
 * merge leaves and retire nodes.  cseq[i] = 4 * k + phase for churn page
 * i, phase 0: unmapped (unmap returned), 1: map running, 2: mapped, 3:
 * unmap running.
 */
struct miss_test {
	struct fx f;
	struct viommu_domain *dom;
	struct viommu_endpoint *ep;
	uint64_t cseq[MP_STABLE];
	int stop;
	unsigned long reads, misses_hit;
	pthread_barrier_t start;
	struct pace pace;
	struct errs err;
};

/* mp_gpa() - the GPA page @p of the range maps to. */
static uint64_t mp_gpa(uint64_t p)
{
	return RAM0_GPA + (p % 4096) * PAGE;
}

/* mp_churn_fn() - toggle random churn pages, publishing each phase. */
static void *mp_churn_fn(void *arg)
{
	struct miss_test *t = arg;
	uint64_t rs = 0xdeadbeefcafef00dull;
	unsigned long last = 0;
	bool mapped[MP_STABLE] = { false };
	int rc;

	pthread_barrier_wait(&t->start);
	for (unsigned int k = 0; k < MP_TOGGLES; k++) {
		unsigned int i = rnd(&rs) % MP_STABLE;
		uint64_t p = 2 * (uint64_t)i + 1, iova = MP_BASE + p * PAGE;
		uint64_t v = t->cseq[i];

		pace_wait(&t->pace, &last);
		STORE(t->cseq[i], v + 1);
		if (mapped[i])
			rc = viommu_domain_unmap(t->dom, iova, iova + PAGE - 1,
						 NULL);
		else
			rc = viommu_domain_map(t->dom, iova, iova + PAGE - 1,
					       mp_gpa(p), RW);
		if (rc)
			err_note(&t->err, "churn %u: %d", i, rc);
		mapped[i] = !mapped[i];
		STORE(t->cseq[i], v + 2);
	}
	STORE(t->stop, 1);
	pace_finish(&t->pace);
	return NULL;
}

/* mp_reader_fn() - translate random pages and judge each result. */
static void *mp_reader_fn(void *arg)
{
	struct miss_test *t = arg;
	uint64_t rs = (uint64_t)(uintptr_t)&rs | 1;
	unsigned long mine = 0;
	struct viommu_fault flt;
	struct viommu_xlate x;

	pthread_barrier_wait(&t->start);
	for (unsigned long n = 0; n < READER_CAP && !LOAD(t->stop); n++) {
		uint64_t p = rnd(&rs) % (2 * MP_STABLE), off = rnd(&rs) % PAGE;
		uint64_t v1 = 0, v2 = 0;
		int rc;

		if (p & 1)
			v1 = LOAD(t->cseq[p / 2]);
		rc = viommu_translate(t->ep, NP, MP_BASE + p * PAGE + off, 1,
				      VIOMMU_READ, &x, &flt);
		if (p & 1)
			v2 = LOAD(t->cseq[p / 2]);
		INC(t->reads);
		pace_read(&t->pace, &mine);
		if (rc == 0) {
			if (x.gpa != mp_gpa(p) + off ||
			    x.hva != (uint8_t *)fx_hva(&t->f, mp_gpa(p)) + off)
				err_note(&t->err, "page %llu: GPA 0x%llx",
					 (unsigned long long)p,
					 (unsigned long long)x.gpa);
			else if ((p & 1) && v1 == v2 && v1 % 4 == 0)
				err_note(&t->err, "page %llu: hit while "
					 "unmapped (seq %llu)",
					 (unsigned long long)p,
					 (unsigned long long)v1);
			if (p & 1)
				INC(t->misses_hit);
		} else if (rc != -EFAULT ||
			   flt.reason != VIOMMU_FAULT_NO_MAPPING) {
			err_note(&t->err, "page %llu: rc %d reason %u",
				 (unsigned long long)p, rc, flt.reason);
		} else if (!(p & 1) || (v1 == v2 && v1 % 4 == 2)) {
			err_note(&t->err, "page %llu: fault while mapped",
				 (unsigned long long)p);
		}
	}
	pace_leave(&t->pace);
	return NULL;
}

/*
 * lockfree_miss_path_never_stale - core §3 unmap rule on the lock-free
 * miss path: a translate that starts after unmap returned faults, one
 * that overlaps no change finds the mapping, stable mappings are always
 * found, while the store is restructured and its nodes are retired and
 * freed under the readers (use-after-free: ASan; races: TSan).
 */
TEST(lockfree_miss_path_never_stale)
{
	struct fx_opts o = { .limits = { .iotlb_entries = 1 } };
	struct miss_test *t = calloc(1, sizeof(*t));
	pthread_t churn, readers[NREADERS];

	REQUIRE(t != NULL);
	REQUIRE(fx_init(&t->f, &o) == 0);
	pthread_mutex_init(&t->err.lock, NULL);
	REQUIRE((t->dom = fx_paging(&t->f, 1)) && (t->ep = fx_ep(&t->f, 1)));
	REQUIRE(viommu_endpoint_attach(t->ep, NP, t->dom) == 0);
	for (uint64_t p = 0; p < 2 * MP_STABLE; p += 2)
		REQUIRE(viommu_domain_map(t->dom, MP_BASE + p * PAGE,
					  MP_BASE + p * PAGE + PAGE - 1,
					  mp_gpa(p), RW) == 0);
	pthread_barrier_init(&t->start, NULL, NREADERS + 1);
	t->pace.alive = NREADERS;
	for (int i = 0; i < NREADERS; i++)
		REQUIRE(pthread_create(&readers[i], NULL, mp_reader_fn, t) ==
			0);
	REQUIRE(pthread_create(&churn, NULL, mp_churn_fn, t) == 0);
	pthread_join(churn, NULL);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(readers[i], NULL);
	printf("#   reads %lu, churn pages found %lu, misses %llu\n",
	       t->reads, t->misses_hit,
	       (unsigned long long)fx_stats(&t->f).iotlb_misses);
	CHECK_EQ(err_report(&t->err), 0);
	CHECK(t->reads > 0);
	/* Nearly every call missed: the miss path was what ran. */
	CHECK(fx_stats(&t->f).iotlb_misses > t->reads / 2);
	pthread_barrier_destroy(&t->start);
	fx_fini(&t->f);
	free(t);
}

TEST_MAIN()
