/*
 * drvring.c - the driver side of split and packed virtqueues (see
 * drvring.h), written from VIRTIO 1.3 §2.7 and §2.8.
 *
 * Concept: all bookkeeping is host-side.  Split rings keep a shadow
 * "next" array that is both the free-descriptor list and the link of each
 * in-flight chain (taking the first n free entries yields a linked chain),
 * so freeing never trusts guest memory.  Packed rings hand out buffer IDs
 * from a stack and remember how many ring descriptors each ID used, which
 * is how far the driver skips when the device reports it used.
 *
 * Shared fields are 16-bit atomics on the host mapping: avail.idx and
 * packed descriptor flags are stored with release semantics after the
 * data they publish; used.idx and used flags are loaded with acquire.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "refdrv/drvring.h"

#define DESC_SIZE 16
#define F_NEXT 1u
#define F_WRITE 2u
#define F_INDIRECT 4u
#define F_AVAIL (1u << 7)
#define F_USED (1u << 15)
#define NO_NOTIFY 1u
#define NO_INTERRUPT 1u
#define EV_ENABLE 0u
#define EV_DISABLE 1u
#define EV_DESC 2u

/* align_up() - @v rounded up to a multiple of @a (a power of two). */
static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* at() - host address of byte @off of the ring area. */
static void *at(const struct drvring *r, size_t off)
{
	return r->hva + off;
}

/* put16() / get16() - release store / acquire load of a shared LE u16. */
static void put16(struct drvring *r, size_t off, uint16_t v)
{
	__atomic_store_n((uint16_t *)at(r, off), htole16(v), __ATOMIC_RELEASE);
}

static uint16_t get16(const struct drvring *r, size_t off)
{
	return le16toh(__atomic_load_n((uint16_t *)at(r, off),
				       __ATOMIC_ACQUIRE));
}

/*
 * write_desc_head() - the first 14 bytes of descriptor @i of the table at
 * host address @tbl: addr, len and the 16-bit field at offset 12 (split:
 * flags; packed: buffer ID).  The device may be polling the last two
 * bytes of a packed descriptor, so they are written separately.
 */
static void write_desc_head(uint8_t *tbl, uint32_t i, uint64_t addr,
			    uint32_t len, uint16_t a)
{
	uint8_t *d = tbl + (size_t)i * DESC_SIZE;
	uint64_t a64 = htole64(addr);
	uint32_t l32 = htole32(len);
	uint16_t a16 = htole16(a);

	memcpy(d, &a64, 8);
	memcpy(d + 8, &l32, 4);
	memcpy(d + 12, &a16, 2);
}

/* write_desc() - fill all of descriptor @i (not visible to the device). */
static void write_desc(uint8_t *tbl, uint32_t i, uint64_t addr, uint32_t len,
		       uint16_t a, uint16_t b)
{
	uint16_t b16 = htole16(b);

	write_desc_head(tbl, i, addr, len, a);
	memcpy(tbl + (size_t)i * DESC_SIZE + 14, &b16, 2);
}

/* layout() - offsets of each part for (@size, @packed); total bytes. */
static size_t layout(uint16_t size, bool packed, size_t *driver,
		     size_t *device, size_t *ind)
{
	size_t desc_bytes = (size_t)size * DESC_SIZE;

	*driver = desc_bytes;
	if (packed)
		*device = *driver + 4;
	else
		*device = align_up(*driver + 6 + 2 * (size_t)size, 4);
	*ind = align_up(*device + (packed ? 4 : 6 + 8 * (size_t)size), 16);
	return *ind + (size_t)size * DRVRING_IND_MAX * DESC_SIZE;
}

size_t drvring_bytes(uint16_t size, bool packed)
{
	size_t a, b, c;

	return layout(size, packed, &a, &b, &c);
}

static void packed_rearm(struct drvring *r);

/* init_state() - empty ring, every descriptor and ID free. */
static void init_state(struct drvring *r)
{
	size_t a, b, c;

	memset(r->hva, 0, layout(r->size, r->packed, &a, &b, &c));
	r->num_free = r->size;
	r->free_head = 0;
	r->avail_idx = r->kicked_avail = r->last_used = 0;
	r->next_avail = r->next_used = r->kicked_pos = 0;
	r->avail_wrap = r->used_wrap = r->kicked_wrap = true;
	r->irq_off = false;
	for (uint16_t i = 0; i < r->size; i++) {
		r->next[i] = (uint16_t)(i + 1);
		r->free_ids[i] = (uint16_t)(r->size - 1 - i);
		r->inflight[i] = false;
		r->ndesc[i] = 0;
	}
	r->free_id_top = r->size;
	if (r->packed)
		packed_rearm(r); /* EVENT_IDX: interrupt at (0, wrap 1) */
}

