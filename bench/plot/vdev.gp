# vdev.gp - `viommu-bench vdev` as a plot: MAP+UNMAP pairs per second
# through the reference driver, per submission (strict, batched/N) and ring
# kind; wall clock on the left, per thread-CPU second on the right.  Run by
# `viommu-bench plot --vdev FILE`, which sets:
#   datadir   directory of vdev_wall.dat and vdev_cpu.dat (header row:
#             "submission" and the ring names; then one row per
#             submission, millions of pairs per second)
#   outfile   the PNG to write
#   nrings    the number of ring columns
#   subtitle  load average and modelled-figure labels
set terminal pngcairo size 1300,520 font "sans,10"
set output outfile
set multiplot layout 1, 2 title \
	"viommu-bench vdev: MAP+UNMAP pairs per second through the reference driver\n{/*0.8 ".subtitle."}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics lc rgb "#dddddd"
set yrange [0:*]
set key top left font ",9"
set title "wall clock"
set ylabel "million pairs per second"
plot for [i=2:nrings + 1] datadir."/vdev_wall.dat" using i:xtic(1) \
	title columnheader(i)
set title "per thread-CPU second"
set ylabel "million pairs per CPU-second"
plot for [i=2:nrings + 1] datadir."/vdev_cpu.dat" using i:xtic(1) \
	title columnheader(i)
unset multiplot
