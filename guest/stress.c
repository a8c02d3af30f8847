/*
 * stress.c - rebind, stress, identity and twocpu scenarios.
 *
 * rebind: attach/detach cycles through VFIO (a second group joining a
 * domain that already has mappings, leaving it, the container closing with
 * mappings in place, vfio-pci unbound and bound again) with data checked
 * after each step.  stress: seeded random map/unmap of varied sizes in a
 * set of IOVA slots, with DMA into, out of and next to them, checked
 * against a model (a shadow copy per mapping) while a second engine in the
 * same domain copies data continuously.  identity: with iommu.passthrough=1
 * the engine, driven through sysfs, DMAs to guest-physical addresses.
 * twocpu: two threads pinned to two CPUs drive two engines at once.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest.h"

/* --- rebind ----------------------------------------------------------- */

#define REBIND_ROUNDS 3

/* detached_check() - after VFIO let go, the old IOVA must not resolve. */
static void detached_check(struct result *r, struct eng *e, uint64_t iova)
{
	char type[32] = "";
	uint32_t st = 0;
	int err;

	group_type(e->group, type, sizeof(type));
	if (strncmp(type, "DMA", 3)) {
		logmsg("%s: default domain %s: stale-IOVA check skipped",
		       e->bdf, type);
		return;
	}
	err = eng_open_sysfs(e);
	if (expect(r, !err, "%s: sysfs open failed: %s", e->bdf,
		   strerror(-err)) && e->ours) {
		err = eng_to_dev(e, iova, 0, 512, &st);
		expect(r, err == -EIO, "%s: IOVA 0x%llx of a closed VFIO "
		       "domain still reachable (err %d)", e->bdf,
		       (unsigned long long)iova, err);
	}
	eng_close(e);
}

/* rebind_second() - engine 2 joins the domain (mappings exist), leaves. */
static void rebind_second(struct result *r, struct ctr *c, struct eng *e,
			  struct dmabuf *a, struct dmabuf *b, uint64_t seed)
{
	if (attach_engine(r, c, &e[1]))
		return;
	roundtrip(r, &e[1], a, 0, b, 0, 3000, seed);
	eng_close(&e[1]);
	roundtrip(r, &e[0], a, 0, b, 0, 3000, seed + 1);
}

/* rebind_round() - one attach ... unbind, rebind cycle on engine 0. */
static int rebind_round(struct result *r, struct eng *e, int n,
			struct dmabuf *a, struct dmabuf *b, unsigned round)
{
	uint64_t seed = g_opts->seed + 100 + round * 10, iova;
	char drv[64];
	struct ctr c;
	int err;

	if (!expect(r, !ctr_open(&c), "cannot open /dev/vfio/vfio"))
		return -1;
	if (attach_engine(r, &c, &e[0]))
		goto fail;
	if (!expect(r, !buf_alloc(a, 2 * PAGE, PAGE) &&
		    !buf_alloc(b, 2 * PAGE, PAGE), "out of memory") ||
	    !expect(r, !buf_map(&c, a, true) && !buf_map(&c, b, true),
		    "VFIO_IOMMU_MAP_DMA failed"))
		goto fail;
	if (roundtrip(r, &e[0], a, 0, b, 0, 3000, seed))
		goto fail;
	if (n >= 2)
		rebind_second(r, &c, e, a, b, seed + 2);
	iova = a->iova;
	/* Close with the mappings in place: VFIO unmaps and detaches. */
	eng_close(&e[0]);
	ctr_close(&c);
	a->mapped = b->mapped = false;
	err = eng_unbind(&e[0]);
	expect(r, !err && eng_driver(&e[0], drv, sizeof(drv)) == -ENOENT,
	       "%s: unbind from vfio-pci failed", e[0].bdf);
	detached_check(r, &e[0], iova);
	err = eng_bind_vfio(&e[0]);
	return expect(r, !err, "%s: rebinding vfio-pci failed: %s", e[0].bdf,
		      strerror(-err)) ? 0 : -1;
fail:
	eng_close(&e[0]);
	ctr_close(&c);
	return -1;
}

