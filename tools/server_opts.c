/*
 * server_opts.c - viommu-server's command line: options, the --blk disk
 * specs, the topology checks (links, slots, endpoint counts) and the VIOT
 * of that topology.  Usage errors are printed on stderr here; the caller
 * exits 2.
 */
#include "server.h"

const char *const level_names[4] = { "error", "warn", "info", "debug" };

/* ---- options -------------------------------------------------------- */

void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " [options]\n"
"Serve a virtio-iommu (link 0), N DMA-engine endpoints (links 1..N), M\n"
"virtio-blk disks (links N+1..N+M) and K virtio-net NICs (the links after\n"
"them) to QEMU, one link (socket) per PCI function.\n"
"\n"
"Links and topology:\n"
"  --door D             mpqemu (default): QEMU 7.2's x-pci-proxy-dev, no\n"
"                       interrupts under TCG; vfio-user: QEMU >= 10.1's\n"
"                       vfio-user-pci, with INTx and MSI-X\n"
"  --link I:fd=N        link I is the inherited connected socket N\n"
"  --link I:path=P      link I listens on UNIX socket P (one connection;\n"
"                       the path is removed once connected or at exit)\n"
"  --no-iommu           no IOMMU of ours: serve only the engines (links\n"
"                       1..N, vfio-user), each in the IOVA space the VMM's\n"
"                       own vIOMMU maps (QEMU's virtio-iommu-pci), to\n"
"                       compare our IOMMU with the VMM's on one engine\n"
"  --socket-mode M      permission bits of path sockets, octal (default\n"
"                       0600: only this user may connect)\n"
"  --peer-user U        accept only peers running as user U (a name or a\n"
"                       uid), checked with SO_PEERCRED; other connections\n"
"                       to a path are closed, an inherited fd of another\n"
"                       user is refused at startup\n"
"  --trust-peer-fds     accept guest-RAM files the peer could still shrink\n"
"                       (no F_SEAL_SHRINK seal): only for a peer trusted\n"
"                       not to truncate them, which would kill the server\n"
"                       (SIGBUS); by default they are refused (QEMU's\n"
"                       memory-backend-memfd seals its RAM by default)\n"
"  --endpoints N        DMA engines, 0 or more (default: the links beyond\n"
"                       the disks, at least 1 when there is no --blk)\n"
"  --blk SPEC           add a virtio-blk disk (up to 8) after the engines;\n"
"                       SPEC is comma-separated: file=PATH (a raw image)\n"
"                       or mem=SIZE (anonymous memory, K/M/G suffixes),\n"
"                       and optionally ro, queues=N (request queues, 1-7),\n"
"                       queue-size=N, serial=S (<= 20 bytes), noiommu (DMA\n"
"                       to guest-physical addresses, left out of the VIOT)\n"
"  --net SPEC           add a virtio-net NIC (up to 4) after the disks;\n"
"                       every NIC joins one in-server switch (learning by\n"
"                       MAC, bounded); SPEC is comma-separated and may be\n"
"                       empty (\"\"): mac=XX:XX:XX:XX:XX:XX (default\n"
"                       derived), queues=N (pairs, 1-3), queue-size=N,\n"
"                       noiommu (as for --blk), stream-fd=N or dgram-fd=N\n"
"                       (instead of the switch, a connected socket to a\n"
"                       peer in the framing of QEMU's -netdev stream or\n"
"                       dgram, an inherited fd; no checksum/TSO offload)\n"
"  --iommu-slot D       PCI device of the IOMMU on bus 0 (default 4)\n"
"  --endpoint-slot D    PCI device of the first endpoint (default 5);\n"
"                       endpoint i (engines, then disks) is at 00:(D+i).0\n"
"                       with endpoint ID = its BDF\n"
"virtio-iommu configuration:\n"
"  --page-size-mask M   supported page sizes (default 0x1000)\n"
"  --input-range S:E    IOVA range (default 0:0xffffffffffff)\n"
"  --domain-range S:E   domain IDs (default 0:0xffffffff)\n"
"  --probe-size N       PROBE property bytes (default 512)\n"
"  --no-probe           do not offer VIRTIO_IOMMU_F_PROBE\n"
"  --no-msi-region      do not report the x86 MSI region\n"
"  --bypass             unattached endpoints bypass after boot\n"
"  --no-bypass-config   do not offer VIRTIO_IOMMU_F_BYPASS_CONFIG\n"
"  --queue-size N       virtqueue size, power of two <= 1024 (default 256)\n"
"  --event-backlog N    fault reports kept without event buffers (64)\n"
"  --peer-timeout-ms N  how long QEMU may take to answer a DMA request of\n"
"                       ours (vfio-user, a window without an fd) or to\n"
"                       finish a message on a polled link, 1-60000\n"
"                       (default 500); past it the DMA faults or the link\n"
"                       ends\n"
"  --poll-us N          check a link for its next message for up to N us\n"
"                       before sleeping (0, the default: sleep at once);\n"
"                       lowers kick latency at the cost of CPU time\n"
"  --poll-rq-us N       once the guest kicks the request queue, poll it for\n"
"                       new requests with kicks suppressed until it has\n"
"                       been idle for N us (0, the default: never); the\n"
"                       guest then makes requests with no exit and no\n"
"                       link round trip, at the cost of one CPU while busy\n"
"                       (idle, the poller looks for a kick every 50 us)\n"
"  --no-packed          do not offer VIRTIO_F_RING_PACKED\n"
"  --no-event-idx       do not offer VIRTIO_F_EVENT_IDX\n"
"  --no-indirect        do not offer VIRTIO_F_INDIRECT_DESC\n"
"  --max-mappings N     mappings of all domains together (default 4194304,\n"
"                       about 240 MiB of mapping store at most); one more\n"
"                       MAP gets VIRTIO_IOMMU_S_NOMEM.  With --no-iommu:\n"
"                       per endpoint function, the DMA windows the peer maps\n");
	frame_usage(f);
	fprintf(f,
"ACPI:\n"
"  --viot FILE          write the VIOT table of this topology to FILE\n"
"  --viot-only          ... and exit without serving\n"
"Control:\n"
"  --control FIFO       read commands from the named pipe FIFO (created if\n"
"                       missing), one per line: \"blk-fault I N\" fails\n"
"                       the next N request-buffer translations of disk I\n"
"                       (0-based) as if unmapped (the requests get IOERR);\n"
"                       \"net-fault I N\" the same for the next N packet-\n"
"                       buffer translations of NIC I (those packets are\n"
"                       dropped and counted);\n"
"                       \"blk-forge I J\" (isolation tests)\n"
"                       makes disk I DMA to the pages of up to 64\n"
"                       mappings of disk J (256 pages at most), as forged\n"
"                       descriptors would: each must\n"
"                       fault or reach other memory (counted, logged);\n"
"                       \"stats\" prints the counters\n"
"Output:\n"
"  --trace              print every virtio-iommu request and its status,\n"
"                       and the typed trace events of the core, the\n"
"                       links and the frame models (\"trace: core_map\n"
"                       domain=0x1 ...\", docs/API.md)\n"
"  --trace-events LIST  only these typed events (implies --trace):\n"
"                       comma-separated names (core_map) or layers\n"
"                       (core, vi, smmu, vtd, link, frame), or all\n"
"  --log-level L        error, warn, info (default) or debug\n"
"  --stats-json FILE    write the exit counters as JSON to FILE\n"
"  --help               this text\n"
"\n"
"Runs until every link has closed (QEMU exited) or SIGINT/SIGTERM/SIGHUP,\n"
"then prints counters and exits 0; startup errors exit 1.  SIGUSR1 makes the\n"
"virtio-iommu signal a configuration change, SIGUSR2 sets its\n"
"DEVICE_NEEDS_RESET (both raise the configuration interrupt), for testing\n"
"a guest driver's handling of them.\n");
}

