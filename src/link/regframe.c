/*
 * regframe.c - a register frame in shared guest RAM, served by polling
 * (the ideas are in regframe.h).
 *
 * Memory ordering: the guest's stores to the frame and ours race by
 * design.  Every frame access is a single naturally aligned atomic load,
 * store or compare-and-swap of the register's size (the frame's base is
 * 8-byte aligned and every register aligned to its size), so neither side
 * ever sees a torn register.  A feed reads a register with acquire
 * semantics, so the guest data it names (a queue entry written before a
 * doorbell) is visible to the model's reads that follow; a publish stores
 * with release semantics, so what the model wrote to guest memory before
 * (a consumed queue, an event record) is visible to a guest that sees the
 * new index.  The compare-and-swap on a writable register succeeds only if
 * the frame still holds the value we last saw: a guest store in between
 * wins and is fed in the next round.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

#include "link/regframe.h"

/* frame_load() - the register at @p (size 4 or 8), acquire. */
static uint64_t frame_load(void *p, unsigned int size)
{
	if (size == 4)
		return __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE);
	return __atomic_load_n((uint64_t *)p, __ATOMIC_ACQUIRE);
}

/* frame_store() - store @v at @p, release. */
static void frame_store(void *p, unsigned int size, uint64_t v)
{
	if (size == 4)
		__atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_RELEASE);
	else
		__atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
}

