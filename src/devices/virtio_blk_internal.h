/*
 * virtio_blk_internal.h - what the two halves of the virtio-blk model
 * share: virtio_blk.c (the device: config space, features, queues, the
 * request pool, worker threads, completion and reset) and virtio_blk_req.c
 * (one request: header, translation of its buffers into host pieces, the
 * backend I/O, the status byte).  Rules are those of docs/VIRTIO-BLK.md
 * (B1...).
 *
 * Locks: dev.lock (the virtio device lock: rings, status, hooks) before
 * blk->mu (the request pool, work list, epoch and active count).  A
 * worker runs a request with neither held, inside a guest-memory read
 * section, then takes dev.lock to complete it.
 */
#ifndef VIOMMU_VIRTIO_BLK_INTERNAL_H
#define VIOMMU_VIRTIO_BLK_INTERNAL_H

#include <viommu/virtio_blk.h>
#include <pthread.h>
#include <sys/uio.h>

#include "virtio/virtio_dev.h"

#define BLK_SECTOR 512u
#define BLK_HDR_BYTES 16u
/* Request types and status (VIRTIO 1.3 §5.2.6). */
#define BLK_T_IN 0u
#define BLK_T_OUT 1u
#define BLK_T_FLUSH 4u
#define BLK_T_GET_ID 8u
#define BLK_T_DISCARD 11u
#define BLK_T_WRITE_ZEROES 13u
#define BLK_S_OK 0u
#define BLK_S_IOERR 1u
#define BLK_S_UNSUPP 2u
/* DISCARD / WRITE_ZEROES segment: le64 sector, le32 num_sectors, le32
 * flags (bit 0: unmap, write zeroes only). */
#define BLK_DWZ_BYTES 16u
#define BLK_DWZ_F_UNMAP 1u

/* Limits the device reports and enforces. */
#define BLK_SIZE_MAX (64u << 10)  /* size_max: bytes per segment */
#define BLK_MAX_DWZ_SEG 32u       /* max_discard_seg, max_write_zeroes_seg */
#define BLK_MAX_DWZ_SECTORS (1u << 22) /* per segment (2 GiB) */
#define BLK_MAX_PIECES 8192u      /* translated pieces per request (B12) */
#define BLK_BOUNCE_BYTES (64u << 10)
#define BLK_MAX_WORKERS 16u

/* struct blk_req - one popped request, owned by the device until done. */
struct blk_req {
	struct blk_req *next;  /* free list or work list (blk->mu) */
	uint32_t epoch;        /* blk->epoch when popped */
	uint16_t q;
	struct vq_iommu *io;   /* the queue's IOVA mode at pop time, or NULL */
	uint64_t features;     /* negotiated at pop time */
	struct vq_elem e;      /* segs points to @segs */
	struct vq_seg *segs;   /* 2 * queue size */
	/* set by the worker */
	uint32_t used_len;
	bool needs_reset;      /* the status byte was unreachable */
	const char *why;
};

/* struct blk_worker - one I/O thread and its scratch space. */
struct blk_worker {
	struct viommu_virtio_blk *blk;
	pthread_t th;
	bool started;
	struct vq_piece *pc;   /* BLK_MAX_PIECES */
	uint32_t npc;
	struct iovec *iov;      /* IOV_MAX */
	uint8_t *bounce;        /* BLK_BOUNCE_BYTES */
};

struct viommu_virtio_blk {
	struct viommu_virtio_dev dev;
	struct vq_iommu io;
	struct viommu_allocator alloc;
	struct viommu_log log;

	/* backend (immutable after create) */
	int fd;               /* -1: anonymous */
	uint8_t *anon;
	uint64_t sectors;     /* capacity in 512-byte sectors */
	bool ro;
	char serial[VIOMMU_VIRTIO_BLK_ID_BYTES];
	uint16_t nq, qsize;
	uint32_t seg_max;
	uint32_t max_inflight;

	/* requests (mu) */
	pthread_mutex_t mu;
	pthread_cond_t work_cv, idle_cv;
	struct blk_req *reqs;       /* max_inflight */
	struct vq_seg *seg_store;   /* max_inflight * 2 * qsize */
	struct blk_req *free_list;
	struct blk_req *work_head, *work_tail;
	struct blk_req *done_head, *done_tail; /* I/O finished, not yet used */
	uint32_t active;            /* taken by a worker, I/O not finished */
	uint32_t epoch;             /* bumped by every reset */
	bool stopping;
	bool stalled[VIOMMU_VIRTIO_BLK_MAX_QUEUES]; /* dev.lock */

	struct blk_worker *workers;
	uint32_t nworkers;

	struct viommu_virtio_blk_stats st; /* relaxed atomics */
};

/*
 * blk_run_request() - execute @r on worker @w: validate, translate, do the
 * I/O, write the status byte; fills r->used_len, or sets r->needs_reset
 * when no status can be given.  The caller is inside a memory read
 * section and holds no lock.
 */
void blk_run_request(struct blk_worker *w, struct blk_req *r);


#endif /* VIOMMU_VIRTIO_BLK_INTERNAL_H */
