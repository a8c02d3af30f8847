/*
 * translate.c - the hot path: (endpoint, PASID, IOVA, length, access) ->
 * (GPA, host pointer, contiguous length) or a fault.
 *
 * Fast path (no lock, no store to shared memory): read the endpoint's
 * seqcount, its domain, the IOTLB slot of the IOVA's page under the slot's
 * seqcount, the memory generation, and re-check both seqcounts.  Anything
 * unusual (odd seqcount, miss, permission problem, write with dirty
 * tracking on, NESTED or BLOCKED domain, stale generation) falls to the
 * slow path.
 *
 * Slow path: resolve the endpoint's domain, check reserved regions, then
 * resolve inside the domain.  Lock-free as a rule: the mapping store is
 * searched inside a read section of ctx->rcu (mapstore.c and pageidx.c,
 * "Lock-free readers") and the IOTLB filled under the iseq protocol (domain.c,
 * "Lock-free fills"), so threads missing at once do not serialise.  Under
 * dom->lock only when the store changed under the search MS_READ_TRIES
 * times in a row, and for writes while dirty tracking is on (marking
 * allocates).  Without ctx->lock the endpoint may be re-attached
 * meanwhile; the slow path therefore re-checks ep->seq at the end and
 * retries, and after a few retries takes ctx->lock, which excludes
 * attachment changes, so it always terminates.  Faults are reported after
 * every lock is dropped.
 */
#include "internal.h"
#include "fault.h"
#include "mem/mem_internal.h"

#include <errno.h>
#include <sched.h>

#define ACCESS_ALL (VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC)
#define SLOW_TRIES 8

/* A resolved piece: IOVAs [lo, hi] -> gpa.. / hva.. (hva may be NULL). */
struct piece {
	uint64_t lo, hi, gpa;
	uint8_t *hva;
	uint32_t perm, flags;
	uint64_t gen;
};

static void piece_out(const struct piece *p, uint64_t iova, size_t len,
		      struct viommu_xlate *out)
{
	uint64_t avail = p->hi - iova; /* bytes after the first, >= 0 */

	out->gpa = p->gpa + (iova - p->lo);
	out->hva = p->hva ? p->hva + (iova - p->lo) : NULL;
	out->len = avail >= (uint64_t)(len - 1) ? len : (size_t)(avail + 1);
	out->perm = p->perm;
	out->flags = p->flags;
}

/*
 * piece_for() - the piece of mapping [lo, hi] -> gpa containing @iova that
 * lies in one RAM region (with its host address) or in one hole (from
 * @iova up to the next RAM).  MMIO mappings have no host address.
 */
static void piece_for(struct viommu_ctx *ctx, uint64_t iova, uint64_t lo,
		      uint64_t hi, uint64_t gpa, uint32_t perm,
		      struct piece *p)
{
	uint64_t g = gpa + (iova - lo), glast = gpa + (hi - lo);
	struct mem_piece r;
	unsigned int tok;

	p->perm = perm;
	p->flags = 0;
	p->lo = lo;
	p->hi = hi;
	p->gpa = gpa;
	p->hva = NULL;
	tok = viommu_mem_read_lock(ctx->mem);
	/* Generation first: a piece is never newer than its tag. */
	p->gen = viommu_mem_generation(ctx->mem);
	if (perm & VIOMMU_MAP_MMIO) {
		/* device memory: no host pointer, whole mapping */
	} else if (!mem_find(ctx->mem, g, &r)) {
		uint64_t rlast = r.gpa + (r.size - 1);
		uint64_t plo = MAX(gpa, r.gpa), phi = MIN(glast, rlast);

		p->lo = lo + (plo - gpa);
		p->hi = lo + (phi - gpa);
		p->gpa = plo;
		/* an I/O region has no host address: hva stays NULL */
		p->hva = r.hva ? r.hva + (plo - r.gpa) : NULL;
		if (r.flags & VIOMMU_MEM_F_READONLY)
			p->perm &= ~VIOMMU_WRITE;
	} else {
		uint64_t next = mem_next_ram(ctx->mem, g);

		p->lo = iova;
		p->gpa = g;
		if (next != UINT64_MAX && next - 1 - g < hi - iova)
			p->hi = iova + (next - 1 - g);
	}
	viommu_mem_read_unlock(ctx->mem, tok);
}

/* Outcome of a slow-path resolution step. */
enum { RES_OK = 0, RES_RETRY = -1, /* > 0: enum viommu_fault_reason */
       RES_LOCK = -2 };             /* lock-free search gave up */

