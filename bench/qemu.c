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
 */
#include "common.h"
#include "opts.h"
#include "mpq_client.h"
#include "qemu_srv.h"
#include "qtest.h"
#include "vpci_drv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

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

static const struct path_def paths[NPATH] = {
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

static const char *const srv_names[NSRV] = {
	"viommu-server of path proxy", "viommu-server of path link",
	"viommu-server of path link-poll",
};

/* struct ratio_def - a ratio reported: path @num / path @den. */
struct ratio_def {
	int num, den;
	const char *name, *what;
};

#define NRATIO 4
#define R_HEADLINE 0
static const struct ratio_def ratios[NRATIO] = {
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

/* ------------------------------------------------------------------ */
/* The buses                                                            */

/*
 * qtest route: configuration through ports 0xcf8/0xcfc, MMIO and RAM as
 * qtest accesses of the first CPU's address space.
 */

/* cfg_addr() - the 0xcf8 address of @bdf's dword at @off. */
static uint32_t cfg_addr(uint16_t bdf, uint16_t off)
{
	return 0x80000000u | (uint32_t)bdf << 8 | (off & 0xfc);
}

static int qt_cfg_read(void *opaque, uint16_t bdf, uint16_t off, int size,
		       uint32_t *val)
{
	struct qtest *q = ((struct bus_ctx *)opaque)->q;
	int err = qtest_out(q, 4, 0xcf8, cfg_addr(bdf, off));

	return err ? err : qtest_in(q, size, (uint16_t)(0xcfc + (off & 3)),
				    val);
}

static int qt_cfg_write(void *opaque, uint16_t bdf, uint16_t off, int size,
			uint32_t val)
{
	struct qtest *q = ((struct bus_ctx *)opaque)->q;
	int err = qtest_out(q, 4, 0xcf8, cfg_addr(bdf, off));

	return err ? err : qtest_out(q, size, (uint16_t)(0xcfc + (off & 3)),
				     val);
}

static int qt_mmio_read(void *opaque, uint64_t addr, int size,
			uint64_t *val)
{
	return qtest_readn(((struct bus_ctx *)opaque)->q, size, addr, val);
}

static int qt_mmio_write(void *opaque, uint64_t addr, int size,
			 uint64_t val)
{
	return qtest_writen(((struct bus_ctx *)opaque)->q, size, addr, val);
}

static int qt_mem_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	return qtest_memread(((struct bus_ctx *)opaque)->q, gpa, buf, len);
}

static int qt_mem_write(void *opaque, uint64_t gpa, const void *buf,
			size_t len)
{
	return qtest_memwrite(((struct bus_ctx *)opaque)->q, gpa, buf, len);
}

/*
 * Mapped RAM: the device wrote the used ring before its reply to the
 * kick arrived (a syscall apart), so plain copies suffice; the fences
 * keep the compiler from moving them across the bus calls.
 */
static int shm_mem_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	struct bus_ctx *c = opaque;

	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return -EFAULT;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	memcpy(buf, c->ram + gpa, len);
	return 0;
}

static int shm_mem_write(void *opaque, uint64_t gpa, const void *buf,
			 size_t len)
{
	struct bus_ctx *c = opaque;

	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return -EFAULT;
	memcpy(c->ram + gpa, buf, len);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return 0;
}

/*
 * Link route: configuration and MMIO as mpqemu messages to the one
 * function the link serves (others read all ones); RAM mapped.
 */
static int lk_cfg_read(void *opaque, uint16_t bdf, uint16_t off, int size,
		       uint32_t *val)
{
	struct bus_ctx *c = opaque;

	if (bdf != c->bdf) {
		*val = 0xffffffffu >> (32 - 8 * size);
		return 0; /* no function there: all ones, as on PCI */
	}
	return mpq_cfg_read(c->mpq, off, size, val);
}

static int lk_cfg_write(void *opaque, uint16_t bdf, uint16_t off, int size,
			uint32_t val)
{
	struct bus_ctx *c = opaque;

	return bdf != c->bdf ? 0 : mpq_cfg_write(c->mpq, off, size, val);
}

static int lk_mmio_read(void *opaque, uint64_t addr, int size,
			uint64_t *val)
{
	return mpq_bar_read(((struct bus_ctx *)opaque)->mpq, addr, size, val);
}

static int lk_mmio_write(void *opaque, uint64_t addr, int size,
			 uint64_t val)
{
	return mpq_bar_write(((struct bus_ctx *)opaque)->mpq, addr, size, val);
}

static const struct vpci_bus_ops bus_ops[NBUS] = {
	[B_QTEST] = { .cfg_read = qt_cfg_read, .cfg_write = qt_cfg_write,
		      .mmio_read = qt_mmio_read, .mmio_write = qt_mmio_write,
		      .mem_read = qt_mem_read, .mem_write = qt_mem_write },
	[B_SHM] = { .cfg_read = qt_cfg_read, .cfg_write = qt_cfg_write,
		    .mmio_read = qt_mmio_read, .mmio_write = qt_mmio_write,
		    .mem_read = shm_mem_read, .mem_write = shm_mem_write },
	[B_LINK] = { .cfg_read = lk_cfg_read, .cfg_write = lk_cfg_write,
		     .mmio_read = lk_mmio_read, .mmio_write = lk_mmio_write,
		     .mem_read = shm_mem_read, .mem_write = shm_mem_write },
	[B_LINK_POLL] = { .cfg_read = lk_cfg_read,
			  .cfg_write = lk_cfg_write,
			  .mmio_read = lk_mmio_read,
			  .mmio_write = lk_mmio_write,
			  .mem_read = shm_mem_read,
			  .mem_write = shm_mem_write },
};

