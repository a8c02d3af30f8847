/*
 * test_core_objects.c - unit tests of the translation core's objects (DESIGN.md §3 and the doc
 * comments of include/viommu/core.h): the context and its limits,
 * endpoints, the static IDENTITY and BLOCKED domains, unattached endpoints
 * and bypass, attach and detach.
 * Every expected errno is the one include/viommu/core.h documents.
 */
#include "harness.h"
#include "core_fixture.h"

#define RW (VIOMMU_READ | VIOMMU_WRITE)
#define NP VIOMMU_NO_PASID

/* ------------------------------------------------------------------ */
/* Context                                                            */

TEST(ctx_create_rejects_bad_args)
{
	struct fx f;
	struct viommu_ctx *ctx = NULL;

	REQUIRE(fx_init(&f, NULL) == 0);
	struct viommu_ctx_config c = fx_ctx_config(&f, NULL);
	CHECK_EQ(viommu_ctx_create(NULL, &ctx), -EINVAL);
	CHECK_EQ(viommu_ctx_create(&c, NULL), -EINVAL);
	c.mem = NULL;
	CHECK_EQ(viommu_ctx_create(&c, &ctx), -EINVAL);
	viommu_ctx_destroy(NULL);
	fx_fini(&f);
}

TEST(ctx_iotlb_entries_not_power_of_two_einval)
{
	static const uint32_t bad[] = { 3, 6, 100, 255, 65537, 131072 };
	static const uint32_t good[] = { 1, 2, 64, 65536 };
	struct viommu_ctx *ctx;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	struct viommu_ctx_config c = fx_ctx_config(&f, NULL);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c.limits.iotlb_entries = bad[i];
		ctx = NULL;
		CHECK_EQ(viommu_ctx_create(&c, &ctx), -EINVAL);
	}
	for (unsigned int i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct viommu_limits l;

		c.limits.iotlb_entries = good[i];
		ctx = NULL;
		CHECK_EQ(viommu_ctx_create(&c, &ctx), 0);
		if (!ctx)
			continue;
		viommu_ctx_limits(ctx, &l, sizeof(l));
		CHECK_EQ(l.iotlb_entries, good[i]);
		viommu_ctx_destroy(ctx);
	}
	fx_fini(&f);
}

TEST(ctx_limits_defaults)
{
	struct viommu_limits l;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	memset(&l, 0xa5, sizeof(l));
	viommu_ctx_limits(f.ctx, &l, sizeof(l));
	CHECK_EQ(l.max_domains, 1024);
	CHECK_EQ(l.max_endpoints, 4096);
	CHECK_EQ(l.max_mappings_per_domain, 1u << 20);
	CHECK_EQ(l.max_pasids_per_endpoint, 8);
	CHECK_EQ(l.max_resv_per_endpoint, 16);
	CHECK_EQ(l.max_notifiers_per_domain, 16);
	CHECK_EQ(l.iotlb_entries, 256);
	CHECK_EQ(l.max_dirty_chunks, 65536);
	fx_fini(&f);
}

TEST(ctx_limits_keep_given_values)
{
	struct fx_opts o = { .limits = { .max_domains = 7,
					 .max_pasids_per_endpoint = 3,
					 .iotlb_entries = 64 } };
	struct viommu_limits l;
	struct fx f;

	REQUIRE(fx_init(&f, &o) == 0);
	viommu_ctx_limits(f.ctx, &l, sizeof(l));
	CHECK_EQ(l.max_domains, 7);
	CHECK_EQ(l.max_pasids_per_endpoint, 3);
	CHECK_EQ(l.iotlb_entries, 64);
	CHECK_EQ(l.max_endpoints, 4096);
	CHECK_EQ(l.max_mappings_per_domain, 1u << 20);
	CHECK_EQ(l.max_notifiers_per_domain, 16);
	fx_fini(&f);
}

