/*
 * test_vfio_user_irq.c - interrupts over a vfio-user link
 * (src/link/vfio_user.c): SET_IRQS with its data and action flags, INTx
 * automasked after each delivery until the client's UNMASK (a message or
 * the unmask eventfd), MSI-X vectors to their trigger eventfds with
 * MASK/UNMASK, and the refusals.  The fixture is in vfu_fixture.h.
 *
 * Interrupts are raised on the PCI functions directly (pci_set_intx(),
 * pci_msix_notify()) and observed as eventfd counters; a refusal changes
 * neither the mask nor the eventfds in force.
 *
 * The unmask eventfd is the client's: it may make it blocking and take a
 * signal back behind the link's back.  link_eventfd_read() (link.h) is
 * tested on its own, on a thread that must return within 2 s, and then
 * through links in thread and poll mode that a client hammers with
 * signal-and-take rounds: those tests race on purpose, and only a link
 * that can block fails them (the old read() did so every time we ran
 * them, within about 1000 rounds; each runs up to 20000 rounds or 2 s).
 */
#include "vfu_fixture.h"
#include "link/link.h"

#include <sys/uio.h>

/* ---- INTx ----------------------------------------------------------- */

TEST(intx_automasked_until_unmask)
{
	/* DESIGN.md §5b: UNMASK for INTx after the guest's EOI */
	struct pci_func *f;
	uint8_t sel;
	struct fx x;
	int efd;

	REQUIRE(fx_init(&x, 0) == 0);
	f = x.f[L_DMA];
	efd = new_efd();
	REQUIRE(efd >= 0);
	REQUIRE(intx_trigger(&x, efd) == 0);
	CHECK_U64(read_counter(efd), 0); /* the line is low */
	pci_set_intx(f, true);
	CHECK_U64(read_counter(efd), 1);
	/* automasked: a new edge is not delivered */
	pci_set_intx(f, false);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(efd), 0);
	/* UNMASK with the line still high re-triggers (and masks again) */
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_UNMASK, VFU_IRQ_INTX, 0,
			  1), 0);
	CHECK_U64(read_counter(efd), 1);
	/* UNMASK after the line went low: nothing, but unmasked */
	pci_set_intx(f, false);
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_UNMASK, VFU_IRQ_INTX, 0,
			  1), 0);
	CHECK_U64(read_counter(efd), 0);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(efd), 1);
	/* BOOL data: only selected entries act */
	pci_set_intx(f, false);
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_UNMASK, VFU_IRQ_INTX, 0,
			  1), 0);
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_MASK, VFU_IRQ_INTX, 0, 1),
		 0);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(efd), 0); /* masked by the client */
	sel = 0;
	CHECK_EQ(set_irqs(&x, L_DMA, VFU_IRQ_DATA_BOOL | VFU_IRQ_ACTION_UNMASK,
			  VFU_IRQ_INTX, 0, 1, &sel, 1, NULL, 0), 0);
	CHECK_U64(read_counter(efd), 0);
	sel = 1;
	CHECK_EQ(set_irqs(&x, L_DMA, VFU_IRQ_DATA_BOOL | VFU_IRQ_ACTION_UNMASK,
			  VFU_IRQ_INTX, 0, 1, &sel, 1, NULL, 0), 0);
	CHECK_U64(read_counter(efd), 1);
	/* The engine raising its own interrupt drives the same line. */
	pci_set_intx(f, false);
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_UNMASK, VFU_IRQ_INTX, 0,
			  1), 0);
	CHECK_EQ(wr(&x, L_DMA, 0, DMAE_IRQ_RAISE, 1, 4), 0);
	CHECK_U64(read_counter(efd), 1);
	CHECK_U64(stats(&x, L_DMA).unmasks, 5);
	CHECK_U64(stats(&x, L_DMA).irq_signals, 5);
	close(efd);
	CHECK(fx_fini(&x));
}

