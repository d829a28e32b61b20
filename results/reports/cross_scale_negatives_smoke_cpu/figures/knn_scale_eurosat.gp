set terminal svg size 820,460 dynamic noenhanced font 'sans,12' background '#ffffff'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key below
set output 'results/reports/cross_scale_negatives_smoke_cpu/figures/knn_scale_eurosat.svg'
set title 'KNN top-1 vs input scale, eurosat'
set xlabel 'input scale'
set ylabel 'top-1 (%)'
set logscale x 2
set xrange [*:*]
set offsets graph 0.05, graph 0.05, 0, 0
plot 'results/reports/cross_scale_negatives_smoke_cpu/figures/knn_scale_eurosat.dat' index 0 using 1:2:3 with yerrorlines lw 1.5 title 'method.dec_negatives=false, method.enc_negatives=true', \
     'results/reports/cross_scale_negatives_smoke_cpu/figures/knn_scale_eurosat.dat' index 1 using 1:2:3 with yerrorlines lw 1.5 title 'method.dec_negatives=true, method.enc_negatives=true', \
     'results/reports/cross_scale_negatives_smoke_cpu/figures/knn_scale_eurosat.dat' index 2 using 1:2:3 with yerrorlines lw 1.5 title 'method.dec_negatives=false, method.enc_negatives=false', \
     'results/reports/cross_scale_negatives_smoke_cpu/figures/knn_scale_eurosat.dat' index 3 using 1:2:3 with yerrorlines lw 1.5 title 'method.dec_negatives=true, method.enc_negatives=false'
