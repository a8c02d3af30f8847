/*
 * fx_guest.h - the guest part both register-IOMMU fixtures share
 * (test_smmuv3_fixture.h, test_vtd_fixture.h): FX_RAM_SIZE bytes of
 * zeroed guest RAM at FX_RAM_GPA, the memory object and a core context
 * over it, a bump allocator for guest structures, and 64-bit guest
 * stores and loads.
 *
 * A fixture includes this header, declares FX_GUEST_FIELDS at the top of
 * its struct fx, and includes fx_guest_ops.h after the struct: the
 * helpers there work on either fixture's struct fx (a test includes one
 * fixture only).
 */
#ifndef TEST_FX_GUEST_H
#define TEST_FX_GUEST_H

#include <viommu/core.h>
#include <viommu/mem.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FX_RAM_GPA 0x0ull
#ifndef FX_RAM_SIZE
#define FX_RAM_SIZE (16ull << 20)
#endif
/* zeroed guest RAM per fx_init(); a fuzz target may keep it (fuzz_ram.h) */
#ifndef FX_RAM_ALLOC
#define FX_RAM_ALLOC(size) calloc(1, (size))
#define FX_RAM_FREE(p) free(p)
#endif

/* The fields every fixture's struct fx starts with. */
#define FX_GUEST_FIELDS                                                   \
	uint8_t *ram;                                                     \
	struct viommu_mem *mem;                                           \
	struct viommu_ctx *ctx;                                           \
	uint64_t next /* bump allocator */

#endif /* TEST_FX_GUEST_H */
