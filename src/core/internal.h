/*
 * internal.h - the translation core's private structures.
 *
 * Locking
 *  - ctx->lock (a mutex) guards the endpoint table, the domain lists, every
 *    attachment and every reserved-region change.
 *  - dom->lock (a mutex) guards a domain's mapping store, its IOTLB writers,
 *    its notifiers, its dirty state and its reserved-region union.
 *  - Order: ctx->lock before dom->lock.  Only a thread holding ctx->lock may
 *    hold two domain locks at once (attach moves an endpoint between two
 *    domains), so domain locks never deadlock among themselves.
 *  - Functions named __name expect the caller to hold the lock they touch.
 *
 * Logging: refusals that are returned to the caller as an errno are logged
 * at DEBUG only; the front end that decodes guest input logs the one WARN
 * line per bad request.
 *
 * Lock-free readers (translate: the IOTLB-hit path and the miss path)
 *  - ep->seq is a seqcount over ep->dom, ep->pasids[] and ep->resv[]:
 *    writers (holding ctx->lock) make it odd, change, make it even.
 *  - Each IOTLB slot has its own seqcount, which is also its writer lock
 *    (taken by compare-and-swap): slots are filled by lock-free misses and
 *    by dom->lock holders, and invalidated by dom->lock holders inside
 *    dom->iseq (domain.c, "Lock-free fills").
 *  - The miss path searches the mapping store without dom->lock, inside a
 *    read section of ctx->rcu (mapstore.c, pageidx.c, "Lock-free
 *    readers"); store
 *    nodes are freed only after a grace period (rcu.h states the rule).
 *    It falls back to dom->lock when the store keeps changing under it,
 *    and for writes while dirty tracking is on (dirty marking allocates).
 *  - Domain structures are type-stable: a destroyed domain is kept on the
 *    context's free list (mutex and IOTLB array intact) and reused, never
 *    freed before the context, so a reader holding a stale domain pointer
 *    reads valid memory and then fails its ep->seq re-check.  Slot
 *    seqcounts, dom->iseq and the store's version only grow, across reuse
 *    too.
 */
#ifndef VIOMMU_CORE_INTERNAL_H
#define VIOMMU_CORE_INTERNAL_H

#include <viommu/core.h>
#include <pthread.h>

#include "mapstore.h"
#include "base/trace.h"
#include "base/util.h"
#include "core/rcu.h"
#include "dirty.h"

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ull << PAGE_SHIFT)

/* Bit in iotlb_slot.perm marking a valid slot. */
#define SLOT_VALID (1u << 31)

/*
 * Block slots: besides the per-page slots, each domain has BLOCK_SLOTS
 * slots indexed by 2 MiB block of IOVA, for pieces that cover a whole
 * aligned block (domain.c, "IOTLB").
 */
#define BLOCK_SHIFT 21
#define BLOCK_SLOTS_LOG2 5
#define BLOCK_SLOTS (1u << BLOCK_SLOTS_LOG2)

/*
 * block_index() - the block slot of @iova.  A multiplicative hash of the
 * block number: large mappings usually start on round IOVAs (1 GiB apart,
 * say), which the low bits alone would send to the same slot.
 */
static inline uint32_t block_index(uint64_t iova)
{
	return (uint32_t)(((iova >> BLOCK_SHIFT) * 0x9e3779b97f4a7c15ull) >>
			  (64 - BLOCK_SLOTS_LOG2));
}

/*
 * struct iotlb_slot - one cached translation piece: IOVAs [lo, hi] map
 * contiguously to gpa.. and (if hva) to hva.. in one memory generation.
 */
struct iotlb_slot {
	uint32_t seq;   /* even: stable, odd: being written */
	uint32_t perm;  /* VIOMMU_READ/WRITE/EXEC/MAP_MMIO | SLOT_VALID */
	uint32_t flags; /* VIOMMU_XLATE_* */
	uint32_t pad;
	uint64_t gen;   /* viommu_mem_generation() when filled */
	uint64_t lo, hi;
	uint64_t gpa;
	uint8_t *hva;
} __attribute__((aligned(64)));

/* A reserved region of the union kept per domain, tagged by its owner. */
struct dom_resv {
	struct viommu_resv r;
	const struct viommu_endpoint *owner;
	uint32_t pasid;
};

struct viommu_notifier {
	struct viommu_notifier *next;
	struct viommu_domain *dom;
	uint32_t mask;
	viommu_notify_fn fn;
	void *opaque;
};

