/*
 * server_frame.c - viommu-server's register-frame IOMMUs: --smmuv3-frame
 * GPA serves our SMMUv3 model to a real guest through a register frame in
 * its shared RAM (<viommu/regframe.h>, docs/SMMUV3-GUEST.md), instead of
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
 * --vtd-frame GPA does the same for our VT-d model on an x86 guest
 * (docs/VTD.md, "A real x86 guest"): the 4 KiB frame at GPA is a range the
 * guest kernel keeps out of its RAM (memmap=4K$GPA) and a DMAR table names
 * as a DRHD with INCLUDE_PCI_ALL (--dmar FILE writes it, for QEMU's
 * -acpitable); each endpoint is registered with the model (source-id = its
 * BDF).  The fault event interrupt cannot reach the guest either, so the
 * guest's fault handler never runs: each round the server reads the fault
 * recording registers the model filled (FSTS.PPF), counts them by reason,
 * logs them (the first 16 of each reason) and clears them as Linux's handler would (F
 * written back, FSTS.PFO cleared), so recording goes on; the counts are in
 * the summary and in --stats-json ("vtd").
 *
 * The models' register tables and feed orders are the library's
 * (viommu_regframe_create() with VIOMMU_REGFRAME_SMMUV3 or _VTD).
 */
#include "server.h"

#include <viommu/regframe.h>
#include <viommu/smmuv3.h>
#include <viommu/vtd.h>

/* Counters the polling thread bumps and the reports read. */
#define READ_ONCE(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ATOMIC_INC(x) __atomic_fetch_add(&(x), 1, __ATOMIC_RELAXED)

#define SMMU_PAGE1 0x10000u
#define EVT_SCAN_MAX 256 /* event records read per round */
#define EVT_SIZE 32
#define EVT_LOG_MAX 16 /* records logged per event type */

#define VTD_NFR 8           /* fault recording registers */
#define VTD_FSTS 0x34
#define VTD_FSTS_PFO 0x1u
#define VTD_FSTS_PPF 0x2u
#define VTD_FRCD 0x220
#define VTD_FRCD_F (1ull << 63)
#define VTD_HAW 48          /* the model's default MGAW */

/* Everything --smmuv3-frame or --vtd-frame runs. */
struct frame {
	struct world *w;
	struct viommu_smmuv3 *smmu;
	struct viommu_vtd *vtd;
	uint64_t fr_reason[256];  /* VT-d fault records read, by reason */
	uint64_t fr_records, fr_overflows;
	struct viommu_regframe *rf;
	uint64_t ev_base;       /* EVTQ_BASE the scan follows */
	uint32_t ev_seen;       /* next record to read, with the wrap bit */
	uint64_t ev_type[256];  /* records read, by event type */
	uint64_t ev_records, ev_read_errors;
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
	say(fr->w, VIOMMU_LOG_INFO,
	       "smmuv3: event %s (0x%02x) sid %#x%s addr %#" PRIx64 "%s",
	       name ? name : "?", t, (uint32_t)(w0 >> 32),
	       (w0 & (1u << 11)) ? " (ssid valid)" : "", w2,
	       fr->ev_type[t] == EVT_LOG_MAX ? " (more of this type not "
	       "logged)" : "");
}

/*
 * read_events() - read the event records the model added since the last
 * round (the guest has no interrupt and never reads them), bounded.
 */
static void read_events(void *opaque, bool changed)
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

/* VT-d fault reasons (VT-d 7.1.3 and appendix A), for log lines. */
static const char *reason_name(unsigned int r)
{
	switch (r) {
	case 0x01: return "root entry not present";
	case 0x02: return "context entry not present";
	case 0x03: return "context entry invalid";
	case 0x04: return "address beyond MGAW";
	case 0x05: return "write not permitted";
	case 0x06: return "read not permitted";
	case 0x07: return "paging entry unreadable";
	case 0x08: return "root table unreadable";
	case 0x09: return "context table unreadable";
	case 0x0a: return "root entry reserved bits";
	case 0x0b: return "context entry reserved bits";
	case 0x0c: return "paging entry reserved bits";
	case 0x0d: return "translation type blocked";
	default: return NULL;
	}
}

