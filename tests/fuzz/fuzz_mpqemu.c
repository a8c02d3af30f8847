/*
 * fuzz_mpqemu.c - libFuzzer target for the x-pci-proxy-dev protocol
 * (src/link/mpqemu.c) served by the link server (include/viommu/link.h,
 * VIOMMU_LINK_MPQEMU): arbitrary byte streams, cut into arbitrary
 * sendmsg() chunks carrying arbitrary fds, go through a real socketpair
 * into a poll-mode link served in this thread with
 * viommu_link_server_run_once(), bound to a stub PCI function.
 *
 * Input: a sequence of chunks {u8 ctl; u8 len; len bytes}.  ctl bits 0-3:
 * fds to attach to the chunk (at most 12); bits 4-5: their kind (0
 * eventfd, 1 memfd of 64 KiB, 2 pipe read end, 3 alternating eventfd and
 * memfd); bit 6: eventfds start signalled (so a resample fd fires).  A
 * short last chunk sends what there is.  The stream is then closed
 * (shutdown) and the link is run; since the whole stream and its end
 * have arrived, run_once() must serve it to the end, LINK_RUN_BATCH
 * messages per call at most (a call that returns 0 served exactly that
 * many).
 *
 * The stub function has a 4 KiB memory BAR0 and a 16-byte I/O BAR1 backed
 * by arrays; bit 0 of a BAR0 write to offset 0 drives INTx, so the
 * SET_IRQFD and resample paths run too.
 *
 * Checked (abort() on violation): the run_once() calls end the link, as
 * hangup, truncated or protocol, reported once through link_ended with
 * the same reason, with no "mpqemu" WARN line for a hangup and exactly one
 * otherwise; a later run_once() reports the same end; every reply is a
 * well-formed RET and their number and bytes match the counters; a hangup
 * consumed every byte sent; no fd is leaked (the process's fd count is
 * back once the server and memory are gone).
 */
#include <dirent.h>
#include "link/link.h"
#include "peer_sock.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <viommu/link.h>
#include <viommu/mem.h>

#include "link/mpqemu.h"
#include "transport/pci.h"

#define MAX_STREAM (32u << 10) /* replies stay below the socket buffer */
#define MAX_CHUNK_FDS 12
#define MAX_TOTAL_FDS 64
#define MEMFD_SIZE 0x10000

struct stub {
	struct pci_func f;
	uint8_t mem[4096];
	uint8_t io[16];
};

static struct {
	unsigned long warn_lines;
	unsigned int end_calls;
	int end;
	bool verbose;
} g;

static void count_line(void *opaque, enum viommu_log_level l, const char *s)
{
	(void)opaque;
	if (g.verbose)
		fprintf(stderr, "log: %s\n", s);
	if (l <= VIOMMU_LOG_WARN && strncmp(s, "mpqemu", 6) == 0)
		g.warn_lines++;
}

static const struct viommu_log fuzz_log = { count_line, NULL,
					    VIOMMU_LOG_WARN };

/* link_ended() - record the end the server reports. */
static void link_ended(void *opaque, unsigned int id, int why)
{
	(void)opaque;
	if (id != 0)
		abort();
	g.end_calls++;
	g.end = why;
}

static uint64_t stub_mem_rd(void *o, uint64_t off, unsigned int size)
{
	struct stub *s = o;
	uint64_t v = 0;

	memcpy(&v, s->mem + off, size);
	return v;
}

static void stub_mem_wr(void *o, uint64_t off, uint64_t val,
			unsigned int size)
{
	struct stub *s = o;

	memcpy(s->mem + off, &val, size);
	if (off == 0)
		pci_set_intx(&s->f, val & 1);
}

static uint64_t stub_io_rd(void *o, uint64_t off, unsigned int size)
{
	struct stub *s = o;
	uint64_t v = 0;

	memcpy(&v, s->io + off, size);
	return v;
}

static void stub_io_wr(void *o, uint64_t off, uint64_t val, unsigned int size)
{
	struct stub *s = o;

	memcpy(s->io + off, &val, size);
}

static const struct pci_bar_ops stub_mem_ops = { stub_mem_rd, stub_mem_wr };
static const struct pci_bar_ops stub_io_ops = { stub_io_rd, stub_io_wr };

static void stub_init(struct stub *s)
{
	memset(s, 0, sizeof(*s));
	pci_func_init(&s->f, "stub", &fuzz_log, 0x1234, 0x11e8, 0x00ff00, 1,
		      0, 0);
	if (pci_func_add_bar(&s->f, 0, sizeof(s->mem), false, &stub_mem_ops,
			     s) ||
	    pci_func_add_bar(&s->f, 1, sizeof(s->io), true, &stub_io_ops, s))
		abort();
}

static int count_fds(void)
{
	int n = peer_count_fds();

	if (n < 0)
		abort();
	return n;
}

/* make_fd() - one fd of @kind (see the top of the file); -1 on failure. */
static int make_fd(unsigned int kind, unsigned int i, bool signalled)
{
	int fd, p[2];

	if (kind == 3)
		kind = i & 1;
	switch (kind) {
	case 0:
		fd = eventfd(signalled ? 1 : 0, EFD_CLOEXEC);
		return fd;
	case 1:
		fd = memfd_create("fuzz-ram", MFD_CLOEXEC |
				  MFD_ALLOW_SEALING);
		if (fd >= 0 && (ftruncate(fd, MEMFD_SIZE) < 0 ||
				fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK |
				      F_SEAL_GROW) < 0)) {
			close(fd);
			return -1;
		}
		return fd;
	default:
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		close(p[1]);
		return p[0];
	}
}