int drvring_init(struct drvring *r, void *hva, uint64_t gpa, uint16_t size,
		 bool packed, bool event_idx, bool indirect)
{
	if (!r || !hva || size == 0 || size > DRVRING_MAX_SIZE ||
	    (gpa & 15) || ((uintptr_t)hva & 15) ||
	    (!packed && (size & (size - 1))))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->hva = hva;
	r->gpa = gpa;
	r->size = size;
	r->packed = packed;
	r->event_idx = event_idx;
	r->indirect = indirect;
	r->desc_off = 0;
	layout(size, packed, &r->driver_off, &r->device_off, &r->ind_off);
	init_state(r);
	return 0;
}

void drvring_reset(struct drvring *r)
{
	init_state(r);
}

void drvring_queue_cfg(const struct drvring *r,
		       struct viommu_virtio_queue_cfg *cfg)
{
	cfg->size = r->size;
	cfg->desc = r->gpa + r->desc_off;
	cfg->driver = r->gpa + r->driver_off;
	cfg->device = r->gpa + r->device_off;
}

/* fill_table() - write @n segments as an indirect table at @tbl. */
static void fill_table(const struct drvring *r, uint8_t *tbl,
		       const struct drvring_seg *segs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint16_t f = segs[i].write ? F_WRITE : 0;
		bool more = i + 1 < n;

		if (r->packed) /* sequential: only WRITE is meaningful */
			write_desc(tbl, i, segs[i].gpa, segs[i].len, 0, f);
		else
			write_desc(tbl, i, segs[i].gpa, segs[i].len,
				   (uint16_t)(f | (more ? F_NEXT : 0)),
				   (uint16_t)(more ? i + 1 : 0));
	}
}

/* split_publish() - put @head in the available ring and bump avail.idx. */
static void split_publish(struct drvring *r, uint16_t head, uint64_t token)
{
	size_t slot = r->driver_off + 4 + 2 * (size_t)(r->avail_idx &
						       (r->size - 1));
	uint16_t h = htole16(head);

	r->token[head] = token;
	r->inflight[head] = true;
	memcpy(at(r, slot), &h, 2);
	r->avail_idx++;
	put16(r, r->driver_off + 2, r->avail_idx);
}

/*
 * split_add() - a chain of @n ring descriptors, or (@tbl) one INDIRECT
 * descriptor pointing at the table @tbl_gpa holding @n entries.
 */
static int split_add(struct drvring *r, const struct drvring_seg *segs,
		     unsigned int n, uint64_t token, uint8_t *tbl,
		     uint64_t tbl_gpa)
{
	unsigned int need = tbl ? 1 : n;
	uint16_t head = r->free_head, idx = head;
	uint8_t *desc = at(r, r->desc_off);

	if (need > r->num_free)
		return -ENOSPC;
	if (tbl) {
		fill_table(r, tbl, segs, n);
		write_desc(desc, head, tbl_gpa, n * DESC_SIZE, F_INDIRECT, 0);
		idx = head;
	} else {
		for (unsigned int i = 0; i < n; i++) {
			bool more = i + 1 < n;
			uint16_t f = (uint16_t)((segs[i].write ? F_WRITE : 0) |
						(more ? F_NEXT : 0));

			write_desc(desc, idx, segs[i].gpa, segs[i].len, f,
				   more ? r->next[idx] : 0);
			if (more)
				idx = r->next[idx];
		}
	}
	r->free_head = r->next[idx];
	r->num_free = (uint16_t)(r->num_free - need);
	r->ndesc[head] = (uint16_t)need;
	split_publish(r, head, token);
	return 0;
}

/* packed_flags() - avail/used bits for a descriptor made available now. */
static uint16_t packed_flags(bool wrap)
{
	return wrap ? F_AVAIL : F_USED;
}

