/*
 * mpqemu.c - the x-pci-proxy-dev protocol ("mpqemu", QEMU 7.2 hw/remote/;
 * mpqemu.h has the wire format), one of the link server's protocols
 * (src/link/link.h).
 *
 * Concept: the link server hands us a readable socket; serve() takes one
 * message: the 16-byte header (fds ride on the message's first byte),
 * then exactly the payload the command needs.  It receives into a buffer
 * the size of the largest message, one receive for a whole message when
 * the peer sent it in one piece (a syscall less per message than a header
 * read and a payload read: a kick of the proxy's driver is one BAR_WRITE).
 * Bytes of later messages that came along stay in the buffer for the
 * next serve() (the pending() hook says one is whole).  A message is
 * validated completely (command, exact payload size, fd count, fields)
 * before it touches the PCI function.  The protocol has no error reply: a
 * bad message logs one line and ends the link; received fds are closed
 * unless kept (SET_IRQFD keeps its two; the memory layer dups
 * SYNC_SYSMEM's).
 *
 * fds and a receive that took more than one message: the kernel hands a
 * message's fds to the receive that first takes bytes of it, and ends that
 * receive with it, so fds that came with several messages' bytes belong
 * to one of the later ones.  They go to the first message of that receive
 * whose command carries fds (SYNC_SYSMEM, SET_IRQFD; QEMU sends only
 * those without waiting for a reply, so this is exact for it), else to
 * the message being read, as an exact read would have given them.
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
	/* received bytes [0, rx_end): the message served last is the first
	 * rx_used of them (dropped at the next read), later ones follow */
	uint8_t rx[MPQEMU_HDR_SIZE + MPQEMU_MAX_PAYLOAD];
	uint32_t rx_end, rx_used;
	/* fds that came with the message starting at rx[held_at], a later
	 * one than the message being read (nheld or held_over: some) */
	int held[LINK_MAX_RX_FDS];
	unsigned int nheld;
	bool held_over;
	uint32_t held_at;
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

/*
 * msg_len() - the whole length of the message whose header is at @h, if
 * the header is valid (known command, its exact payload size).
 */
static bool msg_len(const uint8_t *h, uint64_t *len)
{
	int32_t cmd;
	uint64_t size;

	memcpy(&cmd, h, sizeof(cmd));
	memcpy(&size, h + 8, sizeof(size));
	if (cmd < 0 || cmd >= MPQEMU_CMD_COUNT || size != cmd_sizes[cmd])
		return false;
	*len = MPQEMU_HDR_SIZE + size;
	return true;
}

/* carries_fds() - whether the valid header at @h is of a command with fds. */
static bool carries_fds(const uint8_t *h)
{
	int32_t cmd;

	memcpy(&cmd, h, sizeof(cmd));
	return cmd == MPQEMU_SYNC_SYSMEM || cmd == MPQEMU_SET_IRQFD;
}

/* close_held() - close the fds held for a later message. */
static void close_held(struct mpq *m)
{
	for (unsigned int i = 0; i < m->nheld; i++)
		link_close_fd(&m->held[i]);
	m->nheld = 0;
	m->held_over = false;
}

/*
 * drop_served() - forget the message served last; fds held for the one
 * that now comes first become the link's current fds.
 */
static void drop_served(struct mpq *m)
{
	struct link *l = m->l;

	if (m->rx_used) {
		memmove(m->rx, m->rx + m->rx_used, m->rx_end - m->rx_used);
		m->rx_end -= m->rx_used;
		m->held_at -= m->rx_used;
		m->rx_used = 0;
	}
	if ((m->nheld || m->held_over) && m->held_at == 0) {
		for (unsigned int i = 0; i < m->nheld; i++) {
			if (l->rx_nfds < LINK_MAX_RX_FDS) {
				l->rx_fds[l->rx_nfds++] = m->held[i];
				continue;
			}
			link_close_fd(&m->held[i]);
			l->rx_fd_overflow = true;
		}
		l->rx_fd_overflow |= m->held_over;
		m->nheld = 0;
		m->held_over = false;
	}
}

