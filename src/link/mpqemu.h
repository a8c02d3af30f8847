/*
 * mpqemu.h - the device side of QEMU's x-pci-proxy-dev link ("mpqemu",
 * QEMU 7.2 hw/remote/), serving emulated PCI functions (src/transport/pci.h)
 * to a QEMU that runs them out of process.
 *
 * Wire format (x86-64, native byte order), one message after another on a
 * UNIX stream socket, one socket per PCI function:
 *
 *   header   int32 cmd; 4 bytes padding; uint64 size      (16 bytes)
 *   payload  size bytes (at most 192)
 *   fds      SCM_RIGHTS on the message's bytes (at most 8)
 *
 *   cmd  name          payload                              fds  reply
 *   0    SYNC_SYSMEM   u64 gpa[8]; u64 size[8]; i64 off[8]  1-8  none
 *   1    RET           u64 value                            0    (ours)
 *   2    PCI_CFGWRITE  u32 addr; u32 val; i32 len           0    RET 0
 *   3    PCI_CFGREAD   u32 addr; u32 val; i32 len           0    RET value
 *   4    BAR_WRITE     u64 addr; u64 val; u32 size; u8 mem  0    RET 0
 *   5    BAR_READ      u64 addr; u64 val; u32 size; u8 mem  0    RET value
 *   6    SET_IRQFD     none                                 2    none
 *   7    DEVICE_RESET  none                                 0    RET 0
 *
 * QEMU sends, per proxy device: SYNC_SYSMEM at realize and again whenever
 * its memory map changes; SET_IRQFD {intr, resample} at realize; then
 * configuration probing (BAR sizing) and the guest's accesses, each
 * waiting for its RET; DEVICE_RESET on system reset.  BAR accesses carry
 * the absolute guest-physical (or I/O port) address.
 *
 * The protocol is served by the link server (include/viommu/link.h,
 * VIOMMU_LINK_MPQEMU; src/link/mpqemu.c): a bad message (an unknown
 * command, a size other than the command's, a wrong number of fds, an
 * oversized payload, a bad field, a peer closing mid-message) ends that
 * link with one log line, since the protocol has no error reply.  A BAR
 * access no enabled BAR decodes reads all ones and counts in the link's
 * errors; SET_IRQFD's resample fd is the link's unmask event (counted in
 * unmasks).  Under TCG QEMU 7.2 delivers no interrupt.
 */
#ifndef VIOMMU_MPQEMU_H
#define VIOMMU_MPQEMU_H

#include <stdint.h>

#define MPQEMU_MAX_FDS 8
#define MPQEMU_HDR_SIZE 16
#define MPQEMU_MAX_PAYLOAD 192

/* Commands (QEMU 7.2 MPQemuCmd). */
enum mpqemu_cmd {
	MPQEMU_SYNC_SYSMEM = 0,
	MPQEMU_RET = 1,
	MPQEMU_PCI_CFGWRITE = 2,
	MPQEMU_PCI_CFGREAD = 3,
	MPQEMU_BAR_WRITE = 4,
	MPQEMU_BAR_READ = 5,
	MPQEMU_SET_IRQFD = 6,
	MPQEMU_DEVICE_RESET = 7,
	MPQEMU_CMD_COUNT = 8,
};

/* Payload sizes. */
#define MPQEMU_SYSMEM_SIZE 192
#define MPQEMU_RET_SIZE 8
#define MPQEMU_CFG_SIZE 12
#define MPQEMU_BAR_SIZE 24

#endif /* VIOMMU_MPQEMU_H */
