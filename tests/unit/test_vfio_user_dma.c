/*
 * test_vfio_user_dma.c - vfio-user windows without an fd (LINKS.md VU14,
 * VU15): device DMA reaches them through DMA_READ / DMA_WRITE requests to
 * the client, from the link thread in the middle of a doorbell and from
 * another thread, with and without a domain; a client that answers badly
 * (wrong id, short data, error, silence, hang-up) gets the device a fault,
 * never a hang or a crash.
 */
#include "vfu_client_dma.h"

#define L_IOVA 2
#define EP2_ID 0x30
#define IOVA_W 0x5000000ull

/* engine_go() - program the engine through @c and start it. */
static int engine_go(struct fx *x, struct dclient *c, uint64_t src,
		     uint64_t dst, uint64_t count, uint64_t cmd)
{
	return dc_wr(x, L_DMA, c, DMAE_DMA_SRC, src) ||
	       dc_wr(x, L_DMA, c, DMAE_DMA_DST, dst) ||
	       dc_wr(x, L_DMA, c, DMAE_DMA_COUNT, count) ||
	       dc_wr(x, L_DMA, c, DMAE_DMA_CMD, cmd) ? -1 : 0;
}

/* setup() - the fixture, an fd-less window at GPA_B, bus mastering on. */
static int setup(struct fx *x, struct dclient *c)
{
	const uint32_t rw = VFU_DMA_READ_OK | VFU_DMA_WRITE_OK;

	memset(c, 0, sizeof(*c));
	if (fx_init(x, 0))
		return -1;
	c->sock = &x->peer[L_DMA];
	c->base = GPA_B;
	if (dma_map(x, L_DMA, rw, 0, GPA_B, sizeof(c->mem), NULL, 0) ||
	    wr(x, L_DMA, VFU_REGION_CONFIG, PCI_COMMAND,
	       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2))
		return -1;
	return 0;
}

/* VU14: the engine's DMA, made on the link thread inside a doorbell. */
TEST(vu14_fdless_window_engine_dma_both_ways)
{
	uint8_t want[64], got[8] = { 0 };
	struct dclient c;
	struct fx x;

	REQUIRE(setup(&x, &c) == 0);
	CHECK_U64(viommu_mem_ram_size(x.mem), sizeof(c.mem));
	for (unsigned int i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(i * 5 + 1);
	for (unsigned int i = 0; i < sizeof(want); i += 8)
		CHECK_EQ(rwrite(&x, L_DMA, 0, DMA_ENGINE_BUF_ADDR + i,
				want + i, 8), 0);
	/* device buffer -> client memory: DMA_WRITE */
	REQUIRE(engine_go(&x, &c, DMA_ENGINE_BUF_ADDR, GPA_B + 0x100,
			  sizeof(want), DMAE_CMD_START | DMAE_CMD_TO_RAM) == 0);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_EXT_STATUS, 4), 0);
	CHECK(!memcmp(c.mem + 0x100, want, sizeof(want)));
	CHECK(c.writes >= 1);
	CHECK_EQ(c.bad, 0);
	/* client memory -> device buffer: DMA_READ */
	memset(c.mem + 0x2000, 0x5a, 64);
	REQUIRE(engine_go(&x, &c, GPA_B + 0x2000, DMA_ENGINE_BUF_ADDR + 0x200,
			  64, DMAE_CMD_START) == 0);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_EXT_STATUS, 4), 0);
	CHECK_EQ(rread(&x, L_DMA, 0, DMA_ENGINE_BUF_ADDR + 0x200, 8, got), 0);
	CHECK_U64(get64(got), 0x5a5a5a5a5a5a5a5aull);
	CHECK(c.reads >= 1);
	CHECK_EQ(c.bad, 0);
	CHECK(fx_fini(&x));
	CHECK_EQ(cap.warn_lines, 0);
}

