/*
 * lpae.c - Arm VMSAv8-64 long-descriptor translation tables: geometry,
 * typed descriptor decode/encode and the walker (the concepts and the
 * fault model are described in lpae.h).  The builder that writes tables
 * (reference drivers and tests only) is src/refdrv/lpae_build.c.
 *
 * Layout of this file: configuration and geometry; descriptor fields;
 * guest-memory access for descriptors (atomic 64-bit loads, stores and
 * compare-and-swap through viommu_mem_ptr(), plain viommu_mem_read/write
 * as a fallback); the walker (one pass per attempt, leaf checks,
 * permissions, hardware updates).
 *
 * Nothing here allocates host memory or logs: results and errnos carry
 * everything, and the front end that owns the guest writes the log line.
 */
#include "pgtable/lpae.h"
#include "base/util.h"

#include <endian.h>
#include <errno.h>

#define BIT64(n) (1ull << (n))
#define MASK64(hi, lo) ((~0ull >> (63 - (hi))) & ~(BIT64(lo) - 1))

/* Descriptor bits (VMSAv8-64, 48-bit output addresses). */
#define D_VALID     LPAE_D_VALID
#define D_TABLE     BIT64(1)           /* with VALID: table or page */
#define D_ADDR      MASK64(47, 12)
#define D_NT        BIT64(16)          /* blocks: FEAT_BBM nT, ignored */
#define D_ATTR_SHIFT 2                 /* AttrIndx[2:0] / MemAttr[3:0] */
#define D_NS        BIT64(5)
#define D_AP_SHIFT  6                  /* AP[2:1] / S2AP[1:0] */
#define D_AP_RO     BIT64(7)           /* stage 1 AP[2]; stage 2 S2AP[1] */
#define D_SH_SHIFT  8
#define D_AF        BIT64(10)
#define D_NG        BIT64(11)
#define D_DBM       BIT64(51)
#define D_CONTIG    LPAE_D_CONTIG
#define D_PXN       BIT64(53)
#define D_UXN       BIT64(54)          /* stage 2: XN[1] */
#define D_PXNTABLE  BIT64(59)
#define D_XNTABLE   BIT64(60)
#define D_APTABLE_SHIFT 61
#define D_NSTABLE   BIT64(63)

#define AP_UNPRIV LPAE_AP_UNPRIV
#define AP_RO     LPAE_AP_RO
#define S2AP_R    LPAE_S2AP_R
#define S2AP_W    LPAE_S2AP_W
#define APT_NO_UNPRIV 1u
#define APT_NO_WRITE  2u

#define PERM_RWX (VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC)

/* ---- configuration and geometry -------------------------------------- */

/* oas_ok() - whether @oas is one of the PS encodings we model. */
static bool oas_ok(unsigned int oas)
{
	static const unsigned int sizes[] = { 32, 36, 40, 42, 44, 48 };

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		if (sizes[i] == oas)
			return true;
	return false;
}

/* granule_shift() - log2 of a supported granule, or 0. */
static unsigned int granule_shift(unsigned int granule)
{
	switch (granule) {
	case 4096:
		return 12;
	case 16384:
		return 14;
	case 65536:
		return 16;
	default:
		return 0;
	}
}

unsigned int lpae_level_shift(const struct lpae_cfg *c, unsigned int level)
{
	return c->pg_shift + (3 - level) * c->bpl;
}

/*
 * concat_mandatory() - the stage-2 cases where the architecture (and
 * Linux io-pgtable-arm) require starting one level lower with
 * concatenated tables instead of at @sl.
 */
static bool concat_mandatory(const struct lpae_cfg *c, unsigned int sl)
{
	if (c->granule == 16384 && sl == 0)
		return c->oas == 48 || c->ias == 48;
	if (c->granule == 4096 && sl == 0)
		return c->oas == 40 || c->oas == 42;
	return c->granule == 16384 && sl == 1 && c->oas == 40;
}

