/*
 * refdrv.h - the reference VT-d driver: an in-process guest driver for the
 * VT-d model, for tests and benchmarks (the viommu-refdrv static library,
 * not the shared library).
 *
 * It plays the guest kernel.  It reaches the unit only through MMIO
 * (viommu_vtd_mmio_read/write) and the structures it builds in a chunk of
 * guest RAM it owns (host pointer plus GPA, inside the struct viommu_mem
 * the model reads).  It follows what the Linux intel-iommu driver does,
 * in its own code:
 *
 *  - probe: VER, CAP and ECAP; needs ECAP.QI, SAGAW 48-bit (4-level) and
 *    in scalable mode ECAP.SMTS and SLTS.  -ENODEV otherwise;
 *  - enable: translation off if it was on, IQA (DW in scalable mode) and
 *    IQT = 0, GCMD.QIE; RTADDR (TTM 1 in scalable mode), GCMD.SRTP;
 *    global context-cache and IOTLB invalidation + wait; FECTL and IECTL
 *    unmasked; GCMD.TE.  Every command is followed by polling GSTS;
 *  - the queue: descriptors written at the tail, one IQT write per
 *    submission, an invalidation wait with a status write last; the
 *    driver polls the status word (bounded).  An invalidation queue error
 *    is handled the way Linux's qi_check_fault() does (the bad slot is
 *    rewritten as a wait, FSTS.IQE cleared) and the call answers -EIO;
 *  - domains: a domain ID and a 4-level second-level table (the vtdpt
 *    builder), attached to a device (source-id) with a legacy context
 *    entry or, in scalable mode, a context entry + PASID directory + a
 *    RID_PASID entry (PGTT second level), followed by a device-selective
 *    context-cache invalidation (and PASID-cache in scalable mode);
 *  - map/unmap with the invalidation policy of the domain: STRICT (every
 *    unmap: page-selective IOTLB invalidation + wait, AM covering the
 *    range), DEFERRED (unmapped ranges go to a flush queue of
 *    VTDDRV_FQ_SIZE entries; when it fills, one domain-selective
 *    invalidation + wait flushes them all, like Linux's iova flush
 *    queue), and with CAP.CM every map is followed by a page-selective
 *    invalidation + wait too (caching mode).
 *
 * Bookkeeping is bounded by the chunk (bump allocation of 4 KiB pages;
 * tables are not freed).  Not thread-safe: one thread drives a driver.
 */
#ifndef VIOMMU_VTD_REFDRV_H
#define VIOMMU_VTD_REFDRV_H

#include <viommu/mem.h>
#include <viommu/vtd.h>
#include "pgtable/vtdpt.h"

struct vtddrv;
struct vtddrv_domain;

#define VTDDRV_FQ_SIZE 256u      /* deferred unmaps before a flush */
#define VTDDRV_POLL_MAX 1000000u /* polls before -ETIMEDOUT */

enum vtddrv_policy {
	VTDDRV_STRICT = 0,
	VTDDRV_DEFERRED = 1,
};

/**
 * struct vtddrv_config - what the driver drives and owns.
 * @vtd, @mem: the model and the guest memory it reads.
 * @chunk, @chunk_gpa, @chunk_size: guest RAM the driver owns (host
 *          pointer and GPA; 4 KiB aligned; at least 64 KiB).
 * @scalable: use scalable mode (needs ECAP.SMTS).
 * @mmio_read, @mmio_write, @mmio_opaque: optional hook in front of the
 *          model's MMIO (e.g. a register frame in guest RAM served by
 *          polling); NULL: viommu_vtd_mmio_read/write.
 */
struct vtddrv_config {
	struct viommu_vtd *vtd;
	struct viommu_mem *mem;
	uint8_t *chunk;
	uint64_t chunk_gpa, chunk_size;
	bool scalable;
	uint64_t (*mmio_read)(void *opaque, uint64_t off, unsigned int size);
	void (*mmio_write)(void *opaque, uint64_t off, unsigned int size,
			   uint64_t val);
	void *mmio_opaque;
};

/**
 * vtddrv_create() - probe and enable the unit.
 * Return: 0; -EINVAL (bad config); -ENODEV (probe); -ENOMEM (chunk);
 * -ETIMEDOUT (a handshake or wait never completed); -EIO (queue error).
 */
int vtddrv_create(const struct vtddrv_config *cfg, struct vtddrv **out);

/** vtddrv_destroy() - translation off, free the driver.  NULL is fine. */
void vtddrv_destroy(struct vtddrv *d);

/**
 * vtddrv_domain_create() - domain @did (1..65535) with @policy.
 * Return: 0; -EINVAL; -ENOMEM.
 */
int vtddrv_domain_create(struct vtddrv *d, uint16_t did,
			 enum vtddrv_policy policy,
			 struct vtddrv_domain **out);

/**
 * vtddrv_attach() - put device @sid in @dom (context entry and caches).
 * Return: 0; -EINVAL; -ENOMEM; -EIO; -ETIMEDOUT.
 */
int vtddrv_attach(struct vtddrv *d, struct vtddrv_domain *dom, uint16_t sid);

/**
 * vtddrv_map() - map [@iova, +@size) to @pa with @prot (VIOMMU_READ and
 * or VIOMMU_WRITE); with caching mode also invalidate it.
 * Return: 0; vtdpt_map()'s errnos; -EIO; -ETIMEDOUT.
 */
int vtddrv_map(struct vtddrv *d, struct vtddrv_domain *dom, uint64_t iova,
	       uint64_t pa, uint64_t size, unsigned int prot);

/**
 * vtddrv_unmap() - unmap [@iova, +@size) and invalidate per the policy.
 * Return: 0; vtdpt_unmap()'s errnos; -EIO; -ETIMEDOUT.
 */
int vtddrv_unmap(struct vtddrv *d, struct vtddrv_domain *dom, uint64_t iova,
		 uint64_t size);

/** vtddrv_flush() - flush @dom's deferred unmaps now.  0; -EIO; -ETIMEDOUT. */
int vtddrv_flush(struct vtddrv *d, struct vtddrv_domain *dom);

/** struct vtddrv_stats - what the driver did. */
struct vtddrv_stats {
	uint64_t descriptors, waits, psi, dsi, flushes, queue_errors;
};

/** vtddrv_stats() - snapshot. */
void vtddrv_stats(const struct vtddrv *d, struct vtddrv_stats *out);

#endif /* VIOMMU_VTD_REFDRV_H */