/* sc_rebind() - detach/attach and unbind/rebind, data checked each time. */
int sc_rebind(struct result *r)
{
	struct dmabuf a[REBIND_ROUNDS], b[REBIND_ROUNDS];
	struct eng e[MAX_ENGINES];
	unsigned i, rounds = 0;
	int n;

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	n = open_engines(r, e, 1);
	if (n < 0)
		return 0;
	res_kv(r, "engines", "%d", n > 2 ? 2 : n);
	if (n < 2)
		logmsg("one engine: the shared-domain step is skipped");
	/* Old rounds' buffers stay allocated: a stale mapping would show. */
	for (i = 0; i < REBIND_ROUNDS; i++) {
		if (rebind_round(r, e, n, &a[i], &b[i], i))
			break;
		rounds++;
	}
	res_kv(r, "rounds", "%u", rounds);
	for (i = 0; i < REBIND_ROUNDS; i++) {
		buf_free(&a[i]);
		buf_free(&b[i]);
	}
	return 0;
}

/* --- stress ----------------------------------------------------------- */

#define SLOTS 16
#define SLOT_SPAN (4ul << 20)
#define CHURN_BASE 0x04000000ull

/* One IOVA slot of the model: unmapped, or mapped to buf (shadow = data). */
struct slot {
	bool mapped;
	bool writable;
	struct dmabuf buf;
	uint8_t *shadow;
};

struct model {
	struct slot s[SLOTS];
	struct dmabuf src;    /* stable, read-only: data to write */
	struct dmabuf check;  /* stable, writable: data read back */
	uint64_t rs;
	unsigned maps, unmaps, dmas, refused, verifies;
};

/* Background copier on the second engine (same domain). */
struct bg {
	struct eng *e;
	struct ctr *c;
	volatile int stop;
	volatile unsigned copies;
	struct result res;
};

static const size_t slot_sizes[] = { 4096, 8192, 12288, 65536, 102400,
				     1u << 20, 2u << 20 };

/* slot_iova() - IOVA of slot @i. */
static uint64_t slot_iova(unsigned i)
{
	return CHURN_BASE + i * SLOT_SPAN;
}

/* slot_map() - map slot @i with a random size and permission. */
static void slot_map(struct result *r, struct ctr *c, struct model *m,
		     unsigned i)
{
	struct slot *s = &m->s[i];
	size_t size = slot_sizes[rng_next(&m->rs) % 7];
	int err;

	s->writable = rng_next(&m->rs) % 4 != 0;
	if (!expect(r, !buf_alloc(&s->buf, size, size >= (2u << 20) ?
				  (2u << 20) : PAGE) &&
		    (s->shadow = malloc(size)), "out of memory"))
		return;
	fill_pattern(s->buf.va, size, rng_next(&m->rs));
	memcpy(s->shadow, s->buf.va, size);
	err = ctr_map(c, s->buf.va, size, slot_iova(i), s->writable);
	if (!expect(r, !err, "map slot %u (%zu bytes): %s", i, size,
		    strerror(-err))) {
		buf_free(&s->buf);
		free(s->shadow);
		s->shadow = NULL;
		return;
	}
	s->buf.iova = slot_iova(i);
	s->buf.mapped = s->mapped = true;
	m->maps++;
}

/* slot_verify() - the buffer of slot @i equals its shadow. */
static void slot_verify(struct result *r, struct model *m, unsigned i)
{
	struct slot *s = &m->s[i];
	size_t at = first_diff(s->buf.va, s->shadow, s->buf.size);

	m->verifies++;
	expect(r, at == s->buf.size, "slot %u differs from the model at byte "
	       "%zu of %zu", i, at, s->buf.size);
}

/* slot_unmap() - check, unmap (whole mapping) and free slot @i. */
static void slot_unmap(struct result *r, struct ctr *c, struct model *m,
		       unsigned i)
{
	struct slot *s = &m->s[i];
	uint64_t done = 0;
	int err;

	slot_verify(r, m, i);
	err = ctr_unmap(c, slot_iova(i), s->buf.size, &done);
	expect(r, !err && done == s->buf.size, "unmap slot %u: %s, %llu of "
	       "%zu bytes", i, strerror(-err), (unsigned long long)done,
	       s->buf.size);
	buf_free(&s->buf);
	free(s->shadow);
	s->shadow = NULL;
	s->mapped = false;
	m->unmaps++;
}

