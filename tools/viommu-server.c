/*
 * viommu-server.c - serve a virtio-iommu and DMA-engine endpoints to QEMU
 * through one of two doors (docs/REAL-GUEST.md): vfio-user links for QEMU
 * 10.1 and later (`-device vfio-user-pci`, with interrupts), or mpqemu
 * links for QEMU 7.2's x-pci-proxy-dev (--door).
 *
 * Topology: link 0 is a virtio-pci virtio-iommu at 00:<iommu-slot>.0;
 * links 1..N are DMA engines and links N+1..N+M virtio-blk disks (--blk),
 * the endpoint functions, at 00:<endpoint-slot + i - 1>.0, each a core
 * endpoint whose ID is its BDF (0x28, 0x30, ... by default) and covered
 * by the VIOT (except a disk given `noiommu`, which does DMA to
 * guest-physical addresses and is left out of the VIOT).  Everything
 * shares one guest memory (filled by QEMU's SYNC_SYSMEM or DMA_MAP), one
 * translation context and one virtio-iommu.  Each link is an inherited socket
 * (--link I:fd=N) or a UNIX socket path the server listens on
 * (--link I:path=P, the form QEMU's vfio-user client connects to); each is
 * served by its own thread.  Socket paths are removed when their link
 * ends.
 *
 * The server runs until every link has ended (QEMU exited or closed them)
 * or SIGINT/SIGTERM/SIGHUP arrives, then prints counters on stdout (and as
 * JSON with --stats-json) and exits 0.  A link that sends a malformed
 * message is closed with a log line; the others go on.  Log lines go to
 * stderr as "viommu-server: LEVEL: ...".  Startup errors exit 1, usage
 * errors 2.
 */
#include "server.h"

/* ---- logging -------------------------------------------------------- */

/* log_line() - the struct viommu_log sink: one line on stderr. */
static void log_line(void *opaque, enum viommu_log_level lvl, const char *s)
{
	(void)opaque;
	fprintf(stderr, PROG ": %s: %s\n",
		lvl <= VIOMMU_LOG_DEBUG ? level_names[lvl] : "?", s);
}

