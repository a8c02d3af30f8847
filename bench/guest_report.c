/*
 * guest_report.c - `viommu-bench guest`: statistics, goals and the report.
 *
 * Every figure is the median over the rounds of the boots that gave it,
 * with its range; every comparison is also taken round by round (both
 * boots of a round ran back to back on the same machine) and shown as the
 * range of those per-round ratios.  The comparisons:
 *
 *   map_unmap  pairs/s of ours with kicks and of ours polled, each over
 *              QEMU's virtio-iommu with the same DMA engine (the P_QEMU
 *              boot), per size.  Goal: ours/QEMU >= 1.5 with kicks (no
 *              polling CPU); the polled ratio has no goal (it spends a CPU).
 *   mmio       ns per register write (a posted doorbell) and per register
 *              read (a round trip) over vfio-user (the ours boot) against
 *              x-pci-proxy-dev (the proxy boot), as proxy/vfio-user.  No goal.
 *   ring       our engine's ring copies translated through the IOMMU against
 *              the same copies bypassing it, interleaved in the passthrough
 *              boot, per chunk size.  Goal: >= 95 %.
 *
 * The goals are printed one line each, with MET, MISSED or NOT MEASURED:
 * a miss is never left out.  The JSON report carries the same figures and
 * verdicts ("goals": [...]) for scripts.
 */
#include "guest.h"

#include <string.h>

#define GOAL_MAP_UNMAP 1.5   /* ours/QEMU map+unmap pairs/s, with kicks */
#define GOAL_RING 0.95       /* translated/bypass ring copy throughput */

/* Which figure of a boot. */
enum fig { F_PAIRS, F_RING, F_RING_BYPASS, F_MMIO };

/* ------------------------------------------------------------------ */
/* Statistics                                                         */

/* fig() - figure @f at index @i of boot @b, or -1. */
static double fig(const struct gb_boot *b, enum fig f, int i)
{
	if (!b->ok)
		return -1;
	switch (f) {
	case F_PAIRS:
		return b->pairs[i];
	case F_RING:
		return b->ring[i];
	case F_RING_BYPASS:
		return b->ring_bypass[i];
	default:
		return b->mmio_ns[i];
	}
}

/* fig_stat() - figure @f at index @i of @peer over the rounds. */
static struct rstat fig_stat(const struct guestb *g, enum peer peer,
			     enum fig f, int i)
{
	double v[GB_MAX_ROUNDS];
	int n = 0;

	for (int r = 0; r < g->o.rounds; r++)
		if (fig(&g->b[r][peer], f, i) > 0)
			v[n++] = fig(&g->b[r][peer], f, i);
	return rstat_of(v, n);
}

/*
 * round_ratios() - figure @f of @a over the same figure of @b (for the
 * ring, @f over F_RING_BYPASS of the same boot when @a == @b), at index
 * @i, in each round where both have one.
 */
static struct rstat round_ratios(const struct guestb *g, enum peer a,
				 enum peer b, enum fig f, int i)
{
	enum fig fb = a == b ? F_RING_BYPASS : f;
	double v[GB_MAX_ROUNDS];
	int n = 0;

	for (int r = 0; r < g->o.rounds; r++) {
		double p = fig(&g->b[r][a], f, i), q = fig(&g->b[r][b], fb, i);

		if (p > 0 && q > 0)
			v[n++] = p / q;
	}
	return rstat_of(v, n);
}

/* ratio() - @a.med / @b.med, or -1 if either is missing. */
static double ratio(struct rstat a, struct rstat b)
{
	return a.n && b.n ? a.med / b.med : -1;
}

/* segs_of() - the segs= of @peer at size index @i (first boot with one). */
static int segs_of(const struct guestb *g, enum peer peer, int i)
{
	for (int r = 0; r < g->o.rounds; r++)
		if (g->b[r][peer].ok && g->b[r][peer].pairs[i] > 0)
			return g->b[r][peer].segs[i];
	return -1;
}

/* ------------------------------------------------------------------ */
/* Words                                                              */