/* wait_unmasks() - wait until link @l has served @n unmasks. */
static bool wait_unmasks(struct fx *x, unsigned int l, uint64_t n)
{
	for (int i = 0; i < WAIT_MS; i++) {
		if (stats(x, l).unmasks >= n)
			return true;
		usleep(1000);
	}
	return false;
}

TEST(intx_unmask_eventfd_retriggers)
{
	struct pci_func *f;
	const uint64_t one = 1;
	struct fx x;
	int t, u;

	REQUIRE(fx_init(&x, 0) == 0);
	f = x.f[L_DMA];
	t = new_efd();
	u = new_efd();
	REQUIRE(t >= 0 && u >= 0);
	REQUIRE(set_irqs(&x, L_DMA, VFU_IRQ_DATA_EVENTFD |
			 VFU_IRQ_ACTION_UNMASK, VFU_IRQ_INTX, 0, 1, NULL, 0,
			 &u, 1) == 0);
	REQUIRE(intx_trigger(&x, t) == 0);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(t), 1);
	/* The guest's EOI arrives through the unmask eventfd. */
	REQUIRE(write(u, &one, 8) == 8);
	CHECK(wait_readable(t, WAIT_MS));
	CHECK_U64(read_counter(t), 1);
	CHECK_U64(stats(&x, L_DMA).unmasks, 1);
	/* Line low at the EOI: nothing more. */
	pci_set_intx(f, false);
	REQUIRE(write(u, &one, 8) == 8);
	CHECK(wait_unmasks(&x, L_DMA, 2));
	CHECK(alive(&x, L_DMA)); /* the unmask has finished */
	CHECK_U64(read_counter(t), 0);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(t), 1);
	/* Disabling INTx drops both eventfds. */
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_INTX, 0,
			  0), 0);
	REQUIRE(write(u, &one, 8) == 8);
	CHECK(alive(&x, L_DMA));
	pci_set_intx(f, false);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(t), 0);
	CHECK_U64(stats(&x, L_DMA).unmasks, 2);
	close(t);
	close(u);
	CHECK(fx_fini(&x));
}

/*
 * Regression: disabling INTx (DATA_NONE|TRIGGER, count 0) used to leave
 * the automask set, so after QEMU re-enabled INTx (a guest reset, MSI-X
 * turned off again) the line never fired: without KVM's resampler QEMU
 * sends UNMASK only after an interrupt it delivered.  As in VFIO, INTx
 * enabled afresh starts unmasked.
 */
TEST(intx_enabled_afresh_starts_unmasked)
{
	struct pci_func *f;
	struct fx x;
	int t, t2;

	REQUIRE(fx_init(&x, 0) == 0);
	f = x.f[L_DMA];
	t = new_efd();
	t2 = new_efd();
	REQUIRE(t >= 0 && t2 >= 0);
	REQUIRE(intx_trigger(&x, t) == 0);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(t), 1); /* delivered, now automasked */
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_INTX, 0,
			  0), 0);
	pci_set_intx(f, false);
	/* enabled again: a new interrupt is delivered */
	REQUIRE(intx_trigger(&x, t2) == 0);
	CHECK_U64(read_counter(t2), 0);
	pci_set_intx(f, true);
	CHECK_U64(read_counter(t2), 1);
	CHECK_U64(read_counter(t), 0);
	/* enabled with the line already high: delivered at once */
	CHECK_EQ(irq_none(&x, L_DMA, VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_INTX, 0,
			  0), 0);
	REQUIRE(intx_trigger(&x, t) == 0);
	CHECK_U64(read_counter(t), 1);
	/* replacing the eventfd alone keeps the mask (VFIO does too) */
	REQUIRE(intx_trigger(&x, t2) == 0);
	CHECK_U64(read_counter(t2), 0);
	close(t);
	close(t2);
	CHECK(fx_fini(&x));
}

/* ---- MSI-X and SET_IRQS refusals ------------------------------------ */

