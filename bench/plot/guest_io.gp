# guest_io.gp - `viommu-bench guest-io` as a plot: each IOMMU mode's IOPS
# (--net: MB/s, packets/s for UDP)
# as % of the same stack's no-IOMMU IOPS (median of per-round ratios), per
# job, one panel per stack, with the goals (95 % lazy, 60 % strict) as
# dashed lines.  Run by `viommu-bench plot --guest-io FILE`, which sets:
#   datadir   directory of gio_<stack>.dat (header row: "job" and the mode
#             names; then one row per job, % of no IOMMU, NaN: none)
#   outfile   the PNG to write
#   stacks    e.g. "ours mixed qemu";  modes  e.g. "pt lazy strict"
#   ymax      the top of every panel's y axis (the same for all)
#   subtitle  load average, smoke label, rounds and job length
#   what      what is measured: "virtio-blk IOPS" or, for --net,
#             "virtio-net throughput (UDP: packets/s)"
if (!exists("what")) what = "virtio-blk IOPS"
set terminal pngcairo size 1600,560 font "sans,10"
set output outfile
ns = words(stacks)
nm = words(modes)
set multiplot layout 1, ns title \
	"viommu-bench guest-io: ".what." as % of the same stack's no-IOMMU figure\n{/*0.8 ".subtitle."}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics lc rgb "#dddddd"
set yrange [0:ymax]
set xtics rotate by -35 font ",8"
set key top center horizontal font ",9"
set ylabel "% of no IOMMU"
# One colour per mode, fixed so that panels and runs compare.
mcolor(m) = m eq "pt" ? "#1f77b4" : m eq "lazy" ? "#2ca02c" : \
	m eq "strict" ? "#d62728" : "#7f7f7f"
do for [s in stacks] {
	set title s
	plot for [i = 2:nm + 1] sprintf("%s/gio_%s.dat", datadir, s) \
		using i:xtic(1) lc rgb mcolor(word(modes, i - 1)) \
		title columnheader(i), \
		95 with lines dt 2 lc rgb "#2ca02c" title "95 %", \
		60 with lines dt 2 lc rgb "#d62728" title "60 %"
}
unset multiplot
