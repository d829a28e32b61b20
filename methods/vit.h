// The ViT encoder of every method (MAE's encoder): conv patch embedding, fixed 2-D sin-cos position
// embedding (optionally GSD-scaled as in Scale-MAE), CLS token, pre-norm blocks (parallel branches
// for the 12x4 billion-scale sizes) and a final LayerNorm.
//
// Parameter layout and count equal harness/model_sizes.h's encoder_params() exactly: the position
// embedding is a buffer, not a parameter. Built on the `meta` device the model allocates nothing,
// which is how the 1.3B / 2.4B counts are checked.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "harness/config.h"
#include "methods/transformer.h"

namespace ablate {

struct VitOptions {
  int64_t img_size = 64, patch = 8;
  int64_t dim = 192, depth = 12, heads = 3, branches = 1, mlp_hidden = 768;
  bool qkv_bias = true;
  double drop_path = 0.0;  // stochastic depth, linearly increasing to this rate over the blocks
  // Weights from elsewhere (methods/pretrained.h): LayerNorm eps (MAE's MaskedAutoencoderViT class
  // default is 1e-5, its factories and timm use 1e-6), and a position row for the CLS token as in
  // timm / MAE files (pos_embed (1, 1 + L, D), row 0 added to the CLS token; all zeros in MAE).
  double norm_eps = 1e-6;
  bool cls_pos_embed = false;

  int64_t grid() const { return img_size / patch; }  // patches per side
  int64_t num_patches() const { return grid() * grid(); }
  // From model.size (harness/model_sizes.h) and the rest of `model`.
  static VitOptions from(const ModelConfig& model);
};

// MAE's get_2d_sincos_pos_embed without the cls row: (grid^2, dim) float32. Token n = i*grid + j
// (row i, column j); the first dim/2 channels encode j, the last dim/2 encode i, each as
// [sin(pos * w_k), cos(pos * w_k)] with w_k = 10000^(-k / (dim/4)), k < dim/4. Computed in double.
torch::Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid);
// The same with every position multiplied by a per-sample factor (Scale-MAE: gsd / reference gsd),
// computed on scale's device: scale (B) -> (B, grid^2, dim) float32.
torch::Tensor sincos_pos_embed_2d_scaled(int64_t dim, int64_t grid, const torch::Tensor& scale);

// (B, 3, H, W) -> (B, L, p*p*3), patch-major, pixels in (row, col, channel) order as in MAE.
torch::Tensor patchify(const torch::Tensor& images, int64_t patch);
// Inverse of patchify for square images.
torch::Tensor unpatchify(const torch::Tensor& patches, int64_t patch);

// Conv p x p, stride p, as a module named patch_embed (MAE / finetune lr-decay names it so).
class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t patch, int64_t dim, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& images);  // (B, 3, H, W) -> (B, L, D)
  int64_t patch;
  torch::Tensor weight, bias;  // (D, 3, p, p), (D)
};
TORCH_MODULE(PatchEmbed);

class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(const VitOptions& options,
                                 const torch::TensorOptions& tensor_options = {});

  // Patch embedding + position embedding, no CLS: (B, 3, H, H) -> (B, g^2, D), g = H / patch
  // (rounded down, as the strided conv does). Any square size: another grid than the built one
  // gets its sin-cos embedding recomputed for g x g, as Scale-MAE's encoder does at a reduced
  // evaluation scale. `gsd_scale` (B), when defined, scales the positions per sample (Scale-MAE).
  torch::Tensor embed(const torch::Tensor& images, const torch::Tensor& gsd_scale = {});
  // Encoder on embedded tokens (B, L, D): keeps ids_keep (B, N_vis) (undefined = all), prepends
  // CLS (position 0), runs the blocks and the final norm -> (B, 1 + N_vis, D). When
  // `block_outputs` is given it receives every block's output before the final norm (CrossMAE's
  // feature mapping).
  torch::Tensor encode(const torch::Tensor& tokens, const torch::Tensor& ids_keep,
                       std::vector<torch::Tensor>* block_outputs = nullptr);
  // embed + encode.
  torch::Tensor forward_encoder(const torch::Tensor& images, const torch::Tensor& ids_keep,
                                std::vector<torch::Tensor>* block_outputs = nullptr);
  // CLS token after the final norm, nothing masked: (B, 3, H, H) -> (B, D). KNN / probes use this.
  // Any square size (see embed); with `gsd_relative` the positions of an H other than img_size are
  // scaled by img_size / H (Scale-MAE's knn --eval_gsd: a smaller image has a coarser GSD).
  torch::Tensor forward_features(const torch::Tensor& images, bool gsd_relative = false);
  torch::Tensor forward(const torch::Tensor& images) { return forward_features(images); }

  const VitOptions& options() const { return options_; }

  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token;  // (1, 1, D)
  torch::Tensor pos_embed;  // buffer (1, L, D), or (1, 1 + L, D) with options().cls_pos_embed
  std::vector<Block> blocks;  // registered as the ModuleList "blocks" (names blocks.<i>.*)
  LayerNorm norm{nullptr};

 private:
  VitOptions options_;
};
TORCH_MODULE(VisionTransformer);

}  // namespace ablate
