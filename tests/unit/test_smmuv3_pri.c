/*
 * test_smmuv3_pri.c - the SMMUv3 PRI queue and stall model: ID register
 * advertisement, the PRIQ enable handshake, Page Requests as PRI queue
 * entries (fields, Stop Markers, interrupts and MSIs), argument errors,
 * queue overflow with its acknowledgement and the automatic response,
 * CMD_PRI_RESP recorded or refused (CERROR_ILL), the bounded group table;
 * stalls at stage 1 (CD.S) and stage 2 (STE.S2S) recorded with Stall and
 * STAG, CMD_RESUME with retry/abort/terminate, CMD_STALL_TERM, a RESUME
 * for an unknown STAG, the illegal stall configurations, and stalls that
 * cannot be held (event queue off, SMMUEN cleared).  The tests in
 * test_smmuv3*.c cover the model with PRI and stall disabled.
 */
#include "harness.h"
#include "unit/test_smmuv3_fixture.h"

#include <errno.h>

#define EVT_TYPE(e) ((e)[0] & 0xff)
#define EVT_SID(e) ((uint32_t)((e)[0] >> 32))
#define EVT_STALL(e) (((e)[1] >> 31) & 1)
#define EVT_STAG(e) ((uint16_t)(e)[1])
#define EVT_S2(e) (((e)[1] >> 39) & 1)

#define DATA_PA 0x800000ull
#define CD_GPA 0x10000ull
#define IOVA 0x40000000ull

#define PRI_ALL (VIOMMU_SMMUV3_F_DEFAULT | VIOMMU_SMMUV3_F_PRI)
#define STALL_ALL (VIOMMU_SMMUV3_F_DEFAULT | VIOMMU_SMMUV3_F_STALL)

#define CR0 0x20
#define CR0ACK 0x24
#define IRQ_CTRL 0x50
#define IRQ_CTRLACK 0x54
#define GERROR 0x60
#define GERRORN 0x64
#define CMDQ_CONS 0x9c
#define PRIQ_BASE 0xc0
#define PRIQ_CFG0 0xd0
#define PRIQ_CFG1 0xd8
#define PRIQ_PROD 0x100c8
#define PRIQ_CONS 0x100cc

/* struct pq - the guest's PRI queue. */
struct pq {
	uint64_t base;
	unsigned int log2;
	uint32_t cons;
};

/* setup() - fixture, reset, @features (0: default). */
static int setup(struct fx *f, uint32_t features)
{
	struct viommu_smmuv3_config c = { .size = sizeof(c) };

	c.features = features;
	return fx_init(f, &c) || fx_reset(f);
}

/*
 * pq_enable() - the Linux order: PRIQ_BASE, PROD/CONS in page 1, PRIQEN
 * with CR0ACK, then the PRIQ interrupt enable with IRQ_CTRLACK.
 */
static int pq_enable(struct fx *f, struct pq *q, unsigned int log2)
{
	uint32_t cr0 = (uint32_t)mr(f, CR0, 4);
	uint32_t irq = (uint32_t)mr(f, IRQ_CTRL, 4);

	q->log2 = log2;
	q->cons = 0;
	q->base = fx_alloc(f, 16ull << log2, 64ull << log2);
	if (!q->base)
		return -1;
	mw(f, PRIQ_BASE, 8, q->base | (1ull << 62) | log2);
	mw(f, PRIQ_PROD, 4, 0);
	mw(f, PRIQ_CONS, 4, 0);
	mw(f, CR0, 4, cr0 | 2);
	if (mr(f, CR0ACK, 4) != (cr0 | 2))
		return -2;
	mw(f, IRQ_CTRL, 4, irq | 2);
	if (mr(f, IRQ_CTRLACK, 4) != (irq | 2))
		return -3;
	return 0;
}

/* pq_pop() - one PRI queue entry into @e[2]; 0 when empty. */
static int pq_pop(struct fx *f, struct pq *q, uint64_t e[2])
{
	uint32_t m = (1u << q->log2) - 1, w = (2u << q->log2) - 1;
	uint32_t prod = (uint32_t)mr(f, PRIQ_PROD, 4);

	if ((prod & w) == (q->cons & w))
		return 0;
	e[0] = gr64(f, q->base + (uint64_t)(q->cons & m) * 16);
	e[1] = gr64(f, q->base + (uint64_t)(q->cons & m) * 16 + 8);
	q->cons = ((q->cons + 1) & w) | (q->cons & (1u << 31));
	mw(f, PRIQ_CONS, 4, q->cons);
	return 1;
}

