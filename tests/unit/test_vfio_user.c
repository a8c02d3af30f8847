/*
 * test_vfio_user.c - the vfio-user link (src/link/vfio_user.c, served by
 * the link server of src/link/link.c) against a fake vfio-user client on
 * the other end of socketpair()s, driving real PCI functions.
 *
 * The fixture: guest memory shared by the server; a core context whose
 * endpoint 0x28 sits on the identity domain; a DMA engine on it (link 0,
 * "dma": INTx, a 1 MiB BAR0, DMA into guest RAM); a virtio-iommu behind
 * the virtio-pci transport (link 1, "vp": MSI-X with nqueues + 1 vectors,
 * table and PBA in BAR1).  The fake client frames messages as QEMU's
 * vfio-user-pci does (vfio_user.h has the wire format), checks that each
 * reply echoes its request's id and command, and passes fds with
 * SCM_RIGHTS: memfds for DMA_MAP, eventfds for SET_IRQS.
 *
 * Refusal tests check the errno of the error reply and that nothing
 * changed (a register, guest RAM, the eventfds in force).  Tests that
 * break the framing check that only their link ended, with the expected
 * reason and one "link closed" log line, while the other link still
 * answers.  Every fixture checks on teardown that the process holds
 * exactly the fds it held before: each fd the server received and did not
 * keep was closed, and the kept ones were closed when the link ended.
 * Waits (a link's end, an eventfd, a poll fd) are bounded by 30 s, which
 * only turns a hang into a failure; no assertion depends on timing.
 */
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

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int warn_lines;   /* WARN lines of vfio-user links */
	int closed_lines; /* ... saying that a link was closed */
	char last[256];
	int end[VIOMMU_LINK_MAX];
	int end_calls[VIOMMU_LINK_MAX];
} cap = { .lock = PTHREAD_MUTEX_INITIALIZER,
	  .cond = PTHREAD_COND_INITIALIZER };

/* cap_log() - the log sink: count vfio-user WARN lines, keep the last. */
static void cap_log(void *opaque, enum viommu_log_level lvl, const char *s)
{
	(void)opaque;
	pthread_mutex_lock(&cap.lock);
	if (lvl <= VIOMMU_LOG_WARN && strstr(s, "vfio-user")) {
		cap.warn_lines++;
		if (strstr(s, "link closed"))
			cap.closed_lines++;
		snprintf(cap.last, sizeof(cap.last), "%s", s);
	}
	pthread_mutex_unlock(&cap.lock);
	if (getenv("TEST_VERBOSE"))
		printf("# log: %s\n", s);
}

static const struct viommu_log test_log = { cap_log, NULL, VIOMMU_LOG_INFO };

/* cap_ended() - link_ended: record why link @id ended, wake waiters. */
static void cap_ended(void *opaque, unsigned int id, int why)
{
	(void)opaque;
	pthread_mutex_lock(&cap.lock);
	if (id < VIOMMU_LINK_MAX) {
		cap.end[id] = why;
		cap.end_calls[id]++;
	}
	pthread_cond_broadcast(&cap.cond);
	pthread_mutex_unlock(&cap.lock);
}

/* cap_reset() - forget what earlier tests captured. */
static void cap_reset(void)
{
	pthread_mutex_lock(&cap.lock);
	cap.warn_lines = cap.closed_lines = 0;
	cap.last[0] = '\0';
	memset(cap.end, 0, sizeof(cap.end));
	memset(cap.end_calls, 0, sizeof(cap.end_calls));
	pthread_mutex_unlock(&cap.lock);
}

/* cap_get() - read one captured counter under the lock. */
static int cap_get(const int *field)
{
	int v;

	pthread_mutex_lock(&cap.lock);
	v = *field;
	pthread_mutex_unlock(&cap.lock);
	return v;
}

/* wait_end() - wait for link @id to end; 0 if it did not in 30 s. */
static int wait_end(unsigned int id)
{
	struct timespec ts;
	int why;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&cap.lock);
	while (!cap.end[id])
		if (pthread_cond_timedwait(&cap.cond, &cap.lock, &ts))
			break;
	why = cap.end[id];
	pthread_mutex_unlock(&cap.lock);
	return why;
}

/* count_fds() - open fds of this process. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

/* ---- little helpers ------------------------------------------------- */