struct viommu_domain {
	/*
	 * What an IOTLB hit reads (translate.c, try_hit()) comes first, in
	 * bytes [0, 24), and everything a map or unmap writes (lock, iseq,
	 * inval_*, the store) starts at least 64 bytes after it: with the
	 * allocator's 16-byte alignment the two never share a cache line, so
	 * a mapper on another CPU does not take the line a translator's hit
	 * reads.  Between them: fields written only by create, attach,
	 * destroy or a notifier's registration.
	 */
	struct viommu_ctx *ctx;
	enum viommu_domain_kind kind;
	bool is_static;
	bool alive;
	/* dirty tracking: dirty_on written with dom->lock held, also read
	 * lock-free; the map itself below */
	bool dirty_on;
	struct iotlb_slot *iotlb; /* ctx->iotlb_mask + 1 page slots, then
				   * BLOCK_SLOTS block slots; type-stable,
				   * cache-line aligned inside iotlb_mem */
	void *iotlb_mem;
	uint64_t tag;

	/* NESTED */
	struct viommu_domain *parent;
	const struct viommu_stage1_ops *s1;
	void *s1_opaque;

	struct viommu_notifier *notifiers;
	uint32_t nnotifiers;

	/* attachments (ctx->lock) */
	uint32_t attached;
	uint32_t children; /* NESTED domains using this one as parent */

	/* reserved-region union of attached endpoints (dom->lock to read,
	 * both locks to write) */
	uint32_t nresv, resv_cap;
	struct dom_resv *resv;

	/* written by maps and unmaps, from here on */
	pthread_mutex_t lock;
	uint32_t iseq; /* invalidations: odd while one runs (domain.c);
			* keeps counting across reuse */
	uint32_t inflight; /* NESTED: slow-path translations using s1
			    * (atomic) */
	uint64_t inval_lo, inval_hi; /* IOVAs of the one running or last */
	struct dirty_map dirty;

	/* PAGING */
	struct mapstore ms;

	/* ctx lists (ctx->lock) */
	struct viommu_domain *next, *prev;
};

/* The separation described above, checked where it can be. */
_Static_assert(offsetof(struct viommu_domain, lock) >=
		       offsetof(struct viommu_domain, iotlb) +
			       sizeof(void *) + 64,
	       "IOTLB-hit fields must stay 64 bytes from the mapper's");

struct ep_pasid {
	uint32_t pasid;
	struct viommu_domain *dom; /* NULL: free slot */
};

struct viommu_endpoint {
	struct viommu_ctx *ctx;
	uint32_t id;
	uint32_t seq;              /* seqcount, see top */
	struct viommu_domain *dom; /* RID attachment, NULL if none */
	struct ep_pasid *pasids;   /* ctx->lim.max_pasids_per_endpoint */
	struct viommu_resv *resv;  /* sorted by start */
	uint32_t nresv;
	struct viommu_endpoint *hnext; /* hash chain (ctx->lock) */
};

struct viommu_ctx {
	struct viommu_mem *mem;
	struct viommu_limits lim;
	struct viommu_log log;
	struct ratelimit rl; /* log lines callers (guests) can trigger */
	struct viommu_allocator alloc;
	/*
	 * The fault handler: a pair published under a seqcount (fault_seq,
	 * odd while a setter writes it), so a delivery never calls one
	 * handler's function with another's opaque; deliveries count
	 * themselves in fault_active[fault_epoch & 1], and a setter flips
	 * the epoch and waits for the old side to drain, so that once it
	 * returns no delivery to the old handler is running (translate.c,
	 * fault_deliver(); ctx.c, viommu_ctx_set_fault_handler()).
	 */
	void (*fault_fn)(void *opaque, const struct viommu_fault *f);
	void *fault_opaque;
	uint32_t fault_seq;
	uint32_t fault_epoch;
	uint32_t fault_active[2];
	pthread_mutex_t fault_set_lock; /* serialises the setters */
	int bypass; /* atomic */
	uint32_t iotlb_mask;

	pthread_mutex_t lock;
	struct viommu_domain *identity, *blocked;
	struct viommu_domain *domains; /* live PAGING + NESTED */
	struct viommu_domain *pool;    /* destroyed, for reuse */
	uint32_t ndomains;

	struct viommu_endpoint **ep_hash;
	uint32_t ep_hash_mask;
	uint32_t nendpoints;

