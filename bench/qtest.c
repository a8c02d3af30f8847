/*
 * qtest.c - a small client of QEMU's qtest protocol (see qtest.h).
 *
 * Startup: listen on a UNIX socket in a fresh mkdtemp() directory, fork
 * and exec QEMU with `-qtest unix:PATH -qtest-log none`, and accept its
 * connection (bounded, watching for QEMU exiting first).  The socket and
 * its directory are removed as soon as QEMU is connected.  An exec failure
 * comes back through a close-on-exec pipe, so "not found" is reported as
 * such rather than as a timeout.
 *
 * Each command is one line out and one "OK ..." line back.  The socket is
 * non-blocking and every send and receive waits in poll() against one
 * deadline per command.  Replies are parsed strictly: a value must be a
 * number, a read's hex string exactly twice the length asked for.
 */
#include "qtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 10000
#define STOP_WAIT_MS 5000
#define MAX_ARGS 64
#define TAIL_BYTES 600

struct qtest {
	pid_t pid;
	int fd;     /* the qtest connection */
	int logfd;  /* QEMU's stdout/stderr (an unlinked file) */
	int timeout_ms;
	bool reaped;
	int status;
	uint64_t round_trips;
	char *rbuf; /* received bytes [0, rlen) */
	size_t rlen, rcap;
	size_t consumed; /* bytes of the last reply line still in rbuf */
	char *wbuf;
	size_t wcap;
	char err[768];
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

/* now_ms() - a monotonic clock in milliseconds. */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* seterr() - format the reason of a failure into @buf. */
static void __attribute__((format(printf, 3, 4)))
seterr(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (!buf || !n)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
}

/*
 * log_tail() - the last bytes QEMU wrote to its log, on one line (newlines
 * shown as " | "), or "(QEMU printed nothing)".
 */
static void log_tail(int logfd, char *out, size_t n)
{
	char raw[TAIL_BYTES + 1];
	off_t end = lseek(logfd, 0, SEEK_END);
	off_t start = end > TAIL_BYTES ? end - TAIL_BYTES : 0;
	ssize_t got = end > 0 ? pread(logfd, raw, (size_t)(end - start),
				      start) : 0;
	size_t o = 0;

	if (got <= 0) {
		snprintf(out, n, "(QEMU printed nothing)");
		return;
	}
	while (got > 0 && (raw[got - 1] == '\n' || raw[got - 1] == '\r'))
		got--;
	for (ssize_t i = 0; i < got && o + 4 < n; i++) {
		if (raw[i] == '\n') {
			memcpy(out + o, " | ", 3);
			o += 3;
		} else if (raw[i] != '\r') {
			out[o++] = raw[i];
		}
	}
	out[o] = '\0';
}

/* reap() - collect QEMU's exit status if it has ended; true if so. */
static bool reap(struct qtest *q)
{
	if (!q->reaped && waitpid(q->pid, &q->status, WNOHANG) == q->pid)
		q->reaped = true;
	return q->reaped;
}

/* describe_exit() - "exited with status N" / "killed by signal N". */
static void describe_exit(int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, n, "ended (wait status %#x)", status);
}

/* fail_dead() - the error for a QEMU that went away: -EPIPE. */
static int fail_dead(struct qtest *q, const char *when)
{
	char how[64], tail[TAIL_BYTES + 64];

	if (reap(q))
		describe_exit(q->status, how, sizeof(how));
	else
		snprintf(how, sizeof(how), "closed the qtest connection");
	log_tail(q->logfd, tail, sizeof(tail));
	seterr(q->err, sizeof(q->err), "QEMU %s %s; its output: %s", how,
	       when, tail);
	return -EPIPE;
}

/* ------------------------------------------------------------------ */
/* Starting QEMU                                                        */

