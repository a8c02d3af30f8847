/*
 * opts.c - the table-driven command-line parser of viommu-bench (see
 * opts.h): matching "--NAME VALUE" / "--NAME=VALUE", converting and
 * range-checking values, and writing --help from the same table.
 */
#include "opts.h"

#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define HELP_WIDTH 78
#define HELP_INDENT 20

/* fail() - format an error into @err; returns -EINVAL. */
static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* to_u64() - a decimal number in [lo, hi]; 0 or -EINVAL. */
static int to_u64(const char *name, const char *s, uint64_t lo, uint64_t hi,
		  uint64_t *out, char *err, size_t n)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *s == '+' ||
	    *s == ' ' || v < lo || v > hi)
		return fail(err, n, "%s: '%s' is not a number in %llu..%llu",
			    name, s, (unsigned long long)lo,
			    (unsigned long long)hi);
	*out = v;
	return 0;
}

/* to_list() - comma-separated numbers into a uint32_t array. */
static int to_list(const struct bopt *o, const char *s, char *err, size_t n)
{
	uint32_t *out = o->dest;
	char buf[256], *tok, *save = NULL;
	int k = 0, rc;

	if (strlen(s) >= sizeof(buf))
		return fail(err, n, "%s: list too long", o->name);
	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t v = 0;

		if (k >= o->nmax)
			return fail(err, n, "%s: at most %d values", o->name,
				    o->nmax);
		if ((rc = to_u64(o->name, tok, o->min, o->max, &v, err, n)))
			return rc;
		out[k++] = (uint32_t)v;
	}
	if (!k)
		return fail(err, n, "%s: empty list", o->name);
	*o->count = k;
	return 0;
}

/* to_names() - comma-separated names into a bit set. */
static int to_names(const struct bopt *o, const char *s, char *err, size_t n)
{
	char buf[256], *tok, *save = NULL;
	uint32_t set = 0;

	if (strlen(s) >= sizeof(buf))
		return fail(err, n, "%s: list too long", o->name);
	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int k;

		for (k = 0; k < o->nnames && strcmp(tok, o->names[k]); k++)
			;
		if (k == o->nnames)
			return fail(err, n, "%s: unknown value '%s'", o->name,
				    tok);
		set |= 1u << k;
	}
	if (!set)
		return fail(err, n, "%s: empty list", o->name);
	*(uint32_t *)o->dest = set;
	return 0;
}

/* store() - convert @v for option @o and store it. */
static int store(struct bopt *o, const char *v, char *err, size_t n)
{
	uint64_t u = 0;
	double d;
	char *end;
	int rc;

	switch (o->type) {
	case BOPT_INT:
	case BOPT_UINT:
	case BOPT_U64:
		if ((rc = to_u64(o->name, v, o->min, o->max, &u, err, n)))
			return rc;
		if (o->type == BOPT_INT)
			*(int *)o->dest = (int)u;
		else if (o->type == BOPT_UINT)
			*(uint32_t *)o->dest = (uint32_t)u;
		else
			*(uint64_t *)o->dest = u;
		return 0;
	case BOPT_DOUBLE:
		errno = 0;
		d = strtod(v, &end);
		if (errno || end == v || *end || *v == ' ' || !isfinite(d) ||
		    d < o->dmin || d > o->dmax)
			return fail(err, n, "%s: '%s' is not a number in "
				    "%g..%g", o->name, v, o->dmin, o->dmax);
		*(double *)o->dest = d;
		return 0;
	case BOPT_STR:
		if (o->nonempty && !*v)
			return fail(err, n, "%s needs a value", o->name);
		*(const char **)o->dest = v;
		return 0;
	case BOPT_LIST:
		return to_list(o, v, err, n);
	case BOPT_NAMES:
		return to_names(o, v, err, n);
	case BOPT_FN:
		if ((rc = o->fn(v, o->dest, err, n))) {
			char msg[BOPT_ERR_MAX];

			snprintf(msg, sizeof(msg), "%s", err);
			return fail(err, n, "%s: %s", o->name, msg);
		}
		return 0;
	case BOPT_FLAG:
		break;
	}
	return fail(err, n, "%s: bad option table", o->name);
}

/* bopts_try_parse() - parse the command line against @t; see opts.h. */
int bopts_try_parse(struct bopt *t, int argc, char **argv, char *err,
		    size_t n)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL, *eq;
		size_t len;
		struct bopt *o;
		int rc;

		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return 1;
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a) : strlen(a);
		for (o = t; o->name; o++)
			if (strlen(o->name) == len && !strncmp(a, o->name, len))
				break;
		if (!o->name || strncmp(a, "--", 2))
			return fail(err, n, "unknown option '%s' (--help lists "
				    "them)", a);
		if (o->type == BOPT_FLAG) {
			if (eq)
				return fail(err, n, "%s takes no value",
					    o->name);
			*(bool *)o->dest = true;
			o->given = true;
			continue;
		}
		if (eq)
			v = eq + 1;
		else if (i + 1 < argc)
			v = argv[++i];
		else
			return fail(err, n, "%s needs a value", o->name);
		if ((rc = store(o, v, err, n)))
			return rc;
		o->given = true;
	}
	return 0;
}