/* only_vector() - eventfd @v (of @n) fired once and no other did. */
static bool only_vector(const int *efd, unsigned int n, int v)
{
	bool ok = true;

	for (unsigned int i = 0; i < n; i++)
		ok &= read_counter(efd[i]) == ((int)i == v ? 1u : 0u);
	return ok;
}

/* msix_setup() - MSI-X on, a trigger eventfd for each of *@n vectors. */
static int msix_setup(struct fx *x, int *efd, unsigned int *n)
{
	*n = x->f[L_VP]->msix_nvec;
	if (*n < 2 || *n > 8 || msix_enable(x, true))
		return -1;
	for (unsigned int i = 0; i < *n; i++)
		if ((efd[i] = new_efd()) < 0)
			return -1;
	return set_irqs(x, L_VP, VFU_IRQ_DATA_EVENTFD |
			VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_MSIX, 0, *n, NULL, 0,
			efd, *n);
}

TEST(msix_vectors_to_their_eventfds)
{
	uint8_t sel[8] = { 1, 0, 1, 0, 1, 0, 1, 0 }, all[8];
	struct pci_func *f;
	unsigned int n;
	int efd[8];
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	f = x.f[L_VP];
	REQUIRE(msix_setup(&x, efd, &n) == 0);
	CHECK(pci_msix_enabled(f));
	CHECK_U64(rd(&x, L_VP, VFU_REGION_CONFIG, f->msix_cap + PCI_MSIX_FLAGS,
		     2) & PCI_MSIX_FLAGS_ENABLE, PCI_MSIX_FLAGS_ENABLE);
	for (unsigned int v = 0; v < n; v++) {
		CHECK_EQ(pci_msix_notify(f, v), 0);
		CHECK(only_vector(efd, n, (int)v));
	}
	/* MASK one vector: held pending until UNMASK. */
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_MASK, VFU_IRQ_MSIX, 1, 1),
		 0);
	CHECK_EQ(pci_msix_notify(f, 1), 0);
	CHECK(only_vector(efd, n, -1));
	CHECK_EQ(pci_msix_notify(f, 0), 0);
	CHECK(only_vector(efd, n, 0));
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_UNMASK, VFU_IRQ_MSIX, 1, 1),
		 0);
	CHECK(only_vector(efd, n, 1));
	/* BOOL: mask the even vectors only */
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_BOOL | VFU_IRQ_ACTION_MASK,
			  VFU_IRQ_MSIX, 0, n, sel, n, NULL, 0), 0);
	for (unsigned int v = 0; v < n; v++) {
		CHECK_EQ(pci_msix_notify(f, v), 0);
		CHECK(only_vector(efd, n, v % 2 ? (int)v : -1));
	}
	memset(all, 1, sizeof(all));
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_BOOL | VFU_IRQ_ACTION_UNMASK,
			  VFU_IRQ_MSIX, 0, n, all, n, NULL, 0), 0);
	for (unsigned int v = 0; v < n; v++)
		CHECK_U64(read_counter(efd[v]), v % 2 ? 0 : 1);
	/* TRIGGER with DATA_NONE: the client's own loopback */
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_MSIX, n - 1,
			  1), 0);
	CHECK(only_vector(efd, n, (int)n - 1));
	/* DATA_NONE TRIGGER count 0: every vector disabled */
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_MSIX, 0,
			  0), 0);
	for (unsigned int v = 0; v < n; v++)
		CHECK_EQ(pci_msix_notify(f, v), 0);
	CHECK(only_vector(efd, n, -1));
	/* MSI-X off: nothing to deliver */
	CHECK_EQ(msix_enable(&x, false), 0);
	CHECK_EQ(pci_msix_notify(f, 0), -ENODEV);
	for (unsigned int v = 0; v < n; v++)
		close(efd[v]);
	CHECK(fx_fini(&x));
}