/* put32(), put64(), get32(), get64() - host-order fields at @p. */
static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* new_efd() - a non-blocking eventfd. */
static int new_efd(void)
{
	return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

/* read_counter() - non-blocking read of an eventfd; 0 when not signalled. */
static uint64_t read_counter(int efd)
{
	uint64_t v = 0;

	if (read(efd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

/* wait_readable() - whether @fd becomes readable within 30 s. */
static bool wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* make_memfd() - a memfd of @size bytes. */
static int make_memfd(size_t size)
{
	int fd = memfd_create("test-ram", MFD_CLOEXEC);

	if (fd >= 0 && ftruncate(fd, (off_t)size)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- the fake vfio-user client -------------------------------------- */

/* send_raw() - one sendmsg() of @len bytes carrying @nfds fds. */
static int send_raw(int sock, const void *buf, size_t len, const int *fds,
		    unsigned int nfds)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(32 * sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* put_hdr() - a vfio-user header. */
static void put_hdr(uint8_t *b, uint16_t id, uint16_t cmd, uint32_t size,
		    uint32_t flags)
{
	memcpy(b, &id, 2);
	memcpy(b + 2, &cmd, 2);
	put32(b + 4, size);
	put32(b + 8, flags);
	put32(b + 12, 0);
}

/* recv_full() - read exactly @len bytes; -1 on EOF, error or 30 s idle. */
static int recv_full(int sock, void *buf, size_t len)
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
static int recv_reply(int sock, struct reply *r)
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
static int send_cmd(struct fx *x, unsigned int l, uint16_t cmd,
		    uint32_t flags, const void *p, size_t plen, const int *fds,
		    unsigned int nfds)
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
static int call(struct fx *x, unsigned int l, uint16_t cmd, const void *p,
		size_t plen, const int *fds, unsigned int nfds,
		struct reply *r)
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
static int negotiate(struct fx *x, unsigned int l, struct reply *r)
{
	uint8_t p[4 + sizeof(client_caps)] = { 0 };

	memcpy(p + 4, client_caps, sizeof(client_caps));
	return call(x, l, VFU_VERSION, p, sizeof(p), NULL, 0, r);
}

/* alive() - link @l answers DEVICE_GET_INFO correctly. */
static bool alive(struct fx *x, unsigned int l)
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
static int fds_settled(struct fx *x, unsigned int l)
{
	return alive(x, l) ? count_fds() : -1;
}

/* rread() - REGION_READ of @count bytes into @out; 0, -errno, BADREPLY. */
static int rread(struct fx *x, unsigned int l, uint32_t region, uint64_t off,
		 uint32_t count, void *out)
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
static int rwrite(struct fx *x, unsigned int l, uint32_t region,
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
static uint64_t rd(struct fx *x, unsigned int l, uint32_t region,
		   uint64_t off, uint32_t size)
{
	uint64_t v = 0;

	return rread(x, l, region, off, size, &v) ? ~0ull : v;
}

/* wr() - a register write of @size bytes. */
static int wr(struct fx *x, unsigned int l, uint32_t region, uint64_t off,
	      uint64_t v, uint32_t size)
{
	return rwrite(x, l, region, off, &v, size);
}

/* dma_map() - DMA_MAP with @nfds fds; 0, -errno, BADREPLY. */
static int dma_map(struct fx *x, unsigned int l, uint32_t flags,
		   uint64_t off, uint64_t addr, uint64_t size, const int *fds,
		   unsigned int nfds)
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
static int dma_map_fd(struct fx *x, unsigned int l, uint64_t addr,
		      uint64_t size, int fd)
{
	return dma_map(x, l, VFU_DMA_READ_OK | VFU_DMA_WRITE_OK, 0, addr,
		       size, &fd, 1);
}

/* dma_unmap() - DMA_UNMAP; the reply must echo the request. */
static int dma_unmap(struct fx *x, unsigned int l, uint32_t flags,
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
static int set_irqs(struct fx *x, unsigned int l, uint32_t flags,
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
static int irq_none(struct fx *x, unsigned int l, uint32_t action,
		    uint32_t idx, uint32_t start, uint32_t count)
{
	return set_irqs(x, l, VFU_IRQ_DATA_NONE | action, idx, start, count,
			NULL, 0, NULL, 0);
}

/* stats() - link @l's counters (all ones if they cannot be read). */
static struct viommu_link_stats stats(struct fx *x, unsigned int l)
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
};

/* fx_devices() - memory, context, endpoint, engine, virtio-pci. */
static int fx_devices(struct fx *x)
{
	struct viommu_mem_config mc = { .log = test_log };
	struct viommu_ctx_config cc = { .log = test_log };
	struct viommu_virtio_iommu_config dc = { .log = test_log };

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

/* fx_add() - link slot @l for @func over a new socketpair. */
static int fx_add(struct fx *x, unsigned int l, struct pci_func *func,
		  const char *name, bool poll_mode, struct viommu_mem *mem)
{
	struct viommu_link_config lc = {
		.size = sizeof(lc), .proto = VIOMMU_LINK_VFIO_USER,
		.func = (struct viommu_pci_func *)func, .name = name,
		.poll_mode = poll_mode, .mem = mem,
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
static int fx_init(struct fx *x, unsigned int flags)
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
static bool fx_fini(struct fx *x)
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
static void close_peer(struct fx *x, unsigned int l)
{
	close(x->peer[l]);
	x->peer[l] = -1;
}

/* ---- VERSION and information ---------------------------------------- */

TEST(version_negotiated_with_capabilities)
{
	/* DESIGN.md §5b: reply 0.0 and a NUL-terminated JSON string */
	struct reply r;
	char want[64];
	const char *json;
	struct fx x;

	REQUIRE(fx_init(&x, FX_NO_VERSION) == 0);
	REQUIRE(negotiate(&x, L_DMA, &r) == 0);
	REQUIRE(r.dlen > 5);
	CHECK_EQ(get32(r.d), 0); /* major 0, minor 0 */
	json = (const char *)r.d + 4;
	CHECK_EQ(r.d[r.dlen - 1], 0); /* NUL-terminated */
	CHECK_EQ(strlen(json), r.dlen - 5);
	snprintf(want, sizeof(want), "\"max_msg_fds\":%u", VFU_MAX_MSG_FDS);
	CHECK(strstr(json, want) != NULL);
	snprintf(want, sizeof(want), "\"max_data_xfer_size\":%u",
		 VFU_MAX_XFER);
	CHECK(strstr(json, want) != NULL);
	snprintf(want, sizeof(want), "\"pgsizes\":%u", VFU_PGSIZE);
	CHECK(strstr(json, want) != NULL);
	snprintf(want, sizeof(want), "\"max_dma_maps\":%u", VFU_MAX_DMA_MAPS);
	CHECK(strstr(json, want) != NULL);
	CHECK(strncmp(json, "{\"capabilities\":{", 17) == 0);
	/* A second VERSION is refused; the link goes on. */
	CHECK_EQ(negotiate(&x, L_DMA, NULL), -EINVAL);
	CHECK(alive(&x, L_DMA));
	/* VERSION without capabilities is enough. */
	CHECK_EQ(call(&x, L_VP, VFU_VERSION, "\0\0\0\0", 4, NULL, 0, &r), 0);
	CHECK_EQ(r.dlen, 4 + strlen(json) + 1);
	CHECK(alive(&x, L_VP));
	CHECK_U64(stats(&x, L_DMA).msgs[VFU_VERSION], 2);
	CHECK_U64(stats(&x, L_DMA).errors, 1);
	CHECK(fx_fini(&x));
	CHECK_EQ(cap.closed_lines, 0);
}

TEST(device_info_reset_and_pci)
{
	/* DESIGN.md §5b: QEMU wants PCI, >= 9 regions, >= 3 IRQ indexes */
	uint8_t p[20] = { 16 };
	struct reply r;
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	REQUIRE(call(&x, L_DMA, VFU_DEVICE_GET_INFO, p, 16, NULL, 0, &r) == 0);
	CHECK_EQ(r.dlen, 16);
	CHECK_EQ(get32(r.d), 16);
	CHECK_EQ(get32(r.d + 4), VFU_DEV_FLAG_RESET | VFU_DEV_FLAG_PCI);
	CHECK_EQ(get32(r.d + 8), 9);
	CHECK_EQ(get32(r.d + 12), 5);
	/* argsz below 16, payload not 16 bytes: EINVAL */
	p[0] = 8;
	CHECK_EQ(call(&x, L_DMA, VFU_DEVICE_GET_INFO, p, 16, NULL, 0, NULL),
		 -EINVAL);
	p[0] = 16;
	CHECK_EQ(call(&x, L_DMA, VFU_DEVICE_GET_INFO, p, 20, NULL, 0, NULL),
		 -EINVAL);
	CHECK(fx_fini(&x));
}

/* region_info() - GET_REGION_INFO @idx; *@size the size it reports. */
static int region_info(struct fx *x, unsigned int l, uint32_t idx,
		       uint64_t *size)
{
	uint8_t p[VFU_REGION_INFO_SIZE] = { 0 };
	struct reply r;
	int err;

	put32(p, VFU_REGION_INFO_SIZE);
	put32(p + 8, idx);
	err = call(x, l, VFU_GET_REGION_INFO, p, sizeof(p), NULL, 0, &r);
	if (err)
		return err;
	if (r.dlen != VFU_REGION_INFO_SIZE || get32(r.d) != r.dlen ||
	    get32(r.d + 8) != idx || get32(r.d + 12) != 0)
		return BADREPLY;
	*size = get64(r.d + 16);
	/* readable and writable exactly when the region exists */
	if (get32(r.d + 4) != (*size ? VFU_RGN_READ | VFU_RGN_WRITE : 0))
		return BADREPLY;
	return 0;
}

TEST(region_info_sizes_from_the_function)
{
	uint8_t p[VFU_REGION_INFO_SIZE] = { 16 };
	uint64_t size;
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	for (unsigned int l = 0; l < 2; l++) {
		for (uint32_t i = 0; i < VFU_NUM_REGIONS; i++) {
			uint64_t want = i < PCI_NUM_BARS ?
					x.f[l]->bars[i].size : 0;

			if (i == VFU_REGION_CONFIG)
				want = 256;
			size = ~0ull;
			CHECK_EQ(region_info(&x, l, i, &size), 0);
			CHECK_U64(size, want);
		}
		CHECK_EQ(region_info(&x, l, 9, &size), -EINVAL);
		CHECK_EQ(region_info(&x, l, UINT32_MAX, &size), -EINVAL);
	}
	/* The sizes are the devices' own. */
	CHECK_EQ(region_info(&x, L_DMA, 0, &size), 0);
	CHECK_U64(size, DMA_ENGINE_BAR_SIZE);
	CHECK_EQ(region_info(&x, L_VP, 0, &size), 0);
	CHECK_U64(size, VIRTIO_PCI_BAR0_SIZE);
	CHECK_EQ(region_info(&x, L_VP, 1, &size), 0);
	CHECK_U64(size, VIRTIO_PCI_BAR1_SIZE);
	CHECK_EQ(region_info(&x, L_VP, VFU_REGION_ROM, &size), 0);
	CHECK_U64(size, 0);
	/* argsz below 32 */
	CHECK_EQ(call(&x, L_DMA, VFU_GET_REGION_INFO, p, sizeof(p), NULL, 0,
		      NULL), -EINVAL);
	CHECK(fx_fini(&x));
}

/* irq_info() - GET_IRQ_INFO @idx: 0 and *@flags, *@count; or -errno. */
static int irq_info(struct fx *x, unsigned int l, uint32_t idx,
		    uint32_t *flags, uint32_t *count)
{
	uint8_t p[VFU_INFO_SIZE] = { 0 };
	struct reply r;
	int err;

	put32(p, VFU_INFO_SIZE);
	put32(p + 8, idx);
	err = call(x, l, VFU_GET_IRQ_INFO, p, sizeof(p), NULL, 0, &r);
	if (err)
		return err;
	if (r.dlen != VFU_INFO_SIZE || get32(r.d + 8) != idx)
		return BADREPLY;
	*flags = get32(r.d + 4);
	*count = get32(r.d + 12);
	return 0;
}

TEST(irq_info_counts_from_the_function)
{
	/* DESIGN.md §5b: INTx EVENTFD|MASKABLE|AUTOMASKED count 1 */
	uint32_t flags, count;
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	for (unsigned int l = 0; l < 2; l++) {
		CHECK_EQ(irq_info(&x, l, VFU_IRQ_INTX, &flags, &count), 0);
		CHECK_EQ(flags, VFU_IRQ_INFO_EVENTFD | VFU_IRQ_INFO_MASKABLE |
			 VFU_IRQ_INFO_AUTOMASKED);
		CHECK_EQ(count, 1);
		CHECK_EQ(irq_info(&x, l, VFU_IRQ_MSI, &flags, &count), 0);
		CHECK_EQ(count, 0);
		CHECK_EQ(irq_info(&x, l, VFU_IRQ_MSIX, &flags, &count), 0);
		CHECK(flags & VFU_IRQ_INFO_EVENTFD);
		CHECK_EQ(count, x.f[l]->msix_nvec);
		CHECK_EQ(irq_info(&x, l, VFU_IRQ_ERR, &flags, &count), 0);
		CHECK_EQ(count, 0);
		CHECK_EQ(irq_info(&x, l, VFU_IRQ_REQ, &flags, &count), 0);
		CHECK_EQ(count, 0);
		CHECK_EQ(irq_info(&x, l, 5, &flags, &count), -EINVAL);
	}
	/* The engine has no MSI-X; virtio-pci one vector per queue + 1. */
	CHECK_EQ(x.f[L_DMA]->msix_nvec, 0);
	CHECK_EQ(irq_info(&x, L_VP, VFU_IRQ_MSIX, &flags, &count), 0);
	CHECK_EQ(count, x.vp.nqueues + 1);
	CHECK(count >= 2);
	CHECK(fx_fini(&x));
}

/* ---- region access -------------------------------------------------- */

TEST(config_read_is_the_function_config_space)
{
	uint8_t cfg[256], b[4];
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	for (unsigned int l = 0; l < 2; l++) {
		REQUIRE(rread(&x, l, VFU_REGION_CONFIG, 0, 256, cfg) == 0);
		for (unsigned int off = 0; off < 256; off += 4)
			CHECK_U64(get32(cfg + off),
				  pci_cfg_read(x.f[l], off, 4));
		/* an unaligned 3-byte piece is the same bytes */
		REQUIRE(rread(&x, l, VFU_REGION_CONFIG, 1, 3, b) == 0);
		CHECK(memcmp(b, cfg + 1, 3) == 0);
	}
	CHECK_U64(rd(&x, L_DMA, VFU_REGION_CONFIG, PCI_VENDOR_ID, 2),
		  DMA_ENGINE_VENDOR);
	CHECK_U64(rd(&x, L_DMA, VFU_REGION_CONFIG, PCI_DEVICE_ID, 2),
		  DMA_ENGINE_DEVICE);
	CHECK_U64(rd(&x, L_VP, VFU_REGION_CONFIG, PCI_VENDOR_ID, 2),
		  VIRTIO_PCI_VENDOR);
	CHECK_U64(rd(&x, L_VP, VFU_REGION_CONFIG, PCI_DEVICE_ID, 2),
		  VIRTIO_PCI_DEVICE_BASE + 23); /* virtio-iommu */
	CHECK_U64(rd(&x, L_DMA, VFU_REGION_CONFIG, 0xff, 1), 0);
	CHECK(fx_fini(&x));
}

TEST(config_and_bar_writes_reach_the_function)
{
	struct fx x;
	uint32_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;

	REQUIRE(fx_init(&x, 0) == 0);
	CHECK_EQ(wr(&x, L_DMA, VFU_REGION_CONFIG, PCI_COMMAND, cmd, 2), 0);
	CHECK_U64(rd(&x, L_DMA, VFU_REGION_CONFIG, PCI_COMMAND, 2), cmd);
	CHECK_U64(pci_cfg_read(x.f[L_DMA], PCI_COMMAND, 2), cmd);
	/* BAR sizing through config space: 1 MiB, 32-bit memory */
	CHECK_EQ(wr(&x, L_DMA, VFU_REGION_CONFIG, PCI_BAR0, 0xffffffff, 4),
		 0);
	CHECK_U64(rd(&x, L_DMA, VFU_REGION_CONFIG, PCI_BAR0, 4),
		  (uint32_t)~(DMA_ENGINE_BAR_SIZE - 1));
	CHECK_EQ(wr(&x, L_DMA, VFU_REGION_CONFIG, PCI_BAR0, 0xfe000000, 4),
		 0);
	CHECK_U64(rd(&x, L_DMA, VFU_REGION_CONFIG, PCI_BAR0, 4), 0xfe000000);
	/* BAR0 registers, by offset: the 64-bit DMA source */
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_ID, 4), DMAE_ID_VALUE);
	CHECK_EQ(wr(&x, L_DMA, 0, DMAE_DMA_SRC, 0x1122334455667788ull, 8), 0);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_DMA_SRC, 8), 0x1122334455667788ull);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_DMA_SRC + 4, 4), 0x11223344);
	CHECK_U64(x.eng.r.src, 0x1122334455667788ull);
	CHECK_EQ(wr(&x, L_DMA, 0, DMAE_FACTORIAL, 5, 4), 0);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_FACTORIAL, 4), 120);
	CHECK_EQ(wr(&x, L_DMA, 0, DMA_ENGINE_BUF_ADDR + 8, 0xa5a5, 2), 0);
	CHECK_U64(rd(&x, L_DMA, 0, DMA_ENGINE_BUF_ADDR + 9, 1), 0xa5);
	/* the other link's function saw none of it */
	CHECK_U64(pci_cfg_read(x.f[L_VP], PCI_COMMAND, 2), 0);
	CHECK(fx_fini(&x));
	CHECK_EQ(cap.warn_lines, 0);
}

TEST(posted_write_gets_no_reply)
{
	/* DESIGN.md §5b: QEMU posts its writes and awaits no reply */
	uint8_t p[VFU_RW_SIZE + 8];
	uint64_t v = 0xcafef00dull;
	struct viommu_link_stats st;
	uint64_t replies;
	struct fx x;
	int id;

	REQUIRE(fx_init(&x, 0) == 0);
	replies = stats(&x, L_DMA).replies;
	put64(p, DMAE_DMA_DST);
	put32(p + 8, 0);
	put32(p + 12, 8);
	memcpy(p + VFU_RW_SIZE, &v, 8);
	id = send_cmd(&x, L_DMA, VFU_REGION_WRITE, VFU_F_NO_REPLY, p,
		      sizeof(p), NULL, 0);
	REQUIRE(id >= 0);
	/* a posted write that is refused (3 bytes): no error reply either */
	put32(p + 12, 3);
	REQUIRE(send_cmd(&x, L_DMA, VFU_REGION_WRITE, VFU_F_NO_REPLY, p,
			 VFU_RW_SIZE + 3, NULL, 0) == id + 1);
	/* The next reply is the read's own (call() checks the id). */
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_DMA_DST, 8), v);
	CHECK_EQ(x.next_id[L_DMA], id + 3);
	st = stats(&x, L_DMA);
	CHECK_U64(st.replies, replies + 1);
	CHECK_U64(st.errors, 1);
	CHECK_U64(st.msgs[VFU_REGION_WRITE], 2);
	CHECK(fx_fini(&x));
}

TEST(region_access_refusals_change_nothing)
{
	/* DESIGN.md §8: link messages with wrong sizes are refused */
	const uint64_t v = 0x0123456789abcdefull;
	uint8_t p[VFU_RW_SIZE + 8] = { 0 }, buf[16] = { 0 };
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	REQUIRE(wr(&x, L_DMA, 0, DMAE_DMA_SRC, v, 8) == 0);
	/* BAR accesses of 3 or 16 bytes */
	CHECK_EQ(rwrite(&x, L_DMA, 0, DMAE_DMA_SRC, buf, 3), -EINVAL);
	CHECK_EQ(rwrite(&x, L_DMA, 0, DMAE_DMA_SRC, buf, 16), -EINVAL);
	CHECK_EQ(rread(&x, L_DMA, 0, DMAE_DMA_SRC, 3, buf), -EINVAL);
	CHECK_EQ(rread(&x, L_DMA, 0, DMAE_DMA_SRC, 16, buf), -EINVAL);
	/* past the region's end, wrapping, count 0 */
	CHECK_EQ(rread(&x, L_DMA, 0, DMA_ENGINE_BAR_SIZE - 4, 8, buf),
		 -EINVAL);
	CHECK_EQ(rread(&x, L_DMA, 0, DMA_ENGINE_BAR_SIZE, 1, buf), -EINVAL);
	CHECK_EQ(rread(&x, L_DMA, 0, UINT64_MAX, 1, buf), -EINVAL);
	CHECK_EQ(rread(&x, L_DMA, VFU_REGION_CONFIG, 252, 8, buf), -EINVAL);
	CHECK_EQ(rread(&x, L_DMA, VFU_REGION_CONFIG, 256, 1, buf), -EINVAL);
	CHECK_EQ(rread(&x, L_DMA, VFU_REGION_CONFIG, 0, 0, buf), -EINVAL);
	CHECK_EQ(rread(&x, L_DMA, VFU_REGION_CONFIG, 0, VFU_MAX_XFER + 1,
		       buf), -EINVAL);
	/* regions that do not exist */
	CHECK_EQ(rread(&x, L_DMA, 2, 0, 4, buf), -EINVAL);
	CHECK_EQ(rread(&x, L_DMA, VFU_REGION_ROM, 0, 4, buf), -EINVAL);
	CHECK_EQ(rread(&x, L_DMA, VFU_REGION_VGA, 0, 4, buf), -EINVAL);
	CHECK_EQ(rread(&x, L_DMA, 9, 0, 4, buf), -EINVAL);
	/* count and message size disagree */
	put64(p, DMAE_DMA_SRC);
	put32(p + 12, 4); /* count 4, 8 data bytes */
	CHECK_EQ(call(&x, L_DMA, VFU_REGION_WRITE, p, sizeof(p), NULL, 0,
		      NULL), -EINVAL);
	CHECK_EQ(call(&x, L_DMA, VFU_REGION_WRITE, p, 8, NULL, 0, NULL),
		 -EINVAL);
	CHECK_EQ(call(&x, L_DMA, VFU_REGION_READ, p, VFU_RW_SIZE + 4, NULL,
		      0, NULL), -EINVAL);
	/* Nothing changed. */
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_DMA_SRC, 8), v);
	CHECK_U64(x.eng.r.src, v);
	CHECK_U64(stats(&x, L_DMA).errors, 18);
	CHECK_EQ(cap_get(&cap.closed_lines), 0);
	CHECK(fx_fini(&x));
}

