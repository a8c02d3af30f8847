/*
 * vfu_fixture.h - the fixture shared by the vfio-user link unit tests
 * (test_vfio_user.c: the messages of an open link; test_vfio_user_irq.c:
 * SET_IRQS, INTx and MSI-X, the unmask eventfd; test_vfio_user_link.c:
 * how links are added, polled, broken and stopped).
 *
 * The fixture: guest memory shared by the link server; a core context
 * whose endpoint 0x28 sits on the identity domain; a DMA engine on it
 * (link 0, "dma": INTx, a 1 MiB BAR0, DMA into guest RAM); a virtio-iommu
 * behind the virtio-pci transport (link 1, "vp": MSI-X with nqueues + 1
 * vectors, table and PBA in BAR1).  The fake client frames messages as
 * QEMU's vfio-user-pci does (vfio_user.h has the wire format), checks that
 * each reply echoes its request's id and command, and passes fds with
 * SCM_RIGHTS: memfds for DMA_MAP, eventfds for SET_IRQS.
 *
 * Log lines and link ends are captured process-wide (cap): each test
 * program runs its tests one after another, and fx_init() forgets what
 * the previous test captured.  Every fixture checks on teardown that the
 * process holds exactly the fds it held before: each fd the server
 * received and did not keep was closed, and the kept ones were closed when
 * the link ended.  Waits (a link's end, an eventfd, a poll fd, a stop) are
 * bounded by 30 s, which only turns a hang into a failure; no assertion
 * depends on timing.
 *
 * Everything is static inline so that each test program takes what it
 * uses.
 */
#ifndef VIOMMU_TESTS_VFU_FIXTURE_H
#define VIOMMU_TESTS_VFU_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <viommu/core.h>
#include <viommu/link.h>
#include <viommu/mem.h>
#include <viommu/virtio_iommu.h>

#include "devices/dma_engine.h"
#include "link/vfio_user.h"
#include "transport/pci.h"
#include "transport/virtio_pci.h"
#include "harness.h"
#include "peer_sock.h"

#define L_DMA 0 /* link 0: the DMA engine */
#define L_VP 1  /* link 1: virtio-pci around a virtio-iommu */
#define MAXL 4  /* links a test may add */
#define EP_ID 0x28
#define WAIT_MS 30000
#define BADREPLY (-100000) /* no reply, or not the reply asked for */
#define GPA_A 0x100000ull
#define GPA_B 0x200000ull
#define GPA_C 0x300000ull
#define WIN 0x10000ull
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- log and end capture -------------------------------------------- */

#define LINK_CAP_TAG "vfio-user"
#include "link_cap.h"

/* count_fds() - open fds of this process. */
static inline int count_fds(void)
{
	return peer_count_fds();
}

/* ---- little helpers ------------------------------------------------- */

