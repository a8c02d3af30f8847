/*
 * events.c - what the IOMMU device tells the guest on its own reaches the
 * guest's driver: fault reports ("faultlog") and configuration interrupts
 * ("notify").
 *
 * faultlog:
 * Our DMA engine makes two DMAs the IOMMU must refuse (a write to a
 * read-only mapping, a read of an IOVA never mapped).  The device sends a
 * virtio-iommu fault report for each on its event queue; with interrupts
 * (the vfio-user door) the guest's own virtio-iommu driver services the
 * queue and logs "<page|domain> fault from EP <id> at <addr> [<R|W>]".
 * The scenario reads the kernel log and checks that, for each fault, the
 * driver reported exactly what the engine saw (its EXT_FAULT registers:
 * address, reason, access) for this endpoint's ID (its BDF).
 *
 * The driver's messages are rate limited (10 per 5 s): a missing message
 * is looked for after the window.  Without interrupts (x-pci-proxy-dev
 * under TCG; viommu-run says so with viommu.irqs=0 on the kernel command
 * line) the driver never services the queue: the scenario skips.
 *
 * notify: the guest asks the host (a "VIOMMU-INJECT what=..." console
 * line; viommu-run signals viommu-server) for a configuration change of
 * the virtio-iommu, then for DEVICE_NEEDS_RESET, and checks that each
 * arrived as a configuration interrupt (its count in /proc/interrupts)
 * and that the device status the driver reads has NEEDS_RESET (0x40).
 * The device then refuses every request until reset, so notify runs last
 * in its boot.
 */
#include "guest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_WAIT_MS 6000 /* longer than the driver's 5 s rate window */

/* kmsg_has() - whether a kernel log message contains @needle. */
static bool kmsg_has(const char *needle)
{
	char rec[2048];
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	bool found = false;
	ssize_t n;

	if (fd < 0)
		return false;
	while (!found &&
	       ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || errno == EPIPE)) {
		if (n <= 0)
			continue;
		rec[n] = 0;
		found = strstr(rec, needle) != NULL;
	}
	close(fd);
	return found;
}

/*
 * last_fault_us() - the kernel timestamp (us since boot) of the newest
 * fault message of the virtio-iommu driver, or 0.
 */
static uint64_t last_fault_us(void)
{
	char rec[2048];
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	uint64_t last = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || errno == EPIPE) {
		unsigned long long us;

		if (n <= 0)
			continue;
		rec[n] = 0;
		if (strstr(rec, "fault from EP") &&
		    sscanf(rec, "%*u,%*u,%llu", &us) == 1 && us > last)
			last = us;
	}
	close(fd);
	return last;
}

/*
 * quiet_window() - the driver logs at most 10 faults per 5 s: wait until
 * the window of any earlier scenario's faults has passed, so ours are all
 * printed.
 */
