/*
 * test_smmuv3_refdrv.c - the reference SMMUv3 driver (src/refdrv/smmuv3.h)
 * against the SMMUv3 model: probe checks and the reset sequence, map/DMA/
 * unmap through endpoints for stage 1, stage 2 and nested, SubstreamIDs
 * with linear and 2-level CD tables, the F_TRANSLATION event after
 * unmap + TLBI, hitless STE/CD updates (what DMA sees at every step, and
 * while another thread translates), range invalidation checked against a
 * model of the IOTLB, command errors, event queue overflow, MSI-polled
 * CMD_SYNC and 2-level stream tables.
 *
 * Guest RAM is 32 MiB: test data below 16 MiB, the driver's chunk above.
 */
#define FX_RAM_SIZE (32ull << 20)
#include "harness.h"
#include "unit/test_smmuv3_fixture.h"
#include "refdrv/smmuv3.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>

#define CHUNK (16ull << 20)
#define DATA 0x200000ull
#define IOVA 0x40000000ull

#define EVT_F_TRANSLATION 0x10
#define EVT_C_BAD_STREAMID 0x02
#define EVT_F_STREAM_DISABLED 0x06
#define EVT_C_BAD_CD 0x0a
#define CLASS_IN 2

struct env {
	struct fx f;
	struct smmudrv *d;
	struct smmudrv_config c;
};

/* env_up() - RAM, model (@mc), driver (@dc) over [CHUNK, end of RAM). */
static int env_up(struct env *e, const struct viommu_smmuv3_config *mc,
		  const struct smmudrv_config *dc)
{
	int ret = fx_init(&e->f, mc);

	if (ret)
		return ret;
	memset(&e->c, 0, sizeof(e->c));
	if (dc)
		e->c = *dc;
	e->c.smmu = e->f.smmu;
	e->c.mem = e->f.mem;
	e->c.ram = e->f.ram + CHUNK;
	e->c.ram_gpa = CHUNK;
	e->c.ram_size = FX_RAM_SIZE - CHUNK;
	e->d = NULL;
	return smmudrv_create(&e->c, &e->d);
}

static void env_down(struct env *e)
{
	smmudrv_destroy(e->d);
	fx_fini(&e->f);
}

static void put32(struct env *e, uint64_t pa, uint32_t v)
{
	memcpy(e->f.ram + pa, &v, 4);
}

static uint32_t get32(struct env *e, uint64_t pa)
{
	uint32_t v;

	memcpy(&v, e->f.ram + pa, 4);
	return v;
}

/* rd() - a 4-byte DMA read by endpoint @ep; *@err gets the result. */
static uint32_t rd(struct env *e, int ep, uint32_t pasid, uint64_t iova,
		   int *err)
{
	uint32_t v = 0;

	*err = viommu_dma_read(e->f.ep[ep], pasid, iova, &v, 4);
	return v;
}

/* rdv() - the value read, or FAULT. */
#define FAULT 0xdeadfa17u
static uint32_t rdv(struct env *e, int ep, uint32_t pasid, uint64_t iova)
{
	int err;
	uint32_t v = rd(e, ep, pasid, iova, &err);

	return err ? FAULT : v;
}

static struct smmudrv_domain *dom_new(struct env *e, enum smmudrv_stage st,
				      unsigned int g, unsigned int ias,
				      struct smmudrv_domain *parent)
{
	struct smmudrv_domain_config c = {
		.stage = st, .granule = g, .ias = ias, .parent = parent,
	};
	struct smmudrv_domain *dom = NULL;

	return smmudrv_domain_alloc(e->d, &c, &dom) ? NULL : dom;
}

/* drain() - pop every event; returns how many. */
static int drain(struct env *e)
{
	struct smmudrv_event ev;
	int n = 0;

	while (smmudrv_event_pop(e->d, &ev) == 1)
		n++;
	return n;
}

static struct smmudrv_info info_of(struct env *e)
{
	struct smmudrv_info in;

	memset(&in, 0, sizeof(in));
	smmudrv_info(e->d, &in);
	return in;
}

static struct viommu_smmuv3_stats mstats(struct env *e)
{
	struct viommu_smmuv3_stats st;

	memset(&st, 0, sizeof(st));
	viommu_smmuv3_stats(e->f.smmu, &st, sizeof(st));
	return st;
}

/* ---- probe and reset ----------------------------------------------------- */

TEST(probe_and_reset)
{
	struct smmudrv_info in;
	struct smmudrv_event ev;
	struct env e;

	REQUIRE(env_up(&e, NULL, NULL) == 0);
	in = info_of(&e);
	CHECK(in.stage1 && in.stage2 && in.ril && in.msi && in.cd2l);
	CHECK_EQ(in.oas, 48);
	CHECK_EQ(in.sid_bits, 16);
	CHECK_EQ(in.ssid_bits, 20);
	CHECK_U64(in.pgsize_bitmap, (1ull << 12) | (1ull << 21) |
		  (1ull << 30) | (1ull << 14) | (1ull << 25) | (1ull << 16) |
		  (1ull << 29));
	CHECK_EQ(in.cmdq_log2, 8);
	CHECK_EQ(in.strtab_log2, 8);
	CHECK(!in.strtab_2lvl);
	CHECK_EQ(mr(&e.f, 0x24, 4), 0xd);  /* CR0ACK: SMMUEN EVTQEN CMDQEN */
	CHECK_EQ(mr(&e.f, 0x54, 4), 5);    /* IRQ_CTRLACK: GERROR EVTQ */
	CHECK_EQ(mr(&e.f, 0x2c, 4), 6);    /* CR2: PTM RECINVSID */
	CHECK_EQ(mr(&e.f, 0x88, 4), 8);    /* linear, 2^8 */
	CHECK_EQ(mr(&e.f, 0x80, 8) & 0x3fff, 0); /* 16 KiB table, aligned */
	CHECK((mr(&e.f, 0x80, 8) & ~(1ull << 62)) >> 24 == 1); /* chunk */
	CHECK_EQ(in.syncs, 2);             /* CFGI_ALL, TLBI_NSNH_ALL */
	CHECK_EQ(mstats(&e).syncs, 2);
	CHECK_EQ(mstats(&e).commands, 4);
	/* Every stream aborts, silently. */
	CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, 0x1000), FAULT);
	CHECK_EQ(smmudrv_event_pop(e.d, &ev), 0);
	env_down(&e);
}

/* struct hook - MMIO in front of the model that edits ID registers. */
struct hook {
	struct viommu_smmuv3 *smmu;
	uint32_t clr[6], set[6];
};

static int hook_read(void *o, uint64_t off, unsigned int size,
		     uint64_t *v)
{
	struct hook *h = o;
	int ret = viommu_smmuv3_mmio_read(h->smmu, off, size, v);

	if (!ret && off < 0x18 && size == 4)
		*v = (*v & ~(uint64_t)h->clr[off / 4]) | h->set[off / 4];
	return ret;
}

