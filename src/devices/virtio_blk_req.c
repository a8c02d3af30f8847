/*
 * virtio_blk_req.c - one virtio-blk request, run by a worker thread
 * (VIRTIO 1.3 §5.2.6; rule IDs from docs/VIRTIO-BLK.md).
 *
 * Concept: a request is a popped descriptor chain, readable part first
 * (the 16-byte header, then OUT data or DISCARD / WRITE_ZEROES segments),
 * writable part last (IN data or the GET_ID string, then the status byte,
 * the very last byte).  Every byte range of it the device touches is first
 * turned into "pieces": contiguous stretches that each translate (IOVA
 * mode: viommu_translate() of the queue's endpoint, for the access the
 * device makes) to one host range, or to guest RAM without a host pointer
 * which is then copied through the memory layer (bounce).  The contiguous
 * length every translation returns is what a piece covers; nothing is
 * assumed beyond it.
 *
 * Order of work, so that a fault leaves the image untouched (B9):
 *   1. the status byte is translated first; if it cannot be, the request
 *      cannot be answered and the device needs reset (B10);
 *   2. the header is copied into host memory once and validated (B3-B7);
 *   3. every data range is translated into pieces before any I/O starts;
 *      a fault or a non-RAM address ends the request with IOERR (B8);
 *   4. the backend I/O runs on the pieces (preadv/pwritev, or memcpy for
 *      anonymous memory), never past the capacity (B6);
 *   5. the status byte is written.
 *
 * The caller (virtio_blk.c) holds a guest-memory read section across all
 * of it (the host pointers stay valid) and no lock.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio_blk_internal.h"
#include "base/util.h"
#include "mem/mem_internal.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* A request's outcome: its status and the data bytes it wrote to the
 * guest's writable part (the status byte not counted). */
struct outcome {
	uint8_t status;
	uint32_t written;
};

/* refuse() - a request refused by rule @rule: one WARN line (rate
 * limited), count it, and answer @status. */
static struct outcome refuse(struct viommu_virtio_blk *blk, uint8_t status,
			     const char *rule, const char *why)
{
	rl_warn(&blk->dev.rl, &blk->log,
		"virtio-blk: request refused (%s): %s", rule, why);
	if (status == BLK_S_UNSUPP)
		ATOMIC_INC(blk->st.unsupp);
	else
		ATOMIC_INC(blk->st.ioerr);
	return (struct outcome){ status, 0 };
}

/* ------------------------------------------------------------------ */
/* Translation into pieces                                            */

/*
 * map_part() - append to w->pc the pieces of bytes [@off, @off + @len) of
 * @r's writable (@write) or readable part.  @may_inject: injected faults
 * apply (everything but the status byte, B18).  Return: 0; -EFAULT;
 * -EIO; -E2BIG (more than BLK_MAX_PIECES pieces); -ERANGE (past the
 * part).
 */
static int map_part(struct blk_worker *w, const struct blk_req *r, bool write,
		    uint32_t off, uint32_t len, bool may_inject)
{
	return vq_elem_pieces(r->io, w->blk->dev.mem, &r->e, write, off, len,
			      may_inject, w->pc, BLK_MAX_PIECES, &w->npc);
}

/*
 * copy_pieces() - copy @len bytes between @buf and pieces [@from, w->npc)
 * (to the guest if @to_guest).  Return: 0; -EIO (memory layer refused).
 */
static int copy_pieces(struct blk_worker *w, uint32_t from, uint8_t *buf,
		       bool to_guest)
{
	return vq_pieces_copy(w->blk->dev.mem, w->pc, from, w->npc, buf,
			      to_guest);
}

/*
 * xfer_part() - translate and copy @len bytes at @off of @r's writable
 * (@write: @buf -> guest) or readable part.  Uses w->pc past its current
 * end and gives it back.  Return: as map_part(), or -EIO.
 */
