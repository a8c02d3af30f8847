/*
 * standalone.c - a main() for libFuzzer targets built without libFuzzer
 * (gcc builds, valgrind and sanitizer runs of the "fuzz" test suite).
 *
 * The target defines LLVMFuzzerTestOneInput() and, optionally,
 * LLVMFuzzerInitialize().  This driver feeds it inputs and prints a TAP
 * stream, one subtest per group of inputs:
 *
 *   fuzz_x_replay [FILE|DIR]... [--random N [--seed S] [--max-len L]]
 *
 *   - a DIR is one group: every regular file directly inside it, in name
 *     order, skipping dotfiles (one level, no deeper recursion);
 *   - consecutive FILE arguments form one group;
 *   - --random N adds a group of N inputs of pseudo-random bytes with
 *     random lengths 0..L (default 4096) from a xorshift64* generator
 *     seeded with S (default fixed), so every run replays the same inputs.
 *
 * Each input is passed in a heap buffer of exactly its size (as libFuzzer
 * does) so that sanitizers and valgrind catch reads past its end.  A
 * target that returns something other than 0 or -1 fails its group.  A
 * crash (signal, abort(), sanitizer report) fails the whole program; before
 * dying it names the input on stderr and, for random inputs, saves the
 * bytes to ./crash-standalone-SEED-INDEX (hex seed, decimal index) so
 * they can be replayed with `fuzz_x_replay ./crash-standalone-SEED-INDEX`
 * and added to the corpus.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

#define DEFAULT_SEED 0x5eedf00dcafe1234ull
#define DEFAULT_MAX_LEN 4096
#define MAX_GROUPS 256

/* One subtest: a directory, a run of file arguments, or the random batch. */
enum group_kind { GROUP_DIR, GROUP_FILES, GROUP_RANDOM };

struct group {
	enum group_kind kind;
	int first_arg; /* GROUP_DIR: the dir; GROUP_FILES: first file */
	int nargs;     /* GROUP_FILES: how many file arguments */
};

struct options {
	struct group groups[MAX_GROUPS];
	int ngroups;
	unsigned long random_n;
	uint64_t seed;
	size_t max_len;
};

/*
 * The input being run, for the crash reporter.  Signal handlers can only
 * reach it through globals; nothing else reads them.
 */
static struct {
	char what[PATH_MAX + 64];
	const uint8_t *data;
	size_t size;
	uint64_t seed;
	unsigned long index;
	int is_random;
} current;

static struct sigaction old_actions[NSIG];

/* say() - write a string to stderr; async-signal-safe. */
static void say(const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, s, n);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* u64_to_str() - format @v in @base (10 or 16) into @buf; signal-safe. */
static void u64_to_str(uint64_t v, unsigned int base, char buf[24])
{
	static const char digits[] = "0123456789abcdef";
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	for (int i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
}

/*
 * save_random_input() - write the current random input to
 * ./crash-standalone-SEED-INDEX (seed in hex, index in decimal).
 */
static void save_random_input(void)
{
	char name[80] = "crash-standalone-", num[24];
	size_t off = 0;
	int fd;

	u64_to_str(current.seed, 16, num);
	strcat(name, num);
	strcat(name, "-");
	u64_to_str(current.index, 10, num);
	strcat(name, num);
	fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	while (off < current.size) {
		ssize_t w = write(fd, current.data + off, current.size - off);

		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(fd);
	say("# input saved to ");
	say(name);
	say("\n");
}

/* report_crash() - name the input that was running; async-signal-safe. */
static void report_crash(void)
{
	if (!current.what[0])
		return;
	say("# crashed on input: ");
	say(current.what);
	say("\n");
	if (current.is_random)
		save_random_input();
	current.what[0] = '\0'; /* report once */
}

/*
 * on_fatal_signal() - report, then hand the signal to whoever had it
 * before (a sanitizer's handler or the default action).  A fault re-runs
 * the faulting instruction on return; a sent signal is raised again.
 */
static void on_fatal_signal(int sig, siginfo_t *info, void *uctx)
{
	(void)uctx;
	report_crash();
	sigaction(sig, &old_actions[sig], NULL);
	if (info->si_code <= 0 || sig == SIGABRT)
		raise(sig);
}

/* install_crash_reporter() - hook fatal signals and sanitizer deaths. */
static void install_crash_reporter(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fatal_signal;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, &old_actions[sigs[i]]);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(report_crash);
}

/*
 * run_one() - run the target on a private exact-size copy of @data.
 * Return: 0, or -1 if the target returned a reserved value.
 */
static int run_one(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	int ret;

	if (!copy) {
		printf("# out of memory for a %zu-byte input\n", size);
		return -1;
	}
	if (size)
		memcpy(copy, data, size);
	current.data = copy;
	current.size = size;
	ret = LLVMFuzzerTestOneInput(copy, size);
	current.what[0] = '\0';
	free(copy);
	if (ret != 0 && ret != -1) {
		printf("# target returned %d (only 0 and -1 are allowed)\n",
		       ret);
		return -1;
	}
	return 0;
}

/*
 * read_file() - load @path into a malloc'd buffer.
 * Return: 0 with the buffer in *@data and its length in *@size; -errno.
 */
static int read_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int err = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (len == cap) {
			uint8_t *bigger = realloc(buf, cap ? cap * 2 : 4096);

			if (!bigger) {
				err = -ENOMEM;
				goto out;
			}
			buf = bigger;
			cap = cap ? cap * 2 : 4096;
		}
		size_t n = fread(buf + len, 1, cap - len, f);

		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f))
		err = -EIO;
