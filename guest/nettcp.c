/*
 * nettcp.c - IP traffic between two virtio NICs through the stock driver.
 *
 * Both NICs sit in network namespaces of their own (netns.c), so every
 * packet between 10.13.0.1 and 10.13.0.2 crosses the NICs: the guest's
 * virtio_net driver maps each TX and RX buffer through the DMA API, and
 * with ACCESS_PLATFORM through the IOMMU under test.
 *
 *   nettcp    ping (raw ICMP echo, 5 of 5 answered), then a TCP transfer
 *             of viommu.net_mb MiB (kernel command line; default
 *             NET_MB_DEFAULT) each way in 64 KiB writes; sender and
 *             receiver hash every message and the hashes must match.
 *   netfault  nettcp, but a quarter into the first transfer the sender
 *             prints "VIOMMU-INJECT what=net-fault n=NET_FAULTS": the
 *             host makes that many packet-buffer translations of the
 *             first NIC fail (viommu-server's control FIFO); the packets
 *             hit are dropped, TCP retransmits, the transfer completes
 *             with matching hashes.  The host checks the counts.
 *   netbench  TCP throughput for viommu.bench_ms ms per case: one and
 *             four streams, both directions, 1500 B and 64 KiB writes;
 *             then UDP packets per second with 18-byte payloads (64-byte
 *             frames).  One line per case:
 *               VIOMMU-BENCH name=net-tcp dir=ab|ba streams=N msg=BYTES
 *                 bytes=N ns=N MBps=X cpu_pct=X retrans=N iommu=TYPE
 *               VIOMMU-BENCH name=net-udp dir=ab msg=18 sent=N recv=N
 *                 ns=N pps=X cpu_pct=X iommu=TYPE
 *             cpu_pct is the guest's busy share of all its CPUs
 *             (/proc/stat) over the case.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest.h"

#define NET_MB_DEFAULT 64
#define NET_FAULTS 8
#define PORT 5001
#define MAX_STREAMS 4
#define PAT_SPAN (1u << 20)
#define IO_TIMEOUT_S 30
#define UDP_PAYLOAD 18

/* One TCP connection of a transfer and what its two ends saw. */
struct stream {
	int tx, rx;          /* sender's and receiver's sockets */
	size_t msg;          /* bytes per write / per hashed message */
	uint64_t limit;      /* bytes to send (0: until the deadline) */
	uint64_t deadline;   /* now_ns() to stop at (0: none) */
	bool hash;
	uint64_t inject_at;  /* bytes sent before asking for faults (0: no) */
	const uint8_t *pat;  /* PAT_SPAN + msg bytes of pattern */
	uint64_t sent, recvd, htx, hrx;
	int tx_err, rx_err;
	uint32_t retrans;
};

/* hash_msg() - fold @n bytes at @p into @h (word-wise, then the tail). */
static uint64_t hash_msg(uint64_t h, const uint8_t *p, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 31;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h ^ n;
}

/* sender() - thread: whole messages until the limit or the deadline. */
static void *sender(void *arg)
{
	struct stream *s = arg;
	uint64_t k = 0;
	bool asked = false;

	s->htx = 0xcbf29ce484222325ull;
	while ((!s->limit || s->sent < s->limit) &&
	       (!s->deadline || now_ns() < s->deadline)) {
		const uint8_t *m = s->pat + (k++ * 4099u) % PAT_SPAN;
		size_t off = 0;

		if (s->inject_at && !asked && s->sent >= s->inject_at) {
			printf("VIOMMU-INJECT what=net-fault n=%u\n",
			       NET_FAULTS);
			fflush(stdout);
			asked = true;
		}
		while (off < s->msg) {
			ssize_t w = send(s->tx, m + off, s->msg - off,
					 MSG_NOSIGNAL);

			if (w <= 0) {
				s->tx_err = w < 0 ? errno : EPIPE;
				goto out;
			}
			off += (size_t)w;
		}
		if (s->hash)
			s->htx = hash_msg(s->htx, m, s->msg);
		s->sent += s->msg;
	}
out:
	{
		struct tcp_info ti;
		socklen_t len = sizeof(ti);

		if (!getsockopt(s->tx, IPPROTO_TCP, TCP_INFO, &ti, &len))
			s->retrans = ti.tcpi_total_retrans;
	}
	shutdown(s->tx, SHUT_WR);
	return NULL;
}

