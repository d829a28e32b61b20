// `ablate compare --db A --against B [FILE]`: cell-by-cell comparison of a new results database
// (A) with a baseline (B). Cells are matched by experiment and axes (seed aside); per tracked
// metric the change, its seed uncertainty and Welch's one-sided p decide whether A regressed
// beyond the metric's tolerance. The exit code is non-zero only for significant regressions.
// Cells a re-run could flip are borderline; with `rerun_borderline` = N each borderline cell of the
// new database gets N more seeds through an injected Rerunner (the CLI wires the local runner,
// tests a fake one) before the comparison is judged again. The baseline is never written.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/choice.h"
#include "reports/cells.h"
#include "reports/metric_source.h"

namespace ablate {

// A tracked metric's `better:`: the way it improves (throughput higher, memory lower).
enum class Direction { higher, lower };
constexpr std::array<const char*, 2> choice_names(Direction) { return {"higher", "lower"}; }

struct TrackedMetric {
  MetricSource source;
  Direction better = Direction::higher;
  double rel_tol = 0;             // tolerated relative worsening, e.g. 0.05 = 5%
  double abs_tol = 0;             // tolerated absolute worsening in display units
  double scale = 1;               // display = stored value * scale (100: fractions to points)
};

// The defaults besides evals: throughput (metric:images_per_s:median, 5% relative) and peak
// memory (metric:peak_mem_mb:max, 10% relative, lower is better). Every eval the baseline has is
// tracked too, at 1.0 absolute point on values stored as fractions (scale 100).
std::vector<TrackedMetric> default_tracked_metrics();

// The `compare` section of an experiment file (reports/README.md): the significance level, whether
// the defaults stay tracked, and the metrics listed. Null = the defaults at alpha 0.05. Throws
// ConfigError (at `where`, the file, with the key path) for a malformed section.
struct CompareSpec {
  double alpha = 0.05;
  bool defaults = true;
  std::vector<TrackedMetric> metrics;
};
CompareSpec parse_compare(const nlohmann::json& section, const std::string& where);

struct CompareRequest {
  std::string db;                 // new results (A)
  std::string against;            // baseline (B)
  std::string experiment;         // "" = every experiment of both databases
  std::string source;             // experiment file, named in error messages
  nlohmann::json tracked;         // the file's `compare` section, or null for the defaults
  std::string format = "md";      // md | json
  int rerun_borderline = 0;       // extra seeds per borderline cell of `db` before judging, e.g. 1
                                  // (0 = only list borderline cells)
};

// One cell of the new database to run again: `seeds.size()` more runs of the stored config.
struct RerunOrder {
  std::string experiment;            // CompareRequest::experiment (else the runs' runs.experiment)
  nlohmann::json cell;               // axes without seed
  nlohmann::json axes;               // the template run's axes (seed included when it is an axis)
  nlohmann::json config;             // the template run's stored config JSON (a done run if any)
  std::vector<std::int64_t> seeds;   // new seeds: the cell's largest seed + 1, + 2, ... + N
};
struct RerunOutcome {
  bool ok = true;
  std::string message;  // why (some) runs could not be made; shown in the output
};
// Runs every order's seeds into the new database (`CompareRequest::db`) and returns when they have
// ended. Throwing is reported like a failed outcome: the comparison goes on with what exists.
using Rerunner = std::function<RerunOutcome(const std::vector<RerunOrder>& orders)>;

// A cell's judgement: within tolerance (ok), significantly worse or better beyond it, worse beyond
// it without significance (borderline), or no value on a side (incomparable).
enum class CompareStatus { ok, regression, improvement, borderline, incomparable };
constexpr std::array<const char*, 5> choice_names(CompareStatus) {
  return {"ok", "regression", "improvement", "borderline", "incomparable"};
}

struct CellComparison {
  std::string experiment;         // CompareRequest::experiment (else the runs' runs.experiment)
  nlohmann::json cell;            // axes without seed
  TrackedMetric metric;
  Sample a, b;                    // raw per-seed values (A = new, B = baseline)
  double change = 0;              // (mean A - mean B) * scale
  double rel_change = 0;          // (mean A - mean B) / |mean B|
  double tolerance = 0;           // allowed worsening in display units
  double p_worse = 1;             // Welch one-sided p of "A is worse"; 1 when not tested
  bool tested = false;            // Welch was run (n >= 2 per side)
  CompareStatus status = CompareStatus::ok;
  bool borderline = false;        // a re-run could change the status (README: "borderline")
  std::string note;
  // Set when the cell was re-run (CompareRequest::rerun_borderline): the judgement before.
  int reruns = 0;                 // extra seeds run for this cell (0 = not re-run)
  std::optional<CompareStatus> status_before;  // none: the cell had no comparison before
  std::size_t n_before = 0;       // values in the new database before the re-runs
  double p_before = 1;            // p_worse before (meaningful when tested_before)
  bool tested_before = false;
};

struct CompareResult {
  std::string db, against;
  double alpha = 0.05;
  std::vector<CellComparison> cells;
  std::vector<std::string> notes;  // unmatched cells, differing configs
  int rerun_borderline = 0;        // the N asked for
  std::vector<RerunOrder> reruns;  // the cells re-run and their new seeds
  std::string rerun_note;          // why nothing was re-run, or why re-running failed ("" = fine)
  int regressions() const;
};

CompareResult compare_databases(const CompareRequest& req);
// compare_databases, then, when req.rerun_borderline > 0 and some cell is borderline: one order
// per borderline cell (N new seeds each, all handed to `rerun` at once) and the comparison again,
// with each re-run cell's judgement before the extra seeds kept beside the new one. (A database
// compared with itself has no borderline cell, so the baseline file is never a re-run target.)
CompareResult compare_with_reruns(const CompareRequest& req, const Rerunner& rerun);
std::string render_compare(const CompareResult& result, const std::string& format);
// Prints the comparison (req.format) to `out`; returns 1 when a tracked metric regressed, else 0.
// `rerun` is required when req.rerun_borderline > 0.
int compare_main(const CompareRequest& req, std::ostream& out = std::cout, const Rerunner& rerun = {});

}  // namespace ablate