/* gb_peer_text() - see guest.h. */
const char *gb_peer_text(const struct guestb *g, enum peer p)
{
	static const char *const text[P_COUNT] = {
		"our virtio-iommu + DMA engine (viommu-server), kicks",
		"ours again, viommu-server --poll-rq-us: the request queue "
		"polled, kicks suppressed while busy",
		"qemu-iommu + our engine over vfio-user: QEMU's "
		"virtio-iommu-pci, our DMA engine (viommu-server --no-iommu)",
		"ours, iommu.passthrough=1: engine 0 bypassed, engine 1 in VFIO",
		"ours on the proxy QEMU through x-pci-proxy-dev (register "
		"access costs)",
	};

	if (p == P_QEMU && !strcmp(g->q.door, "proxy"))
		return "QEMU's virtio-iommu-pci + edu (this QEMU has no "
		       "vfio-user-pci for our engine)";
	return text[p];
}

/* fmt_size() - "4 KiB", "2 MiB". */
static void fmt_size(char *buf, size_t n, uint32_t v)
{
	if (v >= (1u << 20) && !(v % (1u << 20)))
		snprintf(buf, n, "%u MiB", v >> 20);
	else if (v >= 1024 && !(v % 1024))
		snprintf(buf, n, "%u KiB", v >> 10);
	else
		snprintf(buf, n, "%u B", v);
}

/* cell() - @v with @prec decimals and @sfx, or "-" when there is none. */
static void cell(char *buf, size_t n, double v, int prec, const char *sfx)
{
	if (v < 0)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.*f%s", prec, v, sfx);
}

/* range() - "lo..hi" of @s with @prec decimals (scaled by @k), or "-". */
static void range(char *buf, size_t n, struct rstat s, double k, int prec)
{
	if (!s.n)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.*f..%.*f", prec, k * s.min, prec,
			 k * s.max);
}

/* verdict() - MET, MISSED or NOT MEASURED for @v against @goal. */
static const char *verdict(double v, double goal)
{
	return v < 0 ? "NOT MEASURED" : v >= goal ? "MET" : "MISSED";
}

/* below() - in how many rounds figure @f of @a over @b (as in
 * round_ratios()) is below @goal. */
static int below(const struct guestb *g, enum peer a, enum peer b,
		 enum fig f, int i, double goal)
{
	int n = 0;

	for (int r = 0; r < g->o.rounds; r++) {
		double p = fig(&g->b[r][a], f, i);
		double q = fig(&g->b[r][b], a == b ? F_RING_BYPASS : f, i);

		n += p > 0 && q > 0 && p / q < goal;
	}
	return n;
}

/*
 * goal_line() - one goal: the median ratio @r with its verdict, the range
 * of the per-round ratios @rr (scaled by @k, with @sfx) and, when the
 * median meets the goal but some rounds did not, how many.
 */
static void goal_line(FILE *f, const char *what, double r, struct rstat rr,
		      int nbelow, double goal, double k, int prec,
		      const char *sfx)
{
	char v[16], l[32];

	cell(v, sizeof(v), r < 0 ? r : k * r, prec, sfx);
	range(l, sizeof(l), rr, k, prec);
	fprintf(f, "  %s: %s (goal %.*f%s: %s; rounds %s%s", what, v,
		k > 1 ? 0 : 1, k * goal, sfx, verdict(r, goal), l,
		rr.n ? sfx : "");
	if (r >= goal && nbelow)
		fprintf(f, ", %d of %d below", nbelow, rr.n);
	fputs(")\n", f);
}

/* ------------------------------------------------------------------ */
/* The table                                                          */

/* print_qemus() - which QEMU and door the boots ran. */
static void print_qemus(const struct guestb *g, FILE *f)
{
	if (g->q.path[0])
		fprintf(f, "qemu:    main boots: QEMU %s (%s), our devices "
			"through %s\n", g->q.version, g->q.path,
			strcmp(g->q.door, "proxy") ? "vfio-user (vfio-user-pci)" :
			"the proxy (x-pci-proxy-dev)");
	else
		fprintf(f, "qemu:    main boots: none: %s\n", g->q.why);
	if (g->pq.path[0] && !g->skip[P_PROXY][0])
		fprintf(f, "         proxy boot: QEMU %s (%s), our devices "
			"through x-pci-proxy-dev\n", g->pq.version,
			g->pq.path);
}

