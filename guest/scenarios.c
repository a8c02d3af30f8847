/*
 * scenarios.c - probe, dma, readonly, unmapped, isolation.
 *
 * Each scenario opens what it needs, checks behaviour with expect() (every
 * check can fail), adds key=value figures to its result and closes
 * everything again, so scenarios can run in any order in one boot.  Data
 * is verified byte for byte against a seeded pattern; a refused DMA must
 * leave every byte of guest memory as it was.  Against QEMU's edu (the
 * peer) a refused DMA is silent (no error register), so only the "no byte
 * changed" half of such checks applies.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

#define MSI_START 0xfee00000ull
#define MSI_END 0xfeefffffull
#define CANARY 0xa5

/* eng_kind() - "ours" or "edu". */
const char *eng_kind(const struct eng *e)
{
	return e->ours ? "ours" : "edu";
}

/* group_type() - /sys/kernel/iommu_groups/N/type ("DMA", "identity"...). */
int group_type(int group, char *buf, size_t size)
{
	char path[96];

	snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%d/type", group);
	return read_file_str(path, buf, size);
}

/* open_engines() - find at least @want engines; fail the scenario if not. */
int open_engines(struct result *r, struct eng *e, int want)
{
	int n = eng_find_all(e, MAX_ENGINES);

	if (n < want) {
		res_fail(r, "need %d DMA engine(s) (1234:11e8), found %d", want,
			 n < 0 ? 0 : n);
		return -1;
	}
	return n;
}

/* attach_engine() - open @e through VFIO in container @c. */
int attach_engine(struct result *r, struct ctr *c, struct eng *e)
{
	int err = ctr_add(c, e);

	if (err) {
		res_fail(r, "%s (group %d): VFIO open failed: %s", e->bdf,
			 e->group, strerror(-err));
		return err;
	}
	if (g_opts->verbose)
		logmsg("%s: group %d, %s engine, buffer %u bytes", e->bdf,
		       e->group, eng_kind(e), e->buf_size);
	return 0;
}

/* all_equal() - index of the first byte of @p that is not @v, or @n. */
static size_t all_equal(const uint8_t *p, size_t n, uint8_t v)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != v)
			return i;
	return n;
}

/*
 * roundtrip() - pattern @len bytes at src+soff, DMA them into the device
 * buffer and back out to dst+doff; check the copy and that no other byte
 * of dst changed.  Return 0 if everything matched.
 */
int roundtrip(struct result *r, struct eng *e, struct dmabuf *src,
	      size_t soff, struct dmabuf *dst, size_t doff, uint32_t len,
	      uint64_t seed)
{
	uint32_t st = 0;
	size_t at;
	int err;

	fill_pattern(src->va + soff, len, seed);
	memset(dst->va, CANARY, dst->size);
	err = eng_to_dev(e, src->iova + soff, 0, len, &st);
	if (!expect(r, !err, "%s: DMA of %u bytes from IOVA 0x%llx: %s "
		    "(EXT_STATUS 0x%x)", e->bdf, len,
		    (unsigned long long)(src->iova + soff), strerror(-err), st))
		return -1;
	err = eng_to_ram(e, 0, dst->iova + doff, len, &st);
	if (!expect(r, !err, "%s: DMA of %u bytes to IOVA 0x%llx: %s "
		    "(EXT_STATUS 0x%x)", e->bdf, len,
		    (unsigned long long)(dst->iova + doff), strerror(-err), st))
		return -1;
	at = first_diff(dst->va + doff, src->va + soff, len);
	if (!expect(r, at == len, "%s: %u-byte copy differs at byte %zu: "
		    "0x%02x, want 0x%02x", e->bdf, len, at,
		    at < len ? dst->va[doff + at] : 0,
		    at < len ? src->va[soff + at] : 0))
		return -1;
	if (!expect(r, all_equal(dst->va, doff, CANARY) == doff &&
		    all_equal(dst->va + doff + len, dst->size - doff - len,
			      CANARY) == dst->size - doff - len,
		    "%s: DMA wrote outside [%zu, %zu) of the buffer", e->bdf,
		    doff, doff + len))
		return -1;
	r->bytes_verified += len;
	return 0;
}

/*
 * expect_refused() - check the outcome of a DMA that the IOMMU must refuse:
 * ours reports -EIO with the faulting IOVA and reason; edu says nothing.
 */
