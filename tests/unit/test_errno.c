/*
 * test_errno.c - one errno per failure across the public calls
 * (docs/API.md, "Errno summary"; issue 16 item 6): a limit reached answers
 * -ENOSPC and an allocation that fails answers -ENOMEM, so a VMM can tell
 * a guest flood from host memory pressure.  For every call a limit can
 * refuse, the limit is hit once (-ENOSPC) and an allocation is failed
 * once with room left under the limit (-ENOMEM); both change nothing.
 * The front ends: virtio-iommu creation and fault injection, SMMUv3 and
 * VT-d endpoints (allocation only: no core limit surfaces there).  The
 * guest-visible side (virtio-iommu answers NOMEM for both, its log line
 * says which) is in test_virtio_iommu_scenarios.c, limits_nomem_*.
 */
#include "harness.h"
#include "core_fixture.h"

#include <viommu/smmuv3.h>
#include <viommu/virtio_iommu.h>
#include <viommu/vtd.h>

#define RW (VIOMMU_READ | VIOMMU_WRITE)
#define NP VIOMMU_NO_PASID

/* An allocator that fails every call while armed. */
static bool armed;

static void *arm_alloc(void *opaque, size_t size)
{
	(void)opaque;
	return __atomic_load_n(&armed, __ATOMIC_RELAXED) ? NULL : malloc(size);
}

static void arm_free(void *opaque, void *p)
{
	(void)opaque;
	free(p);
}

static const struct viommu_allocator arm_al = { arm_alloc, arm_free, NULL };

/* FAILING() - evaluate @expr with every allocation failing. */
#define FAILING(expr)                                                      \
	({                                                                 \
		int rc_;                                                   \
		__atomic_store_n(&armed, true, __ATOMIC_RELAXED);          \
		rc_ = (expr);                                              \
		__atomic_store_n(&armed, false, __ATOMIC_RELAXED);         \
		rc_;                                                       \
	})

/* A notifier that records nothing. */
static void nop_cb(void *opaque, const struct viommu_event *ev)
{
	(void)opaque;
	(void)ev;
}

TEST(endpoint_create_limit_vs_memory)
{
	struct fx_opts o = { .limits = { .max_endpoints = 2 },
			     .alloc = &arm_al };
	struct viommu_endpoint *ep;
	struct fx f;

	REQUIRE(fx_init(&f, &o) == 0);
	CHECK_EQ(viommu_endpoint_create(f.ctx, 1, &ep), 0);
	CHECK_EQ(FAILING(viommu_endpoint_create(f.ctx, 2, &ep)), -ENOMEM);
	CHECK_EQ(viommu_endpoint_lookup(f.ctx, 2, &ep), -ENOENT);
	CHECK_EQ(viommu_endpoint_create(f.ctx, 2, &ep), 0);
	CHECK_EQ(viommu_endpoint_create(f.ctx, 3, &ep), -ENOSPC);
	CHECK_EQ(viommu_endpoint_lookup(f.ctx, 3, &ep), -ENOENT);
	fx_fini(&f);
}

TEST(domain_create_limit_vs_memory)
{
	struct fx_opts o = { .limits = { .max_domains = 1 },
			     .alloc = &arm_al };
	struct viommu_domain_config c = { .kind = VIOMMU_DOMAIN_PAGING };
	struct viommu_domain *d = NULL, *d2 = NULL;
	struct fx f;

	REQUIRE(fx_init(&f, &o) == 0);
	CHECK_EQ(FAILING(viommu_domain_create(f.ctx, &c, &d)), -ENOMEM);
	CHECK(d == NULL);
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), 0);
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d2), -ENOSPC);
	CHECK(d2 == NULL);
	fx_fini(&f);
}

