// `ablate compare --db A --against B [FILE]`: cell-by-cell comparison of a new results database
// (A) with a baseline (B). Cells are matched by experiment and axes (seed aside); per tracked
// metric the change, its seed uncertainty and Welch's one-sided p decide whether A regressed
// beyond the metric's tolerance. The exit code is non-zero only for significant regressions;
// cells a re-run could flip are listed as borderline for the runner to repeat.
#pragma once

#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/cells.h"
#include "reports/metric_source.h"

namespace ablate {

struct TrackedMetric {
  MetricSource source;
  std::string better = "higher";  // higher | lower
  double rel_tol = 0;             // tolerated relative worsening, e.g. 0.05 = 5%
  double abs_tol = 0;             // tolerated absolute worsening in display units
  double scale = 1;               // display = stored value * scale (100: fractions to points)
};

// The defaults besides evals: throughput (metric:images_per_s:median, 5% relative) and peak
// memory (metric:peak_mem_mb:max, 10% relative, lower is better). Every eval the baseline has is
// tracked too, at 1.0 absolute point on values stored as fractions (scale 100).
std::vector<TrackedMetric> default_tracked_metrics();

struct CompareRequest {
  std::string db;                 // new results (A)
  std::string against;            // baseline (B)
  std::string experiment;         // "" = every experiment of both databases
  std::string source;             // experiment file, named in error messages
  nlohmann::json tracked;         // the file's `compare` section, or null for the defaults
  std::string format = "md";      // md | json
};

struct CellComparison {
  std::string experiment;
  nlohmann::json cell;            // axes without seed
  TrackedMetric metric;
  Sample a, b;                    // raw per-seed values (A = new, B = baseline)
  double change = 0;              // (mean A - mean B) * scale
  double rel_change = 0;          // (mean A - mean B) / |mean B|
  double tolerance = 0;           // allowed worsening in display units
  double p_worse = 1;             // Welch one-sided p of "A is worse"; 1 when not tested
  bool tested = false;            // Welch was run (n >= 2 per side)
  std::string status;             // ok | regression | improvement | borderline | incomparable
  bool borderline = false;        // a re-run could change the status
  std::string note;
};

struct CompareResult {
  std::string db, against;
  double alpha = 0.05;
  std::vector<CellComparison> cells;
  std::vector<std::string> notes;  // unmatched cells, differing configs
  int regressions() const;
};

CompareResult compare_databases(const CompareRequest& req);
std::string render_compare(const CompareResult& result, const std::string& format);
// Prints the comparison (req.format) to `out`; returns 1 when a tracked metric regressed, else 0.
int compare_main(const CompareRequest& req, std::ostream& out = std::cout);

}  // namespace ablate