static int hook_write(void *o, uint64_t off, unsigned int size, uint64_t v)
{
	struct hook *h = o;

	return viommu_smmuv3_mmio_write(h->smmu, off, size, v);
}

/* try_idr() - create a driver seeing IDR@i with @clr cleared, @set set. */
static int try_idr(int i, uint32_t clr, uint32_t set,
		   struct smmudrv_info *out)
{
	struct hook h = { 0 };
	struct smmudrv_config c = { 0 };
	struct smmudrv *d = NULL;
	struct fx f;
	int ret;

	if (fx_init(&f, NULL))
		return -999;
	h.smmu = f.smmu;
	h.clr[i] = clr;
	h.set[i] = set;
	c.mmio.read = hook_read;
	c.mmio.write = hook_write;
	c.mmio.opaque = &h;
	c.mem = f.mem;
	c.ram = f.ram + CHUNK;
	c.ram_gpa = CHUNK;
	c.ram_size = FX_RAM_SIZE - CHUNK;
	ret = smmudrv_create(&c, &d);
	if (!ret && out)
		smmudrv_info(d, out);
	if (ret && mr(&f, 0x20, 4) != 0)
		ret = -998; /* a refused SMMU must stay disabled */
	smmudrv_destroy(d);
	fx_fini(&f);
	return ret;
}

TEST(probe_checks)
{
	struct smmudrv_info in;

	/* IDR0.TTENDIAN: big-endian and reserved refused, mixed fine. */
	CHECK_EQ(try_idr(0, 3u << 21, 3u << 21, NULL), -ENODEV);
	CHECK_EQ(try_idr(0, 3u << 21, 1u << 21, NULL), -ENODEV);
	CHECK_EQ(try_idr(0, 3u << 21, 0, NULL), 0);
	/* no stage; AArch32-only tables */
	CHECK_EQ(try_idr(0, 3u, 0, NULL), -ENODEV);
	CHECK_EQ(try_idr(0, 3u << 2, 1u << 2, NULL), -ENODEV);
	/* one stage is enough */
	CHECK_EQ(try_idr(0, 1u, 0, &in), 0);
	CHECK(in.stage1 && !in.stage2);
	/* IDR1 presets and REL; CMDQS */
	CHECK_EQ(try_idr(1, 0, 1u << 30, NULL), -ENODEV);
	CHECK_EQ(try_idr(1, 0, 1u << 29, NULL), -ENODEV);
	CHECK_EQ(try_idr(1, 0, 1u << 28, NULL), -ENODEV);
	CHECK_EQ(try_idr(1, 0x1fu << 21, 6u << 21, NULL), -ENODEV);
	CHECK_EQ(try_idr(1, 0x1fu << 21, 7u << 21, &in), 0);
	CHECK_EQ(in.cmdq_log2, 7);
	/* IDR5 granules and OAS */
	CHECK_EQ(try_idr(5, 7u << 4, 0, NULL), -ENODEV);
	CHECK_EQ(try_idr(5, 3u << 4, 0, &in), 0);
	CHECK_U64(in.pgsize_bitmap, (1ull << 16) | (1ull << 29));
	CHECK_EQ(try_idr(5, 7u, 2u, &in), 0);
	CHECK_EQ(in.oas, 40);
}

TEST(reset_while_enabled_uses_gbpa_abort)
{
	struct smmudrv_config c = { 0 };
	struct smmudrv *d2 = NULL;
	struct env e;

	REQUIRE(env_up(&e, NULL, NULL) == 0);
	CHECK_EQ(mr(&e.f, 0x44, 4) & (1u << 20), 0);
	/* a second driver (say, a kexec'd kernel) on half of the chunk */
	c = e.c;
	c.ram = e.f.ram + CHUNK + (8ull << 20);
	c.ram_gpa = CHUNK + (8ull << 20);
	c.ram_size = 8ull << 20;
	REQUIRE(smmudrv_create(&c, &d2) == 0);
	CHECK_EQ(mr(&e.f, 0x44, 4) & ((1u << 20) | (1u << 31)), 1u << 20);
	CHECK_EQ(mr(&e.f, 0x24, 4), 0xd);
	smmudrv_destroy(d2);
	CHECK_EQ(mr(&e.f, 0x24, 4), 0);
	env_down(&e);
}

/* ---- map, DMA, unmap ----------------------------------------------------- */

/* expect_fault_evt() - one F_TRANSLATION event with these fields. */
static void expect_xlate_evt(struct env *e, uint32_t sid, uint64_t addr,
			     bool read, bool s2, uint64_t ipa)
{
	struct smmudrv_event ev;

	REQUIRE(smmudrv_event_pop(e->d, &ev) == 1);
	CHECK_EQ(ev.type, EVT_F_TRANSLATION);
	CHECK_EQ(ev.sid, sid);
	CHECK(!ev.ssv);
	CHECK_U64(ev.addr, addr);
	CHECK_EQ(ev.rnw, read);
	CHECK_EQ(ev.s2, s2);
	CHECK_EQ(ev.cls, CLASS_IN);
	if (s2)
		CHECK_U64(ev.ipa, ipa);
	CHECK_EQ(smmudrv_event_pop(e->d, &ev), 0);
}