/* bad_cmd() - issue @d0/@d1, expect CERROR_ILL, then skip it and ack. */
static void bad_cmd(struct fx *f, uint64_t d0, uint64_t d1)
{
	uint32_t at = f->cmd_prod;

	fx_cmd(f, d0, d1);
	CHECK_EQ(mr(f, CMDQ_CONS, 4), at | (1u << 24));
	gw64(f, f->cmdq + (uint64_t)(at & ((1u << FX_Q_LOG2) - 1)) * 16,
	     0x46);
	mw(f, GERRORN, 4, (uint32_t)mr(f, GERROR, 4));
	CHECK_EQ(mr(f, CMDQ_CONS, 4) & 0xffff, f->cmd_prod);
}

static void pri_resp(struct fx *f, uint32_t sid, bool ssv, uint32_t ssid,
		     unsigned int grp, unsigned int resp)
{
	fx_cmd(f, 0x41 | ((uint64_t)ssv << 11) | ((uint64_t)ssid << 12) |
	       CMD_SID(sid), grp | ((uint64_t)resp << 12));
}

static void resume(struct fx *f, uint32_t sid, uint16_t stag,
		   unsigned int action)
{
	fx_cmd(f, 0x44 | ((uint64_t)action << 12) | CMD_SID(sid), stag);
}

/* ---- ID registers and configuration ----------------------------------- */

TEST(idr0_advertises_pri_and_stall)
{
	struct viommu_smmuv3_config c = { .size = sizeof(c) };
	struct viommu_smmuv3 *s;
	struct fx f;

	REQUIRE(setup(&f, 0) == 0);
	CHECK_EQ(mr(&f, 0x00, 4) & (1u << 16), 0);          /* PRI */
	CHECK_EQ((mr(&f, 0x00, 4) >> 24) & 3, 1);           /* no stall */
	fx_fini(&f);
	REQUIRE(setup(&f, VIOMMU_SMMUV3_F_ALL) == 0);
	CHECK_EQ(mr(&f, 0x00, 4) & (1u << 16), 1u << 16);
	CHECK_EQ((mr(&f, 0x00, 4) >> 24) & 3, 0);           /* stall */
	CHECK_EQ((mr(&f, 0x04, 4) >> 11) & 0x1f, 8);        /* PRIQS */
	/* an unknown feature bit is refused */
	c.ctx = f.ctx;
	c.mem = f.mem;
	c.features = VIOMMU_SMMUV3_F_ALL + 1;
	CHECK_EQ(viommu_smmuv3_create(&c, &s), -EINVAL);
	fx_fini(&f);
}

/* ---- PRI queue --------------------------------------------------------- */

TEST(priq_enable_handshake)
{
	struct pq q;
	struct fx f;

	REQUIRE(setup(&f, PRI_ALL) == 0);
	REQUIRE(pq_enable(&f, &q, 4) == 0);
	CHECK_U64(mr(&f, PRIQ_BASE, 8), q.base | (1ull << 62) | 4);
	/* base and PROD are frozen while PRIQEN is set */
	mw(&f, PRIQ_BASE, 8, 0x1000);
	mw(&f, PRIQ_PROD, 4, 3);
	CHECK_U64(mr(&f, PRIQ_BASE, 8), q.base | (1ull << 62) | 4);
	CHECK_EQ(mr(&f, PRIQ_PROD, 4), 0);
	/* disable: requests are discarded, then base is writable again */
	mw(&f, CR0, 4, (uint32_t)mr(&f, CR0, 4) & ~2u);
	CHECK_EQ(mr(&f, CR0ACK, 4) & 2, 0);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID, 0,
					    VIOMMU_READ, false, 0), -EAGAIN);
	mw(&f, PRIQ_BASE, 8, 0x1000);
	CHECK_U64(mr(&f, PRIQ_BASE, 8), 0x1000);
	fx_fini(&f);
}

