/*
 * test_vfio_user_iova.c - vfio-user links with a domain (LINKS.md VU2b):
 * a device behind the VMM's own vIOMMU, whose DMA windows are IOVAs.
 *
 * Each test builds, beside the fixture's devices, a second memory and
 * context with a PAGING domain and an endpoint attached to it (what
 * viommu-server --no-iommu gives each engine), and a link slot whose
 * config names that memory and domain.  The client maps windows of
 * memfds at IOVAs; the endpoint's DMA must then reach exactly the
 * window's bytes, with its permissions, fault as "no mapping" where
 * nothing is mapped, and stop reaching a window once it is unmapped.
 */
#include "vfu_fixture.h"

#define L_IOVA 2          /* the link slot with a domain */
#define EP2_ID 0x30
#define IOVA_A 0x7000000ull
#define IOVA_B 0x9000000ull
#define FILE_SIZE (1u << 20)

/* The second address space: memory, context, domain, endpoint. */
struct space {
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_domain *dom;
	struct viommu_endpoint *ep;
};

static int space_init(struct space *sp)
{
	struct viommu_mem_config mc = { .log = test_log };
	struct viommu_ctx_config cc = { .log = test_log };
	struct viommu_domain_config dc = { .kind = VIOMMU_DOMAIN_PAGING };

	memset(sp, 0, sizeof(*sp));
	if (viommu_mem_create(&mc, &sp->mem))
		return -1;
	cc.mem = sp->mem;
	if (viommu_ctx_create(&cc, &sp->ctx) ||
	    viommu_domain_create(sp->ctx, &dc, &sp->dom) ||
	    viommu_endpoint_create(sp->ctx, EP2_ID, &sp->ep))
		return -1;
	return viommu_endpoint_attach(sp->ep, VIOMMU_NO_PASID, sp->dom);
}

static void space_fini(struct space *sp)
{
	viommu_ctx_destroy(sp->ctx);
	viommu_mem_destroy(sp->mem);
}

/*
 * add_iova_link() - slot L_IOVA serving the DMA engine's function with
 * @sp's memory and domain (the fixture was made with FX_NO_LINKS; the
 * tests reach the domain through @sp's endpoint directly).
 */
static int add_iova_link(struct fx *x, struct space *sp)
{
	struct viommu_link_config lc = {
		.size = sizeof(lc), .proto = VIOMMU_LINK_VFIO_USER,
		.func = (struct viommu_pci_func *)x->f[L_DMA], .name = "iova",
		.mem = sp->mem, .domain = sp->dom,
	};
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	x->peer[L_IOVA] = sv[0];
	lc.fd = sv[1];
	return viommu_link_server_add(x->srv, &lc, &x->id[L_IOVA]) ||
	       negotiate(x, L_IOVA, NULL) ? -1 : 0;
}

/* pattern_memfd() - a memfd of FILE_SIZE whose byte i is (i * 7 + @k). */
static int pattern_memfd(uint8_t k)
{
	int fd = make_memfd(FILE_SIZE);
	uint8_t *p;

	if (fd < 0)
		return -1;
	p = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return -1;
	}
	for (size_t i = 0; i < FILE_SIZE; i++)
		p[i] = (uint8_t)(i * 7 + k);
	munmap(p, FILE_SIZE);
	return fd;
}

