/*
 * vtd.c - `viommu-bench vtd`: the VT-d model driven by the reference VT-d
 * driver (src/vtd/refdrv.h) the way a network driver uses the DMA API,
 * against no IOMMU, for the seeds' x86 table (seed 003: netperf with
 * vt-d deferred, strict, strict + caching mode, and no IOMMU).
 *
 *   viommu-bench vtd [--smoke] [--packets N] [--bytes B] [--runs N]
 *                    [--json FILE|-] [--help]
 *
 * Per packet, as dma_map_single() / the device / dma_unmap_single() do:
 * the driver maps one 4 KiB buffer at the next IOVA of a ring of 1024,
 * the device (endpoint 00:01.0) moves B bytes through viommu_dma_write()
 * (rx: it writes the packet into memory) or viommu_dma_read() (tx: it
 * reads it), and the driver unmaps.  Configurations:
 *  - noiommu: translation disabled (GSTS.TES clear: the endpoint is on
 *    the IDENTITY domain); the driver maps nothing, the device uses the
 *    buffer's GPA;
 *  - deferred: unmaps go to the driver's flush queue (256 entries), one
 *    domain-selective invalidation + wait per 256 packets (Linux's
 *    default, lazy);
 *  - strict: a page-selective IOTLB invalidation + wait per unmap
 *    (iommu.strict=1);
 *  - strict + CM: the unit advertises caching mode (QEMU's mode for
 *    VFIO), so the driver also invalidates after every map.
 * Every configuration gets a fresh unit, context and driver; each figure
 * is the median of --runs runs of N packets, wall clock and thread CPU
 * time, and the ratio to noiommu of the same direction in the same run.
 * The guest side (the reference driver) and the device side run on one
 * thread, so the figure is the whole per-packet cost, not a throughput
 * that a multi-queue device could reach.
 */
#include "common.h"
#include "opts.h"

#include "refdrv/vtd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int bench_vtd_main(int argc, char **argv);

#define PAGE 4096ull
#define RAM_SIZE (64ull << 20)
#define CHUNK_GPA (48ull << 20)
#define CHUNK_SIZE (16ull << 20)
#define DATA_GPA (1ull << 20)
#define NBUF 1024u
#define IOVA_BASE (1ull << 32)
#define SID 0x08
#define NCFG 4
#define NDIR 2

static const char *const cfg_names[NCFG] = { "noiommu", "deferred",
					     "strict", "strict_cm" };
static const char *const cfg_labels[NCFG] = {
	"noiommu", "vt-d (deferred invalidation)", "vt-d (strict)",
	"vt-d (strict + caching mode)",
};
static const char *const dir_names[NDIR] = { "rx", "tx" };

struct opts {
	bool smoke;
	const char *json;
	int runs;
	uint32_t packets;
	uint32_t bytes;
};

struct result {
	struct figure ns;         /* ns per packet */
	double pps, pct;          /* packets/s; % of noiommu */
	double pct_cpu;           /* the same from thread CPU time */
	double desc_per_pkt;      /* queued descriptors per packet */
	double hit_ratio;         /* model IOTLB hits / translations */
};

struct bench {
	const struct opts *o;
	uint8_t *ram;
	struct machine m;
	struct result res[NDIR][NCFG];
};

/* env - one configuration's unit, context, driver and endpoint. */
struct env {
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_vtd *vtd;
	struct viommu_endpoint *ep;
	struct vtddrv *drv;
	struct vtddrv_domain *dom;
};

static void check(int rc, const char *what)
{
	if (rc)
		die("%s: %s", what, strerror(-rc));
}

/* env_up() - fresh memory, context, unit (+ driver unless noiommu). */
static void env_up(struct bench *b, struct env *e, int cfg)
{
	struct viommu_vtd_config vc = { .size = sizeof(vc) };
	struct vtddrv_config dc = { 0 };

	memset(e, 0, sizeof(*e));
	bench_mem_ctx(b->ram, RAM_SIZE, 0, &e->mem, &e->ctx);
	vc.ctx = e->ctx;
	vc.mem = e->mem;
	vc.features = VIOMMU_VTD_F_QI | VIOMMU_VTD_F_PT |
		      (cfg == 3 ? VIOMMU_VTD_F_CM : 0);
	check(viommu_vtd_create(&vc, &e->vtd), "vtd");
	check(viommu_endpoint_create(e->ctx, SID, &e->ep), "endpoint");
	check(viommu_vtd_add_endpoint(e->vtd, e->ep), "add endpoint");
	if (cfg == 0)
		return;
	dc.vtd = e->vtd;
	dc.mem = e->mem;
	dc.chunk = b->ram + CHUNK_GPA;
	dc.chunk_gpa = CHUNK_GPA;
	dc.chunk_size = CHUNK_SIZE;
	check(vtddrv_create(&dc, &e->drv), "driver");
	check(vtddrv_domain_create(e->drv, 1, cfg == 1 ? VTDDRV_DEFERRED :
				   VTDDRV_STRICT, &e->dom), "domain");
	check(vtddrv_attach(e->drv, e->dom, SID), "attach");
}

