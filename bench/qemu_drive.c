/*
 * qemu_drive.c - `viommu-bench qemu`: driving a path (PCI and virtio
 * setup, ATTACH, MAP/UNMAP batches with one kick each through the
 * register-level driver) and measuring it: the paths take turns in chunks,
 * kick-to-used times, register round trips, CPU time per process, and the
 * bare qtest and mpqemu round trips.
 */
#include "qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Driving a path                                                       */

/* check_ok() - die unless every status in @st[0..n) is OK. */
static void check_ok(int p, const uint8_t *st, const struct vpci_req *r,
		     unsigned n)
{
	static const char *const names[] = { "OK", "IOERR", "UNSUPP",
					     "DEVERR", "INVAL", "RANGE",
					     "NOENT", "FAULT", "NOMEM" };

	for (unsigned j = 0; j < n; j++)
		if (st[j])
			die("path %s (%s): request %u (type %u) answered "
			    "status %u (%s)", qb_paths[p].name,
			    qb_paths[p].desc, j, r[j].type, st[j],
			    st[j] < 9 ? names[st[j]] : "?");
}

/* fail_path() - die with what the driver, the route and server say. */
static void __attribute__((noreturn))
fail_path(struct world *w, int p, const char *what)
{
	const struct bus_ctx *c = &w->ctx[qb_paths[p].bus];
	char via[800] = "", srv[700] = "";

	if (c->mpq && mpq_error(c->mpq)[0])
		snprintf(via, sizeof(via), " (mpqemu: %s)", mpq_error(c->mpq));
	else if (c->q && qtest_error(c->q)[0])
		snprintf(via, sizeof(via), " (qtest: %s)", qtest_error(c->q));
	if (qb_paths[p].srv >= 0)
		srv_state(&w->srv[qb_paths[p].srv], srv, sizeof(srv));
	die("path %s (%s): %s: %s%s%s", qb_paths[p].name, qb_paths[p].desc,
	    what, w->dev[qb_paths[p].dev].err, via, srv);
}

/* use_path() - the path's driver, switched to the path's bus. */
static struct vpci_dev *use_path(struct world *w, int p)
{
	struct vpci_dev *d = &w->dev[qb_paths[p].dev];
	struct vpci_bus *b = &w->bus[qb_paths[p].bus];

	if (d->bus != b && vpci_set_bus(d, b))
		fail_path(w, p, "switching routes");
	return d;
}

/* path_rt() - register round trips of the path's route so far. */
static uint64_t path_rt(const struct world *w, int p)
{
	const struct bus_ctx *c = &w->ctx[qb_paths[p].bus];

	return c->mpq ? mpq_round_trips(c->mpq) : qtest_round_trips(c->q);
}

/* run_batch() - one batch on path @p; die on any failure. */
static void run_batch(struct world *w, int p, const struct vpci_req *r,
		      unsigned n, uint64_t *kick_ns)
{
	struct vpci_dev *d = use_path(w, p);
	uint8_t st[VPCI_MAX_QUEUE / 2];
	uint64_t t0;
	int err = vpci_submit(d, r, n);

	t0 = clock_ns(CLOCK_MONOTONIC);
	if (!err)
		err = vpci_kick(d);
	if (!err)
		err = vpci_wait(d, MAX_POLLS);
	if (kick_ns)
		*kick_ns += clock_ns(CLOCK_MONOTONIC) - t0;
	if (!err)
		err = vpci_complete(d, st, n);
	if (err)
		fail_path(w, p, strerror(-err));
	check_ok(p, st, r, n);
}

/* init_path() - init path @p's device on its bus, attach 0x28. */
static void init_path(struct world *w, int p)
{
	static const uint16_t slot[NDEV] = { SLOT_QEMU, SLOT_OURS, SLOT_OURS,
					     SLOT_OURS };
	const struct vpci_req attach = { .type = VPCI_REQ_ATTACH,
					 .domain = DOMAIN_ID,
					 .endpoint = EP_ID };
	int dv = qb_paths[p].dev;
	struct vpci_config c = { .bdf = (uint16_t)(slot[dv] << 3),
				 .ram_base = RING_BASE(dv),
				 .ram_size = RING_AREA };

	if (vpci_init(&w->dev[dv], &w->bus[qb_paths[p].bus], &c))
		fail_path(w, p, "init failed");
	for (int k = 0; k < w->o.nsizes; k++)
		if (w->o.sizes[k] > w->dev[dv].qsize / 2u)
			bad_usage("--sizes: %u requests do not fit path %s's "
				  "queue of %u (2 descriptors each)",
				  w->o.sizes[k], qb_paths[p].name,
				  w->dev[dv].qsize);
	run_batch(w, p, &attach, 1, NULL);
}

