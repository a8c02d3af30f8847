/*
 * fuzz_core_model.c - the fuzz_core target's reference model (see
 * fuzz_core.c for the rules it follows where core.h is silent): flat
 * per-slot state, range arithmetic, lookups in the model's sorted
 * mappings, attachments, reserved regions and dirty pages, and the
 * translation every call is checked against.
 */
#include "fuzz_core.h"

/* Guest RAM (layout in fuzz_core.c); no check depends on its contents. */
uint8_t ram_a[RAM_A_SIZE];
uint8_t ram_b[RAM_B_SIZE];
uint8_t ram_c[RAM_C_SIZE];
uint8_t ram_c2[RAM_C_SIZE];

/* ------------------------------------------------------------------ */
/* Model helpers                                                      */

/* overlap() - whether inclusive ranges [a0,a1] and [b0,b1] meet. */
bool overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return a0 <= b1 && b0 <= a1;
}

/* sat_add() - saturating addition. */
uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/* range_bytes() - bytes in [iova, last], saturating at UINT64_MAX. */
uint64_t range_bytes(uint64_t iova, uint64_t last)
{
	return sat_add(last - iova, 1);
}

/* clip() - @len limited so that [iova, iova + len) ends by @last. */
static size_t clip(size_t len, uint64_t iova, uint64_t last)
{
	if ((uint64_t)len - 1 > last - iova)
		return (size_t)(last - iova + 1);
	return len;
}

/*
 * ram_find() - the host address of @gpa in guest RAM, the bytes to the end
 * of its region and whether it is read-only; false (with *@avail the bytes
 * to the next region, or 0 for "no more RAM above") when @gpa is a hole.
 */
static bool ram_find(unsigned int lay, uint64_t gpa, uint8_t **hva,
		     uint64_t *avail, bool *ro)
{
	*ro = false;
	if (gpa < RAM_A_SIZE) {
		*hva = ram_a + gpa;
		*avail = RAM_A_SIZE - gpa;
		return true;
	}
	if ((lay & LAY_B) && gpa < RAM_B_GPA + RAM_B_SIZE) {
		*hva = ram_b + (gpa - RAM_B_GPA);
		*avail = RAM_B_GPA + RAM_B_SIZE - gpa;
		return true;
	}
	if (gpa < RAM_C_GPA) {
		*avail = RAM_C_GPA - gpa;
		return false;
	}
	if (gpa < RAM_C_GPA + RAM_C_SIZE) {
		*hva = (lay & LAY_C2 ? ram_c2 : ram_c) + (gpa - RAM_C_GPA);
		*avail = RAM_C_GPA + RAM_C_SIZE - gpa;
		*ro = lay & LAY_C_RO;
		return true;
	}
	*avail = 0;
	return false;
}

/* target_dom() - the viommu domain a target names (NULL: empty slot). */
struct viommu_domain *target_dom(struct fz *fz, int t)
{
	if (t == T_IDENT)
		return viommu_ctx_identity_domain(fz->ctx);
	if (t == T_BLOCK)
		return viommu_ctx_blocked_domain(fz->ctx);
	if (t >= 0 && t < NDOM)
		return fz->dom[t].d;
	return NULL;
}

/* find_map() - index of the mapping of @md containing @iova, or -1. */
static int find_map(const struct mdom *md, uint64_t iova)
{
	for (int i = 0; i < md->nmap; i++)
		if (md->map[i].iova <= iova && iova <= md->map[i].last)
			return i;
	return -1;
}

/*
 * first_from() - index of the first model mapping of @md ending at or
 * after @iova (md->nmap if none).  The mappings are sorted and disjoint,
 * so their ends are sorted too: a binary search.
 */
