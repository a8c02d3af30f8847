/*
 * sarr.h - a bounded sorted array of fixed-size records keyed by a
 * uint32_t, for small tables a device keeps under its own lock (the
 * virtio-iommu device's domain ID -> domain and endpoint ID -> domain
 * tables).
 *
 * Concepts
 *  - Records are stored by value, contiguous, in ascending key order.  The
 *    key is the record's first member, a uint32_t (SARR_DEFINE checks it
 *    at compile time); keys are unique.
 *  - Look-up is a binary search, preceded by a one-entry hint: the index
 *    the last successful look-up found is tried first, so a stream of
 *    requests naming one key costs one comparison.  Inserts and removals
 *    shift records, so the hint is a guess checked by key, never trusted.
 *  - Insert and remove move records: a record pointer is valid only until
 *    the next insert or remove on the same array.
 *  - Memory.  The array grows on demand (16 records, then doubling, never
 *    past @max) through the caller's allocator, in a separate step:
 *    sarr_reserve() makes room for one more record and is the only call
 *    that can fail, so a caller reserves before it changes anything else
 *    and sarr_insert() after that cannot fail.  Reaching @max answers
 *    -ENOSPC (a limit: the caller's bound), an allocation failure -ENOMEM;
 *    either leaves the array unchanged.
 *  - No locking and no hidden state: the owner serialises every call
 *    (sarr_find() updates the hint, so it is a write too).
 *
 * The typed interface: SARR_DEFINE(name, type, key) declares `struct name`
 * and static inline wrappers name_init/fini/reserve/insert/remove/find/
 * at/count/clear that take and return `type *`, so callers never cast or
 * pass a record size.
 */
#ifndef VIOMMU_SARR_H
#define VIOMMU_SARR_H

#include <viommu/common.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* struct sarr - the untyped array; use it through SARR_DEFINE. */
struct sarr {
	void *v;       /* cap records */
	size_t esz;    /* record size */
	uint32_t n;    /* records held */
	uint32_t cap;  /* records allocated */
	uint32_t max;  /* bound on n */
	uint32_t hint; /* index sarr_find() found last (checked before use) */
};

/* sarr_init() - an empty array of @esz-byte records, at most @max. */
void sarr_init(struct sarr *a, size_t esz, uint32_t max);

/* sarr_fini() - free the records; the array is empty afterwards. */
void sarr_fini(struct sarr *a, const struct viommu_allocator *al);

/*
 * sarr_reserve() - make room for one more record (nothing if there is
 * room).  Return: 0; -ENOSPC (@max records held); -ENOMEM (allocation
 * failed).  On failure the array is unchanged.
 */
int sarr_reserve(struct sarr *a, const struct viommu_allocator *al);

/*
 * sarr_insert() - insert a copy of @rec in key order; room must have been
 * reserved and its key must not be present.  Return: the stored record.
 */
void *sarr_insert(struct sarr *a, const void *rec);

/* sarr_remove() - remove the record with @key.  Return: whether found. */
bool sarr_remove(struct sarr *a, uint32_t key);

/* sarr_find() - the record with @key, or NULL (updates the hint). */
void *sarr_find(struct sarr *a, uint32_t key);

/* sarr_at() - the record at index @i (< n), in key order. */
static inline void *sarr_at(const struct sarr *a, uint32_t i)
{
	return (char *)a->v + (size_t)i * a->esz;
}

/*
 * SARR_DEFINE() - struct @name, an array of @type keyed by its first
 * member @key (a uint32_t), and its typed wrappers.
 */
#define SARR_DEFINE(name, type, key)                                      \
	_Static_assert(offsetof(type, key) == 0,                          \
		       #type "." #key " must be the first member");       \
	_Static_assert(sizeof(((type *)0)->key) == sizeof(uint32_t),      \
		       #type "." #key " must be a uint32_t");             \
	struct name {                                                     \
		struct sarr a;                                            \
	};                                                                \
	static inline void name##_init(struct name *s, uint32_t max)      \
	{                                                                 \
		sarr_init(&s->a, sizeof(type), max);                      \
	}                                                                 \
	static inline void name##_fini(struct name *s,                    \
				       const struct viommu_allocator *al) \
	{                                                                 \
		sarr_fini(&s->a, al);                                     \
	}                                                                 \
	static inline int name##_reserve(struct name *s,                  \
					 const struct viommu_allocator *al) \
	{                                                                 \
		return sarr_reserve(&s->a, al);                           \
	}                                                                 \
	static inline type *name##_insert(struct name *s, const type *r)  \
	{                                                                 \
		return sarr_insert(&s->a, r);                             \
	}                                                                 \
	static inline bool name##_remove(struct name *s, uint32_t k)      \
	{                                                                 \
		return sarr_remove(&s->a, k);                             \
	}                                                                 \
	static inline type *name##_find(struct name *s, uint32_t k)       \
	{                                                                 \
		return sarr_find(&s->a, k);                               \
	}                                                                 \
	static inline type *name##_at(const struct name *s, uint32_t i)   \
	{                                                                 \
		return sarr_at(&s->a, i);                                 \
	}                                                                 \
	static inline uint32_t name##_count(const struct name *s)         \
	{                                                                 \
		return s->a.n;                                            \
	}                                                                 \
	static inline void name##_clear(struct name *s)                   \
	{                                                                 \
		s->a.n = 0;                                               \
	}

#endif /* VIOMMU_SARR_H */
