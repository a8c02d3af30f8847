/*
 * iommu_event.c - the virtio-iommu device's fault reports: a bounded
 * backlog of core faults (oldest dropped when full) and their delivery
 * into buffers the driver posts on the event queue, one report per buffer
 * (VIRTIO 1.3 §5.13.6.9).  The locking rules are those of iommu.c: the
 * backlog has its own leaf lock (ev_lock); delivery runs under the device
 * lock, either at the end of a hook (vi_hook_exit) or from the fault
 * callback when the faulting thread is not inside one of our hooks.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "base/util.h"
#include "virtio/iommu_internal.h"
#include "virtio/iommu_table_wire.h"
#include "virtio/iommu_wire.h"

/* ------------------------------------------------------------------ */
/* Fault backlog and the event queue                                  */

/*
 * ev_set_count() - update the backlog length (ev_lock held); stored
 * atomically because ev_pending() peeks at it without the lock.
 */
static void ev_set_count(struct viommu_virtio_iommu *vi, uint32_t n)
{
	__atomic_store_n(&vi->ev_count, n, __ATOMIC_RELAXED);
}

/*
 * ev_enqueue() - add @f to the backlog, dropping the oldest report when it
 * is full.  Return: 0; -ENOSPC (a report was dropped).
 */
static int ev_enqueue(struct viommu_virtio_iommu *vi,
		      const struct viommu_fault *f)
{
	int ret = 0;

	pthread_mutex_lock(&vi->ev_lock);
	if (vi->ev_count == vi->ev_cap) {
		vi->ev_head = (vi->ev_head + 1) % vi->ev_cap;
		ev_set_count(vi, vi->ev_count - 1);
		vi->ev_dropped++;
		ret = -ENOSPC;
	}
	vi->ev[(vi->ev_head + vi->ev_count) % vi->ev_cap] = *f;
	ev_set_count(vi, vi->ev_count + 1);
	pthread_mutex_unlock(&vi->ev_lock);
	return ret;
}

/* ev_dequeue() - take the oldest report.  Return: whether there was one. */
static bool ev_dequeue(struct viommu_virtio_iommu *vi, struct viommu_fault *f)
{
	bool ok = false;

	pthread_mutex_lock(&vi->ev_lock);
	if (vi->ev_count) {
		*f = vi->ev[vi->ev_head];
		vi->ev_head = (vi->ev_head + 1) % vi->ev_cap;
		ev_set_count(vi, vi->ev_count - 1);
		ok = true;
	}
	pthread_mutex_unlock(&vi->ev_lock);
	return ok;
}

/* ev_pending() - whether reports wait (a racy hint, rechecked later). */
static bool ev_pending(struct viommu_virtio_iommu *vi)
{
	return __atomic_load_n(&vi->ev_count, __ATOMIC_RELAXED) != 0;
}

/* ev_clear() - forget every queued report (device reset). */
void vi_ev_clear(struct viommu_virtio_iommu *vi)
{
	pthread_mutex_lock(&vi->ev_lock);
	vi->ev_head = 0;
	ev_set_count(vi, 0);
	pthread_mutex_unlock(&vi->ev_lock);
}

/* fault_encode() - the virtio report for core fault @f (D35). */
static void fault_encode(const struct viommu_fault *f, struct vi_fault *w)
{
	uint32_t flags = VI_FAULT_F_ADDRESS;

	memset(w, 0, sizeof(*w));
	switch (f->reason) {
	case VIOMMU_FAULT_UNATTACHED:
	case VIOMMU_FAULT_BLOCKED:
	case VIOMMU_FAULT_NO_PASID:
		w->reason = VI_FAULT_R_DOMAIN;
		break;
	case VIOMMU_FAULT_NO_MAPPING:
	case VIOMMU_FAULT_PERMISSION:
	case VIOMMU_FAULT_RESERVED:
		w->reason = VI_FAULT_R_MAPPING;
		break;
	default:
		w->reason = VI_FAULT_R_UNKNOWN;
		break;
	}
	if (f->access & VIOMMU_READ)
		flags |= VI_FAULT_F_READ;
	if (f->access & VIOMMU_WRITE)
		flags |= VI_FAULT_F_WRITE;
	if (f->access & VIOMMU_EXEC)
		flags |= VI_FAULT_F_EXEC;
	w->flags = htole32(flags);
	w->endpoint = htole32(f->endpoint);
	w->address = htole64(f->address);
}

/* ev_queue_live() - whether the event queue may be used now. */
static bool ev_queue_live(struct viommu_virtio_iommu *vi)
{
	const struct vq *vq = &vi->dev.vqs[VI_EQ];
	uint8_t s = vi->dev.status;

	return (s & VIOMMU_VIRTIO_S_DRIVER_OK) &&
	       !(s & VIOMMU_VIRTIO_S_NEEDS_RESET) && vq->ready && !vq->broken;
}

/*
 * ev_send_ext() - V21: with PAGE_REQ negotiated every report takes the
 * 48-byte layout.  Return: the used length (48, or 0).
 */
