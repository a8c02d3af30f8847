/*
 * test_smmuv3_xlate.c - SMMUv3 translation through the core: stage 1
 * (three granules), stage 2, nested (CD and table fetches through stage 2
 * and their Class CD/TTD faults), SubstreamIDs with linear and 2-level CD
 * tables and S1DSS, malformed CDs, walk faults (translation, permission,
 * access flag, address size, external abort), hardware access/dirty
 * updates, IOTLB caching and each TLBI command, range invalidation checked
 * against a model, and DMA from several threads while commands run.
 * Page tables are built in guest memory with the LPAE builder.
 */
#include "harness.h"
#include "unit/test_smmuv3_fixture.h"

#include <errno.h>
#include <pthread.h>

#define EVT_TYPE(e) ((e)[0] & 0xff)
#define EVT_SID(e) ((uint32_t)((e)[0] >> 32))
#define EVT_SSID(e) ((uint32_t)(((e)[0] >> 12) & 0xfffff))
#define EVT_SSV(e) (((e)[0] >> 11) & 1)
#define EVT_RNW(e) (((e)[1] >> 35) & 1)
#define EVT_S2(e) (((e)[1] >> 39) & 1)
#define EVT_CLASS(e) (((e)[1] >> 40) & 3)

#define DATA_PA 0x800000ull
#define CD_GPA 0x10000ull

/* struct s1 - a stage-1 table tree in guest memory. */
struct s1 {
	struct lpae_cfg c;
	uint64_t root;
};

static int s1_new(struct fx *f, struct s1 *s, unsigned int g)
{
	if (fx_lcfg(&s->c, LPAE_STAGE1, g, 48, 48))
		return -1;
	return lpae_alloc_root(&s->c, &f->ops, &s->root);
}

static int map(struct fx *f, const struct lpae_cfg *c, uint64_t root,
	       uint64_t iova, uint64_t pa, uint64_t size, unsigned int prot)
{
	return lpae_map(c, &f->ops, root, iova, pa, size, prot);
}

/* put32() / rd() - guest data and a DMA read of it. */
static void put32(struct fx *f, uint64_t pa, uint32_t v)
{
	memcpy(f->ram + pa, &v, 4);
}

static uint32_t rd(struct fx *f, int i, uint32_t pasid, uint64_t iova,
		   int *err)
{
	uint32_t v = 0;

	*err = viommu_dma_read(f->ep[i], pasid, iova, &v, 4);
	return v;
}

/* s1_ste() - STE of @sid: stage 1 with the single CD at CD_GPA. */
static void s1_ste(struct fx *f, uint32_t sid, const struct s1 *s,
		   uint16_t asid)
{
	uint64_t q[8];

	fx_cd(q, &s->c, s->root, asid);
	for (int i = 0; i < 8; i++)
		gw64(f, CD_GPA + 8 * i, q[i]);
	fx_ste_s1(q, CD_GPA, 0, 0, 0);
	fx_ste(f, sid, q);
}

static int setup(struct fx *f)
{
	return fx_init(f, NULL) || fx_reset(f);
}

TEST(stage1_granules)
{
	static const unsigned int g[3] = { 4096, 16384, 65536 };

	for (int i = 0; i < 3; i++) {
		uint64_t iova = 0x12340000ull, e[4];
		struct fx f;
		struct s1 s;
		int err;

		REQUIRE(setup(&f) == 0);
		REQUIRE(s1_new(&f, &s, g[i]) == 0);
		REQUIRE(map(&f, &s.c, s.root, iova, DATA_PA, g[i],
			    VIOMMU_READ) == 0);
		put32(&f, DATA_PA + 0x40, 0xfeed0000u + (uint32_t)i);
		s1_ste(&f, 1, &s, 7);
		CHECK(fx_cfgi_ste(&f, 1));
		CHECK_EQ(rd(&f, 1, VIOMMU_NO_PASID, iova + 0x40, &err),
			 0xfeed0000u + (uint32_t)i);
		CHECK_EQ(err, 0);
		/* unmapped: F_TRANSLATION with the fields */
		rd(&f, 1, VIOMMU_NO_PASID, iova + g[i] + 8, &err);
		CHECK_EQ(err, -EFAULT);
		REQUIRE(fx_evt(&f, e));
		CHECK_EQ(EVT_TYPE(e), 0x10);
		CHECK_EQ(EVT_SID(e), 1);
		CHECK_EQ(EVT_SSV(e), 0);
		CHECK_EQ(EVT_RNW(e), 1);
		CHECK_EQ(EVT_S2(e), 0);
		CHECK_EQ(EVT_CLASS(e), 2);
		CHECK_U64(e[2], iova + g[i] + 8);
		/* write to a read-only page: F_PERMISSION, RnW 0 */
		uint32_t v = 1;

		CHECK_EQ(viommu_dma_write(f.ep[1], VIOMMU_NO_PASID, iova, &v,
					  4), -EFAULT);
		REQUIRE(fx_evt(&f, e));
		CHECK_EQ(EVT_TYPE(e), 0x13);
		CHECK_EQ(EVT_RNW(e), 0);
		fx_fini(&f);
	}
}