TEST(stage1_map_dma_unmap)
{
	struct smmudrv_domain *a;
	struct smmudrv_domain_info di;
	uint64_t n = 0, t0;
	uint32_t v = 0x600d;
	struct env e;

	REQUIRE(env_up(&e, NULL, NULL) == 0);
	REQUIRE((a = dom_new(&e, SMMUDRV_STAGE1, 0, 0, NULL)) != NULL);
	REQUIRE(smmudrv_map(a, IOVA, DATA, 0x2000,
			    VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(smmudrv_attach(e.d, 1, SMMUDRV_NO_SSID, a) == 0);
	put32(&e, DATA + 0x1010, 0x5151);
	CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, IOVA + 0x1010), 0x5151);
	CHECK_EQ(viommu_dma_write(e.f.ep[1], VIOMMU_NO_PASID, IOVA + 0x20,
				  &v, 4), 0);
	CHECK_EQ(get32(&e, DATA + 0x20), 0x600d);
	/* Other streams still abort. */
	CHECK_EQ(rdv(&e, 2, VIOMMU_NO_PASID, IOVA), FAULT);
	/* Unmapped behind the driver's back, the IOTLB still translates... */
	smmudrv_domain_info(a, &di);
	REQUIRE(lpae_unmap(&di.lp, smmudrv_domain_ops(a), di.root, IOVA,
			   0x2000, &n) == 0);
	CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, IOVA + 0x1010), 0x5151);
	/* ...until the TLBI: then the endpoint faults. */
	t0 = info_of(&e).tlbi_cmds;
	CHECK_EQ(smmudrv_inv_range(a, IOVA, 0x2000), 0);
	CHECK_EQ(info_of(&e).tlbi_cmds - t0, 1); /* RIL: one range command */
	CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, IOVA + 0x1010), FAULT);
	expect_xlate_evt(&e, 1, IOVA + 0x1010, true, false, 0);
	/* The same through smmudrv_unmap(), with a write. */
	REQUIRE(smmudrv_map(a, IOVA, DATA, 0x2000,
			    VIOMMU_READ | VIOMMU_WRITE) == 0);
	CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, IOVA + 0x1010), 0x5151);
	CHECK_EQ(smmudrv_unmap(a, IOVA, 0x2000, &n), 0);
	CHECK_U64(n, 0x2000);
	CHECK_EQ(viommu_dma_write(e.f.ep[1], VIOMMU_NO_PASID, IOVA + 0x1008,
				  &v, 4), -EFAULT);
	expect_xlate_evt(&e, 1, IOVA + 0x1008, false, false, 0);
	/* Busy while attached; freed after detach. */
	CHECK_EQ(smmudrv_domain_free(a), -EBUSY);
	CHECK_EQ(smmudrv_detach(e.d, 1, SMMUDRV_NO_SSID), 0);
	CHECK_EQ(smmudrv_detach(e.d, 1, SMMUDRV_NO_SSID), -ENOENT);
	CHECK_EQ(smmudrv_domain_free(a), 0);
	env_down(&e);
}

