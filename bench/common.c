/*
 * common.c - helpers every viommu-bench subcommand uses (see common.h):
 * failure and option handling, clocks, statistics, the machine header of
 * each report, the kick hook wrapped around viommu_virtio_dev_notify(), and
 * the guest environment (RAM + context + virtio-iommu + reference driver).
 */
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

const char *bench_cmd = NULL;
struct kick_hook bench_kick_hook;

/* ------------------------------------------------------------------ */
/* Failure and the command line                                       */

/* die() - report a failure of the benchmark itself and exit 1. */
void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "viommu-bench%s%s: ", bench_cmd ? " " : "",
		bench_cmd ? bench_cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* bad_usage() - complain about the command line and exit 2. */
void bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "viommu-bench%s%s: ", bench_cmd ? " " : "",
		bench_cmd ? bench_cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(try 'viommu-bench%s%s --help')\n",
		bench_cmd ? " " : "", bench_cmd ? bench_cmd : "");
	exit(2);
}

/* ------------------------------------------------------------------ */
/* Clocks and statistics                                              */

/* clock_ns() - a clock in nanoseconds. */
uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* span_start() - start a wall + thread-CPU span. */
struct span span_start(void)
{
	return (struct span){ clock_ns(CLOCK_MONOTONIC),
			      clock_ns(CLOCK_THREAD_CPUTIME_ID) };
}

/* span_end() - the wall and thread-CPU time since @t0. */
struct span span_end(struct span t0)
{
	return (struct span){ clock_ns(CLOCK_MONOTONIC) - t0.wall,
			      clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0.cpu };
}

/* busy_wait_ns() - spin for @ns of wall-clock time. */
void busy_wait_ns(uint64_t ns)
{
	uint64_t end = clock_ns(CLOCK_MONOTONIC) + ns;

	while (clock_ns(CLOCK_MONOTONIC) < end)
		;
}

/* rng() - xorshift64*. */
uint64_t rng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* cmp_double() - qsort order for doubles. */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* median() - sort @v and return its median. */
double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct rstat rstat_of(double *v, int n)
{
	struct rstat s = { -1, -1, -1, n };

	if (n) {
		s.med = median(v, n);
		s.min = v[0];
		s.max = v[n - 1];
	}
	return s;
}

