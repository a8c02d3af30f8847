/*
 * virtqueue.h - device side of one virtqueue, split or packed, hardened
 * against a hostile driver (DESIGN.md §8).
 *
 * vq_pop() walks the next available descriptor chain (following one level
 * of indirect table when negotiated) and returns it as a list of segments:
 * all device-readable segments first, then all device-writable ones.  It
 * refuses, and marks the queue broken, on: an available index more than
 * the queue size ahead of the last one seen, a descriptor index out of
 * range, a chain longer than the queue size (catches loops), an indirect
 * table whose length is not a multiple of 16, is empty, is longer than the
 * queue maximum, nests another indirect or sets NEXT and INDIRECT together,
 * a readable segment after a writable one, total lengths that overflow 32
 * bits, and a buffer not wholly inside guest RAM.  Nothing is allocated
 * after vq_init(); segments go to an array sized for the largest chain.
 * The commonest chain, one readable descriptor then one writable one in
 * the region the buffer cache holds, is taken in one step (virtqueue.c,
 * pair_ok()) and keeps its buffers' host addresses for the inline
 * vq_read()/vq_write(); any other shape takes the general walk.
 *
 * Guest memory is touched only through the memory layer.  Ring indices are
 * read with acquire semantics and published with release semantics (the
 * driver runs concurrently on another CPU or process).
 *
 * Not thread-safe: the owning device serialises calls.  Every call other
 * than vq_init(), vq_destroy() and vq_reset() must run inside a memory read
 * section (viommu_mem_read_lock) held by the caller: the ring accessors
 * skip the per-access section to keep the per-request cost low, and the
 * device opens one section per batch.
 */
#ifndef VIOMMU_VIRTQUEUE_H
#define VIOMMU_VIRTQUEUE_H

#include <viommu/common.h>
#include <viommu/core.h>
#include <viommu/mem.h>

#include <endian.h>
#include <string.h>

#include "base/util.h"
#include "mem/mem_internal.h"

/* Descriptor flags (split and packed). */
#define VQ_DESC_F_NEXT 1u
#define VQ_DESC_F_WRITE 2u
#define VQ_DESC_F_INDIRECT 4u
#define VQ_DESC_F_AVAIL (1u << 7)  /* packed */
#define VQ_DESC_F_USED (1u << 15)  /* packed */
/* Ring flags. */
#define VQ_AVAIL_F_NO_INTERRUPT 1u /* split: driver's avail.flags */
#define VQ_USED_F_NO_NOTIFY 1u     /* split: device's used.flags */
#define VQ_EVENT_F_ENABLE 0u       /* packed event suppression */
#define VQ_EVENT_F_DISABLE 1u
#define VQ_EVENT_F_DESC 2u

/*
 * struct vq_iommu - the IOVA mode of a device's queues (VIRTIO 1.3 §6.1,
 * VIRTIO_F_ACCESS_PLATFORM with an IOMMU in front of the device).  When a
 * queue has one (vq->io, set by the device core at queue set-up when the
 * feature was negotiated), every ring and indirect-table address is an
 * IOVA of @ep, translated with viommu_translate() for the access the
 * device makes (read what it reads, write what it writes), piece by
 * contiguous piece; data buffers are not touched by the queue (the device
 * model translates them, vq_iommu_xlate()).  A failed translation is
 * reported by the core (its fault callback) and breaks the queue.
 * @inject: data translations left to fail on purpose, as if unmapped
 *          (fault injection for driver tests); decremented atomically by
 *          the threads that translate data (vq_iommu_xlate() with
 *          @may_inject); ring translations never consume it.
 * @faults, @injected: counters (relaxed atomics).
 * Shared by every queue of one device and its I/O threads.
 */
struct vq_iommu {
	struct viommu_endpoint *ep;
	uint32_t inject;
	uint64_t faults, injected;
};

/*
 * vq_iommu_xlate() - translate the piece of [@iova, @iova + @len) that
 * starts at @iova for @access; with @may_inject, an injected fault pending
 * is consumed first instead (reported through the core as a NO_MAPPING
 * fault, as if the address were unmapped).  x->hva
 * may be NULL for RAM without host pointers: the caller then copies
 * through the memory layer at x->gpa.  Thread-safe.
 * Return: 0; -EFAULT (fault reported and counted).
 */
int vq_iommu_xlate(struct vq_iommu *io, uint64_t iova, size_t len,
		   unsigned int access, bool may_inject,
		   struct viommu_xlate *x);

