/*
 * pci_api.c - the public face of the PCI layer (<viommu/pci.h>): the
 * virtio-pci transport as a heap object, and the calls that let an
 * embedder's own bus emulation serve any of our PCI functions
 * (configuration and BAR accesses, an interrupt sink) instead of a link.
 * The DMA engine's public face is in devices/dma_engine_api.c.  The public
 * struct viommu_pci_func is the private struct pci_func under its
 * exported name: a pointer to one is a pointer to the other.
 */
#include <viommu/pci.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "transport/virtio_pci.h"

#define NAME_LEN 32

struct viommu_virtio_pci {
	struct virtio_pci vp;
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

/* ------------------------------------------------------------------ */
/* The embedder's own bus: configuration, BARs, interrupt sink          */

/*
 * The embedder's sink lives in the function (ext_*); the trampolines
 * below, installed as intx_fn/msix_fn, are how it is told apart from a
 * link's sink (which is how -EBUSY is detected).  No allocation.
 */
static void sink_intx(void *opaque, bool level)
{
	struct pci_func *f = opaque;

	if (f->ext_intx)
		f->ext_intx(f->ext_opaque, level);
}

static void sink_msix(void *opaque, unsigned int vector, uint64_t addr,
		      uint32_t data)
{
	struct pci_func *f = opaque;

	if (f->ext_msix)
		f->ext_msix(f->ext_opaque, vector, addr, data);
}

/* struct viommu_pci_sink as the first release had it (size 0). */
#define SINK_SIZE_V1 (offsetof(struct viommu_pci_sink, opaque) + sizeof(void *))

int viommu_pci_func_attach(struct viommu_pci_func *pf,
			   const struct viommu_pci_sink *sink)
{
	struct pci_func *f = (struct pci_func *)pf;
	struct viommu_pci_sink s = { 0 };
	size_t n;

	if (!f || !sink)
		return -EINVAL;
	/* size 0 is the first version; never read past what the caller has */
	n = sink->size ? sink->size : SINK_SIZE_V1;
	memcpy(&s, sink, n < sizeof(s) ? n : sizeof(s));
	pthread_mutex_lock(&f->intx_lock);
	if (f->intx_fn || f->msix_fn) {
		pthread_mutex_unlock(&f->intx_lock);
		return -EBUSY;
	}
	f->ext_intx = s.intx;
	f->ext_msix = s.msix;
	f->ext_opaque = s.opaque;
	f->intx_fn = sink_intx;
	f->intx_opaque = f;
	f->msix_fn = sink_msix;
	f->msix_opaque = f;
	f->msix_peer_table = false;
	/* a level raised before anyone listened is not lost */
	if (f->intx_out)
		sink_intx(f, true);
	pthread_mutex_unlock(&f->intx_lock);
	return 0;
}

void viommu_pci_func_detach(struct viommu_pci_func *pf)
{
	struct pci_func *f = (struct pci_func *)pf;

	if (!f)
		return;
	/*
	 * Deliveries run holding intx_lock: once the sink is unhooked under
	 * it, no call into it is running or can start.
	 */
	pthread_mutex_lock(&f->intx_lock);
	if (f->intx_fn == sink_intx) {
		f->intx_fn = NULL;
		f->intx_opaque = NULL;
		f->msix_fn = NULL;
		f->msix_opaque = NULL;
		f->ext_intx = NULL;
		f->ext_msix = NULL;
		f->ext_opaque = NULL;
	}
	pthread_mutex_unlock(&f->intx_lock);
}

int viommu_pci_func_cfg_read(struct viommu_pci_func *pf, uint32_t off,
			     unsigned int len, uint32_t *val)
{
	struct pci_func *f = (struct pci_func *)pf;

	if (!val)
		return -EINVAL;
	*val = 0xffffffffu;
	if (!f || (len != 1 && len != 2 && len != 4) || (off & (len - 1)) ||
	    off > 0xfff)
		return -EINVAL;
	*val = pci_cfg_read(f, off, len);
	return 0;
}

int viommu_pci_func_cfg_write(struct viommu_pci_func *pf, uint32_t off,
			      unsigned int len, uint32_t val)
{
	struct pci_func *f = (struct pci_func *)pf;

	if (!f || (len != 1 && len != 2 && len != 4) || (off & (len - 1)) ||
	    off > 0xfff)
		return -EINVAL;
	pci_cfg_write(f, off, val, len);
	return 0;
}

int viommu_pci_func_bar_size(struct viommu_pci_func *pf, unsigned int bar,
			     uint64_t *size, bool *io)
{
	struct pci_func *f = (struct pci_func *)pf;

	if (!f || !size || bar >= PCI_NUM_BARS)
		return -EINVAL;
	*size = f->bars[bar].size;
	if (io)
		*io = f->bars[bar].io;
	return f->bars[bar].size ? 0 : -ENOENT;
}

int viommu_pci_func_bar_read(struct viommu_pci_func *pf, unsigned int bar,
			     uint64_t off, unsigned int size, uint64_t *val)
{
	if (!pf || !val)
		return -EINVAL;
	return pci_bar_rw((struct pci_func *)pf, bar, off, false, val, size);
}

int viommu_pci_func_bar_write(struct viommu_pci_func *pf, unsigned int bar,
			      uint64_t off, unsigned int size, uint64_t val)
{
	if (!pf)
		return -EINVAL;
	return pci_bar_rw((struct pci_func *)pf, bar, off, true, &val, size);
}

void viommu_pci_func_reset(struct viommu_pci_func *pf)
{
	if (pf)
		pci_func_reset((struct pci_func *)pf);
}