/* check_fields() - the caller's fields on their own.  Return 0/-EINVAL. */
static int check_fields(const struct lpae_cfg *c)
{
	if (c->stage != LPAE_STAGE1 && c->stage != LPAE_STAGE2)
		return -EINVAL;
	if (!granule_shift(c->granule) || !oas_ok(c->oas))
		return -EINVAL;
	if (c->ias < 25 || c->ias > 48 || c->big_endian)
		return -EINVAL;
	if (c->hd && !c->ha)
		return -EINVAL;
	if (c->stage == LPAE_STAGE1)
		return c->start_level == LPAE_SL_AUTO ? 0 : -EINVAL;
	if (c->hpd || c->ias > c->oas)
		return -EINVAL;
	if (c->start_level != LPAE_SL_AUTO &&
	    (c->start_level < 0 || c->start_level > 3))
		return -EINVAL;
	return 0;
}

int lpae_cfg_validate(struct lpae_cfg *c)
{
	unsigned int natural, sl, levels;
	int bits;

	if (!c || check_fields(c))
		return -EINVAL;
	c->pg_shift = granule_shift(c->granule);
	c->bpl = c->pg_shift - 3;
	levels = (c->ias - c->pg_shift + c->bpl - 1) / c->bpl;
	natural = LPAE_MAX_LEVELS - levels;
	sl = natural;
	if (c->stage == LPAE_STAGE2) {
		if (c->start_level == LPAE_SL_AUTO)
			sl += concat_mandatory(c, natural);
		else if ((unsigned int)c->start_level == natural &&
			 concat_mandatory(c, natural))
			return -EINVAL;
		else
			sl = (unsigned int)c->start_level;
	}
	if (sl > 3)
		return -EINVAL;
	bits = (int)c->ias - (int)lpae_level_shift(c, sl);
	if (bits < 1 || bits > (int)c->bpl + 4)
		return -EINVAL;
	c->sl = sl;
	c->pgd_bits = (unsigned int)bits;
	c->concat = bits > (int)c->bpl ? 1u << (bits - (int)c->bpl) : 1;
	return 0;
}

/*
 * lpae_cfg_usable() - whether @c looks like lpae_cfg_validate() accepted it
 * (cheap re-check of the derived fields, so a corrupt or unvalidated
 * config cannot drive shifts out of range).
 */
bool lpae_cfg_usable(const struct lpae_cfg *c)
{
	return c && granule_shift(c->granule) == c->pg_shift &&
	       c->bpl == c->pg_shift - 3 && c->sl <= 3 && c->pgd_bits >= 1 &&
	       c->pgd_bits <= c->bpl + 4 && oas_ok(c->oas) &&
	       c->ias <= 48 && c->ias == lpae_level_shift(c, c->sl) +
	       c->pgd_bits && (c->stage == LPAE_STAGE1 ||
			       c->stage == LPAE_STAGE2);
}

uint64_t lpae_pgd_size(const struct lpae_cfg *c)
{
	return 8ull << c->pgd_bits;
}

bool lpae_leaf_ok(const struct lpae_cfg *c, unsigned int level)
{
	if (level > 3)
		return false;
	if (c->granule == 4096)
		return level >= 1;
	return level >= 2;
}

unsigned int lpae_contig_entries(const struct lpae_cfg *c,
				 unsigned int level)
{
	if (c->granule == 4096)
		return 16;
	if (c->granule == 16384)
		return level == 3 ? 128 : 32;
	return 32;
}

/* lpae_level_bits() - index bits resolved at @level. */
unsigned int lpae_level_bits(const struct lpae_cfg *c, unsigned int level)
{
	return level == c->sl ? c->pgd_bits : c->bpl;
}

/* lpae_level_index() - index of @iova in a table at @level. */
unsigned int lpae_level_index(const struct lpae_cfg *c, unsigned int level,
			      uint64_t iova)
{
	uint64_t mask = BIT64(lpae_level_bits(c, level)) - 1;

	return (unsigned int)((iova >> lpae_level_shift(c, level)) & mask);
}

/* ---- descriptor fields ------------------------------------------------ */

