/*
 * qemu.c - `viommu-bench qemu`: our virtio-iommu against QEMU 7.2's at the
 * device boundary, in one run (issue 5, part 2).
 *
 * Topology: ONE QEMU process (q35, memfd RAM shared, -accel tcg -S: the
 * CPUs never run, so everything reaches the devices through qtest from
 * QEMU's main thread only - QEMU's proxy device can deadlock when two
 * QEMU threads access it at once) holding
 *   00:03.0  QEMU's virtio-iommu-pci
 *   00:04.0  x-pci-proxy-dev -> viommu-server link 0: our virtio-iommu
 *   00:05.0  x-pci-proxy-dev -> viommu-server link 1: a DMA engine,
 *            endpoint 0x28 for both IOMMUs (it sits behind QEMU's IOMMU
 *            as well, being on bus 0 after it)
 * viommu-server is started here with socketpair ends (--link I:fd=N).
 *
 * Method: one register-level driver (vpci_drv.c) over a qtest bus drives
 * both devices identically: PCI setup, virtio handshake, one split request
 * queue (each device's maximum: 256 on both), ATTACH endpoint 0x28 to domain 1, then alternating batches
 * of n MAPs (4 KiB each, IOVAs 4 GiB + 4 KiB * j) and the n UNMAPs of the
 * same ranges, one kick per batch, for n in --sizes (1, 16, 128).  Each
 * batch costs the same qtest round trips on both devices (descriptor
 * writes when lengths change, the request bodies, the available ring,
 * the kick, the used-index poll, the used elements, the tails).  Figures:
 *  - req/s all:  requests / wall time of the whole loop (driver included);
 *  - req/s kick: requests / time from sending the kick until the used
 *    index shows the batch (one MMIO write + normally one RAM read);
 *  - the median kick time per batch split into a fixed part per kick and
 *    a part per request (the line through the smallest and largest n), and
 *    the "empty kick" (notify + used-index read with nothing available):
 *    ours minus QEMU's is the cost of the proxy hop;
 *  - the bare qtest round trip (a RAM readw);
 *  - CPU time of QEMU, of viommu-server and of this program per request
 *    (/proc schedstat), which shows where the time goes.
 * The two devices take turns in chunks of about 128 requests (at least
 * one MAP + UNMAP pair) within each measurement, so load changes on a
 * shared machine hit both alike; the ratio ours / QEMU is taken per run
 * and its median over --runs runs reported (with min..max).
 */
#include "common.h"
#include "qtest.h"
#include "vpci_drv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* The subcommand's entry point (bench/main.c dispatches to it). */
int bench_qemu_main(int argc, char **argv);

#define EXIT_SKIP 77
#define MAX_SIZES 8
#define NDEV 2
#define DEV_QEMU 0
#define DEV_OURS 1
#define SLOT_QEMU 3
#define SLOT_OURS 4
#define SLOT_EP 5
#define EP_ID (SLOT_EP << 3)
#define DOMAIN_ID 1u
#define RAM_SIZE_STR "256M"
#define RING_AREA 0x100000ull
#define RING_BASE(dev) (0x100000ull + (dev) * RING_AREA)
#define MMIO_BASE 0xc0000000ull
#define MMIO_END 0xe0000000ull
#define IOVA_BASE (1ull << 32)
#define PHYS_BASE 0x1000000ull
#define PAGE 4096ull
#define MAX_POLLS 100000
#define PROBE_ROUNDS 200
#define CHUNK_REQUESTS 128
#define KICK_SAMPLES 32768
#define GOAL_RATIO 3.0

static const char *const dev_names[NDEV] = { "qemu", "ours" };
static const char *const dev_long[NDEV] = {
	"QEMU's virtio-iommu-pci (in process)",
	"ours (viommu-server behind x-pci-proxy-dev)",
};

struct opts {
	bool smoke;
	const char *json, *qemu, *server;
	uint32_t sizes[MAX_SIZES];
	int nsizes;
	uint32_t requests;
	int runs, timeout_ms;
};

/* One measurement: one device, one batch size, one run. */
struct sample {
	double rps_all, rps_kick;   /* requests per second */
	double kick_ns;             /* mean kick-to-used per batch */
	double kick_med_ns;         /* its median (robust to preemption) */
	double rt_batch;            /* qtest round trips per batch */
	double cpu_qemu, cpu_srv, cpu_self; /* ns per request (-1 unknown) */
};

/* Medians over runs, per batch size and device. */
struct summary {
	struct sample med, min, max;
};

struct world {
	struct opts o;
	struct machine m;
	char qemu_path[PATH_MAX], server_path[PATH_MAX], qemu_version[128];
	pid_t server;
	int server_log;
	struct qtest *q;
	struct vpci_bus bus;
	struct vpci_dev dev[NDEV];
	struct vpci_req map[VPCI_MAX_QUEUE / 2], unmap[VPCI_MAX_QUEUE / 2];
	double rt_ns[BENCH_MAX_RUNS], empty_ns[NDEV][BENCH_MAX_RUNS];
	struct sample s[MAX_SIZES][NDEV][BENCH_MAX_RUNS];
	struct summary sum[MAX_SIZES][NDEV];
	/* ours / QEMU per run: [k][0] all, [k][1] kick; median, min, max */
	double ratio[MAX_SIZES][2][BENCH_MAX_RUNS];
	double m_ratio[MAX_SIZES][2][3];
	double m_rt_ns, m_empty_ns[NDEV];
	double kicks[NDEV][KICK_SAMPLES]; /* scratch of measure() */
	/* kick = fixed + n * per_req, through the smallest and largest n */
	bool fit;
	int k_lo, k_hi;
	double fixed_ns[NDEV], per_req_ns[NDEV];
};

