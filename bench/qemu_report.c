/*
 * qemu_report.c - `viommu-bench qemu`'s report: medians with min..max over
 * runs, the fit of kick time to batch size, the ratios, and the table and
 * JSON written from them.
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
/* Statistics                                                           */

/* med_of() - the median of @n values at @v (copied, not reordered). */
static double med_of(const double *v, int n, double *lo, double *hi)
{
	double t[BENCH_MAX_RUNS], m;

	memcpy(t, v, sizeof(double) * (size_t)n);
	m = median(t, n);
	if (lo)
		*lo = t[0];
	if (hi)
		*hi = t[n - 1];
	return m;
}

/* summarise_field() - median, min, max of one sample field. */
static void summarise_field(const struct world *w, int k, int p,
			    size_t off, struct summary *s)
{
	double v[BENCH_MAX_RUNS];

	for (int r = 0; r < w->o.runs; r++)
		v[r] = *(const double *)((const char *)&w->s[k][p][r] + off);
	*(double *)((char *)&s->med + off) =
		med_of(v, w->o.runs, (double *)((char *)&s->min + off),
		       (double *)((char *)&s->max + off));
}

/*
 * fit_kick() - split each path's kick time into a fixed part per kick and
 * a part per request: per run, the line through the median kick times of
 * the smallest and the largest batch size; medians over runs.
 */
static void fit_kick(struct world *w)
{
	double fixed[BENCH_MAX_RUNS], per[BENCH_MAX_RUNS], dn;
	int lo = 0, hi = 0;

	for (int k = 1; k < w->o.nsizes; k++) {
		lo = w->o.sizes[k] < w->o.sizes[lo] ? k : lo;
		hi = w->o.sizes[k] > w->o.sizes[hi] ? k : hi;
	}
	dn = (double)w->o.sizes[hi] - w->o.sizes[lo];
	w->fit = dn > 0;
	w->k_lo = lo;
	w->k_hi = hi;
	for (int p = 0; w->fit && p < NPATH; p++) {
		if (!w->on[p])
			continue;
		for (int r = 0; r < w->o.runs; r++) {
			double ka = w->s[lo][p][r].kick_med_ns;

			per[r] = (w->s[hi][p][r].kick_med_ns - ka) / dn;
			fixed[r] = ka - per[r] * w->o.sizes[lo];
		}
		w->per_req_ns[p] = median(per, w->o.runs);
		w->fixed_ns[p] = median(fixed, w->o.runs);
	}
}

/* qb_summarise() - medians of everything. */
void qb_summarise(struct world *w)
{
	static const size_t fields[] = {
		offsetof(struct sample, rps_all),
		offsetof(struct sample, rps_kick),
		offsetof(struct sample, kick_ns),
		offsetof(struct sample, kick_med_ns),
		offsetof(struct sample, rt_batch),
		offsetof(struct sample, cpu_qemu),
		offsetof(struct sample, cpu_srv),
		offsetof(struct sample, cpu_self),
	};
	int runs = w->o.runs;

	w->m_rt_ns = med_of(w->rt_ns, runs, NULL, NULL);
	for (int p = 0; p < NPATH; p++) {
		w->m_mpq_ns[p] = med_of(w->mpq_ns[p], runs, NULL, NULL);
		w->m_empty_ns[p] = med_of(w->empty_ns[p], runs, NULL, NULL);
		for (int k = 0; w->on[p] && k < w->o.nsizes; k++)
			for (size_t f = 0; f < NELEM(fields); f++)
				summarise_field(w, k, p, fields[f],
						&w->sum[k][p]);
	}
	for (int k = 0; k < w->o.nsizes; k++)
		for (int i = 0; i < NRATIO; i++)
			for (int j = 0; j < 2; j++) {
				double *m = w->m_ratio[k][i][j];

				m[0] = med_of(w->ratio[k][i][j], runs, &m[1],
					      &m[2]);
			}
	fit_kick(w);
}

/* ------------------------------------------------------------------ */
/* Output                                                               */

/* fmt_cpu() - a CPU figure, "n/a" (unknown) or "-" (no such process). */
static void fmt_cpu(char *buf, size_t n, double v, bool none)
{
	if (none)
		snprintf(buf, n, "-");
	else if (v < 0)
		snprintf(buf, n, "n/a");
	else
		snprintf(buf, n, "%.0f", v);
}

