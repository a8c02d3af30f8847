/*
 * vtdpt.c - the VT-d second- and first-level page-table walker and
 * builder (see vtdpt.h for the formats and the fault order).
 *
 * Every entry is read with viommu_mem_read() into host memory once and
 * decoded from that copy; nothing is re-read after a check.  The only
 * writes the walker makes are first-level A/D updates, done as a
 * compare-and-swap on the entry through viommu_mem_ptr() so a concurrent
 * guest write is never lost: when the entry changed, the walk restarts.
 */
#include "pgtable/vtdpt.h"
#include "base/util.h"

#include <errno.h>

#define E_R (1ull << 0)
#define E_W (1ull << 1)
#define E_US (1ull << 2)
#define E_A (1ull << 5)
#define E_D (1ull << 6)
#define E_PS (1ull << 7)
#define E_SL_RSVD11 (1ull << 11)
#define E_XD (1ull << 63)
#define SL_IGN 0xfff0000000000000ull /* bits 63:52 */
#define FL_IGN 0x7ff0000000000000ull /* bits 62:52 */
#define RETRY 1

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* shift() - lowest input bit level @l resolves. */
static unsigned int shift(unsigned int l)
{
	return 12 + 9 * (l - 1);
}

bool vtdpt_cfg_ok(const struct vtdpt_cfg *c)
{
	if (!c || c->haw < 32 || c->haw > 52 || c->large < 1 || c->large > 3)
		return false;
	if (c->fmt == VTDPT_SL)
		return c->levels >= 3 && c->levels <= 5;
	return c->fmt == VTDPT_FL && (c->levels == 4 || c->levels == 5);
}

/* addr_mask() - the address field of an entry under @c. */
static uint64_t addr_mask(const struct vtdpt_cfg *c)
{
	return ((1ull << c->haw) - 1) & ~0xfffull;
}

/* rsvd() - reserved bits of entry @e at level @l (present entries). */
static bool rsvd(const struct vtdpt_cfg *c, unsigned int l, uint64_t e)
{
	uint64_t ign = c->fmt == VTDPT_SL ? SL_IGN : (FL_IGN | E_XD);
	uint64_t bad = ~ign & (((1ull << 52) - 1) & ~((1ull << c->haw) - 1));

	if (c->fmt == VTDPT_SL)
		bad |= E_SL_RSVD11;
	if (l > 1 && (e & E_PS)) {
		if (l > c->large)
			return true;
		/* a large leaf's address below its alignment (FL: bit 12 PAT) */
		bad |= ((1ull << shift(l)) - 1) &
		       ~((c->fmt == VTDPT_FL ? 0x1fffull : 0xfffull));
	}
	return (e & bad) != 0;
}

/* present() - whether @e is present. */
static bool present(const struct vtdpt_cfg *c, uint64_t e)
{
	return c->fmt == VTDPT_SL ? (e & (E_R | E_W)) != 0 : (e & 1) != 0;
}

/* fault() - fill @o with a fault and return -EFAULT. */
static int fault(struct vtdpt_result *o, enum vtdpt_fault f, unsigned int l)
{
	o->fault = f;
	o->level = l;
	return -EFAULT;
}

/* set_ad() - CAS @bits into the entry at @gpa holding @old. */
static int set_ad(struct viommu_mem *mem, uint64_t gpa, uint64_t old,
		  uint64_t bits)
{
	void *hva;
	size_t contig;
	uint64_t expect = old;

	if ((old & bits) == bits)
		return 0;
	if (viommu_mem_ptr(mem, gpa, 8, VIOMMU_WRITE, &hva, &contig) ||
	    contig < 8 || ((uintptr_t)hva & 7))
		return -EFAULT;
	/* Tables are little-endian; so is every host we build for. */
	if (__atomic_compare_exchange_n((uint64_t *)hva, &expect, old | bits,
					false, __ATOMIC_SEQ_CST,
					__ATOMIC_SEQ_CST))
		return 0;
	return RETRY;
}

/* perm_check() - the walk's accumulated permissions against @access. */
static int perm_check(const struct vtdpt_cfg *c, unsigned int access,
		      uint32_t perm, unsigned int l, struct vtdpt_result *o)
{
	if ((access & VIOMMU_WRITE) && !(perm & VIOMMU_WRITE))
		return fault(o, VTDPT_F_WRITE, l);
	if (c->fmt == VTDPT_SL && (access & (VIOMMU_READ | VIOMMU_EXEC)) &&
	    !(perm & VIOMMU_READ))
		return fault(o, VTDPT_F_READ, l);
	if (c->fmt == VTDPT_FL && (access & VIOMMU_EXEC) &&
	    !(perm & VIOMMU_EXEC))
		return fault(o, VTDPT_F_EXEC, l);
	return 0;
}

