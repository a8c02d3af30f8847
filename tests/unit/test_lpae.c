/*
 * test_lpae.c - unit tests of the Arm LPAE page-table library: the peer
 * suite (Linux io-pgtable-arm's selftest matrix reproduced with our
 * builder and walker), configuration rules, descriptor fields, every
 * fault the walker reports, permissions per stage, hardware access and
 * dirty updates, the contiguous hint, concatenated stage-2 start tables,
 * nested table-address translation, and malformed tables.
 *
 * Tables live in a guest-RAM region (16 MiB at 2 GiB, so below every OAS
 * we test) handed out by a bump allocator that counts live tables, so
 * leaks and frees are checked too.
 */
#include "harness.h"
#include "refdrv/lpae_build.h"

#include <errno.h>
#include <sys/mman.h>

#define RAM_GPA 0x80000000ull
#define RAM_SIZE (16ull << 20)
#define RO_GPA 0x90000000ull /* a read-only region for update failures */
#define RO_SIZE (64ull << 10)
#define HOLE_GPA 0xa0000000ull /* no RAM here */
#define SZ_4K 0x1000ull
#define SZ_16K 0x4000ull
#define SZ_64K 0x10000ull
#define SZ_2M 0x200000ull
#define SZ_32M 0x2000000ull
#define SZ_512M 0x20000000ull
#define SZ_1G 0x40000000ull
#define RW (VIOMMU_READ | VIOMMU_WRITE)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixture ---------------------------------------------------------- */

struct fx {
	struct viommu_mem *mem;
	uint8_t *ram, *ro;
	uint64_t next;     /* bump pointer (GPA) */
	long live;         /* tables allocated and not freed */
	long allocs;       /* allocations so far */
	long fail_at;      /* fail the allocation with this number, or -1 */
	struct lpae_ops ops;
	struct lpae_cfg cfg;
	uint64_t root;
};

/* fx_alloc() - bump allocator over the RAM region. */
static int fx_alloc(void *opaque, uint64_t size, uint64_t align,
		    uint64_t *gpa)
{
	struct fx *f = opaque;
	uint64_t at = (f->next + align - 1) & ~(align - 1);

	if (f->allocs++ == f->fail_at || at + size > RAM_GPA + RAM_SIZE)
		return -ENOMEM;
	/* dirty the memory so the builder's zeroing is exercised */
	memset(f->ram + (at - RAM_GPA), 0xa5, (size_t)size);
	f->next = at + size;
	f->live++;
	*gpa = at;
	return 0;
}

static void fx_free(void *opaque, uint64_t gpa, uint64_t size)
{
	struct fx *f = opaque;

	(void)gpa;
	(void)size;
	f->live--;
}

/* fx_init() - guest memory: RW RAM plus a read-only region. */
static int fx_init(struct fx *f)
{
	struct viommu_mem_region r[2];

	memset(f, 0, sizeof(*f));
	f->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	f->ro = mmap(NULL, RO_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f->ram == MAP_FAILED || f->ro == MAP_FAILED)
		return -1;
	r[0] = (struct viommu_mem_region){ .gpa = RAM_GPA, .size = RAM_SIZE,
					   .fd = -1, .hva = f->ram };
	r[1] = (struct viommu_mem_region){ .gpa = RO_GPA, .size = RO_SIZE,
					   .fd = -1, .hva = f->ro,
					   .flags = VIOMMU_MEM_F_READONLY };
	if (viommu_mem_create(NULL, &f->mem) ||
	    viommu_mem_set_regions(f->mem, r, 2))
		return -1;
	f->next = RAM_GPA;
	f->fail_at = -1;
	f->ops = (struct lpae_ops){ .mem = f->mem, .alloc = fx_alloc,
				    .free = fx_free, .opaque = f };
	return 0;
}

static void fx_fini(struct fx *f)
{
	viommu_mem_destroy(f->mem);
	munmap(f->ram, RAM_SIZE);
	munmap(f->ro, RO_SIZE);
}

/*
 * fx_cfg() - validate a configuration and allocate its root.
 * Return: 0 or the failing errno.
 */
static int fx_cfg(struct fx *f, enum lpae_stage stage, unsigned int granule,
		  unsigned int ias, unsigned int oas)
{
	int err;

	f->next = RAM_GPA;
	f->live = 0;
	f->cfg = (struct lpae_cfg){ .stage = stage, .granule = granule,
				    .ias = ias, .oas = oas,
				    .start_level = LPAE_SL_AUTO };
	err = lpae_cfg_validate(&f->cfg);
	return err ? err : lpae_alloc_root(&f->cfg, &f->ops, &f->root);
}

/* put64() / get64() - a raw descriptor in guest memory. */
static void put64(struct fx *f, uint64_t gpa, uint64_t v)
{
	viommu_mem_write(f->mem, gpa, &v, 8);
}

static uint64_t get64(struct fx *f, uint64_t gpa)
{
	uint64_t v = 0;

	viommu_mem_read(f->mem, gpa, &v, 8);
	return v;
}

/* walk() - lpae_walk() with no visitor. */
static int walk(struct fx *f, uint64_t iova, unsigned int access,
		struct lpae_result *r)
{
	return lpae_walk(&f->cfg, f->mem, f->root, iova, access, NULL, NULL,
			 r);
}

/* iova_to_phys() - like io-pgtable's: 0 when nothing translates. */
static uint64_t iova_to_phys(struct fx *f, uint64_t iova)
{
	struct lpae_result r;

	return walk(f, iova, 0, &r) ? 0 : r.oa;
}

/* map() / unmap() - builder shorthands. */
static int map(struct fx *f, uint64_t iova, uint64_t pa, uint64_t size,
	       unsigned int prot)
{
	return lpae_map(&f->cfg, &f->ops, f->root, iova, pa, size, prot);
}

static uint64_t unmap(struct fx *f, uint64_t iova, uint64_t size)
{
	uint64_t n = 0;

	if (lpae_unmap(&f->cfg, &f->ops, f->root, iova, size, &n))
		return 0;
	return n;
}

/* leaf_gpa() - where the leaf for @iova lives (0 if none). */
static uint64_t leaf_gpa(struct fx *f, uint64_t iova)
{
	struct lpae_result r;

	return walk(f, iova, 0, &r) ? 0 : r.desc_addr;
}

/* ---- the peer suite: Linux io-pgtable-arm selftest matrix ------------- */

static const uint64_t pgsize_sets[] = {
	SZ_4K | SZ_2M | SZ_1G,
	SZ_16K | SZ_32M,
	SZ_64K | SZ_512M,
};
static const unsigned int addr_sizes[] = { 32, 36, 40, 42, 44, 48 };

/*
 * peer_one_fmt() - the selftest steps for one format.  Return: 0 if all
 * passed, else the number of the failed step (printed by the caller).
 */
static int peer_one_fmt(struct fx *f, uint64_t pgsizes)
{
	uint64_t iova, size, largest = 0;
	int step = 1;

	/* empty tables translate nothing */
	if (iova_to_phys(f, 42) || iova_to_phys(f, SZ_1G + 42) ||
	    iova_to_phys(f, 2 * SZ_1G + 42))
		return step;
	/* distinct mappings of each page size, 1G apart */
	iova = 0;
	for (size = 1; size; size <<= 1) {
		if (!(pgsizes & size))
			continue;
		largest = size;
		step++;
		if (map(f, iova, iova, size, RW | LPAE_PROT_CACHE))
			return step;
		if (map(f, iova, iova + size, size, VIOMMU_READ) != -EEXIST)
			return step + 100;
		if (iova_to_phys(f, iova + 42) != iova + 42)
			return step + 200;
		iova += SZ_1G;
	}
	/* full unmap, translate nothing, remap write-only */
	iova = 0;
	for (size = 1; size; size <<= 1) {
		if (!(pgsizes & size))
			continue;
		step++;
		if (unmap(f, iova, size) != size)
			return step;
		if (iova_to_phys(f, iova + 42))
			return step + 100;
		if (map(f, iova, iova, size, VIOMMU_WRITE))
			return step + 200;
		if (iova_to_phys(f, iova + 42) != iova + 42)
			return step + 300;
		iova += SZ_1G;
	}
	/* the last largest page of the input range (concatenation corner) */
	iova = (1ull << f->cfg.ias) - largest;
	if (map(f, iova, iova, largest, RW | LPAE_PROT_CACHE))
		return 50;
	if (iova_to_phys(f, iova + 42) != iova + 42)
		return 51;
	if (unmap(f, iova, largest) != largest)
		return 52;
	return 0;
}

