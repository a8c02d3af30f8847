/*
 * io.c - `viommu-bench io`: an in-process I/O model, to see where each way
 * of using the virtio-iommu lands against no IOMMU at all (the shape of the
 * seeds' table: vt-d deferred 78-100%, strict 22-67%, virtio-iommu 5-17% of
 * no-IOMMU throughput).
 *
 * Everything runs in one thread: the "driver" (guest side) maps buffers
 * through the reference virtio-iommu driver over real virtqueues, the
 * "endpoint" DMAs through the translation core (viommu_dma_write/_read),
 * and the driver consumes the data.  Workloads (per I/O):
 *  - rx:   map a buffer; the endpoint DMA-writes a packet into it; the
 *          driver copies the packet out (a socket read); unmap;
 *  - tx:   the driver copies a packet into a buffer; map; the endpoint
 *          DMA-reads it; unmap;
 *  - bulk: a storage-like read: SIZE bytes in 4 KiB pages scattered over
 *          guest RAM, mapped page by page into one contiguous IOVA range
 *          (as Linux's iommu_map_sg: one MAP per page) and unmapped with
 *          one UNMAP; the endpoint writes the whole range; no copy.
 * Modes:
 *  - none:     no IOMMU: the endpoint copies straight to/from the GPA;
 *  - identity: the endpoint attached to an identity domain
 *              (ATTACH_F_BYPASS); DMA goes through translate;
 *  - strict:   map and unmap per I/O, each committed with one kick (as
 *              Linux strict mode: an I/O's MAPs share the iotlb_sync_map
 *              kick, its UNMAP gets its own);
 *  - batched:  BATCH I/Os at a time: their MAPs in one kick, DMA, their
 *              UNMAPs in one kick (an RX ring refilled in bursts);
 *  - deferred: MAP + kick per I/O; UNMAPs kept in a flush queue of FQ
 *              entries and sent together in one commit when it is full
 *              (Linux's lazy mode); IOVAs come from a rotating allocator
 *              and are not reused before their UNMAP was flushed;
 *  - pool:     every buffer mapped once before the run, never unmapped
 *              (DPDK style): DMA through translate only.
 * Every mode moves the same bytes and does the same copies; figures are
 * I/Os per second, bytes per second and % of `none` measured in the same
 * run (each run measures every mode of a workload and size back to back).
 * Wall-clock and thread-CPU figures are both reported.
 *
 * Modelled options (labelled as such in the output): --kick-cost-ns makes
 * every kick busy-wait (a VM exit to the VMM), --stack-ns makes every I/O
 * busy-wait (the rest of an I/O stack the model does not have).
 */
#include "common.h"
#include "opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIZES 16
#define MAX_SIZE (64u << 10)
#define MAX_PAGES (MAX_SIZE / BENCH_PAGE)
#define MAX_BUFS 1024u
#define MAX_FQ 4096u
#define FQ_SPARE 64u          /* IOVA slots beyond the flush queue */
#define IOVA_BASE (1ull << 32) /* strict, batched, deferred */
#define POOL_BASE (1ull << 40) /* the premapped pool */
#define DOM_PAGING 1u
#define DOM_IDENTITY 2u
#define MAP_RW 3u              /* VIRTIO_IOMMU_MAP_F_READ | _WRITE */
#define ATTACH_BYPASS 1u       /* VIRTIO_IOMMU_ATTACH_F_BYPASS */
#define SETUP_BATCH 64u

enum workload { W_RX, W_TX, W_BULK, W_COUNT };
enum mode { M_NONE, M_IDENTITY, M_STRICT, M_BATCHED, M_DEFERRED, M_POOL,
	    M_COUNT };

static const char *const wl_names[W_COUNT] = { "rx", "tx", "bulk" };
static const char *const wl_text[W_COUNT] = {
	"RX: map, endpoint DMA-writes the packet, driver copies it out, unmap",
	"TX: driver copies the packet in, map, endpoint DMA-reads it, unmap",
	("bulk: scattered 4 KiB pages mapped page by page into one IOVA "
	 "range, endpoint writes, one unmap"),
};
static const char *const mode_names[M_COUNT] = {
	"none", "identity", "strict", "batched", "deferred", "pool",
};

struct opts {
	bool smoke;
	const char *json;
	uint32_t workloads, modes;
	uint32_t sizes[MAX_SIZES];
	int nsizes;
	uint32_t batch, fq, bufs, time_ms;
	uint64_t kick_cost, stack_ns;
	bool packed;
	int runs;
};

