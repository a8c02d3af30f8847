/*
 * fuzz_core.c - libFuzzer target for the translation core: random
 * sequences of configuration and translation calls checked against a
 * simple flat reference model.  This file decodes the input and drives
 * the calls; the model, the calls and the checks are in the files
 * fuzz_core.h lists.
 *
 * Input: one header byte (bit 0: bypass on at start; bits 1-2: IOTLB of
 * 256/1/4/16 entries; bit 3: 2048 instead of 64 mappings per domain), then
 * 8-byte records (struct rec): an opcode byte and seven argument bytes.
 * Each record is one call: map, bulk map, unmap, translate, lookup, DMA
 * read/write, attach, detach, domain and endpoint create/destroy,
 * invalidate, bypass, reserved region, dirty enable/read, mapping walk,
 * or a replacement of the guest-memory region set.  Arguments come from
 * small tables - 64 IOVA pages plus edge values such as 0, the last page
 * of the 64-bit space and the MSI window, sizes that wrap - so that
 * collisions, overlaps and limits are frequent.
 *
 * The model keeps flat arrays: per domain slot its mappings (sorted) and
 * dirty pages, per endpoint slot its RID and PASID attachments and its
 * reserved regions, plus the bypass bit and the memory layout.  Before
 * each call it works out the expected result (where core.h allows
 * several errnos, the set of acceptable ones); after the call the return
 * code, outputs, fault reports (returned and via the callback) and
 * MAP/UNMAP notifier events are compared, then the whole visible state
 * (mappings, domain info, context stats, attachments, reserved regions).
 * Any disagreement prints a message to stderr and calls abort().
 *
 * Where core.h is silent the model follows these rules: reserved regions
 * act only through PAGING domains (not IDENTITY or bypass); an MSI window
 * translates 1:1 and is never RAM (hva NULL, as core.h says); writes
 * through viommu_domain_lookup() mark dirty pages like translate();
 * a DMA range that wraps the address space is -EFAULT without a fault
 * report; a write to read-only RAM is a PERMISSION fault.
 *
 * Guest memory: region A (1 MiB at GPA 0), region B (64 KiB right after
 * it), a hole, region C (64 KiB at 2 MiB), then a hole to the top; all
 * static arrays of this program.  Limits are small (6 domains, 4
 * endpoints, 64 mappings per domain, 2 PASIDs and 3 reserved regions per
 * endpoint) so -ENOSPC (a limit) is reached and modelled.
 *
 * Everything is set up and torn down per input; the target is
 * deterministic and keeps no state between inputs apart from the guest
 * RAM contents, which no check depends on.  Build with -DFUZZ_TRACE to
 * print each decoded record.
 *
 * Two check levels (docs/FUZZING.md): the full one (fuzz_core_full and
 * the replay programs) compares the whole visible state after every
 * state-changing call, walking every mapping of every domain.  The fast
 * one (-DFUZZ_FAST: fuzz_core, what CI runs) checks every call's return
 * code, outputs, faults and events as before, and after each call every
 * domain's info (kind, endpoint count, mapping count, mapped bytes,
 * dirty tracking) and the context stats - but walks the mappings only of
 * the domain slot the call targeted, over the range it named (refused or
 * not), and checks the endpoints only after calls that can change them;
 * every domain is walked and every endpoint checked every
 * FAST_FULL_EVERY calls and once more at the end of the input.  A call
 * that corrupts mappings it did not name, or an endpoint, without
 * changing the counts is so caught later in the same input, not missed.
 */
#include "fuzz_core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ------------------------------------------------------------------ */
/* Argument tables                                                    */

static const uint64_t iova_edges[32] = {
	0, UINT64_MAX - 0xfff, UINT64_MAX - 0x1fff, UINT64_MAX,
	0xfee00000, 0xfeefffff, 0xfef00000, 0x100000000ull - PAGE,
	1ull << 48, (1ull << 63) - PAGE, 1ull << 63, 63 * PAGE + 0x800,
	64 * PAGE, 65 * PAGE, UINT64_MAX - 0x7ff, 0x1000,
	0x7ff, 0x800, 31 * PAGE, 32 * PAGE,
	0, UINT64_MAX - 0xfff, 0x200000, 0x1fffff,
	0xfee00000, 0, 16 * PAGE, 17 * PAGE,
	15 * PAGE, UINT64_MAX - 0xfff, 0x3f000, 0x40000,
};

