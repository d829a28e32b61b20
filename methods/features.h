// Frozen-encoder features of an image set at a chosen input scale, and their per-run cache.
//
// Scale-MAE's multi-scale KNN protocol (mae/eval/knn.py, 89280d8): at scale s < 1 the image is
// area-downsampled to round(s * input_size) pixels (losing detail, as a coarser ground sample
// distance would) and encoded AT THAT SIZE: fewer tokens, the sin-cos position embedding computed
// for that grid (methods/vit.h embed), optionally GSD-scaled by the caller's encoder
// (forward_features gsd_relative, eval.knn_gsd). eval.knn_resize "upsample" instead resizes the
// reduced image bilinearly back to input_size (ablate before issue 14). At scale 1 both prepare
// the image as every protocol does: bilinear to input_size (skipped when already that size). The
// encoder is passed in as a plain function (images -> features) so this file depends on no model
// class. Features are kept in float32 on the CPU: small (N x D), cacheable, and movable to any
// device.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include <torch/types.h>

#include "datasets/augment.h"
#include "harness/config.h"

namespace ablate {

// Normalised images (B, 3, M, M) -> features (B, D). Called under no_grad; the caller puts the
// underlying module in eval mode.
using EmbedFn = std::function<torch::Tensor(const torch::Tensor&)>;

// Enables bf16 autocast for CUDA ops while alive (no-op on other devices), restoring the previous
// state on exit: the precision MAE-style models are run in on the GPU.
class CudaBf16Autocast {
 public:
  explicit CudaBf16Autocast(torch::Device device);
  ~CudaBf16Autocast();
  CudaBf16Autocast(const CudaBf16Autocast&) = delete;
  CudaBf16Autocast& operator=(const CudaBf16Autocast&) = delete;

 private:
  bool active_ = false;
  bool was_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kFloat16;
};

// How images are brought to a KNN scale.
struct ScaleProtocol {
  bool encode_at_scale = true;        // eval.knn_resize "encode" (Scale-MAE) | "upsample"
  PixelStats stats = kImageNetStats;  // eval.knn_norm "imagenet" | "dataset" (Scale-MAE)
  std::string text() const;           // part of the feature cache key
};
// From eval.knn_resize and eval.knn_norm; "dataset" takes eval.dataset's statistics from the
// registry (ConfigError at eval.knn_norm when it has none).
ScaleProtocol scale_protocol(const EvalConfig& eval);

// The encoder input at `scale` of pixel images (B, 3, S, S) (uint8 or float 0..255): with
// encode_at_scale and scale < 1, resized to round(scale * input_size) (datasets/augment.h
// resize_side: area when smaller), else area-downsampled to round(scale * S) and resized
// bilinearly to input_size (resize_area); then normalised with protocol.stats. Float (B, 3, M, M).
torch::Tensor scaled_input(const torch::Tensor& images, double scale, int64_t input_size,
                           const ScaleProtocol& protocol = {});

// Features (N, D) float32 on the CPU of uint8 images (N, 3, S, S) (any device) at `scale`: batches
// of `batch` are moved to `device`, prepared by scaled_input and embedded under no_grad, with bf16
// autocast on CUDA.
torch::Tensor extract_features(const EmbedFn& embed, const torch::Tensor& images, double scale,
                               int64_t input_size, torch::Device device, int64_t batch = 256,
                               const ScaleProtocol& protocol = {});

// What the cached features of one split at one scale depend on; a cache entry whose key text
// differs is recomputed.
struct FeatureCacheKey {
  std::string checkpoint_hash;  // identity of the encoder weights
  std::string split_hash;       // identity of the images, in order
  double scale = 1.0;
  int64_t input_size = 0;
  std::string protocol;  // ScaleProtocol::text() and the encoder's GSD mode
  std::string text() const;
};

// run_dir/features/<split>_<scale>.pt, e.g. "features/val_0.25.pt".
std::filesystem::path feature_cache_file(const std::filesystem::path& run_dir,
                                         const std::string& split, double scale);

// The cached features for `key` when the cache file holds them, otherwise compute() (N, D), which
// is then written (to a temporary file renamed into place, so an interrupted write leaves no torn
// entry). An unreadable cache file is treated as absent.
torch::Tensor cached_features(const std::filesystem::path& run_dir, const std::string& split,
                              const FeatureCacheKey& key,
                              const std::function<torch::Tensor()>& compute);

}  // namespace ablate
