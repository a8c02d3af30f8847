/*
 * pci.h - one emulated PCI function, device side: a type-0 configuration
 * header with write masks, a capability list, up to six 32-bit memory (or
 * I/O) BARs with real sizing semantics, and INTx pin A.
 *
 * A link (src/link/) feeds it the guest's configuration and BAR accesses;
 * a device model (virtio-pci transport, DMA engine) registers BAR handlers
 * and raises INTx.  BAR accesses arrive as absolute guest-physical
 * addresses (the mpqemu protocol's form) and are routed by the BAR base the
 * guest programmed, only while the command register enables memory (or
 * I/O) decoding.
 *
 * MSI-X (PCI Local Bus 3.0 §6.8.2) is optional: pci_func_add_msix() adds
 * the capability and serves the vector table and the pending-bit array
 * (PBA) in windows of one of the function's memory BARs; a device model
 * signals a vector with pci_msix_notify() and the link receives the
 * message through msix_fn.  While MSI-X Enable is set the INTx line the
 * sink sees stays low (the function must not use INTx then).
 *
 * Thread safety: configuration accesses and BAR routing take the
 * function's lock; BAR handlers run without it (a device model serialises
 * its own state) and may call pci_set_intx() and pci_msix_notify().  Every
 * interrupt delivery (intx_fn, msix_fn) runs with f->intx_lock held and
 * f->lock not held: a sink must not call back into this function's
 * pci_set_intx(), pci_msix_*(), pci_cfg_write() or pci_bar_access()/
 * pci_bar_rw() on an MSI-X window, and a link that installs or removes a
 * sink does so under f->intx_lock, after which no older call is running.
 */
#ifndef VIOMMU_PCI_H
#define VIOMMU_PCI_H

#include <viommu/common.h>
#include <pthread.h>

#include "base/util.h"

#define PCI_CFG_SIZE 256
#define PCI_NUM_BARS 6

/* Standard header offsets used by models and tests. */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_INTERRUPT 0x8
#define PCI_STATUS_CAP_LIST 0x10

#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

/* MSI-X capability fields (from the capability's start) and bits. */
#define PCI_MSIX_FLAGS 2            /* Message Control, 16 bits */
#define PCI_MSIX_TABLE 4            /* Table Offset | BIR, 32 bits */
#define PCI_MSIX_PBA 8              /* PBA Offset | BIR, 32 bits */
#define PCI_MSIX_CAP_LEN 12
#define PCI_MSIX_FLAGS_QSIZE 0x07FF /* table size - 1 */
#define PCI_MSIX_FLAGS_MASKALL 0x4000
#define PCI_MSIX_FLAGS_ENABLE 0x8000
#define PCI_MSIX_BIR_MASK 0x7
#define PCI_MSIX_MAX_VECTORS 2048

/* MSI-X table entry: 16 bytes, four little-endian dwords. */
#define PCI_MSIX_ENTRY_SIZE 16
#define PCI_MSIX_ENTRY_ADDR_LO 0x0
#define PCI_MSIX_ENTRY_ADDR_HI 0x4
#define PCI_MSIX_ENTRY_DATA 0x8
#define PCI_MSIX_ENTRY_CTRL 0xc
#define PCI_MSIX_ENTRY_CTRL_MASKBIT 0x00000001

/* BAR handlers: @off is relative to the BAR, @size 1, 2, 4 or 8. */
struct pci_bar_ops {
	uint64_t (*read)(void *opaque, uint64_t off, unsigned int size);
	void (*write)(void *opaque, uint64_t off, uint64_t val,
		      unsigned int size);
};

struct pci_bar {
	uint32_t size; /* power of two >= 16 (memory) or >= 4 (I/O); 0: none */
	bool io;
	const struct pci_bar_ops *ops;
	void *opaque;
};

