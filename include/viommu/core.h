/*
 * core.h - the translation core every viommu front end stands on.
 *
 * Concepts
 *  - A context (struct viommu_ctx) holds everything: endpoints, domains,
 *    limits, the fault callback.  Nothing is global; two contexts share
 *    nothing but, optionally, a struct viommu_mem.
 *  - An endpoint is a DMA master identified by a 32-bit ID (a PCI requester
 *    ID, or a virtio-iommu endpoint ID).  Its requests carry an optional
 *    PASID; VIOMMU_NO_PASID names the requester-ID (RID) address space.
 *  - A domain is an address space.  Kinds: PAGING (a store of mappings the
 *    front end fills), IDENTITY (IOVA == GPA) and BLOCKED (no access), the
 *    latter two static per context and always attachable, and NESTED (a
 *    stage-1 translation supplied by the front end on top of a PAGING parent
 *    acting as stage 2).  An endpoint (RID or PASID) is attached to at most
 *    one domain; attaching it elsewhere moves it.  A PAGING domain can be
 *    filled before any endpoint joins.
 *  - Addresses in this API are inclusive ranges [iova, last], like the
 *    virtio-iommu wire format, so the whole 64-bit space is expressible.
 *  - translate() resolves (endpoint, PASID, IOVA, length, access) to a GPA,
 *    a host pointer into guest RAM, and the contiguous length; or it fails
 *    with a fault record that also goes to the context's fault callback.
 *    An IOTLB caches translations; once unmap or invalidate has returned, no
 *    translate that starts afterwards can use an entry it removed.
 *  - Notifiers tell consumers that keep their own IOTLB (vhost backends)
 *    about map, unmap, invalidate, attach and detach.  They are called
 *    synchronously: when unmap returns, every consumer has been told.
 *
 * Thread safety (per function below, summarised):
 *  - viommu_translate(), viommu_dma_read/write() and viommu_domain_lookup()
 *    may run on any number of threads at once, concurrently with every other
 *    call except the destruction of the objects they use.  Their IOTLB-hit
 *    path takes no lock, nor as a rule does their miss path (the mapping
 *    store is searched lock-free; the domain lock only when concurrent
 *    changes keep defeating that search, and for writes while dirty
 *    tracking is on).
 *  - Configuration calls (create/destroy, attach/detach, map/unmap,
 *    invalidate, dirty, notifiers) may be called from any thread; they
 *    serialise internally (a context lock, then a domain lock).
 *  - Callbacks (fault, notifiers, log) must not call back into the context
 *    that invoked them, except that a fault callback may call
 *    viommu_translate() on other endpoints.  Fault callbacks run with no
 *    viommu lock held; notifiers run with the domain lock held.
 *  - Destroying an object while another thread uses it is the caller's bug.
 */
#ifndef VIOMMU_CORE_H
#define VIOMMU_CORE_H

#include <viommu/common.h>
#include <viommu/mem.h>
#include <viommu/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

struct viommu_ctx;
struct viommu_domain;
struct viommu_endpoint;
struct viommu_notifier;

/** PASID value that names the requester-ID address space. */
#define VIOMMU_NO_PASID UINT32_MAX
/** Largest PASID (20 bits, PCIe). */
#define VIOMMU_PASID_MAX ((1u << 20) - 1)

/** Mapping flags beyond VIOMMU_READ / VIOMMU_WRITE / VIOMMU_EXEC. */
#define VIOMMU_MAP_MMIO (1u << 3) /* target is device memory, not RAM */

enum viommu_domain_kind {
	VIOMMU_DOMAIN_BLOCKED = 0,
	VIOMMU_DOMAIN_IDENTITY = 1,
	VIOMMU_DOMAIN_PAGING = 2,
	VIOMMU_DOMAIN_NESTED = 3,
};

