/*
 * test_smmuv3.c - the SMMUv3 model's register file, queues, commands,
 * events and configuration decoding: ID registers and access rules, the
 * Linux driver's reset sequence, GBPA, bypass/abort STEs, every modelled
 * configuration error (malformed STEs and CDs, fetch failures, StreamIDs
 * beyond the table), command errors and their acknowledgement, CMD_SYNC
 * signalling, event-queue overflow and aborts, interrupts and MSIs, and
 * 2-level stream tables.  Translation tests are in test_smmuv3_xlate.c.
 */
#include "harness.h"
#include "unit/test_smmuv3_fixture.h"
#include "smmuv3/smmuv3_internal.h" /* the log limiter, to end a window */

#include <errno.h>
#include <stdio.h>
#include <time.h>

#define EVT_TYPE(e) ((e)[0] & 0xff)
#define EVT_SID(e) ((uint32_t)((e)[0] >> 32))

/* setup() - fixture plus the driver reset; REQUIRE-style result. */
static int setup(struct fx *f, const struct viommu_smmuv3_config *cfg)
{
	int ret = fx_init(f, cfg);

	if (ret)
		return ret;
	return fx_reset(f);
}

/* dma() - one 4-byte read by endpoint @i; returns the errno. */
static int dma(struct fx *f, int i, uint64_t iova)
{
	uint32_t v;

	return viommu_dma_read(f->ep[i], VIOMMU_NO_PASID, iova, &v, 4);
}

TEST(idr_registers)
{
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	uint64_t i0 = mr(&f, 0x0, 4), i1 = mr(&f, 0x4, 4);

	CHECK(i0 & 1);                       /* S2P */
	CHECK(i0 & 2);                       /* S1P */
	CHECK_EQ((i0 >> 2) & 3, 2);          /* TTF AArch64 */
	CHECK(i0 & (1u << 4));               /* COHACC */
	CHECK_EQ((i0 >> 6) & 3, 2);          /* HTTU AF+dirty */
	CHECK(i0 & (1u << 13));              /* MSI */
	CHECK(i0 & (1u << 19));              /* CD2L */
	CHECK_EQ((i0 >> 21) & 3, 2);         /* TTENDIAN LE */
	CHECK_EQ((i0 >> 27) & 3, 1);         /* 2-level stream tables */
	CHECK_EQ(i1 & 0x3f, 16);             /* SIDSIZE */
	CHECK_EQ((i1 >> 6) & 0x1f, 20);      /* SSIDSIZE */
	CHECK((i1 >> 21 & 0x1f) >= 7);       /* CMDQS */
	CHECK_EQ(i1 >> 28, 0);               /* no PRESET/REL */
	CHECK(mr(&f, 0xc, 4) & (1u << 10));  /* RIL */
	CHECK_EQ(mr(&f, 0x14, 4) & 0x77, 0x75); /* OAS 48, 4K/16K/64K */
	CHECK_EQ(mr(&f, 0x1c, 4), 2);        /* SMMUv3.2 */
	fx_fini(&f);
}

TEST(idr_follow_caps)
{
	struct viommu_smmuv3_config c = { .size = sizeof(c) };
	struct fx f;

	c.features = VIOMMU_SMMUV3_F_STAGE2;
	c.sid_bits = 8;
	c.ssid_bits = VIOMMU_SMMUV3_NO_SSID;
	c.oas_bits = 40;
	REQUIRE(fx_init(&f, &c) == 0);
	CHECK_EQ(mr(&f, 0x0, 4) & 3, 1);
	CHECK_EQ(mr(&f, 0x0, 4) & (1u << 13), 0);
	CHECK_EQ(mr(&f, 0x4, 4) & 0x7ff, 8);
	CHECK_EQ(mr(&f, 0xc, 4) & (1u << 10), 0);
	CHECK_EQ(mr(&f, 0x14, 4) & 7, 2);
	fx_fini(&f);
}

