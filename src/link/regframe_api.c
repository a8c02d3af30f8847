/*
 * regframe_api.c - the public face of the polled register frame
 * (<viommu/regframe.h>): picks the model's ops table by kind, reads a
 * config of any size the caller knows, and forwards to regframe.c.
 */
#include <viommu/regframe.h>

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "base/util.h"
#include "link/regframe.h"

struct viommu_regframe {
	struct regframe *rf;
};

/* struct viommu_regframe_config as the first release had it (size 0). */
#define CONFIG_SIZE_V1 \
	(offsetof(struct viommu_regframe_config, trace) + \
	 sizeof(const struct viommu_trace_sink *))

/* config_copy() - @cfg into @c, as much as the caller knows.  0/-EINVAL. */
static int config_copy(const struct viommu_regframe_config *cfg,
		       struct viommu_regframe_config *c)
{
	size_t n = cfg->size ? cfg->size : CONFIG_SIZE_V1;

	if (n < CONFIG_SIZE_V1 || !sized_in(c, sizeof(*c), cfg, n))
		return -EINVAL;
	return 0;
}

VIOMMU_EXPORT int
viommu_regframe_create(const struct viommu_regframe_config *cfg,
		       struct viommu_regframe **out)
{
	struct viommu_regframe_config c;
	struct regframe_config rc = { .size = sizeof(rc) };
	struct viommu_regframe *f;
	int err;

	if (!cfg || !out || config_copy(cfg, &c))
		return -EINVAL;
	switch (c.kind) {
	case VIOMMU_REGFRAME_SMMUV3:
		rc.ops = &regframe_smmuv3_ops;
		break;
	case VIOMMU_REGFRAME_VTD:
		rc.ops = &regframe_vtd_ops;
		break;
	default:
		return -EINVAL;
	}
	rc.model = c.model;
	rc.mem = c.mem;
	rc.gpa = c.gpa;
	rc.idle_us = c.idle_us;
	rc.max_idle_us = c.max_idle_us;
	rc.log = c.log;
	rc.name = c.name;
	rc.after_round = c.after_round;
	rc.opaque = c.opaque;
	rc.trace = c.trace;
	f = xzalloc(NULL, sizeof(*f));
	if (!f)
		return -ENOMEM;
	err = regframe_create(&rc, &f->rf);
	if (err) {
		xfree(NULL, f);
		return err;
	}
	*out = f;
	return 0;
}

VIOMMU_EXPORT void viommu_regframe_destroy(struct viommu_regframe *rf)
{
	if (!rf)
		return;
	regframe_destroy(rf->rf);
	xfree(NULL, rf);
}

VIOMMU_EXPORT int viommu_regframe_start(struct viommu_regframe *rf)
{
	return rf ? regframe_start(rf->rf) : -EINVAL;
}

VIOMMU_EXPORT void viommu_regframe_stop(struct viommu_regframe *rf)
{
	if (rf)
		regframe_stop(rf->rf);
}

VIOMMU_EXPORT int viommu_regframe_round(struct viommu_regframe *rf,
					bool *changed)
{
	return rf ? regframe_round(rf->rf, changed) : -EINVAL;
}

VIOMMU_EXPORT int viommu_regframe_stats(const struct viommu_regframe *rf,
					struct viommu_regframe_stats *out,
					size_t size)
{
	struct viommu_regframe_stats st;

	if (!rf || !out || !size)
		return -EINVAL;
	regframe_stats(rf->rf, &st);
	sized_out(out, size, &st, sizeof(st));
	return 0;
}
