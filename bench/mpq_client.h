/*
 * mpq_client.h - the QEMU end of an x-pci-proxy-dev link ("mpqemu", wire
 * format at the top of src/link/mpqemu.h), so that a benchmark can drive
 * one PCI function of viommu-server with no QEMU in the path
 * (viommu-bench qemu, paths "link" and "link-poll").
 *
 * The client plays QEMU 7.2's proxy device on one connected stream socket:
 *  - SYNC_SYSMEM hands the server guest RAM: one region, one fd (no reply);
 *  - PCI_CFGREAD / PCI_CFGWRITE access the function's configuration space
 *    at an offset within the function (the link names the function);
 *  - BAR_READ / BAR_WRITE access a memory BAR at its absolute address.
 * Like QEMU's proxy, each access is one message followed by a blocking
 * receive of its RET reply.  The wait is bounded (SO_RCVTIMEO and
 * SO_SNDTIMEO: -ETIMEDOUT), a server that goes away shows up as -EPIPE,
 * and every reply is checked (command RET, payload size 8) before its
 * value is believed.
 *
 * Functions return 0 or a negative errno; mpq_error() then says what
 * happened.  Nothing here prints or exits.  One struct mpq is used by one
 * thread at a time.
 */
#ifndef VIOMMU_BENCH_MPQ_CLIENT_H
#define VIOMMU_BENCH_MPQ_CLIENT_H

#include <stdint.h>

struct mpq;

/*
 * mpq_open() - a client on the connected UNIX stream socket @fd (blocking
 * mode; owned by the client from the call on, closed even on failure),
 * each wait bounded by @timeout_ms (> 0).
 */
int mpq_open(int fd, int timeout_ms, struct mpq **out);

/* mpq_close() - close the socket and free; NULL is a no-op. */
void mpq_close(struct mpq *c);

/* mpq_error() - what the last failure was (empty if none). */
const char *mpq_error(const struct mpq *c);

/* mpq_round_trips() - requests answered so far (RET replies received). */
uint64_t mpq_round_trips(const struct mpq *c);

/*
 * mpq_sync_sysmem() - guest RAM [@gpa, @gpa + @size) is @fd at @offset.
 * The server replies nothing; the next request's reply shows that it was
 * taken (the server handles a link's messages in order).
 */
int mpq_sync_sysmem(struct mpq *c, int fd, uint64_t gpa, uint64_t size,
		    uint64_t offset);

/* mpq_cfg_read() / mpq_cfg_write() - @len 1, 2 or 4 bytes at @off. */
int mpq_cfg_read(struct mpq *c, uint32_t off, int len, uint32_t *val);
int mpq_cfg_write(struct mpq *c, uint32_t off, int len, uint32_t val);

/* mpq_bar_read() / mpq_bar_write() - @size 1, 2, 4 or 8 bytes of MMIO. */
int mpq_bar_read(struct mpq *c, uint64_t addr, int size, uint64_t *val);
int mpq_bar_write(struct mpq *c, uint64_t addr, int size, uint64_t val);

#endif /* VIOMMU_BENCH_MPQ_CLIENT_H */
