/*
 * guest_io.c - `viommu-bench guest-io`: the storage column of the seeds'
 * table with a real guest, three stacks in four IOMMU modes in one run.
 *
 * The guest's stock virtio_blk driver, which maps every request through
 * the kernel's DMA API and so through the guest's virtio-iommu driver,
 * runs O_DIRECT random reads and writes at 4 KiB and 64 KiB, queue depth 1
 * and 32 with Linux AIO (guest/blkio.c, viommu-run's blkio scenarios, each
 * job --bench-ms long) on a sparse 64 MiB raw image, in each stack:
 *
 *   ours   our virtio-blk in viommu-server over vfio-user behind our
 *          virtio-iommu (viommu-run);
 *   mixed  our virtio-blk behind QEMU's virtio-iommu-pci (viommu-run
 *          --peer qemu: QEMU maps the disk's IOVA space over vfio-user);
 *   qemu   QEMU's virtio-blk-pci iommu_platform=on behind QEMU's
 *          virtio-iommu-pci (viommu-run --peer qemu --qemu-disk);
 *
 * and each mode, a boot of its own: noiommu (the disk left out of the
 * IOMMU: the baseline), pt (iommu.passthrough=1), lazy (the kernel's
 * default DMA-FQ) and strict (iommu.strict=1).  All on one QEMU (--qemu,
 * default 11.1) under TCG.  guest_io_report.c reads the boots and reports
 * every mode as % of the same stack's no-IOMMU figure, with the issue's
 * goals.
 *
 * --net measures the network column the same way (guest/nettcp.c's
 * netbench, viommu-run's netbench scenarios, each case --bench-ms long):
 * TCP between two NICs in two network namespaces, one and four streams,
 * both directions, 1500 B and 64 KiB writes, and UDP packets per second,
 * in two stacks: ours (two of our NICs on viommu-server's switch behind
 * our virtio-iommu) and qemu (two virtio-net-pci iommu_platform=on on one
 * QEMU hub behind QEMU's virtio-iommu-pci: viommu-run --peer qemu
 * --qemu-net); the mixed stack is not defined for it.
 *
 * --iommu vtd (with --net) puts VT-d in front of the NICs instead: ours
 * is our two NICs behind our VT-d model, served through a register frame
 * polled in guest RAM (viommu-run --iommu vtd), qemu is QEMU's two
 * virtio-net-pci behind QEMU's intel-iommu (viommu-run --iommu vtd --peer
 * qemu); the modes are noiommu, lazy (deferred invalidation), strict and
 * strict-cm (strict with caching mode), the seeds' VT-d rows.
 *
 * Fairness, as `viommu-bench guest`: --rounds rounds of every boot, the
 * order of the boots reversed every other round; medians over rounds and
 * ratios taken round by round.  Unpinned by default; --pin CPU runs every
 * boot on one CPU.  The 1-minute load average is sampled after every
 * boot.  A missing prerequisite (the QEMU, a device in it, the guest
 * image) is reported and skips the stacks that need it.  Exit status: 0
 * (also when everything was skipped), 1 if a boot failed, 2 on a bad
 * command line; --smoke (one round, ours and qemu, noiommu and strict,
 * 50 ms) exits 77 (skipped) unless VIOMMU_BENCH_GUEST=1.
 */
#include "guest_io.h"
#include "opts.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* ------------------------------------------------------------------ */
/* What can run                                                       */

/* lacks() - record in @why that the QEMU lacks @dev, if it does. */
static bool lacks(struct gio *g, char *why, size_t n, const char *dev)
{
	if (gb_has_device(g->q.path, dev))
		return false;
	snprintf(why, n, "QEMU %s (%.300s) lacks %s", g->q.version, g->q.path,
		 dev);
	return true;
}

