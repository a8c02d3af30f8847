/*
 * vq_fixture.h - the fixture shared by the virtqueue unit tests
 * (test_virtqueue.c: round trips, notification suppression, status and
 * features, threads; test_virtqueue_hard.c: the hardening rules).
 *
 * A fake device model ("echo") with two queues copies the readable part
 * of each buffer into its writable part and returns it with the exact
 * number of bytes written.  The tests drive it through drvring over
 * hva-backed guest memory with a hole, a pair of adjacent regions and a
 * read-only region.  Everything here is static inline so that each test
 * program uses what it needs.
 */
#ifndef VIOMMU_TESTS_VQ_FIXTURE_H
#define VIOMMU_TESTS_VQ_FIXTURE_H

#include "harness.h"
#include "base/util.h"
#include "refdrv/drvring.h"
#include "virtio/virtio_dev.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>

/* Guest RAM: RAM0 [0, 1M), hole, RAM1 [2M, 3M) + RAM2 [3M, 3M+256K)
 * adjacent, hole, ROM [4M, 4M+64K) read-only. */
#define RAM0 0x0ull
#define RAM0_SIZE 0x100000ull
#define HOLE 0x180000ull
#define RAM1 0x200000ull
#define RAM1_SIZE 0x100000ull
#define RAM2 0x300000ull
#define RAM2_SIZE 0x40000ull
#define ROM 0x400000ull
#define ROM_SIZE 0x10000ull
#define RING_AREA(q) (RAM0 + (uint64_t)(q) * 0x40000)
#define BUF_AREA 0x80000ull

#define F_VERSION_1 (1ull << VIOMMU_VIRTIO_F_VERSION_1)
#define F_EVENT_IDX (1ull << VIOMMU_VIRTIO_F_EVENT_IDX)
#define F_INDIRECT (1ull << VIOMMU_VIRTIO_F_INDIRECT_DESC)
#define F_PACKED (1ull << VIOMMU_VIRTIO_F_RING_PACKED)
#define F_POISON (1ull << 5) /* the fake device refuses this one */
#define S_ALL_OK (VIOMMU_VIRTIO_S_ACKNOWLEDGE | VIOMMU_VIRTIO_S_DRIVER | \
		  VIOMMU_VIRTIO_S_FEATURES_OK | VIOMMU_VIRTIO_S_DRIVER_OK)
#define S_NR VIOMMU_VIRTIO_S_NEEDS_RESET

/* Split and packed descriptors as laid out in guest memory (LE host). */
struct sdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct pdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t id, flags;
};

/* ---- the fake device -------------------------------------------------- */

struct fake {
	struct viommu_virtio_dev vdev;
	unsigned int popped[2];
	struct vq_elem last;
	struct vq_seg last_segs[2 * VIOMMU_VIRTIO_QUEUE_MAX];
	bool hold;              /* leave buffers available */
	unsigned int resets, sys_resets;
	uint8_t cfg[8];
	unsigned int cfg_writes;
	uint32_t w_off, w_len;
};

/* echo() - copy the readable part of @e into its writable part. */
static inline uint32_t echo(struct vq *vq, const struct vq_elem *e)
{
	uint32_t n = MIN(e->read_len, e->write_len);
	uint8_t chunk[512];

	for (uint32_t off = 0; off < n; off += sizeof(chunk)) {
		uint32_t len = MIN((uint32_t)sizeof(chunk), n - off);

		if (vq_read(vq, e, off, chunk, len) ||
		    vq_write(vq, e, off, chunk, len))
			return 0;
	}
	return n;
}

static inline void fake_notify(struct viommu_virtio_dev *dev, uint16_t q)
{
	struct fake *fk = dev->priv;
	struct vq *vq = &dev->vqs[q];
	struct vq_elem e;
	int err;

	while (!fk->hold && (err = vq_pop(vq, &e)) != -ENOENT) {
		if (err) {
			__vdev_needs_reset(dev, "fake: queue broken");
			break;
		}
		fk->popped[q]++;
		fk->last = e;
		memcpy(fk->last_segs, e.segs, e.nseg * sizeof(*e.segs));
		fk->last.segs = fk->last_segs;
		vq_push(vq, &e, echo(vq, &e));
	}
	__vdev_queue_done(dev, q);
}

