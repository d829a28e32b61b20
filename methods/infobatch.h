// InfoBatch data pruning (Qin et al., ICLR 2024), as the public SelectiveMAE code pre-trains with it.
//
// Every sample's score is its latest per-sample loss, 3.0 before it is first seen (the public code's
// torch.ones(N) * 3, counted in the mean like any score). At the start of each epoch before the stop
// epoch (harness infobatch_stop_epoch), the well-learned samples (score below the mean) lose a random
// `prune` fraction for that epoch, and the kept well-learned ones weigh 1 / (1 - prune) in the loss,
// so the expected gradient of an epoch stays that of the full data while it takes fewer steps. From
// the stop epoch on every sample is visited with weight 1 (annealing).
//
// plan_infobatch_epoch is the rule itself, on the host and pure (scores, seed, epoch -> the epoch's
// samples), so it can be checked by hand. InfoBatch holds a run's state on the device - one score
// and one weight per dataset index - so the step's weights are gathered and its losses scattered
// with device ops, never a host sync; scores reach the host once per epoch, to plan the next one.
// In a data-parallel run every rank records every rank's losses (the trainer all-gathers them, as
// the public code does), so all ranks hold the same scores and plan the same epochs, of which each
// reads its strided slice: the two-rank run keeps the samples the one-process run keeps.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "harness/config.h"

namespace ablate {

// One epoch's plan.
struct InfoBatchEpoch {
  int64_t epoch = -1;               // -1: nothing planned yet
  std::vector<int64_t> order;       // dataset indices the epoch visits, in visiting order
  std::vector<int64_t> upweighted;  // kept well-learned samples (weight 1 / (1 - prune)), ascending
  int64_t well_learned = 0;         // samples scored below the mean (0 when not pruning)
};

// Score of a sample not seen yet (public code: torch.ones(len(dataset)) * 3).
inline constexpr float kInfoBatchInitialScore = 3.0f;

// Plans epoch `epoch` over `pool` (dataset indices) from `scores` (indexed by dataset index). When
// epoch < stop_epoch: the mean is taken over the pool's scores (unseen ones at their initial 3.0,
// as the public code), well-learned = below that mean, and floor((1 - prune) * count) of them,
// drawn at random, are kept. If that would leave fewer than `min_kept` samples (one batch) the
// epoch is not pruned. The kept samples are shuffled. All draws come from one std::mt19937_64 seeded
// by (seed, epoch), so a plan is reproducible on any platform.
InfoBatchEpoch plan_infobatch_epoch(const std::vector<int64_t>& pool, const std::vector<float>& scores, double prune,
                                    int64_t stop_epoch, int64_t min_kept, uint64_t seed, int64_t epoch);

// A run's InfoBatch state on the device.
class InfoBatch {
 public:
  // `pool`: the dataset indices the run trains on. Scores start at kInfoBatchInitialScore.
  InfoBatch(const RunConfig& cfg, std::vector<int64_t> pool, torch::Device device);

  // Plans `epoch` from the current scores (one device -> host read) and sets the weights.
  const InfoBatchEpoch& plan(int64_t epoch);
  const InfoBatchEpoch& current() const { return plan_; }

  // (B,) float32 weights of the batch's dataset indices `indices` (B,) int64, on the device.
  torch::Tensor weights_of(const torch::Tensor& indices) const;
  // Scores of `indices` (B,) become the batch's per-sample losses `losses` (B,).
  void record(const torch::Tensor& indices, const torch::Tensor& losses);

  // For checkpoints: the scores and the current plan as named tensors, and back (DataError when they
  // do not fit this run's pool).
  std::vector<std::pair<std::string, torch::Tensor>> state() const;
  void load_state(const std::vector<std::pair<std::string, torch::Tensor>>& named);
  static const std::vector<std::string>& state_keys();

 private:
  void set_weights();

  double prune_;
  int64_t stop_epoch_, min_kept_;
  uint64_t seed_;
  std::vector<int64_t> pool_;
  torch::Tensor scores_;   // (N,) float32 latest per-sample loss per dataset index, 3.0 unseen
  torch::Tensor weights_;  // (N,) float32 loss weight per dataset index in the current epoch
  InfoBatchEpoch plan_;
};

}  // namespace ablate
