/*
 * fuzz_vdev.c - the scaffolding the virtio device fuzz targets share
 * (see fuzz_vdev.h): input, translation of bus addresses, the window
 * operations, waiting for used entries and the RAM check.
 */
#include "fuzz_vdev.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_irq.h"

uint8_t vf_next8(struct vdev_fuzz *v)
{
	return v->pos < v->n ? v->d[v->pos++] : 0;
}

uint64_t vf_next_n(struct vdev_fuzz *v, unsigned int bytes)
{
	uint64_t x = 0;

	for (unsigned int i = 0; i < bytes; i++)
		x |= (uint64_t)vf_next8(v) << (8 * i);
	return x;
}

void vf_fail(const char *who, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", who);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

long vf_xl_len(struct vdev_fuzz *v, uint64_t a, uint32_t len,
	       unsigned int access, uint32_t *contig)
{
	uint64_t gpa = a, n = len, end = v->ram_gpa + v->pages * VF_PAGE;
	uint64_t to_page_end = VF_PAGE - (a & (VF_PAGE - 1));

	*contig = (uint32_t)(len < to_page_end ? len : to_page_end);
	if (!v->gpa) {
		struct viommu_xlate x;

		if (viommu_domain_lookup(v->dom, a, len, access, &x))
			return -1;
		gpa = x.gpa;
		n = x.len;
	}
	if (gpa < v->ram_gpa || gpa >= end)
		return -1;
	if (n > end - gpa)
		n = end - gpa;
	*contig = (uint32_t)n;
	return (long)(gpa - v->ram_gpa);
}

long vf_xl(struct vdev_fuzz *v, uint64_t a, unsigned int access)
{
	uint32_t c;

	return vf_xl_len(v, a, 1, access, &c);
}

void vf_op_map(struct vdev_fuzz *v)
{
	uint32_t iova = v->ring_pages + vf_next8(v) % (v->niova -
						       v->ring_pages);
	uint32_t n = 1 + vf_next8(v) % 4;
	uint32_t page = v->ring_pages + vf_next8(v) % (v->pages -
						       v->ring_pages);
	unsigned int prot = 1 + vf_next8(v) % 3;

	if (page + n > v->pages)
		n = v->pages - page;
	(void)viommu_domain_map(v->dom, v->iova_base + iova * VF_PAGE,
				v->iova_base + (iova + n) * VF_PAGE - 1,
				v->ram_gpa + page * VF_PAGE, prot);
}

void vf_op_unmap(struct vdev_fuzz *v)
{
	uint32_t iova = v->ring_pages + vf_next8(v) % (v->niova -
						       v->ring_pages);
	uint32_t n = 1 + vf_next8(v) % 8;

	(void)viommu_domain_unmap(v->dom, v->iova_base + iova * VF_PAGE,
				  v->iova_base + (iova + n) * VF_PAGE - 1,
				  NULL);
}

void vf_op_ring(struct vdev_fuzz *v)
{
	uint8_t b = vf_next8(v);
	uint32_t page = b % v->ring_pages;
	uint64_t iova = v->iova_base + page * VF_PAGE;

	(void)viommu_domain_unmap(v->dom, iova, iova + VF_PAGE - 1, NULL);
	if (b & 0x80)
		(void)viommu_domain_map(v->dom, iova, iova + VF_PAGE - 1,
					v->ram_gpa + page * VF_PAGE,
					b & 0x40 ? VIOMMU_READ :
						   VIOMMU_READ | VIOMMU_WRITE);
}

void vf_op_fill(struct vdev_fuzz *v)
{
	uint32_t page = v->ring_pages + vf_next8(v) % (v->pages -
						       v->ring_pages);
	uint8_t seed = vf_next8(v), row[256];

	/* seed + 13 i repeats every 256 bytes: one row, copied (a store per
	 * byte, each checked by ASan, was 6 % of fuzz_virtio_net) */
	for (uint32_t i = 0; i < sizeof(row); i++)
		row[i] = (uint8_t)(seed + i * 13);
	for (uint32_t i = 0; i < VF_PAGE; i += sizeof(row))
		memcpy(v->ram + page * VF_PAGE + i, row, sizeof(row));
}

bool vf_op_window(struct vdev_fuzz *v, uint8_t o)
{
	switch (o % 8) {
	case 0:
	case 1:
		vf_op_map(v);
		return true;
	case 2:
		vf_op_unmap(v);
		return true;
	case 3:
		vf_op_fill(v);
		return true;
	case 6:
		vf_op_ring(v);
		return true;
	default:
		return false;
	}
}

uint64_t vf_pick_addr(struct vdev_fuzz *v)
{
	uint8_t page = vf_next8(v);
	uint64_t off = vf_next_n(v, 2) & 0xfff;
	uint64_t base = v->gpa ? v->ram_gpa : v->iova_base;

	if (page == 0xff)
		return base - VF_PAGE + off; /* below the window */
	if (v->gpa)
		page = (uint8_t)(v->ring_pages + page % (v->pages -
							 v->ring_pages));
	else /* data pages, up to two pages past the window */
		page = (uint8_t)(v->ring_pages + page % (v->niova + 2 -
							 v->ring_pages));
	return base + (uint64_t)page * VF_PAGE + off;
}

/*
 * Interrupts of the devices given to vf_irq() go to one eventfd, so that
 * vf_wait_used() sleeps until a device completes something instead of
 * spinning on sched_yield(), which took the CPU from the device's worker
 * threads (virtio-blk completes there) and from the other fuzz lane: half
 * of fuzz_virtio_blk's profile.  A device may complete without an
 * interrupt (EVENT_IDX, a suppressed ring), so the sleep is a poll of at
 * most 50 us after VF_SPIN empty checks, and the ring is read again after
 * it.
 */
#define VF_SPIN 8

void vf_irq(const char *who, struct viommu_virtio_dev *dev)
{
	if (fuzz_irq_open())
		vf_fail(who, "eventfd: %s", strerror(errno));
	viommu_virtio_dev_set_irq(dev, fuzz_irq_cb, NULL);
}

int vf_wait_used(const char *who, const char *what, struct drvring *r,
		 struct viommu_virtio_dev *dev, uint64_t tok, uint32_t *len)
{
	struct timespec t0, t;
	unsigned int n = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		uint64_t got;
		int err = drvring_get_used(r, &got, len);

		if (err == 0) {
			if (got != tok)
				vf_fail(who, "used token %llu, expected %llu",
					(unsigned long long)got,
					(unsigned long long)tok);
			return 1;
		}
		if (err != -ENOENT)
			vf_fail(who, "driver: used ring error %d", err);
		if (viommu_virtio_dev_status(dev) &
		    VIOMMU_VIRTIO_S_NEEDS_RESET)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 20)
			vf_fail(who, "%s never came back (hang)", what);
		fuzz_irq_idle(n++, VF_SPIN, 50000);
	}
}