/**
 * struct viommu_limits - caps that bound host memory whatever a guest does.
 * Zero in any field means the default shown.  Exceeding a cap answers
 * -ENOSPC and changes nothing; -ENOMEM is kept for a failed allocation,
 * so an embedder can tell a guest flood from host memory pressure.
 * (max_dirty_chunks is not refused: past it a domain reports every mapped
 * page dirty.)
 *
 * @max_mappings bounds the mappings of all PAGING domains of the context
 * together, whatever the number of domains and endpoints: the per-domain
 * cap alone would let 1024 domains hold 2^30 mappings.  A mapping costs at
 * most about 60 bytes of mapping store (B+tree leaves at least half full:
 * 920-byte leaves of 32 entries, plus about 2 bytes of inner nodes), and
 * each PAGING domain at most one extra leaf and one inner node per level
 * for its rightmost, possibly near-empty, path.  So with the defaults the
 * mapping stores of a context hold at most about 4M x 60 B = 240 MiB plus
 * 1024 x ~4 KiB (docs/API.md, "Limits").
 *
 * Growth.  The struct sits inside struct viommu_ctx_config, ahead of
 * other fields, so it cannot grow at its end; it carries @reserved room
 * instead, which must be zero (viommu_ctx_create() refuses anything else
 * with -EINVAL, so a caller built against a newer header that sets a limit
 * this library lacks is told so).  A new limit takes the first reserved
 * word and @reserved shrinks by one: an older caller's zero there is the
 * new limit's default, and struct viommu_ctx_config does not move.  When
 * the room runs out, further limits are appended to struct
 * viommu_ctx_config itself.
 */
struct viommu_limits {
	uint32_t max_domains;             /* 1024: PAGING + NESTED domains */
	uint32_t max_endpoints;           /* 4096 */
	uint32_t max_mappings_per_domain; /* 1 << 20 */
	uint32_t max_pasids_per_endpoint; /* 8: PASID attachments per endpoint */
	uint32_t max_resv_per_endpoint;   /* 16 reserved regions */
	uint32_t max_notifiers_per_domain;/* 16 */
	uint32_t iotlb_entries;           /* 256 per domain; power of two <= 65536 */
	uint32_t max_dirty_chunks;        /* 65536 x 2 MiB of dirty state per domain */
	uint32_t max_mappings;            /* 1 << 22: all domains together */
	uint32_t reserved[7];             /* must be zero: room to grow */
};

/** Reasons a translation fails. */
enum viommu_fault_reason {
	VIOMMU_FAULT_UNATTACHED = 1, /* endpoint not attached, bypass off */
	VIOMMU_FAULT_BLOCKED = 2,    /* attached to a BLOCKED domain */
	VIOMMU_FAULT_NO_PASID = 3,   /* PASID not attached */
	VIOMMU_FAULT_NO_MAPPING = 4, /* no mapping covers the address */
	VIOMMU_FAULT_PERMISSION = 5, /* mapping lacks the access */
	VIOMMU_FAULT_RESERVED = 6,   /* address in a RESERVED region */
	VIOMMU_FAULT_STAGE1 = 7,     /* nested: stage-1 walker refused */
};

/**
 * struct viommu_fault - one failed translation.
 * @reason:   enum viommu_fault_reason.
 * @access:   VIOMMU_READ / WRITE / EXEC that was asked for.
 * @endpoint: endpoint ID.
 * @pasid:    PASID, or VIOMMU_NO_PASID.
 * @address:  the faulting IOVA (the first byte of the request).
 * @domain_tag: tag of the domain involved (0 if none).
 */
struct viommu_fault {
	uint32_t reason;
	uint32_t access;
	uint32_t endpoint;
	uint32_t pasid;
	uint64_t address;
	uint64_t domain_tag;
};

/**
 * struct viommu_ctx_config - context creation parameters.
 * @size:     sizeof(struct viommu_ctx_config) as the caller knows it (lets
 *            the struct grow at its end without breaking built embedders,
 *            as in link.h); 0 is taken as this first sized layout.  A
 *            larger @size than the library knows is refused unless the
 *            bytes past what it knows are zero.
 * @mem:      guest memory (required); shared, not owned by the context.
 * @limits:   caps; zeroes mean defaults.
 * @log, @allocator: see common.h.
 * @fault:    called once per failed translate(), on the translating
 *            thread, with no viommu lock held; NULL to ignore.
 * @bypass_unattached: endpoints with no domain reach GPAs directly (the
 *            virtio-iommu `bypass` config bit); changeable at run time.
 */
struct viommu_ctx_config {
	uint32_t size;
	struct viommu_mem *mem;
	struct viommu_limits limits;
	struct viommu_log log;
	struct viommu_allocator allocator;
	void (*fault)(void *opaque, const struct viommu_fault *fault);
	void *fault_opaque;
	bool bypass_unattached;
};

