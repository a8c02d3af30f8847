/*
 * virtio_blk.c - the virtio-blk device model (include/viommu/virtio_blk.h,
 * rules in docs/VIRTIO-BLK.md): configuration space, features, the
 * request pool, the worker threads, completion and reset.  One request is
 * executed by virtio_blk_req.c.
 *
 * Concept: a kick (the virtio core's queue_notify hook, on the caller's
 * thread with the device lock held) only pops chains: each takes a
 * request from a pool of max_inflight (B14), gets a copy of its segments
 * and goes on the work list.  When the pool is empty, or a queue's pops
 * reach its size in one go (work per kick is bounded), the queue is marked
 * stalled and the next completion pops more: the driver need not kick
 * again.  Worker threads take requests off the work list and run them
 * with no lock held (inside a guest-memory read section), then put them on
 * a done list and take the device lock to put every request on that list
 * on its used ring (one worker may complete another's) and raise the
 * interrupt through the transport's hook once per queue and batch.
 *
 * Reset and destroy (B15): the reset hook runs with the device lock held.
 * It bumps an epoch, drops every request still on the work list, and
 * waits until no worker is running a request (the "active" count).  A
 * request that was running finishes its I/O and status write before the
 * reset returns; when a worker then completes it (from the done list,
 * under the device lock) it sees a stale epoch and drops the request
 * without touching the rings.  So after a
 * reset returns no worker reads or writes guest memory on behalf of the
 * old requests, and none is ever completed into the new rings.  Waiting
 * with the device lock held is safe: a worker running a request takes no
 * lock of this device (only, through a fault report, the virtio-iommu's).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/virtio_blk_internal.h"
#include "base/util.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define RING_ALL ((1ull << VIOMMU_VIRTIO_F_INDIRECT_DESC) | \
		  (1ull << VIOMMU_VIRTIO_F_EVENT_IDX) | \
		  (1ull << VIOMMU_VIRTIO_F_RING_PACKED))
#define DEF_QUEUE_SIZE 256
#define DEF_INFLIGHT 64
#define MAX_INFLIGHT 4096
#define DEF_WORKERS 2
#define DEF_SERIAL "viommu-blk"
#define CONFIG_BYTES 60 /* through write_zeroes_may_unmap and padding */

/* ------------------------------------------------------------------ */
/* Configuration space (VIRTIO 1.3 §5.2.4)                            */

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

/* build_config() - the config structure as the driver reads it. */
static void build_config(const struct viommu_virtio_blk *blk, uint8_t *c)
{
	memset(c, 0, CONFIG_BYTES);
	put64(c + 0, blk->sectors);
	put32(c + 8, BLK_SIZE_MAX);
	put32(c + 12, blk->seg_max);
	put32(c + 20, BLK_SECTOR);  /* blk_size */
	put16(c + 34, blk->nq);     /* num_queues */
	if (!blk->ro) {
		put32(c + 36, BLK_MAX_DWZ_SECTORS); /* max_discard_sectors */
		put32(c + 40, BLK_MAX_DWZ_SEG);     /* max_discard_seg */
		put32(c + 44, 1);                   /* discard_sector_alignment */
		put32(c + 48, BLK_MAX_DWZ_SECTORS); /* max_write_zeroes_sectors */
		put32(c + 52, BLK_MAX_DWZ_SEG);     /* max_write_zeroes_seg */
		c[56] = 0;                          /* write_zeroes_may_unmap */
	}
}

static void op_config_read(struct viommu_virtio_dev *dev, uint32_t off,
			   void *buf, uint32_t len)
{
	uint8_t c[CONFIG_BYTES];

	if (off >= CONFIG_BYTES)
		return; /* zeroes (the core cleared @buf) */
	build_config(dev->priv, c);
	memcpy(buf, c + off, MIN(len, CONFIG_BYTES - off));
}

static void op_config_write(struct viommu_virtio_dev *dev, uint32_t off,
			    const void *buf, uint32_t len)
{
	struct viommu_virtio_blk *blk = dev->priv;

	/* No CONFIG_WCE: every field is read-only (B1). */
	rl_warn(&blk->dev.rl, &blk->log,
		"virtio-blk: write to read-only config offset %u ignored", off);
}

/* ------------------------------------------------------------------ */
/* Requests: pool, popping, completion                                */

