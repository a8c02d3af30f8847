/*
 * viommu-server.c - serve a virtio-iommu and DMA-engine endpoints to QEMU
 * through one of two doors (docs/REAL-GUEST.md): vfio-user links for QEMU
 * 10.1 and later (`-device vfio-user-pci`, with interrupts), or mpqemu
 * links for QEMU 7.2's x-pci-proxy-dev (--door).
 *
 * Topology: link 0 is a virtio-pci virtio-iommu at 00:<iommu-slot>.0;
 * links 1..N are DMA engines at 00:<endpoint-slot + i - 1>.0, each a core
 * endpoint whose ID is its BDF (0x28, 0x30, ... by default).  Everything
 * shares one guest memory (filled by QEMU's SYNC_SYSMEM), one translation
 * context and one virtio-iommu.  Each link is an inherited socket
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
#include <viommu/viommu.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "acpi/viot.h"
#include "devices/dma_engine.h"
#include "transport/virtio_pci.h"

#define MAX_ENDPOINTS 24
#define MAX_DEVS (MAX_ENDPOINTS + 1)
#define PROG "viommu-server"

#define F(bit) (1ull << (bit))
#define DEV_FEATURES_ALL                                                     \
	(F(VIOMMU_VIRTIO_IOMMU_F_INPUT_RANGE) |                              \
	 F(VIOMMU_VIRTIO_IOMMU_F_DOMAIN_RANGE) |                             \
	 F(VIOMMU_VIRTIO_IOMMU_F_MAP_UNMAP) | F(VIOMMU_VIRTIO_IOMMU_F_PROBE) | \
	 F(VIOMMU_VIRTIO_IOMMU_F_MMIO) |                                     \
	 F(VIOMMU_VIRTIO_IOMMU_F_BYPASS_CONFIG))
#define RING_FEATURES_ALL                                                    \
	(F(VIOMMU_VIRTIO_F_INDIRECT_DESC) | F(VIOMMU_VIRTIO_F_EVENT_IDX) |   \
	 F(VIOMMU_VIRTIO_F_RING_PACKED))

/* One --link: an inherited fd or a path. */
struct link_opt {
	bool set;
	int fd;
	const char *path;
};

struct opts {
	struct link_opt links[MAX_DEVS];
	unsigned int endpoints; /* 0: from the links given */
	unsigned int iommu_slot, endpoint_slot;
	struct viommu_virtio_iommu_config vi;
	uint64_t ring_off; /* ring features not to offer */
	uint64_t dev_off;  /* device features not to offer */
	const char *viot;
	bool viot_only;
	bool trace;
	enum viommu_log_level level;
	const char *stats_json;
	unsigned int poll_us;
	unsigned int poll_rq_us;
	bool vfio_user; /* --door vfio-user */
	bool no_iommu;  /* --no-iommu: the peer's vIOMMU translates */
	bool trust_fds; /* --trust-peer-fds */
	uint32_t socket_mode; /* --socket-mode (0: the library's 0600) */
	bool check_uid;       /* --peer-user */
	uint32_t peer_uid;
};

/* Everything the server runs; torn down in reverse. */
struct world {
	struct opts *o;
	struct viommu_log log;
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_virtio_iommu *vi;
	struct virtio_pci vp;
	bool vp_live;
	unsigned int neng;
	struct viommu_endpoint *ep[MAX_ENDPOINTS];
	struct dma_engine eng[MAX_ENDPOINTS];
	/* --no-iommu: each engine's own IOVA space, filled by DMA_MAP */
	struct viommu_mem *emem[MAX_ENDPOINTS];
	struct viommu_ctx *ectx[MAX_ENDPOINTS];
	struct viommu_domain *edom[MAX_ENDPOINTS];
	bool eng_live[MAX_ENDPOINTS];
	struct viommu_link_server *lsrv; /* every link, either door */
	/* --poll-rq-us: the request-queue poller (poller_main) */
	pthread_t poller;
	bool poller_live;
	int poller_stop; /* atomic */
	uint64_t polled, poll_periods; /* requests served by polling; periods */
	int sig_fd, ev_fd;
	struct timespec t0;
	uint64_t trace_lines;
	const char *why; /* what ended the run */
};

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* ---- logging -------------------------------------------------------- */

