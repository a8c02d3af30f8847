/*
 * embed_smmuv3.c - how a VMM embeds our Arm SMMUv3 model: its register
 * frame on the VMM's MMIO bus, its wired interrupts on the VMM's
 * interrupt controller, and endpoints whose DMA it translates.
 *
 * The program plays three parts, each through the public API only
 * (<viommu/viommu.h>):
 *   - the VMM: guest RAM in a sealed memfd, the core context, two
 *     endpoints (PCI 00:01.0 and 00:02.0, StreamIDs 0x8 and 0x10), the
 *     SMMUv3 model, an MMIO dispatch that sends the guest's accesses in
 *     the model's 128 KiB frame to viommu_smmuv3_mmio_read/write(), and
 *     the @irq callback that would raise the SMMU's SPIs on a GIC;
 *   - the guest's SMMUv3 driver, following Linux's arm-smmu-v3 probe and
 *     reset: ID registers, command and event queues, a linear stream
 *     table, CR0 enables each acknowledged through CR0ACK, GBPA, wired
 *     interrupts; then a stage-1 domain: a 4-level LPAE page table with a
 *     4 KiB granule built in guest RAM, a context descriptor (CD) and a
 *     stream table entry (STE), made live by CFGI_CD / CFGI_STE / TLBI and
 *     CMD_SYNC on the command queue;
 *   - the device 00:01.0: it does DMA by IOVA with viommu_dma_write(); a
 *     write to a read-only page becomes an F_PERMISSION record in the
 *     guest's event queue and an EVTQ interrupt, and after the driver
 *     unmaps a page (PTE cleared, TLBI_NH_VA, CMD_SYNC) DMA to it faults.
 * Every step is checked; the exit status is 0 only if every check held.
 * A real VMM keeps the first part and gets the other two from its guest.
 *
 * Encodings are those of the Arm SMMUv3 architecture (IHI 0070) as the
 * Linux driver (drivers/iommu/arm/arm-smmu-v3) uses them.  The guest's
 * stores into its RAM go through the VMM's mapping; the host is assumed
 * little endian, as the tables are.
 */
#include <viommu/viommu.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM_GPA 0x40000000ull   /* 1 MiB of guest RAM, as on QEMU "virt" */
#define RAM_SIZE (1u << 20)
#define SMMU_BASE 0x09050000ull /* the register frame's guest address */
#define EP_SID 0x08u            /* PCI 00:01.0: the device we program */
#define EP2_SID 0x10u           /* PCI 00:02.0: left on its default STE */

/* Guest RAM layout the "driver" uses (offsets from RAM_GPA). */
#define EVTQ_OFF 0x00000u       /* 2^5 events of 32 bytes */
#define CMDQ_OFF 0x01000u       /* 2^8 commands of 16 bytes */
#define STRTAB_OFF 0x02000u     /* 2^6 STEs of 64 bytes */
#define CD_OFF 0x03000u         /* one CD of 64 bytes */
#define PGD_OFF 0x04000u        /* page tables: levels 0, 1, 2, 3 */
#define DATA_OFF 0x10000u       /* the page DMA may write */
#define RO_OFF 0x11000u         /* the page DMA may only read */
#define BYPASS_OFF 0x20000u     /* where bypassed DMA lands */
#define EVTQ_LOG2 5u
#define CMDQ_LOG2 8u
#define STRTAB_LOG2 6u
#define IOVA 0x10000000ull      /* DATA page; RO page at IOVA + 4 KiB */
#define ASID 1u

/* Registers (offsets in the frame). */
#define IDR0 0x00
#define IDR1 0x04
#define IDR5 0x14
#define CR0 0x20
#define CR0ACK 0x24
#define CR1 0x28
#define CR2 0x2c
#define GBPA 0x44
#define IRQ_CTRL 0x50
#define IRQ_CTRLACK 0x54
#define GERROR 0x60
#define GERRORN 0x64
#define GERROR_IRQ_CFG0 0x68
#define STRTAB_BASE 0x80
#define STRTAB_BASE_CFG 0x88
#define CMDQ_BASE 0x90
#define CMDQ_PROD 0x98
#define CMDQ_CONS 0x9c
#define EVTQ_BASE 0xa0
#define EVTQ_IRQ_CFG0 0xb0
#define EVTQ_PROD 0x100a8       /* page 1, where Linux reaches them */
#define EVTQ_CONS 0x100ac

