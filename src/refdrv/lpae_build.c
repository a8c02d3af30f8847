/*
 * lpae_build.c - the LPAE table builder (lpae_build.h): map, unmap and
 * free over tables from the caller's allocator, with descriptors built by
 * lpae_desc_encode() and stored atomically through the memory layer, so a
 * walker running concurrently (an SMMU model translating DMA) sees either
 * the old or the new descriptor.
 */
#include "refdrv/lpae_build.h"
#include "base/bits.h"
#include "base/util.h"

#include <endian.h>
#include <errno.h>

/* ---- builder ---------------------------------------------------------- */

/*
 * struct run - descriptors of one table read ahead, RUN_LEN at a time,
 * with one viommu_mem_read() instead of a lpae_desc_load() (a region
 * lookup and the memory layer's read lock) per entry: scanning a table
 * whole (an empty 64K-granule table has 8,192 entries) was most of what
 * the builder cost.  Only the builder writes these tables; a concurrent
 * walker with HTTU may set AF or the dirty state in a leaf, which changes
 * neither the type, the address nor the contiguous hint the builder reads.
 * The builder's own stores go to entries it has read already, or clear
 * the contiguous hint of neighbours (break_contig(), which clears it in
 * the read-ahead too).  A read that fails (the table
 * runs out of RAM) falls back to one load per entry, so an entry faults
 * exactly where it did.
 */
#define RUN_LEN 64

struct run {
	struct viommu_mem *mem;
	uint64_t gpa;          /* the table */
	uint64_t first, n;     /* entries [first, first + n) are in raw */
	uint64_t raw[RUN_LEN]; /* little-endian as in memory */
};

static void run_init(struct run *r, struct viommu_mem *mem, uint64_t gpa)
{
	r->mem = mem;
	r->gpa = gpa;
	r->first = 0;
	r->n = 0;
}

/* run_load() - entry @i of the table, of @count; 0 or -EFAULT. */
static int run_load(struct run *r, uint64_t i, uint64_t count,
		    uint64_t *raw)
{
	if (i < r->first || i - r->first >= r->n) {
		uint64_t k = MIN(count - i, (uint64_t)RUN_LEN);

		r->first = i;
		r->n = 0;
		if (viommu_mem_read(r->mem, r->gpa + 8 * i, r->raw,
				    (size_t)(8 * k)))
			return lpae_desc_load(r->mem, r->gpa + 8 * i, raw);
		r->n = k;
	}
	*raw = le64toh(r->raw[i - r->first]);
	return 0;
}

/* table_size() - bytes of a table at @level. */
static uint64_t table_size(const struct lpae_cfg *c, unsigned int level)
{
	return level == c->sl ? lpae_pgd_size(c) : c->granule;
}

/* zero_table() - clear @size bytes of guest RAM at @gpa. */
static int zero_table(struct viommu_mem *mem, uint64_t gpa, uint64_t size)
{
	static const uint8_t zeros[4096];

	for (uint64_t off = 0; off < size; off += sizeof(zeros)) {
		uint64_t n = MIN(size - off, (uint64_t)sizeof(zeros));
		int err = viommu_mem_write(mem, gpa + off, zeros, (size_t)n);

		if (err)
			return -EFAULT;
	}
	return 0;
}

/* new_table() - allocate and zero a table of @size bytes. */
static int new_table(const struct lpae_ops *ops, uint64_t size,
		     uint64_t *gpa)
{
	int err = ops->alloc(ops->opaque, size, size, gpa);

	if (err)
		return err < 0 ? err : -ENOMEM;
	err = zero_table(ops->mem, *gpa, size);
	if (err && ops->free)
		ops->free(ops->opaque, *gpa, size);
	return err;
}

int lpae_alloc_root(const struct lpae_cfg *c, const struct lpae_ops *ops,
		    uint64_t *root)
{
	if (!lpae_cfg_usable(c) || !ops || !ops->mem || !ops->alloc || !root)
		return -EINVAL;
	return new_table(ops, lpae_pgd_size(c), root);
}

/* free_table() - give a table back to the allocator, if it takes them. */
static void free_table(const struct lpae_ops *ops, uint64_t gpa,
		       uint64_t size)
{
	if (ops->free)
		ops->free(ops->opaque, gpa, size);
}