/* pick() - offset and length of a DMA inside a slot of @size bytes. */
static void pick(struct model *m, struct eng *e, size_t size, size_t *off,
		 uint32_t *len)
{
	uint32_t max = e->buf_size < size ? e->buf_size : (uint32_t)size;

	*len = 1 + (uint32_t)(rng_next(&m->rs) % max);
	*off = (size_t)(rng_next(&m->rs) % (size - *len + 1));
}

/* op_write() - device buffer -> slot; refused if unmapped or read-only. */
static void op_write(struct result *r, struct eng *e, struct model *m,
		     unsigned i)
{
	struct slot *s = &m->s[i];
	size_t off = 0;
	uint32_t len = 512, st, soff;
	uint64_t iova;
	int err;

	if (s->mapped)
		pick(m, e, s->buf.size, &off, &len);
	soff = (uint32_t)(rng_next(&m->rs) % (m->src.size - len + 1));
	if (!expect(r, !eng_to_dev(e, m->src.iova + soff, 0, len, &st),
		    "DMA from the stable source failed"))
		return;
	iova = slot_iova(i) + off;
	err = eng_to_ram(e, 0, iova, len, &st);
	m->dmas += 2;
	if (s->mapped && s->writable) {
		if (expect(r, !err, "DMA of %u bytes to slot %u (IOVA 0x%llx) "
			   "failed: %s", len, i, (unsigned long long)iova,
			   strerror(-err)))
			memcpy(s->shadow + off, m->src.va + soff, len);
		return;
	}
	m->refused++;
	expect(r, err != -ETIMEDOUT && (!e->ours || err == -EIO),
	       "DMA to %s slot %u (IOVA 0x%llx) not refused",
	       s->mapped ? "read-only" : "unmapped", i,
	       (unsigned long long)iova);
}

/* op_read() - slot -> device buffer -> check buffer, against the model. */
static void op_read(struct result *r, struct eng *e, struct model *m,
		    unsigned i)
{
	struct slot *s = &m->s[i];
	size_t off = 0;
	uint32_t len = 512, st;
	int err;

	if (s->mapped)
		pick(m, e, s->buf.size, &off, &len);
	err = eng_to_dev(e, slot_iova(i) + off, 0, len, &st);
	m->dmas++;
	if (!s->mapped) {
		m->refused++;
		expect(r, err != -ETIMEDOUT && (!e->ours || err == -EIO),
		       "DMA from unmapped slot %u not refused", i);
		return;
	}
	if (!expect(r, !err, "DMA from slot %u failed: %s", i, strerror(-err)))
		return;
	err = eng_to_ram(e, 0, m->check.iova, len, &st);
	m->dmas++;
	if (expect(r, !err && !memcmp(m->check.va, s->shadow + off, len),
		   "data read from slot %u (offset %zu, %u bytes) differs from "
		   "the model", i, off, len))
		r->bytes_verified += len;
}

/* stress_op() - one random operation on the model. */
static void stress_op(struct result *r, struct eng *e, struct ctr *c,
		      struct model *m, bool dma_ok)
{
	unsigned i = (unsigned)(rng_next(&m->rs) % SLOTS);
	unsigned op = (unsigned)(rng_next(&m->rs) % 10);

	if (op < 4 || !dma_ok) {
		if (m->s[i].mapped)
			slot_unmap(r, c, m, i);
		else
			slot_map(r, c, m, i);
	} else if (op < 7) {
		op_write(r, e, m, i);
	} else if (op < 9) {
		op_read(r, e, m, i);
	} else if (m->s[i].mapped) {
		slot_verify(r, m, i);
	}
}

