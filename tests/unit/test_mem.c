/*
 * test_mem.c - unit tests of the guest-memory layer: hva and memfd
 * regions, bounds and wrap checks, read-only regions, refused region sets,
 * mapping reuse on replacement, the grace period, concurrent readers
 * against replacement, allocation-failure injection, and I/O regions
 * reached through callbacks.
 */
#include "harness.h"
#include "mem/mem_internal.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096u

/* ---- helpers ---------------------------------------------------------- */

/* new_memfd() - a memfd of @size bytes, every byte @pattern. */
static int new_memfd(size_t size, uint8_t pattern)
{
	int fd = memfd_create("test_mem", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	uint8_t *buf;

	if (fd < 0)
		return -1;
	/* sealed as QEMU seals guest RAM: the layer refuses it otherwise */
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		close(fd);
		return -1;
	}
	buf = malloc(size);
	memset(buf, pattern, size);
	if (pwrite(fd, buf, size, 0) != (ssize_t)size) {
		close(fd);
		fd = -1;
	}
	free(buf);
	return fd;
}

/* count_fds() - open descriptors of this process. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static struct viommu_mem_region hva_region(uint64_t gpa, uint64_t size,
					   void *hva, uint32_t flags)
{
	return (struct viommu_mem_region){ .gpa = gpa, .size = size,
					   .fd = -1, .hva = hva,
					   .flags = flags };
}

static struct viommu_mem_region fd_region(uint64_t gpa, uint64_t size,
					  int fd, uint64_t off,
					  uint32_t flags)
{
	return (struct viommu_mem_region){ .gpa = gpa, .size = size,
					   .fd = fd, .fd_offset = off,
					   .flags = flags };
}

/* all_bytes() - whether @len bytes at @p all equal @v. */
static int all_bytes(const void *p, size_t len, uint8_t v)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != v)
			return 0;
	return 1;
}

struct log_count {
	int warns;
	char last[512];
};

static void count_log(void *opaque, enum viommu_log_level level,
		      const char *line)
{
	struct log_count *lc = opaque;

	if (level == VIOMMU_LOG_WARN)
		lc->warns++;
	snprintf(lc->last, sizeof(lc->last), "%s", line);
}

static struct viommu_mem *new_mem(struct log_count *lc)
{
	struct viommu_mem_config cfg = { 0 };
	struct viommu_mem *m = NULL;

	if (lc) {
		cfg.log.fn = count_log;
		cfg.log.opaque = lc;
		cfg.log.level = VIOMMU_LOG_DEBUG;
	}
	if (viommu_mem_create(&cfg, &m))
		return NULL;
	return m;
}

/* ---- basic access ----------------------------------------------------- */

TEST(create_args)
{
	struct viommu_mem *m = NULL;

	CHECK_EQ(viommu_mem_create(NULL, NULL), -EINVAL);
	CHECK_EQ(viommu_mem_create(NULL, &m), 0);
	CHECK(m != NULL);
	CHECK_U64(viommu_mem_ram_size(m), 0);
	CHECK_EQ(viommu_mem_set_regions(m, NULL, 0), 0);
	CHECK_EQ(viommu_mem_set_regions(NULL, NULL, 0), -EINVAL);
	viommu_mem_destroy(m);
	viommu_mem_destroy(NULL);
}

TEST(hva_read_write_ptr)
{
	static uint8_t a[2 * PG], b[PG];
	struct viommu_mem_region r[2] = {
		hva_region(0x10000, PG, b, 0),
		hva_region(0x1000, 2 * PG, a, 0),
	};
	struct viommu_mem *m = new_mem(NULL);
	uint8_t buf[64];
	size_t contig;
	void *hva;

	REQUIRE(m);
	REQUIRE(viommu_mem_set_regions(m, r, 2) == 0);
	CHECK_U64(viommu_mem_ram_size(m), 3 * PG);

	memset(buf, 0x3c, sizeof(buf));
	CHECK_EQ(viommu_mem_write(m, 0x1010, buf, sizeof(buf)), 0);
	CHECK(all_bytes(a + 0x10, sizeof(buf), 0x3c));
	a[0x100] = 0x77;
	CHECK_EQ(viommu_mem_read(m, 0x1100, buf, 1), 0);
	CHECK_EQ(buf[0], 0x77);
	b[PG - 1] = 0x99;
	CHECK_EQ(viommu_mem_read(m, 0x10000 + PG - 1, buf, 1), 0);
	CHECK_EQ(buf[0], 0x99);

	CHECK_EQ(viommu_mem_ptr(m, 0x1000 + 2 * PG - 16, 100, VIOMMU_READ,
				&hva, &contig), 0);
	CHECK(hva == a + 2 * PG - 16);
	CHECK_EQ(contig, 16);
	CHECK_EQ(viommu_mem_ptr(m, 0x1004, 8, VIOMMU_READ | VIOMMU_WRITE,
				&hva, &contig), 0);
	CHECK(hva == a + 4);
	CHECK_EQ(contig, 8);
	CHECK_EQ(viommu_mem_ptr(m, 0x10000, PG + 1, VIOMMU_WRITE, &hva,
				&contig), 0);
	CHECK(hva == b);
	CHECK_EQ(contig, PG);

	CHECK_EQ(viommu_mem_ptr(m, 0x0, 1, VIOMMU_READ, &hva, &contig),
		 -EFAULT);
	CHECK_EQ(viommu_mem_ptr(m, 0x1000 + 2 * PG, 1, VIOMMU_READ, &hva,
				&contig), -EFAULT);
	CHECK_EQ(viommu_mem_ptr(m, 0x1000, 0, VIOMMU_READ, &hva, &contig),
		 -EINVAL);
	CHECK_EQ(viommu_mem_ptr(m, 0x1000, 1, 0, &hva, &contig), -EINVAL);
	CHECK_EQ(viommu_mem_ptr(m, 0x1000, 1, VIOMMU_EXEC, &hva, &contig),
		 -EINVAL);
	CHECK_EQ(viommu_mem_ptr(m, 0x1000, 1, VIOMMU_READ, NULL, &contig),
		 -EINVAL);
	CHECK_EQ(viommu_mem_ptr(m, 0x1000, 1, VIOMMU_READ, &hva, NULL),
		 -EINVAL);
	CHECK_EQ(viommu_mem_ptr(NULL, 0x1000, 1, VIOMMU_READ, &hva, &contig),
		 -EINVAL);
	viommu_mem_destroy(m);
}