/* setup_buses() - every route; each link bus has its own MMIO window. */
static void setup_buses(struct world *w)
{
	for (int b = 0; b < NBUS; b++) {
		w->ctx[b].q = b == B_QTEST || b == B_SHM ? w->q : NULL;
		w->ctx[b].ram = b == B_QTEST ? NULL : w->ram;
		w->ctx[b].bdf = SLOT_OURS << 3;
		w->bus[b] = (struct vpci_bus){ .ops = &bus_ops[b],
					       .opaque = &w->ctx[b],
					       .mmio_next = MMIO_BASE,
					       .mmio_end = MMIO_END,
					       .direct_mem = b != B_QTEST };
	}
}

/* ------------------------------------------------------------------ */
/* Guest RAM, QEMU and the servers                                      */

/* make_ram() - the memfd all guest RAM lives in, mapped here. */
static void make_ram(struct world *w)
{
	void *p;

	w->memfd = memfd_create("viommu-bench-ram",
				MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (w->memfd < 0)
		die("qemu-shm: memfd_create: %s", strerror(errno));
	/* sealed as QEMU seals its memfd RAM (viommu requires F_SEAL_SHRINK) */
	if (ftruncate(w->memfd, (off_t)RAM_SIZE) ||
	    fcntl(w->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		die("qemu-shm: cannot size and seal the RAM memfd: %s",
		    strerror(errno));
	p = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 w->memfd, 0);
	if (p == MAP_FAILED)
		die("qemu-shm: cannot map the RAM memfd: %s", strerror(errno));
	w->ram = p;
}

/* check_word() - GPA @gpa through qtest and in the mapping agree. */
static void check_word(struct world *w, uint64_t gpa, uint64_t pat)
{
	uint64_t seen;

	if (qtest_writen(w->q, 8, gpa, pat))
		die("qemu-shm: qtest: %s", qtest_error(w->q));
	memcpy(&seen, w->ram + gpa, sizeof(seen));
	if (seen == pat) {
		memcpy(w->ram + gpa, &(uint64_t){ ~pat }, sizeof(pat));
		if (qtest_readn(w->q, 8, gpa, &seen))
			die("qemu-shm: qtest: %s", qtest_error(w->q));
		pat = ~pat;
	}
	if (seen != pat)
		die("qemu-shm: guest RAM at GPA %#llx reads %#llx where %#llx "
		    "was written by the other route (qtest / the mapped "
		    "memfd): QEMU does not put GPA 0..%s at offset 0 of the "
		    "memfd (%s)", (unsigned long long)gpa,
		    (unsigned long long)seen, (unsigned long long)pat,
		    RAM_SIZE_STR, w->qemu_version);
	memset(w->ram + gpa, 0, sizeof(pat));
}

/*
 * check_ram() - QEMU's RAM is the memfd with GPA = file offset: a word
 * written through qtest shows in the mapping and back, at every ring
 * area, the mapping targets and the top of RAM.
 */
static void check_ram(struct world *w)
{
	uint64_t gpa[NDEV + 2] = { PHYS_BASE, RAM_SIZE - 8 };

	for (int d = 0; d < NDEV; d++)
		gpa[2 + d] = RING_BASE(d);
	for (int i = 0; i < NDEV + 2; i++)
		check_word(w, gpa[i], 0x0123456789abcdefull ^ gpa[i]);
}

/* make_pair() - a socketpair, close-on-exec at both ends. */
static void make_pair(int fds[2], const char *who)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds))
		die("%s: socketpair: %s", who, strerror(errno));
}

/* close_fd() - close @fd or die (a lost descriptor is a bug here). */
static void close_fd(int fd, const char *who)
{
	if (close(fd))
		die("%s: close: %s", who, strerror(errno));
}

/* start_qemu() - the VM with both IOMMUs, links @fds (QEMU's ends). */
static void start_qemu(struct world *w, const int fds[2])
{
	char px0[64], px1[64], ram[128], err[900];
	const char *args[] = {
		"-M", "q35,memory-backend=ram", "-object", ram,
		"-m", RAM_SIZE_STR, "-accel", "tcg", "-S", "-display", "none",
		"-nodefaults", "-device", "virtio-iommu-pci,addr=0x3",
		"-device", px0, "-device", px1, NULL,
	};
	const int pass[3] = { fds[0], fds[1], w->memfd };
	struct qtest_config c = { .qemu = w->qemu_path, .args = args,
				  .pass_fds = pass, .npass = 3,
				  .timeout_ms = w->o.timeout_ms };

	snprintf(ram, sizeof(ram), "memory-backend-file,id=ram,size="
		 RAM_SIZE_STR ",mem-path=/proc/self/fd/%d,share=on", w->memfd);
	snprintf(px0, sizeof(px0), "x-pci-proxy-dev,id=px0,addr=%#x,fd=%d",
		 SLOT_OURS, fds[0]);
	snprintf(px1, sizeof(px1), "x-pci-proxy-dev,id=px1,addr=%#x,fd=%d",
		 SLOT_EP, fds[1]);
	if (qtest_start(&c, &w->q, err, sizeof(err)))
		die("starting QEMU: %s", err);
}

