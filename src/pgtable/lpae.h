/*
 * lpae.h - Arm VMSAv8-64 long-descriptor (LPAE) translation tables: a
 * walker that an SMMU model runs against guest memory.  The builder that
 * tests and the reference drivers use to write tables into guest memory
 * is apart, in src/refdrv/lpae_build.h, and not in the shipped library.
 *
 * Formats.  Stage 1 and stage 2, AArch64 descriptors, 4K, 16K and 64K
 * granules, input (IAS) of 25..48 bits, output (OAS) of 32, 36, 40, 42, 44
 * or 48 bits (the PS encodings; 52-bit output is not modelled).  Tables
 * are little-endian only: struct lpae_cfg has a big_endian field so a
 * front end can pass its ENDI bit through, and lpae_cfg_validate() refuses
 * it.  Only the TTB0-style lower range is walked: an input address must be
 * below 2^IAS (a front end that models TTB1 selects the table itself and
 * passes the address with the upper bits cleared).
 *
 * Geometry.  Level L (0..3) resolves address bits from
 * shift(L) = G + (3 - L) * (G - 3) upwards, G = log2(granule).  The start
 * level is the one that needs the fewest levels for IAS.  At stage 2 the
 * start table may be up to 16 concatenated tables: lpae_cfg_validate()
 * derives it the way Linux io-pgtable-arm does (concatenate only where the
 * architecture makes it mandatory: 16K with a level-0 start and IAS or OAS
 * 48; 4K with a level-0 start and OAS 40 or 42; 16K with a level-1 start
 * and OAS 40), or checks an explicit start level (decoded by the caller
 * from VTCR/STE SL0) against T0SZ: it must resolve at least one bit and at
 * most 16 tables' worth, and may not be a start level the rule above makes
 * invalid.
 *
 * Descriptors are decoded into typed fields (struct lpae_desc) by
 * lpae_desc_decode() and built from them by lpae_desc_encode(); nothing
 * else in the library shifts descriptor bits around.
 *
 * Walk.  lpae_walk() reads at most one descriptor per level (at most four),
 * always through the memory layer, and turns every malformed input into an
 * architected fault in struct lpae_result, in the architecture's priority
 * order: translation (input above IAS, invalid or reserved descriptor,
 * block where the granule has none), address size (table, block or page
 * address at or above 2^OAS, or with nonzero bits below its alignment -
 * those bits are RES0 or, for 64K, OA[51:48], so we report them as an
 * address size fault rather than silently masking a guest bug), external
 * abort on walk (a table that is not guest RAM, or a hardware update to
 * read-only RAM), access flag, then permission.  A visitor sees each
 * descriptor as it is read and, for nested translation, translates every
 * descriptor address (an IPA) to a PA before the read.
 *
 * Hardware updates (cfg ha/hd, FEAT_HAFDBS): a walk for an access that
 * finds AF clear sets it instead of faulting; a write to a writable-clean
 * leaf (DBM set, AP[2] set at stage 1 / S2AP[1] clear at stage 2) makes it
 * writable-dirty instead of faulting.  The update is one 64-bit
 * compare-and-swap on the descriptor through the host pointer from
 * viommu_mem_ptr(), so it cannot lose a concurrent guest write; if the
 * descriptor changed under us the whole walk is redone (bounded: after
 * LPAE_WALK_RETRIES attempts lpae_walk() gives up with -EAGAIN).  Updates
 * happen only when the access is otherwise permitted.
 *
 * Thread safety: the walker keeps no state and may run on any thread
 * concurrently with guest writes to the tables; the builder assumes one
 * writer per table tree.
 */
#ifndef VIOMMU_PGTABLE_LPAE_H
#define VIOMMU_PGTABLE_LPAE_H

#include <viommu/mem.h>

#define LPAE_MAX_LEVELS 4
#define LPAE_MAX_CONCAT 16
#define LPAE_WALK_RETRIES 8
#define LPAE_SL_AUTO (-1)

enum lpae_stage {
	LPAE_STAGE1 = 1,
	LPAE_STAGE2 = 2,
};

