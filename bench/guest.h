/*
 * guest.h - what the files of `viommu-bench guest` share.
 *
 * The subcommand is three files, by concept:
 *
 *   guest.c         the command line, what can run, and running the boots
 *                   (each boot is one tools/viommu-run child process; the
 *                   gb_* helpers for that are shared with guest-io);
 *   guest_read.c    reading what a boot gave: the extraction of one boot's
 *                   figures from viommu-run's --json file (and of
 *                   `viommu-run --qemu-info`) with json.c's reader;
 *   guest_report.c  statistics over the rounds, the table, the goals and
 *                   the JSON report.
 *
 * A run is rounds of boots, one boot per peer (enum peer) in each round.
 * Every figure of a boot is -1 until a VIOMMU-BENCH line gives it; a boot
 * that failed gives none.  Figures compare only within one run.
 */
#ifndef VIOMMU_BENCH_GUEST_H
#define VIOMMU_BENCH_GUEST_H

#include "common.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define GB_MAX_SIZES 16
#define GB_MAX_ROUNDS 15
#define GB_MAX_SIZE (2u << 20)
#define GB_NCHUNKS 3

/* The chunk sizes guest/bench.c measures ring copies with. */
extern const uint32_t gb_chunks[GB_NCHUNKS];

/*
 * The boots of a round.  The first four run on the main QEMU (--qemu,
 * default 11.1 over vfio-user); P_PROXY runs ours on the proxy QEMU
 * (--proxy-qemu, default 7.2 over x-pci-proxy-dev) for the register
 * access comparison.
 */
enum peer {
	P_OURS,    /* our virtio-iommu + engine, kicks */
	P_POLLED,  /* the same, viommu-server --poll-rq-us */
	P_QEMU,    /* QEMU's virtio-iommu-pci + our engine (or edu) */
	P_BYPASS,  /* ours, iommu.passthrough=1: ring DMA bypass vs VFIO */
	P_PROXY,   /* ours on the proxy QEMU, x-pci-proxy-dev */
	P_COUNT
};

/* Register accesses guest/bench.c times (mmio_write, mmio_read). */
enum mmio { M_WRITE, M_READ, M_COUNT };

extern const char *const gb_peer_names[P_COUNT];
extern const char *const gb_mmio_names[M_COUNT];

/* The command line. */
struct gb_opts {
	bool smoke, keep;
	const char *json, *run, *build;
	const char *qemu, *door;  /* viommu-run --qemu / --door of the main
				   * boots (NULL: its default) */
	const char *proxy_qemu;   /* --qemu of the proxy boot; "none" */
	uint32_t sizes[GB_MAX_SIZES];
	int nsizes;
	uint32_t ms;
	int rounds;
	int pin;        /* CPU the pinned boots run on; -1: none */
	bool no_pin;
	unsigned poll_rq_us; /* the polled boot's --poll-rq-us (0: none) */
};

/* What one boot gave. */
struct gb_boot {
	bool ran, ok, pinned;
	char why[256];
	double secs, load;
	double pairs[GB_MAX_SIZES];  /* map/unmap pairs/s per size, -1 */
	int segs[GB_MAX_SIZES];
	double ring[GB_NCHUNKS];     /* ring MB/s, translated, -1: none */
	double ring_bypass[GB_NCHUNKS];
	double mmio_ns[M_COUNT];     /* ns per register access, -1: none */
	double polled, requests;     /* server: requests served by polling,
				      * and all requests (-1: unknown) */
	double srv_cpu, srv_secs;    /* server: CPU and wall seconds (-1) */
};

/* The QEMU a set of boots runs (from `viommu-run --qemu-info`). */
struct gb_qemu {
	char path[PATH_MAX];  /* "": unknown */
	char version[32];     /* e.g. "11.1.3" */
	char door[16];        /* vfio-user or proxy */
	char why[512];        /* why the path is unknown */
};

/* The whole run. */
struct guestb {
	struct gb_opts o;
	struct machine m;
	char run[PATH_MAX], build[PATH_MAX], tmp[PATH_MAX];
	char skip[P_COUNT][1024];  /* why a peer does not run ("": it does) */
	struct gb_qemu q;          /* the main boots' QEMU */
	struct gb_qemu pq;         /* the proxy boot's QEMU */
	struct gb_boot b[GB_MAX_ROUNDS][P_COUNT];
	int nboots;
	bool built;
	double secs;
};

/* ---- guest.c: running viommu-run, shared with guest-io ---------------- */

/*
 * gb_find_run() - tools/viommu-run into @run (PATH_MAX bytes): @opt
 * (--run) if given, else in an ancestor of this executable's directory
 * (the build tree is usually inside the source tree), else next to the
 * source directory meson built us from; -1 if it is not readable there.
 */