out:
	fclose(f);
	if (err) {
		free(buf);
		return err;
	}
	*data = buf;
	*size = len;
	return 0;
}

/* run_file() - run one file input.  Return: 0, or -1 on any failure. */
static int run_file(const char *path)
{
	uint8_t *data = NULL;
	size_t size = 0;
	int err = read_file(path, &data, &size);

	if (err) {
		printf("# cannot read %s: %s\n", path, strerror(-err));
		return -1;
	}
	snprintf(current.what, sizeof(current.what), "%s", path);
	current.is_random = 0;
	err = run_one(data, size);
	if (err)
		printf("#   in %s\n", path);
	free(data);
	return err;
}

/* compare_names() - qsort helper: strcmp on an array of strings. */
static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * list_dir() - the regular, non-dot files directly in @dir, sorted.
 * Return: 0 with *@names (malloc'd paths) and *@n; -errno.
 */
static int list_dir(const char *dir, char ***names, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **list = NULL;
	size_t count = 0;
	int err = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		char path[PATH_MAX];
		struct stat st;
		char **bigger;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		bigger = realloc(list, (count + 1) * sizeof(*list));
		if (!bigger || !(bigger[count] = strdup(path))) {
			list = bigger ? bigger : list;
			err = -ENOMEM;
			break;
		}
		list = bigger;
		count++;
	}
	closedir(d);
	if (count)
		qsort(list, count, sizeof(*list), compare_names);
	*names = list;
	*n = count;
	return err;
}

/* base_name() - the last path component of @path (ignoring a final '/'). */
static const char *base_name(const char *path, char *buf, size_t size)
{
	size_t len = strlen(path);
	const char *slash;

	while (len > 1 && path[len - 1] == '/')
		len--;
	snprintf(buf, size, "%.*s", (int)len, path);
	slash = strrchr(buf, '/');
	return slash && slash[1] ? slash + 1 : buf;
}

/* run_dir_group() - one subtest for every file in a directory. */
static int run_dir_group(const char *dir, int num)
{
	char **names = NULL, buf[PATH_MAX];
	size_t n = 0;
	int bad = 0, err = list_dir(dir, &names, &n);

	if (err) {
		printf("# cannot list %s: %s\n", dir, strerror(-err));
		bad = 1;
	}
	for (size_t i = 0; i < n; i++) {
		bad |= run_file(names[i]) != 0;
		free(names[i]);
	}
	free(names);
	printf("%s %d - corpus %s (%zu inputs)\n", bad ? "not ok" : "ok", num,
	       base_name(dir, buf, sizeof(buf)), n);
	return bad;
}

/* run_files_group() - one subtest for a run of file arguments. */
static int run_files_group(char **argv, const struct group *g, int num)
{
	int bad = 0;

	for (int i = 0; i < g->nargs; i++)
		bad |= run_file(argv[g->first_arg + i]) != 0;
	printf("%s %d - files (%d inputs)\n", bad ? "not ok" : "ok", num,
	       g->nargs);
	return bad;
}