/* parse_u64() - a whole number (any base strtoull takes) up to @max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

/* parse_range() - "S:E" with S <= E <= @max. */
static int parse_range(const char *s, uint64_t max, uint64_t *a, uint64_t *b)
{
	char buf[64], *colon;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	colon = strchr(buf, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	if (parse_u64(buf, max, a) || parse_u64(colon + 1, max, b) || *a > *b)
		return -1;
	return 0;
}

/* parse_link() - "I:fd=N" or "I:path=P". */
static int parse_link(struct opts *o, const char *s)
{
	char idx[16];
	const char *colon = strchr(s, ':');
	uint64_t i, fd;
	struct link_opt *l;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(idx))
		return -1;
	memcpy(idx, s, (size_t)(colon - s));
	idx[colon - s] = '\0';
	if (parse_u64(idx, MAX_DEVS - 1, &i) || o->links[i].set)
		return -1;
	l = &o->links[i];
	if (!strncmp(colon + 1, "fd=", 3)) {
		if (parse_u64(colon + 4, INT32_MAX, &fd))
			return -1;
		l->fd = (int)fd;
	} else if (!strncmp(colon + 1, "path=", 5) && colon[6]) {
		l->fd = -1;
		l->path = colon + 6;
	} else {
		return -1;
	}
	l->set = true;
	return 0;
}