/* bg_main() - copy src -> dst on engine 2 until told to stop; verify. */
static void *bg_main(void *arg)
{
	struct bg *bg = arg;
	struct dmabuf a, b;
	uint64_t seed = 0xb6;

	if (buf_alloc(&a, 2 * PAGE, PAGE) || buf_alloc(&b, 2 * PAGE, PAGE) ||
	    buf_map(bg->c, &a, false) || buf_map(bg->c, &b, true)) {
		res_fail(&bg->res, "background buffers failed");
		goto out;
	}
	while (!bg->stop && bg->res.status == RES_PASS) {
		if (roundtrip(&bg->res, bg->e, &a, 0, &b, 0, 3000, seed++))
			break;
		bg->copies++;
	}
out:
	buf_unmap(bg->c, &a);
	buf_unmap(bg->c, &b);
	buf_free(&a);
	buf_free(&b);
	return NULL;
}

/* bg_wait_progress() - let the copier finish one copy (bounded wait). */
static void bg_wait_progress(struct bg *bg)
{
	uint64_t deadline = now_ns() + 30ull * 1000000000ull;

	while (!bg->copies && bg->res.status == RES_PASS &&
	       now_ns() < deadline)
		usleep(1000);
}

/* stress_run() - the model-checked loop. */
static void stress_run(struct result *r, struct eng *e, struct ctr *c,
		       struct model *m)
{
	unsigned iters = g_opts->iters, k, i;
	unsigned dma_every = e->ours ? 1 : 8;

	if (!e->ours && iters > 400)
		iters = 400;
	for (k = 0; k < iters && r->status == RES_PASS; k++)
		stress_op(r, e, c, m, k % dma_every == 0);
	for (i = 0; i < SLOTS; i++)
		if (m->s[i].mapped)
			slot_unmap(r, c, m, i);
	res_kv(r, "ops", "%u", k);
}

/* stress_bufs() - the stable source and check buffers. */
static int stress_bufs(struct result *r, struct ctr *c, struct model *m,
		       struct eng *e)
{
	if (!expect(r, !buf_alloc(&m->src, e->buf_size + PAGE, PAGE) &&
		    !buf_alloc(&m->check, e->buf_size, PAGE), "out of memory"))
		return -1;
	fill_pattern(m->src.va, m->src.size, g_opts->seed + 55);
	/* Above the churn slots, so no slot ever overlaps them. */
	c->next_iova = CHURN_BASE + SLOTS * SLOT_SPAN;
	return expect(r, !buf_map(c, &m->src, false) &&
		      !buf_map(c, &m->check, true),
		      "VFIO_IOMMU_MAP_DMA failed") ? 0 : -1;
}

/* sc_stress() - random map/unmap while DMA runs, against a model. */
int sc_stress(struct result *r)
{
	struct eng e[MAX_ENGINES];
	struct model *m = calloc(1, sizeof(*m));
	struct bg bg;
	pthread_t th;
	bool bg_on = false;
	struct ctr c;
	int n;

	memset(&bg, 0, sizeof(bg));
	n = open_engines(r, e, 1);
	if (n < 0 || !expect(r, m && !ctr_open(&c), "setup failed"))
		goto out_free;
	m->rs = g_opts->seed * 7919 + 1;
	if (attach_engine(r, &c, &e[0]) || stress_bufs(r, &c, m, &e[0]))
		goto out;
	res_kv(r, "engine", "%s", eng_kind(&e[0]));
	if (n >= 2 && !attach_engine(r, &c, &e[1])) {
		bg = (struct bg){ .e = &e[1], .c = &c };
		bg.res.scenario = "stress-bg";
		bg_on = !pthread_create(&th, NULL, bg_main, &bg);
	}
	stress_run(r, &e[0], &c, m);
	if (bg_on) {
		bg_wait_progress(&bg);
		bg.stop = 1;
		pthread_join(th, NULL);
		r->checks += bg.res.checks;
		r->bytes_verified += bg.res.bytes_verified;
		if (bg.res.status == RES_FAIL)
			res_fail(r, "background engine: %s", bg.res.reason);
		res_kv(r, "bg_copies", "%u", bg.copies);
		expect(r, bg.copies > 0, "the background engine never copied");
	}
	res_kv(r, "maps", "%u", m->maps);
	res_kv(r, "unmaps", "%u", m->unmaps);
	res_kv(r, "dmas", "%u", m->dmas);
	res_kv(r, "refused", "%u", m->refused);
	res_kv(r, "seed", "%llu", (unsigned long long)g_opts->seed);
out:
	buf_unmap(&c, &m->src);
	buf_unmap(&c, &m->check);
	buf_free(&m->src);
	buf_free(&m->check);
	eng_close(&e[1]);
	eng_close(&e[0]);
	ctr_close(&c);
out_free:
	free(m);
	return 0;
}

