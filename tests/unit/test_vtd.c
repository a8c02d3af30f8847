/*
 * test_vtd.c - the VT-d model: registers (T1), root/context/PASID entries
 * (T2), paging and fault reasons (T3), global command handshakes (T4),
 * register-based invalidation (T5), queued invalidation descriptors (T6),
 * the queue tail (T7), invalidation wait (T8), fault recording (T9),
 * caching semantics (T10), routing (T11).  Rule IDs: docs/VTD.md.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "test_vtd_fixture.h"

#define PA1 0x200000ull
#define PA2 0x300000ull
#define IOVA 0x40000000ull
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* setup() - fixture, the driver's enable sequence. */
static int setup(struct fx *f, uint32_t features, bool sm)
{
	struct viommu_vtd_config c = { .features = features };
	int r = fx_init(f, &c);

	return r ? r : fx_enable(f, sm);
}

/* legacy_map() - ep @i: 4-level SL tables mapping IOVA -> PA1 with @prot. */
static uint64_t legacy_map(struct fx *f, int i, uint16_t did,
			   unsigned int prot)
{
	struct vtdpt_cfg c = fx_cfg(VTDPT_SL, 4);
	uint64_t root;

	if (vtdpt_alloc_root(&f->ops, &root) ||
	    vtdpt_map(&c, &f->ops, root, IOVA, PA1, 4096, prot))
		return 0;
	fx_legacy_ctx(f, fx_sids[i], did, root, 2, 0);
	fx_desc(f, D_CC_GLOBAL, 0);
	fx_wait(f);
	return root;
}

/* ---- T1 registers ------------------------------------------------------ */

TEST(t1_capabilities_default)
{
	struct fx f;
	uint64_t cap, ecap;

	REQUIRE(fx_init(&f, NULL) == 0);
	cap = mr(&f, VR_CAP, 8);
	ecap = mr(&f, VR_ECAP, 8);
	CHECK_EQ(cap & 7, 6);                       /* ND: 16-bit DIDs */
	CHECK_EQ((cap >> 8) & 0x1f, 0x6);           /* SAGAW 39 + 48 */
	CHECK_EQ((cap >> 16) & 0x3f, 47);           /* MGAW */
	CHECK_EQ(((cap >> 24) & 0x3ff) * 16, 0x220);/* FRO */
	CHECK_EQ((cap >> 40) & 0xff, 7);            /* NFR - 1 */
	CHECK((cap >> 39) & 1);                     /* PSI */
	CHECK_EQ((cap >> 48) & 0x3f, 18);           /* MAMV */
	CHECK(!((cap >> 7) & 1));                   /* CM off */
	CHECK((ecap >> 1) & 1);                     /* QI */
	CHECK((ecap >> 6) & 1);                     /* PT */
	CHECK(!((ecap >> 3) & 1));                  /* no IR */
	CHECK_EQ(((ecap >> 8) & 0x3ff) * 16, 0x200);/* IRO */
	CHECK(!((ecap >> 43) & 1));                 /* no SMTS */
	CHECK_EQ(mr(&f, 0, 4), 0x10);               /* VER 1.0 */
	CHECK_EQ(mr(&f, VR_FECTL, 4), 1u << 31);    /* IM at reset */
	fx_fini(&f);
}

TEST(t1_capabilities_features)
{
	struct viommu_vtd_config c = {
		.features = VIOMMU_VTD_F_QI | VIOMMU_VTD_F_CM | VIOMMU_VTD_F_SM |
			    VIOMMU_VTD_F_FL | VIOMMU_VTD_F_5LVL,
	};
	struct fx f;
	uint64_t cap, ecap;

	REQUIRE(fx_init(&f, &c) == 0);
	cap = mr(&f, VR_CAP, 8);
	ecap = mr(&f, VR_ECAP, 8);
	CHECK((cap >> 7) & 1);                      /* CM */
	CHECK_EQ((cap >> 8) & 0x1f, 0xe);           /* SAGAW 39/48/57 */
	CHECK_EQ((cap >> 16) & 0x3f, 56);
	CHECK((cap >> 60) & 1);                     /* FL5LP */
	CHECK((ecap >> 43) & 1);                    /* SMTS */
	CHECK((ecap >> 46) & 1);                    /* SLTS */
	CHECK((ecap >> 47) & 1);                    /* FLTS */
	CHECK((ecap >> 40) & 1);                    /* PASID */
	CHECK(!((ecap >> 6) & 1));                  /* no PT asked */
	fx_fini(&f);
}

TEST(t1_config_refused)
{
	struct fx f;
	struct viommu_vtd *v = NULL;
	struct viommu_vtd_config c;
	uint8_t big[sizeof(c) + 8];

	REQUIRE(fx_init(&f, NULL) == 0);
	memset(&c, 0, sizeof(c));
	c.ctx = f.ctx;
	c.mem = f.mem;
	c.features = VIOMMU_VTD_F_FL;               /* FL without SM */
	CHECK_EQ(viommu_vtd_create(&c, &v), -EINVAL);
	c.features = 0;
	c.aw_bits = 40;
	CHECK_EQ(viommu_vtd_create(&c, &v), -EINVAL);
	c.aw_bits = 57;                             /* 57 without 5LVL */
	CHECK_EQ(viommu_vtd_create(&c, &v), -EINVAL);
	c.aw_bits = 0;
	c.nfr = VIOMMU_VTD_MAX_NFR + 1;
	CHECK_EQ(viommu_vtd_create(&c, &v), -EINVAL);
	c.nfr = VIOMMU_VTD_MAX_NFR;                 /* the last record ... */
	REQUIRE(viommu_vtd_create(&c, &v) == 0);
	CHECK_EQ(viommu_vtd_mmio_read(v, 0x220 + 16 * (VIOMMU_VTD_MAX_NFR - 1)
				      + 8, 8, &(uint64_t){ 0 }), 0);
	viommu_vtd_destroy(v);                      /* ... is in the frame */
	v = NULL;
	c.nfr = 0;
	memset(big, 0, sizeof(big));
	memcpy(big, &c, sizeof(c));
	((struct viommu_vtd_config *)(void *)big)->size = sizeof(big);
	big[sizeof(c) + 3] = 1;
	CHECK_EQ(viommu_vtd_create((void *)big, &v), -EINVAL);
	big[sizeof(c) + 3] = 0;
	CHECK_EQ(viommu_vtd_create((void *)big, &v), 0);
	viommu_vtd_destroy(v);
	CHECK(v != NULL);
	fx_fini(&f);
}

TEST(t1_access_rules)
{
	struct fx f;
	uint64_t v, cap;
	unsigned int w;

	REQUIRE(fx_init(&f, NULL) == 0);
	cap = mr(&f, VR_CAP, 8);
	CHECK_U64(mr(&f, VR_CAP, 4) | mr(&f, VR_CAP + 4, 4) << 32, cap);
	CHECK_EQ(viommu_vtd_mmio_read(f.vtd, VR_GSTS, 8, &v), -EINVAL);
	CHECK_EQ(viommu_vtd_mmio_read(f.vtd, 0x2, 4, &v), -EINVAL);
	CHECK_EQ(viommu_vtd_mmio_read(f.vtd, 0x1000, 4, &v), -EINVAL);
	CHECK_EQ(viommu_vtd_mmio_read(f.vtd, 0x8, 2, &v), -EINVAL);
	CHECK_EQ(viommu_vtd_mmio_write(f.vtd, VR_GCMD, 8, 0), -EINVAL);
	CHECK_EQ(viommu_vtd_mmio_read(f.vtd, 0xe00, 4, &v), 0);
	CHECK_U64(v, 0);                            /* unknown reads 0 */
	w = f.warns;
	CHECK_EQ(mw(&f, VR_CAP, 8, 0), 0);          /* read-only */
	CHECK_U64(mr(&f, VR_CAP, 8), cap);
	CHECK_EQ(f.warns, w + 1);
	CHECK_EQ(mw(&f, VR_GSTS, 4, ~0u), 0);
	CHECK_EQ(mr(&f, VR_GSTS, 4), 0);
	CHECK_EQ(mr(&f, VR_GCMD, 4), 0);            /* write-only */
	/* RTADDR halves merge */
	mw(&f, VR_RTADDR, 4, 0x12345000);
	mw(&f, VR_RTADDR + 4, 4, 0x1);
	CHECK_U64(mr(&f, VR_RTADDR, 8), 0x112345000ull);
	fx_fini(&f);
}