/* granule_of() - the smallest size in a page-size set. */
static unsigned int granule_of(uint64_t pgsizes)
{
	return (unsigned int)(pgsizes & -pgsizes);
}

/*
 * The matrix: 3 page-size sets x 21 (IAS <= OAS) pairs = 63
 * configurations, each run at stage 1 and stage 2 (126 tables), exactly
 * as arm_lpae_do_selftests() runs them; all 63 are valid configurations
 * there (none needs more than 16 concatenated tables) and here.
 */
TEST(peer_io_pgtable_arm_selftest_matrix)
{
	int configs = 0, passed = 0, concat = 0;
	struct fx f;

	REQUIRE(fx_init(&f) == 0);
	for (size_t i = 0; i < ARRAY_LEN(pgsize_sets); i++) {
		for (size_t j = 0; j < ARRAY_LEN(addr_sizes); j++) {
			for (size_t k = 0; k <= j; k++) {
				unsigned int ias = addr_sizes[k];
				unsigned int oas = addr_sizes[j];
				int ok = 1;

				configs++;
				for (int st = 1; st <= 2; st++) {
					int err = fx_cfg(&f, st,
						granule_of(pgsize_sets[i]),
						ias, oas);

					if (!err)
						err = peer_one_fmt(&f,
							pgsize_sets[i]);
					if (st == 2 && f.cfg.concat > 1)
						concat++;
					if (!err) {
						lpae_free_tables(&f.cfg, &f.ops,
								 f.root);
						err = f.live ? 99 : 0;
					}
					if (err) {
						printf("#   pgsizes 0x%" PRIx64
						       " ias %u oas %u stage %d"
						       ": step %d\n",
						       pgsize_sets[i], ias, oas,
						       st, err);
						ok = 0;
					}
				}
				passed += ok;
			}
		}
	}
	printf("# peer matrix: %d/%d configurations passed (x2 stages), "
	       "%d stage-2 tables concatenated\n", passed, configs, concat);
	CHECK_EQ(configs, 63);
	CHECK_EQ(passed, 63);
	/*
	 * Mandatory concatenation: 4K (IAS,OAS) = (40,40) (40,42) (42,42),
	 * 16K (40,40) and (48,48).
	 */
	CHECK_EQ(concat, 5);
	fx_fini(&f);
}

/* ---- configuration ---------------------------------------------------- */

struct cfg_case {
	int stage;
	unsigned int granule, ias, oas;
	int sl;
	bool ha, hd, hpd, be;
	int err;
	unsigned int exp_sl, exp_concat;
};