/* check_stacks() - say which stacks cannot run, and why. */
static void check_stacks(struct gio *g)
{
	char f[PATH_MAX + 64];

	gb_resolve_qemu(g->run, g->build, &g->q, g->o.qemu, NULL, true);
	for (int s = 0; s < GIO_NSTACKS; s++) {
		char *why = g->skip[s];
		size_t n = sizeof(g->skip[s]);

		if (!g->o.stack[s])
			continue;
		if (g->o.vtd && s == GIO_MIXED) {
			snprintf(why, n, "not defined for --iommu vtd");
			continue;
		}
		if (g->o.net && s == GIO_MIXED) {
			snprintf(why, n, "not defined for --net (ours or "
				 "QEMU's NICs, each behind its own IOMMU)");
			continue;
		}
		if (!g->q.path[0]) {
			snprintf(why, n, "%s", g->q.why);
			continue;
		}
		if (s != GIO_QEMU && strcmp(g->q.door, "vfio-user")) {
			snprintf(why, n, "QEMU %s reaches our devices through "
				 "%s; the %s scenarios need vfio-user "
				 "(interrupts)", g->q.version, g->q.door,
				 g->o.net ? "net" : "blk");
			continue;
		}
		if ((s != GIO_QEMU && lacks(g, why, n, "vfio-user-pci")) ||
		    (s != GIO_OURS && lacks(g, why, n, g->o.vtd ?
					     "intel-iommu" :
					     "virtio-iommu-pci")) ||
		    (s == GIO_QEMU && lacks(g, why, n, g->o.net ?
					     "virtio-net-pci" :
					     "virtio-blk-pci")))
			continue;
	}
	snprintf(f, sizeof(f), "%s/guest-cache/image/vmlinuz", g->build);
	if (access(f, R_OK))
		for (int s = 0; s < GIO_NSTACKS; s++)
			snprintf(g->skip[s], sizeof(g->skip[s]), "no guest "
				 "image in %.400s/guest-cache/image (make it "
				 "with `make demo` or guest/build-image.sh "
				 "--cache %.400s/guest-cache)", g->build,
				 g->build);
}

/* ------------------------------------------------------------------ */
/* Running one boot                                                   */

/* run_child() - viommu-run for (@s, @m); its exit status (or -1). */
static int run_child(struct gio *g, int s, int m, const char *json,
		     const char *log)
{
	char ms[16], sc[32], poll[48], nap[48];
	char *argv[28];
	int n = 0;

	snprintf(ms, sizeof(ms), "%u", g->o.ms);
	snprintf(sc, sizeof(sc), "--scenario=%s", g->o.net ?
		 gio_net_scenarios[m] : gio_mode_scenarios[m]);
	argv[n++] = "python3";
	argv[n++] = g->run;
	argv[n++] = "--build";
	argv[n++] = g->build;
	argv[n++] = sc;
	argv[n++] = "--bench-ms";
	argv[n++] = ms;
	argv[n++] = "--json";
	argv[n++] = (char *)json;
	argv[n++] = "--quiet";
	argv[n++] = "--qemu";
	argv[n++] = g->q.path;
	if (g->o.vtd) {
		argv[n++] = "--iommu";
		argv[n++] = "vtd";
	}
	if (s != GIO_OURS)
		argv[n++] = "--peer=qemu";
	if (s == GIO_QEMU)
		argv[n++] = g->o.net ? "--qemu-net" : "--qemu-disk";
	else {
		argv[n++] = "--door";
		argv[n++] = g->q.door;
	}
	if (s == GIO_OURS && g->o.poll_rq_us) {
		snprintf(poll, sizeof(poll), "--server-arg=--poll-rq-us=%u",
			 g->o.poll_rq_us);
		argv[n++] = poll;
	}
	if (s == GIO_OURS && g->o.frame_nap_us) {
		snprintf(nap, sizeof(nap), "--server-arg=--frame-nap-us=%u",
			 g->o.frame_nap_us);
		argv[n++] = nap;
	}
	if (g->built)
		argv[n++] = "--no-build";
	argv[n] = NULL;
	return gb_spawn(g->run, argv, log, g->o.pin);
}

/* boot_path() - the boot's file with suffix @ext in g->tmp. */
static void boot_path(const struct gio *g, char *buf, size_t n, int r, int s,
		      int m, const char *ext)
{
	snprintf(buf, n, "%s/%s-%s-%d.%s", g->tmp, gio_stack_names[s],
		 gio_mode_names[m], r + 1, ext);
}

