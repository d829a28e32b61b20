// Frozen-encoder features of an image set at a chosen input scale, and their per-run cache.
//
// Scale-MAE's multi-scale KNN protocol: an image of native side S is area-downsampled to
// round(scale * S) (losing detail, as a coarser ground sample distance would) and then resized
// bilinearly to the model's input side, so every scale is embedded at the same resolution. The
// encoder is passed in as a plain function (images -> features) so this file depends on no model
// class. Features are kept in float32 on the CPU: small (N x D), cacheable, and movable to any
// device.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include <torch/types.h>

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

// Features (N, D) float32 on the CPU of uint8 images (N, 3, S, S) (any device) at `scale`: batches
// of `batch` are moved to `device`, area-downsampled to round(scale * S) and resized bilinearly to
// input_size (datasets/augment.h resize_area), ImageNet-normalised (normalize_pixels) and embedded
// under no_grad, with bf16 autocast on CUDA.
torch::Tensor extract_features(const EmbedFn& embed, const torch::Tensor& images, double scale,
                               int64_t input_size, torch::Device device, int64_t batch = 256);

// What the cached features of one split at one scale depend on; a cache entry whose key text
// differs is recomputed.
struct FeatureCacheKey {
  std::string checkpoint_hash;  // identity of the encoder weights
  std::string split_hash;       // identity of the images, in order
  double scale = 1.0;
  int64_t input_size = 0;
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
