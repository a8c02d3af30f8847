/*
 * regframe.c - a register frame in guest RAM served by polling (see
 * regframe.h for the protocol and its limits).
 *
 * Every access to the frame is an atomic load or compare-and-swap of the
 * register's width on the host pointer viommu_mem_ptr() gives, so a
 * guest vCPU storing to the frame at the same time is never torn or lost.
 * A register's host pointer is looked up on each access (inside the
 * memory layer's read section) rather than cached, so a region change
 * cannot leave a stale pointer behind.
 */
#include "transport/regframe.h"
#include "base/util.h"

#include <errno.h>

/* slot() - host pointer of register @r, or NULL (read section held). */
static void *slot(struct regframe *f, const struct regframe_reg *r)
{
	void *hva;
	size_t contig;

	if (viommu_mem_ptr(f->mem, f->gpa + r->off, r->size, VIOMMU_WRITE,
			   &hva, &contig) || contig < r->size ||
	    ((uintptr_t)hva & (r->size - 1)))
		return NULL;
	return hva;
}

/* load() - the frame's value of @r; false if not RAM. */
static bool load(struct regframe *f, const struct regframe_reg *r,
		 uint64_t *v)
{
	unsigned int tok = viommu_mem_read_lock(f->mem);
	void *p = slot(f, r);

	if (p && r->size == 8)
		*v = __atomic_load_n((uint64_t *)p, __ATOMIC_ACQUIRE);
	else if (p)
		*v = __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE);
	viommu_mem_read_unlock(f->mem, tok);
	return p != NULL;
}

/* publish() - CAS @want over @expect; false if the frame is not RAM. */
static bool publish(struct regframe *f, const struct regframe_reg *r,
		    uint64_t expect, uint64_t want)
{
	unsigned int tok = viommu_mem_read_lock(f->mem);
	void *p = slot(f, r);

	if (p && r->size == 8) {
		__atomic_compare_exchange_n((uint64_t *)p, &expect, want,
					    false, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE);
	} else if (p) {
		uint32_t e = (uint32_t)expect;

		__atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)want,
					    false, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE);
	}
	viommu_mem_read_unlock(f->mem, tok);
	return p != NULL;
}

/* refresh() - step 4: the model's values into the frame. */
static int refresh(struct regframe *f, const uint64_t *seen)
{
	for (unsigned int i = 0; i < f->nregs; i++) {
		const struct regframe_reg *r = &f->regs[i];
		uint64_t v = 0;

		f->ops.read(f->ops.opaque, r->off, r->size, &v);
		if (!publish(f, r, seen[i], v))
			return -EFAULT;
		f->pub[i] = v;
	}
	return 0;
}

int regframe_init(struct regframe *f, struct viommu_mem *mem, uint64_t gpa,
		  const struct regframe_reg *regs, unsigned int nregs,
		  const struct regframe_ops *ops)
{
	uint64_t seen[REGFRAME_MAX_REGS];

	if (!f || !mem || !regs || !ops || !ops->read || !ops->write ||
	    nregs > REGFRAME_MAX_REGS)
		return -EINVAL;
	for (unsigned int i = 0; i < nregs; i++)
		if ((regs[i].size != 4 && regs[i].size != 8) ||
		    ((gpa + regs[i].off) & (regs[i].size - 1)))
			return -EINVAL;
	memset(f, 0, sizeof(*f));
	f->mem = mem;
	f->gpa = gpa;
	f->regs = regs;
	f->nregs = nregs;
	f->ops = *ops;
	for (unsigned int i = 0; i < nregs; i++)
		if (!load(f, &regs[i], &seen[i]))
			return -EFAULT;
	return refresh(f, seen);
}

int regframe_poll(struct regframe *f)
{
	uint64_t seen[REGFRAME_MAX_REGS];
	int fed = 0;

	f->polls++;
	for (unsigned int i = 0; i < f->nregs; i++)
		if (!load(f, &f->regs[i], &seen[i]))
			return -EFAULT;
	for (unsigned int i = 0; i < f->nregs; i++) {
		const struct regframe_reg *r = &f->regs[i];

		if (seen[i] == f->pub[i])
			continue;
		f->ops.write(f->ops.opaque, r->off, r->size, seen[i]);
		fed++;
	}
	/* bounded: a model's queue cannot grow while we hold its writes */
	for (int i = 0; f->ops.poll && i < 1024; i++)
		if (f->ops.poll(f->ops.opaque) != 1)
			break;
	f->writes += (uint64_t)fed;
	return refresh(f, seen) ? -EFAULT : fed;
}
