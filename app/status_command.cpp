// `ablate status FILE`: how many of an experiment's planned runs are in each status, as lines or
// JSON, after asking Slurm about the runs it holds (their states go to stderr).
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/commands.h"
#include "app/run_views.h"
#include "harness/slurm.h"
#include "harness/store.h"

namespace ablate {
namespace {

struct StatusOptions {
  std::string file, scale, db = kDefaultDb;
  std::vector<std::string> overrides;
  bool json = false;
};

int status_main(const StatusOptions& opt) {
  const Experiment exp = load_experiment(opt.file, opt.scale, opt.overrides);
  Store store(opt.db);
  const auto slurm = slurm_status(store, exp, SlurmTools::from_path(), std::cerr);
  const auto s = status_json(store, exp);
  if (!slurm.empty()) std::cerr << format_slurm_status(slurm);
  if (opt.json) {
    std::cout << s.dump(2) << "\n";
  } else {
    for (const auto& [k, v] : s.items()) fmt::print("{:<9} {}\n", k, v.dump());
  }
  return 0;
}

}  // namespace

void add_status_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<StatusOptions>();
  CLI::App* cmd = app.add_subcommand("status", "counts of runs per status");
  cmd->add_option("file", opt->file, "experiment YAML")->required();
  cmd->add_option("--scale", opt->scale, "smoke | small | paper");
  cmd->add_option("--db", opt->db, "results database");
  cmd->add_flag("--json", opt->json, "JSON output");
  cmd->add_option("overrides", opt->overrides, "the key=value overrides the runs were made with");
  commands.push_back({cmd, [opt] { return status_main(*opt); }});
}

}  // namespace ablate