/* ------------------------------------------------------------------ */
/* Finding the programs                                                 */

/* find_in_path() - @name (or a path) as an executable into @out. */
static bool find_in_path(const char *name, char *out, size_t n)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/')) {
		snprintf(out, n, "%s", name);
		return !access(out, X_OK);
	}
	while (path && *path) {
		size_t len = strcspn(path, ":");

		if ((size_t)snprintf(out, n, "%.*s/%s", (int)len, path, name) <
			    n && len && !access(out, X_OK))
			return true;
		path += len + (path[len] == ':');
	}
	return false;
}

/*
 * find_server() - --server, $VIOMMU_SERVER, the build tree next to this
 * program (../tools/viommu-server), the install directory, PATH.
 */
static bool find_server(const struct opts *o, char *out, size_t n)
{
	char self[PATH_MAX], *slash;
	ssize_t len;
	const char *env = getenv("VIOMMU_SERVER");

	if (o->server || (env && *env))
		return find_in_path(o->server ? o->server : env, out, n);
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	slash = len > 0 ? memrchr(self, '/', (size_t)len) : NULL;
	if (slash) {
		*slash = '\0';
		if ((size_t)snprintf(out, n, "%s/../tools/viommu-server",
				     self) < n && !access(out, X_OK))
			return true;
		if ((size_t)snprintf(out, n, "%s/viommu-server", self) < n &&
		    !access(out, X_OK))
			return true;
	}
	return find_in_path("viommu-server", out, n);
}

/* qemu_version() - the first line of `QEMU --version`. */
static void qemu_version(const char *qemu, char *out, size_t n)
{
	char cmd[PATH_MAX + 32];
	FILE *p;

	snprintf(out, n, "unknown");
	snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", qemu);
	if (strchr(qemu, '\'') || !(p = popen(cmd, "r")))
		return;
	if (fgets(out, (int)n, p))
		out[strcspn(out, "\n")] = '\0';
	pclose(p);
}

/* ------------------------------------------------------------------ */
/* viommu-server                                                        */

/* temp_log() - an unlinked temporary file for a child's output. */
static int temp_log(void)
{
	const char *tmp = getenv("TMPDIR");
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/viommu-bench-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* server_tail() - the end of the server's log, on one line. */
static void server_tail(const struct world *w, char *out, size_t n)
{
	char raw[512];
	off_t end = lseek(w->server_log, 0, SEEK_END);
	off_t start = end > (off_t)sizeof(raw) - 1 ? end - (off_t)sizeof(raw)
							 + 1 : 0;
	ssize_t got = end > 0 ? pread(w->server_log, raw,
				      (size_t)(end - start), start) : 0;

	if (got <= 0) {
		snprintf(out, n, "(nothing)");
		return;
	}
	raw[got] = '\0';
	for (char *p = raw; *p; p++)
		if (*p == '\n')
			*p = ' ';
	snprintf(out, n, "%s", raw);
}

/*
 * server_state() - for a failure on our side: whether viommu-server is
 * still running, and the end of its log.
 */
static void server_state(struct world *w, char *out, size_t n)
{
	char tail[600];
	int status;

	server_tail(w, tail, sizeof(tail));
	if (w->server > 0 && waitpid(w->server, &status, WNOHANG) ==
	    w->server) {
		w->server = -1;
		snprintf(out, n, "; viommu-server ended (wait status %#x), "
			 "its log: %s", status, tail);
	} else {
		snprintf(out, n, "; viommu-server's log: %s", tail);
	}
}

/* start_server() - viommu-server on links 0 and 1 (@fds, ours). */
static void start_server(struct world *w, const int fds[2])
{
	char l0[32], l1[32];
	const char *argv[] = { w->server_path, "--link", l0, "--link", l1,
			       "--log-level", "warn", NULL };

	snprintf(l0, sizeof(l0), "0:fd=%d", fds[0]);
	snprintf(l1, sizeof(l1), "1:fd=%d", fds[1]);
	w->server_log = temp_log();
	if (w->server_log < 0)
		die("cannot create a temporary file: %s", strerror(errno));
	w->server = fork();
	if (w->server < 0)
		die("fork: %s", strerror(errno));
	if (w->server == 0) {
		int null = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, 0);
		dup2(null, 1);
		dup2(w->server_log, 2);
		fcntl(fds[0], F_SETFD, 0);
		fcntl(fds[1], F_SETFD, 0);
		execv(w->server_path, (char *const *)argv);
		_exit(127);
	}
}

/*
 * stop_server() - it ends by itself when QEMU closes the links; after a
 * bounded wait it gets SIGTERM, then SIGKILL.
 */
static void stop_server(struct world *w)
{
	static const int sigs[] = { 0, SIGTERM, SIGKILL };
	int status = 0;
	char tail[600];
	bool reaped = w->server <= 0;

	for (int s = 0; !reaped && s < 3; s++) {
		if (sigs[s])
			kill(w->server, sigs[s]);
		for (int i = 0; !reaped && i < 300; i++) {
			reaped = waitpid(w->server, &status, WNOHANG) ==
				 w->server;
			if (!reaped)
				usleep(10000);
		}
	}
	if (reaped && w->server > 0 &&
	    (!WIFEXITED(status) || WEXITSTATUS(status))) {
		server_tail(w, tail, sizeof(tail));
		fprintf(stderr, "viommu-bench qemu: warning: viommu-server "
			"ended with wait status %#x: %s\n", status, tail);
	}
	close(w->server_log);
}