/*
 * read_faults() - the guest's fault handler, which cannot run (no
 * interrupt): read every recorded fault, count and log it, clear its F bit
 * and FSTS.PFO, so the model keeps recording.  At most VTD_NFR records a
 * round.
 */
static void read_faults(void *opaque, bool changed)
{
	struct frame *fr = opaque;
	struct viommu_vtd *v = fr->vtd;
	uint64_t fsts = 0, hi, lo;

	(void)changed;
	if (viommu_vtd_mmio_read(v, VTD_FSTS, 4, &fsts) ||
	    !(fsts & (VTD_FSTS_PPF | VTD_FSTS_PFO)))
		return;
	for (unsigned int i = 0; i < VTD_NFR; i++) {
		uint64_t off = VTD_FRCD + 16ull * i;
		unsigned int reason;

		if (viommu_vtd_mmio_read(v, off + 8, 8, &hi) ||
		    !(hi & VTD_FRCD_F) ||
		    viommu_vtd_mmio_read(v, off, 8, &lo))
			continue;
		reason = (unsigned int)(hi >> 32) & 0xff;
		if (READ_ONCE(fr->fr_reason[reason]) < EVT_LOG_MAX)
			say(fr->w, VIOMMU_LOG_INFO,
			       "vtd: fault reason %#x (%s) sid %#x %s addr %#"
			       PRIx64, reason, reason_name(reason) ?
			       reason_name(reason) : "?",
			       (unsigned int)(hi & 0xffff),
			       (hi >> 62) & 1 ? "read" : "write",
			       (uint64_t)(lo & ~0xfffull));
		ATOMIC_INC(fr->fr_reason[reason]);
		ATOMIC_INC(fr->fr_records);
		viommu_vtd_mmio_write(v, off + 8, 8, VTD_FRCD_F);
	}
	if (fsts & VTD_FSTS_PFO) {
		ATOMIC_INC(fr->fr_overflows);
		viommu_vtd_mmio_write(v, VTD_FSTS, 4, VTD_FSTS_PFO);
	}
}

/*
 * write_dmar() - the DMAR naming the VT-d frame (one DRHD, every PCI
 * device of segment 0) to o->dmar.  0 or -1 (message printed).
 */
static int write_dmar(const struct opts *o)
{
	struct viommu_dmar_unit u = { .reg_base = o->vtd_frame_gpa,
			       .include_all = true };
	struct viommu_dmar_config t = { .haw_bits = VTD_HAW, .units = &u,
				   .nr_units = 1 };
	uint8_t buf[256];
	size_t len = 0;
	FILE *f;
	int err = viommu_dmar_build(&t, buf, sizeof(buf), &len);

	if (err) {
		fprintf(stderr, PROG ": DMAR: %s\n", strerror(-err));
		return -1;
	}
	f = fopen(o->dmar, "wb");
	if (!f || fwrite(buf, 1, len, f) != len) {
		fprintf(stderr, PROG ": %s: %s\n", o->dmar, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f) ? -1 : 0;
}

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
"                       stage 2 only, 0x7d for stage 1 only\n"
"  --vtd-frame GPA      serve our VT-d model through a 4 KiB register frame\n"
"                       at GPA in the guest's shared RAM (kept out of the\n"
"                       guest's RAM with memmap=4K$GPA, named by a DMAR),\n"
"                       polled by a thread; every endpoint function is\n"
"                       behind it (source-id = BDF); the fault records are\n"
"                       read and cleared by the server (docs/VTD.md);\n"
"                       needs --door vfio-user, takes no link 0\n"
"  --vtd-features M     VIOMMU_VTD_F_* bits (default 0x21: queued\n"
"                       invalidation, pass-through); 0x23 adds caching mode\n"
"  --dmar FILE          write the DMAR table naming the VT-d frame to FILE\n"
"                       (for QEMU's -acpitable) before serving\n"
"  --frame-nap-us N     the frame's poller naps a fixed N us (1..2000)\n"
"                       after an idle round (default: 20 us, doubled while\n"
"                       the guest stays quiet, up to 2 ms): bounds how long\n"
"                       a guest register write (an invalidation queue tail)\n"
"                       waits, for more of the server's CPU\n");
}

