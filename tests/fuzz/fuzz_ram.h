/*
 * fuzz_ram.h - guest RAM for the fuzz targets built on the SMMUv3 and
 * VT-d fixtures (tests/unit/test_*_fixture.h), kept across inputs.
 *
 * The fixtures allocate a fresh zeroed RAM (2-4 MiB) per input with
 * calloc(); under ASan that is an mmap, a page fault per page touched and
 * the poisoning of the whole block's shadow on free, which was most of an
 * execution of the short inputs.  Here the RAM is one private anonymous
 * mapping made once: fuzz_ram_get() hands it out again after
 * madvise(MADV_DONTNEED), which the kernel defines to make every page of
 * such a mapping read as zero - the same state calloc() gave, at the cost
 * of the pages the previous input touched.  Everything else (context,
 * model, endpoints) is still built per input by fx_init(), so an input
 * sees exactly what it saw before.  The replay programs (FUZZ_STANDALONE)
 * also check that every byte is zero when the RAM is handed out again.
 *
 * ASan's redzones around the calloc() block are replaced by guard pages
 * (PROT_NONE, 64 KiB each side): an access just outside the RAM still
 * crashes.  Include this before the fixture header.
 */
#ifndef FUZZ_RAM_H
#define FUZZ_RAM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define FUZZ_RAM_GUARD (64u << 10)

/* fuzz_ram_get() - @size bytes of zeroed RAM, the same block each call. */
static inline void *fuzz_ram_get(size_t size)
{
	static uint8_t *ram;
	static size_t ram_size;

	if (ram && ram_size == size) {
		if (madvise(ram, size, MADV_DONTNEED)) {
			perror("fuzz_ram: madvise");
			abort();
		}
#ifdef FUZZ_STANDALONE
		for (size_t i = 0; i < size; i += sizeof(uint64_t))
			if (*(const uint64_t *)(ram + i)) {
				fprintf(stderr, "fuzz_ram: RAM not zero at "
					"%#zx after the reset\n", i);
				abort();
			}
#endif
		return ram;
	}
	if (ram)
		abort(); /* one size per program */
	ram = mmap(NULL, size + 2 * FUZZ_RAM_GUARD, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED) {
		ram = NULL;
		return NULL;
	}
	ram += FUZZ_RAM_GUARD;
	if (mprotect(ram, size, PROT_READ | PROT_WRITE))
		abort();
	/* small pages: a huge page would be zeroed whole on first touch */
	(void)madvise(ram, size, MADV_NOHUGEPAGE);
	ram_size = size;
	return ram;
}

/* fuzz_ram_put() - the RAM stays mapped for the next input. */
static inline void fuzz_ram_put(void *ram)
{
	(void)ram;
}

#define FX_RAM_ALLOC(size) fuzz_ram_get(size)
#define FX_RAM_FREE(p) fuzz_ram_put(p)

#endif