/* walk_once() - one attempt; RETRY when an A/D update lost a race. */
static int walk_once(const struct vtdpt_cfg *c, struct viommu_mem *mem,
		     uint64_t root, uint64_t iova, unsigned int access,
		     vtdpt_table_hook hook, void *opaque,
		     struct vtdpt_result *o)
{
	uint64_t table = root, e = 0, gpa;
	uint32_t perm = VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC;
	bool upd = c->fmt == VTDPT_FL && access;
	unsigned int l;
	uint8_t raw[8];
	int r;

	for (l = c->levels; l >= 1; l--) {
		uint64_t idx = (iova >> shift(l)) & 511;

		gpa = table + idx * 8;
		if (hook && hook(opaque, gpa, upd, &gpa))
			return fault(o, VTDPT_F_HOOK, l);
		o->fetch = gpa;
		if (viommu_mem_read(mem, gpa, raw, 8))
			return fault(o, VTDPT_F_FETCH, l);
		e = le64(raw);
		if (!present(c, e))
			return fault(o, VTDPT_F_NOT_PRESENT, l);
		if (rsvd(c, l, e))
			return fault(o, VTDPT_F_RSVD, l);
		if (c->fmt == VTDPT_SL) {
			if (!(e & E_R))
				perm &= ~(uint32_t)(VIOMMU_READ | VIOMMU_EXEC);
			if (!(e & E_W))
				perm &= ~(uint32_t)VIOMMU_WRITE;
		} else {
			if (!(e & E_W))
				perm &= ~(uint32_t)VIOMMU_WRITE;
			if (e & E_XD)
				perm &= ~(uint32_t)VIOMMU_EXEC;
		}
		if (l == 1 || (e & E_PS))
			break;
		if (upd && perm_check(c, access, perm, l, o) == 0) {
			r = set_ad(mem, gpa, e, E_A);
			if (r)
				return r == RETRY ? RETRY :
				       fault(o, VTDPT_F_FETCH, l);
		} else if (upd) {
			return -EFAULT;
		}
		table = e & addr_mask(c);
	}
	if (access && perm_check(c, access, perm, l, o))
		return -EFAULT;
	if (upd) {
		r = set_ad(mem, gpa, e, E_A |
			   ((access & VIOMMU_WRITE) ? E_D : 0));
		if (r)
			return r == RETRY ? RETRY : fault(o, VTDPT_F_FETCH, l);
	}
	o->size = 1ull << shift(l);
	o->oa = (e & addr_mask(c) & ~(o->size - 1)) | (iova & (o->size - 1));
	o->perm = perm;
	o->level = l;
	return 0;
}

int vtdpt_walk(const struct vtdpt_cfg *c, struct viommu_mem *mem,
	       uint64_t root, uint64_t iova, unsigned int access,
	       vtdpt_table_hook hook, void *opaque, struct vtdpt_result *out)
{
	unsigned int width;
	int r;

	if (!mem || !out || !vtdpt_cfg_ok(c))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	width = shift(c->levels) + 9;
	if (c->fmt == VTDPT_SL) {
		if (width < 64 && (iova >> width))
			return fault(out, VTDPT_F_RANGE, c->levels);
	} else {
		uint64_t top = iova >> (width - 1);

		/* canonical: bits 63..width-1 all equal */
		if (top != 0 && top != (~0ull >> (width - 1)))
			return fault(out, VTDPT_F_RANGE, c->levels);
	}
	if ((root & 0xfff) || (root >> c->haw))
		return fault(out, VTDPT_F_RSVD, c->levels);
	for (int i = 0; i < VTDPT_WALK_RETRIES; i++) {
		r = walk_once(c, mem, root, iova, access, hook, opaque, out);
		if (r != RETRY)
			return r;
	}
	return fault(out, VTDPT_F_FETCH, 0);
}

/* ---- builder ---------------------------------------------------------- */

static int rd(const struct vtdpt_ops *ops, uint64_t gpa, uint64_t *v)
{
	uint8_t b[8];

	if (viommu_mem_read(ops->mem, gpa, b, 8))
		return -EFAULT;
	*v = le64(b);
	return 0;
}

static int wr(const struct vtdpt_ops *ops, uint64_t gpa, uint64_t v)
{
	uint8_t b[8];

	put64(b, v);
	return viommu_mem_write(ops->mem, gpa, b, 8) ? -EFAULT : 0;
}

int vtdpt_alloc_root(const struct vtdpt_ops *ops, uint64_t *root)
{
	static const uint8_t zero[4096];
	int r;

	if (!ops || !ops->alloc || !root)
		return -EINVAL;
	r = ops->alloc(ops->opaque, root);
	if (r)
		return r;
	if (*root & 0xfff)
		return -EINVAL;
	return viommu_mem_write(ops->mem, *root, zero, sizeof(zero)) ?
	       -EFAULT : 0;
}

