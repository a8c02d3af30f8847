/*
 * bench.c - the bench scenario: map/unmap rates and DMA throughput.
 *
 * Each measurement prints one machine-readable line
 *
 *   VIOMMU-BENCH name=NAME size=BYTES count=N ns=TOTAL ns_per_op=X
 *                ops_per_s=R MBps=B iommu=translated|bypass [segs=N]
 *
 * (on one line; more key=value fields may follow in later versions, so a
 * parser keeps unknown keys).  The buffers are transparent huge pages: the
 * kernel turns THP off in guests under 512 MiB (ours has 512 MiB less the
 * firmware's share), so the scenario switches it to "madvise" and asks for
 * huge pages with MADV_HUGEPAGE.  Measurements:
 *
 *   map_unmap  VFIO_IOMMU_MAP_DMA + UNMAP_DMA pairs of one buffer (4 KiB
 *              to 2 MiB), each pair a virtio-iommu MAP and UNMAP request of
 *              the guest driver plus VFIO's page pinning.  The buffer is a
 *              prefix of one transparent huge page, so it is physically
 *              contiguous and VFIO sends the device one MAP and one UNMAP
 *              per pair whatever the size; segs= is the number of
 *              physically contiguous runs found (through pagemap), i.e.
 *              the MAP requests per pair: 1 unless huge pages failed.
 *   reg_dma    register-mode DMAs of the whole device buffer (RAM ->
 *              device); edu, whose DMA waits for a 100 ms timer, does a
 *              few operations only.
 *   mmio_write posted register writes (the liveness register, no side
 *              effect) from guest user space through the VFIO mapping of
 *              BAR0: what one doorbell costs the guest.  Over vfio-user
 *              QEMU posts the write (no reply awaited); over
 *              x-pci-proxy-dev every write waits for our reply.  The
 *              count ends with one read, so writes still queued are paid
 *              for inside the measurement.
 *   mmio_read  reads of the same register: one full round trip to the
 *              device process each.
 *   ring_copy  ring-mode RAM -> RAM copies (ours only) in batches of up
 *              to 127 entries of size= bytes (4 KiB, 64 KiB, 1 MiB) from a
 *              4 MiB source to a 4 MiB destination (both huge-page
 *              backed), the ring in one page; every slice is verified.
 *              iommu=translated: the engine is in a VFIO domain, buffers
 *              and ring mapped once (every access of the engine is
 *              translated); iommu=bypass: the boot had
 *              iommu.passthrough=1, the engine's default domain is
 *              identity and it is driven through sysfs with
 *              guest-physical addresses.  Same buffers, chunks and batches
 *              in both.  The time is cut into RING_SLICES slices per chunk
 *              size, taken in turn.
 *
 * In a normal boot: map_unmap per size, reg_dma, then (ours) ring_copy
 * translated.  In a passthrough boot (ours): ring_copy on two engines at
 * once, interleaved slice by slice (the side order alternating), engine 1
 * translated through VFIO and engine 0 bypassed: the two figures of that
 * boot share its machine conditions and compare directly.  Each
 * measurement runs for --bench-ms milliseconds after a short untimed
 * warm-up.  The sizes of map_unmap come from the kernel command line,
 * viommu.bench_sizes=BYTES,BYTES,... (4 KiB multiples up to 2 MiB; default
 * 4K,16K,64K,256K,1M,2M).  Times are the guest's CLOCK_MONOTONIC under
 * TCG: compare runs on the same host only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "guest.h"

#define BENCH_IOVA 0x02000000ull
#define MAX_OPS 1000000u
#define HUGE (2ul << 20)
#define MAX_SIZES 16
#define WARMUP 16
#define RING_ENTRIES 128u   /* 4 KiB: fits the one page bypass allows */
#define RING_BUF (4ul << 20)
#define RING_SLICES 5
#define NCHUNKS 3

/* Ring-mode chunk sizes (bench/guest.c on the host knows them too). */
static const uint32_t chunks[NCHUNKS] = { 4096, 65536, 1u << 20 };

/* The sizes and their count, from the kernel command line. */
struct sizes {
	size_t v[MAX_SIZES];
	unsigned n;
};

/* bench_line() - print one VIOMMU-BENCH line. */
static void bench_line(const char *name, size_t size, unsigned count,
		       uint64_t ns, uint64_t bytes, const char *iommu,
		       int segs)
{
	double secs = (double)ns / 1e9;
	char extra[32] = "";

	if (segs >= 0)
		snprintf(extra, sizeof(extra), " segs=%d", segs);
	printf("VIOMMU-BENCH name=%s size=%zu count=%u ns=%llu ns_per_op=%llu "
	       "ops_per_s=%.0f MBps=%.1f iommu=%s%s\n", name, size, count,
	       (unsigned long long)ns,
	       (unsigned long long)(count ? ns / count : 0),
	       secs > 0 ? count / secs : 0.0,
	       secs > 0 ? (double)bytes / secs / 1e6 : 0.0, iommu, extra);
	fflush(stdout);
}

