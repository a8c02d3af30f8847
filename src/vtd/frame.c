/*
 * frame.c - the VT-d registers a polled frame serves (transport/regframe.h),
 * in the order their writes are fed to the model: the registers that only
 * hold a value first (root table and queue addresses, the invalidation
 * address, event data and addresses), then those whose writes act (event
 * controls, status and fault records, the context and IOTLB commands,
 * GCMD, the queue tail), then the read-only ones (published only).  A
 * driver that stores an address and then the command using it between two
 * polls is thus served in its order (docs/VTD.md, "A polled frame").
 */
#include "vtd_internal.h"
#include "vtd/frame.h"

static const struct regframe_reg head[] = {
	{ R_RTADDR, 8 }, { R_IQA, 8 }, { R_IVA, 8 }, { R_IRTA, 8 },
	{ R_FEDATA, 4 }, { R_FEADDR, 4 }, { R_FEUADDR, 4 },
	{ R_IEDATA, 4 }, { R_IEADDR, 4 }, { R_IEUADDR, 4 },
	{ R_FECTL, 4 }, { R_IECTL, 4 }, { R_ICS, 4 },
};

static const struct regframe_reg tail[] = {
	{ R_FSTS, 4 }, { R_CCMD, 8 }, { R_IOTLB, 8 }, { R_GCMD, 4 },
	{ R_IQT, 8 },
	{ R_VER, 4 }, { R_CAP, 8 }, { R_ECAP, 8 }, { R_GSTS, 4 },
	{ R_IQH, 8 }, { R_IQERCD, 8 },
};

unsigned int vtd_frame_regs(unsigned int nfr, struct regframe_reg *out,
			    unsigned int max)
{
	unsigned int n = 0;

	if (nfr > VIOMMU_VTD_MAX_NFR)
		nfr = VIOMMU_VTD_MAX_NFR;
	if (max < ARRAY_SIZE(head) + ARRAY_SIZE(tail) + 2 * nfr)
		return 0;
	for (unsigned int i = 0; i < ARRAY_SIZE(head); i++)
		out[n++] = head[i];
	/* fault records: the F bit (upper qword) is write-1-to-clear */
	for (unsigned int i = 0; i < nfr; i++) {
		out[n++] = (struct regframe_reg){ R_FRCD + 16 * i + 8, 8 };
		out[n++] = (struct regframe_reg){ R_FRCD + 16 * i, 8 };
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(tail); i++)
		out[n++] = tail[i];
	return n;
}