/* say() - a log line of the tool itself, filtered by --log-level. */
void say(const struct world *w, enum viommu_log_level lvl,
		const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (lvl > w->log.level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_line(NULL, lvl, line);
}

/* trace_line() - --trace: one virtio-iommu request with its status. */
static void trace_line(void *opaque, uint8_t type, uint8_t status,
		       const char *line)
{
	struct world *w = opaque;

	(void)type;
	(void)status;
	__atomic_fetch_add(&w->trace_lines, 1, __ATOMIC_RELAXED);
	fprintf(stderr, PROG ": trace: %s\n", line);
}

/*
 * trace_rec() - --trace: one typed event, as one line in the library's
 * own format ("trace: core_map domain=0x1 iova=0x10000 ...").
 */
static void trace_rec(void *opaque, const struct viommu_trace_record *rec)
{
	struct world *w = opaque;
	char line[320];
	size_t off;

	off = (size_t)snprintf(line, sizeof(line), "%s", rec->event);
	for (unsigned int i = 0; i < rec->nfields && off < sizeof(line); i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off,
					" %s=%#" PRIx64, rec->names[i],
					rec->values[i]);
	__atomic_fetch_add(&w->trace_lines, 1, __ATOMIC_RELAXED);
	fprintf(stderr, PROG ": trace: %s\n", line);
}

const struct viommu_trace_sink *trace_sink(const struct world *w)
{
	return w->o->trace ? &w->tsink : NULL;
}

/*
 * trace_setup() - --trace: the typed events' sink (every event but
 * vi_request, which the request lines already show, unless
 * --trace-events names it) on the context; the front ends and the link
 * server take it when they are made.
 */
static int trace_setup(struct world *w)
{
	w->tsink = (struct viommu_trace_sink){
		.size = sizeof(w->tsink),
		.mask = w->o->trace_mask ? w->o->trace_mask :
			VIOMMU_TRACE_ALL & ~(1ull << VIOMMU_TRACE_VI_REQUEST),
		.fn = trace_rec, .opaque = w,
	};
	return viommu_ctx_set_trace_sink(w->ctx, trace_sink(w));
}

/* ---- set-up --------------------------------------------------------- */

/* link_ended() - a link is over: wake the main loop. */
static void link_ended(void *opaque, unsigned int id, int why)
{
	struct world *w = opaque;
	uint64_t one = 1;

	say(w, why == VIOMMU_LINK_END_STOPPED ? VIOMMU_LOG_DEBUG :
						  VIOMMU_LOG_INFO,
	    "link %u (%s) ended: %s", id, viommu_link_server_name(w->lsrv, id),
	    viommu_link_end_name(why));
	if (write(w->ev_fd, &one, sizeof(one)) < 0) {
		/* the counter is non-zero already: the loop will look */
	}
}

/* make_core() - guest memory, context and virtio-iommu. */
static int make_core(struct world *w)
{
	struct viommu_mem_config mc = { .log = w->log };
	struct viommu_ctx_config cc = { .size = sizeof(cc), .log = w->log };
	struct viommu_virtio_iommu_config vc = w->o->vi;
	int err;

	vc.size = sizeof(vc);

	err = viommu_mem_create(&mc, &w->mem);
	if (err)
		return err;
	cc.mem = w->mem;
	cc.limits.max_mappings = w->o->max_mappings;
	err = viommu_ctx_create(&cc, &w->ctx);
	if (!err && w->o->trace)
		err = trace_setup(w);
	if (err)
		return err;
	if (w->o->no_iommu || FRAME_IOMMU(w->o))
		return 0;
	vc.ctx = w->ctx;
	vc.mem = w->mem;
	vc.log = w->log;
	vc.features = DEV_FEATURES_ALL & ~w->o->dev_off;
	vc.ring_features = RING_FEATURES_ALL & ~w->o->ring_off;
	if (!vc.ring_features) /* 0 would mean "all" */
		vc.ring_features = F(VIOMMU_VIRTIO_F_VERSION_1);
	err = viommu_virtio_iommu_create(&vc, &w->vi);
	if (err)
		return err;
	if (w->o->trace) {
		viommu_virtio_iommu_set_trace(w->vi, trace_line, w);
		err = viommu_virtio_iommu_set_trace_sink(w->vi, trace_sink(w));
		if (err)
			return err;
	}
	return viommu_virtio_pci_create(viommu_virtio_iommu_dev(w->vi),
					"iommu", &w->log, NULL, &w->vp);
}

/*
 * own_space() - --no-iommu: engine @i's own memory and context, and a
 * PAGING domain that its link fills with the IOVA windows the peer's
 * vIOMMU maps (DMA_MAP/UNMAP), so the engine's DMA is translated - with
 * the windows' permissions, and a fault where nothing is mapped - by the
 * mappings QEMU's virtio-iommu decided.
 */
static int own_space(struct world *w, unsigned int i)
{
	struct viommu_mem_config mc = { .log = w->log };
	struct viommu_ctx_config cc = { .size = sizeof(cc), .log = w->log };
	struct viommu_domain_config dc = { .kind = VIOMMU_DOMAIN_PAGING,
					   .tag = i };
	int err = viommu_mem_create(&mc, &w->emem[i]);

	if (err)
		return err;
	cc.mem = w->emem[i];
	cc.limits.max_mappings = w->o->max_mappings;
	err = viommu_ctx_create(&cc, &w->ectx[i]);
	if (err)
		return err;
	return viommu_domain_create(w->ectx[i], &dc, &w->edom[i]);
}

/* make_engines() - one endpoint and DMA engine per endpoint link. */
static int make_engines(struct world *w)
{
	unsigned int i;
	int err;

	for (i = 0; i < w->o->endpoints; i++) {
		struct viommu_mem *mem = w->mem;
		struct viommu_ctx *ctx = w->ctx;

		if (w->o->no_iommu) {
			err = own_space(w, i);
			if (err)
				return err;
			mem = w->emem[i];
			ctx = w->ectx[i];
		}
		err = viommu_endpoint_create(ctx, endpoint_bdf(w->o, i),
					     &w->ep[i]);
		if (!err && w->edom[i])
			err = viommu_endpoint_attach(w->ep[i], VIOMMU_NO_PASID,
						     w->edom[i]);
		if (err)
			return err;
		snprintf(w->eng_name[i], sizeof(w->eng_name[i]), "dma%u", i);
		err = viommu_dma_engine_create(w->ep[i], mem, w->eng_name[i],
					       &w->log, NULL, &w->eng[i]);
		if (err)
			return err;
		w->neng = i + 1;
	}
	return 0;
}

/*
 * func_space() - endpoint function @f's guest memory and endpoint: with
 * --no-iommu its own space (own_space()), and an endpoint unless
 * @no_iommu (then the device does DMA to guest-physical addresses and
 * *@ep stays NULL).  Return: 0 or -errno.
 */
static int func_space(struct world *w, unsigned int f, bool no_iommu,
		      struct viommu_mem **mem, struct viommu_endpoint **ep)
{
	struct viommu_ctx *ctx = w->ctx;
	int err;

	*mem = w->mem;
	*ep = NULL;
	if (w->o->no_iommu) {
		err = own_space(w, f);
		if (err)
			return err;
		*mem = w->emem[f];
		ctx = w->ectx[f];
	}
	if (no_iommu)
		return 0;
	err = viommu_endpoint_create(ctx, endpoint_bdf(w->o, f), &w->ep[f]);
	if (!err && w->edom[f])
		err = viommu_endpoint_attach(w->ep[f], VIOMMU_NO_PASID,
					     w->edom[f]);
	if (!err)
		*ep = w->ep[f];
	return err;
}

/*
 * make_blk() - disk @j (endpoint function @f): its endpoint (unless
 * noiommu: then it does DMA to guest-physical addresses), the virtio-blk
 * device and its virtio-pci function.
 */
static int make_blk(struct world *w, unsigned int j, unsigned int f)
{
	const struct blk_opt *b = &w->o->blks[j];
	struct viommu_virtio_blk_config bc = {
		.size = sizeof(bc), .mem = w->mem, .path = b->file,
		.capacity = b->mem_size, .read_only = b->ro,
		.num_queues = b->queues, .queue_size = b->queue_size,
		.ring_features = RING_FEATURES_ALL & ~w->o->ring_off,
		.serial = b->serial, .log = w->log,
	};
	int err;

	if (!bc.ring_features)
		bc.ring_features = F(VIOMMU_VIRTIO_F_VERSION_1);
	snprintf(w->blk_name[j], sizeof(w->blk_name[j]), "blk%u", j);
	err = func_space(w, f, b->no_iommu, &bc.mem, &bc.ep);
	if (err)
		return err;
	err = viommu_virtio_blk_create(&bc, &w->blk[j]);
	if (err) {
		say(w, VIOMMU_LOG_ERROR, "%s (%s): %s", w->blk_name[j],
		    b->file ? b->file : "memory", strerror(-err));
		return err;
	}
	w->nblk = j + 1;
	return viommu_virtio_pci_create(viommu_virtio_blk_dev(w->blk[j]),
					w->blk_name[j], &w->log, NULL,
					&w->blk_vp[j]);
}

/*
 * make_net() - NIC @j (endpoint function @f) on the server's switch: its
 * endpoint (unless noiommu), the virtio-net device and its virtio-pci
 * function.
 */
static int make_net(struct world *w, unsigned int j, unsigned int f)
{
	const struct net_opt *n = &w->o->nets[j];
	struct viommu_virtio_net_config nc = {
		.size = sizeof(nc), .mem = w->mem, .queue_pairs = n->pairs,
		.queue_size = n->queue_size,
		.ring_features = RING_FEATURES_ALL & ~w->o->ring_off,
		.net_switch = w->sw, .log = w->log, .socket_fd = -1,
	};
	int err;

	if (!nc.ring_features)
		nc.ring_features = F(VIOMMU_VIRTIO_F_VERSION_1);
	if (n->mac_set)
		memcpy(nc.mac, n->mac, sizeof(nc.mac));
	if (n->socket_kind) { /* a peer on a socket instead of the switch */
		nc.net_switch = NULL;
		nc.socket_kind = n->socket_kind;
		nc.socket_fd = n->socket_fd;
	}
	snprintf(w->net_name[j], sizeof(w->net_name[j]), "net%u", j);
	err = func_space(w, f, n->no_iommu, &nc.mem, &nc.ep);
	if (err)
		return err;
	err = viommu_virtio_net_create(&nc, &w->net[j]);
	if (err) {
		say(w, VIOMMU_LOG_ERROR, "%s: %s", w->net_name[j],
		    strerror(-err));
		return err;
	}
	w->nnet = j + 1;
	return viommu_virtio_pci_create(viommu_virtio_net_dev(w->net[j]),
					w->net_name[j], &w->log, NULL,
					&w->net_vp[j]);
}

/* make_nets() - the switch and every --net NIC, after the disks. */
static int make_nets(struct world *w)
{
	struct viommu_net_switch_config sc = { .size = sizeof(sc),
					       .log = w->log };
	int err;

	if (!w->o->nnet)
		return 0;
	err = viommu_net_switch_create(&sc, &w->sw);
	for (unsigned int j = 0; !err && j < w->o->nnet; j++)
		err = make_net(w, j, w->o->endpoints + w->o->nblk + j);
	return err;
}

/* make_blks() - every --blk disk, after the engines. */
static int make_blks(struct world *w)
{
	int err = 0;

	for (unsigned int j = 0; !err && j < w->o->nblk; j++)
		err = make_blk(w, j, w->o->endpoints + j);
	return err;
}

/* link_func() - the PCI function of link @i. */
static struct viommu_pci_func *link_func(struct world *w, unsigned int i)
{
	if (!i)
		return viommu_virtio_pci_func(w->vp);
	if (i <= w->o->endpoints)
		return viommu_dma_engine_func(w->eng[i - 1]);
	if (i <= w->o->endpoints + w->o->nblk)
		return viommu_virtio_pci_func(
			w->blk_vp[i - 1 - w->o->endpoints]);
	return viommu_virtio_pci_func(w->net_vp[i - 1 - w->o->endpoints -
						w->o->nblk]);
}

/* link_name() - the name of link @i's function. */
static const char *link_name(struct world *w, unsigned int i)
{
	if (!i)
		return "iommu";
	if (i <= w->o->endpoints)
		return w->eng_name[i - 1];
	if (i <= w->o->endpoints + w->o->nblk)
		return w->blk_name[i - 1 - w->o->endpoints];
	return w->net_name[i - 1 - w->o->endpoints - w->o->nblk];
}

/* link_failed() - say which link could not be added. */
static void link_failed(struct world *w, unsigned int i, int err)
{
	const struct link_opt *lo = &w->o->links[i];

	say(w, VIOMMU_LOG_ERROR, "link %u (%s%s%d): %s", i,
	    lo->path ? "path " : "fd ", lo->path ? lo->path : "",
	    lo->path ? 0 : lo->fd, strerror(-err));
}

/* add_links() - start serving every link, the IOMMU first. */
static int add_links(struct world *w)
{
	struct viommu_link_server_config sc = {
		.size = sizeof(sc), .mem = w->mem, .log = w->log,
		.link_ended = link_ended, .opaque = w,
		.poll_us = w->o->poll_us,
	};
	unsigned int i, id;
	int err = viommu_link_server_create(&sc, &w->lsrv);

	if (!err && w->o->trace)
		err = viommu_link_server_set_trace_sink(w->lsrv, trace_sink(w));

	for (i = w->o->no_iommu || FRAME_IOMMU(w->o) ? 1 : 0;
	     !err && i <= w->o->nfunc; i++) {
		const struct link_opt *lo = &w->o->links[i];
		struct viommu_link_config lc = {
			.size = sizeof(lc),
			.proto = w->o->vfio_user ? VIOMMU_LINK_VFIO_USER :
						   VIOMMU_LINK_MPQEMU,
			.func = link_func(w, i),
			.fd = lo->fd,
			.path = lo->path,
			.name = link_name(w, i),
			.mem = i && w->o->no_iommu ? w->emem[i - 1] : NULL,
			.domain = i && w->o->no_iommu ? w->edom[i - 1] : NULL,
			.trust_peer_fds = w->o->trust_fds,
			.path_mode = w->o->socket_mode,
			.check_peer_uid = w->o->check_uid,
			.peer_uid = w->o->peer_uid,
			.peer_timeout_ms = w->o->peer_timeout_ms,
		};

		err = viommu_link_server_add(w->lsrv, &lc, &id);
		if (err)
			link_failed(w, i, err);
		else if (lo->path)
			say(w, VIOMMU_LOG_INFO, "link %u (%s): listening on %s",
			    i, lc.name, lo->path);
	}
	return err;
}

/*
 * setup_signals() - SIGINT/SIGTERM/SIGHUP to a signalfd (blocked before
 * any thread starts, so every thread inherits the mask); SIGPIPE ignored.
 */
static int setup_signals(struct world *w)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -EINVAL;
	signal(SIGPIPE, SIG_IGN);
	w->sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	w->ev_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return w->sig_fd < 0 || w->ev_fd < 0 ? -errno : 0;
}

