// Named ViT sizes and their analytic parameter / FLOP counts.
//
// Layer structure (pre-norm ViT; Touvron et al. 2022 "Three things everyone should know about ViTs"
// for branches > 1):   x = x + sum_b Attn_b(LN_b(x));   x = x + sum_b MLP_b(LN'_b(x))
// so every branch owns its two LayerNorms, its attention and its MLP; a standard ViT is branches = 1.
//
// Parameter counts, with D = width, H = round(mlp_ratio * D), P = 3 * patch^2 (RGB patch pixels):
//   patch embedding (conv patch x patch, stride patch, with bias)  P*D + D
//   cls token                                                      D
//   per branch:  LN 2D | qkv 3D^2 (+3D bias) | proj D^2 + D | LN 2D | fc1 D*H + H | fc2 H*D + D
//   final LN                                                       2D
//   position embedding: fixed 2-D sin-cos, not a parameter.
// ViT-B/16 = 85.65M, ViT-L/16 = 303.1M, ViT-H/14 = 630.4M, ViT-L 12x4 without qkv bias = 605.26M:
// each within 1% of the figure its paper states (tests/harness/model_sizes_test.cpp).
#include "harness/model_sizes.h"

#include <cmath>

#include "harness/check.h"
#include "harness/config_io.h"

