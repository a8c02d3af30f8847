/*
 * mem.h - guest memory: the only way viommu touches guest RAM.
 *
 * A struct viommu_mem holds a set of guest-RAM regions, each a range of
 * guest-physical addresses (GPAs) backed by a file descriptor that the
 * layer mmaps (the way QEMU hands RAM to an out-of-process device), by
 * memory the embedder already has in its own address space, or by two
 * callbacks that copy guest-physical ranges in and out (I/O regions, set
 * with viommu_mem_set_layout(): RAM the VMM does not share, reached e.g.
 * through vfio-user DMA_READ/DMA_WRITE messages).  Every access is by GPA
 * and length; ranges are overflow-checked and never cross the end of a
 * region, so no address or length a guest can produce reaches host memory
 * outside guest RAM.
 *
 * I/O regions have no host address: viommu_mem_read() and
 * viommu_mem_write() (and everything built on them: virtqueues, the core's
 * viommu_dma_read/write, the DMA engine) reach them through their
 * callbacks, while viommu_mem_ptr() on them fails with -EREMOTE and a
 * translation into them has a NULL host pointer; callers that want a host
 * pointer fall back to viommu_mem_read/write on that errno.  Atomic
 * accesses (a page-table walker's compare-and-swap) need a host pointer and
 * fail there.
 *
 * The region set can be replaced while other threads read (QEMU re-sends its
 * memory map whenever it changes).  Replacement publishes the new set at
 * once and then waits for every read section that may still use the old one
 * before unmapping anything, so a reader never touches unmapped memory:
 *
 *   - viommu_mem_read(), viommu_mem_write() and viommu_mem_ptr() are safe
 *     against a concurrent replacement on their own (they run in a read
 *     section internally);
 *   - a host pointer returned by viommu_mem_ptr() (or by the core's
 *     translate) stays valid after the call only until the region set is
 *     next replaced; a thread that uses such a pointer while another thread
 *     may replace the set brackets the lookup and the use with
 *     viommu_mem_read_lock() / viommu_mem_read_unlock().
 *
 * Thread safety: every function may be called from any thread, except that
 * viommu_mem_destroy() must not race any other call on the same object, and
 * viommu_mem_set_regions() must not be called from inside a read section
 * (it waits for read sections to end).
 */
#ifndef VIOMMU_MEM_H
#define VIOMMU_MEM_H

#include <viommu/common.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Most regions one region set may hold. */
#define VIOMMU_MEM_MAX_REGIONS 64

/** Region flags. */
#define VIOMMU_MEM_F_READONLY (1u << 0) /* writes through the layer fail */
/*
 * The fd's owner is trusted not to shrink the file: accept a regular file
 * without the F_SEAL_SHRINK seal.  Without this flag such an fd is refused
 * (see struct viommu_mem_region).
 */
#define VIOMMU_MEM_F_TRUST_FD (1u << 1)

/**
 * struct viommu_mem_region - one contiguous range of guest RAM.
 * @gpa:       first guest-physical address.
 * @size:      length in bytes, > 0; @gpa + @size must not wrap.
 * @fd:        file to mmap (MAP_SHARED) from @fd_offset, or -1 when @hva is
 *             given.  The layer dup()s it; the caller keeps its own fd.
 *             @fd_offset must be page-aligned.  A regular file (memfd,
 *             tmpfs, hugetlbfs, any file) must carry the F_SEAL_SHRINK
 *             seal (memfd_create(MFD_ALLOW_SEALING) + F_ADD_SEALS; QEMU's
 *             memory-backend-memfd seals by default) unless @flags has
 *             VIOMMU_MEM_F_TRUST_FD: whoever else holds the file could
 *             otherwise truncate it under the mapping, and the next
 *             access of guest RAM would kill this process with SIGBUS.
 *             A file that cannot be sealed (not a memfd) is therefore
 *             accepted only with VIOMMU_MEM_F_TRUST_FD.
 * @fd_offset: offset in @fd where @gpa lives.
 * @hva:       with @fd == -1: the region's memory in this process, which
 *             the caller keeps mapped until the region is replaced or the
 *             object destroyed.
 * @flags:     VIOMMU_MEM_F_*.
 */