/* print_method() - rounds, lengths, pinning. */
static void print_method(const struct guestb *g, FILE *f)
{
	fprintf(f, "method:  %d round(s) of one boot per peer, order reversed "
		"every other round;\n         %u ms per measurement; median "
		"over rounds; %d boots in %.0f s;\n", g->o.rounds, g->o.ms,
		g->nboots, g->secs);
	if (g->o.pin >= 0)
		fprintf(f, "         every boot pinned to CPU %d (QEMU, "
			"viommu-server, all threads)%s\n", g->o.pin,
			g->o.poll_rq_us ? " except polled (its poller needs a "
			"CPU of its own)" : "");
	else
		fprintf(f, "         not pinned: QEMU's vCPU and I/O threads "
			"and our link threads share\n         the machine's "
			"%ld CPUs\n", g->m.ncpu);
}

/* print_peers() - which boots ran, failed or were skipped. */
static void print_peers(const struct guestb *g, FILE *f)
{
	for (int p = 0; p < P_COUNT; p++) {
		int ok = 0, ran = 0;

		for (int r = 0; r < g->o.rounds; r++) {
			ran += g->b[r][p].ran;
			ok += g->b[r][p].ok;
		}
		if (g->skip[p][0])
			fprintf(f, "  %-6s %s:\n         SKIPPED, %s\n",
				gb_peer_names[p], gb_peer_text(g, p),
				g->skip[p]);
		else
			fprintf(f, "  %-6s %s:\n         %d of %d boots ok\n",
				gb_peer_names[p], gb_peer_text(g, p), ok, ran);
	}
	for (int r = 0; r < g->o.rounds; r++)
		for (int p = 0; p < P_COUNT; p++)
			if (g->b[r][p].ran && !g->b[r][p].ok)
				fprintf(f, "  round %d %s FAILED: %s\n", r + 1,
					gb_peer_names[p], g->b[r][p].why);
}

/* print_pairs() - the map/unmap table. */
static void print_pairs(const struct guestb *g, FILE *f)
{
	char sz[16], a[16], p[16], q[16], r1[16], l1[32], r2[16], l2[32];
	char so[16], sp[16], sq[16];

	fprintf(f, "\n1. VFIO MAP_DMA + UNMAP_DMA pairs/s of one physically "
		"contiguous buffer (main QEMU)\n"
		"  %-8s %8s %8s %8s %9s %-11s %11s %-11s %s\n", "size",
		"ours", "polled", "QEMU", "ours/QEMU", " rounds",
		"polled/QEMU", " rounds", "MAPs/pair");
	for (int i = 0; i < g->o.nsizes; i++) {
		struct rstat o = fig_stat(g, P_OURS, F_PAIRS, i);
		struct rstat pl = fig_stat(g, P_POLLED, F_PAIRS, i);
		struct rstat qm = fig_stat(g, P_QEMU, F_PAIRS, i);

		fmt_size(sz, sizeof(sz), g->o.sizes[i]);
		cell(a, sizeof(a), o.med, 0, "");
		cell(p, sizeof(p), pl.med, 0, "");
		cell(q, sizeof(q), qm.med, 0, "");
		cell(r1, sizeof(r1), ratio(o, qm), 2, "");
		range(l1, sizeof(l1), round_ratios(g, P_OURS, P_QEMU, F_PAIRS,
						   i), 1, 2);
		cell(r2, sizeof(r2), ratio(pl, qm), 2, "");
		range(l2, sizeof(l2), round_ratios(g, P_POLLED, P_QEMU,
						   F_PAIRS, i), 1, 2);
		cell(so, sizeof(so), segs_of(g, P_OURS, i), 0, "");
		cell(sp, sizeof(sp), segs_of(g, P_POLLED, i), 0, "");
		cell(sq, sizeof(sq), segs_of(g, P_QEMU, i), 0, "");
		fprintf(f, "  %-8s %8s %8s %8s %9s  %-10s %11s  %-10s %s/%s/%s\n",
			sz, a, p, q, r1, l1, r2, l2, so, sp, sq);
	}
	fprintf(f, "  MAPs/pair: physically contiguous runs of the buffer "
		"(ours/polled/QEMU), i.e. MAP requests per pair\n");
}

