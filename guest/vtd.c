/*
 * vtd.c - vtd: the stock intel-iommu driver bound our VT-d model (a
 * register frame polled by viommu-server, named by our DMAR table;
 * docs/VTD.md "A real x86 guest") and our DMA engines are its endpoints.
 *
 * Checks: the kernel log has the driver's "Intel(R) Virtualization
 * Technology for Directed I/O" line; exactly one /sys/class/iommu device
 * named dmar*, whose intel-iommu/cap and ecap read back non-zero (the
 * driver read our CAP and ECAP through the frame); and that every engine,
 * once bound to vfio-pci, has an IOMMU group of its own listed under that
 * unit, with a DMA default domain.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest.h"

/* vtd_device() - the one /sys/class/iommu device of intel-iommu. */
static int vtd_device(struct result *r, char *name, size_t size)
{
	DIR *d = opendir("/sys/class/iommu");
	struct dirent *de;
	int found = 0;

	while (d && (de = readdir(d))) {
		if (!strncmp(de->d_name, "dmar", 4) && !found++)
			snprintf(name, size, "%.*s", (int)size - 1,
				 de->d_name);
	}
	if (d)
		closedir(d);
	expect(r, found == 1, "want one intel-iommu device (dmar*) in "
	       "/sys/class/iommu, found %d", found);
	return found == 1 ? 0 : -1;
}

/* vtd_regs() - CAP and ECAP as the driver read them. */
static void vtd_regs(struct result *r, const char *name)
{
	static const char *const regs[] = { "cap", "ecap" };
	char path[PATH_MAX], val[64];

	for (unsigned int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path),
			 "/sys/class/iommu/%s/intel-iommu/%s", name, regs[i]);
		if (!expect(r, !read_file_str(path, val, sizeof(val)),
			    "cannot read %s", path))
			continue;
		val[strcspn(val, "\n")] = 0;
		res_kv(r, regs[i], "0x%s", val);
		expect(r, strtoull(val, NULL, 16) != 0, "%s reads 0: the "
		       "driver did not see our registers", path);
	}
}

/* sc_vtd() - driver bound, registers, engines' groups under the unit. */
int sc_vtd(struct result *r)
{
	struct eng e[MAX_ENGINES];
	char name[96], path[PATH_MAX], type[32], list[256] = "", msg[256];
	size_t len = 0;
	int n, i;

	expect(r, !kmsg_find("Intel(R) Virtualization Technology for "
			     "Directed I/O", msg, sizeof(msg)),
	       "no intel-iommu enable line in the kernel log");
	if (vtd_device(r, name, sizeof(name)))
		return 0;
	res_kv(r, "iommu", "%s", name);
	vtd_regs(r, name);
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
