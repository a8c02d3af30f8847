/*
 * refdrv_table.c - the reference driver's page-table handover; see
 * refdrv_table.h.  Requests are encoded here byte by byte from the layouts
 * of docs/VIRTIO-IOMMU-TABLES.md (independently of the device's
 * iommu_table_wire.h), so a test through this driver checks the device
 * against the document.
 *
 * Table pages come from a bitmap allocator over the caller's pool; the
 * bitmap is host memory sized by the pool (one bit per granule).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <viommu/core.h>
#include <viommu/virtio_iommu.h>

#include "base/util.h"
#include "refdrv/lpae_build.h"
#include "refdrv/virtio_table.h"

#define T_ATTACH_TABLE 6
#define T_INVALIDATE 7
#define T_PAGE_RESP 8
#define LEN_ATTACH_TABLE 76u
#define LEN_INVALIDATE 60u
#define LEN_PAGE_RESP 36u
#define FMT_PGT_ARM 1u
#define TBL_F_PASID 1u
#define TBL_F_UNBIND 2u
#define EVT_PAGE_REQ 2u
#define PRQ_F_PASID_VALID 1u
#define PRQ_F_LAST 2u
/* Groups whose requests were denied, remembered until their last one. */
#define DENY_SLOTS 64u

struct refdrv_table {
	struct refdrv_table_config cfg;
	struct lpae_cfg lc;
	struct lpae_ops ops;
	uint64_t root;
	uint64_t *bits; /* pool pages in use */
	uint64_t npages;
	uint32_t deny[DENY_SLOTS]; /* ep << 9 | grpid, +1; 0 = free */
};