/**
 * struct lpae_cfg - one translation regime.
 * Set by the caller:
 * @stage:      LPAE_STAGE1 or LPAE_STAGE2.
 * @granule:    4096, 16384 or 65536.
 * @ias:        input address bits, 25..48 (64 - T0SZ).
 * @oas:        output address bits: 32, 36, 40, 42, 44 or 48.  At stage 1
 *              of a nested walk this is the IPA size.  Stage 2 needs
 *              @ias <= @oas.
 * @start_level: stage 2 only: LPAE_SL_AUTO, or the level 0..3 decoded
 *              from SL0.  Stage 1 must use LPAE_SL_AUTO.
 * @ha, @hd:    hardware access-flag / dirty-state updates; @hd needs @ha.
 * @hpd:        stage 1: hierarchical permissions disabled (APTable,
 *              UXNTable, PXNTable ignored).  Must be false at stage 2.
 * @big_endian: must be false (little-endian tables only).
 * Derived by lpae_cfg_validate():
 * @sl:         start level.
 * @concat:     number of concatenated start tables (1 at stage 1).
 * @pgd_bits:   index bits resolved at the start level (with concatenation).
 * @pg_shift:   log2(@granule).
 * @bpl:        index bits per full table, @pg_shift - 3.
 */
struct lpae_cfg {
	enum lpae_stage stage;
	unsigned int granule;
	unsigned int ias;
	unsigned int oas;
	int start_level;
	bool ha, hd, hpd;
	bool big_endian;

	unsigned int sl;
	unsigned int concat;
	unsigned int pgd_bits;
	unsigned int pg_shift;
	unsigned int bpl;
};

/** Descriptor kinds as the walker classifies them at a given level. */
enum lpae_desc_type {
	LPAE_DESC_INVALID = 0,  /* bit 0 clear */
	LPAE_DESC_TABLE,        /* 0b11 at levels 0-2 */
	LPAE_DESC_BLOCK,        /* 0b01 where the granule has blocks */
	LPAE_DESC_PAGE,         /* 0b11 at level 3 */
	LPAE_DESC_RESERVED,     /* 0b01 at level 3, or a block where none */
};

/**
 * struct lpae_desc - typed fields of one descriptor.  Which fields mean
 * something depends on @type and the stage; encode ignores the others.
 * @type:     see enum lpae_desc_type.
 * @addr:     next-level table address or output address (bits [47:12]
 *            exactly as stored, including any misaligned low bits).
 * Leaf, both stages:
 * @af:       access flag (bit 10).
 * @sh:       shareability SH[1:0] (bits 9:8).
 * @contig:   contiguous hint (bit 52).
 * @dbm:      dirty bit modifier (bit 51).
 * Leaf, stage 1:
 * @attrindx: MAIR index (bits 4:2).
 * @ns:       non-secure (bit 5).
 * @ap:       AP[2:1] (bits 7:6).
 * @ng:       not global (bit 11).
 * @pxn, @uxn: privileged / unprivileged execute-never (bits 53, 54).
 * Leaf, stage 2:
 * @memattr:  MemAttr[3:0] (bits 5:2).
 * @s2ap:     S2AP[1:0] (bits 7:6): bit 0 read, bit 1 write.
 * @xn:       execute-never (bit 54; bit 53, XN[0] of FEAT_XNX, is kept
 *            in @pxn and ignored by the walker).
 * Table, stage 1:
 * @ap_table: APTable[1:0] (bits 62:61).
 * @xn_table, @pxn_table: UXNTable / PXNTable (bits 60, 59).
 * @ns_table: NSTable (bit 63).
 */
struct lpae_desc {
	enum lpae_desc_type type;
	uint64_t addr;
	bool af, contig, dbm;
	uint8_t sh;
	uint8_t attrindx;
	bool ns;
	uint8_t ap;
	bool ng, pxn, uxn;
	uint8_t memattr;
	uint8_t s2ap;
	bool xn;
	uint8_t ap_table;
	bool xn_table, pxn_table, ns_table;
};

/** Access flags beyond VIOMMU_READ/WRITE/EXEC for lpae_walk(). */
#define LPAE_ACC_PRIV (1u << 8) /* privileged transaction (stage 1 AP/PXN) */