/* desc_type() - classify @raw read at @level. */
static enum lpae_desc_type desc_type(const struct lpae_cfg *c,
				     unsigned int level, uint64_t raw)
{
	if (!(raw & D_VALID))
		return LPAE_DESC_INVALID;
	if (raw & D_TABLE)
		return level == 3 ? LPAE_DESC_PAGE : LPAE_DESC_TABLE;
	if (level < 3 && lpae_leaf_ok(c, level))
		return LPAE_DESC_BLOCK;
	return LPAE_DESC_RESERVED;
}

/* decode_leaf() - the leaf attribute fields of @raw into *@d. */
static void decode_leaf(const struct lpae_cfg *c, uint64_t raw,
			struct lpae_desc *d)
{
	d->af = raw & D_AF;
	d->sh = (raw >> D_SH_SHIFT) & 3;
	d->contig = raw & D_CONTIG;
	d->dbm = raw & D_DBM;
	d->pxn = raw & D_PXN;
	if (c->stage == LPAE_STAGE1) {
		d->attrindx = (raw >> D_ATTR_SHIFT) & 7;
		d->ns = raw & D_NS;
		d->ap = (raw >> D_AP_SHIFT) & 3;
		d->ng = raw & D_NG;
		d->uxn = raw & D_UXN;
	} else {
		d->memattr = (raw >> D_ATTR_SHIFT) & 0xf;
		d->s2ap = (raw >> D_AP_SHIFT) & 3;
		d->xn = raw & D_UXN;
	}
}

void lpae_desc_decode(const struct lpae_cfg *c, unsigned int level,
		      uint64_t raw, struct lpae_desc *d)
{
	memset(d, 0, sizeof(*d));
	d->type = desc_type(c, level, raw);
	if (d->type == LPAE_DESC_INVALID)
		return;
	d->addr = raw & D_ADDR;
	if (d->type == LPAE_DESC_BLOCK)
		d->addr &= ~D_NT;
	if (d->type == LPAE_DESC_TABLE) {
		if (c->stage == LPAE_STAGE1) {
			d->ap_table = (raw >> D_APTABLE_SHIFT) & 3;
			d->xn_table = raw & D_XNTABLE;
			d->pxn_table = raw & D_PXNTABLE;
			d->ns_table = raw & D_NSTABLE;
		}
		return;
	}
	if (d->type != LPAE_DESC_RESERVED)
		decode_leaf(c, raw, d);
}

/* encode_leaf() - the attribute bits of leaf *@d. */
static uint64_t encode_leaf(const struct lpae_cfg *c,
			    const struct lpae_desc *d)
{
	uint64_t raw = ((uint64_t)(d->sh & 3) << D_SH_SHIFT);

	raw |= (d->af ? D_AF : 0) | (d->contig ? D_CONTIG : 0) |
	       (d->dbm ? D_DBM : 0) | (d->pxn ? D_PXN : 0);
	if (c->stage == LPAE_STAGE1) {
		raw |= ((uint64_t)(d->attrindx & 7) << D_ATTR_SHIFT) |
		       ((uint64_t)(d->ap & 3) << D_AP_SHIFT) |
		       (d->ns ? D_NS : 0) | (d->ng ? D_NG : 0) |
		       (d->uxn ? D_UXN : 0);
	} else {
		raw |= ((uint64_t)(d->memattr & 0xf) << D_ATTR_SHIFT) |
		       ((uint64_t)(d->s2ap & 3) << D_AP_SHIFT) |
		       (d->xn ? D_UXN : 0);
	}
	return raw;
}

