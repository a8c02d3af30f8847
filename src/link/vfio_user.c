/*
 * vfio_user.c - the vfio-user protocol (vfio_user.h has the wire format):
 * one PCI function served to a vfio-user client, QEMU's vfio-user-pci.
 *
 * Concept: the link server (link.c) hands us a readable socket; serve()
 * reads one whole message (header, then exactly the payload the header
 * announces, at most VFU_MAX_PAYLOAD bytes into a buffer allocated once
 * per link), checks it completely, acts on the PCI function or the guest
 * memory, and replies unless the client asked for no reply (posted
 * writes).  A message whose header cannot be trusted (not a command, a
 * size below the header or above our limit, unknown flag bits, anything
 * before VERSION) ends the link with one log line; a well-framed message
 * that is wrong (bad field, wrong payload size, wrong fd count, unknown
 * command) gets an error reply with an errno and leaves everything as it
 * was.  Refusals are logged at a decreasing rate (the first 16, then
 * powers of two) and always counted.
 *
 * Guest RAM: DMA_MAP windows (with their fds) are kept in a table of
 * VFU_MAX_DMA_MAPS; every change re-applies the whole table through
 * link_apply_ram(), which lets the memory layer keep unchanged mappings
 * and wait for readers before unmapping.  A window must be page aligned,
 * come with exactly one fd that reaches past its end, and not overlap
 * another (EEXIST).  A window without an fd (client memory that only
 * DMA_READ/DMA_WRITE messages reach; QEMU sends its ROMs that way) becomes
 * an I/O region of the memory layer whose callbacks send DMA_READ /
 * DMA_WRITE to the client (src/link/vfu_dma.c); with a domain, one I/O
 * region at VFU_IO_BASE holds every such window, each mapped IOVA ->
 * VFU_IO_BASE + IOVA.  Replies arriving in the normal serve loop are
 * handed to the DMA channel; commands it stashed while the link thread
 * waited for a reply are served first, in order.
 *
 * Interrupts: INTx is level triggered and automasked: when the function
 * raises its line and INTx is unmasked, the trigger eventfd is written and
 * INTx masks itself until the client's UNMASK (sent after the guest's
 * EOI), which re-triggers if the line is still high.  An UNMASK eventfd
 * (KVM's resampler) is honoured too.  MSI-X vectors are delivered to
 * their trigger eventfds; QEMU emulates the MSI-X table itself, so the
 * function runs with msix_peer_table set and per-vector masking comes as
 * SET_IRQS MASK/UNMASK.  v->irq_lock guards every eventfd and the INTx
 * state, since any thread that makes the device interrupt comes here.
 */
#include "link/vfio_user.h"
#include "link/link.h"
#include "link/vfu_dma.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dma_win {
	uint64_t addr, size, off;
	uint32_t flags;
	int fd;
};

/* A file whose windows a domain-mode link maps (one region of its mem). */
struct dma_file {
	dev_t dev;
	ino_t ino;
	uint64_t size;
	uint64_t base; /* where the file starts in the link's memory */
	int fd;
};

#define VFU_MAX_FILES 8
#define VFU_FILE_SLOT (1ull << 40) /* 1 TiB of the link's memory per file */
/* Domain mode: fd-less windows' IOVAs, offset into one I/O region. */
#define VFU_IO_BASE (1ull << 62)
#define VFU_IO_SIZE (1ull << 62)

struct vfu {
	struct link *l;
	bool negotiated;
	/* the message being served */
	uint16_t id, cmd;
	uint32_t flags;
	uint32_t rx_error; /* a reply's error field */
	uint32_t plen;
	uint8_t *p; /* VFU_MAX_PAYLOAD bytes */
	int end;    /* set when a reply could not be sent */
	uint32_t refusals;
	struct vfu_dma *dma; /* DMA_READ/WRITE to the client */
	uint64_t io_base;    /* I/O region GPA - client address */
	bool io_applied;     /* some I/O region is in the memory */
	/* guest RAM */
	struct dma_win win[VFU_MAX_DMA_MAPS];
	unsigned int nwin;
	/* domain mode: the files the windows come from */
	struct dma_file files[VFU_MAX_FILES];
	unsigned int nfiles;
	/* interrupts (irq_lock) */
	pthread_mutex_t irq_lock;
	int intx_fd;
	bool intx_level, intx_masked;
	unsigned int nvec;
	int msix_fd[VFU_MAX_MSIX];
};

static const char *const cmd_names[VFU_CMD_COUNT] = {
	"?", "VERSION", "DMA_MAP", "DMA_UNMAP", "DEVICE_GET_INFO",
	"GET_REGION_INFO", "GET_REGION_IO_FDS", "GET_IRQ_INFO", "SET_IRQS",
	"REGION_READ", "REGION_WRITE", "DMA_READ", "DMA_WRITE",
	"DEVICE_RESET", "DIRTY_PAGES", "REGION_WRITE_MULTI", "DEVICE_FEATURE",
	"MIG_DATA_READ", "MIG_DATA_WRITE",
};

static const char *cmd_name(unsigned int cmd)
{
	return cmd < VFU_CMD_COUNT ? cmd_names[cmd] : "?";
}