/* put32(), put64(), get32(), get64() - host-order fields at @p. */
static inline void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* new_efd() - a non-blocking eventfd. */
static inline int new_efd(void)
{
	return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

/* read_counter() - non-blocking read of an eventfd; 0 when not signalled. */
static inline uint64_t read_counter(int efd)
{
	uint64_t v = 0;

	if (read(efd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

/* wait_readable() - whether @fd becomes readable within 30 s. */
static inline bool wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* deadline_in() - the CLOCK_REALTIME time @ms from now (timed waits). */
static inline struct timespec deadline_in(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/*
 * make_memfd_seals() - a memfd of @size bytes with @seals added after
 * sizing (0: none, an fd the server refuses unless it trusts its peer).
 */
static inline int make_memfd_seals(size_t size, int seals)
{
	int fd = memfd_create("test-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd >= 0 && (ftruncate(fd, (off_t)size) ||
			(seals && fcntl(fd, F_ADD_SEALS, seals)))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* make_memfd() - a memfd of @size bytes, sealed as QEMU seals guest RAM. */
static inline int make_memfd(size_t size)
{
	return make_memfd_seals(size, F_SEAL_SHRINK | F_SEAL_GROW);
}

/* ---- the fake vfio-user client -------------------------------------- */

/* send_raw() - one sendmsg() of @len bytes carrying @nfds fds. */
static inline int send_raw(int sock, const void *buf, size_t len,
			   const int *fds, unsigned int nfds)
{
	return peer_send(sock, buf, len, fds, nfds);
}

/* put_hdr() - a vfio-user header. */
static inline void put_hdr(uint8_t *b, uint16_t id, uint16_t cmd,
			   uint32_t size, uint32_t flags)
{
	memcpy(b, &id, 2);
	memcpy(b + 2, &cmd, 2);
	put32(b + 4, size);
	put32(b + 8, flags);
	put32(b + 12, 0);
}

/* recv_full() - read exactly @len bytes; -1 on EOF, error or 30 s idle. */
static inline int recv_full(int sock, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n;

		if (!wait_readable(sock, WAIT_MS))
			return -1;
		n = read(sock, (uint8_t *)buf + got, len - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* struct reply - one reply as received: header fields and payload. */
struct reply {
	uint16_t id, cmd;
	uint32_t size, flags, error;
	uint32_t dlen;
	uint8_t d[VFU_HDR_SIZE + VFU_MAX_PAYLOAD];
};

/* recv_reply() - one whole reply.  0; -1 (EOF, timeout, oversized). */
static inline int recv_reply(int sock, struct reply *r)
{
	uint8_t h[VFU_HDR_SIZE];

	if (recv_full(sock, h, sizeof(h)))
		return -1;
	memcpy(&r->id, h, 2);
	memcpy(&r->cmd, h + 2, 2);
	r->size = get32(h + 4);
	r->flags = get32(h + 8);
	r->error = get32(h + 12);
	if (r->size < VFU_HDR_SIZE || r->size - VFU_HDR_SIZE > sizeof(r->d))
		return -1;
	r->dlen = r->size - VFU_HDR_SIZE;
	return recv_full(sock, r->d, r->dlen);
}

/* struct fx - the fixture (see the top of the file). */
struct fx {
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_endpoint *ep;
	struct viommu_virtio_iommu *vi;
	struct dma_engine eng;
	struct virtio_pci vp;
	bool eng_live, vp_live;
	struct pci_func *f[2];
	struct viommu_link_server *srv;
	int peer[MAXL];
	unsigned int id[MAXL];
	uint16_t next_id[MAXL];
	int fds_before;
};

/*
 * send_cmd() - a command on link @l with @plen payload bytes, header flags
 * @flags and @nfds fds.  Return: the message ID; -1.
 */
static inline int send_cmd(struct fx *x, unsigned int l, uint16_t cmd,
			   uint32_t flags, const void *p, size_t plen,
			   const int *fds, unsigned int nfds)
{
	uint8_t buf[VFU_HDR_SIZE + VFU_MAX_PAYLOAD + 64];
	uint16_t id = x->next_id[l]++;

	if (plen > sizeof(buf) - VFU_HDR_SIZE)
		return -1;
	put_hdr(buf, id, cmd, (uint32_t)(VFU_HDR_SIZE + plen), flags);
	if (plen)
		memcpy(buf + VFU_HDR_SIZE, p, plen);
	return send_raw(x->peer[l], buf, VFU_HDR_SIZE + plen, fds, nfds) ?
	       -1 : id;
}

/*
 * call() - send a command and read its reply into @r (may be NULL).
 * Return: 0 (a reply); -errno (an error reply: header alone, ERROR set);
 * BADREPLY (none, or one that does not echo the request's id and command).
 */
static inline int call(struct fx *x, unsigned int l, uint16_t cmd,
		       const void *p, size_t plen, const int *fds,
		       unsigned int nfds, struct reply *r)
{
	static struct reply tmp;
	int id = send_cmd(x, l, cmd, 0, p, plen, fds, nfds);

	if (!r)
		r = &tmp;
	if (id < 0 || recv_reply(x->peer[l], r))
		return BADREPLY;
	if (r->id != (uint16_t)id || r->cmd != cmd) {
		printf("#   reply id %u cmd %u, expected %d %u\n", r->id,
		       r->cmd, id, cmd);
		return BADREPLY;
	}
	if (r->flags == VFU_T_REPLY)
		return 0;
	if (r->flags == (VFU_T_REPLY | VFU_F_ERROR) &&
	    r->size == VFU_HDR_SIZE && r->error)
		return -(int)r->error;
	return BADREPLY;
}

static const char client_caps[] =
	"{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":"
	"1048576,\"pgsizes\":4096,\"max_dma_maps\":65535}}";

/* negotiate() - VERSION 0.0 with QEMU-like capabilities; 0 or -errno. */
static inline int negotiate(struct fx *x, unsigned int l, struct reply *r)
{
	uint8_t p[4 + sizeof(client_caps)] = { 0 };

	memcpy(p + 4, client_caps, sizeof(client_caps));
	return call(x, l, VFU_VERSION, p, sizeof(p), NULL, 0, r);
}

/* alive() - link @l answers DEVICE_GET_INFO correctly. */
static inline bool alive(struct fx *x, unsigned int l)
{
	uint8_t p[16] = { 16 };
	struct reply r;

	return call(x, l, VFU_DEVICE_GET_INFO, p, sizeof(p), NULL, 0, &r) ==
	       0 && r.dlen == 16 && get32(r.d + 8) == VFU_NUM_REGIONS;
}

/*
 * fds_settled() - the process's fd count once link @l has finished with
 * its last message: the link closes the fds it did not keep after it has
 * replied, before it reads the next message, so one more round trip
 * makes the count exact.
 */
static inline int fds_settled(struct fx *x, unsigned int l)
{
	return alive(x, l) ? count_fds() : -1;
}

/* rread() - REGION_READ of @count bytes into @out; 0, -errno, BADREPLY. */
static inline int rread(struct fx *x, unsigned int l, uint32_t region,
			uint64_t off, uint32_t count, void *out)
{
	static struct reply r;
	uint8_t p[VFU_RW_SIZE];
	int err;

	put64(p, off);
	put32(p + 8, region);
	put32(p + 12, count);
	err = call(x, l, VFU_REGION_READ, p, sizeof(p), NULL, 0, &r);
	if (err)
		return err;
	if (r.dlen != VFU_RW_SIZE + count || memcmp(r.d, p, VFU_RW_SIZE))
		return BADREPLY;
	memcpy(out, r.d + VFU_RW_SIZE, count);
	return 0;
}

/* rwrite() - REGION_WRITE of @count bytes; 0, -errno, BADREPLY. */
static inline int rwrite(struct fx *x, unsigned int l, uint32_t region,
			 uint64_t off, const void *data, uint32_t count)
{
	uint8_t p[VFU_RW_SIZE + VFU_MAX_XFER];
	struct reply r;
	int err;

	put64(p, off);
	put32(p + 8, region);
	put32(p + 12, count);
	memcpy(p + VFU_RW_SIZE, data, count);
	err = call(x, l, VFU_REGION_WRITE, p, VFU_RW_SIZE + count, NULL, 0,
		   &r);
	if (err)
		return err;
	return r.dlen == VFU_RW_SIZE && !memcmp(r.d, p, VFU_RW_SIZE) ?
	       0 : BADREPLY;
}

/* rd() - a register read of @size bytes; all ones on any failure. */
static inline uint64_t rd(struct fx *x, unsigned int l, uint32_t region,
			  uint64_t off, uint32_t size)
{
	uint64_t v = 0;

	return rread(x, l, region, off, size, &v) ? ~0ull : v;
}

/* wr() - a register write of @size bytes. */
static inline int wr(struct fx *x, unsigned int l, uint32_t region,
		     uint64_t off, uint64_t v, uint32_t size)
{
	return rwrite(x, l, region, off, &v, size);
}

/* dma_map() - DMA_MAP with @nfds fds; 0, -errno, BADREPLY. */
static inline int dma_map(struct fx *x, unsigned int l, uint32_t flags,
			  uint64_t off, uint64_t addr, uint64_t size,
			  const int *fds, unsigned int nfds)
{
	uint8_t p[VFU_DMA_MAP_SIZE];
	struct reply r;
	int err;

	put32(p, VFU_DMA_MAP_SIZE);
	put32(p + 4, flags);
	put64(p + 8, off);
	put64(p + 16, addr);
	put64(p + 24, size);
	err = call(x, l, VFU_DMA_MAP, p, sizeof(p), fds, nfds, &r);
	return !err && r.dlen ? BADREPLY : err;
}

/* dma_map_fd() - map @size bytes of @fd (from 0) read-write at @addr. */
static inline int dma_map_fd(struct fx *x, unsigned int l, uint64_t addr,
			     uint64_t size, int fd)
{
	return dma_map(x, l, VFU_DMA_READ_OK | VFU_DMA_WRITE_OK, 0, addr,
		       size, &fd, 1);
}

/* dma_unmap() - DMA_UNMAP; the reply must echo the request. */
static inline int dma_unmap(struct fx *x, unsigned int l, uint32_t flags,
			    uint64_t addr, uint64_t size)
{
	uint8_t p[VFU_DMA_UNMAP_SIZE];
	struct reply r;
	int err;

	put32(p, VFU_DMA_UNMAP_SIZE);
	put32(p + 4, flags);
	put64(p + 8, addr);
	put64(p + 16, size);
	err = call(x, l, VFU_DMA_UNMAP, p, sizeof(p), NULL, 0, &r);
	if (err)
		return err;
	return r.dlen == sizeof(p) && !memcmp(r.d, p, sizeof(p)) ?
	       0 : BADREPLY;
}

/* set_irqs() - SET_IRQS with @dlen data bytes and @nfds fds. */
static inline int set_irqs(struct fx *x, unsigned int l, uint32_t flags,
			   uint32_t idx, uint32_t start, uint32_t count,
			   const void *data, size_t dlen, const int *fds,
			   unsigned int nfds)
{
	uint8_t p[VFU_SET_IRQS_SIZE + 64];
	struct reply r;
	int err;

	put32(p, (uint32_t)(VFU_SET_IRQS_SIZE + dlen));
	put32(p + 4, flags);
	put32(p + 8, idx);
	put32(p + 12, start);
	put32(p + 16, count);
	if (dlen)
		memcpy(p + VFU_SET_IRQS_SIZE, data, dlen);
	err = call(x, l, VFU_SET_IRQS, p, VFU_SET_IRQS_SIZE + dlen, fds, nfds,
		   &r);
	return !err && r.dlen ? BADREPLY : err;
}

/* irq_none() - SET_IRQS DATA_NONE with @action on [@start, +@count). */
static inline int irq_none(struct fx *x, unsigned int l, uint32_t action,
			   uint32_t idx, uint32_t start, uint32_t count)
{
	return set_irqs(x, l, VFU_IRQ_DATA_NONE | action, idx, start, count,
			NULL, 0, NULL, 0);
}

/* stats() - link @l's counters (all ones if they cannot be read). */
static inline struct viommu_link_stats stats(struct fx *x, unsigned int l)
{
	struct viommu_link_stats st;

	memset(&st, 0xff, sizeof(st));
	viommu_link_server_stats(x->srv, x->id[l], &st, sizeof(st));
	return st;
}

/* ---- fixture -------------------------------------------------------- */

enum {
	FX_NO_VERSION = 1, /* links not negotiated */
	FX_POLL_DMA = 2,   /* link 0 in poll mode (never negotiated) */
	FX_NO_LINKS = 4,   /* the server alone */
	FX_SPIN = 8,       /* links spin 100 ms for the next message */
};

/* fx_devices() - memory, context, endpoint, engine, virtio-pci. */
static inline int fx_devices(struct fx *x)
{
	struct viommu_mem_config mc = { .log = test_log };
	struct viommu_ctx_config cc = { .log = test_log };
	struct viommu_virtio_iommu_config dc = { .size = sizeof(dc),
						 .log = test_log };

	if (viommu_mem_create(&mc, &x->mem))
		return -1;
	cc.mem = x->mem;
	if (viommu_ctx_create(&cc, &x->ctx) ||
	    viommu_endpoint_create(x->ctx, EP_ID, &x->ep) ||
	    viommu_endpoint_attach(x->ep, VIOMMU_NO_PASID,
				   viommu_ctx_identity_domain(x->ctx)))
		return -1;
	if (dma_engine_init(&x->eng, x->ep, x->mem, "dma", &test_log, NULL))
		return -1;
	x->eng_live = true;
	dc.ctx = x->ctx;
	dc.mem = x->mem;
	if (viommu_virtio_iommu_create(&dc, &x->vi) ||
	    virtio_pci_init(&x->vp, viommu_virtio_iommu_dev(x->vi), "vp",
			    &test_log))
		return -1;
	x->vp_live = true;
	x->f[L_DMA] = dma_engine_func(&x->eng);
	x->f[L_VP] = virtio_pci_func(&x->vp);
	return 0;
}

/* peer_timeout_ms of the links fx_add() makes (0: the library's 500 ms). */
static unsigned int fx_peer_timeout_ms;

/* fx_add() - link slot @l for @func over a new socketpair. */
static inline int fx_add(struct fx *x, unsigned int l,
			 struct pci_func *func, const char *name,
			 bool poll_mode, struct viommu_mem *mem)
{
	struct viommu_link_config lc = {
		.size = sizeof(lc), .proto = VIOMMU_LINK_VFIO_USER,
		.func = (struct viommu_pci_func *)func, .name = name,
		.poll_mode = poll_mode, .mem = mem,
		.peer_timeout_ms = fx_peer_timeout_ms,
	};
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	x->peer[l] = sv[0];
	lc.fd = sv[1];
	return viommu_link_server_add(x->srv, &lc, &x->id[l]);
}

/*
 * fx_init() - the fixture with the FX_* @flags; links negotiated unless
 * asked not to.  Return: 0; -1 (a step failed; the test gives up).
 */
static inline int fx_init(struct fx *x, unsigned int flags)
{
	struct viommu_link_server_config sc = {
		.size = sizeof(sc), .log = test_log, .link_ended = cap_ended,
	};

	memset(x, 0, sizeof(*x));
	for (unsigned int i = 0; i < MAXL; i++)
		x->peer[i] = -1;
	cap_reset();
	x->fds_before = count_fds();
	if (fx_devices(x))
		return -1;
	sc.mem = x->mem;
	if (flags & FX_SPIN)
		sc.poll_us = 100000;
	if (viommu_link_server_create(&sc, &x->srv))
		return -1;
	if (flags & FX_NO_LINKS)
		return 0;
	if (fx_add(x, L_DMA, x->f[L_DMA], "dma", flags & FX_POLL_DMA, NULL) ||
	    fx_add(x, L_VP, x->f[L_VP], "vp", false, NULL))
		return -1;
	if (flags & FX_NO_VERSION)
		return 0;
	if (!(flags & FX_POLL_DMA) && negotiate(x, L_DMA, NULL))
		return -1;
	return negotiate(x, L_VP, NULL);
}

/* fx_fini() - tear down; returns whether the fd count is back. */
static inline bool fx_fini(struct fx *x)
{
	int now;

	for (unsigned int i = 0; i < MAXL; i++)
		if (x->peer[i] >= 0)
			close(x->peer[i]);
	viommu_link_server_destroy(x->srv);
	if (x->vp_live)
		virtio_pci_destroy(&x->vp);
	viommu_virtio_iommu_destroy(x->vi);
	if (x->eng_live)
		dma_engine_destroy(&x->eng);
	viommu_ctx_destroy(x->ctx);
	viommu_mem_destroy(x->mem);
	now = count_fds();
	if (now != x->fds_before)
		printf("#   fds: %d before, %d after\n", x->fds_before, now);
	return now == x->fds_before;
}

/* close_peer() - the client of link @l goes away. */
static inline void close_peer(struct fx *x, unsigned int l)
{
	close(x->peer[l]);
	x->peer[l] = -1;
}

/* intx_trigger() - install @efd as link 0's INTx trigger. */
static inline int intx_trigger(struct fx *x, int efd)
{
	return set_irqs(x, L_DMA, VFU_IRQ_DATA_EVENTFD |
			VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_INTX, 0, 1, NULL, 0,
			&efd, 1);
}

/* msix_enable() - set MSI-X Enable through a config-space REGION_WRITE. */
static inline int msix_enable(struct fx *x, bool on)
{
	struct pci_func *f = x->f[L_VP];

	return wr(x, L_VP, VFU_REGION_CONFIG, f->msix_cap + PCI_MSIX_FLAGS,
		  on ? PCI_MSIX_FLAGS_ENABLE : 0, 2);
}

/* ---- a stop on a thread of its own ---------------------------------- */

/*
 * struct stopper - viommu_link_server_stop() on a thread of its own, so
 * that a stop that hangs is a failure, not a hung test program.
 */
struct stopper {
	struct viommu_link_server *srv;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

/* stop_thread() - stop the server, then say so. */
static inline void *stop_thread(void *arg)
{
	struct stopper *s = arg;

	viommu_link_server_stop(s->srv);
	pthread_mutex_lock(&s->lock);
	s->done = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* stopper_start() - begin stopping @srv on a new thread.  0 or -errno. */
static inline int stopper_start(struct stopper *s,
				struct viommu_link_server *srv)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->srv = srv;
	return -pthread_create(&s->thread, NULL, stop_thread, s);
}

/*
 * stopper_wait() - wait up to @ms for the stop to return; once it has,
 * join its thread.  Return: whether it returned.  A stop still running
 * may be waited for again (after whatever unblocks it).
 */
static inline bool stopper_wait(struct stopper *s, int ms)
{
	struct timespec ts = deadline_in(ms);
	bool done;

	pthread_mutex_lock(&s->lock);
	while (!s->done)
		if (pthread_cond_timedwait(&s->cond, &s->lock, &ts))
			break;
	done = s->done;
	pthread_mutex_unlock(&s->lock);
	if (done) {
		pthread_join(s->thread, NULL);
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->cond);
	}
	return done;
}

#endif /* VIOMMU_TESTS_VFU_FIXTURE_H */
