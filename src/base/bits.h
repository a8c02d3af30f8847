/*
 * bits.h - typed bit and field helpers for descriptor and register
 * layouts (SMMUv3 STEs, CDs and commands, LPAE descriptors, VT-d table
 * entries), in the style of Linux's <linux/bits.h>: one definition for the
 * whole tree, 64-bit throughout.
 *
 *   BIT(n)            bit n
 *   GENMASK(h, l)     bits h..l inclusive (h >= l, both 0..63)
 *   FIELD(v, h, l)    bits h..l of v, shifted down to bit 0
 *   FIELD_PREP(h, l, x) x shifted up into bits h..l (excess bits dropped)
 */
#ifndef VIOMMU_BITS_H
#define VIOMMU_BITS_H

#include <stdint.h>

#define BIT(n) (1ull << (n))
#define GENMASK(h, l) ((~0ull >> (63 - (h))) & ~((1ull << (l)) - 1))
#define FIELD(v, h, l) (((uint64_t)(v) & GENMASK(h, l)) >> (l))
#define FIELD_PREP(h, l, x) (((uint64_t)(x) << (l)) & GENMASK(h, l))

#endif /* VIOMMU_BITS_H */