TEST(t1_read_write_registers_read_back)
{
	/* each value register keeps what is written, minus its reserved
	 * bits; none of these writes has a side effect */
	static const struct { uint32_t off; unsigned int size;
			      uint64_t val, want; } c[] = {
		{ 0x3c, 4, 0xffffffff, 0xffffffff },   /* FEDATA */
		{ 0x40, 4, 0xfee00003, 0xfee00000 },   /* FEADDR: [1:0] 0 */
		{ 0x44, 4, 0x12345678, 0x12345678 },   /* FEUADDR */
		{ 0xa4, 4, 0xabcd, 0xabcd },           /* IEDATA */
		{ 0xa8, 4, 0xfee01002, 0xfee01000 },   /* IEADDR */
		{ 0xac, 4, 0x1, 0x1 },                 /* IEUADDR */
		{ 0x20, 8, 0x123456789fffull, 0x123456789c00ull }, /* RTADDR */
		{ 0x200, 8, 0x4000007fffull, 0x400000707full }, /* IVA */
		{ 0x90, 8, 0x77777fffull, 0x77777807ull },   /* IQA (off) */
		{ 0xb8, 8, 0x5000ull, 0x5000ull },     /* IRTA (kept) */
	};
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	for (unsigned int i = 0; i < ARRAY_SIZE(c); i++) {
		CHECK_EQ(mw(&f, c[i].off, c[i].size, c[i].val), 0);
		CHECK_U64(mr(&f, c[i].off, c[i].size), c[i].want);
	}
	CHECK_EQ(mr(&f, VR_GSTS, 4), 0);            /* no command ran */
	CHECK_EQ(f.irqs[0] + f.irqs[1], 0);
	fx_fini(&f);
}

/* ---- T4 global commands -------------------------------------------------- */

TEST(t4_enable_sequence_linux)
{
	struct fx f;
	uint32_t gsts;

	REQUIRE(setup(&f, 0, false) == 0);
	gsts = (uint32_t)mr(&f, VR_GSTS, 4);
	CHECK(gsts & GC_TE);
	CHECK(gsts & GC_SRTP);
	CHECK(gsts & GC_QIE);
	CHECK(!(gsts & GC_WBF));
	CHECK(!(fx_gcmd(&f, GC_WBF, true) & GC_WBF)); /* WBF completes */
	CHECK(gsts & GC_TE);
	fx_fini(&f);
}

TEST(t4_te_off_is_identity_t11)
{
	struct fx f;
	uint32_t v;

	REQUIRE(fx_init(&f, NULL) == 0);
	gw64(&f, 0x5000, 0xfeedf00d);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0x5000, &v), 0);
	CHECK_EQ(v, 0xfeedf00d);
	REQUIRE(fx_enable(&f, false) == 0);
	/* no context entry: translation now faults */
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0x5000, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x1);
	CHECK(!(fx_gcmd(&f, GC_TE, false) & GC_TE));
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0x5000, &v), 0);
	CHECK_EQ(v, 0xfeedf00d);
	fx_fini(&f);
}

TEST(t4_unsupported_commands_ignored)
{
	struct fx f;
	unsigned int w;

	REQUIRE(setup(&f, 0, false) == 0);
	w = f.warns;
	CHECK(!(fx_gcmd(&f, GC_IRE, true) & GC_IRE));
	CHECK(f.warns > w);
	CHECK(mr(&f, VR_GSTS, 4) & GC_TE);
	fx_fini(&f);
}

TEST(t4_iqa_locked_while_queue_enabled)
{
	struct fx f;
	uint64_t iqa;

	REQUIRE(setup(&f, 0, false) == 0);
	iqa = mr(&f, VR_IQA, 8);
	mw(&f, VR_IQA, 8, 0x7000);
	CHECK_U64(mr(&f, VR_IQA, 8), iqa);
	/* disable, move, enable: head restarts at 0 */
	CHECK(!(fx_gcmd(&f, GC_QIE, false) & GC_QIE));
	mw(&f, VR_IQA, 8, f.iq);
	f.iqt = 0;
	mw(&f, VR_IQT, 8, 0);
	CHECK(fx_gcmd(&f, GC_QIE, true) & GC_QIE);
	CHECK_U64(mr(&f, VR_IQH, 8), 0);
	CHECK(fx_wait(&f));
	fx_fini(&f);
}

TEST(t4_qie_enable_runs_a_tail_written_before)
{
	/* regression (fuzz_vtd_qi): a tail written while the queue was off
	 * was not fetched when QIE was set, leaving IQH != IQT for good */
	struct fx f;

	REQUIRE(setup(&f, 0, false) == 0);
	CHECK(!(fx_gcmd(&f, GC_QIE, false) & GC_QIE));
	gw64(&f, f.iq, 5 | (1u << 5) | (7ull << 32));
	gw64(&f, f.iq + 8, f.status);
	f.ram[f.status] = 0;
	mw(&f, VR_IQT, 8, 0x10);
	CHECK_EQ(f.ram[f.status], 0);               /* off: nothing runs */
	CHECK(fx_gcmd(&f, GC_QIE, true) & GC_QIE);
	CHECK_EQ(f.ram[f.status], 7);
	CHECK_U64(mr(&f, VR_IQH, 8), 0x10);
	fx_fini(&f);
}

TEST(t4_flips_mid_operation)
{
	struct fx f;
	uint32_t v;
	uint64_t root2;

	REQUIRE(setup(&f, 0, false) == 0);
	REQUIRE(legacy_map(&f, 0, 1, VIOMMU_READ | VIOMMU_WRITE));
	gw64(&f, PA1, 0x11111111);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), 0);
	CHECK_EQ(v, 0x11111111);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, PA1, &v), -EFAULT);
	fx_gcmd(&f, GC_TE, false);                  /* off: identity */
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, PA1, &v), 0);
	CHECK_EQ(v, 0x11111111);
	fx_clear_faults(&f, 8);
	fx_gcmd(&f, GC_TE, true);                   /* on again */
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), 0);
	CHECK_EQ(v, 0x11111111);
	/* a new, empty root table latched while enabled, then flushed */
	root2 = fx_alloc(&f, 4096, 4096);
	mw(&f, VR_RTADDR, 8, root2);
	CHECK(fx_gcmd(&f, GC_SRTP, true) & GC_SRTP);
	CHECK(fx_flush_all(&f));
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x1);
	/* queue disabled while stopped on an error: no hang, restarts */
	fx_desc(&f, 0xf, 0);
	CHECK(mr(&f, VR_FSTS, 4) & (1u << 4));
	fx_gcmd(&f, GC_QIE, false);
	mw(&f, VR_FSTS, 4, 1u << 4);
	f.iqt = 0;
	mw(&f, VR_IQT, 8, 0);
	CHECK(fx_gcmd(&f, GC_QIE, true) & GC_QIE);
	CHECK(fx_wait(&f));
	fx_fini(&f);
}

/* ---- T3 legacy paging ----------------------------------------------------- */

TEST(t3_legacy_second_level_rw)
{
	struct fx f;
	uint32_t v;
	uint64_t hi;

	REQUIRE(setup(&f, 0, false) == 0);
	REQUIRE(legacy_map(&f, 0, 7, VIOMMU_READ | VIOMMU_WRITE));
	gw64(&f, PA1 + 0x10, 0xabcd1234);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA + 0x10, &v), 0);
	CHECK_EQ(v, 0xabcd1234);
	CHECK_EQ(fx_write(&f, 0, VIOMMU_NO_PASID, IOVA + 0x20, 0x5a5a), 0);
	CHECK_U64(gr64(&f, PA1 + 0x20), 0x5a5a);
	/* the next page is not mapped: read fault, reason 6 */
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA + 0x1000, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x6);
	hi = fx_frcd_hi(&f, 0);
	CHECK_EQ(hi & 0xffff, fx_sids[0]);
	CHECK((hi >> 62) & 1);                      /* T1: read */
	CHECK_U64(mr(&f, VR_FRCD, 8), IOVA + 0x1000);
	CHECK_EQ(f.irqs[VIOMMU_VTD_IRQ_FAULT], 1);
	fx_fini(&f);
}

TEST(t3_legacy_write_to_read_only)
{
	struct fx f;

	REQUIRE(setup(&f, 0, false) == 0);
	REQUIRE(legacy_map(&f, 0, 1, VIOMMU_READ));
	CHECK_EQ(fx_write(&f, 0, VIOMMU_NO_PASID, IOVA, 1), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x5);
	CHECK(!((fx_frcd_hi(&f, 0) >> 62) & 1));    /* T1: write */
	CHECK_U64(gr64(&f, PA1), 0);
	fx_fini(&f);
}

