/*
 * vdev.c - `viommu-bench vdev`: the virtio-iommu device driven by the
 * reference driver (src/refdrv/virtio.h) over real virtqueues in guest RAM.
 *
 * Work: a stream of MAP+UNMAP pairs of one 4 KiB page (MAP iova -> gpa,
 * then UNMAP iova), cycling over 256 IOVAs of one domain the endpoint is
 * attached to (optionally pre-filled with --prefill other mappings).
 * Submission:
 *  - strict: every request made available, kicked and waited for;
 *  - batched/N: requests queued and committed with one kick every N
 *    requests (N = 1, 16, 128 by default: a MAP and its UNMAP may share a
 *    kick), the way the Linux driver batches until iotlb_sync.
 * Rings: split and packed (optionally with EVENT_IDX + INDIRECT_DESC).
 *
 * Each configuration gets its own device and driver; every run measures
 * every configuration in turn (so load drifts hit them alike), twice:
 *  - untimed: pairs per second (wall) and per CPU-second (thread CPU
 *    time), request-queue kicks per pair;
 *  - timed: the program is linked with --wrap=viommu_virtio_dev_notify, and
 *    the hook (common.c) adds up the wall time spent inside the real
 *    notify; divided by the requests the device processed it gives the
 *    device's cost per request (ring reads, decoding, the core's map or
 *    unmap, the reply and the used ring).  The rest of the untimed cost per
 *    request is the driver's (building requests, the rings, polling).
 * Also measured: the core alone (viommu_domain_map + _unmap of the same
 * pattern, no virtio), which is the floor under the device's figure.
 * With --kick-cost-ns every kick also busy-waits that long (a modelled VM
 * exit): those figures are labelled modelled.
 */
#include "common.h"
#include "opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCHES 8
#define MAX_CFGS 40
#define IOVA_BASE (1ull << 32)  /* above the x86 MSI window */
#define PREFILL_BASE (1ull << 40)
#define NPAGES 256              /* IOVAs the pairs cycle over */
#define DOMAIN_ID 1u
#define RAM_SIZE (4ull << 20)
#define MAP_RW 3u               /* VIRTIO_IOMMU_MAP_F_READ | _WRITE */

enum ring_kind { R_SPLIT, R_PACKED, R_SPLIT_EI, R_PACKED_EI, R_COUNT };

static const char *const ring_names[R_COUNT] = {
	"split", "packed", "split+evidx+indirect", "packed+evidx+indirect",
};

struct opts {
	bool smoke, no_strict;
	const char *json;
	uint32_t rings; /* bit set of enum ring_kind */
	uint32_t batch[MAX_BATCHES];
	int nbatch;
	uint32_t pairs, prefill, queue_size;
	uint64_t kick_cost;
	int runs;
};

/* One configuration: a ring kind and a submission (batch 0 = strict). */
struct cfg {
	enum ring_kind ring;
	uint32_t batch;
	struct venv env;
	/* samples, one per run */
	double pps[BENCH_MAX_RUNS], ppcpu[BENCH_MAX_RUNS];
	double ns_req[BENCH_MAX_RUNS], cpu_req[BENCH_MAX_RUNS];
	double dev_req[BENCH_MAX_RUNS], dev_cpu[BENCH_MAX_RUNS];
	double kicks[BENCH_MAX_RUNS];
	/* medians */
	double m_pps, min_pps, max_pps, m_ppcpu, m_ns_req, m_cpu_req;
	double m_dev_req, m_dev_cpu;
	double m_kicks;
};

struct vdev {
	struct opts o;
	struct cfg cfgs[MAX_CFGS];
	int ncfg;
	double core_pair[BENCH_MAX_RUNS], core_pair_cpu[BENCH_MAX_RUNS];
	double m_core_pair, m_core_pair_cpu;
	double clock_pair;
	struct machine m;
};

/* ------------------------------------------------------------------ */
/* Set-up                                                             */