/* parse_size() - a byte count with an optional K, M or G suffix. */
static int parse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t n = strlen(s);
	unsigned int shift = 0;
	uint64_t v;

	if (!n || n >= sizeof(num))
		return -1;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 'K': case 'k': shift = 10; break;
	case 'M': case 'm': shift = 20; break;
	case 'G': case 'g': shift = 30; break;
	default: break;
	}
	if (shift)
		num[n - 1] = '\0';
	if (parse_u64(num, UINT64_MAX >> shift, &v))
		return -1;
	*out = v << shift;
	return 0;
}

/* blk_key() - one key or key=value of a --blk SPEC. */
static int blk_key(struct blk_opt *b, char *kv)
{
	char *val = strchr(kv, '=');
	uint64_t v;

	if (val)
		*val++ = '\0';
	if (!strcmp(kv, "ro") && !val)
		b->ro = true;
	else if (!strcmp(kv, "noiommu") && !val)
		b->no_iommu = true;
	else if (!strcmp(kv, "file") && val && *val)
		b->file = val;
	else if (!strcmp(kv, "mem") && val)
		return parse_size(val, &b->mem_size) || !b->mem_size ||
		       b->mem_size % 512 ? -1 : 0;
	else if (!strcmp(kv, "queues") && val) {
		if (parse_u64(val, 7, &v) || !v)
			return -1;
		b->queues = (uint16_t)v;
	} else if (!strcmp(kv, "queue-size") && val) {
		if (parse_u64(val, VIOMMU_VIRTIO_QUEUE_MAX, &v) || !v)
			return -1;
		b->queue_size = (uint16_t)v;
	} else if (!strcmp(kv, "serial") && val && strlen(val) <= 20)
		b->serial = val;
	else
		return -1;
	return 0;
}

/*
 * parse_blk() - "--blk file=PATH|mem=SIZE[,ro][,queues=N]...".  The SPEC
 * is split in place (optarg points into argv, which outlives the run).
 */
static int parse_blk(struct opts *o, char *spec)
{
	struct blk_opt *b;
	char *save, *kv;

	if (o->nblk == MAX_BLKS)
		return -1;
	b = &o->blks[o->nblk];
	memset(b, 0, sizeof(*b));
	for (kv = strtok_r(spec, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save))
		if (blk_key(b, kv))
			return -1;
	if (!b->file == !b->mem_size) /* exactly one backend */
		return -1;
	o->nblk++;
	return 0;
}