/* print_row() - one path's line of the table. */
static void print_row(const struct world *w, int k, int p, FILE *f)
{
	const struct summary *s = &w->sum[k][p];
	char all[16], mn[16], mx[16], range[40], kick[16], cq[16], cs[16],
		cb[16];

	fmt_rate(all, sizeof(all), s->med.rps_all);
	fmt_rate(mn, sizeof(mn), s->min.rps_all);
	fmt_rate(mx, sizeof(mx), s->max.rps_all);
	snprintf(range, sizeof(range), "%s..%s", mn, mx);
	fmt_rate(kick, sizeof(kick), s->med.rps_kick);
	fmt_cpu(cq, sizeof(cq), s->med.cpu_qemu, false);
	fmt_cpu(cs, sizeof(cs), s->med.cpu_srv, qb_paths[p].srv < 0);
	fmt_cpu(cb, sizeof(cb), s->med.cpu_self, false);
	fprintf(f, "  %8u  %-9s %9s %17s %10s %8.1f %7.1f %8.1f %8s %8s "
		"%8s\n", w->o.sizes[k], qb_paths[p].name, all, range, kick,
		s->med.kick_ns / 1000, s->med.kick_med_ns / 1000,
		s->med.rt_batch, cq, cs, cb);
}

/* print_ratios() - the ratio lines under size @k's rows. */
static void print_ratios(const struct world *w, int k, FILE *f)
{
	for (int i = 0; i < NRATIO; i++) {
		const double (*m)[3] = w->m_ratio[k][i];

		if (!qb_ratio_on(w, i))
			continue;
		fprintf(f, "  %8s  %-18s all %5.2fx (%.2f..%.2f), kick %5.2fx "
			"(%.2f..%.2f)%s\n", "", qb_ratios[i].name, m[0][0],
			m[0][1], m[0][2], m[1][0], m[1][1], m[1][2],
			i == R_HEADLINE ? "  <- headline" : "");
	}
}

/* print_goal() - the headline against the goal, per size. */
static void print_goal(const struct world *w, FILE *f)
{
	fprintf(f, "\ngoal: %s (req/s all) >= %.0fx:",
		qb_ratios[R_HEADLINE].name, GOAL_RATIO);
	for (int k = 0; k < w->o.nsizes; k++) {
		double r = w->m_ratio[k][R_HEADLINE][0][0];

		fprintf(f, "%s n=%u %.2fx %s", k ? "," : "", w->o.sizes[k], r,
			r >= GOAL_RATIO ? "met" : "NOT met");
	}
	fprintf(f, "\nratios (each the median of per-run ratios of req/s, "
		"min..max):\n");
	for (int i = 0; i < NRATIO; i++)
		if (qb_ratio_on(w, i))
			fprintf(f, "  %-18s  %s\n", qb_ratios[i].name,
				qb_ratios[i].what);
}

/* print_fit() - where the kick time goes. */
static void print_fit(const struct world *w, FILE *f)
{
	fprintf(f, "\nwhere the time goes: empty kick proxy - qemu = %.1f us "
		"(QEMU's proxy hop);\nlink - qemu-shm = %.1f us (an mpqemu "
		"round trip against a qtest one).\n",
		(w->m_empty_ns[P_PROXY] - w->m_empty_ns[P_QEMU]) / 1000,
		(w->m_empty_ns[P_LINK] - w->m_empty_ns[P_QEMU_SHM]) / 1000);
	if (!w->fit) {
		fprintf(f, "(one batch size: no per-request split of the kick "
			"time)\n");
		return;
	}
	fprintf(f, "median kick time = fixed + n x per request (per run, the "
		"line through n=%u\nand n=%u; medians over runs):\n",
		w->o.sizes[w->k_lo], w->o.sizes[w->k_hi]);
	for (int i = 0; i < w->nact; i++) {
		int p = w->act[i];

		fprintf(f, "  %-9s fixed %6.1f us per kick, %6.0f ns per "
			"request\n", qb_paths[p].name, w->fixed_ns[p] / 1000,
			w->per_req_ns[p]);
	}
	fprintf(f, "  per-request device cost, qemu-shm/link: %.2fx, "
		"qemu/proxy: %.2fx\n",
		w->per_req_ns[P_QEMU_SHM] / w->per_req_ns[P_LINK],
		w->per_req_ns[P_QEMU] / w->per_req_ns[P_PROXY]);
}

