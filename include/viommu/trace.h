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
	VIOMMU_TRACE_COUNT = 4,
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
