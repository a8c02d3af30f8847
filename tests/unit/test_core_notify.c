/*
 * test_core_notify.c - unit tests of the core's notifiers (event fields, order, masks,
 * removal) and its object limits.
 * Every expected errno is the one include/viommu/core.h documents.
 */
#include "harness.h"
#include "core_fixture.h"

#define RW (VIOMMU_READ | VIOMMU_WRITE)
#define NP VIOMMU_NO_PASID

/* ------------------------------------------------------------------ */
/* Notifiers                                                          */

TEST(notifier_map_event_fields)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL;
	const struct viommu_event *ev;
	struct evlog l = { 0 };
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l, &n),
		 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x4000, 0x5fff, 0x9000,
				   VIOMMU_READ | VIOMMU_EXEC), 0);
	CHECK_EQ(l.n, 1);
	REQUIRE((ev = ev_nth(&l, VIOMMU_EVENT_MAP, 0)) != NULL);
	CHECK(ev->domain == e.dom);
	CHECK_U64(ev->tag, 10);
	CHECK_U64(ev->iova, 0x4000);
	CHECK_U64(ev->last, 0x5fff);
	CHECK_U64(ev->gpa, 0x9000);
	CHECK_EQ(ev->prot, VIOMMU_READ | VIOMMU_EXEC);
	CHECK_EQ(ev->endpoint, 0);
	CHECK_EQ(ev->pasid, 0);
	/* A refused map tells nobody. */
	CHECK_EQ(viommu_domain_map(e.dom, 0x4000, 0x4fff, 0x9000, RW),
		 -EEXIST);
	CHECK_EQ(l.n, 1);
	viommu_notifier_remove(n);
	fx_fini(&e.f);
}

TEST(notifier_unmap_one_event_per_mapping_in_order)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL;
	const struct viommu_event *ev;
	struct evlog l = { 0 };
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x7000, 0x7fff, 0x70000, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x2fff, 0x10000,
				   VIOMMU_READ), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x4000, 0x4fff, 0x40000, RW), 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_UNMAP, ev_cb, &l, &n),
		 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x0, 0x1800, NULL), -ERANGE);
	CHECK_EQ(l.n, 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x0, 0xffff, NULL), 0);
	REQUIRE(l.n == 3);
	CHECK_EQ(l.ev[0].type, VIOMMU_EVENT_UNMAP);
	CHECK_U64(l.ev[0].iova, 0x1000);
	CHECK_U64(l.ev[0].last, 0x2fff);
	CHECK_U64(l.ev[0].gpa, 0x10000);
	CHECK_EQ(l.ev[0].prot, VIOMMU_READ);
	CHECK_U64(l.ev[1].iova, 0x4000);
	CHECK_U64(l.ev[1].gpa, 0x40000);
	CHECK_U64(l.ev[2].iova, 0x7000);
	CHECK_U64(l.ev[2].last, 0x7fff);
	CHECK_EQ(l.ev[2].prot, RW);
	REQUIRE((ev = ev_nth(&l, VIOMMU_EVENT_UNMAP, 2)) != NULL);
	CHECK(ev->domain == e.dom);
	CHECK_U64(ev->tag, 10);
	viommu_notifier_remove(n);
	fx_fini(&e.f);
}

TEST(notifier_invalidate_events)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL, *n2 = NULL;
	const struct viommu_event *ev;
	struct evlog l = { 0 }, l2 = { 0 };
	struct viommu_domain *b;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_INVALIDATE, ev_cb, &l,
				     &n), 0);
	CHECK_EQ(viommu_notifier_add(b, VIOMMU_EVENT_INVALIDATE, ev_cb, &l2,
				     &n2), 0);
	CHECK_EQ(viommu_domain_invalidate(e.dom, 0x3000, 0x5fff), 0);
	REQUIRE(l.n == 1);
	CHECK_EQ(l.ev[0].type, VIOMMU_EVENT_INVALIDATE);
	CHECK_U64(l.ev[0].iova, 0x3000);
	CHECK_U64(l.ev[0].last, 0x5fff);
	CHECK(l.ev[0].domain == e.dom);
	CHECK_U64(l.ev[0].tag, 10);
	CHECK_EQ(l2.n, 0);
	CHECK_EQ(viommu_domain_invalidate_all(e.dom), 0);
	CHECK_EQ(ev_count(&l, VIOMMU_EVENT_INVALIDATE), 2);
	REQUIRE((ev = ev_nth(&l, VIOMMU_EVENT_INVALIDATE, 1)) != NULL);
	CHECK(ev->iova <= ev->last);
	CHECK_EQ(viommu_ctx_invalidate_all(e.f.ctx), 0);
	CHECK_EQ(ev_count(&l, VIOMMU_EVENT_INVALIDATE), 3);
	CHECK_EQ(ev_count(&l2, VIOMMU_EVENT_INVALIDATE), 1);
	viommu_notifier_remove(n);
	viommu_notifier_remove(n2);
	fx_fini(&e.f);
}

