/*
 * test_pci.c - the emulated PCI function (src/transport/pci.c): header
 * values, write masks and write-one-to-clear bits, BAR sizing, the
 * capability list, routing of BAR accesses by the programmed base, INTx
 * with INTX_DISABLE, reset to power-on values, the handling of odd or
 * misaligned accesses, and MSI-X (PCI Local Bus 3.0 §6.8.2): the
 * capability, the table and PBA windows, masking and pending bits, the
 * link's masks, INTx suppression and a signal racing an unmask.
 */
#include <errno.h>
#include <pthread.h>

#include "harness.h"
#include "transport/pci.h"

#define MEM_BASE 0xfebf0000u
#define MEM_SIZE 0x4000u
#define IO_BASE 0xc000u
#define IO_SIZE 0x20u

/* A BAR model that records its last access and backs reads with memory. */
struct bardev {
	int reads, writes;
	uint64_t off, val;
	unsigned int size;
};

static uint64_t bd_read(void *opaque, uint64_t off, unsigned int size)
{
	struct bardev *b = opaque;

	b->reads++;
	b->off = off;
	b->size = size;
	return 0x1122334455667788ull + off;
}

static void bd_write(void *opaque, uint64_t off, uint64_t val,
		     unsigned int size)
{
	struct bardev *b = opaque;

	b->writes++;
	b->off = off;
	b->val = val;
	b->size = size;
}

static const struct pci_bar_ops bd_ops = { bd_read, bd_write };

/* Log lines and INTx / reset / hook events. */
struct rec {
	int lines;
	int intx_calls;
	bool intx;
	int resets;
	int hook_reads, hook_writes;
	uint32_t hook_off, hook_val;
};

static void log_cb(void *opaque, enum viommu_log_level level,
		   const char *line)
{
	struct rec *r = opaque;

	if (level <= VIOMMU_LOG_WARN)
		r->lines++;
}

static void intx_cb(void *opaque, bool level)
{
	struct rec *r = opaque;

	r->intx_calls++;
	r->intx = level;
}

static void reset_cb(void *opaque)
{
	struct rec *r = opaque;

	r->resets++;
}

/* struct fx - a function with a 16 KiB memory BAR0 and a 32-byte I/O BAR2. */
struct fx {
	struct pci_func f;
	struct bardev mem, io;
	struct rec rec;
	struct viommu_log log;
};

static void fx_init(struct fx *x)
{
	memset(x, 0, sizeof(*x));
	x->log = (struct viommu_log){ .fn = log_cb, .opaque = &x->rec,
				      .level = VIOMMU_LOG_DEBUG };
	pci_func_init(&x->f, "test", &x->log, 0x1234, 0x5678, 0x0c0330, 7,
		      0xabcd, 0xef01);
	pci_func_add_bar(&x->f, 0, MEM_SIZE, false, &bd_ops, &x->mem);
	pci_func_add_bar(&x->f, 2, IO_SIZE, true, &bd_ops, &x->io);
	x->f.intx_fn = intx_cb;
	x->f.intx_opaque = &x->rec;
	x->f.reset_fn = reset_cb;
	x->f.reset_opaque = &x->rec;
}

/* fx_map() - program both BARs and enable decoding. */
static void fx_map(struct fx *x)
{
	pci_cfg_write(&x->f, PCI_BAR0, MEM_BASE, 4);
	pci_cfg_write(&x->f, PCI_BAR0 + 8, IO_BASE, 4);
	pci_cfg_write(&x->f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO,
		      2);
}

TEST(header_values)
{
	struct fx x;

	fx_init(&x);
	CHECK_U64(pci_cfg_read(&x.f, PCI_VENDOR_ID, 2), 0x1234);
	CHECK_U64(pci_cfg_read(&x.f, PCI_DEVICE_ID, 2), 0x5678);
	CHECK_U64(pci_cfg_read(&x.f, 0, 4), 0x56781234);
	CHECK_U64(pci_cfg_read(&x.f, PCI_REVISION_ID, 1), 7);
	CHECK_U64(pci_cfg_read(&x.f, PCI_CLASS_PROG, 1), 0x30);
	CHECK_U64(pci_cfg_read(&x.f, 0x0a, 2), 0x0c03);
	CHECK_U64(pci_cfg_read(&x.f, 0x08, 4), 0x0c033007);
	CHECK_U64(pci_cfg_read(&x.f, PCI_HEADER_TYPE, 1), 0);
	CHECK_U64(pci_cfg_read(&x.f, PCI_SUBSYSTEM_VENDOR_ID, 2), 0xabcd);
	CHECK_U64(pci_cfg_read(&x.f, PCI_SUBSYSTEM_ID, 2), 0xef01);
	CHECK_U64(pci_cfg_read(&x.f, PCI_INTERRUPT_PIN, 1), 1);
	CHECK_U64(pci_cfg_read(&x.f, PCI_INTERRUPT_LINE, 1), 0);
	CHECK_U64(pci_cfg_read(&x.f, PCI_COMMAND, 2), 0);
	/* No capability yet: no CAP_LIST, pointer 0. */
	CHECK_U64(pci_cfg_read(&x.f, PCI_STATUS, 2), 0);
	CHECK_U64(pci_cfg_read(&x.f, PCI_CAPABILITY_LIST, 1), 0);
	/* Read-only identity: writes change nothing. */
	pci_cfg_write(&x.f, 0, 0xffffffff, 4);
	pci_cfg_write(&x.f, 0x08, 0xffffffff, 4);
	pci_cfg_write(&x.f, PCI_SUBSYSTEM_VENDOR_ID, 0, 4);
	pci_cfg_write(&x.f, PCI_INTERRUPT_PIN, 5, 1);
	CHECK_U64(pci_cfg_read(&x.f, 0, 4), 0x56781234);
	CHECK_U64(pci_cfg_read(&x.f, 0x08, 4), 0x0c033007);
	CHECK_U64(pci_cfg_read(&x.f, PCI_SUBSYSTEM_VENDOR_ID, 4), 0xef01abcd);
	CHECK_U64(pci_cfg_read(&x.f, PCI_INTERRUPT_PIN, 1), 1);
	/* Interrupt line and cache line size are writable. */
	pci_cfg_write(&x.f, PCI_INTERRUPT_LINE, 11, 1);
	CHECK_U64(pci_cfg_read(&x.f, PCI_INTERRUPT_LINE, 1), 11);
	pci_cfg_write(&x.f, 0x0c, 0xffffffff, 4); /* cls, lat, hdr, bist */
	CHECK_U64(pci_cfg_read(&x.f, 0x0c, 4), 0xff);
	CHECK_EQ(x.rec.lines, 0);
	pci_func_destroy(&x.f);
}

TEST(bar_sizing)
{
	struct fx x;

	fx_init(&x);
	/* Power-on: memory BAR 0 (32-bit, non-prefetchable), I/O bit 0. */
	CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0, 4), 0);
	CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0 + 8, 4), 1);
	for (unsigned int i = 0; i < PCI_NUM_BARS; i++)
		pci_cfg_write(&x.f, PCI_BAR0 + 4 * i, 0xffffffff, 4);
	CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0, 4), ~(MEM_SIZE - 1));
	CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0 + 4, 4), 0);
	CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0 + 8, 4), ~(IO_SIZE - 1) | 1);
	for (unsigned int i = 3; i < PCI_NUM_BARS; i++)
		CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0 + 4 * i, 4), 0);
	/* No expansion ROM: the register reads 0. */
	pci_cfg_write(&x.f, 0x30, 0xffffffff, 4);
	CHECK_U64(pci_cfg_read(&x.f, 0x30, 4), 0);
	/* Program: low bits are dropped, type bits stay. */
	pci_cfg_write(&x.f, PCI_BAR0, MEM_BASE | 0x3fff, 4);
	CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0, 4), MEM_BASE);
	pci_cfg_write(&x.f, PCI_BAR0 + 8, IO_BASE | 0x1e, 4);
	CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0 + 8, 4), IO_BASE | 1);
	/* Byte and word writes to a BAR go through the same mask. */
	pci_cfg_write(&x.f, PCI_BAR0 + 3, 0xfd, 1);
	CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0, 4), 0xfdbf0000);
	pci_cfg_write(&x.f, PCI_BAR0, 0xffff, 2);
	CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0, 4), 0xfdbfc000);
	CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0 + 2, 2), 0xfdbf);
	pci_func_destroy(&x.f);
}