/* xorshift64s() - next value of a xorshift64* generator. */
static uint64_t xorshift64s(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* run_random_group() - one subtest for the random batch. */
static int run_random_group(const struct options *o, int num)
{
	uint64_t state = o->seed ? o->seed : DEFAULT_SEED;
	uint8_t *buf = malloc(o->max_len ? o->max_len : 1);
	int bad = 0;

	if (!buf) {
		printf("not ok %d - random (out of memory)\n", num);
		return 1;
	}
	for (unsigned long i = 0; i < o->random_n; i++) {
		size_t len = (size_t)(xorshift64s(&state) % (o->max_len + 1));

		for (size_t j = 0; j < len; j += 8) {
			uint64_t r = xorshift64s(&state);

			memcpy(buf + j, &r, len - j < 8 ? len - j : 8);
		}
		snprintf(current.what, sizeof(current.what),
			 "random #%lu (seed 0x%" PRIx64 ", %zu bytes)", i,
			 o->seed, len);
		current.is_random = 1;
		current.seed = o->seed;
		current.index = i;
		if (run_one(buf, len) != 0) {
			printf("#   in random input #%lu\n", i);
			bad = 1;
		}
	}
	free(buf);
	printf("%s %d - random (%lu inputs, seed 0x%" PRIx64
	       ", max-len %zu)\n", bad ? "not ok" : "ok", num, o->random_n,
	       o->seed, o->max_len);
	return bad;
}

/* parse_number() - strict unsigned parse (any base strtoull accepts). */
static int parse_number(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	if (!s || !*s || *s == '-')
		return -EINVAL;
	*out = strtoull(s, &end, 0);
	return errno || *end ? -EINVAL : 0;
}

/* usage() - print the command line and return the usage exit status. */
static int usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [FILE|DIR]... [--random N [--seed S] "
		"[--max-len L]]\n", prog);
	return 2;
}

/* add_path_group() - record a FILE or DIR argument. */
static int add_path_group(struct options *o, char **argv, int i)
{
	struct stat st;
	struct group *last = o->ngroups ? &o->groups[o->ngroups - 1] : NULL;
	int is_dir = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode);

	if (!is_dir && last && last->kind == GROUP_FILES &&
	    last->first_arg + last->nargs == i) {
		last->nargs++;
		return 0;
	}
	if (o->ngroups == MAX_GROUPS - 1) /* keep room for the random one */
		return -E2BIG;
	o->groups[o->ngroups++] = (struct group){
		.kind = is_dir ? GROUP_DIR : GROUP_FILES,
		.first_arg = i,
		.nargs = 1,
	};
	return 0;
}

/* parse_args() - fill @o from the command line.  Return: 0; -EINVAL. */
static int parse_args(int argc, char **argv, struct options *o)
{
	uint64_t v;
	int want_random = 0;

	o->seed = DEFAULT_SEED;
	o->max_len = DEFAULT_MAX_LEN;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--random") || !strcmp(a, "--seed") ||
		    !strcmp(a, "--max-len")) {
			if (parse_number(i + 1 < argc ? argv[i + 1] : NULL,
					 &v))
				return -EINVAL;
			i++;
			if (!strcmp(a, "--random")) {
				o->random_n = (unsigned long)v;
				want_random = 1;
			} else if (!strcmp(a, "--seed")) {
				o->seed = v;
			} else if (v > (64u << 20)) {
				return -EINVAL;
			} else {
				o->max_len = (size_t)v;
			}
		} else if (!strncmp(a, "--", 2) || !strcmp(a, "-")) {
			return -EINVAL;
		} else if (add_path_group(o, argv, i)) {
			return -EINVAL;
		}
	}
	if (want_random)
		o->groups[o->ngroups++] =
			(struct group){ .kind = GROUP_RANDOM };
	return 0;
}

int main(int argc, char **argv)
{
	static struct options opts;
	int failed = 0, init_argc = argc;
	char **init_argv = argv;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(argc, argv, &opts))
		return usage(argv[0]);
	install_crash_reporter();
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&init_argc, &init_argv);
	if (opts.ngroups == 0) {
		printf("1..0 # SKIP no inputs given\n");
		return 0;
	}
	printf("1..%d\n", opts.ngroups);
	for (int g = 0; g < opts.ngroups; g++) {
		const struct group *gr = &opts.groups[g];

		switch (gr->kind) {
		case GROUP_DIR:
			failed |= run_dir_group(argv[gr->first_arg], g + 1);
			break;
		case GROUP_FILES:
			failed |= run_files_group(argv, gr, g + 1);
			break;
		case GROUP_RANDOM:
			failed |= run_random_group(&opts, g + 1);
			break;
		}
	}
	return failed ? 1 : 0;
}
