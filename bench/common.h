/*
 * common.h - what the viommu-bench subcommands share.
 *
 * viommu-bench is one program with subcommands (bench/main.c dispatches),
 * each in its own file or files.  This header gathers the pieces they have
 * in common:
 *
 *  - failure: die() for a broken benchmark (exit 1), bad_usage() for a
 *    bad command line (exit 2; the option parser itself is opts.h);
 *  - clocks: wall time (CLOCK_MONOTONIC) and the calling thread's CPU time
 *    (CLOCK_THREAD_CPUTIME_ID) side by side, because the machines these
 *    figures come from are often shared: the gap between the two shows how
 *    much of a wall-clock figure was other work;
 *  - statistics (median), a deterministic random generator;
 *  - the machine description and load average every report carries, the
 *    first lines of every table (report_head) and the common ending of a
 *    run (REPORT_FINISH), and JSON helpers so every subcommand writes the
 *    same header;
 *  - a guest environment (struct venv): guest RAM, a translation context,
 *    a virtio-iommu device and the reference driver (src/refdrv/virtio.h)
 *    over real virtqueues in that RAM;
 *  - the kick hook: the program is linked with
 *    -Wl,--wrap=viommu_virtio_dev_notify, so every notification the
 *    reference driver sends passes through bench_kick_hook, which can time
 *    the device (time spent inside viommu_virtio_dev_notify) and add a
 *    modelled per-kick cost (a busy wait standing for a VM exit).
 *
 * A benchmark asserts nothing: it prints numbers.  Unlike the library, the
 * program may print, exit and keep global state.
 */
#ifndef VIOMMU_BENCH_COMMON_H
#define VIOMMU_BENCH_COMMON_H

#include <viommu/viommu.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/utsname.h>
#include <time.h>

#include "refdrv/virtio.h"

#ifdef __OPTIMIZE__
#define BUILD_OPT "optimized"
#else
#define BUILD_OPT "NOT optimized"
#endif

#define BENCH_PAGE 4096ull
/* The exit status of a run that was skipped (meson's and automake's). */
#define EXIT_SKIP 77
/* BENCH_XSTR(MACRO) - a number macro as a string, for help texts. */
#define BENCH_STR_(x) #x
#define BENCH_XSTR(x) BENCH_STR_(x)
#define BENCH_MAX_RUNS 101

/* ------------------------------------------------------------------ */
/* Failure and the command line                                       */

/* The subcommand being run, for messages ("core", "io", ...). */
extern const char *bench_cmd;

/* die() - report a failure of the benchmark itself and exit 1. */
void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...);

/* bad_usage() - complain about the command line and exit 2. */
void __attribute__((noreturn, format(printf, 1, 2)))
bad_usage(const char *fmt, ...);

/* ------------------------------------------------------------------ */
/* Clocks and statistics                                              */

/* clock_ns() - a clock in nanoseconds. */
uint64_t clock_ns(clockid_t id);

/*
 * struct span - elapsed wall-clock time (CLOCK_MONOTONIC) and CPU time of
 * the calling thread over the same interval, in ns.
 */
struct span {
	uint64_t wall, cpu;
};

/* span_start() / span_end() - measure a span on the calling thread. */
struct span span_start(void);
struct span span_end(struct span t0);

/* busy_wait_ns() - spin for @ns of wall-clock time. */
void busy_wait_ns(uint64_t ns);

/* rng() - xorshift64*: deterministic pseudo-random numbers. */
uint64_t rng(uint64_t *s);

/* median() - the median of @n samples (sorts them: v[0] min, v[n-1] max). */
double median(double *v, int n);

/*
 * struct rstat - a median and its range over rounds of real-guest boots
 * (the guest and guest-io reports); n = 0: no sample (the others -1).
 */
struct rstat {
	double med, min, max;
	int n;
};

/* rstat_of() - median, min and max of @v[0..n-1] (sorted in place). */
struct rstat rstat_of(double *v, int n);

/* json_num_or_null() - @v with 6 significant digits, or null if < 0. */
void json_num_or_null(FILE *f, double v);

/* json_rstat() - `"key": {"median": M, "min": m, "max": X, "n": N}`. */
void json_rstat(FILE *f, const char *key, struct rstat s);