/* net_key() - one key or key=value of a --net SPEC. */
static int net_key(struct net_opt *n, char *kv)
{
	char *val = strchr(kv, '=');
	unsigned int m[6];
	char extra;
	uint64_t v;

	if (val)
		*val++ = '\0';
	if (!strcmp(kv, "noiommu") && !val) {
		n->no_iommu = true;
	} else if (!strcmp(kv, "mac") && val) {
		if (sscanf(val, "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1],
			   &m[2], &m[3], &m[4], &m[5], &extra) != 6 ||
		    (m[0] & 1))
			return -1; /* six bytes, unicast */
		for (unsigned int i = 0; i < 6; i++)
			n->mac[i] = (uint8_t)m[i];
		n->mac_set = true;
	} else if (!strcmp(kv, "queues") && val) {
		if (parse_u64(val, VIOMMU_VIRTIO_NET_MAX_PAIRS, &v) || !v)
			return -1;
		n->pairs = (uint16_t)v;
	} else if (!strcmp(kv, "queue-size") && val) {
		if (parse_u64(val, VIOMMU_VIRTIO_QUEUE_MAX, &v) || !v)
			return -1;
		n->queue_size = (uint16_t)v;
	} else if ((!strcmp(kv, "stream-fd") || !strcmp(kv, "dgram-fd")) &&
		   val && !n->socket_kind) {
		if (parse_u64(val, INT32_MAX, &v) || v < 3)
			return -1; /* an inherited fd, not stdio */
		n->socket_kind = kv[0] == 's' ? VIOMMU_NET_SOCKET_STREAM :
						VIOMMU_NET_SOCKET_DGRAM;
		n->socket_fd = (int)v;
	} else {
		return -1;
	}
	return 0;
}

/*
 * parse_net() - "--net [mac=M][,queues=N][,queue-size=N][,noiommu]
 * [,stream-fd=N|dgram-fd=N]".
 */
static int parse_net(struct opts *o, char *spec)
{
	struct net_opt *n;
	char *save, *kv;

	if (o->nnet == MAX_NETS)
		return -1;
	n = &o->nets[o->nnet];
	memset(n, 0, sizeof(*n));
	for (kv = strtok_r(spec, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save))
		if (net_key(n, kv))
			return -1;
	o->nnet++;
	return 0;
}

enum {
	O_LINK = 256, O_BLK, O_NET, O_CONTROL, O_ENDPOINTS, O_IOMMU_SLOT, O_ENDPOINT_SLOT, O_PSM,
	O_INPUT, O_DOMAIN, O_PROBE_SIZE, O_NO_PROBE, O_NO_MSI, O_BYPASS,
	O_NO_BYPASS_CFG, O_QSIZE, O_BACKLOG, O_NO_PACKED, O_NO_EVIDX,
	O_NO_INDIRECT, O_VIOT, O_VIOT_ONLY, O_TRACE, O_LOGLEVEL, O_STATS,
	O_POLL_US, O_POLL_RQ_US, O_DOOR, O_NO_IOMMU, O_HELP,
	O_MAX_MAPPINGS, O_TRUST_FDS, O_SOCKET_MODE, O_PEER_USER,
	O_SMMU_FRAME, O_SMMU_FEATURES, O_VTD_FRAME, O_VTD_FEATURES, O_DMAR,
	O_TRACE_EVENTS, O_FRAME_NAP_US, O_PEER_TIMEOUT_MS,
};