int frame_opt(struct opts *o, const char *name, const char *arg)
{
	char *end;
	unsigned long long v;

	if (!strcmp(name, "dmar")) {
		if (!*arg)
			return -1;
		o->dmar = arg;
		return 0;
	}
	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end)
		return -1;
	if (!strcmp(name, "frame-nap-us")) {
		if (!v || v > VIOMMU_REGFRAME_MAX_IDLE_US)
			return -1;
		o->frame_nap_us = (unsigned int)v;
		return 0;
	}
	if (!strcmp(name, "vtd-frame")) {
		if (v % 0x1000 || v > UINT64_MAX - VIOMMU_VTD_MMIO_SIZE)
			return -1; /* 4 KiB aligned, as the DMAR needs */
		o->vtd_frame = true;
		o->vtd_frame_gpa = v;
		return 0;
	}
	if (!strcmp(name, "vtd-features")) {
		if (v & ~(uint64_t)VIOMMU_VTD_F_ALL ||
		    !(v & VIOMMU_VTD_F_QI))
			return -1; /* Linux on a frame needs queued inval. */
		o->vtd_features = (uint32_t)v;
		return 0;
	}
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
	const char *what = o->vtd_frame ? "--vtd-frame" : "--smmuv3-frame";
	const char *bad = NULL;

	if (o->frame_nap_us && !FRAME_IOMMU(o)) {
		fprintf(stderr, PROG ": --frame-nap-us needs --vtd-frame or "
			"--smmuv3-frame\n");
		return -1;
	}
	if (o->smmu_frame && o->vtd_frame)
		bad = "and the other frame do not mix";
	else if (o->dmar && !o->vtd_frame)
		bad = "is missing: --dmar names the VT-d frame";
	else if (!o->vfio_user)
		bad = "needs --door vfio-user (guest RAM must be shared)";
	else if (o->no_iommu)
		bad = "and --no-iommu do not mix";
	else if (o->links[0].set)
		bad = "takes no link 0 (the IOMMU is the frame)";
	else if (o->viot || o->viot_only)
		bad = o->vtd_frame ? "has no VIOT (the DMAR names the unit)" :
				     "has no VIOT (the device tree names the SMMU)";
	else if (o->poll_rq_us)
		bad = "has no request queue to poll";
	for (unsigned int i = 1; !bad && i < MAX_DEVS; i++)
		if (!o->links[i].set && i <= o->nfunc)
			bad = "needs --link I for every function 1..N+M";
		else if (o->links[i].set && i > o->nfunc)
			bad = "has a --link beyond the endpoint functions";
	if (bad) {
		fprintf(stderr, PROG ": %s %s\n", what, bad);
		return -1;
	}
	if (o->dmar && write_dmar(o))
		return -1;
	return 0;
}

/* ---- running -------------------------------------------------------- */

/* vtd_start() - the VT-d model, its endpoints and the frame's thread. */
static int vtd_start(struct world *w, struct frame *fr)
{
	struct viommu_vtd_config vc = {
		.size = sizeof(vc), .ctx = w->ctx, .mem = w->mem, .log = w->log,
		.features = w->o->vtd_features, .nfr = VTD_NFR,
	};
	struct viommu_regframe_config rc = {
		.size = sizeof(rc), .kind = VIOMMU_REGFRAME_VTD, .mem = w->mem,
		.gpa = w->o->vtd_frame_gpa, .log = w->log, .name = "vtd",
		.after_round = read_faults, .opaque = fr, .trace = trace_sink(w),
		.idle_us = w->o->frame_nap_us,
		.max_idle_us = w->o->frame_nap_us,
	};
	int err = viommu_vtd_create(&vc, &fr->vtd);

	if (!err && w->o->trace)
		err = viommu_vtd_set_trace_sink(fr->vtd, trace_sink(w));

	for (unsigned int f = 0; !err && f < w->o->nfunc; f++)
		if (w->ep[f])
			err = viommu_vtd_add_endpoint(fr->vtd, w->ep[f]);
	if (!err) {
		rc.model = fr->vtd;
		err = viommu_regframe_create(&rc, &fr->rf);
	}
	if (!err)
		err = viommu_regframe_start(fr->rf);
	if (err)
		say(w, VIOMMU_LOG_ERROR, "--vtd-frame: %s", strerror(-err));
	else
		say(w, VIOMMU_LOG_INFO, "vtd: register frame at GPA %#" PRIx64
		    " (features %#x), polled", w->o->vtd_frame_gpa,
		    w->o->vtd_features ? w->o->vtd_features :
					 VIOMMU_VTD_F_DEFAULT);
	return err;
}

