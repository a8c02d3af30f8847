/*
 * core.c - `viommu-bench core`: micro-benchmark of the translation core.
 *
 *   viommu-bench core [--smoke] [--sizes N,N,...] [--runs N]
 *                     [--json FILE|-] [--help]
 *
 * For each size N (number of 4 KiB mappings in one PAGING domain) it
 * measures, with CLOCK_MONOTONIC around a loop of many calls:
 *  - map and unmap ns/op, IOVAs in ascending and in random order;
 *  - host bytes per mapping (viommu_domain_info.host_bytes / mappings);
 *  - translate ns/op on IOTLB hits (one page over and over; a working set
 *    of 64 pages that fits the IOTLB) and on misses (a sequential walk
 *    over all N mappings, so every page was evicted before it comes back,
 *    and a random walk), with the measured miss ratio from
 *    viommu_ctx_stats.iotlb_misses;
 *  - the same translations from 2 threads while a third thread maps and
 *    unmaps pages of a separate IOVA range of the same domain: translate
 *    ns/op per thread and map+unmap pairs per second.
 * Each figure is the median of --runs runs (5 by default).  The program
 * prints a table with the project's targets and PASS/MISS, and JSON with
 * --json.  It asserts nothing: it is a measuring tool, not a test.
 */
#include "common.h"
#include "opts.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE BENCH_PAGE
#define RAM_SIZE (16ull << 20) /* guest RAM the mappings point into */
#define MT_BASE (1ull << 40)   /* IOVA range of the mapper thread */
#define MT_PAGES 64
#define WS_PAGES 64            /* hit working set (IOTLB: 256 slots) */
#define RND_LEN (1u << 20)     /* random page indices for random walks */
#define MAX_SIZE (1u << 22)
#define MAX_SIZES 16
#define MAX_RESULTS 512
#define MAX_RUNS BENCH_MAX_RUNS

/* Which target a figure is held against. */
enum target {
	T_NONE,    /* reported only */
	T_HIT,     /* <= 10 ns */
	T_MISS,    /* <= 100 ns, at 1M mappings and more */
	T_MAP,     /* <= 200 ns */
	T_BYTES,   /* <= 64 B */
};

static const struct {
	double limit;
	const char *text;
} targets[] = {
	[T_NONE] = { 0, "" },
	[T_HIT] = { 10, "<= 10" },
	[T_MISS] = { 100, "<= 100 @1M" },
	[T_MAP] = { 200, "<= 200" },
	[T_BYTES] = { 64, "<= 64" },
};

struct opts {
	bool smoke;
	const char *json;
	uint32_t sizes[MAX_SIZES];
	int nsizes;
	int runs;
	uint64_t hit_ops, miss_ops; /* translations per run */
	double mt_seconds;          /* duration of one multi-thread run */
	uint32_t mt[4];             /* translator counts beside the mapper */
	int nmt;
};

struct result {
	uint32_t size;
	const char *name;  /* JSON key */
	const char *label; /* table text */
	const char *unit;
	struct figure fig; /* cpu_med: thread CPU time per op; < 0: n/a */
	double miss_ratio; /* translate rows; < 0 when not applicable */
	enum target target;
};

struct bench {
	const struct opts *o;
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_endpoint *ep;
	void *ram;
	uint32_t *order; /* random permutation of [0, size) */
	uint32_t *rnd;   /* RND_LEN random indices in [0, size) */
	struct result res[MAX_RESULTS];
	int nres;
	struct machine m;
};

/* ------------------------------------------------------------------ */
/* Helpers                                                            */

/* add_result() - record the median/min/max of @n samples. */
static struct result *add_result(struct bench *b, uint32_t size,
				 const char *name, const char *label,
				 const char *unit, enum target t, double *v,
				 int n)
{
	struct result *r;

	if (b->nres >= MAX_RESULTS)
		die("too many results");
	r = &b->res[b->nres++];
	r->fig = figure_of(v, NULL, n);
	r->size = size;
	r->name = name;
	r->label = label;
	r->unit = unit;
	r->target = t;
	r->miss_ratio = -1;
	return r;
}

/* status() - "PASS", "MISS" or "-" (no target at this size). */
static const char *status(const struct result *r)
{
	if (r->target == T_NONE ||
	    (r->target == T_MISS && r->size < 1000000))
		return "-";
	return r->fig.med <= targets[r->target].limit ? "PASS" : "MISS";
}

/* iova_of() / gpa_of() - where mapping @i lives and points. */
static uint64_t iova_of(uint32_t i)
{
	return (uint64_t)i * PAGE;
}