TEST(set_irqs_refusals_change_nothing)
{
	/* DESIGN.md §8: link messages with wrong sizes or fds */
	const uint32_t efd_trig = VFU_IRQ_DATA_EVENTFD | VFU_IRQ_ACTION_TRIGGER;
	uint8_t sel[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	int efd[8], nu[8], pp[2], base, e;
	uint8_t p[VFU_SET_IRQS_SIZE] = { 0 };
	struct pci_func *f;
	unsigned int n, i;
	struct fx x;

	REQUIRE(fx_init(&x, 0) == 0);
	f = x.f[L_VP];
	REQUIRE(msix_setup(&x, efd, &n) == 0);
	for (i = 0; i < n; i++)
		REQUIRE((nu[i] = new_efd()) >= 0);
	REQUIRE(pipe(pp) == 0);
	base = fds_settled(&x, L_VP);
	/* fd count differs from count; not an eventfd */
	CHECK_EQ(set_irqs(&x, L_VP, efd_trig, VFU_IRQ_MSIX, 0, n, NULL, 0, nu,
			  n - 1), -EINVAL);
	CHECK_EQ(set_irqs(&x, L_VP, efd_trig, VFU_IRQ_MSIX, 0, 1, NULL, 0, nu,
			  2), -EINVAL);
	CHECK_EQ(set_irqs(&x, L_VP, efd_trig, VFU_IRQ_MSIX, 0, 1, NULL, 0, pp,
			  1), -EINVAL);
	/* not exactly one data and one action flag; unknown bits */
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_NONE | VFU_IRQ_DATA_BOOL |
			  VFU_IRQ_ACTION_MASK, VFU_IRQ_MSIX, 0, 1, sel, 1,
			  NULL, 0), -EINVAL);
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_NONE | VFU_IRQ_ACTION_MASK |
			  VFU_IRQ_ACTION_UNMASK, VFU_IRQ_MSIX, 0, 1, NULL, 0,
			  NULL, 0), -EINVAL);
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_NONE, VFU_IRQ_MSIX, 0, 1,
			  NULL, 0, NULL, 0), -EINVAL);
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_NONE | VFU_IRQ_ACTION_MASK |
			  0x40, VFU_IRQ_MSIX, 0, 1, NULL, 0, NULL, 0), -EINVAL);
	/* past the vectors, or wrapping */
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_MASK, VFU_IRQ_MSIX, n - 1,
			  2), -EINVAL);
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_MASK, VFU_IRQ_MSIX, n, 1),
		 -EINVAL);
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_MASK, VFU_IRQ_MSIX,
			  UINT32_MAX, 2), -EINVAL);
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_MASK, VFU_IRQ_MSI, 0, 1),
		 -EINVAL);
	CHECK_EQ(irq_none(&x, L_VP, VFU_IRQ_ACTION_MASK, 5, 0, 0), -EINVAL);
	/* BOOL data shorter than count; fds without DATA_EVENTFD */
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_BOOL | VFU_IRQ_ACTION_MASK,
			  VFU_IRQ_MSIX, 0, n, sel, n - 1, NULL, 0), -EINVAL);
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_NONE | VFU_IRQ_ACTION_MASK,
			  VFU_IRQ_MSIX, 0, 1, NULL, 0, nu, 1), -EINVAL);
	/* mask eventfds are not supported */
	CHECK_EQ(set_irqs(&x, L_VP, VFU_IRQ_DATA_EVENTFD | VFU_IRQ_ACTION_MASK,
			  VFU_IRQ_INTX, 0, 1, NULL, 0, nu, 1), -ENOTSUP);
	/* argsz below 20 */
	put32(p, 12);
	put32(p + 4, VFU_IRQ_DATA_NONE | VFU_IRQ_ACTION_MASK);
	put32(p + 8, VFU_IRQ_MSIX);
	put32(p + 16, 1);
	CHECK_EQ(call(&x, L_VP, VFU_SET_IRQS, p, sizeof(p), NULL, 0, NULL),
		 -EINVAL);
	/* Nothing changed: no mask set, the same eventfds fire. */
	CHECK_EQ(fds_settled(&x, L_VP), base);
	for (unsigned int v = 0; v < n; v++) {
		CHECK_EQ(pci_msix_notify(f, v), 0);
		CHECK(only_vector(efd, n, (int)v));
		CHECK_U64(read_counter(nu[v]), 0);
	}
	CHECK_U64(stats(&x, L_VP).errors, 16);
	e = cap_get(&cap.closed_lines);
	CHECK_EQ(e, 0);
	for (i = 0; i < n; i++) {
		close(efd[i]);
		close(nu[i]);
	}
	close(pp[0]);
	close(pp[1]);
	CHECK(fx_fini(&x));
}