TEST(cfg_validate_rules)
{
	static const struct cfg_case cases[] = {
		{ 1, 4096, 48, 48, -1, 0, 0, 0, 0, 0, 0, 1 },
		{ 1, 16384, 48, 48, -1, 0, 0, 0, 0, 0, 0, 1 },
		{ 1, 65536, 48, 48, -1, 0, 0, 0, 0, 0, 1, 1 },
		{ 1, 4096, 25, 32, -1, 0, 0, 0, 0, 0, 2, 1 },
		{ 1, 65536, 25, 32, -1, 0, 0, 0, 0, 0, 3, 1 },
		{ 1, 4096, 48, 32, -1, 1, 1, 1, 0, 0, 0, 1 },
		{ 2, 4096, 40, 40, -1, 0, 0, 0, 0, 0, 1, 2 },
		{ 2, 4096, 42, 42, -1, 0, 0, 0, 0, 0, 1, 8 },
		{ 2, 4096, 40, 48, -1, 0, 0, 0, 0, 0, 0, 1 },
		{ 2, 4096, 40, 48, 1, 0, 0, 0, 0, 0, 1, 2 },
		{ 2, 4096, 32, 32, 2, 0, 0, 0, 0, 0, 2, 4 },
		{ 2, 16384, 40, 40, -1, 0, 0, 0, 0, 0, 2, 16 },
		{ 2, 16384, 48, 48, -1, 0, 0, 0, 0, 0, 1, 2 },
		{ 2, 16384, 36, 40, -1, 0, 0, 0, 0, 0, 2, 1 },
		{ 2, 65536, 48, 48, -1, 1, 0, 0, 0, 0, 1, 1 },
		/* refused */
		{ 2, 4096, 40, 40, 0, 0, 0, 0, 0, -EINVAL, 0, 0 },
		{ 2, 16384, 48, 48, 0, 0, 0, 0, 0, -EINVAL, 0, 0 },
		{ 2, 4096, 48, 48, 1, 0, 0, 0, 0, -EINVAL, 0, 0 },
		{ 2, 4096, 32, 32, 0, 0, 0, 0, 0, -EINVAL, 0, 0 },
		{ 2, 65536, 48, 48, 0, 0, 0, 0, 0, -EINVAL, 0, 0 },
		{ 2, 4096, 32, 32, 4, 0, 0, 0, 0, -EINVAL, 0, 0 },
		{ 2, 4096, 44, 40, -1, 0, 0, 0, 0, -EINVAL, 0, 0 },
		{ 2, 4096, 40, 40, -1, 0, 0, 1, 0, -EINVAL, 0, 0 },
		{ 1, 4096, 48, 48, 1, 0, 0, 0, 0, -EINVAL, 0, 0 },
		{ 1, 8192, 48, 48, -1, 0, 0, 0, 0, -EINVAL, 0, 0 },
		{ 1, 4096, 48, 33, -1, 0, 0, 0, 0, -EINVAL, 0, 0 },
		{ 1, 4096, 48, 52, -1, 0, 0, 0, 0, -EINVAL, 0, 0 },
		{ 1, 4096, 24, 32, -1, 0, 0, 0, 0, -EINVAL, 0, 0 },
		{ 1, 4096, 49, 48, -1, 0, 0, 0, 0, -EINVAL, 0, 0 },
		{ 1, 4096, 48, 48, -1, 0, 1, 0, 0, -EINVAL, 0, 0 },
		{ 1, 4096, 48, 48, -1, 0, 0, 0, 1, -EINVAL, 0, 0 },
		{ 3, 4096, 48, 48, -1, 0, 0, 0, 0, -EINVAL, 0, 0 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct cfg_case *t = &cases[i];
		struct lpae_cfg c = {
			.stage = t->stage, .granule = t->granule,
			.ias = t->ias, .oas = t->oas, .start_level = t->sl,
			.ha = t->ha, .hd = t->hd, .hpd = t->hpd,
			.big_endian = t->be,
		};
		int err = lpae_cfg_validate(&c);

		if (err != t->err)
			printf("#   case %zu\n", i);
		CHECK_EQ(err, t->err);
		if (err)
			continue;
		CHECK_EQ(c.sl, t->exp_sl);
		CHECK_EQ(c.concat, t->exp_concat);
		CHECK_EQ(c.ias, lpae_level_shift(&c, c.sl) + c.pgd_bits);
	}
	CHECK_EQ(lpae_cfg_validate(NULL), -EINVAL);
}

/* ---- descriptor fields ------------------------------------------------ */

TEST(desc_encode_decode)
{
	struct lpae_cfg s1 = { .stage = LPAE_STAGE1, .granule = 4096,
			       .ias = 48, .oas = 48, .start_level = -1 };
	struct lpae_cfg s2 = s1, g16 = s1;
	struct lpae_desc d = { 0 }, e;
	uint64_t raw;

	s2.stage = LPAE_STAGE2;
	g16.granule = 16384;
	REQUIRE(!lpae_cfg_validate(&s1) && !lpae_cfg_validate(&s2) &&
		!lpae_cfg_validate(&g16));
	/* stage-1 page with every field */
	d = (struct lpae_desc){ .type = LPAE_DESC_PAGE, .addr = 0x123456000,
				.af = 1, .sh = 3, .attrindx = 5, .ap = 1,
				.ng = 1, .pxn = 1, .uxn = 1, .dbm = 1,
				.contig = 1, .ns = 1 };
	raw = lpae_desc_encode(&s1, 3, &d);
	CHECK_U64(raw, 0x123456000ull | 3 | (5 << 2) | (1 << 5) | (1 << 6) |
		  (3 << 8) | (1 << 10) | (1 << 11) | (1ull << 51) |
		  (1ull << 52) | (3ull << 53));
	lpae_desc_decode(&s1, 3, raw, &e);
	CHECK(e.type == LPAE_DESC_PAGE && e.addr == d.addr && e.af &&
	      e.sh == 3 && e.attrindx == 5 && e.ap == 1 && e.ng && e.pxn &&
	      e.uxn && e.dbm && e.contig && e.ns);
	/* stage-2 block */
	d = (struct lpae_desc){ .type = LPAE_DESC_BLOCK, .addr = 0x40200000,
				.af = 1, .sh = 2, .memattr = 0xf, .s2ap = 2,
				.xn = 1 };
	raw = lpae_desc_encode(&s2, 2, &d);
	CHECK_U64(raw, 0x40200000ull | 1 | (0xf << 2) | (2 << 6) |
		  (2 << 8) | (1 << 10) | (1ull << 54));
	lpae_desc_decode(&s2, 2, raw, &e);
	CHECK(e.type == LPAE_DESC_BLOCK && e.memattr == 0xf &&
	      e.s2ap == 2 && e.xn && e.sh == 2 && e.addr == 0x40200000);
	/* block nT bit is not part of the address */
	lpae_desc_decode(&s1, 2, raw | (1 << 16), &e);
	CHECK_U64(e.addr, 0x40200000);
	/* stage-1 table attributes */
	d = (struct lpae_desc){ .type = LPAE_DESC_TABLE, .addr = 0x7000,
				.ap_table = 3, .xn_table = 1,
				.pxn_table = 1, .ns_table = 1 };
	raw = lpae_desc_encode(&s1, 1, &d);
	CHECK_U64(raw, 0x7000ull | 3 | (0x1full << 59));
	lpae_desc_decode(&s1, 1, raw, &e);
	CHECK(e.type == LPAE_DESC_TABLE && e.ap_table == 3 && e.xn_table &&
	      e.pxn_table && e.ns_table);
	/* ... which stage 2 does not have */
	lpae_desc_decode(&s2, 1, raw, &e);
	CHECK(e.type == LPAE_DESC_TABLE && !e.ap_table && !e.xn_table);
	/* classification by level and granule */
	lpae_desc_decode(&s1, 3, 0x1001, &e);
	CHECK(e.type == LPAE_DESC_RESERVED);
	lpae_desc_decode(&s1, 0, 0x1001, &e);
	CHECK(e.type == LPAE_DESC_RESERVED);
	lpae_desc_decode(&s1, 1, 0x1001, &e);
	CHECK(e.type == LPAE_DESC_BLOCK);
	lpae_desc_decode(&g16, 1, 0x1001, &e);
	CHECK(e.type == LPAE_DESC_RESERVED);
	lpae_desc_decode(&s1, 2, 0xfffffffffffffffeull, &e);
	CHECK(e.type == LPAE_DESC_INVALID);
	CHECK_EQ(lpae_contig_entries(&s1, 3), 16);
	CHECK_EQ(lpae_contig_entries(&g16, 3), 128);
	CHECK_EQ(lpae_contig_entries(&g16, 2), 32);
}

/* ---- faults ----------------------------------------------------------- */

/* expect_fault() - a walk that must fail with @f/@why at @level. */
#define expect_fault(fx_, iova_, acc_, f_, why_, level_)                   \
	do {                                                               \
		struct lpae_result r_;                                     \
		CHECK_EQ(walk((fx_), (iova_), (acc_), &r_), -EFAULT);      \
		CHECK_EQ(r_.fault, (f_));                                  \
		CHECK_EQ(r_.why, (why_));                                  \
		CHECK_EQ(r_.level, (level_));                              \
	} while (0)

TEST(walk_input_and_root_faults)
{
	struct lpae_result r;
	struct fx f;
	uint64_t root;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 48, 48) == 0);
	expect_fault(&f, 1ull << 48, VIOMMU_READ, LPAE_FAULT_TRANSLATION,
		     LPAE_WHY_INPUT_RANGE, 0);
	expect_fault(&f, 0x1000, VIOMMU_READ, LPAE_FAULT_TRANSLATION,
		     LPAE_WHY_INVALID, 0);
	REQUIRE(map(&f, 0x1000, 0x5000, SZ_4K, RW) == 0);
	CHECK_EQ(walk(&f, 0x1234, VIOMMU_READ, &r), 0);
	CHECK_U64(r.oa, 0x5234);
	CHECK_EQ(r.level, 3);
	CHECK_U64(r.size, SZ_4K);
	CHECK_U64(r.contig_size, SZ_4K);
	CHECK_EQ(r.perm, RW);
	root = f.root;
	f.root = 1ull << 48;
	expect_fault(&f, 0x1000, VIOMMU_READ, LPAE_FAULT_ADDR_SIZE,
		     LPAE_WHY_ROOT_RANGE, 0);
	f.root = root + 8;
	expect_fault(&f, 0x1000, VIOMMU_READ, LPAE_FAULT_ADDR_SIZE,
		     LPAE_WHY_ROOT_ALIGN, 0);
	f.root = HOLE_GPA;
	CHECK_EQ(walk(&f, 0x1000, VIOMMU_READ, &r), -EFAULT);
	CHECK_EQ(r.fault, LPAE_FAULT_WALK_EABT);
	CHECK_EQ(r.why, LPAE_WHY_NOT_RAM);
	CHECK_U64(r.fault_addr, HOLE_GPA);
	f.root = root;
	/* bad arguments */
	CHECK_EQ(lpae_walk(&f.cfg, NULL, root, 0, 0, NULL, NULL, &r),
		 -EINVAL);
	CHECK_EQ(lpae_walk(&f.cfg, f.mem, root, 0, 1u << 5, NULL, NULL, &r),
		 -EINVAL);
	struct lpae_cfg raw_cfg = { .stage = LPAE_STAGE1, .granule = 4096,
				    .ias = 48, .oas = 48 };
	CHECK_EQ(lpae_walk(&raw_cfg, f.mem, root, 0, 0, NULL, NULL, &r),
		 -EINVAL);
	fx_fini(&f);
}

