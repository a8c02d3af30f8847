/*
 * regframe_smmuv3.c - the SMMUv3 model's register interface for a polled
 * register frame (regframe.h): its registers in feed order and adapters
 * onto the public MMIO API (include/viommu/smmuv3.h).
 *
 * Feed order: interrupt configuration, the stream table and queue bases,
 * queue indexes and the error acknowledgement first; then CR1/CR2, GBPA,
 * IRQ_CTRL and CR0, which act on that configuration; CMDQ_PROD, the
 * doorbell, last.  So a driver that programs a queue and enables it
 * between two rounds has the enable fed after the base, whatever the
 * order of its stores.
 *
 * Why the SMMUv3 register interface survives polling: it is level-based.
 * No register has a read side effect; every control write is
 * acknowledged through another register (CR0/CR0ACK, IRQ_CTRL/
 * IRQ_CTRLACK) or a self-clearing bit (GBPA.UPDATE) or completes by the
 * guest polling an index (CMDQ_CONS) or the CMD_SYNC MSI word; and
 * writing a register with the value it already reads back is a no-op
 * architecturally (CMDQ_PROD, EVTQ_CONS, GERRORN...), so a write the
 * frame cannot see (the same value again) loses nothing.  The queue
 * indexes of the event and PRI queues are listed at their page-1 offsets
 * (where Linux writes them) and at their page-0 aliases.
 *
 * The poll hook consumes the rest of a command queue that one doorbell
 * left (the model works in VIOMMU_SMMUV3_CMDQ_SLICE slices): Linux waits
 * for CMD_SYNC through its MSI write and touches no register meanwhile,
 * so nothing else would consume it.
 */
#include <viommu/smmuv3.h>

#include "link/regframe.h"

#define P1 0x10000u /* page 1 */
#define R_CMDQ_CONS 0x9c

static const struct regframe_reg smmuv3_regs[] = {
	{ 0x68, 8, true }, { 0x70, 4, true }, { 0x74, 4, true }, /* GERROR_IRQ_CFGn */
	{ 0xb0, 8, true }, { 0xb8, 4, true }, { 0xbc, 4, true }, /* EVTQ_IRQ_CFGn */
	{ 0xd0, 8, true }, { 0xd8, 4, true }, { 0xdc, 4, true }, /* PRIQ_IRQ_CFGn */
	{ 0x80, 8, true }, { 0x88, 4, true },  /* STRTAB_BASE, STRTAB_BASE_CFG */
	{ 0x90, 8, true }, { 0x9c, 4, true },  /* CMDQ_BASE, CMDQ_CONS */
	{ 0xa0, 8, true }, { 0xa8, 4, true }, { 0xac, 4, true }, /* EVTQ */
	{ P1 + 0xa8, 4, true }, { P1 + 0xac, 4, true },
	{ 0xc0, 8, true }, { 0xc8, 4, true }, { 0xcc, 4, true }, /* PRIQ */
	{ P1 + 0xc8, 4, true }, { P1 + 0xcc, 4, true },
	{ 0x64, 4, true },                     /* GERRORN */
	{ 0x28, 4, true }, { 0x2c, 4, true },  /* CR1, CR2 */
	{ 0x44, 4, true },                     /* GBPA */
	{ 0x50, 4, true },                     /* IRQ_CTRL */
	{ 0x20, 4, true },                     /* CR0 */
	{ 0x98, 4, true },                     /* CMDQ_PROD: the doorbell */
	{ 0x00, 4, false }, { 0x04, 4, false }, { 0x08, 4, false }, /* IDR0-2 */
	{ 0x0c, 4, false }, { 0x10, 4, false }, { 0x14, 4, false }, /* IDR3-5 */
	{ 0x18, 4, false }, { 0x1c, 4, false }, /* IIDR, AIDR */
	{ 0x24, 4, false }, { 0x40, 4, false }, /* CR0ACK, STATUSR */
	{ 0x48, 4, false }, { 0x54, 4, false }, /* AGBPA, IRQ_CTRLACK */
	{ 0x60, 4, false },                     /* GERROR */
	{ 0xfd0, 4, false }, { 0xfd4, 4, false }, { 0xfd8, 4, false }, /* ID */
	{ 0xfdc, 4, false }, { 0xfe0, 4, false }, { 0xfe4, 4, false },
	{ 0xfe8, 4, false }, { 0xfec, 4, false }, { 0xff0, 4, false },
	{ 0xff4, 4, false }, { 0xff8, 4, false }, { 0xffc, 4, false },
};

/* s_read() / s_write() - a frame access, to the model. */
static int s_read(void *model, uint64_t off, unsigned int size, uint64_t *v)
{
	return viommu_smmuv3_mmio_read(model, off, size, v);
}

static int s_write(void *model, uint64_t off, unsigned int size, uint64_t v)
{
	return viommu_smmuv3_mmio_write(model, off, size, v);
}

/* s_poll() - the next command slice: 1 more left, 2 done, 0 nothing. */
static int s_poll(void *model)
{
	uint64_t before = 0, after = 0;
	int r;

	viommu_smmuv3_mmio_read(model, R_CMDQ_CONS, 4, &before);
	r = viommu_smmuv3_poll(model);
	if (r < 0 || r == 1)
		return r;
	viommu_smmuv3_mmio_read(model, R_CMDQ_CONS, 4, &after);
	return after != before ? 2 : 0;
}

const struct regframe_ops regframe_smmuv3_ops = {
	.regs = smmuv3_regs,
	.nregs = sizeof(smmuv3_regs) / sizeof(smmuv3_regs[0]),
	.frame_size = VIOMMU_SMMUV3_MMIO_SIZE,
	.read = s_read,
	.write = s_write,
	.poll = s_poll,
};
