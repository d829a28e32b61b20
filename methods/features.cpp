// Scaled image preparation, batched feature extraction and the per-run feature cache (features.h).
#include "methods/features.h"

#include "methods/pch/torch_pch.h"

#include <ATen/autocast_mode.h>

#include <cmath>

#include <fmt/format.h>

#include "harness/check.h"

namespace ablate {

namespace F = torch::nn::functional;

CudaBf16Autocast::CudaBf16Autocast(torch::Device device) : active_(device.is_cuda()) {
  if (!active_) return;
  was_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
  previous_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::increment_nesting();
}

CudaBf16Autocast::~CudaBf16Autocast() {
  if (!active_) return;
  // Leaving the outermost autocast region frees the casted weight copies it cached.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(at::kCUDA, was_enabled_);
  at::autocast::set_autocast_dtype(at::kCUDA, previous_dtype_);
}

torch::Tensor normalize_imagenet(const torch::Tensor& images01) {
  ABLATE_CHECK(images01.dim() == 4 && images01.size(1) == 3, "images {}",
               c10::str(images01.sizes()));
  const auto opts = images01.options();
  const torch::Tensor mean = torch::tensor({0.485, 0.456, 0.406}, opts).view({1, 3, 1, 1});
  const torch::Tensor std = torch::tensor({0.229, 0.224, 0.225}, opts).view({1, 3, 1, 1});
  return (images01 - mean) / std;
}

torch::Tensor prepare_images(const torch::Tensor& images, double scale, int64_t input_size) {
  ABLATE_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == images.size(3),
               "expected square (B, 3, S, S) images, got {}", c10::str(images.sizes()));
  ABLATE_CHECK(scale > 0 && scale <= 1 && input_size > 0, "scale {} input {}", scale, input_size);
  const int64_t native = images.size(2);
  const int64_t scaled = std::lround(scale * static_cast<double>(native));
  ABLATE_CHECK(scaled >= 1, "scale {} of side {} leaves no pixels", scale, native);
  torch::Tensor x = images.to(torch::kFloat32).div(255.0);  // (B, 3, S, S)
  // Area downsampling = each output pixel the mean of the input pixels it covers.
  if (scaled != native) x = torch::adaptive_avg_pool2d(x, {scaled, scaled});  // (B, 3, s, s)
  if (scaled != input_size) {
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{input_size, input_size})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(true));  // (B, 3, M, M)
  }
  return normalize_imagenet(x);
}

torch::Tensor extract_features(const EmbedFn& embed, const torch::Tensor& images, double scale,
                               int64_t input_size, torch::Device device, int64_t batch) {
  ABLATE_CHECK(batch > 0 && images.size(0) > 0, "batch {} images {}", batch, c10::str(images.sizes()));
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t begin = 0; begin < images.size(0); begin += batch) {
    const torch::Tensor input =
        prepare_images(images.slice(0, begin, begin + batch).to(device), scale, input_size);
    torch::Tensor feats;  // (b, D)
    {
      CudaBf16Autocast autocast(device);
      feats = embed(input);
    }
    ABLATE_CHECK(feats.dim() == 2 && feats.size(0) == input.size(0),
                 "embed returned {} for {} images", c10::str(feats.sizes()), input.size(0));
    parts.push_back(feats.to(torch::kCPU, torch::kFloat32));
  }
  return torch::cat(parts, 0);  // (N, D)
}

std::string FeatureCacheKey::text() const {
  return fmt::format("checkpoint={};split={};scale={:.17g};input={}", checkpoint_hash, split_hash,
                     scale, input_size);
}

std::filesystem::path feature_cache_file(const std::filesystem::path& run_dir,
                                         const std::string& split, double scale) {
  return run_dir / "features" / fmt::format("{}_{:g}.pt", split, scale);
}

torch::Tensor cached_features(const std::filesystem::path& run_dir, const std::string& split,
                              const FeatureCacheKey& key,
                              const std::function<torch::Tensor()>& compute) {
  const std::filesystem::path file = feature_cache_file(run_dir, split, key.scale);
  if (std::filesystem::exists(file)) {
    try {
      torch::serialize::InputArchive archive;
      archive.load_from(file.string());
      c10::IValue stored_key;
      torch::Tensor feats;
      if (archive.try_read("key", stored_key) && stored_key.isString() &&
          stored_key.toStringRef() == key.text() && archive.try_read("features", feats)) {
        return feats;
      }
    } catch (const c10::Error&) {
      // A truncated or foreign file: recompute and overwrite it below.
    }
  }
  torch::Tensor feats = compute().to(torch::kCPU, torch::kFloat32);  // (N, D)
  std::filesystem::create_directories(file.parent_path());
  const std::filesystem::path tmp = file.string() + ".tmp";
  torch::serialize::OutputArchive archive;
  archive.write("key", c10::IValue(key.text()));
  archive.write("features", feats);
  archive.save_to(tmp.string());
  std::filesystem::rename(tmp, file);
  return feats;
}

}  // namespace ablate
