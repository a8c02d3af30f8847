/*
 * test_mpqemu.c - the x-pci-proxy-dev protocol (src/link/mpqemu.c) served
 * by the link server (include/viommu/link.h, VIOMMU_LINK_MPQEMU) against
 * a fake QEMU on the other end of socketpair()s.
 *
 * Each test builds the fixture of mpqemu_fixture.h: guest memory, a
 * server, and two small test PCI functions on two links, served by link
 * threads or, in poll mode, by the test itself.  This file holds normal
 * traffic (configuration, BARs, SYNC_SYSMEM, irqfds, reset, hang-up, stop,
 * poll mode, path sockets, refused links); malformed messages are in
 * test_mpqemu_bad.c, part of the same program.
 * Waiting for a link to end uses a condition variable (thread mode) or
 * poll() on the link's poll fd (poll mode); their timeouts only turn a
 * hang into a failure.
 */
#include "mpqemu_fixture.h"

/* ---- tests: normal traffic ------------------------------------------ */

TEST(config_probe_like_qemu)
{
	struct fx x;
	int s;

	REQUIRE(fx_init(&x, false) == 0);
	s = x.peer[0];
	CHECK_U64(cfg(s, false, PCI_VENDOR_ID, 0, 2), 0x1234);
	CHECK_U64(cfg(s, false, PCI_DEVICE_ID, 0, 2), 0xabcd);
	CHECK_U64(cfg(s, false, PCI_SUBSYSTEM_ID, 0, 2), 0x1100);
	/* QEMU's BAR sizing: read, write ones, read, restore. */
	CHECK_U64(cfg(s, false, PCI_BAR0, 0, 4), 0);
	CHECK_U64(cfg(s, true, PCI_BAR0, 0xffffffff, 4), 0);
	CHECK_U64(cfg(s, false, PCI_BAR0, 0, 4), 0xfffff000);
	CHECK_U64(cfg(s, true, PCI_BAR0 + 4, 0xffffffff, 4), 0);
	CHECK_U64(cfg(s, false, PCI_BAR0 + 4, 0, 4), 0xfffffff1);
	CHECK_U64(cfg(s, false, PCI_BAR0 + 8, 0, 4), 0);
	/* The last byte of config space is reachable. */
	CHECK_U64(cfg(s, false, 0xff, 0, 1), 0);
	CHECK(fx_fini(&x));
	CHECK_EQ(warn_lines(), 0);
}

TEST(bar_round_trip)
{
	struct fx x;
	struct viommu_link_stats st;
	int s;

	REQUIRE(fx_init(&x, false) == 0);
	s = x.peer[0];
	/* Decoding off: unclaimed, all ones of the access size. */
	CHECK_U64(bar(s, false, BAR0_GPA, 0, 4, true), 0xffffffff);
	enable_bars(s);
	CHECK_U64(bar(s, true, BAR0_GPA + 0x10, 0x1122334455667788ull, 8,
		      true), 0);
	CHECK_U64(bar(s, false, BAR0_GPA + 0x10, 0, 8, true),
		  0x1122334455667788ull);
	CHECK_U64(bar(s, false, BAR0_GPA + 0x14, 0, 2, true), 0x3344);
	CHECK_U64(bar(s, false, BAR0_GPA + 0x17, 0, 1, true), 0x11);
	CHECK_EQ(x.dev[0].mem[0x10], 0x88);
	/* I/O space goes to the I/O BAR, not the memory BAR. */
	CHECK_U64(bar(s, true, BAR1_PORT + 2, 0xbeef, 2, false), 0);
	CHECK_U64(bar(s, false, BAR1_PORT + 2, 0, 2, false), 0xbeef);
	CHECK_EQ(x.dev[0].io[2], 0xef);
	CHECK_U64(bar(s, false, BAR1_PORT + 2, 0, 2, true), 0xffff);
	/* Past the BAR: unclaimed. */
	CHECK_U64(bar(s, false, BAR0_GPA + BAR0_SIZE, 0, 4, true), 0xffffffff);
	/* The other link's function saw nothing. */
	CHECK_EQ(x.dev[1].mem[0x10], 0);
	REQUIRE(get_stats(x.srv, x.id[0], &st) == 0);
	CHECK_U64(st.msgs[MPQEMU_BAR_READ], 7);
	CHECK_U64(st.msgs[MPQEMU_BAR_WRITE], 2);
	CHECK_U64(st.msgs[MPQEMU_PCI_CFGWRITE], 3);
	CHECK_U64(st.errors, 3);
	CHECK_U64(st.replies, 12);
	CHECK_U64(st.bytes_out, 12 * 24);
	CHECK_U64(st.bytes_in, 9 * (16 + 24) + 3 * (16 + 12));
	CHECK(st.connected);
	CHECK_EQ(st.end, VIOMMU_LINK_OPEN);
	CHECK(fx_fini(&x));
	CHECK_EQ(warn_lines(), 0);
}

/*
 * With poll_us, links check for the next message before sleeping: they
 * still serve every message in order and still stop promptly when the
 * peer is idle.
 */