/*
 * VU14: behind our IOMMU - the engine's endpoint in a PAGING domain whose
 * mapping IOVA -> GPA lands in the fd-less window; the read-only half of
 * the mapping refuses the engine's write without asking the client.
 */
TEST(vu14_fdless_window_behind_a_paging_domain)
{
	struct viommu_domain_config dc = { .kind = VIOMMU_DOMAIN_PAGING };
	const uint64_t iova = 0x7000000;
	struct viommu_domain *dom;
	uint8_t got[8] = { 0 };
	struct dclient c;
	struct fx x;

	REQUIRE(setup(&x, &c) == 0);
	REQUIRE(viommu_domain_create(x.ctx, &dc, &dom) == 0);
	REQUIRE(viommu_domain_map(dom, iova, iova + 0xfff, GPA_B,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(viommu_domain_map(dom, iova + 0x1000, iova + 0x1fff,
				  GPA_B + 0x1000, VIOMMU_READ) == 0);
	REQUIRE(viommu_endpoint_attach(x.ep, VIOMMU_NO_PASID, dom) == 0);
	memset(c.mem + 0x1000, 0x3c, 64);
	/* IOVA -> client memory -> device buffer */
	REQUIRE(engine_go(&x, &c, iova + 0x1000, DMA_ENGINE_BUF_ADDR, 64,
			  DMAE_CMD_START) == 0);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_EXT_STATUS, 4), 0);
	CHECK_EQ(rread(&x, L_DMA, 0, DMA_ENGINE_BUF_ADDR, 8, got), 0);
	CHECK_U64(get64(got), 0x3c3c3c3c3c3c3c3cull);
	CHECK_U64(c.last_addr, GPA_B + 0x1000); /* the client sees GPAs */
	/* device buffer -> IOVA (writable half) */
	REQUIRE(engine_go(&x, &c, DMA_ENGINE_BUF_ADDR, iova + 0x10, 64,
			  DMAE_CMD_START | DMAE_CMD_TO_RAM) == 0);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_EXT_STATUS, 4), 0);
	CHECK_EQ(c.mem[0x10], 0x3c);
	/* the read-only half: a permission fault, no request sent */
	c.reads = c.writes = 0;
	REQUIRE(engine_go(&x, &c, DMA_ENGINE_BUF_ADDR, iova + 0x1000, 64,
			  DMAE_CMD_START | DMAE_CMD_TO_RAM) == 0);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_EXT_STATUS, 4), DMAE_EXT_ERR_DMA);
	CHECK_EQ(c.writes, 0);
	CHECK_EQ(c.bad, 0);
	CHECK(fx_fini(&x)); /* the context frees the domain */
}

/* VU14: DMA from another thread, chunked to max_data_xfer_size. */
TEST(vu14_fdless_window_other_thread_chunked)
{
	static uint8_t buf[6000], back[6000];
	struct dclient c;
	struct fx x;

	REQUIRE(setup(&x, &c) == 0);
	REQUIRE(dc_start(&c) == 0);
	for (unsigned int i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 3);
	CHECK_EQ(viommu_mem_write(x.mem, GPA_B + 100, buf, sizeof(buf)), 0);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_B + 100, back, sizeof(back)), 0);
	dc_stop(&c);
	CHECK(!memcmp(c.mem + 100, buf, sizeof(buf)));
	CHECK(!memcmp(back, buf, sizeof(buf)));
	CHECK_EQ(c.writes, 2); /* 4096 + 1904 */
	CHECK_EQ(c.reads, 2);
	CHECK_EQ(c.bad, 0);
	CHECK_U64(stats(&x, L_DMA).dma_requests, 4);
	CHECK_U64(stats(&x, L_DMA).dma_failed, 0);
	/* the link kept serving: a command gets its reply */
	CHECK(alive(&x, L_DMA));
	CHECK(fx_fini(&x));
	CHECK_EQ(cap.warn_lines, 0);
}

