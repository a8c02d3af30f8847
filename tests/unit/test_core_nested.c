/*
 * test_core_nested.c - unit tests of nested domains (a stage-1 op over a PAGING parent:
 * composition, faults per stage, invalidation) and every core call's
 * NULL-argument check.
 * Every expected errno is the one include/viommu/core.h documents.
 */
#include "harness.h"
#include "core_fixture.h"

#define RW (VIOMMU_READ | VIOMMU_WRITE)
#define NP VIOMMU_NO_PASID

/* ------------------------------------------------------------------ */
/* Nested domains                                                     */

#define S1_BASE 0x1000000ull
#define S1_IPA 0x40000000ull

/*
 * struct s1_toy - a stage 1 over [S1_BASE, +32 pages): ipa = iova - S1_BASE
 * + S1_IPA + shift, one page at a time (or to the end with long_len), perm
 * from a table.
 */
struct s1_toy {
	uint64_t shift;
	bool long_len; /* contiguous to the end of the 32 pages */
	uint32_t perm[32];
	uint32_t last_pasid;
	unsigned int calls;
};

/* s1_translate() - struct viommu_stage1_ops.translate of the toy. */
static int s1_translate(void *opaque, uint32_t pasid, uint64_t iova,
			unsigned int access, uint64_t *ipa, uint64_t *len,
			uint32_t *perm)
{
	struct s1_toy *t = opaque;

	(void)access;
	t->calls++;
	t->last_pasid = pasid;
	if (iova < S1_BASE || iova - S1_BASE >= 32 * PAGE)
		return -EFAULT;
	*ipa = iova - S1_BASE + S1_IPA + t->shift;
	*len = t->long_len ? S1_BASE + 32 * PAGE - iova
			   : PAGE - (iova & (PAGE - 1));
	*perm = t->perm[(iova - S1_BASE) / PAGE];
	return 0;
}

static const struct viommu_stage1_ops s1_ops = { .translate = s1_translate };

/* struct nenv - env whose endpoint is attached to a NESTED domain. */
struct nenv {
	struct env e;
	struct viommu_domain *nested;
	struct s1_toy t;
};

/*
 * nested_env() - parent maps [S1_IPA, +16 pages) -> 0x300000 RW and
 * [S1_IPA + 16 pages, +1 page) -> 0x310000 read-only; stage 1 page 0 is
 * read-only, the rest RW.
 */
static int nested_env(struct nenv *n)
{
	struct viommu_domain_config c = { .kind = VIOMMU_DOMAIN_NESTED,
					  .tag = 20, .s1 = &s1_ops };
	int rc;

	memset(&n->t, 0, sizeof(n->t));
	for (int i = 0; i < 32; i++)
		n->t.perm[i] = i == 0 ? VIOMMU_READ : RW;
	rc = env_init(&n->e, NULL);
	if (rc)
		return rc;
	rc = viommu_endpoint_detach(n->e.ep, NP);
	if (!rc)
		rc = viommu_domain_map(n->e.dom, S1_IPA, S1_IPA + 16 * PAGE - 1,
				       0x300000, RW);
	if (!rc)
		rc = viommu_domain_map(n->e.dom, S1_IPA + 16 * PAGE,
				       S1_IPA + 17 * PAGE - 1, 0x310000,
				       VIOMMU_READ);
	c.parent = n->e.dom;
	c.s1_opaque = &n->t;
	if (!rc)
		rc = viommu_domain_create(n->e.f.ctx, &c, &n->nested);
	if (!rc)
		rc = viommu_endpoint_attach(n->e.ep, NP, n->nested);
	return rc;
}

