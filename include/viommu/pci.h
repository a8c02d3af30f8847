/*
 * pci.h - the emulated PCI functions viommu ships, for a VMM that serves
 * them to its guest itself (through a link, <viommu/link.h>, or its own
 * bus emulation).
 *
 *   - the virtio-pci modern transport (VIRTIO 1.3 §4.1) around any
 *     viommu virtio device (the virtio-iommu of <viommu/virtio_iommu.h>):
 *     BAR0 holds the common, ISR, device and notification windows; BAR1
 *     the MSI-X table and PBA (a vector per queue, then one for
 *     configuration changes); INTx pin A when MSI-X is off;
 *   - the DMA engine: a PCI endpoint (QEMU edu's register subset plus a
 *     descriptor ring, docs/REAL-GUEST.md) whose every guest-memory access
 *     is translated by the core with its endpoint's requester ID.
 *
 * Both give a struct viommu_pci_func, which a link serves.  Thread
 * safety: create and destroy must not race any use of the same object;
 * the functions themselves take concurrent accesses from several links
 * or vCPU threads.
 */
#ifndef VIOMMU_PCI_PUBLIC_H
#define VIOMMU_PCI_PUBLIC_H

#include <viommu/common.h>
#include <viommu/core.h>
#include <viommu/mem.h>
#include <viommu/virtio.h>
#include <viommu/link.h>

#ifdef __cplusplus
extern "C" {
#endif

struct viommu_virtio_pci;
struct viommu_dma_engine;

/**
 * viommu_virtio_pci_create() - wrap virtio device @dev in a virtio-pci
 * function named @name (copied; for log lines).  @log may be NULL (no
 * logging); @alloc NULL for malloc.  @dev must outlive the function and
 * must be reset only through it.
 * Return: 0; -EINVAL (NULL @dev or @out, a device ID above 0x3f, more
 * queues than the transport holds); -ENOMEM.
 */
VIOMMU_EXPORT int
viommu_virtio_pci_create(struct viommu_virtio_dev *dev, const char *name,
			 const struct viommu_log *log,
			 const struct viommu_allocator *alloc,
			 struct viommu_virtio_pci **out);

/** viommu_virtio_pci_func() - the PCI function (never NULL for a valid @vp). */
VIOMMU_EXPORT struct viommu_pci_func *
viommu_virtio_pci_func(struct viommu_virtio_pci *vp);

/**
 * viommu_virtio_pci_destroy() - release the function; NULL is accepted.
 * Destroy the link serving it first.
 */
VIOMMU_EXPORT void viommu_virtio_pci_destroy(struct viommu_virtio_pci *vp);

/**
 * viommu_dma_engine_create() - a DMA engine doing DMA to @mem through
 * endpoint @ep (whose ID is the function's requester ID).  @name copied.
 * Return: 0; -EINVAL (NULL @ep, @mem or @out); -ENOMEM.
 */
VIOMMU_EXPORT int
viommu_dma_engine_create(struct viommu_endpoint *ep, struct viommu_mem *mem,
			 const char *name, const struct viommu_log *log,
			 const struct viommu_allocator *alloc,
			 struct viommu_dma_engine **out);

/** viommu_dma_engine_func() - the engine's PCI function. */
VIOMMU_EXPORT struct viommu_pci_func *
viommu_dma_engine_func(struct viommu_dma_engine *e);

/**
 * viommu_dma_engine_destroy() - release the engine; NULL is accepted.
 * Destroy the link serving it first.
 */
VIOMMU_EXPORT void viommu_dma_engine_destroy(struct viommu_dma_engine *e);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_PCI_PUBLIC_H */