/* receiver() - thread: whole messages until the sender's end of stream. */
static void *receiver(void *arg)
{
	struct stream *s = arg;
	uint8_t *buf = malloc(s->msg);

	s->hrx = 0xcbf29ce484222325ull;
	if (!buf) {
		s->rx_err = ENOMEM;
		return NULL;
	}
	for (;;) {
		ssize_t n = recv(s->rx, buf, s->msg, MSG_WAITALL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			s->rx_err = errno;
			break;
		}
		if (n == 0)
			break;
		if ((size_t)n != s->msg) { /* the stream ended mid-message */
			s->recvd += (uint64_t)n;
			s->rx_err = EPROTO;
			break;
		}
		if (s->hash)
			s->hrx = hash_msg(s->hrx, buf, s->msg);
		s->recvd += (uint64_t)n;
	}
	free(buf);
	return NULL;
}

/* set_timeouts() - SO_RCVTIMEO and SO_SNDTIMEO of IO_TIMEOUT_S. */
static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * connect_streams() - @n TCP connections from side @from to side @to.
 * Return: 0 or -errno (the sockets made so far are in @s, -1 otherwise).
 */
static int connect_streams(const struct netpair *p, int from, int to,
			   struct stream *s, int n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(PORT),
				  .sin_addr.s_addr = p->ip[to] };
	int one = 1, err = 0;
	int l = ns_socket(p, to, AF_INET, SOCK_STREAM, 0);

	for (int i = 0; i < n; i++)
		s[i].tx = s[i].rx = -1;
	if (l < 0)
		return l;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, n)) {
		err = -errno;
		goto out;
	}
	for (int i = 0; i < n && !err; i++) {
		struct pollfd pf = { .fd = l, .events = POLLIN };

		s[i].tx = ns_socket(p, from, AF_INET, SOCK_STREAM, 0);
		if (s[i].tx < 0) {
			err = s[i].tx;
			s[i].tx = -1;
			break;
		}
		set_timeouts(s[i].tx);
		if (connect(s[i].tx, (struct sockaddr *)&sa, sizeof(sa)))
			err = -errno;
		else if (poll(&pf, 1, IO_TIMEOUT_S * 1000) != 1)
			err = -ETIMEDOUT;
		else if ((s[i].rx = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0)
			err = -errno;
		if (s[i].rx >= 0)
			set_timeouts(s[i].rx);
	}
out:
	close(l);
	return err;
}

/* close_streams() - every socket of @s[0..n). */
static void close_streams(struct stream *s, int n)
{
	for (int i = 0; i < n; i++) {
		if (s[i].tx >= 0)
			close(s[i].tx);
		if (s[i].rx >= 0)
			close(s[i].rx);
	}
}

