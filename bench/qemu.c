/*
 * qemu.c - `viommu-bench qemu`: our virtio-iommu against QEMU 7.2's at the
 * device boundary, over several paths in one run (issue 5, part 2).
 *
 * Topology: ONE QEMU process (q35, 256 MiB of RAM from a memfd this
 * program creates and maps too, -accel tcg -S: the CPUs never run, so
 * everything reaches the devices through qtest from QEMU's main thread
 * only - QEMU's proxy device can deadlock when two QEMU threads access it
 * at once) holding
 *   00:03.0  QEMU's virtio-iommu-pci
 *   00:04.0  x-pci-proxy-dev -> viommu-server A, link 0: our virtio-iommu
 *   00:05.0  x-pci-proxy-dev -> viommu-server A, link 1: a DMA engine,
 *            endpoint 0x28 for both IOMMUs (it sits behind QEMU's IOMMU
 *            as well, being on bus 0 after it)
 * and, with no QEMU at all, viommu-server B (and C, started with
 * --poll-rq-us) whose link 0 (the IOMMU at 00:04.0) this program drives
 * itself over the mpqemu protocol (mpq_client.c), playing QEMU's proxy;
 * link 1 (engine, endpoint 0x28) is only held open.  Every server is
 * started here on socketpair ends (--link I:fd=N) and ends when its links
 * close.
 *
 * Paths (one register-level driver, vpci_drv.c, over a bus per route):
 *   qemu       QEMU's device; config, MMIO and RAM through qtest;
 *   qemu-shm   the same device and driver state; config and MMIO through
 *              qtest, RAM read and written in the mapped memfd;
 *   proxy      ours behind x-pci-proxy-dev; everything through qtest;
 *   link       ours on server B: config and MMIO as mpqemu messages, each
 *              waiting for its reply, RAM mapped (the server gets the same
 *              memfd by SYNC_SYSMEM);
 *   link-poll  as link, on server C, which polls the request queue with
 *              kicks suppressed (viommu-server --poll-rq-us N; 0: path
 *              left out); the driver skips a kick the device asked not
 *              to get, so a busy queue needs no register round trip.
 * qemu-shm and link are the strict comparison: rings in shared RAM and
 * one register round trip (the kick) per batch on both sides.
 *
 * Method: PCI setup, virtio handshake, one split request queue (each
 * device's maximum: 256 on all), ATTACH endpoint 0x28 to domain 1, then
 * alternating batches of n MAPs (4 KiB each, IOVAs 4 GiB + 4 KiB * j) and
 * the n UNMAPs of the same ranges, one kick each, for n in --sizes (1, 16,
 * 128).  Figures per path:
 *  - req/s all:  requests / wall time of the whole loop (driver included);
 *  - req/s kick: requests / time from sending the kick until the used
 *    index shows the batch;
 *  - rt/batch: register round trips (qtest commands or mpqemu messages)
 *    per batch;
 *  - the median kick time per batch split into a fixed part per kick and
 *    a part per request (the line through the smallest and largest n), and
 *    the "empty kick" (notify + used-index read with nothing available);
 *  - the bare qtest round trip (a RAM readw) and the bare mpqemu round
 *    trip (a configuration read of the vendor ID);
 *  - CPU time of QEMU, of the path's viommu-server and of this program per
 *    request (/proc schedstat), which shows where the time goes.
 * The paths take turns in chunks of about 128 requests (at least one MAP +
 * UNMAP pair) within each measurement, so load changes on a shared
 * machine hit all alike; each ratio (link/qemu-shm - the headline -,
 * link/qemu, link-poll/qemu-shm, proxy/qemu) is taken per run and its
 * median over --runs runs reported (with min..max).
 *
 * JSON: per batch size one object per path (keyed by the path's name;
 * "ours" of earlier versions is "proxy") and "ratios" keyed
 * "NUM/DEN" (replacing the old per-size "ratio" and "kick_ratio" fields).
 *
 * This file: the paths and ratios, the command line and main; the rest of
 * the subcommand is in qemu_machine.c, qemu_drive.c and qemu_report.c
 * (qemu.h lists them).
 */
#include "qemu.h"
#include "opts.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