static int xfer_part(struct blk_worker *w, const struct blk_req *r,
		     bool write, uint32_t off, void *buf, uint32_t len)
{
	uint32_t base = w->npc;
	int err = map_part(w, r, write, off, len, true);

	if (!err)
		err = copy_pieces(w, base, buf, write);
	w->npc = base;
	return err;
}

/* ------------------------------------------------------------------ */
/* Backend I/O                                                        */

/*
 * rw_full() - preadv/pwritev all of @iov[0..@n) at @off, retrying short
 * transfers; @iov is consumed.  Return: 0; -errno; -EIO (end of file).
 */
static int rw_full(int fd, struct iovec *iov, int n, uint64_t off,
		   bool to_guest)
{
	while (n) {
		ssize_t got = to_guest ? preadv(fd, iov, n, (off_t)off)
				       : pwritev(fd, iov, n, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			return -EIO;
		off += (uint64_t)got;
		while (n && (size_t)got >= iov->iov_len) {
			got -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + got;
			iov->iov_len -= (size_t)got;
		}
	}
	return 0;
}

/*
 * bounce_io() - move one piece without a host pointer through the
 * worker's bounce buffer.  Return: 0; -errno.
 */
static int bounce_io(struct blk_worker *w, const struct vq_piece *p,
		     uint64_t off, bool to_guest)
{
	struct viommu_virtio_blk *blk = w->blk;
	uint64_t gpa = p->gpa;
	uint32_t left = p->len;

	while (left) {
		uint32_t n = MIN(left, BLK_BOUNCE_BYTES);
		struct iovec v = { w->bounce, n };
		int err = 0;

		if (blk->fd < 0) {
			err = mem_access_in(blk->dev.mem, gpa, blk->anon + off,
					    n, to_guest);
		} else if (to_guest) {
			err = rw_full(blk->fd, &v, 1, off, true);
			if (!err)
				err = mem_access_in(blk->dev.mem, gpa,
						    w->bounce, n, true);
		} else {
			err = mem_access_in(blk->dev.mem, gpa, w->bounce, n,
					    false);
			if (!err)
				err = rw_full(blk->fd, &v, 1, off, false);
		}
		if (err)
			return err;
		gpa += n;
		off += n;
		left -= n;
	}
	return 0;
}

/*
 * io_pieces() - the backend I/O for all of w->pc, the image's bytes from
 * @off on (to the guest: a read request).  Host pieces go in batches of
 * up to IOV_MAX through preadv/pwritev; the others bounce.
 * Return: 0; -errno.
 */
static int io_pieces(struct blk_worker *w, uint64_t off, bool to_guest)
{
	struct viommu_virtio_blk *blk = w->blk;
	uint64_t batch_off = off;
	int n = 0, err = 0;

	for (uint32_t i = 0; i < w->npc && !err; i++) {
		const struct vq_piece *p = &w->pc[i];

		if (p->hva && blk->fd < 0) {
			if (to_guest)
				memcpy(p->hva, blk->anon + off, p->len);
			else
				memcpy(blk->anon + off, p->hva, p->len);
		} else if (p->hva) {
			if (n == 0)
				batch_off = off;
			w->iov[n++] = (struct iovec){ p->hva, p->len };
			if (n == IOV_MAX) {
				err = rw_full(blk->fd, w->iov, n, batch_off,
					      to_guest);
				n = 0;
			}
		} else {
			if (n)
				err = rw_full(blk->fd, w->iov, n, batch_off,
					      to_guest);
			n = 0;
			if (!err)
				err = bounce_io(w, p, off, to_guest);
		}
		off += p->len;
	}
	if (!err && n)
		err = rw_full(blk->fd, w->iov, n, batch_off, to_guest);
	return err;
}

/* ------------------------------------------------------------------ */
/* Request types                                                      */

/*
 * range_ok() - whether @nsec sectors from @sector lie inside the
 * capacity (overflow-safe).
 */
static bool range_ok(const struct viommu_virtio_blk *blk, uint64_t sector,
		     uint64_t nsec)
{
	return sector <= blk->sectors && nsec <= blk->sectors - sector;
}

/* map_fail() - a data range could not be translated (B8). */
static struct outcome map_fail(struct viommu_virtio_blk *blk, int err)
{
	if (err == -E2BIG)
		return refuse(blk, BLK_S_IOERR, "B12",
			      "data in more translated pieces than the device "
			      "takes");
	if (err != -EFAULT)
		rl_warn(&blk->dev.rl, &blk->log, "virtio-blk: request refused "
			"(B8): data buffer not guest RAM");
	ATOMIC_INC(blk->st.ioerr);
	return (struct outcome){ BLK_S_IOERR, 0 };
}

/* feature() - whether the request's queue negotiated @bit. */
static bool feature(const struct blk_req *r, unsigned int bit)
{
	return (r->features >> bit) & 1;
}

/*
 * stable() - a driver that did not negotiate FLUSH (which we offer, and
 * without CONFIG_WCE) expects every completed write to be stable
 * (VIRTIO 1.3 §5.2.6.2, B5): write through.  Return: 0; -errno.
 */
static int stable(struct viommu_virtio_blk *blk, const struct blk_req *r)
{
	if (blk->fd < 0 || feature(r, VIOMMU_VIRTIO_BLK_F_FLUSH))
		return 0;
	return fdatasync(blk->fd) ? -errno : 0;
}

/* do_rw() - IN (@in) or OUT at @sector (B5-B9). */
static struct outcome do_rw(struct blk_worker *w, const struct blk_req *r,
			    uint64_t sector, bool in)
{
	struct viommu_virtio_blk *blk = w->blk;
	uint32_t len = in ? r->e.write_len - 1 : r->e.read_len - BLK_HDR_BYTES;
	int err;

	if (!in && blk->ro)
		return refuse(blk, BLK_S_IOERR, "B7", "write to a read-only "
			      "device");
	if (len % BLK_SECTOR)
		return refuse(blk, BLK_S_IOERR, "B5", "data length not a "
			      "multiple of 512");
	if (!range_ok(blk, sector, len / BLK_SECTOR))
		return refuse(blk, BLK_S_IOERR, "B6", "sectors beyond the "
			      "capacity");
	/* Translate everything first: a fault leaves the image untouched. */
	err = in ? map_part(w, r, true, 0, len, true)
		 : map_part(w, r, false, BLK_HDR_BYTES, len, true);
	if (err)
		return map_fail(blk, err);
	err = io_pieces(w, sector * BLK_SECTOR, in);
	if (!err && !in)
		err = stable(blk, r);
	if (err) {
		rl_warn(&blk->dev.rl, &blk->log, "virtio-blk: %s of %u bytes "
			"at sector %llu failed: %s", in ? "read" : "write",
			len, (unsigned long long)sector, strerror(-err));
		ATOMIC_INC(blk->st.ioerr);
		return (struct outcome){ BLK_S_IOERR, 0 };
	}
	if (in) {
		ATOMIC_INC(blk->st.reads);
		__atomic_fetch_add(&blk->st.bytes_read, len, __ATOMIC_RELAXED);
	} else {
		ATOMIC_INC(blk->st.writes);
		__atomic_fetch_add(&blk->st.bytes_written, len,
				   __ATOMIC_RELAXED);
	}
	return (struct outcome){ BLK_S_OK, in ? len : 0 };
}

/* do_flush() - FLUSH: the backend's data reaches stable storage. */
static struct outcome do_flush(struct viommu_virtio_blk *blk)
{
	if (blk->fd >= 0 && !blk->ro && fdatasync(blk->fd)) {
		rl_warn(&blk->dev.rl, &blk->log, "virtio-blk: flush failed: %s",
			strerror(errno));
		ATOMIC_INC(blk->st.ioerr);
		return (struct outcome){ BLK_S_IOERR, 0 };
	}
	ATOMIC_INC(blk->st.flushes);
	return (struct outcome){ BLK_S_OK, 0 };
}

/* do_get_id() - GET_ID: up to 20 bytes of the serial (B11). */
static struct outcome do_get_id(struct blk_worker *w, const struct blk_req *r)
{
	struct viommu_virtio_blk *blk = w->blk;
	uint32_t n = MIN(r->e.write_len - 1, VIOMMU_VIRTIO_BLK_ID_BYTES);
	int err = xfer_part(w, r, true, 0, blk->serial, n);

	if (err)
		return map_fail(blk, err);
	ATOMIC_INC(blk->st.get_id);
	return (struct outcome){ BLK_S_OK, n };
}

/*
 * zero_range() - discard (@discard) or write zeroes over @nsec sectors at
 * @sector.  Files: punch a hole (discard) or zero the range (falling back
 * to a hole, then to writing zeroes); a discard the file system cannot do
 * is a no-op, which the spec allows.  Return: 0; -errno.
 */
static int zero_range(struct blk_worker *w, uint64_t sector, uint64_t nsec,
		      bool discard)
{
	struct viommu_virtio_blk *blk = w->blk;
	off_t off = (off_t)(sector * BLK_SECTOR), len = (off_t)(nsec *
								 BLK_SECTOR);

	if (blk->fd < 0) {
		memset(blk->anon + off, 0, (size_t)len);
		return 0;
	}
	if (!discard && !fallocate(blk->fd, FALLOC_FL_ZERO_RANGE |
				   FALLOC_FL_KEEP_SIZE, off, len))
		return 0;
	if (!fallocate(blk->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       off, len))
		return 0;
	if (discard)
		return 0;
	memset(w->bounce, 0, BLK_BOUNCE_BYTES);
	while (len) {
		struct iovec v = { w->bounce, MIN((size_t)len,
						  BLK_BOUNCE_BYTES) };
		int err = rw_full(blk->fd, &v, 1, (uint64_t)off, false);

		if (err)
			return err;
		off += (off_t)v.iov_len;
		len -= (off_t)v.iov_len;
	}
	return 0;
}

/* do_dwz() - DISCARD or WRITE_ZEROES (B13). */
static struct outcome do_dwz(struct blk_worker *w, const struct blk_req *r,
			     bool discard)
{
	struct viommu_virtio_blk *blk = w->blk;
	uint8_t raw[BLK_MAX_DWZ_SEG * BLK_DWZ_BYTES];
	uint32_t len = r->e.read_len - BLK_HDR_BYTES, n = len / BLK_DWZ_BYTES;
	int err;

	if (blk->ro)
		return refuse(blk, BLK_S_IOERR, "B7", "discard or write "
			      "zeroes on a read-only device");
	if (len == 0 || len % BLK_DWZ_BYTES)
		return refuse(blk, BLK_S_IOERR, "B13", "segment list length "
			      "not a non-zero multiple of 16");
	if (n > BLK_MAX_DWZ_SEG)
		return refuse(blk, BLK_S_UNSUPP, "B13", "more segments than "
			      "max_discard_seg / max_write_zeroes_seg");
	err = xfer_part(w, r, false, BLK_HDR_BYTES, raw, len);
	if (err)
		return map_fail(blk, err);
	/* Copy, then validate every segment, then act (nothing half done). */
	for (uint32_t i = 0; i < n; i++) {
		uint64_t sector;
		uint32_t nsec, flags;

		memcpy(&sector, raw + i * BLK_DWZ_BYTES, 8);
		memcpy(&nsec, raw + i * BLK_DWZ_BYTES + 8, 4);
		memcpy(&flags, raw + i * BLK_DWZ_BYTES + 12, 4);
		sector = le64toh(sector);
		nsec = le32toh(nsec);
		flags = le32toh(flags);
		if ((flags & ~BLK_DWZ_F_UNMAP) ||
		    (discard && (flags & BLK_DWZ_F_UNMAP)))
			return refuse(blk, BLK_S_UNSUPP, "B13", "unknown or "
				      "unsupported segment flags");
		if (nsec > BLK_MAX_DWZ_SECTORS)
			return refuse(blk, BLK_S_IOERR, "B13", "segment longer "
				      "than the maximum");
		if (!range_ok(blk, sector, nsec))
			return refuse(blk, BLK_S_IOERR, "B6", "segment beyond "
				      "the capacity");
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t sector;
		uint32_t nsec;

		memcpy(&sector, raw + i * BLK_DWZ_BYTES, 8);
		memcpy(&nsec, raw + i * BLK_DWZ_BYTES + 8, 4);
		err = zero_range(w, le64toh(sector), le32toh(nsec), discard);
		if (err) {
			ATOMIC_INC(blk->st.ioerr);
			return (struct outcome){ BLK_S_IOERR, 0 };
		}
	}
	if (stable(blk, r)) {
		ATOMIC_INC(blk->st.ioerr);
		return (struct outcome){ BLK_S_IOERR, 0 };
	}
	if (discard)
		ATOMIC_INC(blk->st.discards);
	else
		ATOMIC_INC(blk->st.write_zeroes);
	return (struct outcome){ BLK_S_OK, 0 };
}

/* execute() - steps 2 to 4 of the top comment. */
static struct outcome execute(struct blk_worker *w, const struct blk_req *r)
{
	struct viommu_virtio_blk *blk = w->blk;
	uint8_t hdr[BLK_HDR_BYTES];
	uint32_t type;
	uint64_t sector;
	int err;

	if (r->e.read_len < BLK_HDR_BYTES)
		return refuse(blk, BLK_S_IOERR, "B3", "readable part shorter "
			      "than the 16-byte header");
	err = xfer_part(w, r, false, 0, hdr, sizeof(hdr));
	if (err)
		return map_fail(blk, err);
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	type = le32toh(type);
	sector = le64toh(sector);
	switch (type) {
	case BLK_T_IN:
		return do_rw(w, r, sector, true);
	case BLK_T_OUT:
		return do_rw(w, r, sector, false);
	case BLK_T_FLUSH:
		return do_flush(blk);
	case BLK_T_GET_ID:
		return do_get_id(w, r);
	case BLK_T_DISCARD:
		if (feature(r, VIOMMU_VIRTIO_BLK_F_DISCARD))
			return do_dwz(w, r, true);
		break;
	case BLK_T_WRITE_ZEROES:
		if (feature(r, VIOMMU_VIRTIO_BLK_F_WRITE_ZEROES))
			return do_dwz(w, r, false);
		break;
	default:
		break;
	}
	ATOMIC_INC(blk->st.unsupp);
	log_debug(&blk->log, "virtio-blk: request type %u unsupported (B4)",
		  type);
	return (struct outcome){ BLK_S_UNSUPP, 0 };
}

void blk_run_request(struct blk_worker *w, struct blk_req *r)
{
	struct vq_piece st;
	struct outcome o;
	uint8_t status;
	int err;

	w->npc = 0;
	r->needs_reset = false;
	if (r->e.write_len == 0) {
		r->needs_reset = true;
		r->why = "request without a writable status byte (B2)";
		return;
	}
	/* Step 1: the status byte (B10). */
	err = map_part(w, r, true, r->e.write_len - 1, 1, false);
	if (err) {
		r->needs_reset = true;
		r->why = err == -EFAULT ? "status byte does not translate "
					  "for writing (B10)"
					: "status byte not in guest RAM (B10)";
		return;
	}
	st = w->pc[0];
	w->npc = 0;
	o = execute(w, r);
	status = o.status;
	if (st.hva)
		__atomic_store_n(st.hva, status, __ATOMIC_RELAXED);
	else if (mem_access_in(w->blk->dev.mem, st.gpa, &status, 1, true)) {
		r->needs_reset = true;
		r->why = "status byte not writable (B10)";
		return;
	}
	r->used_len = o.written + 1;
}
