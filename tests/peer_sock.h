/*
 * peer_sock.h - what the link tests and fuzz targets share when they play
 * the VMM on the other end of a link's socket: attaching fds to a
 * sendmsg() (SCM_RIGHTS) and counting this process's open fds (every
 * link test checks that no received fd is leaked).
 */
#ifndef VIOMMU_TESTS_PEER_SOCK_H
#define VIOMMU_TESTS_PEER_SOCK_H

#include <dirent.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define PEER_MAX_FDS 32

/* Room for the control message of up to PEER_MAX_FDS fds. */
union peer_ctl {
	struct cmsghdr align;
	char b[CMSG_SPACE(PEER_MAX_FDS * sizeof(int))];
};

/*
 * peer_attach_fds() - make @mh carry @n (<= PEER_MAX_FDS) fds in @ctl, or
 * none when @n is 0.
 */
static inline void peer_attach_fds(struct msghdr *mh, union peer_ctl *ctl,
				   const int *fds, unsigned int n)
{
	struct cmsghdr *c;

	mh->msg_control = NULL;
	mh->msg_controllen = 0;
	if (!n)
		return;
	memset(ctl, 0, sizeof(*ctl));
	mh->msg_control = ctl->b;
	mh->msg_controllen = CMSG_SPACE(n * sizeof(int));
	c = CMSG_FIRSTHDR(mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
}

/* peer_send() - one sendmsg() of @len bytes with @nfds fds.  0 or -1. */
static inline int peer_send(int sock, const void *buf, size_t len,
			    const int *fds, unsigned int nfds)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	union peer_ctl ctl;

	peer_attach_fds(&mh, &ctl, fds, nfds);
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* peer_count_fds() - open fds of this process; -1 without /proc. */
static inline int peer_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

#endif /* VIOMMU_TESTS_PEER_SOCK_H */