/* VU14: a command arriving while the link thread waits is served after. */
TEST(vu14_command_during_wait_is_stashed_and_served)
{
	uint8_t p[VFU_RW_SIZE + 8];
	struct reply r;
	struct fx x;
	struct dclient c;
	uint8_t h[VFU_HDR_SIZE];
	int id1, id2;

	REQUIRE(setup(&x, &c) == 0);
	REQUIRE(dc_wr(&x, L_DMA, &c, DMAE_DMA_SRC, GPA_B) == 0);
	REQUIRE(dc_wr(&x, L_DMA, &c, DMAE_DMA_DST, DMA_ENGINE_BUF_ADDR) == 0);
	REQUIRE(dc_wr(&x, L_DMA, &c, DMAE_DMA_COUNT, 16) == 0);
	/* the doorbell, then a second command before answering the DMA */
	put64(p, DMAE_DMA_CMD);
	put32(p + 8, 0);
	put32(p + 12, 8);
	put64(p + 16, DMAE_CMD_START);
	id1 = send_cmd(&x, L_DMA, VFU_REGION_WRITE, 0, p, sizeof(p), NULL, 0);
	REQUIRE(id1 >= 0);
	REQUIRE(recv_full(x.peer[L_DMA], h, sizeof(h)) == 0);
	CHECK_EQ(get32(h + 8), VFU_T_COMMAND);
	put64(p, DMAE_EXT_STATUS);
	put32(p + 12, 4);
	id2 = send_cmd(&x, L_DMA, VFU_REGION_READ, 0, p, VFU_RW_SIZE, NULL, 0);
	REQUIRE(id2 >= 0);
	{
		uint8_t rest[16];

		REQUIRE(recv_full(x.peer[L_DMA], rest, 16) == 0);
		memset(c.mem, 0x77, 16);
		dc_answer(&c, h, rest, 16);
	}
	/* replies in order: the doorbell's, then the read's (status 0) */
	REQUIRE(recv_reply(x.peer[L_DMA], &r) == 0);
	CHECK_EQ(r.id, id1);
	REQUIRE(recv_reply(x.peer[L_DMA], &r) == 0);
	CHECK_EQ(r.id, id2);
	CHECK_EQ(r.flags, VFU_T_REPLY);
	CHECK_U64(get32(r.d + VFU_RW_SIZE), 0);
	CHECK_EQ(c.reads, 1);
	/* the held command is counted once, when served */
	CHECK_U64(stats(&x, L_DMA).msgs[VFU_REGION_READ], 1);
	CHECK(fx_fini(&x));
}

/*
 * VU14/VU15: the held commands are bounded (256); past that the waiting
 * DMA fails, and every command is still served, in order, none lost.
 */
TEST(vu15_held_commands_bounded_none_lost)
{
	uint8_t p[VFU_RW_SIZE + 8];
	struct reply r;
	struct dclient c;
	struct fx x;
	int id, last = -1;

	REQUIRE(setup(&x, &c) == 0);
	REQUIRE(dc_wr(&x, L_DMA, &c, DMAE_DMA_SRC, GPA_B) == 0);
	REQUIRE(dc_wr(&x, L_DMA, &c, DMAE_DMA_DST, DMA_ENGINE_BUF_ADDR) == 0);
	REQUIRE(dc_wr(&x, L_DMA, &c, DMAE_DMA_COUNT, 16) == 0);
	put64(p, DMAE_DMA_CMD);
	put32(p + 8, 0);
	put32(p + 12, 8);
	put64(p + 16, DMAE_CMD_START);
	id = send_cmd(&x, L_DMA, VFU_REGION_WRITE, 0, p, sizeof(p), NULL, 0);
	REQUIRE(id >= 0);
	/* 300 posted writes of a harmless register, never a DMA answer */
	put64(p, DMAE_DMA_COUNT);
	for (unsigned int i = 0; i < 300; i++) {
		put64(p + 16, i);
		REQUIRE(send_cmd(&x, L_DMA, VFU_REGION_WRITE, VFU_F_NO_REPLY,
				 p, sizeof(p), NULL, 0) >= 0);
	}
	put64(p, DMAE_DMA_COUNT);
	put32(p + 12, 8);
	last = send_cmd(&x, L_DMA, VFU_REGION_READ, 0, p, VFU_RW_SIZE, NULL,
			0);
	REQUIRE(last >= 0);
	/* the request, then the doorbell's reply, then the read's: 299 */
	REQUIRE(recv_reply(x.peer[L_DMA], &r) == 0);
	CHECK_EQ(r.cmd, VFU_DMA_READ);
	REQUIRE(recv_reply(x.peer[L_DMA], &r) == 0);
	CHECK_EQ(r.id, id);
	REQUIRE(recv_reply(x.peer[L_DMA], &r) == 0);
	CHECK_EQ(r.id, last);
	CHECK_U64(get64(r.d + VFU_RW_SIZE), 299);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_EXT_STATUS, 4), DMAE_EXT_ERR_DMA);
	CHECK(cap_get(&cap.warn_lines) >= 1);
	/* (on a loaded machine the deadline may come first: same outcome) */
	CHECK(strstr(cap.last, "DMA to the client failed") != NULL);
	CHECK(fx_fini(&x));
}