/* free_subtree() - free the tables below the table at @gpa (@level). */
static void free_subtree(const struct lpae_cfg *c, const struct lpae_ops *ops,
			 uint64_t gpa, unsigned int level)
{
	uint64_t n = table_size(c, level) / 8;
	struct run r;

	run_init(&r, ops->mem, gpa);
	for (uint64_t i = 0; level < 3 && i < n; i++) {
		struct lpae_desc d;
		uint64_t raw;

		if (run_load(&r, i, n, &raw))
			return;
		if (!(raw & LPAE_D_VALID))
			continue;
		lpae_desc_decode(c, level, raw, &d);
		if (d.type != LPAE_DESC_TABLE)
			continue;
		free_subtree(c, ops, d.addr, level + 1);
		free_table(ops, d.addr, c->granule);
	}
}

void lpae_free_tables(const struct lpae_cfg *c, const struct lpae_ops *ops,
		      uint64_t root)
{
	if (!lpae_cfg_usable(c) || !ops || !ops->mem)
		return;
	free_subtree(c, ops, root, c->sl);
	free_table(ops, root, lpae_pgd_size(c));
}

/*
 * table_empty() - whether the table at @gpa (@level) and everything
 * below it holds no valid leaf.  Return: 1, 0, or -EFAULT.
 */
static int table_empty(const struct lpae_cfg *c, struct viommu_mem *mem,
		       uint64_t gpa, unsigned int level)
{
	uint64_t n = c->granule / 8;
	struct run r;

	run_init(&r, mem, gpa);
	for (uint64_t i = 0; i < n; i++) {
		struct lpae_desc d;
		uint64_t raw;
		int ret;

		if (run_load(&r, i, n, &raw))
			return -EFAULT;
		if (!(raw & LPAE_D_VALID))
			continue; /* invalid: decoding says no more */
		lpae_desc_decode(c, level, raw, &d);
		if (d.type != LPAE_DESC_TABLE || level == 3)
			return 0;
		ret = table_empty(c, mem, d.addr, level + 1);
		if (ret != 1)
			return ret;
	}
	return 1;
}

/*
 * prot_leaf() - typed leaf fields for @prot (see LPAE_PROT_*): inner
 * shareable, AttrIndx per LPAE_LPAE_MAIR_IDX_*, MemAttr per LPAE_LPAE_S2_MEMATTR_*.
 */
static void prot_leaf(const struct lpae_cfg *c, unsigned int prot,
		      struct lpae_desc *d)
{
	bool w = prot & VIOMMU_WRITE, clean = w && (prot & LPAE_PROT_DBM);

	memset(d, 0, sizeof(*d));
	d->af = !(prot & LPAE_PROT_NO_AF);
	d->sh = LPAE_SH_INNER;
	d->dbm = clean;
	if (c->stage == LPAE_STAGE1) {
		d->ap = (prot & LPAE_PROT_PRIV ? 0 : LPAE_AP_UNPRIV) |
			(w && !clean ? 0 : LPAE_AP_RO);
		d->ng = !(prot & LPAE_PROT_GLOBAL);
		d->uxn = d->pxn = !(prot & VIOMMU_EXEC);
		d->attrindx = prot & LPAE_PROT_MMIO ? LPAE_MAIR_IDX_DEV :
			      prot & LPAE_PROT_CACHE ? LPAE_MAIR_IDX_CACHE :
						       LPAE_MAIR_IDX_NC;
	} else {
		d->s2ap = (prot & VIOMMU_READ ? LPAE_S2AP_R : 0) |
			  (w && !clean ? LPAE_S2AP_W : 0);
		d->xn = !(prot & VIOMMU_EXEC);
		d->memattr = prot & LPAE_PROT_MMIO ? LPAE_S2_MEMATTR_DEV :
			     prot & LPAE_PROT_CACHE ? LPAE_S2_MEMATTR_WB :
						      LPAE_S2_MEMATTR_NC;
	}
}