/* cpu_ticks() - busy and total jiffies of all CPUs (/proc/stat). */
static void cpu_ticks(uint64_t *busy, uint64_t *total)
{
	char buf[512];
	unsigned long long v[8] = { 0 };

	*busy = *total = 0;
	if (read_file_str("/proc/stat", buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 4)
		return;
	for (int i = 0; i < 8; i++)
		*total += v[i];
	*busy = *total - v[3] - v[4]; /* not idle, not iowait */
}

/* The outcome of one transfer. */
struct xfer {
	uint64_t bytes, ns, retrans;
	double cpu_pct;
	bool hashes_ok;
	int err;
};

/*
 * transfer() - @n streams from side @from to side @to, each sending @limit
 * bytes or until @ms elapse, in @msg-byte writes; @hash: compare hashes;
 * @inject: ask for faults a quarter into stream 0.
 */
static void transfer(const struct netpair *p, int from, int to, int n,
		     size_t msg, uint64_t limit, unsigned ms, bool hash,
		     bool inject, const uint8_t *pat, struct xfer *x)
{
	struct stream s[MAX_STREAMS];
	pthread_t th[2 * MAX_STREAMS];
	int started = 0;
	uint64_t t0, b0, c0, b1, c1;

	memset(x, 0, sizeof(*x));
	memset(s, 0, sizeof(s));
	x->err = connect_streams(p, from, to, s, n);
	if (x->err)
		goto out;
	cpu_ticks(&b0, &c0);
	t0 = now_ns();
	for (int i = 0; i < n; i++) {
		s[i].msg = msg;
		s[i].limit = limit;
		s[i].deadline = ms ? t0 + ms * 1000000ull : 0;
		s[i].hash = hash;
		s[i].inject_at = inject && i == 0 ? limit / 4 : 0;
		s[i].pat = pat;
		if (pthread_create(&th[started], NULL, receiver, &s[i]))
			break;
		started++;
		if (pthread_create(&th[started], NULL, sender, &s[i])) {
			shutdown(s[i].tx, SHUT_RDWR);
			break;
		}
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	x->ns = now_ns() - t0;
	cpu_ticks(&b1, &c1);
	x->cpu_pct = c1 > c0 ? 100.0 * (double)(b1 - b0) / (double)(c1 - c0)
			     : 0.0;
	x->hashes_ok = true;
	if (started < 2 * n)
		x->err = -EAGAIN;
	for (int i = 0; i < n; i++) {
		x->bytes += s[i].recvd;
		x->retrans += s[i].retrans;
		if (s[i].sent != s[i].recvd || s[i].htx != s[i].hrx)
			x->hashes_ok = false;
		if (!x->err && (s[i].tx_err || s[i].rx_err))
			x->err = -(s[i].tx_err ? s[i].tx_err : s[i].rx_err);
	}
out:
	close_streams(s, n);
}

/* icmp_sum() - the Internet checksum of @n bytes. */
static uint16_t icmp_sum(const void *data, size_t n)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/*
 * ping() - @count ICMP echo requests from side 0 to side 1, each waited
 * for (1 s).  Return: replies received; *@rtt_us their mean round trip.
 */
static int ping(const struct netpair *p, int count, uint64_t *rtt_us)
{
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_addr.s_addr = p->ip[1] };
	int fd = ns_socket(p, 0, AF_INET, SOCK_RAW, IPPROTO_ICMP);
	uint16_t id = (uint16_t)getpid();
	uint64_t sum = 0;
	int got = 0;

	*rtt_us = 0;
	if (fd < 0)
		return fd;
	for (int seq = 1; seq <= count; seq++) {
		uint8_t pkt[64], buf[256];
		struct icmphdr *h = (struct icmphdr *)pkt;
		uint64_t t0 = now_ns(), end = t0 + 1000000000ull;

		memset(pkt, 0, sizeof(pkt));
		h->type = ICMP_ECHO;
		h->un.echo.id = htons(id);
		h->un.echo.sequence = htons((uint16_t)seq);
		fill_pattern(pkt + sizeof(*h), sizeof(pkt) - sizeof(*h),
			     (uint64_t)seq);
		h->checksum = icmp_sum(pkt, sizeof(pkt));
		if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&to,
			   sizeof(to)) != (ssize_t)sizeof(pkt))
			continue;
		while (now_ns() < end) {
			struct pollfd pf = { .fd = fd, .events = POLLIN };
			const struct iphdr *ip = (const struct iphdr *)buf;
			const struct icmphdr *r;
			ssize_t n;

			if (poll(&pf, 1, 100) != 1)
				continue;
			n = recv(fd, buf, sizeof(buf), 0);
			if (n < (ssize_t)sizeof(*ip) ||
			    n < (ssize_t)(ip->ihl * 4u + sizeof(pkt)))
				continue;
			r = (const struct icmphdr *)(buf + ip->ihl * 4u);
			if (r->type != ICMP_ECHOREPLY ||
			    r->un.echo.id != htons(id) ||
			    r->un.echo.sequence != htons((uint16_t)seq) ||
			    memcmp(r + 1, pkt + sizeof(*h),
				   sizeof(pkt) - sizeof(*h)))
				continue;
			sum += (now_ns() - t0) / 1000;
			got++;
			break;
		}
	}
	close(fd);
	*rtt_us = got ? sum / (uint64_t)got : 0;
	return got;
}

