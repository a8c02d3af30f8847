/*
 * test_vq_regions.c - the virtqueue's guest-memory region cache
 * (vq->mc, src/virtio/virtqueue.c) against changes of the region set.
 *
 * The queue remembers the region it touched last and reuses it while the
 * memory layer's table is unchanged.  These tests build a split ring by
 * hand in host buffers and check that: a region set replaced between two
 * pops is seen at once (the same GPAs now backed by other host memory), a
 * ring whose descriptor table straddles two adjacent regions still works
 * (the uncached path), and RAM removed under a configured queue breaks the
 * queue with one log line instead of touching freed memory.
 *
 * The queue also keeps host pointers to its three ring areas while the
 * table is unchanged (vq->rc_*): the packed ring's descriptor area, which
 * the device writes, follows a replacement too; a device area that became
 * read-only is refused, not written through a stale writable pointer; and
 * a region whose host address is odd (no aligned 16-bit atomics) still
 * works through the general path.
 */
#include "harness.h"
#include "virtio/virtqueue.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#define PG 4096u
#define QSIZE 16u
/* Layout of the test RAM (GPA = offset from RAM_GPA). */
#define RAM_GPA 0x100000ull
#define RAM_SIZE (4 * PG)
#define DESC_OFF 0x0u     /* 16 descriptors: 256 bytes */
#define AVAIL_OFF 0x400u
#define USED_OFF 0x800u
#define BUF_OFF 0x2000u

struct ring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct logs {
	int warns;
};

static void count_log(void *opaque, enum viommu_log_level level,
		      const char *line)
{
	struct logs *l = opaque;

	(void)line;
	if (level == VIOMMU_LOG_WARN)
		l->warns++;
}

/* put_desc() - descriptor @i of the table at @ram + @desc_off. */
static void put_desc(uint8_t *ram, uint32_t desc_off, unsigned int i,
		     uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct ring_desc d = { addr, len, flags, next };

	memcpy(ram + desc_off + i * sizeof(d), &d, sizeof(d));
}

/* offer() - make @head the next available entry (avail idx @idx + 1). */
static void offer(uint8_t *ram, uint16_t idx, uint16_t head)
{
	uint16_t next = (uint16_t)(idx + 1);

	memcpy(ram + AVAIL_OFF + 4 + 2 * (idx % QSIZE), &head, 2);
	memcpy(ram + AVAIL_OFF + 2, &next, 2);
}

static struct viommu_mem_region region(uint64_t gpa, uint64_t size, void *hva)
{
	return (struct viommu_mem_region){ .gpa = gpa, .size = size,
					   .fd = -1, .hva = hva };
}

/* one_buffer_chain() - descriptor @i: one readable buffer at @addr. */
static void one_buffer_chain(uint8_t *ram, unsigned int i, uint64_t addr)
{
	put_desc(ram, DESC_OFF, i, addr, 64, 0, 0);
}