/* print_polled() - the polled boots' share of polled requests, CPU. */
static void print_polled(const struct guestb *g, FILE *f)
{
	double polled = 0, all = 0, cpu = 0, secs = 0;

	for (int r = 0; r < g->o.rounds; r++) {
		const struct gb_boot *b = &g->b[r][P_POLLED];

		if (b->ok && b->polled >= 0 && b->requests > 0) {
			polled += b->polled;
			all += b->requests;
		}
		if (b->ok && b->srv_cpu >= 0 && b->srv_secs > 0) {
			cpu += b->srv_cpu;
			secs += b->srv_secs;
		}
	}
	if (all > 0)
		fprintf(f, "  polled: %.0f of %.0f requests (%.1f%%) served by "
			"polling, without a kick\n", polled, all,
			100.0 * polled / all);
	if (secs > 0)
		fprintf(f, "  polled: viommu-server used %.1f s of CPU in %.1f "
			"s of boots\n", cpu, secs);
}

/* print_mmio() - the register access table. */
static void print_mmio(const struct guestb *g, FILE *f)
{
	char a[16], b[16], c[16], r[16], l[32];

	fprintf(f, "\n2. Register access from guest user space through the "
		"VFIO BAR mapping, ns per access\n   (our DMA engine's "
		"liveness register; vfio-user: the ours boot, main QEMU;\n"
		"   proxy: the proxy boot; qemu-iommu boot: our engine over "
		"vfio-user there too)\n"
		"  %-10s %10s %10s %15s %-12s %15s\n", "access", "vfio-user",
		"proxy", "proxy/vfio-user", " rounds", "qemu-iommu boot");
	for (int i = 0; i < M_COUNT; i++) {
		struct rstat v = fig_stat(g, P_OURS, F_MMIO, i);
		struct rstat p = fig_stat(g, P_PROXY, F_MMIO, i);
		struct rstat q = fig_stat(g, P_QEMU, F_MMIO, i);

		cell(a, sizeof(a), v.med, 0, "");
		cell(b, sizeof(b), p.med, 0, "");
		cell(c, sizeof(c), q.med, 0, "");
		cell(r, sizeof(r), ratio(p, v), 2, "");
		range(l, sizeof(l), round_ratios(g, P_PROXY, P_OURS, F_MMIO,
						 i), 1, 2);
		fprintf(f, "  %-10s %10s %10s %15s  %-11s %15s\n",
			gb_mmio_names[i], a, b, r, l, c);
	}
	fprintf(f, "  mmio_write: over vfio-user QEMU posts the write (no "
		"reply awaited); over the proxy\n  every write waits for our "
		"reply.  mmio_read: one round trip to viommu-server.\n");
}

/* print_ring() - the ring throughput table. */
static void print_ring(const struct guestb *g, FILE *f)
{
	char sz[16], a[16], b[16], r[16], l[32], n[16], q[16];

	fprintf(f, "\n3. Our DMA engine, ring-mode RAM->RAM copies, MB/s; "
		"IOMMU and bypass interleaved\n   in the passthrough boot "
		"(two engines); ours boot and qemu-iommu boot: translated\n"
		"  %-8s %10s %10s %13s %-12s %10s %15s\n", "chunk", "IOMMU",
		"bypass", "IOMMU/bypass", " rounds", "ours boot",
		"qemu-iommu boot");
	for (int i = 0; i < GB_NCHUNKS; i++) {
		struct rstat t = fig_stat(g, P_BYPASS, F_RING, i);
		struct rstat y = fig_stat(g, P_BYPASS, F_RING_BYPASS, i);

		fmt_size(sz, sizeof(sz), gb_chunks[i]);
		cell(a, sizeof(a), t.med, 0, "");
		cell(b, sizeof(b), y.med, 0, "");
		cell(r, sizeof(r), t.n && y.n ? 100 * t.med / y.med : -1, 1,
		     "%");
		range(l, sizeof(l), round_ratios(g, P_BYPASS, P_BYPASS, F_RING,
						 i), 100, 0);
		cell(n, sizeof(n), fig_stat(g, P_OURS, F_RING, i).med, 0, "");
		cell(q, sizeof(q), fig_stat(g, P_QEMU, F_RING, i).med, 0, "");
		fprintf(f, "  %-8s %10s %10s %13s  %-11s %10s %15s\n", sz, a, b,
			r, l, n, q);
	}
}