TEST(bar_declaration_checks)
{
	struct pci_func f;

	pci_func_init(&f, "t", NULL, 1, 2, 0, 0, 0, 0);
	CHECK_EQ(pci_func_add_bar(&f, 6, 4096, false, &bd_ops, NULL), -EINVAL);
	CHECK_EQ(pci_func_add_bar(&f, 0, 8, false, &bd_ops, NULL), -EINVAL);
	CHECK_EQ(pci_func_add_bar(&f, 0, 0, false, &bd_ops, NULL), -EINVAL);
	CHECK_EQ(pci_func_add_bar(&f, 0, 0x3000, false, &bd_ops, NULL),
		 -EINVAL);
	CHECK_EQ(pci_func_add_bar(&f, 0, 2, true, &bd_ops, NULL), -EINVAL);
	CHECK_EQ(pci_func_add_bar(&f, 0, 0x80000000u, false, &bd_ops, NULL),
		 0);
	CHECK_EQ(pci_func_add_bar(&f, 1, 4, true, &bd_ops, NULL), 0);
	pci_cfg_write(&f, PCI_BAR0, 0xffffffff, 4);
	CHECK_U64(pci_cfg_read(&f, PCI_BAR0, 4), 0x80000000u);
	pci_cfg_write(&f, PCI_BAR0 + 4, 0xffffffff, 4);
	CHECK_U64(pci_cfg_read(&f, PCI_BAR0 + 4, 4), 0xfffffffdu);
	pci_func_destroy(&f);
}

/* walk_caps() - follow the list; store offsets, return the count. */
static int walk_caps(struct pci_func *f, uint8_t *offs, int max)
{
	int n = 0;
	uint32_t p = pci_cfg_read(f, PCI_CAPABILITY_LIST, 1);

	while (p && n < max) {
		offs[n++] = (uint8_t)p;
		p = pci_cfg_read(f, p + 1, 1);
	}
	return n;
}

TEST(capability_list)
{
	struct fx x;
	uint8_t a[6] = { 6, 0xaa, 0xbb, 0xcc, 0xdd, 0xee };
	uint8_t b[2] = { 0x11, 0x22 };
	uint8_t offs[64], o1 = 0, o2 = 0, o3 = 0, o;
	int n, err;

	fx_init(&x);
	CHECK_EQ(pci_func_add_cap(&x.f, 0x09, a, sizeof(a), &o1), 0);
	CHECK_EQ(pci_func_add_cap(&x.f, 0x05, b, sizeof(b), &o2), 0);
	CHECK_EQ(pci_func_add_cap(&x.f, 0x01, NULL, 0, &o3), 0);
	CHECK_EQ(pci_func_add_cap(&x.f, 0x01, NULL, 4, &o), -EINVAL);
	CHECK_U64(pci_cfg_read(&x.f, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST,
		  PCI_STATUS_CAP_LIST);
	CHECK_EQ(o1, 0x40);
	CHECK(o2 > o1 && o3 > o2);
	CHECK_EQ(o2 % 4, 0);
	CHECK_EQ(o3 % 4, 0);
	CHECK(o2 >= o1 + 2 + sizeof(a));
	n = walk_caps(&x.f, offs, 64);
	REQUIRE(n == 3);
	CHECK_EQ(offs[0], o1);
	CHECK_EQ(offs[1], o2);
	CHECK_EQ(offs[2], o3);
	CHECK_U64(pci_cfg_read(&x.f, o1, 1), 0x09);
	CHECK_U64(pci_cfg_read(&x.f, o1 + 2, 2), 0xaa06);
	CHECK_U64(pci_cfg_read(&x.f, o1 + 4, 4), 0xeeddccbb);
	CHECK_U64(pci_cfg_read(&x.f, o2, 4), 0x22110000u | o3 << 8 | 0x05);
	CHECK_U64(pci_cfg_read(&x.f, o3, 2), 0x0001);
	/* Capabilities are read-only unless opened. */
	pci_cfg_write(&x.f, o1, 0xffffffff, 4);
	CHECK_U64(pci_cfg_read(&x.f, o1, 4), 0xaa060000u | o2 << 8 | 0x09);
	CHECK_EQ(pci_func_set_wmask(&x.f, o1 + 4, 0xff00, 2), 0);
	pci_cfg_write(&x.f, o1 + 4, 0x1234, 2);
	CHECK_U64(pci_cfg_read(&x.f, o1 + 4, 2), 0x12bb);
	CHECK_EQ(pci_func_set_wmask(&x.f, 0xfe, 0xffff, 4), -EINVAL);
	CHECK_EQ(pci_func_set_wmask(&x.f, 0x100, 0xff, 1), -EINVAL);
	/* Fill the rest of config space: it ends with -ENOSPC. */
	do
		err = pci_func_add_cap(&x.f, 0x09, a, sizeof(a), &o);
	while (err == 0);
	CHECK_EQ(err, -ENOSPC);
	n = walk_caps(&x.f, offs, 64);
	CHECK(n > 20);
	for (int i = 0; i < n; i++)
		CHECK(offs[i] >= 0x40 && offs[i] % 4 == 0 &&
		      offs[i] + 8 <= PCI_CFG_SIZE);
	CHECK_EQ(pci_func_add_cap(&x.f, 0x09, NULL, 0, &o), -ENOSPC);
	pci_func_destroy(&x.f);
}

TEST(command_and_status)
{
	struct fx x;
	struct pci_func g;
	uint16_t all = PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
		       PCI_COMMAND_MASTER | 0x40 | 0x100 |
		       PCI_COMMAND_INTX_DISABLE;

	fx_init(&x);
	pci_cfg_write(&x.f, PCI_COMMAND, 0xffff, 2);
	CHECK_U64(pci_cfg_read(&x.f, PCI_COMMAND, 2), all);
	pci_cfg_write(&x.f, PCI_COMMAND, 0, 2);
	CHECK_U64(pci_cfg_read(&x.f, PCI_COMMAND, 2), 0);
	/* A function without an I/O BAR cannot enable I/O decoding. */
	pci_func_init(&g, "g", NULL, 1, 2, 0, 0, 0, 0);
	pci_func_add_bar(&g, 0, 4096, false, &bd_ops, NULL);
	pci_cfg_write(&g, PCI_COMMAND, 0xffff, 2);
	CHECK_U64(pci_cfg_read(&g, PCI_COMMAND, 2), all & ~PCI_COMMAND_IO);
	pci_func_destroy(&g);

	/* Status: error bits are write-one-to-clear, the rest read-only. */
	pci_func_add_cap(&x.f, 0x09, NULL, 0, NULL);
	x.f.cfg[PCI_STATUS + 1] = 0xf9; /* as if the device had set them */
	pci_cfg_write(&x.f, PCI_STATUS, 0, 2);
	CHECK_U64(pci_cfg_read(&x.f, PCI_STATUS, 2),
		  0xf900 | PCI_STATUS_CAP_LIST);
	pci_cfg_write(&x.f, PCI_STATUS, 0x2100, 2);
	CHECK_U64(pci_cfg_read(&x.f, PCI_STATUS, 2),
		  0xd800 | PCI_STATUS_CAP_LIST);
	pci_cfg_write(&x.f, PCI_STATUS, 0xffff, 2);
	CHECK_U64(pci_cfg_read(&x.f, PCI_STATUS, 2), PCI_STATUS_CAP_LIST);
	/* A dword write to COMMAND leaves STATUS alone unless bits are 1. */
	pci_cfg_write(&x.f, PCI_COMMAND, PCI_COMMAND_MEMORY, 4);
	CHECK_U64(pci_cfg_read(&x.f, PCI_COMMAND, 4),
		  (uint32_t)PCI_STATUS_CAP_LIST << 16 | PCI_COMMAND_MEMORY);
	pci_func_destroy(&x.f);
}

TEST(bar_routing)
{
	struct fx x;
	uint64_t v = 0;

	fx_init(&x);
	pci_cfg_write(&x.f, PCI_BAR0, MEM_BASE, 4);
	/* Memory decoding off: nothing decodes, reads give all ones. */
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE, false, false, &v, 4), -ENOENT);
	CHECK_U64(v, 0xffffffffu);
	CHECK_EQ(x.mem.reads, 0);
	pci_cfg_write(&x.f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE + 0x10, false, false, &v, 4), 0);
	CHECK_EQ(x.mem.reads, 1);
	CHECK_U64(x.mem.off, 0x10);
	CHECK_EQ(x.mem.size, 4);
	CHECK_U64(v, 0x55667798u); /* truncated to the access size */
	v = 0xdeadbeefcafef00dull;
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE + 0x20, false, true, &v, 2), 0);
	CHECK_EQ(x.mem.writes, 1);
	CHECK_U64(x.mem.off, 0x20);
	CHECK_U64(x.mem.val, 0xf00d);
	CHECK_EQ(x.mem.size, 2);
	/* The last bytes are reachable; crossing the end is refused. */
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE + MEM_SIZE - 8, false, false,
				&v, 8), 0);
	CHECK_U64(x.mem.off, MEM_SIZE - 8);
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE + MEM_SIZE - 4, false, false,
				&v, 8), -EINVAL);
	CHECK_U64(v, ~0ull);
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE + MEM_SIZE - 1, false, true,
				&v, 2), -EINVAL);
	CHECK_EQ(x.mem.writes, 1);
	/* Outside the BAR, or a bad size. */
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE + MEM_SIZE, false, false, &v, 4),
		 -ENOENT);
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE - 4, false, false, &v, 4),
		 -ENOENT);
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE, false, false, &v, 3), -EINVAL);
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE, false, false, &v, 16), -EINVAL);
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE, false, false, NULL, 4),
		 -EINVAL);
	/* The I/O BAR needs COMMAND.IO and an I/O access. */
	pci_cfg_write(&x.f, PCI_BAR0 + 8, IO_BASE, 4);
	CHECK_EQ(pci_bar_access(&x.f, IO_BASE + 4, true, false, &v, 1),
		 -ENOENT);
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE, true, false, &v, 4), -ENOENT);
	pci_cfg_write(&x.f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO,
		      2);
	CHECK_EQ(pci_bar_access(&x.f, IO_BASE + 4, true, false, &v, 1), 0);
	CHECK_EQ(x.io.reads, 1);
	CHECK_U64(x.io.off, 4);
	CHECK_U64(v, 0x8c);
	CHECK_EQ(pci_bar_access(&x.f, IO_BASE + 4, false, false, &v, 1),
		 -ENOENT);
	/* Moving the BAR moves the decode. */
	pci_cfg_write(&x.f, PCI_BAR0, 0xe0000000u, 4);
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE, false, false, &v, 4), -ENOENT);
	CHECK_EQ(pci_bar_access(&x.f, 0xe0000004u, false, false, &v, 4), 0);
	CHECK_U64(x.mem.off, 4);
	/* A BAR left at 0 decodes nothing. */
	pci_cfg_write(&x.f, PCI_BAR0, 0, 4);
	CHECK_EQ(pci_bar_access(&x.f, 0x10, false, false, &v, 4), -ENOENT);
	CHECK(x.rec.lines > 0);
	pci_func_destroy(&x.f);
}