TEST(nested_translate_composes_stages)
{
	struct viommu_xlate x;
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	CHECK_EQ(viommu_domain_kind(n.nested), VIOMMU_DOMAIN_NESTED);
	CHECK_U64(viommu_domain_tag(n.nested), 20);
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 0x10, 0x20,
				  VIOMMU_READ, &x, NULL), 0);
	CHECK_U64(x.gpa, 0x300010);
	CHECK(x.hva == n.e.f.ram0 + 0x300010);
	CHECK_EQ(x.len, 0x20);
	CHECK_EQ(n.t.last_pasid, NP);
	/* Stage 1 contiguity bounds the length. */
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 3 * PAGE - 8, 64,
				  VIOMMU_WRITE, &x, NULL), 0);
	CHECK_U64(x.gpa, 0x303000 - 8);
	CHECK_EQ(x.len, 8);
	/* Stage 2 mapping end bounds it as well. */
	n.t.long_len = true;
	CHECK_EQ(viommu_domain_lookup(n.nested, S1_BASE + 15 * PAGE, 2 * PAGE,
				      VIOMMU_READ, &x), 0);
	CHECK_U64(x.gpa, 0x30f000);
	CHECK_EQ(x.len, PAGE);
	CHECK_EQ(fx_faults(&n.e.f), 0);
	fx_fini(&n.e.f);
}

TEST(nested_permission_faults)
{
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	/* Stage 1 says read-only. */
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE, 4, VIOMMU_WRITE, &x,
				  &flt), -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_PERMISSION);
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE, 4, VIOMMU_READ, &x,
				  &flt), 0);
	/* Stage 2 says read-only. */
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 16 * PAGE, 4,
				  VIOMMU_WRITE, &x, &flt), -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_PERMISSION);
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 16 * PAGE, 4,
				  VIOMMU_READ, &x, &flt), 0);
	CHECK_U64(x.gpa, 0x310000);
	fx_fini(&n.e.f);
}

TEST(nested_stage1_refusal_faults_stage1)
{
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 32 * PAGE, 4,
				  VIOMMU_READ, &x, &flt), -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_STAGE1);
	CHECK_U64(flt.address, S1_BASE + 32 * PAGE);
	CHECK_U64(flt.domain_tag, 20);
	CHECK_EQ(viommu_translate(n.e.ep, NP, 0, 4, VIOMMU_READ, &x, &flt),
		 -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_STAGE1);
	CHECK_EQ(n.e.f.last_fault.reason, VIOMMU_FAULT_STAGE1);
	/* Stage 1 fine, stage 2 has nothing there. */
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 20 * PAGE, 4,
				  VIOMMU_READ, &x, &flt), -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_NO_MAPPING);
	fx_fini(&n.e.f);
}

TEST(nested_parent_destroy_busy)
{
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	CHECK_EQ(viommu_domain_destroy(n.e.dom), -EBUSY);
	CHECK_EQ(viommu_domain_destroy(n.nested), -EBUSY);
	CHECK_EQ(viommu_endpoint_detach(n.e.ep, NP), 0);
	CHECK_EQ(viommu_domain_destroy(n.e.dom), -EBUSY);
	CHECK_U64(fx_info(n.e.dom).mappings, 2);
	CHECK_EQ(viommu_domain_destroy(n.nested), 0);
	CHECK_EQ(viommu_domain_destroy(n.e.dom), 0);
	fx_fini(&n.e.f);
}

/*
 * A NESTED domain without a parent: the stage-1 ops' output is a GPA
 * (a front end that walks both guest stages itself, like SMMUv3).
 */
TEST(nested_without_parent_stage1_gives_gpa)
{
	struct viommu_domain_config c = { .kind = VIOMMU_DOMAIN_NESTED,
					  .tag = 21, .s1 = &s1_ops };
	struct viommu_domain *d;
	struct viommu_xlate x;
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	c.s1_opaque = &n.t;
	REQUIRE(viommu_domain_create(n.e.f.ctx, &c, &d) == 0);
	REQUIRE(viommu_endpoint_attach(n.e.ep, NP, d) == 0);
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + 0x10, 0x20,
				  VIOMMU_READ, &x, NULL), 0);
	/* The toy stage 1 outputs S1_IPA + offset; no stage 2 applies. */
	CHECK_U64(x.gpa, S1_IPA + 0x10);
	CHECK_EQ(x.len, 0x20);
	/* Stage-1 permissions still apply: page 0 is read-only. */
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE, 4, VIOMMU_WRITE, &x,
				  NULL), -EFAULT);
	fx_fini(&n.e.f);
}

