/*
 * plot.c - `viommu-bench plot`: PNG plots of the JSON the other
 * subcommands write, drawn by gnuplot with the scripts of bench/plot/.
 *
 *   viommu-bench plot [--io FILE] [--scaling FILE] [--vdev FILE]
 *                     [--guest-io FILE] [--out DIR] [--scripts DIR]
 *
 * It reads our own JSON (one result object per line, as io.c, scaling.c
 * vdev.c and guest_io_report.c write it; this is not a general JSON
 * parser), writes plain
 * data files into a temporary directory and runs
 *   gnuplot -e "datadir='...'; outfile='...'; ..." SCRIPT.gp
 * for each input: io.gp (% of no IOMMU against I/O size, one panel per
 * workload), scaling.gp (translate ns/op against mappings, wall and thread
 * CPU), vdev.gp (MAP+UNMAP pairs/s per submission and ring) and
 * guest_io.gp (each IOMMU mode's IOPS as % of the same stack's no-IOMMU
 * IOPS, per job, one panel per stack).  The outputs are DIR/io-modes.png
 * (io-modes-modelled.png for a run with a modelled cost),
 * DIR/translate-scaling.png, DIR/vdev-pairs.png and DIR/guest-io.png
 * (DIR/guest-io-net.png for the JSON of guest-io --net).
 *
 * --smoke plots a small built-in sample (through the same parser) into a
 * temporary directory and exits 77 (a skipped test) when gnuplot is not
 * installed; otherwise a missing gnuplot is an error with a clear message.
 */
#include "common.h"
#include "opts.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BENCH_PLOT_DIR
#define BENCH_PLOT_DIR "bench/plot"
#endif

#define MAX_NAMES 16
#define MAX_IO 4

struct opts {
	bool smoke;
	const char *io[MAX_IO]; /* --io may be given several times */
	int nio;
	const char *scaling, *vdev, *guest_io;
	const char *out, *scripts;
};

/* A set of distinct names in first-seen order ("strict", "batched"...). */
struct names {
	char v[MAX_NAMES][64]; /* callers' names are at most 47 bytes */
	int n;
};

/* ------------------------------------------------------------------ */
/* Reading our JSON                                                   */

/* slurp() - the whole file @path, NUL-terminated (die on failure). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		die("cannot read '%s': %s", path, strerror(errno));
	do {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			if (!(buf = realloc(buf, cap)))
				die("out of memory");
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n);
	fclose(f);
	buf[len] = 0;
	return buf;
}

/* field() - the text after "@key": in @line, or NULL. */
static const char *field(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(line, pat);
	return p ? p + strlen(pat) : NULL;
}

/* get_num() - the number at @key of @line; die if missing. */
static double get_num(const char *line, const char *key, const char *path)
{
	const char *p = field(line, key);
	char *end;
	double v;

	if (!p)
		die("%s: a result has no \"%s\"", path, key);
	v = strtod(p, &end);
	if (end == p)
		die("%s: \"%s\" is not a number", path, key);
	return v;
}

/* get_str() - the string at @key of @line into @buf; die if missing. */
static void get_str(const char *line, const char *key, char *buf,
		    size_t n, const char *path)
{
	const char *p = field(line, key);
	size_t k = 0;

	if (!p || *p != '"')
		die("%s: a result has no string \"%s\"", path, key);
	for (p++; *p && *p != '"' && k + 1 < n; p++)
		buf[k++] = *p;
	buf[k] = 0;
}

/* check_mode() - die unless @text is viommu-bench JSON of mode @mode. */
static void check_mode(const char *text, const char *mode, const char *path)
{
	char m[32];

	if (!strstr(text, "\"tool\": \"viommu-bench\""))
		die("%s: not viommu-bench JSON", path);
	get_str(text, "mode", m, sizeof(m), path);
	if (strcmp(m, mode))
		die("%s: JSON of '%s', expected '%s'", path, m, mode);
}

/* next_result() - the next line holding @marker after *@pos, or NULL. */
static const char *next_result(const char **pos, const char *marker)
{
	const char *p = strstr(*pos, marker);
	const char *eol;

	if (!p)
		return NULL;
	eol = strchr(p, '\n');
	*pos = eol ? eol : p + strlen(p);
	return p;
}

