/*
 * fuzz_virtqueue.c - libFuzzer target for the device side of virtqueues
 * (src/virtio/virtqueue.c): arbitrary descriptor tables, indirect tables,
 * available rings / packed descriptor flags and index movements.
 *
 * Guest RAM is small and has a hole and a read-only region:
 *   A [0x0000, 0x2000) RW  rings at 0x0 / 0x400 / 0x600, indirect area
 *                          at 0x1000 (64 descriptors), buffers above
 *   hole [0x2000, 0x3000)
 *   B [0x3000, 0x4000) RW  adjacent to
 *   C [0x4000, 0x4800) RO
 *
 * Input: 4 header bytes (bit 0 packed, 1 EVENT_IDX, 2 INDIRECT, 3 ring
 * size and addresses from the stream; queue size selector; queue maximum
 * selector; rounds), then a stream
 * (zeros once exhausted) that fills the descriptor table and the indirect
 * area with compact 6-byte descriptors {addr code u16, len code u16,
 * flags u8, next/id u8} decoded so that both plausible and nasty values
 * are common, the split available ring (flags, entries, used_event) or
 * the packed driver event structure, and then per round: how far the
 * "driver" moves (split: avail.idx += n; packed: n descriptors marked
 * available with the driver's wrap counter), an optional descriptor
 * rewrite, whether kicks are suppressed (vq_set_kicks, as a polling
 * device sets it), and the used length to push.
 *
 * Every popped chain is checked and the target abort()s on a violation:
 * each segment non-empty and inside RAM (writable ones inside RW RAM),
 * nseg within 2 * queue max, readable segments before writable ones,
 * totals equal to the sums, vq_read/vq_write over the whole chain work;
 * vq_pop returns only 0, -ENOENT or -EIO; a queue breaks with exactly
 * one log line and stays broken until reset.  A broken queue is reset
 * and configured again, so later rounds run on a fresh queue.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "virtio/virtqueue.h"

#define A_END 0x2000ull
#define B_START 0x3000ull
#define B_END 0x4000ull
#define C_END 0x4800ull
#define DESC_GPA 0x0ull
#define DRIVER_GPA 0x400ull
#define DEVICE_GPA 0x600ull
#define IND_GPA 0x1000ull
#define IND_N 64
#define MAX_Q 32
#define MAX_QMAX 64

struct input {
	const uint8_t *d;
	size_t n, pos;
};

struct world {
	struct viommu_mem *mem;
	uint8_t *a, *b; /* b backs B and C */
	unsigned long lines;
	bool verbose;
};

static struct world w; /* created once; contents reset per input */

/* count_line() - count log lines; FUZZ_VQ_VERBOSE=1 also prints them. */
static void count_line(void *opaque, enum viommu_log_level l, const char *s)
{
	(void)opaque;
	(void)l;
	if (w.verbose)
		fprintf(stderr, "log: %s\n", s);
	w.lines++;
}

static const struct viommu_log fuzz_log = { count_line, NULL,
					    VIOMMU_LOG_WARN };

static uint8_t get8(struct input *in)
{
	return in->pos < in->n ? in->d[in->pos++] : 0;
}

static uint16_t get16(struct input *in)
{
	uint16_t lo = get8(in);

	return (uint16_t)(lo | (get8(in) << 8));
}

/* world_init() - guest RAM and the memory object, once. */
static void world_init(void)
{
	struct viommu_mem_region r[3];

	if (w.mem)
		return;
	w.verbose = getenv("FUZZ_VQ_VERBOSE") != NULL;
	w.a = aligned_alloc(4096, A_END);
	w.b = aligned_alloc(4096, 0x2000); /* B and C: 0x1800 used */
	r[0] = (struct viommu_mem_region){ 0, A_END, -1, 0, w.a, 0 };
	r[1] = (struct viommu_mem_region){ B_START, B_END - B_START, -1, 0,
					   w.b, 0 };
	r[2] = (struct viommu_mem_region){ B_END, C_END - B_END, -1, 0,
					   w.b + (B_END - B_START),
					   VIOMMU_MEM_F_READONLY };
	if (!w.a || !w.b || viommu_mem_create(NULL, &w.mem) ||
	    viommu_mem_set_regions(w.mem, r, 3))
		abort();
}

