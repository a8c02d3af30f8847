/*
 * server_frame.c - viommu-server's register-frame IOMMUs: --smmuv3-frame
 * GPA serves our SMMUv3 model to a real guest through a register frame in
 * its shared RAM (src/link/regframe.h, docs/SMMUV3-GUEST.md), instead of
 * the virtio-iommu on link 0.
 *
 * The guest's device tree names the 128 KiB frame at GPA as an
 * arm,smmu-v3 node (no-map reserved memory); a regframe thread polls it
 * and feeds the guest's register writes to viommu_smmuv3_mmio_write().
 * The endpoint functions (DMA engines, disks, NICs) are served over
 * vfio-user as usual, each a core endpoint registered with the SMMUv3
 * model (StreamID = its BDF, which the device tree's iommu-map passes
 * through unchanged), so their DMA is translated by the guest's stream
 * table, context descriptors and page tables.
 *
 * The guest has no interrupt from the model (the frame cannot raise one)
 * and its driver therefore never reads the event queue.  So that faults
 * are still visible, each round reads the records the model added to the
 * event queue in guest RAM since the last look (at most EVT_SCAN_MAX per
 * round), counts them by event type and logs them (rate-limited); the
 * counts are in the summary and in --stats-json ("smmuv3").
 *
 * The register list is the feed order (regframe.h): interrupt and queue
 * configuration, queue indexes and error acknowledgements first; then
 * GBPA, IRQ_CTRL and CR0, which act on that configuration; CMDQ_PROD, the
 * doorbell, last.  VT-d plugs in the same way: a register table, read and
 * write adapters, and an option.
 */
#include "server.h"

#include <viommu/smmuv3.h>

#include "link/regframe.h"

#define SMMU_PAGE1 0x10000u
#define EVT_SCAN_MAX 256 /* event records read per round */
#define EVT_SIZE 32
#define EVT_LOG_MAX 16 /* records logged per event type */

/* Everything --smmuv3-frame runs. */
struct frame {
	struct world *w;
	struct viommu_smmuv3 *smmu;
	struct regframe *rf;
	struct ratelimit rl;
	uint64_t ev_base;       /* EVTQ_BASE the scan follows */
	uint32_t ev_seen;       /* next record to read, with the wrap bit */
	uint64_t ev_type[256];  /* records read, by event type */
	uint64_t ev_records, ev_read_errors;
};

/* Writable registers in feed order, then the read-only ones. */
static const struct regframe_reg smmu_regs[] = {
	{ 0x68, 8, true }, { 0x70, 4, true }, { 0x74, 4, true }, /* GERROR_IRQ_CFG */
	{ 0xb0, 8, true }, { 0xb8, 4, true }, { 0xbc, 4, true }, /* EVTQ_IRQ_CFG */
	{ 0xd0, 8, true }, { 0xd8, 4, true }, { 0xdc, 4, true }, /* PRIQ_IRQ_CFG */
	{ 0x80, 8, true }, { 0x88, 4, true },  /* STRTAB_BASE, _CFG */
	{ 0x90, 8, true }, { 0x9c, 4, true },  /* CMDQ_BASE, CMDQ_CONS */
	{ 0xa0, 8, true }, { 0xa8, 4, true }, { 0xac, 4, true }, /* EVTQ */
	{ SMMU_PAGE1 + 0xa8, 4, true }, { SMMU_PAGE1 + 0xac, 4, true },
	{ 0xc0, 8, true }, { 0xc8, 4, true }, { 0xcc, 4, true }, /* PRIQ */
	{ SMMU_PAGE1 + 0xc8, 4, true }, { SMMU_PAGE1 + 0xcc, 4, true },
	{ 0x28, 4, true }, { 0x2c, 4, true },  /* CR1, CR2 */
	{ 0x64, 4, true },                     /* GERRORN */
	{ 0x44, 4, true },                     /* GBPA */
	{ 0x50, 4, true },                     /* IRQ_CTRL */
	{ 0x20, 4, true },                     /* CR0 */
	{ 0x98, 4, true },                     /* CMDQ_PROD: the doorbell */
	{ 0x00, 4, false }, { 0x04, 4, false }, { 0x08, 4, false }, /* IDR0-2 */
	{ 0x0c, 4, false }, { 0x10, 4, false }, { 0x14, 4, false }, /* IDR3-5 */
	{ 0x18, 4, false }, { 0x1c, 4, false }, /* IIDR, AIDR */
	{ 0x24, 4, false }, { 0x40, 4, false }, /* CR0ACK, STATUSR */
	{ 0x48, 4, false }, { 0x54, 4, false }, /* AGBPA, IRQ_CTRLACK */
	{ 0x60, 4, false },                     /* GERROR */
	{ 0xfd0, 4, false }, { 0xfd4, 4, false }, { 0xfd8, 4, false },
	{ 0xfdc, 4, false }, { 0xfe0, 4, false }, { 0xfe4, 4, false },
	{ 0xfe8, 4, false }, { 0xfec, 4, false }, { 0xff0, 4, false },
	{ 0xff4, 4, false }, { 0xff8, 4, false }, { 0xffc, 4, false },
};