TEST(stage2_map_dma_unmap)
{
	struct smmudrv_domain *s;
	uint64_t ipa = 0x80000000ull;
	struct env e;

	REQUIRE(env_up(&e, NULL, NULL) == 0);
	REQUIRE((s = dom_new(&e, SMMUDRV_STAGE2, 0, 40, NULL)) != NULL);
	REQUIRE(smmudrv_map(s, ipa, DATA, 0x200000,
			    VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(smmudrv_attach(e.d, 2, SMMUDRV_NO_SSID, s) == 0);
	put32(&e, DATA + 0x12344, 0x5252);
	CHECK_EQ(rdv(&e, 2, VIOMMU_NO_PASID, ipa + 0x12344), 0x5252);
	/* Stage 2 cannot carry SubstreamIDs. */
	CHECK_EQ(smmudrv_attach(e.d, 2, 1, s), -EINVAL);
	CHECK_EQ(smmudrv_unmap(s, ipa, 0x200000, NULL), 0);
	CHECK_EQ(rdv(&e, 2, VIOMMU_NO_PASID, ipa + 0x12344), FAULT);
	expect_xlate_evt(&e, 2, ipa + 0x12344, true, true, ipa + 0x12000);
	env_down(&e);
}

TEST(nested_map_dma_unmap)
{
	struct smmudrv_domain *p, *n1;
	uint64_t ipa = 0x80000000ull, va = 0x7000000ull, t0;
	struct env e;

	REQUIRE(env_up(&e, NULL, NULL) == 0);
	REQUIRE((p = dom_new(&e, SMMUDRV_STAGE2, 0, 40, NULL)) != NULL);
	REQUIRE((n1 = dom_new(&e, SMMUDRV_NESTED, 0, 0, p)) != NULL);
	REQUIRE(smmudrv_map(p, ipa, DATA, 0x10000,
			    VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(smmudrv_map(n1, va, ipa + 0x3000, 0x1000,
			    VIOMMU_READ | VIOMMU_WRITE) == 0);
	REQUIRE(smmudrv_attach(e.d, 2, SMMUDRV_NO_SSID, n1) == 0);
	put32(&e, DATA + 0x3010, 0x5353);
	CHECK_EQ(rdv(&e, 2, VIOMMU_NO_PASID, va + 0x10), 0x5353);
	/* stage-1 unmap: NH_VA with the parent's VMID */
	CHECK_EQ(smmudrv_unmap(n1, va, 0x1000, NULL), 0);
	CHECK_EQ(rdv(&e, 2, VIOMMU_NO_PASID, va + 0x10), FAULT);
	expect_xlate_evt(&e, 2, va + 0x10, true, false, 0);
	/* stage-2 unmap: S2_IPA, then NH_ALL for the VMID */
	REQUIRE(smmudrv_map(n1, va, ipa + 0x3000, 0x1000, VIOMMU_READ) == 0);
	CHECK_EQ(rdv(&e, 2, VIOMMU_NO_PASID, va + 0x10), 0x5353);
	t0 = info_of(&e).tlbi_cmds;
	CHECK_EQ(smmudrv_unmap(p, ipa, 0x10000, NULL), 0);
	CHECK_EQ(info_of(&e).tlbi_cmds - t0, 2);
	CHECK_EQ(rdv(&e, 2, VIOMMU_NO_PASID, va + 0x10), FAULT);
	expect_xlate_evt(&e, 2, va + 0x10, true, true, ipa + 0x3000);
	/* The parent is busy while it has a child. */
	CHECK_EQ(smmudrv_domain_free(p), -EBUSY);
	CHECK_EQ(smmudrv_set_abort(e.d, 2), 0);
	CHECK_EQ(smmudrv_domain_free(n1), 0);
	CHECK_EQ(smmudrv_domain_free(p), 0);
	env_down(&e);
}

/* ---- SubstreamIDs -------------------------------------------------------- */

/* three_s1() - stage-1 domains mapping IOVA to three data pages. */
static int three_s1(struct env *e, struct smmudrv_domain *dom[3])
{
	for (int i = 0; i < 3; i++) {
		dom[i] = dom_new(e, SMMUDRV_STAGE1, 0, 0, NULL);
		if (!dom[i] || smmudrv_map(dom[i], IOVA, DATA + 0x1000 * i,
					   0x1000, VIOMMU_READ))
			return -1;
		put32(e, DATA + 0x1000 * i, 0xa0 + i);
	}
	return 0;
}

static void expect_evt(struct env *e, unsigned int type, bool ssv,
		       uint32_t ssid)
{
	struct smmudrv_event ev;

	REQUIRE(smmudrv_event_pop(e->d, &ev) == 1);
	CHECK_EQ(ev.type, type);
	CHECK_EQ(ev.ssv, ssv);
	if (ssv)
		CHECK_EQ(ev.ssid, ssid);
}

/* ssid_suite() - RID + two SubstreamIDs on sid 3, detach, S1DSS. */
static void ssid_suite(struct env *e, uint32_t s1, uint32_t s2)
{
	struct smmudrv_domain *dom[3];

	REQUIRE(three_s1(e, dom) == 0);
	REQUIRE(smmudrv_attach(e->d, 3, SMMUDRV_NO_SSID, dom[0]) == 0);
	REQUIRE(smmudrv_attach(e->d, 3, s1, dom[1]) == 0);
	REQUIRE(smmudrv_attach(e->d, 3, s2, dom[2]) == 0);
	CHECK_EQ(rdv(e, 3, VIOMMU_NO_PASID, IOVA), 0xa0);
	CHECK_EQ(rdv(e, 3, s1, IOVA), 0xa1);
	CHECK_EQ(rdv(e, 3, s2, IOVA), 0xa2);
	/* SSID 0 is the RID's; beyond S1CDMax is refused */
	CHECK_EQ(smmudrv_attach(e->d, 3, 0, dom[1]), -EINVAL);
	CHECK_EQ(smmudrv_attach(e->d, 3, 1u << info_of(e).cd_bits, dom[1]),
		 -EINVAL);
	/* detached SubstreamID: invalid CD */
	CHECK_EQ(smmudrv_detach(e->d, 3, s1), 0);
	CHECK_EQ(rdv(e, 3, s1, IOVA), FAULT);
	expect_evt(e, EVT_C_BAD_CD, true, s1);
	/* RID aborts (S1DSS terminate): the SubstreamID still works */
	CHECK_EQ(smmudrv_set_abort(e->d, 3), 0);
	CHECK_EQ(rdv(e, 3, VIOMMU_NO_PASID, IOVA), FAULT);
	expect_evt(e, EVT_F_STREAM_DISABLED, false, 0);
	CHECK_EQ(rdv(e, 3, s2, IOVA), 0xa2);
	/* RID bypasses (S1DSS bypass) */
	put32(e, 0x300000, 0xb1);
	CHECK_EQ(smmudrv_set_bypass(e->d, 3), 0);
	CHECK_EQ(rdv(e, 3, VIOMMU_NO_PASID, 0x300000), 0xb1);
	CHECK_EQ(rdv(e, 3, s2, IOVA), 0xa2);
	/* back to a domain, then the last SubstreamID goes */
	CHECK_EQ(smmudrv_attach(e->d, 3, SMMUDRV_NO_SSID, dom[1]), 0);
	CHECK_EQ(rdv(e, 3, VIOMMU_NO_PASID, IOVA), 0xa1);
	/* unmap + TLBI under a SubstreamID: the event carries it */
	REQUIRE(smmudrv_map(dom[2], IOVA + 0x1000, DATA, 0x1000,
			    VIOMMU_READ) == 0);
	CHECK_EQ(rdv(e, 3, s2, IOVA + 0x1000), 0xa0);
	CHECK_EQ(smmudrv_unmap(dom[2], IOVA + 0x1000, 0x1000, NULL), 0);
	CHECK_EQ(rdv(e, 3, s2, IOVA + 0x1004), FAULT);
	expect_evt(e, EVT_F_TRANSLATION, true, s2);
	CHECK_EQ(smmudrv_detach(e->d, 3, s2), 0);
	CHECK_EQ(smmudrv_detach(e->d, 3, s2), -ENOENT);
	CHECK_EQ(rdv(e, 3, VIOMMU_NO_PASID, IOVA), 0xa1);
	CHECK_EQ(drain(e), 0);
}

TEST(substreams_linear_cd_table)
{
	struct env e;

	REQUIRE(env_up(&e, NULL, NULL) == 0);
	CHECK(!info_of(&e).cd_2lvl);
	ssid_suite(&e, 1, 200);
	env_down(&e);
}

TEST(substreams_two_level_cd_table)
{
	struct smmudrv_config dc = { .cd_bits = 12 };
	struct env e;

	REQUIRE(env_up(&e, NULL, &dc) == 0);
	CHECK(info_of(&e).cd_2lvl);
	ssid_suite(&e, 5, 3000); /* two different 64 KiB leaves */
	env_down(&e);
}

TEST(substreams_nested_and_rules)
{
	struct smmudrv_domain *p, *p2, *n[3], *s1[3];
	uint64_t ipa = 0x80000000ull;
	struct env e;

	REQUIRE(env_up(&e, NULL, NULL) == 0);
	REQUIRE((p = dom_new(&e, SMMUDRV_STAGE2, 0, 40, NULL)) != NULL);
	REQUIRE((p2 = dom_new(&e, SMMUDRV_STAGE2, 0, 40, NULL)) != NULL);
	REQUIRE(smmudrv_map(p, ipa, DATA + 0x10000, 0x4000,
			    VIOMMU_READ) == 0);
	for (int i = 0; i < 3; i++) {
		REQUIRE((n[i] = dom_new(&e, SMMUDRV_NESTED, 0, 0, p)) != NULL);
		REQUIRE(smmudrv_map(n[i], IOVA, ipa + 0x1000 * i, 0x1000,
				    VIOMMU_READ) == 0);
		put32(&e, DATA + 0x10000 + 0x1000 * i, 0xc0 + i);
	}
	REQUIRE(three_s1(&e, s1) == 0);
	REQUIRE(smmudrv_attach(e.d, 0, SMMUDRV_NO_SSID, n[0]) == 0);
	REQUIRE(smmudrv_attach(e.d, 0, 4, n[1]) == 0);
	REQUIRE(smmudrv_attach(e.d, 0, 9, n[2]) == 0);
	CHECK_EQ(rdv(&e, 0, VIOMMU_NO_PASID, IOVA), 0xc0);
	CHECK_EQ(rdv(&e, 0, 4, IOVA), 0xc1);
	CHECK_EQ(rdv(&e, 0, 9, IOVA), 0xc2);
	/* mixing families or parents is refused */
	struct smmudrv_domain *other = dom_new(&e, SMMUDRV_NESTED, 0, 0, p2);

	REQUIRE(other != NULL);
	CHECK_EQ(smmudrv_attach(e.d, 0, 5, s1[0]), -EINVAL);
	CHECK_EQ(smmudrv_attach(e.d, 0, 5, other), -EINVAL);
	CHECK_EQ(smmudrv_attach(e.d, 0, SMMUDRV_NO_SSID, s1[0]), -EBUSY);
	CHECK_EQ(smmudrv_attach(e.d, 0, SMMUDRV_NO_SSID, p), -EBUSY);
	CHECK_EQ(smmudrv_attach(e.d, 0, SMMUDRV_NO_SSID, other), -EBUSY);
	CHECK_EQ(smmudrv_set_abort(e.d, 0), -EBUSY);
	/* a SubstreamID moves to another domain of the same parent */
	CHECK_EQ(smmudrv_attach(e.d, 0, 4, n[2]), 0);
	CHECK_EQ(rdv(&e, 0, 4, IOVA), 0xc2);
	CHECK_EQ(smmudrv_detach(e.d, 0, 4), 0);
	CHECK_EQ(smmudrv_detach(e.d, 0, 9), 0);
	/* now the RID may leave the family: nested -> stage 1 -> stage 2 */
	CHECK_EQ(smmudrv_attach(e.d, 0, SMMUDRV_NO_SSID, s1[1]), 0);
	CHECK_EQ(rdv(&e, 0, VIOMMU_NO_PASID, IOVA), 0xa1);
	CHECK_EQ(smmudrv_attach(e.d, 0, SMMUDRV_NO_SSID, p), 0);
	CHECK_EQ(rdv(&e, 0, VIOMMU_NO_PASID, ipa + 0x2000), 0xc2);
	CHECK_EQ(smmudrv_attach(e.d, 0, SMMUDRV_NO_SSID, other), 0);
	CHECK_EQ(rdv(&e, 0, VIOMMU_NO_PASID, IOVA), FAULT); /* p2 maps none */
	drain(&e);
	env_down(&e);
}

/* ---- hitless updates ----------------------------------------------------- */

/* struct watch - what a step hook expects DMA to see. */
struct watch {
	struct env *e;
	uint32_t old, new_;
	int steps, stores, bad, ste_hitless, ste_disruptive;
};

/* look() - what DMA sees now must be old, new or a fault. */
static void look(struct watch *w, const struct smmudrv_step *st,
		 const char *when)
{
	uint32_t v = rdv(w->e, 1, VIOMMU_NO_PASID, IOVA);

	if (v != w->old && v != w->new_ && v != FAULT) {
		printf("#   %s %u of %s update: read %#x (old %#x new %#x)\n",
		       when, st->step,
		       st->kind == SMMUDRV_ENTRY_STE ? "STE" : "CD", v,
		       w->old, w->new_);
		w->bad++;
	}
}

/*
 * on_store() - after each qword store the SMMU may read the entry: make
 * it (CFGI without waiting for the driver's) and look.
 */
static void on_store(void *o, const struct smmudrv_step *st)
{
	struct watch *w = o;
	uint64_t d0 = st->kind == SMMUDRV_ENTRY_STE ?
		      0x03 | ((uint64_t)st->sid << 32) :
		      0x05 | ((uint64_t)st->sid << 32) |
		      ((uint64_t)st->ssid << 12);

	w->stores++;
	CHECK_EQ(smmudrv_cmd(w->e->d, d0, 1, true), 0);
	look(w, st, "store after sync");
}

/* on_step() - at every synchronised step DMA sees old, new or a fault. */
static void on_step(void *o, const struct smmudrv_step *st)
{
	struct watch *w = o;

	w->steps++;
	look(w, st, "step");
	if (st->kind == SMMUDRV_ENTRY_STE && st->step == 1) {
		if (st->hitless)
			w->ste_hitless++;
		else
			w->ste_disruptive++;
	}
}

/* switch_to() - attach the RID of sid 1 and check the result. */
static void switch_to(struct watch *w, struct smmudrv_domain *dom,
		      int special, uint32_t want)
{
	struct env *e = w->e;

	w->new_ = want;
	if (special == 1)
		CHECK_EQ(smmudrv_set_bypass(e->d, 1), 0);
	else if (special == 2)
		CHECK_EQ(smmudrv_set_abort(e->d, 1), 0);
	else
		CHECK_EQ(smmudrv_attach(e->d, 1, SMMUDRV_NO_SSID, dom), 0);
	CHECK_EQ(rdv(e, 1, VIOMMU_NO_PASID, IOVA), want);
	w->old = want;
	drain(e);
}

/*
 * setup_four() - S1 A, B, C, S2 D, nested N (over D) and S2 E, all
 * mapping IOVA (E to its own page).
 */
static int setup_four(struct env *e, struct smmudrv_domain *dom[6])
{
	if (three_s1(e, dom))
		return -1;
	dom[3] = dom_new(e, SMMUDRV_STAGE2, 0, 40, NULL);
	if (!dom[3] || smmudrv_map(dom[3], IOVA, DATA + 0x3000, 0x1000,
				   VIOMMU_READ))
		return -1;
	dom[4] = dom_new(e, SMMUDRV_NESTED, 0, 0, dom[3]);
	if (!dom[4] || smmudrv_map(dom[4], IOVA, IOVA, 0x1000, VIOMMU_READ))
		return -1;
	put32(e, DATA + 0x3000, 0xc3);
	dom[5] = dom_new(e, SMMUDRV_STAGE2, 0, 40, NULL);
	if (!dom[5] || smmudrv_map(dom[5], IOVA, DATA + 0x4000, 0x1000,
				   VIOMMU_READ))
		return -1;
	put32(e, DATA + 0x4000, 0xc4);
	return 0;
}

TEST(hitless_steps_never_show_a_mixture)
{
	struct smmudrv_config dc = { 0 };
	struct smmudrv_domain *dom[6];
	struct watch w = { 0 };
	struct env e;

	dc.step = on_step;
	dc.store = on_store;
	dc.step_opaque = &w;
	w.e = &e;
	w.old = FAULT;
	REQUIRE(env_up(&e, NULL, &dc) == 0);
	REQUIRE(setup_four(&e, dom) == 0);
	switch_to(&w, dom[0], 0, 0xa0);          /* abort -> S1 A */
	switch_to(&w, dom[1], 0, 0xa1);          /* A -> B: CD 0 only */
	CHECK_EQ(w.ste_hitless + w.ste_disruptive, 1);
	w.ste_hitless = w.ste_disruptive = 0;
	switch_to(&w, NULL, 2, FAULT);           /* S1 -> abort */
	CHECK_EQ(w.ste_hitless, 1);
	switch_to(&w, dom[3], 0, 0xc3);          /* abort -> S2 */
	switch_to(&w, dom[0], 0, 0xa0);          /* S2 -> S1 */
	switch_to(&w, dom[4], 0, 0xc3);          /* S1 -> nested */
	switch_to(&w, dom[2], 0, 0xa2);          /* nested -> S1 */
	CHECK(w.ste_disruptive >= 1);            /* config + VMID changed */
	switch_to(&w, dom[3], 0, 0xc3);          /* S1 -> S2 */
	switch_to(&w, dom[4], 0, 0xc3);          /* S2 -> nested */
	switch_to(&w, dom[3], 0, 0xc3);          /* nested -> S2 */
	switch_to(&w, dom[5], 0, 0xc4);          /* S2 -> S2: VMID, TTB */
	switch_to(&w, dom[0], 0, 0xa0);
	switch_to(&w, dom[1], 0, 0xa1);          /* CD: ASID, TTB0 */
	CHECK_EQ(w.bad, 0);
	CHECK(w.steps >= 20);
	CHECK(w.stores >= w.steps);
	CHECK(info_of(&e).hitless >= 3);
	CHECK(info_of(&e).disruptive >= 2);
	env_down(&e);
}

/* struct racer - a DMA thread reading IOVA until told to stop. */
struct racer {
	struct env *e;
	int stop;
	uint64_t reads, faults, other;
	uint32_t seen_other;
};

static void *race(void *o)
{
	struct racer *r = o;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		uint32_t v = rdv(r->e, 1, VIOMMU_NO_PASID, IOVA);

		__atomic_fetch_add(&r->reads, 1, __ATOMIC_RELEASE);
		if (v == FAULT)
			r->faults++;
		else if (v != 0xa0 && v != 0xa1 && v != 0xa2 && v != 0xc3 &&
			 v != 0xc4) {
			r->other++;
			r->seen_other = v;
		}
	}
	return NULL;
}

TEST(concurrent_dma_sees_one_config_or_fault)
{
	struct smmudrv_domain *dom[6];
	struct racer r = { 0 };
	static const int seq[] = { 0, 1, 0, 3, 2, 4, 1, 3, 5, 2 };
	static const uint32_t val[] = { 0xa0, 0xa1, 0xa2, 0xc3, 0xc3, 0xc4 };
	pthread_t th;
	struct env e;

	REQUIRE(env_up(&e, NULL, NULL) == 0);
	REQUIRE(setup_four(&e, dom) == 0);
	REQUIRE(smmudrv_attach(e.d, 1, SMMUDRV_NO_SSID, dom[0]) == 0);
	r.e = &e;
	REQUIRE(pthread_create(&th, NULL, race, &r) == 0);
	while (!__atomic_load_n(&r.reads, __ATOMIC_ACQUIRE))
		sched_yield(); /* the racer is running */
	for (int i = 0; i < 300; i++) {
		int k = seq[i % 10];

		CHECK_EQ(smmudrv_attach(e.d, 1, SMMUDRV_NO_SSID, dom[k]), 0);
		CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, IOVA), val[k]);
		if (i % 32 == 0)
			drain(&e);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CHECK_EQ(r.other, 0);
	printf("# racer: %llu reads, %llu faults\n",
	       (unsigned long long)r.reads, (unsigned long long)r.faults);
	if (r.other)
		printf("#   racer saw %#x\n", r.seen_other);
	env_down(&e);
}

/* ---- range invalidation against a model ---------------------------------- */

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#define NP 64

/* struct rig - NP pages of @dom at BASE, flipping between two PAs. */
struct rig {
	struct env *e;
	struct smmudrv_domain *dom;
	int ep;
	uint64_t base, g;
	int gen;                 /* which PA set the tables point at */
};

static uint64_t rig_pa(const struct rig *r, int gen, int i)
{
	return DATA + (gen ? 0x400000 : 0) + (uint64_t)i * r->g;
}

/* rig_read_all() - read every page; returns IOTLB hits during it. */
static uint64_t rig_read_all(struct rig *r, uint32_t *got)
{
	uint64_t h0 = mstats(r->e).iotlb_hits;

	for (int i = 0; i < NP; i++)
		got[i] = rdv(r->e, r->ep, VIOMMU_NO_PASID,
			     r->base + (uint64_t)i * r->g);
	return mstats(r->e).iotlb_hits - h0;
}

/* rig_flip() - point every page at the other PA set, with no TLBI. */
static int rig_flip(struct rig *r)
{
	struct smmudrv_domain_info di;
	const struct lpae_ops *ops = smmudrv_domain_ops(r->dom);
	uint64_t n;

	smmudrv_domain_info(r->dom, &di);
	if (lpae_unmap(&di.lp, ops, di.root, r->base, NP * r->g, &n))
		return -1;
	r->gen ^= 1;
	for (int i = 0; i < NP; i++)
		if (lpae_map(&di.lp, ops, di.root, r->base + i * r->g,
			     rig_pa(r, r->gen, i), r->g, VIOMMU_READ))
			return -1;
	return 0;
}

/* rig_round() - cache all, flip, invalidate [first, first + n), check. */
static void rig_round(struct rig *r, int first, int n)
{
	uint32_t got[NP];
	uint64_t inv0, t0;

	rig_read_all(r, got);
	REQUIRE(rig_read_all(r, got) == NP); /* all cached, no collision */
	REQUIRE(rig_flip(r) == 0);
	inv0 = mstats(r->e).invalidations;
	t0 = info_of(r->e).tlbi_cmds;
	CHECK_EQ(smmudrv_inv_range(r->dom, r->base + first * r->g, n * r->g),
		 0);
	/* exactly the pages of the range left the IOTLB */
	CHECK_EQ(mstats(r->e).invalidations - inv0, n);
	if (info_of(r->e).tlbi == SMMUDRV_TLBI_PAGE)
		CHECK_EQ(info_of(r->e).tlbi_cmds - t0, n);
	else
		CHECK(info_of(r->e).tlbi_cmds - t0 <= 2); /* n <= 64 */
	rig_read_all(r, got);
	for (int i = 0; i < NP; i++) {
		bool in = i >= first && i < first + n;
		int gen = in ? r->gen : !r->gen;

		CHECK_EQ(got[i], 0x1000u * gen + (uint32_t)i);
	}
	CHECK_EQ(smmudrv_inv_all(r->dom), 0);
}

/* rig_run() - a stage's rig over granule @g, both TLBI modes. */
static void rig_run(enum smmudrv_stage st, unsigned int g)
{
	struct viommu_smmuv3_config mc = {
		.size = sizeof(mc), .iotlb_entries = 65536,
	};
	struct smmudrv_domain *p = NULL;
	uint64_t seed = 0x5eed0000u ^ g ^ st;
	struct rig r = { 0 };
	struct env e;

	REQUIRE(env_up(&e, &mc, NULL) == 0);
	r.e = &e;
	r.ep = 2;
	r.g = g;
	r.base = IOVA;
	if (st == SMMUDRV_NESTED) {
		REQUIRE((p = dom_new(&e, SMMUDRV_STAGE2, g, 40, NULL)) != NULL);
		REQUIRE(smmudrv_map(p, 0, 0, CHUNK, VIOMMU_READ) == 0);
	}
	REQUIRE((r.dom = dom_new(&e, st, g, st == SMMUDRV_STAGE2 ? 40 : 0,
				 p)) != NULL);
	for (int i = 0; i < NP; i++) {
		put32(&e, rig_pa(&r, 0, i), (uint32_t)i);
		put32(&e, rig_pa(&r, 1, i), 0x1000u + (uint32_t)i);
		REQUIRE(smmudrv_map(r.dom, r.base + i * g, rig_pa(&r, 0, i), g,
				    VIOMMU_READ) == 0);
	}
	REQUIRE(smmudrv_attach(e.d, 2, SMMUDRV_NO_SSID, r.dom) == 0);
	for (int k = 0; k < 16; k++) {
		int first = (int)(rng(&seed) % NP);
		int n = 1 + (int)(rng(&seed) % (uint64_t)(NP - first));

		CHECK_EQ(smmudrv_set_tlbi(e.d, k & 1 ? SMMUDRV_TLBI_PAGE :
					  SMMUDRV_TLBI_RANGE), 0);
		rig_round(&r, first, n);
	}
	env_down(&e);
}

TEST(range_invalidation_against_model_stage1)
{
	rig_run(SMMUDRV_STAGE1, 4096);
	rig_run(SMMUDRV_STAGE1, 16384);
}

TEST(range_invalidation_against_model_stage2_nested)
{
	rig_run(SMMUDRV_STAGE2, 4096);
	rig_run(SMMUDRV_STAGE2, 65536);
	rig_run(SMMUDRV_NESTED, 4096);
}

TEST(tlbi_modes_and_counts)
{
	struct viommu_smmuv3_config mc = {
		.size = sizeof(mc),
		.features = VIOMMU_SMMUV3_F_DEFAULT & ~VIOMMU_SMMUV3_F_RIL,
	};
	struct smmudrv_domain *a;
	uint64_t t0;
	struct env e;

	REQUIRE(env_up(&e, &mc, NULL) == 0);
	CHECK(!info_of(&e).ril);
	CHECK_EQ(smmudrv_set_tlbi(e.d, SMMUDRV_TLBI_RANGE), -EOPNOTSUPP);
	REQUIRE((a = dom_new(&e, SMMUDRV_STAGE1, 0, 0, NULL)) != NULL);
	REQUIRE(smmudrv_map(a, IOVA, DATA, 0x10000, VIOMMU_READ) == 0);
	t0 = info_of(&e).tlbi_cmds;
	CHECK_EQ(smmudrv_unmap(a, IOVA, 0x10000, NULL), 0);
	CHECK_EQ(info_of(&e).tlbi_cmds - t0, 16); /* AUTO without RIL */
	/* more than a batch: several doorbells, one CMD_SYNC */
	uint64_t s0 = info_of(&e).syncs, b0 = info_of(&e).doorbells;

	CHECK_EQ(smmudrv_inv_range(a, IOVA, 200 * 4096ull), 0);
	CHECK_EQ(info_of(&e).syncs - s0, 1);
	CHECK_EQ(info_of(&e).doorbells - b0, 4);
	CHECK_EQ(smmudrv_inv_range(a, IOVA + 1, 4096), -EINVAL);
	CHECK_EQ(smmudrv_inv_range(a, IOVA, 0), -EINVAL);
	env_down(&e);
}

/* ---- queues, errors, tables ---------------------------------------------- */

TEST(command_error_is_skipped)
{
	struct smmudrv_info in;
	uint32_t act = 1;
	struct env e;

	REQUIRE(env_up(&e, NULL, NULL) == 0);
	CHECK_EQ(smmudrv_cmd(e.d, 0xff, 0, true), -EIO);
	in = info_of(&e);
	CHECK_EQ(in.cmd_errors, 1);
	CHECK_EQ(in.last_cerror, 1); /* CERROR_ILL */
	CHECK_EQ(mr(&e.f, 0x60, 4), mr(&e.f, 0x64, 4));
	CHECK_EQ(smmudrv_cmd(e.d, 0x30, 0, true), 0); /* queue runs on */
	CHECK_EQ(smmudrv_gerror(e.d, &act), 0);
	CHECK_EQ(act, 0);
	/* an error inside a batch is reported by its CMD_SYNC */
	CHECK_EQ(smmudrv_cmd(e.d, 0x10, 0, false), 0);
	CHECK_EQ(smmudrv_cmd(e.d, 0x99, 0, false), 0);
	CHECK_EQ(smmudrv_cmd(e.d, 0x30, 0, true), -EIO);
	CHECK_EQ(info_of(&e).cmd_errors, 2);
	CHECK_EQ(mstats(&e).cmd_errors, 2);
	env_down(&e);
}

TEST(command_queue_wraps)
{
	struct smmudrv_config dc = { .cmdq_log2 = 7 };
	uint32_t prod, wraps = 0, last = 0;
	struct env e;

	REQUIRE(env_up(&e, NULL, &dc) == 0);
	CHECK_EQ(info_of(&e).cmdq_log2, 7);
	for (int i = 0; i < 700; i++) {
		CHECK_EQ(smmudrv_cmd(e.d, 0x30, 0, (i % 5) == 4), 0);
		prod = (uint32_t)mr(&e.f, 0x98, 4);
		wraps += ((prod ^ last) >> 7) & 1;
		last = prod;
	}
	CHECK_EQ(smmudrv_cmd(e.d, 0x30, 0, true), 0);
	CHECK(wraps >= 6); /* 840 entries through a 128-entry ring */
	CHECK_EQ(mstats(&e).commands, info_of(&e).cmds);
	CHECK_EQ(mr(&e.f, 0x9c, 4), mr(&e.f, 0x98, 4));
	env_down(&e);
}

TEST(event_queue_overflow)
{
	struct smmudrv_config dc = { .evtq_log2 = 7 };
	struct smmudrv_domain *a;
	struct env e;

	REQUIRE(env_up(&e, NULL, &dc) == 0);
	REQUIRE((a = dom_new(&e, SMMUDRV_STAGE1, 0, 0, NULL)) != NULL);
	REQUIRE(smmudrv_attach(e.d, 1, SMMUDRV_NO_SSID, a) == 0);
	for (int i = 0; i < 200; i++)
		CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, IOVA + 0x1000ull * i),
			 FAULT);
	CHECK_EQ(drain(&e), 128);
	CHECK_EQ(info_of(&e).evtq_overflows, 1);
	CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, IOVA), FAULT);
	CHECK_EQ(drain(&e), 1);
	CHECK_EQ(info_of(&e).evtq_overflows, 1);
	env_down(&e);
}