/**
 * viommu_ctx_create() - create a context.
 * Return: 0; -EINVAL (NULL @cfg, @out or @cfg->mem, iotlb_entries not a
 * power of two or too large, a non-zero limits.reserved word, @size
 * larger than known with non-zero bytes past what the library knows);
 * -ENOMEM.
 */
VIOMMU_EXPORT int viommu_ctx_create(const struct viommu_ctx_config *cfg,
				    struct viommu_ctx **out);

/**
 * viommu_ctx_destroy() - destroy every endpoint, domain and notifier, then
 * the context.  NULL is accepted.  Must not race any other call using @ctx
 * or its objects.
 */
VIOMMU_EXPORT void viommu_ctx_destroy(struct viommu_ctx *ctx);

/**
 * viommu_ctx_mem() - the guest memory @ctx was created with (front ends
 * check that theirs is the same); NULL for a NULL @ctx.  Any thread.
 */
VIOMMU_EXPORT struct viommu_mem *viommu_ctx_mem(struct viommu_ctx *ctx);

/**
 * viommu_ctx_limits() - the limits in force (defaults filled in; NULL
 * @ctx gives the defaults) into @out, of which the caller knows @size
 * bytes (sizeof(struct viommu_limits) as it was built): at most @size
 * bytes are written, and a caller newer than the library reads zero in
 * what the library lacks.  Any thread.
 * Return: 0; -EINVAL (NULL @out, @size 0).
 */
VIOMMU_EXPORT int viommu_ctx_limits(const struct viommu_ctx *ctx,
				    struct viommu_limits *out, size_t size);

/**
 * viommu_ctx_set_bypass() - whether unattached endpoints bypass translation.
 * Takes effect for every translate() that starts after it returns.
 * Return: 0; -EINVAL for NULL @ctx.
 */
VIOMMU_EXPORT int viommu_ctx_set_bypass(struct viommu_ctx *ctx, bool bypass);

/**
 * viommu_ctx_set_fault_handler() - replace the fault callback given at
 * creation (a front end such as virtio-iommu installs itself here and
 * chains to the one it found, viommu_ctx_fault_handler()).  The function
 * and its opaque are published together: a fault is delivered to the old
 * pair or to the new one, never to a mix.  When the call returns, no
 * delivery to the old pair is running any more, so its opaque may be
 * freed.  Any thread, but not from inside a fault callback of @ctx (it
 * would wait for itself).
 * Return: 0; -EINVAL for NULL @ctx.
 */
VIOMMU_EXPORT int viommu_ctx_set_fault_handler(
	struct viommu_ctx *ctx,
	void (*fn)(void *opaque, const struct viommu_fault *fault),
	void *opaque);

/**
 * viommu_ctx_set_trace_sink() - typed trace points (<viommu/trace.h>) of
 * the translation core: VIOMMU_TRACE_CORE_MAP, _UNMAP, _INVAL, _MISS
 * (IOTLB misses only; hits cost nothing more), _FAULT, _ATTACH, _NOTIFY
 * and _DIRTY.  @sink NULL (or a zero mask) turns them off; off costs a
 * load and a branch per event site.  Any thread, but not from inside a
 * callback of @ctx.  The sink's function runs on the thread of the call
 * that caused the event, possibly with the context's or a domain's lock
 * held (translations call it with none): it must not call back into
 * @ctx.  The function and its opaque are published together: an event
 * racing this call (translations run without a lock) reaches the old
 * pair or the new one, never a mix, so keep the old pair valid until the
 * translations running then are over.
 * Return: 0; -EINVAL (NULL @ctx, unknown mask bits, a @size with unknown
 * non-zero bytes).
 */
VIOMMU_EXPORT int viommu_ctx_set_trace_sink(struct viommu_ctx *ctx,
					    const struct viommu_trace_sink *sink);

/**
 * viommu_ctx_fault_handler() - the fault callback now installed and its
 * opaque (both NULL when none), read as one pair.  Any thread.
 * Return: 0; -EINVAL (NULL @ctx, @fn or @opaque).
 */
VIOMMU_EXPORT int viommu_ctx_fault_handler(
	struct viommu_ctx *ctx,
	void (**fn)(void *opaque, const struct viommu_fault *fault),
	void **opaque);

/** viommu_ctx_identity_domain() - the context's static IDENTITY domain. */
VIOMMU_EXPORT struct viommu_domain *
viommu_ctx_identity_domain(struct viommu_ctx *ctx);