uint64_t lpae_desc_encode(const struct lpae_cfg *c, unsigned int level,
			  const struct lpae_desc *d)
{
	uint64_t raw = d->addr & D_ADDR;

	(void)level;
	switch (d->type) {
	case LPAE_DESC_TABLE:
		raw |= D_VALID | D_TABLE;
		if (c->stage == LPAE_STAGE1)
			raw |= ((uint64_t)(d->ap_table & 3) << D_APTABLE_SHIFT) |
			       (d->xn_table ? D_XNTABLE : 0) |
			       (d->pxn_table ? D_PXNTABLE : 0) |
			       (d->ns_table ? D_NSTABLE : 0);
		return raw;
	case LPAE_DESC_PAGE:
		return raw | D_VALID | D_TABLE | encode_leaf(c, d);
	case LPAE_DESC_BLOCK:
		return raw | D_VALID | encode_leaf(c, d);
	case LPAE_DESC_RESERVED:
		return D_VALID;
	case LPAE_DESC_INVALID:
	default:
		return 0;
	}
}

/* ---- descriptor access in guest memory -------------------------------- */

/*
 * lpae_desc_load() - read the descriptor at @gpa: one atomic 64-bit load when
 * the host pointer is aligned, else a copy through viommu_mem_read().
 * Return: 0; -EFAULT if it is not guest RAM.
 */
int lpae_desc_load(struct viommu_mem *mem, uint64_t gpa, uint64_t *raw)
{
	unsigned int tok = viommu_mem_read_lock(mem);
	uint64_t le = 0;
	size_t contig = 0;
	void *hva = NULL;
	int err;

	err = viommu_mem_ptr(mem, gpa, 8, VIOMMU_READ, &hva, &contig);
	if (!err && contig == 8 && !((uintptr_t)hva & 7))
		le = __atomic_load_n((uint64_t *)hva, __ATOMIC_ACQUIRE);
	else
		err = viommu_mem_read(mem, gpa, &le, 8);
	viommu_mem_read_unlock(mem, tok);
	*raw = le64toh(le);
	return err ? -EFAULT : 0;
}

/*
 * lpae_desc_store() - write @raw at @gpa: one atomic 64-bit release store when
 * possible, else viommu_mem_write().  Return: 0; -EFAULT; -EPERM.
 */
int lpae_desc_store(struct viommu_mem *mem, uint64_t gpa, uint64_t raw)
{
	unsigned int tok = viommu_mem_read_lock(mem);
	uint64_t le = htole64(raw);
	size_t contig = 0;
	void *hva = NULL;
	int err;

	err = viommu_mem_ptr(mem, gpa, 8, VIOMMU_READ | VIOMMU_WRITE, &hva,
			     &contig);
	if (!err && contig == 8 && !((uintptr_t)hva & 7))
		__atomic_store_n((uint64_t *)hva, le, __ATOMIC_RELEASE);
	else if (err != -EPERM)
		err = viommu_mem_write(mem, gpa, &le, 8);
	viommu_mem_read_unlock(mem, tok);
	return err;
}

/*
 * desc_cas() - replace @old by @new at @gpa atomically.  Needs an aligned
 * host pointer to writable RAM (a 64-bit CAS cannot be split).
 * Return: 0; -EAGAIN if the descriptor no longer holds @old; -EFAULT if
 * it is not writable RAM or cannot be updated atomically.
 */
static int desc_cas(struct viommu_mem *mem, uint64_t gpa, uint64_t old,
		    uint64_t new)
{
	unsigned int tok = viommu_mem_read_lock(mem);
	uint64_t expect = htole64(old);
	size_t contig = 0;
	void *hva = NULL;
	int err;

	err = viommu_mem_ptr(mem, gpa, 8, VIOMMU_READ | VIOMMU_WRITE, &hva,
			     &contig);
	if (err || contig != 8 || ((uintptr_t)hva & 7))
		err = -EFAULT;
	else if (!__atomic_compare_exchange_n((uint64_t *)hva, &expect,
					      htole64(new), false,
					      __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE))
		err = -EAGAIN;
	viommu_mem_read_unlock(mem, tok);
	return err;
}

/* ---- walker ----------------------------------------------------------- */

/*
 * struct walk - one walk attempt.  The table restrictions accumulate the
 * stage-1 hierarchical attributes of the table descriptors passed.
 */
