/*
 * test_smmuv3_fixture.h - a small in-process "guest" for the SMMUv3 model
 * tests and fuzzers: guest RAM, a core context with endpoints, the model,
 * a bump allocator for guest structures, and driver helpers that follow
 * the Linux arm-smmu-v3 driver (reset sequence, STE/CD builders, command
 * submission with CMD_SYNC, event queue consumption).
 */
#ifndef TEST_SMMUV3_FIXTURE_H
#define TEST_SMMUV3_FIXTURE_H

#include <viommu/core.h>
#include <viommu/mem.h>
#include <viommu/smmuv3.h>
#include "refdrv/lpae_build.h"

#include "fx_guest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FX_NEP 4
#define FX_STRTAB_LOG2 8
#define FX_Q_LOG2 8

struct fx {
	FX_GUEST_FIELDS;
	struct viommu_smmuv3 *smmu;
	struct viommu_endpoint *ep[FX_NEP];
	uint64_t strtab, cmdq, evtq;
	uint32_t cmd_prod, evt_cons;
	unsigned int irqs[8];
	struct lpae_ops ops;
};

#include "fx_guest_ops.h"

static inline int fx_lpae_alloc(void *o, uint64_t size, uint64_t align,
				uint64_t *gpa)
{
	*gpa = fx_alloc(o, size, align);
	return *gpa ? 0 : -ENOMEM;
}

static inline void fx_irq(void *o, enum viommu_smmuv3_irq irq)
{
	struct fx *f = o;

	if ((unsigned int)irq < 8)
		f->irqs[irq]++;
}

static inline uint64_t mr(struct fx *f, uint64_t off, unsigned int size)
{
	uint64_t v = 0;

	viommu_smmuv3_mmio_read(f->smmu, off, size, &v);
	return v;
}

static inline int mw(struct fx *f, uint64_t off, unsigned int size,
		     uint64_t v)
{
	return viommu_smmuv3_mmio_write(f->smmu, off, size, v);
}

/*
 * fx_init() - RAM, context, @nep endpoints (IDs = @sids or 0..), model
 * with @cfg's knobs (ctx/mem/irq filled in here; @cfg may be NULL).
 */
static inline int fx_init(struct fx *f, const struct viommu_smmuv3_config *cfg)
{
	struct viommu_smmuv3_config sc = { .size = sizeof(sc) };
	int ret;

	ret = fx_guest_init(f);
	if (ret)
		return ret;
	if (cfg)
		sc = *cfg;
	sc.ctx = f->ctx;
	sc.mem = f->mem;
	sc.irq = fx_irq;
	sc.irq_opaque = f;
	ret = viommu_smmuv3_create(&sc, &f->smmu);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < FX_NEP; i++) {
		ret = viommu_endpoint_create(f->ctx, i, &f->ep[i]);
		if (!ret)
			ret = viommu_smmuv3_add_endpoint(f->smmu, f->ep[i]);
		if (ret)
			return ret;
	}
	f->next = 0x100000; /* keep the first MiB for tests' own use */
	f->ops.mem = f->mem;
	f->ops.alloc = fx_lpae_alloc;
	f->ops.opaque = f;
	return 0;
}

static inline void fx_fini(struct fx *f)
{
	viommu_smmuv3_destroy(f->smmu);
	fx_guest_fini(f);
}

/* fx_cmd() - queue one command and ring the doorbell. */
static inline void fx_cmd(struct fx *f, uint64_t d0, uint64_t d1)
{
	uint32_t m = (1u << FX_Q_LOG2) - 1, w = (2u << FX_Q_LOG2) - 1;
	uint64_t a = f->cmdq + (uint64_t)(f->cmd_prod & m) * 16;

	gw64(f, a, d0);
	gw64(f, a + 8, d1);
	f->cmd_prod = (f->cmd_prod + 1) & w;
	mw(f, 0x98, 4, f->cmd_prod);
}