TEST(replaced_region_is_seen_between_pops)
{
	uint8_t *a = calloc(1, RAM_SIZE), *b = calloc(1, RAM_SIZE);
	struct logs lg = { 0 };
	struct viommu_log log = { .fn = count_log, .opaque = &lg,
				  .level = VIOMMU_LOG_DEBUG };
	struct viommu_mem_region r;
	struct viommu_mem *m = NULL;
	struct vq vq;
	struct vq_elem e;
	uint32_t used[2];
	unsigned int tok;

	REQUIRE(a && b);
	REQUIRE(viommu_mem_create(NULL, &m) == 0);
	r = region(RAM_GPA, RAM_SIZE, a);
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	REQUIRE(vq_init(&vq, m, &log, NULL, "rq", QSIZE) == 0);
	one_buffer_chain(a, 0, RAM_GPA + BUF_OFF);
	offer(a, 0, 0);
	tok = viommu_mem_read_lock(m);
	REQUIRE(vq_configure(&vq, QSIZE, RAM_GPA + DESC_OFF,
			     RAM_GPA + AVAIL_OFF, RAM_GPA + USED_OFF, false,
			     false, false) == 0);
	CHECK_EQ(vq_pop(&vq, &e), 0);
	CHECK_U64(e.segs[0].gpa, RAM_GPA + BUF_OFF);
	CHECK_EQ(vq_push(&vq, &e, 0), 0);
	viommu_mem_read_unlock(m, tok);

	/* The same GPAs, now backed by @b holding a different chain. */
	memcpy(b, a, RAM_SIZE);
	one_buffer_chain(b, 1, RAM_GPA + BUF_OFF + PG);
	offer(b, 1, 1);
	r = region(RAM_GPA, RAM_SIZE, b);
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	memset(a, 0xff, RAM_SIZE); /* what a stale pointer would see */
	tok = viommu_mem_read_lock(m);
	CHECK_EQ(vq_pop(&vq, &e), 0);
	CHECK_EQ(e.id, 1);
	CHECK_U64(e.segs[0].gpa, RAM_GPA + BUF_OFF + PG);
	CHECK_EQ(vq_push(&vq, &e, 0), 0);
	viommu_mem_read_unlock(m, tok);
	/* the used entry went to the new backing, not the old one */
	memcpy(used, b + USED_OFF + 4 + 8, sizeof(used));
	CHECK_EQ(used[0], 1);
	CHECK_EQ(b[USED_OFF + 2], 2);
	CHECK_EQ(a[USED_OFF + 2], 0xff);
	CHECK_EQ(lg.warns, 0);
	CHECK(!vq.broken);
	vq_destroy(&vq);
	viommu_mem_destroy(m);
	free(a);
	free(b);
}

TEST(descriptor_table_across_adjacent_regions)
{
	uint8_t *a = calloc(1, RAM_SIZE), *b = calloc(1, RAM_SIZE);
	struct viommu_mem_region r[2];
	struct viommu_mem *m = NULL;
	/* the table starts 128 bytes before the end of region a */
	uint32_t desc_off = RAM_SIZE - 128;
	uint8_t both[2 * RAM_SIZE] = { 0 };
	struct vq vq;
	struct vq_elem e;
	unsigned int tok;

	REQUIRE(a && b);
	REQUIRE(viommu_mem_create(NULL, &m) == 0);
	r[0] = region(RAM_GPA, RAM_SIZE, a);
	r[1] = region(RAM_GPA + RAM_SIZE, RAM_SIZE, b);
	REQUIRE(viommu_mem_set_regions(m, r, 2) == 0);
	REQUIRE(vq_init(&vq, m, NULL, NULL, "rq", QSIZE) == 0);
	/* build the table in one flat image, then split it into a and b */
	for (unsigned int i = 0; i < QSIZE; i++)
		put_desc(both, desc_off, i, RAM_GPA + BUF_OFF + 64 * i, 64, 0,
			 0);
	for (unsigned int i = 0; i < QSIZE; i++)
		offer(both, (uint16_t)i, (uint16_t)i);
	memcpy(a, both, RAM_SIZE);
	memcpy(b, both + RAM_SIZE, RAM_SIZE);
	tok = viommu_mem_read_lock(m);
	REQUIRE(vq_configure(&vq, QSIZE, RAM_GPA + desc_off,
			     RAM_GPA + AVAIL_OFF, RAM_GPA + USED_OFF, false,
			     false, false) == 0);
	for (unsigned int i = 0; i < QSIZE; i++) {
		CHECK_EQ(vq_pop(&vq, &e), 0);
		CHECK_EQ(e.id, i);
		CHECK_U64(e.segs[0].gpa, RAM_GPA + BUF_OFF + 64 * i);
		CHECK_EQ(vq_push(&vq, &e, 0), 0);
	}
	CHECK_EQ(vq_pop(&vq, &e), -ENOENT);
	CHECK(!vq.broken);
	viommu_mem_read_unlock(m, tok);
	vq_destroy(&vq);
	viommu_mem_destroy(m);
	free(a);
	free(b);
}