struct walk {
	const struct lpae_cfg *c;
	struct viommu_mem *mem;
	const struct lpae_visitor *v;
	void *opaque;
	uint64_t iova;
	unsigned int access;
	struct lpae_result *out;
	unsigned int ap_table;
	bool xn_table, pxn_table;
};

/* fault() - record a fault in the result.  Return: -EFAULT. */
static int fault(struct walk *w, enum lpae_fault f,
		 enum lpae_fault_detail why, unsigned int level,
		 uint64_t addr)
{
	w->out->fault = f;
	w->out->why = why;
	w->out->level = level;
	w->out->fault_addr = addr;
	return -EFAULT;
}

/*
 * fetch() - read the descriptor at @ipa (nested: through table_addr).
 * Return: 0 with the PA in *@pa and the value in *@raw; -EFAULT (fault
 * recorded).
 */
static int fetch(struct walk *w, unsigned int level, uint64_t ipa,
		 uint64_t *pa, uint64_t *raw)
{
	*pa = ipa;
	if (w->v && w->v->table_addr &&
	    w->v->table_addr(w->opaque, level, ipa, VIOMMU_READ, pa))
		return fault(w, LPAE_FAULT_TABLE_HOOK, LPAE_WHY_HOOK, level,
			     ipa);
	if (lpae_desc_load(w->mem, *pa, raw))
		return fault(w, LPAE_FAULT_WALK_EABT, LPAE_WHY_NOT_RAM, level,
			     *pa);
	return 0;
}

/* s1_perm() - stage-1 permissions of leaf *@d for this access. */
static unsigned int s1_perm(const struct walk *w, const struct lpae_desc *d)
{
	bool priv = w->access & LPAE_ACC_PRIV;
	unsigned int perm = 0;

	if (priv || (d->ap & AP_UNPRIV))
		perm |= VIOMMU_READ;
	if (!priv && (w->ap_table & APT_NO_UNPRIV))
		perm = 0;
	if ((perm & VIOMMU_READ) && !(d->ap & AP_RO) &&
	    !(w->ap_table & APT_NO_WRITE))
		perm |= VIOMMU_WRITE;
	if (priv) {
		/* memory writable by unprivileged code is PXN implicitly */
		bool uw = (d->ap & (AP_UNPRIV | AP_RO)) == AP_UNPRIV;

		if (!d->pxn && !w->pxn_table && !uw)
			perm |= VIOMMU_EXEC;
	} else if (!d->uxn && !w->xn_table) {
		perm |= VIOMMU_EXEC;
	}
	return perm;
}

/* s2_perm() - stage-2 permissions of leaf *@d. */
static unsigned int s2_perm(const struct lpae_desc *d)
{
	unsigned int perm = 0;

	if (d->s2ap & S2AP_R)
		perm |= VIOMMU_READ;
	if (d->s2ap & S2AP_W)
		perm |= VIOMMU_WRITE;
	if (!d->xn)
		perm |= VIOMMU_EXEC;
	return perm;
}

/* leaf_perm() - permissions leaf *@d grants now. */
static unsigned int leaf_perm(const struct walk *w, const struct lpae_desc *d)
{
	return w->c->stage == LPAE_STAGE1 ? s1_perm(w, d) : s2_perm(d);
}

/*
 * make_dirty() - @raw as hardware dirty-state update writes it: stage 1
 * clears AP[2], stage 2 sets S2AP[1]; both are bit 7.
 */
static uint64_t make_dirty(const struct lpae_cfg *c, uint64_t raw)
{
	return c->stage == LPAE_STAGE1 ? raw & ~D_AP_RO : raw | D_AP_RO;
}

/* writable_clean() - whether a write may make leaf @raw dirty (HD). */
static bool writable_clean(const struct walk *w, uint64_t raw,
			   const struct lpae_desc *d)
{
	struct lpae_desc dirty;

	if (!w->c->hd || !d->dbm)
		return false;
	lpae_desc_decode(w->c, w->out->level, make_dirty(w->c, raw), &dirty);
	return leaf_perm(w, &dirty) & VIOMMU_WRITE;
}