TEST(find_and_next_ram)
{
	static uint8_t a[PG], b[PG], c[PG];
	struct viommu_mem_region r[3] = {
		hva_region(0x30000, PG, c, VIOMMU_MEM_F_READONLY),
		hva_region(0x10000, PG, a, 0),
		hva_region(0x20000, PG, b, 0),
	};
	struct viommu_mem *m = new_mem(NULL);
	struct mem_piece p;
	unsigned int tok;

	REQUIRE(m);
	CHECK_EQ(mem_find(m, 0, &p), -EFAULT);
	CHECK_U64(mem_next_ram(m, 0), UINT64_MAX);
	REQUIRE(viommu_mem_set_regions(m, r, 3) == 0);
	tok = viommu_mem_read_lock(m);
	CHECK_EQ(mem_find(m, 0x20010, &p), 0);
	CHECK_U64(p.gpa, 0x20000);
	CHECK_U64(p.size, PG);
	CHECK(p.hva == b);
	CHECK_EQ(mem_find(m, 0x30fff, &p), 0);
	CHECK(p.hva == c);
	CHECK_EQ(p.flags, VIOMMU_MEM_F_READONLY);
	CHECK_EQ(mem_find(m, 0x10000, &p), 0);
	CHECK(p.hva == a);
	CHECK_EQ(mem_find(m, 0xffff, &p), -EFAULT);
	CHECK_EQ(mem_find(m, 0x11000, &p), -EFAULT);
	CHECK_EQ(mem_find(m, 0x31000, &p), -EFAULT);
	CHECK_U64(mem_next_ram(m, 0), 0x10000);
	CHECK_U64(mem_next_ram(m, 0x10000), 0x20000);
	CHECK_U64(mem_next_ram(m, 0x11000), 0x20000);
	CHECK_U64(mem_next_ram(m, 0x2ffff), 0x30000);
	CHECK_U64(mem_next_ram(m, 0x30000), UINT64_MAX);
	/* sections nest */
	unsigned int tok2 = viommu_mem_read_lock(m);
	CHECK_EQ(mem_find(m, 0x10000, &p), 0);
	viommu_mem_read_unlock(m, tok2);
	viommu_mem_read_unlock(m, tok);
	viommu_mem_destroy(m);
}

TEST(cached_ptr_hits_refills_and_sees_replacement)
{
	static uint8_t a[PG], b[PG], c[PG], d[PG];
	struct viommu_mem_region r[3] = {
		hva_region(0x10000, PG, a, 0),
		hva_region(0x11000, PG, b, 0), /* adjacent to a */
		hva_region(0x20000, PG, c, VIOMMU_MEM_F_READONLY),
	};
	struct viommu_mem *m = new_mem(NULL);
	struct mem_cache mc = { 0 };
	unsigned int tok;
	void *h = NULL;

	REQUIRE(m);
	tok = viommu_mem_read_lock(m);
	CHECK_EQ(mem_cached_ptr(m, &mc, 0x10000, 4, false, &h), -EFAULT);
	viommu_mem_read_unlock(m, tok);
	REQUIRE(viommu_mem_set_regions(m, r, 3) == 0);
	tok = viommu_mem_read_lock(m);
	CHECK_EQ(mem_cached_ptr(m, &mc, 0x10010, 16, true, &h), 0);
	CHECK(h == a + 0x10);
	CHECK_U64(mc.piece.gpa, 0x10000);
	/* a hit at the region's last byte; one past it refills */
	CHECK_EQ(mem_cached_ptr(m, &mc, 0x10fff, 1, false, &h), 0);
	CHECK(h == a + PG - 1);
	CHECK_EQ(mem_cached_ptr(m, &mc, 0x11000, 1, false, &h), 0);
	CHECK(h == b);
	CHECK_U64(mc.piece.gpa, 0x11000);
	/* leaving the region (into an adjacent one) is the caller's slow path */
	CHECK_EQ(mem_cached_ptr(m, &mc, 0x10ff0, 32, false, &h), -E2BIG);
	CHECK_EQ(mem_cached_ptr(m, &mc, 0x11ff0, 32, false, &h), -E2BIG);
	/* holes and read-only regions */
	CHECK_EQ(mem_cached_ptr(m, &mc, 0x12000, 1, false, &h), -EFAULT);
	CHECK_EQ(mem_cached_ptr(m, &mc, 0x20000, 8, false, &h), 0);
	CHECK(h == c);
	CHECK_EQ(mem_cached_ptr(m, &mc, 0x20000, 8, true, &h), -EPERM);
	viommu_mem_read_unlock(m, tok);
	/* the same GPA in a new region set: the cache must not serve the old
	 * host address */
	CHECK_EQ(mem_cached_ptr(m, &mc, 0x20008, 8, false, &h), 0);
	r[2] = hva_region(0x20000, PG, d, 0);
	REQUIRE(viommu_mem_set_regions(m, r, 3) == 0);
	tok = viommu_mem_read_lock(m);
	CHECK_EQ(mem_cached_ptr(m, &mc, 0x20008, 8, true, &h), 0);
	CHECK(h == d + 8);
	viommu_mem_read_unlock(m, tok);
	/* and nothing once the RAM is gone */
	REQUIRE(viommu_mem_set_regions(m, NULL, 0) == 0);
	tok = viommu_mem_read_lock(m);
	CHECK_EQ(mem_cached_ptr(m, &mc, 0x20008, 8, false, &h), -EFAULT);
	viommu_mem_read_unlock(m, tok);
	viommu_mem_destroy(m);
}

TEST(memfd_visible_through_fd)
{
	int fd = new_memfd(4 * PG, 0x11), fds0 = count_fds(), fds1;
	struct viommu_mem *m = new_mem(NULL);
	struct viommu_mem_region r;
	uint8_t buf[32], fbuf[32];

	REQUIRE(fd >= 0 && m);
	fds0 = count_fds();
	r = fd_region(0x100000, 2 * PG, fd, PG, 0);
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	CHECK_EQ(count_fds(), fds0 + 1); /* the layer's dup */

	CHECK_EQ(viommu_mem_read(m, 0x100000, buf, sizeof(buf)), 0);
	CHECK(all_bytes(buf, sizeof(buf), 0x11));
	memset(buf, 0xab, sizeof(buf));
	CHECK_EQ(viommu_mem_write(m, 0x100000 + 10, buf, sizeof(buf)), 0);
	CHECK_EQ(pread(fd, fbuf, sizeof(fbuf), PG + 10), (ssize_t)sizeof(fbuf));
	CHECK(all_bytes(fbuf, sizeof(fbuf), 0xab));
	memset(fbuf, 0xcd, sizeof(fbuf));
	CHECK_EQ(pwrite(fd, fbuf, sizeof(fbuf), 2 * PG), (ssize_t)sizeof(fbuf));
	CHECK_EQ(viommu_mem_read(m, 0x100000 + PG, buf, sizeof(buf)), 0);
	CHECK(all_bytes(buf, sizeof(buf), 0xcd));

	/* the caller's fd may go: the layer keeps its own */
	close(fd);
	fds1 = count_fds();
	CHECK_EQ(viommu_mem_read(m, 0x100000 + PG, buf, sizeof(buf)), 0);
	CHECK(all_bytes(buf, sizeof(buf), 0xcd));
	/* region end is the size, not the file end */
	CHECK_EQ(viommu_mem_read(m, 0x100000 + 2 * PG - 1, buf, 2), -EFAULT);
	viommu_mem_destroy(m);
	CHECK_EQ(count_fds(), fds1 - 1);
}

TEST(unaligned_size_memfd)
{
	int fd = new_memfd(PG, 0x42);
	struct viommu_mem *m = new_mem(NULL);
	struct viommu_mem_region r;
	size_t contig;
	void *hva;
	uint8_t v;

	REQUIRE(fd >= 0 && m);
	r = fd_region(0x5000, 100, fd, 0, 0);
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	CHECK_EQ(viommu_mem_read(m, 0x5000 + 99, &v, 1), 0);
	CHECK_EQ(v, 0x42);
	CHECK_EQ(viommu_mem_read(m, 0x5000 + 100, &v, 1), -EFAULT);
	CHECK_EQ(viommu_mem_ptr(m, 0x5000 + 90, 64, VIOMMU_READ, &hva,
				&contig), 0);
	CHECK_EQ(contig, 10);
	viommu_mem_destroy(m);
	close(fd);
}

