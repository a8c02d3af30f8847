/*
 * guest.h - shared declarations of the guest test program (viommu-guest).
 *
 * The program runs as root inside the real Linux guest's initramfs and
 * drives DMA engines (PCI 1234:11e8: our endpoint or QEMU's edu) from user
 * space through VFIO, polled, the way DPDK does in a guest: VFIO type1v2
 * MAP_DMA / UNMAP_DMA become virtio-iommu MAP / UNMAP requests of the guest
 * kernel's driver, and every DMA the engine makes is translated by the
 * IOMMU under test.  Pieces:
 *
 *   viommu-guest.c  main, options, result lines, small utilities
 *   vfio.c          sysfs discovery, driver binding, VFIO container /
 *                   group / device, DMA buffers, pagemap
 *   engine.c        register access, register-mode DMA, ring mode
 *   scenarios.c     probe, dma, readonly, unmapped, isolation
 *   stress.c        rebind, stress, identity, twocpu
 *   bench.c         bench (map/unmap rates, DMA throughput)
 *   blk.c           blkfs (the stock virtio-blk driver, a filesystem)
 *   blkio.c         blkio (O_DIRECT random I/O rates on that disk)
 *   net.c           netpkt (the stock virtio-net driver, raw frames)
 *   netns.c         two NICs in two network namespaces (netlink)
 *   nettcp.c        nettcp, netfault (ping, TCP each way), netbench
 *
 * Every scenario prints one line
 *   VIOMMU-RESULT scenario=NAME status=pass|fail|skip key=value ...
 * and never hangs: each wait polls against a deadline.
 */
#ifndef VIOMMU_GUEST_H
#define VIOMMU_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* PCI identity of edu and of our DMA engine. */
#define ENG_VENDOR 0x1234
#define ENG_DEVICE 0x11e8

/* Registers (BAR0 offsets), docs/REAL-GUEST.md. */
#define R_ID 0x00
#define R_LIVENESS 0x04
#define R_FACTORIAL 0x08
#define R_STATUS 0x20
#define R_DMA_SRC 0x80
#define R_DMA_DST 0x88
#define R_DMA_COUNT 0x90
#define R_DMA_CMD 0x98
#define R_EXT_ID 0x100
#define R_EXT_VERSION 0x104
#define R_EXT_STATUS 0x108
#define R_EXT_FAULT_ADDR 0x110
#define R_EXT_FAULT_INFO 0x118
#define R_EXT_BUF_SIZE 0x120
#define R_EXT_DMA_COUNT 0x124
#define R_RING_BASE 0x140
#define R_RING_SIZE 0x148
#define R_RING_HEAD 0x14c
#define R_RING_TAIL 0x150

#define ID_VALUE 0x010000edu
#define EXT_ID_VALUE 0x4d4f4956u /* "VIOM" */
#define CMD_START (1u << 0)
#define CMD_TO_RAM (1u << 1)
#define EXT_ERR_DMA (1u << 0)
#define EXT_ERR_RING (1u << 1)
#define DEV_BUF 0x40000u       /* device-side address of the buffer */
#define EDU_BUF_SIZE 4096u

/* Ring entry status values. */
#define RING_DONE 1u
#define RING_FAULT 2u
#define RING_BAD 3u

/* Core fault reasons as EXT_FAULT_INFO reports them (info >> 8). */
#define FAULT_NO_MAPPING 4u
#define FAULT_PERMISSION 5u
#define FAULT_STAGE1 7u /* a nested / SMMUv3 walker refused */
#define ACC_READ 1u
#define ACC_WRITE 2u

/* IOVA window every scenario allocates from: below edu's 28-bit mask. */
#define IOVA_BASE 0x01000000ull
#define IOVA_LIMIT 0x0f000000ull

#define PAGE 4096ul
#define MAX_ENGINES 8

/*
 * A VFIO container: one IOMMU domain (type1v2) and its IOVA allocator,
 * which keeps to the usable ranges VFIO reports (start, end pairs).
 */