/*
 * fds_owner() - the offset in rx of the message that owns fds received
 * with bytes [@from, rx_end): the first message with bytes there whose
 * command carries fds, else the one being read (0).
 */
static uint32_t fds_owner(const struct mpq *m, uint32_t from)
{
	uint64_t at = 0, len;

	while (at + MPQEMU_HDR_SIZE <= m->rx_end &&
	       msg_len(m->rx + at, &len)) {
		if (at + len > from && carries_fds(m->rx + at))
			return (uint32_t)at;
		at += len;
	}
	return 0;
}

/*
 * place_fds() - fds l->rx_fds[@n0..] (and an overflow, if @over0 was
 * clear) came with the receive of bytes [@from, rx_end): leave them to
 * the message being read or hold them for the later one that owns them.
 * Return: 0 or an end reason.
 */
static int place_fds(struct mpq *m, uint32_t from, unsigned int n0,
		     bool over0)
{
	struct link *l = m->l;
	uint32_t at = fds_owner(m, from);

	if (at == 0)
		return 0;
	if (m->nheld || m->held_over)
		return link_bad(l, "fds for two queued messages");
	for (unsigned int i = n0; i < l->rx_nfds; i++)
		m->held[m->nheld++] = l->rx_fds[i];
	m->held_over = l->rx_fd_overflow && !over0;
	l->rx_nfds = n0;
	l->rx_fd_overflow = over0;
	m->held_at = at;
	return 0;
}

/* recv_more() - one receive into the buffer.  0 or an end reason. */
static int recv_more(struct mpq *m)
{
	struct link *l = m->l;
	uint32_t from = m->rx_end;
	unsigned int n0 = l->rx_nfds;
	bool over0 = l->rx_fd_overflow;
	size_t got;
	int err = link_recv_some(l, m->rx + from, sizeof(m->rx) - from, &got);

	if (err)
		return link_recv_end(l, err, from);
	m->rx_end += (uint32_t)got;
	if (l->rx_nfds != n0 || l->rx_fd_overflow != over0)
		return place_fds(m, from, n0, over0);
	return 0;
}

/* check_header() - decode and check the header at rx.  0 or an end reason. */
static int check_header(struct mpq *m)
{
	memcpy(&m->cmd, m->rx, sizeof(m->cmd));
	memcpy(&m->size, m->rx + 8, sizeof(m->size));
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
	return 0;
}

/*
 * read_msg() - have one whole message at the start of rx, receiving what
 * is missing; its payload goes to m->p.  0 or an end reason.
 */
static int read_msg(struct mpq *m)
{
	uint64_t need = MPQEMU_HDR_SIZE;
	bool checked = false;
	int err;

	drop_served(m);
	while (m->rx_end < need) {
		err = recv_more(m);
		if (err)
			return err;
		if (!checked && m->rx_end >= MPQEMU_HDR_SIZE) {
			err = check_header(m);
			if (err)
				return err;
			checked = true;
			need = MPQEMU_HDR_SIZE + m->size;
		}
	}
	if (!checked) { /* a whole header was already here */
		err = check_header(m);
		if (err)
			return err;
		need = MPQEMU_HDR_SIZE + m->size;
		while (m->rx_end < need) {
			err = recv_more(m);
			if (err)
				return err;
		}
	}
	memcpy(m->p.b, m->rx + MPQEMU_HDR_SIZE, (size_t)m->size);
	m->rx_used = (uint32_t)need;
	ATOMIC_INC(m->l->st.msgs[m->cmd]);
	trace_link_msg(m->l->tr, m->l->id, (unsigned int)m->cmd, 0, m->size,
		       m->l->rx_nfds);
	return 0;
}

/* mpq_pending() - a whole message (or a bad header) waits in rx. */
static bool mpq_pending(struct link *l)
{
	struct mpq *m = mpq_of(l);
	uint32_t have = m->rx_end - m->rx_used;
	uint64_t len;

	if (have < MPQEMU_HDR_SIZE)
		return false;
	return !msg_len(m->rx + m->rx_used, &len) || have >= len;
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
	close_held(m);
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
	.pending = mpq_pending,
};