/* packed_add() - like split_add() for packed rings. */
static int packed_add(struct drvring *r, const struct drvring_seg *segs,
		      unsigned int n, uint64_t token, uint8_t *tbl,
		      uint64_t tbl_gpa)
{
	unsigned int need = tbl ? 1 : n;
	uint16_t id, first = r->next_avail, first_flags = 0;
	uint8_t *desc = at(r, r->desc_off);

	if (need > r->num_free || r->free_id_top == 0)
		return -ENOSPC;
	id = r->free_ids[--r->free_id_top];
	if (tbl)
		fill_table(r, tbl, segs, n);
	for (unsigned int i = 0; i < need; i++) {
		uint16_t pos = r->next_avail;
		uint16_t f = packed_flags(r->avail_wrap);

		if (tbl)
			f |= F_INDIRECT;
		else
			f |= (uint16_t)((segs[i].write ? F_WRITE : 0) |
					(i + 1 < need ? F_NEXT : 0));
		write_desc_head(desc, pos, tbl ? tbl_gpa : segs[i].gpa,
				tbl ? n * DESC_SIZE : segs[i].len, id);
		if (i == 0)
			first_flags = f; /* published last */
		else
			put16(r, (size_t)pos * DESC_SIZE + 14, f);
		if (++r->next_avail == r->size) {
			r->next_avail = 0;
			r->avail_wrap = !r->avail_wrap;
		}
	}
	r->num_free = (uint16_t)(r->num_free - need);
	r->ndesc[id] = (uint16_t)need;
	r->token[id] = token;
	r->inflight[id] = true;
	put16(r, (size_t)first * DESC_SIZE + 14, first_flags);
	return 0;
}

/* add() - common entry of drvring_add() and drvring_add_indirect(). */
static int add(struct drvring *r, const struct drvring_seg *segs,
	       unsigned int n, uint64_t token, uint8_t *tbl, uint64_t tbl_gpa)
{
	if (!r || !segs || n == 0 || (tbl && !r->indirect) ||
	    (!tbl && n > r->size) || n > UINT32_MAX / DESC_SIZE)
		return -EINVAL;
	if (r->packed)
		return packed_add(r, segs, n, token, tbl, tbl_gpa);
	return split_add(r, segs, n, token, tbl, tbl_gpa);
}

int drvring_add(struct drvring *r, const struct drvring_seg *segs,
		unsigned int n, uint64_t token, bool indirect)
{
	uint16_t slot;
	uint64_t gpa;
	void *tbl;

	if (!indirect)
		return add(r, segs, n, token, NULL, 0);
	if (!r || n > DRVRING_IND_MAX)
		return -EINVAL;
	/* The table slot is the head (split) or the ID (packed) to come. */
	if (r->packed)
		slot = r->free_id_top ? r->free_ids[r->free_id_top - 1] : 0;
	else
		slot = r->free_head < r->size ? r->free_head : 0;
	tbl = drvring_ind_table(r, slot, &gpa);
	return add(r, segs, n, token, tbl, gpa);
}

int drvring_add_indirect(struct drvring *r, const struct drvring_seg *segs,
			 unsigned int n, uint64_t token, void *table_hva,
			 uint64_t table_gpa)
{
	if (!table_hva)
		return -EINVAL;
	return add(r, segs, n, token, table_hva, table_gpa);
}

/* need_event() - whether @ev lies in [@old, @new) (16-bit indices). */
static bool need_event(uint16_t ev, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - ev - 1) < (uint16_t)(new_idx - old);
}

/* linear() - packed position as 0 .. 2 * size - 1. */
static uint32_t linear(const struct drvring *r, uint32_t off, bool wrap)
{
	return off + (wrap ? 0 : r->size);
}

/* packed_kick() - device event suppression after adds from @old. */
static bool packed_kick(struct drvring *r, uint32_t old, uint32_t now)
{
	uint16_t flags = get16(r, r->device_off + 2) & 3u;
	uint16_t ow = get16(r, r->device_off);
	uint32_t span = 2u * r->size, ev;

	if (flags == EV_DISABLE)
		return false;
	if (flags != EV_DESC || !r->event_idx)
		return true;
	if ((ow & 0x7fff) >= r->size)
		return false;
	ev = linear(r, ow & 0x7fff, ow >> 15);
	return (ev + span - old) % span < (now + span - old) % span;
}