/*
 * struct vq_piece - one contiguous stretch of a buffer a device model
 * moves data to or from: a host pointer, or (NULL) guest RAM without one,
 * copied through the memory layer at @gpa.
 */
struct vq_piece {
	uint8_t *hva;
	uint64_t gpa;
	uint32_t len;
};

/*
 * vq_buf_piece() - the piece of the buffer [@addr, @addr + @len) that
 * starts at @addr, for @access: through @io when the device is in IOVA
 * mode (@io non-NULL; @may_inject as for vq_iommu_xlate()), else @addr is
 * guest-physical.  Thread-safe; call inside a memory read section.
 * Return: 0; -EFAULT (translation fault, reported by the core); -EIO (not
 * guest RAM, or a write to read-only RAM).
 */
int vq_buf_piece(struct vq_iommu *io, struct viommu_mem *mem, uint64_t addr,
		 uint32_t len, unsigned int access, bool may_inject,
		 struct vq_piece *p);

struct vq_elem;

/*
 * vq_elem_pieces() - append to @pc (holding *@npc of @max pieces) the
 * pieces of bytes [@off, @off + @len) of @e's writable (@write) or
 * readable part, each from vq_buf_piece().  Thread-safe; call inside a
 * memory read section.  Return: 0; -EFAULT (translation fault, reported);
 * -EIO (not guest RAM); -E2BIG (more than @max pieces); -ERANGE (past the
 * part).
 */
int vq_elem_pieces(struct vq_iommu *io, struct viommu_mem *mem,
		   const struct vq_elem *e, bool write, uint32_t off,
		   uint32_t len, bool may_inject, struct vq_piece *pc,
		   uint32_t max, uint32_t *npc);

/*
 * vq_pieces_copy() - copy between @buf and pieces @pc[@from, @to), into
 * the guest if @to_guest; pieces without a host pointer go through the
 * memory layer.  Return: 0; -EIO (memory layer refused).
 */
int vq_pieces_copy(struct viommu_mem *mem, const struct vq_piece *pc,
		   uint32_t from, uint32_t to, uint8_t *buf, bool to_guest);

struct vq_seg {
	uint64_t gpa;
	uint32_t len;
	uint32_t write; /* device-writable */
};

/*
 * struct vq_elem - one popped chain.  segs points into the queue's own
 * array and is valid until the next vq_pop().
 */
struct vq_elem {
	uint16_t id;    /* split: head index; packed: buffer ID */
	uint16_t ndesc; /* packed: descriptors the chain used in the ring */
	uint32_t nseg;
	uint32_t nread; /* segs[0..nread) readable, the rest writable */
	uint32_t read_len, write_len;
	struct vq_seg *segs;
	/* host addresses of segs[0] (readable) and segs[1] (writable), set by
	 * the two-descriptor pop when both lie in the buffer cache's region
	 * of region table @tid, else NULL: vq_part_hva() then needs no range
	 * look-up while that table is still the current one */
	uint8_t *rhva, *whva;
	uint64_t tid;
};

struct vq {
	struct viommu_mem *mem;
	const struct viommu_log *log;
	const struct viommu_allocator *alloc;
	const char *name; /* for log lines */
	struct ratelimit rl; /* its log lines (kept across vq_reset) */
	uint16_t max_size;
	struct vq_seg *segs; /* max_size * 2 (a chain plus one indirect) */
	struct mem_cache mc; /* the buffer region last touched (virtqueue.c) */
	/* host addresses of the three ring areas, each NULL unless wholly in
	 * one RAM region (then the general path is taken), valid while the
	 * region table's ID is rc_tid (virtqueue.c, rings_sync) */
	uint64_t rc_tid;
	uint8_t *rc_desc, *rc_drv, *rc_dev;

	bool ready, packed, event_idx, indirect, broken;
	uint16_t size;
	uint64_t desc, driver, device; /* GPAs */

	/* split */
	uint16_t last_avail, used_idx;
	uint16_t avail_shadow; /* the driver's available index, read last */
	/* packed */
	uint16_t next_avail, next_used;
	bool avail_wrap, used_wrap;
	/* driver -> device: kicks asked off (vq_set_kicks), and the split
	 * avail_event last written while off */
	bool kicks_off;
	uint16_t kick_mark;
	uint32_t popped; /* chains popped since vq_init (wraps) */
	/* notification suppression */
	uint16_t signalled_used;
	bool signalled_valid;
	uint32_t pending_used; /* entries pushed since the last notify check */
	/* IOVA mode, or NULL: addresses are GPAs (last: keeps the GPA mode's
	 * hot fields where they were) */
	struct vq_iommu *io;
};

