/*
 * fuzz_lpae.c - libFuzzer target for the Arm LPAE page-table library.
 *
 * Two modes, chosen by bit 7 of input byte 1.
 *
 * Walker mode: the input is guest RAM full of page tables, a
 * configuration, a root and four probes.  Every probe is walked twice,
 * first as a probe (access 0), then with its access bits, and checked:
 *   - against a small independent reference walker (probe results: same
 *     success, output address, leaf level, or same fault kind and level);
 *   - for result invariants (levels, sizes, alignment, OAS, permissions,
 *     the contiguous span, fault kinds allowed for the access);
 *   - for the visitor's view (strictly increasing levels from the start
 *     level, descriptor addresses aligned and in RAM);
 *   - for the probe/access agreement (an access walk differs from its
 *     probe only by access flag, permission, update or hook faults);
 *   - for guest-memory effects: an access walk changes at most the leaf
 *     descriptor it reports, only AF (bit 10) and AP[2]/S2AP[1] (bit 7),
 *     exactly as af_set/dirty_set say; a second identical walk changes
 *     nothing and finds the same translation.
 *
 * Builder mode: 8-byte records map and unmap ranges in a window of two
 * level-2 blocks, checked against a flat per-page model: map fails with
 * -EEXIST exactly when the range meets a mapping (and then changes
 * nothing), unmap refuses exactly when a leaf (as the walker reports it)
 * straddles an end, and the ends of every range touched plus sampled
 * pages translate as the model says.  At most MAX_RECS records run.
 *
 * Input layout: byte 0 - bit 0 stage 2; bits 1-2 granule (4K, 16K, 64K,
 * 4K); bits 3-5 IAS index; bits 6-7 HA / HA+HD / HA+HD+HPD.  Byte 1 -
 * bits 0-2 OAS index; bit 3 "tame" (descriptor addresses are folded into
 * a 256 KiB window of guest RAM and holes, probes below 2^IAS); bit 4
 * explicit stage-2 start level (bits 5-6 give it, walker mode); bit 5 also
 * a nested table_addr hook in walker mode; bit 7 builder mode.  Bytes
 * 2-9: root.  Bytes 10-45: four probes of 8 IOVA bytes and an access
 * byte.  Walker mode: the rest is tiled as 64-bit words over 64 KiB of
 * RAM at 1 GiB and over a read-only 64 KiB region after a 64 KiB hole.
 * Builder mode: the rest is records; tables come from 1 MiB of RAM at
 * the same address.
 *
 * Any disagreement prints a message and calls abort().
 */
#include "refdrv/lpae_build.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_GPA 0x40000000ull
#define RAM_SIZE (64u << 10)
#define RO_GPA (RAM_GPA + RAM_SIZE + (64u << 10))
#define RO_SIZE (64u << 10)
#define WINDOW_PAGES 64 /* tame: 256 KiB from RAM_GPA, in 4K pages */
#define BRAM_SIZE (1u << 20) /* builder mode: RAM for its tables */
#define ADDR_MASK 0x0000fffffffff000ull
#define HDR 46
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RWX (VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC)

static uint64_t ram[RAM_SIZE / 8];
static uint64_t ro[RO_SIZE / 8];
static uint64_t snap[RAM_SIZE / 8];
static uint64_t bram[BRAM_SIZE / 8];

#define fail(...)                                                          \
	do {                                                               \
		fprintf(stderr, "fuzz_lpae: " __VA_ARGS__);                \
		fputc('\n', stderr);                                       \
		abort();                                                   \
	} while (0)

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* ---- configuration ---------------------------------------------------- */

static const unsigned int granules[] = { 4096, 16384, 65536, 4096 };
static const unsigned int iases[] = { 25, 32, 36, 40, 42, 44, 48, 39 };
static const unsigned int oases[] = { 32, 36, 40, 42, 44, 48, 48, 40 };

