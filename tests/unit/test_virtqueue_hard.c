/*
 * test_virtqueue_hard.c - the virtqueue's hardening rules
 * (src/virtio/virtqueue.h): one test per rule, each building a bad ring
 * by hand through the fixture of vq_fixture.h and asserting
 * DEVICE_NEEDS_RESET, exactly one log line, no used entry, and a working
 * queue after reset.
 */
#include "vq_fixture.h"

/* ---- hardening: each rule breaks the queue cleanly -------------------- */

/*
 * expect_broken() - kick queue @q, which holds a malformed chain: the
 * device must need reset, have logged exactly one line, raised one config
 * interrupt, returned nothing; further kicks are ignored silently; after
 * a device reset and re-initialisation the queue works again.  The log
 * line must contain @why, unless @why is NULL: then only the behaviour
 * is asserted (for rules such as loop detection whose wording is not
 * the point).
 */
static void expect_broken(struct fx *f, uint16_t q, const char *why)
{
	struct viommu_virtio_dev *d = dev_of(f);
	unsigned long logs = f->nlog, cfg = f->irq_config;
	unsigned int popped = f->fk.popped[q];
	uint64_t t;
	uint32_t len;

	CHECK_EQ(viommu_virtio_dev_notify(d, q), 0);
	CHECK(viommu_virtio_dev_status(d) & S_NR);
	CHECK_EQ(f->nlog - logs, 1);
	CHECK(!why || strstr(f->last_log, why) != NULL);
	if (f->nlog - logs != 1 || (why && !strstr(f->last_log, why)) ||
	    getenv("VQ_SHOW_LOG"))
		printf("# log: %s\n", f->last_log);
	CHECK_EQ(f->irq_config - cfg, 1);
	CHECK(vdev_queue(d, q)->broken);
	CHECK_EQ(f->fk.popped[q], popped);
	CHECK_EQ(drvring_get_used(&f->ring[q], &t, &len), -ENOENT);
	/* ignored from now on, NEEDS_RESET sticky */
	viommu_virtio_dev_notify(d, q);
	viommu_virtio_dev_notify(d, (uint16_t)(q ^ 1));
	CHECK_EQ(f->nlog - logs, 1);
	CHECK_EQ(viommu_virtio_dev_set_status(d, viommu_virtio_dev_status(d)),
		 0);
	CHECK(viommu_virtio_dev_status(d) & S_NR);
	/* reset and recover */
	CHECK_EQ(viommu_virtio_dev_set_status(d, 0), 0);
	CHECK_EQ(viommu_virtio_dev_status(d), 0);
	CHECK(!vdev_queue(d, q)->broken);
	REQUIRE(negotiate(f, opts_features(&f->o)) == 0);
	simple_rt(f, q, 1234);
	CHECK_EQ(viommu_virtio_dev_status(d), S_ALL_OK);
	CHECK_EQ(f->nlog - logs, 1);
}

/* Descriptor fields of table @t, for both layouts (packed: @f packed). */
static uint16_t *d_flags(struct fx *f, void *t, int i)
{
	return (uint16_t *)((uint8_t *)t + 16 * i + (f->o.packed ? 14 : 12));
}

static uint32_t *d_len(void *t, int i)
{
	return (uint32_t *)((uint8_t *)t + 16 * i + 8);
}

static uint64_t *d_addr(void *t, int i)
{
	return (uint64_t *)((uint8_t *)t + 16 * i);
}

/* split next field */
static uint16_t *d_next(void *t, int i)
{
	return (uint16_t *)((uint8_t *)t + 16 * i + 14);
}

static void *ring_desc(struct fx *f)
{
	return drvring_desc(&f->ring[0]);
}

static uint16_t *avail_ring(struct fx *f)
{
	return drvring_driver_area(&f->ring[0]);
}

/* ind0() - the per-ring indirect table of the first chain. */
static void *ind0(struct fx *f)
{
	return drvring_ind_table(&f->ring[0], 0, NULL);
}