static const struct option long_opts[] = {
	{ "link", required_argument, NULL, O_LINK },
	{ "blk", required_argument, NULL, O_BLK },
	{ "net", required_argument, NULL, O_NET },
	{ "control", required_argument, NULL, O_CONTROL },
	{ "endpoints", required_argument, NULL, O_ENDPOINTS },
	{ "iommu-slot", required_argument, NULL, O_IOMMU_SLOT },
	{ "endpoint-slot", required_argument, NULL, O_ENDPOINT_SLOT },
	{ "page-size-mask", required_argument, NULL, O_PSM },
	{ "input-range", required_argument, NULL, O_INPUT },
	{ "domain-range", required_argument, NULL, O_DOMAIN },
	{ "probe-size", required_argument, NULL, O_PROBE_SIZE },
	{ "no-probe", no_argument, NULL, O_NO_PROBE },
	{ "no-msi-region", no_argument, NULL, O_NO_MSI },
	{ "bypass", no_argument, NULL, O_BYPASS },
	{ "no-bypass-config", no_argument, NULL, O_NO_BYPASS_CFG },
	{ "queue-size", required_argument, NULL, O_QSIZE },
	{ "event-backlog", required_argument, NULL, O_BACKLOG },
	{ "poll-us", required_argument, NULL, O_POLL_US },
	{ "peer-timeout-ms", required_argument, NULL, O_PEER_TIMEOUT_MS },
	{ "poll-rq-us", required_argument, NULL, O_POLL_RQ_US },
	{ "no-packed", no_argument, NULL, O_NO_PACKED },
	{ "no-event-idx", no_argument, NULL, O_NO_EVIDX },
	{ "no-indirect", no_argument, NULL, O_NO_INDIRECT },
	{ "viot", required_argument, NULL, O_VIOT },
	{ "viot-only", no_argument, NULL, O_VIOT_ONLY },
	{ "trace", no_argument, NULL, O_TRACE },
	{ "trace-events", required_argument, NULL, O_TRACE_EVENTS },
	{ "log-level", required_argument, NULL, O_LOGLEVEL },
	{ "stats-json", required_argument, NULL, O_STATS },
	{ "door", required_argument, NULL, O_DOOR },
	{ "no-iommu", no_argument, NULL, O_NO_IOMMU },
	{ "max-mappings", required_argument, NULL, O_MAX_MAPPINGS },
	{ "trust-peer-fds", no_argument, NULL, O_TRUST_FDS },
	{ "socket-mode", required_argument, NULL, O_SOCKET_MODE },
	{ "peer-user", required_argument, NULL, O_PEER_USER },
	{ "smmuv3-frame", required_argument, NULL, O_SMMU_FRAME },
	{ "smmuv3-features", required_argument, NULL, O_SMMU_FEATURES },
	{ "vtd-frame", required_argument, NULL, O_VTD_FRAME },
	{ "frame-nap-us", required_argument, NULL, O_FRAME_NAP_US },
	{ "vtd-features", required_argument, NULL, O_VTD_FEATURES },
	{ "dmar", required_argument, NULL, O_DMAR },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

/* parse_level() - a --log-level name. */
static int parse_level(const char *s, enum viommu_log_level *out)
{
	for (unsigned int i = 0; i < 4; i++)
		if (!strcmp(s, level_names[i])) {
			*out = (enum viommu_log_level)i;
			return 0;
		}
	return -1;
}

/* parse_number_opt() - the options that take one number. */
static int parse_number_opt(struct opts *o, int c, const char *arg)
{
	uint64_t v;

	switch (c) {
	case O_ENDPOINTS:
		if (parse_u64(arg, MAX_ENDPOINTS, &v))
			return -1;
		o->endpoints = (unsigned int)v;
		o->endpoints_set = true;
		return 0;
	case O_IOMMU_SLOT:
	case O_ENDPOINT_SLOT:
		if (parse_u64(arg, 31, &v))
			return -1;
		*(c == O_IOMMU_SLOT ? &o->iommu_slot : &o->endpoint_slot) =
			(unsigned int)v;
		return 0;
	case O_PSM:
		return parse_u64(arg, UINT64_MAX, &o->vi.page_size_mask) ||
		       !o->vi.page_size_mask ? -1 : 0;
	case O_PROBE_SIZE:
		if (parse_u64(arg, UINT32_MAX, &v))
			return -1;
		o->vi.probe_size = (uint32_t)v;
		return 0;
	case O_PEER_TIMEOUT_MS:
		if (parse_u64(arg, 60000, &v) || !v)
			return -1;
		o->peer_timeout_ms = (uint32_t)v;
		return 0;
	case O_POLL_US:
	case O_POLL_RQ_US:
		if (parse_u64(arg, 1000000, &v))
			return -1;
		*(c == O_POLL_US ? &o->poll_us : &o->poll_rq_us) =
			(unsigned int)v;
		return 0;
	case O_QSIZE:
		if (parse_u64(arg, VIOMMU_VIRTIO_QUEUE_MAX, &v) || !v)
			return -1;
		o->vi.queue_size = (uint16_t)v;
		return 0;
	default: /* O_BACKLOG */
		if (parse_u64(arg, UINT32_MAX, &v) || !v)
			return -1;
		o->vi.event_backlog = (uint32_t)v;
		return 0;
	}
}

/* parse_ranges() - --input-range and --domain-range. */
static int parse_ranges(struct opts *o, int c, const char *arg)
{
	uint64_t a, b;

	if (c == O_INPUT) {
		if (parse_range(arg, UINT64_MAX, &a, &b) || b == 0)
			return -1;
		o->vi.input_start = a;
		o->vi.input_end = b;
		return 0;
	}
	if (parse_range(arg, UINT32_MAX, &a, &b) || b == 0)
		return -1;
	o->vi.domain_start = (uint32_t)a;
	o->vi.domain_end = (uint32_t)b;
	return 0;
}

/* parse_flag_opt() - the options without an argument (and --viot etc.). */
static int parse_flag_opt(struct opts *o, int c, const char *arg)
{
	switch (c) {
	case O_NO_PROBE: o->dev_off |= F(VIOMMU_VIRTIO_IOMMU_F_PROBE); break;
	case O_NO_MSI: o->vi.no_msi_region = true; break;
	case O_BYPASS: o->vi.boot_bypass = true; break;
	case O_NO_BYPASS_CFG:
		o->dev_off |= F(VIOMMU_VIRTIO_IOMMU_F_BYPASS_CONFIG);
		break;
	case O_NO_PACKED: o->ring_off |= F(VIOMMU_VIRTIO_F_RING_PACKED); break;
	case O_NO_EVIDX: o->ring_off |= F(VIOMMU_VIRTIO_F_EVENT_IDX); break;
	case O_NO_INDIRECT:
		o->ring_off |= F(VIOMMU_VIRTIO_F_INDIRECT_DESC);
		break;
	case O_VIOT: o->viot = arg; break;
	case O_VIOT_ONLY: o->viot_only = true; break;
	case O_TRACE: o->trace = true; break;
	case O_LOGLEVEL: return parse_level(arg, &o->level);
	case O_STATS: o->stats_json = arg; break;
	default: return -1;
	}
	return 0;
}

/* parse_mode() - --socket-mode: octal permission bits, 1..0777. */
static int parse_mode(struct opts *o, const char *s)
{
	unsigned long v;
	char *end;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || *end || v == 0 || v > 0777)
		return -1;
	o->socket_mode = (uint32_t)v;
	return 0;
}

