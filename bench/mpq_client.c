/*
 * mpq_client.c - the QEMU end of an x-pci-proxy-dev link (see
 * mpq_client.h; message layout from src/link/mpqemu.h).
 *
 * A request is built in one buffer (16-byte header, then the payload) and
 * sent with one send(), as QEMU's proxy writes a message with one
 * writev(); the reply is read with blocking recv() calls until its 24
 * bytes are in.  The socket's SO_RCVTIMEO and SO_SNDTIMEO bound every
 * wait without a poll() per message, so the client costs what QEMU's
 * proxy costs: one send and (normally) one receive per access.
 */
#include "mpq_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <viommu/link.h>

#include "link/mpqemu.h"
#include "transport/pci.h"

struct mpq {
	int fd;
	int timeout_ms;
	uint64_t round_trips;
	char err[256];
};

/* fail() - record why, return @err. */
static int __attribute__((format(printf, 3, 4)))
fail(struct mpq *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return err;
}

/* put32() / put64() - native-order stores (the wire is x86-64 native). */
static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* set_timeouts() - bound blocking sends and receives by @ms. */
static int set_timeouts(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return -errno;
	return 0;
}

int mpq_open(int fd, int timeout_ms, struct mpq **out)
{
	struct mpq *c;
	int err;

	*out = NULL;
	if (fd < 0 || timeout_ms <= 0) {
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	err = set_timeouts(fd, timeout_ms);
	c = err ? NULL : calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return err ? err : -ENOMEM;
	}
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	*out = c;
	return 0;
}

void mpq_close(struct mpq *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}

const char *mpq_error(const struct mpq *c)
{
	return c->err;
}

uint64_t mpq_round_trips(const struct mpq *c)
{
	return c->round_trips;
}

/* io_fail() - the error for a failed send or receive (errno set). */
static int io_fail(struct mpq *c, const char *what, int cmd)
{
	int e = errno;

	if (e == EAGAIN || e == EWOULDBLOCK)
		return fail(c, -ETIMEDOUT, "no progress within %d ms %s %s "
			    "(server stuck?)", c->timeout_ms, what,
			    viommu_link_cmd_name(VIOMMU_LINK_MPQEMU, (unsigned int)cmd));
	if (e == EPIPE || e == ECONNRESET)
		return fail(c, -EPIPE, "the server closed the link %s %s "
			    "(did it die?)", what,
			    viommu_link_cmd_name(VIOMMU_LINK_MPQEMU, (unsigned int)cmd));
	return fail(c, -e, "%s %s: %s", what,
		    viommu_link_cmd_name(VIOMMU_LINK_MPQEMU, (unsigned int)cmd), strerror(e));
}

/* send_msg() - header {@cmd, @len} and @len payload bytes, @nfds fds. */
static int send_msg(struct mpq *c, int32_t cmd, const void *payload,
		    size_t len, const int *fds, unsigned int nfds)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	uint8_t buf[MPQEMU_HDR_SIZE + MPQEMU_MAX_PAYLOAD] = { 0 };
	struct iovec iov = { .iov_base = buf,
			     .iov_len = MPQEMU_HDR_SIZE + len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	memcpy(buf, &cmd, sizeof(cmd));
	put64(buf + 8, len);
	memcpy(buf + MPQEMU_HDR_SIZE, payload, len);
	if (nfds == 1) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), fds, sizeof(int));
	}
	do
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return io_fail(c, "sending", cmd);
	/* A short send of 40 bytes on a UNIX stream socket: never seen. */
	if ((size_t)n != iov.iov_len)
		return fail(c, -EIO, "short send of %s (%zd of %zu bytes)",
			    viommu_link_cmd_name(VIOMMU_LINK_MPQEMU, (unsigned int)cmd), n,
			    iov.iov_len);
	return 0;
}

/* recv_ret() - the RET reply to @cmd; its value into *@val. */
static int recv_ret(struct mpq *c, int32_t cmd, uint64_t *val)
{
	uint8_t buf[MPQEMU_HDR_SIZE + MPQEMU_RET_SIZE];
	size_t got = 0;
	int32_t rcmd;
	uint64_t size;

	while (got < sizeof(buf)) {
		ssize_t n = recv(c->fd, buf + got, sizeof(buf) - got, 0);

		if (n > 0) {
			got += (size_t)n;
		} else if (n == 0) {
			return fail(c, -EPIPE, "the server closed the link "
				    "awaiting the reply to %s (%zu of %zu "
				    "bytes received; did it die?)",
				    viommu_link_cmd_name(VIOMMU_LINK_MPQEMU, (unsigned int)cmd), got,
				    sizeof(buf));
		} else if (errno != EINTR) {
			return io_fail(c, "awaiting the reply to", cmd);
		}
	}
	memcpy(&rcmd, buf, sizeof(rcmd));
	memcpy(&size, buf + 8, sizeof(size));
	if (rcmd != MPQEMU_RET || size != MPQEMU_RET_SIZE)
		return fail(c, -EPROTO, "reply to %s: command %d with %llu "
			    "payload bytes, expected RET (%d) with %d",
			    viommu_link_cmd_name(VIOMMU_LINK_MPQEMU, (unsigned int)cmd), rcmd,
			    (unsigned long long)size, MPQEMU_RET,
			    MPQEMU_RET_SIZE);
	memcpy(val, buf + MPQEMU_HDR_SIZE, sizeof(*val));
	c->round_trips++;
	return 0;
}

