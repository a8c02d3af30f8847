/*
 * frame_access.h - a reference driver's register accesses aimed at a
 * polled register frame (link/regframe.h) in the fixture's RAM, for the
 * tests that run our reference drivers through a frame as a real guest's
 * driver runs.
 *
 * Stores go to the frame only.  A load first waits until a whole round of
 * the poller has run after the call (so whatever the driver stored before
 * has been fed and the model's answer published), then reads the frame.
 * With a polling thread (regframe_start) the wait watches the round
 * counter, sleeping meanwhile, and gives up after FA_DEADLINE_S seconds
 * (counted in fa->timeouts, which the tests check is 0): the thread may be
 * starved on a loaded machine, but no wait depends on how fast it runs.
 * Without a thread the load runs the round itself.  Either way each of the
 * driver's bounded polling loops sees fresh state on every iteration.
 */
#ifndef TEST_FRAME_ACCESS_H
#define TEST_FRAME_ACCESS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "link/regframe.h"

#define FA_DEADLINE_S 60

struct frame_access {
	uint8_t *frame;          /* host pointer of the frame */
	struct regframe *rf;
	bool threaded;           /* a thread polls (regframe_start) */
	unsigned int timeouts;   /* waits that hit FA_DEADLINE_S */
	unsigned int loads, stores;
};

static inline double fa_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* fa_settle() - wait until @n whole rounds have run after this call. */
static inline void fa_settle(struct frame_access *fa, unsigned int n)
{
	struct timespec nap = { 0, 20000 };
	struct viommu_regframe_stats st;
	uint64_t want;
	double end;

	if (!fa->threaded) {
		for (unsigned int i = 0; i < n; i++)
			regframe_round(fa->rf, NULL);
		return;
	}
	/* round r0 may have begun before the call; r0 + 1 begins after it,
	 * and round r0 + n + 1 begins only once r0 + n has ended */
	regframe_stats(fa->rf, &st);
	want = st.rounds + n + 1;
	end = fa_now() + FA_DEADLINE_S;
	for (;;) {
		regframe_stats(fa->rf, &st);
		if (st.rounds >= want)
			return;
		if (fa_now() > end) {
			fa->timeouts++;
			return;
		}
		nanosleep(&nap, NULL);
	}
}

/* fa_settle_publish() - wait until a publish pass has surely run: state
 * the model changed by itself (a fault) shows within this many rounds */
static inline void fa_settle_publish(struct frame_access *fa)
{
	fa_settle(fa, REGFRAME_REPUBLISH_ROUNDS + 1);
}

static inline uint64_t fa_load(struct frame_access *fa, uint64_t off,
			       unsigned int size)
{
	void *p = fa->frame + off;

	fa_settle(fa, 1);
	fa->loads++;
	return size == 8 ? __atomic_load_n((uint64_t *)p, __ATOMIC_ACQUIRE) :
	       __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE);
}

static inline void fa_store(struct frame_access *fa, uint64_t off,
			    unsigned int size, uint64_t v)
{
	void *p = fa->frame + off;

	fa->stores++;
	if (size == 8)
		__atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
	else
		__atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_RELEASE);
}

#endif /* TEST_FRAME_ACCESS_H */
