/*
 * test_mpqemu_bad.c - malformed x-pci-proxy-dev messages (part of the
 * test_mpqemu program; fixture in mpqemu_fixture.h).  Each case breaks
 * link 0 and checks that it alone ended, with one log line, that link 1
 * still answers, and that no fd leaked (the process's fd count returns to
 * what it was before the fixture); in thread mode and in poll mode.
 */
#include "mpqemu_fixture.h"

/* ---- tests: malformed messages -------------------------------------- */

/*
 * struct bad_case - one way to break link 0.  @send does the breaking on
 * @sock; @extra_fds: fds it created, closed after the link ended.
 */
struct bad_case {
	const char *name;
	int (*send)(int sock, int *extra, int *nextra);
	int end;
};

static int bad_short_header(int s, int *e, int *n)
{
	(void)e;
	(void)n;
	if (send_raw(s, "\x03\0\0\0\0\0\0\0\x0c", 9, NULL, 0))
		return -1;
	return shutdown(s, SHUT_WR);
}

static int bad_mid_payload(int s, int *e, int *n)
{
	struct bar_msg m = { BAR0_GPA, 0, 4, 1, { 0 } };

	(void)e;
	(void)n;
	if (send_msg(s, MPQEMU_BAR_READ, sizeof(m), &m, 10, NULL, 0))
		return -1;
	return shutdown(s, SHUT_WR);
}

static int bad_size(int s, int *e, int *n)
{
	struct cfg_msg m = { 0, 0, 4 };

	(void)e;
	(void)n;
	return send_msg(s, MPQEMU_PCI_CFGREAD, 8, &m, 8, NULL, 0);
}

static int bad_unknown_cmd(int s, int *e, int *n)
{
	(void)e;
	(void)n;
	return send_msg(s, 8, 0, NULL, 0, NULL, 0);
}

static int bad_negative_cmd(int s, int *e, int *n)
{
	(void)e;
	(void)n;
	return send_msg(s, -1, 0, NULL, 0, NULL, 0);
}

static int bad_ret_from_peer(int s, int *e, int *n)
{
	uint64_t v = 0;

	(void)e;
	(void)n;
	return send_msg(s, MPQEMU_RET, 8, &v, 8, NULL, 0);
}

static int bad_too_big(int s, int *e, int *n)
{
	uint8_t junk[256] = { 0 };

	(void)e;
	(void)n;
	return send_msg(s, MPQEMU_SYNC_SYSMEM, 4096, junk, sizeof(junk),
			NULL, 0);
}

static int new_eventfds(int *e, int *n, int k)
{
	for (int i = 0; i < k; i++) {
		e[*n] = eventfd(0, EFD_CLOEXEC);
		if (e[*n] < 0)
			return -1;
		(*n)++;
	}
	return 0;
}

static int bad_irqfd_one_fd(int s, int *e, int *n)
{
	if (new_eventfds(e, n, 1))
		return -1;
	return send_msg(s, MPQEMU_SET_IRQFD, 0, NULL, 0, e, 1);
}

static int bad_irqfd_three_fds(int s, int *e, int *n)
{
	if (new_eventfds(e, n, 3))
		return -1;
	return send_msg(s, MPQEMU_SET_IRQFD, 0, NULL, 0, e, 3);
}

static int bad_irqfd_not_eventfd(int s, int *e, int *n)
{
	if (new_eventfds(e, n, 1) || pipe(e + 1))
		return -1;
	*n = 3;
	return send_msg(s, MPQEMU_SET_IRQFD, 0, NULL, 0, e, 2);
}

static int bad_cfg_with_fd(int s, int *e, int *n)
{
	struct cfg_msg m = { 0, 0, 4 };

	if (new_eventfds(e, n, 1))
		return -1;
	return send_msg(s, MPQEMU_PCI_CFGREAD, sizeof(m), &m, sizeof(m), e,
			1);
}

static int bad_cfg_len(int s, int *e, int *n)
{
	struct cfg_msg m = { 0, 0, 3 };

	(void)e;
	(void)n;
	return send_msg(s, MPQEMU_PCI_CFGWRITE, sizeof(m), &m, sizeof(m),
			NULL, 0);
}

static int bad_cfg_past_end(int s, int *e, int *n)
{
	struct cfg_msg m = { 0xfe, 0, 4 };

	(void)e;
	(void)n;
	return send_msg(s, MPQEMU_PCI_CFGREAD, sizeof(m), &m, sizeof(m),
			NULL, 0);
}

static int bad_bar_size(int s, int *e, int *n)
{
	struct bar_msg m = { BAR0_GPA, 0, 3, 1, { 0 } };

	(void)e;
	(void)n;
	return send_msg(s, MPQEMU_BAR_READ, sizeof(m), &m, sizeof(m), NULL, 0);
}

