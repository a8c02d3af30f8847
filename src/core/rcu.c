/*
 * rcu.c - grace periods for the core's lock-free readers (see rcu.h for
 * the scheme and the memory-reclamation rule).
 */
#include "core/rcu.h"

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
 * drained() - whether no reader holds index @i on any stripe (one pass, no
 * waiting).  Barrier: acquire loads, pairing with rcu_read_unlock()'s
 * release, so the drained readers' loads happen before whatever the
 * caller frees next.
 */
static bool drained(struct rcu *r, uint32_t i)
{
	for (uint32_t s = 0; s < RCU_STRIPES; s++)
		if (__atomic_load_n(&r->st[s].cnt[i], __ATOMIC_ACQUIRE))
			return false;
	return true;
}

/* __step() - take one grace-period step if the counters allow (r->lock). */
static bool __step(struct rcu *r)
{
	uint32_t i = r->idx & 1;

	/*
	 * Barrier (pairs with the fence in rcu_read_lock()): every unlink
	 * made before the ticket (the ticket was taken under r->lock, which
	 * we hold now) is ordered before the counter scan below.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(r->steps & 1)) {
		/* Readers that picked the idle index before an earlier flip. */
		if (!drained(r, i ^ 1))
			return false;
		/* New readers now use the drained index. */
		WRITE_ONCE(r->idx, i ^ 1);
	} else if (!drained(r, i ^ 1)) {
		/* i ^ 1 is the index readers used before the flip. */
		return false;
	}
	WRITE_ONCE(r->steps, r->steps + 1);
	return true;
}

uint64_t rcu_ticket(struct rcu *r)
{
	uint64_t t;

	pthread_mutex_lock(&r->lock);
	/*
	 * Both steps of a grace period must start after now: from an even
	 * count the next step is a start, from an odd one the step after.
	 */
	t = r->steps + 2 + (r->steps & 1);
	pthread_mutex_unlock(&r->lock);
	return t;
}

bool rcu_poll(struct rcu *r, uint64_t ticket)
{
	bool done;

	pthread_mutex_lock(&r->lock);
	while (r->steps < ticket && __step(r))
		;
	done = r->steps >= ticket;
	pthread_mutex_unlock(&r->lock);
	return done;
}

bool rcu_quiet(struct rcu *r)
{
	/*
	 * Barrier (pairs with the fence in rcu_read_lock(), as in __step()):
	 * the caller's unlinks are ordered before the scan, so a reader whose
	 * increment the scan missed entered after them and cannot find the
	 * unlinked objects; a counter read as zero has every section counted
	 * in it ended (the acquire loads order their loads before the free).
	 */
	uint64_t any = 0;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* Every counter, without an early exit: nearly always all zero. */
	for (uint32_t s = 0; s < RCU_STRIPES; s++)
		any |= __atomic_load_n(&r->st[s].cnt[0], __ATOMIC_ACQUIRE) |
		       __atomic_load_n(&r->st[s].cnt[1], __ATOMIC_ACQUIRE);
	return !any;
}

void rcu_wait(struct rcu *r, uint64_t ticket)
{
	for (uint32_t n = 0; !rcu_poll(r, ticket); n++)
		if (n >= SPINS)
			sched_yield();
}

void rcu_synchronize(struct rcu *r)
{
	rcu_wait(r, rcu_ticket(r));
}