/* start_vm() - server A and QEMU, connected by two links. */
static void start_vm(struct world *w)
{
	static const char *const extra[] = { "--log-level", "warn", NULL };
	int fds[2][2];

	make_pair(fds[0], "proxy");
	make_pair(fds[1], "proxy");
	srv_start(&w->srv[S_PROXY], w->server_path,
		  (const int[]){ fds[0][1], fds[1][1] }, 2, extra);
	close_fd(fds[0][1], "proxy");
	close_fd(fds[1][1], "proxy");
	start_qemu(w, (const int[]){ fds[0][0], fds[1][0] });
	close_fd(fds[0][0], "proxy");
	close_fd(fds[1][0], "proxy");
}

/*
 * start_link() - server @s (with --poll-rq-us @poll_us) on two links: link 0
 * (the IOMMU) for bus @b's client, link 1 (the engine) held open; then
 * the guest RAM map.
 */
static void start_link(struct world *w, int s, int b, unsigned poll_us)
{
	char poll[16];
	const char *const extra[] = { "--iommu-slot", XSTR(SLOT_OURS),
				      "--endpoint-slot", XSTR(SLOT_EP),
				      "--log-level", "warn", "--poll-rq-us", poll,
				      NULL };
	const char *who = paths[s == S_LINK ? P_LINK : P_LINK_POLL].name;
	char srv[700];
	int fds[2][2], err;

	snprintf(poll, sizeof(poll), "%u", poll_us);
	make_pair(fds[0], who);
	make_pair(fds[1], who);
	srv_start(&w->srv[s], w->server_path,
		  (const int[]){ fds[0][1], fds[1][1] }, 2, extra);
	close_fd(fds[0][1], who);
	close_fd(fds[1][1], who);
	w->hold[s] = fds[1][0];
	err = mpq_open(fds[0][0], w->o.timeout_ms, &w->ctx[b].mpq);
	if (err)
		die("%s: cannot set up the link client: %s", who,
		    strerror(-err));
	if (mpq_sync_sysmem(w->ctx[b].mpq, w->memfd, 0, RAM_SIZE, 0)) {
		srv_state(&w->srv[s], srv, sizeof(srv));
		die("%s: SYNC_SYSMEM: %s%s", who, mpq_error(w->ctx[b].mpq),
		    srv);
	}
}

/* start_all() - QEMU with server A, then the link servers. */
static void start_all(struct world *w)
{
	for (int s = 0; s < NSRV; s++) {
		w->srv[s] = (struct bench_srv){ .name = srv_names[s],
						.pid = -1, .log = -1 };
		w->hold[s] = -1;
	}
	make_ram(w);
	start_vm(w);
	check_ram(w);
	setup_buses(w);
	start_link(w, S_LINK, B_LINK, 0);
	if (w->on[P_LINK_POLL])
		start_link(w, S_LINK_POLL, B_LINK_POLL, w->o.poll_us);
}

/*
 * stop_all() - reset the devices, stop QEMU (server A ends with its
 * links), close the link servers' links (they end too), reap everyone.
 */
static void stop_all(struct world *w)
{
	for (int d = 0; d < NDEV; d++)
		vpci_fini(&w->dev[d]);
	qtest_stop(w->q, NULL);
	w->q = NULL;
	for (int b = 0; b < NBUS; b++) {
		mpq_close(w->ctx[b].mpq);
		w->ctx[b].mpq = NULL;
	}
	for (int s = 0; s < NSRV; s++) {
		if (w->hold[s] >= 0)
			close_fd(w->hold[s], w->srv[s].name);
		w->hold[s] = -1;
	}
	for (int s = 0; s < NSRV; s++)
		srv_stop(&w->srv[s]);
	if (munmap(w->ram, RAM_SIZE))
		die("munmap: %s", strerror(errno));
	close_fd(w->memfd, "RAM memfd");
}

/* ------------------------------------------------------------------ */
/* Driving a path                                                       */

/* check_ok() - die unless every status in @st[0..n) is OK. */
static void check_ok(int p, const uint8_t *st, const struct vpci_req *r,
		     unsigned n)
{
	static const char *const names[] = { "OK", "IOERR", "UNSUPP",
					     "DEVERR", "INVAL", "RANGE",
					     "NOENT", "FAULT", "NOMEM" };

	for (unsigned j = 0; j < n; j++)
		if (st[j])
			die("path %s (%s): request %u (type %u) answered "
			    "status %u (%s)", paths[p].name, paths[p].desc, j,
			    r[j].type, st[j], st[j] < 9 ? names[st[j]] : "?");
}

/* fail_path() - die with what the driver, the route and server say. */
static void __attribute__((noreturn))
fail_path(struct world *w, int p, const char *what)
{
	const struct bus_ctx *c = &w->ctx[paths[p].bus];
	char via[800] = "", srv[700] = "";

	if (c->mpq && mpq_error(c->mpq)[0])
		snprintf(via, sizeof(via), " (mpqemu: %s)", mpq_error(c->mpq));
	else if (c->q && qtest_error(c->q)[0])
		snprintf(via, sizeof(via), " (qtest: %s)", qtest_error(c->q));
	if (paths[p].srv >= 0)
		srv_state(&w->srv[paths[p].srv], srv, sizeof(srv));
	die("path %s (%s): %s: %s%s%s", paths[p].name, paths[p].desc, what,
	    w->dev[paths[p].dev].err, via, srv);
}

