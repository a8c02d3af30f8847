/*
 * guest_io.h - what the files of `viommu-bench guest-io` share.
 *
 * The subcommand measures the storage column of the seeds' table with a
 * real guest: the guest's own virtio_blk driver doing O_DIRECT random
 * reads and writes (guest/blkio.c, viommu-run's blkio scenarios) through
 * three stacks, each in four IOMMU modes, every mode as % of the same
 * stack's no-IOMMU figure.  Two files, by concept:
 *
 *   guest_io.c         the command line, what can run, running the boots
 *                      (each boot is one tools/viommu-run child);
 *   guest_io_report.c  reading a boot's viommu-run JSON, statistics over
 *                      the rounds, the table, the goals and the JSON
 *                      report.
 *
 * With --iommu vtd (--net only) the IOMMU is VT-d instead: ours is our
 * VT-d model behind a register frame polled in guest RAM (viommu-run
 * --iommu vtd), qemu is QEMU's intel-iommu, and a fifth mode, strict-cm
 * (strict with caching mode), joins noiommu, lazy and strict.
 *
 * With --net the same machinery measures the network column instead:
 * the guest's stock virtio_net driver between two NICs in two network
 * namespaces (guest/nettcp.c, viommu-run's netbench scenarios): TCP
 * throughput (one and four streams, both directions, 1500 B and 64 KiB
 * writes) and UDP packets per second, in two stacks (ours; QEMU's two
 * virtio-net-pci on one hub behind its virtio-iommu-pci).  A job is then
 * one of those cases and its rate (iops[]) is MB/s, or packets/s for
 * UDP; the counters are per MiB moved instead of per disk I/O.
 *
 * A run is rounds of boots, one boot per (stack, mode) in each round.
 * Every figure of a boot is -1 until a VIOMMU-BENCH line (or the server's
 * counters) gives it; a boot that failed gives none.
 */
#ifndef VIOMMU_BENCH_GUEST_IO_H
#define VIOMMU_BENCH_GUEST_IO_H

#include "guest.h"

#define GIO_MAX_ROUNDS 15

/* The stacks: who serves the disk, who is the IOMMU in front of it. */
enum gio_stack {
	GIO_OURS,   /* our virtio-blk behind our virtio-iommu (vfio-user) */
	GIO_MIXED,  /* our virtio-blk behind QEMU's virtio-iommu-pci */
	GIO_QEMU,   /* QEMU's virtio-blk-pci behind QEMU's virtio-iommu-pci */
	GIO_NSTACKS
};

/* The modes, as viommu-run's blkio scenarios. */
enum gio_mode {
	GIO_NOIOMMU, /* blkio-noiommu: no IOMMU in front of the disk */
	GIO_PT,      /* blkio-pt: iommu.passthrough=1, identity domain */
	GIO_LAZY,    /* blkio: the kernel's default, DMA-FQ */
	GIO_STRICT,  /* blkio-strict: iommu.strict=1, DMA */
	GIO_STRICT_CM, /* --iommu vtd only: strict with caching mode */
	GIO_NMODES
};

/* The jobs guest/blkio.c runs, in its order: read/write x 4K/64K x qd. */
#define GIO_NJOBS 8
struct gio_job {
	bool write;
	uint32_t size;
	unsigned qd;
};

extern const struct gio_job gio_jobs[GIO_NJOBS];

/* --net: the cases guest/nettcp.c's netbench runs, in its order. */
#define GIO_NET_NJOBS 9
#define GIO_MAX_JOBS 9
struct gio_net_job {
	bool udp;       /* small-packet rate (the last job) */
	bool ba;        /* direction: second NIC to first */
	unsigned streams;
	uint32_t msg;   /* bytes per write */
};

extern const struct gio_net_job gio_net_jobs[GIO_NET_NJOBS];
extern const char *const gio_net_scenarios[GIO_NMODES];
extern const char *const gio_stack_names[GIO_NSTACKS];
extern const char *const gio_mode_names[GIO_NMODES];
extern const char *const gio_mode_scenarios[GIO_NMODES];

/* The command line. */
struct gio_opts {
	bool smoke, keep, no_pin;
	bool net;                 /* --net: the virtio-net column */
	bool vtd;                 /* --iommu vtd: VT-d, not virtio-iommu
				   * (net only; ours: our VT-d frame;
				   * qemu: QEMU's intel-iommu) */
	const char *json, *run, *build, *qemu;
	const char *replay;       /* --replay DIR: report kept boots */
	bool stack[GIO_NSTACKS];  /* --stacks */
	bool mode[GIO_NMODES];    /* --modes */
	uint32_t ms;              /* --bench-ms */
	int rounds;
	int pin;                  /* CPU every boot runs on; -1: none */
	unsigned poll_rq_us;      /* ours: viommu-server --poll-rq-us (0:
				   * a kick per request) */
	unsigned frame_nap_us;    /* ours with --iommu vtd: viommu-server
				   * --frame-nap-us (0: its default) */
};