TEST(create_rejects_bad_config)
{
	struct viommu_smmuv3_config c = { .size = sizeof(c) };
	struct viommu_smmuv3 *s;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	CHECK_EQ(viommu_smmuv3_create(NULL, &s), -EINVAL);
	CHECK_EQ(viommu_smmuv3_create(&c, &s), -EINVAL);
	c.ctx = f.ctx;
	c.mem = f.mem;
	c.oas_bits = 47;
	CHECK_EQ(viommu_smmuv3_create(&c, &s), -EINVAL);
	c.oas_bits = 0;
	c.iotlb_entries = 100;
	CHECK_EQ(viommu_smmuv3_create(&c, &s), -EINVAL);
	c.iotlb_entries = 0;
	c.cmdq_log2 = 6;
	CHECK_EQ(viommu_smmuv3_create(&c, &s), -EINVAL);
	c.cmdq_log2 = 0;
	c.features = VIOMMU_SMMUV3_F_HTTU;
	CHECK_EQ(viommu_smmuv3_create(&c, &s), -EINVAL);
	c.features = 0;
	c.ssid_bits = 21;
	CHECK_EQ(viommu_smmuv3_create(&c, &s), -EINVAL);
	fx_fini(&f);
}

TEST(access_sizes)
{
	struct fx f;
	uint64_t v = 1;

	REQUIRE(fx_init(&f, NULL) == 0);
	CHECK_EQ(viommu_smmuv3_mmio_read(f.smmu, 0x20, 8, &v), -EINVAL);
	CHECK_EQ(v, 0);
	CHECK_EQ(viommu_smmuv3_mmio_read(f.smmu, 0x22, 4, &v), -EINVAL);
	CHECK_EQ(viommu_smmuv3_mmio_read(f.smmu, 0x20, 2, &v), -EINVAL);
	CHECK_EQ(viommu_smmuv3_mmio_read(f.smmu, 0x20000, 4, &v), -EINVAL);
	CHECK_EQ(viommu_smmuv3_mmio_write(f.smmu, 0x20, 8, 1), -EINVAL);
	CHECK_EQ(mr(&f, 0x20, 4), 0);
	/* 64-bit register as two halves */
	CHECK_EQ(mw(&f, 0x80, 4, 0x12345640), 0);
	CHECK_EQ(mw(&f, 0x84, 4, 0xabc), 0);
	CHECK_U64(mr(&f, 0x80, 8), 0xabc12345640ull);
	CHECK_U64(mr(&f, 0x84, 4), 0xabc);
	/* RES0 bits are dropped */
	mw(&f, 0x80, 8, ~0ull);
	CHECK_U64(mr(&f, 0x80, 8), (1ull << 62) | 0xfffffffffffc0ull);
	/* read-only registers ignore writes */
	mw(&f, 0x0, 4, 0);
	CHECK(mr(&f, 0x0, 4) != 0);
	mw(&f, 0x60, 4, 0xff);
	CHECK_EQ(mr(&f, 0x60, 4), 0);
	/* unknown offsets read zero; page 1 aliases */
	CHECK_EQ(mr(&f, 0x1000, 4), 0);
	mw(&f, 0xa0, 8, 0x200000 | 4);
	mw(&f, 0x100ac, 4, 3);
	CHECK_EQ(mr(&f, 0xac, 4), 3);
	CHECK_EQ(mr(&f, 0x100ac, 4), 3);
	CHECK_EQ(mr(&f, 0xff0, 4), 0x0d);
	fx_fini(&f);
}

TEST(ack_registers_and_gbpa)
{
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	mw(&f, 0x20, 4, 0xffffffff);
	CHECK_EQ(mr(&f, 0x20, 4), 0x1f);
	CHECK_EQ(mr(&f, 0x24, 4), 0x1f);
	mw(&f, 0x50, 4, 0xff);
	CHECK_EQ(mr(&f, 0x54, 4), 7);
	/* frozen while enabled */
	mw(&f, 0x88, 4, 5);
	CHECK_EQ(mr(&f, 0x88, 4), 0);
	mw(&f, 0x20, 4, 0);
	mw(&f, 0x88, 4, 5);
	CHECK_EQ(mr(&f, 0x88, 4), 5);
	/* GBPA changes only with UPDATE, reads back without it */
	uint32_t g = (uint32_t)mr(&f, 0x44, 4);

	mw(&f, 0x44, 4, 1u << 20);
	CHECK_EQ(mr(&f, 0x44, 4), g);
	mw(&f, 0x44, 4, (1u << 31) | (1u << 20));
	CHECK_EQ(mr(&f, 0x44, 4), 1u << 20);
	fx_fini(&f);
}