TEST(msi_polled_sync)
{
	struct smmudrv_config dc = { .msi_sync = true };
	struct viommu_smmuv3_config nomsi = {
		.size = sizeof(nomsi),
		.features = VIOMMU_SMMUV3_F_DEFAULT & ~VIOMMU_SMMUV3_F_MSI,
	};
	struct smmudrv_domain *a;
	struct env e;

	REQUIRE(env_up(&e, NULL, &dc) == 0);
	CHECK(info_of(&e).msi_sync);
	REQUIRE((a = dom_new(&e, SMMUDRV_STAGE1, 0, 0, NULL)) != NULL);
	REQUIRE(smmudrv_map(a, IOVA, DATA, 0x1000, VIOMMU_READ) == 0);
	REQUIRE(smmudrv_attach(e.d, 1, SMMUDRV_NO_SSID, a) == 0);
	put32(&e, DATA, 0x77);
	CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, IOVA), 0x77);
	CHECK_EQ(mstats(&e).msis, info_of(&e).syncs);
	CHECK(mstats(&e).msis >= 4);
	CHECK_EQ(smmudrv_cmd(e.d, 0xfe, 0, true), -EIO);
	CHECK_EQ(smmudrv_cmd(e.d, 0x30, 0, true), 0);
	env_down(&e);
	CHECK_EQ(env_up(&e, &nomsi, &dc), -EOPNOTSUPP);
	fx_fini(&e.f);
}