TEST(intx_and_disable)
{
	struct fx x;

	fx_init(&x);
	pci_set_intx(&x.f, true);
	CHECK_EQ(x.rec.intx_calls, 1);
	CHECK(x.rec.intx);
	CHECK(pci_cfg_read(&x.f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	pci_set_intx(&x.f, true); /* no change: not told again */
	CHECK_EQ(x.rec.intx_calls, 1);
	/* INTX_DISABLE masks the line; STATUS.INTERRUPT still shows it. */
	pci_cfg_write(&x.f, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 2);
	CHECK_EQ(x.rec.intx_calls, 2);
	CHECK(!x.rec.intx);
	CHECK(pci_cfg_read(&x.f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	pci_set_intx(&x.f, false);
	pci_set_intx(&x.f, true);
	CHECK_EQ(x.rec.intx_calls, 2);
	pci_cfg_write(&x.f, PCI_COMMAND, 0, 2);
	CHECK_EQ(x.rec.intx_calls, 3);
	CHECK(x.rec.intx);
	pci_set_intx(&x.f, false);
	CHECK_EQ(x.rec.intx_calls, 4);
	CHECK(!x.rec.intx);
	CHECK(!(pci_cfg_read(&x.f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT));
	/* STATUS.INTERRUPT is read-only. */
	pci_cfg_write(&x.f, PCI_STATUS, PCI_STATUS_INTERRUPT, 2);
	CHECK(!(pci_cfg_read(&x.f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT));
	/* Without a sink nothing is called, the status bit still moves. */
	x.f.intx_fn = NULL;
	pci_set_intx(&x.f, true);
	CHECK(pci_cfg_read(&x.f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	CHECK_EQ(x.rec.intx_calls, 4);
	pci_func_destroy(&x.f);
}

TEST(reset_to_power_on)
{
	struct fx x;
	uint8_t body[6] = { 1, 2, 3, 4, 5, 6 }, c = 0;
	uint64_t v;

	fx_init(&x);
	pci_func_add_cap(&x.f, 0x09, body, sizeof(body), &c);
	pci_func_set_wmask(&x.f, c + 4, 0xffff, 2);
	pci_cfg_write(&x.f, c + 4, 0xbeef, 2);
	fx_map(&x);
	pci_cfg_write(&x.f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO |
		      PCI_COMMAND_MASTER, 2);
	pci_cfg_write(&x.f, PCI_INTERRUPT_LINE, 10, 1);
	x.f.cfg[PCI_STATUS + 1] |= 0x20;
	pci_set_intx(&x.f, true);
	CHECK(x.rec.intx);
	pci_func_reset(&x.f);
	CHECK_EQ(x.rec.resets, 1);
	CHECK(!x.rec.intx);
	CHECK_U64(pci_cfg_read(&x.f, PCI_COMMAND, 2), 0);
	CHECK_U64(pci_cfg_read(&x.f, PCI_STATUS, 2), PCI_STATUS_CAP_LIST);
	CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0, 4), 0);
	CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0 + 8, 4), 1);
	CHECK_U64(pci_cfg_read(&x.f, PCI_INTERRUPT_LINE, 1), 0);
	CHECK_U64(pci_cfg_read(&x.f, PCI_INTERRUPT_PIN, 1), 1);
	CHECK_U64(pci_cfg_read(&x.f, 0, 4), 0x56781234);
	CHECK_U64(pci_cfg_read(&x.f, PCI_CAPABILITY_LIST, 1), c);
	CHECK_U64(pci_cfg_read(&x.f, c + 2, 2), 0x0201);
	CHECK_U64(pci_cfg_read(&x.f, c + 4, 2), 0); /* writable: cleared */
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE, false, false, &v, 4), -ENOENT);
	/* Sizing still works after reset. */
	pci_cfg_write(&x.f, PCI_BAR0, 0xffffffff, 4);
	CHECK_U64(pci_cfg_read(&x.f, PCI_BAR0, 4), ~(MEM_SIZE - 1));
	pci_func_destroy(&x.f);
}

TEST(odd_config_accesses)
{
	struct fx x;
	int lines;

	fx_init(&x);
	pci_cfg_write(&x.f, PCI_INTERRUPT_LINE, 9, 1);
	lines = x.rec.lines;
	CHECK_U64(pci_cfg_read(&x.f, 0, 3), 0xffffffffu);
	CHECK_EQ(x.rec.lines, lines + 1);
	CHECK_U64(pci_cfg_read(&x.f, 1, 2), 0xffffffffu);
	CHECK_U64(pci_cfg_read(&x.f, 2, 4), 0xffffffffu);
	CHECK_U64(pci_cfg_read(&x.f, 0, 8), 0xffffffffu);
	CHECK_U64(pci_cfg_read(&x.f, 0, 0), 0xffffffffu);
	CHECK_EQ(x.rec.lines, lines + 5);
	pci_cfg_write(&x.f, PCI_INTERRUPT_LINE - 1, 0x4400, 2); /* misaligned */
	pci_cfg_write(&x.f, PCI_INTERRUPT_LINE, 0x44, 3);
	CHECK_EQ(x.rec.lines, lines + 7);
	CHECK_U64(pci_cfg_read(&x.f, PCI_INTERRUPT_LINE, 1), 9);
	/* Past the 256-byte header: zero, writes ignored, no log. */
	CHECK_U64(pci_cfg_read(&x.f, 0x100, 4), 0);
	CHECK_U64(pci_cfg_read(&x.f, 0xffc, 4), 0);
	CHECK_U64(pci_cfg_read(&x.f, 0xfffffffc, 4), 0);
	pci_cfg_write(&x.f, 0x100, 0xffffffff, 4);
	CHECK_EQ(x.rec.lines, lines + 7);
	/* The last dword of the header is reachable. */
	CHECK_U64(pci_cfg_read(&x.f, 0xfc, 4), 0);
	/* A flood of bad accesses is rate limited. */
	lines = x.rec.lines;
	for (int i = 0; i < 100000; i++)
		pci_cfg_read(&x.f, 1, 4);
	CHECK(x.rec.lines - lines < 80);
	pci_func_destroy(&x.f);
}

/* Hooks: the read hook may answer, the write hook sees masked writes. */
static uint32_t hook_read(void *opaque, uint32_t off, unsigned int len,
			  bool *handled)
{
	struct rec *r = opaque;

	r->hook_reads++;
	if (off == 0x80) {
		*handled = true;
		return 0xabcdef12;
	}
	return 0;
}

static void hook_write(void *opaque, uint32_t off, uint32_t val,
		       unsigned int len)
{
	struct rec *r = opaque;

	r->hook_writes++;
	r->hook_off = off;
	r->hook_val = val;
}

TEST(config_hooks)
{
	struct fx x;

	fx_init(&x);
	x.f.cfg_read_fn = hook_read;
	x.f.cfg_write_fn = hook_write;
	x.f.cfg_opaque = &x.rec;
	CHECK_U64(pci_cfg_read(&x.f, 0x80, 4), 0xabcdef12);
	CHECK_U64(pci_cfg_read(&x.f, 0x80, 2), 0xef12);
	CHECK_U64(pci_cfg_read(&x.f, 0, 2), 0x1234);
	CHECK_EQ(x.rec.hook_reads, 3);
	pci_cfg_write(&x.f, PCI_INTERRUPT_LINE, 3, 1);
	CHECK_EQ(x.rec.hook_writes, 1);
	CHECK_U64(x.rec.hook_off, PCI_INTERRUPT_LINE);
	CHECK_U64(x.rec.hook_val, 3);
	/* Refused accesses never reach the hooks. */
	pci_cfg_read(&x.f, 1, 4);
	pci_cfg_write(&x.f, 1, 0, 4);
	CHECK_EQ(x.rec.hook_reads, 3);
	CHECK_EQ(x.rec.hook_writes, 1);
	pci_func_destroy(&x.f);
}

/* Two threads toggle INTx; the sink must end on the final level. */
struct intx_thr {
	struct pci_func *f;
	int n;
};

static void *intx_thread(void *arg)
{
	struct intx_thr *t = arg;

	for (int i = 0; i < t->n; i++)
		pci_set_intx(t->f, i & 1);
	return NULL;
}

TEST(intx_delivery_in_order)
{
	struct fx x;
	struct intx_thr t = { &x.f, 20000 };
	pthread_t th[2];

	fx_init(&x);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, intx_thread, &t);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	/* Both threads end with level 1 (n even: last i is odd). */
	CHECK(x.rec.intx);
	CHECK(x.f.intx_level);
	pci_set_intx(&x.f, false);
	CHECK(!x.rec.intx);
	pci_func_destroy(&x.f);
}

/* MSI-X fixture: 70 vectors (two PBA words) in BAR0 of struct fx. */
#define NV 70
#define TBL 0x1000u
#define PBA 0x2000u

/* Deliveries seen by the MSI-X sink. */
struct msix_rec {
	struct pci_func *f;
	int calls;
	int count[NV];
	unsigned int vec;
	uint64_t addr;
	uint32_t data;
	bool locked; /* a delivery found f->lock held */
};

static void msix_cb(void *opaque, unsigned int vector, uint64_t addr,
		    uint32_t data)
{
	struct msix_rec *m = opaque;

	if (pthread_mutex_trylock(&m->f->lock))
		m->locked = true;
	else
		pthread_mutex_unlock(&m->f->lock);
	m->calls++;
	if (vector < NV)
		m->count[vector]++;
	m->vec = vector;
	m->addr = addr;
	m->data = data;
}

/* mx_init() - struct fx plus MSI-X in BAR0, mapped, sink @m. */
static void mx_init(struct fx *x, struct msix_rec *m)
{
	fx_init(x);
	memset(m, 0, sizeof(*m));
	m->f = &x->f;
	REQUIRE(pci_func_add_msix(&x->f, NV, 0, TBL, PBA) == 0);
	x->f.msix_fn = msix_cb;
	x->f.msix_opaque = m;
	fx_map(x);
}

/* mx_rd() / mx_wr() - BAR0 accesses by absolute address; must route. */
static uint64_t mx_rd(struct fx *x, uint32_t off, unsigned int size)
{
	uint64_t v = 0;

	CHECK_EQ(pci_bar_access(&x->f, MEM_BASE + off, false, false, &v, size),
		 0);
	return v;
}

static void mx_wr(struct fx *x, uint32_t off, uint64_t v, unsigned int size)
{
	CHECK_EQ(pci_bar_access(&x->f, MEM_BASE + off, false, true, &v, size),
		 0);
}

/* mx_ctrl() - write Message Control. */
static void mx_ctrl(struct fx *x, uint16_t v)
{
	pci_cfg_write(&x->f, x->f.msix_cap + 2, v, 2);
}

/* mx_entry() - program entry @v { addr, data } and its mask bit. */
static void mx_entry(struct fx *x, unsigned int v, uint64_t addr,
		     uint32_t data, bool masked)
{
	mx_wr(x, TBL + v * 16, addr, 8);
	mx_wr(x, TBL + v * 16 + 8, data, 4);
	mx_wr(x, TBL + v * 16 + 12, masked, 4);
}

TEST(msix_add_checks)
{
	struct fx x;
	uint8_t a[6] = { 0 }, o;
	int err;

	fx_init(&x);
	CHECK_EQ(pci_func_add_msix(NULL, 1, 0, TBL, PBA), -EINVAL);
	CHECK_EQ(pci_func_add_msix(&x.f, 0, 0, TBL, PBA), -EINVAL);
	CHECK_EQ(pci_func_add_msix(&x.f, 2049, 0, 0, 0x3f00), -EINVAL);
	CHECK_EQ(pci_func_add_msix(&x.f, 1, 6, TBL, PBA), -EINVAL);
	CHECK_EQ(pci_func_add_msix(&x.f, 1, 1, TBL, PBA), -EINVAL); /* none */
	CHECK_EQ(pci_func_add_msix(&x.f, 1, 2, 0, 0x10), -EINVAL);  /* I/O */
	CHECK_EQ(pci_func_add_msix(&x.f, 1, 0, TBL + 4, PBA), -EINVAL);
	CHECK_EQ(pci_func_add_msix(&x.f, 1, 0, TBL, PBA + 4), -EINVAL);
	/* Windows past the BAR end (70 * 16 bytes; 2 * 8 bytes of PBA). */
	CHECK_EQ(pci_func_add_msix(&x.f, NV, 0, MEM_SIZE - NV * 16 + 16, PBA),
		 -EINVAL);
	CHECK_EQ(pci_func_add_msix(&x.f, NV, 0, TBL, MEM_SIZE - 8), -EINVAL);
	CHECK_EQ(pci_func_add_msix(&x.f, NV, 0, 0xfffffff8u, PBA), -EINVAL);
	/* Overlapping windows. */
	CHECK_EQ(pci_func_add_msix(&x.f, NV, 0, TBL, TBL + NV * 16 - 8),
		 -EINVAL);
	CHECK_EQ(pci_func_add_msix(&x.f, NV, 0, PBA + 8, PBA), -EINVAL);
	/* Nothing changed. */
	CHECK_EQ(x.f.msix_nvec, 0);
	CHECK_U64(pci_cfg_read(&x.f, PCI_CAPABILITY_LIST, 1), 0);
	CHECK_U64(pci_cfg_read(&x.f, PCI_STATUS, 2), 0);
	/* The edges fit: table ending where the PBA starts, at the end. */
	CHECK_EQ(pci_func_add_msix(&x.f, NV, 0, MEM_SIZE - NV * 16 - 16,
				   MEM_SIZE - 16), 0);
	CHECK_EQ(pci_func_add_msix(&x.f, 1, 0, TBL, PBA), -EEXIST);
	CHECK_EQ(x.f.msix_nvec, NV);
	pci_func_destroy(&x.f);

	/* No room left in config space: -ENOSPC, nothing changed. */
	fx_init(&x);
	do
		err = pci_func_add_cap(&x.f, 0x09, a, sizeof(a), &o);
	while (err == 0);
	CHECK_EQ(pci_func_add_msix(&x.f, NV, 0, TBL, PBA), -ENOSPC);
	CHECK_EQ(x.f.msix_nvec, 0);
	CHECK(x.f.msix_table == NULL);
	CHECK_EQ(pci_msix_notify(&x.f, 0), -ENODEV);
	pci_func_destroy(&x.f);

	/* 2048 vectors, the maximum: 32 KiB of table, 256 bytes of PBA. */
	pci_func_init(&x.f, "big", NULL, 1, 2, 0, 0, 0, 0);
	REQUIRE(pci_func_add_bar(&x.f, 0, 0x10000, false, NULL, NULL) == 0);
	CHECK_EQ(pci_func_add_msix(&x.f, 2048, 0, 0, 0x7f00), -EINVAL);
	CHECK_EQ(pci_func_add_msix(&x.f, 2048, 0, 0, 0x8000), 0);
	CHECK_U64(pci_cfg_read(&x.f, x.f.msix_cap + 2, 2), 0x7ff);
	pci_cfg_write(&x.f, x.f.msix_cap + 2, PCI_MSIX_FLAGS_ENABLE, 2);
	CHECK_EQ(pci_msix_set_mask(&x.f, 2047, false), 0);
	CHECK_EQ(pci_msix_notify(&x.f, 2047), 0); /* masked: pending */
	CHECK_EQ(pci_msix_notify(&x.f, 2048), -EINVAL);
	CHECK_U64(x.f.msix_pending[31], 1ull << 63);
	pci_func_destroy(&x.f);
}

/*
 * pci_func_hide_msix(): a link that cannot deliver MSI-X (mpqemu) takes
 * the capability out of the list; the capabilities before it stay.
 */
TEST(msix_hidden_from_the_capability_list)
{
	uint8_t body[2] = { 0 }, vcap, c;
	unsigned int hops = 0;
	bool found = false;
	struct fx x;

	fx_init(&x);
	REQUIRE(pci_func_add_cap(&x.f, PCI_CAP_ID_VNDR, body, sizeof(body),
				 &vcap) == 0);
	REQUIRE(pci_func_add_msix(&x.f, NV, 0, TBL, PBA) == 0);
	pci_func_hide_msix(&x.f);
	for (c = (uint8_t)pci_cfg_read(&x.f, PCI_CAPABILITY_LIST, 1);
	     c && hops < 48; c = (uint8_t)pci_cfg_read(&x.f, c + 1, 1), hops++)
		found |= pci_cfg_read(&x.f, c, 1) == PCI_CAP_ID_MSIX;
	CHECK(!found);
	CHECK_EQ(pci_cfg_read(&x.f, PCI_CAPABILITY_LIST, 1), vcap);
	CHECK_EQ(pci_cfg_read(&x.f, vcap, 1), PCI_CAP_ID_VNDR);
	pci_func_destroy(&x.f);
}

TEST(msix_capability_layout)
{
	struct fx x;
	struct pci_func g;
	uint8_t c;

	fx_init(&x);
	REQUIRE(pci_func_add_msix(&x.f, NV, 0, TBL, PBA) == 0);
	c = (uint8_t)pci_cfg_read(&x.f, PCI_CAPABILITY_LIST, 1);
	CHECK_EQ(c, x.f.msix_cap);
	CHECK(c >= 0x40 && c % 4 == 0);
	CHECK(pci_cfg_read(&x.f, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	CHECK_U64(pci_cfg_read(&x.f, c, 1), PCI_CAP_ID_MSIX);
	CHECK_U64(pci_cfg_read(&x.f, c + 1, 1), 0);
	CHECK_U64(pci_cfg_read(&x.f, c + 2, 2), NV - 1);
	CHECK_U64(pci_cfg_read(&x.f, c + 4, 4), TBL | 0);
	CHECK_U64(pci_cfg_read(&x.f, c + 8, 4), PBA | 0);
	CHECK_U64(pci_cfg_read(&x.f, c, 4), (uint32_t)(NV - 1) << 16 | 0x11);
	/* Message Control: Enable (15) and Function Mask (14) only. */
	pci_cfg_write(&x.f, c + 2, 0xffff, 2);
	CHECK_U64(pci_cfg_read(&x.f, c + 2, 2), 0xc000 | (NV - 1));
	CHECK(pci_msix_enabled(&x.f));
	pci_cfg_write(&x.f, c + 3, 0x40, 1); /* byte write: Enable off */
	CHECK_U64(pci_cfg_read(&x.f, c + 2, 2), 0x4000 | (NV - 1));
	CHECK(!pci_msix_enabled(&x.f));
	pci_cfg_write(&x.f, c + 4, 0xffffffff, 4);
	pci_cfg_write(&x.f, c + 8, 0xffffffff, 4);
	pci_cfg_write(&x.f, c, 0xffffffff, 2);
	CHECK_U64(pci_cfg_read(&x.f, c + 4, 4), TBL);
	CHECK_U64(pci_cfg_read(&x.f, c + 8, 4), PBA);
	CHECK_U64(pci_cfg_read(&x.f, c, 2), 0x11);
	pci_func_destroy(&x.f);

	/* The BIR names the BAR; a later capability links after it. */
	pci_func_init(&g, "g", NULL, 1, 2, 0, 0, 0, 0);
	REQUIRE(pci_func_add_bar(&g, 3, 0x1000, false, NULL, NULL) == 0);
	REQUIRE(pci_func_add_msix(&g, 1, 3, 0x100, 0x808) == 0);
	REQUIRE(pci_func_add_cap(&g, 0x09, NULL, 0, &c) == 0);
	CHECK_U64(pci_cfg_read(&g, g.msix_cap + 2, 2), 0);
	CHECK_U64(pci_cfg_read(&g, g.msix_cap + 4, 4), 0x100 | 3);
	CHECK_U64(pci_cfg_read(&g, g.msix_cap + 8, 4), 0x808 | 3);
	CHECK_U64(pci_cfg_read(&g, g.msix_cap + 1, 1), c);
	pci_func_destroy(&g);
}

TEST(msix_table_access)
{
	struct fx x;
	struct msix_rec m;
	uint64_t v = 0;
	int reads, writes;

	mx_init(&x, &m);
	reads = x.mem.reads;
	writes = x.mem.writes;
	/* Power-on: every entry zero with its mask bit set; PBA clear. */
	for (unsigned int e = 0; e < NV; e++) {
		CHECK_U64(mx_rd(&x, TBL + e * 16, 4), 0);
		CHECK_U64(mx_rd(&x, TBL + e * 16 + 4, 4), 0);
		CHECK_U64(mx_rd(&x, TBL + e * 16 + 8, 8), 1ull << 32);
	}
	CHECK_U64(mx_rd(&x, PBA, 8), 0);
	CHECK_U64(mx_rd(&x, PBA + 8, 8), 0);
	/* Dword and qword writes; address bits 1:0 and control 31:1 read 0. */
	mx_wr(&x, TBL + 5 * 16, 0xfee00003u, 4);
	mx_wr(&x, TBL + 5 * 16 + 4, 0x1, 4);
	mx_wr(&x, TBL + 5 * 16 + 8, 0xfffffffe00004321ull, 8);
	CHECK_U64(mx_rd(&x, TBL + 5 * 16, 8), 0x1fee00000ull);
	CHECK_U64(mx_rd(&x, TBL + 5 * 16 + 8, 4), 0x4321);
	CHECK_U64(mx_rd(&x, TBL + 5 * 16 + 12, 4), 0);
	mx_wr(&x, TBL + 69 * 16, 0xabcd0000fee01000ull, 8);
	CHECK_U64(mx_rd(&x, TBL + 69 * 16 + 4, 4), 0xabcd0000u);
	/* pci_bar_rw() reaches the same table by BAR and offset. */
	CHECK_EQ(pci_bar_rw(&x.f, 0, TBL + 5 * 16 + 8, false, &v, 4), 0);
	CHECK_U64(v, 0x4321);
	v = 0x99;
	CHECK_EQ(pci_bar_rw(&x.f, 0, TBL + 6 * 16 + 8, true, &v, 4), 0);
	CHECK_U64(mx_rd(&x, TBL + 6 * 16 + 8, 4), 0x99);
	v = 0;
	CHECK_EQ(pci_bar_rw(&x.f, 0, PBA, false, &v, 8), 0);
	CHECK_U64(v, 0);
	/* None of that reached the BAR's own handlers... */
	CHECK_EQ(x.mem.reads, reads);
	CHECK_EQ(x.mem.writes, writes);
	/* ...but the rest of the BAR still does, right up to the windows. */
	mx_rd(&x, TBL - 4, 4);
	mx_rd(&x, TBL + NV * 16, 8);
	mx_wr(&x, PBA + 16, 1, 4);
	CHECK_EQ(x.mem.reads, reads + 2);
	CHECK_EQ(x.mem.writes, writes + 1);
	/* Memory decoding off: the table is not reachable by address. */
	pci_cfg_write(&x.f, PCI_COMMAND, 0, 2);
	CHECK_EQ(pci_bar_access(&x.f, MEM_BASE + TBL, false, false, &v, 4),
		 -ENOENT);
	CHECK_EQ(x.rec.lines, 1);
	pci_func_destroy(&x.f);
}

TEST(msix_mask_pending_unmask)
{
	struct fx x;
	struct msix_rec m;

	mx_init(&x, &m);
	mx_entry(&x, 1, 0xfee01000u, 0x31, false);
	mx_entry(&x, 65, 0xfee02000u, 0x32, true);
	mx_entry(&x, 66, 0xfee03000u, 0x33, false);
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE);
	/* Unmasked: delivered at once with the entry's message. */
	CHECK_EQ(pci_msix_notify(&x.f, 1), 0);
	CHECK_EQ(m.calls, 1);
	CHECK_EQ(m.vec, 1);
	CHECK_U64(m.addr, 0xfee01000u);
	CHECK_U64(m.data, 0x31);
	/* Masked by its entry: pending (PBA word 1, bit 1), not sent. */
	CHECK_EQ(pci_msix_notify(&x.f, 65), 0);
	CHECK_EQ(pci_msix_notify(&x.f, 65), 0);
	CHECK_EQ(m.calls, 1);
	CHECK_U64(mx_rd(&x, PBA + 8, 8), 2);
	CHECK_U64(mx_rd(&x, PBA + 8, 4), 2);
	CHECK_U64(mx_rd(&x, PBA + 12, 4), 0);
	CHECK_U64(mx_rd(&x, PBA, 8), 0);
	/* Clearing the mask bit delivers it once and clears the bit. */
	mx_wr(&x, TBL + 65 * 16 + 12, 0, 4);
	CHECK_EQ(m.calls, 2);
	CHECK_EQ(m.count[65], 1);
	CHECK_U64(m.addr, 0xfee02000u);
	CHECK_U64(m.data, 0x32);
	CHECK_U64(mx_rd(&x, PBA + 8, 8), 0);
	mx_wr(&x, TBL + 65 * 16 + 12, 0, 4);
	CHECK_EQ(m.calls, 2);
	/* Function Mask: everything pends; clearing it delivers each once. */
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	CHECK_EQ(pci_msix_notify(&x.f, 66), 0);
	CHECK_EQ(pci_msix_notify(&x.f, 1), 0);
	CHECK_EQ(m.calls, 2);
	CHECK_U64(mx_rd(&x, PBA, 8), 2);
	CHECK_U64(mx_rd(&x, PBA + 8, 8), 4);
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE);
	CHECK_EQ(m.calls, 4);
	CHECK_EQ(m.count[1], 2);
	CHECK_EQ(m.count[66], 1);
	CHECK_EQ(m.vec, 66); /* lowest first */
	CHECK_U64(mx_rd(&x, PBA, 8), 0);
	CHECK_U64(mx_rd(&x, PBA + 8, 8), 0);
	/* Function Mask lifted while the vector is masked: still pending. */
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	mx_wr(&x, TBL + 1 * 16 + 12, 1, 4);
	CHECK_EQ(pci_msix_notify(&x.f, 1), 0);
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE);
	CHECK_EQ(m.calls, 4);
	CHECK_U64(mx_rd(&x, PBA, 8), 2);
	mx_wr(&x, TBL + 1 * 16 + 8, 0x31ull | 0ull << 32, 8); /* qword unmask */
	CHECK_EQ(m.calls, 5);
	CHECK_U64(mx_rd(&x, PBA, 8), 0);
	/* The link's mask: the same rule through pci_msix_set_mask(). */
	CHECK_EQ(pci_msix_set_mask(&x.f, 66, true), 0);
	CHECK_EQ(pci_msix_notify(&x.f, 66), 0);
	CHECK_EQ(m.calls, 5);
	CHECK_U64(mx_rd(&x, PBA + 8, 8), 4);
	mx_wr(&x, TBL + 66 * 16 + 12, 0, 4); /* the table's bit is not it */
	CHECK_EQ(m.calls, 5);
	CHECK_EQ(pci_msix_set_mask(&x.f, 66, false), 0);
	CHECK_EQ(m.calls, 6);
	CHECK_EQ(m.vec, 66);
	CHECK_U64(m.data, 0x33);
	CHECK_U64(mx_rd(&x, PBA + 8, 8), 0);
	CHECK_EQ(pci_msix_set_mask(&x.f, 66, false), 0);
	CHECK_EQ(m.calls, 6);
	CHECK(!m.locked);
	CHECK_EQ(x.rec.lines, 0);
	pci_func_destroy(&x.f);
}

