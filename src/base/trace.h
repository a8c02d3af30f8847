/*
 * trace.h - the private side of typed trace points (<viommu/trace.h>).
 *
 * An object embeds a struct trace.  Each event has one inline emitter
 * below, with typed arguments; it costs a relaxed load and a branch when
 * the event is off, and calls trace_emit() (trace.c) when it is on, which
 * builds the record from the event table (trace.c) and hands it to the
 * sink's function or formats it for the log.
 *
 * Adding an event: an ID in <viommu/trace.h> (and its doc line there),
 * its name and field names in trace.c's table, an emitter here.
 */
#ifndef VIOMMU_BASE_TRACE_H
#define VIOMMU_BASE_TRACE_H

#include <viommu/trace.h>

#include "base/util.h"

/*
 * struct trace - an object's trace state.  @mask is read without a lock
 * by the emitters (relaxed: an event racing a set_trace_sink() may be
 * seen or missed); @fn/@opaque change only under the object's own lock
 * or before use, as its set_trace_sink documents.
 */
struct trace {
	uint64_t mask;
	void (*fn)(void *opaque, const struct viommu_trace_record *rec);
	void *opaque;
	const struct viommu_log *log;
};

/*
 * trace_set() - install @sink (NULL: off) for an object logging to @log.
 * Return: 0; -EINVAL (a @size with unknown non-zero bytes, or mask bits
 * of unknown events).
 */
int trace_set(struct trace *t, const struct viommu_log *log,
	      const struct viommu_trace_sink *sink);

/* trace_emit() - build and deliver one record (the event is on). */
void trace_emit(const struct trace *t, enum viommu_trace_id id,
		unsigned int n, const uint64_t *values);

static inline bool trace_on(const struct trace *t, enum viommu_trace_id id)
{
	return unlikely(READ_ONCE(t->mask) & (1ull << id));
}

static inline void trace_vi_request(const struct trace *t, uint8_t type,
				    uint8_t status, uint32_t domain,
				    uint32_t endpoint, uint64_t start,
				    uint64_t end)
{
	if (trace_on(t, VIOMMU_TRACE_VI_REQUEST)) {
		const uint64_t v[] = { type, status, domain, endpoint, start,
				       end };

		trace_emit(t, VIOMMU_TRACE_VI_REQUEST, 6, v);
	}
}

static inline void trace_vi_fault(const struct trace *t, uint8_t reason,
				  uint32_t flags, uint32_t endpoint,
				  uint64_t address)
{
	if (trace_on(t, VIOMMU_TRACE_VI_FAULT)) {
		const uint64_t v[] = { reason, flags, endpoint, address };

		trace_emit(t, VIOMMU_TRACE_VI_FAULT, 4, v);
	}
}

static inline void trace_smmu_cmd(const struct trace *t, uint8_t opcode,
				  uint8_t error, uint32_t index)
{
	if (trace_on(t, VIOMMU_TRACE_SMMU_CMD)) {
		const uint64_t v[] = { opcode, error, index };

		trace_emit(t, VIOMMU_TRACE_SMMU_CMD, 3, v);
	}
}

static inline void trace_smmu_event(const struct trace *t, uint8_t type,
				    uint32_t sid, uint32_t ssid,
				    uint64_t address, bool lost)
{
	if (trace_on(t, VIOMMU_TRACE_SMMU_EVENT)) {
		const uint64_t v[] = { type, sid, ssid, address, lost };

		trace_emit(t, VIOMMU_TRACE_SMMU_EVENT, 5, v);
	}
}

#endif /* VIOMMU_BASE_TRACE_H */
