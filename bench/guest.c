/*
 * guest.c - `viommu-bench guest`: a real Linux guest, our virtio-iommu
 * against QEMU's with the same DMA engine behind each, in one run.
 *
 * The same guest program (guest/bench.c, the `bench` scenario of
 * viommu-guest) runs in five kinds of boot of the same Debian 6.12 kernel
 * under QEMU TCG, each started by tools/viommu-run as a child process.
 * Four run on the main QEMU (--qemu, default 11.1, our devices over
 * vfio-user):
 *
 *   ours    our virtio-iommu and DMA engine in viommu-server; the guest's
 *           driver kicks the request queue for every request;
 *   polled  the same with viommu-server --poll-rq-us N: after a kick the
 *           server polls the request queue with kicks suppressed until it
 *           has been idle N us (a CPU spent on polling while busy);
 *   qemu    QEMU's own virtio-iommu-pci with our DMA engine behind it
 *           (viommu-server --no-iommu over vfio-user-pci: QEMU maps the
 *           engine's IOVA space with DMA_MAP/DMA_UNMAP as the guest's
 *           virtio-iommu domains change); on a QEMU without vfio-user-pci
 *           the endpoint is QEMU's edu instead;
 *   bypass  ours, booted with iommu.passthrough=1: engine 0's default
 *           domain is identity (driven by guest-physical address), engine
 *           1 is in a VFIO domain (every access translated);
 *
 * and one on the proxy QEMU (--proxy-qemu, default the host's 7.2):
 *
 *   proxy   ours through x-pci-proxy-dev, for what a register write (a
 *           doorbell) and a register read cost there.
 *
 * Figures (guest_report.c computes and prints them; guest_read.c reads
 * each boot's viommu-run JSON):
 *  - VFIO MAP_DMA + UNMAP_DMA pairs per second of one buffer per size
 *    (4 KiB .. 2 MiB, physically contiguous: one virtio-iommu MAP and one
 *    UNMAP request per pair), ours, polled and QEMU's, and the ratios
 *    ours/QEMU (goal >= 1.5 with kicks) and polled/QEMU (no goal);
 *  - ns per register write and per read from guest user space through
 *    the VFIO BAR mapping: vfio-user (ours boot) against x-pci-proxy-dev
 *    (proxy boot);
 *  - our engine's ring-mode copy throughput translated against bypassed,
 *    from the bypass boot's interleaved slices (goal >= 95%).
 *
 * Fairness: --rounds rounds of the boots, the order reversed every other
 * round, so slow drift of the machine's load hits every peer alike; each
 * figure is the median over the rounds, each ratio also shown as the range
 * of the per-round ratios.  By default every boot runs unpinned, its
 * processes (QEMU's vCPU and I/O threads, viommu-server's link and poller
 * threads) sharing the machine's CPUs; --pin CPU runs every boot but the
 * polled one (whose poller needs a CPU of its own) on one CPU.  The
 * guest's clock is CLOCK_MONOTONIC under TCG (host time): figures only
 * compare within one run.  The 1-minute load average is sampled after
 * every boot and reported.
 *
 * `viommu-run --qemu-info` resolves each QEMU once, up front (building the
 * QEMU 11.1 cache if needed); the boots get the resolved path and door.  A
 * missing prerequisite (a QEMU, a device in it, the guest image) is
 * reported and skips what needs it; the rest still runs.  Exit status: 0
 * (also when everything was skipped), 1 if a boot failed, 2 on a bad
 * command line; --smoke exits 77 (skipped) unless VIOMMU_BENCH_GUEST=1,
 * because booting is too slow for the smoke suite.
 */
#include "guest.h"
#include "opts.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_POLL_RQ_US 200

const uint32_t gb_chunks[GB_NCHUNKS] = { 4096, 65536, 1u << 20 };
const char *const gb_peer_names[P_COUNT] = {
	"ours", "polled", "qemu", "bypass", "proxy",
};
const char *const gb_mmio_names[M_COUNT] = { "mmio_write", "mmio_read" };

/* ------------------------------------------------------------------ */
/* Finding things                                                     */

/* is_exec() - whether @path is an executable regular file. */
static bool is_exec(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISREG(st.st_mode) && !access(path, X_OK);
}