TEST(msix_disabled_and_refusals)
{
	struct fx x;
	struct msix_rec m;

	/* No MSI-X at all. */
	fx_init(&x);
	CHECK_EQ(pci_msix_notify(&x.f, 0), -ENODEV);
	CHECK_EQ(pci_msix_set_mask(&x.f, 0, true), -EINVAL);
	CHECK(!pci_msix_enabled(&x.f));
	pci_func_destroy(&x.f);
	CHECK_EQ(pci_msix_notify(NULL, 0), -EINVAL);
	CHECK_EQ(pci_msix_set_mask(NULL, 0, true), -EINVAL);
	CHECK(!pci_msix_enabled(NULL));

	mx_init(&x, &m);
	mx_entry(&x, 3, 0xfee00000u, 3, false);
	/* Enable clear: -ENODEV and nothing recorded, even when masked. */
	CHECK_EQ(pci_msix_notify(&x.f, 3), -ENODEV);
	mx_ctrl(&x, PCI_MSIX_FLAGS_MASKALL);
	CHECK_EQ(pci_msix_notify(&x.f, 3), -ENODEV);
	CHECK_U64(mx_rd(&x, PBA, 8), 0);
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE);
	CHECK_EQ(m.calls, 0);
	/* Vectors past the table. */
	CHECK_EQ(pci_msix_notify(&x.f, NV), -EINVAL);
	CHECK_EQ(pci_msix_notify(&x.f, ~0u), -EINVAL);
	CHECK_EQ(pci_msix_set_mask(&x.f, NV, true), -EINVAL);
	CHECK_U64(mx_rd(&x, PBA + 8, 8), 0);
	CHECK_EQ(m.calls, 0);
	/* Enabled with no sink: dropped, nothing pending, no crash. */
	x.f.msix_fn = NULL;
	CHECK_EQ(pci_msix_notify(&x.f, 3), 0);
	CHECK_U64(mx_rd(&x, PBA, 8), 0);
	x.f.msix_fn = msix_cb;
	CHECK_EQ(pci_msix_notify(&x.f, 3), 0);
	CHECK_EQ(m.calls, 1);
	pci_func_destroy(&x.f);
}