TEST(ctx_stats_count_objects_and_calls)
{
	struct viommu_ctx_stats s;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE(fx_ep(&e.f, 2) != NULL);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x1000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x2000, 0x2fff, 0x2000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x3000, 0x3fff, 0x3000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x3000, 0x3fff, 0x3000, RW),
		 -EEXIST);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x3000, 0x3fff, NULL), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1000, 4, VIOMMU_READ, &x, NULL),
		 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x9000, 4, VIOMMU_READ, &x, NULL),
		 -EFAULT);
	s = fx_stats(&e.f);
	CHECK_U64(s.domains, 1);
	CHECK_U64(s.endpoints, 2);
	CHECK_U64(s.mappings, 2);
	CHECK_U64(s.maps, 3);
	CHECK_U64(s.unmaps, 1);
	CHECK_U64(s.faults, 1);
	CHECK(s.iotlb_misses >= 1);
	fx_fini(&e.f);
}

TEST(ctx_contexts_share_nothing)
{
	struct viommu_endpoint *ep2 = NULL;
	struct viommu_ctx *ctx2 = NULL;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	struct viommu_ctx_config c = fx_ctx_config(&e.f, NULL);
	REQUIRE(viommu_ctx_create(&c, &ctx2) == 0);
	CHECK_EQ(viommu_endpoint_create(ctx2, 1, &ep2), 0);
	CHECK(viommu_ctx_identity_domain(ctx2) !=
	      viommu_ctx_identity_domain(e.f.ctx));
	CHECK(viommu_ctx_blocked_domain(ctx2) !=
	      viommu_ctx_blocked_domain(e.f.ctx));
	CHECK_EQ(viommu_endpoint_attach(ep2, NP, e.dom), -EINVAL);
	CHECK_EQ(viommu_endpoint_attach(ep2, NP,
					viommu_ctx_identity_domain(e.f.ctx)),
		 -EINVAL);
	CHECK(fx_ep_domain(ep2, NP) == NULL);
	CHECK_EQ(fx_info(e.dom).endpoints, 1);
	viommu_ctx_destroy(ctx2);
	fx_fini(&e.f);
}

TEST(version_and_reason_strings)
{
	CHECK(viommu_version() != NULL);
	CHECK(strcmp(viommu_version(), "0.2.0") == 0);
	CHECK(strcmp(viommu_fault_reason_str(VIOMMU_FAULT_NO_MAPPING),
		     "NO_MAPPING") == 0);
	CHECK(strcmp(viommu_fault_reason_str(VIOMMU_FAULT_PERMISSION),
		     "PERMISSION") == 0);
	CHECK(viommu_fault_reason_str(0) != NULL);
	CHECK(viommu_fault_reason_str(12345) != NULL);
}

/* ------------------------------------------------------------------ */
/* Endpoints                                                          */

TEST(endpoint_create_lookup_destroy)
{
	struct viommu_endpoint *ep = NULL, *got = NULL;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	CHECK_EQ(viommu_endpoint_create(f.ctx, 0x1234, &ep), 0);
	REQUIRE(ep != NULL);
	CHECK_EQ(viommu_endpoint_id(ep), 0x1234);
	CHECK_EQ(viommu_endpoint_lookup(f.ctx, 0x1234, &got), 0);
	CHECK(got == ep);
	CHECK_U64(fx_stats(&f).endpoints, 1);
	viommu_endpoint_destroy(ep);
	CHECK_EQ(viommu_endpoint_lookup(f.ctx, 0x1234, &got), -ENOENT);
	CHECK_U64(fx_stats(&f).endpoints, 0);
	viommu_endpoint_destroy(NULL);
	/* The ID can be reused. */
	CHECK_EQ(viommu_endpoint_create(f.ctx, 0x1234, &ep), 0);
	/* The whole 32-bit ID space is usable. */
	CHECK(fx_ep(&f, 0) != NULL);
	CHECK(fx_ep(&f, UINT32_MAX) != NULL);
	CHECK_EQ(viommu_endpoint_lookup(f.ctx, UINT32_MAX, &got), 0);
	CHECK_EQ(viommu_endpoint_id(got), UINT32_MAX);
	fx_fini(&f);
}