/* __needs_reset() - enter DEVICE_NEEDS_RESET, counted.  dev.lock held. */
static void __needs_reset(struct viommu_virtio_blk *blk, const char *why)
{
	if (!(blk->dev.status & VIOMMU_VIRTIO_S_NEEDS_RESET))
		ATOMIC_INC(blk->st.needs_reset);
	__vdev_needs_reset(&blk->dev, why);
}

/* __live() - whether the device processes requests.  dev.lock held. */
static bool __live(const struct viommu_virtio_blk *blk)
{
	return (blk->dev.status & (VIOMMU_VIRTIO_S_DRIVER_OK |
				   VIOMMU_VIRTIO_S_NEEDS_RESET |
				   VIOMMU_VIRTIO_S_FAILED)) ==
	       VIOMMU_VIRTIO_S_DRIVER_OK;
}

/* take_req() / give_req() - the request pool. */
static struct blk_req *take_req(struct viommu_virtio_blk *blk)
{
	struct blk_req *r;

	pthread_mutex_lock(&blk->mu);
	r = blk->free_list;
	if (r)
		blk->free_list = r->next;
	pthread_mutex_unlock(&blk->mu);
	return r;
}

static void give_req(struct viommu_virtio_blk *blk, struct blk_req *r)
{
	pthread_mutex_lock(&blk->mu);
	r->next = blk->free_list;
	blk->free_list = r;
	pthread_mutex_unlock(&blk->mu);
}

/* queue_work() - hand @r to the workers. */
static void queue_work(struct viommu_virtio_blk *blk, struct blk_req *r)
{
	pthread_mutex_lock(&blk->mu);
	r->next = NULL;
	if (blk->work_tail)
		blk->work_tail->next = r;
	else
		blk->work_head = r;
	blk->work_tail = r;
	pthread_cond_signal(&blk->work_cv);
	pthread_mutex_unlock(&blk->mu);
}

/*
 * __pump() - pop what queue @q has, up to the pool and the queue size.
 * dev.lock and a memory read section held; the device is live.
 */
static void __pump(struct viommu_virtio_blk *blk, uint16_t q)
{
	struct vq *vq = &blk->dev.vqs[q];

	blk->stalled[q] = false;
	for (uint32_t n = 0;; n++) {
		struct blk_req *r;
		struct vq_elem e;
		int err;

		if (n == vq->size || !(r = take_req(blk))) {
			blk->stalled[q] = true; /* the next completion goes on */
			return;
		}
		err = vq_pop(vq, &e);
		if (err) {
			give_req(blk, r);
			if (err == -EIO)
				__needs_reset(blk, NULL); /* the queue said why */
			return;
		}
		r->q = q;
		r->epoch = blk->epoch;
		r->io = vq->io;
		r->features = blk->dev.guest_features;
		r->e = e;
		r->e.segs = r->segs;
		memcpy(r->segs, e.segs, e.nseg * sizeof(*e.segs));
		queue_work(blk, r);
	}
}

static void op_queue_notify(struct viommu_virtio_dev *dev, uint16_t q)
{
	__pump(dev->priv, q);
}

/*
 * complete_one() - put finished request @r on its used ring, or drop it
 * (stale epoch, device not live).  dev.lock and a memory read section
 * held.  Return: whether its queue got a used entry.
 */
static bool complete_one(struct viommu_virtio_blk *blk, struct blk_req *r)
{
	struct viommu_virtio_dev *dev = &blk->dev;

	if (r->epoch != blk->epoch || !__live(blk))
		return false;
	if (r->needs_reset) {
		__needs_reset(blk, r->why);
		return false;
	}
	if (vq_push(&dev->vqs[r->q], &r->e, r->used_len)) {
		__needs_reset(blk, NULL); /* the queue logged why */
		return false;
	}
	return true;
}

/*
 * complete_done() - complete every request on the done list: whichever
 * worker gets the device lock first takes the others' finished requests
 * too, so a burst of completions costs one interrupt check per queue
 * rather than one per request.  Then stalled queues go on (B14).
 */