/* qb_setup_devices() - each device once, through its first path. */
void qb_setup_devices(struct world *w)
{
	bool done[NDEV] = { false };

	for (int i = 0; i < w->nact; i++) {
		int p = w->act[i];

		if (!done[qb_paths[p].dev])
			init_path(w, p);
		done[qb_paths[p].dev] = true;
	}
}

/* qb_build_requests() - the MAP and UNMAP batches (the largest size). */
void qb_build_requests(struct world *w)
{
	for (unsigned j = 0; j < VPCI_MAX_QUEUE / 2; j++) {
		uint64_t va = IOVA_BASE + j * PAGE;

		w->map[j] = (struct vpci_req){
			.type = VPCI_REQ_MAP, .domain = DOMAIN_ID,
			.virt_start = va, .virt_end = va + PAGE - 1,
			.phys_start = PHYS_BASE + j * PAGE,
			.flags = VPCI_MAP_READ | VPCI_MAP_WRITE };
		w->unmap[j] = (struct vpci_req){
			.type = VPCI_REQ_UNMAP, .domain = DOMAIN_ID,
			.virt_start = va, .virt_end = va + PAGE - 1 };
	}
}

/* ------------------------------------------------------------------ */
/* Measuring                                                            */

/* struct cpu3 - CPU time of QEMU, the path's server and this process. */
struct cpu3 {
	double qemu, srv, self;
};

/*
 * cpu_now() - read the three clocks for path @p; @self_first orders the
 * reads so that neither /proc reading of a span is charged to this
 * program.  A path without a server reads 0 for it.
 */
static struct cpu3 cpu_now(const struct world *w, int p, bool self_first)
{
	struct cpu3 c;
	int s = qb_paths[p].srv;

	if (self_first)
		c.self = (double)clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	c.qemu = proc_cpu_ns(qtest_pid(w->q));
	c.srv = s >= 0 ? proc_cpu_ns(w->srv[s].pid) : 0;
	if (!self_first)
		c.self = (double)clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	return c;
}

/* batches_for() - an even number of batches for about --requests. */
static unsigned batches_for(const struct world *w, unsigned n)
{
	unsigned b = w->o.requests / n;

	b += b & 1;
	return b < 2 ? 2 : b;
}

/*
 * struct acc - what one path accumulated over one measurement; @kicks
 * keeps the first KICK_SAMPLES kick times for their median.
 */
struct acc {
	uint64_t wall, kick, rt, batches;
	double cpu_qemu, cpu_srv, cpu_self;
	bool cpu_bad;
	double *kicks;
	unsigned nkicks;
};

/* add_cpu() - the CPU spent between @a and @b into @x. */
static void add_cpu(struct acc *x, const struct cpu3 *a, const struct cpu3 *b)
{
	if (a->qemu < 0 || b->qemu < 0 || a->srv < 0 || b->srv < 0)
		x->cpu_bad = true;
	x->cpu_qemu += b->qemu - a->qemu;
	x->cpu_srv += b->srv - a->srv;
	x->cpu_self += b->self - a->self;
}

/* run_chunk() - @pairs MAP + UNMAP batch pairs of @n on path @p. */
static void run_chunk(struct world *w, int p, unsigned n, unsigned pairs,
		      struct acc *a)
{
	struct cpu3 c0, c1;
	uint64_t rt0, t0;

	use_path(w, p);
	c0 = cpu_now(w, p, false);
	rt0 = path_rt(w, p);
	t0 = clock_ns(CLOCK_MONOTONIC);
	for (unsigned b = 0; b < 2 * pairs; b++) {
		uint64_t k = 0;

		run_batch(w, p, b & 1 ? w->unmap : w->map, n, &k);
		a->kick += k;
		if (a->nkicks < KICK_SAMPLES)
			a->kicks[a->nkicks++] = (double)k;
	}
	a->wall += clock_ns(CLOCK_MONOTONIC) - t0;
	a->rt += path_rt(w, p) - rt0;
	a->batches += 2ull * pairs;
	c1 = cpu_now(w, p, true);
	add_cpu(a, &c0, &c1);
}

/* to_sample() - per-request figures from an accumulation. */
static void to_sample(struct acc *a, unsigned n, struct sample *s)
{
	double reqs = (double)a->batches * n;

	s->rps_all = reqs * 1e9 / (double)a->wall;
	s->rps_kick = reqs * 1e9 / (double)a->kick;
	s->kick_ns = (double)a->kick / (double)a->batches;
	s->kick_med_ns = median(a->kicks, (int)a->nkicks);
	s->rt_batch = (double)a->rt / (double)a->batches;
	s->cpu_qemu = a->cpu_bad ? -1 : a->cpu_qemu / reqs;
	s->cpu_srv = a->cpu_bad ? -1 : a->cpu_srv / reqs;
	s->cpu_self = a->cpu_self / reqs;
}

