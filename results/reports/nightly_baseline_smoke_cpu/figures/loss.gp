set terminal svg size 820,460 dynamic noenhanced font 'sans,12' background '#ffffff'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key below
set output 'results/reports/nightly_baseline_smoke_cpu/figures/loss.svg'
set title 'Training loss'
set xlabel 'step'
set ylabel 'loss'
set logscale y
plot 'results/reports/nightly_baseline_smoke_cpu/figures/loss.dat' index 0 using 1:2 with lines lw 1.5 title 'method.mask_ratio=0.75, method.name=mae, method.psts=false, method.recon_ratio=0, model.decoder=mae seed=0', \
     'results/reports/nightly_baseline_smoke_cpu/figures/loss.dat' index 1 using 1:2 with lines lw 1.5 title 'method.mask_ratio=0.75, method.name=mae, method.psts=false, method.recon_ratio=0, model.decoder=mae seed=1', \
     'results/reports/nightly_baseline_smoke_cpu/figures/loss.dat' index 2 using 1:2 with lines lw 1.5 title 'method.mask_ratio=0.85, method.name=selectivemae, method.psts=true, method.recon_ratio=0.25, model.decoder=cross seed=0', \
     'results/reports/nightly_baseline_smoke_cpu/figures/loss.dat' index 3 using 1:2 with lines lw 1.5 title 'method.mask_ratio=0.85, method.name=selectivemae, method.psts=true, method.recon_ratio=0.25, model.decoder=cross seed=1'