/* ram() - host address of RW guest RAM at @gpa (rings, tables). */
static uint8_t *ram(uint64_t gpa)
{
	return gpa < A_END ? w.a + gpa : w.b + (gpa - B_START);
}

/* decode_addr() - mostly small addresses, sometimes nasty ones. */
static uint64_t decode_addr(uint16_t c)
{
	static const uint64_t nasty[8] = {
		0xfffffffffffffff0ull, A_END - 8, A_END, B_END - 4,
		C_END - 16, IND_GPA, 0xffffffff00000000ull, B_START - 1,
	};

	return (c & 0x8000) ? nasty[c & 7] : (c & 0x7fff);
}

/* decode_len() - mostly short lengths, sometimes nasty ones. */
static uint32_t decode_len(uint16_t c, uint16_t qmax)
{
	const uint32_t nasty[8] = {
		0xffffffffu, 0x80000000u, 0xfffffff0u, 0x10000u,
		16u * qmax, 16u * (qmax + 1u), 24, 0,
	};

	return (c & 0x8000) ? nasty[c & 7] : (c & 0x3ff);
}

/* put_desc() - decode one compact descriptor into the table at @gpa. */
static void put_desc(struct input *in, uint64_t gpa, bool packed,
		     uint16_t qmax)
{
	uint64_t addr = decode_addr(get16(in));
	uint32_t len = decode_len(get16(in), qmax);
	uint8_t f = get8(in), n = get8(in);
	uint16_t flags = f & 7, a = n;
	uint8_t *p = ram(gpa);

	if (packed) /* bits 6 and 7 become AVAIL and USED */
		flags |= (uint16_t)(((f >> 6) & 1) << 7 | ((f >> 7) & 1) << 15);
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	if (packed) {
		memcpy(p + 12, &a, 2); /* id */
		memcpy(p + 14, &flags, 2);
	} else {
		memcpy(p + 12, &flags, 2);
		memcpy(p + 14, &a, 2); /* next */
	}
}

/* in_ram() - whether [gpa, gpa + len) is RAM (RW RAM if @write). */
static bool in_ram(uint64_t gpa, uint32_t len, bool write)
{
	uint64_t end = gpa + len;

	if (len == 0 || end < gpa)
		return false;
	if (end <= A_END)
		return true;
	return gpa >= B_START && end <= (write ? B_END : C_END);
}

/* check_elem() - the invariants of a popped chain; abort() if broken. */
static void check_elem(struct vq *vq, const struct vq_elem *e)
{
	uint64_t rsum = 0, wsum = 0;
	static uint8_t buf[1000];

	if (e->nseg > 2u * vq->max_size || e->nread > e->nseg)
		abort();
	for (uint32_t i = 0; i < e->nseg; i++) {
		const struct vq_seg *s = &e->segs[i];

		if ((i < e->nread) == (s->write != 0))
			abort(); /* readable-before-writable */
		if (!in_ram(s->gpa, s->len, s->write))
			abort();
		if (s->write)
			wsum += s->len;
		else
			rsum += s->len;
	}
	if (rsum != e->read_len || wsum != e->write_len ||
	    rsum + wsum > UINT32_MAX)
		abort();
	/* the whole chain can be copied, in odd-sized chunks */
	for (uint32_t off = 0; off < e->read_len; off += sizeof(buf))
		if (vq_read(vq, e, off, buf,
			    MIN((uint32_t)sizeof(buf), e->read_len - off)))
			abort();
	for (uint32_t off = 0; off < e->write_len; off += sizeof(buf))
		if (vq_write(vq, e, off, buf,
			     MIN((uint32_t)sizeof(buf), e->write_len - off)))
			abort();
	if (vq_read(vq, e, e->read_len, buf, 1) != -ERANGE ||
	    vq_write(vq, e, e->write_len, buf, 1) != -ERANGE)
		abort();
}

