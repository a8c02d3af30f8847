/*
 * ctx.c - the context: limits, the static IDENTITY and BLOCKED domains,
 * the pool of domain structures, domain creation and destruction, and
 * statistics.
 *
 * Domain structures are type-stable (see internal.h): a destroyed domain
 * goes to ctx->pool with its mutex and IOTLB array intact and is reused by
 * the next creation; memory is returned only when the context dies.  The
 * pool never holds more than the peak number of live domains, which the
 * max_domains limit bounds.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>

static const struct viommu_limits default_limits = {
	.max_domains = 1024,
	.max_endpoints = 4096,
	.max_mappings_per_domain = 1u << 20,
	.max_pasids_per_endpoint = 8,
	.max_resv_per_endpoint = 16,
	.max_notifiers_per_domain = 16,
	.iotlb_entries = 256,
	.max_dirty_chunks = 65536,
	.max_mappings = 1u << 22,
};

#define FILL(f)                                                       \
	do {                                                          \
		if (!out->f)                                          \
			out->f = default_limits.f;                    \
	} while (0)

static void limits_fill(struct viommu_limits *out,
			const struct viommu_limits *in)
{
	*out = *in;
	FILL(max_domains);
	FILL(max_endpoints);
	FILL(max_mappings_per_domain);
	FILL(max_pasids_per_endpoint);
	FILL(max_resv_per_endpoint);
	FILL(max_notifiers_per_domain);
	FILL(iotlb_entries);
	FILL(max_dirty_chunks);
	FILL(max_mappings);
}

/*
 * The layout a @size of 0 stands for: the first one with a size field
 * (the one before it had no @size at all; see docs/API.md).
 */
#define CTX_CONFIG_SIZE_V1 \
	(offsetof(struct viommu_ctx_config, bypass_unattached) + sizeof(bool))

/*
 * config_copy() - the caller's config as this library knows it: its first
 * @size bytes, the rest 0.  Return: false when @size is larger than we
 * know and the bytes past what we know are not all zero (the caller asks
 * for something this library cannot do).
 */
static bool config_copy(const struct viommu_ctx_config *user,
			struct viommu_ctx_config *out)
{
	return sized_in(out, sizeof(*out), user,
			user->size ? user->size : CTX_CONFIG_SIZE_V1);
}

/* limits_known() - no reserved word set (a limit this library lacks). */
static bool limits_known(const struct viommu_limits *l)
{
	for (size_t i = 0; i < ARRAY_SIZE(l->reserved); i++)
		if (l->reserved[i])
			return false;
	return true;
}

/* domain_alloc() - a zeroed domain from the pool or fresh memory. */
struct viommu_domain *domain_alloc(struct viommu_ctx *ctx)
{
	struct viommu_domain *dom = ctx->pool;
	size_t nslots = (size_t)ctx->iotlb_mask + 1 + BLOCK_SLOTS;

	if (dom) {
		ctx->pool = dom->next;
		dom->next = NULL;
		return dom;
	}
	dom = xzalloc(&ctx->alloc, sizeof(*dom));
	if (!dom)
		return NULL;
	/* The allocator guarantees malloc alignment only: align by hand. */
	dom->iotlb_mem = xzalloc(&ctx->alloc,
				 nslots * sizeof(*dom->iotlb) + 63);
	if (!dom->iotlb_mem) {
		xfree(&ctx->alloc, dom);
		return NULL;
	}
	dom->iotlb = (struct iotlb_slot *)(((uintptr_t)dom->iotlb_mem + 63) &
					   ~(uintptr_t)63);
	pthread_mutex_init(&dom->lock, NULL);
	dom->ctx = ctx;
	return dom;
}

/*
 * domain_release() - put a torn-down domain back in the pool.  Fields that
 * lock-free readers may still look at (iotlb, lock, slot seqcounts) stay.
 */