static void complete_done(struct viommu_virtio_blk *blk)
{
	struct viommu_virtio_dev *dev = &blk->dev;
	struct blk_req *list, *last = NULL;
	bool used[VIOMMU_VIRTIO_BLK_MAX_QUEUES] = { false };
	unsigned int tok;

	pthread_mutex_lock(&dev->lock);
	pthread_mutex_lock(&blk->mu);
	list = blk->done_head;
	blk->done_head = blk->done_tail = NULL;
	pthread_mutex_unlock(&blk->mu);
	if (!list) {
		pthread_mutex_unlock(&dev->lock);
		return;
	}
	tok = viommu_mem_read_lock(dev->mem);
	for (struct blk_req *r = list; r; r = r->next) {
		if (complete_one(blk, r))
			used[r->q] = true;
		last = r;
	}
	for (uint16_t q = 0; q < blk->nq; q++)
		if (used[q])
			__vdev_queue_done(dev, q);
	pthread_mutex_lock(&blk->mu); /* the whole list back to the pool */
	last->next = blk->free_list;
	blk->free_list = list;
	pthread_mutex_unlock(&blk->mu);
	for (uint16_t q = 0; q < blk->nq && __live(blk); q++)
		if (blk->stalled[q] && dev->vqs[q].ready)
			__pump(blk, q);
	viommu_mem_read_unlock(dev->mem, tok);
	pthread_mutex_unlock(&dev->lock);
}

/* worker_main() - take, run, complete, until stopped. */
static void *worker_main(void *arg)
{
	struct blk_worker *w = arg;
	struct viommu_virtio_blk *blk = w->blk;

	pthread_mutex_lock(&blk->mu);
	for (;;) {
		struct blk_req *r;
		unsigned int tok;

		while (!blk->stopping && !blk->work_head)
			pthread_cond_wait(&blk->work_cv, &blk->mu);
		if (blk->stopping)
			break;
		r = blk->work_head;
		blk->work_head = r->next;
		if (!blk->work_head)
			blk->work_tail = NULL;
		blk->active++;
		pthread_mutex_unlock(&blk->mu);

		tok = viommu_mem_read_lock(blk->dev.mem);
		blk_run_request(w, r);
		viommu_mem_read_unlock(blk->dev.mem, tok);

		pthread_mutex_lock(&blk->mu);
		if (--blk->active == 0)
			pthread_cond_broadcast(&blk->idle_cv);
		r->next = NULL;
		if (blk->done_tail)
			blk->done_tail->next = r;
		else
			blk->done_head = r;
		blk->done_tail = r;
		pthread_mutex_unlock(&blk->mu);
		complete_done(blk);
		pthread_mutex_lock(&blk->mu);
	}
	pthread_mutex_unlock(&blk->mu);
	return NULL;
}

/*
 * __cancel() - drop queued requests, wait for running ones (B15).
 * dev.lock held.
 */
static void __cancel(struct viommu_virtio_blk *blk)
{
	pthread_mutex_lock(&blk->mu);
	blk->epoch++;
	while (blk->work_head) {
		struct blk_req *r = blk->work_head;

		blk->work_head = r->next;
		r->next = blk->free_list;
		blk->free_list = r;
	}
	blk->work_tail = NULL;
	while (blk->active)
		pthread_cond_wait(&blk->idle_cv, &blk->mu);
	pthread_mutex_unlock(&blk->mu);
	memset(blk->stalled, 0, sizeof(blk->stalled));
}

static void op_reset(struct viommu_virtio_dev *dev, bool system)
{
	__cancel(dev->priv);
}

static int op_features_ok(struct viommu_virtio_dev *dev, uint64_t features)
{
	struct viommu_virtio_blk *blk = dev->priv;

	/* B16: behind an IOMMU the driver must use it (VIRTIO 1.3 §6.1). */
	if (blk->io.ep &&
	    !((features >> VIOMMU_VIRTIO_F_ACCESS_PLATFORM) & 1)) {
		rl_warn(&blk->dev.rl, &blk->log, "virtio-blk: driver "
			"refused VIRTIO_F_ACCESS_PLATFORM; the device is "
			"behind an IOMMU (B16)");
		return -EINVAL;
	}
	return 0;
}

static const struct vdev_ops blk_ops = {
	.device_id = VIOMMU_VIRTIO_BLK_DEVICE_ID,
	.features_ok = op_features_ok,
	.queue_notify = op_queue_notify,
	.config_read = op_config_read,
	.config_write = op_config_write,
	.reset = op_reset,
};