/* VU2b: a window is IOVA -> the window's bytes of its file. */
TEST(iova_window_reaches_its_file_bytes)
{
	const uint32_t rw = VFU_DMA_READ_OK | VFU_DMA_WRITE_OK;
	uint8_t buf[64], want[64];
	struct space sp;
	struct fx x;
	int fd;

	REQUIRE(fx_init(&x, FX_NO_LINKS) == 0);
	REQUIRE(space_init(&sp) == 0);
	REQUIRE(add_iova_link(&x, &sp) == 0);
	fd = pattern_memfd(3);
	REQUIRE(fd >= 0);
	CHECK_EQ(dma_map(&x, L_IOVA, rw, 0x3000, IOVA_A, 0x2000, &fd, 1), 0);
	CHECK_EQ(viommu_dma_read(sp.ep, VIOMMU_NO_PASID, IOVA_A + 0x10, buf,
				 sizeof(buf)), 0);
	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)((0x3010 + i) * 7 + 3);
	CHECK(!memcmp(buf, want, sizeof(buf)));
	/* a write lands in the file at the window's offset */
	memset(buf, 0xa5, sizeof(buf));
	CHECK_EQ(viommu_dma_write(sp.ep, VIOMMU_NO_PASID, IOVA_A + 0x1000,
				  buf, 8), 0);
	CHECK_EQ(pread(fd, want, 8, 0x4000), 8);
	CHECK(!memcmp(want, buf, 8));
	/* one mapping per window, no memory region per window */
	CHECK_U64(viommu_mem_ram_size(sp.mem), FILE_SIZE);
	CHECK_EQ(stats(&x, L_IOVA).ram_applied, 1);
	close(fd);
	CHECK(fx_fini(&x));
	space_fini(&sp);
}

/* VU2b: faults as an IOMMU gives them - no mapping, permission. */
TEST(iova_unmapped_and_read_only_fault_like_an_iommu)
{
	struct viommu_ctx_stats cs = { 0 };
	uint8_t b[8] = { 1 };
	struct space sp;
	struct fx x;
	int fd;

	REQUIRE(fx_init(&x, FX_NO_LINKS) == 0);
	REQUIRE(space_init(&sp) == 0);
	REQUIRE(add_iova_link(&x, &sp) == 0);
	fd = pattern_memfd(0);
	REQUIRE(fd >= 0);
	CHECK_EQ(dma_map(&x, L_IOVA, VFU_DMA_READ_OK, 0, IOVA_A, 0x1000, &fd,
			 1), 0);
	CHECK_EQ(viommu_dma_read(sp.ep, VIOMMU_NO_PASID, IOVA_A, b, 8), 0);
	CHECK_EQ(viommu_dma_write(sp.ep, VIOMMU_NO_PASID, IOVA_A, b, 8),
		 -EFAULT);
	CHECK_EQ(viommu_dma_read(sp.ep, VIOMMU_NO_PASID, IOVA_B, b, 8),
		 -EFAULT);
	viommu_ctx_stats(sp.ctx, &cs, sizeof(cs));
	CHECK_U64(cs.faults, 2);
	/* neither readable nor writable is refused, nothing mapped */
	CHECK_EQ(dma_map(&x, L_IOVA, 0, 0, IOVA_B, 0x1000, &fd, 1), -EINVAL);
	CHECK_EQ(viommu_dma_read(sp.ep, VIOMMU_NO_PASID, IOVA_B, b, 8),
		 -EFAULT);
	close(fd);
	CHECK(fx_fini(&x));
	space_fini(&sp);
}

