/*
 * scaling.c - `viommu-bench scaling`: how viommu_translate() scales with
 * the number of mappings in the domain and with the number of threads.
 *
 * For each size N (default 1k, 4k, 16k, 64k, 256k, 1M mappings of 4 KiB,
 * mapping i at IOVA i * 4 KiB, filled in ascending order) one endpoint is
 * attached to the domain, and T threads (default 1 and 2) translate 64
 * bytes for READ through it at the same time, each with its own pattern
 * offset:
 *  - hit:  a 64-page working set, round robin (fits the 256-entry IOTLB);
 *  - seq:  every mapping in turn (N > 256: each page evicted before it
 *          comes back, so every call takes the slow path);
 *  - rand: a fixed-seed random mapping each call.
 * With --mapper a further thread maps and unmaps one page at a time in a
 * separate IOVA range of the same domain for as long as the translators
 * run (its map+unmap pairs per second are reported too), so the figures
 * show what concurrent map traffic costs the translators and the other
 * way round.
 * Per thread: wall-clock ns/op (CLOCK_MONOTONIC) and thread-CPU ns/op
 * (CLOCK_THREAD_CPUTIME_ID); the table shows the mean over the threads,
 * the aggregate rate (T * ops / the slowest thread's wall time) and the
 * measured miss ratio (viommu_ctx_stats.iotlb_misses / calls).  Each figure
 * is the median of --runs runs; every run measures every pattern and
 * thread count in turn.
 */
#include "common.h"
#include "opts.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define RAM_SIZE (16ull << 20) /* guest RAM the mappings point into */
#define WS_PAGES 64
#define RND_LEN (1u << 20)
#define MAX_SIZES 12
#define MAX_SIZE (1u << 22)
#define MAX_THREADS 8
#define MAPPER_BASE (1ull << 40) /* IOVA range of the --mapper thread */
#define MAPPER_PAGES 64

enum pattern { P_HIT, P_SEQ, P_RAND, P_COUNT };

static const char *const pat_names[P_COUNT] = { "hit", "seq", "rand" };
static const char *const pat_text[P_COUNT] = {
	"IOTLB hit, 64-page working set",
	"miss, sequential walk over all mappings",
	"miss, random walk",
};

struct opts {
	bool smoke;
	const char *json;
	uint32_t sizes[MAX_SIZES];
	int nsizes;
	uint32_t threads[MAX_THREADS];
	int nthreads;
	uint32_t patterns;
	uint64_t hit_ops, miss_ops; /* per thread per run */
	int runs;
	bool mapper; /* a map/unmap thread beside the translators */
};

/* One figure: size x pattern x thread count. */
struct res {
	uint32_t size;
	enum pattern p;
	uint32_t threads;
	double ns[BENCH_MAX_RUNS], cpu[BENCH_MAX_RUNS];
	double mops[BENCH_MAX_RUNS], miss[BENCH_MAX_RUNS];
	double pairs[BENCH_MAX_RUNS]; /* mapper map+unmap pairs/s */
	double m_ns, min_ns, max_ns, m_cpu, m_mops, m_miss, m_pairs;
};

struct scaling {
	struct opts o;
	void *ram;
	uint32_t *rnd; /* random draws in [0, 2^32), reduced mod N */
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_endpoint *ep;
	struct viommu_domain *dom;
	struct res *res;
	int nres;
	struct machine m;
};

/* Work of one thread. */
struct worker {
	struct scaling *b;
	pthread_barrier_t *start;
	uint32_t size;
	enum pattern p;
	uint64_t ops, offset;
	struct span t; /* output */
	uint64_t sink;
};

/* ------------------------------------------------------------------ */
/* Translation loop                                                   */

/* page_at() - the mapping the @k-th call of a worker translates. */
static inline uint32_t page_at(const struct worker *w, uint64_t k)
{
	uint64_t j = k + w->offset;

	switch (w->p) {
	case P_HIT:
		return (uint32_t)(j % (w->size < WS_PAGES ? w->size
							  : WS_PAGES));
	case P_SEQ:
		return (uint32_t)(j % w->size);
	default:
		return w->b->rnd[j % RND_LEN] % w->size;
	}
}