/* decode_cfg() - the configuration from bytes 0-1; -EINVAL if invalid. */
static int decode_cfg(const uint8_t *d, struct lpae_cfg *c)
{
	unsigned int hw = d[0] >> 6;

	memset(c, 0, sizeof(*c));
	c->stage = d[0] & 1 ? LPAE_STAGE2 : LPAE_STAGE1;
	c->granule = granules[(d[0] >> 1) & 3];
	c->ias = iases[(d[0] >> 3) & 7];
	c->oas = oases[d[1] & 7];
	c->start_level = LPAE_SL_AUTO;
	if (c->stage == LPAE_STAGE2 && (d[1] & 0x10) && !(d[1] & 0x80))
		c->start_level = (d[1] >> 5) & 3;
	c->ha = hw >= 1;
	c->hd = hw >= 2;
	c->hpd = hw == 3 && c->stage == LPAE_STAGE1;
	if (c->stage == LPAE_STAGE2 && c->ias > c->oas)
		c->ias = c->oas;
	return lpae_cfg_validate(c);
}

/*
 * make_mem() - guest memory: walker mode has RAM, a hole and the
 * read-only region; builder mode one larger RAM region at the same GPA.
 */
static struct viommu_mem *make_mem(bool builder)
{
	struct viommu_mem_region r[2] = {
		{ .gpa = RAM_GPA, .size = RAM_SIZE, .fd = -1, .hva = ram },
		{ .gpa = RO_GPA, .size = RO_SIZE, .fd = -1, .hva = ro,
		  .flags = VIOMMU_MEM_F_READONLY },
	};
	struct viommu_mem *mem = NULL;

	if (builder)
		r[0] = (struct viommu_mem_region){ .gpa = RAM_GPA,
			.size = BRAM_SIZE, .fd = -1, .hva = bram };
	if (viommu_mem_create(NULL, &mem))
		return NULL;
	if (viommu_mem_set_regions(mem, r, builder ? 1 : 2)) {
		viommu_mem_destroy(mem);
		return NULL;
	}
	return mem;
}

/* tame_addr() - fold the address bits of @w into the RAM window. */
static uint64_t tame_addr(uint64_t w)
{
	uint64_t page = (w >> 12) % WINDOW_PAGES;

	return (w & ~ADDR_MASK) | (RAM_GPA + page * 4096);
}

/* in_ram() - whether [@gpa, @gpa + 8) is RAM or the read-only region. */
static bool in_ram(uint64_t gpa)
{
	return (gpa >= RAM_GPA && gpa - RAM_GPA <= RAM_SIZE - 8) ||
	       (gpa >= RO_GPA && gpa - RO_GPA <= RO_SIZE - 8);
}

/* ---- reference walker (probe semantics only) -------------------------- */

struct ref {
	int ok;
	enum lpae_fault fault;
	unsigned int level;
	uint64_t oa;
};

/* ref_read() - a descriptor straight from the backing arrays. */
static bool ref_read(uint64_t gpa, uint64_t *v)
{
	if (gpa & 7)
		return false; /* never happens: tables are aligned */
	if (gpa >= RAM_GPA && gpa - RAM_GPA <= RAM_SIZE - 8)
		*v = ram[(gpa - RAM_GPA) / 8];
	else if (gpa >= RO_GPA && gpa - RO_GPA <= RO_SIZE - 8)
		*v = ro[(gpa - RO_GPA) / 8];
	else
		return false;
	return true;
}

static struct ref ref_fault(enum lpae_fault f, unsigned int level)
{
	return (struct ref){ .fault = f, .level = level };
}

/* ref_leaf() - output address checks of a leaf of 2^@shift bytes. */
static struct ref ref_leaf(const struct lpae_cfg *c, uint64_t d,
			   unsigned int level, unsigned int shift,
			   uint64_t iova)
{
	uint64_t oa = d & ADDR_MASK;

	if (level < 3)
		oa &= ~(1ull << 16);
	if (oa >> c->oas || (oa & ((1ull << shift) - 1)))
		return ref_fault(LPAE_FAULT_ADDR_SIZE, level);
	return (struct ref){ .ok = 1, .level = level,
			     .oa = oa | (iova & ((1ull << shift) - 1)) };
}

