/*
 * fuzz_bench_opts.c - libFuzzer target for viommu-bench's option parser
 * (bench/opts.c, bopts_try_parse()).
 *
 * The input is a sequence of records that build a command line: a kind
 * byte, a length byte and that many value bytes.  The kind picks an
 * option name of the test table (or an unknown one, --help, a bare word),
 * whether the value goes in the same word ("--NAME=VALUE") or the next,
 * and whether the value bytes are mapped onto number and list characters
 * ("0123456789,-+.ex k") so that random inputs reach the range checks.
 * At most MAX_WORDS words are built.
 *
 * bench/opts.c is compiled as a source of its own (tests/meson.build,
 * fuzz_extra_sources), so the coverage ignore-list, which leaves this
 * file uninstrumented, still instruments the parser.
 *
 * Checked after every parse: the result is 0, 1 (help) or -EINVAL; an
 * error leaves a non-empty message that fits BOPT_ERR_MAX; on success
 * every number is inside its range, a list holds 1..nmax values each in
 * range, a name set is non-empty and has only known bits, and an option
 * is marked given only if its name was on the command line.
 */
#include "../../bench/opts.h"
#include "../../bench/common.h"

#include <stdio.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* opts.c's exits go through common.c's bad_usage(); the target never
 * calls them (bopts_try_parse() does not exit). */
const char *bench_cmd = "fuzz";

void bad_usage(const char *fmt, ...)
{
	(void)fmt;
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_WORDS 24
#define MAX_VAL 64
#define MAX_WORD (MAX_VAL + 32)

static const char *const names[] = { "red", "green", "blue", "x" };

static struct {
	bool flag;
	const char *str;
	int runs;
	uint32_t u;
	uint64_t big;
	double d;
	uint32_t list[4];
	int nlist;
	uint32_t set;
} v;

/* broken() - report a broken invariant and crash. */
static void __attribute__((noreturn)) broken(const char *why)
{
	fprintf(stderr, "fuzz_bench_opts: %s\n", why);
	abort();
}

/* word_has() - whether some word of @argv spells option @name. */
static bool word_has(char **argv, int argc, const char *name)
{
	size_t n = strlen(name);

	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], name, n) &&
		    (argv[i][n] == 0 || argv[i][n] == '='))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char digits[] = "0123456789,-+.ex k";
	static char words[MAX_WORDS][MAX_WORD];
	struct bopt t[] = {
		{ .name = "--flag", .type = BOPT_FLAG, .dest = &v.flag },
		{ .name = "--str", .type = BOPT_STR, .dest = &v.str,
		  .nonempty = true },
		{ BOPT_RUNS(&v.runs, 101) },
		{ .name = "--u", .type = BOPT_UINT, .dest = &v.u, .min = 16,
		  .max = 4096 },
		{ .name = "--big", .type = BOPT_U64, .dest = &v.big,
		  .min = 1000, .max = UINT64_MAX - 1 },
		{ .name = "--d", .type = BOPT_DOUBLE, .dest = &v.d,
		  .dmin = -1.5, .dmax = 1e6 },
		{ .name = "--list", .type = BOPT_LIST, .dest = v.list,
		  .count = &v.nlist, .nmax = 4, .min = 2, .max = 9 },
		{ .name = "--set", .type = BOPT_NAMES, .dest = &v.set,
		  .names = names, .nnames = 4 },
		{ 0 }
	};
	const int nopt = (int)(sizeof(t) / sizeof(t[0])) - 1;
	char *argv[MAX_WORDS + 1] = { "fuzz" };
	char err[BOPT_ERR_MAX];
	int argc = 1, rc;
	size_t i = 0;

	memset(&v, 0, sizeof(v));
	while (i + 2 <= size && argc < MAX_WORDS) {
		uint8_t kind = data[i], len = data[i + 1];
		int which = (kind & 0x0f) % (nopt + 3);
		char val[MAX_VAL];
		size_t n = 0;

		i += 2;
		for (; n < len && n + 1 < sizeof(val) && i < size; n++, i++)
			val[n] = kind & 0x40 ?
				 digits[data[i] % (sizeof(digits) - 1)] :
				 (char)(data[i] ? data[i] : 'z');
		val[n] = 0;
		if (which == nopt) {            /* an unknown option */
			snprintf(words[argc], MAX_WORD, "--%s", val);
		} else if (which == nopt + 1) { /* a bare word */
			snprintf(words[argc], MAX_WORD, "%s", val);
		} else if (which == nopt + 2) { /* help, now and then */
			snprintf(words[argc], MAX_WORD, "%s",
				 kind & 0x80 ? "-h" : "--help");
		} else if (kind & 0x80) {       /* --NAME=VALUE */
			snprintf(words[argc], MAX_WORD, "%s=%s",
				 t[which].name, val);
		} else {                        /* --NAME VALUE */
			snprintf(words[argc], MAX_WORD, "%s", t[which].name);
			argv[argc] = words[argc];
			argc++;
			if (argc >= MAX_WORDS || t[which].type == BOPT_FLAG)
				continue;
			snprintf(words[argc], MAX_WORD, "%s", val);
		}
		argv[argc] = words[argc];
		argc++;
	}
	argv[argc] = NULL;

	rc = bopts_try_parse(t, argc, argv, err, sizeof(err));
	if (rc == -EINVAL) {
		if (!err[0] || strnlen(err, sizeof(err)) >= sizeof(err))
			broken("an error without a message");
		return 0;
	}
	if (rc == 1)
		return 0;
	if (rc)
		broken("a result other than 0, 1 or -EINVAL");
	for (const struct bopt *o = t; o->name; o++)
		if (o->given && !word_has(argv, argc, o->name))
			broken("an option given that is not on the line");
	if (t[2].given && (v.runs < 1 || v.runs > 101))
		broken("--runs out of range");
	if (t[3].given && (v.u < 16 || v.u > 4096))
		broken("--u out of range");
	if (t[4].given && (v.big < 1000 || v.big == UINT64_MAX))
		broken("--big out of range");
	if (t[5].given && !(v.d >= -1.5 && v.d <= 1e6))
		broken("--d out of range");
	if (t[6].given) {
		if (v.nlist < 1 || v.nlist > 4)
			broken("--list count");
		for (int k = 0; k < v.nlist; k++)
			if (v.list[k] < 2 || v.list[k] > 9)
				broken("--list value out of range");
	}
	if (t[7].given && (!v.set || v.set & ~0xfu))
		broken("--set bits");
	if (t[1].given && (!v.str || !*v.str))
		broken("--str empty");
	return 0;
}