/* run_boot() - one boot of (@s, @m) in round @r, recorded in g->b. */
static void run_boot(struct gio *g, int r, int s, int m, int k, int nk)
{
	struct gio_boot *b = &g->b[r][s][m];
	char json[PATH_MAX + 64], log[PATH_MAX + 64];
	struct span t;
	int rc;

	gio_boot_init(b);
	b->net = g->o.net;
	boot_path(g, json, sizeof(json), r, s, m, "json");
	boot_path(g, log, sizeof(log), r, s, m, "log");
	fprintf(stderr, "viommu-bench guest-io: round %d/%d, boot %d/%d: "
		"%-5s %-7s ...", r + 1, g->o.rounds, k, nk,
		gio_stack_names[s], gio_mode_names[m]);
	t = span_start();
	rc = run_child(g, s, m, json, log);
	b->secs = (double)span_end(t).wall / 1e9;
	b->load = loadavg();
	b->ran = true;
	b->pinned = g->o.pin >= 0;
	g->nboots++;
	gio_take_json(b, json, rc);
	if (b->ok && rc) {
		b->ok = false;
		snprintf(b->why, sizeof(b->why), "viommu-run exit status %d",
			 rc);
	}
	if (b->ok)
		g->built = true;
	fprintf(stderr, " %.1f s, load %.2f: %s%s\n", b->secs, b->load,
		b->ok ? "ok, domain " : "FAILED - ", b->ok ? b->dtype : b->why);
	if (!b->ok)
		fprintf(stderr, "viommu-bench guest-io: log: %s\n", log);
}

/*
 * replay_boot() - (@s, @m) of round @r from the --replay directory, if it
 * holds that boot's viommu-run JSON (named as --keep names it).
 */
static void replay_boot(struct gio *g, int r, int s, int m)
{
	struct gio_boot *b = &g->b[r][s][m];
	char json[PATH_MAX + 64];

	gio_boot_init(b);
	b->net = g->o.net;
	snprintf(json, sizeof(json), "%s/%s-%s-%d.json", g->o.replay,
		 gio_stack_names[s], gio_mode_names[m], r + 1);
	if (access(json, R_OK))
		return;
	b->ran = true;
	g->nboots++;
	gio_take_json(b, json, 0);
	g->secs += b->secs;
	if (!g->q.path[0])
		gio_take_qemu(&g->q, json);
}

/* replay_all() - every boot kept in the --replay directory. */
static void replay_all(struct gio *g)
{
	bool seen_s[GIO_NSTACKS] = { false }, seen_m[GIO_NMODES] = { false };
	int last = 0;

	for (int r = 0; r < g->o.rounds; r++)
		for (int s = 0; s < GIO_NSTACKS; s++)
			for (int m = 0; m < GIO_NMODES; m++) {
				if (!g->o.stack[s] || !g->o.mode[m])
					continue;
				replay_boot(g, r, s, m);
				if (g->b[r][s][m].ran)
					last = r + 1;
			}
	g->o.rounds = last;
	/* what the directory does not hold was not asked for */
	for (int s = 0; s < GIO_NSTACKS; s++)
		for (int m = 0; m < GIO_NMODES; m++) {
			bool any = false;

			for (int r = 0; r < last; r++)
				any |= g->b[r][s][m].ran;
			seen_s[s] |= any;
			seen_m[m] |= any;
		}
	for (int s = 0; s < GIO_NSTACKS && last; s++)
		g->o.stack[s] &= seen_s[s];
	for (int m = 0; m < GIO_NMODES && last; m++)
		g->o.mode[m] &= seen_m[m];
	for (int s = 0; s < GIO_NSTACKS; s++)
		if (g->o.stack[s] && !g->o.rounds)
			snprintf(g->skip[s], sizeof(g->skip[s]), "no boots "
				 "in %.900s", g->o.replay);
}

