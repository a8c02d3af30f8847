/*
 * domain.c - what happens inside a domain: map and unmap on the mapping
 * store, the IOTLB (fill and invalidation), notifiers, the reserved-region
 * union of attached endpoints, and read-only queries.
 *
 * IOTLB.  A direct-mapped array of slots indexed by IOVA page.  A slot
 * caches a "piece": an IOVA range inside one mapping (and inside one RAM
 * region or one hole) that translates contiguously, tagged with the memory
 * generation it was computed in.  A piece is stored in the slot of the page
 * that was translated, which lies inside the piece - or, when the piece
 * covers the whole aligned 2 MiB block around that page, in the block's
 * slot of a second, smaller array indexed by block (as a TLB keeps huge
 * pages apart): one large mapping then takes one slot instead of one per
 * page, and pages of two large mappings no longer evict each other.  So
 * when unmap removes whole mappings of [iova, last], visiting the page
 * slots of the pages and the block slots of the blocks of that range (or
 * every slot, when the range has more pages or blocks than there are
 * slots) finds every piece of a removed mapping.  Explicit invalidation of
 * an arbitrary range scans every slot, because a piece may extend beyond
 * the range.  Slot writes happen inside the slot's seqcount, so
 * lock-free hit-path readers see a whole piece or retry.
 *
 * Lock-free fills.  A miss resolved without dom->lock (translate.c) fills
 * a slot too, racing with unmaps and invalidations, which hold the lock.
 * Two rules keep a removed mapping from surviving in a slot:
 *  - A slot's seqcount is also its writer lock: a writer takes it from
 *    even to odd with a compare-and-swap and back to even (+2) when done
 *    (slot_trylock/slot_unlock).  Fillers give up if it is taken;
 *    invalidators never wait for it (__slot_inval()).
 *  - dom->iseq counts invalidations: __inval_begin() makes it odd before a
 *    removal or invalidation changes anything, __inval_end() even after.
 *    An invalidation publishes the IOVA range it may change
 *    (dom->inval_lo/hi) before making iseq odd.  A filler reads iseq
 *    (acquire) and that range BEFORE its store look-up (inval_snap());
 *    after writing the slot it re-reads iseq behind a full fence and keeps
 *    its piece only if no invalidation that may cover it ran meanwhile:
 *    iseq unchanged and, if odd, the piece outside the running range; or
 *    iseq one further (one invalidation started after the snapshot) and
 *    the piece outside that one's range; otherwise it clears the piece.
 *    The invalidator makes iseq odd, then a full fence, then reads slots.
 *    This is the store-buffering pattern: either the invalidator's slot
 *    read sees the filler's piece (and clears it if it overlaps), or the
 *    filler's re-read sees the new iseq (and its range).  A filler whose
 *    snapshot shows an invalidation ended also sees the store as it left
 *    it (release / acquire on iseq), so it cannot find a removed mapping.
 *    The range keeps a busy mapper's unmaps elsewhere in the domain from
 *    discarding every concurrent fill.
 */
#include "internal.h"

#include <errno.h>

#define PROT_ALL (VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC | VIOMMU_MAP_MMIO)

/* covers_block() - whether [lo, hi] holds the whole 2 MiB block of @at. */
static bool covers_block(uint64_t lo, uint64_t hi, uint64_t at)
{
	uint64_t blo = at & ~((1ull << BLOCK_SHIFT) - 1);

	return lo <= blo && hi >= blo + ((1ull << BLOCK_SHIFT) - 1);
}

/*
 * slot_trylock() - take @s for writing: its seqcount from even to odd.
 * Return: whether taken, with the even count in *@old.
 */