static struct vfu *vfu_of(struct link *l)
{
	return l->ps;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/*
 * refuse() - log why the current message is refused (rate limited) and
 * return -@err for an error reply.
 */
static int refuse(struct vfu *v, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(struct vfu *v, int err, const char *fmt, ...)
{
	uint32_t n = ++v->refusals;
	char why[160];
	va_list ap;

	ATOMIC_INC(v->l->st.errors);
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	rl_warn(&v->l->rl, link_log(v->l), "vfio-user %s: %s refused: %s "
		"(%s; %u refused so far)", v->l->name, cmd_name(v->cmd), why,
		strerror(err), n);
	return -err;
}

/* ---- replies ------------------------------------------------------------ */

/* send_reply() - reply header + @a (@alen) + @b (@blen), unless posted. */
static void send_reply(struct vfu *v, const void *a, uint32_t alen,
		       const void *b, uint32_t blen)
{
	uint8_t h[VFU_HDR_SIZE];
	struct iovec iov[3] = {
		{ h, sizeof(h) },
		{ (void *)a, alen },
		{ (void *)b, blen },
	};
	uint16_t cmd = v->cmd;
	int why;

	if (v->flags & VFU_F_NO_REPLY)
		return;
	memcpy(h, &v->id, 2);
	memcpy(h + 2, &cmd, 2);
	put32(h + 4, VFU_HDR_SIZE + alen + blen);
	put32(h + 8, VFU_T_REPLY);
	put32(h + 12, 0);
	trace_link_reply(v->l->tr, v->l->id, cmd, v->id, alen + blen, 0);
	why = link_send(v->l, iov, blen ? 3 : alen ? 2 : 1);
	if (why)
		v->end = why;
}

/* send_error() - the error reply: the header alone, ERROR and @err set. */
static void send_error(struct vfu *v, int err)
{
	uint8_t h[VFU_HDR_SIZE];
	struct iovec iov = { h, sizeof(h) };
	uint16_t cmd = v->cmd;
	int why;

	if (v->flags & VFU_F_NO_REPLY)
		return;
	memcpy(h, &v->id, 2);
	memcpy(h + 2, &cmd, 2);
	put32(h + 4, VFU_HDR_SIZE);
	put32(h + 8, VFU_T_REPLY | VFU_F_ERROR);
	put32(h + 12, (uint32_t)err);
	trace_link_reply(v->l->tr, v->l->id, cmd, v->id, 0, err);
	why = link_send(v->l, &iov, 1);
	if (why)
		v->end = why;
}

/* ---- VERSION ------------------------------------------------------------ */

/*
 * Our capabilities.  max_dma_maps: 64 windows as guest RAM; a link with a
 * domain keeps its windows as mappings, so the protocol's maximum (65535)
 * holds there.
 */
static const char caps_json[] =
	"{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":4096,"
	"\"pgsizes\":4096,\"max_dma_maps\":64}}";
static const char caps_json_iova[] =
	"{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":4096,"
	"\"pgsizes\":4096,\"max_dma_maps\":65535}}";

/*
 * do_version() - major must be 0; the client's JSON, if any, must be a
 * NUL-terminated string of at most VFU_MAX_VERSION_DATA bytes.  We answer
 * 0.0 with our capabilities (a subset of what QEMU proposes).
 */
static int do_version(struct vfu *v)
{
	uint8_t r[4] = { 0 };
	uint16_t major;

	if (v->negotiated)
		return refuse(v, EINVAL, "a second VERSION");
	if (v->plen < 4)
		return link_bad(v->l, "VERSION of %u bytes", v->plen);
	memcpy(&major, v->p, 2);
	if (major != 0)
		return link_bad(v->l, "VERSION %u: only 0 is known", major);
	if (v->plen > 4 && (v->plen - 4 > VFU_MAX_VERSION_DATA ||
			    v->p[v->plen - 1] != '\0'))
		return link_bad(v->l, "VERSION capabilities not a bounded, "
				"NUL-terminated string");
	v->negotiated = true;
	vfu_dma_set_xfer(v->dma, v->plen > 4 ? (const char *)v->p + 4 : NULL);
	if (v->l->domain)
		send_reply(v, r, sizeof(r), caps_json_iova,
			   sizeof(caps_json_iova));
	else
		send_reply(v, r, sizeof(r), caps_json, sizeof(caps_json));
	log_info(link_log(v->l), "vfio-user %s: version 0.0 negotiated",
		 v->l->name);
	return 0;
}

/* ---- DMA_MAP / DMA_UNMAP ------------------------------------------------ */

/* io_read() / io_write() - the I/O regions' callbacks: ask the client. */
static int io_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	struct vfu *v = opaque;

	return vfu_dma_rw(v->dma, gpa - v->io_base, buf, len, false);
}

static int io_write(void *opaque, uint64_t gpa, const void *buf, size_t len)
{
	struct vfu *v = opaque;

	return vfu_dma_rw(v->dma, gpa - v->io_base, (void *)buf, len, true);
}

static struct viommu_mem_io_region io_region(struct vfu *v, uint64_t gpa,
					     uint64_t size, uint32_t flags)
{
	return (struct viommu_mem_io_region){
		.gpa = gpa, .size = size, .flags = flags, .read = io_read,
		.write = io_write, .opaque = v,
	};
}

/*
 * apply_windows() - @win (@n) as guest RAM: fd windows mapped, fd-less
 * ones as I/O regions (unless @fd_only: the link is ending and its
 * callbacks must go).  0; or -errno.
 */
static int apply_windows(struct vfu *v, const struct dma_win *win,
			 unsigned int n, bool fd_only)
{
	struct viommu_mem_region r[VFU_MAX_DMA_MAPS];
	struct viommu_mem_io_region io[VFU_MAX_DMA_MAPS];
	struct viommu_mem_layout lay = { .size = sizeof(lay), .regions = r,
					 .io = io };
	unsigned int k = 0;
	int err;

	for (unsigned int i = 0; i < n; i++) {
		uint32_t ro = win[i].flags & VFU_DMA_WRITE_OK ?
			      0 : VIOMMU_MEM_F_READONLY;

		if (win[i].fd < 0) {
			if (!fd_only)
				io[lay.nio++] = io_region(v, win[i].addr,
							  win[i].size, ro);
			continue;
		}
		r[k++] = (struct viommu_mem_region){
			.gpa = win[i].addr,
			.size = win[i].size,
			.fd = win[i].fd,
			.fd_offset = win[i].off,
			.flags = (win[i].flags & VFU_DMA_WRITE_OK ?
				  0 : VIOMMU_MEM_F_READONLY) |
				 link_mem_flags(v->l),
		};
	}
	lay.n = k;
	vfu_dma_drain(v->dma); /* a worker's reply first (vfu_dma.h) */
	err = link_apply_layout(v->l, &lay);
	if (!err)
		v->io_applied = lay.nio != 0;
	return err < 0 ? err : 0;
}

/*
 * check_map_fd() - @fd must be a file reaching @off + @size, open for
 * reading (and writing if @flags has WRITE), so the memory layer's mmap
 * is not what refuses it (one log line per message there).
 */
static int check_map_fd(struct vfu *v, int fd, uint64_t off, uint64_t size,
			uint32_t flags)
{
	int acc = fcntl(fd, F_GETFL);

	struct stat st;

	if (fstat(fd, &st) < 0)
		return refuse(v, EBADF, "fd cannot be used");
	if (!S_ISREG(st.st_mode))
		return refuse(v, EINVAL, "fd is not a file (memfd)");
	acc = acc < 0 ? -1 : (acc & O_ACCMODE);
	if (acc != O_RDWR && (acc != O_RDONLY || flags & VFU_DMA_WRITE_OK))
		return refuse(v, EBADF, "fd not open for the window's access");
	if (off > (uint64_t)st.st_size || size > (uint64_t)st.st_size - off)
		return refuse(v, EINVAL, "window past the fd's end");
	if (link_fd_shrinkable(v->l, fd))
		return refuse(v, EPERM, "file not sealed against shrinking "
			      "(F_SEAL_SHRINK; the peer is not trusted with "
			      "it)");
	return 0;
}

/* check_map() - the fields of a DMA_MAP request.  0 or -errno. */
static int check_map(struct vfu *v, const struct dma_win *w)
{
	uint64_t last = 0;

	if (v->plen != VFU_DMA_MAP_SIZE || link_get32(v->p) != VFU_DMA_MAP_SIZE)
		return refuse(v, EINVAL, "size or argsz not 32");
	if (w->flags & ~(VFU_DMA_READ_OK | VFU_DMA_WRITE_OK))
		return refuse(v, EINVAL, "unknown flags");
	if (!range_last(w->addr, w->size, &last) ||
	    (w->addr | w->size | w->off) % VFU_PGSIZE)
		return refuse(v, EINVAL, "empty, wrapping or unaligned window "
			      "[%#llx, +%#llx) at offset %#llx",
			      (unsigned long long)w->addr,
			      (unsigned long long)w->size,
			      (unsigned long long)w->off);
	if (v->l->rx_nfds > 1 || v->l->rx_fd_overflow)
		return refuse(v, EINVAL, "more than one fd");
	for (unsigned int i = 0; i < v->nwin; i++)
		if (ranges_overlap(w->addr, last, v->win[i].addr,
				   v->win[i].addr + v->win[i].size - 1))
			return refuse(v, EEXIST, "overlaps a mapped window");
	if (v->nwin >= VFU_MAX_DMA_MAPS)
		return refuse(v, ENOSPC, "too many windows");
	if (!v->l->rx_nfds)
		return 0;
	return check_map_fd(v, v->l->rx_fds[0], w->off, w->size, w->flags);
}

/* ---- DMA windows as IOVAs of a domain (link config @domain) ---------- */

/*
 * apply_files() - the link's memory: one region per file, and the I/O
 * region of the fd-less windows once there is one (@io).  0 or -errno.
 */
static int apply_files(struct vfu *v, unsigned int n, bool io)
{
	struct viommu_mem_region r[VFU_MAX_FILES];
	struct viommu_mem_io_region ior = io_region(v, VFU_IO_BASE,
						    VFU_IO_SIZE, 0);
	struct viommu_mem_layout lay = { .size = sizeof(lay), .regions = r,
					 .n = n, .io = &ior, .nio = io };
	int err;

	for (unsigned int i = 0; i < n; i++)
		r[i] = (struct viommu_mem_region){
			.gpa = v->files[i].base, .size = v->files[i].size,
			.fd = v->files[i].fd, .flags = link_mem_flags(v->l),
		};
	vfu_dma_drain(v->dma); /* a worker's reply first (vfu_dma.h) */
	err = link_apply_layout(v->l, &lay); /* own memory: always applied */
	if (!err)
		v->io_applied = io;
	return err;
}

/*
 * file_base() - where the window's file (the message's fd) lives in the
 * link's memory, adding it (or its growth) first.  0 with *@base; -errno
 * for an error reply.
 */
static int file_base(struct vfu *v, uint64_t *base)
{
	int fd = v->l->rx_fds[0], err;
	struct dma_file *f = NULL;
	struct stat st;
	unsigned int i;

	if (fstat(fd, &st) < 0)
		return refuse(v, EBADF, "fd cannot be used");
	for (i = 0; i < v->nfiles && !f; i++)
		if (v->files[i].dev == st.st_dev && v->files[i].ino == st.st_ino)
			f = &v->files[i];
	if (f && (uint64_t)st.st_size <= f->size) {
		*base = f->base;
		return 0;
	}
	if ((uint64_t)st.st_size > VFU_FILE_SLOT || st.st_size % VFU_PGSIZE)
		return refuse(v, EINVAL, "file size not 4 KiB aligned or above "
			      "1 TiB");
	if (!f && v->nfiles == VFU_MAX_FILES)
		return refuse(v, ENOSPC, "more than %u distinct files",
			      VFU_MAX_FILES);
	if (!f) {
		f = &v->files[v->nfiles];
		*f = (struct dma_file){ .dev = st.st_dev, .ino = st.st_ino,
					.base = (v->nfiles + 1) * VFU_FILE_SLOT,
					.fd = fd };
	}
	{
		uint64_t old = f->size;

		f->size = (uint64_t)st.st_size;
		err = apply_files(v, v->nfiles + (f == &v->files[v->nfiles]),
				  v->io_applied);
		if (err) {
			f->size = old; /* a failed call changes nothing */
			return refuse(v, -err, "the memory layer refused the "
				      "file");
		}
	}
	if (f->fd == fd) {
		if (f == &v->files[v->nfiles])
			v->nfiles++;
		v->l->rx_fds[0] = -1; /* kept */
	}
	*base = f->base;
	return 0;
}

/*
 * io_base() - an fd-less window of domain mode: mapped to VFU_IO_BASE +
 * its IOVA, in the I/O region (installed now if it is not yet).
 */
static int io_base(struct vfu *v, const struct dma_win *w, uint64_t *base)
{
	int err;

	if (w->addr >= VFU_IO_SIZE || w->size > VFU_IO_SIZE - w->addr)
		return refuse(v, EINVAL, "window without an fd above 2^62");
	if (!v->io_applied) {
		err = apply_files(v, v->nfiles, true);
		if (err)
			return refuse(v, -err, "the memory layer refused the "
				      "I/O region");
	}
	*base = VFU_IO_BASE;
	return 0;
}

/* map_iova() - window @w as a mapping of the domain. */
static int map_iova(struct vfu *v, const struct dma_win *w)
{
	uint32_t prot = (w->flags & VFU_DMA_READ_OK ? VIOMMU_READ : 0) |
			(w->flags & VFU_DMA_WRITE_OK ? VIOMMU_WRITE : 0);
	bool fdless = !v->l->rx_nfds;
	uint64_t base = 0;
	int err;

	if (!prot)
		return refuse(v, EINVAL, "window neither readable nor "
			      "writable");
	err = fdless ? io_base(v, w, &base) : file_base(v, &base);
	if (err)
		return err;
	if (fdless)
		base += w->addr - w->off; /* IOVA -> VFU_IO_BASE + IOVA */
	err = viommu_domain_map(v->l->domain, w->addr, w->addr + w->size - 1,
				base + w->off, prot);
	if (err == -EEXIST || err == -EADDRINUSE)
		return refuse(v, EEXIST, "IOVA window [%#llx, +%#llx) overlaps "
			      "a mapping", (unsigned long long)w->addr,
			      (unsigned long long)w->size);
	if (err)
		/* a core limit (mappings) vs host memory, as the core says */
		return refuse(v, err == -ENOSPC || err == -ENOMEM ? -err :
			      EINVAL,
			      "the domain refused the mapping (%s)",
			      strerror(-err));
	/* not kept in v->win: the domain holds every window, any number */
	send_reply(v, NULL, 0, NULL, 0);
	return 0;
}

/* unmap_iova() - DMA_UNMAP of domain mode.  0 or -errno. */
static int unmap_iova(struct vfu *v, uint32_t flags, uint64_t addr,
		      uint64_t size)
{
	uint64_t last;
	int err;

	if (flags) {
		viommu_domain_unmap(v->l->domain, 0, UINT64_MAX, NULL);
		goto done;
	}
	if (!range_last(addr, size, &last))
		return refuse(v, EINVAL, "empty or wrapping range");
	err = viommu_domain_unmap(v->l->domain, addr, last, NULL);
	if (err == -ENOENT)
		return refuse(v, ENOENT, "no window in [%#llx, +%#llx)",
			      (unsigned long long)addr,
			      (unsigned long long)size);
	if (err)
		return refuse(v, EINVAL, "the range splits a window (%s)",
			      strerror(-err));
done:
	send_reply(v, v->p, VFU_DMA_UNMAP_SIZE, NULL, 0);
	return 0;
}

static int do_dma_map(struct vfu *v)
{
	struct dma_win w = {
		.flags = link_get32(v->p + 4),
		.off = link_get64(v->p + 8),
		.addr = link_get64(v->p + 16),
		.size = link_get64(v->p + 24),
		.fd = -1,
	};
	int err = check_map(v, &w);

	if (err)
		return err;
	if (v->l->domain)
		return map_iova(v, &w);
	if (v->l->rx_nfds)
		w.fd = v->l->rx_fds[0];
	v->win[v->nwin] = w;
	err = apply_windows(v, v->win, v->nwin + 1, false);
	if (err)
		return refuse(v, -err, "the memory layer refused the window");
	if (v->l->rx_nfds)
		v->l->rx_fds[0] = -1; /* kept */
	v->nwin++;
	send_reply(v, NULL, 0, NULL, 0);
	return 0;
}

/* VFIO_DMA_UNMAP_FLAG_ALL: every window (addr and size 0). */
#define UNMAP_ALL 0x2u

static int do_dma_unmap(struct vfu *v)
{
	uint32_t flags = link_get32(v->p + 4);
	uint64_t addr = link_get64(v->p + 8), size = link_get64(v->p + 16);
	struct dma_win keep[VFU_MAX_DMA_MAPS];
	unsigned int i, n = 0, gone = 0;
	int err;

	if (v->plen != VFU_DMA_UNMAP_SIZE || link_get32(v->p) < VFU_DMA_UNMAP_SIZE)
		return refuse(v, EINVAL, "size not 24 or argsz below 24");
	if (flags & ~UNMAP_ALL || (flags && (addr || size)))
		return refuse(v, EINVAL, "unsupported flags");
	if (v->l->domain)
		return unmap_iova(v, flags, addr, size);
	for (i = 0; i < v->nwin; i++) {
		if (flags || (v->win[i].addr == addr &&
			      v->win[i].size == size))
			gone++;
		else
			keep[n++] = v->win[i];
	}
	if (!gone && !flags)
		return refuse(v, ENOENT, "no window with that address and "
			      "size");
	err = apply_windows(v, keep, n, false);
	if (err)
		return refuse(v, -err, "the memory layer refused the change");
	/* Readers of the dropped windows are done: close their fds. */
	for (i = 0; i < v->nwin; i++) {
		bool kept = false;

		for (unsigned int j = 0; j < n; j++)
			kept |= keep[j].addr == v->win[i].addr;
		if (!kept && v->win[i].fd >= 0)
			close(v->win[i].fd);
	}
	memcpy(v->win, keep, n * sizeof(keep[0]));
	v->nwin = n;
	send_reply(v, v->p, VFU_DMA_UNMAP_SIZE, NULL, 0);
	return 0;
}

/* ---- device, region and IRQ information --------------------------------- */

static int do_device_info(struct vfu *v)
{
	uint8_t r[VFU_INFO_SIZE];

	if (v->plen != VFU_INFO_SIZE || link_get32(v->p) < VFU_INFO_SIZE)
		return refuse(v, EINVAL, "size not 16 or argsz below 16");
	put32(r, VFU_INFO_SIZE);
	put32(r + 4, VFU_DEV_FLAG_RESET | VFU_DEV_FLAG_PCI);
	put32(r + 8, VFU_NUM_REGIONS);
	put32(r + 12, VFU_NUM_IRQS);
	send_reply(v, r, sizeof(r), NULL, 0);
	return 0;
}

/* region_size() - bytes of region @idx (0: the region does not exist). */
static uint64_t region_size(struct vfu *v, uint32_t idx)
{
	if (idx == VFU_REGION_CONFIG)
		return PCI_CFG_SIZE;
	if (idx < PCI_NUM_BARS)
		return v->l->func->bars[idx].size;
	return 0;
}

static int do_region_info(struct vfu *v)
{
	uint32_t idx = link_get32(v->p + 8);
	uint8_t r[VFU_REGION_INFO_SIZE] = { 0 };
	uint64_t size;

	if (v->plen != VFU_REGION_INFO_SIZE ||
	    link_get32(v->p) < VFU_REGION_INFO_SIZE)
		return refuse(v, EINVAL, "size not 32 or argsz below 32");
	if (idx >= VFU_NUM_REGIONS)
		return refuse(v, EINVAL, "no such region");
	size = region_size(v, idx);
	put32(r, VFU_REGION_INFO_SIZE);
	put32(r + 4, size ? VFU_RGN_READ | VFU_RGN_WRITE : 0);
	put32(r + 8, idx);
	put64(r + 16, size);
	send_reply(v, r, sizeof(r), NULL, 0);
	return 0;
}

/* irq_count() - interrupts of index @idx the function has. */
static uint32_t irq_count(struct vfu *v, uint32_t idx)
{
	if (idx == VFU_IRQ_INTX)
		return v->l->func->cfg[PCI_INTERRUPT_PIN] ? 1 : 0;
	if (idx == VFU_IRQ_MSIX)
		return v->nvec;
	return 0; /* no MSI, no error or request interrupts */
}

static int do_irq_info(struct vfu *v)
{
	static const uint32_t flags[VFU_NUM_IRQS] = {
		[VFU_IRQ_INTX] = VFU_IRQ_INFO_EVENTFD | VFU_IRQ_INFO_MASKABLE |
				 VFU_IRQ_INFO_AUTOMASKED,
		[VFU_IRQ_MSI] = VFU_IRQ_INFO_EVENTFD | VFU_IRQ_INFO_NORESIZE,
		[VFU_IRQ_MSIX] = VFU_IRQ_INFO_EVENTFD | VFU_IRQ_INFO_NORESIZE,
		[VFU_IRQ_ERR] = VFU_IRQ_INFO_EVENTFD,
		[VFU_IRQ_REQ] = VFU_IRQ_INFO_EVENTFD,
	};
	uint32_t idx = link_get32(v->p + 8);
	uint8_t r[VFU_INFO_SIZE];

	if (v->plen != VFU_INFO_SIZE || link_get32(v->p) < VFU_INFO_SIZE)
		return refuse(v, EINVAL, "size not 16 or argsz below 16");
	if (idx >= VFU_NUM_IRQS)
		return refuse(v, EINVAL, "no such IRQ index");
	put32(r, VFU_INFO_SIZE);
	put32(r + 4, flags[idx]);
	put32(r + 8, idx);
	put32(r + 12, irq_count(v, idx));
	send_reply(v, r, sizeof(r), NULL, 0);
	return 0;
}

/* ---- interrupts --------------------------------------------------------- */

/* intx_signal() - trigger INTx and automask.  irq_lock held. */
static void intx_signal(struct vfu *v)
{
	if (v->intx_fd < 0 || v->intx_masked || !v->intx_level)
		return;
	if (link_signal(v->intx_fd)) {
		ATOMIC_INC(v->l->st.irq_signals);
		trace_link_irq(v->l->tr, v->l->id, 0, 0, true);
	} else {
		trace_link_irq(v->l->tr, v->l->id, 0, 0, false);
	}
	v->intx_masked = true;
}

/* vfu_intx() - the function's INTx sink. */
static void vfu_intx(void *opaque, bool level)
{
	struct vfu *v = opaque;

	pthread_mutex_lock(&v->irq_lock);
	v->intx_level = level;
	intx_signal(v);
	pthread_mutex_unlock(&v->irq_lock);
}

/* intx_unmask() - the guest ended the interrupt: re-trigger if still high. */
static void intx_unmask(struct vfu *v)
{
	ATOMIC_INC(v->l->st.unmasks);
	pthread_mutex_lock(&v->irq_lock);
	v->intx_masked = false;
	intx_signal(v);
	pthread_mutex_unlock(&v->irq_lock);
}

/* vfu_msix() - the function's MSI-X sink (the client holds addr/data). */
static void vfu_msix(void *opaque, unsigned int vector, uint64_t addr,
		     uint32_t data)
{
	struct vfu *v = opaque;

	(void)addr;
	(void)data;
	pthread_mutex_lock(&v->irq_lock);
	if (vector < v->nvec && link_signal(v->msix_fd[vector])) {
		ATOMIC_INC(v->l->st.irq_signals);
		trace_link_irq(v->l->tr, v->l->id, 1, vector, true);
	} else {
		trace_link_irq(v->l->tr, v->l->id, 1, vector, false);
	}
	pthread_mutex_unlock(&v->irq_lock);
}

/* trigger_fd() - the trigger eventfd slot of (@idx, @i), or NULL. */
static int *trigger_fd(struct vfu *v, uint32_t idx, uint32_t i)
{
	if (idx == VFU_IRQ_INTX)
		return &v->intx_fd;
	return idx == VFU_IRQ_MSIX ? &v->msix_fd[i] : NULL;
}

/* set_triggers() - install (or with no fds remove) trigger eventfds. */
static void set_triggers(struct vfu *v, uint32_t idx, uint32_t start,
			 uint32_t count)
{
	pthread_mutex_lock(&v->irq_lock);
	for (uint32_t i = 0; i < count; i++) {
		int *slot = trigger_fd(v, idx, start + i);

		link_close_fd(slot);
		if (v->l->rx_nfds) {
			*slot = v->l->rx_fds[i];
			v->l->rx_fds[i] = -1; /* kept */
		}
	}
	if (idx == VFU_IRQ_INTX)
		intx_signal(v); /* a line already high */
	pthread_mutex_unlock(&v->irq_lock);
}

/*
 * disable_all() - SET_IRQS DATA_NONE TRIGGER count 0: drop index @idx.
 * INTx enabled afresh starts unmasked, as in VFIO: QEMU without KVM's
 * resampler sends UNMASK only after an interrupt it delivered, so a mask
 * kept across a disable would hold the line off for good.
 */
static void disable_all(struct vfu *v, uint32_t idx)
{
	pthread_mutex_lock(&v->irq_lock);
	for (uint32_t i = 0; i < irq_count(v, idx); i++)
		link_close_fd(trigger_fd(v, idx, i));
	if (idx == VFU_IRQ_INTX)
		v->intx_masked = false;
	pthread_mutex_unlock(&v->irq_lock);
	if (idx == VFU_IRQ_INTX)
		link_set_event_fd(v->l, -1);
}

/* irq_action() - NONE/BOOL data: trigger, mask or unmask each selected. */
static void irq_action(struct vfu *v, uint32_t idx, uint32_t start,
		       uint32_t count, uint32_t action, const uint8_t *sel)
{
	for (uint32_t i = 0; i < count; i++) {
		if (sel && !sel[i])
			continue;
		if (action == VFU_IRQ_ACTION_TRIGGER) {
			pthread_mutex_lock(&v->irq_lock);
			if (link_signal(*trigger_fd(v, idx, start + i)))
				ATOMIC_INC(v->l->st.irq_signals);
			pthread_mutex_unlock(&v->irq_lock);
		} else if (idx == VFU_IRQ_MSIX) {
			pci_msix_set_mask(v->l->func, start + i,
					  action == VFU_IRQ_ACTION_MASK);
		} else if (action == VFU_IRQ_ACTION_UNMASK) {
			intx_unmask(v);
		} else {
			pthread_mutex_lock(&v->irq_lock);
			v->intx_masked = true;
			pthread_mutex_unlock(&v->irq_lock);
		}
	}
}

/* check_eventfds() - every received fd must be an eventfd. */
static int check_eventfds(struct vfu *v, uint32_t count)
{
	if (v->l->rx_fd_overflow ||
	    (v->l->rx_nfds != 0 && v->l->rx_nfds != count))
		return refuse(v, EINVAL, "fd count does not match count");
	/* the only message that keeps several fds: hold it to what we said */
	if (v->l->rx_nfds > VFU_MAX_MSG_FDS)
		return refuse(v, EINVAL, "more fds than max_msg_fds (%u)",
			      VFU_MAX_MSG_FDS);
	for (unsigned int i = 0; i < v->l->rx_nfds; i++)
		if (!link_is_eventfd(v->l->rx_fds[i]))
			return refuse(v, EINVAL, "not an eventfd");
	return 0;
}

/* set_eventfds() - DATA_EVENTFD: triggers, or INTx's unmask eventfd. */
static int set_eventfds(struct vfu *v, uint32_t idx, uint32_t start,
			uint32_t count, uint32_t action)
{
	int err = check_eventfds(v, count);

	if (err)
		return err;
	if (action == VFU_IRQ_ACTION_TRIGGER) {
		set_triggers(v, idx, start, count);
		return 0;
	}
	if (action != VFU_IRQ_ACTION_UNMASK || idx != VFU_IRQ_INTX)
		return refuse(v, ENOTSUP, "mask eventfds are not supported");
	if (count) { /* count is 1 here */
		link_set_event_fd(v->l, v->l->rx_nfds ? v->l->rx_fds[0] : -1);
		if (v->l->rx_nfds)
			v->l->rx_fds[0] = -1; /* kept */
	}
	return 0;
}

/* popcount32() - bits set in @x. */
static unsigned int popcount32(uint32_t x)
{
	return (unsigned int)__builtin_popcount(x);
}

static int do_set_irqs(struct vfu *v)
{
	uint32_t flags, idx, start, count, data, action;

	if (v->plen < VFU_SET_IRQS_SIZE || link_get32(v->p) < VFU_SET_IRQS_SIZE)
		return refuse(v, EINVAL, "shorter than 20 bytes");
	flags = link_get32(v->p + 4);
	idx = link_get32(v->p + 8);
	start = link_get32(v->p + 12);
	count = link_get32(v->p + 16);
	data = flags & VFU_IRQ_DATA_MASK;
	action = flags & VFU_IRQ_ACTION_MASK_ALL;
	if (flags & ~(VFU_IRQ_DATA_MASK | VFU_IRQ_ACTION_MASK_ALL) ||
	    popcount32(data) != 1 || popcount32(action) != 1)
		return refuse(v, EINVAL, "not one data and one action flag");
	if (idx >= VFU_NUM_IRQS)
		return refuse(v, EINVAL, "no such IRQ index");
	if (v->plen != VFU_SET_IRQS_SIZE +
		       (data == VFU_IRQ_DATA_BOOL ? count : 0))
		return refuse(v, EINVAL, "size does not match the data");
	if (data != VFU_IRQ_DATA_EVENTFD && v->l->rx_nfds)
		return refuse(v, EINVAL, "fds without DATA_EVENTFD");
	if (data == VFU_IRQ_DATA_NONE && action == VFU_IRQ_ACTION_TRIGGER &&
	    count == 0 && start == 0) {
		disable_all(v, idx);
		goto done;
	}
	if (start > irq_count(v, idx) || count > irq_count(v, idx) - start)
		return refuse(v, EINVAL, "start/count past the index's IRQs");
	if (data == VFU_IRQ_DATA_EVENTFD) {
		int err = set_eventfds(v, idx, start, count, action);

		if (err)
			return err;
	} else {
		irq_action(v, idx, start, count, action,
			   data == VFU_IRQ_DATA_BOOL ? v->p + 20 : NULL);
	}
done:
	send_reply(v, NULL, 0, NULL, 0);
	return 0;
}

/* ---- region access ------------------------------------------------------ */

/* cfg_piece() - the access size for config bytes [@off, @off + @left). */
static unsigned int cfg_piece(uint64_t off, uint64_t left)
{
	if (off % 4 == 0 && left >= 4)
		return 4;
	return off % 2 == 0 && left >= 2 ? 2 : 1;
}

/* config_rw() - @count bytes of configuration space at @off. */
static void config_rw(struct vfu *v, uint64_t off, uint32_t count,
		      bool write, uint8_t *data)
{
	while (count) {
		unsigned int n = cfg_piece(off, count);
		uint32_t val = 0;

		if (write) {
			memcpy(&val, data, n);
			pci_cfg_write(v->l->func, (uint32_t)off, val, n);
		} else {
			val = pci_cfg_read(v->l->func, (uint32_t)off, n);
			memcpy(data, &val, n);
		}
		off += n;
		data += n;
		count -= n;
	}
}

/* check_rw() - region, offset and count of a REGION_READ/WRITE. */
static int check_rw(struct vfu *v, uint32_t region, uint64_t off,
		    uint32_t count)
{
	uint64_t size = region_size(v, region);

	if (region >= VFU_NUM_REGIONS || !size)
		return refuse(v, EINVAL, "no such region");
	if (!count || count > VFU_MAX_XFER || off >= size ||
	    count > size - off)
		return refuse(v, EINVAL, "count 0, too large, or past the "
			      "region's end");
	if (region != VFU_REGION_CONFIG && count != 1 && count != 2 &&
	    count != 4 && count != 8)
		return refuse(v, EINVAL, "BAR access not of 1, 2, 4 or 8 "
			      "bytes");
	return 0;
}

/* region_rw() - perform the access on @data.  0 or -errno. */
static int region_rw(struct vfu *v, uint32_t region, uint64_t off,
		     uint32_t count, bool write, uint8_t *data)
{
	uint64_t val = 0;
	int err;

	if (region == VFU_REGION_CONFIG) {
		config_rw(v, off, count, write, data);
		return 0;
	}
	if (write)
		memcpy(&val, data, count);
	err = pci_bar_rw(v->l->func, region, off, write, &val, count);
	if (err)
		return refuse(v, -err, "the BAR refused the access");
	if (!write)
		memcpy(data, &val, count);
	return 0;
}

static int do_region_read(struct vfu *v)
{
	uint64_t off = link_get64(v->p);
	uint32_t region = link_get32(v->p + 8), count = link_get32(v->p + 12);
	int err;

	if (v->plen != VFU_RW_SIZE)
		return refuse(v, EINVAL, "size not 16");
	err = check_rw(v, region, off, count);
	if (!err)
		err = region_rw(v, region, off, count, false, v->p + VFU_RW_SIZE);
	if (err)
		return err;
	send_reply(v, v->p, VFU_RW_SIZE, v->p + VFU_RW_SIZE, count);
	return 0;
}

static int do_region_write(struct vfu *v)
{
	uint64_t off;
	uint32_t region, count;
	int err;

	if (v->plen < VFU_RW_SIZE)
		return refuse(v, EINVAL, "shorter than 16 bytes");
	off = link_get64(v->p);
	region = link_get32(v->p + 8);
	count = link_get32(v->p + 12);
	if (count != v->plen - VFU_RW_SIZE)
		return refuse(v, EINVAL, "count does not match the size");
	err = check_rw(v, region, off, count);
	if (!err)
		err = region_rw(v, region, off, count, true, v->p + VFU_RW_SIZE);
	if (err)
		return err;
	send_reply(v, v->p, VFU_RW_SIZE, NULL, 0);
	return 0;
}

static int do_reset(struct vfu *v)
{
	if (v->plen)
		return refuse(v, EINVAL, "payload not empty");
	pci_func_reset(v->l->func);
	send_reply(v, NULL, 0, NULL, 0);
	return 0;
}

/* ---- messages ----------------------------------------------------------- */

/*
 * trace_dma() - the link_dma event of the DMA_MAP or DMA_UNMAP just
 * handled with result @err (returned): the window as the message names
 * it (0 where the payload is too short to hold it).
 */
static int trace_dma(struct vfu *v, int err)
{
	bool map = v->cmd == VFU_DMA_MAP;
	uint32_t need = map ? 32 : VFU_DMA_UNMAP_SIZE, flags;

	if (!trace_on(v->l->tr, VIOMMU_TRACE_LINK_DMA))
		return err;
	flags = v->plen >= need ? link_get32(v->p + 4) : 0;
	trace_link_dma(v->l->tr, v->l->id,
		       map ? 0 : (flags & UNMAP_ALL) ? 2 : 1,
		       v->plen >= need ? link_get64(v->p + (map ? 16 : 8)) : 0,
		       v->plen >= need ? link_get64(v->p + (map ? 24 : 16)) : 0,
		       flags, err < 0 ? -err : err > 0 ? EPROTO : 0);
	return err;
}

/* dispatch() - act on the message: 0, -errno (error reply) or an end. */
static int dispatch(struct vfu *v)
{
	switch (v->cmd) {
	case VFU_VERSION:
		return do_version(v);
	case VFU_DMA_MAP:
		return trace_dma(v, do_dma_map(v));
	case VFU_DMA_UNMAP:
		return trace_dma(v, do_dma_unmap(v));
	case VFU_DEVICE_GET_INFO:
		return do_device_info(v);
	case VFU_GET_REGION_INFO:
		return do_region_info(v);
	case VFU_GET_IRQ_INFO:
		return do_irq_info(v);
	case VFU_SET_IRQS:
		return do_set_irqs(v);
	case VFU_REGION_READ:
		return do_region_read(v);
	case VFU_REGION_WRITE:
		return do_region_write(v);
	case VFU_DEVICE_RESET:
		return do_reset(v);
	default:
		return refuse(v, ENOSYS, "command not supported");
	}
}

/*
 * check_header() - a received header @h: a reply must come after VERSION
 * and be of a bounded size; a command is checked as below.  0 or an end
 * reason.
 */
static int check_header(struct vfu *v, const struct vfu_rx *h)
{
	uint32_t size = h->size;

	v->id = h->id;
	v->cmd = h->cmd;
	v->flags = h->flags;
	v->rx_error = h->error;
	if ((v->flags & VFU_F_TYPE) == VFU_T_REPLY && v->negotiated &&
	    !(v->flags & ~(VFU_F_TYPE | VFU_F_ERROR)) &&
	    size >= VFU_HDR_SIZE && size - VFU_HDR_SIZE <= VFU_MAX_PAYLOAD) {
		v->plen = size - VFU_HDR_SIZE;
		return 0; /* for the DMA channel (vfu_dma_reply) */
	}
	if ((v->flags & VFU_F_TYPE) != VFU_T_COMMAND)
		return link_bad(v->l, "%s: not a command (flags %#x)",
				cmd_name(v->cmd), v->flags);
	if (v->flags & ~(VFU_F_TYPE | VFU_F_NO_REPLY))
		return link_bad(v->l, "%s: unknown flags %#x",
				cmd_name(v->cmd), v->flags);
	if (size < VFU_HDR_SIZE || size - VFU_HDR_SIZE > VFU_MAX_PAYLOAD)
		return link_bad(v->l, "%s: message size %u",
				cmd_name(v->cmd), size);
	if (!v->negotiated && v->cmd != VFU_VERSION)
		return link_bad(v->l, "%s before VERSION", cmd_name(v->cmd));
	v->plen = size - VFU_HDR_SIZE;
	return 0;
}

/* read_header() - receive and check a header.  0 or an end reason. */
static int read_header(struct vfu *v)
{
	uint8_t b[VFU_HDR_SIZE];
	struct vfu_rx h;
	size_t got;
	int err = link_recv_exact(v->l, b, sizeof(b), &got);

	if (err)
		return link_recv_end(v->l, err, got);
	memcpy(&h.id, b, 2);
	memcpy(&h.cmd, b + 2, 2);
	h.size = link_get32(b + 4);
	h.flags = link_get32(b + 8);
	h.error = link_get32(b + 12);
	return check_header(v, &h);
}

/*
 * next_message() - the next message into v->id... and v->p: the oldest
 * stashed one, else one from the socket.  *@reply: it is a reply (its
 * header in *@h).  0 or an end reason.
 */
static int next_message(struct vfu *v, struct vfu_rx *h, bool *reply)
{
	size_t got;
	int err;

	if (vfu_dma_unstash(v->dma, h, v->p)) {
		err = check_header(v, h);
		*reply = false; /* only commands are stashed */
		if (!err && (v->flags & VFU_F_TYPE) != VFU_T_COMMAND)
			err = link_bad(v->l, "stashed reply");
		return err;
	}
	err = read_header(v);
	if (err)
		return err;
	err = link_recv_exact(v->l, v->p, v->plen, &got);
	if (err)
		return link_recv_end(v->l, err, VFU_HDR_SIZE + got);
	*reply = (v->flags & VFU_F_TYPE) == VFU_T_REPLY;
	if (*reply) {
		h->id = v->id;
		h->cmd = v->cmd;
		h->flags = v->flags;
	}
	return 0;
}

static int vfu_serve(struct link *l)
{
	struct vfu *v = vfu_of(l);
	struct vfu_rx h = { 0 };
	bool reply = false;
	int err;

	v->end = next_message(v, &h, &reply);
	if (v->end)
		return v->end;
	if (reply) {
		h.error = v->rx_error;
		vfu_dma_reply(v->dma, &h, v->p, v->plen);
		return 0;
	}
	if (v->cmd < VIOMMU_LINK_MAX_CMDS)
		ATOMIC_INC(l->st.msgs[v->cmd]);
	trace_link_msg(l->tr, l->id, v->cmd, v->id, v->plen, l->rx_nfds);
	err = dispatch(v);
	if (err > 0)
		return err; /* the stream cannot be trusted: ends the link */
	if (err < 0)
		send_error(v, -err);
	if (!v->end) /* the DMA channel met the peer's end, or a stop */
		v->end = vfu_dma_end(v->dma);
	return v->end;
}

/* vfu_pending() - commands stashed while a DMA waited for its reply. */
static bool vfu_pending(struct link *l)
{
	return vfu_dma_stashed(vfu_of(l)->dma);
}

/* vfu_event() - INTx's unmask eventfd fired (KVM resampler style). */
static void vfu_event(struct link *l)
{
	uint64_t val;
	int err = link_eventfd_read(l->event_fd, &val);

	if (!err)
		intx_unmask(vfu_of(l));
	else if (err != -EAGAIN)
		link_set_event_fd(l, -1); /* not an eventfd after all */
}

/* vfu_peer_gone() - forget the peer's windows and eventfds. */
static void vfu_peer_gone(struct link *l)
{
	struct vfu *v = vfu_of(l);

	/* waiters first: their read sections must end before any remap */
	vfu_dma_close(v->dma);
	if (!l->own_mem && v->io_applied)
		apply_windows(v, v->win, v->nwin, true); /* callbacks go */
	if (l->domain)
		viommu_domain_unmap(l->domain, 0, UINT64_MAX, NULL);
	if (l->own_mem)
		viommu_mem_set_regions(l->mem, NULL, 0);
	for (unsigned int i = 0; i < v->nfiles; i++)
		link_close_fd(&v->files[i].fd);
	v->nfiles = 0;
	for (unsigned int i = 0; i < v->nwin; i++)
		if (v->win[i].fd >= 0)
			close(v->win[i].fd);
	v->nwin = 0;
	pthread_mutex_lock(&v->irq_lock);
	link_close_fd(&v->intx_fd);
	for (unsigned int i = 0; i < VFU_MAX_MSIX; i++)
		link_close_fd(&v->msix_fd[i]);
	pthread_mutex_unlock(&v->irq_lock);
	link_set_event_fd(l, -1);
}

/* hook() - become the function's INTx and MSI-X sink. */
static void hook(struct vfu *v)
{
	struct pci_func *f = v->l->func;

	pthread_mutex_lock(&f->intx_lock);
	pthread_mutex_lock(&v->irq_lock);
	v->intx_level = f->intx_out;
	pthread_mutex_unlock(&v->irq_lock);
	f->intx_fn = vfu_intx;
	f->intx_opaque = v;
	f->msix_peer_table = true;
	f->msix_fn = vfu_msix;
	f->msix_opaque = v;
	pthread_mutex_unlock(&f->intx_lock);
}

/* unhook() - stop being the function's interrupt sink. */
static void unhook(struct vfu *v)
{
	struct pci_func *f = v->l->func;

	pthread_mutex_lock(&f->intx_lock);
	if (f->intx_fn == vfu_intx && f->intx_opaque == v) {
		f->intx_fn = NULL;
		f->intx_opaque = NULL;
	}
	if (f->msix_fn == vfu_msix && f->msix_opaque == v) {
		f->msix_fn = NULL;
		f->msix_opaque = NULL;
		f->msix_peer_table = false;
	}
	pthread_mutex_unlock(&f->intx_lock);
}

static int vfu_init(struct link *l)
{
	struct vfu *v = xzalloc(link_alloc(l), sizeof(*v));

	if (!v)
		return -ENOMEM;
	v->p = xalloc(link_alloc(l), VFU_MAX_PAYLOAD);
	if (!v->p) {
		xfree(link_alloc(l), v);
		return -ENOMEM;
	}
	if (vfu_dma_create(l, &v->dma)) {
		xfree(link_alloc(l), v->p);
		xfree(link_alloc(l), v);
		return -ENOMEM;
	}
	v->l = l;
	v->io_base = l->domain ? VFU_IO_BASE : 0;
	v->intx_fd = -1;
	for (unsigned int i = 0; i < VFU_MAX_MSIX; i++)
		v->msix_fd[i] = -1;
	v->nvec = MIN(l->func->msix_nvec, VFU_MAX_MSIX);
	pthread_mutex_init(&v->irq_lock, NULL);
	l->ps = v;
	hook(v);
	return 0;
}

static void vfu_fini(struct link *l)
{
	struct vfu *v = vfu_of(l);

	unhook(v);
	vfu_peer_gone(l);
	pthread_mutex_destroy(&v->irq_lock);
	vfu_dma_destroy(v->dma);
	xfree(link_alloc(l), v->p);
	xfree(link_alloc(l), v);
	l->ps = NULL;
}

const struct link_proto link_proto_vfio_user = {
	.name = "vfio-user",
	.cmd_name = cmd_name,
	.init = vfu_init,
	.fini = vfu_fini,
	.serve = vfu_serve,
	.event = vfu_event,
	.peer_gone = vfu_peer_gone,
	.pending = vfu_pending,
};