/* s2_setup() - stage 2 for @sid (4K, IAS 40): IPA @ipa -> DATA_PA. */
static void s2_ste(struct fx *f, uint32_t sid, const struct lpae_cfg *c,
		   uint64_t root, uint64_t q[8], uint16_t vmid)
{
	fx_ste_add_s2(q, c, root, vmid);
	fx_ste(f, sid, q);
}

TEST(stage2_only)
{
	struct lpae_cfg c;
	uint64_t root, q[8] = { 0 }, e[4];
	struct fx f;
	int err;

	REQUIRE(setup(&f) == 0);
	REQUIRE(fx_lcfg(&c, LPAE_STAGE2, 4096, 40, 48) == 0);
	REQUIRE(lpae_alloc_root(&c, &f.ops, &root) == 0);
	REQUIRE(map(&f, &c, root, 0x4000000000ull - 0x200000, DATA_PA,
		    0x200000, VIOMMU_READ | VIOMMU_WRITE) == 0);
	put32(&f, DATA_PA + 0x1004, 0xabcd1234);
	s2_ste(&f, 2, &c, root, q, 5);
	CHECK(fx_cfgi_ste(&f, 2));
	CHECK_EQ(rd(&f, 2, VIOMMU_NO_PASID, 0x4000000000ull - 0x200000 +
		    0x1004, &err), 0xabcd1234);
	CHECK_EQ(err, 0);
	rd(&f, 2, VIOMMU_NO_PASID, 0x1000, &err);
	CHECK_EQ(err, -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x10);
	CHECK_EQ(EVT_S2(e), 1);
	CHECK_EQ(EVT_CLASS(e), 2);
	CHECK_U64(e[3], 0x1000);
	/* beyond the stage-2 input size */
	rd(&f, 2, VIOMMU_NO_PASID, 1ull << 40, &err);
	CHECK_EQ(err, -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x10);
	fx_fini(&f);
}

/* nested_env - stage 2 identity over the table area, data elsewhere. */
struct nested_env {
	struct lpae_cfg s2;
	uint64_t s2root;
	struct s1 s1;
	uint64_t q[8];
};

#define NEST_IPA 0x2000000ull /* beyond RAM as a PA */

static int nested_setup(struct fx *f, struct nested_env *n)
{
	if (fx_lcfg(&n->s2, LPAE_STAGE2, 4096, 40, 48) ||
	    lpae_alloc_root(&n->s2, &f->ops, &n->s2root))
		return -1;
	/* identity for [0, 8 MiB): CDs and stage-1 tables live there */
	if (map(f, &n->s2, n->s2root, 0, 0, 0x800000,
		VIOMMU_READ | VIOMMU_WRITE))
		return -1;
	if (map(f, &n->s2, n->s2root, NEST_IPA, DATA_PA, 0x200000,
		VIOMMU_READ | VIOMMU_WRITE))
		return -1;
	if (s1_new(f, &n->s1, 4096))
		return -1;
	if (map(f, &n->s1.c, n->s1.root, 0x7000000, NEST_IPA + 0x3000,
		0x1000, VIOMMU_READ | VIOMMU_WRITE))
		return -1;
	if (f->next >= 0x800000)
		return -1;
	s1_ste(f, 1, &n->s1, 9);
	memcpy(n->q, f->ram + f->strtab + 64, 64);
	s2_ste(f, 1, &n->s2, n->s2root, n->q, 3);
	return fx_cfgi_ste(f, 1) ? 0 : -1;
}

