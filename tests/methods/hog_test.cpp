// HOG against OpenCV's HOGDescriptor on real EuroSAT images, the two score modes, and selection.
//
// OpenCV weights the pixels of a block by a Gaussian window and a spatial tent, so its 8x8 cells
// are not plain sums. With 1x1-pixel cells and blocks and a huge winSigma every spatial weight is 1
// and each "block" is one pixel's 9-bin histogram: exactly our hog_pixel_histograms, after OpenCV's
// L2-Hys block normalisation (v / (|v| + 0.1 * 9), clip at the threshold, / (|.| + 1e-3)), which
// the test applies to our raw histograms (threshold 10: no clipping).
#include "methods/hog.h"

#include "pch/torch_pch.h"

#include <filesystem>

#include "tests/support/catch.h"

#if __has_include(<opencv2/objdetect.hpp>)
#include <opencv2/imgcodecs.hpp>
#include <opencv2/objdetect.hpp>
#define ABLATE_TEST_HAVE_OPENCV 1
#endif

using namespace ablate;

namespace {

#ifdef ABLATE_TEST_HAVE_OPENCV
// BGR uint8 image -> (1, 3, H, W) float in BGR channel order (same tie order as OpenCV).
torch::Tensor to_tensor(const cv::Mat& bgr) {
  auto t = torch::from_blob(bgr.data, {bgr.rows, bgr.cols, 3}, torch::kUInt8).clone();
  return t.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32);
}

// OpenCV's L2-Hys normalisation of one block histogram v (9,) without clipping.
torch::Tensor l2hys(const torch::Tensor& v) {
  auto n = v.norm(2, -1, true);
  auto a = v / (n + 0.9);
  return a / (a.norm(2, -1, true) + 1e-3);
}
#endif

std::filesystem::path eurosat(const char* cls, int i) {
  return std::filesystem::path(ABLATE_TEST_DATA_ROOT) / "eurosat_rgb" / cls /
         (std::string(cls) + "_" + std::to_string(i) + ".jpg");
}

}  // namespace

TEST_CASE("per-pixel HOG equals cv::HOGDescriptor on EuroSAT images", "[hog]") {
#ifndef ABLATE_TEST_HAVE_OPENCV
  ABLATE_SKIP("built without OpenCV");
#else
  if (!std::filesystem::exists(eurosat("Industrial", 1))) ABLATE_SKIP("EuroSAT not found");
  cv::HOGDescriptor hog(cv::Size(64, 64), cv::Size(1, 1), cv::Size(1, 1), cv::Size(1, 1), 9, 1, 1e4,
                        cv::HOGDescriptor::L2Hys, 10.0, false, 64, false);
  double worst = 0;
  for (const char* cls : {"Industrial", "Residential", "SeaLake", "Forest", "Highway"}) {
    cv::Mat img = cv::imread(eurosat(cls, 1).string(), cv::IMREAD_COLOR);
    REQUIRE(img.rows == 64);
    std::vector<float> desc;
    hog.compute(img, desc);
    REQUIRE(desc.size() == 64 * 64 * 9);
    // Blocks are ordered column-major (x outer, y inner).
    auto cv_hist = torch::from_blob(desc.data(), {64, 64, 9}, torch::kFloat32).clone();  // (x, y, bin)
    auto ours = hog_pixel_histograms(to_tensor(img))[0].permute({2, 1, 0});            // (x, y, bin)
    const double err = (l2hys(ours) - cv_hist).abs().max().item<double>();
    worst = std::max(worst, err);
    INFO(cls << " max abs diff " << err);
    CHECK(err < 2e-3);
  }
  // Cell histograms are the sums of the pixel histograms over 8x8 cells.
  cv::Mat img = cv::imread(eurosat("Industrial", 2).string(), cv::IMREAD_COLOR);
  auto x = to_tensor(img);
  auto cells = hog_cell_histograms(x, 8);
  auto px = hog_pixel_histograms(x);
  CHECK(torch::allclose(cells[0].select(1, 2).select(1, 5), px[0].slice(1, 16, 24).slice(2, 40, 48).sum({1, 2}), 1e-4));
  WARN("worst |ours - OpenCV| on L2-Hys-normalised pixel histograms: " << worst);
#endif
}

TEST_CASE("patch features lay out cells row-major inside each patch", "[hog]") {
  auto img = torch::rand({1, 3, 32, 32}) * 255;
  auto cells = hog_cell_histograms(img, 8);           // (1, 9, 4, 4)
  auto f = hog_patch_features(img, 16, false);        // (1, 4, 4 * 9)
  REQUIRE(f.sizes() == torch::IntArrayRef({1, 4, 36}));
  // patch 3 = (row 1, col 1) covers cells rows 2-3, cols 2-3; its cell (1, 0) is grid cell (3, 2).
  CHECK(torch::allclose(f[0][3].slice(0, 18, 27), cells[0].select(1, 3).select(1, 2)));
  auto fn = hog_patch_features(img, 16, true);
  CHECK(torch::allclose(fn[0][3].slice(0, 18, 27).norm(), torch::tensor(1.0f), 1e-5));
}

TEST_CASE("official score is ~0 for every patch, paper score ranks texture above flat", "[hog]") {
  torch::manual_seed(0);
  // Left half flat grey, right half random texture.
  auto img = torch::full({2, 3, 32, 32}, 120.0f);
  img.slice(3, 16).copy_(torch::rand({2, 3, 32, 16}) * 255);
  auto paper = hog_patch_scores(img, 8, HogMode::paper);        // (2, 16)
  auto official = hog_patch_scores(img, 8, HogMode::official);
  for (int64_t l = 0; l < 16; ++l) {
    const bool textured = (l % 4) >= 2;
    const bool inner_flat = (l % 4) == 0;  // away from the texture border
    if (textured) CHECK(paper[0][l].item<float>() > 1000.0f);
    if (inner_flat) CHECK(paper[0][l].item<float>() == 0.0f);
  }
  CHECK(official.abs().max().item<float>() < 1e-5);
  // On real images too: the official score is near-constant while the paper score spreads.
  if (std::filesystem::exists(eurosat("Residential", 3))) {
#ifdef ABLATE_TEST_HAVE_OPENCV
    auto x = to_tensor(cv::imread(eurosat("Residential", 3).string(), cv::IMREAD_COLOR));
    CHECK(hog_patch_scores(x, 8, HogMode::official).std().item<float>() < 1e-5);
    CHECK(hog_patch_scores(x, 8, HogMode::paper).std().item<float>() > 10.0f);
#endif
  }
}

TEST_CASE("selection: top-k and Gumbel sampling without replacement", "[hog]") {
  auto logits = torch::tensor({{0.0f, 3.0f, 1.0f, 2.0f}});
  CHECK(torch::equal(std::get<0>(select_by_logits(logits, 2, false).sort(1)), torch::tensor({{1, 3}}, torch::kInt64)));
  torch::manual_seed(0);
  // k = 1 draws follow softmax(logits).
  auto probs = torch::softmax(logits[0], 0);
  const int64_t n = 20000;
  auto draws = select_by_logits(logits.expand({n, 4}).contiguous(), 1, true).squeeze(1);
  auto freq = torch::bincount(draws, {}, 4).to(torch::kFloat32) / double(n);
  CHECK(torch::allclose(freq, probs, 0.0, 0.015));
  // k = 3: three distinct positions per row.
  auto three = std::get<0>(select_by_logits(logits.expand({100, 4}).contiguous(), 3, true).sort(1));
  CHECK(((three.slice(1, 1) - three.slice(1, 0, 2)) > 0).all().item<bool>());
}
