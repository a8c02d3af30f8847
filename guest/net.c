/*
 * net.c - the stock virtio_net driver behind the IOMMU under test.
 *
 * netpkt: two NICs of ours on viommu-server's switch, both driven by the
 * guest kernel's own virtio_net driver (ACCESS_PLATFORM negotiated: every
 * TX and RX buffer is mapped through the DMA API and so through the
 * IOMMU).  The scenario brings both interfaces up and, with raw packet
 * sockets (no IP configuration, so the kernel cannot short-cut the wire),
 * sends frames of 60 to 1514 bytes from the first NIC to the second's MAC
 * and back, each carrying its sequence number and a seeded pattern, and
 * checks that every one arrives intact on the other side, in order.  The
 * result line names both NICs, their PCI functions and IOMMU domain types.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest.h"

#define ETH_TYPE_TEST 0x88b5 /* IEEE local experimental */
#define FRAMES_PER_SIZE 50
#define RECV_WAIT_MS 2000

/* nic_describe() - fill @n for interface @name; -ENODEV if not virtio. */
int nic_describe(struct nic *n, const char *name)
{
	char path[PATH_MAX], real[PATH_MAX], buf[64];
	const char *drv, *b;
	unsigned int m[6];

	memset(n, 0, sizeof(*n));
	n->fd = -1;
	snprintf(n->name, sizeof(n->name), "%.15s", name);
	snprintf(path, sizeof(path), "/sys/class/net/%s/device/driver", name);
	if (!realpath(path, real))
		return -ENODEV;
	drv = strrchr(real, '/');
	if (!drv || strcmp(drv + 1, "virtio_net"))
		return -ENODEV;
	snprintf(path, sizeof(path), "/sys/class/net/%s/device/..", name);
	if (!realpath(path, real))
		return -ENODEV;
	b = strrchr(real, '/');
	snprintf(n->bdf, sizeof(n->bdf), "%.31s", b ? b + 1 : real);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group",
		 n->bdf);
	snprintf(n->dtype, sizeof(n->dtype), "none");
	if (realpath(path, real)) {
		b = strrchr(real, '/');
		snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%s/type",
			 b ? b + 1 : "?");
		if (read_file_str(path, n->dtype, sizeof(n->dtype)) < 0)
			snprintf(n->dtype, sizeof(n->dtype), "unknown");
		n->dtype[strcspn(n->dtype, "\n")] = '\0';
	}
	snprintf(path, sizeof(path), "/sys/class/net/%s/address", name);
	if (read_file_str(path, buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3],
		   &m[4], &m[5]) != 6)
		return -ENODEV;
	for (int i = 0; i < 6; i++)
		n->mac[i] = (uint8_t)m[i];
	n->ifindex = (int)if_nametoindex(name);
	return n->ifindex ? 0 : -ENODEV;
}

/* nics_find() - the first two virtio NICs in name order.  Return: count. */
int nics_find(struct nic *n)
{
	char names[2][IFNAMSIZ] = { "", "" };
	struct dirent *de;
	DIR *dir = opendir("/sys/class/net");
	struct nic tmp;
	int found = 0;

	if (!dir)
		return 0;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.' || nic_describe(&tmp, de->d_name))
			continue;
		/* keep the two smallest names */
		if (!names[0][0] || strcmp(de->d_name, names[0]) < 0) {
			memcpy(names[1], names[0], IFNAMSIZ);
			snprintf(names[0], IFNAMSIZ, "%.15s", de->d_name);
		} else if (!names[1][0] || strcmp(de->d_name, names[1]) < 0) {
			snprintf(names[1], IFNAMSIZ, "%.15s", de->d_name);
		}
	}
	closedir(dir);
	for (int i = 0; i < 2; i++)
		if (names[i][0] && !nic_describe(&n[i], names[i]))
			found++;
	return found;
}

/* nic_up() - set IFF_UP and open a raw socket for the test ethertype. */
static int nic_up(struct nic *n)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_TYPE_TEST),
		.sll_ifindex = n->ifindex,
	};
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM, 0), err = 0;

	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%.15s", n->name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr))
			err = -errno;
	} else {
		err = -errno;
	}
	close(s);
	if (err)
		return err;
	n->fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_TYPE_TEST));
	if (n->fd < 0)
		return -errno;
	if (bind(n->fd, (struct sockaddr *)&sll, sizeof(sll)))
		return -errno;
	return 0;
}

