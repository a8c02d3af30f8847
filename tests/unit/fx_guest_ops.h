/*
 * fx_guest_ops.h - the helpers of fx_guest.h over a fixture's struct fx
 * (included after the struct is complete; see fx_guest.h).
 */
#ifndef TEST_FX_GUEST_OPS_H
#define TEST_FX_GUEST_OPS_H

#include "fx_guest.h"

/* fx_alloc() - zeroed guest memory, aligned; 0 when exhausted. */
static inline uint64_t fx_alloc(struct fx *f, uint64_t size, uint64_t align)
{
	uint64_t g = (f->next + align - 1) & ~(align - 1);

	if (g + size > FX_RAM_SIZE)
		return 0;
	memset(f->ram + g, 0, size);
	f->next = g + size;
	return FX_RAM_GPA + g;
}

static inline void gw64(struct fx *f, uint64_t gpa, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		f->ram[gpa - FX_RAM_GPA + i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t gr64(struct fx *f, uint64_t gpa)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | f->ram[gpa - FX_RAM_GPA + i];
	return v;
}

/*
 * fx_guest_init() - zero @f, then its RAM, memory object and context.
 * Return: 0; -ENOMEM; -EINVAL.
 */
static inline int fx_guest_init(struct fx *f)
{
	struct viommu_ctx_config cc = { 0 };
	struct viommu_mem_region r = { 0 };

	memset(f, 0, sizeof(*f));
	f->ram = FX_RAM_ALLOC(FX_RAM_SIZE);
	if (!f->ram || viommu_mem_create(NULL, &f->mem))
		return -ENOMEM;
	r.gpa = FX_RAM_GPA;
	r.size = FX_RAM_SIZE;
	r.fd = -1;
	r.hva = f->ram;
	if (viommu_mem_set_regions(f->mem, &r, 1))
		return -EINVAL;
	cc.mem = f->mem;
	if (viommu_ctx_create(&cc, &f->ctx))
		return -ENOMEM;
	return 0;
}

/* fx_guest_fini() - the context, memory object and RAM (the model first). */
static inline void fx_guest_fini(struct fx *f)
{
	viommu_ctx_destroy(f->ctx);
	viommu_mem_destroy(f->mem);
	FX_RAM_FREE(f->ram);
}

#endif /* TEST_FX_GUEST_OPS_H */