TEST(gbpa_routes_when_disabled)
{
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	CHECK_EQ(dma(&f, 0, 0x1000), 0);          /* bypass */
	mw(&f, 0x44, 4, (1u << 31) | (1u << 20)); /* abort */
	CHECK_EQ(dma(&f, 0, 0x1000), -EFAULT);
	mw(&f, 0x44, 4, (1u << 31));
	CHECK_EQ(dma(&f, 0, 0x1000), 0);
	fx_fini(&f);
}

TEST(linux_reset_sequence)
{
	struct viommu_smmuv3_stats st;
	struct fx f;

	REQUIRE(fx_init(&f, NULL) == 0);
	CHECK_EQ(fx_reset(&f), 0);
	CHECK_EQ(viommu_smmuv3_stats(f.smmu, &st, sizeof(st)), 0);
	CHECK_EQ(st.commands, 4);
	CHECK_EQ(st.syncs, 2);
	CHECK_EQ(st.cmd_errors, 0);
	CHECK_EQ(mr(&f, 0x60, 4), 0);
	/* all STEs are zero (invalid): DMA faults with C_BAD_STE */
	uint64_t e[4];

	CHECK_EQ(dma(&f, 1, 0x1000), -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x04);
	CHECK_EQ(EVT_SID(e), 1);
	CHECK_EQ(f.irqs[VIOMMU_SMMUV3_IRQ_EVTQ], 1);
	/* a second reset works too (driver reload) */
	CHECK_EQ(fx_reset(&f), 0);
	fx_fini(&f);
}

TEST(bypass_and_abort_ste)
{
	uint64_t q[8] = { 0 }, e[4];
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	q[0] = 1 | (4u << 1);
	fx_ste(&f, 0, q);
	q[0] = 1;
	fx_ste(&f, 1, q);
	CHECK(fx_cfgi_ste(&f, 0));
	CHECK(fx_cfgi_ste(&f, 1));
	CHECK_EQ(dma(&f, 0, 0x2000), 0);
	CHECK_EQ(dma(&f, 1, 0x2000), -EFAULT);
	CHECK_EQ(fx_evt(&f, e), 0);  /* abort STE: silent */
	/* STE changed without CFGI: the cached config stays */
	q[0] = 1;
	fx_ste(&f, 0, q);
	CHECK_EQ(dma(&f, 0, 0x2000), 0);
	CHECK(fx_cfgi_ste(&f, 0));
	CHECK_EQ(dma(&f, 0, 0x2000), -EFAULT);
	fx_fini(&f);
}

/*
 * CFGI_STE_RANGE invalidates 2^(Range+1) StreamIDs, aligned down to that
 * size, and no others.  Every STE turns from bypass to abort behind the
 * cached configs; only the invalidated StreamIDs see the change.  Range 0
 * must reach two StreamIDs (a 2^Range reading reaches one), aligned down;
 * Range 1 from StreamID 3 must start at 0 and reach four.
 */
TEST(cfgi_ste_range_covers_2_pow_range_plus_1)
{
	uint64_t q[8] = { 0 };
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	q[0] = 1 | (4u << 1);                   /* V, bypass */
	for (uint32_t i = 0; i < FX_NEP; i++) {
		fx_ste(&f, i, q);
		CHECK(fx_cfgi_ste(&f, i));
		CHECK_EQ(dma(&f, (int)i, 0x2000), 0);
	}
	q[0] = 1;                               /* V, abort */
	for (uint32_t i = 0; i < FX_NEP; i++)
		fx_ste(&f, i, q);
	/* Range 0 from StreamID 0: StreamIDs 0 and 1 */
	fx_cmd(&f, 0x04 | CMD_SID(0), 0);
	CHECK(fx_sync(&f));
	CHECK_EQ(dma(&f, 0, 0x2000), -EFAULT);
	CHECK_EQ(dma(&f, 1, 0x2000), -EFAULT);
	CHECK_EQ(dma(&f, 2, 0x2000), 0);
	CHECK_EQ(dma(&f, 3, 0x2000), 0);
	/* Range 0 from StreamID 3 aligns down to 2: StreamIDs 2 and 3 */
	fx_cmd(&f, 0x04 | CMD_SID(3), 0);
	CHECK(fx_sync(&f));
	for (int i = 0; i < FX_NEP; i++)
		CHECK_EQ(dma(&f, i, 0x2000), -EFAULT);
	/* Range 1 from StreamID 3: StreamIDs 0..3 */
	q[0] = 1 | (4u << 1);
	for (uint32_t i = 0; i < FX_NEP; i++)
		fx_ste(&f, i, q);
	fx_cmd(&f, 0x04 | CMD_SID(3), 1);
	CHECK(fx_sync(&f));
	for (int i = 0; i < FX_NEP; i++)
		CHECK_EQ(dma(&f, i, 0x2000), 0);
	fx_fini(&f);
}

