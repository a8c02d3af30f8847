/*
 * bench.c - the bench scenario: map/unmap rates and DMA throughput.
 *
 * Each measurement prints one machine-readable line
 *
 *   VIOMMU-BENCH name=NAME size=BYTES count=N ns=TOTAL ns_per_op=X ...
 *
 * map_unmap: VFIO_IOMMU_MAP_DMA + UNMAP_DMA pairs of one buffer (4 KiB to
 * 2 MiB), each pair a virtio-iommu MAP and UNMAP request of the guest
 * driver (plus VFIO's page pinning).  reg_dma: register-mode DMAs of the
 * whole device buffer (RAM -> device).  ring_copy: ring-mode RAM -> RAM
 * copies in batches.  Each runs for --bench-ms milliseconds (edu, whose DMA
 * waits for a 100 ms timer, only a few operations).  Times are the guest's
 * CLOCK_MONOTONIC under TCG: compare runs on the same host only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "guest.h"

#define BENCH_IOVA 0x02000000ull
#define MAX_OPS 1000000u

/* bench_line() - print one VIOMMU-BENCH line. */
static void bench_line(const char *name, size_t size, unsigned count,
		       uint64_t ns, uint64_t bytes)
{
	double secs = (double)ns / 1e9;

	printf("VIOMMU-BENCH name=%s size=%zu count=%u ns=%llu ns_per_op=%llu "
	       "ops_per_s=%.0f MBps=%.1f\n", name, size, count,
	       (unsigned long long)ns,
	       (unsigned long long)(count ? ns / count : 0),
	       secs > 0 ? count / secs : 0.0,
	       secs > 0 ? (double)bytes / secs / 1e6 : 0.0);
	fflush(stdout);
}

/* deadline_passed() - whether @t0 + bench_ms is over. */
static bool deadline_passed(uint64_t t0)
{
	return now_ns() - t0 >= (uint64_t)g_opts->bench_ms * 1000000ull;
}

/* bench_map_one() - map/unmap pairs of one @size buffer. */
static int bench_map_one(struct result *r, struct ctr *c, size_t size)
{
	struct dmabuf b;
	uint64_t t0, done = 0;
	unsigned n = 0;
	int err = 0;

	if (!expect(r, !buf_alloc(&b, size, 2u << 20), "out of memory"))
		return -1;
	t0 = now_ns();
	while (n < MAX_OPS && !deadline_passed(t0)) {
		err = ctr_map(c, b.va, size, BENCH_IOVA, true);
		if (!err)
			err = ctr_unmap(c, BENCH_IOVA, size, &done);
		if (err || done != size)
			break;
		n++;
	}
	bench_line("map_unmap", size, n, now_ns() - t0, 0);
	buf_free(&b);
	return expect(r, !err && n, "map/unmap of %zu bytes failed: %s",
		      size, strerror(-err)) ? 0 : -1;
}

/* bench_reg() - register-mode DMA rate (RAM -> device buffer). */
static void bench_reg(struct result *r, struct eng *e, struct ctr *c)
{
	struct dmabuf s;
	uint64_t t0, bytes = 0;
	unsigned n = 0, max = e->ours ? MAX_OPS : 5;
	uint32_t st;
	int err = 0;

	if (!expect(r, !buf_alloc(&s, e->buf_size, PAGE) &&
		    !buf_map(c, &s, false), "DMA buffer failed"))
		goto out;
	t0 = now_ns();
	while (n < max && (!e->ours || !deadline_passed(t0))) {
		err = eng_to_dev(e, s.iova, 0, e->buf_size, &st);
		if (err)
			break;
		n++;
		bytes += e->buf_size;
	}
	bench_line("reg_dma", e->buf_size, n, now_ns() - t0, bytes);
	expect(r, !err, "register DMA failed: %s", strerror(-err));
out:
	buf_unmap(c, &s);
	buf_free(&s);
}

/* bench_ring_one() - ring copies of @chunk bytes, 4 MiB per batch. */
static void bench_ring_one(struct result *r, struct eng *e, struct ring *ring,
			   struct dmabuf *s, struct dmabuf *d, uint32_t chunk)
{
	static struct ring_desc desc[255];
	static uint32_t st[255];
	uint32_t n = (uint32_t)(s->size / chunk), i;
	uint64_t t0, bytes = 0;
	unsigned batches = 0;
	int err = 0;

	if (n > 255)
		n = 255;
	for (i = 0; i < n; i++)
		desc[i] = (struct ring_desc){ .src = s->iova + i * chunk,
					      .dst = d->iova + i * chunk,
					      .len = chunk };
	t0 = now_ns();
	while (batches < MAX_OPS && !deadline_passed(t0)) {
		err = ring_run(e, ring, desc, n, st);
		if (err || st[0] != RING_DONE || st[n - 1] != RING_DONE)
			break;
		batches++;
		bytes += (uint64_t)n * chunk;
	}
	bench_line("ring_copy", chunk, batches * n, now_ns() - t0, bytes);
	if (expect(r, !err && batches, "ring copies of %u bytes failed",
		   chunk) &&
	    expect(r, !memcmp(s->va, d->va, (size_t)n * chunk),
		   "ring copy data differs"))
		r->bytes_verified += (uint64_t)n * chunk;
}

/* bench_ring() - ring-mode throughput for a few chunk sizes (ours). */
static void bench_ring(struct result *r, struct eng *e, struct ctr *c)
{
	static const uint32_t chunks[] = { 4096, 65536, 1u << 20 };
	struct dmabuf s, d;
	struct ring ring;
	size_t size = 4u << 20;
	unsigned i;

	memset(&s, 0, sizeof(s));
	memset(&d, 0, sizeof(d));
	if (!expect(r, !ring_setup(e, c, &ring, 256), "ring setup failed"))
		goto out;
	if (!expect(r, !buf_alloc(&s, size, 2u << 20) &&
		    !buf_alloc(&d, size, 2u << 20) && !buf_map(c, &s, false) &&
		    !buf_map(c, &d, true), "DMA buffers failed"))
		goto out;
	fill_pattern(s.va, size, g_opts->seed + 31);
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
		bench_ring_one(r, e, &ring, &s, &d, chunks[i]);
out:
	buf_unmap(c, &s);
	buf_unmap(c, &d);
	buf_free(&s);
	buf_free(&d);
	ring_teardown(e, c, &ring);
}

/* sc_bench() - map/unmap pairs 4 KiB..2 MiB, then DMA throughput. */
int sc_bench(struct result *r)
{
	static const size_t sizes[] = { 4096, 16384, 65536, 262144, 1u << 20,
					2u << 20 };
	struct eng e[MAX_ENGINES];
	struct ctr c;
	unsigned i;

	if (open_engines(r, e, 1) < 0)
		return 0;
	if (!expect(r, !ctr_open(&c), "cannot open /dev/vfio/vfio"))
		return 0;
	if (attach_engine(r, &c, &e[0]))
		goto out;
	res_kv(r, "engine", "%s", eng_kind(&e[0]));
	res_kv(r, "bench_ms", "%u", g_opts->bench_ms);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (bench_map_one(r, &c, sizes[i]))
			break;
	bench_reg(r, &e[0], &c);
	if (e[0].ours)
		bench_ring(r, &e[0], &c);
out:
	eng_close(&e[0]);
	ctr_close(&c);
	return 0;
}
