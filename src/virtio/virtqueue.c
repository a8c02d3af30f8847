/*
 * virtqueue.c - device side of one virtqueue (VIRTIO 1.3 §2.7 split and
 * §2.8 packed rings), hardened against a hostile driver.
 *
 * Concept: the driver owns the ring memory and may rewrite it at any time,
 * so every value read from it is copied once into a local variable and
 * validated before use (never re-read after validation).  A violation of
 * a driver MUST rule marks the queue broken with one log line; the owning
 * device then enters DEVICE_NEEDS_RESET.  Work per vq_pop() is bounded by
 * the queue size (direct chain) plus the queue maximum (indirect table),
 * which also bounds the segment array allocated once in vq_init().
 *
 * Shared 16-bit indices and flags are accessed as single atomic loads and
 * stores on the host mapping of guest RAM (acquire for what the driver
 * publishes, release for what we publish) so that they never tear; bulk
 * data (descriptors, used elements, buffers) goes through the memory
 * layer's bounds-checked copies.  Multi-byte ring fields are little-endian.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>

#include "virtqueue.h"
#include "core/fault.h"
#include "base/util.h"
#include "mem/mem_internal.h"

/*
 * Guest-memory access.  Every vq_* entry point runs inside a memory read
 * section held by its caller (virtqueue.h), so the accessors below skip the
 * per-access section the public calls would open, and go through the
 * queue's one-region cache (vq->mc): rings and request buffers normally sit
 * in one region, so most accesses cost a table-ID compare instead of a
 * look-up.  A range that leaves its region takes the general path.
 */
static int iova_copy(struct vq *vq, uint64_t iova, void *buf, size_t len,
		     bool write) __attribute__((noinline, cold));
static int iova_ptr(struct vq *vq, uint64_t iova, size_t len, bool write,
		    void **hva) __attribute__((noinline, cold));
static int iova_check(struct vq *vq, uint64_t iova, uint64_t len,
		      bool write) __attribute__((noinline, cold));

/*
 * iova_ptr() - IOVA mode of ram_ptr(): translate [@iova, @iova + @len) for
 * the access; -E2BIG when it does not translate to one host range (the
 * caller then copies piece by piece, iova_copy()).
 */
static int iova_ptr(struct vq *vq, uint64_t iova, size_t len, bool write,
		    void **hva)
{
	struct viommu_xlate x;
	int err = vq_iommu_xlate(vq->io, iova, len,
				 write ? VIOMMU_WRITE : VIOMMU_READ, false, &x);

	if (err)
		return err;
	if (x.len < len || !x.hva)
		return -E2BIG;
	*hva = x.hva;
	return 0;
}

static inline int ram_ptr(struct vq *vq, uint64_t gpa, size_t len,
			  bool write, void **hva)
{
	if (unlikely(vq->io))
		return iova_ptr(vq, gpa, len, write, hva);
	return mem_cached_ptr(vq->mem, &vq->mc, gpa, len, write, hva);
}

/*
 * ram_copy() - copy @len bytes between @buf and @gpa.  Always inlined:
 * with a constant @len (a descriptor, a used element) the copy becomes a
 * few moves; the IOVA mode's branch would otherwise tip the compiler into
 * an out-of-line call with a library memcpy (5% more instructions per
 * virtio-iommu request, measured with callgrind).  Return: 0; -errno.
 */
static inline __attribute__((always_inline)) int
ram_copy(struct vq *vq, uint64_t gpa, void *buf, size_t len, bool write)
{
	void *hva;
	int err;

	if (len == 0)
		return 0;
	if (unlikely(vq->io))
		return iova_copy(vq, gpa, buf, len, write);
	err = ram_ptr(vq, gpa, len, write, &hva);
	if (err == -E2BIG || err == -EREMOTE) /* spans regions; I/O region */
		return mem_access_in(vq->mem, gpa, buf, len, write);
	if (err)
		return err;
	if (write)
		memcpy(hva, buf, len);
	else
		memcpy(buf, hva, len);
	return 0;
}

/*
 * iova_copy() - IOVA mode of ram_copy(): translate and copy piece by
 * contiguous piece; a piece without a host pointer goes through the
 * memory layer at its GPA.  A range that wraps is refused untouched.
 * Return: 0; -EFAULT (fault reported; earlier pieces were copied).
 */
static int iova_copy(struct vq *vq, uint64_t iova, void *buf, size_t len,
		     bool write)
{
	uint8_t *p = buf;
	uint64_t last;

	if (!range_last(iova, len, &last))
		return -EFAULT;
	while (len) {
		struct viommu_xlate x;
		int err = vq_iommu_xlate(vq->io, iova, len,
					 write ? VIOMMU_WRITE : VIOMMU_READ, false,
					 &x);

		if (err)
			return err;
		if (!x.hva)
			err = mem_access_in(vq->mem, x.gpa, p, x.len, write);
		else if (write)
			memcpy(x.hva, p, x.len);
		else
			memcpy(p, x.hva, x.len);
		if (err)
			return -EFAULT;
		p += x.len;
		iova += x.len;
		len -= x.len;
	}
	return 0;
}

int vq_iommu_xlate(struct vq_iommu *io, uint64_t iova, size_t len,
		   unsigned int access, bool may_inject,
		   struct viommu_xlate *x)
{
	uint32_t n = may_inject ? __atomic_load_n(&io->inject,
						  __ATOMIC_RELAXED) : 0;
	int err;

	while (unlikely(n)) {
		if (__atomic_compare_exchange_n(&io->inject, &n, n - 1, false,
						__ATOMIC_RELAXED,
						__ATOMIC_RELAXED)) {
			ATOMIC_INC(io->injected);
			ATOMIC_INC(io->faults);
			return core_report_fault(io->ep, VIOMMU_NO_PASID, iova,
						 access,
						 VIOMMU_FAULT_NO_MAPPING,
						 NULL);
		}
	}
	err = viommu_translate(io->ep, VIOMMU_NO_PASID, iova, len, access, x,
			       NULL);
	if (unlikely(err)) {
		ATOMIC_INC(io->faults);
		return -EFAULT;
	}
	return 0;
}

