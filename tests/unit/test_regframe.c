/*
 * test_regframe.c - the polled register frame (src/link/regframe.c) with a
 * fake model: feed order, publish and its compare-and-swap against a racing
 * guest store, read-only registers, bounded polling, an absent frame, the
 * ops table's checks and the polling thread's start and stop.
 *
 * The fake model has an ID register (read-only), a 64-bit BASE, CTRL with
 * its acknowledgement CTRLACK (read-only: CTRL & 0xff), a doorbell PROD and
 * CONS (read-only), which the model advances to PROD - one entry per poll
 * call when @slow is set.  The "guest" is this test writing the frame in
 * RAM directly.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "harness.h"
#include "link/regframe.h"

#define RAM_GPA 0x40000000ull
#define RAM_SIZE (64u << 10)
#define FRAME_OFF 0x1000u
#define FRAME_GPA (RAM_GPA + FRAME_OFF)
#define ID_VAL 0x5a5a0001u

enum { R_ID = 0x0, R_BASE = 0x8, R_CTRL = 0x10, R_CTRLACK = 0x14,
       R_PROD = 0x18, R_CONS = 0x1c };

/* feed order: BASE before CTRL before PROD */
static const struct regframe_reg fake_regs[] = {
	{ R_ID, 4, false },      { R_BASE, 8, true },  { R_CTRL, 4, true },
	{ R_CTRLACK, 4, false }, { R_PROD, 4, true },  { R_CONS, 4, false },
};

struct fake {
	uint64_t base;
	uint32_t ctrl, prod, cons;
	bool slow;       /* CONS moves one step per poll */
	unsigned int nwrites;
	uint32_t order[32]; /* offsets written, in order */
	unsigned int polls, after_rounds;
	int read_fail_off; /* -1: none */
	/* a guest store done from inside read() (a racing guest) */
	uint8_t *race_at;
	uint32_t race_val;
};

static int fake_read(void *model, uint64_t off, unsigned int size,
		     uint64_t *val)
{
	struct fake *m = model;

	(void)size;
	if ((int)off == m->read_fail_off)
		return -EIO;
	switch (off) {
	case R_ID: *val = ID_VAL; break;
	case R_BASE: *val = m->base; break;
	case R_CTRL: *val = m->ctrl; break;
	case R_CTRLACK: *val = m->ctrl & 0xff; break;
	case R_PROD:
		*val = m->prod;
		if (m->race_at) { /* the guest rings again mid-publish */
			__atomic_store_n((uint32_t *)m->race_at, m->race_val,
					 __ATOMIC_SEQ_CST);
			m->race_at = NULL;
		}
		break;
	case R_CONS: *val = m->cons; break;
	default: *val = 0;
	}
	return 0;
}

static int fake_write(void *model, uint64_t off, unsigned int size,
		      uint64_t val)
{
	struct fake *m = model;

	(void)size;
	if (m->nwrites < 32)
		m->order[m->nwrites] = (uint32_t)off;
	m->nwrites++;
	switch (off) {
	case R_BASE: m->base = val & ~0xfffull; break; /* low bits RES0 */
	case R_CTRL: m->ctrl = (uint32_t)val; break;
	case R_PROD:
		m->prod = (uint32_t)val & 0xffff; /* 16-bit index */
		if (!m->slow)
			m->cons = m->prod;
		break;
	default: return -EINVAL;
	}
	return 0;
}

static int fake_poll(void *model)
{
	struct fake *m = model;

	if (m->cons == m->prod)
		return 0;
	m->polls++;
	m->cons++;
	return m->cons != m->prod ? 1 : 2;
}

static void fake_after(void *model, bool changed)
{
	(void)changed;
	((struct fake *)model)->after_rounds++;
}

static const struct regframe_ops fake_ops = {
	.regs = fake_regs, .nregs = sizeof(fake_regs) / sizeof(fake_regs[0]),
	.frame_size = 0x20, .read = fake_read, .write = fake_write,
	.poll = fake_poll,
};

struct fx {
	uint8_t *ram;
	struct viommu_mem *mem;
	struct fake m;
	struct regframe *rf;
};

