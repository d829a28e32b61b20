set terminal svg size 820,460 dynamic noenhanced font 'sans,12' background '#ffffff'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key below
set output 'results/reports/psts_order_smoke_cpu/figures/loss.svg'
set title 'Training loss'
set xlabel 'step'
set ylabel 'loss'
set logscale y
plot 'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 0 using 1:2 with lines lw 1.5 title 'method.psts_order=near-far-random seed=0', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 1 using 1:2 with lines lw 1.5 title 'method.psts_order=near-far-random seed=1', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 2 using 1:2 with lines lw 1.5 title 'method.psts_order=near-far-random seed=2', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 3 using 1:2 with lines lw 1.5 title 'method.psts_order=near-random-far seed=0', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 4 using 1:2 with lines lw 1.5 title 'method.psts_order=near-random-far seed=1', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 5 using 1:2 with lines lw 1.5 title 'method.psts_order=near-random-far seed=2', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 6 using 1:2 with lines lw 1.5 title 'method.psts_order=far-near-random seed=0', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 7 using 1:2 with lines lw 1.5 title 'method.psts_order=far-near-random seed=1', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 8 using 1:2 with lines lw 1.5 title 'method.psts_order=far-near-random seed=2', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 9 using 1:2 with lines lw 1.5 title 'method.psts_order=far-random-near seed=0', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 10 using 1:2 with lines lw 1.5 title 'method.psts_order=far-random-near seed=1', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 11 using 1:2 with lines lw 1.5 title 'method.psts_order=far-random-near seed=2', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 12 using 1:2 with lines lw 1.5 title 'method.psts_order=random-near-far seed=0', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 13 using 1:2 with lines lw 1.5 title 'method.psts_order=random-near-far seed=1', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 14 using 1:2 with lines lw 1.5 title 'method.psts_order=random-near-far seed=2', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 15 using 1:2 with lines lw 1.5 title 'method.psts_order=random-far-near seed=0', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 16 using 1:2 with lines lw 1.5 title 'method.psts_order=random-far-near seed=1', \
     'results/reports/psts_order_smoke_cpu/figures/loss.dat' index 17 using 1:2 with lines lw 1.5 title 'method.psts_order=random-far-near seed=2'
