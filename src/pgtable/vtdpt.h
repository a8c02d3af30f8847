/*
 * vtdpt.h - Intel VT-d paging structures: a walker that the VT-d model
 * runs against guest memory, and a builder that tests, fuzzers and
 * benchmarks use to write tables into guest memory.
 *
 * Formats.  Second-level (second-stage) tables: 3, 4 or 5 levels of 512
 * 64-bit entries, R (bit 0) and W (bit 1) permissions, an entry with both
 * clear is not present, PS (bit 7) makes a 2 MiB (level 2) or 1 GiB
 * (level 3) leaf.  First-level (first-stage) tables: x86 IA-32e 4- or
 * 5-level paging, P (bit 0), R/W (bit 1), U/S (bit 2), A (bit 5), D (bit
 * 6), PS (bit 7), XD (bit 63).  Levels are numbered 1 (the 4 KiB page
 * table) to 5; level L resolves address bits [12 + 9L - 1, 12 + 9(L-1)].
 *
 * Reserved bits.  Address bits at or above the host address width (@haw),
 * bit 11 (second level), PS where no large leaf exists (levels 4 and 5,
 * and level 3 without 1 GiB pages), and the address bits below a large
 * leaf's alignment (above bit 12 for first level, whose bit 12 is PAT).
 * Bits 52..63 of a second-level entry and 52..62 of a first-level one are
 * ignored.  A reserved bit set in a present entry is a VTDPT_F_RSVD fault.
 *
 * Walk.  vtdpt_walk() reads at most one entry per level (at most five),
 * always through the memory layer, and turns every malformed input into a
 * fault in struct vtdpt_result: address beyond the width (second level)
 * or not canonical (first level), entry not readable guest RAM (fetch),
 * not present, reserved bits, then permission (read, write, execute).
 * Second-level permissions are the AND of every level's R/W; first-level
 * write needs R/W at every level and execute XD clear at every level.
 * First-level walks set A in every entry used and D in the leaf of a
 * write, with one 64-bit compare-and-swap through viommu_mem_ptr() (a
 * changed entry restarts the walk, at most VTDPT_WALK_RETRIES times).
 * For nested translation a hook turns each first-level table address (an
 * IOVA of the second level) into a guest-physical address first.
 *
 * Thread safety: the walker keeps no state; the builder assumes one
 * writer per table tree.
 */
#ifndef VIOMMU_PGTABLE_VTDPT_H
#define VIOMMU_PGTABLE_VTDPT_H

#include <viommu/mem.h>

#define VTDPT_WALK_RETRIES 8

enum vtdpt_fmt {
	VTDPT_SL = 0, /* second level */
	VTDPT_FL = 1, /* first level */
};

/**
 * struct vtdpt_cfg - one translation regime.
 * @fmt:     VTDPT_SL or VTDPT_FL.
 * @levels:  3, 4 or 5 (second level); 4 or 5 (first level).
 * @haw:     host address width: output and table addresses must be
 *           below 2^@haw (32..52).
 * @large:   largest leaf level allowed: 1 (4 KiB only), 2 (2 MiB) or 3
 *           (1 GiB).  PS set above it is a reserved-bit fault.
 */
struct vtdpt_cfg {
	enum vtdpt_fmt fmt;
	unsigned int levels;
	unsigned int haw;
	unsigned int large;
};

enum vtdpt_fault {
	VTDPT_F_NONE = 0,
	VTDPT_F_RANGE,       /* input beyond the width / not canonical */
	VTDPT_F_FETCH,       /* entry not readable (or updatable) RAM */
	VTDPT_F_NOT_PRESENT, /* P clear (FL) or R = W = 0 (SL) */
	VTDPT_F_RSVD,        /* reserved bit set */
	VTDPT_F_READ,        /* no read permission (SL) */
	VTDPT_F_WRITE,       /* no write permission */
	VTDPT_F_EXEC,        /* execute-disable (FL) */
	VTDPT_F_HOOK,        /* the table-address hook refused */
};

