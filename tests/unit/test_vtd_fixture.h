/*
 * test_vtd_fixture.h - a small in-process "guest" for the VT-d model
 * tests, fuzzers and benchmark: guest RAM, a core context with endpoints
 * behind the model, a bump allocator for guest structures, and driver
 * helpers that follow the Linux intel-iommu driver (enable sequence:
 * queue, root table with SRTP, global context and IOTLB flushes, TE;
 * legacy context entries; scalable-mode context, PASID directory and
 * PASID entries; queued descriptors with an invalidation wait).
 */
#ifndef TEST_VTD_FIXTURE_H
#define TEST_VTD_FIXTURE_H

#include <viommu/core.h>
#include <viommu/mem.h>
#include <viommu/vtd.h>
#include "pgtable/vtdpt.h"

#include "fx_guest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FX_NEP 4
#define FX_QS 0            /* one 4 KiB page of queue */

/* register offsets the tests use */
#define VR_CAP 0x08
#define VR_ECAP 0x10
#define VR_GCMD 0x18
#define VR_GSTS 0x1c
#define VR_RTADDR 0x20
#define VR_CCMD 0x28
#define VR_FSTS 0x34
#define VR_FECTL 0x38
#define VR_IQH 0x80
#define VR_IQT 0x88
#define VR_IQA 0x90
#define VR_ICS 0x9c
#define VR_IECTL 0xa0
#define VR_IQERCD 0xb0
#define VR_IVA 0x200
#define VR_IOTLB 0x208
#define VR_FRCD 0x220

#define GC_TE (1u << 31)
#define GC_SRTP (1u << 30)
#define GC_WBF (1u << 27)
#define GC_QIE (1u << 26)
#define GC_IRE (1u << 25)

static const uint16_t fx_sids[FX_NEP] = { 0x08, 0x10, 0x100, 0x88 };

struct fx {
	FX_GUEST_FIELDS;
	struct viommu_vtd *vtd;
	struct viommu_endpoint *ep[FX_NEP];
	uint64_t root, iq, status;
	uint64_t ctxt[256][2];          /* context table per bus and half */
	uint64_t pdir[FX_NEP];          /* scalable: PASID directory */
	uint32_t gcmd;                  /* what the driver keeps enabled */
	uint64_t iqt;
	bool sm, wide;
	unsigned int irqs[2];
	unsigned int warns;
	struct vtdpt_ops ops;
};

#include "fx_guest_ops.h"

static inline int fx_pt_alloc(void *o, uint64_t *gpa)
{
	*gpa = fx_alloc(o, 4096, 4096);
	return *gpa ? 0 : -ENOMEM;
}

static inline void fx_irq(void *o, enum viommu_vtd_irq irq)
{
	struct fx *f = o;

	if ((unsigned int)irq < 2)
		f->irqs[irq]++;
}

static inline void fx_log(void *o, enum viommu_log_level l, const char *s)
{
	struct fx *f = o;

	(void)s;
	if (l <= VIOMMU_LOG_WARN)
		f->warns++;
}

static inline uint64_t mr(struct fx *f, uint64_t off, unsigned int size)
{
	uint64_t v = 0;

	viommu_vtd_mmio_read(f->vtd, off, size, &v);
	return v;
}

static inline int mw(struct fx *f, uint64_t off, unsigned int size,
		     uint64_t v)
{
	return viommu_vtd_mmio_write(f->vtd, off, size, v);
}

/*
 * fx_init() - RAM, context, FX_NEP endpoints with fx_sids, model with
 * @cfg's knobs (ctx/mem/irq/log filled in here; @cfg may be NULL).
 */
static inline int fx_init(struct fx *f, const struct viommu_vtd_config *cfg)
{
	struct viommu_vtd_config vc = { 0 };
	int ret;

	ret = fx_guest_init(f);
	if (ret)
		return ret;
	if (cfg)
		vc = *cfg;
	vc.ctx = f->ctx;
	vc.mem = f->mem;
	vc.irq = fx_irq;
	vc.irq_opaque = f;
	vc.log.fn = fx_log;
	vc.log.opaque = f;
	vc.log.level = VIOMMU_LOG_WARN;
	ret = viommu_vtd_create(&vc, &f->vtd);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < FX_NEP; i++) {
		ret = viommu_endpoint_create(f->ctx, fx_sids[i], &f->ep[i]);
		if (!ret)
			ret = viommu_vtd_add_endpoint(f->vtd, f->ep[i]);
		if (ret)
			return ret;
	}
	f->next = 0x100000; /* keep the first MiB for tests' own use */
	f->ops.mem = f->mem;
	f->ops.alloc = fx_pt_alloc;
	f->ops.opaque = f;
	return 0;
}

