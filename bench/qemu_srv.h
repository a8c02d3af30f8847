/*
 * qemu_srv.h - the child programs of `viommu-bench qemu`: finding QEMU and
 * viommu-server, running viommu-server instances on inherited socketpair
 * ends (QEMU itself is run by qtest.c), and the CPU time of any process
 * from /proc.
 *
 * A server's stderr goes to an unlinked temporary file whose tail is quoted
 * in error messages; stdout (its exit counters) goes to /dev/null.  The
 * child gets PR_SET_PDEATHSIG (SIGKILL), so no server outlives the bench.
 * A server exits by itself once all its links are closed; srv_stop() waits
 * for that (bounded), then sends SIGTERM and SIGKILL, and always reaps.
 */
#ifndef VIOMMU_BENCH_QEMU_SRV_H
#define VIOMMU_BENCH_QEMU_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* find_in_path() - @name (or a path) as an executable into @out. */
bool find_in_path(const char *name, char *out, size_t n);

/*
 * find_server() - viommu-server into @out: @opt (--server, may be NULL),
 * $VIOMMU_SERVER, the build tree next to this program
 * (../tools/viommu-server), the install directory, PATH.
 */
bool find_server(const char *opt, char *out, size_t n);

/* qemu_version() - the first line of `QEMU --version` ("unknown"). */
void qemu_version(const char *qemu, char *out, size_t n);

/**
 * struct bench_srv - one viommu-server.
 * @name: for messages ("viommu-server of path link").
 * @pid:  the process (-1: not started, or reaped).
 * @log:  its stderr (an unlinked file), or -1.
 */
struct bench_srv {
	const char *name;
	pid_t pid;
	int log;
};

/*
 * srv_start() - run @path with "--link I:fd=@fds[I]" for I < @nfds, then
 * the NULL-terminated @extra arguments.  @fds must be close-on-exec in
 * this process (the child clears the flag on its copies).  Dies on
 * failure; an exec failure shows up as the server having ended.
 */
void srv_start(struct bench_srv *s, const char *path, const int *fds,
	       int nfds, const char *const *extra);

/*
 * srv_state() - for an error message: "; NAME ended (...), its log: ..."
 * or "; NAME's log: ..." into @out.
 */
void srv_state(struct bench_srv *s, char *out, size_t n);

/* srv_stop() - wait for it to end (see above), reap it, close the log. */
void srv_stop(struct bench_srv *s);

/* proc_cpu_ns() - on-CPU ns of every thread of @pid (-1: unknown). */
double proc_cpu_ns(pid_t pid);

#endif /* VIOMMU_BENCH_QEMU_SRV_H */
