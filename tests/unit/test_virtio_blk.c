/*
 * test_virtio_blk.c - the virtio-blk device model (docs/VIRTIO-BLK.md,
 * rules B1-B18) driven by a test driver (drvring) through a real core
 * context: a PAGING domain maps an IOVA window onto guest RAM and the
 * device's endpoint is attached to it, so every ring and buffer address
 * the driver gives is an IOVA.  A few tests run without an IOMMU (GPA
 * addresses) to check the other mode.
 *
 * The fault callback records faults; a test can make it block, which
 * holds a worker in the middle of a request (injected faults reach it on
 * the worker thread) so that reset and destroy meet a request in flight
 * deterministically.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <viommu/viommu.h>

#include "harness.h"
#include "refdrv/drvring.h"

#define RAM_GPA 0x40000000ull
#define RAM_SIZE (8ull << 20)
#define IOVA_BASE 0x100000000ull  /* maps [RAM_GPA, +RAM_SIZE) read-write */
#define IOVA_RO 0x200000000ull    /* maps the data area read-only */
#define IOVA_HOLE 0x300000000ull  /* never mapped */
#define EP_ID 0x10u
#define QSIZE 64
#define RING_OFF(q) ((uint64_t)(q) * 0x20000)  /* 128 KiB per queue */
#define HDR_OFF 0x100000ull                    /* 64 headers of 32 B */
#define STATUS_OFF 0x101000ull                 /* status bytes */
#define SEGS_OFF 0x102000ull                   /* discard segments */
#define DATA_OFF 0x200000ull                   /* data buffers */
#define CAP_BYTES (1ull << 20)
#define CAP_SECTORS (CAP_BYTES / 512)

#define T_IN 0u
#define T_OUT 1u
#define T_FLUSH 4u
#define T_GET_ID 8u
#define T_DISCARD 11u
#define T_WRITE_ZEROES 13u
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2
#define NO_STATUS 0xee

struct opts {
	bool gpa;       /* no IOMMU: addresses are GPAs */
	bool packed, evidx, indirect_feat;
	bool anon;      /* anonymous backing instead of a file */
	bool ro;
	bool no_access_platform; /* the driver refuses it */
	bool no_flush;  /* the driver refuses FLUSH: writes go through */
	uint16_t nq;
	uint32_t inflight;
};

struct fx {
	struct opts o;
	uint8_t *ram;
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_domain *dom;
	struct viommu_endpoint *ep;
	struct viommu_virtio_blk *blk;
	struct viommu_virtio_dev *dev;
	struct drvring *rings;
	char path[64];
	int fd;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t nfaults;
	struct viommu_fault last;
	bool block_faults, in_fault;
	uint32_t irqs;
	uint32_t warns;  /* warning lines the device logged */
};

/* ------------------------------------------------------------------ */
/* Fixture                                                            */

static void on_fault(void *opaque, const struct viommu_fault *f)
{
	struct fx *x = opaque;

	pthread_mutex_lock(&x->mu);
	x->nfaults++;
	x->last = *f;
	x->in_fault = true;
	pthread_cond_broadcast(&x->cv);
	while (x->block_faults)
		pthread_cond_wait(&x->cv, &x->mu);
	x->in_fault = false;
	pthread_mutex_unlock(&x->mu);
}

static void on_irq(void *opaque, uint8_t isr, uint16_t q)
{
	struct fx *x = opaque;

	__atomic_fetch_add(&x->irqs, 1, __ATOMIC_RELAXED);
}

static void on_log(void *opaque, enum viommu_log_level level,
		   const char *line)
{
	struct fx *x = opaque;

	(void)line;
	if (level <= VIOMMU_LOG_WARN)
		__atomic_fetch_add(&x->warns, 1, __ATOMIC_RELAXED);
}

static uint32_t faults(struct fx *x)
{
	uint32_t n;

	pthread_mutex_lock(&x->mu);
	n = x->nfaults;
	pthread_mutex_unlock(&x->mu);
	return n;
}

/* bus() - the address the driver gives for RAM offset @off. */
static uint64_t bus(const struct fx *x, uint64_t off)
{
	return (x->o.gpa ? RAM_GPA : IOVA_BASE) + off;
}

static uint64_t features_of(const struct fx *x)
{
	uint64_t f = viommu_virtio_dev_features(x->dev);

	if (!x->o.packed)
		f &= ~(1ull << VIOMMU_VIRTIO_F_RING_PACKED);
	if (!x->o.evidx)
		f &= ~(1ull << VIOMMU_VIRTIO_F_EVENT_IDX);
	if (!x->o.indirect_feat)
		f &= ~(1ull << VIOMMU_VIRTIO_F_INDIRECT_DESC);
	if (x->o.no_access_platform)
		f &= ~(1ull << VIOMMU_VIRTIO_F_ACCESS_PLATFORM);
	if (x->o.no_flush)
		f &= ~(1ull << VIOMMU_VIRTIO_BLK_F_FLUSH);
	return f;
}

/* driver_init() - negotiate and set every queue up.  Return: 0/-errno. */
static int driver_init(struct fx *x)
{
	struct viommu_virtio_dev *d = x->dev;
	uint8_t s = VIOMMU_VIRTIO_S_ACKNOWLEDGE | VIOMMU_VIRTIO_S_DRIVER;
	int err;

	if ((err = viommu_virtio_dev_set_status(d, 0)) ||
	    (err = viommu_virtio_dev_set_status(d, s)) ||
	    (err = viommu_virtio_dev_set_driver_features(d, features_of(x))))
		return err;
	s |= VIOMMU_VIRTIO_S_FEATURES_OK;
	if ((err = viommu_virtio_dev_set_status(d, s)))
		return err;
	if (!(viommu_virtio_dev_status(d) & VIOMMU_VIRTIO_S_FEATURES_OK))
		return -EINVAL;
	for (uint16_t q = 0; q < x->o.nq; q++) {
		struct viommu_virtio_queue_cfg cfg;

		err = drvring_init(&x->rings[q], x->ram + RING_OFF(q),
				   bus(x, RING_OFF(q)), QSIZE, x->o.packed,
				   x->o.evidx, x->o.indirect_feat);
		if (err)
			return err;
		drvring_queue_cfg(&x->rings[q], &cfg);
		if ((err = viommu_virtio_dev_queue_setup(d, q, &cfg)))
			return err;
	}
	return viommu_virtio_dev_set_status(d, s | VIOMMU_VIRTIO_S_DRIVER_OK);
}

/* image_init() - a file of CAP_BYTES with a known pattern. */
static int image_init(struct fx *x)
{
	uint8_t *buf = malloc(CAP_BYTES);
	int ok;

	strcpy(x->path, "/tmp/test_virtio_blk.XXXXXX");
	x->fd = mkstemp(x->path);
	if (x->fd < 0 || !buf) {
		free(buf);
		return -1;
	}
	for (uint64_t i = 0; i < CAP_BYTES; i++)
		buf[i] = (uint8_t)(i * 7 + (i >> 9));
	ok = pwrite(x->fd, buf, CAP_BYTES, 0) == (ssize_t)CAP_BYTES;
	free(buf);
	return ok ? 0 : -1;
}