/* use_path() - the path's driver, switched to the path's bus. */
static struct vpci_dev *use_path(struct world *w, int p)
{
	struct vpci_dev *d = &w->dev[paths[p].dev];
	struct vpci_bus *b = &w->bus[paths[p].bus];

	if (d->bus != b && vpci_set_bus(d, b))
		fail_path(w, p, "switching routes");
	return d;
}

/* path_rt() - register round trips of the path's route so far. */
static uint64_t path_rt(const struct world *w, int p)
{
	const struct bus_ctx *c = &w->ctx[paths[p].bus];

	return c->mpq ? mpq_round_trips(c->mpq) : qtest_round_trips(c->q);
}

/* run_batch() - one batch on path @p; die on any failure. */
static void run_batch(struct world *w, int p, const struct vpci_req *r,
		      unsigned n, uint64_t *kick_ns)
{
	struct vpci_dev *d = use_path(w, p);
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
		fail_path(w, p, strerror(-err));
	check_ok(p, st, r, n);
}

/* init_path() - init path @p's device on its bus, attach 0x28. */
static void init_path(struct world *w, int p)
{
	static const uint16_t slot[NDEV] = { SLOT_QEMU, SLOT_OURS, SLOT_OURS,
					     SLOT_OURS };
	const struct vpci_req attach = { .type = VPCI_REQ_ATTACH,
					 .domain = DOMAIN_ID,
					 .endpoint = EP_ID };
	int dv = paths[p].dev;
	struct vpci_config c = { .bdf = (uint16_t)(slot[dv] << 3),
				 .ram_base = RING_BASE(dv),
				 .ram_size = RING_AREA };

	if (vpci_init(&w->dev[dv], &w->bus[paths[p].bus], &c))
		fail_path(w, p, "init failed");
	for (int k = 0; k < w->o.nsizes; k++)
		if (w->o.sizes[k] > w->dev[dv].qsize / 2u)
			bad_usage("--sizes: %u requests do not fit path %s's "
				  "queue of %u (2 descriptors each)",
				  w->o.sizes[k], paths[p].name,
				  w->dev[dv].qsize);
	run_batch(w, p, &attach, 1, NULL);
}