/* --- identity --------------------------------------------------------- */

#define ID_PAGES 8
#define ID_POOL 2048 /* pages to choose from */
#define EDU_DMA_LIMIT (1ull << 28) /* edu masks DMA addresses to 28 bits */

/* Source and destination pages with their guest-physical addresses. */
struct idpages {
	struct dmabuf pool;
	uint8_t *src[ID_PAGES], *dst[ID_PAGES];
	uint64_t sp[ID_PAGES], dp[ID_PAGES];
};

/* pick_pages() - 2 * ID_PAGES pool pages whose GPAs lie below @limit. */
static int pick_pages(struct result *r, struct idpages *p, uint64_t limit)
{
	unsigned i, n = 0;
	uint64_t pa;

	if (!expect(r, !buf_alloc(&p->pool, ID_POOL * PAGE, PAGE),
		    "out of memory"))
		return -1;
	for (i = 0; i < ID_POOL && n < 2 * ID_PAGES; i++) {
		if (virt_to_phys(p->pool.va + i * PAGE, &pa) ||
		    pa + PAGE > limit)
			continue;
		if (n < ID_PAGES) {
			p->src[n] = p->pool.va + i * PAGE;
			p->sp[n] = pa;
		} else {
			p->dst[n - ID_PAGES] = p->pool.va + i * PAGE;
			p->dp[n - ID_PAGES] = pa;
		}
		n++;
	}
	return expect(r, n == 2 * ID_PAGES, "only %u pages with a "
		      "guest-physical address below 0x%llx (pagemap)", n,
		      (unsigned long long)limit) ? 0 : -1;
}

/* identity_pages() - per page: GPA -> device -> GPA, verified. */
static void identity_pages(struct result *r, struct eng *e,
			   struct idpages *p)
{
	uint32_t st, len = e->buf_size < PAGE ? e->buf_size : PAGE;
	unsigned i;

	for (i = 0; i < ID_PAGES; i++) {
		fill_pattern(p->src[i], PAGE, g_opts->seed + 21 + i);
		memset(p->dst[i], 0, PAGE);
		if (!expect(r, !eng_to_dev(e, p->sp[i], 0, len, &st) &&
			    !eng_to_ram(e, 0, p->dp[i], len, &st),
			    "%s: DMA to guest-physical 0x%llx failed", e->bdf,
			    (unsigned long long)p->dp[i]))
			return;
		if (!expect(r, !memcmp(p->src[i], p->dst[i], len),
			    "%s: data through the identity domain differs "
			    "(GPA 0x%llx -> 0x%llx)", e->bdf,
			    (unsigned long long)p->sp[i],
			    (unsigned long long)p->dp[i]))
			return;
		r->bytes_verified += len;
	}
	res_kv(r, "gpa0", "0x%llx", (unsigned long long)p->sp[0]);
}

/* identity_ring() - a ring at a GPA copying pages by GPA (ours). */
static void identity_ring(struct result *r, struct eng *e,
			  struct idpages *p)
{
	struct ring_desc desc[ID_PAGES];
	uint32_t st[ID_PAGES];
	struct ring ring;
	unsigned i;

	for (i = 0; i < ID_PAGES; i++) {
		memset(p->dst[i], 0, PAGE);
		desc[i] = (struct ring_desc){ .src = p->sp[i], .dst = p->dp[i],
					      .len = PAGE };
	}
	if (!expect(r, !ring_setup(e, NULL, &ring, 16), "%s: ring setup at a "
		    "guest-physical address failed", e->bdf))
		goto out;
	if (!expect(r, !ring_run(e, &ring, desc, ID_PAGES, st),
		    "%s: ring run failed", e->bdf))
		goto out;
	for (i = 0; i < ID_PAGES; i++) {
		expect(r, st[i] == RING_DONE, "ring entry %u: status %u", i,
		       st[i]);
		if (expect(r, !memcmp(p->src[i], p->dst[i], PAGE),
			   "%s: ring copy by GPA differs (entry %u)", e->bdf,
			   i))
			r->bytes_verified += PAGE;
	}
out:
	ring_teardown(e, NULL, &ring);
}