/**
 * struct vtdpt_result - a walk's outcome.
 * @oa:    output address of the input address (success).
 * @size:  bytes of the leaf (4 KiB, 2 MiB or 1 GiB).
 * @perm:  VIOMMU_READ/WRITE/EXEC the leaf grants.
 * @fault: enum vtdpt_fault.
 * @level: level of the faulting (or leaf) entry.
 * @fetch: address of the entry read last.
 */
struct vtdpt_result {
	uint64_t oa;
	uint64_t size;
	uint32_t perm;
	enum vtdpt_fault fault;
	unsigned int level;
	uint64_t fetch;
};

/**
 * vtdpt_table_hook - nested: translate the first-level table address
 * @addr (an input address of the second level) for a read (or, for the
 * A/D update, a write: @write) to a guest-physical address in *@gpa.
 * Return 0, or non-zero to fail the walk with VTDPT_F_HOOK.
 */
typedef int (*vtdpt_table_hook)(void *opaque, uint64_t addr, bool write,
				uint64_t *gpa);

/** vtdpt_cfg_ok() - whether @c is a configuration the walker accepts. */
bool vtdpt_cfg_ok(const struct vtdpt_cfg *c);

/**
 * vtdpt_walk() - translate @iova through the tables at @root.
 * @access: VIOMMU_READ/WRITE/EXEC wanted (0: probe, no permission check
 *          and no A/D update).
 * @hook:   NULL, or the nested table-address hook (first level only).
 * Return: 0; -EFAULT with @out->fault set; -EINVAL (NULL, bad @c).
 */
int vtdpt_walk(const struct vtdpt_cfg *c, struct viommu_mem *mem,
	       uint64_t root, uint64_t iova, unsigned int access,
	       vtdpt_table_hook hook, void *opaque, struct vtdpt_result *out);

/* ---- builder ---------------------------------------------------------- */

/**
 * struct vtdpt_ops - how the builder reaches guest memory.
 * @alloc: give a 4 KiB-aligned 4 KiB table in guest RAM (the builder
 *         zeroes it); 0 or a negative errno.
 */
struct vtdpt_ops {
	struct viommu_mem *mem;
	int (*alloc)(void *opaque, uint64_t *gpa);
	void *opaque;
};

/** vtdpt_alloc_root() - a zeroed top-level table.  Return: 0; errno. */
int vtdpt_alloc_root(const struct vtdpt_ops *ops, uint64_t *root);

/**
 * vtdpt_map() - map [@iova, @iova + @size) to @pa with @prot
 * (VIOMMU_READ/WRITE/EXEC), using the largest leaves alignment and
 * @c->large allow.  First-level leaves are user-accessible, present and
 * readable; WRITE sets R/W; no EXEC sets XD.  A and D start clear.
 * Return: 0; -EINVAL (alignment, range, no READ/WRITE); -EEXIST (part
 * already mapped: what this call mapped before it stays); -EFAULT (a table
 * is not RAM); the allocator's errno.
 */
int vtdpt_map(const struct vtdpt_cfg *c, const struct vtdpt_ops *ops,
	      uint64_t root, uint64_t iova, uint64_t pa, uint64_t size,
	      unsigned int prot);

/**
 * vtdpt_unmap() - clear every leaf wholly inside [@iova, @iova + @size).
 * Gaps are fine; tables are not freed.  Return: 0 with the bytes unmapped
 * in *@unmapped; -EINVAL; -ERANGE (a leaf straddles an end: nothing
 * changed after the leaves before it); -EFAULT.
 */
int vtdpt_unmap(const struct vtdpt_cfg *c, const struct vtdpt_ops *ops,
		uint64_t root, uint64_t iova, uint64_t size,
		uint64_t *unmapped);

#endif /* VIOMMU_PGTABLE_VTDPT_H */