TEST(read_spans_adjacent_regions)
{
	static uint8_t a[PG], b[PG];
	int fd = new_memfd(PG, 0xb2);
	struct viommu_mem_region r[3];
	struct viommu_mem *m = new_mem(NULL);
	uint8_t buf[3 * PG];

	REQUIRE(fd >= 0 && m);
	memset(a, 0xa1, sizeof(a));
	memset(b, 0xc3, sizeof(b));
	r[0] = hva_region(0x2000, PG, a, 0);
	r[1] = fd_region(0x3000, PG, fd, 0, 0);
	r[2] = hva_region(0x4000, PG, b, 0);
	REQUIRE(viommu_mem_set_regions(m, r, 3) == 0);
	CHECK_EQ(viommu_mem_read(m, 0x2000, buf, sizeof(buf)), 0);
	CHECK(all_bytes(buf, PG, 0xa1));
	CHECK(all_bytes(buf + PG, PG, 0xb2));
	CHECK(all_bytes(buf + 2 * PG, PG, 0xc3));
	CHECK_EQ(viommu_mem_read(m, 0x2ff0, buf, 0x20), 0);
	CHECK(all_bytes(buf, 0x10, 0xa1));
	CHECK(all_bytes(buf + 0x10, 0x10, 0xb2));

	memset(buf, 0x5e, sizeof(buf));
	CHECK_EQ(viommu_mem_write(m, 0x2800, buf, 2 * PG), 0);
	CHECK(all_bytes(a, 0x800, 0xa1));
	CHECK(all_bytes(a + 0x800, 0x800, 0x5e));
	CHECK(all_bytes(b, 0x800, 0x5e));
	CHECK(all_bytes(b + 0x800, 0x800, 0xc3));
	CHECK_EQ(pread(fd, buf, PG, 0), (ssize_t)PG);
	CHECK(all_bytes(buf, PG, 0x5e));
	/* one past the last region */
	CHECK_EQ(viommu_mem_read(m, 0x2000, buf, sizeof(buf) + 1), -EFAULT);
	viommu_mem_destroy(m);
	close(fd);
}

TEST(hole_between_regions)
{
	static uint8_t a[PG], b[PG];
	struct viommu_mem_region r[2] = {
		hva_region(0x1000, PG, a, 0),
		hva_region(0x3000, PG, b, 0),
	};
	struct viommu_mem *m = new_mem(NULL);
	uint8_t buf[3 * PG];

	REQUIRE(m);
	memset(a, 0x01, PG);
	memset(b, 0x02, PG);
	REQUIRE(viommu_mem_set_regions(m, r, 2) == 0);
	memset(buf, 0xee, sizeof(buf));
	CHECK_EQ(viommu_mem_read(m, 0x1ff0, buf, 0x1020), -EFAULT);
	CHECK(all_bytes(buf, sizeof(buf), 0xee));
	CHECK_EQ(viommu_mem_read(m, 0x1000, buf, 3 * PG), -EFAULT);
	CHECK(all_bytes(buf, sizeof(buf), 0xee));
	CHECK_EQ(viommu_mem_write(m, 0x1ff0, buf, 0x1020), -EFAULT);
	CHECK_EQ(viommu_mem_write(m, 0x1000, buf, 3 * PG), -EFAULT);
	CHECK(all_bytes(a, PG, 0x01));
	CHECK(all_bytes(b, PG, 0x02));
	CHECK_EQ(viommu_mem_read(m, 0x2000, buf, 1), -EFAULT);
	CHECK_EQ(viommu_mem_read(m, 0x0, buf, 1), -EFAULT);
	viommu_mem_destroy(m);
}

TEST(wrap_around)
{
	static uint8_t top[PG], low[PG];
	struct viommu_mem_region r[2] = {
		hva_region(UINT64_MAX - (PG - 1), PG, top, 0),
		hva_region(0, PG, low, 0),
	};
	struct viommu_mem *m = new_mem(NULL);
	uint8_t buf[64];
	size_t contig;
	void *hva;

	REQUIRE(m);
	memset(top, 0x7, PG);
	REQUIRE(viommu_mem_set_regions(m, r, 2) == 0);
	memset(buf, 0xee, sizeof(buf));
	CHECK_EQ(viommu_mem_read(m, UINT64_MAX - 15, buf, 16), 0);
	CHECK(all_bytes(buf, 16, 0x7));
	memset(buf, 0xee, sizeof(buf));
	CHECK_EQ(viommu_mem_read(m, UINT64_MAX - 15, buf, 17), -EFAULT);
	CHECK(all_bytes(buf, sizeof(buf), 0xee));
	CHECK_EQ(viommu_mem_write(m, UINT64_MAX, buf, 2), -EFAULT);
	CHECK_EQ(top[PG - 1], 0x7);
	CHECK_EQ(viommu_mem_read(m, UINT64_MAX, buf, SIZE_MAX), -EFAULT);
	CHECK_EQ(viommu_mem_read(m, 1, buf, SIZE_MAX), -EFAULT);
	CHECK_EQ(viommu_mem_ptr(m, UINT64_MAX, SIZE_MAX, VIOMMU_READ, &hva,
				&contig), 0);
	CHECK(hva == top + PG - 1);
	CHECK_EQ(contig, 1);
	CHECK_U64(mem_next_ram(m, UINT64_MAX), UINT64_MAX);
	viommu_mem_destroy(m);
}

TEST(zero_length_and_null)
{
	static uint8_t a[PG];
	struct viommu_mem_region r = hva_region(0x1000, PG, a, 0);
	struct viommu_mem *m = new_mem(NULL);
	uint8_t buf[4];

	REQUIRE(m);
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	CHECK_EQ(viommu_mem_read(m, 0x1000, buf, 0), 0);
	CHECK_EQ(viommu_mem_read(m, 0xdead0000, buf, 0), 0);
	CHECK_EQ(viommu_mem_write(m, UINT64_MAX, buf, 0), 0);
	CHECK_EQ(viommu_mem_read(m, 0x1000, NULL, 0), 0);
	CHECK_EQ(viommu_mem_read(m, 0x1000, NULL, 1), -EINVAL);
	CHECK_EQ(viommu_mem_write(m, 0x1000, NULL, 1), -EINVAL);
	CHECK_EQ(viommu_mem_read(NULL, 0x1000, buf, 1), -EINVAL);
	CHECK_EQ(viommu_mem_write(NULL, 0x1000, buf, 1), -EINVAL);
	viommu_mem_destroy(m);
}

