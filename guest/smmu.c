/*
 * smmu.c - smmu: the stock arm-smmu-v3 driver bound our SMMUv3 model (a
 * register frame polled by viommu-server, docs/SMMUV3-GUEST.md) and our
 * DMA engines are its endpoints.
 *
 * Checks: exactly one /sys/class/iommu device driven by arm-smmu-v3; the
 * driver's "features 0x..." line, from which the stage its DMA and VFIO
 * domains use follows (Linux takes stage 1 when the SMMU has it, else
 * stage 2); when the kernel command line says viommu.smmu_stage=N, that
 * the stage is N; and that every engine, once bound to vfio-pci, has an
 * IOMMU group of its own listed under the SMMU, with a DMA default domain.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest.h"

/* Linux's arm-smmu-v3 feature bits (ARM_SMMU_FEAT_TRANS_S1 / _S2). */
#define FEAT_TRANS_S1 (1u << 9)
#define FEAT_TRANS_S2 (1u << 10)

/* smmu_device() - the one /sys/class/iommu device of arm-smmu-v3. */
static int smmu_device(struct result *r, char *name, size_t size)
{
	char path[PATH_MAX], drv[128];
	DIR *d = opendir("/sys/class/iommu");
	struct dirent *de;
	int found = 0;
	ssize_t n;

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path),
			 "/sys/class/iommu/%s/device/driver", de->d_name);
		n = readlink(path, drv, sizeof(drv) - 1);
		if (n <= 0)
			continue;
		drv[n] = 0;
		if (strstr(drv, "arm-smmu-v3") && !found++)
			snprintf(name, size, "%.*s", (int)size - 1,
				 de->d_name);
	}
	if (d)
		closedir(d);
	expect(r, found == 1, "want one arm-smmu-v3 IOMMU device in "
	       "/sys/class/iommu, found %d", found);
	return found == 1 ? 0 : -1;
}

/* smmu_stage() - the stage the driver's domains use, from its features. */
static void smmu_stage(struct result *r)
{
	char line[256], want[32];
	unsigned long feat = 0;
	const char *p;
	int stage, n;

	if (!expect(r, !kmsg_find("(features 0x", line, sizeof(line)),
		    "no arm-smmu-v3 'features' line in the kernel log"))
		return;
	p = strstr(line, "(features 0x");
	feat = strtoul(p + 10, NULL, 16);
	res_kv(r, "features", "0x%lx", feat);
	stage = feat & FEAT_TRANS_S1 ? 1 : feat & FEAT_TRANS_S2 ? 2 : 0;
	res_kv(r, "stage", "%d", stage);
	expect(r, stage != 0, "features 0x%lx: no translation stage", feat);
	for (n = 1; n <= 2; n++) {
		snprintf(want, sizeof(want), "viommu.smmu_stage=%d", n);
		if (cmdline_has(want))
			expect(r, stage == n, "the driver uses stage %d, the "
			       "model was set up for stage %d only", stage, n);
	}
}

/* sc_smmu() - driver bound, stage, engines' groups under the SMMU. */
int sc_smmu(struct result *r)
{
	struct eng e[MAX_ENGINES];
	char name[96], path[PATH_MAX], type[32], list[256] = "";
	size_t len = 0;
	int n, i;

	if (smmu_device(r, name, sizeof(name)))
		return 0;
	res_kv(r, "iommu", "%s", name);
	smmu_stage(r);
	n = open_engines(r, e, 1);
	for (i = 0; i < n; i++) {
		expect(r, !eng_bind_vfio(&e[i]), "%s: cannot bind vfio-pci",
		       e[i].bdf);
		if (!expect(r, e[i].group >= 0, "%s has no IOMMU group",
			    e[i].bdf))
			continue;
		snprintf(path, sizeof(path), "/sys/class/iommu/%s/devices/%s",
			 name, e[i].bdf);
		expect(r, access(path, F_OK) == 0, "%s not an endpoint of %s",
		       e[i].bdf, name);
		group_type(e[i].group, type, sizeof(type));
		expect(r, !strcmp(type, "DMA") || !strcmp(type, "DMA-FQ"),
		       "%s: group %d type %s, want DMA", e[i].bdf, e[i].group,
		       type);
		len += snprintf(list + len, sizeof(list) - len, "%s%s:%d:%s",
				i ? "," : "", e[i].bdf + 5, e[i].group, type);
	}
	res_kv(r, "groups", "%s", list);
	return 0;
}