static void expect_refused(struct result *r, struct eng *e, int err,
			   uint64_t iova, uint32_t reason, uint32_t access,
			   const char *what)
{
	uint64_t addr;
	uint32_t info;

	if (!expect(r, err != -ETIMEDOUT, "%s: %s: DMA never completed",
		    e->bdf, what) || !e->ours)
		return;
	if (!expect(r, err == -EIO, "%s: %s was not refused", e->bdf, what))
		return;
	eng_fault(e, &addr, &info);
	expect(r, addr == iova, "%s: %s: fault address 0x%llx, want 0x%llx",
	       e->bdf, what, (unsigned long long)addr,
	       (unsigned long long)iova);
	/* Behind an SMMUv3 or VT-d model the core reports every refusal as
	 * the model's walker's (STAGE1); the model's own event type or fault
	 * reason is checked by viommu-run in the server's counts. */
	if ((info >> 8) == FAULT_STAGE1 && (cmdline_has("viommu.iommu=smmuv3")
	    || cmdline_has("viommu.iommu=vtd")))
		reason = FAULT_STAGE1;
	expect(r, (info >> 8) == reason && (info & 0xff) == access,
	       "%s: %s: fault info 0x%x, want reason %u access %u", e->bdf,
	       what, info, reason, access);
}

/* --- probe ---------------------------------------------------------- */

/* kmsg_find() - copy the first kernel log message containing @needle. */
int kmsg_find(const char *needle, char *out, size_t size)
{
	char rec[2048];
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ssize_t n;
	char *msg;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || errno == EPIPE) {
		if (n <= 0)
			continue;
		rec[n] = 0;
		msg = strchr(rec, ';');
		if (!msg || !strstr(msg, needle))
			continue;
		msg[strcspn(msg, "\n")] = 0;
		snprintf(out, size, "%s", msg + 1);
		close(fd);
		return 0;
	}
	close(fd);
	return -ENOENT;
}

/*
 * wait_fault_log_window() - let the guest's virtio-iommu fault log line
 * through: Linux prints "fault from EP" with dev_err_ratelimited() (10
 * lines per 5 s), so a scenario that checks for its line right after
 * another scenario's faults (netfault, faultlog) can find it suppressed.
 * Sleeps until 5.5 s have passed since the last such line or the last
 * "callbacks suppressed" report, read from /dev/kmsg's timestamps
 * (CLOCK_MONOTONIC, microseconds); at most 5.5 s.
 */
void wait_fault_log_window(void)
{
	char rec[2048];
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	unsigned long long last = 0, ts, now;
	struct timespec t;
	ssize_t n;

	if (fd < 0)
		return;
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || errno == EPIPE) {
		if (n <= 0)
			continue;
		rec[n] = 0;
		if ((strstr(rec, "fault from EP") ||
		     strstr(rec, "callbacks suppressed")) &&
		    sscanf(rec, "%*u,%*u,%llu", &ts) == 1 && ts > last)
			last = ts;
	}
	close(fd);
	if (!last || clock_gettime(CLOCK_MONOTONIC, &t))
		return;
	now = (unsigned long long)t.tv_sec * 1000000ull +
	      (unsigned long long)t.tv_nsec / 1000;
	if (now < last + 5500000ull)
		usleep((useconds_t)(last + 5500000ull - now));
}

/* probe_iommu() - a /sys/class/iommu device driven by virtio_iommu. */
static int probe_iommu(struct result *r, char *name, size_t size)
{
	char path[PATH_MAX], drv[64];
	DIR *d = opendir("/sys/class/iommu");
	struct dirent *de;
	int found = 0;

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path),
			 "/sys/class/iommu/%s/device/driver", de->d_name);
		if (readlink(path, drv, sizeof(drv) - 1) > 0 &&
		    strstr(drv, "virtio_iommu") && !found++)
			snprintf(name, size, "%.*s", (int)size - 1,
				 de->d_name);
	}
	if (d)
		closedir(d);
	expect(r, found == 1, "want one virtio_iommu IOMMU device in "
	       "/sys/class/iommu, found %d", found);
	return found == 1 ? 0 : -1;
}

/* probe_features() - negotiated virtio features of the IOMMU device. */
static void probe_features(struct result *r, const char *iommu)
{
	char path[PATH_MAX], bits[96];
	uint64_t f = 0;
	size_t i;

	snprintf(path, sizeof(path), "/sys/class/iommu/%s/device/features",
		 iommu);
	if (!expect(r, !read_file_str(path, bits, sizeof(bits)),
		    "cannot read %s", path))
		return;
	for (i = 0; bits[i] && i < 64; i++)
		if (bits[i] == '1')
			f |= 1ull << i;
	res_kv(r, "features", "0x%llx", (unsigned long long)f);
	/* VIRTIO_IOMMU_F_MAP_UNMAP (2) and F_PROBE (4); VERSION_1 (32). */
	expect(r, (f & (1ull << 2)) && (f & (1ull << 32)),
	       "MAP_UNMAP or VERSION_1 not negotiated (0x%llx)",
	       (unsigned long long)f);
	expect(r, f & (1ull << 4), "PROBE not negotiated: no MSI region "
	       "from PROBE (features 0x%llx)", (unsigned long long)f);
}