/* ---- guest RAM ------------------------------------------------------ */

/* engine_dma() - program and start one register-mode DMA through link 0. */
static void engine_dma(struct fx *x, uint64_t src, uint64_t dst,
		       uint64_t count, uint64_t cmd)
{
	wr(x, L_DMA, 0, DMAE_DMA_SRC, src, 8);
	wr(x, L_DMA, 0, DMAE_DMA_DST, dst, 8);
	wr(x, L_DMA, 0, DMAE_DMA_COUNT, count, 8);
	wr(x, L_DMA, 0, DMAE_DMA_CMD, cmd, 8);
}

TEST(dma_map_memfd_is_guest_ram_for_engine_dma)
{
	uint8_t got[64], want[64];
	char buf[8];
	uint8_t *ram;
	struct fx x;
	int fd, fd2;

	REQUIRE(fx_init(&x, 0) == 0);
	fd = make_memfd(WIN);
	REQUIRE(fd >= 0);
	ram = mmap(NULL, WIN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE(ram != MAP_FAILED);
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_A, WIN, fd), 0);
	close(fd);
	CHECK_U64(viommu_mem_ram_size(x.mem), WIN);
	memcpy(ram + 0x10, "hello", 5);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_A + 0x10, buf, 5), 0);
	CHECK(memcmp(buf, "hello", 5) == 0);
	/* The engine DMAs into it: device buffer -> RAM. */
	REQUIRE(wr(&x, L_DMA, VFU_REGION_CONFIG, PCI_COMMAND,
		   PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2) == 0);
	for (unsigned int i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(i * 7 + 3);
	for (unsigned int i = 0; i < sizeof(want); i += 8)
		CHECK_EQ(rwrite(&x, L_DMA, 0, DMA_ENGINE_BUF_ADDR + i,
				want + i, 8), 0);
	engine_dma(&x, DMA_ENGINE_BUF_ADDR, GPA_A + 0x1000, sizeof(want),
		   DMAE_CMD_START | DMAE_CMD_TO_RAM);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_EXT_STATUS, 4), 0);
	CHECK(memcmp(ram + 0x1000, want, sizeof(want)) == 0);
	CHECK_EQ(ram[0x1000 + sizeof(want)], 0);
	/* ... and out of it: RAM -> device buffer. */
	memset(ram + 0x2000, 0x5a, sizeof(want));
	engine_dma(&x, GPA_A + 0x2000, DMA_ENGINE_BUF_ADDR + 0x100,
		   sizeof(want), DMAE_CMD_START);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_EXT_STATUS, 4), 0);
	CHECK_EQ(rread(&x, L_DMA, 0, DMA_ENGINE_BUF_ADDR + 0x100, 8, got), 0);
	CHECK_U64(get64(got), 0x5a5a5a5a5a5a5a5aull);
	/* A window from an fd offset, mapped read-only. */
	fd2 = make_memfd(0x2000);
	REQUIRE(fd2 >= 0);
	REQUIRE(pwrite(fd2, "second", 6, 0x1000) == 6);
	CHECK_EQ(dma_map(&x, L_DMA, VFU_DMA_READ_OK, 0x1000, GPA_C, 0x1000,
			 &fd2, 1), 0);
	close(fd2);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_C, buf, 6), 0);
	CHECK(memcmp(buf, "second", 6) == 0);
	CHECK(viommu_mem_write(x.mem, GPA_C, "x", 1) != 0);
	CHECK_U64(viommu_mem_ram_size(x.mem), WIN + 0x1000);
	CHECK_U64(stats(&x, L_DMA).ram_applied, 2);
	CHECK_U64(stats(&x, L_DMA).fds_in, 2);
	munmap(ram, WIN);
	CHECK(fx_fini(&x));
	CHECK_EQ(cap.warn_lines, 0);
}

