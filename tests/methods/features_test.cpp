// Scaled feature extraction against direct LibTorch references (identity at scale 1; at scale 0.5
// 2x2 average pooling, encoded at that size (Scale-MAE) or upsampled bilinearly back), ImageNet
// normalisation by hand, the CUDA bf16 path, and the feature cache.
#include "methods/features.h"

#include "pch/torch_pch.h"

#include <ATen/autocast_mode.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "harness/check.h"
#include "tests/support/catch.h"

using namespace ablate;
namespace F = torch::nn::functional;

namespace {

torch::Tensor random_images(int64_t n, int64_t side, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randint(0, 256, {n, 3, side, side}, gen, torch::kUInt8);
}

// A fixed random linear "encoder": (B, 3, M, M) -> (B, 5).
struct LinearEmbed {
  torch::Tensor w;
  explicit LinearEmbed(int64_t m) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
    w = torch::randn({3 * m * m, 5}, gen);
  }
  torch::Tensor operator()(const torch::Tensor& x) const { return x.flatten(1).matmul(w); }
};

// The model input itself as the "feature": extraction then returns exactly what the encoder sees.
torch::Tensor flat(const torch::Tensor& x) { return x.flatten(1); }

// ImageNet normalisation of pixel values in [0, 255], by the formula.
torch::Tensor imagenet(const torch::Tensor& pixels) {
  const torch::Tensor mean = torch::tensor({0.485, 0.456, 0.406}).view({1, 3, 1, 1});
  const torch::Tensor std = torch::tensor({0.229, 0.224, 0.225}).view({1, 3, 1, 1});
  return (pixels.to(torch::kFloat32) / 255.0 - mean) / std;
}

torch::Tensor bilinear(const torch::Tensor& x, int64_t side) {
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{side, side})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

}  // namespace

TEST_CASE("scale 1 at the native size is normalisation and direct embedding", "[features]") {
  const torch::Tensor images = random_images(10, 8, 1);
  const torch::Tensor seen = extract_features(flat, images, 1.0, 8, torch::kCPU, /*batch=*/3);
  CHECK(torch::allclose(seen, imagenet(images).flatten(1), 1e-5, 1e-5));
  // One pixel by hand: channel 1 of image 4 at (2, 5).
  const double p = images[4][1][2][5].item<double>();
  CHECK(std::abs(seen[4][64 + 2 * 8 + 5].item<double>() - (p / 255.0 - 0.456) / 0.224) < 1e-5);
  const LinearEmbed embed(8);
  const torch::Tensor feats = extract_features(embed, images, 1.0, 8, torch::kCPU, 4);
  REQUIRE(feats.sizes() == torch::IntArrayRef({10, 5}));
  CHECK(torch::allclose(feats, embed(imagenet(images)), 1e-4, 1e-3));
}

TEST_CASE("scale 0.5 is 2x2 average pooling, encoded at that size or upsampled back", "[features]") {
  const torch::Tensor images = random_images(4, 16, 2);
  const torch::Tensor pooled =
      torch::avg_pool2d(images.to(torch::kFloat32), {2, 2});  // (4, 3, 8, 8)
  // Pooled pixel by hand: the mean of the 2x2 block, e.g. image 0, channel 1, output (3, 5).
  const torch::Tensor block =
      images.index({0, 1, torch::indexing::Slice(6, 8), torch::indexing::Slice(10, 12)});
  CHECK(std::abs(pooled[0][1][3][5].item<double>() -
                 block.to(torch::kFloat64).mean().item<double>()) < 1e-4);
  // Scale-MAE (the default): the encoder sees the 8 x 8 image.
  CHECK(torch::allclose(extract_features(flat, images, 0.5, 16, torch::kCPU, 3),
                        imagenet(pooled).flatten(1), 1e-5, 1e-5));
  const LinearEmbed embed8(8);
  CHECK(torch::allclose(extract_features(embed8, images, 0.5, 16, torch::kCPU, 4), embed8(imagenet(pooled)),
                        1e-3, 1e-3));
  // eval.knn_resize: upsample resizes it back to the input side.
  ScaleProtocol upsample;
  upsample.encode_at_scale = false;
  const torch::Tensor expect = imagenet(bilinear(pooled, 16));
  CHECK(torch::allclose(extract_features(flat, images, 0.5, 16, torch::kCPU, 3, upsample), expect.flatten(1),
                        1e-5, 1e-5));
  const LinearEmbed embed(16);
  CHECK(torch::allclose(extract_features(embed, images, 0.5, 16, torch::kCPU, 4, upsample), embed(expect),
                        1e-3, 1e-3));
}