/* expect_evt() - one event of @type for @sid, then nothing. */
static void expect_evt(struct fx *f, unsigned int type, uint32_t sid,
		       uint64_t e[4])
{
	CHECK(fx_evt(f, e));
	CHECK_EQ(EVT_TYPE(e), type);
	CHECK_EQ(EVT_SID(e), sid);
}

/* try_bad_ste() - install @q for sid 2 and expect C_BAD_STE on DMA. */
static void try_bad_ste(struct fx *f, const uint64_t q[8])
{
	uint64_t e[4];

	fx_ste(f, 2, q);
	CHECK(fx_cfgi_ste(f, 2));
	CHECK_EQ(dma(f, 2, 0x3000), -EFAULT);
	expect_evt(f, 0x04, 2, e);
	CHECK_EQ(fx_evt(f, e), 0);
}

TEST(malformed_ste)
{
	struct lpae_cfg s2;
	uint64_t q[8];
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	REQUIRE(fx_lcfg(&s2, LPAE_STAGE2, 4096, 40, 48) == 0);
	memset(q, 0, sizeof(q));
	q[0] = 4u << 1;                          /* V = 0 */
	try_bad_ste(&f, q);
	for (unsigned int c = 1; c <= 3; c++) {  /* reserved Config */
		q[0] = 1 | (c << 1);
		try_bad_ste(&f, q);
	}
	fx_ste_s1(q, 0x10000, 21, 0, 0);         /* S1CDMax > SSIDSIZE */
	try_bad_ste(&f, q);
	fx_ste_s1(q, 0x10000, 4, 3, 0);          /* S1Fmt reserved */
	try_bad_ste(&f, q);
	fx_ste_s1(q, 0x10000, 4, 0, 3);          /* S1DSS reserved */
	try_bad_ste(&f, q);
	fx_ste_s1(q, 0x10000, 0, 0, 0);
	q[1] |= 2ull << 30;                      /* STRW EL2 */
	try_bad_ste(&f, q);
	memset(q, 0, sizeof(q));
	fx_ste_add_s2(q, &s2, 0x20000, 1);
	q[2] &= ~(1ull << 51);                   /* S2AA64 = 0 */
	try_bad_ste(&f, q);
	fx_ste_add_s2(q, &s2, 0x20000, 1);
	q[2] |= 1ull << 52;                      /* big-endian */
	try_bad_ste(&f, q);
	fx_ste_add_s2(q, &s2, 0x20000, 1);
	q[2] |= 1ull << 57;                      /* S2S stall */
	try_bad_ste(&f, q);
	fx_ste_add_s2(q, &s2, 0x20000, 1);
	q[2] |= 3ull << 46;                      /* S2TG reserved */
	try_bad_ste(&f, q);
	fx_ste_add_s2(q, &s2, 0x20000, 1);
	q[2] = (q[2] & ~(0x3full << 32)) | (10ull << 32); /* IAS 54 */
	try_bad_ste(&f, q);
	fx_ste_add_s2(q, &s2, 0x20000, 1);
	q[2] |= 3ull << 38;                      /* SL0 3 with 4K */
	try_bad_ste(&f, q);
	fx_ste_add_s2(q, &s2, 0x20000, 1);
	q[2] &= ~(3ull << 38);                   /* SL0 0: level 2, IAS 40 */
	try_bad_ste(&f, q);
	fx_fini(&f);
}

TEST(malformed_ste_unsupported_stage)
{
	struct viommu_smmuv3_config c = { .size = sizeof(c) };
	uint64_t q[8];
	struct fx f;

	c.features = VIOMMU_SMMUV3_F_STAGE2 | VIOMMU_SMMUV3_F_MSI;
	REQUIRE(setup(&f, &c) == 0);
	fx_ste_s1(q, 0x10000, 0, 0, 0);
	try_bad_ste(&f, q);
	fx_fini(&f);
}