/* probe_resv() - the group's reserved regions hold the x86 MSI window. */
static void probe_resv(struct result *r, const struct eng *e)
{
	char path[96], line[160], type[32];
	unsigned long long s, t;
	int msi = 0;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/kernel/iommu_groups/%d/reserved_regions", e->group);
	f = fopen(path, "r");
	if (!expect(r, f != NULL, "%s: no %s", e->bdf, path))
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx %llx %31s", &s, &t, type) == 3 &&
		    s == MSI_START && t == MSI_END && !strcmp(type, "msi"))
			msi++;
	fclose(f);
	expect(r, msi == 1, "%s: group %d reserved_regions lacks "
	       "0x%llx-0x%llx msi (from PROBE)", e->bdf, e->group, MSI_START,
	       MSI_END);
}

/* probe_member() - the engine is listed under the IOMMU device. */
static void probe_member(struct result *r, const struct eng *e,
			 const char *iommu)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "/sys/class/iommu/%s/devices/%s", iommu,
		 e->bdf);
	expect(r, access(path, F_OK) == 0, "%s not an endpoint of %s",
	       e->bdf, iommu);
}

/* probe_groups() - every engine has its own group, a member of the IOMMU. */
static void probe_groups(struct result *r, struct eng *e, int n,
			 const char *iommu)
{
	char list[256] = "", type[32] = "?";
	size_t len = 0;
	int i, j;

	for (i = 0; i < n; i++) {
		/* ACPI (VIOT) devices join the IOMMU when a driver binds. */
		expect(r, !eng_bind_vfio(&e[i]), "%s: cannot bind vfio-pci",
		       e[i].bdf);
		expect(r, e[i].group >= 0, "%s has no IOMMU group", e[i].bdf);
		for (j = 0; j < i; j++)
			expect(r, e[i].group != e[j].group,
			       "%s and %s share group %d", e[i].bdf, e[j].bdf,
			       e[i].group);
		if (e[i].group < 0)
			continue;
		group_type(e[i].group, type, sizeof(type));
		len += snprintf(list + len, sizeof(list) - len, "%s%s:%d:%s",
				i ? "," : "", e[i].bdf + 5, e[i].group, type);
		probe_member(r, &e[i], iommu);
		probe_resv(r, &e[i]);
	}
	res_kv(r, "groups", "%s", list);
}

/* probe_vfio() - VFIO's view: page sizes and IOVA ranges (MSI hole). */
static void probe_vfio(struct result *r, struct eng *e)
{
	uint64_t ranges[32];
	char list[512] = "";
	struct ctr c;
	size_t len = 0;
	int n = 0, i, hole = 1, covers = 0;

	if (!expect(r, !ctr_open(&c), "cannot open /dev/vfio/vfio"))
		return;
	if (attach_engine(r, &c, e))
		goto out;
	res_kv(r, "engine", "%s", eng_kind(e));
	res_kv(r, "pgsizes", "0x%llx", (unsigned long long)c.pgsizes);
	expect(r, c.pgsizes & PAGE, "4 KiB pages not supported (0x%llx)",
	       (unsigned long long)c.pgsizes);
	if (!expect(r, !ctr_iova_ranges(&c, ranges, 16, &n),
		    "VFIO reports no IOVA ranges"))
		goto out;
	for (i = 0; i < n; i++) {
		len += snprintf(list + len, sizeof(list) - len,
				"%s0x%llx-0x%llx", i ? "," : "",
				(unsigned long long)ranges[2 * i],
				(unsigned long long)ranges[2 * i + 1]);
		if (ranges[2 * i] <= MSI_END && ranges[2 * i + 1] >= MSI_START)
			hole = 0;
		if (ranges[2 * i] <= IOVA_BASE &&
		    ranges[2 * i + 1] >= IOVA_LIMIT)
			covers = 1;
	}
	res_kv(r, "iova_ranges", "%s", list);
	expect(r, hole, "the MSI window is usable IOVA space: %s", list);
	expect(r, covers, "IOVA window 0x%llx-0x%llx not usable: %s",
	       IOVA_BASE, IOVA_LIMIT, list);
out:
	eng_close(e);
	ctr_close(&c);
}

