/*
 * mpqemu.c - the x-pci-proxy-dev protocol ("mpqemu", QEMU 7.2 hw/remote/;
 * mpqemu.h has the wire format), one of the link server's protocols
 * (src/link/link.h).
 *
 * Concept: the link server hands us a readable socket; serve() reads one
 * message: the 16-byte header (fds ride on the message's first byte),
 * then exactly the payload the command needs, so a read never reaches
 * into the next message.  A message is validated completely (command,
 * exact payload size, fd count, fields) before it touches the PCI
 * function.  The protocol has no error reply: a bad message logs one line
 * and ends the link; received fds are closed unless kept (SET_IRQFD keeps
 * its two; the memory layer dups SYNC_SYSMEM's).
 *
 * Guest RAM: SYNC_SYSMEM replaces the whole map through link_apply_ram()
 * (every proxy device sends the same map: the first link to send one owns
 * guest RAM, the others' are validated and dropped).
 *
 * INTx: the link is the function's intx_fn.  A rising edge writes 1 to the
 * intr eventfd; when the resample eventfd (the link's event fd) fires, the
 * guest ended the interrupt, and the line is still asserted, intr is
 * written again (KVM irqfd level semantics).  Under TCG QEMU 7.2 delivers
 * neither; the function's MSI-X has no sink on this door.  m->irq_lock
 * guards the intr fd and the level, since any thread that makes the device
 * raise INTx comes here.
 */
#include "link/mpqemu.h"
#include "link/link.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct mpq {
	struct link *l;
	int32_t cmd;
	uint64_t size;
	union {
		uint8_t b[MPQEMU_MAX_PAYLOAD];
		uint64_t align;
	} p;
	pthread_mutex_t irq_lock;
	int intr_fd; /* irq_lock */
	bool level;  /* irq_lock */
};

static const char *const cmd_names[MPQEMU_CMD_COUNT] = {
	"SYNC_SYSMEM", "RET", "PCI_CFGWRITE", "PCI_CFGREAD",
	"BAR_WRITE", "BAR_READ", "SET_IRQFD", "DEVICE_RESET",
};

/* Exact payload size of each command. */
static const uint64_t cmd_sizes[MPQEMU_CMD_COUNT] = {
	MPQEMU_SYSMEM_SIZE, MPQEMU_RET_SIZE, MPQEMU_CFG_SIZE, MPQEMU_CFG_SIZE,
	MPQEMU_BAR_SIZE, MPQEMU_BAR_SIZE, 0, 0,
};

static const char *cmd_name(unsigned int cmd)
{
	return cmd < MPQEMU_CMD_COUNT ? cmd_names[cmd] : "?";
}

static struct mpq *mpq_of(struct link *l)
{
	return l->ps;
}

/* ---- interrupts ------------------------------------------------------- */

/* signal_intr() - write 1 to the intr eventfd.  irq_lock held. */
static void signal_intr(struct mpq *m)
{
	bool ok = link_signal(m->intr_fd);

	if (ok)
		ATOMIC_INC(m->l->st.irq_signals);
	trace_link_irq(m->l->tr, m->l->id, 0, 0, ok);
}

/* mpq_intx() - the function's INTx sink: signal on a rising edge. */
static void mpq_intx(void *opaque, bool level)
{
	struct mpq *m = opaque;

	pthread_mutex_lock(&m->irq_lock);
	if (level && !m->level)
		signal_intr(m);
	m->level = level;
	pthread_mutex_unlock(&m->irq_lock);
}

/*
 * mpq_event() - the resample eventfd fired (the guest ended the
 * interrupt): consume it and re-signal if the line is still asserted.  A
 * resample fd that does not behave like an eventfd is dropped.
 */
static void mpq_event(struct link *l)
{
	struct mpq *m = mpq_of(l);
	uint64_t v;
	int err = link_eventfd_read(l->event_fd, &v);

	if (err == -EAGAIN)
		return;
	if (err) {
		log_warn(link_log(l), "mpqemu %s: resample fd unreadable, "
			 "ignoring it", l->name);
		link_set_event_fd(l, -1);
		return;
	}
	ATOMIC_INC(l->st.unmasks);
	pthread_mutex_lock(&m->irq_lock);
	if (m->level)
		signal_intr(m);
	pthread_mutex_unlock(&m->irq_lock);
}

