// PSTS stage schedule and chunked near/far/random filling (see psts.h).
#include "methods/psts.h"

#include <algorithm>
#include <limits>

#include "harness/check.h"
#include "methods/masking.h"
#include "methods/pch/torch_pch.h"

namespace ablate {
namespace {

int64_t stage_index(const std::string& name) {
  if (name == "near") return kPstsNear;
  if (name == "far") return kPstsFar;
  if (name == "random") return kPstsRandom;
  ABLATE_CHECK(false, "unknown PSTS stage '{}' (validate() accepts near, far, random)", name);
  return 0;
}

}  // namespace

PstsWeights psts_stage_weights(double progress, const std::vector<std::string>& order,
                               const std::vector<double>& bounds) {
  // validate() has checked both (a permutation of the three stages; 4 non-decreasing bounds).
  ABLATE_CHECK(order.size() == 3 && bounds.size() == 4 && std::is_sorted(bounds.begin(), bounds.end()),
               "{} stages, {} bounds", order.size(), bounds.size());
  const int64_t s0 = stage_index(order[0]), s1 = stage_index(order[1]), s2 = stage_index(order[2]);
  ABLATE_CHECK(s0 != s1 && s1 != s2 && s0 != s2, "PSTS stages repeat");
  // Blend fraction t from stage a to stage b inside [lo, hi].
  auto blend = [](int64_t a, int64_t b, double t) {
    PstsWeights w{0.0, 0.0, 0.0};
    w[a] += 1.0 - t;
    w[b] += t;
    return w;
  };
  auto ramp = [&](double lo, double hi) { return hi > lo ? (progress - lo) / (hi - lo) : 1.0; };
  if (progress < bounds[0]) return blend(s0, s1, 0.0);
  if (progress < bounds[1]) return blend(s0, s1, ramp(bounds[0], bounds[1]));
  if (progress < bounds[2]) return blend(s1, s2, 0.0);
  if (progress < bounds[3]) return blend(s1, s2, ramp(bounds[2], bounds[3]));
  return blend(s1, s2, 1.0);
}

torch::Tensor psts_draw_stages(const torch::Tensor& weights, int64_t batch) {
  auto w = weights.to(torch::kFloat32);
  auto cdf = torch::cumsum(w / w.sum(), 0);  // (3)
  auto u = torch::rand({batch, 1}, w.options());
  // Number of CDF steps at or below u = the drawn stage; clamp guards u ~ 1 against rounding.
  return (u >= cdf.slice(0, 0, 2)).sum(1).clamp_max(2);
}

torch::Tensor psts_fill(const torch::Tensor& features, const torch::Tensor& seed_ids, int64_t n_keep,
                        const torch::Tensor& stages, int64_t chunks) {
  torch::NoGradGuard no_grad;
  const int64_t L = features.size(1), S = seed_ids.size(1), n_fill = n_keep - S;
  ABLATE_CHECK(n_fill >= 0 && n_keep <= L, "PSTS: seed {} keep {} of {}", S, n_keep, L);
  if (n_fill == 0) return seed_ids;
  chunks = std::clamp<int64_t>(chunks, 1, n_fill);
  auto f = torch::nn::functional::normalize(features.to(torch::kFloat32),
                                            torch::nn::functional::NormalizeFuncOptions().dim(-1));
  auto sim = torch::bmm(f, f.transpose(1, 2));  // (B, L, L) cosine
  auto selected = ids_to_mask(seed_ids, L).to(torch::kBool);  // (B, L)
  const auto stage = stages.view({-1, 1});                     // (B, 1)
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<torch::Tensor> picked{seed_ids};
  for (int64_t c = 0; c < chunks; ++c) {
    // Public code's split: equal shares, the last round takes the remainder.
    const int64_t count = c + 1 < chunks ? n_fill / chunks : n_fill - (chunks - 1) * (n_fill / chunks);
    // Similarity of every patch to its most similar selected patch.
    auto best = sim.masked_fill(selected.logical_not().unsqueeze(1), -inf).amax(-1);  // (B, L)
    auto key = torch::where(stage == kPstsNear, best,
                            torch::where(stage == kPstsFar, -best, torch::rand_like(best)));
    key = key.masked_fill(selected, -inf);
    auto add = std::get<1>(key.topk(count, 1));  // (B, count)
    selected.scatter_(1, add, true);
    picked.push_back(add);
  }
  return torch::cat(picked, 1);
}

}  // namespace ablate