/* names_add() - add @s to @ns if it is new. */
static void names_add(struct names *ns, const char *s)
{
	for (int k = 0; k < ns->n; k++)
		if (!strcmp(ns->v[k], s))
			return;
	if (ns->n >= MAX_NAMES)
		die("too many distinct names");
	/* a cut name would never match itself again and repeat */
	if (strlen(s) >= sizeof(ns->v[0]))
		die("name too long: %s", s);
	memcpy(ns->v[ns->n++], s, strlen(s) + 1);
}

/* names_join() - "a b c" (for a gnuplot `for [x in ...]` list). */
static void names_join(const struct names *ns, char *buf, size_t n)
{
	size_t k = 0;

	buf[0] = 0;
	for (int i = 0; i < ns->n && k < n; i++)
		k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? " " : "",
				      ns->v[i]);
}

/* is_true() - whether the header field @key of @text is true. */
static bool is_true(const char *text, const char *key)
{
	const char *p = field(text, key);

	return p && !strncmp(p, "true", 4);
}

/* header_num() - the header number @key of @text (-1 if missing). */
static double header_num(const char *text, const char *key)
{
	const char *p = field(text, key);

	return p ? strtod(p, NULL) : -1;
}

/* subtitle() - load average, smoke and modelled labels of @text. */
static void subtitle(const char *text, char *buf, size_t n)
{
	size_t k;

	snprintf(buf, n, "1-min load average %.1f at start%s",
		 header_num(text, "loadavg_start"),
		 is_true(text, "smoke") ? "; SMOKE RUN, not meaningful" : "");
	k = strlen(buf);
	if (is_true(text, "modelled") && k < n)
		snprintf(buf + k, n - k, "; MODELLED: %.0f ns per kick, "
			 "%.0f ns per I/O", header_num(text, "kick_cost_ns"),
			 header_num(text, "stack_ns"));
}

/* ------------------------------------------------------------------ */
/* Data files                                                         */

/* open_dat() - open DIR/NAME with fopen @mode (die on failure). */
static FILE *open_dat(const char *dir, const char *name, const char *mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, mode)))
		die("cannot write '%s': %s", path, strerror(errno));
	return f;
}

/*
 * io_data() - DIR/<prefix>_<workload>_<mode>.dat: size, % of none (wall),
 * % of none (cpu), I/Os per second.  Collects the workload and mode names.
 */
static void io_data(const char *text, const char *path, const char *dir,
		    const char *prefix, struct names *wls,
		    struct names *modes)
{
	const char *pos = text, *line;

	while ((line = next_result(&pos, "{\"workload\": "))) {
		char wl[32], mode[32], name[96];
		FILE *f;

		get_str(line, "workload", wl, sizeof(wl), path);
		get_str(line, "mode", mode, sizeof(mode), path);
		names_add(wls, wl);
		names_add(modes, mode);
		snprintf(name, sizeof(name), "%s_%s_%s.dat", prefix, wl,
			 mode);
		f = open_dat(dir, name, "a");
		fprintf(f, "%.0f %.4f %.4f %.1f\n",
			get_num(line, "size", path),
			get_num(line, "pct_of_none", path),
			get_num(line, "pct_of_none_cpu", path),
			get_num(line, "ios_per_s", path));
		fclose(f);
	}
	if (!wls->n)
		die("%s: no io results", path);
}

/*
 * scaling_data() - DIR/sc_<pattern>_<threads>.dat: size, wall ns/op,
 * cpu ns/op, miss ratio.  Collects the "pattern_threads" series names.
 */
static void scaling_data(const char *text, const char *path,
			 const char *dir, struct names *series)
{
	const char *pos = text, *line;

	while ((line = next_result(&pos, "{\"size\": "))) {
		char pat[32], ser[48], name[96];
		FILE *f;

		get_str(line, "pattern", pat, sizeof(pat), path);
		snprintf(ser, sizeof(ser), "%s_%.0f", pat,
			 get_num(line, "threads", path));
		names_add(series, ser);
		snprintf(name, sizeof(name), "sc_%s.dat", ser);
		f = open_dat(dir, name, "a");
		fprintf(f, "%.0f %.4f %.4f %.4f\n",
			get_num(line, "size", path),
			get_num(line, "ns_per_op", path),
			get_num(line, "cpu_ns_per_op", path),
			get_num(line, "miss_ratio", path));
		fclose(f);
	}
	if (!series->n)
		die("%s: no scaling results", path);
}