/* bopts_parse() - parse or exit (help: 0, bad command line: 2). */
void bopts_parse(struct bopt *t, const char *cmd, const char *about,
		 int argc, char **argv)
{
	char err[BOPT_ERR_MAX];
	int rc = bopts_try_parse(t, argc, argv, err, sizeof(err));

	if (rc == 1) {
		bopts_help(stdout, cmd, about, t);
		exit(0);
	}
	if (rc)
		bad_usage("%s", err);
}

/*
 * wrap() - write @text from column @col, breaking lines at spaces before
 * HELP_WIDTH and at each '\n'; continuation lines start at column @indent.
 */
static void wrap(FILE *f, const char *text, int col, int indent)
{
	const char *p = text;

	while (*p) {
		size_t w = strcspn(p, " \n");

		if (w && col > indent && col + 1 + (int)w > HELP_WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (w && col > indent) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", (int)w, p);
		col += (int)w;
		p += w;
		if (*p == '\n') {
			fprintf(f, "\n%*s", p[1] == '\n' ? 0 : indent, "");
			col = indent;
			p++;
			continue;
		}
		p += strspn(p, " ");
	}
	fputc('\n', f);
}

/* range_text() - what values an option takes, for its help. */
static void range_text(const struct bopt *o, char *buf, size_t n)
{
	size_t k;

	buf[0] = 0;
	switch (o->type) {
	case BOPT_INT:
	case BOPT_UINT:
	case BOPT_U64:
		snprintf(buf, n, "[%llu..%llu]", (unsigned long long)o->min,
			 (unsigned long long)o->max);
		break;
	case BOPT_DOUBLE:
		snprintf(buf, n, "[%g..%g]", o->dmin, o->dmax);
		break;
	case BOPT_LIST:
		snprintf(buf, n, "[at most %d values, each %llu..%llu]",
			 o->nmax, (unsigned long long)o->min,
			 (unsigned long long)o->max);
		break;
	case BOPT_NAMES:
		snprintf(buf, n, "[any of ");
		for (int i = 0; i < o->nnames; i++) {
			k = strlen(buf);
			snprintf(buf + k, n - k, "%s%s", i ? "," : "",
				 o->names[i]);
		}
		k = strlen(buf);
		snprintf(buf + k, n - k, "]");
		break;
	default:
		break;
	}
}

/* bopts_help() - the --help text, from the table. */
void bopts_help(FILE *f, const char *cmd, const char *about,
		const struct bopt *t)
{
	fprintf(f, "usage: viommu-bench %s [OPTIONS]\n\n", cmd);
	if (strchr(about, '\n'))
		fputs(about, f); /* laid out by hand */
	else
		wrap(f, about, 0, 0);
	fprintf(f, "\nOptions:\n");
	for (const struct bopt *o = t; o->name; o++) {
		char head[64], range[256], text[1024];
		int col;

		snprintf(head, sizeof(head), "  %s%s%s", o->name,
			 o->arg ? " " : "", o->arg ? o->arg : "");
		col = fprintf(f, "%s", head);
		if (col >= HELP_INDENT - 1) {
			fprintf(f, "\n");
			col = 0;
		}
		fprintf(f, "%*s", HELP_INDENT - col, "");
		range_text(o, range, sizeof(range));
		snprintf(text, sizeof(text), "%s%s%s", o->help ? o->help : "",
			 range[0] ? " " : "", range);
		wrap(f, text, HELP_INDENT, HELP_INDENT);
	}
	fprintf(f, "  --help%*sthis text\n", HELP_INDENT - 8, "");
}

/* find() - option @name of @t, or NULL. */
static const struct bopt *find(const struct bopt *t, const char *name)
{
	for (; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

/* parse_name_list() - names as a bit set, or a usage error. */
uint32_t parse_name_list(const char *what, const char *arg,
			 const char *const *names, int n)
{
	struct bopt o = { .name = what, .type = BOPT_NAMES, .names = names,
			  .nnames = n };
	char err[BOPT_ERR_MAX];
	uint32_t set = 0;

	o.dest = &set;
	if (to_names(&o, arg, err, sizeof(err)))
		bad_usage("%s", err);
	return set;
}

/* bopt_given() - whether @name was on the command line. */
bool bopt_given(const struct bopt *t, const char *name)
{
	const struct bopt *o = find(t, name);

	return o && o->given;
}

/* bopts_exclusive() - a usage error if both @a and @b were given. */
void bopts_exclusive(const struct bopt *t, const char *a, const char *b)
{
	if (bopt_given(t, a) && bopt_given(t, b))
		bad_usage("%s and %s exclude each other", a, b);
}