bool drvring_kick_needed(struct drvring *r)
{
	uint16_t old;
	uint32_t lold, lnow;

	/* Our avail.idx / flags stores before the device's suppression. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (r->packed) {
		lold = linear(r, r->kicked_pos, r->kicked_wrap);
		lnow = linear(r, r->next_avail, r->avail_wrap);
		r->kicked_pos = r->next_avail;
		r->kicked_wrap = r->avail_wrap;
		return lold != lnow && packed_kick(r, lold, lnow);
	}
	old = r->kicked_avail;
	r->kicked_avail = r->avail_idx;
	if (old == r->avail_idx)
		return false;
	if (r->event_idx)
		return need_event(get16(r, r->device_off + 4 +
					   8 * (size_t)r->size),
				  r->avail_idx, old);
	return !(get16(r, r->device_off) & NO_NOTIFY);
}

/* split_rearm() - with EVENT_IDX: interrupt at the next used entry. */
static void split_rearm(struct drvring *r)
{
	put16(r, r->driver_off + 4 + 2 * (size_t)r->size,
	      r->irq_off ? (uint16_t)(r->last_used - 1) : r->last_used);
	/* Publish used_event before looking at used.idx again. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* packed_rearm() - interrupt at the next used descriptor (or never). */
static void packed_rearm(struct drvring *r)
{
	if (r->irq_off) {
		put16(r, r->driver_off + 2, EV_DISABLE);
		return;
	}
	if (!r->event_idx) {
		put16(r, r->driver_off + 2, EV_ENABLE);
		return;
	}
	put16(r, r->driver_off,
	      (uint16_t)(r->next_used | (r->used_wrap ? 1u << 15 : 0)));
	put16(r, r->driver_off + 2, EV_DESC);
	/* Publish the event before looking at the next descriptor again. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* split_get() - drvring_get_used() for split rings. */
static int split_get(struct drvring *r, uint64_t *token, uint32_t *len)
{
	uint16_t idx = get16(r, r->device_off + 2), head, prev, last;
	size_t slot;
	uint32_t e[2];

	if (idx == r->last_used)
		return -ENOENT;
	if ((uint16_t)(idx - r->last_used) > r->size)
		return -EIO;
	slot = r->device_off + 4 + 8 * (size_t)(r->last_used & (r->size - 1));
	memcpy(e, at(r, slot), sizeof(e));
	r->last_used++;
	if (r->event_idx)
		split_rearm(r);
	if (le32toh(e[0]) >= r->size || !r->inflight[le32toh(e[0])])
		return -EIO;
	head = (uint16_t)le32toh(e[0]);
	r->inflight[head] = false;
	*token = r->token[head];
	*len = le32toh(e[1]);
	last = head;
	for (prev = 1; prev < r->ndesc[head]; prev++)
		last = r->next[last];
	r->next[last] = r->free_head;
	r->free_head = head;
	r->num_free = (uint16_t)(r->num_free + r->ndesc[head]);
	return 0;
}

/* packed_get() - drvring_get_used() for packed rings. */
static int packed_get(struct drvring *r, uint64_t *token, uint32_t *len)
{
	size_t off = (size_t)r->next_used * DESC_SIZE;
	uint16_t flags = get16(r, off + 14), id;
	bool avail = flags & F_AVAIL, used = flags & F_USED;
	uint32_t l, next;

	if (avail != r->used_wrap || used != r->used_wrap)
		return -ENOENT;
	memcpy(&id, at(r, off + 12), 2);
	memcpy(&l, at(r, off + 8), 4);
	id = le16toh(id);
	if (id >= r->size || !r->inflight[id])
		return -EIO;
	r->inflight[id] = false;
	*token = r->token[id];
	*len = le32toh(l);
	next = (uint32_t)r->next_used + r->ndesc[id];
	if (next >= r->size) {
		next -= r->size;
		r->used_wrap = !r->used_wrap;
	}
	r->next_used = (uint16_t)next;
	r->num_free = (uint16_t)(r->num_free + r->ndesc[id]);
	r->free_ids[r->free_id_top++] = id;
	packed_rearm(r);
	return 0;
}

int drvring_get_used(struct drvring *r, uint64_t *token, uint32_t *len)
{
	uint64_t t;
	uint32_t l;
	int err;

	if (!r)
		return -EINVAL;
	err = r->packed ? packed_get(r, &t, &l) : split_get(r, &t, &l);
	if (!err) {
		if (token)
			*token = t;
		if (len)
			*len = l;
	}
	return err;
}

void drvring_set_irq(struct drvring *r, bool enable)
{
	r->irq_off = !enable;
	if (r->packed)
		packed_rearm(r);
	else if (r->event_idx)
		split_rearm(r);
	else
		put16(r, r->driver_off, enable ? 0 : NO_INTERRUPT);
}

unsigned int drvring_num_free(const struct drvring *r)
{
	return r->num_free;
}

void *drvring_desc(struct drvring *r)
{
	return at(r, r->desc_off);
}

void *drvring_driver_area(struct drvring *r)
{
	return at(r, r->driver_off);
}

void *drvring_device_area(struct drvring *r)
{
	return at(r, r->device_off);
}

void *drvring_ind_table(struct drvring *r, uint16_t slot, uint64_t *gpa)
{
	size_t off = r->ind_off + (size_t)slot * DRVRING_IND_MAX * DESC_SIZE;

	if (gpa)
		*gpa = r->gpa + off;
	return at(r, off);
}