/* sc_probe() - driver bound, config read, PROBE's MSI region, groups. */
int sc_probe(struct result *r)
{
	struct eng e[MAX_ENGINES];
	char iommu[64] = "", msg[256];
	int n;

	if (probe_iommu(r, iommu, sizeof(iommu)))
		return 0;
	res_kv(r, "iommu", "%s", iommu);
	probe_features(r, iommu);
	if (!kmsg_find("page mask:", msg, sizeof(msg)))
		res_kv(r, "page_mask", "%s", strrchr(msg, ' ') + 1);
	if (!kmsg_find("input address:", msg, sizeof(msg)))
		res_kv(r, "input_bits", "%d",
		       atoi(strstr(msg, "address:") + 9));
	n = open_engines(r, e, 1);
	if (n < 0)
		return 0;
	res_kv(r, "engines", "%d", n);
	probe_groups(r, e, n, iommu);
	probe_vfio(r, &e[0]);
	return 0;
}

/* --- dma -------------------------------------------------------------- */

/* dma_register() - roundtrips of many sizes and offsets, register mode. */
static void dma_register(struct result *r, struct eng *e, struct ctr *c)
{
	static const uint32_t lens[] = { 1, 7, 512, 4096, 4097, 65536,
					 100000, 0 };
	struct dmabuf s, d;
	uint32_t len;
	size_t size = e->buf_size + 2 * PAGE, off;
	unsigned i, n = 0;

	if (!expect(r, !buf_alloc(&s, size, PAGE) && !buf_alloc(&d, size, PAGE),
		    "out of memory"))
		return;
	/* The source is mapped read-only: the device only reads it. */
	if (!expect(r, !buf_map(c, &s, false) && !buf_map(c, &d, true),
		    "VFIO_IOMMU_MAP_DMA failed"))
		goto out;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		len = lens[i] ? lens[i] : e->buf_size;
		if (len > e->buf_size)
			continue;
		off = (i * 1237u) % PAGE;
		if (roundtrip(r, e, &s, off, &d, (off * 3) % PAGE, len,
			      g_opts->seed + i))
			break;
		n += 2;
	}
	res_kv(r, "reg_dmas", "%u", n);
	expect(r, !buf_unmap(c, &s) && !buf_unmap(c, &d),
	       "VFIO_IOMMU_UNMAP_DMA failed or unmapped a different size");
out:
	buf_unmap(c, &s);
	buf_unmap(c, &d);
	buf_free(&s);
	buf_free(&d);
}

/* ring_batch() - @n random descriptors s -> d, run and verify. */
static int ring_batch(struct result *r, struct eng *e, struct ring *ring,
		      struct dmabuf *s, struct dmabuf *d, uint8_t *exp,
		      uint32_t n, uint64_t *rs)
{
	struct ring_desc desc[64];
	uint32_t st[64], i, len, soff, doff = 0;
	size_t at;
	int err;

	memset(d->va, 0, d->size);
	memset(exp, 0, d->size);
	for (i = 0; i < n; i++) {
		len = 1 + (uint32_t)(rng_next(rs) % (d->size / n - 1));
		soff = (uint32_t)(rng_next(rs) % (s->size - len));
		desc[i] = (struct ring_desc){ .src = s->iova + soff,
					      .dst = d->iova + doff,
					      .len = len };
		memcpy(exp + doff, s->va + soff, len);
		doff += len + (uint32_t)(rng_next(rs) % 64);
		if (doff >= d->size - d->size / n)
			doff = 0;
	}
	err = ring_run(e, ring, desc, n, st);
	if (!expect(r, !err, "%s: ring of %u entries: %s", e->bdf, n,
		    strerror(-err)))
		return -1;
	for (i = 0; i < n; i++)
		if (!expect(r, st[i] == RING_DONE, "%s: ring entry %u status "
			    "%u, want done", e->bdf, i, st[i]))
			return -1;
	at = first_diff(d->va, exp, d->size);
	if (!expect(r, at == d->size, "%s: ring copy differs at byte %zu",
		    e->bdf, at))
		return -1;
	for (i = 0; i < n; i++)
		r->bytes_verified += desc[i].len;
	return 0;
}

/* dma_ring() - ring mode: batches that wrap the ring, one 1 MiB copy. */
static void dma_ring(struct result *r, struct eng *e, struct ctr *c)
{
	struct dmabuf s, d;
	struct ring ring;
	uint64_t rs = g_opts->seed ^ 0x5157;
	uint32_t st, entries = 0, b;
	uint8_t *exp = NULL;
	struct ring_desc big;
	size_t size = 1u << 20;

	if (!expect(r, !ring_setup(e, c, &ring, 64), "%s: ring setup failed",
		    e->bdf))
		goto out_ring;
	if (!expect(r, !buf_alloc(&s, size, PAGE) && !buf_alloc(&d, size, PAGE)
		    && (exp = malloc(size)), "out of memory"))
		goto out;
	if (!expect(r, !buf_map(c, &s, false) && !buf_map(c, &d, true),
		    "VFIO_IOMMU_MAP_DMA failed"))
		goto out;
	fill_pattern(s.va, size, g_opts->seed + 77);
	for (b = 0; b < 4; b++, entries += 40)
		if (ring_batch(r, e, &ring, &s, &d, exp, 40, &rs))
			goto out;
	memset(d.va, 0, size);
	big = (struct ring_desc){ .src = s.iova, .dst = d.iova, .len = size };
	if (expect(r, !ring_run(e, &ring, &big, 1, &st) && st == RING_DONE,
		   "%s: 1 MiB ring copy failed (status %u)", e->bdf, st) &&
	    expect(r, !memcmp(s.va, d.va, size), "%s: 1 MiB ring copy differs",
		   e->bdf))
		r->bytes_verified += size;
	entries++;
	res_kv(r, "ring_entries", "%u", entries);
out:
	buf_unmap(c, &s);
	buf_unmap(c, &d);
	buf_free(&s);
	buf_free(&d);
	free(exp);
out_ring:
	ring_teardown(e, c, &ring);
}