/* ------------------------------------------------------------------ */
/* The qtest bus                                                        */

/* cfg_addr() - the 0xcf8 address of @bdf's dword at @off. */
static uint32_t cfg_addr(uint16_t bdf, uint16_t off)
{
	return 0x80000000u | (uint32_t)bdf << 8 | (off & 0xfc);
}

static int bus_cfg_read(void *opaque, uint16_t bdf, uint16_t off, int size,
			uint32_t *val)
{
	int err = qtest_out(opaque, 4, 0xcf8, cfg_addr(bdf, off));

	return err ? err : qtest_in(opaque, size, (uint16_t)(0xcfc + (off & 3)),
				    val);
}

static int bus_cfg_write(void *opaque, uint16_t bdf, uint16_t off,
			 int size, uint32_t val)
{
	int err = qtest_out(opaque, 4, 0xcf8, cfg_addr(bdf, off));

	return err ? err : qtest_out(opaque, size,
				     (uint16_t)(0xcfc + (off & 3)), val);
}

static int bus_mmio_read(void *opaque, uint64_t addr, int size,
			 uint64_t *val)
{
	return qtest_readn(opaque, size, addr, val);
}

static int bus_mmio_write(void *opaque, uint64_t addr, int size,
			  uint64_t val)
{
	return qtest_writen(opaque, size, addr, val);
}

static int bus_mem_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	return qtest_memread(opaque, gpa, buf, len);
}

static int bus_mem_write(void *opaque, uint64_t gpa, const void *buf,
			 size_t len)
{
	return qtest_memwrite(opaque, gpa, buf, len);
}

static const struct vpci_bus_ops qtest_bus_ops = {
	.cfg_read = bus_cfg_read, .cfg_write = bus_cfg_write,
	.mmio_read = bus_mmio_read, .mmio_write = bus_mmio_write,
	.mem_read = bus_mem_read, .mem_write = bus_mem_write,
};

/* ------------------------------------------------------------------ */
/* Setup and teardown                                                   */

/* start_qemu() - the VM with both IOMMUs, links @fds (QEMU's ends). */
static void start_qemu(struct world *w, const int fds[2])
{
	char px0[64], px1[64], err[900];
	const char *args[] = {
		"-M", "q35,memory-backend=ram", "-object",
		"memory-backend-memfd,id=ram,size=" RAM_SIZE_STR ",share=on",
		"-m", RAM_SIZE_STR, "-accel", "tcg", "-S", "-display", "none",
		"-nodefaults", "-device", "virtio-iommu-pci,addr=0x3",
		"-device", px0, "-device", px1, NULL,
	};
	struct qtest_config c = { .qemu = w->qemu_path, .args = args,
				  .pass_fds = fds, .npass = 2,
				  .timeout_ms = w->o.timeout_ms };

	snprintf(px0, sizeof(px0), "x-pci-proxy-dev,id=px0,addr=%#x,fd=%d",
		 SLOT_OURS, fds[0]);
	snprintf(px1, sizeof(px1), "x-pci-proxy-dev,id=px1,addr=%#x,fd=%d",
		 SLOT_EP, fds[1]);
	if (qtest_start(&c, &w->q, err, sizeof(err)))
		die("starting QEMU: %s", err);
}

/* check_ok() - die unless every status in @st[0..n) is OK. */
static void check_ok(int dev, const uint8_t *st, const struct vpci_req *r,
		     unsigned n)
{
	static const char *const names[] = { "OK", "IOERR", "UNSUPP",
					     "DEVERR", "INVAL", "RANGE",
					     "NOENT", "FAULT", "NOMEM" };

	for (unsigned j = 0; j < n; j++)
		if (st[j])
			die("%s: request %u (type %u) answered status %u (%s)",
			    dev_long[dev], j, r[j].type, st[j],
			    st[j] < 9 ? names[st[j]] : "?");
}

/* fail_dev() - die with what the driver, qtest and the server say. */
static void __attribute__((noreturn))
fail_dev(struct world *w, int dev, const char *what)
{
	char srv[700] = "";

	if (dev == DEV_OURS)
		server_state(w, srv, sizeof(srv));
	die("%s: %s: %s%s%s%s%s", dev_long[dev], what, w->dev[dev].err,
	    qtest_error(w->q)[0] ? " (qtest: " : "", qtest_error(w->q),
	    qtest_error(w->q)[0] ? ")" : "", srv);
}

/* run_batch() - one batch on @dev; die on any failure. */
static void run_batch(struct world *w, int dev, const struct vpci_req *r,
		      unsigned n, uint64_t *kick_ns)
{
	struct vpci_dev *d = &w->dev[dev];
	uint8_t st[VPCI_MAX_QUEUE / 2];
	uint64_t t0;
	int err = vpci_submit(d, r, n);

	t0 = clock_ns(CLOCK_MONOTONIC);
	if (!err)
		err = vpci_kick(d);
	if (!err)
		err = vpci_wait(d, MAX_POLLS);
	if (kick_ns)
		*kick_ns += clock_ns(CLOCK_MONOTONIC) - t0;
	if (!err)
		err = vpci_complete(d, st, n);
	if (err)
		fail_dev(w, dev, strerror(-err));
	check_ok(dev, st, r, n);
}

