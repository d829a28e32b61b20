// `ablate worker --run-dir DIR | --eval DIR` (internal, hidden from --help): the process the
// runner launches for one pre-training run or one evaluation; app/worker.cpp does the work.
#include <CLI/CLI.hpp>

#include "app/commands.h"

namespace ablate {

void add_worker_command(CLI::App& app, Commands& commands) {
  struct Options {
    std::string run_dir, eval_dir;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("worker", "(internal) execute one run in this process");
  auto* run = cmd->add_option("--run-dir", o->run_dir, "run folder holding config.json");
  auto* eval = cmd->add_option("--eval", o->eval_dir, "evaluation folder holding eval.json");
  run->excludes(eval);
  cmd->require_option(1);
  cmd->group("");  // hidden from --help
  commands.push_back({cmd, [o] { return o->eval_dir.empty() ? worker_main(o->run_dir) : eval_worker_main(o->eval_dir); }});
}

}  // namespace ablate