/* open_log() - an unlinked temporary file in @dir for QEMU's output. */
static int open_log(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/qemu.log", dir) >=
	    sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* listen_in() - a listening UNIX socket at @dir/qtest.sock into @path. */
static int listen_in(const char *dir, char *path, size_t n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if ((size_t)snprintf(path, n, "%s/qtest.sock", dir) >= n ||
	    strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1)) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* build_argv() - QEMU's argument vector; -E2BIG if too long. */
static int build_argv(const struct qtest_config *c, const char *chardev,
		      const char **argv)
{
	int n = 0;

	argv[n++] = c->qemu;
	for (int i = 0; c->args && c->args[i]; i++) {
		if (n >= MAX_ARGS - 6)
			return -E2BIG;
		argv[n++] = c->args[i];
	}
	argv[n++] = "-qtest";
	argv[n++] = chardev;
	argv[n++] = "-qtest-log";
	argv[n++] = "none";
	argv[n] = NULL;
	return 0;
}

/*
 * child() - in the forked child: die with the parent, route stdio, keep
 * the passed descriptors, exec QEMU.  On failure write errno to @errpipe.
 */
static void __attribute__((noreturn))
child(const struct qtest_config *c, const char **argv, int logfd,
      int errpipe)
{
	int e, devnull;

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* a blocked QEMU ignores TERM */
	devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0)
		dup2(devnull, 0);
	dup2(logfd, 1);
	dup2(logfd, 2);
	for (int i = 0; i < c->npass; i++)
		fcntl(c->pass_fds[i], F_SETFD, 0);
	execvp(c->qemu, (char *const *)argv);
	e = errno;
	if (write(errpipe, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

/* spawn() - fork and exec; report an exec failure as its errno. */
static int spawn(struct qtest *q, const struct qtest_config *c,
		 const char **argv)
{
	int p[2], e = 0;
	ssize_t got;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	q->pid = fork();
	if (q->pid < 0) {
		e = -errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	if (q->pid == 0)
		child(c, argv, q->logfd, p[1]);
	close(p[1]);
	do
		got = read(p[0], &e, sizeof(e));
	while (got < 0 && errno == EINTR);
	close(p[0]);
	if (got == (ssize_t)sizeof(e)) {
		waitpid(q->pid, &q->status, 0);
		q->reaped = true;
		seterr(q->err, sizeof(q->err), "cannot run %s: %s", c->qemu,
		       strerror(e));
		return -e;
	}
	return 0;
}

/* await_connect() - accept QEMU's connection before the deadline. */
static int await_connect(struct qtest *q, int lfd)
{
	int64_t deadline = now_ms() + q->timeout_ms;
	struct pollfd pf = { .fd = lfd, .events = POLLIN };

	for (;;) {
		int r = poll(&pf, 1, 50);

		if (r > 0) {
			q->fd = accept4(lfd, NULL, NULL,
					SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (q->fd >= 0)
				return 0;
			if (errno != EINTR && errno != EAGAIN)
				return -errno;
		} else if (r < 0 && errno != EINTR) {
			return -errno;
		}
		if (reap(q))
			return fail_dead(q, "before connecting to qtest");
		if (now_ms() > deadline) {
			seterr(q->err, sizeof(q->err), "QEMU did not connect "
			       "to qtest within %d ms", q->timeout_ms);
			return -ETIMEDOUT;
		}
	}
}

/* make_dir() - a private temporary directory into @dir. */
static int make_dir(char *dir, size_t n)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp)
		tmp = "/tmp";
	if ((size_t)snprintf(dir, n, "%s/viommu-qtest-XXXXXX", tmp) >= n)
		return -ENAMETOOLONG;
	return mkdtemp(dir) ? 0 : -errno;
}

/* launch() - the steps of qtest_start() that need the directory. */
static int launch(struct qtest *q, const struct qtest_config *c,
		  const char *dir)
{
	char path[PATH_MAX], chardev[PATH_MAX + 8];
	const char *argv[MAX_ARGS];
	int lfd, err;

	q->logfd = open_log(dir);
	if (q->logfd < 0) {
		err = -errno;
		seterr(q->err, sizeof(q->err), "cannot create a log file in "
		       "%s: %s", dir, strerror(-err));
		return err;
	}
	lfd = listen_in(dir, path, sizeof(path));
	if (lfd < 0) {
		seterr(q->err, sizeof(q->err), "cannot listen in %s: %s", dir,
		       strerror(-lfd));
		return lfd;
	}
	snprintf(chardev, sizeof(chardev), "unix:%s", path);
	err = build_argv(c, chardev, argv);
	if (err)
		seterr(q->err, sizeof(q->err), "too many QEMU arguments");
	else
		err = spawn(q, c, argv);
	if (!err)
		err = await_connect(q, lfd);
	close(lfd);
	unlink(path);
	return err;
}

/* qtest_start() - see qtest.h. */
int qtest_start(const struct qtest_config *c, struct qtest **out,
		char *err, size_t errlen)
{
	struct qtest *q = calloc(1, sizeof(*q));
	char dir[PATH_MAX];
	int rc;

	*out = NULL;
	if (!q) {
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	q->fd = q->logfd = -1;
	q->pid = -1;
	q->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
	rc = make_dir(dir, sizeof(dir));
	if (rc) {
		seterr(err, errlen, "cannot create a temporary directory: %s",
		       strerror(-rc));
		free(q);
		return rc;
	}
	rc = launch(q, c, dir);
	rmdir(dir);
	if (rc) {
		seterr(err, errlen, "%s", q->err);
		qtest_stop(q, NULL);
		return rc;
	}
	*out = q;
	return 0;
}

/* qtest_stop() - see qtest.h. */
void qtest_stop(struct qtest *q, int *status)
{
	int64_t deadline;

	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	if (q->pid > 0 && !reap(q)) {
		kill(q->pid, SIGTERM);
		deadline = now_ms() + STOP_WAIT_MS;
		while (!reap(q) && now_ms() < deadline)
			usleep(5000);
		if (!q->reaped) {
			kill(q->pid, SIGKILL);
			waitpid(q->pid, &q->status, 0);
			q->reaped = true;
		}
	}
	if (status)
		*status = q->status;
	if (q->logfd >= 0)
		close(q->logfd);
	free(q->rbuf);
	free(q->wbuf);
	free(q);
}

pid_t qtest_pid(const struct qtest *q)
{
	return q->pid;
}

const char *qtest_error(const struct qtest *q)
{
	return q->err;
}

uint64_t qtest_round_trips(const struct qtest *q)
{
	return q->round_trips;
}

/* ------------------------------------------------------------------ */
/* The line protocol                                                    */

/* reserve() - make @*buf hold at least @need bytes. */
static int reserve(char **buf, size_t *cap, size_t need)
{
	char *p;
	size_t n = *cap ? *cap : 256;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

/* wait_io() - poll @q->fd for @ev until @deadline; -ETIMEDOUT after. */
static int wait_io(struct qtest *q, short ev, int64_t deadline,
		   const char *what)
{
	struct pollfd pf = { .fd = q->fd, .events = ev };

	for (;;) {
		int64_t left = deadline - now_ms();
		int r;

		if (left < 0) {
			seterr(q->err, sizeof(q->err), "no progress within %d "
			       "ms %s", q->timeout_ms, what);
			return -ETIMEDOUT;
		}
		r = poll(&pf, 1, (int)(left > 1000 ? 1000 : left));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (reap(q))
			return fail_dead(q, what);
	}
}

/* send_all() - write @len bytes of @buf before @deadline. */
static int send_all(struct qtest *q, const char *buf, size_t len,
		    int64_t deadline)
{
	while (len) {
		ssize_t n = send(q->fd, buf, len, MSG_NOSIGNAL);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EPIPE)
			return fail_dead(q, "while sending a command");
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		n = wait_io(q, POLLOUT, deadline, "sending a command");
		if (n)
			return (int)n;
	}
	return 0;
}

/* drop_consumed() - forget the previous reply line. */
static void drop_consumed(struct qtest *q)
{
	if (!q->consumed)
		return;
	memmove(q->rbuf, q->rbuf + q->consumed, q->rlen - q->consumed);
	q->rlen -= q->consumed;
	q->consumed = 0;
}

/* fill() - receive more bytes before @deadline. */
static int fill(struct qtest *q, int64_t deadline)
{
	for (;;) {
		ssize_t n;
		int err = reserve(&q->rbuf, &q->rcap, q->rlen + 4096);

		if (err)
			return err;
		n = recv(q->fd, q->rbuf + q->rlen, q->rcap - q->rlen - 1, 0);
		if (n > 0) {
			q->rlen += (size_t)n;
			return 0;
		}
		if (n == 0)
			return fail_dead(q, "while a reply was awaited");
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		err = wait_io(q, POLLIN, deadline, "waiting for a reply");
		if (err)
			return err;
	}
}

/*
 * read_line() - the next reply line (asynchronous "IRQ" lines skipped),
 * NUL-terminated in place; valid until the next command.
 */
static int read_line(struct qtest *q, int64_t deadline, char **line)
{
	size_t scan = 0;

	drop_consumed(q);
	for (;;) {
		char *nl = q->rlen > scan ? memchr(q->rbuf + scan, '\n',
						   q->rlen - scan) : NULL;
		int err;

		if (!nl) {
			scan = q->rlen;
			err = fill(q, deadline);
			if (err)
				return err;
			continue;
		}
		*nl = '\0';
		if (!strncmp(q->rbuf, "IRQ", 3)) {
			q->consumed = (size_t)(nl - q->rbuf) + 1;
			drop_consumed(q);
			scan = 0;
			continue;
		}
		q->consumed = (size_t)(nl - q->rbuf) + 1;
		*line = q->rbuf;
		return 0;
	}
}

/*
 * transact() - send the command in q->wbuf[0..len) (newline included)
 * and return its "OK" reply line in *@reply.
 */
static int transact(struct qtest *q, size_t len, char **reply)
{
	int64_t deadline = now_ms() + q->timeout_ms;
	int err = send_all(q, q->wbuf, len, deadline);

	if (!err)
		err = read_line(q, deadline, reply);
	if (err)
		return err;
	q->round_trips++;
	if (strncmp(*reply, "OK", 2) || ((*reply)[2] && (*reply)[2] != ' ')) {
		seterr(q->err, sizeof(q->err), "QEMU answered '%.200s' to "
		       "'%.*s'", *reply, (int)(len > 80 ? 80 : len - 1),
		       q->wbuf);
		return -EIO;
	}
	return 0;
}

/* cmdf() - format a command line into q->wbuf and transact it. */
static int __attribute__((format(printf, 3, 4)))
cmdf(struct qtest *q, char **reply, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (reserve(&q->wbuf, &q->wcap, 128))
		return -ENOMEM;
	va_start(ap, fmt);
	n = vsnprintf(q->wbuf, q->wcap - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= q->wcap - 1)
		return -EINVAL;
	q->wbuf[n] = '\n';
	return transact(q, (size_t)n + 1, reply);
}

/* reply_value() - the number after "OK " in @reply. */
static int reply_value(struct qtest *q, const char *reply, uint64_t *val)
{
	char *end;

	if (reply[2] != ' ')
		goto bad;
	errno = 0;
	*val = strtoull(reply + 3, &end, 0);
	if (errno || end == reply + 3 || *end)
		goto bad;
	return 0;
bad:
	seterr(q->err, sizeof(q->err), "unexpected reply '%.100s'", reply);
	return -EPROTO;
}

/* qtest_cmd() - see qtest.h. */
int qtest_cmd(struct qtest *q, const char *line, char *reply, size_t n)
{
	char *r;
	int err = cmdf(q, &r, "%s", line);

	if (!err && reply && n)
		snprintf(reply, n, "%s", r);
	return err;
}

/* size_letter() - 'b', 'w', 'l' or 'q' for @size, or 0. */
static char size_letter(int size, bool allow_q)
{
	switch (size) {
	case 1:
		return 'b';
	case 2:
		return 'w';
	case 4:
		return 'l';
	case 8:
		return allow_q ? 'q' : 0;
	default:
		return 0;
	}
}

int qtest_in(struct qtest *q, int size, uint16_t port, uint32_t *val)
{
	char c = size_letter(size, false), *r;
	uint64_t v;
	int err;

	if (!c)
		return -EINVAL;
	err = cmdf(q, &r, "in%c 0x%x", c, port);
	if (!err)
		err = reply_value(q, r, &v);
	if (!err)
		*val = (uint32_t)v;
	return err;
}

int qtest_out(struct qtest *q, int size, uint16_t port, uint32_t val)
{
	char c = size_letter(size, false), *r;

	if (!c)
		return -EINVAL;
	return cmdf(q, &r, "out%c 0x%x 0x%x", c, port, val);
}

int qtest_readn(struct qtest *q, int size, uint64_t addr, uint64_t *val)
{
	char c = size_letter(size, true), *r;
	int err;

	if (!c)
		return -EINVAL;
	err = cmdf(q, &r, "read%c 0x%llx", c, (unsigned long long)addr);
	return err ? err : reply_value(q, r, val);
}

int qtest_writen(struct qtest *q, int size, uint64_t addr, uint64_t val)
{
	char c = size_letter(size, true), *r;

	if (!c)
		return -EINVAL;
	return cmdf(q, &r, "write%c 0x%llx 0x%llx", c,
		    (unsigned long long)addr, (unsigned long long)val);
}

/* hexval() - one hex digit's value, or -1. */
static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int qtest_memread(struct qtest *q, uint64_t addr, void *buf, size_t len)
{
	uint8_t *out = buf;
	char *r;
	int err;

	if (!len)
		return -EINVAL; /* QEMU asserts on a zero-length read */
	err = cmdf(q, &r, "read 0x%llx 0x%zx", (unsigned long long)addr, len);
	if (err)
		return err;
	if (strncmp(r, "OK 0x", 5) || strlen(r + 5) != 2 * len)
		goto bad;
	for (size_t i = 0; i < len; i++) {
		int hi = hexval(r[5 + 2 * i]), lo = hexval(r[6 + 2 * i]);

		if (hi < 0 || lo < 0)
			goto bad;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
bad:
	seterr(q->err, sizeof(q->err), "malformed read reply '%.60s...'", r);
	return -EPROTO;
}

int qtest_memwrite(struct qtest *q, uint64_t addr, const void *buf,
		   size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *in = buf;
	char *r, *p;
	int n;

	if (!len)
		return -EINVAL;
	if (reserve(&q->wbuf, &q->wcap, 64 + 2 * len))
		return -ENOMEM;
	n = snprintf(q->wbuf, 64, "write 0x%llx 0x%zx 0x",
		     (unsigned long long)addr, len);
	p = q->wbuf + n;
	for (size_t i = 0; i < len; i++) {
		*p++ = digits[in[i] >> 4];
		*p++ = digits[in[i] & 15];
	}
	*p++ = '\n';
	return transact(q, (size_t)(p - q->wbuf), &r);
}