TEST(nested_translation)
{
	struct nested_env n;
	uint64_t e[4];
	struct fx f;
	int err;

	REQUIRE(setup(&f) == 0);
	REQUIRE(nested_setup(&f, &n) == 0);
	put32(&f, DATA_PA + 0x3010, 0x5eed5eed);
	CHECK_EQ(rd(&f, 1, VIOMMU_NO_PASID, 0x7000010, &err), 0x5eed5eed);
	CHECK_EQ(err, 0);
	/* stage-1 output IPA with no stage-2 mapping: S2, Class IN */
	REQUIRE(map(&f, &n.s1.c, n.s1.root, 0x7001000, 0x3000000, 0x1000,
		    VIOMMU_READ) == 0);
	rd(&f, 1, VIOMMU_NO_PASID, 0x7001000, &err);
	CHECK_EQ(err, -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x10);
	CHECK_EQ(EVT_S2(e), 1);
	CHECK_EQ(EVT_CLASS(e), 2);
	CHECK_U64(e[2], 0x7001000);
	CHECK_U64(e[3], 0x3000000);
	/* stage-1 root at an IPA stage 2 does not map: Class TTD */
	uint64_t cd[8];

	fx_cd(cd, &n.s1.c, 0x3000000, 9);
	for (int i = 0; i < 8; i++)
		gw64(&f, CD_GPA + 8 * i, cd[i]);
	CHECK(fx_cfgi_cd(&f, 1, 0));
	/* the IOTLB still holds ASID 9's entry until the TLBI */
	CHECK_EQ(rd(&f, 1, VIOMMU_NO_PASID, 0x7000010, &err), 0x5eed5eed);
	fx_cmd(&f, 0x11 | (9ull << 48) | (3ull << 32), 0);
	CHECK(fx_sync(&f));
	rd(&f, 1, VIOMMU_NO_PASID, 0x7000010, &err);
	CHECK_EQ(err, -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x10);
	CHECK_EQ(EVT_S2(e), 1);
	CHECK_EQ(EVT_CLASS(e), 1);
	/* CD at an unmapped IPA: Class CD */
	n.q[0] = (n.q[0] & ~0xfffffffffffc0ull) | 0x3000000;
	fx_ste(&f, 1, n.q);
	CHECK(fx_cfgi_ste(&f, 1));
	rd(&f, 1, VIOMMU_NO_PASID, 0x7000010, &err);
	CHECK_EQ(err, -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x10);
	CHECK_EQ(EVT_S2(e), 1);
	CHECK_EQ(EVT_CLASS(e), 0);
	CHECK_U64(e[3], 0x3000000);
	fx_fini(&f);
}

/* cd_at() - write CD @q at @gpa. */
static void cd_at(struct fx *f, uint64_t gpa, const uint64_t q[8])
{
	for (int i = 0; i < 8; i++)
		gw64(f, gpa + 8 * i, q[i]);
}