TEST(bad_streamid_and_ste_fetch)
{
	uint64_t e[4];
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	/* stream table of 2 entries: sid 2, 3 are beyond it */
	mw(&f, 0x20, 4, (1u << 3) | (1u << 2));
	mw(&f, 0x88, 4, 1);
	mw(&f, 0x20, 4, (1u << 3) | (1u << 2) | 1);
	CHECK_EQ(dma(&f, 3, 0x1000), -EFAULT);
	expect_evt(&f, 0x02, 3, e);
	/* without CR2.RECINVSID nothing is recorded */
	mw(&f, 0x20, 4, (1u << 3) | (1u << 2));
	mw(&f, 0x2c, 4, 0);
	mw(&f, 0x20, 4, (1u << 3) | (1u << 2) | 1);
	CHECK_EQ(dma(&f, 3, 0x1000), -EFAULT);
	CHECK_EQ(fx_evt(&f, e), 0);
	/* stream table outside guest RAM: F_STE_FETCH with the address */
	mw(&f, 0x20, 4, (1u << 3) | (1u << 2));
	mw(&f, 0x80, 8, 0x40000000ull);
	mw(&f, 0x20, 4, (1u << 3) | (1u << 2) | 1);
	CHECK_EQ(dma(&f, 1, 0x1000), -EFAULT);
	expect_evt(&f, 0x03, 1, e);
	CHECK_U64(e[3], 0x40000040ull);
	fx_fini(&f);
}

TEST(two_level_stream_table)
{
	uint64_t q[8] = { 0 }, e[4];
	uint64_t l1, l2;
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	l1 = fx_alloc(&f, 8 * 4, 64);
	l2 = fx_alloc(&f, 64 * 256, 64 * 256);
	mw(&f, 0x20, 4, (1u << 3) | (1u << 2));
	mw(&f, 0x80, 8, l1);
	mw(&f, 0x88, 4, (1u << 16) | (8u << 6) | 10); /* 2-level, split 8 */
	gw64(&f, l1, l2 | 2);                  /* span 2: 2 STEs */
	q[0] = 1 | (4u << 1);
	for (int i = 0; i < 8; i++)
		gw64(&f, l2 + 64 + 8 * i, q[i]); /* sid 1 bypass */
	mw(&f, 0x20, 4, (1u << 3) | (1u << 2) | 1);
	CHECK_EQ(dma(&f, 1, 0x1000), 0);
	CHECK_EQ(dma(&f, 0, 0x1000), -EFAULT); /* zero STE */
	expect_evt(&f, 0x04, 0, e);
	CHECK_EQ(dma(&f, 2, 0x1000), -EFAULT); /* beyond span */
	expect_evt(&f, 0x02, 2, e);
	gw64(&f, l1, 0);                       /* span 0 */
	CHECK(fx_cfgi_ste(&f, 1));
	CHECK_EQ(dma(&f, 1, 0x1000), -EFAULT);
	expect_evt(&f, 0x02, 1, e);
	gw64(&f, l1, 0x7ff00000ull | 2);       /* L2 not RAM */
	CHECK(fx_cfgi_ste(&f, 1));
	CHECK_EQ(dma(&f, 1, 0x1000), -EFAULT);
	expect_evt(&f, 0x03, 1, e);
	fx_fini(&f);
}

TEST(command_error_stops_until_ack)
{
	struct viommu_smmuv3_stats st;
	uint64_t q[8] = { 0 };
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	q[0] = 1 | (4u << 1);
	fx_ste(&f, 0, q);
	uint32_t bad = f.cmd_prod;

	fx_cmd(&f, 0xff, 0);                  /* unknown opcode */
	fx_cmd(&f, 0x03 | CMD_SID(0), 0);     /* CFGI_STE: not yet run */
	CHECK_EQ(mr(&f, 0x9c, 4), bad | (1u << 24)); /* CERROR_ILL */
	CHECK_EQ(mr(&f, 0x60, 4) ^ mr(&f, 0x64, 4), 1);
	CHECK_EQ(f.irqs[VIOMMU_SMMUV3_IRQ_GERROR], 1);
	/* more doorbells do nothing while the error is outstanding */
	mw(&f, 0x98, 4, f.cmd_prod);
	CHECK_EQ(mr(&f, 0x9c, 4) & 0xffff, bad);
	/* the driver replaces the bad command with a CMD_SYNC and acks */
	gw64(&f, f.cmdq + (uint64_t)bad * 16, 0x46);
	mw(&f, 0x64, 4, (uint32_t)mr(&f, 0x60, 4));
	CHECK_EQ(mr(&f, 0x9c, 4) & 0xffff, f.cmd_prod);
	CHECK_EQ(dma(&f, 0, 0x1000), 0);
	viommu_smmuv3_stats(f.smmu, &st, sizeof(st));
	CHECK_EQ(st.cmd_errors, 1);
	fx_fini(&f);
}

