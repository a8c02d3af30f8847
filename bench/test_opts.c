/*
 * test_opts.c - viommu-bench's table-driven option parser (bench/opts.c):
 * values of every type in both spellings ("--NAME V", "--NAME=V"), the
 * errors a bad command line gets (not a number, out of range, unknown
 * option, missing value, a flag given a value, bad lists and names), which
 * options were given, and a --help that lists every option of the table
 * with its range.
 */
#include "opts.h"
#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The destinations of the test table, reset by each parse. */
static struct {
	bool smoke, flag;
	const char *json, *name;
	int runs;
	uint32_t u;
	uint64_t big;
	double ratio;
	uint32_t list[4];
	int nlist;
	uint32_t set;
	uint32_t even;
} d;

static const char *const colours[] = { "red", "green", "blue" };

/* even() - a BOPT_FN checker: an even number. */
static int even(const char *v, void *dest, char *err, size_t n)
{
	char *end;
	unsigned long x = strtoul(v, &end, 10);

	if (end == v || *end || x % 2) {
		snprintf(err, n, "'%s' is not even", v);
		return -EINVAL;
	}
	*(uint32_t *)dest = (uint32_t)x;
	return 0;
}

static struct bopt table[16];

/* reset() - a fresh table and zeroed destinations. */
static void reset(void)
{
	struct bopt t[] = {
		{ BOPT_SMOKE(&d.smoke), .help = "a tiny run" },
		{ BOPT_JSON(&d.json), .help = BOPT_JSON_HELP },
		{ BOPT_RUNS(&d.runs, 101), .help = "runs per figure" },
		{ .name = "--flag", .type = BOPT_FLAG, .dest = &d.flag,
		  .help = "a flag" },
		{ .name = "--name", .type = BOPT_STR, .dest = &d.name,
		  .arg = "S", .help = "any string" },
		{ .name = "--u", .type = BOPT_UINT, .dest = &d.u, .arg = "N",
		  .min = 16, .max = 4096, .help = "a uint32" },
		{ .name = "--big", .type = BOPT_U64, .dest = &d.big,
		  .arg = "N", .min = 0, .max = UINT64_MAX, .help = "a u64" },
		{ .name = "--ratio", .type = BOPT_DOUBLE, .dest = &d.ratio,
		  .arg = "X", .dmin = 0.5, .dmax = 2, .help = "a double" },
		{ .name = "--list", .type = BOPT_LIST, .dest = d.list,
		  .count = &d.nlist, .nmax = 4, .arg = "LIST", .min = 1,
		  .max = 9, .help = "numbers" },
		{ .name = "--colours", .type = BOPT_NAMES, .dest = &d.set,
		  .names = colours, .nnames = 3, .arg = "LIST",
		  .help = "names" },
		{ .name = "--even", .type = BOPT_FN, .dest = &d.even,
		  .fn = even, .arg = "N", .help = "an even number" },
		{ 0 }
	};

	memset(&d, 0, sizeof(d));
	memcpy(table, t, sizeof(t));
}

/* parse() - parse the NULL-terminated words after a subcommand name. */
static int parse(char *err, const char *const *words)
{
	char *argv[32] = { "test" };
	int argc = 1;

	reset();
	err[0] = 0;
	while (words[argc - 1])
		argv[argc] = (char *)words[argc - 1], argc++;
	return bopts_try_parse(table, argc, argv, err, BOPT_ERR_MAX);
}

#define PARSE(err, ...) parse(err, (const char *const[]){ __VA_ARGS__, NULL })

TEST(values_both_spellings)
{
	char err[BOPT_ERR_MAX];

	CHECK_EQ(PARSE(err, "--smoke", "--json", "out.json", "--runs=7",
		       "--flag", "--name=", "--u", "4096", "--big",
		       "18446744073709551615", "--ratio=0.75", "--list",
		       "1,9,3", "--colours=blue,red", "--even", "42"), 0);
	CHECK(d.smoke && d.flag);
	CHECK(d.json && !strcmp(d.json, "out.json"));
	CHECK(d.name && !strcmp(d.name, ""));
	CHECK_EQ(d.runs, 7);
	CHECK_EQ(d.u, 4096);
	CHECK_U64(d.big, UINT64_MAX);
	CHECK(d.ratio == 0.75);
	CHECK_EQ(d.nlist, 3);
	CHECK(d.list[0] == 1 && d.list[1] == 9 && d.list[2] == 3);
	CHECK_EQ(d.set, (1u << 2) | (1u << 0));
	CHECK_EQ(d.even, 42);
	CHECK(bopt_given(table, "--runs") && bopt_given(table, "--list"));
	CHECK(!bopt_given(table, "--nonesuch"));
}

TEST(nothing_given)
{
	char err[BOPT_ERR_MAX];

	CHECK_EQ(PARSE(err, NULL), 0);
	for (const struct bopt *o = table; o->name; o++)
		CHECK(!o->given);
	CHECK(!d.smoke && d.runs == 0 && !d.json);
}