/* run_all() - the rounds, the order reversed every other round. */
static void run_all(struct gio *g)
{
	int order[GIO_NSTACKS * GIO_NMODES][2], nk = 0;
	struct span t = span_start();

	for (int s = 0; s < GIO_NSTACKS; s++)
		for (int m = 0; m < GIO_NMODES; m++)
			if (g->o.stack[s] && g->o.mode[m] && !g->skip[s][0]) {
				order[nk][0] = s;
				order[nk++][1] = m;
			}
	for (int r = 0; r < g->o.rounds; r++)
		for (int k = 0; k < nk; k++) {
			int i = r % 2 ? nk - 1 - k : k;

			run_boot(g, r, order[i][0], order[i][1], k + 1, nk);
		}
	g->secs = (double)span_end(t).wall / 1e9;
}

/* ------------------------------------------------------------------ */
/* Command line                                                       */

/* What `viommu-bench guest-io --help` says the subcommand does. */
static const char about[] =
"Boots a real Linux guest (tools/viommu-run, scenario blkio) whose stock\n"
"virtio_blk driver does O_DIRECT random reads and writes, 4 KiB and 64 KiB,\n"
"queue depth 1 and 32 (Linux AIO), on a sparse 64 MiB raw image, one boot\n"
"per stack and mode:\n"
"  stacks  ours   our virtio-blk behind our virtio-iommu (viommu-server,\n"
"                 vfio-user)\n"
"          mixed  our virtio-blk behind QEMU's virtio-iommu-pci\n"
"          qemu   QEMU's virtio-blk-pci iommu_platform=on behind QEMU's\n"
"                 virtio-iommu-pci\n"
"  modes   noiommu  no IOMMU in front of the disk (the baseline)\n"
"          pt       iommu.passthrough=1 (identity domain)\n"
"          lazy     the kernel's default (DMA-FQ)\n"
"          strict   iommu.strict=1 (DMA)\n"
"and prints IOPS and MB/s per job, each mode as % of the same stack's\n"
"no-IOMMU figure, requests per I/O, and the goals (ours lazy >= 95%,\n"
"strict >= 60% of no IOMMU, each of our ratios above QEMU's) with met or\n"
"MISSED.  A boot takes 30-60 s; a full round is 12 boots.  With --net\n"
"--iommu vtd: the seeds' VT-d rows (modes noiommu, lazy = deferred\n"
"invalidation, strict, strict-cm = strict with caching mode) with our\n"
"NICs behind our VT-d model (a register frame polled in guest RAM) and\n"
"QEMU's NICs behind QEMU's intel-iommu.\n";

/* bits_to_set() - bit i of @bits into @on[i], for @n names. */
static void bits_to_set(uint32_t bits, int n, bool *on)
{
	for (int i = 0; i < n; i++)
		on[i] = bits & (1u << i);
}

