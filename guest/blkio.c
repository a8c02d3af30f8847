/*
 * blkio.c - the blkio scenario: O_DIRECT random I/O rates on a virtio
 * disk driven by the stock virtio_blk driver (a small fio of our own: the
 * seeds' storage column, measured with a real guest).
 *
 * For each of random read and random write, 4 KiB and 64 KiB blocks, and
 * queue depth 1 and 32, it keeps that many requests in flight with Linux
 * native AIO (io_submit / io_getevents on the raw block device opened with
 * O_DIRECT, so every request is one DMA-mapped bio the driver sends to the
 * device) for viommu.bench_ms milliseconds and prints one line
 *
 *   VIOMMU-BENCH name=blk-randread|blk-randwrite size=BYTES qd=N count=N
 *                ns=TOTAL ns_per_op=X ops_per_s=IOPS MBps=B iommu=TYPE
 *
 * where TYPE is the disk's IOMMU domain type (DMA-FQ, DMA, identity or
 * none).  Offsets are block-aligned, uniformly random over the disk (from
 * --seed).  The disk's contents are overwritten: run it on a scratch disk.
 * A request that fails fails the scenario.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/aio_abi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

#define QD_MAX 32
#define BS_MAX 65536

/* The Linux AIO system calls (glibc has no wrappers). */
static int io_setup_(unsigned n, aio_context_t *ctx)
{
	return (int)syscall(__NR_io_setup, n, ctx);
}

static int io_destroy_(aio_context_t ctx)
{
	return (int)syscall(__NR_io_destroy, ctx);
}

static int io_submit_(aio_context_t ctx, long n, struct iocb **iocbs)
{
	return (int)syscall(__NR_io_submit, ctx, n, iocbs);
}

static int io_getevents_(aio_context_t ctx, long min, long max,
			 struct io_event *ev, struct timespec *t)
{
	return (int)syscall(__NR_io_getevents, ctx, min, max, ev, t);
}

/* One measurement's parameters and outcome. */
struct job {
	bool write;
	size_t bs;
	unsigned qd;
	uint64_t blocks; /* disk size in bs units */
	uint64_t rng;
	unsigned done;
	uint64_t ns;
	int err; /* first failed request: -errno */
};

/* prep() - iocb @cb for a random block of @j, buffer @buf. */
static void prep(struct job *j, struct iocb *cb, int fd, uint8_t *buf)
{
	uint64_t blk = rng_next(&j->rng) % j->blocks;

	memset(cb, 0, sizeof(*cb));
	cb->aio_fildes = (uint32_t)fd;
	cb->aio_lio_opcode = j->write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
	cb->aio_buf = (uint64_t)(uintptr_t)buf;
	cb->aio_nbytes = j->bs;
	cb->aio_offset = (int64_t)(blk * j->bs);
	cb->aio_data = (uint64_t)(uintptr_t)cb;
}

/*
 * run_job() - keep j->qd requests in flight for bench_ms, then drain.
 * Return: 0; -errno (set-up or a failed request).
 */