/* sc_dma() - VFIO maps; DMA both ways and in ring mode, verified. */
int sc_dma(struct result *r)
{
	struct eng e[MAX_ENGINES];
	uint32_t count0 = 0;
	struct ctr c;

	if (open_engines(r, e, 1) < 0)
		return 0;
	if (!expect(r, !ctr_open(&c), "cannot open /dev/vfio/vfio"))
		return 0;
	if (attach_engine(r, &c, &e[0]))
		goto out;
	res_kv(r, "engine", "%s", eng_kind(&e[0]));
	res_kv(r, "bdf", "%s", e[0].bdf);
	if (e[0].ours)
		count0 = rd32(&e[0], R_EXT_DMA_COUNT);
	dma_register(r, &e[0], &c);
	if (e[0].ours) {
		dma_ring(r, &e[0], &c);
		res_kv(r, "device_dmas", "%u",
		       rd32(&e[0], R_EXT_DMA_COUNT) - count0);
	} else {
		logmsg("edu has no ring mode: ring part skipped");
	}
out:
	eng_close(&e[0]);
	ctr_close(&c);
	return 0;
}

/* --- readonly --------------------------------------------------------- */

/* ro_ring() - ring entries writing into a read-only map fault. */
static void ro_ring(struct result *r, struct eng *e, struct ctr *c,
		    struct dmabuf *ro, struct dmabuf *rw)
{
	struct ring_desc d[2];
	struct ring ring;
	uint32_t st[2] = { 0, 0 };
	uint8_t *copy = malloc(ro->size);

	if (!expect(r, copy && !ring_setup(e, c, &ring, 16),
		    "%s: ring setup failed", e->bdf))
		goto out;
	memcpy(copy, ro->va, ro->size);
	d[0] = (struct ring_desc){ .src = rw->iova, .dst = ro->iova + 64,
				   .len = 1000 };
	d[1] = (struct ring_desc){ .src = ro->iova, .dst = rw->iova,
				   .len = 2000 };
	memset(rw->va, 0, rw->size);
	if (expect(r, !ring_run(e, &ring, d, 2, st), "%s: ring run failed",
		   e->bdf)) {
		expect(r, st[0] == RING_FAULT, "%s: ring write into a "
		       "read-only map: status %u, want fault", e->bdf, st[0]);
		expect(r, st[1] == RING_DONE, "%s: ring read from a read-only "
		       "map: status %u, want done", e->bdf, st[1]);
		expect(r, !memcmp(copy, ro->va, ro->size), "%s: ring changed "
		       "a read-only buffer", e->bdf);
		expect(r, !memcmp(rw->va, ro->va, 2000), "%s: ring read of "
		       "a read-only buffer wrong", e->bdf);
	}
out:
	ring_teardown(e, c, &ring);
	free(copy);
}

/* readonly_run() - the checks of sc_readonly on an opened engine. */
static void readonly_run(struct result *r, struct eng *e, struct ctr *c,
			 struct dmabuf *ro, struct dmabuf *rw,
			 struct dmabuf *wo)
{
	uint32_t len = e->buf_size < 8192 ? e->buf_size : 8192, st;
	int err;