/* parse_opts() - the command line (after "guest-io") into @o. */
static void parse_opts(struct gio_opts *o, int argc, char **argv)
{
	uint32_t stacks = 0, modes = 0;
	const char *iommu = NULL;
	struct bopt t[] = {
		{ .name = "--net", .type = BOPT_FLAG, .dest = &o->net,
		  .help = "the network column instead (viommu-run's netbench "
			  "scenarios): TCP between two virtio-net NICs in two "
			  "network namespaces of the guest, 1 and 4 streams, "
			  "both directions, 1500 B and 64 KiB writes (MB/s), "
			  "and UDP packets/s with 18-byte payloads; stacks "
			  "ours (our NICs behind our virtio-iommu) and qemu "
			  "(two virtio-net-pci iommu_platform=on on one hub "
			  "behind QEMU's virtio-iommu-pci); counters per MiB "
			  "sent.  A full round is 8 boots" },
		{ .name = "--iommu", .type = BOPT_STR, .dest = &iommu,
		  .arg = "vtd|virtio", .nonempty = true,
		  .help = "with --net: vtd puts VT-d instead of virtio-iommu in "
			  "front of the NICs: stacks ours (our NICs behind our "
			  "VT-d model, a register frame polled in guest RAM: "
			  "viommu-run --iommu vtd) and qemu (QEMU's NICs "
			  "behind QEMU's intel-iommu); modes noiommu, lazy "
			  "(deferred invalidation), strict and strict-cm "
			  "(strict with caching mode: ours --vtd-features "
			  "0x23, QEMU's caching-mode=on), the default; a full "
			  "round is 8 boots" },
		{ .name = "--frame-nap-us", .type = BOPT_UINT,
		  .dest = &o->frame_nap_us, .arg = "N", .min = 1, .max = 2000,
		  .help = "with --iommu vtd: ours' viommu-server "
			  "--frame-nap-us (the frame's poller naps a fixed N "
			  "us instead of 20 us doubling to 2 ms while the "
			  "guest is quiet)" },
		{ .name = "--rounds", .type = BOPT_INT, .dest = &o->rounds,
		  .arg = "N", .min = 1, .max = GIO_MAX_ROUNDS,
		  .help = "rounds of the boots (default 3)" },
		{ .name = "--bench-ms", .type = BOPT_UINT, .dest = &o->ms,
		  .arg = "N", .min = 50, .max = 10000,
		  .help = "length of each job in the guest (default 1000)" },
		{ .name = "--stacks", .type = BOPT_NAMES, .dest = &stacks,
		  .names = gio_stack_names, .nnames = GIO_NSTACKS,
		  .arg = "LIST", .help = "which stacks (default all three)" },
		{ .name = "--modes", .type = BOPT_NAMES, .dest = &modes,
		  .names = gio_mode_names, .nnames = GIO_NMODES,
		  .arg = "LIST",
		  .help = "which modes (default noiommu,pt,lazy,strict; with "
			  "--iommu vtd noiommu,lazy,strict,strict-cm; the % "
			  "columns need noiommu)" },
		{ BOPT_PIN(&o->pin),
		  .help = "run every boot (QEMU, viommu-server, all threads) "
			  "on this CPU (default: not pinned)" },
		{ BOPT_NO_PIN(&o->no_pin), .help = "not pinned (the default)" },
		{ .name = "--poll-rq-us", .type = BOPT_UINT,
		  .dest = &o->poll_rq_us, .arg = "N", .min = 0,
		  .max = 1000000,
		  .help = "the ours stack's viommu-server --poll-rq-us: after "
			  "a kick the server polls our virtio-iommu's request "
			  "queue for N us, kicks suppressed (default 0: a kick "
			  "per request; the poller wants a CPU of its own)" },
		{ .name = "--qemu", .type = BOPT_STR, .dest = &o->qemu,
		  .arg = "WHICH", .nonempty = true,
		  .help = "viommu-run --qemu: 11 (QEMU 11.1 from "
			  "BUILD/qemu-11.1, built by scripts/qemu11.sh if "
			  "missing; the default), 7.2 or a PATH.  The blk "
			  "scenarios need vfio-user (>= 10.1)" },
		{ BOPT_JSON(&o->json), .help = BOPT_JSON_HELP },
		{ GB_OPT_RUN(&o->run) },
		{ GB_OPT_BUILD(&o->build) },
		{ GB_OPT_KEEP(&o->keep) },
		{ .name = "--replay", .type = BOPT_STR, .dest = &o->replay,
		  .arg = "DIR",
		  .help = "boot nothing: report the boots a --keep run left in "
			  "DIR (STACK-MODE-ROUND.json; --stacks, --modes, "
			  "--rounds select; default every round found)" },
		{ BOPT_SMOKE(&o->smoke),
		  .help = "one round of ours and qemu, noiommu and strict, "
			  "50 ms; skipped (exit 77) unless "
			  "VIOMMU_BENCH_GUEST=1, as booting is slow" },
		{ 0 }
	};

	memset(o, 0, sizeof(*o));
	o->pin = -1;
	bopts_parse(t, "guest-io", about, argc, argv);
	bopts_exclusive(t, "--pin", "--no-pin");
	if (!bopt_given(t, "--stacks"))
		stacks = parse_name_list("--stacks", o->smoke || o->net ?
					 "ours,qemu" : "ours,mixed,qemu",
					 gio_stack_names, GIO_NSTACKS);
	bits_to_set(stacks, GIO_NSTACKS, o->stack);
	if (iommu && strcmp(iommu, "vtd") && strcmp(iommu, "virtio"))
		bad_usage("--iommu: vtd or virtio");
	o->vtd = iommu && !strcmp(iommu, "vtd");
	if (o->vtd && !o->net)
		bad_usage("--iommu vtd measures the network column only "
			  "(add --net)");
	if (!bopt_given(t, "--modes"))
		modes = parse_name_list("--modes", o->smoke ? "noiommu,strict"
					: o->vtd ?
					"noiommu,lazy,strict,strict-cm" :
					"noiommu,pt,lazy,strict",
					gio_mode_names, GIO_NMODES);
	bits_to_set(modes, GIO_NMODES, o->mode);
	if (o->frame_nap_us && !o->vtd)
		bad_usage("--frame-nap-us needs --iommu vtd (the frame)");
	if (o->vtd && (o->mode[GIO_PT] || o->stack[GIO_MIXED]))
		bad_usage("--iommu vtd has no pt mode and no mixed stack");
	if (!o->vtd && o->mode[GIO_STRICT_CM])
		bad_usage("--modes strict-cm needs --iommu vtd (caching mode "
			  "is VT-d's)");
	if (!bopt_given(t, "--bench-ms"))
		o->ms = o->smoke ? 50 : 1000;
	if (!bopt_given(t, "--rounds"))
		o->rounds = o->smoke ? 1 : o->replay ? GIO_MAX_ROUNDS : 3;
	if (o->replay && o->smoke)
		bad_usage("--replay and --smoke exclude each other");
}

