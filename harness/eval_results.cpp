// The evaluation results a run's evaluations record (harness/eval_results.h).
#include "harness/eval_results.h"

#include "harness/eval_task.h"

namespace ablate {

std::vector<EvalResultKey> eval_results(const std::vector<EvalConfig>& evals) {
  std::vector<EvalResultKey> out;
  for (const EvalTask& t : expand_eval_tasks(WeightsSource{}, evals))
    for (const char* metric : {"top1", "top5"}) out.push_back({name_of(t.protocol), t.dataset, t.point(), metric});
  return out;
}

}  // namespace ablate