struct xreq {
	uint64_t iova;
	size_t len;
	unsigned int access;
	uint32_t pasid;
	bool fill; /* fill the IOTLB (translate) or not (lookup) */
};

static void __mark_dirty(struct viommu_domain *dom, uint64_t iova,
			 size_t len)
{
	dirty_mark(&dom->dirty, &dom->ctx->alloc, iova, iova + (len - 1));
}

/*
 * use_piece() - finish a resolution: check the access, fill *@out and
 * cache the piece (translate only).  @sn: inval_snap() taken before the
 * piece was looked up.  Return: RES_OK; VIOMMU_FAULT_PERMISSION.
 */
static int use_piece(struct viommu_domain *dom, const struct piece *p,
		     const struct xreq *rq, struct viommu_xlate *out,
		     const struct inval_snap *sn)
{
	if (rq->access & ~p->perm)
		return VIOMMU_FAULT_PERMISSION;
	piece_out(p, rq->iova, rq->len, out);
	if (rq->fill)
		iotlb_fill(dom, p->lo, p->hi, p->gpa, p->hva, p->perm,
			   p->flags, p->gen, rq->iova, sn);
	return RES_OK;
}

/* __use_piece() - use_piece() under dom->lock, marking dirty pages. */
static int __use_piece(struct viommu_domain *dom, const struct piece *p,
		       const struct xreq *rq, struct viommu_xlate *out)
{
	struct inval_snap sn;
	int ret;

	inval_snap(dom, &sn);
	ret = use_piece(dom, p, rq, out, &sn);

	if (!ret && (rq->access & VIOMMU_WRITE) && dom->dirty_on)
		__mark_dirty(dom, rq->iova, out->len);
	return ret;
}

/*
 * needs_lock() - whether @rq must be resolved under dom->lock: a write
 * while dirty tracking is on marks pages, which may allocate.  A write
 * that reads dirty_on just before it is enabled counts as earlier.
 */
static bool needs_lock(const struct viommu_domain *dom, const struct xreq *rq)
{
	return (rq->access & VIOMMU_WRITE) && READ_ONCE(dom->dirty_on);
}

/*
 * resolve_paging_rcu() - resolve_paging() without dom->lock.  Return as
 * resolve_paging(), or RES_LOCK when the store kept changing under the
 * search.
 */
static int resolve_paging_rcu(struct viommu_domain *dom,
			      const struct xreq *rq, struct viommu_xlate *out)
{
	struct viommu_ctx *ctx = dom->ctx;
	struct ms_entry e;
	struct piece p;
	struct inval_snap sn;
	uint32_t tok;
	int ret;

	tok = rcu_read_lock(&ctx->rcu);
	/*
	 * Before the search (its barrier is in inval_snap()): if it shows a
	 * finished unmap, the search cannot find what that unmap removed; if
	 * an unmap runs after it, the fill notices (domain.c, "Lock-free
	 * fills").
	 */
	inval_snap(dom, &sn);
	if (!READ_ONCE(dom->alive) ||
	    READ_ONCE(dom->kind) != VIOMMU_DOMAIN_PAGING) {
		ret = RES_RETRY;
	} else {
		ret = ms_lookup_rcu(&dom->ms, rq->iova, &e);
		ret = ret == -EAGAIN ? RES_LOCK :
		      ret ? VIOMMU_FAULT_NO_MAPPING : RES_OK;
	}
	/* @e is a copy: nothing of the store is used after this. */
	rcu_read_unlock(&ctx->rcu, tok);
	if (ret != RES_OK)
		return ret;
	piece_for(ctx, rq->iova, e.start, e.last, e.gpa, e.prot, &p);
	return use_piece(dom, &p, rq, out, &sn);
}

/*
 * resolve_paging() - look @rq up in a PAGING domain: lock-free unless
 * needs_lock() or the lock-free search gives up.
 */
static int resolve_paging(struct viommu_domain *dom, const struct xreq *rq,
			  struct viommu_xlate *out)
{
	struct ms_entry e;
	struct piece p;
	int ret;