TEST(page_request_entry_fields)
{
	struct viommu_smmuv3_stats st;
	enum viommu_smmuv3_pri_resp r;
	uint64_t e[2];
	struct pq q;
	struct fx f;

	REQUIRE(setup(&f, PRI_ALL) == 0);
	REQUIRE(pq_enable(&f, &q, 4) == 0);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 2, 0x1234,
					    0xdead5678ull,
					    VIOMMU_READ | VIOMMU_WRITE |
					    VIOMMU_EXEC |
					    VIOMMU_SMMUV3_PRI_PRIV,
					    true, 0x1a5), 0);
	CHECK_EQ(f.irqs[VIOMMU_SMMUV3_IRQ_PRIQ], 1);
	CHECK_EQ(mr(&f, PRIQ_PROD, 4), 1);
	REQUIRE(pq_pop(&f, &q, e));
	CHECK_EQ((uint32_t)e[0], 2);                        /* StreamID */
	CHECK_EQ((e[0] >> 32) & 0xfffff, 0x1234);           /* SubstreamID */
	CHECK_EQ((e[0] >> 58) & 0x3f, 0x3f);          /* P X R W L SSV */
	CHECK_EQ(e[1] & 0x1ff, 0x1a5);                      /* PRGIndex */
	CHECK_U64(e[1] & ~0xfffull, 0xdead5000ull);         /* page */
	/* no PASID, read only, not last */
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 3, VIOMMU_NO_PASID,
					    0x7000, VIOMMU_READ, false, 9), 0);
	REQUIRE(pq_pop(&f, &q, e));
	CHECK_U64(e[0], 3ull | (1ull << 60));
	CHECK_U64(e[1], 0x7000ull | 9);
	CHECK_EQ(viommu_smmuv3_pri_response(f.smmu, 3, 9, &r), -EAGAIN);
	/* a Stop Marker is queued but opens no group */
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 3, 5, 0, 0, true, 7), 0);
	REQUIRE(pq_pop(&f, &q, e));
	CHECK_EQ((e[0] >> 58) & 0x3f, 0x30);                /* L, SSV */
	CHECK_EQ(viommu_smmuv3_pri_response(f.smmu, 3, 7, &r), -ENOENT);
	CHECK_EQ(pq_pop(&f, &q, e), 0);
	viommu_smmuv3_stats(f.smmu, &st, sizeof(st));
	CHECK_EQ(st.pri_requests, 3);
	CHECK_EQ(st.pri_lost, 0);
	fx_fini(&f);
}

TEST(page_request_msi)
{
	uint64_t msi = 0x2000;
	struct pq q;
	struct fx f;

	REQUIRE(setup(&f, PRI_ALL) == 0);
	REQUIRE(pq_enable(&f, &q, 4) == 0);
	mw(&f, PRIQ_CFG0, 8, msi);
	mw(&f, PRIQ_CFG1, 4, 0xabcd);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID, 0,
					    VIOMMU_READ, true, 1), 0);
	CHECK_EQ(gr64(&f, msi) & 0xffffffff, 0xabcd);
	CHECK_EQ(f.irqs[VIOMMU_SMMUV3_IRQ_PRIQ], 0);
	/* an MSI address outside RAM: GERROR.MSI_PRIQ_ABT_ERR */
	mw(&f, PRIQ_CFG0, 8, 0x7f000000ull);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID, 0,
					    VIOMMU_READ, true, 2), 0);
	CHECK_EQ((mr(&f, GERROR, 4) ^ mr(&f, GERRORN, 4)) & (1u << 6),
		 1u << 6);
	fx_fini(&f);
}

TEST(page_request_errors)
{
	struct viommu_smmuv3_config c = { .size = sizeof(c) };
	enum viommu_smmuv3_pri_resp r;
	struct fx f;

	REQUIRE(setup(&f, 0) == 0);     /* no PRI */
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID, 0,
					    VIOMMU_READ, true, 0),
		 -EOPNOTSUPP);
	fx_fini(&f);
	c.features = PRI_ALL;
	c.sid_bits = 8;
	c.ssid_bits = 4;
	REQUIRE(fx_init(&f, &c) == 0);
	REQUIRE(fx_reset(&f) == 0);
	CHECK_EQ(viommu_smmuv3_page_request(NULL, 1, VIOMMU_NO_PASID, 0,
					    VIOMMU_READ, true, 0), -EINVAL);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 0x100, VIOMMU_NO_PASID,
					    0, VIOMMU_READ, true, 0),
		 -EINVAL);                                  /* SID */
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, 0x10, 0,
					    VIOMMU_READ, true, 0),
		 -EINVAL);                                  /* SSID */
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID, 0,
					    VIOMMU_READ, true, 512),
		 -EINVAL);                                  /* PRGIndex */
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID, 0,
					    1u << 9, true, 0), -EINVAL);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID, 0,
					    VIOMMU_EXEC, true, 0), -EINVAL);
	CHECK_EQ(viommu_smmuv3_pri_response(f.smmu, 1, 0, NULL), -EINVAL);
	/* PRIQEN clear: discarded, the last request answered Success */
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, 3, 0, VIOMMU_READ,
					    true, 4), -EAGAIN);
	CHECK_EQ(viommu_smmuv3_pri_response(f.smmu, 1, 4, &r), 0);
	CHECK_EQ(r, VIOMMU_SMMUV3_PRI_SUCCESS);
	CHECK_EQ(viommu_smmuv3_pri_response(f.smmu, 1, 4, &r), -ENOENT);
	fx_fini(&f);
}