/* ref_walk() - an independent, minimal walk for access 0. */
static struct ref ref_walk(const struct lpae_cfg *c, uint64_t root,
			   uint64_t iova)
{
	unsigned int g = c->pg_shift, bpl = g - 3;
	unsigned int levels = (c->ias - g + bpl - 1) / bpl;
	unsigned int first = 4 - levels + (c->concat > 1), l;
	uint64_t tbl = root;

	if (first != c->sl && c->start_level == LPAE_SL_AUTO)
		fail("start level %u, reference %u", c->sl, first);
	first = c->sl;
	if (iova >> c->ias)
		return ref_fault(LPAE_FAULT_TRANSLATION, 0);
	if (root >> c->oas || root % (8ull << (c->ias - (g + (3 - first) *
							 bpl))))
		return ref_fault(LPAE_FAULT_ADDR_SIZE, 0);
	for (l = first; l <= 3; l++) {
		unsigned int shift = g + (3 - l) * bpl;
		unsigned int bits = l == first ? c->ias - shift : bpl;
		uint64_t idx = (iova >> shift) & ((1ull << bits) - 1), d;

		if (!ref_read(tbl + 8 * idx, &d))
			return ref_fault(LPAE_FAULT_WALK_EABT, l);
		if (!(d & 1))
			return ref_fault(LPAE_FAULT_TRANSLATION, l);
		if (l == 3)
			return d & 2 ? ref_leaf(c, d, l, shift, iova) :
				       ref_fault(LPAE_FAULT_TRANSLATION, l);
		if (!(d & 2)) {
			bool ok = c->granule == 4096 ? l >= 1 : l >= 2;

			return ok ? ref_leaf(c, d, l, shift, iova) :
				    ref_fault(LPAE_FAULT_TRANSLATION, l);
		}
		tbl = d & ADDR_MASK;
		if (tbl >> c->oas || (tbl & (c->granule - 1)))
			return ref_fault(LPAE_FAULT_ADDR_SIZE, l);
	}
	fail("reference walk ran past level 3");
}

/* ---- walker mode ------------------------------------------------------ */

/* struct seen - what the visitor saw during one walk. */
struct seen {
	const struct lpae_cfg *c;
	int n;
	int last_level;
	bool hook;
};

static int seen_step(void *opaque, const struct lpae_step *s)
{
	struct seen *sn = opaque;

	if (sn->n == 0 && s->level != sn->c->sl)
		fail("first step at level %u, start level %u", s->level,
		     sn->c->sl);
	if ((int)s->level <= sn->last_level || s->level > 3)
		fail("step level %u after %d", s->level, sn->last_level);
	if ((s->desc_addr & 7) || !in_ram(s->desc_addr))
		fail("descriptor read at 0x%" PRIx64, s->desc_addr);
	sn->last_level = (int)s->level;
	sn->n++;
	return 0;
}

/* hook_fn() - identity stage 2 that refuses a few pages, writes more. */
static int hook_fn(void *opaque, unsigned int level, uint64_t ipa,
		   unsigned int access, uint64_t *pa)
{
	uint64_t page = ipa >> 12;

	(void)opaque;
	(void)level;
	if ((page & 0x1f) == 0x1f)
		return -EPERM;
	if ((access & VIOMMU_WRITE) && (page & 0x7) == 0x5)
		return -EPERM;
	*pa = ipa;
	return 0;
}

/* check_ok() - invariants of a successful walk. */
static void check_ok(const struct lpae_cfg *c, uint64_t iova,
		     unsigned int access, const struct lpae_result *r)
{
	uint64_t size;

	if (r->fault != LPAE_FAULT_NONE || r->level < c->sl || r->level > 3)
		fail("success with fault %d level %u", r->fault, r->level);
	if (!lpae_leaf_ok(c, r->level))
		fail("leaf at level %u", r->level);
	size = 1ull << lpae_level_shift(c, r->level);
	if (r->size != size || ((r->oa ^ iova) & (size - 1)))
		fail("size 0x%" PRIx64 " oa 0x%" PRIx64, r->size, r->oa);
	if (r->oa >> c->oas || iova >> c->ias)
		fail("oa 0x%" PRIx64 " beyond OAS", r->oa);
	if (r->contig_size != size &&
	    r->contig_size != size * lpae_contig_entries(c, r->level))
		fail("contig span 0x%" PRIx64, r->contig_size);
	if ((access & RWX) & ~r->perm)
		fail("access 0x%x granted 0x%x", access, r->perm);
	if (!in_ram(r->desc_addr) || (r->desc_addr & 7))
		fail("leaf at 0x%" PRIx64, r->desc_addr);
	if (r->desc.type != LPAE_DESC_BLOCK && r->desc.type != LPAE_DESC_PAGE)
		fail("leaf type %d", r->desc.type);
}

