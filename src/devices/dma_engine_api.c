/*
 * dma_engine_api.c - the public face of the DMA engine (<viommu/pci.h>):
 * a heap object around struct dma_engine, whose PCI function a link or the
 * embedder's bus serves, and its counters.
 */
#include <viommu/pci.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "devices/dma_engine.h"

#define NAME_LEN 32

struct viommu_dma_engine {
	struct dma_engine eng;
	struct viommu_allocator alloc;
	struct viommu_log log;
	char name[NAME_LEN];
};

int viommu_dma_engine_create(struct viommu_endpoint *ep, struct viommu_mem *mem,
			     const char *name, const struct viommu_log *log,
			     const struct viommu_allocator *alloc,
			     struct viommu_dma_engine **out)
{
	const struct viommu_allocator none = { 0 };
	struct viommu_dma_engine *e;
	int err;

	if (!ep || !mem || !out)
		return -EINVAL;
	e = xzalloc(alloc ? alloc : &none, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->alloc = alloc ? *alloc : none;
	if (log)
		e->log = *log;
	snprintf(e->name, sizeof(e->name), "%s", name ? name : "dma");
	err = dma_engine_init(&e->eng, ep, mem, e->name, &e->log, alloc);
	if (err) {
		xfree(&e->alloc, e);
		return err;
	}
	*out = e;
	return 0;
}

struct viommu_pci_func *viommu_dma_engine_func(struct viommu_dma_engine *e)
{
	return e ? (struct viommu_pci_func *)dma_engine_func(&e->eng) : NULL;
}

void viommu_dma_engine_destroy(struct viommu_dma_engine *e)
{
	struct viommu_allocator a;

	if (!e)
		return;
	a = e->alloc;
	dma_engine_destroy(&e->eng);
	xfree(&a, e);
}

int viommu_dma_engine_stats(struct viommu_dma_engine *e,
			    struct viommu_dma_engine_stats *out, size_t size)
{
	struct viommu_dma_engine_stats s = { 0 };
	struct dma_engine_stats d;
	int err;

	if (!e || !out || !size)
		return -EINVAL;
	err = dma_engine_stats(&e->eng, &d);
	if (err)
		return err;
	s.dmas = d.dmas;
	s.bytes_read = d.bytes_read;
	s.bytes_written = d.bytes_written;
	s.faults = d.faults;
	s.errors = d.errors;
	s.ring_doorbells = d.ring_doorbells;
	s.ring_entries = d.ring_entries;
	s.irqs = d.irqs;
	s.log_suppressed = d.log_suppressed;
	/* never write past what the caller has; what we lack reads as 0 */
	sized_out(out, size, &s, sizeof(s));
	return 0;
}