TEST(walk_malformed_tables)
{
	struct lpae_result r;
	struct fx f;
	uint64_t leaf;

	REQUIRE(fx_init(&f) == 0);
	/* table pointer to no RAM: external abort on the next level */
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 48, 48) == 0);
	put64(&f, f.root, HOLE_GPA | 3);
	CHECK_EQ(walk(&f, 0x1000, VIOMMU_READ, &r), -EFAULT);
	CHECK_EQ(r.fault, LPAE_FAULT_WALK_EABT);
	CHECK_EQ(r.level, 1);
	CHECK_U64(r.fault_addr, HOLE_GPA);
	/* block at level 0 (4K has none) */
	put64(&f, f.root, 0x0 | 1 | (1 << 10));
	expect_fault(&f, 0x1000, 0, LPAE_FAULT_TRANSLATION,
		     LPAE_WHY_RESERVED, 0);
	/* a table pointing to itself: walked like any table, bounded */
	put64(&f, f.root, f.root | 3);
	CHECK_EQ(walk(&f, 0x123, 0, &r), 0);
	CHECK_U64(r.oa, f.root + 0x123);
	CHECK_EQ(r.level, 3);
	expect_fault(&f, 0x123, VIOMMU_READ, LPAE_FAULT_ACCESS, LPAE_WHY_AF,
		     3);
	expect_fault(&f, 0x1000, VIOMMU_READ, LPAE_FAULT_TRANSLATION,
		     LPAE_WHY_INVALID, 3);
	/* table address above OAS */
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 40, 40) == 0);
	put64(&f, f.root, (1ull << 40) | 3);
	CHECK_EQ(walk(&f, 0x1000, 0, &r), -EFAULT);
	CHECK_EQ(r.fault, LPAE_FAULT_ADDR_SIZE);
	CHECK_EQ(r.why, LPAE_WHY_TABLE_RANGE);
	CHECK_EQ(r.level, 0);
	CHECK_U64(r.fault_addr, 1ull << 40);
	/* misaligned table address (16K granule, 4K-aligned pointer) */
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 16384, 48, 48) == 0);
	put64(&f, f.root, (RAM_GPA + 0x101000) | 3);
	expect_fault(&f, 0x1000, 0, LPAE_FAULT_ADDR_SIZE,
		     LPAE_WHY_TABLE_ALIGN, 0);
	/* 16K has no level-1 blocks */
	put64(&f, f.root, (RAM_GPA + 0x100000) | 3);
	put64(&f, RAM_GPA + 0x100000, 1 | (1 << 10));
	expect_fault(&f, 0x1000, 0, LPAE_FAULT_TRANSLATION,
		     LPAE_WHY_RESERVED, 1);
	/* reserved 0b01 at level 3 */
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 32, 32) == 0);
	REQUIRE(map(&f, 0x1000, 0x5000, SZ_4K, RW) == 0);
	leaf = leaf_gpa(&f, 0x1000);
	REQUIRE(leaf);
	put64(&f, leaf, 0x5000 | 1 | (1 << 10));
	expect_fault(&f, 0x1000, VIOMMU_READ, LPAE_FAULT_TRANSLATION,
		     LPAE_WHY_RESERVED, 3);
	/* output address above OAS */
	put64(&f, leaf, (1ull << 32) | 3 | (1 << 10) | (3 << 6));
	CHECK_EQ(walk(&f, 0x1000, VIOMMU_READ, &r), -EFAULT);
	CHECK_EQ(r.fault, LPAE_FAULT_ADDR_SIZE);
	CHECK_EQ(r.why, LPAE_WHY_OUT_RANGE);
	CHECK_EQ(r.level, 3);
	CHECK_U64(r.fault_addr, 1ull << 32);
	/* misaligned block output address; nT (bit 16) is ignored */
	REQUIRE(map(&f, SZ_2M * 4, SZ_2M * 8, SZ_2M, RW) == 0);
	leaf = leaf_gpa(&f, SZ_2M * 4);
	REQUIRE(leaf);
	put64(&f, leaf, get64(&f, leaf) | (1 << 16));
	CHECK_EQ(walk(&f, SZ_2M * 4 + 0x42, VIOMMU_READ, &r), 0);
	CHECK_U64(r.oa, SZ_2M * 8 + 0x42);
	CHECK_U64(r.size, SZ_2M);
	put64(&f, leaf, get64(&f, leaf) | 0x1000);
	expect_fault(&f, SZ_2M * 4, VIOMMU_READ, LPAE_FAULT_ADDR_SIZE,
		     LPAE_WHY_OUT_ALIGN, 2);
	/* 64K page with OA[51:48] bits: beyond a 48-bit OAS */
	REQUIRE(fx_cfg(&f, LPAE_STAGE2, 65536, 40, 48) == 0);
	REQUIRE(map(&f, SZ_64K, SZ_64K * 3, SZ_64K, RW) == 0);
	leaf = leaf_gpa(&f, SZ_64K);
	REQUIRE(leaf);
	put64(&f, leaf, get64(&f, leaf) | 0x3000);
	expect_fault(&f, SZ_64K, VIOMMU_READ, LPAE_FAULT_ADDR_SIZE,
		     LPAE_WHY_OUT_ALIGN, 3);
	fx_fini(&f);
}

/* ---- permissions ------------------------------------------------------ */

struct s1_perm_case {
	unsigned int ap, pxn, uxn, access;
	int ok;
};

TEST(perm_stage1_ap_xn)
{
	static const struct s1_perm_case cases[] = {
		{ 0, 0, 0, VIOMMU_READ | LPAE_ACC_PRIV, 1 },
		{ 0, 0, 0, VIOMMU_WRITE | LPAE_ACC_PRIV, 1 },
		{ 0, 0, 0, VIOMMU_READ, 0 },
		{ 0, 0, 0, VIOMMU_WRITE, 0 },
		{ 0, 0, 0, VIOMMU_EXEC | LPAE_ACC_PRIV, 1 },
		{ 1, 0, 0, VIOMMU_READ | LPAE_ACC_PRIV, 1 },
		{ 1, 0, 0, VIOMMU_WRITE | LPAE_ACC_PRIV, 1 },
		{ 1, 0, 0, VIOMMU_READ, 1 },
		{ 1, 0, 0, VIOMMU_WRITE, 1 },
		{ 1, 0, 0, VIOMMU_EXEC | LPAE_ACC_PRIV, 0 }, /* implicit PXN */
		{ 1, 0, 0, VIOMMU_EXEC, 1 },
		{ 2, 0, 0, VIOMMU_READ | LPAE_ACC_PRIV, 1 },
		{ 2, 0, 0, VIOMMU_WRITE | LPAE_ACC_PRIV, 0 },
		{ 2, 0, 0, VIOMMU_READ, 0 },
		{ 3, 0, 0, VIOMMU_READ | LPAE_ACC_PRIV, 1 },
		{ 3, 0, 0, VIOMMU_WRITE | LPAE_ACC_PRIV, 0 },
		{ 3, 0, 0, VIOMMU_READ, 1 },
		{ 3, 0, 0, VIOMMU_WRITE, 0 },
		{ 3, 0, 1, VIOMMU_EXEC, 0 },
		{ 3, 0, 1, VIOMMU_EXEC | LPAE_ACC_PRIV, 1 },
		{ 3, 1, 0, VIOMMU_EXEC | LPAE_ACC_PRIV, 0 },
		{ 3, 1, 0, VIOMMU_EXEC | VIOMMU_READ, 1 },
	};
	struct lpae_result r;
	struct fx f;
	uint64_t leaf;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 48, 48) == 0);
	REQUIRE(map(&f, 0x1000, 0x2000, SZ_4K, RW) == 0);
	leaf = leaf_gpa(&f, 0x1000);
	REQUIRE(leaf);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct s1_perm_case *t = &cases[i];
		int err;

		put64(&f, leaf, 0x2000 | 3 | (1 << 10) |
			  ((uint64_t)t->ap << 6) |
			  ((uint64_t)t->pxn << 53) |
			  ((uint64_t)t->uxn << 54));
		err = walk(&f, 0x1000, t->access, &r);
		if ((err == 0) != t->ok)
			printf("#   case %zu\n", i);
		CHECK_EQ(err == 0, t->ok);
		if (!t->ok)
			CHECK_EQ(r.fault, LPAE_FAULT_PERMISSION);
	}
	/* the granted set is reported */
	put64(&f, leaf, 0x2000 | 3 | (1 << 10) | (3 << 6) | (1ull << 53));
	CHECK_EQ(walk(&f, 0x1000, VIOMMU_READ, &r), 0);
	CHECK_EQ(r.perm, VIOMMU_READ | VIOMMU_EXEC);
	CHECK_EQ(walk(&f, 0x1000, VIOMMU_READ | LPAE_ACC_PRIV, &r), 0);
	CHECK_EQ(r.perm, VIOMMU_READ);
	fx_fini(&f);
}

TEST(perm_stage1_hierarchical)
{
	struct lpae_result r;
	struct fx f;
	uint64_t leaf, top;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 48, 48) == 0);
	REQUIRE(map(&f, 0x1000, 0x2000, SZ_4K, RW | VIOMMU_EXEC) == 0);
	leaf = leaf_gpa(&f, 0x1000);
	top = get64(&f, f.root);
	put64(&f, leaf, 0x2000 | 3 | (1 << 10) | (1 << 6)); /* AP 01 */
	CHECK_EQ(walk(&f, 0x1000, VIOMMU_WRITE, &r), 0);
	put64(&f, f.root, top | (1ull << 62)); /* APTable[1]: no write */
	expect_fault(&f, 0x1000, VIOMMU_WRITE, LPAE_FAULT_PERMISSION,
		     LPAE_WHY_PERM, 3);
	expect_fault(&f, 0x1000, VIOMMU_WRITE | LPAE_ACC_PRIV,
		     LPAE_FAULT_PERMISSION, LPAE_WHY_PERM, 3);
	CHECK_EQ(walk(&f, 0x1000, VIOMMU_READ, &r), 0);
	put64(&f, f.root, top | (1ull << 61)); /* APTable[0]: no unpriv */
	expect_fault(&f, 0x1000, VIOMMU_READ, LPAE_FAULT_PERMISSION,
		     LPAE_WHY_PERM, 3);
	CHECK_EQ(walk(&f, 0x1000, VIOMMU_WRITE | LPAE_ACC_PRIV, &r), 0);
	put64(&f, leaf, 0x2000 | 3 | (1 << 10) | (3 << 6)); /* AP 11 */
	put64(&f, f.root, top | (1ull << 60)); /* UXNTable */
	expect_fault(&f, 0x1000, VIOMMU_EXEC, LPAE_FAULT_PERMISSION,
		     LPAE_WHY_PERM, 3);
	CHECK_EQ(walk(&f, 0x1000, VIOMMU_EXEC | LPAE_ACC_PRIV, &r), 0);
	put64(&f, f.root, top | (1ull << 59)); /* PXNTable */
	expect_fault(&f, 0x1000, VIOMMU_EXEC | LPAE_ACC_PRIV,
		     LPAE_FAULT_PERMISSION, LPAE_WHY_PERM, 3);
	CHECK_EQ(walk(&f, 0x1000, VIOMMU_EXEC, &r), 0);
	/* HPD: the table attributes are ignored */
	put64(&f, f.root, top | (0x1full << 59));
	f.cfg.hpd = true;
	REQUIRE(lpae_cfg_validate(&f.cfg) == 0);
	CHECK_EQ(walk(&f, 0x1000, VIOMMU_EXEC | VIOMMU_READ, &r), 0);
	CHECK_EQ(walk(&f, 0x1000, VIOMMU_EXEC | LPAE_ACC_PRIV, &r), 0);
	fx_fini(&f);
}