/*
 * hw_update() - write @new over @raw at the leaf (nested: the write goes
 * through table_addr with write access).  Return: 0; -EAGAIN (changed
 * under us, retry); -EFAULT (fault recorded).
 */
static int hw_update(struct walk *w, uint64_t ipa, uint64_t pa, uint64_t raw,
		     uint64_t new)
{
	unsigned int level = w->out->level;
	int err;

	if (w->v && w->v->table_addr &&
	    w->v->table_addr(w->opaque, level, ipa,
			     VIOMMU_READ | VIOMMU_WRITE, &pa))
		return fault(w, LPAE_FAULT_TABLE_HOOK, LPAE_WHY_HOOK, level,
			     ipa);
	err = desc_cas(w->mem, pa, raw, new);
	if (err == -EFAULT)
		return fault(w, LPAE_FAULT_WALK_EABT, LPAE_WHY_UPDATE, level,
			     pa);
	return err;
}

/*
 * leaf_access() - access flag and permission checks on the leaf already
 * recorded in the result, then the hardware updates they call for.
 * Return: 0; -EFAULT (fault recorded); -EAGAIN (retry the walk).
 */
static int leaf_access(struct walk *w, uint64_t ipa, uint64_t pa,
		       uint64_t raw)
{
	struct lpae_result *o = w->out;
	unsigned int need = w->access & PERM_RWX;
	uint64_t new = raw;
	int err;

	if (!o->desc.af && !w->c->ha)
		return fault(w, LPAE_FAULT_ACCESS, LPAE_WHY_AF, o->level, 0);
	if ((need & VIOMMU_WRITE) && !(o->perm & VIOMMU_WRITE) &&
	    writable_clean(w, raw, &o->desc))
		new = make_dirty(w->c, new);
	if (!o->desc.af)
		new |= D_AF;
	lpae_desc_decode(w->c, o->level, new, &o->desc);
	o->perm = leaf_perm(w, &o->desc);
	if (need & ~o->perm) {
		lpae_desc_decode(w->c, o->level, raw, &o->desc);
		o->perm = leaf_perm(w, &o->desc);
		return fault(w, LPAE_FAULT_PERMISSION, LPAE_WHY_PERM,
			     o->level, 0);
	}
	if (new == raw)
		return 0;
	err = hw_update(w, ipa, pa, raw, new);
	if (err)
		return err;
	o->raw = new;
	o->af_set = !(raw & D_AF);
	o->dirty_set = (raw ^ new) & D_AP_RO;
	return 0;
}

/*
 * leaf() - a block or page at @level: output address checks, result,
 * then access checks unless this is a probe.
 */
static int leaf(struct walk *w, unsigned int level, uint64_t ipa, uint64_t pa,
		uint64_t raw, const struct lpae_desc *d)
{
	const struct lpae_cfg *c = w->c;
	struct lpae_result *o = w->out;
	uint64_t size = BIT64(lpae_level_shift(c, level));

	if (d->addr >> c->oas)
		return fault(w, LPAE_FAULT_ADDR_SIZE, LPAE_WHY_OUT_RANGE,
			     level, d->addr);
	if (d->addr & (size - 1))
		return fault(w, LPAE_FAULT_ADDR_SIZE, LPAE_WHY_OUT_ALIGN,
			     level, d->addr);
	o->level = level;
	o->size = size;
	o->contig_size = d->contig ? size * lpae_contig_entries(c, level) :
				     size;
	o->oa = d->addr | (w->iova & (size - 1));
	o->desc_addr = pa;
	o->raw = raw;
	o->desc = *d;
	o->perm = leaf_perm(w, d);
	if (!(w->access & PERM_RWX))
		return 0;
	return leaf_access(w, ipa, pa, raw);
}