/* ---- the unmask eventfd, read without blocking ---------------------- */

/*
 * struct efd_read - one link_eventfd_read() on a thread of its own, so
 * that a read that blocks is a failure, not a hung test program.
 */
struct efd_read {
	int fd;
	int err;
	uint64_t val;
	bool done;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

/* efd_read_thread() - read, then say so. */
static void *efd_read_thread(void *arg)
{
	struct efd_read *r = arg;
	uint64_t v = 0;
	int err = link_eventfd_read(r->fd, &v);

	pthread_mutex_lock(&r->lock);
	r->err = err;
	r->val = v;
	r->done = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* efd_read_wait() - whether the read of @r returned within @ms. */
static bool efd_read_wait(struct efd_read *r, int ms)
{
	struct timespec ts = deadline_in(ms);
	bool done;

	pthread_mutex_lock(&r->lock);
	while (!r->done)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &ts))
			break;
	done = r->done;
	pthread_mutex_unlock(&r->lock);
	return done;
}

/*
 * read_bounded() - link_eventfd_read(@fd) on a thread, allowed 2 s.
 * Return: whether it returned in time; its result in *@err and *@val.  A
 * read still blocked after 2 s is released by writing 1 to @fd (an
 * eventfd) and then joined; one that cannot be released is left behind
 * with its state (the test has failed).
 */
static bool read_bounded(int fd, int *err, uint64_t *val)
{
	const uint64_t one = 1;
	struct efd_read *r = calloc(1, sizeof(*r));
	bool in_time;

	*err = 1;
	*val = 0;
	if (!r)
		return false;
	r->fd = fd;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	if (pthread_create(&r->thread, NULL, efd_read_thread, r)) {
		free(r);
		return false;
	}
	in_time = efd_read_wait(r, 2000);
	if (!in_time) {
		printf("#   link_eventfd_read(%d) blocked for 2 s\n", fd);
		if (write(fd, &one, sizeof(one)) != (ssize_t)sizeof(one) ||
		    !efd_read_wait(r, WAIT_MS))
			return false;
	}
	pthread_join(r->thread, NULL);
	*err = r->err;
	*val = r->val;
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
	return in_time;
}

/*
 * Regression: the client shares the file description of the eventfds it
 * passes: it may make them blocking and may drain one between the link's
 * poll and its read, and a plain read() then blocked the link.
 * link_eventfd_read() never blocks: -EAGAIN when there is nothing (also
 * right after a poll that said readable), -EIO when the fd is not
 * eventfd-like (a short read, EOF), -errno otherwise.
 */
