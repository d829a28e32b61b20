// `ablate export`: the whole results database on stdout (`--format csv|json`, for spreadsheets and
// scripts, one row or object per run), or one run's encoder for the ecosystem (`export RUN --format
// timm|pth -o OUT`: a folder timm.create_model('local-dir:OUT') loads, or MAE's {'model': ...}
// .pth; app/export_model.cpp).
#include <iostream>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "app/run_views.h"
#include "harness/check.h"
#include "harness/store.h"

namespace ablate {
namespace {

struct ExportOptions {
  std::string db = kDefaultDb, format, run_id, out;
};

int export_main(const ExportOptions& opt) {
  const bool model = opt.format == "timm" || opt.format == "pth";
  if (model != !opt.run_id.empty())
    throw ConfigError("<command line>", "run_id",
                      model ? "--format " + opt.format + " exports one run's encoder: name the run"
                            : "--format " + opt.format + " dumps the whole database and takes no run",
                      "ablate export RUN --format timm -o DIR, or ablate export --format csv");
  if (model) {
    if (opt.out.empty()) throw ConfigError("<command line>", "-o", "--format " + opt.format + " needs -o OUT");
    return export_model_main(opt.db, opt.run_id, opt.format, opt.out);
  }
  Store store(opt.db, Store::Mode::existing);
  export_db(store, opt.format, std::cout);
  return 0;
}

}  // namespace

void add_export_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<ExportOptions>();
  CLI::App* cmd =
      app.add_subcommand("export", "dump the database as CSV or JSON, or a run's encoder for timm / MAE");
  cmd->add_option("run_id", opt->run_id, "run whose encoder to export (--format timm | pth)");
  cmd->add_option("--db", opt->db, "results database");
  cmd->add_option("--format", opt->format, "csv | json (database), timm | pth (a run's encoder)")
      ->required()
      ->check(CLI::IsMember({"csv", "json", "timm", "pth"}));
  cmd->add_option("-o,--out", opt->out, "timm: folder for model.safetensors + config.json; pth: file");
  commands.push_back({cmd, [opt] { return export_main(*opt); }});
}

}  // namespace ablate