	if (!needs_lock(dom, rq)) {
		ret = resolve_paging_rcu(dom, rq, out);
		if (ret != RES_LOCK)
			return ret;
	}
	pthread_mutex_lock(&dom->lock);
	if (!READ_ONCE(dom->alive) ||
	    READ_ONCE(dom->kind) != VIOMMU_DOMAIN_PAGING) {
		ret = RES_RETRY;
	} else if (ms_lookup(&dom->ms, rq->iova, &e)) {
		ret = VIOMMU_FAULT_NO_MAPPING;
	} else {
		piece_for(dom->ctx, rq->iova, e.start, e.last, e.gpa, e.prot,
			  &p);
		ret = __use_piece(dom, &p, rq, out);
	}
	pthread_mutex_unlock(&dom->lock);
	return ret;
}

/*
 * resolve_identity() - IOVA == GPA: lock-free (the piece depends on guest
 * memory only) unless needs_lock().
 */
static int resolve_identity(struct viommu_domain *dom, const struct xreq *rq,
			    struct viommu_xlate *out)
{
	struct piece p;
	struct inval_snap sn;
	int ret;

	if (!needs_lock(dom, rq)) {
		/* Before the piece is computed, as in resolve_paging_rcu(). */
		inval_snap(dom, &sn);
		piece_for(dom->ctx, rq->iova, 0, UINT64_MAX, 0, ACCESS_ALL,
			  &p);
		p.flags = VIOMMU_XLATE_BYPASS;
		return use_piece(dom, &p, rq, out, &sn);
	}
	pthread_mutex_lock(&dom->lock);
	piece_for(dom->ctx, rq->iova, 0, UINT64_MAX, 0, ACCESS_ALL, &p);
	p.flags = VIOMMU_XLATE_BYPASS;
	ret = __use_piece(dom, &p, rq, out);
	pthread_mutex_unlock(&dom->lock);
	return ret;
}

/*
 * resolve_nested() - stage 1 through the front end's ops (no lock held),
 * then stage 2 in the parent.  dom->inflight pins the ops and the parent
 * against a concurrent destroy.
 */
static int resolve_nested(struct viommu_domain *dom, const struct xreq *rq,
			  struct viommu_xlate *out)
{
	struct viommu_domain *parent;
	const struct viommu_stage1_ops *s1;
	struct xreq rq2 = *rq;
	uint64_t ipa, len1 = 0;
	uint32_t perm1 = 0;
	void *opaque;
	int ret;

	pthread_mutex_lock(&dom->lock);
	if (!READ_ONCE(dom->alive) ||
	    READ_ONCE(dom->kind) != VIOMMU_DOMAIN_NESTED) {
		pthread_mutex_unlock(&dom->lock);
		return RES_RETRY;
	}
	ATOMIC_INC(dom->inflight);
	parent = dom->parent;
	s1 = dom->s1;
	opaque = dom->s1_opaque;
	pthread_mutex_unlock(&dom->lock);

	ret = VIOMMU_FAULT_STAGE1;
	if (s1->translate(opaque, rq->pasid, rq->iova, rq->access, &ipa, &len1,
			  &perm1) || len1 == 0)
		goto out;
	ret = VIOMMU_FAULT_PERMISSION;
	if (rq->access & ~perm1)
		goto out;
	rq2.iova = ipa;
	rq2.fill = false;
	if (len1 < rq2.len)
		rq2.len = (size_t)len1;
	if (ipa + (rq2.len - 1) < ipa) /* stage-1 output wraps */
		rq2.len = (size_t)(UINT64_MAX - ipa) + 1;
	if (parent) {
		ret = resolve_paging(parent, &rq2, out);
		if (ret == RES_RETRY)
			ret = VIOMMU_FAULT_NO_MAPPING;
	} else {
		/* Stage 1 produced a GPA: only the RAM look-up is left. */
		struct piece p;

		piece_for(dom->ctx, ipa, ipa, ipa + (rq2.len - 1), ipa,
			  VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC, &p);
		piece_out(&p, ipa, rq2.len, out);
		ret = RES_OK;
	}
	out->perm &= perm1 | VIOMMU_MAP_MMIO;
out:
	__atomic_fetch_sub(&dom->inflight, 1, __ATOMIC_RELEASE);
	return ret;
}

/*
 * fault_deliver() - call the context's fault handler with @f.  The pair
 * (function, opaque) is read under its seqcount, so the two belong
 * together; the delivery is counted on the current epoch's side so that
 * viommu_ctx_set_fault_handler() can wait for it (internal.h).
 */