/* Event type names (SMMUv3 7.3), for log lines and the JSON. */
static const char *event_name(unsigned int t)
{
	switch (t) {
	case 0x01: return "F_UUT";
	case 0x02: return "C_BAD_STREAMID";
	case 0x03: return "F_STE_FETCH";
	case 0x04: return "C_BAD_STE";
	case 0x05: return "F_BAD_ATS_TREQ";
	case 0x06: return "F_STREAM_DISABLED";
	case 0x07: return "F_TRANSL_FORBIDDEN";
	case 0x08: return "C_BAD_SUBSTREAMID";
	case 0x09: return "F_CD_FETCH";
	case 0x0a: return "C_BAD_CD";
	case 0x0b: return "F_WALK_EABT";
	case 0x10: return "F_TRANSLATION";
	case 0x11: return "F_ADDR_SIZE";
	case 0x12: return "F_ACCESS";
	case 0x13: return "F_PERMISSION";
	case 0x20: return "F_TLB_CONFLICT";
	case 0x21: return "F_CFG_CONFLICT";
	case 0x24: return "E_PAGE_REQUEST";
	default: return NULL;
	}
}

/* s_read(), s_write() - the frame's accesses, to the model (@opaque is
 * the struct frame). */
static int s_read(void *opaque, uint64_t off, unsigned int size, uint64_t *v)
{
	return viommu_smmuv3_mmio_read(((struct frame *)opaque)->smmu, off,
				       size, v);
}

static int s_write(void *opaque, uint64_t off, unsigned int size, uint64_t v)
{
	return viommu_smmuv3_mmio_write(((struct frame *)opaque)->smmu, off,
					size, v);
}

/*
 * s_poll() - the rest of a command queue consumed in slices: Linux waits
 * for CMD_SYNC through its MSI write and touches no register meanwhile,
 * so nothing else would consume it.  1 more left, 2 work done, 0 none.
 */
static int s_poll(void *opaque)
{
	struct viommu_smmuv3 *model = ((struct frame *)opaque)->smmu;
	uint64_t before = 0, after = 0;
	int r;

	viommu_smmuv3_mmio_read(model, 0x9c, 4, &before);
	r = viommu_smmuv3_poll(model);
	if (r < 0)
		return r;
	if (r == 1)
		return 1;
	viommu_smmuv3_mmio_read(model, 0x9c, 4, &after);
	return after != before ? 2 : 0;
}

