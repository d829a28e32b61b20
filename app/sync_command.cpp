// `ablate sync`: ingests every run folder's journal into the database (e.g. after Slurm tasks
// wrote them on other nodes), first asking Slurm about the runs it holds. Ingesting is idempotent.
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/commands.h"
#include "harness/journal.h"
#include "harness/slurm.h"
#include "harness/store.h"

namespace ablate {
namespace {

struct SyncOptions {
  std::string db = kDefaultDb;
};

int sync_main(const SyncOptions& opt) {
  Store store(opt.db, Store::Mode::existing);
  slurm_sync(store, SlurmTools::from_path(), "", std::cerr);
  int64_t lines = 0;
  size_t runs = 0;
  for (const auto& row : store.runs()) {
    if (row.run_dir.empty() || !std::filesystem::exists(journal_path(row.run_dir))) continue;
    lines += ingest_journal(store, row.id, row.run_dir).lines;
    ++runs;
  }
  fmt::print("ingested {} new journal lines from {} runs into {}\n", lines, runs, store.path().string());
  return 0;
}

}  // namespace

void add_sync_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<SyncOptions>();
  CLI::App* cmd = app.add_subcommand("sync", "ingest run journals (e.g. from Slurm tasks) into the database");
  cmd->add_option("--db", opt->db, "results database");
  commands.push_back({cmd, [opt] { return sync_main(*opt); }});
}

}  // namespace ablate