void json_num_or_null(FILE *f, double v)
{
	if (v < 0)
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

void json_rstat(FILE *f, const char *key, struct rstat s)
{
	fprintf(f, "\"%s\": {\"median\": ", key);
	json_num_or_null(f, s.med);
	fputs(", \"min\": ", f);
	json_num_or_null(f, s.min);
	fputs(", \"max\": ", f);
	json_num_or_null(f, s.max);
	fprintf(f, ", \"n\": %d}", s.n);
}

/* fmt_value() - a figure with sensible precision. */
void fmt_value(char *buf, size_t n, double v)
{
	if (v >= 100000)
		snprintf(buf, n, "%.0f", v);
	else if (v >= 100)
		snprintf(buf, n, "%.1f", v);
	else
		snprintf(buf, n, "%.2f", v);
}

/* figure_of() - median, min, max and CPU median of @n samples. */
struct figure figure_of(double *wall, double *cpu, int n)
{
	struct figure fg;

	fg.med = median(wall, n);
	fg.min = wall[0];
	fg.max = wall[n - 1];
	fg.cpu_med = cpu ? median(cpu, n) : -1;
	return fg;
}

/* figure_json() - the figure's JSON members. */
void figure_json(FILE *f, const struct figure *fg)
{
	fprintf(f, ", \"median\": %.3f, \"min\": %.3f, \"max\": %.3f",
		fg->med, fg->min, fg->max);
	if (fg->cpu_med >= 0)
		fprintf(f, ", \"cpu_median\": %.3f", fg->cpu_med);
}

/* figure_text() - the figure's table columns. */
struct figure_text figure_text(const struct figure *fg)
{
	struct figure_text t = { .cpu = "-" };

	fmt_value(t.med, sizeof(t.med), fg->med);
	fmt_value(t.min, sizeof(t.min), fg->min);
	fmt_value(t.max, sizeof(t.max), fg->max);
	if (fg->cpu_med >= 0)
		fmt_value(t.cpu, sizeof(t.cpu), fg->cpu_med);
	return t;
}

/* fmt_rate() - a rate with an SI suffix. */
void fmt_rate(char *buf, size_t n, double v)
{
	static const char *const sfx[] = { "", "k", "M", "G", "T" };
	int k = 0;

	while (v >= 1000 && k < 4) {
		v /= 1000;
		k++;
	}
	snprintf(buf, n, v >= 100 ? "%.0f %s" : v >= 10 ? "%.1f %s"
						 : "%.2f %s", v, sfx[k]);
}

/* ------------------------------------------------------------------ */
/* Machine, load and output                                           */

/* loadavg() - the 1-minute load average (-1 if unknown). */
double loadavg(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double v = -1;

	if (f) {
		if (fscanf(f, "%lf", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* machine_info() - CPU model, online CPUs, kernel, load now. */
void machine_info(struct machine *m)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(m->cpu, sizeof(m->cpu), "unknown");
	while (f && fgets(line, sizeof(line), f)) {
		char *v = strchr(line, ':');

		if (!v || strncmp(line, "model name", 10))
			continue;
		v += 1 + strspn(v + 1, " \t");
		v[strcspn(v, "\n")] = 0;
		snprintf(m->cpu, sizeof(m->cpu), "%s", v);
		break;
	}
	if (f)
		fclose(f);
	m->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (uname(&m->uts))
		memset(&m->uts, 0, sizeof(m->uts));
	m->load[0] = loadavg();
	m->load[1] = -1;
}

/* machine_print() - the machine/build/load lines of a table. */
void machine_print(const struct machine *m, FILE *f)
{
	fprintf(f, "machine: %s, %ld online CPUs, %s %s\n", m->cpu, m->ncpu,
		m->uts.sysname, m->uts.release);
	fprintf(f, "build:   cc %s, %s\n", __VERSION__, BUILD_OPT);
	fprintf(f, "load:    1-minute load average %.2f at start, %.2f at "
		"end (other work skews figures)\n", m->load[0], m->load[1]);
}

/* json_str() - @s as a JSON string. */
void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* json_header() - the JSON fields every report starts with. */
void json_header(FILE *f, const char *cmd, bool smoke, int runs,
		 const struct machine *m)
{
	fprintf(f, "{\n  \"tool\": \"viommu-bench\",\n  \"mode\": ");
	json_str(f, cmd);
	fprintf(f, ",\n  \"version\": ");
	json_str(f, viommu_version());
	fprintf(f, ",\n  \"smoke\": %s,\n  \"runs\": %d,\n  \"statistic\": "
		"\"median\",\n  \"clock\": \"CLOCK_MONOTONIC\",\n"
		"  \"machine\": {\"cpu\": ", smoke ? "true" : "false", runs);
	json_str(f, m->cpu);
	fprintf(f, ", \"online_cpus\": %ld, \"os\": ", m->ncpu);
	json_str(f, m->uts.sysname);
	fprintf(f, ", \"release\": ");
	json_str(f, m->uts.release);
	fprintf(f, ", \"arch\": ");
	json_str(f, m->uts.machine);
	fprintf(f, ", \"compiler\": ");
	json_str(f, __VERSION__);
	fprintf(f, ", \"build\": \"%s\"", BUILD_OPT);
	fprintf(f, "},\n  \"loadavg_start\": %.2f,\n  \"loadavg_end\": %.2f",
		m->load[0], m->load[1]);
}

/* outputs_open() - where the table and the JSON go. */
void outputs_open(struct outputs *o, const char *path)
{
	o->table = stdout;
	o->json = NULL;
	if (!path)
		return;
	if (!strcmp(path, "-")) {
		o->json = stdout;
		o->table = stderr;
	} else if (!(o->json = fopen(path, "w"))) {
		bad_usage("--json: cannot write '%s': %s", path,
			  strerror(errno));
	}
}

/* outputs_close() - close the JSON file; die on a failed write. */
void outputs_close(struct outputs *o)
{
	if (o->json && o->json != stdout && fclose(o->json))
		die("--json: write failed: %s", strerror(errno));
	if (o->json == stdout)
		fflush(stdout);
	o->json = NULL;
}

/* report_head() - the title and machine lines of a table. */
void report_head(FILE *f, const char *cmd, const char *smoke_note,
		 const struct machine *m)
{
	fprintf(f, "viommu-bench %s (viommu %s)%s%s\n", cmd, viommu_version(),
		smoke_note ? " -- SMOKE RUN: " : "",
		smoke_note ? smoke_note : "");
	machine_print(m, f);
}

/* report_cpu_note() - the wall vs thread CPU note of a table. */
void report_cpu_note(FILE *f)
{
	fprintf(f, "note:    this machine is shared with other work: wall "
		"figures include time other\n         processes took; cpu = "
		"median thread CPU time (CLOCK_THREAD_CPUTIME_ID)\n");
}

/* rm_dir() - remove the files of @dir, then @dir. */
void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];

	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path))
			fprintf(stderr, "viommu-bench %s: cannot remove %s: "
				"%s\n", bench_cmd ? bench_cmd : "", path,
				strerror(errno));
	}
	if (d)
		closedir(d);
	if (rmdir(dir))
		fprintf(stderr, "viommu-bench %s: cannot remove %s: %s\n",
			bench_cmd ? bench_cmd : "", dir, strerror(errno));
}