/* iova_sel() - one of 64 pages at 0, or an edge value. */
static uint64_t iova_sel(uint8_t b)
{
	if (b < 224)
		return (uint64_t)(b % 64) * PAGE;
	return iova_edges[b - 224];
}

static const uint64_t size_edges[26] = {
	0, UINT64_MAX, 1ull << 63, 256 * PAGE, 1u << 20, 2 * PAGE + 1,
	PAGE - 1, 0x1000000, 0x800, 1, 2, 0x100000000ull,
	0xfeefffff - 0xfee00000 + 1, PAGE / 2, 3 * PAGE - 0x10, 0x10,
	0, UINT64_MAX - 0xfff, 64 * PAGE, 128 * PAGE, 8 * PAGE, 0x2000,
	UINT64_MAX - PAGE * 64 + 1, 4 * PAGE, 0x40000, 0x3000,
};

/*
 * size_sel() - a range size: mostly 1..8 or 1..64 pages, some byte sizes,
 * some that wrap (0 means the whole space from iova).
 */
static uint64_t size_sel(uint8_t c)
{
	if (c < 160)
		return (uint64_t)(c % 8 + 1) * PAGE;
	if (c < 200)
		return (uint64_t)(c % 64 + 1) * PAGE;
	if (c < 230)
		return (uint64_t)(c - 199) * 0x100;
	return size_edges[c - 230];
}

static const uint64_t gpa_edges[32] = {
	UINT64_MAX - 0xfff, UINT64_MAX - 0xffff, 1ull << 40, 0xfee00000,
	RAM_A_SIZE - 0x800, RAM_A_SIZE - PAGE, RAM_B_GPA + RAM_B_SIZE - PAGE,
	RAM_C_GPA - PAGE, RAM_C_GPA, RAM_C_GPA + RAM_C_SIZE - 0x10, 0x123,
	UINT64_MAX, 0, RAM_A_SIZE - 2 * PAGE, RAM_B_GPA, 0x7ffff,
	RAM_C_GPA + RAM_C_SIZE, 0x180000, 0xfffff000, 0x10,
	UINT64_MAX - 0x3fff, 1, 0x1000, RAM_A_SIZE - 0x10,
	0, 0x40000, RAM_B_GPA - 0x2000, RAM_C_GPA - 0x800,
	3ull << 20, 0xf000, RAM_C_GPA + 0x8000, 0x2000,
};

/* gpa_sel() - pages spread over A, B, the hole and C, or an edge value. */
static uint64_t gpa_sel(uint8_t d)
{
	if (d < 224)
		return (uint64_t)((d * 5u) % 560) * PAGE;
	return gpa_edges[d - 224];
}

/* prot_sel() - any mix of R/W/X/MMIO; rarely an unknown bit. */
static uint32_t prot_sel(uint8_t e)
{
	uint32_t prot = e & PROT_ALL;

	if ((e >> 4) == 0xf)
		prot |= 1u << (4 + (e & 3));
	return prot;
}

static const size_t len_tab[16] = {
	1, 2, 8, 64, 512, 4095, 4096, 4097, 8192, 16384, 65536, 1u << 20,
	2u << 20, SIZE_MAX, 0, 3000,
};

static const unsigned int access_tab[8] = {
	VIOMMU_READ, VIOMMU_WRITE, VIOMMU_EXEC, VIOMMU_READ | VIOMMU_WRITE,
	VIOMMU_READ, VIOMMU_WRITE, 0, 8,
};

const uint32_t pasid_tab[8] = {
	VIOMMU_NO_PASID, VIOMMU_NO_PASID, VIOMMU_NO_PASID, 1, 2, 3,
	VIOMMU_PASID_MAX, VIOMMU_PASID_MAX + 1,
};

static const size_t dma_len_tab[8] = {
	1, 16, 100, 4096, 4097, 8192, 12000, DMA_MAX,
};

/* ------------------------------------------------------------------ */
/* Decoding and driver                                                */

enum opcode {
	OP_MAP, OP_UNMAP, OP_TRANSLATE, OP_LOOKUP, OP_ATTACH, OP_DETACH,
	OP_DOM_CREATE, OP_DOM_DESTROY, OP_INVALIDATE, OP_BYPASS, OP_RESV,
	OP_DIRTY_ENABLE, OP_DIRTY_READ, OP_EP_CREATE, OP_EP_DESTROY, OP_DMA,
	OP_WALK, OP_BULK, OP_MEM,
};