/* print_method() - how the figures were taken. */
static void print_method(const struct world *w, FILE *f)
{
	fprintf(f,
"method:  one QEMU (q35, %s RAM from a memfd this program maps too;\n"
"         -accel tcg -S: CPUs halted) with QEMU's virtio-iommu-pci at\n"
"         00:03.0 and ours at 00:04.0 (x-pci-proxy-dev -> viommu-server),\n"
"         and viommu-servers this program drives over the proxy link\n"
"         itself; one register-level driver; endpoint 0x28 in domain 1;\n"
"         alternating batches of n MAP / n UNMAP (4 KiB), one kick each;\n"
"         ~%u requests per path and measurement, the paths taking turns\n"
"         in chunks of ~%d requests; median of %d runs\n",
		RAM_SIZE_STR, w->o.requests, CHUNK_REQUESTS, w->o.runs);
	if (w->o.pin >= 0)
		fprintf(f, "pinned:  every process of the run on CPU %d "
			"(--pin)\n", w->o.pin);
	else
		fprintf(f, "pinned:  no (the scheduler places every thread; "
			"--pin CPU puts all on one)\n");
	fputs(
"paths:   qemu      QEMU's device; config, MMIO and RAM through qtest\n"
"         qemu-shm  the same device and driver state; config and MMIO\n"
"                   through qtest, RAM in the mapped memfd\n"
"         proxy     ours behind x-pci-proxy-dev; all through qtest\n"
"         link      ours, no QEMU: mpqemu messages from this program (a\n"
"                   blocking round trip per config/MMIO access), RAM in\n"
"                   the mapped memfd\n", f);
	if (w->on[P_LINK_POLL])
		fprintf(f, "         link-poll as link, the server started "
			"with --poll-rq-us %u (kicks\n                   "
			"suppressed while busy; the driver skips them)\n",
			w->o.poll_us);
	fputs(
"         req/s all: whole loop incl. driver accesses; kick: kick write\n"
"         until the used index shows the batch (kick us: mean, med us:\n"
"         median per batch); rt/batch: register round trips (qtest or\n"
"         mpqemu) per batch; cpu: ns per request of QEMU, the path's\n"
"         viommu-server, this program (/proc schedstat)\n", f);
}

/* print_probes() - the bare round trips and empty kicks. */
static void print_probes(const struct world *w, FILE *f)
{
	fprintf(f, "round trips: qtest (RAM readw) %.1f us; mpqemu (config "
		"read of the vendor ID):\n  link %.1f us", w->m_rt_ns / 1000,
		w->m_mpq_ns[P_LINK] / 1000);
	if (w->on[P_LINK_POLL])
		fprintf(f, ", link-poll %.1f us", w->m_mpq_ns[P_LINK_POLL] /
			1000);
	fprintf(f, "\nempty kick (notify + used-index read, nothing "
		"available):\n ");
	for (int i = 0; i < w->nact; i++)
		fprintf(f, " %s %.1f us%s", qb_paths[w->act[i]].name,
			w->m_empty_ns[w->act[i]] / 1000,
			i + 1 < w->nact ? "," : "\n");
}

/* qb_print_table() - the human-readable report. */
void qb_print_table(const struct world *w, FILE *f)
{
	report_head(f, "qemu", w->o.smoke ? SMOKE_NOTE : NULL, &w->m);
	fprintf(f, "peer:    %s (%s)\n", w->qemu_version, w->qemu_path);
	print_method(w, f);
	print_probes(w, f);
	fprintf(f, "\n  %8s  %-9s %9s %17s %10s %8s %7s %8s %8s %8s %8s\n",
		"req/kick", "path", "req/s all", "(min..max)", "req/s kick",
		"kick us", "med us", "rt/batch", "cpu qemu", "cpu srv",
		"cpu bnch");
	for (int k = 0; k < w->o.nsizes; k++) {
		for (int i = 0; i < w->nact; i++)
			print_row(w, k, w->act[i], f);
		print_ratios(w, k, f);
	}
	print_goal(w, f);
	print_fit(w, f);
}

/* print_path_json() - one path's figures at one size. */
static void print_path_json(const struct world *w, int k, int p, FILE *f)
{
	const struct summary *s = &w->sum[k][p];
	char srv[32] = "null";

	if (qb_paths[p].srv >= 0)
		snprintf(srv, sizeof(srv), "%.1f", s->med.cpu_srv);
	fprintf(f, "\"%s\": {\"requests_per_s\": %.1f, "
		"\"requests_per_s_min\": %.1f, \"requests_per_s_max\": %.1f, "
		"\"kick_requests_per_s\": %.1f, \"kick_ns_per_batch\": %.1f, "
		"\"kick_ns_per_batch_median\": %.1f, "
		"\"round_trips_per_batch\": %.2f, "
		"\"cpu_ns_per_request\": {\"qemu\": %.1f, \"server\": %s, "
		"\"bench\": %.1f}}", qb_paths[p].name, s->med.rps_all,
		s->min.rps_all, s->max.rps_all, s->med.rps_kick,
		s->med.kick_ns, s->med.kick_med_ns, s->med.rt_batch,
		s->med.cpu_qemu, srv, s->med.cpu_self);
}