/* map_levels() - legacy ep 0 with @lv-level tables; DMA at @iova. */
static void map_levels(unsigned int lv, uint64_t iova, uint64_t size)
{
	struct viommu_vtd_config c = {
		.features = lv == 5 ? VIOMMU_VTD_F_QI | VIOMMU_VTD_F_5LVL : 0,
	};
	struct vtdpt_cfg pc = fx_cfg(VTDPT_SL, lv);
	struct fx f;
	uint64_t root;
	uint32_t v;

	REQUIRE(fx_init(&f, &c) == 0 && fx_enable(&f, false) == 0);
	REQUIRE(vtdpt_alloc_root(&f.ops, &root) == 0);
	REQUIRE(vtdpt_map(&pc, &f.ops, root, iova, 0, size,
			  VIOMMU_READ) == 0);
	fx_legacy_ctx(&f, fx_sids[1], 3, root, lv - 2, 0);
	fx_flush_all(&f);
	gw64(&f, 0x230, 0x77);
	CHECK_EQ(fx_read(&f, 1, VIOMMU_NO_PASID, iova + 0x230, &v), 0);
	CHECK_EQ(v, 0x77);
	if (v != 0x77)
		printf("# %u levels at %#llx\n", lv, (unsigned long long)iova);
	CHECK_EQ(fx_last(&f), 0);
	fx_fini(&f);
}

TEST(t3_second_level_3_4_5_levels_and_large_pages)
{
	map_levels(3, 0x7f00000000ull, 4096);
	map_levels(4, 0xff0000000000ull, 4096);
	map_levels(5, 0x100000000000000ull, 4096);
	map_levels(4, 0x40000000ull, 2ull << 20);   /* 2 MiB leaf */
	map_levels(4, 0x80000000ull, 1ull << 30);   /* 1 GiB leaf */
}

TEST(t3_legacy_fault_reasons)
{
	struct fx f;
	uint64_t root, leaf;
	uint32_t v;

	REQUIRE(setup(&f, 0, false) == 0);
	root = legacy_map(&f, 0, 1, VIOMMU_READ | VIOMMU_WRITE);
	REQUIRE(root);
	/* beyond MGAW (4-level: 48 bits) */
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 1ull << 48, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x4);
	/* reserved bit 11 in the leaf */
	leaf = 0;
	{
		struct vtdpt_cfg c = fx_cfg(VTDPT_SL, 4);
		struct vtdpt_result r;

		REQUIRE(vtdpt_walk(&c, f.mem, root, IOVA, 0, NULL, NULL,
				   &r) == 0);
		leaf = r.fetch;
	}
	gw64(&f, leaf, gr64(&f, leaf) | (1u << 11));
	fx_desc(&f, D_IOTLB_GLOBAL, 0);
	fx_wait(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_reason(&f, 1), 0xc);
	/* a table pointer outside RAM: fetch fault */
	gw64(&f, root + ((IOVA >> 39) & 511) * 8, (1ull << 40) | 3);
	fx_desc(&f, D_IOTLB_GLOBAL, 0);
	fx_wait(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_reason(&f, 2), 0x7);
	fx_fini(&f);
}

/* ---- T2 root and context entries ------------------------------------------ */

TEST(t2_root_and_context_faults)
{
	struct fx f;
	uint64_t ct, ce;
	uint32_t v;

	REQUIRE(setup(&f, 0, false) == 0);
	REQUIRE(legacy_map(&f, 0, 1, VIOMMU_READ));
	ct = fx_ctx_table(&f, fx_sids[0]);
	ce = ct + (fx_sids[0] & 0xff) * 16;
	struct { uint64_t lo, hi; unsigned int reason; } c[] = {
		{ gr64(&f, ce) & ~1ull, gr64(&f, ce + 8), 0x2 }, /* P clear */
		{ gr64(&f, ce) | (1u << 6), gr64(&f, ce + 8), 0xb }, /* rsvd */
		{ gr64(&f, ce), gr64(&f, ce + 8) | (1ull << 40), 0xb },
		{ gr64(&f, ce) | (3u << 2), gr64(&f, ce + 8), 0x3 }, /* TT 3 */
		{ gr64(&f, ce) | (1u << 2), gr64(&f, ce + 8), 0x3 }, /* DT */
		{ gr64(&f, ce), (gr64(&f, ce + 8) & ~7ull) | 3, 0x3 }, /* AW */
		{ (gr64(&f, ce) & 0xfff) | (1ull << 45), gr64(&f, ce + 8),
		  0x7 },                                  /* SLPTPTR no RAM */
	};
	uint64_t lo0 = gr64(&f, ce), hi0 = gr64(&f, ce + 8);

	for (unsigned int i = 0; i < ARRAY_SIZE(c); i++) {
		gw64(&f, ce, c[i].lo);
		gw64(&f, ce + 8, c[i].hi);
		fx_desc(&f, D_CC_DEV(1, fx_sids[0]), 0);
		fx_wait(&f);
		CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
		CHECK_EQ(fx_last(&f), c[i].reason);
		fx_clear_faults(&f, 8);
	}
	gw64(&f, ce, lo0);
	gw64(&f, ce + 8, hi0);
	/* root entry: reserved, then pointing outside RAM */
	gw64(&f, f.root, ct | 1 | (1u << 5));
	fx_desc(&f, D_CC_GLOBAL, 0);
	fx_wait(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0xa);
	fx_clear_faults(&f, 8);
	gw64(&f, f.root, (1ull << 40) | 1);
	fx_desc(&f, D_CC_GLOBAL, 0);
	fx_wait(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x9);
	fx_clear_faults(&f, 8);
	/* the root table itself outside RAM */
	mw(&f, VR_RTADDR, 8, 1ull << 40);
	fx_gcmd(&f, GC_SRTP, true);
	fx_flush_all(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x8);
	fx_fini(&f);
}

TEST(t2_self_referencing_tables_terminate)
{
	struct fx f;
	uint64_t ce;
	uint32_t v;

	REQUIRE(setup(&f, 0, false) == 0);
	/* root entry's context table is the root table itself */
	gw64(&f, f.root, f.root | 1);
	gw64(&f, f.root + 8, 0);
	/* context entry for devfn 8 (bytes 128..143) points at the root */
	ce = f.root + 8 * 16;
	gw64(&f, ce, f.root | 1);
	gw64(&f, ce + 8, (5u << 8) | 2);
	fx_flush_all(&f);
	/* the "page table" is the root table: every level reads entry 0
	 * of itself (present, read-only) and the walk ends at level 1 with
	 * the root table as the page: bounded, and in RAM */
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0, &v), 0);
	CHECK_EQ(v, (uint32_t)(f.root | 1));
	CHECK_EQ(fx_write(&f, 0, VIOMMU_NO_PASID, 0, 1), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x5);
	/* an SL table whose entry points back at itself */
	{
		uint64_t t = fx_alloc(&f, 4096, 4096);

		gw64(&f, t, t | 3);
		fx_legacy_ctx(&f, fx_sids[1], 2, t, 2, 0);
		fx_flush_all(&f);
		CHECK_EQ(fx_read(&f, 1, VIOMMU_NO_PASID, 0, &v), 0);
		/* level 1 reads the table as a page: identity of its bytes */
	}
	fx_fini(&f);
}

TEST(t2_pass_through_fpd_and_abort_mode)
{
	struct fx f;
	uint64_t ce;
	uint32_t v;
	struct viommu_vtd_stats st;

	REQUIRE(setup(&f, 0, false) == 0);
	fx_legacy_ctx(&f, fx_sids[0], 1, 0, 2, 2);  /* TT 2: pass-through */
	fx_flush_all(&f);
	gw64(&f, 0x9000, 0x99);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0x9000, &v), 0);
	CHECK_EQ(v, 0x99);
	/* FPD: the fault is not recorded, but the DMA still fails */
	REQUIRE(legacy_map(&f, 1, 2, VIOMMU_READ));
	ce = fx_ctx_table(&f, fx_sids[1]) + (fx_sids[1] & 0xff) * 16;
	gw64(&f, ce, gr64(&f, ce) | 2);
	fx_flush_all(&f);
	CHECK_EQ(fx_read(&f, 1, VIOMMU_NO_PASID, IOVA + 0x1000, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0);
	/* abort-DMA mode (TTM 3): every request blocked, nothing recorded */
	mw(&f, VR_RTADDR, 8, f.root | (3u << 10));
	fx_gcmd(&f, GC_SRTP, true);
	fx_flush_all(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0x9000, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0);
	/* TTM 2 is reserved: fault 0x30 */
	mw(&f, VR_RTADDR, 8, f.root | (2u << 10));
	fx_gcmd(&f, GC_SRTP, true);
	fx_flush_all(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 0x9000, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x30);
	REQUIRE(viommu_vtd_stats(f.vtd, &st, sizeof(st)) == 0);
	CHECK_EQ(st.faults, 3);
	CHECK_EQ(st.faults_recorded, 1);
	fx_fini(&f);
}

