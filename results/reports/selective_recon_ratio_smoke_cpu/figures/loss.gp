set terminal svg size 820,460 dynamic noenhanced font 'sans,12' background '#ffffff'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key below
set output 'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.svg'
set title 'Training loss'
set xlabel 'step'
set ylabel 'loss'
set logscale y
plot 'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 0 using 1:2 with lines lw 1.5 title 'method.lr_rule=m_over_r, method.mask_ratio=0.75, method.name=selectivemae, method.psts=true, method.recon_ratio=0.25, model.decoder=cross seed=0', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 1 using 1:2 with lines lw 1.5 title 'method.lr_rule=m_over_r, method.mask_ratio=0.75, method.name=selectivemae, method.psts=true, method.recon_ratio=0.25, model.decoder=cross seed=1', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 2 using 1:2 with lines lw 1.5 title 'method.lr_rule=m_over_r, method.mask_ratio=0.75, method.name=selectivemae, method.psts=true, method.recon_ratio=0.25, model.decoder=cross seed=2', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 3 using 1:2 with lines lw 1.5 title 'method.lr_rule=m_over_r, method.mask_ratio=0.75, method.name=selectivemae, method.psts=true, method.recon_ratio=0.5, model.decoder=cross seed=0', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 4 using 1:2 with lines lw 1.5 title 'method.lr_rule=m_over_r, method.mask_ratio=0.75, method.name=selectivemae, method.psts=true, method.recon_ratio=0.5, model.decoder=cross seed=1', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 5 using 1:2 with lines lw 1.5 title 'method.lr_rule=m_over_r, method.mask_ratio=0.75, method.name=selectivemae, method.psts=true, method.recon_ratio=0.5, model.decoder=cross seed=2', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 6 using 1:2 with lines lw 1.5 title 'method.lr_rule=m_over_r, method.mask_ratio=0.85, method.name=selectivemae, method.psts=true, method.recon_ratio=0.25, model.decoder=cross seed=0', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 7 using 1:2 with lines lw 1.5 title 'method.lr_rule=m_over_r, method.mask_ratio=0.85, method.name=selectivemae, method.psts=true, method.recon_ratio=0.25, model.decoder=cross seed=1', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 8 using 1:2 with lines lw 1.5 title 'method.lr_rule=m_over_r, method.mask_ratio=0.85, method.name=selectivemae, method.psts=true, method.recon_ratio=0.25, model.decoder=cross seed=2', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 9 using 1:2 with lines lw 1.5 title 'method.lr_rule=m_over_r, method.mask_ratio=0.85, method.name=selectivemae, method.psts=true, method.recon_ratio=0.5, model.decoder=cross seed=0', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 10 using 1:2 with lines lw 1.5 title 'method.lr_rule=m_over_r, method.mask_ratio=0.85, method.name=selectivemae, method.psts=true, method.recon_ratio=0.5, model.decoder=cross seed=1', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 11 using 1:2 with lines lw 1.5 title 'method.lr_rule=m_over_r, method.mask_ratio=0.85, method.name=selectivemae, method.psts=true, method.recon_ratio=0.5, model.decoder=cross seed=2', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 12 using 1:2 with lines lw 1.5 title 'method.lr_rule=none, method.mask_ratio=0.75, method.name=mae, method.psts=false, method.recon_ratio=0, model.decoder=mae seed=0', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 13 using 1:2 with lines lw 1.5 title 'method.lr_rule=none, method.mask_ratio=0.75, method.name=mae, method.psts=false, method.recon_ratio=0, model.decoder=mae seed=1', \
     'results/reports/selective_recon_ratio_smoke_cpu/figures/loss.dat' index 14 using 1:2 with lines lw 1.5 title 'method.lr_rule=none, method.mask_ratio=0.75, method.name=mae, method.psts=false, method.recon_ratio=0, model.decoder=mae seed=2'
