// Claims of a paper checked against our seeds: "a beats b on metric M", "a is at least r× b".
// Each claim selects two cells by axis values, collects their per-seed numbers and gets a verdict
// (reproduced / contradicted / inconclusive) from reports/stats.h. The YAML schema is documented
// in reports/README.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/cells.h"
#include "reports/metric_source.h"
#include "reports/results_db.h"
#include "reports/stats.h"

namespace ablate {

struct ClaimSpec {
  std::string id, text;
  MetricSource source;
  nlohmann::json a, b;                            // selectors of the two cells
  nlohmann::json where = nlohmann::json::object();  // common filter applied to both sides
  std::string relation = "greater";               // greater | less | ratio_at_least
  double ratio = 1.0;                             // for ratio_at_least: mean(a) >= ratio * mean(b)
  double alpha = 0.05;
};

// Parses the `claims` section (a list; null = none). `where` is the experiment file for errors.
std::vector<ClaimSpec> parse_claims(const nlohmann::json& claims, const std::string& where);

struct ClaimResult {
  ClaimSpec spec;
  Sample a, b;       // raw per-seed numbers of each side
  ClaimStats stats;  // the test in the claimed direction (b scaled by ratio for ratio_at_least)
};

// Throws ConfigError when a side's selector matches runs that differ in an axis other than seed.
// `seed` seeds the bootstrap (combined with the claim id so claims do not share resamples).
ClaimResult evaluate_claim(const ClaimSpec& spec, const ResultsDb& db,
                           const std::vector<RunRecord>& runs, std::uint64_t seed,
                           const std::string& where);

// One-line statement of the relation: "a > b", "a < b", "a ≥ 2× b".
std::string relation_text(const ClaimSpec& spec);

}  // namespace ablate