/* gpa_of() - see iova_of(). */
static uint64_t gpa_of(uint32_t i)
{
	return ((uint64_t)i * PAGE) % RAM_SIZE;
}

/* ------------------------------------------------------------------ */
/* Set-up                                                             */

/* setup_size() - guest memory, a context for @size mappings, one ep. */
static void setup_size(struct bench *b, uint32_t size)
{
	uint64_t s = 0x9e3779b97f4a7c15ull ^ size;
	int rc;

	bench_mem_ctx(b->ram, RAM_SIZE, size + MT_PAGES, &b->mem, &b->ctx);
	if ((rc = viommu_endpoint_create(b->ctx, 0x18, &b->ep)))
		die("context: %s", strerror(-rc));
	for (uint32_t i = 0; i < size; i++)
		b->order[i] = i;
	for (uint32_t i = size - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(rng(&s) % (i + 1)), t = b->order[i];

		b->order[i] = b->order[j];
		b->order[j] = t;
	}
	for (uint32_t i = 0; i < RND_LEN; i++)
		b->rnd[i] = (uint32_t)(rng(&s) % size);
}

/* teardown_size() - undo setup_size(). */
static void teardown_size(struct bench *b)
{
	viommu_ctx_destroy(b->ctx);
	viommu_mem_destroy(b->mem);
	b->ctx = NULL;
	b->mem = NULL;
	b->ep = NULL;
}

/* new_domain() - an empty PAGING domain. */
static struct viommu_domain *new_domain(struct bench *b)
{
	struct viommu_domain_config dc = { .kind = VIOMMU_DOMAIN_PAGING };
	struct viommu_domain *d;
	int rc = viommu_domain_create(b->ctx, &dc, &d);

	if (rc)
		die("domain_create: %s", strerror(-rc));
	return d;
}

/* ------------------------------------------------------------------ */
/* Map and unmap                                                      */

/*
 * fill() - map mappings 0..size-1 in @order (NULL: ascending); returns
 * the time taken.
 */
static struct span fill(struct viommu_domain *d, uint32_t size,
			const uint32_t *order)
{
	struct span t0 = span_start();

	for (uint32_t k = 0; k < size; k++) {
		uint32_t i = order ? order[k] : k;
		int rc = viommu_domain_map(d, iova_of(i), iova_of(i) + PAGE - 1,
					   gpa_of(i),
					   VIOMMU_READ | VIOMMU_WRITE);

		if (rc)
			die("map %u: %s", i, strerror(-rc));
	}
	return span_end(t0);
}

/* drain() - unmap every mapping one page at a time; the time taken. */
static struct span drain(struct viommu_domain *d, uint32_t size,
			 const uint32_t *order)
{
	struct span t0 = span_start();

	for (uint32_t k = 0; k < size; k++) {
		uint32_t i = order ? order[k] : k;
		int rc = viommu_domain_unmap(d, iova_of(i),
					     iova_of(i) + PAGE - 1, NULL);

		if (rc)
			die("unmap %u: %s", i, strerror(-rc));
	}
	return span_end(t0);
}

/* bench_map() - map/unmap ns/op and bytes per mapping, one order. */
static void bench_map(struct bench *b, uint32_t size, bool random)
{
	double vmap[MAX_RUNS], vunmap[MAX_RUNS], vbytes[MAX_RUNS];
	double cmap[MAX_RUNS], cunmap[MAX_RUNS];
	const uint32_t *order = random ? b->order : NULL;
	int runs = b->o->runs;

	for (int r = 0; r < runs; r++) {
		struct viommu_domain *d = new_domain(b);
		struct viommu_domain_info info;
		struct span t = fill(d, size, order);

		vmap[r] = (double)t.wall / size;
		cmap[r] = (double)t.cpu / size;
		if (viommu_domain_info(d, &info, sizeof(info)) || info.mappings != size)
			die("domain_info after fill");
		vbytes[r] = (double)info.host_bytes / size;
		t = drain(d, size, order);
		vunmap[r] = (double)t.wall / size;
		cunmap[r] = (double)t.cpu / size;
		if (viommu_domain_destroy(d))
			die("domain_destroy");
	}
	add_result(b, size, random ? "map_random" : "map_ascending",
		   random ? "map, random IOVA order" : "map, ascending IOVA",
		   "ns/op", T_MAP, vmap, runs)->fig.cpu_med =
		median(cmap, runs);
	add_result(b, size, random ? "unmap_random" : "unmap_ascending",
		   random ? "unmap, random IOVA order"
			  : "unmap, ascending IOVA",
		   "ns/op", T_MAP, vunmap, runs)->fig.cpu_med = median(cunmap,
								   runs);
	add_result(b, size, random ? "bytes_per_mapping_random"
				   : "bytes_per_mapping_ascending",
		   random ? "host bytes/mapping, random fill"
			  : "host bytes/mapping, ascending fill",
		   "B", T_BYTES, vbytes, runs);
}