/* ---- run ------------------------------------------------------------ */

/*
 * inject() - SIGUSR1: a configuration change of the virtio-iommu;
 * SIGUSR2: DEVICE_NEEDS_RESET.  Both reach the guest as a configuration
 * interrupt (for driver developers testing those paths).  Return: whether
 * @sig was one of them.
 */
static bool inject(struct world *w, int sig)
{
	struct viommu_virtio_dev *dev = viommu_virtio_iommu_dev(w->vi);

	if ((sig == SIGUSR1 || sig == SIGUSR2) && !dev) {
		say(w, VIOMMU_LOG_WARN, "%s: no virtio-iommu of ours to signal",
		    strsignal(sig));
		return true;
	}
	if (sig == SIGUSR1) {
		say(w, VIOMMU_LOG_INFO, "SIGUSR1: configuration change of the "
		    "virtio-iommu");
		viommu_virtio_dev_notify_config(dev);
		return true;
	}
	if (sig == SIGUSR2) {
		viommu_virtio_dev_set_needs_reset(dev, "SIGUSR2: device needs "
						  "reset injected");
		return true;
	}
	return false;
}

/*
 * open_control() - --control FIFO: created if missing, opened read-write
 * (so the server never sees end-of-file when a writer closes it) and
 * non-blocking.
 */
