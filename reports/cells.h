// A cell is the set of runs that share every axis value except the seed: the unit that tables,
// claims, plots and comparisons aggregate over. Here: axis selectors, labels, and the per-seed
// sample of one metric source over a cell, keeping track of runs that gave no number and why.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/metric_source.h"
#include "reports/results_db.h"

namespace ablate {

// The axis key that varies over seeds and is aggregated away.
inline constexpr const char* kSeedAxis = "seed";

// `axes` without the seed axis.
nlohmann::json cell_key(const nlohmann::json& axes);
// True when every key of the selector object is an axis of `axes` with an equal value (numbers
// compare by value, so 1 matches 1.0). An empty selector matches everything.
bool matches(const nlohmann::json& axes, const nlohmann::json& selector);
// Display form of an axis value: strings bare, lists joined with '-', null as "(default)".
std::string axis_value_label(const nlohmann::json& v);
// "k=v, k=v" over an axes object (seed excluded), or "(all)" when empty.
std::string cell_label(const nlohmann::json& key);
// The first axis (other than seed) whose value differs between runs, or "" when all agree.
std::string mixed_axis(const std::vector<const RunRecord*>& runs);

// Per-seed numbers of one source over a cell's runs. Only runs with status "done" contribute;
// every other run is listed in `problems` with describe_outcome().
struct Sample {
  std::vector<double> values;
  std::vector<std::string> run_ids;   // the run of each value
  std::vector<std::string> problems;  // one per run without a value
  std::size_t runs = 0;               // runs in the cell
};
Sample collect_sample(const ResultsDb& db, const std::vector<const RunRecord*>& runs,
                      const MetricSource& source);
// The problems as one short phrase, duplicates counted: "2 × lost; diverged @ step 1234".
std::string summarize_problems(const std::vector<std::string>& problems);

}  // namespace ablate