TEST(perm_stage2_s2ap_xn)
{
	static const struct {
		unsigned int s2ap, xn, access;
		int ok;
	} cases[] = {
		{ 0, 0, VIOMMU_READ, 0 },  { 0, 0, VIOMMU_WRITE, 0 },
		{ 1, 0, VIOMMU_READ, 1 },  { 1, 0, VIOMMU_WRITE, 0 },
		{ 2, 0, VIOMMU_READ, 0 },  { 2, 0, VIOMMU_WRITE, 1 },
		{ 3, 0, RW, 1 },           { 3, 1, VIOMMU_EXEC, 0 },
		{ 3, 0, VIOMMU_EXEC, 1 },
		{ 1, 0, VIOMMU_READ | LPAE_ACC_PRIV, 1 },
		{ 0, 0, 0, 1 }, /* probe: no permission check */
	};
	struct lpae_result r;
	struct fx f;
	uint64_t leaf;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(fx_cfg(&f, LPAE_STAGE2, 4096, 40, 44) == 0);
	REQUIRE(map(&f, 0x1000, 0x2000, SZ_4K, RW) == 0);
	leaf = leaf_gpa(&f, 0x1000);
	REQUIRE(leaf);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int err;

		put64(&f, leaf, 0x2000 | 3 | (1 << 10) |
			  ((uint64_t)cases[i].s2ap << 6) |
			  ((uint64_t)cases[i].xn << 54));
		err = walk(&f, 0x1000, cases[i].access, &r);
		if ((err == 0) != cases[i].ok)
			printf("#   case %zu\n", i);
		CHECK_EQ(err == 0, cases[i].ok);
	}
	/* write-only map is expressible at stage 2, not at stage 1 */
	REQUIRE(map(&f, 0x10000, 0x2000, SZ_4K, VIOMMU_WRITE) == 0);
	CHECK_EQ(walk(&f, 0x10000, VIOMMU_WRITE, &r), 0);
	CHECK_EQ(r.perm, VIOMMU_WRITE);
	expect_fault(&f, 0x10000, VIOMMU_READ, LPAE_FAULT_PERMISSION,
		     LPAE_WHY_PERM, 3);
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 40, 44) == 0);
	REQUIRE(map(&f, 0x10000, 0x2000, SZ_4K, VIOMMU_WRITE) == 0);
	CHECK_EQ(walk(&f, 0x10000, VIOMMU_READ, &r), 0);
	CHECK_EQ(r.perm, RW);
	fx_fini(&f);
}

/* ---- access flag and dirty state -------------------------------------- */

/* set_hw() - turn hardware updates on or off and revalidate. */
static void set_hw(struct fx *f, bool ha, bool hd)
{
	f->cfg.ha = ha;
	f->cfg.hd = hd;
	lpae_cfg_validate(&f->cfg);
}

TEST(af_fault_and_hardware_af)
{
	struct lpae_result r;
	struct fx f;
	uint64_t leaf, before;

	REQUIRE(fx_init(&f) == 0);
	for (int st = 1; st <= 2; st++) {
		REQUIRE(fx_cfg(&f, st, 4096, 48, 48) == 0);
		REQUIRE(map(&f, 0x1000, 0x2000, SZ_4K,
			    VIOMMU_READ | LPAE_PROT_NO_AF) == 0);
		leaf = leaf_gpa(&f, 0x1000);
		before = get64(&f, leaf);
		CHECK(!(before & (1 << 10)));
		expect_fault(&f, 0x1000, VIOMMU_READ, LPAE_FAULT_ACCESS,
			     LPAE_WHY_AF, 3);
		CHECK_U64(get64(&f, leaf), before);
		CHECK_EQ(walk(&f, 0x1000, 0, &r), 0); /* probe */
		set_hw(&f, true, false);
		/* a permission fault takes no update */
		expect_fault(&f, 0x1000, VIOMMU_WRITE, LPAE_FAULT_PERMISSION,
			     LPAE_WHY_PERM, 3);
		CHECK_U64(get64(&f, leaf), before);
		CHECK_EQ(walk(&f, 0x1000, 0, &r), 0);
		CHECK(!r.af_set);
		CHECK_EQ(walk(&f, 0x1000, VIOMMU_READ, &r), 0);
		CHECK(r.af_set && !r.dirty_set);
		CHECK(r.desc.af);
		CHECK_U64(get64(&f, leaf), before | (1 << 10));
		CHECK_U64(r.raw, before | (1 << 10));
		CHECK_EQ(walk(&f, 0x1000, VIOMMU_READ, &r), 0);
		CHECK(!r.af_set);
	}
	fx_fini(&f);
}

TEST(dbm_hardware_dirty)
{
	struct lpae_result r;
	struct fx f;
	uint64_t leaf, clean, top;

	REQUIRE(fx_init(&f) == 0);
	for (int st = 1; st <= 2; st++) {
		REQUIRE(fx_cfg(&f, st, 4096, 48, 48) == 0);
		set_hw(&f, true, true);
		REQUIRE(map(&f, 0x1000, 0x2000, SZ_4K,
			    RW | LPAE_PROT_DBM) == 0);
		leaf = leaf_gpa(&f, 0x1000);
		clean = get64(&f, leaf);
		CHECK(clean & (1ull << 51));
		/* clean: stage 1 AP[2] set, stage 2 S2AP[1] clear */
		CHECK_EQ(!!(clean & (1 << 7)), st == 1);
		CHECK_EQ(walk(&f, 0x1000, VIOMMU_READ, &r), 0);
		CHECK_EQ(r.perm & RW, VIOMMU_READ);
		CHECK(!r.dirty_set);
		CHECK_U64(get64(&f, leaf), clean);
		CHECK_EQ(walk(&f, 0x1000, VIOMMU_WRITE, &r), 0);
		CHECK(r.dirty_set && !r.af_set);
		CHECK_EQ(r.perm & RW, RW);
		CHECK_U64(get64(&f, leaf), clean ^ (1 << 7));
		CHECK_EQ(walk(&f, 0x1000, VIOMMU_WRITE, &r), 0);
		CHECK(!r.dirty_set);
		/* without HD the clean page is read-only */
		put64(&f, leaf, clean);
		set_hw(&f, true, false);
		expect_fault(&f, 0x1000, VIOMMU_WRITE, LPAE_FAULT_PERMISSION,
			     LPAE_WHY_PERM, 3);
		CHECK_U64(get64(&f, leaf), clean);
		/* AF and dirty in one update */
		set_hw(&f, true, true);
		put64(&f, leaf, clean & ~(1ull << 10));
		CHECK_EQ(walk(&f, 0x1000, VIOMMU_WRITE, &r), 0);
		CHECK(r.dirty_set && r.af_set);
		CHECK_U64(get64(&f, leaf), clean ^ (1 << 7));
	}
	/* stage 1: a table that forbids writes beats DBM */
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 48, 48) == 0);
	set_hw(&f, true, true);
	REQUIRE(map(&f, 0x1000, 0x2000, SZ_4K, RW | LPAE_PROT_DBM) == 0);
	leaf = leaf_gpa(&f, 0x1000);
	clean = get64(&f, leaf);
	top = get64(&f, f.root);
	put64(&f, f.root, top | (1ull << 62));
	expect_fault(&f, 0x1000, VIOMMU_WRITE, LPAE_FAULT_PERMISSION,
		     LPAE_WHY_PERM, 3);
	CHECK_U64(get64(&f, leaf), clean);
	fx_fini(&f);
}