TEST(eventfd_read_never_blocks)
{
	struct pollfd p = { .events = POLLIN };
	uint64_t v, five = 5;
	int e, pp[2], err;

	e = eventfd(0, EFD_CLOEXEC); /* blocking */
	REQUIRE(e >= 0);
	REQUIRE(!(fcntl(e, F_GETFL) & O_NONBLOCK));
	CHECK(read_bounded(e, &err, &v));
	CHECK_EQ(err, -EAGAIN);
	/* holding a value: the value, consumed */
	REQUIRE(write(e, &five, 8) == 8);
	CHECK(read_bounded(e, &err, &v));
	CHECK_EQ(err, 0);
	CHECK_U64(v, 5);
	CHECK(read_bounded(e, &err, &v));
	CHECK_EQ(err, -EAGAIN);
	/* readable when polled, drained by the peer before the read */
	REQUIRE(write(e, &five, 8) == 8);
	p.fd = e;
	CHECK_EQ(poll(&p, 1, 0), 1);
	CHECK_U64(read_counter(e), 5); /* the peer takes it */
	CHECK(read_bounded(e, &err, &v));
	CHECK_EQ(err, -EAGAIN);
	/* a pipe: empty with a writer, short, at EOF; no fd at all */
	REQUIRE(pipe2(pp, O_CLOEXEC) == 0);
	CHECK(read_bounded(pp[0], &err, &v));
	CHECK_EQ(err, -EAGAIN);
	REQUIRE(write(pp[1], "abc", 3) == 3);
	close(pp[1]);
	CHECK(read_bounded(pp[0], &err, &v));
	CHECK_EQ(err, -EIO);
	CHECK(read_bounded(pp[0], &err, &v));
	CHECK_EQ(err, -EIO);
	CHECK_EQ(link_eventfd_read(-1, &v), -EBADF);
	close(pp[0]);
	close(e);
}

#define DRAIN_ROUNDS 20000 /* client rounds of signal-and-take, at most */
#define DRAIN_MS 2000      /* ... and for at most this long */
#define HANG_MS 5000       /* a link without progress this long is stuck */

/* ms_since() - milliseconds from @t0 (CLOCK_MONOTONIC) to now. */
static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* spin_ns() - busy-wait about @ns nanoseconds. */
static void spin_ns(long ns)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000000L +
	       (t.tv_nsec - t0.tv_nsec) < ns);
}

/* next_delay() - a pseudo-random delay below @max_ns from *@seed. */
static long next_delay(uint32_t *seed, long max_ns)
{
	*seed = *seed * 1664525u + 1013904223u;
	return (long)(*seed >> 8) % max_ns;
}

/*
 * signal_and_take() - one round of the client: signal eventfd @efd, wait
 * @ns nanoseconds, take the signal back (RWF_NOWAIT: without blocking,
 * though the eventfd is blocking) if the link has not taken it yet.
 */
