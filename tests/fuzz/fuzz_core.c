/*
 * fuzz_core.c - libFuzzer target for the translation core: random
 * sequences of configuration and translation calls checked against a
 * simple flat reference model.
 *
 * Input: one header byte (bit 0: bypass on at start; bits 1-2: IOTLB of
 * 256/1/4/16 entries; bit 3: 2048 instead of 64 mappings per domain), then
 * 8-byte records (struct rec): an opcode byte and seven argument bytes.
 * Each record is one call: map, bulk map, unmap, translate, lookup, DMA
 * read/write, attach, detach, domain and endpoint create/destroy,
 * invalidate, bypass, reserved region, dirty enable/read, mapping walk,
 * or a replacement of the guest-memory region set.  Arguments come from
 * small tables - 64 IOVA pages plus edge values such as 0, the last page
 * of the 64-bit space and the MSI window, sizes that wrap - so that
 * collisions, overlaps and limits are frequent.
 *
 * The model keeps flat arrays: per domain slot its mappings (sorted) and
 * dirty pages, per endpoint slot its RID and PASID attachments and its
 * reserved regions, plus the bypass bit and the memory layout.  Before
 * each call it works out the expected result (where core.h allows
 * several errnos, the set of acceptable ones); after the call the return
 * code, outputs, fault reports (returned and via the callback) and
 * MAP/UNMAP notifier events are compared, then the whole visible state
 * (mappings, domain info, context stats, attachments, reserved regions).
 * Any disagreement prints a message to stderr and calls abort().
 *
 * Where core.h is silent the model follows these rules: reserved regions
 * act only through PAGING domains (not IDENTITY or bypass); an MSI window
 * translates 1:1 and is never RAM (hva NULL, as core.h says); writes
 * through viommu_domain_lookup() mark dirty pages like translate();
 * a DMA range that wraps the address space is -EFAULT without a fault
 * report; a write to read-only RAM is a PERMISSION fault.
 *
 * Guest memory: region A (1 MiB at GPA 0), region B (64 KiB right after
 * it), a hole, region C (64 KiB at 2 MiB), then a hole to the top; all
 * static arrays of this program.  Limits are small (6 domains, 4
 * endpoints, 64 mappings per domain, 2 PASIDs and 3 reserved regions per
 * endpoint) so -ENOSPC (a limit) is reached and modelled.
 *
 * Everything is set up and torn down per input; the target is
 * deterministic and keeps no state between inputs apart from the guest
 * RAM contents, which no check depends on.  Build with -DFUZZ_TRACE to
 * print each decoded record.
 *
 * Two check levels (docs/FUZZING.md): the full one (fuzz_core_full and
 * the replay programs) compares the whole visible state after every
 * state-changing call, walking every mapping of every domain.  The fast
 * one (-DFUZZ_FAST: fuzz_core, what CI runs) checks every call's return
 * code, outputs, faults and events as before, and after each call every
 * domain's info (kind, endpoint count, mapping count, mapped bytes,
 * dirty tracking), every endpoint and the context stats - but walks the
 * mappings only of the domain slot the call targeted; every domain is
 * walked every FAST_FULL_EVERY calls and once more at the end of the
 * input.  A call that corrupts another domain's mappings without
 * changing its counts is so caught later in the same input, not missed.
 */
#include <viommu/viommu.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PAGE ((uint64_t)4096)
#define NDOM 8            /* domain slots */
#define T_NONE (-1)       /* attachment targets: slot, or one of these */
#define T_IDENT NDOM
#define T_BLOCK (NDOM + 1)
#define NEP 6             /* endpoint slots */
#define MAX_DOMAINS 6
#define MAX_EPS 4
#define MAX_MAPS 64       /* default mapping limit per domain */
#define MAP_CAP 2048      /* ... and the large one (header bit 3) */
#define MAX_PASIDS 2
#define MAX_RESV 3
#define DIRTY_CAP 1024    /* model dirty pages per domain */
#define DMA_MAX 16384
#define DMA_PIECES 256
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FAST_FULL_EVERY 32 /* fast mode: full walk every N calls */

#define RAM_A_SIZE (1u << 20)
#define RAM_B_GPA ((uint64_t)RAM_A_SIZE)
#define RAM_B_SIZE (64u << 10)
#define RAM_C_GPA (2ull << 20)
#define RAM_C_SIZE (64u << 10)

#define PERM_ALL (VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC)
#define PROT_ALL (PERM_ALL | VIOMMU_MAP_MMIO)

/* Acceptable-errno sets: bit per errno of interest. */
#define E_INVAL (1u << 0)
#define E_NOTSUP (1u << 1)
#define E_EXIST (1u << 2)
#define E_INUSE (1u << 3)
#define E_NOSPC (1u << 4) /* a limit reached */
#define E_RANGE (1u << 5)
#define E_NOENT (1u << 6)
#define E_BUSY (1u << 7)
#define E_NODEV (1u << 8)
#define E_FAULT (1u << 9)
#define E_ACCES (1u << 10)

static uint8_t ram_a[RAM_A_SIZE];
static uint8_t ram_b[RAM_B_SIZE];
static uint8_t ram_c[RAM_C_SIZE];
static uint8_t ram_c2[RAM_C_SIZE];

/* Guest-memory layouts (bits): B present, C backed by ram_c2, C read-only. */
#define LAY_B (1u << 0)
#define LAY_C2 (1u << 1)
#define LAY_C_RO (1u << 2)
#define LAY_DEFAULT LAY_B

struct rec {
	uint8_t op, a, b, c, d, e, f, g;
};

struct mmapping {
	uint64_t iova, last, gpa;
	uint32_t prot;
};

struct fz;

struct mdom {
	struct viommu_domain *d; /* NULL: slot empty */
	struct viommu_notifier *nt;
	struct fz *fz;
	int slot;
	uint64_t tag;
	struct mmapping *map; /* max_maps entries, kept across reuse */
	int nmap;
	uint64_t bytes;   /* sum of the mappings' sizes (saturated) ... */
	bool bytes_stale; /* ... unless the mappings changed since */
	bool dirty_on;
	bool dirty_lost; /* model set overflowed: dirty contents unchecked */
	uint64_t dirty[DIRTY_CAP]; /* page numbers */
	int ndirty;
};

struct mpasid {
	uint32_t pasid;
	int t;
};

struct mep {
	struct viommu_endpoint *e; /* NULL: slot empty */
	uint32_t id;
	int rid; /* attachment target of the RID */
	struct mpasid pas[MAX_PASIDS];
	int npas;
	struct viommu_resv resv[MAX_RESV]; /* sorted by start */
	int nresv;
};

struct fz {
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct mdom dom[NDOM];
	struct mep ep[NEP];
	bool bypass;
	unsigned int layout; /* LAY_* of the current region set */
	uint32_t max_maps;
	int ndom, nep;
	uint64_t maps, unmaps, faults;
	/* fault callback records of the current operation */
	struct viommu_fault fault_cb;
	int nfault_cb;
	/* notifier events of the current operation */
	struct viommu_event *ev; /* max_maps + 64 entries */
	int *ev_slot;
	int nev;
	/* MAP/UNMAP events the current operation must produce */
	struct viommu_event *want; /* max_maps entries */
	int *want_slot;
	int nwant;
	int opno;
	char desc[200];
	struct rec cur;   /* the record being run (desc is built on failure) */
	int cur_op;       /* its operation, or -1 for set-up/teardown */
	unsigned int walk_mask; /* fast mode: slots to walk after this op */
	uint64_t touch_lo, touch_hi; /* fast mode: IOVAs this op changed */
};

static const uint32_t ep_ids[NEP] = { 0x18, 0x20, 0x0, 0xffffffffu,
				      0x18, 0x108 };

/* ------------------------------------------------------------------ */
/* Reporting                                                          */

static void describe(struct fz *fz);

