/*
 * fuzz_irq.h - an interrupt to sleep on, for the fuzz harnesses that wait
 * for a device's own threads (fuzz_vdev.c, fuzz_net_socket.c): the
 * device's interrupt callback writes an eventfd, and a waiting harness
 * yields for its first few empty checks, then sleeps on that eventfd for
 * a bounded time (a completion may come without an interrupt: EVENT_IDX,
 * a suppressed ring, a dropped frame; so the caller looks again after
 * each wait).  Spinning on sched_yield() alone took the CPU from the
 * device's threads and from the other fuzz lane.  One eventfd per
 * program, opened once.
 */
#ifndef VIOMMU_FUZZ_IRQ_H
#define VIOMMU_FUZZ_IRQ_H

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static int fuzz_irq_fd = -1;

/* fuzz_irq_cb() - a device's interrupt callback: wake the waiter. */
static inline void fuzz_irq_cb(void *opaque, uint8_t isr, uint16_t q)
{
	uint64_t one = 1;

	(void)opaque;
	(void)isr;
	(void)q;
	(void)!write(fuzz_irq_fd, &one, sizeof(one));
}

/* fuzz_irq_open() - the eventfd, once.  Return: 0; -errno. */
static inline int fuzz_irq_open(void)
{
	if (fuzz_irq_fd < 0 &&
	    (fuzz_irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return -errno;
	return 0;
}

/*
 * fuzz_irq_idle() - the @n-th empty check in a row: below @spins (or
 * without the eventfd) yield, else sleep until an interrupt or @max_ns.
 */
static inline void fuzz_irq_idle(unsigned int n, unsigned int spins,
				 long max_ns)
{
	struct pollfd pf = { .fd = fuzz_irq_fd, .events = POLLIN };
	struct timespec ts = { max_ns / 1000000000, max_ns % 1000000000 };
	uint64_t v;

	if (n < spins || fuzz_irq_fd < 0) {
		sched_yield();
		return;
	}
	if (ppoll(&pf, 1, &ts, NULL) == 1)
		(void)!read(fuzz_irq_fd, &v, sizeof(v));
}

#endif /* VIOMMU_FUZZ_IRQ_H */
