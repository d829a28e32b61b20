set terminal svg size 820,460 dynamic noenhanced font 'sans,12' background '#ffffff'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key below
set output 'results/reports/cross_scale_negatives_smoke_cpu/figures/throughput.svg'
set title 'Throughput'
set ylabel 'images/s'
set yrange [0:*]
unset key
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.7 border -1
set boxwidth 0.8
set xtics rotate by -25 left
plot 'results/reports/cross_scale_negatives_smoke_cpu/figures/throughput.dat' using 2:3:xtic(1) lc rgb '#4477aa'