TEST(readonly_regions)
{
	static uint8_t a[PG], ro[PG];
	int fd = new_memfd(PG, 0x66), rofd;
	struct viommu_mem_region r[3];
	struct viommu_mem *m = new_mem(NULL);
	uint8_t buf[32];
	char path[64];
	size_t contig;
	void *hva;

	REQUIRE(fd >= 0 && m);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rofd = open(path, O_RDONLY | O_CLOEXEC);
	REQUIRE(rofd >= 0);
	memset(ro, 0x44, PG);
	r[0] = hva_region(0x1000, PG, a, 0);
	r[1] = hva_region(0x2000, PG, ro, VIOMMU_MEM_F_READONLY);
	r[2] = fd_region(0x3000, PG, rofd, 0, VIOMMU_MEM_F_READONLY);
	REQUIRE(viommu_mem_set_regions(m, r, 3) == 0);

	memset(buf, 0x99, sizeof(buf));
	CHECK_EQ(viommu_mem_write(m, 0x2000, buf, 4), -EPERM);
	CHECK_EQ(viommu_mem_write(m, 0x3000, buf, 4), -EPERM);
	CHECK_EQ(viommu_mem_write(m, 0x1ff0, buf, 0x20), -EPERM);
	CHECK(all_bytes(a, PG, 0));
	CHECK(all_bytes(ro, PG, 0x44));
	/* a hole beats read-only */
	CHECK_EQ(viommu_mem_write(m, 0x3ff0, buf, 0x20), -EFAULT);
	CHECK_EQ(viommu_mem_read(m, 0x2ff0, buf, 0x20), 0);
	CHECK(all_bytes(buf, 0x10, 0x44));
	CHECK(all_bytes(buf + 0x10, 0x10, 0x66));
	CHECK_EQ(viommu_mem_ptr(m, 0x3000, 8, VIOMMU_WRITE, &hva, &contig),
		 -EPERM);
	CHECK_EQ(viommu_mem_ptr(m, 0x3000, 8, VIOMMU_READ, &hva, &contig), 0);
	CHECK_EQ(*(uint8_t *)hva, 0x66);
	CHECK_EQ(viommu_mem_write(m, 0x1000, buf, 4), 0);

	/* a read-only fd cannot back a writable region; nothing changes */
	r[2].flags = 0;
	CHECK_EQ(viommu_mem_set_regions(m, r, 3), -EACCES);
	CHECK_EQ(viommu_mem_write(m, 0x3000, buf, 4), -EPERM);
	viommu_mem_destroy(m);
	close(rofd);
	close(fd);
}

/* ---- refused region sets ---------------------------------------------- */

/* check_old_set() - the set of invalid_sets_rejected is still in force. */
static void check_old_set(struct viommu_mem *m, uint64_t gen)
{
	uint8_t v = 0;

	CHECK_U64(viommu_mem_generation(m), gen);
	CHECK_U64(viommu_mem_ram_size(m), 2 * PG);
	CHECK_EQ(viommu_mem_read(m, 0x1000, &v, 1), 0);
	CHECK_EQ(v, 0xa0);
	CHECK_EQ(viommu_mem_read(m, 0x9000, &v, 1), 0);
	CHECK_EQ(v, 0x5b);
	CHECK_EQ(viommu_mem_read(m, 0x20000, &v, 1), -EFAULT);
}