static inline int fake_features_ok(struct viommu_virtio_dev *dev, uint64_t f)
{
	return (f & F_POISON) ? -EINVAL : 0;
}

static inline void fake_config_read(struct viommu_virtio_dev *dev, uint32_t off,
			     void *buf, uint32_t len)
{
	struct fake *fk = dev->priv;

	if (off < sizeof(fk->cfg))
		memcpy(buf, fk->cfg + off, MIN(len, sizeof(fk->cfg) - off));
}

static inline void fake_config_write(struct viommu_virtio_dev *dev, uint32_t off,
			      const void *buf, uint32_t len)
{
	struct fake *fk = dev->priv;

	fk->cfg_writes++;
	fk->w_off = off;
	fk->w_len = len;
}

static inline void fake_reset(struct viommu_virtio_dev *dev, bool system)
{
	struct fake *fk = dev->priv;

	fk->resets++;
	fk->sys_resets += system;
}

static const struct vdev_ops fake_ops = {
	.device_id = 0x7e57,
	.features_ok = fake_features_ok,
	.queue_notify = fake_notify,
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.reset = fake_reset,
};

/* ---- fixture ---------------------------------------------------------- */

struct opts {
	bool packed, event_idx, indirect;
	uint16_t qsize, qmax;
};

struct fx {
	struct opts o;
	uint8_t *ram0, *ram1, *rom; /* ram1 also backs RAM2 */
	struct viommu_mem *mem;
	struct fake fk;
	struct drvring ring[2];
	uint64_t next_buf;
	unsigned long nlog, irq_queue[2], irq_config;
	char last_log[512];
};

static inline void log_cb(void *opaque, enum viommu_log_level level,
		   const char *line)
{
	struct fx *f = opaque;

	f->nlog++;
	snprintf(f->last_log, sizeof(f->last_log), "%s", line);
}

static inline void irq_cb(void *opaque, uint8_t isr, uint16_t q)
{
	struct fx *f = opaque;

	if (isr & VIOMMU_VIRTIO_ISR_CONFIG)
		f->irq_config++;
	if ((isr & VIOMMU_VIRTIO_ISR_QUEUE) && q < 2)
		f->irq_queue[q]++;
}

static inline struct viommu_virtio_dev *dev_of(struct fx *f)
{
	return &f->fk.vdev;
}

/* hva() - host address of guest RAM at @gpa (tests only use RAM). */
static inline void *hva(struct fx *f, uint64_t gpa)
{
	if (gpa < RAM0 + RAM0_SIZE) /* RAM0 starts at 0 */
		return f->ram0 + (gpa - RAM0);
	if (gpa >= RAM1 && gpa < RAM2 + RAM2_SIZE)
		return f->ram1 + (gpa - RAM1);
	if (gpa >= ROM && gpa < ROM + ROM_SIZE)
		return f->rom + (gpa - ROM);
	abort();
}

/* buf_alloc() - @len bytes of RAM0 for buffers (16-byte aligned). */
static inline uint64_t buf_alloc(struct fx *f, uint32_t len)
{
	uint64_t g = f->next_buf;

	f->next_buf = (f->next_buf + len + 15) & ~15ull;
	if (f->next_buf > RAM0 + RAM0_SIZE)
		abort();
	return g;
}

