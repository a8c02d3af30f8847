/*
 * guest.c - `viommu-bench guest`: a real Linux guest against QEMU's
 * virtio-iommu and against ours, in one run.
 *
 * The same guest program (guest/bench.c, the `bench` scenario of
 * viommu-guest) runs in three kinds of boot of the same Debian 6.12 kernel
 * under QEMU TCG, each started by tools/viommu-run as a child process:
 *
 *   ours    our virtio-iommu and DMA engine in viommu-server, reached through
 *           the door (the extra process hop): vfio-user (vfio-user-pci) on
 *           QEMU 11.1, x-pci-proxy-dev on QEMU 7.2;
 *   qemu    QEMU's own virtio-iommu-pci with QEMU's edu as the device;
 *   bypass  ours again, booted with iommu.passthrough=1: the engine's
 *           default domain is identity and the guest drives it by
 *           guest-physical address.
 *
 * Figures:
 *  - VFIO MAP_DMA + UNMAP_DMA pairs per second of one buffer, per size
 *    (4 KiB .. 2 MiB, physically contiguous: one virtio-iommu MAP and one
 *    UNMAP request per pair on both devices), ours and QEMU's, and the
 *    ratio ours/QEMU (goal >= 1.0);
 *  - our engine's ring-mode RAM -> RAM copy throughput with every access
 *    translated (buffers mapped once through VFIO) against the same copies
 *    bypassing the IOMMU, as a percentage (goal >= 90%).  Both come from
 *    the bypass boot, which has two engines: engine 1 in a VFIO domain
 *    (translated) and engine 0 in the identity default domain (by GPA),
 *    measured in interleaved slices so that they share the machine's
 *    conditions; the ours boot's translated figure is shown beside them.
 *
 * Fairness: --rounds rounds of the three boots, the order reversed every
 * other round (ours, qemu, bypass; then bypass, qemu, ours), so slow drift
 * of the machine's load hits every peer alike; each figure is the median
 * over the rounds, and the ratios of each round are shown as a range.
 * Every boot's processes run on one CPU (the same for every peer; --pin
 * CPU chooses it, --no-pin leaves them to the scheduler): our path hands
 * each request from QEMU's vCPU thread to the server's link thread and
 * back, and where a wake-up across CPUs costs far more than one on the
 * same CPU (about 50 against 9 us per round trip on the virtual machines
 * this was written on) our figures then depend on where the scheduler put
 * the threads; the interleaved ring comparison also uses two link threads.
 * The guest's clock is CLOCK_MONOTONIC under TCG (host time): figures only
 * compare within one run.  The 1-minute load average is sampled after
 * every boot and reported.
 *
 * Every boot of a run uses one QEMU: --qemu 11 (the default: QEMU 11.1 from
 * the cache BUILD/qemu-11.1, built by scripts/qemu11.sh when missing), 7.2
 * (the host's) or a PATH, and one door for our devices (--door, default
 * by QEMU version).  `viommu-run --qemu-info` resolves both once, up
 * front; the boots get the resolved path and door, and the table header
 * and the JSON name them.
 *
 * A missing prerequisite (qemu-system-x86_64, a device in it, the guest
 * image) is reported and skips what needs it; the rest still runs.  Exit
 * status: 0 (also when everything was skipped), 1 if a boot failed, 2 on a
 * bad command line; --smoke exits 77 (skipped) unless VIOMMU_BENCH_GUEST=1,
 * because booting is too slow for the smoke suite.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_SKIP 77
#define MAX_SIZES 16
#define MAX_ROUNDS 15
#define MAX_SIZE (2u << 20)
#define JSON_MAX_DEPTH 32
#define JSON_MAX_BYTES (64u << 20)

/* The chunk sizes guest/bench.c measures ring copies with. */
static const uint32_t chunks[] = { 4096, 65536, 1u << 20 };
#define NCHUNKS ((int)(sizeof(chunks) / sizeof(chunks[0])))

enum peer { P_OURS, P_QEMU, P_BYPASS, P_COUNT };

static const char *const peer_names[P_COUNT] = { "ours", "qemu", "bypass" };
static const char *const peer_text[P_COUNT] = {
	"our virtio-iommu + DMA engine (viommu-server)",
	"QEMU's virtio-iommu-pci + edu",
	"ours, iommu.passthrough=1: engine 0 bypassed, engine 1 in VFIO",
};

struct opts {
	bool smoke, keep;
	const char *json, *run, *build;
	const char *qemu, *door;  /* viommu-run --qemu / --door (NULL: its
				   * default) */
	uint32_t sizes[MAX_SIZES];
	int nsizes;
	uint32_t ms;
	int rounds;
	int pin;        /* CPU every boot's processes run on; -1: none */
	bool no_pin;
	unsigned poll_rq_us; /* ours: viommu-server --poll-rq-us (0: off) */
};

/* What one boot gave. */
struct boot {
	bool ran, ok;
	char why[256];
	double secs, load;
	double pairs[MAX_SIZES];  /* pairs/s per size, -1: none */
	int segs[MAX_SIZES];
	double ring[NCHUNKS];     /* ring MB/s, translated, -1: none */
	double ring_bypass[NCHUNKS];
	double polled, requests;  /* server: requests served by polling, and
				   * all requests (-1: unknown) */
	double srv_cpu, srv_secs; /* server: CPU and wall seconds (-1) */
};

/* Which figure of a boot: pairs/s, ring MB/s translated or bypassed. */
enum fig { F_PAIRS, F_RING, F_RING_BYPASS };

struct guestb {
	struct opts o;
	struct machine m;
	char run[PATH_MAX], build[PATH_MAX], tmp[PATH_MAX];
	char skip[P_COUNT][1024];  /* why a peer does not run ("": it does) */
	char qemu[PATH_MAX];       /* the QEMU every boot runs ("": unknown) */
	char qemu_version[32];     /* its version, e.g. "11.1.3" */
	char door[16];             /* our devices' door: vfio-user or proxy */
	char qemu_why[512];        /* why the QEMU is unknown */
	struct boot b[MAX_ROUNDS][P_COUNT];
	int nboots;
	bool built;
	double secs;
};

/* main.c declares it in common.h once wired; here for -Wmissing-prototypes */
int bench_guest_main(int argc, char **argv);

/* ------------------------------------------------------------------ */
/* A small JSON reader (viommu-run's --json output)                   */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

/* One JSON value; objects keep their members' keys in kids[i].key. */
struct jval {
	enum jtype t;
	double num;
	char *str;
	char *key;
	struct jval *kids;
	int n;
};

struct jparser {
	const char *p, *end;
	int depth;
};

static int jparse_value(struct jparser *jp, struct jval *v);

/* jfree() - release what @v holds (not @v itself). */
static void jfree(struct jval *v)
{
	for (int i = 0; i < v->n; i++) {
		free(v->kids[i].key);
		jfree(&v->kids[i]);
	}
	free(v->kids);
	free(v->str);
	memset(v, 0, sizeof(*v));
}

/* jskip() - skip white space; the next character or 0 at the end. */
static char jskip(struct jparser *jp)
{
	while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' ||
				   *jp->p == '\r' || *jp->p == '\n'))
		jp->p++;
	return jp->p < jp->end ? *jp->p : 0;
}