/* deadline_passed() - whether @t0 + bench_ms is over. */
static bool deadline_passed(uint64_t t0)
{
	return now_ns() - t0 >= (uint64_t)g_opts->bench_ms * 1000000ull;
}

/* parse_sizes() - a comma-separated byte list; -EINVAL if malformed. */
static int parse_sizes(const char *s, struct sizes *out)
{
	char *end;

	out->n = 0;
	while (*s && *s != ' ' && *s != '\n') {
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || !v || v % PAGE || v > HUGE ||
		    out->n == MAX_SIZES)
			return -EINVAL;
		out->v[out->n++] = v;
		s = *end == ',' ? end + 1 : end;
	}
	return out->n ? 0 : -EINVAL;
}

/*
 * bench_sizes() - the map/unmap sizes: viommu.bench_sizes= from
 * /proc/cmdline, or the default list.
 */
static int bench_sizes(struct sizes *out)
{
	static const size_t def[] = { 4096, 16384, 65536, 262144, 1u << 20,
				      2u << 20 };
	char line[4096];
	const char *p;
	unsigned i;

	out->n = sizeof(def) / sizeof(def[0]);
	for (i = 0; i < out->n; i++)
		out->v[i] = def[i];
	if (read_file_str("/proc/cmdline", line, sizeof(line)))
		return 0;
	p = strstr(line, "viommu.bench_sizes=");
	if (!p)
		return 0;
	return parse_sizes(p + strlen("viommu.bench_sizes="), out);
}

/* phys_runs() - physically contiguous runs of [va, va+size); -1 unknown. */
static int phys_runs(const uint8_t *va, size_t size)
{
	uint64_t pa, prev = 0;
	size_t off;
	int runs = 0;

	for (off = 0; off < size; off += PAGE) {
		if (virt_to_phys(va + off, &pa))
			return -1;
		if (!off || pa != prev + PAGE)
			runs++;
		prev = pa;
	}
	return runs;
}

#define THP_ENABLED "/sys/kernel/mm/transparent_hugepage/enabled"

/* thp_allow() - let MADV_HUGEPAGE regions have huge pages; was it off? */
static bool thp_allow(void)
{
	char cur[128];

	if (read_file_str(THP_ENABLED, cur, sizeof(cur)) ||
	    !strstr(cur, "[never]"))
		return false;
	return !write_file_str(THP_ENABLED, "madvise");
}

/*
 * huge_alloc() - @size bytes (a multiple of 2 MiB) of anonymous memory on
 * 2 MiB boundaries, advised huge, populated and locked; freed with
 * buf_free().
 */
static int huge_alloc(struct dmabuf *b, size_t size)
{
	uintptr_t p;

	memset(b, 0, sizeof(*b));
	b->raw_size = size + HUGE;
	b->raw = mmap(NULL, b->raw_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->raw == MAP_FAILED) {
		b->raw = NULL;
		return -errno;
	}
	p = ((uintptr_t)b->raw + HUGE - 1) & ~(uintptr_t)(HUGE - 1);
	b->va = (uint8_t *)p;
	b->size = size;
	madvise(b->va, size, MADV_HUGEPAGE);
	memset(b->va, 0, size);
	mlock(b->va, size);
	return 0;
}

/* --- map/unmap -------------------------------------------------------- */

/* map_pair() - one MAP_DMA + UNMAP_DMA of @size bytes at @va. */
static int map_pair(struct ctr *c, void *va, size_t size)
{
	uint64_t done = 0;
	int err = ctr_map(c, va, size, BENCH_IOVA, true);

	if (!err)
		err = ctr_unmap(c, BENCH_IOVA, size, &done);
	if (!err && done != size)
		err = -EIO;
	return err;
}

/* bench_map_one() - map/unmap pairs of the first @size bytes of @b. */
static int bench_map_one(struct result *r, struct ctr *c, struct dmabuf *b,
			 size_t size)
{
	uint64_t t0;
	unsigned n = 0, i;
	int err = 0, segs = phys_runs(b->va, size);

	for (i = 0; i < WARMUP && !err; i++)
		err = map_pair(c, b->va, size);
	t0 = now_ns();
	while (!err && n < MAX_OPS && !deadline_passed(t0)) {
		err = map_pair(c, b->va, size);
		if (!err)
			n++;
	}
	bench_line("map_unmap", size, n, now_ns() - t0, 0, "translated",
		   segs);
	return expect(r, !err && n, "map/unmap of %zu bytes failed: %s",
		      size, strerror(-err)) ? 0 : -1;
}

