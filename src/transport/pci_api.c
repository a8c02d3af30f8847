/*
 * pci_api.c - the public face of the shipped PCI functions
 * (<viommu/pci.h>): heap objects around the virtio-pci transport and the
 * DMA engine, whose PCI function is what a link serves.  The public
 * struct viommu_pci_func is the private struct pci_func under its
 * exported name: a pointer to one is a pointer to the other.
 */
#include <viommu/pci.h>
#include <errno.h>
#include <stdio.h>

#include "core/util.h"
#include "devices/dma_engine.h"
#include "transport/virtio_pci.h"

#define NAME_LEN 32

struct viommu_virtio_pci {
	struct virtio_pci vp;
	struct viommu_allocator alloc;
	struct viommu_log log;
	char name[NAME_LEN];
};

struct viommu_dma_engine {
	struct dma_engine eng;
	struct viommu_allocator alloc;
	struct viommu_log log;
	char name[NAME_LEN];
};

int viommu_virtio_pci_create(struct viommu_virtio_dev *dev, const char *name,
			     const struct viommu_log *log,
			     const struct viommu_allocator *alloc,
			     struct viommu_virtio_pci **out)
{
	const struct viommu_allocator none = { 0 };
	struct viommu_virtio_pci *p;
	int err;

	if (!dev || !out)
		return -EINVAL;
	p = xzalloc(alloc ? alloc : &none, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->alloc = alloc ? *alloc : none;
	if (log)
		p->log = *log;
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "virtio");
	err = virtio_pci_init(&p->vp, dev, p->name, &p->log);
	if (err) {
		xfree(&p->alloc, p);
		return err;
	}
	*out = p;
	return 0;
}

struct viommu_pci_func *viommu_virtio_pci_func(struct viommu_virtio_pci *vp)
{
	return vp ? (struct viommu_pci_func *)virtio_pci_func(&vp->vp) : NULL;
}

void viommu_virtio_pci_destroy(struct viommu_virtio_pci *vp)
{
	struct viommu_allocator a;

	if (!vp)
		return;
	a = vp->alloc;
	virtio_pci_destroy(&vp->vp);
	xfree(&a, vp);
}

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
