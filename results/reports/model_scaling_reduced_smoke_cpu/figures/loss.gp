set terminal svg size 820,460 dynamic noenhanced font 'sans,12' background '#ffffff'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key below
set output 'results/reports/model_scaling_reduced_smoke_cpu/figures/loss.svg'
set title 'Training loss'
set xlabel 'step'
set ylabel 'loss'
set logscale y
plot 'results/reports/model_scaling_reduced_smoke_cpu/figures/loss.dat' index 0 using 1:2 with lines lw 1.5 title 'model.size=vit_micro seed=0', \
     'results/reports/model_scaling_reduced_smoke_cpu/figures/loss.dat' index 1 using 1:2 with lines lw 1.5 title 'model.size=vit_micro seed=1', \
     'results/reports/model_scaling_reduced_smoke_cpu/figures/loss.dat' index 2 using 1:2 with lines lw 1.5 title 'model.size=vit_micro seed=2', \
     'results/reports/model_scaling_reduced_smoke_cpu/figures/loss.dat' index 3 using 1:2 with lines lw 1.5 title 'model.size=vit_tiny seed=0', \
     'results/reports/model_scaling_reduced_smoke_cpu/figures/loss.dat' index 4 using 1:2 with lines lw 1.5 title 'model.size=vit_tiny seed=1', \
     'results/reports/model_scaling_reduced_smoke_cpu/figures/loss.dat' index 5 using 1:2 with lines lw 1.5 title 'model.size=vit_tiny seed=2', \
     'results/reports/model_scaling_reduced_smoke_cpu/figures/loss.dat' index 6 using 1:2 with lines lw 1.5 title 'model.size=vit_s seed=0', \
     'results/reports/model_scaling_reduced_smoke_cpu/figures/loss.dat' index 7 using 1:2 with lines lw 1.5 title 'model.size=vit_s seed=1', \
     'results/reports/model_scaling_reduced_smoke_cpu/figures/loss.dat' index 8 using 1:2 with lines lw 1.5 title 'model.size=vit_s seed=2', \
     'results/reports/model_scaling_reduced_smoke_cpu/figures/loss.dat' index 9 using 1:2 with lines lw 1.5 title 'model.size=vit_b seed=0', \
     'results/reports/model_scaling_reduced_smoke_cpu/figures/loss.dat' index 10 using 1:2 with lines lw 1.5 title 'model.size=vit_b seed=1', \
     'results/reports/model_scaling_reduced_smoke_cpu/figures/loss.dat' index 11 using 1:2 with lines lw 1.5 title 'model.size=vit_b seed=2'
