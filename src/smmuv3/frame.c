/*
 * frame.c - the SMMUv3 registers a polled frame serves
 * (transport/regframe.h), in the order their writes are fed to the model:
 * the registers that only hold a value first (table and queue bases,
 * table configuration, MSI addresses and data, CR1, CR2), then those
 * whose writes act (GBPA's update handshake, IRQ_CTRL, GERRORN, CR0, the
 * queue indexes the driver owns - CMDQ_PROD, EVTQ_CONS, PRIQ_CONS, on page
 * 0 and page 1), then the read-only ones (published only).  CMDQ_CONS
 * reads drive the model's command slices on real MMIO; a frame poll runs
 * them through viommu_smmuv3_poll() instead.
 */
#include "smmuv3_internal.h"
#include "smmuv3/frame.h"

static const struct regframe_reg regs[] = {
	/* values */
	{ R_STRTAB_BASE, 8 }, { R_STRTAB_BASE_CFG, 4 }, { R_CMDQ_BASE, 8 },
	{ R_EVTQ_BASE, 8 }, { R_PRIQ_BASE, 8 },
	{ R_GERROR_IRQ_CFG0, 8 }, { R_GERROR_IRQ_CFG1, 4 },
	{ R_GERROR_IRQ_CFG2, 4 }, { R_EVTQ_IRQ_CFG0, 8 },
	{ R_EVTQ_IRQ_CFG1, 4 }, { R_EVTQ_IRQ_CFG2, 4 },
	{ R_PRIQ_IRQ_CFG0, 8 }, { R_PRIQ_IRQ_CFG1, 4 },
	{ R_PRIQ_IRQ_CFG2, 4 }, { R_CR1, 4 }, { R_CR2, 4 },
	/* actions */
	{ R_GBPA, 4 }, { R_IRQ_CTRL, 4 }, { R_GERRORN, 4 }, { R_CR0, 4 },
	{ R_EVTQ_CONS, 4 }, { PAGE1 + R_EVTQ_CONS, 4 },
	{ R_PRIQ_CONS, 4 }, { PAGE1 + R_PRIQ_CONS, 4 },
	{ R_CMDQ_PROD, 4 },
	/* read-only */
	{ R_IDR0, 4 }, { R_IDR1, 4 }, { R_IDR2, 4 }, { R_IDR3, 4 },
	{ R_IDR4, 4 }, { R_IDR5, 4 }, { R_IIDR, 4 }, { R_AIDR, 4 },
	{ R_CR0ACK, 4 }, { R_STATUSR, 4 }, { R_AGBPA, 4 },
	{ R_IRQ_CTRLACK, 4 }, { R_GERROR, 4 }, { R_CMDQ_CONS, 4 },
	{ R_EVTQ_PROD, 4 }, { PAGE1 + R_EVTQ_PROD, 4 },
	{ R_PRIQ_PROD, 4 }, { PAGE1 + R_PRIQ_PROD, 4 },
};

unsigned int smmuv3_frame_regs(struct regframe_reg *out, unsigned int max)
{
	_Static_assert(ARRAY_SIZE(regs) == SMMUV3_FRAME_NREGS,
		       "SMMUV3_FRAME_NREGS");
	if (max < ARRAY_SIZE(regs))
		return 0;
	memcpy(out, regs, sizeof(regs));
	return ARRAY_SIZE(regs);
}