TEST(notifier_attach_detach_events)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *na = NULL, *nb = NULL;
	const struct viommu_event *ev;
	struct evlog la = { 0 }, lb = { 0 };
	const uint32_t m = VIOMMU_EVENT_ATTACH | VIOMMU_EVENT_DETACH;
	struct viommu_domain *b;
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_notifier_add(e.dom, m, ev_cb, &la, &na), 0);
	CHECK_EQ(viommu_notifier_add(b, m, ev_cb, &lb, &nb), 0);
	/* Move the RID from dom to b. */
	CHECK_EQ(viommu_endpoint_attach(e.ep, NP, b), 0);
	REQUIRE((ev = ev_nth(&la, VIOMMU_EVENT_DETACH, 0)) != NULL);
	CHECK_EQ(ev->endpoint, 1);
	CHECK_U64(ev->pasid, NP);
	CHECK(ev->domain == e.dom);
	CHECK_U64(ev->tag, 10);
	REQUIRE((ev = ev_nth(&lb, VIOMMU_EVENT_ATTACH, 0)) != NULL);
	CHECK_EQ(ev->endpoint, 1);
	CHECK_U64(ev->pasid, NP);
	CHECK(ev->domain == b);
	CHECK_EQ(la.n, 1);
	CHECK_EQ(lb.n, 1);
	/* A PASID. */
	CHECK_EQ(viommu_endpoint_attach(e.ep, 5, e.dom), 0);
	REQUIRE((ev = ev_nth(&la, VIOMMU_EVENT_ATTACH, 0)) != NULL);
	CHECK_EQ(ev->pasid, 5);
	CHECK_EQ(viommu_endpoint_detach(e.ep, 5), 0);
	REQUIRE((ev = ev_nth(&la, VIOMMU_EVENT_DETACH, 1)) != NULL);
	CHECK_EQ(ev->pasid, 5);
	CHECK_EQ(ev->endpoint, 1);
	/* A failed attach tells nobody. */
	CHECK_EQ(viommu_endpoint_attach(e.ep, VIOMMU_PASID_MAX + 1, e.dom),
		 -EINVAL);
	CHECK_EQ(la.n, 3);
	CHECK_EQ(lb.n, 1);
	viommu_notifier_remove(na);
	viommu_notifier_remove(nb);
	fx_fini(&e.f);
}

TEST(notifier_endpoint_destroy_tells_detach)
{
	struct viommu_notifier *n = NULL;
	const struct viommu_event *ev;
	struct evlog l = { 0 };
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_endpoint_attach(e.ep, 6, e.dom), 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_DETACH, ev_cb, &l,
				     &n), 0);
	viommu_endpoint_destroy(e.ep);
	CHECK_EQ(ev_count(&l, VIOMMU_EVENT_DETACH), 2);
	REQUIRE((ev = ev_nth(&l, VIOMMU_EVENT_DETACH, 0)) != NULL);
	CHECK_EQ(ev->endpoint, 1);
	CHECK_EQ(fx_info(e.dom).endpoints, 0);
	viommu_notifier_remove(n);
	fx_fini(&e.f);
}

TEST(notifier_destroy_event)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL;
	const struct viommu_event *ev;
	struct evlog l = { 0 };
	struct viommu_domain *b;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE((b = fx_paging(&f, 77)) != NULL);
	CHECK_EQ(viommu_domain_map(b, 0x1000, 0x1fff, 0x1000, RW), 0);
	CHECK_EQ(viommu_notifier_add(b, VIOMMU_EVENT_DESTROY, ev_cb, &l, &n),
		 0);
	CHECK_EQ(viommu_domain_destroy(b), 0);
	CHECK_EQ(l.n, 1);
	REQUIRE((ev = ev_nth(&l, VIOMMU_EVENT_DESTROY, 0)) != NULL);
	CHECK(ev->domain == b);
	CHECK_U64(ev->tag, 77);
	fx_fini(&f);
}

TEST(notifier_mask_filters)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL;
	struct evlog l = { 0 };
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l, &n),
		 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x1000, RW), 0);
	CHECK_EQ(viommu_domain_invalidate_all(e.dom), 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0x1000, 0x1fff, NULL), 0);
	CHECK_EQ(viommu_endpoint_detach(e.ep, NP), 0);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(l.ev[0].type, VIOMMU_EVENT_MAP);
	viommu_notifier_remove(n);
	fx_fini(&e.f);
}