static void quiet_window(void)
{
	uint64_t last = last_fault_us(), now;
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	now = (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
	if (last && now < last + 5200000)
		usleep((useconds_t)(last + 5200000 - now));
}

/* wait_kmsg() - poll the kernel log for @needle up to @ms milliseconds. */
bool wait_kmsg(const char *needle, unsigned int ms)
{
	const struct timespec nap = { 0, 50 * 1000 * 1000 };
	uint64_t end = now_ns() + (uint64_t)ms * 1000000;

	do {
		if (kmsg_has(needle))
			return true;
		nanosleep(&nap, NULL);
	} while (now_ns() < end);
	return false;
}

/* endpoint_id() - the endpoint ID the VIOT gives @bdf: its bus/devfn. */
unsigned int endpoint_id(const char *bdf)
{
	unsigned int dom, bus, slot, fn;

	if (sscanf(bdf, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) != 4)
		return ~0u;
	return bus << 8 | slot << 3 | fn;
}

/* iommu_irqs() - interrupts counted for the virtio-iommu's queues. */
static unsigned long iommu_irqs(void)
{
	char line[512];
	unsigned long total = 0;
	FILE *f = fopen("/proc/interrupts", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');

		if (!p || !strstr(line, "virtio0"))
			continue;
		for (p++; *p; ) {
			char *end;
			unsigned long v = strtoul(p, &end, 10);

			if (end == p)
				break;
			total += v;
			p = end;
		}
	}
	fclose(f);
	return total;
}

/*
 * check_report() - the engine's last fault (expected at @iova, access
 * @acc) against the driver's log line.  Return: 1 found; 0 not found.
 */
static int check_report(struct result *r, struct eng *e, uint64_t iova,
			uint32_t acc, const char *what)
{
	char needle[160];
	uint64_t addr;
	uint32_t info, reason;

	eng_fault(e, &addr, &info);
	reason = info >> 8;
	if (!expect(r, addr == iova && (info & 0xff) == acc,
		    "%s: %s: engine fault 0x%llx info 0x%x", e->bdf, what,
		    (unsigned long long)addr, info))
		return 0;
	/* The device reports no-mapping and permission faults as MAPPING:
	 * the driver calls those "page" faults. */
	snprintf(needle, sizeof(needle), "%s fault from EP %u at %#llx [%s]",
		 reason == FAULT_NO_MAPPING || reason == FAULT_PERMISSION ?
		 "page" : "domain", endpoint_id(e->bdf),
		 (unsigned long long)addr, acc == ACC_WRITE ? "W" : "R");
	if (wait_kmsg(needle, LOG_WAIT_MS))
		return 1;
	logmsg("faultlog: no kernel line \"%s\" yet", needle);
	return 0;
}

/* faultlog_run() - the two faults and their reports. */
static void faultlog_run(struct result *r, struct eng *e, struct ctr *c,
			 struct dmabuf *ro)
{
	uint64_t hole = ctr_alloc_iova(c, 16 * PAGE) + 8 * PAGE;
	unsigned long irqs0;
	int found = 0, err;
	uint32_t st;

	quiet_window();
	irqs0 = iommu_irqs();

	err = eng_to_ram(e, 0, ro->iova + PAGE, 64, &st);
	expect(r, err == -EIO, "%s: write to a read-only map not refused",
	       e->bdf);
	if (err == -EIO)
		found += check_report(r, e, ro->iova + PAGE, ACC_WRITE,
				      "write to a read-only map");
	err = eng_to_dev(e, hole + 0x40, 0, 64, &st);
	expect(r, err == -EIO, "%s: read of an unmapped IOVA not refused",
	       e->bdf);
	if (err == -EIO)
		found += check_report(r, e, hole + 0x40, ACC_READ,
				      "read of an unmapped IOVA");
	res_kv(r, "reports", "%d", found);
	res_kv(r, "iommu_irqs", "%lu", iommu_irqs() - irqs0);
	if (found == 2 || r->status != RES_PASS)
		return;
	expect(r, false, "%s: the driver logged %d of 2 fault reports",
	       e->bdf, found);
}

/* sc_faultlog() - the guest's driver reports the faults the device sent. */
int sc_faultlog(struct result *r)
{
	struct eng e[MAX_ENGINES];
	struct dmabuf ro;
	struct ctr c;

	memset(&ro, 0, sizeof(ro));
	if (open_engines(r, e, 1) < 0)
		return 0;
	if (!expect(r, !ctr_open(&c), "cannot open /dev/vfio/vfio"))
		goto out_eng;
	if (attach_engine(r, &c, &e[0]))
		goto out;
	if (!e[0].ours) {
		res_skip(r, "needs our DMA engine (fault registers)");
		goto out;
	}
	if (cmdline_has("viommu.irqs=0")) {
		res_skip(r, "this door has no interrupts (x-pci-proxy-dev under "
			 "TCG), so the driver never services its event queue");
		goto out;
	}
	if (!expect(r, !buf_alloc(&ro, 2 * PAGE, PAGE), "out of memory") ||
	    !expect(r, !buf_map(&c, &ro, false), "VFIO_IOMMU_MAP_DMA failed"))
		goto out;
	res_kv(r, "endpoint", "%u", endpoint_id(e[0].bdf));
	faultlog_run(r, &e[0], &c, &ro);
out:
	buf_unmap(&c, &ro);
	buf_free(&ro);
	ctr_close(&c);
out_eng:
	eng_close(&e[0]);
	return 0;
}

/* config_irqs() - configuration interrupts of virtio0 (MSI-X vector
 * "virtio0-config"; with INTx every interrupt shares one line). */
static unsigned long config_irqs(void)
{
	char line[512];
	unsigned long total = 0;
	FILE *f = fopen("/proc/interrupts", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':'), *end;

		if (!p || !strstr(line, "virtio0-config"))
			continue;
		for (p++;; p = end) {
			unsigned long v = strtoul(p, &end, 10);

			if (end == p)
				break;
			total += v;
		}
	}
	fclose(f);
	return total;
}

/* virtio_status() - the device status byte the driver reads, or -1. */
static int virtio_status(void)
{
	char buf[32];

	if (read_file_str("/sys/bus/virtio/devices/virtio0/status", buf,
			  sizeof(buf)))
		return -1;
	return (int)strtol(buf, NULL, 16);
}

/* inject() - ask the host for @what; wait for a new config interrupt. */
static bool inject(struct result *r, const char *what, unsigned long *irqs)
{
	unsigned long before = *irqs;
	uint64_t end;

	printf("VIOMMU-INJECT what=%s\n", what);
	fflush(stdout);
	end = now_ns() + 10ull * 1000000000;
	while ((*irqs = config_irqs()) == before && now_ns() < end)
		usleep(20000);
	return expect(r, *irqs > before, "no configuration interrupt after "
		      "the injected %s", what);
}

/* sc_notify() - configuration change and needs-reset reach the guest. */
int sc_notify(struct result *r)
{
	unsigned long irqs = config_irqs();
	int st;

	if (!expect(r, virtio_status() >= 0, "no virtio0 status in sysfs"))
		return 0;
	if (cmdline_has("viommu.irqs=0")) {
		res_skip(r, "this door has no interrupts (x-pci-proxy-dev "
			 "under TCG): nothing can reach the driver");
		return 0;
	}
	if (!inject(r, "config", &irqs))
		return 0;
	st = virtio_status();
	expect(r, st >= 0 && !(st & 0x40), "status %#x after a config change",
	       st);
	if (!inject(r, "needs-reset", &irqs))
		return 0;
	st = virtio_status();
	expect(r, st >= 0 && (st & 0x40), "status %#x: no DEVICE_NEEDS_RESET",
	       st);
	res_kv(r, "config_irqs", "%lu", irqs);
	res_kv(r, "device_status", "%#x", st);
	return 0;
}