TEST(invalid_sets_rejected)
{
	static uint8_t a[4 * PG];
	int fd = new_memfd(2 * PG, 0x5b), closed_fd, pipefd[2], fds0;
	struct viommu_mem_region good[2];
	struct log_count lc = { 0 };
	struct viommu_mem *m = new_mem(&lc);
	uint64_t gen;
	int warns;

	REQUIRE(fd >= 0 && m);
	REQUIRE(pipe(pipefd) == 0);
	/* far above anything the layer's dup() would reuse */
	closed_fd = fcntl(fd, F_DUPFD_CLOEXEC, 900);
	REQUIRE(closed_fd >= 900);
	close(closed_fd);
	memset(a, 0xa0, sizeof(a));
	good[0] = hva_region(0x1000, PG, a, 0);
	good[1] = fd_region(0x9000, PG, fd, 0, 0);
	REQUIRE(viommu_mem_set_regions(m, good, 2) == 0);
	gen = viommu_mem_generation(m);
	fds0 = count_fds();

	struct {
		struct viommu_mem_region r[3];
		unsigned int n;
		int err;
	} cases[] = {
		{ { hva_region(0x20000, 0, a, 0) }, 1, -EINVAL },
		{ { hva_region(UINT64_MAX - 10, 12, a, 0) }, 1, -EINVAL },
		{ { hva_region(0x20000, PG, a, 0),
		    hva_region(0x20fff, PG, a, 0) }, 2, -EINVAL },
		{ { hva_region(0x20000, PG, a, 0),
		    hva_region(0x30000, PG, a, 0),
		    hva_region(0x1f000, 0x2000, a, 0) }, 3, -EINVAL },
		{ { hva_region(0x20000, PG, a, 0),
		    hva_region(0x20000, 1, a, 0) }, 2, -EINVAL },
		{ { hva_region(0x20000, PG, NULL, 0) }, 1, -EINVAL },
		{ { { .gpa = 0x20000, .size = PG, .fd = fd, .hva = a } }, 1,
		  -EINVAL },
		{ { hva_region(0x20000, PG, a, 1u << 5) }, 1, -EINVAL },
		{ { hva_region(0x20000, PG, (void *)(UINTPTR_MAX - 8), 0) }, 1,
		  -EINVAL },
		{ { fd_region(0x20000, PG, fd, 100, 0) }, 1, -EINVAL },
		{ { fd_region(0x20000, PG, fd, 2 * PG, 0) }, 1, -EINVAL },
		{ { fd_region(0x20000, 2 * PG + 1, fd, 0, 0) }, 1, -EINVAL },
		{ { fd_region(0x20000, PG, fd, UINT64_MAX & ~(uint64_t)(PG - 1),
			      0) }, 1, -EINVAL },
		{ { fd_region(0x20000, PG, closed_fd, 0, 0) }, 1, -EBADF },
		{ { fd_region(0x20000, PG, pipefd[0], 0,
			      VIOMMU_MEM_F_READONLY) }, 1, -ENODEV },
		/* valid first regions, then a bad one: no mapping leaks */
		{ { fd_region(0x20000, PG, fd, 0, 0),
		    fd_region(0x30000, PG, fd, PG, 0),
		    fd_region(0x40000, PG, closed_fd, 0, 0) }, 3, -EBADF },
		{ { fd_region(0x20000, PG, fd, 0, 0),
		    fd_region(0x30000, PG, fd, PG, 0),
		    fd_region(0x40000, 4 * PG, fd, 0, 0) }, 3, -EINVAL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int before = test_failed_checks;

		warns = lc.warns;
		CHECK_EQ(viommu_mem_set_regions(m, cases[i].r, cases[i].n),
			 cases[i].err);
		CHECK_EQ(lc.warns, warns + 1);
		check_old_set(m, gen);
		CHECK_EQ(count_fds(), fds0);
		if (test_failed_checks != before)
			printf("#   (in case %zu)\n", i);
	}
	warns = lc.warns;
	CHECK_EQ(viommu_mem_set_regions(m, good, VIOMMU_MEM_MAX_REGIONS + 1),
		 -EINVAL);
	CHECK_EQ(viommu_mem_set_regions(m, NULL, 1), -EINVAL);
	CHECK_EQ(lc.warns, warns + 2);
	check_old_set(m, gen);
	viommu_mem_destroy(m);
	close(pipefd[0]);
	close(pipefd[1]);
	close(fd);
}

TEST(max_regions)
{
	static uint8_t a[VIOMMU_MEM_MAX_REGIONS + 1][64];
	struct viommu_mem_region r[VIOMMU_MEM_MAX_REGIONS + 1];
	struct viommu_mem *m = new_mem(NULL);
	struct mem_piece p;
	uint8_t buf[64 * VIOMMU_MEM_MAX_REGIONS];
	unsigned int i, tok;

	REQUIRE(m);
	/* reverse order, adjacent: the layer sorts them */
	for (i = 0; i <= VIOMMU_MEM_MAX_REGIONS; i++) {
		uint64_t slot = VIOMMU_MEM_MAX_REGIONS - i;

		memset(a[i], (int)i, sizeof(a[i]));
		r[i] = hva_region(0x100000 + 64 * slot, 64, a[i], 0);
	}
	CHECK_EQ(viommu_mem_set_regions(m, r, VIOMMU_MEM_MAX_REGIONS + 1),
		 -EINVAL);
	REQUIRE(viommu_mem_set_regions(m, r + 1, VIOMMU_MEM_MAX_REGIONS) == 0);
	CHECK_EQ(viommu_mem_read(m, 0x100000, buf, sizeof(buf)), 0);
	for (i = 0; i < VIOMMU_MEM_MAX_REGIONS; i++)
		CHECK(all_bytes(buf + 64 * i, 64, VIOMMU_MEM_MAX_REGIONS - i));
	tok = viommu_mem_read_lock(m);
	for (i = 0; i < VIOMMU_MEM_MAX_REGIONS; i++) {
		CHECK_EQ(mem_find(m, 0x100000 + 64 * i + 63, &p), 0);
		CHECK_U64(p.gpa, 0x100000 + 64 * i);
		CHECK(p.hva == a[VIOMMU_MEM_MAX_REGIONS - i]);
	}
	viommu_mem_read_unlock(m, tok);
	viommu_mem_destroy(m);
}

/* ---- seals (issue 17: RAM shrunk behind our back) --------------------- */

TEST(fd_without_shrink_seal_refused_unless_trusted)
{
	int sealed = new_memfd(PG, 1);
	int plain = memfd_create("plain", MFD_CLOEXEC);
	int grow = memfd_create("grow", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	char path[] = "/tmp/test_mem_XXXXXX";
	int file = mkstemp(path);
	struct viommu_mem_region r = fd_region(0x10000, PG, plain, 0, 0);
	struct viommu_mem *m = new_mem(NULL);
	uint8_t b = 0;

	REQUIRE(m && sealed >= 0 && plain >= 0 && grow >= 0 && file >= 0);
	unlink(path);
	REQUIRE(ftruncate(plain, PG) == 0 && ftruncate(grow, PG) == 0 &&
		ftruncate(file, PG) == 0);
	REQUIRE(fcntl(grow, F_ADD_SEALS, F_SEAL_GROW) == 0);
	/* unsealed memfd, a memfd sealed only against growth, a plain file */
	CHECK_EQ(viommu_mem_set_regions(m, &r, 1), -EPERM);
	r.fd = grow;
	CHECK_EQ(viommu_mem_set_regions(m, &r, 1), -EPERM);
	r.fd = file;
	CHECK_EQ(viommu_mem_set_regions(m, &r, 1), -EPERM);
	CHECK_U64(viommu_mem_generation(m), 0);
	/* trusted: accepted as before */
	r.flags = VIOMMU_MEM_F_TRUST_FD;
	CHECK_EQ(viommu_mem_set_regions(m, &r, 1), 0);
	r.fd = plain;
	CHECK_EQ(viommu_mem_set_regions(m, &r, 1), 0);
	/* sealed: accepted, and whoever holds it cannot shrink it any more */
	r = fd_region(0x10000, PG, sealed, 0, 0);
	CHECK_EQ(viommu_mem_set_regions(m, &r, 1), 0);
	CHECK(ftruncate(sealed, 0) < 0 && errno == EPERM);
	CHECK_EQ(viommu_mem_read(m, 0x10000, &b, 1), 0);
	CHECK_EQ(b, 1);
	viommu_mem_destroy(m);
	close(sealed);
	close(plain);
	close(grow);
	close(file);
}

/* ---- I/O regions (viommu_mem_set_layout) ----------------------------- */

/* A callback-backed "remote" RAM: a host buffer the layer never sees. */
struct remote {
	uint64_t base;
	uint8_t buf[4 * PG];
	int fail;        /* negative errno the callbacks return, or 0 */
	unsigned int calls;
};

static int remote_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	struct remote *r = opaque;

	r->calls++;
	if (r->fail)
		return r->fail;
	memcpy(buf, r->buf + (gpa - r->base), len);
	return 0;
}

static int remote_write(void *opaque, uint64_t gpa, const void *buf,
			size_t len)
{
	struct remote *r = opaque;

	r->calls++;
	if (r->fail)
		return r->fail;
	memcpy(r->buf + (gpa - r->base), buf, len);
	return 0;
}

static struct viommu_mem_io_region io_region(struct remote *r, uint64_t gpa,
					     uint64_t size, uint32_t flags)
{
	r->base = gpa;
	return (struct viommu_mem_io_region){
		.gpa = gpa, .size = size, .flags = flags, .read = remote_read,
		.write = remote_write, .opaque = r,
	};
}

TEST(io_region_read_write_through_callbacks)
{
	static uint8_t host[PG];
	static struct remote rem;
	struct viommu_mem_region h = hva_region(0x10000, PG, host, 0);
	struct viommu_mem_io_region io = io_region(&rem, 0x11000, 2 * PG, 0);
	struct viommu_mem_layout l = { .size = sizeof(l), .regions = &h,
				       .n = 1, .io = &io, .nio = 1 };
	struct viommu_mem *m = new_mem(NULL);
	uint8_t buf[3 * PG];
	size_t contig;
	void *hva;
	unsigned int tok;
	struct mem_piece p;

	REQUIRE(m);
	memset(host, 0x11, sizeof(host));
	memset(rem.buf, 0x22, sizeof(rem.buf));
	REQUIRE(viommu_mem_set_layout(m, &l) == 0);
	CHECK_U64(viommu_mem_ram_size(m), 3 * PG);
	/* a read across the host region into the I/O region */
	CHECK_EQ(viommu_mem_read(m, 0x10000, buf, 3 * PG), 0);
	CHECK(all_bytes(buf, PG, 0x11));
	CHECK(all_bytes(buf + PG, 2 * PG, 0x22));
	/* a write lands in the remote buffer, at the right offset */
	memset(buf, 0x33, 16);
	CHECK_EQ(viommu_mem_write(m, 0x11000 + 100, buf, 16), 0);
	CHECK(all_bytes(rem.buf + 100, 16, 0x33));
	CHECK_EQ(rem.buf[99], 0x22);
	/* no host pointer: -EREMOTE, for the public and internal calls */
	CHECK_EQ(viommu_mem_ptr(m, 0x11000, 8, VIOMMU_READ, &hva, &contig),
		 -EREMOTE);
	CHECK_EQ(viommu_mem_ptr(m, 0x10000, 8, VIOMMU_READ, &hva, &contig), 0);
	tok = viommu_mem_read_lock(m);
	{
		struct mem_cache c = { 0 };

		CHECK_EQ(mem_cached_ptr(m, &c, 0x11008, 8, false, &hva),
			 -EREMOTE);
		CHECK_EQ(mem_find(m, 0x11008, &p), 0);
		CHECK(p.hva == NULL);
		CHECK_EQ(mem_check_in(m, 0x10ff0, 0x20, true), 0);
		CHECK_EQ(mem_check_in(m, 0x12ff0, 0x20, false), -EFAULT);
	}
	viommu_mem_read_unlock(m, tok);
	/* a failing callback fails the access with its errno */
	rem.fail = -EIO;
	CHECK_EQ(viommu_mem_read(m, 0x11000, buf, 8), -EIO);
	CHECK_EQ(viommu_mem_write(m, 0x11000, buf, 8), -EIO);
	rem.fail = 0;
	/* past the end: -EFAULT, the callback is not called */
	rem.calls = 0;
	CHECK_EQ(viommu_mem_read(m, 0x12ff8, buf, 16), -EFAULT);
	CHECK_EQ(rem.calls, 0);
	viommu_mem_destroy(m);
}

TEST(io_region_readonly_and_refusals)
{
	static struct remote rem;
	static uint8_t a[VIOMMU_MEM_MAX_REGIONS][64];
	struct viommu_mem_region r[VIOMMU_MEM_MAX_REGIONS];
	struct viommu_mem_io_region io = io_region(&rem, 0x20000, PG,
						   VIOMMU_MEM_F_READONLY);
	struct viommu_mem_layout l = { .size = sizeof(l), .io = &io,
				       .nio = 1 };
	struct viommu_mem *m = new_mem(NULL);
	uint8_t buf[8] = { 0 };
	uint64_t gen;

	REQUIRE(m);
	io.write = NULL; /* allowed: read-only */
	REQUIRE(viommu_mem_set_layout(m, &l) == 0);
	CHECK_EQ(viommu_mem_write(m, 0x20000, buf, 8), -EPERM);
	CHECK_EQ(viommu_mem_read(m, 0x20000, buf, 8), 0);
	gen = viommu_mem_generation(m);
	/* refused, nothing changed */
	io.flags = 0; /* writable without write() */
	CHECK_EQ(viommu_mem_set_layout(m, &l), -EINVAL);
	io.flags = VIOMMU_MEM_F_READONLY;
	io.read = NULL;
	CHECK_EQ(viommu_mem_set_layout(m, &l), -EINVAL);
	io.read = remote_read;
	l.size = 0;
	CHECK_EQ(viommu_mem_set_layout(m, &l), -EINVAL);
	l.size = sizeof(l);
	CHECK_EQ(viommu_mem_set_layout(m, NULL), -EINVAL);
	/* the bound on regions counts both kinds */
	for (unsigned int i = 0; i < VIOMMU_MEM_MAX_REGIONS; i++)
		r[i] = hva_region(0x100000 + 64 * i, 64, a[i], 0);
	l.regions = r;
	l.n = VIOMMU_MEM_MAX_REGIONS;
	CHECK_EQ(viommu_mem_set_layout(m, &l), -EINVAL);
	/* overlap between an I/O region and an hva region */
	r[0] = hva_region(0x20000 + 64, 64, a[0], 0);
	l.n = 1;
	CHECK_EQ(viommu_mem_set_layout(m, &l), -EINVAL);
	CHECK_U64(viommu_mem_generation(m), gen);
	CHECK_EQ(viommu_mem_read(m, 0x20000, buf, 8), 0);
	viommu_mem_destroy(m);
}

/* ---- replacement ------------------------------------------------------ */

/* hva_of() - the host address of @gpa, or NULL. */
static void *hva_of(struct viommu_mem *m, uint64_t gpa)
{
	size_t contig;
	void *hva;

	if (viommu_mem_ptr(m, gpa, 1, VIOMMU_READ, &hva, &contig))
		return NULL;
	return hva;
}

TEST(replace_keeps_identical_mapping)
{
	int fd = new_memfd(4 * PG, 0x10), fd2, other, fds0;
	struct viommu_mem *m = new_mem(NULL);
	struct viommu_mem_region r[2];
	void *p1, *p2, *p3;
	uint64_t gen;

	REQUIRE(fd >= 0 && m);
	other = new_memfd(4 * PG, 0x20);
	REQUIRE(other >= 0);
	fd2 = dup(fd);
	REQUIRE(fd2 >= 0);
	r[0] = fd_region(0x10000, 2 * PG, fd, 0, 0);
	r[1] = fd_region(0x20000, PG, other, 0, 0);
	REQUIRE(viommu_mem_set_regions(m, r, 2) == 0);
	fds0 = count_fds();
	gen = viommu_mem_generation(m);
	p1 = hva_of(m, 0x10000);
	p2 = hva_of(m, 0x20000);
	REQUIRE(p1 && p2);

	/* same file (another fd), offset, size, flags; moved gpa */
	r[0] = fd_region(0x40000, 2 * PG, fd2, 0, 0);
	CHECK_EQ(viommu_mem_set_regions(m, r, 2), 0);
	CHECK(hva_of(m, 0x40000) == p1);
	CHECK(hva_of(m, 0x20000) == p2);
	CHECK(hva_of(m, 0x10000) == NULL);
	CHECK_EQ(count_fds(), fds0);
	CHECK_U64(viommu_mem_generation(m), gen + 1);

	/* a changed offset is a new mapping; the other one stays */
	r[0] = fd_region(0x40000, 2 * PG, fd, PG, 0);
	CHECK_EQ(viommu_mem_set_regions(m, r, 2), 0);
	p3 = hva_of(m, 0x40000);
	CHECK(p3 != NULL && p3 != p1);
	CHECK(hva_of(m, 0x20000) == p2);
	CHECK_EQ(count_fds(), fds0);

	/* a changed size or flags is a new mapping */
	r[0].size = PG;
	CHECK_EQ(viommu_mem_set_regions(m, r, 2), 0);
	p1 = hva_of(m, 0x40000);
	CHECK(p1 != NULL && p1 != p3);
	r[0].flags = VIOMMU_MEM_F_READONLY;
	CHECK_EQ(viommu_mem_set_regions(m, r, 2), 0);
	p3 = hva_of(m, 0x40000);
	CHECK(p3 != NULL && p3 != p1);
	CHECK(hva_of(m, 0x20000) == p2);
	CHECK_U64(viommu_mem_generation(m), gen + 4);
	CHECK_EQ(count_fds(), fds0);

	/* two new regions naming one current mapping: one reuses it */
	r[1] = r[0];
	r[1].gpa = 0x80000;
	CHECK_EQ(viommu_mem_set_regions(m, r, 2), 0);
	p1 = hva_of(m, 0x40000);
	p2 = hva_of(m, 0x80000);
	CHECK(p1 && p2 && p1 != p2);
	CHECK(p1 == p3 || p2 == p3);
	CHECK_EQ(count_fds(), fds0);

	/* the empty set drops everything */
	CHECK_EQ(viommu_mem_set_regions(m, NULL, 0), 0);
	CHECK_U64(viommu_mem_ram_size(m), 0);
	CHECK(hva_of(m, 0x40000) == NULL);
	CHECK_EQ(count_fds(), fds0 - 2);
	viommu_mem_destroy(m);
	close(fd);
	close(fd2);
	close(other);
}

TEST(generation_counts_successes)
{
	static uint8_t a[PG];
	struct viommu_mem_region r = hva_region(0x1000, PG, a, 0);
	struct viommu_mem *m = new_mem(NULL);
	uint64_t g0;

	REQUIRE(m);
	g0 = viommu_mem_generation(m);
	CHECK_EQ(viommu_mem_set_regions(m, &r, 1), 0);
	CHECK_U64(viommu_mem_generation(m), g0 + 1);
	CHECK_EQ(viommu_mem_set_regions(m, &r, 1), 0);
	CHECK_U64(viommu_mem_generation(m), g0 + 2);
	r.size = 0;
	CHECK_EQ(viommu_mem_set_regions(m, &r, 1), -EINVAL);
	CHECK_U64(viommu_mem_generation(m), g0 + 2);
	CHECK_EQ(viommu_mem_set_regions(m, NULL, 0), 0);
	CHECK_U64(viommu_mem_generation(m), g0 + 3);
	CHECK_U64(viommu_mem_generation(NULL), 0);
	viommu_mem_destroy(m);
}

/* ---- grace period ----------------------------------------------------- */

struct setter {
	struct viommu_mem *m;
	struct viommu_mem_region r;
	int rc;
	int done;
};

static void *setter_thread(void *arg)
{
	struct setter *s = arg;

	s->rc = viommu_mem_set_regions(s->m, &s->r, 1);
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

TEST(replacement_waits_for_open_section)
{
	int fa = new_memfd(PG, 0xaa), fb = new_memfd(PG, 0xbb);
	struct viommu_mem *m = new_mem(NULL);
	struct viommu_mem_region r;
	struct setter s;
	struct mem_piece p;
	unsigned int tok;
	pthread_t th;
	uint64_t gen;

	REQUIRE(fa >= 0 && fb >= 0 && m);
	r = fd_region(0x1000, PG, fa, 0, 0);
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	gen = viommu_mem_generation(m);
	tok = viommu_mem_read_lock(m);
	REQUIRE(mem_find(m, 0x1000, &p) == 0);
	s = (struct setter){ .m = m, .r = fd_region(0x1000, PG, fb, 0, 0) };
	REQUIRE(pthread_create(&th, NULL, setter_thread, &s) == 0);
	/* wait for the publish: the setter then waits for us */
	while (viommu_mem_generation(m) == gen)
		sched_yield();
	CHECK(!__atomic_load_n(&s.done, __ATOMIC_ACQUIRE));
	CHECK(all_bytes(p.hva, PG, 0xaa)); /* old mapping still there */
	CHECK_EQ(mem_find(m, 0x1000, &p), 0);
	CHECK(all_bytes(p.hva, PG, 0xbb)); /* new lookups see the new set */
	CHECK(!__atomic_load_n(&s.done, __ATOMIC_ACQUIRE));
	viommu_mem_read_unlock(m, tok);
	pthread_join(th, NULL);
	CHECK_EQ(s.rc, 0);
	CHECK(s.done);
	viommu_mem_destroy(m);
	close(fa);
	close(fb);
}

/* pin_to() - move the calling thread to CPU @cpu.  Return: whether it did. */
static bool pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0 &&
	       sched_getcpu() == cpu;
}

/*
 * A thread caches its read-section stripe (mem.c, STRIPE_REFRESH).  A
 * section opened with a stale stripe after the thread moved CPU, and
 * closed after it moved again, must still hold a replacement off until it
 * ends, and every other section must still drain.  Sections are opened on
 * one CPU, the thread moves, a section opens (stale stripe), a setter
 * starts and must wait, the thread moves back and closes it.  With one
 * usable CPU the moves are skipped and the rest still runs.
 */
TEST(section_holds_replacement_after_cpu_migration)
{
	int fa = new_memfd(PG, 0xaa), fb = new_memfd(PG, 0xbb);
	struct viommu_mem *m = new_mem(NULL);
	struct viommu_mem_region r;
	struct setter s;
	struct mem_piece p;
	cpu_set_t orig;
	bool moved = false;
	unsigned int tok;
	pthread_t th;
	uint64_t gen;
	int i;

	REQUIRE(fa >= 0 && fb >= 0 && m);
	REQUIRE(pthread_getaffinity_np(pthread_self(), sizeof(orig), &orig) ==
		0);
	r = fd_region(0x1000, PG, fa, 0, 0);
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	if (CPU_COUNT(&orig) >= 2 && CPU_ISSET(0, &orig) && CPU_ISSET(1, &orig))
		moved = pin_to(0);
	/* fill the cache on CPU 0, and use most of its refresh budget */
	for (i = 0; i < 60; i++)
		viommu_mem_read_unlock(m, viommu_mem_read_lock(m));
	if (moved)
		moved = pin_to(1);
	tok = viommu_mem_read_lock(m); /* stripe of CPU 0, now on CPU 1 */
	REQUIRE(mem_find(m, 0x1000, &p) == 0);
	gen = viommu_mem_generation(m);
	s = (struct setter){ .m = m, .r = fd_region(0x1000, PG, fb, 0, 0) };
	REQUIRE(pthread_create(&th, NULL, setter_thread, &s) == 0);
	while (viommu_mem_generation(m) == gen)
		sched_yield();
	/* sections opened and closed meanwhile, past a refresh, balance */
	for (i = 0; i < 200; i++)
		viommu_mem_read_unlock(m, viommu_mem_read_lock(m));
	usleep(20000);
	CHECK(!__atomic_load_n(&s.done, __ATOMIC_ACQUIRE));
	CHECK(all_bytes(p.hva, PG, 0xaa)); /* the old mapping is still there */
	if (moved)
		(void)pin_to(0);
	viommu_mem_read_unlock(m, tok); /* counted in the token's slot */
	pthread_join(th, NULL);
	CHECK_EQ(s.rc, 0);
	CHECK(s.done);
	/* many moves, sections across them: every later replacement drains */
	for (i = 0; i < 8; i++) {
		tok = viommu_mem_read_lock(m);
		if (moved)
			(void)pin_to(i & 1);
		for (int j = 0; j < 40; j++)
			viommu_mem_read_unlock(m, viommu_mem_read_lock(m));
		viommu_mem_read_unlock(m, tok);
		r = fd_region(0x1000, PG, i & 1 ? fa : fb, 0, 0);
		CHECK_EQ(viommu_mem_set_regions(m, &r, 1), 0);
	}
	REQUIRE(pthread_setaffinity_np(pthread_self(), sizeof(orig), &orig) ==
		0);
	viommu_mem_destroy(m);
	close(fa);
	close(fb);
}

/* ---- concurrency ------------------------------------------------------ */

#define CONC_GPA 0x100000u
#define CONC_SIZE (16 * PG)

struct reader {
	struct viommu_mem *m;
	int *stop;
	int started;
	long bad;
	long iters;
	long seen_a, seen_b;
};

/* check_pattern() - classify a buffer as all-0xa5, all-0x5a or torn. */
static void check_pattern(struct reader *rd, const uint8_t *p, size_t len)
{
	if (all_bytes(p, len, 0xa5))
		rd->seen_a++;
	else if (all_bytes(p, len, 0x5a))
		rd->seen_b++;
	else
		rd->bad++;
}

static void *reader_thread(void *arg)
{
	struct reader *rd = arg;
	uint8_t buf[256];
	struct mem_piece p;

	__atomic_store_n(&rd->started, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(rd->stop, __ATOMIC_ACQUIRE)) {
		unsigned int tok = viommu_mem_read_lock(rd->m);
		uint64_t off = (uint64_t)(rd->iters * 64) % CONC_SIZE;

		if (mem_find(rd->m, CONC_GPA + off, &p) == 0 &&
		    p.gpa == CONC_GPA && p.size == CONC_SIZE)
			check_pattern(rd, p.hva, CONC_SIZE);
		else
			rd->bad++;
		viommu_mem_read_unlock(rd->m, tok);
		if (viommu_mem_read(rd->m, CONC_GPA + CONC_SIZE - sizeof(buf),
				    buf, sizeof(buf)) == 0)
			check_pattern(rd, buf, sizeof(buf));
		else
			rd->bad++;
		rd->iters++;
	}
	return NULL;
}

TEST(readers_race_replacement)
{
	int fa = new_memfd(CONC_SIZE, 0xa5), fb = new_memfd(CONC_SIZE, 0x5a);
	struct viommu_mem *m = new_mem(NULL);
	struct reader rd[2];
	pthread_t th[2];
	int stop = 0, fds0;

	REQUIRE(fa >= 0 && fb >= 0 && m);
	struct viommu_mem_region ra = fd_region(CONC_GPA, CONC_SIZE, fa, 0, 0);
	struct viommu_mem_region rb = fd_region(CONC_GPA, CONC_SIZE, fb, 0, 0);
	REQUIRE(viommu_mem_set_regions(m, &ra, 1) == 0);
	fds0 = count_fds();
	for (int i = 0; i < 2; i++) {
		rd[i] = (struct reader){ .m = m, .stop = &stop };
		REQUIRE(pthread_create(&th[i], NULL, reader_thread,
				       &rd[i]) == 0);
	}
	for (int i = 0; i < 2; i++)
		while (!__atomic_load_n(&rd[i].started, __ATOMIC_ACQUIRE))
			sched_yield();
	for (int i = 0; i < 200; i++)
		CHECK_EQ(viommu_mem_set_regions(m, i & 1 ? &ra : &rb, 1), 0);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(rd[i].bad, 0);
		printf("# reader %d: %ld iterations, %ld A, %ld B\n", i,
		       rd[i].iters, rd[i].seen_a, rd[i].seen_b);
	}
	CHECK_EQ(count_fds(), fds0);
	viommu_mem_destroy(m);
	close(fa);
	close(fb);
}