TEST(poll_us_serves_and_stops)
{
	struct fx x;
	int s, i;

	fx_poll_us = 200;
	REQUIRE(fx_init(&x, false) == 0);
	fx_poll_us = 0;
	s = x.peer[0];
	enable_bars(s);
	for (i = 0; i < 200; i++) {
		CHECK_U64(bar(s, true, BAR0_GPA + 0x20, (uint64_t)i, 4, true),
			  0);
		CHECK_U64(bar(s, false, BAR0_GPA + 0x20, 0, 4, true),
			  (uint64_t)i);
	}
	CHECK(fx_fini(&x));
	CHECK_EQ(warn_lines(), 0);
}

TEST(sync_sysmem_maps_guest_ram)
{
	struct sysmem_msg m = { .gpa = { 0 } };
	struct viommu_link_stats st;
	struct fx x;
	int fds[2];
	char buf[8] = { 0 };

	REQUIRE(fx_init(&x, false) == 0);
	fds[0] = make_memfd(0x20000, "lowram");
	fds[1] = make_memfd(0x10000, "high");
	REQUIRE(fds[0] >= 0 && fds[1] >= 0);
	/* Region 0: GPA 0 from offset 0x10000 of a 128K file (64K). */
	m.gpa[0] = 0;
	m.size[0] = 0x10000;
	m.off[0] = 0x10000;
	m.gpa[1] = 0x100000000ull;
	m.size[1] = 0x10000;
	m.off[1] = 0;
	REQUIRE(sysmem(x.peer[0], &m, fds, 2) == 0);
	REQUIRE(pwrite(fds[0], "offset!", 7, 0x10000) == 7);
	close(fds[0]);
	close(fds[1]);
	REQUIRE(alive(x.peer[0])); /* in order: the map is installed */
	CHECK_U64(viommu_mem_ram_size(x.mem), 0x20000);
	CHECK_EQ(viommu_mem_read(x.mem, 0, buf, 7), 0);
	CHECK(memcmp(buf, "offset!", 7) == 0);
	CHECK_EQ(viommu_mem_read(x.mem, 0x100000000ull, buf, 4), 0);
	CHECK(memcmp(buf, "high", 4) == 0);
	CHECK_EQ(viommu_mem_read(x.mem, 0x10000, buf, 1), -EFAULT);
	/* A new map replaces the old one. */
	fds[0] = make_memfd(0x1000, "new");
	memset(&m, 0, sizeof(m));
	m.gpa[0] = 0x2000;
	m.size[0] = 0x1000;
	REQUIRE(sysmem(x.peer[0], &m, fds, 1) == 0);
	close(fds[0]);
	REQUIRE(alive(x.peer[0]));
	CHECK_U64(viommu_mem_ram_size(x.mem), 0x1000);
	CHECK_EQ(viommu_mem_read(x.mem, 0x2000, buf, 3), 0);
	CHECK(memcmp(buf, "new", 3) == 0);
	REQUIRE(get_stats(x.srv, x.id[0], &st) == 0);
	CHECK_U64(st.ram_applied, 2);
	CHECK_U64(st.fds_in, 3);
	CHECK_U64(st.msgs[MPQEMU_SYNC_SYSMEM], 2);
	CHECK(fx_fini(&x));
	CHECK_EQ(warn_lines(), 0);
}

TEST(sync_sysmem_one_owner)
{
	struct sysmem_msg m = { .gpa = { 0 } };
	struct viommu_link_stats st;
	struct fx x;
	int a, b;

	REQUIRE(fx_init(&x, false) == 0);
	a = make_memfd(0x1000, "A");
	b = make_memfd(0x2000, "B");
	m.size[0] = 0x1000;
	REQUIRE(sysmem(x.peer[0], &m, &a, 1) == 0);
	REQUIRE(alive(x.peer[0]));
	m.size[0] = 0x2000;
	REQUIRE(sysmem(x.peer[1], &m, &b, 1) == 0);
	REQUIRE(alive(x.peer[1]));
	/* Link 0 owns guest RAM: link 1's (stale) map is dropped. */
	CHECK_U64(viommu_mem_ram_size(x.mem), 0x1000);
	REQUIRE(get_stats(x.srv, x.id[1], &st) == 0);
	CHECK_U64(st.ram_ignored, 1);
	CHECK_U64(st.ram_applied, 0);
	/* The owner goes away; the next map from link 1 takes over. */
	close(x.peer[0]);
	x.peer[0] = -1;
	CHECK_EQ(wait_end(x.id[0]), VIOMMU_LINK_END_HANGUP);
	REQUIRE(sysmem(x.peer[1], &m, &b, 1) == 0);
	REQUIRE(alive(x.peer[1]));
	CHECK_U64(viommu_mem_ram_size(x.mem), 0x2000);
	close(a);
	close(b);
	CHECK(fx_fini(&x));
	CHECK_EQ(warn_lines(), 0);
}

