// Report assembly and the `ablate report` entry point (reports/report.h).
#include "reports/report.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/eval_task.h"
#include "harness/experiment.h"
#include "reports/cells.h"
#include "reports/render.h"

namespace ablate {
namespace {

namespace fs = std::filesystem;

std::string default_out_dir(const ReportRequest& req) {
  return req.out_dir.empty() ? (fs::path("results") / "reports" / req.experiment).string()
                             : req.out_dir;
}

}  // namespace

std::vector<ReportRun> planned_report_runs(const Experiment& exp) {
  std::vector<ReportRun> out;
  const auto add = [&out](std::string id, const nlohmann::json& axes, const std::vector<EvalTask>& tasks) {
    ReportRun r{std::move(id), axes, {}};
    for (const EvalTask& t : tasks) r.eval_ids.push_back(t.id);
    out.push_back(std::move(r));
  };
  for (const PlannedRun& r : exp.runs) add(r.id, r.axes, eval_tasks_of(r));
  for (const ExternalWeights& w : exp.weights) add(w.label(), w.axes, eval_tasks_of(w));
  return out;
}

std::vector<RunRecord> report_runs(const ResultsDb& db, const std::string& experiment,
                                   const std::vector<ReportRun>& planned, std::vector<std::string>& notes) {
  if (planned.empty()) return db.runs(experiment);
  // Shared runs may be filed under another experiment: look planned ids up in the whole store.
  std::map<std::string, RunRecord> stored;
  for (RunRecord& r : db.runs("")) stored.emplace(r.id, std::move(r));
  std::vector<RunRecord> out;
  int missing = 0;
  for (const ReportRun& p : planned) {
    auto it = stored.find(p.id);
    RunRecord r;
    if (it != stored.end()) {
      r = it->second;
    } else if (std::optional<RunRecord> file = db.weights_record(p.id)) {  // an external checkpoint row
      r = std::move(*file);
      r.experiment = experiment;
    } else {
      r.id = p.id;
      r.experiment = experiment;
      r.status = "not run";
      ++missing;
    }
    if (p.axes.is_object()) r.axes = p.axes;
    r.eval_ids = p.eval_ids;
    if (r.axes.contains(kSeedAxis) && r.axes[kSeedAxis].is_number_integer())
      r.seed = r.axes[kSeedAxis].get<std::int64_t>();
    out.push_back(std::move(r));
  }
  if (missing > 0)
    notes.push_back(fmt::format("{} of {} planned runs are not in the database yet.", missing,
                                planned.size()));
  return out;
}

Report build_report(const ReportRequest& req) {
  const std::string where = req.source.empty() ? req.experiment : req.source;
  // Parse specs before touching the database so spec errors surface first.
  const std::vector<TableSpec> tables = parse_tables(req.tables, where);
  const std::vector<ClaimSpec> claims = parse_claims(req.claims, where);
  const ResultsDb db(req.db_path);
  Report rep;
  rep.experiment = req.experiment;
  rep.db_path = req.db_path;
  rep.source = req.source;
  rep.scale = req.scale;
  rep.out_dir = default_out_dir(req);
  rep.figures = req.figures;
  rep.runs = report_runs(db, req.experiment, req.runs, rep.notes);
  if (rep.runs.empty())
    rep.notes.push_back("The database has no runs for experiment '" + req.experiment + "'.");
  for (const TableSpec& t : tables)
    rep.tables.push_back(build_table(t, db, rep.runs, !req.runs.empty(), where));
  for (const ClaimSpec& c : claims)
    rep.claims.push_back(evaluate_claim(c, db, rep.runs, req.seed, where));
  PlotOptions po;
  po.gnuplot = req.gnuplot;
  po.dir = (fs::path(rep.out_dir) / "figures").string();
  if (!req.gnuplot.empty()) rep.plots = make_plots(db, rep.runs, po);
  for (const FigureFile& f : rep.figures)
    if (!fs::exists(f.path)) throw DataError(fmt::format("{}: figure does not exist", f.path));
  return rep;
}

std::string render_report(const ReportRequest& req, const std::string& format) {
  const Format f = parse_format(format);
  return render(build_report(req), f);
}

int report_main(const ReportRequest& req, std::ostream& out) {
  std::vector<Format> formats;
  for (const std::string& name : req.formats) formats.push_back(parse_format(name));
  const Report rep = build_report(req);
  fs::create_directories(rep.out_dir);
  for (const ClaimResult& c : rep.claims)
    out << fmt::format("claim {:<28} {:<13} (n={} vs {}{})\n", c.spec.id,
                             verdict_label(c, rep.scale), c.stats.n_a, c.stats.n_b,
                             c.stats.test.test.empty()
                                 ? std::string()
                                 : fmt::format(", {} p={:.3g}", c.stats.test.test, c.stats.p_claimed));
  for (const Plot& p : rep.plots)
    if (!p.skipped.empty()) out << "plot " << p.name << " skipped: " << p.skipped << "\n";
  for (Format f : formats) {
    const fs::path path = fs::path(rep.out_dir) / (std::string("report.") + file_extension(f));
    std::ofstream file(path, std::ios::binary);
    file << render(rep, f);
    if (!file) throw DataError(fmt::format("{}: cannot write the report", path.string()));
    out << "wrote " << path.string() << "\n";
  }
  return 0;
}

}  // namespace ablate