/* identity_vfio() - a VFIO domain still translates (no bypass). */
static void identity_vfio(struct result *r, struct eng *e)
{
	struct dmabuf a, b;
	struct ctr c;
	uint32_t st;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	if (!expect(r, !ctr_open(&c), "cannot open /dev/vfio/vfio"))
		return;
	if (attach_engine(r, &c, e))
		goto out;
	if (expect(r, !buf_alloc(&a, PAGE, PAGE) && !buf_alloc(&b, PAGE, PAGE)
		   && !buf_map(&c, &a, true) && !buf_map(&c, &b, true),
		   "VFIO buffers failed")) {
		roundtrip(r, e, &a, 0, &b, 0, 1024, g_opts->seed + 23);
		if (e->ours)
			expect(r, eng_to_ram(e, 0, IOVA_LIMIT - PAGE, 64, &st)
			       == -EIO, "%s: unmapped IOVA reachable in a VFIO "
			       "domain under passthrough", e->bdf);
	}
	buf_unmap(&c, &a);
	buf_unmap(&c, &b);
out:
	buf_free(&a);
	buf_free(&b);
	eng_close(e);
	ctr_close(&c);
}

/* sc_identity() - identity default domains: DMA to guest-physical. */
int sc_identity(struct result *r)
{
	struct eng e[MAX_ENGINES];
	struct idpages p;
	char type[32] = "?";
	int n, err;

	memset(&p, 0, sizeof(p));
	n = open_engines(r, e, 1);
	if (n < 0)
		return 0;
	/* The group exists once a driver bound (ACPI VIOT devices). */
	eng_bind_vfio(&e[0]);
	group_type(e[0].group, type, sizeof(type));
	res_kv(r, "domain", "%s", type);
	if (!expect(r, !strcmp(type, "identity"), "%s: group %d is %s, not "
		    "identity: boot with iommu.passthrough=1", e[0].bdf,
		    e[0].group, type))
		return 0;
	err = eng_open_sysfs(&e[0]);
	if (!expect(r, !err, "%s: sysfs open failed: %s", e[0].bdf,
		    strerror(-err)))
		goto out;
	res_kv(r, "engine", "%s", eng_kind(&e[0]));
	if (pick_pages(r, &p, e[0].ours ? ~0ull : EDU_DMA_LIMIT))
		goto out;
	identity_pages(r, &e[0], &p);
	if (e[0].ours)
		identity_ring(r, &e[0], &p);
	eng_close(&e[0]);
	if (n >= 2)
		identity_vfio(r, &e[1]);
out:
	eng_close(&e[0]);
	buf_free(&p.pool);
	return 0;
}

/* --- twocpu ----------------------------------------------------------- */

/*
 * The workers overlap by construction, not by timing: each keeps going
 * (past its own quota) until it has seen the other's operation counter move
 * while it was itself running, or the other has stopped.
 */
struct worker {
	struct eng *e;
	struct ctr c;
	struct worker *peer;
	int cpu;
	int ran_on;
	volatile unsigned ops;
	volatile int running;
	bool saw_peer;
	uint64_t t0, t1;
	struct result res;
};

/* worker_pin() - pin the calling thread to w->cpu; note where it runs. */
static void worker_pin(struct worker *w)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		res_fail(&w->res, "cannot pin to CPU %d", w->cpu);
	w->ran_on = sched_getcpu();
}

/* worker_loop() - verified roundtrips until quota and overlap are met. */
static void worker_loop(struct worker *w, struct dmabuf *a, struct dmabuf *b,
			uint32_t len)
{
	unsigned quota = w->e->ours ? 200 : 10, cap = quota * 100, seen;
	unsigned i;

	seen = w->peer->ops;
	for (i = 0; w->res.status == RES_PASS; i++) {
		if (roundtrip(&w->res, w->e, a, 0, b, 0, len,
			      (uint64_t)w->cpu << 32 | i))
			break;
		__atomic_add_fetch(&w->ops, 1, __ATOMIC_SEQ_CST);
		if (w->peer->ops != seen)
			w->saw_peer = true;
		if (i + 1 >= quota && (w->saw_peer || !w->peer->running))
			break;
		if (i + 1 >= cap) {
			res_fail(&w->res, "the other CPU made no progress in "
				 "%u operations", cap);
			break;
		}
	}
}

