/*
 * fuzz_vdev.h - the scaffolding the virtio device fuzz targets
 * (fuzz_virtio_blk, fuzz_virtio_net) share: reading the input, guest
 * RAM and the IOVA window the device's buffers live in, the operations
 * that change the window's mappings or fill its pages, translation of a
 * bus address the way the device must do it, waiting for a used entry,
 * and the check that nothing outside a request's writable buffers
 * changed.
 *
 * Layout: the device's RAM is @pages pages at @ram_gpa (host @ram); the
 * first @ring_pages hold its rings, each mapped read-write at the same
 * page of the IOVA window (@niova pages at @iova_base) by the target's
 * set-up; the other pages are data, mapped by the input.  With @gpa set
 * the device has no IOMMU and bus addresses are guest-physical.
 */
#ifndef FUZZ_VDEV_H
#define FUZZ_VDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <viommu/viommu.h>

#include "refdrv/drvring.h"

#define VF_PAGE 4096u

struct vdev_fuzz {
	const uint8_t *d;      /* the input, consumed from pos */
	size_t n, pos;
	uint8_t *ram;          /* the device's RAM */
	uint64_t ram_gpa;
	uint32_t pages;        /* pages of it the device's buffers use */
	uint32_t ring_pages;   /* the first ones hold the rings */
	uint64_t iova_base;    /* window of niova IOVA pages */
	uint32_t niova;
	bool gpa;              /* no IOMMU: bus addresses are GPAs */
	struct viommu_domain *dom;
	uint8_t *before;       /* RAM before a request (pages bytes) ... */
	uint8_t *may_change;   /* ... and the bytes it may write */
	uint32_t mc_lo, mc_hi; /* pages of may_change marked: [lo, hi) */
};

/* vf_next8(), vf_next_n() - the next input byte(s), 0 past the end. */
uint8_t vf_next8(struct vdev_fuzz *v);
uint64_t vf_next_n(struct vdev_fuzz *v, unsigned int bytes);

/* vf_fail() - "@who: message" on stderr, then abort(). */
void __attribute__((noreturn, format(printf, 2, 3)))
vf_fail(const char *who, const char *fmt, ...);

/*
 * vf_xl_len() - where the bytes from bus address @a go for @access: the
 * RAM offset of the first and, in *@contig, how many follow contiguously
 * (at most @len); or -1 (unmapped, no permission, not the device's RAM)
 * with *@contig the bytes to the end of @a's page (at most @len), which
 * fail alike: every mapping here is whole pages and the RAM's bounds are
 * page-aligned, so a caller may skip them instead of asking per byte.
 */
long vf_xl_len(struct vdev_fuzz *v, uint64_t a, uint32_t len,
	       unsigned int access, uint32_t *contig);
/* vf_xl() - vf_xl_len() of one byte. */
long vf_xl(struct vdev_fuzz *v, uint64_t a, unsigned int access);

/* Operations on the window, each reading its arguments from the input:
 * map 1-4 data pages at any data IOVA page (read, write or both); unmap
 * 1-8 IOVA pages; unmap one ring page or give it back (read-only first,
 * on odd arguments: the rings stay in RAM, only their translation
 * changes); fill a data page with a pattern. */
void vf_op_map(struct vdev_fuzz *v);
void vf_op_unmap(struct vdev_fuzz *v);
void vf_op_ring(struct vdev_fuzz *v);
void vf_op_fill(struct vdev_fuzz *v);

/* vf_op_window() - run the window operation opcode byte @o names (o % 8:
 * 0-1 map, 2 unmap, 3 fill, 6 ring) and return true; false for the
 * opcodes the target gives its own requests (4, 5, 7). */
bool vf_op_window(struct vdev_fuzz *v, uint8_t o);

/* vf_pick_addr() - a bus address for a buffer: a data page of the window
 * (or RAM in GPA mode) or up to two pages past it, sometimes just below
 * it; any offset in the page. */
uint64_t vf_pick_addr(struct vdev_fuzz *v);

/*
 * vf_wait_used() - wait for the chain @tok on ring @r of @dev: 1 when it
 * came back (its used length in *@len), 0 when the device says
 * DEVICE_NEEDS_RESET instead.  A wrong token, a ring error or 20 s
 * without either fail (@who names the target, @what the chain).
 */
int vf_wait_used(const char *who, const char *what, struct drvring *r,
		 struct viommu_virtio_dev *dev, uint64_t tok, uint32_t *len);

/* vf_irq() - send @dev's interrupts where vf_wait_used() sleeps on them
 * (without it, vf_wait_used() spins). */
void vf_irq(const char *who, struct viommu_virtio_dev *dev);

/* vf_snapshot() - note RAM as it is before a request; nothing may change
 * (the data pages: the rings are not checked). */
void vf_snapshot(struct vdev_fuzz *v);
/* vf_may_change() - the request may write RAM [@off, @off + @len). */
void vf_may_change(struct vdev_fuzz *v, uint32_t off, uint32_t len);
/* vf_check_ram() - no data page byte changed since vf_snapshot() unless
 * marked in may_change (the device wrote only where it may). */
void vf_check_ram(const char *who, const struct vdev_fuzz *v);

#endif