/* qb_ratio_on() - whether both paths of ratio @i were measured. */
bool qb_ratio_on(const struct world *w, int i)
{
	return w->on[qb_ratios[i].num] && w->on[qb_ratios[i].den];
}

/* take_ratios() - every ratio of size @k in run @r. */
static void take_ratios(struct world *w, int k, int r)
{
	for (int i = 0; i < NRATIO; i++) {
		const struct sample *a = &w->s[k][qb_ratios[i].num][r];
		const struct sample *b = &w->s[k][qb_ratios[i].den][r];

		if (!qb_ratio_on(w, i))
			continue;
		w->ratio[k][i][0][r] = a->rps_all / b->rps_all;
		w->ratio[k][i][1][r] = a->rps_kick / b->rps_kick;
	}
}

/*
 * measure() - batch size @k in run @r: the paths take turns in chunks of
 * about CHUNK_REQUESTS requests (at least one MAP + UNMAP pair), so that
 * load changes on the machine hit all alike.
 */
static void measure(struct world *w, int k, int r)
{
	unsigned n = w->o.sizes[k], pairs = batches_for(w, n) / 2;
	unsigned chunk = CHUNK_REQUESTS / (2 * n), c = 0;
	struct acc a[NPATH];

	for (int p = 0; p < NPATH; p++)
		a[p] = (struct acc){ .kicks = w->kicks[p] };
	if (!chunk)
		chunk = 1;
	for (unsigned done = 0; done < pairs; c++) {
		unsigned now = pairs - done < chunk ? pairs - done : chunk;

		for (int i = 0; i < w->nact; i++) {
			int p = w->act[(r + c + (unsigned)i) % w->nact];

			run_chunk(w, p, n, now, &a[p]);
		}
		done += now;
	}
	for (int i = 0; i < w->nact; i++)
		to_sample(&a[w->act[i]], n, &w->s[k][w->act[i]][r]);
	take_ratios(w, k, r);
}

/* time_kick() - one empty kick (notify + used-index read) on path @p. */
static uint64_t time_kick(struct world *w, int p)
{
	struct vpci_dev *d = use_path(w, p);
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);

	if (vpci_kick(d) || vpci_wait(d, 1))
		fail_path(w, p, "empty kick");
	return clock_ns(CLOCK_MONOTONIC) - t0;
}

/* time_mpq() - one mpqemu round trip on path @p: read the vendor ID. */
static uint64_t time_mpq(struct world *w, int p)
{
	struct mpq *c = w->ctx[qb_paths[p].bus].mpq;
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
	uint32_t v;

	if (mpq_cfg_read(c, 0, 2, &v))
		fail_path(w, p, "mpqemu round trip");
	if (v != VIRTIO_VENDOR)
		die("path %s: vendor ID %#x, expected %#x", qb_paths[p].name, v,
		    VIRTIO_VENDOR);
	return clock_ns(CLOCK_MONOTONIC) - t0;
}

/*
 * probe_costs() - interleaved: a bare qtest round trip (a RAM readw), a
 * bare mpqemu round trip per link path, and per path an empty kick - the
 * notify write and the used-index read of a batch with nothing available
 * (the fixed part of the "kick" figure).
 */
static void probe_costs(struct world *w, int run)
{
	uint64_t rt = 0, mpq[NPATH] = { 0 }, kick[NPATH] = { 0 }, t0, v;

	for (int i = 0; i < PROBE_ROUNDS; i++) {
		t0 = clock_ns(CLOCK_MONOTONIC);
		if (qtest_readn(w->q, 2, RING_BASE(D_QEMU), &v))
			die("qtest: %s", qtest_error(w->q));
		rt += clock_ns(CLOCK_MONOTONIC) - t0;
		for (int k = 0; k < w->nact; k++) {
			int p = w->act[(i + k) % w->nact];

			if (w->ctx[qb_paths[p].bus].mpq)
				mpq[p] += time_mpq(w, p);
			kick[p] += time_kick(w, p);
		}
	}
	w->rt_ns[run] = (double)rt / PROBE_ROUNDS;
	for (int p = 0; p < NPATH; p++) {
		w->mpq_ns[p][run] = (double)mpq[p] / PROBE_ROUNDS;
		w->empty_ns[p][run] = (double)kick[p] / PROBE_ROUNDS;
	}
}

/* qb_run_all() - warm up, then every run, size and path. */
void qb_run_all(struct world *w)
{
	for (int k = 0; k < w->o.nsizes; k++)
		for (int i = 0; i < w->nact; i++) {
			run_batch(w, w->act[i], w->map, w->o.sizes[k], NULL);
			run_batch(w, w->act[i], w->unmap, w->o.sizes[k], NULL);
		}
	for (int r = 0; r < w->o.runs; r++) {
		probe_costs(w, r);
		for (int k = 0; k < w->o.nsizes; k++)
			measure(w, k, r);
	}
}