TEST(dma_map_refusals_change_nothing)
{
	/* DESIGN.md §8: link messages with wrong sizes or fds */
	const uint32_t rw = VFU_DMA_READ_OK | VFU_DMA_WRITE_OK;
	uint8_t p[VFU_DMA_MAP_SIZE] = { 0 };
	int fd, two[2], pp[2], many[20], base;
	struct fx x;
	char c;

	REQUIRE(fx_init(&x, 0) == 0);
	fd = make_memfd(WIN);
	REQUIRE(fd >= 0);
	REQUIRE(dma_map_fd(&x, L_DMA, GPA_A, WIN, fd) == 0);
	base = fds_settled(&x, L_DMA);
	/* overlapping a mapped window, partly or exactly */
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_A + 0x8000, WIN, fd), -EEXIST);
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_A, WIN, fd), -EEXIST);
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_A - 0x1000, 0x2000, fd), -EEXIST);
	/* unaligned, empty or wrapping */
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_B + 0x800, 0x1000, fd), -EINVAL);
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_B, 0x800, fd), -EINVAL);
	CHECK_EQ(dma_map(&x, L_DMA, rw, 0x800, GPA_B, 0x1000, &fd, 1),
		 -EINVAL);
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_B, 0, fd), -EINVAL);
	CHECK_EQ(dma_map_fd(&x, L_DMA, 0xfffffffffffff000ull, 0x2000, fd),
		 -EINVAL);
	/* past the fd's end */
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_B, 2 * WIN, fd), -EINVAL);
	CHECK_EQ(dma_map(&x, L_DMA, rw, WIN - 0x1000, GPA_B, 0x2000, &fd, 1),
		 -EINVAL);
	/* two fds, too many fds, not a file */
	two[0] = fd;
	two[1] = fd;
	CHECK_EQ(dma_map(&x, L_DMA, rw, 0, GPA_B, 0x1000, two, 2), -EINVAL);
	for (unsigned int i = 0; i < NELEM(many); i++)
		many[i] = fd;
	CHECK_EQ(dma_map(&x, L_DMA, rw, 0, GPA_B, 0x1000, many, 20), -EINVAL);
	REQUIRE(pipe(pp) == 0);
	CHECK_EQ(dma_map(&x, L_DMA, rw, 0, GPA_B, 0x1000, pp, 1), -EINVAL);
	close(pp[0]);
	close(pp[1]);
	/* unknown flags, argsz or payload not 32 */
	CHECK_EQ(dma_map(&x, L_DMA, 0x4, 0, GPA_B, 0x1000, &fd, 1), -EINVAL);
	put32(p, 24);
	put64(p + 16, GPA_B);
	put64(p + 24, 0x1000);
	CHECK_EQ(call(&x, L_DMA, VFU_DMA_MAP, p, sizeof(p), &fd, 1, NULL),
		 -EINVAL);
	put32(p, 32);
	CHECK_EQ(call(&x, L_DMA, VFU_DMA_MAP, p, 24, &fd, 1, NULL), -EINVAL);
	/* Nothing changed; every fd sent with a refusal is closed. */
	CHECK_U64(viommu_mem_ram_size(x.mem), WIN);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_B, &c, 1), -EFAULT);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_A, &c, 1), 0);
	CHECK_U64(stats(&x, L_DMA).ram_applied, 1);
	CHECK_EQ(fds_settled(&x, L_DMA), base);
	close(fd);
	CHECK(fx_fini(&x));
}

/*
 * A window without an fd (QEMU maps its ROMs that way) is accepted and
 * tracked like the others, but device DMA does not reach it: the server
 * never sends DMA_READ/DMA_WRITE.
 */
TEST(dma_map_without_fd_tracked_not_reachable)
{
	const uint32_t rw = VFU_DMA_READ_OK | VFU_DMA_WRITE_OK;
	struct fx x;
	int fd;
	char c;

	REQUIRE(fx_init(&x, 0) == 0);
	fd = make_memfd(WIN);
	REQUIRE(fd >= 0);
	REQUIRE(dma_map_fd(&x, L_DMA, GPA_A, WIN, fd) == 0);
	CHECK_EQ(dma_map(&x, L_DMA, rw, 0, GPA_B, WIN, NULL, 0), 0);
	CHECK_U64(viommu_mem_ram_size(x.mem), WIN);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_B, &c, 1), -EFAULT);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_A, &c, 1), 0);
	/* the engine's DMA there fails; RAM next to it is untouched */
	REQUIRE(wr(&x, L_DMA, VFU_REGION_CONFIG, PCI_COMMAND,
		   PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2) == 0);
	engine_dma(&x, DMA_ENGINE_BUF_ADDR, GPA_B, 64,
		   DMAE_CMD_START | DMAE_CMD_TO_RAM);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_EXT_STATUS, 4), DMAE_EXT_ERR_DMA);
	/* it is a window all the same: overlaps refused, exact unmap */
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_B + 0x1000, 0x1000, fd), -EEXIST);
	CHECK_EQ(dma_map(&x, L_DMA, rw, 0, GPA_B, 0x1000, NULL, 0), -EEXIST);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0, GPA_B, 0x1000), -ENOENT);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0, GPA_B, WIN), 0);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0, GPA_B, WIN), -ENOENT);
	/* the fd-backed window stayed through all of it */
	CHECK_EQ(viommu_mem_read(x.mem, GPA_A, &c, 1), 0);
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_B, WIN, fd), 0);
	CHECK_U64(viommu_mem_ram_size(x.mem), 2 * WIN);
	close(fd);
	CHECK(fx_fini(&x));
}

TEST(dma_unmap_exact_or_all)
{
	int a, b, base;
	struct fx x;
	char c;

	REQUIRE(fx_init(&x, 0) == 0);
	base = fds_settled(&x, L_DMA);
	a = make_memfd(WIN);
	b = make_memfd(WIN);
	REQUIRE(a >= 0 && b >= 0);
	REQUIRE(pwrite(b, "B", 1, 0) == 1);
	REQUIRE(dma_map_fd(&x, L_DMA, GPA_A, WIN, a) == 0);
	REQUIRE(dma_map_fd(&x, L_DMA, GPA_B, WIN, b) == 0);
	close(a);
	close(b);
	/* The server keeps one fd per window, the memory layer one. */
	CHECK_EQ(fds_settled(&x, L_DMA), base + 4);
	/* Only an exact window goes. */
	CHECK_EQ(dma_unmap(&x, L_DMA, 0, GPA_A, 0x8000), -ENOENT);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0, GPA_A + 0x1000, WIN), -ENOENT);
	CHECK_U64(viommu_mem_ram_size(x.mem), 2 * WIN);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0, GPA_A, WIN), 0);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_A, &c, 1), -EFAULT);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_B, &c, 1), 0);
	CHECK_EQ(c, 'B');
	CHECK_EQ(fds_settled(&x, L_DMA), base + 2);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0, GPA_A, WIN), -ENOENT);
	/* unmap-all takes no address; other flags are refused */
	CHECK_EQ(dma_unmap(&x, L_DMA, 0x2, GPA_B, WIN), -EINVAL);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0x1, GPA_B, WIN), -EINVAL);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0x4, GPA_B, WIN), -EINVAL);
	CHECK_U64(viommu_mem_ram_size(x.mem), WIN);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0x2, 0, 0), 0);
	CHECK_U64(viommu_mem_ram_size(x.mem), 0);
	CHECK_EQ(fds_settled(&x, L_DMA), base);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0x2, 0, 0), 0); /* nothing left: fine */
	CHECK(fx_fini(&x));
}

TEST(guest_ram_owned_by_the_first_link)
{
	struct viommu_mem *own = NULL;
	struct pci_func pf;
	int a, b, c, d;
	char ch;
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	a = make_memfd(WIN);
	b = make_memfd(WIN);
	c = make_memfd(WIN);
	d = make_memfd(WIN);
	REQUIRE(a >= 0 && b >= 0 && c >= 0 && d >= 0);
	REQUIRE(pwrite(a, "a", 1, 0) == 1 && pwrite(b, "b", 1, 0) == 1 &&
		pwrite(c, "c", 1, 0) == 1);
	REQUIRE(dma_map_fd(&x, L_DMA, GPA_A, WIN, a) == 0);
	/* Link 1 sends its map too: validated, answered, dropped. */
	CHECK_EQ(dma_map_fd(&x, L_VP, GPA_B, WIN, b), 0);
	CHECK_U64(stats(&x, L_VP).ram_ignored, 1);
	CHECK_U64(stats(&x, L_VP).ram_applied, 0);
	CHECK_U64(stats(&x, L_DMA).ram_applied, 1);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_B, &ch, 1), -EFAULT);
	CHECK_U64(viommu_mem_ram_size(x.mem), WIN);
	/* A link with a memory of its own always fills it. */
	REQUIRE(viommu_mem_create(NULL, &own) == 0);
	pci_func_init(&pf, "own", &test_log, 0x1234, 0x1, 0xff0000, 1, 0, 0);
	REQUIRE(fx_add(&x, 2, &pf, "own", false, own) == 0);
	REQUIRE(negotiate(&x, 2, NULL) == 0);
	CHECK_EQ(dma_map_fd(&x, 2, GPA_A, WIN, c), 0);
	CHECK_EQ(viommu_mem_read(own, GPA_A, &ch, 1), 0);
	CHECK_EQ(ch, 'c');
	CHECK_EQ(viommu_mem_read(x.mem, GPA_A, &ch, 1), 0);
	CHECK_EQ(ch, 'a');
	CHECK_U64(stats(&x, 2).ram_applied, 1);
	close_peer(&x, 2);
	CHECK_EQ(wait_end(x.id[2]), VIOMMU_LINK_END_HANGUP);
	CHECK_U64(viommu_mem_ram_size(own), 0); /* its own RAM goes with it */
	/* The owner leaves; link 1's next map takes over with its table. */
	close_peer(&x, L_DMA);
	CHECK_EQ(wait_end(x.id[L_DMA]), VIOMMU_LINK_END_HANGUP);
	CHECK_EQ(dma_map_fd(&x, L_VP, GPA_C, WIN, d), 0);
	CHECK_U64(stats(&x, L_VP).ram_applied, 1);
	CHECK_U64(viommu_mem_ram_size(x.mem), 2 * WIN);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_B, &ch, 1), 0);
	CHECK_EQ(ch, 'b');
	CHECK_EQ(viommu_mem_read(x.mem, GPA_A, &ch, 1), -EFAULT);
	close(a);
	close(b);
	close(c);
	close(d);
	CHECK(fx_fini(&x));
	pci_func_destroy(&pf);
	viommu_mem_destroy(own);
}

/* ---- interrupts ----------------------------------------------------- */

/* intx_trigger() - install @efd as link 0's INTx trigger. */
static int intx_trigger(struct fx *x, int efd)
{
	return set_irqs(x, L_DMA, VFU_IRQ_DATA_EVENTFD |
			VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_INTX, 0, 1, NULL, 0,
			&efd, 1);
}

TEST(intx_automasked_until_unmask)
{
	/* DESIGN.md §5b: UNMASK for INTx after the guest's EOI */
	struct pci_func *f;
	uint8_t sel;
	struct fx x;
	int efd;

	REQUIRE(fx_init(&x, 0) == 0);
	f = x.f[L_DMA];
	efd = new_efd();
	REQUIRE(efd >= 0);
	REQUIRE(intx_trigger(&x, efd) == 0);
	CHECK_U64(read_counter(efd), 0); /* the line is low */
	pci_set_intx(f, true);
	CHECK_U64(read_counter(efd), 1);
	/* automasked: a new edge is not delivered */
	pci_set_intx(f, false);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(efd), 0);
	/* UNMASK with the line still high re-triggers (and masks again) */
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_UNMASK, VFU_IRQ_INTX, 0,
			  1), 0);
	CHECK_U64(read_counter(efd), 1);
	/* UNMASK after the line went low: nothing, but unmasked */
	pci_set_intx(f, false);
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_UNMASK, VFU_IRQ_INTX, 0,
			  1), 0);
	CHECK_U64(read_counter(efd), 0);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(efd), 1);
	/* BOOL data: only selected entries act */
	pci_set_intx(f, false);
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_UNMASK, VFU_IRQ_INTX, 0,
			  1), 0);
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_MASK, VFU_IRQ_INTX, 0, 1),
		 0);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(efd), 0); /* masked by the client */
	sel = 0;
	CHECK_EQ(set_irqs(&x, L_DMA, VFU_IRQ_DATA_BOOL | VFU_IRQ_ACTION_UNMASK,
			  VFU_IRQ_INTX, 0, 1, &sel, 1, NULL, 0), 0);
	CHECK_U64(read_counter(efd), 0);
	sel = 1;
	CHECK_EQ(set_irqs(&x, L_DMA, VFU_IRQ_DATA_BOOL | VFU_IRQ_ACTION_UNMASK,
			  VFU_IRQ_INTX, 0, 1, &sel, 1, NULL, 0), 0);
	CHECK_U64(read_counter(efd), 1);
	/* The engine raising its own interrupt drives the same line. */
	pci_set_intx(f, false);
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_UNMASK, VFU_IRQ_INTX, 0,
			  1), 0);
	CHECK_EQ(wr(&x, L_DMA, 0, DMAE_IRQ_RAISE, 1, 4), 0);
	CHECK_U64(read_counter(efd), 1);
	CHECK_U64(stats(&x, L_DMA).unmasks, 5);
	CHECK_U64(stats(&x, L_DMA).irq_signals, 5);
	close(efd);
	CHECK(fx_fini(&x));
}