static int run_job(struct job *j, int fd, uint8_t *bufs)
{
	struct iocb cbs[QD_MAX], *list[QD_MAX];
	struct io_event ev[QD_MAX];
	aio_context_t ctx = 0;
	unsigned inflight = 0, i;
	uint64_t t0;
	bool stopping = false;
	int n;

	if (io_setup_(j->qd, &ctx))
		return -errno;
	for (i = 0; i < j->qd; i++) {
		prep(j, &cbs[i], fd, bufs + (size_t)i * BS_MAX);
		list[i] = &cbs[i];
	}
	t0 = now_ns();
	n = io_submit_(ctx, j->qd, list);
	if (n != (int)j->qd) {
		j->err = n < 0 ? -errno : -EAGAIN;
		inflight = n > 0 ? (unsigned)n : 0;
		stopping = true;
	} else {
		inflight = j->qd;
	}
	while (inflight) {
		struct timespec to = { 5, 0 };

		n = io_getevents_(ctx, 1, QD_MAX, ev, &to);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			j->err = n < 0 ? -errno : -ETIMEDOUT;
			break; /* io_destroy waits for what is left */
		}
		inflight -= (unsigned)n;
		if (!stopping && now_ns() - t0 >= (uint64_t)g_opts->bench_ms *
							   1000000ull)
			stopping = true;
		for (i = 0; i < (unsigned)n; i++) {
			struct iocb *cb = (struct iocb *)(uintptr_t)ev[i].data;

			if (ev[i].res != (int64_t)j->bs) {
				if (!j->err)
					j->err = ev[i].res < 0 ? (int)ev[i].res :
								 -EIO;
				stopping = true;
			} else {
				j->done++;
			}
			if (stopping)
				continue;
			prep(j, cb, fd, (uint8_t *)(uintptr_t)cb->aio_buf);
			list[0] = cb;
			if (io_submit_(ctx, 1, list) != 1) {
				j->err = -errno;
				stopping = true;
				continue;
			}
			inflight++;
		}
	}
	j->ns = now_ns() - t0;
	io_destroy_(ctx);
	return j->err;
}

/* sc_blkio() - the measurement matrix on the first (or named) disk. */
int sc_blkio(struct result *r)
{
	static const size_t sizes[] = { 4096, 65536 };
	static const unsigned qds[] = { 1, QD_MAX };
	struct disk d;
	uint8_t *bufs = NULL;
	char dev[64];
	int fd;

	if (disk_find(&d)) {
		res_skip(r, "no virtio disk");
		return 0;
	}
	res_kv(r, "disk", "%s", d.name);
	res_kv(r, "domain", "%s", d.dtype);
	if (!expect(r, !d.ro && d.sectors * 512 >= 16 * BS_MAX,
		    "%s is read-only or too small", d.name))
		return 0;
	snprintf(dev, sizeof(dev), "/dev/%s", d.name);
	fd = open(dev, O_RDWR | O_DIRECT);
	if (!expect(r, fd >= 0, "open %s O_DIRECT: %s", dev, strerror(errno)))
		return 0;
	if (posix_memalign((void **)&bufs, 4096, (size_t)QD_MAX * BS_MAX))
		bufs = NULL;
	if (!expect(r, bufs != NULL, "out of memory"))
		goto out;
	fill_pattern(bufs, (size_t)QD_MAX * BS_MAX, g_opts->seed);
	for (unsigned w = 0; w < 2; w++)
		for (unsigned s = 0; s < 2; s++)
			for (unsigned q = 0; q < 2; q++) {
				struct job j = {
					.write = w, .bs = sizes[s],
					.qd = qds[q],
					.blocks = d.sectors * 512 / sizes[s],
					.rng = g_opts->seed * 7919 + w * 4 +
					       s * 2 + q + 1,
				};
				double secs;
				int err = run_job(&j, fd, bufs);

				if (!expect(r, err == 0, "%s %zu B qd %u: %s",
					    w ? "write" : "read", j.bs, j.qd,
					    strerror(-err)))
					goto out;
				secs = (double)j.ns / 1e9;
				printf("VIOMMU-BENCH name=blk-rand%s size=%zu "
				       "qd=%u count=%u ns=%" PRIu64
				       " ns_per_op=%" PRIu64 " ops_per_s=%.0f "
				       "MBps=%.1f iommu=%s\n",
				       w ? "write" : "read", j.bs, j.qd, j.done,
				       j.ns, j.done ? j.ns / j.done : 0,
				       secs > 0 ? j.done / secs : 0.0,
				       secs > 0 ? (double)j.done * j.bs / secs /
							  1e6 : 0.0, d.dtype);
				fflush(stdout);
			}
out:
	free(bufs);
	close(fd);
	return 0;
}