const struct path_def qb_paths[NPATH] = {
	[P_QEMU] = { "qemu", "QEMU's virtio-iommu-pci, all through qtest",
		     D_QEMU, B_QTEST, -1 },
	[P_QEMU_SHM] = { "qemu-shm", "QEMU's virtio-iommu-pci, registers "
			 "through qtest, RAM mapped", D_QEMU, B_SHM, -1 },
	[P_PROXY] = { "proxy", "ours behind x-pci-proxy-dev, all through "
		      "qtest", D_PROXY, B_QTEST, S_PROXY },
	[P_LINK] = { "link", "ours over the proxy link driven by this "
		     "program, RAM mapped", D_LINK, B_LINK, S_LINK },
	[P_LINK_POLL] = { "link-poll", "as link, the server polling the "
			  "request queue, kicks suppressed (--poll-rq-us)",
			  D_LINK_POLL, B_LINK_POLL,
			  S_LINK_POLL },
};

const char *const qb_srv_names[NSRV] = {
	"viommu-server of path proxy", "viommu-server of path link",
	"viommu-server of path link-poll",
};

const struct ratio_def qb_ratios[NRATIO] = {
	{ P_LINK, P_QEMU_SHM, "link/qemu-shm", "HEADLINE, the strict "
	  "comparison: rings in shared RAM and\n                      one "
	  "register round trip per kick on both sides" },
	{ P_LINK, P_QEMU, "link/qemu", "the issue's literal setup: QEMU "
	  "through qtest, ours\n                      through the proxy "
	  "link" },
	{ P_LINK_POLL, P_QEMU_SHM, "link-poll/qemu-shm", "as the headline, "
	  "our server polling the request queue\n                      "
	  "(no kick while it is busy)" },
	{ P_PROXY, P_QEMU, "proxy/qemu", "both through qtest; ours adds "
	  "QEMU's proxy hop" },
};

/* ------------------------------------------------------------------ */
/* Options                                                              */

/* What `viommu-bench qemu --help` says the subcommand does. */
static const char about[] =
"Our virtio-iommu against QEMU 7.2's virtio-iommu-pci, one register-level\n"
"driver submitting the same MAP/UNMAP batches over these paths in one run:\n"
"  qemu       QEMU's device; config, MMIO and RAM through QEMU's qtest\n"
"  qemu-shm   the same device; config and MMIO through qtest, RAM mapped\n"
"             here (QEMU's RAM is a memfd this program creates)\n"
"  proxy      ours (viommu-server) behind QEMU's x-pci-proxy-dev; all\n"
"             through qtest\n"
"  link       ours, no QEMU: this program speaks the proxy protocol\n"
"             (mpqemu) to a viommu-server itself; RAM mapped\n"
"  link-poll  as link, the server started with --poll-rq-us N: it polls\n"
"             the request queue with kicks suppressed, and the driver\n"
"             skips the kicks it is asked not to make\n"
"Requests per second per batch size and path, and the ratios\n"
"link/qemu-shm (the headline: rings in shared RAM and one register round\n"
"trip per kick on both sides), link/qemu (QEMU through qtest, ours through\n"
"the proxy link), link-poll/qemu-shm and proxy/qemu.\n"
"\n"
"Exit status: 0 measured (or smoke skipped), 1 failure, 2 usage, 77 QEMU\n"
"not found (skipped).\n";

/* default_opts() - what the command line did not set. */
static void default_opts(struct opts *o, bool sizes)
{
	if (!sizes && o->smoke) {
		o->sizes[0] = 16;
		o->nsizes = 1;
	} else if (!sizes) {
		o->sizes[0] = 1;
		o->sizes[1] = 16;
		o->sizes[2] = 128;
		o->nsizes = 3;
	}
	if (!o->requests)
		o->requests = o->smoke ? 64 : 8192;
	if (!o->runs)
		o->runs = o->smoke ? 1 : 5;
	if (!o->qemu)
		o->qemu = "qemu-system-x86_64";
	/* a server spinning on the only CPU would starve the others */
	if (o->pin >= 0 && !o->poll_set)
		o->poll_us = 0;
}

/*
 * pin_self() - --pin: this program on one CPU; QEMU and the servers it
 * starts inherit the mask, so every process of the run shares that CPU.
 */
static void pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("--pin %d: %s", cpu, strerror(errno));
}

