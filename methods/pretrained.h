// Encoder weights that `ablate` did not train, in and out: a `.pth` (torch.save, read by
// methods/torch_checkpoint.h) or `.safetensors` file becomes ablate's ViT encoder (methods/vit.h),
// and an encoder becomes the tensors timm and the MAE code expect.
//
// Accepted key layouts, recognised from the names (no layout argument needed):
//  - MAE / SelectiveMAE / CrossMAE / Cross-Scale MAE training checkpoints ({'model': ...}: encoder
//    plus decoder, mask token, heads) and their released encoder-only files;
//  - timm VisionTransformer state dicts (`save_for_hf`'s model.safetensors, pytorch_model.bin), with
//    `pos_embed` (1, 1 + L, D) holding a CLS row or (1, L, D) without one;
//  - prefixes `module.` (DDP), `_orig_mod.` (torch.compile), `encoder.`, `backbone.`, `model.`;
//  - fused `attn.qkv` or split `attn.{q,k,v}` / `attn.{q,k,v}_proj` projections, and BEiT-style
//    `attn.q_bias` / `attn.v_bias` (no k bias);
//  - parallel blocks in timm's ParallelThingsBlock layout (`blocks.i.attns.b.*`, `blocks.i.ffns.b.*`).
// The architecture (width, depth, patch, input size, MLP width, qkv bias, branches) is read from the
// tensor shapes; heads and LayerNorm eps cannot be, so they are options. Entries outside the
// encoder's names (decoder*, mask_token, head, projectors, ...) are listed as ignored; inside them
// every tensor must match: otherwise a DataError lists the missing, unexpected and mis-shaped keys
// with their shapes. The features are the file's at its own input size (no position resampling).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "methods/vit.h"

namespace ablate {

struct PretrainedOptions {
  // Attention heads; 0: the named size (harness/model_sizes.h) with the file's width, depth and
  // branches, else width / 64 (ViT's head width).
  int64_t heads = 0;
  // LayerNorm eps the weights were trained with: 1e-6 in MAE's factories (mae_vit_base_patch16...)
  // and timm; MAE's MaskedAutoencoderViT class default (a custom size) is 1e-5.
  double norm_eps = 1e-6;
  // The architecture the file must have (e.g. VitOptions::from a declared model config, heads and
  // norm_eps as above); unset: read from the shapes. The file's CLS position row is a layout
  // detail, taken from the file either way. A file that does not fit is a DataError listing the
  // missing, unexpected and mis-shaped keys.
  std::optional<VitOptions> architecture;
};

struct PretrainedEncoder {
  VisionTransformer vit{nullptr};  // CPU, float32, eval mode
  std::string sha256;              // of the file's bytes: part of an evaluation's identity
  std::vector<std::string> ignored;  // file entries outside the encoder, "name [d0, d1]"
};

// Reads `file` (.safetensors by extension, else a torch.save archive) into a new ViT. Throws
// DataError naming the file on an unreadable file or a key/shape mismatch.
PretrainedEncoder load_pretrained_encoder(const std::filesystem::path& file, const PretrainedOptions& options = {});

// The encoder's tensors under timm's VisionTransformer names (also MAE's encoder names), as
// `timm.create_model(..., num_classes=0)` holds them: patch_embed.proj.*, cls_token, pos_embed
// (1, 1 + L, D) with the CLS row (zeros unless the weights came with one), blocks.i.*, norm.*.
// Parallel blocks use timm's ParallelThingsBlock names. CPU copies.
std::map<std::string, torch::Tensor> timm_encoder_tensors(VisionTransformerImpl& vit);

// The timm `architecture` name of this encoder's width and heads (e.g. vit_base_patch16_224,
// vit_small_patch16_18x2_224 for two branches); every other field goes into config.json's
// model_args. Throws ConfigError for more than two branches (timm's ParallelThingsBlock has two,
// not settable from config.json).
std::string timm_architecture(const VitOptions& options);

// timm's `save_for_hf` layout in `dir` (created): model.safetensors (timm_encoder_tensors) and
// config.json (architecture, num_classes 0, num_features, global_pool "token", model_args with every
// size field, pretrained_cfg with input size and `mean` / `std`), which
// `timm.create_model('local-dir:DIR', pretrained=True)` loads. ConfigError when timm cannot express
// the encoder (more than two branches, LayerNorm eps other than timm's 1e-6).
void export_timm(VisionTransformerImpl& vit, const std::filesystem::path& dir, const std::array<double, 3>& mean,
                 const std::array<double, 3>& std);

// MAE's released-encoder layout: torch.save({'model': timm_encoder_tensors(vit)}), which MAE's
// fine-tuning code (models_vit + interpolate_pos_embed) and load_pretrained_encoder read.
void export_mae_pth(VisionTransformerImpl& vit, const std::filesystem::path& file);

}  // namespace ablate