/*
 * hard() - queue 0 of a fresh device (@packed, @indirect negotiated, size
 * 8, max 16) gets a malformed chain from @make; expect_broken(@why).
 */
static void hard(bool packed, bool indirect, void (*make)(struct fx *f),
		 const char *why)
{
	struct fx *f = fx_open((struct opts){ packed, false, indirect, 8,
					      16 });

	make(f);
	expect_broken(f, 0, why);
	fx_close(f);
}

/* hard2() - hard() on a split and on a packed ring. */
static void hard2(bool indirect, void (*make)(struct fx *f), const char *why)
{
	hard(false, indirect, make, why);
	hard(true, indirect, make, why);
}

static void mk_loop(struct fx *f) /* 0 -> 1 -> 0 -> ..., all readable */
{
	add_rw(f, 0, false);
	*d_flags(f, ring_desc(f), 1) = VQ_DESC_F_NEXT;
	*d_next(ring_desc(f), 1) = 0;
}

static void mk_self_loop(struct fx *f)
{
	add_rw(f, 0, false);
	*d_next(ring_desc(f), 0) = 0;
}

/*
 * mk_empty_loop() - 0 -> 1 -> 0 -> ... of zero-length readable
 * descriptors: they store no segment, so only the chain-length bound can
 * stop the walk (without it the kick never returns).
 */
static void mk_empty_loop(struct fx *f)
{
	add_rw(f, 0, false);
	*d_len(ring_desc(f), 0) = 0;
	*d_flags(f, ring_desc(f), 1) = VQ_DESC_F_NEXT;
	*d_len(ring_desc(f), 1) = 0;
	*d_next(ring_desc(f), 1) = 0;
}

static void mk_ring_of_nexts(struct fx *f) /* every descriptor chained */
{
	uint64_t b = buf_alloc(f, 16);

	for (int i = 0; i < 8; i++)
		*(struct sdesc *)d_addr(ring_desc(f), i) = (struct sdesc){
			b, 16, VQ_DESC_F_NEXT, (uint16_t)((i + 1) % 8) };
	avail_ring(f)[1] = 1;
}

static void mk_head_past_ring(struct fx *f)
{
	add_rw(f, 0, false);
	avail_ring(f)[2] = 8; /* ring[0] = head 8, size 8 */
}

static void mk_next_past_ring(struct fx *f)
{
	add_rw(f, 0, false);
	*d_next(ring_desc(f), 0) = 0x8000;
}

static void mk_idx_jump(struct fx *f)
{
	add_rw(f, 0, false);
	avail_ring(f)[1] = 9; /* 9 ahead of 0 with size 8 */
}

static void mk_idx_back(struct fx *f) /* going back = 65535 ahead */
{
	for (int i = 0; i < 20; i++)
		simple_rt(f, 0, (uint64_t)i);
	avail_ring(f)[1] = 19;
}

/*
 * Loops in split chains: whatever check catches them, the queue breaks,
 * nothing reaches the device model and no used entry appears (asserted
 * by behaviour, not by the log line's wording).
 */
TEST(hard_split_descriptor_loop)
{
	hard(false, false, mk_loop, NULL);
}
TEST(hard_split_self_loop)
{
	hard(false, false, mk_self_loop, NULL);
}
TEST(hard_split_loop_of_empty_descriptors)
{
	hard(false, false, mk_empty_loop, NULL);
}
TEST(hard_split_chain_longer_than_queue)
{
	hard(false, false, mk_ring_of_nexts, NULL);
}
TEST(hard_split_head_past_ring)
{
	hard(false, false, mk_head_past_ring, "past the ring");
}
TEST(hard_split_next_past_ring)
{
	hard(false, false, mk_next_past_ring, "past the ring");
}
TEST(hard_split_avail_idx_jump) { hard(false, false, mk_idx_jump, "ahead of"); }
TEST(hard_split_avail_idx_jump_after_wrap)
{
	hard(false, false, mk_idx_back, "ahead of");
}