/** Faults, named after the architecture's fault status codes. */
enum lpae_fault {
	LPAE_FAULT_NONE = 0,
	LPAE_FAULT_TRANSLATION,  /* F_TRANSLATION */
	LPAE_FAULT_ADDR_SIZE,    /* F_ADDR_SIZE */
	LPAE_FAULT_ACCESS,       /* F_ACCESS: AF clear, no HA */
	LPAE_FAULT_PERMISSION,   /* F_PERMISSION */
	LPAE_FAULT_WALK_EABT,    /* F_WALK_EABT: table not RAM / update failed */
	LPAE_FAULT_TABLE_HOOK,   /* visitor table_addr refused (nested S2) */
};

/** Why a fault happened, for log lines and tests. */
enum lpae_fault_detail {
	LPAE_WHY_NONE = 0,
	LPAE_WHY_INPUT_RANGE,    /* input address >= 2^IAS */
	LPAE_WHY_INVALID,        /* descriptor bit 0 clear */
	LPAE_WHY_RESERVED,       /* reserved encoding / block not allowed */
	LPAE_WHY_ROOT_RANGE,     /* root table address >= 2^OAS */
	LPAE_WHY_ROOT_ALIGN,     /* root not aligned to the start table size */
	LPAE_WHY_TABLE_RANGE,    /* next-level table address >= 2^OAS */
	LPAE_WHY_TABLE_ALIGN,    /* next-level table address misaligned */
	LPAE_WHY_OUT_RANGE,      /* output address >= 2^OAS */
	LPAE_WHY_OUT_ALIGN,      /* block/page address has RES0 low bits */
	LPAE_WHY_NOT_RAM,        /* descriptor read hit no guest RAM */
	LPAE_WHY_UPDATE,         /* hardware update could not be written */
	LPAE_WHY_AF,             /* access flag clear */
	LPAE_WHY_PERM,           /* access not permitted */
	LPAE_WHY_HOOK,           /* table_addr hook failed */
};

/**
 * struct lpae_step - one descriptor read, as shown to a visitor.
 * @level:      lookup level.
 * @index:      index in the table (with concatenation at the start level).
 * @table:      table base as the walk knows it (an IPA when nested).
 * @desc_addr:  where the descriptor was read (after table_addr).
 * @raw:        descriptor value.
 * @desc:       its decoded fields.
 */
struct lpae_step {
	unsigned int level;
	unsigned int index;
	uint64_t table;
	uint64_t desc_addr;
	uint64_t raw;
	struct lpae_desc desc;
};

/**
 * struct lpae_visitor - optional hooks into lpae_walk(); any may be NULL.
 * @step:       called after each descriptor read, before it is acted on.
 *              Return 0 to go on or a negative errno to stop the walk,
 *              which then returns that value.
 * @table_addr: nested translation: turn @ipa, the address of the
 *              descriptor about to be read at @level (or written back by
 *              a hardware update, @access then includes VIOMMU_WRITE),
 *              into a PA in *@pa.  Return 0, or a negative errno to fail
 *              the walk with LPAE_FAULT_TABLE_HOOK (the hook keeps its own
 *              details, e.g. the stage-2 fault, in its opaque).
 */
struct lpae_visitor {
	int (*step)(void *opaque, const struct lpae_step *step);
	int (*table_addr)(void *opaque, unsigned int level, uint64_t ipa,
			  unsigned int access, uint64_t *pa);
};

/**
 * struct lpae_result - what a walk found.
 * @fault:      LPAE_FAULT_NONE on success.
 * @why:        detail for log lines and tests.
 * @level:      level of the leaf, or of the fault (0 for an input or root
 *              address fault).
 * @fault_addr: the offending address for address size and external abort
 *              faults (table, output or descriptor address), else 0.
 * On success (and for access flag and permission faults, which find the
 * leaf) also:
 * @oa:         output address of the input address.
 * @size:       block or page size of the leaf.
 * @contig_size: span the contiguous hint claims (>= @size; == @size when
 *              the hint is clear), aligned on both sides like the leaf.
 * @perm:       VIOMMU_READ/WRITE/EXEC the leaf grants to this access's
 *              privilege after any hardware update (a writable-clean leaf
 *              does not grant WRITE until a write has made it dirty).
 * @desc_addr, @raw, @desc: the leaf descriptor (after any update).
 * @af_set, @dirty_set: hardware updates this walk performed.
 */