/* read_counter() - non-blocking read of an eventfd; 0 when not signalled. */
static uint64_t read_counter(int efd)
{
	uint64_t v = 0;

	if (read(efd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

TEST(irqfd_intx_level_and_resample)
{
	struct viommu_link_stats st;
	struct fx x;
	int efd[2], s;

	REQUIRE(fx_init(&x, false) == 0);
	s = x.peer[0];
	efd[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	efd[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	REQUIRE(efd[0] >= 0 && efd[1] >= 0);
	REQUIRE(send_msg(s, MPQEMU_SET_IRQFD, 0, NULL, 0, efd, 2) == 0);
	REQUIRE(alive(s));
	CHECK_U64(read_counter(efd[0]), 0);
	/* Rising edge: one write of 1. */
	pci_set_intx(&x.dev[0].f, true);
	CHECK_U64(read_counter(efd[0]), 1);
	pci_set_intx(&x.dev[0].f, true); /* no edge */
	CHECK_U64(read_counter(efd[0]), 0);
	/* EOI while still asserted: signalled again. */
	REQUIRE(write(efd[1], &(uint64_t){ 1 }, 8) == 8);
	REQUIRE(alive(s));
	CHECK_U64(read_counter(efd[0]), 1);
	/* Deasserted: EOI re-signals nothing. */
	pci_set_intx(&x.dev[0].f, false);
	REQUIRE(write(efd[1], &(uint64_t){ 1 }, 8) == 8);
	REQUIRE(alive(s));
	CHECK_U64(read_counter(efd[0]), 0);
	/* INTX_DISABLE masks the line. */
	cfg(s, true, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 2);
	pci_set_intx(&x.dev[0].f, true);
	CHECK_U64(read_counter(efd[0]), 0);
	cfg(s, true, PCI_COMMAND, 0, 2);
	CHECK_U64(read_counter(efd[0]), 1);
	/* New irqfds while asserted: the new intr is signalled at once. */
	close(efd[0]);
	efd[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	REQUIRE(send_msg(s, MPQEMU_SET_IRQFD, 0, NULL, 0, efd, 2) == 0);
	REQUIRE(alive(s));
	CHECK_U64(read_counter(efd[0]), 1);
	/* The other link's line is separate. */
	pci_set_intx(&x.dev[1].f, true);
	CHECK_U64(read_counter(efd[0]), 0);
	REQUIRE(get_stats(x.srv, x.id[0], &st) == 0);
	CHECK_U64(st.irq_signals, 4);
	CHECK_U64(st.unmasks, 2);
	CHECK_U64(st.msgs[MPQEMU_SET_IRQFD], 2);
	close(efd[0]);
	close(efd[1]);
	CHECK(fx_fini(&x));
	CHECK_EQ(warn_lines(), 0);
}

TEST(device_reset_replies_and_resets)
{
	struct fx x;
	uint64_t ret = 7;
	int efd[2], s;

	REQUIRE(fx_init(&x, false) == 0);
	s = x.peer[0];
	efd[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	efd[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	REQUIRE(send_msg(s, MPQEMU_SET_IRQFD, 0, NULL, 0, efd, 2) == 0);
	enable_bars(s);
	pci_set_intx(&x.dev[0].f, true);
	CHECK_U64(read_counter(efd[0]), 1);
	REQUIRE(send_msg(s, MPQEMU_DEVICE_RESET, 0, NULL, 0, NULL, 0) == 0);
	REQUIRE(recv_ret(s, &ret) == 0);
	CHECK_U64(ret, 0);
	CHECK_EQ(x.dev[0].resets, 1);
	CHECK_EQ(x.dev[1].resets, 0);
	/* Registers back to power-on values, INTx dropped. */
	CHECK_U64(cfg(s, false, PCI_COMMAND, 0, 2), 0);
	CHECK_U64(cfg(s, false, PCI_BAR0, 0, 4), 0);
	REQUIRE(write(efd[1], &(uint64_t){ 1 }, 8) == 8);
	REQUIRE(alive(s));
	CHECK_U64(read_counter(efd[0]), 0);
	close(efd[0]);
	close(efd[1]);
	CHECK(fx_fini(&x));
	CHECK_EQ(warn_lines(), 0);
}

TEST(hangup_reported)
{
	struct fx x;

	REQUIRE(fx_init(&x, false) == 0);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 2);
	close(x.peer[1]);
	x.peer[1] = -1;
	CHECK_EQ(wait_end(x.id[1]), VIOMMU_LINK_END_HANGUP);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 1);
	CHECK(alive(x.peer[0]));
	close(x.peer[0]);
	x.peer[0] = -1;
	CHECK_EQ(wait_end(x.id[0]), VIOMMU_LINK_END_HANGUP);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 0);
	CHECK(fx_fini(&x));
	/* Each link told once; stop after the end tells nothing more. */
	CHECK_EQ(end_calls(0), 1);
	CHECK_EQ(end_calls(1), 1);
	CHECK_EQ(warn_lines(), 0);
}

TEST(stop_ends_open_links)
{
	struct fx x;

	REQUIRE(fx_init(&x, false) == 0);
	CHECK(alive(x.peer[0]));
	viommu_link_server_stop(x.srv);
	CHECK_EQ(end_of(0), VIOMMU_LINK_END_STOPPED);
	CHECK_EQ(end_of(1), VIOMMU_LINK_END_STOPPED);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 0);
	/* The peer sees the socket closed. */
	CHECK(!alive(x.peer[0]));
	viommu_link_server_stop(x.srv); /* idempotent */
	CHECK(fx_fini(&x));
	CHECK_EQ(end_calls(0), 1);
}

/* flood() - send config reads back to back, draining replies, until the
 * link goes away; returns the number of replies read. */
static void *flood(void *arg)
{
	int sock = *(int *)arg;
	struct cfg_msg m = { PCI_VENDOR_ID, 0, 2 };
	uint8_t burst[8][MPQEMU_HDR_SIZE + sizeof(m)];
	uintptr_t replies = 0;
	uint64_t v;

	for (int i = 0; i < 8; i++) {
		int32_t cmd = MPQEMU_PCI_CFGREAD;
		uint64_t size = sizeof(m);

		memset(burst[i], 0, sizeof(burst[i]));
		memcpy(burst[i], &cmd, sizeof(cmd));
		memcpy(burst[i] + 8, &size, sizeof(size));
		memcpy(burst[i] + MPQEMU_HDR_SIZE, &m, sizeof(m));
	}
	for (;;) {
		if (send(sock, burst, sizeof(burst), MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(burst))
			break;
		for (int i = 0; i < 8; i++) {
			if (recv_ret(sock, &v))
				return (void *)replies;
			replies++;
		}
	}
	return (void *)replies;
}

TEST(stop_while_peer_floods)
{
	struct viommu_link_stats st = { .replies = 0 };
	struct fx x;
	pthread_t t;
	void *replies;

	REQUIRE(fx_init(&x, false) == 0);
	REQUIRE(pthread_create(&t, NULL, flood, &x.peer[0]) == 0);
	while (st.replies < 1000) {
		REQUIRE(get_stats(x.srv, x.id[0], &st) == 0);
		sched_yield();
	}
	viommu_link_server_stop(x.srv);
	CHECK_EQ(end_of(0), VIOMMU_LINK_END_STOPPED);
	pthread_join(t, &replies);
	CHECK((uintptr_t)replies >= 1000);
	CHECK(fx_fini(&x));
	CHECK_EQ(warn_lines(), 0);
}

/*
 * Poll mode (the old "manual" link): no thread; the caller serves the link
 * with run_once() until it ends.
 */
TEST(poll_link_in_caller_thread)
{
	struct fx x;
	struct cfg_msg m = { PCI_VENDOR_ID, 0, 2 };
	uint64_t ret = 0;

	REQUIRE(fx_init(&x, true) == 0);
	REQUIRE(send_msg(x.peer[0], MPQEMU_PCI_CFGREAD, sizeof(m), &m,
			 sizeof(m), NULL, 0) == 0);
	REQUIRE(shutdown(x.peer[0], SHUT_WR) == 0);
	CHECK_EQ(run_until_end(x.srv, x.id[0]), VIOMMU_LINK_END_HANGUP);
	CHECK_EQ(end_of(0), VIOMMU_LINK_END_HANGUP);
	CHECK_EQ(recv_ret(x.peer[0], &ret), 0);
	CHECK_U64(ret, 0x1234);
	/* Ended: later calls report the end again and serve nothing. */
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[0]),
		 VIOMMU_LINK_END_HANGUP);
	CHECK_EQ(recv_ret(x.peer[0], &ret), -1);
	/* Link 1 never ran: stopping ends it. */
	viommu_link_server_stop(x.srv);
	CHECK_EQ(end_of(1), VIOMMU_LINK_END_STOPPED);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[1]),
		 VIOMMU_LINK_END_STOPPED);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 0);
	CHECK(!alive(x.peer[1]));
	CHECK(fx_fini(&x));
	CHECK_EQ(end_calls(0), 1);
	CHECK_EQ(end_calls(1), 1);
	CHECK_EQ(warn_lines(), 0);
}