/* put() - @n little-endian bytes of @v at @p. */
static void put(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* get() - @n little-endian bytes at @p. */
static uint64_t get(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* pool_alloc() - lpae_ops.alloc: @size bytes aligned to @align. */
static int pool_alloc(void *opaque, uint64_t size, uint64_t align,
		      uint64_t *gpa)
{
	struct refdrv_table *t = opaque;
	uint64_t g = t->lc.granule, n = size / g, step = align > g ? align / g : 1;

	if (size % g || !n)
		return -EINVAL;
	for (uint64_t i = 0; i + n <= t->npages; i += step) {
		uint64_t k;

		for (k = 0; k < n; k++)
			if (t->bits[(i + k) / 64] >> ((i + k) % 64) & 1)
				break;
		if (k < n)
			continue;
		for (k = 0; k < n; k++)
			t->bits[(i + k) / 64] |= 1ull << ((i + k) % 64);
		*gpa = t->cfg.pool_gpa + i * g;
		return 0;
	}
	return -ENOMEM;
}

/* pool_free() - lpae_ops.free. */
static void pool_free(void *opaque, uint64_t gpa, uint64_t size)
{
	struct refdrv_table *t = opaque;
	uint64_t g = t->lc.granule, i = (gpa - t->cfg.pool_gpa) / g;

	for (uint64_t k = 0; k < size / g && i + k < t->npages; k++)
		t->bits[(i + k) / 64] &= ~(1ull << ((i + k) % 64));
}

int refdrv_table_create(const struct refdrv_table_config *cfg,
			struct refdrv_table **out)
{
	struct refdrv_table *t;
	int rc;

	if (!cfg || !out || !cfg->drv || !cfg->mem)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->cfg = *cfg;
	t->lc.stage = LPAE_STAGE1;
	t->lc.granule = cfg->granule ? cfg->granule : 4096;
	t->lc.ias = cfg->ias ? cfg->ias : 48;
	t->lc.oas = cfg->oas ? cfg->oas : 48;
	t->lc.start_level = LPAE_SL_AUTO;
	t->lc.ha = cfg->ha;
	rc = lpae_cfg_validate(&t->lc);
	if (rc || cfg->pool_gpa % t->lc.granule)
		goto err;
	t->npages = cfg->pool_size / t->lc.granule;
	t->bits = calloc((size_t)(t->npages + 63) / 64 + 1, sizeof(uint64_t));
	rc = -ENOMEM;
	if (!t->bits)
		goto err;
	t->ops = (struct lpae_ops){ .mem = cfg->mem, .alloc = pool_alloc,
				    .free = pool_free, .opaque = t };
	rc = lpae_alloc_root(&t->lc, &t->ops, &t->root);
	if (rc)
		goto err;
	*out = t;
	return 0;
err:
	free(t->bits);
	free(t);
	return rc ? rc : -EINVAL;
}

void refdrv_table_destroy(struct refdrv_table *t)
{
	if (!t)
		return;
	free(t->bits);
	free(t);
}

uint64_t refdrv_table_root(const struct refdrv_table *t)
{
	return t->root;
}

uint64_t refdrv_table_tcr(const struct refdrv_table *t)
{
	static const unsigned int ips[] = { 32, 36, 40, 42, 44, 48 };
	uint64_t tg = t->lc.granule == 4096 ? 0 : t->lc.granule == 65536 ? 1 : 2;
	uint64_t tcr = (64 - t->lc.ias) | (tg << 14) | (1ull << 23) |
		       (3ull << 12) | (1ull << 8) | (1ull << 10);

	for (uint64_t i = 0; i < 6; i++)
		if (ips[i] == t->lc.oas)
			tcr |= i << 32;
	if (t->lc.ha)
		tcr |= 1ull << 39;
	return tcr;
}

/* send() - one request with a 4-byte tail; its status in *@status. */
static int send(struct refdrv *drv, const uint8_t *req, uint32_t len,
		uint8_t *status)
{
	uint8_t tail[4];
	uint32_t used = 0;
	int rc = refdrv_raw(drv, req, len, sizeof(tail), tail, &used);

	if (rc)
		return rc;
	if (status)
		*status = used == sizeof(tail) ? tail[0] :
			  used ? REFDRV_S_BAD_LEN : REFDRV_S_NOT_WRITTEN;
	return 0;
}

/* attach_table() - ATTACH_TABLE with @flags and @pasid. */
static int attach_table(struct refdrv_table *t, uint32_t domain,
			uint32_t endpoint, uint32_t flags, uint32_t pasid,
			uint8_t *status)
{
	uint8_t b[LEN_ATTACH_TABLE] = { T_ATTACH_TABLE };

	put(b + 4, domain, 4);
	put(b + 8, endpoint, 4);
	put(b + 12, FMT_PGT_ARM, 2);
	put(b + 14, t->cfg.asid, 2);
	put(b + 16, refdrv_table_tcr(t), 8);
	put(b + 24, t->root, 8);
	/* ttbr1 (32) zero; MAIR as the builder's AttrIndx values need. */
	put(b + 40, 0x0004ff44ull, 8);
	put(b + 48, pasid, 4);
	put(b + 52, flags, 4);
	return send(t->cfg.drv, b, sizeof(b), status);
}

int refdrv_table_bind(struct refdrv_table *t, uint32_t domain,
		      uint32_t endpoint, uint32_t pasid, uint8_t *status)
{
	if (!t)
		return -EINVAL;
	if (pasid == VIOMMU_NO_PASID)
		return attach_table(t, domain, endpoint, 0, 0, status);
	return attach_table(t, domain, endpoint, TBL_F_PASID, pasid, status);
}

int refdrv_table_unbind(struct refdrv_table *t, uint32_t domain,
			uint32_t endpoint, uint32_t pasid, uint8_t *status)
{
	if (!t)
		return -EINVAL;
	if (pasid == VIOMMU_NO_PASID) {
		int rc = refdrv_detach(t->cfg.drv, domain, endpoint, status);

		return rc ? rc : refdrv_commit(t->cfg.drv) < 0 ? -EIO : 0;
	}
	return attach_table(t, domain, endpoint, TBL_F_PASID | TBL_F_UNBIND,
			    pasid, status);
}

int refdrv_table_map(struct refdrv_table *t, uint64_t iova, uint64_t pa,
		     uint64_t size, unsigned int prot)
{
	if (!t)
		return -EINVAL;
	return lpae_map(&t->lc, &t->ops, t->root, iova, pa, size, prot);
}

int refdrv_invalidate(struct refdrv *drv, uint32_t domain, uint16_t scope,
		      uint16_t flags, uint32_t pasid, uint64_t id,
		      uint64_t va, uint64_t nr_pages, uint8_t granule,
		      uint8_t *status)
{
	uint8_t b[LEN_INVALIDATE] = { T_INVALIDATE };

	if (!drv)
		return -EINVAL;
	put(b + 4, scope, 2);
	put(b + 6, flags, 2);
	put(b + 8, domain, 4);
	put(b + 12, pasid, 4);
	put(b + 16, id, 8);
	put(b + 24, va, 8);
	put(b + 32, nr_pages, 8);
	b[40] = granule;
	return send(drv, b, sizeof(b), status);
}

int refdrv_table_unmap(struct refdrv_table *t, uint64_t iova, uint64_t size,
		       uint32_t domain, uint8_t *status)
{
	uint64_t unmapped = 0;
	unsigned int gs;
	int rc;

	if (!t)
		return -EINVAL;
	rc = lpae_unmap(&t->lc, &t->ops, t->root, iova, size, &unmapped);
	if (rc || domain == UINT32_MAX)
		return rc;
	gs = t->lc.pg_shift;
	return refdrv_invalidate(t->cfg.drv, domain, REFDRV_INV_S_VA,
				 REFDRV_INV_F_LEAF | REFDRV_INV_F_ID, 0,
				 t->cfg.asid, iova, size >> gs, (uint8_t)gs,
				 status);
}

int refdrv_page_resp(struct refdrv *drv, uint32_t domain, uint32_t endpoint,
		     uint32_t pasid, uint32_t grpid, uint16_t code,
		     uint8_t *status)
{
	uint8_t b[LEN_PAGE_RESP] = { T_PAGE_RESP };
	bool pv = pasid != VIOMMU_NO_PASID;

	if (!drv)
		return -EINVAL;
	put(b + 4, domain, 4);
	put(b + 8, endpoint, 4);
	put(b + 12, pv, 4);
	put(b + 16, pv ? pasid : 0, 4);
	put(b + 20, grpid, 4);
	put(b + 24, code, 2);
	b[26] = pv;
	return send(drv, b, sizeof(b), status);
}

int refdrv_prq_decode(const struct refdrv_fault *f, struct refdrv_prq *out)
{
	const uint8_t *p = f->raw;
	uint32_t fl, pr;

	if (f->used_len != REFDRV_EVENT_SIZE_EXT || get(p + 4, 2) != EVT_PAGE_REQ)
		return -ENOENT;
	fl = (uint32_t)get(p + 8, 4);
	pr = (uint32_t)get(p + 12, 4);
	out->perm = (fl & 1 ? VIOMMU_READ : 0) | (fl & 2 ? VIOMMU_WRITE : 0) |
		    (fl & 4 ? VIOMMU_EXEC : 0) |
		    (fl & 8 ? VIOMMU_VI_PRI_PRIV : 0);
	out->pasid_valid = pr & PRQ_F_PASID_VALID;
	out->last = pr & PRQ_F_LAST;
	out->endpoint = (uint32_t)get(p + 16, 4);
	out->pasid = out->pasid_valid ? (uint32_t)get(p + 20, 4) :
					VIOMMU_NO_PASID;
	out->grpid = (uint32_t)get(p + 24, 4);
	out->addr = get(p + 32, 8);
	return 0;
}

/* deny_slot() - the remembered denial of (@ep, @grp): set/test/clear. */
static bool deny_op(struct refdrv_table *t, uint32_t ep, uint32_t grp,
		    int op)
{
	uint32_t key = ((ep << 9) | grp) + 1;

	for (unsigned int i = 0; i < DENY_SLOTS; i++) {
		if (t->deny[i] == key) {
			if (op < 0)
				t->deny[i] = 0;
			return true;
		}
	}
	if (op > 0)
		for (unsigned int i = 0; i < DENY_SLOTS; i++)
			if (!t->deny[i]) {
				t->deny[i] = key;
				break;
			}
	return false;
}

/* handle_one() - populate one page request; answer at its group's end. */
static int handle_one(struct refdrv_table *t, uint32_t domain,
		      const struct refdrv_prq *p,
		      int (*populate)(void *, const struct refdrv_prq *,
				      uint64_t *, unsigned int *),
		      void *opaque)
{
	uint64_t g = t->lc.granule, pa = 0, iova = p->addr & ~(g - 1);
	unsigned int prot = 0;
	uint8_t st;
	int rc;

	rc = populate(opaque, p, &pa, &prot);
	if (!rc) {
		rc = lpae_map(&t->lc, &t->ops, t->root, iova, pa & ~(g - 1), g,
			      prot);
		if (rc == -EEXIST) /* a racing request already did it */
			rc = 0;
	}
	if (rc)
		deny_op(t, p->endpoint, p->grpid, 1);
	if (!p->last)
		return 0;
	rc = refdrv_page_resp(t->cfg.drv, domain, p->endpoint, p->pasid,
			      p->grpid, deny_op(t, p->endpoint, p->grpid, -1) ?
			      REFDRV_PRESP_INVALID : REFDRV_PRESP_SUCCESS, &st);
	return rc;
}

int refdrv_table_handle_faults(struct refdrv_table *t, uint32_t domain,
			       int (*populate)(void *opaque,
					       const struct refdrv_prq *p,
					       uint64_t *pa,
					       unsigned int *prot),
			       void *opaque, unsigned int max)
{
	struct refdrv_fault ev[16];
	struct refdrv_prq p;
	int n, handled = 0, rc;

	if (!t || !populate)
		return -EINVAL;
	while (max) {
		n = refdrv_events_poll(t->cfg.drv, ev, MIN(max, 16u));
		if (n <= 0)
			return n < 0 ? n : handled;
		for (int i = 0; i < n; i++) {
			if (refdrv_prq_decode(&ev[i], &p))
				continue;
			rc = handle_one(t, domain, &p, populate, opaque);
			if (rc)
				return rc;
			handled++;
		}
		max -= (unsigned int)n;
	}
	return handled;
}