static const char *const op_names[] = {
	"map", "unmap", "translate", "lookup", "attach", "detach",
	"dom_create", "dom_destroy", "invalidate", "bypass", "add_resv",
	"dirty_enable", "dirty_read", "ep_create", "ep_destroy", "dma",
	"walk", "bulk_map", "mem_set",
};

/* describe() - fz->desc for the current record (only when reporting). */
void describe(struct fz *fz)
{
	const struct rec *r = &fz->cur;

	if (fz->cur_op < 0)
		return;
	snprintf(fz->desc, sizeof(fz->desc),
		 "(%s %02x %02x %02x %02x %02x %02x %02x)",
		 op_names[fz->cur_op], r->a, r->b, r->c, r->d, r->e, r->f,
		 r->g);
}

/* Opcode byte % 32 -> operation; the common calls get more slots. */
static const uint8_t op_table[32] = {
	OP_MAP, OP_MAP, OP_MAP, OP_MAP, OP_MAP, OP_UNMAP, OP_UNMAP, OP_UNMAP,
	OP_TRANSLATE, OP_TRANSLATE, OP_TRANSLATE, OP_TRANSLATE, OP_TRANSLATE,
	OP_LOOKUP, OP_ATTACH, OP_ATTACH, OP_DETACH, OP_DOM_CREATE,
	OP_DOM_DESTROY, OP_INVALIDATE, OP_BYPASS, OP_RESV, OP_DIRTY_ENABLE,
	OP_DIRTY_READ, OP_EP_CREATE, OP_EP_DESTROY, OP_DMA, OP_DMA, OP_WALK,
	OP_BULK, OP_TRANSLATE, OP_MEM,
};

/* target_sel() - mostly a domain slot, sometimes a static domain. */
static int target_sel(uint8_t a)
{
	if (a % 32 == 30)
		return T_IDENT;
	if (a % 32 == 31)
		return T_BLOCK;
	return a % NDOM;
}

/* end_of() - last byte of a range of @size at @iova (0 = to the top). */
static uint64_t end_of(uint64_t iova, uint64_t size)
{
	return iova + size - 1;
}

/* resv_type_sel() - RESERVED, MSI, or an invalid type. */
static uint32_t resv_type_sel(uint8_t d)
{
	if (d % 8 < 4)
		return VIOMMU_RESV_RESERVED;
	return d % 8 < 7 ? VIOMMU_RESV_MSI : 2;
}

/* run_dirty_read() - decode and run a dirty_read record. */
static void run_dirty_read(struct fz *fz, const struct rec *r)
{
	uint64_t iova = iova_sel(r->b), npages;
	size_t words;

	if (r->g & 1)
		iova += r->g;
	npages = r->c < 200 ? (uint64_t)(r->c % 64 + 1)
			    : (uint64_t)(r->c - 199) * 8;
	words = (size_t)((npages + 63) / 64);
	if (r->d % 4 == 0)
		words--;
	op_dirty_read(fz, target_sel(r->a), iova, npages, words,
		      r->e % 8 == 7 ? 2 : (r->e & 1), (r->f & 1) ?
		      0x5555555555555555ull : 0);
}

