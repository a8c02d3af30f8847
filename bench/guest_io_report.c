/*
 * guest_io_report.c - `viommu-bench guest-io`: what a boot gave, the
 * statistics over the rounds, the goals and the report.
 *
 * Reading: each boot is one viommu-run child whose --json file holds one
 * boot with the blkio scenario's result, its VIOMMU-BENCH lines (name
 * blk-randread|blk-randwrite, size, qd, count, ns, iommu=the disk's domain
 * type) and, when viommu-server ran, its --stats-json counters
 * (server_stats: "disks" with reads and writes, "requests" with the
 * virtio-iommu MAP/UNMAP counts by status, "kicks", "cpu_seconds").  IOPS
 * and MB/s are recomputed from count and ns (the guest's rounded figures
 * are not used).
 *
 * Statistics: every figure is the median over the rounds of the boots
 * that gave it, with its range.  Each mode is compared with the SAME
 * stack's no-IOMMU boot of the same round (the boots of a round ran close
 * together): the per-round IOPS ratio, reported as the median and range of
 * those ratios.  MB/s ratios equal the IOPS ratios (same size).
 *
 * Goals (the issue's, on the median of per-round ratios, per job): ours
 * lazy >= 95 % and ours strict >= 60 % of ours no-IOMMU; and in each of
 * pt, lazy and strict, our % above QEMU's stack's %.  Each goal is
 * printed with MET, MISSED or NOT MEASURED; a miss is never left out.
 *
 * Where the time goes: per (stack, mode), the server's virtio-iommu MAP
 * and UNMAP requests and kicks per disk I/O (ours only: with QEMU's
 * virtio-iommu there are no such counters), the vfio-user DMA_MAP and
 * DMA_UNMAP messages QEMU sent on the disk's link (mixed: QEMU's IOMMU
 * forwarding the guest's maps), the disk's interrupts and the server's
 * CPU time per I/O (ours and mixed), each the median over rounds of
 * per-boot figures.
 */
#include "guest_io.h"
#include "json.h"

#include <string.h>

#define GOAL_LAZY 95.0   /* ours lazy, % of ours no IOMMU */
#define GOAL_STRICT 60.0 /* ours strict, % of ours no IOMMU */

const struct gio_job gio_jobs[GIO_NJOBS] = {
	{ false, 4096, 1 },   { false, 4096, 32 },
	{ false, 65536, 1 },  { false, 65536, 32 },
	{ true, 4096, 1 },    { true, 4096, 32 },
	{ true, 65536, 1 },   { true, 65536, 32 },
};
const struct gio_net_job gio_net_jobs[GIO_NET_NJOBS] = {
	{ false, false, 1, 1500 },  { false, true, 1, 1500 },
	{ false, false, 4, 1500 },  { false, true, 4, 1500 },
	{ false, false, 1, 65536 }, { false, true, 1, 65536 },
	{ false, false, 4, 65536 }, { false, true, 4, 65536 },
	{ true, false, 1, 18 },
};
const char *const gio_net_scenarios[GIO_NMODES] = {
	"netbench-noiommu", "netbench-pt", "netbench", "netbench-strict",
	"netbench-strict-cm",
};
const char *const gio_stack_names[GIO_NSTACKS] = { "ours", "mixed", "qemu" };
const char *const gio_mode_names[GIO_NMODES] = {
	"noiommu", "pt", "lazy", "strict", "strict-cm",
};
const char *const gio_mode_scenarios[GIO_NMODES] = {
	"blkio-noiommu", "blkio-pt", "blkio", "blkio-strict", "(vtd only)",
};

/* ------------------------------------------------------------------ */
/* One boot                                                           */

/* gio_boot_init() - see guest_io.h. */
void gio_boot_init(struct gio_boot *b)
{
	memset(b, 0, sizeof(*b));
	for (int j = 0; j < GIO_MAX_JOBS; j++)
		b->iops[j] = b->mbps[j] = b->cpu[j] = -1;
	b->ios = b->maps = b->unmaps = b->kicks = b->srv_cpu = -1;
	b->nic_kicks = -1;
	b->dma_msgs = b->irqs = -1;
}

/* job_index() - the job of a blk-rand* line, or -1. */
static int job_index(const char *name, double size, double qd)
{
	bool w;

	if (!strcmp(name, "blk-randread"))
		w = false;
	else if (!strcmp(name, "blk-randwrite"))
		w = true;
	else
		return -1;
	for (int j = 0; j < GIO_NJOBS; j++)
		if (gio_jobs[j].write == w && gio_jobs[j].size == size &&
		    gio_jobs[j].qd == qd)
			return j;
	return -1;
}

/* net_index() - the job of a net-tcp / net-udp line, or -1. */
static int net_index(const struct jval *l)
{
	const char *name = jstr(l, "name"), *dir = jstr(l, "dir");
	bool udp;

	if (!name || !dir)
		return -1;
	if (!strcmp(name, "net-udp"))
		udp = true;
	else if (!strcmp(name, "net-tcp"))
		udp = false;
	else
		return -1;
	for (int j = 0; j < GIO_NET_NJOBS; j++) {
		const struct gio_net_job *n = &gio_net_jobs[j];

		if (n->udp == udp && n->ba == !strcmp(dir, "ba") &&
		    (udp || (n->streams == jnum(l, "streams") &&
			     n->msg == jnum(l, "msg"))))
			return j;
	}
	return -1;
}

