/*
 * trace.h - typed trace points, in the spirit of QEMU's trace-events: one
 * declaration per event with named, typed fields; nearly free when off (a
 * load and a branch); routed either to a structured sink (a record with
 * the event's ID, name and fields, for a tool that counts or filters) or,
 * with no sink function, to the object's log callback as one DEBUG line.
 *
 * Events (fields in order; all values widened to uint64_t in a record):
 *
 *   VIOMMU_TRACE_VI_REQUEST   virtio-iommu answered a request:
 *                             type, status, domain, endpoint, start, end
 *                             (domain/endpoint/start/end 0 where the
 *                             request has none; status 0xff: returned
 *                             unwritten)
 *   VIOMMU_TRACE_VI_FAULT     virtio-iommu queued a fault report:
 *                             reason, flags, endpoint, address
 *   VIOMMU_TRACE_SMMU_CMD     SMMUv3 consumed a command:
 *                             opcode, error (0, or the CERROR code), index
 *   VIOMMU_TRACE_SMMU_EVENT   SMMUv3 wrote (or lost) an event record:
 *                             type, sid, ssid, address, lost
 *
 * The translation core (viommu_ctx_set_trace_sink(); "domain" is the
 * domain's tag, "error" 0 or a negative errno as returned):
 *
 *   VIOMMU_TRACE_CORE_MAP     a map call: domain, iova, last, gpa, prot,
 *                             error
 *   VIOMMU_TRACE_CORE_UNMAP   an unmap call: domain, iova, last, bytes
 *                             (unmapped), error
 *   VIOMMU_TRACE_CORE_INVAL   an IOTLB invalidation of a domain's range
 *                             (viommu_ctx_invalidate_all(): one per
 *                             domain): domain, iova, last
 *   VIOMMU_TRACE_CORE_MISS    a translation missed the IOTLB (the slow
 *                             path; hits are not traced): endpoint,
 *                             pasid, iova, access
 *   VIOMMU_TRACE_CORE_FAULT   a translation fault raised: reason, access,
 *                             endpoint, pasid, address, delivered (1: a
 *                             fault handler was called)
 *   VIOMMU_TRACE_CORE_ATTACH  an attachment changed: endpoint, pasid,
 *                             domain, attached (1: attached to, 0:
 *                             detached from)
 *   VIOMMU_TRACE_CORE_NOTIFY  notifiers called for an event (none
 *                             called: no record): domain, type
 *                             (VIOMMU_EVENT_*), iova, last, called
 *   VIOMMU_TRACE_CORE_DIRTY   dirty tracking: domain, op (0 disable, 1
 *                             enable, 2 read), iova, last, error
 *
 * The VT-d model (viommu_vtd_set_trace_sink()):
 *
 *   VIOMMU_TRACE_VTD_REG_WRITE an MMIO write: offset, size, value
 *   VIOMMU_TRACE_VTD_GCMD     a global command handshake: command (the
 *                             GCMD value), status (GSTS after it)
 *   VIOMMU_TRACE_VTD_QI_DESC  a queued invalidation descriptor consumed:
 *                             head, type, q0, q1, error (0, or the IQE
 *                             code that stopped the queue)
 *   VIOMMU_TRACE_VTD_INVAL    an invalidation done: kind (0 context
 *                             cache, 1 IOTLB, 2 PASID cache), granularity,
 *                             did, sid, first, last
 *   VIOMMU_TRACE_VTD_FAULT    a translation fault: sid, pasid, address,
 *                             reason, outcome (0 recorded, 1 suppressed by
 *                             FPD, 2 lost: the record was full), index
 *                             (the fault record used)
 *
 * The link server (viommu_link_server_set_trace_sink(); "link" is the
 * link's ID, "cmd" the protocol's command number, see
 * viommu_link_cmd_name()):
 *
 *   VIOMMU_TRACE_LINK_MSG     a command received: link, cmd, id (the
 *                             message ID; 0 for mpqemu), size (payload
 *                             bytes), fds
 *   VIOMMU_TRACE_LINK_REPLY   a reply sent: link, cmd, id, size (payload
 *                             bytes), error (0 or the errno replied)
 *   VIOMMU_TRACE_LINK_DMA     a vfio-user DMA window added or removed,
 *                             or an mpqemu guest-RAM region set: link, op
 *                             (0 add, 1 remove, 2 remove all), address,
 *                             size, flags (vfio-user: the message's;
 *                             mpqemu: 1 if another link owns guest RAM
 *                             and the region was dropped), error (0 or a
 *                             positive errno)
 *   VIOMMU_TRACE_LINK_IRQ     an interrupt to the peer: link, kind (0
 *                             INTx, 1 MSI-X), vector, delivered
 *   VIOMMU_TRACE_LINK_END     a link ended: link, why (enum
 *                             viommu_link_end)
 *
 * A register frame served by polling (viommu-server's --smmuv3-frame,
 * --vtd-frame):
 *
 *   VIOMMU_TRACE_FRAME_WRITE  a changed register fed to the model:
 *                             offset, size, value, error
 *   VIOMMU_TRACE_FRAME_ROUND  a polling round that did something: fed
 *                             (registers), polled (model calls),
 *                             published (0 or 1)
 *
 * An object takes a sink with its own set_trace_sink call; the sink is
 * copied (its @size versions it).  Thread safety: set the sink from any
 * thread; events already being emitted may still reach the old sink's
 * function, so keep it valid until the object is destroyed or the next
 * set returns and a request has completed.
 */