/*
 * A hand-built stage-1 tree (4K, IAS 32: start level 1) in the read-only
 * region: a hardware update there is an external abort on the walk.
 */
TEST(hw_update_to_readonly_ram)
{
	struct lpae_result r;
	struct fx f;
	uint64_t *ro;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 32, 32) == 0);
	ro = (uint64_t *)f.ro;
	ro[0] = (RO_GPA + 0x1000) | 3;               /* L1[0] */
	ro[512] = (RO_GPA + 0x2000) | 3;             /* L2[0] */
	ro[1024 + 1] = 0x7000 | 3 | (1 << 6);        /* L3[1], AF clear */
	f.root = RO_GPA;
	expect_fault(&f, 0x1000, VIOMMU_READ, LPAE_FAULT_ACCESS, LPAE_WHY_AF,
		     3);
	set_hw(&f, true, false);
	CHECK_EQ(walk(&f, 0x1000, VIOMMU_READ, &r), -EFAULT);
	CHECK_EQ(r.fault, LPAE_FAULT_WALK_EABT);
	CHECK_EQ(r.why, LPAE_WHY_UPDATE);
	CHECK_EQ(r.level, 3);
	CHECK_U64(r.fault_addr, RO_GPA + 0x2008);
	CHECK_EQ(walk(&f, 0x1000, 0, &r), 0);
	CHECK_U64(r.oa, 0x7000);
	CHECK_U64(ro[1025], 0x7000 | 3 | (1 << 6));
	fx_fini(&f);
}

/* racer: a visitor that rewrites the leaf after the walker read it. */
struct racer {
	struct fx *f;
	int times;  /* rewrites left */
	int steps;
};

static int racer_step(void *opaque, const struct lpae_step *s)
{
	struct racer *rc = opaque;

	rc->steps++;
	if (s->level == 3 && rc->times > 0) {
		rc->times--;
		put64(rc->f, s->desc_addr, s->raw ^ (1ull << 55));
	}
	return 0;
}

TEST(hw_update_races_guest_write)
{
	struct lpae_visitor v = { .step = racer_step };
	struct lpae_result r;
	struct racer rc;
	struct fx f;
	uint64_t leaf, before;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 48, 48) == 0);
	set_hw(&f, true, false);
	REQUIRE(map(&f, 0x1000, 0x2000, SZ_4K, RW | LPAE_PROT_NO_AF) == 0);
	leaf = leaf_gpa(&f, 0x1000);
	before = get64(&f, leaf);
	/* one racing write: the CAS fails once, the walk is redone */
	rc = (struct racer){ .f = &f, .times = 1 };
	CHECK_EQ(lpae_walk(&f.cfg, f.mem, f.root, 0x1000, VIOMMU_READ, &v,
			   &rc, &r), 0);
	CHECK_EQ(rc.steps, 8);
	CHECK(r.af_set);
	CHECK_U64(get64(&f, leaf), before ^ (1ull << 55) ^ (1 << 10));
	/* a guest that never stops: bounded, -EAGAIN, nothing lost */
	put64(&f, leaf, before);
	rc = (struct racer){ .f = &f, .times = 1000 };
	CHECK_EQ(lpae_walk(&f.cfg, f.mem, f.root, 0x1000, VIOMMU_READ, &v,
			   &rc, &r), -EAGAIN);
	CHECK_EQ(rc.steps, 4 * LPAE_WALK_RETRIES);
	CHECK(!(get64(&f, leaf) & (1 << 10)));
	fx_fini(&f);
}

/* ---- contiguous hint -------------------------------------------------- */

TEST(contiguous_hint)
{
	struct lpae_result r;
	struct fx f;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 48, 48) == 0);
	REQUIRE(map(&f, 0x10000, 0x40000, SZ_64K,
		    RW | LPAE_PROT_CONTIG) == 0);
	for (uint64_t a = 0x10000; a < 0x20000; a += SZ_4K) {
		CHECK_EQ(walk(&f, a + 5, VIOMMU_READ, &r), 0);
		CHECK_U64(r.oa, a + 0x30000 + 5);
		CHECK_U64(r.contig_size, SZ_64K);
		CHECK(r.desc.contig);
	}
	/* unmapping one page breaks the group */
	CHECK_U64(unmap(&f, 0x12000, SZ_4K), SZ_4K);
	CHECK_EQ(walk(&f, 0x13000, VIOMMU_READ, &r), 0);
	CHECK_U64(r.contig_size, SZ_4K);
	CHECK(!r.desc.contig);
	CHECK_EQ(iova_to_phys(&f, 0x12000), 0);
	/* misaligned output: no hint */
	REQUIRE(map(&f, 0x100000, 0x41000, SZ_64K,
		    RW | LPAE_PROT_CONTIG) == 0);
	CHECK_EQ(walk(&f, 0x100000, VIOMMU_READ, &r), 0);
	CHECK_U64(r.contig_size, SZ_4K);
	/* level-2 group: 16 x 2M */
	REQUIRE(map(&f, 32 * SZ_32M, 2 * SZ_32M, SZ_32M,
		    RW | LPAE_PROT_CONTIG) == 0);
	CHECK_EQ(walk(&f, 32 * SZ_32M + SZ_2M * 3 + 7, VIOMMU_READ, &r), 0);
	CHECK_U64(r.size, SZ_2M);
	CHECK_U64(r.contig_size, SZ_32M);
	CHECK_U64(r.oa, 2 * SZ_32M + SZ_2M * 3 + 7);
	/* 16K granule: 128 x 16K at level 3 */
	REQUIRE(fx_cfg(&f, LPAE_STAGE2, 16384, 40, 48) == 0);
	REQUIRE(map(&f, SZ_2M, SZ_2M * 5, SZ_2M,
		    RW | LPAE_PROT_CONTIG) == 0);
	CHECK_EQ(walk(&f, SZ_2M + SZ_16K * 9, VIOMMU_READ, &r), 0);
	CHECK_U64(r.size, SZ_16K);
	CHECK_U64(r.contig_size, SZ_2M);
	fx_fini(&f);
}

/* ---- concatenated stage-2 start tables -------------------------------- */

struct rec {
	int n;
	struct lpae_step s[LPAE_MAX_LEVELS + 1];
	int stop_at;   /* level at which to stop, or -1 */
};

static int rec_step(void *opaque, const struct lpae_step *s)
{
	struct rec *rc = opaque;

	if (rc->n <= LPAE_MAX_LEVELS)
		rc->s[rc->n++] = *s;
	return (int)s->level == rc->stop_at ? -EINTR : 0;
}

