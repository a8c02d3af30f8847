/*
 * vfio.c - finding the DMA engines and opening them from user space.
 *
 * Engines are the PCI functions 1234:11e8 under /sys/bus/pci/devices.
 * VFIO mode (every scenario but identity): the function is bound to
 * vfio-pci through driver_override + drivers_probe, its IOMMU group is put
 * in a type1v2 container (one container = one IOMMU domain), BAR0 is
 * mmapped through the VFIO region info and bus mastering is enabled through
 * the VFIO config region.  MAP_DMA / UNMAP_DMA on the container become
 * virtio-iommu MAP / UNMAP requests of the guest kernel.  Sysfs mode
 * (identity): the function is unbound from every driver, BAR0 is mmapped
 * from resource0 and the device DMAs to guest-physical addresses found in
 * /proc/self/pagemap, through the group's default (identity) domain.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest.h"

#define SYSPCI "/sys/bus/pci/devices"

/* read_hex() - read a sysfs hex attribute of device @bdf. */
static int read_hex(const char *bdf, const char *attr, unsigned long *v)
{
	char path[PATH_MAX], buf[64];
	int err;

	snprintf(path, sizeof(path), SYSPCI "/%s/%s", bdf, attr);
	err = read_file_str(path, buf, sizeof(buf));
	if (err)
		return err;
	*v = strtoul(buf, NULL, 16);
	return 0;
}

/* link_base() - the last component of the symlink @path, or -errno. */
static int link_base(const char *path, char *buf, size_t size)
{
	char target[PATH_MAX];
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	const char *slash;

	if (n < 0)
		return -errno;
	target[n] = 0;
	slash = strrchr(target, '/');
	slash = slash ? slash + 1 : target;
	if (strlen(slash) >= size) /* a cut name would name something else */
		return -ENAMETOOLONG;
	memcpy(buf, slash, strlen(slash) + 1);
	return 0;
}

/* eng_group_of() - IOMMU group number of @bdf, or -1 without one. */
static int eng_group_of(const char *bdf)
{
	char path[PATH_MAX], name[64];

	snprintf(path, sizeof(path), SYSPCI "/%s/iommu_group", bdf);
	if (link_base(path, name, sizeof(name)))
		return -1;
	return atoi(name);
}

/* cmp_eng() - qsort order of engines: by PCI address. */
static int cmp_eng(const void *a, const void *b)
{
	return strcmp(((const struct eng *)a)->bdf,
		      ((const struct eng *)b)->bdf);
}

/* eng_init() - an unopened engine at @bdf. */
static void eng_init(struct eng *e, const char *bdf)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->bdf, sizeof(e->bdf), "%.*s", (int)sizeof(e->bdf) - 1, bdf);
	e->group = bdf[0] ? eng_group_of(bdf) : -1;
	e->groupfd = -1;
	e->devfd = -1;
	e->cfgfd = -1;
}

/* eng_find_all() - the engines present, sorted by address; return count. */
int eng_find_all(struct eng *e, int max)
{
	DIR *d = opendir(SYSPCI);
	struct dirent *de;
	unsigned long ven, dev;
	int n = 0, i;

	for (i = 0; i < max; i++)
		eng_init(&e[i], "");
	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < max) {
		if (de->d_name[0] == '.')
			continue;
		if (read_hex(de->d_name, "vendor", &ven) ||
		    read_hex(de->d_name, "device", &dev))
			continue;
		if (ven != ENG_VENDOR || dev != ENG_DEVICE)
			continue;
		eng_init(&e[n++], de->d_name);
	}
	closedir(d);
	qsort(e, (size_t)n, sizeof(*e), cmp_eng);
	return n;
}

/* eng_driver() - name of the driver bound to @e, or -ENOENT. */
int eng_driver(const struct eng *e, char *buf, size_t size)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), SYSPCI "/%s/driver", e->bdf);
	return link_base(path, buf, size);
}

/* unbind_current() - unbind @e from whatever driver holds it. */
static int unbind_current(struct eng *e)
{
	char path[PATH_MAX], drv[64];

	if (eng_driver(e, drv, sizeof(drv)))
		return 0;
	snprintf(path, sizeof(path), SYSPCI "/%s/driver/unbind", e->bdf);
	return write_file_str(path, e->bdf);
}

