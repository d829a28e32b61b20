// HOG on the device (see hog.h: the OpenCV-matching paper-mode HOG, the public code's HOG, and the
// two score modes).
#include "methods/hog.h"

#include <algorithm>
#include <cmath>

#include "harness/check.h"
#include "pch/torch_pch.h"

namespace ablate {

torch::Tensor hog_pixel_histograms(const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  auto x = torch::nn::functional::pad(images.to(torch::kFloat32),
                                      torch::nn::functional::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReflect));
  const int64_t H = images.size(2), W = images.size(3);
  auto dx = x.slice(2, 1, H + 1).slice(3, 2, W + 2) - x.slice(2, 1, H + 1).slice(3, 0, W);  // (B, C, H, W)
  auto dy = x.slice(2, 2, H + 2).slice(3, 1, W + 1) - x.slice(2, 0, H).slice(3, 1, W + 1);
  // The channel with the largest squared magnitude (argmax returns the first maximum).
  auto best = (dx * dx + dy * dy).argmax(1, /*keepdim=*/true);  // (B, 1, H, W)
  dx = dx.gather(1, best).squeeze(1);                             // (B, H, W)
  dy = dy.gather(1, best).squeeze(1);
  auto mag = torch::sqrt(dx * dx + dy * dy);
  // Unsigned orientation in [0, pi) -> continuous bin position; bin k is centred at (k + 0.5) * pi/9.
  auto angle = torch::remainder(torch::atan2(dy, dx), M_PI);
  auto pos = angle * (double(kHogBins) / M_PI) - 0.5;
  auto lower = torch::floor(pos);
  auto frac = pos - lower;
  auto bin0 = torch::remainder(lower.to(torch::kInt64), kHogBins);
  auto bin1 = torch::remainder(bin0 + 1, kHogBins);
  const int64_t B = images.size(0);
  auto hist = torch::zeros({B, kHogBins, H * W}, mag.options());
  hist.scatter_add_(1, bin0.view({B, 1, H * W}), (mag * (1.0 - frac)).view({B, 1, H * W}));
  hist.scatter_add_(1, bin1.view({B, 1, H * W}), (mag * frac).view({B, 1, H * W}));
  return hist.view({B, kHogBins, H, W});
}

// Cells sum the per-pixel histograms. Scattering the votes straight into cell bins would skip the
// (B, 9, H, W) tensor, but on CUDA that is a float atomicAdd per vote into shared bins, in no fixed
// order: HOG scores, and so the selected patches, would differ from run to run. Here every scatter
// writes each destination once and the cell sum is an ordered reduction: deterministic.
torch::Tensor hog_cell_histograms(const torch::Tensor& images, int64_t cell) {
  const int64_t B = images.size(0), H = images.size(2), W = images.size(3);
  ABLATE_CHECK(H % cell == 0 && W % cell == 0, "image {}x{} not divisible by cell {}", H, W, cell);
  return hog_pixel_histograms(images)
      .view({B, kHogBins, H / cell, cell, W / cell, cell})
      .sum({3, 5});
}

int64_t hog_cell_for_patch(int64_t patch) {
  const int64_t cell = std::min<int64_t>(8, patch);
  ABLATE_CHECK(patch % cell == 0, "patch {} is not a multiple of the HOG cell {}", patch, cell);
  return cell;
}

torch::Tensor hog_patch_features(const torch::Tensor& images, int64_t patch, bool normalise_cells) {
  const int64_t cell = hog_cell_for_patch(patch), per = patch / cell;
  auto cells = hog_cell_histograms(images, cell);  // (B, 9, Hc, Wc)
  if (normalise_cells)
    cells = torch::nn::functional::normalize(cells, torch::nn::functional::NormalizeFuncOptions().dim(1));
  const int64_t B = cells.size(0), h = cells.size(2) / per, w = cells.size(3) / per;
  // (B, 9, h, per, w, per) -> (B, h, w, per, per, 9): patch-major, cells row-major inside.
  return cells.view({B, kHogBins, h, per, w, per})
      .permute({0, 2, 4, 3, 5, 1})
      .reshape({B, h * w, per * per * kHogBins});
}

torch::Tensor hog_sobel_x() {
  return torch::tensor({{1.0f, 0.0f, -1.0f}, {2.0f, 0.0f, -2.0f}, {1.0f, 0.0f, -1.0f}});
}