TEST(concat_stage2_start_tables)
{
	struct lpae_visitor v = { .step = rec_step };
	struct lpae_result r;
	struct rec rc;
	struct fx f;
	uint64_t top;

	REQUIRE(fx_init(&f) == 0);
	/* 4K, IAS = OAS = 40: level 1 start, 2 tables */
	REQUIRE(fx_cfg(&f, LPAE_STAGE2, 4096, 40, 40) == 0);
	CHECK_EQ(f.cfg.sl, 1);
	CHECK_EQ(f.cfg.concat, 2);
	CHECK_U64(lpae_pgd_size(&f.cfg), 2 * SZ_4K);
	top = (1ull << 40) - SZ_4K;
	REQUIRE(map(&f, (1ull << 39) + SZ_4K, 0x3000, SZ_4K, RW) == 0);
	REQUIRE(map(&f, top, 0x4000, SZ_4K, RW) == 0);
	rc = (struct rec){ .stop_at = -1 };
	CHECK_EQ(lpae_walk(&f.cfg, f.mem, f.root, (1ull << 39) + SZ_4K + 1,
			   VIOMMU_READ, &v, &rc, &r), 0);
	CHECK_U64(r.oa, 0x3001);
	CHECK_EQ(rc.n, 3);
	CHECK_EQ(rc.s[0].level, 1);
	CHECK_EQ(rc.s[0].index, 512);
	CHECK_U64(rc.s[0].desc_addr, f.root + SZ_4K);
	rc = (struct rec){ .stop_at = -1 };
	CHECK_EQ(lpae_walk(&f.cfg, f.mem, f.root, top, VIOMMU_READ, &v, &rc,
			   &r), 0);
	CHECK_EQ(rc.s[0].index, 1023);
	CHECK_U64(rc.s[0].desc_addr, f.root + 2 * SZ_4K - 8);
	/* 16K, IAS = OAS = 40: level 2 start, 16 tables */
	REQUIRE(fx_cfg(&f, LPAE_STAGE2, 16384, 40, 40) == 0);
	CHECK_EQ(f.cfg.sl, 2);
	CHECK_EQ(f.cfg.concat, 16);
	top = (1ull << 40) - SZ_32M;
	REQUIRE(map(&f, top, SZ_32M, SZ_32M, RW) == 0);
	rc = (struct rec){ .stop_at = -1 };
	CHECK_EQ(lpae_walk(&f.cfg, f.mem, f.root, top + 9, VIOMMU_READ, &v,
			   &rc, &r), 0);
	CHECK_EQ(rc.n, 1);
	CHECK_EQ(rc.s[0].index, 16 * 2048 - 1);
	CHECK_U64(r.oa, SZ_32M + 9);
	CHECK_U64(r.size, SZ_32M);
	/* explicit start level (from SL0): optional concatenation */
	f.cfg = (struct lpae_cfg){ .stage = LPAE_STAGE2, .granule = 4096,
				   .ias = 40, .oas = 48, .start_level = 1 };
	REQUIRE(lpae_cfg_validate(&f.cfg) == 0);
	CHECK_EQ(f.cfg.concat, 2);
	REQUIRE(lpae_alloc_root(&f.cfg, &f.ops, &f.root) == 0);
	REQUIRE(map(&f, (1ull << 39) + SZ_1G, SZ_1G, SZ_1G, RW) == 0);
	CHECK_EQ(walk(&f, (1ull << 39) + SZ_1G + 5, VIOMMU_READ, &r), 0);
	CHECK_EQ(r.level, 1);
	CHECK_U64(r.oa, SZ_1G + 5);
	/* a root aligned to one table but not to the concatenated pair */
	f.root += SZ_4K;
	expect_fault(&f, 0, VIOMMU_READ, LPAE_FAULT_ADDR_SIZE,
		     LPAE_WHY_ROOT_ALIGN, 0);
	fx_fini(&f);
}

TEST(visitor_steps_and_stop)
{
	struct lpae_visitor v = { .step = rec_step };
	uint64_t iova = 0x0000123456789000ull;
	struct lpae_result r;
	struct rec rc = { .stop_at = -1 };
	struct fx f;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 48, 48) == 0);
	REQUIRE(map(&f, iova, 0x5000, SZ_4K, RW) == 0);
	CHECK_EQ(lpae_walk(&f.cfg, f.mem, f.root, iova, VIOMMU_READ, &v, &rc,
			   &r), 0);
	REQUIRE(rc.n == 4);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(rc.s[i].level, i);
		CHECK_EQ(rc.s[i].index, (iova >> (39 - 9 * i)) & 511);
		CHECK_EQ(rc.s[i].desc.type,
			 i < 3 ? LPAE_DESC_TABLE : LPAE_DESC_PAGE);
		if (i)
			CHECK_U64(rc.s[i].table, rc.s[i - 1].desc.addr);
	}
	CHECK_U64(rc.s[0].table, f.root);
	rc = (struct rec){ .stop_at = 2 };
	CHECK_EQ(lpae_walk(&f.cfg, f.mem, f.root, iova, VIOMMU_READ, &v, &rc,
			   &r), -EINTR);
	CHECK_EQ(rc.n, 3);
	fx_fini(&f);
}

/* ---- nested: descriptor addresses through a stage-2 hook --------------- */

#define DELTA 0x10000000ull /* IPA = PA - DELTA for guest RAM */

struct s2hook {
	int calls;
	unsigned int levels[8];
	uint64_t ipas[8];
	int fail_level;     /* refuse reads at this level, or -1 */
	bool refuse_write;
};

static int s2hook_fn(void *opaque, unsigned int level, uint64_t ipa,
		     unsigned int access, uint64_t *pa)
{
	struct s2hook *h = opaque;

	if (h->calls < 8) {
		h->levels[h->calls] = level;
		h->ipas[h->calls] = ipa;
	}
	h->calls++;
	if ((int)level == h->fail_level ||
	    (h->refuse_write && (access & VIOMMU_WRITE)))
		return -EPERM;
	*pa = ipa + DELTA;
	return 0;
}

/* zeroed_page() - a zeroed 4K page of RAM; its PA. */
static uint64_t zeroed_page(struct fx *f)
{
	uint64_t pa = 0;

	fx_alloc(f, SZ_4K, SZ_4K, &pa);
	memset(f->ram + (pa - RAM_GPA), 0, SZ_4K);
	return pa;
}

TEST(nested_table_addr_hook)
{
	struct lpae_visitor v = { .table_addr = s2hook_fn };
	struct lpae_result r;
	struct s2hook h = { .fail_level = -1 };
	uint64_t l1, l2, l3, iova = 0x40201000ull + 0x123;
	struct fx f;

	REQUIRE(fx_init(&f) == 0);
	/* stage 1, 4K, IAS 32, output (IPA) 40 bits: start level 1 */
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 32, 40) == 0);
	l1 = zeroed_page(&f);
	l2 = zeroed_page(&f);
	l3 = zeroed_page(&f);
	put64(&f, l1 + 8 * 1, (l2 - DELTA) | 3);
	put64(&f, l2 + 8 * 1, (l3 - DELTA) | 3);
	put64(&f, l3 + 8 * 1, 0x9000 | 3 | (3 << 6)); /* AF clear */
	f.root = l1 - DELTA;
	CHECK_EQ(lpae_walk(&f.cfg, f.mem, f.root, iova, 0, &v, &h, &r), 0);
	CHECK_U64(r.oa, 0x9123);
	CHECK_U64(r.desc_addr, l3 + 8);
	REQUIRE(h.calls == 3);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(h.levels[i], i + 1);
	CHECK_U64(h.ipas[0], l1 - DELTA + 8);
	CHECK_U64(h.ipas[1], l2 - DELTA + 8);
	CHECK_U64(h.ipas[2], l3 - DELTA + 8);
	/* without the hook the IPAs are not RAM */
	CHECK_EQ(walk(&f, iova, 0, &r), -EFAULT);
	CHECK_EQ(r.fault, LPAE_FAULT_WALK_EABT);
	/* the hook refuses a level */
	h = (struct s2hook){ .fail_level = 2 };
	CHECK_EQ(lpae_walk(&f.cfg, f.mem, f.root, iova, 0, &v, &h, &r),
		 -EFAULT);
	CHECK_EQ(r.fault, LPAE_FAULT_TABLE_HOOK);
	CHECK_EQ(r.level, 2);
	CHECK_U64(r.fault_addr, l2 - DELTA + 8);
	/* hardware AF update goes through the hook with write access */
	set_hw(&f, true, false);
	h = (struct s2hook){ .fail_level = -1, .refuse_write = true };
	CHECK_EQ(lpae_walk(&f.cfg, f.mem, f.root, iova, VIOMMU_READ, &v, &h,
			   &r), -EFAULT);
	CHECK_EQ(r.fault, LPAE_FAULT_TABLE_HOOK);
	CHECK_EQ(r.level, 3);
	CHECK(!(get64(&f, l3 + 8) & (1 << 10)));
	h = (struct s2hook){ .fail_level = -1 };
	CHECK_EQ(lpae_walk(&f.cfg, f.mem, f.root, iova, VIOMMU_READ, &v, &h,
			   &r), 0);
	CHECK(r.af_set);
	CHECK_EQ(h.calls, 4);
	CHECK(get64(&f, l3 + 8) & (1 << 10));
	fx_fini(&f);
}

/* ---- builder ---------------------------------------------------------- */

