// The evaluation results a config asks for (harness/eval_results.h).
#include "harness/eval_results.h"

#include <algorithm>

namespace ablate {

std::vector<EvalResultKey> eval_results(const EvalConfig& eval) {
  std::vector<EvalResultKey> out;
  auto add = [&](const char* protocol, double scale) {
    for (const char* metric : {"top1", "top5"}) out.push_back({protocol, eval.dataset, scale, metric});
  };
  for (const std::string& protocol : eval.protocols) {
    if (protocol == "knn")
      for (double scale : eval.scales) add("knn", scale);
    if (protocol == "linprobe") add("linprobe", 1.0);
  }
  // Fine-tuning changes the encoder, so the worker runs it after the frozen-encoder protocols.
  if (std::find(eval.protocols.begin(), eval.protocols.end(), "finetune") != eval.protocols.end())
    add("finetune", 1.0);
  return out;
}

}  // namespace ablate