/* run_op() - decode one record and run it; true if it may change state. */
static bool run_op(struct fz *fz, const struct rec *r, int op)
{
	uint64_t iova = iova_sel(r->b);

	switch (op) {
	case OP_MAP:
		if (r->f & 1)
			iova += (uint64_t)(r->f >> 1) * 0x20;
		op_map(fz, target_sel(r->a), iova,
		       end_of(iova, size_sel(r->c)), gpa_sel(r->d),
		       prot_sel(r->e));
		return true;
	case OP_UNMAP:
		op_unmap(fz, target_sel(r->a), iova,
			 end_of(iova, size_sel(r->c)), r->d & 1);
		return true;
	case OP_TRANSLATE:
		op_translate(fz, r->a % NEP, pasid_tab[r->b % 8],
			     iova_sel(r->c) + (r->d < 128 ? r->d * 32u : 0),
			     len_tab[r->e % 16], access_tab[r->f % 8],
			     r->g & 1);
		return false;
	case OP_LOOKUP:
		op_lookup(fz, target_sel(r->a),
			  iova_sel(r->c) + (r->d < 128 ? r->d * 32u : 0),
			  len_tab[r->e % 16], access_tab[r->f % 8]);
		return false;
	case OP_ATTACH:
		op_attach(fz, r->a % NEP, pasid_tab[r->b % 8],
			  r->c % 10 < 8 ? r->c % 8 : T_IDENT + r->c % 10 - 8);
		return true;
	case OP_DETACH:
		op_detach(fz, r->a % NEP, pasid_tab[r->b % 8]);
		return true;
	case OP_DOM_CREATE:
		op_dom_create(fz, r->a % NDOM, r->b);
		return true;
	case OP_DOM_DESTROY:
		op_dom_destroy(fz, target_sel(r->a));
		return true;
	case OP_INVALIDATE:
		op_invalidate(fz, target_sel(r->a), r->c, iova,
			      end_of(iova, size_sel(r->d)));
		return true;
	case OP_BYPASS:
		op_bypass(fz, r->a & 1);
		return true;
	case OP_RESV:
		op_add_resv(fz, r->a % NEP, iova, end_of(iova, size_sel(r->c)),
			    resv_type_sel(r->d));
		return true;
	case OP_DIRTY_ENABLE:
		op_dirty_enable(fz, target_sel(r->a), r->b % 4 != 0);
		return true;
	case OP_DIRTY_READ:
		run_dirty_read(fz, r);
		return true;
	case OP_EP_CREATE:
		op_ep_create(fz, r->a % NEP);
		return true;
	case OP_EP_DESTROY:
		op_ep_destroy(fz, r->a % NEP);
		return true;
	case OP_DMA:
		op_dma(fz, r->a % NEP, pasid_tab[r->b % 8],
		       iova_sel(r->c) + (r->d < 128 ? r->d * 32u : 0),
		       dma_len_tab[r->e % 8], r->f & 1, r->g);
		return false;
	case OP_BULK:
		op_bulk(fz, target_sel(r->a), r->b & 0x80 ?
			(1ull << 32) + (uint64_t)(r->b & 0x7f) * 0x10000 :
			iova_sel(r->b), 16u * (r->c % 16 + 1),
			0x100ull << (r->d % 5), (0x100ull << (r->d % 5)) *
			(r->e % 4 == 3 ? 2 : 1), prot_sel(r->f) | VIOMMU_READ);
		return true;
	case OP_MEM:
		op_mem(fz, r->a);
		return true;
	case OP_WALK:
	default:
		op_walk(fz, target_sel(r->a), iova,
			end_of(iova, size_sel(r->c)), r->d % 4);
		return false;
	}
}

/*
 * walk_mask_of() - fast mode: the domain slots whose mappings record @r
 * may change (the target of a map, unmap, bulk map, domain create or
 * destroy, invalidate or dirty call); ~0 (all) in the full mode.
 */
static unsigned int walk_mask_of(const struct rec *r, int op)
{
#ifdef FUZZ_FAST
	int t;

	switch (op) {
	case OP_MAP:
	case OP_UNMAP:
	case OP_DOM_DESTROY:
	case OP_INVALIDATE:
	case OP_DIRTY_ENABLE:
	case OP_DIRTY_READ:
	case OP_BULK:
		t = target_sel(r->a);
		return t < NDOM ? 1u << t : 0;
	case OP_DOM_CREATE:
		return 1u << (r->a % NDOM);
	default:
		return 0;
	}
#else
	(void)r;
	(void)op;
	return ~0u;
#endif
}

/*
 * eps_changed_by() - fast mode: whether @op may change an endpoint's
 * attachments, reserved regions or lookup (the per-call endpoint check
 * runs after those, after every FAST_FULL_EVERY-th call and at the end of
 * the input; checking every endpoint after each map was a tenth of an
 * execution).  Always true in the full mode.
 */
static bool eps_changed_by(int op)
{
#ifdef FUZZ_FAST
	switch (op) {
	case OP_ATTACH:
	case OP_DETACH:
	case OP_DOM_CREATE:
	case OP_DOM_DESTROY:
	case OP_BYPASS:
	case OP_RESV:
	case OP_EP_CREATE:
	case OP_EP_DESTROY:
		return true;
	default:
		return false;
	}
#else
	(void)op;
	return true;
#endif
}

