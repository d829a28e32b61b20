// The evaluation results a planned run records, known before any run: every evaluation task of its
// `evals:` entries (harness/eval_task.h) records top-1 and top-5 at its address
// `eval:<protocol>:<dataset>:<point>:<metric>` (the point is the KNN input scale, the fine-tune
// train ratio when one is set, else 1). Report specs that name an eval source are checked against
// these when an experiment is loaded (reports/spec_check.h). Derived from the tasks, so the
// addresses a spec may use and the records the evaluation worker writes cannot drift apart.
#pragma once

#include <string>
#include <vector>

#include "harness/config.h"

namespace ablate {

struct EvalResultKey {
  std::string protocol;  // knn | linprobe | finetune
  std::string dataset;   // registry name
  double scale = 1.0;    // the task's point: KNN input scale, fine-tune train ratio, else 1
  std::string metric;    // top1 | top5

  bool operator==(const EvalResultKey&) const = default;
};

// In task order (entries in order, protocols in each entry's order), duplicates dropped.
std::vector<EvalResultKey> eval_results(const std::vector<EvalConfig>& evals);

}  // namespace ablate