struct viommu_mem_region {
	uint64_t gpa;
	uint64_t size;
	int fd;
	uint64_t fd_offset;
	void *hva;
	uint32_t flags;
};

/**
 * struct viommu_mem_io_region - guest RAM reached through callbacks.
 * @gpa, @size: as in struct viommu_mem_region.
 * @flags:      VIOMMU_MEM_F_*.
 * @read:       copy @len bytes at guest-physical @gpa (inside the region)
 *              into @buf; return 0 or a negative errno (the access fails
 *              with it).  Required.
 * @write:      copy @len bytes from @buf to @gpa; same return.  Required
 *              unless @flags has VIOMMU_MEM_F_READONLY.
 * @opaque:     passed to both.
 *
 * The callbacks run on the thread that accesses guest memory, inside a
 * read section of the memory object (so viommu_mem_set_layout() waits for
 * a running callback before it returns); they must not replace the region
 * set, and they should bound their own time.  A callback may be asked for
 * any piece of its region, of any length from 1 byte.
 */
struct viommu_mem_io_region {
	uint64_t gpa;
	uint64_t size;
	uint32_t flags;
	int (*read)(void *opaque, uint64_t gpa, void *buf, size_t len);
	int (*write)(void *opaque, uint64_t gpa, const void *buf, size_t len);
	void *opaque;
};

/**
 * struct viommu_mem_layout - a whole region set for viommu_mem_set_layout().
 * @size:     sizeof(struct viommu_mem_layout) as the caller knows it (lets
 *            the struct grow); must be non-zero.
 * @regions:  @n fd or hva regions (struct viommu_mem_region).
 * @io:       @nio I/O regions.
 * @n + @nio must not exceed VIOMMU_MEM_MAX_REGIONS; no two regions of
 * either kind may overlap.
 */
struct viommu_mem_layout {
	uint32_t size;
	const struct viommu_mem_region *regions;
	unsigned int n;
	const struct viommu_mem_io_region *io;
	unsigned int nio;
};

/**
 * struct viommu_mem_config - creation parameters (all optional).
 * @size: sizeof(struct viommu_mem_config) as the caller knows it; 0 stands
 *        for this first sized layout.  Only the first @size bytes are
 *        read (a field past them takes its default); a larger @size than
 *        the library knows is refused unless the bytes past what it knows
 *        are zero.  Fields are only appended.
 * @log, @allocator: see common.h.
 */
struct viommu_mem_config {
	uint32_t size;
	struct viommu_log log;
	struct viommu_allocator allocator;
};

struct viommu_mem;

/**
 * viommu_mem_create() - make an empty guest-memory object.
 * @cfg: NULL for defaults.
 * @out: receives the object.
 * Return: 0; -EINVAL (@out NULL, @cfg->size larger than known with
 * non-zero bytes past what the library knows); -ENOMEM.
 */
VIOMMU_EXPORT int viommu_mem_create(const struct viommu_mem_config *cfg,
				    struct viommu_mem **out);

/**
 * viommu_mem_destroy() - unmap every region and free the object.  NULL is
 * accepted.  No other call on @mem may run concurrently or follow.
 */
VIOMMU_EXPORT void viommu_mem_destroy(struct viommu_mem *mem);

/**
 * viommu_mem_set_regions() - replace the whole region set.
 * @regions: @n regions; they must not overlap each other.
 * @n:       0 to VIOMMU_MEM_MAX_REGIONS (0 leaves no guest RAM).
 *
 * Either the whole new set takes effect or nothing changes.  A region whose
 * fd refers to the same file, offset and size as a region of the current
 * set keeps its existing mapping (no remap).  Returns after every read
 * section that might use a dropped mapping has ended.
 * Return: 0; -EINVAL for a bad region (zero size, wrapping range, overlap,
 * neither or both of fd and hva, unaligned fd_offset, unknown flag);
 * -EBADF for an fd that cannot be used; -EPERM for a regular file without
 * F_SEAL_SHRINK and without VIOMMU_MEM_F_TRUST_FD; -ENOMEM; or the
 * negative errno of a failed mmap or fstat.
 */
