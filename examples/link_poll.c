/*
 * link_poll.c - how a VMM with its own event loop serves viommu's devices
 * over vfio-user: the poll-fd mode of <viommu/link.h>.
 *
 * The program builds a virtio-iommu (as a virtio-pci function) and one DMA
 * engine behind it, both sharing one guest memory and one translation
 * context, and serves each on a vfio-user socket in poll mode: no thread
 * of the library's, one poll() loop of ours over the links' poll fds and a
 * signal fd.  Run it with a socket directory, then start QEMU 11.1 with
 *
 *   -object memory-backend-memfd,id=ram,size=512M,share=on
 *   -M q35,memory-backend=ram
 *   -device '{"driver":"vfio-user-pci","socket":{"type":"unix",
 *             "path":"DIR/iommu.sock"},"addr":"0x4"}'
 *   -device '{"driver":"vfio-user-pci","socket":{"type":"unix",
 *             "path":"DIR/dma0.sock"},"addr":"0x5"}'
 *   -acpitable file=viot.bin   (viommu-server --viot viot.bin --viot-only)
 *
 * It stops when every link has ended (QEMU exited) or on SIGINT/SIGTERM.
 *
 *   link_poll DIR            serve until QEMU goes away
 *   link_poll --self-test    play a small vfio-user client against itself
 *                            (VERSION, DEVICE_GET_INFO, a config read)
 *                            and exit 0 if every answer was right
 *
 * Only the public API (<viommu/viommu.h>) is used.
 */
#include <viommu/viommu.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define ENDPOINT_ID 0x28 /* 00:05.0, the engine's requester ID */
#define NLINKS 2

struct vm {
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_virtio_iommu *vi;
	struct viommu_virtio_pci *vp;
	struct viommu_endpoint *ep;
	struct viommu_dma_engine *eng;
	struct viommu_link_server *srv;
};

static void log_line(void *opaque, enum viommu_log_level lvl, const char *s)
{
	(void)opaque;
	fprintf(stderr, "link_poll: %s%s\n", lvl == VIOMMU_LOG_WARN ?
		"warning: " : lvl == VIOMMU_LOG_ERROR ? "error: " : "", s);
}

static const struct viommu_log logger = { log_line, NULL, VIOMMU_LOG_INFO };

/* build() - memory, context, virtio-iommu and a DMA engine. */
static int build(struct vm *vm)
{
	struct viommu_mem_config mc = { .log = logger };
	struct viommu_ctx_config cc = { .log = logger };
	struct viommu_virtio_iommu_config vc = { .size = sizeof(vc),
						 .log = logger };
	int err = viommu_mem_create(&mc, &vm->mem);

	if (err)
		return err;
	cc.mem = vm->mem;
	err = viommu_ctx_create(&cc, &vm->ctx);
	if (err)
		return err;
	vc.ctx = vm->ctx;
	vc.mem = vm->mem;
	err = viommu_virtio_iommu_create(&vc, &vm->vi);
	if (!err)
		err = viommu_virtio_pci_create(viommu_virtio_iommu_dev(vm->vi),
					       "iommu", &logger, NULL, &vm->vp);
	if (!err)
		err = viommu_endpoint_create(vm->ctx, ENDPOINT_ID, &vm->ep);
	if (!err)
		err = viommu_dma_engine_create(vm->ep, vm->mem, "dma0", &logger,
					       NULL, &vm->eng);
	return err;
}

/* serve() - add the two links in poll mode (@fds or @dir paths). */
static int serve(struct vm *vm, const char *dir, const int *fds)
{
	struct viommu_link_server_config sc = {
		.size = sizeof(sc), .mem = vm->mem, .log = logger,
	};
	struct viommu_pci_func *funcs[NLINKS] = {
		viommu_virtio_pci_func(vm->vp), viommu_dma_engine_func(vm->eng),
	};
	static const char *const names[NLINKS] = { "iommu", "dma0" };
	int err = viommu_link_server_create(&sc, &vm->srv);

	for (int i = 0; !err && i < NLINKS; i++) {
		char path[108];
		struct viommu_link_config lc = {
			.size = sizeof(lc), .proto = VIOMMU_LINK_VFIO_USER,
			.func = funcs[i], .fd = fds ? fds[i] : -1,
			.name = names[i], .poll_mode = true,
		};
		unsigned int id;

		if (!fds) {
			snprintf(path, sizeof(path), "%s/%s.sock", dir,
				 names[i]);
			lc.path = path;
		}
		err = viommu_link_server_add(vm->srv, &lc, &id);
		if (!err && !fds)
			printf("link_poll: %s on %s\n", names[i], path);
	}
	return err;
}

/*
 * loop() - the embedder's event loop: poll every open link's fd, run the
 * ready ones; stop on a signal or when every link has ended.
 */