/* ------------------------------------------------------------------ */
/* Translation                                                        */

enum pattern {
	P_SAME,  /* one page over and over */
	P_WS,    /* 64 pages round robin: fits the IOTLB */
	P_SEQ,   /* every mapping in turn: each page evicted before reuse */
	P_RAND,  /* random mapping each time */
};

/* page_at() - the mapping index the @k-th translation of @p uses. */
static inline uint32_t page_at(const struct bench *b, enum pattern p,
			       uint32_t size, uint64_t k)
{
	switch (p) {
	case P_SAME:
		return 0;
	case P_WS:
		return (uint32_t)(k % (size < WS_PAGES ? size : WS_PAGES));
	case P_SEQ:
		return (uint32_t)(k % size);
	default:
		return b->rnd[k % RND_LEN];
	}
}

/*
 * xlate_loop() - @ops translations of pattern @p (stop early when *@stop
 * becomes true); returns the number done, adds the GPAs to *@sink.
 */
static uint64_t xlate_loop(const struct bench *b, enum pattern p,
			   uint32_t size, uint64_t ops, const int *stop,
			   uint64_t *sink, uint64_t k0)
{
	uint64_t k, acc = 0;

	for (k = 0; k < ops; k++) {
		struct viommu_xlate x;
		uint32_t i = page_at(b, p, size, k0 + k);

		if (viommu_translate(b->ep, VIOMMU_NO_PASID,
				     iova_of(i) + 0x40, 64, VIOMMU_READ, &x,
				     NULL))
			die("translate of mapping %u failed", i);
		acc += x.gpa;
		if (stop && !(k & 1023) && __atomic_load_n(stop,
							   __ATOMIC_RELAXED))
			break;
	}
	*sink += acc;
	return k;
}

/* iotlb_misses() - the context's slow-path counter. */
static uint64_t iotlb_misses(const struct bench *b)
{
	struct viommu_ctx_stats st;

	if (viommu_ctx_stats(b->ctx, &st, sizeof(st)))
		die("ctx_stats");
	return st.iotlb_misses;
}

/* bench_xlate() - single-thread translate ns/op for pattern @p. */
static void bench_xlate(struct bench *b, uint32_t size, enum pattern p)
{
	static const char *const names[] = { "translate_hit_same_page",
		"translate_hit_working_set", "translate_miss_sequential",
		"translate_miss_random" };
	static const char *const labels[] = {
		"translate, IOTLB hit, same page",
		"translate, IOTLB hit, 64-page working set",
		"translate, miss, sequential walk",
		"translate, miss, random walk" };
	uint64_t ops = p <= P_WS ? b->o->hit_ops : b->o->miss_ops, sink = 0;
	double v[MAX_RUNS], c[MAX_RUNS], ratio[MAX_RUNS];
	struct result *r;

	if (p == P_SEQ && ops < size)
		ops = size;
	xlate_loop(b, p, size, p <= P_WS ? WS_PAGES : 0, NULL, &sink, 0);
	for (int k = 0; k < b->o->runs; k++) {
		uint64_t m0 = iotlb_misses(b);
		struct span t = span_start();

		xlate_loop(b, p, size, ops, NULL, &sink, 0);
		t = span_end(t);
		v[k] = (double)t.wall / ops;
		c[k] = (double)t.cpu / ops;
		ratio[k] = (double)(iotlb_misses(b) - m0) / ops;
	}
	r = add_result(b, size, names[p], labels[p], "ns/op",
		       p <= P_WS ? T_HIT : T_MISS, v, b->o->runs);
	r->miss_ratio = median(ratio, b->o->runs);
	r->fig.cpu_med = median(c, b->o->runs);
	if (sink == 1)
		putchar(' '); /* keep the loop's results alive */
}

/* ------------------------------------------------------------------ */
/* Translators and a mapper                                           */

#define MT_MAX 4 /* translating threads at most */

