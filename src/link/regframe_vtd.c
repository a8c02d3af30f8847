/*
 * regframe_vtd.c - the VT-d model's register interface for a polled
 * register frame (regframe.h): its registers in feed order and adapters
 * onto the public MMIO API (include/viommu/vtd.h).
 *
 * Feed order (docs/VTD.md, "A polled frame"): the registers that only
 * hold a value first - the root table, queue and invalidation addresses,
 * the interrupt-remapping table address, the event data and addresses -
 * then the event controls and ICS; then the fault recording registers
 * (each record's upper qword, whose F bit is write-1-to-clear, is fed;
 * the lower qword is read-only and only published, before FSTS so a guest
 * that sees FSTS.PPF finds the record); then the registers whose writes
 * act: FSTS, CCMD, IOTLB_REG, GCMD and the queue tail IQT last.  A driver
 * that stores an address and then the command using it between two
 * rounds (RTADDR then GCMD.SRTP, IQA then GCMD.QIE, IVA then IOTLB_REG) is
 * thus served in its order.  The read-only registers close the list; GCMD
 * is write-only and reads 0, so the publish after each command clears it
 * in the frame and the next command (Linux writes its whole GCMD value
 * each time) differs from what the frame shows.
 *
 * Fault records: every record a unit may have (VIOMMU_VTD_MAX_NFR) is
 * listed, so one static table serves a unit of any CAP.NFR; the records
 * past the unit's read as zero from the model (unknown offsets) and no
 * driver that reads CAP.NFR writes them.
 *
 * Why VT-d survives polling: no register has a read side effect; every
 * global command is acknowledged through GSTS, CCMD.ICC and IOTLB.IVT
 * clear themselves when done, and an invalidation wait completes through
 * a status write in RAM, which Linux polls; the write-1-to-clear stores
 * Linux makes (FSTS with a fixed mask, a record's F bit alone) differ
 * from the values shown while something is pending.  Interrupts (fault
 * event, invalidation completion) do not go through the frame.
 *
 * The poll hook runs the invalidation queue's remaining slices
 * (VIOMMU_VTD_QI_SLICE per call): on real MMIO each register access would
 * run the next one, and a driver waiting for a status write in RAM may
 * touch no register at all.
 */
#include <errno.h>

#include <viommu/vtd.h>

#include "link/regframe.h"

#define R_FRCD 0x220

/* a record's upper qword (W1C F bit, fed) then its lower (read-only) */
#define REC(i) { R_FRCD + 16 * (i) + 8, 8, true }, \
	       { R_FRCD + 16 * (i), 8, false }
#define REC4(i) REC(i), REC((i) + 1), REC((i) + 2), REC((i) + 3)
#define REC16(i) REC4(i), REC4((i) + 4), REC4((i) + 8), REC4((i) + 12)

static const struct regframe_reg vtd_regs[] = {
	/* values */
	{ 0x20, 8, true },                        /* RTADDR */
	{ 0x90, 8, true },                        /* IQA */
	{ 0x200, 8, true },                       /* IVA */
	{ 0xb8, 8, true },                        /* IRTA */
	{ 0x3c, 4, true }, { 0x40, 4, true }, { 0x44, 4, true }, /* FEDATA.. */
	{ 0xa4, 4, true }, { 0xa8, 4, true }, { 0xac, 4, true }, /* IEDATA.. */
	{ 0x38, 4, true },                        /* FECTL */
	{ 0xa0, 4, true },                        /* IECTL */
	{ 0x9c, 4, true },                        /* ICS (W1C) */
	/* fault records */
	REC16(0), REC16(16), REC16(32), REC16(48),
	REC16(64), REC16(80), REC16(96), REC16(112),
	/* actions */
	{ 0x34, 4, true },                        /* FSTS (W1C) */
	{ 0x28, 8, true },                        /* CCMD */
	{ 0x208, 8, true },                       /* IOTLB_REG */
	{ 0x18, 4, true },                        /* GCMD */
	{ 0x88, 8, true },                        /* IQT: the doorbell */
	/* read-only */
	{ 0x00, 4, false }, { 0x08, 8, false }, { 0x10, 8, false }, /* VER.. */
	{ 0x1c, 4, false },                       /* GSTS */
	{ 0x80, 8, false },                       /* IQH */
	{ 0xb0, 8, false },                       /* IQERCD */
};

_Static_assert(VIOMMU_VTD_MAX_NFR == 128, "list every fault record");
_Static_assert(sizeof(vtd_regs) / sizeof(vtd_regs[0]) <= REGFRAME_MAX_REGS,
	       "REGFRAME_MAX_REGS");

/* v_read() / v_write() - a frame access, to the model. */
static int v_read(void *model, uint64_t off, unsigned int size, uint64_t *v)
{
	return viommu_vtd_mmio_read(model, off, size, v);
}

static int v_write(void *model, uint64_t off, unsigned int size, uint64_t v)
{
	return viommu_vtd_mmio_write(model, off, size, v);
}

/*
 * v_poll() - the next queue slice: 1 more left, 2 done, 0 nothing.  Work
 * done is told by the descriptor counter (an MMIO read would itself run
 * a pending slice and hide it).
 */
static int v_poll(void *model)
{
	struct viommu_vtd_stats before, after;
	int r;

	if (viommu_vtd_stats(model, &before, sizeof(before)))
		return -EINVAL;
	r = viommu_vtd_poll(model);
	if (r < 0 || r == 1)
		return r;
	viommu_vtd_stats(model, &after, sizeof(after));
	return after.descriptors != before.descriptors ||
	       after.queue_errors != before.queue_errors ? 2 : 0;
}

const struct regframe_ops regframe_vtd_ops = {
	.regs = vtd_regs,
	.nregs = sizeof(vtd_regs) / sizeof(vtd_regs[0]),
	.frame_size = VIOMMU_VTD_MMIO_SIZE,
	.read = v_read,
	.write = v_write,
	.poll = v_poll,
};