TEST(priq_overflow)
{
	struct viommu_smmuv3_stats st;
	enum viommu_smmuv3_pri_resp r;
	uint64_t e[2];
	struct pq q;
	struct fx f;

	REQUIRE(setup(&f, PRI_ALL) == 0);
	REQUIRE(pq_enable(&f, &q, 2) == 0);                 /* 4 entries */
	for (uint64_t i = 0; i < 4; i++)
		CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1,
						    VIOMMU_NO_PASID,
						    i << 12, VIOMMU_READ,
						    false, 1), 0);
	CHECK_EQ(mr(&f, PRIQ_PROD, 4), 4);                  /* full */
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID,
					    0x9000, VIOMMU_READ, true, 1),
		 -ENOSPC);
	CHECK_EQ(mr(&f, PRIQ_PROD, 4), 4u | (1u << 31));    /* OVFLG */
	CHECK_EQ(viommu_smmuv3_pri_response(f.smmu, 1, 1, &r), 0);
	CHECK_EQ(r, VIOMMU_SMMUV3_PRI_SUCCESS);             /* automatic */
	/* room again, but the overflow is not acknowledged yet */
	REQUIRE(pq_pop(&f, &q, e));
	CHECK_U64(e[1], 0x0ull | 1);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID,
					    0xa000, VIOMMU_READ, false, 2),
		 -ENOSPC);
	CHECK_EQ(mr(&f, PRIQ_PROD, 4), 4u | (1u << 31));    /* no toggle */
	/* acknowledge: CONS.OVACKFLG = PROD.OVFLG */
	q.cons |= 1u << 31;
	mw(&f, PRIQ_CONS, 4, q.cons);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID,
					    0xb000, VIOMMU_READ, false, 2), 0);
	CHECK_EQ(mr(&f, PRIQ_PROD, 4), 5u | (1u << 31));
	for (int i = 0; i < 3; i++)
		REQUIRE(pq_pop(&f, &q, e));
	REQUIRE(pq_pop(&f, &q, e));
	CHECK_U64(e[1], 0xb000ull | 2);
	CHECK_EQ(pq_pop(&f, &q, e), 0);
	viommu_smmuv3_stats(f.smmu, &st, sizeof(st));
	CHECK_EQ(st.pri_requests, 5);
	CHECK_EQ(st.pri_lost, 2);
	fx_fini(&f);
}

TEST(priq_not_ram)
{
	enum viommu_smmuv3_pri_resp r;
	struct fx f;

	REQUIRE(setup(&f, PRI_ALL) == 0);
	mw(&f, PRIQ_BASE, 8, 0x7f000000ull | 4);
	mw(&f, CR0, 4, (uint32_t)mr(&f, CR0, 4) | 2);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID, 0,
					    VIOMMU_READ, true, 3), -EIO);
	CHECK_EQ((mr(&f, GERROR, 4) ^ mr(&f, GERRORN, 4)) & (1u << 3),
		 1u << 3);                                  /* PRIQ_ABT */
	CHECK_EQ(viommu_smmuv3_pri_response(f.smmu, 1, 3, &r), 0);
	CHECK_EQ(r, VIOMMU_SMMUV3_PRI_SUCCESS);
	fx_fini(&f);
}

TEST(pri_resp_recorded)
{
	struct viommu_smmuv3_stats st;
	enum viommu_smmuv3_pri_resp r;
	struct pq q;
	struct fx f;

	REQUIRE(setup(&f, PRI_ALL) == 0);
	REQUIRE(pq_enable(&f, &q, 4) == 0);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 2, 7, 0x5000,
					    VIOMMU_WRITE, false, 0x30), 0);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 2, 7, 0x6000,
					    VIOMMU_WRITE, true, 0x30), 0);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 3, VIOMMU_NO_PASID,
					    0x5000, VIOMMU_READ, true, 0x30),
		 0);
	CHECK_EQ(viommu_smmuv3_pri_response(f.smmu, 2, 0x30, &r), -EAGAIN);
	pri_resp(&f, 2, true, 7, 0x30, VIOMMU_SMMUV3_PRI_FAIL);
	pri_resp(&f, 3, false, 0, 0x30, VIOMMU_SMMUV3_PRI_DENY);
	CHECK(fx_sync(&f));
	CHECK_EQ(mr(&f, GERROR, 4), 0);
	CHECK_EQ(viommu_smmuv3_pri_response(f.smmu, 2, 0x30, &r), 0);
	CHECK_EQ(r, VIOMMU_SMMUV3_PRI_FAIL);
	CHECK_EQ(viommu_smmuv3_pri_response(f.smmu, 3, 0x30, &r), 0);
	CHECK_EQ(r, VIOMMU_SMMUV3_PRI_DENY);
	CHECK_EQ(viommu_smmuv3_pri_response(f.smmu, 2, 0x30, &r), -ENOENT);
	/* success, then the index reused for a new group */
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 2, VIOMMU_NO_PASID, 0,
					    VIOMMU_READ, true, 0x31), 0);
	pri_resp(&f, 2, false, 0, 0x31, VIOMMU_SMMUV3_PRI_SUCCESS);
	CHECK(fx_sync(&f));
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 2, VIOMMU_NO_PASID, 0,
					    VIOMMU_READ, true, 0x31), 0);
	CHECK_EQ(viommu_smmuv3_pri_response(f.smmu, 2, 0x31, &r), -EAGAIN);
	/* a response for no outstanding group: accepted, counted */
	pri_resp(&f, 1, false, 0, 0x99, VIOMMU_SMMUV3_PRI_SUCCESS);
	CHECK(fx_sync(&f));
	viommu_smmuv3_stats(f.smmu, &st, sizeof(st));
	CHECK_EQ(st.pri_responses, 3);
	CHECK_EQ(st.resume_unmatched, 1);
	CHECK_EQ(mr(&f, GERROR, 4), 0);
	fx_fini(&f);
}