struct mt {
	struct bench *b;
	struct viommu_domain *dom;
	uint32_t size;
	enum pattern p;
	uint32_t nthreads;
	pthread_barrier_t start;
	int stop;
	/* outputs */
	uint64_t ops[MT_MAX], pairs, misses;
	struct span t[MT_MAX], mapper_t;
};

struct mt_arg {
	struct mt *mt;
	int idx;
};

/* translator() - translate until told to stop; time it. */
static void *translator(void *opaque)
{
	struct mt_arg *a = opaque;
	struct mt *mt = a->mt;
	uint64_t sink = 0;
	struct span t0;

	pthread_barrier_wait(&mt->start);
	t0 = span_start();
	/* Each thread walks from its own offset (its own pages). */
	mt->ops[a->idx] = xlate_loop(mt->b, mt->p, mt->size, UINT64_MAX,
				     &mt->stop, &sink,
				     (uint64_t)a->idx * (RND_LEN / MT_MAX +
							 mt->size / 3 + 7));
	mt->t[a->idx] = span_end(t0);
	return (void *)(uintptr_t)(sink == 1);
}

/* mapper() - map and unmap pages of a separate range until stopped. */
static void *mapper(void *opaque)
{
	struct mt *mt = opaque;
	struct span t0;
	uint64_t n = 0;

	pthread_barrier_wait(&mt->start);
	t0 = span_start();
	while (!__atomic_load_n(&mt->stop, __ATOMIC_RELAXED)) {
		uint64_t iova = MT_BASE + (n % MT_PAGES) * PAGE;

		if (viommu_domain_map(mt->dom, iova, iova + PAGE - 1, 0,
				      VIOMMU_READ) ||
		    viommu_domain_unmap(mt->dom, iova, iova + PAGE - 1, NULL))
			die("mapper thread: map/unmap failed");
		n++;
	}
	mt->mapper_t = span_end(t0);
	mt->pairs = n;
	return NULL;
}

/* mt_run() - one run: mt->nthreads translators + 1 mapper. */
static void mt_run(struct mt *mt)
{
	struct timespec d = { 0, 0 };
	struct mt_arg args[MT_MAX];
	pthread_t th[MT_MAX + 1];
	uint32_t n = mt->nthreads;
	uint64_t m0;

	mt->stop = 0;
	d.tv_sec = (time_t)mt->b->o->mt_seconds;
	d.tv_nsec = (long)((mt->b->o->mt_seconds - (double)d.tv_sec) * 1e9);
	if (pthread_barrier_init(&mt->start, NULL, n + 2))
		die("pthread_barrier_init");
	for (uint32_t i = 0; i < n; i++) {
		args[i] = (struct mt_arg){ mt, (int)i };
		if (pthread_create(&th[i], NULL, translator, &args[i]))
			die("pthread_create");
	}
	if (pthread_create(&th[n], NULL, mapper, mt))
		die("pthread_create");
	m0 = iotlb_misses(mt->b);
	pthread_barrier_wait(&mt->start);
	nanosleep(&d, NULL);
	__atomic_store_n(&mt->stop, 1, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i <= n; i++)
		pthread_join(th[i], NULL);
	mt->misses = iotlb_misses(mt->b) - m0;
	pthread_barrier_destroy(&mt->start);
}

/*
 * mt_name() - "mt<T>_<what>" (@label false) or "<T>+1 threads: <what>",
 * kept for the program's life.
 */
static const char *mt_name(bool label, uint32_t t, const char *what)
{
	char buf[96];
	char *s;

	if (label)
		snprintf(buf, sizeof(buf), "%u+1 threads: %s", t, what);
	else
		snprintf(buf, sizeof(buf), "mt%u_%s", t, what);
	s = strdup(buf);
	if (!s)
		die("out of memory");
	return s;
}

/*
 * bench_mt() - @nthreads translators (pattern @p) beside a mapper: mean
 * translate ns/op over the threads (wall, thread CPU), the translators'
 * miss ratio, and the mapper's map+unmap pairs/s.
 */
