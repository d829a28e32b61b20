set terminal svg size 820,460 dynamic noenhanced font 'sans,12' background '#ffffff'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key below
set output 'results/reports/quickstart_smoke_cpu/figures/loss.svg'
set title 'Training loss'
set xlabel 'step'
set ylabel 'loss'
set logscale y
plot 'results/reports/quickstart_smoke_cpu/figures/loss.dat' index 0 using 1:2 with lines lw 1.5 title 'eval.random_init=false seed=0', \
     'results/reports/quickstart_smoke_cpu/figures/loss.dat' index 1 using 1:2 with lines lw 1.5 title 'eval.random_init=false seed=1', \
     'results/reports/quickstart_smoke_cpu/figures/loss.dat' index 2 using 1:2 with lines lw 1.5 title 'eval.random_init=false seed=2', \
     'results/reports/quickstart_smoke_cpu/figures/loss.dat' index 3 using 1:2 with lines lw 1.5 title 'eval.random_init=false seed=3'
