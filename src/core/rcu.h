/*
 * rcu.h - read sections and grace periods for the core's lock-free readers
 * (an RCU in the style of sleepable RCU: striped counters, no thread
 * registration, no global state).
 *
 * A reader brackets its accesses with rcu_read_lock()/rcu_read_unlock().
 * A writer that unlinks an object readers may still hold calls
 * rcu_synchronize() before freeing it: that waits until every read section
 * that might have seen the object has ended.
 *
 * How.  Two counter sets (indices 0 and 1), each split over RCU_STRIPES
 * cache lines; a reader increments the counter of the current index on its
 * CPU's stripe and decrements the same counter when it leaves, so counters
 * never go negative.  A grace period is two steps: see the idle index
 * drained and flip the current index (new readers move over), then see the
 * old index drained.  Seeing both indices drained after the unlink makes
 * it correct whatever index a slow reader picked; flipping in between
 * makes it finish while new readers keep arriving.  r->steps counts the
 * steps taken; a grace period that starts after an unlink is complete
 * once steps reaches the next even count after it, plus two.
 *
 * Writers need not wait: rcu_ticket() after unlinking, then rcu_poll()
 * now and then takes whatever steps the counters allow without waiting and
 * says whether the ticket's grace period is over.  rcu_synchronize() and
 * rcu_wait() block until it is.
 *
 * The memory-reclamation rule (for every user of this file): an object
 * reachable by lock-free readers is freed only after it has been made
 * unreachable (no pointer to it left in any published structure) AND an
 * rcu_synchronize() has started after that.  A reader must not dereference
 * a pointer read outside its current read section, and a read section is
 * bounded work: no callbacks, no locks, no sleeping inside.
 *
 * Cost: a reader pays two atomic adds on a line its CPU usually owns (and
 * off x86 one full fence); a grace period costs a scan of 2 x RCU_STRIPES lines
 * (plus waiting for readers in flight), so writers batch their frees.
 */
#ifndef VIOMMU_CORE_RCU_H
#define VIOMMU_CORE_RCU_H

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/util.h"

#define RCU_STRIPES 16u

/*
 * One stripe: 128 bytes, so the counters of two stripes never share a
 * cache line even when the enclosing allocation is only malloc-aligned.
 */
struct rcu_stripe {
	uint64_t cnt[2]; /* readers inside, per index */
	uint64_t pad[14];
};

struct rcu {
	uint32_t idx;         /* index new readers use (0 or 1) */
	pthread_mutex_t lock; /* serialises the steps */
	uint64_t steps;       /* grace-period steps taken (see above) */
	struct rcu_stripe st[RCU_STRIPES];
};

/* rcu_init() / rcu_fini() - set up and tear down @r (no readers left). */
void rcu_init(struct rcu *r);
void rcu_fini(struct rcu *r);

/*
 * rcu_stripe_of() - the counter stripe of the calling thread: its CPU, so
 * that threads on different CPUs write different lines.  Any value is
 * correct (a reader remembers its stripe); only contention depends on it.
 */
static inline uint32_t rcu_stripe_of(void)
{
	int cpu = sched_getcpu();

	return cpu < 0 ? 0 : (uint32_t)cpu & (RCU_STRIPES - 1);
}

/*
 * rcu_read_lock() - enter a read section; returns the token for
 * rcu_read_unlock().  Lock-free, callable from any thread, nests.
 */
static inline uint32_t rcu_read_lock(struct rcu *r)
{
	uint32_t s = rcu_stripe_of();
	/* Relaxed: the index only matters for the writer's progress. */
	uint32_t i = READ_ONCE(r->idx) & 1;

	/*
	 * Barrier (pairs with the SC fence of the writer's grace-period step,
	 * rcu.c __step()): the increment is ordered before every load of the
	 * section, so either the writer's scan sees it, or this section's
	 * loads see every unlink the writer made before its fence
	 * (store-buffering pattern).  On x86 the locked add is itself a full
	 * barrier (and, being seq_cst, keeps the compiler from hoisting the
	 * section's loads above it); elsewhere a full fence follows.
	 */
	__atomic_fetch_add(&r->st[s].cnt[i], 1, __ATOMIC_SEQ_CST);
#if !defined(__x86_64__) && !defined(__i386__)
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
	return s << 1 | i;
}

/* rcu_read_unlock() - leave the read section of @tok. */
static inline void rcu_read_unlock(struct rcu *r, uint32_t tok)
{
	/*
	 * Barrier: release, so every load of the section happens before the
	 * writer's acquire load that sees this decrement, hence before the
	 * free that follows it.
	 */
	__atomic_fetch_sub(&r->st[tok >> 1].cnt[tok & 1], 1,
			   __ATOMIC_RELEASE);
}

/*
 * rcu_ticket() - a ticket for everything unlinked before the call: its
 * grace period is over when rcu_poll() says so.  Never blocks.
 */
uint64_t rcu_ticket(struct rcu *r);

/*
 * rcu_poll() - take the grace-period steps the reader counters allow now,
 * without waiting.  Return: whether every read section that could have
 * seen an object unlinked before @ticket was taken has ended.
 */
bool rcu_poll(struct rcu *r, uint64_t ticket);

/*
 * rcu_quiet() - whether no reader is inside a read section at one instant
 * after the call began: one scan of both indices, no lock, no waiting, no
 * step taken.  When it returns true, every read section that could have
 * seen an object unlinked before the call has ended, so the object may be
 * freed at once (a grace period with nobody to wait for).  False says
 * nothing: use rcu_ticket() and rcu_poll().
 */
bool rcu_quiet(struct rcu *r);

/*
 * rcu_wait() / rcu_synchronize() - block (spin, then yield) until @ticket
 * is over / until every read section begun before the call has ended.
 * Must not be called inside a read section.  Callable with other locks
 * held, as readers take none.
 */
void rcu_wait(struct rcu *r, uint64_t ticket);
void rcu_synchronize(struct rcu *r);

#endif /* VIOMMU_CORE_RCU_H */