TEST(endpoint_duplicate_id_eexist)
{
	struct viommu_endpoint *a = NULL, *b = NULL, *got = NULL;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	CHECK_EQ(viommu_endpoint_create(f.ctx, 7, &a), 0);
	CHECK_EQ(viommu_endpoint_create(f.ctx, 7, &b), -EEXIST);
	CHECK_EQ(viommu_endpoint_lookup(f.ctx, 7, &got), 0);
	CHECK(got == a);
	CHECK_U64(fx_stats(&f).endpoints, 1);
	fx_fini(&f);
}

TEST(endpoint_lookup_unknown_enoent)
{
	struct viommu_endpoint *got = NULL;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	CHECK_EQ(viommu_endpoint_lookup(f.ctx, 9, &got), -ENOENT);
	REQUIRE(fx_ep(&f, 8) != NULL);
	CHECK_EQ(viommu_endpoint_lookup(f.ctx, 9, &got), -ENOENT);
	fx_fini(&f);
}

TEST(endpoint_limit_enospc)
{
	/* DESIGN.md §3: limits answer NOMEM, nothing changes. */
	struct fx_opts o = { .limits = { .max_endpoints = 3 } };
	struct viommu_endpoint *ep = NULL, *got;
	struct fx f;

	REQUIRE(fx_init(&f, &o) == 0);
	for (uint32_t i = 0; i < 3; i++)
		CHECK(fx_ep(&f, 100 + i) != NULL);
	CHECK_EQ(viommu_endpoint_create(f.ctx, 200, &ep), -ENOSPC);
	CHECK_EQ(viommu_endpoint_lookup(f.ctx, 200, &got), -ENOENT);
	CHECK_U64(fx_stats(&f).endpoints, 3);
	REQUIRE(viommu_endpoint_lookup(f.ctx, 101, &got) == 0);
	viommu_endpoint_destroy(got);
	CHECK_EQ(viommu_endpoint_create(f.ctx, 200, &ep), 0);
	fx_fini(&f);
}

TEST(endpoint_destroy_detaches_everything)
{
	struct viommu_domain *b;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 1, b), 0);
	CHECK_EQ(fx_info(e.dom).endpoints, 1);
	CHECK_EQ(fx_info(b).endpoints, 1);
	viommu_endpoint_destroy(e.ep);
	CHECK_EQ(fx_info(e.dom).endpoints, 0);
	CHECK_EQ(fx_info(b).endpoints, 0);
	CHECK_EQ(viommu_domain_destroy(e.dom), 0);
	CHECK_EQ(viommu_domain_destroy(b), 0);
	fx_fini(&e.f);
}

/* ------------------------------------------------------------------ */
/* Static domains                                                     */

TEST(static_domains_exist)
{
	/* DESIGN.md §3: static domains exist, attach to them cannot fail. */
	struct viommu_domain *id, *bl;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	id = viommu_ctx_identity_domain(f.ctx);
	bl = viommu_ctx_blocked_domain(f.ctx);
	REQUIRE(id && bl);
	CHECK(id != bl);
	CHECK(id == viommu_ctx_identity_domain(f.ctx));
	CHECK(bl == viommu_ctx_blocked_domain(f.ctx));
	CHECK_EQ(viommu_domain_kind(id), VIOMMU_DOMAIN_IDENTITY);
	CHECK_EQ(viommu_domain_kind(bl), VIOMMU_DOMAIN_BLOCKED);
	CHECK_U64(viommu_domain_tag(id), 0);
	CHECK_U64(viommu_domain_tag(bl), 0);
	CHECK_EQ(fx_info(id).kind, VIOMMU_DOMAIN_IDENTITY);
	CHECK_EQ(fx_info(bl).kind, VIOMMU_DOMAIN_BLOCKED);
	CHECK_U64(fx_stats(&f).domains, 0);
	fx_fini(&f);
}