/*
 * vdev_table() - DIR/@name: one row per submission in @subs, one column
 * per ring in @rings with @v in millions; a header row names the rings.
 */
static void vdev_table(const char *dir, const char *name,
		       const struct names *rings, const struct names *subs,
		       double v[MAX_NAMES][MAX_NAMES])
{
	FILE *f = open_dat(dir, name, "w");

	fprintf(f, "submission");
	for (int r = 0; r < rings->n; r++)
		fprintf(f, " %s", rings->v[r]);
	fputc('\n', f);
	for (int s = 0; s < subs->n; s++) {
		fprintf(f, "%s", subs->v[s]);
		for (int r = 0; r < rings->n; r++)
			fprintf(f, " %.4f", v[s][r] / 1e6);
		fputc('\n', f);
	}
	fclose(f);
}

/*
 * vdev_data() - DIR/vdev_wall.dat and DIR/vdev_cpu.dat (see vdev_table()):
 * pairs per second and pairs per thread-CPU second, per submission
 * ("strict", "batched/16") and ring.  Returns the number of rings.
 */
static int vdev_data(const char *text, const char *path, const char *dir)
{
	struct names rings = { 0 }, subs = { 0 };
	static double v[MAX_NAMES][MAX_NAMES], c[MAX_NAMES][MAX_NAMES];
	const char *pos = text, *line;

	while ((line = next_result(&pos, "{\"ring\": "))) {
		char ring[32], sub[32], key[48];
		int r, s;

		get_str(line, "ring", ring, sizeof(ring), path);
		get_str(line, "submission", sub, sizeof(sub), path);
		if (strcmp(sub, "strict"))
			snprintf(key, sizeof(key), "%s/%.0f", sub,
				 get_num(line, "requests_per_kick", path));
		else
			snprintf(key, sizeof(key), "strict");
		names_add(&rings, ring);
		names_add(&subs, key);
		for (r = 0; strcmp(rings.v[r], ring); r++)
			;
		for (s = 0; strcmp(subs.v[s], key); s++)
			;
		v[s][r] = get_num(line, "pairs_per_s", path);
		c[s][r] = get_num(line, "pairs_per_cpu_s", path);
	}
	if (!rings.n)
		die("%s: no vdev results", path);
	vdev_table(dir, "vdev_wall.dat", &rings, &subs, v);
	vdev_table(dir, "vdev_cpu.dat", &rings, &subs, c);
	return rings.n;
}

/* pct_median() - the "median" of the object at @key of @line, or -1 for
 * null (a mode with no figure); die if missing. */
static double pct_median(const char *line, const char *key, const char *path)
{
	const char *p = field(line, key), *m;
	char *end;
	double v;

	if (!p || *p != '{' || !(m = field(p, "median")))
		die("%s: a result has no \"%s\" median", path, key);
	if (!strncmp(m, "null", 4))
		return -1;
	v = strtod(m, &end);
	if (end == m)
		die("%s: \"%s\" median is not a number", path, key);
	return v;
}

/*
 * guest_io_data() - DIR/gio_<stack>.dat: a header row ("job" and the mode
 * names but noiommu), then one row per job ("read-4K-qd1") with each
 * mode's % of the stack's no-IOMMU IOPS (NaN: none).  Collects the stack
 * and mode names; the highest % into *@ymax (at least 100).
 */
static void guest_io_data(const char *text, const char *path,
			  const char *dir, struct names *stacks,
			  struct names *modes, double *ymax)
{
	static double v[MAX_NAMES][MAX_NAMES][MAX_NAMES];
	struct names jobs = { 0 };
	const char *pos = strstr(text, "\"results\": ["), *line;
	const char *end = strstr(text, "\"per_io\": [");