/* One measured cell: workload x size x mode. */
struct cell {
	enum workload w;
	uint32_t size;
	enum mode m;
	double ios[BENCH_MAX_RUNS], ios_cpu[BENCH_MAX_RUNS];
	double pct[BENCH_MAX_RUNS], pct_cpu[BENCH_MAX_RUNS];
	double kicks[BENCH_MAX_RUNS], reqs[BENCH_MAX_RUNS];
	/* medians */
	double m_ios, min_ios, max_ios, m_ios_cpu, m_pct, m_pct_cpu;
	double m_kicks, m_reqs;
};

struct io {
	struct opts o;
	struct venv env;
	uint8_t *wire; /* the endpoint's side of a transfer */
	uint8_t *app;  /* the driver's side (socket buffer) */
	uint32_t *perm; /* bulk: page permutation of the buffer area */
	uint32_t npages; /* pages in the buffer area */
	int attached;   /* -1 none, else DOM_PAGING or DOM_IDENTITY */
	struct cell *cells;
	int ncells;
	struct machine m;
};

/* State of one cell while it runs. */
struct run {
	struct io *b;
	enum workload w;
	enum mode m;
	uint32_t size, pages;
	uint64_t stride; /* IOVA / buffer stride: size rounded to pages */
	uint64_t seq;    /* I/Os done */
	/* deferred */
	uint64_t fq[MAX_FQ];
	uint32_t fq_n;
	uint64_t slot;   /* next IOVA slot of the rotating allocator */
};

/* ------------------------------------------------------------------ */
/* Addresses                                                          */

/* buf_gpa() - RX/TX: the GPA of buffer @i (contiguous, stride bytes). */
static uint64_t buf_gpa(const struct run *r, uint64_t i)
{
	return (i % r->b->o.bufs) * r->stride;
}

/* page_gpa() - bulk: the GPA of page @j of I/O @i (scattered). */
static uint64_t page_gpa(const struct run *r, uint64_t i, uint32_t j)
{
	uint64_t k = (i % r->b->o.bufs) * MAX_PAGES + j;

	return (uint64_t)r->b->perm[k % r->b->npages] * BENCH_PAGE;
}

/* pool_iova() - the premapped IOVA of I/O @i's buffer (bulk: page @j). */
static uint64_t pool_iova(const struct run *r, uint64_t i, uint32_t j)
{
	if (r->w != W_BULK)
		return POOL_BASE + buf_gpa(r, i);
	return POOL_BASE + page_gpa(r, i, j);
}

/* ------------------------------------------------------------------ */
/* Driver side                                                        */

/* commit() - submit what is queued; die if a request failed. */
static void commit(struct run *r)
{
	int rc = refdrv_commit(r->b->env.drv);

	if (rc)
		die("%s/%u/%s: commit: %d", wl_names[r->w], r->size,
		    mode_names[r->m], rc);
}

/* queue_map() - queue the MAP requests of I/O @i at @iova. */
static void queue_map(struct run *r, uint64_t i, uint64_t iova)
{
	struct refdrv *drv = r->b->env.drv;
	int rc = 0;

	if (r->w != W_BULK) {
		rc = refdrv_map(drv, DOM_PAGING, iova, buf_gpa(r, i),
				r->stride, MAP_RW, NULL);
	} else {
		for (uint32_t j = 0; j < r->pages && !rc; j++)
			rc = refdrv_map_page(drv, DOM_PAGING,
					     iova + j * BENCH_PAGE,
					     page_gpa(r, i, j), MAP_RW, NULL);
	}
	if (rc)
		die("MAP: %s", strerror(-rc));
}

/* queue_unmap() - queue the UNMAP of an I/O's range at @iova. */
static void queue_unmap(struct run *r, uint64_t iova)
{
	int rc = refdrv_unmap(r->b->env.drv, DOM_PAGING, iova,
			      r->pages * BENCH_PAGE, NULL);

	if (rc)
		die("UNMAP: %s", strerror(-rc));
}

/* prepare() - TX: the driver writes the packet into I/O @i's buffer. */
static void prepare(struct run *r, uint64_t i)
{
	uint8_t *ram = r->b->env.ram;

	if (r->w != W_TX)
		return;
	r->b->app[0] = (uint8_t)i;
	memcpy(ram + buf_gpa(r, i), r->b->app, r->size);
}

/* consume() - RX: the driver copies the packet out of the buffer. */
static void consume(struct run *r, uint64_t i)
{
	if (r->w == W_RX)
		memcpy(r->b->app, r->b->env.ram + buf_gpa(r, i), r->size);
	if (r->b->o.stack_ns)
		busy_wait_ns(r->b->o.stack_ns);
}

/* ------------------------------------------------------------------ */
/* Endpoint side                                                      */