/* add_segs() - @n segments as one chain, through an indirect table if @ind. */
static void add_segs(struct fx *f, const struct drvring_seg *s, unsigned int n)
{
	if (drvring_add(&f->ring[0], s, n, 1, f->o.indirect))
		abort();
}

static void mk_len_wrap(struct fx *f) /* the total is checked before RAM */
{
	struct drvring_seg s[3] = { { RAM1, 16, false },
				    { RAM1, 0xfffffff8u, false },
				    { RAM1, 16, true } };

	add_segs(f, s, 3);
}

TEST(hard_lengths_wrap) { hard2(false, mk_len_wrap, "overflows"); }
TEST(hard_lengths_wrap_indirect) { hard2(true, mk_len_wrap, "overflows"); }

/* One segment at bad_gpa/bad_len (writable if bad_write) after a good one. */
static uint64_t bad_gpa;
static uint32_t bad_len;
static bool bad_write;

static void mk_bad_buffer(struct fx *f)
{
	struct drvring_seg s[2] = { { buf_alloc(f, 16), 16, false },
				    { bad_gpa, bad_len, bad_write } };

	if (!bad_write) { /* readable: put it first */
		s[1] = s[0];
		s[1].write = true;
		s[0] = (struct drvring_seg){ bad_gpa, bad_len, false };
	}
	add_segs(f, s, 2);
}

/* bad_buffer() - every ring flavour refuses the segment (@gpa, @len). */
static void bad_buffer(uint64_t gpa, uint32_t len, bool write)
{
	bad_gpa = gpa;
	bad_len = len;
	bad_write = write;
	for (int ind = 0; ind < 2; ind++)
		hard2(ind, mk_bad_buffer,
		      write ? "is not writable guest RAM" : "is not guest RAM");
}

TEST(hard_buffer_in_hole)
{
	bad_buffer(HOLE, 16, false);
	bad_buffer(HOLE, 16, true);
}

TEST(hard_buffer_straddles_into_hole)
{
	bad_buffer(RAM0 + RAM0_SIZE - 8, 16, false);
	bad_buffer(RAM2 + RAM2_SIZE - 1, 2, true);
	bad_buffer(RAM1 - 4, 8, true);
}

TEST(hard_buffer_address_wraps)
{
	bad_buffer(0xfffffffffffff000ull, 0x2000, false);
	bad_buffer(0xfffffffffffffff0ull, 0x20, true);
}

TEST(hard_buffer_beyond_all_ram)
{
	bad_buffer(0x100000000ull, 16, true);
	bad_buffer(0x100000000ull, 16, false);
}

TEST(hard_writable_buffer_in_rom) { bad_buffer(ROM, 16, true); }

/* A readable buffer in ROM is fine. */
TEST(readable_buffer_in_rom_ok)
{
	struct fx *f = fx_open((struct opts){ false, false, false, 8, 16 });
	struct drvring_seg s[2] = { { ROM, 16, false },
				    { buf_alloc(f, 16), 16, true } };
	uint64_t t;
	uint32_t len;

	REQUIRE(drvring_add(&f->ring[0], s, 2, 1, false) == 0);
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(drvring_get_used(&f->ring[0], &t, &len), 0);
	CHECK_EQ(len, 16);
	CHECK_EQ(f->nlog, 0);
	fx_close(f);
}

static void mk_read_after_write(struct fx *f)
{
	struct drvring_seg s[3] = { { buf_alloc(f, 16), 16, false },
				    { buf_alloc(f, 16), 16, true },
				    { buf_alloc(f, 16), 16, false } };

	add_segs(f, s, 3);
}

static void mk_zero_len_write_first(struct fx *f) /* order still counts */
{
	struct drvring_seg s[2] = { { buf_alloc(f, 16), 0, true },
				    { buf_alloc(f, 16), 16, false } };

	add_segs(f, s, 2);
}