/* wait_unmasks() - wait until link @l has served @n unmasks. */
static bool wait_unmasks(struct fx *x, unsigned int l, uint64_t n)
{
	for (int i = 0; i < WAIT_MS; i++) {
		if (stats(x, l).unmasks >= n)
			return true;
		usleep(1000);
	}
	return false;
}

TEST(intx_unmask_eventfd_retriggers)
{
	struct pci_func *f;
	const uint64_t one = 1;
	struct fx x;
	int t, u;

	REQUIRE(fx_init(&x, 0) == 0);
	f = x.f[L_DMA];
	t = new_efd();
	u = new_efd();
	REQUIRE(t >= 0 && u >= 0);
	REQUIRE(set_irqs(&x, L_DMA, VFU_IRQ_DATA_EVENTFD |
			 VFU_IRQ_ACTION_UNMASK, VFU_IRQ_INTX, 0, 1, NULL, 0,
			 &u, 1) == 0);
	REQUIRE(intx_trigger(&x, t) == 0);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(t), 1);
	/* The guest's EOI arrives through the unmask eventfd. */
	REQUIRE(write(u, &one, 8) == 8);
	CHECK(wait_readable(t, WAIT_MS));
	CHECK_U64(read_counter(t), 1);
	CHECK_U64(stats(&x, L_DMA).unmasks, 1);
	/* Line low at the EOI: nothing more. */
	pci_set_intx(f, false);
	REQUIRE(write(u, &one, 8) == 8);
	CHECK(wait_unmasks(&x, L_DMA, 2));
	CHECK(alive(&x, L_DMA)); /* the unmask has finished */
	CHECK_U64(read_counter(t), 0);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(t), 1);
	/* Disabling INTx drops both eventfds. */
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_INTX, 0,
			  0), 0);
	REQUIRE(write(u, &one, 8) == 8);
	CHECK(alive(&x, L_DMA));
	pci_set_intx(f, false);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(t), 0);
	CHECK_U64(stats(&x, L_DMA).unmasks, 2);
	close(t);
	close(u);
	CHECK(fx_fini(&x));
}

/*
 * Regression: disabling INTx (DATA_NONE|TRIGGER, count 0) used to leave
 * the automask set, so after QEMU re-enabled INTx (a guest reset, MSI-X
 * turned off again) the line never fired: without KVM's resampler QEMU
 * sends UNMASK only after an interrupt it delivered.  As in VFIO, INTx
 * enabled afresh starts unmasked.
 */
TEST(intx_enabled_afresh_starts_unmasked)
{
	struct pci_func *f;
	struct fx x;
	int t, t2;

	REQUIRE(fx_init(&x, 0) == 0);
	f = x.f[L_DMA];
	t = new_efd();
	t2 = new_efd();
	REQUIRE(t >= 0 && t2 >= 0);
	REQUIRE(intx_trigger(&x, t) == 0);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(t), 1); /* delivered, now automasked */
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_INTX, 0,
			  0), 0);
	pci_set_intx(f, false);
	/* enabled again: a new interrupt is delivered */
	REQUIRE(intx_trigger(&x, t2) == 0);
	CHECK_U64(read_counter(t2), 0);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(t2), 1);
	CHECK_U64(read_counter(t), 0);
	/* enabled with the line already high: delivered at once */
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_INTX, 0,
			  0), 0);
	REQUIRE(intx_trigger(&x, t) == 0);
	CHECK_U64(read_counter(t), 1);
	/* replacing the eventfd alone keeps the mask (VFIO does too) */
	REQUIRE(intx_trigger(&x, t2) == 0);
	CHECK_U64(read_counter(t2), 0);
	close(t);
	close(t2);
	CHECK(fx_fini(&x));
}

/* msix_enable() - set MSI-X Enable through a config-space REGION_WRITE. */
static int msix_enable(struct fx *x, bool on)
{
	struct pci_func *f = x->f[L_VP];

	return wr(x, L_VP, VFU_REGION_CONFIG, f->msix_cap + PCI_MSIX_FLAGS,
		  on ? PCI_MSIX_FLAGS_ENABLE : 0, 2);
}

/* only_vector() - eventfd @v (of @n) fired once and no other did. */
static bool only_vector(const int *efd, unsigned int n, int v)
{
	bool ok = true;

	for (unsigned int i = 0; i < n; i++)
		ok &= read_counter(efd[i]) == ((int)i == v ? 1u : 0u);
	return ok;
}

/* msix_setup() - MSI-X on, a trigger eventfd for each of *@n vectors. */
static int msix_setup(struct fx *x, int *efd, unsigned int *n)
{
	*n = x->f[L_VP]->msix_nvec;
	if (*n < 2 || *n > 8 || msix_enable(x, true))
		return -1;
	for (unsigned int i = 0; i < *n; i++)
		if ((efd[i] = new_efd()) < 0)
			return -1;
	return set_irqs(x, L_VP, VFU_IRQ_DATA_EVENTFD |
			VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_MSIX, 0, *n, NULL, 0,
			efd, *n);
}

TEST(msix_vectors_to_their_eventfds)
{
	uint8_t sel[8] = { 1, 0, 1, 0, 1, 0, 1, 0 }, all[8];
	struct pci_func *f;
	unsigned int n;
	int efd[8];
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	f = x.f[L_VP];
	REQUIRE(msix_setup(&x, efd, &n) == 0);
	CHECK(pci_msix_enabled(f));
	CHECK_U64(rd(&x, L_VP, VFU_REGION_CONFIG, f->msix_cap + PCI_MSIX_FLAGS,
		     2) & PCI_MSIX_FLAGS_ENABLE, PCI_MSIX_FLAGS_ENABLE);
	for (unsigned int v = 0; v < n; v++) {
		CHECK_EQ(pci_msix_notify(f, v), 0);
		CHECK(only_vector(efd, n, (int)v));
	}
	/* MASK one vector: held pending until UNMASK. */
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_MASK, VFU_IRQ_MSIX, 1, 1),
		 0);
	CHECK_EQ(pci_msix_notify(f, 1), 0);
	CHECK(only_vector(efd, n, -1));
	CHECK_EQ(pci_msix_notify(f, 0), 0);
	CHECK(only_vector(efd, n, 0));
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_UNMASK, VFU_IRQ_MSIX, 1, 1),
		 0);
	CHECK(only_vector(efd, n, 1));
	/* BOOL: mask the even vectors only */
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_BOOL | VFU_IRQ_ACTION_MASK,
			  VFU_IRQ_MSIX, 0, n, sel, n, NULL, 0), 0);
	for (unsigned int v = 0; v < n; v++) {
		CHECK_EQ(pci_msix_notify(f, v), 0);
		CHECK(only_vector(efd, n, v % 2 ? (int)v : -1));
	}
	memset(all, 1, sizeof(all));
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_BOOL | VFU_IRQ_ACTION_UNMASK,
			  VFU_IRQ_MSIX, 0, n, all, n, NULL, 0), 0);
	for (unsigned int v = 0; v < n; v++)
		CHECK_U64(read_counter(efd[v]), v % 2 ? 0 : 1);
	/* TRIGGER with DATA_NONE: the client's own loopback */
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_MSIX, n - 1,
			  1), 0);
	CHECK(only_vector(efd, n, (int)n - 1));
	/* DATA_NONE TRIGGER count 0: every vector disabled */
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_MSIX, 0,
			  0), 0);
	for (unsigned int v = 0; v < n; v++)
		CHECK_EQ(pci_msix_notify(f, v), 0);
	CHECK(only_vector(efd, n, -1));
	/* MSI-X off: nothing to deliver */
	CHECK_EQ(msix_enable(&x, false), 0);
	CHECK_EQ(pci_msix_notify(f, 0), -ENODEV);
	for (unsigned int v = 0; v < n; v++)
		close(efd[v]);
	CHECK(fx_fini(&x));
}