struct ctr {
	int fd;
	int ngroups;
	uint64_t next_iova;
	uint64_t pgsizes;
	int nranges;
	uint64_t ranges[32];
};

/* A DMA engine, opened through VFIO or (identity) through sysfs. */
struct eng {
	char bdf[32];
	int group;
	struct ctr *ctr;
	int groupfd;
	int devfd;
	int cfgfd;          /* sysfs config (sysfs mode) */
	off_t cfg_off;      /* VFIO config region offset (VFIO mode) */
	volatile uint8_t *bar;
	size_t bar_size;
	bool ours;          /* EXT_ID reads "VIOM" */
	uint32_t buf_size;  /* device buffer bytes */
};

/* A DMA buffer: anonymous, populated, page aligned; iova once mapped. */
struct dmabuf {
	uint8_t *va;
	size_t size;
	uint64_t iova;
	bool mapped;
	void *raw;      /* what mmap returned (before alignment) */
	size_t raw_size;
};

/* One descriptor of ring mode, as laid out in guest memory. */
struct ring_desc {
	uint64_t src;
	uint64_t dst;
	uint32_t len;
	uint32_t flags;
	uint32_t status;
	uint32_t rsvd;
};

/* A descriptor ring in a DMA buffer; addr is its IOVA (or GPA). */
struct ring {
	struct dmabuf mem;
	uint64_t addr;
	uint32_t size;
	uint32_t head;
};

/* Options shared by the scenarios. */
struct opts {
	uint64_t seed;
	unsigned iters;
	unsigned bench_ms;
	bool verbose;
};

/* The outcome of one scenario, printed as one VIOMMU-RESULT line. */
struct result {
	const char *scenario;
	int status; /* RES_PASS, RES_FAIL, RES_SKIP */
	unsigned checks;
	uint64_t bytes_verified;
	char kv[3072];
	char reason[256];
};

enum { RES_PASS, RES_FAIL, RES_SKIP };