static int setup(struct fx *x, const struct opts *o)
{
	struct viommu_mem_region reg;
	struct viommu_ctx_config cc = { 0 };
	struct viommu_virtio_blk_config bc = { 0 };

	memset(x, 0, sizeof(*x));
	x->o = *o;
	x->fd = -1;
	if (!x->o.nq)
		x->o.nq = 1;
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cv, NULL);
	x->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	x->rings = calloc(x->o.nq, sizeof(*x->rings));
	if (x->ram == MAP_FAILED || !x->rings)
		return -1;
	reg = (struct viommu_mem_region){ .gpa = RAM_GPA, .size = RAM_SIZE,
					  .fd = -1, .hva = x->ram };
	if (viommu_mem_create(NULL, &x->mem) ||
	    viommu_mem_set_regions(x->mem, &reg, 1))
		return -1;
	cc.mem = x->mem;
	cc.fault = on_fault;
	cc.fault_opaque = x;
	if (viommu_ctx_create(&cc, &x->ctx) ||
	    viommu_endpoint_create(x->ctx, EP_ID, &x->ep) ||
	    viommu_domain_create(x->ctx, &(struct viommu_domain_config){
					 .kind = VIOMMU_DOMAIN_PAGING,
					 .tag = 1 }, &x->dom) ||
	    viommu_domain_map(x->dom, IOVA_BASE, IOVA_BASE + RAM_SIZE - 1,
			      RAM_GPA, VIOMMU_READ | VIOMMU_WRITE) ||
	    viommu_domain_map(x->dom, IOVA_RO, IOVA_RO + 0xfffff,
			      RAM_GPA + DATA_OFF, VIOMMU_READ) ||
	    viommu_endpoint_attach(x->ep, VIOMMU_NO_PASID, x->dom))
		return -1;
	if (!o->anon && image_init(x))
		return -1;
	bc.size = sizeof(bc);
	bc.mem = x->mem;
	bc.ep = o->gpa ? NULL : x->ep;
	bc.path = o->anon ? NULL : x->path;
	bc.capacity = CAP_BYTES;
	bc.read_only = o->ro;
	bc.num_queues = x->o.nq;
	bc.queue_size = QSIZE;
	bc.max_inflight = o->inflight;
	bc.serial = "test-serial-0123";
	bc.log.fn = on_log;
	bc.log.opaque = x;
	bc.log.level = VIOMMU_LOG_WARN;
	if (viommu_virtio_blk_create(&bc, &x->blk))
		return -1;
	x->dev = viommu_virtio_blk_dev(x->blk);
	viommu_virtio_dev_set_irq(x->dev, on_irq, x);
	return driver_init(x);
}

static void teardown(struct fx *x)
{
	viommu_virtio_blk_destroy(x->blk);
	viommu_ctx_destroy(x->ctx);
	viommu_mem_destroy(x->mem);
	if (x->ram && x->ram != MAP_FAILED)
		munmap(x->ram, RAM_SIZE);
	if (x->fd >= 0) {
		close(x->fd);
		unlink(x->path);
	}
	free(x->rings);
	pthread_cond_destroy(&x->cv);
	pthread_mutex_destroy(&x->mu);
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */

/* put_hdr() - header @tok in guest RAM; returns its bus address. */
static uint64_t put_hdr(struct fx *x, unsigned int tok, uint32_t type,
			uint64_t sector)
{
	uint8_t *h = x->ram + HDR_OFF + tok * 32;
	uint32_t t = htole32(type), z = 0;
	uint64_t s = htole64(sector);

	memcpy(h, &t, 4);
	memcpy(h + 4, &z, 4);
	memcpy(h + 8, &s, 8);
	x->ram[STATUS_OFF + tok] = NO_STATUS;
	return bus(x, HDR_OFF + tok * 32);
}

static uint64_t status_addr(struct fx *x, unsigned int tok)
{
	return bus(x, STATUS_OFF + tok);
}

/*
 * add() - header, then the @n data segments, then the status byte;
 * @indirect through the ring's indirect tables.  Kicks.
 */
static int add(struct fx *x, uint16_t q, unsigned int tok, uint32_t type,
	       uint64_t sector, const struct drvring_seg *data, unsigned int n,
	       bool indirect)
{
	struct drvring_seg s[8];
	int err;

	s[0] = (struct drvring_seg){ put_hdr(x, tok, type, sector), 16, false };
	for (unsigned int i = 0; i < n; i++)
		s[1 + i] = data[i];
	s[1 + n] = (struct drvring_seg){ status_addr(x, tok), 1, true };
	err = drvring_add(&x->rings[q], s, n + 2, tok, indirect);
	if (err)
		return err;
	return viommu_virtio_dev_notify(x->dev, q);
}

/* wait_used() - the next used buffer of queue @q (bounded wait). */
static int wait_used(struct fx *x, uint16_t q, uint64_t *tok, uint32_t *len)
{
	for (int i = 0; i < 40000; i++) {
		int err = drvring_get_used(&x->rings[q], tok, len);

		if (err != -ENOENT)
			return err;
		if (viommu_virtio_dev_status(x->dev) &
		    VIOMMU_VIRTIO_S_NEEDS_RESET)
			return -EIO;
		usleep(250);
	}
	return -ETIMEDOUT;
}

/* one() - add one request and wait for it; returns its status byte or a
 * negative errno. */
static int one(struct fx *x, uint16_t q, unsigned int tok, uint32_t type,
	       uint64_t sector, const struct drvring_seg *data, unsigned int n,
	       uint32_t *used)
{
	uint64_t t;
	uint32_t len;
	int err = add(x, q, tok, type, sector, data, n, false);

	if (!err)
		err = wait_used(x, q, &t, &len);
	if (err)
		return err;
	if (t != tok)
		return -EPROTO;
	if (used)
		*used = len;
	return x->ram[STATUS_OFF + tok];
}

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 9));
}