TEST(set_irqs_refusals_change_nothing)
{
	/* DESIGN.md §8: link messages with wrong sizes or fds */
	const uint32_t efd_trig = VFU_IRQ_DATA_EVENTFD | VFU_IRQ_ACTION_TRIGGER;
	uint8_t sel[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	int efd[8], nu[8], pp[2], base, e;
	uint8_t p[VFU_SET_IRQS_SIZE] = { 0 };
	struct pci_func *f;
	unsigned int n, i;
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	f = x.f[L_VP];
	REQUIRE(msix_setup(&x, efd, &n) == 0);
	for (i = 0; i < n; i++)
		REQUIRE((nu[i] = new_efd()) >= 0);
	REQUIRE(pipe(pp) == 0);
	base = fds_settled(&x, L_VP);
	/* fd count differs from count; not an eventfd */
	CHECK_EQ(set_irqs(&x, L_VP, efd_trig, VFU_IRQ_MSIX, 0, n, NULL, 0, nu,
			  n - 1), -EINVAL);
	CHECK_EQ(set_irqs(&x, L_VP, efd_trig, VFU_IRQ_MSIX, 0, 1, NULL, 0, nu,
			  2), -EINVAL);
	CHECK_EQ(set_irqs(&x, L_VP, efd_trig, VFU_IRQ_MSIX, 0, 1, NULL, 0, pp,
			  1), -EINVAL);
	/* not exactly one data and one action flag; unknown bits */
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_NONE | VFU_IRQ_DATA_BOOL |
			  VFU_IRQ_ACTION_MASK, VFU_IRQ_MSIX, 0, 1, sel, 1,
			  NULL, 0), -EINVAL);
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_NONE | VFU_IRQ_ACTION_MASK |
			  VFU_IRQ_ACTION_UNMASK, VFU_IRQ_MSIX, 0, 1, NULL, 0,
			  NULL, 0), -EINVAL);
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_NONE, VFU_IRQ_MSIX, 0, 1,
			  NULL, 0, NULL, 0), -EINVAL);
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_NONE | VFU_IRQ_ACTION_MASK |
			  0x40, VFU_IRQ_MSIX, 0, 1, NULL, 0, NULL, 0), -EINVAL);
	/* past the vectors, or wrapping */
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_MASK, VFU_IRQ_MSIX, n - 1,
			  2), -EINVAL);
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_MASK, VFU_IRQ_MSIX, n, 1),
		 -EINVAL);
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_MASK, VFU_IRQ_MSIX,
			  UINT32_MAX, 2), -EINVAL);
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_MASK, VFU_IRQ_MSI, 0, 1),
		 -EINVAL);
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_MASK, 5, 0, 0), -EINVAL);
	/* BOOL data shorter than count; fds without DATA_EVENTFD */
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_BOOL | VFU_IRQ_ACTION_MASK,
			  VFU_IRQ_MSIX, 0, n, sel, n - 1, NULL, 0), -EINVAL);
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_NONE | VFU_IRQ_ACTION_MASK,
			  VFU_IRQ_MSIX, 0, 1, NULL, 0, nu, 1), -EINVAL);
	/* mask eventfds are not supported */
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_EVENTFD | VFU_IRQ_ACTION_MASK,
			  VFU_IRQ_INTX, 0, 1, NULL, 0, nu, 1), -ENOTSUP);
	/* argsz below 20 */
	put32(p, 12);
	put32(p + 4, VFU_IRQ_DATA_NONE | VFU_IRQ_ACTION_MASK);
	put32(p + 8, VFU_IRQ_MSIX);
	put32(p + 16, 1);
	CHECK_EQ(call(&x, L_VP, VFU_SET_IRQS, p, sizeof(p), NULL, 0, NULL),
		 -EINVAL);
	/* Nothing changed: no mask set, the same eventfds fire. */
	CHECK_EQ(fds_settled(&x, L_VP), base);
	for (unsigned int v = 0; v < n; v++) {
		CHECK_EQ(pci_msix_notify(f, v), 0);
		CHECK(only_vector(efd, n, (int)v));
		CHECK_U64(read_counter(nu[v]), 0);
	}
	CHECK_U64(stats(&x, L_VP).errors, 16);
	e = cap_get(&cap.closed_lines);
	CHECK_EQ(e, 0);
	for (i = 0; i < n; i++) {
		close(efd[i]);
		close(nu[i]);
	}
	close(pp[0]);
	close(pp[1]);
	CHECK(fx_fini(&x));
}

/* ---- malformed framing ---------------------------------------------- */

/* struct bad_case - one way to break link 0 (@pre: before VERSION). */
struct bad_case {
	const char *name;
	int (*send)(struct fx *x);
	int end;
	bool pre;
};

/* bad_hdr() - a bare header on link 0 with the given fields. */
static int bad_hdr(struct fx *x, uint16_t cmd, uint32_t size, uint32_t flags)
{
	uint8_t h[VFU_HDR_SIZE];

	put_hdr(h, 77, cmd, size, flags);
	return send_raw(x->peer[L_DMA], h, sizeof(h), NULL, 0);
}

/*
 * The ways to break link 0 (bad_cases[] below); each returns 0 once its
 * bytes are sent.
 */
static int bad_size_8(struct fx *x)
{
	return bad_hdr(x, VFU_DEVICE_GET_INFO, 8, 0);
}

static int bad_size_0(struct fx *x)
{
	return bad_hdr(x, VFU_DEVICE_GET_INFO, 0, 0);
}

static int bad_size_big(struct fx *x)
{
	return bad_hdr(x, VFU_REGION_WRITE,
		       VFU_HDR_SIZE + VFU_MAX_PAYLOAD + 1, 0);
}

static int bad_size_max(struct fx *x)
{
	return bad_hdr(x, VFU_REGION_WRITE, UINT32_MAX, 0);
}

static int bad_reply(struct fx *x)
{
	return bad_hdr(x, VFU_DEVICE_RESET, 16, VFU_T_REPLY);
}

static int bad_type_2(struct fx *x)
{
	return bad_hdr(x, VFU_DEVICE_RESET, 16, 2);
}

static int bad_error_flag(struct fx *x)
{
	return bad_hdr(x, VFU_DEVICE_RESET, 16, VFU_F_ERROR);
}

static int bad_flag_40(struct fx *x)
{
	return bad_hdr(x, VFU_DEVICE_RESET, 16, 0x40);
}

static int bad_flag_top(struct fx *x)
{
	return bad_hdr(x, VFU_DEVICE_RESET, 16, 0x80000000u | VFU_F_NO_REPLY);
}

static int bad_before_version(struct fx *x)
{
	uint8_t p[16] = { 16 };

	return send_cmd(x, L_DMA, VFU_DEVICE_GET_INFO, 0, p, 16, NULL, 0) < 0;
}

static int bad_version_major(struct fx *x)
{
	uint8_t p[4] = { 1, 0, 0, 0 };

	return send_cmd(x, L_DMA, VFU_VERSION, 0, p, 4, NULL, 0) < 0;
}

static int bad_version_short(struct fx *x)
{
	return send_cmd(x, L_DMA, VFU_VERSION, 0, "\0", 2, NULL, 0) < 0;
}

static int bad_version_no_nul(struct fx *x)
{
	return send_cmd(x, L_DMA, VFU_VERSION, 0, "\0\0\0\0{}", 6, NULL,
			0) < 0;
}

static int bad_version_long(struct fx *x)
{
	uint8_t p[4 + VFU_MAX_VERSION_DATA + 1];

	memset(p, ' ', sizeof(p));
	memset(p, 0, 4);
	p[sizeof(p) - 1] = '\0';
	return send_cmd(x, L_DMA, VFU_VERSION, 0, p, sizeof(p), NULL, 0) < 0;
}

static int bad_mid_header(struct fx *x)
{
	uint8_t h[VFU_HDR_SIZE];

	put_hdr(h, 1, VFU_DEVICE_GET_INFO, 32, 0);
	if (send_raw(x->peer[L_DMA], h, 10, NULL, 0))
		return -1;
	return shutdown(x->peer[L_DMA], SHUT_WR);
}

static int bad_mid_payload(struct fx *x)
{
	uint8_t m[VFU_HDR_SIZE + 8] = { 0 };
	int efd = new_efd(), err;

	/* an fd rides on the cut message: it must be closed too */
	put_hdr(m, 1, VFU_DEVICE_GET_INFO, 32, 0);
	err = send_raw(x->peer[L_DMA], m, sizeof(m), &efd, 1);
	close(efd);
	return err ? err : shutdown(x->peer[L_DMA], SHUT_WR);
}

static const struct bad_case bad_cases[] = {
	{ "size 8", bad_size_8, VIOMMU_LINK_END_PROTOCOL, false },
	{ "size 0", bad_size_0, VIOMMU_LINK_END_PROTOCOL, false },
	{ "size past 16 + 16 + 4096", bad_size_big, VIOMMU_LINK_END_PROTOCOL,
	  false },
	{ "size 0xffffffff", bad_size_max, VIOMMU_LINK_END_PROTOCOL, false },
	{ "a reply from the client", bad_reply, VIOMMU_LINK_END_PROTOCOL,
	  false },
	{ "type 2", bad_type_2, VIOMMU_LINK_END_PROTOCOL, false },
	{ "ERROR in a command", bad_error_flag, VIOMMU_LINK_END_PROTOCOL,
	  false },
	{ "flag 0x40", bad_flag_40, VIOMMU_LINK_END_PROTOCOL, false },
	{ "flag bit 31", bad_flag_top, VIOMMU_LINK_END_PROTOCOL, false },
	{ "a command before VERSION", bad_before_version,
	  VIOMMU_LINK_END_PROTOCOL, true },
	{ "VERSION 1.0", bad_version_major, VIOMMU_LINK_END_PROTOCOL, true },
	{ "VERSION of 2 bytes", bad_version_short, VIOMMU_LINK_END_PROTOCOL,
	  true },
	{ "VERSION JSON without NUL", bad_version_no_nul,
	  VIOMMU_LINK_END_PROTOCOL, true },
	{ "VERSION JSON too long", bad_version_long, VIOMMU_LINK_END_PROTOCOL,
	  true },
	{ "closed inside the header", bad_mid_header,
	  VIOMMU_LINK_END_TRUNCATED, false },
	{ "closed inside the payload", bad_mid_payload,
	  VIOMMU_LINK_END_TRUNCATED, false },
};

/* run_bad_case() - break link 0 one way; link 1 must go on. */
static void run_bad_case(const struct bad_case *c)
{
	struct reply r;
	struct fx x;

	printf("# case: %s\n", c->name);
	REQUIRE(fx_init(&x, FX_NO_VERSION) == 0);
	REQUIRE(negotiate(&x, L_VP, NULL) == 0);
	if (!c->pre)
		REQUIRE(negotiate(&x, L_DMA, NULL) == 0);
	REQUIRE(c->send(&x) == 0);
	CHECK_EQ(wait_end(x.id[L_DMA]), c->end);
	CHECK_EQ(cap_get(&cap.closed_lines), 1);
	CHECK(strstr(cap.last, "vfio-user dma") != NULL);
	/* no reply, the socket closed; the other link answers */
	CHECK_EQ(recv_reply(x.peer[L_DMA], &r), -1);
	CHECK(alive(&x, L_VP));
	CHECK_EQ(cap_get(&cap.end[x.id[L_VP]]), VIOMMU_LINK_OPEN);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 1);
	CHECK_EQ(stats(&x, L_DMA).end, c->end);
	CHECK(fx_fini(&x));
	CHECK_EQ(cap.end_calls[0], 1);
}

TEST(malformed_framing_ends_only_its_link)
{
	/* DESIGN.md §8: a clear log line, never a crash; others go on */
	for (size_t i = 0; i < NELEM(bad_cases); i++) {
		int before = test_failed_checks;

		run_bad_case(&bad_cases[i]);
		if (test_failed_checks != before)
			printf("#   ^ failed: %s\n", bad_cases[i].name);
	}
}

TEST(unknown_commands_get_enosys)
{
	static const uint16_t cmds[] = { 0, VFU_GET_REGION_IO_FDS,
					 VFU_DMA_READ, VFU_DIRTY_PAGES,
					 VFU_MIG_DATA_WRITE, 99, 0xffff };
	uint8_t p[VFU_RW_SIZE + VFU_MAX_XFER] = { 0 };
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	for (size_t i = 0; i < NELEM(cmds); i++)
		CHECK_EQ(call(&x, L_DMA, cmds[i], p, 8, NULL, 0, NULL),
			 -ENOSYS);
	CHECK(alive(&x, L_DMA));
	CHECK_U64(stats(&x, L_DMA).msgs[VFU_GET_REGION_IO_FDS], 1);
	CHECK_U64(stats(&x, L_DMA).msgs[VFU_DMA_READ], 1);
	CHECK_U64(stats(&x, L_DMA).errors, NELEM(cmds));
	/* The largest message is taken whole (and refused: 4096-byte BAR
	 * access), and the stream stays in step. */
	put32(p + 8, 0);
	put32(p + 12, VFU_MAX_XFER);
	CHECK_EQ(call(&x, L_DMA, VFU_REGION_WRITE, p, sizeof(p), NULL, 0,
		      NULL), -EINVAL);
	CHECK(alive(&x, L_DMA));
	CHECK_EQ(cap_get(&cap.closed_lines), 0);
	CHECK(fx_fini(&x));
}