/* cfg_setup() - device + driver for @c, the domain attached, prefilled. */
static void cfg_setup(struct vdev *b, struct cfg *c)
{
	struct venv_config vc = {
		.ram_size = RAM_SIZE,
		.packed = c->ring == R_PACKED || c->ring == R_PACKED_EI,
		.event_idx = c->ring >= R_SPLIT_EI,
		.indirect = c->ring >= R_SPLIT_EI,
		.queue_size = (uint16_t)b->o.queue_size,
		.mode = c->batch ? REFDRV_BATCHED : REFDRV_STRICT,
		.max_mappings = b->o.prefill + NPAGES + 16,
	};
	struct viommu_domain *dom;
	uint8_t st = 0;
	int rc;

	venv_create(&c->env, &vc);
	rc = refdrv_attach(c->env.drv, DOMAIN_ID, VENV_EP_ID, 0, &st);
	if (!rc && c->batch)
		rc = refdrv_commit(c->env.drv) > 0 ? -EIO : 0;
	venv_check(rc, st, "ATTACH");
	if (viommu_endpoint_domain(c->env.ep, VIOMMU_NO_PASID, &dom) || !dom)
		die("the device did not attach the endpoint");
	for (uint32_t i = 0; i < b->o.prefill; i++) {
		uint64_t iova = PREFILL_BASE + i * BENCH_PAGE;

		if ((rc = viommu_domain_map(dom, iova, iova + BENCH_PAGE - 1,
					    (i % 256) * BENCH_PAGE,
					    VIOMMU_READ | VIOMMU_WRITE)))
			die("prefill: %s", strerror(-rc));
	}
}

/* ------------------------------------------------------------------ */
/* Measurement                                                        */

/* submit() - @pairs MAP+UNMAP pairs through @c's driver; die on error. */
static void submit(struct cfg *c, uint32_t pairs)
{
	struct refdrv *drv = c->env.drv;
	uint32_t queued = 0;
	int rc = 0;

	for (uint32_t k = 0; k < pairs && !rc; k++) {
		uint64_t page = k % NPAGES;
		uint64_t iova = IOVA_BASE + page * BENCH_PAGE;

		rc = refdrv_map_page(drv, DOMAIN_ID, iova, page * BENCH_PAGE,
				     MAP_RW, NULL);
		if (!rc && c->batch && ++queued == c->batch) {
			rc = refdrv_commit(drv);
			queued = 0;
		}
		if (!rc)
			rc = refdrv_unmap_page(drv, DOMAIN_ID, iova, NULL);
		if (!rc && c->batch && ++queued == c->batch) {
			rc = refdrv_commit(drv);
			queued = 0;
		}
	}
	if (!rc && c->batch && queued)
		rc = refdrv_commit(drv);
	if (rc)
		die("%s/%u: submission failed (%d)", ring_names[c->ring],
		    c->batch, rc);
}

/* driver_counters() - kicks and errors of @c's driver. */
static void driver_counters(struct cfg *c, uint64_t *kicks, uint64_t *errs)
{
	struct refdrv_info in;

	if (refdrv_info(c->env.drv, &in))
		die("refdrv_info");
	*kicks = in.kicks;
	*errs = in.errors;
}

/* measure_cfg() - one run of @c: untimed, then with the device timed. */
static void measure_cfg(struct vdev *b, struct cfg *c, int run)
{
	uint32_t pairs = b->o.pairs;
	uint64_t k0, k1, e0, e1, r0, ns0;
	struct span t;

	driver_counters(c, &k0, &e0);
	bench_kick_hook.timing = false;
	t = span_start();
	submit(c, pairs);
	t = span_end(t);
	driver_counters(c, &k1, &e1);
	if (e1 != e0)
		die("%s/%u: %llu requests failed", ring_names[c->ring],
		    c->batch, (unsigned long long)(e1 - e0));
	c->pps[run] = pairs * 1e9 / (double)t.wall;
	c->ppcpu[run] = pairs * 1e9 / (double)(t.cpu ? t.cpu : 1);
	c->ns_req[run] = (double)t.wall / (2.0 * pairs);
	c->cpu_req[run] = (double)t.cpu / (2.0 * pairs);
	c->kicks[run] = (double)(k1 - k0) / pairs;

	r0 = venv_dev_requests(&c->env);
	ns0 = bench_kick_hook.dev_ns;
	k0 = bench_kick_hook.calls;
	bench_kick_hook.timing = true;
	t = span_start();
	submit(c, pairs);
	t = span_end(t);
	bench_kick_hook.timing = false;
	c->dev_req[run] = ((double)(bench_kick_hook.dev_ns - ns0) -
			   (double)(bench_kick_hook.calls - k0) *
				   b->clock_pair / 2) /
			  (double)(venv_dev_requests(&c->env) - r0);
	/* The share of the thread's time it was running, as in this pass. */
	c->dev_cpu[run] = c->dev_req[run] * (double)t.cpu / (double)t.wall;
}