	if (!pos || !end)
		die("%s: no guest-io results", path);
	while ((line = next_result(&pos, "{\"stack\": ")) && line < end) {
		char st[32], md[32], rw[16], job[48];
		int s, m, j;

		get_str(line, "stack", st, sizeof(st), path);
		get_str(line, "mode", md, sizeof(md), path);
		if (!strcmp(md, "noiommu"))
			continue;
		if (field(line, "job")) { /* "read-4K-qd1", "tcp-ab-4x1500" */
			get_str(line, "job", job, sizeof(job), path);
		} else { /* before the job field */
			get_str(line, "rw", rw, sizeof(rw), path);
			snprintf(job, sizeof(job), "%s-%.0fK-qd%.0f", rw,
				 get_num(line, "size", path) / 1024,
				 get_num(line, "qd", path));
		}
		names_add(stacks, st);
		names_add(modes, md);
		names_add(&jobs, job);
		for (s = 0; strcmp(stacks->v[s], st); s++)
			;
		for (m = 0; strcmp(modes->v[m], md); m++)
			;
		for (j = 0; strcmp(jobs.v[j], job); j++)
			;
		v[s][m][j] = pct_median(line, "pct_of_noiommu", path);
		if (v[s][m][j] > *ymax)
			*ymax = v[s][m][j];
	}
	if (!stacks->n)
		die("%s: no guest-io results beside noiommu", path);
	for (int s = 0; s < stacks->n; s++) {
		char name[64];
		FILE *f;

		snprintf(name, sizeof(name), "gio_%s.dat", stacks->v[s]);
		f = open_dat(dir, name, "w");
		fprintf(f, "job");
		for (int m = 0; m < modes->n; m++)
			fprintf(f, " %s", modes->v[m]);
		fputc('\n', f);
		for (int j = 0; j < jobs.n; j++) {
			fprintf(f, "%s", jobs.v[j]);
			for (int m = 0; m < modes->n; m++)
				if (v[s][m][j] < 0)
					fprintf(f, " NaN");
				else
					fprintf(f, " %.2f", v[s][m][j]);
			fputc('\n', f);
		}
		fclose(f);
	}
}

/* ------------------------------------------------------------------ */
/* Running gnuplot                                                    */

/*
 * gnuplot() - run gnuplot -e @vars @script.  Return: 0; -ENOENT when
 * gnuplot is not installed; -EIO when it failed.
 */
static int gnuplot(const char *vars, const char *script)
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (!pid) {
		execlp("gnuplot", "gnuplot", "-e", vars, script, (char *)NULL);
		_exit(errno == ENOENT ? 127 : 126);
	}
	if (waitpid(pid, &st, 0) < 0)
		die("waitpid: %s", strerror(errno));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return -ENOENT;
	return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -EIO;
}

/* plot_one() - run @gp with @vars; report and return its result. */
static int plot_one(const struct opts *o, const char *gp, const char *vars,
		    const char *png)
{
	char script[512];
	int rc;

	snprintf(script, sizeof(script), "%s/%s", o->scripts, gp);
	if (access(script, R_OK))
		die("cannot read the gnuplot script '%s' (--scripts DIR)",
		    script);
	rc = gnuplot(vars, script);
	if (rc == -ENOENT)
		fprintf(stderr, "viommu-bench plot: gnuplot not found: "
			"install it (gnuplot-nox; scripts/deps.sh does)\n");
	else if (rc)
		fprintf(stderr, "viommu-bench plot: gnuplot failed on %s\n",
			script);
	else
		printf("wrote %s\n", png);
	return rc;
}

/* plot_io() - io JSON -> io-modes.png (io-modes-modelled.png). */
static int plot_io(const struct opts *o, int k, const char *tmp)
{
	const char *path = o->io[k];
	char prefix[16];
	struct names wls = { 0 }, modes = { 0 };
	char *text = slurp(path);
	char wl[256], md[256], sub[256], png[512], vars[2048];
	bool modelled = is_true(text, "modelled");

	check_mode(text, "io", path);
	snprintf(prefix, sizeof(prefix), "io%d", k);
	io_data(text, path, tmp, prefix, &wls, &modes);
	names_join(&wls, wl, sizeof(wl));
	names_join(&modes, md, sizeof(md));
	subtitle(text, sub, sizeof(sub));
	if (strlen(sub) + 80 < sizeof(sub))
		snprintf(sub + strlen(sub), sizeof(sub) - strlen(sub),
			 "; batched: %.0f I/Os per commit; deferred: flush "
			 "queue of %.0f", header_num(text, "batch"),
			 header_num(text, "flush_queue"));
	free(text);
	snprintf(png, sizeof(png), "%s/io-modes%s.png", o->out,
		 modelled ? "-modelled" : "");
	snprintf(vars, sizeof(vars), "datadir='%s'; prefix='%s'; "
		 "outfile='%s'; workloads='%s'; modes='%s'; subtitle='%s'; "
		 "tag='%s'", tmp, prefix, png, wl, md, sub,
		 modelled ? " (MODELLED kick cost)" : "");
	return plot_one(o, "io.gp", vars, png);
}