/* ------------------------------------------------------------------ */
/* Creation                                                           */

/*
 * check_config() - validate @c (already normalised) and fill in defaults.
 * Return: 0; -EINVAL.
 */
static int check_config(struct viommu_virtio_blk_config *c)
{
	if (!c->num_queues)
		c->num_queues = 1;
	if (!c->queue_size)
		c->queue_size = DEF_QUEUE_SIZE;
	if (!c->max_inflight)
		c->max_inflight = DEF_INFLIGHT;
	if (!c->ring_features)
		c->ring_features = RING_ALL;
	if (!c->serial)
		c->serial = DEF_SERIAL;
	if (!c->io_threads)
		c->io_threads = DEF_WORKERS;
	if (!c->mem || c->num_queues > VIOMMU_VIRTIO_BLK_MAX_QUEUES ||
	    c->queue_size < 2 || c->queue_size > VIOMMU_VIRTIO_QUEUE_MAX ||
	    (c->queue_size & (c->queue_size - 1)) ||
	    c->max_inflight > MAX_INFLIGHT ||
	    c->io_threads > BLK_MAX_WORKERS ||
	    strlen(c->serial) > VIOMMU_VIRTIO_BLK_ID_BYTES)
		return -EINVAL;
	if (!c->path && (!c->capacity || c->capacity % BLK_SECTOR))
		return -EINVAL;
	return 0;
}