/* ---- allocation failures ---------------------------------------------- */

struct fail_alloc {
	int fail_at; /* 1-based index of the allocation that fails */
	int count;
	int live;
};

static void *fa_alloc(void *opaque, size_t size)
{
	struct fail_alloc *fa = opaque;
	void *p;

	if (++fa->count == fa->fail_at)
		return NULL;
	p = malloc(size);
	if (p)
		fa->live++;
	return p;
}

static void fa_free(void *opaque, void *ptr)
{
	struct fail_alloc *fa = opaque;

	fa->live--;
	free(ptr);
}

/*
 * fault_round() - create, set A, set B, destroy, failing allocation
 * @fa->fail_at.  Return: 1 when every step succeeded.
 */
static int fault_round(struct fail_alloc *fa, const struct viommu_mem_region *a,
		       const struct viommu_mem_region *b)
{
	struct viommu_mem_config cfg = {
		.allocator = { fa_alloc, fa_free, fa },
	};
	struct viommu_mem *m = NULL;
	uint8_t v = 0;
	int rc, ok = 0;

	rc = viommu_mem_create(&cfg, &m);
	if (rc) {
		CHECK_EQ(rc, -ENOMEM);
		return 0;
	}
	rc = viommu_mem_set_regions(m, a, 2);
	if (rc) {
		CHECK_EQ(rc, -ENOMEM);
		CHECK_U64(viommu_mem_ram_size(m), 0);
		CHECK_EQ(viommu_mem_read(m, a[0].gpa, &v, 1), -EFAULT);
		goto out;
	}
	rc = viommu_mem_set_regions(m, b, 2);
	if (rc) {
		CHECK_EQ(rc, -ENOMEM);
		CHECK_EQ(viommu_mem_read(m, a[1].gpa, &v, 1), 0);
		CHECK_EQ(v, 0x31);
		CHECK_U64(viommu_mem_ram_size(m), 2 * PG);
		goto out;
	}
	CHECK_EQ(viommu_mem_read(m, b[1].gpa, &v, 1), 0);
	CHECK_EQ(v, 0x32);
	CHECK_EQ(viommu_mem_read(m, a[0].gpa, &v, 1), 0);
	ok = 1;
out:
	viommu_mem_destroy(m);
	return ok;
}