/* take_net_line() - a netbench VIOMMU-BENCH line. */
static void take_net_line(struct gio_boot *b, const struct jval *l)
{
	const char *dt = jstr(l, "iommu");
	double ns = jnum(l, "ns");
	int j = net_index(l);

	if (j < 0 || ns <= 0)
		return;
	if (gio_net_jobs[j].udp) {
		double n = jnum(l, "recv");

		if (n <= 0)
			return;
		b->iops[j] = n * 1e9 / ns;
		b->mbps[j] = n * gio_net_jobs[j].msg * 1e3 / ns;
	} else {
		double n = jnum(l, "bytes");

		if (n <= 0)
			return;
		b->iops[j] = b->mbps[j] = n * 1e3 / ns;
	}
	b->cpu[j] = jnum(l, "cpu_pct");
	if (dt && !gio_net_jobs[j].ba)
		snprintf(b->dtype, sizeof(b->dtype), "%s", dt);
}

/* take_line() - record one VIOMMU-BENCH line (an object of strings). */
static void take_line(struct gio_boot *b, const struct jval *l)
{
	const char *name = jstr(l, "name"), *dt = jstr(l, "iommu");
	double size = jnum(l, "size"), count = jnum(l, "count");
	double ns = jnum(l, "ns");
	int j;

	if (b->net) {
		take_net_line(b, l);
		return;
	}
	if (!name || count <= 0 || ns <= 0 ||
	    (j = job_index(name, size, jnum(l, "qd"))) < 0)
		return;
	b->iops[j] = count * 1e9 / ns;
	b->mbps[j] = count * size * 1e3 / ns;
	if (dt)
		snprintf(b->dtype, sizeof(b->dtype), "%s", dt);
}

/* boot_status() - whether a blkio scenario passed; reason in b->why. */
static bool boot_status(struct gio_boot *b, const struct jval *boot)
{
	const struct jval *res = jget(boot, "results"), *err;

	for (int i = 0; res && res->t == J_ARR && i < res->n; i++) {
		const char *sc = jstr(&res->kids[i], "scenario");
		const char *st = jstr(&res->kids[i], "status");
		const char *why = jstr(&res->kids[i], "reason");

		if (!sc || strncmp(sc, b->net ? "netbench" : "blkio",
				   b->net ? 8 : 5))
			continue;
		if (st && !strcmp(st, "pass"))
			return true;
		snprintf(b->why, sizeof(b->why), "%s %s%s%s", sc,
			 st ? st : "?", why && *why ? ": " : "",
			 why ? why : "");
		return false;
	}
	err = jget(boot, "errors");
	snprintf(b->why, sizeof(b->why), "%s", err && err->t == J_ARR &&
		 err->n && err->kids[0].t == J_STR ? err->kids[0].str :
		 b->net ? "no netbench result" : "no blkio result");
	return false;
}

/* take_links() - the disk's link counters (links named blk*; --net: the
 * NICs', named net*). */
static void take_links(struct gio_boot *b, const struct jval *links)
{
	for (int i = 0; links && links->t == J_ARR && i < links->n; i++) {
		const struct jval *l = &links->kids[i];
		const struct jval *msgs = jget(l, "messages");
		const char *name = jstr(l, "name");
		double m = jnum(msgs, "DMA_MAP"), u = jnum(msgs, "DMA_UNMAP");

		if (!name || strncmp(name, b->net ? "net" : "blk", 3))
			continue;
		if (b->net && jnum(msgs, "REGION_WRITE") >= 0)
			b->nic_kicks = (b->nic_kicks < 0 ? 0 : b->nic_kicks) +
				       jnum(msgs, "REGION_WRITE");
		if (m >= 0 && u >= 0)
			b->dma_msgs = (b->dma_msgs < 0 ? 0 : b->dma_msgs) +
				      m + u;
		if (jnum(l, "irq_signals") >= 0)
			b->irqs = (b->irqs < 0 ? 0 : b->irqs) +
				  jnum(l, "irq_signals");
	}
}

/* take_stats() - the server's counters, if it ran. */
static void take_stats(struct gio_boot *b, const struct jval *st)
{
	const struct jval *disks = jget(st, "disks");
	const struct jval *req = jget(st, "requests");
	double r, w;

	if (!st || st->t != J_OBJ)
		return;
	b->srv_cpu = jnum(st, "cpu_seconds");
	if (b->net) {
		const struct jval *nics = jget(st, "nics");

		for (int i = 0; nics && nics->t == J_ARR && i < nics->n; i++)
			if (jnum(&nics->kids[i], "tx_bytes") >= 0)
				b->ios = (b->ios < 0 ? 0 : b->ios) +
					 jnum(&nics->kids[i], "tx_bytes") /
						 1048576.0;
	} else if (disks && disks->t == J_ARR && disks->n) {
		r = jnum(&disks->kids[0], "reads");
		w = jnum(&disks->kids[0], "writes");
		if (r >= 0 && w >= 0)
			b->ios = r + w;
	}
	if (req && req->t == J_OBJ) {
		b->maps = jsum(jget(req, "MAP"));
		b->unmaps = jsum(jget(req, "UNMAP"));
	}
	b->kicks = jnum(st, "kicks");
	if (jget(st, "vtd")) { /* --iommu vtd: the model's counters */
		const struct jval *v = jget(st, "vtd");

		b->maps = jnum(v, "descriptors");
		b->unmaps = jnum(v, "waits");
		b->kicks = jnum(jget(v, "frame"), "writes");
	}
	take_links(b, jget(st, "links"));
}

/* gio_take_json() - see guest_io.h. */
void gio_take_json(struct gio_boot *b, const char *path, int rc)
{
	const struct jval *boots, *boot, *lines;
	struct jval doc;
	int missing = 0;

	if (jload(path, &doc)) {
		snprintf(b->why, sizeof(b->why), "viommu-run exit status %d, "
			 "no readable JSON", rc);
		return;
	}
	boots = jget(&doc, "boots");
	boot = boots && boots->t == J_ARR && boots->n ? &boots->kids[0] : NULL;
	lines = jget(boot, "bench");
	b->ok = boot && boot_status(b, boot);
	if (b->secs <= 0 && jnum(boot, "seconds") > 0)
		b->secs = jnum(boot, "seconds"); /* --replay: the boot's own */
	take_stats(b, jget(boot, "server_stats"));
	for (int i = 0; lines && lines->t == J_ARR && i < lines->n; i++)
		take_line(b, &lines->kids[i]);
	jfree(&doc);
	for (int j = 0; j < (b->net ? GIO_NET_NJOBS : GIO_NJOBS); j++)
		missing += b->iops[j] < 0;
	if (b->ok && missing) {
		b->ok = false;
		snprintf(b->why, sizeof(b->why), "%d of %d %s bench lines "
			 "missing", missing, b->net ? GIO_NET_NJOBS :
			 GIO_NJOBS, b->net ? "net" : "blk");
	}
}

