/*
 * server.h - what the three files of viommu-server share: the options
 * (struct opts, parsed by server_opts.c, which also checks the topology
 * and writes its VIOT), the running world (struct world, built and run by
 * viommu-server.c), the register-frame IOMMU (server_frame.c:
 * --smmuv3-frame, --vtd-frame) and the exit report (server_report.c: the summary on
 * stdout and --stats-json).
 */
#ifndef VIOMMU_SERVER_H
#define VIOMMU_SERVER_H

#include <viommu/viommu.h>
#include <viommu/virtio_blk.h>
#include <viommu/virtio_net.h>

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
#include <sys/stat.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <viommu/acpi.h>

#define MAX_ENDPOINTS 24 /* endpoint functions: DMA engines and disks */
#define MAX_DEVS (MAX_ENDPOINTS + 1)
#define MAX_BLKS 8
#define MAX_NETS 4
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

/* One --blk: a virtio-blk disk and its backend. */
struct blk_opt {
	const char *file;  /* raw image, or NULL: anonymous memory */
	uint64_t mem_size; /* bytes of anonymous memory */
	bool ro;
	bool no_iommu;     /* guest-physical DMA, not in the VIOT */
	uint16_t queues;
	uint16_t queue_size;
	const char *serial;
};

/* One --net: a virtio-net NIC on the server's switch. */
struct net_opt {
	uint8_t mac[6];
	bool mac_set;
	bool no_iommu;     /* guest-physical DMA, not in the VIOT */
	uint16_t pairs;
	uint16_t queue_size;
	uint32_t socket_kind; /* VIOMMU_NET_SOCKET_*: a peer, not the switch */
	int socket_fd;
};

/* One --link: an inherited fd or a path. */
struct link_opt {
	bool set;
	int fd;
	const char *path;
};

struct opts {
	struct link_opt links[MAX_DEVS];
	unsigned int endpoints; /* DMA engines */
	bool endpoints_set;     /* --endpoints given (else: from the links) */
	struct blk_opt blks[MAX_BLKS];
	unsigned int nblk;
	struct net_opt nets[MAX_NETS];
	unsigned int nnet;
	unsigned int nfunc; /* endpoint functions: engines, then disks */
	const char *control; /* --control FIFO */
	unsigned int iommu_slot, endpoint_slot;
	struct viommu_virtio_iommu_config vi;
	uint64_t ring_off; /* ring features not to offer */
	uint64_t dev_off;  /* device features not to offer */
	const char *viot;
	bool viot_only;
	bool trace;
	uint64_t trace_mask; /* --trace-events (0: the default set) */
	enum viommu_log_level level;
	const char *stats_json;
	unsigned int poll_us;
	unsigned int poll_rq_us;
	uint32_t peer_timeout_ms; /* --peer-timeout-ms (0: the library's) */
	bool vfio_user; /* --door vfio-user */
	bool no_iommu;  /* --no-iommu: the peer's vIOMMU translates */
	uint32_t max_mappings; /* --max-mappings: context-wide (0: default) */
	bool trust_fds; /* --trust-peer-fds */
	uint32_t socket_mode; /* --socket-mode (0: the library's 0600) */
	bool check_uid;       /* --peer-user */
	uint32_t peer_uid;
	bool smmu_frame;         /* --smmuv3-frame (server_frame.c) */
	uint64_t smmu_frame_gpa;
	uint32_t smmu_features;  /* --smmuv3-features (0: default) */
	bool vtd_frame;          /* --vtd-frame (server_frame.c) */
	uint64_t vtd_frame_gpa;
	uint32_t vtd_features;   /* --vtd-features (0: default) */
	unsigned int frame_nap_us; /* --frame-nap-us (0: 20 us doubling to
				    * 2 ms while the guest is quiet) */
	const char *dmar;        /* --dmar FILE */
};