static inline void fx_fini(struct fx *f)
{
	viommu_vtd_destroy(f->vtd);
	fx_guest_fini(f);
}

/* fx_gcmd() - set or clear one command bit the Linux way; GSTS after. */
static inline uint32_t fx_gcmd(struct fx *f, uint32_t bit, bool on)
{
	if (bit == GC_SRTP || bit == GC_WBF) {
		mw(f, VR_GCMD, 4, f->gcmd | bit);
	} else {
		f->gcmd = on ? f->gcmd | bit : f->gcmd & ~bit;
		mw(f, VR_GCMD, 4, f->gcmd);
	}
	return (uint32_t)mr(f, VR_GSTS, 4);
}

/* fx_desc() - queue one descriptor and ring the tail. */
static inline void fx_desc(struct fx *f, uint64_t q0, uint64_t q1)
{
	uint64_t bytes = 4096ull << FX_QS, sz = f->wide ? 32 : 16;

	gw64(f, f->iq + f->iqt, q0);
	gw64(f, f->iq + f->iqt + 8, q1);
	if (f->wide) {
		gw64(f, f->iq + f->iqt + 16, 0);
		gw64(f, f->iq + f->iqt + 24, 0);
	}
	f->iqt = (f->iqt + sz) % bytes;
	mw(f, VR_IQT, 8, f->iqt);
}

/* fx_wait() - invalidation wait with status write; true when done. */
static inline bool fx_wait(struct fx *f)
{
	f->ram[f->status] = 0;
	fx_desc(f, 5 | (1u << 5) | (1ull << 32), f->status);
	return f->ram[f->status] == 1;
}

/* Descriptor encoders (qw0). */
#define D_CC_GLOBAL (1 | (1u << 4))
#define D_CC_DEV(did, sid) (1 | (3u << 4) | (uint64_t)(did) << 16 | \
			    (uint64_t)(sid) << 32)
#define D_IOTLB_GLOBAL (2 | (1u << 4))
#define D_IOTLB_DSI(did) (2 | (2u << 4) | (uint64_t)(did) << 16)
#define D_IOTLB_PSI(did) (2 | (3u << 4) | (uint64_t)(did) << 16)
#define D_PIOTLB(did, pasid, g) (6 | (uint64_t)(g) << 4 | \
				 (uint64_t)(did) << 16 | (uint64_t)(pasid) << 32)
#define D_PC(did, pasid, g) (7 | (uint64_t)(g) << 4 | \
			     (uint64_t)(did) << 16 | (uint64_t)(pasid) << 32)

/* fx_flush_all() - global context-cache and IOTLB flush + wait. */
static inline bool fx_flush_all(struct fx *f)
{
	fx_desc(f, D_CC_GLOBAL, 0);
	fx_desc(f, D_IOTLB_GLOBAL, 0);
	return fx_wait(f);
}

/*
 * fx_enable() - the Linux enable sequence: queue (IQA, QIE), root table
 * (RTADDR with the scalable bit when @sm, SRTP), global flushes, fault
 * event unmasked, TE.  Returns 0 or the failing step.
 */
static inline int fx_enable(struct fx *f, bool sm)
{
	f->sm = sm;
	f->wide = sm;
	f->root = fx_alloc(f, 4096, 4096);
	f->iq = fx_alloc(f, 4096ull << FX_QS, 4096);
	f->status = fx_alloc(f, 64, 64);
	mw(f, VR_IQA, 8, f->iq | (sm ? 1ull << 11 : 0) | FX_QS);
	mw(f, VR_IQT, 8, 0);
	if (!(fx_gcmd(f, GC_QIE, true) & GC_QIE))
		return 1;
	mw(f, VR_RTADDR, 8, f->root | (sm ? 1ull << 10 : 0));
	if (!(fx_gcmd(f, GC_SRTP, true) & GC_SRTP))
		return 2;
	if (!fx_flush_all(f))
		return 3;
	mw(f, VR_FECTL, 4, 0);
	mw(f, VR_IECTL, 4, 0);
	if (!(fx_gcmd(f, GC_TE, true) & GC_TE))
		return 4;
	return 0;
}

/* fx_ctx_table() - the context table of @sid's bus/half, made present. */
static inline uint64_t fx_ctx_table(struct fx *f, uint16_t sid)
{
	unsigned int bus = sid >> 8, up = f->sm && (sid & 0x80);
	uint64_t *t = &f->ctxt[bus][up];

	if (!*t) {
		*t = fx_alloc(f, 4096, 4096);
		gw64(f, f->root + bus * 16 + up * 8, *t | 1);
	}
	return *t;
}