TEST(static_domain_destroy_einval)
{
	/* DESIGN.md §3: static domains exist, attach to them cannot fail. */
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	CHECK_EQ(viommu_domain_destroy(viommu_ctx_identity_domain(f.ctx)),
		 -EINVAL);
	CHECK_EQ(viommu_domain_destroy(viommu_ctx_blocked_domain(f.ctx)),
		 -EINVAL);
	CHECK(viommu_ctx_identity_domain(f.ctx) != NULL);
	fx_fini(&f);
}

TEST(attach_to_static_domains_cannot_fail)
{
	/* DESIGN.md §3: static domains exist, attach to them cannot fail. */
	struct fx_opts o = { .limits = { .max_domains = 1 } };
	struct viommu_domain *id, *bl;
	struct viommu_endpoint *ep;
	struct fx f;

	REQUIRE(fx_init(&f, &o) == 0);
	REQUIRE((ep = fx_ep(&f, 1)) != NULL);
	id = viommu_ctx_identity_domain(f.ctx);
	bl = viommu_ctx_blocked_domain(f.ctx);
	CHECK_EQ(viommu_endpoint_add_resv(ep, 0xfee00000, 0xfeefffff,
					  VIOMMU_RESV_MSI), 0);
	CHECK_EQ(viommu_endpoint_add_resv(ep, 0x1000, 0x1fff,
					  VIOMMU_RESV_RESERVED), 0);
	/* The domain limit is used up: static domains do not count. */
	REQUIRE(fx_paging(&f, 1) != NULL);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(viommu_endpoint_attach(ep, NP, id), 0);
		CHECK(fx_ep_domain(ep, NP) == id);
		CHECK_EQ(viommu_endpoint_attach(ep, NP, bl), 0);
		CHECK(fx_ep_domain(ep, NP) == bl);
	}
	CHECK_EQ(fx_info(bl).endpoints, 1);
	CHECK_EQ(fx_info(id).endpoints, 0);
	fx_fini(&f);
}

TEST(identity_domain_translates_gpa_equals_iova)
{
	/* DESIGN.md §3: static identity / blocked domains. */
	struct viommu_xlate x;
	struct viommu_endpoint *ep;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE((ep = fx_ep(&f, 1)) != NULL);
	REQUIRE(viommu_endpoint_attach(ep, NP,
				       viommu_ctx_identity_domain(f.ctx)) == 0);
	CHECK_EQ(viommu_translate(ep, NP, 0x1234, 0x100, VIOMMU_WRITE, &x,
				  NULL), 0);
	CHECK_U64(x.gpa, 0x1234);
	CHECK(x.hva == f.ram0 + 0x1234);
	CHECK_EQ(x.len, 0x100);
	CHECK(x.flags & VIOMMU_XLATE_BYPASS);
	CHECK_EQ(viommu_translate(ep, NP, RAM1_GPA + 0x10, 8, VIOMMU_READ, &x,
				  NULL), 0);
	CHECK(x.hva == f.ram1 + 0x10);
	/* Clipped at the end of the RAM region. */
	CHECK_EQ(viommu_translate(ep, NP, RAM_SIZE - 8, 64, VIOMMU_READ, &x,
				  NULL), 0);
	CHECK_EQ(x.len, 8);
	CHECK(x.hva == f.ram0 + RAM_SIZE - 8);
	/* A hole: GPA still identity, no host pointer. */
	CHECK_EQ(viommu_translate(ep, NP, 0x80000000, 8, VIOMMU_READ, &x,
				  NULL), 0);
	CHECK_U64(x.gpa, 0x80000000);
	CHECK(x.hva == NULL);
	CHECK_EQ(fx_faults(&f), 0);
	fx_fini(&f);
}