TEST(nested_create_bad_args)
{
	struct viommu_stage1_ops empty = { 0 };
	struct viommu_domain_config c = { .kind = VIOMMU_DOMAIN_NESTED,
					  .s1 = &s1_ops };
	struct viommu_domain *d = NULL, *p;
	struct viommu_ctx *ctx2 = NULL;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	REQUIRE((p = fx_paging(&f, 1)) != NULL);
	/* No parent is allowed: stage 1 then yields GPAs. */
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), 0);
	CHECK_EQ(viommu_domain_destroy(d), 0);
	c.parent = viommu_ctx_identity_domain(f.ctx);
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	c.parent = p;
	c.s1 = NULL;
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	c.s1 = &empty;
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	c.s1 = &s1_ops;
	c.kind = VIOMMU_DOMAIN_IDENTITY;
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	c.kind = VIOMMU_DOMAIN_BLOCKED;
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	c.kind = (enum viommu_domain_kind)99;
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	/* A parent from another context. */
	struct viommu_ctx_config cc = fx_ctx_config(&f, NULL);
	REQUIRE(viommu_ctx_create(&cc, &ctx2) == 0);
	c.kind = VIOMMU_DOMAIN_NESTED;
	CHECK_EQ(viommu_domain_create(ctx2, &c, &d), -EINVAL);
	/* A nested parent is not PAGING. */
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), 0);
	c.parent = d;
	CHECK_EQ(viommu_domain_create(f.ctx, &c, &d), -EINVAL);
	CHECK_U64(fx_stats(&f).domains, 2);
	viommu_ctx_destroy(ctx2);
	fx_fini(&f);
}

TEST(nested_refuses_paging_ops)
{
	uint64_t bm = 0;
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	CHECK_EQ(viommu_domain_map(n.nested, 0, 0xfff, 0, RW), -EOPNOTSUPP);
	CHECK_EQ(viommu_domain_unmap(n.nested, 0, 0xfff, NULL), -EOPNOTSUPP);
	CHECK_EQ(viommu_domain_dirty_enable(n.nested, true), -EOPNOTSUPP);
	CHECK_EQ(viommu_domain_dirty_read(n.nested, 0, 0xfff, &bm, 1, 0),
		 -EOPNOTSUPP);
	CHECK_EQ(fx_info(n.nested).kind, VIOMMU_DOMAIN_NESTED);
	CHECK_EQ(fx_info(n.nested).endpoints, 1);
	fx_fini(&n.e.f);
}

TEST(nested_parent_unmap_invalidates)
{
	struct viommu_fault flt;
	struct viommu_xlate x;
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	for (int i = 0; i < 2; i++)
		CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + PAGE, VIOMMU_READ),
			  0x301000);
	CHECK_EQ(viommu_domain_unmap(n.e.dom, S1_IPA, S1_IPA + 16 * PAGE - 1,
				     NULL), 0);
	CHECK_EQ(viommu_translate(n.e.ep, NP, S1_BASE + PAGE, 4, VIOMMU_READ,
				  &x, &flt), -EFAULT);
	CHECK_EQ(flt.reason, VIOMMU_FAULT_NO_MAPPING);
	CHECK_EQ(viommu_domain_map(n.e.dom, S1_IPA, S1_IPA + 16 * PAGE - 1,
				   0x500000, RW), 0);
	CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + PAGE, VIOMMU_READ),
		  0x501000);
	fx_fini(&n.e.f);
}

TEST(nested_invalidate_sees_new_stage1)
{
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + PAGE, VIOMMU_READ),
		  0x301000);
	n.t.shift = 2 * PAGE;
	CHECK_EQ(viommu_domain_invalidate(n.nested, S1_BASE + PAGE,
					  S1_BASE + 2 * PAGE - 1), 0);
	CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + PAGE, VIOMMU_READ),
		  0x303000);
	CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + 2 * PAGE, VIOMMU_READ),
		  0x304000);
	n.t.shift = 4 * PAGE;
	CHECK_EQ(viommu_domain_invalidate_all(n.nested), 0);
	CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + PAGE, VIOMMU_READ),
		  0x305000);
	n.t.shift = 0;
	CHECK_EQ(viommu_ctx_invalidate_all(n.e.f.ctx), 0);
	CHECK_U64(fx_gpa_of(n.e.ep, NP, S1_BASE + PAGE, VIOMMU_READ),
		  0x301000);
	fx_fini(&n.e.f);
}