TEST(msix_peer_table_ignores_table_masks)
{
	struct fx x;
	struct msix_rec m;

	mx_init(&x, &m);
	x.f.msix_peer_table = true;
	/* Our table stays at reset (masked, zero) as behind vfio-user. */
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE);
	CHECK_EQ(pci_msix_notify(&x.f, 7), 0);
	CHECK_EQ(m.calls, 1);
	CHECK_EQ(m.vec, 7);
	CHECK_U64(m.addr, 0);
	CHECK_U64(m.data, 0);
	/* Even a programmed entry's message is not used. */
	mx_entry(&x, 8, 0xfee00000u, 0x55, true);
	CHECK_EQ(pci_msix_notify(&x.f, 8), 0);
	CHECK_EQ(m.calls, 2);
	CHECK_U64(m.addr, 0);
	CHECK_U64(m.data, 0);
	/* The link masks with pci_msix_set_mask(). */
	CHECK_EQ(pci_msix_set_mask(&x.f, 7, true), 0);
	CHECK_EQ(pci_msix_notify(&x.f, 7), 0);
	CHECK_EQ(m.calls, 2);
	CHECK_U64(mx_rd(&x, PBA, 8), 1ull << 7);
	CHECK_EQ(pci_msix_set_mask(&x.f, 7, false), 0);
	CHECK_EQ(m.calls, 3);
	CHECK_EQ(m.vec, 7);
	CHECK_U64(mx_rd(&x, PBA, 8), 0);
	/* Function Mask and Enable still apply. */
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	CHECK_EQ(pci_msix_notify(&x.f, 9), 0);
	CHECK_EQ(m.calls, 3);
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE);
	CHECK_EQ(m.calls, 4);
	CHECK_EQ(m.vec, 9);
	mx_ctrl(&x, 0);
	CHECK_EQ(pci_msix_notify(&x.f, 9), -ENODEV);
	CHECK_EQ(m.calls, 4);
	pci_func_destroy(&x.f);
}

