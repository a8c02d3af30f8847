/*
 * netns.c - two NICs in two network namespaces of one guest.
 *
 * Two NICs of one kernel talking TCP to each other would never touch the
 * wire: the kernel routes traffic between its own addresses through the
 * loopback device.  So each NIC goes alone into a network namespace of
 * its own, made with unshare(CLONE_NEWNET), moved there with an rtnetlink
 * RTM_NEWLINK carrying IFLA_NET_NS_FD, and given 10.13.0.1/24 or
 * 10.13.0.2/24 (RTM_NEWADDR) and IFF_UP (RTM_NEWLINK) from inside it: the
 * only route between the two addresses is then the NICs' own link.  No
 * external tool is needed.  A socket belongs to the namespace its creator
 * was in when it made it (ns_socket()); the program's threads return to
 * the original namespace in between.  When the program exits the
 * namespaces die and the kernel moves the NICs back to the initial one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest.h"

#define NL_BUF 512

/* A netlink request under construction. */
struct nlreq {
	struct nlmsghdr h;
	char body[NL_BUF];
};

/* nl_attr() - append attribute @type with @len bytes of @data. */
static void nl_attr(struct nlreq *q, unsigned short type, const void *data,
		    size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)q +
					     NLMSG_ALIGN(q->h.nlmsg_len));

	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	q->h.nlmsg_len = NLMSG_ALIGN(q->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/*
 * nl_talk() - send @q on a fresh rtnetlink socket of the current
 * namespace and wait for its acknowledgement.  Return: 0 or -errno.
 */
static int nl_talk(struct nlreq *q)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[4096];
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	int err = -EPROTO;
	ssize_t n;

	if (fd < 0)
		return -errno;
	q->h.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	q->h.nlmsg_seq = 1;
	if (sendto(fd, q, q->h.nlmsg_len, 0, (struct sockaddr *)&sa,
		   sizeof(sa)) < 0) {
		err = -errno;
		goto out;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		err = -errno;
		goto out;
	}
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n);
	     h = NLMSG_NEXT(h, n))
		if (h->nlmsg_type == NLMSG_ERROR) {
			err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			break;
		}
out:
	close(fd);
	return err;
}

/* link_req() - an RTM_NEWLINK for @ifindex changing the flags in @change. */
static void link_req(struct nlreq *q, int ifindex, unsigned flags,
		     unsigned change)
{
	struct ifinfomsg *ifi = NLMSG_DATA(&q->h);

	memset(q, 0, sizeof(*q));
	q->h.nlmsg_len = NLMSG_LENGTH(sizeof(*ifi));
	q->h.nlmsg_type = RTM_NEWLINK;
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = flags;
	ifi->ifi_change = change;
}

/* link_to_ns() - move interface @ifindex into namespace @nsfd. */
static int link_to_ns(int ifindex, int nsfd)
{
	struct nlreq q;
	unsigned int fd = (unsigned int)nsfd;

	link_req(&q, ifindex, 0, 0);
	nl_attr(&q, IFLA_NET_NS_FD, &fd, sizeof(fd));
	return nl_talk(&q);
}

/* link_up() - IFF_UP on @ifindex of the current namespace. */
static int link_up(int ifindex)
{
	struct nlreq q;

	link_req(&q, ifindex, IFF_UP, IFF_UP);
	return nl_talk(&q);
}

/* addr_add() - IPv4 @ip/@prefix on @ifindex of the current namespace. */
static int addr_add(int ifindex, uint32_t ip, unsigned char prefix)
{
	struct nlreq q;
	struct ifaddrmsg *ifa = NLMSG_DATA(&q.h);

	memset(&q, 0, sizeof(q));
	q.h.nlmsg_len = NLMSG_LENGTH(sizeof(*ifa));
	q.h.nlmsg_type = RTM_NEWADDR;
	q.h.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = prefix;
	ifa->ifa_index = (unsigned)ifindex;
	nl_attr(&q, IFA_LOCAL, &ip, sizeof(ip));
	nl_attr(&q, IFA_ADDRESS, &ip, sizeof(ip));
	return nl_talk(&q);
}

/* ns_new() - a new network namespace (fd); we stay in @orig. */
static int ns_new(int orig)
{
	int fd;

	if (unshare(CLONE_NEWNET))
		return -errno;
	fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	if (setns(orig, CLONE_NEWNET)) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	return fd;
}

