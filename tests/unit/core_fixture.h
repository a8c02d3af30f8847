/*
 * core_fixture.h - shared set-up for the translation-core unit tests.
 *
 * A fixture is a struct viommu_mem with two hva-backed RAM regions
 * (16 MiB at GPA 0 and 16 MiB at GPA 4 GiB, both calloc'd so the tests can
 * check host pointers and bytes directly), and a struct viommu_ctx on top
 * with a fault callback that records every fault and a log callback that
 * captures lines.  Options select limits, bypass and an allocator.  Small
 * helpers make endpoints and domains and snapshot domain state; struct env
 * adds endpoint 1 attached to a PAGING domain (tag 10), and struct evlog
 * records notifier events.
 *
 * Everything is static inline so each test program takes what it uses.
 */
#ifndef VIOMMU_CORE_FIXTURE_H
#define VIOMMU_CORE_FIXTURE_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <viommu/core.h>
#include <viommu/mem.h>

#define PAGE 4096ull
#define RAM0_GPA 0x0ull
#define RAM1_GPA 0x100000000ull
#define RAM_SIZE (16ull << 20)

/** struct fx_opts - what to vary in a fixture (NULL opts: defaults). */
struct fx_opts {
	struct viommu_limits limits;
	bool bypass;
	const struct viommu_allocator *alloc; /* ctx and mem allocator */
	bool one_region;                      /* only RAM0 */
};

/** struct fx - one fixture: memory, context, recorded faults and logs. */
struct fx {
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	uint8_t *ram0, *ram1;
	pthread_mutex_t lock; /* protects the records below */
	unsigned long nfaults;
	struct viommu_fault first_fault, last_fault;
	unsigned long nlog;
	char last_log[512];
};

/* fx_fault_cb() - the context's fault callback: count and keep a copy. */
static inline void fx_fault_cb(void *opaque, const struct viommu_fault *flt)
{
	struct fx *f = opaque;

	pthread_mutex_lock(&f->lock);
	if (f->nfaults == 0)
		f->first_fault = *flt;
	f->last_fault = *flt;
	f->nfaults++;
	pthread_mutex_unlock(&f->lock);
}

/* fx_log_cb() - capture the last log line. */
static inline void fx_log_cb(void *opaque, enum viommu_log_level level,
			     const char *line)
{
	struct fx *f = opaque;

	(void)level;
	pthread_mutex_lock(&f->lock);
	f->nlog++;
	snprintf(f->last_log, sizeof(f->last_log), "%s", line);
	pthread_mutex_unlock(&f->lock);
}