TEST(ram_removed_under_a_queue_breaks_it)
{
	uint8_t *a = calloc(1, RAM_SIZE);
	struct logs lg = { 0 };
	struct viommu_log log = { .fn = count_log, .opaque = &lg,
				  .level = VIOMMU_LOG_DEBUG };
	struct viommu_mem_region r;
	struct viommu_mem *m = NULL;
	struct vq vq;
	struct vq_elem e;
	unsigned int tok;

	REQUIRE(a);
	REQUIRE(viommu_mem_create(NULL, &m) == 0);
	r = region(RAM_GPA, RAM_SIZE, a);
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	REQUIRE(vq_init(&vq, m, &log, NULL, "rq", QSIZE) == 0);
	one_buffer_chain(a, 0, RAM_GPA + BUF_OFF);
	one_buffer_chain(a, 1, RAM_GPA + BUF_OFF);
	offer(a, 0, 0);
	offer(a, 1, 1);
	tok = viommu_mem_read_lock(m);
	REQUIRE(vq_configure(&vq, QSIZE, RAM_GPA + DESC_OFF,
			     RAM_GPA + AVAIL_OFF, RAM_GPA + USED_OFF, false,
			     false, false) == 0);
	CHECK_EQ(vq_pop(&vq, &e), 0); /* fills the cache; index read: 2 */
	viommu_mem_read_unlock(m, tok);
	REQUIRE(viommu_mem_set_regions(m, NULL, 0) == 0);
	free(a); /* a stale pointer would now be a use after free (ASan) */
	tok = viommu_mem_read_lock(m);
	CHECK_EQ(vq_pop(&vq, &e), -EIO);
	CHECK(vq.broken);
	CHECK_EQ(lg.warns, 1);
	viommu_mem_read_unlock(m, tok);
	vq_destroy(&vq);
	viommu_mem_destroy(m);
}

/* Packed ring layout inside the test RAM. */
#define PDESC_OFF 0x0u
#define PDRV_OFF 0x400u
#define PDEV_OFF 0x800u
#define F_AVAIL (1u << 7)
#define F_USED (1u << 15)

/* put_pdesc() - packed descriptor @i: one readable buffer, buffer ID @id. */
static void put_pdesc(uint8_t *ram, unsigned int i, uint64_t addr,
		      uint16_t id, bool wrap)
{
	uint16_t flags = wrap ? F_AVAIL : F_USED;
	uint32_t len = 64;

	memcpy(ram + PDESC_OFF + 16 * i, &addr, 8);
	memcpy(ram + PDESC_OFF + 16 * i + 8, &len, 4);
	memcpy(ram + PDESC_OFF + 16 * i + 12, &id, 2);
	memcpy(ram + PDESC_OFF + 16 * i + 14, &flags, 2);
}

TEST(packed_ring_follows_a_replaced_region)
{
	uint8_t *a = calloc(1, RAM_SIZE), *b = calloc(1, RAM_SIZE);
	struct viommu_mem_region r;
	struct viommu_mem *m = NULL;
	struct vq vq;
	struct vq_elem e;
	uint16_t flags, id;
	unsigned int tok;

	REQUIRE(a && b);
	REQUIRE(viommu_mem_create(NULL, &m) == 0);
	r = region(RAM_GPA, RAM_SIZE, a);
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	REQUIRE(vq_init(&vq, m, NULL, NULL, "rq", QSIZE) == 0);
	put_pdesc(a, 0, RAM_GPA + BUF_OFF, 7, true);
	tok = viommu_mem_read_lock(m);
	REQUIRE(vq_configure(&vq, QSIZE, RAM_GPA + PDESC_OFF,
			     RAM_GPA + PDRV_OFF, RAM_GPA + PDEV_OFF, true,
			     false, false) == 0);
	CHECK_EQ(vq_pop(&vq, &e), 0);
	CHECK_EQ(e.id, 7);
	CHECK_EQ(vq_push(&vq, &e, 0), 0);
	viommu_mem_read_unlock(m, tok);
	memcpy(&flags, a + PDESC_OFF + 14, 2);
	CHECK_EQ(flags, F_AVAIL | F_USED); /* used in the first lap */

	/* the same GPAs backed by @b, which offers descriptor 1 (ID 9) */
	memcpy(b, a, RAM_SIZE);
	put_pdesc(b, 1, RAM_GPA + BUF_OFF + PG, 9, true);
	r = region(RAM_GPA, RAM_SIZE, b);
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	memset(a, 0xff, RAM_SIZE);
	tok = viommu_mem_read_lock(m);
	CHECK_EQ(vq_pop(&vq, &e), 0);
	CHECK_EQ(e.id, 9);
	CHECK_U64(e.segs[0].gpa, RAM_GPA + BUF_OFF + PG);
	CHECK_EQ(vq_push(&vq, &e, 0), 0);
	viommu_mem_read_unlock(m, tok);
	/* the used descriptor went to @b; @a (stale) was not written */
	memcpy(&flags, b + PDESC_OFF + 16 + 14, 2);
	memcpy(&id, b + PDESC_OFF + 16 + 12, 2);
	CHECK_EQ(flags, F_AVAIL | F_USED);
	CHECK_EQ(id, 9);
	CHECK_EQ(a[PDESC_OFF + 16 + 14], 0xff);
	CHECK(!vq.broken);
	vq_destroy(&vq);
	viommu_mem_destroy(m);
	free(a);
	free(b);
}

