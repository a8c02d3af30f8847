/*
 * mem.c - guest memory: region table, bounds-checked access, and the
 * read-side protection that lets the table be replaced under readers.
 *
 * The current region set is an immutable snapshot (struct mem_table):
 * pieces sorted by GPA for the look-up, plus the mapping each fd-backed
 * piece owns.  Readers load the table pointer and use it; a replacement
 * builds a new table, publishes it with one pointer store, and only then
 * retires the old one.
 *
 * Retirement uses a small SRCU-like scheme instead of a shared lock:
 *
 *   - two epochs; for each, STRIPES counter pairs {lock, unlock}, each on
 *     its own cache line, picked by the reader's CPU so concurrent readers
 *     rarely share a line;
 *   - a reader samples the epoch, increments lock[epoch][stripe] (full
 *     barrier) and returns a token naming that slot; unlock increments
 *     unlock[] in the same slot, even if the thread has moved CPU;
 *   - the writer publishes the new table, then for each epoch in turn
 *     flips the current epoch and waits until the retired epoch's unlock
 *     sum equals its lock sum.  After both epochs have drained, no read
 *     section that could have seen the old table is still open.
 *
 * The memory-ordering argument is spelled out at synchronize() below.
 * Counters are 64-bit and never reset, so they never wrap in practice.
 *
 * I/O regions (viommu_mem_set_layout()) are pieces with no host address
 * (hva NULL) and the internal flag MEM_F_IO; their callbacks live in the
 * table's per-piece struct mem_map.  The fd/hva fast path pays one OR per
 * piece walked to notice them: check_range() collects the pieces' flags,
 * and only a range that touches an I/O piece takes io_copy_range().
 */
#include "mem/mem_internal.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STRIPES 16u
#define CACHELINE 64u
#define POLL_NS 50000L

/* One reader slot: both counters share one cache line of their own. */
struct stripe {
	uint64_t lock;
	uint64_t unlock;
	uint8_t pad[CACHELINE - 2 * sizeof(uint64_t)];
};

/*
 * struct mem_map - what an fd-backed piece owns.  @base is NULL for
 * hva-backed pieces (nothing owned, @fd is -1).
 */
struct mem_map {
	void *base;
	size_t len;
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t offset;
	struct viommu_mem_io_region io; /* MEM_F_IO pieces */
};

/*
 * struct mem_table - one immutable region set.  @piece[] is sorted by gpa;
 * @map points just past it, @n entries, same order.
 */
struct mem_table {
	uint64_t id; /* the generation it was published as (unique per mem);
		      * first: mem_table_id() reads it inline */
	unsigned int n;
	uint64_t ram_bytes;
	struct mem_map *map;
	struct mem_piece piece[];
};

struct viommu_mem {
	/* Read-mostly: loaded by every reader.  First (mem_internal.h). */
	struct mem_published pub;
	uint64_t epoch;
	uint64_t generation;
	struct stripe (*cnt)[STRIPES]; /* [2][STRIPES], cache-line aligned */
	/* Writer side. */
	pthread_mutex_t lock; /* serialises set_regions */
	size_t page_size;
	struct viommu_log log;
	struct ratelimit rl; /* refusals a peer can trigger (region sets) */
	struct viommu_allocator alloc;
};

/* mem_table_id() and the inline mem_cached_ptr() rely on this layout. */
_Static_assert(offsetof(struct viommu_mem, pub) == 0, "pub first");
_Static_assert(offsetof(struct mem_table, id) == 0, "id first");

/* ---- read sections ---------------------------------------------------- */

/*
 * The stripe a thread's read sections use, cached per thread.  The stripe
 * only spreads readers over cache lines: the token names the slot a
 * section counted in and unlock counts in that same slot, and the writer
 * sums every stripe of an epoch (synchronize()), so a stale stripe after
 * the thread moved CPU costs at most a shared cache line, never a wrong
 * drain.  sched_getcpu() (a vDSO call, about 30 instructions) is asked
 * once every STRIPE_REFRESH sections instead of in every one, so a thread
 * that moved follows within that many sections.  Thread-local storage of
 * a hint, not state anyone can observe: initial-exec, so the access is
 * one load (no __tls_get_addr call) in the shared library too.
 */
#define STRIPE_REFRESH 64u

static __thread unsigned int stripe_hint
	__attribute__((tls_model("initial-exec")));
static __thread unsigned int stripe_left
	__attribute__((tls_model("initial-exec")));