/* setup_devices() - init both drivers and attach endpoint 0x28. */
static void setup_devices(struct world *w)
{
	const struct vpci_req attach = { .type = VPCI_REQ_ATTACH,
					 .domain = DOMAIN_ID,
					 .endpoint = EP_ID };
	static const uint16_t slot[NDEV] = { SLOT_QEMU, SLOT_OURS };

	w->bus = (struct vpci_bus){ .ops = &qtest_bus_ops, .opaque = w->q,
				    .mmio_next = MMIO_BASE,
				    .mmio_end = MMIO_END };
	for (int i = 0; i < NDEV; i++) {
		struct vpci_config c = { .bdf = (uint16_t)(slot[i] << 3),
					 .ram_base = RING_BASE(i),
					 .ram_size = RING_AREA };

		if (vpci_init(&w->dev[i], &w->bus, &c))
			fail_dev(w, i, "init failed");
		for (int k = 0; k < w->o.nsizes; k++)
			if (w->o.sizes[k] > w->dev[i].qsize / 2u)
				bad_usage("--sizes: %u requests do not fit "
					  "%s's queue of %u (2 descriptors "
					  "each)", w->o.sizes[k], dev_names[i],
					  w->dev[i].qsize);
		run_batch(w, i, &attach, 1, NULL);
	}
}

/* build_requests() - the MAP and UNMAP batches (the largest size). */
static void build_requests(struct world *w)
{
	for (unsigned j = 0; j < VPCI_MAX_QUEUE / 2; j++) {
		uint64_t va = IOVA_BASE + j * PAGE;

		w->map[j] = (struct vpci_req){
			.type = VPCI_REQ_MAP, .domain = DOMAIN_ID,
			.virt_start = va, .virt_end = va + PAGE - 1,
			.phys_start = PHYS_BASE + j * PAGE,
			.flags = VPCI_MAP_READ | VPCI_MAP_WRITE };
		w->unmap[j] = (struct vpci_req){
			.type = VPCI_REQ_UNMAP, .domain = DOMAIN_ID,
			.virt_start = va, .virt_end = va + PAGE - 1 };
	}
}

/* ------------------------------------------------------------------ */
/* Measuring                                                            */

/* proc_cpu_ns() - on-CPU ns of every thread of @pid (-1: unknown). */
static double proc_cpu_ns(pid_t pid)
{
	char path[64];
	struct dirent *e;
	double sum = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((e = readdir(dir))) {
		char f[400];
		unsigned long long ns;
		FILE *fp;

		if (e->d_name[0] == '.')
			continue;
		snprintf(f, sizeof(f), "%s/%s/schedstat", path, e->d_name);
		fp = fopen(f, "r");
		if (!fp || fscanf(fp, "%llu", &ns) != 1)
			sum = -1e30;
		else
			sum += (double)ns;
		if (fp)
			fclose(fp);
	}
	closedir(dir);
	return sum < 0 ? -1 : sum;
}

/* struct cpu3 - CPU time of QEMU, the server and this process. */
struct cpu3 {
	double qemu, srv, self;
};

/*
 * cpu_now() - read the three clocks; @self_first orders the reads so that
 * neither /proc reading of a span is charged to this program.
 */
static struct cpu3 cpu_now(const struct world *w, bool self_first)
{
	struct cpu3 c;

	if (self_first)
		c.self = (double)clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	c.qemu = proc_cpu_ns(qtest_pid(w->q));
	c.srv = proc_cpu_ns(w->server);
	if (!self_first)
		c.self = (double)clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	return c;
}

/* batches_for() - an even number of batches for about --requests. */
static unsigned batches_for(const struct world *w, unsigned n)
{
	unsigned b = w->o.requests / n;

	b += b & 1;
	return b < 2 ? 2 : b;
}

/*
 * struct acc - what one device accumulated over one measurement; @kicks
 * keeps the first KICK_SAMPLES kick times for their median.
 */
struct acc {
	uint64_t wall, kick, rt, batches;
	double cpu_qemu, cpu_srv, cpu_self;
	bool cpu_bad;
	double *kicks;
	unsigned nkicks;
};

/* add_cpu() - the CPU spent between @a and @b into @x. */
static void add_cpu(struct acc *x, const struct cpu3 *a, const struct cpu3 *b)
{
	if (a->qemu < 0 || b->qemu < 0 || a->srv < 0 || b->srv < 0)
		x->cpu_bad = true;
	x->cpu_qemu += b->qemu - a->qemu;
	x->cpu_srv += b->srv - a->srv;
	x->cpu_self += b->self - a->self;
}

/* run_chunk() - @pairs MAP + UNMAP batch pairs of @n on @dev. */
static void run_chunk(struct world *w, int dev, unsigned n, unsigned pairs,
		      struct acc *a)
{
	struct cpu3 c0 = cpu_now(w, false), c1;
	uint64_t rt0 = qtest_round_trips(w->q), t0 = clock_ns(CLOCK_MONOTONIC);