TEST(pri_resp_illegal)
{
	struct viommu_smmuv3_config c = { .size = sizeof(c) };
	struct viommu_smmuv3_stats st;
	struct fx f;

	c.features = PRI_ALL;
	c.sid_bits = 8;
	c.ssid_bits = 4;
	REQUIRE(fx_init(&f, &c) == 0);
	REQUIRE(fx_reset(&f) == 0);
	bad_cmd(&f, 0x41 | CMD_SID(1), 3ull << 12);          /* Resp 3 */
	bad_cmd(&f, 0x41 | CMD_SID(0x100), 0);               /* SID */
	bad_cmd(&f, 0x41 | (1ull << 11) | (0x10ull << 12) | CMD_SID(1), 0);
	pri_resp(&f, 1, true, 0xf, 0, VIOMMU_SMMUV3_PRI_DENY); /* legal */
	CHECK(fx_sync(&f));
	viommu_smmuv3_stats(f.smmu, &st, sizeof(st));
	CHECK_EQ(st.cmd_errors, 3);
	fx_fini(&f);
	/* no SubstreamIDs: any SSV is illegal */
	c.ssid_bits = VIOMMU_SMMUV3_NO_SSID;
	REQUIRE(fx_init(&f, &c) == 0);
	REQUIRE(fx_reset(&f) == 0);
	bad_cmd(&f, 0x41 | (1ull << 11) | CMD_SID(1), 0);
	fx_fini(&f);
}

TEST(pri_groups_bounded)
{
	enum viommu_smmuv3_pri_resp r;
	struct pq q;
	struct fx f;

	REQUIRE(setup(&f, PRI_ALL) == 0);
	REQUIRE(pq_enable(&f, &q, 8) == 0);
	for (unsigned int i = 0; i < VIOMMU_SMMUV3_PRI_GROUPS; i++)
		CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1,
						    VIOMMU_NO_PASID, 0,
						    VIOMMU_READ, true, i), 0);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID, 0,
					    VIOMMU_READ, true, 500), -EBUSY);
	CHECK_EQ(mr(&f, PRIQ_PROD, 4), VIOMMU_SMMUV3_PRI_GROUPS);
	/* a further request of an open group still goes in */
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID,
					    0x1000, VIOMMU_READ, true, 5), 0);
	pri_resp(&f, 1, false, 0, 5, VIOMMU_SMMUV3_PRI_SUCCESS);
	CHECK(fx_sync(&f));
	CHECK_EQ(viommu_smmuv3_pri_response(f.smmu, 1, 5, &r), 0);
	CHECK_EQ(viommu_smmuv3_page_request(f.smmu, 1, VIOMMU_NO_PASID, 0,
					    VIOMMU_READ, true, 500), 0);
	fx_fini(&f);
}

TEST(pri_disabled_commands_unchanged)
{
	struct pq q;
	struct fx f;

	/* without PRI the queue registers still exist, PRI_RESP is a no-op */
	REQUIRE(setup(&f, 0) == 0);
	REQUIRE(pq_enable(&f, &q, 4) == 0);
	pri_resp(&f, 1, false, 0, 0, 3);                    /* not checked */
	CHECK(fx_sync(&f));
	CHECK_EQ(mr(&f, GERROR, 4), 0);
	fx_fini(&f);
}

/* ---- stall -------------------------------------------------------------- */

/* struct st1 - a stage-1 stream with one CD at CD_GPA. */
struct st1 {
	struct lpae_cfg c;
	uint64_t root;
	uint64_t ste[8], cd[8];
};

/* stall_stream() - stage-1 STE for @sid with CD.S = @s (R = @rec). */
static int stall_stream(struct fx *f, uint32_t sid, struct st1 *t, bool s,
			bool rec)
{
	if (fx_lcfg(&t->c, LPAE_STAGE1, 4096, 48, 48) ||
	    lpae_alloc_root(&t->c, &f->ops, &t->root))
		return -1;
	fx_cd(t->cd, &t->c, t->root, 5);
	if (s)
		t->cd[0] |= 1ull << 44;
	if (!rec)
		t->cd[0] &= ~(1ull << 45);
	for (int i = 0; i < 8; i++)
		gw64(f, CD_GPA + 8 * i, t->cd[i]);
	fx_ste_s1(t->ste, CD_GPA, 0, 0, 0);
	fx_ste(f, sid, t->ste);
	return fx_cfgi_ste(f, sid) ? 0 : -1;
}