/* jhex4() - four hex digits at jp->p into *@u. */
static int jhex4(struct jparser *jp, unsigned *u)
{
	*u = 0;
	for (int i = 0; i < 4; i++, jp->p++) {
		char c = jp->p < jp->end ? *jp->p : 0;

		*u <<= 4;
		if (c >= '0' && c <= '9')
			*u |= (unsigned)(c - '0');
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			*u |= (unsigned)((c | 0x20) - 'a' + 10);
		else
			return -EINVAL;
	}
	return 0;
}

/* jescape() - one escape after the backslash; the byte to store. */
static int jescape(struct jparser *jp, char *out)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *k;
	unsigned u;

	if (jp->p >= jp->end)
		return -EINVAL;
	if (*jp->p != 'u') {
		if (!(k = strchr(from, *jp->p)) || !*jp->p)
			return -EINVAL;
		jp->p++;
		*out = to[k - from];
		return 0;
	}
	jp->p++;
	if (jhex4(jp, &u))
		return -EINVAL;
	*out = u < 0x80 ? (char)u : '?'; /* non-ASCII: not needed here */
	return 0;
}

/* jparse_string() - a string at jp->p (on the quote) into a new buffer. */
static int jparse_string(struct jparser *jp, char **out)
{
	size_t cap = 16, n = 0;
	char *s = malloc(cap), c;

	jp->p++;
	while (s && jp->p < jp->end && *jp->p != '"') {
		c = *jp->p++;
		if (c == '\\' && jescape(jp, &c)) {
			free(s);
			return -EINVAL;
		}
		if (n + 2 > cap) {
			char *t = realloc(s, cap *= 2);

			if (!t)
				break;
			s = t;
		}
		s[n++] = c;
	}
	if (!s || jp->p >= jp->end || *jp->p != '"') {
		free(s);
		return -EINVAL;
	}
	jp->p++;
	s[n] = 0;
	*out = s;
	return 0;
}

/* jadd() - a new zeroed member at the end of @v's kids. */
static struct jval *jadd(struct jval *v)
{
	struct jval *k = realloc(v->kids, (size_t)(v->n + 1) * sizeof(*k));

	if (!k)
		return NULL;
	v->kids = k;
	memset(&k[v->n], 0, sizeof(*k));
	return &k[v->n++];
}

/* jparse_members() - the members of an array or object after its '['/'{'.*/
static int jparse_members(struct jparser *jp, struct jval *v, char close)
{
	struct jval *k;

	jp->p++;
	if (jskip(jp) == close) {
		jp->p++;
		return 0;
	}
	for (;;) {
		if (!(k = jadd(v)))
			return -ENOMEM;
		if (v->t == J_OBJ) {
			if (jskip(jp) != '"' || jparse_string(jp, &k->key) ||
			    jskip(jp) != ':')
				return -EINVAL;
			jp->p++;
		}
		if (jparse_value(jp, k))
			return -EINVAL;
		if (jskip(jp) == close) {
			jp->p++;
			return 0;
		}
		if (jskip(jp) != ',')
			return -EINVAL;
		jp->p++;
	}
}

/* jparse_word() - true, false, null or a number. */
static int jparse_word(struct jparser *jp, struct jval *v)
{
	static const char *const w[] = { "true", "false", "null" };
	char *end;

	for (int i = 0; i < 3; i++) {
		size_t n = strlen(w[i]);

		if ((size_t)(jp->end - jp->p) >= n &&
		    !strncmp(jp->p, w[i], n)) {
			jp->p += n;
			v->t = i < 2 ? J_BOOL : J_NULL;
			v->num = i == 0;
			return 0;
		}
	}
	if (!strchr("-0123456789", *jp->p))
		return -EINVAL;
	v->t = J_NUM;
	v->num = strtod(jp->p, &end); /* the buffer is NUL-terminated */
	if (end == jp->p || end > jp->end)
		return -EINVAL;
	jp->p = end;
	return 0;
}

/* jparse_value() - any value at jp->p. */
static int jparse_value(struct jparser *jp, struct jval *v)
{
	char c = jskip(jp);
	int err;

	if (!c || jp->depth >= JSON_MAX_DEPTH)
		return -EINVAL;
	if (c == '"') {
		v->t = J_STR;
		return jparse_string(jp, &v->str);
	}
	if (c != '[' && c != '{')
		return jparse_word(jp, v);
	v->t = c == '[' ? J_ARR : J_OBJ;
	jp->depth++;
	err = jparse_members(jp, v, c == '[' ? ']' : '}');
	jp->depth--;
	return err;
}

/* jparse_text() - parse the @n bytes at @buf (NUL-terminated) into @v;
 * 0 or -EINVAL (@v is then empty). */
static int jparse_text(const char *buf, size_t n, struct jval *v)
{
	struct jparser jp = { buf, buf + n, 0 };
	int err;

	memset(v, 0, sizeof(*v));
	err = jparse_value(&jp, v);
	if (!err && jskip(&jp))
		err = -EINVAL;
	if (err)
		jfree(v);
	return err;
}

/* jload() - parse the JSON file @path into @v; -errno or -EINVAL. */
static int jload(const char *path, struct jval *v)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;
	int err = -EINVAL;

	memset(v, 0, sizeof(*v));
	if (!f)
		return -errno;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 ||
	    n > (long)JSON_MAX_BYTES || fseek(f, 0, SEEK_SET) ||
	    !(buf = malloc((size_t)n + 1))) {
		fclose(f);
		return -EIO;
	}
	if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
		buf[n] = 0;
		err = jparse_text(buf, (size_t)n, v);
	}
	free(buf);
	fclose(f);
	return err;
}

/* jsum() - the sum of the numbers in @v, two levels of objects deep. */
static double jsum(const struct jval *v)
{
	double sum = 0;

	if (!v || v->t != J_OBJ)
		return -1;
	for (int i = 0; i < v->n; i++) {
		const struct jval *k = &v->kids[i];

		if (k->t == J_NUM)
			sum += k->num;
		for (int j = 0; k->t == J_OBJ && j < k->n; j++)
			if (k->kids[j].t == J_NUM)
				sum += k->kids[j].num;
	}
	return sum;
}

/* jget() - member @key of object @v, or NULL. */
static const struct jval *jget(const struct jval *v, const char *key)
{
	if (!v || v->t != J_OBJ)
		return NULL;
	for (int i = 0; i < v->n; i++)
		if (!strcmp(v->kids[i].key, key))
			return &v->kids[i];
	return NULL;
}

/* jstr() - the string member @key of @v, or NULL. */
static const char *jstr(const struct jval *v, const char *key)
{
	const struct jval *k = jget(v, key);

	return k && k->t == J_STR ? k->str : NULL;
}

/* jnum() - member @key of @v as a number (string or number), or -1. */
static double jnum(const struct jval *v, const char *key)
{
	const struct jval *k = jget(v, key);
	char *end;
	double d;

	if (k && k->t == J_NUM)
		return k->num;
	if (!k || k->t != J_STR)
		return -1;
	d = strtod(k->str, &end);
	return end != k->str && !*end ? d : -1;
}