static void bench_mt(struct bench *b, struct viommu_domain *dom,
		     uint32_t size, enum pattern p, uint32_t nthreads)
{
	double v[MAX_RUNS], c[MAX_RUNS], vp[MAX_RUNS], mr[MAX_RUNS];
	double cp[MAX_RUNS];
	struct mt mt = { .b = b, .dom = dom, .size = size, .p = p,
			 .nthreads = nthreads };
	bool hit = p == P_WS;
	struct result *res;

	for (int r = 0; r < b->o->runs; r++) {
		double ops = 0;

		mt_run(&mt);
		v[r] = c[r] = 0;
		for (uint32_t i = 0; i < nthreads; i++) {
			double n = (double)(mt.ops[i] ? mt.ops[i] : 1);

			v[r] += (double)mt.t[i].wall / n / nthreads;
			c[r] += (double)mt.t[i].cpu / n / nthreads;
			ops += n;
		}
		mr[r] = (double)mt.misses / ops;
		vp[r] = (double)mt.pairs * 1e9 / (double)mt.mapper_t.wall;
		cp[r] = (double)mt.mapper_t.cpu / (double)(mt.pairs ? mt.pairs
								    : 1);
	}
	res = add_result(b, size,
			 mt_name(false, nthreads, hit ? "translate_hit"
						      : "translate_random"),
			 mt_name(true, nthreads,
				 hit ? "translate hit (64 pages), per thread"
				     : "translate random walk, per thread"),
			 "ns/op", T_NONE, v, b->o->runs);
	res->fig.cpu_med = median(c, b->o->runs);
	res->miss_ratio = median(mr, b->o->runs);
	/* cpu: the mapper's thread CPU ns per map+unmap pair */
	add_result(b, size,
		   mt_name(false, nthreads, hit ? "map_unmap_pairs_per_s_hit"
						: "map_unmap_pairs_per_s_random"),
		   mt_name(true, nthreads, hit ? "mapper pairs/s (vs hits)"
					       : "mapper pairs/s (vs walk)"),
		   "pairs/s", T_NONE, vp, b->o->runs)->fig.cpu_med =
		median(cp, b->o->runs);
}