/*
 * side_setup() - inside namespace @i: the NIC (found again by name: its
 * index may differ there) and lo up, the address on the NIC.
 */
static int side_setup(struct result *r, struct netpair *p, int i)
{
	int lo, err;

	if (setns(p->ns[i], CLONE_NEWNET))
		return -errno;
	p->n[i].ifindex = (int)if_nametoindex(p->n[i].name);
	lo = (int)if_nametoindex("lo");
	err = p->n[i].ifindex ? 0 : -ENODEV;
	if (!expect(r, err == 0, "%s not in its namespace", p->n[i].name))
		goto out;
	err = lo ? link_up(lo) : -ENODEV;
	if (!expect(r, err == 0, "lo up: %s", strerror(-err)))
		goto out;
	err = addr_add(p->n[i].ifindex, p->ip[i], 24);
	if (!expect(r, err == 0, "%s: address: %s", p->n[i].name,
		    strerror(-err)))
		goto out;
	err = link_up(p->n[i].ifindex);
	expect(r, err == 0, "%s up: %s", p->n[i].name, strerror(-err));
out:
	if (setns(p->orig, CLONE_NEWNET) && !err)
		err = -errno;
	return err;
}

/*
 * pair_setup() - find two virtio NICs, put each in a namespace of its own
 * and configure them.  Return: 0; -ENODEV (fewer than two NICs: @r
 * skipped); other -errno (@r failed).
 */
int pair_setup(struct result *r, struct netpair *p)
{
	int err;

	memset(p, 0, sizeof(*p));
	p->ns[0] = p->ns[1] = p->orig = -1;
	p->ip[0] = htonl(0x0a0d0001);
	p->ip[1] = htonl(0x0a0d0002);
	/*
	 * A namespace of an earlier run dies in the kernel's cleanup work,
	 * which moves its NICs back here a little later: wait for them.
	 */
	for (int tries = 0; nics_find(p->n) < 2 && tries < 50; tries++)
		usleep(100000);
	if (nics_find(p->n) < 2) {
		res_skip(r, "needs two virtio-net interfaces");
		return -ENODEV;
	}
	for (int i = 0; i < 2; i++) {
		char key[16];

		snprintf(key, sizeof(key), "nic%d", i);
		res_kv(r, key, "%s@%s", p->n[i].name, p->n[i].bdf);
		snprintf(key, sizeof(key), "domain%d", i);
		res_kv(r, key, "%s", p->n[i].dtype);
	}
	p->orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (!expect(r, p->orig >= 0, "/proc/self/ns/net: %s",
		    strerror(errno)))
		return -errno;
	for (int i = 0; i < 2; i++) {
		p->ns[i] = ns_new(p->orig);
		err = p->ns[i] < 0 ? p->ns[i] : 0;
		if (!expect(r, err == 0, "a network namespace: %s",
			    strerror(-err)))
			return err;
		err = link_to_ns(p->n[i].ifindex, p->ns[i]);
		if (!expect(r, err == 0, "%s into its namespace: %s",
			    p->n[i].name, strerror(-err)))
			return err;
	}
	for (int i = 0; i < 2; i++) {
		err = side_setup(r, p, i);
		if (err)
			return err;
	}
	return 0;
}

/* pair_teardown() - close the namespaces (they die with their NICs' use). */
void pair_teardown(struct netpair *p)
{
	for (int i = 0; i < 2; i++)
		if (p->ns[i] >= 0)
			close(p->ns[i]);
	if (p->orig >= 0) {
		if (setns(p->orig, CLONE_NEWNET))
			logmsg("setns back: %s", strerror(errno));
		close(p->orig);
	}
	p->ns[0] = p->ns[1] = p->orig = -1;
}

/*
 * ns_socket() - socket(@domain, @type, @proto) in @side's namespace.
 * Return: the fd or -errno.
 */
int ns_socket(const struct netpair *p, int side, int domain, int type,
	      int proto)
{
	int fd, err = 0;

	if (setns(p->ns[side], CLONE_NEWNET))
		return -errno;
	fd = socket(domain, type | SOCK_CLOEXEC, proto);
	if (fd < 0)
		err = -errno;
	if (setns(p->orig, CLONE_NEWNET)) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	return err ? err : fd;
}