struct setup {
	bool packed, event_idx, indirect, odd_layout;
	uint16_t size, qmax;
	uint64_t desc, driver, device;
};

/* fill_rings() - ring memory from the input. */
static void fill_rings(struct input *in, const struct setup *s)
{
	memset(w.a, 0, A_END);
	memset(w.b, 0, C_END - B_START);
	for (uint16_t i = 0; i < s->size; i++)
		put_desc(in, DESC_GPA + 16u * i, s->packed, s->qmax);
	for (uint16_t i = 0; i < IND_N; i++)
		put_desc(in, IND_GPA + 16u * i, s->packed, s->qmax);
	if (s->packed) {
		uint16_t ev[2] = { get16(in), get16(in) };

		memcpy(ram(DRIVER_GPA), ev, 4);
		return;
	}
	/* flags, idx (moved per round), ring[size], used_event */
	for (uint16_t i = 0; i < s->size + 3u; i++) {
		uint16_t v = i == 1 ? 0 : get8(in);

		memcpy(ram(DRIVER_GPA + 2u * i), &v, 2);
	}
}

/* drive() - the "driver" makes more buffers available for one round. */
static void drive(struct input *in, const struct setup *s, uint16_t *pos,
		  bool *wrap)
{
	uint8_t op = get8(in);
	uint16_t n = (op & 0x80) ? (op & 0x7f) : op % (s->size + 1u);

	if (!s->packed) {
		uint16_t idx;

		memcpy(&idx, ram(DRIVER_GPA + 2), 2);
		idx = (uint16_t)(idx + n);
		memcpy(ram(DRIVER_GPA + 2), &idx, 2);
	} else {
		for (uint16_t i = 0; i < n % (s->size + 1u); i++) {
			uint8_t *p = ram(DESC_GPA + 16u * *pos + 14);
			uint16_t f;

			memcpy(&f, p, 2);
			f &= (uint16_t)~((1u << 7) | (1u << 15));
			f |= *wrap ? (1u << 7) : (1u << 15);
			memcpy(p, &f, 2);
			if (++*pos == s->size) {
				*pos = 0;
				*wrap = !*wrap;
			}
		}
	}
	if (get8(in) & 1) { /* rewrite one descriptor */
		uint8_t i = get8(in);
		uint64_t gpa = (i & 0x80) ? IND_GPA + 16u * (i % IND_N)
					  : DESC_GPA + 16u * (i % s->size);

		put_desc(in, gpa, s->packed, s->qmax);
	}
}

/*
 * pop_all() - pop and push what is available, checking every result; the
 * n-th push of the round claims @len + n bytes written.
 */
static void pop_all(struct vq *vq, uint16_t len)
{
	struct vq_elem e;

	for (unsigned int i = 0; i < 2u * vq->size + 2; i++) {
		bool was_broken = vq->broken;
		unsigned long before = w.lines;
		int err = vq_pop(vq, &e);

		if (err == -ENOENT) {
			if (was_broken || vq->broken || w.lines != before)
				abort();
			return;
		}
		if (err == -EIO) {
			if (!vq->broken ||
			    w.lines != before + (was_broken ? 0 : 1))
				abort();
			return;
		}
		if (err || vq->broken)
			abort();
		check_elem(vq, &e);
		if (w.verbose)
			fprintf(stderr, "pop: id %u ndesc %u nseg %u nread %u "
				"read %u write %u\n", e.id, e.ndesc, e.nseg,
				e.nread, e.read_len, e.write_len);
		err = vq_push(vq, &e, (uint32_t)len + i);
		if (err && !(err == -EIO && vq->broken))
			abort();
	}
}