TEST(two_level_stream_table)
{
	struct smmudrv_config dc = { .strtab_2lvl = true };
	struct viommu_endpoint *hi, *near, *mid;
	struct smmudrv_domain *a;
	struct smmudrv_event ev;
	struct env e;

	REQUIRE(env_up(&e, NULL, &dc) == 0);
	CHECK(info_of(&e).strtab_2lvl);
	CHECK_EQ(info_of(&e).strtab_log2, 16);
	CHECK_EQ(mr(&e.f, 0x88, 4), (1u << 16) | (8u << 6) | 16u);
	REQUIRE(viommu_endpoint_create(e.f.ctx, 0x1234, &hi) == 0);
	REQUIRE(viommu_smmuv3_add_endpoint(e.f.smmu, hi) == 0);
	REQUIRE(viommu_endpoint_create(e.f.ctx, 0x1235, &near) == 0);
	REQUIRE(viommu_smmuv3_add_endpoint(e.f.smmu, near) == 0);
	REQUIRE(viommu_endpoint_create(e.f.ctx, 0x900, &mid) == 0);
	REQUIRE(viommu_smmuv3_add_endpoint(e.f.smmu, mid) == 0);
	REQUIRE((a = dom_new(&e, SMMUDRV_STAGE1, 0, 0, NULL)) != NULL);
	REQUIRE(smmudrv_map(a, IOVA, DATA, 0x1000, VIOMMU_READ) == 0);
	put32(&e, DATA, 0x88);
	REQUIRE(smmudrv_attach(e.d, 0x1234, SMMUDRV_NO_SSID, a) == 0);
	uint32_t v = 0;

	CHECK_EQ(viommu_dma_read(hi, VIOMMU_NO_PASID, IOVA, &v, 4), 0);
	CHECK_EQ(v, 0x88);
	/* SIDs sharing the L2 table abort; an unpopulated span is bad */
	CHECK_EQ(viommu_dma_read(near, VIOMMU_NO_PASID, IOVA, &v, 4),
		 -EFAULT);
	CHECK_EQ(smmudrv_event_pop(e.d, &ev), 0);
	CHECK_EQ(viommu_dma_read(mid, VIOMMU_NO_PASID, IOVA, &v, 4), -EFAULT);
	REQUIRE(smmudrv_event_pop(e.d, &ev) == 1);
	CHECK_EQ(ev.type, EVT_C_BAD_STREAMID);
	CHECK_EQ(ev.sid, 0x900);
	CHECK_EQ(smmudrv_attach(e.d, 0x10000, SMMUDRV_NO_SSID, a), -EINVAL);
	env_down(&e);
}