/* worker_fn() - wait for the others, then translate and time it. */
static void *worker_fn(void *opaque)
{
	struct worker *w = opaque;
	uint64_t acc = 0;
	struct span t;

	pthread_barrier_wait(w->start);
	t = span_start();
	for (uint64_t k = 0; k < w->ops; k++) {
		struct viommu_xlate x;
		uint64_t iova = (uint64_t)page_at(w, k) * BENCH_PAGE + 0x40;

		if (viommu_translate(w->b->ep, VIOMMU_NO_PASID, iova, 64,
				     VIOMMU_READ, &x, NULL))
			die("translate of 0x%llx failed",
			    (unsigned long long)iova);
		acc += x.gpa;
	}
	w->t = span_end(t);
	w->sink = acc;
	return NULL;
}

/* Work of the --mapper thread. */
struct mapper {
	struct scaling *b;
	pthread_barrier_t *start;
	int stop;
	uint64_t pairs; /* output */
	struct span t;
};

/* mapper_fn() - map and unmap pages of its own range until stopped. */
static void *mapper_fn(void *opaque)
{
	struct mapper *m = opaque;
	uint64_t n = 0;
	struct span t;

	pthread_barrier_wait(m->start);
	t = span_start();
	while (!__atomic_load_n(&m->stop, __ATOMIC_RELAXED)) {
		uint64_t iova = MAPPER_BASE + (n % MAPPER_PAGES) * BENCH_PAGE;

		if (viommu_domain_map(m->b->dom, iova, iova + BENCH_PAGE - 1,
				      0, VIOMMU_READ) ||
		    viommu_domain_unmap(m->b->dom, iova,
					iova + BENCH_PAGE - 1, NULL))
			die("mapper: map/unmap failed");
		n++;
	}
	m->t = span_end(t);
	m->pairs = n;
	return NULL;
}

/* iotlb_misses() - the context's slow-path counter. */
static uint64_t iotlb_misses(struct scaling *b)
{
	struct viommu_ctx_stats st;

	if (viommu_ctx_stats(b->ctx, &st, sizeof(st)))
		die("ctx_stats");
	return st.iotlb_misses;
}

/* measure() - one run of @r: its threads translate together. */
static void measure(struct scaling *b, struct res *r, int run)
{
	struct worker w[MAX_THREADS];
	pthread_t th[MAX_THREADS], mth;
	pthread_barrier_t start;
	struct mapper mp = { .b = b, .start = &start };
	uint64_t ops = r->p == P_HIT ? b->o.hit_ops : b->o.miss_ops;
	uint64_t m0, max_wall = 0;
	double ns = 0, cpu = 0;

	if (r->p == P_SEQ && ops < r->size)
		ops = r->size;
	if (pthread_barrier_init(&start, NULL, r->threads + b->o.mapper))
		die("pthread_barrier_init");
	if (b->o.mapper && pthread_create(&mth, NULL, mapper_fn, &mp))
		die("pthread_create");
	m0 = iotlb_misses(b);
	for (uint32_t k = 0; k < r->threads; k++) {
		w[k] = (struct worker){ .b = b, .start = &start,
					.size = r->size, .p = r->p,
					.ops = ops,
					.offset = k * (RND_LEN / MAX_THREADS +
						       r->size / 2 + 7) };
		if (pthread_create(&th[k], NULL, worker_fn, &w[k]))
			die("pthread_create");
	}
	for (uint32_t k = 0; k < r->threads; k++) {
		pthread_join(th[k], NULL);
		ns += (double)w[k].t.wall / ops;
		cpu += (double)w[k].t.cpu / ops;
		if (w[k].t.wall > max_wall)
			max_wall = w[k].t.wall;
	}
	r->pairs[run] = 0;
	if (b->o.mapper) {
		__atomic_store_n(&mp.stop, 1, __ATOMIC_RELAXED);
		pthread_join(mth, NULL);
		r->pairs[run] = (double)mp.pairs * 1e9 / (double)mp.t.wall;
	}
	pthread_barrier_destroy(&start);
	r->ns[run] = ns / r->threads;
	r->cpu[run] = cpu / r->threads;
	r->mops[run] = (double)ops * r->threads * 1e3 / (double)max_wall;
	r->miss[run] = (double)(iotlb_misses(b) - m0) /
		       ((double)ops * r->threads);
}