/* ---- scalable mode ---------------------------------------------------------- */

#define SM_ALL (VIOMMU_VTD_F_QI | VIOMMU_VTD_F_SM | VIOMMU_VTD_F_FL | \
		VIOMMU_VTD_F_PT)

/* sm_sl() - ep @i in scalable mode, RID_PASID 0 on SL tables -> PA1. */
static uint64_t sm_sl(struct fx *f, int i, uint16_t did, uint64_t *dirp)
{
	struct vtdpt_cfg c = fx_cfg(VTDPT_SL, 4);
	uint64_t root, dir;

	if (vtdpt_alloc_root(&f->ops, &root) ||
	    vtdpt_map(&c, &f->ops, root, IOVA, PA1, 4096,
		      VIOMMU_READ | VIOMMU_WRITE))
		return 0;
	dir = fx_sm_ctx(f, fx_sids[i], 0);
	fx_pasid_entry(f, dir, 0, 2, did, root, 2, 0, 0);
	fx_flush_all(f);
	if (dirp)
		*dirp = dir;
	return root;
}

TEST(t3_scalable_second_level_upper_half)
{
	struct fx f;
	uint32_t v;

	REQUIRE(setup(&f, SM_ALL, true) == 0);
	REQUIRE(sm_sl(&f, 3, 4, NULL));             /* devfn 0x88: upper */
	gw64(&f, PA1, 0x4242);
	CHECK_EQ(fx_read(&f, 3, VIOMMU_NO_PASID, IOVA, &v), 0);
	CHECK_EQ(v, 0x4242);
	CHECK_EQ(fx_write(&f, 3, VIOMMU_NO_PASID, IOVA + 0x1000, 1), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x85);           /* SM write */
	CHECK_EQ(fx_read(&f, 3, VIOMMU_NO_PASID, 1ull << 50, &v), -EFAULT);
	CHECK_EQ(fx_reason(&f, 1), 0x83);           /* beyond AW */
	fx_fini(&f);
}

TEST(t3_scalable_first_level_ad_and_faults)
{
	struct vtdpt_cfg c = fx_cfg(VTDPT_FL, 4);
	struct vtdpt_result r;
	struct fx f;
	uint64_t root, dir, leaf;
	uint32_t v;

	REQUIRE(setup(&f, SM_ALL, true) == 0);
	REQUIRE(vtdpt_alloc_root(&f.ops, &root) == 0);
	REQUIRE(vtdpt_map(&c, &f.ops, root, IOVA, PA1, 4096,
			  VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(vtdpt_map(&c, &f.ops, root, IOVA + 0x1000, PA2, 4096,
			  VIOMMU_READ) == 0);
	dir = fx_sm_ctx(&f, fx_sids[0], 0);
	fx_pasid_entry(&f, dir, 0, 1, 9, 0, 0, root, 0);
	fx_flush_all(&f);
	REQUIRE(vtdpt_walk(&c, f.mem, root, IOVA, 0, NULL, NULL, &r) == 0);
	leaf = r.fetch;
	CHECK(!(gr64(&f, leaf) & (1u << 5)));
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), 0);
	CHECK(gr64(&f, leaf) & (1u << 5));          /* A set */
	CHECK(!(gr64(&f, leaf) & (1u << 6)));
	CHECK_EQ(fx_write(&f, 0, VIOMMU_NO_PASID, IOVA + 8, 3), 0);
	CHECK(gr64(&f, leaf) & (1u << 6));          /* D set */
	CHECK_EQ(fx_write(&f, 0, VIOMMU_NO_PASID, IOVA + 0x1000, 3), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x85);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA + 0x2000, &v), -EFAULT);
	CHECK_EQ(fx_reason(&f, 1), 0x71);           /* FL not present */
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, 1ull << 47, &v), -EFAULT);
	CHECK_EQ(fx_reason(&f, 2), 0x80);           /* not canonical */
	fx_clear_faults(&f, 8);
	gw64(&f, leaf, gr64(&f, leaf) | (1ull << 50)); /* beyond HAW 48 */
	fx_desc(&f, D_PIOTLB(9, 0, 2), 0);
	fx_wait(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_reason(&f, 3), 0x72);           /* FL reserved */
	fx_fini(&f);
}

TEST(t3_scalable_nested_first_through_second)
{
	struct vtdpt_cfg sl = fx_cfg(VTDPT_SL, 4), fl = fx_cfg(VTDPT_FL, 4);
	struct fx f;
	uint64_t slroot, flroot_gpa, dir;
	uint32_t v;
	const uint64_t GIOVA = 0x10000000ull; /* SL input space of FL tables */

	REQUIRE(setup(&f, SM_ALL, true) == 0);
	/* SL: identity-map the first 8 MiB at GIOVA offset */
	REQUIRE(vtdpt_alloc_root(&f.ops, &slroot) == 0);
	REQUIRE(vtdpt_map(&sl, &f.ops, slroot, GIOVA, 0, 8ull << 20,
			  VIOMMU_READ | VIOMMU_WRITE) == 0);
	/* FL tables built in guest RAM; their pointers are GIOVA-based */
	REQUIRE(vtdpt_alloc_root(&f.ops, &flroot_gpa) == 0);
	REQUIRE(vtdpt_map(&fl, &f.ops, flroot_gpa, IOVA, GIOVA + PA1, 4096,
			  VIOMMU_READ | VIOMMU_WRITE) == 0);
	/* rebase every FL table pointer into the SL input space */
	{
		uint64_t t = flroot_gpa;

		for (int l = 4; l > 1; l--) {
			uint64_t pa = t + ((IOVA >> (12 + 9 * (l - 1))) & 511) * 8;
			uint64_t e = gr64(&f, pa);

			gw64(&f, pa, e + GIOVA);
			t = e & ~0xfffull & ((1ull << 48) - 1);
		}
	}
	dir = fx_sm_ctx(&f, fx_sids[0], 0);
	fx_pasid_entry(&f, dir, 0, 3, 5, slroot, 2, flroot_gpa + GIOVA, 0);
	fx_flush_all(&f);
	gw64(&f, PA1 + 4, 0xc0ffee);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA + 4, &v), 0);
	CHECK_EQ(v, 0xc0ffee);
	/* SL made read-only for the output page: write faults at SL */
	REQUIRE(vtdpt_unmap(&sl, &f.ops, slroot, GIOVA, 8ull << 20,
			    &(uint64_t){ 0 }) == 0);
	fx_desc(&f, D_IOTLB_DSI(5), 0);
	fx_wait(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA + 4, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x86);           /* SL not present, read */
	fx_fini(&f);
}

TEST(t11_scalable_pasid_routed_by_pasid_cache_invalidation)
{
	struct vtdpt_cfg c = fx_cfg(VTDPT_SL, 4);
	struct fx f;
	uint64_t dir, root2;
	uint32_t v;

	REQUIRE(setup(&f, SM_ALL, true) == 0);
	REQUIRE(sm_sl(&f, 0, 1, &dir));
	REQUIRE(vtdpt_alloc_root(&f.ops, &root2) == 0);
	REQUIRE(vtdpt_map(&c, &f.ops, root2, IOVA, PA2, 4096,
			  VIOMMU_READ) == 0);
	fx_pasid_entry(&f, dir, 5, 2, 2, root2, 2, 0, 0);
	gw64(&f, PA1, 0x1);
	gw64(&f, PA2, 0x2);
	/* not announced: the core has no route for PASID 5 */
	CHECK_EQ(fx_read(&f, 0, 5, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0);
	fx_desc(&f, D_PC(2, 5, 1), 0);
	fx_wait(&f);
	CHECK_EQ(fx_read(&f, 0, 5, IOVA, &v), 0);
	CHECK_EQ(v, 0x2);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), 0);
	CHECK_EQ(v, 0x1);
	fx_fini(&f);
}

