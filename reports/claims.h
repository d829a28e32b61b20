// Claims of a paper checked against our seeds. Each claim selects cells by axis values, collects
// their per-seed numbers and gets a verdict (reproduced / contradicted / inconclusive) from
// reports/stats.h. The relations a paper's sentences need:
//   greater, less          "a beats b"                       Welch / Mann–Whitney, one-sided
//   ratio_at_least         "a is at least r× b" (throughput, memory)
//   non_inferior           "a is on par with or better than b": mean(a) > mean(b) − margin
//   equivalent             "a matches b": |mean(a) − mean(b)| < margin (two one-sided tests)
//   increasing             "bigger is better" over a list of cells: every adjacent step up
//   fewer_diverged         "a is stable, b is not": fewer diverged seeds (Fisher's exact test)
// The YAML schema is documented in reports/README.md.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/choice.h"
#include "reports/cells.h"
#include "reports/metric_source.h"
#include "reports/results_db.h"
#include "reports/stats.h"

namespace ablate {

// A claim's `relation:` (the table above), parsed when the claims are read.
enum class Relation { greater, less, ratio_at_least, non_inferior, equivalent, increasing, fewer_diverged };
constexpr std::array<const char*, 7> choice_names(Relation) {
  return {"greater", "less", "ratio_at_least", "non_inferior", "equivalent", "increasing", "fewer_diverged"};
}

struct ClaimSpec {
  std::string id, text;
  MetricSource source;                            // unused by fewer_diverged
  nlohmann::json a, b;                            // selectors of the two cells
  std::vector<nlohmann::json> cells;              // increasing: selectors, claimed low to high
  nlohmann::json where = nlohmann::json::object();  // common filter applied to every side
  Relation relation = Relation::greater;
  double ratio = 1.0;   // ratio_at_least: mean(a) >= ratio * mean(b)
  double margin = 0.0;  // non_inferior / equivalent: in the metric's stored units (0.01 = 1 point)
  double alpha = 0.05;
  std::string paper;    // the paper's figure for this claim as text, shown beside ours
};

// Parses the `claims` section (a list; null = none). `where` is the experiment file for errors.
std::vector<ClaimSpec> parse_claims(const nlohmann::json& claims, const std::string& where);

// Diverged seeds among the finished runs (done or diverged) of one side.
struct DivergenceCount {
  int diverged = 0, finished = 0;
};

struct ClaimResult {
  ClaimSpec spec;
  Sample a, b;       // raw per-seed numbers of each side (increasing: the last and first cell)
  ClaimStats stats;  // the decisive test in the claimed direction (see evaluate_claim)
  std::vector<Sample> chain;       // increasing: every cell, in claimed order
  std::vector<ClaimStats> steps;   // increasing: cell i+1 > cell i, at alpha / (cells − 1)
  DivergenceCount diverged_a, diverged_b;  // fewer_diverged
  std::vector<std::string> devices;        // where the runs ran ("NVIDIA H100 80GB HBM3", a CPU)
  bool ran = false;  // every side has a finished run (done, diverged or failed)
};

// Throws ConfigError when a side's selector matches runs that differ in an axis other than seed.
// `seed` seeds the bootstrap (combined with the claim id so claims do not share resamples).
ClaimResult evaluate_claim(const ClaimSpec& spec, const ResultsDb& db,
                           const std::vector<RunRecord>& runs, std::uint64_t seed,
                           const std::string& where);

// One-line statement of the relation: "a > b", "a < b", "a ≥ 2× b", "a ≥ b − 0.01", ...
std::string relation_text(const ClaimSpec& spec);
// The verdict as a reader should see it: "not run" unless every side has a finished run, else the verdict with the
// scale beside it ("reproduced (smoke scale)"); `scale` "" leaves the scale out.
std::string verdict_label(const ClaimResult& c, const std::string& scale);

}  // namespace ablate