/*
 * One run_once() serves every message that has arrived, in order, and
 * returns without waiting for more; the poll fd is readable exactly when
 * there is work, including the SET_IRQFD resample eventfd.
 */
TEST(poll_link_serves_what_arrived)
{
	struct cfg_msg rd = { PCI_VENDOR_ID, 0, 2 };
	struct cfg_msg cmd_rd = { PCI_COMMAND, 0, 2 };
	struct cfg_msg cmd_wr = { PCI_COMMAND, PCI_COMMAND_MEMORY, 2 };
	struct viommu_link_stats st;
	struct pollfd p = { .events = POLLIN };
	struct fx x;
	uint64_t ret;
	int efd[2], s;

	REQUIRE(fx_init(&x, true) == 0);
	s = x.peer[0];
	p.fd = viommu_link_server_poll_fd(x.srv, x.id[0]);
	REQUIRE(p.fd >= 0);
	CHECK_EQ(viommu_link_server_poll_fd(x.srv, x.id[0]), p.fd);
	CHECK(viommu_link_server_poll_fd(x.srv, x.id[1]) >= 0);
	CHECK(viommu_link_server_poll_fd(x.srv, x.id[1]) != p.fd);
	CHECK_EQ(viommu_link_server_poll_fd(x.srv, 99), -EINVAL);
	CHECK_EQ(viommu_link_server_run_once(x.srv, 99), -EINVAL);
	/* Nothing sent: quiet, and run_once does not wait. */
	CHECK_EQ(poll(&p, 1, 0), 0);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[0]), 0);
	/* Three requests queued: one call answers them all, in order. */
	REQUIRE(send_msg(s, MPQEMU_PCI_CFGREAD, sizeof(rd), &rd, sizeof(rd),
			 NULL, 0) == 0);
	REQUIRE(send_msg(s, MPQEMU_PCI_CFGWRITE, sizeof(cmd_wr), &cmd_wr,
			 sizeof(cmd_wr), NULL, 0) == 0);
	REQUIRE(send_msg(s, MPQEMU_PCI_CFGREAD, sizeof(cmd_rd), &cmd_rd,
			 sizeof(cmd_rd), NULL, 0) == 0);
	CHECK_EQ(poll(&p, 1, 30000), 1);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[0]), 0);
	CHECK_EQ(poll(&p, 1, 0), 0);
	REQUIRE(recv_ret(s, &ret) == 0);
	CHECK_U64(ret, 0x1234);
	REQUIRE(recv_ret(s, &ret) == 0);
	CHECK_U64(ret, 0);
	REQUIRE(recv_ret(s, &ret) == 0);
	CHECK_U64(ret, PCI_COMMAND_MEMORY);
	/* The resample eventfd wakes the poll fd; EOI re-signals INTx. */
	efd[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	efd[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	REQUIRE(efd[0] >= 0 && efd[1] >= 0);
	REQUIRE(send_msg(s, MPQEMU_SET_IRQFD, 0, NULL, 0, efd, 2) == 0);
	CHECK_EQ(poll(&p, 1, 30000), 1);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[0]), 0);
	pci_set_intx(&x.dev[0].f, true);
	CHECK_U64(read_counter(efd[0]), 1);
	CHECK_EQ(poll(&p, 1, 0), 0);
	REQUIRE(write(efd[1], &(uint64_t){ 1 }, 8) == 8);
	CHECK_EQ(poll(&p, 1, 30000), 1);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[0]), 0);
	CHECK_U64(read_counter(efd[0]), 1);
	CHECK_U64(read_counter(efd[1]), 0); /* consumed by the link */
	CHECK_EQ(poll(&p, 1, 0), 0);
	/* Link 1 was never run: it answered nothing. */
	REQUIRE(get_stats(x.srv, x.id[1], &st) == 0);
	CHECK_U64(st.replies, 0);
	REQUIRE(get_stats(x.srv, x.id[0], &st) == 0);
	CHECK_U64(st.msgs[MPQEMU_PCI_CFGREAD], 2);
	CHECK_U64(st.msgs[MPQEMU_PCI_CFGWRITE], 1);
	CHECK_U64(st.msgs[MPQEMU_SET_IRQFD], 1);
	CHECK_U64(st.replies, 3);
	CHECK_U64(st.fds_in, 2);
	CHECK_U64(st.irq_signals, 2);
	CHECK_U64(st.unmasks, 1);
	CHECK(st.connected); /* regression: run_once never set it */
	CHECK_EQ(st.end, VIOMMU_LINK_OPEN);
	/* The peer leaves: the next call reports it, once. */
	close(x.peer[0]);
	x.peer[0] = -1;
	CHECK_EQ(poll(&p, 1, 30000), 1);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[0]),
		 VIOMMU_LINK_END_HANGUP);
	CHECK_EQ(end_of(0), VIOMMU_LINK_END_HANGUP);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 1);
	close(efd[0]);
	close(efd[1]);
	CHECK(fx_fini(&x));
	CHECK_EQ(end_calls(0), 1);
	CHECK_EQ(warn_lines(), 0);
}