TEST(command_illegal_variants)
{
	static const uint64_t bad[][2] = {
		{ 0x00, 0 },            /* opcode 0 */
		{ 0x20, 0 },            /* TLBI_EL2_ALL: no HYP */
		{ 0x40, 0 },            /* ATC_INV: no ATS */
		{ 0x46 | (3u << 12), 0 }, /* CMD_SYNC CS reserved */
		{ 0x07, 0 },            /* CFGI_VMS_PIDM */
		{ 0x45, 0 },            /* STALL_TERM */
	};
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t at = f.cmd_prod;

		fx_cmd(&f, bad[i][0], bad[i][1]);
		CHECK_EQ(mr(&f, 0x9c, 4), at | (1u << 24));
		gw64(&f, f.cmdq + (uint64_t)at * 16, 0x46);
		mw(&f, 0x64, 4, (uint32_t)mr(&f, 0x60, 4));
		CHECK_EQ(mr(&f, 0x9c, 4) & 0xffff, f.cmd_prod);
	}
	fx_fini(&f);
}

TEST(command_queue_abort)
{
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	mw(&f, 0x20, 4, 0);
	mw(&f, 0x90, 8, 0x7f000000ull | FX_Q_LOG2); /* not RAM */
	mw(&f, 0x98, 4, 0);
	mw(&f, 0x9c, 4, 0);
	mw(&f, 0x20, 4, 1u << 3);
	mw(&f, 0x98, 4, 1);
	CHECK_EQ(mr(&f, 0x9c, 4), 2u << 24);  /* CERROR_ABT */
	CHECK_EQ(mr(&f, 0x60, 4) & 1, 1);
	fx_fini(&f);
}

TEST(cmd_sync_signals)
{
	struct viommu_smmuv3_stats st;
	uint64_t msi = 0x1000;
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	gw64(&f, msi, 0xffffffffffffffffull);
	fx_cmd(&f, 0x46 | (1u << 12) | (0x1234abcdull << 32), msi);
	CHECK_U64(gr64(&f, msi), 0xffffffff1234abcdull);
	fx_cmd(&f, 0x46 | (1u << 12), 0);     /* IRQ without address */
	CHECK_EQ(f.irqs[VIOMMU_SMMUV3_IRQ_CMD_SYNC], 1);
	fx_cmd(&f, 0x46 | (2u << 12), 0);     /* SEV */
	CHECK_EQ(f.irqs[VIOMMU_SMMUV3_IRQ_SEV], 1);
	/* Linux MSI polling: MSIData 0 written over the CMD_SYNC itself */
	uint64_t at = f.cmdq + (uint64_t)f.cmd_prod * 16;

	fx_cmd(&f, 0x46 | (1u << 12), at);
	CHECK_EQ(gr64(&f, at) & 0xffffffff, 0);
	/* MSI address outside RAM: GERROR.MSI_CMDQ_ABT_ERR */
	fx_cmd(&f, 0x46 | (1u << 12), 0x7f000000ull);
	CHECK_EQ((mr(&f, 0x60, 4) ^ mr(&f, 0x64, 4)) & (1u << 4), 1u << 4);
	viommu_smmuv3_stats(f.smmu, &st, sizeof(st));
	CHECK_EQ(st.msis, 2);
	fx_fini(&f);
}

/*
 * Regression (review): several CMD_SYNCs with MSI completion covered by one
 * CMDQ_PROD write each get their MSI.  Linux publishes several CPUs' syncs
 * at once; the interrupt batch held four and dropped the rest silently.
 */