TEST(hangup_between_messages)
{
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 2);
	close_peer(&x, L_DMA);
	CHECK_EQ(wait_end(x.id[L_DMA]), VIOMMU_LINK_END_HANGUP);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 1);
	CHECK(alive(&x, L_VP));
	viommu_link_server_stop(x.srv);
	CHECK_EQ(cap_get(&cap.end[x.id[L_VP]]), VIOMMU_LINK_END_STOPPED);
	CHECK(fx_fini(&x));
	/* each link told once; no warning for a clean hangup */
	CHECK_EQ(cap.end_calls[0], 1);
	CHECK_EQ(cap.end_calls[1], 1);
	CHECK_EQ(cap.warn_lines, 0);
}

TEST(received_fds_not_kept_are_closed)
{
	/* DESIGN.md §8: link messages with wrong fds leak nothing */
	uint8_t p[VFU_RW_SIZE] = { 0 }, m[VFU_HDR_SIZE];
	int e[20], base, mfd, efd;
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	for (unsigned int i = 0; i < NELEM(e); i++)
		REQUIRE((e[i] = new_efd()) >= 0);
	mfd = make_memfd(WIN);
	REQUIRE(mfd >= 0);
	base = fds_settled(&x, L_DMA);
	/* fds on a command that takes none */
	put32(p + 8, VFU_REGION_CONFIG);
	put32(p + 12, 2);
	CHECK_EQ(call(&x, L_DMA, VFU_REGION_READ, p, sizeof(p), e, 3, NULL),
		 0);
	CHECK_EQ(fds_settled(&x, L_DMA), base);
	CHECK_EQ(call(&x, L_DMA, VFU_DEVICE_RESET, NULL, 0, &mfd, 1, NULL), 0);
	CHECK_EQ(fds_settled(&x, L_DMA), base);
	/* more fds than a message may carry */
	CHECK_EQ(set_irqs(&x, L_DMA, VFU_IRQ_DATA_EVENTFD |
			  VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_INTX, 0, 1, NULL, 0,
			  e, 20), -EINVAL);
	CHECK_EQ(fds_settled(&x, L_DMA), base);
	/* on a refused posted write */
	put32(p + 12, 0);
	CHECK(send_cmd(&x, L_DMA, VFU_REGION_WRITE, VFU_F_NO_REPLY, p,
		       sizeof(p), e, 2) >= 0);
	CHECK(alive(&x, L_DMA));
	CHECK_EQ(fds_settled(&x, L_DMA), base);
	/* a kept fd is kept until it is replaced or the link ends */
	CHECK_EQ(intx_trigger(&x, e[0]), 0);
	CHECK_EQ(fds_settled(&x, L_DMA), base + 1);
	CHECK_EQ(intx_trigger(&x, e[1]), 0);
	CHECK_EQ(fds_settled(&x, L_DMA), base + 1);
	/* an fd sent with the payload, apart from its header, counts */
	put_hdr(m, x.next_id[L_DMA]++, VFU_SET_IRQS, VFU_HDR_SIZE + 20, 0);
	REQUIRE(send_raw(x.peer[L_DMA], m, sizeof(m), NULL, 0) == 0);
	{
		uint8_t s[20] = { 20 };

		put32(s + 4, VFU_IRQ_DATA_EVENTFD | VFU_IRQ_ACTION_UNMASK);
		put32(s + 16, 1);
		efd = e[2];
		REQUIRE(send_raw(x.peer[L_DMA], s, sizeof(s), &efd, 1) == 0);
	}
	{
		struct reply r;

		CHECK_EQ(recv_reply(x.peer[L_DMA], &r), 0);
		CHECK_EQ(r.flags, VFU_T_REPLY);
	}
	CHECK_EQ(fds_settled(&x, L_DMA), base + 2);
	close_peer(&x, L_DMA);
	CHECK_EQ(wait_end(x.id[L_DMA]), VIOMMU_LINK_END_HANGUP);
	/* the two kept, and both ends of the socket */
	CHECK_EQ(count_fds(), base - 2);
	/* 20 sent at once: as many arrive as the link's control buffer
	 * holds (16), the kernel drops the rest */
	CHECK_U64(stats(&x, L_DMA).fds_in, 3 + 1 + 16 + 2 + 1 + 1 + 1);
	for (unsigned int i = 0; i < NELEM(e); i++)
		close(e[i]);
	close(mfd);
	CHECK(fx_fini(&x));
}

TEST(device_reset_resets_the_function)
{
	struct fx x;
	uint8_t four[4] = { 0 };

	REQUIRE(fx_init(&x, 0) == 0);
	REQUIRE(wr(&x, L_DMA, VFU_REGION_CONFIG, PCI_COMMAND,
		   PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2) == 0);
	REQUIRE(wr(&x, L_DMA, 0, DMAE_DMA_SRC, 0x4242, 8) == 0);
	/* a payload: refused, nothing reset */
	CHECK_EQ(call(&x, L_DMA, VFU_DEVICE_RESET, four, 4, NULL, 0, NULL),
		 -EINVAL);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_DMA_SRC, 8), 0x4242);
	CHECK_EQ(call(&x, L_DMA, VFU_DEVICE_RESET, NULL, 0, NULL, 0, NULL), 0);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_DMA_SRC, 8), 0);
	CHECK_U64(x.eng.r.src, 0);
	CHECK_U64(rd(&x, L_DMA, VFU_REGION_CONFIG, PCI_COMMAND, 2), 0);
	/* virtio-pci: MSI-X Enable goes back to clear */
	REQUIRE(msix_enable(&x, true) == 0);
	CHECK(pci_msix_enabled(x.f[L_VP]));
	CHECK_EQ(call(&x, L_VP, VFU_DEVICE_RESET, NULL, 0, NULL, 0, NULL), 0);
	CHECK(!pci_msix_enabled(x.f[L_VP]));
	CHECK(fx_fini(&x));
}

/* ---- poll mode, stop, configuration, paths --------------------------- */

TEST(poll_mode_served_by_run_once)
{
	uint8_t p[VFU_RW_SIZE] = { 0 };
	unsigned int id;
	struct reply r;
	struct fx x;
	int pfd;

	REQUIRE(fx_init(&x, FX_POLL_DMA) == 0);
	id = x.id[L_DMA];
	pfd = viommu_link_server_poll_fd(x.srv, id);
	REQUIRE(pfd >= 0);
	CHECK_EQ(viommu_link_server_poll_fd(x.srv, id), pfd);
	CHECK_EQ(viommu_link_server_poll_fd(x.srv, x.id[L_VP]), -EINVAL);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[L_VP]), -EINVAL);
	CHECK_EQ(viommu_link_server_poll_fd(x.srv, 99), -EINVAL);
	CHECK(!wait_readable(pfd, 0));
	/* The client sends: the poll fd says so; run_once answers. */
	REQUIRE(send_cmd(&x, L_DMA, VFU_VERSION, 0, "\0\0\0\0", 4, NULL,
			 0) == 0);
	CHECK(wait_readable(pfd, WAIT_MS));
	CHECK(!wait_readable(x.peer[L_DMA], 0)); /* nothing served yet */
	CHECK_EQ(viommu_link_server_run_once(x.srv, id), 0);
	CHECK(wait_readable(x.peer[L_DMA], 0));
	CHECK_EQ(recv_reply(x.peer[L_DMA], &r), 0);
	CHECK_EQ(r.id, 0);
	CHECK(!wait_readable(pfd, 0));
	CHECK_EQ(viommu_link_server_run_once(x.srv, id), 0); /* idle */
	/* Two messages at once: one run serves both. */
	put32(p + 8, VFU_REGION_CONFIG);
	put32(p + 12, 2);
	REQUIRE(send_cmd(&x, L_DMA, VFU_REGION_READ, 0, p, sizeof(p), NULL,
			 0) == 1);
	REQUIRE(send_cmd(&x, L_DMA, VFU_REGION_READ, 0, p, sizeof(p), NULL,
			 0) == 2);
	CHECK(wait_readable(pfd, WAIT_MS));
	CHECK_EQ(viommu_link_server_run_once(x.srv, id), 0);
	CHECK_EQ(recv_reply(x.peer[L_DMA], &r), 0);
	CHECK_EQ(r.id, 1);
	CHECK_EQ(get32(r.d + VFU_RW_SIZE) & 0xffff, DMA_ENGINE_VENDOR);
	CHECK_EQ(recv_reply(x.peer[L_DMA], &r), 0);
	CHECK_EQ(r.id, 2);
	/* The client leaves: the end reason, again and again. */
	close_peer(&x, L_DMA);
	CHECK(wait_readable(pfd, WAIT_MS));
	CHECK_EQ(viommu_link_server_run_once(x.srv, id),
		 VIOMMU_LINK_END_HANGUP);
	CHECK_EQ(viommu_link_server_run_once(x.srv, id),
		 VIOMMU_LINK_END_HANGUP);
	CHECK_EQ(cap_get(&cap.end[id]), VIOMMU_LINK_END_HANGUP);
	CHECK_EQ(cap_get(&cap.end_calls[id]), 1);
	CHECK(alive(&x, L_VP));
	CHECK(fx_fini(&x));
}

TEST(poll_mode_link_ends_at_stop)
{
	struct fx x;

	REQUIRE(fx_init(&x, FX_POLL_DMA) == 0);
	viommu_link_server_stop(x.srv);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[L_DMA]),
		 VIOMMU_LINK_END_STOPPED);
	CHECK_EQ(cap_get(&cap.end[x.id[L_VP]]), VIOMMU_LINK_END_STOPPED);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 0);
	CHECK(fx_fini(&x));
}