TEST(bypass_abort_and_lifecycle)
{
	struct smmudrv_config dc = { .bypass_unattached = true };
	struct smmudrv_domain *a, *p, *bad;
	struct smmudrv_domain_config c = { .stage = SMMUDRV_NESTED };
	uint64_t used;
	struct env e;

	REQUIRE(env_up(&e, NULL, &dc) == 0);
	put32(&e, 0x300000, 0x99);
	CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, 0x300000), 0x99);
	CHECK_EQ(smmudrv_set_abort(e.d, 1), 0);
	CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, 0x300000), FAULT);
	CHECK_EQ(drain(&e), 0); /* abort is silent */
	CHECK_EQ(smmudrv_set_bypass(e.d, 1), 0);
	CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, 0x300000), 0x99);
	/* bad domain configs */
	CHECK_EQ(smmudrv_domain_alloc(e.d, &c, &bad), -EINVAL);
	c.stage = SMMUDRV_STAGE1;
	c.granule = 8192;
	CHECK_EQ(smmudrv_domain_alloc(e.d, &c, &bad), -EINVAL);
	used = info_of(&e).mem_used;
	REQUIRE((a = dom_new(&e, SMMUDRV_STAGE1, 65536, 0, NULL)) != NULL);
	c.granule = 0;
	c.stage = SMMUDRV_NESTED;
	c.parent = a;
	CHECK_EQ(smmudrv_domain_alloc(e.d, &c, &bad), -EINVAL);
	REQUIRE(smmudrv_map(a, IOVA, DATA, 0x20000, VIOMMU_READ) == 0);
	CHECK_EQ(smmudrv_map(a, IOVA, DATA, 0x10000, VIOMMU_READ), -EEXIST);
	REQUIRE(smmudrv_attach(e.d, 1, SMMUDRV_NO_SSID, a) == 0);
	put32(&e, DATA + 0x10004, 0x42);
	CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, IOVA + 0x10004), 0x42);
	CHECK_EQ(smmudrv_detach(e.d, 1, SMMUDRV_NO_SSID), 0);
	CHECK_EQ(rdv(&e, 1, VIOMMU_NO_PASID, 0x300000), 0x99); /* bypass */
	CHECK_EQ(smmudrv_domain_free(a), 0);
	REQUIRE((p = dom_new(&e, SMMUDRV_STAGE2, 0, 40, NULL)) != NULL);
	CHECK_EQ(smmudrv_domain_free(p), 0);
	CHECK_U64(info_of(&e).mem_used, used + (64ull << 8)); /* CD table */
	env_down(&e);
}