/* frame() - frame @seq of @len bytes from @src to @dst into @buf. */
static void frame(uint8_t *buf, size_t len, const struct nic *src,
		  const struct nic *dst, uint32_t seq)
{
	memcpy(buf, dst->mac, 6);
	memcpy(buf + 6, src->mac, 6);
	buf[12] = ETH_TYPE_TEST >> 8;
	buf[13] = ETH_TYPE_TEST & 0xff;
	memcpy(buf + 14, &seq, sizeof(seq));
	fill_pattern(buf + 18, len - 18, g_opts->seed * 100003 + seq);
}

/*
 * recv_frame() - the next test frame on @n within RECV_WAIT_MS into @buf.
 * Return: its length; 0 on timeout; -errno.
 */
static ssize_t recv_frame(struct nic *n, uint8_t *buf, size_t size)
{
	uint64_t end = now_ns() + RECV_WAIT_MS * 1000000ull;

	while (now_ns() < end) {
		struct pollfd p = { .fd = n->fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 100) <= 0)
			continue;
		r = recv(n->fd, buf, size, 0);
		if (r < 0)
			return -errno;
		if (r >= 18 && buf[12] == (ETH_TYPE_TEST >> 8) &&
		    buf[13] == (ETH_TYPE_TEST & 0xff))
			return r;
	}
	return 0;
}

/*
 * one_way() - every size, FRAMES_PER_SIZE frames each, from @a to @b, each
 * waited for and compared.  Return: frames verified.
 */
static unsigned one_way(struct result *r, struct nic *a, struct nic *b,
			uint32_t *seq)
{
	static const size_t sizes[] = { 60, 64, 128, 512, 1000, 1514 };
	uint8_t tx[1514], rx[2048];
	unsigned ok = 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (unsigned k = 0; k < FRAMES_PER_SIZE; k++) {
			size_t len = sizes[i];
			ssize_t got;

			frame(tx, len, a, b, ++*seq);
			if (!expect(r, send(a->fd, tx, len, 0) == (ssize_t)len,
				    "%s: send %zu B: %s", a->name, len,
				    strerror(errno)))
				return ok;
			got = recv_frame(b, rx, sizeof(rx));
			if (!expect(r, got > 0, "%s -> %s: frame %u (%zu B) "
				    "not received: %s", a->name, b->name,
				    *seq, len, got < 0 ? strerror((int)-got) :
				    "timeout"))
				return ok;
			/* short frames may arrive padded to 60 bytes */
			if (!expect(r, (size_t)got >= len &&
				    !memcmp(tx, rx, len), "%s -> %s: frame %u "
				    "(%zu B) arrived as %zd B, first difference "
				    "at %zu", a->name, b->name, *seq, len, got,
				    first_diff(tx, rx, (size_t)got < len ?
					       (size_t)got : len)))
				return ok;
			r->bytes_verified += len;
			ok++;
		}
	return ok;
}

/* sc_netpkt() - frames both ways between two virtio NICs of ours. */
int sc_netpkt(struct result *r)
{
	struct nic n[2];
	uint32_t seq = 0;
	unsigned ab = 0, ba = 0;
	int err;

	if (nics_find(n) < 2) {
		res_skip(r, "needs two virtio-net interfaces (viommu-server "
			 "--net twice)");
		return 0;
	}
	for (int i = 0; i < 2; i++) {
		char key[16];

		snprintf(key, sizeof(key), "nic%d", i);
		res_kv(r, key, "%s@%s", n[i].name, n[i].bdf);
		snprintf(key, sizeof(key), "domain%d", i);
		res_kv(r, key, "%s", n[i].dtype);
		err = nic_up(&n[i]);
		if (!expect(r, err == 0, "%s up: %s", n[i].name,
			    strerror(-err)))
			goto out;
	}
	usleep(200000); /* the links come up */
	ab = one_way(r, &n[0], &n[1], &seq);
	if (r->status != RES_FAIL)
		ba = one_way(r, &n[1], &n[0], &seq);
	res_kv(r, "frames_ab", "%u", ab);
	res_kv(r, "frames_ba", "%u", ba);
out:
	for (int i = 0; i < 2; i++)
		if (n[i].fd >= 0)
			close(n[i].fd);
	return 0;
}
