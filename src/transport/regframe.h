/*
 * regframe.h - a register frame kept in guest RAM and served by polling:
 * the mechanism issue 15 asks for to run real guests on our
 * register-based IOMMU models (VT-d, SMMUv3) without an MMIO exit.  The
 * guest's driver reads and writes the frame as if it were the unit's
 * registers; a server thread calls regframe_poll() in a loop, which
 * turns the guest's stores into register writes on the model and
 * publishes the model's register values back into the frame.
 *
 * One poll:
 *  1. every listed register is loaded from the frame (one atomic load of
 *     its width); a value different from what the poller last published
 *     there is a guest write;
 *  2. the writes are fed to the model (ops->write) in the table's order,
 *     not the order the guest made them: a table lists data registers
 *     (addresses, queue bases, the invalidation address) before the
 *     registers whose writes act (commands, doorbells, status), so a
 *     driver that programs an address and then issues the command that
 *     uses it is served in that order even when both stores land between
 *     two polls;
 *  3. ops->poll, if any, lets the model run work left by slices;
 *  4. every register is read from the model (ops->read) and published
 *     with a compare-and-swap against the value the frame held, so a
 *     guest store that lands meanwhile is not overwritten: the next poll
 *     sees it.
 *
 * What a polled frame cannot do (docs/VTD.md, "A polled frame"):
 *  - a guest store of the value the frame already shows is invisible
 *    (for a write-1-to-clear bit whose register reads the same, or a
 *    command written twice between polls);
 *  - a 64-bit register written as two halves may be seen half-updated
 *    and fed twice (harmless for the registers the tables list: the half
 *    holding the action bit - ICC, IVT - is written last by drivers);
 *  - reads have no side effects (the model's read-driven work runs in
 *    step 3 instead), and a read returns the value of the last poll;
 *  - the order of stores to different registers between two polls is
 *    lost (step 2's table order stands in for it);
 *  - interrupts are not delivered by the frame (the model's callback
 *    must reach the guest some other way).
 *
 * The frame lives in RAM the memory layer maps (viommu_mem_ptr), each
 * register naturally aligned.  Not thread-safe: one thread polls a frame.
 */
#ifndef VIOMMU_REGFRAME_H
#define VIOMMU_REGFRAME_H

#include <viommu/mem.h>

/* struct regframe_reg - one register of the frame. */
struct regframe_reg {
	uint32_t off;
	uint8_t size; /* 4 or 8 */
};

/* struct regframe_ops - the model behind the frame. */
struct regframe_ops {
	int (*read)(void *opaque, uint64_t off, unsigned int size,
		    uint64_t *val);
	int (*write)(void *opaque, uint64_t off, unsigned int size,
		     uint64_t val);
	int (*poll)(void *opaque); /* may be NULL */
	void *opaque;
};

#define REGFRAME_MAX_REGS 512

/* struct regframe - one frame; fill with regframe_init(). */
struct regframe {
	struct viommu_mem *mem;
	uint64_t gpa;
	const struct regframe_reg *regs;
	unsigned int nregs;
	struct regframe_ops ops;
	uint64_t pub[REGFRAME_MAX_REGS];  /* what we last published */
	uint64_t writes, polls;           /* guest writes fed; polls */
};

/*
 * regframe_init() - serve @regs (feed order, see above) of a model at
 * @gpa in @mem, and publish the model's current values.
 * Return: 0; -EINVAL (NULL, more than REGFRAME_MAX_REGS registers, a
 * size not 4/8, a misaligned register); -EFAULT (the frame is not
 * writable RAM).
 */
int regframe_init(struct regframe *f, struct viommu_mem *mem, uint64_t gpa,
		  const struct regframe_reg *regs, unsigned int nregs,
		  const struct regframe_ops *ops);

/*
 * regframe_poll() - one poll (steps 1-4 above).
 * Return: the number of guest writes fed (>= 0); -EFAULT (the frame
 * stopped being RAM).
 */
int regframe_poll(struct regframe *f);

#endif /* VIOMMU_REGFRAME_H */