TEST(used_ring_made_read_only_is_not_written)
{
	uint8_t *a = calloc(1, RAM_SIZE);
	struct logs lg = { 0 };
	struct viommu_log log = { .fn = count_log, .opaque = &lg,
				  .level = VIOMMU_LOG_DEBUG };
	struct viommu_mem_region r;
	struct viommu_mem *m = NULL;
	struct vq vq;
	struct vq_elem e;
	unsigned int tok;

	REQUIRE(a);
	REQUIRE(viommu_mem_create(NULL, &m) == 0);
	r = region(RAM_GPA, RAM_SIZE, a);
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	REQUIRE(vq_init(&vq, m, &log, NULL, "rq", QSIZE) == 0);
	one_buffer_chain(a, 0, RAM_GPA + BUF_OFF);
	one_buffer_chain(a, 1, RAM_GPA + BUF_OFF);
	offer(a, 0, 0);
	offer(a, 1, 1);
	tok = viommu_mem_read_lock(m);
	REQUIRE(vq_configure(&vq, QSIZE, RAM_GPA + DESC_OFF,
			     RAM_GPA + AVAIL_OFF, RAM_GPA + USED_OFF, false,
			     false, false) == 0);
	CHECK_EQ(vq_pop(&vq, &e), 0);
	CHECK_EQ(vq_push(&vq, &e, 0), 0); /* ring pointers cached */
	viommu_mem_read_unlock(m, tok);
	CHECK_EQ(a[USED_OFF + 2], 1);
	/* the same memory, now read-only */
	r.flags = VIOMMU_MEM_F_READONLY;
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	tok = viommu_mem_read_lock(m);
	CHECK_EQ(vq_pop(&vq, &e), 0); /* reading is fine */
	CHECK_EQ(vq_push(&vq, &e, 0), -EIO);
	viommu_mem_read_unlock(m, tok);
	CHECK(vq.broken);
	CHECK_EQ(lg.warns, 1);
	CHECK_EQ(a[USED_OFF + 2], 1); /* not written */
	vq_destroy(&vq);
	viommu_mem_destroy(m);
	free(a);
}

/*
 * pair_case() - offer one two-descriptor chain (@ra/@rl readable with
 * NEXT, @wa/@wl writable) at descriptors 2*@k, 2*@k+1 as entry @k of a
 * fresh split queue over three regions (the test RAM, a second RAM region
 * @b at 0x200000, a read-only one @c at 0x300000), pop it twice over (the
 * first pop warms the buffer cache on the RAM region), and return the
 * second pop's result with *@e (its first four segments copied to @segs,
 * e->segs pointing there) and the warnings logged.
 */
