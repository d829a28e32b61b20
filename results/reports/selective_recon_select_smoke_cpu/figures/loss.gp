set terminal svg size 820,460 dynamic noenhanced font 'sans,12' background '#ffffff'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key below
set output 'results/reports/selective_recon_select_smoke_cpu/figures/loss.svg'
set title 'Training loss'
set xlabel 'step'
set ylabel 'loss'
set logscale y
plot 'results/reports/selective_recon_select_smoke_cpu/figures/loss.dat' index 0 using 1:2 with lines lw 1.5 title 'method.hog_mode=paper, method.hog_select=topk, method.recon_select=hog seed=0', \
     'results/reports/selective_recon_select_smoke_cpu/figures/loss.dat' index 1 using 1:2 with lines lw 1.5 title 'method.hog_mode=paper, method.hog_select=topk, method.recon_select=hog seed=1', \
     'results/reports/selective_recon_select_smoke_cpu/figures/loss.dat' index 2 using 1:2 with lines lw 1.5 title 'method.hog_mode=paper, method.hog_select=topk, method.recon_select=hog seed=2', \
     'results/reports/selective_recon_select_smoke_cpu/figures/loss.dat' index 3 using 1:2 with lines lw 1.5 title 'method.hog_mode=paper, method.hog_select=topk, method.recon_select=random seed=0', \
     'results/reports/selective_recon_select_smoke_cpu/figures/loss.dat' index 4 using 1:2 with lines lw 1.5 title 'method.hog_mode=paper, method.hog_select=topk, method.recon_select=random seed=1', \
     'results/reports/selective_recon_select_smoke_cpu/figures/loss.dat' index 5 using 1:2 with lines lw 1.5 title 'method.hog_mode=paper, method.hog_select=topk, method.recon_select=random seed=2', \
     'results/reports/selective_recon_select_smoke_cpu/figures/loss.dat' index 6 using 1:2 with lines lw 1.5 title 'method.hog_mode=official, method.hog_select=multinomial, method.recon_select=hog seed=0', \
     'results/reports/selective_recon_select_smoke_cpu/figures/loss.dat' index 7 using 1:2 with lines lw 1.5 title 'method.hog_mode=official, method.hog_select=multinomial, method.recon_select=hog seed=1', \
     'results/reports/selective_recon_select_smoke_cpu/figures/loss.dat' index 8 using 1:2 with lines lw 1.5 title 'method.hog_mode=official, method.hog_select=multinomial, method.recon_select=hog seed=2'
