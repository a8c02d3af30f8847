/*
 * test_vfio_user_link.c - the life of vfio-user links in the link server
 * (src/link/link.c around src/link/vfio_user.c): malformed framing and
 * hangups end only their own link, with the expected reason and one
 * "link closed" line, while the other link still answers; poll mode
 * served by run_once(); stop, also of a link blocked in the middle of a
 * message; the configuration size rule and refused adds; links that
 * listen on a path.  The fixture is in vfu_fixture.h.
 */
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "vfu_fixture.h"

#include <sys/stat.h>
#include "link/link.h"

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
	/* a reply shorter than its header cannot be framed */
	return bad_hdr(x, VFU_DMA_READ, 8, VFU_T_REPLY);
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
	static struct stopper s; /* a hung stop is left behind with it */
	uint8_t h[VFU_HDR_SIZE];
	uint64_t before;
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	before = stats(&x, L_DMA).bytes_in;
	put_hdr(h, 9, VFU_DEVICE_GET_INFO, 32, 0);
	REQUIRE(send_raw(x.peer[L_DMA], h, 8, NULL, 0) == 0);
	/* The link has half a header and waits for the rest. */
	REQUIRE(wait_bytes_in(&x, L_DMA, before + 8));
	REQUIRE(stopper_start(&s, x.srv) == 0);
	REQUIRE(stopper_wait(&s, WAIT_MS)); /* (else the test failed) */
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

/* connect_path() - a client socket connected to @path, or -1. */
static int connect_path(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (c >= 0 && connect(c, (struct sockaddr *)&sa, sizeof(sa))) {
		close(c);
		c = -1;
	}
	return c;
}

/* L11 (issue 17 item 5): path sockets are 0600 unless asked otherwise. */
TEST(path_socket_mode_default_0600_or_configured)
{
	struct viommu_link_config lc = { .size = sizeof(lc),
					 .proto = VIOMMU_LINK_VFIO_USER,
					 .fd = -1 };
	char p0[64], p1[64];
	struct stat st;
	unsigned int id;
	struct fx x;

	REQUIRE(fx_init(&x, FX_NO_LINKS) == 0);
	link_path(p0, sizeof(p0), 3);
	link_path(p1, sizeof(p1), 4);
	lc.func = (struct viommu_pci_func *)x.f[L_DMA];
	lc.path = p0;
	REQUIRE(viommu_link_server_add(x.srv, &lc, &id) == 0);
	REQUIRE(stat(p0, &st) == 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(st.st_mode & 0777, 0600);
	lc.func = (struct viommu_pci_func *)x.f[L_VP];
	lc.path = p1;
	lc.path_mode = 01000; /* not a permission: refused, nothing bound */
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EINVAL);
	CHECK_EQ(access(p1, F_OK), -1);
	lc.path_mode = 0660;
	REQUIRE(viommu_link_server_add(x.srv, &lc, &id) == 0);
	REQUIRE(stat(p1, &st) == 0);
	CHECK_EQ(st.st_mode & 0777, 0660);
	CHECK(fx_fini(&x));
}