/*
 * struct figure - one figure over runs: median, min and max of the
 * wall-clock samples and the median of the thread-CPU samples (< 0: not
 * measured).  The unit is the caller's.
 */
struct figure {
	double med, min, max;
	double cpu_med;
};

/*
 * figure_of() - the figure of @n samples: @wall (sorted in place) and
 * @cpu (sorted in place; NULL: no CPU figure).
 */
struct figure figure_of(double *wall, double *cpu, int n);

/*
 * figure_json() - the figure as JSON members: `, "median": M, "min": m,
 * "max": X` and `, "cpu_median": C` when there is one.
 */
void figure_json(FILE *f, const struct figure *fg);

/* struct figure_text - a figure's table columns (cpu "-" if none). */
struct figure_text {
	char med[32], min[32], max[32], cpu[32];
};

/* figure_text() - the figure's columns, each through fmt_value(). */
struct figure_text figure_text(const struct figure *fg);

/* fmt_value() - a figure with sensible precision. */
void fmt_value(char *buf, size_t n, double v);

/* fmt_rate() - a rate with an SI suffix ("1.23 M"). */
void fmt_rate(char *buf, size_t n, double v);

/* ------------------------------------------------------------------ */
/* Machine, load and output                                           */

/* struct machine - what the figures were measured on. */
struct machine {
	char cpu[128];
	long ncpu;
	struct utsname uts;
	double load[2]; /* 1-minute load average at start and at the end */
};

/* machine_info() - CPU model, online CPUs, kernel; load[0] = now. */
void machine_info(struct machine *m);

/* loadavg() - the 1-minute load average (-1 if unknown). */
double loadavg(void);

/* machine_print() - the machine/build/load lines of a table header. */
void machine_print(const struct machine *m, FILE *f);

/* json_str() - write @s as a JSON string. */
void json_str(FILE *f, const char *s);

/*
 * json_header() - open the JSON object and write the fields every report
 * has: tool, mode (@cmd), version, smoke, runs, statistic, clock, machine,
 * loadavg_start/_end.  The caller continues with ",\n  \"key\": ...".
 */
void json_header(FILE *f, const char *cmd, bool smoke, int runs,
		 const struct machine *m);

/*
 * struct outputs - where the table and the JSON go.  With --json '-' the
 * JSON goes to stdout and the table to stderr.
 */
struct outputs {
	FILE *table;
	FILE *json; /* NULL: no JSON */
};

/* outputs_open() - open --json @path (may be NULL); usage error if not. */
void outputs_open(struct outputs *o, const char *path);

/* outputs_close() - close the JSON file; die if the write failed. */
void outputs_close(struct outputs *o);

/*
 * report_head() - the first lines of every table: "viommu-bench CMD
 * (viommu VERSION)", then " -- SMOKE RUN: @smoke_note" when @smoke_note is
 * not NULL, then the machine/build/load lines of @m.
 */
void report_head(FILE *f, const char *cmd, const char *smoke_note,
		 const struct machine *m);

/* The two smoke notes of report_head(). */
#define SMOKE_NOTE "numbers not meaningful"
#define SMOKE_TINY "tiny sizes, numbers not meaningful"

/*
 * report_cpu_note() - the "note:" line of a table whose figures pair wall
 * clock with thread CPU time on a shared machine.
 */
void report_cpu_note(FILE *f);

/*
 * REPORT_FINISH() - how every subcommand ends its run: stamp the end load
 * average into @m_, print the table with @table_fn_(@arg_, FILE), write
 * the JSON with @json_fn_(@arg_, FILE) when --json asked for it, and close
 * the outputs (dies if the JSON write failed).  A macro so that each
 * subcommand's printers keep their own typed argument.
 */
#define REPORT_FINISH(out_, m_, table_fn_, json_fn_, arg_)                \
	do {                                                               \
		(m_)->load[1] = loadavg();                                 \
		table_fn_((arg_), (out_)->table);                          \
		if ((out_)->json)                                          \
			json_fn_((arg_), (out_)->json);                    \
		outputs_close(out_);                                       \
	} while (0)

/*
 * rm_dir() - remove the files of the temporary directory @dir (no
 * subdirectories), then @dir; a failure is one line on stderr.
 */
void rm_dir(const char *dir);

