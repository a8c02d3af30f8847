/*
 * qemu_srv.c - the child programs of `viommu-bench qemu`: finding QEMU and
 * viommu-server, running servers, /proc CPU accounting (see qemu_srv.h).
 *
 * The child is set up between fork() and exec(): death signal, stdio, the
 * link descriptors made inheritable.  Anything failing there is written
 * to the server's log and ends the child with status 127, which the
 * parent reports through srv_state() at the first failed access.
 */
#include "qemu_srv.h"
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SRV_ARGS 32
#define LINK_ARG_LEN 32
#define STOP_STEPS 300     /* x 10 ms per signal */

/* ------------------------------------------------------------------ */
/* Finding the programs                                               */

/* find_in_path() - @name (or a path) as an executable into @out. */
bool find_in_path(const char *name, char *out, size_t n)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/')) {
		snprintf(out, n, "%s", name);
		return !access(out, X_OK);
	}
	while (path && *path) {
		size_t len = strcspn(path, ":");

		if ((size_t)snprintf(out, n, "%.*s/%s", (int)len, path, name) <
			    n && len && !access(out, X_OK))
			return true;
		path += len + (path[len] == ':');
	}
	return false;
}

/*
 * find_server() - @opt (--server), $VIOMMU_SERVER, the build tree next to this
 * program (../tools/viommu-server), the install directory, PATH.
 */
bool find_server(const char *opt, char *out, size_t n)
{
	char self[PATH_MAX], *slash;
	ssize_t len;
	const char *env = getenv("VIOMMU_SERVER");

	if (opt || (env && *env))
		return find_in_path(opt ? opt : env, out, n);
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	slash = len > 0 ? memrchr(self, '/', (size_t)len) : NULL;
	if (slash) {
		*slash = '\0';
		if ((size_t)snprintf(out, n, "%s/../tools/viommu-server",
				     self) < n && !access(out, X_OK))
			return true;
		if ((size_t)snprintf(out, n, "%s/viommu-server", self) < n &&
		    !access(out, X_OK))
			return true;
	}
	return find_in_path("viommu-server", out, n);
}

/* qemu_version() - the first line of `QEMU --version`. */
void qemu_version(const char *qemu, char *out, size_t n)
{
	char cmd[PATH_MAX + 32];
	FILE *p;

	snprintf(out, n, "unknown");
	snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", qemu);
	if (strchr(qemu, '\'') || !(p = popen(cmd, "r")))
		return;
	if (fgets(out, (int)n, p))
		out[strcspn(out, "\n")] = '\0';
	pclose(p);
}

/* ------------------------------------------------------------------ */
/* viommu-server                                                      */

/* temp_log() - an unlinked temporary file for a child's output. */
static int temp_log(void)
{
	const char *tmp = getenv("TMPDIR");
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/viommu-bench-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0 && unlink(path))
		die("cannot remove the temporary file %s: %s", path,
		    strerror(errno));
	return fd;
}

/* srv_tail() - the end of the server's log, on one line. */
static void srv_tail(const struct bench_srv *s, char *out, size_t n)
{
	char raw[512];
	off_t end = lseek(s->log, 0, SEEK_END);
	off_t start = end > (off_t)sizeof(raw) - 1 ? end - (off_t)sizeof(raw)
							 + 1 : 0;
	ssize_t got = end > 0 ? pread(s->log, raw, (size_t)(end - start),
				      start) : 0;

	if (got <= 0) {
		snprintf(out, n, "(nothing)");
		return;
	}
	raw[got] = '\0';
	for (char *p = raw; *p; p++)
		if (*p == '\n')
			*p = ' ';
	snprintf(out, n, "%s", raw);
}

void srv_state(struct bench_srv *s, char *out, size_t n)
{
	char tail[600];
	int status;

	srv_tail(s, tail, sizeof(tail));
	if (s->pid > 0 && waitpid(s->pid, &status, WNOHANG) == s->pid) {
		s->pid = -1;
		snprintf(out, n, "; %s ended (wait status %#x), its log: %s",
			 s->name, status, tail);
	} else {
		snprintf(out, n, "; %s's log: %s", s->name, tail);
	}
}

