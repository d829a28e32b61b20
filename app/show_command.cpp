// `ablate show RUN_ID`: one run in full (lifecycle, config, axes, evaluations, metric summaries,
// environment, artifacts); a unique prefix of the id is enough.
#include <iostream>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "app/run_views.h"
#include "harness/store.h"

namespace ablate {
namespace {

struct ShowOptions {
  std::string run_id, db = kDefaultDb;
};

int show_main(const ShowOptions& opt) {
  Store store(opt.db, Store::Mode::existing);
  std::cout << show_run(store, opt.run_id);
  return 0;
}

}  // namespace

void add_show_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<ShowOptions>();
  CLI::App* cmd = app.add_subcommand("show", "one run: config, status, metrics, evaluations");
  cmd->add_option("run_id", opt->run_id, "run id (config hash)")->required();
  cmd->add_option("--db", opt->db, "results database");
  commands.push_back({cmd, [opt] { return show_main(*opt); }});
}

}  // namespace ablate