/* stripe_refresh() - look the CPU up again; the stripe for the next ones. */
static unsigned int stripe_refresh(void) __attribute__((noinline, cold));

static unsigned int stripe_refresh(void)
{
	int cpu = sched_getcpu();

	stripe_hint = cpu < 0 ? 0 : (unsigned int)cpu & (STRIPES - 1);
	stripe_left = STRIPE_REFRESH - 1;
	return stripe_hint;
}

/* reader_stripe() - the counter stripe for the calling thread. */
static inline unsigned int reader_stripe(void)
{
	if (unlikely(stripe_left == 0))
		return stripe_refresh();
	stripe_left--;
	return stripe_hint;
}

VIOMMU_EXPORT unsigned int viommu_mem_read_lock(struct viommu_mem *mem)
{
	unsigned int idx, s;

	if (!mem)
		return 0;
	/*
	 * Relaxed: which epoch we pick only matters for the writer's forward
	 * progress; safety comes from the writer draining both epochs.
	 */
	idx = (unsigned int)READ_ONCE(mem->epoch) & 1;
	s = reader_stripe();
	/*
	 * Barrier (reader side, pairs with the SC fence in synchronize()):
	 * seq_cst RMW, a full barrier on x86 (lock xadd).  Together with the
	 * seq_cst table load in current_table() it guarantees that either
	 * the writer's scan sees this increment or this section sees the
	 * newly published table.
	 */
	__atomic_fetch_add(&mem->cnt[idx][s].lock, 1, __ATOMIC_SEQ_CST);
	return idx | s << 1;
}

VIOMMU_EXPORT void viommu_mem_read_unlock(struct viommu_mem *mem,
					  unsigned int token)
{
	unsigned int idx = token & 1, s = (token >> 1) & (STRIPES - 1);

	if (!mem)
		return;
	/*
	 * Barrier: seq_cst (hence release) RMW, so every access of the
	 * section is ordered before the writer's acquire load that observes
	 * this increment, and thus before any munmap that follows it.
	 */
	__atomic_fetch_add(&mem->cnt[idx][s].unlock, 1, __ATOMIC_SEQ_CST);
}

/*
 * current_table() - the published table (NULL: no RAM).  Barrier: seq_cst
 * load, a plain load on x86; it takes part in the store-buffering pairing
 * with the writer described at synchronize(), and its acquire part makes
 * the table's contents visible.
 */
static struct mem_table *current_table(struct viommu_mem *mem)
{
	return __atomic_load_n(&mem->pub.table, __ATOMIC_SEQ_CST);
}

/*
 * epoch_drained() - whether every read section counted in epoch @idx has
 * ended.  Unlock sums first, then lock sums: a reader whose unlock we see
 * has its lock seen too, so equal sums mean no counted section is open.
 */
static bool epoch_drained(struct viommu_mem *mem, unsigned int idx)
{
	uint64_t unlocks = 0, locks = 0;
	unsigned int s;

	for (s = 0; s < STRIPES; s++)
		/*
		 * Barrier: acquire pairs with the reader's release in
		 * read_unlock(): the section's accesses, and its earlier
		 * lock increment, happen before what follows.
		 */
		unlocks += __atomic_load_n(&mem->cnt[idx][s].unlock,
					   __ATOMIC_ACQUIRE);
	/* Barrier: full fence, the lock sums are read after the unlocks. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (s = 0; s < STRIPES; s++)
		locks += READ_ONCE(mem->cnt[idx][s].lock);
	return unlocks == locks;
}

/* wait_drained() - poll epoch @idx until drained, sleeping between polls. */
static void wait_drained(struct viommu_mem *mem, unsigned int idx)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = POLL_NS };

	while (!epoch_drained(mem, idx))
		nanosleep(&ts, NULL);
}

/*
 * synchronize() - wait for every read section that may use the table that
 * was current before the last publish.  Called with the writer mutex held,
 * after the new table has been stored.
 *
 * Ordering argument.  Writer: W = store new table; X = SC fence; scans of
 * both epochs.  Reader: L = seq_cst increment of lock[i][s]; B = seq_cst
 * load of the table; ...; U = release increment of unlock[i][s].
 * Suppose a scan of epoch i after X reads lock[i][s] without L's effect.
 * Then X precedes L in the seq_cst order S, L precedes B, so X precedes B
 * and B (a seq_cst load) must see W or later: the reader uses the new
 * table.  Otherwise every scan of epoch i after X counts L, and the sums of
 * epoch i can only be equal once U has been observed, i.e. once the
 * section has ended (see epoch_drained()).  A reader may hold either epoch
 * (it may have sampled the epoch before an earlier flip), so both epochs
 * are drained.  Flipping before each drain keeps new readers off the epoch
 * being drained, so the wait ends once the existing sections end.
 */