void domain_release(struct viommu_domain *dom)
{
	struct viommu_ctx *ctx = dom->ctx;

	/* Lock-free readers may still look at these: relaxed atomics. */
	WRITE_ONCE(dom->alive, false);
	WRITE_ONCE(dom->kind, VIOMMU_DOMAIN_BLOCKED);
	WRITE_ONCE(dom->tag, 0);
	dom->parent = NULL;
	dom->s1 = NULL;
	dom->s1_opaque = NULL;
	dom->prev = NULL;
	dom->next = ctx->pool;
	ctx->pool = dom;
}

void domain_free_struct(struct viommu_ctx *ctx, struct viommu_domain *dom)
{
	pthread_mutex_destroy(&dom->lock);
	xfree(&ctx->alloc, dom->iotlb_mem);
	xfree(&ctx->alloc, dom);
}

static struct viommu_domain *static_domain(struct viommu_ctx *ctx,
					   enum viommu_domain_kind kind)
{
	struct viommu_domain *dom = domain_alloc(ctx);

	if (!dom)
		return NULL;
	dom->kind = kind;
	dom->is_static = true;
	dom->alive = true;
	ms_reinit(&dom->ms, &ctx->alloc, &ctx->rcu);
	ms_share_pool(&dom->ms, &ctx->pi_pool);
	dirty_init(&dom->dirty, 0);
	return dom;
}

VIOMMU_EXPORT int viommu_ctx_create(const struct viommu_ctx_config *user,
				    struct viommu_ctx **out)
{
	struct viommu_ctx_config c, *cfg = &c;
	struct viommu_limits lim;
	struct viommu_ctx *ctx;
	uint32_t nb;

