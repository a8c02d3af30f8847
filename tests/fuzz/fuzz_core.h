/*
 * fuzz_core.h - what the four files of the fuzz_core target share: the
 * limits and argument ranges, the reference model's state (struct fz,
 * its domain and endpoint slots) and the functions one file calls in
 * another.
 *
 *   fuzz_core.c        the input: header byte and records decoded into
 *                      calls, set-up and teardown, the entry point;
 *   fuzz_core_model.c  the reference model: ranges, lookups in the
 *                      model's mappings, attachments, reserved regions,
 *                      dirty pages, the expected result of a translation;
 *   fuzz_core_ops.c    one function per call: the expectation worked out
 *                      from the model, the call, its return code, outputs
 *                      and events compared, the model updated;
 *   fuzz_core_check.c  reporting, the fault and notifier callbacks, the
 *                      comparison of translations and faults, and the
 *                      whole-state checks after a call.
 *
 * The target links the static library (libviommu.a), so a function
 * shared here must not take a name the library defines (hence
 * model_dirty_*: the core has a dirty_clear()).
 */
#ifndef FUZZ_CORE_H
#define FUZZ_CORE_H

#include <viommu/viommu.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE ((uint64_t)4096)
#define NDOM 8            /* domain slots */
#define T_NONE (-1)       /* attachment targets: slot, or one of these */
#define T_IDENT NDOM
#define T_BLOCK (NDOM + 1)
#define NEP 6             /* endpoint slots */
#define MAX_DOMAINS 6
#define MAX_EPS 4
#define MAX_MAPS 64       /* default mapping limit per domain */
#define MAP_CAP 2048      /* ... and the large one (header bit 3) */
#define MAX_PASIDS 2
#define MAX_RESV 3
#define DIRTY_CAP 1024    /* model dirty pages per domain */
#define DMA_MAX 16384
#define DMA_PIECES 256
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FAST_FULL_EVERY 32 /* fast mode: full walk every N calls */

#define RAM_A_SIZE (1u << 20)
#define RAM_B_GPA ((uint64_t)RAM_A_SIZE)
#define RAM_B_SIZE (64u << 10)
#define RAM_C_GPA (2ull << 20)
#define RAM_C_SIZE (64u << 10)

#define PERM_ALL (VIOMMU_READ | VIOMMU_WRITE | VIOMMU_EXEC)
#define PROT_ALL (PERM_ALL | VIOMMU_MAP_MMIO)

/* Acceptable-errno sets: bit per errno of interest. */
#define E_INVAL (1u << 0)
#define E_NOTSUP (1u << 1)
#define E_EXIST (1u << 2)
#define E_INUSE (1u << 3)
#define E_NOSPC (1u << 4) /* a limit reached */
#define E_RANGE (1u << 5)
#define E_NOENT (1u << 6)
#define E_BUSY (1u << 7)
#define E_NODEV (1u << 8)
#define E_FAULT (1u << 9)
#define E_ACCES (1u << 10)

extern uint8_t ram_a[RAM_A_SIZE];
extern uint8_t ram_b[RAM_B_SIZE];
extern uint8_t ram_c[RAM_C_SIZE];
extern uint8_t ram_c2[RAM_C_SIZE];

/* Guest-memory layouts (bits): B present, C backed by ram_c2, C read-only. */
#define LAY_B (1u << 0)
#define LAY_C2 (1u << 1)
#define LAY_C_RO (1u << 2)
#define LAY_DEFAULT LAY_B

struct rec {
	uint8_t op, a, b, c, d, e, f, g;
};

struct mmapping {
	uint64_t iova, last, gpa;
	uint32_t prot;
};

struct fz;

struct mdom {
	struct viommu_domain *d; /* NULL: slot empty */
	struct viommu_notifier *nt;
	struct fz *fz;
	int slot;
	uint64_t tag;
	struct mmapping *map; /* max_maps entries, kept across reuse */
	int nmap;
	uint64_t bytes;   /* sum of the mappings' sizes (saturated) ... */
	bool bytes_stale; /* ... unless the mappings changed since */
	bool dirty_on;
	bool dirty_lost; /* model set overflowed: dirty contents unchecked */
	uint64_t dirty[DIRTY_CAP]; /* page numbers */
	int ndirty;
};

struct mpasid {
	uint32_t pasid;
	int t;
};

struct mep {
	struct viommu_endpoint *e; /* NULL: slot empty */
	uint32_t id;
	int rid; /* attachment target of the RID */
	struct mpasid pas[MAX_PASIDS];
	int npas;
	struct viommu_resv resv[MAX_RESV]; /* sorted by start */
	int nresv;
};

struct fz {
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct mdom dom[NDOM];
	struct mep ep[NEP];
	bool bypass;
	unsigned int layout; /* LAY_* of the current region set */
	uint32_t max_maps;
	int ndom, nep;
	uint64_t maps, unmaps, faults;
	/* fault callback records of the current operation */
	struct viommu_fault fault_cb;
	int nfault_cb;
	/* notifier events of the current operation */
	struct viommu_event *ev; /* max_maps + 64 entries */
	int *ev_slot;
	int nev;
	/* MAP/UNMAP events the current operation must produce */
	struct viommu_event *want; /* max_maps entries */
	int *want_slot;
	int nwant;
	int opno;
	char desc[200];
	struct rec cur;   /* the record being run (desc is built on failure) */
	int cur_op;       /* its operation, or -1 for set-up/teardown */
	unsigned int walk_mask; /* fast mode: slots to walk after this op */
	bool check_eps;   /* fast mode: check the endpoints after this op */
	uint64_t touch_lo, touch_hi; /* fast mode: IOVAs this op named */
};