TEST(msix_reset_to_power_on)
{
	struct fx x;
	struct msix_rec m;

	mx_init(&x, &m);
	mx_entry(&x, 2, 0xfee00000u, 0x22, false);
	mx_entry(&x, 3, 0xfee00000u, 0x23, true);
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	CHECK_EQ(pci_msix_set_mask(&x.f, 4, true), 0);
	CHECK_EQ(pci_msix_notify(&x.f, 3), 0);
	CHECK_U64(mx_rd(&x, PBA, 8), 8);
	pci_func_reset(&x.f);
	CHECK_U64(pci_cfg_read(&x.f, x.f.msix_cap + 2, 2), NV - 1);
	CHECK_U64(pci_cfg_read(&x.f, x.f.msix_cap + 4, 4), TBL);
	CHECK(!pci_msix_enabled(&x.f));
	fx_map(&x);
	for (unsigned int e = 0; e < NV; e++) {
		CHECK_U64(mx_rd(&x, TBL + e * 16, 8), 0);
		CHECK_U64(mx_rd(&x, TBL + e * 16 + 8, 8), 1ull << 32);
	}
	CHECK_U64(mx_rd(&x, PBA, 8), 0);
	/* The link's mask is gone too: vector 4 delivers once unmasked. */
	mx_entry(&x, 4, 0xfee00000u, 0x24, false);
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE);
	CHECK_EQ(pci_msix_notify(&x.f, 4), 0);
	CHECK_EQ(m.calls, 1);
	CHECK_U64(m.data, 0x24);
	pci_func_destroy(&x.f);
}