struct pci_func {
	pthread_mutex_t lock;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];  /* bits the guest may write */
	uint8_t w1cmask[PCI_CFG_SIZE]; /* write-one-to-clear bits */
	uint8_t cap_end;               /* next free config offset for caps */
	uint8_t last_cap;              /* offset of the last capability */
	struct pci_bar bars[PCI_NUM_BARS];
	bool intx_level;
	/* INTx sink (the link writes its irqfd); called without f->lock. */
	void (*intx_fn)(void *opaque, bool level);
	void *intx_opaque;
	/*
	 * Orders INTx and MSI-X deliveries: taken before f->lock, held around
	 * intx_fn and msix_fn; install or remove either sink under it.
	 */
	pthread_mutex_t intx_lock;
	bool intx_out;          /* the level last handed to intx_fn */
	struct ratelimit rl;    /* log lines of refused guest accesses */
	/* device reset hook (mpqemu DEVICE_RESET, or bus reset) */
	void (*reset_fn)(void *opaque);
	void *reset_opaque;
	/*
	 * Config accesses the model wants to see (e.g. virtio PCI-cfg cap),
	 * both called without f->lock for well-formed accesses below
	 * PCI_CFG_SIZE: cfg_read_fn before the bytes are read (it may update
	 * them under f->lock, or set *handled and supply the value);
	 * cfg_write_fn after the write went through the write masks.
	 */
	void (*cfg_write_fn)(void *opaque, uint32_t off, uint32_t val,
			     unsigned int len);
	uint32_t (*cfg_read_fn)(void *opaque, uint32_t off, unsigned int len,
				bool *handled);
	void *cfg_opaque;
	const struct viommu_log *log;
	const char *name;

	/*
	 * MSI-X state, set up by pci_func_add_msix(); nvec 0 = no MSI-X.  The
	 * layout fields never change once set; the table and the two bitmaps
	 * (one allocation, nvec entries / bits) are guarded by f->lock.
	 */
	unsigned int msix_nvec;
	uint8_t msix_cap;           /* config offset of the capability */
	uint8_t msix_bar;           /* the BAR holding table and PBA */
	uint32_t msix_table_off;    /* offsets in that BAR */
	uint32_t msix_pba_off;
	uint32_t (*msix_table)[4];  /* addr lo, addr hi, data, vector ctrl */
	uint64_t *msix_pending;     /* the PBA: a signal met a mask */
	uint64_t *msix_peer_masked; /* pci_msix_set_mask() bits */
	/*
	 * The embedder's own sink (viommu_pci_func_attach()), reached through
	 * trampolines installed as intx_fn/msix_fn with f as their opaque;
	 * set and cleared under f->intx_lock.
	 */
	void (*ext_intx)(void *opaque, bool level);
	void (*ext_msix)(void *opaque, unsigned int vector, uint64_t addr,
			 uint32_t data);
	void *ext_opaque;
	/* MSI-X sink: called without f->lock to deliver an unmasked vector. */
	void (*msix_fn)(void *opaque, unsigned int vector, uint64_t addr,
			uint32_t data);
	void *msix_opaque;
	/*
	 * true when the link's peer emulates the MSI-X table itself (QEMU's
	 * vfio-user client does: the guest's table writes never reach us, so
	 * our table's mask bits stay at their reset value): then the
	 * per-vector mask bits of our table and the addr/data are ignored,
	 * msix_fn gets addr = data = 0, and the link masks vectors with
	 * pci_msix_set_mask().  Function Mask and MSI-X Enable in the
	 * capability still apply (QEMU forwards config writes).  Change it
	 * under f->intx_lock (deliveries read it holding that lock), or
	 * before the function is in use.
	 */
	bool msix_peer_table;
};

/*
 * pci_func_init() - a function with the given IDs and class code (24 bits:
 * class, subclass, prog-if), interrupt pin A, status CAP_LIST once a
 * capability is added.
 */
void pci_func_init(struct pci_func *f, const char *name,
		   const struct viommu_log *log, uint16_t vendor,
		   uint16_t device, uint32_t class_code, uint8_t revision,
		   uint16_t subsys_vendor, uint16_t subsys);
/* pci_func_destroy() - release the function (and its MSI-X table). */
void pci_func_destroy(struct pci_func *f);

/* pci_func_add_bar() - declare BAR @idx.  Return: 0; -EINVAL. */
int pci_func_add_bar(struct pci_func *f, unsigned int idx, uint32_t size,
		     bool io, const struct pci_bar_ops *ops, void *opaque);

/*
 * pci_func_add_cap() - append a capability: @body is the capability from
 * its byte 2 on (after ID and next), @len its length.  *@off receives the
 * capability's config offset (dword aligned).  The capability is read-only
 * unless the model opens bits with pci_func_set_wmask().
 * Return: 0; -EINVAL (NULL @body with @len > 0); -ENOSPC.
 */
int pci_func_add_cap(struct pci_func *f, uint8_t id, const void *body,
		     unsigned int len, uint8_t *off);

/*
 * pci_func_set_wmask() - let the guest write the bits of @mask (little
 * endian, @len 1..4 bytes) at config offset @off, e.g. in a capability.
 * Return: 0; -EINVAL (range outside the config space).
 */
int pci_func_set_wmask(struct pci_func *f, uint32_t off, uint32_t mask,
		       unsigned int len);

/*
 * pci_cfg_read() / pci_cfg_write() - a guest configuration access.  @len
 * 1, 2 or 4 and naturally aligned, else the read returns all ones and the
 * write is dropped (one log line).  Offsets past the header read zero.
 * BAR registers implement sizing (write all ones, read back the mask).
 */
uint32_t pci_cfg_read(struct pci_func *f, uint32_t off, unsigned int len);
void pci_cfg_write(struct pci_func *f, uint32_t off, uint32_t val,
		   unsigned int len);