/* frame_cas() - replace @old with @v at @p; false if the frame moved on. */
static bool frame_cas(void *p, unsigned int size, uint64_t old, uint64_t v)
{
	if (size == 4) {
		uint32_t o = (uint32_t)old;

		return __atomic_compare_exchange_n((uint32_t *)p, &o,
						   (uint32_t)v, false,
						   __ATOMIC_ACQ_REL,
						   __ATOMIC_ACQUIRE);
	}
	return __atomic_compare_exchange_n((uint64_t *)p, &old, v, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* size_mask() - the bits a register of @size bytes holds. */
static uint64_t size_mask(unsigned int size)
{
	return size == 8 ? UINT64_MAX : 0xffffffffull;
}

/* reg_key() - a register as one sortable key: offset above, size below. */
static uint64_t reg_key(const struct regframe_reg *r)
{
	return (uint64_t)r->offset << 8 | r->size;
}

static int cmp_key(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * check_ops() - every register aligned, of size 4 or 8, inside the frame,
 * and no two overlapping.  0 or -EINVAL.
 *
 * Overlap is found on a sorted copy of the table (on the stack: at most
 * REGFRAME_MAX_REGS keys): sorted by offset, a register that overlaps any
 * later one overlaps the next one, so one pass over neighbours sees every
 * pair - O(n log n), where comparing every pair made creating a frame over
 * the VT-d model's 283 registers cost 40,000 comparisons.
 */
static int check_ops(const struct regframe_ops *ops)
{
	uint64_t keys[REGFRAME_MAX_REGS];
	unsigned int i;

	if (!ops->regs || !ops->nregs || ops->nregs > REGFRAME_MAX_REGS ||
	    !ops->read || !ops->write || !ops->frame_size ||
	    ops->frame_size > REGFRAME_MAX_SIZE)
		return -EINVAL;
	for (i = 0; i < ops->nregs; i++) {
		const struct regframe_reg *r = &ops->regs[i];

		if ((r->size != 4 && r->size != 8) || r->offset % r->size ||
		    (uint64_t)r->offset + r->size > ops->frame_size)
			return -EINVAL;
		keys[i] = reg_key(r);
	}
	qsort(keys, ops->nregs, sizeof(keys[0]), cmp_key);
	for (i = 1; i < ops->nregs; i++)
		if ((keys[i] >> 8) < (keys[i - 1] >> 8) + (keys[i - 1] & 0xff))
			return -EINVAL;
	return 0;
}

int regframe_create(const struct regframe_config *cfg, struct regframe **out)
{
	struct regframe *rf;
	uint64_t last;

	if (!cfg || !out || cfg->size < sizeof(*cfg) || !cfg->ops ||
	    !cfg->model || !cfg->mem || cfg->gpa % 8 || check_ops(cfg->ops) ||
	    !range_last(cfg->gpa, cfg->ops->frame_size, &last))
		return -EINVAL;
	rf = xzalloc(NULL, sizeof(*rf));
	if (!rf)
		return -ENOMEM;
	rf->last = xzalloc(NULL, cfg->ops->nregs * sizeof(*rf->last));
	if (!rf->last) {
		xfree(NULL, rf);
		return -ENOMEM;
	}
	rf->ops = cfg->ops;
	rf->model = cfg->model;
	rf->mem = cfg->mem;
	rf->gpa = cfg->gpa;
	rf->fixed_nap = cfg->max_idle_us != 0;
	rf->max_idle_us = cfg->max_idle_us ? MIN(cfg->max_idle_us,
						 REGFRAME_MAX_IDLE_US) :
			  REGFRAME_MAX_IDLE_US;
	rf->idle_us = cfg->idle_us ? cfg->idle_us : REGFRAME_IDLE_US;
	if (rf->idle_us > rf->max_idle_us)
		rf->idle_us = rf->max_idle_us;
	rf->log = cfg->log;
	rf->after_round = cfg->after_round;
	rf->opaque = cfg->opaque;
	snprintf(rf->name, sizeof(rf->name), "%s",
		 cfg->name ? cfg->name : "regframe");
	if (trace_set(&rf->tr, &rf->log, cfg->trace)) {
		regframe_destroy(rf);
		return -EINVAL;
	}
	*out = rf;
	return 0;
}

void regframe_destroy(struct regframe *rf)
{
	if (!rf)
		return;
	regframe_stop(rf);
	xfree(NULL, rf->last);
	xfree(NULL, rf);
}

/*
 * prime() - the first round that finds the frame: adopt what it holds as
 * seen (nothing of it is fed: it is RAM content from before the guest
 * driver, not a guest write), so the publish that follows puts the
 * model's reset values in.
 */
static void prime(struct regframe *rf, uint8_t *frame)
{
	for (unsigned int i = 0; i < rf->ops->nregs; i++) {
		const struct regframe_reg *r = &rf->ops->regs[i];

		rf->last[i] = frame_load(frame + r->offset, r->size);
	}
	rf->primed = true;
}

/* feed() - hand each changed writable register to the model, in order. */
static unsigned int feed(struct regframe *rf, uint8_t *frame)
{
	unsigned int i, fed = 0;

	for (i = 0; i < rf->ops->nregs; i++) {
		const struct regframe_reg *r = &rf->ops->regs[i];
		uint64_t v;
		int err;

		if (!r->writable)
			continue;
		v = frame_load(frame + r->offset, r->size);
		if (v == rf->last[i])
			continue;
		rf->last[i] = v;
		fed++;
		ATOMIC_INC(rf->st.writes);
		err = rf->ops->write(rf->model, r->offset, r->size, v);
		trace_frame_write(&rf->tr, r->offset, r->size, v, err);
		if (err) {
			ATOMIC_INC(rf->st.write_errors);
			rl_warn(&rf->rl, &rf->log, "%s: frame write of %#llx "
				"at %#x refused: %d", rf->name,
				(unsigned long long)v, r->offset, err);
		}
	}
	return fed;
}

/*
 * poll_model() - the model's own work, bounded; the calls that did work.
 * A call returning 1 did work and has more, 2 did work and is done, 0 did
 * nothing, <0 failed.
 */
static unsigned int poll_model(struct regframe *rf)
{
	unsigned int n;

	if (!rf->ops->poll)
		return 0;
	for (n = 0; n < REGFRAME_POLL_BUDGET; n++) {
		int r = rf->ops->poll(rf->model);

		if (r <= 0)
			return n;
		if (r != 1)
			return n + 1;
	}
	ATOMIC_INC(rf->st.poll_capped);
	return n;
}

/* publish() - every register's model value into the frame (see top). */
static void publish(struct regframe *rf, uint8_t *frame)
{
	unsigned int i;

	ATOMIC_INC(rf->st.publishes);
	for (i = 0; i < rf->ops->nregs; i++) {
		const struct regframe_reg *r = &rf->ops->regs[i];
		void *p = frame + r->offset;
		uint64_t v;

		if (rf->ops->read(rf->model, r->offset, r->size, &v))
			continue;
		v &= size_mask(r->size);
		if (!r->writable) {
			frame_store(p, r->size, v);
			rf->last[i] = v;
			continue;
		}
		if (v == rf->last[i])
			continue;
		if (frame_cas(p, r->size, rf->last[i], v))
			rf->last[i] = v;
		else
			ATOMIC_INC(rf->st.cas_lost);
	}
	rf->quiet = 0;
}

int regframe_round(struct regframe *rf, bool *changed)
{
	unsigned int token, fed, polled;
	size_t contig = 0;
	void *hva = NULL;
	bool moved = false, pub;
	int err;

	ATOMIC_INC(rf->st.rounds);
	token = viommu_mem_read_lock(rf->mem);
	err = viommu_mem_ptr(rf->mem, rf->gpa, rf->ops->frame_size,
			     VIOMMU_READ | VIOMMU_WRITE, &hva, &contig);
	if (err || contig < rf->ops->frame_size || (uintptr_t)hva % 8) {
		viommu_mem_read_unlock(rf->mem, token);
		ATOMIC_INC(rf->st.absent);
		if (changed)
			*changed = false;
		return -EFAULT;
	}
	if (!rf->primed) {
		prime(rf, hva);
		moved = true;
	}
	fed = feed(rf, hva);
	polled = poll_model(rf);
	if (polled)
		ATOMIC_ADD(rf->st.polls, polled);
	pub = moved || fed || polled ||
	      ++rf->quiet >= REGFRAME_REPUBLISH_ROUNDS;
	if (pub)
		publish(rf, hva);
	viommu_mem_read_unlock(rf->mem, token);
	moved = moved || fed || polled;
	if (moved)
		trace_frame_round(&rf->tr, fed, polled, pub);
	if (rf->after_round)
		rf->after_round(rf->opaque, moved);
	if (changed)
		*changed = moved;
	return 0;
}

/* nap() - sleep @us microseconds. */
static void nap(unsigned int us)
{
	struct timespec t = { .tv_sec = us / 1000000,
			      .tv_nsec = (long)(us % 1000000) * 1000 };

	nanosleep(&t, NULL);
}

/*
 * thread_main() - rounds until stopped; after an idle round nap, doubling
 * the nap up to rf->max_idle_us while the guest stays quiet.
 */
static void *thread_main(void *arg)
{
	struct regframe *rf = arg;
	unsigned int idle = rf->idle_us;

	/* A nap asked for explicitly is meant: no 50 us of timer slack */
	if (rf->fixed_nap)
		prctl(PR_SET_TIMERSLACK, 1000ul, 0ul, 0ul, 0ul);
	while (!__atomic_load_n(&rf->stop, __ATOMIC_ACQUIRE)) {
		bool changed = false;

		if (regframe_round(rf, &changed) == 0 && changed) {
			idle = rf->idle_us;
			continue;
		}
		nap(idle);
		if (idle < rf->max_idle_us)
			idle = MIN(idle * 2, rf->max_idle_us);
	}
	return NULL;
}

int regframe_start(struct regframe *rf)
{
	int err;

	if (!rf)
		return -EINVAL;
	if (rf->running)
		return -EBUSY;
	__atomic_store_n(&rf->stop, 0, __ATOMIC_RELEASE);
	err = pthread_create(&rf->thread, NULL, thread_main, rf);
	if (err)
		return -err;
	rf->running = true;
	return 0;
}

void regframe_stop(struct regframe *rf)
{
	if (!rf || !rf->running)
		return;
	__atomic_store_n(&rf->stop, 1, __ATOMIC_RELEASE);
	pthread_join(rf->thread, NULL);
	rf->running = false;
}

void regframe_stats(const struct regframe *rf, struct viommu_regframe_stats *st)
{
	st->rounds = __atomic_load_n(&rf->st.rounds, __ATOMIC_RELAXED);
	st->absent = __atomic_load_n(&rf->st.absent, __ATOMIC_RELAXED);
	st->writes = __atomic_load_n(&rf->st.writes, __ATOMIC_RELAXED);
	st->write_errors = __atomic_load_n(&rf->st.write_errors,
					   __ATOMIC_RELAXED);
	st->publishes = __atomic_load_n(&rf->st.publishes, __ATOMIC_RELAXED);
	st->cas_lost = __atomic_load_n(&rf->st.cas_lost, __ATOMIC_RELAXED);
	st->polls = __atomic_load_n(&rf->st.polls, __ATOMIC_RELAXED);
	st->poll_capped = __atomic_load_n(&rf->st.poll_capped,
					  __ATOMIC_RELAXED);
}