static void env_down(struct env *e)
{
	vtddrv_destroy(e->drv);
	viommu_vtd_remove_endpoint(e->vtd, e->ep);
	viommu_endpoint_destroy(e->ep);
	viommu_vtd_destroy(e->vtd);
	viommu_ctx_destroy(e->ctx);
	viommu_mem_destroy(e->mem);
}

/* packets() - @n packets in direction @dir; the span they took. */
static struct span packets(struct bench *b, struct env *e, int cfg, int dir,
			   uint32_t n)
{
	static uint8_t pkt[65536];
	uint32_t len = b->o->bytes;
	struct span t = span_start();

	for (uint32_t i = 0; i < n; i++) {
		uint64_t pa = DATA_GPA + (i % NBUF) * PAGE;
		uint64_t iova = cfg ? IOVA_BASE + (i % NBUF) * PAGE : pa;
		int rc;

		if (cfg)
			check(vtddrv_map(e->drv, e->dom, iova, pa, PAGE,
					 dir ? VIOMMU_READ : VIOMMU_WRITE),
			      "map");
		rc = dir ? viommu_dma_read(e->ep, VIOMMU_NO_PASID, iova, pkt, len)
			 : viommu_dma_write(e->ep, VIOMMU_NO_PASID, iova, pkt,
					    len);
		check(rc, "device DMA");
		if (cfg)
			check(vtddrv_unmap(e->drv, e->dom, iova, PAGE), "unmap");
	}
	return span_end(t);
}

