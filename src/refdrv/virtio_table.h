/*
 * refdrv_table.h - the reference driver's page-table handover
 * (docs/VIRTIO-IOMMU-TABLES.md): it owns an Arm LPAE stage-1 page table in
 * guest RAM, hands it to the device with ATTACH_TABLE, edits it directly
 * (no request per map), keeps the device coherent with INVALIDATE, and
 * answers page requests from the event queue with PAGE_RESP.
 *
 * No upstream guest driver speaks this protocol; this driver is how the
 * tests and `viommu-bench handover` prove it in process.
 *
 * The table's pages come from a pool of guest RAM the caller gives
 * (granule-sized pages handed out by a bitmap; freed pages are reused).
 * The table is written with the builder of src/pgtable/lpae.h through the
 * struct viommu_mem the device reads, so the device sees every edit at
 * once; what makes an edit safe to rely on is the INVALIDATE that follows
 * (V18).  Requests go through refdrv_raw(): each is committed at once,
 * together with whatever typed requests are queued.
 *
 * Not thread-safe: one thread drives a table and its driver.
 */
#ifndef VIOMMU_REFDRV_TABLE_H
#define VIOMMU_REFDRV_TABLE_H

#include <viommu/mem.h>

#include "refdrv/virtio.h"

struct refdrv_table;

/* Wire values the callers need (the spec-style names of the document). */
#define REFDRV_INV_S_DOMAIN 1u
#define REFDRV_INV_S_PASID 2u
#define REFDRV_INV_S_VA 4u
#define REFDRV_INV_S_ASID 8u
#define REFDRV_INV_F_CONFIG 1u
#define REFDRV_INV_F_LEAF 2u
#define REFDRV_INV_F_PASID 4u
#define REFDRV_INV_F_ID 8u
#define REFDRV_PRESP_SUCCESS 0u
#define REFDRV_PRESP_INVALID 1u
#define REFDRV_PRESP_FAILURE 2u

/**
 * struct refdrv_table_config - one table.
 * @drv:        the driver whose request queue carries the requests.
 * @mem:        guest memory (the device's).
 * @pool_gpa, @pool_size: guest RAM for table pages (granule-aligned).
 * @granule:    4096, 16384 or 65536 [4096].
 * @ias:        input bits, 25..48 [48].
 * @oas:        output bits (TCR.IPS): 32, 36, 40, 42, 44, 48 [48].
 * @asid:       the ASID to tag the table with.
 * @ha:         ask for hardware access-flag updates (TCR.HA).
 */
struct refdrv_table_config {
	struct refdrv *drv;
	struct viommu_mem *mem;
	uint64_t pool_gpa, pool_size;
	unsigned int granule, ias, oas;
	uint16_t asid;
	bool ha;
};

/** struct refdrv_prq - one page request read from the event queue. */
struct refdrv_prq {
	uint32_t endpoint, pasid, grpid;
	uint32_t perm;  /* VIOMMU_READ / WRITE / EXEC, VIOMMU_VI_PRI_PRIV */
	uint64_t addr;
	bool pasid_valid, last;
};

/**
 * refdrv_table_create() - a table with an empty start table from the pool.
 * Return: 0; -EINVAL (bad geometry, NULL); -ENOMEM (pool too small).
 */
int refdrv_table_create(const struct refdrv_table_config *cfg,
			struct refdrv_table **out);

/** refdrv_table_destroy() - free the host side (not the guest pages). */
void refdrv_table_destroy(struct refdrv_table *t);

/** refdrv_table_root() - the start table's GPA (TTBR0). */
uint64_t refdrv_table_root(const struct refdrv_table *t);

/**
 * refdrv_table_tcr() - the TCR value ATTACH_TABLE sends for @t.
 */
uint64_t refdrv_table_tcr(const struct refdrv_table *t);

/**
 * refdrv_table_bind() - ATTACH_TABLE @endpoint (its requester ID when
 * @pasid is VIOMMU_NO_PASID, else that PASID) to @domain with @t.
 * Return: 0 with *@status set; -EINVAL; -EIO.
 */
int refdrv_table_bind(struct refdrv_table *t, uint32_t domain,
		      uint32_t endpoint, uint32_t pasid, uint8_t *status);

/**
 * refdrv_table_unbind() - remove the binding: DETACH for the requester ID,
 * ATTACH_TABLE with F_UNBIND for a PASID.  Return: as bind.
 */
int refdrv_table_unbind(struct refdrv_table *t, uint32_t domain,
			uint32_t endpoint, uint32_t pasid, uint8_t *status);

/**
 * refdrv_table_map() - write [iova, iova + size) -> pa into the table
 * with @prot (VIOMMU_READ / WRITE); no request is sent (V18: mapping a
 * previously invalid entry needs no INVALIDATE).
 * Return: 0; the builder's errno (-EINVAL, -EEXIST, -ENOMEM, -EFAULT).
 */
int refdrv_table_map(struct refdrv_table *t, uint64_t iova, uint64_t pa,
		     uint64_t size, unsigned int prot);

/**
 * refdrv_table_unmap() - clear [iova, iova + size) in the table; with
 * @domain != UINT32_MAX also send INVALIDATE of that range (leaf) for the
 * table's ASID and wait for it.  *@status (optional) gets its status.
 * Return: 0; the builder's errno; -EIO.
 */
int refdrv_table_unmap(struct refdrv_table *t, uint64_t iova, uint64_t size,
		       uint32_t domain, uint8_t *status);

/**
 * refdrv_invalidate() - send INVALIDATE with every field as given.
 * Return: 0 with *@status set; -EINVAL; -EIO.
 */
int refdrv_invalidate(struct refdrv *drv, uint32_t domain, uint16_t scope,
		      uint16_t flags, uint32_t pasid, uint64_t id,
		      uint64_t va, uint64_t nr_pages, uint8_t granule,
		      uint8_t *status);

/**
 * refdrv_page_resp() - send PAGE_RESP for group @grpid of @endpoint
 * (@pasid VIOMMU_NO_PASID: no PASID) with @code.
 * Return: 0 with *@status set; -EINVAL; -EIO.
 */
int refdrv_page_resp(struct refdrv *drv, uint32_t domain, uint32_t endpoint,
		     uint32_t pasid, uint32_t grpid, uint16_t code,
		     uint8_t *status);

/**
 * refdrv_prq_decode() - the page request in event @f.
 * Return: 0; -ENOENT (not a 48-byte page request event).
 */
int refdrv_prq_decode(const struct refdrv_fault *f, struct refdrv_prq *out);

/**
 * refdrv_table_handle_faults() - read up to @max events; for each page
 * request of @t's domain @domain ask @populate for the page (it returns 0
 * with the target in *@pa and permissions in *@prot, or non-zero to deny),
 * write it into the table and, at the last request of the group, answer
 * PAGE_RESP (SUCCESS, or INVALID if any request of the group was denied).
 * Return: page requests handled; -EINVAL; -EIO.
 */
int refdrv_table_handle_faults(struct refdrv_table *t, uint32_t domain,
			       int (*populate)(void *opaque,
					       const struct refdrv_prq *p,
					       uint64_t *pa,
					       unsigned int *prot),
			       void *opaque, unsigned int max);

#endif /* VIOMMU_REFDRV_TABLE_H */