	fill_pattern(ro->va, ro->size, g_opts->seed + 1);
	fill_pattern(rw->va, rw->size, g_opts->seed + 2);
	memcpy(wo->va, ro->va, wo->size);
	/* Put other data in the device buffer, then try to write it out. */
	err = eng_to_dev(e, rw->iova, 0, len, &st);
	expect(r, !err, "%s: DMA from a RW map failed", e->bdf);
	err = eng_to_ram(e, 0, ro->iova, len, &st);
	expect_refused(r, e, err, ro->iova, FAULT_PERMISSION, ACC_WRITE,
		       "device write to a read-only map");
	fill_pattern(rw->va, rw->size, g_opts->seed + 1);
	expect(r, !memcmp(ro->va, rw->va, ro->size),
	       "%s: a byte of the read-only buffer changed", e->bdf);
	/* Reading it is allowed: copy it to the device and back out. */
	memset(rw->va, 0, rw->size);
	err = eng_to_dev(e, ro->iova, 0, len, &st);
	expect(r, !err, "%s: device read of a read-only map refused",
	       e->bdf);
	err = eng_to_ram(e, 0, rw->iova, len, &st);
	if (expect(r, !err && !memcmp(rw->va, ro->va, len),
		   "%s: data read through a read-only map wrong", e->bdf))
		r->bytes_verified += len;
	/*
	 * A write-only map: the device may write but not read.  Behind
	 * QEMU's virtio-iommu the map reaches the device through VFIO, which
	 * has no write-only mappings (it always grants reads): a known
	 * difference of that peer, recorded rather than failed.
	 */
	err = eng_to_dev(e, wo->iova, 0, len, &st);
	if (!err && cmdline_has("viommu.peer=qemu"))
		res_kv(r, "write_only_read", "granted-by-vfio");
	else if (!err && cmdline_has("viommu.smmu_stage=1"))
		/* Arm stage-1 permissions have no write-only encoding: Linux
		 * maps IOMMU_WRITE alone as read-write */
		res_kv(r, "write_only_read", "granted-by-stage1");
	else if (!err && cmdline_has("viommu.iommu=vtd"))
		/* Linux's intel-iommu sets bit 0 (DMA_FL_PTE_PRESENT, which is
		 * also the second-level R bit) in every PTE it writes: a
		 * write-only map is readable (docs/VTD.md) */
		res_kv(r, "write_only_read", "granted-by-intel-iommu");
	else
		expect_refused(r, e, err, wo->iova, FAULT_PERMISSION, ACC_READ,
			       "device read of a write-only map");
	if (e->ours)
		ro_ring(r, e, c, ro, rw);
}

/* sc_readonly() - a read-only mapping refuses device writes. */
int sc_readonly(struct result *r)
{
	struct eng e[MAX_ENGINES];
	struct dmabuf ro, rw, wo;
	struct ctr c;
	uint64_t iova;

	memset(&ro, 0, sizeof(ro));
	memset(&rw, 0, sizeof(rw));
	memset(&wo, 0, sizeof(wo));
	if (open_engines(r, e, 1) < 0)
		return 0;
	if (!expect(r, !ctr_open(&c), "cannot open /dev/vfio/vfio"))
		return 0;
	if (attach_engine(r, &c, &e[0]))
		goto out;
	res_kv(r, "engine", "%s", eng_kind(&e[0]));
	if (!expect(r, !buf_alloc(&ro, 3 * PAGE, PAGE) &&
		    !buf_alloc(&rw, 3 * PAGE, PAGE) &&
		    !buf_alloc(&wo, 3 * PAGE, PAGE), "out of memory"))
		goto out;
	iova = ctr_alloc_iova(&c, wo.size);
	if (!expect(r, !buf_map(&c, &ro, false) && !buf_map(&c, &rw, true) &&
		    !ctr_map_prot(&c, wo.va, wo.size, iova, false, true),
		    "VFIO_IOMMU_MAP_DMA failed"))
		goto out;
	wo.iova = iova;
	wo.mapped = true;
	readonly_run(r, &e[0], &c, &ro, &rw, &wo);
out:
	buf_unmap(&c, &ro);
	buf_unmap(&c, &rw);
	buf_unmap(&c, &wo);
	buf_free(&ro);
	buf_free(&rw);
	buf_free(&wo);
	eng_close(&e[0]);
	ctr_close(&c);
	return 0;
}

/* --- unmapped --------------------------------------------------------- */

/* unmapped_ring() - ring entries and a ring at unmapped IOVAs. */
static void unmapped_ring(struct result *r, struct eng *e, struct ctr *c,
			  struct dmabuf *b, uint64_t hole)
{
	struct ring_desc d[2];
	struct ring ring;
	uint32_t st[2] = { 0, 0 };

	if (!expect(r, !ring_setup(e, c, &ring, 16), "%s: ring setup failed",
		    e->bdf))
		goto out;
	d[0] = (struct ring_desc){ .src = b->iova, .dst = hole, .len = 512 };
	d[1] = (struct ring_desc){ .src = hole, .dst = b->iova, .len = 512 };
	if (expect(r, !ring_run(e, &ring, d, 2, st), "%s: ring run failed",
		   e->bdf))
		expect(r, st[0] == RING_FAULT && st[1] == RING_FAULT,
		       "%s: ring copies to/from an unmapped IOVA: status %u/%u,"
		       " want fault", e->bdf, st[0], st[1]);
	/* The ring itself at an unmapped IOVA: a ring error. */
	wr64(e, R_RING_BASE, hole);
	wr32(e, R_RING_SIZE, 16);
	wr32(e, R_RING_TAIL, 1);
	expect(r, (rd32(e, R_EXT_STATUS) & EXT_ERR_RING) &&
	       rd32(e, R_RING_HEAD) == 0, "%s: a ring at an unmapped IOVA "
	       "was not a ring error", e->bdf);
out:
	ring_teardown(e, c, &ring);
}

