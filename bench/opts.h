/*
 * opts.h - the one command-line parser of every viommu-bench subcommand.
 *
 * A subcommand declares its options as a table of struct bopt (designated
 * initializers, ended by an entry with no name): the option's name, its
 * type, where its value goes, its range, the word its value stands for in
 * --help and one sentence of help.  The parser takes "--NAME VALUE" and
 * "--NAME=VALUE", checks numbers against their range, records which
 * options were given (so a default can depend on --smoke whatever the
 * order), and writes --help from the same table, so the help always lists
 * every option.  A bad command line is a clear message on stderr and exit
 * status 2 (bad_usage()); --help (or -h) prints the help and exits 0.
 *
 * The options most subcommands share (--smoke, --json, --runs, --pin,
 * --no-pin) have field macros (BOPT_SMOKE ...) so their names, types and
 * ranges are written once; a table entry adds its own .help.
 */
#ifndef VIOMMU_BENCH_OPTS_H
#define VIOMMU_BENCH_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * enum bopt_type - what an option takes, and what .dest points to.
 * @BOPT_FLAG:   no value; bool, set to true.
 * @BOPT_INT:    a decimal number in [.min, .max]; int.
 * @BOPT_UINT:   the same; uint32_t.
 * @BOPT_U64:    the same; uint64_t.
 * @BOPT_DOUBLE: a number in [.dmin, .dmax]; double.
 * @BOPT_STR:    any string (non-empty if .nonempty); const char *.
 * @BOPT_LIST:   comma-separated numbers in [.min, .max], at most .nmax of
 *               them; uint32_t[.nmax], their count in *.count.
 * @BOPT_NAMES:  comma-separated names out of .names[0 .. .nnames-1];
 *               uint32_t, bit k set for .names[k].
 * @BOPT_FN:     .fn checks and stores the value (.dest is its argument).
 */
enum bopt_type {
	BOPT_FLAG,
	BOPT_INT,
	BOPT_UINT,
	BOPT_U64,
	BOPT_DOUBLE,
	BOPT_STR,
	BOPT_LIST,
	BOPT_NAMES,
	BOPT_FN,
};

/* The longest error message the parser writes (fits every option). */
#define BOPT_ERR_MAX 256

/**
 * struct bopt - one option of a subcommand's table.
 * @name:     "--runs"; NULL ends the table.
 * @type:     see enum bopt_type.
 * @dest:     where the value goes (the type says what it points to).
 * @arg:      the value's word in --help ("N", "FILE", "LIST"); not for
 *            flags.
 * @help:     one paragraph; --help wraps it and adds the range.
 * @min, @max: integer and list range (inclusive).
 * @dmin, @dmax: double range (inclusive).
 * @nmax, @count: BOPT_LIST: capacity of the array and where the number
 *            of values goes.
 * @names, @nnames: BOPT_NAMES: the names a value may use.
 * @nonempty: BOPT_STR: an empty value is an error.
 * @fn:       BOPT_FN: store @val into @dest; 0, or -EINVAL with a message
 *            (without the option's name) in @err.
 * @given:    set by the parser when the option was on the command line.
 */
struct bopt {
	const char *name;
	enum bopt_type type;
	void *dest;
	const char *arg;
	const char *help;
	uint64_t min, max;
	double dmin, dmax;
	int nmax;
	int *count;
	const char *const *names;
	int nnames;
	bool nonempty;
	int (*fn)(const char *val, void *dest, char *err, size_t n);
	bool given;
};

/* Field macros for the options most subcommands share. */
#define BOPT_SMOKE(d) .name = "--smoke", .type = BOPT_FLAG, .dest = (d)
#define BOPT_JSON(d)                                                       \
	.name = "--json", .type = BOPT_STR, .dest = (d), .arg = "FILE",    \
	.nonempty = true
#define BOPT_RUNS(d, hi)                                                   \
	.name = "--runs", .type = BOPT_INT, .dest = (d), .arg = "N",       \
	.min = 1, .max = (hi)
#define BOPT_PIN(d)                                                        \
	.name = "--pin", .type = BOPT_INT, .dest = (d), .arg = "CPU",      \
	.min = 0, .max = CPU_SETSIZE - 1
#define BOPT_NO_PIN(d) .name = "--no-pin", .type = BOPT_FLAG, .dest = (d)

/* --kick-cost-ns N (vdev, io, handover), with its help. */
#define BOPT_KICK_COST(d)                                                  \
	.name = "--kick-cost-ns", .type = BOPT_U64, .dest = (d),           \
	.arg = "N", .min = 0, .max = 10000000,                             \
	.help = "MODELLED: busy-wait N ns per kick (a VM exit)"

/* The help sentence of --json, the same in every subcommand. */
#define BOPT_JSON_HELP                                                     \
	"also write the results as JSON to FILE; with '-' the JSON goes "  \
	"to stdout and the table to stderr"

/*
 * bopts_try_parse() - parse @argv[1 .. @argc-1] against @t (argv[0] is
 * the subcommand).  Returns 0 (values stored, .given set), 1 when --help
 * or -h was asked (nothing after it is looked at), or -EINVAL with a
 * message in @err (@n bytes): an unknown option, a missing or unwanted
 * value, a number that is not one or is out of range, a bad list.  Values
 * of options before the bad one may have been stored.
 */
int bopts_try_parse(struct bopt *t, int argc, char **argv, char *err,
		    size_t n);

/*
 * bopts_parse() - bopts_try_parse(); for --help print the help of @cmd
 * (@about: the paragraph that says what the subcommand does) on stdout and
 * exit 0; for a bad command line exit 2 through bad_usage().
 */
void bopts_parse(struct bopt *t, const char *cmd, const char *about,
		 int argc, char **argv);

/*
 * bopts_help() - the --help text of subcommand @cmd: a usage line, @about
 * (wrapped, unless it holds a '\n': then it is laid out by hand and ends
 * with one) and every option of @t with its value word, help and range,
 * then --help itself.
 */
void bopts_help(FILE *f, const char *cmd, const char *about,
		const struct bopt *t);

/*
 * parse_name_list() - a comma-separated list of names out of
 * @names[0 .. @n-1] as a bit set (bit k for @names[k]), as BOPT_NAMES
 * parses it; a usage error naming @what if it is not one.  For defaults
 * written as the user would write them.
 */
uint32_t parse_name_list(const char *what, const char *arg,
			 const char *const *names, int n);

/* bopt_given() - whether option @name of @t was on the command line. */
bool bopt_given(const struct bopt *t, const char *name);

/*
 * bopts_exclusive() - a usage error if both @a and @b were given
 * ("--pin and --no-pin exclude each other").
 */
void bopts_exclusive(const struct bopt *t, const char *a, const char *b);

#endif /* VIOMMU_BENCH_OPTS_H */
