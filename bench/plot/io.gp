# io.gp - the `viommu-bench io` mode table as a plot: throughput of each
# mode as % of the no-IOMMU rate measured in the same run, against the I/O
# size; one column per workload, wall clock on the top row and thread CPU
# time (I/Os per CPU-second) on the bottom row.  Run by
# `viommu-bench plot --io FILE`, which sets:
#   datadir    directory of <prefix>_<workload>_<mode>.dat
#              (columns: size, % of none wall, % of none cpu, I/Os per s)
#   prefix     data file prefix (one per io JSON file)
#   outfile    the PNG to write
#   workloads  e.g. "rx tx bulk";  modes  e.g. "none identity strict ..."
#   subtitle   load average and modelled-figure labels
#   tag        "" or " (MODELLED kick cost)", appended to the title
set terminal pngcairo size 1500,1000 font "sans,10"
set output outfile
nw = words(workloads)
set multiplot layout 2, nw title \
	"viommu-bench io: I/O rate as % of no IOMMU, same run".tag."\n{/*0.8 ".subtitle."}"
set logscale x 2
set logscale y 10
set xrange [48:90000]
set yrange [*:300]
set format x "%.0f"
set xtics ("64" 64, "256" 256, "1.5K" 1500, "4K" 4096, "16K" 16384, "64K" 65536)
set ytics ("0.1" 0.1, "0.2" 0.2, "0.5" 0.5, "1" 1, "2" 2, "5" 5, "10" 10, "20" 20, "50" 50, "100" 100, "200" 200)
set grid xtics ytics lc rgb "#dddddd"
set xlabel "bytes per I/O"
set key bottom right font ",9" spacing 0.9
# One colour per mode, fixed so that panels and runs compare.
mcolor(m) = m eq "none" ? "#000000" : m eq "identity" ? "#1f77b4" : \
	m eq "pool" ? "#2ca02c" : m eq "deferred" ? "#9467bd" : \
	m eq "batched" ? "#ff7f0e" : m eq "strict" ? "#d62728" : "#7f7f7f"
do for [col = 2:3] {
	set ylabel (col == 2 ? "% of no-IOMMU rate, wall clock" \
			     : "% of no-IOMMU rate, per thread-CPU second")
	do for [w in workloads] {
		set title w . (col == 2 ? " (wall clock)" : " (thread CPU time)")
		plot for [m in modes] \
			sprintf("%s/%s_%s_%s.dat", datadir, prefix, w, m) \
			using 1:col with linespoints lw 2 pt 7 ps 0.8 \
			lc rgb mcolor(m) title m
	}
}
unset multiplot
