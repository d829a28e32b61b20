// Where a table cell, claim or comparison takes its per-run number from, written as one string in
// experiment files: "eval:<protocol>:<dataset>:<scale>:<metric>" reads the evals table (e.g.
// "eval:knn:eurosat:1.0:top1"; the results of the run's evaluation records, harness/eval_task.h:
// <scale> is the KNN input scale, a fine-tune's train ratio when it sets one, e.g.
// "eval:finetune:aid:0.2:top1", else 1.0), "metric:<name>:<agg>" reduces a run's logged metric series (e.g.
// "metric:images_per_s:median", "metric:loss:last"). Parsing here keeps the syntax in one place.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "harness/choice.h"

namespace ablate {

// How a `metric:` source reduces a run's series to one number (max_over_median: the largest spike
// over the run's median).
enum class Aggregation { last, first, min, max, mean, median, max_over_median };
constexpr std::array<const char*, 7> choice_names(Aggregation) {
  return {"last", "first", "min", "max", "mean", "median", "max_over_median"};
}

struct MetricSource {
  enum class Kind { eval, metric };
  Kind kind = Kind::metric;
  std::string text;  // as written, for messages and labels
  // eval:
  std::string protocol, dataset, eval_metric;
  double scale = 1.0;
  // metric:
  std::string name;
  Aggregation agg = Aggregation::last;

  // Throws ConfigError at `where` (e.g. "exp.yaml") and `key` (e.g. "tables[0].metrics[1].source")
  // on bad syntax.
  static MetricSource parse(const std::string& text, const std::string& where, const std::string& key = "");
};

// Reduces a (step, value) series, ordered by step, with the source's aggregation. Non-finite
// values are ignored; returns false when nothing is left.
bool aggregate_series(const std::vector<std::pair<std::int64_t, double>>& series,
                      Aggregation agg, double& out);

}  // namespace ablate