int frame_start(struct world *w)
{
	struct frame *fr;
	struct viommu_smmuv3_config sc = {
		.size = sizeof(sc), .ctx = w->ctx, .mem = w->mem, .log = w->log,
		.features = w->o->smmu_features,
	};
	struct viommu_regframe_config rc = {
		.size = sizeof(rc), .kind = VIOMMU_REGFRAME_SMMUV3,
		.mem = w->mem,
		.gpa = w->o->smmu_frame_gpa, .log = w->log, .name = "smmuv3",
		.after_round = read_events, .trace = trace_sink(w),
		.idle_us = w->o->frame_nap_us,
		.max_idle_us = w->o->frame_nap_us,
	};
	int err;

	if (!FRAME_IOMMU(w->o))
		return 0;
	fr = calloc(1, sizeof(*fr));
	if (!fr)
		return -ENOMEM;
	fr->w = w;
	w->frame = fr;
	if (w->o->vtd_frame)
		return vtd_start(w, fr);
	err = viommu_smmuv3_create(&sc, &fr->smmu);
	if (!err && w->o->trace)
		err = viommu_smmuv3_set_trace_sink(fr->smmu, trace_sink(w));
	for (unsigned int f = 0; !err && f < w->o->nfunc; f++)
		if (w->ep[f])
			err = viommu_smmuv3_add_endpoint(fr->smmu, w->ep[f]);
	if (!err) {
		rc.model = fr->smmu;
		rc.opaque = fr;
		err = viommu_regframe_create(&rc, &fr->rf);
	}
	if (!err)
		err = viommu_regframe_start(fr->rf);
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
	viommu_regframe_destroy(fr->rf); /* stops the thread first */
	if (fr->vtd) {
		/* the endpoints outlive the model: take them out first */
		for (unsigned int f = 0; f < w->o->nfunc; f++)
			if (w->ep[f])
				viommu_vtd_remove_endpoint(fr->vtd, w->ep[f]);
		viommu_vtd_destroy(fr->vtd);
	}
	viommu_smmuv3_destroy(fr->smmu);
	free(fr);
	w->frame = NULL;
}

/* frame_counts() - the model's and the frame's counters; false if off. */
static bool frame_counts(const struct frame *fr,
			 struct viommu_smmuv3_stats *ss,
			 struct viommu_regframe_stats *rs)
{
	if (!fr || !fr->smmu || !fr->rf)
		return false;
	memset(ss, 0, sizeof(*ss));
	viommu_smmuv3_stats(fr->smmu, ss, sizeof(*ss));
	viommu_regframe_stats(fr->rf, rs, sizeof(*rs));
	return true;
}

/* vtd_summary() - the VT-d lines of the exit summary. */
static void vtd_summary(struct frame *fr, FILE *f)
{
	struct viommu_vtd_stats vs;
	struct viommu_regframe_stats rs;
	uint64_t gsts = 0;

	memset(&vs, 0, sizeof(vs));
	viommu_vtd_stats(fr->vtd, &vs, sizeof(vs));
	viommu_regframe_stats(fr->rf, &rs, sizeof(rs));
	viommu_vtd_mmio_read(fr->vtd, 0x1c, 4, &gsts);
	fprintf(f, "  vtd: GSTS %#x, descriptors %" PRIu64 " (queue errors %"
		PRIu64 ", waits %" PRIu64 "), context invalidations %" PRIu64
		", IOTLB invalidations %" PRIu64 ", translations %" PRIu64
		" (faults %" PRIu64 ", recorded %" PRIu64 ", lost %" PRIu64
		")\n", (unsigned int)gsts, vs.descriptors, vs.queue_errors,
		vs.waits, vs.ctx_invals, vs.iotlb_invals, vs.translations,
		vs.faults, vs.faults_recorded, vs.faults_lost);
	fprintf(f, "  vtd frame: rounds %" PRIu64 " (frame absent %" PRIu64
		"), writes fed %" PRIu64 " (refused %" PRIu64 "), publishes %"
		PRIu64 " (guest won %" PRIu64 "), polls %" PRIu64 "\n",
		rs.rounds, rs.absent, rs.writes, rs.write_errors,
		rs.publishes, rs.cas_lost, rs.polls);
	fprintf(f, "  vtd fault records (read by the server):");
	for (unsigned int r = 0; r < 256; r++)
		if (READ_ONCE(fr->fr_reason[r]))
			fprintf(f, " %#x %" PRIu64, r,
				READ_ONCE(fr->fr_reason[r]));
	fprintf(f, "%s\n", READ_ONCE(fr->fr_records) ? "" : " none");
}