TEST(bad_numbers)
{
	static const char *const bad[] = {
		"", "x", "12x", "-1", "+5", " 5", "0x10", "1e3",
		"99999999999999999999",
	};
	char err[BOPT_ERR_MAX];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(PARSE(err, "--u", bad[i]), -EINVAL);
		CHECK(strstr(err, "--u: '") && strstr(err, "16..4096"));
	}
	CHECK_EQ(PARSE(err, "--big=-1"), -EINVAL);
	CHECK_EQ(PARSE(err, "--ratio", "abc"), -EINVAL);
	CHECK(strstr(err, "--ratio") != NULL);
	CHECK_EQ(PARSE(err, "--ratio", "nan"), -EINVAL);
	CHECK_EQ(PARSE(err, "--ratio", "inf"), -EINVAL);
}

TEST(out_of_range)
{
	char err[BOPT_ERR_MAX];

	CHECK_EQ(PARSE(err, "--u", "15"), -EINVAL);
	CHECK(!strcmp(err, "--u: '15' is not a number in 16..4096"));
	CHECK_EQ(PARSE(err, "--u=4097"), -EINVAL);
	CHECK_EQ(PARSE(err, "--runs", "0"), -EINVAL);
	CHECK(!strcmp(err, "--runs: '0' is not a number in 1..101"));
	CHECK_EQ(PARSE(err, "--runs", "102"), -EINVAL);
	CHECK_EQ(PARSE(err, "--ratio", "0.4"), -EINVAL);
	CHECK_EQ(PARSE(err, "--ratio", "2.01"), -EINVAL);
	CHECK_EQ(PARSE(err, "--ratio", "2"), 0);
	CHECK_EQ(PARSE(err, "--u", "16"), 0);
	CHECK_EQ(d.u, 16);
}

TEST(unknown_and_malformed)
{
	char err[BOPT_ERR_MAX];

	CHECK_EQ(PARSE(err, "--nope"), -EINVAL);
	CHECK(!strcmp(err, "unknown option '--nope' (--help lists them)"));
	CHECK_EQ(PARSE(err, "smoke"), -EINVAL);
	CHECK(strstr(err, "unknown option 'smoke'") != NULL);
	/* a prefix of an option is not the option */
	CHECK_EQ(PARSE(err, "--smok"), -EINVAL);
	CHECK_EQ(PARSE(err, "--smokey"), -EINVAL);
	CHECK_EQ(PARSE(err, "--runs"), -EINVAL);
	CHECK(!strcmp(err, "--runs needs a value"));
	CHECK_EQ(PARSE(err, "--smoke=1"), -EINVAL);
	CHECK(!strcmp(err, "--smoke takes no value"));
	CHECK_EQ(PARSE(err, "--json="), -EINVAL);
	CHECK(!strcmp(err, "--json needs a value"));
}

TEST(lists_and_names)
{
	char err[BOPT_ERR_MAX];

	CHECK_EQ(PARSE(err, "--list", "1,2,3,4,5"), -EINVAL);
	CHECK(strstr(err, "at most 4") != NULL);
	CHECK_EQ(PARSE(err, "--list", "1,10"), -EINVAL);
	CHECK(strstr(err, "'10' is not a number in 1..9") != NULL);
	CHECK_EQ(PARSE(err, "--list", ","), -EINVAL);
	CHECK(strstr(err, "empty list") != NULL);
	CHECK_EQ(PARSE(err, "--colours", "red,pink"), -EINVAL);
	CHECK(!strcmp(err, "--colours: unknown value 'pink'"));
	CHECK_EQ(PARSE(err, "--even", "7"), -EINVAL);
	CHECK(!strcmp(err, "--even: '7' is not even"));
}

TEST(help_stops_parsing)
{
	char err[BOPT_ERR_MAX];

	CHECK_EQ(PARSE(err, "--smoke", "--help", "--nope"), 1);
	CHECK_EQ(PARSE(err, "-h"), 1);
}

/* squeeze() - @s with every run of white space made one space. */
static char *squeeze(const char *s)
{
	char *out = malloc(strlen(s) + 1), *p = out;

	for (; out && *s; s++)
		if (!strchr(" \n", *s) || (p > out && p[-1] != ' '))
			*p++ = strchr(" \n", *s) ? ' ' : *s;
	if (out)
		*p = 0;
	return out;
}

TEST(help_lists_every_option)
{
	char *buf = NULL, *flat;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	REQUIRE(f);
	reset();
	bopts_help(f, "test", "What the test subcommand does.", table);
	fclose(f);
	CHECK(strstr(buf, "usage: viommu-bench test ") == buf);
	CHECK(strstr(buf, "What the test subcommand does.") != NULL);
	flat = squeeze(buf);
	REQUIRE(flat);
	for (const struct bopt *o = table; o->name; o++) {
		char head[64];

		snprintf(head, sizeof(head), "\n  %s%s%s", o->name,
			 o->arg ? " " : "", o->arg ? o->arg : "");
		CHECK(strstr(buf, head) != NULL);
		CHECK(strstr(flat, o->help) != NULL);
	}
	CHECK(strstr(buf, "\n  --help ") != NULL);
	CHECK(strstr(buf, "[16..4096]") != NULL);
	CHECK(strstr(buf, "[1..101]") != NULL);
	CHECK(strstr(buf, "[any of red,green,blue]") != NULL);
	CHECK(strstr(flat, "[at most 4 values, each 1..9]") != NULL);
	for (char *l = buf; *l; l = strchr(l, '\n') + 1) {
		CHECK(strcspn(l, "\n") <= 78);
		if (!strchr(l, '\n'))
			break;
	}
	free(flat);
	free(buf);
}

TEST_MAIN()