/** viommu_ctx_blocked_domain() - the context's static BLOCKED domain. */
VIOMMU_EXPORT struct viommu_domain *
viommu_ctx_blocked_domain(struct viommu_ctx *ctx);

/**
 * viommu_ctx_invalidate_all() - drop every IOTLB entry of every domain and
 * tell INVALIDATE notifiers.  Return: 0; -EINVAL for NULL @ctx.
 */
VIOMMU_EXPORT int viommu_ctx_invalidate_all(struct viommu_ctx *ctx);

/** struct viommu_ctx_stats - counters since creation (relaxed snapshots). */
struct viommu_ctx_stats {
	uint64_t domains;      /* PAGING + NESTED domains alive */
	uint64_t endpoints;    /* endpoints alive */
	uint64_t mappings;     /* mappings alive, all domains */
	uint64_t iotlb_misses; /* translations resolved by the slow path */
	uint64_t faults;       /* failed translations */
	uint64_t maps, unmaps; /* successful map and unmap calls */
	uint64_t mappings_refused; /* maps refused by limits.max_mappings */
	uint64_t mapstore_bytes;   /* host memory of all mapping stores */
};

/**
 * viommu_ctx_stats() - snapshot the counters into @out, of which the
 * caller knows @size bytes (sizeof(struct viommu_ctx_stats) as it was
 * built), so counters can be appended without breaking built embedders:
 * an older caller gets the counters it knows and nothing past them is
 * written, a newer one reads zero in the counters this library lacks.
 * Thread-safe.
 * Return: 0; -EINVAL (NULL args, @size 0).
 */
VIOMMU_EXPORT int viommu_ctx_stats(struct viommu_ctx *ctx,
				   struct viommu_ctx_stats *out, size_t size);

/* ------------------------------------------------------------------ */
/* Endpoints                                                          */

/**
 * viommu_endpoint_create() - add an endpoint with ID @id.  It starts
 * unattached (see @bypass_unattached).
 * Return: 0; -EINVAL (NULL args); -EEXIST (ID in use); -ENOSPC
 * (max_endpoints reached); -ENOMEM (allocation failed).
 */
VIOMMU_EXPORT int viommu_endpoint_create(struct viommu_ctx *ctx, uint32_t id,
					 struct viommu_endpoint **out);

/**
 * viommu_endpoint_destroy() - detach everything and remove the endpoint.
 * No translate() on @ep may run concurrently or follow.  NULL is accepted.
 */
VIOMMU_EXPORT void viommu_endpoint_destroy(struct viommu_endpoint *ep);

/**
 * viommu_endpoint_lookup() - find an endpoint by ID.
 * Return: 0; -EINVAL (NULL args); -ENOENT.
 */
VIOMMU_EXPORT int viommu_endpoint_lookup(struct viommu_ctx *ctx, uint32_t id,
					 struct viommu_endpoint **out);

/** viommu_endpoint_id() - the endpoint's ID. */
VIOMMU_EXPORT uint32_t viommu_endpoint_id(const struct viommu_endpoint *ep);

enum viommu_resv_type {
	VIOMMU_RESV_RESERVED = 0, /* no DMA; translate faults */
	VIOMMU_RESV_MSI = 1,      /* MSI doorbell: identity, never mapped */
};

/** struct viommu_resv - a reserved IOVA range [start, last] of an endpoint. */
struct viommu_resv {
	uint64_t start;
	uint64_t last;
	uint32_t type; /* enum viommu_resv_type */
};

/**
 * viommu_endpoint_add_resv() - reserve [start, last] for @ep.  Maps over it
 * are refused in every domain the endpoint is attached to.
 * Return: 0; -EINVAL (start > last, bad type, overlaps another region of
 * @ep, a second MSI region, or an existing mapping of a domain @ep is
 * attached to); -ENOSPC (max_resv_per_endpoint reached); -ENOMEM
 * (allocation failed).
 */
VIOMMU_EXPORT int viommu_endpoint_add_resv(struct viommu_endpoint *ep,
					   uint64_t start, uint64_t last,
					   enum viommu_resv_type type);

/**
 * viommu_endpoint_get_resv() - copy up to @max regions into @out (sorted by
 * start) and store the total number in @n.
 * Return: 0; -EINVAL (NULL @ep or @n, or NULL @out with @max > 0).
 */