/* check_fault() - invariants of a fault. */
static void check_fault(const struct lpae_cfg *c, uint64_t iova,
			unsigned int access, bool hook,
			const struct lpae_result *r)
{
	if (r->fault == LPAE_FAULT_NONE || r->why == LPAE_WHY_NONE ||
	    r->level > 3)
		fail("fault %d why %d level %u", r->fault, r->why, r->level);
	if ((r->why == LPAE_WHY_INPUT_RANGE) != !!(iova >> c->ias))
		fail("input range fault for 0x%" PRIx64, iova);
	if ((r->fault == LPAE_FAULT_ACCESS ||
	     r->fault == LPAE_FAULT_PERMISSION) && !(access & RWX))
		fail("access fault %d for a probe", r->fault);
	if (r->fault == LPAE_FAULT_ACCESS && c->ha)
		fail("access flag fault with HA");
	if (r->fault == LPAE_FAULT_TABLE_HOOK && !hook)
		fail("hook fault without a hook");
}

/* compare_ref() - the probe against the reference walker. */
static void compare_ref(const struct ref *x, int err,
			const struct lpae_result *r, bool hook)
{
	if (hook && err && r->fault == LPAE_FAULT_TABLE_HOOK)
		return;
	if (x->ok != !err)
		fail("probe %d, reference %d (fault %d/%d level %u/%u)",
		     err, x->ok, r->fault, x->fault, r->level, x->level);
	if (x->ok && (x->oa != r->oa || x->level != r->level))
		fail("oa 0x%" PRIx64 "/0x%" PRIx64, r->oa, x->oa);
	if (!x->ok && (x->fault != r->fault || x->level != r->level))
		fail("fault %d/%d level %u/%u", r->fault, x->fault, r->level,
		     x->level);
}

/*
 * check_memory() - after an access walk: at most the leaf changed, only
 * bits 10 and 7, as the result reports.
 */
static void check_memory(int err, const struct lpae_result *r)
{
	for (size_t i = 0; i < ARRAY_LEN(ram); i++) {
		uint64_t diff = ram[i] ^ snap[i], gpa = RAM_GPA + 8 * i;
		uint64_t want = 0;

		if (!err && gpa == r->desc_addr)
			want = (r->af_set ? 1ull << 10 : 0) |
			       (r->dirty_set ? 1ull << 7 : 0);
		if (diff != want)
			fail("word at 0x%" PRIx64 " changed by 0x%" PRIx64
			     " (want 0x%" PRIx64 ")", gpa, diff, want);
	}
}

/* walk_checked() - one walk with the visitor and fault/ok invariants. */
static int walk_checked(const struct lpae_cfg *c, struct viommu_mem *mem,
			uint64_t root, uint64_t iova, unsigned int access,
			bool hook, struct lpae_result *r)
{
	struct lpae_visitor v = { .step = seen_step,
				  .table_addr = hook ? hook_fn : NULL };
	struct seen sn = { .c = c, .last_level = -1, .hook = hook };
	int err = lpae_walk(c, mem, root, iova, access, &v, &sn, r);

	if (err && err != -EFAULT)
		fail("walk returned %d", err);
	if (err)
		check_fault(c, iova, access, hook, r);
	else
		check_ok(c, iova, access, r);
	return err;
}