/* VU15: bad answers fault the DMA; the link goes on (or ends on EOF). */
TEST(vu15_bad_client_answers_fault_not_hang)
{
	static const enum dc_mode modes[] = {
		DC_WRONG_ID, DC_SHORT, DC_ERROR, DC_SILENT,
	};

	for (size_t i = 0; i < NELEM(modes); i++) {
		struct dclient c;
		struct fx x;

		printf("# mode %d\n", modes[i]);
		REQUIRE(setup(&x, &c) == 0);
		c.mode = modes[i];
		memset(c.mem, 0x11, sizeof(c.mem));
		REQUIRE(engine_go(&x, &c, GPA_B, DMA_ENGINE_BUF_ADDR, 64,
				  DMAE_CMD_START) == 0);
		CHECK_U64(rd(&x, L_DMA, 0, DMAE_EXT_STATUS, 4),
			  DMAE_EXT_ERR_DMA);
		CHECK_EQ(c.reads, 1);
		CHECK_U64(stats(&x, L_DMA).dma_failed, 1);
		CHECK(cap_get(&cap.warn_lines) >= 1);
		CHECK(strstr(cap.last, "DMA to the client failed") != NULL);
		CHECK(alive(&x, L_DMA));
		CHECK_EQ(stats(&x, L_DMA).end, VIOMMU_LINK_OPEN);
		CHECK(fx_fini(&x));
	}
}

/*
 * VU15 with L9's peer_timeout_ms: the link's timeout bounds the wait for
 * the client's answer to our DMA request: a silent client fails the DMA
 * after 60 ms, not the default 500 ms.
 */
TEST(vu15_peer_timeout_bounds_a_silent_client)
{
	struct timespec t0, t1;
	struct dclient c;
	struct fx x;
	uint8_t b[16];
	long ms;

	fx_peer_timeout_ms = 60;
	REQUIRE(setup(&x, &c) == 0);
	fx_peer_timeout_ms = 0;
	c.mode = DC_SILENT;
	REQUIRE(dc_start(&c) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_B, b, 16), -EIO);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dc_stop(&c);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	     (t1.tv_nsec - t0.tv_nsec) / 1000000;
	printf("# silent client: -EIO after %ld ms\n", ms);
	CHECK(ms >= 50 && ms < 450);
	CHECK_EQ(c.reads, 1);
	CHECK(strstr(cap.last, "within 60 ms") != NULL);
	CHECK(alive(&x, L_DMA));
	CHECK(fx_fini(&x));
}