static void signal_and_take(int efd, long ns)
{
	const uint64_t one = 1;
	uint64_t v;
	struct iovec iov = { &v, sizeof(v) };

	if (write(efd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		return;
	spin_ns(ns);
	if (preadv2(efd, &iov, 1, -1, RWF_NOWAIT) < 0) {
		/* the link took it first */
	}
}

/* posted_write() - a REGION_WRITE without reply to an idle register. */
static int posted_write(struct fx *x)
{
	uint8_t p[VFU_RW_SIZE + 8] = { 0 };

	put64(p, DMAE_DMA_SRC);
	put32(p + 8, 0);
	put32(p + 12, 8);
	return send_cmd(x, L_DMA, VFU_REGION_WRITE, VFU_F_NO_REPLY, p,
			sizeof(p), NULL, 0) < 0 ? -1 : 0;
}

/* served_within() - whether link 0 has handled @n REGION_WRITEs in @ms. */
static bool served_within(struct fx *x, uint64_t n, int ms)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (stats(x, L_DMA).msgs[VFU_REGION_WRITE] < n) {
		if (ms_since(&t0) > ms)
			return false;
		sched_yield();
	}
	return true;
}

/*
 * Regression: the link read the unmask eventfd with a plain read() once
 * poll() had said it was readable.  The client shares the eventfd's file
 * description: it may make it blocking and take the value back in
 * between, and the link then sat in read() for good: no message served,
 * viommu_link_server_stop() waiting for it for ever.  Here the client
 * sends a posted write (the link looks at the eventfd before it reads a
 * message), signals the eventfd and takes the signal back after a varying
 * delay, round after round, so that in some rounds it does so between
 * the link's poll and its read (with the old read() the link stuck within
 * about 1000 rounds); every message must be served.  The links spin
 * for their next message (poll_us), so that the link's steps follow the
 * client's closely.
 */
TEST(intx_unmask_eventfd_drained_by_the_client)
{
	static struct stopper s; /* a hung stop is left behind with it */
	uint32_t seed = 0x9e3779b9u;
	const uint64_t one = 1;
	bool hung = false, stopped;
	struct timespec t0;
	struct pci_func *f;
	uint64_t sent;
	struct fx x;
	int t, u, i;

	REQUIRE(fx_init(&x, FX_SPIN) == 0);
	f = x.f[L_DMA];
	t = new_efd();
	u = eventfd(0, EFD_CLOEXEC); /* blocking, as the client may */
	REQUIRE(t >= 0 && u >= 0);
	REQUIRE(set_irqs(&x, L_DMA, VFU_IRQ_DATA_EVENTFD |
			 VFU_IRQ_ACTION_UNMASK, VFU_IRQ_INTX, 0, 1, NULL, 0,
			 &u, 1) == 0);
	REQUIRE(intx_trigger(&x, t) == 0);
	sent = stats(&x, L_DMA).msgs[VFU_REGION_WRITE];
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < DRAIN_ROUNDS && ms_since(&t0) < DRAIN_MS && !hung;
	     i++) {
		REQUIRE(posted_write(&x) == 0);
		signal_and_take(u, next_delay(&seed, 1000));
		hung = !served_within(&x, ++sent, HANG_MS);
	}
	if (hung) {
		printf("#   link stuck on the drained eventfd in round %d\n",
		       i);
		REQUIRE(write(u, &one, 8) == 8); /* let it go on */
	}
	CHECK(!hung);
	CHECK(served_within(&x, sent, WAIT_MS));
	CHECK(alive(&x, L_DMA));
	/* The eventfd still unmasks: with the line high, it re-triggers. */
	pci_set_intx(f, true);
	CHECK_U64(read_counter(t), 1);
	REQUIRE(write(u, &one, 8) == 8);
	CHECK(wait_readable(t, WAIT_MS));
	CHECK_U64(read_counter(t), 1);
	/* Signalled and taken back before the link serves it: the link is
	 * not left in read(), and stop returns promptly. */
	signal_and_take(u, 0);
	REQUIRE(stopper_start(&s, x.srv) == 0);
	stopped = stopper_wait(&s, 2000);
	CHECK(stopped);
	if (!stopped) {
		REQUIRE(write(u, &one, 8) == 8);
		REQUIRE(stopper_wait(&s, WAIT_MS));
	}
	CHECK_EQ(cap_get(&cap.end[x.id[L_DMA]]), VIOMMU_LINK_END_STOPPED);
	CHECK_EQ(cap_get(&cap.end[x.id[L_VP]]), VIOMMU_LINK_END_STOPPED);
	close(t);
	close(u);
	CHECK(fx_fini(&x));
	CHECK_EQ(cap.warn_lines, 0);
}

/*
 * struct embedder - an embedder's loop on a thread of its own: run_once()
 * for poll-mode link @id again and again, counting the calls that
 * returned, until told to quit or the link ends.
 */
struct embedder {
	struct viommu_link_server *srv;
	unsigned int id;
	pthread_t thread;
	uint64_t runs; /* atomic */
	bool quit;     /* atomic */
	int end;       /* atomic: run_once()'s answer once the link ended */
};

/* embedder_thread() - the loop of @arg, a struct embedder. */
static void *embedder_thread(void *arg)
{
	struct embedder *e = arg;

	while (!__atomic_load_n(&e->quit, __ATOMIC_ACQUIRE)) {
		int r = viommu_link_server_run_once(e->srv, e->id);

		__atomic_add_fetch(&e->runs, 1, __ATOMIC_RELEASE);
		if (r) {
			__atomic_store_n(&e->end, r, __ATOMIC_RELEASE);
			break;
		}
	}
	return NULL;
}

/* embedder_start() - run @srv's link @id on a new thread.  0 or -errno. */
static int embedder_start(struct embedder *e, struct viommu_link_server *srv,
			  unsigned int id)
{
	memset(e, 0, sizeof(*e));
	e->srv = srv;
	e->id = id;
	return -pthread_create(&e->thread, NULL, embedder_thread, e);
}