/* L12 (issue 17 item 5): SO_PEERCRED against the expected user. */
TEST(peer_uid_checked_on_path_and_fd_links)
{
	struct viommu_link_config lc = { .size = sizeof(lc),
					 .proto = VIOMMU_LINK_VFIO_USER,
					 .fd = -1, .check_peer_uid = true };
	char p0[64];
	unsigned int id;
	struct fx x;
	uint8_t b;
	int c, sv[2];

	REQUIRE(fx_init(&x, FX_NO_LINKS) == 0);
	link_path(p0, sizeof(p0), 5);
	/* a path link expecting another user: our connection is closed */
	lc.func = (struct viommu_pci_func *)x.f[L_DMA];
	lc.path = p0;
	lc.peer_uid = (uint32_t)getuid() + 1;
	REQUIRE(viommu_link_server_add(x.srv, &lc, &x.id[L_DMA]) == 0);
	c = connect_path(p0);
	REQUIRE(c >= 0);
	CHECK(wait_readable(c, WAIT_MS));
	CHECK_EQ(read(c, &b, 1), 0); /* EOF: refused */
	close(c);
	CHECK_EQ(access(p0, F_OK), 0); /* still listening */
	CHECK(!stats(&x, L_DMA).connected);
	CHECK_EQ(stats(&x, L_DMA).end, VIOMMU_LINK_OPEN);
	CHECK_EQ(cap_get(&cap.warn_lines), 1); /* (and syncs with the log) */
	CHECK(strstr(cap.last, "connection refused: peer uid") != NULL);
	/* a link given its socket: refused at add, the fd closed */
	lc.path = NULL;
	lc.func = (struct viommu_pci_func *)x.f[L_VP];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	lc.fd = sv[1];
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EACCES);
	CHECK_EQ(fcntl(sv[1], F_GETFD), -1);
	close(sv[0]);
	/* our own uid: served */
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	lc.fd = sv[1];
	lc.peer_uid = (uint32_t)getuid();
	x.peer[L_VP] = sv[0];
	REQUIRE(viommu_link_server_add(x.srv, &lc, &x.id[L_VP]) == 0);
	CHECK_EQ(negotiate(&x, L_VP, NULL), 0);
	CHECK(fx_fini(&x));
	CHECK_EQ(access(p0, F_OK), -1);
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

/*
 * A flooding client cannot hold the embedder's loop: one run_once() serves
 * at most LINK_RUN_BATCH messages (the poll fd stays readable for the
 * rest), and once stop() is called no further message is served.
 */
TEST(poll_mode_run_once_serves_a_bounded_batch)
{
	uint8_t p[VFU_INFO_SIZE] = { VFU_INFO_SIZE };
	const unsigned int n = 3 * LINK_RUN_BATCH + 5;
	struct viommu_link_stats st;
	unsigned int id, i;
	struct fx x;
	int pfd;

	REQUIRE(fx_init(&x, FX_POLL_DMA) == 0);
	id = x.id[L_DMA];
	pfd = viommu_link_server_poll_fd(x.srv, id);
	REQUIRE(send_cmd(&x, L_DMA, VFU_VERSION, 0, "\0\0\0\0", 4, NULL,
			 0) >= 0);
	REQUIRE(viommu_link_server_run_once(x.srv, id) == 0);
	for (i = 0; i < n; i++) /* posted: no replies to read back */
		REQUIRE(send_cmd(&x, L_DMA, VFU_DEVICE_GET_INFO, VFU_F_NO_REPLY,
				 p, sizeof(p), NULL, 0) >= 0);
	CHECK_EQ(viommu_link_server_run_once(x.srv, id), 0);
	st = stats(&x, L_DMA);
	CHECK_U64(st.msgs[VFU_DEVICE_GET_INFO], LINK_RUN_BATCH);
	CHECK(wait_readable(pfd, 0)); /* the rest is still there */
	CHECK_EQ(viommu_link_server_run_once(x.srv, id), 0);
	CHECK_U64(stats(&x, L_DMA).msgs[VFU_DEVICE_GET_INFO],
		  2 * LINK_RUN_BATCH);
	viommu_link_server_stop(x.srv);
	CHECK_EQ(viommu_link_server_run_once(x.srv, id),
		 VIOMMU_LINK_END_STOPPED);
	CHECK_U64(stats(&x, L_DMA).msgs[VFU_DEVICE_GET_INFO],
		  2 * LINK_RUN_BATCH);
	CHECK(fx_fini(&x));
}

/* trickle - a client thread sending a message a byte every 150 ms. */
struct trickle {
	int sock;
	const uint8_t *m;
	size_t len;
	int stop; /* atomic */
};

static void *trickle_main(void *arg)
{
	struct trickle *t = arg;
	const struct timespec gap = { 0, 150 * 1000 * 1000 };

	for (size_t i = 1; i < t->len &&
	     !__atomic_load_n(&t->stop, __ATOMIC_RELAXED); i++) {
		nanosleep(&gap, NULL);
		if (send(t->sock, t->m + i, 1, MSG_NOSIGNAL) != 1)
			break;
	}
	return NULL;
}

