/*
 * harness.h - a tiny TAP test harness for the unit, conformance and guest
 * tests.  Each test is a function registered with TEST(); main() comes from
 * TEST_MAIN().  CHECK* record a failure with file:line and go on; the
 * test's result is "not ok" if any check failed.  `meson test` reads the
 * TAP stream; the top-level summary counts every subtest.
 *
 * Run one test: ./test_core NAME  (a substring match on test names).
 */
#ifndef VIOMMU_TEST_HARNESS_H
#define VIOMMU_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
	const char *name;
	void (*fn)(void);
};

#define TEST_MAX 512
extern struct test_case test_cases[TEST_MAX];
extern int test_count;
extern int test_failed_checks;

#define TEST(name_)                                                        \
	static void test_##name_(void);                                    \
	__attribute__((constructor)) static void test_reg_##name_(void)    \
	{                                                                  \
		if (test_count < TEST_MAX)                                 \
			test_cases[test_count++] =                         \
				(struct test_case){ #name_, test_##name_ }; \
	}                                                                  \
	static void test_##name_(void)

#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond)) {                                             \
			printf("#   %s:%d: CHECK(%s) failed\n", __FILE__,      \
			       __LINE__, #cond);                           \
			test_failed_checks++;                              \
		}                                                          \
	} while (0)

#define CHECK_EQ(a, b)                                                     \
	do {                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);        \
		if (a_ != b_) {                                            \
			printf("#   %s:%d: %s == %s failed: %lld != %lld\n",   \
			       __FILE__, __LINE__, #a, #b, a_, b_);        \
			test_failed_checks++;                              \
		}                                                          \
	} while (0)

#define CHECK_U64(a, b)                                                    \
	do {                                                               \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);           \
		if (a_ != b_) {                                            \
			printf("#   %s:%d: %s == %s failed: 0x%" PRIx64        \
			       " != 0x%" PRIx64 "\n",                      \
			       __FILE__, __LINE__, #a, #b, a_, b_);        \
			test_failed_checks++;                              \
		}                                                          \
	} while (0)

/* REQUIRE: like CHECK but returns from the test function on failure. */
#define REQUIRE(cond)                                                      \
	do {                                                               \
		if (!(cond)) {                                             \
			printf("#   %s:%d: REQUIRE(%s) failed\n", __FILE__,    \
			       __LINE__, #cond);                           \
			test_failed_checks++;                              \
			return;                                            \
		}                                                          \
	} while (0)

#define TEST_MAIN()                                                        \
	struct test_case test_cases[TEST_MAX];                             \
	int test_count;                                                    \
	int test_failed_checks;                                            \
	int main(int argc, char **argv)                                    \
	{                                                                  \
		int failed = 0, n = 0;                                     \
		setvbuf(stdout, NULL, _IOLBF, 0);                          \
		for (int i = 0; i < test_count; i++)                       \
			if (argc < 2 || strstr(test_cases[i].name, argv[1]))\
				n++;                                       \
		printf("1..%d\n", n);                                      \
		n = 0;                                                     \
		for (int i = 0; i < test_count; i++) {                     \
			if (argc >= 2 && !strstr(test_cases[i].name, argv[1]))\
				continue;                                  \
			int before = test_failed_checks;                   \
			test_cases[i].fn();                                \
			int bad = test_failed_checks != before;            \
			failed += bad;                                     \
			printf("%s %d - %s\n", bad ? "not ok" : "ok", ++n, \
			       test_cases[i].name);                        \
		}                                                          \
		return failed ? 1 : 0;                                     \
	}

#endif /* VIOMMU_TEST_HARNESS_H */