int vq_buf_piece(struct vq_iommu *io, struct viommu_mem *mem, uint64_t addr,
		 uint32_t len, unsigned int access, bool may_inject,
		 struct vq_piece *p)
{
	uint64_t gpa = addr;
	size_t contig = len;
	void *hva;
	int err;

	if (io) {
		struct viommu_xlate x;

		if (vq_iommu_xlate(io, addr, len, access, may_inject, &x))
			return -EFAULT;
		*p = (struct vq_piece){ x.hva, x.gpa, (uint32_t)x.len };
		if (x.hva)
			return 0;
		gpa = x.gpa;
		contig = x.len;
	}
	/* A GPA (no IOMMU, or a translation without a host pointer). */
	err = mem_ptr_in(mem, gpa, contig, access, &hva, &contig);
	if (err == -EFAULT || err == -EPERM)
		return -EIO;
	/* other errors: RAM without host pointers, bounced through the layer */
	*p = (struct vq_piece){ err ? NULL : hva, gpa, (uint32_t)contig };
	return 0;
}

int vq_elem_pieces(struct vq_iommu *io, struct viommu_mem *mem,
		   const struct vq_elem *e, bool write, uint32_t off,
		   uint32_t len, bool may_inject, struct vq_piece *pc,
		   uint32_t max, uint32_t *npc)
{
	uint32_t first = write ? e->nread : 0, end = write ? e->nseg : e->nread;
	unsigned int access = write ? VIOMMU_WRITE : VIOMMU_READ;

	if ((uint64_t)off + len > (write ? e->write_len : e->read_len))
		return -ERANGE;
	for (uint32_t i = first; i < end && len; i++) {
		const struct vq_seg *s = &e->segs[i];
		uint64_t addr;
		uint32_t n;

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		addr = s->gpa + off; /* the chain walk checked no wrap */
		n = MIN(s->len - off, len);
		off = 0;
		len -= n;
		while (n) {
			struct vq_piece *p;
			int err;

			if (*npc == max)
				return -E2BIG;
			p = &pc[*npc];
			err = vq_buf_piece(io, mem, addr, n, access,
					   may_inject, p);
			if (err)
				return err;
			(*npc)++;
			addr += p->len;
			n -= p->len;
		}
	}
	return len ? -ERANGE : 0;
}

int vq_pieces_copy(struct viommu_mem *mem, const struct vq_piece *pc,
		   uint32_t from, uint32_t to, uint8_t *buf, bool to_guest)
{
	for (uint32_t i = from; i < to; i++) {
		const struct vq_piece *p = &pc[i];

		if (!p->hva) {
			if (mem_access_in(mem, p->gpa, buf, p->len, to_guest))
				return -EIO;
		} else if (to_guest) {
			memcpy(p->hva, buf, p->len);
		} else {
			memcpy(buf, p->hva, p->len);
		}
		buf += p->len;
	}
	return 0;
}

static inline int ram_read(struct vq *vq, uint64_t gpa, void *buf,
			   size_t len)
{
	return ram_copy(vq, gpa, buf, len, false);
}

static inline int ram_write(struct vq *vq, uint64_t gpa, const void *buf,
			    size_t len)
{
	return ram_copy(vq, gpa, (void *)buf, len, true);
}

/* Split ring field offsets (VIRTIO 1.3 §2.7). */
#define AVAIL_FLAGS 0
#define AVAIL_IDX 2
#define AVAIL_RING 4
#define USED_FLAGS 0
#define USED_IDX 2
#define USED_RING 4
#define USED_ELEM_SIZE 8
#define DESC_SIZE 16
/* Packed descriptor field offsets and event suppression layout. */
#define PDESC_ID 12
#define PDESC_FLAGS 14
#define EVENT_OFF_WRAP 0
#define EVENT_FLAGS 2
#define EVENT_FLAGS_MASK 3u
#define EVENT_WRAP_BIT 15

/* vq_push() (virtqueue.h) writes the used rings inline. */
_Static_assert(USED_IDX == 2 && USED_RING == 4 && USED_ELEM_SIZE == 8 &&
	       DESC_SIZE == 16 && PDESC_ID == 12 && PDESC_FLAGS == 14,
	       "used ring layouts as vq_push() writes them");

/* A descriptor as read from guest memory, host-endian. */
struct raw_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next_or_id; /* split: next; packed: buffer ID */
};

/* State of one chain walk. */
struct walk {
	struct vq_elem *e;
	uint64_t read_len, write_len;
	bool seen_write;
	bool in_indirect;
};

