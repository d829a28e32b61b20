// `ablate`: the command line. Every subcommand registers itself (app/commands.h); main() parses the
// arguments with CLI11, runs the subcommand that was given, and turns every user-facing error into
// one line on stderr and a non-zero exit code (2 config, 3 database, 4 data, 1 anything else);
// nothing already recorded is lost.
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/commands.h"
#include "app/version.h"
#include "harness/check.h"

namespace {

using namespace ablate;

Commands register_commands(CLI::App& app) {
  Commands commands;
  for (auto add : {add_plan_command, add_run_command, add_status_command, add_show_command, add_export_command,
                   add_sync_command, add_cancel_command, add_report_command, add_figure_command,
                   add_compare_command, add_claims_command, add_models_command, add_bench_command,
                   add_worker_command, add_data_command})
    add(app, commands);
  return commands;
}

// The action of the subcommand given on the command line (the innermost when nested), or null.
const Command* given_command(const Commands& commands) {
  for (auto it = commands.rbegin(); it != commands.rend(); ++it)
    if (it->cli->parsed()) return &*it;
  return nullptr;
}

int run_reporting_errors(const std::function<int()>& run) {
  try {
    return run();
  } catch (const ConfigError& e) {
    fmt::print(stderr, "ablate: config error: {}\n", e.what());
    return 2;
  } catch (const StoreError& e) {
    fmt::print(stderr, "ablate: database error: {}\n", e.what());
    return 3;
  } catch (const DataError& e) {
    fmt::print(stderr, "ablate: data error: {}\n", e.what());
    return 4;
  } catch (const std::exception& e) {
    fmt::print(stderr, "ablate: error: {}\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ablate: reproducibility harness and ablation runner for remote-sensing MIM models"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "print versions of ablate and its libraries");
  const Commands commands = register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return run_reporting_errors([&] {
    if (show_version) {
      for (const auto& [k, v] : library_versions()) fmt::print("{:<9} {}\n", k, v);
      return 0;
    }
    if (const Command* command = given_command(commands)) return command->run();
    std::cout << app.help();
    return 0;
  });
}
