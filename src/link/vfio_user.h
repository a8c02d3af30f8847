/*
 * vfio_user.h - the vfio-user wire format (QEMU docs/interop/vfio-user.rst,
 * protocol version 0.0), device (server) side, as src/link/vfio_user.c
 * serves it.  Host byte order; every message starts with a 16-byte header:
 *
 *   u16 id; u16 command; u32 size (whole message); u32 flags; u32 error
 *
 * flags bits 0-3 type (0 command, 1 reply), bit 4 NO_REPLY, bit 5 ERROR.
 * A reply echoes id and command; an error reply is the header alone with
 * ERROR set and an errno in @error.
 *
 * What the server accepts (anything else is answered with an error, or
 * ends the link when the stream cannot be trusted):
 *
 *   cmd  name                 payload (bytes)           fds  reply
 *   1    VERSION              u16 major, minor; JSON    0    same form
 *   2    DMA_MAP              32: argsz flags off addr   0-1  header
 *                             size
 *   3    DMA_UNMAP            24: argsz flags addr size  0    the request
 *   4    DEVICE_GET_INFO      16: argsz flags nregions   0    16
 *                             nirqs
 *   5    GET_REGION_INFO      32: argsz flags index      0    32
 *                             cap_off size offset
 *   7    GET_IRQ_INFO         16: argsz flags index      0    16
 *                             count
 *   8    SET_IRQS             20 + data: argsz flags     0-8  header
 *                             index start count
 *   9    REGION_READ          16: offset region count    0    16 + data
 *   10   REGION_WRITE         16 + count data            0    16
 *   13   DEVICE_RESET         0                          0    header
 *
 * What the server sends (src/link/vfu_dma.c), for windows without an fd:
 *
 *   11   DMA_READ             u64 addr, u64 count        0    + count data
 *   12   DMA_WRITE            u64 addr, u64 count, data  0    header (or
 *                                                              addr, count)
 *
 * (Data at payload offset 16, messages of 32 + count bytes, as the spec
 * has it and QEMU 11.1 sends.)  The client's replies to them are the only
 * replies the server accepts; a reply nobody waits for is dropped.
 *
 * Regions: 0-5 the function's BARs, 6 ROM (none), 7 configuration space
 * (256 bytes), 8 VGA (none).  IRQ indexes: 0 INTx, 1 MSI (none), 2 MSI-X,
 * 3 ERR and 4 REQ (none).
 */
#ifndef VIOMMU_VFIO_USER_H
#define VIOMMU_VFIO_USER_H

#include <stdint.h>

#define VFU_HDR_SIZE 16

/* Commands. */
enum vfu_cmd {
	VFU_VERSION = 1,
	VFU_DMA_MAP = 2,
	VFU_DMA_UNMAP = 3,
	VFU_DEVICE_GET_INFO = 4,
	VFU_GET_REGION_INFO = 5,
	VFU_GET_REGION_IO_FDS = 6,
	VFU_GET_IRQ_INFO = 7,
	VFU_SET_IRQS = 8,
	VFU_REGION_READ = 9,
	VFU_REGION_WRITE = 10,
	VFU_DMA_READ = 11,
	VFU_DMA_WRITE = 12,
	VFU_DEVICE_RESET = 13,
	VFU_DIRTY_PAGES = 14,
	VFU_REGION_WRITE_MULTI = 15,
	VFU_DEVICE_FEATURE = 16,
	VFU_MIG_DATA_READ = 17,
	VFU_MIG_DATA_WRITE = 18,
	VFU_CMD_COUNT = 19,
};

/* Header flags. */
#define VFU_F_TYPE 0xfu
#define VFU_T_COMMAND 0x0u
#define VFU_T_REPLY 0x1u
#define VFU_F_NO_REPLY 0x10u
#define VFU_F_ERROR 0x20u

/* Limits we announce in VERSION (and enforce). */
#define VFU_MAX_XFER 4096u    /* max_data_xfer_size */
#define VFU_MAX_MSG_FDS 8u    /* max_msg_fds */
#define VFU_MAX_DMA_MAPS 64u  /* max_dma_maps = VIOMMU_MEM_MAX_REGIONS */
#define VFU_PGSIZE 4096u      /* pgsizes */
#define VFU_MAX_VERSION_DATA 1024u /* JSON bytes accepted in VERSION */
/* Largest payload: a REGION_WRITE of VFU_MAX_XFER bytes. */
#define VFU_MAX_PAYLOAD (16u + VFU_MAX_XFER)

/* Payload sizes. */
#define VFU_DMA_MAP_SIZE 32u
#define VFU_DMA_UNMAP_SIZE 24u
#define VFU_INFO_SIZE 16u /* DEVICE_GET_INFO, GET_IRQ_INFO */
#define VFU_REGION_INFO_SIZE 32u
#define VFU_SET_IRQS_SIZE 20u
#define VFU_RW_SIZE 16u

/* DMA_MAP flags. */
#define VFU_DMA_READ_OK 0x1u
#define VFU_DMA_WRITE_OK 0x2u

/* DEVICE_GET_INFO. */
#define VFU_DEV_FLAG_RESET 0x1u
#define VFU_DEV_FLAG_PCI 0x2u
#define VFU_NUM_REGIONS 9u
#define VFU_NUM_IRQS 5u

/* Regions. */
#define VFU_REGION_ROM 6u
#define VFU_REGION_CONFIG 7u
#define VFU_REGION_VGA 8u
#define VFU_RGN_READ 0x1u
#define VFU_RGN_WRITE 0x2u

/* IRQ indexes and info flags. */
#define VFU_IRQ_INTX 0u
#define VFU_IRQ_MSI 1u
#define VFU_IRQ_MSIX 2u
#define VFU_IRQ_ERR 3u
#define VFU_IRQ_REQ 4u
#define VFU_IRQ_INFO_EVENTFD 0x1u
#define VFU_IRQ_INFO_MASKABLE 0x2u
#define VFU_IRQ_INFO_AUTOMASKED 0x4u
#define VFU_IRQ_INFO_NORESIZE 0x8u

/* SET_IRQS flags. */
#define VFU_IRQ_DATA_NONE 0x1u
#define VFU_IRQ_DATA_BOOL 0x2u
#define VFU_IRQ_DATA_EVENTFD 0x4u
#define VFU_IRQ_ACTION_MASK 0x8u
#define VFU_IRQ_ACTION_UNMASK 0x10u
#define VFU_IRQ_ACTION_TRIGGER 0x20u
#define VFU_IRQ_DATA_MASK 0x7u
#define VFU_IRQ_ACTION_MASK_ALL 0x38u

/* Most MSI-X vectors a link tracks. */
#define VFU_MAX_MSIX 64u

#endif /* VIOMMU_VFIO_USER_H */