TEST(substreams_linear)
{
	struct s1 s[4];
	uint64_t tab, q[8], e[4];
	struct fx f;
	int err;

	REQUIRE(setup(&f) == 0);
	tab = fx_alloc(&f, 4 * 64, 64);
	for (int i = 0; i < 4; i++) {
		REQUIRE(s1_new(&f, &s[i], 4096) == 0);
		REQUIRE(map(&f, &s[i].c, s[i].root, 0x100000,
			    DATA_PA + 0x1000 * (uint64_t)i, 0x1000,
			    VIOMMU_READ) == 0);
		put32(&f, DATA_PA + 0x1000 * (uint64_t)i, 100 + (uint32_t)i);
		fx_cd(q, &s[i].c, s[i].root, (uint16_t)(10 + i));
		cd_at(&f, tab + 64 * (uint64_t)i, q);
	}
	fx_ste_s1(q, tab, 2, 0, 2); /* 4 SSIDs, S1DSS = SSID0 */
	fx_ste(&f, 3, q);
	CHECK(fx_cfgi_ste(&f, 3));
	for (uint32_t i = 0; i < 4; i++)
		CHECK(fx_cfgi_cd(&f, 3, i));
	CHECK_EQ(rd(&f, 3, VIOMMU_NO_PASID, 0x100000, &err), 100);
	for (uint32_t i = 1; i < 4; i++) {
		CHECK_EQ(rd(&f, 3, i, 0x100000, &err), 100 + i);
		CHECK_EQ(err, 0);
	}
	/* SSID 0 with S1DSS = SSID0 is a bad SubstreamID */
	rd(&f, 3, 0, 0x100000, &err);
	CHECK_EQ(err, -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x08);
	CHECK_EQ(EVT_SSV(e), 1);
	/* invalid CD 2: C_BAD_CD with the SSID */
	q[0] = 0;
	gw64(&f, tab + 128, 0);
	CHECK(fx_cfgi_cd(&f, 3, 2));
	rd(&f, 3, 2, 0x100000, &err);
	CHECK_EQ(err, -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x0a);
	CHECK_EQ(EVT_SSID(e), 2);
	/* S1DSS terminate and bypass for the RID */
	fx_ste_s1(q, tab, 2, 0, 0);
	fx_ste(&f, 3, q);
	CHECK(fx_cfgi_ste(&f, 3));
	rd(&f, 3, VIOMMU_NO_PASID, 0x100000, &err);
	CHECK_EQ(err, -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x06);
	fx_ste_s1(q, tab, 2, 0, 1);
	fx_ste(&f, 3, q);
	CHECK(fx_cfgi_ste(&f, 3));
	put32(&f, 0x100000, 0x77);
	CHECK_EQ(rd(&f, 3, VIOMMU_NO_PASID, 0x100000, &err), 0x77);
	CHECK_EQ(rd(&f, 3, 1, 0x100000, &err), 101);
	fx_fini(&f);
}

TEST(substreams_two_level)
{
	uint64_t l1, l2, q[8], e[4];
	struct fx f;
	struct s1 s;
	int err;

	REQUIRE(setup(&f) == 0);
	REQUIRE(s1_new(&f, &s, 4096) == 0);
	REQUIRE(map(&f, &s.c, s.root, 0x200000, DATA_PA, 0x1000,
		    VIOMMU_READ) == 0);
	put32(&f, DATA_PA, 0x2222);
	l1 = fx_alloc(&f, 4 * 8, 64);
	l2 = fx_alloc(&f, 4096, 4096);
	gw64(&f, l1 + 8, l2 | 1);              /* SSIDs 64..127 */
	fx_cd(q, &s.c, s.root, 70);
	cd_at(&f, l2 + 6 * 64, q);             /* SSID 70 */
	fx_ste_s1(q, l1, 8, 1, 1);             /* 256 SSIDs, 4K leaves */
	fx_ste(&f, 0, q);
	CHECK(fx_cfgi_ste(&f, 0));
	CHECK(fx_cfgi_cd(&f, 0, 70));
	CHECK(fx_cfgi_cd(&f, 0, 130));
	CHECK(fx_cfgi_cd(&f, 0, 71));
	CHECK_EQ(rd(&f, 0, 70, 0x200000, &err), 0x2222);
	CHECK_EQ(err, 0);
	rd(&f, 0, 130, 0x200000, &err);        /* L1 descriptor invalid */
	CHECK_EQ(err, -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x08);
	CHECK_EQ(EVT_SSID(e), 130);
	rd(&f, 0, 71, 0x200000, &err);         /* zero CD */
	CHECK_EQ(err, -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x0a);
	gw64(&f, l1 + 8, 0x7f000000ull | 1);   /* L2 not RAM */
	CHECK(fx_cfgi_cd(&f, 0, 70));
	rd(&f, 0, 70, 0x200000, &err);
	CHECK_EQ(err, -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x09);
	CHECK_U64(e[3], 0x7f000000ull + 6 * 64);
	fx_fini(&f);
}