int first_from(const struct mdom *md, uint64_t iova)
{
	int lo = 0, hi = md->nmap;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (md->map[mid].last < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * touch() - note [iova, last] as named by this call (fast checks: the
 * targeted domain is walked over it after the call).  A map or unmap
 * notes its range whether it was refused or not: a refusal must leave the
 * range as it was, and a walk of the range shows that; walking the whole
 * domain after each refusal was four fifths of the walks (docs/FUZZING.md).
 */
void touch(struct fz *fz, uint64_t iova, uint64_t last)
{
	if (iova < fz->touch_lo)
		fz->touch_lo = iova;
	if (last > fz->touch_hi)
		fz->touch_hi = last;
}

/* find_pasid() - index of @pasid in @me's table, or -1. */
int find_pasid(const struct mep *me, uint32_t pasid)
{
	for (int i = 0; i < me->npas; i++)
		if (me->pas[i].pasid == pasid)
			return i;
	return -1;
}

/* ep_attached_to() - whether the RID or a PASID of @me is on slot @t. */
bool ep_attached_to(const struct mep *me, int t)
{
	if (!me->e)
		return false;
	if (me->rid == t)
		return true;
	for (int i = 0; i < me->npas; i++)
		if (me->pas[i].t == t)
			return true;
	return false;
}

/* dom_endpoints() - RIDs and PASIDs attached to target @t. */
uint32_t dom_endpoints(const struct fz *fz, int t)
{
	uint32_t n = 0;

	for (int i = 0; i < NEP; i++) {
		const struct mep *me = &fz->ep[i];

		if (!me->e)
			continue;
		n += me->rid == t;
		for (int j = 0; j < me->npas; j++)
			n += me->pas[j].t == t;
	}
	return n;
}

/* resv_hits_maps() - whether [s, l] overlaps a mapping of slot @t. */
bool resv_hits_maps(const struct fz *fz, int t, uint64_t s,
		    uint64_t l)
{
	const struct mdom *md;

	if (t < 0 || t >= NDOM)
		return false;
	md = &fz->dom[t];
	for (int i = 0; i < md->nmap; i++)
		if (overlap(s, l, md->map[i].iova, md->map[i].last))
			return true;
	return false;
}

/* ep_resv_hits_dom() - whether a reserved region of @me meets slot @t. */
bool ep_resv_hits_dom(const struct fz *fz, const struct mep *me,
		      int t)
{
	for (int i = 0; i < me->nresv; i++)
		if (resv_hits_maps(fz, t, me->resv[i].start,
				   me->resv[i].last))
			return true;
	return false;
}

/* model_dirty_has() - whether page number @p is dirty in the model. */
bool model_dirty_has(const struct mdom *md, uint64_t p)
{
	for (int i = 0; i < md->ndirty; i++)
		if (md->dirty[i] == p)
			return true;
	return false;
}

/* model_dirty_mark() - add pages [iova, iova + len) to @md's dirty set. */
static void model_dirty_mark(struct mdom *md, uint64_t iova, uint64_t len)
{
	uint64_t p = iova / PAGE, last = (iova + (len - 1)) / PAGE;

	for (;; p++) {
		if (!model_dirty_has(md, p)) {
			if (md->ndirty >= DIRTY_CAP) {
				md->dirty_lost = true;
				return;
			}
			md->dirty[md->ndirty++] = p;
		}
		if (p == last)
			break;
	}
}

/* model_dirty_clear() - drop model pages [first, last] (page numbers). */
void model_dirty_clear(struct mdom *md, uint64_t first, uint64_t last)
{
	int j = 0;

	for (int i = 0; i < md->ndirty; i++)
		if (md->dirty[i] < first || md->dirty[i] > last)
			md->dirty[j++] = md->dirty[i];
	md->ndirty = j;
}

/* want_event() - the current op must produce this MAP/UNMAP event. */
void want_event(struct fz *fz, int slot, uint32_t type,
		const struct mmapping *m)
{
	struct viommu_event *w = &fz->want[fz->nwant];

	memset(w, 0, sizeof(*w));
	w->type = type;
	w->domain = fz->dom[slot].d;
	w->tag = fz->dom[slot].tag;
	w->iova = m->iova;
	w->last = m->last;
	w->gpa = m->gpa;
	w->prot = m->prot;
	fz->want_slot[fz->nwant] = slot;
	fz->nwant++;
}

/* ------------------------------------------------------------------ */
/* Translation model                                                  */

/* xfault() - expect a fault of @reason. */
static void xfault(struct xres *r, uint32_t reason, uint64_t tag)
{
	r->rc = -EFAULT;
	r->f.reason = reason;
	r->f.domain_tag = tag;
}

/*
 * xram() - fill gpa/hva/len/perm for a target address that may be RAM
 * (read-only RAM loses VIOMMU_WRITE), then check @access against the
 * resulting permissions.
 */
static void xram(const struct fz *fz, struct xres *r, uint64_t gpa,
		 size_t len, uint32_t perm, unsigned int access, uint64_t tag)
{
	uint8_t *hva = NULL;
	uint64_t avail;
	bool ro;

	r->x.gpa = gpa;
	r->x.len = len;
	r->x.perm = perm;
	if (perm & VIOMMU_MAP_MMIO) {
		/* device memory: no host pointer, whole mapping */
	} else if (ram_find(fz->layout, gpa, &hva, &avail, &ro)) {
		r->x.hva = hva;
		if (len > avail)
			r->x.len = avail;
		if (ro)
			r->x.perm &= ~VIOMMU_WRITE;
	} else if (avail && len > avail) {
		r->x.len = avail;
	}
	if ((r->x.perm & access) != access)
		xfault(r, VIOMMU_FAULT_PERMISSION, tag);
}

/* xident() - identity translation (IDENTITY domain or bypass). */
void xident(const struct fz *fz, struct xres *r, uint64_t iova,
	    size_t len, unsigned int access)
{
	xram(fz, r, iova, clip(len, iova, UINT64_MAX), PERM_ALL, access, 0);
	r->x.flags = VIOMMU_XLATE_BYPASS;
}

/* xpaging() - translation through the mappings of slot @t. */
void xpaging(struct fz *fz, struct xres *r, int t, uint64_t iova,
	     size_t len, unsigned int access)
{
	const struct mdom *md = &fz->dom[t];
	const struct mmapping *m;
	int i = find_map(md, iova);

	if (i < 0) {
		xfault(r, VIOMMU_FAULT_NO_MAPPING, md->tag);
		return;
	}
	m = &md->map[i];
	xram(fz, r, m->gpa + (iova - m->iova), clip(len, iova, m->last),
	     m->prot, access, md->tag);
}

/*
 * model_xlate() - expected result of viommu_translate(); @r->rc is
 * -EINVAL for bad arguments.
 */
void model_xlate(struct fz *fz, int e, uint32_t pasid, uint64_t iova,
		 size_t len, unsigned int access, struct xres *r)
{
	const struct mep *me = &fz->ep[e];
	int t;

	memset(r, 0, sizeof(*r));
	r->t = T_NONE;
	if (len == 0 || !access || (access & ~PERM_ALL) ||
	    (pasid != VIOMMU_NO_PASID && pasid > VIOMMU_PASID_MAX)) {
		r->rc = -EINVAL;
		return;
	}
	r->f.access = access;
	r->f.endpoint = me->id;
	r->f.pasid = pasid;
	r->f.address = iova;
	if (pasid == VIOMMU_NO_PASID) {
		t = me->rid;
	} else {
		int i = find_pasid(me, pasid);

		if (i < 0) {
			xfault(r, VIOMMU_FAULT_NO_PASID, 0);
			return;
		}
		t = me->pas[i].t;
	}
	r->t = t;
	if (t == T_NONE && !fz->bypass) {
		xfault(r, VIOMMU_FAULT_UNATTACHED, 0);
		return;
	}
	if (t == T_BLOCK) {
		xfault(r, VIOMMU_FAULT_BLOCKED, 0);
		return;
	}
	if (t == T_NONE || t == T_IDENT) {
		/* reserved regions only constrain PAGING domains */
		xident(fz, r, iova, len, access);
		return;
	}
	for (int i = 0; i < me->nresv; i++) {
		const struct viommu_resv *rv = &me->resv[i];

		if (iova < rv->start || iova > rv->last)
			continue;
		if (rv->type == VIOMMU_RESV_RESERVED) {
			xfault(r, VIOMMU_FAULT_RESERVED, fz->dom[t].tag);
			return;
		}
		/* MSI doorbell: 1:1, never RAM (core.h), one window long */
		r->x.gpa = iova;
		r->x.len = clip(len, iova, rv->last);
		r->x.perm = VIOMMU_READ | VIOMMU_WRITE;
		r->x.flags = VIOMMU_XLATE_MSI;
		return;
	}
	xpaging(fz, r, t, iova, len, access);
}

/* xlate_apply() - model side effects of a successful write translation. */
void xlate_apply(struct fz *fz, const struct xres *r, uint64_t iova,
		 unsigned int access)
{
	struct mdom *md;

	if (r->rc || !(access & VIOMMU_WRITE) || r->t < 0 || r->t >= NDOM)
		return;
	md = &fz->dom[r->t];
	if (md->dirty_on && !(r->x.flags & VIOMMU_XLATE_MSI))
		model_dirty_mark(md, iova, r->x.len);
}
