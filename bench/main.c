/*
 * main.c - viommu-bench: one benchmark program, one subcommand per kind of
 * measurement.  This file only dispatches; each subcommand lives in its
 * own file or files (core.c, vdev.c, io.c, handover.c, scaling.c, smmu.c,
 * vtd.c, qemu*.c, guest*.c, guest_io*.c, plot.c), parses its options
 * through opts.c and shares the helpers of common.c.
 *
 *   viommu-bench SUBCOMMAND [OPTIONS]     (viommu-bench SUBCOMMAND --help)
 *
 * Every subcommand prints a table, writes JSON with --json FILE ('-' for
 * stdout), and has a --smoke run (tiny, well under two seconds) that
 * `make check` uses to see that it works.  The program measures; it never
 * judges a figure by failing.
 */
#include "common.h"

#include <string.h>

/* The subcommands, in the order --help lists them. */
static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *what;
} cmds[] = {
	{ "core", cmd_core,
	  "translation core: map/unmap/translate ns/op, bytes per mapping" },
	{ "vdev", cmd_vdev,
	  "virtio-iommu device through the reference driver: MAP+UNMAP\n"
	  "             pairs/s, strict and batched, split and packed "
	  "rings;\n             device ns per request; kicks" },
	{ "io", cmd_io,
	  "in-process I/O model (RX, TX, bulk; 64 B..64 KiB) per IOMMU\n"
	  "             mode, as % of no IOMMU" },
	{ "handover", cmd_handover,
	  "virtio-iommu page-table handover vs MAP per buffer: same DMA\n"
	  "             workload, requests per I/O and I/Os per second" },
	{ "scaling", cmd_scaling,
	  "translate ns/op against mappings (1k..1M) and threads (1, 2)" },
	{ "smmu", bench_smmu_main,
	  "SMMUv3 model: translate ns/op warm/cold for stage 1, stage 2,\n"
	  "             nested; range TLBI against per-page TLBI" },
	{ "vtd", bench_vtd_main,
	  "VT-d model: per-packet map/DMA/unmap, deferred, strict,\n"
	  "             strict + caching mode, as % of no IOMMU" },
	{ "qemu", bench_qemu_main,
	  "QEMU 7.2's virtio-iommu against ours behind x-pci-proxy-dev,\n"
	  "             same MAP/UNMAP batches through qtest in one run; ratio" },
	{ "guest", bench_guest_main,
	  "real Linux guest: VFIO map+unmap ours vs QEMU; ring DMA\n"
	  "             through the IOMMU vs bypass (boots QEMU, minutes)" },
	{ "guest-io", bench_guest_io_main,
	  "real Linux guest: virtio-blk O_DIRECT random I/O, 3 stacks x\n"
	  "             4 IOMMU modes, % of no IOMMU (boots QEMU, minutes)" },
	{ "plot", cmd_plot,
	  "PNG plots (gnuplot) of the io and scaling JSON" },
};

/* usage() - the top-level --help text. */
static void usage(FILE *f)
{
	fprintf(f, "usage: viommu-bench SUBCOMMAND [OPTIONS]\n"
		"       viommu-bench SUBCOMMAND --help\n\nSubcommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].what);
	fprintf(f, "\nCommon options: --smoke (a tiny run that checks the "
		"program works),\n--json FILE|- (also write JSON), --runs N "
		"(median of N runs), --help.\n");
}

/* main() - find the subcommand and hand it the rest of the line. */
int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") ||
			  !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
		usage(stdout);
		return 0;
	}
	if (argc < 2)
		bad_usage("missing subcommand (--help lists them)");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		bench_cmd = cmds[i].name;
		return cmds[i].fn(argc - 1, argv + 1);
	}
	bad_usage("unknown subcommand '%s' (--help lists them)", argv[1]);
}
