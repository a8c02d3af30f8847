/*
 * smmu.c - `viommu-bench smmu`: the SMMUv3 model driven by the reference
 * SMMUv3 driver (src/refdrv/smmuv3.h), as a guest would drive it.
 *
 *   viommu-bench smmu [--smoke] [--pages N] [--runs N] [--json FILE|-]
 *                     [--help]
 *
 * Set-up: 64 MiB of guest RAM, a translation context, the SMMUv3 model
 * (default features: IOTLB of 1024 entries, RIL) and the reference driver
 * over the top 16 MiB; three endpoints, one per configuration: stage 1
 * (StreamID 1), stage 2 (StreamID 2) and nested (StreamID 3: stage 1 over
 * a stage-2 parent that maps the whole IPA window with blocks).  Each maps
 * N 4 KiB pages (4 KiB leaves, so every page is its own IOTLB entry).
 *
 * Measured, each the median of --runs runs:
 *  - translate ns/op (viommu_translate() of 64 bytes, through the core
 *    into the model) with a warm IOTLB (the same page; a 64-page set) and
 *    a cold one: a sequential walk over the N pages (every page was
 *    evicted before it comes back: the miss ratio measured from the
 *    model's counters is printed), and a translate right after a TLBI of
 *    its page (the TLBI is not timed; the cost of the two clock reads is
 *    subtracted);
 *  - TLBI over 1..4096 pages, per page against the range form: ns per
 *    invalidation (commands + one CMD_SYNC, through the driver's batches
 *    and the model's command queue), commands per invalidation, commands
 *    executed per second and pages invalidated per second.
 * Wall-clock time (CLOCK_MONOTONIC) and the thread's CPU time are both
 * reported: the machines these figures come from run other work, and the
 * difference shows what it took.  A benchmark judges nothing.
 */
#include "common.h"
#include "opts.h"

#include "refdrv/smmuv3.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int bench_smmu_main(int argc, char **argv);

#define PAGE 4096ull
#define RAM_SIZE (64ull << 20)
#define CHUNK_GPA (48ull << 20)            /* driver chunk: top 16 MiB */
#define DATA_GPA (1ull << 20)              /* data pages: [1, 48) MiB */
#define DATA_PAGES ((CHUNK_GPA - DATA_GPA) / PAGE)
#define IOVA_BASE (1ull << 32)
#define IPA_BASE (1ull << 36)              /* nested: stage-2 window */
#define WS_PAGES 64
#define MAX_PAGES (1u << 20)
#define MAX_RESULTS 64
#define MAX_RUNS BENCH_MAX_RUNS
#define NCFG 3

static const char *const cfg_names[NCFG] = { "stage1", "stage2", "nested" };
static const char *const cfg_labels[NCFG] = { "stage 1", "stage 2",
					      "nested" };

struct opts {
	bool smoke;
	const char *json;
	int runs;
	uint32_t pages;           /* mapped per configuration */
	uint64_t warm_ops, cold_ops, tlbi_cold_ops;
	uint32_t tlbi_sizes[4];
	int ntlbi;
};

/* struct result - one row: a figure with its spread and extras. */
struct result {
	const char *group;        /* "translate" or "tlbi" */
	const char *cfg;          /* stage1/stage2/nested */
	char name[48];
	char label[64];
	const char *unit;
	uint32_t pages;           /* tlbi: pages per invalidation */
	struct figure fig;        /* cpu_med < 0: n/a */
	double miss_ratio;        /* translate; < 0: n/a */
	double cmds_per_inval;    /* tlbi; < 0: n/a */
	double cmds_per_s, pages_per_s;
};

struct bench {
	const struct opts *o;
	uint8_t *ram;
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_smmuv3 *smmu;
	struct smmudrv *drv;
	struct viommu_endpoint *ep[NCFG];
	struct smmudrv_domain *dom[NCFG];   /* the domain each ep uses */
	struct smmudrv_domain *parent;      /* nested: its stage 2 */
	double clock_pair;
	struct result res[MAX_RESULTS];
	int nres;
	struct machine m;
};

/* ------------------------------------------------------------------ */
/* Set-up                                                             */

/* pa_of() - the data page mapping @i points at. */
static uint64_t pa_of(uint32_t i)
{
	return DATA_GPA + (uint64_t)(i % DATA_PAGES) * PAGE;
}

