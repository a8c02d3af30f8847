/*
 * viommu-guest.c - the guest test program: main, options, result lines.
 *
 * Usage: viommu-guest [--seed N] [--iters N] [--bench-ms N] [--verbose]
 *                     SCENARIO...
 *        viommu-guest list | info
 *
 * Each scenario runs in order and prints exactly one line
 *
 *   VIOMMU-RESULT scenario=NAME status=pass|fail|skip checks=N k=v ...
 *
 * (a failure adds reason="..."), plus human-readable lines starting with
 * two spaces.  A watchdog (SIGALRM) turns a scenario that overruns its time
 * into a failure line, so the program never hangs.  Exit status: 0 if
 * every scenario passed or was skipped, 1 if one failed, 2 on bad usage.
 * See guest.h for the pieces.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

/* Seconds a scenario may run before the watchdog fails it. */
#define SCENARIO_TIMEOUT 240

struct scenario {
	const char *name;
	int (*fn)(struct result *r);
	const char *what;
};

static const struct scenario scenarios[] = {
	{ "probe", sc_probe, "virtio-iommu bound, groups, MSI region" },
	{ "smmu", sc_smmu, "arm-smmu-v3 bound our SMMUv3, stage, groups" },
	{ "vtd", sc_vtd, "intel-iommu bound our VT-d model, groups" },
	{ "dma", sc_dma, "map, DMA both ways and ring mode, verified" },
	{ "readonly", sc_readonly, "device write to a read-only map refused" },
	{ "unmapped", sc_unmapped, "DMA to never-mapped IOVAs refused" },
	{ "isolation", sc_isolation, "two domains cannot reach each other" },
	{ "rebind", sc_rebind, "detach/attach, unbind/rebind, replay" },
	{ "stress", sc_stress, "random map/unmap while DMA runs, model" },
	{ "identity", sc_identity, "iommu.passthrough=1: DMA to GPAs" },
	{ "twocpu", sc_twocpu, "two CPUs drive two engines at once" },
	{ "faultlog", sc_faultlog, "the guest's driver logs the faults sent" },
	{ "notify", sc_notify, "config change and needs-reset interrupts" },
	{ "bench", sc_bench, "map/unmap rates and DMA throughput" },
	{ "blkfs", sc_blkfs, "ext2 on the stock virtio-blk driver, verified" },
	{ "blkfault", sc_blkfault, "injected disk faults: EIO, data intact" },
	{ "blkiso", sc_blkiso, "a disk DMAs to another disk's IOVAs: refused" },
	{ "netpkt", sc_netpkt, "frames both ways between two virtio NICs" },
	{ "nettcp", sc_nettcp, "two NICs, two namespaces: ping, TCP each way" },
	{ "netfault", sc_netfault, "nettcp with faults injected: recovers" },
	{ "netbench", sc_netbench, "TCP throughput and UDP pps between NICs" },
	{ "blkio", sc_blkio, "O_DIRECT random I/O rates on a virtio disk" },
};

static struct opts opts = {
	.seed = 1,
	.iters = 2000,
	.bench_ms = 1000,
};
const struct opts *g_opts = &opts;
static struct result *current;

/* logmsg() - print one human-readable line (indented). */
void logmsg(const char *fmt, ...)
{
	va_list ap;

	fputs("  ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

/* res_kv() - add key=value to the result line (value must not hold spaces). */
void res_kv(struct result *r, const char *key, const char *fmt, ...)
{
	size_t len = strlen(r->kv);
	va_list ap;
	int n;

	n = snprintf(r->kv + len, sizeof(r->kv) - len, " %s=", key);
	if (n < 0 || (size_t)n >= sizeof(r->kv) - len)
		return;
	len += n;
	va_start(ap, fmt);
	vsnprintf(r->kv + len, sizeof(r->kv) - len, fmt, ap);
	va_end(ap);
}

/* vreason() - log a message and keep the first one as the reason. */
static void vreason(struct result *r, const char *tag, const char *fmt,
		    va_list ap)
{
	char msg[256];
	char *p;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	for (p = msg; *p; p++)
		if (*p == '"' || *p == '\n')
			*p = '\'';
	logmsg("%s: %s", tag, msg);
	if (!r->reason[0])
		snprintf(r->reason, sizeof(r->reason), "%s", msg);
}

/* res_fail() - mark the scenario failed; the first reason is kept. */
void res_fail(struct result *r, const char *fmt, ...)
{
	va_list ap;

	r->status = RES_FAIL;
	va_start(ap, fmt);
	vreason(r, "FAIL", fmt, ap);
	va_end(ap);
}

/* res_skip() - mark the scenario skipped (unless it already failed). */
void res_skip(struct result *r, const char *fmt, ...)
{
	va_list ap;

	if (r->status == RES_PASS)
		r->status = RES_SKIP;
	va_start(ap, fmt);
	vreason(r, "SKIP", fmt, ap);
	va_end(ap);
}

/* expect() - count a passed check, or fail the scenario with the message. */
bool expect(struct result *r, bool cond, const char *fmt, ...)
{
	va_list ap;

	if (cond) {
		r->checks++;
		return true;
	}
	r->status = RES_FAIL;
	va_start(ap, fmt);
	vreason(r, "FAIL", fmt, ap);
	va_end(ap);
	return false;
}

/* now_ns() - CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* rng_next() - xorshift64* step (never returns the same stream for 0). */
uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* fill_pattern() - fill @p with bytes derived from @seed. */
void fill_pattern(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t s = seed * 2654435761u + 1, v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!(i & 7))
			v = rng_next(&s);
		p[i] = (uint8_t)(v >> ((i & 7) * 8));
	}
}

