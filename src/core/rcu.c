/*
 * rcu.c - grace periods for the core's lock-free readers (see rcu.h for
 * the scheme and the memory-reclamation rule).
 */
#include "rcu.h"

#include <string.h>

#define SPINS 64

void rcu_init(struct rcu *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
}

void rcu_fini(struct rcu *r)
{
	pthread_mutex_destroy(&r->lock);
}

/*
 * wait_drained() - wait until no reader holds index @i on any stripe.
 * Barrier: acquire loads, pairing with rcu_read_unlock()'s release, so the
 * drained readers' loads happen before whatever the caller frees next.
 */
static void wait_drained(struct rcu *r, uint32_t i)
{
	for (uint32_t s = 0; s < RCU_STRIPES; s++) {
		for (uint32_t n = 0;
		     __atomic_load_n(&r->st[s].cnt[i], __ATOMIC_ACQUIRE); n++)
			if (n >= SPINS)
				sched_yield();
	}
}

void rcu_synchronize(struct rcu *r)
{
	uint32_t i;

	pthread_mutex_lock(&r->lock);
	/*
	 * Barrier (pairs with the fence in rcu_read_lock()): the caller's
	 * unlinks are ordered before the counter scans below.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	i = READ_ONCE(r->idx) & 1;
	/* Readers that picked the idle index before an earlier flip. */
	wait_drained(r, i ^ 1);
	/* New readers now use the drained index; old ones drain below. */
	WRITE_ONCE(r->idx, i ^ 1);
	wait_drained(r, i);
	WRITE_ONCE(r->gps, r->gps + 1);
	pthread_mutex_unlock(&r->lock);
}