/* embedder_join() - tell the loop to quit, wait for it to end. */
static void embedder_join(struct embedder *e)
{
	__atomic_store_n(&e->quit, true, __ATOMIC_RELEASE);
	pthread_join(e->thread, NULL);
}

/* embedder_ended() - the loop's link end (0: not within @ms). */
static int embedder_ended(struct embedder *e, int ms)
{
	struct timespec t0;
	int end;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!(end = __atomic_load_n(&e->end, __ATOMIC_ACQUIRE)) &&
	       ms_since(&t0) <= ms)
		usleep(1000);
	return end;
}

/*
 * embedder_runs() - whether @e completes @n more run_once() calls within
 * @ms (false at once if its link has ended).
 */
static bool embedder_runs(struct embedder *e, uint64_t n, int ms)
{
	uint64_t want = __atomic_load_n(&e->runs, __ATOMIC_ACQUIRE) + n;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n(&e->runs, __ATOMIC_ACQUIRE) < want) {
		if (__atomic_load_n(&e->end, __ATOMIC_ACQUIRE) ||
		    ms_since(&t0) > ms)
			return false;
		sched_yield();
	}
	return true;
}

/*
 * The same through a poll-mode link, whose read would hold the embedder's
 * loop: run_once() looks at the eventfd each time it runs, here again and
 * again on a thread, while the client signals and takes the signal back
 * (with the old read() the loop stuck within about 300 rounds).  Each
 * round must let the loop complete two more run_once() calls.
 */
TEST(poll_mode_unmask_eventfd_drained_by_the_client)
{
	uint32_t seed = 0x2545f491u;
	const uint64_t one = 1;
	struct embedder e;
	bool ok, hung = false;
	struct timespec t0;
	struct fx x;
	int t, u, i;

	REQUIRE(fx_init(&x, FX_POLL_DMA) == 0);
	t = new_efd();
	u = eventfd(0, EFD_CLOEXEC); /* blocking, as the client may */
	REQUIRE(t >= 0 && u >= 0);
	REQUIRE(embedder_start(&e, x.srv, x.id[L_DMA]) == 0);
	/* from here on the embedder serves link 0 */
	ok = negotiate(&x, L_DMA, NULL) == 0 &&
	     set_irqs(&x, L_DMA, VFU_IRQ_DATA_EVENTFD |
		      VFU_IRQ_ACTION_UNMASK, VFU_IRQ_INTX, 0, 1, NULL, 0,
		      &u, 1) == 0 &&
	     intx_trigger(&x, t) == 0;
	CHECK(ok);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; ok && i < DRAIN_ROUNDS && ms_since(&t0) < DRAIN_MS &&
	     !hung; i++) {
		signal_and_take(u, next_delay(&seed, 10000));
		hung = !embedder_runs(&e, 2, HANG_MS);
	}
	if (hung) {
		printf("#   run_once() stuck on the drained eventfd in round "
		       "%d (end %d)\n", i, e.end);
		if (write(u, &one, 8) != 8) { /* let it go on */
			/* nothing else to try */
		}
	}
	CHECK(!hung);
	CHECK(alive(&x, L_DMA));
	/* The eventfd still unmasks: with the line high, it re-triggers. */
	pci_set_intx(x.f[L_DMA], true);
	CHECK_U64(read_counter(t), 1);
	CHECK(write(u, &one, 8) == 8);
	CHECK(wait_readable(t, WAIT_MS));
	CHECK_U64(read_counter(t), 1);
	/* Stopped: the loop's next run_once() says so, and it ends. */
	viommu_link_server_stop(x.srv);
	CHECK_EQ(embedder_ended(&e, WAIT_MS), VIOMMU_LINK_END_STOPPED);
	embedder_join(&e);
	close(t);
	close(u);
	CHECK(fx_fini(&x));
	CHECK_EQ(cap.warn_lines, 0);
}

TEST_MAIN()