	for (unsigned b = 0; b < 2 * pairs; b++) {
		uint64_t k = 0;

		run_batch(w, dev, b & 1 ? w->unmap : w->map, n, &k);
		a->kick += k;
		if (a->nkicks < KICK_SAMPLES)
			a->kicks[a->nkicks++] = (double)k;
	}
	a->wall += clock_ns(CLOCK_MONOTONIC) - t0;
	a->rt += qtest_round_trips(w->q) - rt0;
	a->batches += 2ull * pairs;
	c1 = cpu_now(w, true);
	add_cpu(a, &c0, &c1);
}

/* to_sample() - per-request figures from an accumulation. */
static void to_sample(struct acc *a, unsigned n, struct sample *s)
{
	double reqs = (double)a->batches * n;

	s->rps_all = reqs * 1e9 / (double)a->wall;
	s->rps_kick = reqs * 1e9 / (double)a->kick;
	s->kick_ns = (double)a->kick / (double)a->batches;
	s->kick_med_ns = median(a->kicks, (int)a->nkicks);
	s->rt_batch = (double)a->rt / (double)a->batches;
	s->cpu_qemu = a->cpu_bad ? -1 : a->cpu_qemu / reqs;
	s->cpu_srv = a->cpu_bad ? -1 : a->cpu_srv / reqs;
	s->cpu_self = a->cpu_self / reqs;
}

/*
 * measure() - batch size @k in run @r: the two devices take turns in
 * chunks of about CHUNK_REQUESTS requests (at least one MAP + UNMAP
 * pair), so that load changes on the machine hit both alike.
 */
static void measure(struct world *w, int k, int r)
{
	unsigned n = w->o.sizes[k], pairs = batches_for(w, n) / 2;
	unsigned chunk = CHUNK_REQUESTS / (2 * n), c = 0;
	struct acc a[NDEV] = { { .kicks = w->kicks[0] },
			       { .kicks = w->kicks[1] } };

	if (!chunk)
		chunk = 1;
	for (unsigned done = 0; done < pairs; c++) {
		unsigned now = pairs - done < chunk ? pairs - done : chunk;

		for (int i = 0; i < NDEV; i++)
			run_chunk(w, (int)((r + c + i) % NDEV), n, now,
				  &a[(r + c + i) % NDEV]);
		done += now;
	}
	for (int dev = 0; dev < NDEV; dev++)
		to_sample(&a[dev], n, &w->s[k][dev][r]);
	w->ratio[k][0][r] = w->s[k][DEV_OURS][r].rps_all /
			    w->s[k][DEV_QEMU][r].rps_all;
	w->ratio[k][1][r] = w->s[k][DEV_OURS][r].rps_kick /
			    w->s[k][DEV_QEMU][r].rps_kick;
}

/* time_kick() - one empty kick (notify + used-index read) on @dev. */
static uint64_t time_kick(struct world *w, int dev)
{
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);

	if (vpci_kick(&w->dev[dev]) || vpci_wait(&w->dev[dev], 1))
		fail_dev(w, dev, "empty kick");
	return clock_ns(CLOCK_MONOTONIC) - t0;
}

/*
 * probe_costs() - interleaved: a bare qtest round trip (a RAM readw) and
 * per device an empty kick - the notify write and the used-index read of
 * a batch with nothing available (the fixed part of the "kick" figure).
 */
static void probe_costs(struct world *w, int run)
{
	uint64_t rt = 0, kick[NDEV] = { 0 }, t0, v;

	for (int i = 0; i < PROBE_ROUNDS; i++) {
		t0 = clock_ns(CLOCK_MONOTONIC);
		if (qtest_readn(w->q, 2, RING_BASE(0), &v))
			die("qtest: %s", qtest_error(w->q));
		rt += clock_ns(CLOCK_MONOTONIC) - t0;
		for (int k = 0; k < NDEV; k++)
			kick[(i + k) % NDEV] += time_kick(w, (i + k) % NDEV);
	}
	w->rt_ns[run] = (double)rt / PROBE_ROUNDS;
	for (int dev = 0; dev < NDEV; dev++)
		w->empty_ns[dev][run] = (double)kick[dev] / PROBE_ROUNDS;
}

/* run_all() - warm up, then every run, size and device. */
static void run_all(struct world *w)
{
	for (int k = 0; k < w->o.nsizes; k++)
		for (int dev = 0; dev < NDEV; dev++) {
			run_batch(w, dev, w->map, w->o.sizes[k], NULL);
			run_batch(w, dev, w->unmap, w->o.sizes[k], NULL);
		}
	for (int r = 0; r < w->o.runs; r++) {
		probe_costs(w, r);
		for (int k = 0; k < w->o.nsizes; k++)
			measure(w, k, r);
	}
}

/* ------------------------------------------------------------------ */
/* Statistics and output                                                */

/* summarise_field() - median, min, max of one sample field. */
static void summarise_field(const struct world *w, int k, int dev,
			    size_t off, struct summary *s)
{
	double v[BENCH_MAX_RUNS];

	for (int r = 0; r < w->o.runs; r++)
		v[r] = *(const double *)((const char *)&w->s[k][dev][r] + off);
	*(double *)((char *)&s->med + off) = median(v, w->o.runs);
	*(double *)((char *)&s->min + off) = v[0];
	*(double *)((char *)&s->max + off) = v[w->o.runs - 1];
}

/*
 * fit_kick() - split each device's kick time into a fixed part per kick
 * and a part per request: per run, the line through the median kick
 * times of the smallest and the largest batch size; medians over runs.
 */