TEST(notifier_remove_stops_delivery)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL, *keep = NULL;
	struct evlog l = { 0 }, lk = { 0 };
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l, &n),
		 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &lk,
				     &keep), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x1000, RW), 0);
	viommu_notifier_remove(n);
	CHECK_EQ(viommu_domain_map(e.dom, 0x2000, 0x2fff, 0x1000, RW), 0);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(lk.n, 2);
	viommu_notifier_remove(NULL);
	viommu_notifier_remove(keep);
	fx_fini(&e.f);
}

TEST(notifier_bad_args_einval)
{
	/* DESIGN.md §3: notifiers on map/unmap/invalidate. */
	struct viommu_notifier *n = NULL;
	struct evlog l = { 0 };
	struct env e;

	REQUIRE(env_init(&e, NULL) == 0);
	CHECK_EQ(viommu_notifier_add(e.dom, 0, ev_cb, &l, &n), -EINVAL);
	CHECK_EQ(viommu_notifier_add(e.dom, 1u << 6, ev_cb, &l, &n), -EINVAL);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP | (1u << 20),
				     ev_cb, &l, &n), -EINVAL);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, NULL, &l, &n),
		 -EINVAL);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l, NULL),
		 -EINVAL);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x1000, RW), 0);
	CHECK_EQ(l.n, 0);
	fx_fini(&e.f);
}

TEST(notifier_limit_enospc)
{
	/* DESIGN.md §3: limits answer NOMEM, nothing changes. */
	struct fx_opts o = { .limits = { .max_notifiers_per_domain = 2 } };
	struct viommu_notifier *n[3] = { 0 };
	struct evlog l[3] = { 0 };
	struct env e;

	REQUIRE(env_init(&e, &o) == 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l[0],
				     &n[0]), 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l[1],
				     &n[1]), 0);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l[2],
				     &n[2]), -ENOSPC);
	CHECK_EQ(viommu_domain_map(e.dom, 0x1000, 0x1fff, 0x1000, RW), 0);
	CHECK_EQ(l[2].n, 0);
	viommu_notifier_remove(n[0]);
	CHECK_EQ(viommu_notifier_add(e.dom, VIOMMU_EVENT_MAP, ev_cb, &l[2],
				     &n[2]), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x2000, 0x2fff, 0x1000, RW), 0);
	CHECK_EQ(l[0].n, 1);
	CHECK_EQ(l[1].n, 2);
	CHECK_EQ(l[2].n, 1);
	viommu_notifier_remove(n[1]);
	viommu_notifier_remove(n[2]);
	fx_fini(&e.f);
}

/* ------------------------------------------------------------------ */
/* Limits                                                             */

TEST(limit_max_domains_enospc)
{
	/* DESIGN.md §3: limits answer NOMEM, nothing changes. */
	struct fx_opts o = { .limits = { .max_domains = 2 } };
	struct viommu_domain_config c = { .kind = VIOMMU_DOMAIN_PAGING };
	struct viommu_domain *a, *b, *d = NULL;
	struct fx f;

	REQUIRE(fx_init(&f, &o) == 0);
	REQUIRE((a = fx_paging(&f, 1)) && (b = fx_paging(&f, 2)));
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -ENOSPC);
	CHECK_U64(fx_stats(&f).domains, 2);
	CHECK_EQ(viommu_domain_destroy(b), 0);
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), 0);
	CHECK_U64(fx_stats(&f).domains, 2);
	fx_fini(&f);
}

TEST(limit_max_mappings_per_domain_enospc)
{
	/* DESIGN.md §3: limits answer NOMEM, nothing changes. */
	struct fx_opts o = { .limits = { .max_mappings_per_domain = 3 } };
	struct viommu_domain *b;
	struct env e;

	REQUIRE(env_init(&e, &o) == 0);
	for (uint64_t i = 0; i < 3; i++)
		CHECK_EQ(viommu_domain_map(e.dom, i * PAGE, i * PAGE + 0xfff,
					   0, RW), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x10000, 0x10fff, 0x5000, RW),
		 -ENOSPC);
	CHECK_U64(fx_info(e.dom).mappings, 3);
	CHECK_U64(fx_info(e.dom).mapped_bytes, 3 * PAGE);
	CHECK_EQ(fx_gpa_of(e.ep, NP, 0x10000, VIOMMU_READ), ~0ull);
	/* Per domain: another domain has its own budget. */
	REQUIRE((b = fx_paging(&e.f, 11)) != NULL);
	CHECK_EQ(viommu_domain_map(b, 0x10000, 0x10fff, 0x5000, RW), 0);
	CHECK_EQ(viommu_domain_unmap(e.dom, 0, 0xfff, NULL), 0);
	CHECK_EQ(viommu_domain_map(e.dom, 0x10000, 0x10fff, 0x5000, RW), 0);
	fx_fini(&e.f);
}

TEST_MAIN()