/* bench_map() - map/unmap pairs for every size, one huge-page buffer. */
static void bench_map(struct result *r, struct ctr *c,
		      const struct sizes *sz)
{
	struct dmabuf b;
	unsigned i;

	if (!expect(r, !huge_alloc(&b, HUGE), "out of memory"))
		return;
	res_kv(r, "huge_page", "%s", phys_runs(b.va, HUGE) == 1 ? "yes" :
	       "no");
	for (i = 0; i < sz->n; i++)
		if (bench_map_one(r, c, &b, sz->v[i]))
			break;
	buf_free(&b);
}

/* --- register-mode DMA ------------------------------------------------ */

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
	bench_line("reg_dma", e->buf_size, n, now_ns() - t0, bytes,
		   "translated", -1);
	expect(r, !err, "register DMA failed: %s", strerror(-err));
out:
	buf_unmap(c, &s);
	buf_free(&s);
}

/* --- register access cost ------------------------------------------- */

/* bench_mmio() - posted writes, then reads, of a side-effect-free register. */
static void bench_mmio(struct result *r, struct eng *e)
{
	volatile uint32_t sink = 0;
	unsigned n = 0;
	uint64_t t0;

	for (unsigned i = 0; i < WARMUP; i++)
		wr32(e, 0x04, i);
	(void)rd32(e, 0x04);
	t0 = now_ns();
	while (n < MAX_OPS && !deadline_passed(t0)) {
		for (unsigned i = 0; i < 64; i++)
			wr32(e, 0x04, n + i);
		n += 64;
	}
	sink = rd32(e, 0x04); /* drains writes still in flight */
	bench_line("mmio_write", 4, n, now_ns() - t0, 0, "none", -1);
	expect(r, sink == ~(n - 1), "liveness register read 0x%x after "
	       "writing 0x%x", sink, n - 1);
	n = 0;
	t0 = now_ns();
	while (n < MAX_OPS && !deadline_passed(t0)) {
		sink += rd32(e, 0x04);
		n++;
	}
	bench_line("mmio_read", 4, n, now_ns() - t0, 0, "none", -1);
}

/* --- ring mode -------------------------------------------------------- */

/*
 * One side of a ring measurement: an engine driven either through VFIO
 * (translated: buffers and ring at IOVAs) or through sysfs (bypass:
 * guest-physical addresses), its buffers, ring, descriptors per chunk
 * size and the time and entries accumulated per chunk size.
 */
struct ringside {
	struct eng *e;
	struct ctr *c;          /* NULL: bypass */
	struct dmabuf s, d;
	uint64_t *spa, *dpa;    /* bypass: GPA of each page */
	struct ring ring;
	bool ready;
	struct ring_desc desc[NCHUNKS][RING_ENTRIES - 1];
	uint32_t n[NCHUNKS];    /* descriptors per batch; 0: chunk skipped */
	uint64_t ns[NCHUNKS], entries[NCHUNKS];
};

/* chunk_addr() - device address of byte @off of a buffer (IOVA / GPA). */
static int chunk_addr(const struct ringside *w, bool dst, size_t off,
		      uint32_t len, uint64_t *addr)
{
	const uint64_t *pa = dst ? w->dpa : w->spa;
	size_t first = off / PAGE, i;

	if (w->c) {
		*addr = (dst ? w->d.iova : w->s.iova) + off;
		return 0;
	}
	for (i = 1; i < len / PAGE; i++)
		if (pa[first + i] != pa[first] + i * PAGE)
			return -ERANGE;
	*addr = pa[first] + off % PAGE;
	return 0;
}

/* build_desc() - the descriptors of chunk size @k; -ERANGE if scattered. */
static int build_desc(struct ringside *w, unsigned k)
{
	uint32_t i, chunk = chunks[k], n = (uint32_t)(RING_BUF / chunk);
	struct ring_desc *desc = w->desc[k];
	int err = 0;

	if (n > RING_ENTRIES - 1)
		n = RING_ENTRIES - 1;
	for (i = 0; i < n && !err; i++) {
		desc[i] = (struct ring_desc){ .len = chunk };
		err = chunk_addr(w, false, (size_t)i * chunk, chunk,
				 &desc[i].src);
		if (!err)
			err = chunk_addr(w, true, (size_t)i * chunk, chunk,
					 &desc[i].dst);
	}
	w->n[k] = err ? 0 : n;
	return err;
}