static void fit_kick(struct world *w)
{
	double fixed[BENCH_MAX_RUNS], per[BENCH_MAX_RUNS], dn;
	int lo = 0, hi = 0;

	for (int k = 1; k < w->o.nsizes; k++) {
		lo = w->o.sizes[k] < w->o.sizes[lo] ? k : lo;
		hi = w->o.sizes[k] > w->o.sizes[hi] ? k : hi;
	}
	dn = (double)w->o.sizes[hi] - w->o.sizes[lo];
	w->fit = dn > 0;
	w->k_lo = lo;
	w->k_hi = hi;
	for (int dev = 0; w->fit && dev < NDEV; dev++) {
		for (int r = 0; r < w->o.runs; r++) {
			double ka = w->s[lo][dev][r].kick_med_ns;

			per[r] = (w->s[hi][dev][r].kick_med_ns - ka) / dn;
			fixed[r] = ka - per[r] * w->o.sizes[lo];
		}
		w->per_req_ns[dev] = median(per, w->o.runs);
		w->fixed_ns[dev] = median(fixed, w->o.runs);
	}
}

/* summarise() - medians of everything. */
static void summarise(struct world *w)
{
	static const size_t fields[] = {
		offsetof(struct sample, rps_all),
		offsetof(struct sample, rps_kick),
		offsetof(struct sample, kick_ns),
		offsetof(struct sample, kick_med_ns),
		offsetof(struct sample, rt_batch),
		offsetof(struct sample, cpu_qemu),
		offsetof(struct sample, cpu_srv),
		offsetof(struct sample, cpu_self),
	};
	double v[BENCH_MAX_RUNS];

	memcpy(v, w->rt_ns, sizeof(double) * (size_t)w->o.runs);
	w->m_rt_ns = median(v, w->o.runs);
	for (int dev = 0; dev < NDEV; dev++) {
		memcpy(v, w->empty_ns[dev], sizeof(double) * (size_t)w->o.runs);
		w->m_empty_ns[dev] = median(v, w->o.runs);
	}
	for (int k = 0; k < w->o.nsizes; k++)
		for (int dev = 0; dev < NDEV; dev++) {
			struct summary *s = &w->sum[k][dev];

			for (size_t f = 0; f < sizeof(fields) / sizeof(*fields);
			     f++)
				summarise_field(w, k, dev, fields[f], s);
		}
	for (int k = 0; k < w->o.nsizes; k++)
		for (int i = 0; i < 2; i++) {
			memcpy(v, w->ratio[k][i],
			       sizeof(double) * (size_t)w->o.runs);
			w->m_ratio[k][i][0] = median(v, w->o.runs);
			w->m_ratio[k][i][1] = v[0];
			w->m_ratio[k][i][2] = v[w->o.runs - 1];
		}
	fit_kick(w);
}

/* fmt_cpu() - a CPU figure or "n/a". */
static void fmt_cpu(char *buf, size_t n, double v)
{
	if (v < 0)
		snprintf(buf, n, "n/a");
	else
		snprintf(buf, n, "%.0f", v);
}

/* print_row() - one device's line of the table. */
static void print_row(const struct world *w, int k, int dev, FILE *f)
{
	const struct summary *s = &w->sum[k][dev];
	char all[16], mn[16], mx[16], range[40], kick[16], cq[16], cs[16],
		cb[16];

	fmt_rate(all, sizeof(all), s->med.rps_all);
	fmt_rate(mn, sizeof(mn), s->min.rps_all);
	fmt_rate(mx, sizeof(mx), s->max.rps_all);
	snprintf(range, sizeof(range), "%s..%s", mn, mx);
	fmt_rate(kick, sizeof(kick), s->med.rps_kick);
	fmt_cpu(cq, sizeof(cq), s->med.cpu_qemu);
	fmt_cpu(cs, sizeof(cs), s->med.cpu_srv);
	fmt_cpu(cb, sizeof(cb), s->med.cpu_self);
	fprintf(f, "  %8u  %-5s %9s %17s %10s %8.1f %7.1f %8.1f %8s %8s "
		"%8s\n", w->o.sizes[k], dev_names[dev], all, range, kick,
		s->med.kick_ns / 1000, s->med.kick_med_ns / 1000,
		s->med.rt_batch, cq, cs, cb);
}

/* print_fit() - where the kick time goes. */
static void print_fit(const struct world *w, FILE *f)
{
	fprintf(f, "\nwhere the time goes: a batch costs the same qtest round "
		"trips on both sides (%.1f us\neach); ours adds the proxy hop "
		"(QEMU -> viommu-server -> QEMU) on every kick:\nempty kick "
		"ours - qemu = %.1f us.\n", w->m_rt_ns / 1000,
		(w->m_empty_ns[DEV_OURS] - w->m_empty_ns[DEV_QEMU]) / 1000);
	if (!w->fit) {
		fprintf(f, "(one batch size: no per-request split of the kick "
			"time)\n");
		return;
	}
	fprintf(f, "median kick time = fixed + n x per request (per run, the "
		"line through n=%u\nand n=%u; medians over runs):\n", w->o.sizes[w->k_lo],
		w->o.sizes[w->k_hi]);
	for (int dev = 0; dev < NDEV; dev++)
		fprintf(f, "  %-5s fixed %6.1f us per kick, %6.0f ns per "
			"request\n", dev_names[dev], w->fixed_ns[dev] / 1000,
			w->per_req_ns[dev]);
	fprintf(f, "  per-request device cost, qemu/ours: %.2fx\n",
		w->per_req_ns[DEV_QEMU] / w->per_req_ns[DEV_OURS]);
}

