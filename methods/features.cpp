// Scaled image preparation, batched feature extraction and the per-run feature cache (features.h).
#include "methods/features.h"

#include "methods/pch/torch_pch.h"

#include <ATen/autocast_mode.h>

#include <fmt/format.h>

#include "datasets/augment.h"
#include "harness/check.h"

namespace ablate {

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

torch::Tensor extract_features(const EmbedFn& embed, const torch::Tensor& images, double scale,
                               int64_t input_size, torch::Device device, int64_t batch) {
  ABLATE_CHECK(batch > 0 && images.size(0) > 0, "batch {} images {}", batch,
               c10::str(images.sizes()));
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t begin = 0; begin < images.size(0); begin += batch) {
    const torch::Tensor input = normalize_pixels(resize_area(
        images.slice(0, begin, begin + batch).to(device), scale, input_size));  // (b, 3, M, M)
    torch::Tensor feats;                                                        // (b, D)
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
