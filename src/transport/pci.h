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
 * Thread safety: configuration accesses and BAR routing take the
 * function's lock; BAR handlers run without it (a device model serialises
 * its own state) and may call pci_set_intx().
 */
#ifndef VIOMMU_PCI_H
#define VIOMMU_PCI_H

#include <viommu/common.h>
#include <pthread.h>

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
	/* orders INTx deliveries (taken before f->lock, held around intx_fn) */
	pthread_mutex_t intx_lock;
	bool intx_out;          /* the level last handed to intx_fn */
	uint32_t bad_accesses;  /* refused accesses, for log rate limiting */
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

/* pci_set_intx() - drive INTx (level); honours COMMAND.INTX_DISABLE. */
void pci_set_intx(struct pci_func *f, bool level);

/*
 * pci_func_reset() - registers back to power-on values (every writable and
 * write-one-to-clear bit to 0, INTx deasserted), then reset_fn.
 */
void pci_func_reset(struct pci_func *f);

#endif /* VIOMMU_PCI_H */