/* measure() - one configuration and direction, --runs times. */
static void measure(struct bench *b, int cfg, int dir)
{
	const struct opts *o = b->o;
	double ns[BENCH_MAX_RUNS], cpu[BENCH_MAX_RUNS];
	double desc[BENCH_MAX_RUNS], hit[BENCH_MAX_RUNS];
	struct result *r = &b->res[dir][cfg];

	for (int run = 0; run < o->runs; run++) {
		struct viommu_vtd_stats s0, s1;
		struct vtddrv_stats d0 = { 0 }, d1 = { 0 };
		struct env e;
		struct span sp;

		env_up(b, &e, cfg);
		packets(b, &e, cfg, dir, o->packets / 16 + 1); /* warm-up */
		if (e.drv)
			check(vtddrv_flush(e.drv, e.dom), "flush");
		viommu_vtd_stats(e.vtd, &s0, sizeof(s0));
		if (e.drv)
			vtddrv_stats(e.drv, &d0);
		sp = packets(b, &e, cfg, dir, o->packets);
		viommu_vtd_stats(e.vtd, &s1, sizeof(s1));
		if (e.drv)
			vtddrv_stats(e.drv, &d1);
		ns[run] = (double)sp.wall / o->packets;
		cpu[run] = (double)sp.cpu / o->packets;
		desc[run] = (double)(d1.descriptors - d0.descriptors) /
			    o->packets;
		hit[run] = s1.translations == s0.translations ? 0 :
			   (double)(s1.iotlb_hits - s0.iotlb_hits) /
			   (double)(s1.translations - s0.translations);
		env_down(&e);
	}
	r->ns = figure_of(ns, cpu, o->runs);
	r->desc_per_pkt = median(desc, o->runs);
	r->hit_ratio = median(hit, o->runs);
	r->pps = 1e9 / r->ns.med;
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

static void print_table(const struct bench *b, FILE *f)
{
	report_head(f, "vtd", b->o->smoke ? SMOKE_TINY : NULL, &b->m);
	report_cpu_note(f);
	fprintf(f, "method:  median of %d runs of %u packets of %u bytes; per "
		"packet map 4 KiB, device\n         DMA, unmap (reference VT-d "
		"driver, legacy mode, 4-level tables, QI);\n         one "
		"thread does both sides; %% = packets/s against noiommu of the "
		"same run,\n         cpu %% the same from thread CPU time\n",
		b->o->runs, b->o->packets, b->o->bytes);
	for (int dir = 0; dir < NDIR; dir++) {
		fprintf(f, "\n%s: the device %s each packet\n", dir_names[dir],
			dir ? "reads (tx)" : "writes (rx)");
		fprintf(f, "  %-30s %9s %9s %9s %9s %9s %6s %6s %6s %5s\n",
			"configuration", "ns/pkt", "min", "max", "cpu",
			"pkts/s", "%", "cpu %", "desc", "hit");
		for (int c = 0; c < NCFG; c++) {
			const struct result *r = &b->res[dir][c];
			struct figure_text t = figure_text(&r->ns);
			char pps[32];

			fmt_rate(pps, sizeof(pps), r->pps);
			fprintf(f, "  %-30s %9s %9s %9s %9s %9s %5.1f%% %5.1f%% "
				"%6.2f %5.2f\n", cfg_labels[c], t.med, t.min,
				t.max, t.cpu, pps, r->pct, r->pct_cpu,
				r->desc_per_pkt, r->hit_ratio);
		}
	}
}

static void print_json(const struct bench *b, FILE *f)
{
	json_header(f, "vtd", b->o->smoke, b->o->runs, &b->m);
	fprintf(f, ",\n  \"packets\": %u,\n  \"bytes\": %u,\n  \"results\": [",
		b->o->packets, b->o->bytes);
	for (int dir = 0; dir < NDIR; dir++)
		for (int c = 0; c < NCFG; c++) {
			const struct result *r = &b->res[dir][c];

			fprintf(f, "%s\n    {\"direction\": ",
				dir || c ? "," : "");
			json_str(f, dir_names[dir]);
			fprintf(f, ", \"config\": ");
			json_str(f, cfg_names[c]);
			fprintf(f, ", \"unit\": \"ns/packet\"");
			figure_json(f, &r->ns);
			fprintf(f, ", \"packets_per_s\": %.0f, \"pct_of_noiommu"
				"\": %.1f, \"pct_of_noiommu_cpu\": %.1f, "
				"\"descriptors_per_packet\": %.3f, "
				"\"iotlb_hit_ratio\": %.4f}", r->pps, r->pct,
				r->pct_cpu, r->desc_per_pkt, r->hit_ratio);
		}
	fprintf(f, "\n  ]\n}\n");
}

/* ------------------------------------------------------------------ */
/* Options                                                            */

/* What `viommu-bench vtd --help` says the subcommand does. */
static const char about[] =
"Drives the VT-d model with the reference VT-d driver like a network "
"driver: per packet map a 4 KiB buffer, the device writes (rx) or reads "
"(tx) B bytes through the IOMMU, unmap.  Configurations: no IOMMU, "
"deferred invalidation, strict, strict + caching mode; ns per packet, "
"packets/s and % of no IOMMU, median of N runs.";

/* parse_opts() - the command line (after "vtd") into @o. */
static void parse_opts(struct opts *o, int argc, char **argv)
{
	struct bopt t[] = {
		{ BOPT_SMOKE(&o->smoke), .help = "tiny sizes (well under two "
		  "seconds); numbers not meaningful" },
		{ .name = "--packets", .type = BOPT_UINT, .dest = &o->packets,
		  .arg = "N", .min = 1000, .max = 10000000,
		  .help = "packets per run (default 200000; with --smoke "
			  "2000)" },
		{ .name = "--bytes", .type = BOPT_UINT, .dest = &o->bytes,
		  .arg = "B", .min = 64, .max = 4096,
		  .help = "bytes the device moves per packet (default 1500)" },
		{ BOPT_RUNS(&o->runs, BENCH_MAX_RUNS),
		  .help = "runs per figure (default 5; with --smoke 1)" },
		{ BOPT_JSON(&o->json), .help = BOPT_JSON_HELP },
		{ 0 }
	};

	bopts_parse(t, "vtd", about, argc, argv);
	if (!bopt_given(t, "--packets"))
		o->packets = o->smoke ? 2000 : 200000;
	if (!bopt_given(t, "--bytes"))
		o->bytes = 1500;
	if (!bopt_given(t, "--runs"))
		o->runs = o->smoke ? 1 : 5;
}

/* bench_vtd_main() - `viommu-bench vtd`: argv[0] is "vtd". */
int bench_vtd_main(int argc, char **argv)
{
	static struct bench b;
	struct opts o = { 0 };
	struct outputs out;

	parse_opts(&o, argc, argv);
	b.o = &o;
	outputs_open(&out, o.json);
	b.ram = bench_ram(RAM_SIZE);
	machine_info(&b.m);
	for (int dir = 0; dir < NDIR; dir++) {
		for (int c = 0; c < NCFG; c++)
			measure(&b, c, dir);
		for (int c = 0; c < NCFG; c++) {
			b.res[dir][c].pct = 100.0 * b.res[dir][c].pps /
					    b.res[dir][0].pps;
			b.res[dir][c].pct_cpu = 100.0 *
				b.res[dir][0].ns.cpu_med /
				b.res[dir][c].ns.cpu_med;
		}
	}
	REPORT_FINISH(&out, &b.m, print_table, print_json, &b);
	munmap(b.ram, RAM_SIZE);
	return 0;
}