static void fault_deliver(struct viommu_ctx *ctx, const struct viommu_fault *f)
{
	void (*fn)(void *, const struct viommu_fault *);
	unsigned int side;
	uint32_t s;
	void *op;

	side = __atomic_load_n(&ctx->fault_epoch, __ATOMIC_RELAXED) & 1;
	/*
	 * seq_cst: either the setter's check of this side sees the count,
	 * or this increment comes after it in the total order, and then the
	 * pair read below is already the new one (the setter published it
	 * before flipping the epoch).
	 */
	__atomic_fetch_add(&ctx->fault_active[side], 1, __ATOMIC_SEQ_CST);
	for (;;) {
		s = __atomic_load_n(&ctx->fault_seq, __ATOMIC_ACQUIRE);
		fn = __atomic_load_n(&ctx->fault_fn, __ATOMIC_RELAXED);
		op = __atomic_load_n(&ctx->fault_opaque, __ATOMIC_RELAXED);
		/* the pair's loads before the re-check of the count */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (!(s & 1) &&
		    __atomic_load_n(&ctx->fault_seq, __ATOMIC_RELAXED) == s)
			break;
		sched_yield(); /* a setter is mid-write: two stores away */
	}
	if (fn)
		fn(op, f);
	trace_core_fault(&ctx->tr, f->reason, f->access, f->endpoint, f->pasid,
			 f->address, fn != NULL);
	/* release: the handler's work happens before the setter's return */
	__atomic_fetch_sub(&ctx->fault_active[side], 1, __ATOMIC_RELEASE);
}

/* Reserved region of @ep containing @iova, or NULL (seq-protected read). */
static const struct viommu_resv *ep_resv(const struct viommu_endpoint *ep,
					 uint64_t iova)
{
	uint32_t i, n = READ_ONCE(ep->nresv);

	for (i = 0; i < n && i < ep->ctx->lim.max_resv_per_endpoint; i++)
		if (iova >= ep->resv[i].start && iova <= ep->resv[i].last)
			return &ep->resv[i];
	return NULL;
}

static int resolve_msi(const struct viommu_resv *r, const struct xreq *rq,
		       struct viommu_xlate *out)
{
	/* A doorbell, not memory: identity address, no host pointer. */
	struct piece p = {
		.lo = r->start, .hi = r->last, .gpa = r->start,
		.perm = VIOMMU_READ | VIOMMU_WRITE, .flags = VIOMMU_XLATE_MSI,
	};

	piece_out(&p, rq->iova, rq->len, out);
	return RES_OK;
}

static struct viommu_domain *ep_domain(const struct viommu_endpoint *ep,
				       uint32_t pasid)
{
	uint32_t i;

	if (pasid == VIOMMU_NO_PASID)
		return READ_ONCE(ep->dom);
	for (i = 0; i < ep->ctx->lim.max_pasids_per_endpoint; i++) {
		struct viommu_domain *d = READ_ONCE(ep->pasids[i].dom);

		if (d && READ_ONCE(ep->pasids[i].pasid) == pasid)
			return d;
	}
	return NULL;
}

/* resolve_ep() - one slow-path attempt; *tag gets the domain's tag. */
static int resolve_ep(struct viommu_endpoint *ep, const struct xreq *rq,
		      struct viommu_xlate *out, uint64_t *tag)
{
	struct viommu_ctx *ctx = ep->ctx;
	struct viommu_domain *dom = ep_domain(ep, rq->pasid);
	const struct viommu_resv *r;
	enum viommu_domain_kind kind;

	if (!dom) {
		if (rq->pasid != VIOMMU_NO_PASID)
			return VIOMMU_FAULT_NO_PASID;
		if (!__atomic_load_n(&ctx->bypass, __ATOMIC_ACQUIRE))
			return VIOMMU_FAULT_UNATTACHED;
		return resolve_identity(ctx->identity, rq, out);
	}
	*tag = READ_ONCE(dom->tag);
	kind = READ_ONCE(dom->kind);
	if (kind == VIOMMU_DOMAIN_BLOCKED)
		return VIOMMU_FAULT_BLOCKED;
	if (kind == VIOMMU_DOMAIN_IDENTITY)
		return resolve_identity(dom, rq, out);
	r = ep_resv(ep, rq->iova);
	if (r && r->type == VIOMMU_RESV_MSI)
		return resolve_msi(r, rq, out);
	if (r)
		return VIOMMU_FAULT_RESERVED;
	if (kind == VIOMMU_DOMAIN_NESTED)
		return resolve_nested(dom, rq, out);
	return resolve_paging(dom, rq, out);
}