static int fx_init(struct fx *f)
{
	struct viommu_mem_region r = { .gpa = RAM_GPA, .size = RAM_SIZE,
				       .fd = -1 };
	struct regframe_config c = { .size = sizeof(c), .ops = &fake_ops,
				     .gpa = FRAME_GPA, .name = "fake",
				     .after_round = fake_after };

	memset(f, 0, sizeof(*f));
	f->m.read_fail_off = -1;
	f->ram = aligned_alloc(4096, RAM_SIZE);
	if (!f->ram || viommu_mem_create(NULL, &f->mem))
		return -ENOMEM;
	memset(f->ram, 0, RAM_SIZE);
	r.hva = f->ram;
	if (viommu_mem_set_regions(f->mem, &r, 1))
		return -EINVAL;
	c.model = &f->m;
	c.opaque = &f->m;
	c.mem = f->mem;
	return regframe_create(&c, &f->rf);
}

static void fx_fini(struct fx *f)
{
	regframe_destroy(f->rf);
	viommu_mem_destroy(f->mem);
	free(f->ram);
}

static uint32_t g32(struct fx *f, uint32_t off)
{
	return __atomic_load_n((uint32_t *)(f->ram + FRAME_OFF + off),
			       __ATOMIC_SEQ_CST);
}

static uint64_t g64(struct fx *f, uint32_t off)
{
	return __atomic_load_n((uint64_t *)(f->ram + FRAME_OFF + off),
			       __ATOMIC_SEQ_CST);
}

static void s32(struct fx *f, uint32_t off, uint32_t v)
{
	__atomic_store_n((uint32_t *)(f->ram + FRAME_OFF + off), v,
			 __ATOMIC_SEQ_CST);
}

static void s64(struct fx *f, uint32_t off, uint64_t v)
{
	__atomic_store_n((uint64_t *)(f->ram + FRAME_OFF + off), v,
			 __ATOMIC_SEQ_CST);
}

/* the first round publishes the model's reset values; RAM content from
 * before the driver is not taken for guest writes */
TEST(first_round_publishes_reset_values_feeds_nothing)
{
	struct fx f;
	bool changed = false;

	REQUIRE(fx_init(&f) == 0);
	s32(&f, R_CTRL, 0xdead); /* left over in RAM */
	CHECK_EQ(regframe_round(f.rf, &changed), 0);
	CHECK(changed);
	CHECK_EQ(f.m.nwrites, 0);
	CHECK_U64(g32(&f, R_ID), ID_VAL);
	CHECK_U64(g32(&f, R_CTRL), 0); /* the model's value replaced it */
	CHECK_EQ(f.m.after_rounds, 1);
	fx_fini(&f);
}

/* writes between two rounds are fed in the ops table's order, not the
 * order the guest made them; acknowledgements are published at once */
TEST(feed_in_table_order_and_ack_published)
{
	struct fx f;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	s32(&f, R_CTRL, 0x3);
	s64(&f, R_BASE, 0x12345678abcull);
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	REQUIRE(f.m.nwrites == 2);
	CHECK_U64(f.m.order[0], R_BASE);
	CHECK_U64(f.m.order[1], R_CTRL);
	CHECK_U64(g32(&f, R_CTRLACK), 3);
	/* the model masked BASE's low bits: the frame reads back its value */
	CHECK_U64(g64(&f, R_BASE), 0x12345678000ull);
	fx_fini(&f);
}

/* a value equal to the one published is not a write (the limit the
 * documentation names); a later different value is */
TEST(unchanged_value_not_fed)
{
	struct fx f;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	s32(&f, R_CTRL, 0);
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	CHECK_EQ(f.m.nwrites, 0);
	s32(&f, R_CTRL, 1);
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	CHECK_EQ(f.m.nwrites, 1);
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	CHECK_EQ(f.m.nwrites, 1);
	fx_fini(&f);
}

/* a guest store to a read-only register is not fed and is overwritten by
 * the next publish */
TEST(readonly_register_restored_not_fed)
{
	struct fx f;
	unsigned int i;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	s32(&f, R_ID, 0x1111);
	s32(&f, R_CTRL, 5); /* forces a publish */
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	CHECK_EQ(f.m.nwrites, 1);
	CHECK_U64(g32(&f, R_ID), ID_VAL);
	/* and without other activity, by the periodic publish */
	s32(&f, R_ID, 0x2222);
	for (i = 0; i < REGFRAME_REPUBLISH_ROUNDS; i++)
		REQUIRE(regframe_round(f.rf, NULL) == 0);
	CHECK_U64(g32(&f, R_ID), ID_VAL);
	CHECK_EQ(f.m.nwrites, 1);
	fx_fini(&f);
}

/* a guest store that races the publish of a writable register wins: the
 * CAS fails, it is counted, and the store is fed in the next round */
