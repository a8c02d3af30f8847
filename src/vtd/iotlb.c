/*
 * iotlb.c - the VT-d model's IOTLB: translations the walk produced, kept
 * until the guest invalidates them (rule T10).  The core does not cache
 * what a NESTED domain's op returns, so this cache is what makes a
 * guest's missing invalidation visible (a stale translation stays in
 * use, as on hardware) and what lets the hot path skip the walk.
 *
 * Layout.  4-way sets of struct vtd_tlbe, the set chosen by the 4 KiB
 * input page.  An entry maps one input page of one (source-id, PASID) to
 * one output page, tagged with the domain ID the walk found, and with the
 * permissions the walk granted.  A first-level walk for a read does not
 * set D, so its entry drops WRITE: a later write misses and walks again
 * (which sets D).  Faults and pass-through are never cached.
 *
 * Invalidation.  A selector (source-ids under a function mask, a domain
 * ID, an input range) drops every matching entry.  A page-selective
 * invalidation of at most one set's worth of pages probes only the sets
 * of those pages; anything larger scans the array (bounded by its size)
 * until it has seen every valid entry (a count kept with the array: a
 * guest's flush of an empty or nearly empty cache costs next to nothing).
 * Everything here runs under v->lock.
 */
#include "vtd_internal.h"

#define WAYS 4

/* set_of() - the first entry of the set of input page @page. */
static struct vtd_tlbe *set_of(struct viommu_vtd *v, uint64_t page)
{
	uint64_t h = page * 0x9e3779b97f4a7c15ull;

	return &v->tlb[((h ^ (h >> 31)) & v->tlb_sets_mask) * WAYS];
}

/* vtd_tlb_alloc() - @entries (power of two >= WAYS, <= 65536). */
int vtd_tlb_alloc(struct viommu_vtd *v, unsigned int entries)
{
	if (!entries)
		entries = 1024;
	if (entries < WAYS || entries > 65536 || (entries & (entries - 1)))
		return -EINVAL;
	v->tlb = xzalloc(&v->alloc, (size_t)entries * sizeof(*v->tlb));
	if (!v->tlb)
		return -ENOMEM;
	v->tlb_entries = entries;
	v->tlb_sets_mask = entries / WAYS - 1;
	return 0;
}

/* vtd_tlb_lookup() - a usable entry for the request, or NULL (locked). */
const struct vtd_tlbe *vtd_tlb_lookup(struct viommu_vtd *v, uint16_t sid,
				      uint32_t pasid, uint64_t va,
				      unsigned int access)
{
	uint64_t page = va >> 12;
	struct vtd_tlbe *s = set_of(v, page);

	for (unsigned int i = 0; i < WAYS; i++) {
		struct vtd_tlbe *t = &s[i];

		if (t->valid && t->page == page && t->sid == sid &&
		    t->pasid == pasid && !(access & ~t->perm))
			return t;
	}
	return NULL;
}

/* vtd_tlb_insert() - remember page @va -> @out_page (locked). */
void vtd_tlb_insert(struct viommu_vtd *v, uint16_t sid, uint32_t pasid,
		    uint16_t did, uint64_t va, uint64_t out_page,
		    uint32_t perm)
{
	uint64_t page = va >> 12;
	struct vtd_tlbe *s = set_of(v, page), *t = NULL;

	for (unsigned int i = 0; i < WAYS && !t; i++)
		if (!s[i].valid || (s[i].page == page && s[i].sid == sid &&
				    s[i].pasid == pasid))
			t = &s[i];
	if (!t)
		t = &s[(page ^ sid ^ pasid ^ v->tlb_rr++) & (WAYS - 1)];
	if (!t->valid)
		v->tlb_live++;
	t->valid = true;
	t->sid = sid;
	t->did = did;
	t->pasid = pasid;
	t->page = page;
	t->out = out_page;
	t->perm = perm;
}

/* match() - whether @t falls under the selector. */
static bool match(const struct vtd_tlbe *t, bool by_sid, uint16_t sid,
		  uint16_t fm_mask, bool by_did, uint16_t did, uint64_t lo,
		  uint64_t hi)
{
	if (by_sid && (t->sid & ~fm_mask) != (sid & ~fm_mask))
		return false;
	if (by_did && t->did != did)
		return false;
	return t->page >= (lo >> 12) && t->page <= (hi >> 12);
}

/* vtd_tlb_inval() - drop the entries the selector covers (locked). */
void vtd_tlb_inval(struct viommu_vtd *v, bool by_sid, uint16_t sid,
		   uint16_t fm_mask, bool by_did, uint16_t did, uint64_t lo,
		   uint64_t hi)
{
	uint64_t pages = (hi >> 12) - (lo >> 12);
	uint64_t n = 0;

	if (pages < v->tlb_sets_mask + 1ull) {
		for (uint64_t p = lo >> 12; p <= (hi >> 12); p++) {
			struct vtd_tlbe *s = set_of(v, p);

			for (unsigned int i = 0; i < WAYS; i++)
				if (s[i].valid && s[i].page == p &&
				    match(&s[i], by_sid, sid, fm_mask, by_did,
					  did, lo, hi)) {
					s[i].valid = false;
					n++;
				}
		}
	} else {
		unsigned int seen = 0;

		for (unsigned int i = 0; i < v->tlb_entries &&
					 seen < v->tlb_live; i++) {
			struct vtd_tlbe *t = &v->tlb[i];

			if (!t->valid)
				continue;
			seen++;
			if (match(t, by_sid, sid, fm_mask, by_did, did, lo,
				  hi)) {
				t->valid = false;
				n++;
			}
		}
	}
	v->tlb_live -= n;
	v->st.iotlb_dropped += n;
}
