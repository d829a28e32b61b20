set terminal svg size 820,460 dynamic noenhanced font 'sans,12' background '#ffffff'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key below
set output 'results/reports/parallel_vs_serial_smoke_cpu/figures/loss.svg'
set title 'Training loss'
set xlabel 'step'
set ylabel 'loss'
set logscale y
plot 'results/reports/parallel_vs_serial_smoke_cpu/figures/loss.dat' index 0 using 1:2 with lines lw 1.5 title 'model.size=vit_s seed=0', \
     'results/reports/parallel_vs_serial_smoke_cpu/figures/loss.dat' index 1 using 1:2 with lines lw 1.5 title 'model.size=vit_s seed=1', \
     'results/reports/parallel_vs_serial_smoke_cpu/figures/loss.dat' index 2 using 1:2 with lines lw 1.5 title 'model.size=vit_s seed=2', \
     'results/reports/parallel_vs_serial_smoke_cpu/figures/loss.dat' index 3 using 1:2 with lines lw 1.5 title 'model.size=vit_s6x2 seed=0', \
     'results/reports/parallel_vs_serial_smoke_cpu/figures/loss.dat' index 4 using 1:2 with lines lw 1.5 title 'model.size=vit_s6x2 seed=1', \
     'results/reports/parallel_vs_serial_smoke_cpu/figures/loss.dat' index 5 using 1:2 with lines lw 1.5 title 'model.size=vit_s6x2 seed=2'