/* exe_dir() - the directory of this executable into @buf; -1 if unknown. */
static int exe_dir(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	char *slash;

	if (n <= 0)
		return -1;
	buf[n] = 0;
	slash = strrchr(buf, '/');
	if (!slash)
		return -1;
	*slash = 0;
	return 0;
}

/* up() - cut the last component of @dir; false at the root. */
static bool up(char *dir)
{
	char *slash = strrchr(dir, '/');

	if (!slash || slash == dir)
		return false;
	*slash = 0;
	return true;
}

/* gb_find_run() - see guest.h. */
int gb_find_run(char *run, const char *opt)
{
	char dir[PATH_MAX];

	if (opt) {
		snprintf(run, PATH_MAX, "%s", opt);
		return access(run, R_OK) ? -1 : 0;
	}
	if (!exe_dir(dir, sizeof(dir))) {
		do {
			snprintf(run, PATH_MAX, "%.*s/tools/viommu-run",
				 PATH_MAX - 20, dir);
			if (!access(run, R_OK))
				return 0;
		} while (up(dir));
	}
#ifdef BENCH_PLOT_DIR
	snprintf(run, PATH_MAX, "%s/../../tools/viommu-run", BENCH_PLOT_DIR);
	if (!access(run, R_OK))
		return 0;
#endif
	run[0] = 0;
	return -1;
}

/* gb_find_build() - see guest.h. */
int gb_find_build(char *build, const char *opt)
{
	char f[PATH_MAX + 16];

	if (opt)
		snprintf(build, PATH_MAX, "%s", opt);
	else if (exe_dir(build, PATH_MAX) || !up(build))
		return -1;
	snprintf(f, sizeof(f), "%s/build.ninja", build);
	return access(f, R_OK) ? -1 : 0;
}

/* gb_locate() - see guest.h. */
void gb_locate(int pin, char *build, const char *obuild, char *run,
	       const char *orun)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		CPU_ZERO(&set);
	if (pin >= 0 && !CPU_ISSET(pin, &set))
		bad_usage("--pin: CPU %d is not available to this process",
			  pin);
	if (gb_find_build(build, obuild))
		bad_usage("cannot find the build directory (no build.ninja in "
			  "'%s'): pass --build DIR", build);
	if (gb_find_run(run, orun))
		bad_usage("cannot find tools/viommu-run%s%s: pass --run PATH",
			  orun ? " at " : "", orun ? orun : "");
}

/* gb_smoke_skipped() - see guest.h. */
bool gb_smoke_skipped(const char *cmd, bool smoke)
{
	const char *env = getenv("VIOMMU_BENCH_GUEST");

	if (!smoke || (env && !strcmp(env, "1")))
		return false;
	printf("viommu-bench %s --smoke: skipped (booting a guest takes "
	       "minutes; set VIOMMU_BENCH_GUEST=1 to run it)\n", cmd);
	return true;
}

/* gb_end() - see guest.h. */
int gb_end(const char *cmd, const char *tmp, bool keep, bool failed,
	   bool skipped)
{
	fflush(stdout); /* the table before the messages on stderr */
	if (keep || failed)
		fprintf(stderr, "viommu-bench %s: boot logs kept in %s\n", cmd,
			tmp);
	else
		rm_dir(tmp);
	if (failed)
		return 1;
	return skipped ? EXIT_SKIP : 0;
}

/* ------------------------------------------------------------------ */
/* Prerequisites                                                      */

/*
 * shell_quote() - @s in single quotes for /bin/sh into @buf; false if it
 * does not fit.
 */
static bool shell_quote(char *buf, size_t size, const char *s)
{
	size_t n = 0;

	if (size < 3)
		return false;
	buf[n++] = '\'';
	for (; *s; s++) {
		const char *piece = *s == '\'' ? "'\\''" : NULL;
		size_t k = piece ? strlen(piece) : 1;

		if (n + k + 2 > size)
			return false;
		if (piece)
			memcpy(buf + n, piece, k);
		else
			buf[n] = *s;
		n += k;
	}
	buf[n++] = '\'';
	buf[n] = 0;
	return true;
}