TEST(cmd_sync_many_msis_one_doorbell)
{
	uint32_t m = (1u << FX_Q_LOG2) - 1, w = (2u << FX_Q_LOG2) - 1;
	struct fx f;
	int i;

	REQUIRE(setup(&f, NULL) == 0);
	for (i = 0; i < 8; i++) {
		uint64_t a = f.cmdq + (uint64_t)(f.cmd_prod & m) * 16;
		uint64_t msi = 0x1000 + 8 * (uint64_t)i;

		gw64(&f, msi, 0xffffffffffffffffull);
		gw64(&f, a, 0x46 | (1u << 12) | ((0x100ull + i) << 32));
		gw64(&f, a + 8, msi);
		f.cmd_prod = (f.cmd_prod + 1) & w;
	}
	mw(&f, 0x98, 4, f.cmd_prod);  /* one doorbell for all eight */
	for (i = 0; i < 8; i++)
		CHECK_U64(gr64(&f, 0x1000 + 8 * (uint64_t)i) & 0xffffffff,
			  0x100 + i);
	fx_fini(&f);
}

TEST(prefetch_pri_resume_accepted)
{
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	fx_cmd(&f, 0x01 | CMD_SID(1), 0);
	fx_cmd(&f, 0x02 | CMD_SID(1), 0x1000);
	fx_cmd(&f, 0x41 | CMD_SID(1), 0);
	fx_cmd(&f, 0x44 | CMD_SID(1), 0);
	CHECK(fx_sync(&f));
	CHECK_EQ(mr(&f, 0x60, 4), 0);
	fx_fini(&f);
}

TEST(event_queue_overflow)
{
	uint64_t e[4];
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	for (int i = 0; i < (1 << FX_Q_LOG2) + 3; i++)
		dma(&f, 1, 0x1000);
	uint32_t p = (uint32_t)mr(&f, 0x100a8, 4);

	CHECK(p & (1u << 31));                       /* OVFLG */
	CHECK_EQ(p & 0x1ff, 1u << FX_Q_LOG2);        /* full */
	int n = 0;

	while (fx_evt(&f, e))
		n++;
	CHECK_EQ(n, 1 << FX_Q_LOG2);
	/* acknowledged (cons copies OVFLG): new events flow again */
	CHECK_EQ(dma(&f, 1, 0x1000), -EFAULT);
	CHECK(fx_evt(&f, e));
	CHECK_EQ(mr(&f, 0x100a8, 4) >> 31, mr(&f, 0x100ac, 4) >> 31);
	fx_fini(&f);
}

TEST(event_queue_abort_and_disable)
{
	struct viommu_smmuv3_stats st;
	uint64_t e[4];
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	mw(&f, 0x20, 4, (1u << 3) | 1);     /* EVTQEN off: dropped */
	dma(&f, 1, 0x1000);
	CHECK_EQ(fx_evt(&f, e), 0);
	mw(&f, 0xa0, 8, 0x7f000000ull | FX_Q_LOG2);
	mw(&f, 0x20, 4, (1u << 3) | (1u << 2) | 1);
	dma(&f, 1, 0x1000);
	CHECK_EQ((mr(&f, 0x60, 4) ^ mr(&f, 0x64, 4)) & 4, 4);
	CHECK_EQ(f.irqs[VIOMMU_SMMUV3_IRQ_GERROR], 1);
	viommu_smmuv3_stats(f.smmu, &st, sizeof(st));
	CHECK_EQ(st.events_lost, 2);
	fx_fini(&f);
}

TEST(event_msi)
{
	uint64_t msi = 0x2000;
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	mw(&f, 0xb0, 8, msi);
	mw(&f, 0xb8, 4, 0x55aa);
	dma(&f, 1, 0x1000);
	CHECK_EQ(gr64(&f, msi) & 0xffffffff, 0x55aa);
	CHECK_EQ(f.irqs[VIOMMU_SMMUV3_IRQ_EVTQ], 0);
	/*
	 * Regression: an MSI address outside RAM must set
	 * GERROR.MSI_EVTQ_ABT_ERR (bit 5); the EVTQ path passed no bit.
	 */
	mw(&f, 0xb0, 8, 0x7f000000ull);
	dma(&f, 1, 0x1000);
	CHECK_EQ((mr(&f, 0x60, 4) ^ mr(&f, 0x64, 4)) & (1u << 5), 1u << 5);
	mw(&f, 0xb0, 8, msi);
	/* wired when IRQ_CTRL.EVTQ_IRQEN is clear: nothing */
	mw(&f, 0x50, 4, 1);
	gw64(&f, msi, 0);
	dma(&f, 1, 0x1000);
	CHECK_EQ(gr64(&f, msi), 0);
	fx_fini(&f);
}

