/*
 * refdrv.c - the reference VT-d driver (see refdrv.h): probe, the Linux
 * enable sequence, the invalidation queue with waits, context and PASID
 * entries, and map/unmap with strict, deferred and caching-mode
 * invalidation.
 *
 * Every guest structure lives in the driver's chunk and is written
 * through the host pointer, 64 bits at a time, the present bit last (as
 * Linux does), and read by the model through the memory layer.  The model
 * completes MMIO side effects before the write returns, so the polls below
 * normally succeed at once; they are bounded all the same.
 */
#include "refdrv/vtd.h"
#include "base/util.h"

#include <errno.h>
#include <stdlib.h>

#define R_CAP 0x08
#define R_ECAP 0x10
#define R_GCMD 0x18
#define R_GSTS 0x1c
#define R_RTADDR 0x20
#define R_FSTS 0x34
#define R_FECTL 0x38
#define R_IQH 0x80
#define R_IQT 0x88
#define R_IQA 0x90
#define R_IECTL 0xa0
#define G_TE (1u << 31)
#define G_SRTP (1u << 30)
#define G_QIE (1u << 26)
#define FSTS_IQE (1u << 4)
#define QBYTES 4096ull

struct vtddrv_domain {
	struct vtddrv *d;
	uint16_t did;
	enum vtddrv_policy policy;
	uint64_t root;
	unsigned int fq;           /* deferred unmaps not flushed yet */
};

struct vtddrv {
	struct vtddrv_config c;
	bool cm;
	uint32_t mamv;
	uint32_t gcmd;
	uint64_t next;             /* bump allocator, offset in the chunk */
	uint64_t root, iq, status;
	uint64_t ctxt[256][2];
	uint64_t iqt;
	uint32_t seq;
	struct vtdpt_ops ops;
	struct vtdpt_cfg pt;
	struct vtddrv_domain *doms[16];
	unsigned int ndoms;
	struct vtddrv_stats st;
};

/* ---- memory and registers ----------------------------------------------- */

static int page_alloc(void *o, uint64_t *gpa)
{
	struct vtddrv *d = o;

	if (d->next + 4096 > d->c.chunk_size)
		return -ENOMEM;
	*gpa = d->c.chunk_gpa + d->next;
	memset(d->c.chunk + d->next, 0, 4096);
	d->next += 4096;
	return 0;
}