/* print_goals() - every goal with its verdict, then the ratios without. */
static void print_goals(const struct guestb *g, FILE *f)
{
	char sz[16], what[96];

	fprintf(f, "\nGoals (verdict on the median over rounds):\n");
	for (int i = 0; i < g->o.nsizes; i++) {
		double r = ratio(fig_stat(g, P_OURS, F_PAIRS, i),
				 fig_stat(g, P_QEMU, F_PAIRS, i));

		fmt_size(sz, sizeof(sz), g->o.sizes[i]);
		snprintf(what, sizeof(what), "ours/QEMU map_unmap %s (kicks, "
			 "no polling CPU)", sz);
		goal_line(f, what, r, round_ratios(g, P_OURS, P_QEMU, F_PAIRS,
						   i),
			  below(g, P_OURS, P_QEMU, F_PAIRS, i, GOAL_MAP_UNMAP),
			  GOAL_MAP_UNMAP, 1, 2, "x");
	}
	for (int i = 0; i < GB_NCHUNKS; i++) {
		double r = ratio(fig_stat(g, P_BYPASS, F_RING, i),
				 fig_stat(g, P_BYPASS, F_RING_BYPASS, i));

		fmt_size(sz, sizeof(sz), gb_chunks[i]);
		snprintf(what, sizeof(what), "DMA through the IOMMU / bypass, "
			 "ring_copy %s", sz);
		goal_line(f, what, r, round_ratios(g, P_BYPASS, P_BYPASS,
						   F_RING, i),
			  below(g, P_BYPASS, P_BYPASS, F_RING, i, GOAL_RING),
			  GOAL_RING, 100, 1, "%");
	}
	fprintf(f, "No goal (for information): ours-polled/QEMU map_unmap "
		"(spends a CPU polling);\n  register access costs, proxy over "
		"vfio-user (tables 1 and 2).\n");
}

/* gb_print_table() - see guest.h. */
void gb_print_table(struct guestb *g, FILE *f)
{
	fprintf(f, "viommu-bench guest: real Linux guest (Debian 6.12 under "
		"QEMU TCG), VFIO from guest user space%s\n",
		g->o.smoke ? " (SMOKE RUN: numbers not meaningful)" : "");
	machine_print(&g->m, f);
	print_qemus(g, f);
	print_method(g, f);
	print_peers(g, f);
	print_pairs(g, f);
	print_polled(g, f);
	print_mmio(g, f);
	print_ring(g, f);
	print_goals(g, f);
}

/* ------------------------------------------------------------------ */
/* JSON                                                               */

/* json_qemu() - "key": {path, version, door} or null. */
static void json_qemu(FILE *f, const char *key, const struct gb_qemu *q)
{
	fprintf(f, ",\n  \"%s\": ", key);
	if (!q->path[0]) {
		fputs("null", f);
		return;
	}
	fputs("{\"path\": ", f);
	json_str(f, q->path);
	fputs(", \"version\": ", f);
	json_str(f, q->version);
	fputs(", \"door\": ", f);
	json_str(f, q->door);
	fputc('}', f);
}

/* json_peers() - per peer: "ran" or why not, and what it is. */
static void json_peers(const struct guestb *g, FILE *f)
{
	fputs(",\n  \"peers\": {", f);
	for (int p = 0; p < P_COUNT; p++) {
		fprintf(f, "%s\n    \"%s\": {\"status\": ", p ? "," : "",
			gb_peer_names[p]);
		json_str(f, g->skip[p][0] ? g->skip[p] : "ran");
		fputs(", \"what\": ", f);
		json_str(f, gb_peer_text(g, p));
		fputc('}', f);
	}
	fputs("\n  }", f);
}