static int open_control(struct world *w)
{
	struct stat st;

	if (!w->o->control)
		return 0;
	if (mkfifo(w->o->control, 0600) && errno != EEXIST)
		goto fail;
	if (stat(w->o->control, &st))
		goto fail;
	if (!S_ISFIFO(st.st_mode)) {
		say(w, VIOMMU_LOG_ERROR, "--control %s: not a FIFO",
		    w->o->control);
		return -EINVAL;
	}
	w->ctl_fd = open(w->o->control, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (w->ctl_fd < 0)
		goto fail;
	return 0;
fail:
	say(w, VIOMMU_LOG_ERROR, "--control %s: %s", w->o->control,
	    strerror(errno));
	return -errno;
}

/* forge_collect() - for_each_mapping: keep up to FORGE_MAX mappings. */
static int forge_collect(void *opaque, const struct viommu_mapping *m)
{
	struct forge_set *fs = opaque;

	fs->m[fs->n++] = *m;
	return fs->n == FORGE_MAX;
}

/*
 * forge() - "blk-forge I J", a test-only device mode for isolation tests:
 * disk I does what a device following forged descriptors would, DMA to
 * the IOVAs disk J has mapped (its rings and buffers), through its own
 * endpoint.  Each must fault (reported to the guest like any fault) or
 * reach memory other than J's; reaching J's is a leak.  Counted in
 * w->forge_* and logged.
 */
static void forge(struct world *w, unsigned int i, unsigned int j)
{
	unsigned int fi = w->o->endpoints + i, fj = w->o->endpoints + j;
	struct forge_set fs = { .n = 0 };
	struct viommu_domain *dom = NULL;
	unsigned int faults = 0, other = 0, leaks = 0;

	if (i >= w->nblk || j >= w->nblk || i == j || !w->ep[fi] ||
	    !w->ep[fj]) {
		say(w, VIOMMU_LOG_WARN, "control: blk-forge %u %u: want two "
		    "different disks behind the IOMMU", i, j);
		return;
	}
	if (viommu_endpoint_domain(w->ep[fj], VIOMMU_NO_PASID, &dom) || !dom ||
	    viommu_domain_for_each_mapping(dom, 0, UINT64_MAX, forge_collect,
					   &fs) < 0) {
		say(w, VIOMMU_LOG_WARN, "control: blk-forge: %s has no "
		    "paging domain to forge into", w->blk_name[j]);
		return;
	}
	/* every page of every mapping, up to FORGE_PROBES accesses */
	for (unsigned int k = 0, probes = 0; k < fs.n; k++)
		for (uint64_t off = 0; probes < FORGE_PROBES &&
		     off <= fs.m[k].last - fs.m[k].iova; off += 4096, probes++) {
			struct viommu_xlate x;
			struct viommu_fault f;

			if (viommu_translate(w->ep[fi], VIOMMU_NO_PASID,
					     fs.m[k].iova + off, 1, VIOMMU_READ,
					     &x, &f))
				faults++;
			else if (x.gpa == fs.m[k].gpa + off)
				leaks++;
			else
				other++;
			if (off > UINT64_MAX - 4096)
				break;
		}
	w->forge_faults += faults;
	w->forge_other += other;
	w->forge_leaks += leaks;
	say(w, leaks ? VIOMMU_LOG_ERROR : VIOMMU_LOG_INFO, "control: "
	    "blk-forge: %s at %u pages of %u mappings of %s: %u faulted, %u "
	    "reached other memory, %u reached %s's%s", w->blk_name[i],
	    faults + other + leaks, fs.n, w->blk_name[j], faults, other,
	    leaks, w->blk_name[j],
	    leaks ? " (ISOLATION BROKEN)" : "");
}

/* control_line() - one --control command. */
static void control_line(struct world *w, char *line)
{
	unsigned int i, n;
	char extra;
	int err;

	if (sscanf(line, "blk-fault %u %u %c", &i, &n, &extra) == 2) {
		if (i >= w->nblk) {
			say(w, VIOMMU_LOG_WARN, "control: no disk %u", i);
			return;
		}
		err = viommu_virtio_blk_inject_faults(w->blk[i], n);
		say(w, err ? VIOMMU_LOG_WARN : VIOMMU_LOG_INFO,
		    "control: %s: next %u translations fail%s%s",
		    w->blk_name[i], n, err ? ": " : "",
		    err ? strerror(-err) : "");
		return;
	}
	if (sscanf(line, "net-fault %u %u %c", &i, &n, &extra) == 2) {
		if (i >= w->nnet) {
			say(w, VIOMMU_LOG_WARN, "control: no NIC %u", i);
			return;
		}
		err = viommu_virtio_net_inject_faults(w->net[i], n);
		say(w, err ? VIOMMU_LOG_WARN : VIOMMU_LOG_INFO,
		    "control: %s: next %u buffer translations fail%s%s",
		    w->net_name[i], n, err ? ": " : "",
		    err ? strerror(-err) : "");
		return;
	}
	if (sscanf(line, "blk-forge %u %u %c", &i, &n, &extra) == 2) {
		forge(w, i, n);
		return;
	}
	if (!strcmp(line, "stats")) {
		print_summary(w, stdout);
		return;
	}
	say(w, VIOMMU_LOG_WARN, "control: unknown command \"%.64s\"", line);
}

/*
 * control_read() - what the FIFO holds, line by line; a line longer than
 * the buffer is dropped whole.
 */
static void control_read(struct world *w)
{
	char *buf = w->ctl_buf;
	size_t size = sizeof(w->ctl_buf);
	ssize_t n;

	while ((n = read(w->ctl_fd, buf + w->ctl_used,
			 size - 1 - w->ctl_used)) > 0) {
		char *nl, *start = buf;

		w->ctl_used += (size_t)n;
		buf[w->ctl_used] = '\0';
		while ((nl = memchr(start, '\n',
				    w->ctl_used - (size_t)(start - buf)))) {
			*nl = '\0';
			if (!w->ctl_skip && *start)
				control_line(w, start);
			w->ctl_skip = false;
			start = nl + 1;
		}
		w->ctl_used -= (size_t)(start - buf);
		memmove(buf, start, w->ctl_used);
		if (w->ctl_used == size - 1) {
			say(w, VIOMMU_LOG_WARN, "control: line too long");
			w->ctl_used = 0;
			w->ctl_skip = true;
		}
	}
}

/* run() - wait for the end of every link or a signal. */
static void run(struct world *w)
{
	for (;;) {
		struct pollfd p[3] = {
			{ .fd = w->sig_fd, .events = POLLIN },
			{ .fd = w->ev_fd, .events = POLLIN },
			{ .fd = w->ctl_fd, .events = POLLIN },
		};
		struct signalfd_siginfo si;
		uint64_t v;

		if (poll(p, 3, -1) < 0 && errno != EINTR)
			return;
		if (p[2].revents & POLLIN) {
			control_read(w);
			continue;
		}
		if (p[0].revents &&
		    read(w->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (inject(w, (int)si.ssi_signo))
				continue;
			say(w, VIOMMU_LOG_INFO, "%s: stopping",
			    strsignal((int)si.ssi_signo));
			w->why = "signal";
			return;
		}
		if (p[1].revents && read(w->ev_fd, &v, sizeof(v)) < 0)
			continue;
		if (viommu_link_server_open_links(w->lsrv) == 0) {
			say(w, VIOMMU_LOG_INFO, "every link has closed: "
			    "stopping");
			w->why = "links closed";
			return;
		}
	}
}

/* ---- request-queue poller (--poll-rq-us) ---------------------------- */

#define POLLER_NAP_NS 50000L /* idle: how often a new kick is looked for */

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/*
 * spin_pause() - a hint inside a busy-wait loop: lets a sibling hardware
 * thread run and saves power without giving up the CPU.
 */
static inline void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* rq_batches() - request-queue batches the device has run so far. */
static uint64_t rq_batches(struct world *w)
{
	struct viommu_virtio_iommu_stats st;

	return viommu_virtio_iommu_stats(w->vi, &st, sizeof(st)) ? 0 : st.kicks;
}

/*
 * poll_period() - serve the request queue by polling, kicks suppressed,
 * until it has been idle for --poll-rq-us; then ask for kicks again (that
 * call also serves a request made meanwhile without a kick).
 */
static void poll_period(struct world *w, struct viommu_virtio_dev *dev)
{
	uint64_t idle = (uint64_t)w->o->poll_rq_us * 1000, last = now_ns();
	unsigned int done;

	w->poll_periods++;
	while (!__atomic_load_n(&w->poller_stop, __ATOMIC_RELAXED) &&
	       now_ns() - last < idle) {
		viommu_virtio_dev_poll(dev, 0, false, &done);
		if (done) {
			w->polled += done;
			last = now_ns();
		} else {
			spin_pause();
		}
	}
	viommu_virtio_dev_poll(dev, 0, true, &done);
	w->polled += done;
}

/*
 * poller_main() - idle, look every POLLER_NAP_NS for a batch the link
 * thread ran after a kick; then poll until the queue is idle again.  While
 * polling, the guest's requests need no kick: no exit, no link round trip.
 */
static void *poller_main(void *arg)
{
	struct world *w = arg;
	struct viommu_virtio_dev *dev = viommu_virtio_iommu_dev(w->vi);
	const struct timespec nap = { 0, POLLER_NAP_NS };
	uint64_t seen = rq_batches(w);

	while (!__atomic_load_n(&w->poller_stop, __ATOMIC_RELAXED)) {
		if (rq_batches(w) == seen) {
			nanosleep(&nap, NULL);
			continue;
		}
		poll_period(w, dev);
		seen = rq_batches(w); /* after our own batches */
	}
	return NULL;
}

/* start_poller() / stop_poller() - the --poll-rq-us thread. */
static int start_poller(struct world *w)
{
	int err;

	if (!w->o->poll_rq_us)
		return 0;
	err = pthread_create(&w->poller, NULL, poller_main, w);
	if (err)
		return -err;
	w->poller_live = true;
	return 0;
}

static void stop_poller(struct world *w)
{
	if (!w->poller_live)
		return;
	__atomic_store_n(&w->poller_stop, 1, __ATOMIC_RELAXED);
	pthread_join(w->poller, NULL);
	w->poller_live = false;
}

/* ---- main ----------------------------------------------------------- */

/* teardown() - undo set-up in reverse; safe on a partial set-up. */
static void teardown(struct world *w)
{
	unsigned int i;

	stop_poller(w);
	viommu_link_server_destroy(w->lsrv);
	frame_teardown(w); /* no link thread translates through it now */
	for (i = 0; i < w->neng; i++)
		viommu_dma_engine_destroy(w->eng[i]);
	for (i = 0; i < w->nblk; i++) {
		viommu_virtio_pci_destroy(w->blk_vp[i]);
		viommu_virtio_blk_destroy(w->blk[i]);
	}
	for (i = 0; i < w->nnet; i++) {
		viommu_virtio_pci_destroy(w->net_vp[i]);
		viommu_virtio_net_destroy(w->net[i]);
	}
	viommu_net_switch_destroy(w->sw);
	if (w->ctl_fd >= 0)
		close(w->ctl_fd);
	for (i = 0; i < MAX_ENDPOINTS; i++) {
		viommu_ctx_destroy(w->ectx[i]);
		viommu_mem_destroy(w->emem[i]);
	}
	viommu_virtio_pci_destroy(w->vp);
	viommu_virtio_iommu_destroy(w->vi);
	viommu_ctx_destroy(w->ctx);
	viommu_mem_destroy(w->mem);
	if (w->sig_fd >= 0)
		close(w->sig_fd);
	if (w->ev_fd >= 0)
		close(w->ev_fd);
}

/* setup() - build the topology and start serving.  0 or -errno. */
static int setup(struct world *w)
{
	int err = setup_signals(w);

	if (err) {
		say(w, VIOMMU_LOG_ERROR, "signals: %s", strerror(-err));
		return err;
	}
	err = make_core(w);
	if (!err)
		err = make_engines(w);
	if (!err)
		err = make_blks(w);
	if (!err)
		err = make_nets(w);
	if (!err)
		err = open_control(w);
	if (!err)
		err = start_poller(w);
	if (!err)
		err = frame_start(w);
	if (err) {
		say(w, VIOMMU_LOG_ERROR, "device set-up: %s", strerror(-err));
		return err;
	}
	return add_links(w);
}

int main(int argc, char **argv)
{
	static struct opts o;
	static struct world w;
	int r = parse_args(&o, argc, argv);

	if (r > 0) {
		usage(stdout);
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, PROG ": try --help\n");
		return 2;
	}
	setvbuf(stderr, NULL, _IOLBF, 0);
	w.o = &o;
	w.log = (struct viommu_log){ log_line, NULL, o.level };
	w.sig_fd = w.ev_fd = w.ctl_fd = -1;
	clock_gettime(CLOCK_MONOTONIC, &w.t0);
	if (o.viot && write_viot(&o))
		return 1;
	if (o.viot_only)
		return 0;
	if (setup(&w)) {
		teardown(&w);
		return 1;
	}
	if (o.smmu_frame)
		say(&w, VIOMMU_LOG_INFO, "serving the SMMUv3 frame at GPA %#"
		    PRIx64 ", %u DMA engine(s), %u disk(s) and %u NIC(s) "
		    "from 00:%02x.0", o.smmu_frame_gpa, o.endpoints, o.nblk,
		    o.nnet, o.endpoint_slot);
	else if (o.vtd_frame)
		say(&w, VIOMMU_LOG_INFO, "serving the VT-d frame at GPA %#"
		    PRIx64 ", %u DMA engine(s), %u disk(s) and %u NIC(s) "
		    "from 00:%02x.0", o.vtd_frame_gpa, o.endpoints, o.nblk,
		    o.nnet, o.endpoint_slot);
	else if (o.no_iommu)
		say(&w, VIOMMU_LOG_INFO, "serving %u DMA engine(s) and %u "
		    "disk(s) from 00:%02x.0 behind the VMM's own vIOMMU",
		    o.endpoints, o.nblk, o.endpoint_slot);
	else
		say(&w, VIOMMU_LOG_INFO, "serving the IOMMU at 00:%02x.0, "
		    "%u DMA engine(s), %u disk(s) and %u NIC(s) from "
		    "00:%02x.0 (endpoints %#x..%#x)", o.iommu_slot,
		    o.endpoints, o.nblk, o.nnet, o.endpoint_slot,
		    endpoint_bdf(&o, 0), endpoint_bdf(&o, o.nfunc - 1));
	run(&w);
	stop_poller(&w);
	viommu_link_server_stop(w.lsrv);
	print_summary(&w, stdout);
	r = o.stats_json ? write_json(&w) : 0;
	teardown(&w);
	return r ? 1 : 0;
}