/* model_up() - memory, context, model, endpoints 1..3. */
static void model_up(struct bench *b)
{
	struct viommu_smmuv3_config sc = { .size = sizeof(sc) };
	int rc;

	bench_mem_ctx(b->ram, RAM_SIZE, 0, &b->mem, &b->ctx);
	sc.ctx = b->ctx;
	sc.mem = b->mem;
	if ((rc = viommu_smmuv3_create(&sc, &b->smmu)))
		die("smmuv3: %s", strerror(-rc));
	for (int i = 0; i < NCFG; i++)
		if ((rc = viommu_endpoint_create(b->ctx, (uint32_t)i + 1,
						 &b->ep[i])) ||
		    (rc = viommu_smmuv3_add_endpoint(b->smmu, b->ep[i])))
			die("endpoint %d: %s", i + 1, strerror(-rc));
}

/* domain() - a domain of the driver or die. */
static struct smmudrv_domain *domain(struct bench *b, enum smmudrv_stage st,
				     unsigned int ias,
				     struct smmudrv_domain *parent)
{
	struct smmudrv_domain_config c = {
		.stage = st, .ias = ias, .parent = parent,
	};
	struct smmudrv_domain *d;
	int rc = smmudrv_domain_alloc(b->drv, &c, &d);

	if (rc)
		die("domain_alloc: %s", strerror(-rc));
	return d;
}

/* map_pages() - N single 4 KiB leaves, IOVA page i -> @base + pa_of(i). */
static void map_pages(struct bench *b, struct smmudrv_domain *d,
		      uint64_t base)
{
	for (uint32_t i = 0; i < b->o->pages; i++) {
		int rc = smmudrv_map(d, IOVA_BASE + i * PAGE, base + pa_of(i),
				     PAGE, VIOMMU_READ | VIOMMU_WRITE);

		if (rc)
			die("map page %u: %s", i, strerror(-rc));
	}
}

/* setup() - the driver, the three configurations, attached. */
static void setup(struct bench *b)
{
	struct smmudrv_config dc = { 0 };
	int rc;

	model_up(b);
	dc.smmu = b->smmu;
	dc.mem = b->mem;
	dc.ram = b->ram + CHUNK_GPA;
	dc.ram_gpa = CHUNK_GPA;
	dc.ram_size = RAM_SIZE - CHUNK_GPA;
	if ((rc = smmudrv_create(&dc, &b->drv)))
		die("reference driver: %s", strerror(-rc));
	b->dom[0] = domain(b, SMMUDRV_STAGE1, 0, NULL);
	b->dom[1] = domain(b, SMMUDRV_STAGE2, 40, NULL);
	b->parent = domain(b, SMMUDRV_STAGE2, 40, NULL);
	b->dom[2] = domain(b, SMMUDRV_NESTED, 0, b->parent);
	if ((rc = smmudrv_map(b->parent, IPA_BASE, 0, CHUNK_GPA,
			      VIOMMU_READ | VIOMMU_WRITE)))
		die("stage-2 window: %s", strerror(-rc));
	map_pages(b, b->dom[0], 0);
	map_pages(b, b->dom[1], 0);
	map_pages(b, b->dom[2], IPA_BASE);
	for (int i = 0; i < NCFG; i++)
		if ((rc = smmudrv_attach(b->drv, (uint32_t)i + 1,
					 SMMUDRV_NO_SSID, b->dom[i])))
			die("attach %d: %s", i + 1, strerror(-rc));
}