TEST(cas_keeps_racing_guest_store)
{
	struct fx f;
	struct viommu_regframe_stats st;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	/* the guest rings PROD=0x10002, which the model keeps as 2; while
	 * 2 is being published, the guest rings PROD=3 */
	s32(&f, R_PROD, 0x10002);
	f.m.race_at = f.ram + FRAME_OFF + R_PROD;
	f.m.race_val = 3;
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	CHECK_EQ(f.m.nwrites, 1);
	CHECK_U64(f.m.prod, 2);
	CHECK_U64(g32(&f, R_PROD), 3); /* not overwritten by the publish */
	regframe_stats(f.rf, &st);
	CHECK_EQ(st.cas_lost, 1);
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	CHECK_EQ(f.m.nwrites, 2);
	CHECK_U64(f.m.prod, 3);
	CHECK_U64(g32(&f, R_CONS), 3);
	/* without a race the model's value is published */
	s32(&f, R_PROD, 0x10004);
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	CHECK_U64(g32(&f, R_PROD), 4);
	regframe_stats(f.rf, &st);
	CHECK_EQ(st.cas_lost, 1);
	fx_fini(&f);
}

/* the model's own work is bounded per round; CONS is published as it
 * moves, and the rest is done in later rounds */
TEST(poll_bounded_per_round)
{
	struct fx f;
	struct viommu_regframe_stats st;
	unsigned int rounds = 0;

	REQUIRE(fx_init(&f) == 0);
	f.m.slow = true;
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	s32(&f, R_PROD, 3 * REGFRAME_POLL_BUDGET);
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	CHECK_EQ(f.m.polls, REGFRAME_POLL_BUDGET);
	CHECK_U64(g32(&f, R_CONS), REGFRAME_POLL_BUDGET);
	regframe_stats(f.rf, &st);
	CHECK_EQ(st.poll_capped, 1);
	while (g32(&f, R_CONS) != 3 * REGFRAME_POLL_BUDGET && rounds++ < 10)
		REQUIRE(regframe_round(f.rf, NULL) == 0);
	CHECK_EQ(rounds, 2);
	CHECK_EQ(f.m.nwrites, 1);
	fx_fini(&f);
}

/* a register whose read fails is not published; the others are */
TEST(read_error_skips_register)
{
	struct fx f;

	REQUIRE(fx_init(&f) == 0);
	f.m.read_fail_off = R_ID;
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	CHECK_U64(g32(&f, R_ID), 0);
	CHECK_U64(g32(&f, R_CTRLACK), 0);
	f.m.read_fail_off = -1;
	s32(&f, R_CTRL, 7);
	REQUIRE(regframe_round(f.rf, NULL) == 0);
	CHECK_U64(g32(&f, R_ID), ID_VAL);
	CHECK_U64(g32(&f, R_CTRLACK), 7);
	fx_fini(&f);
}

/* a frame that is not guest RAM (yet): nothing happens, counted; once
 * the VMM's memory arrives, the frame is served */
TEST(absent_frame_then_ram_arrives)
{
	struct fx f;
	struct viommu_regframe_stats st;
	struct viommu_mem_region r = { .gpa = RAM_GPA, .size = RAM_SIZE,
				       .fd = -1 };

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(viommu_mem_set_regions(f.mem, NULL, 0) == 0);
	CHECK_EQ(regframe_round(f.rf, NULL), -EFAULT);
	regframe_stats(f.rf, &st);
	CHECK_EQ(st.absent, 1);
	CHECK_EQ(f.m.after_rounds, 0);
	/* RAM that ends inside the frame is not enough either */
	r.size = FRAME_OFF + 0x10;
	r.hva = f.ram;
	REQUIRE(viommu_mem_set_regions(f.mem, &r, 1) == 0);
	CHECK_EQ(regframe_round(f.rf, NULL), -EFAULT);
	r.size = RAM_SIZE;
	REQUIRE(viommu_mem_set_regions(f.mem, &r, 1) == 0);
	CHECK_EQ(regframe_round(f.rf, NULL), 0);
	CHECK_U64(g32(&f, R_ID), ID_VAL);
	fx_fini(&f);
}