/* eng_bind_vfio() - bind @e to vfio-pci (driver_override, drivers_probe). */
int eng_bind_vfio(struct eng *e)
{
	char path[PATH_MAX], drv[64];
	int err;

	if (!eng_driver(e, drv, sizeof(drv)) && !strcmp(drv, "vfio-pci"))
		return 0;
	snprintf(path, sizeof(path), SYSPCI "/%s/driver_override", e->bdf);
	err = write_file_str(path, "vfio-pci");
	if (err)
		return err;
	err = unbind_current(e);
	if (err)
		return err;
	err = write_file_str("/sys/bus/pci/drivers_probe", e->bdf);
	if (err)
		return err;
	if (eng_driver(e, drv, sizeof(drv)) || strcmp(drv, "vfio-pci"))
		return -ENODEV;
	e->group = eng_group_of(e->bdf);
	return 0;
}

/* eng_unbind() - unbind @e and clear its driver_override. */
int eng_unbind(struct eng *e)
{
	char path[PATH_MAX];
	int err = unbind_current(e);

	if (err)
		return err;
	snprintf(path, sizeof(path), SYSPCI "/%s/driver_override", e->bdf);
	return write_file_str(path, "\n");
}

/* ctr_open() - a new type1v2-capable VFIO container. */
int ctr_open(struct ctr *c)
{
	memset(c, 0, sizeof(*c));
	c->next_iova = IOVA_BASE;
	c->fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (c->fd < 0)
		return -errno;
	if (ioctl(c->fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION ||
	    ioctl(c->fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1) {
		close(c->fd);
		c->fd = -1;
		return -ENOTSUP;
	}
	return 0;
}

/* ctr_close() - close the container (its domain goes with it). */
void ctr_close(struct ctr *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* group_join() - open @e's group and put it in container @c. */
static int group_join(struct ctr *c, struct eng *e)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	struct vfio_iommu_type1_info info = { .argsz = sizeof(info) };
	char path[64];

	if (e->group < 0)
		return -ENODEV;
	snprintf(path, sizeof(path), "/dev/vfio/%d", e->group);
	e->groupfd = open(path, O_RDWR | O_CLOEXEC);
	if (e->groupfd < 0)
		return -errno;
	if (ioctl(e->groupfd, VFIO_GROUP_GET_STATUS, &st) ||
	    !(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		return -EPERM;
	if (ioctl(e->groupfd, VFIO_GROUP_SET_CONTAINER, &c->fd))
		return -errno;
	e->ctr = c;
	if (c->ngroups++ == 0) {
		if (ioctl(c->fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
			return -errno;
		if (!ioctl(c->fd, VFIO_IOMMU_GET_INFO, &info) &&
		    (info.flags & VFIO_IOMMU_INFO_PGSIZES))
			c->pgsizes = info.iova_pgsizes;
		if (ctr_iova_ranges(c, c->ranges, 16, &c->nranges))
			c->nranges = 0;
	}
	return 0;
}

/* region() - offset and size of VFIO region @index of @e's device. */
static int region(struct eng *e, unsigned index, off_t *off, size_t *size)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = index };

	if (ioctl(e->devfd, VFIO_DEVICE_GET_REGION_INFO, &ri))
		return -errno;
	*off = (off_t)ri.offset;
	*size = (size_t)ri.size;
	return 0;
}

/* device_open() - device fd, BAR0 mapping, config region, bus master. */
static int device_open(struct eng *e)
{
	off_t bar_off = 0;
	size_t cfg_size;
	void *p;
	int err;

	e->devfd = ioctl(e->groupfd, VFIO_GROUP_GET_DEVICE_FD, e->bdf);
	if (e->devfd < 0)
		return -errno;
	err = region(e, VFIO_PCI_BAR0_REGION_INDEX, &bar_off, &e->bar_size);
	if (err)
		return err;
	err = region(e, VFIO_PCI_CONFIG_REGION_INDEX, &e->cfg_off, &cfg_size);
	if (err)
		return err;
	if (!e->bar_size)
		return -ENODEV;
	p = mmap(NULL, e->bar_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 e->devfd, bar_off);
	if (p == MAP_FAILED)
		return -errno;
	e->bar = p;
	err = eng_cfg_busmaster(e);
	if (err)
		return err;
	return eng_identify(e);
}

/*
 * ctr_add() - open engine @e through VFIO in container @c: bind vfio-pci,
 * join the group (the first group sets the type1v2 IOMMU), get the device,
 * map BAR0 and identify it.  On failure @e is closed again.
 */
int ctr_add(struct ctr *c, struct eng *e)
{
	int err;

	err = eng_bind_vfio(e);
	if (!err)
		err = group_join(c, e);
	if (!err)
		err = device_open(e);
	if (err)
		eng_close(e);
	return err;
}

/* eng_close() - release BAR, device, group (leaving the container). */
void eng_close(struct eng *e)
{
	if (e->bar)
		munmap((void *)e->bar, e->bar_size);
	e->bar = NULL;
	if (e->devfd >= 0)
		close(e->devfd);
	e->devfd = -1;
	if (e->cfgfd >= 0)
		close(e->cfgfd);
	e->cfgfd = -1;
	if (e->groupfd >= 0) {
		if (e->ctr) {
			ioctl(e->groupfd, VFIO_GROUP_UNSET_CONTAINER);
			e->ctr->ngroups--;
		}
		close(e->groupfd);
	}
	e->groupfd = -1;
	e->ctr = NULL;
}

/* ctr_map_prot() - VFIO_IOMMU_MAP_DMA with the given device access. */
int ctr_map_prot(struct ctr *c, void *va, size_t size, uint64_t iova,
		 bool read, bool write)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.vaddr = (uintptr_t)va,
		.iova = iova,
		.size = size,
	};

	m.flags = (read ? VFIO_DMA_MAP_FLAG_READ : 0) |
		  (write ? VFIO_DMA_MAP_FLAG_WRITE : 0);
	if (ioctl(c->fd, VFIO_IOMMU_MAP_DMA, &m))
		return -errno;
	return 0;
}

/* ctr_map() - map readable, and writable by the device if @write. */
int ctr_map(struct ctr *c, void *va, size_t size, uint64_t iova, bool write)
{
	return ctr_map_prot(c, va, size, iova, true, write);
}

/* ctr_unmap() - VFIO_IOMMU_UNMAP_DMA; *done gets the bytes unmapped. */
int ctr_unmap(struct ctr *c, uint64_t iova, size_t size, uint64_t *done)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.iova = iova,
		.size = size,
	};

	if (ioctl(c->fd, VFIO_IOMMU_UNMAP_DMA, &u))
		return -errno;
	if (done)
		*done = u.size;
	return 0;
}