/* fx_sync() - CMD_SYNC (CS none); true when everything was consumed. */
static inline int fx_sync(struct fx *f)
{
	fx_cmd(f, 0x46, 0);
	return (mr(f, 0x9c, 4) & ((2u << FX_Q_LOG2) - 1)) == f->cmd_prod;
}

#define CMD_SID(sid) ((uint64_t)(sid) << 32)

static inline int fx_cfgi_ste(struct fx *f, uint32_t sid)
{
	fx_cmd(f, 0x03 | CMD_SID(sid), 1);
	return fx_sync(f);
}

static inline int fx_cfgi_cd(struct fx *f, uint32_t sid, uint32_t ssid)
{
	fx_cmd(f, 0x05 | CMD_SID(sid) | ((uint64_t)ssid << 12), 1);
	return fx_sync(f);
}

/*
 * fx_reset() - the Linux driver's reset sequence with a linear stream
 * table of 2^FX_STRTAB_LOG2 entries; returns 0 or the failing step.
 */
static inline int fx_reset(struct fx *f)
{
	f->strtab = fx_alloc(f, 64ull << FX_STRTAB_LOG2, 64ull << FX_STRTAB_LOG2);
	f->cmdq = fx_alloc(f, 16ull << FX_Q_LOG2, 16ull << FX_Q_LOG2);
	f->evtq = fx_alloc(f, 32ull << FX_Q_LOG2, 32ull << FX_Q_LOG2);
	mw(f, 0x20, 4, 0);
	if (mr(f, 0x24, 4) != 0)
		return 1;
	mw(f, 0x28, 4, (3u << 10) | (1u << 8) | (1u << 6) | (3u << 4) |
	   (1u << 2) | 1u);
	mw(f, 0x2c, 4, (1u << 1) | (1u << 2)); /* RECINVSID | PTM */
	mw(f, 0x80, 8, f->strtab | (1ull << 62));
	mw(f, 0x88, 4, FX_STRTAB_LOG2);
	mw(f, 0x90, 8, f->cmdq | (1ull << 62) | FX_Q_LOG2);
	mw(f, 0x98, 4, 0);
	mw(f, 0x9c, 4, 0);
	f->cmd_prod = 0;
	mw(f, 0x20, 4, 1u << 3);
	if (mr(f, 0x24, 4) != (1u << 3))
		return 2;
	fx_cmd(f, 0x04, 31); /* CFGI_ALL */
	if (!fx_sync(f))
		return 3;
	fx_cmd(f, 0x30, 0); /* TLBI_NSNH_ALL */
	if (!fx_sync(f))
		return 4;
	mw(f, 0xa0, 8, f->evtq | (1ull << 62) | FX_Q_LOG2);
	mw(f, 0x100a8, 4, 0);
	mw(f, 0x100ac, 4, 0);
	f->evt_cons = 0;
	mw(f, 0x20, 4, (1u << 3) | (1u << 2));
	if (mr(f, 0x24, 4) != ((1u << 3) | (1u << 2)))
		return 5;
	mw(f, 0x50, 4, 0);
	if (mr(f, 0x54, 4) != 0)
		return 6;
	mw(f, 0x50, 4, 5); /* GERROR | EVTQ, wired */
	if (mr(f, 0x54, 4) != 5)
		return 7;
	mw(f, 0x20, 4, (1u << 3) | (1u << 2) | 1u);
	if (mr(f, 0x24, 4) != ((1u << 3) | (1u << 2) | 1u))
		return 8;
	return 0;
}

/* fx_evt() - pop one event into @e[4]; 0 when the queue is empty. */
static inline int fx_evt(struct fx *f, uint64_t e[4])
{
	uint32_t m = (1u << FX_Q_LOG2) - 1, w = (2u << FX_Q_LOG2) - 1;
	uint32_t prod = (uint32_t)mr(f, 0x100a8, 4);

	if ((prod & w) == (f->evt_cons & w))
		return 0;
	for (int i = 0; i < 4; i++)
		e[i] = gr64(f, f->evtq + (uint64_t)(f->evt_cons & m) * 32 +
			       8 * i);
	f->evt_cons = ((f->evt_cons + 1) & w) | (prod & (1u << 31));
	mw(f, 0x100ac, 4, f->evt_cons);
	return 1;
}