/* table() - check a table descriptor and collect its restrictions. */
static int table(struct walk *w, unsigned int level,
		 const struct lpae_desc *d)
{
	if (d->addr >> w->c->oas)
		return fault(w, LPAE_FAULT_ADDR_SIZE, LPAE_WHY_TABLE_RANGE,
			     level, d->addr);
	if (d->addr & (w->c->granule - 1))
		return fault(w, LPAE_FAULT_ADDR_SIZE, LPAE_WHY_TABLE_ALIGN,
			     level, d->addr);
	if (w->c->stage == LPAE_STAGE1 && !w->c->hpd) {
		w->ap_table |= d->ap_table;
		w->xn_table |= d->xn_table;
		w->pxn_table |= d->pxn_table;
	}
	return 0;
}

/* walk_start() - input and root address checks. */
static int walk_start(struct walk *w, uint64_t root)
{
	const struct lpae_cfg *c = w->c;

	if (w->iova >> c->ias)
		return fault(w, LPAE_FAULT_TRANSLATION, LPAE_WHY_INPUT_RANGE,
			     0, 0);
	if (root >> c->oas)
		return fault(w, LPAE_FAULT_ADDR_SIZE, LPAE_WHY_ROOT_RANGE, 0,
			     root);
	if (root & (lpae_pgd_size(c) - 1))
		return fault(w, LPAE_FAULT_ADDR_SIZE, LPAE_WHY_ROOT_ALIGN, 0,
			     root);
	return 0;
}

/* visit() - show one step to the visitor.  Return its verdict. */
static int visit(struct walk *w, unsigned int level, unsigned int index,
		 uint64_t tbl, uint64_t pa, uint64_t raw,
		 const struct lpae_desc *d)
{
	struct lpae_step s = {
		.level = level, .index = index, .table = tbl,
		.desc_addr = pa, .raw = raw, .desc = *d,
	};

	if (!w->v || !w->v->step)
		return 0;
	return w->v->step(w->opaque, &s);
}

/*
 * walk_once() - one attempt: at most one descriptor per level from the
 * start level down to 3, so at most four reads.
 */
static int walk_once(struct walk *w, uint64_t root)
{
	const struct lpae_cfg *c = w->c;
	uint64_t tbl = root;
	int err = walk_start(w, root);

	for (unsigned int lvl = c->sl; !err && lvl < LPAE_MAX_LEVELS; lvl++) {
		unsigned int idx = lpae_level_index(c, lvl, w->iova);
		uint64_t ipa = tbl + 8ull * idx, pa, raw;
		struct lpae_desc d;

		err = fetch(w, lvl, ipa, &pa, &raw);
		if (err)
			break;
		lpae_desc_decode(c, lvl, raw, &d);
		err = visit(w, lvl, idx, tbl, pa, raw, &d);
		if (err)
			break;
		switch (d.type) {
		case LPAE_DESC_TABLE:
			err = table(w, lvl, &d);
			tbl = d.addr;
			break;
		case LPAE_DESC_BLOCK:
		case LPAE_DESC_PAGE:
			return leaf(w, lvl, ipa, pa, raw, &d);
		case LPAE_DESC_RESERVED:
			return fault(w, LPAE_FAULT_TRANSLATION,
				     LPAE_WHY_RESERVED, lvl, 0);
		case LPAE_DESC_INVALID:
		default:
			return fault(w, LPAE_FAULT_TRANSLATION,
				     LPAE_WHY_INVALID, lvl, 0);
		}
	}
	return err;
}

int lpae_walk(const struct lpae_cfg *c, struct viommu_mem *mem,
	      uint64_t root_gpa, uint64_t iova, unsigned int access,
	      const struct lpae_visitor *v, void *opaque,
	      struct lpae_result *out)
{
	int err = -EAGAIN;

	if (!lpae_cfg_usable(c) || !mem || !out ||
	    (access & ~(PERM_RWX | LPAE_ACC_PRIV)))
		return -EINVAL;
	for (int i = 0; i < LPAE_WALK_RETRIES && err == -EAGAIN; i++) {
		struct walk w = {
			.c = c, .mem = mem, .v = v, .opaque = opaque,
			.iova = iova, .access = access, .out = out,
		};

		memset(out, 0, sizeof(*out));
		err = walk_once(&w, root_gpa);
	}
	return err;
}