/* fx_legacy_ctx() - legacy context entry: SL at @slptr, AW @aw, @did. */
static inline void fx_legacy_ctx(struct fx *f, uint16_t sid, uint16_t did,
				 uint64_t slptr, unsigned int aw,
				 unsigned int t)
{
	uint64_t ce = fx_ctx_table(f, sid) + (sid & 0xff) * 16ull;

	gw64(f, ce, slptr | (uint64_t)t << 2 | 1);
	gw64(f, ce + 8, (uint64_t)did << 8 | aw);
}

/*
 * fx_sm_ctx() - scalable-mode context entry of @sid with a PASID
 * directory of 2^(@pdts+7) entries, PASIDs enabled, RID_PASID 0.
 */
static inline uint64_t fx_sm_ctx(struct fx *f, uint16_t sid,
				 unsigned int pdts)
{
	uint64_t ce = fx_ctx_table(f, sid) + (sid & 0x7f) * 32ull;
	uint64_t dir = fx_alloc(f, 8ull << (pdts + 7), 4096);

	gw64(f, ce, dir | (uint64_t)pdts << 9 | (1u << 3) | 1);
	gw64(f, ce + 8, 0);
	return dir;
}

/*
 * fx_pasid_entry() - PASID entry of @pasid under directory @dir: PGTT
 * @pgtt, DID @did, second level @slptr (AW @aw), first level @flptr
 * (FLPM @flpm).  Returns the entry's GPA.
 */
static inline uint64_t fx_pasid_entry(struct fx *f, uint64_t dir,
				      uint32_t pasid, unsigned int pgtt,
				      uint16_t did, uint64_t slptr,
				      unsigned int aw, uint64_t flptr,
				      unsigned int flpm)
{
	uint64_t de = dir + (pasid >> 6) * 8ull, tbl = gr64(f, de) & ~0xfffull;
	uint64_t pe;

	if (!tbl) {
		tbl = fx_alloc(f, 4096, 4096);
		gw64(f, de, tbl | 1);
	}
	pe = tbl + (pasid & 63) * 64ull;
	gw64(f, pe, slptr | (uint64_t)pgtt << 6 | (uint64_t)aw << 2 | 1);
	gw64(f, pe + 8, did);
	gw64(f, pe + 16, flptr | (uint64_t)flpm << 2);
	return pe;
}

/* fx_cfg_sl() - a second-level table configuration. */
static inline struct vtdpt_cfg fx_cfg(enum vtdpt_fmt fmt, unsigned int lv)
{
	struct vtdpt_cfg c = { .fmt = fmt, .levels = lv, .haw = 48,
			       .large = 3 };

	if (lv == 5)
		c.haw = 52;
	return c;
}

/* fx_read() - one 4-byte DMA read by endpoint @i; the errno. */
static inline int fx_read(struct fx *f, int i, uint32_t pasid, uint64_t iova,
			  uint32_t *out)
{
	uint32_t v = 0;
	int r = viommu_dma_read(f->ep[i], pasid, iova, &v, 4);

	if (out)
		*out = v;
	return r;
}

static inline int fx_write(struct fx *f, int i, uint32_t pasid,
			   uint64_t iova, uint32_t v)
{
	return viommu_dma_write(f->ep[i], pasid, iova, &v, 4);
}

/* fx_frcd_hi() - the upper qword of fault record @n. */
static inline uint64_t fx_frcd_hi(struct fx *f, unsigned int n)
{
	return mr(f, VR_FRCD + 16ull * n + 8, 8);
}

/* fx_reason() - fault reason of record @n (0 when F clear). */
static inline unsigned int fx_reason(struct fx *f, unsigned int n)
{
	uint64_t hi = fx_frcd_hi(f, n);

	return (hi >> 63) ? (unsigned int)((hi >> 32) & 0xff) : 0;
}

/* fx_newest() - index of the newest record (FSTS.FRI - 1). */
static inline unsigned int fx_newest(struct fx *f)
{
	unsigned int nfr = (unsigned int)((mr(f, VR_CAP, 8) >> 40) & 0xff) + 1;
	unsigned int fri = (unsigned int)(mr(f, VR_FSTS, 4) >> 8) & 0xff;

	return (fri + nfr - 1) % nfr;
}

/* fx_last() - reason of the newest record, 0 if none. */
static inline unsigned int fx_last(struct fx *f)
{
	return fx_reason(f, fx_newest(f));
}

/* fx_clear_faults() - the Linux fault handler: clear F bits and FSTS. */
static inline void fx_clear_faults(struct fx *f, unsigned int nfr)
{
	for (unsigned int i = 0; i < nfr; i++)
		mw(f, VR_FRCD + 16ull * i + 12, 4, 1u << 31);
	mw(f, VR_FSTS, 4, 0x7f);
}

#endif /* TEST_VTD_FIXTURE_H */
