/*
 * json.c - a small JSON reader (see json.h): what `viommu-bench guest` and
 * `viommu-bench guest-io` read from tools/viommu-run's --json files.
 *
 * A recursive descent over a NUL-terminated buffer: values nest at most
 * JSON_MAX_DEPTH deep, objects keep their members in order with their keys
 * (lookups are linear: the documents are small).
 */
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jparser {
	const char *p, *end;
	int depth;
};

static int jparse_value(struct jparser *jp, struct jval *v);

/* jfree() - release what @v holds (not @v itself). */
void jfree(struct jval *v)
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
int jparse_text(const char *buf, size_t n, struct jval *v)
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
int jload(const char *path, struct jval *v)
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
double jsum(const struct jval *v)
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
const struct jval *jget(const struct jval *v, const char *key)
{
	if (!v || v->t != J_OBJ)
		return NULL;
	for (int i = 0; i < v->n; i++)
		if (!strcmp(v->kids[i].key, key))
			return &v->kids[i];
	return NULL;
}

/* jstr() - the string member @key of @v, or NULL. */
const char *jstr(const struct jval *v, const char *key)
{
	const struct jval *k = jget(v, key);

	return k && k->t == J_STR ? k->str : NULL;
}

/* jnum() - member @key of @v as a number (string or number), or -1. */
double jnum(const struct jval *v, const char *key)
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
