// The `ablate` subcommands. Each lives in its own file with its own options struct and one
// registration function, `add_<name>_command(CLI::App& app, Commands& commands)`, which declares the
// subcommand and its options on `app` and appends the action to run once the command line has been
// parsed. main.cpp only calls the registration functions (in the order `ablate --help` lists the
// subcommands), runs the action of the subcommand that was given and turns errors into exit codes.
//
// Adding a subcommand: write app/<name>_command.cpp with an options struct and
// add_<name>_command (keep the options in a std::shared_ptr the action captures), declare it
// below, and call it from main.cpp. Its action returns the process exit code and throws the typed
// errors of harness/check.h for everything the user must fix.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "harness/experiment.h"
#include "harness/runner.h"
#include "reports/compare.h"

namespace CLI {
class App;
}

namespace ablate {

// A registered subcommand: its CLI11 node and what to run when it was given. A nested subcommand
// (`bench loader`, `data pack`) is registered after its parent, and the last parsed one runs.
struct Command {
  CLI::App* cli = nullptr;
  std::function<int()> run;
};
using Commands = std::vector<Command>;

// The database every command reads and writes unless --db says otherwise.
inline constexpr const char* kDefaultDb = "results/ablate.sqlite";

// Registration, in `ablate --help` order.
void add_plan_command(CLI::App& app, Commands& commands);     // app/plan_command.cpp
void add_run_command(CLI::App& app, Commands& commands);      // app/run_command.cpp
void add_status_command(CLI::App& app, Commands& commands);   // app/status_command.cpp
void add_show_command(CLI::App& app, Commands& commands);     // app/show_command.cpp
void add_export_command(CLI::App& app, Commands& commands);   // app/db_export_command.cpp
void add_sync_command(CLI::App& app, Commands& commands);     // app/sync_command.cpp
void add_cancel_command(CLI::App& app, Commands& commands);   // app/cancel_command.cpp
void add_report_command(CLI::App& app, Commands& commands);   // app/report_command.cpp
void add_figure_command(CLI::App& app, Commands& commands);   // app/figure.cpp
void add_compare_command(CLI::App& app, Commands& commands);  // app/compare_command.cpp
void add_claims_command(CLI::App& app, Commands& commands);   // app/claims_command.cpp
void add_models_command(CLI::App& app, Commands& commands);   // app/models.cpp
void add_bench_command(CLI::App& app, Commands& commands);    // app/bench.cpp (bench, bench loader)
void add_worker_command(CLI::App& app, Commands& commands);   // app/worker_command.cpp
void add_data_command(CLI::App& app, Commands& commands);     // app/data_commands.cpp (pack, crop, dedup)

// Loads an experiment file for a command (harness/experiment.h) and checks its `tables`, `claims`
// and `compare` sections against the planned runs (reports/spec_check.h), so a typo there fails
// `plan` and `run` at its file:line:col before anything runs, not `report` afterwards.
Experiment load_checked_experiment(const std::string& file, const std::string& scale,
                                   const std::vector<std::string>& overrides);

// Executes one planned run in this process: reads run_dir/config.json, pre-trains (resuming from
// run_dir/ckpt when present) and reports everything through run_dir/journal.jsonl.
int worker_main(const std::filesystem::path& run_dir);
// Executes one evaluation task (harness/eval_task.h): reads eval_dir/eval.json, loads the weights
// it names (a run's final checkpoint) and reports its results through eval_dir/journal.jsonl.
int eval_worker_main(const std::filesystem::path& eval_dir);

// `ablate compare --rerun-borderline N`: runs the extra seeds of borderline cells (each repeating
// its cell's stored config, harness/reseed.h) into options.db with the local runner.
Rerunner local_rerunner(const RunnerOptions& options);

class PretrainMethod;

// A recorded run's method with the weights of its last checkpoint, in eval mode on the CPU
// (app/export_model.cpp). Throws ConfigError for an unknown run, DataError when it has no
// checkpoint yet.
struct TrainedRun {
  RunConfig config;
  std::shared_ptr<PretrainMethod> method;
  int64_t step = 0;  // optimizer steps the checkpoint holds
};
TrainedRun load_trained_run(const std::string& db, const std::string& run_id);
// `ablate export RUN --format timm|pth -o OUT` (app/export_model.cpp): the run's encoder as a timm
// folder (model.safetensors + config.json) or MAE's {'model': state_dict} .pth.
int export_model_main(const std::string& db, const std::string& run_id, const std::string& format,
                      const std::string& out);

}  // namespace ablate