TEST(nested_pasid_passed_to_stage1)
{
	struct nenv n;

	REQUIRE(nested_env(&n) == 0);
	CHECK_EQ(viommu_endpoint_attach(n.e.ep, 5, n.nested), 0);
	CHECK_U64(fx_gpa_of(n.e.ep, 5, S1_BASE + 0x20, VIOMMU_READ),
		  0x300020);
	CHECK_EQ(n.t.last_pasid, 5);
	CHECK(n.t.calls >= 1);
	fx_fini(&n.e.f);
}

/* ------------------------------------------------------------------ */
/* NULL arguments                                                     */

/* Objects the NULL cases below use. */
static struct env nul;

#define NCASE(name, expr)                                                  \
	static int nc_##name(void)                                         \
	{                                                                  \
		return (expr);                                             \
	}
#define NROW(name) { #name, nc_##name }

static struct viommu_ctx *nul_ctx_out;
static struct viommu_endpoint *nul_ep_out;
static struct viommu_domain *nul_dom_out;
static struct viommu_notifier *nul_n_out;
static struct viommu_ctx_stats nul_stats;
static struct viommu_domain_info nul_info;
static struct viommu_xlate nul_x;
static struct viommu_resv nul_resv[2];
static unsigned int nul_n;
static void *nul_hva;
static size_t nul_len;
static uint64_t nul_bm[4];
static uint8_t nul_buf[8];
static const struct viommu_domain_config nul_dcfg = {
	.kind = VIOMMU_DOMAIN_PAGING };
static const struct viommu_mem_region nul_region = {
	.gpa = 0, .size = 4096, .fd = -1, .hva = nul_buf };

NCASE(ctx_create_cfg, viommu_ctx_create(NULL, &nul_ctx_out))
NCASE(ctx_create_out, viommu_ctx_create(&(struct viommu_ctx_config){
	.mem = nul.f.mem }, NULL))
NCASE(ctx_create_mem, viommu_ctx_create(&(struct viommu_ctx_config){
	.mem = NULL }, &nul_ctx_out))
NCASE(ctx_set_bypass, viommu_ctx_set_bypass(NULL, true))
NCASE(ctx_invalidate_all, viommu_ctx_invalidate_all(NULL))
NCASE(ctx_stats_ctx, viommu_ctx_stats(NULL, &nul_stats, sizeof(nul_stats)))
NCASE(ctx_stats_out, viommu_ctx_stats(nul.f.ctx, NULL, sizeof(nul_stats)))
NCASE(ep_create_ctx, viommu_endpoint_create(NULL, 5, &nul_ep_out))
NCASE(ep_create_out, viommu_endpoint_create(nul.f.ctx, 5, NULL))
NCASE(ep_lookup_ctx, viommu_endpoint_lookup(NULL, 1, &nul_ep_out))
NCASE(ep_lookup_out, viommu_endpoint_lookup(nul.f.ctx, 1, NULL))
NCASE(ep_add_resv, viommu_endpoint_add_resv(NULL, 0, 0xfff,
					     VIOMMU_RESV_RESERVED))