/* worker_main() - pinned, verified roundtrips on one engine. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct dmabuf a, b;
	uint32_t len = w->e->buf_size < 16384 ? w->e->buf_size : 16384;

	worker_pin(w);
	if (buf_alloc(&a, len, PAGE) || buf_alloc(&b, len, PAGE) ||
	    buf_map(&w->c, &a, false) || buf_map(&w->c, &b, true)) {
		res_fail(&w->res, "buffers failed");
	} else {
		w->t0 = now_ns();
		worker_loop(w, &a, &b, len);
		w->t1 = now_ns();
	}
	__atomic_store_n(&w->running, 0, __ATOMIC_SEQ_CST);
	buf_unmap(&w->c, &a);
	buf_unmap(&w->c, &b);
	buf_free(&a);
	buf_free(&b);
	return NULL;
}

/* twocpu_report() - merge the workers' results; check they interleaved. */
static void twocpu_report(struct result *r, struct worker *w)
{
	uint64_t t0 = w[0].t0 > w[1].t0 ? w[0].t0 : w[1].t0;
	uint64_t t1 = w[0].t1 < w[1].t1 ? w[0].t1 : w[1].t1;
	int i;

	for (i = 0; i < 2; i++) {
		r->checks += w[i].res.checks;
		r->bytes_verified += w[i].res.bytes_verified;
		if (w[i].res.status == RES_FAIL)
			res_fail(r, "cpu %d: %s", w[i].cpu, w[i].res.reason);
		expect(r, w[i].ran_on == w[i].cpu, "worker pinned to CPU %d "
		       "ran on %d", w[i].cpu, w[i].ran_on);
	}
	res_kv(r, "ops", "%u,%u", w[0].ops, w[1].ops);
	expect(r, w[0].saw_peer || w[1].saw_peer,
	       "neither worker saw the other make progress while running");
	res_kv(r, "overlap_ms", "%llu",
	       (unsigned long long)(t1 > t0 ? (t1 - t0) / 1000000 : 0));
}

/* twocpu_open() - both engines, each in its own container. */
static int twocpu_open(struct result *r, struct eng *e, struct worker *w)
{
	int i;

	for (i = 0; i < 2; i++) {
		w[i] = (struct worker){ .e = &e[i], .cpu = i, .c.fd = -1,
					.peer = &w[1 - i], .running = 1 };
		w[i].res.scenario = "twocpu-worker";
	}
	for (i = 0; i < 2; i++)
		if (!expect(r, !ctr_open(&w[i].c), "no /dev/vfio/vfio") ||
		    attach_engine(r, &w[i].c, &e[i]))
			return -1;
	return 0;
}

/* sc_twocpu() - two threads on two CPUs, each with its engine and domain. */
int sc_twocpu(struct result *r)
{
	struct eng e[MAX_ENGINES];
	struct worker w[2];
	pthread_t th[2];
	int i, started = 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(w, 0, sizeof(w));
	w[0].c.fd = w[1].c.fd = -1;
	res_kv(r, "cpus", "%ld", cpus);
	if (!expect(r, cpus >= 2, "%ld CPU online: boot with -smp 2", cpus) ||
	    open_engines(r, e, 2) < 0)
		return 0;
	if (twocpu_open(r, e, w))
		goto out;
	for (i = 0; i < 2; i++) {
		if (!pthread_create(&th[i], NULL, worker_main, &w[i]))
			started |= 1 << i;
		else
			w[i].running = 0;
	}
	for (i = 0; i < 2; i++)
		if (started & (1 << i))
			pthread_join(th[i], NULL);
	if (expect(r, started == 3, "could not start two threads"))
		twocpu_report(r, w);
out:
	for (i = 0; i < 2; i++) {
		eng_close(&e[i]);
		ctr_close(&w[i].c);
	}
	return 0;
}
