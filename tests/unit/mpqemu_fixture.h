/*
 * mpqemu_fixture.h - the fixture of the x-pci-proxy-dev tests
 * (test_mpqemu.c, test_mpqemu_bad.c): two small test PCI functions (a 4 KiB
 * memory BAR0 and a 16-byte I/O BAR1 backed by arrays) on two links of a
 * link server, served by link threads or, in poll mode, by the test with
 * viommu_link_server_run_once(); a fake QEMU that writes messages the way
 * QEMU 7.2's proxy does and reads RET replies; log and link-end capture.
 * Functions are static inline so each file of the program takes what it
 * uses; each file has its own capture state.
 */
#ifndef VIOMMU_TEST_MPQEMU_FIXTURE_H
#define VIOMMU_TEST_MPQEMU_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <viommu/link.h>
#include <viommu/mem.h>

#include "harness.h"
#include "peer_sock.h"
#include "link/mpqemu.h"
#include "link/link.h"
#include "transport/pci.h"

#define BAR0_GPA 0xfebf0000u
#define BAR0_SIZE 4096u
#define BAR1_PORT 0xc000u
#define NLINKS 2
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the test PCI function ------------------------------------------ */

struct tdev {
	struct pci_func f;
	uint8_t mem[BAR0_SIZE];
	uint8_t io[16];
	int resets;
};

static inline uint64_t mem_rd(void *o, uint64_t off, unsigned int size)
{
	struct tdev *d = o;
	uint64_t v = 0;

	memcpy(&v, d->mem + off, size);
	return v;
}

static inline void mem_wr(void *o, uint64_t off, uint64_t val,
			  unsigned int size)
{
	struct tdev *d = o;

	memcpy(d->mem + off, &val, size);
}

static inline uint64_t io_rd(void *o, uint64_t off, unsigned int size)
{
	struct tdev *d = o;
	uint64_t v = 0;

	memcpy(&v, d->io + off, size);
	return v;
}

static inline void io_wr(void *o, uint64_t off, uint64_t val, unsigned int size)
{
	struct tdev *d = o;

	memcpy(d->io + off, &val, size);
}

static const struct pci_bar_ops mem_ops = { mem_rd, mem_wr };
static const struct pci_bar_ops io_ops = { io_rd, io_wr };

static inline void tdev_reset(void *o)
{
	((struct tdev *)o)->resets++;
}

/* ---- log and end capture -------------------------------------------- */

#define LINK_CAP_TAG "mpqemu"
#include "link_cap.h"

/* warn_lines(), end_of(), end_calls() - what the capture saw so far. */
static inline int warn_lines(void)
{
	return cap_get(&cap.warn_lines);
}

static inline int end_of(unsigned int id)
{
	return id < VIOMMU_LINK_MAX ? cap_get(&cap.end[id]) : 0;
}

static inline int end_calls(unsigned int id)
{
	return id < VIOMMU_LINK_MAX ? cap_get(&cap.end_calls[id]) : 0;
}

/* count_fds() - open fds of this process. */
static inline int count_fds(void)
{
	return peer_count_fds();
}

/* ---- the fake QEMU -------------------------------------------------- */

/* send_raw() - one sendmsg() of @len bytes carrying @nfds fds. */
static inline int send_raw(int sock, const void *buf, size_t len,
			   const int *fds, unsigned int nfds)
{
	return peer_send(sock, buf, len, fds, nfds);
}

/*
 * send_msg() - header {cmd, size} plus @plen payload bytes (which may
 * differ from @size, to build broken messages) with fds.
 */
static inline int send_msg(int sock, int32_t cmd, uint64_t size,
			   const void *payload, size_t plen, const int *fds,
			   unsigned int nfds)
{
	uint8_t buf[MPQEMU_HDR_SIZE + 512] = { 0 };

	memcpy(buf, &cmd, sizeof(cmd));
	memcpy(buf + 8, &size, sizeof(size));
	if (plen)
		memcpy(buf + MPQEMU_HDR_SIZE, payload, plen);
	return send_raw(sock, buf, MPQEMU_HDR_SIZE + plen, fds, nfds);
}