/*
 * A peer that sends bad region sets over and over (overlapping regions
 * here) is refused every time but cannot flood the log (issue 17 item 2).
 */
TEST(refusals_rate_limited)
{
	struct log_count lc = { 0 };
	struct viommu_mem *m = new_mem(&lc);
	static uint8_t buf[2 * 4096] __attribute__((aligned(4096)));
	struct viommu_mem_region r[2] = {
		{ .gpa = 0x10000, .size = 8192, .fd = -1, .hva = buf },
		{ .gpa = 0x11000, .size = 4096, .fd = -1, .hva = buf },
	};
	int refused = 0;

	REQUIRE(m != NULL);
	for (int i = 0; i < 1000; i++)
		refused += viommu_mem_set_regions(m, r, 2) == -EINVAL;
	CHECK_EQ(refused, 1000);
	CHECK(lc.warns >= 1);
	CHECK(lc.warns <= 40); /* one burst (32) and a little slack */
	viommu_mem_destroy(m);
}

TEST(allocation_failures)
{
	static uint8_t h[PG];
	int f1 = new_memfd(PG, 0x31), f2 = new_memfd(PG, 0x32), fds0, n;
	struct viommu_mem_region a[2], b[2];
	int done = 0;

	REQUIRE(f1 >= 0 && f2 >= 0);
	a[0] = hva_region(0x1000, PG, h, 0);
	a[1] = fd_region(0x10000, PG, f1, 0, 0);
	b[0] = hva_region(0x1000, PG, h, 0);
	b[1] = fd_region(0x20000, PG, f2, 0, 0);
	fds0 = count_fds();
	for (n = 1; n < 100 && !done; n++) {
		struct fail_alloc fa = { .fail_at = n };

		done = fault_round(&fa, a, b);
		CHECK_EQ(fa.live, 0);
		CHECK_EQ(count_fds(), fds0);
		if (done)
			CHECK(fa.count < n); /* no failure was injected */
	}
	CHECK(done);
	CHECK(n > 3); /* create and both sets each failed once */
	close(f1);
	close(f2);
}

TEST_MAIN()
