/*
 * server_report.c - viommu-server's exit report: the readable summary
 * (stdout, also on the "stats" control command) and --stats-json, built
 * from the public stats calls of the link server, the virtio-iommu, the
 * core, the DMA engines and the disks.
 */
#include "server.h"

double elapsed(const struct world *w)
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
		PRIu64 ", needs-reset %" PRIu64 ", log lines suppressed %"
		PRIu64 "\n", vs->kicks, vs->events_sent, vs->events_dropped,
		vs->needs_reset, vs->log_suppressed);
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
		struct viommu_dma_engine_stats es;

		if (viommu_dma_engine_stats(w->eng[i], &es, sizeof(es)))
			continue;
		rd += es.bytes_read;
		wr += es.bytes_written;
		fprintf(f, "    %-5s ep %#06x: dmas %" PRIu64 ", ring entries %"
			PRIu64 ", read %" PRIu64 " B, written %" PRIu64
			" B, faults %" PRIu64 ", errors %" PRIu64 ", irqs %"
			PRIu64 "\n", w->eng_name[i], endpoint_bdf(w->o, i),
			es.dmas, es.ring_entries, es.bytes_read,
			es.bytes_written, es.faults, es.errors, es.irqs);
	}
	fprintf(f, "  DMA bytes: %" PRIu64 " read, %" PRIu64 " written\n", rd,
		wr);
}

/* print_blks() - disk counters. */
static void print_blks(struct world *w, FILE *f)
{
	if (!w->nblk)
		return;
	fprintf(f, "  virtio-blk disks:\n");
	for (unsigned int i = 0; i < w->nblk; i++) {
		const struct blk_opt *b = &w->o->blks[i];
		struct viommu_virtio_blk_stats bs = { .size = sizeof(bs) };

		if (viommu_virtio_blk_stats(w->blk[i], &bs))
			continue;
		fprintf(f, "    %-5s %s%s%s: reads %" PRIu64 " (%" PRIu64
			" B), writes %" PRIu64 " (%" PRIu64 " B), flushes %"
			PRIu64 ", discards %" PRIu64 ", write-zeroes %" PRIu64
			", IOERR %" PRIu64 ", UNSUPP %" PRIu64 ", faults %"
			PRIu64 " (injected %" PRIu64 "), needs-reset %" PRIu64
			"\n", w->blk_name[i], b->file ? b->file : "memory",
			b->ro ? ", ro" : "", b->no_iommu ? ", noiommu" : "",
			bs.reads, bs.bytes_read, bs.writes, bs.bytes_written,
			bs.flushes, bs.discards, bs.write_zeroes, bs.ioerr,
			bs.unsupp, bs.faults, bs.injected_faults,
			bs.needs_reset);
	}
}

/* print_nets() - NIC counters. */
static void print_nets(struct world *w, FILE *f)
{
	if (!w->nnet)
		return;
	fprintf(f, "  virtio-net NICs (one switch):\n");
	for (unsigned int i = 0; i < w->nnet; i++) {
		struct viommu_virtio_net_stats ns = { .size = sizeof(ns) };

		if (viommu_virtio_net_stats(w->net[i], &ns))
			continue;
		fprintf(f, "    %-5s%s: TX %" PRIu64 " frames (%" PRIu64
			" B, dropped %" PRIu64 "), RX %" PRIu64 " frames (%"
			PRIu64 " B, dropped %" PRIu64 "), faults %" PRIu64
			", needs-reset %" PRIu64 "\n", w->net_name[i],
			w->o->nets[i].no_iommu ? " (noiommu)" : "",
			ns.tx_packets, ns.tx_bytes, ns.tx_dropped,
			ns.rx_packets, ns.rx_bytes, ns.rx_dropped, ns.faults,
			ns.needs_reset);
	}
}