/* The mappings of the victim a blk-forge tries (viommu-server.c). */
#define FORGE_MAX 64
#define FORGE_PROBES 256 /* pages tried per blk-forge */
struct forge_set {
	unsigned int n;
	struct viommu_mapping m[FORGE_MAX];
};

/* Everything the server runs; torn down in reverse. */
struct world {
	struct opts *o;
	struct viommu_log log;
	struct viommu_mem *mem;
	struct viommu_ctx *ctx;
	struct viommu_virtio_iommu *vi;
	struct viommu_virtio_pci *vp;
	unsigned int neng;
	struct viommu_endpoint *ep[MAX_ENDPOINTS]; /* by function */
	struct viommu_dma_engine *eng[MAX_ENDPOINTS];
	char eng_name[MAX_ENDPOINTS][16];
	/* disks: device, its virtio-pci function, its name */
	unsigned int nblk;
	struct viommu_virtio_blk *blk[MAX_BLKS];
	struct viommu_virtio_pci *blk_vp[MAX_BLKS];
	char blk_name[MAX_BLKS][16];
	/* NICs (after the disks), all on one switch */
	unsigned int nnet;
	struct viommu_net_switch *sw;
	struct viommu_virtio_net *net[MAX_NETS];
	struct viommu_virtio_pci *net_vp[MAX_NETS];
	char net_name[MAX_NETS][16];
	/* --control blk-forge outcomes: IOVAs of another disk that faulted,
	 * reached other memory, reached that disk's memory */
	uint64_t forge_faults, forge_other, forge_leaks;
	int ctl_fd; /* --control, and its partial line */
	char ctl_buf[256];
	size_t ctl_used;
	bool ctl_skip;
	/* --no-iommu: each function's own IOVA space, filled by DMA_MAP */
	struct viommu_mem *emem[MAX_ENDPOINTS];
	struct viommu_ctx *ectx[MAX_ENDPOINTS];
	struct viommu_domain *edom[MAX_ENDPOINTS];
	struct viommu_link_server *lsrv; /* every link, either door */
	/* --poll-rq-us: the request-queue poller (poller_main) */
	pthread_t poller;
	bool poller_live;
	int poller_stop; /* atomic */
	uint64_t polled, poll_periods; /* requests served by polling; periods */
	int sig_fd, ev_fd;
	struct timespec t0;
	uint64_t trace_lines; /* atomic */
	struct viommu_trace_sink tsink; /* --trace: typed events */
	const char *why; /* what ended the run */
	struct frame *frame; /* --smmuv3/--vtd-frame (server_frame.c) */
};

/* viommu-server.c */
void say(const struct world *w, enum viommu_log_level lvl, const char *fmt,
	 ...) __attribute__((format(printf, 3, 4)));
/* trace_sink() - --trace: the typed events' sink; NULL without --trace. */
const struct viommu_trace_sink *trace_sink(const struct world *w);

/* server_opts.c */
extern const char *const level_names[4];
void usage(FILE *f);
int parse_args(struct opts *o, int argc, char **argv);
uint16_t endpoint_bdf(const struct opts *o, unsigned int i);
bool func_behind_iommu(const struct opts *o, unsigned int i);
int write_viot(const struct opts *o);

/* server_frame.c: the register-frame IOMMU (--smmuv3-frame, --vtd-frame) */
#define FRAME_IOMMU(o) ((o)->smmu_frame || (o)->vtd_frame)
struct frame;
void frame_usage(FILE *f);
int frame_opt(struct opts *o, const char *name, const char *arg);
int frame_check(struct opts *o);
int frame_start(struct world *w);
void frame_teardown(struct world *w);
void frame_summary(struct world *w, FILE *f);
void frame_json(struct world *w, FILE *f);

/* server_report.c */
double elapsed(const struct world *w);
void print_summary(struct world *w, FILE *f);
int write_json(struct world *w);

#endif /* VIOMMU_SERVER_H */