TEST(t2_scalable_entry_faults)
{
	struct fx f;
	uint64_t dir, ce, pe;
	uint32_t v;

	REQUIRE(setup(&f, SM_ALL, true) == 0);
	REQUIRE(sm_sl(&f, 0, 1, &dir));
	ce = fx_ctx_table(&f, fx_sids[0]) + (fx_sids[0] & 0x7f) * 32;
	pe = (gr64(&f, dir) & ~0xfffull);
	struct { uint64_t addr, val; unsigned int reason; } c[] = {
		{ ce + 16, 1, 0x42 },                   /* ctx qword 2 rsvd */
		{ ce, gr64(&f, ce) & ~1ull, 0x41 },     /* ctx P clear */
		{ ce, gr64(&f, ce) | (1u << 2), 0x43 }, /* DTE */
		{ dir, 0, 0x51 },                       /* dir P clear */
		{ dir, gr64(&f, dir) | (1u << 5), 0x52 },
		{ dir, (1ull << 40) | 1, 0x58 },        /* PASID table no RAM */
		{ pe, gr64(&f, pe) & ~1ull, 0x59 },     /* PASID entry P */
		{ pe, (gr64(&f, pe) & ~(7ull << 6)) | (5u << 6), 0x5b },
		{ pe, gr64(&f, pe) | (1u << 10), 0x5a },
		{ ce + 8, 128 * 64, 0x46 },             /* RID_PASID > max */
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(c); i++) {
		uint64_t old = gr64(&f, c[i].addr);

		gw64(&f, c[i].addr, c[i].val);
		fx_flush_all(&f);
		CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
		CHECK_EQ(fx_last(&f), c[i].reason);
		fx_clear_faults(&f, 8);
		gw64(&f, c[i].addr, old);
	}
	fx_flush_all(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), 0);
	/* PASID request with PASIDE clear */
	fx_desc(&f, D_PC(1, 7, 1), 0);
	fx_wait(&f);
	gw64(&f, ce, gr64(&f, ce) & ~(1ull << 3));
	fx_flush_all(&f);
	CHECK_EQ(fx_read(&f, 0, 7, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x45);
	fx_fini(&f);
}

TEST(t2_t3_scalable_remaining_fault_reasons)
{
	struct vtdpt_cfg fl = fx_cfg(VTDPT_FL, 4), sl = fx_cfg(VTDPT_SL, 4);
	struct vtdpt_result r;
	struct viommu_xlate x;
	struct fx f;
	uint64_t dir, root, flroot, pe, ce, leaf, re;
	uint32_t v;

	REQUIRE(setup(&f, SM_ALL, true) == 0);
	root = sm_sl(&f, 0, 1, &dir);
	REQUIRE(root);
	pe = gr64(&f, dir) & ~0xfffull;
	ce = fx_ctx_table(&f, fx_sids[0]) + (fx_sids[0] & 0x7f) * 32;
	re = f.root;                               /* bus 0 */
	struct { uint64_t addr, val; unsigned int reason; } c[] = {
		{ re, gr64(&f, re) & ~1ull, 0x39 },     /* root LP clear */
		{ re, gr64(&f, re) | (1u << 3), 0x3a }, /* root reserved */
		{ re, (1ull << 40) | 1, 0x40 },         /* ctx table not RAM */
		{ ce, (gr64(&f, ce) & 0xfff) | (1ull << 40), 0x50 },
		{ pe, (gr64(&f, pe) & 0xfff) | (1ull << 40), 0x78 },
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(c); i++) {
		uint64_t old = gr64(&f, c[i].addr);

		gw64(&f, c[i].addr, c[i].val);
		fx_flush_all(&f);
		CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
		CHECK_EQ(fx_last(&f), c[i].reason);
		fx_clear_faults(&f, 8);
		gw64(&f, c[i].addr, old);
	}
	/* second-level reserved bit (scalable code 0x7a) */
	REQUIRE(vtdpt_walk(&sl, f.mem, root, IOVA, 0, NULL, NULL, &r) == 0);
	leaf = r.fetch;
	gw64(&f, leaf, gr64(&f, leaf) | (1u << 11));
	fx_flush_all(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x7a);
	fx_clear_faults(&f, 8);
	/* the root table itself not RAM, scalable: 0x38 */
	mw(&f, VR_RTADDR, 8, (1ull << 40) | (1u << 10));
	fx_gcmd(&f, GC_SRTP, true);
	fx_flush_all(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x38);
	fx_clear_faults(&f, 8);
	mw(&f, VR_RTADDR, 8, f.root | (1u << 10));
	fx_gcmd(&f, GC_SRTP, true);
	/* first level: a table not RAM (0x70), an execute of XD (0x82) */
	REQUIRE(vtdpt_alloc_root(&f.ops, &flroot) == 0);
	REQUIRE(vtdpt_map(&fl, &f.ops, flroot, IOVA, PA1, 4096,
			  VIOMMU_READ) == 0);
	fx_pasid_entry(&f, dir, 0, 1, 1, 0, 0, flroot, 0);
	fx_flush_all(&f);
	CHECK_EQ(viommu_translate(f.ep[0], VIOMMU_NO_PASID, IOVA, 4,
				  VIOMMU_EXEC, &x, NULL), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x82);
	CHECK(fx_frcd_hi(&f, fx_newest(&f)) & (1ull << 30));   /* EXE */
	fx_clear_faults(&f, 8);
	gw64(&f, flroot, (1ull << 40) | 7);
	fx_flush_all(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x70);
	fx_fini(&f);
}

/* ---- T5 register-based invalidation --------------------------------------- */

TEST(t5_register_invalidation)
{
	struct fx f;
	uint64_t root;
	uint32_t v;
	struct vtdpt_cfg c = fx_cfg(VTDPT_SL, 4);

	REQUIRE(fx_init(&f, NULL) == 0);
	f.root = fx_alloc(&f, 4096, 4096);
	mw(&f, VR_RTADDR, 8, f.root);
	fx_gcmd(&f, GC_SRTP, true);
	REQUIRE(vtdpt_alloc_root(&f.ops, &root) == 0);
	REQUIRE(vtdpt_map(&c, &f.ops, root, IOVA, PA1, 4096, VIOMMU_READ) == 0);
	fx_legacy_ctx(&f, fx_sids[0], 3, root, 2, 0);
	/* global context invalidation through CCMD: CAIG reports global */
	mw(&f, VR_CCMD, 8, (1ull << 63) | (1ull << 61));
	CHECK(!(mr(&f, VR_CCMD, 8) >> 63));         /* ICC clear */
	CHECK_U64((mr(&f, VR_CCMD, 8) >> 59) & 3, 1); /* CAIG global */
	fx_gcmd(&f, GC_TE, true);
	gw64(&f, PA1, 1);
	gw64(&f, PA2, 2);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), 0);
	CHECK_EQ(v, 1);
	/* remap to PA2 without invalidating: the cached translation stays */
	REQUIRE(vtdpt_unmap(&c, &f.ops, root, IOVA, 4096, &(uint64_t){0}) == 0);
	REQUIRE(vtdpt_map(&c, &f.ops, root, IOVA, PA2, 4096, VIOMMU_READ) == 0);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), 0);
	CHECK_EQ(v, 1);
	/* page-selective through IVA/IOTLB: IAIG 3 */
	mw(&f, VR_IVA, 8, IOVA);
	mw(&f, VR_IOTLB, 8, (1ull << 63) | (3ull << 60) | (3ull << 32));
	CHECK(!(mr(&f, VR_IOTLB, 8) >> 63));        /* IVT clear */
	CHECK_U64((mr(&f, VR_IOTLB, 8) >> 57) & 3, 3);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), 0);
	CHECK_EQ(v, 2);
	/* AM beyond MAMV: refused, IAIG 0 */
	mw(&f, VR_IVA, 8, 19);
	mw(&f, VR_IOTLB, 8, (1ull << 63) | (3ull << 60) | (3ull << 32));
	CHECK_U64((mr(&f, VR_IOTLB, 8) >> 57) & 3, 0);
	/* CIRG 0 refused */
	mw(&f, VR_CCMD, 8, 1ull << 63);
	CHECK_U64((mr(&f, VR_CCMD, 8) >> 59) & 3, 0);
	fx_fini(&f);
}

TEST(t5_registers_refused_while_queue_enabled)
{
	struct fx f;
	unsigned int w;

	REQUIRE(setup(&f, 0, false) == 0);
	w = f.warns;
	mw(&f, VR_CCMD, 8, (1ull << 63) | (1ull << 61));
	CHECK_U64((mr(&f, VR_CCMD, 8) >> 59) & 3, 0);
	mw(&f, VR_IOTLB, 8, (1ull << 63) | (1ull << 60));
	CHECK_U64((mr(&f, VR_IOTLB, 8) >> 57) & 3, 0);
	CHECK_EQ(f.warns, w + 2);
	fx_fini(&f);
}