	/*
	 * statistics (relaxed atomics).  st_mappings is also the budget of
	 * lim.max_mappings: map reserves a unit with a compare-and-swap
	 * before inserting (domain.c, budget_take), so racing maps on
	 * different domains can never take the total past the cap.
	 */
	uint64_t st_mappings, st_faults, st_maps, st_unmaps;
	uint64_t st_refused, st_ms_bytes;
	/*
	 * IOTLB misses, counted per CPU stripe (rcu_stripe_of()) so threads
	 * missing at once do not bounce one line; 128 bytes apart.
	 */
	struct {
		uint64_t n;
		uint64_t pad[15];
	} st_misses[RCU_STRIPES];

	/* grace periods for lock-free mapping-store readers (translate.c) */
	struct rcu rcu;
	/* the page indexes' context-wide memory rule (core/pageidx.c) */
	struct pi_pool pi_pool;

	/* typed trace points (viommu_ctx_set_trace_sink(), fault_set_lock) */
	struct trace tr;
};

/*
 * IOTLB slots of @dom (domain.c, "IOTLB"): the page slot of @iova, the
 * first block slot, and the block slot of @iova.
 */
static inline struct iotlb_slot *iotlb_page_slot(struct viommu_domain *dom,
						 uint64_t iova)
{
	return &dom->iotlb[(iova >> PAGE_SHIFT) & dom->ctx->iotlb_mask];
}

static inline struct iotlb_slot *iotlb_block_slots(struct viommu_domain *dom)
{
	return &dom->iotlb[dom->ctx->iotlb_mask + 1];
}

static inline struct iotlb_slot *iotlb_block_slot(struct viommu_domain *dom,
						  uint64_t iova)
{
	return &iotlb_block_slots(dom)[block_index(iova)];
}

/* ctx.c */
struct viommu_domain *domain_alloc(struct viommu_ctx *ctx);
void domain_release(struct viommu_domain *dom);
void domain_free_struct(struct viommu_ctx *ctx, struct viommu_domain *dom);

/* domain.c */

/* What a filler saw of dom's invalidations before its look-up. */
struct inval_snap {
	uint32_t seq;
	uint64_t lo, hi;
};

/*
 * inval_snap() - read dom->iseq and the range of the invalidation it
 * names, before looking a piece up (domain.c, "Lock-free fills").
 */
void inval_snap(struct viommu_domain *dom, struct inval_snap *sn);

/*
 * iotlb_fill() - cache a piece in @dom's IOTLB, with or without dom->lock.
 * @sn was taken before the piece was looked up; the fill is skipped or
 * undone if an invalidation that may cover the piece ran meanwhile.
 */
void iotlb_fill(struct viommu_domain *dom, uint64_t lo, uint64_t hi,
		uint64_t gpa, uint8_t *hva, uint32_t perm, uint32_t flags,
		uint64_t gen, uint64_t at, const struct inval_snap *sn);
/*
 * Bracket every store removal and IOTLB invalidation (dom->lock held);
 * [lo, hi] holds every IOVA whose translation may change.
 */
void __inval_begin(struct viommu_domain *dom, uint64_t lo, uint64_t hi);
void __inval_end(struct viommu_domain *dom);
void __iotlb_inval_all(struct viommu_domain *dom);
void __notify(struct viommu_domain *dom, const struct viommu_event *ev);
void __domain_teardown(struct viommu_domain *dom);
int resv_union_reserve(struct viommu_domain *dom, uint32_t extra);
void __resv_union_add(struct viommu_domain *dom,
		      const struct viommu_endpoint *ep, uint32_t pasid);
void __resv_union_del(struct viommu_domain *dom,
		      const struct viommu_endpoint *ep, uint32_t pasid);
int __domain_resv_conflict(struct viommu_domain *dom,
			   const struct viommu_resv *r, uint32_t n);

static inline bool pasid_ok(uint32_t pasid)
{
	return pasid == VIOMMU_NO_PASID || pasid <= VIOMMU_PASID_MAX;
}

/* Seqcount writer helpers: the caller holds the lock serialising writers. */
static inline void seq_write_begin(uint32_t *seq)
{
	WRITE_ONCE(*seq, *seq + 1);
	/* Order the odd count before the data stores that follow. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void seq_write_end(uint32_t *seq)
{
	/* Publish the data stores before the even count. */
	STORE_RELEASE(*seq, *seq + 1);
}

#endif /* VIOMMU_CORE_INTERNAL_H */