TEST(msix_hostile_accesses)
{
	struct fx x;
	struct msix_rec m;
	uint64_t before[2 * NV], v;
	int lines, reads, writes;

	mx_init(&x, &m);
	for (unsigned int e = 0; e < NV; e++)
		mx_entry(&x, e, 0xfee00000u + e * 4, e, e & 1);
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE);
	CHECK_EQ(pci_msix_notify(&x.f, 69), 0);
	for (unsigned int i = 0; i < 2 * NV; i++)
		before[i] = mx_rd(&x, TBL + i * 8, 8);
	lines = x.rec.lines;
	reads = x.mem.reads;
	writes = x.mem.writes;
	/* Reads: sizes 1 and 2, misaligned, straddling either edge. */
	CHECK_U64(mx_rd(&x, TBL + 12, 1), 0xff);
	CHECK_U64(mx_rd(&x, TBL + 12, 2), 0xffff);
	CHECK_U64(mx_rd(&x, TBL + 2, 4), 0xffffffffu);
	CHECK_U64(mx_rd(&x, TBL + 4, 8), ~0ull);
	CHECK_U64(mx_rd(&x, TBL - 4, 8), ~0ull);
	CHECK_U64(mx_rd(&x, TBL + NV * 16 - 2, 4), 0xffffffffu);
	CHECK_U64(mx_rd(&x, PBA + 8, 2), 0xffff);
	CHECK_U64(mx_rd(&x, PBA + 12, 8), ~0ull);
	CHECK_U64(mx_rd(&x, PBA + 14, 4), 0xffffffffu);
	CHECK_EQ(x.rec.lines, lines + 9);
	/* Writes of the same shapes, and to the PBA: dropped. */
	mx_wr(&x, TBL + 12, 0, 1);
	mx_wr(&x, TBL + 28, 0, 2);
	mx_wr(&x, TBL + 2, 0, 4);
	mx_wr(&x, TBL + 4, 0, 8);
	mx_wr(&x, TBL - 4, 0, 8);
	mx_wr(&x, TBL + NV * 16 - 4, 0, 8);
	mx_wr(&x, PBA, 0, 8);
	mx_wr(&x, PBA + 8, 0, 4);
	mx_wr(&x, PBA + 8, ~0ull, 8);
	mx_wr(&x, PBA + 3, 0, 1);
	CHECK_EQ(x.rec.lines, lines + 19);
	for (unsigned int i = 0; i < 2 * NV; i++)
		CHECK_U64(mx_rd(&x, TBL + i * 8, 8), before[i]);
	CHECK_U64(mx_rd(&x, PBA, 8), 0);
	CHECK_U64(mx_rd(&x, PBA + 8, 8), 1ull << 5); /* vector 69 */
	CHECK_EQ(m.calls, 0);
	CHECK_EQ(x.mem.reads, reads);
	CHECK_EQ(x.mem.writes, writes);
	/* Through pci_bar_rw() too. */
	v = 0;
	CHECK_EQ(pci_bar_rw(&x.f, 0, TBL + 1, false, &v, 1), 0);
	CHECK_U64(v, 0xff);
	v = 0;
	CHECK_EQ(pci_bar_rw(&x.f, 0, PBA + 8, true, &v, 8), 0);
	CHECK_U64(mx_rd(&x, PBA + 8, 8), 1ull << 5);
	/* A flood of bad accesses is rate limited. */
	lines = x.rec.lines;
	for (int i = 0; i < 100000; i++)
		pci_bar_rw(&x.f, 0, TBL + 1, false, &v, 1);
	CHECK(x.rec.lines - lines < 80);
	/* And the vector still works. */
	mx_wr(&x, TBL + 69 * 16 + 12, 0, 4);
	CHECK_EQ(m.calls, 1);
	CHECK_EQ(m.vec, 69);
	pci_func_destroy(&x.f);
}

