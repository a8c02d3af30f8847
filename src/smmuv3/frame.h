/*
 * frame.h - the SMMUv3 register list for a polled register frame
 * (transport/regframe.h).
 */
#ifndef VIOMMU_SMMUV3_FRAME_H
#define VIOMMU_SMMUV3_FRAME_H

#include "transport/regframe.h"

/*
 * smmuv3_frame_regs() - the registers of page 0 and page 1, in feed
 * order, into @out (room for @max).  Return: how many, or 0 when @max is
 * too small (SMMUV3_FRAME_NREGS are needed).
 */
#define SMMUV3_FRAME_NREGS 43u
unsigned int smmuv3_frame_regs(struct regframe_reg *out, unsigned int max);

#endif /* VIOMMU_SMMUV3_FRAME_H */