/* What one boot gave. */
struct gio_boot {
	bool ran, ok, pinned;
	bool net;                 /* a netbench boot (set before take_json) */
	char why[256];
	double secs, load;
	double iops[GIO_MAX_JOBS], mbps[GIO_MAX_JOBS]; /* -1: none; --net:
						* MB/s (UDP: packets/s), MB/s */
	double cpu[GIO_MAX_JOBS]; /* --net: the guest's CPU busy % */
	char dtype[16];           /* the disk's domain type (iommu=) */
	/* viommu-server's counters over the boot (-1: no server / none) */
	double ios;               /* disk reads + writes; --net: MiB the
				   * NICs sent */
	double nic_kicks;         /* --net: REGION_WRITEs on the NICs'
				   * links (nearly all queue notifies) */
	double maps, unmaps;      /* virtio-iommu MAP / UNMAP requests;
				   * --iommu vtd: the VT-d model's
				   * invalidation descriptors / waits */
	double kicks;             /* virtio-iommu request queue kicks;
				   * --iommu vtd: frame register writes */
	double dma_msgs;          /* vfio-user DMA_MAP + DMA_UNMAP messages
				   * on the disk's link (QEMU's IOMMU
				   * forwarding the guest's maps) */
	double irqs;              /* interrupts the disk's link signalled */
	double srv_cpu;           /* server CPU seconds */
};

/* The whole run. */
struct gio {
	struct gio_opts o;
	struct machine m;
	char run[PATH_MAX], build[PATH_MAX], tmp[PATH_MAX];
	char skip[GIO_NSTACKS][1024]; /* why a stack does not run ("": it
				       * does) */
	struct gb_qemu q;
	struct gio_boot b[GIO_MAX_ROUNDS][GIO_NSTACKS][GIO_NMODES];
	int nboots;
	bool built;
	double secs;
};

/* ---- guest_io_report.c ----------------------------------------------- */

/* gio_boot_init() - a boot with no figures yet. */
void gio_boot_init(struct gio_boot *b);

/*
 * gio_take_json() - fill @b (initialised by gio_boot_init()) from
 * viommu-run's --json file @path of one blkio boot; @rc is viommu-run's
 * exit status, for the message when the file cannot be read.  Sets b->ok
 * when the blkio scenario passed and gave every job, else says why in
 * b->why.
 */
void gio_take_json(struct gio_boot *b, const char *path, int rc);

/* gio_take_qemu() - the QEMU path and version viommu-run's --json file
 * @path names into @q; false if it names none. */
bool gio_take_qemu(struct gb_qemu *q, const char *path);

/* Figures over the rounds are struct rstat (common.h). */
/* gio_njobs() - the jobs of the run (blk or --net). */
int gio_njobs(const struct gio *g);

/* gio_iops() / gio_mbps() - job @j of (@s, @m) over the rounds. */
struct rstat gio_iops(const struct gio *g, int s, int m, int j);
struct rstat gio_mbps(const struct gio *g, int s, int m, int j);

/* gio_pct() - IOPS of job @j in (@s, @m) as % of (@s, noiommu), round by
 * round: the median and range of the per-round percentages. */
struct rstat gio_pct(const struct gio *g, int s, int m, int j);

/* The goals: a verdict per goal and job. */
enum gio_verdict { GIO_NOT_MEASURED, GIO_MET, GIO_MISSED };

/*
 * gio_goal_pct() - ours in mode @m (lazy or strict) against its goal
 * (95 %, 60 % of our no-IOMMU figure) for job @j; the measured value in
 * *@v (-1: none).
 */
enum gio_verdict gio_goal_pct(const struct gio *g, int m, int j, double *v);

/*
 * gio_goal_vs_qemu() - whether ours in mode @m keeps a higher % of its
 * no-IOMMU figure than QEMU's stack for job @j; *@ours and *@qemu get the
 * two medians (-1: none).
 */
enum gio_verdict gio_goal_vs_qemu(const struct gio *g, int m, int j,
				  double *ours, double *qemu);

/* gio_print_table() - the readable report. */
void gio_print_table(const struct gio *g, FILE *f);

/* gio_write_json() - the report as JSON. */
void gio_write_json(const struct gio *g, FILE *f);

#endif