/* send_chunk() - one sendmsg() of @len bytes with the fds @ctl asks for. */
static void send_chunk(int sock, uint8_t ctl, const uint8_t *d, size_t len,
		       unsigned int *total_fds)
{
	struct iovec iov = { .iov_base = (void *)d, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	unsigned int n = ctl & 0xf, i, made = 0;
	union peer_ctl c;
	int fds[MAX_CHUNK_FDS];

	if (n > MAX_CHUNK_FDS)
		n = MAX_CHUNK_FDS;
	if (*total_fds + n > MAX_TOTAL_FDS || len == 0)
		n = 0;
	for (i = 0; i < n; i++) {
		fds[made] = make_fd((ctl >> 4) & 3, i, ctl & 0x40);
		if (fds[made] >= 0)
			made++;
	}
	peer_attach_fds(&mh, &c, fds, made);
	if (sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len)
		abort();
	for (i = 0; i < made; i++)
		close(fds[i]);
	*total_fds += made;
}

/* send_stream() - cut the input into chunks; returns bytes sent. */
static size_t send_stream(int sock, const uint8_t *d, size_t n)
{
	unsigned int total_fds = 0;
	size_t pos = 0, sent = 0;

	while (pos + 2 <= n && sent < MAX_STREAM) {
		uint8_t ctl = d[pos];
		size_t len = d[pos + 1];

		pos += 2;
		if (len > n - pos)
			len = n - pos;
		if (len > MAX_STREAM - sent)
			len = MAX_STREAM - sent;
		send_chunk(sock, ctl, d + pos, len, &total_fds);
		pos += len;
		sent += len;
	}
	return sent;
}

/* check_replies() - every reply a RET; count and bytes as the stats say. */
static void check_replies(int sock, const struct viommu_link_stats *st)
{
	uint8_t r[24];
	uint64_t n = 0, bytes = 0;
	ssize_t got;

	while ((got = recv(sock, r, sizeof(r), MSG_DONTWAIT | MSG_WAITALL)) >
	       0) {
		int32_t cmd;
		uint64_t size;

		if (got != (ssize_t)sizeof(r))
			abort();
		memcpy(&cmd, r, sizeof(cmd));
		memcpy(&size, r + 8, sizeof(size));
		if (cmd != MPQEMU_RET || size != 8)
			abort();
		n++;
		bytes += sizeof(r);
	}
	if (n != st->replies || bytes != st->bytes_out)
		abort();
}

/* check_end() - the end reason and its log lines. */
static void check_end(int why, const struct viommu_link_stats *st,
		      size_t sent)
{
	if (st->end != why || g.end_calls != 1 || g.end != why)
		abort();
	switch (why) {
	case VIOMMU_LINK_END_HANGUP:
		if (g.warn_lines != 0 || st->bytes_in != sent)
			abort();
		break;
	case VIOMMU_LINK_END_TRUNCATED:
	case VIOMMU_LINK_END_PROTOCOL:
		if (g.warn_lines != 1 || st->bytes_in > sent)
			abort();
		break;
	default:
		abort();
	}
}

/* msgs_served() - messages the link has received so far. */
static uint64_t msgs_served(struct viommu_link_server *srv, unsigned int id)
{
	struct viommu_link_stats st;
	uint64_t n = 0;

	if (viommu_link_server_stats(srv, id, &st, sizeof(st)))
		abort();
	for (unsigned int c = 0; c < VIOMMU_LINK_MAX_CMDS; c++)
		n += st.msgs[c];
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct viommu_link_server_config sc = { .size = sizeof(sc),
						.log = fuzz_log,
						.link_ended = link_ended };
	struct viommu_link_config lc = { .size = sizeof(lc),
					 .proto = VIOMMU_LINK_MPQEMU,
					 .name = "fuzz",
					 .poll_mode = true,
					 /* a stall mid-message: 20 ms, not 500 */
					 .peer_timeout_ms = 20 };
	struct viommu_link_stats st;
	struct viommu_mem_config mc = { .log = fuzz_log };
	struct viommu_link_server *srv;
	struct viommu_mem *mem;
	struct stub stub;
	int sv[2], fds_before = count_fds(), why;
	unsigned int id;
	size_t sent;

	g.verbose = getenv("FUZZ_MPQEMU_VERBOSE") != NULL;
	g.warn_lines = 0;
	g.end_calls = 0;
	g.end = VIOMMU_LINK_OPEN;
	if (viommu_mem_create(&mc, &mem))
		abort();
	sc.mem = mem;
	stub_init(&stub);
	if (viommu_link_server_create(&sc, &srv) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	lc.func = (struct viommu_pci_func *)&stub.f;
	lc.fd = sv[1];
	if (viommu_link_server_add(srv, &lc, &id) || id != 0)
		abort();
	sent = send_stream(sv[0], data, size);
	if (shutdown(sv[0], SHUT_WR))
		abort();
	/*
	 * Everything, the end included, has arrived: each call serves a
	 * full batch until the one that ends the link.
	 */
	for (unsigned int calls = 0;; calls++) {
		uint64_t before = msgs_served(srv, id);

		why = viommu_link_server_run_once(srv, id);
		if (why < 0 || calls > size / MPQEMU_HDR_SIZE / LINK_RUN_BATCH + 1)
			abort();
		if (why)
			break;
		if (msgs_served(srv, id) - before != LINK_RUN_BATCH)
			abort();
	}
	if (viommu_link_server_stats(srv, id, &st, sizeof(st)))
		abort();
	check_end(why, &st, sent);
	check_replies(sv[0], &st);
	if (viommu_link_server_run_once(srv, id) != why)
		abort();
	close(sv[0]);
	viommu_link_server_destroy(srv);
	if (g.end_calls != 1)
		abort();
	pci_func_destroy(&stub.f);
	viommu_mem_destroy(mem);
	if (count_fds() != fds_before)
		abort();
	return 0;
}