/* the ops table and the configuration are checked at creation */
TEST(create_refuses_bad_tables)
{
	struct fx f;
	struct regframe *rf = NULL;
	struct regframe_reg regs[2] = { { 0, 4, true }, { 8, 8, true } };
	struct regframe_ops ops = fake_ops;
	struct regframe_config c = { .size = sizeof(c), .ops = &ops,
				     .gpa = FRAME_GPA };

	REQUIRE(fx_init(&f) == 0);
	c.model = &f.m;
	c.mem = f.mem;
	ops.regs = regs;
	ops.nregs = 2;
	CHECK_EQ(regframe_create(&c, &rf), 0);
	regframe_destroy(rf);
	regs[1].offset = 4; /* 8-byte register at 4: misaligned */
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);
	regs[1] = (struct regframe_reg){ 0, 4, true }; /* overlap */
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);
	regs[1] = (struct regframe_reg){ 8, 2, true }; /* size 2 */
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);
	regs[1] = (struct regframe_reg){ 0x20, 4, true }; /* past the end */
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);
	regs[1] = (struct regframe_reg){ 8, 8, true };
	c.gpa = FRAME_GPA + 4; /* not 8-byte aligned */
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);
	c.gpa = UINT64_MAX - 0xf; /* wraps */
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);
	c.gpa = FRAME_GPA;
	ops.read = NULL;
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);
	ops.read = fake_read;
	ops.frame_size = REGFRAME_MAX_SIZE + 8;
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);
	ops.frame_size = 0x20;
	c.size = 0;
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);
	fx_fini(&f);
}

/* pairwise_ok() - the table rule stated directly, every pair compared:
 * the reference the sorted check in regframe_create() must agree with. */
static bool pairwise_ok(const struct regframe_reg *r, unsigned int n,
			uint64_t frame_size)
{
	for (unsigned int i = 0; i < n; i++) {
		if ((r[i].size != 4 && r[i].size != 8) ||
		    r[i].offset % r[i].size ||
		    (uint64_t)r[i].offset + r[i].size > frame_size)
			return false;
		for (unsigned int j = 0; j < i; j++)
			if (r[i].offset < r[j].offset + r[j].size &&
			    r[j].offset < r[i].offset + r[i].size)
				return false;
	}
	return true;
}

/* Overlap anywhere in an unordered table is refused, not only between
 * neighbours in the table's order (the check sorts a copy: a register
 * listed first may overlap one listed last), and an unordered table with
 * no overlap is accepted; then 20,000 random tables of 2-12 registers in
 * a 0x40-byte frame get the pairwise rule's answer. */
TEST(create_overlap_in_any_order)
{
	struct fx f;
	struct regframe *rf = NULL;
	struct regframe_reg regs[12] = {
		{ 0x18, 8, true }, { 0, 4, true }, { 8, 8, true },
		{ 4, 4, true },    { 0x10, 4, true }, { 0x14, 4, true },
	};
	struct regframe_ops ops = fake_ops;
	struct regframe_config c = { .size = sizeof(c), .ops = &ops,
				     .gpa = FRAME_GPA };
	unsigned int seed = 12345, accepted = 0, refused = 0;

	REQUIRE(fx_init(&f) == 0);
	c.model = &f.m;
	c.mem = f.mem;
	ops.regs = regs;
	ops.nregs = 6;
	CHECK_EQ(regframe_create(&c, &rf), 0); /* unordered, disjoint */
	regframe_destroy(rf);
	regs[5] = (struct regframe_reg){ 0x1c, 4, true }; /* in the first */
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);
	regs[5] = (struct regframe_reg){ 0x18, 8, true }; /* first, twice */
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);
	regs[5] = (struct regframe_reg){ 0x14, 4, true };
	regs[2] = (struct regframe_reg){ 0x10, 8, true }; /* holds 0x10, 0x14 */
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);
	regs[2] = (struct regframe_reg){ 8, 8, true };
	regs[1] = (struct regframe_reg){ 8, 4, true }; /* low half of a later */
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);
	regs[1] = (struct regframe_reg){ 0xc, 4, true }; /* high half */
	CHECK_EQ(regframe_create(&c, &rf), -EINVAL);

	ops.frame_size = 0x40;
	for (int t = 0; t < 20000; t++) {
		unsigned int n = 2 + rand_r(&seed) % 11;
		bool want;
		int err;

		for (unsigned int i = 0; i < n; i++) {
			regs[i].size = rand_r(&seed) % 8 ? 4 << rand_r(&seed) % 2
							 : 2;
			regs[i].offset = (rand_r(&seed) % 18) * 4;
			regs[i].writable = true;
		}
		ops.nregs = n;
		want = pairwise_ok(regs, n, ops.frame_size);
		err = regframe_create(&c, &rf);
		if (err == 0)
			regframe_destroy(rf);
		rf = NULL;
		if (err != (want ? 0 : -EINVAL)) {
			CHECK_EQ(err, (want ? 0 : -EINVAL));
			break;
		}
		if (want)
			accepted++;
		else
			refused++;
	}
	/* the random tables exercise both answers */
	CHECK(accepted > 100);
	CHECK(refused > 100);
	fx_fini(&f);
}