/* probe_pair() - one probe: access 0 first, then with @access, twice. */
static void probe_pair(const struct lpae_cfg *c, struct viommu_mem *mem,
		       uint64_t root, uint64_t iova, unsigned int access,
		       bool hook)
{
	struct lpae_result p, a, b;
	struct ref x = ref_walk(c, root, iova);
	int ep = walk_checked(c, mem, root, iova, 0, hook, &p), ea, eb;

	compare_ref(&x, ep, &p, hook);
	memcpy(snap, ram, sizeof(ram));
	ea = walk_checked(c, mem, root, iova, access, hook, &a);
	check_memory(ea, &a);
	if (ep && !ea)
		fail("probe faulted (%d) but the access walk did not",
		     p.fault);
	if (ep && !(hook && a.fault == LPAE_FAULT_TABLE_HOOK) &&
	    (a.fault != p.fault || a.level != p.level))
		fail("probe fault %d/%u, access fault %d/%u", p.fault,
		     p.level, a.fault, a.level);
	if (!ep && !ea && (a.oa != p.oa || a.size != p.size))
		fail("probe and access disagree");
	if (!ep && ea && a.fault != LPAE_FAULT_ACCESS &&
	    a.fault != LPAE_FAULT_PERMISSION &&
	    a.fault != LPAE_FAULT_WALK_EABT &&
	    a.fault != LPAE_FAULT_TABLE_HOOK)
		fail("access walk fault %d after a clean probe", a.fault);
	memcpy(snap, ram, sizeof(ram));
	eb = walk_checked(c, mem, root, iova, access, hook, &b);
	check_memory(eb, &b);
	if (ea != eb || b.af_set || b.dirty_set ||
	    (!ea && (a.oa != b.oa || a.perm != b.perm)))
		fail("second walk differs");
}

/* fill_ram() - tile the input words over RAM (and the RO region). */
static void fill_ram(const uint8_t *d, size_t n, bool tame, bool align,
		     unsigned int granule)
{
	size_t words = n / 8;

	for (size_t i = 0; i < ARRAY_LEN(ram); i++) {
		uint64_t w = words ? get_u64(d + 8 * (i % words)) : 0;

		if (tame)
			w = tame_addr(w);
		if (tame && align)
			w &= ~((uint64_t)(granule - 1) & ADDR_MASK);
		ram[i] = w;
	}
	for (size_t i = 0; i < ARRAY_LEN(ro); i++)
		ro[i] = ram[i];
}

static void walker_mode(const uint8_t *data, size_t size,
			const struct lpae_cfg *c, struct viommu_mem *mem)
{
	bool tame = data[1] & 0x08, hook = data[1] & 0x20;
	uint64_t root = get_u64(data + 2);

	fill_ram(data + HDR, size - HDR, tame, data[2] & 1, c->granule);
	if (tame) {
		root = RAM_GPA + ((root >> 3) % (RAM_SIZE / 8)) * 8;
		if (data[3] & 1)
			root &= ~(lpae_pgd_size(c) - 1);
	}
	for (int i = 0; i < 4; i++) {
		const uint8_t *p = data + 10 + 9 * i;
		uint64_t iova = get_u64(p);
		unsigned int access = p[8] & (RWX | 0x08);

		if (access & 0x08)
			access = (access & ~0x08u) | LPAE_ACC_PRIV;
		if (tame && !(p[8] & 0x80))
			iova &= (1ull << c->ias) - 1;
		probe_pair(c, mem, root, iova, access, hook);
	}
}

/* ---- builder mode ----------------------------------------------------- */

#define MAX_PAGES 16384 /* two 512M blocks of 64K pages */
#define MAX_RECS 32     /* records per input (a record may touch 16K pages) */
#define FREE_SLOTS 64

struct model {
	const struct lpae_cfg *c;
	struct viommu_mem *mem;
	struct lpae_ops ops;
	uint64_t root, base, block, npages;
	uint64_t next;                    /* bump allocator */
	uint64_t free_gpa[FREE_SLOTS], free_size[FREE_SLOTS];
	int nfree;
	uint64_t pa[MAX_PAGES];           /* model: output, or ~0 */
	uint8_t prot[MAX_PAGES];
};

static struct model model;