torch::Tensor hog_gaussian_window(int64_t side) {
  auto n = torch::arange(side, torch::kFloat32);
  n = (n - n.mean()) / double(side / 2);
  auto w = torch::exp(-0.5 * n * n);              // (side)
  auto window = w.unsqueeze(1) * w.unsqueeze(0);  // (side, side)
  return window / window.sum();
}

torch::Tensor hog_official_cell_histograms(const torch::Tensor& images, int64_t cell, int64_t window) {
  torch::NoGradGuard no_grad;
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  ABLATE_CHECK(H % cell == 0 && W % cell == 0 && H % window == 0 && W % window == 0,
               "image {}x{} not divisible by cell {} and window {}", H, W, cell, window);
  namespace F = torch::nn::functional;
  auto x = F::pad(images.to(torch::kFloat32), F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReflect));
  auto kx = hog_sobel_x().to(x.device()).view({1, 1, 3, 3}).repeat({C, 1, 1, 1});  // (C, 1, 3, 3)
  auto ky = kx.transpose(2, 3).contiguous();
  auto gx = F::conv2d(x, kx, F::Conv2dFuncOptions().groups(C));  // (B, C, H, W)
  auto gy = F::conv2d(x, ky, F::Conv2dFuncOptions().groups(C));
  auto mag = torch::stack({gx, gy}, -1).norm(2, -1);
  mag = mag * hog_gaussian_window(window).to(x.device()).repeat({H / window, W / window});
  // Hard binning of atan2(gx, gy) (the public code's argument order) into 9 bins of 20 degrees.
  auto bin = torch::remainder(torch::floor(torch::atan2(gx, gy) / M_PI * double(kHogBins)).to(torch::kInt64),
                              kHogBins);
  // Each destination is written by one pixel only: deterministic on every device.
  auto hist = torch::zeros({B, C, kHogBins, H, W}, mag.options());
  hist.scatter_add_(2, bin.unsqueeze(2), mag.unsqueeze(2));
  return hist.view({B, C, kHogBins, H / cell, cell, W / cell, cell}).sum({4, 6});
}

torch::Tensor hog_official_patch_features(const torch::Tensor& images, int64_t patch, bool normalise_cells) {
  const int64_t cell = hog_cell_for_patch(patch), per = patch / cell;
  auto cells = hog_official_cell_histograms(images, cell, patch);  // (B, C, 9, Hc, Wc)
  if (normalise_cells)
    cells = torch::nn::functional::normalize(cells, torch::nn::functional::NormalizeFuncOptions().dim(2));
  const int64_t B = cells.size(0), C = cells.size(1), h = cells.size(3) / per, w = cells.size(4) / per;
  // (B, C, 9, h, per, w, per) -> (B, h, w, C, 9, per, per)
  return cells.view({B, C, kHogBins, h, per, w, per})
      .permute({0, 3, 5, 1, 2, 4, 6})
      .reshape({B, h * w, C * kHogBins * per * per});
}

torch::Tensor hog_standardised_mean(const torch::Tensor& features) {
  auto mean = features.mean(-1, true);
  auto var = features.var(-1, /*unbiased=*/true, /*keepdim=*/true);
  return ((features - mean) / torch::sqrt(var + 1e-6)).mean(-1);
}

torch::Tensor hog_patch_scores(const torch::Tensor& images, int64_t patch, HogMode mode) {
  torch::NoGradGuard no_grad;
  if (mode == HogMode::paper) return hog_patch_features(images, patch, false).norm(2, -1);
  return hog_standardised_mean(hog_official_patch_features(images, patch, true));
}

torch::Tensor hog_selection_logits(const torch::Tensor& scores, HogMode mode) {
  if (mode == HogMode::official) return scores;
  return torch::log(scores.clamp_min(1e-12));
}

torch::Tensor select_by_logits(const torch::Tensor& logits, int64_t k, bool sample) {
  torch::NoGradGuard no_grad;
  auto key = logits.to(torch::kFloat32);
  if (sample) {
    auto u = torch::rand_like(key).clamp_(1e-20, 1.0);
    key = key - torch::log(-torch::log(u));  // + Gumbel(0, 1)
  }
  return std::get<1>(key.topk(k, 1));
}

}  // namespace ablate