/* ------------------------------------------------------------------ */
/* Finding things                                                     */

/* is_exec() - whether @path is an executable regular file. */
static bool is_exec(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISREG(st.st_mode) && !access(path, X_OK);
}

/* exe_dir() - the directory of this executable into @buf; -1 if unknown. */
static int exe_dir(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	char *slash;

	if (n <= 0)
		return -1;
	buf[n] = 0;
	slash = strrchr(buf, '/');
	if (!slash)
		return -1;
	*slash = 0;
	return 0;
}

/* up() - cut the last component of @dir; false at the root. */
static bool up(char *dir)
{
	char *slash = strrchr(dir, '/');

	if (!slash || slash == dir)
		return false;
	*slash = 0;
	return true;
}

/*
 * find_run() - tools/viommu-run: --run, else in an ancestor of this
 * executable's directory (the build tree is usually inside the source
 * tree), else next to the source directory meson built us from.
 */
static int find_run(struct guestb *g)
{
	char dir[PATH_MAX];

	if (g->o.run) {
		snprintf(g->run, sizeof(g->run), "%s", g->o.run);
		return access(g->run, R_OK) ? -1 : 0;
	}
	if (!exe_dir(dir, sizeof(dir))) {
		do {
			snprintf(g->run, sizeof(g->run),
				 "%.*s/tools/viommu-run", PATH_MAX - 20, dir);
			if (!access(g->run, R_OK))
				return 0;
		} while (up(dir));
	}
#ifdef BENCH_PLOT_DIR
	snprintf(g->run, sizeof(g->run), "%s/../../tools/viommu-run",
		 BENCH_PLOT_DIR);
	if (!access(g->run, R_OK))
		return 0;
#endif
	g->run[0] = 0;
	return -1;
}