/* m_alloc() - reuse a freed table of the same size, else bump. */
static int m_alloc(void *opaque, uint64_t size, uint64_t align,
		   uint64_t *gpa)
{
	struct model *m = opaque;

	for (int i = 0; i < m->nfree; i++) {
		if (m->free_size[i] == size) {
			*gpa = m->free_gpa[i];
			m->free_gpa[i] = m->free_gpa[--m->nfree];
			m->free_size[i] = m->free_size[m->nfree];
			return 0;
		}
	}
	m->next = (m->next + align - 1) & ~(align - 1);
	if (m->next + size > RAM_GPA + BRAM_SIZE)
		return -ENOMEM;
	*gpa = m->next;
	m->next += size;
	return 0;
}

static void m_free(void *opaque, uint64_t gpa, uint64_t size)
{
	struct model *m = opaque;

	if (gpa < RAM_GPA || gpa - RAM_GPA >= BRAM_SIZE)
		fail("free of 0x%" PRIx64, gpa);
	if (m->nfree < FREE_SLOTS) {
		m->free_gpa[m->nfree] = gpa;
		m->free_size[m->nfree++] = size;
	}
}

/* check_page() - page @i translates as the model says. */
static void check_page(struct model *m, uint64_t i)
{
	uint64_t iova = m->base + i * m->c->granule;
	struct lpae_result r;
	int err = lpae_walk(m->c, m->mem, m->root, iova + 8, 0, NULL, NULL,
			    &r);

	if (m->pa[i] == ~0ull) {
		if (!err || r.fault != LPAE_FAULT_TRANSLATION)
			fail("page %" PRIu64 " should be unmapped", i);
		return;
	}
	if (err || r.oa != m->pa[i] + 8)
		fail("page %" PRIu64 ": err %d oa 0x%" PRIx64 " want 0x%"
		     PRIx64, i, err, r.oa, m->pa[i] + 8);
	if ((r.perm & (VIOMMU_READ | VIOMMU_WRITE)) != m->prot[i] &&
	    !(m->c->stage == LPAE_STAGE1 && m->prot[i] == VIOMMU_WRITE))
		fail("page %" PRIu64 ": perm 0x%x want 0x%x", i, r.perm,
		     m->prot[i]);
}

/* check_range() - the ends of a range and about 64 pages in between. */
static void check_range(struct model *m, uint64_t first, uint64_t n)
{
	for (uint64_t i = first; i < first + n; i += 1 + n / 64)
		check_page(m, i);
	check_page(m, first + n - 1);
}

/* do_map() - map pages [@first, @first + @n) and check the answer. */
static void do_map(struct model *m, uint64_t first, uint64_t n,
		   uint64_t pa, unsigned int prot)
{
	bool overlap = false;
	int err;

	for (uint64_t i = first; i < first + n; i++)
		overlap |= m->pa[i] != ~0ull;
	err = lpae_map(m->c, &m->ops, m->root,
		       m->base + first * m->c->granule, pa,
		       n * m->c->granule, prot);
	if (overlap ? err != -EEXIST : err != 0 && err != -ENOMEM)
		fail("map %" PRIu64 "+%" PRIu64 ": %d (overlap %d)", first, n,
		     err, overlap);
	for (uint64_t i = first; !err && i < first + n; i++) {
		m->pa[i] = pa + (i - first) * m->c->granule;
		m->prot[i] = prot & (VIOMMU_READ | VIOMMU_WRITE);
	}
	check_range(m, first, n);
}

/* leaf_span() - first and last page of the leaf holding page @i. */
static void leaf_span(struct model *m, uint64_t i, uint64_t *lo,
		      uint64_t *hi)
{
	uint64_t iova = m->base + i * m->c->granule, start;
	struct lpae_result r;

	if (lpae_walk(m->c, m->mem, m->root, iova, 0, NULL, NULL, &r))
		fail("mapped page %" PRIu64 " does not translate", i);
	start = iova & ~(r.size - 1);
	*lo = (start - m->base) / m->c->granule;
	*hi = *lo + r.size / m->c->granule - 1;
}