/* fail() - report a disagreement with the model and abort. */
static void __attribute__((format(printf, 2, 3), noreturn))
fail(struct fz *fz, const char *fmt, ...)
{
	va_list ap;

	describe(fz);
	fprintf(stderr, "fuzz_core: op #%d %s: ", fz->opno, fz->desc);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* errbit() - the E_* bit of a negative errno (0 for anything else). */
static unsigned int errbit(int rc)
{
	static const int errs[] = { EINVAL, EOPNOTSUPP, EEXIST, EADDRINUSE,
				    ENOSPC, ERANGE, ENOENT, EBUSY, ENODEV,
				    EFAULT, EACCES }; /* in E_* bit order */

	for (unsigned int i = 0; i < ARRAY_LEN(errs); i++)
		if (rc == -errs[i])
			return 1u << i;
	return 0;
}

/*
 * expect_rc() - check @rc against the acceptable set: @ok_bits empty
 * means success is expected, otherwise one of the listed errnos.
 */
static void expect_rc(struct fz *fz, int rc, unsigned int ok_bits)
{
	if (!ok_bits) {
		if (rc != 0)
			fail(fz, "expected 0, got %d (%s)", rc, strerror(-rc));
		return;
	}
	if (rc == 0 || !(errbit(rc) & ok_bits))
		fail(fz, "expected an error in set 0x%x, got %d", ok_bits, rc);
}

/* ------------------------------------------------------------------ */
/* Callbacks                                                          */

/* on_fault() - the context's fault callback: record it. */
static void on_fault(void *opaque, const struct viommu_fault *f)
{
	struct fz *fz = opaque;

	fz->fault_cb = *f;
	fz->nfault_cb++;
}

/* on_event() - per-domain notifier: record the event for the op check. */
static void on_event(void *opaque, const struct viommu_event *ev)
{
	struct mdom *md = opaque;
	struct fz *fz = md->fz;

	if (ev->domain != md->d)
		fail(fz, "event for domain %p on notifier of slot %d",
		     (void *)ev->domain, md->slot);
	if (fz->nev >= (int)fz->max_maps + 64)
		fail(fz, "more than %u notifier events in one op",
		     fz->max_maps + 64);
	fz->ev[fz->nev] = *ev;
	fz->ev_slot[fz->nev] = md->slot;
	fz->nev++;
}

/* ------------------------------------------------------------------ */
/* Argument tables                                                    */

static const uint64_t iova_edges[32] = {
	0, UINT64_MAX - 0xfff, UINT64_MAX - 0x1fff, UINT64_MAX,
	0xfee00000, 0xfeefffff, 0xfef00000, 0x100000000ull - PAGE,
	1ull << 48, (1ull << 63) - PAGE, 1ull << 63, 63 * PAGE + 0x800,
	64 * PAGE, 65 * PAGE, UINT64_MAX - 0x7ff, 0x1000,
	0x7ff, 0x800, 31 * PAGE, 32 * PAGE,
	0, UINT64_MAX - 0xfff, 0x200000, 0x1fffff,
	0xfee00000, 0, 16 * PAGE, 17 * PAGE,
	15 * PAGE, UINT64_MAX - 0xfff, 0x3f000, 0x40000,
};

/* iova_sel() - one of 64 pages at 0, or an edge value. */
static uint64_t iova_sel(uint8_t b)
{
	if (b < 224)
		return (uint64_t)(b % 64) * PAGE;
	return iova_edges[b - 224];
}

static const uint64_t size_edges[26] = {
	0, UINT64_MAX, 1ull << 63, 256 * PAGE, 1u << 20, 2 * PAGE + 1,
	PAGE - 1, 0x1000000, 0x800, 1, 2, 0x100000000ull,
	0xfeefffff - 0xfee00000 + 1, PAGE / 2, 3 * PAGE - 0x10, 0x10,
	0, UINT64_MAX - 0xfff, 64 * PAGE, 128 * PAGE, 8 * PAGE, 0x2000,
	UINT64_MAX - PAGE * 64 + 1, 4 * PAGE, 0x40000, 0x3000,
};

/*
 * size_sel() - a range size: mostly 1..8 or 1..64 pages, some byte sizes,
 * some that wrap (0 means the whole space from iova).
 */
static uint64_t size_sel(uint8_t c)
{
	if (c < 160)
		return (uint64_t)(c % 8 + 1) * PAGE;
	if (c < 200)
		return (uint64_t)(c % 64 + 1) * PAGE;
	if (c < 230)
		return (uint64_t)(c - 199) * 0x100;
	return size_edges[c - 230];
}

static const uint64_t gpa_edges[32] = {
	UINT64_MAX - 0xfff, UINT64_MAX - 0xffff, 1ull << 40, 0xfee00000,
	RAM_A_SIZE - 0x800, RAM_A_SIZE - PAGE, RAM_B_GPA + RAM_B_SIZE - PAGE,
	RAM_C_GPA - PAGE, RAM_C_GPA, RAM_C_GPA + RAM_C_SIZE - 0x10, 0x123,
	UINT64_MAX, 0, RAM_A_SIZE - 2 * PAGE, RAM_B_GPA, 0x7ffff,
	RAM_C_GPA + RAM_C_SIZE, 0x180000, 0xfffff000, 0x10,
	UINT64_MAX - 0x3fff, 1, 0x1000, RAM_A_SIZE - 0x10,
	0, 0x40000, RAM_B_GPA - 0x2000, RAM_C_GPA - 0x800,
	3ull << 20, 0xf000, RAM_C_GPA + 0x8000, 0x2000,
};

/* gpa_sel() - pages spread over A, B, the hole and C, or an edge value. */
static uint64_t gpa_sel(uint8_t d)
{
	if (d < 224)
		return (uint64_t)((d * 5u) % 560) * PAGE;
	return gpa_edges[d - 224];
}

/* prot_sel() - any mix of R/W/X/MMIO; rarely an unknown bit. */
static uint32_t prot_sel(uint8_t e)
{
	uint32_t prot = e & PROT_ALL;

	if ((e >> 4) == 0xf)
		prot |= 1u << (4 + (e & 3));
	return prot;
}

static const size_t len_tab[16] = {
	1, 2, 8, 64, 512, 4095, 4096, 4097, 8192, 16384, 65536, 1u << 20,
	2u << 20, SIZE_MAX, 0, 3000,
};

static const unsigned int access_tab[8] = {
	VIOMMU_READ, VIOMMU_WRITE, VIOMMU_EXEC, VIOMMU_READ | VIOMMU_WRITE,
	VIOMMU_READ, VIOMMU_WRITE, 0, 8,
};

static const uint32_t pasid_tab[8] = {
	VIOMMU_NO_PASID, VIOMMU_NO_PASID, VIOMMU_NO_PASID, 1, 2, 3,
	VIOMMU_PASID_MAX, VIOMMU_PASID_MAX + 1,
};

static const size_t dma_len_tab[8] = {
	1, 16, 100, 4096, 4097, 8192, 12000, DMA_MAX,
};

/* ------------------------------------------------------------------ */
/* Model helpers                                                      */

/* overlap() - whether inclusive ranges [a0,a1] and [b0,b1] meet. */
static bool overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return a0 <= b1 && b0 <= a1;
}

/* sat_add() - saturating addition. */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/* range_bytes() - bytes in [iova, last], saturating at UINT64_MAX. */
static uint64_t range_bytes(uint64_t iova, uint64_t last)
{
	return sat_add(last - iova, 1);
}

/* clip() - @len limited so that [iova, iova + len) ends by @last. */
static size_t clip(size_t len, uint64_t iova, uint64_t last)
{
	if ((uint64_t)len - 1 > last - iova)
		return (size_t)(last - iova + 1);
	return len;
}

/*
 * ram_find() - the host address of @gpa in guest RAM, the bytes to the end
 * of its region and whether it is read-only; false (with *@avail the bytes
 * to the next region, or 0 for "no more RAM above") when @gpa is a hole.
 */
static bool ram_find(unsigned int lay, uint64_t gpa, uint8_t **hva,
		     uint64_t *avail, bool *ro)
{
	*ro = false;
	if (gpa < RAM_A_SIZE) {
		*hva = ram_a + gpa;
		*avail = RAM_A_SIZE - gpa;
		return true;
	}
	if ((lay & LAY_B) && gpa < RAM_B_GPA + RAM_B_SIZE) {
		*hva = ram_b + (gpa - RAM_B_GPA);
		*avail = RAM_B_GPA + RAM_B_SIZE - gpa;
		return true;
	}
	if (gpa < RAM_C_GPA) {
		*avail = RAM_C_GPA - gpa;
		return false;
	}
	if (gpa < RAM_C_GPA + RAM_C_SIZE) {
		*hva = (lay & LAY_C2 ? ram_c2 : ram_c) + (gpa - RAM_C_GPA);
		*avail = RAM_C_GPA + RAM_C_SIZE - gpa;
		*ro = lay & LAY_C_RO;
		return true;
	}
	*avail = 0;
	return false;
}

/* target_dom() - the viommu domain a target names (NULL: empty slot). */
static struct viommu_domain *target_dom(struct fz *fz, int t)
{
	if (t == T_IDENT)
		return viommu_ctx_identity_domain(fz->ctx);
	if (t == T_BLOCK)
		return viommu_ctx_blocked_domain(fz->ctx);
	if (t >= 0 && t < NDOM)
		return fz->dom[t].d;
	return NULL;
}

/* find_map() - index of the mapping of @md containing @iova, or -1. */
static int find_map(const struct mdom *md, uint64_t iova)
{
	for (int i = 0; i < md->nmap; i++)
		if (md->map[i].iova <= iova && iova <= md->map[i].last)
			return i;
	return -1;
}

/*
 * first_from() - index of the first model mapping of @md ending at or
 * after @iova (md->nmap if none).  The mappings are sorted and disjoint,
 * so their ends are sorted too: a binary search.
 */