/* find_iova_cap() - the IOVA-range capability in an info buffer. */
static const struct vfio_iommu_type1_info_cap_iova_range *
find_iova_cap(const struct vfio_iommu_type1_info *info, size_t len)
{
	const struct vfio_info_cap_header *h;
	uint32_t off;

	if (!(info->flags & VFIO_IOMMU_INFO_CAPS))
		return NULL;
	for (off = info->cap_offset; off && off + sizeof(*h) <= len;
	     off = h->next) {
		h = (const void *)((const char *)info + off);
		if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)
			return (const void *)h;
	}
	return NULL;
}

/* ctr_iova_ranges() - the usable IOVA ranges as start,end pairs. */
int ctr_iova_ranges(struct ctr *c, uint64_t *ranges, int max, int *n)
{
	static uint64_t buf[512];
	struct vfio_iommu_type1_info *info = (void *)buf;
	const struct vfio_iommu_type1_info_cap_iova_range *cap;
	uint32_t i;

	memset(buf, 0, sizeof(buf));
	info->argsz = sizeof(buf);
	if (ioctl(c->fd, VFIO_IOMMU_GET_INFO, info))
		return -errno;
	cap = find_iova_cap(info, sizeof(buf));
	if (!cap)
		return -ENOENT;
	*n = 0;
	for (i = 0; i < cap->nr_iovas && *n < max; i++) {
		ranges[2 * *n] = cap->iova_ranges[i].start;
		ranges[2 * *n + 1] = cap->iova_ranges[i].end;
		(*n)++;
	}
	return 0;
}

/*
 * usable() - whether [iova, iova + size) lies in one usable range; if not,
 * *next gets the start of the next range above @iova (or 0).
 */