/* do_unmap() - unmap pages [@first, @first + @n) and check the answer. */
static void do_unmap(struct model *m, uint64_t first, uint64_t n)
{
	uint64_t bytes = 0, got = 0, lo, hi;
	bool straddle = false;
	int err;

	for (uint64_t i = first; i < first + n; i++) {
		if (m->pa[i] == ~0ull)
			continue;
		leaf_span(m, i, &lo, &hi);
		straddle |= lo < first || hi >= first + n;
		hi = hi < first + n ? hi : first + n - 1;
		bytes += (hi - i + 1) * m->c->granule;
		i = hi;
	}
	err = lpae_unmap(m->c, &m->ops, m->root,
			 m->base + first * m->c->granule, n * m->c->granule,
			 &got);
	if (straddle ? err != -ERANGE : err != 0 || got != bytes)
		fail("unmap %" PRIu64 "+%" PRIu64 ": %d, %" PRIu64 " bytes, "
		     "want %s %" PRIu64, first, n, err, got,
		     straddle ? "-ERANGE" : "", bytes);
	for (uint64_t i = first; !err && i < first + n; i++)
		m->pa[i] = ~0ull;
	check_range(m, first, n);
}

/* rec_range() - pages [first, first + n) from a record, in the window. */
static void rec_range(struct model *m, const uint8_t *r, uint64_t *first,
		      uint64_t *n)
{
	uint64_t bpages = m->block / m->c->granule;
	uint64_t v = r[1] | (uint64_t)r[2] << 8;

	*first = v % m->npages;
	if (r[0] & 0x10)
		*first -= *first % bpages; /* block-aligned start */
	switch ((r[0] >> 5) & 3) {
	case 0:
		*n = 1 + r[3] % 8;
		break;
	case 1:
		*n = bpages;
		break;
	case 2:
		*n = 1 + (r[3] | (uint64_t)r[4] << 8) % (2 * bpages);
		break;
	default:
		*n = bpages + 1 + r[3] % 4;
		break;
	}
	if (*first + *n > m->npages)
		*n = m->npages - *first;
}

static void builder_mode(const uint8_t *data, size_t size,
			 const struct lpae_cfg *c, struct viommu_mem *mem)
{
	struct model *m = &model;
	static const unsigned int protos[] = {
		VIOMMU_READ, VIOMMU_WRITE, VIOMMU_READ | VIOMMU_WRITE,
		VIOMMU_READ | VIOMMU_WRITE | LPAE_PROT_CONTIG,
	};

	memset(m, 0, sizeof(*m));
	m->c = c;
	m->mem = mem;
	m->ops = (struct lpae_ops){ .mem = mem, .alloc = m_alloc,
				    .free = m_free, .opaque = m };
	m->next = RAM_GPA;
	m->block = 1ull << lpae_level_shift(c, 2);
	m->npages = 2 * m->block / c->granule;
	m->base = 3 * m->block;
	if (m->base + 2 * m->block > (1ull << c->ias) ||
	    2 * m->block > (1ull << c->oas) || m->npages > MAX_PAGES)
		return;
	for (uint64_t i = 0; i < m->npages; i++)
		m->pa[i] = ~0ull;
	if (lpae_alloc_root(c, &m->ops, &m->root))
		return;
	for (size_t off = HDR; off + 8 <= size && off < HDR + 8 * MAX_RECS;
	     off += 8) {
		const uint8_t *r = data + off;
		uint64_t first, n, pa;

		rec_range(m, r, &first, &n);
		if (r[0] & 1) {
			do_unmap(m, first, n);
			continue;
		}
		pa = (uint64_t)(r[5] % 4) * m->block +
		     (r[0] & 0x80 ? (uint64_t)r[6] * c->granule : 0) +
		     first % (m->block / c->granule) * c->granule;
		do_map(m, first, n, pa, protos[(r[0] >> 1) & 3]);
		check_page(m, (first * 7 + r[7]) % m->npages);
	}
	for (uint64_t i = 0; i < m->npages; i += 1 + m->npages / 64)
		check_page(m, i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct viommu_mem *mem;
	struct lpae_cfg c;

	if (size < HDR || decode_cfg(data, &c))
		return 0;
	mem = make_mem(data[1] & 0x80);
	if (!mem)
		fail("cannot make guest memory");
	if (data[1] & 0x80) {
		builder_mode(data, size, &c, mem);
	} else {
		walker_mode(data, size, &c, mem);
	}
	viommu_mem_destroy(mem);
	return 0;
}
