/*
 * fault.h - what device models may ask of the core's fault path beyond
 * the public core.h: reporting a fault that did not come from a failed
 * translation (fault injection for driver testing).  The report goes the
 * way a real one does: counted in the context's statistics, logged at
 * debug level, handed to the context's fault callback (the virtio-iommu
 * turns it into an event) on the calling thread with no viommu lock held.
 */
#ifndef VIOMMU_CORE_FAULT_H
#define VIOMMU_CORE_FAULT_H

#include <viommu/core.h>

/*
 * core_report_fault() - report a fault of @reason on (@ep, @pasid) at
 * @iova for @access, as viommu_translate() reports a real one.  @out, if
 * not NULL, receives the record.  The domain tag is the one of the RID
 * attachment (0 if none).  Thread safety: as viommu_translate().
 * Return: -EFAULT (always: the access failed).
 */
int core_report_fault(struct viommu_endpoint *ep, uint32_t pasid,
		      uint64_t iova, unsigned int access, uint32_t reason,
		      struct viommu_fault *out);

#endif /* VIOMMU_CORE_FAULT_H */