/* negotiate() - the driver's side of initialisation, all queues. */
static inline int negotiate(struct fx *f, uint64_t features)
{
	struct viommu_virtio_dev *d = dev_of(f);
	struct viommu_virtio_queue_cfg cfg;
	int err;

	viommu_virtio_dev_set_status(d, VIOMMU_VIRTIO_S_ACKNOWLEDGE);
	viommu_virtio_dev_set_status(d, VIOMMU_VIRTIO_S_ACKNOWLEDGE |
					 VIOMMU_VIRTIO_S_DRIVER);
	viommu_virtio_dev_set_driver_features(d, features);
	err = viommu_virtio_dev_set_status(d, S_ALL_OK &
					   ~VIOMMU_VIRTIO_S_DRIVER_OK);
	if (err)
		return err;
	for (uint16_t q = 0; q < 2; q++) {
		drvring_reset(&f->ring[q]);
		drvring_queue_cfg(&f->ring[q], &cfg);
		err = viommu_virtio_dev_queue_setup(d, q, &cfg);
		if (err)
			return err;
	}
	return viommu_virtio_dev_set_status(d, S_ALL_OK);
}

static inline uint64_t opts_features(const struct opts *o)
{
	return F_VERSION_1 | (o->packed ? F_PACKED : 0) |
	       (o->event_idx ? F_EVENT_IDX : 0) |
	       (o->indirect ? F_INDIRECT : 0);
}

/* fx_new() - memory and device, not yet negotiated. */
static inline struct fx *fx_new(struct opts o)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct viommu_log log;
	struct viommu_mem_region r[4];

	if (!o.qsize)
		o.qsize = 8;
	if (!o.qmax)
		o.qmax = 256;
	f->o = o;
	f->ram0 = aligned_alloc(4096, RAM0_SIZE);
	f->ram1 = aligned_alloc(4096, RAM1_SIZE + RAM2_SIZE);
	f->rom = aligned_alloc(4096, ROM_SIZE);
	memset(f->ram0, 0, RAM0_SIZE);
	memset(f->ram1, 0, RAM1_SIZE + RAM2_SIZE);
	memset(f->rom, 0, ROM_SIZE);
	r[0] = (struct viommu_mem_region){ RAM0, RAM0_SIZE, -1, 0, f->ram0, 0 };
	r[1] = (struct viommu_mem_region){ RAM1, RAM1_SIZE, -1, 0, f->ram1, 0 };
	r[2] = (struct viommu_mem_region){ RAM2, RAM2_SIZE, -1, 0,
					   f->ram1 + RAM1_SIZE, 0 };
	r[3] = (struct viommu_mem_region){ ROM, ROM_SIZE, -1, 0, f->rom,
					   VIOMMU_MEM_F_READONLY };
	if (viommu_mem_create(NULL, &f->mem) ||
	    viommu_mem_set_regions(f->mem, r, 4))
		abort();
	log = (struct viommu_log){ log_cb, f, VIOMMU_LOG_INFO };
	if (vdev_init(&f->fk.vdev, &fake_ops, &f->fk, f->mem, &log, NULL,
		      F_EVENT_IDX | F_INDIRECT | F_PACKED | F_POISON, 2,
		      o.qmax))
		abort();
	viommu_virtio_dev_set_irq(dev_of(f), irq_cb, f);
	for (int q = 0; q < 2; q++)
		if (drvring_init(&f->ring[q], hva(f, RING_AREA(q)),
				 RING_AREA(q), o.qsize, o.packed, o.event_idx,
				 o.indirect))
			abort();
	f->next_buf = BUF_AREA;
	return f;
}

/* fx_open() - a device negotiated and DRIVER_OK with options @o. */
static inline struct fx *fx_open(struct opts o)
{
	struct fx *f = fx_new(o);

	if (negotiate(f, opts_features(&f->o)))
		abort();
	f->nlog = 0;
	return f;
}

static inline void fx_close(struct fx *f)
{
	vdev_destroy(&f->fk.vdev);
	viommu_mem_destroy(f->mem);
	free(f->ram0);
	free(f->ram1);
	free(f->rom);
	free(f);
}

/* fill() - a recognisable pattern for request @tag. */
static inline void fill(void *p, uint32_t len, uint32_t tag)
{
	uint8_t *b = p;

	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(tag * 31 + i * 7 + 1);
}