static int report_fault(struct viommu_endpoint *ep, const struct xreq *rq,
			uint32_t reason, uint64_t tag,
			struct viommu_fault *fault)
{
	struct viommu_ctx *ctx = ep->ctx;
	struct viommu_fault f = {
		.reason = reason, .access = rq->access, .endpoint = ep->id,
		.pasid = rq->pasid, .address = rq->iova, .domain_tag = tag,
	};

	ATOMIC_INC(ctx->st_faults);
	rl_debug(&ctx->rl, &ctx->log, "fault: endpoint %#x pasid %#x iova %#llx "
		  "access %#x: %s", ep->id, rq->pasid,
		  (unsigned long long)rq->iova, rq->access,
		  viommu_fault_reason_str(reason));
	if (fault)
		*fault = f;
	fault_deliver(ctx, &f);
	return -EFAULT;
}

int core_report_fault(struct viommu_endpoint *ep, uint32_t pasid,
		      uint64_t iova, unsigned int access, uint32_t reason,
		      struct viommu_fault *out)
{
	struct xreq rq = { iova, 1, access, pasid, true };
	struct viommu_domain *dom = READ_ONCE(ep->dom);

	/* Domains are type-stable (never freed before the context): a racy
	 * read of a re-attached endpoint's old domain only mislabels the tag. */
	return report_fault(ep, &rq, reason, dom ? READ_ONCE(dom->tag) : 0,
			    out);
}

static int translate_slow(struct viommu_endpoint *ep, const struct xreq *rq,
			  struct viommu_xlate *out, struct viommu_fault *fault)
{
	struct viommu_ctx *ctx = ep->ctx;
	uint64_t tag = 0;
	int tries, ret;

