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
 * virtio disk.  The filesystem is left unmounted and clean.
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

/* fs_roundtrip() - mkfs, write, remount, verify; the disk unmounted after. */
static void fs_roundtrip(struct result *r, const struct disk *d, uint8_t *a,
		      uint8_t *b)
{
	char dev[64];
	char *mkfs[] = { "mke2fs", "-q", "-b", "4096", dev, NULL };
	uint64_t bytes = 0, t0;
	unsigned i;
	size_t at = 0;
	int err;

	snprintf(dev, sizeof(dev), "/dev/%s", d->name);
	t0 = now_ns();
	if (!expect(r, run_cmd(mkfs, NULL, 0) == 0, "mke2fs %s failed", dev))
		return;
	mkdir("/mnt", 0755);
	mkdir(MNT, 0755);
	err = do_mount(d);
	if (!expect(r, err == 0, "mount %s: %s", dev, strerror(-err)))
		return;
	for (i = 0; i < NFILES; i++) {
		err = write_one(i, a);
		if (!expect(r, err == 0, "write f%u: %s", i, strerror(-err)))
			break;
		bytes += file_sizes[i];
	}
	umount(MNT);
	drop_caches();
	if (r->status == RES_FAIL)
		return;
	err = do_mount(d);
	if (!expect(r, err == 0, "remount %s: %s", dev, strerror(-err)))
		return;
	for (i = 0; i < NFILES; i++) {
		err = check_one(i, a, b, &at);
		if (!expect(r, err == 0, "read back f%u: %s at byte %zu", i,
			    strerror(-err), at))
			break;
		r->bytes_verified += file_sizes[i];
	}
	if (r->status != RES_FAIL)
		put_sums(r);
	expect(r, umount(MNT) == 0, "umount: %s", strerror(errno));
	sync();
	res_kv(r, "files", "%zu", NFILES);
	res_kv(r, "bytes", "%" PRIu64, bytes);
	res_kv(r, "fs_ms", "%" PRIu64, (now_ns() - t0) / 1000000);
}

/* sc_blkfs() - the filesystem round trip on a virtio disk. */
int sc_blkfs(struct result *r)
{
	struct disk d;
	uint8_t *a, *b;
	size_t max = file_sizes[NFILES - 1] + 1;

	if (disk_find(&d)) {
		res_skip(r, "no virtio disk (is virtio_blk loaded and a "
			 "virtio-blk function served?)");
		return 0;
	}
	res_kv(r, "disk", "%s", d.name);
	res_kv(r, "bdf", "%s", d.bdf);
	res_kv(r, "domain", "%s", d.dtype);
	res_kv(r, "serial", "%s", d.serial[0] ? d.serial : "-");
	res_kv(r, "sectors", "%" PRIu64, d.sectors);
	if (!expect(r, !d.ro, "%s is read-only", d.name))
		return 0;
	if (!expect(r, d.sectors >= 32768, "%s has %" PRIu64 " sectors, "
		    "want >= 16 MiB", d.name, d.sectors))
		return 0;
	a = malloc(max);
	b = malloc(max);
	if (expect(r, a && b, "out of memory"))
		fs_roundtrip(r, &d, a, b);
	free(a);
	free(b);
	return 0;
}
