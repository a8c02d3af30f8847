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
 * Both give a struct viommu_pci_func, which a link serves, or the
 * embedder's own bus emulation through viommu_pci_func_attach() and the
 * configuration and BAR calls below.  Thread
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

/* ------------------------------------------------------------------ */
/* Serving a function from the embedder's own bus emulation             */

/**
 * struct viommu_pci_sink - where a function's interrupts go when the
 * embedder serves it itself (no link).
 * @size:  sizeof(struct viommu_pci_sink) as the caller knows it; 0 means
 *         the first version (these three fields).  Fields past @size read
 *         as zero, so the struct can grow without breaking built callers.
 * @intx:  INTx pin A changed level (may be NULL).  Never asserted while
 *         MSI-X is enabled or COMMAND.INTX_DISABLE is set.
 * @msix:  an unmasked MSI-X vector fired: write @data to @addr in the
 *         guest's interrupt controller (may be NULL: the signal is
 *         then lost, as with no interrupt controller).
 * @opaque: passed to both.
 *
 * Both run on the thread that caused the interrupt (a BAR write, a
 * device's worker, a translation fault) with an internal lock held: they
 * must not call back into the same function's configuration, BAR or sink
 * calls.  They may take the embedder's own locks and inject the interrupt.
 */
struct viommu_pci_sink {
	uint32_t size;
	void (*intx)(void *opaque, bool level);
	void (*msix)(void *opaque, unsigned int vector, uint64_t addr,
		     uint32_t data);
	void *opaque;
};

/**
 * viommu_pci_func_attach() - become @f's interrupt sink: the embedder's
 * bus emulation then serves @f with the calls below instead of a link.
 * The current INTx level is delivered through @sink->intx before return
 * when it is high.  The MSI-X table is this function's own (the guest's
 * table writes must reach viommu_pci_func_bar_write()).
 * Return: 0; -EINVAL (NULL @f or @sink); -EBUSY (a link or another sink
 * serves @f).
 * Thread safety: any thread; concurrent with interrupts (they go to the
 * old or the new sink, never to a freed one once this returns).
 */
VIOMMU_EXPORT int viommu_pci_func_attach(struct viommu_pci_func *f,
					 const struct viommu_pci_sink *sink);

/**
 * viommu_pci_func_detach() - stop delivering to the sink attached with
 * viommu_pci_func_attach(); after return no sink call is running or will
 * start.  NULL or an unattached @f is accepted.
 */
VIOMMU_EXPORT void viommu_pci_func_detach(struct viommu_pci_func *f);

/**
 * viommu_pci_func_cfg_read() - a guest configuration-space read of @len
 * (1, 2 or 4) bytes at @off, naturally aligned.  Offsets 0x100 and above
 * (extended space) read zero.  BAR registers show sizing semantics.
 * Return: 0 and *@val; -EINVAL (NULL args, bad @len or alignment: *@val
 * is then all ones, as a bus error reads).  Any thread.
 */
VIOMMU_EXPORT int viommu_pci_func_cfg_read(struct viommu_pci_func *f,
					   uint32_t off, unsigned int len,
					   uint32_t *val);

/**
 * viommu_pci_func_cfg_write() - a guest configuration-space write (write
 * masks apply: read-only bits keep their value, as on hardware).
 * Return: 0; -EINVAL (NULL @f, bad @len or alignment; nothing written).
 * Any thread.
 */
VIOMMU_EXPORT int viommu_pci_func_cfg_write(struct viommu_pci_func *f,
					    uint32_t off, unsigned int len,
					    uint32_t val);

/**
 * viommu_pci_func_bar_size() - size in bytes of BAR @bar (0..5) and
 * whether it is an I/O BAR.  The embedder's bus uses it to decode the
 * address the guest programmed in the BAR register.
 * Return: 0; -EINVAL (NULL @f or @size, @bar > 5); -ENOENT (no such BAR).
 */
VIOMMU_EXPORT int viommu_pci_func_bar_size(struct viommu_pci_func *f,
					   unsigned int bar, uint64_t *size,
					   bool *io);

/**
 * viommu_pci_func_bar_read() / viommu_pci_func_bar_write() - a guest
 * access of @size (1, 2, 4 or 8) bytes at offset @off of BAR @bar.  The
 * bus decides that the access hits the BAR (decoding enabled in COMMAND,
 * address inside the programmed window) and passes the offset.
 * Return: 0; -ENOENT (no BAR @bar: reads give all ones); -EINVAL (NULL
 * args, bad @bar or @size, or the access leaves the BAR).
 * Any thread; device side effects (a queue notification, a DMA) run in
 * the calling thread before return.
 */
VIOMMU_EXPORT int viommu_pci_func_bar_read(struct viommu_pci_func *f,
					   unsigned int bar, uint64_t off,
					   unsigned int size, uint64_t *val);
VIOMMU_EXPORT int viommu_pci_func_bar_write(struct viommu_pci_func *f,
					    unsigned int bar, uint64_t off,
					    unsigned int size, uint64_t val);

/**
 * viommu_pci_func_reset() - a PCI reset of the function (FLR or bus
 * reset): registers to power-on values and the device model reset.
 * Not concurrent with accesses to @f.  NULL is accepted.
 */
VIOMMU_EXPORT void viommu_pci_func_reset(struct viommu_pci_func *f);

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
 * struct viommu_dma_engine_stats - the engine's counters since creation.
 * @dmas:          register-mode transfers started.
 * @bytes_read, @bytes_written: payload bytes through the IOMMU.
 * @faults:        transfers stopped by a translation fault.
 * @errors:        bad ranges, DMA without bus mastering, bad ring entries.
 * @ring_doorbells, @ring_entries: ring tail writes, entries processed.
 * @irqs:          interrupts raised.
 * @log_suppressed: guest-triggered log lines the rate limit dropped.
 */
struct viommu_dma_engine_stats {
	uint64_t dmas;
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t faults;
	uint64_t errors;
	uint64_t ring_doorbells;
	uint64_t ring_entries;
	uint64_t irqs;
	uint64_t log_suppressed;
};

/**
 * viommu_dma_engine_stats() - copy the first @size bytes of the counters
 * (sizeof(struct viommu_dma_engine_stats) as the caller knows it: a caller
 * built against an older, shorter struct gets the fields it knows and
 * nothing past them is written; a newer one reads zero in the counters
 * this library lacks).
 * Return: 0; -EINVAL (NULL @e or @out, @size 0).  Any thread.
 */
VIOMMU_EXPORT int viommu_dma_engine_stats(struct viommu_dma_engine *e,
					  struct viommu_dma_engine_stats *out,
					  size_t size);

/**
 * viommu_dma_engine_destroy() - release the engine; NULL is accepted.
 * Destroy the link serving it first.
 */
VIOMMU_EXPORT void viommu_dma_engine_destroy(struct viommu_dma_engine *e);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_PCI_PUBLIC_H */