	ATOMIC_INC(ctx->st_misses[rcu_stripe_of()].n);
	trace_core_miss(&ctx->tr, ep->id, rq->pasid, rq->iova, rq->access);
	for (tries = 0;; tries++) {
		uint32_t s;

		if (tries >= SLOW_TRIES) {
			/* ctx->lock excludes every attachment change. */
			pthread_mutex_lock(&ctx->lock);
			ret = resolve_ep(ep, rq, out, &tag);
			pthread_mutex_unlock(&ctx->lock);
			if (ret != RES_RETRY)
				break;
			continue;
		}
		s = LOAD_ACQUIRE(ep->seq);
		if (s & 1) {
			sched_yield();
			continue;
		}
		ret = resolve_ep(ep, rq, out, &tag);
		/* Order the reads above before the re-check. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (ret != RES_RETRY && READ_ONCE(ep->seq) == s)
			break;
	}
	if (ret > 0)
		return report_fault(ep, rq, (uint32_t)ret, tag, fault);
	return 0;
}

/*
 * slot_hit() - a consistent copy of @sl into *@p (its seqcount unchanged
 * across the reads) that is valid and covers @iova for @access.  Ends with
 * an acquire fence, so the caller's re-checks are ordered after the reads.
 */
static inline bool slot_hit(const struct iotlb_slot *sl, uint64_t iova,
			    unsigned int access, struct piece *p)
{
	uint32_t ss = LOAD_ACQUIRE(sl->seq);

	if (ss & 1)
		return false;
	p->perm = READ_ONCE(sl->perm);
	p->lo = READ_ONCE(sl->lo);
	p->hi = READ_ONCE(sl->hi);
	p->gpa = READ_ONCE(sl->gpa);
	p->hva = READ_ONCE(sl->hva);
	p->flags = READ_ONCE(sl->flags);
	p->gen = READ_ONCE(sl->gen);
	/* Order the slot reads before the re-checks. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return READ_ONCE(sl->seq) == ss && (p->perm & SLOT_VALID) &&
	       iova >= p->lo && iova <= p->hi && !(access & ~p->perm);
}

/*
 * try_hit() - the lock-free IOTLB-hit path.  True with *out filled, or
 * false to take the slow path.  Reads only; see the seqcount rules in
 * internal.h.
 */
static inline bool try_hit(struct viommu_endpoint *ep, uint32_t pasid,
			   uint64_t iova, size_t len, unsigned int access,
			   struct viommu_xlate *out)
{
	struct viommu_ctx *ctx = ep->ctx;
	struct viommu_domain *dom;
	struct piece p;
	uint32_t s, kind;

	s = LOAD_ACQUIRE(ep->seq);
	if (s & 1)
		return false;
	dom = ep_domain(ep, pasid);
	if (!dom) {
		if (pasid != VIOMMU_NO_PASID ||
		    !__atomic_load_n(&ctx->bypass, __ATOMIC_ACQUIRE))
			return false;
		dom = ctx->identity;
	}
	kind = READ_ONCE(dom->kind);
	if (kind != VIOMMU_DOMAIN_PAGING && kind != VIOMMU_DOMAIN_IDENTITY)
		return false;
	if ((access & VIOMMU_WRITE) && READ_ONCE(dom->dirty_on))
		return false;
	if (!slot_hit(iotlb_page_slot(dom, iova), iova, access, &p) &&
	    !slot_hit(iotlb_block_slot(dom, iova), iova, access, &p))
		return false;
	/* After slot_hit()'s fence: the domain did not change meanwhile. */
	if (READ_ONCE(ep->seq) != s ||
	    p.gen != viommu_mem_generation(ctx->mem))
		return false;
	p.perm &= ~SLOT_VALID;
	piece_out(&p, iova, len, out);
	return true;
}

VIOMMU_EXPORT int viommu_translate(struct viommu_endpoint *ep, uint32_t pasid,
				   uint64_t iova, size_t len,
				   unsigned int access,
				   struct viommu_xlate *out,
				   struct viommu_fault *fault)
{
	struct xreq rq = { iova, len, access, pasid, true };

	if (unlikely(!ep || !out || !len || !access || (access & ~ACCESS_ALL) ||
		     !pasid_ok(pasid)))
		return -EINVAL;
	if (likely(try_hit(ep, pasid, iova, len, access, out)))
		return 0;
	return translate_slow(ep, &rq, out, fault);
}

VIOMMU_EXPORT int viommu_domain_lookup(struct viommu_domain *dom,
				       uint64_t iova, size_t len,
				       unsigned int access,
				       struct viommu_xlate *out)
{
	struct xreq rq = { iova, len, access, VIOMMU_NO_PASID, false };
	int ret;

	if (!dom || !out || !len || !access || (access & ~ACCESS_ALL))
		return -EINVAL;
	switch (dom->kind) {
	case VIOMMU_DOMAIN_IDENTITY:
		ret = resolve_identity(dom, &rq, out);
		break;
	case VIOMMU_DOMAIN_PAGING:
		ret = resolve_paging(dom, &rq, out);
		break;
	case VIOMMU_DOMAIN_NESTED:
		ret = resolve_nested(dom, &rq, out);
		break;
	default:
		ret = VIOMMU_FAULT_BLOCKED;
		break;
	}
	if (ret == VIOMMU_FAULT_PERMISSION)
		return -EACCES;
	return ret ? -EFAULT : 0;
}

/* dma() - translate and copy piece by piece inside one read section. */
static int dma(struct viommu_endpoint *ep, uint32_t pasid, uint64_t iova,
	       uint8_t *buf, size_t len, unsigned int access)
{
	struct viommu_mem *mem;
	unsigned int tok;
	uint64_t last;
	int ret = 0;

	if (!ep || (!buf && len) || !pasid_ok(pasid))
		return -EINVAL;
	if (!len)
		return 0;
	if (!range_last(iova, len, &last))
		return -EFAULT;
	mem = ep->ctx->mem;
	tok = viommu_mem_read_lock(mem);
	while (len) {
		struct viommu_xlate x;

		ret = viommu_translate(ep, pasid, iova, len, access, &x, NULL);
		if (ret)
			break;
		if (!x.hva) {
			/* RAM without a host address (an I/O region)? */
			ret = (x.perm & VIOMMU_MAP_MMIO) ||
			      (x.flags & VIOMMU_XLATE_MSI) ? -EFAULT :
			      mem_access_in(mem, x.gpa, buf, x.len,
					    access == VIOMMU_WRITE);
			if (ret) {
				ret = -EFAULT;
				break;
			}
		} else if (access == VIOMMU_WRITE) {
			memcpy(x.hva, buf, x.len);
		} else {
			memcpy(buf, x.hva, x.len);
		}
		buf += x.len;
		len -= x.len;
		iova += x.len;
	}
	viommu_mem_read_unlock(mem, tok);
	return ret;
}

VIOMMU_EXPORT int viommu_dma_read(struct viommu_endpoint *ep, uint32_t pasid,
				  uint64_t iova, void *buf, size_t len)
{
	return dma(ep, pasid, iova, buf, len, VIOMMU_READ);
}

VIOMMU_EXPORT int viommu_dma_write(struct viommu_endpoint *ep, uint32_t pasid,
				   uint64_t iova, const void *buf, size_t len)
{
	return dma(ep, pasid, iova, (uint8_t *)buf, len, VIOMMU_WRITE);
}