/* ------------------------------------------------------------------ */
/* Main                                                               */

/* any_failed() - whether a boot that ran failed. */
static bool any_failed(const struct gio *g)
{
	for (int r = 0; r < g->o.rounds; r++)
		for (int s = 0; s < GIO_NSTACKS; s++)
			for (int m = 0; m < GIO_NMODES; m++)
				if (g->b[r][s][m].ran && !g->b[r][s][m].ok)
					return true;
	return false;
}

/* setup() - locate viommu-run and the build; check what can run. */
static void setup(struct gio *g)
{
	gb_locate(g->o.pin, g->build, g->o.build, g->run, g->o.run);
	check_stacks(g);
	snprintf(g->tmp, sizeof(g->tmp), "/tmp/viommu-bench-guest-io-XXXXXX");
	if (!mkdtemp(g->tmp))
		die("mkdtemp: %s", strerror(errno));
}

/* replay_main() - `viommu-bench guest-io --replay DIR`. */
static int replay_main(struct gio *g)
{
	struct outputs out;
	struct stat st;

	if (stat(g->o.replay, &st) || !S_ISDIR(st.st_mode))
		bad_usage("--replay: '%s' is not a directory", g->o.replay);
	outputs_open(&out, g->o.json);
	machine_info(&g->m);
	replay_all(g);
	if (!g->nboots) {
		outputs_close(&out);
		fprintf(stderr, "viommu-bench guest-io: no boots (STACK-MODE-"
			"ROUND.json) in %s\n", g->o.replay);
		return 1;
	}
	REPORT_FINISH(&out, &g->m, gio_print_table, gio_write_json, g);
	return any_failed(g) ? 1 : 0;
}

/* bench_guest_io_main() - `viommu-bench guest-io`. */
int bench_guest_io_main(int argc, char **argv)
{
	static struct gio g;
	struct outputs out;
	bool runs = false;

	if (!bench_cmd)
		bench_cmd = "guest-io";
	parse_opts(&g.o, argc, argv);
	if (g.o.replay)
		return replay_main(&g);
	if (gb_smoke_skipped("guest-io", g.o.smoke))
		return EXIT_SKIP;
	setup(&g);
	outputs_open(&out, g.o.json);
	machine_info(&g.m);
	for (int s = 0; s < GIO_NSTACKS; s++) {
		if (g.o.stack[s] && g.skip[s][0])
			fprintf(stderr, "viommu-bench guest-io: %s skipped: "
				"%s\n", gio_stack_names[s], g.skip[s]);
		runs |= g.o.stack[s] && !g.skip[s][0];
	}
	if (!runs)
		fprintf(stderr, "viommu-bench guest-io: nothing can run\n");
	run_all(&g);
	REPORT_FINISH(&out, &g.m, gio_print_table, gio_write_json, &g);
	return gb_end("guest-io", g.tmp, g.o.keep, any_failed(&g),
		      g.o.smoke && !g.nboots);
}
