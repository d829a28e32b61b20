// Figures of a report, drawn by gnuplot (Debian gnuplot-nox, `set terminal svg`): training-loss
// curves per run, throughput bars per cell, and KNN accuracy against input scale (Cross-Scale MAE,
// Fig. 2). gnuplot is an optional runtime tool, not a library dependency: where it is missing or
// fails, the plot is listed as skipped with the reason and the report renders without it.
#pragma once

#include <string>
#include <vector>

#include "reports/results_db.h"

namespace ablate {

struct Plot {
  std::string name;     // file stem, e.g. "loss", "throughput", "knn_scale_eurosat"
  std::string title;
  std::string path;     // the SVG written; empty when skipped
  std::string skipped;  // why it was not drawn ("gnuplot not found", "no run logged 'loss'")
};

struct PlotOptions {
  std::string gnuplot = "gnuplot";  // executable name (PATH lookup) or path
  std::string dir;                  // where <name>.svg, .dat and .gp files go (created)
};

// All plots the runs have data for; each is drawn or marked skipped. `runs` carry the axes used
// for labels.
std::vector<Plot> make_plots(const ResultsDb& db, const std::vector<RunRecord>& runs,
                             const PlotOptions& opt);

// Full path of an executable: `name` itself when it contains '/', else the first match on PATH;
// "" when there is none.
std::string find_executable(const std::string& name);

}  // namespace ablate