TEST(blocked_domain_faults_blocked)
{
	/* DESIGN.md §3: static identity / blocked domains. */
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct viommu_endpoint *ep;
	struct fx f;

	REQUIRE(fx_init(&f, &(struct fx_opts){ .bypass = true }) == 0);
	REQUIRE((ep = fx_ep(&f, 3)) != NULL);
	REQUIRE(viommu_endpoint_attach(ep, NP,
				       viommu_ctx_blocked_domain(f.ctx)) == 0);
	CHECK_EQ(viommu_translate(ep, NP, 0x1000, 4, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_BLOCKED);
	CHECK_EQ(flt.endpoint, 3);
	CHECK_U64(flt.address, 0x1000);
	CHECK_EQ(fx_faults(&f), 1);
	CHECK_EQ(f.last_fault.reason, VIOMMU_FAULT_BLOCKED);
	fx_fini(&f);
}

TEST(static_domains_refuse_paging_ops)
{
	/* DESIGN.md §3: static domains exist, attach to them cannot fail. */
	struct viommu_domain *d[2];
	uint64_t bm[1] = { 0 }, n = 0;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	d[0] = viommu_ctx_identity_domain(f.ctx);
	d[1] = viommu_ctx_blocked_domain(f.ctx);
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(viommu_domain_map(d[i], 0, 0xfff, 0, RW),
			 -EOPNOTSUPP);
		CHECK_EQ(viommu_domain_unmap(d[i], 0, 0xfff, &n),
			 -EOPNOTSUPP);
		struct fx_maplist l = { 0 };

		CHECK_EQ(viommu_domain_for_each_mapping(d[i], 0, UINT64_MAX,
							fx_collect_cb, &l),
			 -EOPNOTSUPP);
		CHECK_EQ(viommu_domain_dirty_enable(d[i], true), -EOPNOTSUPP);
		CHECK_EQ(viommu_domain_dirty_read(d[i], 0, 0xfff, bm, 1, 0),
			 -EOPNOTSUPP);
	}
	fx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* Unattached endpoints and bypass                                    */

TEST(unattached_translate_faults_unattached)
{
	/* DESIGN.md §3: a failed translate records a fault. */
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct viommu_endpoint *ep;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE((ep = fx_ep(&f, 0x42)) != NULL);
	memset(&flt, 0xff, sizeof(flt));
	CHECK_EQ(viommu_translate(ep, NP, 0x5008, 16, VIOMMU_WRITE, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_UNATTACHED);
	CHECK_EQ(flt.access, VIOMMU_WRITE);
	CHECK_EQ(flt.endpoint, 0x42);
	CHECK_U64(flt.pasid, NP);
	CHECK_U64(flt.address, 0x5008);
	CHECK_U64(flt.domain_tag, 0);
	CHECK_EQ(fx_faults(&f), 1);
	CHECK_EQ(f.last_fault.reason, VIOMMU_FAULT_UNATTACHED);
	CHECK_EQ(f.last_fault.access, VIOMMU_WRITE);
	CHECK_EQ(f.last_fault.endpoint, 0x42);
	CHECK_U64(f.last_fault.pasid, NP);
	CHECK_U64(f.last_fault.address, 0x5008);
	CHECK_U64(fx_stats(&f).faults, 1);
	fx_fini(&f);
}

TEST(bypass_config_gives_identity)
{
	struct viommu_xlate x;
	struct viommu_endpoint *ep;
	struct fx f;

	REQUIRE(fx_init(&f, &(struct fx_opts){ .bypass = true }) == 0);
	REQUIRE((ep = fx_ep(&f, 1)) != NULL);
	CHECK_EQ(viommu_translate(ep, NP, 0x7000, 0x20, VIOMMU_READ, &x,
				  NULL), 0);
	CHECK_U64(x.gpa, 0x7000);
	CHECK(x.hva == f.ram0 + 0x7000);
	CHECK_EQ(x.len, 0x20);
	CHECK(x.flags & VIOMMU_XLATE_BYPASS);
	CHECK_EQ(viommu_translate(ep, NP, RAM1_GPA + RAM_SIZE - 4, 0x20,
				  VIOMMU_WRITE, &x, NULL), 0);
	CHECK(x.hva == f.ram1 + RAM_SIZE - 4);
	CHECK_EQ(x.len, 4);
	CHECK_EQ(fx_faults(&f), 0);
	fx_fini(&f);
}

TEST(bypass_runtime_switch)
{
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct viommu_endpoint *ep;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE((ep = fx_ep(&f, 1)) != NULL);
	CHECK_EQ(viommu_translate(ep, NP, 0x3000, 8, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(viommu_ctx_set_bypass(f.ctx, true), 0);
	CHECK_EQ(viommu_translate(ep, NP, 0x3000, 8, VIOMMU_READ, &x, &flt),
		 0);
	CHECK_U64(x.gpa, 0x3000);
	CHECK(x.hva == f.ram0 + 0x3000);
	/* Twice, so the second may come from the IOTLB. */
	CHECK_EQ(viommu_translate(ep, NP, 0x3000, 8, VIOMMU_READ, &x, &flt),
		 0);
	CHECK_EQ(viommu_ctx_set_bypass(f.ctx, false), 0);
	CHECK_EQ(viommu_translate(ep, NP, 0x3000, 8, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_UNATTACHED);
	CHECK_EQ(fx_faults(&f), 2);
	CHECK_EQ(viommu_ctx_set_bypass(NULL, true), -EINVAL);
	fx_fini(&f);
}

TEST(bypass_not_used_when_attached)
{
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, &(struct fx_opts){ .bypass = true }) == 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x3000, 8, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_NO_MAPPING);
	CHECK_U64(flt.domain_tag, 10);
	/* Detached again: bypass applies. */
	CHECK_EQ(viommu_endpoint_detach(e.ep, NP), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x3000, 8, VIOMMU_READ, &x, &flt),
		 0);
	CHECK_U64(x.gpa, 0x3000);
	fx_fini(&e.f);
}

/* other_ep_cb() - fault callback that translates for endpoint 2. */
static void other_ep_cb(void *opaque, const struct viommu_fault *flt)
{
	struct fx *f = opaque;
	struct viommu_endpoint *ep2;
	struct viommu_xlate x;

	fx_fault_cb(f, flt);
	if (flt->endpoint == 2 ||
	    viommu_endpoint_lookup(f->ctx, 2, &ep2) ||
	    viommu_translate(ep2, NP, 0x1000, 4, VIOMMU_READ, &x, NULL))
		return;
	f->first_fault.domain_tag = x.gpa; /* proof it ran */
}

TEST(fault_callback_may_translate_other_endpoint)
{
	struct viommu_ctx_config c;
	struct viommu_endpoint *ep1, *ep2;
	struct viommu_domain *d;
	struct viommu_ctx *ctx = NULL;
	struct viommu_xlate x;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	c = fx_ctx_config(&f, NULL);
	c.fault = other_ep_cb;
	viommu_ctx_destroy(f.ctx);
	REQUIRE(viommu_ctx_create(&c, &ctx) == 0);
	f.ctx = ctx;
	REQUIRE((ep1 = fx_ep(&f, 1)) && (ep2 = fx_ep(&f, 2)));
	REQUIRE((d = fx_paging(&f, 1)) != NULL);
	CHECK_EQ(viommu_domain_map(d, 0x1000, 0x1fff, 0x7000, RW), 0);
	CHECK_EQ(viommu_endpoint_attach(ep2, NP, d), 0);
	CHECK_EQ(viommu_translate(ep1, NP, 0x1000, 4, VIOMMU_READ, &x, NULL),
		 -EFAULT);
	CHECK_EQ(fx_faults(&f), 1);
	CHECK_U64(f.first_fault.domain_tag, 0x7000);
	fx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* Attach / detach                                                    */

TEST(attach_failed_changes_nothing)
{
	/* DESIGN.md §3: a failed attach changes nothing. */
	struct viommu_domain *b;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x2000, RW), 0);
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0x100000, 0x1fffff,
					  VIOMMU_RESV_RESERVED), 0);
	CHECK_EQ(viommu_domain_map(b, 0x1000, 0x1fff, 0x9000, RW), 0);
	CHECK_EQ(viommu_domain_map(b, 0x1ff000, 0x200fff, 0x3000, RW), 0);
	CHECK_EQ(fx_gpa_of(e.ep, NP, 0x1000, VIOMMU_READ), 0x2000);
	CHECK_EQ(viommu_endpoint_attach(e.ep, NP, b), -EINVAL);
	CHECK(fx_ep_domain(e.ep, NP) == e.dom);
	CHECK_EQ(fx_info(e.dom).endpoints, 1);
	CHECK_EQ(fx_info(b).endpoints, 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1000, VIOMMU_READ), 0x2000);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1800, VIOMMU_WRITE), 0x2800);
	/* Same for an MSI region and a PASID attachment. */
	CHECK_EQ(viommu_endpoint_add_resv(e.ep, 0xfee00000, 0xfeefffff,
					  VIOMMU_RESV_MSI), 0);
	CHECK_EQ(viommu_domain_unmap(b, 0x1ff000, 0x200fff, NULL), 0);
	CHECK_EQ(viommu_domain_map(b, 0xfee00000, 0xfee00fff, 0x3000, RW), 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, NP, b), -EINVAL);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 4, b), -EINVAL);
	CHECK(fx_ep_domain(e.ep, NP) == e.dom);
	CHECK(fx_ep_domain(e.ep, 4) == NULL);
	CHECK_EQ(fx_info(b).endpoints, 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1000, VIOMMU_READ), 0x2000);
	fx_fini(&e.f);
}

