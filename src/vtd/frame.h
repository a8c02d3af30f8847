/*
 * frame.h - the VT-d register list for a polled register frame
 * (transport/regframe.h).
 */
#ifndef VIOMMU_VTD_FRAME_H
#define VIOMMU_VTD_FRAME_H

#include "transport/regframe.h"

/*
 * vtd_frame_regs() - the registers of a unit with @nfr fault records, in
 * feed order, into @out (room for @max).  Return: how many, or 0 when
 * @max is too small (13 + 11 + 2 x @nfr are needed).
 */
unsigned int vtd_frame_regs(unsigned int nfr, struct regframe_reg *out,
			    unsigned int max);

#endif /* VIOMMU_VTD_FRAME_H */