/* gb_has_device() - see guest.h. */
bool gb_has_device(const char *qemu, const char *name)
{
	char q[PATH_MAX * 4 + 8], cmd[sizeof(q) + 128], want[96], line[512];
	bool found = false;
	FILE *p;

	if (!shell_quote(q, sizeof(q), qemu))
		return false;
	snprintf(cmd, sizeof(cmd), "%s -machine none -nodefaults -device "
		 "%s,help </dev/null 2>&1", q, name);
	snprintf(want, sizeof(want), "%s options:", name);
	p = popen(cmd, "r");
	if (!p)
		return false;
	while (fgets(line, sizeof(line), p))
		found |= !strncmp(line, want, strlen(want));
	pclose(p);
	return found;
}

/*
 * read_child() - run viommu-run with @argv (argv[0] "python3", argv[1] the
 * script), its stdout into @buf (NUL-terminated, cut at @size - 1 bytes),
 * its stderr to ours; its exit status, or -1.
 */
static int read_child(const char *run, char **argv, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t k;
	int fds[2], st;
	pid_t pid;

	if (pipe(fds))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (!pid) {
		close(fds[0]);
		if (dup2(fds[1], 1) < 0)
			_exit(127);
		prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
		if (is_exec(run))
			execv(run, argv + 1);
		execvp("python3", argv);
		_exit(127);
	}
	close(fds[1]);
	while ((k = read(fds[0], buf + n, size - 1 - n)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			break;
		n += (size_t)k;
		if (n == size - 1) {
			char sink[512];

			while (read(fds[0], sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	buf[n] = 0;
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* echo_lines() - the lines of @out that are not JSON, on stderr. */
static void echo_lines(const char *out)
{
	for (const char *p = out; *p;) {
		size_t n = strcspn(p, "\n");

		if (*p != '{' && n)
			fprintf(stderr, "%.*s\n", (int)n, p);
		p += n + (p[n] == '\n');
	}
}

/* gb_resolve_qemu() - see guest.h. */
void gb_resolve_qemu(const char *run, const char *build, struct gb_qemu *q,
		     const char *qemu, const char *door, bool fatal)
{
	static char out[1 << 16];
	char *argv[12], *last;
	int n = 0, rc;

	argv[n++] = "python3";
	argv[n++] = (char *)run;
	argv[n++] = "--build";
	argv[n++] = (char *)build;
	argv[n++] = "--qemu-info";
	if (qemu) {
		argv[n++] = "--qemu";
		argv[n++] = (char *)qemu;
	}
	if (door) {
		argv[n++] = "--door";
		argv[n++] = (char *)door;
	}
	argv[n] = NULL;
	memset(q, 0, sizeof(*q));
	rc = read_child(run, argv, out, sizeof(out));
	if (rc == 0) {
		echo_lines(out);
		if (gb_take_qemu_info(q, out))
			return;
	}
	/* the child's last line says why; the lines before it are shown */
	while ((last = strrchr(out, '\n')) && !last[1])
		*last = 0;
	last = strrchr(out, '\n');
	if (last) {
		*last++ = 0;
		if (rc)
			echo_lines(out);
	} else {
		last = out;
	}
	if (rc == 2 && fatal)
		bad_usage("%.400s", *last ? last :
			  "viommu-run refused --qemu/--door");
	snprintf(q->why, sizeof(q->why), "%.400s (viommu-run --qemu-info "
		 "exit status %d)", *last ? last : "no QEMU", rc);
}

/* lacks() - record in @why that QEMU @q lacks device @dev, if it does. */
static bool lacks(char *why, size_t size, const struct gb_qemu *q,
		  const char *dev)
{
	if (gb_has_device(q->path, dev))
		return false;
	snprintf(why, size, "QEMU %s (%.300s) lacks %s", q->version, q->path,
		 dev);
	return true;
}

/* check_main() - which of the main QEMU's peers cannot run, and why. */
static void check_main(struct guestb *g)
{
	bool vfu = strcmp(g->q.door, "proxy") != 0;
	char why[1024];

	if (!g->q.path[0]) {
		for (int p = 0; p < P_PROXY; p++)
			snprintf(g->skip[p], sizeof(g->skip[p]), "%s",
				 g->q.why);
		return;
	}
	if (lacks(why, sizeof(why), &g->q, vfu ? "vfio-user-pci" :
		  "x-pci-proxy-dev")) {
		snprintf(g->skip[P_OURS], sizeof(g->skip[P_OURS]), "%s", why);
		snprintf(g->skip[P_POLLED], sizeof(g->skip[P_POLLED]), "%s",
			 why);
		snprintf(g->skip[P_BYPASS], sizeof(g->skip[P_BYPASS]), "%s",
			 why);
	}
	if (lacks(g->skip[P_QEMU], sizeof(g->skip[P_QEMU]), &g->q,
		  "virtio-iommu-pci") ||
	    lacks(g->skip[P_QEMU], sizeof(g->skip[P_QEMU]), &g->q,
		  vfu ? "vfio-user-pci" : "edu"))
		return;
}

/* check_proxy() - whether the proxy boot can run; why not in skip[]. */
static void check_proxy(struct guestb *g)
{
	char *why = g->skip[P_PROXY];
	size_t n = sizeof(g->skip[P_PROXY]);

	if (!strcmp(g->o.proxy_qemu, "none")) {
		snprintf(why, n, "--proxy-qemu none");
	} else if (g->q.path[0] && !strcmp(g->q.door, "proxy")) {
		snprintf(why, n, "the main boots already use the proxy door "
			 "(--qemu %s): nothing to compare", g->o.qemu);
	} else {
		gb_resolve_qemu(g->run, g->build, &g->pq, g->o.proxy_qemu,
				"proxy", false);
		if (!g->pq.path[0])
			snprintf(why, n, "%s", g->pq.why);
		else
			lacks(why, n, &g->pq, "x-pci-proxy-dev");
	}
}

/* check_peers() - say which peers cannot run, and why. */
static void check_peers(struct guestb *g)
{
	char f[PATH_MAX + 64];

	gb_resolve_qemu(g->run, g->build, &g->q, g->o.qemu, g->o.door, true);
	check_main(g);
	check_proxy(g);
	if (!g->o.poll_rq_us)
		snprintf(g->skip[P_POLLED], sizeof(g->skip[P_POLLED]),
			 "--poll-rq-us 0");
	if (g->o.smoke)
		for (int p = P_POLLED; p < P_COUNT; p++)
			if (p != P_QEMU && !g->skip[p][0])
				snprintf(g->skip[p], sizeof(g->skip[p]),
					 "--smoke runs ours and qemu only");
	snprintf(f, sizeof(f), "%s/guest-cache/image/vmlinuz", g->build);
	if (access(f, R_OK))
		for (int p = 0; p < P_COUNT; p++)
			snprintf(g->skip[p], sizeof(g->skip[p]), "no guest "
				 "image in %.400s/guest-cache/image (make it "
				 "with `make demo` or guest/build-image.sh "
				 "--cache %.400s/guest-cache)", g->build,
				 g->build);
}

/* ------------------------------------------------------------------ */
/* Running one boot                                                   */

/* sizes_arg() - the sizes as viommu-run's --bench-sizes list. */
static void sizes_arg(const struct gb_opts *o, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = 0;
	for (int i = 0; i < o->nsizes && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%u", i ? "," : "",
				      o->sizes[i]);
}

/* pinned() - whether boots of @peer run on the --pin CPU. */
static bool pinned(const struct guestb *g, enum peer peer)
{
	return g->o.pin >= 0 && peer != P_POLLED;
}

/* child_exec() - in the child: output to @log, pinned to CPU @cpu
 * unless it is negative, then exec viommu-run at @run. */
static void __attribute__((noreturn))
child_exec(const char *run, char **argv, const char *log, int cpu)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cpu_set_t set;

	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(127);
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			fprintf(stderr, "viommu-bench %s: cannot pin to CPU "
				"%d: %s\n", bench_cmd, cpu, strerror(errno));
			_exit(127);
		}
	}
	if (is_exec(run))
		execv(run, argv + 1);
	execvp("python3", argv);
	fprintf(stderr, "viommu-bench %s: cannot run %s: %s\n", bench_cmd,
		run, strerror(errno));
	_exit(127);
}

/* gb_spawn() - see guest.h. */
int gb_spawn(const char *run, char **argv, const char *log, int cpu)
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (!pid)
		child_exec(run, argv, log, cpu);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* run_child() - viommu-run for @peer; its exit status (or -1). */
static int run_child(struct guestb *g, enum peer peer, const char *json,
		     const char *log)
{
	const struct gb_qemu *q = peer == P_PROXY ? &g->pq : &g->q;
	char ms[16], sizes[256], poll[48];
	char *argv[26];
	int n = 0;

	snprintf(ms, sizeof(ms), "%u", g->o.ms);
	sizes_arg(&g->o, sizes, sizeof(sizes));
	argv[n++] = "python3";
	argv[n++] = g->run;
	argv[n++] = "--build";
	argv[n++] = g->build;
	argv[n++] = "--scenario=bench";
	argv[n++] = "--bench-ms";
	argv[n++] = ms;
	argv[n++] = "--bench-sizes";
	argv[n++] = sizes;
	argv[n++] = "--json";
	argv[n++] = (char *)json;
	argv[n++] = "--quiet";
	argv[n++] = "--qemu";
	argv[n++] = (char *)q->path;
	if (peer == P_QEMU) {
		argv[n++] = "--peer=qemu";
	} else {
		argv[n++] = "--door";
		argv[n++] = (char *)q->door;
	}
	if (peer == P_BYPASS)
		argv[n++] = "--passthrough";
	if (peer == P_POLLED) {
		snprintf(poll, sizeof(poll), "--server-arg=--poll-rq-us=%u",
			 g->o.poll_rq_us);
		argv[n++] = poll;
	}
	if (g->built)
		argv[n++] = "--no-build";
	argv[n] = NULL;
	return gb_spawn(g->run, argv, log, pinned(g, peer) ? g->o.pin : -1);
}

/* boot_init() - a boot with no figures yet. */
static void boot_init(struct gb_boot *b)
{
	memset(b, 0, sizeof(*b));
	for (int i = 0; i < GB_MAX_SIZES; i++)
		b->pairs[i] = -1;
	for (int i = 0; i < GB_NCHUNKS; i++)
		b->ring[i] = b->ring_bypass[i] = -1;
	for (int i = 0; i < M_COUNT; i++)
		b->mmio_ns[i] = -1;
	b->polled = b->requests = b->srv_cpu = b->srv_secs = -1;
}

/* run_boot() - one boot of @peer in round @r, recorded in g->b. */
static void run_boot(struct guestb *g, int r, enum peer peer)
{
	struct gb_boot *b = &g->b[r][peer];
	char json[PATH_MAX + 64], log[PATH_MAX + 64];
	struct span t;
	int rc;

	boot_init(b);
	snprintf(json, sizeof(json), "%s/%s-%d.json", g->tmp,
		 gb_peer_names[peer], r + 1);
	snprintf(log, sizeof(log), "%s/%s-%d.log", g->tmp,
		 gb_peer_names[peer], r + 1);
	fprintf(stderr, "viommu-bench guest: round %d/%d: %-6s ...",
		r + 1, g->o.rounds, gb_peer_names[peer]);
	t = span_start();
	rc = run_child(g, peer, json, log);
	b->secs = (double)span_end(t).wall / 1e9;
	b->load = loadavg();
	b->ran = true;
	b->pinned = pinned(g, peer);
	g->nboots++;
	gb_take_json(&g->o, b, json, rc);
	if (b->ok && rc) {
		b->ok = false;
		snprintf(b->why, sizeof(b->why), "viommu-run exit status %d",
			 rc);
	}
	if (b->ok)
		g->built = true;
	fprintf(stderr, " %.1f s, load %.2f: %s%s%s\n", b->secs, b->load,
		b->ok ? "ok" : "FAILED", b->ok ? "" : " - ", b->why);
	if (!b->ok)
		fprintf(stderr, "viommu-bench guest: log: %s\n", log);
}

/* run_all() - the rounds, the order reversed every other round. */
static void run_all(struct guestb *g)
{
	struct span t = span_start();

	for (int r = 0; r < g->o.rounds; r++)
		for (int k = 0; k < P_COUNT; k++) {
			enum peer p = r % 2 ? P_COUNT - 1 - k : k;

			if (!g->skip[p][0])
				run_boot(g, r, p);
		}
	g->secs = (double)span_end(t).wall / 1e9;
}

/* ------------------------------------------------------------------ */
/* Command line                                                       */

/* What `viommu-bench guest --help` says the subcommand does. */
static const char about[] =
"Boots a real Linux guest (tools/viommu-run) in one run, per round:\n"
"  ours    our virtio-iommu + DMA engine, the driver kicking every request\n"
"  polled  the same, viommu-server --poll-rq-us N (a CPU polls while busy)\n"
"  qemu    QEMU's virtio-iommu-pci with our DMA engine behind it\n"
"          (viommu-server --no-iommu over vfio-user-pci; edu on a QEMU\n"
"          without vfio-user-pci)\n"
"  bypass  ours with iommu.passthrough=1: ring DMA by GPA vs through VFIO\n"
"all on --qemu, and\n"
"  proxy   ours on --proxy-qemu through x-pci-proxy-dev\n"
"and prints VFIO map+unmap pairs/s (ours/QEMU and polled/QEMU), ns per\n"
"register write and read (vfio-user vs proxy) and ring-mode DMA through\n"
"the IOMMU vs bypass, each with its goal and MET or MISSED.  Each boot\n"
"takes 10-60 s.\n";

/* parse_size() - "4096", "4k", "2m" in bytes; 0 if bad. */
static uint32_t parse_size(const char *s)
{
	char *end;
	unsigned long v;
	int shift = 0;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end == 'k' || *end == 'K')
		shift = 10;
	else if (*end == 'm' || *end == 'M')
		shift = 20;
	end += shift != 0;
	if (errno || end == s || *end || *s == '-' || v > GB_MAX_SIZE)
		v = 0;
	v <<= shift;
	if (!v || v % BENCH_PAGE || v > GB_MAX_SIZE)
		return 0;
	return (uint32_t)v;
}

/* parse_sizes() - the --sizes list into struct gb_opts @dest. */
static int parse_sizes(const char *arg, void *dest, char *err, size_t n)
{
	struct gb_opts *o = dest;
	char buf[256], *tok, *save = NULL;

	if (strlen(arg) >= sizeof(buf)) {
		snprintf(err, n, "list too long");
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", arg);
	o->nsizes = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (o->nsizes == GB_MAX_SIZES) {
			snprintf(err, n, "at most %d sizes", GB_MAX_SIZES);
			return -EINVAL;
		}
		if (!(o->sizes[o->nsizes++] = parse_size(tok))) {
			snprintf(err, n, "'%s' is not a multiple of 4 KiB in "
				 "4k..2m", tok);
			return -EINVAL;
		}
	}
	if (!o->nsizes) {
		snprintf(err, n, "empty list");
		return -EINVAL;
	}
	return 0;
}

/* parse_door() - --door: vfio-user or proxy. */
static int parse_door(const char *v, void *dest, char *err, size_t n)
{
	if (strcmp(v, "vfio-user") && strcmp(v, "proxy")) {
		snprintf(err, n, "vfio-user or proxy, not '%s'", v);
		return -EINVAL;
	}
	*(const char **)dest = v;
	return 0;
}

/* parse_opts() - the command line (after "guest") into @o. */
static void parse_opts(struct gb_opts *o, int argc, char **argv)
{
	struct bopt t[] = {
		{ .name = "--sizes", .type = BOPT_FN, .dest = o,
		  .fn = parse_sizes, .arg = "LIST",
		  .help = "map/unmap sizes, 4 KiB multiples up to 2 MiB, with "
			  "k/m suffixes (default 4k,16k,64k,256k,1m,2m)" },
		{ .name = "--ms", .type = BOPT_UINT, .dest = &o->ms,
		  .arg = "N", .min = 20, .max = 10000,
		  .help = "length of each measurement in the guest (default "
			  "300)" },
		{ .name = "--rounds", .type = BOPT_INT, .dest = &o->rounds,
		  .arg = "N", .min = 1, .max = GB_MAX_ROUNDS,
		  .help = "rounds of the boots (default 3)" },
		{ BOPT_PIN(&o->pin),
		  .help = "run every boot but polled (QEMU, viommu-server, all "
			  "threads) on this CPU; polled's poller needs a CPU "
			  "of its own (default: not pinned, every boot shares "
			  "the machine's CPUs)" },
		{ BOPT_NO_PIN(&o->no_pin), .help = "not pinned (the default)" },
		{ .name = "--poll-rq-us", .type = BOPT_UINT,
		  .dest = &o->poll_rq_us, .arg = "N", .min = 0,
		  .max = 1000000,
		  .help = "the polled boot's viommu-server --poll-rq-us "
			  "(default " BENCH_XSTR(DEFAULT_POLL_RQ_US) "; 0: no "
			  "polled boot)" },
		{ .name = "--qemu", .type = BOPT_STR, .dest = &o->qemu,
		  .arg = "WHICH", .nonempty = true,
		  .help = "the QEMU of the main boots (viommu-run --qemu): 11, "
			  "QEMU 11.1 from BUILD/qemu-11.1, built by "
			  "scripts/qemu11.sh if missing (default); 7.2, the "
			  "host's qemu-system-x86_64; or a PATH to a "
			  "qemu-system-x86_64" },
		{ .name = "--door", .type = BOPT_FN, .dest = &o->door,
		  .fn = parse_door, .arg = "DOOR",
		  .help = "how the main QEMU reaches our devices (viommu-run "
			  "--door): vfio-user (vfio-user-pci; default on QEMU "
			  ">= 10.1) or proxy (x-pci-proxy-dev; default, and "
			  "only, before 10.1)" },
		{ .name = "--proxy-qemu", .type = BOPT_STR,
		  .dest = &o->proxy_qemu, .arg = "WHICH", .nonempty = true,
		  .help = "the QEMU of the proxy boot, as --qemu (default "
			  "7.2); none: no proxy boot.  Skipped when the main "
			  "boots already use the proxy door" },
		{ BOPT_JSON(&o->json), .help = BOPT_JSON_HELP },
		{ GB_OPT_RUN(&o->run) },
		{ GB_OPT_BUILD(&o->build) },
		{ GB_OPT_KEEP(&o->keep) },
		{ BOPT_SMOKE(&o->smoke),
		  .help = "one round of ours and qemu only, 4 KiB, 20 ms; "
			  "skipped (exit 77) unless VIOMMU_BENCH_GUEST=1, as "
			  "booting is slow" },
		{ 0 }
	};
	char err[BOPT_ERR_MAX];

	memset(o, 0, sizeof(*o));
	o->pin = -1;
	o->poll_rq_us = DEFAULT_POLL_RQ_US;
	o->proxy_qemu = "7.2";
	bopts_parse(t, "guest", about, argc, argv);
	bopts_exclusive(t, "--pin", "--no-pin");
	if (!bopt_given(t, "--sizes") &&
	    parse_sizes(o->smoke ? "4k" : "4k,16k,64k,256k,1m,2m", o, err,
			sizeof(err)))
		die("default --sizes: %s", err);
	if (!bopt_given(t, "--ms"))
		o->ms = o->smoke ? 20 : 300;
	if (!bopt_given(t, "--rounds"))
		o->rounds = o->smoke ? 1 : 3;
}

/* ------------------------------------------------------------------ */
/* Main                                                               */

/* any_failed() - whether a boot that ran failed. */
static bool any_failed(const struct guestb *g)
{
	for (int r = 0; r < g->o.rounds; r++)
		for (int p = 0; p < P_COUNT; p++)
			if (g->b[r][p].ran && !g->b[r][p].ok)
				return true;
	return false;
}

/* setup() - locate viommu-run and the build; check what can run. */
static void setup(struct guestb *g)
{
	gb_locate(g->o.pin, g->build, g->o.build, g->run, g->o.run);
	check_peers(g);
	snprintf(g->tmp, sizeof(g->tmp), "/tmp/viommu-bench-guest-XXXXXX");
	if (!mkdtemp(g->tmp))
		die("mkdtemp: %s", strerror(errno));
}

/* nothing_runs() - whether every peer is skipped. */
static bool nothing_runs(const struct guestb *g)
{
	for (int p = 0; p < P_COUNT; p++)
		if (!g->skip[p][0])
			return false;
	return true;
}

/* bench_guest_main() - `viommu-bench guest`. */
int bench_guest_main(int argc, char **argv)
{
	static struct guestb g;
	struct outputs out;

	if (!bench_cmd)
		bench_cmd = "guest";
	parse_opts(&g.o, argc, argv);
	if (gb_smoke_skipped("guest", g.o.smoke))
		return EXIT_SKIP;
	setup(&g);
	outputs_open(&out, g.o.json);
	machine_info(&g.m);
	if (nothing_runs(&g))
		fprintf(stderr, "viommu-bench guest: nothing can run: %s\n",
			g.skip[P_OURS]);
	run_all(&g);
	REPORT_FINISH(&out, &g.m, gb_print_table, gb_write_json, &g);
	return gb_end("guest", g.tmp, g.o.keep, any_failed(&g),
		      g.o.smoke && !g.nboots);
}