/* print_ratios_json() - size @k's ratios. */
static void print_ratios_json(const struct world *w, int k, FILE *f)
{
	bool first = true;

	fprintf(f, "\"ratios\": {");
	for (int i = 0; i < NRATIO; i++) {
		const double (*m)[3] = w->m_ratio[k][i];

		if (!qb_ratio_on(w, i))
			continue;
		fprintf(f, "%s\"%s\": {\"requests_per_s\": %.3f, "
			"\"requests_per_s_min\": %.3f, "
			"\"requests_per_s_max\": %.3f, \"kick\": %.3f, "
			"\"kick_min\": %.3f, \"kick_max\": %.3f}",
			first ? "" : ", ", qb_ratios[i].name, m[0][0], m[0][1],
			m[0][2], m[1][0], m[1][1], m[1][2]);
		first = false;
	}
	fprintf(f, "}");
}

/* print_probes_json() - round trips and empty kicks. */
static void print_probes_json(const struct world *w, FILE *f)
{
	fprintf(f, ",\n  \"qtest_round_trip_ns\": %.1f,\n"
		"  \"mpqemu_round_trip_ns\": {\"link\": %.1f", w->m_rt_ns,
		w->m_mpq_ns[P_LINK]);
	if (w->on[P_LINK_POLL])
		fprintf(f, ", \"link-poll\": %.1f", w->m_mpq_ns[P_LINK_POLL]);
	fprintf(f, "},\n  \"empty_kick_ns\": {");
	for (int i = 0; i < w->nact; i++)
		fprintf(f, "%s\"%s\": %.1f", i ? ", " : "",
			qb_paths[w->act[i]].name, w->m_empty_ns[w->act[i]]);
	fprintf(f, "}");
}

/* print_fit_json() - the fixed + per-request split per path. */
static void print_fit_json(const struct world *w, FILE *f)
{
	if (!w->fit)
		return;
	fprintf(f, ",\n  \"kick_fit\": {\"from_size\": %u, \"to_size\": %u",
		w->o.sizes[w->k_lo], w->o.sizes[w->k_hi]);
	for (int i = 0; i < w->nact; i++) {
		int p = w->act[i];

		fprintf(f, ", \"%s\": {\"fixed_ns\": %.1f, "
			"\"ns_per_request\": %.1f}", qb_paths[p].name,
			w->fixed_ns[p], w->per_req_ns[p]);
	}
	fprintf(f, "}");
}

/* qb_print_json() - the machine-readable report. */
void qb_print_json(const struct world *w, FILE *f)
{
	json_header(f, "qemu", w->o.smoke, w->o.runs, &w->m);
	fprintf(f, ",\n  \"peer\": ");
	json_str(f, w->qemu_version);
	fprintf(f, ",\n  \"topology\": \"one QEMU, -accel tcg -S, qtest, RAM "
		"in a memfd mapped by the bench; QEMU virtio-iommu-pci "
		"00:03.0, ours x-pci-proxy-dev 00:04.0 -> viommu-server; "
		"link paths: viommu-server driven over mpqemu by the bench; "
		"endpoint 0x28 domain 1\",\n  \"paths\": {");
	for (int i = 0; i < w->nact; i++) {
		fprintf(f, "%s\"%s\": ", i ? ", " : "",
			qb_paths[w->act[i]].name);
		json_str(f, qb_paths[w->act[i]].desc);
	}
	fprintf(f, "},\n  \"poll_rq_us\": %u,\n  \"pin\": ", w->o.poll_us);
	if (w->o.pin >= 0)
		fprintf(f, "%d", w->o.pin);
	else
		fprintf(f, "null");
	fprintf(f, ",\n  \"requests_per_measurement\": %u,\n  "
		"\"goal_ratio\": %.1f,\n  \"goal_against\": \"%s\"",
		w->o.requests, GOAL_RATIO, qb_ratios[R_HEADLINE].name);
	print_probes_json(w, f);
	fprintf(f, ",\n  \"results\": [");
	for (int k = 0; k < w->o.nsizes; k++) {
		fprintf(f, "%s\n    {\"requests_per_kick\": %u, ",
			k ? "," : "", w->o.sizes[k]);
		for (int i = 0; i < w->nact; i++) {
			print_path_json(w, k, w->act[i], f);
			fprintf(f, ", ");
		}
		print_ratios_json(w, k, f);
		fprintf(f, "}");
	}
	fprintf(f, "\n  ]");
	print_fit_json(w, f);
	fprintf(f, "\n}\n");
}