/* gio_take_qemu() - see guest_io.h. */
bool gio_take_qemu(struct gb_qemu *q, const char *path)
{
	const char *qp, *ver;
	struct jval doc;
	bool ok;

	if (jload(path, &doc))
		return false;
	qp = jstr(jget(&doc, "qemu"), "path");
	ver = jstr(jget(&doc, "qemu"), "version");
	ok = qp && ver;
	if (ok) {
		snprintf(q->path, sizeof(q->path), "%s", qp);
		snprintf(q->version, sizeof(q->version), "%s", ver);
	}
	jfree(&doc);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Statistics                                                         */

/* gio_njobs() - see guest_io.h. */
int gio_njobs(const struct gio *g)
{
	return g->o.net ? GIO_NET_NJOBS : GIO_NJOBS;
}

/* boot_of() - the boot of (@s, @m) in round @r if it gave figures. */
static const struct gio_boot *boot_of(const struct gio *g, int r, int s,
				      int m)
{
	const struct gio_boot *b = &g->b[r][s][m];

	return b->ok ? b : NULL;
}

/* gio_iops() - see guest_io.h. */
struct rstat gio_iops(const struct gio *g, int s, int m, int j)
{
	double v[GIO_MAX_ROUNDS];
	int n = 0;

	for (int r = 0; r < g->o.rounds; r++) {
		const struct gio_boot *b = boot_of(g, r, s, m);

		if (b && b->iops[j] > 0)
			v[n++] = b->iops[j];
	}
	return rstat_of(v, n);
}

/* gio_mbps() - see guest_io.h. */
struct rstat gio_mbps(const struct gio *g, int s, int m, int j)
{
	double v[GIO_MAX_ROUNDS];
	int n = 0;

	for (int r = 0; r < g->o.rounds; r++) {
		const struct gio_boot *b = boot_of(g, r, s, m);

		if (b && b->mbps[j] > 0)
			v[n++] = b->mbps[j];
	}
	return rstat_of(v, n);
}

/* gio_pct() - see guest_io.h. */
struct rstat gio_pct(const struct gio *g, int s, int m, int j)
{
	double v[GIO_MAX_ROUNDS];
	int n = 0;

	for (int r = 0; r < g->o.rounds; r++) {
		const struct gio_boot *a = boot_of(g, r, s, m);
		const struct gio_boot *z = boot_of(g, r, s, GIO_NOIOMMU);

		if (a && z && a->iops[j] > 0 && z->iops[j] > 0)
			v[n++] = 100.0 * a->iops[j] / z->iops[j];
	}
	return rstat_of(v, n);
}

/*
 * per_io() - counter @what (0 MAPs, 1 UNMAPs, 2 kicks, 3 server CPU us,
 * 4 vfio-user DMA_MAP+DMA_UNMAP messages, 5 disk interrupts, 6 NIC
 * kicks) per disk I/O (--net: per MiB sent) of (@s, @m): the median over
 * the rounds, or -1.
 */
static double per_io(const struct gio *g, int s, int m, int what)
{
	double v[GIO_MAX_ROUNDS];
	int n = 0;

	for (int r = 0; r < g->o.rounds; r++) {
		const struct gio_boot *b = boot_of(g, r, s, m);
		double c;

		if (!b || b->ios <= 0)
			continue;
		c = what == 0 ? b->maps : what == 1 ? b->unmaps :
		    what == 2 ? b->kicks : what == 4 ? b->dma_msgs :
		    what == 5 ? b->irqs : what == 6 ? b->nic_kicks :
		    b->srv_cpu < 0 ? -1 :
		    b->srv_cpu * 1e6;
		if (c >= 0)
			v[n++] = c / b->ios;
	}
	return n ? median(v, n) : -1;
}

/*
 * guest_cpu() - --net: the guest's mean CPU busy % over the TCP jobs of
 * (@s, @m), median over the rounds, or -1.
 */
static double guest_cpu(const struct gio *g, int s, int m)
{
	double v[GIO_MAX_ROUNDS];
	int n = 0;

	for (int r = 0; r < g->o.rounds; r++) {
		const struct gio_boot *b = boot_of(g, r, s, m);
		double sum = 0;
		int k = 0;

		for (int j = 0; b && j < GIO_NET_NJOBS; j++)
			if (!gio_net_jobs[j].udp && b->cpu[j] >= 0) {
				sum += b->cpu[j];
				k++;
			}
		if (k)
			v[n++] = sum / k;
	}
	return n ? median(v, n) : -1;
}

/* gio_goal_pct() - see guest_io.h. */
enum gio_verdict gio_goal_pct(const struct gio *g, int m, int j, double *v)
{
	struct rstat p = gio_pct(g, GIO_OURS, m, j);
	double goal = m == GIO_LAZY ? GOAL_LAZY : GOAL_STRICT;

	*v = p.med;
	if (!p.n)
		return GIO_NOT_MEASURED;
	return p.med >= goal ? GIO_MET : GIO_MISSED;
}

/* gio_goal_vs_qemu() - see guest_io.h. */
enum gio_verdict gio_goal_vs_qemu(const struct gio *g, int m, int j,
				  double *ours, double *qemu)
{
	struct rstat o = gio_pct(g, GIO_OURS, m, j);
	struct rstat q = gio_pct(g, GIO_QEMU, m, j);

	*ours = o.med;
	*qemu = q.med;
	if (!o.n || !q.n)
		return GIO_NOT_MEASURED;
	return o.med > q.med ? GIO_MET : GIO_MISSED;
}

/* ------------------------------------------------------------------ */
/* Words                                                              */

static const char *const verdict_names[] = { "NOT MEASURED", "met",
					      "MISSED" };

/* job_name() - "read 4K qd1"; --net: "tcp ab 4x1500", "udp ab 18B". */
static void job_name(const struct gio *g, char *buf, size_t n, int j)
{
	const struct gio_net_job *k = &gio_net_jobs[j];

	if (!g->o.net)
		snprintf(buf, n, "%s %uK qd%u", gio_jobs[j].write ? "write" :
			 "read", gio_jobs[j].size >> 10, gio_jobs[j].qd);
	else if (k->udp)
		snprintf(buf, n, "udp %s %uB pps", k->ba ? "ba" : "ab", k->msg);
	else
		snprintf(buf, n, "tcp %s %ux%u", k->ba ? "ba" : "ab",
			 k->streams, k->msg);
}

/* job_key() - job @j as one word: "read-4K-qd1", "tcp-ab-4x1500". */
static void job_key(const struct gio *g, char *buf, size_t n, int j)
{
	job_name(g, buf, n, j);
	for (char *c = buf; *c; c++)
		if (*c == ' ')
			*c = '-';
}

/* cell() - @v with @prec decimals, or "-" when there is none. */
static void cell(char *buf, size_t n, double v, int prec)
{
	if (v < 0)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.*f", prec, v);
}

/* pct_cell() - "97.1 (95-99)" or "-". */
static void pct_cell(char *buf, size_t n, struct rstat s)
{
	if (!s.n)
		snprintf(buf, n, "-");
	else if (s.n == 1)
		snprintf(buf, n, "%.1f", s.med);
	else
		snprintf(buf, n, "%.1f (%.0f-%.0f)", s.med, s.min, s.max);
}

/* stack_text() - what a stack is. */
static const char *stack_text(const struct gio *g, int s)
{
	static const char *const v[GIO_NSTACKS] = {
		"two of our virtio-net NICs (viommu-server, vfio-user, one "
		"switch) behind our VT-d model (a register frame polled in "
		"guest RAM)",
		"(not for --iommu vtd)",
		"QEMU's two virtio-net-pci iommu_platform=on on one hub behind "
		"QEMU's intel-iommu (intremap=off)",
	};
	static const char *const n[GIO_NSTACKS] = {
		"two of our virtio-net NICs (viommu-server, vfio-user, one "
		"switch) behind our virtio-iommu",
		"(not for --net)",
		"QEMU's two virtio-net-pci iommu_platform=on on one hub behind "
		"QEMU's virtio-iommu-pci",
	};
	static const char *const t[GIO_NSTACKS] = {
		"our virtio-blk (viommu-server, vfio-user) behind our "
		"virtio-iommu",
		"our virtio-blk (viommu-server --no-iommu, vfio-user) behind "
		"QEMU's virtio-iommu-pci",
		"QEMU's virtio-blk-pci iommu_platform=on behind QEMU's "
		"virtio-iommu-pci",
	};

	return g->o.vtd ? v[s] : g->o.net ? n[s] : t[s];
}

/* mode_text() - what a mode is. */
static const char *mode_text(const struct gio *g, int m)
{
	if (m == GIO_NOIOMMU && g->o.vtd)
		return "intel_iommu=off: no IOMMU in front of the NICs (the "
		       "baseline)";
	if (m == GIO_NOIOMMU && g->o.net)
		return "no IOMMU in front of the NICs (the baseline)";
	if (m == GIO_LAZY && g->o.vtd)
		return "deferred invalidation: the kernel's default DMA-FQ "
		       "(IOTLB flushes batched)";
	if (m == GIO_STRICT && g->o.vtd)
		return "iommu.strict=1: an IOTLB invalidation and wait per "
		       "unmap; caching mode off (QEMU: caching-mode=off)";
	static const char *const t[GIO_NMODES] = {
		"no IOMMU in front of the disk (the baseline)",
		"iommu.passthrough=1: identity domain, no MAP per I/O",
		"the kernel's default: DMA-FQ, unmaps batched (flush queue)",
		"iommu.strict=1: DMA domain, MAP and UNMAP per I/O",
		"strict with caching mode (CAP.CM: the driver also "
		"invalidates after each map; ours --vtd-features 0x23, QEMU "
		"caching-mode=on)",
	};

	return t[m];
}

/* ------------------------------------------------------------------ */
/* The table                                                          */

/* print_head() - machine, QEMU, method, stacks and modes. */
static void print_head(const struct gio *g, FILE *f)
{
	fprintf(f, "viommu-bench guest-io: real Linux guest (Debian 6.12 "
		"under QEMU TCG), %s%s\n", g->o.net ? "TCP and UDP between "
		"two virtio-net NICs in two namespaces" : "O_DIRECT random I/O "
		"on virtio-blk", g->o.smoke ? " (SMOKE RUN: numbers not "
		"meaningful)" : "");
	machine_print(&g->m, f);
	if (g->o.replay)
		fprintf(f, "replay:  the boots kept in %s (the load line above "
			"is the replay's, not the run's)\n", g->o.replay);
	if (g->q.path[0])
		fprintf(f, "qemu:    QEMU %s (%s), every stack\n",
			g->q.version, g->q.path);
	else
		fprintf(f, "qemu:    none: %s\n", g->q.why);
	fprintf(f, "method:  %d round(s), one boot per stack and mode, order "
		"reversed every other round;\n         %u ms per job in the "
		"guest; median over rounds; %d boots in %.0f s;\n",
		g->o.rounds, g->o.ms, g->nboots, g->secs);
	if (g->o.pin >= 0)
		fprintf(f, "         every boot pinned to CPU %d (QEMU, "
			"viommu-server, all threads)\n", g->o.pin);
	else
		fprintf(f, "         not pinned: QEMU's threads and "
			"viommu-server share the machine's %ld CPUs\n",
			g->m.ncpu);
	if (g->o.frame_nap_us)
		fprintf(f, "         ours: viommu-server --frame-nap-us %u (the "
			"frame's poller naps a fixed %u us)\n",
			g->o.frame_nap_us, g->o.frame_nap_us);
	if (g->o.poll_rq_us)
		fprintf(f, "         ours: viommu-server --poll-rq-us %u (the "
			"request queue polled, kicks suppressed while busy)\n",
			g->o.poll_rq_us);
	fprintf(f, "stacks:\n");
	for (int s = 0; s < GIO_NSTACKS; s++) {
		int ok = 0, ran = 0;

		if (!g->o.stack[s])
			continue;
		for (int r = 0; r < g->o.rounds; r++)
			for (int m = 0; m < GIO_NMODES; m++) {
				ran += g->b[r][s][m].ran;
				ok += g->b[r][s][m].ok;
			}
		fprintf(f, "  %-6s %s:\n         ", gio_stack_names[s],
			stack_text(g, s));
		if (g->skip[s][0])
			fprintf(f, "SKIPPED, %s\n", g->skip[s]);
		else
			fprintf(f, "%d of %d boots ok\n", ok, ran);
	}
	fprintf(f, "modes:\n");
	for (int m = 0; m < GIO_NMODES; m++)
		if (g->o.mode[m])
			fprintf(f, "  %-9s %-18s %s\n", gio_mode_names[m],
				g->o.net ? gio_net_scenarios[m] :
				gio_mode_scenarios[m], mode_text(g, m));
	for (int r = 0; r < g->o.rounds; r++)
		for (int s = 0; s < GIO_NSTACKS; s++)
			for (int m = 0; m < GIO_NMODES; m++)
				if (g->b[r][s][m].ran && !g->b[r][s][m].ok)
					fprintf(f, "  round %d %s %s FAILED: "
						"%s\n", r + 1,
						gio_stack_names[s],
						gio_mode_names[m],
						g->b[r][s][m].why);
}

/* print_stack() - one stack's table: IOPS, MB/s, % of no IOMMU. */
static void print_stack(const struct gio *g, int s, FILE *f)
{
	char jn[32], io[16], mb[16], pc[32];

	fprintf(f, "\n%s: %s\n  %-16s %-9s %9s %8s  %s\n", gio_stack_names[s],
		stack_text(g, s), "job", "mode", g->o.net ? "MB/s|pps" : "IOPS",
		"MB/s", "% of noiommu (rounds)");
	for (int j = 0; j < gio_njobs(g); j++) {
		job_name(g, jn, sizeof(jn), j);
		for (int m = 0; m < GIO_NMODES; m++) {
			if (!g->o.mode[m])
				continue;
			cell(io, sizeof(io), gio_iops(g, s, m, j).med, 0);
			cell(mb, sizeof(mb), gio_mbps(g, s, m, j).med, 1);
			if (m == GIO_NOIOMMU)
				snprintf(pc, sizeof(pc), "(baseline)");
			else
				pct_cell(pc, sizeof(pc), gio_pct(g, s, m, j));
			fprintf(f, "  %-16s %-9s %9s %8s  %s\n", jn,
				gio_mode_names[m], io, mb, pc);
			jn[0] = 0;
		}
	}
}

/* print_summary() - % of no IOMMU side by side, one row per job. */
static void print_summary(const struct gio *g, FILE *f)
{
	char jn[32], pc[16];

	fprintf(f, "\n%% of the same stack's no-IOMMU %s (median of "
		"per-round ratios)\n  %-16s", g->o.net ? "rate" : "IOPS",
		"job");
	for (int m = GIO_PT; m < GIO_NMODES; m++)
		for (int s = 0; s < GIO_NSTACKS; s++)
			if (g->o.mode[m] && g->o.stack[s])
				fprintf(f, " %9.9s/%-5.5s", gio_mode_names[m],
					gio_stack_names[s]);
	fputc('\n', f);
	for (int j = 0; j < gio_njobs(g); j++) {
		job_name(g, jn, sizeof(jn), j);
		fprintf(f, "  %-16s", jn);
		for (int m = GIO_PT; m < GIO_NMODES; m++)
			for (int s = 0; s < GIO_NSTACKS; s++) {
				if (!g->o.mode[m] || !g->o.stack[s])
					continue;
				cell(pc, sizeof(pc), gio_pct(g, s, m, j).med,
				     1);
				fprintf(f, " %15s", pc);
			}
		fputc('\n', f);
	}
}

/* print_net_requests() - --net: where the time goes, per MiB sent. */
static void print_net_requests(const struct gio *g, FILE *f)
{
	char a[16], b[16], c[16], d[16], i[16], k[16], u[16];

	if (g->o.vtd)
		fprintf(f, "\n(--iommu vtd: MAPs = the VT-d model's "
			"invalidation descriptors, UNMAPs = its\n  invalidation "
			"waits, IOMMU-k = register writes the frame's poller "
			"fed it)");
	fprintf(f, "\nPer MiB the NICs sent over each boot (viommu-server's "
		"counters; median over rounds;\n  MAPs, UNMAPs, IOMMU kicks: "
		"requests to our virtio-iommu; NIC kicks: register\n  writes "
		"on "
		"the NICs' links (queue notifies); IRQs: the NICs' interrupts "
		"(used-buffer\n  notifications); guest CPU: busy %% of the "
		"guest's CPUs during the TCP jobs)\n"
		"  %-6s %-9s %7s %7s %7s %7s %7s %11s %9s\n", "stack", "mode",
		"MAPs", "UNMAPs", "IOMMU-k", "NIC-k", "IRQs", "server CPU us",
		"guest CPU");
	for (int s = 0; s < GIO_NSTACKS; s++)
		for (int m = 0; m < GIO_NMODES; m++) {
			if (!g->o.stack[s] || !g->o.mode[m] || s == GIO_MIXED)
				continue;
			cell(a, sizeof(a), s == GIO_OURS ?
			     per_io(g, s, m, 0) : -1, 1);
			cell(b, sizeof(b), s == GIO_OURS ?
			     per_io(g, s, m, 1) : -1, 1);
			cell(c, sizeof(c), s == GIO_OURS ?
			     per_io(g, s, m, 2) : -1, 1);
			cell(k, sizeof(k), s == GIO_OURS ?
			     per_io(g, s, m, 6) : -1, 1);
			cell(i, sizeof(i), s == GIO_OURS ?
			     per_io(g, s, m, 5) : -1, 1);
			cell(d, sizeof(d), s == GIO_OURS ?
			     per_io(g, s, m, 3) : -1, 0);
			cell(u, sizeof(u), guest_cpu(g, s, m), 1);
			fprintf(f, "  %-6s %-9s %7s %7s %7s %7s %7s %11s %9s\n",
				gio_stack_names[s], gio_mode_names[m], a, b,
				c, k, i, d, u);
		}
	fprintf(f, "  (whole boot: the guest's boot-time mappings are "
		"included; QEMU's stack has no\n  counters of ours)\n");
}

/* print_requests() - where the time goes: requests per I/O. */
static void print_requests(const struct gio *g, FILE *f)
{
	if (g->o.net) {
		print_net_requests(g, f);
		return;
	}
	char a[16], b[16], c[16], d[16], e[16], i[16];

	fprintf(f, "\nPer disk I/O over each boot (viommu-server's counters; "
		"median over rounds;\n  MAPs, UNMAPs, kicks: requests to our "
		"virtio-iommu (QEMU's has no counters);\n  DMA msgs: vfio-user "
		"DMA_MAP + DMA_UNMAP from QEMU on the disk's link; IRQs: the\n"
		"  disk's interrupts)\n  %-6s %-8s %7s %7s %7s %8s %6s %13s\n",
		"stack", "mode", "MAPs", "UNMAPs", "kicks", "DMA msgs", "IRQs",
		"server CPU us");
	for (int s = 0; s < GIO_QEMU; s++)
		for (int m = 0; m < GIO_NMODES; m++) {
			if (!g->o.stack[s] || !g->o.mode[m])
				continue;
			cell(a, sizeof(a), s == GIO_OURS ?
			     per_io(g, s, m, 0) : -1, 2);
			cell(b, sizeof(b), s == GIO_OURS ?
			     per_io(g, s, m, 1) : -1, 2);
			cell(c, sizeof(c), s == GIO_OURS ?
			     per_io(g, s, m, 2) : -1, 2);
			cell(d, sizeof(d), per_io(g, s, m, 3), 1);
			cell(e, sizeof(e), per_io(g, s, m, 4), 2);
			cell(i, sizeof(i), per_io(g, s, m, 5), 2);
			fprintf(f, "  %-6s %-8s %7s %7s %7s %8s %6s %13s\n",
				gio_stack_names[s], gio_mode_names[m], a, b,
				c, e, i, d);
		}
	fprintf(f, "  (whole boot: the guest's boot-time I/O and mappings "
		"are included; server CPU\n  covers its link threads and the "
		"disk's I/O)\n");
}

/* goal_asked() - whether the goal of mode @m (@vs_qemu: against QEMU's
 * stack) has its stacks and modes on the command line. */
static bool goal_asked(const struct gio *g, int m, bool vs_qemu)
{
	return g->o.stack[GIO_OURS] && g->o.mode[m] &&
	       g->o.mode[GIO_NOIOMMU] && (!vs_qemu || g->o.stack[GIO_QEMU]);
}

/* ADD() - append to the line being built in print_goals(). */
#define ADD(...)                                                          \
	(ln += (size_t)snprintf(line + ln, ln < sizeof(line) ?            \
				sizeof(line) - ln : 0, __VA_ARGS__))

/* line_out() - print the line in @line without trailing blanks; reset. */
static void line_out(FILE *f, char *line, size_t *ln)
{
	size_t n = *ln < 256 ? *ln : 255;

	while (n && line[n - 1] == ' ')
		n--;
	fprintf(f, "%.*s\n", (int)n, line);
	*ln = 0;
}

/*
 * print_goals() - one row per job, one column per goal asked for: the
 * value (ours, or ours/QEMU's) and the verdict; then a count.
 */
static void print_goals(const struct gio *g, FILE *f)
{
	int n[3] = { 0 }, asked = 0;
	char jn[32], v[40], o[16], q[16], line[256];
	size_t ln = 0;
	enum gio_verdict vd;
	double x, y;

	fprintf(f, "\nGoals, per job (%% of the same stack's no-IOMMU %s, "
		"median of per-round ratios):\n", g->o.net ? "rate" : "IOPS");
	ADD("  %-16s", "job");
	for (int m = GIO_LAZY; m <= GIO_STRICT; m++)
		if (goal_asked(g, m, false))
			ADD(" %-18s", m == GIO_LAZY ? "ours lazy >= 95%" :
				"ours strict >= 60%");
	for (int m = GIO_PT; m < GIO_NMODES; m++)
		if (goal_asked(g, m, true)) {
			snprintf(v, sizeof(v), "%s: ours > qemu",
				 gio_mode_names[m]);
			ADD(" %-22s", v);
		}
	line_out(f, line, &ln);
	for (int j = 0; j < gio_njobs(g); j++) {
		job_name(g, jn, sizeof(jn), j);
		ADD("  %-16s", jn);
		for (int m = GIO_LAZY; m <= GIO_STRICT; m++) {
			if (!goal_asked(g, m, false))
				continue;
			vd = gio_goal_pct(g, m, j, &x);
			cell(o, sizeof(o), x, 1);
			snprintf(v, sizeof(v), "%s %s", o, verdict_names[vd]);
			ADD(" %-18s", v);
			n[vd]++;
		}
		for (int m = GIO_PT; m < GIO_NMODES; m++) {
			if (!goal_asked(g, m, true))
				continue;
			vd = gio_goal_vs_qemu(g, m, j, &x, &y);
			cell(o, sizeof(o), x, 1);
			cell(q, sizeof(q), y, 1);
			snprintf(v, sizeof(v), "%s/%s %s", o, q,
				 verdict_names[vd]);
			ADD(" %-22s", v);
			n[vd]++;
		}
		line_out(f, line, &ln);
	}
	for (int m = GIO_PT; m < GIO_NMODES; m++)
		asked += (m >= GIO_LAZY && m <= GIO_STRICT &&
			  goal_asked(g, m, false)) + goal_asked(g, m, true);
	fprintf(f, "Goals: %d met, %d MISSED, %d NOT MEASURED (of %d; %d not "
		"run: their stacks or modes were not asked for)\n",
		n[GIO_MET], n[GIO_MISSED], n[GIO_NOT_MEASURED],
		asked * gio_njobs(g), (5 - asked) * gio_njobs(g));
	/* 5: lazy and strict against their goals, and three modes against
	 * QEMU (pt, lazy, strict; --iommu vtd: lazy, strict, strict-cm) */
}

/* gio_print_table() - see guest_io.h. */
void gio_print_table(const struct gio *g, FILE *f)
{
	print_head(g, f);
	for (int s = 0; s < GIO_NSTACKS; s++)
		if (g->o.stack[s] && !g->skip[s][0])
			print_stack(g, s, f);
	print_summary(g, f);
	print_requests(g, f);
	print_goals(g, f);
}

/* ------------------------------------------------------------------ */
/* JSON                                                               */

/* json_job() - the fields naming job @j: "job" and blk's rw, size, qd or
 * --net's proto, dir, streams, msg. */
static void json_job(const struct gio *g, FILE *f, int j)
{
	char k[48];

	job_key(g, k, sizeof(k), j);
	fprintf(f, "\"job\": \"%s\", ", k);
	if (g->o.net)
		fprintf(f, "\"proto\": \"%s\", \"dir\": \"%s\", "
			"\"streams\": %u, \"msg\": %u, ",
			gio_net_jobs[j].udp ? "udp" : "tcp",
			gio_net_jobs[j].ba ? "ba" : "ab",
			gio_net_jobs[j].streams, gio_net_jobs[j].msg);
	else
		fprintf(f, "\"rw\": \"%s\", \"size\": %u, \"qd\": %u, ",
			gio_jobs[j].write ? "write" : "read",
			gio_jobs[j].size, gio_jobs[j].qd);
}

/* json_stacks() - per stack: "ran" or why not, and what it is. */
static void json_stacks(const struct gio *g, FILE *f)
{
	fputs(",\n  \"stacks\": {", f);
	for (int s = 0; s < GIO_NSTACKS; s++) {
		fprintf(f, "%s\n    \"%s\": {\"status\": ", s ? "," : "",
			gio_stack_names[s]);
		json_str(f, !g->o.stack[s] ? "not asked (--stacks)" :
			 g->skip[s][0] ? g->skip[s] : "ran");
		fputs(", \"what\": ", f);
		json_str(f, stack_text(g, s));
		fputc('}', f);
	}
	fputs("\n  }", f);
}

/* json_boots() - one object per boot that ran. */
static void json_boots(const struct gio *g, FILE *f)
{
	bool first = true;

	fputs(",\n  \"boots\": [", f);
	for (int r = 0; r < g->o.rounds; r++)
		for (int s = 0; s < GIO_NSTACKS; s++)
			for (int m = 0; m < GIO_NMODES; m++) {
				const struct gio_boot *b = &g->b[r][s][m];

				if (!b->ran)
					continue;
				fprintf(f, "%s\n    {\"round\": %d, \"stack\": "
					"\"%s\", \"mode\": \"%s\", \"ok\": %s, "
					"\"pinned\": %s, \"seconds\": %.1f, "
					"\"loadavg\": %.2f, \"domain\": ",
					first ? "" : ",", r + 1,
					gio_stack_names[s], gio_mode_names[m],
					b->ok ? "true" : "false",
					b->pinned ? "true" : "false", b->secs,
					b->load);
				json_str(f, b->dtype);
				fputs(", \"ios\": ", f);
				json_num_or_null(f, b->ios);
				fputs(", \"maps\": ", f);
				json_num_or_null(f, b->maps);
				fputs(", \"unmaps\": ", f);
				json_num_or_null(f, b->unmaps);
				fputs(", \"kicks\": ", f);
				json_num_or_null(f, b->kicks);
				fputs(", \"dma_msgs\": ", f);
				json_num_or_null(f, b->dma_msgs);
				fputs(", \"irqs\": ", f);
				json_num_or_null(f, b->irqs);
				if (g->o.net) {
					fputs(", \"nic_kicks\": ", f);
					json_num_or_null(f, b->nic_kicks);
				}
				fputs(", \"server_cpu_seconds\": ", f);
				json_num_or_null(f, b->srv_cpu);
				fputs(", \"reason\": ", f);
				json_str(f, b->why);
				fputc('}', f);
				first = false;
			}
	fputs("\n  ]", f);
}

/* json_results() - per stack, mode and job. */
static void json_results(const struct gio *g, FILE *f)
{
	bool first = true;

	fputs(",\n  \"results\": [", f);
	for (int s = 0; s < GIO_NSTACKS; s++)
		for (int m = 0; m < GIO_NMODES; m++)
			for (int j = 0; j < gio_njobs(g); j++) {
				if (!g->o.stack[s] || !g->o.mode[m])
					continue;
				fprintf(f, "%s\n    {\"stack\": \"%s\", "
					"\"mode\": \"%s\", ",
					first ? "" : ",", gio_stack_names[s],
					gio_mode_names[m]);
				json_job(g, f, j);
				json_rstat(f, g->o.net ? (gio_net_jobs[j].udp ?
							 "pps" : "rate_MBps") :
					  "iops", gio_iops(g, s, m, j));
				fputs(",\n     ", f);
				json_rstat(f, "MBps", gio_mbps(g, s, m, j));
				fputs(", ", f);
				json_rstat(f, "pct_of_noiommu",
					  gio_pct(g, s, m, j));
				fputc('}', f);
				first = false;
			}
	fputs("\n  ]", f);
}

/* json_requests() - per-I/O counters per stack and mode. */
static void json_requests(const struct gio *g, FILE *f)
{
	bool first = true;

	fprintf(f, ",\n  \"per_io_unit\": \"%s\",\n  \"per_io\": [",
		g->o.net ? "MiB sent by the NICs" : "disk I/O");
	for (int s = 0; s < GIO_NSTACKS; s++)
		for (int m = 0; m < GIO_NMODES; m++) {
			if (!g->o.stack[s] || !g->o.mode[m] ||
			    (s == GIO_QEMU && !g->o.net) ||
			    (s == GIO_MIXED && g->o.net))
				continue;
			fprintf(f, "%s\n    {\"stack\": \"%s\", \"mode\": "
				"\"%s\", \"maps\": ", first ? "" : ",",
				gio_stack_names[s], gio_mode_names[m]);
			json_num_or_null(f, s == GIO_OURS ? per_io(g, s, m, 0) : -1);
			fputs(", \"unmaps\": ", f);
			json_num_or_null(f, s == GIO_OURS ? per_io(g, s, m, 1) : -1);
			fputs(", \"kicks\": ", f);
			json_num_or_null(f, s == GIO_OURS ? per_io(g, s, m, 2) : -1);
			fputs(", \"dma_msgs\": ", f);
			json_num_or_null(f, per_io(g, s, m, 4));
			fputs(", \"irqs\": ", f);
			json_num_or_null(f, per_io(g, s, m, 5));
			fputs(", \"server_cpu_us\": ", f);
			json_num_or_null(f, per_io(g, s, m, 3));
			if (g->o.net) {
				fputs(", \"nic_kicks\": ", f);
				json_num_or_null(f, s == GIO_OURS ?
					 per_io(g, s, m, 6) : -1);
				fputs(", \"guest_cpu_pct\": ", f);
				json_num_or_null(f, guest_cpu(g, s, m));
			}
			fputc('}', f);
			first = false;
		}
	fputs("\n  ]", f);
}

/* json_goals() - every goal with its verdict. */
static void json_goals(const struct gio *g, FILE *f)
{
	static const char *const vn[] = { "not measured", "met", "missed" };
	enum gio_verdict vd;
	bool first = true;
	double x, y;

	fputs(",\n  \"goals\": [", f);
	for (int m = GIO_LAZY; m <= GIO_STRICT; m++)
		for (int j = 0; j < gio_njobs(g); j++) {
			vd = gio_goal_pct(g, m, j, &x);
			fprintf(f, "%s\n    {\"goal\": \"ours %s >= %.0f%% of "
				"noiommu\", ", first ? "" : ",",
				gio_mode_names[m], m == GIO_LAZY ? GOAL_LAZY :
				GOAL_STRICT);
			json_job(g, f, j);
			fputs("\"value\": ", f);
			json_num_or_null(f, x);
			fprintf(f, ", \"verdict\": \"%s\"}", vn[vd]);
			first = false;
		}
	for (int m = GIO_PT; m < GIO_NMODES; m++)
		for (int j = 0; j < gio_njobs(g); j++) {
			vd = gio_goal_vs_qemu(g, m, j, &x, &y);
			fprintf(f, ",\n    {\"goal\": \"ours %s %% above "
				"qemu's\", ", gio_mode_names[m]);
			json_job(g, f, j);
			fputs("\"value\": ", f);
			json_num_or_null(f, x);
			fputs(", \"qemu\": ", f);
			json_num_or_null(f, y);
			fprintf(f, ", \"verdict\": \"%s\"}", vn[vd]);
		}
	fputs("\n  ]", f);
}

/* gio_write_json() - see guest_io.h. */
void gio_write_json(const struct gio *g, FILE *f)
{
	json_header(f, "guest-io", g->o.smoke, g->o.rounds, &g->m);
	fprintf(f, ",\n  \"bench_ms\": %u,\n  \"seconds\": %.1f,\n  \"pin\": ",
		g->o.ms, g->secs);
	if (g->o.pin >= 0)
		fprintf(f, "%d", g->o.pin);
	else
		fputs("null", f);
	fprintf(f, ",\n  \"poll_rq_us\": %u,\n  \"kind\": \"%s\"",
		g->o.poll_rq_us, g->o.net ? "net" : "blk");
	fprintf(f, ",\n  \"iommu\": \"%s\",\n  \"frame_nap_us\": %u",
		g->o.vtd ? "vtd" : "virtio-iommu", g->o.frame_nap_us);
	fputs(",\n  \"qemu\": ", f);
	if (g->q.path[0]) {
		fputs("{\"path\": ", f);
		json_str(f, g->q.path);
		fputs(", \"version\": ", f);
		json_str(f, g->q.version);
		fputc('}', f);
	} else {
		fputs("null", f);
	}
	json_stacks(g, f);
	json_boots(g, f);
	json_results(g, f);
	json_requests(g, f);
	json_goals(g, f);
	fputs("\n}\n", f);
}
