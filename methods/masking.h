// Which patches the encoder sees and which the decoder reconstructs, as fixed-size index tensors.
//
// MAE's random masking: per sample, argsort uniform noise; the first keep = int(L * (1 - m)) patches
// are visible (exactly MAE's formula, in double). Partial reconstruction (CrossMAE / SelectiveMAE)
// predicts n_rec = floor(r * L) of the masked patches; r = 0 means all masked ones. Every count is
// known on the host before the step, so nothing here synchronises with the device and the shapes
// are fixed (CUDA-graph friendly).
#pragma once

#include <cstdint>

#include <torch/types.h>

#include "harness/model_sizes.h"  // visible_count, recon_count: the counts, defined once

namespace ablate {

struct MaskSplit {
  torch::Tensor ids_keep;     // (B, N_vis) int64, visible patches in encoder order
  torch::Tensor ids_masked;   // (B, L - N_vis) int64
  torch::Tensor ids_restore;  // (B, L) int64: position of patch l in cat(ids_keep, ids_masked)
};

// ids_shuffle (B, L): a permutation per sample; its first n_keep entries are visible.
MaskSplit split_from_shuffle(const torch::Tensor& ids_shuffle, int64_t n_keep);
// ids_keep (B, K) chosen by some rule; the masked ids are the rest in increasing order.
MaskSplit split_from_keep(const torch::Tensor& ids_keep, int64_t patches);
// MAE's random_masking for given noise (B, L): ids_shuffle = argsort(noise) ascending, its first
// int(L * (1 - mask_ratio)) visible.
MaskSplit masking_from_noise(const torch::Tensor& noise, double mask_ratio);
// MAE random masking of B samples of L patches on `device`, from the default generator.
MaskSplit random_masking(int64_t batch, int64_t patches, double mask_ratio, torch::Device device);

// x (B, N, C), ids (B, K) -> (B, K, C): x[b, ids[b, k]].
torch::Tensor gather_tokens(const torch::Tensor& x, const torch::Tensor& ids);
// ids (B, K) -> (B, L) float, 1 at the listed patches.
torch::Tensor ids_to_mask(const torch::Tensor& ids, int64_t patches);

}  // namespace ablate
