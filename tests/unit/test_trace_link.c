/*
 * test_trace_link.c - the link server's typed trace points (part of the
 * test_trace program), driven through the in-process vfio-user fixture
 * (vfu_fixture.h): a command received with its size and fds, its reply,
 * an error reply, a DMA window added and removed, the link's end; and a
 * polled register frame's write and round events with a one-register
 * model.
 */
#include "harness.h"
#include "trace_recs.h"
#include "vfu_fixture.h"
#include "link/regframe.h"

TEST(link_messages_replies_dma_and_end)
{
	struct recs rs;
	struct viommu_trace_sink s = {
		.size = sizeof(s), .mask = VIOMMU_TRACE_ALL, .fn = rec_fn,
		.opaque = &rs,
	};
	struct viommu_trace_record r;
	int fd, k;
	struct fx x;

	recs_init(&rs);
	REQUIRE(fx_init(&x, 0) == 0);
	CHECK_EQ(viommu_link_server_set_trace_sink(NULL, &s), -EINVAL);
	REQUIRE(viommu_link_server_set_trace_sink(x.srv, &s) == 0);
	fd = make_memfd(WIN);
	REQUIRE(fd >= 0);
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_A, WIN, fd), 0);
	close(fd);
	CHECK(alive(&x, L_DMA)); /* the map's last event is in */

	/* DMA_MAP: received with its payload and fd, replied, window added */
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_LINK_MSG, 0, &r));
	CHECK_STR(r.event, "link_msg");
	CHECK_U64(r.values[0], x.id[L_DMA]);
	CHECK_U64(r.values[1], VFU_DMA_MAP);
	CHECK_U64(r.values[3], VFU_DMA_MAP_SIZE);
	CHECK_U64(r.values[4], 1);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_LINK_REPLY, 0, &r));
	CHECK_U64(r.values[1], VFU_DMA_MAP);
	CHECK_U64(r.values[4], 0);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_LINK_DMA, 0, &r));
	CHECK_U64(r.values[1], 0); /* add */
	CHECK_U64(r.values[2], GPA_A);
	CHECK_U64(r.values[3], WIN);
	CHECK_U64(r.values[4], VFU_DMA_READ_OK | VFU_DMA_WRITE_OK);
	CHECK_U64(r.values[5], 0);
	/* the message ID echoes the request's */
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_LINK_MSG, 1, &r));
	CHECK_U64(r.values[1], VFU_DEVICE_GET_INFO);
	CHECK_U64(r.values[2], (uint16_t)(x.next_id[L_DMA] - 1));

	/* an unmap of no window: an error reply, traced with its errno */
	CHECK_EQ(dma_unmap(&x, L_DMA, 0, GPA_B, WIN), -ENOENT);
	CHECK(alive(&x, L_DMA));
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_LINK_DMA, 1, &r));
	CHECK_U64(r.values[1], 1); /* remove */
	CHECK_U64(r.values[2], GPA_B);
	CHECK_U64(r.values[5], ENOENT);
	k = count_rec(&rs, VIOMMU_TRACE_LINK_REPLY);
	CHECK(k >= 3);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0, GPA_A, WIN), 0);
	CHECK(alive(&x, L_DMA));
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_LINK_DMA, 2, &r));
	CHECK_U64(r.values[5], 0);

	/* the peer goes away: the link's end and why */
	close_peer(&x, L_DMA);
	CHECK_EQ(wait_end(x.id[L_DMA]), VIOMMU_LINK_END_HANGUP);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_LINK_END, 0, &r));
	CHECK_U64(r.values[0], x.id[L_DMA]);
	CHECK_U64(r.values[1], VIOMMU_LINK_END_HANGUP);
	CHECK(fx_fini(&x));
}

/* a one-register model for the frame: the last value written */
static int one_read(void *model, uint64_t off, unsigned int size,
		    uint64_t *val)
{
	(void)off;
	(void)size;
	*val = *(uint32_t *)model;
	return 0;
}

static int one_write(void *model, uint64_t off, unsigned int size,
		     uint64_t val)
{
	(void)off;
	(void)size;
	*(uint32_t *)model = (uint32_t)val;
	return 0;
}

TEST(frame_write_and_round)
{
	static const struct regframe_reg regs[] = { { 0x8, 4, true } };
	static const struct regframe_ops ops = {
		.regs = regs, .nregs = 1, .frame_size = 0x10,
		.read = one_read, .write = one_write,
	};
	struct recs rs;
	struct viommu_trace_sink s = {
		.size = sizeof(s), .mask = VIOMMU_TRACE_ALL, .fn = rec_fn,
		.opaque = &rs,
	};
	static uint8_t ram[0x1000] __attribute__((aligned(8)));
	struct viommu_mem_region reg = {
		.gpa = 0x100000, .size = sizeof(ram), .fd = -1, .hva = ram,
	};
	struct regframe_config rc = {
		.size = sizeof(rc), .ops = &ops, .gpa = 0x100000,
		.trace = &s,
	};
	struct viommu_trace_record r;
	struct viommu_mem *mem = NULL;
	struct regframe *rf = NULL;
	uint32_t model = 0;
	bool changed;

	recs_init(&rs);
	REQUIRE(viommu_mem_create(NULL, &mem) == 0);
	REQUIRE(viommu_mem_set_regions(mem, &reg, 1) == 0);
	rc.mem = mem;
	rc.model = &model;
	s.mask = 1ull << 63;
	CHECK_EQ(regframe_create(&rc, &rf), -EINVAL);
	s.mask = VIOMMU_TRACE_ALL;
	REQUIRE(regframe_create(&rc, &rf) == 0);
	REQUIRE(regframe_round(rf, &changed) == 0); /* primes */
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_FRAME_ROUND, 0, &r));
	CHECK_U64(r.values[0], 0);
	CHECK_U64(r.values[2], 1);
	CHECK_EQ(count_rec(&rs, VIOMMU_TRACE_FRAME_WRITE), 0);
	/* the guest stores into the frame: fed, traced */
	__atomic_store_n((uint32_t *)(ram + 0x8), 0x1234u, __ATOMIC_RELEASE);
	REQUIRE(regframe_round(rf, &changed) == 0);
	CHECK(changed);
	CHECK_EQ(model, 0x1234);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_FRAME_WRITE, 0, &r));
	CHECK_STR(r.event, "frame_write");
	CHECK_U64(r.values[0], 0x8);
	CHECK_U64(r.values[1], 4);
	CHECK_U64(r.values[2], 0x1234);
	CHECK_U64(r.values[3], 0);
	REQUIRE(find_rec(&rs, VIOMMU_TRACE_FRAME_ROUND, 1, &r));
	CHECK_U64(r.values[0], 1);
	/* a quiet round is not traced */
	REQUIRE(regframe_round(rf, &changed) == 0);
	CHECK(!changed);
	CHECK_EQ(count_rec(&rs, VIOMMU_TRACE_FRAME_ROUND), 2);
	regframe_destroy(rf);
	viommu_mem_destroy(mem);
}