/* find_build() - --build, else the build directory we were built in. */
static int find_build(struct guestb *g)
{
	char f[PATH_MAX + 16];

	if (g->o.build)
		snprintf(g->build, sizeof(g->build), "%s", g->o.build);
	else if (exe_dir(g->build, sizeof(g->build)) || !up(g->build))
		return -1;
	snprintf(f, sizeof(f), "%s/build.ninja", g->build);
	return access(f, R_OK) ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Prerequisites                                                      */

/*
 * shell_quote() - @s in single quotes for /bin/sh into @buf; false if it
 * does not fit.
 */
static bool shell_quote(char *buf, size_t size, const char *s)
{
	size_t n = 0;

	if (size < 3)
		return false;
	buf[n++] = '\'';
	for (; *s; s++) {
		const char *piece = *s == '\'' ? "'\\''" : NULL;
		size_t k = piece ? strlen(piece) : 1;

		if (n + k + 2 > size)
			return false;
		if (piece)
			memcpy(buf + n, piece, k);
		else
			buf[n] = *s;
		n += k;
	}
	buf[n++] = '\'';
	buf[n] = 0;
	return true;
}

/*
 * has_device() - whether the QEMU at @qemu has the device @name: its
 * `-device NAME,help` lists "NAME options:" (the exit status is 0 either
 * way; asking for one device loads only that device's module).
 */
static bool has_device(const char *qemu, const char *name)
{
	char q[PATH_MAX * 4 + 8], cmd[sizeof(q) + 128], want[96], line[512];
	bool found = false;
	FILE *p;

	if (!shell_quote(q, sizeof(q), qemu))
		return false;
	snprintf(cmd, sizeof(cmd), "%s -machine none -nodefaults -device "
		 "%s,help </dev/null 2>&1", q, name);
	snprintf(want, sizeof(want), "%s options:", name);
	p = popen(cmd, "r");
	if (!p)
		return false;
	while (fgets(line, sizeof(line), p))
		found |= !strncmp(line, want, strlen(want));
	pclose(p);
	return found;
}

/*
 * read_child() - run viommu-run with @argv (argv[0] "python3", argv[1] the
 * script), its stdout into @buf (NUL-terminated, cut at @size - 1 bytes),
 * its stderr to ours; its exit status, or -1.
 */
static int read_child(const struct guestb *g, char **argv, char *buf,
		      size_t size)
{
	size_t n = 0;
	ssize_t k;
	int fds[2], st;
	pid_t pid;

	if (pipe(fds))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (!pid) {
		close(fds[0]);
		if (dup2(fds[1], 1) < 0)
			_exit(127);
		prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
		if (is_exec(g->run))
			execv(g->run, argv + 1);
		execvp("python3", argv);
		_exit(127);
	}
	close(fds[1]);
	while ((k = read(fds[0], buf + n, size - 1 - n)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			break;
		n += (size_t)k;
		if (n == size - 1) {
			char sink[512];

			while (read(fds[0], sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	buf[n] = 0;
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * take_qemu_info() - the JSON line of `viommu-run --qemu-info` (the last
 * line of @out that starts with '{') into g->qemu, qemu_version, door;
 * false if there is none.
 */
static bool take_qemu_info(struct guestb *g, char *out)
{
	char *line = NULL, *p = out;
	const char *path, *ver, *door;
	struct jval doc;
	bool ok;

	for (; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (*p == '{')
			line = p;
	if (!line)
		return false;
	line[strcspn(line, "\n")] = 0;
	if (jparse_text(line, strlen(line), &doc))
		return false;
	path = jstr(&doc, "path");
	ver = jstr(&doc, "version");
	door = jstr(&doc, "door");
	ok = path && ver && door;
	if (ok) {
		snprintf(g->qemu, sizeof(g->qemu), "%s", path);
		snprintf(g->qemu_version, sizeof(g->qemu_version), "%s", ver);
		snprintf(g->door, sizeof(g->door), "%s", door);
	}
	jfree(&doc);
	return ok;
}

/* echo_lines() - the lines of @out that are not JSON, on stderr. */
static void echo_lines(const char *out)
{
	for (const char *p = out; *p;) {
		size_t n = strcspn(p, "\n");

		if (*p != '{' && n)
			fprintf(stderr, "%.*s\n", (int)n, p);
		p += n + (p[n] == '\n');
	}
}

/*
 * resolve_qemu() - ask viommu-run which QEMU and door the boots will use
 * (`--qemu-info`; it builds the QEMU 11.1 cache first if --qemu 11 needs
 * it).  A usage error (exit 2: a door this QEMU cannot have) ends the run;
 * any other failure leaves g->qemu empty and says why in g->qemu_why.
 */
static void resolve_qemu(struct guestb *g)
{
	static char out[1 << 16];
	char *argv[12], *last;
	int n = 0, rc;

	argv[n++] = "python3";
	argv[n++] = g->run;
	argv[n++] = "--build";
	argv[n++] = g->build;
	argv[n++] = "--qemu-info";
	if (g->o.qemu) {
		argv[n++] = "--qemu";
		argv[n++] = (char *)g->o.qemu;
	}
	if (g->o.door) {
		argv[n++] = "--door";
		argv[n++] = (char *)g->o.door;
	}
	argv[n] = NULL;
	rc = read_child(g, argv, out, sizeof(out));
	if (rc == 0) {
		echo_lines(out);
		if (take_qemu_info(g, out))
			return;
	}
	/* the child's last line says why; the lines before it are shown */
	while ((last = strrchr(out, '\n')) && !last[1])
		*last = 0;
	last = strrchr(out, '\n');
	if (last) {
		*last++ = 0;
		if (rc)
			echo_lines(out);
	} else {
		last = out;
	}
	if (rc == 2)
		bad_usage("%.400s", *last ? last :
			  "viommu-run refused --qemu/--door");
	snprintf(g->qemu_why, sizeof(g->qemu_why), "%.400s (viommu-run "
		 "--qemu-info exit status %d)", *last ? last : "no QEMU", rc);
}

/* check_peers() - say which peers cannot run, and why. */
static void check_peers(struct guestb *g)
{
	const char *door_dev;
	char f[PATH_MAX + 64];

	snprintf(f, sizeof(f), "%s/guest-cache/image/vmlinuz", g->build);
	if (!g->qemu[0]) {
		for (int p = 0; p < P_COUNT; p++)
			snprintf(g->skip[p], sizeof(g->skip[p]), "%s",
				 g->qemu_why);
		return;
	}
	if (access(f, R_OK)) {
		for (int p = 0; p < P_COUNT; p++)
			snprintf(g->skip[p], sizeof(g->skip[p]), "no guest "
				 "image in %.400s/guest-cache/image (make it "
				 "with `make demo` or guest/build-image.sh "
				 "--cache %.400s/guest-cache)", g->build,
				 g->build);
		return;
	}
	if (!has_device(g->qemu, "virtio-iommu-pci") ||
	    !has_device(g->qemu, "edu"))
		snprintf(g->skip[P_QEMU], sizeof(g->skip[P_QEMU]), "QEMU %s "
			 "lacks virtio-iommu-pci or edu", g->qemu_version);
	door_dev = strcmp(g->door, "proxy") ? "vfio-user-pci" :
		   "x-pci-proxy-dev";
	if (!has_device(g->qemu, door_dev)) {
		snprintf(g->skip[P_OURS], sizeof(g->skip[P_OURS]), "QEMU %s "
			 "lacks %s (door %s)", g->qemu_version, door_dev,
			 g->door);
		snprintf(g->skip[P_BYPASS], sizeof(g->skip[P_BYPASS]), "%s",
			 g->skip[P_OURS]);
	}
}

/* ------------------------------------------------------------------ */
/* Running one boot                                                   */

/* sizes_arg() - the sizes as viommu-run's --bench-sizes list. */
static void sizes_arg(const struct opts *o, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = 0;
	for (int i = 0; i < o->nsizes && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%u", i ? "," : "",
				      o->sizes[i]);
}

/* child_exec() - in the child: output to @log, then exec viommu-run. */
static void __attribute__((noreturn))
child_exec(const struct guestb *g, char **argv, const char *log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cpu_set_t set;

	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(127);
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (g->o.pin >= 0) {
		CPU_ZERO(&set);
		CPU_SET(g->o.pin, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			fprintf(stderr, "viommu-bench guest: cannot pin to "
				"CPU %d: %s\n", g->o.pin, strerror(errno));
			_exit(127);
		}
	}
	if (is_exec(g->run))
		execv(g->run, argv + 1);
	execvp("python3", argv);
	fprintf(stderr, "viommu-bench guest: cannot run %s: %s\n", g->run,
		strerror(errno));
	_exit(127);
}

/* run_child() - viommu-run for @peer; its exit status (or -1). */
static int run_child(struct guestb *g, enum peer peer, const char *json,
		     const char *log)
{
	char ms[16], sizes[256], poll[48];
	char *argv[26];
	int n = 0, st;
	pid_t pid;

	snprintf(ms, sizeof(ms), "%u", g->o.ms);
	sizes_arg(&g->o, sizes, sizeof(sizes));
	argv[n++] = "python3";
	argv[n++] = g->run;
	argv[n++] = "--build";
	argv[n++] = g->build;
	argv[n++] = "--scenario=bench";
	argv[n++] = "--bench-ms";
	argv[n++] = ms;
	argv[n++] = "--bench-sizes";
	argv[n++] = sizes;
	argv[n++] = "--json";
	argv[n++] = (char *)json;
	argv[n++] = "--quiet";
	argv[n++] = "--qemu";
	argv[n++] = g->qemu;
	if (peer == P_QEMU) {
		argv[n++] = "--peer=qemu";
	} else {
		argv[n++] = "--door";
		argv[n++] = g->door;
	}
	if (peer == P_BYPASS)
		argv[n++] = "--passthrough";
	if (peer == P_OURS && g->o.poll_rq_us) {
		snprintf(poll, sizeof(poll), "--server-arg=--poll-rq-us=%u",
			 g->o.poll_rq_us);
		argv[n++] = poll;
	}
	if (g->built)
		argv[n++] = "--no-build";
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (!pid)
		child_exec(g, argv, log);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* size_index() - index of @size in the options' sizes, or -1. */
static int size_index(const struct opts *o, double size)
{
	for (int i = 0; i < o->nsizes; i++)
		if (o->sizes[i] == size)
			return i;
	return -1;
}

/* chunk_index() - index of @size in chunks[], or -1. */
static int chunk_index(double size)
{
	for (int i = 0; i < NCHUNKS; i++)
		if (chunks[i] == size)
			return i;
	return -1;
}

/* take_line() - record one VIOMMU-BENCH line (an object of strings). */
static void take_line(struct guestb *g, struct boot *b, const struct jval *l)
{
	const char *name = jstr(l, "name"), *iommu;
	double size = jnum(l, "size"), count = jnum(l, "count");
	double ns = jnum(l, "ns");
	int i;

	if (!name || count < 0 || ns <= 0)
		return;
	if (!strcmp(name, "map_unmap") &&
	    (i = size_index(&g->o, size)) >= 0) {
		b->pairs[i] = count * 1e9 / ns;
		b->segs[i] = (int)jnum(l, "segs");
	} else if (!strcmp(name, "ring_copy") &&
		   (i = chunk_index(size)) >= 0) {
		iommu = jstr(l, "iommu");
		if (iommu && !strcmp(iommu, "bypass"))
			b->ring_bypass[i] = count * size / ns * 1e3;
		else
			b->ring[i] = count * size / ns * 1e3;
	}
}

/* boot_status() - whether the bench scenario passed; reason in b->why. */
static bool boot_status(struct boot *b, const struct jval *boot)
{
	const struct jval *res = jget(boot, "results"), *err;

	for (int i = 0; res && res->t == J_ARR && i < res->n; i++) {
		const char *sc = jstr(&res->kids[i], "scenario");
		const char *st = jstr(&res->kids[i], "status");
		const char *why = jstr(&res->kids[i], "reason");

		if (!sc || strcmp(sc, "bench"))
			continue;
		if (st && !strcmp(st, "pass"))
			return true;
		snprintf(b->why, sizeof(b->why), "bench %s%s%s",
			 st ? st : "?", why && *why ? ": " : "",
			 why ? why : "");
		return false;
	}
	err = jget(boot, "errors");
	snprintf(b->why, sizeof(b->why), "%s", err && err->t == J_ARR &&
		 err->n && err->kids[0].t == J_STR ? err->kids[0].str :
		 "no bench result");
	return false;
}

/* take_json() - fill @b from viommu-run's JSON file @path (exit @rc). */
static void take_json(struct guestb *g, struct boot *b, const char *path,
		      int rc)
{
	const struct jval *boots, *boot, *lines;
	struct jval doc;

	if (jload(path, &doc)) {
		snprintf(b->why, sizeof(b->why), "viommu-run exit status %d, "
			 "no readable JSON", rc);
		return;
	}
	boots = jget(&doc, "boots");
	boot = boots && boots->t == J_ARR && boots->n ? &boots->kids[0] : NULL;
	lines = jget(boot, "bench");
	b->ok = boot && boot_status(b, boot);
	b->polled = jnum(jget(boot, "server_stats"), "polled_requests");
	b->requests = jsum(jget(jget(boot, "server_stats"), "requests"));
	b->srv_cpu = jnum(jget(boot, "server_stats"), "cpu_seconds");
	b->srv_secs = jnum(jget(boot, "server_stats"), "seconds");
	for (int i = 0; lines && lines->t == J_ARR && i < lines->n; i++)
		take_line(g, b, &lines->kids[i]);
	jfree(&doc);
}

/* run_boot() - one boot of @peer in round @r, recorded in g->b. */
static void run_boot(struct guestb *g, int r, enum peer peer)
{
	struct boot *b = &g->b[r][peer];
	char json[PATH_MAX + 64], log[PATH_MAX + 64];
	struct span t;
	int rc;

	memset(b, 0, sizeof(*b));
	for (int i = 0; i < MAX_SIZES; i++)
		b->pairs[i] = -1;
	for (int i = 0; i < NCHUNKS; i++)
		b->ring[i] = b->ring_bypass[i] = -1;
	snprintf(json, sizeof(json), "%s/%s-%d.json", g->tmp,
		 peer_names[peer], r + 1);
	snprintf(log, sizeof(log), "%s/%s-%d.log", g->tmp, peer_names[peer],
		 r + 1);
	fprintf(stderr, "viommu-bench guest: round %d/%d: %-6s ...",
		r + 1, g->o.rounds, peer_names[peer]);
	t = span_start();
	rc = run_child(g, peer, json, log);
	b->secs = (double)span_end(t).wall / 1e9;
	b->load = loadavg();
	b->ran = true;
	g->nboots++;
	take_json(g, b, json, rc);
	if (b->ok && rc) {
		b->ok = false;
		snprintf(b->why, sizeof(b->why), "viommu-run exit status %d",
			 rc);
	}
	if (b->ok)
		g->built = true;
	fprintf(stderr, " %.1f s, load %.2f: %s%s%s\n", b->secs, b->load,
		b->ok ? "ok" : "FAILED", b->ok ? "" : " - ", b->why);
	if (!b->ok)
		fprintf(stderr, "viommu-bench guest: log: %s\n", log);
}

/* run_all() - the rounds, the order reversed every other round. */
static void run_all(struct guestb *g)
{
	struct span t = span_start();

	for (int r = 0; r < g->o.rounds; r++)
		for (int k = 0; k < P_COUNT; k++) {
			enum peer p = r % 2 ? P_COUNT - 1 - k : k;

			if (!g->skip[p][0])
				run_boot(g, r, p);
		}
	g->secs = (double)span_end(t).wall / 1e9;
}

/* ------------------------------------------------------------------ */
/* Statistics                                                         */

/* A median and its range over the rounds; n = 0: no sample. */
struct stat3 {
	double med, min, max;
	int n;
};

/* stat_of() - median, min and max of @v[0..n-1]. */
static struct stat3 stat_of(double *v, int n)
{
	struct stat3 s = { -1, -1, -1, n };

	if (n) {
		s.med = median(v, n);
		s.min = v[0];
		s.max = v[n - 1];
	}
	return s;
}

/* fig() - figure @f at index @i of boot @b, or -1. */
static double fig(const struct boot *b, enum fig f, int i)
{
	if (!b->ok)
		return -1;
	return f == F_PAIRS ? b->pairs[i] : f == F_RING ? b->ring[i] :
		b->ring_bypass[i];
}

/* fig_stat() - figure @f at index @i of @peer over the rounds. */
static struct stat3 fig_stat(struct guestb *g, enum peer peer, enum fig f,
			     int i)
{
	double v[MAX_ROUNDS];
	int n = 0;

	for (int r = 0; r < g->o.rounds; r++)
		if (fig(&g->b[r][peer], f, i) > 0)
			v[n++] = fig(&g->b[r][peer], f, i);
	return stat_of(v, n);
}

/*
 * round_ratios() - figure @fa of @a over figure @fb of @b, at index @i, in
 * each round where both have one.
 */
static struct stat3 round_ratios(struct guestb *g, enum peer a, enum fig fa,
				 enum peer b, enum fig fb, int i)
{
	double v[MAX_ROUNDS];
	int n = 0;

	for (int r = 0; r < g->o.rounds; r++) {
		double p = fig(&g->b[r][a], fa, i), q = fig(&g->b[r][b], fb, i);

		if (p > 0 && q > 0)
			v[n++] = p / q;
	}
	return stat_of(v, n);
}

/* segs_of() - the segs= of @peer at size index @i (first boot with one). */
static int segs_of(struct guestb *g, enum peer peer, int i)
{
	for (int r = 0; r < g->o.rounds; r++)
		if (g->b[r][peer].ok && g->b[r][peer].pairs[i] > 0)
			return g->b[r][peer].segs[i];
	return -1;
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

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

/* print_peers() - which boots ran, failed or were skipped. */
static void print_peers(struct guestb *g, FILE *f)
{
	for (int p = 0; p < P_COUNT; p++) {
		int ok = 0, ran = 0;

		for (int r = 0; r < g->o.rounds; r++) {
			ran += g->b[r][p].ran;
			ok += g->b[r][p].ok;
		}
		if (g->skip[p][0])
			fprintf(f, "  %-6s %s: SKIPPED, %s\n", peer_names[p],
				peer_text[p], g->skip[p]);
		else
			fprintf(f, "  %-6s %s: %d of %d boots ok\n",
				peer_names[p], peer_text[p], ok, ran);
	}
}

/* print_pairs() - the map/unmap table. */
static void print_pairs(struct guestb *g, FILE *f)
{
	char sz[16], a[16], b[16], r[16], lo[16], hi[16], so[16], sq[16];

	fprintf(f, "\nVFIO MAP_DMA + UNMAP_DMA pairs/s, one physically "
		"contiguous buffer (goal: ours/QEMU >= 1.0)\n"
		"  %-8s %10s %10s %10s  %-13s %s\n", "size", "ours", "QEMU",
		"ours/QEMU", "round ratios", "MAPs/pair");
	for (int i = 0; i < g->o.nsizes; i++) {
		struct stat3 o = fig_stat(g, P_OURS, F_PAIRS, i);
		struct stat3 q = fig_stat(g, P_QEMU, F_PAIRS, i);
		struct stat3 rr = round_ratios(g, P_OURS, F_PAIRS, P_QEMU,
					       F_PAIRS, i);

		fmt_size(sz, sizeof(sz), g->o.sizes[i]);
		cell(a, sizeof(a), o.med, 0, "");
		cell(b, sizeof(b), q.med, 0, "");
		cell(r, sizeof(r), o.n && q.n ? o.med / q.med : -1, 2, "");
		cell(lo, sizeof(lo), rr.min, 2, "");
		cell(hi, sizeof(hi), rr.max, 2, "");
		cell(so, sizeof(so), segs_of(g, P_OURS, i), 0, "");
		cell(sq, sizeof(sq), segs_of(g, P_QEMU, i), 0, "");
		fprintf(f, "  %-8s %10s %10s %10s  %5s..%-6s %s/%s\n", sz, a, b,
			r, lo, hi, so, sq);
	}
}

/* print_ring() - the ring throughput table. */
static void print_ring(struct guestb *g, FILE *f)
{
	char sz[16], a[16], b[16], r[16], lo[16], hi[16], n[16];

	fprintf(f, "\nOur DMA engine, ring-mode RAM->RAM copies, MB/s "
		"(goal: IOMMU/bypass >= 90%%);\nIOMMU and bypass interleaved "
		"in the passthrough boot (two engines), normal: ours boot\n"
		"  %-8s %10s %10s %13s  %-13s %10s\n", "chunk", "IOMMU",
		"bypass", "IOMMU/bypass", "round ratios", "normal");
	for (int i = 0; i < NCHUNKS; i++) {
		struct stat3 t = fig_stat(g, P_BYPASS, F_RING, i);
		struct stat3 y = fig_stat(g, P_BYPASS, F_RING_BYPASS, i);
		struct stat3 o = fig_stat(g, P_OURS, F_RING, i);
		struct stat3 rr = round_ratios(g, P_BYPASS, F_RING, P_BYPASS,
					       F_RING_BYPASS, i);

		fmt_size(sz, sizeof(sz), chunks[i]);
		cell(a, sizeof(a), t.med, 0, "");
		cell(b, sizeof(b), y.med, 0, "");
		cell(r, sizeof(r), t.n && y.n ? 100 * t.med / y.med : -1, 1,
		     "%");
		cell(lo, sizeof(lo), rr.n ? 100 * rr.min : -1, 0, "%");
		cell(hi, sizeof(hi), rr.n ? 100 * rr.max : -1, 0, "%");
		cell(n, sizeof(n), o.med, 0, "");
		fprintf(f, "  %-8s %10s %10s %13s  %5s..%-6s %10s\n", sz, a, b,
			r, lo, hi, n);
	}
}

/* print_table() - the whole report. */
/*
 * print_polled() - with --poll-rq-us: the share of our boots' requests
 * that polling served (the rest followed a kick).
 */
static void print_polled(const struct guestb *g, FILE *f)
{
	double polled = 0, all = 0, cpu = 0, secs = 0;

	if (!g->o.poll_rq_us)
		return;
	for (int r = 0; r < g->o.rounds; r++) {
		const struct boot *b = &g->b[r][P_OURS];

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
		fprintf(f, "  ours: %.0f of %.0f requests (%.1f%%) served by "
			"polling, without a kick\n", polled, all,
			100.0 * polled / all);
	if (secs > 0)
		fprintf(f, "  ours: viommu-server used %.1f s of CPU in %.1f s "
			"of boots (QEMU's vCPU thread, spinning in the guest\n"
			"  while it waits for a reply, uses a CPU in both "
			"peers)\n", cpu, secs);
}

static void print_table(struct guestb *g, FILE *f)
{
	fprintf(f, "viommu-bench guest: real Linux guest (Debian 6.12 under "
		"QEMU TCG), VFIO from guest user space%s\n",
		g->o.smoke ? " (SMOKE RUN: numbers not meaningful)" : "");
	machine_print(&g->m, f);
	if (g->qemu[0])
		fprintf(f, "qemu:    QEMU %s (%s); our devices through the %s "
			"door (%s)\n", g->qemu_version, g->qemu, g->door,
			strcmp(g->door, "proxy") ? "vfio-user-pci" :
			"x-pci-proxy-dev");
	else
		fprintf(f, "qemu:    none: %s\n", g->qemu_why);
	fprintf(f, "method:  %d round(s) of one boot per peer, order reversed "
		"every other round;\n         %u ms per measurement; median "
		"over rounds; %d boots in %.0f s; ", g->o.rounds, g->o.ms,
		g->nboots, g->secs);
	if (g->o.pin >= 0)
		fprintf(f, "every boot pinned to CPU %d\n", g->o.pin);
	else
		fprintf(f, "not pinned\n");
	if (g->o.poll_rq_us)
		fprintf(f, "         ours: viommu-server --poll-rq-us %u (the "
			"request queue polled, kicks\n         suppressed, "
			"while busy: one CPU spent on polling)\n",
			g->o.poll_rq_us);
	print_peers(g, f);
	for (int r = 0; r < g->o.rounds; r++)
		for (int p = 0; p < P_COUNT; p++)
			if (g->b[r][p].ran && !g->b[r][p].ok)
				fprintf(f, "  round %d %s FAILED: %s\n", r + 1,
					peer_names[p], g->b[r][p].why);
	print_pairs(g, f);
	print_polled(g, f);
	print_ring(g, f);
	fprintf(f, "\nMAPs/pair: physically contiguous runs of the buffer in "
		"the guest (ours/QEMU), i.e. virtio-iommu MAP requests per "
		"pair.\n");
}

/* json_num() - a number (6 significant digits) or null. */
static void json_num(FILE *f, double v)
{
	if (v < 0)
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

/* json_stat() - "key": {median, min, max, n}. */
static void json_stat(FILE *f, const char *key, struct stat3 s)
{
	fprintf(f, "\"%s\": {\"median\": ", key);
	json_num(f, s.med);
	fputs(", \"min\": ", f);
	json_num(f, s.min);
	fputs(", \"max\": ", f);
	json_num(f, s.max);
	fprintf(f, ", \"n\": %d}", s.n);
}

/* json_boots() - one object per boot that ran. */
static void json_boots(struct guestb *g, FILE *f)
{
	bool first = true;

	fputs(",\n  \"boots\": [", f);
	for (int r = 0; r < g->o.rounds; r++)
		for (int p = 0; p < P_COUNT; p++) {
			const struct boot *b = &g->b[r][p];

			if (!b->ran)
				continue;
			fprintf(f, "%s\n    {\"round\": %d, \"peer\": \"%s\", "
				"\"ok\": %s, \"seconds\": %.1f, \"loadavg\": "
				"%.2f, \"reason\": ", first ? "" : ",", r + 1,
				peer_names[p], b->ok ? "true" : "false",
				b->secs, b->load);
			json_str(f, b->why);
			fputc('}', f);
			first = false;
		}
	fputs("\n  ]", f);
}

/* json_pairs() - the map/unmap figures. */
static void json_pairs(struct guestb *g, FILE *f)
{
	fputs(",\n  \"map_unmap\": [", f);
	for (int i = 0; i < g->o.nsizes; i++) {
		struct stat3 o = fig_stat(g, P_OURS, F_PAIRS, i);
		struct stat3 q = fig_stat(g, P_QEMU, F_PAIRS, i);

		fprintf(f, "%s\n    {\"size\": %u, ", i ? "," : "",
			g->o.sizes[i]);
		json_stat(f, "ours_pairs_per_s", o);
		fputs(", ", f);
		json_stat(f, "qemu_pairs_per_s", q);
		fputs(", \"ratio\": ", f);
		json_num(f, o.n && q.n ? o.med / q.med : -1);
		fputs(", ", f);
		json_stat(f, "round_ratios", round_ratios(g, P_OURS, F_PAIRS,
							  P_QEMU, F_PAIRS, i));
		fprintf(f, ", \"segs_ours\": %d, \"segs_qemu\": %d}",
			segs_of(g, P_OURS, i), segs_of(g, P_QEMU, i));
	}
	fputs("\n  ]", f);
}

/* json_ring() - the ring figures. */
static void json_ring(struct guestb *g, FILE *f)
{
	fputs(",\n  \"ring\": [", f);
	for (int i = 0; i < NCHUNKS; i++) {
		struct stat3 t = fig_stat(g, P_BYPASS, F_RING, i);
		struct stat3 y = fig_stat(g, P_BYPASS, F_RING_BYPASS, i);

		fprintf(f, "%s\n    {\"chunk\": %u, ", i ? "," : "",
			chunks[i]);
		json_stat(f, "iommu_MBps", t);
		fputs(", ", f);
		json_stat(f, "bypass_MBps", y);
		fputs(", \"ratio\": ", f);
		json_num(f, t.n && y.n ? t.med / y.med : -1);
		fputs(", ", f);
		json_stat(f, "round_ratios", round_ratios(g, P_BYPASS, F_RING,
							  P_BYPASS,
							  F_RING_BYPASS, i));
		fputs(", ", f);
		json_stat(f, "normal_boot_iommu_MBps",
			  fig_stat(g, P_OURS, F_RING, i));
		fputc('}', f);
	}
	fputs("\n  ]", f);
}

/* write_json() - the report as JSON. */
static void write_json(struct guestb *g, FILE *f)
{
	json_header(f, "guest", g->o.smoke, g->o.rounds, &g->m);
	fprintf(f, ",\n  \"ms\": %u,\n  \"seconds\": %.1f,\n  \"pin\": ",
		g->o.ms, g->secs);
	if (g->o.pin >= 0)
		fprintf(f, "%d", g->o.pin);
	else
		fputs("null", f);
	fprintf(f, ",\n  \"poll_rq_us\": %u", g->o.poll_rq_us);
	fputs(",\n  \"qemu\": ", f);
	if (g->qemu[0]) {
		fputs("{\"path\": ", f);
		json_str(f, g->qemu);
		fputs(", \"version\": ", f);
		json_str(f, g->qemu_version);
		fputs(", \"door\": ", f);
		json_str(f, g->door);
		fputc('}', f);
	} else {
		fputs("null", f);
	}
	fputs(",\n  \"peers\": {", f);
	for (int p = 0; p < P_COUNT; p++) {
		fprintf(f, "%s\"%s\": ", p ? ", " : "", peer_names[p]);
		json_str(f, g->skip[p][0] ? g->skip[p] : "ran");
	}
	fputc('}', f);
	json_boots(g, f);
	json_pairs(g, f);
	json_ring(g, f);
	fputs("\n}\n", f);
}

/* ------------------------------------------------------------------ */
/* Command line                                                       */

/* usage() - the --help text. */
static void usage(FILE *f)
{
	fprintf(f,
"usage: viommu-bench guest [--sizes LIST] [--ms N] [--rounds N]\n"
"                          [--pin CPU | --no-pin] [--poll-rq-us N]\n"
"                          [--qemu 11|7.2|PATH] [--door vfio-user|proxy]\n"
"                          [--json FILE|-] [--run PATH] [--build DIR]\n"
"                          [--keep] [--smoke] [--help]\n"
"\n"
"Boots a real Linux guest (tools/viommu-run) against our virtio-iommu and\n"
"DMA engine, against QEMU's virtio-iommu-pci + edu, and against ours with\n"
"iommu.passthrough=1, in one run; compares VFIO map+unmap pairs/s (ours\n"
"vs QEMU) and ring-mode DMA throughput (IOMMU vs bypass) as ratios.\n"
"Each boot takes 10-30 s.  Every boot runs the same QEMU.\n"
"\n"
"  --sizes LIST   map/unmap sizes, 4 KiB multiples up to 2 MiB, with k/m\n"
"                 suffixes (default 4k,16k,64k,256k,1m,2m)\n"
"  --ms N         length of each measurement in the guest, 20..10000\n"
"                 (default 300)\n"
"  --rounds N     rounds of the three boots, 1..%d (default 5)\n"
"  --pin CPU      run every boot (QEMU, viommu-server, all threads) on this\n"
"                 CPU, the same for every peer (default: the highest CPU\n"
"                 this program may use)\n"
"  --poll-rq-us N ours: start viommu-server with --poll-rq-us N (poll\n"
"                 the request queue with kicks suppressed while the guest\n"
"                 is busy; costs a CPU then); implies --no-pin unless\n"
"                 --pin is given\n"
"  --no-pin       leave the boots to the scheduler (cross-CPU wake-ups\n"
"                 make our figures vary a lot)\n"
"  --qemu WHICH   the QEMU of every boot (viommu-run --qemu): 11, QEMU\n"
"                 11.1 from BUILD/qemu-11.1, built by scripts/qemu11.sh\n"
"                 if missing (default); 7.2, the host's\n"
"                 qemu-system-x86_64; or a PATH to a qemu-system-x86_64\n"
"  --door DOOR    how QEMU reaches our devices (viommu-run --door):\n"
"                 vfio-user (vfio-user-pci; default on QEMU >= 10.1) or\n"
"                 proxy (x-pci-proxy-dev; default, and only, before 10.1)\n"
"  --json FILE    also write JSON to FILE ('-': JSON on stdout, table on\n"
"                 stderr)\n"
"  --run PATH     tools/viommu-run (default: found from this program)\n"
"  --build DIR    build directory with the server, guest program and\n"
"                 guest-cache/ (default: the one this program is in)\n"
"  --keep         keep the boots' logs and JSON (printed path)\n"
"  --smoke        one round, 4 KiB, 50 ms; skipped (exit 77) unless\n"
"                 VIOMMU_BENCH_GUEST=1, as booting is slow\n"
"  --help         this text\n", MAX_ROUNDS);
}

/* parse_size() - "4096", "4k", "2m" in bytes; usage error if bad. */
static uint32_t parse_size(const char *s)
{
	char *end;
	unsigned long v;

	int shift = 0;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end == 'k' || *end == 'K')
		shift = 10;
	else if (*end == 'm' || *end == 'M')
		shift = 20;
	end += shift != 0;
	if (errno || end == s || *end || *s == '-' || v > MAX_SIZE)
		v = 0;
	v <<= shift;
	if (!v || v % BENCH_PAGE || v > MAX_SIZE)
		bad_usage("--sizes: '%s' is not a multiple of 4 KiB in "
			  "4k..2m", s);
	return (uint32_t)v;
}

/* parse_sizes() - the --sizes list. */
static void parse_sizes(struct opts *o, const char *arg)
{
	char buf[256], *tok, *save = NULL;

	if (strlen(arg) >= sizeof(buf))
		bad_usage("--sizes: list too long");
	snprintf(buf, sizeof(buf), "%s", arg);
	o->nsizes = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (o->nsizes == MAX_SIZES)
			bad_usage("--sizes: at most %d sizes", MAX_SIZES);
		o->sizes[o->nsizes++] = parse_size(tok);
	}
	if (!o->nsizes)
		bad_usage("--sizes: empty list");
}

/* parse_opts() - the command line (after "guest") into @o. */
static void parse_opts(struct opts *o, int argc, char **argv)
{
	const char *v, *sizes = NULL, *ms = NULL, *rounds = NULL;

	memset(o, 0, sizeof(*o));
	o->pin = -1; /* setup() picks one unless --no-pin */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--smoke")) {
			o->smoke = true;
		} else if (!strcmp(a, "--no-pin")) {
			o->no_pin = true;
		} else if (!strcmp(a, "--keep")) {
			o->keep = true;
		} else if (opt_value("--sizes", argc, argv, &i, &v)) {
			sizes = v;
		} else if (opt_value("--ms", argc, argv, &i, &v)) {
			ms = v;
		} else if (opt_value("--rounds", argc, argv, &i, &v)) {
			rounds = v;
		} else if (opt_value("--json", argc, argv, &i, &v)) {
			o->json = v;
		} else if (opt_value("--pin", argc, argv, &i, &v)) {
			o->pin = (int)parse_uint("--pin", v, 0,
						 CPU_SETSIZE - 1);
		} else if (opt_value("--poll-rq-us", argc, argv, &i, &v)) {
			o->poll_rq_us = (unsigned)parse_uint("--poll-rq-us", v,
							     0, 1000000);
		} else if (opt_value("--run", argc, argv, &i, &v)) {
			o->run = v;
		} else if (opt_value("--qemu", argc, argv, &i, &v)) {
			if (!*v)
				bad_usage("--qemu: 11, 7.2 or a PATH");
			o->qemu = v;
		} else if (opt_value("--door", argc, argv, &i, &v)) {
			if (strcmp(v, "vfio-user") && strcmp(v, "proxy"))
				bad_usage("--door: vfio-user or proxy, not "
					  "'%s'", v);
			o->door = v;
		} else if (opt_value("--build", argc, argv, &i, &v)) {
			o->build = v;
		} else {
			bad_usage("unknown option '%s'", a);
		}
	}
	parse_sizes(o, sizes ? sizes : o->smoke ? "4k" :
		    "4k,16k,64k,256k,1m,2m");
	o->ms = ms ? (uint32_t)parse_uint("--ms", ms, 20, 10000) :
		o->smoke ? 50 : 300;
	o->rounds = rounds ? (int)parse_uint("--rounds", rounds, 1,
					     MAX_ROUNDS) : o->smoke ? 1 : 5;
}

/* ------------------------------------------------------------------ */
/* Main                                                               */

/* remove_tmp() - delete the boots' files and their directory. */
static void remove_tmp(struct guestb *g)
{
	char f[PATH_MAX + 64];

	for (int r = 0; r < g->o.rounds; r++)
		for (int p = 0; p < P_COUNT; p++) {
			snprintf(f, sizeof(f), "%s/%s-%d.json", g->tmp,
				 peer_names[p], r + 1);
			unlink(f);
			snprintf(f, sizeof(f), "%s/%s-%d.log", g->tmp,
				 peer_names[p], r + 1);
			unlink(f);
		}
	rmdir(g->tmp);
}

/* any_failed() - whether a boot that ran failed. */
static bool any_failed(const struct guestb *g)
{
	for (int r = 0; r < g->o.rounds; r++)
		for (int p = 0; p < P_COUNT; p++)
			if (g->b[r][p].ran && !g->b[r][p].ok)
				return true;
	return false;
}

/* setup() - locate viommu-run and the build; check what can run. */
static void setup(struct guestb *g)
{
	cpu_set_t set;

	if (g->o.pin >= 0 && g->o.no_pin)
		bad_usage("--pin and --no-pin exclude each other");
	if (sched_getaffinity(0, sizeof(set), &set))
		CPU_ZERO(&set);
	if (g->o.pin >= 0 && !CPU_ISSET(g->o.pin, &set))
		bad_usage("--pin: CPU %d is not available to this process",
			  g->o.pin);
	/* a polling server needs a CPU of its own: no default pin then */
	if (g->o.poll_rq_us && g->o.pin < 0)
		g->o.no_pin = true;
	for (int c = CPU_SETSIZE - 1; c >= 0 && g->o.pin < 0 && !g->o.no_pin;
	     c--)
		if (CPU_ISSET(c, &set))
			g->o.pin = c;
	if (find_build(g))
		bad_usage("cannot find the build directory (no build.ninja in "
			  "'%s'): pass --build DIR", g->build);
	if (find_run(g))
		bad_usage("cannot find tools/viommu-run%s%s: pass --run PATH",
			  g->o.run ? " at " : "", g->o.run ? g->o.run : "");
	resolve_qemu(g);
	check_peers(g);
	snprintf(g->tmp, sizeof(g->tmp), "/tmp/viommu-bench-guest-XXXXXX");
	if (!mkdtemp(g->tmp))
		die("mkdtemp: %s", strerror(errno));
}

/* bench_guest_main() - `viommu-bench guest`. */
int bench_guest_main(int argc, char **argv)
{
	static struct guestb g;
	struct outputs out;
	const char *env;
	bool failed;

	if (!bench_cmd)
		bench_cmd = "guest";
	parse_opts(&g.o, argc, argv);
	env = getenv("VIOMMU_BENCH_GUEST");
	if (g.o.smoke && (!env || strcmp(env, "1"))) {
		printf("viommu-bench guest --smoke: skipped (booting a guest "
		       "takes minutes; set VIOMMU_BENCH_GUEST=1 to run it)\n");
		return EXIT_SKIP;
	}
	setup(&g);
	outputs_open(&out, g.o.json);
	machine_info(&g.m);
	if (g.skip[P_OURS][0] && g.skip[P_QEMU][0])
		fprintf(stderr, "viommu-bench guest: nothing can run: %s\n",
			g.skip[P_OURS]);
	run_all(&g);
	g.m.load[1] = loadavg();
	print_table(&g, out.table);
	if (out.json)
		write_json(&g, out.json);
	outputs_close(&out);
	failed = any_failed(&g);
	if (g.o.keep || failed)
		fprintf(stderr, "viommu-bench guest: boot logs kept in %s\n",
			g.tmp);
	else
		remove_tmp(&g);
	if (failed)
		return 1;
	return g.o.smoke && !g.nboots ? EXIT_SKIP : 0;
}
