// The evaluation results a run records, as its config's `eval` section determines them: the worker
// (app/worker.cpp) writes one `eval` journal line per result — KNN top-1 and top-5 at every input
// scale of eval.scales, linear-probe and fine-tuning top-1 and top-5 at scale 1 — on
// eval.dataset. Known before any run, so report specs that name an eval source
// (`eval:<protocol>:<dataset>:<scale>:<metric>`) are checked against them when an experiment is
// loaded (reports/spec_check.h).
#pragma once

#include <string>
#include <vector>

#include "harness/config.h"

namespace ablate {

struct EvalResultKey {
  std::string protocol;  // knn | linprobe | finetune
  std::string dataset;   // registry name
  double scale = 1.0;    // input scale (KNN), 1 for the others
  std::string metric;    // top1 | top5

  bool operator==(const EvalResultKey&) const = default;
};

// In the order the worker records them (protocols in config order, fine-tuning last).
std::vector<EvalResultKey> eval_results(const EvalConfig& eval);

}  // namespace ablate
