# scaling.gp - `viommu-bench scaling` as a plot: ns per viommu_translate()
# against the number of mappings, wall clock (left) and thread CPU time
# (right), one line per pattern and thread count.  Run by
# `viommu-bench plot --scaling FILE`, which sets:
#   datadir   directory of sc_<pattern>_<threads>.dat
#             (columns: mappings, wall ns/op, cpu ns/op, miss ratio)
#   outfile   the PNG to write
#   series    e.g. "hit_1 hit_2 seq_1 seq_2 rand_1 rand_2"
#   subtitle  load average label
set terminal pngcairo size 1300,560 font "sans,10"
set output outfile
set multiplot layout 1, 2 title \
	"viommu-bench scaling: ns per translate against mappings\n{/*0.8 ".subtitle."}"
set logscale x 2
set logscale y 10
set format x "%.0f"
set xtics ("1K" 1024, "4K" 4096, "16K" 16384, "64K" 65536, "256K" 262144, "1M" 1048576)
set xrange [700:1500000]
set grid xtics ytics lc rgb "#dddddd"
set xlabel "mappings in the domain"
set ylabel "ns per translate"
set key top left font ",9"
pcolor(s) = s[1:3] eq "hit" ? "#2ca02c" : s[1:3] eq "seq" ? "#1f77b4" : "#d62728"
pdash(s) = s[strlen(s):strlen(s)] eq "1" ? 1 : 2
label(s) = s[1:strstrt(s, "_") - 1] . ", " . s[strstrt(s, "_") + 1:] . \
	(s[strlen(s):strlen(s)] eq "1" ? " thread" : " threads")
set title "wall clock (CLOCK\\_MONOTONIC)"
plot for [s in series] sprintf("%s/sc_%s.dat", datadir, s) using 1:2 \
	with linespoints lw 2 pt 7 ps 0.8 lc rgb pcolor(s) dt pdash(s) \
	title label(s)
set title "thread CPU time (CLOCK\\_THREAD\\_CPUTIME\\_ID)"
plot for [s in series] sprintf("%s/sc_%s.dat", datadir, s) using 1:3 \
	with linespoints lw 2 pt 7 ps 0.8 lc rgb pcolor(s) dt pdash(s) \
	title label(s)
unset multiplot