/* bad_cd() - CD @q for sid 1 must give C_BAD_CD. */
static void bad_cd(struct fx *f, const uint64_t q[8])
{
	uint64_t e[4], s[8];
	int err;

	cd_at(f, CD_GPA, q);
	fx_ste_s1(s, CD_GPA, 0, 0, 0);
	fx_ste(f, 1, s);
	CHECK(fx_cfgi_ste(f, 1));
	rd(f, 1, VIOMMU_NO_PASID, 0, &err);
	CHECK_EQ(err, -EFAULT);
	CHECK(fx_evt(f, e));
	CHECK_EQ(EVT_TYPE(e), 0x0a);
}

TEST(malformed_cd)
{
	uint64_t q[8], e[4];
	struct fx f;
	struct s1 s;
	int err;

	REQUIRE(setup(&f) == 0);
	REQUIRE(s1_new(&f, &s, 4096) == 0);
	fx_cd(q, &s.c, s.root, 1);
	q[0] &= ~(1ull << 31);
	bad_cd(&f, q);                                  /* V = 0 */
	fx_cd(q, &s.c, s.root, 1);
	q[0] &= ~(1ull << 41);
	bad_cd(&f, q);                                  /* AArch32 */
	fx_cd(q, &s.c, s.root, 1);
	q[0] |= 1ull << 15;
	bad_cd(&f, q);                                  /* big-endian */
	fx_cd(q, &s.c, s.root, 1);
	q[0] |= 3ull << 6;
	bad_cd(&f, q);                                  /* TG0 reserved */
	fx_cd(q, &s.c, s.root, 1);
	q[0] = (q[0] & ~0x3full) | 10;
	bad_cd(&f, q);                                  /* T0SZ 10 */
	fx_cd(q, &s.c, s.root, 1);
	q[0] = (q[0] & ~0x3full) | 45;
	bad_cd(&f, q);                                  /* T0SZ 45 */
	fx_cd(q, &s.c, s.root, 1);
	q[0] &= ~(1ull << 30);
	bad_cd(&f, q);                                  /* TTB1 on, TG1 0 */
	/* CD not RAM: F_CD_FETCH */
	fx_ste_s1(q, 0x7f000000ull, 0, 0, 0);
	fx_ste(&f, 1, q);
	CHECK(fx_cfgi_ste(&f, 1));
	rd(&f, 1, VIOMMU_NO_PASID, 0, &err);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x09);
	CHECK_U64(e[3], 0x7f000000ull);
	fx_fini(&f);
}

TEST(walk_faults)
{
	uint64_t q[8], e[4];
	struct fx f;
	struct s1 s;
	int err;

	REQUIRE(setup(&f) == 0);
	REQUIRE(s1_new(&f, &s, 4096) == 0);
	REQUIRE(map(&f, &s.c, s.root, 0x1000, DATA_PA, 0x1000,
		    VIOMMU_READ | LPAE_PROT_NO_AF) == 0);
	REQUIRE(map(&f, &s.c, s.root, 0x2000, 1ull << 40, 0x1000,
		    VIOMMU_READ) == 0);
	s1_ste(&f, 1, &s, 1);
	/* HTTU off in the CD: access flag fault */
	CHECK(fx_cfgi_ste(&f, 1));
	rd(&f, 1, VIOMMU_NO_PASID, 0x1000, &err);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x12);
	/* output above IPS (40 bits): address size fault */
	fx_cd(q, &s.c, s.root, 1);
	q[0] = (q[0] & ~(7ull << 32)) | (2ull << 32);
	cd_at(&f, CD_GPA, q);
	CHECK(fx_cfgi_cd(&f, 1, 0));
	rd(&f, 1, VIOMMU_NO_PASID, 0x2000, &err);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x11);
	/* CD.R clear: not recorded */
	q[0] &= ~(1ull << 45);
	cd_at(&f, CD_GPA, q);
	CHECK(fx_cfgi_cd(&f, 1, 0));
	rd(&f, 1, VIOMMU_NO_PASID, 0x9000, &err);
	CHECK_EQ(err, -EFAULT);
	CHECK_EQ(fx_evt(&f, e), 0);
	/* table not RAM: F_WALK_EABT with the descriptor address */
	fx_cd(q, &s.c, 0x7f000000ull, 1);
	cd_at(&f, CD_GPA, q);
	CHECK(fx_cfgi_cd(&f, 1, 0));
	rd(&f, 1, VIOMMU_NO_PASID, 0, &err);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x0b);
	CHECK_U64(e[3], 0x7f000000ull);
	/* EPD0: everything in TTB0 faults; TTB1 half translates */
	fx_cd(q, &s.c, s.root, 1);
	q[0] |= 1ull << 14;
	cd_at(&f, CD_GPA, q);
	CHECK(fx_cfgi_cd(&f, 1, 0));
	rd(&f, 1, VIOMMU_NO_PASID, 0x1000, &err);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x10);
	fx_fini(&f);
}