/* print_table() - the human-readable report. */
static void print_table(const struct world *w, FILE *f)
{
	fprintf(f, "viommu-bench qemu (viommu %s)%s\n", viommu_version(),
		w->o.smoke ? " -- SMOKE RUN: numbers not meaningful" : "");
	machine_print(&w->m, f);
	fprintf(f, "peer:    %s (%s)\n", w->qemu_version, w->qemu_path);
	fprintf(f, "method:  one QEMU (q35, -accel tcg -S: CPUs halted, every "
		"access through qtest)\n         with QEMU's virtio-iommu-pci "
		"at 00:03.0 and ours at 00:04.0 (x-pci-proxy-dev ->\n"
		"         viommu-server); one register-level driver, same "
		"qtest path; endpoint 0x28\n         in domain 1; alternating "
		"batches of n MAP / n UNMAP (4 KiB), one kick each;\n"
		"         ~%u requests per device and measurement, the devices "
		"taking turns in\n         chunks of ~%d requests; median of "
		"%d runs (ratios: median of per-run ratios)\n", w->o.requests,
		CHUNK_REQUESTS, w->o.runs);
	fprintf(f, "         req/s all: whole loop incl. driver round trips; "
		"kick: kick write until\n         the used index shows the "
		"batch (kick us: mean, med us: median per batch);\n         "
		"cpu: ns per request of QEMU, viommu-server, this program "
		"(/proc schedstat)\n");
	fprintf(f, "qtest round trip (RAM readw): %.1f us; empty kick "
		"(notify + used-index read,\nnothing available): qemu %.1f us, "
		"ours %.1f us\n", w->m_rt_ns / 1000,
		w->m_empty_ns[DEV_QEMU] / 1000, w->m_empty_ns[DEV_OURS] / 1000);
	fprintf(f, "\n  %8s  %-5s %9s %17s %10s %8s %7s %8s %8s %8s %8s\n",
		"req/kick", "dev", "req/s all", "(min..max)", "req/s kick",
		"kick us", "med us", "rt/batch", "cpu qemu", "cpu srv",
		"cpu bnch");
	for (int k = 0; k < w->o.nsizes; k++) {
		const double (*m)[3] = w->m_ratio[k];

		print_row(w, k, DEV_QEMU, f);
		print_row(w, k, DEV_OURS, f);
		fprintf(f, "  %8s  ours/qemu: all %.2fx (%.2f..%.2f), kick "
			"%.2fx (%.2f..%.2f); goal >= %.0fx\n", "", m[0][0],
			m[0][1], m[0][2], m[1][0], m[1][1], m[1][2],
			GOAL_RATIO);
	}
	print_fit(w, f);
}

/* print_dev_json() - one device's figures at one size. */
static void print_dev_json(const struct world *w, int k, int dev, FILE *f)
{
	const struct summary *s = &w->sum[k][dev];

	fprintf(f, "\"%s\": {\"requests_per_s\": %.1f, "
		"\"requests_per_s_min\": %.1f, \"requests_per_s_max\": %.1f, "
		"\"kick_requests_per_s\": %.1f, \"kick_ns_per_batch\": %.1f, "
		"\"kick_ns_per_batch_median\": %.1f, "
		"\"round_trips_per_batch\": %.2f, "
		"\"cpu_ns_per_request\": {\"qemu\": %.1f, \"server\": %.1f, "
		"\"bench\": %.1f}}", dev_names[dev], s->med.rps_all,
		s->min.rps_all, s->max.rps_all, s->med.rps_kick,
		s->med.kick_ns, s->med.kick_med_ns, s->med.rt_batch,
		s->med.cpu_qemu, s->med.cpu_srv, s->med.cpu_self);
}

/* print_json() - the machine-readable report. */
static void print_json(const struct world *w, FILE *f)
{
	json_header(f, "qemu", w->o.smoke, w->o.runs, &w->m);
	fprintf(f, ",\n  \"peer\": ");
	json_str(f, w->qemu_version);
	fprintf(f, ",\n  \"topology\": \"one QEMU, -accel tcg -S, qtest; "
		"QEMU virtio-iommu-pci 00:03.0, ours x-pci-proxy-dev 00:04.0 "
		"-> viommu-server; endpoint 0x28 domain 1\",\n"
		"  \"requests_per_measurement\": %u,\n  \"goal_ratio\": %.1f,\n"
		"  \"qtest_round_trip_ns\": %.1f,\n  \"empty_kick_ns\": "
		"{\"qemu\": %.1f, \"ours\": %.1f},\n  \"results\": [",
		w->o.requests, GOAL_RATIO, w->m_rt_ns, w->m_empty_ns[DEV_QEMU],
		w->m_empty_ns[DEV_OURS]);
	for (int k = 0; k < w->o.nsizes; k++) {
		const double (*m)[3] = w->m_ratio[k];

		fprintf(f, "%s\n    {\"requests_per_kick\": %u, ",
			k ? "," : "", w->o.sizes[k]);
		print_dev_json(w, k, DEV_QEMU, f);
		fprintf(f, ", ");
		print_dev_json(w, k, DEV_OURS, f);
		fprintf(f, ", \"ratio\": %.3f, \"ratio_min\": %.3f, "
			"\"ratio_max\": %.3f, \"kick_ratio\": %.3f, "
			"\"kick_ratio_min\": %.3f, \"kick_ratio_max\": %.3f}",
			m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2]);
	}
	fprintf(f, "\n  ]");
	if (w->fit)
		fprintf(f, ",\n  \"kick_fit\": {\"from_size\": %u, "
			"\"to_size\": %u, \"qemu\": {\"fixed_ns\": %.1f, "
			"\"ns_per_request\": %.1f}, \"ours\": {\"fixed_ns\": "
			"%.1f, \"ns_per_request\": %.1f}}",
			w->o.sizes[w->k_lo], w->o.sizes[w->k_hi],
			w->fixed_ns[DEV_QEMU], w->per_req_ns[DEV_QEMU],
			w->fixed_ns[DEV_OURS], w->per_req_ns[DEV_OURS]);
	fprintf(f, "\n}\n");
}

