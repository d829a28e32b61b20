// The evaluation results a config asks for, against hand-listed expectations (the order and
// scales app/worker.cpp records them in).
#include "harness/eval_results.h"

#include "tests/support/catch.h"

using namespace ablate;

TEST_CASE("eval_results: KNN at every scale, probe and fine-tuning at 1, fine-tuning last", "[eval_results]") {
  EvalConfig e;
  e.dataset = "ucmerced";
  e.protocols = {"finetune", "knn", "linprobe"};
  e.scales = {0.25, 1.0};
  const std::vector<EvalResultKey> expected = {
      {"knn", "ucmerced", 0.25, "top1"},     {"knn", "ucmerced", 0.25, "top5"},
      {"knn", "ucmerced", 1.0, "top1"},      {"knn", "ucmerced", 1.0, "top5"},
      {"linprobe", "ucmerced", 1.0, "top1"}, {"linprobe", "ucmerced", 1.0, "top5"},
      {"finetune", "ucmerced", 1.0, "top1"}, {"finetune", "ucmerced", 1.0, "top5"},
  };
  CHECK(eval_results(e) == expected);

  e.protocols = {"linprobe"};  // the scales are KNN's only
  CHECK(eval_results(e) == std::vector<EvalResultKey>{{"linprobe", "ucmerced", 1.0, "top1"},
                                                      {"linprobe", "ucmerced", 1.0, "top5"}});
}