	if (!user || !out || !config_copy(user, &c) || !cfg->mem)
		return -EINVAL;
	if (!limits_known(&cfg->limits)) {
		log_warn(&cfg->log, "ctx: a limits.reserved word is set (a "
			 "limit this library does not know)");
		return -EINVAL;
	}
	limits_fill(&lim, &cfg->limits);
	if (lim.iotlb_entries & (lim.iotlb_entries - 1) ||
	    lim.iotlb_entries > 65536) {
		log_warn(&cfg->log, "ctx: iotlb_entries %u is not a power of "
			 "two <= 65536", lim.iotlb_entries);
		return -EINVAL;
	}
	ctx = xzalloc(&cfg->allocator, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->mem = cfg->mem;
	ctx->lim = lim;
	ctx->log = cfg->log;
	ctx->alloc = cfg->allocator;
	ctx->fault_fn = cfg->fault;
	ctx->fault_opaque = cfg->fault_opaque;
	ctx->bypass = cfg->bypass_unattached;
	ctx->iotlb_mask = lim.iotlb_entries - 1;
	pthread_mutex_init(&ctx->lock, NULL);
	pthread_mutex_init(&ctx->fault_set_lock, NULL);
	rcu_init(&ctx->rcu);
	ctx->pi_pool.slack = PI_POOL_SLACK_DEFAULT;
	ctx->pi_pool.entries = &ctx->st_mappings;

	/* Endpoint hash: about four endpoints per bucket at the limit. */
	for (nb = 64; nb < lim.max_endpoints / 4 && nb < (1u << 16); nb <<= 1)
		;
	ctx->ep_hash = xzalloc(&ctx->alloc, nb * sizeof(*ctx->ep_hash));
	ctx->ep_hash_mask = nb - 1;
	ctx->identity = ctx->ep_hash ?
		static_domain(ctx, VIOMMU_DOMAIN_IDENTITY) : NULL;
	ctx->blocked = ctx->identity ?
		static_domain(ctx, VIOMMU_DOMAIN_BLOCKED) : NULL;
	if (!ctx->blocked) {
		viommu_ctx_destroy(ctx);
		return -ENOMEM;
	}
	*out = ctx;
	return 0;
}

VIOMMU_EXPORT void viommu_ctx_destroy(struct viommu_ctx *ctx)
{
	struct viommu_domain *dom;
	uint32_t i;

	if (!ctx)
		return;
	for (i = 0; ctx->ep_hash && i <= ctx->ep_hash_mask; i++)
		while (ctx->ep_hash[i])
			viommu_endpoint_destroy(ctx->ep_hash[i]);
	/* Children first: a NESTED domain pins its parent. */
	for (;;) {
		for (dom = ctx->domains; dom && dom->children; dom = dom->next)
			;
		if (!dom)
			break;
		viommu_domain_destroy(dom);
	}
	while ((dom = ctx->pool)) {
		ctx->pool = dom->next;
		domain_free_struct(ctx, dom);
	}
	if (ctx->identity) {
		__domain_teardown(ctx->identity);
		domain_free_struct(ctx, ctx->identity);
	}
	if (ctx->blocked) {
		__domain_teardown(ctx->blocked);
		domain_free_struct(ctx, ctx->blocked);
	}
	xfree(&ctx->alloc, ctx->ep_hash);
	pthread_mutex_destroy(&ctx->lock);
	pthread_mutex_destroy(&ctx->fault_set_lock);
	rcu_fini(&ctx->rcu);
	xfree(&ctx->alloc, ctx);
}

VIOMMU_EXPORT int viommu_ctx_limits(const struct viommu_ctx *ctx,
				    struct viommu_limits *out, size_t size)
{
	if (!out || !size)
		return -EINVAL;
	/* ctx->lim is fixed at creation: no lock needed */
	sized_out(out, size, ctx ? &ctx->lim : &default_limits,
		  sizeof(*out));
	return 0;
}

VIOMMU_EXPORT int viommu_ctx_set_bypass(struct viommu_ctx *ctx, bool bypass)
{
	if (!ctx)
		return -EINVAL;
	/* Seq-cst: translations that start after we return see the value. */
	__atomic_store_n(&ctx->bypass, bypass ? 1 : 0, __ATOMIC_SEQ_CST);
	rl_info(&ctx->rl, &ctx->log, "ctx: bypass for unattached endpoints %s",
		 bypass ? "on" : "off");
	return 0;
}

VIOMMU_EXPORT int viommu_ctx_set_fault_handler(
	struct viommu_ctx *ctx,
	void (*fn)(void *opaque, const struct viommu_fault *fault),
	void *opaque)
{
	unsigned int old;
	uint32_t s;

	if (!ctx)
		return -EINVAL;
	/*
	 * Setters are serialised by their own lock, not ctx->lock: the wait
	 * below must not block a handler that configures the context.
	 */
	pthread_mutex_lock(&ctx->fault_set_lock);
	s = __atomic_load_n(&ctx->fault_seq, __ATOMIC_RELAXED);
	__atomic_store_n(&ctx->fault_seq, s + 1, __ATOMIC_RELAXED);
	/* readers that see the new pair see the odd count first */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&ctx->fault_fn, fn, __ATOMIC_RELAXED);
	__atomic_store_n(&ctx->fault_opaque, opaque, __ATOMIC_RELAXED);
	/* the pair before the even count */
	__atomic_store_n(&ctx->fault_seq, s + 2, __ATOMIC_RELEASE);
	/*
	 * Flip the side new deliveries count on, then wait for the old side
	 * to drain: what was counted there may hold the old pair.  New
	 * deliveries go to the other side, so a fault storm cannot starve
	 * this wait.  seq_cst pairs with fault_deliver()'s increment.
	 */
	old = __atomic_fetch_add(&ctx->fault_epoch, 1, __ATOMIC_SEQ_CST) & 1;
	while (__atomic_load_n(&ctx->fault_active[old], __ATOMIC_ACQUIRE))
		sched_yield();
	pthread_mutex_unlock(&ctx->fault_set_lock);
	return 0;
}

VIOMMU_EXPORT int viommu_ctx_set_trace_sink(struct viommu_ctx *ctx,
					    const struct viommu_trace_sink *sink)
{
	int err;

	if (!ctx)
		return -EINVAL;
	/* setters serialise on the fault setters' lock (never held long) */
	pthread_mutex_lock(&ctx->fault_set_lock);
	err = trace_set(&ctx->tr, &ctx->log, sink);
	pthread_mutex_unlock(&ctx->fault_set_lock);
	return err;
}

