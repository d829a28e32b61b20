// `ablate report FILE`: the experiment's tables, claim verdicts and plots from the database
// (reports/report.h), written as report.<ext> files under --out-dir.
#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "harness/store.h"
#include "reports/report.h"

namespace ablate {
namespace {

constexpr const char* kFigureCaption = "reconstructions: original | masked | reconstruction | reconstructed patches";

struct ReportOptions {
  std::string file, scale, db = kDefaultDb, format, out_dir;
  std::vector<std::string> overrides, figures;
};

int report_command(const ReportOptions& opt) {
  const Experiment exp = load_checked_experiment(opt.file, opt.scale, opt.overrides);
  ReportRequest req;
  req.db_path = opt.db;
  req.experiment = exp.name;
  req.source = opt.file;
  req.scale = exp.scale;
  req.tables = exp.tables;
  req.claims = exp.claims;
  req.runs = planned_report_runs(exp);
  if (!opt.format.empty()) req.formats = {opt.format};
  if (!opt.out_dir.empty()) req.out_dir = opt.out_dir;
  for (const auto& f : opt.figures) req.figures.push_back(FigureFile{f, kFigureCaption});
  Store(opt.db, Store::Mode::existing);  // a clear error when the database is missing
  return report_main(req);
}

}  // namespace

void add_report_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand("report", "paper-style tables and claim verdicts from the database");
  cmd->add_option("file", opt->file, "experiment YAML")->required();
  cmd->add_option("--scale", opt->scale, "smoke | small | paper");
  cmd->add_option("--db", opt->db, "results database");
  cmd->add_option("--format", opt->format, "md | tex | html | csv")->check(CLI::IsMember({"md", "tex", "html", "csv"}));
  cmd->add_option("overrides", opt->overrides, "the key=value overrides the runs were made with");
  cmd->add_option("-o,--out-dir", opt->out_dir, "folder for report.<ext> and figures/ (default results/reports/<experiment>)");
  cmd->add_option("--figure", opt->figures, "PNG to embed in the HTML report (e.g. from `ablate figure`)");
  commands.push_back({cmd, [opt] { return report_command(*opt); }});
}

}  // namespace ablate