/* first_diff() - index of the first differing byte, or @n if equal. */
size_t first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i;

	if (!memcmp(a, b, n))
		return n;
	for (i = 0; i < n && a[i] == b[i]; i++)
		;
	return i;
}

/* read_file_str() - read a small file, trailing newline removed. */
int read_file_str(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	return 0;
}

/* cmdline_has() - whether the kernel command line has the word @w. */
bool cmdline_has(const char *w)
{
	char line[4096];
	size_t n = strlen(w);
	const char *p = line;

	if (read_file_str("/proc/cmdline", line, sizeof(line)))
		return false;
	while ((p = strstr(p, w))) {
		if ((p == line || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
			return true;
		p += n;
	}
	return false;
}

/* write_file_str() - write @s to a sysfs file in one write(). */
int write_file_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

/* print_result() - the machine-readable line of one scenario. */
static void print_result(const struct result *r, uint64_t ns)
{
	static const char *const names[] = { "pass", "fail", "skip" };

	printf("VIOMMU-RESULT scenario=%s status=%s checks=%u ms=%llu "
	       "bytes_verified=%llu%s",
	       r->scenario, names[r->status], r->checks,
	       (unsigned long long)(ns / 1000000),
	       (unsigned long long)r->bytes_verified, r->kv);
	if (r->reason[0])
		printf(" reason=\"%s\"", r->reason);
	putchar('\n');
	fflush(stdout);
}

/* on_alarm() - the watchdog: report the running scenario as failed. */
static void on_alarm(int sig)
{
	char line[256];
	int n;

	(void)sig;
	n = snprintf(line, sizeof(line),
		     "\nVIOMMU-RESULT scenario=%s status=fail checks=%u "
		     "reason=\"watchdog: no progress in %d s\"\n",
		     current ? current->scenario : "?",
		     current ? current->checks : 0, SCENARIO_TIMEOUT);
	if (n > 0)
		(void)!write(STDOUT_FILENO, line, (size_t)n);
	_exit(1);
}

/* run_one() - run scenario @s under the watchdog; return its status. */
static int run_one(const struct scenario *s)
{
	struct result r;
	uint64_t t0;

	memset(&r, 0, sizeof(r));
	r.scenario = s->name;
	current = &r;
	logmsg("== scenario %s: %s (seed %llu)", s->name, s->what,
	       (unsigned long long)opts.seed);
	alarm(SCENARIO_TIMEOUT);
	t0 = now_ns();
	s->fn(&r);
	alarm(0);
	print_result(&r, now_ns() - t0);
	current = NULL;
	return r.status;
}

/* info() - list the engines, their groups and drivers (debugging aid). */
static int info(void)
{
	struct eng e[MAX_ENGINES];
	char drv[64];
	int n, i;

	n = eng_find_all(e, MAX_ENGINES);
	printf("engines: %d\n", n < 0 ? 0 : n);
	for (i = 0; i < n; i++) {
		if (eng_driver(&e[i], drv, sizeof(drv)))
			snprintf(drv, sizeof(drv), "-");
		printf("  %s group %d driver %s\n", e[i].bdf, e[i].group, drv);
	}
	return 0;
}

/* usage() - the usage text and the scenario list. */
static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: viommu-guest [--seed N] [--iters N] [--bench-ms N]"
		   " [--verbose] SCENARIO...\n"
		   "       viommu-guest list | info\nscenarios:\n");
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		fprintf(f, "  %-10s %s\n", scenarios[i].name,
			scenarios[i].what);
}

/* parse_opt() - consume one option at argv[*i]; return 0 or -1. */
static int parse_opt(int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	char *end;
	unsigned long long v;

	if (!strcmp(a, "--verbose")) {
		opts.verbose = true;
		return 0;
	}
	if (*i + 1 >= argc)
		return -1;
	v = strtoull(argv[*i + 1], &end, 0);
	if (*end)
		return -1;
	if (!strcmp(a, "--seed"))
		opts.seed = v;
	else if (!strcmp(a, "--iters"))
		opts.iters = (unsigned)v;
	else if (!strcmp(a, "--bench-ms"))
		opts.bench_ms = (unsigned)v;
	else
		return -1;
	(*i)++;
	return 0;
}

/* find() - the scenario called @name, or NULL. */
static const struct scenario *find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (!strcmp(scenarios[i].name, name))
			return &scenarios[i];
	return NULL;
}

/* main() - options, then each scenario named, in order. */
int main(int argc, char **argv)
{
	int i, failed = 0, ran = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	for (i = 1; i < argc; i++) {
		const struct scenario *s;

		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "list")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "info"))
			return info();
		if (argv[i][0] == '-') {
			if (parse_opt(argc, argv, &i)) {
				usage(stderr);
				return 2;
			}
			continue;
		}
		s = find(argv[i]);
		if (!s) {
			fprintf(stderr, "viommu-guest: unknown scenario '%s'\n",
				argv[i]);
			usage(stderr);
			return 2;
		}
		failed += run_one(s) == RES_FAIL;
		ran++;
	}
	if (!ran) {
		usage(stderr);
		return 2;
	}
	return failed ? 1 : 0;
}