/* print_summary() - the human-readable counters. */
void print_summary(struct world *w, FILE *f)
{
	struct viommu_virtio_iommu_stats vs = { .kicks = 0 };
	struct viommu_ctx_stats cs = { 0 };

	viommu_virtio_iommu_stats(w->vi, &vs, sizeof(vs));
	viommu_ctx_stats(w->ctx, &cs, sizeof(cs));
	fprintf(f, PROG " summary: %.3f s (CPU %.3f s), ended by %s\n",
		elapsed(w), cpu_seconds(), w->why ? w->why : "?");
	print_links(w, f);
	print_requests(&vs, f);
	print_poller(w, f);
	frame_summary(w, f);
	fprintf(f, "  core: IOTLB misses %" PRIu64 ", faults %" PRIu64
		", maps %" PRIu64 ", unmaps %" PRIu64 "; live: domains %"
		PRIu64 ", endpoints %" PRIu64 ", mappings %" PRIu64
		" (refused by --max-mappings: %" PRIu64 ")\n",
		cs.iotlb_misses, cs.faults, cs.maps, cs.unmaps, cs.domains,
		cs.endpoints, cs.mappings, cs.mappings_refused);
	print_engines(w, f);
	print_blks(w, f);
	print_nets(w, f);
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

	viommu_virtio_iommu_stats(w->vi, &vs, sizeof(vs));
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
		PRIu64 ", \"log_suppressed\": %" PRIu64 ",\n  \"poll_rq_us\": "
		"%u, \"polled_requests\": %" PRIu64 ", \"poll_periods\": %"
		PRIu64 ",\n", vs.kicks, vs.events_sent, vs.events_dropped,
		vs.needs_reset, vs.log_suppressed, w->o->poll_rq_us, w->polled,
		w->poll_periods);
}

/* json_engines() - the "engines" array. */
static void json_engines(struct world *w, FILE *f)
{
	unsigned int i;

	fprintf(f, "  \"engines\": [");
	for (i = 0; i < w->neng; i++) {
		struct viommu_dma_engine_stats es = { 0 };

		viommu_dma_engine_stats(w->eng[i], &es, sizeof(es));
		fprintf(f, "%s\n    {\"name\": \"%s\", \"endpoint\": %u, "
			"\"dmas\": %" PRIu64 ", \"ring_doorbells\": %" PRIu64
			", \"ring_entries\": %" PRIu64 ", \"bytes_read\": %"
			PRIu64 ", \"bytes_written\": %" PRIu64 ", \"faults\": %"
			PRIu64 ", \"errors\": %" PRIu64 ", \"irqs\": %" PRIu64
			"}", i ? "," : "", w->eng_name[i],
			endpoint_bdf(w->o, i), es.dmas, es.ring_doorbells,
			es.ring_entries, es.bytes_read, es.bytes_written,
			es.faults, es.errors, es.irqs);
	}
	fprintf(f, "\n  ],\n");
}