/* parse_user() - --peer-user: a uid or a user name. */
static int parse_user(struct opts *o, const char *s)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	uint64_t v;

	if (!parse_u64(s, UINT32_MAX - 1, &v)) {
		o->peer_uid = (uint32_t)v;
	} else if (!getpwnam_r(s, &pw, buf, sizeof(buf), &res) && res) {
		o->peer_uid = (uint32_t)res->pw_uid;
	} else {
		return -1;
	}
	o->check_uid = true;
	return 0;
}

/*
 * parse_trace_events() - --trace-events LIST: comma-separated event names
 * ("core_map") or layer prefixes ("core", "vtd", "link", "frame", "smmu",
 * "vi"), or "all"; implies --trace.
 */
static int parse_trace_events(struct opts *o, const char *arg)
{
	char buf[512], *save = NULL, *tok;

	if (!arg || !*arg || strlen(arg) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", arg);
	o->trace_mask = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(tok);
		uint64_t m = 0;

		for (unsigned int id = 0; id < VIOMMU_TRACE_COUNT; id++) {
			const char *name = viommu_trace_name(id);

			if (!strcmp(tok, "all") || !strcmp(tok, name) ||
			    (!strncmp(tok, name, n) && name[n] == '_'))
				m |= 1ull << id;
		}
		if (!m)
			return -1;
		o->trace_mask |= m;
	}
	o->trace = true;
	return 0;
}

