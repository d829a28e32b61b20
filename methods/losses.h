// Loss functions of the pre-training methods. Every function returns per-sample values (B,) in
// float32 (whatever the autocast dtype of its inputs); the method averages them and hands the
// per-sample values to InfoBatch.
//
//  * reconstruction: MAE's MSE on the predicted patches, target pixels normalised per patch
//    (mean, unbiased variance + 1e-6, exactly MAE's norm_pix_loss) when norm_pix.
//  * nt_xent: NT-Xent over 2N views: each view's positive is its partner, the other 2N - 2 views
//    are negatives, cosine similarity / tau; per sample the mean of its two views. The denominator
//    is SimCLR's (positive + negatives: a cross-entropy, >= 0) or Cross-Scale MAE's public
//    util/contrast_loss.py (negatives only, + 1e-8: -log(pos / (sum neg + eps)), can be negative).
//  * cosine (negative-free, BYOL): 2 - 2 cos(a, b) = || a/|a| - b/|b| ||^2.
//  * token_mse / token_infonce: cross-prediction between token sequences aligned by position
//    (B, N, d): MSE over positives only, or InfoNCE whose negatives for sample b at position n are
//    the other samples' targets at the same position n.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace ablate {

// images (B, 3, H, W), ids (B, N) -> (B, N, p*p*3) target pixels of those patches.
torch::Tensor patch_targets(const torch::Tensor& images, int64_t patch, const torch::Tensor& ids,
                            bool norm_pix);
// pred, target (B, N, P) -> (B,) mean squared error per sample.
torch::Tensor reconstruction_loss(const torch::Tensor& pred, const torch::Tensor& target);
enum class NtXentDenominator { all, negatives };
// a, b (N, D) paired views -> (N,). The mean over samples is the public code's loss value.
torch::Tensor nt_xent(const torch::Tensor& a, const torch::Tensor& b, double temperature,
                      NtXentDenominator denominator = NtXentDenominator::all);
// a, b (N, D) -> (N,).
torch::Tensor cosine_loss(const torch::Tensor& a, const torch::Tensor& b);
// pred, target (B, N, d) -> (B,): mean over positions and channels of the squared error.
torch::Tensor token_mse(const torch::Tensor& pred, const torch::Tensor& target);
// pred, target (B, N, d) -> (B,): mean over positions of the cross-entropy of picking the own
// target among the B targets at that position (cosine similarity / tau).
torch::Tensor token_infonce(const torch::Tensor& pred, const torch::Tensor& target, double temperature);

}  // namespace ablate
