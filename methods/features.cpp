// Scaled image preparation, batched feature extraction and the per-run feature cache (features.h).
#include "methods/features.h"

#include "pch/torch_pch.h"

#include <ATen/autocast_mode.h>

#include <fmt/format.h>

#include "datasets/augment.h"
#include "datasets/registry.h"
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

std::string ScaleProtocol::text() const {
  return fmt::format("{};mean={:.9g},{:.9g},{:.9g};std={:.9g},{:.9g},{:.9g}",
                     encode_at_scale ? "encode" : "upsample", stats.mean[0], stats.mean[1],
                     stats.mean[2], stats.std[0], stats.std[1], stats.std[2]);
}

ScaleProtocol scale_protocol(const EvalConfig& eval) {
  ScaleProtocol p;
  p.encode_at_scale = eval.knn_resize == KnnResize::encode;
  if (eval.knn_norm == KnnNorm::dataset) {
    const DatasetSpec spec = dataset_spec(eval.dataset);
    if (spec.pixel_mean.size() != 3 || spec.pixel_std.size() != 3)
      throw ConfigError("", "eval.knn_norm",
                        fmt::format("no pixel statistics are known for dataset '{}'", eval.dataset),
                        "use eval.knn_norm: imagenet");
    for (int c = 0; c < 3; ++c) {
      p.stats.mean[c] = spec.pixel_mean[c];
      p.stats.std[c] = spec.pixel_std[c];
    }
  }
  return p;
}

torch::Tensor scaled_input(const torch::Tensor& images, double scale, int64_t input_size,
                           const ScaleProtocol& protocol) {
  ABLATE_CHECK(scale > 0 && scale <= 1, "scale {}", scale);
  const torch::Tensor resized =
      protocol.encode_at_scale && scale < 1
          ? resize_side(images, std::max<int64_t>(1, std::llround(scale * double(input_size))))
          : resize_area(images, scale, input_size);
  return normalize_pixels(resized, protocol.stats);  // (B, 3, M, M)
}

torch::Tensor extract_features(const EmbedFn& embed, const torch::Tensor& images, double scale,
                               int64_t input_size, torch::Device device, int64_t batch,
                               const ScaleProtocol& protocol) {
  ABLATE_CHECK(batch > 0 && images.size(0) > 0, "batch {} images {}", batch,
               c10::str(images.sizes()));
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t begin = 0; begin < images.size(0); begin += batch) {
    const torch::Tensor input =
        scaled_input(images.slice(0, begin, begin + batch).to(device), scale, input_size, protocol);
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
  return fmt::format("checkpoint={};split={};scale={:.17g};input={};protocol={}", checkpoint_hash,
                     split_hash, scale, input_size, protocol);
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