static int pair_case(uint16_t rflags, uint64_t ra, uint32_t rl,
		     uint16_t wflags, uint64_t wa, uint32_t wl,
		     struct vq_elem *e, int *warns)
{
	static struct vq_seg segs[4];
	static uint8_t b[PG], c[PG];
	uint8_t *a = calloc(1, RAM_SIZE);
	struct logs lg = { 0 };
	struct viommu_log log = { .fn = count_log, .opaque = &lg,
				  .level = VIOMMU_LOG_DEBUG };
	struct viommu_mem_region r[3] = {
		region(RAM_GPA, RAM_SIZE, a), region(0x200000, PG, b),
		region(0x300000, PG, c),
	};
	struct viommu_mem *m = NULL;
	struct vq vq;
	unsigned int tok;
	int ret = -1;

	r[2].flags = VIOMMU_MEM_F_READONLY;
	if (!a || viommu_mem_create(NULL, &m) ||
	    viommu_mem_set_regions(m, r, 3) ||
	    vq_init(&vq, m, &log, NULL, "rq", QSIZE))
		goto out;
	/* entry 0: a plain pair inside the RAM region */
	put_desc(a, DESC_OFF, 0, RAM_GPA + BUF_OFF, 36, 1, 1);
	put_desc(a, DESC_OFF, 1, RAM_GPA + BUF_OFF + 64, 4, 2, 0);
	offer(a, 0, 0);
	/* entry 1: the case */
	put_desc(a, DESC_OFF, 2, ra, rl, rflags, 3);
	put_desc(a, DESC_OFF, 3, wa, wl, wflags, 0);
	offer(a, 1, 2);
	tok = viommu_mem_read_lock(m);
	if (vq_configure(&vq, QSIZE, RAM_GPA + DESC_OFF, RAM_GPA + AVAIL_OFF,
			 RAM_GPA + USED_OFF, false, false, false) == 0 &&
	    vq_pop(&vq, e) == 0 && e->nseg == 2 && e->nread == 1 &&
	    e->read_len == 36 && e->write_len == 4 &&
	    vq_push(&vq, e, 0) == 0)
		ret = vq_pop(&vq, e);
	viommu_mem_read_unlock(m, tok);
	if (ret == 0) {
		memcpy(segs, e->segs, sizeof(segs[0]) * MIN(e->nseg, 4u));
		e->segs = segs;
	}
	*warns = lg.warns;
	vq_destroy(&vq);
out:
	viommu_mem_destroy(m);
	free(a);
	return ret;
}

/*
 * A virtio-iommu request's shape, a readable descriptor chained to a
 * writable one, is popped in one step when both buffers lie in the cached
 * region; every other two-descriptor chain must get what the general walk
 * gives it (segments, lengths, or a broken queue with one warning).
 */