/*
 * stamp() - RX and bulk: mark the packet the endpoint sends with the I/O
 * number (first and last byte), so check_data() can see it arrived.
 */
static void stamp(struct run *r, uint64_t i)
{
	if (r->w == W_TX)
		return;
	r->b->wire[0] = (uint8_t)i;
	r->b->wire[r->size - 1] = (uint8_t)i;
}

/* dma_direct() - no IOMMU: copy to/from the GPAs themselves. */
static void dma_direct(struct run *r, uint64_t i)
{
	uint8_t *ram = r->b->env.ram;

	stamp(r, i);
	if (r->w == W_RX) {
		memcpy(ram + buf_gpa(r, i), r->b->wire, r->size);
	} else if (r->w == W_TX) {
		memcpy(r->b->wire, ram + buf_gpa(r, i), r->size);
	} else {
		for (uint32_t j = 0; j < r->pages; j++) {
			uint32_t n = r->size - j * BENCH_PAGE;

			memcpy(ram + page_gpa(r, i, j),
			       r->b->wire + j * BENCH_PAGE,
			       n < BENCH_PAGE ? n : BENCH_PAGE);
		}
	}
}

/* dma_at() - one endpoint transfer of @len bytes at @iova. */
static void dma_at(struct run *r, uint64_t iova, uint8_t *wire, size_t len)
{
	int rc;

	if (r->w == W_TX)
		rc = viommu_dma_read(r->b->env.ep, VIOMMU_NO_PASID, iova,
				     wire, len);
	else
		rc = viommu_dma_write(r->b->env.ep, VIOMMU_NO_PASID, iova,
				      wire, len);
	if (rc)
		die("%s/%u/%s: endpoint DMA at 0x%llx: %s", wl_names[r->w],
		    r->size, mode_names[r->m], (unsigned long long)iova,
		    strerror(-rc));
}

/*
 * dma_iommu() - through the IOMMU: one transfer at @iova when the I/O is
 * mapped contiguously (@iova != 0), else page by page at the identity or
 * pool addresses.
 */
static void dma_iommu(struct run *r, uint64_t i, uint64_t iova)
{
	stamp(r, i);
	if (iova) {
		dma_at(r, iova, r->b->wire, r->size);
		return;
	}
	if (r->w != W_BULK) {
		dma_at(r, r->m == M_POOL ? pool_iova(r, i, 0) : buf_gpa(r, i),
		       r->b->wire, r->size);
		return;
	}
	for (uint32_t j = 0; j < r->pages; j++) {
		uint32_t n = r->size - j * BENCH_PAGE;

		dma_at(r, r->m == M_POOL ? pool_iova(r, i, j)
					 : page_gpa(r, i, j),
		       r->b->wire + j * BENCH_PAGE,
		       n < BENCH_PAGE ? n : BENCH_PAGE);
	}
}

/* ------------------------------------------------------------------ */
/* One burst of I/Os per mode                                         */

/* fq_flush() - deferred: send every queued UNMAP in one commit. */
static void fq_flush(struct run *r)
{
	for (uint32_t k = 0; k < r->fq_n; k++)
		queue_unmap(r, r->fq[k]);
	if (r->fq_n)
		commit(r);
	r->fq_n = 0;
}

/* deferred_iova() - the next IOVA of the rotating allocator. */
static uint64_t deferred_iova(struct run *r)
{
	uint64_t window = r->b->o.fq + FQ_SPARE;

	return IOVA_BASE + (r->slot++ % window) * r->stride;
}

/* burst_simple() - none, identity and pool: no map, no unmap. */
static void burst_simple(struct run *r, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++, r->seq++) {
		prepare(r, r->seq);
		if (r->m == M_NONE)
			dma_direct(r, r->seq);
		else
			dma_iommu(r, r->seq, 0);
		consume(r, r->seq);
	}
}

/* burst_strict() - map + kick, DMA, consume, unmap + kick, per I/O. */
static void burst_strict(struct run *r, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++, r->seq++) {
		uint64_t iova = IOVA_BASE +
				(r->seq % r->b->o.bufs) * r->stride;

		prepare(r, r->seq);
		queue_map(r, r->seq, iova);
		commit(r);
		dma_iommu(r, r->seq, iova);
		consume(r, r->seq);
		queue_unmap(r, iova);
		commit(r);
	}
}

/* burst_batched() - @n MAPs, one kick; n DMAs; @n UNMAPs, one kick. */
static void burst_batched(struct run *r, uint32_t n)
{
	uint64_t s0 = r->seq;

	for (uint32_t k = 0; k < n; k++) {
		prepare(r, s0 + k);
		queue_map(r, s0 + k, IOVA_BASE + ((s0 + k) % r->b->o.bufs) *
							  r->stride);
	}
	commit(r);
	for (uint32_t k = 0; k < n; k++) {
		uint64_t iova = IOVA_BASE + ((s0 + k) % r->b->o.bufs) *
						    r->stride;

		dma_iommu(r, s0 + k, iova);
		consume(r, s0 + k);
		queue_unmap(r, iova);
	}
	commit(r);
	r->seq += n;
}