VIOMMU_EXPORT int viommu_endpoint_get_resv(struct viommu_endpoint *ep,
					   struct viommu_resv *out,
					   unsigned int max, unsigned int *n);

/**
 * viommu_endpoint_attach() - attach the RID (@pasid == VIOMMU_NO_PASID) or a
 * PASID of @ep to @dom, moving it from its current domain if any.  On
 * failure nothing changes.  Attaching the RID to the static IDENTITY or
 * BLOCKED domain cannot fail.
 * Return: 0; -EINVAL (NULL args, @pasid > VIOMMU_PASID_MAX, @dom from
 * another context, a mapping of @dom overlaps a reserved region of @ep);
 * -ENOSPC (max_pasids_per_endpoint PASIDs attached already); -ENOMEM
 * (allocation failed).
 */
VIOMMU_EXPORT int viommu_endpoint_attach(struct viommu_endpoint *ep,
					 uint32_t pasid,
					 struct viommu_domain *dom);

/**
 * viommu_endpoint_detach() - detach the RID or @pasid of @ep.
 * Return: 0; -EINVAL (NULL @ep, bad @pasid); -ENOENT (not attached).
 */
VIOMMU_EXPORT int viommu_endpoint_detach(struct viommu_endpoint *ep,
					 uint32_t pasid);

/**
 * viommu_endpoint_domain() - the domain the RID or @pasid is attached to.
 * Return: 0 with *@out set (NULL when unattached); -EINVAL.
 */
VIOMMU_EXPORT int viommu_endpoint_domain(struct viommu_endpoint *ep,
					 uint32_t pasid,
					 struct viommu_domain **out);

/* ------------------------------------------------------------------ */
/* Domains                                                            */

/**
 * struct viommu_stage1_ops - stage-1 translation of a NESTED domain,
 * supplied by a front end (e.g. an SMMUv3 context-descriptor walker).
 * @translate: resolve @iova for @pasid (VIOMMU_NO_PASID for the default
 *             substream).  On success store the intermediate address
 *             (stage-2 input) in *@ipa, the permissions in *@perm and in
 *             *@len the bytes from @iova that translate contiguously
 *             (>= 1); return 0.  Return -EFAULT to refuse.  Called
 *             possibly from several threads at once, without the domain
 *             locks held but possibly with the context lock held (a
 *             translate that raced attachment changes): it may call only
 *             viommu_domain_lookup() (e.g. on the parent, to read its
 *             tables through stage 2) and the viommu_mem_* functions.
 */
struct viommu_stage1_ops {
	int (*translate)(void *opaque, uint32_t pasid, uint64_t iova,
			 unsigned int access, uint64_t *ipa, uint64_t *len,
			 uint32_t *perm);
};

/**
 * struct viommu_domain_config - what to create.
 * @size:   sizeof(struct viommu_domain_config) as the caller knows it; 0
 *          stands for this first sized layout (so designated initializers
 *          that leave it out keep working).  Only the first @size bytes
 *          are read and a field past them takes its default; a larger
 *          @size than the library knows is refused unless the bytes past
 *          what it knows are zero.  Fields are only appended.
 * @kind:   VIOMMU_DOMAIN_PAGING or VIOMMU_DOMAIN_NESTED.
 * @tag:    caller's value, reported in faults and events (e.g. the
 *          virtio-iommu domain ID).
 * @parent: NESTED only: the PAGING domain used as stage 2, or NULL when
 *          the stage-1 ops already produce guest-physical addresses (a
 *          front end such as SMMUv3 that walks guest-programmed stage-1 and
 *          stage-2 tables itself).
 * @s1, @s1_opaque: NESTED only: the stage-1 translation.
 */
struct viommu_domain_config {
	uint32_t size;
	enum viommu_domain_kind kind;
	uint64_t tag;
	struct viommu_domain *parent;
	const struct viommu_stage1_ops *s1;
	void *s1_opaque;
};

/**
 * viommu_domain_create() - create a PAGING or NESTED domain.
 * Return: 0; -EINVAL (NULL args, other kind, NESTED with a parent that is
 * not a live PAGING domain of this context, or without @s1->translate,
 * @size larger than known with non-zero bytes past what the library
 * knows);
 * -ENOSPC (max_domains reached); -ENOMEM (allocation failed).
 */
