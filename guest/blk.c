/*
 * blk.c - the stock virtio-blk driver behind the IOMMU under test.
 *
 * Unlike the DMA-engine scenarios, nothing here drives a device by hand:
 * the guest kernel's own virtio_blk driver (VIRTIO_F_ACCESS_PLATFORM
 * negotiated) maps every request through the DMA API, so every ring and
 * data buffer goes through the kernel's IOMMU layer and, from there, to
 * the IOMMU under test in whatever mode the kernel command line chose
 * (lazy flush queue "DMA-FQ", strict "DMA", passthrough "identity", or no
 * IOMMU in front of the disk at all).
 *
 * blkfs: make an ext2 filesystem on the disk with busybox mke2fs, mount
 * it, write files of several sizes (seeded patterns), fsync, unmount,
 * drop the page cache, mount again and read every byte back; the
 * files' SHA-256 sums (busybox sha256sum) go on the result line so that
 * the host can check, after power-off, that the image holds exactly what
 * the guest wrote (tools/viommu-run does, with debugfs).  The disk is the
 * one named by viommu.blk=NAME on the kernel command line, else the first
 * virtio disk.  The filesystem is left unmounted and clean; it ends 4 MiB
 * before the disk does.
 *
 * blkfault: fault injection as a driver developer uses it.  After making
 * and filling the filesystem, it writes a pattern P1 to a block of the
 * disk's last 4 MiB (raw, O_DIRECT), prints "VIOMMU-INJECT
 * what=blk-fault n=2" (viommu-run tells the server, which makes the next
 * two request-buffer translations of the disk fail as if unmapped), reads
 * another block until a read fails with EIO (the injection has arrived),
 * then writes P2 over P1's block, which must fail with EIO too.  P1's
 * block must still read back as P1 (the device touched nothing for the
 * failed request), the guest's virtio-iommu driver must log the fault for
 * the disk's endpoint, and every file of the filesystem must read back
 * intact: the run goes on.
 *
 * blkiso: two disks in two domains; the second's driver is unbound (its
 * domain, still attached, then maps nothing) and the host makes the second
 * DMA to every page the first has mapped: each access must fault, and the
 * guest's driver must log the faults for the second disk's endpoint.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

#define MNT "/mnt/blk"
#define CMD_TIMEOUT_S 120
#define TAIL_BYTES (4u << 20) /* the disk's end, outside the filesystem */
#define RAW_BLOCK 4096

/* The files blkfs writes: sizes chosen to cross page, segment and
 * request boundaries (1 B, one page, an odd 68 KiB, 1 MiB, 8 MiB). */
static const size_t file_sizes[] = { 1, 4096, 69755, 1u << 20, 8u << 20 };
#define NFILES (sizeof(file_sizes) / sizeof(file_sizes[0]))

/* base() - the last component of @path (in place). */
static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* trim() - drop trailing white space. */
static void trim(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

/*
 * disk_describe() - fill @d for /sys/block/@name: its PCI function (the
 * parent of the virtio device), IOMMU group and domain type, serial,
 * size and read-only flag.  Return: 0; -ENODEV if it is no virtio disk.
 */
static int disk_describe(struct disk *d, const char *name)
{
	char path[PATH_MAX], real[PATH_MAX], buf[64];

	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	snprintf(path, sizeof(path), "/sys/block/%s/device/..", name);
	if (!realpath(path, real))
		return -ENODEV;
	snprintf(d->bdf, sizeof(d->bdf), "%.31s", base(real));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group",
		 d->bdf);
	if (realpath(path, real)) {
		snprintf(d->group, sizeof(d->group), "%.15s", base(real));
		snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%s/type",
			 d->group);
		if (read_file_str(path, d->dtype, sizeof(d->dtype)) < 0)
			snprintf(d->dtype, sizeof(d->dtype), "unknown");
		trim(d->dtype);
	} else {
		snprintf(d->dtype, sizeof(d->dtype), "none");
	}
	snprintf(path, sizeof(path), "/sys/block/%s/serial", name);
	if (read_file_str(path, d->serial, sizeof(d->serial)) >= 0)
		trim(d->serial);
	snprintf(path, sizeof(path), "/sys/block/%s/size", name);
	if (read_file_str(path, buf, sizeof(buf)) >= 0)
		d->sectors = strtoull(buf, NULL, 10);
	snprintf(path, sizeof(path), "/sys/block/%s/ro", name);
	if (read_file_str(path, buf, sizeof(buf)) >= 0)
		d->ro = buf[0] == '1';
	return 0;
}