/* plot_scaling() - scaling JSON -> translate-scaling.png. */
static int plot_scaling(const struct opts *o, const char *path,
			const char *tmp)
{
	struct names series = { 0 };
	char *text = slurp(path);
	char ser[512], sub[256], png[512], vars[2048];

	check_mode(text, "scaling", path);
	scaling_data(text, path, tmp, &series);
	names_join(&series, ser, sizeof(ser));
	subtitle(text, sub, sizeof(sub));
	free(text);
	snprintf(png, sizeof(png), "%s/translate-scaling.png", o->out);
	snprintf(vars, sizeof(vars), "datadir='%s'; outfile='%s'; "
		 "series='%s'; subtitle='%s'", tmp, png, ser, sub);
	return plot_one(o, "scaling.gp", vars, png);
}

/* plot_vdev() - vdev JSON -> vdev-pairs.png. */
static int plot_vdev(const struct opts *o, const char *path, const char *tmp)
{
	char *text = slurp(path);
	char sub[256], png[512], vars[2048];
	int nrings;

	check_mode(text, "vdev", path);
	nrings = vdev_data(text, path, tmp);
	subtitle(text, sub, sizeof(sub));
	free(text);
	snprintf(png, sizeof(png), "%s/vdev-pairs.png", o->out);
	snprintf(vars, sizeof(vars), "datadir='%s'; outfile='%s'; "
		 "nrings=%d; subtitle='%s'", tmp, png, nrings, sub);
	return plot_one(o, "vdev.gp", vars, png);
}

/* plot_guest_io() - guest-io JSON -> guest-io.png. */
static int plot_guest_io(const struct opts *o, const char *path,
			 const char *tmp)
{
	struct names stacks = { 0 }, modes = { 0 };
	char *text = slurp(path);
	char st[256], md[256], sub[256], png[512], vars[2048];
	double ymax = 100;
	bool net = strstr(text, "\"kind\": \"net\"") != NULL;

	check_mode(text, "guest-io", path);
	guest_io_data(text, path, tmp, &stacks, &modes, &ymax);
	names_join(&stacks, st, sizeof(st));
	names_join(&modes, md, sizeof(md));
	subtitle(text, sub, sizeof(sub));
	if (strlen(sub) + 64 < sizeof(sub))
		snprintf(sub + strlen(sub), sizeof(sub) - strlen(sub),
			 "; %.0f round(s) of %.0f ms per job",
			 header_num(text, "runs"), header_num(text,
							      "bench_ms"));
	free(text);
	snprintf(png, sizeof(png), "%s/guest-io%s.png", o->out,
		 net ? "-net" : "");
	snprintf(vars, sizeof(vars), "datadir='%s'; outfile='%s'; "
		 "stacks='%s'; modes='%s'; ymax=%.0f; subtitle='%s'; what='%s'",
		 tmp, png, st, md, ymax * 1.2, sub, net ?
		 "virtio-net throughput (UDP: packets/s)" : "virtio-blk IOPS");
	return plot_one(o, "guest_io.gp", vars, png);
}

/* ------------------------------------------------------------------ */
/* Smoke run                                                          */

/* write_text() - DIR/NAME := @text; returns the path in @path. */
static void write_text(const char *dir, const char *name, const char *text,
		       char *path, size_t n)
{
	FILE *f;

	snprintf(path, n, "%s/%s", dir, name);
	f = open_dat(dir, name, "w");
	fputs(text, f);
	fclose(f);
}