/* burst_deferred() - map + kick per I/O; unmaps through the flush queue. */
static void burst_deferred(struct run *r, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++, r->seq++) {
		uint64_t iova = deferred_iova(r);

		prepare(r, r->seq);
		queue_map(r, r->seq, iova);
		commit(r);
		dma_iommu(r, r->seq, iova);
		consume(r, r->seq);
		r->fq[r->fq_n++] = iova;
		if (r->fq_n == r->b->o.fq)
			fq_flush(r);
	}
}

/* burst() - @n I/Os of the run's mode. */
static void burst(struct run *r, uint32_t n)
{
	switch (r->m) {
	case M_STRICT:
		burst_strict(r, n);
		break;
	case M_BATCHED:
		burst_batched(r, n);
		break;
	case M_DEFERRED:
		burst_deferred(r, n);
		break;
	default:
		burst_simple(r, n);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Cells                                                              */

/* attach() - put the endpoint in @dom (DOM_PAGING or DOM_IDENTITY). */
static void attach(struct io *b, int dom)
{
	uint8_t st = 0;
	int rc;

	if (b->attached == dom)
		return;
	rc = refdrv_attach(b->env.drv, (uint32_t)dom, VENV_EP_ID,
			   dom == DOM_IDENTITY ? ATTACH_BYPASS : 0, &st);
	if (!rc)
		rc = refdrv_commit(b->env.drv) > 0 ? -EIO : 0;
	venv_check(rc, st, "ATTACH");
	b->attached = dom;
}

/* pool_setup() - map (@map) or unmap the whole pool, untimed. */
static void pool_setup(struct run *r, bool map)
{
	struct refdrv *drv = r->b->env.drv;
	uint64_t n = r->w == W_BULK ? r->b->npages : r->b->o.bufs;
	uint64_t len = r->w == W_BULK ? BENCH_PAGE : r->stride;
	int rc = 0;

	if (!map) {
		rc = refdrv_unmap(drv, DOM_PAGING, POOL_BASE, n * len, NULL);
		if (!rc)
			rc = refdrv_commit(drv);
		if (rc)
			die("pool UNMAP: %d", rc);
		return;
	}
	for (uint64_t k = 0; k < n && !rc; k++) {
		rc = refdrv_map(drv, DOM_PAGING, POOL_BASE + k * len, k * len,
				len, MAP_RW, NULL);
		if (!rc && (k + 1) % SETUP_BATCH == 0)
			rc = refdrv_commit(drv);
	}
	if (!rc)
		rc = refdrv_commit(drv);
	if (rc)
		die("pool MAP: %d", rc);
}

/* check_data() - the last I/O really moved its bytes (untimed). */
static void check_data(struct run *r)
{
	uint64_t i = r->seq - 1;
	const uint8_t *ram = r->b->env.ram;
	bool ok;

	if (r->w == W_TX)
		ok = r->b->wire[0] == (uint8_t)i &&
		     !memcmp(r->b->wire + 1, r->b->app + 1, r->size - 1);
	else if (r->w == W_RX)
		ok = !memcmp(ram + buf_gpa(r, i), r->b->wire, r->size) &&
		     !memcmp(r->b->app, r->b->wire, r->size) &&
		     r->b->app[0] == (uint8_t)i;
	else
		ok = ram[page_gpa(r, i, 0)] == (uint8_t)i &&
		     !memcmp(ram + page_gpa(r, i, r->pages - 1),
			     r->b->wire + (r->pages - 1) * BENCH_PAGE,
			     r->size - (r->pages - 1) * BENCH_PAGE);
	if (!ok)
		die("%s/%u/%s: the data did not arrive", wl_names[r->w],
		    r->size, mode_names[r->m]);
}

/*
 * patterns() - distinct fresh contents for the endpoint's and the driver's
 * buffers, so that check_data() can tell a transfer happened.
 */
static void patterns(struct io *b)
{
	for (uint32_t k = 0; k < MAX_SIZE; k++) {
		b->wire[k] = (uint8_t)(k * 7 + 1);
		b->app[k] = (uint8_t)(k * 13 + 5);
	}
}

/* run_cell() - one run of cell @c: returns its span and counts. */
static struct span run_cell(struct io *b, struct cell *c, int run,
			    uint64_t *ios)
{
	static struct run r;
	struct refdrv_info i0, i1;
	uint64_t d0, t_end, burst_n;
	struct span t;

	patterns(b);
	r = (struct run){ .b = b, .w = c->w, .m = c->m, .size = c->size };
	r.pages = (uint32_t)((c->size + BENCH_PAGE - 1) / BENCH_PAGE);
	r.stride = r.pages * BENCH_PAGE;
	attach(b, c->m == M_IDENTITY ? DOM_IDENTITY : DOM_PAGING);
	if (c->m == M_POOL)
		pool_setup(&r, true);
	burst_n = b->o.batch;
	refdrv_info(b->env.drv, &i0);
	d0 = venv_dev_requests(&b->env);
	t_end = clock_ns(CLOCK_MONOTONIC) + b->o.time_ms * 1000000ull;
	t = span_start();
	do
		burst(&r, (uint32_t)burst_n);
	while (clock_ns(CLOCK_MONOTONIC) < t_end);
	if (c->m == M_DEFERRED)
		fq_flush(&r);
	t = span_end(t);
	refdrv_info(b->env.drv, &i1);
	check_data(&r);
	if (c->m == M_POOL)
		pool_setup(&r, false);
	c->kicks[run] = (double)(i1.kicks - i0.kicks) / (double)r.seq;
	c->reqs[run] = (double)(venv_dev_requests(&b->env) - d0) /
		       (double)r.seq;
	*ios = r.seq;
	return t;
}

/* measure() - one run of every cell, `none` first in each group. */
static void measure(struct io *b, int run)
{
	double base = 0, base_cpu = 0;

	for (int k = 0; k < b->ncells; k++) {
		struct cell *c = &b->cells[k];
		uint64_t n;
		struct span t = run_cell(b, c, run, &n);

		c->ios[run] = (double)n * 1e9 / (double)t.wall;
		c->ios_cpu[run] = (double)n * 1e9 / (double)(t.cpu ? t.cpu
								  : 1);
		if (c->m == M_NONE) {
			base = c->ios[run];
			base_cpu = c->ios_cpu[run];
		}
		c->pct[run] = 100 * c->ios[run] / base;
		c->pct_cpu[run] = 100 * c->ios_cpu[run] / base_cpu;
	}
}

/* summarize() - medians per cell. */
static void summarize(struct io *b)
{
	int n = b->o.runs;

	for (int k = 0; k < b->ncells; k++) {
		struct cell *c = &b->cells[k];

		c->m_ios = median(c->ios, n);
		c->min_ios = c->ios[0];
		c->max_ios = c->ios[n - 1];
		c->m_ios_cpu = median(c->ios_cpu, n);
		c->m_pct = median(c->pct, n);
		c->m_pct_cpu = median(c->pct_cpu, n);
		c->m_kicks = median(c->kicks, n);
		c->m_reqs = median(c->reqs, n);
	}
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

/* mode_label() - the mode with its parameter ("batched/16"). */
static const char *mode_label(const struct io *b, enum mode m, char *buf,
			      size_t n)
{
	if (m == M_BATCHED)
		snprintf(buf, n, "batched/%u", b->o.batch);
	else if (m == M_DEFERRED)
		snprintf(buf, n, "deferred/%u", b->o.fq);
	else
		snprintf(buf, n, "%s", mode_names[m]);
	return buf;
}

/* print_cells() - the detailed rows of workload @w. */
static void print_cells(const struct io *b, enum workload w, FILE *f)
{
	fprintf(f, "\n%s\n  %6s %-12s %10s %10s %8s %8s %11s %8s %7s\n",
		wl_text[w], "size", "mode", "I/O/s", "bytes/s", "% none",
		"(cpu)", "I/O/cpu-s", "kicks", "reqs");
	for (int k = 0; k < b->ncells; k++) {
		const struct cell *c = &b->cells[k];
		char ios[32], bps[32], cpu[32], lab[32];

		if (c->w != w)
			continue;
		fmt_rate(ios, sizeof(ios), c->m_ios);
		fmt_rate(bps, sizeof(bps), c->m_ios * c->size);
		fmt_rate(cpu, sizeof(cpu), c->m_ios_cpu);
		fprintf(f, "  %6u %-12s %10s %9sB %8.1f %8.1f %11s %8.3f "
			"%7.2f\n", c->size, mode_label(b, c->m, lab,
							 sizeof(lab)),
			ios, bps, c->m_pct, c->m_pct_cpu, cpu, c->m_kicks,
			c->m_reqs);
	}
}

/* find() - the cell of (@w, @size, @m), or NULL. */
static const struct cell *find(const struct io *b, enum workload w,
			       uint32_t size, enum mode m)
{
	for (int k = 0; k < b->ncells; k++)
		if (b->cells[k].w == w && b->cells[k].size == size &&
		    b->cells[k].m == m)
			return &b->cells[k];
	return NULL;
}

/*
 * print_matrix() - % of none, modes x sizes, per workload: by wall clock,
 * or (@cpu) by thread CPU time.
 */
static void print_matrix(const struct io *b, bool cpu, FILE *f)
{
	fprintf(f, "\n%% of no-IOMMU I/O rate (%s, median of per-run "
		"ratios)\n", cpu ? "I/Os per thread-CPU second"
				 : "wall clock");
	for (int w = 0; w < W_COUNT; w++) {
		if (!(b->o.workloads & (1u << w)))
			continue;
		fprintf(f, "  %-5s %-12s", wl_names[w], "mode \\ size");
		for (int s = 0; s < b->o.nsizes; s++)
			fprintf(f, " %7u", b->o.sizes[s]);
		fputc('\n', f);
		for (int m = 0; m < M_COUNT; m++) {
			char lab[32];

			if (!(b->o.modes & (1u << m)))
				continue;
			fprintf(f, "  %-5s %-12s", "",
				mode_label(b, (enum mode)m, lab, sizeof(lab)));
			for (int s = 0; s < b->o.nsizes; s++) {
				const struct cell *c = find(
					b, (enum workload)w, b->o.sizes[s],
					(enum mode)m);

				fprintf(f, " %7.1f", !c ? -1
							 : cpu ? c->m_pct_cpu
							       : c->m_pct);
			}
			fputc('\n', f);
		}
	}
}

/*
 * mode_range() - min and max % of none of mode @m over RX and TX, by wall
 * clock or (@cpu) by thread CPU time.
 */
static bool mode_range(const struct io *b, enum mode m, bool cpu,
		       double *lo, double *hi)
{
	bool any = false;

	for (int k = 0; k < b->ncells; k++) {
		const struct cell *c = &b->cells[k];
		double v = cpu ? c->m_pct_cpu : c->m_pct;

		if (c->m != m || c->w == W_BULK)
			continue;
		if (!any || v < *lo)
			*lo = v;
		if (!any || v > *hi)
			*hi = v;
		any = true;
	}
	return any;
}

/* print_seeds() - how the shape of this table compares with the seeds'. */
static void print_seeds(const struct io *b, FILE *f)
{
	static const enum mode order[] = { M_IDENTITY, M_POOL, M_DEFERRED,
					   M_BATCHED, M_STRICT };

	fprintf(f, "\nShape against the seeds' table (x86, 10 Gbps "
		"netperf/iperf3, vhost off, %% of no IOMMU):\n"
		"  vt-d deferred invalidation 78-100%%, vt-d strict 22-67%%, "
		"vt-d strict + caching mode 13-40%%,\n"
		"  virtio-iommu (driver without optimizations) 5-17%%.\n"
		"This run, RX and TX over the sizes measured (%% of none):"
		"\n  %-12s %13s %13s\n", "", "wall", "thread CPU");
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		double lo = 0, hi = 0, clo = 0, chi = 0;
		char lab[32];

		if (!mode_range(b, order[k], false, &lo, &hi) ||
		    !mode_range(b, order[k], true, &clo, &chi))
			continue;
		fprintf(f, "  %-12s %5.1f-%5.1f%% %5.1f-%5.1f%%\n",
			mode_label(b, order[k], lab, sizeof(lab)), lo, hi, clo,
			chi);
	}
	fprintf(f, "Read this as a comparison of shapes, not of figures: "
		"the seeds measured whole VMs\n(every kick a VM exit to "
		"QEMU, every packet through a TCP/IP stack and a NIC);\n"
		"here nothing leaves the process and the no-IOMMU baseline "
		"is two memcpy()s per\nI/O, so each mapping round trip weighs "
		"more against it.\n");
	if (b->o.kick_cost || b->o.stack_ns)
		fprintf(f, "MODELLED: each kick here busy-waits %llu ns and "
			"each I/O %llu ns.\n",
			(unsigned long long)b->o.kick_cost,
			(unsigned long long)b->o.stack_ns);
}

/* print_table() - the human-readable report. */
static void print_table(const struct io *b, FILE *f)
{
	report_head(f, "io", b->o.smoke ? SMOKE_NOTE : NULL, &b->m);
	fprintf(f, "method:  one thread; %u ms per mode and size per run, "
		"median of %d runs; %u buffers;\n         %s rings, queue "
		"256; %% none = this mode / none in the same run; cpu = "
		"thread CPU\n         time; kicks and reqs = request-queue "
		"kicks and device requests per I/O\n", b->o.time_ms,
		b->o.runs, b->o.bufs, b->o.packed ? "packed" : "split");
	if (b->o.kick_cost || b->o.stack_ns)
		fprintf(f, "MODELLED: every kick busy-waits %llu ns (a VM "
			"exit), every I/O %llu ns (the rest of an\n          "
			"I/O stack); the figures below are modelled\n",
			(unsigned long long)b->o.kick_cost,
			(unsigned long long)b->o.stack_ns);
	for (int w = 0; w < W_COUNT; w++)
		if (b->o.workloads & (1u << w))
			print_cells(b, (enum workload)w, f);
	print_matrix(b, false, f);
	print_matrix(b, true, f);
	print_seeds(b, f);
}

/* print_json() - the machine-readable report. */
static void print_json(const struct io *b, FILE *f)
{
	json_header(f, "io", b->o.smoke, b->o.runs, &b->m);
	fprintf(f, ",\n  \"time_ms\": %u,\n  \"buffers\": %u,\n  \"batch\": "
		"%u,\n  \"flush_queue\": %u,\n  \"ring\": \"%s\",\n"
		"  \"kick_cost_ns\": %llu,\n  \"stack_ns\": %llu,\n"
		"  \"modelled\": %s,\n  \"results\": [", b->o.time_ms,
		b->o.bufs, b->o.batch, b->o.fq, b->o.packed ? "packed"
							     : "split",
		(unsigned long long)b->o.kick_cost,
		(unsigned long long)b->o.stack_ns,
		b->o.kick_cost || b->o.stack_ns ? "true" : "false");
	for (int k = 0; k < b->ncells; k++) {
		const struct cell *c = &b->cells[k];

		fprintf(f, "%s\n    {\"workload\": \"%s\", \"size\": %u, "
			"\"mode\": \"%s\", \"ios_per_s\": %.1f, "
			"\"ios_per_s_min\": %.1f, \"ios_per_s_max\": %.1f, "
			"\"bytes_per_s\": %.1f, \"pct_of_none\": %.3f, "
			"\"ios_per_cpu_s\": %.1f, \"pct_of_none_cpu\": %.3f, "
			"\"kicks_per_io\": %.4f, \"requests_per_io\": %.4f}",
			k ? "," : "", wl_names[c->w], c->size,
			mode_names[c->m], c->m_ios, c->min_ios, c->max_ios,
			c->m_ios * c->size, c->m_pct, c->m_ios_cpu,
			c->m_pct_cpu, c->m_kicks, c->m_reqs);
	}
	fprintf(f, "\n  ]\n}\n");
}

/* ------------------------------------------------------------------ */
/* Options and set-up                                                 */

/* What `viommu-bench io --help` says the subcommand does. */
static const char about[] =
"An in-process I/O model: per I/O the driver maps a buffer through the "
"reference virtio-iommu driver, the endpoint DMAs through the translation "
"core, the driver consumes the data and unmaps.  Reports I/Os/s, bytes/s "
"and % of the no-IOMMU rate measured in the same run, per mode.";

/* parse_opts() - the command line (after "io") into @o. */
static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const uint32_t def[] = { 64, 256, 1500, 4096, 16384, 65536 };
	static const uint32_t smoke[] = { 64, 4096 };
	static const char *const rings[] = { "split", "packed" };
	uint32_t ring = 1;
	struct bopt t[] = {
		{ BOPT_SMOKE(&o->smoke), .help = "tiny run (well under two "
		  "seconds); numbers not meaningful" },
		{ .name = "--workloads", .type = BOPT_NAMES,
		  .dest = &o->workloads, .names = wl_names, .nnames = W_COUNT,
		  .arg = "LIST", .help = "workloads (default all)" },
		{ .name = "--modes", .type = BOPT_NAMES, .dest = &o->modes,
		  .names = mode_names, .nnames = M_COUNT, .arg = "LIST",
		  .help = "IOMMU modes (default all; none is always measured: "
			  "the baseline)" },
		{ .name = "--sizes", .type = BOPT_LIST, .dest = o->sizes,
		  .count = &o->nsizes, .nmax = MAX_SIZES, .arg = "LIST",
		  .min = 64, .max = MAX_SIZE,
		  .help = "bytes per I/O (default "
			  "64,256,1500,4096,16384,65536)" },
		{ .name = "--batch", .type = BOPT_UINT, .dest = &o->batch,
		  .arg = "N", .min = 1, .max = 128,
		  .help = "I/Os per commit in batched mode (default 16)" },
		{ .name = "--fq", .type = BOPT_UINT, .dest = &o->fq,
		  .arg = "N", .min = 1, .max = MAX_FQ,
		  .help = "deferred flush queue entries (default 256)" },
		{ .name = "--buffers", .type = BOPT_UINT, .dest = &o->bufs,
		  .arg = "N", .min = 16, .max = MAX_BUFS,
		  .help = "buffers the I/Os rotate over (default 256)" },
		{ .name = "--ring", .type = BOPT_NAMES, .dest = &ring,
		  .names = rings, .nnames = 2, .arg = "KIND",
		  .help = "split or packed (default split)" },
		{ .name = "--time-ms", .type = BOPT_UINT, .dest = &o->time_ms,
		  .arg = "N", .min = 1, .max = 60000,
		  .help = "milliseconds per mode, size and run (default 200; "
			  "smoke 2)" },
		{ BOPT_RUNS(&o->runs, BENCH_MAX_RUNS),
		  .help = "runs (default 3; smoke 1)" },
		{ BOPT_KICK_COST(&o->kick_cost) },
		{ .name = "--stack-ns", .type = BOPT_U64, .dest = &o->stack_ns,
		  .arg = "N", .min = 0, .max = 10000000,
		  .help = "MODELLED: busy-wait N ns per I/O (the rest of an "
			  "I/O stack)" },
		{ BOPT_JSON(&o->json), .help = BOPT_JSON_HELP },
		{ 0 }
	};

	o->workloads = (1u << W_COUNT) - 1;
	o->modes = (1u << M_COUNT) - 1;
	o->batch = 16;
	o->fq = 256;
	o->bufs = 256;
	bopts_parse(t, "io", about, argc, argv);
	o->packed = ring == 2;
	o->modes |= 1u << M_NONE;
	if (!bopt_given(t, "--sizes")) {
		o->nsizes = o->smoke ? 2 : 6;
		memcpy(o->sizes, o->smoke ? smoke : def,
		       o->nsizes * sizeof(def[0]));
	}
	if (!bopt_given(t, "--time-ms"))
		o->time_ms = o->smoke ? 2 : 200;
	if (!bopt_given(t, "--runs"))
		o->runs = o->smoke ? 1 : 3;
	if (o->smoke && o->bufs > 32)
		o->bufs = 32;
}

/* setup() - the environment, the buffers and the cells. */
static void setup(struct io *b)
{
	struct venv_config vc = {
		.ram_size = (uint64_t)b->o.bufs * MAX_SIZE + VENV_DRV_SIZE,
		.packed = b->o.packed,
		.queue_size = 256,
		.mode = REFDRV_BATCHED,
	};
	uint64_t s = 0x5eed;

	venv_create(&b->env, &vc);
	b->attached = -1;
	b->wire = malloc(MAX_SIZE);
	b->app = malloc(MAX_SIZE);
	b->npages = (uint32_t)(b->o.bufs * MAX_PAGES);
	b->perm = malloc(b->npages * sizeof(*b->perm));
	b->cells = calloc((size_t)W_COUNT * MAX_SIZES * M_COUNT,
			  sizeof(*b->cells));
	if (!b->wire || !b->app || !b->perm || !b->cells)
		die("out of memory");
	for (uint32_t k = 0; k < b->npages; k++)
		b->perm[k] = k;
	for (uint32_t k = b->npages - 1; k > 0; k--) {
		uint32_t j = (uint32_t)(rng(&s) % (k + 1)), t = b->perm[k];

		b->perm[k] = b->perm[j];
		b->perm[j] = t;
	}
	for (int w = 0; w < W_COUNT; w++)
		for (int z = 0; z < b->o.nsizes; z++)
			for (int m = 0; m < M_COUNT; m++) {
				struct cell *c = &b->cells[b->ncells];

				if (!(b->o.workloads & (1u << w)) ||
				    !(b->o.modes & (1u << m)))
					continue;
				c->w = (enum workload)w;
				c->size = b->o.sizes[z];
				c->m = (enum mode)m;
				b->ncells++;
			}
}

/* cmd_io() - `viommu-bench io`: argv[0] is "io". */
int cmd_io(int argc, char **argv)
{
	static struct io b;
	struct outputs out;

	parse_opts(&b.o, argc, argv);
	outputs_open(&out, b.o.json);
	machine_info(&b.m);
	setup(&b);
	bench_kick_hook.cost_ns = b.o.kick_cost;
	for (int r = 0; r < b.o.runs; r++)
		measure(&b, r);
	bench_kick_hook.cost_ns = 0;
	summarize(&b);
	REPORT_FINISH(&out, &b.m, print_table, print_json, &b);
	venv_destroy(&b.env);
	free(b.wire);
	free(b.app);
	free(b.perm);
	free(b.cells);
	return 0;
}