/* parse_one() - one option.  Return: 0; -1 bad; 1 --help. */
static int parse_one(struct opts *o, int c, const char *arg)
{
	switch (c) {
	case O_HELP:
		return 1;
	case O_LINK:
		return parse_link(o, arg);
	case O_BLK:
		return parse_blk(o, (char *)arg);
	case O_NET:
		return parse_net(o, (char *)arg);
	case O_CONTROL:
		o->control = arg;
		return 0;
	case O_TRACE_EVENTS:
		return parse_trace_events(o, arg);
	case O_NO_IOMMU:
		o->no_iommu = true;
		return 0;
	case O_TRUST_FDS:
		o->trust_fds = true;
		return 0;
	case O_SOCKET_MODE:
		return parse_mode(o, arg);
	case O_PEER_USER:
		return parse_user(o, arg);
	case O_MAX_MAPPINGS: {
		uint64_t v;

		if (parse_u64(arg, UINT32_MAX, &v) || !v)
			return -1;
		o->max_mappings = (uint32_t)v;
		return 0;
	}
	case O_SMMU_FRAME: case O_SMMU_FEATURES:
		return frame_opt(o, c == O_SMMU_FRAME ? "smmuv3-frame" :
					"smmuv3-features", arg);
	case O_VTD_FRAME: case O_VTD_FEATURES: case O_DMAR:
		return frame_opt(o, c == O_VTD_FRAME ? "vtd-frame" :
				 c == O_VTD_FEATURES ? "vtd-features" : "dmar",
				 arg);
	case O_FRAME_NAP_US:
		return frame_opt(o, "frame-nap-us", arg);
	case O_DOOR:
		if (strcmp(arg, "mpqemu") && strcmp(arg, "vfio-user"))
			return -1;
		o->vfio_user = !strcmp(arg, "vfio-user");
		return 0;
	case O_ENDPOINTS: case O_IOMMU_SLOT: case O_ENDPOINT_SLOT:
	case O_PSM: case O_PROBE_SIZE: case O_QSIZE: case O_BACKLOG:
	case O_POLL_US: case O_POLL_RQ_US: case O_PEER_TIMEOUT_MS:
		return parse_number_opt(o, c, arg);
	case O_INPUT: case O_DOMAIN:
		return parse_ranges(o, c, arg);
	default:
		return parse_flag_opt(o, c, arg);
	}
}

/*
 * check_no_iommu() - --no-iommu: engines only (links 1..N), over
 * vfio-user, each in the IOVA space the peer's own vIOMMU maps.
 */
static int check_no_iommu(struct opts *o)
{
	const char *bad = NULL;

	if (!o->vfio_user)
		bad = "needs --door vfio-user";
	else if (o->links[0].set)
		bad = "takes no link 0 (there is no IOMMU of ours)";
	else if (o->viot || o->viot_only)
		bad = "has no VIOT (the peer's vIOMMU describes its own)";
	else if (o->poll_rq_us || o->trace)
		bad = "has no request queue to poll or trace";
	for (unsigned int i = 0; !bad && i < o->nblk; i++)
		if (o->blks[i].no_iommu)
			bad = "and a noiommu disk do not mix (every function "
			      "is behind the VMM's vIOMMU)";
	for (unsigned int i = 0; !bad && i < o->nnet; i++)
		if (o->nets[i].no_iommu)
			bad = "and a noiommu NIC do not mix (every function "
			      "is behind the VMM's vIOMMU)";
	for (unsigned int i = 1; !bad && i <= o->nfunc; i++)
		if (!o->links[i].set)
			bad = "needs --link I for every function 1..N+M";
	if (bad) {
		fprintf(stderr, PROG ": --no-iommu %s\n", bad);
		return -1;
	}
	return 0;
}