TEST_CASE("downsampling to a non-divisor side averages the covered pixels", "[features]") {
  // The reduced side is round(scale * input side): 0.25 of 12 is 3. Area interpolation from the
  // native 10 px, then encoded at 3 px, or resized bilinearly to 12 under knn_resize: upsample
  // (which takes round(0.25 * 10) = 3 of the native side).
  const torch::Tensor images = random_images(2, 10, 4);
  const torch::Tensor area = F::interpolate(
      images.to(torch::kFloat32),
      F::InterpolateFuncOptions().size(std::vector<int64_t>{3, 3}).mode(torch::kArea));
  CHECK(torch::allclose(extract_features(flat, images, 0.25, 12, torch::kCPU, 2),
                        imagenet(area).flatten(1), 1e-5, 1e-5));
  ScaleProtocol upsample;
  upsample.encode_at_scale = false;
  CHECK(torch::allclose(extract_features(flat, images, 0.25, 12, torch::kCPU, 2, upsample),
                        imagenet(bilinear(area, 12)).flatten(1), 1e-5, 1e-5));
}

TEST_CASE("dataset statistics come from the registry; unknown ones are a config error", "[features]") {
  EvalConfig eval;
  CHECK(scale_protocol(eval).stats.mean[0] == 0.485);  // ImageNet by default
  eval.knn_norm = KnnNorm::dataset;
  eval.dataset = "ucmerced";
  const ScaleProtocol p = scale_protocol(eval);
  CHECK(p.stats.mean[0] == 0.4842);  // Scale-MAE's mae/dataloaders/ucmerced.py
  CHECK(p.stats.std[2] == 0.1958);
  CHECK(p.text() != scale_protocol(EvalConfig{}).text());
  const torch::Tensor images = random_images(2, 8, 5);
  const torch::Tensor by_hand = (images.to(torch::kFloat32) / 255.0 -
                                 torch::tensor({0.4842, 0.4901, 0.4505}).view({1, 3, 1, 1})) /
                                torch::tensor({0.2180, 0.2021, 0.1958}).view({1, 3, 1, 1});
  CHECK(torch::allclose(scaled_input(images, 1.0, 8, p), by_hand, 1e-5, 1e-5));
  eval.dataset = "aid";
  CHECK_THROWS_AS(scale_protocol(eval), ConfigError);
}

TEST_CASE("feature cache reuses matching entries and recomputes on a key change", "[features]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("ablate_features_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  int computed = 0;
  const auto compute = [&] {
    ++computed;
    return torch::full({4, 2}, static_cast<float>(computed));
  };
  const FeatureCacheKey key{"ckpt-a", "split-x", 0.25, 64, ScaleProtocol{}.text()};
  const torch::Tensor first = cached_features(dir, "val", key, compute);
  CHECK(std::filesystem::exists(dir / "features" / "val_0.25.pt"));
  CHECK(feature_cache_file(dir, "val", 0.25) == dir / "features" / "val_0.25.pt");
  const torch::Tensor again = cached_features(dir, "val", key, compute);
  CHECK(computed == 1);
  CHECK(torch::equal(first, again));
  FeatureCacheKey other = key;
  other.checkpoint_hash = "ckpt-b";
  const torch::Tensor fresh = cached_features(dir, "val", other, compute);
  CHECK(computed == 2);
  CHECK(fresh[0][0].item<float>() == 2.0f);
  // Another scale protocol (eval.knn_resize / knn_norm / knn_gsd) is another entry.
  FeatureCacheKey upsampled = other;
  upsampled.protocol = ScaleProtocol{false}.text();
  cached_features(dir, "val", upsampled, compute);
  CHECK(computed == 3);
  cached_features(dir, "val", other, compute);
  CHECK(computed == 4);
  // A torn file is recomputed rather than trusted.
  { std::ofstream(dir / "features" / "val_0.25.pt", std::ios::trunc) << "garbage"; }
  cached_features(dir, "val", other, compute);
  CHECK(computed == 5);
  std::filesystem::remove_all(dir);
}

TEST_CASE("CUDA extraction under bf16 autocast is close to fp32 on the CPU", "[features][gpu]") {
  if (!torch::cuda::is_available()) ABLATE_SKIP("no CUDA device");
  const torch::Tensor images = random_images(20, 32, 5);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  const torch::Tensor w = torch::randn({3 * 16 * 16, 8}, gen) / 16.0;
  const torch::Tensor w_cuda = w.cuda();
  bool saw_bf16 = false;
  const EmbedFn embed = [&](const torch::Tensor& x) {
    const torch::Tensor y = x.flatten(1).matmul(x.is_cuda() ? w_cuda : w);
    saw_bf16 = saw_bf16 || y.scalar_type() == torch::kBFloat16;
    return y;
  };
  const torch::Tensor cpu = extract_features(embed, images, 0.25, 16, torch::kCPU, 8);
  CHECK(!saw_bf16);
  const torch::Tensor cuda = extract_features(embed, images, 0.25, 16, torch::kCUDA, 8);
  CHECK(saw_bf16);  // the matmul ran under autocast
  CHECK(cuda.scalar_type() == torch::kFloat32);
  CHECK(!cuda.is_cuda());
  CHECK(!at::autocast::is_autocast_enabled(at::kCUDA));  // the guard restored the state
  CHECK(((cuda - cpu).abs().max() / cpu.abs().max()).item<double>() < 2e-2);
}