/* put() - one 64-bit store into the chunk at @gpa. */
static void put(struct vtddrv *d, uint64_t gpa, uint64_t v)
{
	uint8_t *p = d->c.chunk + (gpa - d->c.chunk_gpa);

	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t rd(struct vtddrv *d, uint64_t off, unsigned int size)
{
	uint64_t v = 0;

	if (d->c.mmio_read)
		return d->c.mmio_read(d->c.mmio_opaque, off, size);
	viommu_vtd_mmio_read(d->c.vtd, off, size, &v);
	return v;
}

static void wr(struct vtddrv *d, uint64_t off, unsigned int size, uint64_t v)
{
	if (d->c.mmio_write)
		d->c.mmio_write(d->c.mmio_opaque, off, size, v);
	else
		viommu_vtd_mmio_write(d->c.vtd, off, size, v);
}

/* gcmd() - set/clear a level command (or fire a one-shot) and poll. */
static int gcmd(struct vtddrv *d, uint32_t bit, bool on, bool oneshot)
{
	if (oneshot) {
		wr(d, R_GCMD, 4, d->gcmd | bit);
	} else {
		d->gcmd = on ? d->gcmd | bit : d->gcmd & ~bit;
		wr(d, R_GCMD, 4, d->gcmd);
	}
	for (unsigned int i = 0; i < VTDDRV_POLL_MAX; i++)
		if (!!(rd(d, R_GSTS, 4) & bit) == on)
			return 0;
	return -ETIMEDOUT;
}

/* ---- the queue -------------------------------------------------------- */

/* desc() - write one descriptor at the tail (not yet published). */
static void desc(struct vtddrv *d, uint64_t q0, uint64_t q1)
{
	uint64_t at = d->iq + d->iqt;

	put(d, at, q0);
	put(d, at + 8, q1);
	if (d->c.scalable) {
		put(d, at + 16, 0);
		put(d, at + 24, 0);
	}
	d->iqt = (d->iqt + (d->c.scalable ? 32 : 16)) % QBYTES;
	d->st.descriptors++;
}

/* status_word() - the wait status the model wrote. */
static uint32_t status_word(struct vtddrv *d)
{
	/* the model stores the word atomically; little-endian host */
	return __atomic_load_n((uint32_t *)(void *)(d->c.chunk +
			       (d->status - d->c.chunk_gpa)), __ATOMIC_ACQUIRE);
}

/* recover() - Linux's answer to IQE: rewrite the slot as a wait. */
static void recover(struct vtddrv *d)
{
	uint64_t head = rd(d, R_IQH, 8) % QBYTES;

	put(d, d->iq + head, 5);
	put(d, d->iq + head + 8, 0);
	wr(d, R_FSTS, 4, FSTS_IQE);
	d->st.queue_errors++;
}

/* submit() - a wait with a status write after the queued descriptors. */
static int submit(struct vtddrv *d)
{
	uint32_t seq = ++d->seq;

	desc(d, 5 | (1u << 5) | (uint64_t)seq << 32, d->status);
	d->st.waits++;
	wr(d, R_IQT, 8, d->iqt);
	for (unsigned int i = 0; i < VTDDRV_POLL_MAX; i++) {
		if (status_word(d) == seq)
			return 0;
		if (rd(d, R_FSTS, 4) & FSTS_IQE) {
			recover(d);
			return -EIO;
		}
	}
	return -ETIMEDOUT;
}

/* room() - wait until @n descriptors fit before the head. */
static int room(struct vtddrv *d, unsigned int n)
{
	uint64_t sz = d->c.scalable ? 32 : 16;

	for (unsigned int i = 0; i < VTDDRV_POLL_MAX; i++) {
		uint64_t head = rd(d, R_IQH, 8) % QBYTES;
		uint64_t used = (d->iqt + QBYTES - head) % QBYTES;

		if (used + (n + 1) * sz < QBYTES)
			return 0;
	}
	return -ETIMEDOUT;
}

/* psi() - page-selective IOTLB invalidation of [iova, +size) + wait. */
static int psi(struct vtddrv *d, uint16_t did, uint64_t iova, uint64_t size)
{
	uint64_t pages = (size + 4095) / 4096, addr;
	unsigned int am = 0;
	int r = room(d, 1);

	if (r)
		return r;
	while ((1ull << am) < pages)
		am++;
	addr = iova & ~((4096ull << am) - 1);
	if (iova + size > addr + (4096ull << am))
		am++;
	if (am > d->mamv) {
		desc(d, 2 | (2u << 4) | (uint64_t)did << 16, 0);
		d->st.dsi++;
	} else {
		addr = iova & ~((4096ull << am) - 1);
		desc(d, 2 | (3u << 4) | (uint64_t)did << 16, addr | am);
		d->st.psi++;
	}
	return submit(d);
}

/* dsi() - domain-selective IOTLB invalidation + wait. */
static int dsi(struct vtddrv *d, uint16_t did)
{
	int r = room(d, 1);

	if (r)
		return r;
	desc(d, 2 | (2u << 4) | (uint64_t)did << 16, 0);
	d->st.dsi++;
	return submit(d);
}

/* ---- probe and enable ------------------------------------------------------ */

static int probe(struct vtddrv *d)
{
	uint64_t cap = rd(d, R_CAP, 8), ecap = rd(d, R_ECAP, 8);

	if (!(ecap & 2) || !(cap & (1u << 10)))
		return -ENODEV;
	if (d->c.scalable && (!((ecap >> 43) & 1) || !((ecap >> 46) & 1)))
		return -ENODEV;
	d->cm = (cap >> 7) & 1;
	d->mamv = (uint32_t)((cap >> 48) & 0x3f);
	return 0;
}

static int enable(struct vtddrv *d)
{
	int r;

	if (rd(d, R_GSTS, 4) & G_TE) {
		d->gcmd = (uint32_t)rd(d, R_GSTS, 4) & (G_TE | G_QIE);
		if ((r = gcmd(d, G_TE, false, false)))
			return r;
	}
	if (rd(d, R_GSTS, 4) & G_QIE) {
		d->gcmd |= G_QIE;
		if ((r = gcmd(d, G_QIE, false, false)))
			return r;
	}
	wr(d, R_IQA, 8, d->iq | (d->c.scalable ? 1ull << 11 : 0));
	d->iqt = 0;
	wr(d, R_IQT, 8, 0);
	if ((r = gcmd(d, G_QIE, true, false)))
		return r;
	wr(d, R_RTADDR, 8, d->root | (d->c.scalable ? 1ull << 10 : 0));
	if ((r = gcmd(d, G_SRTP, true, true)))
		return r;
	desc(d, 1 | (1u << 4), 0);            /* context cache, global */
	desc(d, 2 | (1u << 4), 0);            /* IOTLB, global */
	if ((r = submit(d)))
		return r;
	wr(d, R_FECTL, 4, 0);
	wr(d, R_IECTL, 4, 0);
	return gcmd(d, G_TE, true, false);
}

int vtddrv_create(const struct vtddrv_config *cfg, struct vtddrv **out)
{
	struct vtddrv *d;
	int r;

	if (!cfg || !out || !cfg->vtd || !cfg->mem || !cfg->chunk ||
	    (cfg->chunk_gpa & 0xfff) || cfg->chunk_size < (64u << 10))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->c = *cfg;
	d->ops.mem = cfg->mem;
	d->ops.alloc = page_alloc;
	d->ops.opaque = d;
	d->pt = (struct vtdpt_cfg){ .fmt = VTDPT_SL, .levels = 4, .haw = 48,
				    .large = 3 };
	r = probe(d);
	if (!r && (page_alloc(d, &d->root) || page_alloc(d, &d->iq) ||
		   page_alloc(d, &d->status)))
		r = -ENOMEM;
	if (!r)
		r = enable(d);
	if (r) {
		free(d);
		return r;
	}
	*out = d;
	return 0;
}

void vtddrv_destroy(struct vtddrv *d)
{
	if (!d)
		return;
	gcmd(d, G_TE, false, false);
	for (unsigned int i = 0; i < d->ndoms; i++)
		free(d->doms[i]);
	free(d);
}

/* ---- domains ------------------------------------------------------------- */

int vtddrv_domain_create(struct vtddrv *d, uint16_t did,
			 enum vtddrv_policy policy,
			 struct vtddrv_domain **out)
{
	struct vtddrv_domain *dom;

	if (!d || !out || !did || d->ndoms == ARRAY_SIZE(d->doms))
		return -EINVAL;
	dom = calloc(1, sizeof(*dom));
	if (!dom)
		return -ENOMEM;
	if (vtdpt_alloc_root(&d->ops, &dom->root)) {
		free(dom);
		return -ENOMEM;
	}
	dom->d = d;
	dom->did = did;
	dom->policy = policy;
	d->doms[d->ndoms++] = dom;
	*out = dom;
	return 0;
}

/* ctx_table() - the context table for @sid, made present. */
static int ctx_table(struct vtddrv *d, uint16_t sid, uint64_t *t)
{
	unsigned int bus = sid >> 8, up = d->c.scalable && (sid & 0x80);

	if (!d->ctxt[bus][up]) {
		if (page_alloc(d, &d->ctxt[bus][up]))
			return -ENOMEM;
		put(d, d->root + bus * 16 + up * 8, d->ctxt[bus][up] | 1);
	}
	*t = d->ctxt[bus][up];
	return 0;
}

int vtddrv_attach(struct vtddrv *d, struct vtddrv_domain *dom, uint16_t sid)
{
	uint64_t t, dir, tbl;
	int r;

	if (!d || !dom)
		return -EINVAL;
	if ((r = ctx_table(d, sid, &t)) || (r = room(d, 4)))
		return r;
	if (!d->c.scalable) {
		uint64_t ce = t + (sid & 0xff) * 16ull;

		put(d, ce + 8, (uint64_t)dom->did << 8 | 2);
		put(d, ce, dom->root | 1);
		desc(d, 1 | (3u << 4) | (uint64_t)dom->did << 16 |
		     (uint64_t)sid << 32, 0);
	} else {
		uint64_t ce = t + (sid & 0x7f) * 32ull;

		if (page_alloc(d, &dir) || page_alloc(d, &tbl))
			return -ENOMEM;
		put(d, dir, tbl | 1);
		put(d, tbl + 8, dom->did);
		put(d, tbl, dom->root | (2u << 6) | (2u << 2) | 1);
		put(d, ce + 8, 0);                  /* RID_PASID 0 */
		put(d, ce, dir | (2u << 9) | 1);    /* 512 directory entries */
		desc(d, 1 | (3u << 4) | (uint64_t)dom->did << 16 |
		     (uint64_t)sid << 32, 0);
		desc(d, 7 | (1u << 4) | (uint64_t)dom->did << 16, 0);
	}
	desc(d, 2 | (2u << 4) | (uint64_t)dom->did << 16, 0);
	return submit(d);
}

int vtddrv_map(struct vtddrv *d, struct vtddrv_domain *dom, uint64_t iova,
	       uint64_t pa, uint64_t size, unsigned int prot)
{
	int r;

	if (!d || !dom)
		return -EINVAL;
	r = vtdpt_map(&d->pt, &d->ops, dom->root, iova, pa, size, prot);
	if (r || !d->cm)
		return r;
	/* caching mode: not-present entries may be cached; flush the map */
	return psi(d, dom->did, iova, size);
}

int vtddrv_unmap(struct vtddrv *d, struct vtddrv_domain *dom, uint64_t iova,
		 uint64_t size)
{
	uint64_t n = 0;
	int r;

	if (!d || !dom)
		return -EINVAL;
	r = vtdpt_unmap(&d->pt, &d->ops, dom->root, iova, size, &n);
	if (r)
		return r;
	if (dom->policy == VTDDRV_STRICT)
		return psi(d, dom->did, iova, size);
	if (++dom->fq < VTDDRV_FQ_SIZE)
		return 0;
	return vtddrv_flush(d, dom);
}

int vtddrv_flush(struct vtddrv *d, struct vtddrv_domain *dom)
{
	if (!d || !dom)
		return -EINVAL;
	dom->fq = 0;
	d->st.flushes++;
	return dsi(d, dom->did);
}

void vtddrv_stats(const struct vtddrv *d, struct vtddrv_stats *out)
{
	*out = d->st;
}