static void loop(struct vm *vm, int sig_fd)
{
	int ended[NLINKS] = { 0 };

	for (;;) {
		struct pollfd p[NLINKS + 1];
		int n = 0, map[NLINKS + 1];

		for (int i = 0; i < NLINKS; i++) {
			if (ended[i])
				continue;
			p[n].fd = viommu_link_server_poll_fd(vm->srv, i);
			p[n].events = POLLIN;
			map[n++] = i;
		}
		if (!n)
			return;
		p[n].fd = sig_fd;
		p[n].events = POLLIN;
		if (poll(p, n + 1, -1) < 0 && errno != EINTR)
			return;
		if (sig_fd >= 0 && p[n].revents)
			return;
		for (int k = 0; k < n; k++) {
			int r;

			if (!p[k].revents)
				continue;
			r = viommu_link_server_run_once(vm->srv, map[k]);
			if (r > 0) {
				printf("link_poll: link %d ended: %s\n", map[k],
				       viommu_link_end_name(r));
				ended[map[k]] = 1;
			}
		}
	}
}

static void teardown(struct vm *vm)
{
	viommu_link_server_destroy(vm->srv);
	viommu_dma_engine_destroy(vm->eng);
	viommu_endpoint_destroy(vm->ep);
	viommu_virtio_pci_destroy(vm->vp);
	viommu_virtio_iommu_destroy(vm->vi);
	viommu_ctx_destroy(vm->ctx);
	viommu_mem_destroy(vm->mem);
}

/* ---- --self-test: a tiny vfio-user client ------------------------------- */

/* request() - send command @cmd with @len payload bytes; read the reply. */
static int request(int fd, uint16_t id, uint16_t cmd, const void *payload,
		   uint32_t len, struct vm *vm, uint8_t *reply, size_t rsize)
{
	uint8_t msg[64] = { 0 };
	uint32_t size = 16 + len;
	ssize_t n;

	memcpy(msg, &id, 2);
	memcpy(msg + 2, &cmd, 2);
	memcpy(msg + 4, &size, 4);
	memcpy(msg + 16, payload, len);
	if (write(fd, msg, size) != (ssize_t)size)
		return -1;
	/* The link is ours to run: serve it, then read the answer. */
	if (viommu_link_server_run_once(vm->srv, 0) != 0)
		return -1;
	n = read(fd, reply, rsize);
	return n >= 16 ? (int)n : -1;
}

static int self_test(struct vm *vm)
{
	uint8_t r[512], ver[4] = { 0 }, info[16] = { 16 }, rd[16] = { 0 };
	uint32_t region = 7, count = 4, flags, vendor_device;
	int sv[2], fails = 0, n;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ||
	    serve(vm, NULL, (int[]){ sv[0], -1 }) != -EINVAL) {
		/* a link needs an fd or a path: the second add must fail */
		fprintf(stderr, "link_poll: self-test set-up failed\n");
		return 1;
	}
	n = request(sv[1], 1, 1, ver, sizeof(ver), vm, r, sizeof(r));
	fails += n < 20 || !strstr((char *)r + 20, "max_msg_fds");
	printf("  VERSION: %s\n", n >= 20 ? (char *)r + 20 : "no reply");
	n = request(sv[1], 2, 4, info, sizeof(info), vm, r, sizeof(r));
	memcpy(&flags, r + 20, 4);
	fails += n != 32 || flags != 3;
	printf("  DEVICE_GET_INFO: flags %#x, %u regions\n", flags,
	       n == 32 ? r[24] : 0);
	memcpy(rd + 8, &region, 4);
	memcpy(rd + 12, &count, 4);
	n = request(sv[1], 3, 9, rd, sizeof(rd), vm, r, sizeof(r));
	memcpy(&vendor_device, r + 32, 4);
	fails += n != 36 || vendor_device != 0x10571af4;
	printf("  config space: vendor:device %04x:%04x\n",
	       vendor_device & 0xffff, vendor_device >> 16);
	close(sv[1]);
	n = viommu_link_server_run_once(vm->srv, 0);
	fails += n != VIOMMU_LINK_END_HANGUP;
	printf("  after the client closed: %s\n", viommu_link_end_name(n));
	printf("link_poll self-test: %s\n", fails ? "FAILED" : "ok");
	return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct vm vm;
	sigset_t set;
	int rc = 1, sig_fd;

	if (argc != 2 || !strcmp(argv[1], "--help")) {
		fprintf(argc == 2 ? stdout : stderr,
			"usage: link_poll DIR | --self-test\n");
		return argc == 2 ? 0 : 2;
	}
	if (build(&vm)) {
		fprintf(stderr, "link_poll: building the devices failed\n");
		goto out;
	}
	if (!strcmp(argv[1], "--self-test")) {
		rc = self_test(&vm);
		goto out;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (serve(&vm, argv[1], NULL)) {
		fprintf(stderr, "link_poll: cannot serve in %s\n", argv[1]);
		goto out;
	}
	loop(&vm, sig_fd);
	rc = 0;
out:
	teardown(&vm);
	return rc;
}