/*
 * vf_snapshot() runs before every request: it copies only the data pages
 * (vf_check_ram() skips the rings) and clears only the pages of
 * may_change the last request marked, not all of it (a request marks a
 * few bytes; clearing the whole map per request was most of this).
 */
void vf_snapshot(struct vdev_fuzz *v)
{
	size_t lo = (size_t)v->ring_pages * VF_PAGE;

	memcpy(v->before + lo, v->ram + lo, (size_t)v->pages * VF_PAGE - lo);
	if (v->mc_lo < v->mc_hi)
		memset(v->may_change + (size_t)v->mc_lo * VF_PAGE, 0,
		       (size_t)(v->mc_hi - v->mc_lo) * VF_PAGE);
	v->mc_lo = v->pages;
	v->mc_hi = 0;
}

void vf_may_change(struct vdev_fuzz *v, uint32_t off, uint32_t len)
{
	uint32_t lo = off / VF_PAGE, hi = (off + len + VF_PAGE - 1) / VF_PAGE;

	if (!len)
		return;
	if (off > v->pages * VF_PAGE || len > v->pages * VF_PAGE - off)
		vf_fail("vf_may_change", "0x%x+0x%x outside RAM", off, len);
	memset(v->may_change + off, 1, len);
	if (lo < v->mc_lo)
		v->mc_lo = lo;
	if (hi > v->mc_hi)
		v->mc_hi = hi;
}

void vf_check_ram(const char *who, const struct vdev_fuzz *v)
{
	for (uint32_t p = v->ring_pages * VF_PAGE; p < v->pages * VF_PAGE;
	     p += VF_PAGE) {
		if (!memcmp(v->ram + p, v->before + p, VF_PAGE))
			continue;
		for (uint32_t i = p; i < p + VF_PAGE; i++)
			if (v->ram[i] != v->before[i] && !v->may_change[i])
				vf_fail(who, "RAM offset 0x%x changed outside "
					"the request's writable buffers", i);
	}
}