/* struct xres - what the model expects of one translation. */
struct xres {
	int rc;
	struct viommu_xlate x;
	struct viommu_fault f;
	int t; /* domain target used, T_NONE for bypass */
};

/* PASIDs the records pick from (fuzz_core.c); the checks look at them all */
extern const uint32_t pasid_tab[8];

/* fuzz_core_model.c */
bool overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1);
uint64_t sat_add(uint64_t a, uint64_t b);
uint64_t range_bytes(uint64_t iova, uint64_t last);
struct viommu_domain *target_dom(struct fz *fz, int t);
int first_from(const struct mdom *md, uint64_t iova);
void touch(struct fz *fz, uint64_t iova, uint64_t last);
int find_pasid(const struct mep *me, uint32_t pasid);
bool ep_attached_to(const struct mep *me, int t);
uint32_t dom_endpoints(const struct fz *fz, int t);
bool resv_hits_maps(const struct fz *fz, int t, uint64_t s,
		    uint64_t l);
bool ep_resv_hits_dom(const struct fz *fz, const struct mep *me,
		      int t);
bool model_dirty_has(const struct mdom *md, uint64_t p);
void model_dirty_clear(struct mdom *md, uint64_t first, uint64_t last);
void want_event(struct fz *fz, int slot, uint32_t type,
		const struct mmapping *m);
void xident(const struct fz *fz, struct xres *r, uint64_t iova,
	    size_t len, unsigned int access);
void xpaging(struct fz *fz, struct xres *r, int t, uint64_t iova,
	     size_t len, unsigned int access);
void model_xlate(struct fz *fz, int e, uint32_t pasid, uint64_t iova,
		 size_t len, unsigned int access, struct xres *r);
void xlate_apply(struct fz *fz, const struct xres *r, uint64_t iova,
		 unsigned int access);

/* fuzz_core_ops.c */
void op_map(struct fz *fz, int t, uint64_t iova, uint64_t last,
	    uint64_t gpa, uint32_t prot);
void op_unmap(struct fz *fz, int t, uint64_t iova, uint64_t last,
	      bool want_bytes);
void op_translate(struct fz *fz, int e, uint32_t pasid, uint64_t iova,
		  size_t len, unsigned int access, bool want_fault);
void op_lookup(struct fz *fz, int t, uint64_t iova, size_t len,
	       unsigned int access);
void op_dma(struct fz *fz, int e, uint32_t pasid, uint64_t iova,
	    size_t len, bool write, uint8_t seed);
void op_attach(struct fz *fz, int e, uint32_t pasid, int t);
void op_detach(struct fz *fz, int e, uint32_t pasid);
void op_dom_create(struct fz *fz, int s, uint8_t kind_sel);
void op_dom_destroy(struct fz *fz, int t);
void op_invalidate(struct fz *fz, int t, uint8_t how, uint64_t iova,
		   uint64_t last);
void op_bypass(struct fz *fz, bool on);
void op_add_resv(struct fz *fz, int e, uint64_t start, uint64_t last,
		 uint32_t type);
void op_dirty_enable(struct fz *fz, int t, bool on);
void op_dirty_read(struct fz *fz, int t, uint64_t iova,
		   uint64_t npages, size_t words, uint32_t flags,
		   uint64_t fill);
void op_ep_create(struct fz *fz, int e);
void op_ep_destroy(struct fz *fz, int e);
unsigned int make_regions(unsigned int lay,
			  struct viommu_mem_region *reg);
void op_mem(struct fz *fz, uint8_t v);
void op_bulk(struct fz *fz, int t, uint64_t base, unsigned int count,
	     uint64_t size, uint64_t stride, uint32_t prot);
void walk_check(struct fz *fz, int t, uint64_t iova, uint64_t last,
		int stop_after);
void op_walk(struct fz *fz, int t, uint64_t iova, uint64_t last,
	     int stop_after);

/* fuzz_core_check.c */
void __attribute__((format(printf, 2, 3), noreturn))
fail(struct fz *fz, const char *fmt, ...);
void expect_rc(struct fz *fz, int rc, unsigned int ok_bits);
void on_fault(void *opaque, const struct viommu_fault *f);
void on_event(void *opaque, const struct viommu_event *ev);
void cmp_xlate(struct fz *fz, const struct viommu_xlate *got,
	       const struct viommu_xlate *want);
void cmp_fault(struct fz *fz, const char *what,
	       const struct viommu_fault *got,
	       const struct viommu_fault *want);
void check_fault_cb(struct fz *fz, const struct viommu_fault *want);
void check_events(struct fz *fz, bool quiet);
void check_state(struct fz *fz);

/* fuzz_core.c */
void describe(struct fz *fz);

#endif