/*
 * struct build - one map or unmap call.  A map remembers the table its
 * last leaves went in (@tbl, for leaves at @tbl_level of inputs
 * [@tbl_base, @tbl_base + span of that table)): the next leaves of the
 * same level in the same table skip the walk down from the root (a load
 * per level per leaf, most of a map's cost).  The path cannot change
 * under it: a map only adds tables above its leaves, and a slot it frees
 * for a larger leaf lies past the inputs it has mapped (it maps upwards).
 */
struct build {
	const struct lpae_cfg *c;
	const struct lpae_ops *ops;
	uint64_t root;
	unsigned int tbl_level; /* 0: nothing remembered (root levels too) */
	uint64_t tbl_base, tbl;
};

/*
 * next_table() - the table the entry at @ea (@level) points to, creating
 * it if the entry is invalid.  Return: 0 with its GPA; -EEXIST (a leaf or
 * reserved entry is in the way); allocation errno; -EFAULT.
 */
static int next_table(const struct build *b, uint64_t ea, unsigned int level,
		      uint64_t *next)
{
	struct lpae_desc d;
	uint64_t raw;
	int err;

	if (lpae_desc_load(b->ops->mem, ea, &raw))
		return -EFAULT;
	lpae_desc_decode(b->c, level, raw, &d);
	if (d.type == LPAE_DESC_TABLE) {
		*next = d.addr;
		return 0;
	}
	if (d.type != LPAE_DESC_INVALID)
		return -EEXIST;
	err = new_table(b->ops, b->c->granule, next);
	if (err)
		return err;
	memset(&d, 0, sizeof(d));
	d.type = LPAE_DESC_TABLE;
	d.addr = *next;
	err = lpae_desc_store(b->ops->mem, ea, lpae_desc_encode(b->c, level, &d));
	if (err)
		free_table(b->ops, *next, b->c->granule);
	return err ? -EFAULT : 0;
}

/*
 * slot_free() - make the entry at @ea (@level) ready for a leaf: invalid
 * is fine; an empty table is freed and cleared.  Return: 0; -EEXIST;
 * -EFAULT.
 */
static int slot_free(const struct build *b, uint64_t ea, unsigned int level)
{
	struct lpae_desc d;
	uint64_t raw;
	int ret;

	if (lpae_desc_load(b->ops->mem, ea, &raw))
		return -EFAULT;
	lpae_desc_decode(b->c, level, raw, &d);
	if (d.type == LPAE_DESC_INVALID)
		return 0;
	if (d.type != LPAE_DESC_TABLE)
		return -EEXIST;
	ret = table_empty(b->c, b->ops->mem, d.addr, level + 1);
	if (ret != 1)
		return ret ? ret : -EEXIST;
	if (lpae_desc_store(b->ops->mem, ea, 0))
		return -EFAULT;
	free_subtree(b->c, b->ops, d.addr, level + 1);
	free_table(b->ops, d.addr, b->c->granule);
	return 0;
}

/*
 * put_leaves() - write @n consecutive leaves at @level for @iova -> @pa,
 * with the contiguous hint when @n > 1, creating tables on the way.
 */
static int put_leaves(struct build *b, uint64_t iova, uint64_t pa,
		      unsigned int level, unsigned int n, unsigned int prot)
{
	const struct lpae_cfg *c = b->c;
	uint64_t tbl = b->root, size = BIT(lpae_level_shift(c, level)), ea;
	uint64_t span = level > c->sl ? BIT(lpae_level_shift(c, level - 1))
				      : 0;
	struct lpae_desc d;
	int err = 0;

	if (span && b->tbl_level == level &&
	    (iova & ~(span - 1)) == b->tbl_base) {
		tbl = b->tbl;
	} else {
		for (unsigned int l = c->sl; l < level && !err; l++)
			err = next_table(b, tbl + 8ull *
					 lpae_level_index(c, l, iova), l, &tbl);
		if (err)
			return err;
		if (span) {
			b->tbl_level = level;
			b->tbl_base = iova & ~(span - 1);
			b->tbl = tbl;
		}
	}
	ea = tbl + 8ull * lpae_level_index(c, level, iova);
	for (unsigned int i = 0; i < n && !err; i++)
		err = slot_free(b, ea + 8ull * i, level);
	if (err)
		return err;
	prot_leaf(c, prot, &d);
	d.type = level == 3 ? LPAE_DESC_PAGE : LPAE_DESC_BLOCK;
	d.contig = n > 1;
	for (unsigned int i = 0; i < n && !err; i++) {
		d.addr = pa + i * size;
		err = lpae_desc_store(b->ops->mem, ea + 8ull * i,
				 lpae_desc_encode(c, level, &d));
	}
	return err ? -EFAULT : 0;
}