/* json_blks() - the "disks" array. */
static void json_blks(struct world *w, FILE *f)
{
	fprintf(f, "  \"disks\": [");
	for (unsigned int i = 0; i < w->nblk; i++) {
		const struct blk_opt *b = &w->o->blks[i];
		struct viommu_virtio_blk_stats bs = { .size = sizeof(bs) };

		viommu_virtio_blk_stats(w->blk[i], &bs);
		fprintf(f, "%s\n    {\"name\": \"%s\", \"endpoint\": %u, "
			"\"iommu\": %s, \"read_only\": %s, \"reads\": %"
			PRIu64 ", \"writes\": %" PRIu64 ", \"flushes\": %"
			PRIu64 ", \"discards\": %" PRIu64 ", \"write_zeroes\": %"
			PRIu64 ", \"get_id\": %" PRIu64 ", \"bytes_read\": %"
			PRIu64 ", \"bytes_written\": %" PRIu64 ", \"ioerr\": %"
			PRIu64 ", \"unsupp\": %" PRIu64 ", \"faults\": %" PRIu64
			", \"injected_faults\": %" PRIu64 ", \"needs_reset\": %"
			PRIu64 "}", i ? "," : "", w->blk_name[i],
			endpoint_bdf(w->o, w->o->endpoints + i),
			b->no_iommu ? "false" : "true", b->ro ? "true" : "false",
			bs.reads, bs.writes, bs.flushes, bs.discards,
			bs.write_zeroes, bs.get_id, bs.bytes_read,
			bs.bytes_written, bs.ioerr, bs.unsupp, bs.faults,
			bs.injected_faults, bs.needs_reset);
	}
	fprintf(f, "\n  ],\n  \"nics\": [");
	for (unsigned int i = 0; i < w->nnet; i++) {
		struct viommu_virtio_net_stats ns = { .size = sizeof(ns) };

		viommu_virtio_net_stats(w->net[i], &ns);
		fprintf(f, "%s\n    {\"name\": \"%s\", \"endpoint\": %u, "
			"\"iommu\": %s, \"tx_packets\": %" PRIu64
			", \"tx_bytes\": %" PRIu64 ", \"tx_dropped\": %" PRIu64
			", \"rx_packets\": %" PRIu64 ", \"rx_bytes\": %" PRIu64
			", \"rx_dropped\": %" PRIu64 ", \"faults\": %" PRIu64
			", \"needs_reset\": %" PRIu64 ", \"tx_faults\": %"
			PRIu64 ", \"rx_faults\": %" PRIu64
			", \"injected_faults\": %" PRIu64 ", \"tx_bad\": %"
			PRIu64 ", \"rx_too_big\": %" PRIu64
			", \"rx_gso_dropped\": %" PRIu64
			", \"csum_completed\": %" PRIu64
			", \"backend_rx_drops\": %" PRIu64
			", \"backend_tx_drops\": %" PRIu64
			", \"gso_segmented\": %" PRIu64 "}", i ? "," : "",
			w->net_name[i], endpoint_bdf(w->o, w->o->endpoints +
						     w->o->nblk + i),
			w->o->nets[i].no_iommu ? "false" : "true",
			ns.tx_packets, ns.tx_bytes, ns.tx_dropped,
			ns.rx_packets, ns.rx_bytes, ns.rx_dropped, ns.faults,
			ns.needs_reset, ns.tx_faults, ns.rx_faults,
			ns.injected_faults, ns.tx_bad, ns.rx_too_big,
			ns.rx_gso_dropped, ns.csum_completed,
			ns.backend_rx_drops, ns.backend_tx_drops,
			ns.gso_segmented);
	}
	fprintf(f, "\n  ],\n  \"forge\": {\"faults\": %" PRIu64 ", "
		"\"other_memory\": %" PRIu64 ", \"leaks\": %" PRIu64 "}\n",
		w->forge_faults, w->forge_other, w->forge_leaks);
}

/* write_json() - the counters as JSON to o->stats_json. */
int write_json(struct world *w)
{
	struct viommu_ctx_stats cs = { 0 };
	FILE *f = fopen(w->o->stats_json, "w");

	if (!f) {
		say(w, VIOMMU_LOG_ERROR, "%s: %s", w->o->stats_json,
		    strerror(errno));
		return -1;
	}
	viommu_ctx_stats(w->ctx, &cs, sizeof(cs));
	fprintf(f, "{\n  \"seconds\": %.3f, \"cpu_seconds\": %.3f, "
		"\"ended_by\": \"%s\", \"trace_lines\": %" PRIu64 ",\n",
		elapsed(w), cpu_seconds(), w->why ? w->why : "?",
		w->trace_lines);
	json_links(w, f);
	json_requests(w, f);
	frame_json(w, f);
	fprintf(f, "  \"core\": {\"iotlb_misses\": %" PRIu64 ", \"faults\": %"
		PRIu64 ", \"maps\": %" PRIu64 ", \"unmaps\": %" PRIu64
		", \"domains\": %" PRIu64 ", \"endpoints\": %" PRIu64
		", \"mappings\": %" PRIu64 ", \"mappings_refused\": %" PRIu64
		"},\n", cs.iotlb_misses, cs.faults, cs.maps, cs.unmaps,
		cs.domains, cs.endpoints, cs.mappings, cs.mappings_refused);
	json_engines(w, f);
	json_blks(w, f);
	fprintf(f, "}\n");
	if (fclose(f)) {
		say(w, VIOMMU_LOG_ERROR, "%s: %s", w->o->stats_json,
		    strerror(errno));
		return -1;
	}
	return 0;
}
