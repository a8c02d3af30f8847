/*
 * viommu.h - umbrella header and the pieces every object shares.
 *
 * viommu is a virtual IOMMU stack: one translation core (core.h) over a
 * guest-memory layer (mem.h), with front ends (virtio-iommu, SMMUv3, Intel VT-d) and
 * endpoint models built on top.  Embedders include only this header.
 *
 * Conventions for every exported function:
 *  - returns 0 (or a non-negative count where documented) on success and a
 *    negative errno on failure; results go through pointer arguments;
 *  - validates every argument and never asserts on caller input;
 *  - never prints and never exits: diagnostics go to the log callback given
 *    in the object's configuration;
 *  - keeps no global state: everything hangs off the objects you create.
 */
#ifndef VIOMMU_VIOMMU_H
#define VIOMMU_VIOMMU_H

#include <viommu/common.h>
#include <viommu/mem.h>
#include <viommu/core.h>
#include <viommu/virtio.h>
#include <viommu/virtio_iommu.h>
#include <viommu/virtio_blk.h>
#include <viommu/virtio_net.h>
#include <viommu/smmuv3.h>
#include <viommu/vtd.h>
#include <viommu/link.h>
#include <viommu/pci.h>
#include <viommu/acpi.h>
#include <viommu/regframe.h>
#include <viommu/trace.h>

#endif /* VIOMMU_VIOMMU_H */