TEST(httu_dirty_through_driver)
{
	struct smmudrv_domain_config c = { .stage = SMMUDRV_STAGE1,
					   .httu = true };
	struct smmudrv_domain_info di;
	struct smmudrv_domain *a;
	struct lpae_result r;
	uint32_t v = 5;
	struct env e;

	REQUIRE(env_up(&e, NULL, NULL) == 0);
	REQUIRE(smmudrv_domain_alloc(e.d, &c, &a) == 0);
	REQUIRE(smmudrv_map(a, IOVA, DATA, 0x1000, VIOMMU_READ | VIOMMU_WRITE |
			    LPAE_PROT_DBM | LPAE_PROT_NO_AF) == 0);
	REQUIRE(smmudrv_attach(e.d, 1, SMMUDRV_NO_SSID, a) == 0);
	CHECK_EQ(viommu_dma_write(e.f.ep[1], VIOMMU_NO_PASID, IOVA, &v, 4),
		 0);
	smmudrv_domain_info(a, &di);
	REQUIRE(lpae_walk(&di.lp, e.f.mem, di.root, IOVA, 0, NULL, NULL,
			  &r) == 0);
	CHECK(r.desc.af);
	CHECK_EQ(r.desc.ap & 2, 0); /* writable-dirty now */
	env_down(&e);
}

TEST_MAIN()