/* log_event() - one event record, rate-limited (EVT_LOG_MAX per type). */
static void log_event(struct frame *fr, const uint8_t *rec)
{
	uint64_t w0, w2;
	unsigned int t = rec[0];
	const char *name = event_name(t);

	if (READ_ONCE(fr->ev_type[t]) > EVT_LOG_MAX)
		return;
	memcpy(&w0, rec, 8);
	memcpy(&w2, rec + 16, 8);
	rl_log(&fr->rl, &fr->w->log, VIOMMU_LOG_INFO,
	       "smmuv3: event %s (0x%02x) sid %#x%s addr %#" PRIx64 "%s",
	       name ? name : "?", t, (uint32_t)(w0 >> 32),
	       (w0 & (1u << 11)) ? " (ssid valid)" : "", w2,
	       fr->ev_type[t] == EVT_LOG_MAX ? " (more of this type not "
	       "logged)" : "");
}

/*
 * s_after() - read the event records the model added since the last
 * round (the guest has no interrupt and never reads them), bounded.
 */
static void s_after(void *opaque, bool changed)
{
	struct frame *fr = opaque;
	struct viommu_smmuv3 *model = fr->smmu;
	uint64_t base = 0, prod = 0, addr;
	uint32_t log2, wrap, p, n, i;
	uint8_t rec[EVT_SIZE];

	(void)changed;
	if (viommu_smmuv3_mmio_read(model, 0xa0, 8, &base) ||
	    viommu_smmuv3_mmio_read(model, SMMU_PAGE1 + 0xa8, 4, &prod))
		return;
	log2 = (uint32_t)(base & 0x1f);
	if (log2 > 19)
		return;
	wrap = (2u << log2) - 1;
	p = (uint32_t)prod & wrap;
	if (base != fr->ev_base) { /* a new queue: start at its producer */
		fr->ev_base = base;
		fr->ev_seen = p;
		return;
	}
	n = (p - fr->ev_seen) & wrap;
	if (n > (1u << log2)) { /* the queue was reset under us */
		fr->ev_seen = p;
		return;
	}
	addr = base & 0x000fffffffffffe0ull;
	for (i = 0; i < n && i < EVT_SCAN_MAX; i++) {
		uint32_t idx = fr->ev_seen & ((1u << log2) - 1);

		if (viommu_mem_read(fr->w->mem, addr + (uint64_t)idx * EVT_SIZE,
				    rec, sizeof(rec))) {
			ATOMIC_INC(fr->ev_read_errors);
		} else {
			ATOMIC_INC(fr->ev_type[rec[0]]);
			ATOMIC_INC(fr->ev_records);
			log_event(fr, rec);
		}
		fr->ev_seen = (fr->ev_seen + 1) & wrap;
	}
}

static const struct regframe_ops smmu_ops = {
	.regs = smmu_regs,
	.nregs = sizeof(smmu_regs) / sizeof(smmu_regs[0]),
	.frame_size = VIOMMU_SMMUV3_MMIO_SIZE,
	.read = s_read,
	.write = s_write,
	.poll = s_poll,
	.after_round = s_after,
};

/* ---- options -------------------------------------------------------- */

void frame_usage(FILE *f)
{
	fprintf(f,
"Register-frame IOMMU (instead of the virtio-iommu; docs/SMMUV3-GUEST.md):\n"
"  --smmuv3-frame GPA   serve our SMMUv3 model through a 128 KiB register\n"
"                       frame at guest-physical GPA in the guest's shared\n"
"                       RAM (an arm,smmu-v3 device-tree node over no-map\n"
"                       reserved memory), polled by a thread; every\n"
"                       endpoint function is behind it (StreamID = BDF);\n"
"                       needs --door vfio-user, takes no link 0\n"
"  --smmuv3-features M  VIOMMU_SMMUV3_F_* bits (default 0x7f: stage 1 and\n"
"                       2, HTTU, RIL, MSI, 2-level tables); e.g. 0x7e for\n"
"                       stage 2 only, 0x7d for stage 1 only\n");
}