/* ------------------------------------------------------------------ */
/* Options                                                              */

static void usage(FILE *f)
{
	fprintf(f,
"usage: viommu-bench qemu [--smoke] [--sizes LIST] [--requests N] "
"[--runs N]\n"
"                         [--qemu PATH] [--server PATH] [--timeout-ms N]\n"
"                         [--json FILE|-]\n"
"\n"
"Our virtio-iommu (viommu-server behind QEMU's x-pci-proxy-dev) against\n"
"QEMU 7.2's virtio-iommu-pci in ONE QEMU process, both driven by the same\n"
"register-level driver through QEMU's qtest protocol: MAP/UNMAP requests\n"
"per second per batch size, and the ratio ours/QEMU.\n"
"\n"
"  --smoke          one batch size (16), few requests, one run (< 10 s);\n"
"                   prints 'skipped: ...' and exits 0 without QEMU\n"
"  --sizes LIST     requests per kick, 1..128 (default 1,16,128)\n"
"  --requests N     requests per measurement, 16..10000000 (default "
"8192)\n"
"  --runs N         runs, 1..%d (default 5; smoke 1)\n"
"  --qemu PATH      QEMU binary (default qemu-system-x86_64 from PATH)\n"
"  --server PATH    viommu-server (default: $VIOMMU_SERVER, the build\n"
"                   tree next to this program, PATH)\n"
"  --timeout-ms N   bound on QEMU startup and each qtest reply, "
"100..600000\n"
"                   (default 10000)\n"
"  --json FILE      also write JSON to FILE ('-': JSON on stdout, "
"table on stderr)\n"
"  --help           this text\n"
"\n"
"Exit status: 0 measured (or smoke skipped), 1 failure, 2 usage, 77 QEMU\n"
"not found (skipped).\n", BENCH_MAX_RUNS);
}

/* parse_opts() - the command line (after "qemu") into @o. */
static void parse_opts(struct opts *o, int argc, char **argv)
{
	bool sizes = false;

	o->timeout_ms = 10000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;

		if (!strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--smoke")) {
			o->smoke = true;
		} else if (opt_value("--json", argc, argv, &i, &v)) {
			o->json = v;
		} else if (opt_value("--sizes", argc, argv, &i, &v)) {
			o->nsizes = parse_uint_list("--sizes", v, o->sizes,
						    MAX_SIZES, 1, 128);
			sizes = true;
		} else if (opt_value("--requests", argc, argv, &i, &v)) {
			o->requests = (uint32_t)parse_uint("--requests", v, 16,
							   10000000);
		} else if (opt_value("--runs", argc, argv, &i, &v)) {
			o->runs = (int)parse_uint("--runs", v, 1,
						  BENCH_MAX_RUNS);
		} else if (opt_value("--qemu", argc, argv, &i, &v)) {
			o->qemu = v;
		} else if (opt_value("--server", argc, argv, &i, &v)) {
			o->server = v;
		} else if (opt_value("--timeout-ms", argc, argv, &i, &v)) {
			o->timeout_ms = (int)parse_uint("--timeout-ms", v, 100,
							600000);
		} else {
			bad_usage("unknown option '%s'", a);
		}
	}
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
	int fds[2][2];

	parse_opts(&w.o, argc, argv);
	machine_info(&w.m);
	if (!find_in_path(w.o.qemu, w.qemu_path, sizeof(w.qemu_path)))
		skip_no_qemu(&w);
	if (!find_server(&w.o, w.server_path, sizeof(w.server_path)))
		die("viommu-server not found (build it: ninja -C BUILD "
		    "tools/viommu-server; or --server PATH)");
	outputs_open(&out, w.o.json);
	qemu_version(w.qemu_path, w.qemu_version, sizeof(w.qemu_version));
	for (int i = 0; i < 2; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds[i]))
			die("socketpair: %s", strerror(errno));
	start_server(&w, (const int[]){ fds[0][1], fds[1][1] });
	close(fds[0][1]);
	close(fds[1][1]);
	start_qemu(&w, (const int[]){ fds[0][0], fds[1][0] });
	close(fds[0][0]);
	close(fds[1][0]);
	build_requests(&w);
	setup_devices(&w);
	run_all(&w);
	for (int i = 0; i < NDEV; i++)
		vpci_fini(&w.dev[i]);
	qtest_stop(w.q, NULL);
	stop_server(&w);
	w.m.load[1] = loadavg();
	summarise(&w);
	print_table(&w, out.table);
	if (out.json)
		print_json(&w, out.json);
	outputs_close(&out);
	return 0;
}