/* check_topology() - endpoint count, slots and links agree. */
static int check_topology(struct opts *o)
{
	unsigned int i, highest = 0;

	for (i = 0; i < MAX_DEVS; i++)
		if (o->links[i].set)
			highest = i;
	if (!o->endpoints_set)
		o->endpoints = highest > o->nblk + o->nnet ?
				       highest - o->nblk - o->nnet :
			       o->nblk + o->nnet ? 0 : 1;
	o->nfunc = o->endpoints + o->nblk + o->nnet;
	if (!o->nfunc || o->nfunc > MAX_ENDPOINTS) {
		fprintf(stderr, PROG ": %u endpoint functions (engines, "
			"disks, NICs): want 1..%u\n", o->nfunc, MAX_ENDPOINTS);
		return -1;
	}
	if (o->endpoint_slot + o->nfunc - 1 > 31 ||
	    (o->iommu_slot >= o->endpoint_slot &&
	     o->iommu_slot < o->endpoint_slot + o->nfunc)) {
		fprintf(stderr, PROG ": endpoint slots %u..%u do not fit on "
			"bus 0 beside the IOMMU at slot %u\n", o->endpoint_slot,
			o->endpoint_slot + o->nfunc - 1, o->iommu_slot);
		return -1;
	}
	if (FRAME_IOMMU(o) || o->dmar || o->frame_nap_us)
		return frame_check(o);
	if (o->no_iommu)
		return check_no_iommu(o);
	if (o->viot_only)
		return 0;
	for (i = 0; i <= o->nfunc; i++)
		if (!o->links[i].set) {
			fprintf(stderr, PROG ": no --link for %s %u\n",
				i ? "endpoint link" : "the IOMMU, link", i);
			return -1;
		}
	if (highest > o->nfunc) {
		fprintf(stderr, PROG ": --link %u but only %u endpoint "
			"functions (%u engines, %u disks, %u NICs)\n", highest,
			o->nfunc, o->endpoints, o->nblk, o->nnet);
		return -1;
	}
	return 0;
}

/* opt_name() - the long name of option @c. */
static const char *opt_name(int c)
{
	for (const struct option *o = long_opts; o->name; o++)
		if (o->val == c)
			return o->name;
	return "?";
}

/* parse_args() - fill @o.  Return: 0; 1 (--help); -1 (usage error). */
int parse_args(struct opts *o, int argc, char **argv)
{
	int c, r;

	memset(o, 0, sizeof(*o));
	o->iommu_slot = 4;
	o->endpoint_slot = 5;
	o->level = VIOMMU_LOG_INFO;
	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		if (c == 'h')
			c = O_HELP;
		if (c == '?')
			return -1;
		r = parse_one(o, c, optarg);
		if (r > 0)
			return 1;
		if (r < 0) {
			fprintf(stderr, PROG ": bad value for --%s: %s\n",
				opt_name(c), optarg ? optarg : "");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument %s\n",
			argv[optind]);
		return -1;
	}
	return check_topology(o);
}

/* ---- VIOT ----------------------------------------------------------- */

uint16_t endpoint_bdf(const struct opts *o, unsigned int i)
{
	return VIOMMU_PCI_BDF(0, o->endpoint_slot + i, 0);
}

/* func_behind_iommu() - whether endpoint function @i is ours to translate. */
bool func_behind_iommu(const struct opts *o, unsigned int i)
{
	if (i < o->endpoints)
		return true;
	i -= o->endpoints;
	if (i < o->nblk)
		return !o->blks[i].no_iommu;
	return !o->nets[i - o->nblk].no_iommu;
}

/*
 * write_viot() - the VIOT of the topology to o->viot: one PCI range per
 * run of consecutive functions behind the IOMMU (a noiommu disk splits
 * them).
 */
int write_viot(const struct opts *o)
{
	struct viommu_viot_range r[MAX_ENDPOINTS];
	struct viommu_viot_config t = {
		.size = sizeof(t),
		.iommu_bdf = VIOMMU_PCI_BDF(0, o->iommu_slot, 0),
		.ranges = r,
	};
	uint8_t buf[1024];
	size_t len;
	FILE *f;
	int err;

	for (unsigned int i = 0; i < o->nfunc; i++) {
		if (!func_behind_iommu(o, i))
			continue;
		if (t.nr_ranges && i && func_behind_iommu(o, i - 1)) {
			r[t.nr_ranges - 1].bdf_end = endpoint_bdf(o, i);
			continue;
		}
		r[t.nr_ranges++] = (struct viommu_viot_range){
			.bdf_start = endpoint_bdf(o, i),
			.bdf_end = endpoint_bdf(o, i),
			.endpoint_start = endpoint_bdf(o, i),
		};
	}
	err = viommu_viot_build(&t, buf, sizeof(buf), &len);

	if (err) {
		fprintf(stderr, PROG ": VIOT: %s\n", strerror(-err));
		return -1;
	}
	f = fopen(o->viot, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		fprintf(stderr, PROG ": %s: %s\n", o->viot, strerror(errno));
		return -1;
	}
	return 0;
}