/* the thread serves the frame until stopped (no timing asserted: it is
 * waited for, boundedly) */
TEST(thread_serves_and_stops)
{
	struct fx f;
	struct timespec t = { 0, 1000000 };
	unsigned int i;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(regframe_start(f.rf) == 0);
	CHECK_EQ(regframe_start(f.rf), -EBUSY);
	for (i = 0; i < 20000 && g32(&f, R_ID) != ID_VAL; i++)
		nanosleep(&t, NULL);
	CHECK_U64(g32(&f, R_ID), ID_VAL);
	s32(&f, R_CTRL, 0x42);
	for (i = 0; i < 20000 && g32(&f, R_CTRLACK) != 0x42; i++)
		nanosleep(&t, NULL);
	CHECK_U64(g32(&f, R_CTRLACK), 0x42);
	regframe_stop(f.rf);
	regframe_stop(f.rf); /* no-op */
	s32(&f, R_CTRL, 0x43);
	nanosleep(&t, NULL);
	CHECK_U64(f.m.ctrl, 0x42); /* stopped: nothing fed */
	REQUIRE(regframe_start(f.rf) == 0); /* restartable */
	fx_fini(&f);                        /* destroy stops it */
}

/* the racing guest of cas_keeps_racing_guest_store, for real: in each of
 * RACE_ROUNDS episodes a thread stores CTRL = V, waits until the model is
 * being fed V, stores V + 2 and waits until the model got V + 2, while the
 * polling
 * thread feeds and publishes (the model clears bit 0, so each publish
 * changes the frame, and takes a moment, which widens the window between
 * a feed and its publish).  A publish that overwrote the unfed V + 2 would
 * lose it for good; the wait is bounded, so a loss fails the test rather
 * than hanging it.  No timing is asserted. */
#define RACE_ROUNDS 300

struct racer {
	struct fx *f;
	int lost;
};

static uint32_t fed_ctrl; /* the last odd value the model got */

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void *race_main(void *arg)
{
	struct racer *r = arg;
	uint32_t v = 1;

	for (unsigned int k = 0; k < RACE_ROUNDS; k++, v += 4) {
		uint64_t t0;

		/* V, and as soon as the model is busy with it, V + 2: the
		 * second store lands between V's feed and its publish */
		s32(r->f, R_CTRL, v);
		t0 = now_ms();
		while (__atomic_load_n(&fed_ctrl, __ATOMIC_SEQ_CST) != v &&
		       now_ms() - t0 < 10000)
			sched_yield();
		s32(r->f, R_CTRL, v + 2);
		t0 = now_ms();
		while (__atomic_load_n(&fed_ctrl, __ATOMIC_SEQ_CST) != v + 2)
			if (now_ms() - t0 > 10000) {
				r->lost++; /* published over: never fed */
				return NULL;
			} else {
				sched_yield();
			}
	}
	return NULL;
}

static int racing_write(void *model, uint64_t off, unsigned int size,
			uint64_t val)
{
	struct fake *m = model;

	if (off == R_CTRL) {
		if (val & 1)
			__atomic_store_n(&fed_ctrl, (uint32_t)val,
					 __ATOMIC_SEQ_CST);
		for (volatile unsigned int spin = 0; spin < 20000; spin++)
			;
		m->ctrl = (uint32_t)val & ~1u; /* the model keeps bit 0 clear */
		return 0;
	}
	return fake_write(model, off, size, val);
}

TEST(concurrent_guest_store_never_lost)
{
	struct fx f;
	struct racer r = { .lost = 0 };
	struct regframe_ops ops = fake_ops;
	struct regframe_config c = { .size = sizeof(c), .ops = &ops,
				     .gpa = FRAME_GPA, .name = "race" };
	pthread_t th;

	REQUIRE(fx_init(&f) == 0);
	regframe_destroy(f.rf);
	ops.write = racing_write;
	c.model = &f.m;
	c.mem = f.mem;
	REQUIRE(regframe_create(&c, &f.rf) == 0);
	fed_ctrl = 0;
	r.f = &f;
	REQUIRE(regframe_start(f.rf) == 0);
	REQUIRE(pthread_create(&th, NULL, race_main, &r) == 0);
	pthread_join(th, NULL);
	regframe_stop(f.rf);
	CHECK_EQ(r.lost, 0);
	CHECK_U64(fed_ctrl, 1 + 4 * (RACE_ROUNDS - 1) + 2);
	fx_fini(&f);
}

TEST_MAIN()