/* net_mb() - viommu.net_mb= from the kernel command line, or the default. */
static unsigned net_mb(void)
{
	char line[4096];
	const char *p;
	unsigned v;

	if (read_file_str("/proc/cmdline", line, sizeof(line)) < 0)
		return NET_MB_DEFAULT;
	p = strstr(line, "viommu.net_mb=");
	if (!p || sscanf(p + strlen("viommu.net_mb="), "%u", &v) != 1 ||
	    !v || v > 4096)
		return NET_MB_DEFAULT;
	return v;
}

/* pattern() - the senders' pattern: PAT_SPAN + 64 KiB seeded bytes. */
static uint8_t *pattern(void)
{
	uint8_t *pat = malloc(PAT_SPAN + 65536);

	if (pat)
		fill_pattern(pat, PAT_SPAN + 65536, g_opts->seed * 7 + 13);
	return pat;
}

/* tcp_scenario() - nettcp and netfault (@inject). */
static int tcp_scenario(struct result *r, bool inject)
{
	static const char *const dirs[] = { "ab", "ba" };
	struct netpair p;
	uint64_t rtt, bytes = (uint64_t)net_mb() << 20;
	uint8_t *pat = NULL;
	int got;

	if (pair_setup(r, &p))
		goto out;
	usleep(300000); /* the links come up */
	got = ping(&p, 5, &rtt);
	res_kv(r, "ping", "%d/5", got < 0 ? 0 : got);
	res_kv(r, "rtt_us", "%" PRIu64, rtt);
	if (!expect(r, got == 5, "ping %s -> %s: %d of 5 answered",
		    p.n[0].name, p.n[1].name, got))
		goto out;
	pat = pattern();
	if (!expect(r, pat != NULL, "no memory"))
		goto out;
	res_kv(r, "mib", "%" PRIu64, bytes >> 20);
	for (int d = 0; d < 2; d++) {
		struct xfer x;
		char key[24];

		transfer(&p, d, 1 - d, 1, 65536, bytes, 0, true,
			 inject && d == 0, pat, &x);
		snprintf(key, sizeof(key), "MBps_%s", dirs[d]);
		res_kv(r, key, "%.1f", x.ns ? (double)x.bytes * 1e3 /
			(double)x.ns : 0.0);
		snprintf(key, sizeof(key), "retrans_%s", dirs[d]);
		res_kv(r, key, "%" PRIu64, x.retrans);
		if (!expect(r, x.err == 0, "TCP %s: %s after %" PRIu64 " B",
			    dirs[d], strerror(-x.err), x.bytes) ||
		    !expect(r, x.bytes == bytes && x.hashes_ok, "TCP %s: %"
			    PRIu64 " of %" PRIu64 " B arrived, hashes %s",
			    dirs[d], x.bytes, bytes, x.hashes_ok ? "match" :
			    "differ"))
			goto out;
		r->bytes_verified += x.bytes;
	}
	res_kv(r, "hashes", "match");
out:
	free(pat);
	pair_teardown(&p);
	return 0;
}

/* sc_nettcp() - ping and a verified TCP transfer each way. */
int sc_nettcp(struct result *r)
{
	return tcp_scenario(r, false);
}

/* sc_netfault() - the same with faults injected on the first NIC. */
int sc_netfault(struct result *r)
{
	return tcp_scenario(r, true);
}

/*
 * udp_pps() - small UDP datagrams from side 0 to side 1 for @ms; one
 * VIOMMU-BENCH line.
 */