/* parse_opts() - the command line (after "qemu") into @o. */
static void parse_opts(struct opts *o, int argc, char **argv)
{
	struct bopt t[] = {
		{ BOPT_SMOKE(&o->smoke),
		  .help = "one batch size (16), few requests, one run "
			  "(< 10 s); prints 'skipped: ...' and exits 0 "
			  "without QEMU" },
		{ .name = "--sizes", .type = BOPT_LIST, .dest = o->sizes,
		  .count = &o->nsizes, .nmax = MAX_SIZES, .arg = "LIST",
		  .min = 1, .max = 128,
		  .help = "requests per kick (default 1,16,128)" },
		{ .name = "--requests", .type = BOPT_UINT,
		  .dest = &o->requests, .arg = "N", .min = 16,
		  .max = 10000000,
		  .help = "requests per path and measurement (default "
			  "8192)" },
		{ BOPT_RUNS(&o->runs, BENCH_MAX_RUNS),
		  .help = "runs (default 5; smoke 1)" },
		{ .name = "--poll-rq-us", .type = BOPT_UINT,
		  .dest = &o->poll_us, .arg = "N", .min = 0, .max = 1000000,
		  .help = "--poll-rq-us of the link-poll server (default "
			  XSTR(DEFAULT_POLL_US) "; 0 leaves the link-poll "
			  "path out)" },
		{ BOPT_PIN(&o->pin),
		  .help = "run this program, QEMU and the servers on one CPU: "
			  "no cross-CPU wake-ups, which otherwise decide much "
			  "of the register round trips' cost (default: not "
			  "pinned; with --pin, --poll-rq-us defaults to 0)" },
		{ .name = "--qemu", .type = BOPT_STR, .dest = &o->qemu,
		  .arg = "PATH",
		  .help = "QEMU binary (default qemu-system-x86_64 from "
			  "PATH)" },
		{ .name = "--server", .type = BOPT_STR, .dest = &o->server,
		  .arg = "PATH",
		  .help = "viommu-server (default: $VIOMMU_SERVER, the build "
			  "tree next to this program, PATH)" },
		{ .name = "--timeout-ms", .type = BOPT_INT,
		  .dest = &o->timeout_ms, .arg = "N", .min = 100,
		  .max = 600000,
		  .help = "bound on QEMU startup and each qtest or mpqemu "
			  "reply (default 10000)" },
		{ BOPT_JSON(&o->json),
		  .help = BOPT_JSON_HELP "; per size one object per path, "
			  "named as above (\"ours\" of earlier versions is "
			  "\"proxy\"), and \"ratios\"" },
		{ 0 }
	};

	o->timeout_ms = 10000;
	o->poll_us = DEFAULT_POLL_US;
	o->pin = -1;
	bopts_parse(t, "qemu", about, argc, argv);
	o->poll_set = bopt_given(t, "--poll-rq-us");
	default_opts(o, bopt_given(t, "--sizes"));
}

/* choose_paths() - every path, link-poll only with --poll-rq-us > 0. */
static void choose_paths(struct world *w)
{
	for (int p = 0; p < NPATH; p++) {
		w->on[p] = p != P_LINK_POLL || w->o.poll_us > 0;
		if (w->on[p])
			w->act[w->nact++] = p;
	}
}

/* skip_no_qemu() - QEMU is missing: say so, exit 0 (smoke) or 77. */
static void __attribute__((noreturn)) skip_no_qemu(struct world *w)
{
	struct outputs out;

	if (w->o.smoke) {
		printf("skipped: %s not found\n", w->o.qemu);
		exit(0);
	}
	fprintf(stderr, "viommu-bench qemu: skipped: %s not found (install "
		"QEMU 7.2, Debian package qemu-system-x86, or pass --qemu "
		"PATH); the other subcommands do not need it\n", w->o.qemu);
	outputs_open(&out, w->o.json);
	if (out.json) {
		w->m.load[1] = loadavg();
		json_header(out.json, "qemu", false, w->o.runs, &w->m);
		fprintf(out.json, ",\n  \"skipped\": \"%s not found\"\n}\n",
			strchr(w->o.qemu, '"') ? "QEMU" : w->o.qemu);
		outputs_close(&out);
	}
	exit(EXIT_SKIP);
}

/* bench_qemu_main() - `viommu-bench qemu`: argv[0] is "qemu". */
int bench_qemu_main(int argc, char **argv)
{
	static struct world w;
	struct outputs out;

	parse_opts(&w.o, argc, argv);
	choose_paths(&w);
	pin_self(w.o.pin);
	machine_info(&w.m);
	if (!find_in_path(w.o.qemu, w.qemu_path, sizeof(w.qemu_path)))
		skip_no_qemu(&w);
	if (!find_server(w.o.server, w.server_path, sizeof(w.server_path)))
		die("viommu-server not found (build it: ninja -C BUILD "
		    "tools/viommu-server; or --server PATH)");
	outputs_open(&out, w.o.json);
	qemu_version(w.qemu_path, w.qemu_version, sizeof(w.qemu_version));
	qb_start_all(&w);
	qb_build_requests(&w);
	qb_setup_devices(&w);
	qb_run_all(&w);
	qb_stop_all(&w);
	qb_summarise(&w);
	REPORT_FINISH(&out, &w.m, qb_print_table, qb_print_json, &w);
	return 0;
}