static bool usable(const struct ctr *c, uint64_t iova, size_t size,
		   uint64_t *next)
{
	uint64_t best = 0;
	int i;

	if (!c->nranges)
		return true;
	for (i = 0; i < c->nranges; i++) {
		uint64_t s = c->ranges[2 * i], e = c->ranges[2 * i + 1];

		if (iova >= s && iova + size - 1 <= e)
			return true;
		if (s > iova && (!best || s < best))
			best = s;
	}
	*next = best;
	return false;
}

/* ctr_alloc_iova() - next free IOVA for @size bytes (a guard page after). */
uint64_t ctr_alloc_iova(struct ctr *c, size_t size)
{
	uint64_t align = size >= (2ul << 20) ? (2ul << 20) : PAGE;
	uint64_t iova = c->next_iova, next = 0;

	for (;;) {
		iova = (iova + align - 1) & ~(align - 1);
		if (iova + size > IOVA_LIMIT)
			return 0;
		if (usable(c, iova, size, &next))
			break;
		if (!next)
			return 0;
		iova = next;
	}
	c->next_iova = iova + size + PAGE;
	return iova;
}

/* buf_alloc() - anonymous, populated, locked memory aligned to @align. */
int buf_alloc(struct dmabuf *b, size_t size, size_t align)
{
	uintptr_t p;

	memset(b, 0, sizeof(*b));
	if (align < PAGE)
		align = PAGE;
	size = (size + PAGE - 1) & ~(PAGE - 1);
	b->raw_size = size + align - PAGE;
	b->raw = mmap(NULL, b->raw_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (b->raw == MAP_FAILED) {
		b->raw = NULL;
		return -errno;
	}
	p = ((uintptr_t)b->raw + align - 1) & ~(uintptr_t)(align - 1);
	b->va = (uint8_t *)p;
	b->size = size;
	mlock(b->va, size);
	memset(b->va, 0, size);
	return 0;
}

/* buf_free() - release a buffer (unmap it from its container first). */
void buf_free(struct dmabuf *b)
{
	if (b->raw)
		munmap(b->raw, b->raw_size);
	memset(b, 0, sizeof(*b));
}

/* buf_map() - map @b at a fresh IOVA of @c, readable, writable if @write. */
int buf_map(struct ctr *c, struct dmabuf *b, bool write)
{
	uint64_t iova = ctr_alloc_iova(c, b->size);
	int err;

	if (!iova)
		return -ENOSPC;
	err = ctr_map(c, b->va, b->size, iova, write);
	if (err)
		return err;
	b->iova = iova;
	b->mapped = true;
	return 0;
}

/* buf_unmap() - unmap @b; -EIO if VFIO unmapped a different size. */
int buf_unmap(struct ctr *c, struct dmabuf *b)
{
	uint64_t done = 0;
	int err;

	if (!b->mapped)
		return 0;
	err = ctr_unmap(c, b->iova, b->size, &done);
	b->mapped = false;
	if (err)
		return err;
	return done == b->size ? 0 : -EIO;
}

/* virt_to_phys() - guest-physical address of @va (root, page present). */
int virt_to_phys(const void *va, uint64_t *pa)
{
	uint64_t ent, vpn = (uintptr_t)va / PAGE;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = pread(fd, &ent, sizeof(ent), (off_t)(vpn * sizeof(ent)));
	close(fd);
	if (n != sizeof(ent))
		return -EIO;
	if (!(ent & (1ull << 63)) || !(ent & ((1ull << 55) - 1)))
		return -ENOENT;
	*pa = (ent & ((1ull << 55) - 1)) * PAGE + (uintptr_t)va % PAGE;
	return 0;
}

/*
 * eng_open_sysfs() - open @e without VFIO: unbind it, mmap resource0, open
 * its config space, enable memory decoding and bus mastering.
 */
int eng_open_sysfs(struct eng *e)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, err;
	void *p;

	err = eng_unbind(e);
	if (err)
		return err;
	snprintf(path, sizeof(path), SYSPCI "/%s/config", e->bdf);
	e->cfgfd = open(path, O_RDWR | O_CLOEXEC);
	if (e->cfgfd < 0)
		return -errno;
	snprintf(path, sizeof(path), SYSPCI "/%s/resource0", e->bdf);
	fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !st.st_size) {
		close(fd);
		return -ENODEV;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
		 MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -errno;
	e->bar = p;
	e->bar_size = (size_t)st.st_size;
	err = eng_cfg_busmaster(e);
	if (err)
		return err;
	return eng_identify(e);
}