/* setup_devices() - each device once, through its first path. */
static void setup_devices(struct world *w)
{
	bool done[NDEV] = { false };

	for (int i = 0; i < w->nact; i++) {
		int p = w->act[i];

		if (!done[paths[p].dev])
			init_path(w, p);
		done[paths[p].dev] = true;
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

/* struct cpu3 - CPU time of QEMU, the path's server and this process. */
struct cpu3 {
	double qemu, srv, self;
};

/*
 * cpu_now() - read the three clocks for path @p; @self_first orders the
 * reads so that neither /proc reading of a span is charged to this
 * program.  A path without a server reads 0 for it.
 */
static struct cpu3 cpu_now(const struct world *w, int p, bool self_first)
{
	struct cpu3 c;
	int s = paths[p].srv;

	if (self_first)
		c.self = (double)clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	c.qemu = proc_cpu_ns(qtest_pid(w->q));
	c.srv = s >= 0 ? proc_cpu_ns(w->srv[s].pid) : 0;
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
 * struct acc - what one path accumulated over one measurement; @kicks
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

/* run_chunk() - @pairs MAP + UNMAP batch pairs of @n on path @p. */
static void run_chunk(struct world *w, int p, unsigned n, unsigned pairs,
		      struct acc *a)
{
	struct cpu3 c0, c1;
	uint64_t rt0, t0;

	use_path(w, p);
	c0 = cpu_now(w, p, false);
	rt0 = path_rt(w, p);
	t0 = clock_ns(CLOCK_MONOTONIC);
	for (unsigned b = 0; b < 2 * pairs; b++) {
		uint64_t k = 0;

		run_batch(w, p, b & 1 ? w->unmap : w->map, n, &k);
		a->kick += k;
		if (a->nkicks < KICK_SAMPLES)
			a->kicks[a->nkicks++] = (double)k;
	}
	a->wall += clock_ns(CLOCK_MONOTONIC) - t0;
	a->rt += path_rt(w, p) - rt0;
	a->batches += 2ull * pairs;
	c1 = cpu_now(w, p, true);
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

/* ratio_on() - whether both paths of ratio @i were measured. */
static bool ratio_on(const struct world *w, int i)
{
	return w->on[ratios[i].num] && w->on[ratios[i].den];
}

/* take_ratios() - every ratio of size @k in run @r. */
static void take_ratios(struct world *w, int k, int r)
{
	for (int i = 0; i < NRATIO; i++) {
		const struct sample *a = &w->s[k][ratios[i].num][r];
		const struct sample *b = &w->s[k][ratios[i].den][r];

		if (!ratio_on(w, i))
			continue;
		w->ratio[k][i][0][r] = a->rps_all / b->rps_all;
		w->ratio[k][i][1][r] = a->rps_kick / b->rps_kick;
	}
}

/*
 * measure() - batch size @k in run @r: the paths take turns in chunks of
 * about CHUNK_REQUESTS requests (at least one MAP + UNMAP pair), so that
 * load changes on the machine hit all alike.
 */
static void measure(struct world *w, int k, int r)
{
	unsigned n = w->o.sizes[k], pairs = batches_for(w, n) / 2;
	unsigned chunk = CHUNK_REQUESTS / (2 * n), c = 0;
	struct acc a[NPATH];

	for (int p = 0; p < NPATH; p++)
		a[p] = (struct acc){ .kicks = w->kicks[p] };
	if (!chunk)
		chunk = 1;
	for (unsigned done = 0; done < pairs; c++) {
		unsigned now = pairs - done < chunk ? pairs - done : chunk;

		for (int i = 0; i < w->nact; i++) {
			int p = w->act[(r + c + (unsigned)i) % w->nact];

			run_chunk(w, p, n, now, &a[p]);
		}
		done += now;
	}
	for (int i = 0; i < w->nact; i++)
		to_sample(&a[w->act[i]], n, &w->s[k][w->act[i]][r]);
	take_ratios(w, k, r);
}

/* time_kick() - one empty kick (notify + used-index read) on path @p. */
static uint64_t time_kick(struct world *w, int p)
{
	struct vpci_dev *d = use_path(w, p);
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);

	if (vpci_kick(d) || vpci_wait(d, 1))
		fail_path(w, p, "empty kick");
	return clock_ns(CLOCK_MONOTONIC) - t0;
}

/* time_mpq() - one mpqemu round trip on path @p: read the vendor ID. */
static uint64_t time_mpq(struct world *w, int p)
{
	struct mpq *c = w->ctx[paths[p].bus].mpq;
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
	uint32_t v;

	if (mpq_cfg_read(c, 0, 2, &v))
		fail_path(w, p, "mpqemu round trip");
	if (v != VIRTIO_VENDOR)
		die("path %s: vendor ID %#x, expected %#x", paths[p].name, v,
		    VIRTIO_VENDOR);
	return clock_ns(CLOCK_MONOTONIC) - t0;
}

/*
 * probe_costs() - interleaved: a bare qtest round trip (a RAM readw), a
 * bare mpqemu round trip per link path, and per path an empty kick - the
 * notify write and the used-index read of a batch with nothing available
 * (the fixed part of the "kick" figure).
 */
static void probe_costs(struct world *w, int run)
{
	uint64_t rt = 0, mpq[NPATH] = { 0 }, kick[NPATH] = { 0 }, t0, v;

	for (int i = 0; i < PROBE_ROUNDS; i++) {
		t0 = clock_ns(CLOCK_MONOTONIC);
		if (qtest_readn(w->q, 2, RING_BASE(D_QEMU), &v))
			die("qtest: %s", qtest_error(w->q));
		rt += clock_ns(CLOCK_MONOTONIC) - t0;
		for (int k = 0; k < w->nact; k++) {
			int p = w->act[(i + k) % w->nact];

			if (w->ctx[paths[p].bus].mpq)
				mpq[p] += time_mpq(w, p);
			kick[p] += time_kick(w, p);
		}
	}
	w->rt_ns[run] = (double)rt / PROBE_ROUNDS;
	for (int p = 0; p < NPATH; p++) {
		w->mpq_ns[p][run] = (double)mpq[p] / PROBE_ROUNDS;
		w->empty_ns[p][run] = (double)kick[p] / PROBE_ROUNDS;
	}
}

/* run_all() - warm up, then every run, size and path. */
static void run_all(struct world *w)
{
	for (int k = 0; k < w->o.nsizes; k++)
		for (int i = 0; i < w->nact; i++) {
			run_batch(w, w->act[i], w->map, w->o.sizes[k], NULL);
			run_batch(w, w->act[i], w->unmap, w->o.sizes[k], NULL);
		}
	for (int r = 0; r < w->o.runs; r++) {
		probe_costs(w, r);
		for (int k = 0; k < w->o.nsizes; k++)
			measure(w, k, r);
	}
}

/* ------------------------------------------------------------------ */
/* Statistics                                                           */

/* med_of() - the median of @n values at @v (copied, not reordered). */
static double med_of(const double *v, int n, double *lo, double *hi)
{
	double t[BENCH_MAX_RUNS], m;

	memcpy(t, v, sizeof(double) * (size_t)n);
	m = median(t, n);
	if (lo)
		*lo = t[0];
	if (hi)
		*hi = t[n - 1];
	return m;
}

/* summarise_field() - median, min, max of one sample field. */
static void summarise_field(const struct world *w, int k, int p,
			    size_t off, struct summary *s)
{
	double v[BENCH_MAX_RUNS];

	for (int r = 0; r < w->o.runs; r++)
		v[r] = *(const double *)((const char *)&w->s[k][p][r] + off);
	*(double *)((char *)&s->med + off) =
		med_of(v, w->o.runs, (double *)((char *)&s->min + off),
		       (double *)((char *)&s->max + off));
}

/*
 * fit_kick() - split each path's kick time into a fixed part per kick and
 * a part per request: per run, the line through the median kick times of
 * the smallest and the largest batch size; medians over runs.
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
	for (int p = 0; w->fit && p < NPATH; p++) {
		if (!w->on[p])
			continue;
		for (int r = 0; r < w->o.runs; r++) {
			double ka = w->s[lo][p][r].kick_med_ns;

			per[r] = (w->s[hi][p][r].kick_med_ns - ka) / dn;
			fixed[r] = ka - per[r] * w->o.sizes[lo];
		}
		w->per_req_ns[p] = median(per, w->o.runs);
		w->fixed_ns[p] = median(fixed, w->o.runs);
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
	int runs = w->o.runs;

	w->m_rt_ns = med_of(w->rt_ns, runs, NULL, NULL);
	for (int p = 0; p < NPATH; p++) {
		w->m_mpq_ns[p] = med_of(w->mpq_ns[p], runs, NULL, NULL);
		w->m_empty_ns[p] = med_of(w->empty_ns[p], runs, NULL, NULL);
		for (int k = 0; w->on[p] && k < w->o.nsizes; k++)
			for (size_t f = 0; f < NELEM(fields); f++)
				summarise_field(w, k, p, fields[f],
						&w->sum[k][p]);
	}
	for (int k = 0; k < w->o.nsizes; k++)
		for (int i = 0; i < NRATIO; i++)
			for (int j = 0; j < 2; j++) {
				double *m = w->m_ratio[k][i][j];

				m[0] = med_of(w->ratio[k][i][j], runs, &m[1],
					      &m[2]);
			}
	fit_kick(w);
}

/* ------------------------------------------------------------------ */
/* Output                                                               */

/* fmt_cpu() - a CPU figure, "n/a" (unknown) or "-" (no such process). */
static void fmt_cpu(char *buf, size_t n, double v, bool none)
{
	if (none)
		snprintf(buf, n, "-");
	else if (v < 0)
		snprintf(buf, n, "n/a");
	else
		snprintf(buf, n, "%.0f", v);
}

/* print_row() - one path's line of the table. */
static void print_row(const struct world *w, int k, int p, FILE *f)
{
	const struct summary *s = &w->sum[k][p];
	char all[16], mn[16], mx[16], range[40], kick[16], cq[16], cs[16],
		cb[16];

	fmt_rate(all, sizeof(all), s->med.rps_all);
	fmt_rate(mn, sizeof(mn), s->min.rps_all);
	fmt_rate(mx, sizeof(mx), s->max.rps_all);
	snprintf(range, sizeof(range), "%s..%s", mn, mx);
	fmt_rate(kick, sizeof(kick), s->med.rps_kick);
	fmt_cpu(cq, sizeof(cq), s->med.cpu_qemu, false);
	fmt_cpu(cs, sizeof(cs), s->med.cpu_srv, paths[p].srv < 0);
	fmt_cpu(cb, sizeof(cb), s->med.cpu_self, false);
	fprintf(f, "  %8u  %-9s %9s %17s %10s %8.1f %7.1f %8.1f %8s %8s "
		"%8s\n", w->o.sizes[k], paths[p].name, all, range, kick,
		s->med.kick_ns / 1000, s->med.kick_med_ns / 1000,
		s->med.rt_batch, cq, cs, cb);
}

/* print_ratios() - the ratio lines under size @k's rows. */
static void print_ratios(const struct world *w, int k, FILE *f)
{
	for (int i = 0; i < NRATIO; i++) {
		const double (*m)[3] = w->m_ratio[k][i];

		if (!ratio_on(w, i))
			continue;
		fprintf(f, "  %8s  %-18s all %5.2fx (%.2f..%.2f), kick %5.2fx "
			"(%.2f..%.2f)%s\n", "", ratios[i].name, m[0][0],
			m[0][1], m[0][2], m[1][0], m[1][1], m[1][2],
			i == R_HEADLINE ? "  <- headline" : "");
	}
}

/* print_goal() - the headline against the goal, per size. */
static void print_goal(const struct world *w, FILE *f)
{
	fprintf(f, "\ngoal: %s (req/s all) >= %.0fx:", ratios[R_HEADLINE].name,
		GOAL_RATIO);
	for (int k = 0; k < w->o.nsizes; k++) {
		double r = w->m_ratio[k][R_HEADLINE][0][0];

		fprintf(f, "%s n=%u %.2fx %s", k ? "," : "", w->o.sizes[k], r,
			r >= GOAL_RATIO ? "met" : "NOT met");
	}
	fprintf(f, "\nratios (each the median of per-run ratios of req/s, "
		"min..max):\n");
	for (int i = 0; i < NRATIO; i++)
		if (ratio_on(w, i))
			fprintf(f, "  %-18s  %s\n", ratios[i].name,
				ratios[i].what);
}

/* print_fit() - where the kick time goes. */
static void print_fit(const struct world *w, FILE *f)
{
	fprintf(f, "\nwhere the time goes: empty kick proxy - qemu = %.1f us "
		"(QEMU's proxy hop);\nlink - qemu-shm = %.1f us (an mpqemu "
		"round trip against a qtest one).\n",
		(w->m_empty_ns[P_PROXY] - w->m_empty_ns[P_QEMU]) / 1000,
		(w->m_empty_ns[P_LINK] - w->m_empty_ns[P_QEMU_SHM]) / 1000);
	if (!w->fit) {
		fprintf(f, "(one batch size: no per-request split of the kick "
			"time)\n");
		return;
	}
	fprintf(f, "median kick time = fixed + n x per request (per run, the "
		"line through n=%u\nand n=%u; medians over runs):\n",
		w->o.sizes[w->k_lo], w->o.sizes[w->k_hi]);
	for (int i = 0; i < w->nact; i++) {
		int p = w->act[i];

		fprintf(f, "  %-9s fixed %6.1f us per kick, %6.0f ns per "
			"request\n", paths[p].name, w->fixed_ns[p] / 1000,
			w->per_req_ns[p]);
	}
	fprintf(f, "  per-request device cost, qemu-shm/link: %.2fx, "
		"qemu/proxy: %.2fx\n",
		w->per_req_ns[P_QEMU_SHM] / w->per_req_ns[P_LINK],
		w->per_req_ns[P_QEMU] / w->per_req_ns[P_PROXY]);
}

/* print_method() - how the figures were taken. */
static void print_method(const struct world *w, FILE *f)
{
	fprintf(f,
"method:  one QEMU (q35, %s RAM from a memfd this program maps too;\n"
"         -accel tcg -S: CPUs halted) with QEMU's virtio-iommu-pci at\n"
"         00:03.0 and ours at 00:04.0 (x-pci-proxy-dev -> viommu-server),\n"
"         and viommu-servers this program drives over the proxy link\n"
"         itself; one register-level driver; endpoint 0x28 in domain 1;\n"
"         alternating batches of n MAP / n UNMAP (4 KiB), one kick each;\n"
"         ~%u requests per path and measurement, the paths taking turns\n"
"         in chunks of ~%d requests; median of %d runs\n",
		RAM_SIZE_STR, w->o.requests, CHUNK_REQUESTS, w->o.runs);
	if (w->o.pin >= 0)
		fprintf(f, "pinned:  every process of the run on CPU %d "
			"(--pin)\n", w->o.pin);
	else
		fprintf(f, "pinned:  no (the scheduler places every thread; "
			"--pin CPU puts all on one)\n");
	fputs(
"paths:   qemu      QEMU's device; config, MMIO and RAM through qtest\n"
"         qemu-shm  the same device and driver state; config and MMIO\n"
"                   through qtest, RAM in the mapped memfd\n"
"         proxy     ours behind x-pci-proxy-dev; all through qtest\n"
"         link      ours, no QEMU: mpqemu messages from this program (a\n"
"                   blocking round trip per config/MMIO access), RAM in\n"
"                   the mapped memfd\n", f);
	if (w->on[P_LINK_POLL])
		fprintf(f, "         link-poll as link, the server started "
			"with --poll-rq-us %u (kicks\n                   "
			"suppressed while busy; the driver skips them)\n",
			w->o.poll_us);
	fputs(
"         req/s all: whole loop incl. driver accesses; kick: kick write\n"
"         until the used index shows the batch (kick us: mean, med us:\n"
"         median per batch); rt/batch: register round trips (qtest or\n"
"         mpqemu) per batch; cpu: ns per request of QEMU, the path's\n"
"         viommu-server, this program (/proc schedstat)\n", f);
}

/* print_probes() - the bare round trips and empty kicks. */
static void print_probes(const struct world *w, FILE *f)
{
	fprintf(f, "round trips: qtest (RAM readw) %.1f us; mpqemu (config "
		"read of the vendor ID):\n  link %.1f us", w->m_rt_ns / 1000,
		w->m_mpq_ns[P_LINK] / 1000);
	if (w->on[P_LINK_POLL])
		fprintf(f, ", link-poll %.1f us", w->m_mpq_ns[P_LINK_POLL] /
			1000);
	fprintf(f, "\nempty kick (notify + used-index read, nothing "
		"available):\n ");
	for (int i = 0; i < w->nact; i++)
		fprintf(f, " %s %.1f us%s", paths[w->act[i]].name,
			w->m_empty_ns[w->act[i]] / 1000,
			i + 1 < w->nact ? "," : "\n");
}

/* print_table() - the human-readable report. */
static void print_table(const struct world *w, FILE *f)
{
	report_head(f, "qemu", w->o.smoke ? SMOKE_NOTE : NULL, &w->m);
	fprintf(f, "peer:    %s (%s)\n", w->qemu_version, w->qemu_path);
	print_method(w, f);
	print_probes(w, f);
	fprintf(f, "\n  %8s  %-9s %9s %17s %10s %8s %7s %8s %8s %8s %8s\n",
		"req/kick", "path", "req/s all", "(min..max)", "req/s kick",
		"kick us", "med us", "rt/batch", "cpu qemu", "cpu srv",
		"cpu bnch");
	for (int k = 0; k < w->o.nsizes; k++) {
		for (int i = 0; i < w->nact; i++)
			print_row(w, k, w->act[i], f);
		print_ratios(w, k, f);
	}
	print_goal(w, f);
	print_fit(w, f);
}

/* print_path_json() - one path's figures at one size. */
static void print_path_json(const struct world *w, int k, int p, FILE *f)
{
	const struct summary *s = &w->sum[k][p];
	char srv[32] = "null";

	if (paths[p].srv >= 0)
		snprintf(srv, sizeof(srv), "%.1f", s->med.cpu_srv);
	fprintf(f, "\"%s\": {\"requests_per_s\": %.1f, "
		"\"requests_per_s_min\": %.1f, \"requests_per_s_max\": %.1f, "
		"\"kick_requests_per_s\": %.1f, \"kick_ns_per_batch\": %.1f, "
		"\"kick_ns_per_batch_median\": %.1f, "
		"\"round_trips_per_batch\": %.2f, "
		"\"cpu_ns_per_request\": {\"qemu\": %.1f, \"server\": %s, "
		"\"bench\": %.1f}}", paths[p].name, s->med.rps_all,
		s->min.rps_all, s->max.rps_all, s->med.rps_kick,
		s->med.kick_ns, s->med.kick_med_ns, s->med.rt_batch,
		s->med.cpu_qemu, srv, s->med.cpu_self);
}

/* print_ratios_json() - size @k's ratios. */
static void print_ratios_json(const struct world *w, int k, FILE *f)
{
	bool first = true;

	fprintf(f, "\"ratios\": {");
	for (int i = 0; i < NRATIO; i++) {
		const double (*m)[3] = w->m_ratio[k][i];

		if (!ratio_on(w, i))
			continue;
		fprintf(f, "%s\"%s\": {\"requests_per_s\": %.3f, "
			"\"requests_per_s_min\": %.3f, "
			"\"requests_per_s_max\": %.3f, \"kick\": %.3f, "
			"\"kick_min\": %.3f, \"kick_max\": %.3f}",
			first ? "" : ", ", ratios[i].name, m[0][0], m[0][1],
			m[0][2], m[1][0], m[1][1], m[1][2]);
		first = false;
	}
	fprintf(f, "}");
}

/* print_probes_json() - round trips and empty kicks. */
static void print_probes_json(const struct world *w, FILE *f)
{
	fprintf(f, ",\n  \"qtest_round_trip_ns\": %.1f,\n"
		"  \"mpqemu_round_trip_ns\": {\"link\": %.1f", w->m_rt_ns,
		w->m_mpq_ns[P_LINK]);
	if (w->on[P_LINK_POLL])
		fprintf(f, ", \"link-poll\": %.1f", w->m_mpq_ns[P_LINK_POLL]);
	fprintf(f, "},\n  \"empty_kick_ns\": {");
	for (int i = 0; i < w->nact; i++)
		fprintf(f, "%s\"%s\": %.1f", i ? ", " : "",
			paths[w->act[i]].name, w->m_empty_ns[w->act[i]]);
	fprintf(f, "}");
}

/* print_fit_json() - the fixed + per-request split per path. */
static void print_fit_json(const struct world *w, FILE *f)
{
	if (!w->fit)
		return;
	fprintf(f, ",\n  \"kick_fit\": {\"from_size\": %u, \"to_size\": %u",
		w->o.sizes[w->k_lo], w->o.sizes[w->k_hi]);
	for (int i = 0; i < w->nact; i++) {
		int p = w->act[i];

		fprintf(f, ", \"%s\": {\"fixed_ns\": %.1f, "
			"\"ns_per_request\": %.1f}", paths[p].name,
			w->fixed_ns[p], w->per_req_ns[p]);
	}
	fprintf(f, "}");
}

/* print_json() - the machine-readable report. */
static void print_json(const struct world *w, FILE *f)
{
	json_header(f, "qemu", w->o.smoke, w->o.runs, &w->m);
	fprintf(f, ",\n  \"peer\": ");
	json_str(f, w->qemu_version);
	fprintf(f, ",\n  \"topology\": \"one QEMU, -accel tcg -S, qtest, RAM "
		"in a memfd mapped by the bench; QEMU virtio-iommu-pci "
		"00:03.0, ours x-pci-proxy-dev 00:04.0 -> viommu-server; "
		"link paths: viommu-server driven over mpqemu by the bench; "
		"endpoint 0x28 domain 1\",\n  \"paths\": {");
	for (int i = 0; i < w->nact; i++) {
		fprintf(f, "%s\"%s\": ", i ? ", " : "", paths[w->act[i]].name);
		json_str(f, paths[w->act[i]].desc);
	}
	fprintf(f, "},\n  \"poll_rq_us\": %u,\n  \"pin\": ", w->o.poll_us);
	if (w->o.pin >= 0)
		fprintf(f, "%d", w->o.pin);
	else
		fprintf(f, "null");
	fprintf(f, ",\n  \"requests_per_measurement\": %u,\n  "
		"\"goal_ratio\": %.1f,\n  \"goal_against\": \"%s\"",
		w->o.requests, GOAL_RATIO, ratios[R_HEADLINE].name);
	print_probes_json(w, f);
	fprintf(f, ",\n  \"results\": [");
	for (int k = 0; k < w->o.nsizes; k++) {
		fprintf(f, "%s\n    {\"requests_per_kick\": %u, ",
			k ? "," : "", w->o.sizes[k]);
		for (int i = 0; i < w->nact; i++) {
			print_path_json(w, k, w->act[i], f);
			fprintf(f, ", ");
		}
		print_ratios_json(w, k, f);
		fprintf(f, "}");
	}
	fprintf(f, "\n  ]");
	print_fit_json(w, f);
	fprintf(f, "\n}\n");
}

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
	start_all(&w);
	build_requests(&w);
	setup_devices(&w);
	run_all(&w);
	stop_all(&w);
	summarise(&w);
	REPORT_FINISH(&out, &w.m, print_table, print_json, &w);
	return 0;
}