/* size_ok() - whether the builder may use leaves of @size. */
static bool size_ok(const struct build *b, uint64_t size)
{
	return !b->ops->pgsizes || (b->ops->pgsizes & size);
}

/*
 * pick_level() - the level of the largest leaf that fits at @iova/@pa
 * with @left bytes to go, and how many entries (a contiguous group or 1).
 */
static unsigned int pick_level(const struct build *b, uint64_t iova,
			       uint64_t pa, uint64_t left, unsigned int prot,
			       unsigned int *n)
{
	const struct lpae_cfg *c = b->c;
	unsigned int lvl = 3;

	for (unsigned int l = c->sl; l < 3; l++) {
		uint64_t s = BIT(lpae_level_shift(c, l));

		if (lpae_leaf_ok(c, l) && size_ok(b, s) && left >= s &&
		    !((iova | pa) & (s - 1))) {
			lvl = l;
			break;
		}
	}
	*n = 1;
	if (prot & LPAE_PROT_CONTIG) {
		uint64_t g = lpae_contig_entries(c, lvl) *
			     BIT(lpae_level_shift(c, lvl));

		if (left >= g && !((iova | pa) & (g - 1)))
			*n = lpae_contig_entries(c, lvl);
	}
	return lvl;
}

/* range_check() - common argument checks for map and unmap. */
static int range_check(const struct lpae_cfg *c, const struct lpae_ops *ops,
		       uint64_t iova, uint64_t size)
{
	if (!lpae_cfg_usable(c) || !ops || !ops->mem)
		return -EINVAL;
	if (!size || ((iova | size) & (c->granule - 1)))
		return -EINVAL;
	if (iova >> c->ias || size > BIT(c->ias) - iova)
		return -EINVAL;
	return 0;
}

static int unmap_range(const struct build *b, uint64_t iova, uint64_t size,
		       uint64_t *unmapped);

int lpae_map(const struct lpae_cfg *c, const struct lpae_ops *ops,
	     uint64_t root, uint64_t iova, uint64_t pa, uint64_t size,
	     unsigned int prot)
{
	struct build b = { .c = c, .ops = ops, .root = root };
	uint64_t done = 0, dummy;
	int err = range_check(c, ops, iova, size);

	if (err || !ops->alloc || (pa & (c->granule - 1)) ||
	    pa >> c->oas || size > BIT(c->oas) - pa ||
	    !(prot & (VIOMMU_READ | VIOMMU_WRITE)))
		return -EINVAL;
	if (ops->pgsizes && !(ops->pgsizes & c->granule))
		return -EINVAL;
	while (done < size) {
		unsigned int n, lvl = pick_level(&b, iova + done, pa + done,
						 size - done, prot, &n);

		err = put_leaves(&b, iova + done, pa + done, lvl, n, prot);
		if (err)
			goto rollback;
		done += (uint64_t)n << lpae_level_shift(c, lvl);
	}
	return 0;

rollback:
	if (done)
		unmap_range(&b, iova, done, &dummy);
	return err;
}

/*
 * struct unmap - one unmap pass over [first, last].  The check pass
 * (!apply) only looks for straddling leaves; the apply pass clears.
 */
struct unmap {
	const struct build *b;
	uint64_t first, last;
	bool apply;
	uint64_t bytes;
};

/*
 * break_contig() - clear the hint on the group around entry @ea, and in
 * the entries of @r (the table's read-ahead) it holds, so that the next
 * entries of the group do not break it again.
 */