/*
 * pci_bar_access() - route a guest access at absolute address @addr to the
 * BAR that decodes it.  @write: store *@val; else load into *@val.
 * Return: 0; -ENOENT (no enabled BAR decodes @addr, reads give all ones);
 * -EINVAL (size not 1, 2, 4 or 8, or the access crosses the BAR end).
 */
int pci_bar_access(struct pci_func *f, uint64_t addr, bool io, bool write,
		   uint64_t *val, unsigned int size);

/*
 * pci_bar_rw() - a guest access at offset @off of BAR @idx, for links whose
 * peer decodes BAR addresses itself (vfio-user names the region and the
 * offset).  The command register's decode bits are not consulted: the peer
 * routes an access only while its own emulated decoding is on.
 * Return: 0; -ENOENT (no BAR @idx, reads give all ones); -EINVAL (bad
 * @idx, size not 1, 2, 4 or 8, or the access leaves the BAR).
 */
int pci_bar_rw(struct pci_func *f, unsigned int idx, uint64_t off,
	       bool write, uint64_t *val, unsigned int size);

/*
 * pci_set_intx() - drive INTx (level); honours COMMAND.INTX_DISABLE, and
 * the sink sees the line low while MSI-X is enabled.
 */
void pci_set_intx(struct pci_func *f, bool level);

/*
 * pci_func_add_msix() - give the function @nvec (1..2048) MSI-X vectors
 * whose table lives at @table_off and pending-bit array at @pba_off of BAR
 * @bar (a memory BAR already added with pci_func_add_bar(); both windows
 * must fit inside it, table 8-byte aligned, 16 bytes per vector, PBA
 * 8-byte aligned, 8 bytes per 64 vectors, not overlapping).  Adds the
 * capability (Message Control writable bits: Enable and Function Mask
 * only).  Accesses to the two windows through pci_bar_access() and
 * pci_bar_rw() are served by the function itself (4- or 8-byte aligned
 * accesses to the table; PBA read-only, writes ignored), never reaching
 * the BAR's ops; any other access that touches a window reads all ones or
 * is dropped, with a log line (rate limited), and still returns 0 (the
 * BAR decoded it).  Every vector starts masked.
 * Setup only: not concurrent with any other call on @f.
 * Return: 0; -EINVAL (NULL @f, @nvec out of range, @bar not a memory BAR,
 * a window misaligned, outside the BAR or overlapping the other); -EEXIST
 * (already has MSI-X); -ENOSPC (no room for the capability); -ENOMEM.
 * A failed call changes nothing.
 */
int pci_func_add_msix(struct pci_func *f, unsigned int nvec, unsigned int bar,
		      uint32_t table_off, uint32_t pba_off);

/*
 * pci_func_hide_msix() - take the MSI-X capability out of the capability
 * list, for a link that cannot deliver MSI-X (mpqemu: x-pci-proxy-dev has
 * no MSI path), so the guest's driver uses INTx.  Before the function is
 * in use.
 */
void pci_func_hide_msix(struct pci_func *f);

/*
 * pci_msix_enabled() - MSI-X Enable is set in the capability (the function
 * then must not use INTx).  false without MSI-X.  Any thread.
 */
bool pci_msix_enabled(struct pci_func *f);

/*
 * pci_msix_notify() - signal vector @vector: if MSI-X is enabled and
 * neither the function nor the vector is masked, call msix_fn (vector,
 * addr, data from the table; nothing if there is no sink); if masked, set
 * its pending bit (delivered, and the bit cleared, when the mask is
 * lifted: a table write clearing the vector's mask bit, a config write
 * clearing Function Mask, or pci_msix_set_mask(false)).  Any thread, e.g.
 * a BAR handler or a device's interrupt hook; msix_fn runs before it
 * returns (with f->intx_lock held, see the top of this file).
 * Return: 0 delivered or made pending; -EINVAL (NULL @f, @vector >= nvec);
 * -ENODEV (no MSI-X, or MSI-X Enable clear: nothing recorded).
 */
int pci_msix_notify(struct pci_func *f, unsigned int vector);

/*
 * pci_msix_set_mask() - a link's per-vector mask (used when
 * msix_peer_table; it applies in either mode, on top of the table's mask
 * bit): masking makes later notifications pending; unmasking delivers a
 * pending one (through msix_fn, before returning).  Any thread.
 * Return: 0; -EINVAL (NULL @f, no MSI-X, @vector >= nvec).
 */
int pci_msix_set_mask(struct pci_func *f, unsigned int vector, bool masked);

/*
 * pci_func_reset() - registers back to power-on values (every writable and
 * write-one-to-clear bit to 0, INTx deasserted; MSI-X Enable and Function
 * Mask clear, every table entry zero with its mask bit set, no pending
 * bits, no pci_msix_set_mask() masks), then reset_fn.
 */
void pci_func_reset(struct pci_func *f);

#endif /* VIOMMU_PCI_H */
