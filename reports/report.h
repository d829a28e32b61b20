// The `ablate report` entry points the CLI calls: build everything a report shows from the results
// database (tables, claim verdicts, plots, embedded figures, runs without results) and render it
// as Markdown, LaTeX, CSV or one self-contained HTML file. The experiment file is parsed by the
// harness; this layer receives its `tables` and `claims` sections as JSON, the experiment name,
// the planned runs and the database path.
#pragma once

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/claims.h"
#include "reports/plots.h"
#include "reports/results_db.h"
#include "reports/table.h"

namespace ablate {

// A run of the experiment's matrix as the planner sees it; its axes override the database's
// axes_json (a run shared by two experiments was stored with the axes of the first).
struct ReportRun {
  std::string id;
  nlohmann::json axes;
  std::vector<std::string> eval_ids;  // its planned evaluation tasks (RunRecord::eval_ids)
};

struct Experiment;
// The experiment's runs, then its external checkpoints, as a report plans them: id (a checkpoint's
// weights label), axes and the ids of the evaluation tasks the file asks of each.
std::vector<ReportRun> planned_report_runs(const Experiment& exp);

// A PNG (reconstructions, attention maps...) to embed in the HTML report.
struct FigureFile {
  std::string path, caption;
};

struct ReportRequest {
  std::string db_path;               // results database
  std::string experiment;            // experiment name
  std::string source;                // experiment file, named in error messages
  std::string scale;                 // scale profile the runs were planned at, named beside verdicts
  nlohmann::json tables;             // the file's `tables` section (list) or null
  nlohmann::json claims;             // the file's `claims` section (list) or null
  std::vector<ReportRun> runs;      // planned runs in matrix order; empty = the database's
  std::vector<FigureFile> figures;   // PNGs for the HTML report
  std::string out_dir;               // report.<ext> and figures/ go here; "" = results/reports/<exp>
  std::vector<std::string> formats = {"md", "html"};  // md | tex | csv | html
  std::string gnuplot = "gnuplot";   // executable; "" = no plots
  std::uint64_t seed = 0;            // bootstrap seed
};

struct Report {
  std::string experiment, db_path, source, out_dir, scale;
  std::vector<RunRecord> runs;  // the experiment's runs with their report axes
  std::vector<Table> tables;
  std::vector<ClaimResult> claims;
  std::vector<Plot> plots;
  std::vector<FigureFile> figures;
  std::vector<std::string> notes;  // e.g. planned runs missing from the database
};

// The experiment's runs as a report sees them: the planned ones with the planner's axes (looked up
// in the whole database, "not run" when it has no row; `notes` says how many), or without a plan
// every run the database files under the experiment.
std::vector<RunRecord> report_runs(const ResultsDb& db, const std::string& experiment,
                                   const std::vector<ReportRun>& planned, std::vector<std::string>& notes);

// Reads the database, aggregates tables and claims and draws plots into <out_dir>/figures.
// Throws ConfigError for bad table/claim specs, StoreError for database problems.
Report build_report(const ReportRequest& req);
// The report in one format ("md", "tex", "csv", "html").
std::string render_report(const ReportRequest& req, const std::string& format);
// Writes <out_dir>/report.<ext> for each requested format and prints a claim summary and the
// written paths to `out`. Returns 0; errors are thrown (ConfigError, StoreError).
int report_main(const ReportRequest& req, std::ostream& out = std::cout);

}  // namespace ablate