#ifndef VIOMMU_TRACE_H
#define VIOMMU_TRACE_H

#include <viommu/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Trace events. */
enum viommu_trace_id {
	VIOMMU_TRACE_VI_REQUEST = 0,
	VIOMMU_TRACE_VI_FAULT = 1,
	VIOMMU_TRACE_SMMU_CMD = 2,
	VIOMMU_TRACE_SMMU_EVENT = 3,
	VIOMMU_TRACE_CORE_MAP = 4,
	VIOMMU_TRACE_CORE_UNMAP = 5,
	VIOMMU_TRACE_CORE_INVAL = 6,
	VIOMMU_TRACE_CORE_MISS = 7,
	VIOMMU_TRACE_CORE_FAULT = 8,
	VIOMMU_TRACE_CORE_ATTACH = 9,
	VIOMMU_TRACE_CORE_NOTIFY = 10,
	VIOMMU_TRACE_CORE_DIRTY = 11,
	VIOMMU_TRACE_VTD_REG_WRITE = 12,
	VIOMMU_TRACE_VTD_GCMD = 13,
	VIOMMU_TRACE_VTD_QI_DESC = 14,
	VIOMMU_TRACE_VTD_INVAL = 15,
	VIOMMU_TRACE_VTD_FAULT = 16,
	VIOMMU_TRACE_LINK_MSG = 17,
	VIOMMU_TRACE_LINK_REPLY = 18,
	VIOMMU_TRACE_LINK_DMA = 19,
	VIOMMU_TRACE_LINK_IRQ = 20,
	VIOMMU_TRACE_LINK_END = 21,
	VIOMMU_TRACE_FRAME_WRITE = 22,
	VIOMMU_TRACE_FRAME_ROUND = 23,
	VIOMMU_TRACE_COUNT = 24,
};

/** Most fields an event has. */
#define VIOMMU_TRACE_MAX_FIELDS 6

/** A mask with every event on. */
#define VIOMMU_TRACE_ALL ((1ull << VIOMMU_TRACE_COUNT) - 1)

/**
 * struct viommu_trace_record - one event as a sink receives it.
 * @id:      the event.
 * @event:   its name ("vi_request").
 * @nfields: fields used in @names and @values.
 * @names:   field names (static strings).
 * @values:  field values.
 */
struct viommu_trace_record {
	enum viommu_trace_id id;
	const char *event;
	unsigned int nfields;
	const char *names[VIOMMU_TRACE_MAX_FIELDS];
	uint64_t values[VIOMMU_TRACE_MAX_FIELDS];
};

/**
 * struct viommu_trace_sink - where an object's trace events go.
 * @size:   sizeof(struct viommu_trace_sink) as the caller knows it; 0
 *          means the first layout (these four fields).
 * @mask:   bit (1 << id) per event wanted; 0 turns tracing off.
 * @fn:     receives each record, on the thread that caused the event,
 *          possibly with the object's locks held: it must not call back
 *          into the object.  NULL: the event is formatted as one line,
 *          "trace: vi_request type=3 status=0 ...", and handed to the
 *          object's log callback at VIOMMU_LOG_DEBUG (if its level lets
 *          DEBUG through).
 * @opaque: passed to @fn.
 */
struct viommu_trace_sink {
	uint32_t size;
	uint64_t mask;
	void (*fn)(void *opaque, const struct viommu_trace_record *rec);
	void *opaque;
};

/**
 * viommu_trace_name() - the name of event @id ("vi_request"), or NULL for
 * an unknown ID.
 */
VIOMMU_EXPORT const char *viommu_trace_name(enum viommu_trace_id id);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_TRACE_H */