static int rd(struct fx *f, int i, uint64_t iova, uint32_t *v)
{
	return viommu_dma_read(f->ep[i], VIOMMU_NO_PASID, iova, v, 4);
}

static int state_of(struct fx *f, uint32_t sid, uint16_t stag)
{
	enum viommu_smmuv3_stall_state s;
	int ret = viommu_smmuv3_stall_status(f->smmu, sid, stag, &s);

	return ret ? ret : (int)s;
}

TEST(stall_fault_resume_retry)
{
	struct viommu_smmuv3_stats st;
	uint64_t e[4];
	uint16_t stag = 0xffff;
	struct st1 t;
	struct fx f;
	uint32_t v = 0;

	REQUIRE(setup(&f, STALL_ALL) == 0);
	REQUIRE(stall_stream(&f, 1, &t, true, true) == 0);
	CHECK_EQ(rd(&f, 1, IOVA + 0x10, &v), -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x10);
	CHECK_EQ(EVT_SID(e), 1);
	CHECK_EQ(EVT_STALL(e), 1);
	CHECK_U64(e[2], IOVA + 0x10);
	CHECK_EQ(viommu_smmuv3_stall_find(f.smmu, 1, IOVA + 0x800, &stag), 0);
	CHECK_EQ(stag, EVT_STAG(e));
	CHECK_EQ(viommu_smmuv3_stall_find(f.smmu, 2, IOVA, &stag), -ENOENT);
	CHECK_EQ(state_of(&f, 1, EVT_STAG(e)), VIOMMU_SMMUV3_STALL_PENDING);
	/* the guest fixes the fault and resumes with Retry */
	REQUIRE(lpae_map(&t.c, &f.ops, t.root, IOVA, DATA_PA, 4096,
			 VIOMMU_READ) == 0);
	memcpy(f.ram + DATA_PA + 0x10, "\x78\x56\x34\x12", 4);
	resume(&f, 1, EVT_STAG(e), 1);
	CHECK(fx_sync(&f));
	CHECK_EQ(state_of(&f, 1, EVT_STAG(e)), VIOMMU_SMMUV3_STALL_RETRY);
	CHECK_EQ(state_of(&f, 1, EVT_STAG(e)), -ENOENT);    /* reported once */
	CHECK_EQ(rd(&f, 1, IOVA + 0x10, &v), 0);
	CHECK_EQ(v, 0x12345678);
	viommu_smmuv3_stats(f.smmu, &st, sizeof(st));
	CHECK_EQ(st.stalls, 1);
	CHECK_EQ(st.resumes, 1);
	CHECK_EQ(mr(&f, GERROR, 4), 0);
	fx_fini(&f);
}

TEST(stall_resume_abort_terminate_and_stall_term)
{
	uint16_t tag[4];
	uint64_t e[4];
	struct st1 t;
	struct fx f;
	uint32_t v;

	REQUIRE(setup(&f, STALL_ALL) == 0);
	REQUIRE(stall_stream(&f, 1, &t, true, true) == 0);
	fx_ste(&f, 2, t.ste);                   /* same CD for StreamID 2 */
	REQUIRE(fx_cfgi_ste(&f, 2));
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(rd(&f, i < 3 ? 1 : 2, IOVA + 0x1000ull * i, &v),
			 -EFAULT);
		REQUIRE(fx_evt(&f, e));
		CHECK_EQ(EVT_STALL(e), 1);
		tag[i] = EVT_STAG(e);
	}
	CHECK(tag[0] != tag[1] && tag[1] != tag[2] && tag[0] != tag[2]);
	resume(&f, 1, tag[0], 2);                           /* Abort */
	resume(&f, 1, tag[1], 0);                           /* Terminate */
	CHECK(fx_sync(&f));
	CHECK_EQ(state_of(&f, 1, tag[0]), VIOMMU_SMMUV3_STALL_ABORT);
	CHECK_EQ(state_of(&f, 1, tag[1]), VIOMMU_SMMUV3_STALL_TERM);
	/* STALL_TERM ends StreamID 1's stall, not StreamID 2's */
	fx_cmd(&f, 0x45 | CMD_SID(1), 0);
	CHECK(fx_sync(&f));
	CHECK_EQ(state_of(&f, 1, tag[2]), VIOMMU_SMMUV3_STALL_TERM);
	CHECK_EQ(state_of(&f, 2, tag[3]), VIOMMU_SMMUV3_STALL_PENDING);
	/* a RESUME after STALL_TERM finds nothing: ignored */
	resume(&f, 1, tag[2], 1);
	CHECK(fx_sync(&f));
	CHECK_EQ(state_of(&f, 1, tag[2]), -ENOENT);
	CHECK_EQ(mr(&f, GERROR, 4), 0);
	fx_fini(&f);
}