/* ---- messages --------------------------------------------------------- */

/* send_ret() - reply RET with @value.  Return: 0 or an end reason. */
static int send_ret(struct mpq *m, uint64_t value)
{
	uint8_t buf[MPQEMU_HDR_SIZE + MPQEMU_RET_SIZE] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	int32_t cmd = MPQEMU_RET;
	uint64_t size = MPQEMU_RET_SIZE;

	memcpy(buf, &cmd, sizeof(cmd));
	memcpy(buf + 8, &size, sizeof(size));
	memcpy(buf + MPQEMU_HDR_SIZE, &value, sizeof(value));
	trace_link_reply(m->l->tr, m->l->id, (unsigned int)m->cmd, 0,
			 MPQEMU_RET_SIZE, 0);
	return link_send(m->l, &iov, 1);
}

/* read_msg() - receive one whole message.  0 or an end reason. */
static int read_msg(struct mpq *m)
{
	uint8_t hdr[MPQEMU_HDR_SIZE];
	size_t got;
	int err = link_recv_exact(m->l, hdr, sizeof(hdr), &got);

	if (err)
		return link_recv_end(m->l, err, got);
	memcpy(&m->cmd, hdr, sizeof(m->cmd));
	memcpy(&m->size, hdr + 8, sizeof(m->size));
	if (m->cmd < 0 || m->cmd >= MPQEMU_CMD_COUNT)
		return link_bad(m->l, "unknown command %d", m->cmd);
	if (m->size > MPQEMU_MAX_PAYLOAD)
		return link_bad(m->l, "%s payload of %llu bytes is too big",
				cmd_names[m->cmd], (unsigned long long)m->size);
	if (m->size != cmd_sizes[m->cmd])
		return link_bad(m->l, "%s with %llu payload bytes (expected "
				"%llu)", cmd_names[m->cmd],
				(unsigned long long)m->size,
				(unsigned long long)cmd_sizes[m->cmd]);
	err = link_recv_exact(m->l, m->p.b, (size_t)m->size, &got);
	if (err)
		return link_recv_end(m->l, err, got + sizeof(hdr));
	ATOMIC_INC(m->l->st.msgs[m->cmd]);
	trace_link_msg(m->l->tr, m->l->id, (unsigned int)m->cmd, 0, m->size,
		       m->l->rx_nfds);
	return 0;
}

/* want_fds() - the message must carry exactly @n fds. */
static int want_fds(struct mpq *m, unsigned int n)
{
	struct link *l = m->l;

	if (l->rx_fd_overflow || l->rx_nfds != n)
		return link_bad(l, "%s with %s%u fds (expected %u)",
				cmd_names[m->cmd],
				l->rx_fd_overflow ? "over " : "", l->rx_nfds,
				n);
	return 0;
}

/* apply_sysmem() - install @n regions (if this link owns guest RAM). */
static int apply_sysmem(struct mpq *m, const struct viommu_mem_region *r,
			unsigned int n)
{
	struct link *l = m->l;
	uint64_t bytes = 0;
	int err = link_apply_ram(l, r, n);

	for (unsigned int i = 0; i < n; i++)
		trace_link_dma(l->tr, l->id, 0, r[i].gpa, r[i].size, err == 1,
			       err < 0 ? -err : 0);
	if (err == 1)
		return 0;
	if (err)
		return link_bad(l, "SYNC_SYSMEM refused by guest memory: %s",
				strerror(-err));
	for (unsigned int i = 0; i < n; i++)
		bytes += r[i].size;
	/* QEMU re-sends the map on every change (dozens per boot). */
	vlog(link_log(l), READ_ONCE(l->st.ram_applied) > 1 ?
	     VIOMMU_LOG_DEBUG : VIOMMU_LOG_INFO,
	     "mpqemu %s: guest RAM set: %u regions, %llu KiB", l->name, n,
	     (unsigned long long)(bytes >> 10));
	return 0;
}