namespace ablate {
namespace {

int mlp_hidden(int dim, double ratio) { return int(std::lround(dim * ratio)); }

// One pre-norm transformer block of width d with an MLP of hidden width h: LN + attention + LN + MLP.
int64_t block_params(int64_t d, int64_t h, bool qkv_bias) {
  int64_t attn = 3 * d * d + (qkv_bias ? 3 * d : 0) + d * d + d;
  int64_t mlp = d * h + h + h * d + d;
  return 2 * d + attn + 2 * d + mlp;
}

// Matmul FLOPs (2*m*n*k per product) of self-attention over t tokens of width d, MLP hidden h:
// qkv, QK^T, AV, out-projection, fc1, fc2.
double self_block_flops(double t, double d, double h) {
  return 2 * t * d * 3 * d + 2 * t * t * d + 2 * t * t * d + 2 * t * d * d + 2 * t * d * h * 2;
}

}  // namespace

const std::vector<VitSize>& vit_sizes() {
  static const std::vector<VitSize> sizes = {
      {"vit_micro", 64, 2, 2, 1, 4.0, 8, "ablate: CPU test size", 0},
      {"vit_tiny", 192, 12, 3, 1, 4.0, 16, "Touvron et al. 2021 (DeiT-Ti), 5.7M", 5.7e6},
      {"vit_s", 384, 12, 6, 1, 4.0, 16, "Touvron et al. 2021 (DeiT-S), 22M", 22e6},
      // ViT-S's 12 blocks arranged as 6 layers of 2 parallel branches: exactly ViT-S's parameters,
      // for the serial-vs-parallel comparison at equal size (experiments/parallel_vs_serial.yaml).
      {"vit_s6x2", 384, 6, 6, 2, 4.0, 16, "ablate: ViT-S as 6 x 2 parallel branches", 0},
      {"vit_b", 768, 12, 12, 1, 4.0, 16, "Dosovitskiy et al. 2021 (ViT-Base), 86M", 86e6},
      {"vit_l", 1024, 24, 16, 1, 4.0, 16, "Dosovitskiy et al. 2021 (ViT-Large), 307M; 304M in MAE", 304e6},
      {"vit_h", 1280, 32, 16, 1, 4.0, 14, "Dosovitskiy et al. 2021 (ViT-Huge/14), 632M", 632e6},
      // Cha et al. 2023, "A Billion-scale Foundation Model for Remote Sensing Images": 12 layers of
      // 4 parallel branches, no qkv bias. 605.26M matches our count to 0.01%.
      {"vit_l12x4", 1024, 12, 16, 4, 4.0, 16, "Cha et al. 2023, ViT-L 12x4, 605.26M", 605.26e6},
      // Cha et al. state "1.3B" and "2.4B" for the two larger models without a width table we could
      // retrieve. 12x4 at D=1536 counts 1.36B and at D=2048 2.42B: both figures read as truncated
      // (not rounded) counts of these widths, the same way 2.42B -> "2.4B".
      {"vit_1b3", 1536, 12, 16, 4, 4.0, 16, "Cha et al. 2023, 12x4 at D=1536, stated 1.3B (truncated)", 1.3e9},
      {"vit_2b4", 2048, 12, 16, 4, 4.0, 16, "Cha et al. 2023, 12x4 at D=2048, stated 2.4B", 2.4e9},
  };
  return sizes;
}

const VitSize* find_vit_size(std::string_view name) {
  for (const VitSize& s : vit_sizes())
    if (s.name == name) return &s;
  return nullptr;
}

const VitSize& vit_size(std::string_view name) {
  if (const VitSize* s = find_vit_size(name)) return *s;
  std::vector<std::string> names;
  for (const VitSize& s : vit_sizes()) names.push_back(s.name);
  throw ConfigError("", "model.size", fmt::format("unknown model size '{}'", name),
                    choices_hint(name, names));
}

int64_t encoder_params(const VitSize& s, int patch, bool qkv_bias) {
  const int64_t d = s.dim, pixels = 3LL * patch * patch;
  int64_t total = pixels * d + d;  // patch embedding conv
  total += d;                      // cls token
  total += int64_t(s.depth) * s.branches * block_params(d, mlp_hidden(s.dim, s.mlp_ratio), qkv_bias);
  total += 2 * d;  // final LN
  return total;
}

// MAE decoder (He et al. 2022): embed D->d (+bias), mask token d, dec_depth standard blocks of width
// d (mlp_ratio 4, qkv bias always on), LN, prediction d -> 3 p^2 (+bias).
//
// CrossMAE decoder (Fu et al. 2024, "Rethinking Patch Dependence for MAEs", public models_cross.py):
// queries are mask token + fixed position; each block is
//   [dec_self_attn: LN 2d + qkv 3d^2+3d + proj d^2+d]
//   LN 2d | q d^2+d | kv from the encoder width: D*2d + 2d | proj d^2+d | LN 2d | MLP 8d^2+5d
// followed by LN 2d and the prediction d -> 3 p^2. The memory is the encoder output (already normed
// by the encoder's final LN). With dec_feature_map the memory of decoder block i is a learned mix of
// the outputs of all `depth` encoder layers: a bias-free Linear(depth -> dec_depth) (depth*dec_depth
// weights) and a LN(D) per decoder block (public CrossMAE code).
int64_t decoder_params(const ModelConfig& m) {
  const VitSize& s = vit_size(m.size);
  const int64_t D = s.dim, d = m.dec_dim, out = 3LL * m.patch_size * m.patch_size;
  const int64_t pred = d * out + out, final_norm = 2 * d, mask_token = d;
  if (m.decoder == DecoderKind::mae) {
    return D * d + d + mask_token + m.dec_depth * block_params(d, 4 * d, true) + final_norm + pred;
  }
  // The cross decoder.
  int64_t cross_block = 2 * d + (d * d + d) + (D * 2 * d + 2 * d) + (d * d + d) + 2 * d + (8 * d * d + 5 * d);
  int64_t self_attn = m.dec_self_attn ? 2 * d + 3 * d * d + 3 * d + d * d + d : 0;
  int64_t feature_map = m.dec_feature_map ? int64_t(s.depth) * m.dec_depth + m.dec_depth * 2 * D : 0;
  return mask_token + m.dec_depth * (cross_block + self_attn) + feature_map + final_norm + pred;
}

int64_t visible_count(int64_t patches, double mask_ratio) {
  return static_cast<int64_t>(static_cast<double>(patches) * (1.0 - mask_ratio));
}

int64_t recon_count(int64_t patches, double mask_ratio, double recon_ratio) {
  if (recon_ratio == 0.0) return patches - visible_count(patches, mask_ratio);
  return static_cast<int64_t>(std::floor(recon_ratio * static_cast<double>(patches)));
}

TokenCounts token_counts(const ModelConfig& model, const MethodConfig& method) {
  TokenCounts t;
  int side = model.img_size / model.patch_size;
  t.patches = side * side;
  t.visible = static_cast<int>(visible_count(t.patches, method.mask_ratio));
  t.masked = t.patches - t.visible;
  t.recon = static_cast<int>(recon_count(t.patches, method.mask_ratio, method.recon_ratio));
  return t;
}

// Forward matmul FLOPs, then x3 for the backward pass (two matmuls per forward matmul).
//   encoder: patch embedding of the visible patches 2*N_vis*P*D, then per layer and branch
//            self_block_flops over T = N_vis + 1 tokens (cls included).
//   MAE decoder: embed 2*T*D*d, dec_depth self-attention blocks over L + 1 tokens, prediction
//            2*L*d*P.
//   CrossMAE decoder: Q = recon queries, M = N_vis + 1 memory tokens; per block q 2Qd^2,
//            kv 2*M*D*2d, QK^T and AV 2*Q*M*d each, proj 2Qd^2, MLP 16Qd^2, plus self-attention
//            among the queries if enabled; feature mixing 2*M*D*depth*dec_depth; prediction 2*Q*d*P.
// Not counted: LayerNorm, softmax, GELU, the loss, and the second view of crossscale.
double train_flops_per_image(const RunConfig& c) {
  const VitSize& s = vit_size(c.model.size);
  const TokenCounts n = token_counts(c.model, c.method);
  const double D = s.dim, P = 3.0 * c.model.patch_size * c.model.patch_size;
  const double T = n.visible + 1, d = c.model.dec_dim;

  double enc = 2 * n.visible * P * D +
               double(s.depth) * s.branches * self_block_flops(T, D, mlp_hidden(s.dim, s.mlp_ratio));
  double dec = 0;
  if (c.model.decoder == DecoderKind::mae) {
    double td = n.patches + 1;
    dec = 2 * T * D * d + c.model.dec_depth * self_block_flops(td, d, 4 * d) + 2 * n.patches * d * P;
  } else {
    double Q = n.recon, M = T;
    double cross = 2 * Q * d * d + 2 * M * D * 2 * d + 2 * 2 * Q * M * d + 2 * Q * d * d + 2 * Q * d * 4 * d * 2;
    double self = c.model.dec_self_attn ? self_block_flops(Q, d, 0) : 0;
    double mix = c.model.dec_feature_map ? 2 * M * D * s.depth * c.model.dec_depth : 0;
    dec = c.model.dec_depth * (cross + self) + mix + 2 * Q * d * P;
  }
  return 3 * (enc + dec);
}

}  // namespace ablate
