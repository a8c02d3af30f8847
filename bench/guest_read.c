/*
 * guest_read.c - `viommu-bench guest`: reading what a boot gave.
 *
 * Each boot is a tools/viommu-run child that writes its results as JSON
 * (--json): per boot the scenario results, every VIOMMU-BENCH line of the
 * guest as an object of strings (name, size, count, ns, ...; unknown keys
 * are kept and ignored here) and the server's counters.  This file holds a
 * small JSON reader (no dependency: the program is C and the format is
 * ours) and the two extractions: one boot's figures into struct gb_boot,
 * and the QEMU that `viommu-run --qemu-info` resolved.
 *
 * The reader is strict (one value, then only white space), bounded (depth
 * JSON_MAX_DEPTH, files up to JSON_MAX_BYTES) and keeps numbers as
 * doubles; strings keep ASCII escapes only (others become '?'), which is
 * all viommu-run writes.  A figure that is missing, not a number or not
 * positive is left at -1: the report shows "-" for it.
 */
#include "guest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 32
#define JSON_MAX_BYTES (64u << 20)

/* ------------------------------------------------------------------ */
/* A small JSON reader                                                */

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
/* viommu-run --qemu-info                                             */

/* gb_take_qemu_info() - see guest.h. */
bool gb_take_qemu_info(struct gb_qemu *q, char *out)
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
		snprintf(q->path, sizeof(q->path), "%s", path);
		snprintf(q->version, sizeof(q->version), "%s", ver);
		snprintf(q->door, sizeof(q->door), "%s", door);
	}
	jfree(&doc);
	return ok;
}

/* ------------------------------------------------------------------ */
/* One boot's figures                                                 */

/* size_index() - index of @size in the options' sizes, or -1. */
static int size_index(const struct gb_opts *o, double size)
{
	for (int i = 0; i < o->nsizes; i++)
		if (o->sizes[i] == size)
			return i;
	return -1;
}

/* chunk_index() - index of @size in gb_chunks[], or -1. */
static int chunk_index(double size)
{
	for (int i = 0; i < GB_NCHUNKS; i++)
		if (gb_chunks[i] == size)
			return i;
	return -1;
}

/* mmio_index() - index of the register access called @name, or -1. */
static int mmio_index(const char *name)
{
	for (int i = 0; i < M_COUNT; i++)
		if (!strcmp(name, gb_mmio_names[i]))
			return i;
	return -1;
}

/* take_line() - record one VIOMMU-BENCH line (an object of strings). */
static void take_line(const struct gb_opts *o, struct gb_boot *b,
		      const struct jval *l)
{
	const char *name = jstr(l, "name"), *iommu;
	double size = jnum(l, "size"), count = jnum(l, "count");
	double ns = jnum(l, "ns");
	int i;

	if (!name || count <= 0 || ns <= 0)
		return;
	if (!strcmp(name, "map_unmap") && (i = size_index(o, size)) >= 0) {
		b->pairs[i] = count * 1e9 / ns;
		b->segs[i] = (int)jnum(l, "segs");
	} else if (!strcmp(name, "ring_copy") &&
		   (i = chunk_index(size)) >= 0) {
		iommu = jstr(l, "iommu");
		if (iommu && !strcmp(iommu, "bypass"))
			b->ring_bypass[i] = count * size / ns * 1e3;
		else
			b->ring[i] = count * size / ns * 1e3;
	} else if ((i = mmio_index(name)) >= 0) {
		b->mmio_ns[i] = ns / count;
	}
}

/* boot_status() - whether the bench scenario passed; reason in b->why. */
static bool boot_status(struct gb_boot *b, const struct jval *boot)
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

/* gb_take_json() - see guest.h. */
void gb_take_json(const struct gb_opts *o, struct gb_boot *b,
		  const char *path, int rc)
{
	const struct jval *boots, *boot, *lines, *stats;
	struct jval doc;

	if (jload(path, &doc)) {
		snprintf(b->why, sizeof(b->why), "viommu-run exit status %d, "
			 "no readable JSON", rc);
		return;
	}
	boots = jget(&doc, "boots");
	boot = boots && boots->t == J_ARR && boots->n ? &boots->kids[0] : NULL;
	lines = jget(boot, "bench");
	stats = jget(boot, "server_stats");
	b->ok = boot && boot_status(b, boot);
	b->polled = jnum(stats, "polled_requests");
	b->requests = jsum(jget(stats, "requests"));
	b->srv_cpu = jnum(stats, "cpu_seconds");
	b->srv_secs = jnum(stats, "seconds");
	for (int i = 0; lines && lines->t == J_ARR && i < lines->n; i++)
		take_line(o, b, &lines->kids[i]);
	jfree(&doc);
}
