/*
 * drvring.h - the DRIVER side of one virtqueue, split or packed, for the
 * in-process reference driver, tests, fuzzers and benchmarks.
 *
 * A struct drvring lays a ring out in a memory area the caller owns and
 * that is also guest RAM: the caller passes its host pointer and its GPA.
 * Layout (offsets from the start of the area, see drvring_bytes()):
 *
 *   split:  descriptor table (16 * size, align 16), available ring
 *           (6 + 2 * size, align 2), used ring (6 + 8 * size, align 4),
 *           then the per-ring indirect area (align 16);
 *   packed: descriptor ring (16 * size, align 16), driver event
 *           suppression (4, align 4), device event suppression (4,
 *           align 4), then the per-ring indirect area (align 16).
 *
 * The per-ring indirect area holds one table of DRVRING_IND_MAX
 * descriptors per descriptor slot (split: indexed by head, packed: by
 * buffer ID); a caller wanting longer tables passes its own area.
 *
 * drvring_add() makes a chain available; drvring_kick_needed() says
 * whether the device asked to be notified (used.flags / avail_event for
 * split rings, device event suppression for packed rings);
 * drvring_get_used() takes the next used buffer back with its token.
 * Indices and flags shared with the device are published with release
 * semantics and read with acquire semantics: the device may run in
 * another thread.  drvring does not check segment order (readable first)
 * so that tests can break the rule on purpose, and the raw ring pointers
 * are available for the same reason.
 *
 * Bookkeeping (free lists, tokens) lives in the struct itself, never in
 * guest memory, so a hostile or buggy device cannot corrupt it: a used
 * entry naming a buffer that is not in flight is reported as -EIO.
 *
 * Not thread-safe: one thread drives a ring (the device may be another).
 * No allocation: the struct is self-contained (about 14 KiB).
 */
#ifndef VIOMMU_DRVRING_H
#define VIOMMU_DRVRING_H

#include <viommu/virtio.h>

/* Largest ring drvring handles (the device's limit too). */
#define DRVRING_MAX_SIZE VIOMMU_VIRTIO_QUEUE_MAX
/* Descriptors per table in the per-ring indirect area. */
#define DRVRING_IND_MAX 8

/* One buffer element of a chain. */
struct drvring_seg {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

struct drvring {
	uint8_t *hva;
	uint64_t gpa;
	uint16_t size;
	bool packed, event_idx, indirect;
	bool irq_off; /* drvring_set_irq(false) */
	size_t desc_off, driver_off, device_off, ind_off;

	uint16_t num_free;
	/* split */
	uint16_t free_head;     /* head of the free descriptor list */
	uint16_t avail_idx;     /* next avail.idx to publish */
	uint16_t kicked_avail;  /* avail.idx at the last kick check */
	uint16_t last_used;
	/* packed */
	uint16_t next_avail, next_used, kicked_pos;
	bool avail_wrap, used_wrap, kicked_wrap;
	uint16_t free_id_top;

	uint16_t next[DRVRING_MAX_SIZE];   /* split: free list / chain links */
	uint16_t ndesc[DRVRING_MAX_SIZE];  /* per head / ID: descriptors used */
	uint16_t free_ids[DRVRING_MAX_SIZE];
	bool inflight[DRVRING_MAX_SIZE];
	uint64_t token[DRVRING_MAX_SIZE];
};

/* drvring_bytes() - bytes of the area a ring of @size entries needs. */
size_t drvring_bytes(uint16_t size, bool packed);

/*
 * drvring_init() - lay a ring of @size entries out at @hva / @gpa (at
 * least drvring_bytes() long, 16-byte aligned GPA) and zero it.
 * @event_idx, @indirect: the negotiated VIRTIO_F_EVENT_IDX and
 * VIRTIO_F_INDIRECT_DESC.  Split rings need a power-of-two @size.
 * Return: 0; -EINVAL.
 */
int drvring_init(struct drvring *r, void *hva, uint64_t gpa, uint16_t size,
		 bool packed, bool event_idx, bool indirect);

/*
 * drvring_reset() - forget every buffer and zero the ring memory again
 * (after a device reset), keeping the layout.
 */
void drvring_reset(struct drvring *r);

/* drvring_queue_cfg() - where the ring is, for queue set-up. */
void drvring_queue_cfg(const struct drvring *r,
		       struct viommu_virtio_queue_cfg *cfg);

/*
 * drvring_add() - make @n segments available as one buffer with @token.
 * @indirect: put them in this ring's indirect table for the chain (needs
 * the feature and @n <= DRVRING_IND_MAX) instead of ring descriptors.
 * Return: 0; -EINVAL (@n == 0, too long, indirect not negotiated);
 * -ENOSPC (not enough free descriptors).
 */
int drvring_add(struct drvring *r, const struct drvring_seg *segs,
		unsigned int n, uint64_t token, bool indirect);

/*
 * drvring_add_indirect() - like drvring_add() through an indirect table
 * the caller placed at @table_hva / @table_gpa (room for @n descriptors,
 * 16-byte aligned).  Any @n >= 1 is accepted, so tests can exceed the
 * device's limits.  Return: 0; -EINVAL; -ENOSPC.
 */
int drvring_add_indirect(struct drvring *r, const struct drvring_seg *segs,
			 unsigned int n, uint64_t token, void *table_hva,
			 uint64_t table_gpa);

/*
 * drvring_kick_needed() - after one or more adds: whether the device wants
 * an available buffer notification.  False when nothing was added since
 * the previous call.
 */
bool drvring_kick_needed(struct drvring *r);

/*
 * drvring_get_used() - take the next used buffer back.
 * Return: 0 with its token and used length; -ENOENT if none is ready;
 * -EIO if the device returned a buffer that is not in flight.
 */
int drvring_get_used(struct drvring *r, uint64_t *token, uint32_t *len);

/*
 * drvring_set_irq() - ask for used buffer notifications (@enable) or not.
 * With EVENT_IDX, enabling asks for one at the next used buffer.
 */
void drvring_set_irq(struct drvring *r, bool enable);

/* drvring_num_free() - descriptors free for drvring_add(). */
unsigned int drvring_num_free(const struct drvring *r);

/*
 * Raw ring memory, for tests that corrupt rings on purpose:
 * drvring_desc(): the descriptor table (packed: descriptor ring);
 * drvring_driver_area(): split available ring / packed driver event
 * suppression; drvring_device_area(): split used ring / packed device
 * event suppression; drvring_ind_table(): the per-ring indirect table of
 * @slot (its GPA in *@gpa).
 */
void *drvring_desc(struct drvring *r);
void *drvring_driver_area(struct drvring *r);
void *drvring_device_area(struct drvring *r);
void *drvring_ind_table(struct drvring *r, uint16_t slot, uint64_t *gpa);

#endif /* VIOMMU_DRVRING_H */