/* bench_mem_ctx() - guest memory over @ram and a context, or die. */
void bench_mem_ctx(void *ram, uint64_t size, uint32_t max_mappings,
		   struct viommu_mem **mem, struct viommu_ctx **ctx)
{
	struct viommu_mem_region reg = {
		.gpa = 0, .size = size, .fd = -1, .hva = ram,
	};
	struct viommu_ctx_config cc = { .size = sizeof(cc) };
	int rc;

	if ((rc = viommu_mem_create(NULL, mem)) ||
	    (rc = viommu_mem_set_regions(*mem, &reg, 1)))
		die("guest memory: %s", strerror(-rc));
	cc.mem = *mem;
	cc.limits.max_mappings_per_domain = max_mappings;
	if ((rc = viommu_ctx_create(&cc, ctx)))
		die("context: %s", strerror(-rc));
}

/* bench_ram() - zeroed, touched anonymous memory, or die. */
uint8_t *bench_ram(uint64_t size)
{
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("out of memory");
	memset(p, 0, size); /* touch it: no page faults in timed loops */
	return p;
}

/* ------------------------------------------------------------------ */
/* The kick hook                                                      */

/*
 * __wrap_viommu_virtio_dev_notify() - every notification of the reference
 * driver: the modelled kick cost, then the device, timed when asked.
 */
int __wrap_viommu_virtio_dev_notify(struct viommu_virtio_dev *dev,
				    uint16_t q)
{
	struct kick_hook *h = &bench_kick_hook;
	uint64_t t0;
	int rc;

	h->calls++;
	if (h->cost_ns)
		busy_wait_ns(h->cost_ns);
	if (!h->timing)
		return __real_viommu_virtio_dev_notify(dev, q);
	t0 = clock_ns(CLOCK_MONOTONIC);
	rc = __real_viommu_virtio_dev_notify(dev, q);
	h->dev_ns += clock_ns(CLOCK_MONOTONIC) - t0;
	return rc;
}

