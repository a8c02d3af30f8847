/*
 * test_vfio_user.c - the messages of an open vfio-user link
 * (src/link/vfio_user.c, served by the link server of src/link/link.c):
 * VERSION and the information commands, REGION_READ/WRITE into the
 * function's config space and BARs, DMA_MAP/DMA_UNMAP windows as guest
 * RAM and which link owns the shared guest RAM, unknown commands, the
 * fds a message carries, DEVICE_RESET.  The fixture (two links, a fake
 * QEMU-like client) is in vfu_fixture.h; interrupts are in
 * test_vfio_user_irq.c, the life of links in test_vfio_user_link.c.
 *
 * Refusal tests check the errno of the error reply and that nothing
 * changed (a register, guest RAM, the fds the process holds).
 */
#include <fcntl.h>

#include "vfu_fixture.h"

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
	uint32_t flags = ~0u, count = ~0u; /* read only after a checked call */
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
	static uint8_t big[VFU_MAX_XFER + 1]; /* room for what is refused */
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
		       big), -EINVAL);
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
	uint8_t got[64] = { 0 }, want[64];
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
/*
 * A window whose fd cannot give its access is refused before the memory
 * layer tries to map it (which would log a line per message): an O_RDONLY
 * file with WRITE, EBADF; the same with READ only is fine.
 */
TEST(dma_map_fd_access_checked_first)
{
	char path[64];
	struct fx x;
	int fd, ro;

	REQUIRE(fx_init(&x, 0) == 0);
	fd = make_memfd(WIN);
	REQUIRE(fd >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	REQUIRE(ro >= 0);
	CHECK_EQ(dma_map(&x, L_DMA, VFU_DMA_READ_OK | VFU_DMA_WRITE_OK, 0,
			 GPA_A, WIN, &ro, 1), -EBADF);
	CHECK_U64(viommu_mem_ram_size(x.mem), 0);
	CHECK_EQ(dma_map(&x, L_DMA, VFU_DMA_READ_OK, 0, GPA_A, WIN, &ro, 1),
		 0);
	CHECK_U64(viommu_mem_ram_size(x.mem), WIN);
	close(ro);
	close(fd);
	CHECK(fx_fini(&x));
}

/* Windows without an fd: RAM reached by DMA_READ/WRITE (see
 * test_vfio_user_dma.c); here, the window bookkeeping. */
TEST(dma_map_without_fd_is_a_window)
{
	const uint32_t rw = VFU_DMA_READ_OK | VFU_DMA_WRITE_OK;
	struct fx x;
	size_t contig;
	void *hva;
	int fd;
	char c;

	REQUIRE(fx_init(&x, 0) == 0);
	fd = make_memfd(WIN);
	REQUIRE(fd >= 0);
	REQUIRE(dma_map_fd(&x, L_DMA, GPA_A, WIN, fd) == 0);
	CHECK_EQ(dma_map(&x, L_DMA, rw, 0, GPA_B, WIN, NULL, 0), 0);
	CHECK_U64(viommu_mem_ram_size(x.mem), 2 * WIN);
	CHECK_EQ(viommu_mem_ptr(x.mem, GPA_B, 1, VIOMMU_READ, &hva, &contig),
		 -EREMOTE);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_A, &c, 1), 0);
	/* it is a window all the same: overlaps refused, exact unmap */
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_B + 0x1000, 0x1000, fd), -EEXIST);
	CHECK_EQ(dma_map(&x, L_DMA, rw, 0, GPA_B, 0x1000, NULL, 0), -EEXIST);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0, GPA_B, 0x1000), -ENOENT);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0, GPA_B, WIN), 0);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0, GPA_B, WIN), -ENOENT);
	/* the fd-backed window stayed through all of it */
	CHECK_EQ(viommu_mem_read(x.mem, GPA_A, &c, 1), 0);
	CHECK_U64(viommu_mem_ram_size(x.mem), WIN);
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_B, WIN, fd), 0);
	CHECK_U64(viommu_mem_ram_size(x.mem), 2 * WIN);
	close(fd);
	CHECK(fx_fini(&x));
}

/*
 * VU2/L10 (issue 17 item 1): a peer that truncates guest RAM it mapped
 * must not kill the server with SIGBUS.  A file it could still shrink is
 * refused; a sealed one cannot be truncated, so the device's DMA after
 * the attempt reaches RAM as before.
 */