/*
 * bench_mem_ctx() - guest memory over @ram (@size bytes at GPA 0) into
 * *@mem and a translation context on it into *@ctx, with at most
 * @max_mappings per domain (0: the core's default); dies on failure.
 */
void bench_mem_ctx(void *ram, uint64_t size, uint32_t max_mappings,
		   struct viommu_mem **mem, struct viommu_ctx **ctx);

/* bench_ram() - @size bytes of zeroed, touched anonymous memory, or die. */
uint8_t *bench_ram(uint64_t size);

/* ------------------------------------------------------------------ */
/* The kick hook                                                      */

/*
 * struct kick_hook - what the wrapped viommu_virtio_dev_notify() does on
 * each call (request and event queue alike).
 * @cost_ns:  busy-wait this long before the device runs (a modelled VM
 *            exit; 0: none).
 * @timing:   time the device: add the wall-clock time spent inside the
 *            real viommu_virtio_dev_notify() to @dev_ns.
 * @dev_ns, @calls: accumulated time and the number of calls seen.
 */
struct kick_hook {
	uint64_t cost_ns;
	bool timing;
	uint64_t dev_ns;
	uint64_t calls;
};

extern struct kick_hook bench_kick_hook;

/* The linker's --wrap names (see bench/meson.build). */
int __real_viommu_virtio_dev_notify(struct viommu_virtio_dev *dev,
				    uint16_t q);
int __wrap_viommu_virtio_dev_notify(struct viommu_virtio_dev *dev,
				    uint16_t q);

/*
 * clock_pair_ns() - the measured cost of the two clock reads the hook adds
 * around each timed notification (median of a calibration loop).
 */
double clock_pair_ns(void);

/* ------------------------------------------------------------------ */
/* Guest environment: RAM, context, virtio-iommu, reference driver    */

/* The reference driver owns the top VENV_DRV_SIZE bytes of guest RAM. */
#define VENV_DRV_SIZE (1ull << 20)
/* The endpoint the benchmarks use (its ID on the wire and in the core). */
#define VENV_EP_ID 1u

/**
 * struct venv_config - how to build a guest environment.
 * @ram_size:    bytes of guest RAM at GPA 0 (> VENV_DRV_SIZE, page
 *               multiple); allocated and touched.
 * @packed, @event_idx, @indirect: ring features for the driver.
 * @queue_size:  request queue entries (device maximum and driver).
 * @mode:        REFDRV_STRICT or REFDRV_BATCHED.
 * @max_mappings: core limit per domain (0: the core's default).
 * @features:    device features to offer (0: the device's default).
 */
struct venv_config {
	uint64_t ram_size;
	bool packed, event_idx, indirect;
	uint16_t queue_size;
	enum refdrv_mode mode;
	uint32_t max_mappings;
	uint64_t features;
};

/** struct venv - one guest environment (all fields read-only to users). */
struct venv {
	uint8_t *ram;
	uint64_t ram_size;
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_virtio_iommu *vi;
	struct viommu_virtio_dev *dev;
	struct refdrv *drv;
	struct viommu_endpoint *ep; /* VENV_EP_ID, unattached */
};

/* venv_create() - build everything or die. */
void venv_create(struct venv *v, const struct venv_config *c);

/* venv_destroy() - tear it down (the RAM too). */
void venv_destroy(struct venv *v);

/*
 * venv_check() - die with @what if @rc is not 0 or @status not OK (a
 * request the benchmark needs failed).
 */
void venv_check(int rc, uint8_t status, const char *what);

/* venv_dev_requests() - requests the device has processed so far. */
uint64_t venv_dev_requests(const struct venv *v);

/* ------------------------------------------------------------------ */
/* Subcommands                                                        */

int cmd_core(int argc, char **argv);
int cmd_vdev(int argc, char **argv);
int cmd_io(int argc, char **argv);
int cmd_handover(int argc, char **argv);
int cmd_scaling(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int bench_smmu_main(int argc, char **argv);
int bench_vtd_main(int argc, char **argv);
int bench_qemu_main(int argc, char **argv);
int bench_guest_main(int argc, char **argv);
int bench_guest_io_main(int argc, char **argv);

#endif /* VIOMMU_BENCH_COMMON_H */
