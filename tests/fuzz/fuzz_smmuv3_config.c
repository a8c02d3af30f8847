/*
 * fuzz_smmuv3_config.c - libFuzzer target for SMMUv3 STE and CD decoding
 * (and the walks they lead to) with arbitrary table memory.
 *
 * Input layout: byte 0 - bit 0 two-level stream table (split 6, L1 at
 * the window start), bit 1 "tame" (pointer fields of the first four STEs
 * and of their first four linear CDs are folded into the window, so the
 * decoder gets past the fetches), bit 2 no stage 2, bit 3 no HTTU.
 * Bytes 1-32: four 8-byte input addresses.  The rest fills a 64 KiB
 * window of guest RAM at WIN holding the stream table (linear: 16 STEs at
 * WIN), CD tables and page tables.
 *
 * For StreamIDs 0-3 the harness announces CDs with CFGI_CD for SSIDs 0,
 * 1, 3 and 70, enables the SMMU, and reads through every endpoint with no
 * PASID and with those PASIDs at the four addresses, then drains the
 * event queue.  Checked: no crash or sanitizer report, every event names
 * one of the endpoints and has a type the model may raise, a successful
 * translation lands in guest RAM (the core copied from it), and no
 * command error occurs (the harness issues only legal commands).
 */
#define FX_RAM_SIZE (2ull << 20)
#include "fuzz_ram.h"
#include "unit/test_smmuv3_fixture.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

#define WIN 0x100000ull
#define WIN_SIZE 0x10000ull

static void die(const char *why)
{
	fprintf(stderr, "fuzz_smmuv3_config: %s\n", why);
	abort();
}

/* fold() - put the address bits @mask of @v inside the window. */
static uint64_t fold(uint64_t v, uint64_t field, uint64_t mask)
{
	return (v & ~field) | WIN | (v & mask);
}

/* tame() - fold the pointers of STEs 0-3 and their linear CDs 0-3. */
static void tame(struct fx *f)
{
	for (uint32_t s = 0; s < 4; s++) {
		uint64_t a = WIN + 64ull * s, q0 = gr64(f, a);
		uint64_t ctx;

		q0 = fold(q0, 0xffffffffffc0ull, 0xffc0);
		gw64(f, a, q0);
		gw64(f, a + 24, fold(gr64(f, a + 24), 0xffffffffffff0ull,
				     0xf000));
		ctx = q0 & 0xffffffffffc0ull;
		for (uint32_t c = 0; c < 4; c++) {
			uint64_t cd = ctx + 64ull * c;

			if (cd + 24 > WIN + WIN_SIZE)
				break;
			gw64(f, cd + 8, fold(gr64(f, cd + 8),
					     0xffffffffffff0ull, 0xf000));
			gw64(f, cd + 16, fold(gr64(f, cd + 16),
					      0xffffffffffff0ull, 0xf000));
		}
	}
}

static const uint8_t ok_types[] = { 0x02, 0x03, 0x04, 0x06, 0x08, 0x09,
				    0x0a, 0x0b, 0x10, 0x11, 0x12, 0x13 };

/* drain() - check and consume every event. */
static void drain(struct fx *f)
{
	uint64_t e[4];

	while (fx_evt(f, e)) {
		unsigned int t = e[0] & 0xff, ok = 0;

		for (unsigned int i = 0; i < sizeof(ok_types); i++)
			ok |= ok_types[i] == t;
		if (!ok)
			die("unexpected event type");
		if ((e[0] >> 32) >= FX_NEP)
			die("event for an unknown StreamID");
	}
}

static void run_dmas(struct fx *f, const uint64_t addr[4])
{
	static const uint32_t pasids[5] = { VIOMMU_NO_PASID, 0, 1, 3, 70 };
	uint8_t buf[16];

	for (int ep = 0; ep < FX_NEP; ep++)
		for (int p = 0; p < 5; p++)
			for (int a = 0; a < 4; a++) {
				viommu_dma_read(f->ep[ep], pasids[p], addr[a],
						buf, sizeof(buf));
				viommu_dma_write(f->ep[ep], pasids[p],
						 addr[a] + 64, buf, 4);
			}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct viommu_smmuv3_config c = { .size = sizeof(c) };
	uint64_t addr[4] = { 0 };
	struct fx f;

	if (n < 33)
		return 0;
	c.features = VIOMMU_SMMUV3_F_DEFAULT;
	if (d[0] & 4)
		c.features &= ~VIOMMU_SMMUV3_F_STAGE2;
	if (d[0] & 8)
		c.features &= ~VIOMMU_SMMUV3_F_HTTU;
	if (fx_init(&f, &c) || fx_reset(&f))
		die("setup");
	for (int i = 0; i < 4; i++)
		memcpy(&addr[i], d + 1 + 8 * i, 8);
	memcpy(f.ram + WIN, d + 33, n - 33 < WIN_SIZE ? n - 33 : WIN_SIZE);
	if (d[0] & 2)
		tame(&f);
	mw(&f, 0x20, 4, (1u << 3) | (1u << 2));
	mw(&f, 0x80, 8, WIN);
	mw(&f, 0x88, 4, (d[0] & 1) ? (1u << 16) | (6u << 6) | 8 : 4);
	mw(&f, 0x20, 4, (1u << 3) | (1u << 2) | 1);
	for (uint32_t s = 0; s < FX_NEP; s++) {
		fx_cmd(&f, 0x05 | CMD_SID(s), 1);
		fx_cmd(&f, 0x05 | CMD_SID(s) | (1ull << 12), 1);
		fx_cmd(&f, 0x05 | CMD_SID(s) | (3ull << 12), 1);
		fx_cmd(&f, 0x05 | CMD_SID(s) | (70ull << 12), 1);
	}
	if (!fx_sync(&f) || (mr(&f, 0x60, 4) ^ mr(&f, 0x64, 4)))
		die("legal commands failed");
	run_dmas(&f, addr);
	drain(&f);
	fx_fini(&f);
	return 0;
}