struct lpae_result {
	enum lpae_fault fault;
	enum lpae_fault_detail why;
	unsigned int level;
	uint64_t fault_addr;
	uint64_t oa;
	uint64_t size;
	uint64_t contig_size;
	unsigned int perm;
	uint64_t desc_addr;
	uint64_t raw;
	struct lpae_desc desc;
	bool af_set, dirty_set;
};

/**
 * lpae_cfg_validate() - check the caller's fields of @c and fill the
 * derived ones.  Return: 0; -EINVAL for an impossible combination.
 */
int lpae_cfg_validate(struct lpae_cfg *c);

/** lpae_level_shift() - lowest input bit level @level resolves. */
unsigned int lpae_level_shift(const struct lpae_cfg *c, unsigned int level);

/** lpae_pgd_size() - bytes of the (possibly concatenated) start table. */
uint64_t lpae_pgd_size(const struct lpae_cfg *c);

/**
 * lpae_leaf_ok() - whether a leaf (block or page) may sit at @level for
 * @c's granule: 4K at 1, 2, 3; 16K and 64K at 2, 3.
 */
bool lpae_leaf_ok(const struct lpae_cfg *c, unsigned int level);

/**
 * lpae_contig_entries() - entries in a contiguous group at @level
 * (4K: 16; 16K: 128 at level 3, 32 at level 2; 64K: 32).
 */
unsigned int lpae_contig_entries(const struct lpae_cfg *c,
				 unsigned int level);

/** lpae_desc_decode() - split @raw, read at @level, into *@d. */
void lpae_desc_decode(const struct lpae_cfg *c, unsigned int level,
		      uint64_t raw, struct lpae_desc *d);

/**
 * lpae_desc_encode() - the raw value of *@d at @level (type bits from
 * @d->type; INVALID and RESERVED give 0 and 0b01 respectively).
 */
uint64_t lpae_desc_encode(const struct lpae_cfg *c, unsigned int level,
			  const struct lpae_desc *d);

/**
 * lpae_walk() - translate @iova through the tables at @root_gpa.
 * @c:       a validated configuration.
 * @mem:     guest memory holding the tables (all reads and updates go
 *           through it).
 * @access:  VIOMMU_READ/WRITE/EXEC, plus LPAE_ACC_PRIV.  None of
 *           READ/WRITE/EXEC is a probe:
 *           no access flag or permission check and no hardware update
 *           (like io-pgtable's iova_to_phys).
 * @v:       optional visitor (NULL for none); @opaque goes to its hooks.
 * @out:     the result, filled in every case except -EINVAL.
 * Return: 0 when translated; -EFAULT when @out describes a fault;
 * -EINVAL for NULL pointers or an unvalidated/invalid @c; -EAGAIN if
 * hardware updates kept racing guest writes; or a visitor's errno.
 */
int lpae_walk(const struct lpae_cfg *c, struct viommu_mem *mem,
	      uint64_t root_gpa, uint64_t iova, unsigned int access,
	      const struct lpae_visitor *v, void *opaque,
	      struct lpae_result *out);

/* Values of struct lpae_desc's @ap and @s2ap fields. */
#define LPAE_AP_UNPRIV 1u /* AP[1]: unprivileged access allowed */
#define LPAE_AP_RO     2u /* AP[2]: read-only */
#define LPAE_S2AP_R    1u
#define LPAE_S2AP_W    2u

/* Raw descriptor bits a table editor tests without a full decode. */
#define LPAE_D_VALID   (1ull << 0)
#define LPAE_D_CONTIG  (1ull << 52)

/*
 * Helpers shared with the builder (src/refdrv/lpae_build.c): the re-check
 * of a validated config, index geometry, and one descriptor's atomic load
 * and store through the memory layer (0, -EFAULT, or -EPERM for a store
 * to read-only RAM).
 */
bool lpae_cfg_usable(const struct lpae_cfg *c);
unsigned int lpae_level_bits(const struct lpae_cfg *c, unsigned int level);
unsigned int lpae_level_index(const struct lpae_cfg *c, unsigned int level,
			      uint64_t iova);
int lpae_desc_load(struct viommu_mem *mem, uint64_t gpa, uint64_t *raw);
int lpae_desc_store(struct viommu_mem *mem, uint64_t gpa, uint64_t raw);

#endif /* VIOMMU_PGTABLE_LPAE_H */