/* fx_faults() - number of faults delivered so far. */
static inline unsigned long fx_faults(struct fx *f)
{
	unsigned long n;

	pthread_mutex_lock(&f->lock);
	n = f->nfaults;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* fx_reset_faults() - forget recorded faults. */
static inline void fx_reset_faults(struct fx *f)
{
	pthread_mutex_lock(&f->lock);
	f->nfaults = 0;
	memset(&f->first_fault, 0, sizeof(f->first_fault));
	memset(&f->last_fault, 0, sizeof(f->last_fault));
	pthread_mutex_unlock(&f->lock);
}

/* fx_set_ram() - install the fixture's regions in f->mem. */
static inline int fx_set_ram(struct fx *f, bool one_region)
{
	struct viommu_mem_region r[2] = {
		{ .gpa = RAM0_GPA, .size = RAM_SIZE, .fd = -1,
		  .hva = f->ram0 },
		{ .gpa = RAM1_GPA, .size = RAM_SIZE, .fd = -1,
		  .hva = f->ram1 },
	};

	return viommu_mem_set_regions(f->mem, r, one_region ? 1 : 2);
}

/* fx_ctx_config() - the context configuration a fixture uses. */
static inline struct viommu_ctx_config fx_ctx_config(struct fx *f,
						     const struct fx_opts *o)
{
	struct viommu_ctx_config c = {
		.mem = f->mem,
		.log = { .fn = fx_log_cb, .opaque = f,
			 .level = VIOMMU_LOG_DEBUG },
		.fault = fx_fault_cb,
		.fault_opaque = f,
	};

	if (o) {
		c.limits = o->limits;
		c.bypass_unattached = o->bypass;
		if (o->alloc)
			c.allocator = *o->alloc;
	}
	return c;
}

/*
 * fx_init() - build the fixture.  Return: 0 or the failing call's errno
 * (the fixture is then torn down already).
 */
static inline void fx_fini(struct fx *f);
static inline int fx_init(struct fx *f, const struct fx_opts *o)
{
	struct viommu_mem_config mc = { 0 };
	struct viommu_ctx_config cc;
	int rc = -ENOMEM;

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->ram0 = calloc(1, RAM_SIZE);
	f->ram1 = calloc(1, RAM_SIZE);
	if (!f->ram0 || !f->ram1)
		goto fail;
	if (o && o->alloc)
		mc.allocator = *o->alloc;
	rc = viommu_mem_create(&mc, &f->mem);
	if (rc)
		goto fail;
	rc = fx_set_ram(f, o && o->one_region);
	if (rc)
		goto fail;
	cc = fx_ctx_config(f, o);
	rc = viommu_ctx_create(&cc, &f->ctx);
	if (rc)
		goto fail;
	return 0;
fail:
	fx_fini(f);
	return rc;
}

/* fx_fini() - destroy the context, memory and RAM buffers. */
static inline void fx_fini(struct fx *f)
{
	viommu_ctx_destroy(f->ctx);
	viommu_mem_destroy(f->mem);
	free(f->ram0);
	free(f->ram1);
	f->ctx = NULL;
	f->mem = NULL;
	f->ram0 = f->ram1 = NULL;
	pthread_mutex_destroy(&f->lock);
}

/* fx_hva() - where GPA @gpa lives in the fixture's buffers (or NULL). */
static inline void *fx_hva(struct fx *f, uint64_t gpa)
{
	/* Unsigned wrap makes one comparison enough. */
	if (gpa - RAM0_GPA < RAM_SIZE)
		return f->ram0 + (gpa - RAM0_GPA);
	if (f->ram1 && gpa - RAM1_GPA < RAM_SIZE)
		return f->ram1 + (gpa - RAM1_GPA);
	return NULL;
}

/* fx_ep() - create endpoint @id; NULL on failure. */
static inline struct viommu_endpoint *fx_ep(struct fx *f, uint32_t id)
{
	struct viommu_endpoint *ep = NULL;

	if (viommu_endpoint_create(f->ctx, id, &ep))
		return NULL;
	return ep;
}

/* fx_paging() - create a PAGING domain with @tag; NULL on failure. */
static inline struct viommu_domain *fx_paging(struct fx *f, uint64_t tag)
{
	struct viommu_domain_config c = { .kind = VIOMMU_DOMAIN_PAGING,
					  .tag = tag };
	struct viommu_domain *d = NULL;

	if (viommu_domain_create(f->ctx, &c, &d))
		return NULL;
	return d;
}

/* fx_info() - snapshot of @d (zeroed with kind 0xff on error). */
static inline struct viommu_domain_info fx_info(struct viommu_domain *d)
{
	struct viommu_domain_info i;

	memset(&i, 0, sizeof(i));
	if (viommu_domain_info(d, &i, sizeof(i)))
		i.kind = 0xff;
	return i;
}

/* fx_stats_ctx() - snapshot of @ctx's counters (zeroes on error). */
static inline struct viommu_ctx_stats fx_stats_ctx(struct viommu_ctx *ctx)
{
	struct viommu_ctx_stats s;

	memset(&s, 0, sizeof(s));
	viommu_ctx_stats(ctx, &s, sizeof(s));
	return s;
}

/* fx_stats() - snapshot of the fixture context's counters. */
static inline struct viommu_ctx_stats fx_stats(struct fx *f)
{
	return fx_stats_ctx(f->ctx);
}

/* fx_ep_domain() - the domain of @ep / @pasid (NULL if none or error). */
static inline struct viommu_domain *fx_ep_domain(struct viommu_endpoint *ep,
						 uint32_t pasid)
{
	struct viommu_domain *d = (struct viommu_domain *)(uintptr_t)1;

	if (viommu_endpoint_domain(ep, pasid, &d))
		return (struct viommu_domain *)(uintptr_t)1;
	return d;
}

/* A list of mappings collected with viommu_domain_for_each_mapping(). */
#define FX_MAX_COLLECT 64
struct fx_maplist {
	unsigned int n;
	struct viommu_mapping m[FX_MAX_COLLECT];
};

/* fx_collect_cb() - append one mapping. */
static inline int fx_collect_cb(void *opaque, const struct viommu_mapping *m)
{
	struct fx_maplist *l = opaque;

	if (l->n < FX_MAX_COLLECT)
		l->m[l->n] = *m;
	l->n++;
	return 0;
}

/* fx_collect() - every mapping of @d in [iova, last]; n = -1u on error. */
static inline struct fx_maplist fx_collect(struct viommu_domain *d,
					   uint64_t iova, uint64_t last)
{
	struct fx_maplist l;

	memset(&l, 0, sizeof(l));
	if (viommu_domain_for_each_mapping(d, iova, last, fx_collect_cb, &l))
		l.n = -1u;
	return l;
}

/*
 * fx_gpa_of() - translate (RID, read) and return the GPA, or ~0 on a
 * fault.  For quick "does this still translate to X" checks.
 */
static inline uint64_t fx_gpa_of(struct viommu_endpoint *ep, uint32_t pasid,
				 uint64_t iova, unsigned int access)
{
	struct viommu_xlate x;

	if (viommu_translate(ep, pasid, iova, 1, access, &x, NULL))
		return ~0ull;
	return x.gpa;
}

/* struct env - a fixture plus endpoint 1 attached to PAGING domain tag 10. */
struct env {
	struct fx f;
	struct viommu_endpoint *ep;
	struct viommu_domain *dom;
};

/* env_init() - build an env; 0 on success. */
static inline int env_init(struct env *e, const struct fx_opts *o)
{
	int rc = fx_init(&e->f, o);

	if (rc)
		return rc;
	e->ep = fx_ep(&e->f, 1);
	e->dom = fx_paging(&e->f, 10);
	if (!e->ep || !e->dom)
		return -1;
	return viommu_endpoint_attach(e->ep, VIOMMU_NO_PASID, e->dom);
}

/* Event recorder for notifier tests. */
#define EV_MAX 64
struct evlog {
	unsigned int n;
	struct viommu_event ev[EV_MAX];
};

/* ev_cb() - notifier callback: append @ev to the struct evlog. */
static inline void ev_cb(void *opaque, const struct viommu_event *ev)
{
	struct evlog *l = opaque;

	if (l->n < EV_MAX)
		l->ev[l->n] = *ev;
	l->n++;
}

/* ev_count() - events of @type recorded. */
static inline unsigned int ev_count(const struct evlog *l, uint32_t type)
{
	unsigned int c = 0;

	for (unsigned int i = 0; i < l->n && i < EV_MAX; i++)
		c += l->ev[i].type == type;
	return c;
}

/* ev_nth() - the @k-th event of @type, or NULL. */
static inline const struct viommu_event *
ev_nth(const struct evlog *l, uint32_t type, unsigned int k)
{
	for (unsigned int i = 0; i < l->n && i < EV_MAX; i++)
		if (l->ev[i].type == type && k-- == 0)
			return &l->ev[i];
	return NULL;
}

#endif /* VIOMMU_CORE_FIXTURE_H */
