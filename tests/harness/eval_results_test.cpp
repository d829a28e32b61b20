// The evaluation results a run's evaluations record, against hand-listed expectations: one
// address per task and metric, KNN at every scale, a fine-tune train ratio in the point slot.
#include "harness/eval_results.h"

#include "tests/support/catch.h"

using namespace ablate;

TEST_CASE("eval_results: KNN at every scale, probe at 1, fine-tune ratio as the point", "[eval_results]") {
  EvalConfig e;
  e.dataset = "ucmerced";
  e.protocols = {Protocol::knn, Protocol::linprobe};
  e.scales = {0.25, 1.0};
  EvalConfig ft = e;
  ft.dataset = "eurosat";
  ft.protocols = {Protocol::finetune};
  ft.ft_train_ratio = 0.2;
  const std::vector<EvalResultKey> expected = {
      {"knn", "ucmerced", 0.25, "top1"},     {"knn", "ucmerced", 0.25, "top5"},
      {"knn", "ucmerced", 1.0, "top1"},      {"knn", "ucmerced", 1.0, "top5"},
      {"linprobe", "ucmerced", 1.0, "top1"}, {"linprobe", "ucmerced", 1.0, "top5"},
      {"finetune", "eurosat", 0.2, "top1"},  {"finetune", "eurosat", 0.2, "top5"},
  };
  CHECK(eval_results({e, ft}) == expected);

  e.protocols = {Protocol::linprobe};  // the scales are KNN's only
  CHECK(eval_results({e, e}) == std::vector<EvalResultKey>{{"linprobe", "ucmerced", 1.0, "top1"},
                                                           {"linprobe", "ucmerced", 1.0, "top5"}});
}