/* VU15: a reply after its deadline is dropped, not taken for the next. */
TEST(vu15_late_reply_dropped_next_request_served)
{
	struct dclient c;
	struct fx x;
	uint8_t b[16];

	REQUIRE(setup(&x, &c) == 0);
	c.mode = DC_LATE;
	memset(c.mem, 0x42, sizeof(c.mem));
	REQUIRE(dc_start(&c) == 0);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_B, b, 16), -EIO); /* no reply */
	CHECK_EQ(viommu_mem_read(x.mem, GPA_B + 16, b, 16), 0);
	dc_stop(&c);
	CHECK(b[0] == 0x42 && b[15] == 0x42);
	CHECK_EQ(c.reads, 2);
	CHECK(cap_get(&cap.warn_lines) >= 2);
	CHECK(alive(&x, L_DMA));
	CHECK(fx_fini(&x));
}

/*
 * VU14, poll mode: the doorbell's DMA inside run_once(), a command that
 * arrived meanwhile held and served in the same call.
 */
TEST(vu14_poll_mode_doorbell_dma_and_held_command)
{
	const uint32_t rw = VFU_DMA_READ_OK | VFU_DMA_WRITE_OK;
	uint8_t p[VFU_RW_SIZE + 8], msg[VFU_HDR_SIZE + 16 + 16] = { 0 };
	static const uint64_t regs[][2] = {
		{ DMAE_DMA_SRC, GPA_B }, { DMAE_DMA_DST, DMA_ENGINE_BUF_ADDR },
		{ DMAE_DMA_COUNT, 16 }, { DMAE_DMA_CMD, DMAE_CMD_START },
	};
	unsigned int id;
	struct reply r;
	struct fx x;
	int rid = -1;

	REQUIRE(fx_init(&x, FX_POLL_DMA) == 0);
	id = x.id[L_DMA];
	/* VERSION, the window, bus mastering, each served by run_once */
	REQUIRE(send_cmd(&x, L_DMA, VFU_VERSION, 0, "\0\0\0\0", 4, NULL,
			 0) >= 0);
	CHECK_EQ(viommu_link_server_run_once(x.srv, id), 0);
	REQUIRE(recv_reply(x.peer[L_DMA], &r) == 0);
	put32(p, VFU_DMA_MAP_SIZE);
	put32(p + 4, rw);
	put64(p + 8, 0);
	put64(p + 16, GPA_B);
	{
		uint8_t m[VFU_DMA_MAP_SIZE];

		memcpy(m, p, 24);
		put64(m + 24, 0x1000);
		REQUIRE(send_cmd(&x, L_DMA, VFU_DMA_MAP, 0, m, sizeof(m), NULL,
				 0) >= 0);
	}
	put64(p, PCI_COMMAND);
	put32(p + 8, VFU_REGION_CONFIG);
	put32(p + 12, 2);
	put32(p + 16, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	REQUIRE(send_cmd(&x, L_DMA, VFU_REGION_WRITE, VFU_F_NO_REPLY, p,
			 VFU_RW_SIZE + 2, NULL, 0) >= 0);
	/* the engine programmed with posted writes, the last the doorbell */
	for (unsigned int i = 0; i < 4; i++) {
		put64(p, regs[i][0]);
		put32(p + 8, 0);
		put32(p + 12, 8);
		put64(p + 16, regs[i][1]);
		rid = send_cmd(&x, L_DMA, VFU_REGION_WRITE,
			       i == 3 ? 0 : VFU_F_NO_REPLY, p, sizeof(p),
			       NULL, 0);
		REQUIRE(rid >= 0);
	}
	/* then a command, then the answer to the DMA_READ (id 0) to come */
	put64(p, DMAE_EXT_STATUS);
	put32(p + 8, 0);
	put32(p + 12, 4);
	REQUIRE(send_cmd(&x, L_DMA, VFU_REGION_READ, 0, p, VFU_RW_SIZE, NULL,
			 0) >= 0);
	put_hdr(msg, 0, VFU_DMA_READ, sizeof(msg), VFU_T_REPLY);
	put64(msg + 16, GPA_B);
	put64(msg + 24, 16);
	memset(msg + 32, 0x6b, 16);
	REQUIRE(send_raw(x.peer[L_DMA], msg, sizeof(msg), NULL, 0) == 0);
	CHECK_EQ(viommu_link_server_run_once(x.srv, id), 0);
	/* the DMA_MAP reply, our request, the doorbell's, the held read's */
	REQUIRE(recv_reply(x.peer[L_DMA], &r) == 0);
	CHECK_EQ(r.cmd, VFU_DMA_MAP);
	REQUIRE(recv_reply(x.peer[L_DMA], &r) == 0);
	CHECK_EQ(r.cmd, VFU_DMA_READ);
	CHECK_EQ(r.flags, VFU_T_COMMAND);
	REQUIRE(recv_reply(x.peer[L_DMA], &r) == 0);
	CHECK_EQ(r.id, (uint16_t)rid);
	REQUIRE(recv_reply(x.peer[L_DMA], &r) == 0);
	CHECK_EQ(r.cmd, VFU_REGION_READ);
	CHECK_U64(get32(r.d + VFU_RW_SIZE), 0); /* the DMA went through */
	CHECK_EQ(x.eng.buf[0], 0x6b);
	CHECK_EQ(x.eng.buf[15], 0x6b);
	CHECK(fx_fini(&x));
}

TEST(vu15_client_gone_while_waiting_ends_link)
{
	struct dclient c;
	struct fx x;

	REQUIRE(setup(&x, &c) == 0);
	c.mode = DC_CLOSE;
	REQUIRE(dc_wr(&x, L_DMA, &c, DMAE_DMA_SRC, GPA_B) == 0);
	REQUIRE(dc_wr(&x, L_DMA, &c, DMAE_DMA_DST, DMA_ENGINE_BUF_ADDR) == 0);
	REQUIRE(dc_wr(&x, L_DMA, &c, DMAE_DMA_COUNT, 64) == 0);
	CHECK_EQ(dc_wr(&x, L_DMA, &c, DMAE_DMA_CMD, DMAE_CMD_START),
		 BADREPLY);
	CHECK_EQ(x.peer[L_DMA], -1);
	CHECK_EQ(wait_end(x.id[L_DMA]), VIOMMU_LINK_END_HANGUP);
	CHECK(alive(&x, L_VP));
	/* DMA after the end fails at once */
	CHECK(viommu_mem_read(x.mem, GPA_B, &c.mem[0], 1) != 0);
	CHECK(fx_fini(&x));
}

TEST(vu15_stray_reply_dropped_link_goes_on)
{
	uint8_t h[VFU_HDR_SIZE];
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	put_hdr(h, 9, VFU_DMA_READ, VFU_HDR_SIZE, VFU_T_REPLY);
	REQUIRE(send_raw(x.peer[L_DMA], h, sizeof(h), NULL, 0) == 0);
	CHECK(alive(&x, L_DMA));
	CHECK_EQ(cap_get(&cap.warn_lines), 1);
	CHECK(strstr(cap.last, "to no request") != NULL);
	CHECK(fx_fini(&x));
}

/* ---- domain mode (VU2b): fd-less windows at IOVAs ---------------------- */

struct space {
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_domain *dom;
	struct viommu_endpoint *ep;
};


TEST(vu14_fdless_window_by_iova_behind_a_domain)
{
	const uint32_t rw = VFU_DMA_READ_OK | VFU_DMA_WRITE_OK;
	struct viommu_mem_config mc = { .log = test_log };
	struct viommu_ctx_config cc = { .log = test_log };
	struct viommu_domain_config dc = { .kind = VIOMMU_DOMAIN_PAGING };
	struct viommu_link_config lc = {
		.size = sizeof(lc), .proto = VIOMMU_LINK_VFIO_USER,
		.name = "iova",
	};
	uint8_t buf[64], back[64];
	struct dclient c;
	struct space sp;
	struct fx x;
	int sv[2];

	memset(&c, 0, sizeof(c));
	memset(&sp, 0, sizeof(sp));
	REQUIRE(fx_init(&x, FX_NO_LINKS) == 0);
	REQUIRE(viommu_mem_create(&mc, &sp.mem) == 0);
	cc.mem = sp.mem;
	REQUIRE(viommu_ctx_create(&cc, &sp.ctx) == 0);
	REQUIRE(viommu_domain_create(sp.ctx, &dc, &sp.dom) == 0);
	REQUIRE(viommu_endpoint_create(sp.ctx, EP2_ID, &sp.ep) == 0);
	REQUIRE(viommu_endpoint_attach(sp.ep, VIOMMU_NO_PASID, sp.dom) == 0);
	lc.func = (struct viommu_pci_func *)x.f[L_DMA];
	lc.mem = sp.mem;
	lc.domain = sp.dom;
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	x.peer[L_IOVA] = sv[0];
	lc.fd = sv[1];
	REQUIRE(viommu_link_server_add(x.srv, &lc, &x.id[L_IOVA]) == 0);
	REQUIRE(negotiate(&x, L_IOVA, NULL) == 0);
	c.sock = &x.peer[L_IOVA];
	c.base = IOVA_W;
	/* a read-write window and, after it, a read-only one */
	CHECK_EQ(dma_map(&x, L_IOVA, rw, 0, IOVA_W, 0x2000, NULL, 0), 0);
	CHECK_EQ(dma_map(&x, L_IOVA, VFU_DMA_READ_OK, 0, IOVA_W + 0x2000,
			 0x1000, NULL, 0), 0);
	REQUIRE(dc_start(&c) == 0);
	for (unsigned int i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i + 9);
	CHECK_EQ(viommu_dma_write(sp.ep, VIOMMU_NO_PASID, IOVA_W + 0x40, buf,
				  sizeof(buf)), 0);
	CHECK_EQ(viommu_dma_read(sp.ep, VIOMMU_NO_PASID, IOVA_W + 0x40, back,
				 sizeof(back)), 0);
	/* translation keeps the window's permission: no request for this */
	CHECK(viommu_dma_write(sp.ep, VIOMMU_NO_PASID, IOVA_W + 0x2000, buf,
			       8) != 0);
	dc_stop(&c);
	CHECK(!memcmp(c.mem + 0x40, buf, sizeof(buf)));
	CHECK(!memcmp(back, buf, sizeof(buf)));
	CHECK_U64(c.last_addr, IOVA_W + 0x40); /* the client sees IOVAs */
	CHECK_EQ(c.writes, 1);
	CHECK_EQ(c.reads, 1);
	CHECK_EQ(c.bad, 0);
	/*
	 * Any number of windows without an fd (QEMU's virtio-iommu maps
	 * hundreds; the domain holds them, not a 64-entry table), each
	 * unmapped by its window.
	 */
	for (unsigned int i = 0; i < 80; i++)
		CHECK_EQ(dma_map(&x, L_IOVA, rw, 0, 0x10000000 + i * 0x2000,
				 0x1000, NULL, 0), 0);
	CHECK_EQ(dma_map(&x, L_IOVA, rw, 0, 0x10000000, 0x1000, NULL, 0),
		 -EEXIST);
	for (unsigned int i = 0; i < 80; i++)
		CHECK_EQ(dma_unmap(&x, L_IOVA, 0, 0x10000000 + i * 0x2000,
				   0x1000), 0);
	/* unmapped by window: DMA there faults without a request */
	CHECK_EQ(dma_unmap(&x, L_IOVA, 0, IOVA_W, 0x2000), 0);
	CHECK(viommu_dma_read(sp.ep, VIOMMU_NO_PASID, IOVA_W, back, 8) != 0);
	CHECK_EQ(c.reads, 1);
	CHECK(fx_fini(&x));
	viommu_ctx_destroy(sp.ctx);
	viommu_mem_destroy(sp.mem);
}

TEST_MAIN()