static void mk_table_read_after_direct_write(struct fx *f)
{
	uint64_t tbl = buf_alloc(f, 16);

	add_rw(f, 0, false); /* desc 0 readable, desc 1 writable */
	*d_flags(f, ring_desc(f), 1) |= VQ_DESC_F_NEXT;
	*d_next(ring_desc(f), 1) = 2;
	*(struct sdesc *)hva(f, tbl) = (struct sdesc){ buf_alloc(f, 8), 8,
						       0, 0 };
	*(struct sdesc *)d_addr(ring_desc(f), 2) = (struct sdesc){
		tbl, 16, VQ_DESC_F_INDIRECT, 0 };
}

TEST(hard_readable_after_writable)
{
	hard2(false, mk_read_after_write, "after a writable");
}
TEST(hard_ind_readable_after_writable)
{
	hard2(true, mk_read_after_write, "after a writable");
}
TEST(hard_zero_len_writable_then_readable)
{
	hard2(false, mk_zero_len_write_first, "after a writable");
}
TEST(hard_split_table_readable_after_direct_writable)
{
	hard(false, true, mk_table_read_after_direct_write, "after a writable");
}

/* Corruptions of the INDIRECT head descriptor or of its table. */
static void mk_ind_len24(struct fx *f)
{
	add_rw(f, 0, true);
	*d_len(ring_desc(f), 0) = 24;
}

static void mk_ind_len0(struct fx *f)
{
	add_rw(f, 0, true);
	*d_len(ring_desc(f), 0) = 0;
}

static void mk_ind_with_next(struct fx *f)
{
	add_rw(f, 0, true);
	*d_flags(f, ring_desc(f), 0) |= VQ_DESC_F_NEXT;
}

static void mk_ind_in_hole(struct fx *f)
{
	add_rw(f, 0, true);
	*d_addr(ring_desc(f), 0) = HOLE;
}

static void mk_ind_nested(struct fx *f) /* entry 1 is a table itself */
{
	add_rw(f, 0, true);
	*d_flags(f, ind0(f), 1) |= VQ_DESC_F_INDIRECT;
}

static void mk_ind_too_long(struct fx *f) /* 17 entries, queue max 16 */
{
	struct drvring_seg s[17];
	uint64_t tbl = buf_alloc(f, 17 * 16);

	for (int i = 0; i < 17; i++)
		s[i] = (struct drvring_seg){ buf_alloc(f, 4), 4, i == 16 };
	if (drvring_add_indirect(&f->ring[0], s, 17, 1, hva(f, tbl), tbl))
		abort();
}

static void mk_ind_without_feature(struct fx *f)
{
	f->ring[0].indirect = true; /* the driver cheats */
	add_rw(f, 0, true);
}

static void mk_ind_loop(struct fx *f)
{
	add_rw(f, 0, true);
	*d_flags(f, ind0(f), 1) |= VQ_DESC_F_NEXT;
	*d_next(ind0(f), 1) = 1;
}

static void mk_ind_next_past_table(struct fx *f)
{
	add_rw(f, 0, true);
	*d_next(ind0(f), 0) = 2; /* the table has 2 entries */
}

TEST(hard_indirect_len_not_multiple_of_16)
{
	hard2(true, mk_ind_len24, "multiple of 16");
}
TEST(hard_indirect_len_zero) { hard2(true, mk_ind_len0, "multiple of 16"); }
TEST(hard_indirect_with_next)
{
	hard2(true, mk_ind_with_next, "both NEXT and INDIRECT");
}
TEST(hard_indirect_table_not_ram)
{
	hard2(true, mk_ind_in_hole, "indirect table not in guest RAM");
}
TEST(hard_indirect_nested)
{
	hard2(true, mk_ind_nested, "inside an indirect table");
}
TEST(hard_indirect_longer_than_queue_max)
{
	hard2(true, mk_ind_too_long, "queue maximum");
}
TEST(hard_indirect_without_feature)
{
	hard2(false, mk_ind_without_feature, "without VIRTIO_F_INDIRECT_DESC");
}
TEST(hard_split_indirect_loop)
{
	hard(false, true, mk_ind_loop, NULL);
}
TEST(hard_split_indirect_next_past_table)
{
	hard(false, true, mk_ind_next_past_table, "past the table");
}

