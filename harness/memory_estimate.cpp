// Peak-memory model of a pre-training step (see memory_estimate.h).
//
// Persistent state per parameter: fp32 weight 4 B, fp32 gradient 4 B, AdamW moments 8 B, and under
// bf16 autocast the bf16 copy of each weight that autocast caches for the step, 2 B.
//
// Activations saved for backward, per token, for a pre-norm block of width w and MLP hidden h under
// bf16 autocast with fused (flash / memory-efficient) attention, where the residual stream stays
// fp32 (r = 4 B) and matmul inputs/outputs are bf16 (a = 2 B; a = 4 B when training in fp32):
//   LayerNorm inputs          2 x r*w   (the residual stream; branches share it)
//   per branch: LN1 output a*w, q/k/v 3a*w, attention output a*w (+ 4 B logsumexp per head),
//               LN2 output a*w, fc1 output and GELU output 2a*h
// = 36 w bytes per token for a standard bf16 ViT block (h = 4w). A CrossMAE block saves, per query
// token, 2 x r*d + a*(LN out, q, attention out, LN2 out) + 2a*h (32 d for h = 4d), and per memory
// token the bf16 cast of the memory plus its keys and values, a*(D + 2d), in every block (autocast
// does not cache casts of activations). On top: the cast input pixels of the patch embedding, the
// final norms, the prediction and the fp32 loss tensors (prediction, target, difference).
// Cross-Scale MAE runs encoder and decoder on two views, so its activations count twice.
//
// Not modelled: HOG scoring and masking (transient, freed before the activations peak) and the
// CUDA context (fits_gpu adds a margin for it).
#include "harness/memory_estimate.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/model_sizes.h"

namespace ablate {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kResidualBytes = 4;  // fp32 residual stream

// Saved bytes per token of one self-attention block with `branches` parallel branches.
double self_block_bytes(double w, double h, int heads, int branches, double a) {
  return 2 * kResidualBytes * w + branches * (a * (w + 3 * w + w + w + 2 * h) + 4.0 * heads);
}

}  // namespace

MemoryEstimate estimate_peak_memory(const RunConfig& c, int ranks) {
  ABLATE_CHECK(ranks >= 1, "ranks must be positive, got {}", ranks);
  const VitSize& s = vit_size(c.model.size);
  const TokenCounts n = token_counts(c.model, c.method);
  const bool bf16 = c.train.precision != Precision::fp32;
  const double a = bf16 ? 2 : 4;
  const double D = s.dim, H = std::lround(s.dim * s.mlp_ratio), d = c.model.dec_dim;
  const double P = 3.0 * c.model.patch_size * c.model.patch_size;  // values per patch
  const double T = n.visible + 1;                                  // encoder tokens (cls included)
  const double pixels = 3.0 * c.model.img_size * c.model.img_size;

  // ---- per image activations ----
  double enc = a * pixels + s.depth * T * self_block_bytes(D, H, s.heads, s.branches, a) +
               kResidualBytes * D * T;  // final LN input
  double dec = 0, q = 0;
  if (c.model.decoder == DecoderKind::mae) {
    q = n.patches + 1;  // mask tokens for every patch, plus cls
    dec = a * D * T + c.model.dec_depth * q * self_block_bytes(d, 4 * d, c.model.dec_heads, 1, a);
  } else {
    q = n.recon;
    const double per_query = 2 * kResidualBytes * d + a * 4 * d + 2 * a * 4 * d + 4.0 * c.model.dec_heads;
    const double self_attn = c.model.dec_self_attn ? kResidualBytes * d + a * 5 * d : 0;
    const double per_memory = c.model.dec_feature_map ? 2 * kResidualBytes * D + a * (D + 2 * d) : a * (D + 2 * d);
    dec = c.model.dec_depth * (q * (per_query + self_attn) + T * per_memory);
  }
  const double pred_rows = c.model.decoder == DecoderKind::mae ? n.patches : n.recon;
  dec += (kResidualBytes + a) * d * q + a * P * pred_rows + 3 * 4.0 * P * pred_rows;
  double per_image = enc + dec;
  if (c.method.name == MethodKind::crossscale && c.method.multiscale) per_image *= 2;

  // ---- state ----
  int64_t params = encoder_params(s, c.model.patch_size, c.model.qkv_bias) + decoder_params(c.model);
  if (c.method.name == MethodKind::crossscale && c.method.loss_cc && c.method.proj_head)
    params += static_cast<int64_t>(D * 4 * D + 4 * D + 4 * D * D + D);  // MLP projection head
  const double per_param = 16 + (bf16 ? 2 : 0);

  const double batch = std::ceil(static_cast<double>(c.train.batch) / ranks);
  MemoryEstimate e;
  e.state_gib = static_cast<double>(params) * per_param / kGiB;
  e.activations_gib = batch * per_image / kGiB;
  // The step's static input buffer and the loader's batch (fp32), and ~256 MiB of library
  // workspaces (cuBLAS, cuDNN, SDPA).
  e.workspace_gib = 2 * batch * pixels * 4 / kGiB + 0.25;
  return e;
}

double planned_peak_gib(const RunConfig& c) {
  return c.resources.mem_gb > 0 ? c.resources.mem_gb
                                : estimate_peak_memory(c, std::max(1, c.resources.gpus)).total_gib();
}

bool fits_gpu(double peak_gib, double gpu_gib) {
  // 10% for fragmentation of the caching allocator, 1 GiB for the CUDA context and kernels.
  return peak_gib * 1.1 + 1.0 <= gpu_gib;
}

int derive_gpu_count(const RunConfig& c) {
  for (int k = 1; k <= c.train.batch; k *= 2) {
    if (c.train.batch % k != 0) break;
    if (fits_gpu(estimate_peak_memory(c, k).total_gib(), c.resources.gpu_mem_gb)) return k;
  }
  const MemoryEstimate one = estimate_peak_memory(c, c.train.batch);
  throw ConfigError("", "resources.gpus",
                    fmt::format("no data-parallel split of train.batch {} fits a {} GiB GPU (one sample per rank "
                                "needs about {:.1f} GiB, {:.1f} of it weights and optimizer state)",
                                c.train.batch, c.resources.gpu_mem_gb, one.total_gib(), one.state_gib),
                    "set resources.gpus explicitly, a larger resources.gpu_mem_gb, or a smaller model");
}

}  // namespace ablate