/* struct stopper - viommu_link_server_stop() on a thread of its own. */
struct stopper {
	struct viommu_link_server *srv;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

/* stop_thread() - stop the server, then say so. */
static void *stop_thread(void *arg)
{
	struct stopper *s = arg;

	viommu_link_server_stop(s->srv);
	pthread_mutex_lock(&s->lock);
	s->done = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* wait_bytes_in() - wait until link @l has received @n bytes in all. */
static bool wait_bytes_in(struct fx *x, unsigned int l, uint64_t n)
{
	for (int i = 0; i < WAIT_MS; i++) {
		if (stats(x, l).bytes_in >= n)
			return true;
		usleep(1000);
	}
	return false;
}

TEST(stop_ends_a_link_blocked_mid_message)
{
	struct stopper s = { .lock = PTHREAD_MUTEX_INITIALIZER,
			     .cond = PTHREAD_COND_INITIALIZER };
	uint8_t h[VFU_HDR_SIZE];
	struct timespec ts;
	uint64_t before;
	pthread_t t;
	struct fx x;
	bool done;

	REQUIRE(fx_init(&x, 0) == 0);
	before = stats(&x, L_DMA).bytes_in;
	put_hdr(h, 9, VFU_DEVICE_GET_INFO, 32, 0);
	REQUIRE(send_raw(x.peer[L_DMA], h, 8, NULL, 0) == 0);
	/* The link has half a header and waits for the rest. */
	REQUIRE(wait_bytes_in(&x, L_DMA, before + 8));
	s.srv = x.srv;
	REQUIRE(pthread_create(&t, NULL, stop_thread, &s) == 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&s.lock);
	while (!s.done)
		if (pthread_cond_timedwait(&s.cond, &s.lock, &ts))
			break;
	done = s.done;
	pthread_mutex_unlock(&s.lock);
	REQUIRE(done); /* (a hung stop is left behind: the test failed) */
	pthread_join(t, NULL);
	CHECK_EQ(cap_get(&cap.end[x.id[L_DMA]]), VIOMMU_LINK_END_STOPPED);
	CHECK_EQ(cap_get(&cap.end[x.id[L_VP]]), VIOMMU_LINK_END_STOPPED);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 0);
	CHECK_EQ(stats(&x, L_DMA).end, VIOMMU_LINK_END_STOPPED);
	/* the client sees its socket closed; a stopped server adds nothing */
	CHECK(!alive(&x, L_DMA));
	CHECK(!alive(&x, L_VP));
	CHECK(fx_fini(&x));
	CHECK_EQ(cap.end_calls[0], 1);
}

/* union grown_lc - a link config as a newer caller would pass it. */
union grown_lc {
	struct viommu_link_config lc;
	uint8_t raw[sizeof(struct viommu_link_config) + 8];
};

TEST(config_size_rule)
{
	union {
		struct viommu_link_server_config sc;
		uint8_t raw[sizeof(struct viommu_link_server_config) + 8];
	} gs;
	struct viommu_link_server *srv2 = NULL;
	union grown_lc g;
	struct fx x;
	int sv[2];

	REQUIRE(fx_init(&x, FX_NO_LINKS) == 0);
	/* Bytes past what the library knows must be zero. */
	memset(&g, 0, sizeof(g));
	g.lc.size = sizeof(g);
	g.lc.proto = VIOMMU_LINK_VFIO_USER;
	g.lc.func = (struct viommu_pci_func *)x.f[L_DMA];
	g.raw[sizeof(g.lc) + 5] = 1;
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	g.lc.fd = sv[1];
	CHECK_EQ(viommu_link_server_add(x.srv, &g.lc, &x.id[L_DMA]), -EINVAL);
	CHECK_EQ(fcntl(sv[1], F_GETFD), -1); /* closed by the server */
	CHECK_EQ(viommu_link_server_num_links(x.srv), 0);
	close(sv[0]);
	g.raw[sizeof(g.lc) + 5] = 0;
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	x.peer[L_DMA] = sv[0];
	g.lc.fd = sv[1];
	CHECK_EQ(viommu_link_server_add(x.srv, &g.lc, &x.id[L_DMA]), 0);
	/* size 0: the original size */
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	x.peer[L_VP] = sv[0];
	g.lc.size = 0;
	g.lc.func = (struct viommu_pci_func *)x.f[L_VP];
	g.lc.fd = sv[1];
	CHECK_EQ(viommu_link_server_add(x.srv, &g.lc, &x.id[L_VP]), 0);
	CHECK_EQ(negotiate(&x, L_DMA, NULL), 0);
	CHECK_EQ(negotiate(&x, L_VP, NULL), 0);
	CHECK(alive(&x, L_DMA) && alive(&x, L_VP));
	/* The server configuration follows the same rule. */
	memset(&gs, 0, sizeof(gs));
	gs.sc.size = sizeof(gs);
	gs.sc.mem = x.mem;
	gs.raw[sizeof(gs.sc) + 7] = 0x80;
	CHECK_EQ(viommu_link_server_create(&gs.sc, &srv2), -EINVAL);
	CHECK(srv2 == NULL);
	gs.raw[sizeof(gs.sc) + 7] = 0;
	CHECK_EQ(viommu_link_server_create(&gs.sc, &srv2), 0);
	viommu_link_server_destroy(srv2);
	gs.sc.size = 0;
	CHECK_EQ(viommu_link_server_create(&gs.sc, &srv2), 0);
	viommu_link_server_destroy(srv2);
	CHECK(fx_fini(&x));
}

TEST(add_refusals_close_the_fd)
{
	struct viommu_link_config lc = { .size = sizeof(lc),
					 .proto = VIOMMU_LINK_VFIO_USER };
	struct pci_func pf;
	unsigned int id;
	struct fx x;
	int sv[2], pp[2];

	REQUIRE(fx_init(&x, 0) == 0);
	pci_func_init(&pf, "spare", &test_log, 0x1234, 0x1, 0xff0000, 1, 0, 0);
	/* a function already served */
	lc.func = (struct viommu_pci_func *)x.f[L_DMA];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	lc.fd = sv[1];
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EBUSY);
	CHECK_EQ(fcntl(sv[1], F_GETFD), -1); /* closed by the server */
	close(sv[0]);
	/* not a stream socket */
	lc.func = (struct viommu_pci_func *)&pf;
	REQUIRE(pipe(pp) == 0);
	lc.fd = pp[0];
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EINVAL);
	CHECK_EQ(fcntl(pp[0], F_GETFD), -1);
	close(pp[1]);
	/* unknown protocol; no function */
	lc.fd = -1;
	lc.proto = 0;
	lc.path = "/nonexistent/dir/sock";
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EPROTONOSUPPORT);
	lc.proto = VIOMMU_LINK_VFIO_USER;
	lc.func = NULL;
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EINVAL);
	CHECK_EQ(viommu_link_server_num_links(x.srv), 2);
	CHECK(alive(&x, L_DMA));
	CHECK_EQ(strcmp(viommu_link_server_name(x.srv, x.id[L_VP]), "vp"), 0);
	CHECK(viommu_link_server_name(x.srv, 7) == NULL);
	CHECK_EQ(strcmp(viommu_link_cmd_name(VIOMMU_LINK_VFIO_USER,
					     VFU_SET_IRQS), "SET_IRQS"), 0);
	CHECK_EQ(strcmp(viommu_link_cmd_name(VIOMMU_LINK_VFIO_USER, 99), "?"),
		 0);
	CHECK_EQ(strcmp(viommu_link_cmd_name(7, 1), "?"), 0);
	CHECK_EQ(strcmp(viommu_link_end_name(VIOMMU_LINK_END_TRUNCATED),
			"truncated"), 0);
	CHECK(fx_fini(&x));
	pci_func_destroy(&pf);
}

/* link_path() - a per-process socket path for link @n. */
static void link_path(char *buf, size_t size, unsigned int n)
{
	snprintf(buf, size, "/tmp/test_vfio_user.%d.%u", (int)getpid(), n);
	unlink(buf);
}

TEST(path_link_accepts_then_removes_the_path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct viommu_link_config lc = { .size = sizeof(lc),
					 .proto = VIOMMU_LINK_VFIO_USER,
					 .fd = -1 };
	char p0[64], p1[64];
	struct fx x;
	int c;

	REQUIRE(fx_init(&x, FX_NO_LINKS) == 0);
	link_path(p0, sizeof(p0), 0);
	link_path(p1, sizeof(p1), 1);
	lc.func = (struct viommu_pci_func *)x.f[L_DMA];
	lc.path = p0;
	REQUIRE(viommu_link_server_add(x.srv, &lc, &x.id[L_DMA]) == 0);
	CHECK_EQ(access(p0, F_OK), 0); /* bound before add returns */
	lc.func = (struct viommu_pci_func *)x.f[L_VP];
	lc.path = p1;
	REQUIRE(viommu_link_server_add(x.srv, &lc, &x.id[L_VP]) == 0);
	CHECK(!stats(&x, L_DMA).connected);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p0);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(c >= 0);
	REQUIRE(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	x.peer[L_DMA] = c;
	CHECK_EQ(negotiate(&x, L_DMA, NULL), 0);
	CHECK(alive(&x, L_DMA));
	/* accepted: the path is gone, the other link still listens */
	CHECK_EQ(access(p0, F_OK), -1);
	CHECK_EQ(access(p1, F_OK), 0);
	CHECK(stats(&x, L_DMA).connected);
	CHECK(!stats(&x, L_VP).connected);
	close_peer(&x, L_DMA);
	CHECK_EQ(wait_end(x.id[L_DMA]), VIOMMU_LINK_END_HANGUP);
	CHECK(fx_fini(&x));
	/* never connected: removed when the server went */
	CHECK_EQ(access(p1, F_OK), -1);
	CHECK_EQ(cap.end[1], VIOMMU_LINK_END_STOPPED);
}

TEST(poll_mode_path_link_accepts_in_run_once)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct viommu_link_config lc = { .size = sizeof(lc),
					 .proto = VIOMMU_LINK_VFIO_USER,
					 .fd = -1, .poll_mode = true };
	struct reply r;
	char path[64];
	struct fx x;
	int pfd, c;

	REQUIRE(fx_init(&x, FX_NO_LINKS) == 0);
	link_path(path, sizeof(path), 2);
	lc.func = (struct viommu_pci_func *)x.f[L_DMA];
	lc.path = path;
	REQUIRE(viommu_link_server_add(x.srv, &lc, &x.id[L_DMA]) == 0);
	pfd = viommu_link_server_poll_fd(x.srv, x.id[L_DMA]);
	REQUIRE(pfd >= 0);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[L_DMA]), 0);
	CHECK_EQ(access(path, F_OK), 0); /* nobody yet */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(c >= 0);
	REQUIRE(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	x.peer[L_DMA] = c;
	CHECK(wait_readable(pfd, WAIT_MS));
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[L_DMA]), 0);
	CHECK_EQ(access(path, F_OK), -1);
	REQUIRE(send_cmd(&x, L_DMA, VFU_VERSION, 0, "\0\0\0\0", 4, NULL,
			 0) == 0);
	CHECK(wait_readable(pfd, WAIT_MS));
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[L_DMA]), 0);
	CHECK_EQ(recv_reply(c, &r), 0);
	CHECK_EQ(r.flags, VFU_T_REPLY);
	CHECK(fx_fini(&x));
}

TEST_MAIN()