/* page_addrs() - the GPA of every page of @b into a new array. */
static uint64_t *page_addrs(const struct dmabuf *b)
{
	size_t n = b->size / PAGE, i;
	uint64_t *pa = calloc(n, sizeof(*pa));

	for (i = 0; pa && i < n; i++)
		if (virt_to_phys(b->va + i * PAGE, &pa[i])) {
			free(pa);
			return NULL;
		}
	return pa;
}

/* side_buffers() - buffers, mapped in w->c (translated) or their GPAs. */
static int side_buffers(struct result *r, struct ringside *w)
{
	if (!expect(r, !huge_alloc(&w->s, RING_BUF) &&
		    !huge_alloc(&w->d, RING_BUF), "out of memory"))
		return -1;
	fill_pattern(w->s.va, RING_BUF, g_opts->seed + 31);
	if (phys_runs(w->s.va, RING_BUF) > 2 ||
	    phys_runs(w->d.va, RING_BUF) > 2)
		res_kv(r, "ring_huge_pages", "no");
	if (!w->c) {
		w->spa = page_addrs(&w->s);
		w->dpa = page_addrs(&w->d);
		return expect(r, w->spa && w->dpa, "pagemap unreadable") ?
			0 : -1;
	}
	return expect(r, !buf_map(w->c, &w->s, false) &&
		      !buf_map(w->c, &w->d, true), "DMA buffers failed") ?
		0 : -1;
}

/* side_setup() - buffers, ring and descriptors of one side. */
static int side_setup(struct result *r, struct ringside *w)
{
	unsigned k;

	if (side_buffers(r, w))
		return -1;
	if (!expect(r, !ring_setup(w->e, w->c, &w->ring, RING_ENTRIES),
		    "%s: ring setup failed", w->e->bdf))
		return -1;
	for (k = 0; k < NCHUNKS; k++)
		if (build_desc(w, k))
			logmsg("ring_copy %u: buffer not physically contiguous,"
			       " skipped", chunks[k]);
	w->ready = true;
	return 0;
}

/* side_teardown() - undo side_setup(). */
static void side_teardown(struct ringside *w)
{
	ring_teardown(w->e, w->c, &w->ring);
	if (w->c) {
		buf_unmap(w->c, &w->s);
		buf_unmap(w->c, &w->d);
	}
	buf_free(&w->s);
	buf_free(&w->d);
	free(w->spa);
	free(w->dpa);
}

/* ring_batch() - one doorbell of chunk size @k; 0 if every entry is done. */
static int ring_batch(struct ringside *w, unsigned k)
{
	static uint32_t st[RING_ENTRIES - 1];
	uint32_t n = w->n[k], i;
	int err = ring_run(w->e, &w->ring, w->desc[k], n, st);

	for (i = 0; !err && i < n; i++)
		if (st[i] != RING_DONE)
			err = -EIO;
	return err;
}

/*
 * ring_slice() - batches of chunk size @k for @ns nanoseconds, timed and
 * added to the side's totals; the copy is verified afterwards.
 */
static int ring_slice(struct result *r, struct ringside *w, unsigned k,
		      uint64_t ns)
{
	size_t bytes = (size_t)w->n[k] * chunks[k];
	uint64_t t0, t;
	int err = 0;

	memset(w->d.va, 0, bytes);
	t0 = now_ns();
	do {
		err = ring_batch(w, k);
		if (!err)
			w->entries[k] += w->n[k];
		t = now_ns();
	} while (!err && t - t0 < ns);
	w->ns[k] += t - t0;
	if (!expect(r, !err, "%s: ring copies of %u bytes failed: %s",
		    w->e->bdf, chunks[k], strerror(-err)) ||
	    !expect(r, !memcmp(w->s.va, w->d.va, bytes), "%s: ring copy "
		    "data differs (%u-byte chunks)", w->e->bdf, chunks[k]))
		return -1;
	r->bytes_verified += bytes;
	return 0;
}

/*
 * ring_compare() - ring throughput of @nw sides (one, or translated and
 * bypass), interleaved: RING_SLICES rounds of a slice of every chunk size
 * on every side, the side order alternating, after one warm-up batch each.
 */