VIOMMU_EXPORT int viommu_domain_create(struct viommu_ctx *ctx,
				       const struct viommu_domain_config *cfg,
				       struct viommu_domain **out);

/**
 * viommu_domain_destroy() - destroy a domain and its mappings (DESTROY
 * notifiers are told first).
 * Blocks until translations that may still be reading the domain's
 * mapping store have left it (a grace period: a bounded wait on other
 * threads' translations, never on a callback).
 * Return: 0; -EINVAL (NULL, or a static domain); -EBUSY (endpoints still
 * attached, or it is the parent of a NESTED domain).
 */
VIOMMU_EXPORT int viommu_domain_destroy(struct viommu_domain *dom);

/** viommu_domain_kind() - the kind of @dom. */
VIOMMU_EXPORT enum viommu_domain_kind
viommu_domain_kind(const struct viommu_domain *dom);

/** viommu_domain_tag() - the tag given at creation (0 for static ones). */
VIOMMU_EXPORT uint64_t viommu_domain_tag(const struct viommu_domain *dom);

/**
 * viommu_domain_map() - map [iova, last] to [gpa, gpa + last - iova].
 * @prot: VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC | VIOMMU_MAP_MMIO.
 * Return: 0; -EINVAL (NULL, iova > last, gpa range wraps, unknown prot bit);
 * -EOPNOTSUPP (not a PAGING domain); -EEXIST (overlaps a mapping);
 * -EADDRINUSE (overlaps a reserved region of an attached endpoint);
 * -ENOSPC (max_mappings_per_domain, or the context-wide max_mappings -
 * exact even with maps racing on other domains); -ENOMEM (allocation
 * failed).  Nothing changes on failure.
 */
VIOMMU_EXPORT int viommu_domain_map(struct viommu_domain *dom, uint64_t iova,
				    uint64_t last, uint64_t gpa, uint32_t prot);

/**
 * viommu_domain_unmap() - remove every mapping lying wholly inside
 * [iova, last].  Gaps are fine.  If a mapping straddles either end the
 * call is refused and nothing is removed.  IOTLB entries are dropped and
 * UNMAP notifiers told before it returns.  May wait for a grace period
 * (translations in flight on other threads to leave the mapping store)
 * when it empties the domain or when much removed memory awaits freeing.
 * @unmapped: optional; receives the bytes removed (saturating at
 *            UINT64_MAX for a mapping of the entire 64-bit space).
 * Return: 0; -EINVAL (NULL @dom, iova > last); -EOPNOTSUPP (not PAGING);
 * -ERANGE (would split a mapping); -ENOENT (no mapping in the range).
 */
VIOMMU_EXPORT int viommu_domain_unmap(struct viommu_domain *dom, uint64_t iova,
				      uint64_t last, uint64_t *unmapped);

/**
 * viommu_domain_invalidate() - drop IOTLB entries overlapping [iova, last]
 * (for NESTED domains after the guest changed stage-1 tables) and tell
 * INVALIDATE notifiers.  Return: 0; -EINVAL.
 */
VIOMMU_EXPORT int viommu_domain_invalidate(struct viommu_domain *dom,
					   uint64_t iova, uint64_t last);

/** viommu_domain_invalidate_all() - drop all of @dom's IOTLB entries. */
VIOMMU_EXPORT int viommu_domain_invalidate_all(struct viommu_domain *dom);

/**
 * struct viommu_xlate - a successful translation.
 * @gpa:   output (guest-physical) address of the first byte.
 * @hva:   host pointer to @gpa in guest RAM, or NULL when @gpa is not RAM
 *         (MMIO mapping, MSI doorbell, hole) or is RAM of an I/O region
 *         (mem.h: reach it with viommu_mem_read/write on @gpa).  Lifetime:
 *         see mem.h.
 * @len:   bytes from the IOVA that translate contiguously, within the
 *         mapping and (for RAM) within one memory region; 1..requested.
 * @perm:  permissions of the mapping (VIOMMU_READ/WRITE/EXEC/MAP_MMIO).
 * @flags: VIOMMU_XLATE_*.
 */
struct viommu_xlate {
	uint64_t gpa;
	void *hva;
	size_t len;
	uint32_t perm;
	uint32_t flags;
};
#define VIOMMU_XLATE_BYPASS (1u << 0) /* identity (domain or bypass) */
#define VIOMMU_XLATE_MSI    (1u << 1) /* address in the MSI region */