/* do_sysmem() - SYNC_SYSMEM: validate the regions, then apply them. */
static int do_sysmem(struct mpq *m)
{
	struct viommu_mem_region r[MPQEMU_MAX_FDS];
	struct link *l = m->l;
	const uint8_t *p = m->p.b;
	unsigned int i, n = l->rx_nfds;
	uint64_t last;

	if (l->rx_fd_overflow || n == 0 || n > MPQEMU_MAX_FDS)
		return link_bad(l, "SYNC_SYSMEM with %s%u fds (expected 1 to "
				"%d)", l->rx_fd_overflow ? "over " : "", n,
				MPQEMU_MAX_FDS);
	for (i = 0; i < MPQEMU_MAX_FDS; i++) {
		uint64_t gpa = link_get64(p + 8 * i), size = link_get64(p + 64 + 8 * i);
		int64_t off = (int64_t)link_get64(p + 128 + 8 * i);

		if (i >= n) {
			if (gpa || size || off)
				return link_bad(l, "SYNC_SYSMEM region %u has "
						"no fd", i);
			continue;
		}
		if (!range_last(gpa, size, &last) || off < 0)
			return link_bad(l, "SYNC_SYSMEM region %u: gpa 0x%llx "
					"size 0x%llx offset %lld", i,
					(unsigned long long)gpa,
					(unsigned long long)size, (long long)off);
		if (link_fd_shrinkable(l, l->rx_fds[i]))
			return link_bad(l, "SYNC_SYSMEM region %u: a RAM file "
					"not sealed against shrinking (the "
					"peer is not trusted with it)", i);
		r[i] = (struct viommu_mem_region){ .gpa = gpa, .size = size,
						   .fd = l->rx_fds[i],
						   .fd_offset = (uint64_t)off,
						   .flags = link_mem_flags(l) };
	}
	return apply_sysmem(m, r, n);
}

/* do_cfg() - PCI_CFGREAD / PCI_CFGWRITE. */
static int do_cfg(struct mpq *m, bool write)
{
	const uint8_t *p = m->p.b;
	uint32_t addr = link_get32(p), val = link_get32(p + 4);
	int32_t len = (int32_t)link_get32(p + 8);
	int err = want_fds(m, 0);

	if (err)
		return err;
	if ((len != 1 && len != 2 && len != 4) ||
	    addr > PCI_CFG_SIZE - (uint32_t)len)
		return link_bad(m->l, "%s at 0x%x length %d",
				cmd_names[m->cmd], addr, len);
	if (write) {
		pci_cfg_write(m->l->func, addr, val, (unsigned int)len);
		return send_ret(m, 0);
	}
	return send_ret(m, pci_cfg_read(m->l->func, addr, (unsigned int)len));
}

/*
 * do_bar() - BAR_READ / BAR_WRITE at an absolute address.  An access no
 * enabled BAR decodes reads all ones and is counted in the link's errors.
 */
static int do_bar(struct mpq *m, bool write)
{
	const uint8_t *p = m->p.b;
	uint64_t addr = link_get64(p), val = link_get64(p + 8);
	uint32_t size = link_get32(p + 16);
	uint8_t memory = p[20];
	int err = want_fds(m, 0);

	if (err)
		return err;
	if ((size != 1 && size != 2 && size != 4 && size != 8) || memory > 1)
		return link_bad(m->l, "%s size %u memory %u",
				cmd_names[m->cmd], size, memory);
	err = pci_bar_access(m->l->func, addr, !memory, write, &val, size);
	if (err) {
		ATOMIC_INC(m->l->st.errors);
		log_debug(link_log(m->l), "mpqemu %s: %s 0x%llx/%u unclaimed",
			  m->l->name, cmd_names[m->cmd],
			  (unsigned long long)addr, size);
		val = UINT64_MAX;
	}
	if (write)
		return send_ret(m, 0);
	if (size < 8)
		val &= (1ull << (size * 8)) - 1;
	return send_ret(m, val);
}