/*
 * disk_find() - the disk viommu.blk=NAME names, else the first vd* in
 * name order.  Return: 0; -ENODEV.
 */
int disk_find(struct disk *d)
{
	char cmdline[4096], want[32] = "", best[32] = "";
	const char *p;
	struct dirent *de;
	DIR *dir;

	if (read_file_str("/proc/cmdline", cmdline, sizeof(cmdline)) >= 0 &&
	    (p = strstr(cmdline, "viommu.blk=")) != NULL)
		sscanf(p + 11, "%31[a-z0-9]", want);
	if (want[0])
		return disk_describe(d, want);
	dir = opendir("/sys/block");
	if (!dir)
		return -ENODEV;
	while ((de = readdir(dir)) != NULL)
		if (!strncmp(de->d_name, "vd", 2) &&
		    (!best[0] || strcmp(de->d_name, best) < 0))
			snprintf(best, sizeof(best), "%.31s", de->d_name);
	closedir(dir);
	return best[0] ? disk_describe(d, best) : -ENODEV;
}

/*
 * run_cmd() - run busybox applet @argv (argv[0] is the applet), its
 * stdout into @out (NUL-terminated, may be NULL), killed after
 * CMD_TIMEOUT_S.  Return: its exit status; -1 if it could not run or was
 * killed.
 */