NCASE(ep_get_resv_ep, viommu_endpoint_get_resv(NULL, nul_resv, 2, &nul_n))
NCASE(ep_get_resv_out, viommu_endpoint_get_resv(nul.ep, NULL, 2, &nul_n))
NCASE(ep_get_resv_n, viommu_endpoint_get_resv(nul.ep, nul_resv, 2, NULL))
NCASE(ep_attach_ep, viommu_endpoint_attach(NULL, NP, nul.dom))
NCASE(ep_attach_dom, viommu_endpoint_attach(nul.ep, NP, NULL))
NCASE(ep_attach_pasid_dom, viommu_endpoint_attach(nul.ep, 1, NULL))
NCASE(ep_detach, viommu_endpoint_detach(NULL, NP))
NCASE(ep_domain_ep, viommu_endpoint_domain(NULL, NP, &nul_dom_out))
NCASE(ep_domain_out, viommu_endpoint_domain(nul.ep, NP, NULL))
NCASE(dom_create_ctx, viommu_domain_create(NULL, &nul_dcfg, &nul_dom_out))
NCASE(dom_create_cfg, viommu_domain_create(nul.f.ctx, NULL, &nul_dom_out))
NCASE(dom_create_out, viommu_domain_create(nul.f.ctx, &nul_dcfg, NULL))
NCASE(dom_destroy, viommu_domain_destroy(NULL))
NCASE(dom_map, viommu_domain_map(NULL, 0, 0xfff, 0, RW))
NCASE(dom_unmap, viommu_domain_unmap(NULL, 0, 0xfff, NULL))
NCASE(dom_invalidate, viommu_domain_invalidate(NULL, 0, 0xfff))
NCASE(dom_invalidate_all, viommu_domain_invalidate_all(NULL))
NCASE(dom_lookup_dom, viommu_domain_lookup(NULL, 0, 1, VIOMMU_READ, &nul_x))
NCASE(dom_lookup_out, viommu_domain_lookup(nul.dom, 0, 1, VIOMMU_READ, NULL))
NCASE(dom_for_each_dom, viommu_domain_for_each_mapping(NULL, 0, 1,
						       fx_collect_cb, NULL))
NCASE(dom_for_each_fn, viommu_domain_for_each_mapping(nul.dom, 0, 1, NULL,
						      NULL))
NCASE(dom_info_dom, viommu_domain_info(NULL, &nul_info, sizeof(nul_info)))
NCASE(dom_info_out, viommu_domain_info(nul.dom, NULL, sizeof(nul_info)))
NCASE(translate_ep, viommu_translate(NULL, NP, 0, 1, VIOMMU_READ, &nul_x,
				     NULL))
NCASE(translate_out, viommu_translate(nul.ep, NP, 0, 1, VIOMMU_READ, NULL,
				      NULL))
NCASE(dma_read_ep, viommu_dma_read(NULL, NP, 0, nul_buf, 4))
NCASE(dma_read_buf, viommu_dma_read(nul.ep, NP, 0, NULL, 4))
NCASE(dma_write_ep, viommu_dma_write(NULL, NP, 0, nul_buf, 4))
NCASE(dma_write_buf, viommu_dma_write(nul.ep, NP, 0, NULL, 4))
NCASE(dirty_enable, viommu_domain_dirty_enable(NULL, true))
NCASE(dirty_read_dom, viommu_domain_dirty_read(NULL, 0, 0xfff, nul_bm, 4, 0))
NCASE(dirty_read_bm, viommu_domain_dirty_read(nul.dom, 0, 0xfff, NULL, 4, 0))
NCASE(notifier_add_dom, viommu_notifier_add(NULL, VIOMMU_EVENT_MAP, ev_cb,
					    NULL, &nul_n_out))
NCASE(notifier_add_fn, viommu_notifier_add(nul.dom, VIOMMU_EVENT_MAP, NULL,
					   NULL, &nul_n_out))
NCASE(notifier_add_out, viommu_notifier_add(nul.dom, VIOMMU_EVENT_MAP, ev_cb,
					    NULL, NULL))
NCASE(mem_create_out, viommu_mem_create(NULL, NULL))
NCASE(mem_set_regions_mem, viommu_mem_set_regions(NULL, &nul_region, 1))
NCASE(mem_set_regions_regions, viommu_mem_set_regions(nul.f.mem, NULL, 1))
NCASE(mem_read_mem, viommu_mem_read(NULL, 0, nul_buf, 4))
NCASE(mem_read_buf, viommu_mem_read(nul.f.mem, 0, NULL, 4))
NCASE(mem_write_mem, viommu_mem_write(NULL, 0, nul_buf, 4))
NCASE(mem_write_buf, viommu_mem_write(nul.f.mem, 0, NULL, 4))
NCASE(mem_ptr_mem, viommu_mem_ptr(NULL, 0, 4, VIOMMU_READ, &nul_hva,
				  &nul_len))