/* breakf() - mark @vq broken with a formatted reason (one log line). */
static void breakf(struct vq *vq, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void breakf(struct vq *vq, const char *fmt, ...)
{
	char why[192];
	va_list ap;

	if (vq->broken)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vq_set_broken(vq, why);
}

void vq_set_broken(struct vq *vq, const char *why)
{
	if (vq->broken)
		return;
	vq->broken = true;
	rl_warn(&vq->rl, vq->log, "%s: %s; queue broken, device needs reset",
		 vq->name ? vq->name : "virtqueue", why);
}

/*
 * host16() - host pointer to the 2-byte-aligned field at @gpa if it lies
 * wholly in one region (and is writable when @write).  The caller is in
 * a read section.  Return: pointer or NULL.
 */
static uint16_t *host16(struct vq *vq, uint64_t gpa, bool write)
{
	void *hva;

	if (ram_ptr(vq, gpa, 2, write, &hva) || ((uintptr_t)hva & 1))
		return NULL;
	return hva;
}

/*
 * load16_acquire() - read the little-endian u16 at @gpa with acquire
 * semantics.  Falls back to a copy plus fence for odd layouts.
 * Return: 0; -EFAULT.
 */
static int load16_acquire(struct vq *vq, uint64_t gpa, uint16_t *v)
{
	uint16_t *p = host16(vq, gpa, false);
	uint16_t raw;
	int err = 0;

	if (p) {
		raw = __atomic_load_n(p, __ATOMIC_ACQUIRE);
	} else {
		err = ram_read(vq, gpa, &raw, sizeof(raw));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
	}
	if (!err)
		*v = le16toh(raw);
	return err;
}

/*
 * store16_release() - write the little-endian u16 at @gpa with release
 * semantics.  Return: 0; -EFAULT; -EPERM.
 */
static int store16_release(struct vq *vq, uint64_t gpa, uint16_t v)
{
	uint16_t *p = host16(vq, gpa, true);
	uint16_t raw = htole16(v);
	int err = 0;

	if (p) {
		__atomic_store_n(p, raw, __ATOMIC_RELEASE);
	} else {
		__atomic_thread_fence(__ATOMIC_RELEASE);
		err = ram_write(vq, gpa, &raw, sizeof(raw));
	}
	return err;
}

/*
 * iova_check() - IOVA mode of check_ram(): every piece of [@iova, @iova +
 * @len) translates for the access (a failure is reported by the core).
 * Return: 0; -EFAULT.
 */
static int iova_check(struct vq *vq, uint64_t iova, uint64_t len, bool write)
{
	while (len) {
		struct viommu_xlate x;
		size_t want = len > SIZE_MAX ? SIZE_MAX : (size_t)len;
		int err = vq_iommu_xlate(vq->io, iova, want,
					 write ? VIOMMU_WRITE : VIOMMU_READ,
					 false, &x);

		if (err)
			return err;
		iova += x.len;
		len -= x.len;
	}
	return 0;
}

/*
 * check_ram_slow() - check_ram() when the buffer cache does not answer.
 */
static int check_ram_slow(struct vq *vq, uint64_t gpa, uint64_t len,
			  bool write) __attribute__((noinline));

static int check_ram_slow(struct vq *vq, uint64_t gpa, uint64_t len,
			  bool write)
{
	uint64_t last;
	void *one;
	int err;

	if (!range_last(gpa, len, &last))
		return -EFAULT;
	if (len == 0)
		return 0;
	if (unlikely(vq->io))
		return iova_check(vq, gpa, len, write);
	err = ram_ptr(vq, gpa, len, write, &one);
	if (err != -E2BIG && err != -EREMOTE)
		return err;
	/* spans adjacent regions, or an I/O region: check without pointers */
	return mem_check_in(vq->mem, gpa, len, write);
}

/*
 * check_ram() - whether [@gpa, @gpa + @len) is guest RAM all the way
 * (adjacent regions are fine, holes are not), writable if @write.  A
 * range inside the region last touched answers inline.
 * Return: 0; -EFAULT; -EPERM.
 */
static inline int check_ram(struct vq *vq, uint64_t gpa, uint64_t len,
			    bool write)
{
	void *one;

	if (likely(!vq->io && len) &&
	    mem_cache_hit(vq->mem, &vq->mc, gpa, len, write, &one))
		return 0;
	return check_ram_slow(vq, gpa, len, write);
}

/* decode_desc() - the descriptor in the 16 bytes at @b, host-endian. */
static inline void decode_desc(const struct vq *vq, const uint8_t *b,
			       struct raw_desc *d)
{
	uint64_t a;
	uint32_t l;
	uint16_t f, n;

	memcpy(&a, b, 8);
	memcpy(&l, b + 8, 4);
	memcpy(&n, b + 12, 2);
	memcpy(&f, b + 14, 2);
	if (vq->packed) {
		/* packed: addr, len, id, flags */
		d->next_or_id = le16toh(n);
		d->flags = le16toh(f);
	} else {
		/* split: addr, len, flags, next */
		d->flags = le16toh(n);
		d->next_or_id = le16toh(f);
	}
	d->addr = le64toh(a);
	d->len = le32toh(l);
}

/* read_desc() - copy descriptor @i of table @table.  Return: 0; -errno. */
static int read_desc(struct vq *vq, uint64_t table, uint32_t i,
		     struct raw_desc *d)
{
	uint8_t b[DESC_SIZE];
	int err = ram_read(vq, table + (uint64_t)i * DESC_SIZE, b,
				  sizeof(b));

	if (err)
		return err;
	decode_desc(vq, b, d);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Ring areas                                                         */

/*
 * The three ring areas (descriptors, driver, device) normally each lie in
 * one RAM region.  Their host addresses are then looked up once per
 * region-table generation (rings_map(), when mem_table_id() changes) and
 * the hot paths below read and write the rings directly: no look-up and
 * no call per field.  An area that does not (it spans regions, is an I/O
 * region, is read-only where we write, or its host address is odd), and
 * every area in IOVA mode, keeps a NULL pointer and takes the general
 * path (ram_copy(), load16_acquire(), store16_release()) as before.  The
 * pointers are used only inside the caller's read section and only while
 * the table they came from is the current one, like vq->mc.
 */
static void rings_map(struct vq *vq, uint64_t tid)
	__attribute__((noinline, cold));

/* area_ptr() - host address of [@gpa, @gpa + @len) in one region, or NULL. */
static uint8_t *area_ptr(struct vq *vq, uint64_t gpa, uint64_t len,
			 bool write)
{
	size_t contig;
	void *hva;

	if (mem_ptr_in(vq->mem, gpa, (size_t)len,
		       write ? VIOMMU_WRITE : VIOMMU_READ, &hva, &contig) ||
	    contig != len || ((uintptr_t)hva & 1))
		return NULL;
	return hva;
}

static void rings_map(struct vq *vq, uint64_t tid)
{
	uint64_t n = vq->size;

	vq->rc_tid = tid;
	vq->rc_desc = vq->rc_drv = vq->rc_dev = NULL;
	if (vq->io || !vq->ready || tid == 0)
		return;
	vq->rc_desc = area_ptr(vq, vq->desc, n * DESC_SIZE, vq->packed);
	vq->rc_drv = area_ptr(vq, vq->driver, vq->packed ? 4 : 6 + 2 * n,
			      false);
	vq->rc_dev = area_ptr(vq, vq->device, vq->packed ? 4 : 6 + 8 * n,
			      true);
}

/* rings_sync() - refresh the ring pointers if the region table changed. */
static inline void rings_sync(struct vq *vq)
{
	uint64_t tid = mem_table_id(vq->mem);

	if (unlikely(tid != vq->rc_tid))
		rings_map(vq, tid);
}

/* drv16() - acquire-load the u16 at byte @off of the driver area. */
static inline int drv16(struct vq *vq, uint64_t off, uint16_t *v)
{
	if (likely(vq->rc_drv)) {
		*v = le16toh(__atomic_load_n((uint16_t *)(vq->rc_drv + off),
					     __ATOMIC_ACQUIRE));
		return 0;
	}
	return load16_acquire(vq, vq->driver + off, v);
}

/* dev16() - release-store @v as the u16 at byte @off of the device area. */
static inline int dev16(struct vq *vq, uint64_t off, uint16_t v)
{
	if (likely(vq->rc_dev)) {
		__atomic_store_n((uint16_t *)(vq->rc_dev + off), htole16(v),
				 __ATOMIC_RELEASE);
		return 0;
	}
	return store16_release(vq, vq->device + off, v);
}

/* dev_write() - copy @len bytes to byte @off of the device area. */
static inline int dev_write(struct vq *vq, uint64_t off, const void *buf,
			    size_t len)
{
	if (likely(vq->rc_dev)) {
		memcpy(vq->rc_dev + off, buf, len);
		return 0;
	}
	return ram_write(vq, vq->device + off, buf, len);
}

/* ring_desc() - descriptor @i of the ring's own table. */
static inline int ring_desc(struct vq *vq, uint32_t i, struct raw_desc *d)
{
	if (likely(vq->rc_desc)) {
		decode_desc(vq, vq->rc_desc + (uint64_t)i * DESC_SIZE, d);
		return 0;
	}
	return read_desc(vq, vq->desc, i, d);
}

/* desc16() - acquire-load the u16 at byte @off of the descriptor area. */
static inline int desc16(struct vq *vq, uint64_t off, uint16_t *v)
{
	if (likely(vq->rc_desc)) {
		*v = le16toh(__atomic_load_n((uint16_t *)(vq->rc_desc + off),
					     __ATOMIC_ACQUIRE));
		return 0;
	}
	return load16_acquire(vq, vq->desc + off, v);
}

/* desc16_set() - release-store @v at byte @off of the descriptor area. */
static inline int desc16_set(struct vq *vq, uint64_t off, uint16_t v)
{
	if (likely(vq->rc_desc)) {
		__atomic_store_n((uint16_t *)(vq->rc_desc + off), htole16(v),
				 __ATOMIC_RELEASE);
		return 0;
	}
	return store16_release(vq, vq->desc + off, v);
}

/* desc_write() - copy @len bytes to byte @off of the descriptor area. */
static inline int desc_write(struct vq *vq, uint64_t off, const void *buf,
			     size_t len)
{
	if (likely(vq->rc_desc)) {
		memcpy(vq->rc_desc + off, buf, len);
		return 0;
	}
	return ram_write(vq, vq->desc + off, buf, len);
}

int vq_init(struct vq *vq, struct viommu_mem *mem,
	    const struct viommu_log *log, const struct viommu_allocator *alloc,
	    const char *name, uint16_t max_size)
{
	if (!vq || !mem || max_size == 0 || max_size > 32768)
		return -EINVAL;
	memset(vq, 0, sizeof(*vq));
	vq->segs = xzalloc(alloc, sizeof(*vq->segs) * 2 * (size_t)max_size);
	if (!vq->segs)
		return -ENOMEM;
	vq->mem = mem;
	vq->log = log;
	vq->alloc = alloc;
	vq->name = name;
	vq->max_size = max_size;
	return 0;
}

void vq_destroy(struct vq *vq)
{
	if (!vq)
		return;
	xfree(vq->alloc, vq->segs);
	memset(vq, 0, sizeof(*vq));
}

void vq_reset(struct vq *vq)
{
	vq->ready = false;
	vq->packed = vq->event_idx = vq->indirect = vq->broken = false;
	vq->size = 0;
	vq->desc = vq->driver = vq->device = 0;
	vq->last_avail = vq->avail_shadow = vq->used_idx = 0;
	vq->next_avail = vq->next_used = 0;
	vq->avail_wrap = vq->used_wrap = true;
	vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->pending_used = 0;
	vq->kicks_off = false;
	vq->kick_mark = 0;
	vq->rc_tid = 0; /* rings_sync() looks the areas up again */
	vq->rc_desc = vq->rc_drv = vq->rc_dev = NULL;
}

/*
 * check_layout() - size, alignment and RAM checks of vq_configure().
 * Return: NULL if fine, else what is wrong (for the log line).
 */
static const char *check_layout(struct vq *vq, uint16_t size, uint64_t desc,
				uint64_t driver, uint64_t device, bool packed)
{
	uint64_t dlen = (uint64_t)size * DESC_SIZE;
	uint64_t alen = packed ? 4 : 6 + 2 * (uint64_t)size;
	uint64_t ulen = packed ? 4 : 6 + 8 * (uint64_t)size;

	if (size == 0 || size > vq->max_size)
		return "size out of range";
	if (!packed && (size & (size - 1)))
		return "split ring size not a power of two";
	if ((desc & 15) || (driver & (packed ? 3 : 1)) || (device & 3))
		return "ring area misaligned";
	if (vq->io) /* IOVA mode: translated when used (virtqueue.h) */
		return NULL;
	if (check_ram(vq, desc, dlen, packed))
		return "descriptor area not guest RAM";
	if (check_ram(vq, driver, alen, false))
		return "driver area not guest RAM";
	if (check_ram(vq, device, ulen, true))
		return "device area not writable guest RAM";
	return NULL;
}

int vq_configure(struct vq *vq, uint16_t size, uint64_t desc, uint64_t driver,
		 uint64_t device, bool packed, bool event_idx, bool indirect)
{
	const char *bad = check_layout(vq, size, desc, driver, device, packed);

	if (bad) {
		rl_warn(&vq->rl, vq->log, "%s: queue set-up refused: %s (size %u, "
			 "desc 0x%llx, driver 0x%llx, device 0x%llx)",
			 vq->name ? vq->name : "virtqueue", bad, size,
			 (unsigned long long)desc, (unsigned long long)driver,
			 (unsigned long long)device);
		return -EINVAL;
	}
	vq_reset(vq);
	vq->size = size;
	vq->desc = desc;
	vq->driver = driver;
	vq->device = device;
	vq->packed = packed;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->signalled_valid = packed;
	vq->ready = true;
	return 0;
}

/*
 * add_seg() - append one buffer element to the chain being walked,
 * enforcing order, length and RAM rules.  Zero-length elements are
 * checked for order but not stored.  Return: 0; -EIO (broken).
 */
static inline int add_seg(struct vq *vq, struct walk *w,
			  const struct raw_desc *d, bool write)
{
	struct vq_elem *e = w->e;
	uint64_t last;

	if (!write && w->seen_write) {
		breakf(vq, "device-readable descriptor after a writable one "
		       "(addr 0x%llx)", (unsigned long long)d->addr);
		return -EIO;
	}
	w->seen_write |= write;
	if (write)
		w->write_len += d->len;
	else
		w->read_len += d->len;
	if (w->read_len + w->write_len > UINT32_MAX) {
		breakf(vq, "chain length overflows 32 bits");
		return -EIO;
	}
	if (d->len == 0)
		return 0;
	/* IOVA mode: data buffers are the device model's to translate when
	 * it uses them (a fault there fails the request, not the queue); only
	 * a range that wraps is a ring error. */
	if (vq->io ? !range_last(d->addr, d->len, &last) :
		     check_ram(vq, d->addr, d->len, write) != 0) {
		breakf(vq, "buffer 0x%llx+0x%x is not %sguest RAM",
		       (unsigned long long)d->addr, d->len,
		       write ? "writable " : "");
		return -EIO;
	}
	if (e->nseg >= 2u * vq->max_size) { /* cannot happen: bounded walk */
		breakf(vq, "too many segments");
		return -EIO;
	}
	e->segs[e->nseg++] = (struct vq_seg){ d->addr, d->len, write };
	if (!write)
		e->nread = e->nseg;
	return 0;
}

/*
 * check_indirect() - validate a descriptor with INDIRECT before entering
 * its table.  @chained: it was reached through NEXT or NEXT is set (split
 * allows a direct chain before it, packed does not).
 * Return: 0; -EIO (broken).
 */
static int check_indirect(struct vq *vq, const struct walk *w,
			  const struct raw_desc *d, bool chained)
{
	const char *why = NULL;

	if (!vq->indirect)
		why = "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
	else if (w->in_indirect)
		why = "indirect descriptor inside an indirect table";
	else if (d->flags & VQ_DESC_F_NEXT)
		why = "descriptor has both NEXT and INDIRECT";
	else if (chained)
		why = "indirect descriptor inside a packed chain";
	else if (d->len == 0 || d->len % DESC_SIZE)
		why = "indirect table length not a non-zero multiple of 16";
	else if (d->len / DESC_SIZE > vq->max_size)
		why = "indirect table longer than the queue maximum";
	else if (check_ram(vq, d->addr, d->len, false))
		why = "indirect table not in guest RAM";
	if (why) {
		breakf(vq, "%s (table 0x%llx+0x%x)", why,
		       (unsigned long long)d->addr, d->len);
		return -EIO;
	}
	return 0;
}

/*
 * walk_indirect() - add every element of the indirect table described by
 * @ind.  Split tables are chained by next (from entry 0); packed tables
 * are sequential and only WRITE is meaningful.  Return: 0; -EIO.
 */
static int walk_indirect(struct vq *vq, struct walk *w,
			 const struct raw_desc *ind)
{
	uint32_t n = ind->len / DESC_SIZE, i = 0, count = 0;
	struct raw_desc d;

	w->in_indirect = true;
	for (;;) {
		if (++count > n) {
			breakf(vq, "indirect chain longer than its table (%u)",
			       n);
			return -EIO;
		}
		if (read_desc(vq, ind->addr, i, &d)) {
			breakf(vq, "indirect table unreadable");
			return -EIO;
		}
		if ((d.flags & VQ_DESC_F_INDIRECT) &&
		    check_indirect(vq, w, &d, false))
			return -EIO;
		if (add_seg(vq, w, &d, d.flags & VQ_DESC_F_WRITE))
			return -EIO;
		if (vq->packed) {
			if (++i == n)
				return 0;
			continue;
		}
		if (!(d.flags & VQ_DESC_F_NEXT))
			return 0;
		i = d.next_or_id;
		if (i >= n) {
			breakf(vq, "indirect next index %u past the table "
			       "(%u entries)", i, n);
			return -EIO;
		}
	}
}

/* finish_elem() - fill the totals of @e from the walk. */
static void finish_elem(const struct walk *w)
{
	w->e->read_len = (uint32_t)w->read_len;
	w->e->write_len = (uint32_t)w->write_len;
}

/*
 * read_avail() - the driver's available index into *@idx and how many
 * chains it makes available into *@n; a valid index becomes the shadow.
 * Nothing is logged.  Return: 0; -EFAULT (unreadable); -ERANGE (more than
 * the queue size ahead).
 */
static int read_avail(struct vq *vq, uint16_t *idx, uint16_t *n)
{
	if (drv16(vq, AVAIL_IDX, idx))
		return -EFAULT;
	*n = (uint16_t)(*idx - vq->last_avail);
	if (*n > vq->size)
		return -ERANGE;
	vq->avail_shadow = *idx;
	return 0;
}

/* split_avail() - how many chains are available.  Return: 0; -EIO. */
static int split_avail(struct vq *vq, uint16_t *n)
{
	uint16_t idx;
	int err = read_avail(vq, &idx, n);

	if (err == -EFAULT)
		breakf(vq, "available ring unreadable");
	else if (err)
		breakf(vq, "available index %u is %u entries ahead of %u "
		       "(size %u)", idx, *n, vq->last_avail, vq->size);
	return err ? -EIO : 0;
}

/*
 * split_empty() - nothing available: with EVENT_IDX publish
 * avail_event so the driver's next add notifies us, then look again
 * (the driver may have added meanwhile).  Return: 0 (something arrived);
 * -ENOENT; -EIO.
 */
static int split_empty(struct vq *vq)
{
	uint64_t ev = USED_RING + (uint64_t)vq->size * USED_ELEM_SIZE;
	uint16_t n;

	if (!vq->event_idx || vq->kicks_off) /* off: never arm (vq_set_kicks) */
		return -ENOENT;
	if (dev16(vq, ev, vq->last_avail)) {
		breakf(vq, "used ring not writable");
		return -EIO;
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (split_avail(vq, &n))
		return -EIO;
	return n ? 0 : -ENOENT;
}

/* split_walk() - walk the chain at @head into @w.  Return: 0; -EIO. */
static int split_walk(struct vq *vq, struct walk *w, uint16_t head)
{
	uint32_t i = head, count = 0;
	struct raw_desc d;

	for (;;) {
		if (++count > vq->size) {
			breakf(vq, "descriptor chain from head %u longer than "
			       "the queue size %u (loop?)", head, vq->size);
			return -EIO;
		}
		if (ring_desc(vq, i, &d)) {
			breakf(vq, "descriptor table unreadable");
			return -EIO;
		}
		if (d.flags & VQ_DESC_F_INDIRECT) {
			if (check_indirect(vq, w, &d, false))
				return -EIO;
			return walk_indirect(vq, w, &d);
		}
		if (add_seg(vq, w, &d, d.flags & VQ_DESC_F_WRITE))
			return -EIO;
		if (!(d.flags & VQ_DESC_F_NEXT))
			return 0;
		i = d.next_or_id;
		if (i >= vq->size) {
			breakf(vq, "descriptor %u: next index %u past the "
			       "ring (size %u)", count, i, vq->size);
			return -EIO;
		}
	}
}

/*
 * Two-descriptor chains.  A virtio-iommu request (and most requests of
 * any device) is one readable descriptor chained to one writable one.
 * pair_ok() and the two *_pair() walks take that shape in one step: both
 * descriptors plain (no INDIRECT), non-empty, the first NEXT and not
 * WRITE, the second WRITE and not NEXT, and both buffers inside the region
 * the buffer cache holds (writable for the second).  Whatever the general
 * walk would refuse or treat differently (an empty or indirect element, a
 * buffer outside the cached region, a loop back to the head, IOVA mode,
 * where the ring pointers are NULL) fails one of these tests, and the
 * general walk then runs from the head as before and gives every answer
 * it gave: the fast path only ever accepts chains the general walk
 * accepts, with the same segments.
 */
#define PAIR_MASK (VQ_DESC_F_NEXT | VQ_DESC_F_WRITE | VQ_DESC_F_INDIRECT)

/* pair_ok() - fill @e from readable @a and writable @b if they qualify. */
static inline bool pair_ok(struct vq *vq, struct vq_elem *e,
			   const struct raw_desc *a, const struct raw_desc *b)
{
	uint64_t tid;

	if ((a->flags & PAIR_MASK) != VQ_DESC_F_NEXT ||
	    (b->flags & PAIR_MASK) != VQ_DESC_F_WRITE || !a->len || !b->len ||
	    (uint64_t)a->len + b->len > UINT32_MAX ||
	    (tid = mem_table_id(vq->mem)) != vq->mc.table_id ||
	    !mem_cache_in(&vq->mc, a->addr, a->len, false) ||
	    !mem_cache_in(&vq->mc, b->addr, b->len, true))
		return false;
	e->segs = vq->segs;
	e->segs[0] = (struct vq_seg){ a->addr, a->len, 0 };
	e->segs[1] = (struct vq_seg){ b->addr, b->len, 1 };
	e->nseg = 2;
	e->nread = 1;
	e->read_len = a->len;
	e->write_len = b->len;
	e->rhva = vq->mc.piece.hva + (a->addr - vq->mc.piece.gpa);
	e->whva = vq->mc.piece.hva + (b->addr - vq->mc.piece.gpa);
	e->tid = tid;
	return true;
}

/* split_pair() - the chain at @head as a readable + writable pair. */
static inline bool split_pair(struct vq *vq, struct vq_elem *e, uint16_t head)
{
	struct raw_desc a, b;

	if (!vq->rc_desc)
		return false;
	decode_desc(vq, vq->rc_desc + (uint64_t)head * DESC_SIZE, &a);
	if (a.next_or_id >= vq->size)
		return false;
	decode_desc(vq, vq->rc_desc + (uint64_t)a.next_or_id * DESC_SIZE, &b);
	return pair_ok(vq, e, &a, &b);
}

/* split_pop() - vq_pop() for split rings. */
static int split_pop(struct vq *vq, struct vq_elem *e)
{
	struct vq_elem tmp;
	uint16_t head;
	uint64_t slot;

	slot = AVAIL_RING + 2 * (uint64_t)(vq->last_avail & (vq->size - 1));
	/* a plain read: the entry was published before the index we acquired */
	if (likely(vq->rc_drv))
		memcpy(&head, vq->rc_drv + slot, sizeof(head));
	else if (ram_read(vq, vq->driver + slot, &head, sizeof(head))) {
		breakf(vq, "available ring unreadable");
		return -EIO;
	}
	head = le16toh(head);
	if (head >= vq->size) {
		breakf(vq, "available entry %u: head %u past the ring "
		       "(size %u)", vq->last_avail, head, vq->size);
		return -EIO;
	}
	if (split_pair(vq, e, head)) {
		/* filled @e only on success */
	} else {
		struct walk w = { .e = &tmp };

		tmp = (struct vq_elem){ .segs = vq->segs };
		if (split_walk(vq, &w, head))
			return -EIO; /* @e left alone */
		finish_elem(&w);
		*e = tmp;
	}
	e->id = head;
	e->ndesc = 1;
	vq->last_avail++;
	return 0;
}

/*
 * split_more() - the available entries seen last are used up: read the
 * driver's index again (once per batch: entries up to the index read last
 * are known to be there, that read was an acquire ordering their reads
 * after it).  Return: 0 (something to pop); -ENOENT; -EIO.
 */
static int split_more(struct vq *vq) __attribute__((noinline));

static int split_more(struct vq *vq)
{
	uint16_t n;

	if (split_avail(vq, &n))
		return -EIO;
	return n ? 0 : split_empty(vq);
}

/* packed_is_avail() - whether @flags mark a descriptor available. */
static bool packed_is_avail(uint16_t flags, bool wrap)
{
	bool avail = flags & VQ_DESC_F_AVAIL, used = flags & VQ_DESC_F_USED;

	return avail == wrap && used != wrap;
}

/*
 * packed_pair() - the chain at next_avail (first flags @flags, acquired)
 * as a readable + writable pair; then the ring position moves past it.
 * A one-entry ring is left to the general walk (its chain length check).
 */
static inline bool packed_pair(struct vq *vq, struct vq_elem *e,
			       uint16_t flags)
{
	uint32_t pos = vq->next_avail;
	bool wrap = vq->avail_wrap;
	struct raw_desc a, b;

	if (!vq->rc_desc || vq->size < 2)
		return false;
	decode_desc(vq, vq->rc_desc + (uint64_t)pos * DESC_SIZE, &a);
	a.flags = flags; /* the value we acquired */
	if (++pos == vq->size) {
		pos = 0;
		wrap = !wrap;
	}
	decode_desc(vq, vq->rc_desc + (uint64_t)pos * DESC_SIZE, &b);
	if (!packed_is_avail(b.flags, wrap) || !pair_ok(vq, e, &a, &b))
		return false;
	if (++pos == vq->size) {
		pos = 0;
		wrap = !wrap;
	}
	e->id = b.next_or_id; /* the buffer ID is in the last descriptor */
	e->ndesc = 2;
	vq->next_avail = (uint16_t)pos;
	vq->avail_wrap = wrap;
	return true;
}

/* packed_pop() - vq_pop() for packed rings. */
static int packed_pop(struct vq *vq, struct vq_elem *out)
{
	struct vq_elem tmp, *e = &tmp;
	struct walk w = { .e = e };
	uint16_t pos = vq->next_avail, flags, count = 0;
	bool wrap = vq->avail_wrap;
	struct raw_desc d;

	if (desc16(vq, (uint64_t)pos * DESC_SIZE + PDESC_FLAGS, &flags)) {
		breakf(vq, "descriptor ring unreadable");
		return -EIO;
	}
	if (!packed_is_avail(flags, wrap))
		return -ENOENT;
	if (packed_pair(vq, out, flags))
		return 0; /* filled @out only on success */
	tmp = (struct vq_elem){ .segs = vq->segs };
	do {
		if (++count > vq->size) {
			breakf(vq, "descriptor chain at %u longer than the "
			       "queue size %u", vq->next_avail, vq->size);
			return -EIO;
		}
		if (ring_desc(vq, pos, &d)) {
			breakf(vq, "descriptor ring unreadable");
			return -EIO;
		}
		if (count == 1)
			d.flags = flags; /* the value we acquired */
		else if (!packed_is_avail(d.flags, wrap)) {
			breakf(vq, "chain continues into descriptor %u that "
			       "is not available", pos);
			return -EIO;
		}
		if (d.flags & VQ_DESC_F_INDIRECT) {
			if (check_indirect(vq, &w, &d, count > 1) ||
			    walk_indirect(vq, &w, &d))
				return -EIO;
		} else if (add_seg(vq, &w, &d, d.flags & VQ_DESC_F_WRITE)) {
			return -EIO;
		}
		if (++pos == vq->size) {
			pos = 0;
			wrap = !wrap;
		}
	} while (d.flags & VQ_DESC_F_NEXT);
	e->id = d.next_or_id; /* the buffer ID is in the last descriptor */
	e->ndesc = count;
	finish_elem(&w);
	vq->next_avail = pos;
	vq->avail_wrap = wrap;
	*out = tmp; /* @out is left alone on failure */
	return 0;
}

int vq_pop(struct vq *vq, struct vq_elem *e)
{
	int err;

	if (unlikely(vq->broken))
		return -EIO;
	if (unlikely(!vq->ready))
		return -ENOENT;
	rings_sync(vq);
	if (vq->packed) {
		err = packed_pop(vq, e); /* @e is left alone on failure */
	} else {
		if (vq->avail_shadow == vq->last_avail &&
		    (err = split_more(vq)) != 0)
			return err;
		err = split_pop(vq, e); /* @e is left alone on failure */
	}
	if (!err)
		vq->popped++;
	return err;
}

void vq_unpop(struct vq *vq, const struct vq_elem *e)
{
	if (vq->packed) {
		if (vq->next_avail < e->ndesc) {
			vq->next_avail = (uint16_t)(vq->next_avail + vq->size -
						    e->ndesc);
			vq->avail_wrap = !vq->avail_wrap;
		} else {
			vq->next_avail = (uint16_t)(vq->next_avail - e->ndesc);
		}
	} else {
		/* avail_shadow stays: the entries up to it are still there */
		vq->last_avail--;
	}
	vq->popped--;
}

/* kick_store() - write the suppression state @on to the ring. */
static int kick_store(struct vq *vq, bool on)
{
	uint64_t at;
	uint16_t v;

	if (vq->packed) {
		at = EVENT_FLAGS;
		v = on ? VQ_EVENT_F_ENABLE : VQ_EVENT_F_DISABLE;
	} else if (vq->event_idx) {
		at = USED_RING + (uint64_t)vq->size * USED_ELEM_SIZE;
		/* on: the next entry notifies; off: one behind, never reached */
		v = on ? vq->last_avail : (uint16_t)(vq->last_avail - 1);
		vq->kick_mark = v;
	} else {
		at = USED_FLAGS;
		v = on ? 0 : VQ_USED_F_NO_NOTIFY;
	}
	if (dev16(vq, at, v)) {
		breakf(vq, "ring not writable (notification suppression)");
		return -EIO;
	}
	return 0;
}

int vq_set_kicks(struct vq *vq, bool on)
{
	bool refresh = !on && !vq->packed && vq->event_idx &&
		       vq->kick_mark != (uint16_t)(vq->last_avail - 1);
	int err;

	if (vq->broken || !vq->ready)
		return vq->broken ? -EIO : 0;
	if (on == !vq->kicks_off && !refresh)
		return 0;
	rings_sync(vq);
	err = kick_store(vq, on);
	if (err)
		return err;
	vq->kicks_off = !on;
	/* Barrier: our store before the caller's next look at the ring. */
	if (on)
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return 0;
}

bool vq_has_avail(struct vq *vq)
{
	uint16_t v, n;

	if (vq->broken || !vq->ready)
		return false;
	rings_sync(vq);
	if (vq->packed) {
		if (desc16(vq, (uint64_t)vq->next_avail * DESC_SIZE +
			   PDESC_FLAGS, &v))
			return true; /* vq_pop() reports it */
		return packed_is_avail(v, vq->avail_wrap);
	}
	if (vq->avail_shadow != vq->last_avail)
		return true;
	/* a valid index becomes the shadow, so vq_pop() does not read it again;
	 * a bad one is vq_pop()'s to report */
	return read_avail(vq, &v, &n) || n;
}

/* split_push() - vq_push() for split rings. */
static int split_push(struct vq *vq, const struct vq_elem *e, uint32_t len)
{
	uint64_t slot = USED_RING + (uint64_t)(vq->used_idx & (vq->size - 1)) *
					    USED_ELEM_SIZE;
	uint32_t elem[2] = { htole32(e->id), htole32(len) };

	if (dev_write(vq, slot, elem, sizeof(elem)) ||
	    dev16(vq, USED_IDX, (uint16_t)(vq->used_idx + 1))) {
		breakf(vq, "used ring not writable");
		return -EIO;
	}
	vq->used_idx++;
	return 0;
}

/* packed_push() - vq_push() for packed rings. */
static int packed_push(struct vq *vq, const struct vq_elem *e, uint32_t len)
{
	uint64_t d = (uint64_t)vq->next_used * DESC_SIZE;
	uint8_t b[6];
	uint32_t l = htole32(len);
	uint16_t id = htole16(e->id), flags = 0;
	uint32_t next;

	memcpy(b, &l, 4);
	memcpy(b + 4, &id, 2);
	if (vq->used_wrap)
		flags |= VQ_DESC_F_AVAIL | VQ_DESC_F_USED;
	if (len)
		flags |= VQ_DESC_F_WRITE;
	if (desc_write(vq, d + 8, b, sizeof(b)) ||
	    desc16_set(vq, d + PDESC_FLAGS, flags)) {
		breakf(vq, "descriptor ring not writable");
		return -EIO;
	}
	next = (uint32_t)vq->next_used + (e->ndesc ? e->ndesc : 1);
	if (next >= vq->size) {
		next -= vq->size;
		vq->used_wrap = !vq->used_wrap;
	}
	vq->next_used = (uint16_t)(next % vq->size);
	return 0;
}

int vq_push_slow(struct vq *vq, const struct vq_elem *e, uint32_t used_len)
{
	int err;

	if (vq->broken || !vq->ready)
		return -EIO;
	rings_sync(vq);
	/* Never claim more than the driver offered (the driver trusts it). */
	used_len = MIN(used_len, e->write_len);
	err = vq->packed ? packed_push(vq, e, used_len)
			 : split_push(vq, e, used_len);
	if (!err)
		vq->pending_used++;
	return err;
}

/* split_need_notify() - EVENT_IDX or NO_INTERRUPT rules (§2.7.7). */
static bool split_need_notify(struct vq *vq, uint32_t pending)
{
	uint16_t v, old = (uint16_t)(vq->used_idx - pending);

	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	if (!vq->event_idx) {
		if (drv16(vq, AVAIL_FLAGS, &v))
			return true;
		return !(v & VQ_AVAIL_F_NO_INTERRUPT);
	}
	if (pending > UINT16_MAX)
		return true;
	if (drv16(vq, AVAIL_RING + 2 * (uint64_t)vq->size, &v))
		return true;
	/* used_event in [old, new): an entry was placed at index used_event */
	return (uint16_t)(vq->used_idx - v - 1) <
	       (uint16_t)(vq->used_idx - old);
}

/* linear_pos() - a (offset, wrap) ring position as 0 .. 2 * size - 1. */
static uint32_t linear_pos(const struct vq *vq, uint32_t off, bool wrap)
{
	return off + (wrap ? 0 : vq->size);
}

/* packed_need_notify() - driver event suppression rules (§2.8.10). */
static bool packed_need_notify(struct vq *vq, uint32_t pending)
{
	uint32_t span = 2u * vq->size, now, old, ev;
	uint16_t off_wrap, flags;
	bool need = true;

	now = linear_pos(vq, vq->next_used, vq->used_wrap);
	old = vq->signalled_used;
	vq->signalled_used = (uint16_t)now;
	if (drv16(vq, EVENT_FLAGS, &flags) ||
	    drv16(vq, EVENT_OFF_WRAP, &off_wrap))
		return true;
	flags &= EVENT_FLAGS_MASK;
	if (flags == VQ_EVENT_F_DISABLE)
		return false;
	if (flags != VQ_EVENT_F_DESC || !vq->event_idx)
		return true; /* ENABLE, or a mode we must not honour */
	if (pending >= vq->size)
		return true; /* positions may have lapped: be safe */
	if ((off_wrap & 0x7fff) >= vq->size)
		return false; /* names no descriptor: never triggers */
	ev = linear_pos(vq, off_wrap & 0x7fff, off_wrap >> EVENT_WRAP_BIT);
	need = (ev + span - old) % span < (now + span - old) % span;
	return need;
}

bool vq_need_notify(struct vq *vq)
{
	uint32_t pending = vq->pending_used;

	if (!vq->ready || vq->broken || pending == 0)
		return false;
	vq->pending_used = 0;
	rings_sync(vq);
	/* Our used index/flags stores before the driver's suppression. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vq->packed ? packed_need_notify(vq, pending)
			  : split_need_notify(vq, pending);
}

/*
 * vq_copy_part() - copy between @buf and the readable (!@write) or writable
 * part of @e at byte @off, segment by segment (vq_read() and vq_write()
 * when vq_part_hva() does not answer).  Return: 0; -ERANGE; -EFAULT.
 */
int vq_copy_part(struct vq *vq, const struct vq_elem *e, uint32_t off,
		 void *buf, uint32_t len, bool write)
{
	uint32_t first = write ? e->nread : 0, end = write ? e->nseg : e->nread;
	uint32_t total = write ? e->write_len : e->read_len;
	uint8_t *p = buf;

	if ((uint64_t)off + len > total)
		return -ERANGE;
	for (uint32_t i = first; i < end && len; i++) {
		const struct vq_seg *s = &e->segs[i];
		uint32_t n;
		int err;

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		n = MIN(s->len - off, len);
		err = ram_copy(vq, s->gpa + off, p, n, write);
		if (err)
			return -EFAULT;
		p += n;
		len -= n;
		off = 0;
	}
	return len ? -ERANGE : 0;
}