int gb_find_run(char *run, const char *opt);

/* gb_find_build() - the build directory into @build (PATH_MAX bytes):
 * @opt (--build), else the one we were built in; -1 if it holds no
 * build.ninja. */
int gb_find_build(char *build, const char *opt);

/*
 * Option-table fields (bench/opts.h) of the options guest and guest-io
 * share, with their help: --run PATH, --build DIR, --keep.
 */
#define GB_OPT_RUN(d)                                                      \
	.name = "--run", .type = BOPT_STR, .dest = (d), .arg = "PATH",     \
	.help = "tools/viommu-run (default: found from this program)"
#define GB_OPT_BUILD(d)                                                    \
	.name = "--build", .type = BOPT_STR, .dest = (d), .arg = "DIR",    \
	.help = "build directory with the server, guest program and "      \
		"guest-cache/ (default: the one this program is in)"
#define GB_OPT_KEEP(d)                                                     \
	.name = "--keep", .type = BOPT_FLAG, .dest = (d),                  \
	.help = "keep the boots' logs and viommu-run JSON (printed path)"

/*
 * gb_locate() - before a booting run: check that CPU @pin (-1: none) is
 * ours to use, find the build directory (@obuild: --build) into @build
 * and tools/viommu-run (@orun: --run) into @run (PATH_MAX bytes each);
 * a usage error (exit 2) naming the option to pass if one is missing.
 */
void gb_locate(int pin, char *build, const char *obuild, char *run,
	       const char *orun);

/*
 * gb_smoke_skipped() - whether a --smoke run of subcommand @cmd is to be
 * skipped (booting is slow: only with VIOMMU_BENCH_GUEST=1); if so it
 * says so on stdout.
 */
bool gb_smoke_skipped(const char *cmd, bool smoke);

/*
 * gb_end() - after the report of a booting run of @cmd: keep the boots'
 * files in @tmp (and say where) when @keep or a boot @failed, else remove
 * them; the exit status: 1 if a boot failed, EXIT_SKIP if @skipped (a
 * smoke run with nothing booted), else 0.
 */
int gb_end(const char *cmd, const char *tmp, bool keep, bool failed,
	   bool skipped);

/*
 * gb_has_device() - whether the QEMU at @qemu has the device @name: its
 * `-device NAME,help` lists "NAME options:" (the exit status is 0 either
 * way; asking for one device loads only that device's module).
 */
bool gb_has_device(const char *qemu, const char *name);

/*
 * gb_resolve_qemu() - ask viommu-run (@run, with --build @build) which
 * QEMU and door boots of @qemu (--qemu; NULL: its default) and @door
 * (NULL: by version) will use (`--qemu-info`; it builds the QEMU 11.1
 * cache first if --qemu 11 needs it).  A usage error (exit 2: a door this
 * QEMU cannot have) ends the program if @fatal; any other failure leaves
 * q->path empty and says why in q->why.
 */
void gb_resolve_qemu(const char *run, const char *build, struct gb_qemu *q,
		     const char *qemu, const char *door, bool fatal);

/*
 * gb_spawn() - run viommu-run: @argv is {"python3", @run, args..., NULL}
 * (the script is exec'd directly when executable), stdout and stderr to
 * the file @log, on CPU @cpu unless it is negative; the child gets SIGTERM
 * if we die.  Its exit status, or -1.  Dies if fork fails.
 */
int gb_spawn(const char *run, char **argv, const char *log, int cpu);

/* ---- guest_read.c ---------------------------------------------------- */

/*
 * gb_take_qemu_info() - the JSON line of `viommu-run --qemu-info` (the last
 * line of @out that starts with '{') into @q; false if there is none.
 */
bool gb_take_qemu_info(struct gb_qemu *q, char *out);

/*
 * gb_take_json() - fill @b (whose figures are -1) from viommu-run's --json
 * file @path; @rc is viommu-run's exit status, for the message when the
 * file cannot be read.  Sets b->ok when the bench scenario passed, else
 * says why in b->why.
 */
void gb_take_json(const struct gb_opts *o, struct gb_boot *b,
		  const char *path, int rc);

/* ---- guest_report.c -------------------------------------------------- */

/* gb_peer_text() - the peer of @p in words (the QEMU peer's depends on
 * the main door). */
const char *gb_peer_text(const struct guestb *g, enum peer p);

/* gb_print_table() - the readable report. */
void gb_print_table(struct guestb *g, FILE *f);

/* gb_write_json() - the report as JSON. */
void gb_write_json(struct guestb *g, FILE *f);

#endif