NCASE(mem_ptr_hva, viommu_mem_ptr(nul.f.mem, 0, 4, VIOMMU_READ, NULL,
				  &nul_len))
NCASE(mem_ptr_contig, viommu_mem_ptr(nul.f.mem, 0, 4, VIOMMU_READ, &nul_hva,
				     NULL))

static const struct {
	const char *name;
	int (*fn)(void);
} null_cases[] = {
	NROW(ctx_create_cfg), NROW(ctx_create_out), NROW(ctx_create_mem),
	NROW(ctx_set_bypass), NROW(ctx_invalidate_all), NROW(ctx_stats_ctx),
	NROW(ctx_stats_out), NROW(ep_create_ctx), NROW(ep_create_out),
	NROW(ep_lookup_ctx), NROW(ep_lookup_out), NROW(ep_add_resv),
	NROW(ep_get_resv_ep), NROW(ep_get_resv_out), NROW(ep_get_resv_n),
	NROW(ep_attach_ep), NROW(ep_attach_dom), NROW(ep_attach_pasid_dom),
	NROW(ep_detach), NROW(ep_domain_ep), NROW(ep_domain_out),
	NROW(dom_create_ctx), NROW(dom_create_cfg), NROW(dom_create_out),
	NROW(dom_destroy), NROW(dom_map), NROW(dom_unmap),
	NROW(dom_invalidate), NROW(dom_invalidate_all), NROW(dom_lookup_dom),
	NROW(dom_lookup_out), NROW(dom_for_each_dom), NROW(dom_for_each_fn),
	NROW(dom_info_dom), NROW(dom_info_out), NROW(translate_ep),
	NROW(translate_out), NROW(dma_read_ep), NROW(dma_read_buf),
	NROW(dma_write_ep), NROW(dma_write_buf), NROW(dirty_enable),
	NROW(dirty_read_dom), NROW(dirty_read_bm), NROW(notifier_add_dom),
	NROW(notifier_add_fn), NROW(notifier_add_out), NROW(mem_create_out),
	NROW(mem_set_regions_mem), NROW(mem_set_regions_regions),
	NROW(mem_read_mem), NROW(mem_read_buf), NROW(mem_write_mem),
	NROW(mem_write_buf), NROW(mem_ptr_mem), NROW(mem_ptr_hva),
	NROW(mem_ptr_contig),
};

TEST(null_args_rejected)
{
	struct viommu_ctx_stats s0;

	REQUIRE(env_init(&nul, NULL) == 0);
	REQUIRE(viommu_domain_map(nul.dom, 0, 0xfff, 0, RW) == 0);
	REQUIRE(viommu_domain_dirty_enable(nul.dom, true) == 0);
	s0 = fx_stats(&nul.f);
	for (unsigned int i = 0; i < sizeof(null_cases) / sizeof(null_cases[0]);
	     i++) {
		int rc = null_cases[i].fn();

		if (rc != -EINVAL)
			printf("#   NULL case %s: got %d, want %d\n",
			       null_cases[i].name, rc, -EINVAL);
		CHECK_EQ(rc, -EINVAL);
	}
	/* Nothing changed. */
	CHECK_U64(fx_stats(&nul.f).endpoints, s0.endpoints);
	CHECK_U64(fx_stats(&nul.f).domains, s0.domains);
	CHECK_U64(fx_info(nul.dom).mappings, 1);
	CHECK_U64(fx_gpa_of(nul.ep, NP, 0x10, VIOMMU_READ), 0x10);
	/* Destructors take NULL. */
	viommu_ctx_destroy(NULL);
	viommu_endpoint_destroy(NULL);
	viommu_notifier_remove(NULL);
	viommu_mem_destroy(NULL);
	fx_fini(&nul.f);
}

TEST_MAIN()
