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
// one-token-at-a-time version.
//
// Two ways through a blend (method.psts_mix):
//  * "sample" (psts_fill): each sample is wholly one stage, drawn with the blend weights; random
//    picks are drawn per sample. Same expectation as the public code, not the same picks.
//  * "split" (psts_fill_split): the public code's token_expansion (Fengxiang23/SelectiveMAE
//    02a47c3, TokenSelect_smooth): every sample splits each round's m picks by the weights,
//    n_first = int(w_first * m) for the earlier stage of the blend and the rest for the later one
//    (its near = int((1 - c/20) m) in stage 2, far = int((1 - c/20) m) in stage 4), near = the
//    highest max-similarity, far = the lowest, random = positions of one permutation shared by
//    the batch over the similarity-sorted list; picks and the remaining list keep the public
//    code's order, so with the same permutations the selections are identical
//    (tests/parity/selectivemae_psts_test.cpp). Its schedule is per epoch; the weights here come
//    from the step's progress, so inside a blend epoch they move a little within the epoch.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "harness/config.h"

namespace ablate {

// Probabilities of (near, far, random); index order of the device weight tensor.
using PstsWeights = std::array<double, 3>;
inline constexpr int64_t kPstsNear = static_cast<int64_t>(PstsStage::near);
inline constexpr int64_t kPstsFar = static_cast<int64_t>(PstsStage::far);
inline constexpr int64_t kPstsRandom = static_cast<int64_t>(PstsStage::random);

// progress in [0, 1] of training; order a permutation of {near, far, random}; bounds 4
// increasing fractions b0..b3: stage order[0] until b0, linear blend to order[1] until b1,
// order[1] until b2, blend to order[2] until b3, then order[2].
PstsWeights psts_stage_weights(double progress, const std::vector<PstsStage>& order,
                               const std::vector<double>& bounds);

// weights (3,) on the device -> (B,) int64 stage per sample drawn from them (inverse CDF of one
// uniform per sample; default generator).
torch::Tensor psts_draw_stages(const torch::Tensor& weights, int64_t batch);

// features (B, L, C) (detached), seed_ids (B, S), stages (B,) -> ids_keep (B, n_keep): the seed
// followed by the patches added in `chunks` rounds, per sample according to its stage.
torch::Tensor psts_fill(const torch::Tensor& features, const torch::Tensor& seed_ids, int64_t n_keep,
                        const torch::Tensor& stages, int64_t chunks = 2);

// Picks per (near, far, random) of one round of m under weights (3,) (any device, float) with the
// stage order `order`: (3,) int64 on the weights' device, no host sync. A count is
// floor(w * m + 1e-6), the exact floor of the weight's fraction of m (the slack keeps float32
// weights such as 0.35f = 0.3499999940 at 7 of 20). The public code's int((1 - c/20) * m) in double
// drops one below that where the product lands just under an integer (c = 16 with m a multiple of
// 5, c = 18 with m a multiple of 10: e.g. 0 near and 5 far of 5 at c = 16, here 1 and 4).
torch::Tensor psts_split_counts(const torch::Tensor& weights, const std::vector<PstsStage>& order, int64_t m);

struct PstsSelection {
  torch::Tensor selected;    // (B, n_keep) int64: the seed, then each round's picks in order
  torch::Tensor unselected;  // (B, L - n_keep) int64, in the public code's order
};
// (1, n) float keys of round `round` over the n positions of the similarity-sorted unselected
// list; a random pick takes the smallest keys among the eligible positions. Default: uniform.
using PstsRandomKeys = std::function<torch::Tensor(int64_t round, int64_t n)>;

// The "split" expansion (see above): features (B, L, C) (detached), seed_ids (B, S) -> the
// selection; the unselected list starts as the other patches in increasing order.
PstsSelection psts_fill_split(const torch::Tensor& features, const torch::Tensor& seed_ids, int64_t n_keep,
                              const torch::Tensor& weights, const std::vector<PstsStage>& order,
                              int64_t chunks = 2, const PstsRandomKeys& keys = {});

}  // namespace ablate