/**
 * viommu_domain_lookup() - translate within @dom, without an endpoint,
 * IOTLB fill or fault report (for front ends and tests).
 * Return: 0; -EINVAL; -EFAULT (no mapping / blocked); -EACCES (permission).
 */
VIOMMU_EXPORT int viommu_domain_lookup(struct viommu_domain *dom,
				       uint64_t iova, size_t len,
				       unsigned int access,
				       struct viommu_xlate *out);

/**
 * struct viommu_mapping - one mapping, as reported by
 * viommu_domain_for_each_mapping().
 */
struct viommu_mapping {
	uint64_t iova;
	uint64_t last;
	uint64_t gpa;
	uint32_t prot;
};

/**
 * viommu_domain_for_each_mapping() - call @fn for each mapping of a PAGING
 * domain overlapping [iova, last], in IOVA order, with the domain lock
 * held; a non-zero return from @fn stops the walk and is returned.
 * Return: 0, @fn's value, -EINVAL, or -EOPNOTSUPP (not PAGING).
 */
VIOMMU_EXPORT int viommu_domain_for_each_mapping(
	struct viommu_domain *dom, uint64_t iova, uint64_t last,
	int (*fn)(void *opaque, const struct viommu_mapping *m), void *opaque);

/** struct viommu_domain_info - a snapshot of a domain. */
struct viommu_domain_info {
	uint32_t kind;
	uint32_t endpoints;   /* RIDs and PASIDs attached */
	uint64_t mappings;
	uint64_t mapped_bytes; /* saturating */
	uint64_t host_bytes;   /* host memory held by the mapping store */
	bool dirty_tracking;
};

/**
 * viommu_domain_info() - fill @out, of which the caller knows @size bytes
 * (sizeof(struct viommu_domain_info) as it was built): an older caller
 * gets the fields it knows and nothing past them is written, a newer one
 * reads zero in the fields this library lacks.  Thread-safe.
 * Return: 0; -EINVAL (NULL args, @size 0).
 */
VIOMMU_EXPORT int viommu_domain_info(struct viommu_domain *dom,
				     struct viommu_domain_info *out,
				     size_t size);

/* ------------------------------------------------------------------ */
/* Translation (hot path)                                             */

/**
 * Translation rules the calls below follow (and the fuzz model checks):
 *  - reserved regions apply to translations through PAGING and NESTED
 *    domains; IDENTITY domains and bypass pass every address through;
 *  - an MSI region translates to itself with no host pointer
 *    (VIOMMU_XLATE_MSI), its length running to the window's end;
 *  - a write to a read-only RAM region is a PERMISSION fault;
 *  - writes resolved by viommu_translate() or viommu_domain_lookup() mark
 *    dirty pages when tracking is on.
 */

/**
 * viommu_translate() - translate a DMA request of @ep.
 * @pasid:  VIOMMU_NO_PASID or a PASID.
 * @len:    bytes the endpoint wants (> 0); out->len may be shorter.
 * @access: VIOMMU_READ (device reads memory), VIOMMU_WRITE, VIOMMU_EXEC.
 * @fault:  optional; filled when the translation fails.
 *
 * A failed translation is also handed to the context's fault callback.
 * Writes through a dirty-tracking domain mark the pages covered by out->len.
 * Return: 0; -EINVAL (NULL @ep/@out, @len == 0, bad @access or @pasid);
 * -EFAULT (a translation fault: see @fault).
 */
VIOMMU_EXPORT int viommu_translate(struct viommu_endpoint *ep, uint32_t pasid,
				   uint64_t iova, size_t len,
				   unsigned int access,
				   struct viommu_xlate *out,
				   struct viommu_fault *fault);

/**
 * viommu_dma_read() - the endpoint reads @len bytes at @iova into @buf:
 * translate and copy piece by piece inside a memory read section.
 * Return: 0; -EINVAL; -EFAULT (translation fault, reported as by
 * viommu_translate(), or the address is not guest RAM, or [iova, iova +
 * len) wraps past the top of the address space, which is refused before
 * anything is translated or reported).  On -EFAULT the bytes before the
 * failing piece have been copied.
 */
VIOMMU_EXPORT int viommu_dma_read(struct viommu_endpoint *ep, uint32_t pasid,
				  uint64_t iova, void *buf, size_t len);