/* smoke_inputs() - tiny JSON samples of each kind into @dir. */
static void smoke_inputs(struct opts *o, const char *dir, char io[512],
			 char sc[512], char vd[512], char gio[512])
{
	static const char *const io_json =
		"{\n  \"tool\": \"viommu-bench\",\n  \"mode\": \"io\",\n"
		"  \"smoke\": true,\n  \"loadavg_start\": 1.00,\n"
		"  \"modelled\": false,\n  \"results\": [\n"
		"    {\"workload\": \"rx\", \"size\": 64, \"mode\": \"none\", "
		"\"ios_per_s\": 1000.0, \"pct_of_none\": 100.0, "
		"\"pct_of_none_cpu\": 100.0},\n"
		"    {\"workload\": \"rx\", \"size\": 4096, \"mode\": "
		"\"none\", \"ios_per_s\": 500.0, \"pct_of_none\": 100.0, "
		"\"pct_of_none_cpu\": 100.0},\n"
		"    {\"workload\": \"rx\", \"size\": 64, \"mode\": "
		"\"strict\", \"ios_per_s\": 10.0, \"pct_of_none\": 1.0, "
		"\"pct_of_none_cpu\": 1.0},\n"
		"    {\"workload\": \"rx\", \"size\": 4096, \"mode\": "
		"\"strict\", \"ios_per_s\": 50.0, \"pct_of_none\": 10.0, "
		"\"pct_of_none_cpu\": 10.0}\n  ]\n}\n";
	static const char *const sc_json =
		"{\n  \"tool\": \"viommu-bench\",\n  \"mode\": \"scaling\",\n"
		"  \"smoke\": true,\n  \"loadavg_start\": 1.00,\n"
		"  \"results\": [\n"
		"    {\"size\": 1024, \"pattern\": \"hit\", \"threads\": 1, "
		"\"ns_per_op\": 8.0, \"cpu_ns_per_op\": 7.0, "
		"\"miss_ratio\": 0.0},\n"
		"    {\"size\": 4096, \"pattern\": \"hit\", \"threads\": 1, "
		"\"ns_per_op\": 8.5, \"cpu_ns_per_op\": 7.5, "
		"\"miss_ratio\": 0.0}\n  ]\n}\n";
	static const char *const gio_json =
		"{\n  \"tool\": \"viommu-bench\",\n  \"mode\": \"guest-io\",\n"
		"  \"smoke\": true,\n  \"runs\": 1,\n"
		"  \"loadavg_start\": 1.00,\n"
		"  \"bench_ms\": 50,\n  \"results\": [\n"
		"    {\"stack\": \"ours\", \"mode\": \"noiommu\", \"rw\": "
		"\"read\", \"size\": 4096, \"qd\": 1, \"iops\": {},\n"
		"     \"pct_of_noiommu\": {\"median\": 100}},\n"
		"    {\"stack\": \"ours\", \"mode\": \"strict\", \"rw\": "
		"\"read\", \"size\": 4096, \"qd\": 1, \"iops\": {},\n"
		"     \"pct_of_noiommu\": {\"median\": 40.5}},\n"
		"    {\"stack\": \"ours\", \"mode\": \"strict\", \"rw\": "
		"\"write\", \"size\": 65536, \"qd\": 32, \"iops\": {},\n"
		"     \"pct_of_noiommu\": {\"median\": null}}\n  ],\n"
		"  \"per_io\": [\n  ]\n}\n";
	static const char *const vd_json =
		"{\n  \"tool\": \"viommu-bench\",\n  \"mode\": \"vdev\",\n"
		"  \"smoke\": true,\n  \"loadavg_start\": 1.00,\n"
		"  \"results\": [\n"
		"    {\"ring\": \"split\", \"submission\": \"strict\", "
		"\"requests_per_kick\": 1, \"pairs_per_s\": 1000000.0, "
		"\"pairs_per_cpu_s\": 1500000.0},\n"
		"    {\"ring\": \"split\", \"submission\": \"batched\", "
		"\"requests_per_kick\": 16, \"pairs_per_s\": 3000000.0, "
		"\"pairs_per_cpu_s\": 3500000.0}\n"
		"  ]\n}\n";

	write_text(dir, "io.json", io_json, io, 512);
	write_text(dir, "scaling.json", sc_json, sc, 512);
	write_text(dir, "vdev.json", vd_json, vd, 512);
	write_text(dir, "guest-io.json", gio_json, gio, 512);
	o->io[0] = io;
	o->nio = 1;
	o->scaling = sc;
	o->vdev = vd;
	o->guest_io = gio;
	o->out = dir;
}

/* ------------------------------------------------------------------ */
/* Options                                                            */