/* VU2b/VU3: overlaps refused; unmap exact, whole ranges, never a split. */
TEST(iova_map_unmap_rules)
{
	const uint32_t rw = VFU_DMA_READ_OK | VFU_DMA_WRITE_OK;
	uint8_t b[8];
	struct space sp;
	struct fx x;
	int fd, fd2;

	REQUIRE(fx_init(&x, FX_NO_LINKS) == 0);
	REQUIRE(space_init(&sp) == 0);
	REQUIRE(add_iova_link(&x, &sp) == 0);
	fd = pattern_memfd(1);
	fd2 = pattern_memfd(2);
	REQUIRE(fd >= 0 && fd2 >= 0);
	CHECK_EQ(dma_map(&x, L_IOVA, rw, 0, IOVA_A, 0x2000, &fd, 1), 0);
	CHECK_EQ(dma_map(&x, L_IOVA, rw, 0, IOVA_A + 0x1000, 0x1000, &fd, 1),
		 -EEXIST);
	/* a second file gets a slot of its own */
	CHECK_EQ(dma_map(&x, L_IOVA, rw, 0x1000, IOVA_B, 0x1000, &fd2, 1), 0);
	CHECK_U64(viommu_mem_ram_size(sp.mem), 2 * FILE_SIZE);
	CHECK_EQ(viommu_dma_read(sp.ep, VIOMMU_NO_PASID, IOVA_B, b, 1), 0);
	CHECK_EQ(b[0], (uint8_t)(0x1000 * 7 + 2));
	/* past the file's end: refused */
	CHECK_EQ(dma_map(&x, L_IOVA, rw, FILE_SIZE - 0x1000, IOVA_B + 0x10000,
			 0x2000, &fd, 1), -EINVAL);
	/* unmap: a split is refused, nothing there is ENOENT */
	CHECK_EQ(dma_unmap(&x, L_IOVA, 0, IOVA_A, 0x1000), -EINVAL);
	CHECK_EQ(viommu_dma_read(sp.ep, VIOMMU_NO_PASID, IOVA_A, b, 8), 0);
	CHECK_EQ(dma_unmap(&x, L_IOVA, 0, IOVA_A + 0x100000, 0x1000), -ENOENT);
	CHECK_EQ(dma_unmap(&x, L_IOVA, 0, IOVA_A, 0x2000), 0);
	CHECK_EQ(viommu_dma_read(sp.ep, VIOMMU_NO_PASID, IOVA_A, b, 8),
		 -EFAULT);
	/* a window without an fd may not overlap a mapping, nor the reverse */
	CHECK_EQ(dma_map(&x, L_IOVA, rw, 0, IOVA_B, 0x1000, NULL, 0), -EEXIST);
	CHECK_EQ(dma_map(&x, L_IOVA, rw, 0, IOVA_B + 0x4000, 0x1000, NULL, 0),
		 0);
	CHECK_EQ(dma_map(&x, L_IOVA, rw, 0, IOVA_B + 0x4000, 0x1000, &fd, 1),
		 -EEXIST);
	/* unmap-all clears the rest */
	CHECK_EQ(dma_unmap(&x, L_IOVA, 0x2, 0, 0), 0);
	CHECK_EQ(viommu_dma_read(sp.ep, VIOMMU_NO_PASID, IOVA_B, b, 8),
		 -EFAULT);
	CHECK_EQ(dma_map(&x, L_IOVA, rw, 0, IOVA_A, 0x1000, &fd, 1), 0);
	close(fd);
	close(fd2);
	CHECK(fx_fini(&x));
	space_fini(&sp);
}

/* A domain needs the link's own memory and the vfio-user protocol. */
TEST(iova_config_refusals)
{
	struct viommu_link_config lc = {
		.size = sizeof(lc), .proto = VIOMMU_LINK_VFIO_USER,
		.fd = -1, .path = "/tmp/never-bound",
	};
	char path[64];
	struct space sp;
	struct fx x;
	unsigned int id;

	REQUIRE(fx_init(&x, FX_NO_LINKS) == 0);
	REQUIRE(space_init(&sp) == 0);
	lc.func = (struct viommu_pci_func *)x.f[L_DMA];
	lc.domain = sp.dom;
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EINVAL);
	lc.mem = sp.mem;
	lc.proto = VIOMMU_LINK_MPQEMU;
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), -EINVAL);
	CHECK_EQ(viommu_link_server_num_links(x.srv), 0);
	/*
	 * A caller built before @domain existed says a smaller size: what
	 * lies past it is not read (here a domain that would be refused
	 * with mpqemu), so the add succeeds.
	 */
	snprintf(path, sizeof(path), "/tmp/test_vfu_iova.%d", (int)getpid());
	unlink(path);
	lc.path = path;
	lc.size = offsetof(struct viommu_link_config, domain);
	CHECK_EQ(viommu_link_server_add(x.srv, &lc, &id), 0);
	CHECK_EQ(access(path, F_OK), 0);
	CHECK(fx_fini(&x));
	CHECK_EQ(access(path, F_OK), -1);
	space_fini(&sp);
}

TEST_MAIN()