/* measure_core() - the same pairs on a bare core domain (no virtio). */
static void measure_core(struct vdev *b, int run)
{
	struct viommu_domain_config dc = { .kind = VIOMMU_DOMAIN_PAGING };
	struct viommu_domain *d;
	struct span t;
	int rc;

	if ((rc = viommu_domain_create(b->cfgs[0].env.ctx, &dc, &d)))
		die("domain_create: %s", strerror(-rc));
	t = span_start();
	for (uint32_t k = 0; k < b->o.pairs && !rc; k++) {
		uint64_t page = k % NPAGES;
		uint64_t iova = IOVA_BASE + page * BENCH_PAGE;

		rc = viommu_domain_map(d, iova, iova + BENCH_PAGE - 1,
				       page * BENCH_PAGE,
				       VIOMMU_READ | VIOMMU_WRITE);
		if (!rc)
			rc = viommu_domain_unmap(d, iova,
						 iova + BENCH_PAGE - 1, NULL);
	}
	t = span_end(t);
	if (rc || viommu_domain_destroy(d))
		die("core map/unmap failed");
	b->core_pair[run] = (double)t.wall / b->o.pairs;
	b->core_pair_cpu[run] = (double)t.cpu / b->o.pairs;
}

/* summarize() - medians of every configuration. */
static void summarize(struct vdev *b)
{
	int n = b->o.runs;

	for (int i = 0; i < b->ncfg; i++) {
		struct cfg *c = &b->cfgs[i];

		c->m_pps = median(c->pps, n);
		c->min_pps = c->pps[0];
		c->max_pps = c->pps[n - 1];
		c->m_ppcpu = median(c->ppcpu, n);
		c->m_ns_req = median(c->ns_req, n);
		c->m_cpu_req = median(c->cpu_req, n);
		c->m_dev_req = median(c->dev_req, n);
		c->m_dev_cpu = median(c->dev_cpu, n);
		c->m_kicks = median(c->kicks, n);
	}
	b->m_core_pair = median(b->core_pair, n);
	b->m_core_pair_cpu = median(b->core_pair_cpu, n);
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

/* sub_name() - "strict" or "batched/N". */
static const char *sub_name(const struct cfg *c, char *buf, size_t n)
{
	if (!c->batch)
		return "strict";
	snprintf(buf, n, "batched/%u", c->batch);
	return buf;
}

/* print_fixed_cost() - the per-kick share from batched/1 vs the largest. */
static void print_fixed_cost(const struct vdev *b, FILE *f)
{
	for (int r = 0; r < R_COUNT; r++) {
		const struct cfg *one = NULL, *big = NULL;

		for (int i = 0; i < b->ncfg; i++) {
			const struct cfg *c = &b->cfgs[i];

			if (c->ring != (enum ring_kind)r || !c->batch)
				continue;
			if (c->batch == 1)
				one = c;
			else if (!big || c->batch > big->batch)
				big = c;
		}
		if (!one || !big)
			continue;
		fprintf(f, "  %-22s device (cpu est.): %.0f ns per kick + "
			"%.0f ns per request (batched/1 vs /%u)\n",
			ring_names[r],
			(one->m_dev_cpu - big->m_dev_cpu) * big->batch /
				(big->batch - 1),
			big->m_dev_cpu - (one->m_dev_cpu - big->m_dev_cpu) /
				(big->batch - 1),
			big->batch);
	}
}

/* print_table() - the human-readable report. */
static void print_table(const struct vdev *b, FILE *f)
{
	report_head(f, "vdev", b->o.smoke ? SMOKE_NOTE : NULL, &b->m);
	fprintf(f, "method:  %u MAP+UNMAP pairs of one 4 KiB page per run "
		"(%d IOVAs, %u other mappings),\n         median of %d runs; "
		"queue size %u; reference driver in process, no VM\n"
		"         exit.  ns/req: wall and thread-CPU time per request "
		"(untimed pass).\n         device: wall time inside "
		"viommu_virtio_dev_notify / requests (timed pass;\n"
		"         clock cost %.0f ns per read pair, half subtracted "
		"per kick); dev cpu: that\n         times the pass's CPU/wall "
		"ratio (an estimate: a CPU clock read costs\n         a "
		"system call); driver cpu = cpu ns/req - dev cpu\n",
		b->o.pairs, NPAGES, b->o.prefill, b->o.runs, b->o.queue_size,
		b->clock_pair);
	if (b->o.kick_cost)
		fprintf(f, "MODELLED: every kick also busy-waits %llu ns (a VM "
			"exit); figures below are modelled\n",
			(unsigned long long)b->o.kick_cost);
	fprintf(f, "\n  %-22s %-11s %8s %15s %8s %7s %7s %7s %7s %7s "
		"%7s\n", "ring", "submission", "pairs/s", "(min..max)",
		"/cpu-s", "ns/req", "cpu", "device", "dev cpu", "drv cpu",
		"kicks/p");
	for (int i = 0; i < b->ncfg; i++) {
		const struct cfg *c = &b->cfgs[i];
		char sub[32], pps[32], range[48], mn[16], mx[16], cpu[32];

		fmt_rate(pps, sizeof(pps), c->m_pps);
		fmt_rate(mn, sizeof(mn), c->min_pps);
		fmt_rate(mx, sizeof(mx), c->max_pps);
		snprintf(range, sizeof(range), "%s..%s", mn, mx);
		fmt_rate(cpu, sizeof(cpu), c->m_ppcpu);
		fprintf(f, "  %-22s %-11s %8s %15s %8s %7.1f %7.1f %7.1f "
			"%7.1f %7.1f %7.3f\n", ring_names[c->ring],
			sub_name(c, sub, sizeof(sub)), pps, range, cpu,
			c->m_ns_req, c->m_cpu_req, c->m_dev_req, c->m_dev_cpu,
			c->m_cpu_req - c->m_dev_cpu, c->m_kicks);
	}
	fprintf(f, "\n  core alone (viommu_domain_map + _unmap, no virtio): "
		"%.1f ns per pair (cpu %.1f)\n", b->m_core_pair,
		b->m_core_pair_cpu);
	print_fixed_cost(b, f);
}

/* print_json() - the machine-readable report. */
static void print_json(const struct vdev *b, FILE *f)
{
	json_header(f, "vdev", b->o.smoke, b->o.runs, &b->m);
	fprintf(f, ",\n  \"pairs_per_run\": %u,\n  \"prefill\": %u,\n"
		"  \"queue_size\": %u,\n  \"kick_cost_ns\": %llu,\n"
		"  \"modelled\": %s,\n  \"clock_pair_ns\": %.2f,\n"
		"  \"core_ns_per_pair\": %.3f,\n  \"core_cpu_ns_per_pair\": "
		"%.3f,\n  \"results\": [", b->o.pairs, b->o.prefill,
		b->o.queue_size, (unsigned long long)b->o.kick_cost,
		b->o.kick_cost ? "true" : "false", b->clock_pair,
		b->m_core_pair, b->m_core_pair_cpu);
	for (int i = 0; i < b->ncfg; i++) {
		const struct cfg *c = &b->cfgs[i];

		fprintf(f, "%s\n    {\"ring\": \"%s\", \"submission\": \"%s\", "
			"\"requests_per_kick\": %u, \"pairs_per_s\": %.1f, "
			"\"pairs_per_s_min\": %.1f, \"pairs_per_s_max\": %.1f, "
			"\"pairs_per_cpu_s\": %.1f, \"ns_per_request\": %.2f, "
			"\"cpu_ns_per_request\": %.2f, "
			"\"device_ns_per_request\": %.2f, "
			"\"device_cpu_ns_per_request_est\": %.2f, "
			"\"driver_cpu_ns_per_request_est\": %.2f, "
			"\"kicks_per_pair\": %.4f}", i ? "," : "",
			ring_names[c->ring], c->batch ? "batched" : "strict",
			c->batch ? c->batch : 1, c->m_pps, c->min_pps,
			c->max_pps, c->m_ppcpu, c->m_ns_req, c->m_cpu_req,
			c->m_dev_req, c->m_dev_cpu,
			c->m_cpu_req - c->m_dev_cpu, c->m_kicks);
	}
	fprintf(f, "\n  ]\n}\n");
}

/* ------------------------------------------------------------------ */
/* Options                                                            */

/* What `viommu-bench vdev --help` says the subcommand does. */
static const char about[] =
"MAP+UNMAP pairs per second through the reference virtio-iommu driver, "
"strict (one kick per request) and batched (one kick every N requests), "
"and the device's cost per request (time inside the notification).";

/* parse_opts() - the command line (after "vdev") into @o. */
static void parse_opts(struct opts *o, int argc, char **argv)
{
	struct bopt t[] = {
		{ BOPT_SMOKE(&o->smoke), .help = "tiny run (well under a "
		  "second); numbers not meaningful" },
		{ .name = "--rings", .type = BOPT_NAMES, .dest = &o->rings,
		  .names = ring_names, .nnames = R_COUNT, .arg = "LIST",
		  .help = "ring kinds (default split,packed)" },
		{ .name = "--batch", .type = BOPT_LIST, .dest = o->batch,
		  .count = &o->nbatch, .nmax = MAX_BATCHES, .arg = "LIST",
		  .min = 1, .max = 1024,
		  .help = "requests per kick in batched mode, at most queue "
			  "size/2 (twice that with indirect rings; default "
			  "1,16,128)" },
		{ .name = "--pairs", .type = BOPT_UINT, .dest = &o->pairs,
		  .arg = "N", .min = 1, .max = 100000000,
		  .help = "pairs per run (default 200000; smoke 2000)" },
		{ .name = "--prefill", .type = BOPT_UINT, .dest = &o->prefill,
		  .arg = "N", .min = 0, .max = 4000000,
		  .help = "other mappings already in the domain (default 0)" },
		{ .name = "--no-strict", .type = BOPT_FLAG,
		  .dest = &o->no_strict,
		  .help = "batched submissions only (e.g. to count the "
			  "device's instructions per request with "
			  "callgrind)" },
		{ .name = "--queue-size", .type = BOPT_UINT,
		  .dest = &o->queue_size, .arg = "N", .min = 2, .max = 1024,
		  .help = "request queue size, a power of two (default "
			  "256)" },
		{ BOPT_KICK_COST(&o->kick_cost) },
		{ BOPT_RUNS(&o->runs, BENCH_MAX_RUNS),
		  .help = "runs (default 5; smoke 1)" },
		{ BOPT_JSON(&o->json), .help = BOPT_JSON_HELP },
		{ 0 }
	};

	o->rings = (1u << R_SPLIT) | (1u << R_PACKED);
	o->queue_size = 256;
	bopts_parse(t, "vdev", about, argc, argv);
	if (o->queue_size & (o->queue_size - 1))
		bad_usage("--queue-size: %u is not a power of two",
			  o->queue_size);
	if (!bopt_given(t, "--batch")) {
		static const uint32_t def[] = { 1, 16, 128 };

		memcpy(o->batch, def, sizeof(def));
		o->nbatch = 3;
	}
	for (int k = 0; k < o->nbatch; k++) {
		bool ind_only = o->batch[k] > o->queue_size / 2;

		if (o->batch[k] > o->queue_size ||
		    (ind_only && (o->rings & ((1u << R_SPLIT) |
					      (1u << R_PACKED)))))
			bad_usage("--batch: %u requests do not fit a queue "
				  "of %u (2 descriptors each without "
				  "indirect)", o->batch[k], o->queue_size);
	}
	if (!bopt_given(t, "--pairs"))
		o->pairs = o->smoke ? 2000 : 200000;
	if (!bopt_given(t, "--runs"))
		o->runs = o->smoke ? 1 : 5;
}

/* build_cfgs() - one configuration per ring and submission. */
static void build_cfgs(struct vdev *b)
{
	for (int r = 0; r < R_COUNT; r++) {
		if (!(b->o.rings & (1u << r)))
			continue;
		for (int k = b->o.no_strict ? 0 : -1; k < b->o.nbatch; k++) {
			struct cfg *c = &b->cfgs[b->ncfg++];

			c->ring = (enum ring_kind)r;
			c->batch = k < 0 ? 0 : b->o.batch[k];
			cfg_setup(b, c);
		}
	}
}

/* cmd_vdev() - `viommu-bench vdev`: argv[0] is "vdev". */
int cmd_vdev(int argc, char **argv)
{
	static struct vdev b;
	struct outputs out;

	parse_opts(&b.o, argc, argv);
	outputs_open(&out, b.o.json);
	machine_info(&b.m);
	b.clock_pair = clock_pair_ns();
	build_cfgs(&b);
	bench_kick_hook.cost_ns = b.o.kick_cost;
	for (int r = 0; r < b.o.runs; r++) {
		for (int i = 0; i < b.ncfg; i++)
			measure_cfg(&b, &b.cfgs[i], r);
		measure_core(&b, r);
	}
	bench_kick_hook.cost_ns = 0;
	summarize(&b);
	REPORT_FINISH(&out, &b.m, print_table, print_json, &b);
	for (int i = 0; i < b.ncfg; i++)
		venv_destroy(&b.cfgs[i].env);
	return 0;
}