static int bad_bar_memory_flag(int s, int *e, int *n)
{
	struct bar_msg m = { BAR0_GPA, 0, 4, 2, { 0 } };

	(void)e;
	(void)n;
	return send_msg(s, MPQEMU_BAR_WRITE, sizeof(m), &m, sizeof(m), NULL, 0);
}

static int bad_reset_with_fd(int s, int *e, int *n)
{
	if (new_eventfds(e, n, 1))
		return -1;
	return send_msg(s, MPQEMU_DEVICE_RESET, 0, NULL, 0, e, 1);
}

static int bad_sysmem_no_fd(int s, int *e, int *n)
{
	struct sysmem_msg m = { .gpa = { 0 } };

	(void)e;
	(void)n;
	m.size[0] = 0x1000;
	return sysmem(s, &m, NULL, 0);
}

static int bad_sysmem_region_without_fd(int s, int *e, int *n)
{
	struct sysmem_msg m = { .gpa = { 0 } };

	e[0] = make_memfd(0x2000, "x");
	*n = 1;
	m.size[0] = 0x1000;
	m.gpa[1] = 0x1000;
	m.size[1] = 0x1000;
	return sysmem(s, &m, e, 1);
}

static int bad_sysmem_zero_size(int s, int *e, int *n)
{
	struct sysmem_msg m = { .gpa = { 0 } };

	e[0] = make_memfd(0x2000, "x");
	*n = 1;
	return sysmem(s, &m, e, 1);
}

static int bad_sysmem_wraps(int s, int *e, int *n)
{
	struct sysmem_msg m = { .gpa = { 0 } };

	e[0] = make_memfd(0x2000, "x");
	*n = 1;
	m.gpa[0] = 0xfffffffffffff000ull;
	m.size[0] = 0x2000;
	return sysmem(s, &m, e, 1);
}

static int bad_sysmem_too_many_fds(int s, int *e, int *n)
{
	struct sysmem_msg m = { .gpa = { 0 } };

	for (int i = 0; i < 20; i++) {
		e[i] = make_memfd(0x1000, "x");
		if (i < 8) {
			m.gpa[i] = 0x1000ull * i;
			m.size[i] = 0x1000;
		}
	}
	*n = 20;
	return sysmem(s, &m, e, 20);
}

static int bad_sysmem_nine_fds(int s, int *e, int *n)
{
	struct sysmem_msg m = { .gpa = { 0 } };

	for (int i = 0; i < 9; i++) {
		e[i] = make_memfd(0x1000, "x");
		if (i < 8) {
			m.gpa[i] = 0x1000ull * i;
			m.size[i] = 0x1000;
		}
	}
	*n = 9;
	return sysmem(s, &m, e, 9);
}

static int bad_sysmem_file_too_small(int s, int *e, int *n)
{
	struct sysmem_msg m = { .gpa = { 0 } };

	e[0] = make_memfd(0x1000, "x");
	*n = 1;
	m.size[0] = 0x100000;
	return sysmem(s, &m, e, 1);
}

/* L10 (issue 17): a RAM file the peer could still truncate: refused. */
static int bad_sysmem_unsealed(int s, int *e, int *n)
{
	struct sysmem_msg m = { .gpa = { 0 } };

	e[0] = memfd_create("unsealed", MFD_CLOEXEC);
	if (e[0] < 0 || ftruncate(e[0], 0x1000))
		return -1;
	*n = 1;
	m.size[0] = 0x1000;
	return sysmem(s, &m, e, 1);
}

static int bad_sysmem_not_mappable(int s, int *e, int *n)
{
	struct sysmem_msg m = { .gpa = { 0 } };

	if (new_eventfds(e, n, 1))
		return -1;
	m.size[0] = 0x1000;
	return sysmem(s, &m, e, 1);
}

static int bad_fds_mid_payload(int s, int *e, int *n)
{
	struct cfg_msg m = { 0, 0, 4 };
	uint8_t hdr[16] = { MPQEMU_PCI_CFGREAD, 0, 0, 0, 0, 0, 0, 0, 12 };

	if (new_eventfds(e, n, 1))
		return -1;
	if (send_raw(s, hdr, sizeof(hdr), NULL, 0))
		return -1;
	return send_raw(s, &m, sizeof(m), e, 1);
}

