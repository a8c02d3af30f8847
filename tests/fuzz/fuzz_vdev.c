/*
 * fuzz_vdev.c - the scaffolding the virtio device fuzz targets share
 * (see fuzz_vdev.h): input, translation of bus addresses, the window
 * operations, waiting for used entries and the RAM check.
 */
#include "fuzz_vdev.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	uint8_t seed = vf_next8(v);

	for (uint32_t i = 0; i < VF_PAGE; i++)
		v->ram[page * VF_PAGE + i] = (uint8_t)(seed + i * 13);
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

int vf_wait_used(const char *who, const char *what, struct drvring *r,
		 struct viommu_virtio_dev *dev, uint64_t tok, uint32_t *len)
{
	struct timespec t0, t;

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
		sched_yield();
	}
}

void vf_snapshot(struct vdev_fuzz *v)
{
	memcpy(v->before, v->ram, (size_t)v->pages * VF_PAGE);
	memset(v->may_change, 0, (size_t)v->pages * VF_PAGE);
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
