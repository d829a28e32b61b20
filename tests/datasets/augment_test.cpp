// Device augmentation: identity and flip cases against plain tensor ops, crop geometry against
// slicing, torchvision's sampling constraints, and resize_area against cv::resize INTER_AREA.
#include "datasets/augment.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "datasets/image_io.h"
#include "pch/torch_pch.h"
#include "tests/datasets/test_data.h"
#include "tests/support/catch.h"

using namespace ablate;
using namespace ablate::test;

namespace {

torch::Tensor random_images(int64_t b, int64_t h, int64_t w, uint64_t seed) {
  at::Generator g = make_generator(torch::kCPU, seed);
  return torch::randint(0, 256, {b, 3, h, w}, g, torch::TensorOptions().dtype(torch::kUInt8));
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// An HWC uint8 cv::Mat as a (1, 3, H, W) tensor.
torch::Tensor to_tensor(const cv::Mat& rgb) {
  return torch::from_blob(rgb.data, {1, rgb.rows, rgb.cols, 3}, torch::kUInt8).permute({0, 3, 1, 2}).clone();
}

}  // namespace

TEST_CASE("normalize_pixels is (x / 255 - mean) / std per channel", "[datasets][augment]") {
  torch::Tensor x = torch::zeros({1, 3, 1, 1}, torch::kUInt8);
  x[0][0][0][0] = 255;
  x[0][1][0][0] = 0;
  x[0][2][0][0] = 51;
  const torch::Tensor y = normalize_pixels(x);
  CHECK(std::abs(y[0][0][0][0].item<double>() - (1.0 - 0.485) / 0.229) < 1e-5);
  CHECK(std::abs(y[0][1][0][0].item<double>() - (0.0 - 0.456) / 0.224) < 1e-5);
  CHECK(std::abs(y[0][2][0][0].item<double>() - (0.2 - 0.406) / 0.225) < 1e-5);
}

TEST_CASE("crop scale (1, 1) without flip returns the normalised input", "[datasets][augment]") {
  const torch::Tensor img = random_images(4, 32, 32, 1);
  AugmentOptions o;
  o.out_size = 32;
  o.scale_min = o.scale_max = 1.0;
  o.hflip = false;
  at::Generator g = make_generator(torch::kCPU, 7);
  const torch::Tensor out = augment_batch(img, o, g);
  REQUIRE(out.sizes() == torch::IntArrayRef({4, 3, 32, 32}));
  REQUIRE(out.dtype() == torch::kFloat32);
  CHECK(max_abs_diff(out, normalize_pixels(img)) < 1e-4);
}

TEST_CASE("a flipped full crop equals torch::flip", "[datasets][augment]") {
  const torch::Tensor img = random_images(3, 24, 24, 2);
  const torch::Tensor boxes = torch::tensor({0.0, 0.0, 24.0, 24.0}).repeat({3, 1});
  const torch::Tensor flip = torch::ones({3}, torch::kBool);
  CHECK(max_abs_diff(crop_resize(img, boxes, flip, 24), torch::flip(img, {3})) < 1e-3);
}

TEST_CASE("an unscaled crop box equals slicing the image", "[datasets][augment]") {
  const torch::Tensor img = random_images(2, 40, 48, 3);
  const torch::Tensor boxes = torch::tensor({5.0, 7.0, 16.0, 16.0}).repeat({2, 1});  // top, left, h, w
  const torch::Tensor out = crop_resize(img, boxes, torch::zeros({2}, torch::kBool), 16);
  CHECK(max_abs_diff(out, img.slice(2, 5, 21).slice(3, 7, 23)) < 1e-3);
}

TEST_CASE("crop boxes follow torchvision's RandomResizedCrop constraints", "[datasets][augment]") {
  AugmentOptions o;
  o.scale_min = 0.2;
  o.scale_max = 1.0;
  at::Generator g = make_generator(torch::kCPU, 11);
  const torch::Tensor b = sample_crop_boxes(4000, 64, 64, o, g, torch::kCPU).to(torch::kFloat64);
  const torch::Tensor top = b.select(1, 0), left = b.select(1, 1), h = b.select(1, 2), w = b.select(1, 3);
  CHECK((top >= 0).all().item<bool>());
  CHECK((left >= 0).all().item<bool>());
  CHECK((top + h <= 64).all().item<bool>());
  CHECK((left + w <= 64).all().item<bool>());
  CHECK((b == torch::round(b)).all().item<bool>());
  // Rounding w and h to pixels moves the area and ratio by at most about one pixel per side.
  const torch::Tensor area = h * w / (64.0 * 64.0);
  CHECK(area.min().item<double>() > 0.2 - 2 * 64.0 / 4096.0);
  CHECK(area.max().item<double>() <= 1.0);
  const torch::Tensor ratio = w / h;
  CHECK(ratio.min().item<double>() > 3.0 / 4.0 * (1 - 2.0 / 28));
  CHECK(ratio.max().item<double>() < 4.0 / 3.0 * (1 + 2.0 / 28));
  // Positions spread over the free range: both edges are reached.
  CHECK(top.min().item<double>() == 0);
  CHECK((top + h).max().item<double>() == 64);
}

TEST_CASE("augmentation is a function of the generator seed", "[datasets][augment]") {
  const torch::Tensor img = random_images(4, 32, 32, 4);
  AugmentOptions o;
  o.out_size = 16;
  at::Generator g1 = make_generator(torch::kCPU, 3), g2 = make_generator(torch::kCPU, 3),
                g3 = make_generator(torch::kCPU, 4);
  const torch::Tensor a = augment_batch(img, o, g1), b = augment_batch(img, o, g2),
                      c = augment_batch(img, o, g3);
  CHECK(torch::equal(a, b));
  CHECK_FALSE(torch::equal(a, c));
}

TEST_CASE("resize_area matches cv::resize INTER_AREA on a real image", "[datasets][augment]") {
  if (!have_data("ucmerced")) ABLATE_SKIP("no shared UC Merced at " << data_root());
  const fs::path p = data_root() / "ucmerced/denseresidential/denseresidential33.jpg";
  cv::Mat bgr = cv::imread(p.string()), rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  REQUIRE(rgb.rows == 256);
  const torch::Tensor img = to_tensor(rgb);
  for (int side : {128, 64, 32}) {
    INFO("side " << side);
    cv::Mat small;
    cv::resize(rgb, small, cv::Size(side, side), 0, 0, cv::INTER_AREA);
    const torch::Tensor ours = resize_area(img, side / 256.0, side);
    REQUIRE(ours.sizes() == torch::IntArrayRef({1, 3, side, side}));
    CHECK(max_abs_diff(ours, to_tensor(small)) <= 0.5 + 1e-4);  // OpenCV rounds to uint8
  }
  // Scale 1/4 embedded at 64 px: area to 64 then nothing; at 128 px: area to 64 then bilinear up.
  cv::Mat small, up;
  cv::resize(rgb, small, cv::Size(64, 64), 0, 0, cv::INTER_AREA);
  cv::resize(small, up, cv::Size(128, 128), 0, 0, cv::INTER_LINEAR);
  CHECK(max_abs_diff(resize_area(img, 0.25, 128), to_tensor(up)) <= 1.5);
}

// Runs on the CPU everywhere (results stay on the images' device, shapes) and on CUDA where present,
// where the result must also match the CPU one.
TEST_CASE("augmentation runs on the images' device and agrees with the CPU", "[datasets][augment][gpu]") {
  const torch::Tensor img = random_images(4, 32, 32, 5);
  const torch::Tensor flip = torch::tensor({true, false, true, false});
  AugmentOptions o;
  o.out_size = 24;
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA, 0);
  for (const torch::Device& dev : devices) {
    INFO(dev);
    at::Generator g = make_generator(dev, 9);
    const torch::Tensor boxes = sample_crop_boxes(4, 32, 32, o, g, dev);
    CHECK(boxes.device() == dev);
    const torch::Tensor out = crop_resize(img.to(dev), boxes, flip.to(dev), 24);
    CHECK(out.device() == dev);
    if (dev.is_cuda()) CHECK(max_abs_diff(out.cpu(), crop_resize(img, boxes.cpu(), flip, 24)) < 1e-2);
    const torch::Tensor full = augment_batch(img.to(dev), o, g);
    CHECK(full.device() == dev);
    CHECK(full.sizes() == torch::IntArrayRef({4, 3, 24, 24}));
  }
}