static int run_cmd(char *const argv[], char *out, size_t out_size)
{
	int pfd[2], status = -1;
	size_t got = 0;
	uint64_t deadline = now_ns() + CMD_TIMEOUT_S * 1000000000ull;
	pid_t pid;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execv("/bin/busybox", argv);
		_exit(127);
	}
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		char tmp[512];
		ssize_t n = read(pfd[0], tmp, sizeof(tmp));

		if (n > 0) {
			if (out && got + 1 < out_size) {
				size_t k = (size_t)n < out_size - 1 - got ?
						   (size_t)n : out_size - 1 - got;
				memcpy(out + got, tmp, k);
				got += k;
			}
			continue;
		}
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		if (now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			status = -1;
			break;
		}
		usleep(10000);
	}
	close(pfd[0]);
	if (out)
		out[got] = '\0';
	if (status == -1 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* write_one() - file @i: its pattern, written and fsynced. */
static int write_one(unsigned i, uint8_t *buf)
{
	char path[64];
	size_t n = file_sizes[i], done = 0;
	int fd;

	snprintf(path, sizeof(path), MNT "/f%u", i);
	fill_pattern(buf, n, g_opts->seed * 1000 + i);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	while (done < n) {
		ssize_t w = write(fd, buf + done, n - done);

		if (w <= 0) {
			int err = w < 0 ? -errno : -EIO;

			close(fd);
			return err;
		}
		done += (size_t)w;
	}
	if (fsync(fd)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return close(fd) ? -errno : 0;
}

/*
 * check_one() - file @i read back from the disk: its size and every byte
 * against the pattern.  Return: 0; -EIO with *@at the first bad offset;
 * another -errno from the read.
 */
static int check_one(unsigned i, uint8_t *want, uint8_t *got, size_t *at)
{
	char path[64];
	size_t n = file_sizes[i], done = 0;
	int fd;

	snprintf(path, sizeof(path), MNT "/f%u", i);
	fill_pattern(want, n, g_opts->seed * 1000 + i);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	while (done < n + 1) { /* one more: the file must end at n */
		ssize_t r = read(fd, got + done, n + 1 - done);

		if (r < 0) {
			int err = -errno;

			close(fd);
			return err;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	close(fd);
	*at = done != n ? done : first_diff(want, got, n);
	return *at < n || done != n ? -EIO : 0;
}

/* drop_caches() - write back and forget every cached page. */
static void drop_caches(void)
{
	sync();
	write_file_str("/proc/sys/vm/drop_caches", "3");
}

/* do_mount() - ext2 on /dev/@name at MNT. */
static int do_mount(const struct disk *d)
{
	char dev[64];

	snprintf(dev, sizeof(dev), "/dev/%s", d->name);
	return mount(dev, MNT, "ext2", 0, NULL) ? -errno : 0;
}

/* put_sums() - sha256sum of every file onto the result line. */
static void put_sums(struct result *r)
{
	char *argv[NFILES + 2], paths[NFILES][32], out[2048], *line, *save;
	unsigned i;

	argv[0] = "sha256sum";
	for (i = 0; i < NFILES; i++) {
		snprintf(paths[i], sizeof(paths[i]), MNT "/f%u", i);
		argv[i + 1] = paths[i];
	}
	argv[NFILES + 1] = NULL;
	if (!expect(r, run_cmd(argv, out, sizeof(out)) == 0,
		    "sha256sum failed"))
		return;
	for (line = strtok_r(out, "\n", &save), i = 0; line && i < NFILES;
	     line = strtok_r(NULL, "\n", &save), i++) {
		char key[16], sum[65];

		if (sscanf(line, "%64[0-9a-f]", sum) != 1 || strlen(sum) != 64)
			break;
		snprintf(key, sizeof(key), "sha_f%u", i);
		res_kv(r, key, "%s", sum);
	}
	expect(r, i == NFILES, "sha256sum gave %u sums, want %zu", i, NFILES);
}

/*
 * fs_fill() - mke2fs (leaving the disk's last TAIL_BYTES to raw tests),
 * mount, write every file, unmount and drop the caches.  Return: bytes
 * written; 0 after failing @r.
 */
static uint64_t fs_fill(struct result *r, const struct disk *d, uint8_t *a)
{
	char dev[64], blocks[32];
	char *mkfs[] = { "mke2fs", "-q", "-b", "4096", dev, blocks, NULL };
	uint64_t bytes = 0;
	unsigned i;
	int err;

	snprintf(dev, sizeof(dev), "/dev/%s", d->name);
	snprintf(blocks, sizeof(blocks), "%" PRIu64,
		 (d->sectors * 512 - TAIL_BYTES) / 4096);
	if (!expect(r, run_cmd(mkfs, NULL, 0) == 0, "mke2fs %s failed", dev))
		return 0;
	mkdir("/mnt", 0755);
	mkdir(MNT, 0755);
	err = do_mount(d);
	if (!expect(r, err == 0, "mount %s: %s", dev, strerror(-err)))
		return 0;
	for (i = 0; i < NFILES; i++) {
		err = write_one(i, a);
		if (!expect(r, err == 0, "write f%u: %s", i, strerror(-err)))
			break;
		bytes += file_sizes[i];
	}
	umount(MNT);
	drop_caches();
	return r->status == RES_FAIL ? 0 : bytes;
}

/*
 * fs_verify() - mount, read every file back byte for byte (after a cache
 * drop, so from the disk), put the SHA-256 sums on @r when asked, unmount.
 */
static void fs_verify(struct result *r, const struct disk *d, uint8_t *a,
		      uint8_t *b, bool sums)
{
	size_t at = 0;
	unsigned i;
	int err;

	drop_caches();
	err = do_mount(d);
	if (!expect(r, err == 0, "remount /dev/%s: %s", d->name,
		    strerror(-err)))
		return;
	for (i = 0; i < NFILES; i++) {
		err = check_one(i, a, b, &at);
		if (!expect(r, err == 0, "read back f%u: %s at byte %zu", i,
			    strerror(-err), at))
			break;
		r->bytes_verified += file_sizes[i];
	}
	if (sums && r->status != RES_FAIL)
		put_sums(r);
	expect(r, umount(MNT) == 0, "umount: %s", strerror(errno));
	sync();
}

/*
 * disk_prepare() - the disk both scenarios use, described on @r, and the
 * two pattern buffers.  Return: 0; -1 (skipped or failed on @r).
 */
static int disk_prepare(struct result *r, struct disk *d, uint8_t **a,
			uint8_t **b)
{
	size_t max = file_sizes[NFILES - 1] + 1;

	if (disk_find(d)) {
		res_skip(r, "no virtio disk (is virtio_blk loaded and a "
			 "virtio-blk function served?)");
		return -1;
	}
	res_kv(r, "disk", "%s", d->name);
	res_kv(r, "bdf", "%s", d->bdf);
	res_kv(r, "domain", "%s", d->dtype);
	res_kv(r, "serial", "%s", d->serial[0] ? d->serial : "-");
	res_kv(r, "sectors", "%" PRIu64, d->sectors);
	if (!expect(r, !d->ro, "%s is read-only", d->name) ||
	    !expect(r, d->sectors >= 32768, "%s has %" PRIu64 " sectors, "
		    "want >= 16 MiB", d->name, d->sectors))
		return -1;
	*a = malloc(max);
	*b = malloc(max);
	if (expect(r, *a && *b, "out of memory"))
		return 0;
	free(*a);
	free(*b);
	return -1;
}

/* sc_blkfs() - the filesystem round trip on a virtio disk. */
int sc_blkfs(struct result *r)
{
	struct disk d;
	uint8_t *a, *b;
	uint64_t t0 = now_ns(), bytes;

	if (disk_prepare(r, &d, &a, &b))
		return 0;
	bytes = fs_fill(r, &d, a);
	if (bytes)
		fs_verify(r, &d, a, b, true);
	res_kv(r, "files", "%zu", NFILES);
	res_kv(r, "bytes", "%" PRIu64, bytes);
	res_kv(r, "fs_ms", "%" PRIu64, (now_ns() - t0) / 1000000);
	free(a);
	free(b);
	return 0;
}

/* ---- blkfault ---------------------------------------------------------- */

/* raw_io() - one O_DIRECT 4 KiB read or write at @off: 0 or -errno. */
static int raw_io(int fd, bool write, uint64_t off, uint8_t *buf)
{
	ssize_t n = write ? pwrite(fd, buf, RAW_BLOCK, (off_t)off) :
			    pread(fd, buf, RAW_BLOCK, (off_t)off);

	if (n < 0)
		return -errno;
	return n == RAW_BLOCK ? 0 : -EIO;
}

/*
 * fault_requests() - ask the host for two injected faults, then find the
 * first read of block @y that fails (the injection has arrived: the first
 * fault is spent) and write @p2 over block @x, which must fail too.
 * Return: whether both failed as they should (else @r failed).
 */
static bool fault_requests(struct result *r, int fd, uint64_t x, uint64_t y,
			   uint8_t *p2, uint8_t *tmp)
{
	uint64_t end = now_ns() + 10000000000ull;
	unsigned reads = 0;
	int err = 0;

	/* the driver's fault line must not fall in an earlier scenario's
	 * rate-limit window (it would be suppressed, not logged) */
	wait_fault_log_window();
	printf("VIOMMU-INJECT what=blk-fault n=2\n");
	fflush(stdout);
	while (now_ns() < end) {
		reads++;
		err = raw_io(fd, false, y, tmp);
		if (err)
			break;
		usleep(20000);
	}
	res_kv(r, "reads_before_fault", "%u", reads - 1);
	if (!expect(r, err == -EIO, "no read failed within 10 s of the "
		    "injection (last: %s)", strerror(-err)))
		return false;
	err = raw_io(fd, true, x, p2);
	return expect(r, err == -EIO, "write with an injected fault: %s, "
		      "want EIO", err ? strerror(-err) : "succeeded");
}

/*
 * raw_faults() - on the disk's tail (outside the filesystem): write P1 to
 * block X, have an injected fault end a read and then a write of P2 to X,
 * then read X back: the failed write must have left P1 on the disk, and
 * the disk must go on working.
 */
static void raw_faults(struct result *r, const struct disk *d)
{
	uint64_t x = d->sectors * 512 - TAIL_BYTES, y = x + RAW_BLOCK;
	uint8_t *buf = NULL;
	char dev[64], needle[64];
	bool logged;
	int fd, err;

	snprintf(dev, sizeof(dev), "/dev/%s", d->name);
	fd = open(dev, O_RDWR | O_DIRECT);
	if (!expect(r, fd >= 0, "open %s: %s", dev, strerror(errno)))
		return;
	if (posix_memalign((void **)&buf, 4096, 3 * RAW_BLOCK))
		buf = NULL;
	if (!expect(r, buf != NULL, "out of memory"))
		goto out;
	fill_pattern(buf, RAW_BLOCK, g_opts->seed + 101);            /* P1 */
	fill_pattern(buf + RAW_BLOCK, RAW_BLOCK, g_opts->seed + 202); /* P2 */
	err = raw_io(fd, true, x, buf);
	if (!expect(r, err == 0, "write P1: %s", strerror(-err)) ||
	    !fault_requests(r, fd, x, y, buf + RAW_BLOCK, buf + 2 * RAW_BLOCK))
		goto out;
	err = raw_io(fd, false, x, buf + 2 * RAW_BLOCK);
	if (expect(r, err == 0, "read after the faults: %s", strerror(-err)))
		expect(r, !memcmp(buf, buf + 2 * RAW_BLOCK, RAW_BLOCK),
		       "block X changed by the write that faulted (first "
		       "difference at %zu)", first_diff(buf, buf + 2 *
							  RAW_BLOCK,
							  RAW_BLOCK));
	/* The device reported the faults to the IOMMU; the guest's driver
	 * logs them for this endpoint. */
	snprintf(needle, sizeof(needle), "fault from EP %u ",
		 endpoint_id(d->bdf));
	logged = wait_kmsg(needle, 6000);
	res_kv(r, "fault_logged", "%d", logged);
	expect(r, logged, "the virtio-iommu driver logged no \"%s\"",
	       needle);
	res_kv(r, "ioerr_logged", "%d", wait_kmsg("I/O error, dev ", 0));
out:
	free(buf);
	close(fd);
}

/*
 * sc_blkfault() - fault injection for driver testing: a filesystem made
 * and filled, then two requests outside it ended by injected translation
 * faults (the guest sees EIO for those only, the data written before
 * stays, the driver logs the faults), then every file read back intact.
 */
int sc_blkfault(struct result *r)
{
	struct disk d;
	uint8_t *a, *b;

	if (disk_prepare(r, &d, &a, &b))
		return 0;
	if (!strcmp(d.dtype, "none")) {
		res_skip(r, "%s has no IOMMU in front of it: no translation "
			 "to fail", d.name);
	} else if (fs_fill(r, &d, a)) {
		raw_faults(r, &d);
		if (r->status != RES_FAIL)
			fs_verify(r, &d, a, b, false);
	}
	free(a);
	free(b);
	return 0;
}

/* ---- blkiso ------------------------------------------------------------ */

/* disk_nth() - the @n-th virtio disk in name order (0: vda). */
static int disk_nth(struct disk *d, unsigned int n)
{
	char name[32];

	snprintf(name, sizeof(name), "vd%c", 'a' + n);
	return disk_describe(d, name);
}

/*
 * sc_blkiso() - two disks in two domains: the host makes the second
 * (vdb) DMA to every IOVA the first (vda) has mapped, as a device
 * following forged descriptors would (viommu-server's test-only
 * blk-forge).  vdb's driver is unbound first, so its domain maps nothing
 * and every access must fault (with vdb's rings mapped, the same IOVAs
 * would reach vdb's own rings: the allocators of two idle domains hand
 * out the same addresses).  The server counts what each access reached
 * and viommu-run fails the scenario unless some faulted and none reached
 * vda's memory; here the guest checks the disks are in different IOMMU
 * groups, that its driver logged faults for vdb's endpoint, and that vda
 * still works.
 */
int sc_blkiso(struct result *r)
{
	struct disk v, a;
	char dev[64], needle[64], path[PATH_MAX], real[PATH_MAX];
	uint8_t *buf = NULL;
	bool logged;
	int fd, err;

	if (disk_nth(&v, 0) || disk_nth(&a, 1)) {
		res_skip(r, "needs two virtio disks (vda, vdb)");
		return 0;
	}
	res_kv(r, "victim", "%s@%s", v.name, v.bdf);
	res_kv(r, "attacker", "%s@%s", a.name, a.bdf);
	res_kv(r, "domain", "%s", v.dtype);
	if (!strcmp(v.dtype, "none") || !strcmp(v.dtype, "identity")) {
		res_skip(r, "domain %s: no isolation to test", v.dtype);
		return 0;
	}
	if (!expect(r, v.group[0] && a.group[0] && strcmp(v.group, a.group),
		    "vda and vdb share IOMMU group %s", v.group))
		return 0;
	/* The attacker's driver lets go of its rings: its domain (still
	 * attached) then maps nothing, so every forged access must fault. */
	snprintf(path, sizeof(path), "/sys/block/%s/device", a.name);
	if (!expect(r, realpath(path, real) != NULL, "%s: %s", path,
		    strerror(errno)) ||
	    !expect(r, write_file_str("/sys/bus/virtio/drivers/virtio_blk/"
				      "unbind", base(real)) == 0,
		    "unbind %s from virtio_blk", base(real)))
		return 0;
	/* In lazy mode the unmaps of the freed rings wait in the flush
	 * queue (10 ms timer): let them reach the device first. */
	usleep(500000);
	wait_fault_log_window(); /* as in fault_requests() */
	printf("VIOMMU-INJECT what=blk-forge\n");
	fflush(stdout);
	snprintf(needle, sizeof(needle), "fault from EP %u ",
		 endpoint_id(a.bdf));
	logged = wait_kmsg(needle, 6000);
	res_kv(r, "attacker_faults_logged", "%d", logged);
	expect(r, logged, "the virtio-iommu driver logged no \"%s\" for "
	       "the forged accesses", needle);
	snprintf(dev, sizeof(dev), "/dev/%s", v.name);
	fd = open(dev, O_RDONLY | O_DIRECT);
	if (!expect(r, fd >= 0, "open %s: %s", dev, strerror(errno)))
		return 0;
	if (posix_memalign((void **)&buf, 4096, RAW_BLOCK))
		buf = NULL;
	err = buf ? raw_io(fd, false, 0, buf) : -ENOMEM;
	expect(r, err == 0, "%s after the forged accesses: %s", v.name,
	       strerror(-err));
	free(buf);
	close(fd);
	return 0;
}