TEST(builder_argument_checks)
{
	uint64_t n = 1;
	struct fx f;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 40, 40) == 0);
	CHECK_EQ(map(&f, 0x1800, 0x2000, SZ_4K, RW), -EINVAL);
	CHECK_EQ(map(&f, 0x1000, 0x2800, SZ_4K, RW), -EINVAL);
	CHECK_EQ(map(&f, 0x1000, 0x2000, 0x800, RW), -EINVAL);
	CHECK_EQ(map(&f, 0x1000, 0x2000, 0, RW), -EINVAL);
	CHECK_EQ(map(&f, (1ull << 40) - SZ_4K, 0, 2 * SZ_4K, RW), -EINVAL);
	CHECK_EQ(map(&f, 1ull << 40, 0, SZ_4K, RW), -EINVAL);
	CHECK_EQ(map(&f, 0, 1ull << 40, SZ_4K, RW), -EINVAL);
	CHECK_EQ(map(&f, 0, 0, SZ_4K, 0), -EINVAL);
	CHECK_EQ(map(&f, 0, 0, SZ_4K, VIOMMU_EXEC), -EINVAL);
	CHECK_EQ(lpae_unmap(&f.cfg, &f.ops, f.root, 0x800, SZ_4K, &n),
		 -EINVAL);
	CHECK_EQ(lpae_unmap(&f.cfg, &f.ops, f.root, 0, SZ_4K, NULL), -EINVAL);
	CHECK_EQ(lpae_unmap(&f.cfg, &f.ops, f.root, 0, SZ_4K, &n), 0);
	CHECK_EQ(n, 0);
	f.ops.pgsizes = SZ_2M;
	CHECK_EQ(map(&f, 0, 0, SZ_2M, RW), -EINVAL);
	fx_fini(&f);
}

TEST(builder_overlap_rollback_and_block_choice)
{
	struct lpae_result r;
	struct fx f;
	long live;
	uint64_t n = 0;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 48, 48) == 0);
	REQUIRE(map(&f, 0x3000, 0x3000, SZ_4K, RW) == 0);
	/* an overlap in the middle leaves nothing of this call behind */
	CHECK_EQ(map(&f, 0x1000, 0x1000, 4 * SZ_4K, RW), -EEXIST);
	CHECK_EQ(iova_to_phys(&f, 0x1000), 0);
	CHECK_EQ(iova_to_phys(&f, 0x2000), 0);
	CHECK_EQ(iova_to_phys(&f, 0x4000), 0);
	CHECK_U64(iova_to_phys(&f, 0x3000), 0x3000);
	/* a block over a mapped page */
	CHECK_EQ(map(&f, 0, 0, SZ_2M, RW), -EEXIST);
	/* largest leaves that alignment allows: 2M + 1G + 2M + 4K */
	REQUIRE(map(&f, SZ_1G - SZ_2M, 0x80000000ull - SZ_2M,
		    SZ_1G + 2 * SZ_2M + SZ_4K, RW) == 0);
	CHECK_EQ(walk(&f, SZ_1G - SZ_2M, 0, &r), 0);
	CHECK_U64(r.size, SZ_2M);
	CHECK_EQ(walk(&f, SZ_1G + 5, 0, &r), 0);
	CHECK_U64(r.size, SZ_1G);
	CHECK_U64(r.oa, 0x80000000ull + 5);
	CHECK_EQ(walk(&f, 2 * SZ_1G + SZ_2M, 0, &r), 0);
	CHECK_U64(r.size, SZ_4K);
	/* misaligned PA forces pages */
	REQUIRE(map(&f, 8 * SZ_1G, 0x1000, SZ_2M, RW) == 0);
	CHECK_EQ(walk(&f, 8 * SZ_1G + SZ_1G / 2, 0, &r), -EFAULT);
	CHECK_EQ(walk(&f, 8 * SZ_1G + SZ_2M - 1, 0, &r), 0);
	CHECK_U64(r.size, SZ_4K);
	CHECK_U64(r.oa, 0x1000 + SZ_2M - 1);
	/* pgsizes restricts the leaves */
	f.ops.pgsizes = SZ_4K;
	REQUIRE(map(&f, 16 * SZ_1G, 0, SZ_2M, RW) == 0);
	CHECK_EQ(walk(&f, 16 * SZ_1G, 0, &r), 0);
	CHECK_U64(r.size, SZ_4K);
	f.ops.pgsizes = 0;
	/* an empty table left by unmap is replaced by a block */
	REQUIRE(map(&f, 32 * SZ_1G, 0, SZ_4K, RW) == 0);
	CHECK_U64(unmap(&f, 32 * SZ_1G, SZ_4K), SZ_4K);
	live = f.live;
	REQUIRE(map(&f, 32 * SZ_1G, 0, SZ_2M, RW) == 0);
	CHECK_EQ(f.live, live - 1);
	CHECK_EQ(walk(&f, 32 * SZ_1G, 0, &r), 0);
	CHECK_U64(r.size, SZ_2M);
	/* ... but a block is not put over a non-empty table */
	REQUIRE(unmap(&f, 32 * SZ_1G, SZ_2M) == SZ_2M);
	REQUIRE(map(&f, 32 * SZ_1G + SZ_1G / 2, 0, SZ_4K, RW) == 0);
	CHECK_EQ(map(&f, 32 * SZ_1G, 0, SZ_1G, RW), -EEXIST);
	CHECK_EQ(lpae_unmap(&f.cfg, &f.ops, f.root, 0, 1ull << 48, &n), 0);
	CHECK_U64(n, SZ_4K + SZ_1G + 2 * SZ_2M + SZ_4K + 2 * SZ_2M + SZ_4K);
	CHECK_EQ(f.live, 1);
	fx_fini(&f);
}

TEST(builder_unmap_rules)
{
	struct fx f;
	uint64_t n = 7;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(fx_cfg(&f, LPAE_STAGE2, 4096, 48, 48) == 0);
	REQUIRE(map(&f, 2 * SZ_2M, 0, SZ_2M, RW) == 0);
	/* splitting a block is refused and changes nothing */
	CHECK_EQ(lpae_unmap(&f.cfg, &f.ops, f.root, 2 * SZ_2M + SZ_4K, SZ_4K,
			    &n), -ERANGE);
	CHECK_EQ(lpae_unmap(&f.cfg, &f.ops, f.root, SZ_2M, SZ_2M + SZ_4K,
			    &n), -ERANGE);
	CHECK_U64(iova_to_phys(&f, 2 * SZ_2M + 5), 5);
	/* gaps are fine; tables covered whole are freed */
	REQUIRE(map(&f, 0x1000, 0x1000, SZ_4K, RW) == 0);
	REQUIRE(map(&f, 0x5000, 0x5000, SZ_4K, RW) == 0);
	CHECK_EQ(f.live, 4); /* root, L1, L2, L3 */
	CHECK_U64(unmap(&f, 0, 0x10000), 2 * SZ_4K);
	CHECK_EQ(f.live, 4);
	CHECK_U64(unmap(&f, 0, SZ_2M), 0);
	CHECK_EQ(f.live, 3);
	CHECK_U64(unmap(&f, 0, 512 * SZ_1G), SZ_2M);
	CHECK_EQ(f.live, 1);
	CHECK_U64(iova_to_phys(&f, 2 * SZ_2M + 5), 0);
	lpae_free_tables(&f.cfg, &f.ops, f.root);
	CHECK_EQ(f.live, 0);
	fx_fini(&f);
}

TEST(builder_allocation_failure)
{
	struct fx f;

	REQUIRE(fx_init(&f) == 0);
	REQUIRE(fx_cfg(&f, LPAE_STAGE1, 4096, 48, 48) == 0);
	REQUIRE(map(&f, 0x1000, 0x1000, SZ_4K, RW) == 0);
	/* a mapping that needs three new tables; the second fails */
	f.fail_at = f.allocs + 1;
	CHECK_EQ(map(&f, 1ull << 40, 0, SZ_4K, RW), -ENOMEM);
	CHECK_EQ(iova_to_phys(&f, 1ull << 40), 0);
	/* the first page of a two-page map goes in, the second's table fails */
	f.fail_at = f.allocs;
	CHECK_EQ(map(&f, SZ_2M - SZ_4K, 0, 2 * SZ_4K, RW), -ENOMEM);
	CHECK_EQ(iova_to_phys(&f, SZ_2M - SZ_4K), 0);
	CHECK_U64(iova_to_phys(&f, 0x1000), 0x1000);
	f.fail_at = -1;
	CHECK_EQ(map(&f, 1ull << 40, 0, SZ_4K, RW), 0);
	lpae_free_tables(&f.cfg, &f.ops, f.root);
	CHECK_EQ(f.live, 0);
	fx_fini(&f);
}

TEST_MAIN()