/* ---- T6 / T7 queued invalidation --------------------------------------------- */

TEST(t6_every_descriptor_type_legacy_queue)
{
	struct fx f;
	struct viommu_vtd_stats st;

	REQUIRE(setup(&f, 0, false) == 0);
	fx_desc(&f, D_CC_GLOBAL, 0);
	fx_desc(&f, 1 | (2u << 4) | (5u << 16), 0);          /* domain */
	fx_desc(&f, D_CC_DEV(5, 0x10) | (3ull << 48), 0);   /* FM 3 */
	fx_desc(&f, D_IOTLB_GLOBAL, 0);
	fx_desc(&f, D_IOTLB_DSI(5) | (1u << 6) | (1u << 7), 0); /* DW DR */
	fx_desc(&f, D_IOTLB_PSI(5), IOVA | (1u << 6) | 9);  /* IH, AM 9 */
	fx_desc(&f, 3 | (0x10ull << 32), IOVA);             /* dev-TLB */
	CHECK(fx_wait(&f));
	CHECK_U64(mr(&f, VR_IQH, 8), mr(&f, VR_IQT, 8));
	CHECK(!(mr(&f, VR_FSTS, 4) & (1u << 4)));
	REQUIRE(viommu_vtd_stats(f.vtd, &st, sizeof(st)) == 0);
	CHECK_EQ(st.ctx_invals, 4);                 /* 1 at enable + 3 */
	CHECK_EQ(st.iotlb_invals, 4);
	CHECK_EQ(st.queue_errors, 0);
	fx_fini(&f);
}

TEST(t6_every_descriptor_type_scalable_queue)
{
	struct fx f;
	struct viommu_vtd_stats st;

	REQUIRE(setup(&f, SM_ALL, true) == 0);
	fx_desc(&f, D_PC(1, 0, 0), 0);
	fx_desc(&f, D_PC(1, 3, 1), 0);
	fx_desc(&f, D_PC(0, 0, 3), 0);
	fx_desc(&f, D_PIOTLB(1, 3, 2), 0);
	fx_desc(&f, D_PIOTLB(1, 3, 3), IOVA | 2);
	fx_desc(&f, 8 | (0x10ull << 32), IOVA);             /* PASID dev-TLB */
	CHECK(fx_wait(&f));
	CHECK(!(mr(&f, VR_FSTS, 4) & (1u << 4)));
	REQUIRE(viommu_vtd_stats(f.vtd, &st, sizeof(st)) == 0);
	CHECK_EQ(st.pasid_invals, 3);
	CHECK_EQ(st.iotlb_invals, 3);               /* 1 at enable + 2 */
	fx_fini(&f);
}

/* iqe_case() - queue @q0/@q1 then a wait; expect IQE with @iqei. */
static void iqe_case(uint32_t features, bool sm, uint64_t q0, uint64_t q1,
		     unsigned int iqei)
{
	struct fx f;
	uint64_t bad;
	unsigned int w;

	REQUIRE(setup(&f, features, sm) == 0);
	w = f.warns;
	bad = f.iqt;
	fx_desc(&f, q0, q1);
	CHECK(!fx_wait(&f));                        /* stopped before it */
	CHECK(mr(&f, VR_FSTS, 4) & (1u << 4));
	CHECK_EQ(mr(&f, VR_IQERCD, 8) & 0xf, iqei);
	CHECK_U64(mr(&f, VR_IQH, 8), bad);
	CHECK_EQ(f.irqs[VIOMMU_VTD_IRQ_FAULT], 1);
	CHECK_EQ(f.warns, w + 1);                   /* one line */
	/* Linux's recovery: rewrite the slot as a wait, clear IQE */
	gw64(&f, f.iq + bad, 5 | (1u << 5) | (1ull << 32));
	gw64(&f, f.iq + bad + 8, f.status);
	f.ram[f.status] = 0;
	mw(&f, VR_FSTS, 4, 1u << 4);
	CHECK(!(mr(&f, VR_FSTS, 4) & (1u << 4)));
	CHECK_EQ(f.ram[f.status], 1);               /* resumed */
	CHECK_U64(mr(&f, VR_IQH, 8), f.iqt);
	fx_fini(&f);
}

TEST(t6_bad_descriptors_stop_the_queue)
{
	iqe_case(0, false, 4, 0, 3);                /* IEC: no IR */
	iqe_case(0, false, 9, 0, 3);                /* page group resp */
	iqe_case(0, false, 0xf, 0, 3);              /* unknown */
	iqe_case(0, false, 0, 0, 3);                /* type 0 */
	iqe_case(0, false, D_PC(0, 0, 3), 0, 3);    /* SM type, no SM */
	iqe_case(0, false, D_CC_GLOBAL | (1ull << 63), 0, 4);
	iqe_case(0, false, D_CC_GLOBAL, 1, 4);      /* qw1 reserved */
	iqe_case(0, false, 1, 0, 4);                /* CC granularity 0 */
	iqe_case(0, false, D_IOTLB_PSI(1), IOVA | 19, 4); /* AM > MAMV */
	iqe_case(0, false, D_IOTLB_GLOBAL | (1ull << 40), 0, 4);
	iqe_case(0, false, 5 | (1u << 5), 0x1001, 4);     /* status addr */
	iqe_case(0, false, 5 | (1u << 5), 1ull << 40, 2); /* not RAM */
	iqe_case(SM_ALL, false, D_PC(0, 0, 3), 0, 5); /* SM type, 128-bit */
	iqe_case(SM_ALL, true, D_PIOTLB(1, 0, 0), 0, 4); /* gran 0 */
	iqe_case(SM_ALL, true, D_PC(0, 0, 2), 0, 4);
}

TEST(t6_wide_queue_reserved_upper_qwords)
{
	struct fx f;

	REQUIRE(setup(&f, SM_ALL, true) == 0);
	gw64(&f, f.iq + f.iqt, D_CC_GLOBAL);
	gw64(&f, f.iq + f.iqt + 8, 0);
	gw64(&f, f.iq + f.iqt + 16, 1);
	gw64(&f, f.iq + f.iqt + 24, 0);
	f.iqt += 32;
	mw(&f, VR_IQT, 8, f.iqt);
	CHECK(mr(&f, VR_FSTS, 4) & (1u << 4));
	CHECK_EQ(mr(&f, VR_IQERCD, 8) & 0xf, 4);
	fx_fini(&f);
}

TEST(t7_tail_beyond_queue_or_misaligned)
{
	struct fx f;
	struct viommu_vtd_stats st;

	REQUIRE(setup(&f, 0, false) == 0);
	gw64(&f, f.iq, D_CC_GLOBAL);
	mw(&f, VR_IQT, 8, 0x1000 + 0x10);           /* QS 0: 4 KiB queue */
	CHECK(mr(&f, VR_FSTS, 4) & (1u << 4));
	CHECK_EQ(mr(&f, VR_IQERCD, 8) & 0xf, 1);
	REQUIRE(viommu_vtd_stats(f.vtd, &st, sizeof(st)) == 0);
	CHECK_EQ(st.descriptors, 3);                /* enable's only */
	fx_fini(&f);
	REQUIRE(setup(&f, SM_ALL, true) == 0);
	mw(&f, VR_IQT, 8, f.iqt + 0x10);            /* half a 256-bit slot */
	CHECK(mr(&f, VR_FSTS, 4) & (1u << 4));
	CHECK_EQ(mr(&f, VR_IQERCD, 8) & 0xf, 1);
	fx_fini(&f);
}

TEST(t7_queue_outside_ram_and_full_wrap)
{
	struct fx f;
	struct viommu_vtd_stats st;

	REQUIRE(setup(&f, 0, false) == 0);
	/* every slot a wait: a tail that wraps runs the whole queue once */
	for (int i = 0; i < 300; i++)
		fx_desc(&f, D_IOTLB_GLOBAL, 0);
	CHECK(fx_wait(&f));
	REQUIRE(viommu_vtd_stats(f.vtd, &st, sizeof(st)) == 0);
	CHECK_EQ(st.descriptors, 3 + 300 + 1);
	/* a queue outside RAM: fetch error */
	fx_gcmd(&f, GC_QIE, false);
	mw(&f, VR_IQA, 8, 1ull << 40);
	fx_gcmd(&f, GC_QIE, true);
	mw(&f, VR_IQT, 8, 0x10);
	CHECK(mr(&f, VR_FSTS, 4) & (1u << 4));
	CHECK_EQ(mr(&f, VR_IQERCD, 8) & 0xf, 2);
	fx_fini(&f);
}