/* open_backend() - the image file or the anonymous memory. */
static int open_backend(struct viommu_virtio_blk *blk,
			const struct viommu_virtio_blk_config *c)
{
	struct stat sb;
	off_t end;

	blk->fd = -1;
	if (!c->path) {
		void *p = mmap(NULL, c->capacity, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
			       0);

		if (p == MAP_FAILED)
			return -ENOMEM;
		blk->anon = p;
		blk->sectors = c->capacity / BLK_SECTOR;
		return 0;
	}
	blk->fd = open(c->path, (c->read_only ? O_RDONLY : O_RDWR) |
				O_CLOEXEC);
	if (blk->fd < 0)
		return -errno;
	if (fstat(blk->fd, &sb) || (end = lseek(blk->fd, 0, SEEK_END)) < 0)
		goto fail;
	if (!S_ISREG(sb.st_mode) && !S_ISBLK(sb.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	/* B6: the capacity is the whole sectors of the file; never more. */
	blk->sectors = (uint64_t)end / BLK_SECTOR;
	if (!blk->sectors) {
		errno = EINVAL;
		goto fail;
	}
	return 0;
fail: {
	int err = -errno;

	close(blk->fd);
	blk->fd = -1;
	return err;
}
}

/* close_backend() - undo open_backend(). */
static void close_backend(struct viommu_virtio_blk *blk)
{
	if (blk->fd >= 0)
		close(blk->fd);
	if (blk->anon)
		munmap(blk->anon, blk->sectors * BLK_SECTOR);
	blk->fd = -1;
	blk->anon = NULL;
}

/* offered() - the feature bits the device offers. */
static uint64_t offered(const struct viommu_virtio_blk *blk,
			const struct viommu_virtio_blk_config *c)
{
	uint64_t f = (c->ring_features & RING_ALL) |
		     (1ull << VIOMMU_VIRTIO_BLK_F_SIZE_MAX) |
		     (1ull << VIOMMU_VIRTIO_BLK_F_SEG_MAX) |
		     (1ull << VIOMMU_VIRTIO_BLK_F_BLK_SIZE) |
		     (1ull << VIOMMU_VIRTIO_BLK_F_FLUSH);

	if (blk->ro)
		f |= 1ull << VIOMMU_VIRTIO_BLK_F_RO;
	else
		f |= (1ull << VIOMMU_VIRTIO_BLK_F_DISCARD) |
		     (1ull << VIOMMU_VIRTIO_BLK_F_WRITE_ZEROES);
	if (blk->nq > 1)
		f |= 1ull << VIOMMU_VIRTIO_BLK_F_MQ;
	if (c->ep)
		f |= 1ull << VIOMMU_VIRTIO_F_ACCESS_PLATFORM;
	return f;
}

/* alloc_pool() - requests, their segment arrays and worker scratch. */
static int alloc_pool(struct viommu_virtio_blk *blk)
{
	size_t nseg = 2 * (size_t)blk->qsize;

	blk->reqs = xzalloc(&blk->alloc, blk->max_inflight * sizeof(*blk->reqs));
	blk->seg_store = xzalloc(&blk->alloc, blk->max_inflight * nseg *
					      sizeof(struct vq_seg));
	if (!blk->reqs || !blk->seg_store)
		return -ENOMEM;
	for (uint32_t i = blk->max_inflight; i--;) {
		blk->reqs[i].segs = blk->seg_store + i * nseg;
		blk->reqs[i].next = blk->free_list;
		blk->free_list = &blk->reqs[i];
	}
	for (uint32_t i = 0; i < blk->nworkers; i++) {
		struct blk_worker *w = &blk->workers[i];

		w->blk = blk;
		w->pc = xalloc(&blk->alloc, BLK_MAX_PIECES * sizeof(*w->pc));
		w->iov = xalloc(&blk->alloc, IOV_MAX * sizeof(*w->iov));
		w->bounce = xalloc(&blk->alloc, BLK_BOUNCE_BYTES);
		if (!w->pc || !w->iov || !w->bounce)
			return -ENOMEM;
	}
	return 0;
}

/* free_pool() - undo alloc_pool() (partial state accepted). */
static void free_pool(struct viommu_virtio_blk *blk)
{
	for (uint32_t i = 0; blk->workers && i < blk->nworkers; i++) {
		xfree(&blk->alloc, blk->workers[i].pc);
		xfree(&blk->alloc, blk->workers[i].iov);
		xfree(&blk->alloc, blk->workers[i].bounce);
	}
	xfree(&blk->alloc, blk->workers);
	xfree(&blk->alloc, blk->reqs);
	xfree(&blk->alloc, blk->seg_store);
}

/* stop_workers() - end and join every started worker. */
static void stop_workers(struct viommu_virtio_blk *blk)
{
	pthread_mutex_lock(&blk->mu);
	blk->stopping = true;
	pthread_cond_broadcast(&blk->work_cv);
	pthread_mutex_unlock(&blk->mu);
	for (uint32_t i = 0; i < blk->nworkers; i++)
		if (blk->workers[i].started)
			pthread_join(blk->workers[i].th, NULL);
}

/* start_workers() - Return: 0; -errno of pthread_create(). */
static int start_workers(struct viommu_virtio_blk *blk)
{
	for (uint32_t i = 0; i < blk->nworkers; i++) {
		int err = pthread_create(&blk->workers[i].th, NULL,
					 worker_main, &blk->workers[i]);

		if (err)
			return -err;
		blk->workers[i].started = true;
	}
	return 0;
}

/* init_sync() - the pool lock and condition variables. */
static int init_sync(struct viommu_virtio_blk *blk)
{
	if (pthread_mutex_init(&blk->mu, NULL))
		return -ENOMEM;
	if (pthread_cond_init(&blk->work_cv, NULL))
		goto err_mu;
	if (pthread_cond_init(&blk->idle_cv, NULL))
		goto err_work;
	return 0;
err_work:
	pthread_cond_destroy(&blk->work_cv);
err_mu:
	pthread_mutex_destroy(&blk->mu);
	return -ENOMEM;
}

static void fini_sync(struct viommu_virtio_blk *blk)
{
	pthread_cond_destroy(&blk->idle_cv);
	pthread_cond_destroy(&blk->work_cv);
	pthread_mutex_destroy(&blk->mu);
}

/*
 * The config and stats structs as the first release had them: what a
 * @size of 0 means (never today's sizeof, which grows).
 */
#define CONFIG_SIZE_V1 \
	(offsetof(struct viommu_virtio_blk_config, io_threads) + \
	 sizeof(uint32_t))
#define STATS_SIZE_V1 \
	(offsetof(struct viommu_virtio_blk_stats, needs_reset) + \
	 sizeof(uint64_t))

VIOMMU_EXPORT int
viommu_virtio_blk_create(const struct viommu_virtio_blk_config *user,
			 struct viommu_virtio_blk **out)
{
	struct viommu_allocator alloc = { 0 };
	struct viommu_virtio_blk_config c;
	struct viommu_virtio_blk *blk;
	int err;

	if (!user || !out || user->size > sizeof(c))
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	memcpy(&c, user, user->size ? user->size : CONFIG_SIZE_V1);
	err = check_config(&c);
	if (err)
		return err;
	blk = xzalloc(&alloc, sizeof(*blk));
	if (!blk)
		return -ENOMEM;
	blk->alloc = alloc;
	blk->log = c.log;
	blk->ro = c.read_only;
	blk->nq = c.num_queues;
	blk->qsize = c.queue_size;
	blk->seg_max = blk->qsize > 3 ? blk->qsize - 2u : 1u;
	blk->max_inflight = c.max_inflight;
	blk->nworkers = c.io_threads;
	blk->io.ep = c.ep;
	memcpy(blk->serial, c.serial, strlen(c.serial));
	err = open_backend(blk, &c);
	if (err)
		goto err_free;
	blk->workers = xzalloc(&alloc, blk->nworkers * sizeof(*blk->workers));
	err = blk->workers ? alloc_pool(blk) : -ENOMEM;
	if (err)
		goto err_pool;
	err = init_sync(blk);
	if (err)
		goto err_pool;
	err = vdev_init(&blk->dev, &blk_ops, blk, c.mem, &blk->log,
			&blk->alloc, offered(blk, &c), blk->nq, blk->qsize);
	if (err)
		goto err_sync;
	blk->dev.iommu = c.ep ? &blk->io : NULL;
	err = start_workers(blk);
	if (err)
		goto err_workers;
	log_info(&blk->log, "virtio-blk: %llu sectors (%s%s), %u queue(s) of "
		 "%u, %u in flight, %u worker(s), %s", (unsigned long long)
		 blk->sectors, c.path ? c.path : "anonymous memory",
		 blk->ro ? ", read-only" : "", blk->nq, blk->qsize,
		 blk->max_inflight, blk->nworkers,
		 c.ep ? "behind an IOMMU" : "guest-physical addresses");
	*out = blk;
	return 0;

err_workers:
	stop_workers(blk);
	vdev_destroy(&blk->dev);
err_sync:
	fini_sync(blk);
err_pool:
	free_pool(blk);
	close_backend(blk);
err_free:
	xfree(&alloc, blk);
	return err;
}

VIOMMU_EXPORT void viommu_virtio_blk_destroy(struct viommu_virtio_blk *blk)
{
	struct viommu_allocator alloc;

	if (!blk)
		return;
	pthread_mutex_lock(&blk->dev.lock);
	__cancel(blk);
	pthread_mutex_unlock(&blk->dev.lock);
	stop_workers(blk);
	vdev_destroy(&blk->dev);
	fini_sync(blk);
	free_pool(blk);
	close_backend(blk);
	alloc = blk->alloc;
	xfree(&alloc, blk);
}

VIOMMU_EXPORT struct viommu_virtio_dev *
viommu_virtio_blk_dev(struct viommu_virtio_blk *blk)
{
	return blk ? &blk->dev : NULL;
}

VIOMMU_EXPORT int viommu_virtio_blk_inject_faults(struct viommu_virtio_blk *blk,
						  uint32_t n)
{
	if (!blk)
		return -EINVAL;
	if (!blk->io.ep)
		return -ENODEV;
	__atomic_store_n(&blk->io.inject, n, __ATOMIC_RELAXED);
	return 0;
}

VIOMMU_EXPORT int viommu_virtio_blk_stats(struct viommu_virtio_blk *blk,
					  struct viommu_virtio_blk_stats *st)
{
	struct viommu_virtio_blk_stats s;
	size_t n;

	if (!blk || !st || st->size > sizeof(s))
		return -EINVAL;
	n = st->size ? st->size : STATS_SIZE_V1;
#define LD(f) s.f = __atomic_load_n(&blk->st.f, __ATOMIC_RELAXED)
	LD(reads); LD(writes); LD(flushes); LD(discards); LD(write_zeroes);
	LD(get_id); LD(bytes_read); LD(bytes_written); LD(ioerr); LD(unsupp);
	LD(needs_reset);
#undef LD
	s.faults = __atomic_load_n(&blk->io.faults, __ATOMIC_RELAXED);
	s.injected_faults = __atomic_load_n(&blk->io.injected,
					    __ATOMIC_RELAXED);
	s.size = n;
	memcpy(st, &s, n);
	return 0;
}