/* teardown() - undo setup(). */
static void teardown(struct bench *b)
{
	smmudrv_destroy(b->drv);
	viommu_smmuv3_destroy(b->smmu);
	viommu_ctx_destroy(b->ctx);
	viommu_mem_destroy(b->mem);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                            */

static struct viommu_smmuv3_stats mstats(const struct bench *b)
{
	struct viommu_smmuv3_stats st;

	if (viommu_smmuv3_stats(b->smmu, &st, sizeof(st)))
		die("smmuv3_stats");
	return st;
}

/* add_result() - a row from @n samples of @v (wall) and @c (cpu). */
static struct result *add_result(struct bench *b, const char *group,
				 int cfg, const char *unit, double *v,
				 double *c, int n)
{
	struct result *r;

	if (b->nres >= MAX_RESULTS)
		die("too many results");
	r = &b->res[b->nres++];
	memset(r, 0, sizeof(*r));
	r->group = group;
	r->cfg = cfg_names[cfg];
	r->unit = unit;
	r->fig = figure_of(v, c, n);
	r->miss_ratio = -1;
	r->cmds_per_inval = -1;
	return r;
}

/* translate1() - one 64-byte read translation of page @i, or die. */
static inline uint64_t translate1(const struct bench *b, int cfg, uint64_t i)
{
	struct viommu_xlate x;

	if (viommu_translate(b->ep[cfg], VIOMMU_NO_PASID,
			     IOVA_BASE + i * PAGE + 0x40, 64, VIOMMU_READ, &x,
			     NULL))
		die("%s: translate of page %" PRIu64 " failed",
		    cfg_names[cfg], i);
	return x.gpa;
}

/* ------------------------------------------------------------------ */
/* Translation                                                        */

enum pattern {
	P_SAME,  /* one page: warm */
	P_WS,    /* 64 pages round robin: warm (unless they collide) */
	P_WALK,  /* every mapped page in turn: cold */
	P_TLBI,  /* TLBI of the page, then the (timed) translate: cold */
};

static const char *const pat_names[] = { "warm_same_page", "warm_64_pages",
					 "cold_walk", "cold_after_tlbi" };
static const char *const pat_labels[] = { "warm, same page",
					  "warm, 64-page set",
					  "cold, walk over all pages",
					  "cold, TLBI before each" };

/* loop() - @ops translations of pattern @p (not P_TLBI). */
static void loop(const struct bench *b, int cfg, enum pattern p,
		 uint64_t ops, uint64_t *sink)
{
	uint32_t span = p == P_SAME ? 1 : p == P_WS ? WS_PAGES : b->o->pages;
	uint64_t acc = 0;

	if (span > b->o->pages)
		span = b->o->pages;
	for (uint64_t k = 0; k < ops; k++)
		acc += translate1(b, cfg, k % span);
	*sink += acc;
}

/*
 * tlbi_loop() - @ops times: invalidate a page (untimed), translate it
 * (timed); returns the summed translate time minus the clock cost.
 */
static double tlbi_loop(const struct bench *b, int cfg, uint64_t ops,
			uint64_t *sink)
{
	uint64_t acc = 0, ns = 0;

	for (uint64_t k = 0; k < ops; k++) {
		uint64_t i = k % WS_PAGES, t0;
		int rc = smmudrv_inv_range(b->dom[cfg], IOVA_BASE + i * PAGE,
					   PAGE);

		if (rc)
			die("TLBI: %s", strerror(-rc));
		t0 = clock_ns(CLOCK_MONOTONIC);
		acc += translate1(b, cfg, i);
		ns += clock_ns(CLOCK_MONOTONIC) - t0;
	}
	*sink += acc;
	return (double)ns - b->clock_pair * (double)ops;
}

/* bench_xlate() - translate ns/op of one configuration and pattern. */
static void bench_xlate(struct bench *b, int cfg, enum pattern p)
{
	double v[MAX_RUNS], c[MAX_RUNS], ratio[MAX_RUNS];
	uint64_t ops = p <= P_WS ? b->o->warm_ops :
		       p == P_WALK ? b->o->cold_ops : b->o->tlbi_cold_ops;
	uint64_t sink = 0;
	int runs = b->o->runs;
	struct result *r;

	if (p == P_WALK && ops < b->o->pages)
		ops = b->o->pages;
	if (p != P_TLBI)
		loop(b, cfg, p, p == P_WALK ? b->o->pages : WS_PAGES, &sink);
	for (int k = 0; k < runs; k++) {
		struct viommu_smmuv3_stats s0 = mstats(b), s1;
		struct span t = span_start();

		if (p == P_TLBI) {
			v[k] = tlbi_loop(b, cfg, ops, &sink) / (double)ops;
		} else {
			loop(b, cfg, p, ops, &sink);
			t = span_end(t);
			v[k] = (double)t.wall / (double)ops;
			c[k] = (double)t.cpu / (double)ops;
		}
		s1 = mstats(b);
		ratio[k] = (double)(s1.iotlb_misses - s0.iotlb_misses) /
			   (double)(s1.translations - s0.translations);
	}
	r = add_result(b, "translate", cfg, "ns/op", v,
		       p == P_TLBI ? NULL : c, runs);
	snprintf(r->name, sizeof(r->name), "translate_%s_%s", cfg_names[cfg],
		 pat_names[p]);
	snprintf(r->label, sizeof(r->label), "%s, %s", cfg_labels[cfg],
		 pat_labels[p]);
	r->miss_ratio = median(ratio, runs);
	if (sink == 1)
		putchar(' '); /* keep the results alive */
}

/* ------------------------------------------------------------------ */
/* TLBI                                                               */

/* tlbi_iters() - invalidations per run for @pages in @mode. */
static uint32_t tlbi_iters(const struct opts *o, uint32_t pages,
			   enum smmudrv_tlbi mode)
{
	uint32_t budget = o->smoke ? 4096 : 65536, n;

	if (mode == SMMUDRV_TLBI_RANGE)
		return o->smoke ? 256 : 4096;
	n = budget / pages;
	return n < 4 ? 4 : n;
}

/* bench_tlbi() - invalidations of @pages pages of @cfg's domain. */
static void bench_tlbi(struct bench *b, int cfg, uint32_t pages,
		       enum smmudrv_tlbi mode)
{
	double v[MAX_RUNS], c[MAX_RUNS], cps[MAX_RUNS], per[MAX_RUNS];
	uint32_t iters = tlbi_iters(b->o, pages, mode);
	bool range = mode == SMMUDRV_TLBI_RANGE;
	int runs = b->o->runs, rc;
	struct result *r;

	if ((rc = smmudrv_set_tlbi(b->drv, mode)))
		die("set_tlbi: %s", strerror(-rc));
	for (uint32_t i = 0; i < iters / 8 + 1; i++) /* warm-up */
		if ((rc = smmudrv_inv_range(b->dom[cfg], IOVA_BASE,
					    pages * PAGE)))
			die("TLBI: %s", strerror(-rc));
	for (int k = 0; k < runs; k++) {
		uint64_t c0 = mstats(b).commands;
		struct span t = span_start();

		for (uint32_t i = 0; i < iters; i++)
			if ((rc = smmudrv_inv_range(b->dom[cfg], IOVA_BASE,
						    pages * PAGE)))
				die("TLBI: %s", strerror(-rc));
		t = span_end(t);
		v[k] = (double)t.wall / iters;
		c[k] = (double)t.cpu / iters;
		per[k] = (double)(mstats(b).commands - c0) / iters;
		cps[k] = per[k] * iters * 1e9 / (double)t.wall;
	}
	r = add_result(b, "tlbi", cfg, "ns/inval", v, c, runs);
	r->pages = pages;
	snprintf(r->name, sizeof(r->name), "tlbi_%s_%s_%u",
		 range ? "range" : "per_page", cfg_names[cfg], pages);
	snprintf(r->label, sizeof(r->label), "%s, %s TLBI, %u pages",
		 cfg_labels[cfg], range ? "range" : "per-page", pages);
	r->cmds_per_inval = median(per, runs);
	r->cmds_per_s = median(cps, runs);
	r->pages_per_s = pages * 1e9 / r->fig.med;
	smmudrv_set_tlbi(b->drv, SMMUDRV_TLBI_AUTO);
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

/* print_row() - one table line. */
static void print_row(const struct result *r, FILE *f)
{
	struct figure_text t = figure_text(&r->fig);
	char x1[32] = "", x2[32] = "";

	if (r->miss_ratio >= 0)
		snprintf(x1, sizeof(x1), "%.3f", r->miss_ratio);
	if (r->cmds_per_inval >= 0) {
		char a[16], bb[16];

		fmt_rate(a, sizeof(a), r->cmds_per_s);
		fmt_rate(bb, sizeof(bb), r->pages_per_s);
		snprintf(x1, sizeof(x1), "%.1f", r->cmds_per_inval);
		snprintf(x2, sizeof(x2), "%9s %9s", a, bb);
	}
	fprintf(f, "  %-42s %9s %9s %9s %9s %-8s %6s %s\n", r->label, t.med,
		t.min, t.max, t.cpu, r->unit, x1, x2);
}

/* print_table() - the human-readable report. */
static void print_table(const struct bench *b, FILE *f)
{
	const char *group = "";

	report_head(f, "smmu", b->o->smoke ? SMOKE_TINY : NULL, &b->m);
	report_cpu_note(f);
	fprintf(f, "method:  median of %d runs; SMMUv3 model, IOTLB 1024 "
		"entries, RIL; reference driver;\n         %u pages of 4 KiB "
		"leaves per configuration; the configuration cache stays\n"
		"         warm; \"cold, TLBI before each\" times only the "
		"translate (clock pair %.1f ns\n         subtracted, no cpu "
		"figure)\n", b->o->runs, b->o->pages, b->clock_pair);
	for (int i = 0; i < b->nres; i++) {
		const struct result *r = &b->res[i];
		bool tl = !strcmp(r->group, "tlbi");

		if (strcmp(r->group, group)) {
			group = r->group;
			fprintf(f, "\n%s\n", tl ?
				"TLBI: commands + one CMD_SYNC per "
				"invalidation" :
				"translate: viommu_translate() of 64 bytes "
				"through the model");
			fprintf(f, "  %-42s %9s %9s %9s %9s %-8s %6s %s\n",
				"measurement", "median", "min", "max", "cpu",
				"unit", tl ? "cmds" : "miss",
				tl ? "   cmds/s   pages/s" : "");
		}
		print_row(r, f);
	}
}

/* print_json() - the machine-readable report. */
static void print_json(const struct bench *b, FILE *f)
{
	json_header(f, "smmu", b->o->smoke, b->o->runs, &b->m);
	fprintf(f, ",\n  \"pages\": %u,\n  \"iotlb_entries\": 1024,\n"
		"  \"clock_pair_ns\": %.2f,\n  \"results\": [", b->o->pages,
		b->clock_pair);
	for (int i = 0; i < b->nres; i++) {
		const struct result *r = &b->res[i];

		fprintf(f, "%s\n    {\"group\": ", i ? "," : "");
		json_str(f, r->group);
		fprintf(f, ", \"config\": ");
		json_str(f, r->cfg);
		fprintf(f, ", \"name\": ");
		json_str(f, r->name);
		fprintf(f, ", \"unit\": ");
		json_str(f, r->unit);
		figure_json(f, &r->fig);
		if (r->miss_ratio >= 0)
			fprintf(f, ", \"miss_ratio\": %.4f", r->miss_ratio);
		if (r->cmds_per_inval >= 0)
			fprintf(f, ", \"pages\": %u, \"cmds_per_inval\": %.2f, "
				"\"cmds_per_s\": %.0f, \"pages_per_s\": %.0f",
				r->pages, r->cmds_per_inval, r->cmds_per_s,
				r->pages_per_s);
		fputc('}', f);
	}
	fprintf(f, "\n  ]\n}\n");
}

/* ------------------------------------------------------------------ */
/* Options                                                            */

/* What `viommu-bench smmu --help` says the subcommand does. */
static const char about[] =
"Drives the SMMUv3 model with the reference SMMUv3 driver and measures "
"translate ns/op with a warm and a cold IOTLB for stage 1, stage 2 and "
"nested, and range TLBI against per-page TLBI (ns per invalidation, "
"commands per second) over 1..4096 pages.  Every figure is the median of "
"N runs, wall-clock and thread CPU time.";

/* parse_opts() - the command line (after "smmu") into @o. */
static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const uint32_t sizes[4] = { 1, 16, 256, 4096 };
	struct bopt t[] = {
		{ BOPT_SMOKE(&o->smoke), .help = "tiny sizes and short loops "
		  "(well under two seconds); checks that the program works, "
		  "numbers not meaningful" },
		{ .name = "--pages", .type = BOPT_UINT, .dest = &o->pages,
		  .arg = "N", .min = WS_PAGES, .max = MAX_PAGES,
		  .help = "4 KiB pages mapped per configuration for the cold "
			  "walk (default 16384; with --smoke 2048)" },
		{ BOPT_RUNS(&o->runs, MAX_RUNS),
		  .help = "runs per figure (default 5; with --smoke 1)" },
		{ BOPT_JSON(&o->json), .help = BOPT_JSON_HELP },
		{ 0 }
	};

	bopts_parse(t, "smmu", about, argc, argv);
	if (!bopt_given(t, "--pages"))
		o->pages = o->smoke ? 2048 : 16384;
	if (!bopt_given(t, "--runs"))
		o->runs = o->smoke ? 1 : 5;
	o->warm_ops = o->smoke ? 20000 : 2000000;
	o->cold_ops = o->smoke ? 4096 : 200000;
	o->tlbi_cold_ops = o->smoke ? 1000 : 20000;
	memcpy(o->tlbi_sizes, sizes, sizeof(sizes));
	o->ntlbi = 4;
}

/* bench_smmu_main() - `viommu-bench smmu`: argv[0] is "smmu". */
int bench_smmu_main(int argc, char **argv)
{
	static struct bench b;
	struct opts o = { 0 };
	struct outputs out;

	parse_opts(&o, argc, argv);
	b.o = &o;
	outputs_open(&out, o.json);
	b.ram = bench_ram(RAM_SIZE);
	machine_info(&b.m);
	b.clock_pair = clock_pair_ns();
	setup(&b);
	for (int cfg = 0; cfg < NCFG; cfg++)
		for (int p = P_SAME; p <= P_TLBI; p++)
			bench_xlate(&b, cfg, (enum pattern)p);
	for (int cfg = 0; cfg < 2; cfg++)
		for (int s = 0; s < o.ntlbi; s++) {
			bench_tlbi(&b, cfg, o.tlbi_sizes[s],
				   SMMUDRV_TLBI_PAGE);
			bench_tlbi(&b, cfg, o.tlbi_sizes[s],
				   SMMUDRV_TLBI_RANGE);
		}
	REPORT_FINISH(&out, &b.m, print_table, print_json, &b);
	teardown(&b);
	munmap(b.ram, RAM_SIZE);
	return 0;
}