/* vq_init() - allocate the segment array for chains up to @max_size. */
int vq_init(struct vq *vq, struct viommu_mem *mem,
	    const struct viommu_log *log, const struct viommu_allocator *alloc,
	    const char *name, uint16_t max_size);
void vq_destroy(struct vq *vq);

/*
 * vq_configure() - set the ring up from the driver's addresses.  @packed,
 * @event_idx, @indirect come from the negotiated features.  Checks size
 * (power of two for split, 1..max_size), alignment (split: desc 16,
 * avail 2, used 4; packed: desc 16, events 4) and that each ring area is
 * guest RAM.  In IOVA mode (vq->io set before the call) only size and
 * alignment are checked: the rings are translated when used, and a
 * failure then breaks the queue.  Return: 0; -EINVAL.
 */
int vq_configure(struct vq *vq, uint16_t size, uint64_t desc, uint64_t driver,
		 uint64_t device, bool packed, bool event_idx, bool indirect);

/* vq_reset() - back to unconfigured (device reset); vq->io is the owner's. */
void vq_reset(struct vq *vq);

/*
 * vq_pop() - the next available chain.
 * Return: 0 with *e filled; -ENOENT when nothing is available; -EIO when
 * the queue is (now) broken: the reason was logged once.
 */
int vq_pop(struct vq *vq, struct vq_elem *e);

/*
 * vq_unpop() - give back the chain @e that the last vq_pop() returned, as
 * if it had not been popped (a device that took buffers for a packet and
 * found too few).  Several chains are given back newest first.  Nothing
 * is written to the ring; the next vq_pop() reads the chain again.
 */
void vq_unpop(struct vq *vq, const struct vq_elem *e);

/*
 * vq_push_slow() - vq_push() beyond its inline case (packed rings, a used
 * ring without a host pointer, a changed region table, a broken queue).
 */
int vq_push_slow(struct vq *vq, const struct vq_elem *e, uint32_t used_len);

/*
 * vq_push_split() / vq_push_packed() - vq_push()'s inline cases: the
 * used entry (split: VIRTIO 1.3 §2.7.8; packed: the len and ID of the
 * chain's first slot, §2.8.6), then the used index or the slot's flags
 * with release semantics.  @ring is the used ring (split) or the
 * descriptor ring (packed) at its host address; @len is already clamped.
 */
static inline void vq_push_split(struct vq *vq, uint8_t *ring,
				 const struct vq_elem *e, uint32_t len)
{
	uint32_t elem[2] = { htole32(e->id), htole32(len) };

	/* flags, idx, then ring[] of 8-byte entries */
	memcpy(ring + 4 + 8 * (uint64_t)(vq->used_idx & (vq->size - 1)), elem,
	       sizeof(elem));
	vq->used_idx++;
	__atomic_store_n((uint16_t *)(ring + 2), htole16(vq->used_idx),
			 __ATOMIC_RELEASE);
}

static inline void vq_push_packed(struct vq *vq, uint8_t *ring,
				  const struct vq_elem *e, uint32_t len)
{
	uint8_t *d = ring + 16 * (uint64_t)vq->next_used;
	uint32_t l = htole32(len), next;
	uint16_t id = htole16(e->id), flags = 0;

	if (vq->used_wrap)
		flags |= VQ_DESC_F_AVAIL | VQ_DESC_F_USED;
	if (len)
		flags |= VQ_DESC_F_WRITE;
	memcpy(d + 8, &l, sizeof(l));
	memcpy(d + 12, &id, sizeof(id));
	__atomic_store_n((uint16_t *)(d + 14), htole16(flags),
			 __ATOMIC_RELEASE);
	next = (uint32_t)vq->next_used + (e->ndesc ? e->ndesc : 1);
	if (next >= vq->size) {
		next -= vq->size;
		vq->used_wrap = !vq->used_wrap;
	}
	vq->next_used = (uint16_t)(next % vq->size);
}

/*
 * vq_push() - return chain @e to the driver with @used_len bytes written
 * (never more than its writable part).  Inline while the ring the device
 * writes (split: the used ring; packed: the descriptor ring) has a host
 * pointer from the current region table; otherwise vq_push_slow().
 * Return: 0; -EIO (broken queue, or the used ring is not RAM).
 */
static inline int vq_push(struct vq *vq, const struct vq_elem *e,
			  uint32_t used_len)
{
	uint8_t *ring = vq->packed ? vq->rc_desc : vq->rc_dev;
	uint32_t len = MIN(used_len, e->write_len);

	if (__builtin_expect(!ring || vq->broken || !vq->ready ||
			     mem_table_id(vq->mem) != vq->rc_tid, 0))
		return vq_push_slow(vq, e, used_len);
	if (vq->packed)
		vq_push_packed(vq, ring, e, len);
	else
		vq_push_split(vq, ring, e, len);
	vq->pending_used++;
	return 0;
}

