/*
 * qtest.h - a small client of QEMU's qtest protocol, for benchmarks that
 * drive a device model at register level (viommu-bench qemu).
 *
 * The client starts QEMU with `-qtest unix:PATH` (QEMU connects to a
 * socket we listen on in a private temporary directory) and `-qtest-log
 * none`, then speaks the line protocol: one command line out, one reply
 * line back ("OK", "OK VALUE", "FAIL ...", "ERR ..."); asynchronous lines
 * starting with "IRQ" are skipped.  Commands used here: inb/inw/inl and
 * outb/outw/outl (port I/O, e.g. PCI configuration through 0xcf8/0xcfc),
 * readb/w/l/q and writeb/w/l/q (one access through the first CPU's address
 * space: RAM or MMIO), read/write (a byte range as hex).
 *
 * Every wait is bounded: startup (until QEMU connects) and each reply are
 * limited by the configured timeout, and QEMU exiting early is noticed.
 * QEMU's stdout and stderr go to an unlinked temporary file whose tail is
 * quoted in error messages.  The child gets PR_SET_PDEATHSIG (SIGKILL),
 * so QEMU does not outlive the program.
 *
 * Functions return 0 or a negative errno; qtest_error() then says what
 * happened.  Nothing here prints or exits.  One struct qtest is used by
 * one thread at a time.
 */
#ifndef VIOMMU_BENCH_QTEST_H
#define VIOMMU_BENCH_QTEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/**
 * struct qtest_config - how to start QEMU.
 * @qemu:       the executable (a name is looked up in PATH).
 * @args:       extra arguments, NULL-terminated (the client adds -qtest
 *              and -qtest-log).
 * @pass_fds:   descriptors the child keeps open under the same numbers
 *              (every other descriptor should be close-on-exec).
 * @npass:      how many.
 * @timeout_ms: bound on startup and on each reply (0: 10000).
 */
struct qtest_config {
	const char *qemu;
	const char *const *args;
	const int *pass_fds;
	int npass;
	int timeout_ms;
};

struct qtest;

/*
 * qtest_start() - start QEMU and wait for its qtest connection.  On
 * failure *@out is NULL and @err (if not NULL) holds the reason.
 */
int qtest_start(const struct qtest_config *c, struct qtest **out,
		char *err, size_t errlen);

/*
 * qtest_stop() - end QEMU (SIGTERM, then SIGKILL after a bounded wait),
 * reap it and free @q.  Returns QEMU's wait status in *@status (may be
 * NULL); NULL @q is a no-op.
 */
void qtest_stop(struct qtest *q, int *status);

/* qtest_pid() - QEMU's process ID. */
pid_t qtest_pid(const struct qtest *q);

/* qtest_error() - what the last failure was (empty if none). */
const char *qtest_error(const struct qtest *q);

/* qtest_round_trips() - commands answered so far. */
uint64_t qtest_round_trips(const struct qtest *q);

/*
 * qtest_cmd() - send @line (no newline) and read the reply line into
 * @reply (NUL-terminated, truncated to @n).  A reply that does not start
 * with "OK" is an error (-EIO).
 */
int qtest_cmd(struct qtest *q, const char *line, char *reply, size_t n);

/* qtest_in() / qtest_out() - port I/O of @size 1, 2 or 4 bytes. */
int qtest_in(struct qtest *q, int size, uint16_t port, uint32_t *val);
int qtest_out(struct qtest *q, int size, uint16_t port, uint32_t val);

/* qtest_readn() / qtest_writen() - one access of @size 1, 2, 4 or 8. */
int qtest_readn(struct qtest *q, int size, uint64_t addr, uint64_t *val);
int qtest_writen(struct qtest *q, int size, uint64_t addr, uint64_t val);

/* qtest_memread() / qtest_memwrite() - @len (> 0) bytes at @addr. */
int qtest_memread(struct qtest *q, uint64_t addr, void *buf, size_t len);
int qtest_memwrite(struct qtest *q, uint64_t addr, const void *buf,
		   size_t len);

#endif /* VIOMMU_BENCH_QTEST_H */