TEST(attach_attached_endpoint_moves_it)
{
	/* DESIGN.md §3: attaching an attached endpoint moves it. */
	struct viommu_domain *b;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_domain_map(e.dom, 0x10000, 0x10fff, 0x4000, RW), 0);
	CHECK_EQ(viommu_domain_map(b, 0x10000, 0x10fff, 0x8000, RW), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x10010, VIOMMU_READ), 0x4010);
	CHECK_EQ(viommu_endpoint_attach(e.ep, NP, b), 0);
	CHECK(fx_ep_domain(e.ep, NP) == b);
	CHECK_EQ(fx_info(e.dom).endpoints, 0);
	CHECK_EQ(fx_info(b).endpoints, 1);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x10010, VIOMMU_READ), 0x8010);
	/* The old domain can now go. */
	CHECK_EQ(viommu_domain_destroy(e.dom), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x10010, VIOMMU_READ), 0x8010);
	/* Attaching to the current domain again keeps one attachment. */
	CHECK_EQ(viommu_endpoint_attach(e.ep, NP, b), 0);
	CHECK_EQ(fx_info(b).endpoints, 1);
	fx_fini(&e.f);
}

TEST(iotlb_move_from_identity_to_paging)
{
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x5000, 0x5fff, 0x9000, RW), 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, NP,
					viommu_ctx_identity_domain(e.f.ctx)), 0);
	for (int i = 0; i < 2; i++)
		CHECK_U64(fx_gpa_of(e.ep, NP, 0x5004, VIOMMU_READ), 0x5004);
	CHECK_EQ(viommu_endpoint_attach(e.ep, NP, e.dom), 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x5004, 4, VIOMMU_READ, &x, NULL),
		 0);
	CHECK_U64(x.gpa, 0x9004);
	CHECK_EQ(x.flags & VIOMMU_XLATE_BYPASS, 0);
	CHECK_EQ(fx_gpa_of(e.ep, NP, 0x6004, VIOMMU_READ), ~0ull);
	fx_fini(&e.f);
}