/** viommu_dma_write() - the endpoint writes @buf to @iova; as above. */
VIOMMU_EXPORT int viommu_dma_write(struct viommu_endpoint *ep, uint32_t pasid,
				   uint64_t iova, const void *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Dirty tracking                                                     */

/** Granule of dirty tracking. */
#define VIOMMU_DIRTY_PAGE_SHIFT 12

/**
 * viommu_domain_dirty_enable() - start or stop dirty tracking on a PAGING
 * domain.  Starting clears any previous dirty state.  While enabled,
 * writes take the locked path (the IOTLB-hit path is for reads).
 * Return: 0; -EINVAL; -EOPNOTSUPP (not PAGING).
 */
VIOMMU_EXPORT int viommu_domain_dirty_enable(struct viommu_domain *dom,
					     bool enable);

/** Flags for viommu_domain_dirty_read(). */
#define VIOMMU_DIRTY_NO_CLEAR (1u << 0)

/**
 * viommu_domain_dirty_read() - report dirty 4 KiB pages of [iova, last].
 * @iova must be page-aligned and @last + 1 page-aligned (or @last the top
 * of the address space).  Bit i of @bitmap (LSB first within each u64)
 * stands for the page at @iova + i * 4096.  @words must cover
 * (last - iova + 1) / 4096 bits.  Bits are set, never cleared, in @bitmap;
 * the domain's state is cleared for the range unless VIOMMU_DIRTY_NO_CLEAR.
 * If the domain ran out of dirty-state memory (max_dirty_chunks), every
 * mapped page of the range is reported dirty (conservative).
 * Return: 0; -EINVAL (alignment, NULL, too small @words, unknown flag);
 * -EOPNOTSUPP (not PAGING); -ENODEV (tracking not enabled).
 */
VIOMMU_EXPORT int viommu_domain_dirty_read(struct viommu_domain *dom,
					   uint64_t iova, uint64_t last,
					   uint64_t *bitmap, size_t words,
					   unsigned int flags);

/* ------------------------------------------------------------------ */
/* Notifiers                                                          */

enum viommu_event_type {
	VIOMMU_EVENT_MAP = 1u << 0,        /* [iova, last] -> gpa added */
	VIOMMU_EVENT_UNMAP = 1u << 1,      /* [iova, last] removed */
	VIOMMU_EVENT_INVALIDATE = 1u << 2, /* cached [iova, last] stale */
	VIOMMU_EVENT_ATTACH = 1u << 3,     /* endpoint/pasid joined */
	VIOMMU_EVENT_DETACH = 1u << 4,     /* endpoint/pasid left */
	VIOMMU_EVENT_DESTROY = 1u << 5,    /* domain goes away */
};

/**
 * struct viommu_event - what a notifier is told.  For UNMAP one event per
 * removed mapping; for INVALIDATE the invalidated range; for ATTACH/DETACH
 * @endpoint and @pasid.  Unused fields are zero.
 */
struct viommu_event {
	uint32_t type;
	uint32_t prot;
	struct viommu_domain *domain;
	uint64_t tag;
	uint64_t iova;
	uint64_t last;
	uint64_t gpa;
	uint32_t endpoint;
	uint32_t pasid;
};

typedef void (*viommu_notify_fn)(void *opaque, const struct viommu_event *ev);

/**
 * viommu_notifier_add() - call @fn for events in @mask on @dom, from the
 * thread making the change, with @dom's lock held (@fn must not call into
 * viommu for @dom).
 * Return: 0; -EINVAL (NULL args, empty or unknown @mask); -ENOSPC
 * (max_notifiers_per_domain reached); -ENOMEM (allocation failed).
 */
VIOMMU_EXPORT int viommu_notifier_add(struct viommu_domain *dom,
				      uint32_t mask, viommu_notify_fn fn,
				      void *opaque,
				      struct viommu_notifier **out);

/**
 * viommu_notifier_remove() - stop and free a notifier; after it returns
 * @fn is not running and will not be called.  NULL is accepted.  A
 * notifier dies with its domain (after the DESTROY event): do not remove it
 * after viommu_domain_destroy().
 */
VIOMMU_EXPORT void viommu_notifier_remove(struct viommu_notifier *n);

/** viommu_fault_reason_str() - name of a fault reason ("NO_MAPPING"...). */
VIOMMU_EXPORT const char *viommu_fault_reason_str(uint32_t reason);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_CORE_H */