/* viommu-guest.c */
extern const struct opts *g_opts;
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void res_kv(struct result *r, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void res_fail(struct result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void res_skip(struct result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
bool expect(struct result *r, bool cond, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t now_ns(void);
uint64_t rng_next(uint64_t *s);
void fill_pattern(uint8_t *p, size_t n, uint64_t seed);
size_t first_diff(const uint8_t *a, const uint8_t *b, size_t n);
int read_file_str(const char *path, char *buf, size_t size);
int write_file_str(const char *path, const char *s);
bool cmdline_has(const char *w);

/* vfio.c */
int eng_find_all(struct eng *e, int max);
int eng_bind_vfio(struct eng *e);
int eng_unbind(struct eng *e);
int eng_driver(const struct eng *e, char *buf, size_t size);
int ctr_open(struct ctr *c);
void ctr_close(struct ctr *c);
int ctr_add(struct ctr *c, struct eng *e);
void eng_close(struct eng *e);
int ctr_map(struct ctr *c, void *va, size_t size, uint64_t iova, bool write);
int ctr_map_prot(struct ctr *c, void *va, size_t size, uint64_t iova,
		 bool read, bool write);
int ctr_unmap(struct ctr *c, uint64_t iova, size_t size, uint64_t *done);
int ctr_iova_ranges(struct ctr *c, uint64_t *ranges, int max, int *n);
uint64_t ctr_alloc_iova(struct ctr *c, size_t size);
int buf_alloc(struct dmabuf *b, size_t size, size_t align);
void buf_free(struct dmabuf *b);
int buf_map(struct ctr *c, struct dmabuf *b, bool write);
int buf_unmap(struct ctr *c, struct dmabuf *b);
int virt_to_phys(const void *va, uint64_t *pa);
int eng_open_sysfs(struct eng *e);

/* engine.c */
uint32_t rd32(struct eng *e, unsigned off);
void wr32(struct eng *e, unsigned off, uint32_t v);
uint64_t rd64(struct eng *e, unsigned off);
void wr64(struct eng *e, unsigned off, uint64_t v);
int eng_identify(struct eng *e);
int eng_dma(struct eng *e, uint64_t src, uint64_t dst, uint64_t count,
	    bool to_ram, uint32_t *ext_status);
int eng_to_dev(struct eng *e, uint64_t iova, uint32_t off, uint32_t len,
	       uint32_t *ext_status);
int eng_to_ram(struct eng *e, uint32_t off, uint64_t iova, uint32_t len,
	       uint32_t *ext_status);
void eng_fault(struct eng *e, uint64_t *addr, uint32_t *info);
int eng_cfg_busmaster(struct eng *e);
int ring_setup(struct eng *e, struct ctr *c, struct ring *ring,
	       uint32_t entries);
void ring_teardown(struct eng *e, struct ctr *c, struct ring *ring);
int ring_run(struct eng *e, struct ring *ring, const struct ring_desc *d,
	     uint32_t n, uint32_t *status);

/* scenarios.c */
int sc_probe(struct result *r);
int sc_smmu(struct result *r);
int sc_vtd(struct result *r);
int kmsg_find(const char *needle, char *out, size_t size);
void wait_fault_log_window(void);
int sc_dma(struct result *r);
int sc_readonly(struct result *r);
int sc_unmapped(struct result *r);
int sc_isolation(struct result *r);
int sc_rebind(struct result *r);

/* events.c */
bool wait_kmsg(const char *needle, unsigned int ms);
unsigned int endpoint_id(const char *bdf);
int sc_faultlog(struct result *r);
int sc_notify(struct result *r);

/* stress.c */
int sc_stress(struct result *r);
int sc_identity(struct result *r);
int sc_twocpu(struct result *r);

/* bench.c */
int sc_bench(struct result *r);

/* A virtio disk and where the kernel put it (blk.c). */
struct disk {
	char name[32];   /* vda */
	char bdf[32];    /* its PCI function */
	char group[16];  /* IOMMU group number, "" without one */
	char dtype[32];  /* the group's default domain type, or "none" */
	char serial[64]; /* VIRTIO_BLK_T_GET_ID */
	uint64_t sectors;
	bool ro;
};

/* blk.c */
int disk_find(struct disk *d);
int sc_blkfs(struct result *r);
int sc_blkfault(struct result *r);
int sc_blkiso(struct result *r);

/* blkio.c */
int sc_blkio(struct result *r);

/* A NIC the virtio_net driver drives (net.c). */
struct nic {
	char name[16];
	char bdf[32];
	char dtype[32];  /* its IOMMU group's domain type, or "none" */
	uint8_t mac[6];
	int ifindex;
	int fd; /* AF_PACKET socket bound to it (netpkt) */
};

/* net.c */
int nic_describe(struct nic *n, const char *name);
int nics_find(struct nic *n);
int sc_netpkt(struct result *r);

/*
 * Two NICs, each alone in a network namespace of its own with an IPv4
 * address 10.13.0.(i+1)/24 (netns.c).
 */
struct netpair {
	struct nic n[2];
	int ns[2];     /* the namespaces (fds), -1 before setup */
	int orig;      /* the namespace we started in */
	uint32_t ip[2]; /* network order */
};

/* netns.c */
int pair_setup(struct result *r, struct netpair *p);
void pair_teardown(struct netpair *p);
int ns_socket(const struct netpair *p, int side, int domain, int type,
	      int proto);

/* nettcp.c */
int sc_nettcp(struct result *r);
int sc_netfault(struct result *r);
int sc_netbench(struct result *r);

/* Shared setup helpers (scenarios.c). */
int open_engines(struct result *r, struct eng *e, int want);
int attach_engine(struct result *r, struct ctr *c, struct eng *e);
int roundtrip(struct result *r, struct eng *e, struct dmabuf *src,
	      size_t soff, struct dmabuf *dst, size_t doff, uint32_t len,
	      uint64_t seed);
const char *eng_kind(const struct eng *e);
int group_type(int group, char *buf, size_t size);

#endif /* VIOMMU_GUEST_H */