#define CR0_SMMUEN (1u << 0)
#define CR0_EVTQEN (1u << 2)
#define CR0_CMDQEN (1u << 3)
#define CR2_RECINVSID (1u << 1)
#define CR2_PTM (1u << 2)
#define GBPA_UPDATE (1u << 31)
#define GBPA_ABORT (1u << 20)
#define IRQ_EN_GERROR (1u << 0)
#define IRQ_EN_EVTQ (1u << 2)
#define Q_BASE_RA (1ull << 62)  /* Q_BASE.RA/WA, STRTAB_BASE.RA */

/* Commands (first byte of the first doubleword). */
#define CMD_CFGI_STE 0x03
#define CMD_CFGI_ALL 0x04       /* CFGI_STE_RANGE with Range 31 */
#define CMD_CFGI_CD 0x05
#define CMD_TLBI_NH_ASID 0x11
#define CMD_TLBI_NH_VA 0x12
#define CMD_TLBI_NSNH_ALL 0x30
#define CMD_SYNC 0x46

/* Event types. */
#define EVT_F_TRANSLATION 0x10
#define EVT_F_PERMISSION 0x13

/* Stage-1 LPAE descriptor bits (VMSAv8-64), as io-pgtable-arm sets them. */
#define PTE_TABLE 3ull          /* table (levels 0-2) or page (level 3) */
#define PTE_ATTRIDX_WB (1ull << 2) /* MAIR index 1: write-back */
#define PTE_AP_UNPRIV (1ull << 6)  /* AP[1]: unprivileged access */
#define PTE_AP_RDONLY (1ull << 7)  /* AP[2]: read-only */
#define PTE_SH_IS (3ull << 8)
#define PTE_AF (1ull << 10)
#define PTE_NG (1ull << 11)
#define PTE_XN (1ull << 54)

static int checks, failures;

static void check(int ok, const char *what)
{
	checks++;
	if (!ok)
		failures++;
	printf("   %s %s\n", ok ? "[ok]  " : "[FAIL]", what);
}

/* ------------------------------------------------------------------ */
/* The VMM                                                            */

struct vmm {
	int fd;
	uint8_t *ram;                 /* the VMM's view of guest RAM */
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_endpoint *ep, *ep2;
	struct viommu_smmuv3 *smmu;
	unsigned int irqs[5];         /* wired interrupts, per line */
	unsigned int faults;          /* the core's fault reports */
};

/*
 * on_irq() - the model raised a wired interrupt: a VMM asserts the
 * matching SPI on its GIC (QEMU "virt": SPIs 74-77).  It must not call
 * back into the model from here.  We count it.
 */
static void on_irq(void *opaque, enum viommu_smmuv3_irq irq)
{
	struct vmm *v = opaque;

	if ((unsigned int)irq < 5)
		v->irqs[irq]++;
}

/*
 * on_fault() - the core's view of every failed translation (the model
 * also records the architected event for the guest).  A VMM may count or
 * trace them; it must not call back into the context.
 */
static void on_fault(void *opaque, const struct viommu_fault *f)
{
	struct vmm *v = opaque;

	v->faults++;
	printf("   [fault]  StreamID 0x%x %s at IOVA 0x%" PRIx64 ": %s\n",
	       f->endpoint, f->access & VIOMMU_WRITE ? "write" : "read",
	       f->address, viommu_fault_reason_str(f->reason));
}

static void on_log(void *opaque, enum viommu_log_level level,
		   const char *line)
{
	(void)opaque;
	(void)level;
	printf("   [log]    %s\n", line);
}

