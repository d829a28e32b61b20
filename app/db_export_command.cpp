// `ablate export --format csv|json`: the whole results database on stdout, for spreadsheets and
// scripts (one row or object per run).
#include <iostream>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "harness/store.h"

namespace ablate {
namespace {

struct ExportOptions {
  std::string db = kDefaultDb, format;
};

int export_main(const ExportOptions& opt) {
  Store store(opt.db, Store::Mode::existing);
  export_db(store, opt.format, std::cout);
  return 0;
}

}  // namespace

void add_export_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<ExportOptions>();
  CLI::App* cmd = app.add_subcommand("export", "dump the database as CSV or JSON");
  cmd->add_option("--db", opt->db, "results database");
  cmd->add_option("--format", opt->format, "csv | json")->required()->check(CLI::IsMember({"csv", "json"}));
  commands.push_back({cmd, [opt] { return export_main(*opt); }});
}

}  // namespace ablate
