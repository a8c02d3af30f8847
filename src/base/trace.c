/*
 * trace.c - the event table and the slow path of typed trace points
 * (base/trace.h): building a record and delivering it to the sink's
 * function, or formatting it as one DEBUG line for the object's log.
 */
#include "base/trace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

static const struct {
	const char *name;
	unsigned int nfields;
	const char *fields[VIOMMU_TRACE_MAX_FIELDS];
} events[VIOMMU_TRACE_COUNT] = {
	[VIOMMU_TRACE_VI_REQUEST] = { "vi_request", 6,
		{ "type", "status", "domain", "endpoint", "start", "end" } },
	[VIOMMU_TRACE_VI_FAULT] = { "vi_fault", 4,
		{ "reason", "flags", "endpoint", "address" } },
	[VIOMMU_TRACE_SMMU_CMD] = { "smmu_cmd", 3,
		{ "opcode", "error", "index" } },
	[VIOMMU_TRACE_SMMU_EVENT] = { "smmu_event", 5,
		{ "type", "sid", "ssid", "address", "lost" } },
	[VIOMMU_TRACE_CORE_MAP] = { "core_map", 6,
		{ "domain", "iova", "last", "gpa", "prot", "error" } },
	[VIOMMU_TRACE_CORE_UNMAP] = { "core_unmap", 5,
		{ "domain", "iova", "last", "bytes", "error" } },
	[VIOMMU_TRACE_CORE_INVAL] = { "core_inval", 3,
		{ "domain", "iova", "last" } },
	[VIOMMU_TRACE_CORE_MISS] = { "core_miss", 4,
		{ "endpoint", "pasid", "iova", "access" } },
	[VIOMMU_TRACE_CORE_FAULT] = { "core_fault", 6,
		{ "reason", "access", "endpoint", "pasid", "address",
		  "delivered" } },
	[VIOMMU_TRACE_CORE_ATTACH] = { "core_attach", 4,
		{ "endpoint", "pasid", "domain", "attached" } },
	[VIOMMU_TRACE_CORE_NOTIFY] = { "core_notify", 5,
		{ "domain", "type", "iova", "last", "called" } },
	[VIOMMU_TRACE_CORE_DIRTY] = { "core_dirty", 5,
		{ "domain", "op", "iova", "last", "error" } },
	[VIOMMU_TRACE_VTD_REG_WRITE] = { "vtd_reg_write", 3,
		{ "offset", "size", "value" } },
	[VIOMMU_TRACE_VTD_GCMD] = { "vtd_gcmd", 2,
		{ "command", "status" } },
	[VIOMMU_TRACE_VTD_QI_DESC] = { "vtd_qi_desc", 5,
		{ "head", "type", "q0", "q1", "error" } },
	[VIOMMU_TRACE_VTD_INVAL] = { "vtd_inval", 6,
		{ "kind", "granularity", "did", "sid", "first", "last" } },
	[VIOMMU_TRACE_VTD_FAULT] = { "vtd_fault", 6,
		{ "sid", "pasid", "address", "reason", "outcome", "index" } },
	[VIOMMU_TRACE_LINK_MSG] = { "link_msg", 5,
		{ "link", "cmd", "id", "size", "fds" } },
	[VIOMMU_TRACE_LINK_REPLY] = { "link_reply", 5,
		{ "link", "cmd", "id", "size", "error" } },
	[VIOMMU_TRACE_LINK_DMA] = { "link_dma", 6,
		{ "link", "op", "address", "size", "flags", "error" } },
	[VIOMMU_TRACE_LINK_IRQ] = { "link_irq", 4,
		{ "link", "kind", "vector", "delivered" } },
	[VIOMMU_TRACE_LINK_END] = { "link_end", 2,
		{ "link", "why" } },
	[VIOMMU_TRACE_FRAME_WRITE] = { "frame_write", 4,
		{ "offset", "size", "value", "error" } },
	[VIOMMU_TRACE_FRAME_ROUND] = { "frame_round", 3,
		{ "fed", "polled", "published" } },
};

const char *viommu_trace_name(enum viommu_trace_id id)
{
	return (unsigned int)id < VIOMMU_TRACE_COUNT ? events[id].name : NULL;
}

/* The first layout of struct viommu_trace_sink (what a @size of 0 means). */
#define SINK_SIZE_V1 \
	(offsetof(struct viommu_trace_sink, opaque) + sizeof(void *))

int trace_set(struct trace *t, const struct viommu_log *log,
	      const struct viommu_trace_sink *sink)
{
	struct viommu_trace_sink s = { 0 };
	size_t n;

	if (sink) {
		n = sink->size ? sink->size : SINK_SIZE_V1;
		for (size_t i = sizeof(s); i < n; i++)
			if (((const uint8_t *)sink)[i])
				return -EINVAL;
		memcpy(&s, sink, MIN(n, sizeof(s)));
		if (s.mask & ~VIOMMU_TRACE_ALL)
			return -EINVAL;
	}
	/* off first, so no emitter sees the new mask with the old function */
	WRITE_ONCE(t->mask, 0);
	/*
	 * Sequence count: odd while the set changes.  The fence after the
	 * odd store keeps the field stores after it (a reader that saw a
	 * new field also sees the odd count or a later one); the release
	 * store of the even count keeps them before it.
	 */
	WRITE_ONCE(t->seq, t->seq + 1);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	WRITE_ONCE(t->fn, s.fn);
	WRITE_ONCE(t->opaque, s.opaque);
	WRITE_ONCE(t->log, log);
	STORE_RELEASE(t->seq, t->seq + 1);
	STORE_RELEASE(t->mask, s.mask);
	return 0;
}

/*
 * snapshot() - one consistent (@fn, @opaque, @log) set of @t, read under
 * its sequence count.  Return: false if a change kept it busy through
 * every retry (the caller drops the event: bounded work, never a mix).
 */
static bool snapshot(const struct trace *t,
		     void (**fn)(void *, const struct viommu_trace_record *),
		     void **opaque, const struct viommu_log **log)
{
	for (int tries = 0; tries < 64; tries++) {
		uint32_t s0 = LOAD_ACQUIRE(t->seq);

		if (s0 & 1)
			continue;
		*fn = READ_ONCE(t->fn);
		*opaque = READ_ONCE(t->opaque);
		*log = READ_ONCE(t->log);
		/* the field loads complete before the count is read again */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (READ_ONCE(t->seq) == s0)
			return true;
	}
	return false;
}

void trace_emit(const struct trace *t, enum viommu_trace_id id,
		unsigned int n, const uint64_t *values)
{
	struct viommu_trace_record r = { .id = id };
	void (*fn)(void *, const struct viommu_trace_record *);
	const struct viommu_log *log;
	void *opaque;
	char line[256];
	size_t off;

	if ((unsigned int)id >= VIOMMU_TRACE_COUNT)
		return;
	r.event = events[id].name;
	r.nfields = MIN(n, events[id].nfields);
	for (unsigned int i = 0; i < r.nfields; i++) {
		r.names[i] = events[id].fields[i];
		r.values[i] = values[i];
	}
	if (!snapshot(t, &fn, &opaque, &log))
		return;
	if (fn) {
		fn(opaque, &r);
		return;
	}
	if (!log || !log->fn || log->level < VIOMMU_LOG_DEBUG)
		return;
	off = (size_t)snprintf(line, sizeof(line), "trace: %s", r.event);
	for (unsigned int i = 0; i < r.nfields && off < sizeof(line); i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off,
					" %s=%#" PRIx64, r.names[i],
					r.values[i]);
	log->fn(log->opaque, VIOMMU_LOG_DEBUG, line);
}