static inline bool check_fill(const void *p, uint32_t len, uint32_t tag)
{
	const uint8_t *b = p;

	for (uint32_t i = 0; i < len; i++)
		if (b[i] != (uint8_t)(tag * 31 + i * 7 + 1))
			return false;
	return true;
}

/*
 * echo_req() - build a request of readable segments @rlens and writable
 * @wlens in fresh RAM0 buffers, the readable bytes patterned with @tag.
 * Returns the segment count.
 */
static inline unsigned int echo_req(struct fx *f, struct drvring_seg *s,
			     const uint32_t *rlens, unsigned int nr,
			     const uint32_t *wlens, unsigned int nw,
			     uint32_t tag)
{
	uint32_t total = 0;
	uint8_t tmp[4096];

	for (unsigned int i = 0; i < nr; i++)
		total += rlens[i];
	fill(tmp, total, tag);
	total = 0;
	for (unsigned int i = 0; i < nr; i++) {
		s[i] = (struct drvring_seg){ buf_alloc(f, rlens[i]), rlens[i],
					     false };
		memcpy(hva(f, s[i].gpa), tmp + total, rlens[i]);
		total += rlens[i];
	}
	for (unsigned int i = 0; i < nw; i++) {
		s[nr + i] = (struct drvring_seg){ buf_alloc(f, wlens[i]),
						  wlens[i], true };
		memset(hva(f, s[nr + i].gpa), 0xee, wlens[i]);
	}
	return nr + nw;
}

/* gather() - the writable bytes of @s back into @out. */
static inline uint32_t gather(struct fx *f, const struct drvring_seg *s,
		       unsigned int n, uint8_t *out)
{
	uint32_t total = 0;

	for (unsigned int i = 0; i < n; i++)
		if (s[i].write) {
			memcpy(out + total, hva(f, s[i].gpa), s[i].len);
			total += s[i].len;
		}
	return total;
}

/*
 * roundtrip() - add one echo request on queue @q, kick, check the used
 * length is min(readable, writable) and the data came back.
 */
static inline void roundtrip(struct fx *f, uint16_t q, const uint32_t *rl,
		      unsigned int nr, const uint32_t *wl, unsigned int nw,
		      bool indirect, uint64_t token)
{
	struct drvring_seg s[16];
	uint32_t rtot = 0, wtot = 0, len = 0;
	uint64_t got = 0;
	uint8_t out[4096];
	unsigned int n = echo_req(f, s, rl, nr, wl, nw, (uint32_t)token);

	for (unsigned int i = 0; i < nr; i++)
		rtot += rl[i];
	for (unsigned int i = 0; i < nw; i++)
		wtot += wl[i];
	REQUIRE(drvring_add(&f->ring[q], s, n, token, indirect) == 0);
	CHECK_EQ(viommu_virtio_dev_notify(dev_of(f), q), 0);
	REQUIRE(drvring_get_used(&f->ring[q], &got, &len) == 0);
	CHECK_U64(got, token);
	CHECK_EQ(len, MIN(rtot, wtot));
	gather(f, s, n, out);
	CHECK(check_fill(out, len, (uint32_t)token));
	CHECK_EQ(drvring_get_used(&f->ring[q], &got, &len), -ENOENT);
}

/* simple_rt() - one 2-segment round trip (16 readable, 32 writable). */
static inline void simple_rt(struct fx *f, uint16_t q, uint64_t token)
{
	static const uint32_t r[] = { 16 }, w[] = { 32 };

	roundtrip(f, q, r, 1, w, 1, false, token);
}
/* add_rw() - a fresh 2-segment (16 readable, 16 writable) chain. */
static inline void add_rw(struct fx *f, uint16_t q, bool indirect)
{
	struct drvring_seg s[2] = {
		{ buf_alloc(f, 16), 16, false }, { buf_alloc(f, 16), 16, true },
	};

	if (drvring_add(&f->ring[q], s, 2, 1, indirect))
		abort();
}

#endif /* VIOMMU_TESTS_VQ_FIXTURE_H */