TEST(ttb1_half)
{
	uint64_t q[8];
	struct fx f;
	struct s1 s;
	int err;

	REQUIRE(setup(&f) == 0);
	REQUIRE(s1_new(&f, &s, 4096) == 0);
	REQUIRE(map(&f, &s.c, s.root, 0xffffff000000ull, DATA_PA, 0x1000,
		    VIOMMU_READ) == 0);
	put32(&f, DATA_PA, 0x1111);
	fx_cd(q, &s.c, 0, 1);
	q[0] = (q[0] & ~((1ull << 30) | (0xffull << 16))) |
	       (1ull << 14) | (16ull << 16) | (2ull << 22); /* TTB1 4K */
	q[2] = s.root;
	cd_at(&f, CD_GPA, q);
	fx_ste_s1(q, CD_GPA, 0, 0, 0);
	fx_ste(&f, 1, q);
	CHECK(fx_cfgi_ste(&f, 1));
	CHECK_EQ(rd(&f, 1, VIOMMU_NO_PASID, 0xffffffffff000000ull, &err),
		 0x1111);
	CHECK_EQ(err, 0);
	fx_fini(&f);
}

TEST(httu_access_and_dirty)
{
	struct lpae_result r;
	uint64_t q[8];
	struct fx f;
	struct s1 s;
	uint32_t v = 0x99;

	REQUIRE(setup(&f) == 0);
	REQUIRE(s1_new(&f, &s, 4096) == 0);
	REQUIRE(map(&f, &s.c, s.root, 0x1000, DATA_PA, 0x1000,
		    VIOMMU_READ | VIOMMU_WRITE | LPAE_PROT_NO_AF |
		    LPAE_PROT_DBM) == 0);
	fx_cd(q, &s.c, s.root, 1);
	q[0] |= (1ull << 42) | (1ull << 43);
	cd_at(&f, CD_GPA, q);
	fx_ste_s1(q, CD_GPA, 0, 0, 0);
	fx_ste(&f, 1, q);
	CHECK(fx_cfgi_ste(&f, 1));
	REQUIRE(lpae_walk(&s.c, f.mem, s.root, 0x1000, 0, NULL, NULL, &r) ==
		0);
	CHECK(!r.desc.af);
	CHECK(r.desc.ap & 2);                  /* read-only (clean) */
	CHECK_EQ(viommu_dma_read(f.ep[1], VIOMMU_NO_PASID, 0x1000, &v, 4), 0);
	REQUIRE(lpae_walk(&s.c, f.mem, s.root, 0x1000, 0, NULL, NULL, &r) ==
		0);
	CHECK(r.desc.af);
	CHECK(r.desc.ap & 2);                  /* still clean */
	CHECK_EQ(viommu_dma_write(f.ep[1], VIOMMU_NO_PASID, 0x1000, &v, 4),
		 0);
	REQUIRE(lpae_walk(&s.c, f.mem, s.root, 0x1000, 0, NULL, NULL, &r) ==
		0);
	CHECK(!(r.desc.ap & 2));               /* dirty */
	fx_fini(&f);
}

/* remap() - point @iova's page at @pa without any TLBI. */
static void remap(struct fx *f, struct s1 *s, uint64_t iova, uint64_t pa)
{
	uint64_t un = 0;

	CHECK_EQ(lpae_unmap(&s->c, &f->ops, s->root, iova, 0x1000, &un), 0);
	CHECK_EQ(map(f, &s->c, s->root, iova, pa, 0x1000, VIOMMU_READ), 0);
}