TEST(msix_enable_suppresses_intx)
{
	struct fx x;
	struct msix_rec m;

	mx_init(&x, &m);
	pci_set_intx(&x.f, true);
	CHECK(x.rec.intx);
	CHECK_EQ(x.rec.intx_calls, 1);
	/* MSI-X Enable: the line the sink sees drops, the status stays. */
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE);
	CHECK(!x.rec.intx);
	CHECK_EQ(x.rec.intx_calls, 2);
	CHECK(pci_cfg_read(&x.f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	pci_set_intx(&x.f, false);
	pci_set_intx(&x.f, true);
	CHECK_EQ(x.rec.intx_calls, 2);
	/* Function Mask does not change that; disabling MSI-X does. */
	mx_ctrl(&x, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	CHECK_EQ(x.rec.intx_calls, 2);
	mx_ctrl(&x, 0);
	CHECK(x.rec.intx);
	CHECK_EQ(x.rec.intx_calls, 3);
	pci_func_destroy(&x.f);
}

/* A signaller racing a masker: the last signal is never lost. */
struct msix_race {
	struct pci_func *f;
	pthread_mutex_t lock; /* sent, seen_last, done (helgrind-friendly) */
	unsigned int sent;      /* signals started */
	unsigned int seen_last; /* value of sent at the latest delivery */
	unsigned int deliveries;
	bool locked;
};

static void race_cb(void *opaque, unsigned int vector, uint64_t addr,
		    uint32_t data)
{
	struct msix_race *r = opaque;

	(void)vector;
	(void)addr;
	(void)data;
	if (pthread_mutex_trylock(&r->f->lock))
		r->locked = true;
	else
		pthread_mutex_unlock(&r->f->lock);
	pthread_mutex_lock(&r->lock);
	r->seen_last = r->sent;
	r->deliveries++;
	pthread_mutex_unlock(&r->lock);
}

static void *race_signaller(void *arg)
{
	struct msix_race *r = arg;

	for (int i = 0; i < 20000; i++) {
		pthread_mutex_lock(&r->lock);
		r->sent++;
		pthread_mutex_unlock(&r->lock);
		pci_msix_notify(r->f, 3);
	}
	return NULL;
}

static void *race_masker(void *arg)
{
	struct msix_race *r = arg;

	for (int i = 0; i < 20000; i++) {
		switch (i % 3) {
		case 0:
			pci_msix_set_mask(r->f, 3, !(i & 1));
			break;
		case 1: /* the table's mask bit */
			pci_bar_rw(r->f, 0, TBL + 3 * 16 + 12,
				   true, &(uint64_t){ (uint64_t)(i & 1) }, 4);
			break;
		default:
			pci_cfg_write(r->f, r->f->msix_cap + 2,
				      PCI_MSIX_FLAGS_ENABLE |
				      (i & 1 ? PCI_MSIX_FLAGS_MASKALL : 0), 2);
			break;
		}
	}
	return NULL;
}

TEST(msix_signal_racing_unmask_is_not_lost)
{
	struct fx x;
	struct msix_race r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	pthread_t a, b;

	fx_init(&x);
	REQUIRE(pci_func_add_msix(&x.f, NV, 0, TBL, PBA) == 0);
	r.f = &x.f;
	x.f.msix_fn = race_cb;
	x.f.msix_opaque = &r;
	pci_cfg_write(&x.f, x.f.msix_cap + 2, PCI_MSIX_FLAGS_ENABLE, 2);
	REQUIRE(pthread_create(&a, NULL, race_signaller, &r) == 0);
	REQUIRE(pthread_create(&b, NULL, race_masker, &r) == 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	/* Lift every mask: a delivery must have seen the last signal. */
	pci_msix_set_mask(&x.f, 3, false);
	pci_bar_rw(&x.f, 0, TBL + 3 * 16 + 12, true, &(uint64_t){ 0 }, 4);
	pci_cfg_write(&x.f, x.f.msix_cap + 2, PCI_MSIX_FLAGS_ENABLE, 2);
	CHECK_EQ(r.sent, 20000);
	CHECK_EQ(r.seen_last, 20000);
	CHECK(r.deliveries >= 1 && r.deliveries <= 20000);
	CHECK(!r.locked);
	CHECK_EQ(x.f.msix_pending[0], 0);
	pci_func_destroy(&x.f);
}

TEST_MAIN()