TEST(two_descriptor_chains_match_the_general_walk)
{
	const uint64_t buf = RAM_GPA + BUF_OFF + 256;
	struct vq_elem e;
	int w;

	/* the fast shape: one readable and one writable segment */
	CHECK_EQ(pair_case(1, buf, 48, 2, buf + 64, 8, &e, &w), 0);
	CHECK_EQ(e.id, 2);
	CHECK_EQ(e.nseg, 2);
	CHECK_EQ(e.nread, 1);
	CHECK_U64(e.segs[0].gpa, buf);
	CHECK_EQ(e.segs[0].len, 48);
	CHECK_EQ(e.segs[0].write, 0);
	CHECK_U64(e.segs[1].gpa, buf + 64);
	CHECK_EQ(e.segs[1].len, 8);
	CHECK_EQ(e.segs[1].write, 1);
	CHECK_EQ(e.read_len, 48);
	CHECK_EQ(e.write_len, 8);
	CHECK_EQ(w, 0);
	/* the writable buffer in another RAM region (not the cached one) */
	CHECK_EQ(pair_case(1, buf, 48, 2, 0x200010, 8, &e, &w), 0);
	CHECK_EQ(e.nseg, 2);
	CHECK_U64(e.segs[1].gpa, 0x200010);
	CHECK_EQ(w, 0);
	/* a readable buffer crossing from the RAM region into a hole */
	CHECK_EQ(pair_case(1, RAM_GPA + RAM_SIZE - 8, 16, 2, buf, 8, &e, &w),
		 -EIO);
	CHECK_EQ(w, 1);
	/* an empty readable element: not stored, only the writable one */
	CHECK_EQ(pair_case(1, buf, 0, 2, buf + 64, 8, &e, &w), 0);
	CHECK_EQ(e.nseg, 1);
	CHECK_EQ(e.nread, 0);
	CHECK_EQ(e.read_len, 0);
	CHECK_EQ(e.write_len, 8);
	/* a second NEXT (back to entry 0's pair): four elements, in order */
	CHECK_EQ(pair_case(1, buf, 16, 1, buf + 64, 8, &e, &w), 0);
	CHECK_EQ(e.nseg, 4);
	CHECK_EQ(e.nread, 3);
	CHECK_EQ(e.read_len, 16 + 8 + 36);
	CHECK_EQ(e.write_len, 4);
	CHECK_EQ(w, 0);
	/* both writable */
	CHECK_EQ(pair_case(2 | 1, buf, 16, 2, buf + 64, 8, &e, &w), 0);
	CHECK_EQ(e.nseg, 2);
	CHECK_EQ(e.nread, 0);
	CHECK_EQ(e.write_len, 24);
	/* a writable element, then a readable one */
	CHECK_EQ(pair_case(2 | 1, buf, 16, 0, buf + 64, 8, &e, &w), -EIO);
	CHECK_EQ(w, 1);
	/* writable buffer in read-only RAM */
	CHECK_EQ(pair_case(1, buf, 48, 2, 0x300000, 8, &e, &w), -EIO);
	CHECK_EQ(w, 1);
	/* reading from read-only RAM is fine */
	CHECK_EQ(pair_case(1, 0x300000, 48, 2, buf, 8, &e, &w), 0);
	CHECK_EQ(e.nseg, 2);
	CHECK_EQ(w, 0);
	/* indirect flag on the first descriptor, feature not negotiated */
	CHECK_EQ(pair_case(1 | 4, buf, 48, 2, buf + 64, 8, &e, &w), -EIO);
	CHECK_EQ(w, 1);
	/* lengths whose sum passes 2^32 - 1 */
	CHECK_EQ(pair_case(1, buf, 0xffffffffu, 2, buf, 2, &e, &w), -EIO);
	CHECK_EQ(w, 1);
}

struct setter {
	struct viommu_mem *m;
	struct viommu_mem_region r;
	int rc;
};

static void *setter_thread(void *arg)
{
	struct setter *s = arg;

	s->rc = viommu_mem_set_regions(s->m, &s->r, 1);
	return NULL;
}

/*
 * The two-descriptor pop keeps the host addresses of both buffers with the
 * element (vq_elem.rhva/whva) for the table it found them in.  A region
 * set published between the pop and the reply (the writer then waits for
 * our read section) must be seen by vq_read()/vq_write(), as it was when
 * every access looked the region up.
 */