int frame_opt(struct opts *o, const char *name, const char *arg)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end)
		return -1;
	if (!strcmp(name, "smmuv3-frame")) {
		if (v % 0x10000 || v > UINT64_MAX - VIOMMU_SMMUV3_MMIO_SIZE)
			return -1; /* 64 KiB aligned, like a real frame */
		o->smmu_frame = true;
		o->smmu_frame_gpa = v;
		return 0;
	}
	if (!v || v > VIOMMU_SMMUV3_F_ALL ||
	    !(v & (VIOMMU_SMMUV3_F_STAGE1 | VIOMMU_SMMUV3_F_STAGE2)))
		return -1;
	o->smmu_features = (uint32_t)v;
	return 0;
}

int frame_check(struct opts *o)
{
	const char *bad = NULL;

	if (!o->vfio_user)
		bad = "needs --door vfio-user (guest RAM must be shared)";
	else if (o->no_iommu)
		bad = "and --no-iommu do not mix";
	else if (o->links[0].set)
		bad = "takes no link 0 (the IOMMU is the frame)";
	else if (o->viot || o->viot_only)
		bad = "has no VIOT (the device tree names the SMMU)";
	else if (o->poll_rq_us || o->trace)
		bad = "has no request queue to poll or trace";
	for (unsigned int i = 1; !bad && i < MAX_DEVS; i++)
		if (!o->links[i].set && i <= o->nfunc)
			bad = "needs --link I for every function 1..N+M";
		else if (o->links[i].set && i > o->nfunc)
			bad = "has a --link beyond the endpoint functions";
	if (bad) {
		fprintf(stderr, PROG ": --smmuv3-frame %s\n", bad);
		return -1;
	}
	return 0;
}

/* ---- running -------------------------------------------------------- */

int frame_start(struct world *w)
{
	struct frame *fr;
	struct viommu_smmuv3_config sc = {
		.ctx = w->ctx, .mem = w->mem, .log = w->log,
		.features = w->o->smmu_features,
	};
	struct regframe_config rc = {
		.size = sizeof(rc), .ops = &smmu_ops, .mem = w->mem,
		.gpa = w->o->smmu_frame_gpa, .log = w->log, .name = "smmuv3",
	};
	int err;

	if (!w->o->smmu_frame)
		return 0;
	fr = calloc(1, sizeof(*fr));
	if (!fr)
		return -ENOMEM;
	fr->w = w;
	w->frame = fr;
	err = viommu_smmuv3_create(&sc, &fr->smmu);
	for (unsigned int f = 0; !err && f < w->o->nfunc; f++)
		if (w->ep[f])
			err = viommu_smmuv3_add_endpoint(fr->smmu, w->ep[f]);
	if (!err) {
		rc.model = fr;
		err = regframe_create(&rc, &fr->rf);
	}
	if (!err)
		err = regframe_start(fr->rf);
	if (err)
		say(w, VIOMMU_LOG_ERROR, "--smmuv3-frame: %s", strerror(-err));
	else
		say(w, VIOMMU_LOG_INFO, "smmuv3: register frame at GPA %#"
		    PRIx64 " (features %#x), polled", w->o->smmu_frame_gpa,
		    w->o->smmu_features ? w->o->smmu_features :
					  VIOMMU_SMMUV3_F_DEFAULT);
	return err;
}

void frame_teardown(struct world *w)
{
	struct frame *fr = w->frame;

	if (!fr)
		return;
	regframe_destroy(fr->rf); /* stops the thread first */
	viommu_smmuv3_destroy(fr->smmu);
	free(fr);
	w->frame = NULL;
}

/* frame_counts() - the model's and the frame's counters; false if off. */
static bool frame_counts(const struct frame *fr,
			 struct viommu_smmuv3_stats *ss,
			 struct regframe_stats *rs)
{
	if (!fr || !fr->smmu || !fr->rf)
		return false;
	memset(ss, 0, sizeof(*ss));
	viommu_smmuv3_stats(fr->smmu, ss);
	regframe_stats(fr->rf, rs);
	return true;
}