/* json_boots() - one object per boot that ran. */
static void json_boots(const struct guestb *g, FILE *f)
{
	bool first = true;

	fputs(",\n  \"boots\": [", f);
	for (int r = 0; r < g->o.rounds; r++)
		for (int p = 0; p < P_COUNT; p++) {
			const struct gb_boot *b = &g->b[r][p];

			if (!b->ran)
				continue;
			fprintf(f, "%s\n    {\"round\": %d, \"peer\": \"%s\", "
				"\"ok\": %s, \"pinned\": %s, \"seconds\": "
				"%.1f, \"loadavg\": %.2f, \"reason\": ",
				first ? "" : ",", r + 1, gb_peer_names[p],
				b->ok ? "true" : "false",
				b->pinned ? "true" : "false", b->secs, b->load);
			json_str(f, b->why);
			fputc('}', f);
			first = false;
		}
	fputs("\n  ]", f);
}

/* json_pairs() - the map/unmap figures. */
static void json_pairs(const struct guestb *g, FILE *f)
{
	fputs(",\n  \"map_unmap\": [", f);
	for (int i = 0; i < g->o.nsizes; i++) {
		struct rstat o = fig_stat(g, P_OURS, F_PAIRS, i);
		struct rstat p = fig_stat(g, P_POLLED, F_PAIRS, i);
		struct rstat q = fig_stat(g, P_QEMU, F_PAIRS, i);

		fprintf(f, "%s\n    {\"size\": %u, ", i ? "," : "",
			g->o.sizes[i]);
		json_rstat(f, "ours_pairs_per_s", o);
		fputs(", ", f);
		json_rstat(f, "polled_pairs_per_s", p);
		fputs(", ", f);
		json_rstat(f, "qemu_pairs_per_s", q);
		fputs(",\n     \"ratio_ours_qemu\": ", f);
		json_num_or_null(f, ratio(o, q));
		fputs(", ", f);
		json_rstat(f, "round_ratios_ours_qemu",
			  round_ratios(g, P_OURS, P_QEMU, F_PAIRS, i));
		fputs(",\n     \"ratio_polled_qemu\": ", f);
		json_num_or_null(f, ratio(p, q));
		fputs(", ", f);
		json_rstat(f, "round_ratios_polled_qemu",
			  round_ratios(g, P_POLLED, P_QEMU, F_PAIRS, i));
		fprintf(f, ",\n     \"segs_ours\": %d, \"segs_polled\": %d, "
			"\"segs_qemu\": %d}", segs_of(g, P_OURS, i),
			segs_of(g, P_POLLED, i), segs_of(g, P_QEMU, i));
	}
	fputs("\n  ]", f);
}

/* json_mmio() - the register access figures. */
static void json_mmio(const struct guestb *g, FILE *f)
{
	fputs(",\n  \"mmio\": [", f);
	for (int i = 0; i < M_COUNT; i++) {
		struct rstat v = fig_stat(g, P_OURS, F_MMIO, i);
		struct rstat p = fig_stat(g, P_PROXY, F_MMIO, i);

		fprintf(f, "%s\n    {\"access\": \"%s\", ", i ? "," : "",
			gb_mmio_names[i]);
		json_rstat(f, "vfio_user_ns", v);
		fputs(", ", f);
		json_rstat(f, "proxy_ns", p);
		fputs(", ", f);
		json_rstat(f, "qemu_iommu_boot_vfio_user_ns",
			  fig_stat(g, P_QEMU, F_MMIO, i));
		fputs(",\n     \"ratio_proxy_vfio_user\": ", f);
		json_num_or_null(f, ratio(p, v));
		fputs(", ", f);
		json_rstat(f, "round_ratios",
			  round_ratios(g, P_PROXY, P_OURS, F_MMIO, i));
		fputc('}', f);
	}
	fputs("\n  ]", f);
}

