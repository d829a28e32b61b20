// InfoBatch planning and device-side state (see infobatch.h).
#include "methods/infobatch.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/format.h>

#include "datasets/split.h"
#include "harness/check.h"
#include "pch/torch_pch.h"

namespace ablate {
namespace {

// InfoBatch's random stream, apart from the loader's per-epoch permutation streams (small numbers)
// and its max_images subset (~0).
constexpr uint64_t kInfoBatchStream = ~uint64_t{0} - 1;

std::vector<int64_t> i64_vector(const torch::Tensor& t) {
  const auto c = t.to(torch::kCPU, torch::kInt64).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

}  // namespace

InfoBatchEpoch plan_infobatch_epoch(const std::vector<int64_t>& pool, const std::vector<float>& scores, double prune,
                                    int64_t stop_epoch, int64_t min_kept, uint64_t seed, int64_t epoch) {
  ABLATE_CHECK(prune >= 0.0 && prune < 1.0, "prune {}", prune);
  for (int64_t i : pool) ABLATE_CHECK(i >= 0 && static_cast<size_t>(i) < scores.size(), "pool index {} unscored", i);
  std::mt19937_64 rng(mix_seed(mix_seed(seed, kInfoBatchStream), static_cast<uint64_t>(epoch)));
  InfoBatchEpoch plan;
  plan.epoch = epoch;
  plan.order = pool;
  if (epoch < stop_epoch) {
    // Mean over the whole pool, unseen samples at their initial score, as the public code.
    double sum = 0.0;
    for (int64_t i : pool) sum += scores[static_cast<size_t>(i)];
    const double mean = sum / static_cast<double>(pool.size());
    std::vector<int64_t> rest, well;
    for (int64_t i : pool) (scores[static_cast<size_t>(i)] < mean ? well : rest).push_back(i);
    // Keep floor((1 - prune) * count) of the well-learned ones, as the public code's int(...).
    const auto keep = static_cast<size_t>(std::floor((1.0 - prune) * static_cast<double>(well.size())));
    if (static_cast<int64_t>(rest.size() + keep) >= min_kept) {
      plan.well_learned = static_cast<int64_t>(well.size());
      seeded_shuffle(well, rng);
      well.resize(keep);
      std::sort(well.begin(), well.end());
      plan.order = rest;
      plan.order.insert(plan.order.end(), well.begin(), well.end());
      plan.upweighted = std::move(well);
    }
  }
  seeded_shuffle(plan.order, rng);
  return plan;
}

InfoBatch::InfoBatch(const RunConfig& cfg, std::vector<int64_t> pool, torch::Device device)
    : prune_(cfg.method.infobatch_prune),
      stop_epoch_(infobatch_stop_epoch(cfg)),
      min_kept_(cfg.train.batch),
      seed_(static_cast<uint64_t>(cfg.seed)),
      pool_(std::move(pool)) {
  ABLATE_CHECK(!pool_.empty(), "InfoBatch over an empty pool");
  const int64_t n = *std::max_element(pool_.begin(), pool_.end()) + 1;
  const auto o = torch::TensorOptions().device(device).dtype(torch::kFloat32);
  scores_ = torch::full({n}, kInfoBatchInitialScore, o);
  weights_ = torch::ones({n}, o);
}

const InfoBatchEpoch& InfoBatch::plan(int64_t epoch) {
  const auto host = scores_.to(torch::kCPU).contiguous();  // the one sync of an epoch
  const std::vector<float> scores(host.data_ptr<float>(), host.data_ptr<float>() + host.numel());
  plan_ = plan_infobatch_epoch(pool_, scores, prune_, stop_epoch_, min_kept_, seed_, epoch);
  set_weights();
  return plan_;
}

void InfoBatch::set_weights() {
  weights_.fill_(1.0);
  if (!plan_.upweighted.empty())
    weights_.index_fill_(0, torch::tensor(plan_.upweighted, torch::kInt64).to(weights_.device()),
                         1.0 / (1.0 - prune_));
}

torch::Tensor InfoBatch::weights_of(const torch::Tensor& indices) const { return weights_.index_select(0, indices); }

void InfoBatch::record(const torch::Tensor& indices, const torch::Tensor& losses) {
  torch::NoGradGuard no_grad;
  scores_.index_copy_(0, indices, losses.detach().to(torch::kFloat32));
}

const std::vector<std::string>& InfoBatch::state_keys() {
  static const std::vector<std::string> keys{"scores", "epoch", "order", "upweighted", "well_learned"};
  return keys;
}

std::vector<std::pair<std::string, torch::Tensor>> InfoBatch::state() const {
  return {{"scores", scores_.to(torch::kCPU)},
          {"epoch", torch::tensor({plan_.epoch}, torch::kInt64)},
          {"order", torch::tensor(plan_.order, torch::kInt64)},
          {"upweighted", torch::tensor(plan_.upweighted, torch::kInt64)},
          {"well_learned", torch::tensor({plan_.well_learned}, torch::kInt64)}};
}

void InfoBatch::load_state(const std::vector<std::pair<std::string, torch::Tensor>>& named) {
  auto get = [&](const std::string& key) -> const torch::Tensor& {
    for (const auto& [k, t] : named)
      if (k == key) return t;
    throw DataError(fmt::format("InfoBatch state lacks '{}'", key));
  };
  const torch::Tensor& scores = get("scores");
  if (scores.dim() != 1 || scores.size(0) != scores_.size(0))
    throw DataError(fmt::format("InfoBatch state scores {} samples, this run's pool needs {}: the data changed",
                                scores.numel(), scores_.size(0)));
  scores_.copy_(scores);
  plan_.epoch = i64_vector(get("epoch")).at(0);
  plan_.order = i64_vector(get("order"));
  plan_.upweighted = i64_vector(get("upweighted"));
  plan_.well_learned = i64_vector(get("well_learned")).at(0);
  set_weights();
}

}  // namespace ablate