static uint32_t ev_send_ext(struct viommu_virtio_iommu *vi, struct vq *vq,
			    const struct vq_elem *e)
{
	struct viommu_fault f;
	struct vi_event_ext x;
	struct vi_fault w;

	if (e->write_len < sizeof(x)) {
		rl_warn(&vi->rl, &vi->log, "virtio-iommu: eventq buffer has %u "
			"writable bytes, a report needs %zu (V20): returned "
			"unused", e->write_len, sizeof(x));
		return 0;
	}
	if (!ev_dequeue(vi, &f))
		return 0;
	fault_encode(&f, &w);
	vt_fault_encode(&f, w.reason, le32toh(w.flags), &x);
	if (vq_write(vq, e, 0, &x, sizeof(x))) {
		pthread_mutex_lock(&vi->ev_lock);
		vi->ev_dropped++;
		pthread_mutex_unlock(&vi->ev_lock);
		return 0;
	}
	vi->st.events_sent++;
	trace_vi_fault(&vi->tr, w.reason, le32toh(w.flags), f.endpoint,
		       f.address);
	return sizeof(x);
}

/*
 * ev_send_one() - write the oldest report into chain @e: a page request
 * first (iommu_pri.c), else a fault.
 * Return: the used length (24 or 48, or 0 when the buffer was unusable).
 */
static uint32_t ev_send_one(struct viommu_virtio_iommu *vi, struct vq *vq,
			    const struct vq_elem *e)
{
	struct viommu_fault f;
	struct vi_fault w;

	if (vt_prq_pending(vi))
		return vt_prq_send(vi, vq, e);
	if (vt_ext_events(vi))
		return ev_send_ext(vi, vq, e);
	if (e->write_len < sizeof(w)) {
		rl_warn(&vi->rl, &vi->log, "virtio-iommu: eventq buffer has %u "
			 "writable bytes, a fault report needs %zu (D35: one "
			 "report per buffer): returned unused", e->write_len,
			 sizeof(w));
		return 0;
	}
	if (!ev_dequeue(vi, &f))
		return 0;
	fault_encode(&f, &w);
	if (vq_write(vq, e, 0, &w, sizeof(w))) {
		rl_warn(&vi->rl, &vi->log, "virtio-iommu: eventq buffer not writable, "
			 "fault report for endpoint %#x dropped", f.endpoint);
		pthread_mutex_lock(&vi->ev_lock);
		vi->ev_dropped++;
		pthread_mutex_unlock(&vi->ev_lock);
		return 0;
	}
	vi->st.events_sent++;
	trace_vi_fault(&vi->tr, w.reason, le32toh(w.flags), f.endpoint,
		       f.address);
	return sizeof(w);
}

/*
 * ev_flush() - deliver queued reports into posted event buffers (device
 * lock held).  Reports stay queued while no buffer is available; at most
 * twice the ring size of buffers are looked at per call.
 */
static void ev_flush(struct viommu_virtio_iommu *vi)
{
	struct vq *vq = &vi->dev.vqs[VI_EQ];
	uint32_t budget = 2u * (vq->size ? vq->size : vq->max_size);
	struct vq_elem e;
	uint32_t pushed = 0;
	int ret = 0;

	unsigned int tok;

	if ((!ev_pending(vi) && !vt_prq_pending(vi)) || !ev_queue_live(vi))
		return;
	/* vq_* calls run inside a memory read section (virtqueue.h). */
	tok = viommu_mem_read_lock(vi->dev.mem);
	while (budget-- && (ev_pending(vi) || vt_prq_pending(vi))) {
		ret = vq_pop(vq, &e);
		if (ret)
			break;
		ret = vq_push(vq, &e, ev_send_one(vi, vq, &e));
		if (ret)
			break;
		pushed++;
	}
	if (pushed)
		__vdev_queue_done(&vi->dev, VI_EQ);
	viommu_mem_read_unlock(vi->dev.mem, tok);
	if (ret == -EIO)
		needs_reset(vi, "virtio-iommu: eventq is broken");
}

/* vi_ev_flush() - see iommu_internal.h. */
void vi_ev_flush(struct viommu_virtio_iommu *vi)
{
	ev_flush(vi);
}

/* vi_hook_exit() - see iommu_internal.h. */
void vi_hook_exit(struct viommu_virtio_iommu *vi)
{
	ev_flush(vi);
	__atomic_store_n(&vi->owned, 0, __ATOMIC_RELEASE);
}

/*
 * vi_fault_cb() - see iommu_internal.h; no viommu lock held.  The report
 * goes to the guest, then to the handler the embedder had installed
 * before this device (chained, never silently replaced).
 */
void vi_fault_cb(void *opaque, const struct viommu_fault *fault)
{
	struct viommu_virtio_iommu *vi = opaque;

	(void)viommu_virtio_iommu_report_fault(vi, fault);
	if (vi->prev_fault_fn)
		vi->prev_fault_fn(vi->prev_fault_opaque, fault);
}

VIOMMU_EXPORT int
viommu_virtio_iommu_report_fault(struct viommu_virtio_iommu *vi,
				 const struct viommu_fault *fault)
{
	int ret;

	if (!vi || !fault)
		return -EINVAL;
	ret = ev_enqueue(vi, fault);
	if (in_own_hook(vi))
		return ret; /* the hook flushes on its way out */
	pthread_mutex_lock(&vi->dev.lock);
	ev_flush(vi);
	pthread_mutex_unlock(&vi->dev.lock);
	return ret;
}