/*
 * The link takes a message in one receive into a buffer the size of the
 * largest one; bytes of later messages that come along wait there.  Their
 * fds must still go to the message they came with: QEMU sends SYNC_SYSMEM
 * and SET_IRQFD without waiting for a reply, so one may queue up behind a
 * BAR access from another of its threads, and one receive then takes
 * both (the kernel gives the fds to that receive).
 */
TEST(queued_messages_keep_their_fds)
{
	struct cfg_msg rd = { PCI_VENDOR_ID, 0, 2 };
	uint8_t buf[3 * (MPQEMU_HDR_SIZE + 12)];
	struct viommu_link_stats st;
	int32_t cmd = MPQEMU_PCI_CFGREAD;
	uint64_t size = 12, ret;
	struct fx x;
	int efd[4], s;

	REQUIRE(fx_init(&x, true) == 0);
	s = x.peer[0];
	for (int i = 0; i < 4; i++) {
		efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		REQUIRE(efd[i] >= 0);
	}
	/* A config read, then SET_IRQFD with its fds, queued before the
	 * link reads: one receive takes both. */
	REQUIRE(send_msg(s, MPQEMU_PCI_CFGREAD, sizeof(rd), &rd, sizeof(rd),
			 NULL, 0) == 0);
	REQUIRE(send_msg(s, MPQEMU_SET_IRQFD, 0, NULL, 0, efd, 2) == 0);
	REQUIRE(send_msg(s, MPQEMU_PCI_CFGREAD, sizeof(rd), &rd, sizeof(rd),
			 NULL, 0) == 0);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[0]), 0);
	REQUIRE(recv_ret(s, &ret) == 0);
	CHECK_U64(ret, 0x1234);
	REQUIRE(recv_ret(s, &ret) == 0);
	CHECK_U64(ret, 0x1234);
	pci_set_intx(&x.dev[0].f, true); /* the irqfd was installed */
	CHECK_U64(read_counter(efd[0]), 1);
	pci_set_intx(&x.dev[0].f, false);
	/* SET_IRQFD and a config read in one sendmsg() with the fds: the
	 * fds are SET_IRQFD's; then two messages and a half in one piece,
	 * the rest of the third later. */
	memset(buf, 0, sizeof(buf));
	cmd = MPQEMU_SET_IRQFD;
	memcpy(buf, &cmd, 4);
	cmd = MPQEMU_PCI_CFGREAD;
	memcpy(buf + 16, &cmd, 4);
	memcpy(buf + 24, &size, 8);
	memcpy(buf + 32, &rd, sizeof(rd));
	REQUIRE(send_raw(s, buf, 16 + 28, efd + 2, 2) == 0);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[0]), 0);
	REQUIRE(recv_ret(s, &ret) == 0);
	CHECK_U64(ret, 0x1234);
	pci_set_intx(&x.dev[0].f, true);
	CHECK_U64(read_counter(efd[2]), 1); /* the new irqfd */
	CHECK_U64(read_counter(efd[0]), 0);
	for (int i = 0; i < 3; i++) {
		memcpy(buf + 28 * i, &cmd, 4);
		memcpy(buf + 28 * i + 8, &size, 8);
		memcpy(buf + 28 * i + 16, &rd, sizeof(rd));
	}
	REQUIRE(send_raw(s, buf, 2 * 28 + 10, NULL, 0) == 0);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[0]), 0);
	REQUIRE(recv_ret(s, &ret) == 0);
	REQUIRE(recv_ret(s, &ret) == 0);
	CHECK_U64(ret, 0x1234);
	REQUIRE(send_raw(s, buf + 2 * 28 + 10, 18, NULL, 0) == 0);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[0]), 0);
	REQUIRE(recv_ret(s, &ret) == 0);
	CHECK_U64(ret, 0x1234);
	REQUIRE(get_stats(x.srv, x.id[0], &st) == 0);
	CHECK_U64(st.msgs[MPQEMU_PCI_CFGREAD], 6);
	CHECK_U64(st.msgs[MPQEMU_SET_IRQFD], 2);
	CHECK_U64(st.replies, 6);
	CHECK_U64(st.fds_in, 4);
	CHECK_EQ(st.end, VIOMMU_LINK_OPEN);
	for (int i = 0; i < 4; i++)
		close(efd[i]);
	CHECK(fx_fini(&x));
	CHECK_EQ(warn_lines(), 0);
}