/* recv_ret() - read one RET reply; -1 on EOF or a bad reply. */
static inline int recv_ret(int sock, uint64_t *val)
{
	uint8_t buf[MPQEMU_HDR_SIZE + 8];
	size_t got = 0;
	int32_t cmd;
	uint64_t size;

	while (got < sizeof(buf)) {
		ssize_t n = read(sock, buf + got, sizeof(buf) - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	memcpy(&cmd, buf, sizeof(cmd));
	memcpy(&size, buf + 8, sizeof(size));
	memcpy(val, buf + MPQEMU_HDR_SIZE, sizeof(*val));
	return cmd == MPQEMU_RET && size == 8 ? 0 : -1;
}

struct cfg_msg {
	uint32_t addr, val;
	int32_t len;
};

struct bar_msg {
	uint64_t addr, val;
	uint32_t size;
	uint8_t memory;
	uint8_t pad[3];
};

struct sysmem_msg {
	uint64_t gpa[8], size[8];
	int64_t off[8];
};

/* cfg() - a config access; returns the RET value, or ~0ull on failure. */
static inline uint64_t cfg(int sock, bool write, uint32_t addr, uint32_t val,
		    int len)
{
	struct cfg_msg m = { addr, val, len };
	uint64_t ret;

	if (send_msg(sock, write ? MPQEMU_PCI_CFGWRITE : MPQEMU_PCI_CFGREAD,
		     sizeof(m), &m, sizeof(m), NULL, 0) ||
	    recv_ret(sock, &ret))
		return ~0ull;
	return ret;
}

/* bar() - a BAR access; returns the RET value, or 0xdead on failure. */
static inline uint64_t bar(int sock, bool write, uint64_t addr, uint64_t val,
		    uint32_t size, bool memory)
{
	struct bar_msg m = { addr, val, size, memory, { 0 } };
	uint64_t ret;

	if (send_msg(sock, write ? MPQEMU_BAR_WRITE : MPQEMU_BAR_READ,
		     sizeof(m), &m, sizeof(m), NULL, 0) ||
	    recv_ret(sock, &ret))
		return 0xdead;
	return ret;
}

/* alive() - whether a link answers a config read of the vendor ID. */
static inline bool alive(int sock)
{
	return cfg(sock, false, PCI_VENDOR_ID, 0, 2) == 0x1234;
}

/* ---- fixture -------------------------------------------------------- */

struct fx {
	struct viommu_mem *mem;
	struct viommu_link_server *srv;
	struct tdev dev[NLINKS];
	int peer[NLINKS];
	unsigned int id[NLINKS];
	bool poll_mode;
	int fds_before;
};

/* --poll-us for the next fx_init() (0: sleep in poll() at once). */
static unsigned int fx_poll_us;

/* vfunc() - the public handle of a test function. */
static inline struct viommu_pci_func *vfunc(struct pci_func *f)
{
	return (struct viommu_pci_func *)f;
}

/* peer_timeout_ms of the links link_cfg() describes (0: 500 ms). */
static unsigned int fx_peer_timeout_ms;

/* link_cfg() - an mpqemu link config for @f on @fd (-1: @path). */
static inline struct viommu_link_config link_cfg(struct pci_func *f, int fd,
					  const char *path, const char *name,
					  bool poll_mode)
{
	return (struct viommu_link_config){ .size = sizeof(
						    struct viommu_link_config),
					    .proto = VIOMMU_LINK_MPQEMU,
					    .func = vfunc(f),
					    .fd = fd,
					    .path = path,
					    .name = name,
					    .poll_mode = poll_mode,
					    .peer_timeout_ms =
						    fx_peer_timeout_ms };
}

/* get_stats() - link @id's counters. */
static inline int get_stats(struct viommu_link_server *s, unsigned int id,
		     struct viommu_link_stats *st)
{
	memset(st, 0xa5, sizeof(*st));
	return viommu_link_server_stats(s, id, st, sizeof(*st));
}

/*
 * fx_init() - the fixture; with @poll_mode its links have no thread and
 * the test serves them with viommu_link_server_run_once().
 */
static inline int fx_init(struct fx *x, bool poll_mode)
{
	struct viommu_mem_config mc = { .log = test_log };
	struct viommu_link_server_config sc = { .size = sizeof(sc),
						.log = test_log,
						.link_ended = cap_ended,
						.poll_us = fx_poll_us };
	int i;

	memset(x, 0, sizeof(*x));
	cap_reset();
	x->poll_mode = poll_mode;
	x->fds_before = count_fds();
	if (viommu_mem_create(&mc, &x->mem))
		return -1;
	sc.mem = x->mem;
	if (viommu_link_server_create(&sc, &x->srv))
		return -1;
	for (i = 0; i < NLINKS; i++) {
		struct tdev *d = &x->dev[i];
		struct viommu_link_config lc;
		int sv[2];

		pci_func_init(&d->f, i ? "t1" : "t0", &test_log, 0x1234,
			      0xabcd, 0xff0000, 1, 0x1af4, 0x1100);
		if (pci_func_add_bar(&d->f, 0, BAR0_SIZE, false, &mem_ops, d) ||
		    pci_func_add_bar(&d->f, 1, 16, true, &io_ops, d))
			return -1;
		d->f.reset_fn = tdev_reset;
		d->f.reset_opaque = d;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			return -1;
		x->peer[i] = sv[0];
		lc = link_cfg(&d->f, sv[1], NULL, i ? "t1" : "t0", poll_mode);
		if (viommu_link_server_add(x->srv, &lc, &x->id[i]))
			return -1;
	}
	return 0;
}

/*
 * run_until_end() - serve poll-mode link @id until it ends, sleeping in
 * poll() on its poll fd in between.  Return: the end reason; a negative
 * errno from run_once; -ETIMEDOUT if nothing happened for 30 s.
 */
static inline int run_until_end(struct viommu_link_server *s, unsigned int id)
{
	struct pollfd p = { .fd = viommu_link_server_poll_fd(s, id),
			    .events = POLLIN };
	int r;

	if (p.fd < 0)
		return p.fd;
	while ((r = viommu_link_server_run_once(s, id)) == 0)
		if (poll(&p, 1, 30000) <= 0)
			return -ETIMEDOUT;
	return r;
}

/*
 * fx_alive() - whether link @i answers a config read of the vendor ID;
 * in poll mode the test serves the request itself.
 */
static inline bool fx_alive(struct fx *x, int i)
{
	struct cfg_msg m = { PCI_VENDOR_ID, 0, 2 };
	uint64_t ret;

	if (!x->poll_mode)
		return alive(x->peer[i]);
	if (send_msg(x->peer[i], MPQEMU_PCI_CFGREAD, sizeof(m), &m, sizeof(m),
		     NULL, 0))
		return false;
	if (viommu_link_server_run_once(x->srv, x->id[i]) != 0)
		return false;
	return recv_ret(x->peer[i], &ret) == 0 && ret == 0x1234;
}

/* fx_wait_end() - wait for link @i to end (serving it in poll mode). */
static inline int fx_wait_end(struct fx *x, int i)
{
	if (x->poll_mode) {
		int r = run_until_end(x->srv, x->id[i]);

		/* the callback and the return value must agree */
		if (r != end_of(x->id[i]))
			return -1;
		return r;
	}
	return wait_end(x->id[i]);
}

/* fx_fini() - tear down; returns whether the fd count is back. */
static inline bool fx_fini(struct fx *x)
{
	int i;

	for (i = 0; i < NLINKS; i++)
		if (x->peer[i] >= 0)
			close(x->peer[i]);
	viommu_link_server_destroy(x->srv);
	for (i = 0; i < NLINKS; i++)
		pci_func_destroy(&x->dev[i].f);
	viommu_mem_destroy(x->mem);
	return count_fds() == x->fds_before;
}

/* enable_bars() - program BAR0/BAR1 and turn decoding on. */
static inline void enable_bars(int sock)
{
	cfg(sock, true, PCI_BAR0, BAR0_GPA, 4);
	cfg(sock, true, PCI_BAR0 + 4, BAR1_PORT, 4);
	cfg(sock, true, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO, 2);
}

/* make_memfd() - a memfd of @size bytes whose first bytes are @tag. */
static inline int make_memfd(size_t size, const char *tag)
{
	int fd = memfd_create("test-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	/* sealed as QEMU seals guest RAM (LINKS.md L10) */
	if (fd < 0 || ftruncate(fd, (off_t)size) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) ||
	    pwrite(fd, tag, strlen(tag), 0) != (ssize_t)strlen(tag))
		return -1;
	return fd;
}

/* sysmem() - send SYNC_SYSMEM for @n regions of @fds, no reply. */
static inline int sysmem(int sock, const struct sysmem_msg *m,
			 const int *fds, unsigned int nfds)
{
	return send_msg(sock, MPQEMU_SYNC_SYSMEM, sizeof(*m), m, sizeof(*m),
			fds, nfds);
}

#endif /* VIOMMU_TEST_MPQEMU_FIXTURE_H */