/* image_byte() - byte @off of the backing store (file or via a read). */
static int image_read(struct fx *x, uint64_t off, void *buf, size_t len)
{
	return pread(x->fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

static bool image_is_pattern(struct fx *x, uint64_t off, size_t len)
{
	uint8_t b[4096];

	while (len) {
		size_t n = len < sizeof(b) ? len : sizeof(b);

		if (image_read(x, off, b, n))
			return false;
		for (size_t i = 0; i < n; i++)
			if (b[i] != pattern(off + i))
				return false;
		off += n;
		len -= n;
	}
	return true;
}

static void stats(struct fx *x, struct viommu_virtio_blk_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	viommu_virtio_blk_stats(x->blk, st);
}

/* ------------------------------------------------------------------ */
/* Round trips                                                        */

/*
 * round_trip() - write 3 sectors split over two segments at sector 5,
 * read them back into one buffer (indirect if asked), compare.
 */
static void round_trip(const struct opts *o, bool indirect)
{
	struct fx x;
	uint8_t *w = NULL, *r = NULL;
	uint64_t t;
	uint32_t len, used = 0;
	struct drvring_seg ws[2], rs[1];

	REQUIRE(setup(&x, o) == 0);
	w = x.ram + DATA_OFF;
	r = x.ram + DATA_OFF + 0x10000;
	for (int i = 0; i < 1536; i++)
		w[i] = (uint8_t)(0xa5 ^ i);
	memset(r, 0, 1536);
	ws[0] = (struct drvring_seg){ bus(&x, DATA_OFF), 1024, false };
	ws[1] = (struct drvring_seg){ bus(&x, DATA_OFF + 1024), 512, false };
	rs[0] = (struct drvring_seg){ bus(&x, DATA_OFF + 0x10000), 1536, true };
	CHECK_EQ(add(&x, 0, 1, T_OUT, 5, ws, 2, indirect), 0);
	CHECK_EQ(wait_used(&x, 0, &t, &len), 0);
	CHECK_EQ(t, 1);
	CHECK_EQ(len, 1);
	CHECK_EQ(x.ram[STATUS_OFF + 1], S_OK);
	CHECK_EQ(add(&x, 0, 2, T_IN, 5, rs, 1, indirect), 0);
	CHECK_EQ(wait_used(&x, 0, &t, &used), 0);
	CHECK_EQ(t, 2);
	CHECK_EQ(used, 1537);
	CHECK_EQ(x.ram[STATUS_OFF + 2], S_OK);
	CHECK(memcmp(w, r, 1536) == 0);
	if (!o->anon) {
		uint8_t b[1536];

		CHECK(image_read(&x, 5 * 512, b, sizeof(b)) == 0);
		CHECK(memcmp(b, w, sizeof(b)) == 0);
		CHECK(image_is_pattern(&x, 0, 5 * 512));
		CHECK(image_is_pattern(&x, 8 * 512, CAP_BYTES - 8 * 512));
	}
	teardown(&x);
}

TEST(b5_round_trip_file_split)
{
	round_trip(&(struct opts){ 0 }, false);
}

TEST(b5_round_trip_file_packed)
{
	round_trip(&(struct opts){ .packed = true }, false);
}

TEST(b5_round_trip_anon_split)
{
	round_trip(&(struct opts){ .anon = true }, false);
}

TEST(b5_round_trip_anon_packed_evidx)
{
	round_trip(&(struct opts){ .anon = true, .packed = true,
				   .evidx = true }, false);
}

TEST(b5_round_trip_indirect_split)
{
	round_trip(&(struct opts){ .indirect_feat = true, .evidx = true },
		   true);
}

TEST(b5_round_trip_indirect_packed)
{
	round_trip(&(struct opts){ .indirect_feat = true, .packed = true },
		   true);
}

TEST(b5_round_trip_write_through_without_flush)
{
	round_trip(&(struct opts){ .no_flush = true }, false);
}

TEST(b5_round_trip_without_iommu_gpa)
{
	round_trip(&(struct opts){ .gpa = true }, false);
}

/* B5: reads land in the file's existing content. */
TEST(b5_read_returns_image_content)
{
	struct fx x;
	struct drvring_seg d = { 0 };
	bool same = true;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	d = (struct drvring_seg){ bus(&x, DATA_OFF), 8192, true };
	CHECK_EQ(one(&x, 0, 3, T_IN, CAP_SECTORS - 16, &d, 1, NULL), S_OK);
	for (int i = 0; i < 8192; i++)
		same &= x.ram[DATA_OFF + i] ==
			pattern(CAP_BYTES - 16 * 512 + (uint64_t)i);
	CHECK(same);
	teardown(&x);
}

/* EVENT_IDX: a driver asking for no interrupt before used_event gets
 * none for the first of two completions. */
TEST(b5_event_idx_many_requests_complete)
{
	struct fx x;
	struct viommu_virtio_blk_stats st;

	REQUIRE(setup(&x, &(struct opts){ .evidx = true, .anon = true }) ==
		0);
	for (unsigned int i = 0; i < 16; i++) {
		struct drvring_seg d = { bus(&x, DATA_OFF + i * 4096), 4096,
					 true };
		uint64_t t;
		uint32_t len;

		CHECK_EQ(add(&x, 0, i, T_IN, i * 8, &d, 1, false), 0);
		CHECK_EQ(wait_used(&x, 0, &t, &len), 0);
		CHECK_EQ(t, i);
	}
	stats(&x, &st);
	CHECK_EQ(st.reads, 16);
	CHECK_EQ(st.bytes_read, 16 * 4096);
	CHECK(__atomic_load_n(&x.irqs, __ATOMIC_RELAXED) >= 1);
	teardown(&x);
}

/* MQ: every queue serves requests; num_queues is reported (B1). */
TEST(b1_mq_each_queue_serves)
{
	struct fx x;
	uint16_t nq = 0;

	REQUIRE(setup(&x, &(struct opts){ .nq = 4, .anon = true }) == 0);
	CHECK(viommu_virtio_dev_features(x.dev) &
	      (1ull << VIOMMU_VIRTIO_BLK_F_MQ));
	viommu_virtio_dev_config_read(x.dev, 34, &nq, 2);
	CHECK_EQ(le16toh(nq), 4);
	CHECK_EQ(viommu_virtio_dev_num_queues(x.dev), 4);
	for (uint16_t q = 0; q < 4; q++) {
		struct drvring_seg d = { bus(&x, DATA_OFF + q * 4096), 512,
					 false };

		CHECK_EQ(one(&x, q, q, T_OUT, q, &d, 1, NULL), S_OK);
	}
	teardown(&x);
}

/* B1: the configuration space and the features offered. */
TEST(b1_config_and_features)
{
	struct fx x;
	uint64_t cap = 0, f;
	uint32_t v = 0;
	uint8_t junk = 1;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	f = viommu_virtio_dev_features(x.dev);
	CHECK(f & (1ull << VIOMMU_VIRTIO_F_ACCESS_PLATFORM));
	CHECK(f & (1ull << VIOMMU_VIRTIO_F_VERSION_1));
	CHECK(f & (1ull << VIOMMU_VIRTIO_BLK_F_FLUSH));
	CHECK(f & (1ull << VIOMMU_VIRTIO_BLK_F_BLK_SIZE));
	CHECK(f & (1ull << VIOMMU_VIRTIO_BLK_F_SEG_MAX));
	CHECK(f & (1ull << VIOMMU_VIRTIO_BLK_F_SIZE_MAX));
	CHECK(f & (1ull << VIOMMU_VIRTIO_BLK_F_DISCARD));
	CHECK(f & (1ull << VIOMMU_VIRTIO_BLK_F_WRITE_ZEROES));
	CHECK(!(f & (1ull << VIOMMU_VIRTIO_BLK_F_RO)));
	CHECK(!(f & (1ull << VIOMMU_VIRTIO_BLK_F_MQ)));
	CHECK_EQ(viommu_virtio_dev_device_id(x.dev), 2);
	viommu_virtio_dev_config_read(x.dev, 0, &cap, 8);
	CHECK_U64(le64toh(cap), CAP_SECTORS);
	viommu_virtio_dev_config_read(x.dev, 20, &v, 4);
	CHECK_EQ(le32toh(v), 512);
	viommu_virtio_dev_config_read(x.dev, 12, &v, 4);
	CHECK_EQ(le32toh(v), QSIZE - 2);
	/* read-only config: a write changes nothing */
	viommu_virtio_dev_config_write(x.dev, 0, &junk, 1);
	viommu_virtio_dev_config_read(x.dev, 0, &cap, 8);
	CHECK_U64(le64toh(cap), CAP_SECTORS);
	teardown(&x);

	REQUIRE(setup(&x, &(struct opts){ .gpa = true }) == 0);
	CHECK(!(viommu_virtio_dev_features(x.dev) &
		(1ull << VIOMMU_VIRTIO_F_ACCESS_PLATFORM)));
	teardown(&x);
}

/* B16: behind an IOMMU, a driver refusing ACCESS_PLATFORM is refused. */
TEST(b16_access_platform_required)
{
	struct fx x;

	CHECK(setup(&x, &(struct opts){ .no_access_platform = true }) != 0);
	CHECK(!(viommu_virtio_dev_status(x.dev) &
		VIOMMU_VIRTIO_S_FEATURES_OK));
	teardown(&x);
}

/*
 * B16 repeated: a driver that renegotiates without ACCESS_PLATFORM over
 * and over is refused every time, but logs at most a burst of lines
 * (issue 17 item 2: a guest must not flood the host's log).
 */
TEST(b16_refusals_rate_limited)
{
	struct fx x;
	int refused = 0;

	CHECK(setup(&x, &(struct opts){ .no_access_platform = true }) != 0);
	for (int i = 0; i < 1000; i++)
		refused += driver_init(&x) != 0;
	CHECK_EQ(refused, 1000);
	CHECK(x.warns >= 1);
	CHECK(x.warns <= 40); /* one burst (32) and a little slack */
	teardown(&x);
}

/* Creation refusals. */
TEST(create_refuses_bad_config)
{
	struct viommu_mem *mem;
	struct viommu_virtio_blk *blk = NULL;
	struct viommu_virtio_blk_config c = { .size = sizeof(c),
					      .capacity = 4096 };

	REQUIRE(viommu_mem_create(NULL, &mem) == 0);
	CHECK_EQ(viommu_virtio_blk_create(&c, &blk), -EINVAL); /* no mem */
	c.mem = mem;
	c.capacity = 1000;
	CHECK_EQ(viommu_virtio_blk_create(&c, &blk), -EINVAL);
	c.capacity = 4096;
	c.num_queues = 9;
	CHECK_EQ(viommu_virtio_blk_create(&c, &blk), -EINVAL);
	c.num_queues = 1;
	c.queue_size = 100;
	CHECK_EQ(viommu_virtio_blk_create(&c, &blk), -EINVAL);
	c.queue_size = 0;
	c.serial = "this serial is longer than twenty";
	CHECK_EQ(viommu_virtio_blk_create(&c, &blk), -EINVAL);
	c.serial = NULL;
	c.size = sizeof(c) + 8;
	CHECK_EQ(viommu_virtio_blk_create(&c, &blk), -EINVAL);
	c.size = sizeof(c);
	c.path = "/nonexistent/viommu-blk-image";
	CHECK_EQ(viommu_virtio_blk_create(&c, &blk), -ENOENT);
	CHECK(blk == NULL);
	c.path = NULL;
	CHECK_EQ(viommu_virtio_blk_create(&c, &blk), 0);
	CHECK_EQ(viommu_virtio_blk_inject_faults(blk, 1), -ENODEV);
	viommu_virtio_blk_destroy(blk);
	viommu_virtio_blk_destroy(NULL);
	viommu_mem_destroy(mem);
}

/* ------------------------------------------------------------------ */
/* Request rules                                                      */

TEST(b11_get_id)
{
	struct fx x;
	struct drvring_seg d;
	uint32_t used = 0;
	char want[20] = "test-serial-0123";

	REQUIRE(setup(&x, &(struct opts){ .packed = true }) == 0);
	memset(x.ram + DATA_OFF, 0x55, 32);
	d = (struct drvring_seg){ bus(&x, DATA_OFF), 20, true };
	CHECK_EQ(one(&x, 0, 1, T_GET_ID, 0, &d, 1, &used), S_OK);
	CHECK(memcmp(x.ram + DATA_OFF, want, 20) == 0);
	CHECK_EQ(used, 21);
	/* a shorter buffer gets a prefix, nothing past it */
	memset(x.ram + DATA_OFF, 0x55, 32);
	d.len = 4;
	CHECK_EQ(one(&x, 0, 2, T_GET_ID, 0, &d, 1, &used), S_OK);
	CHECK(memcmp(x.ram + DATA_OFF, "test", 4) == 0);
	CHECK_EQ(x.ram[DATA_OFF + 4], 0x55);
	CHECK_EQ(used, 5);
	teardown(&x);
}

TEST(b5_flush)
{
	struct fx x;
	struct viommu_virtio_blk_stats st;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	CHECK_EQ(one(&x, 0, 1, T_FLUSH, 0, NULL, 0, NULL), S_OK);
	stats(&x, &st);
	CHECK_EQ(st.flushes, 1);
	teardown(&x);
}

TEST(b4_unknown_type_unsupp)
{
	struct fx x;
	struct viommu_virtio_blk_stats st;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	CHECK_EQ(one(&x, 0, 1, 99, 0, NULL, 0, NULL), S_UNSUPP);
	CHECK_EQ(one(&x, 0, 2, 10 /* GET_LIFETIME */, 0, NULL, 0, NULL),
		 S_UNSUPP);
	CHECK_EQ(one(&x, 0, 3, 14 /* SECURE_ERASE */, 0, NULL, 0, NULL),
		 S_UNSUPP);
	stats(&x, &st);
	CHECK_EQ(st.unsupp, 3);
	CHECK(image_is_pattern(&x, 0, CAP_BYTES));
	teardown(&x);
}

TEST(b3_short_header_ioerr)
{
	struct fx x;
	struct drvring_seg s[2];
	uint64_t t;
	uint32_t len;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	put_hdr(&x, 1, T_IN, 0);
	s[0] = (struct drvring_seg){ bus(&x, HDR_OFF + 32), 8, false };
	s[1] = (struct drvring_seg){ status_addr(&x, 1), 1, true };
	CHECK_EQ(drvring_add(&x.rings[0], s, 2, 1, false), 0);
	viommu_virtio_dev_notify(x.dev, 0);
	CHECK_EQ(wait_used(&x, 0, &t, &len), 0);
	CHECK_EQ(x.ram[STATUS_OFF + 1], S_IOERR);
	teardown(&x);
}

/* B2: no writable byte at all: no status can be given: needs reset. */
TEST(b2_no_status_byte_needs_reset)
{
	struct fx x;
	struct drvring_seg s[1];
	struct viommu_virtio_blk_stats st;
	uint64_t t;
	uint32_t len;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	s[0] = (struct drvring_seg){ put_hdr(&x, 1, T_FLUSH, 0), 16, false };
	CHECK_EQ(drvring_add(&x.rings[0], s, 1, 1, false), 0);
	viommu_virtio_dev_notify(x.dev, 0);
	CHECK_EQ(wait_used(&x, 0, &t, &len), -EIO);
	CHECK(viommu_virtio_dev_status(x.dev) & VIOMMU_VIRTIO_S_NEEDS_RESET);
	stats(&x, &st);
	CHECK_EQ(st.needs_reset, 1);
	/* the driver resets and the device works again */
	CHECK_EQ(driver_init(&x), 0);
	CHECK_EQ(one(&x, 0, 2, T_FLUSH, 0, NULL, 0, NULL), S_OK);
	teardown(&x);
}

TEST(b5_length_not_multiple_of_512_ioerr)
{
	struct fx x;
	struct drvring_seg d;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	d = (struct drvring_seg){ bus(&x, DATA_OFF), 513, false };
	CHECK_EQ(one(&x, 0, 1, T_OUT, 0, &d, 1, NULL), S_IOERR);
	d.write = true;
	CHECK_EQ(one(&x, 0, 2, T_IN, 0, &d, 1, NULL), S_IOERR);
	CHECK(image_is_pattern(&x, 0, CAP_BYTES));
	teardown(&x);
}

/* B6: nothing beyond the capacity, no sector overflow, file never grows. */
TEST(b6_out_of_range_ioerr_file_never_grows)
{
	struct fx x;
	struct drvring_seg d;
	struct stat sb;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	d = (struct drvring_seg){ bus(&x, DATA_OFF), 1024, false };
	CHECK_EQ(one(&x, 0, 1, T_OUT, CAP_SECTORS - 1, &d, 1, NULL), S_IOERR);
	CHECK_EQ(one(&x, 0, 2, T_OUT, CAP_SECTORS, &d, 1, NULL), S_IOERR);
	CHECK_EQ(one(&x, 0, 3, T_OUT, UINT64_MAX, &d, 1, NULL), S_IOERR);
	CHECK_EQ(one(&x, 0, 4, T_OUT, UINT64_MAX / 512, &d, 1, NULL),
		 S_IOERR);
	d.write = true;
	CHECK_EQ(one(&x, 0, 5, T_IN, CAP_SECTORS - 1, &d, 1, NULL), S_IOERR);
	/* the last two sectors exactly: fine */
	d.write = false;
	CHECK_EQ(one(&x, 0, 6, T_OUT, CAP_SECTORS - 2, &d, 1, NULL), S_OK);
	CHECK(fstat(x.fd, &sb) == 0);
	CHECK_EQ(sb.st_size, CAP_BYTES);
	CHECK(image_is_pattern(&x, 0, CAP_BYTES - 1024));
	teardown(&x);
}

/* B7: a read-only device refuses writes and reports RO. */
TEST(b7_read_only_refuses_writes)
{
	struct fx x;
	struct drvring_seg d;

	REQUIRE(setup(&x, &(struct opts){ .ro = true }) == 0);
	CHECK(viommu_virtio_dev_features(x.dev) &
	      (1ull << VIOMMU_VIRTIO_BLK_F_RO));
	CHECK(!(viommu_virtio_dev_features(x.dev) &
		(1ull << VIOMMU_VIRTIO_BLK_F_DISCARD)));
	d = (struct drvring_seg){ bus(&x, DATA_OFF), 512, false };
	CHECK_EQ(one(&x, 0, 1, T_OUT, 0, &d, 1, NULL), S_IOERR);
	d.write = true;
	CHECK_EQ(one(&x, 0, 2, T_IN, 0, &d, 1, NULL), S_OK);
	CHECK_EQ(one(&x, 0, 3, T_DISCARD, 0, NULL, 0, NULL), S_UNSUPP);
	CHECK(image_is_pattern(&x, 0, CAP_BYTES));
	teardown(&x);
}

/* put_dwz() - one DISCARD / WRITE_ZEROES segment at SEGS_OFF + 16 * i. */
static void put_dwz(struct fx *x, unsigned int i, uint64_t sector,
		    uint32_t nsec, uint32_t flags)
{
	uint8_t *p = x->ram + SEGS_OFF + 16 * i;
	uint64_t s = htole64(sector);
	uint32_t n = htole32(nsec), f = htole32(flags);

	memcpy(p, &s, 8);
	memcpy(p + 8, &n, 4);
	memcpy(p + 12, &f, 4);
}

static bool image_is_zero(struct fx *x, uint64_t off, size_t len)
{
	uint8_t b[512];

	while (len) {
		size_t n = len < sizeof(b) ? len : sizeof(b);

		if (image_read(x, off, b, n))
			return false;
		for (size_t i = 0; i < n; i++)
			if (b[i])
				return false;
		off += n;
		len -= n;
	}
	return true;
}

/* B13: discard and write zeroes on a file. */
TEST(b13_discard_write_zeroes_file)
{
	struct fx x;
	struct drvring_seg d;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	put_dwz(&x, 0, 8, 8, 0);
	put_dwz(&x, 1, 32, 16, 1); /* may unmap */
	d = (struct drvring_seg){ bus(&x, SEGS_OFF), 32, false };
	CHECK_EQ(one(&x, 0, 1, T_WRITE_ZEROES, 0, &d, 1, NULL), S_OK);
	CHECK(image_is_zero(&x, 8 * 512, 8 * 512));
	CHECK(image_is_zero(&x, 32 * 512, 16 * 512));
	CHECK(image_is_pattern(&x, 0, 8 * 512));
	CHECK(image_is_pattern(&x, 16 * 512, 16 * 512));
	CHECK(image_is_pattern(&x, 48 * 512, CAP_BYTES - 48 * 512));
	/* discard: the range reads back as zeroes or as before; the rest
	 * is untouched; the unmap flag is refused on discard */
	put_dwz(&x, 0, 100, 8, 0);
	d.len = 16;
	CHECK_EQ(one(&x, 0, 2, T_DISCARD, 0, &d, 1, NULL), S_OK);
	CHECK(image_is_pattern(&x, 108 * 512, CAP_BYTES - 108 * 512));
	put_dwz(&x, 0, 200, 8, 1);
	CHECK_EQ(one(&x, 0, 3, T_DISCARD, 0, &d, 1, NULL), S_UNSUPP);
	put_dwz(&x, 0, 200, 8, 2); /* unknown flag */
	CHECK_EQ(one(&x, 0, 4, T_WRITE_ZEROES, 0, &d, 1, NULL), S_UNSUPP);
	put_dwz(&x, 0, CAP_SECTORS - 4, 8, 0);
	CHECK_EQ(one(&x, 0, 5, T_WRITE_ZEROES, 0, &d, 1, NULL), S_IOERR);
	d.len = 15;
	CHECK_EQ(one(&x, 0, 6, T_WRITE_ZEROES, 0, &d, 1, NULL), S_IOERR);
	CHECK(image_is_pattern(&x, 200 * 512, CAP_BYTES - 200 * 512));
	teardown(&x);
}

/* B13: write zeroes on anonymous memory, checked by reading back. */
TEST(b13_write_zeroes_anon)
{
	struct fx x;
	struct drvring_seg d;
	bool zero = true;

	REQUIRE(setup(&x, &(struct opts){ .anon = true }) == 0);
	memset(x.ram + DATA_OFF, 0x77, 4096);
	d = (struct drvring_seg){ bus(&x, DATA_OFF), 4096, false };
	CHECK_EQ(one(&x, 0, 1, T_OUT, 0, &d, 1, NULL), S_OK);
	put_dwz(&x, 0, 2, 4, 0);
	d = (struct drvring_seg){ bus(&x, SEGS_OFF), 16, false };
	CHECK_EQ(one(&x, 0, 2, T_WRITE_ZEROES, 0, &d, 1, NULL), S_OK);
	d = (struct drvring_seg){ bus(&x, DATA_OFF + 8192), 4096, true };
	CHECK_EQ(one(&x, 0, 3, T_IN, 0, &d, 1, NULL), S_OK);
	for (int i = 0; i < 4096; i++)
		zero &= x.ram[DATA_OFF + 8192 + i] ==
			(i >= 1024 && i < 3072 ? 0 : 0x77);
	CHECK(zero);
	teardown(&x);
}

/* ------------------------------------------------------------------ */
/* Translation faults                                                 */

/* B8, B9: an unmapped data buffer: IOERR, fault reported, image as it
 * was - even when the first segment was fine. */
TEST(b8_b9_unmapped_data_ioerr_fault_image_untouched)
{
	struct fx x;
	struct drvring_seg d[2];
	struct viommu_virtio_blk_stats st;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	memset(x.ram + DATA_OFF, 0x99, 1024);
	d[0] = (struct drvring_seg){ bus(&x, DATA_OFF), 512, false };
	d[1] = (struct drvring_seg){ IOVA_HOLE, 512, false };
	CHECK_EQ(one(&x, 0, 1, T_OUT, 0, d, 2, NULL), S_IOERR);
	CHECK_EQ(faults(&x), 1);
	CHECK_EQ(x.last.reason, VIOMMU_FAULT_NO_MAPPING);
	CHECK_EQ(x.last.endpoint, EP_ID);
	CHECK_U64(x.last.address, IOVA_HOLE);
	CHECK_EQ(x.last.access, VIOMMU_READ);
	CHECK(image_is_pattern(&x, 0, CAP_BYTES));
	stats(&x, &st);
	CHECK_EQ(st.faults, 1);
	CHECK_EQ(st.ioerr, 1);
	CHECK_EQ(st.writes, 0);
	/* the device goes on */
	CHECK_EQ(one(&x, 0, 2, T_OUT, 0, d, 1, NULL), S_OK);
	teardown(&x);
}

/* B8: a read-only mapping given as a read's destination faults. */
TEST(b8_read_into_read_only_mapping_faults)
{
	struct fx x;
	struct drvring_seg d;

	REQUIRE(setup(&x, &(struct opts){ .packed = true }) == 0);
	memset(x.ram + DATA_OFF, 0x44, 512);
	d = (struct drvring_seg){ IOVA_RO, 512, true };
	CHECK_EQ(one(&x, 0, 1, T_IN, 0, &d, 1, NULL), S_IOERR);
	CHECK_EQ(faults(&x), 1);
	CHECK_EQ(x.last.reason, VIOMMU_FAULT_PERMISSION);
	CHECK_EQ(x.last.access, VIOMMU_WRITE);
	CHECK_EQ(x.ram[DATA_OFF], 0x44); /* nothing written */
	/* but it is a fine source for a write */
	d.write = false;
	CHECK_EQ(one(&x, 0, 2, T_OUT, 0, &d, 1, NULL), S_OK);
	CHECK(!image_is_pattern(&x, 0, 512));
	teardown(&x);
}

/* B8: a buffer crossing from a mapped into an unmapped page, and one
 * across two mappings that translate to different places. */
TEST(b8_buffer_across_translation_boundaries)
{
	struct fx x;
	struct drvring_seg d;
	uint64_t win = 0x400000000ull;
	bool ok = true;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	/* win: page 0 -> DATA+0x3000, page 1 -> DATA+0x1000 (reversed) */
	REQUIRE(viommu_domain_map(x.dom, win, win + 0xfff,
				  RAM_GPA + DATA_OFF + 0x3000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(viommu_domain_map(x.dom, win + 0x1000, win + 0x1fff,
				  RAM_GPA + DATA_OFF + 0x1000,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	d = (struct drvring_seg){ win + 0xe00, 1024, true };
	CHECK_EQ(one(&x, 0, 1, T_IN, 0, &d, 1, NULL), S_OK);
	for (int i = 0; i < 512; i++) {
		ok &= x.ram[DATA_OFF + 0x3e00 + i] == pattern((uint64_t)i);
		ok &= x.ram[DATA_OFF + 0x1000 + i] == pattern(512 + (uint64_t)i);
	}
	CHECK(ok);
	CHECK_EQ(faults(&x), 0);
	/* into the unmapped page after: fault at the page boundary */
	d = (struct drvring_seg){ win + 0x1e00, 1024, true };
	CHECK_EQ(one(&x, 0, 2, T_IN, 0, &d, 1, NULL), S_IOERR);
	CHECK_EQ(faults(&x), 1);
	CHECK_U64(x.last.address, win + 0x2000);
	teardown(&x);
}

/* B12: a buffer translating into more pieces than the device takes
 * (here 1-byte mappings) gets IOERR and leaves the image untouched. */
TEST(b12_too_many_pieces_ioerr)
{
	struct fx x;
	struct drvring_seg d;
	uint64_t win = 0x500000000ull;
	uint32_t len = 17 * 512; /* 8704 one-byte mappings */
	int err = 0;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	for (uint32_t i = 0; i < len && !err; i++)
		err = viommu_domain_map(x.dom, win + i, win + i,
					RAM_GPA + DATA_OFF + i, VIOMMU_READ);
	REQUIRE(err == 0);
	d = (struct drvring_seg){ win, len, false };
	CHECK_EQ(one(&x, 0, 1, T_OUT, 0, &d, 1, NULL), S_IOERR);
	CHECK_EQ(faults(&x), 0);
	CHECK(image_is_pattern(&x, 0, CAP_BYTES));
	/* one sector short of the bound is served, piece by piece */
	d.len = 16 * 512;
	for (uint32_t i = 0; i < len; i++)
		x.ram[DATA_OFF + i] = (uint8_t)(i * 3 + 1);
	CHECK_EQ(one(&x, 0, 2, T_OUT, 0, &d, 1, NULL), S_OK);
	{
		static uint8_t b[16 * 512];

		CHECK(image_read(&x, 0, b, sizeof(b)) == 0);
		CHECK(memcmp(b, x.ram + DATA_OFF, sizeof(b)) == 0);
	}
	teardown(&x);
}

/* B10: the status byte unmapped: no answer possible: needs reset. */
TEST(b10_status_unmapped_needs_reset)
{
	struct fx x;
	struct drvring_seg s[2];
	uint64_t t;
	uint32_t len;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	s[0] = (struct drvring_seg){ put_hdr(&x, 1, T_FLUSH, 0), 16, false };
	s[1] = (struct drvring_seg){ IOVA_HOLE, 1, true };
	CHECK_EQ(drvring_add(&x.rings[0], s, 2, 1, false), 0);
	viommu_virtio_dev_notify(x.dev, 0);
	CHECK_EQ(wait_used(&x, 0, &t, &len), -EIO);
	CHECK(viommu_virtio_dev_status(x.dev) & VIOMMU_VIRTIO_S_NEEDS_RESET);
	CHECK_EQ(faults(&x), 1);
	CHECK_EQ(x.last.access, VIOMMU_WRITE);
	teardown(&x);
}

/* B17: a ring the driver did not map: fault and needs reset. */
TEST(b17_ring_unmapped_needs_reset)
{
	struct fx x;
	struct drvring_seg d;

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	/* unmap the window holding the rings, remap the rest */
	REQUIRE(viommu_domain_unmap(x.dom, IOVA_BASE, IOVA_BASE + RAM_SIZE - 1,
				    NULL) == 0);
	REQUIRE(viommu_domain_map(x.dom, IOVA_BASE + HDR_OFF,
				  IOVA_BASE + RAM_SIZE - 1, RAM_GPA + HDR_OFF,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	d = (struct drvring_seg){ bus(&x, DATA_OFF), 512, true };
	CHECK_EQ(add(&x, 0, 1, T_IN, 0, &d, 1, false), 0);
	CHECK(viommu_virtio_dev_status(x.dev) & VIOMMU_VIRTIO_S_NEEDS_RESET);
	CHECK(faults(&x) >= 1);
	CHECK(x.last.address >= IOVA_BASE &&
	      x.last.address < IOVA_BASE + HDR_OFF);
	CHECK_EQ(x.ram[STATUS_OFF + 1], NO_STATUS);
	teardown(&x);
}

/* B17: an indirect table outside the mappings: needs reset. */
TEST(b17_indirect_table_unmapped_needs_reset)
{
	struct fx x;
	struct drvring_seg s[3];
	uint8_t table[48];

	REQUIRE(setup(&x, &(struct opts){ .indirect_feat = true }) == 0);
	s[0] = (struct drvring_seg){ put_hdr(&x, 1, T_FLUSH, 0), 16, false };
	s[1] = (struct drvring_seg){ status_addr(&x, 1), 1, true };
	CHECK_EQ(drvring_add_indirect(&x.rings[0], s, 2, 1, table,
				      IOVA_HOLE), 0);
	viommu_virtio_dev_notify(x.dev, 0);
	CHECK(viommu_virtio_dev_status(x.dev) & VIOMMU_VIRTIO_S_NEEDS_RESET);
	CHECK_EQ(faults(&x), 1);
	CHECK_U64(x.last.address, IOVA_HOLE);
	teardown(&x);
}

/* B18: injected faults: the next n buffer translations fail as if
 * unmapped, are reported, and end their requests with IOERR; rings and
 * status bytes are not affected; the image is untouched. */
TEST(b18_inject_faults)
{
	struct fx x;
	struct drvring_seg d;
	struct viommu_virtio_blk_stats st;

	REQUIRE(setup(&x, &(struct opts){ .packed = true }) == 0);
	memset(x.ram + DATA_OFF, 0x31, 512);
	d = (struct drvring_seg){ bus(&x, DATA_OFF), 512, false };
	CHECK_EQ(viommu_virtio_blk_inject_faults(x.blk, 2), 0);
	/* the header's translation fails */
	CHECK_EQ(one(&x, 0, 1, T_OUT, 0, &d, 1, NULL), S_IOERR);
	CHECK_EQ(faults(&x), 1);
	CHECK_EQ(x.last.reason, VIOMMU_FAULT_NO_MAPPING);
	CHECK_EQ(x.last.endpoint, EP_ID);
	CHECK_U64(x.last.address, bus(&x, HDR_OFF + 32));
	CHECK_EQ(one(&x, 0, 2, T_OUT, 0, &d, 1, NULL), S_IOERR);
	CHECK_EQ(faults(&x), 2);
	CHECK(!(viommu_virtio_dev_status(x.dev) &
		VIOMMU_VIRTIO_S_NEEDS_RESET));
	CHECK(image_is_pattern(&x, 0, CAP_BYTES));
	stats(&x, &st);
	CHECK_EQ(st.injected_faults, 2);
	CHECK_EQ(st.faults, 2);
	/* spent: the next request is fine */
	CHECK_EQ(one(&x, 0, 3, T_OUT, 0, &d, 1, NULL), S_OK);
	CHECK(!image_is_pattern(&x, 0, 512));
	/* 0 cancels a pending count */
	CHECK_EQ(viommu_virtio_blk_inject_faults(x.blk, 5), 0);
	CHECK_EQ(viommu_virtio_blk_inject_faults(x.blk, 0), 0);
	CHECK_EQ(one(&x, 0, 4, T_FLUSH, 0, NULL, 0, NULL), S_OK);
	CHECK_EQ(viommu_virtio_blk_inject_faults(NULL, 1), -EINVAL);
	teardown(&x);
}

/*
 * Isolation: a second device, on an endpoint attached to another domain
 * that maps only its own rings and request headers, gives the first
 * device's data IOVA: it faults (on its own endpoint), gets IOERR, and
 * the first device's buffer is untouched.
 */
TEST(b8_second_device_in_another_domain_cannot_reach_first)
{
	struct fx x, y;
	struct viommu_virtio_blk_config bc = { 0 };
	struct viommu_domain *dom2 = NULL;
	struct viommu_endpoint *ep2 = NULL;
	struct drvring_seg d;
	uint64_t ring_off = RING_OFF(4);

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	memset(x.ram + DATA_OFF, 0x5a, 4096);
	REQUIRE(viommu_endpoint_create(x.ctx, EP_ID + 1, &ep2) == 0);
	REQUIRE(viommu_domain_create(x.ctx, &(struct viommu_domain_config){
					     .kind = VIOMMU_DOMAIN_PAGING,
					     .tag = 2 }, &dom2) == 0);
	REQUIRE(viommu_domain_map(dom2, IOVA_BASE + ring_off,
				  IOVA_BASE + ring_off + 0x1ffff,
				  RAM_GPA + ring_off,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(viommu_domain_map(dom2, IOVA_BASE + HDR_OFF,
				  IOVA_BASE + SEGS_OFF - 1, RAM_GPA + HDR_OFF,
				  VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(viommu_endpoint_attach(ep2, VIOMMU_NO_PASID, dom2) == 0);
	/* y: the same guest and IOMMU, its own device and ring */
	y = x;
	y.o = (struct opts){ .anon = true, .nq = 1 };
	y.rings = calloc(1, sizeof(*y.rings));
	REQUIRE(y.rings);
	bc.size = sizeof(bc);
	bc.mem = x.mem;
	bc.ep = ep2;
	bc.capacity = CAP_BYTES;
	REQUIRE(viommu_virtio_blk_create(&bc, &y.blk) == 0);
	y.dev = viommu_virtio_blk_dev(y.blk);
	/* its ring at RING_OFF(4), laid out by hand (driver_init() puts
	 * queue 0 at RING_OFF(0)) */
	{
		struct viommu_virtio_dev *dv = y.dev;
		struct viommu_virtio_queue_cfg cfg;
		uint8_t st = VIOMMU_VIRTIO_S_ACKNOWLEDGE |
			     VIOMMU_VIRTIO_S_DRIVER;

		REQUIRE(viommu_virtio_dev_set_status(dv, st) == 0);
		REQUIRE(viommu_virtio_dev_set_driver_features(
				dv, viommu_virtio_dev_features(dv) &
				~(1ull << VIOMMU_VIRTIO_F_RING_PACKED)) == 0);
		st |= VIOMMU_VIRTIO_S_FEATURES_OK;
		REQUIRE(viommu_virtio_dev_set_status(dv, st) == 0);
		REQUIRE(drvring_init(&y.rings[0], x.ram + ring_off,
				     IOVA_BASE + ring_off, QSIZE, false,
				     false, false) == 0);
		drvring_queue_cfg(&y.rings[0], &cfg);
		REQUIRE(viommu_virtio_dev_queue_setup(dv, 0, &cfg) == 0);
		REQUIRE(viommu_virtio_dev_set_status(
				dv, st | VIOMMU_VIRTIO_S_DRIVER_OK) == 0);
	}
	/* y's own request works: a flush */
	CHECK_EQ(one(&y, 0, 1, T_FLUSH, 0, NULL, 0, NULL), S_OK);
	/* y reads into x's data IOVA: fault on y's endpoint, IOERR */
	d = (struct drvring_seg){ bus(&x, DATA_OFF), 4096, true };
	CHECK_EQ(one(&y, 0, 2, T_IN, 0, &d, 1, NULL), S_IOERR);
	CHECK_EQ(faults(&x), 1);
	CHECK_EQ(x.last.endpoint, EP_ID + 1);
	CHECK_EQ(x.last.reason, VIOMMU_FAULT_NO_MAPPING);
	CHECK_EQ(x.ram[DATA_OFF], 0x5a);
	/* nor can it read x's buffer out to its disk */
	d.write = false;
	CHECK_EQ(one(&y, 0, 3, T_OUT, 0, &d, 1, NULL), S_IOERR);
	CHECK_EQ(faults(&x), 2);
	/* x itself still reaches it */
	d.write = true;
	CHECK_EQ(one(&x, 0, 4, T_IN, 0, &d, 1, NULL), S_OK);
	viommu_virtio_blk_destroy(y.blk);
	free(y.rings);
	teardown(&x);
}

/* ------------------------------------------------------------------ */
/* In flight: bound, reset, destroy                                   */

/* B14: more requests than max_inflight all complete (stalled queues go
 * on from completions, no second kick needed). */
TEST(b14_more_than_max_inflight_all_complete)
{
	struct fx x;
	bool seen[20] = { false };
	int n = 0;

	REQUIRE(setup(&x, &(struct opts){ .anon = true, .inflight = 2 }) == 0);
	for (unsigned int i = 0; i < 20; i++) {
		struct drvring_seg s[3] = {
			{ put_hdr(&x, i, T_IN, i), 16, false },
			{ bus(&x, DATA_OFF + i * 512), 512, true },
			{ status_addr(&x, i), 1, true },
		};

		CHECK_EQ(drvring_add(&x.rings[0], s, 3, i, false), 0);
	}
	viommu_virtio_dev_notify(x.dev, 0); /* one kick */
	while (n < 20) {
		uint64_t t;
		uint32_t len;

		if (wait_used(&x, 0, &t, &len))
			break;
		CHECK(t < 20 && !seen[t]);
		if (t < 20)
			seen[t] = true;
		CHECK_EQ(x.ram[STATUS_OFF + t], S_OK);
		n++;
	}
	CHECK_EQ(n, 20);
	teardown(&x);
}

/* block_next_fault() / wait_in_fault() / release_fault(): hold a worker
 * inside a request (the fault callback runs on it). */
static void block_next_fault(struct fx *x)
{
	pthread_mutex_lock(&x->mu);
	x->block_faults = true;
	pthread_mutex_unlock(&x->mu);
}

static bool wait_in_fault(struct fx *x)
{
	bool in;

	for (int i = 0; i < 40000; i++) {
		pthread_mutex_lock(&x->mu);
		in = x->in_fault;
		pthread_mutex_unlock(&x->mu);
		if (in)
			return true;
		usleep(250);
	}
	return false;
}

static void release_fault(struct fx *x)
{
	pthread_mutex_lock(&x->mu);
	x->block_faults = false;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
}

static void *reset_thread(void *arg)
{
	viommu_virtio_dev_set_status(arg, 0);
	return NULL;
}

static void *destroy_thread(void *arg)
{
	viommu_virtio_blk_destroy(arg);
	return NULL;
}

/* used_idx() - the split used ring's index as the device wrote it. */
static uint16_t used_idx(struct fx *x, uint16_t q)
{
	uint16_t v;

	memcpy(&v, (uint8_t *)drvring_device_area(&x->rings[q]) + 2, 2);
	return le16toh(v);
}

/* B15: a reset waits for a request whose I/O runs, drops the rest, and
 * nothing of before the reset reaches the rings afterwards. */
TEST(b15_reset_with_requests_in_flight)
{
	struct fx x;
	pthread_t th;
	struct drvring_seg d[2];
	uint64_t t;
	uint32_t len;

	REQUIRE(setup(&x, &(struct opts){ .inflight = 4 }) == 0);
	d[0] = (struct drvring_seg){ bus(&x, DATA_OFF), 512, false };
	d[1] = (struct drvring_seg){ IOVA_HOLE, 512, false };
	block_next_fault(&x);
	/* request 1 faults on its data and blocks its worker there */
	CHECK_EQ(add(&x, 0, 1, T_OUT, 0, d, 2, false), 0);
	REQUIRE(wait_in_fault(&x));
	/* more requests queue behind it (or run on the other worker) */
	for (unsigned int i = 2; i < 6; i++)
		CHECK_EQ(add(&x, 0, i, T_FLUSH, 0, NULL, 0, false), 0);
	CHECK_EQ(pthread_create(&th, NULL, reset_thread, x.dev), 0);
	release_fault(&x);
	pthread_join(th, NULL);
	/* the device is reset; the driver zeroes its rings and starts over */
	CHECK_EQ(viommu_virtio_dev_status(x.dev), 0);
	CHECK_EQ(driver_init(&x), 0);
	CHECK_EQ(one(&x, 0, 7, T_FLUSH, 0, NULL, 0, NULL), S_OK);
	/* no request of before the reset was completed into the new ring */
	CHECK_EQ(drvring_get_used(&x.rings[0], &t, &len), -ENOENT);
	CHECK_EQ(used_idx(&x, 0), 1);
	CHECK(image_is_pattern(&x, 0, CAP_BYTES));
	teardown(&x);
}

/* B15: many requests, reset at once, repeatedly: the device comes back
 * and old requests never show up. */
TEST(b15_reset_races_requests)
{
	struct fx x;

	REQUIRE(setup(&x, &(struct opts){ .anon = true, .packed = true }) ==
		0);
	for (int round = 0; round < 20; round++) {
		uint64_t t;
		uint32_t len;

		for (unsigned int i = 0; i < 16; i++) {
			struct drvring_seg d = { bus(&x, DATA_OFF + i * 4096),
						 4096, true };

			CHECK_EQ(add(&x, 0, i, T_IN, i * 8, &d, 1, false), 0);
		}
		CHECK_EQ(driver_init(&x), 0); /* resets first */
		CHECK_EQ(one(&x, 0, 40, T_FLUSH, 0, NULL, 0, NULL), S_OK);
		CHECK_EQ(drvring_get_used(&x.rings[0], &t, &len), -ENOENT);
	}
	teardown(&x);
}

/* B15: destroy with requests in flight (one held in a fault, others
 * queued): no completion reaches the ring, nothing leaks. */
TEST(b15_destroy_with_requests_in_flight)
{
	struct fx x;
	pthread_t th;
	struct drvring_seg d[2];

	REQUIRE(setup(&x, &(struct opts){ 0 }) == 0);
	d[0] = (struct drvring_seg){ bus(&x, DATA_OFF), 512, false };
	d[1] = (struct drvring_seg){ IOVA_HOLE, 512, false };
	block_next_fault(&x);
	CHECK_EQ(add(&x, 0, 1, T_OUT, 0, d, 2, false), 0);
	REQUIRE(wait_in_fault(&x));
	for (unsigned int i = 2; i < 10; i++)
		CHECK_EQ(add(&x, 0, i, T_FLUSH, 0, NULL, 0, false), 0);
	CHECK_EQ(pthread_create(&th, NULL, destroy_thread, x.blk), 0);
	release_fault(&x);
	pthread_join(th, NULL);
	x.blk = NULL;
	CHECK(image_is_pattern(&x, 0, CAP_BYTES));
	teardown(&x);
}

/* B15: destroy right after a burst, nothing held: no crash, no leak. */
TEST(b15_destroy_after_burst)
{
	struct fx x;

	REQUIRE(setup(&x, &(struct opts){ .anon = true }) == 0);
	for (unsigned int i = 0; i < 20; i++) {
		struct drvring_seg d = { bus(&x, DATA_OFF + i * 4096), 4096,
					 true };

		CHECK_EQ(add(&x, 0, i, T_IN, i * 8, &d, 1, false), 0);
	}
	teardown(&x);
}

TEST_MAIN()