/*
 * vq_need_notify() - after a batch of vq_push(): whether the driver wants
 * an interrupt (flags or EVENT_IDX / event suppression rules).  Resets the
 * pending count.
 */
bool vq_need_notify(struct vq *vq);

/*
 * vq_set_kicks() - the device's side of driver-notification suppression
 * (VIRTIO 1.3 §2.7.10, §2.8.10), for a device that polls the ring.
 * @on false asks the driver not to notify: split rings set used.flags
 * NO_NOTIFY, or with EVENT_IDX keep avail_event one entry behind the last
 * one popped (the driver notifies only when its index passes it); packed
 * rings set the device event flags to DISABLE.  @on true asks for
 * notifications again; the caller must then look at the ring once more (a
 * request made meanwhile may have gone unnotified: the store is followed
 * by a full fence).  Called again while off it refreshes avail_event.
 * Writes only what changed.  Return: 0; -EIO (ring not writable: broken).
 */
int vq_set_kicks(struct vq *vq, bool on);

/* vq_has_avail() - whether vq_pop() would find a chain (or an error). */
bool vq_has_avail(struct vq *vq);

/*
 * vq_copy_part() - vq_read() (!@write) or vq_write() segment by segment,
 * out of line: what they call when vq_part_hva() does not answer.
 * Return: 0; -ERANGE; -EFAULT.
 */
int vq_copy_part(struct vq *vq, const struct vq_elem *e, uint32_t off,
		 void *buf, uint32_t len, bool write);

/*
 * vq_part_hva() - the common case of vq_read() / vq_write(): bytes [@off,
 * @off + @len) (@len > 0) lie in the first segment of the readable
 * (!@write) or writable part, in the region the buffer cache holds.  Then
 * *@hva is their host address (valid inside the caller's read section).
 */
static inline bool vq_part_hva(struct vq *vq, const struct vq_elem *e,
			       uint32_t off, uint32_t len, bool write,
			       void **hva)
{
	uint32_t first = write ? e->nread : 0, end = write ? e->nseg : e->nread;
	uint8_t *base = write ? e->whva : e->rhva;

	if (__builtin_expect(base && len && (uint64_t)off + len <=
			     e->segs[first].len, 1) &&
	    __builtin_expect(mem_table_id(vq->mem) == e->tid, 1)) {
		*hva = base + off;
		return true;
	}
	return __builtin_expect(first < end && len && !vq->io &&
				(uint64_t)off + len <= e->segs[first].len, 1) &&
	       mem_cache_hit(vq->mem, &vq->mc, e->segs[first].gpa + off, len,
			     write, hva);
}

/*
 * vq_read() - copy @len bytes at byte @off of the readable part of @e.
 * Inline: a constant @len makes the common case a few moves.
 * Return: 0; -ERANGE if the readable part is shorter; -EFAULT (memory).
 */
static inline int vq_read(struct vq *vq, const struct vq_elem *e,
			  uint32_t off, void *buf, uint32_t len)
{
	void *hva;

	if (vq_part_hva(vq, e, off, len, false, &hva)) {
		memcpy(buf, hva, len);
		return 0;
	}
	return vq_copy_part(vq, e, off, buf, len, false);
}

/*
 * vq_write() - copy @len bytes to byte @off of the writable part of @e.
 * Return: 0; -ERANGE if the writable part is shorter; -EFAULT (memory).
 */
static inline int vq_write(struct vq *vq, const struct vq_elem *e,
			   uint32_t off, const void *buf, uint32_t len)
{
	void *hva;

	if (vq_part_hva(vq, e, off, len, true, &hva)) {
		memcpy(hva, buf, len);
		return 0;
	}
	return vq_copy_part(vq, e, off, (void *)buf, len, true);
}

/* vq_set_broken() - mark broken with one log line (device-detected). */
void vq_set_broken(struct vq *vq, const char *why);

/*
 * vdev_queue() - queue @q of a virtio device, or NULL (defined in
 * virtio.c).  For device models and tests that inspect or poke a queue;
 * the caller holds the device lock or knows no other thread runs.
 */
struct viommu_virtio_dev;
struct vq *vdev_queue(struct viommu_virtio_dev *dev, uint16_t q);

#endif /* VIOMMU_VIRTQUEUE_H */
