// The named ViT encoder sizes as pure data, and analytic parameter and FLOP counts for the encoder
// and the two decoders (MAE, CrossMAE). The LibTorch models in methods/ must match these counts
// exactly, so every formula is spelled out in model_sizes.cpp; the memory planner and reports use
// them without building a model.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "harness/config.h"

namespace ablate {

struct VitSize {
  std::string name;    // config key model.size, e.g. "vit_b"
  int dim;             // token width D
  int depth;           // layers
  int heads;           // attention heads per branch (D % heads == 0)
  int branches;        // parallel attention/MLP branches per layer, 1 = standard ViT
  double mlp_ratio;    // MLP hidden width / D
  int default_patch;   // patch side the paper uses with this size
  const char* source;  // where the size and its stated parameter count come from
  double stated_params;  // parameter count stated by the source (0 = none stated)
};

// All named sizes, smallest first.
const std::vector<VitSize>& vit_sizes();
// The size called `name`, or nullptr.
const VitSize* find_vit_size(std::string_view name);
// The size called `name`; ConfigError (key model.size, hint with the known names) if unknown.
const VitSize& vit_size(std::string_view name);

// Encoder parameters: patch embedding, cls token, `depth` layers of `branches` branches, final LN.
// The fixed sin-cos position embedding is not a parameter.
int64_t encoder_params(const VitSize& size, int patch, bool qkv_bias);
// Decoder parameters of model.decoder ("mae" or "cross") for the encoder model.size, with
// model.dec_depth / dec_dim / dec_self_attn / dec_feature_map and the patch of model.patch_size.
// Decoder blocks always have a qkv bias and an MLP ratio of 4 (model.qkv_bias is the encoder's).
int64_t decoder_params(const ModelConfig& model);
// Matmul FLOPs of one pre-training step per image (forward + backward = 3x forward).
double train_flops_per_image(const RunConfig& config);

// The one definition of the masking counts (validation, FLOPs, the memory estimate and the masking
// in methods/masking.h all use these):
// visible patches, int(L * (1 - mask_ratio)): MAE's formula, in double.
int64_t visible_count(int64_t patches, double mask_ratio);
// Patches the decoder predicts: floor(recon_ratio * L), or all masked ones (L - visible) when
// recon_ratio == 0. validate() (harness/config_io.h) keeps it within 1 .. L - visible.
int64_t recon_count(int64_t patches, double mask_ratio, double recon_ratio);

// Token counts of one image under the masking of `config` (shared by validation and FLOPs).
struct TokenCounts {
  int patches;  // L = (img_size / patch_size)^2
  int visible;  // int(L * (1 - mask_ratio)), fed to the encoder (plus the cls token)
  int masked;   // L - visible
  int recon;    // patches the decoder predicts: int(L * recon_ratio), or all masked if recon_ratio = 0
};
TokenCounts token_counts(const ModelConfig& model, const MethodConfig& method);

}  // namespace ablate