/* What `viommu-bench plot --help` says the subcommand does. */
static const char about[] =
"Draws PNG plots with gnuplot from the JSON of `viommu-bench io`, "
"`scaling`, `vdev` and `guest-io` (--json FILE): DIR/io-modes.png (or "
"io-modes-modelled.png when the io run modelled a cost), "
"DIR/translate-scaling.png, DIR/vdev-pairs.png and DIR/guest-io.png "
"(guest-io-net.png for the JSON of guest-io --net).";

/* add_io() - --io FILE, which may be given up to MAX_IO times. */
static int add_io(const char *v, void *dest, char *err, size_t n)
{
	struct opts *o = dest;

	if (o->nio >= MAX_IO) {
		snprintf(err, n, "at most %d files", MAX_IO);
		return -EINVAL;
	}
	o->io[o->nio++] = v;
	return 0;
}

/* parse_opts() - the command line (after "plot") into @o. */
static void parse_opts(struct opts *o, int argc, char **argv)
{
	struct bopt t[] = {
		{ .name = "--io", .type = BOPT_FN, .dest = o, .fn = add_io,
		  .arg = "FILE",
		  .help = "JSON of `viommu-bench io` (up to "
			  BENCH_XSTR(MAX_IO) " times: a measured and a "
			  "modelled run)" },
		{ .name = "--scaling", .type = BOPT_STR, .dest = &o->scaling,
		  .arg = "FILE", .help = "JSON of `viommu-bench scaling`" },
		{ .name = "--vdev", .type = BOPT_STR, .dest = &o->vdev,
		  .arg = "FILE", .help = "JSON of `viommu-bench vdev`" },
		{ .name = "--guest-io", .type = BOPT_STR, .dest = &o->guest_io,
		  .arg = "FILE", .help = "JSON of `viommu-bench guest-io`" },
		{ .name = "--out", .type = BOPT_STR, .dest = &o->out,
		  .arg = "DIR",
		  .help = "where the PNGs go (default: the current "
			  "directory)" },
		{ .name = "--scripts", .type = BOPT_STR, .dest = &o->scripts,
		  .arg = "DIR",
		  .help = "the gnuplot scripts (default " BENCH_PLOT_DIR ")" },
		{ BOPT_SMOKE(&o->smoke),
		  .help = "plot a built-in sample into a temporary directory; "
			  "exit 77 (skipped) if gnuplot is not installed" },
		{ 0 }
	};
	struct stat st;

	o->out = ".";
	o->scripts = BENCH_PLOT_DIR;
	bopts_parse(t, "plot", about, argc, argv);
	if (!o->smoke && !o->nio && !o->scaling && !o->vdev && !o->guest_io)
		bad_usage("nothing to plot: give --io, --scaling, --vdev or "
			  "--guest-io");
	if (!o->smoke && (stat(o->out, &st) || !S_ISDIR(st.st_mode)))
		bad_usage("--out: '%s' is not a directory", o->out);
}

/* The temporary directory of this run, removed at exit (even by die()). */
static char tmp[] = "/tmp/viommu-plot-XXXXXX";

/* rm_tmp() - atexit handler: remove the temporary directory. */
static void rm_tmp(void)
{
	rm_dir(tmp);
}

/* cmd_plot() - `viommu-bench plot`: argv[0] is "plot". */
int cmd_plot(int argc, char **argv)
{
	struct opts o = { 0 };
	char io[512], sc[512], vd[512], gio[512];
	int rc = 0, r;

	parse_opts(&o, argc, argv);
	if (!mkdtemp(tmp))
		die("mkdtemp: %s", strerror(errno));
	atexit(rm_tmp);
	if (o.smoke)
		smoke_inputs(&o, tmp, io, sc, vd, gio);
	for (int k = 0; k < o.nio && rc != -ENOENT; k++)
		if ((r = plot_io(&o, k, tmp)))
			rc = r;
	if (o.scaling && rc != -ENOENT && (r = plot_scaling(&o, o.scaling,
							      tmp)))
		rc = r;
	if (o.vdev && rc != -ENOENT && (r = plot_vdev(&o, o.vdev, tmp)))
		rc = r;
	if (o.guest_io && rc != -ENOENT &&
	    (r = plot_guest_io(&o, o.guest_io, tmp)))
		rc = r;
	if (rc == -ENOENT)
		return o.smoke ? EXIT_SKIP : 1;
	return rc ? 1 : 0;
}