static const struct bad_case bad_cases[] = {
	{ "short header", bad_short_header, VIOMMU_LINK_END_TRUNCATED },
	{ "peer closed mid-payload", bad_mid_payload,
	  VIOMMU_LINK_END_TRUNCATED },
	{ "bad size", bad_size, VIOMMU_LINK_END_PROTOCOL },
	{ "unknown command", bad_unknown_cmd, VIOMMU_LINK_END_PROTOCOL },
	{ "negative command", bad_negative_cmd, VIOMMU_LINK_END_PROTOCOL },
	{ "RET from peer", bad_ret_from_peer, VIOMMU_LINK_END_PROTOCOL },
	{ "payload too big", bad_too_big, VIOMMU_LINK_END_PROTOCOL },
	{ "SET_IRQFD one fd", bad_irqfd_one_fd, VIOMMU_LINK_END_PROTOCOL },
	{ "SET_IRQFD three fds", bad_irqfd_three_fds,
	  VIOMMU_LINK_END_PROTOCOL },
	{ "SET_IRQFD pipe", bad_irqfd_not_eventfd, VIOMMU_LINK_END_PROTOCOL },
	{ "CFGREAD with fd", bad_cfg_with_fd, VIOMMU_LINK_END_PROTOCOL },
	{ "CFG len 3", bad_cfg_len, VIOMMU_LINK_END_PROTOCOL },
	{ "CFG past end", bad_cfg_past_end, VIOMMU_LINK_END_PROTOCOL },
	{ "BAR size 3", bad_bar_size, VIOMMU_LINK_END_PROTOCOL },
	{ "BAR memory 2", bad_bar_memory_flag, VIOMMU_LINK_END_PROTOCOL },
	{ "RESET with fd", bad_reset_with_fd, VIOMMU_LINK_END_PROTOCOL },
	{ "SYSMEM no fd", bad_sysmem_no_fd, VIOMMU_LINK_END_PROTOCOL },
	{ "SYSMEM region without fd", bad_sysmem_region_without_fd,
	  VIOMMU_LINK_END_PROTOCOL },
	{ "SYSMEM zero size", bad_sysmem_zero_size, VIOMMU_LINK_END_PROTOCOL },
	{ "SYSMEM wraps", bad_sysmem_wraps, VIOMMU_LINK_END_PROTOCOL },
	{ "SYSMEM 20 fds", bad_sysmem_too_many_fds, VIOMMU_LINK_END_PROTOCOL },
	{ "SYSMEM 9 fds", bad_sysmem_nine_fds, VIOMMU_LINK_END_PROTOCOL },
	{ "SYSMEM file too small", bad_sysmem_file_too_small,
	  VIOMMU_LINK_END_PROTOCOL },
	{ "SYSMEM eventfd", bad_sysmem_not_mappable, VIOMMU_LINK_END_PROTOCOL },
	{ "SYSMEM unsealed memfd", bad_sysmem_unsealed,
	  VIOMMU_LINK_END_PROTOCOL },
	{ "fds in the payload", bad_fds_mid_payload, VIOMMU_LINK_END_PROTOCOL },
};

/*
 * run_bad_case() - break link 0 one way; everything else must hold.  In
 * @poll_mode the test serves the links itself with run_once().
 */
static void run_bad_case(const struct bad_case *c, bool poll_mode)
{
	struct viommu_link_stats st;
	struct fx x;
	int extra[32], nextra = 0, lines;

	printf("# case: %s%s\n", c->name, poll_mode ? " (poll mode)" : "");
	REQUIRE(fx_init(&x, poll_mode) == 0);
	REQUIRE(fx_alive(&x, 0) && fx_alive(&x, 1));
	REQUIRE(c->send(x.peer[0], extra, &nextra) == 0);
	CHECK_EQ(fx_wait_end(&x, 0), c->end);
	for (int i = 0; i < nextra; i++)
		close(extra[i]);
	lines = warn_lines();
	CHECK_EQ(lines, 1);
	if (lines && !strstr(cap.last, "mpqemu t0"))
		printf("#   wrong link in: %s\n", cap.last);
	CHECK(strstr(cap.last, "mpqemu t0") != NULL);
	/* The broken link's socket is closed; the other one goes on. */
	CHECK(!fx_alive(&x, 0));
	CHECK(fx_alive(&x, 1));
	CHECK_EQ(end_of(1), VIOMMU_LINK_OPEN);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 1);
	REQUIRE(get_stats(x.srv, x.id[0], &st) == 0);
	CHECK_EQ(st.end, c->end);
	CHECK(fx_fini(&x));
	CHECK_EQ(end_calls(0), 1);
}

/* run_bad_cases() - every bad case, naming the ones that failed. */
static void run_bad_cases(bool poll_mode)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		int before = test_failed_checks;

		run_bad_case(&bad_cases[i], poll_mode);
		if (test_failed_checks != before)
			printf("#   ^ failed: %s\n", bad_cases[i].name);
	}
}

TEST(malformed_messages_close_only_their_link)
{
	run_bad_cases(false);
}

TEST(malformed_messages_close_only_their_poll_link)
{
	run_bad_cases(true);
}