TEST(iotlb_and_tlbi_commands)
{
	/* each: command dwords, and whether it must drop ASID 4/VMID 0 */
	static const struct { uint64_t d0, d1; bool drops; } cmds[] = {
		{ 0x12 | (5ull << 48), 0x1000, false },  /* NH_VA other ASID */
		{ 0x12 | (4ull << 48), 0x5000, false },  /* NH_VA other page */
		{ 0x12 | (4ull << 48) | (1ull << 32), 0x1000, false }, /* VMID */
		{ 0x11 | (5ull << 48), 0, false },       /* NH_ASID other */
		{ 0x2a, 0x1000, false },                 /* S2_IPA: S1 entry */
		{ 0x12 | (4ull << 48), 0x1000, true },   /* NH_VA */
		{ 0x13, 0x1000, true },                  /* NH_VAA */
		{ 0x11 | (4ull << 48), 0, true },        /* NH_ASID */
		{ 0x10, 0, true },                       /* NH_ALL */
		{ 0x28, 0, true },                       /* S12_VMALL */
		{ 0x30, 0, true },                       /* NSNH_ALL */
	};
	struct fx f;
	struct s1 s;
	int err;

	REQUIRE(setup(&f) == 0);
	REQUIRE(s1_new(&f, &s, 4096) == 0);
	REQUIRE(map(&f, &s.c, s.root, 0x1000, DATA_PA, 0x1000,
		    VIOMMU_READ) == 0);
	put32(&f, DATA_PA, 1);
	put32(&f, DATA_PA + 0x1000, 2);
	s1_ste(&f, 1, &s, 4);
	CHECK(fx_cfgi_ste(&f, 1));
	uint64_t cur = DATA_PA;

	for (unsigned int i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		uint64_t next = cur == DATA_PA ? DATA_PA + 0x1000 : DATA_PA;
		uint32_t want_old = cur == DATA_PA ? 1 : 2;

		CHECK_EQ(rd(&f, 1, VIOMMU_NO_PASID, 0x1000, &err), want_old);
		remap(&f, &s, 0x1000, next);
		/* stale until invalidated */
		CHECK_EQ(rd(&f, 1, VIOMMU_NO_PASID, 0x1000, &err), want_old);
		fx_cmd(&f, cmds[i].d0, cmds[i].d1);
		CHECK(fx_sync(&f));
		uint32_t got = rd(&f, 1, VIOMMU_NO_PASID, 0x1000, &err);

		if (cmds[i].drops) {
			CHECK_EQ(got, 3 - want_old);
		} else {
			CHECK_EQ(got, want_old);
			fx_cmd(&f, 0x30, 0);
			CHECK(fx_sync(&f));
		}
		cur = next;
	}
	fx_fini(&f);
}

/* xorshift - deterministic test randomness. */
static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

TEST(range_invalidation_against_model)
{
	enum { NPAGES = 96, BASE = 0x40000000 };
	bool fresh[NPAGES];
	uint64_t seed = 0x1234567;
	struct fx f;
	struct s1 s;
	int err;

	REQUIRE(setup(&f) == 0);
	REQUIRE(s1_new(&f, &s, 4096) == 0);
	for (int i = 0; i < NPAGES; i++) {
		REQUIRE(map(&f, &s.c, s.root, BASE + 0x1000ull * i,
			    DATA_PA + 0x1000ull * i, 0x1000,
			    VIOMMU_READ) == 0);
		put32(&f, DATA_PA + 0x1000ull * i, (uint32_t)i);
		put32(&f, DATA_PA + 0x100000 + 0x1000ull * i,
		      0x10000u + (uint32_t)i);
	}
	s1_ste(&f, 2, &s, 6);
	CHECK(fx_cfgi_ste(&f, 2));
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < NPAGES; i++) {
			rd(&f, 2, VIOMMU_NO_PASID, BASE + 0x1000ull * i, &err);
			remap(&f, &s, BASE + 0x1000ull * i,
			      DATA_PA + (round & 1 ? 0 : 0x100000) +
			      0x1000ull * i);
			fresh[i] = false;
		}
		for (int k = 0; k < 12; k++) {
			uint64_t num = rng(&seed) % 8, scale = rng(&seed) % 3;
			uint64_t first = rng(&seed) % NPAGES;
			uint64_t n = (num + 1) << scale;

			fx_cmd(&f, 0x12 | (6ull << 48) | (num << 12) |
			       (scale << 20), (BASE + first * 0x1000) |
			       (1ull << 10));
			CHECK(fx_sync(&f));
			for (uint64_t p = first; p < first + n && p < NPAGES;
			     p++)
				fresh[p] = true;
			for (int i = 0; i < NPAGES; i++) {
				uint32_t want = (round & 1 ? 0 : 0x10000u) +
						(uint32_t)i;

				if (fresh[i])
					CHECK_EQ(rd(&f, 2, VIOMMU_NO_PASID,
						    BASE + 0x1000ull * i,
						    &err), want);
			}
		}
		fx_cmd(&f, 0x11 | (6ull << 48), 0);
		CHECK(fx_sync(&f));
	}
	fx_fini(&f);
}

