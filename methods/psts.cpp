// PSTS stage schedule and chunked near/far/random filling (see psts.h).
#include "methods/psts.h"

#include <algorithm>
#include <limits>

#include "harness/check.h"
#include "methods/masking.h"
#include "pch/torch_pch.h"

namespace ablate {
namespace {

// Index of a stage in PstsWeights and the device weight tensor.
int64_t stage_index(PstsStage stage) { return static_cast<int64_t>(stage); }

}  // namespace

PstsWeights psts_stage_weights(double progress, const std::vector<PstsStage>& order,
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

torch::Tensor psts_split_counts(const torch::Tensor& weights, const std::vector<PstsStage>& order, int64_t m) {
  ABLATE_CHECK(order.size() == 3, "PSTS order of {} stages", order.size());
  const int64_t s0 = stage_index(order[0]), s1 = stage_index(order[1]), s2 = stage_index(order[2]);
  auto w = weights.to(torch::kFloat64);
  auto n_of = [&](int64_t s) { return torch::floor(w[s] * double(m) + 1e-6).to(torch::kInt64); };
  // Only two neighbouring stages share a blend: the earlier one takes int(w * m), the later the rest.
  auto n0 = n_of(s0);
  auto n1 = torch::where(w[s2] == 0.0, m - n0, n_of(s1));
  auto counts = torch::zeros({3}, n0.options());
  counts.index_put_({s0}, n0);
  counts.index_put_({s1}, n1);
  counts.index_put_({s2}, m - n0 - n1);
  return counts;
}

PstsSelection psts_fill_split(const torch::Tensor& features, const torch::Tensor& seed_ids, int64_t n_keep,
                              const torch::Tensor& weights, const std::vector<PstsStage>& order, int64_t chunks,
                              const PstsRandomKeys& keys) {
  torch::NoGradGuard no_grad;
  const int64_t B = features.size(0), L = features.size(1), S = seed_ids.size(1), n_fill = n_keep - S;
  ABLATE_CHECK(n_fill >= 0 && n_keep < L, "PSTS: seed {} keep {} of {}", S, n_keep, L);
  auto f = torch::nn::functional::normalize(features.to(torch::kFloat32),
                                            torch::nn::functional::NormalizeFuncOptions().dim(-1));
  PstsSelection out{seed_ids, split_from_keep(seed_ids, L).ids_masked};  // unselected ascending
  chunks = std::clamp<int64_t>(chunks, 1, std::max<int64_t>(n_fill, 1));
  const auto w = weights.to(torch::kFloat64);
  // The public random stage alone (weight 1) leaves the rest in permutation order; elsewhere the
  // rest stays in similarity order.
  const auto rest_by_key = w[kPstsRandom] >= 1.0;
  for (int64_t c = 0; c < chunks && n_fill > 0; ++c) {
    const int64_t m = c + 1 < chunks ? n_fill / chunks : n_fill - (chunks - 1) * (n_fill / chunks);
    const int64_t U = out.unselected.size(1);
    // Each unselected patch's best cosine similarity to the selection, sorted ascending.
    auto best = torch::bmm(gather_tokens(f, out.unselected), gather_tokens(f, out.selected).transpose(1, 2))
                    .amax(-1);                                                      // (B, U)
    auto edge = torch::argsort(best, /*dim=*/int64_t{1});                          // (B, U) list positions
    // Roles of the sorted positions, the same in every row: far = the lowest n_far, near = the
    // highest n_near, random = n_rand of the rest by smallest key.
    const auto n = psts_split_counts(w, order, m);
    const auto n_near = n[kPstsNear], n_far = n[kPstsFar], n_rand = n[kPstsRandom];
    auto pos = torch::arange(U, edge.options()).unsqueeze(0);                       // (1, U)
    auto is_far = pos < n_far;
    auto is_near = pos >= U - n_near;
    auto middle = is_far.logical_or(is_near).logical_not();
    auto key = keys ? keys(c, U).to(f.device(), torch::kFloat32) : torch::rand({1, U}, f.options());
    key = key.masked_fill(middle.logical_not(), std::numeric_limits<float>::infinity());
    auto rank = torch::empty_like(pos).scatter_(1, torch::argsort(key, /*stable=*/true, /*dim=*/1), pos);
    auto is_rand = middle.logical_and(rank < n_rand);
    // Picks in the public order (near, far, random; each ascending, random by key), then the rest.
    auto sort_key = torch::where(is_near, pos, torch::where(is_far, U + pos, torch::where(
        is_rand, 2 * U + rank, 3 * U + torch::where(rest_by_key, rank, pos))));
    auto roles = torch::argsort(sort_key, /*stable=*/true, /*dim=*/1);             // (1, U)
    auto add = torch::gather(edge, 1, roles.slice(1, 0, m).expand({B, m}));
    auto keep = torch::gather(edge, 1, roles.slice(1, m).expand({B, U - m}));
    out.selected = torch::cat({out.selected, torch::gather(out.unselected, 1, add)}, /*dim=*/1);
    out.unselected = torch::gather(out.unselected, 1, keep);
  }
  return out;
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