/* table_bits() - non-leaf entry bits for @c. */
static uint64_t table_bits(const struct vtdpt_cfg *c)
{
	return c->fmt == VTDPT_SL ? (E_R | E_W) : (1 | E_W | E_US);
}

/* leaf_bits() - leaf entry bits for @prot at level @l. */
static uint64_t leaf_bits(const struct vtdpt_cfg *c, unsigned int prot,
			  unsigned int l)
{
	uint64_t v = l > 1 ? E_PS : 0;

	if (c->fmt == VTDPT_SL)
		return v | ((prot & VIOMMU_READ) ? E_R : 0) |
		       ((prot & VIOMMU_WRITE) ? E_W : 0);
	v |= 1 | E_US | ((prot & VIOMMU_WRITE) ? E_W : 0);
	return v | ((prot & VIOMMU_EXEC) ? 0 : E_XD);
}

/* map_one() - one leaf of level @l at @iova. */
static int map_one(const struct vtdpt_cfg *c, const struct vtdpt_ops *ops,
		   uint64_t root, uint64_t iova, uint64_t pa,
		   unsigned int prot, unsigned int leaf)
{
	uint64_t table = root, e, gpa;
	int r;

	for (unsigned int l = c->levels; l > leaf; l--) {
		gpa = table + ((iova >> shift(l)) & 511) * 8;
		r = rd(ops, gpa, &e);
		if (r)
			return r;
		if (!present(c, e)) {
			uint64_t t;

			r = vtdpt_alloc_root(ops, &t);
			if (!r)
				r = wr(ops, gpa, t | table_bits(c));
			if (r)
				return r;
			e = t | table_bits(c);
		} else if (l == 1 || (e & E_PS)) {
			return -EEXIST;
		}
		table = e & addr_mask(c);
	}
	gpa = table + ((iova >> shift(leaf)) & 511) * 8;
	r = rd(ops, gpa, &e);
	if (r)
		return r;
	if (present(c, e))
		return -EEXIST;
	return wr(ops, gpa, (pa & addr_mask(c)) | leaf_bits(c, prot, leaf));
}

int vtdpt_map(const struct vtdpt_cfg *c, const struct vtdpt_ops *ops,
	      uint64_t root, uint64_t iova, uint64_t pa, uint64_t size,
	      unsigned int prot)
{
	unsigned int width;
	uint64_t last;

	if (!vtdpt_cfg_ok(c) || !ops || !ops->alloc ||
	    !(prot & (VIOMMU_READ | VIOMMU_WRITE)) ||
	    ((iova | pa | size) & 0xfff) || !range_last(iova, size, &last))
		return -EINVAL;
	width = shift(c->levels) + 9;
	if ((width < 64 && (last >> width)) || ((pa + size - 1) >> c->haw) ||
	    pa + size - 1 < pa)
		return -EINVAL;
	while (size) {
		unsigned int l = MIN(c->large, 3u);
		int r;

		while (l > 1 && (((iova | pa) & ((1ull << shift(l)) - 1)) ||
				 size < (1ull << shift(l))))
			l--;
		r = map_one(c, ops, root, iova, pa, prot, l);
		if (r)
			return r;
		iova += 1ull << shift(l);
		pa += 1ull << shift(l);
		size -= 1ull << shift(l);
	}
	return 0;
}

int vtdpt_unmap(const struct vtdpt_cfg *c, const struct vtdpt_ops *ops,
		uint64_t root, uint64_t iova, uint64_t size,
		uint64_t *unmapped)
{
	uint64_t done = 0, last;

	if (!vtdpt_cfg_ok(c) || !ops || !unmapped || ((iova | size) & 0xfff) ||
	    !range_last(iova, size, &last))
		return -EINVAL;
	*unmapped = 0;
	while (iova <= last) {
		uint64_t table = root, e = 0, gpa = 0, span = 1ull << 12;
		unsigned int l;
		int r;

		for (l = c->levels; l >= 1; l--) {
			gpa = table + ((iova >> shift(l)) & 511) * 8;
			r = rd(ops, gpa, &e);
			if (r)
				return r;
			span = 1ull << shift(l);
			if (!present(c, e) || l == 1 || (e & E_PS))
				break;
			table = e & addr_mask(c);
		}
		if (present(c, e)) {
			if ((iova & (span - 1)) || last - iova < span - 1)
				return -ERANGE;
			r = wr(ops, gpa, 0);
			if (r)
				return r;
			done += span;
		}
		/* next entry at this level */
		iova = (iova & ~(span - 1)) + span;
		if (!iova)
			break;
	}
	*unmapped = done;
	return 0;
}
