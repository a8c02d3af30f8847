/*
 * qemu.h - what the files of `viommu-bench qemu` share (qemu.c says what
 * the subcommand measures and how).  The subcommand is four files, one
 * per concept:
 *   qemu.c          the paths and ratios, the command line, main;
 *   qemu_machine.c  the machine: the buses a driver reaches a device
 *                   through, the guest RAM memfd, QEMU and the
 *                   viommu-servers (start, stop);
 *   qemu_drive.c    driving a path (device setup, MAP/UNMAP batches) and
 *                   measuring it (chunks taking turns, kick timing, CPU
 *                   time, probes);
 *   qemu_report.c   statistics over runs and the table and JSON.
 * They share struct world, the state of one run.  Single-threaded.
 */
#ifndef VIOMMU_BENCH_QEMU_H
#define VIOMMU_BENCH_QEMU_H

#include "common.h"
#include "mpq_client.h"
#include "qemu_srv.h"
#include "qtest.h"
#include "vpci_drv.h"

#include <limits.h>

#define MAX_SIZES 8
#define SLOT_QEMU 3
#define SLOT_OURS 4 /* in QEMU and on the link servers (--iommu-slot) */
#define SLOT_EP 5
#define EP_ID (SLOT_EP << 3)
#define DOMAIN_ID 1u
#define RAM_SIZE (256ull << 20)
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
#define DEFAULT_POLL_US 200
#define VIRTIO_VENDOR 0x1af4
#define STR(x) #x
#define XSTR(x) STR(x)
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The paths, in table order. */
enum { P_QEMU, P_QEMU_SHM, P_PROXY, P_LINK, P_LINK_POLL, NPATH };
/* Driver instances, one per device (qemu and qemu-shm share one). */
enum { D_QEMU, D_PROXY, D_LINK, D_LINK_POLL, NDEV };
/* Buses: the routes to a device. */
enum { B_QTEST, B_SHM, B_LINK, B_LINK_POLL, NBUS };
/* viommu-servers. */
enum { S_PROXY, S_LINK, S_LINK_POLL, NSRV };

/* struct path_def - a path: its device, route and server (-1: none). */
struct path_def {
	const char *name, *desc;
	int dev, bus, srv;
};

extern const struct path_def qb_paths[NPATH];

extern const char *const qb_srv_names[NSRV];

/* struct ratio_def - a ratio reported: path @num / path @den. */
struct ratio_def {
	int num, den;
	const char *name, *what;
};

#define NRATIO 4
#define R_HEADLINE 0
extern const struct ratio_def qb_ratios[NRATIO];

struct opts {
	bool smoke;
	const char *json, *qemu, *server;
	uint32_t sizes[MAX_SIZES];
	int nsizes;
	uint32_t requests;
	int runs, timeout_ms;
	uint32_t poll_us;
	bool poll_set;
	int pin; /* CPU for every process of the run; -1: not pinned */
};

/* One measurement: one path, one batch size, one run. */
struct sample {
	double rps_all, rps_kick;   /* requests per second */
	double kick_ns;             /* mean kick-to-used per batch */
	double kick_med_ns;         /* its median (robust to preemption) */
	double rt_batch;            /* register round trips per batch */
	double cpu_qemu, cpu_srv, cpu_self; /* ns per request (-1 unknown) */
};

/* Medians over runs, per batch size and path. */
struct summary {
	struct sample med, min, max;
};

/*
 * struct bus_ctx - what a bus reaches the machine through: config and
 * MMIO by qtest (@q) or by the link client (@mpq, which serves function
 * @bdf only); RAM by qtest or, with @ram, in the mapped memfd.
 */
struct bus_ctx {
	struct qtest *q;
	struct mpq *mpq;
	uint16_t bdf;
	uint8_t *ram;
};

struct world {
	struct opts o;
	struct machine m;
	char qemu_path[PATH_MAX], server_path[PATH_MAX], qemu_version[128];
	int act[NPATH], nact; /* the paths measured */
	bool on[NPATH];
	int memfd;
	uint8_t *ram;
	struct qtest *q;
	struct bench_srv srv[NSRV];
	int hold[NSRV]; /* engine links of the link servers, held open */
	struct bus_ctx ctx[NBUS];
	struct vpci_bus bus[NBUS];
	struct vpci_dev dev[NDEV];
	struct vpci_req map[VPCI_MAX_QUEUE / 2], unmap[VPCI_MAX_QUEUE / 2];
	double rt_ns[BENCH_MAX_RUNS], mpq_ns[NPATH][BENCH_MAX_RUNS];
	double empty_ns[NPATH][BENCH_MAX_RUNS];
	struct sample s[MAX_SIZES][NPATH][BENCH_MAX_RUNS];
	struct summary sum[MAX_SIZES][NPATH];
	/* per ratio and run: [0] req/s all, [1] kick; then median, min, max */
	double ratio[MAX_SIZES][NRATIO][2][BENCH_MAX_RUNS];
	double m_ratio[MAX_SIZES][NRATIO][2][3];
	double m_rt_ns, m_mpq_ns[NPATH], m_empty_ns[NPATH];
	double kicks[NPATH][KICK_SAMPLES]; /* scratch of measure() */
	/* kick = fixed + n * per_req, through the smallest and largest n */
	bool fit;
	int k_lo, k_hi;
	double fixed_ns[NPATH], per_req_ns[NPATH];
};

/* ---- qemu_machine.c ---------------------------------------------------- */

/*
 * qb_start_all() - the guest RAM memfd, QEMU (with server A behind its
 * proxy devices) and the link servers; dies if one does not come up.
 */
void qb_start_all(struct world *w);

/* qb_stop_all() - reset the devices, stop QEMU and the servers. */
void qb_stop_all(struct world *w);

/* ---- qemu_drive.c ------------------------------------------------------ */

/* qb_build_requests() - the MAP and UNMAP batches (the largest size). */
void qb_build_requests(struct world *w);

/* qb_setup_devices() - each device once, through its first path. */
void qb_setup_devices(struct world *w);

/* qb_run_all() - warm up, then every run, size and path. */
void qb_run_all(struct world *w);

/* qb_ratio_on() - whether both paths of ratio @i were measured. */
bool qb_ratio_on(const struct world *w, int i);

/* ---- qemu_report.c ----------------------------------------------------- */

/* qb_summarise() - medians (with min..max) over runs of everything. */
void qb_summarise(struct world *w);

/* qb_print_table() - the human-readable report. */
void qb_print_table(const struct world *w, FILE *f);

/* qb_print_json() - the machine-readable report. */
void qb_print_json(const struct world *w, FILE *f);

#endif /* VIOMMU_BENCH_QEMU_H */