/* log_line() - the struct viommu_log sink: one line on stderr. */
static void log_line(void *opaque, enum viommu_log_level lvl, const char *s)
{
	(void)opaque;
	fprintf(stderr, PROG ": %s: %s\n",
		lvl <= VIOMMU_LOG_DEBUG ? level_names[lvl] : "?", s);
}

/* say() - a log line of the tool itself, filtered by --log-level. */
static void say(const struct world *w, enum viommu_log_level lvl,
		const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(const struct world *w, enum viommu_log_level lvl,
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
	w->trace_lines++;
	fprintf(stderr, PROG ": trace: %s\n", line);
}

/* ---- options -------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " [options]\n"
"Serve a virtio-iommu (link 0) and N DMA-engine endpoints (links 1..N) to\n"
"QEMU, one link (socket) per PCI function.\n"
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
"  --endpoints N        DMA engines (default: the number of engine links)\n"
"  --iommu-slot D       PCI device of the IOMMU on bus 0 (default 4)\n"
"  --endpoint-slot D    PCI device of the first engine (default 5); engine\n"
"                       i is at 00:(D+i).0 with endpoint ID = its BDF\n"
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
"ACPI:\n"
"  --viot FILE          write the VIOT table of this topology to FILE\n"
"  --viot-only          ... and exit without serving\n"
"Output:\n"
"  --trace              print every virtio-iommu request and its status\n"
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

enum {
	O_LINK = 256, O_ENDPOINTS, O_IOMMU_SLOT, O_ENDPOINT_SLOT, O_PSM,
	O_INPUT, O_DOMAIN, O_PROBE_SIZE, O_NO_PROBE, O_NO_MSI, O_BYPASS,
	O_NO_BYPASS_CFG, O_QSIZE, O_BACKLOG, O_NO_PACKED, O_NO_EVIDX,
	O_NO_INDIRECT, O_VIOT, O_VIOT_ONLY, O_TRACE, O_LOGLEVEL, O_STATS,
	O_POLL_US, O_POLL_RQ_US, O_DOOR, O_NO_IOMMU, O_TRUST_FDS,
	O_SOCKET_MODE, O_PEER_USER, O_HELP,
};

static const struct option long_opts[] = {
	{ "link", required_argument, NULL, O_LINK },
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
	{ "poll-rq-us", required_argument, NULL, O_POLL_RQ_US },
	{ "no-packed", no_argument, NULL, O_NO_PACKED },
	{ "no-event-idx", no_argument, NULL, O_NO_EVIDX },
	{ "no-indirect", no_argument, NULL, O_NO_INDIRECT },
	{ "viot", required_argument, NULL, O_VIOT },
	{ "viot-only", no_argument, NULL, O_VIOT_ONLY },
	{ "trace", no_argument, NULL, O_TRACE },
	{ "log-level", required_argument, NULL, O_LOGLEVEL },
	{ "stats-json", required_argument, NULL, O_STATS },
	{ "door", required_argument, NULL, O_DOOR },
	{ "no-iommu", no_argument, NULL, O_NO_IOMMU },
	{ "trust-peer-fds", no_argument, NULL, O_TRUST_FDS },
	{ "socket-mode", required_argument, NULL, O_SOCKET_MODE },
	{ "peer-user", required_argument, NULL, O_PEER_USER },
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
		if (parse_u64(arg, MAX_ENDPOINTS, &v) || v == 0)
			return -1;
		o->endpoints = (unsigned int)v;
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

/* parse_one() - one option.  Return: 0; -1 bad; 1 --help. */
static int parse_one(struct opts *o, int c, const char *arg)
{
	switch (c) {
	case O_HELP:
		return 1;
	case O_LINK:
		return parse_link(o, arg);
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
	case O_DOOR:
		if (strcmp(arg, "mpqemu") && strcmp(arg, "vfio-user"))
			return -1;
		o->vfio_user = !strcmp(arg, "vfio-user");
		return 0;
	case O_ENDPOINTS: case O_IOMMU_SLOT: case O_ENDPOINT_SLOT:
	case O_PSM: case O_PROBE_SIZE: case O_QSIZE: case O_BACKLOG:
	case O_POLL_US: case O_POLL_RQ_US:
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
	for (unsigned int i = 1; !bad && i <= o->endpoints; i++)
		if (!o->links[i].set)
			bad = "needs --link I for every engine 1..N";
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
	if (!o->endpoints)
		o->endpoints = highest ? highest : 1;
	if (o->endpoint_slot + o->endpoints - 1 > 31 ||
	    (o->iommu_slot >= o->endpoint_slot &&
	     o->iommu_slot < o->endpoint_slot + o->endpoints)) {
		fprintf(stderr, PROG ": endpoint slots %u..%u do not fit on "
			"bus 0 beside the IOMMU at slot %u\n", o->endpoint_slot,
			o->endpoint_slot + o->endpoints - 1, o->iommu_slot);
		return -1;
	}
	if (o->no_iommu)
		return check_no_iommu(o);
	if (o->viot_only)
		return 0;
	for (i = 0; i <= o->endpoints; i++)
		if (!o->links[i].set) {
			fprintf(stderr, PROG ": no --link for %s %u\n",
				i ? "endpoint link" : "the IOMMU, link", i);
			return -1;
		}
	if (highest > o->endpoints) {
		fprintf(stderr, PROG ": --link %u but only %u endpoints\n",
			highest, o->endpoints);
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
static int parse_args(struct opts *o, int argc, char **argv)
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

static uint16_t endpoint_bdf(const struct opts *o, unsigned int i)
{
	return VIOT_BDF(0, o->endpoint_slot + i, 0);
}

/* write_viot() - the VIOT of the topology to o->viot. */
static int write_viot(const struct opts *o)
{
	struct viot_pci_range r = {
		.bdf_start = endpoint_bdf(o, 0),
		.bdf_end = endpoint_bdf(o, o->endpoints - 1),
		.endpoint_start = endpoint_bdf(o, 0),
	};
	struct viot_topology t = {
		.iommu_bdf = VIOT_BDF(0, o->iommu_slot, 0),
		.ranges = &r,
		.nr_ranges = 1,
	};
	uint8_t buf[256];
	size_t len;
	FILE *f;
	int err = viot_build(&t, buf, sizeof(buf), &len);

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
	struct viommu_ctx_config cc = { .log = w->log };
	struct viommu_virtio_iommu_config vc = w->o->vi;
	int err;

	err = viommu_mem_create(&mc, &w->mem);
	if (err)
		return err;
	cc.mem = w->mem;
	err = viommu_ctx_create(&cc, &w->ctx);
	if (err)
		return err;
	if (w->o->no_iommu)
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
	if (w->o->trace)
		viommu_virtio_iommu_set_trace(w->vi, trace_line, w);
	err = virtio_pci_init(&w->vp, viommu_virtio_iommu_dev(w->vi), "iommu",
			      &w->log);
	if (!err)
		w->vp_live = true;
	return err;
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
	struct viommu_ctx_config cc = { .log = w->log };
	struct viommu_domain_config dc = { .kind = VIOMMU_DOMAIN_PAGING,
					   .tag = i };
	int err = viommu_mem_create(&mc, &w->emem[i]);

	if (err)
		return err;
	cc.mem = w->emem[i];
	err = viommu_ctx_create(&cc, &w->ectx[i]);
	if (err)
		return err;
	return viommu_domain_create(w->ectx[i], &dc, &w->edom[i]);
}

/* make_engines() - one endpoint and DMA engine per endpoint link. */
static int make_engines(struct world *w)
{
	char name[16];
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
		snprintf(name, sizeof(name), "dma%u", i); /* copied */
		err = dma_engine_init(&w->eng[i], w->ep[i], mem, name,
				      &w->log, NULL);
		if (err)
			return err;
		w->eng_live[i] = true;
		w->neng = i + 1;
	}
	return 0;
}

/* link_func() - the PCI function of link @i. */
static struct pci_func *link_func(struct world *w, unsigned int i)
{
	return i ? dma_engine_func(&w->eng[i - 1]) : virtio_pci_func(&w->vp);
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

	for (i = w->o->no_iommu ? 1 : 0; !err && i <= w->o->endpoints; i++) {
		const struct link_opt *lo = &w->o->links[i];
		struct viommu_link_config lc = {
			.size = sizeof(lc),
			.proto = w->o->vfio_user ? VIOMMU_LINK_VFIO_USER :
						   VIOMMU_LINK_MPQEMU,
			.func = (struct viommu_pci_func *)link_func(w, i),
			.fd = lo->fd,
			.path = lo->path,
			.name = i ? w->eng[i - 1].name : "iommu",
			.mem = i && w->o->no_iommu ? w->emem[i - 1] : NULL,
			.domain = i && w->o->no_iommu ? w->edom[i - 1] : NULL,
			.trust_peer_fds = w->o->trust_fds,
			.path_mode = w->o->socket_mode,
			.check_peer_uid = w->o->check_uid,
			.peer_uid = w->o->peer_uid,
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

/* run() - wait for the end of every link or a signal. */
static void run(struct world *w)
{
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = w->sig_fd, .events = POLLIN },
			{ .fd = w->ev_fd, .events = POLLIN },
		};
		struct signalfd_siginfo si;
		uint64_t v;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return;
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

static double elapsed(const struct world *w)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - w->t0.tv_sec) +
	       (double)(t.tv_nsec - w->t0.tv_nsec) / 1e9;
}

/* ---- summary -------------------------------------------------------- */

/* cpu_seconds() - user + system CPU time of every thread of the server. */
static double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return -1;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static const char *const req_names[VIOMMU_VI_REQ_TYPES] = {
	"unknown", "ATTACH", "DETACH", "MAP", "UNMAP", "PROBE",
};
static const char *const status_names[VIOMMU_VI_S_COUNT] = {
	"OK", "IOERR", "UNSUPP", "DEVERR", "INVAL", "RANGE", "NOENT",
	"FAULT", "NOMEM",
};

/* print_links() - one line per link: its messages by command. */
static void print_links(struct world *w, FILE *f)
{
	unsigned int i, c, n = viommu_link_server_num_links(w->lsrv);
	int proto = w->o->vfio_user ? VIOMMU_LINK_VFIO_USER :
				      VIOMMU_LINK_MPQEMU;
	struct viommu_link_stats st;

	fprintf(f, "  links (%s):\n", w->o->vfio_user ? "vfio-user" :
		"mpqemu");
	for (i = 0; i < n; i++) {
		if (viommu_link_server_stats(w->lsrv, i, &st, sizeof(st)))
			continue;
		fprintf(f, "    %u %-6s %-9s", i,
			viommu_link_server_name(w->lsrv, i),
			viommu_link_end_name(st.end));
		for (c = 0; c < VIOMMU_LINK_MAX_CMDS; c++)
			if (st.msgs[c])
				fprintf(f, " %s %" PRIu64,
					viommu_link_cmd_name(proto, c),
					st.msgs[c]);
		fprintf(f, "; irqs %" PRIu64 ", unmasks %" PRIu64 ", errors %"
			PRIu64 "; in %" PRIu64 " B, out %" PRIu64 " B",
			st.irq_signals, st.unmasks, st.errors, st.bytes_in,
			st.bytes_out);
		if (st.dma_requests)
			fprintf(f, "; DMA_READ/WRITE to the peer %" PRIu64
				" (%" PRIu64 " failed)", st.dma_requests,
				st.dma_failed);
		fputc('\n', f);
	}
}

/* print_requests() - virtio-iommu requests by type and status. */
static void print_requests(const struct viommu_virtio_iommu_stats *vs,
			   FILE *f)
{
	unsigned int t, s;

	fprintf(f, "  virtio-iommu requests:\n");
	for (t = 1; t <= VIOMMU_VI_REQ_TYPES; t++) {
		unsigned int row = t % VIOMMU_VI_REQ_TYPES; /* unknown last */
		uint64_t total = 0;

		for (s = 0; s < VIOMMU_VI_S_COUNT; s++)
			total += vs->requests[row][s];
		if (!total && row == 0)
			continue;
		fprintf(f, "    %-8s %8" PRIu64, req_names[row], total);
		for (s = 0; s < VIOMMU_VI_S_COUNT; s++)
			if (vs->requests[row][s])
				fprintf(f, "  %s %" PRIu64, status_names[s],
					vs->requests[row][s]);
		fprintf(f, "\n");
	}
	fprintf(f, "  kicks %" PRIu64 ", events sent %" PRIu64 ", dropped %"
		PRIu64 ", needs-reset %" PRIu64 "\n", vs->kicks,
		vs->events_sent, vs->events_dropped, vs->needs_reset);
}

/* print_poller() - what --poll-rq-us did. */
static void print_poller(const struct world *w, FILE *f)
{
	if (w->o->poll_rq_us)
		fprintf(f, "  polling (--poll-rq-us %u): %" PRIu64 " requests "
			"served without a kick in %" PRIu64 " periods\n",
			w->o->poll_rq_us, w->polled, w->poll_periods);
}

/* print_engines() - DMA engine counters and the byte totals. */
static void print_engines(struct world *w, FILE *f)
{
	uint64_t rd = 0, wr = 0;
	unsigned int i;

	fprintf(f, "  DMA engines:\n");
	for (i = 0; i < w->neng; i++) {
		struct dma_engine_stats es;

		if (dma_engine_stats(&w->eng[i], &es))
			continue;
		rd += es.bytes_read;
		wr += es.bytes_written;
		fprintf(f, "    %-5s ep %#06x: dmas %" PRIu64 ", ring entries %"
			PRIu64 ", read %" PRIu64 " B, written %" PRIu64
			" B, faults %" PRIu64 ", errors %" PRIu64 ", irqs %"
			PRIu64 "\n", w->eng[i].name, endpoint_bdf(w->o, i),
			es.dmas, es.ring_entries, es.bytes_read,
			es.bytes_written, es.faults, es.errors, es.irqs);
	}
	fprintf(f, "  DMA bytes: %" PRIu64 " read, %" PRIu64 " written\n", rd,
		wr);
}

/* print_summary() - the human-readable counters. */
static void print_summary(struct world *w, FILE *f)
{
	struct viommu_virtio_iommu_stats vs = { .kicks = 0 };
	struct viommu_ctx_stats cs = { 0 };

	viommu_virtio_iommu_stats(w->vi, &vs);
	viommu_ctx_stats(w->ctx, &cs);
	fprintf(f, PROG " summary: %.3f s (CPU %.3f s), ended by %s\n",
		elapsed(w), cpu_seconds(), w->why ? w->why : "?");
	print_links(w, f);
	print_requests(&vs, f);
	print_poller(w, f);
	fprintf(f, "  core: IOTLB misses %" PRIu64 ", faults %" PRIu64
		", maps %" PRIu64 ", unmaps %" PRIu64 "; live: domains %"
		PRIu64 ", endpoints %" PRIu64 ", mappings %" PRIu64 "\n",
		cs.iotlb_misses, cs.faults, cs.maps, cs.unmaps, cs.domains,
		cs.endpoints, cs.mappings);
	print_engines(w, f);
	fflush(f);
}

/* json_links() - the door and the "links" array. */
static void json_links(struct world *w, FILE *f)
{
	unsigned int i, c, n = viommu_link_server_num_links(w->lsrv);
	int proto = w->o->vfio_user ? VIOMMU_LINK_VFIO_USER :
				      VIOMMU_LINK_MPQEMU;
	struct viommu_link_stats st;
	bool first;

	fprintf(f, "  \"door\": \"%s\",\n  \"links\": [",
		w->o->vfio_user ? "vfio-user" : "mpqemu");
	for (i = 0; i < n; i++) {
		if (viommu_link_server_stats(w->lsrv, i, &st, sizeof(st)))
			continue;
		fprintf(f, "%s\n    {\"id\": %u, \"name\": \"%s\", \"end\": "
			"\"%s\", \"connected\": %s, \"messages\": {",
			i ? "," : "", i, viommu_link_server_name(w->lsrv, i),
			viommu_link_end_name(st.end),
			st.connected ? "true" : "false");
		first = true;
		for (c = 0; c < VIOMMU_LINK_MAX_CMDS; c++) {
			const char *name = viommu_link_cmd_name(proto, c);

			if (!strcmp(name, "?"))
				continue;
			fprintf(f, "%s\"%s\": %" PRIu64, first ? "" : ", ",
				name, st.msgs[c]);
			first = false;
		}
		fprintf(f, "}, \"bytes_in\": %" PRIu64 ", \"bytes_out\": %"
			PRIu64 ", \"errors\": %" PRIu64 ", \"irq_signals\": %"
			PRIu64 ", \"unmasks\": %" PRIu64 ", \"ram_applied\": %"
			PRIu64 ", \"ram_ignored\": %" PRIu64 ", \"dma_requests\": %"
			PRIu64 ", \"dma_failed\": %" PRIu64 "}",
			st.bytes_in, st.bytes_out, st.errors, st.irq_signals,
			st.unmasks, st.ram_applied, st.ram_ignored,
			st.dma_requests, st.dma_failed);
	}
	fprintf(f, "\n  ],\n");
}

/* json_requests() - {"ATTACH": {"OK": n, ...}, ...} and event counters. */
static void json_requests(struct world *w, FILE *f)
{
	struct viommu_virtio_iommu_stats vs = { .kicks = 0 };
	unsigned int t, s;

	viommu_virtio_iommu_stats(w->vi, &vs);
	fprintf(f, "  \"requests\": {");
	for (t = 0; t < VIOMMU_VI_REQ_TYPES; t++) {
		fprintf(f, "%s\n    \"%s\": {", t ? "," : "", req_names[t]);
		for (s = 0; s < VIOMMU_VI_S_COUNT; s++)
			fprintf(f, "%s\"%s\": %" PRIu64, s ? ", " : "",
				status_names[s], vs.requests[t][s]);
		fprintf(f, "}");
	}
	fprintf(f, "\n  },\n  \"kicks\": %" PRIu64 ", \"events_sent\": %"
		PRIu64 ", \"events_dropped\": %" PRIu64 ", \"needs_reset\": %"
		PRIu64 ",\n  \"poll_rq_us\": %u, \"polled_requests\": %" PRIu64
		", \"poll_periods\": %" PRIu64 ",\n", vs.kicks, vs.events_sent,
		vs.events_dropped, vs.needs_reset, w->o->poll_rq_us, w->polled,
		w->poll_periods);
}

/* json_engines() - the "engines" array. */
static void json_engines(struct world *w, FILE *f)
{
	unsigned int i;

	fprintf(f, "  \"engines\": [");
	for (i = 0; i < w->neng; i++) {
		struct dma_engine_stats es = { 0 };

		dma_engine_stats(&w->eng[i], &es);
		fprintf(f, "%s\n    {\"name\": \"%s\", \"endpoint\": %u, "
			"\"dmas\": %" PRIu64 ", \"ring_doorbells\": %" PRIu64
			", \"ring_entries\": %" PRIu64 ", \"bytes_read\": %"
			PRIu64 ", \"bytes_written\": %" PRIu64 ", \"faults\": %"
			PRIu64 ", \"errors\": %" PRIu64 ", \"irqs\": %" PRIu64
			"}", i ? "," : "", w->eng[i].name,
			endpoint_bdf(w->o, i), es.dmas, es.ring_doorbells,
			es.ring_entries, es.bytes_read, es.bytes_written,
			es.faults, es.errors, es.irqs);
	}
	fprintf(f, "\n  ]\n");
}

/* write_json() - the counters as JSON to o->stats_json. */
static int write_json(struct world *w)
{
	struct viommu_ctx_stats cs = { 0 };
	FILE *f = fopen(w->o->stats_json, "w");

	if (!f) {
		say(w, VIOMMU_LOG_ERROR, "%s: %s", w->o->stats_json,
		    strerror(errno));
		return -1;
	}
	viommu_ctx_stats(w->ctx, &cs);
	fprintf(f, "{\n  \"seconds\": %.3f, \"cpu_seconds\": %.3f, "
		"\"ended_by\": \"%s\", \"trace_lines\": %" PRIu64 ",\n",
		elapsed(w), cpu_seconds(), w->why ? w->why : "?",
		w->trace_lines);
	json_links(w, f);
	json_requests(w, f);
	fprintf(f, "  \"core\": {\"iotlb_misses\": %" PRIu64 ", \"faults\": %"
		PRIu64 ", \"maps\": %" PRIu64 ", \"unmaps\": %" PRIu64
		", \"domains\": %" PRIu64 ", \"endpoints\": %" PRIu64
		", \"mappings\": %" PRIu64 "},\n", cs.iotlb_misses, cs.faults,
		cs.maps, cs.unmaps, cs.domains, cs.endpoints, cs.mappings);
	json_engines(w, f);
	fprintf(f, "}\n");
	if (fclose(f)) {
		say(w, VIOMMU_LOG_ERROR, "%s: %s", w->o->stats_json,
		    strerror(errno));
		return -1;
	}
	return 0;
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

	return viommu_virtio_iommu_stats(w->vi, &st) ? 0 : st.kicks;
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
	for (i = 0; i < w->neng; i++)
		if (w->eng_live[i])
			dma_engine_destroy(&w->eng[i]);
	for (i = 0; i < MAX_ENDPOINTS; i++) {
		viommu_ctx_destroy(w->ectx[i]);
		viommu_mem_destroy(w->emem[i]);
	}
	if (w->vp_live)
		virtio_pci_destroy(&w->vp);
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
		err = start_poller(w);
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
	w.sig_fd = w.ev_fd = -1;
	clock_gettime(CLOCK_MONOTONIC, &w.t0);
	if (o.viot && write_viot(&o))
		return 1;
	if (o.viot_only)
		return 0;
	if (setup(&w)) {
		teardown(&w);
		return 1;
	}
	if (o.no_iommu)
		say(&w, VIOMMU_LOG_INFO, "serving %u DMA engine(s) from "
		    "00:%02x.0 behind the VMM's own vIOMMU", o.endpoints,
		    o.endpoint_slot);
	else
		say(&w, VIOMMU_LOG_INFO, "serving the IOMMU at 00:%02x.0 and "
		    "%u DMA engine(s) from 00:%02x.0 (endpoints %#x..%#x)",
		    o.iommu_slot, o.endpoints, o.endpoint_slot,
		    endpoint_bdf(&o, 0), endpoint_bdf(&o, o.endpoints - 1));
	run(&w);
	stop_poller(&w);
	viommu_link_server_stop(w.lsrv);
	print_summary(&w, stdout);
	r = o.stats_json ? write_json(&w) : 0;
	teardown(&w);
	return r ? 1 : 0;
}
