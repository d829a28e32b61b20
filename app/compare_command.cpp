// `ablate compare --db NEW --against BASELINE [FILE]`: cell-by-cell comparison of two results
// databases (reports/compare.h); exits non-zero on a significant regression. With
// --rerun-borderline N the borderline cells of --db first get N more seeds from the local runner.
#include <iostream>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "app/runner_flags.h"
#include "reports/compare.h"

namespace ablate {
namespace {

struct CompareOptions {
  RunnerFlags runner;  // runner.db: the new results, where re-runs go
  std::string against, file, scale;
  int rerun_borderline = 0;
};

int compare_command(const CompareOptions& opt) {
  CompareRequest req;
  req.db = opt.runner.db;
  req.against = opt.against;
  if (!opt.file.empty()) {
    const Experiment exp = load_checked_experiment(opt.file, opt.scale, {});
    req.experiment = exp.name;
    req.source = opt.file;
    req.tracked = exp.compare;
  }
  req.rerun_borderline = opt.rerun_borderline;
  return compare_main(req, std::cout, local_rerunner(runner_options(opt.runner)));
}

}  // namespace

void add_compare_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<CompareOptions>();
  CLI::App* cmd = app.add_subcommand("compare", "compare two result databases; non-zero exit on regression");
  cmd->add_option("--db", opt->runner.db, "the new results")->required();
  cmd->add_option("--against", opt->against, "the baseline results")->required();
  cmd->add_option("file", opt->file, "experiment YAML (its tables name the tracked metrics)");
  cmd->add_option("--scale", opt->scale, "smoke | small | paper");
  cmd->add_option("--rerun-borderline", opt->rerun_borderline,
                  "run N more seeds of each borderline cell into --db, then judge (default 0)");
  cmd->add_option("--jobs", opt->runner.jobs, "concurrent CPU re-runs when no GPUs are given");
  cmd->add_option("--gpus", opt->runner.gpus, "GPUs for the re-runs, e.g. 0,1 or 0-7 (one run per GPU)");
  commands.push_back({cmd, [opt] { return compare_command(*opt); }});
}

}  // namespace ablate
