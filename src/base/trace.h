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
 * seen or missed).  @fn, @opaque and @log change only in trace_set(),
 * under the object's own lock or before use, and are published as one
 * set under the sequence count @seq (odd while a change is under way):
 * an emitter racing a change delivers to the old set or the new one,
 * never to a mix, or drops the event if the change does not finish
 * within a bounded number of retries.
 */
struct trace {
	uint64_t mask;
	uint32_t seq;
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

static inline void trace_core_map(const struct trace *t, uint64_t domain,
				  uint64_t iova, uint64_t last, uint64_t gpa,
				  uint32_t prot, int error)
{
	if (trace_on(t, VIOMMU_TRACE_CORE_MAP)) {
		const uint64_t v[] = { domain, iova, last, gpa, prot,
				       (uint64_t)(int64_t)error };

		trace_emit(t, VIOMMU_TRACE_CORE_MAP, 6, v);
	}
}

static inline void trace_core_unmap(const struct trace *t, uint64_t domain,
				    uint64_t iova, uint64_t last,
				    uint64_t bytes, int error)
{
	if (trace_on(t, VIOMMU_TRACE_CORE_UNMAP)) {
		const uint64_t v[] = { domain, iova, last, bytes,
				       (uint64_t)(int64_t)error };

		trace_emit(t, VIOMMU_TRACE_CORE_UNMAP, 5, v);
	}
}

static inline void trace_core_inval(const struct trace *t, uint64_t domain,
				    uint64_t iova, uint64_t last)
{
	if (trace_on(t, VIOMMU_TRACE_CORE_INVAL)) {
		const uint64_t v[] = { domain, iova, last };

		trace_emit(t, VIOMMU_TRACE_CORE_INVAL, 3, v);
	}
}

static inline void trace_core_miss(const struct trace *t, uint32_t endpoint,
				   uint32_t pasid, uint64_t iova,
				   unsigned int access)
{
	if (trace_on(t, VIOMMU_TRACE_CORE_MISS)) {
		const uint64_t v[] = { endpoint, pasid, iova, access };

		trace_emit(t, VIOMMU_TRACE_CORE_MISS, 4, v);
	}
}

static inline void trace_core_fault(const struct trace *t, uint32_t reason,
				    unsigned int access, uint32_t endpoint,
				    uint32_t pasid, uint64_t address,
				    bool delivered)
{
	if (trace_on(t, VIOMMU_TRACE_CORE_FAULT)) {
		const uint64_t v[] = { reason, access, endpoint, pasid, address,
				       delivered };

		trace_emit(t, VIOMMU_TRACE_CORE_FAULT, 6, v);
	}
}

static inline void trace_core_attach(const struct trace *t, uint32_t endpoint,
				     uint32_t pasid, uint64_t domain,
				     bool attached)
{
	if (trace_on(t, VIOMMU_TRACE_CORE_ATTACH)) {
		const uint64_t v[] = { endpoint, pasid, domain, attached };

		trace_emit(t, VIOMMU_TRACE_CORE_ATTACH, 4, v);
	}
}

static inline void trace_core_notify(const struct trace *t, uint64_t domain,
				     uint32_t type, uint64_t iova,
				     uint64_t last, uint32_t called)
{
	if (trace_on(t, VIOMMU_TRACE_CORE_NOTIFY)) {
		const uint64_t v[] = { domain, type, iova, last, called };

		trace_emit(t, VIOMMU_TRACE_CORE_NOTIFY, 5, v);
	}
}

static inline void trace_core_dirty(const struct trace *t, uint64_t domain,
				    uint8_t op, uint64_t iova, uint64_t last,
				    int error)
{
	if (trace_on(t, VIOMMU_TRACE_CORE_DIRTY)) {
		const uint64_t v[] = { domain, op, iova, last,
				       (uint64_t)(int64_t)error };

		trace_emit(t, VIOMMU_TRACE_CORE_DIRTY, 5, v);
	}
}

static inline void trace_vtd_reg_write(const struct trace *t, uint64_t offset,
				       unsigned int size, uint64_t value)
{
	if (trace_on(t, VIOMMU_TRACE_VTD_REG_WRITE)) {
		const uint64_t v[] = { offset, size, value };

		trace_emit(t, VIOMMU_TRACE_VTD_REG_WRITE, 3, v);
	}
}

static inline void trace_vtd_gcmd(const struct trace *t, uint32_t command,
				  uint32_t status)
{
	if (trace_on(t, VIOMMU_TRACE_VTD_GCMD)) {
		const uint64_t v[] = { command, status };

		trace_emit(t, VIOMMU_TRACE_VTD_GCMD, 2, v);
	}
}

static inline void trace_vtd_qi_desc(const struct trace *t, uint64_t head,
				     unsigned int type, uint64_t q0,
				     uint64_t q1, int error)
{
	if (trace_on(t, VIOMMU_TRACE_VTD_QI_DESC)) {
		const uint64_t v[] = { head, type, q0, q1,
				       (uint64_t)(int64_t)error };

		trace_emit(t, VIOMMU_TRACE_VTD_QI_DESC, 5, v);
	}
}

static inline void trace_vtd_inval(const struct trace *t, uint8_t kind,
				   unsigned int granularity, uint16_t did,
				   uint16_t sid, uint64_t first, uint64_t last)
{
	if (trace_on(t, VIOMMU_TRACE_VTD_INVAL)) {
		const uint64_t v[] = { kind, granularity, did, sid, first,
				       last };

		trace_emit(t, VIOMMU_TRACE_VTD_INVAL, 6, v);
	}
}

static inline void trace_vtd_fault(const struct trace *t, uint16_t sid,
				   uint32_t pasid, uint64_t address,
				   uint8_t reason, uint8_t outcome,
				   uint32_t index)
{
	if (trace_on(t, VIOMMU_TRACE_VTD_FAULT)) {
		const uint64_t v[] = { sid, pasid, address, reason, outcome,
				       index };

		trace_emit(t, VIOMMU_TRACE_VTD_FAULT, 6, v);
	}
}

static inline void trace_link_msg(const struct trace *t, unsigned int link,
				  unsigned int cmd, uint32_t id, uint64_t size,
				  unsigned int fds)
{
	if (trace_on(t, VIOMMU_TRACE_LINK_MSG)) {
		const uint64_t v[] = { link, cmd, id, size, fds };

		trace_emit(t, VIOMMU_TRACE_LINK_MSG, 5, v);
	}
}

static inline void trace_link_reply(const struct trace *t, unsigned int link,
				    unsigned int cmd, uint32_t id,
				    uint64_t size, int error)
{
	if (trace_on(t, VIOMMU_TRACE_LINK_REPLY)) {
		const uint64_t v[] = { link, cmd, id, size,
				       (uint64_t)(int64_t)error };

		trace_emit(t, VIOMMU_TRACE_LINK_REPLY, 5, v);
	}
}

static inline void trace_link_dma(const struct trace *t, unsigned int link,
				  uint8_t op, uint64_t address, uint64_t size,
				  uint32_t flags, int error)
{
	if (trace_on(t, VIOMMU_TRACE_LINK_DMA)) {
		const uint64_t v[] = { link, op, address, size, flags,
				       (uint64_t)(int64_t)error };

		trace_emit(t, VIOMMU_TRACE_LINK_DMA, 6, v);
	}
}

static inline void trace_link_irq(const struct trace *t, unsigned int link,
				  uint8_t kind, unsigned int vector,
				  bool delivered)
{
	if (trace_on(t, VIOMMU_TRACE_LINK_IRQ)) {
		const uint64_t v[] = { link, kind, vector, delivered };

		trace_emit(t, VIOMMU_TRACE_LINK_IRQ, 4, v);
	}
}

static inline void trace_link_end(const struct trace *t, unsigned int link,
				  int why)
{
	if (trace_on(t, VIOMMU_TRACE_LINK_END)) {
		const uint64_t v[] = { link, (uint64_t)(int64_t)why };

		trace_emit(t, VIOMMU_TRACE_LINK_END, 2, v);
	}
}

static inline void trace_frame_write(const struct trace *t, uint32_t offset,
				     unsigned int size, uint64_t value,
				     int error)
{
	if (trace_on(t, VIOMMU_TRACE_FRAME_WRITE)) {
		const uint64_t v[] = { offset, size, value,
				       (uint64_t)(int64_t)error };

		trace_emit(t, VIOMMU_TRACE_FRAME_WRITE, 4, v);
	}
}

static inline void trace_frame_round(const struct trace *t, unsigned int fed,
				     unsigned int polled, bool published)
{
	if (trace_on(t, VIOMMU_TRACE_FRAME_ROUND)) {
		const uint64_t v[] = { fed, polled, published };

		trace_emit(t, VIOMMU_TRACE_FRAME_ROUND, 3, v);
	}
}

#endif /* VIOMMU_BASE_TRACE_H */