TEST(detach_unattached_enoent)
{
	struct viommu_endpoint *ep;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE((ep = fx_ep(&f, 1)) != NULL);
	CHECK_EQ(viommu_endpoint_detach(ep, NP), -ENOENT);
	CHECK_EQ(viommu_endpoint_detach(ep, 3), -ENOENT);
	CHECK_EQ(viommu_endpoint_detach(ep, VIOMMU_PASID_MAX + 1), -EINVAL);
	fx_fini(&f);
}

TEST(detach_then_translate_faults_unattached)
{
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x2000, RW), 0);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1000, VIOMMU_READ), 0x2000);
	CHECK_EQ(viommu_endpoint_detach(e.ep, NP), 0);
	CHECK(fx_ep_domain(e.ep, NP) == NULL);
	CHECK_EQ(fx_info(e.dom).endpoints, 0);
	CHECK_EQ(viommu_translate(e.ep, NP, 0x1000, 4, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_UNATTACHED);
	CHECK_EQ(viommu_endpoint_detach(e.ep, NP), -ENOENT);
	/* The mappings stay with the domain. */
	CHECK_U64(fx_info(e.dom).mappings, 1);
	fx_fini(&e.f);
}

TEST(domain_destroy_with_endpoints_ebusy)
{
	struct viommu_domain *b;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x2000, RW), 0);
	CHECK_EQ(viommu_domain_destroy(e.dom), -EBUSY);
	CHECK_U64(fx_gpa_of(e.ep, NP, 0x1000, VIOMMU_READ), 0x2000);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 2, b), 0);
	CHECK_EQ(viommu_domain_destroy(b), -EBUSY);
	CHECK_U64(fx_stats(&e.f).domains, 2);
	CHECK_EQ(viommu_endpoint_detach(e.ep, NP), 0);
	CHECK_EQ(viommu_domain_destroy(e.dom), 0);
	CHECK_EQ(viommu_endpoint_detach(e.ep, 2), 0);
	CHECK_EQ(viommu_domain_destroy(b), 0);
	CHECK_U64(fx_stats(&e.f).domains, 0);
	CHECK_U64(fx_stats(&e.f).mappings, 0);
	fx_fini(&e.f);
}