/* Packed-only rules. */
static void mk_packed_ind_in_chain(struct fx *f)
{
	add_rw(f, 0, false);
	*d_addr(ring_desc(f), 1) = buf_alloc(f, 16);
	*d_flags(f, ring_desc(f), 1) |= VQ_DESC_F_INDIRECT;
}

static void mk_packed_chain_unavailable(struct fx *f)
{
	add_rw(f, 0, false);
	*d_flags(f, ring_desc(f), 1) |= VQ_DESC_F_NEXT; /* slot 2 is empty */
}

static void mk_packed_chain_around(struct fx *f) /* all 8 slots chained */
{
	uint64_t b = buf_alloc(f, 16);

	for (int i = 7; i >= 0; i--)
		*(struct pdesc *)d_addr(ring_desc(f), i) = (struct pdesc){
			b, 16, 0, VQ_DESC_F_NEXT | VQ_DESC_F_AVAIL };
}

TEST(hard_packed_indirect_inside_chain)
{
	hard(true, true, mk_packed_ind_in_chain, "inside a packed chain");
}
TEST(hard_packed_chain_runs_into_unavailable)
{
	hard(true, false, mk_packed_chain_unavailable, "not available");
}
TEST(hard_packed_chain_around_the_ring)
{
	hard(true, false, mk_packed_chain_around, "longer than the queue size");
}

/* A used ring that stops being RAM (region set replaced) breaks too. */
TEST(hard_ring_memory_removed)
{
	struct fx *f = fx_open((struct opts){ false, false, false, 8, 16 });
	struct viommu_mem_region r[2] = {
		{ RAM1, RAM1_SIZE, -1, 0, f->ram1, 0 },
		{ RAM2, RAM2_SIZE, -1, 0, f->ram1 + RAM1_SIZE, 0 },
	};
	struct viommu_mem_region all[4] = {
		{ RAM0, RAM0_SIZE, -1, 0, f->ram0, 0 }, r[0], r[1],
		{ ROM, ROM_SIZE, -1, 0, f->rom, VIOMMU_MEM_F_READONLY },
	};
	unsigned long logs = f->nlog;

	add_rw(f, 0, false);
	REQUIRE(viommu_mem_set_regions(f->mem, r, 2) == 0);
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK(viommu_virtio_dev_status(dev_of(f)) & S_NR);
	CHECK_EQ(f->nlog - logs, 1);
	REQUIRE(viommu_mem_set_regions(f->mem, all, 4) == 0);
	viommu_virtio_dev_set_status(dev_of(f), 0);
	REQUIRE(negotiate(f, opts_features(&f->o)) == 0);
	simple_rt(f, 0, 5);
	fx_close(f);
}

/* The model reporting its own error: one line, sticky, config irq. */
TEST(needs_reset_from_model)
{
	struct fx *f = fx_open((struct opts){ false, false, false, 8, 16 });
	struct viommu_virtio_dev *d = dev_of(f);

	pthread_mutex_lock(&d->lock);
	__vdev_needs_reset(d, "internal error");
	__vdev_needs_reset(d, "again");
	pthread_mutex_unlock(&d->lock);
	CHECK_EQ(f->nlog, 1);
	CHECK(strstr(f->last_log, "internal error") != NULL);
	CHECK_EQ(f->irq_config, 1);
	CHECK_EQ(viommu_virtio_dev_status(d), S_ALL_OK | S_NR);
	CHECK_EQ(viommu_virtio_dev_read_isr(d), VIOMMU_VIRTIO_ISR_CONFIG);
	add_rw(f, 0, false);
	viommu_virtio_dev_notify(d, 0);
	CHECK_EQ(f->fk.popped[0], 0);
	viommu_virtio_dev_set_status(d, 0);
	CHECK_EQ(viommu_virtio_dev_status(d), 0);
	fx_close(f);
}

TEST_MAIN()
