// SelectiveMAE's Progressive Semantic Token Selection (PSTS) for the visible set.
//
// A seed of floor(L * (1 - m) / 2) visible patches is chosen by HOG (the caller's job); the rest of
// the visible budget is filled from the unselected patches by comparing each one's feature (patch
// embedding + position embedding, detached) with its most similar selected patch (cosine):
//   near   = take the unselected patches MOST similar to the selected set (easy, redundant),
//   far    = take the LEAST similar ones (complementary),
//   random = uniform.
// Training moves through three stages (default near -> far -> random) with linear blends between
// them; psts_stage_weights gives the stage probabilities at a point of training on the host, and
// the step receives them as a (3,) device tensor, so a captured CUDA graph replays with changing
// weights. Each sample draws its own stage from the weights (fixed shapes, no host sync).
//
// Filling is done in `chunks` rounds: each round recomputes every unselected patch's best
// similarity to the current selection and adds the next share of patches. chunks = 2 is what the
// public code does (expansion_multiple_stage = 2); chunks = budget is the fully iterative,
// one-token-at-a-time version. Differences from the public code: during a blend the public code
// mixes near and far picks inside every sample (a count split), here a sample is wholly near or far
// with the blend probability, which has the same expectation; its random stage permutes positions
// once per batch, ours draws per sample.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace ablate {

// Probabilities of (near, far, random); index order of the device weight tensor.
using PstsWeights = std::array<double, 3>;
inline constexpr int64_t kPstsNear = 0, kPstsFar = 1, kPstsRandom = 2;

// progress in [0, 1] of training; order a permutation of {"near", "far", "random"}; bounds 4
// increasing fractions b0..b3: stage order[0] until b0, linear blend to order[1] until b1,
// order[1] until b2, blend to order[2] until b3, then order[2].
PstsWeights psts_stage_weights(double progress, const std::vector<std::string>& order,
                               const std::vector<double>& bounds);

// weights (3,) on the device -> (B,) int64 stage per sample drawn from them (inverse CDF of one
// uniform per sample; default generator).
torch::Tensor psts_draw_stages(const torch::Tensor& weights, int64_t batch);

// features (B, L, C) (detached), seed_ids (B, S), stages (B,) -> ids_keep (B, n_keep): the seed
// followed by the patches added in `chunks` rounds, per sample according to its stage.
torch::Tensor psts_fill(const torch::Tensor& features, const torch::Tensor& seed_ids, int64_t n_keep,
                        const torch::Tensor& stages, int64_t chunks = 2);

}  // namespace ablate