VIOMMU_EXPORT struct viommu_domain *
viommu_ctx_identity_domain(struct viommu_ctx *ctx)
{
	return ctx ? ctx->identity : NULL;
}

VIOMMU_EXPORT struct viommu_domain *
viommu_ctx_blocked_domain(struct viommu_ctx *ctx)
{
	return ctx ? ctx->blocked : NULL;
}

VIOMMU_EXPORT int viommu_ctx_invalidate_all(struct viommu_ctx *ctx)
{
	struct viommu_domain *dom;

	if (!ctx)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	viommu_domain_invalidate_all(ctx->identity);
	for (dom = ctx->domains; dom; dom = dom->next)
		viommu_domain_invalidate_all(dom);
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

VIOMMU_EXPORT int viommu_ctx_stats(struct viommu_ctx *ctx,
				   struct viommu_ctx_stats *out, size_t size)
{
	struct viommu_ctx_stats st = { 0 };

	if (!ctx || !out || !size)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	st.domains = ctx->ndomains;
	st.endpoints = ctx->nendpoints;
	pthread_mutex_unlock(&ctx->lock);
	st.mappings = READ_ONCE(ctx->st_mappings);
	for (uint32_t s = 0; s < RCU_STRIPES; s++)
		st.iotlb_misses += READ_ONCE(ctx->st_misses[s].n);
	st.faults = READ_ONCE(ctx->st_faults);
	st.maps = READ_ONCE(ctx->st_maps);
	st.unmaps = READ_ONCE(ctx->st_unmaps);
	st.mappings_refused = READ_ONCE(ctx->st_refused);
	st.mapstore_bytes = READ_ONCE(ctx->st_ms_bytes);
	/* never write past what the caller has; what we lack reads as 0 */
	sized_out(out, size, &st, sizeof(st));
	return 0;
}

/* ------------------------------------------------------------------ */

static int domain_config_check(struct viommu_ctx *ctx,
			       const struct viommu_domain_config *cfg)
{
	if (cfg->kind == VIOMMU_DOMAIN_PAGING)
		return 0;
	if (cfg->kind != VIOMMU_DOMAIN_NESTED)
		return -EINVAL;
	if (!cfg->s1 || !cfg->s1->translate)
		return -EINVAL;
	if (cfg->parent && (cfg->parent->ctx != ctx || !cfg->parent->alive ||
			    cfg->parent->kind != VIOMMU_DOMAIN_PAGING))
		return -EINVAL;
	return 0;
}

/* The layout a domain config @size of 0 stands for: the first sized one. */
#define DOMAIN_CONFIG_SIZE_V1 \
	(offsetof(struct viommu_domain_config, s1_opaque) + sizeof(void *))

VIOMMU_EXPORT int viommu_domain_create(struct viommu_ctx *ctx,
				       const struct viommu_domain_config *user,
				       struct viommu_domain **out)
{
	struct viommu_domain_config c, *cfg = &c;
	struct viommu_domain *dom;
	int ret;

	if (!ctx || !user || !out ||
	    !sized_in(&c, sizeof(c), user,
		      user->size ? user->size : DOMAIN_CONFIG_SIZE_V1))
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	ret = domain_config_check(ctx, cfg);
	if (ret)
		goto out;
	ret = -ENOSPC;
	if (ctx->ndomains >= ctx->lim.max_domains) {
		rl_debug(&ctx->rl, &ctx->log, "domain: limit of %u domains reached",
			 ctx->lim.max_domains);
		goto out;
	}
	ret = -ENOMEM;
	dom = domain_alloc(ctx);
	if (!dom)
		goto out;
	WRITE_ONCE(dom->kind, cfg->kind);
	WRITE_ONCE(dom->tag, cfg->tag);
	WRITE_ONCE(dom->alive, true);
	ms_reinit(&dom->ms, &ctx->alloc, &ctx->rcu);
	ms_share_pool(&dom->ms, &ctx->pi_pool);
	dirty_init(&dom->dirty, ctx->lim.max_dirty_chunks);
	if (cfg->kind == VIOMMU_DOMAIN_NESTED) {
		dom->parent = cfg->parent;
		dom->s1 = cfg->s1;
		dom->s1_opaque = cfg->s1_opaque;
		if (cfg->parent)
			cfg->parent->children++;
	}
	dom->next = ctx->domains;
	if (ctx->domains)
		ctx->domains->prev = dom;
	ctx->domains = dom;
	ctx->ndomains++;
	*out = dom;
	ret = 0;
out:
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

VIOMMU_EXPORT int viommu_domain_destroy(struct viommu_domain *dom)
{
	struct viommu_ctx *ctx;

	if (!dom || dom->is_static || !dom->alive)
		return -EINVAL;
	ctx = dom->ctx;
	pthread_mutex_lock(&ctx->lock);
	if (dom->attached || dom->children) {
		pthread_mutex_unlock(&ctx->lock);
		return -EBUSY;
	}
	if (dom->prev)
		dom->prev->next = dom->next;
	else
		ctx->domains = dom->next;
	if (dom->next)
		dom->next->prev = dom->prev;
	if (dom->parent)
		dom->parent->children--;
	ctx->ndomains--;
	pthread_mutex_lock(&dom->lock);
	WRITE_ONCE(dom->alive, false);
	/* Under dom->lock: a map holding it may still be counting. */
	__atomic_fetch_sub(&ctx->st_mappings, dom->ms.count, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&ctx->st_ms_bytes, dom->ms.host_bytes,
			   __ATOMIC_RELAXED);
	pthread_mutex_unlock(&dom->lock);
	/*
	 * NESTED: slow-path translations that read s1 before alive went false
	 * may still be calling it; wait for them so the front end can free its
	 * ops once we return.  They need no ctx->lock to finish.
	 */
	while (__atomic_load_n(&dom->inflight, __ATOMIC_ACQUIRE))
		sched_yield();
	pthread_mutex_lock(&dom->lock);
	__domain_teardown(dom);
	pthread_mutex_unlock(&dom->lock);
	domain_release(dom);
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

VIOMMU_EXPORT enum viommu_domain_kind
viommu_domain_kind(const struct viommu_domain *dom)
{
	return dom ? dom->kind : VIOMMU_DOMAIN_BLOCKED;
}

VIOMMU_EXPORT uint64_t viommu_domain_tag(const struct viommu_domain *dom)
{
	return dom ? dom->tag : 0;
}

VIOMMU_EXPORT const char *viommu_fault_reason_str(uint32_t reason)
{
	static const char *const names[] = {
		[VIOMMU_FAULT_UNATTACHED] = "UNATTACHED",
		[VIOMMU_FAULT_BLOCKED] = "BLOCKED",
		[VIOMMU_FAULT_NO_PASID] = "NO_PASID",
		[VIOMMU_FAULT_NO_MAPPING] = "NO_MAPPING",
		[VIOMMU_FAULT_PERMISSION] = "PERMISSION",
		[VIOMMU_FAULT_RESERVED] = "RESERVED",
		[VIOMMU_FAULT_STAGE1] = "STAGE1",
	};

	if (reason < ARRAY_SIZE(names) && names[reason])
		return names[reason];
	return "UNKNOWN";
}

struct viommu_mem *viommu_ctx_mem(struct viommu_ctx *ctx)
{
	return ctx ? ctx->mem : NULL;
}

VIOMMU_EXPORT int viommu_ctx_fault_handler(
	struct viommu_ctx *ctx,
	void (**fn)(void *opaque, const struct viommu_fault *fault),
	void **opaque)
{
	if (!ctx || !fn || !opaque)
		return -EINVAL;
	/* the setters' lock: no half-published pair can be seen */
	pthread_mutex_lock(&ctx->fault_set_lock);
	*fn = ctx->fault_fn;
	*opaque = ctx->fault_opaque;
	pthread_mutex_unlock(&ctx->fault_set_lock);
	return 0;
}