/* transact() - one request and its RET. */
static int transact(struct mpq *c, int32_t cmd, const void *payload,
		    size_t len, uint64_t *val)
{
	int err = send_msg(c, cmd, payload, len, NULL, 0);

	return err ? err : recv_ret(c, cmd, val);
}

int mpq_sync_sysmem(struct mpq *c, int fd, uint64_t gpa, uint64_t size,
		    uint64_t offset)
{
	uint8_t p[MPQEMU_SYSMEM_SIZE] = { 0 };

	if (fd < 0 || !size || offset > INT64_MAX)
		return fail(c, -EINVAL, "SYNC_SYSMEM: bad region");
	put64(p, gpa);      /* gpa[0] */
	put64(p + 64, size);   /* size[0] */
	put64(p + 128, offset); /* offset[0] */
	return send_msg(c, MPQEMU_SYNC_SYSMEM, p, sizeof(p), &fd, 1);
}

/* cfg() - PCI_CFGREAD / PCI_CFGWRITE: u32 addr; u32 val; i32 len. */
static int cfg(struct mpq *c, int32_t cmd, uint32_t off, int len,
	       uint32_t in, uint64_t *out)
{
	uint8_t p[MPQEMU_CFG_SIZE];

	if ((len != 1 && len != 2 && len != 4) || off % (unsigned int)len ||
	    off + (unsigned int)len > PCI_CFG_SIZE)
		return fail(c, -EINVAL, "%s of %d bytes at %#x",
			    viommu_link_cmd_name(VIOMMU_LINK_MPQEMU, (unsigned int)cmd), len, off);
	put32(p, off);
	put32(p + 4, in);
	put32(p + 8, (uint32_t)len);
	return transact(c, cmd, p, sizeof(p), out);
}

int mpq_cfg_read(struct mpq *c, uint32_t off, int len, uint32_t *val)
{
	uint64_t v;
	int err = cfg(c, MPQEMU_PCI_CFGREAD, off, len, 0, &v);

	if (!err && len < 4 && v >> (8 * len))
		return fail(c, -EPROTO, "PCI_CFGREAD of %d bytes at %#x: "
			    "value %#llx too wide", len, off,
			    (unsigned long long)v);
	if (!err)
		*val = (uint32_t)v;
	return err;
}

int mpq_cfg_write(struct mpq *c, uint32_t off, int len, uint32_t val)
{
	uint64_t v;

	return cfg(c, MPQEMU_PCI_CFGWRITE, off, len, val, &v);
}

/* bar() - BAR_READ / BAR_WRITE: u64 addr; u64 val; u32 size; u8 mem. */
static int bar(struct mpq *c, int32_t cmd, uint64_t addr, int size,
	       uint64_t in, uint64_t *out)
{
	uint8_t p[MPQEMU_BAR_SIZE] = { 0 };

	if (size != 1 && size != 2 && size != 4 && size != 8)
		return fail(c, -EINVAL, "%s of %d bytes",
			    viommu_link_cmd_name(VIOMMU_LINK_MPQEMU, (unsigned int)cmd), size);
	put64(p, addr);
	put64(p + 8, in);
	put32(p + 16, (uint32_t)size);
	p[20] = 1; /* memory, not I/O space */
	return transact(c, cmd, p, sizeof(p), out);
}

int mpq_bar_read(struct mpq *c, uint64_t addr, int size, uint64_t *val)
{
	int err = bar(c, MPQEMU_BAR_READ, addr, size, 0, val);

	if (!err && size < 8 && *val >> (8 * size))
		return fail(c, -EPROTO, "BAR_READ of %d bytes at %#llx: "
			    "value %#llx too wide", size,
			    (unsigned long long)addr,
			    (unsigned long long)*val);
	return err;
}

int mpq_bar_write(struct mpq *c, uint64_t addr, int size, uint64_t val)
{
	uint64_t v;

	return bar(c, MPQEMU_BAR_WRITE, addr, size, val, &v);
}