static int udp_pps(const struct netpair *p, unsigned ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(PORT + 100),
				  .sin_addr.s_addr = p->ip[1] };
	int tx = ns_socket(p, 0, AF_INET, SOCK_DGRAM, 0);
	int rx = ns_socket(p, 1, AF_INET, SOCK_DGRAM, 0);
	uint64_t sent = 0, recvd = 0, t0, end, ns, b0, c0, b1, c1;
	uint8_t buf[64] = { 0 };
	int err = 0;

	if (tx < 0 || rx < 0 || bind(rx, (struct sockaddr *)&sa, sizeof(sa)) ||
	    connect(tx, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		goto out;
	}
	cpu_ticks(&b0, &c0);
	t0 = now_ns();
	end = t0 + ms * 1000000ull;
	while (now_ns() < end) {
		/* a burst, then whatever has arrived */
		for (int i = 0; i < 32; i++)
			if (send(tx, buf, UDP_PAYLOAD, MSG_DONTWAIT) ==
			    UDP_PAYLOAD)
				sent++;
		while (recv(rx, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			recvd++;
	}
	/* stragglers for 200 ms, not counted in the time */
	ns = now_ns() - t0;
	cpu_ticks(&b1, &c1);
	end = now_ns() + 200000000ull;
	while (now_ns() < end) {
		struct pollfd pf = { .fd = rx, .events = POLLIN };

		if (poll(&pf, 1, 20) == 1 &&
		    recv(rx, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			recvd++;
	}
	printf("VIOMMU-BENCH name=net-udp dir=ab msg=%d sent=%" PRIu64
	       " recv=%" PRIu64 " ns=%" PRIu64 " pps=%.0f cpu_pct=%.1f "
	       "iommu=%s\n", UDP_PAYLOAD, sent, recvd, ns,
	       ns ? (double)recvd * 1e9 / (double)ns : 0.0,
	       c1 > c0 ? 100.0 * (double)(b1 - b0) / (double)(c1 - c0) : 0.0,
	       p->n[0].dtype);
	fflush(stdout);
out:
	if (tx >= 0)
		close(tx);
	if (rx >= 0)
		close(rx);
	return err;
}

/* sc_netbench() - TCP throughput and UDP packet rates between the NICs. */
int sc_netbench(struct result *r)
{
	static const size_t msgs[] = { 1500, 65536 };
	static const int streams[] = { 1, 4 };
	static const char *const dirs[] = { "ab", "ba" };
	struct netpair p;
	uint8_t *pat = NULL;
	unsigned ms = g_opts->bench_ms;
	int cases = 0, err;

	if (pair_setup(r, &p))
		goto out;
	usleep(300000);
	pat = pattern();
	if (!expect(r, pat != NULL, "no memory"))
		goto out;
	for (size_t m = 0; m < 2; m++)
		for (size_t s = 0; s < 2; s++)
			for (int d = 0; d < 2; d++) {
				struct xfer x;

				transfer(&p, d, 1 - d, streams[s], msgs[m], 0,
					 ms, false, false, pat, &x);
				if (!expect(r, x.err == 0, "TCP %s %d x %zu B:"
					    " %s", dirs[d], streams[s],
					    msgs[m], strerror(-x.err)))
					goto out;
				printf("VIOMMU-BENCH name=net-tcp dir=%s "
				       "streams=%d msg=%zu bytes=%" PRIu64
				       " ns=%" PRIu64 " MBps=%.1f "
				       "cpu_pct=%.1f retrans=%" PRIu64
				       " iommu=%s\n", dirs[d], streams[s],
				       msgs[m], x.bytes, x.ns,
				       x.ns ? (double)x.bytes * 1e3 /
						      (double)x.ns : 0.0,
				       x.cpu_pct, x.retrans, p.n[d].dtype);
				fflush(stdout);
				cases++;
			}
	err = udp_pps(&p, ms);
	if (expect(r, err == 0, "UDP: %s", strerror(-err)))
		cases++;
	res_kv(r, "cases", "%d", cases);
out:
	free(pat);
	pair_teardown(&p);
	return 0;
}