TEST(buffer_pointers_of_a_pop_follow_a_replacement)
{
	uint8_t *a = calloc(1, RAM_SIZE), *b = calloc(1, RAM_SIZE);
	struct viommu_mem_region r;
	struct viommu_mem *m = NULL;
	struct setter st;
	struct vq vq;
	struct vq_elem e;
	uint8_t got[8];
	unsigned int tok;
	uint64_t gen;
	pthread_t th;

	REQUIRE(a && b);
	REQUIRE(viommu_mem_create(NULL, &m) == 0);
	r = region(RAM_GPA, RAM_SIZE, a);
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	REQUIRE(vq_init(&vq, m, NULL, NULL, "rq", QSIZE) == 0);
	for (unsigned int i = 0; i < 2; i++) {
		put_desc(a, DESC_OFF, 2 * i, RAM_GPA + BUF_OFF, 8, 1,
			 (uint16_t)(2 * i + 1));
		put_desc(a, DESC_OFF, 2 * i + 1, RAM_GPA + BUF_OFF + 64, 4, 2,
			 0);
		offer(a, (uint16_t)i, (uint16_t)(2 * i));
	}
	memset(a + BUF_OFF, 0x11, 8);
	memcpy(b, a, RAM_SIZE);
	memset(b + BUF_OFF, 0x22, 8);
	tok = viommu_mem_read_lock(m);
	REQUIRE(vq_configure(&vq, QSIZE, RAM_GPA + DESC_OFF,
			     RAM_GPA + AVAIL_OFF, RAM_GPA + USED_OFF, false,
			     false, false) == 0);
	/* the first pop warms the buffer cache, the second takes the pair */
	REQUIRE(vq_pop(&vq, &e) == 0);
	REQUIRE(vq_push(&vq, &e, 0) == 0);
	REQUIRE(vq_pop(&vq, &e) == 0);
	CHECK(e.rhva == a + BUF_OFF);
	CHECK(e.whva == a + BUF_OFF + 64);
	CHECK_EQ(vq_read(&vq, &e, 0, got, 8), 0);
	CHECK_EQ(got[7], 0x11);
	gen = viommu_mem_generation(m);
	st = (struct setter){ .m = m, .r = region(RAM_GPA, RAM_SIZE, b) };
	REQUIRE(pthread_create(&th, NULL, setter_thread, &st) == 0);
	while (viommu_mem_generation(m) == gen)
		sched_yield();
	/* published; the setter waits for this section */
	CHECK_EQ(vq_read(&vq, &e, 0, got, 8), 0);
	CHECK_EQ(got[7], 0x22);
	CHECK_EQ(vq_write(&vq, &e, 0, "\x07\x07\x07\x07", 4), 0);
	viommu_mem_read_unlock(m, tok);
	pthread_join(th, NULL);
	CHECK_EQ(st.rc, 0);
	CHECK_EQ(b[BUF_OFF + 64], 7);
	CHECK_EQ(a[BUF_OFF + 64], 0);
	vq_destroy(&vq);
	viommu_mem_destroy(m);
	free(a);
	free(b);
}

TEST(ring_at_an_odd_host_address_works)
{
	uint8_t *raw = calloc(1, RAM_SIZE + 1), *a = raw + 1;
	struct viommu_mem_region r;
	struct viommu_mem *m = NULL;
	struct vq vq;
	struct vq_elem e;
	uint32_t used[2];
	unsigned int tok;

	REQUIRE(raw);
	REQUIRE(viommu_mem_create(NULL, &m) == 0);
	r = region(RAM_GPA, RAM_SIZE, a);
	REQUIRE(viommu_mem_set_regions(m, &r, 1) == 0);
	REQUIRE(vq_init(&vq, m, NULL, NULL, "rq", QSIZE) == 0);
	for (unsigned int i = 0; i < 3; i++) {
		one_buffer_chain(a, i, RAM_GPA + BUF_OFF + 64 * i);
		offer(a, (uint16_t)i, (uint16_t)i);
	}
	tok = viommu_mem_read_lock(m);
	REQUIRE(vq_configure(&vq, QSIZE, RAM_GPA + DESC_OFF,
			     RAM_GPA + AVAIL_OFF, RAM_GPA + USED_OFF, false,
			     false, false) == 0);
	for (unsigned int i = 0; i < 3; i++) {
		CHECK_EQ(vq_pop(&vq, &e), 0);
		CHECK_EQ(e.id, i);
		CHECK_U64(e.segs[0].gpa, RAM_GPA + BUF_OFF + 64 * i);
		CHECK_EQ(vq_push(&vq, &e, 5), 0);
	}
	CHECK_EQ(vq_pop(&vq, &e), -ENOENT);
	CHECK(vq.rc_dev == NULL); /* not used: odd host address */
	viommu_mem_read_unlock(m, tok);
	memcpy(used, a + USED_OFF + 4 + 16, sizeof(used));
	CHECK_EQ(used[0], 2);
	CHECK_EQ(a[USED_OFF + 2], 3);
	CHECK(!vq.broken);
	vq_destroy(&vq);
	viommu_mem_destroy(m);
	free(raw);
}

TEST_MAIN()