/*
 * A client trickling one message a byte at a time gets LINK_STALL_MS for
 * the whole message, not per wait: run_once() ends the link as truncated
 * after about that long instead of following the trickle (32 bytes at
 * 150 ms would take 4.7 s).
 */
TEST(poll_mode_trickled_message_has_one_deadline)
{
	uint8_t m[VFU_HDR_SIZE + VFU_INFO_SIZE] = { 0 };
	struct trickle t = { .m = m, .len = sizeof(m) };
	struct timespec t0, t1;
	pthread_t th;
	unsigned int id;
	struct fx x;
	long ms;
	int r;

	REQUIRE(fx_init(&x, FX_POLL_DMA) == 0);
	id = x.id[L_DMA];
	REQUIRE(send_cmd(&x, L_DMA, VFU_VERSION, 0, "\0\0\0\0", 4, NULL,
			 0) >= 0);
	REQUIRE(viommu_link_server_run_once(x.srv, id) == 0);
	put_hdr(m, 7, VFU_DEVICE_GET_INFO, sizeof(m), 0);
	put32(m + VFU_HDR_SIZE, VFU_INFO_SIZE);
	REQUIRE(send_raw(x.peer[L_DMA], m, 1, NULL, 0) == 0);
	t.sock = x.peer[L_DMA];
	REQUIRE(pthread_create(&th, NULL, trickle_main, &t) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = viommu_link_server_run_once(x.srv, id);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	__atomic_store_n(&t.stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	CHECK_EQ(r, VIOMMU_LINK_END_TRUNCATED);
	CHECK(ms < 4 * LINK_STALL_MS);
	CHECK(fx_fini(&x));
}

/* flood - a client thread sending posted messages until told to stop. */
struct flood {
	int sock;
	int stop; /* atomic */
};

static void *flood_main(void *arg)
{
	struct flood *f = arg;
	uint8_t m[VFU_HDR_SIZE + VFU_INFO_SIZE] = { 0 };

	put_hdr(m, 1, VFU_DEVICE_GET_INFO, sizeof(m), VFU_F_NO_REPLY);
	put32(m + VFU_HDR_SIZE, VFU_INFO_SIZE);
	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED))
		if (send(f->sock, m, sizeof(m), MSG_NOSIGNAL) < 0 &&
		    errno != EAGAIN && errno != EINTR)
			break;
	return NULL;
}

/*
 * A link that spins for its next message (poll_us) and a client that
 * never lets the socket go empty: stop() must still end the link at once
 * (the spin path looks at the stop eventfd too).
 */
TEST(stop_ends_a_spinning_link_under_flood)
{
	struct flood fl = { .sock = -1 };
	struct stopper st;
	pthread_t th;
	struct fx x;

	REQUIRE(fx_init(&x, FX_SPIN) == 0);
	fl.sock = x.peer[L_DMA];
	REQUIRE(pthread_create(&th, NULL, flood_main, &fl) == 0);
	while (stats(&x, L_DMA).msgs[VFU_DEVICE_GET_INFO] < 1000)
		sched_yield();
	REQUIRE(stopper_start(&st, x.srv) == 0);
	CHECK(stopper_wait(&st, 2000));
	__atomic_store_n(&fl.stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	if (!st.done)
		stopper_wait(&st, WAIT_MS);
	CHECK_EQ(cap_get(&cap.end[x.id[L_DMA]]), VIOMMU_LINK_END_STOPPED);
	CHECK(fx_fini(&x));
}

/*
 * stop() may be called from two threads at once: each returns once every
 * link thread has been joined (once), and each link ends once.
 */
TEST(two_concurrent_stops)
{
	struct stopper a, b;
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	REQUIRE(stopper_start(&a, x.srv) == 0);
	REQUIRE(stopper_start(&b, x.srv) == 0);
	CHECK(stopper_wait(&a, WAIT_MS));
	CHECK(stopper_wait(&b, WAIT_MS));
	CHECK_EQ(viommu_link_server_open_links(x.srv), 0);
	CHECK_EQ(cap_get(&cap.end_calls[x.id[L_DMA]]), 1);
	CHECK_EQ(cap_get(&cap.end_calls[x.id[L_VP]]), 1);
	CHECK(fx_fini(&x));
}

TEST_MAIN()