TEST(t7_queue_runs_in_slices_driven_by_accesses)
{
	struct fx f;
	uint64_t q, n = 1000;
	int polls = 0;

	REQUIRE(setup(&f, 0, false) == 0);
	CHECK(!(fx_gcmd(&f, GC_QIE, false) & GC_QIE));
	q = fx_alloc(&f, 4096 * 4, 4096);                /* QS 2: 1024 */
	mw(&f, VR_IQA, 8, q | 2);
	mw(&f, VR_IQT, 8, 0);
	CHECK(fx_gcmd(&f, GC_QIE, true) & GC_QIE);
	for (uint64_t i = 0; i < n; i++) {
		gw64(&f, q + i * 16, D_IOTLB_GLOBAL);
		gw64(&f, q + i * 16 + 8, 0);
	}
	gw64(&f, q + n * 16, 5 | (1u << 5) | (9ull << 32));
	gw64(&f, q + n * 16 + 8, f.status);
	f.ram[f.status] = 0;
	mw(&f, VR_IQT, 8, (n + 1) * 16);
	/* the write ran one slice and this read of IQH the next: IQH shows
	 * the progress */
	CHECK_U64(mr(&f, VR_IQH, 8), VIOMMU_VTD_QI_SLICE * 16ull * 2);
	CHECK_EQ(f.ram[f.status], 0);
	while (f.ram[f.status] != 9 && polls < 100) {
		mr(&f, VR_FSTS, 4);                      /* Linux's poll */
		polls++;
	}
	CHECK_EQ(f.ram[f.status], 9);
	CHECK_EQ(polls, 2);           /* 1001 = 256 (write) + 256 x 2 + 233 */
	CHECK_EQ(viommu_vtd_poll(f.vtd), 0);
	CHECK_U64(mr(&f, VR_IQH, 8), (n + 1) * 16);
	/* viommu_vtd_poll() drives a queue nobody reads */
	for (uint64_t i = 0; i < 600; i++) {
		gw64(&f, q + ((n + 1 + i) % 1024) * 16, D_IOTLB_GLOBAL);
		gw64(&f, q + ((n + 1 + i) % 1024) * 16 + 8, 0);
	}
	viommu_vtd_mmio_write(f.vtd, VR_IQT, 8, ((n + 601) % 1024) * 16);
	CHECK_EQ(viommu_vtd_poll(f.vtd), 1);
	CHECK_EQ(viommu_vtd_poll(f.vtd), 0);
	fx_fini(&f);
}

/* ---- T8 invalidation wait ------------------------------------------------------ */

TEST(t8_wait_interrupt_ics_and_mask)
{
	struct fx f;

	REQUIRE(setup(&f, 0, false) == 0);
	fx_desc(&f, 5 | (1u << 4), 0);              /* IF only */
	CHECK_EQ(mr(&f, VR_ICS, 4), 1);
	CHECK_EQ(f.irqs[VIOMMU_VTD_IRQ_INV], 1);
	fx_desc(&f, 5 | (1u << 4), 0);              /* IWC still set */
	CHECK_EQ(f.irqs[VIOMMU_VTD_IRQ_INV], 1);
	mw(&f, VR_ICS, 4, 1);
	CHECK_EQ(mr(&f, VR_ICS, 4), 0);
	mw(&f, VR_IECTL, 4, 1u << 31);              /* mask */
	fx_desc(&f, 5 | (1u << 4), 0);
	CHECK_EQ(f.irqs[VIOMMU_VTD_IRQ_INV], 1);
	CHECK(mr(&f, VR_IECTL, 4) & (1u << 30));    /* IP */
	mw(&f, VR_IECTL, 4, 0);                     /* unmask: delivered */
	CHECK_EQ(f.irqs[VIOMMU_VTD_IRQ_INV], 2);
	CHECK(!(mr(&f, VR_IECTL, 4) & (1u << 30)));
	/* status write with data */
	f.ram[f.status] = 0;
	fx_desc(&f, 5 | (1u << 5) | (0xa5ull << 32), f.status);
	CHECK_EQ(f.ram[f.status], 0xa5);
	fx_fini(&f);
}

/* ---- T9 fault recording ----------------------------------------------------------- */

TEST(t9_fault_records_overflow_and_interrupt)
{
	struct viommu_vtd_config c = { .nfr = 2 };
	struct fx f;
	uint32_t v, fsts;
	struct viommu_vtd_stats st;

	REQUIRE(fx_init(&f, &c) == 0 && fx_enable(&f, false) == 0);
	REQUIRE(legacy_map(&f, 0, 1, VIOMMU_READ));
	for (int i = 1; i <= 3; i++)
		CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA + i * 0x1000ull,
				 &v), -EFAULT);
	fsts = (uint32_t)mr(&f, VR_FSTS, 4);
	CHECK(fsts & 1);                            /* PFO */
	CHECK(fsts & 2);                            /* PPF */
	CHECK_EQ((fsts >> 8) & 0xff, 0);            /* FRI wrapped */
	CHECK_U64(mr(&f, VR_FRCD, 8), IOVA + 0x1000);
	CHECK_U64(mr(&f, VR_FRCD + 16, 8), IOVA + 0x2000);
	CHECK_EQ(f.irqs[VIOMMU_VTD_IRQ_FAULT], 1);  /* only when idle */
	REQUIRE(viommu_vtd_stats(f.vtd, &st, sizeof(st)) == 0);
	CHECK_EQ(st.faults_recorded, 2);
	CHECK_EQ(st.faults_lost, 1);
	fx_clear_faults(&f, 2);
	CHECK_EQ(mr(&f, VR_FSTS, 4) & 3, 0);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA + 0x5000, &v), -EFAULT);
	CHECK_EQ(f.irqs[VIOMMU_VTD_IRQ_FAULT], 2);
	CHECK_U64(mr(&f, VR_FRCD, 8), IOVA + 0x5000);  /* FRI was 0 */
	/* masked: IP, then delivered on unmask */
	fx_clear_faults(&f, 2);
	mw(&f, VR_FECTL, 4, 1u << 31);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA + 0x6000, &v), -EFAULT);
	CHECK_EQ(f.irqs[VIOMMU_VTD_IRQ_FAULT], 2);
	CHECK(mr(&f, VR_FECTL, 4) & (1u << 30));
	mw(&f, VR_FECTL, 4, 0);
	CHECK_EQ(f.irqs[VIOMMU_VTD_IRQ_FAULT], 3);
	fx_fini(&f);
}

/* ---- T10 caching ---------------------------------------------------------------- */

TEST(t10_did_selective_invalidation_is_precise)
{
	struct fx f;
	uint64_t r0, r1, e0, e1;
	uint32_t v;
	struct vtdpt_cfg c = fx_cfg(VTDPT_SL, 4);
	struct vtdpt_result r;

	REQUIRE(setup(&f, 0, false) == 0);
	r0 = legacy_map(&f, 0, 1, VIOMMU_READ);
	r1 = legacy_map(&f, 1, 2, VIOMMU_READ);
	REQUIRE(r0 && r1);
	gw64(&f, PA1, 1);
	gw64(&f, PA2, 2);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), 0);
	CHECK_EQ(fx_read(&f, 1, VIOMMU_NO_PASID, IOVA, &v), 0);
	REQUIRE(vtdpt_walk(&c, f.mem, r0, IOVA, 0, NULL, NULL, &r) == 0);
	e0 = r.fetch;
	REQUIRE(vtdpt_walk(&c, f.mem, r1, IOVA, 0, NULL, NULL, &r) == 0);
	e1 = r.fetch;
	gw64(&f, e0, PA2 | 1);
	gw64(&f, e1, PA2 | 1);
	fx_desc(&f, D_IOTLB_DSI(1), 0);             /* DID 1 only */
	fx_wait(&f);
	CHECK_EQ(fx_read(&f, 0, VIOMMU_NO_PASID, IOVA, &v), 0);
	CHECK_EQ(v, 2);                             /* fresh */
	CHECK_EQ(fx_read(&f, 1, VIOMMU_NO_PASID, IOVA, &v), 0);
	CHECK_EQ(v, 1);                             /* still cached */
	fx_desc(&f, D_IOTLB_PSI(2), IOVA);
	fx_wait(&f);
	CHECK_EQ(fx_read(&f, 1, VIOMMU_NO_PASID, IOVA, &v), 0);
	CHECK_EQ(v, 2);
	fx_fini(&f);
}