TEST(map_before_attach_works)
{
	/* DESIGN.md §3: map before attach works. */
	struct viommu_domain *d;
	struct viommu_endpoint *ep;
	struct viommu_xlate x;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE((d = fx_paging(&f, 5)) != NULL);
	CHECK_EQ(viommu_domain_map(d, 0x40000, 0x4ffff, 0x100000, RW), 0);
	CHECK_EQ(viommu_domain_lookup(d, 0x40010, 4, VIOMMU_READ, &x), 0);
	CHECK_U64(x.gpa, 0x100010);
	REQUIRE((ep = fx_ep(&f, 1)) != NULL);
	CHECK_EQ(viommu_endpoint_attach(ep, NP, d), 0);
	CHECK_EQ(viommu_translate(ep, NP, 0x4fff0, 0x100, VIOMMU_WRITE, &x,
				  NULL), 0);
	CHECK_U64(x.gpa, 0x10fff0);
	CHECK(x.hva == f.ram0 + 0x10fff0);
	CHECK_EQ(x.len, 0x10);
	fx_fini(&f);
}

TEST(attach_bad_pasid_einval)
{
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, VIOMMU_PASID_MAX + 1, e.dom),
		 -EINVAL);
	CHECK_EQ(viommu_endpoint_attach(e.ep, NP - 1, e.dom), -EINVAL);
	CHECK_EQ(fx_info(e.dom).endpoints, 1);
	fx_fini(&e.f);
}

TEST_MAIN()