/* bench_size() - every measurement at @size mappings. */
static void bench_size(struct bench *b, uint32_t size)
{
	struct viommu_domain *d;
	int rc;

	setup_size(b, size);
	bench_map(b, size, false);
	bench_map(b, size, true);
	d = new_domain(b);
	fill(d, size, NULL);
	if ((rc = viommu_endpoint_attach(b->ep, VIOMMU_NO_PASID, d)))
		die("attach: %s", strerror(-rc));
	for (int p = P_SAME; p <= P_RAND; p++)
		bench_xlate(b, size, (enum pattern)p);
	for (int i = 0; i < b->o->nmt; i++)
		bench_mt(b, d, size, P_WS, b->o->mt[i]);
	for (int i = 0; i < b->o->nmt; i++)
		bench_mt(b, d, size, P_RAND, b->o->mt[i]);
	teardown_size(b);
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

/* print_table() - the human-readable report. */
static void print_table(const struct bench *b, FILE *f)
{
	int pass = 0, miss = 0;
	uint32_t size = 0;

	report_head(f, "core", b->o->smoke ? SMOKE_TINY : NULL, &b->m);
	fprintf(f, "method:  median of %d runs, CLOCK_MONOTONIC; 4 KiB "
		"mappings; IOTLB 256 entries;\n         cpu = median "
		"thread CPU time per op (CLOCK_THREAD_CPUTIME_ID), for\n"
		"         reference (on a pairs/s row: the mapper's CPU ns per "
		"pair);\n         miss ratio = slow-path translations / "
		"translations\n", b->o->runs);
	for (int i = 0; i < b->nres; i++) {
		const struct result *r = &b->res[i];
		struct figure_text t = figure_text(&r->fig);
		char extra[32] = "";
		const char *st = status(r);

		if (r->size != size) {
			size = r->size;
			fprintf(f, "\n%u mappings\n  %-50s %10s %10s %10s "
				"%10s %-8s %-11s %s\n", size, "measurement",
				"median", "min", "max", "cpu", "unit",
				"target", "result");
		}
		if (r->fig.cpu_med < 0)
			t.cpu[0] = 0; /* this table leaves it blank */
		if (r->miss_ratio >= 0)
			snprintf(extra, sizeof(extra), "  (miss ratio %.2f)",
				 r->miss_ratio);
		fprintf(f, "  %-50s %10s %10s %10s %10s %-8s %-11s %s%s\n",
			r->label, t.med, t.min, t.max, t.cpu, r->unit,
			targets[r->target].text, st, extra);
		pass += !strcmp(st, "PASS");
		miss += !strcmp(st, "MISS");
	}
	fprintf(f, "\ntargets: %d PASS, %d MISS (translate-miss target "
		"applies at 1M mappings and above)\n", pass, miss);
}

/* print_json() - the machine-readable report. */
static void print_json(const struct bench *b, FILE *f)
{
	json_header(f, "core", b->o->smoke, b->o->runs, &b->m);
	fprintf(f, ",\n  \"results\": [");
	for (int i = 0; i < b->nres; i++) {
		const struct result *r = &b->res[i];
		const char *st = status(r);

		fprintf(f, "%s\n    {\"size\": %u, \"name\": ", i ? "," : "",
			r->size);
		json_str(f, r->name);
		fprintf(f, ", \"unit\": ");
		json_str(f, r->unit);
		figure_json(f, &r->fig);
		if (r->miss_ratio >= 0)
			fprintf(f, ", \"miss_ratio\": %.4f", r->miss_ratio);
		if (r->target != T_NONE)
			fprintf(f, ", \"target_max\": %.0f",
				targets[r->target].limit);
		if (strcmp(st, "-"))
			fprintf(f, ", \"status\": \"%s\"", st);
		fputc('}', f);
	}
	fprintf(f, "\n  ]\n}\n");
}

/* ------------------------------------------------------------------ */
/* Options                                                            */

/* What `viommu-bench core --help` says the subcommand does. */
static const char about[] =
"Measures the translation core: map/unmap ns/op (ascending and random "
"IOVA order), host bytes per mapping, translate ns/op on IOTLB hits and "
"misses, and translate ns/op per thread with 1, 2 and 4 translating "
"threads while another maps and unmaps.  Every figure is the median of N "
"runs.";

/* parse_opts() - the command line (after "core") into @o. */
static void parse_opts(struct opts *o, int argc, char **argv)
{
	struct bopt t[] = {
		{ BOPT_SMOKE(&o->smoke), .help = "tiny sizes and short loops "
		  "(about a second); checks that the program works, numbers "
		  "are not meaningful" },
		{ .name = "--sizes", .type = BOPT_LIST, .dest = o->sizes,
		  .count = &o->nsizes, .nmax = MAX_SIZES, .arg = "LIST",
		  .min = 1, .max = MAX_SIZE,
		  .help = "comma-separated mapping counts (default "
			  "1000,100000,1000000; with --smoke 1000)" },
		{ BOPT_RUNS(&o->runs, MAX_RUNS),
		  .help = "runs per figure (default 5; with --smoke 1)" },
		{ .name = "--threads", .type = BOPT_LIST, .dest = o->mt,
		  .count = &o->nmt, .nmax = 4, .arg = "LIST", .min = 1,
		  .max = MT_MAX,
		  .help = "translating threads beside the mapper (default "
			  "1,2,4)" },
		{ BOPT_JSON(&o->json), .help = BOPT_JSON_HELP },
		{ 0 }
	};

	bopts_parse(t, "core", about, argc, argv);
	if (!bopt_given(t, "--sizes")) {
		static const uint32_t def[] = { 1000, 100000, 1000000 };

		o->nsizes = o->smoke ? 1 : 3;
		memcpy(o->sizes, def, sizeof(def));
	}
	if (!bopt_given(t, "--runs"))
		o->runs = o->smoke ? 1 : 5;
	o->hit_ops = o->smoke ? 100000 : 10000000;
	o->miss_ops = o->smoke ? 20000 : 2000000;
	o->mt_seconds = o->smoke ? 0.05 : 0.3;
	if (!bopt_given(t, "--threads")) {
		o->nmt = 3;
		o->mt[0] = 1;
		o->mt[1] = 2;
		o->mt[2] = 4;
	}
}

/* cmd_core() - `viommu-bench core`: argv[0] is "core". */
int cmd_core(int argc, char **argv)
{
	static struct bench b;
	struct opts o = { 0 };
	struct outputs out;
	uint32_t maxsize = 0;

	parse_opts(&o, argc, argv);
	b.o = &o;
	for (int i = 0; i < o.nsizes; i++)
		if (o.sizes[i] > maxsize)
			maxsize = o.sizes[i];
	outputs_open(&out, o.json);
	b.ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b.order = malloc((size_t)maxsize * sizeof(*b.order));
	b.rnd = malloc(RND_LEN * sizeof(*b.rnd));
	if (b.ram == MAP_FAILED || !b.order || !b.rnd)
		die("out of memory");
	machine_info(&b.m);
	for (int i = 0; i < o.nsizes; i++)
		bench_size(&b, o.sizes[i]);
	REPORT_FINISH(&out, &b.m, print_table, print_json, &b);
	munmap(b.ram, RAM_SIZE);
	free(b.order);
	free(b.rnd);
	return 0;
}