static int break_contig(const struct build *b, uint64_t ea,
			unsigned int level, struct run *r)
{
	uint64_t n = lpae_contig_entries(b->c, level);
	uint64_t base = ea & ~(8 * n - 1); /* tables are aligned to >= 8n */

	for (uint64_t i = 0; i < n; i++) {
		uint64_t raw, k = (base + 8 * i - r->gpa) / 8;

		if (lpae_desc_load(b->ops->mem, base + 8 * i, &raw))
			return -EFAULT;
		if ((raw & LPAE_D_VALID) && (raw & LPAE_D_CONTIG) &&
		    lpae_desc_store(b->ops->mem, base + 8 * i, raw & ~LPAE_D_CONTIG))
			return -EFAULT;
		if (k >= r->first && k - r->first < r->n)
			r->raw[k - r->first] &= ~htole64(LPAE_D_CONTIG);
	}
	return 0;
}

static int unmap_table(struct unmap *u, uint64_t tbl, unsigned int level,
		       uint64_t base);

/*
 * unmap_entry() - one entry at @ea, read as @raw through @r, spanning
 * [@es, @es + @span): clear a covered leaf, refuse a straddling one,
 * descend into a table and free it when the range covers it whole.
 */
static int unmap_entry(struct unmap *u, struct run *r, uint64_t ea,
		       unsigned int level, uint64_t es, uint64_t span,
		       uint64_t raw)
{
	const struct build *b = u->b;
	bool whole = es >= u->first && es + (span - 1) <= u->last;
	struct lpae_desc d;
	int err;

	if (!(raw & LPAE_D_VALID))
		return 0;
	lpae_desc_decode(b->c, level, raw, &d);
	if (d.type == LPAE_DESC_INVALID || d.type == LPAE_DESC_RESERVED)
		return 0;
	if (d.type == LPAE_DESC_TABLE) {
		err = unmap_table(u, d.addr, level + 1, es);
		if (err || !whole || !u->apply)
			return err;
		if (lpae_desc_store(b->ops->mem, ea, 0))
			return -EFAULT;
		free_subtree(b->c, b->ops, d.addr, level + 1);
		free_table(b->ops, d.addr, b->c->granule);
		return 0;
	}
	if (!whole)
		return -ERANGE;
	if (!u->apply)
		return 0;
	if (lpae_desc_store(b->ops->mem, ea, 0))
		return -EFAULT;
	u->bytes += span;
	return d.contig ? break_contig(b, ea, level, r) : 0;
}

/*
 * unmap_table() - the entries of the table at @tbl (@level) that meet the
 * range; the table translates inputs from @base on.
 */
static int unmap_table(struct unmap *u, uint64_t tbl, unsigned int level,
		       uint64_t base)
{
	const struct lpae_cfg *c = u->b->c;
	unsigned int shift = lpae_level_shift(c, level);
	uint64_t span = BIT(shift), n = BIT(lpae_level_bits(c, level));
	uint64_t i = u->first > base ? (u->first - base) >> shift : 0;
	uint64_t end = MIN((u->last - base) >> shift, n - 1);
	struct run r;
	int err = 0;

	run_init(&r, u->b->ops->mem, tbl);
	for (; i <= end && !err; i++) {
		uint64_t raw;

		if (run_load(&r, i, end + 1, &raw))
			return -EFAULT;
		err = unmap_entry(u, &r, tbl + 8 * i, level, base + i * span,
				  span, raw);
	}
	return err;
}

/* unmap_range() - check, then clear; *@unmapped gets the bytes. */
static int unmap_range(const struct build *b, uint64_t iova, uint64_t size,
		       uint64_t *unmapped)
{
	struct unmap u = { .b = b, .first = iova, .last = iova + (size - 1) };
	int err = unmap_table(&u, b->root, b->c->sl, 0);

	if (err)
		return err;
	u.apply = true;
	err = unmap_table(&u, b->root, b->c->sl, 0);
	*unmapped = u.bytes;
	return err;
}

int lpae_unmap(const struct lpae_cfg *c, const struct lpae_ops *ops,
	       uint64_t root, uint64_t iova, uint64_t size,
	       uint64_t *unmapped)
{
	struct build b = { .c = c, .ops = ops, .root = root };
	int err = range_check(c, ops, iova, size);

	if (err || !unmapped)
		return -EINVAL;
	*unmapped = 0;
	return unmap_range(&b, iova, size, unmapped);
}