/* fx_ste() - write the 8 dwords of @sid's STE (linear table). */
static inline void fx_ste(struct fx *f, uint32_t sid, const uint64_t q[8])
{
	for (int i = 0; i < 8; i++)
		gw64(f, f->strtab + (uint64_t)sid * 64 + 8 * i, q[i]);
}

/* Granule encodings. */
static inline uint64_t tg0_of(unsigned int g)
{
	return g == 4096 ? 0 : g == 65536 ? 1 : 2;
}

static inline uint64_t ps_of(unsigned int bits)
{
	static const unsigned int t[6] = { 32, 36, 40, 42, 44, 48 };

	for (uint64_t i = 0; i < 6; i++)
		if (t[i] == bits)
			return i;
	return 5;
}

/* fx_cd() - a valid AArch64 CD for TTB0 of @c at @ttb with @asid. */
static inline void fx_cd(uint64_t q[8], const struct lpae_cfg *c, uint64_t ttb,
			 uint16_t asid)
{
	memset(q, 0, 64);
	q[0] = (64 - c->ias) | (tg0_of(c->granule) << 6) | (1ull << 8) |
	       (1ull << 10) | (3ull << 12) | (1ull << 30) /* EPD1 */ |
	       (1ull << 31) /* V */ | (ps_of(c->oas) << 32) |
	       (1ull << 41) /* AA64 */ | (1ull << 45) /* R */ |
	       (1ull << 46) /* A */ | ((uint64_t)asid << 48);
	q[1] = ttb;
	q[3] = 0x0404ff00ull; /* MAIR: NC, WB, device */
}

/* fx_ste_s1() - stage-1 STE: CD table at @ctx, S1CDMax @cdmax, @fmt. */
static inline void fx_ste_s1(uint64_t q[8], uint64_t ctx, unsigned int cdmax,
			     unsigned int fmt, unsigned int dss)
{
	memset(q, 0, 64);
	q[0] = 1 | (5ull << 1) | ((uint64_t)fmt << 4) | ctx |
	       ((uint64_t)cdmax << 59);
	q[1] = dss | (1ull << 2) | (1ull << 4) | (3ull << 6);
}

/* fx_ste_add_s2() - add stage 2 of @c at @ttb with @vmid to STE @q. */
static inline void fx_ste_add_s2(uint64_t q[8], const struct lpae_cfg *c,
				 uint64_t ttb, uint16_t vmid)
{
	unsigned int sl = c->sl, sl0;

	if (c->granule == 4096)
		sl0 = 2 - sl;
	else
		sl0 = 3 - sl;
	q[0] |= 1 | (6ull << 1); /* Config: stage 2 on (nested with S1) */
	q[2] = vmid | ((uint64_t)(64 - c->ias) << 32) |
	       ((uint64_t)sl0 << 38) | (1ull << 40) | (1ull << 42) |
	       (3ull << 44) | (tg0_of(c->granule) << 46) |
	       (ps_of(c->oas) << 48) | (1ull << 51) /* AA64 */ |
	       (1ull << 58) /* S2R */;
	q[3] = ttb;
}

/* fx_lcfg() - a validated LPAE configuration. */
static inline int fx_lcfg(struct lpae_cfg *c, enum lpae_stage st,
			  unsigned int g, unsigned int ias, unsigned int oas)
{
	memset(c, 0, sizeof(*c));
	c->stage = st;
	c->granule = g;
	c->ias = ias;
	c->oas = oas;
	c->start_level = LPAE_SL_AUTO;
	return lpae_cfg_validate(c);
}

#endif /* TEST_SMMUV3_FIXTURE_H */