/*
 * T10 with a 16-entry IOTLB, so that entries are evicted and replaced:
 * a domain-selective and a global invalidation still drop every entry
 * they cover, wherever it sits in the array (an array scan stops once it
 * has seen as many valid entries as the IOTLB holds: a miscount would
 * leave a stale translation in use).
 */
static void remap_all(struct fx *f, uint64_t root, uint64_t pa, int n)
{
	struct vtdpt_cfg c = fx_cfg(VTDPT_SL, 4);
	struct vtdpt_result r;

	for (int k = 0; k < n; k++) {
		REQUIRE(vtdpt_walk(&c, f->mem, root, IOVA + k * 4096ull, 0,
				   NULL, NULL, &r) == 0);
		gw64(f, r.fetch, (pa + k * 4096ull) | 1);
	}
}

TEST(t10_small_iotlb_invalidation_drops_every_entry)
{
	struct viommu_vtd_config vc = { .iotlb_entries = 16 };
	struct vtdpt_cfg c = fx_cfg(VTDPT_SL, 4);
	const int n = 24;
	struct fx f;
	uint64_t root[2];
	uint32_t v;
	int bad = 0;

	REQUIRE(fx_init(&f, &vc) == 0);
	REQUIRE(fx_enable(&f, false) == 0);
	for (int i = 0; i < 2; i++) {
		REQUIRE(vtdpt_alloc_root(&f.ops, &root[i]) == 0);
		REQUIRE(vtdpt_map(&c, &f.ops, root[i], IOVA, PA1, n * 4096ull,
				  VIOMMU_READ) == 0);
		fx_legacy_ctx(&f, fx_sids[i], 1 + i, root[i], 2, 0);
	}
	fx_desc(&f, D_CC_GLOBAL, 0);
	REQUIRE(fx_wait(&f));
	for (int k = 0; k < n; k++) {
		gw64(&f, PA1 + k * 4096ull, k);
		gw64(&f, PA2 + k * 4096ull, 1000 + k);
	}
	/* fill: 48 translations through 16 entries, twice over */
	for (int pass = 0; pass < 2; pass++)
		for (int k = 0; k < n; k++)
			for (int i = 0; i < 2; i++)
				bad += fx_read(&f, i, VIOMMU_NO_PASID,
					       IOVA + k * 4096ull, &v) ||
				       v != (uint32_t)k;
	CHECK_EQ(bad, 0);
	/* DID 1 moves to PA2: a domain-selective flush shows all of it */
	remap_all(&f, root[0], PA2, n);
	fx_desc(&f, D_IOTLB_DSI(1), 0);
	REQUIRE(fx_wait(&f));
	for (int k = n - 1; k >= 0; k--)
		bad += fx_read(&f, 0, VIOMMU_NO_PASID, IOVA + k * 4096ull,
			       &v) || v != 1000u + k;
	CHECK_EQ(bad, 0);
	/* both back to PA1 after a global flush */
	remap_all(&f, root[0], PA1, n);
	remap_all(&f, root[1], PA2, n);
	fx_desc(&f, D_IOTLB_GLOBAL, 0);
	REQUIRE(fx_wait(&f));
	for (int k = 0; k < n; k++) {
		bad += fx_read(&f, 0, VIOMMU_NO_PASID, IOVA + k * 4096ull,
			       &v) || v != (uint32_t)k;
		bad += fx_read(&f, 1, VIOMMU_NO_PASID, IOVA + k * 4096ull,
			       &v) || v != 1000u + k;
	}
	CHECK_EQ(bad, 0);
	fx_fini(&f);
}

TEST(t10_strict_unmap_then_invalidate_faults)
{
	struct fx f;
	uint64_t root, n = 0;
	uint32_t v;
	struct vtdpt_cfg c = fx_cfg(VTDPT_SL, 4);

	REQUIRE(setup(&f, VIOMMU_VTD_F_QI | VIOMMU_VTD_F_CM, false) == 0);
	root = legacy_map(&f, 2, 3, VIOMMU_READ | VIOMMU_WRITE);
	REQUIRE(root);
	CHECK_EQ(fx_read(&f, 2, VIOMMU_NO_PASID, IOVA, &v), 0);
	REQUIRE(vtdpt_unmap(&c, &f.ops, root, IOVA, 4096, &n) == 0);
	CHECK_U64(n, 4096);
	fx_desc(&f, D_IOTLB_PSI(3), IOVA);
	CHECK(fx_wait(&f));
	CHECK_EQ(fx_read(&f, 2, VIOMMU_NO_PASID, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_last(&f), 0x6);
	/* caching mode: the driver invalidates after a map too */
	REQUIRE(vtdpt_map(&c, &f.ops, root, IOVA, PA2, 4096, VIOMMU_READ) == 0);
	fx_desc(&f, D_IOTLB_PSI(3), IOVA);
	CHECK(fx_wait(&f));
	CHECK_EQ(fx_read(&f, 2, VIOMMU_NO_PASID, IOVA, &v), 0);
	fx_fini(&f);
}

TEST(t11_endpoints_add_remove_reset)
{
	struct fx f;
	struct viommu_endpoint *ep;
	struct viommu_domain *d;
	uint32_t v;

	REQUIRE(setup(&f, 0, false) == 0);
	CHECK_EQ(viommu_vtd_add_endpoint(f.vtd, f.ep[0]), -EEXIST);
	REQUIRE(viommu_endpoint_create(f.ctx, 0x10000, &ep) == 0);
	CHECK_EQ(viommu_vtd_add_endpoint(f.vtd, ep), -EINVAL);
	CHECK_EQ(viommu_vtd_remove_endpoint(f.vtd, ep), -ENOENT);
	CHECK_EQ(viommu_vtd_remove_endpoint(f.vtd, f.ep[1]), 0);
	CHECK_EQ(viommu_endpoint_domain(f.ep[1], VIOMMU_NO_PASID, &d), 0);
	CHECK(d == NULL);
	CHECK_EQ(viommu_vtd_add_endpoint(f.vtd, f.ep[1]), 0);
	CHECK_EQ(viommu_endpoint_domain(f.ep[1], VIOMMU_NO_PASID, &d), 0);
	CHECK_EQ(viommu_domain_kind(d), VIOMMU_DOMAIN_NESTED);
	CHECK_EQ(viommu_vtd_reset(f.vtd), 0);
	CHECK_EQ(mr(&f, VR_GSTS, 4), 0);
	CHECK_EQ(fx_read(&f, 1, VIOMMU_NO_PASID, 0x100, &v), 0); /* identity */
	fx_fini(&f);
}

/* a counting allocator that fails the Nth call */
struct fi {
	long calls, fail_at, live;
};

static void *fi_alloc(void *o, size_t n)
{
	struct fi *fi = o;
	void *p;

	if (++fi->calls == fi->fail_at)
		return NULL;
	p = malloc(n);
	if (p)
		fi->live++;
	return p;
}

static void fi_free(void *o, void *p)
{
	struct fi *fi = o;

	if (p)
		fi->live--;
	free(p);
}

TEST(allocation_failures_change_nothing)
{
	struct fx f;
	long n;

	REQUIRE(fx_init(&f, NULL) == 0);
	for (n = 1; n < 16; n++) {
		struct fi fi = { .fail_at = n };
		struct viommu_vtd_config c = {
			.ctx = f.ctx, .mem = f.mem,
			.allocator = { fi_alloc, fi_free, &fi },
		};
		struct viommu_endpoint *ep = NULL;
		struct viommu_domain *d = NULL;
		struct viommu_vtd *v = NULL;
		int r = viommu_vtd_create(&c, &v);

		if (r) {
			CHECK_EQ(r, -ENOMEM);
			CHECK(v == NULL);
			CHECK_EQ(fi.live, 0);
			continue;
		}
		REQUIRE(viommu_endpoint_create(f.ctx, 0x300, &ep) == 0);
		r = viommu_vtd_add_endpoint(v, ep);
		if (r) {
			CHECK_EQ(r, -ENOMEM);
			CHECK_EQ(viommu_vtd_remove_endpoint(v, ep), -ENOENT);
			CHECK_EQ(viommu_endpoint_domain(ep, VIOMMU_NO_PASID, &d),
				 0);
			CHECK(d == NULL);               /* not attached */
		} else {
			CHECK_EQ(viommu_vtd_remove_endpoint(v, ep), 0);
		}
		viommu_endpoint_destroy(ep);
		viommu_vtd_destroy(v);
		CHECK_EQ(fi.live, 0);
		if (!r)
			break;                          /* nothing left to fail */
	}
	CHECK(n > 3 && n < 16);
	fx_fini(&f);
}

TEST_MAIN()
