/*
 * qemu_machine.c - `viommu-bench qemu`'s machine: the buses (the routes a
 * driver reaches a device through: qtest, qtest with RAM mapped here, the
 * mpqemu link), the guest RAM memfd shared with QEMU and the servers,
 * QEMU itself and the viommu-servers, started on socketpair ends and
 * stopped at the end of the run.
 */
#include "qemu.h"

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
	const char *who = qb_paths[s == S_LINK ? P_LINK : P_LINK_POLL].name;
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

/* qb_start_all() - QEMU with server A, then the link servers. */
void qb_start_all(struct world *w)
{
	for (int s = 0; s < NSRV; s++) {
		w->srv[s] = (struct bench_srv){ .name = qb_srv_names[s],
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
 * qb_stop_all() - reset the devices, stop QEMU (server A ends with its
 * links), close the link servers' links (they end too), reap everyone.
 */
void qb_stop_all(struct world *w)
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