/* json_ring() - the ring figures. */
static void json_ring(const struct guestb *g, FILE *f)
{
	fputs(",\n  \"ring\": [", f);
	for (int i = 0; i < GB_NCHUNKS; i++) {
		struct rstat t = fig_stat(g, P_BYPASS, F_RING, i);
		struct rstat y = fig_stat(g, P_BYPASS, F_RING_BYPASS, i);

		fprintf(f, "%s\n    {\"chunk\": %u, ", i ? "," : "",
			gb_chunks[i]);
		json_rstat(f, "iommu_MBps", t);
		fputs(", ", f);
		json_rstat(f, "bypass_MBps", y);
		fputs(", \"ratio\": ", f);
		json_num_or_null(f, ratio(t, y));
		fputs(",\n     ", f);
		json_rstat(f, "round_ratios",
			  round_ratios(g, P_BYPASS, P_BYPASS, F_RING, i));
		fputs(", ", f);
		json_rstat(f, "ours_boot_iommu_MBps",
			  fig_stat(g, P_OURS, F_RING, i));
		fputs(",\n     ", f);
		json_rstat(f, "qemu_iommu_boot_MBps",
			  fig_stat(g, P_QEMU, F_RING, i));
		fputc('}', f);
	}
	fputs("\n  ]", f);
}

/* json_goal() - one goal object (@nbelow: rounds below the goal). */
static void json_goal(FILE *f, bool first, const char *what, uint32_t size,
		      double value, double goal, struct rstat rr, int nbelow)
{
	fprintf(f, "%s\n    {\"what\": \"%s\", \"size\": %u, \"value\": ",
		first ? "" : ",", what, size);
	json_num_or_null(f, value);
	fprintf(f, ", \"goal\": %g, \"verdict\": \"%s\", ", goal,
		verdict(value, goal));
	json_rstat(f, "round_ratios", rr);
	fprintf(f, ", \"rounds_below\": %d}", nbelow);
}

/* json_goals() - every goal and its verdict. */
static void json_goals(const struct guestb *g, FILE *f)
{
	fputs(",\n  \"goals\": [", f);
	for (int i = 0; i < g->o.nsizes; i++)
		json_goal(f, i == 0, "map_unmap ours/qemu (kicks)",
			  g->o.sizes[i],
			  ratio(fig_stat(g, P_OURS, F_PAIRS, i),
				fig_stat(g, P_QEMU, F_PAIRS, i)),
			  GOAL_MAP_UNMAP,
			  round_ratios(g, P_OURS, P_QEMU, F_PAIRS, i),
			  below(g, P_OURS, P_QEMU, F_PAIRS, i,
				GOAL_MAP_UNMAP));
	for (int i = 0; i < GB_NCHUNKS; i++)
		json_goal(f, !g->o.nsizes && !i, "ring_copy iommu/bypass",
			  gb_chunks[i],
			  ratio(fig_stat(g, P_BYPASS, F_RING, i),
				fig_stat(g, P_BYPASS, F_RING_BYPASS, i)),
			  GOAL_RING,
			  round_ratios(g, P_BYPASS, P_BYPASS, F_RING, i),
			  below(g, P_BYPASS, P_BYPASS, F_RING, i, GOAL_RING));
	fputs("\n  ]", f);
}

/* gb_write_json() - see guest.h. */
void gb_write_json(struct guestb *g, FILE *f)
{
	json_header(f, "guest", g->o.smoke, g->o.rounds, &g->m);
	fprintf(f, ",\n  \"ms\": %u,\n  \"seconds\": %.1f,\n  \"pin\": ",
		g->o.ms, g->secs);
	if (g->o.pin >= 0)
		fprintf(f, "%d", g->o.pin);
	else
		fputs("null", f);
	fprintf(f, ",\n  \"poll_rq_us\": %u", g->o.poll_rq_us);
	json_qemu(f, "qemu", &g->q);
	json_qemu(f, "proxy_qemu", &g->pq);
	json_peers(g, f);
	json_boots(g, f);
	json_pairs(g, f);
	json_mmio(g, f);
	json_ring(g, f);
	json_goals(g, f);
	fputs("\n}\n", f);
}