/* vtd_json() - "vtd" in --stats-json. */
static void vtd_json(struct frame *fr, FILE *f)
{
	struct viommu_vtd_stats vs;
	struct viommu_regframe_stats rs;
	uint64_t gsts = 0, cap = 0, ecap = 0;
	bool first = true;

	memset(&vs, 0, sizeof(vs));
	viommu_vtd_stats(fr->vtd, &vs, sizeof(vs));
	viommu_regframe_stats(fr->rf, &rs, sizeof(rs));
	viommu_vtd_mmio_read(fr->vtd, 0x1c, 4, &gsts);
	viommu_vtd_mmio_read(fr->vtd, 0x08, 8, &cap);
	viommu_vtd_mmio_read(fr->vtd, 0x10, 8, &ecap);
	fprintf(f, "  \"vtd\": {\"cap\": %" PRIu64 ", \"ecap\": %" PRIu64
		", \"gsts\": %" PRIu64 ", \"translations\": %" PRIu64
		", \"faults\": %" PRIu64 ", \"faults_recorded\": %" PRIu64
		", \"faults_lost\": %" PRIu64 ", \"descriptors\": %" PRIu64
		", \"queue_errors\": %" PRIu64 ", \"waits\": %" PRIu64
		", \"ctx_invals\": %" PRIu64 ", \"iotlb_invals\": %" PRIu64
		", \"pasid_invals\": %" PRIu64 ", \"irqs\": %" PRIu64
		",\n    \"frame\": {\"rounds\": %" PRIu64 ", \"absent\": %"
		PRIu64 ", \"writes\": %" PRIu64 ", \"write_errors\": %" PRIu64
		", \"publishes\": %" PRIu64 ", \"cas_lost\": %" PRIu64
		", \"polls\": %" PRIu64 ", \"poll_capped\": %" PRIu64
		"},\n    \"fault_reasons\": {", cap, ecap, gsts,
		vs.translations, vs.faults, vs.faults_recorded, vs.faults_lost,
		vs.descriptors, vs.queue_errors, vs.waits, vs.ctx_invals,
		vs.iotlb_invals, vs.pasid_invals, vs.irqs, rs.rounds,
		rs.absent, rs.writes, rs.write_errors, rs.publishes,
		rs.cas_lost, rs.polls, rs.poll_capped);
	for (unsigned int r = 0; r < 256; r++) {
		uint64_t n = READ_ONCE(fr->fr_reason[r]);

		if (!n)
			continue;
		fprintf(f, "%s\"0x%02x\": %" PRIu64, first ? "" : ", ", r, n);
		first = false;
	}
	fprintf(f, "}, \"fault_records\": %" PRIu64 ", \"fault_overflows\": %"
		PRIu64 "},\n", READ_ONCE(fr->fr_records),
		READ_ONCE(fr->fr_overflows));
}

void frame_summary(struct world *w, FILE *f)
{
	struct frame *fr = w->frame;
	struct viommu_smmuv3_stats ss;
	struct viommu_regframe_stats rs;
	uint64_t cr0 = 0;

	if (fr && fr->vtd && fr->rf) {
		vtd_summary(fr, f);
		return;
	}
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
	struct viommu_regframe_stats rs;
	uint64_t idr0 = 0, cr0 = 0;
	bool first = true;

	if (fr && fr->vtd && fr->rf) {
		vtd_json(fr, f);
		return;
	}
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