/* serve_poll_link() - thread body: run_until_end() on link 0 of a fixture. */
static void *serve_poll_link(void *arg)
{
	struct fx *x = arg;

	return (void *)(intptr_t)run_until_end(x->srv, x->id[0]);
}

/*
 * stop() ends a poll-mode link being run from another thread, even while
 * it waits for the rest of a message.
 */
TEST(stop_ends_poll_link_mid_message)
{
	struct viommu_link_stats st = { .bytes_in = 0 };
	uint8_t hdr[MPQEMU_HDR_SIZE] = { MPQEMU_PCI_CFGREAD, 0, 0, 0,
					 0, 0, 0, 0, MPQEMU_CFG_SIZE };
	struct fx x;
	pthread_t t;
	void *why;

	REQUIRE(fx_init(&x, true) == 0);
	REQUIRE(send_raw(x.peer[0], hdr, sizeof(hdr), NULL, 0) == 0);
	REQUIRE(pthread_create(&t, NULL, serve_poll_link, &x) == 0);
	/* Once the header is in, run_once() waits for the payload. */
	while (st.bytes_in < sizeof(hdr) && st.end == VIOMMU_LINK_OPEN) {
		REQUIRE(get_stats(x.srv, x.id[0], &st) == 0);
		sched_yield();
	}
	viommu_link_server_stop(x.srv);
	pthread_join(t, &why);
	CHECK_EQ((intptr_t)why, VIOMMU_LINK_END_STOPPED);
	CHECK_EQ(end_of(0), VIOMMU_LINK_END_STOPPED);
	CHECK_EQ(end_of(1), VIOMMU_LINK_END_STOPPED);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 0);
	CHECK(!alive(x.peer[0]));
	CHECK(fx_fini(&x));
	CHECK_EQ(end_calls(0), 1);
	CHECK_EQ(warn_lines(), 0);
}