static bool slot_trylock(struct iotlb_slot *s, uint32_t *old)
{
	uint32_t v = READ_ONCE(s->seq);

	if (v & 1)
		return false;
	/*
	 * Barrier: acquire on success, pairing with slot_unlock()'s release:
	 * what the previous writer did (its slot data, and for an
	 * invalidator the odd iseq it wrote first) is visible to us.
	 */
	if (!__atomic_compare_exchange_n(&s->seq, &v, v + 1, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return false;
	/* Barrier: the odd count is visible before our data stores. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	*old = v;
	return true;
}

/* slot_unlock() - publish @s: even count again, one generation on. */
static void slot_unlock(struct iotlb_slot *s, uint32_t old)
{
	/* Barrier: release, the data stores before the even count. */
	STORE_RELEASE(s->seq, old + 2);
}

void inval_snap(struct viommu_domain *dom, struct inval_snap *sn)
{
	/*
	 * Barrier: acquire, pairing with the release stores of iseq in
	 * __inval_begin/end(): the range written before the count, and the
	 * store as a finished invalidation left it, are visible.
	 */
	sn->seq = LOAD_ACQUIRE(dom->iseq);
	sn->lo = READ_ONCE(dom->inval_lo);
	sn->hi = READ_ONCE(dom->inval_hi);
}

/*
 * fill_survives() - after a fill of [lo, hi], whether no invalidation
 * that may cover it ran since @sn (see "Lock-free fills").
 */
static bool fill_survives(struct viommu_domain *dom,
			  const struct inval_snap *sn, uint64_t lo,
			  uint64_t hi)
{
	/* Barrier: acquire, so the range read below is the count's. */
	uint32_t now = LOAD_ACQUIRE(dom->iseq);
	uint64_t ilo, ihi;

	if (now == sn->seq)
		return !(now & 1) || !ranges_overlap(lo, hi, sn->lo, sn->hi);
	if (now != sn->seq + 1 || (sn->seq & 1))
		return false;
	ilo = READ_ONCE(dom->inval_lo);
	ihi = READ_ONCE(dom->inval_hi);
	/* Barrier: the range reads before the re-check of the count. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return READ_ONCE(dom->iseq) == now && !ranges_overlap(lo, hi, ilo, ihi);
}

void iotlb_fill(struct viommu_domain *dom, uint64_t lo, uint64_t hi,
		uint64_t gpa, uint8_t *hva, uint32_t perm, uint32_t flags,
		uint64_t gen, uint64_t at, const struct inval_snap *sn)
{
	struct iotlb_slot *s = covers_block(lo, hi, at) ?
				       iotlb_block_slot(dom, at) : iotlb_page_slot(dom, at);
	uint32_t old;

	/* An invalidation of this piece is running: it may be stale. */
	if (((sn->seq & 1) && ranges_overlap(lo, hi, sn->lo, sn->hi)) ||
	    !slot_trylock(s, &old))
		return;
	WRITE_ONCE(s->lo, lo);
	WRITE_ONCE(s->hi, hi);
	WRITE_ONCE(s->gpa, gpa);
	WRITE_ONCE(s->hva, hva);
	WRITE_ONCE(s->flags, flags);
	WRITE_ONCE(s->gen, gen);
	WRITE_ONCE(s->perm, perm | SLOT_VALID);
	/*
	 * Barrier: full fence, pairing with __inval_begin()'s: the piece is
	 * visible to an invalidator's slot reads, or we see its iseq.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!fill_survives(dom, sn, lo, hi))
		WRITE_ONCE(s->perm, 0);
	slot_unlock(s, old);
}

void __inval_begin(struct viommu_domain *dom, uint64_t lo, uint64_t hi)
{
	/* Only dom->lock holders write these. */
	WRITE_ONCE(dom->inval_lo, lo);
	WRITE_ONCE(dom->inval_hi, hi);
	/* Barrier: release, the range before the odd count. */
	STORE_RELEASE(dom->iseq, dom->iseq + 1);
	/*
	 * Barrier: full fence, pairing with iotlb_fill()'s: the odd count is
	 * visible to fillers before we read any slot.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void __inval_end(struct viommu_domain *dom)
{
	/*
	 * Barrier: release, pairing with the fillers' acquire load of iseq:
	 * a filler that reads the even count sees the store without the
	 * removed mappings.
	 */
	STORE_RELEASE(dom->iseq, dom->iseq + 1);
}

/*
 * __slot_inval() - clear @s if it holds a piece overlapping [lo, hi].
 * Inside __inval_begin/end, so after the full fence there.  A stable
 * unlocked read that shows no such piece is enough (see "Lock-free fills"
 * at the top).  A slot a filler holds is never waited for: a filler
 * preempted inside would stall this unmap for a time slice.  Instead we
 * clear its valid bit without the lock.  By the store-buffering pairing
 * either the filler's re-check, which follows all its slot writes, sees
 * our iseq and range (and it clears an overlapping piece itself, whatever
 * it did to our store), or all its slot writes precede our fence and our
 * clear comes after them (the filler writes perm again only to clear it).
 */
static void __slot_inval(struct iotlb_slot *s, uint64_t lo, uint64_t hi)
{
	uint32_t v = LOAD_ACQUIRE(s->seq), perm, old;
	uint64_t slo, shi;

	if (!(v & 1)) {
		perm = READ_ONCE(s->perm);
		slo = READ_ONCE(s->lo);
		shi = READ_ONCE(s->hi);
		/* Barrier: the slot reads before the re-check. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (READ_ONCE(s->seq) == v &&
		    (!(perm & SLOT_VALID) || !ranges_overlap(slo, shi, lo, hi)))
			return;
	}
	if (!slot_trylock(s, &old)) {
		/* A filler holds it (see above); readers see it odd. */
		WRITE_ONCE(s->perm, 0);
		return;
	}
	if ((s->perm & SLOT_VALID) && ranges_overlap(s->lo, s->hi, lo, hi))
		WRITE_ONCE(s->perm, 0);
	slot_unlock(s, old);
}

/* Clear valid slots (page and block) whose piece overlaps [lo, hi]. */
static void __iotlb_inval_scan(struct viommu_domain *dom, uint64_t lo,
			       uint64_t hi)
{
	uint32_t i;

	for (i = 0; i <= dom->ctx->iotlb_mask + BLOCK_SLOTS; i++)
		__slot_inval(&dom->iotlb[i], lo, hi);
}

/* Invalidate pieces of whole mappings inside [lo, hi] (see top). */
static void __iotlb_inval_mappings(struct viommu_domain *dom, uint64_t lo,
				   uint64_t hi)
{
	uint64_t pg = lo >> PAGE_SHIFT, end = hi >> PAGE_SHIFT;
	uint64_t blk = lo >> BLOCK_SHIFT, bend = hi >> BLOCK_SHIFT;

	if (end - pg >= dom->ctx->iotlb_mask) {
		__iotlb_inval_scan(dom, lo, hi);
		return;
	}
	for (;; pg++) {
		__slot_inval(iotlb_page_slot(dom, pg << PAGE_SHIFT), lo, hi);
		if (pg == end)
			break;
	}
	if (bend - blk >= BLOCK_SLOTS) {
		for (uint32_t i = 0; i < BLOCK_SLOTS; i++)
			__slot_inval(&iotlb_block_slots(dom)[i], lo, hi);
		return;
	}
	for (;; blk++) {
		__slot_inval(iotlb_block_slot(dom, blk << BLOCK_SHIFT), lo,
			     hi);
		if (blk == bend)
			break;
	}
}

void __iotlb_inval_all(struct viommu_domain *dom)
{
	__inval_begin(dom, 0, UINT64_MAX);
	__iotlb_inval_scan(dom, 0, UINT64_MAX);
	__inval_end(dom);
}

void __notify(struct viommu_domain *dom, const struct viommu_event *ev)
{
	struct viommu_notifier *n;
	uint32_t called = 0;

	for (n = dom->notifiers; n; n = n->next)
		if (n->mask & ev->type) {
			n->fn(n->opaque, ev);
			called++;
		}
	if (called)
		trace_core_notify(&dom->ctx->tr, dom->tag, ev->type, ev->iova,
				  ev->last, called);
}

/* __domain_teardown() - DESTROY event, then drop everything it holds. */
void __domain_teardown(struct viommu_domain *dom)
{
	const struct viommu_allocator *a = &dom->ctx->alloc;
	struct viommu_event ev = {
		.type = VIOMMU_EVENT_DESTROY, .domain = dom, .tag = dom->tag,
	};
	struct viommu_notifier *n;

	__notify(dom, &ev);
	/* Odd iseq until the store is gone: no filler keeps an old piece. */
	__inval_begin(dom, 0, UINT64_MAX);
	__iotlb_inval_scan(dom, 0, UINT64_MAX);
	ms_destroy(&dom->ms);
	__inval_end(dom);
	dirty_clear(&dom->dirty, a);
	WRITE_ONCE(dom->dirty_on, false);
	while ((n = dom->notifiers)) {
		dom->notifiers = n->next;
		xfree(a, n);
	}
	dom->nnotifiers = 0;
	xfree(a, dom->resv);
	dom->resv = NULL;
	dom->nresv = dom->resv_cap = 0;
	dom->attached = 0;
}

/* ------------------------------------------------------------------ */
/* Reserved-region union                                              */

int resv_union_reserve(struct viommu_domain *dom, uint32_t extra)
{
	const struct viommu_allocator *a = &dom->ctx->alloc;
	struct dom_resv *n, *old;
	uint32_t need, cap;

	pthread_mutex_lock(&dom->lock);
	need = dom->nresv + extra;
	cap = dom->resv_cap;
	pthread_mutex_unlock(&dom->lock);
	if (need <= cap)
		return 0;
	/* Only ctx->lock holders change nresv, and the caller holds it. */
	n = xalloc(a, (size_t)need * sizeof(*n));
	if (!n)
		return -ENOMEM;
	pthread_mutex_lock(&dom->lock);
	if (dom->nresv)
		memcpy(n, dom->resv, dom->nresv * sizeof(*n));
	old = dom->resv;
	dom->resv = n;
	dom->resv_cap = need;
	pthread_mutex_unlock(&dom->lock);
	xfree(a, old);
	return 0;
}

void __resv_union_add(struct viommu_domain *dom,
		      const struct viommu_endpoint *ep, uint32_t pasid)
{
	uint32_t i;

	for (i = 0; i < ep->nresv && dom->nresv < dom->resv_cap; i++) {
		struct dom_resv *d = &dom->resv[dom->nresv++];

		d->r = ep->resv[i];
		d->owner = ep;
		d->pasid = pasid;
	}
}

void __resv_union_del(struct viommu_domain *dom,
		      const struct viommu_endpoint *ep, uint32_t pasid)
{
	uint32_t i, j;

	for (i = j = 0; i < dom->nresv; i++)
		if (dom->resv[i].owner != ep || dom->resv[i].pasid != pasid)
			dom->resv[j++] = dom->resv[i];
	dom->nresv = j;
}

/* Whether any of @n regions overlaps a mapping of @dom: -EINVAL if so. */
int __domain_resv_conflict(struct viommu_domain *dom,
			   const struct viommu_resv *r, uint32_t n)
{
	struct ms_entry e;
	uint32_t i;

	for (i = 0; i < n; i++)
		if (!ms_first_overlap(&dom->ms, r[i].start, r[i].last, &e))
			return -EINVAL;
	return 0;
}

static bool __hits_resv(struct viommu_domain *dom, uint64_t iova,
			uint64_t last)
{
	uint32_t i;

	for (i = 0; i < dom->nresv; i++)
		if (ranges_overlap(iova, last, dom->resv[i].r.start,
				   dom->resv[i].r.last))
			return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* Map and unmap                                                      */

/*
 * budget_take() - reserve one mapping of the context-wide max_mappings.
 * The total lives in ctx->st_mappings and is shared by maps running under
 * different domain locks, so it is reserved with a compare-and-swap that
 * never lets it pass the cap; budget_put() gives units back.
 * Return: whether a unit was reserved.
 */
static bool budget_take(struct viommu_ctx *ctx)
{
	uint64_t n = __atomic_load_n(&ctx->st_mappings, __ATOMIC_RELAXED);

	do {
		if (n >= ctx->lim.max_mappings)
			return false;
	} while (!__atomic_compare_exchange_n(&ctx->st_mappings, &n, n + 1,
					      true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return true;
}

static void budget_put(struct viommu_ctx *ctx, uint64_t n)
{
	__atomic_fetch_sub(&ctx->st_mappings, n, __ATOMIC_RELAXED);
}

/* ms_bytes_moved() - account a change of @dom's store memory in ctx. */
static void ms_bytes_moved(struct viommu_domain *dom, uint64_t before)
{
	uint64_t now = dom->ms.host_bytes;

	if (now >= before)
		__atomic_fetch_add(&dom->ctx->st_ms_bytes, now - before,
				   __ATOMIC_RELAXED);
	else
		__atomic_fetch_sub(&dom->ctx->st_ms_bytes, before - now,
				   __ATOMIC_RELAXED);
}

VIOMMU_EXPORT int viommu_domain_map(struct viommu_domain *dom, uint64_t iova,
				    uint64_t last, uint64_t gpa, uint32_t prot)
{
	struct ms_entry e = { iova, last, gpa, prot };
	struct viommu_ctx *ctx;
	uint64_t before;
	int ret;

	if (!dom || iova > last || (prot & ~PROT_ALL) ||
	    gpa + (last - iova) < gpa)
		return -EINVAL;
	if (dom->kind != VIOMMU_DOMAIN_PAGING || !dom->alive)
		return -EOPNOTSUPP;
	ctx = dom->ctx;
	pthread_mutex_lock(&dom->lock);
	/* Re-check under the lock: a racing destroy tears the store down. */
	if (!dom->alive) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (dom->ms.count >= ctx->lim.max_mappings_per_domain) {
		rl_debug(&ctx->rl, &ctx->log, "domain %#llx: limit of %u mappings "
			 "reached", (unsigned long long)dom->tag,
			 ctx->lim.max_mappings_per_domain);
		ret = -ENOSPC;
		goto out;
	}
	if (__hits_resv(dom, iova, last)) {
		ret = -EADDRINUSE;
		goto out;
	}
	if (!budget_take(ctx)) {
		ATOMIC_INC(ctx->st_refused);
		log_debug(&ctx->log, "domain %#llx: context-wide limit of %u "
			  "mappings reached", (unsigned long long)dom->tag,
			  ctx->lim.max_mappings);
		ret = -ENOSPC;
		goto out;
	}
	before = dom->ms.host_bytes;
	ret = ms_insert(&dom->ms, &e);
	if (ret) {
		budget_put(ctx, 1);
		goto out;
	}
	ms_bytes_moved(dom, before);
	ATOMIC_INC(ctx->st_maps);
	if (dom->notifiers) {
		struct viommu_event ev = {
			.type = VIOMMU_EVENT_MAP, .prot = prot, .domain = dom,
			.tag = dom->tag, .iova = iova, .last = last,
			.gpa = gpa,
		};
		__notify(dom, &ev);
	}
out:
	trace_core_map(&ctx->tr, dom->tag, iova, last, gpa, prot, ret);
	pthread_mutex_unlock(&dom->lock);
	return ret;
}

/* Called by the store for each removed mapping, under dom->lock. */
static void unmapped_one(void *opaque, const struct ms_entry *e)
{
	struct viommu_domain *dom = opaque;

	__iotlb_inval_mappings(dom, e->start, e->last);
	if (dom->notifiers) {
		struct viommu_event ev = {
			.type = VIOMMU_EVENT_UNMAP, .prot = e->prot,
			.domain = dom, .tag = dom->tag, .iova = e->start,
			.last = e->last, .gpa = e->gpa,
		};
		__notify(dom, &ev);
	}
}

VIOMMU_EXPORT int viommu_domain_unmap(struct viommu_domain *dom, uint64_t iova,
				      uint64_t last, uint64_t *unmapped)
{
	uint64_t bytes = 0, before;
	long n;

	if (!dom || iova > last)
		return -EINVAL;
	if (dom->kind != VIOMMU_DOMAIN_PAGING || !dom->alive)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&dom->lock);
	/* Re-check under the lock: a racing destroy tears the store down. */
	before = dom->ms.host_bytes;
	/* Fillers racing this removal drop their pieces (see the top). */
	__inval_begin(dom, iova, last);
	n = dom->alive ? ms_remove_range(&dom->ms, iova, last, unmapped_one,
					 dom, &bytes)
		       : -EOPNOTSUPP;
	__inval_end(dom);
	if (n > 0) {
		/* Under the lock, as destroy subtracts what is left. */
		budget_put(dom->ctx, (uint64_t)n);
		ms_bytes_moved(dom, before);
	}
	pthread_mutex_unlock(&dom->lock);
	trace_core_unmap(&dom->ctx->tr, dom->tag, iova, last, bytes,
			 n < 0 ? (int)n : n == 0 ? -ENOENT : 0);
	if (n < 0)
		return (int)n;
	if (unmapped)
		*unmapped = bytes;
	if (n == 0)
		return -ENOENT;
	ATOMIC_INC(dom->ctx->st_unmaps);
	return 0;
}

VIOMMU_EXPORT int viommu_domain_invalidate(struct viommu_domain *dom,
					   uint64_t iova, uint64_t last)
{
	struct viommu_event ev = { .type = VIOMMU_EVENT_INVALIDATE };

	if (!dom || iova > last)
		return -EINVAL;
	pthread_mutex_lock(&dom->lock);
	trace_core_inval(&dom->ctx->tr, dom->tag, iova, last);
	__inval_begin(dom, iova, last);
	__iotlb_inval_scan(dom, iova, last);
	__inval_end(dom);
	ev.domain = dom;
	ev.tag = dom->tag;
	ev.iova = iova;
	ev.last = last;
	__notify(dom, &ev);
	pthread_mutex_unlock(&dom->lock);
	return 0;
}

VIOMMU_EXPORT int viommu_domain_invalidate_all(struct viommu_domain *dom)
{
	return viommu_domain_invalidate(dom, 0, UINT64_MAX);
}

/* ------------------------------------------------------------------ */
/* Queries                                                            */

struct walk_ctx {
	int (*fn)(void *opaque, const struct viommu_mapping *m);
	void *opaque;
};

static int walk_one(void *opaque, const struct ms_entry *e)
{
	struct walk_ctx *w = opaque;
	struct viommu_mapping m = { e->start, e->last, e->gpa, e->prot };

	return w->fn(w->opaque, &m);
}

VIOMMU_EXPORT int viommu_domain_for_each_mapping(
	struct viommu_domain *dom, uint64_t iova, uint64_t last,
	int (*fn)(void *opaque, const struct viommu_mapping *m), void *opaque)
{
	struct walk_ctx w = { fn, opaque };
	int ret;

	if (!dom || !fn || iova > last)
		return -EINVAL;
	if (dom->kind != VIOMMU_DOMAIN_PAGING)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&dom->lock);
	ret = ms_walk(&dom->ms, iova, last, walk_one, &w);
	pthread_mutex_unlock(&dom->lock);
	return ret;
}

VIOMMU_EXPORT int viommu_domain_info(struct viommu_domain *dom,
				     struct viommu_domain_info *out,
				     size_t size)
{
	struct viommu_domain_info info;

	if (!dom || !out || !size)
		return -EINVAL;
	memset(&info, 0, sizeof(info));
	pthread_mutex_lock(&dom->ctx->lock);
	info.endpoints = dom->attached;
	pthread_mutex_unlock(&dom->ctx->lock);
	pthread_mutex_lock(&dom->lock);
	info.kind = dom->kind;
	info.mappings = dom->ms.count;
	info.mapped_bytes = dom->ms.bytes;
	info.host_bytes = dom->ms.host_bytes;
	info.dirty_tracking = dom->dirty_on;
	pthread_mutex_unlock(&dom->lock);
	/* never write past what the caller has; what we lack reads as 0 */
	sized_out(out, size, &info, sizeof(info));
	return 0;
}

/* ------------------------------------------------------------------ */
/* Notifiers                                                          */

#define EVENT_ALL (VIOMMU_EVENT_MAP | VIOMMU_EVENT_UNMAP |                 \
		   VIOMMU_EVENT_INVALIDATE | VIOMMU_EVENT_ATTACH |         \
		   VIOMMU_EVENT_DETACH | VIOMMU_EVENT_DESTROY)

VIOMMU_EXPORT int viommu_notifier_add(struct viommu_domain *dom,
				      uint32_t mask, viommu_notify_fn fn,
				      void *opaque,
				      struct viommu_notifier **out)
{
	struct viommu_notifier *n;
	int ret = -ENOSPC;

	if (!dom || !fn || !out || !mask || (mask & ~EVENT_ALL))
		return -EINVAL;
	pthread_mutex_lock(&dom->lock);
	if (dom->nnotifiers >= dom->ctx->lim.max_notifiers_per_domain)
		goto out;
	ret = -ENOMEM;
	n = xzalloc(&dom->ctx->alloc, sizeof(*n));
	if (!n)
		goto out;
	n->dom = dom;
	n->mask = mask;
	n->fn = fn;
	n->opaque = opaque;
	n->next = dom->notifiers;
	dom->notifiers = n;
	dom->nnotifiers++;
	*out = n;
	ret = 0;
out:
	pthread_mutex_unlock(&dom->lock);
	return ret;
}

VIOMMU_EXPORT void viommu_notifier_remove(struct viommu_notifier *n)
{
	struct viommu_notifier **pp;
	struct viommu_domain *dom;

	if (!n)
		return;
	dom = n->dom;
	pthread_mutex_lock(&dom->lock);
	for (pp = &dom->notifiers; *pp && *pp != n; pp = &(*pp)->next)
		;
	if (*pp) {
		*pp = n->next;
		dom->nnotifiers--;
	}
	pthread_mutex_unlock(&dom->lock);
	xfree(&dom->ctx->alloc, n);
}