/* vmm_create() - RAM, context, endpoints, the model. */
static int vmm_create(struct vmm *v)
{
	struct viommu_mem_region r = { .gpa = RAM_GPA, .size = RAM_SIZE };
	struct viommu_ctx_config cc = {
		.size = sizeof(cc),
		.log = { .fn = on_log, .level = VIOMMU_LOG_WARN },
		.fault = on_fault,
		.fault_opaque = v,
	};
	struct viommu_smmuv3_config sc = {
		.size = sizeof(sc),
		.log = { .fn = on_log, .level = VIOMMU_LOG_WARN },
		.sid_bits = 16,
		.irq = on_irq,
		.irq_opaque = v,
	};
	int rc;

	v->fd = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	/* sealed against shrinking: viommu refuses RAM that can vanish */
	if (v->fd < 0 || ftruncate(v->fd, RAM_SIZE) ||
	    fcntl(v->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		return -errno;
	v->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->fd, 0);
	if (v->ram == MAP_FAILED)
		return -errno;
	r.fd = v->fd;
	if ((rc = viommu_mem_create(NULL, &v->mem)) ||
	    (rc = viommu_mem_set_regions(v->mem, &r, 1)))
		return rc;
	cc.mem = v->mem;
	if ((rc = viommu_ctx_create(&cc, &v->ctx)) ||
	    (rc = viommu_endpoint_create(v->ctx, EP_SID, &v->ep)) ||
	    (rc = viommu_endpoint_create(v->ctx, EP2_SID, &v->ep2)))
		return rc;
	sc.ctx = v->ctx;
	sc.mem = v->mem;
	if ((rc = viommu_smmuv3_create(&sc, &v->smmu)) ||
	    (rc = viommu_smmuv3_add_endpoint(v->smmu, v->ep)))
		return rc;
	return viommu_smmuv3_add_endpoint(v->smmu, v->ep2);
}

static void vmm_destroy(struct vmm *v)
{
	/* endpoints out of the model, the model, then what it uses */
	if (v->smmu) {
		if (v->ep)
			viommu_smmuv3_remove_endpoint(v->smmu, v->ep);
		if (v->ep2)
			viommu_smmuv3_remove_endpoint(v->smmu, v->ep2);
	}
	viommu_smmuv3_destroy(v->smmu);
	viommu_ctx_destroy(v->ctx);  /* destroys the endpoints too */
	viommu_mem_destroy(v->mem);
	if (v->ram != MAP_FAILED)
		munmap(v->ram, RAM_SIZE);
	if (v->fd >= 0)
		close(v->fd);
}

/*
 * bus_mmio() - the VMM's MMIO dispatch: a guest access at @addr in the
 * SMMU's frame becomes a register access at an offset.  Anything else
 * would go to other devices.
 */
static int bus_mmio(struct vmm *v, uint64_t addr, unsigned int size,
		    bool write, uint64_t *val)
{
	if (addr < SMMU_BASE || addr - SMMU_BASE >= VIOMMU_SMMUV3_MMIO_SIZE)
		return -ENOENT;
	return write ? viommu_smmuv3_mmio_write(v->smmu, addr - SMMU_BASE,
						size, *val)
		     : viommu_smmuv3_mmio_read(v->smmu, addr - SMMU_BASE,
					       size, val);
}

/* ------------------------------------------------------------------ */
/* The guest's SMMUv3 driver, reaching the SMMU only through the bus   */

struct drv {
	struct vmm *v;
	uint32_t cmdq_prod;           /* with the wrap bit */
	uint32_t evtq_cons;
	int err;                      /* a refused MMIO access or timeout */
};

static uint32_t rd32(struct drv *d, uint32_t off)
{
	uint64_t val = 0;

	if (bus_mmio(d->v, SMMU_BASE + off, 4, false, &val))
		d->err = -EIO;
	return (uint32_t)val;
}

static void wr32(struct drv *d, uint32_t off, uint32_t val)
{
	uint64_t v64 = val;

	if (bus_mmio(d->v, SMMU_BASE + off, 4, true, &v64))
		d->err = -EIO;
}

static void wr64(struct drv *d, uint32_t off, uint64_t val)
{
	if (bus_mmio(d->v, SMMU_BASE + off, 8, true, &val))
		d->err = -EIO;
}

/* put64() / get64() - the guest's stores and loads in its RAM. */
static void put64(struct drv *d, uint32_t off, uint64_t val)
{
	memcpy(d->v->ram + off, &val, 8);
}

static uint64_t get64(struct drv *d, uint32_t off)
{
	uint64_t val;

	memcpy(&val, d->v->ram + off, 8);
	return val;
}

/* poll32() - wait (a bounded number of reads) for @off to read @want. */
static int poll32(struct drv *d, uint32_t off, uint32_t mask, uint32_t want)
{
	for (int i = 0; i < 1000; i++)
		if ((rd32(d, off) & mask) == want)
			return 0;
	d->err = -ETIMEDOUT;
	return -ETIMEDOUT;
}

/* write_cr0() - CR0 = @val, then the CR0ACK handshake. */
static int write_cr0(struct drv *d, uint32_t val)
{
	wr32(d, CR0, val);
	return poll32(d, CR0ACK, ~0u, val);
}

/*
 * update_gbpa() - the GBPA handshake: wait for UPDATE clear, write the
 * new fields with UPDATE set, wait until the SMMU has taken them.
 */
static int update_gbpa(struct drv *d, uint32_t set, uint32_t clr)
{
	uint32_t reg;

	if (poll32(d, GBPA, GBPA_UPDATE, 0))
		return -ETIMEDOUT;
	reg = (rd32(d, GBPA) & ~clr) | set;
	wr32(d, GBPA, reg | GBPA_UPDATE);
	return poll32(d, GBPA, GBPA_UPDATE, 0);
}

/*
 * cmdq_issue() - write @n commands (two doublewords each) and a CMD_SYNC
 * (CS = SIG_NONE) at PROD, publish PROD once, then wait for CMDQ_CONS to
 * reach it with no command error in GERROR.
 */
static int cmdq_issue(struct drv *d, const uint64_t (*cmds)[2],
		      unsigned int n)
{
	const uint32_t wrap = (2u << CMDQ_LOG2) - 1;
	const uint32_t idx = (1u << CMDQ_LOG2) - 1;

	for (unsigned int i = 0; i <= n; i++) {
		uint32_t at = CMDQ_OFF + 16u * (d->cmdq_prod & idx);

		put64(d, at, i < n ? cmds[i][0] : CMD_SYNC);
		put64(d, at + 8, i < n ? cmds[i][1] : 0);
		d->cmdq_prod = (d->cmdq_prod + 1) & wrap;
	}
	/* a real driver has a write barrier (dma_wmb) here */
	wr32(d, CMDQ_PROD, d->cmdq_prod);
	if (poll32(d, CMDQ_CONS, wrap, d->cmdq_prod))
		return -ETIMEDOUT;
	return (rd32(d, GERROR) ^ rd32(d, GERRORN)) & 1 ? -EIO : d->err;
}

/* cmd1() - one command and a CMD_SYNC. */
static int cmd1(struct drv *d, uint64_t d0, uint64_t d1)
{
	const uint64_t c[1][2] = { { d0, d1 } };

	return cmdq_issue(d, c, 1);
}

/*
 * evt_pop() - the next record of the event queue into @ev (4
 * doublewords), CONS advanced.  Return: 1, or 0 when the queue is empty.
 */
static int evt_pop(struct drv *d, uint64_t ev[4])
{
	const uint32_t wrap = (2u << EVTQ_LOG2) - 1;
	const uint32_t idx = (1u << EVTQ_LOG2) - 1;
	uint32_t prod = rd32(d, EVTQ_PROD) & wrap;

	if (prod == d->evtq_cons)
		return 0;
	for (int i = 0; i < 4; i++)
		ev[i] = get64(d, EVTQ_OFF + 32u * (d->evtq_cons & idx) + 8 * i);
	d->evtq_cons = (d->evtq_cons + 1) & wrap;
	wr32(d, EVTQ_CONS, d->evtq_cons);
	return 1;
}

/*
 * drv_probe() - the ID registers, the way arm_smmu_device_hw_probe()
 * reads them: stage 1, AArch64 tables, little-endian, 4 KiB granule,
 * enough StreamID bits for our table.
 */
static int drv_probe(struct drv *d, uint32_t *idr0)
{
	uint32_t i0 = rd32(d, IDR0), i1 = rd32(d, IDR1), i5 = rd32(d, IDR5);
	static const unsigned int oas[] = { 32, 36, 40, 42, 44, 48, 52, 52 };

	*idr0 = i0;
	printf("         IDR0 0x%08x (S1P %u, S2P %u, TTF %u, MSI %u), "
	       "IDR1 SIDSIZE %u,\n         IDR5 OAS %u bits, 4K granule %u\n",
	       i0, (i0 >> 1) & 1, i0 & 1, (i0 >> 2) & 3, (i0 >> 13) & 1,
	       i1 & 0x3f, oas[i5 & 7], (i5 >> 4) & 1);
	if (!(i0 & 2) || !((i0 >> 2) & 2) || ((i0 >> 21) & 3) == 3 ||
	    (i1 & 0x3f) < STRTAB_LOG2 || !(i5 & (1u << 4)) ||
	    ((i1 >> 21) & 0x1f) < CMDQ_LOG2 || ((i1 >> 16) & 0x1f) < EVTQ_LOG2)
		return -ENODEV;
	return d->err;
}

/* default_stes() - every STE "valid, abort": no stream goes anywhere. */
static void default_stes(struct drv *d)
{
	for (uint32_t s = 0; s < (1u << STRTAB_LOG2); s++) {
		put64(d, STRTAB_OFF + 64 * s, 1);   /* V = 1, Config = abort */
		for (int i = 1; i < 8; i++)
			put64(d, STRTAB_OFF + 64 * s + 8 * i, 0);
	}
}

/*
 * drv_reset() - arm_smmu_device_reset(): block bypass while the SMMU is
 * reprogrammed, disable, point the SMMU at the stream table and the
 * command queue, enable the queue, invalidate every cached
 * configuration and TLB entry, enable the event queue and wired
 * interrupts, then SMMUEN.  Every CR0 write waits for CR0ACK.
 */
static int drv_reset(struct drv *d, uint32_t idr0)
{
	int rc;

	if ((rc = update_gbpa(d, GBPA_ABORT, 0)) || (rc = write_cr0(d, 0)))
		return rc;
	/* CR1: queues and tables inner-shareable, write-back cacheable */
	wr32(d, CR1, (3u << 10) | (1u << 8) | (1u << 6) | (3u << 4) |
	     (1u << 2) | 1u);
	wr32(d, CR2, CR2_PTM | CR2_RECINVSID);
	default_stes(d);
	wr64(d, STRTAB_BASE, Q_BASE_RA | (RAM_GPA + STRTAB_OFF));
	wr32(d, STRTAB_BASE_CFG, STRTAB_LOG2);       /* FMT 0: linear */
	wr64(d, CMDQ_BASE, Q_BASE_RA | (RAM_GPA + CMDQ_OFF) | CMDQ_LOG2);
	wr32(d, CMDQ_PROD, 0);
	wr32(d, CMDQ_CONS, 0);
	d->cmdq_prod = 0;
	if ((rc = write_cr0(d, CR0_CMDQEN)) ||
	    (rc = cmd1(d, CMD_CFGI_ALL, 31)) ||
	    (rc = cmd1(d, CMD_TLBI_NSNH_ALL, 0)))
		return rc;
	wr64(d, EVTQ_BASE, Q_BASE_RA | (RAM_GPA + EVTQ_OFF) | EVTQ_LOG2);
	wr32(d, EVTQ_PROD, 0);
	wr32(d, EVTQ_CONS, 0);
	d->evtq_cons = 0;
	if ((rc = write_cr0(d, CR0_CMDQEN | CR0_EVTQEN)))
		return rc;
	/* interrupts: off, wired (no MSI address), on */
	wr32(d, IRQ_CTRL, 0);
	if ((rc = poll32(d, IRQ_CTRLACK, ~0u, 0)))
		return rc;
	if (idr0 & (1u << 13)) {
		wr64(d, GERROR_IRQ_CFG0, 0);
		wr64(d, EVTQ_IRQ_CFG0, 0);
	}
	wr32(d, IRQ_CTRL, IRQ_EN_GERROR | IRQ_EN_EVTQ);
	if ((rc = poll32(d, IRQ_CTRLACK, ~0u, IRQ_EN_GERROR | IRQ_EN_EVTQ)))
		return rc;
	return write_cr0(d, CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
}

/*
 * build_tables() - a 48-bit stage-1 address space, 4 KiB granule, four
 * levels: IOVA -> DATA page read-write, IOVA + 4 KiB -> RO page
 * read-only.  Both IOVAs share the level-0, -1 and -2 entries.
 */
static void build_tables(struct drv *d)
{
	const uint64_t leaf = PTE_TABLE | PTE_ATTRIDX_WB | PTE_AP_UNPRIV |
			      PTE_SH_IS | PTE_AF | PTE_NG | PTE_XN;
	uint32_t tbl[4];

	for (int l = 0; l < 4; l++) {
		tbl[l] = PGD_OFF + 0x1000u * l;
		memset(d->v->ram + tbl[l], 0, 0x1000);
	}
	for (int l = 0; l < 3; l++) {
		unsigned int i = (IOVA >> (39 - 9 * l)) & 0x1ff;

		put64(d, tbl[l] + 8 * i, (RAM_GPA + tbl[l + 1]) | PTE_TABLE);
	}
	put64(d, tbl[3] + 8 * ((IOVA >> 12) & 0x1ff),
	      (RAM_GPA + DATA_OFF) | leaf);
	put64(d, tbl[3] + 8 * (((IOVA >> 12) + 1) & 0x1ff),
	      (RAM_GPA + RO_OFF) | leaf | PTE_AP_RDONLY);
}

/* pte_off() - where the level-3 entry of @iova lives. */
static uint32_t pte_off(uint64_t iova)
{
	return PGD_OFF + 0x3000u + 8u * ((iova >> 12) & 0x1ff);
}

/*
 * install_domain() - the CD, then the STE pointing at it, each made live
 * with its CFGI + CMD_SYNC (the order Linux follows: the CD is in place
 * before an STE can reach it).
 */
static int install_domain(struct drv *d)
{
	const uint64_t cd0 =
		16 |                     /* T0SZ: 48-bit input */
		(0ull << 6) |            /* TG0: 4 KiB */
		(1ull << 8) | (1ull << 10) | /* IRGN0, ORGN0: write-back */
		(3ull << 12) |           /* SH0: inner shareable */
		(1ull << 30) |           /* EPD1: no TTB1 */
		(1ull << 31) |           /* V */
		(5ull << 32) |           /* IPS: 48 bits */
		(1ull << 41) |           /* AA64 */
		(1ull << 45) |           /* R: record faults as events */
		(1ull << 46) | (1ull << 47) | /* A, ASET */
		((uint64_t)ASID << 48);
	const uint64_t cmds[2][2] = {
		{ CMD_CFGI_STE | ((uint64_t)EP_SID << 32), 1 }, /* leaf */
		{ CMD_TLBI_NH_ASID | ((uint64_t)ASID << 48), 0 },
	};
	uint32_t ste = STRTAB_OFF + 64 * EP_SID;
	int rc;

	put64(d, CD_OFF + 0, cd0);
	put64(d, CD_OFF + 8, RAM_GPA + PGD_OFF);    /* TTB0 */
	put64(d, CD_OFF + 16, 0);
	put64(d, CD_OFF + 24, 0x04ff44);            /* MAIR: NC, WB, dev */
	for (int i = 4; i < 8; i++)
		put64(d, CD_OFF + 8 * i, 0);
	if ((rc = cmd1(d, CMD_CFGI_CD | ((uint64_t)EP_SID << 32), 1)))
		return rc;
	/* STE: Config = stage 1 only, one CD (S1CDMax 0), linear */
	put64(d, ste + 8, (1ull << 2) | (1ull << 4) | (3ull << 6));
	put64(d, ste + 0, 1 | (5ull << 1) | (RAM_GPA + CD_OFF));
	return cmdq_issue(d, cmds, 2);
}

/* ------------------------------------------------------------------ */
/* The story                                                          */

static void step_bypass(struct vmm *v)
{
	static const char msg[] = "before any driver";

	printf("\n2. Out of reset SMMUEN = 0 and GBPA.ABORT = 0: "
	       "transactions bypass.\n");
	check(!viommu_dma_write(v->ep, VIOMMU_NO_PASID, RAM_GPA + BYPASS_OFF,
				msg, sizeof(msg)) &&
	      !strcmp((char *)v->ram + BYPASS_OFF, msg),
	      "00:01.0's DMA to GPA 0x40020000 lands untranslated");
}

static void step_reset(struct vmm *v, struct drv *d)
{
	uint32_t idr0 = 0;
	int rc;

	printf("\n3. The guest's driver probes the ID registers and runs "
	       "Linux's reset sequence:\n   GBPA abort, CR0 = 0, stream "
	       "table (linear, 64 STEs, all abort), command\n   queue + "
	       "CMDQEN, CFGI_ALL, TLBI_NSNH_ALL, event queue + EVTQEN, "
	       "wired\n   interrupts, SMMUEN; each CR0 write acknowledged "
	       "in CR0ACK.\n");
	check(!drv_probe(d, &idr0), "stage 1, AArch64 tables, 4 KiB "
	      "granule, queues and StreamIDs big enough");
	rc = drv_reset(d, idr0);
	check(!rc && rd32(d, CR0ACK) == (CR0_CMDQEN | CR0_EVTQEN |
					 CR0_SMMUEN),
	      "SMMU enabled: CR0ACK = CMDQEN | EVTQEN | SMMUEN");
	check(rd32(d, GBPA) & GBPA_ABORT, "GBPA.ABORT set, UPDATE clear");
	check(viommu_dma_write(v->ep, VIOMMU_NO_PASID, RAM_GPA + BYPASS_OFF,
			       "x", 1) == -EFAULT,
	      "00:01.0's DMA is refused now: its STE says abort");
}

static void step_map(struct vmm *v, struct drv *d)
{
	static const char msg[] = "written by 00:01.0 through the SMMU";
	char back[sizeof(msg)] = { 0 };

	printf("\n4. A stage-1 domain for 00:01.0 (ASID %u): page tables, "
	       "CD, STE; CFGI_CD,\n   CFGI_STE, TLBI_NH_ASID, each batch "
	       "ended by CMD_SYNC.  IOVA 0x%llx ->\n   GPA 0x%llx "
	       "(read-write), IOVA 0x%llx -> GPA 0x%llx (read-only).\n",
	       ASID, (unsigned long long)IOVA,
	       (unsigned long long)(RAM_GPA + DATA_OFF),
	       (unsigned long long)IOVA + 0x1000,
	       (unsigned long long)(RAM_GPA + RO_OFF));
	build_tables(d);
	memcpy(v->ram + RO_OFF, "read-only data", 15);
	check(!install_domain(d) && rd32(d, CMDQ_CONS) == d->cmdq_prod,
	      "commands consumed: CMDQ_CONS caught up with PROD, no CERROR");
	check(!viommu_dma_write(v->ep, VIOMMU_NO_PASID, IOVA, msg,
				sizeof(msg)) &&
	      !strcmp((char *)v->ram + DATA_OFF, msg),
	      "DMA write at IOVA 0x10000000 landed at GPA 0x40010000");
	check(!viommu_dma_read(v->ep, VIOMMU_NO_PASID, IOVA + 0x1000, back,
			       15) && !strcmp(back, "read-only data"),
	      "DMA read of the read-only page works");
	check(viommu_dma_write(v->ep2, VIOMMU_NO_PASID, IOVA, "x", 1) ==
	      -EFAULT, "00:02.0, still on its abort STE, is refused");
}

static void step_permission(struct vmm *v, struct drv *d)
{
	unsigned int irqs = v->irqs[VIOMMU_SMMUV3_IRQ_EVTQ];
	uint64_t ev[4] = { 0 };
	int got;

	printf("\n5. 00:01.0 writes to the read-only page: the SMMU records "
	       "F_PERMISSION in the\n   guest's event queue and raises the "
	       "EVTQ interrupt.\n");
	check(viommu_dma_write(v->ep, VIOMMU_NO_PASID, IOVA + 0x1000, "x",
			       1) == -EFAULT &&
	      !strcmp((char *)v->ram + RO_OFF, "read-only data"),
	      "the write is refused; the page is untouched");
	check(v->irqs[VIOMMU_SMMUV3_IRQ_EVTQ] == irqs + 1,
	      "the EVTQ line fired once");
	got = evt_pop(d, ev);
	printf("         event: type 0x%02x, StreamID 0x%x, %s, input "
	       "address 0x%" PRIx64 "\n", (unsigned int)(ev[0] & 0xff),
	       (unsigned int)(ev[0] >> 32), ev[1] & (1ull << 35) ? "read" :
	       "write", ev[2]);
	check(got == 1 && (ev[0] & 0xff) == EVT_F_PERMISSION &&
	      (ev[0] >> 32) == EP_SID && !(ev[1] & (1ull << 35)) &&
	      ev[2] == IOVA + 0x1000,
	      "the guest reads F_PERMISSION, StreamID 0x8, write, IOVA "
	      "0x10001000");
	check(!evt_pop(d, ev), "and nothing else");
}

static void step_unmap(struct vmm *v, struct drv *d)
{
	const uint64_t inv[1][2] = { {
		CMD_TLBI_NH_VA | ((uint64_t)ASID << 48),
		(IOVA & ~0xfffull) | 1,            /* Leaf */
	} };
	struct viommu_smmuv3_stats before, after;
	uint64_t ev[4] = { 0 };

	printf("\n6. The driver unmaps IOVA 0x10000000: PTE cleared, "
	       "TLBI_NH_VA + CMD_SYNC.\n   The next DMA there faults.\n");
	put64(d, pte_off(IOVA), 0);
	viommu_smmuv3_stats(v->smmu, &before, sizeof(before));
	check(!cmdq_issue(d, inv, 1), "TLBI_NH_VA and CMD_SYNC completed");
	viommu_smmuv3_stats(v->smmu, &after, sizeof(after));
	check(after.invalidations > before.invalidations,
	      "the TLBI dropped the cached translation of IOVA 0x10000000");
	check(viommu_dma_write(v->ep, VIOMMU_NO_PASID, IOVA, "y", 1) ==
	      -EFAULT && v->ram[DATA_OFF] == 'w',
	      "DMA after the unmap is refused (no stale TLB entry)");
	check(evt_pop(d, ev) == 1 && (ev[0] & 0xff) == EVT_F_TRANSLATION &&
	      ev[2] == IOVA, "event: F_TRANSLATION at IOVA 0x10000000");
	check(!viommu_dma_read(v->ep, VIOMMU_NO_PASID, IOVA + 0x1000, ev, 8),
	      "the read-only page is still mapped");
}

int main(void)
{
	struct vmm v = { .fd = -1, .ram = MAP_FAILED };
	struct drv d = { .v = &v };
	struct viommu_smmuv3_stats st;
	int rc;

	printf("viommu %s: a VMM embedding the SMMUv3 model\n",
	       viommu_version());
	printf("\n1. Guest RAM (1 MiB memfd at GPA 0x%llx), context, "
	       "endpoints 00:01.0 and\n   00:02.0, the SMMUv3 model with "
	       "its frame at 0x%llx and wired interrupts.\n",
	       (unsigned long long)RAM_GPA, (unsigned long long)SMMU_BASE);
	rc = vmm_create(&v);
	check(!rc, "VMM objects created, both endpoints behind the SMMU");
	if (rc)
		goto out;
	step_bypass(&v);
	step_reset(&v, &d);
	step_map(&v, &d);
	step_permission(&v, &d);
	step_unmap(&v, &d);
	check(!viommu_smmuv3_stats(v.smmu, &st, sizeof(st)) && st.events == 2 &&
	      st.events_lost == 0 && st.cmd_errors == 0 && st.syncs == 5,
	      "the model's counters agree: 2 events, 5 CMD_SYNCs, no "
	      "command error");
	check(v.faults == 4 && !v.irqs[VIOMMU_SMMUV3_IRQ_GERROR],
	      "the core reported the 4 failed DMAs; no global error");
	check(!d.err, "every register access was accepted");
out:
	vmm_destroy(&v);
	printf("\n%d checks, %d failed\n", checks, failures);
	return failures || rc ? 1 : 0;
}