/* ------------------------------------------------------------------ */
/* Sizes                                                              */

/* setup_size() - a context with @size ascending mappings, ep attached. */
static void setup_size(struct scaling *b, uint32_t size)
{
	struct viommu_domain_config dc = { .kind = VIOMMU_DOMAIN_PAGING };
	struct viommu_domain *d;
	int rc;

	bench_mem_ctx(b->ram, RAM_SIZE, size + MAPPER_PAGES, &b->mem, &b->ctx);
	if ((rc = viommu_endpoint_create(b->ctx, 1, &b->ep)) ||
	    (rc = viommu_domain_create(b->ctx, &dc, &d)))
		die("context: %s", strerror(-rc));
	for (uint32_t i = 0; i < size && !rc; i++) {
		uint64_t iova = (uint64_t)i * BENCH_PAGE;

		rc = viommu_domain_map(d, iova, iova + BENCH_PAGE - 1,
				       iova % RAM_SIZE, VIOMMU_READ);
	}
	if (rc || (rc = viommu_endpoint_attach(b->ep, VIOMMU_NO_PASID, d)))
		die("fill %u mappings: %s", size, strerror(-rc));
	b->dom = d;
}

/* teardown_size() - undo setup_size(). */
static void teardown_size(struct scaling *b)
{
	viommu_ctx_destroy(b->ctx);
	viommu_mem_destroy(b->mem);
	b->ctx = NULL;
	b->mem = NULL;
	b->ep = NULL;
}