void frame_summary(struct world *w, FILE *f)
{
	struct frame *fr = w->frame;
	struct viommu_smmuv3_stats ss;
	struct regframe_stats rs;
	uint64_t cr0 = 0;

	if (!frame_counts(fr, &ss, &rs))
		return;
	viommu_smmuv3_mmio_read(fr->smmu, 0x24, 4, &cr0);
	fprintf(f, "  smmuv3: SMMUEN %u, commands %" PRIu64 " (errors %" PRIu64
		", syncs %" PRIu64 "), translations %" PRIu64 " (faults %"
		PRIu64 "), events %" PRIu64 " (lost %" PRIu64 "), msis %"
		PRIu64 "\n", (unsigned int)(cr0 & 1), ss.commands,
		ss.cmd_errors, ss.syncs, ss.translations, ss.faults,
		ss.events, ss.events_lost, ss.msis);
	fprintf(f, "  smmuv3 frame: rounds %" PRIu64 " (frame absent %" PRIu64
		"), writes fed %" PRIu64 " (refused %" PRIu64 "), publishes %"
		PRIu64 " (guest won %" PRIu64 "), polls %" PRIu64 "\n",
		rs.rounds, rs.absent, rs.writes, rs.write_errors,
		rs.publishes, rs.cas_lost, rs.polls);
	fprintf(f, "  smmuv3 event queue (read by the server):");
	for (unsigned int t = 0; t < 256; t++)
		if (READ_ONCE(fr->ev_type[t]))
			fprintf(f, " %s %" PRIu64, event_name(t) ?
				event_name(t) : "?", READ_ONCE(fr->ev_type[t]));
	fprintf(f, "%s\n", READ_ONCE(fr->ev_records) ? "" : " none");
}

void frame_json(struct world *w, FILE *f)
{
	struct frame *fr = w->frame;
	struct viommu_smmuv3_stats ss;
	struct regframe_stats rs;
	uint64_t idr0 = 0, cr0 = 0;
	bool first = true;

	if (!frame_counts(fr, &ss, &rs))
		return;
	viommu_smmuv3_mmio_read(fr->smmu, 0x00, 4, &idr0);
	viommu_smmuv3_mmio_read(fr->smmu, 0x24, 4, &cr0);
	fprintf(f, "  \"smmuv3\": {\"idr0\": %" PRIu64 ", \"smmuen\": %u, "
		"\"commands\": %" PRIu64 ", \"cmd_errors\": %" PRIu64
		", \"syncs\": %" PRIu64 ", \"translations\": %" PRIu64
		", \"faults\": %" PRIu64 ", \"events\": %" PRIu64
		", \"events_lost\": %" PRIu64 ", \"msis\": %" PRIu64
		", \"invalidations\": %" PRIu64 ",\n    \"frame\": {\"rounds\": %"
		PRIu64 ", \"absent\": %" PRIu64 ", \"writes\": %" PRIu64
		", \"write_errors\": %" PRIu64 ", \"publishes\": %" PRIu64
		", \"cas_lost\": %" PRIu64 ", \"polls\": %" PRIu64
		", \"poll_capped\": %" PRIu64 "},\n    \"event_types\": {",
		idr0, (unsigned int)(cr0 & 1), ss.commands, ss.cmd_errors,
		ss.syncs, ss.translations, ss.faults, ss.events,
		ss.events_lost, ss.msis, ss.invalidations, rs.rounds,
		rs.absent, rs.writes, rs.write_errors, rs.publishes,
		rs.cas_lost, rs.polls, rs.poll_capped);
	for (unsigned int t = 0; t < 256; t++) {
		uint64_t n = READ_ONCE(fr->ev_type[t]);

		if (!n)
			continue;
		if (event_name(t))
			fprintf(f, "%s\"%s\": %" PRIu64, first ? "" : ", ",
				event_name(t), n);
		else
			fprintf(f, "%s\"0x%02x\": %" PRIu64, first ? "" : ", ",
				t, n);
		first = false;
	}
	fprintf(f, "}, \"event_read_errors\": %" PRIu64 "},\n",
		READ_ONCE(fr->ev_read_errors));
}