/*
 * stall_mid_message() - on a poll-mode fixture whose links have
 * @timeout_ms (0: the library's 500), link 0's peer sends half a message
 * and then nothing: run_once() must give up after the timeout (checked
 * within [timeout - 50 ms, 10 x timeout), or below 450 ms for a timeout
 * set, which the default 500 ms would miss) and end the link as
 * truncated, with one line, link 1 untouched.
 */
static void stall_mid_message(unsigned int timeout_ms)
{
	uint8_t hdr[MPQEMU_HDR_SIZE] = { MPQEMU_PCI_CFGREAD, 0, 0, 0,
					 0, 0, 0, 0, MPQEMU_CFG_SIZE };
	long want = timeout_ms ? (long)timeout_ms : LINK_STALL_MS;
	long upper = timeout_ms ? 450 : 10 * want;
	struct timespec t0, t1;
	struct fx x;
	long ms;
	int r;

	fx_peer_timeout_ms = timeout_ms;
	r = fx_init(&x, true);
	fx_peer_timeout_ms = 0;
	REQUIRE(r == 0);
	REQUIRE(send_raw(x.peer[0], hdr, sizeof(hdr), NULL, 0) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = viommu_link_server_run_once(x.srv, x.id[0]);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	printf("# stalled peer, timeout %ld ms: link ended after %ld ms\n",
	       want, ms);
	CHECK_EQ(r, VIOMMU_LINK_END_TRUNCATED);
	CHECK(ms >= want - 50 && ms < upper);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[0]),
		 VIOMMU_LINK_END_TRUNCATED);
	CHECK_EQ(end_of(0), VIOMMU_LINK_END_TRUNCATED);
	CHECK_EQ(end_of(1), VIOMMU_LINK_OPEN);
	CHECK(!alive(x.peer[0]));
	CHECK_EQ(warn_lines(), 1);
	CHECK(fx_fini(&x));
}

/*
 * L9: a poll-mode link runs in the embedder's loop: a peer that sends half
 * a message and then nothing must not hold that loop.
 */
TEST(poll_link_ends_when_peer_stalls_mid_message)
{
	stall_mid_message(0);
}

/* L9: the same with the link's peer_timeout_ms = 60: after 60 ms. */
TEST(poll_link_peer_timeout_is_the_links)
{
	stall_mid_message(60);
}

TEST(path_link_accepts_one_peer)
{
	struct fx x;
	struct tdev d, d2;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct viommu_link_config lc = link_cfg(&d.f, -1, NULL, "bypath",
						false);
	unsigned int id;
	int c;

	REQUIRE(fx_init(&x, false) == 0);
	pci_func_init(&d.f, "tp", &test_log, 0x1234, 0x1, 0xff0000, 1, 0, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/test_mpqemu.%d",
		 (int)getpid());
	unlink(sa.sun_path);
	lc.path = sa.sun_path;
	REQUIRE(viommu_link_server_add(x.srv, &lc, &id) == 0);
	CHECK_EQ(id, 2);
	CHECK_EQ(access(sa.sun_path, F_OK), 0);
	/* A function has one link; a bound path is not taken over. */
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EBUSY);
	pci_func_init(&d2.f, "tp2", &test_log, 0x1234, 0x1, 0xff0000, 1, 0,
		      0);
	lc.func = vfunc(&d2.f);
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EADDRINUSE);
	CHECK_EQ(access(sa.sun_path, F_OK), 0);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(alive(c));
	/* Accepted: the path is gone. */
	CHECK_EQ(access(sa.sun_path, F_OK), -1);
	CHECK_EQ(strcmp(viommu_link_server_name(x.srv, 2), "bypath"), 0);
	close(c);
	CHECK_EQ(wait_end(2), VIOMMU_LINK_END_HANGUP);
	CHECK(fx_fini(&x));
	pci_func_destroy(&d.f);
	pci_func_destroy(&d2.f);
}

TEST(path_link_unlinked_when_never_connected)
{
	struct fx x;
	struct tdev d;
	struct viommu_link_config lc = link_cfg(&d.f, -1, NULL, NULL, false);
	char path[64];
	unsigned int id;

	REQUIRE(fx_init(&x, false) == 0);
	pci_func_init(&d.f, "tp", &test_log, 0x1234, 0x1, 0xff0000, 1, 0, 0);
	snprintf(path, sizeof(path), "/tmp/test_mpqemu_nc.%d", (int)getpid());
	unlink(path);
	lc.path = path;
	REQUIRE(viommu_link_server_add(x.srv, &lc, &id) == 0);
	CHECK_EQ(access(path, F_OK), 0);
	viommu_link_server_stop(x.srv);
	CHECK_EQ(end_of(id), VIOMMU_LINK_END_STOPPED);
	CHECK_EQ(access(path, F_OK), -1);
	CHECK(fx_fini(&x));
	pci_func_destroy(&d.f);
}