/* unmapped_run() - the checks of sc_unmapped on an opened engine. */
static void unmapped_run(struct result *r, struct eng *e, struct ctr *c,
			 struct dmabuf *b, struct dmabuf *b2)
{
	uint64_t hole = IOVA_LIMIT - 16 * PAGE, guard = b->iova + b->size;
	uint32_t st, len = 1024;
	int err;

	/* Load the device buffer with a known pattern. */
	fill_pattern(b->va, b->size, g_opts->seed + 3);
	memcpy(b2->va, b->va, b2->size);
	expect(r, !eng_to_dev(e, b->iova, 0, len, &st),
	       "%s: DMA from a mapped IOVA failed", e->bdf);
	err = eng_to_ram(e, 0, hole, len, &st);
	expect_refused(r, e, err, hole, FAULT_NO_MAPPING, ACC_WRITE,
		       "device write to a never-mapped IOVA");
	err = eng_to_ram(e, 0, guard, len, &st);
	expect_refused(r, e, err, guard, FAULT_NO_MAPPING, ACC_WRITE,
		       "device write to the guard page after a map");
	expect(r, !memcmp(b->va, b2->va, b->size),
	       "%s: the mapped neighbour of the refused DMA changed", e->bdf);
	if (!e->ours)
		return;
	err = eng_to_dev(e, hole, 0, len, &st);
	expect_refused(r, e, err, hole, FAULT_NO_MAPPING, ACC_READ,
		       "device read from a never-mapped IOVA");
	/* The device buffer still holds the pattern: nothing was read. */
	memset(b->va, 0, b->size);
	if (expect(r, !eng_to_ram(e, 0, b->iova, len, &st) &&
		   !memcmp(b->va, b2->va, len), "%s: a refused read changed "
		   "the device buffer", e->bdf))
		r->bytes_verified += len;
	unmapped_ring(r, e, c, b, hole);
}

/* stale_after_unmap() - an IOVA unmapped a moment ago is refused. */
static void stale_after_unmap(struct result *r, struct eng *e,
			      struct ctr *c, struct dmabuf *b)
{
	uint64_t iova = b->iova;
	uint32_t st;
	int err;

	expect(r, !eng_to_ram(e, 0, iova, 256, &st), "%s: DMA to a mapped "
	       "IOVA failed before the unmap", e->bdf);
	if (!expect(r, !buf_unmap(c, b), "VFIO_IOMMU_UNMAP_DMA failed"))
		return;
	memset(b->va, 0x3c, b->size);
	err = eng_to_ram(e, 0, iova, 256, &st);
	expect_refused(r, e, err, iova, FAULT_NO_MAPPING, ACC_WRITE,
		       "device write to an IOVA just unmapped");
	expect(r, all_equal(b->va, b->size, 0x3c) == b->size,
	       "%s: DMA reached a buffer after its unmap", e->bdf);
}

/* sc_unmapped() - DMA to IOVAs that are not mapped is refused. */
int sc_unmapped(struct result *r)
{
	struct eng e[MAX_ENGINES];
	struct dmabuf b, b2;
	struct ctr c;

	memset(&b, 0, sizeof(b));
	memset(&b2, 0, sizeof(b2));
	if (open_engines(r, e, 1) < 0)
		return 0;
	if (!expect(r, !ctr_open(&c), "cannot open /dev/vfio/vfio"))
		return 0;
	if (attach_engine(r, &c, &e[0]))
		goto out;
	res_kv(r, "engine", "%s", eng_kind(&e[0]));
	if (!expect(r, !buf_alloc(&b, 2 * PAGE, PAGE) &&
		    !buf_alloc(&b2, 2 * PAGE, PAGE), "out of memory"))
		goto out;
	if (!expect(r, !buf_map(&c, &b, true), "VFIO_IOMMU_MAP_DMA failed"))
		goto out;
	unmapped_run(r, &e[0], &c, &b, &b2);
	stale_after_unmap(r, &e[0], &c, &b);
out:
	buf_unmap(&c, &b);
	buf_free(&b);
	buf_free(&b2);
	eng_close(&e[0]);
	ctr_close(&c);
	return 0;
}