TEST(reset_api_and_endpoints)
{
	struct viommu_endpoint *ep;
	struct fx f;

	REQUIRE(setup(&f, NULL) == 0);
	CHECK_EQ(viommu_smmuv3_add_endpoint(f.smmu, f.ep[0]), -EEXIST);
	CHECK_EQ(viommu_endpoint_create(f.ctx, 1u << 16, &ep), 0);
	CHECK_EQ(viommu_smmuv3_add_endpoint(f.smmu, ep), -EINVAL);
	CHECK_EQ(viommu_smmuv3_remove_endpoint(f.smmu, ep), -ENOENT);
	CHECK_EQ(viommu_smmuv3_reset(f.smmu), 0);
	CHECK_EQ(mr(&f, 0x20, 4), 0);
	CHECK_EQ(dma(&f, 1, 0x1000), 0);   /* GBPA bypass after reset */
	CHECK_EQ(viommu_smmuv3_remove_endpoint(f.smmu, f.ep[1]), 0);
	fx_fini(&f);
}

TEST_MAIN()

/* ---- log flood: one rate-limited line per guest error ----------------- */

struct lines {
	unsigned long n;
	char last[512];
};

static void count_line(void *opaque, enum viommu_log_level level,
		       const char *line)
{
	struct lines *l = opaque;

	(void)level;
	if (getenv("SMMU_SHOW_LOG"))
		printf("#   log: %s\n", line);
	l->n++;
	snprintf(l->last, sizeof(l->last), "%s", line);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t suppressed(struct fx *f)
{
	struct viommu_smmuv3_stats st = { 0 };

	CHECK_EQ(viommu_smmuv3_stats(f->smmu, &st, sizeof(st)), 0);
	return st.log_suppressed;
}

TEST(flood_bad_ste_bounded_log)
{
	/*
	 * 50,000 DMAs through a malformed STE: each one fails with an
	 * event or a lost event (counted), the log gets at most a burst of
	 * lines per window, the rest are counted as suppressed, and the
	 * first line of the next window says how many.
	 */
	struct viommu_smmuv3_config c = { .size = sizeof(c) };
	struct viommu_smmuv3_stats st;
	struct lines l = { 0 };
	uint64_t q[8] = { 0 }, t0, ns, sup;
	unsigned long n0;
	char want[64];
	struct fx f;
	bool ok = true;

	c.log = (struct viommu_log){ count_line, &l, VIOMMU_LOG_WARN };
	REQUIRE(setup(&f, &c) == 0);
	q[0] = 1 | (2u << 1);                    /* V, reserved Config */
	fx_ste(&f, 2, q);
	CHECK(fx_cfgi_ste(&f, 2));
	rl_expire(&f.smmu->rl); /* set-up logged too: a fresh window */
	n0 = l.n;
	t0 = mono_ns();
	for (int i = 0; i < 50000; i++)
		ok &= dma(&f, 2, 0x3000) == -EFAULT;
	ns = mono_ns() - t0;
	CHECK(ok);
	REQUIRE(viommu_smmuv3_stats(f.smmu, &st, sizeof(st)) == 0);
	CHECK_U64(st.faults, 50000);
	CHECK(st.events + st.events_lost >= 50000);
	CHECK(l.n - n0 >= RL_BURST);
	CHECK(l.n - n0 <= RL_BURST * (ns / RL_INTERVAL_NS + 2));
	CHECK_U64(st.log_suppressed + (l.n - n0), 50000);
	printf("#   50000 bad-STE DMAs in %.2f s: %lu lines, %llu "
	       "suppressed\n", ns / 1e9, l.n - n0,
	       (unsigned long long)st.log_suppressed);
	/* the next window reports the suppressed count */
	sup = st.log_suppressed;
	rl_expire(&f.smmu->rl);
	n0 = l.n;
	CHECK_EQ(dma(&f, 2, 0x3000), -EFAULT);
	CHECK_EQ(l.n, n0 + 1);
	snprintf(want, sizeof(want), "(%llu similar messages suppressed)",
		 (unsigned long long)sup);
	CHECK(strstr(l.last, want) != NULL);
	CHECK(strstr(l.last, "bad STE") != NULL);
	CHECK_U64(suppressed(&f), sup);
	fx_fini(&f);
}