TEST(map_limits_vs_memory)
{
	struct fx_opts o = { .limits = { .max_mappings_per_domain = 2,
					 .max_mappings = 3 },
			     .alloc = &arm_al };
	struct viommu_domain *a, *b;
	struct fx f;

	REQUIRE(fx_init(&f, &o) == 0);
	REQUIRE((a = fx_paging(&f, 1)) != NULL);
	REQUIRE((b = fx_paging(&f, 2)) != NULL);
	/* an empty store must allocate its first leaf */
	CHECK_EQ(FAILING(viommu_domain_map(a, 0, PAGE - 1, RAM0_GPA, RW)),
		 -ENOMEM);
	CHECK_EQ(fx_info(a).mappings, 0);
	CHECK_U64(fx_stats(&f).mappings_refused, 0);
	CHECK_EQ(viommu_domain_map(a, 0, PAGE - 1, RAM0_GPA, RW), 0);
	CHECK_EQ(viommu_domain_map(a, PAGE, 2 * PAGE - 1, RAM0_GPA, RW), 0);
	/* the domain's own cap */
	CHECK_EQ(viommu_domain_map(a, 4 * PAGE, 5 * PAGE - 1, RAM0_GPA, RW),
		 -ENOSPC);
	CHECK_EQ(fx_info(a).mappings, 2);
	/* the context-wide cap: b has room of its own, the context not */
	CHECK_EQ(viommu_domain_map(b, 0, PAGE - 1, RAM0_GPA, RW), 0);
	CHECK_EQ(viommu_domain_map(b, PAGE, 2 * PAGE - 1, RAM0_GPA, RW),
		 -ENOSPC);
	CHECK_EQ(fx_info(b).mappings, 1);
	CHECK_U64(fx_stats(&f).mappings_refused, 1);
	fx_fini(&f);
}

TEST(pasid_attach_limit_vs_memory)
{
	struct fx_opts o = { .limits = { .max_pasids_per_endpoint = 1 },
			     .alloc = &arm_al };
	struct viommu_endpoint *ep;
	struct viommu_domain *d, *e, *cur = NULL;
	struct fx f;

	REQUIRE(fx_init(&f, &o) == 0);
	REQUIRE((ep = fx_ep(&f, 1)) != NULL);
	REQUIRE((d = fx_paging(&f, 1)) != NULL);
	REQUIRE((e = fx_paging(&f, 2)) != NULL);
	/* a reserved region makes the attach grow the domain's union */
	REQUIRE(viommu_endpoint_add_resv(ep, 0xfee00000, 0xfeefffff,
					 VIOMMU_RESV_MSI) == 0);
	CHECK_EQ(FAILING(viommu_endpoint_attach(ep, 5, d)), -ENOMEM);
	CHECK_EQ(viommu_endpoint_domain(ep, 5, &cur), 0);
	CHECK(cur == NULL);
	CHECK_EQ(viommu_endpoint_attach(ep, 5, d), 0);
	CHECK_EQ(viommu_endpoint_attach(ep, 6, e), -ENOSPC);
	CHECK_EQ(viommu_endpoint_domain(ep, 6, &cur), 0);
	CHECK(cur == NULL);
	fx_fini(&f);
}