VIOMMU_EXPORT int viommu_mem_set_regions(struct viommu_mem *mem,
					 const struct viommu_mem_region *regions,
					 unsigned int n);

/**
 * viommu_mem_set_layout() - replace the whole region set with fd, hva and
 * I/O regions (viommu_mem_set_regions() is this call without I/O regions).
 * Same rules and errnos as viommu_mem_set_regions(); also -EINVAL for a
 * NULL or zero-@size @layout, a @size larger than this library knows with
 * non-zero bytes past what it knows, an I/O region without @read (or
 * without @write and not read-only), or more than VIOMMU_MEM_MAX_REGIONS
 * regions in all.  Must not be called from an I/O region's callback.
 */
VIOMMU_EXPORT int viommu_mem_set_layout(struct viommu_mem *mem,
					const struct viommu_mem_layout *layout);

/**
 * viommu_mem_read() - copy @len bytes at @gpa into @buf.
 * The range may span adjacent regions; it must be RAM all the way.
 * Return: 0; -EINVAL for NULL pointers; -EFAULT if any byte of
 * [@gpa, @gpa + @len) is not guest RAM (nothing is copied) or the range wraps;
 * or the negative errno an I/O region's callback returned (the bytes before
 * that region may have been copied).
 */
VIOMMU_EXPORT int viommu_mem_read(struct viommu_mem *mem, uint64_t gpa,
				  void *buf, size_t len);

/**
 * viommu_mem_write() - copy @len bytes from @buf to guest RAM at @gpa.
 * Return: 0; -EINVAL for NULL pointers; -EFAULT if any byte is not guest RAM
 * or the range wraps (nothing is written); -EPERM if any byte lies in a
 * read-only region (nothing is written); or an I/O region callback's
 * negative errno (the bytes before that region may have been written).
 */
VIOMMU_EXPORT int viommu_mem_write(struct viommu_mem *mem, uint64_t gpa,
				   const void *buf, size_t len);

/**
 * viommu_mem_ptr() - host pointer for @gpa plus the contiguous length.
 * @len:    bytes wanted; @contig receives min(@len, bytes to the region's
 *          end), which is at least 1 on success.
 * @access: VIOMMU_READ and/or VIOMMU_WRITE.
 * The pointer's lifetime is described at the top of this file.
 * Return: 0; -EINVAL for NULL pointers, @len == 0 or a bad @access; -EFAULT
 * if @gpa is not guest RAM; -EPERM for a write to a read-only region;
 * -EREMOTE if @gpa is in an I/O region (RAM without a host address: use
 * viommu_mem_read/write instead).
 */
VIOMMU_EXPORT int viommu_mem_ptr(struct viommu_mem *mem, uint64_t gpa,
				 size_t len, unsigned int access, void **hva,
				 size_t *contig);

/**
 * viommu_mem_read_lock() - enter a read section; returns a token for
 * viommu_mem_read_unlock().  Sections nest and are cheap (no shared lock);
 * a region set is not unmapped while a section that began before its
 * replacement is open.  Keep sections short: replacement waits for them.
 */
VIOMMU_EXPORT unsigned int viommu_mem_read_lock(struct viommu_mem *mem);

/** viommu_mem_read_unlock() - leave the section opened with @token. */
VIOMMU_EXPORT void viommu_mem_read_unlock(struct viommu_mem *mem,
					  unsigned int token);

/**
 * viommu_mem_generation() - a counter bumped by every successful
 * viommu_mem_set_regions(); consumers that cache host pointers compare it.
 */
VIOMMU_EXPORT uint64_t viommu_mem_generation(const struct viommu_mem *mem);

/** viommu_mem_ram_size() - total bytes of guest RAM in the current set. */
VIOMMU_EXPORT uint64_t viommu_mem_ram_size(struct viommu_mem *mem);

#ifdef __cplusplus
}
#endif

#endif /* VIOMMU_MEM_H */