static void synchronize(struct viommu_mem *mem)
{
	unsigned int round, old;

	/* Barrier: X above - the publish is ordered before the scans. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (round = 0; round < 2; round++) {
		/*
		 * Barrier: seq_cst RMW; the flip is ordered before the scan
		 * of the epoch it retires, so readers that start after it
		 * count in the other epoch.
		 */
		old = (unsigned int)__atomic_fetch_add(&mem->epoch, 1,
						       __ATOMIC_SEQ_CST) & 1;
		wait_drained(mem, old);
	}
}

/* ---- look-up ---------------------------------------------------------- */

/* pieces_upto() - number of pieces whose start is <= @gpa. */
static unsigned int pieces_upto(const struct mem_table *t, uint64_t gpa)
{
	unsigned int lo = 0, hi = t->n;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (t->piece[mid].gpa <= gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* find_index() - index of the piece holding @gpa in @t, or -1. */
static int find_index(const struct mem_table *t, uint64_t gpa)
{
	unsigned int i;

	if (!t)
		return -1;
	i = pieces_upto(t, gpa);
	if (i == 0 || gpa - t->piece[i - 1].gpa >= t->piece[i - 1].size)
		return -1;
	return (int)i - 1;
}

int mem_find(struct viommu_mem *mem, uint64_t gpa, struct mem_piece *out)
{
	const struct mem_table *t = current_table(mem);
	int i = find_index(t, gpa);

	if (i < 0)
		return -EFAULT;
	*out = t->piece[i];
	return 0;
}

uint64_t mem_next_ram(struct viommu_mem *mem, uint64_t gpa)
{
	const struct mem_table *t = current_table(mem);
	unsigned int i;

	if (!t)
		return UINT64_MAX;
	i = pieces_upto(t, gpa);
	return i < t->n ? t->piece[i].gpa : UINT64_MAX;
}

/* piece_last() - the last GPA of @p (inclusive, never wraps). */
static uint64_t piece_last(const struct mem_piece *p)
{
	return p->gpa + (p->size - 1);
}

/*
 * check_range() - whether [gpa, last] is RAM all the way in @t, walking
 * adjacent pieces from the one holding @gpa.  *@first receives that piece.
 * Return: 0; -EFAULT (hole or not RAM); -EPERM (@write and a read-only
 * piece).  -EFAULT wins over -EPERM.
 */
static int check_range(const struct mem_table *t, uint64_t gpa,
		       uint64_t last, bool write, unsigned int *first,
		       uint32_t *flags)
{
	int i = find_index(t, gpa), err = 0;
	uint32_t any = 0;
	unsigned int j;

	if (i < 0)
		return -EFAULT;
	*first = (unsigned int)i;
	for (j = (unsigned int)i;; j++) {
		const struct mem_piece *p = &t->piece[j];

		any |= p->flags;
		if (write && (p->flags & VIOMMU_MEM_F_READONLY))
			err = -EPERM;
		if (piece_last(p) >= last) {
			*flags = any;
			return err;
		}
		if (j + 1 >= t->n || t->piece[j + 1].gpa != piece_last(p) + 1)
			return -EFAULT;
	}
}

/*
 * copy_range() - copy between @buf and [gpa, last], already checked by
 * check_range() to lie in pieces @first, @first + 1, ...
 */
static void copy_range(const struct mem_table *t, unsigned int first,
		       uint64_t gpa, uint64_t last, uint8_t *buf, bool write)
{
	const struct mem_piece *p = &t->piece[first];

	for (;; p++) {
		uint64_t end = MIN(piece_last(p), last);
		size_t chunk = (size_t)(end - gpa) + 1;
		uint8_t *hva = p->hva + (gpa - p->gpa);

		if (write)
			memcpy(hva, buf, chunk);
		else
			memcpy(buf, hva, chunk);
		if (end == last)
			return;
		buf += chunk;
		gpa = end + 1;
	}
}

/*
 * io_copy_range() - copy_range() for a range that touches I/O pieces: host
 * pieces by memcpy, I/O pieces through their callbacks.
 * Return: 0 or the first failing callback's negative errno.
 */
static int io_copy_range(const struct mem_table *t, unsigned int first,
			 uint64_t gpa, uint64_t last, uint8_t *buf,
			 bool write)
{
	unsigned int i = first;

	for (;; i++) {
		const struct mem_piece *p = &t->piece[i];
		const struct viommu_mem_io_region *io = &t->map[i].io;
		uint64_t end = MIN(piece_last(p), last);
		size_t chunk = (size_t)(end - gpa) + 1;
		int err = 0;

		if (!(p->flags & MEM_F_IO))
			memcpy(write ? p->hva + (gpa - p->gpa) : buf,
			       write ? buf : p->hva + (gpa - p->gpa), chunk);
		else if (write)
			err = io->write(io->opaque, gpa, buf, chunk);
		else
			err = io->read(io->opaque, gpa, buf, chunk);
		if (err < 0)
			return err;
		if (end == last)
			return 0;
		buf += chunk;
		gpa = end + 1;
	}
}

int mem_access_in(struct viommu_mem *mem, uint64_t gpa, void *buf,
		  size_t len, bool write)
{
	const struct mem_table *t;
	unsigned int first = 0;
	uint32_t flags = 0;
	uint64_t last;
	int err;

	if (!mem)
		return -EINVAL;
	if (len == 0)
		return 0;
	if (!buf)
		return -EINVAL;
	if (!range_last(gpa, len, &last))
		return -EFAULT;
	t = current_table(mem);
	err = check_range(t, gpa, last, write, &first, &flags);
	if (err)
		return err;
	if (__builtin_expect(!(flags & MEM_F_IO), 1))
		copy_range(t, first, gpa, last, buf, write);
	else
		err = io_copy_range(t, first, gpa, last, buf, write);
	return err;
}

int mem_check_in(struct viommu_mem *mem, uint64_t gpa, uint64_t len,
		 bool write)
{
	unsigned int first = 0;
	uint32_t flags = 0;
	uint64_t last;

	if (len == 0)
		return 0;
	if (!range_last(gpa, len, &last))
		return -EFAULT;
	return check_range(current_table(mem), gpa, last, write, &first,
			   &flags);
}

/* access_range() - the body of viommu_mem_read() and viommu_mem_write(). */
static int access_range(struct viommu_mem *mem, uint64_t gpa, void *buf,
			size_t len, bool write)
{
	unsigned int token;
	int err;

	if (!mem)
		return -EINVAL;
	token = viommu_mem_read_lock(mem);
	err = mem_access_in(mem, gpa, buf, len, write);
	viommu_mem_read_unlock(mem, token);
	return err;
}

VIOMMU_EXPORT int viommu_mem_read(struct viommu_mem *mem, uint64_t gpa,
				  void *buf, size_t len)
{
	return access_range(mem, gpa, buf, len, false);
}

VIOMMU_EXPORT int viommu_mem_write(struct viommu_mem *mem, uint64_t gpa,
				   const void *buf, size_t len)
{
	return access_range(mem, gpa, (void *)buf, len, true);
}

int mem_cached_fill(struct viommu_mem *mem, struct mem_cache *c, uint64_t gpa,
		    size_t len, bool write, void **hva)
{
	const struct mem_table *t = current_table(mem);
	uint64_t off = gpa - c->piece.gpa;
	int i;

	if (!t)
		return -EFAULT;
	if (t->id != c->table_id || off >= c->piece.size) {
		i = find_index(t, gpa);
		if (i < 0)
			return -EFAULT;
		c->table_id = t->id;
		c->piece = t->piece[i];
		off = gpa - c->piece.gpa;
	}
	if (len > c->piece.size - off)
		return -E2BIG;
	if (c->piece.flags & (VIOMMU_MEM_F_READONLY | MEM_F_IO)) {
		if (c->piece.flags & MEM_F_IO)
			return -EREMOTE;
		if (write)
			return -EPERM;
	}
	*hva = c->piece.hva + off;
	return 0;
}

int mem_ptr_in(struct viommu_mem *mem, uint64_t gpa, size_t len,
	       unsigned int access, void **hva, size_t *contig)
{
	struct mem_piece p;
	int err;

	if (!mem || !hva || !contig || len == 0 || access == 0 ||
	    (access & ~(VIOMMU_READ | VIOMMU_WRITE)))
		return -EINVAL;
	err = mem_find(mem, gpa, &p);
	if (!err && (access & VIOMMU_WRITE) &&
	    (p.flags & VIOMMU_MEM_F_READONLY))
		err = -EPERM;
	if (!err && (p.flags & MEM_F_IO))
		err = -EREMOTE;
	if (!err) {
		*hva = p.hva + (gpa - p.gpa);
		*contig = (size_t)MIN((uint64_t)len, piece_last(&p) - gpa + 1);
	}
	return err;
}

VIOMMU_EXPORT int viommu_mem_ptr(struct viommu_mem *mem, uint64_t gpa,
				 size_t len, unsigned int access, void **hva,
				 size_t *contig)
{
	unsigned int token;
	int err;

	if (!mem)
		return -EINVAL;
	token = viommu_mem_read_lock(mem);
	err = mem_ptr_in(mem, gpa, len, access, hva, contig);
	viommu_mem_read_unlock(mem, token);
	return err;
}

VIOMMU_EXPORT uint64_t viommu_mem_generation(const struct viommu_mem *mem)
{
	/* Barrier: acquire pairs with the release bump in set_regions. */
	return mem ? __atomic_load_n(&mem->generation, __ATOMIC_ACQUIRE) : 0;
}

VIOMMU_EXPORT uint64_t viommu_mem_ram_size(struct viommu_mem *mem)
{
	const struct mem_table *t;
	unsigned int token;
	uint64_t bytes;

	if (!mem)
		return 0;
	token = viommu_mem_read_lock(mem);
	t = current_table(mem);
	bytes = t ? t->ram_bytes : 0;
	viommu_mem_read_unlock(mem, token);
	return bytes;
}

/* ---- validation ------------------------------------------------------- */

/*
 * check_region() - the checks that need no other region and no syscall.
 * Return: NULL if @r is acceptable, else the reason.
 */
static const char *check_region(const struct viommu_mem *mem,
				const struct viommu_mem_region *r,
				const struct viommu_mem_io_region *io)
{
	uint64_t last;

	if (r->size == 0)
		return "zero size";
	if (!range_last(r->gpa, r->size, &last))
		return "gpa range wraps";
	if (r->flags & ~(VIOMMU_MEM_F_READONLY | VIOMMU_MEM_F_TRUST_FD))
		return "unknown flags";
	if (io && !io->read)
		return "I/O region without read";
	if (io && !io->write && !(io->flags & VIOMMU_MEM_F_READONLY))
		return "writable I/O region without write";
	if (io)
		return NULL;
	if (r->fd < 0 && !r->hva)
		return "neither fd nor hva";
	if (r->fd >= 0 && r->hva)
		return "both fd and hva";
	if (r->fd < 0) {
		if (r->size - 1 > (uint64_t)(UINTPTR_MAX - (uintptr_t)r->hva))
			return "hva range wraps";
		return NULL;
	}
	if (r->fd_offset & (mem->page_size - 1))
		return "fd_offset not page-aligned";
	if (!range_last(r->fd_offset, r->size, &last) || last > INT64_MAX ||
	    r->size > SIZE_MAX - mem->page_size)
		return "fd range too large";
	return NULL;
}

/* sort_regions() - fill @order with region indices sorted by gpa. */
static void sort_regions(const struct viommu_mem_region *r, unsigned int n,
			 uint8_t *order)
{
	unsigned int i, j;

	for (i = 0; i < n; i++) {
		uint8_t k = (uint8_t)i;

		for (j = i; j > 0 && r[order[j - 1]].gpa > r[k].gpa; j--)
			order[j] = order[j - 1];
		order[j] = k;
	}
}

/*
 * validate() - check every region and their overlap; fill @order with the
 * gpa order.  Return: 0 or -EINVAL (reason logged).
 */
static int validate(struct viommu_mem *mem,
		    const struct viommu_mem_region *r,
		    const struct viommu_mem_io_region *const *io, unsigned int n,
		    uint8_t *order)
{
	const char *why;
	unsigned int i;

	for (i = 0; i < n; i++) {
		why = check_region(mem, &r[i], io[i]);
		if (why) {
			rl_warn(&mem->rl, &mem->log,
				"mem: region %u refused: %s", i, why);
			return -EINVAL;
		}
	}
	sort_regions(r, n, order);
	for (i = 1; i < n; i++) {
		const struct viommu_mem_region *a = &r[order[i - 1]];

		if (a->gpa + (a->size - 1) >= r[order[i]].gpa) {
			rl_warn(&mem->rl, &mem->log,
				"mem: regions %u and %u overlap (gpa 0x%llx)",
				order[i - 1], order[i],
				(unsigned long long)r[order[i]].gpa);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- building a table ------------------------------------------------- */

/* table_alloc() - an empty table with room for @n pieces and maps. */
static struct mem_table *table_alloc(struct viommu_mem *mem, unsigned int n)
{
	struct mem_table *t;

	t = xzalloc(&mem->alloc, sizeof(*t) + n * sizeof(t->piece[0]) +
					 n * sizeof(*t->map));
	if (!t)
		return NULL;
	t->n = n;
	t->map = (struct mem_map *)&t->piece[n];
	return t;
}

/* map_release() - unmap @m and close its fd (no-op for hva pieces). */
static void map_release(struct mem_map *m)
{
	if (!m->base)
		return;
	munmap(m->base, m->len);
	close(m->fd);
	m->base = NULL;
	m->fd = -1;
}

/*
 * find_reusable() - index of a mapping of @old with the same file, offset,
 * size and flags as @r that no new piece has claimed yet, or -1.
 */
static int find_reusable(const struct mem_table *old, const bool *claimed,
			 const struct stat *st,
			 const struct viommu_mem_region *r)
{
	unsigned int j;

	for (j = 0; old && j < old->n; j++) {
		const struct mem_map *m = &old->map[j];

		if (m->base && !claimed[j] && m->dev == st->st_dev &&
		    m->ino == st->st_ino && m->offset == r->fd_offset &&
		    old->piece[j].size == r->size &&
		    old->piece[j].flags == r->flags)
			return (int)j;
	}
	return -1;
}

/*
 * map_new() - mmap @r (described by @st) and dup its fd into @m.
 * Return: 0 or a negative errno (nothing left behind).
 */
static int map_new(struct viommu_mem *mem, const struct viommu_mem_region *r,
		   const struct stat *st, struct mem_map *m)
{
	int prot = PROT_READ, err;
	size_t len;
	void *base;
	int fd;

	if (!(r->flags & VIOMMU_MEM_F_READONLY))
		prot |= PROT_WRITE;
	len = (size_t)((r->size + mem->page_size - 1) & ~(mem->page_size - 1));
	base = mmap(NULL, len, prot, MAP_SHARED, r->fd, (off_t)r->fd_offset);
	if (base == MAP_FAILED)
		return -errno;
	fd = fcntl(r->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		munmap(base, len);
		return err;
	}
	*m = (struct mem_map){ .base = base, .len = len, .fd = fd,
			       .dev = st->st_dev, .ino = st->st_ino,
			       .offset = r->fd_offset };
	return 0;
}

/*
 * check_seals() - a regular file must not be shrinkable by its other
 * holders (mem.h, struct viommu_mem_region): F_SEAL_SHRINK, unless the
 * caller trusts the fd.  Other kinds of fd (devices) cannot be truncated.
 * Return: 0; -EPERM (logged).
 */
static int check_seals(struct viommu_mem *mem,
		       const struct viommu_mem_region *r,
		       const struct stat *st)
{
	int seals;

	if (!S_ISREG(st->st_mode) || (r->flags & VIOMMU_MEM_F_TRUST_FD))
		return 0;
	seals = fcntl(r->fd, F_GET_SEALS);
	if (seals >= 0 && (seals & F_SEAL_SHRINK))
		return 0;
	rl_warn(&mem->rl, &mem->log, "mem: fd %d refused: %s (its other "
		"holders could truncate it under the mapping; seal it, or "
		"mark the region VIOMMU_MEM_F_TRUST_FD)", r->fd,
		seals < 0 ? "a file that cannot be sealed" :
			    "not sealed with F_SEAL_SHRINK");
	return -EPERM;
}

/*
 * fill_fd_piece() - give piece @i of @t the memory of fd region @r:
 * an unclaimed identical mapping of @old, else a new mapping (@fresh set).
 * Return: 0 or a negative errno, with the reason logged.
 */
static int fill_fd_piece(struct viommu_mem *mem, struct mem_table *t,
			 unsigned int i, const struct viommu_mem_region *r,
			 const struct mem_table *old, bool *claimed,
			 bool *fresh)
{
	struct stat st;
	int j, err;

	if (fstat(r->fd, &st) < 0) {
		err = -errno;
		rl_warn(&mem->rl, &mem->log, "mem: fd %d refused: fstat: %s",
			r->fd, strerror(-err));
		return err;
	}
	if (S_ISREG(st.st_mode) &&
	    r->fd_offset + r->size > (uint64_t)st.st_size) {
		rl_warn(&mem->rl, &mem->log, "mem: fd %d: offset 0x%llx + "
			"size 0x%llx past end of file", r->fd,
			(unsigned long long)r->fd_offset,
			(unsigned long long)r->size);
		return -EINVAL;
	}
	err = check_seals(mem, r, &st);
	if (err)
		return err;
	j = find_reusable(old, claimed, &st, r);
	if (j >= 0) {
		claimed[j] = true;
		t->map[i] = old->map[j];
		t->piece[i].hva = old->piece[j].hva;
		return 0;
	}
	err = map_new(mem, r, &st, &t->map[i]);
	if (err) {
		rl_warn(&mem->rl, &mem->log, "mem: fd %d refused: map: %s",
			r->fd, strerror(-err));
		return err;
	}
	*fresh = true;
	t->piece[i].hva = t->map[i].base;
	return 0;
}

/*
 * build_table() - a table for @regions in @order, reusing mappings of
 * @old (marked in @claimed).  On failure every new mapping is undone.
 * Return: 0 with *@out (NULL when @n is 0); negative errno.
 */
static int build_table(struct viommu_mem *mem,
		       const struct viommu_mem_region *regions,
		       const struct viommu_mem_io_region *const *io,
		       unsigned int n, const uint8_t *order,
		       const struct mem_table *old, bool *claimed,
		       struct mem_table **out)
{
	bool fresh[VIOMMU_MEM_MAX_REGIONS] = { false };
	struct mem_table *t;
	unsigned int i;
	int err = 0;

	*out = NULL;
	if (n == 0)
		return 0;
	t = table_alloc(mem, n);
	if (!t) {
		rl_warn(&mem->rl, &mem->log,
			"mem: region set refused: out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		const struct viommu_mem_region *r = &regions[order[i]];

		t->piece[i] = (struct mem_piece){ .gpa = r->gpa,
						  .size = r->size,
						  .hva = r->hva,
						  .flags = r->flags };
		t->map[i].fd = -1;
		t->ram_bytes += r->size;
		if (io[order[i]]) {
			t->piece[i].flags |= MEM_F_IO;
			t->piece[i].hva = NULL;
			t->map[i].io = *io[order[i]];
		} else if (r->fd >= 0) {
			err = fill_fd_piece(mem, t, i, r, old, claimed,
					    &fresh[i]);
			if (err)
				goto fail;
		}
	}
	*out = t;
	return 0;
fail:
	while (i-- > 0)
		if (fresh[i])
			map_release(&t->map[i]);
	xfree(&mem->alloc, t);
	return err;
}

/* ---- set / create / destroy ------------------------------------------- */

/*
 * retire() - after the grace period: release the mappings of @old no new
 * piece claimed, and free @old.
 */
static void retire(struct viommu_mem *mem, struct mem_table *old,
		   const bool *claimed)
{
	unsigned int j;

	if (!old)
		return;
	for (j = 0; j < old->n; j++)
		if (!claimed[j])
			map_release(&old->map[j]);
	xfree(&mem->alloc, old);
}

/*
 * set_all() - install @regions (@n entries; entry i is an I/O region when
 * @io[i] is not NULL, described by it).
 */
static int set_all(struct viommu_mem *mem,
		   const struct viommu_mem_region *regions,
		   const struct viommu_mem_io_region *const *io, unsigned int n)
{
	bool claimed[VIOMMU_MEM_MAX_REGIONS] = { false };
	uint8_t order[VIOMMU_MEM_MAX_REGIONS];
	struct mem_table *old, *t;
	int err;

	err = validate(mem, regions, io, n, order);
	if (err)
		return err;
	pthread_mutex_lock(&mem->lock);
	old = mem->pub.table; /* only writers store it, and we hold the mutex */
	err = build_table(mem, regions, io, n, order, old, claimed, &t);
	if (err)
		goto out;
	if (t)
		t->id = mem->generation + 1;
	/*
	 * Barrier: release - the table's contents are visible before the
	 * pointer to it.  Then the generation, also release, so a consumer
	 * that sees the new generation also sees the new table.
	 */
	STORE_RELEASE(mem->pub.table, t);
	STORE_RELEASE(mem->generation, mem->generation + 1);
	synchronize(mem);
	retire(mem, old, claimed);
out:
	pthread_mutex_unlock(&mem->lock);
	return err;
}

/* too_many() - log and refuse a set of @n regions.  -EINVAL. */
static int too_many(struct viommu_mem *mem, unsigned int n, bool no_array)
{
	rl_warn(&mem->rl, &mem->log, "mem: region set refused: %u regions%s",
		n, no_array ? " but no array" : ", too many");
	return -EINVAL;
}

VIOMMU_EXPORT int viommu_mem_set_regions(struct viommu_mem *mem,
					 const struct viommu_mem_region *regions,
					 unsigned int n)
{
	static const struct viommu_mem_io_region *const none[
		VIOMMU_MEM_MAX_REGIONS];

	if (!mem)
		return -EINVAL;
	if (n > VIOMMU_MEM_MAX_REGIONS || (n && !regions))
		return too_many(mem, n, n && !regions);
	return set_all(mem, regions, none, n);
}

/* layout_size_ok() - the caller's @size bytes of @l, beyond ours zero. */
static bool layout_size_ok(const struct viommu_mem_layout *l)
{
	for (size_t i = sizeof(*l); i < l->size; i++)
		if (((const uint8_t *)l)[i])
			return false;
	return l->size != 0;
}

VIOMMU_EXPORT int viommu_mem_set_layout(struct viommu_mem *mem,
					const struct viommu_mem_layout *user)
{
	const struct viommu_mem_io_region *io[VIOMMU_MEM_MAX_REGIONS];
	struct viommu_mem_region r[VIOMMU_MEM_MAX_REGIONS];
	struct viommu_mem_layout l = { 0 };
	unsigned int i;

	if (!mem || !user || !layout_size_ok(user))
		return -EINVAL;
	memcpy(&l, user, MIN((size_t)user->size, sizeof(l)));
	if (l.n > VIOMMU_MEM_MAX_REGIONS ||
	    l.nio > VIOMMU_MEM_MAX_REGIONS - l.n ||
	    (l.n && !l.regions) || (l.nio && !l.io))
		return too_many(mem, l.n + l.nio, (l.n && !l.regions) ||
						  (l.nio && !l.io));
	for (i = 0; i < l.n; i++) {
		r[i] = l.regions[i];
		io[i] = NULL;
	}
	for (i = 0; i < l.nio; i++) {
		r[l.n + i] = (struct viommu_mem_region){
			.gpa = l.io[i].gpa, .size = l.io[i].size, .fd = -1,
			.flags = l.io[i].flags,
		};
		io[l.n + i] = &l.io[i];
	}
	return set_all(mem, r, io, l.n + l.nio);
}

/* The layout a mem config @size of 0 stands for: the first sized one. */
#define MEM_CONFIG_SIZE_V1 \
	(offsetof(struct viommu_mem_config, allocator) + \
	 sizeof(struct viommu_allocator))

VIOMMU_EXPORT int viommu_mem_create(const struct viommu_mem_config *user,
				    struct viommu_mem **out)
{
	struct viommu_mem_config c = { 0 }, *cfg = &c;
	struct viommu_allocator alloc;
	struct viommu_mem *mem;
	uintptr_t cnt;
	long page;

	if (!out)
		return -EINVAL;
	/* NULL @user: every default; else only the caller's @size is read */
	if (user && !sized_in(&c, sizeof(c), user,
			      user->size ? user->size : MEM_CONFIG_SIZE_V1))
		return -EINVAL;
	alloc = cfg->allocator;
	/* The counters follow the object, aligned up to a cache line. */
	mem = xzalloc(&alloc, sizeof(*mem) + CACHELINE +
				      2 * STRIPES * sizeof(struct stripe));
	if (!mem)
		return -ENOMEM;
	if (pthread_mutex_init(&mem->lock, NULL)) {
		xfree(&alloc, mem);
		return -ENOMEM;
	}
	cnt = (uintptr_t)(mem + 1) + CACHELINE - 1;
	cnt &= ~(uintptr_t)(CACHELINE - 1);
	mem->cnt = (struct stripe (*)[STRIPES])cnt;
	page = sysconf(_SC_PAGESIZE);
	mem->page_size = page > 0 ? (size_t)page : 4096;
	mem->alloc = alloc;
	mem->log = cfg->log;
	*out = mem;
	return 0;
}

VIOMMU_EXPORT void viommu_mem_destroy(struct viommu_mem *mem)
{
	bool none[VIOMMU_MEM_MAX_REGIONS] = { false };
	struct viommu_allocator alloc;

	if (!mem)
		return;
	retire(mem, mem->pub.table, none);
	pthread_mutex_destroy(&mem->lock);
	alloc = mem->alloc;
	xfree(&alloc, mem);
}