static void ring_compare(struct result *r, struct ringside *w, int nw)
{
	uint64_t slice = (uint64_t)g_opts->bench_ms * 1000000ull / RING_SLICES;
	int s, i, err = 0;
	unsigned k;

	for (i = 0; i < nw && !err; i++)
		for (k = 0; k < NCHUNKS && !err; k++)
			if (w[i].n[k])
				err = ring_batch(&w[i], k);
	if (!expect(r, !err, "ring warm-up failed: %s", strerror(-err)))
		return;
	for (s = 0; s < RING_SLICES && !err; s++)
		for (k = 0; k < NCHUNKS && !err; k++)
			for (i = 0; i < nw && !err; i++) {
				struct ringside *x = &w[s % 2 ? nw - 1 - i : i];

				if (x->n[k])
					err = ring_slice(r, x, k, slice);
			}
	for (i = 0; i < nw && !err; i++)
		for (k = 0; k < NCHUNKS; k++)
			if (w[i].n[k])
				bench_line("ring_copy", chunks[k],
					   (unsigned)w[i].entries[k],
					   w[i].ns[k], w[i].entries[k] *
					   chunks[k], w[i].c ? "translated" :
					   "bypass", -1);
}

/* bench_ring() - set up the sides (NULL ctr: bypass), compare, tear down. */
static void bench_ring(struct result *r, struct eng **e, struct ctr **c,
		       int nw)
{
	struct ringside *w = calloc((size_t)nw, sizeof(*w));
	int i, ok = 1;

	if (!expect(r, w != NULL, "out of memory"))
		return;
	for (i = 0; i < nw && ok; i++) {
		w[i].e = e[i];
		w[i].c = c[i];
		ok = !side_setup(r, &w[i]);
	}
	if (ok)
		ring_compare(r, w, nw);
	for (i = 0; i < nw; i++)
		if (w[i].e)
			side_teardown(&w[i]);
	free(w);
}

/* --- scenario --------------------------------------------------------- */

/*
 * bench_bypass() - identity default domains: engine 0 by GPA through
 * sysfs (bypass) against engine 1 through VFIO (translated), interleaved.
 */
static void bench_bypass(struct result *r, struct eng *e, int n)
{
	struct eng *es[2] = { &e[0], &e[1] };
	struct ctr c, *cs[2] = { NULL, &c };
	int err = eng_open_sysfs(&e[0]), nw = 1;

	if (!expect(r, !err, "%s: sysfs open failed: %s", e[0].bdf,
		    strerror(-err)))
		return;
	res_kv(r, "engine", "%s", eng_kind(&e[0]));
	if (!e[0].ours) {
		res_skip(r, "bypass: edu has no ring mode");
		return;
	}
	if (!expect(r, !ctr_open(&c), "cannot open /dev/vfio/vfio"))
		return;
	if (n >= 2 && !attach_engine(r, &c, &e[1])) {
		es[0] = &e[1];
		cs[0] = &c;
		es[1] = &e[0];
		cs[1] = NULL;
		nw = 2;
	} else {
		cs[0] = NULL;
		logmsg("bypass: one engine only, no translated side");
	}
	bench_ring(r, es, cs, nw);
	eng_close(&e[1]);
	ctr_close(&c);
}

/* bench_translated() - a VFIO domain: map/unmap, register DMA, rings. */
static void bench_translated(struct result *r, struct eng *e,
			     const struct sizes *sz)
{
	struct ctr c, *cp = &c;

	if (!expect(r, !ctr_open(&c), "cannot open /dev/vfio/vfio"))
		return;
	if (attach_engine(r, &c, e))
		goto out;
	res_kv(r, "engine", "%s", eng_kind(e));
	bench_map(r, &c, sz);
	bench_mmio(r, e);
	bench_reg(r, e, &c);
	if (e->ours)
		bench_ring(r, &e, &cp, 1);
out:
	eng_close(e);
	ctr_close(&c);
}

/*
 * sc_bench() - in a translated boot map/unmap pairs, register DMA and ring
 * throughput; in a passthrough boot ring throughput by GPA against VFIO.
 */
int sc_bench(struct result *r)
{
	struct eng e[MAX_ENGINES];
	struct sizes sz;
	char type[32] = "?";
	int n = open_engines(r, e, 1);

	if (n < 0)
		return 0;
	if (!expect(r, !bench_sizes(&sz), "bad viommu.bench_sizes= (4 KiB "
		    "multiples up to 2 MiB, comma-separated bytes)"))
		return 0;
	/* The group exists once a driver bound (ACPI VIOT devices). */
	eng_bind_vfio(&e[0]);
	group_type(e[0].group, type, sizeof(type));
	res_kv(r, "domain", "%s", type);
	res_kv(r, "bench_ms", "%u", g_opts->bench_ms);
	if (thp_allow())
		res_kv(r, "thp", "madvise");
	if (!strcmp(type, "identity"))
		bench_bypass(r, e, n);
	else
		bench_translated(r, &e[0], &sz);
	eng_close(&e[0]);
	return 0;
}