struct thr {
	struct fx *f;
	int bad;
};

static void *dma_thread(void *o)
{
	struct thr *t = o;
	int err;

	for (int i = 0; i < 3000; i++)
		if (rd(t->f, 1, VIOMMU_NO_PASID, 0x1000 + (i & 7) * 0x1000,
		       &err) != 0xc0de || err)
			t->bad++;
	return NULL;
}

TEST(dma_threads_vs_commands)
{
	pthread_t th[3];
	struct thr t[3];
	struct fx f;
	struct s1 s;

	REQUIRE(setup(&f) == 0);
	REQUIRE(s1_new(&f, &s, 4096) == 0);
	REQUIRE(map(&f, &s.c, s.root, 0x1000, DATA_PA, 0x8000,
		    VIOMMU_READ) == 0);
	for (int i = 0; i < 8; i++)
		put32(&f, DATA_PA + 0x1000ull * i, 0xc0de);
	s1_ste(&f, 1, &s, 4);
	CHECK(fx_cfgi_ste(&f, 1));
	for (int i = 0; i < 3; i++) {
		t[i].f = &f;
		t[i].bad = 0;
		pthread_create(&th[i], NULL, dma_thread, &t[i]);
	}
	for (int i = 0; i < 300; i++) {
		fx_cmd(&f, 0x11 | (4ull << 48), 0);
		fx_cmd(&f, 0x05 | CMD_SID(1), 1);
		fx_cmd(&f, 0x03 | CMD_SID(1), 1);
		fx_sync(&f);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(t[i].bad, 0);
	}
	fx_fini(&f);
}

/*
 * Regression (review): the IOTLB must not let an unprivileged stream reuse
 * a privileged stream's entry.  Streams 1 (STE.PRIVCFG = privileged) and
 * 2 (default: unprivileged) share one CD, hence one ASID; the page is
 * privileged-only.  Stream 1 reads it (filling the IOTLB), stream 2 must
 * still fault.
 */
TEST(iotlb_entry_not_shared_across_privilege)
{
	uint64_t iova = 0x40000000ull, q[8];
	struct fx f;
	struct s1 s;
	int err;

	REQUIRE(setup(&f) == 0);
	REQUIRE(s1_new(&f, &s, 4096) == 0);
	REQUIRE(map(&f, &s.c, s.root, iova, DATA_PA, 4096,
		    VIOMMU_READ | LPAE_PROT_PRIV) == 0);
	put32(&f, DATA_PA, 0x5eed);
	s1_ste(&f, 2, &s, 9);
	fx_cd(q, &s.c, s.root, 9);
	fx_ste_s1(q, CD_GPA, 0, 0, 0);
	q[1] |= 3ull << 48; /* PRIVCFG: privileged */
	fx_ste(&f, 1, q);
	CHECK(fx_cfgi_ste(&f, 1));
	CHECK(fx_cfgi_ste(&f, 2));
	CHECK_EQ(rd(&f, 1, VIOMMU_NO_PASID, iova, &err), 0x5eed);
	CHECK_EQ(err, 0);
	rd(&f, 2, VIOMMU_NO_PASID, iova, &err);
	CHECK_EQ(err, -EFAULT);
	fx_fini(&f);
}

TEST_MAIN()
