// `ablate worker --run-dir DIR` (internal, hidden from --help): the process the runner launches
// for one run; app/worker.cpp does the work.
#include <CLI/CLI.hpp>

#include "app/commands.h"

namespace ablate {

void add_worker_command(CLI::App& app, Commands& commands) {
  auto run_dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("worker", "(internal) execute one run in this process");
  cmd->add_option("--run-dir", *run_dir, "run folder holding config.json")->required();
  cmd->group("");  // hidden from --help
  commands.push_back({cmd, [run_dir] { return worker_main(*run_dir); }});
}

}  // namespace ablate
