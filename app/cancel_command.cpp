// `ablate cancel FILE`: cancels the Slurm jobs of an experiment's runs (harness/slurm.h).
#include <iostream>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "harness/slurm.h"
#include "harness/store.h"

namespace ablate {
namespace {

struct CancelOptions {
  std::string file, scale, db = kDefaultDb;
};

int cancel_main(const CancelOptions& opt) {
  const Experiment exp = load_experiment(opt.file, opt.scale, {});
  Store store(opt.db, Store::Mode::existing);
  slurm_cancel(store, exp, SlurmTools::from_path(), std::cerr);  // returns the number cancelled
  return 0;
}

}  // namespace

void add_cancel_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<CancelOptions>();
  CLI::App* cmd = app.add_subcommand("cancel", "cancel an experiment's Slurm jobs");
  cmd->add_option("file", opt->file, "experiment YAML")->required();
  cmd->add_option("--scale", opt->scale, "smoke | small | paper");
  cmd->add_option("--db", opt->db, "results database");
  commands.push_back({cmd, [opt] { return cancel_main(*opt); }});
}

}  // namespace ablate