/* do_irqfd() - SET_IRQFD: keep {intr, resample}, replacing older ones. */
static int do_irqfd(struct mpq *m)
{
	struct link *l = m->l;
	int err = want_fds(m, 2);

	if (err)
		return err;
	for (int i = 0; i < 2; i++) {
		int fl = fcntl(l->rx_fds[i], F_GETFL);

		if (!link_is_eventfd(l->rx_fds[i]))
			return link_bad(l, "SET_IRQFD fd %d is not an eventfd",
					i);
		if (fl < 0 || fcntl(l->rx_fds[i], F_SETFL, fl | O_NONBLOCK) < 0)
			return link_bad(l, "SET_IRQFD fd %d: %s", i,
					strerror(errno));
	}
	link_set_event_fd(l, l->rx_fds[1]);
	pthread_mutex_lock(&m->irq_lock);
	link_close_fd(&m->intr_fd);
	m->intr_fd = l->rx_fds[0];
	if (m->level)
		signal_intr(m);
	pthread_mutex_unlock(&m->irq_lock);
	l->rx_fds[0] = l->rx_fds[1] = -1; /* kept */
	return 0;
}

/* process() - act on the validated message.  0 or an end reason. */
static int process(struct mpq *m)
{
	int err;

	switch (m->cmd) {
	case MPQEMU_SYNC_SYSMEM:
		return do_sysmem(m);
	case MPQEMU_PCI_CFGWRITE:
	case MPQEMU_PCI_CFGREAD:
		return do_cfg(m, m->cmd == MPQEMU_PCI_CFGWRITE);
	case MPQEMU_BAR_WRITE:
	case MPQEMU_BAR_READ:
		return do_bar(m, m->cmd == MPQEMU_BAR_WRITE);
	case MPQEMU_SET_IRQFD:
		return do_irqfd(m);
	case MPQEMU_DEVICE_RESET:
		err = want_fds(m, 0);
		if (err)
			return err;
		pci_func_reset(m->l->func);
		return send_ret(m, 0);
	default: /* MPQEMU_RET */
		return link_bad(m->l, "unexpected RET from the peer");
	}
}

static int mpq_serve(struct link *l)
{
	struct mpq *m = mpq_of(l);
	int why = read_msg(m);

	return why ? why : process(m);
}

/* ---- link life -------------------------------------------------------- */

/* mpq_peer_gone() - close the interrupt fds. */
static void mpq_peer_gone(struct link *l)
{
	struct mpq *m = mpq_of(l);

	link_set_event_fd(l, -1);
	pthread_mutex_lock(&m->irq_lock);
	link_close_fd(&m->intr_fd);
	pthread_mutex_unlock(&m->irq_lock);
}

/*
 * mpq_init() - become the function's INTx sink, starting from the level
 * the function last reported (under its intx_lock, so no edge is lost).
 */
static int mpq_init(struct link *l)
{
	struct mpq *m = xzalloc(link_alloc(l), sizeof(*m));
	struct pci_func *f = l->func;

	if (!m)
		return -ENOMEM;
	m->l = l;
	m->intr_fd = -1;
	pthread_mutex_init(&m->irq_lock, NULL);
	l->ps = m;
	pci_func_hide_msix(f); /* the proxy has no MSI path: INTx only */
	pthread_mutex_lock(&f->intx_lock);
	m->level = f->intx_out;
	f->intx_fn = mpq_intx;
	f->intx_opaque = m;
	pthread_mutex_unlock(&f->intx_lock);
	return 0;
}

static void mpq_fini(struct link *l)
{
	struct mpq *m = mpq_of(l);
	struct pci_func *f = l->func;

	pthread_mutex_lock(&f->intx_lock);
	if (f->intx_fn == mpq_intx && f->intx_opaque == m) {
		f->intx_fn = NULL;
		f->intx_opaque = NULL;
	}
	pthread_mutex_unlock(&f->intx_lock);
	mpq_peer_gone(l);
	pthread_mutex_destroy(&m->irq_lock);
	xfree(link_alloc(l), m);
	l->ps = NULL;
}

const struct link_proto link_proto_mpqemu = {
	.name = "mpqemu",
	.cmd_name = cmd_name,
	.init = mpq_init,
	.fini = mpq_fini,
	.serve = mpq_serve,
	.event = mpq_event,
	.peer_gone = mpq_peer_gone,
};