TEST(vu2_unsealed_ram_refused_sealed_survives_truncate)
{
	struct fx x;
	int plain, sealed;

	REQUIRE(fx_init(&x, 0) == 0);
	plain = make_memfd_seals(WIN, 0);
	sealed = make_memfd_seals(WIN, F_SEAL_SHRINK);
	REQUIRE(plain >= 0 && sealed >= 0);
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_A, WIN, plain), -EPERM);
	CHECK_U64(viommu_mem_ram_size(x.mem), 0);
	CHECK_EQ(cap_get(&cap.warn_lines), 1);
	CHECK(strstr(cap.last, "not sealed against shrinking") != NULL);
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_A, WIN, sealed), 0);
	/* the peer tries to shrink it, then kicks the device */
	CHECK(ftruncate(sealed, 0) < 0);
	REQUIRE(wr(&x, L_DMA, VFU_REGION_CONFIG, PCI_COMMAND,
		   PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2) == 0);
	engine_dma(&x, DMA_ENGINE_BUF_ADDR, GPA_A + WIN - 64, 64,
		   DMAE_CMD_START | DMAE_CMD_TO_RAM);
	CHECK_U64(rd(&x, L_DMA, 0, DMAE_EXT_STATUS, 4), 0);
	CHECK(alive(&x, L_DMA));
	close(plain);
	close(sealed);
	CHECK(fx_fini(&x));
}

/* VU2: a link that trusts its peer takes a file without seals. */
TEST(vu2_trusted_peer_may_map_unsealed_ram)
{
	struct viommu_link_config lc = {
		.size = sizeof(lc), .proto = VIOMMU_LINK_VFIO_USER,
		.name = "trusting", .trust_peer_fds = true,
	};
	struct fx x;
	int sv[2], plain;

	REQUIRE(fx_init(&x, FX_NO_LINKS) == 0);
	lc.func = (struct viommu_pci_func *)x.f[L_DMA];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	x.peer[L_DMA] = sv[0];
	lc.fd = sv[1];
	REQUIRE(viommu_link_server_add(x.srv, &lc, &x.id[L_DMA]) == 0);
	REQUIRE(negotiate(&x, L_DMA, NULL) == 0);
	plain = make_memfd_seals(WIN, 0);
	REQUIRE(plain >= 0);
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_A, WIN, plain), 0);
	CHECK_U64(viommu_mem_ram_size(x.mem), WIN);
	close(plain);
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

/*
 * Regression: a link whose first change to guest RAM was DMA_UNMAP of
 * everything (a client may clear its table so before it maps anything)
 * took ownership of the shared memory with an empty table, and the maps
 * of the link that does carry guest RAM were all dropped.  Removing
 * nothing from nothing claims no ownership.
 */
TEST(unmap_all_first_does_not_own_guest_ram)
{
	int a, b;
	struct fx x;
	char ch;

	REQUIRE(fx_init(&x, 0) == 0);
	a = make_memfd(WIN);
	b = make_memfd(WIN);
	REQUIRE(a >= 0 && b >= 0);
	REQUIRE(pwrite(a, "a", 1, 0) == 1 && pwrite(b, "b", 1, 0) == 1);
	/* link 0: unmap-all (flags 0x2, address and size 0) before any map */
	CHECK_EQ(dma_unmap(&x, L_DMA, 0x2, 0, 0), 0);
	CHECK_U64(stats(&x, L_DMA).ram_ignored, 1);
	CHECK_U64(stats(&x, L_DMA).ram_applied, 0);
	/* link 1 maps: applied, it owns guest RAM now */
	CHECK_EQ(dma_map_fd(&x, L_VP, GPA_A, WIN, a), 0);
	CHECK_U64(stats(&x, L_VP).ram_applied, 1);
	CHECK_U64(stats(&x, L_VP).ram_ignored, 0);
	CHECK_U64(viommu_mem_ram_size(x.mem), WIN);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_A, &ch, 1), 0);
	CHECK_EQ(ch, 'a');
	/* ... so link 0's own map (and unmap-all) are dropped from now on */
	CHECK_EQ(dma_map_fd(&x, L_DMA, GPA_B, WIN, b), 0);
	CHECK_EQ(dma_unmap(&x, L_DMA, 0x2, 0, 0), 0);
	CHECK_U64(stats(&x, L_DMA).ram_ignored, 3);
	CHECK_U64(stats(&x, L_DMA).ram_applied, 0);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_B, &ch, 1), -EFAULT);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_A, &ch, 1), 0);
	CHECK_EQ(ch, 'a');
	/* the owner's own unmap-all empties guest RAM, and it stays owner */
	CHECK_EQ(dma_unmap(&x, L_VP, 0x2, 0, 0), 0);
	CHECK_U64(stats(&x, L_VP).ram_applied, 2);
	CHECK_U64(viommu_mem_ram_size(x.mem), 0);
	CHECK_EQ(dma_map_fd(&x, L_VP, GPA_C, WIN, b), 0);
	CHECK_U64(stats(&x, L_VP).ram_applied, 3);
	CHECK_EQ(viommu_mem_read(x.mem, GPA_C, &ch, 1), 0);
	CHECK_EQ(ch, 'b');
	CHECK_U64(stats(&x, L_DMA).ram_ignored, 3);
	close(a);
	close(b);
	CHECK(fx_fini(&x));
}

/* ---- other commands and the fds they carry -------------------------- */

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

TEST_MAIN()