static int first_from(const struct mdom *md, uint64_t iova)
{
	int lo = 0, hi = md->nmap;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (md->map[mid].last < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* touch() - note [iova, last] as changed by this call (fast checks). */
static void touch(struct fz *fz, uint64_t iova, uint64_t last)
{
	if (iova < fz->touch_lo)
		fz->touch_lo = iova;
	if (last > fz->touch_hi)
		fz->touch_hi = last;
}

/* find_pasid() - index of @pasid in @me's table, or -1. */
static int find_pasid(const struct mep *me, uint32_t pasid)
{
	for (int i = 0; i < me->npas; i++)
		if (me->pas[i].pasid == pasid)
			return i;
	return -1;
}

/* ep_attached_to() - whether the RID or a PASID of @me is on slot @t. */
static bool ep_attached_to(const struct mep *me, int t)
{
	if (!me->e)
		return false;
	if (me->rid == t)
		return true;
	for (int i = 0; i < me->npas; i++)
		if (me->pas[i].t == t)
			return true;
	return false;
}

/* dom_endpoints() - RIDs and PASIDs attached to target @t. */
static uint32_t dom_endpoints(const struct fz *fz, int t)
{
	uint32_t n = 0;

	for (int i = 0; i < NEP; i++) {
		const struct mep *me = &fz->ep[i];

		if (!me->e)
			continue;
		n += me->rid == t;
		for (int j = 0; j < me->npas; j++)
			n += me->pas[j].t == t;
	}
	return n;
}

/* resv_hits_maps() - whether [s, l] overlaps a mapping of slot @t. */
static bool resv_hits_maps(const struct fz *fz, int t, uint64_t s,
			   uint64_t l)
{
	const struct mdom *md;

	if (t < 0 || t >= NDOM)
		return false;
	md = &fz->dom[t];
	for (int i = 0; i < md->nmap; i++)
		if (overlap(s, l, md->map[i].iova, md->map[i].last))
			return true;
	return false;
}

/* ep_resv_hits_dom() - whether a reserved region of @me meets slot @t. */
static bool ep_resv_hits_dom(const struct fz *fz, const struct mep *me,
			     int t)
{
	for (int i = 0; i < me->nresv; i++)
		if (resv_hits_maps(fz, t, me->resv[i].start,
				   me->resv[i].last))
			return true;
	return false;
}

/* dirty_has() - whether page number @p is dirty in the model. */
static bool dirty_has(const struct mdom *md, uint64_t p)
{
	for (int i = 0; i < md->ndirty; i++)
		if (md->dirty[i] == p)
			return true;
	return false;
}

/* dirty_mark() - add pages [iova, iova + len) to @md's dirty set. */
static void dirty_mark(struct mdom *md, uint64_t iova, uint64_t len)
{
	uint64_t p = iova / PAGE, last = (iova + (len - 1)) / PAGE;

	for (;; p++) {
		if (!dirty_has(md, p)) {
			if (md->ndirty >= DIRTY_CAP) {
				md->dirty_lost = true;
				return;
			}
			md->dirty[md->ndirty++] = p;
		}
		if (p == last)
			break;
	}
}

/* dirty_clear() - drop model pages [first, last] (page numbers). */
static void dirty_clear(struct mdom *md, uint64_t first, uint64_t last)
{
	int j = 0;

	for (int i = 0; i < md->ndirty; i++)
		if (md->dirty[i] < first || md->dirty[i] > last)
			md->dirty[j++] = md->dirty[i];
	md->ndirty = j;
}

/* want_event() - the current op must produce this MAP/UNMAP event. */
static void want_event(struct fz *fz, int slot, uint32_t type,
		       const struct mmapping *m)
{
	struct viommu_event *w = &fz->want[fz->nwant];

	memset(w, 0, sizeof(*w));
	w->type = type;
	w->domain = fz->dom[slot].d;
	w->tag = fz->dom[slot].tag;
	w->iova = m->iova;
	w->last = m->last;
	w->gpa = m->gpa;
	w->prot = m->prot;
	fz->want_slot[fz->nwant] = slot;
	fz->nwant++;
}

/* ------------------------------------------------------------------ */
/* Translation model                                                  */

/* struct xres - what the model expects of one translation. */
struct xres {
	int rc;
	struct viommu_xlate x;
	struct viommu_fault f;
	int t; /* domain target used, T_NONE for bypass */
};

/* xfault() - expect a fault of @reason. */
static void xfault(struct xres *r, uint32_t reason, uint64_t tag)
{
	r->rc = -EFAULT;
	r->f.reason = reason;
	r->f.domain_tag = tag;
}

/*
 * xram() - fill gpa/hva/len/perm for a target address that may be RAM
 * (read-only RAM loses VIOMMU_WRITE), then check @access against the
 * resulting permissions.
 */
static void xram(const struct fz *fz, struct xres *r, uint64_t gpa,
		 size_t len, uint32_t perm, unsigned int access, uint64_t tag)
{
	uint8_t *hva = NULL;
	uint64_t avail;
	bool ro;

	r->x.gpa = gpa;
	r->x.len = len;
	r->x.perm = perm;
	if (perm & VIOMMU_MAP_MMIO) {
		/* device memory: no host pointer, whole mapping */
	} else if (ram_find(fz->layout, gpa, &hva, &avail, &ro)) {
		r->x.hva = hva;
		if (len > avail)
			r->x.len = avail;
		if (ro)
			r->x.perm &= ~VIOMMU_WRITE;
	} else if (avail && len > avail) {
		r->x.len = avail;
	}
	if ((r->x.perm & access) != access)
		xfault(r, VIOMMU_FAULT_PERMISSION, tag);
}

/* xident() - identity translation (IDENTITY domain or bypass). */
static void xident(const struct fz *fz, struct xres *r, uint64_t iova,
		   size_t len, unsigned int access)
{
	xram(fz, r, iova, clip(len, iova, UINT64_MAX), PERM_ALL, access, 0);
	r->x.flags = VIOMMU_XLATE_BYPASS;
}

/* xpaging() - translation through the mappings of slot @t. */
static void xpaging(struct fz *fz, struct xres *r, int t, uint64_t iova,
		    size_t len, unsigned int access)
{
	const struct mdom *md = &fz->dom[t];
	const struct mmapping *m;
	int i = find_map(md, iova);

	if (i < 0) {
		xfault(r, VIOMMU_FAULT_NO_MAPPING, md->tag);
		return;
	}
	m = &md->map[i];
	xram(fz, r, m->gpa + (iova - m->iova), clip(len, iova, m->last),
	     m->prot, access, md->tag);
}

/*
 * model_xlate() - expected result of viommu_translate(); @r->rc is
 * -EINVAL for bad arguments.
 */
static void model_xlate(struct fz *fz, int e, uint32_t pasid, uint64_t iova,
			size_t len, unsigned int access, struct xres *r)
{
	const struct mep *me = &fz->ep[e];
	int t;

	memset(r, 0, sizeof(*r));
	r->t = T_NONE;
	if (len == 0 || !access || (access & ~PERM_ALL) ||
	    (pasid != VIOMMU_NO_PASID && pasid > VIOMMU_PASID_MAX)) {
		r->rc = -EINVAL;
		return;
	}
	r->f.access = access;
	r->f.endpoint = me->id;
	r->f.pasid = pasid;
	r->f.address = iova;
	if (pasid == VIOMMU_NO_PASID) {
		t = me->rid;
	} else {
		int i = find_pasid(me, pasid);

		if (i < 0) {
			xfault(r, VIOMMU_FAULT_NO_PASID, 0);
			return;
		}
		t = me->pas[i].t;
	}
	r->t = t;
	if (t == T_NONE && !fz->bypass) {
		xfault(r, VIOMMU_FAULT_UNATTACHED, 0);
		return;
	}
	if (t == T_BLOCK) {
		xfault(r, VIOMMU_FAULT_BLOCKED, 0);
		return;
	}
	if (t == T_NONE || t == T_IDENT) {
		/* reserved regions only constrain PAGING domains */
		xident(fz, r, iova, len, access);
		return;
	}
	for (int i = 0; i < me->nresv; i++) {
		const struct viommu_resv *rv = &me->resv[i];

		if (iova < rv->start || iova > rv->last)
			continue;
		if (rv->type == VIOMMU_RESV_RESERVED) {
			xfault(r, VIOMMU_FAULT_RESERVED, fz->dom[t].tag);
			return;
		}
		/* MSI doorbell: 1:1, never RAM (core.h), one window long */
		r->x.gpa = iova;
		r->x.len = clip(len, iova, rv->last);
		r->x.perm = VIOMMU_READ | VIOMMU_WRITE;
		r->x.flags = VIOMMU_XLATE_MSI;
		return;
	}
	xpaging(fz, r, t, iova, len, access);
}

/* xlate_apply() - model side effects of a successful write translation. */
static void xlate_apply(struct fz *fz, const struct xres *r, uint64_t iova,
			unsigned int access)
{
	struct mdom *md;

	if (r->rc || !(access & VIOMMU_WRITE) || r->t < 0 || r->t >= NDOM)
		return;
	md = &fz->dom[r->t];
	if (md->dirty_on && !(r->x.flags & VIOMMU_XLATE_MSI))
		dirty_mark(md, iova, r->x.len);
}

/* cmp_xlate() - compare a successful translation with the model. */
static void cmp_xlate(struct fz *fz, const struct viommu_xlate *got,
		      const struct viommu_xlate *want)
{
	if (got->gpa != want->gpa || got->hva != want->hva ||
	    got->len != want->len || got->perm != want->perm ||
	    got->flags != want->flags)
		fail(fz, "xlate got gpa 0x%" PRIx64 " hva %p len %zu perm 0x%x"
		     " flags 0x%x, want gpa 0x%" PRIx64 " hva %p len %zu"
		     " perm 0x%x flags 0x%x", got->gpa, got->hva, got->len,
		     got->perm, got->flags, want->gpa, want->hva, want->len,
		     want->perm, want->flags);
}

/* cmp_fault() - compare a fault record with the model. */
static void cmp_fault(struct fz *fz, const char *what,
		      const struct viommu_fault *got,
		      const struct viommu_fault *want)
{
	if (got->reason != want->reason || got->access != want->access ||
	    got->endpoint != want->endpoint || got->pasid != want->pasid ||
	    got->address != want->address ||
	    got->domain_tag != want->domain_tag)
		fail(fz, "%s fault got reason %u access %u ep 0x%x pasid 0x%x"
		     " addr 0x%" PRIx64 " tag 0x%" PRIx64 ", want reason %u"
		     " access %u ep 0x%x pasid 0x%x addr 0x%" PRIx64
		     " tag 0x%" PRIx64, what, got->reason, got->access,
		     got->endpoint, got->pasid, got->address, got->domain_tag,
		     want->reason, want->access, want->endpoint, want->pasid,
		     want->address, want->domain_tag);
}

/* check_fault_cb() - the callback ran once with @want, or not at all. */
static void check_fault_cb(struct fz *fz, const struct viommu_fault *want)
{
	if (!want) {
		if (fz->nfault_cb)
			fail(fz, "fault callback ran %d times, want 0",
			     fz->nfault_cb);
		return;
	}
	if (fz->nfault_cb != 1)
		fail(fz, "fault callback ran %d times, want 1", fz->nfault_cb);
	cmp_fault(fz, "callback", &fz->fault_cb, want);
}

/* ------------------------------------------------------------------ */
/* Operations                                                         */

static void check_events(struct fz *fz, bool quiet);

/* op_map() - map on target @t (a slot or a static domain). */
static void op_map(struct fz *fz, int t, uint64_t iova, uint64_t last,
		   uint64_t gpa, uint32_t prot)
{
	struct viommu_domain *d = target_dom(fz, t);
	unsigned int args = 0, state = 0;
	struct mdom *md;
	int rc, i;

	if (!d)
		return;
	if (iova > last || gpa + (last - iova) < gpa || (prot & ~PROT_ALL))
		args |= E_INVAL;
	if (t >= NDOM)
		args |= E_NOTSUP;
	rc = viommu_domain_map(d, iova, last, gpa, prot);
	if (args) {
		expect_rc(fz, rc, args);
		return;
	}
	md = &fz->dom[t];
	i = first_from(md, iova);
	if (i < md->nmap && md->map[i].iova <= last)
		state |= E_EXIST;
	for (i = 0; i < NEP; i++) {
		const struct mep *me = &fz->ep[i];

		if (!ep_attached_to(me, t))
			continue;
		for (int j = 0; j < me->nresv; j++)
			if (overlap(iova, last, me->resv[j].start,
				    me->resv[j].last))
				state |= E_INUSE;
	}
	if ((uint32_t)md->nmap >= fz->max_maps)
		state |= E_NOSPC;
	expect_rc(fz, rc, state);
	if (state)
		return;
	i = first_from(md, iova); /* no overlap: the insertion point */
	memmove(&md->map[i + 1], &md->map[i],
		(size_t)(md->nmap - i) * sizeof(md->map[0]));
	md->map[i] = (struct mmapping){ iova, last, gpa, prot };
	md->nmap++;
	md->bytes_stale = true;
	touch(fz, iova, last);
	fz->maps++;
	want_event(fz, t, VIOMMU_EVENT_MAP, &md->map[i]);
}

/* op_unmap() - unmap [iova, last] from target @t. */
static void op_unmap(struct fz *fz, int t, uint64_t iova, uint64_t last,
		     bool want_bytes)
{
	struct viommu_domain *d = target_dom(fz, t);
	uint64_t bytes = 0xdeadbeef, sum = 0;
	unsigned int args = 0;
	bool straddle = false;
	struct mdom *md;
	int rc, i, j, n = 0;

	if (!d)
		return;
	if (iova > last)
		args |= E_INVAL;
	if (t >= NDOM)
		args |= E_NOTSUP;
	rc = viommu_domain_unmap(d, iova, last, want_bytes ? &bytes : NULL);
	if (args) {
		expect_rc(fz, rc, args);
		return;
	}
	md = &fz->dom[t];
	for (i = first_from(md, iova); i < md->nmap; i++) {
		const struct mmapping *m = &md->map[i];

		if (m->iova > last)
			break;
		if (m->iova < iova || m->last > last)
			straddle = true;
		n++;
	}
	if (straddle || !n) {
		expect_rc(fz, rc, straddle ? E_RANGE : E_NOENT);
		return;
	}
	expect_rc(fz, rc, 0);
	for (i = 0, j = 0; i < md->nmap; i++) {
		const struct mmapping *m = &md->map[i];

		if (overlap(iova, last, m->iova, m->last)) {
			sum = sat_add(sum, range_bytes(m->iova, m->last));
			want_event(fz, t, VIOMMU_EVENT_UNMAP, m);
		} else {
			md->map[j++] = *m;
		}
	}
	md->nmap = j;
	md->bytes_stale = true;
	fz->unmaps++;
	touch(fz, iova, last);
	if (want_bytes && bytes != sum)
		fail(fz, "unmapped %" PRIu64 " bytes, want %" PRIu64, bytes,
		     sum);
}

/* op_translate() - viommu_translate() on endpoint slot @e. */
static void op_translate(struct fz *fz, int e, uint32_t pasid, uint64_t iova,
			 size_t len, unsigned int access, bool want_fault)
{
	struct viommu_fault f;
	struct viommu_xlate x;
	struct xres r;
	int rc;

	if (!fz->ep[e].e)
		return;
	model_xlate(fz, e, pasid, iova, len, access, &r);
	memset(&f, 0xa5, sizeof(f));
	rc = viommu_translate(fz->ep[e].e, pasid, iova, len, access, &x,
			      want_fault ? &f : NULL);
	if (rc != r.rc)
		fail(fz, "translate returned %d, want %d (reason %u)", rc,
		     r.rc, r.f.reason);
	if (rc == 0) {
		cmp_xlate(fz, &x, &r.x);
		xlate_apply(fz, &r, iova, access);
	} else if (rc == -EFAULT && want_fault) {
		cmp_fault(fz, "returned", &f, &r.f);
	}
	if (rc == -EFAULT)
		fz->faults++;
	check_fault_cb(fz, rc == -EFAULT ? &r.f : NULL);
}

/* op_lookup() - viommu_domain_lookup() on target @t. */
static void op_lookup(struct fz *fz, int t, uint64_t iova, size_t len,
		      unsigned int access)
{
	struct viommu_domain *d = target_dom(fz, t);
	struct viommu_xlate x;
	struct xres r;
	int rc;

	if (!d)
		return;
	memset(&r, 0, sizeof(r));
	if (len == 0 || !access || (access & ~PERM_ALL))
		r.rc = -EINVAL;
	else if (t == T_BLOCK)
		r.rc = -EFAULT;
	else if (t == T_IDENT)
		xident(fz, &r, iova, len, access);
	else
		xpaging(fz, &r, t, iova, len, access);
	if (r.rc == -EFAULT && r.f.reason == VIOMMU_FAULT_PERMISSION)
		r.rc = -EACCES;
	rc = viommu_domain_lookup(d, iova, len, access, &x);
	if (rc != r.rc)
		fail(fz, "lookup returned %d, want %d", rc, r.rc);
	if (rc == 0) {
		cmp_xlate(fz, &x, &r.x);
		r.t = t; /* lookup writes mark dirty pages too */
		xlate_apply(fz, &r, iova, access);
	}
	check_fault_cb(fz, NULL);
}

/* struct piece - one translated piece of a DMA transfer. */
struct piece {
	uint8_t *hva;
	size_t off, len;
};

/* pieces_alias() - whether two pieces share guest RAM bytes. */
static bool pieces_alias(const struct piece *p, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (p[i].hva < p[j].hva + p[j].len &&
			    p[j].hva < p[i].hva + p[i].len)
				return true;
	return false;
}

/*
 * op_dma() - viommu_dma_read/write() of @len bytes: the model translates
 * piece by piece; the copied bytes are checked against guest RAM.
 */
static void op_dma(struct fz *fz, int e, uint32_t pasid, uint64_t iova,
		   size_t len, bool write, uint8_t seed)
{
	static uint8_t buf[DMA_MAX];
	static struct piece pc[DMA_PIECES];
	unsigned int access = write ? VIOMMU_WRITE : VIOMMU_READ;
	struct xres r = { 0 };
	size_t off = 0;
	int rc, want = 0, n = 0;

	if (!fz->ep[e].e)
		return;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7);
	if (pasid != VIOMMU_NO_PASID && pasid > VIOMMU_PASID_MAX)
		want = -EINVAL;
	else if (iova + (len - 1) < iova)
		want = -EFAULT; /* wraps: not guest RAM, no fault report */
	while (!want && off < len) {
		model_xlate(fz, e, pasid, iova + off, len - off, access, &r);
		xlate_apply(fz, &r, iova + off, access);
		if (r.rc || !r.x.hva) {
			want = r.rc ? r.rc : -EFAULT;
			break;
		}
		if (n < DMA_PIECES)
			pc[n] = (struct piece){ r.x.hva, off, r.x.len };
		n++;
		off += r.x.len;
	}
	rc = write ? viommu_dma_write(fz->ep[e].e, pasid, iova, buf, len)
		   : viommu_dma_read(fz->ep[e].e, pasid, iova, buf, len);
	if (rc != want)
		fail(fz, "dma %s returned %d, want %d",
		     write ? "write" : "read", rc, want);
	if (rc == -EFAULT && r.rc)
		fz->faults++;
	check_fault_cb(fz, rc == -EFAULT && r.rc ? &r.f : NULL);
	if ((rc && rc != -EFAULT) || n > DMA_PIECES ||
	    (write && pieces_alias(pc, n)))
		return;
	for (int i = 0; i < n; i++)
		if (memcmp(buf + pc[i].off, pc[i].hva, pc[i].len))
			fail(fz, "dma %s data differs at iova 0x%" PRIx64,
			     write ? "write" : "read", iova + pc[i].off);
}

/* op_attach() - attach the RID or @pasid of endpoint @e to target @t. */
static void op_attach(struct fz *fz, int e, uint32_t pasid, int t)
{
	struct viommu_domain *d = target_dom(fz, t);
	struct mep *me = &fz->ep[e];
	unsigned int bits = 0;
	int rc, i;

	if (!me->e || !d)
		return;
	i = pasid == VIOMMU_NO_PASID ? -1 : find_pasid(me, pasid);
	if (pasid != VIOMMU_NO_PASID && pasid > VIOMMU_PASID_MAX) {
		bits = E_INVAL;
	} else {
		if (t < NDOM && ep_resv_hits_dom(fz, me, t))
			bits |= E_INVAL;
		if (pasid != VIOMMU_NO_PASID && i < 0 &&
		    me->npas >= MAX_PASIDS)
			bits |= E_NOSPC;
	}
	rc = viommu_endpoint_attach(me->e, pasid, d);
	expect_rc(fz, rc, bits);
	if (bits)
		return;
	if (pasid == VIOMMU_NO_PASID)
		me->rid = t;
	else if (i >= 0)
		me->pas[i].t = t;
	else
		me->pas[me->npas++] = (struct mpasid){ pasid, t };
}

/* op_detach() - detach the RID or @pasid of endpoint @e. */
static void op_detach(struct fz *fz, int e, uint32_t pasid)
{
	struct mep *me = &fz->ep[e];
	unsigned int bits = 0;
	int rc, i = -1;

	if (!me->e)
		return;
	if (pasid != VIOMMU_NO_PASID && pasid > VIOMMU_PASID_MAX)
		bits = E_INVAL;
	else if (pasid == VIOMMU_NO_PASID && me->rid == T_NONE)
		bits = E_NOENT;
	else if (pasid != VIOMMU_NO_PASID && (i = find_pasid(me, pasid)) < 0)
		bits = E_NOENT;
	rc = viommu_endpoint_detach(me->e, pasid);
	expect_rc(fz, rc, bits);
	if (bits)
		return;
	if (pasid == VIOMMU_NO_PASID) {
		me->rid = T_NONE;
		return;
	}
	me->pas[i] = me->pas[--me->npas];
}

/* op_dom_create() - create a domain in empty slot @s (or a bad kind). */
static void op_dom_create(struct fz *fz, int s, uint8_t kind_sel)
{
	struct viommu_domain_config cfg = { 0 };
	struct mdom *md = &fz->dom[s];
	struct mmapping *map = md->map;
	struct viommu_domain *d = NULL;
	unsigned int bits = 0;
	int rc;

	if (md->d)
		return;
	cfg.kind = VIOMMU_DOMAIN_PAGING;
	cfg.tag = ((uint64_t)fz->opno << 8) | (uint64_t)s;
	if ((kind_sel & 7) == 7)
		cfg.kind = VIOMMU_DOMAIN_IDENTITY;
	else if ((kind_sel & 7) == 6)
		cfg.kind = VIOMMU_DOMAIN_NESTED; /* no parent, no s1 */
	if (cfg.kind != VIOMMU_DOMAIN_PAGING)
		bits = E_INVAL;
	else if (fz->ndom >= MAX_DOMAINS)
		bits = E_NOSPC;
	rc = viommu_domain_create(fz->ctx, &cfg, &d);
	expect_rc(fz, rc, bits);
	if (bits)
		return;
	memset(md, 0, sizeof(*md));
	md->map = map;
	md->d = d;
	md->fz = fz;
	md->slot = s;
	md->tag = cfg.tag;
	fz->ndom++;
	if (viommu_domain_tag(d) != cfg.tag ||
	    viommu_domain_kind(d) != VIOMMU_DOMAIN_PAGING)
		fail(fz, "new domain has wrong tag or kind");
	rc = viommu_notifier_add(d, 0x3f, on_event, md, &md->nt);
	if (rc)
		fail(fz, "notifier_add returned %d", rc);
}

/* op_dom_destroy() - destroy slot @t's domain or try a static one. */
static void op_dom_destroy(struct fz *fz, int t)
{
	struct viommu_domain *d = target_dom(fz, t);
	unsigned int bits = 0;
	int rc;

	if (!d)
		return;
	if (t >= NDOM)
		bits = E_INVAL;
	else if (dom_endpoints(fz, t))
		bits = E_BUSY;
	if (!bits) {
		/* Remove our notifier first; DESTROY events are not
		 * checked. */
		viommu_notifier_remove(fz->dom[t].nt);
		fz->dom[t].nt = NULL;
	}
	rc = viommu_domain_destroy(d);
	expect_rc(fz, rc, bits);
	if (bits)
		return;
	fz->dom[t].d = NULL;
	fz->dom[t].nmap = 0;
	fz->dom[t].bytes_stale = true;
	fz->ndom--;
}

/* op_invalidate() - invalidate a range, a domain, or everything. */
static void op_invalidate(struct fz *fz, int t, uint8_t how, uint64_t iova,
			  uint64_t last)
{
	struct viommu_domain *d = target_dom(fz, t);
	int rc;

	if (how % 4 == 3) {
		rc = viommu_ctx_invalidate_all(fz->ctx);
		expect_rc(fz, rc, 0);
		return;
	}
	if (!d || t >= NDOM)
		return;
	if (how % 4 == 2) {
		rc = viommu_domain_invalidate_all(d);
		expect_rc(fz, rc, 0);
		return;
	}
	rc = viommu_domain_invalidate(d, iova, last);
	expect_rc(fz, rc, iova > last ? E_INVAL : 0);
}

/* op_bypass() - switch bypass of unattached endpoints. */
static void op_bypass(struct fz *fz, bool on)
{
	expect_rc(fz, viommu_ctx_set_bypass(fz->ctx, on), 0);
	fz->bypass = on;
}

/* op_add_resv() - add a reserved region to endpoint @e. */
static void op_add_resv(struct fz *fz, int e, uint64_t start, uint64_t last,
			uint32_t type)
{
	struct mep *me = &fz->ep[e];
	unsigned int bits = 0;
	int rc, i;

	if (!me->e)
		return;
	if (start > last || type > VIOMMU_RESV_MSI) {
		bits = E_INVAL;
	} else {
		for (i = 0; i < me->nresv; i++) {
			if (overlap(start, last, me->resv[i].start,
				    me->resv[i].last))
				bits |= E_INVAL;
			if (type == VIOMMU_RESV_MSI &&
			    me->resv[i].type == VIOMMU_RESV_MSI)
				bits |= E_INVAL;
		}
		if (resv_hits_maps(fz, me->rid, start, last))
			bits |= E_INVAL;
		for (i = 0; i < me->npas; i++)
			if (resv_hits_maps(fz, me->pas[i].t, start, last))
				bits |= E_INVAL;
		if (me->nresv >= MAX_RESV)
			bits |= E_NOSPC;
	}
	rc = viommu_endpoint_add_resv(me->e, start, last, type);
	expect_rc(fz, rc, bits);
	if (bits)
		return;
	for (i = me->nresv; i > 0 && me->resv[i - 1].start > start; i--)
		me->resv[i] = me->resv[i - 1];
	me->resv[i] = (struct viommu_resv){ start, last, type };
	me->nresv++;
}

/* op_dirty_enable() - start or stop dirty tracking on target @t. */
static void op_dirty_enable(struct fz *fz, int t, bool on)
{
	struct viommu_domain *d = target_dom(fz, t);
	struct mdom *md;
	int rc;

	if (!d)
		return;
	rc = viommu_domain_dirty_enable(d, on);
	if (t >= NDOM) {
		expect_rc(fz, rc, E_NOTSUP);
		return;
	}
	expect_rc(fz, rc, 0);
	md = &fz->dom[t];
	if (on) {
		md->ndirty = 0;
		md->dirty_lost = false;
	}
	md->dirty_on = on;
}

/*
 * op_dirty_read() - read the dirty bitmap of @npages pages at @iova into
 * a prefilled buffer of @words words (the word after it is a canary).
 */
static void op_dirty_read(struct fz *fz, int t, uint64_t iova,
			  uint64_t npages, size_t words, uint32_t flags,
			  uint64_t fill)
{
	struct viommu_domain *d = target_dom(fz, t);
	uint64_t bm[10], last = iova + npages * PAGE - 1;
	unsigned int bits = 0;
	struct mdom *md;
	int rc;

	if (!d)
		return;
	for (size_t i = 0; i < ARRAY_LEN(bm); i++)
		bm[i] = fill;
	if ((iova & (PAGE - 1)) || iova > last ||
	    ((last + 1) & (PAGE - 1)) ||
	    words * 64 < npages ||
	    (flags & ~VIOMMU_DIRTY_NO_CLEAR))
		bits |= E_INVAL;
	if (t >= NDOM)
		bits |= E_NOTSUP;
	else if (!fz->dom[t].dirty_on)
		bits |= E_NODEV;
	rc = viommu_domain_dirty_read(d, iova, last, bm, words, flags);
	expect_rc(fz, rc, bits);
	for (size_t i = words; i < ARRAY_LEN(bm); i++)
		if (bm[i] != fill)
			fail(fz, "dirty_read wrote word %zu beyond %zu", i,
			     words);
	if (bits)
		return;
	md = &fz->dom[t];
	for (uint64_t p = 0; p < npages && !md->dirty_lost; p++) {
		bool want = dirty_has(md, iova / PAGE + p) ||
			    ((fill >> (p % 64)) & 1);
		bool got = (bm[p / 64] >> (p % 64)) & 1;

		if (got != want)
			fail(fz, "dirty bit of page 0x%" PRIx64 " is %d, want"
			     " %d", iova + p * PAGE, got, want);
	}
	if (!(flags & VIOMMU_DIRTY_NO_CLEAR))
		dirty_clear(md, iova / PAGE, last / PAGE);
}

/* op_ep_create() - create the endpoint of slot @e. */
static void op_ep_create(struct fz *fz, int e)
{
	struct mep *me = &fz->ep[e];
	struct viommu_endpoint *ep = NULL;
	unsigned int bits = 0;
	int rc;

	if (me->e)
		return;
	for (int i = 0; i < NEP; i++)
		if (fz->ep[i].e && fz->ep[i].id == ep_ids[e])
			bits |= E_EXIST;
	if (fz->nep >= MAX_EPS)
		bits |= E_NOSPC;
	rc = viommu_endpoint_create(fz->ctx, ep_ids[e], &ep);
	expect_rc(fz, rc, bits);
	if (bits)
		return;
	memset(me, 0, sizeof(*me));
	me->e = ep;
	me->id = ep_ids[e];
	me->rid = T_NONE;
	fz->nep++;
	if (viommu_endpoint_id(ep) != me->id)
		fail(fz, "endpoint id 0x%x, want 0x%x", viommu_endpoint_id(ep),
		     me->id);
}

/* op_ep_destroy() - destroy the endpoint of slot @e. */
static void op_ep_destroy(struct fz *fz, int e)
{
	struct mep *me = &fz->ep[e];

	if (!me->e)
		return;
	viommu_endpoint_destroy(me->e);
	me->e = NULL;
	fz->nep--;
}

/* make_regions() - the region set of layout @lay; returns the count. */
static unsigned int make_regions(unsigned int lay,
				 struct viommu_mem_region *reg)
{
	unsigned int n = 0;

	reg[n++] = (struct viommu_mem_region){ .gpa = 0, .size = RAM_A_SIZE,
					       .fd = -1, .hva = ram_a };
	if (lay & LAY_B)
		reg[n++] = (struct viommu_mem_region){
			.gpa = RAM_B_GPA, .size = RAM_B_SIZE, .fd = -1,
			.hva = ram_b };
	reg[n++] = (struct viommu_mem_region){
		.gpa = RAM_C_GPA, .size = RAM_C_SIZE, .fd = -1,
		.hva = lay & LAY_C2 ? ram_c2 : ram_c,
		.flags = lay & LAY_C_RO ? VIOMMU_MEM_F_READONLY : 0 };
	return n;
}

/*
 * op_mem() - replace the guest-memory region set (translations cached
 * in IOTLBs must follow), or try an overlapping set that must be refused.
 */
static void op_mem(struct fz *fz, uint8_t v)
{
	struct viommu_mem_region reg[4];
	unsigned int n = make_regions(v & 7, reg);
	int rc;

	if ((v & 0x18) == 0x18) {
		reg[n] = reg[0];
		reg[n++].gpa = RAM_A_SIZE / 2;
		rc = viommu_mem_set_regions(fz->mem, reg, n);
		expect_rc(fz, rc, E_INVAL);
		return;
	}
	rc = viommu_mem_set_regions(fz->mem, reg, n);
	expect_rc(fz, rc, 0);
	fz->layout = v & 7;
}

/*
 * op_bulk() - up to 256 maps of equal size in a row on target @t, each
 * checked like a single map; stops at the first refusal.
 */
static void op_bulk(struct fz *fz, int t, uint64_t base, unsigned int count,
		    uint64_t size, uint64_t stride, uint32_t prot)
{
	for (unsigned int k = 0; k < count; k++) {
		uint64_t iova = base + k * stride;
		uint64_t before = fz->maps;

		fz->nev = 0;
		fz->nwant = 0;
		op_map(fz, t, iova, iova + size - 1, k * size, prot);
		check_events(fz, false);
		if (fz->maps == before)
			break;
	}
}

/* struct walk - state of a viommu_domain_for_each_mapping() check. */
struct walk {
	struct fz *fz;
	const struct mdom *md;
	uint64_t iova, last;
	int next;      /* index of the next model mapping expected */
	int calls;
	int stop_after; /* return 1 after this many calls (0: never) */
};

/* walk_fn() - compare each reported mapping with the model's next one. */
static int walk_fn(void *opaque, const struct viommu_mapping *m)
{
	struct walk *w = opaque;
	const struct mdom *md = w->md;
	const struct mmapping *want;

	while (w->next < md->nmap &&
	       !overlap(w->iova, w->last, md->map[w->next].iova,
			md->map[w->next].last))
		w->next++;
	if (w->next >= md->nmap)
		fail(w->fz, "walk of slot %d reports extra mapping 0x%" PRIx64
		     "-0x%" PRIx64, md->slot, m->iova, m->last);
	want = &md->map[w->next++];
	if (m->iova != want->iova || m->last != want->last ||
	    m->gpa != want->gpa || m->prot != want->prot)
		fail(w->fz, "walk of slot %d: got 0x%" PRIx64 "-0x%" PRIx64
		     " gpa 0x%" PRIx64 " prot 0x%x, want 0x%" PRIx64 "-0x%"
		     PRIx64 " gpa 0x%" PRIx64 " prot 0x%x", md->slot, m->iova,
		     m->last, m->gpa, m->prot, want->iova, want->last,
		     want->gpa, want->prot);
	w->calls++;
	return w->stop_after && w->calls == w->stop_after ? 1 : 0;
}

/* walk_check() - walk [iova, last] of slot @t and compare. */
static void walk_check(struct fz *fz, int t, uint64_t iova, uint64_t last,
		       int stop_after)
{
	const struct mdom *md = &fz->dom[t];
	struct walk w = { fz, md, iova, last, first_from(md, iova), 0,
			  stop_after };
	int rc, n = 0;

	rc = viommu_domain_for_each_mapping(md->d, iova, last, walk_fn, &w);
	if (iova > last) {
		expect_rc(fz, rc, E_INVAL);
		return;
	}
	for (int i = first_from(md, iova);
	     i < md->nmap && md->map[i].iova <= last; i++)
		n++;
	if (stop_after && n >= stop_after) {
		if (rc != 1 || w.calls != stop_after)
			fail(fz, "walk stopped with %d after %d calls", rc,
			     w.calls);
		return;
	}
	if (rc != 0 || w.calls != n)
		fail(fz, "walk returned %d after %d calls, want 0 after %d",
		     rc, w.calls, n);
}

/* op_walk() - for_each_mapping over a range, maybe stopping early. */
static void op_walk(struct fz *fz, int t, uint64_t iova, uint64_t last,
		    int stop_after)
{
	struct viommu_domain *d = target_dom(fz, t);

	if (!d)
		return;
	if (t >= NDOM)
		expect_rc(fz, viommu_domain_for_each_mapping(d, iova, last,
							     walk_fn, NULL),
			  iova > last ? E_INVAL | E_NOTSUP : E_NOTSUP);
	else
		walk_check(fz, t, iova, last, stop_after);
}

/* ------------------------------------------------------------------ */
/* Whole-state checks                                                 */

/* check_events() - the op produced exactly the wanted MAP/UNMAP events. */
static void check_events(struct fz *fz, bool quiet)
{
	bool used[MAP_CAP + 64];
	int n = 0;

	if (!fz->nev && !fz->nwant)
		return;
	memset(used, 0, (size_t)fz->nev * sizeof(used[0]));
	if (quiet && fz->nev)
		fail(fz, "%d notifier events from a call that changes nothing",
		     fz->nev);
	for (int i = 0; i < fz->nev; i++)
		n += (fz->ev[i].type & (VIOMMU_EVENT_MAP |
					VIOMMU_EVENT_UNMAP)) != 0;
	if (n != fz->nwant)
		fail(fz, "%d MAP/UNMAP events, want %d", n, fz->nwant);
	for (int k = 0; k < fz->nwant; k++) {
		const struct viommu_event *w = &fz->want[k];
		int i;

		for (i = 0; i < fz->nev; i++) {
			const struct viommu_event *g = &fz->ev[i];

			if (used[i] || g->type != w->type ||
			    fz->ev_slot[i] != fz->want_slot[k] ||
			    g->domain != w->domain || g->tag != w->tag ||
			    g->iova != w->iova || g->last != w->last)
				continue;
			if (w->type == VIOMMU_EVENT_MAP &&
			    (g->gpa != w->gpa || g->prot != w->prot))
				continue;
			break;
		}
		if (i == fz->nev)
			fail(fz, "missing %s event 0x%" PRIx64 "-0x%" PRIx64
			     " on slot %d", w->type == VIOMMU_EVENT_MAP ?
			     "MAP" : "UNMAP", w->iova, w->last,
			     fz->want_slot[k]);
		used[i] = true;
	}
}

/* check_domain() - mappings and info of live slot @t. */
static void check_domain(struct fz *fz, int t)
{
	const struct mdom *md = &fz->dom[t];
	struct viommu_domain_info info;
	uint64_t bytes = 0;
	int rc;

	if (fz->walk_mask & (1u << t)) {
		if (fz->walk_mask != ~0u && fz->touch_lo <= fz->touch_hi)
			walk_check(fz, t, fz->touch_lo, fz->touch_hi, 0);
		else
			walk_check(fz, t, 0, UINT64_MAX, 0);
	}
	if (md->bytes_stale) {
		for (int i = 0; i < md->nmap; i++)
			bytes = sat_add(bytes, range_bytes(md->map[i].iova,
							   md->map[i].last));
		fz->dom[t].bytes = bytes;
		fz->dom[t].bytes_stale = false;
	}
	bytes = md->bytes;
	rc = viommu_domain_info(md->d, &info, sizeof(info));
	if (rc)
		fail(fz, "domain_info returned %d", rc);
	if (info.kind != VIOMMU_DOMAIN_PAGING ||
	    info.endpoints != dom_endpoints(fz, t) ||
	    info.mappings != (uint64_t)md->nmap ||
	    info.mapped_bytes != bytes ||
	    info.dirty_tracking != md->dirty_on)
		fail(fz, "slot %d info: kind %u eps %u maps %" PRIu64
		     " bytes 0x%" PRIx64 " dirty %d; want eps %u maps %d bytes"
		     " 0x%" PRIx64 " dirty %d", t, info.kind, info.endpoints,
		     info.mappings, info.mapped_bytes, info.dirty_tracking,
		     dom_endpoints(fz, t), md->nmap, bytes, md->dirty_on);
	if (md->nmap && !info.host_bytes)
		fail(fz, "slot %d holds mappings but no host bytes", t);
}

/* check_attached() - @pasid of @me is attached to target @t. */
static void check_attached(struct fz *fz, const struct mep *me,
			   uint32_t pasid, int t)
{
	struct viommu_domain *d = (struct viommu_domain *)1;
	int rc = viommu_endpoint_domain(me->e, pasid, &d);

	if (rc || d != (t == T_NONE ? NULL : target_dom(fz, t)))
		fail(fz, "ep 0x%x pasid 0x%x: domain_get %d %p, want target"
		     " %d", me->id, pasid, rc, (void *)d, t);
}

/* check_endpoint() - attachments and reserved regions of a live ep. */
static void check_endpoint(struct fz *fz, const struct mep *me)
{
	struct viommu_resv rv[MAX_RESV + 1];
	struct viommu_endpoint *found = NULL;
	unsigned int n = 99;
	int rc;

	check_attached(fz, me, VIOMMU_NO_PASID, me->rid);
	for (int i = 0; i < me->npas; i++)
		check_attached(fz, me, me->pas[i].pasid, me->pas[i].t);
	for (int k = 3; k < 8; k++)
		if (find_pasid(me, pasid_tab[k]) < 0 &&
		    pasid_tab[k] <= VIOMMU_PASID_MAX)
			check_attached(fz, me, pasid_tab[k], T_NONE);
	rc = viommu_endpoint_get_resv(me->e, rv, MAX_RESV + 1, &n);
	if (rc || n != (unsigned int)me->nresv)
		fail(fz, "ep 0x%x: get_resv %d n %u, want %d", me->id, rc, n,
		     me->nresv);
	for (int i = 0; i < me->nresv; i++)
		if (rv[i].start != me->resv[i].start ||
		    rv[i].last != me->resv[i].last ||
		    rv[i].type != me->resv[i].type)
			fail(fz, "ep 0x%x: resv %d differs", me->id, i);
	rc = viommu_endpoint_lookup(fz->ctx, me->id, &found);
	if (rc || found != me->e)
		fail(fz, "endpoint_lookup(0x%x) = %d %p", me->id, rc,
		     (void *)found);
}

/* check_state() - compare everything the API shows with the model. */
static void check_state(struct fz *fz)
{
	struct viommu_ctx_stats st;
	uint64_t maps = 0;

	for (int t = 0; t < NDOM; t++) {
		if (!fz->dom[t].d)
			continue;
		check_domain(fz, t);
		maps += fz->dom[t].nmap;
	}
	for (int e = 0; e < NEP; e++)
		if (fz->ep[e].e)
			check_endpoint(fz, &fz->ep[e]);
	if (viommu_ctx_stats(fz->ctx, &st, sizeof(st)))
		fail(fz, "ctx_stats failed");
	if (st.domains != (uint64_t)fz->ndom ||
	    st.endpoints != (uint64_t)fz->nep || st.mappings != maps ||
	    st.maps != fz->maps || st.unmaps != fz->unmaps ||
	    st.faults != fz->faults)
		fail(fz, "stats: doms %" PRIu64 " eps %" PRIu64 " maps %"
		     PRIu64 " map calls %" PRIu64 " unmap calls %" PRIu64
		     " faults %" PRIu64 "; want %d %d %" PRIu64 " %" PRIu64
		     " %" PRIu64 " %" PRIu64, st.domains, st.endpoints,
		     st.mappings, st.maps, st.unmaps, st.faults, fz->ndom,
		     fz->nep, maps, fz->maps, fz->unmaps, fz->faults);
}

/* ------------------------------------------------------------------ */
/* Decoding and driver                                                */

enum opcode {
	OP_MAP, OP_UNMAP, OP_TRANSLATE, OP_LOOKUP, OP_ATTACH, OP_DETACH,
	OP_DOM_CREATE, OP_DOM_DESTROY, OP_INVALIDATE, OP_BYPASS, OP_RESV,
	OP_DIRTY_ENABLE, OP_DIRTY_READ, OP_EP_CREATE, OP_EP_DESTROY, OP_DMA,
	OP_WALK, OP_BULK, OP_MEM,
};

static const char *const op_names[] = {
	"map", "unmap", "translate", "lookup", "attach", "detach",
	"dom_create", "dom_destroy", "invalidate", "bypass", "add_resv",
	"dirty_enable", "dirty_read", "ep_create", "ep_destroy", "dma",
	"walk", "bulk_map", "mem_set",
};

/* describe() - fz->desc for the current record (only when reporting). */
static void describe(struct fz *fz)
{
	const struct rec *r = &fz->cur;

	if (fz->cur_op < 0)
		return;
	snprintf(fz->desc, sizeof(fz->desc),
		 "(%s %02x %02x %02x %02x %02x %02x %02x)",
		 op_names[fz->cur_op], r->a, r->b, r->c, r->d, r->e, r->f,
		 r->g);
}

/* Opcode byte % 32 -> operation; the common calls get more slots. */
static const uint8_t op_table[32] = {
	OP_MAP, OP_MAP, OP_MAP, OP_MAP, OP_MAP, OP_UNMAP, OP_UNMAP, OP_UNMAP,
	OP_TRANSLATE, OP_TRANSLATE, OP_TRANSLATE, OP_TRANSLATE, OP_TRANSLATE,
	OP_LOOKUP, OP_ATTACH, OP_ATTACH, OP_DETACH, OP_DOM_CREATE,
	OP_DOM_DESTROY, OP_INVALIDATE, OP_BYPASS, OP_RESV, OP_DIRTY_ENABLE,
	OP_DIRTY_READ, OP_EP_CREATE, OP_EP_DESTROY, OP_DMA, OP_DMA, OP_WALK,
	OP_BULK, OP_TRANSLATE, OP_MEM,
};

/* target_sel() - mostly a domain slot, sometimes a static domain. */
static int target_sel(uint8_t a)
{
	if (a % 32 == 30)
		return T_IDENT;
	if (a % 32 == 31)
		return T_BLOCK;
	return a % NDOM;
}

/* end_of() - last byte of a range of @size at @iova (0 = to the top). */
static uint64_t end_of(uint64_t iova, uint64_t size)
{
	return iova + size - 1;
}

/* resv_type_sel() - RESERVED, MSI, or an invalid type. */
static uint32_t resv_type_sel(uint8_t d)
{
	if (d % 8 < 4)
		return VIOMMU_RESV_RESERVED;
	return d % 8 < 7 ? VIOMMU_RESV_MSI : 2;
}

/* run_dirty_read() - decode and run a dirty_read record. */
static void run_dirty_read(struct fz *fz, const struct rec *r)
{
	uint64_t iova = iova_sel(r->b), npages;
	size_t words;

	if (r->g & 1)
		iova += r->g;
	npages = r->c < 200 ? (uint64_t)(r->c % 64 + 1)
			    : (uint64_t)(r->c - 199) * 8;
	words = (size_t)((npages + 63) / 64);
	if (r->d % 4 == 0)
		words--;
	op_dirty_read(fz, target_sel(r->a), iova, npages, words,
		      r->e % 8 == 7 ? 2 : (r->e & 1), (r->f & 1) ?
		      0x5555555555555555ull : 0);
}

/* run_op() - decode one record and run it; true if it may change state. */
static bool run_op(struct fz *fz, const struct rec *r, int op)
{
	uint64_t iova = iova_sel(r->b);

	switch (op) {
	case OP_MAP:
		if (r->f & 1)
			iova += (uint64_t)(r->f >> 1) * 0x20;
		op_map(fz, target_sel(r->a), iova,
		       end_of(iova, size_sel(r->c)), gpa_sel(r->d),
		       prot_sel(r->e));
		return true;
	case OP_UNMAP:
		op_unmap(fz, target_sel(r->a), iova,
			 end_of(iova, size_sel(r->c)), r->d & 1);
		return true;
	case OP_TRANSLATE:
		op_translate(fz, r->a % NEP, pasid_tab[r->b % 8],
			     iova_sel(r->c) + (r->d < 128 ? r->d * 32u : 0),
			     len_tab[r->e % 16], access_tab[r->f % 8],
			     r->g & 1);
		return false;
	case OP_LOOKUP:
		op_lookup(fz, target_sel(r->a),
			  iova_sel(r->c) + (r->d < 128 ? r->d * 32u : 0),
			  len_tab[r->e % 16], access_tab[r->f % 8]);
		return false;
	case OP_ATTACH:
		op_attach(fz, r->a % NEP, pasid_tab[r->b % 8],
			  r->c % 10 < 8 ? r->c % 8 : T_IDENT + r->c % 10 - 8);
		return true;
	case OP_DETACH:
		op_detach(fz, r->a % NEP, pasid_tab[r->b % 8]);
		return true;
	case OP_DOM_CREATE:
		op_dom_create(fz, r->a % NDOM, r->b);
		return true;
	case OP_DOM_DESTROY:
		op_dom_destroy(fz, target_sel(r->a));
		return true;
	case OP_INVALIDATE:
		op_invalidate(fz, target_sel(r->a), r->c, iova,
			      end_of(iova, size_sel(r->d)));
		return true;
	case OP_BYPASS:
		op_bypass(fz, r->a & 1);
		return true;
	case OP_RESV:
		op_add_resv(fz, r->a % NEP, iova, end_of(iova, size_sel(r->c)),
			    resv_type_sel(r->d));
		return true;
	case OP_DIRTY_ENABLE:
		op_dirty_enable(fz, target_sel(r->a), r->b % 4 != 0);
		return true;
	case OP_DIRTY_READ:
		run_dirty_read(fz, r);
		return true;
	case OP_EP_CREATE:
		op_ep_create(fz, r->a % NEP);
		return true;
	case OP_EP_DESTROY:
		op_ep_destroy(fz, r->a % NEP);
		return true;
	case OP_DMA:
		op_dma(fz, r->a % NEP, pasid_tab[r->b % 8],
		       iova_sel(r->c) + (r->d < 128 ? r->d * 32u : 0),
		       dma_len_tab[r->e % 8], r->f & 1, r->g);
		return false;
	case OP_BULK:
		op_bulk(fz, target_sel(r->a), r->b & 0x80 ?
			(1ull << 32) + (uint64_t)(r->b & 0x7f) * 0x10000 :
			iova_sel(r->b), 16u * (r->c % 16 + 1),
			0x100ull << (r->d % 5), (0x100ull << (r->d % 5)) *
			(r->e % 4 == 3 ? 2 : 1), prot_sel(r->f) | VIOMMU_READ);
		return true;
	case OP_MEM:
		op_mem(fz, r->a);
		return true;
	case OP_WALK:
	default:
		op_walk(fz, target_sel(r->a), iova,
			end_of(iova, size_sel(r->c)), r->d % 4);
		return false;
	}
}

/*
 * walk_mask_of() - fast mode: the domain slots whose mappings record @r
 * may change (the target of a map, unmap, bulk map, domain create or
 * destroy, invalidate or dirty call); ~0 (all) in the full mode.
 */
static unsigned int walk_mask_of(const struct rec *r, int op)
{
#ifdef FUZZ_FAST
	int t;

	switch (op) {
	case OP_MAP:
	case OP_UNMAP:
	case OP_DOM_DESTROY:
	case OP_INVALIDATE:
	case OP_DIRTY_ENABLE:
	case OP_DIRTY_READ:
	case OP_BULK:
		t = target_sel(r->a);
		return t < NDOM ? 1u << t : 0;
	case OP_DOM_CREATE:
		return 1u << (r->a % NDOM);
	default:
		return 0;
	}
#else
	(void)r;
	(void)op;
	return ~0u;
#endif
}

/* step() - run one record with its per-op checks. */
static void step(struct fz *fz, const struct rec *r)
{
	int op = op_table[r->op % 32];
	bool changes;

	fz->cur = *r;
	fz->cur_op = op;
	fz->touch_lo = UINT64_MAX;
	fz->touch_hi = 0;
	fz->nev = 0;
	fz->nwant = 0;
	fz->nfault_cb = 0;
#ifdef FUZZ_TRACE
	describe(fz);
	fprintf(stderr, "#%d %s\n", fz->opno, fz->desc);
#endif
	changes = run_op(fz, r, op);
	check_events(fz, !changes);
	if (!changes && fz->nfault_cb == 0)
		return;
	fz->walk_mask = walk_mask_of(r, op);
	if (fz->opno % FAST_FULL_EVERY == FAST_FULL_EVERY - 1)
		fz->walk_mask = ~0u;
	check_state(fz);
}

static struct fz fz_store;
static struct viommu_event ev_store[MAP_CAP + 64];
static int ev_slot_store[MAP_CAP + 64];
static struct viommu_event want_store[MAP_CAP];
static int want_slot_store[MAP_CAP];
static struct mmapping map_store[NDOM][MAP_CAP];

/* setup() - guest memory, a context, three endpoints, two domains. */
static struct fz *setup(uint8_t hdr)
{
	static const uint32_t iotlb[4] = { 0, 1, 4, 16 };
	struct viommu_mem_region reg[4];
	unsigned int n = make_regions(LAY_DEFAULT, reg);
	struct viommu_ctx_config cfg = { 0 };
	struct fz *fz = &fz_store;

	uint32_t cap = hdr & 8 ? MAP_CAP : MAX_MAPS;

	/*
	 * The model lives in static storage, reset per input: allocating
	 * it (over 1 MiB with MAP_CAP) for each input cost more page faults
	 * than the input's calls (the arrays are only read below their
	 * counts, so they need no clearing).
	 */
	memset(fz, 0, sizeof(*fz));
	fz->max_maps = cap;
	fz->ev = ev_store;
	fz->ev_slot = ev_slot_store;
	fz->want = want_store;
	fz->want_slot = want_slot_store;
	for (int i = 0; i < NDOM; i++)
		fz->dom[i].map = map_store[i];
	snprintf(fz->desc, sizeof(fz->desc), "(setup)");
	fz->cur_op = -1;
	fz->walk_mask = ~0u;
	fz->opno = -1;
	if (viommu_mem_create(NULL, &fz->mem) ||
	    viommu_mem_set_regions(fz->mem, reg, n))
		fail(fz, "guest memory set-up failed");
	cfg.mem = fz->mem;
	cfg.limits.max_domains = MAX_DOMAINS;
	cfg.limits.max_endpoints = MAX_EPS;
	fz->layout = LAY_DEFAULT;
	cfg.limits.max_mappings_per_domain = fz->max_maps;
	cfg.limits.max_pasids_per_endpoint = MAX_PASIDS;
	cfg.limits.max_resv_per_endpoint = MAX_RESV;
	cfg.limits.iotlb_entries = iotlb[(hdr >> 1) & 3];
	cfg.fault = on_fault;
	cfg.fault_opaque = fz;
	cfg.bypass_unattached = hdr & 1;
	fz->bypass = hdr & 1;
	if (viommu_ctx_create(&cfg, &fz->ctx))
		fail(fz, "ctx_create failed");
	for (int i = 0; i < NEP; i++)
		fz->ep[i].rid = T_NONE;
	op_ep_create(fz, 0);
	op_ep_create(fz, 1);
	op_ep_create(fz, 2);
	op_dom_create(fz, 0, 0);
	op_dom_create(fz, 1, 0);
	op_attach(fz, 0, VIOMMU_NO_PASID, 0);
	check_state(fz);
	return fz;
}

/* teardown() - destroy everything; the notifiers go with their domains. */
static void teardown(struct fz *fz)
{
	/* Every domain walked at the end, whatever the check level. */
	fz->cur_op = -1;
	snprintf(fz->desc, sizeof(fz->desc), "(end of input)");
	fz->walk_mask = ~0u;
	check_state(fz);
	snprintf(fz->desc, sizeof(fz->desc), "(teardown)");
	fz->nev = 0;
	viommu_ctx_destroy(fz->ctx);
	viommu_mem_destroy(fz->mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *fz;
	struct rec r;

	if (size < 1)
		return 0;
	fz = setup(data[0]);
	data++;
	size--;
	for (fz->opno = 0; size >= sizeof(r); fz->opno++) {
		memcpy(&r, data, sizeof(r));
		data += sizeof(r);
		size -= sizeof(r);
		step(fz, &r);
	}
	teardown(fz);
	return 0;
}