TEST(stall_resume_unknown_stag_and_illegal_action)
{
	struct viommu_smmuv3_stats st;
	uint64_t e[4];
	struct st1 t;
	struct fx f;
	uint32_t v;

	REQUIRE(setup(&f, STALL_ALL) == 0);
	REQUIRE(stall_stream(&f, 1, &t, true, true) == 0);
	CHECK_EQ(rd(&f, 1, IOVA, &v), -EFAULT);
	REQUIRE(fx_evt(&f, e));
	/* unknown STAG, or the right STAG on another StreamID: ignored */
	resume(&f, 1, (uint16_t)(EVT_STAG(e) + 1), 1);
	resume(&f, 3, EVT_STAG(e), 1);
	CHECK(fx_sync(&f));
	CHECK_EQ(mr(&f, GERROR, 4), 0);
	CHECK_EQ(state_of(&f, 1, EVT_STAG(e)), VIOMMU_SMMUV3_STALL_PENDING);
	/* reserved Action: CERROR_ILL, the stall stays */
	bad_cmd(&f, 0x44 | (3ull << 12) | CMD_SID(1), EVT_STAG(e));
	CHECK_EQ(state_of(&f, 1, EVT_STAG(e)), VIOMMU_SMMUV3_STALL_PENDING);
	viommu_smmuv3_stats(f.smmu, &st, sizeof(st));
	CHECK_EQ(st.resume_unmatched, 2);
	CHECK_EQ(st.cmd_errors, 1);
	fx_fini(&f);
}

TEST(stall_recorded_without_cd_r)
{
	uint64_t e[4];
	struct st1 t;
	struct fx f;
	uint32_t v;

	REQUIRE(setup(&f, STALL_ALL) == 0);
	REQUIRE(stall_stream(&f, 1, &t, true, false) == 0); /* R = 0 */
	CHECK_EQ(rd(&f, 1, IOVA, &v), -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_STALL(e), 1);
	/* without S nothing is recorded (R = 0), nothing stalls */
	REQUIRE(stall_stream(&f, 2, &t, false, false) == 0);
	fx_cmd(&f, 0x06 | CMD_SID(2), 0);                   /* CFGI_CD_ALL */
	CHECK(fx_sync(&f));
	CHECK_EQ(rd(&f, 2, IOVA, &v), -EFAULT);
	CHECK_EQ(fx_evt(&f, e), 0);
	fx_fini(&f);
}

TEST(stall_illegal_configurations)
{
	uint64_t e[4];
	struct st1 t;
	struct fx f;
	uint32_t v;

	/* CD.S without stall support: C_BAD_CD */
	REQUIRE(setup(&f, 0) == 0);
	REQUIRE(stall_stream(&f, 1, &t, true, true) == 0);
	CHECK_EQ(rd(&f, 1, IOVA, &v), -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x0a);
	/* STE.S1STALLD without stall support: C_BAD_STE */
	t.ste[1] |= 1ull << 27;
	t.cd[0] &= ~(1ull << 44);
	for (int i = 0; i < 8; i++)
		gw64(&f, CD_GPA + 8 * i, t.cd[i]);
	fx_ste(&f, 1, t.ste);
	REQUIRE(fx_cfgi_ste(&f, 1));
	CHECK_EQ(rd(&f, 1, IOVA, &v), -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x04);
	fx_fini(&f);
	/* with stalls: S1STALLD legal, CD.S under it C_BAD_CD */
	REQUIRE(setup(&f, STALL_ALL) == 0);
	REQUIRE(stall_stream(&f, 1, &t, false, true) == 0);
	t.ste[1] |= 1ull << 27;
	fx_ste(&f, 1, t.ste);
	REQUIRE(fx_cfgi_ste(&f, 1));
	CHECK_EQ(rd(&f, 1, IOVA, &v), -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x10);
	CHECK_EQ(EVT_STALL(e), 0);
	gw64(&f, CD_GPA, t.cd[0] | (1ull << 44));
	REQUIRE(fx_cfgi_cd(&f, 1, 0));
	CHECK_EQ(rd(&f, 1, IOVA, &v), -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x0a);
	fx_fini(&f);
}