TEST(add_link_refusals)
{
	struct fx x;
	struct tdev d;
	struct viommu_link_config lc = link_cfg(&d.f, -1, NULL, NULL, false);
	struct {
		struct viommu_link_config lc;
		uint64_t future;
	} big;
	struct viommu_link_stats st;
	unsigned int id;
	int p[2], dg[2];

	REQUIRE(fx_init(&x, false) == 0);
	pci_func_init(&d.f, "tr", &test_log, 0x1234, 0x1, 0xff0000, 1, 0, 0);
	REQUIRE(pipe(p) == 0);
	lc.fd = p[0];
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EINVAL);
	CHECK_EQ(fcntl(p[0], F_GETFD), -1); /* closed by the server */
	close(p[1]);
	REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) == 0);
	lc.fd = dg[0];
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EINVAL);
	close(dg[1]);
	lc.fd = -1;
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EINVAL);
	lc.func = NULL;
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EINVAL);
	/* An unknown protocol, a config with unknown fields set. */
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, dg) == 0);
	lc.func = vfunc(&d.f);
	lc.proto = 99;
	lc.fd = dg[0];
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EPROTONOSUPPORT);
	CHECK_EQ(fcntl(dg[0], F_GETFD), -1); /* closed by the server */
	close(dg[1]);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, dg) == 0);
	memset(&big, 0, sizeof(big));
	big.lc = link_cfg(&d.f, dg[0], NULL, NULL, false);
	big.lc.size = sizeof(big);
	big.future = 1;
	CHECK_EQ(viommu_link_server_add(x.srv, &big.lc, &id), -EINVAL);
	close(dg[1]);
	/* L9: a peer timeout beyond 60 s. */
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, dg) == 0);
	big.lc = link_cfg(&d.f, dg[0], NULL, NULL, false);
	big.lc.peer_timeout_ms = 60001;
	CHECK_EQ(viommu_link_server_add(x.srv, &big.lc, &id), -EINVAL);
	CHECK_EQ(fcntl(dg[0], F_GETFD), -1); /* closed by the server */
	close(dg[1]);
	lc.proto = VIOMMU_LINK_MPQEMU;
	CHECK_EQ(viommu_link_server_num_links(x.srv), 2);
	CHECK_EQ(viommu_link_server_open_links(x.srv), 2);
	CHECK(viommu_link_server_name(x.srv, 2) == NULL);
	/* Thread-mode links have no poll fd and cannot be run by hand. */
	CHECK_EQ(viommu_link_server_poll_fd(x.srv, x.id[0]), -EINVAL);
	CHECK_EQ(viommu_link_server_run_once(x.srv, x.id[0]), -EINVAL);
	CHECK(alive(x.peer[0]));
	viommu_link_server_stop(x.srv);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, dg) == 0);
	lc.fd = dg[0];
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -ESHUTDOWN);
	CHECK_EQ(fcntl(dg[0], F_GETFD), -1); /* closed by the server */
	close(dg[1]);
	CHECK_EQ(viommu_link_server_num_links(x.srv), 2);
	CHECK_EQ(viommu_link_server_stats(x.srv, 2, &st, sizeof(st)), -EINVAL);
	CHECK_EQ(viommu_link_server_stats(x.srv, 0, NULL, sizeof(st)),
		 -EINVAL);
	CHECK_EQ(viommu_link_server_stats(x.srv, 0, &st, 0), -EINVAL);
	CHECK(fx_fini(&x));
	pci_func_destroy(&d.f);
	CHECK_EQ(viommu_link_server_stats(NULL, 0, &st, sizeof(st)), -EINVAL);
	CHECK_EQ(strcmp(viommu_link_cmd_name(VIOMMU_LINK_MPQEMU, 7),
			"DEVICE_RESET"), 0);
	CHECK_EQ(strcmp(viommu_link_cmd_name(VIOMMU_LINK_MPQEMU, 0),
			"SYNC_SYSMEM"), 0);
	CHECK_EQ(strcmp(viommu_link_cmd_name(VIOMMU_LINK_MPQEMU, 8), "?"), 0);
	CHECK_EQ(strcmp(viommu_link_cmd_name(99, 0), "?"), 0);
	CHECK_EQ(strcmp(viommu_link_end_name(VIOMMU_LINK_END_TRUNCATED),
			"truncated"), 0);
	CHECK_EQ(strcmp(viommu_link_end_name(VIOMMU_LINK_OPEN), "open"), 0);
	CHECK_EQ(strcmp(viommu_link_end_name(99), "?"), 0);
}

TEST_MAIN()
