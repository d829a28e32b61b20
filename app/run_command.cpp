// `ablate run FILE`: plans an experiment, packs the datasets its runs read, and executes the runs
// that are not finished yet with the local runner (harness/runner.h), or submits them as Slurm jobs
// (--backend slurm, harness/slurm.h). Everything is recorded in --db.
#include <iostream>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "app/data_source.h"
#include "app/runner_flags.h"
#include "harness/slurm.h"

namespace ablate {
namespace {

struct RunOptions {
  std::string file, scale;
  std::vector<std::string> overrides;
  RunnerFlags runner;
  std::string rerun;             // "" | failed | all (RunnerOptions::rerun)
  std::string backend = "local";  // local | slurm
  SlurmOptions slurm;
};

int run_main(const RunOptions& opt) {
  RunnerOptions ro = runner_options(opt.runner);
  ro.rerun = opt.rerun;
  const Experiment exp = load_checked_experiment(opt.file, opt.scale, opt.overrides);
  pack_datasets(exp.runs);
  if (opt.backend == "slurm") {
    slurm_submit(exp, ro, opt.slurm, SlurmTools::from_path(), std::cerr);  // returns the number submitted
    return 0;
  }
  return run_experiment(exp, ro);
}

}  // namespace

void add_run_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "plan, execute and record an experiment's runs");
  cmd->add_option("file", opt->file, "experiment YAML")->required();
  cmd->add_option("--scale", opt->scale, "smoke | small | paper");
  cmd->add_option("--db", opt->runner.db, "results database");
  cmd->add_option("--gpus", opt->runner.gpus, "GPUs to use, e.g. 0,1 or 0-7 (packed largest run first)");
  cmd->add_option("--gpu-mem-gib", opt->runner.gpu_mem_gib,
                  "memory of each GPU in GiB for the fit check (default: nvidia-smi)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--jobs", opt->runner.jobs, "concurrent CPU runs when no GPUs are given");
  cmd->add_option("--dist-timeout", opt->runner.dist_timeout_s,
                  "seconds a data-parallel rank waits for the others in a collective before the run fails");
  cmd->add_option("--rerun", opt->rerun, "also re-run finished runs: failed | all")
      ->check(CLI::IsMember({"failed", "all"}));
  cmd->add_option("overrides", opt->overrides, "key=value overrides (dotted paths)");
  cmd->add_option("--backend", opt->backend, "local | slurm")->check(CLI::IsMember({"local", "slurm"}));
  SlurmOptions& so = opt->slurm;
  cmd->add_option("--partition", so.partition, "Slurm partition");
  cmd->add_option("--time", so.time, "Slurm time limit per task, e.g. 04:00:00");
  cmd->add_option("--account", so.account, "Slurm account");
  cmd->add_option("--throttle", so.throttle, "Slurm array throttle (%N): tasks running at once");
  cmd->add_option("--gpus-per-task", so.gpus_per_task, "GPUs per Slurm task (rank)");
  cmd->add_option("--cpus-per-task", so.cpus_per_task, "CPUs per Slurm task");
  cmd->add_option("--extra-sbatch", so.extra_sbatch, "extra #SBATCH line (repeatable)");
  commands.push_back({cmd, [opt] { return run_main(*opt); }});
}

}  // namespace ablate