/* clock_pair_ns() - median cost of two back-to-back clock reads. */
double clock_pair_ns(void)
{
	double v[9];
	uint64_t sink = 0;

	for (int r = 0; r < 9; r++) {
		uint64_t t0 = clock_ns(CLOCK_MONOTONIC);

		for (int k = 0; k < 10000; k++)
			sink += clock_ns(CLOCK_MONOTONIC) -
				clock_ns(CLOCK_MONOTONIC);
		v[r] = (double)(clock_ns(CLOCK_MONOTONIC) - t0) / 10000;
	}
	if (sink == 1)
		putchar(' ');
	return median(v, 9);
}

/* ------------------------------------------------------------------ */
/* Guest environment                                                  */

/* venv_ram() - touched guest RAM at GPA 0. */
static void venv_ram(struct venv *v, uint64_t size)
{
	v->ram = mmap(NULL, size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (v->ram == MAP_FAILED)
		die("guest RAM: %s", strerror(errno));
	memset(v->ram, 0, size);
	v->ram_size = size;
}

/* venv_device() - memory, context, endpoint and virtio-iommu device. */
static void venv_device(struct venv *v, const struct venv_config *c)
{
	struct viommu_virtio_iommu_config dc = { .size = sizeof(dc) };
	int rc;

	bench_mem_ctx(v->ram, v->ram_size, c->max_mappings, &v->mem, &v->ctx);
	if ((rc = viommu_endpoint_create(v->ctx, VENV_EP_ID, &v->ep)))
		die("context: %s", strerror(-rc));
	dc.ctx = v->ctx;
	dc.mem = v->mem;
	dc.queue_size = c->queue_size;
	dc.features = c->features;
	if ((rc = viommu_virtio_iommu_create(&dc, &v->vi)))
		die("virtio-iommu device: %s", strerror(-rc));
	v->dev = viommu_virtio_iommu_dev(v->vi);
}

/* venv_create() - RAM, context, device and driver, or die. */
void venv_create(struct venv *v, const struct venv_config *c)
{
	struct refdrv_config rc = { 0 };
	int err;

	memset(v, 0, sizeof(*v));
	if (c->ram_size <= VENV_DRV_SIZE || c->ram_size % BENCH_PAGE)
		die("venv: bad RAM size %llu",
		    (unsigned long long)c->ram_size);
	venv_ram(v, c->ram_size);
	venv_device(v, c);
	rc.dev = v->dev;
	rc.ram_gpa = c->ram_size - VENV_DRV_SIZE;
	rc.ram = v->ram + rc.ram_gpa;
	rc.ram_size = VENV_DRV_SIZE;
	rc.packed = c->packed;
	rc.event_idx = c->event_idx;
	rc.indirect = c->indirect;
	rc.queue_size = c->queue_size;
	rc.mode = c->mode;
	rc.event_buffers = 8;
	if ((err = refdrv_create(&rc, &v->drv)))
		die("reference driver: %s", strerror(-err));
}

/* venv_destroy() - tear a guest environment down. */
void venv_destroy(struct venv *v)
{
	refdrv_destroy(v->drv);
	viommu_virtio_iommu_destroy(v->vi);
	viommu_ctx_destroy(v->ctx);
	viommu_mem_destroy(v->mem);
	if (v->ram && v->ram != MAP_FAILED)
		munmap(v->ram, v->ram_size);
	memset(v, 0, sizeof(*v));
}

/* venv_check() - die unless a request went through with status OK. */
void venv_check(int rc, uint8_t status, const char *what)
{
	if (rc)
		die("%s: %s", what, strerror(-rc));
	if (status != VIOMMU_VI_S_OK)
		die("%s: device status %u", what, status);
}

/* venv_dev_requests() - requests the device processed so far. */
uint64_t venv_dev_requests(const struct venv *v)
{
	struct viommu_virtio_iommu_stats st;
	uint64_t n = 0;

	if (viommu_virtio_iommu_stats(v->vi, &st, sizeof(st)))
		die("virtio-iommu stats");
	for (int t = 0; t < VIOMMU_VI_REQ_TYPES; t++)
		for (int s = 0; s < VIOMMU_VI_S_COUNT; s++)
			n += st.requests[t][s];
	return n;
}
