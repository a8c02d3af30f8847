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
	t->fn = s.fn;
	t->opaque = s.opaque;
	t->log = log;
	STORE_RELEASE(t->mask, s.mask);
	return 0;
}

void trace_emit(const struct trace *t, enum viommu_trace_id id,
		unsigned int n, const uint64_t *values)
{
	struct viommu_trace_record r = { .id = id };
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
	if (t->fn) {
		t->fn(t->opaque, &r);
		return;
	}
	if (!t->log || !t->log->fn || t->log->level < VIOMMU_LOG_DEBUG)
		return;
	off = (size_t)snprintf(line, sizeof(line), "trace: %s", r.event);
	for (unsigned int i = 0; i < r.nfields && off < sizeof(line); i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off,
					" %s=%#" PRIx64, r.names[i],
					r.values[i]);
	t->log->fn(t->log->opaque, VIOMMU_LOG_DEBUG, line);
}