/* bench_size() - every pattern and thread count at @size, all runs. */
static void bench_size(struct scaling *b, uint32_t size)
{
	int first = b->nres;

	for (int p = 0; p < P_COUNT; p++) {
		if (!(b->o.patterns & (1u << p)))
			continue;
		for (int t = 0; t < b->o.nthreads; t++) {
			struct res *r = &b->res[b->nres++];

			r->size = size;
			r->p = (enum pattern)p;
			r->threads = b->o.threads[t];
		}
	}
	setup_size(b, size);
	for (int run = 0; run < b->o.runs; run++)
		for (int k = first; k < b->nres; k++)
			measure(b, &b->res[k], run);
	teardown_size(b);
	for (int k = first; k < b->nres; k++) {
		struct res *r = &b->res[k];
		int n = b->o.runs;

		r->m_ns = median(r->ns, n);
		r->min_ns = r->ns[0];
		r->max_ns = r->ns[n - 1];
		r->m_cpu = median(r->cpu, n);
		r->m_mops = median(r->mops, n);
		r->m_miss = median(r->miss, n);
		r->m_pairs = median(r->pairs, n);
	}
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

/* find() - the figure of (@size, @p, @threads), or NULL. */
static const struct res *find(const struct scaling *b, uint32_t size,
			      enum pattern p, uint32_t threads)
{
	for (int k = 0; k < b->nres; k++)
		if (b->res[k].size == size && b->res[k].p == p &&
		    b->res[k].threads == threads)
			return &b->res[k];
	return NULL;
}

/* print_block() - one pattern: rows per thread count, columns sizes. */
static void print_block(const struct scaling *b, enum pattern p, FILE *f)
{
	fprintf(f, "\n%s: ns per translate, wall (thread CPU)\n  %-12s",
		pat_text[p], "threads");
	for (int s = 0; s < b->o.nsizes; s++)
		fprintf(f, " %15u", b->o.sizes[s]);
	fputc('\n', f);
	for (int t = 0; t < b->o.nthreads; t++) {
		fprintf(f, "  %-12u", b->o.threads[t]);
		for (int s = 0; s < b->o.nsizes; s++) {
			const struct res *r = find(b, b->o.sizes[s], p,
						   b->o.threads[t]);
			char cell[40];

			snprintf(cell, sizeof(cell), "%.1f (%.1f)", r->m_ns,
				 r->m_cpu);
			fprintf(f, " %15s", cell);
		}
		fprintf(f, "\n  %-12s", "  Mops/s");
		for (int s = 0; s < b->o.nsizes; s++)
			fprintf(f, " %15.2f", find(b, b->o.sizes[s], p,
						   b->o.threads[t])->m_mops);
		fprintf(f, "\n  %-12s", "  miss ratio");
		for (int s = 0; s < b->o.nsizes; s++)
			fprintf(f, " %15.2f", find(b, b->o.sizes[s], p,
						   b->o.threads[t])->m_miss);
		if (b->o.mapper) {
			fprintf(f, "\n  %-12s", "  mapper k/s");
			for (int s = 0; s < b->o.nsizes; s++)
				fprintf(f, " %15.0f",
					find(b, b->o.sizes[s], p,
					     b->o.threads[t])->m_pairs / 1e3);
		}
		fputc('\n', f);
	}
}

/* print_table() - the human-readable report. */
static void print_table(const struct scaling *b, FILE *f)
{
	report_head(f, "scaling", b->o.smoke ? SMOKE_NOTE : NULL, &b->m);
	fprintf(f, "method:  viommu_translate() of 64 B for READ, 4 KiB "
		"mappings filled in ascending\n         order; %llu calls "
		"per thread (hit), %llu (misses; at least N for seq);\n"
		"         median of %d runs; per-thread figures averaged over "
		"the threads;\n         Mops/s = all calls / slowest "
		"thread's wall time\n%s",
		(unsigned long long)b->o.hit_ops,
		(unsigned long long)b->o.miss_ops, b->o.runs,
		b->o.mapper ? "         plus a mapper thread mapping and "
			      "unmapping pages of another range\n         "
			      "(mapper k/s: its map+unmap pairs per second, "
			      "thousands)\n" : "");
	for (int p = 0; p < P_COUNT; p++)
		if (b->o.patterns & (1u << p))
			print_block(b, (enum pattern)p, f);
}

/* print_json() - the machine-readable report. */
static void print_json(const struct scaling *b, FILE *f)
{
	json_header(f, "scaling", b->o.smoke, b->o.runs, &b->m);
	fprintf(f, ",\n  \"hit_ops\": %llu,\n  \"miss_ops\": %llu,\n"
		"  \"mapper\": %s,\n  \"results\": [",
		(unsigned long long)b->o.hit_ops,
		(unsigned long long)b->o.miss_ops,
		b->o.mapper ? "true" : "false");
	for (int k = 0; k < b->nres; k++) {
		const struct res *r = &b->res[k];

		fprintf(f, "%s\n    {\"size\": %u, \"pattern\": \"%s\", "
			"\"threads\": %u, \"ns_per_op\": %.3f, "
			"\"ns_per_op_min\": %.3f, \"ns_per_op_max\": %.3f, "
			"\"cpu_ns_per_op\": %.3f, \"mops_total\": %.3f, "
			"\"miss_ratio\": %.4f, \"mapper_pairs_per_s\": %.0f}",
			k ? "," : "", r->size, pat_names[r->p], r->threads,
			r->m_ns, r->min_ns, r->max_ns, r->m_cpu, r->m_mops,
			r->m_miss, r->m_pairs);
	}
	fprintf(f, "\n  ]\n}\n");
}

/* ------------------------------------------------------------------ */
/* Options                                                            */

/* What `viommu-bench scaling --help` says the subcommand does. */
static const char about[] =
"Translate ns/op (wall and thread CPU) against the number of mappings and "
"the number of translating threads, for IOTLB hits and misses.";

/* parse_opts() - the command line (after "scaling") into @o. */
static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const uint32_t def[] = { 1024, 4096, 16384, 65536, 262144,
					1048576 };
	struct bopt t[] = {
		{ BOPT_SMOKE(&o->smoke), .help = "tiny run (well under a "
		  "second); numbers not meaningful" },
		{ .name = "--sizes", .type = BOPT_LIST, .dest = o->sizes,
		  .count = &o->nsizes, .nmax = MAX_SIZES, .arg = "LIST",
		  .min = 1, .max = MAX_SIZE,
		  .help = "mapping counts (default "
			  "1024,4096,16384,65536,262144,1048576)" },
		{ .name = "--threads", .type = BOPT_LIST, .dest = o->threads,
		  .count = &o->nthreads, .nmax = MAX_THREADS, .arg = "LIST",
		  .min = 1, .max = MAX_THREADS,
		  .help = "thread counts (default 1,2,4)" },
		{ .name = "--mapper", .type = BOPT_FLAG, .dest = &o->mapper,
		  .help = "a thread maps and unmaps pages of another range of "
			  "the same domain while the translators run" },
		{ .name = "--patterns", .type = BOPT_NAMES,
		  .dest = &o->patterns, .names = pat_names, .nnames = P_COUNT,
		  .arg = "LIST", .help = "access patterns (default all)" },
		{ .name = "--ops", .type = BOPT_U64, .dest = &o->miss_ops,
		  .arg = "N", .min = 1000, .max = 1000000000,
		  .help = "calls per thread per run for misses (default "
			  "1000000; hits get 4x; smoke 20000)" },
		{ BOPT_RUNS(&o->runs, BENCH_MAX_RUNS),
		  .help = "runs (default 3; smoke 1)" },
		{ BOPT_JSON(&o->json), .help = BOPT_JSON_HELP },
		{ 0 }
	};

	o->patterns = (1u << P_COUNT) - 1;
	bopts_parse(t, "scaling", about, argc, argv);
	if (!bopt_given(t, "--sizes")) {
		o->nsizes = o->smoke ? 2 : 6;
		memcpy(o->sizes, def, o->nsizes * sizeof(def[0]));
	}
	if (!bopt_given(t, "--threads")) {
		o->nthreads = 3;
		o->threads[0] = 1;
		o->threads[1] = 2;
		o->threads[2] = 4;
	}
	if (!bopt_given(t, "--ops"))
		o->miss_ops = o->smoke ? 20000 : 1000000;
	o->hit_ops = 4 * o->miss_ops;
	if (!bopt_given(t, "--runs"))
		o->runs = o->smoke ? 1 : 3;
}

/* cmd_scaling() - `viommu-bench scaling`: argv[0] is "scaling". */
int cmd_scaling(int argc, char **argv)
{
	static struct scaling b;
	struct outputs out;
	uint64_t s = 0x9e3779b97f4a7c15ull;

	parse_opts(&b.o, argc, argv);
	outputs_open(&out, b.o.json);
	b.ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b.rnd = malloc(RND_LEN * sizeof(*b.rnd));
	b.res = calloc((size_t)MAX_SIZES * P_COUNT * MAX_THREADS,
		       sizeof(*b.res));
	if (b.ram == MAP_FAILED || !b.rnd || !b.res)
		die("out of memory");
	for (uint32_t k = 0; k < RND_LEN; k++)
		b.rnd[k] = (uint32_t)(rng(&s) >> 32);
	machine_info(&b.m);
	for (int k = 0; k < b.o.nsizes; k++)
		bench_size(&b, b.o.sizes[k]);
	REPORT_FINISH(&out, &b.m, print_table, print_json, &b);
	munmap(b.ram, RAM_SIZE);
	free(b.rnd);
	free(b.res);
	return 0;
}