/* --- isolation -------------------------------------------------------- */

/* cross_check() - engine @e must not reach @victim (mapped elsewhere). */
static void cross_check(struct result *r, struct eng *e,
			struct dmabuf *victim, struct dmabuf *own)
{
	uint8_t *copy = malloc(victim->size);
	uint32_t st;
	int err;

	if (!expect(r, copy != NULL, "out of memory"))
		return;
	memcpy(copy, victim->va, victim->size);
	fill_pattern(own->va, own->size, g_opts->seed + 9);
	expect(r, !eng_to_dev(e, own->iova, 0, 512, &st),
	       "%s: DMA from its own map failed", e->bdf);
	err = eng_to_ram(e, 0, victim->iova, 512, &st);
	expect_refused(r, e, err, victim->iova, FAULT_NO_MAPPING, ACC_WRITE,
		       "write to another domain's IOVA");
	expect(r, !memcmp(copy, victim->va, victim->size),
	       "%s: reached a buffer of another domain", e->bdf);
	free(copy);
}

/* same_iova() - the same IOVA in both domains reaches each one's own page. */
static void same_iova(struct result *r, struct eng *e, struct dmabuf *x,
		      struct dmabuf *out, uint64_t seed)
{
	uint32_t len = 2048, st;

	fill_pattern(x->va, x->size, seed);
	memset(out->va, 0, out->size);
	if (expect(r, !eng_to_dev(e, x->iova, 0, len, &st) &&
		   !eng_to_ram(e, 0, out->iova, len, &st),
		   "%s: DMA in its own domain failed", e->bdf) &&
	    expect(r, !memcmp(out->va, x->va, len), "%s: IOVA 0x%llx did not "
		   "resolve in its own domain", e->bdf,
		   (unsigned long long)x->iova))
		r->bytes_verified += len;
}

/* sc_isolation() - two engines, two containers: no cross reach. */
int sc_isolation(struct result *r)
{
	struct eng e[MAX_ENGINES];
	struct dmabuf x[2], out[2], only[2];
	struct ctr c[2];
	int i;

	memset(x, 0, sizeof(x));
	memset(out, 0, sizeof(out));
	memset(only, 0, sizeof(only));
	c[0].fd = c[1].fd = -1;
	if (open_engines(r, e, 2) < 0)
		return 0;
	if (!expect(r, e[0].group != e[1].group, "%s and %s share a group",
		    e[0].bdf, e[1].bdf))
		return 0;
	for (i = 0; i < 2; i++) {
		if (!expect(r, !ctr_open(&c[i]), "no /dev/vfio/vfio") ||
		    attach_engine(r, &c[i], &e[i]))
			goto out;
		if (!expect(r, !buf_alloc(&x[i], 2 * PAGE, PAGE) &&
			    !buf_alloc(&out[i], 2 * PAGE, PAGE) &&
			    !buf_alloc(&only[i], 2 * PAGE, PAGE),
			    "out of memory"))
			goto out;
	}
	res_kv(r, "engines", "%s:%s,%s:%s", e[0].bdf + 5, eng_kind(&e[0]),
	       e[1].bdf + 5, eng_kind(&e[1]));
	/* Same allocation order: x[0] and x[1] get the same IOVA. */
	for (i = 0; i < 2; i++)
		if (!expect(r, !buf_map(&c[i], &x[i], true) &&
			    !buf_map(&c[i], &out[i], true),
			    "VFIO_IOMMU_MAP_DMA failed"))
			goto out;
	expect(r, x[0].iova == x[1].iova, "IOVA allocation differs");
	/* only[0] is mapped in domain 0 only, only[1] in domain 1 only. */
	c[1].next_iova += 8 * PAGE;
	if (!expect(r, !buf_map(&c[0], &only[0], true) &&
		    !buf_map(&c[1], &only[1], true),
		    "VFIO_IOMMU_MAP_DMA failed"))
		goto out;
	same_iova(r, &e[0], &x[0], &out[0], g_opts->seed + 10);
	same_iova(r, &e[1], &x[1], &out[1], g_opts->seed + 11);
	expect(r, memcmp(x[0].va, x[1].va, 2048), "patterns must differ");
	cross_check(r, &e[1], &only[0], &out[1]);
	cross_check(r, &e[0], &only[1], &out[0]);
out:
	for (i = 0; i < 2; i++) {
		if (c[i].fd >= 0) {
			buf_unmap(&c[i], &x[i]);
			buf_unmap(&c[i], &out[i]);
			buf_unmap(&c[i], &only[i]);
		}
		buf_free(&x[i]);
		buf_free(&out[i]);
		buf_free(&only[i]);
		eng_close(&e[i]);
		ctr_close(&c[i]);
	}
	return 0;
}