TEST(stall_stage2)
{
	struct lpae_cfg c;
	uint64_t q[8], root, e[4];
	struct fx f;
	uint32_t v;

	REQUIRE(setup(&f, STALL_ALL) == 0);
	REQUIRE(fx_lcfg(&c, LPAE_STAGE2, 4096, 40, 48) == 0);
	REQUIRE(lpae_alloc_root(&c, &f.ops, &root) == 0);
	memset(q, 0, sizeof(q));
	fx_ste_add_s2(q, &c, root, 3);
	q[2] |= 1ull << 57;                                 /* S2S */
	q[2] &= ~(1ull << 58);                              /* S2R off */
	fx_ste(&f, 2, q);
	REQUIRE(fx_cfgi_ste(&f, 2));
	CHECK_EQ(rd(&f, 2, 0x5000, &v), -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x10);
	CHECK_EQ(EVT_S2(e), 1);
	CHECK_EQ(EVT_STALL(e), 1);
	CHECK_EQ(state_of(&f, 2, EVT_STAG(e)), VIOMMU_SMMUV3_STALL_PENDING);
	fx_fini(&f);
	/* S2S without stall support stays C_BAD_STE */
	REQUIRE(setup(&f, 0) == 0);
	REQUIRE(lpae_alloc_root(&c, &f.ops, &root) == 0);
	fx_ste(&f, 2, q);
	REQUIRE(fx_cfgi_ste(&f, 2));
	CHECK_EQ(rd(&f, 2, 0x5000, &v), -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_TYPE(e), 0x04);
	fx_fini(&f);
}

TEST(stall_not_held_when_unreported)
{
	struct viommu_smmuv3_stats st;
	uint64_t e[4];
	uint16_t stag;
	struct st1 t;
	struct fx f;
	uint32_t v;

	REQUIRE(setup(&f, STALL_ALL) == 0);
	REQUIRE(stall_stream(&f, 1, &t, true, true) == 0);
	/* event queue off: the fault is terminated, not remembered */
	mw(&f, CR0, 4, (uint32_t)mr(&f, CR0, 4) & ~4u);
	CHECK_EQ(rd(&f, 1, IOVA, &v), -EFAULT);
	CHECK_EQ(viommu_smmuv3_stall_find(f.smmu, 1, IOVA, &stag), -ENOENT);
	mw(&f, CR0, 4, (uint32_t)mr(&f, CR0, 4) | 4u);
	/* a stall, then SMMUEN cleared: terminated */
	CHECK_EQ(rd(&f, 1, IOVA, &v), -EFAULT);
	REQUIRE(fx_evt(&f, e));
	mw(&f, CR0, 4, (uint32_t)mr(&f, CR0, 4) & ~1u);
	CHECK_EQ(state_of(&f, 1, EVT_STAG(e)), VIOMMU_SMMUV3_STALL_TERM);
	viommu_smmuv3_stats(f.smmu, &st, sizeof(st));
	CHECK_EQ(st.stalls, 1);
	fx_fini(&f);
}

TEST(stall_table_bounded)
{
	uint64_t e[4];
	struct st1 t;
	struct fx f;
	uint32_t v;

	REQUIRE(setup(&f, STALL_ALL) == 0);
	REQUIRE(stall_stream(&f, 1, &t, true, true) == 0);
	for (unsigned int i = 0; i < VIOMMU_SMMUV3_STALLS; i++) {
		CHECK_EQ(rd(&f, 1, IOVA + 0x1000ull * i, &v), -EFAULT);
		REQUIRE(fx_evt(&f, e));
		CHECK_EQ(EVT_STALL(e), 1);
	}
	/* full of pending stalls: recorded without Stall, terminated */
	CHECK_EQ(rd(&f, 1, IOVA - 0x1000, &v), -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_STALL(e), 0);
	/* a completed entry makes room; its STAG is not reused */
	uint16_t old;

	REQUIRE(viommu_smmuv3_stall_find(f.smmu, 1, IOVA, &old) == 0);
	resume(&f, 1, old, 2);
	CHECK(fx_sync(&f));
	CHECK_EQ(rd(&f, 1, IOVA - 0x2000, &v), -EFAULT);
	REQUIRE(fx_evt(&f, e));
	CHECK_EQ(EVT_STALL(e), 1);
	CHECK(EVT_STAG(e) != old);
	CHECK_EQ(state_of(&f, 1, old), -ENOENT);            /* dropped */
	fx_fini(&f);
}

TEST(stall_api_errors)
{
	enum viommu_smmuv3_stall_state s;
	uint16_t stag;
	struct fx f;

	REQUIRE(setup(&f, STALL_ALL) == 0);
	CHECK_EQ(viommu_smmuv3_stall_status(NULL, 1, 0, &s), -EINVAL);
	CHECK_EQ(viommu_smmuv3_stall_status(f.smmu, 1, 0, NULL), -EINVAL);
	CHECK_EQ(viommu_smmuv3_stall_find(f.smmu, 1, 0, NULL), -EINVAL);
	CHECK_EQ(viommu_smmuv3_stall_find(NULL, 1, 0, &stag), -EINVAL);
	CHECK_EQ(viommu_smmuv3_stall_status(f.smmu, 1, 0, &s), -ENOENT);
	fx_fini(&f);
}

TEST_MAIN()