/* child_fail() - in the child: say why in the log, exit 127. */
static void __attribute__((noreturn))
child_fail(int log, const char *what)
{
	dprintf(log, "viommu-bench: starting the server: %s: %s\n", what,
		strerror(errno));
	_exit(127);
}

/* child() - in the forked child: stdio, inheritable links, exec. */
static void __attribute__((noreturn))
child(const struct bench_srv *s, pid_t parent, const char *path,
      const char **argv, const int *fds, int nfds)
{
	int null;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL))
		child_fail(s->log, "prctl");
	if (getppid() != parent)
		_exit(127); /* the bench is gone already */
	null = open("/dev/null", O_RDWR);
	if (null < 0)
		child_fail(s->log, "/dev/null");
	if (dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(s->log, 2) < 0)
		child_fail(s->log, "dup2");
	for (int i = 0; i < nfds; i++)
		if (fcntl(fds[i], F_SETFD, 0))
			child_fail(s->log, "fcntl");
	execv(path, (char *const *)argv);
	child_fail(s->log, path);
}

void srv_start(struct bench_srv *s, const char *path, const int *fds,
	       int nfds, const char *const *extra)
{
	char links[MAX_SRV_ARGS / 4][LINK_ARG_LEN];
	const char *argv[MAX_SRV_ARGS];
	pid_t parent = getpid();
	int n = 0;

	if (nfds > MAX_SRV_ARGS / 4)
		die("%s: too many links", s->name);
	argv[n++] = path;
	for (int i = 0; i < nfds; i++) {
		snprintf(links[i], LINK_ARG_LEN, "%d:fd=%d", i, fds[i]);
		argv[n++] = "--link";
		argv[n++] = links[i];
	}
	for (int i = 0; extra && extra[i]; i++) {
		if (n >= MAX_SRV_ARGS - 1)
			die("%s: too many arguments", s->name);
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	s->log = temp_log();
	if (s->log < 0)
		die("%s: cannot create a temporary file: %s", s->name,
		    strerror(errno));
	s->pid = fork();
	if (s->pid < 0)
		die("%s: fork: %s", s->name, strerror(errno));
	if (s->pid == 0)
		child(s, parent, path, argv, fds, nfds);
}

/* wait_gone() - up to STOP_STEPS x 10 ms for the server to end. */
static bool wait_gone(struct bench_srv *s, int *status)
{
	for (int i = 0; i < STOP_STEPS; i++) {
		pid_t r = waitpid(s->pid, status, WNOHANG);

		if (r == s->pid)
			return true;
		if (r < 0)
			die("%s: waitpid: %s", s->name, strerror(errno));
		usleep(10000);
	}
	return false;
}

void srv_stop(struct bench_srv *s)
{
	static const int sigs[] = { 0, SIGTERM, SIGKILL };
	int status = 0;
	char tail[600];
	bool reaped = s->pid <= 0;

	for (int i = 0; !reaped && i < 3; i++) {
		if (sigs[i] && kill(s->pid, sigs[i]))
			die("%s: kill: %s", s->name, strerror(errno));
		reaped = wait_gone(s, &status);
	}
	if (!reaped)
		die("%s (pid %d) survived SIGKILL", s->name, (int)s->pid);
	if (s->pid > 0 && (!WIFEXITED(status) || WEXITSTATUS(status))) {
		srv_tail(s, tail, sizeof(tail));
		fprintf(stderr, "viommu-bench qemu: warning: %s ended with "
			"wait status %#x: %s\n", s->name, status, tail);
	}
	s->pid = -1;
	if (s->log >= 0)
		close(s->log);
	s->log = -1;
}

double proc_cpu_ns(pid_t pid)
{
	char path[64];
	struct dirent *e;
	double sum = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((e = readdir(dir))) {
		char f[400];
		unsigned long long ns;
		FILE *fp;

		if (e->d_name[0] == '.')
			continue;
		snprintf(f, sizeof(f), "%s/%s/schedstat", path, e->d_name);
		fp = fopen(f, "r");
		if (!fp || fscanf(fp, "%llu", &ns) != 1)
			sum = -1e30;
		else
			sum += (double)ns;
		if (fp)
			fclose(fp);
	}
	closedir(dir);
	return sum < 0 ? -1 : sum;
}