TEST(resv_limit_vs_memory)
{
	struct fx_opts o = { .limits = { .max_resv_per_endpoint = 1 },
			     .alloc = &arm_al };
	struct viommu_endpoint *ep;
	unsigned int n = 9;
	struct fx f;

	REQUIRE(fx_init(&f, &o) == 0);
	REQUIRE((ep = fx_ep(&f, 1)) != NULL);
	CHECK_EQ(FAILING(viommu_endpoint_add_resv(ep, 0x1000, 0x1fff,
						  VIOMMU_RESV_RESERVED)),
		 -ENOMEM);
	CHECK_EQ(viommu_endpoint_get_resv(ep, NULL, 0, &n), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(viommu_endpoint_add_resv(ep, 0x1000, 0x1fff,
					  VIOMMU_RESV_RESERVED), 0);
	CHECK_EQ(viommu_endpoint_add_resv(ep, 0x3000, 0x3fff,
					  VIOMMU_RESV_RESERVED), -ENOSPC);
	CHECK_EQ(viommu_endpoint_get_resv(ep, NULL, 0, &n), 0);
	CHECK_EQ(n, 1);
	fx_fini(&f);
}

TEST(notifier_limit_vs_memory)
{
	struct fx_opts o = { .limits = { .max_notifiers_per_domain = 1 },
			     .alloc = &arm_al };
	struct viommu_notifier *n = NULL, *n2 = NULL;
	struct viommu_domain *d;
	struct fx f;

	REQUIRE(fx_init(&f, &o) == 0);
	REQUIRE((d = fx_paging(&f, 1)) != NULL);
	CHECK_EQ(FAILING(viommu_notifier_add(d, VIOMMU_EVENT_MAP, nop_cb,
					     NULL, &n)), -ENOMEM);
	CHECK(n == NULL);
	CHECK_EQ(viommu_notifier_add(d, VIOMMU_EVENT_MAP, nop_cb, NULL, &n),
		 0);
	CHECK_EQ(viommu_notifier_add(d, VIOMMU_EVENT_MAP, nop_cb, NULL, &n2),
		 -ENOSPC);
	CHECK(n2 == NULL);
	viommu_notifier_remove(n);
	fx_fini(&f);
}

/* virtio-iommu: creation allocates (-ENOMEM); a full backlog is -ENOSPC. */
TEST(virtio_iommu_memory_vs_backlog)
{
	struct viommu_virtio_iommu_config c = { .size = sizeof(c),
						.event_backlog = 1 };
	struct viommu_fault flt = { .reason = VIOMMU_FAULT_NO_MAPPING,
				    .endpoint = 1 };
	struct viommu_virtio_iommu *vi = NULL;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	c.ctx = f.ctx;
	c.mem = f.mem;
	c.allocator = arm_al;
	CHECK_EQ(FAILING(viommu_virtio_iommu_create(&c, &vi)), -ENOMEM);
	CHECK(vi == NULL);
	REQUIRE(viommu_virtio_iommu_create(&c, &vi) == 0);
	/* no driver: reports wait in the backlog of one */
	CHECK_EQ(viommu_virtio_iommu_report_fault(vi, &flt), 0);
	CHECK_EQ(viommu_virtio_iommu_report_fault(vi, &flt), -ENOSPC);
	viommu_virtio_iommu_destroy(vi);
	fx_fini(&f);
}

/* SMMUv3 and VT-d: adding an endpoint fails only for memory. */
TEST(register_models_add_endpoint_memory)
{
	struct viommu_smmuv3_config sc = { .size = sizeof(sc) };
	struct viommu_vtd_config vc = { .size = sizeof(vc) };
	struct viommu_endpoint *e1, *e2;
	struct viommu_smmuv3 *smmu;
	struct viommu_vtd *vtd;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE((e1 = fx_ep(&f, 0x10)) != NULL);
	REQUIRE((e2 = fx_ep(&f, 0x20)) != NULL);
	sc.ctx = vc.ctx = f.ctx;
	sc.mem = vc.mem = f.mem;
	sc.allocator = vc.allocator = arm_al;
	REQUIRE(viommu_smmuv3_create(&sc, &smmu) == 0);
	REQUIRE(viommu_vtd_create(&vc, &vtd) == 0);
	CHECK_EQ(FAILING(viommu_smmuv3_add_endpoint(smmu, e1)), -ENOMEM);
	CHECK_EQ(viommu_smmuv3_add_endpoint(smmu, e1), 0);
	CHECK_EQ(viommu_smmuv3_add_endpoint(smmu, e1), -EEXIST);
	CHECK_EQ(FAILING(viommu_vtd_add_endpoint(vtd, e2)), -ENOMEM);
	CHECK_EQ(viommu_vtd_add_endpoint(vtd, e2), 0);
	CHECK_EQ(viommu_vtd_add_endpoint(vtd, e2), -EEXIST);
	viommu_vtd_destroy(vtd);
	viommu_smmuv3_destroy(smmu);
	fx_fini(&f);
}

TEST_MAIN()