/* step() - run one record with its per-op checks. */
static void step(struct fz *fz, const struct rec *r)
{
	int op = op_table[r->op % 32];
	bool changes;

	fz->cur = *r;
	fz->cur_op = op;
	fz->touch_lo = UINT64_MAX;
	fz->touch_hi = 0;
	fz->nev = 0;
	fz->nwant = 0;
	fz->nfault_cb = 0;
#ifdef FUZZ_TRACE
	describe(fz);
	fprintf(stderr, "#%d %s\n", fz->opno, fz->desc);
#endif
	changes = run_op(fz, r, op);
	check_events(fz, !changes);
	if (!changes && fz->nfault_cb == 0)
		return;
	fz->walk_mask = walk_mask_of(r, op);
	fz->check_eps = eps_changed_by(op);
	if (fz->opno % FAST_FULL_EVERY == FAST_FULL_EVERY - 1) {
		fz->walk_mask = ~0u;
		fz->check_eps = true;
	}
	check_state(fz);
}

static struct fz fz_store;
static struct viommu_event ev_store[MAP_CAP + 64];
static int ev_slot_store[MAP_CAP + 64];
static struct viommu_event want_store[MAP_CAP];
static int want_slot_store[MAP_CAP];
static struct mmapping map_store[NDOM][MAP_CAP];

/* setup() - guest memory, a context, three endpoints, two domains. */
static struct fz *setup(uint8_t hdr)
{
	static const uint32_t iotlb[4] = { 0, 1, 4, 16 };
	struct viommu_mem_region reg[4];
	unsigned int n = make_regions(LAY_DEFAULT, reg);
	struct viommu_ctx_config cfg = { 0 };
	struct fz *fz = &fz_store;

	uint32_t cap = hdr & 8 ? MAP_CAP : MAX_MAPS;

	/*
	 * The model lives in static storage, reset per input: allocating
	 * it (over 1 MiB with MAP_CAP) for each input cost more page faults
	 * than the input's calls (the arrays are only read below their
	 * counts, so they need no clearing).
	 */
	memset(fz, 0, sizeof(*fz));
	fz->max_maps = cap;
	fz->ev = ev_store;
	fz->ev_slot = ev_slot_store;
	fz->want = want_store;
	fz->want_slot = want_slot_store;
	for (int i = 0; i < NDOM; i++)
		fz->dom[i].map = map_store[i];
	snprintf(fz->desc, sizeof(fz->desc), "(setup)");
	fz->cur_op = -1;
	fz->walk_mask = ~0u;
	fz->check_eps = true;
	fz->opno = -1;
	if (viommu_mem_create(NULL, &fz->mem) ||
	    viommu_mem_set_regions(fz->mem, reg, n))
		fail(fz, "guest memory set-up failed");
	cfg.mem = fz->mem;
	cfg.limits.max_domains = MAX_DOMAINS;
	cfg.limits.max_endpoints = MAX_EPS;
	fz->layout = LAY_DEFAULT;
	cfg.limits.max_mappings_per_domain = fz->max_maps;
	cfg.limits.max_pasids_per_endpoint = MAX_PASIDS;
	cfg.limits.max_resv_per_endpoint = MAX_RESV;
	cfg.limits.iotlb_entries = iotlb[(hdr >> 1) & 3];
	cfg.fault = on_fault;
	cfg.fault_opaque = fz;
	cfg.bypass_unattached = hdr & 1;
	fz->bypass = hdr & 1;
	if (viommu_ctx_create(&cfg, &fz->ctx))
		fail(fz, "ctx_create failed");
	for (int i = 0; i < NEP; i++)
		fz->ep[i].rid = T_NONE;
	op_ep_create(fz, 0);
	op_ep_create(fz, 1);
	op_ep_create(fz, 2);
	op_dom_create(fz, 0, 0);
	op_dom_create(fz, 1, 0);
	op_attach(fz, 0, VIOMMU_NO_PASID, 0);
	check_state(fz);
	return fz;
}

/* teardown() - destroy everything; the notifiers go with their domains. */
static void teardown(struct fz *fz)
{
	/* Every domain walked at the end, whatever the check level. */
	fz->cur_op = -1;
	snprintf(fz->desc, sizeof(fz->desc), "(end of input)");
	fz->walk_mask = ~0u;
	fz->check_eps = true;
	check_state(fz);
	snprintf(fz->desc, sizeof(fz->desc), "(teardown)");
	fz->nev = 0;
	viommu_ctx_destroy(fz->ctx);
	viommu_mem_destroy(fz->mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *fz;
	struct rec r;

	if (size < 1)
		return 0;
	fz = setup(data[0]);
	data++;
	size--;
	for (fz->opno = 0; size >= sizeof(r); fz->opno++) {
		memcpy(&r, data, sizeof(r));
		data += sizeof(r);
		size -= sizeof(r);
		step(fz, &r);
	}
	teardown(fz);
	return 0;
}