/*
 * set_kicks() - the device's kick suppression (vq_set_kicks) as a polling
 * device would use it: 0 or -EIO with exactly one log line as the queue
 * breaks; and vq_has_avail() false means vq_pop() finds nothing.
 */
static void set_kicks(struct vq *vq, bool on)
{
	bool was_broken = vq->broken;
	unsigned long before = w.lines;
	int err = vq_set_kicks(vq, on);

	if (err && !(err == -EIO && vq->broken))
		abort();
	if (w.lines != before + (vq->broken && !was_broken ? 1 : 0))
		abort();
	if (!vq->broken && !vq_has_avail(vq)) {
		struct vq_elem e;

		if (vq_pop(vq, &e) != -ENOENT || vq->broken)
			abort();
	}
}

/* parse_setup() - features and sizes from the header. */
static void parse_setup(struct input *in, struct setup *s)
{
	uint8_t cfg = get8(in), ssel = get8(in);

	s->packed = cfg & 1;
	s->event_idx = cfg & 2;
	s->indirect = cfg & 4;
	s->odd_layout = cfg & 8;
	s->size = s->packed ? (uint16_t)(1 + ssel % MAX_Q)
			    : (uint16_t)(1u << (ssel % 6));
	s->qmax = (uint16_t)(s->size + get8(in) % (MAX_QMAX - MAX_Q + 1));
	s->desc = DESC_GPA;
	s->driver = DRIVER_GPA;
	s->device = DEVICE_GPA;
}

/*
 * try_odd_layout() - header bit 3: configure a queue with a size and ring
 * addresses from the stream; it must either be accepted (and then work)
 * or be refused with exactly one log line.  Return: 0 accepted.
 */
static int try_odd_layout(struct input *in, struct vq *vq, struct setup *s)
{
	uint16_t size = get8(in) % 80;
	uint64_t d = decode_addr(get16(in)), a = decode_addr(get16(in));
	uint64_t u = decode_addr(get16(in));
	int err = vq_configure(vq, size, d, a, u, s->packed, s->event_idx,
			       s->indirect);

	if (err != 0 && (err != -EINVAL || w.lines != 1 || vq->ready))
		abort();
	if (err)
		return err;
	if (!size || size > s->qmax || (!s->packed && (size & (size - 1))) ||
	    (d & 15) || (u & 3) || (a & (s->packed ? 3 : 1)))
		abort(); /* accepted something invalid */
	s->size = size;
	s->desc = d;
	s->driver = a;
	s->device = u;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size, 0 };
	struct setup s;
	struct vq vq;
	unsigned int rounds;
	uint16_t pos = 0;
	bool wrap = true;

	world_init();
	parse_setup(&in, &s);
	rounds = 1 + get8(&in) % 16;
	fill_rings(&in, &s);
	w.lines = 0;
	if (vq_init(&vq, w.mem, &fuzz_log, NULL, "fuzz", s.qmax))
		abort();
	if (s.odd_layout) {
		if (try_odd_layout(&in, &vq, &s))
			goto out;
	} else if (vq_configure(&vq, s.size, DESC_GPA, DRIVER_GPA, DEVICE_GPA,
				s.packed, s.event_idx, s.indirect)) {
		abort(); /* the layout is valid by construction */
	}
	for (unsigned int r = 0; r < rounds; r++) {
		drive(&in, &s, &pos, &wrap);
		set_kicks(&vq, get8(&in) & 1);
		pop_all(&vq, get16(&in));
		vq_need_notify(&vq);
		if (vq.broken) {
			if (vq_pop(&vq, &(struct vq_elem){ 0 }) != -EIO)
				abort();
			vq_reset(&vq);
			if (vq_configure(&vq, s.size, s.desc, s.driver,
					 s.device, s.packed, s.event_idx,
					 s.indirect))
				abort();
			pos = 0;
			wrap = true;
		}
	}
out:
	vq_destroy(&vq);
	return 0;
}
