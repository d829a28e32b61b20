// Device-side batch augmentation (see augment.h).
#include "datasets/augment.h"

#include <ATen/Context.h>

#include <cmath>
#include <mutex>

#include "harness/check.h"
#include "methods/pch/torch_pch.h"

namespace ablate {
namespace F = torch::nn::functional;

at::Generator make_generator(torch::Device device, uint64_t seed) {
  // Cloning the device's default generator gives a fresh one of the right backend type without
  // naming backend-specific classes (so this compiles against CPU-only LibTorch too).
  at::Generator def = at::globalContext().defaultGenerator(device);  // a handle on the shared one
  at::Generator gen;
  {
    std::lock_guard lock(def.mutex());
    gen = def.clone();
  }
  gen.set_current_seed(seed);
  return gen;
}

torch::Tensor sample_crop_boxes(int64_t batch, int64_t height, int64_t width, const AugmentOptions& opts,
                                at::Generator& gen, torch::Device device) {
  ABLATE_CHECK(opts.scale_min > 0 && opts.scale_min <= opts.scale_max && opts.ratio_min > 0 &&
                   opts.ratio_min <= opts.ratio_max,
               "scale [{}, {}], ratio [{}, {}]", opts.scale_min, opts.scale_max, opts.ratio_min,
               opts.ratio_max);
  constexpr int64_t kTries = 10;  // torchvision's attempts before the centre-crop fallback
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  const double H = static_cast<double>(height), W = static_cast<double>(width);
  const torch::Tensor u = torch::rand({batch, kTries, 2}, gen, f32);
  const torch::Tensor area = (opts.scale_min + (opts.scale_max - opts.scale_min) * u.select(2, 0)) * (H * W);
  const double lr0 = std::log(opts.ratio_min), lr1 = std::log(opts.ratio_max);
  const torch::Tensor aspect = torch::exp(lr0 + (lr1 - lr0) * u.select(2, 1));
  const torch::Tensor w = torch::round(torch::sqrt(area * aspect));  // (B, tries)
  const torch::Tensor h = torch::round(torch::sqrt(area / aspect));
  const torch::Tensor valid = (w > 0) & (w <= W) & (h > 0) & (h <= H);
  // argmax returns the first maximal index: the first attempt that fits, as in the sequential loop.
  const torch::Tensor first = valid.to(torch::kFloat32).argmax(1, /*keepdim=*/true);  // (B, 1)
  const torch::Tensor any = valid.any(1);
  // Fallback: the largest centred crop whose ratio is clamped into [ratio_min, ratio_max].
  double fw = W, fh = H;
  if (W / H < opts.ratio_min)
    fh = std::round(fw / opts.ratio_min);
  else if (W / H > opts.ratio_max)
    fw = std::round(fh * opts.ratio_max);
  const torch::Tensor bw = torch::where(any, w.gather(1, first).squeeze(1), fw);  // (B)
  const torch::Tensor bh = torch::where(any, h.gather(1, first).squeeze(1), fh);
  const torch::Tensor uij = torch::rand({batch, 2}, gen, f32);
  const torch::Tensor top = torch::minimum(torch::floor(uij.select(1, 0) * (H - bh + 1)), H - bh);
  const torch::Tensor left = torch::minimum(torch::floor(uij.select(1, 1) * (W - bw + 1)), W - bw);
  return torch::stack({torch::where(any, top, std::floor((H - fh) / 2)),
                       torch::where(any, left, std::floor((W - fw) / 2)), bh, bw},
                      1);  // (B, 4)
}

torch::Tensor crop_resize(const torch::Tensor& images, const torch::Tensor& boxes, const torch::Tensor& flip,
                          int64_t out_size) {
  ABLATE_CHECK(images.dim() == 4 && boxes.dim() == 2 && boxes.size(1) == 4 && flip.dim() == 1,
               "images {} boxes {} flip {}", c10::str(images.sizes()), c10::str(boxes.sizes()),
               c10::str(flip.sizes()));
  const torch::Tensor x = images.to(torch::kFloat32);  // (B, 3, H, W)
  const double H = static_cast<double>(x.size(2)), W = static_cast<double>(x.size(3));
  const torch::Tensor b = boxes.to(torch::kFloat32);
  const torch::Tensor top = b.select(1, 0), left = b.select(1, 1), h = b.select(1, 2), w = b.select(1, 3);
  // With align_corners=false, output x_o in [-1, 1] maps to input x_in = sx * x_o + cx (normalised):
  // the crop [left, left + w) spans sx = w / W around its centre cx; a negative sx mirrors it.
  const torch::Tensor sx = torch::where(flip, -w / W, w / W);
  const torch::Tensor cx = (2 * left + w) / W - 1;
  const torch::Tensor sy = h / H;
  const torch::Tensor cy = (2 * top + h) / H - 1;
  const torch::Tensor zero = torch::zeros_like(sx);
  const torch::Tensor theta =
      torch::stack({torch::stack({sx, zero, cx}, 1), torch::stack({zero, sy, cy}, 1)}, 1);
  const torch::Tensor grid =
      F::affine_grid(theta, {x.size(0), x.size(1), out_size, out_size}, /*align_corners=*/false);
  return F::grid_sample(x, grid,
                        F::GridSampleFuncOptions()
                            .mode(torch::kBilinear)
                            .padding_mode(torch::kBorder)
                            .align_corners(false));  // (B, 3, S, S)
}

torch::Tensor normalize_pixels(const torch::Tensor& images, const PixelStats& stats) {
  ABLATE_CHECK(images.dim() == 4 && images.size(1) == 3, "images {}", c10::str(images.sizes()));
  const torch::Tensor x = images.to(torch::kFloat32);
  // Scalar arithmetic per channel: no constant tensor has to be copied to the device.
  std::vector<torch::Tensor> channels;
  for (int64_t c = 0; c < 3; ++c)
    channels.push_back(x.select(1, c) * (1.0 / (255.0 * stats.std[c])) - stats.mean[c] / stats.std[c]);
  return torch::stack(channels, 1);
}

torch::Tensor denormalize_pixels(const torch::Tensor& images) {
  ABLATE_CHECK(images.dim() == 4 && images.size(1) == 3, "images {}", c10::str(images.sizes()));
  std::vector<torch::Tensor> channels;
  const PixelStats& s = kImageNetStats;
  for (int64_t c = 0; c < 3; ++c) channels.push_back((images.select(1, c) * s.std[c] + s.mean[c]) * 255.0);
  return torch::stack(channels, 1);
}

torch::Tensor augment_batch(const torch::Tensor& images, const AugmentOptions& opts, at::Generator& gen) {
  const int64_t B = images.size(0);
  const torch::Tensor boxes =
      sample_crop_boxes(B, images.size(2), images.size(3), opts, gen, images.device());
  const torch::Tensor flip =
      opts.hflip ? torch::rand({B}, gen, torch::TensorOptions().device(images.device())) < 0.5
                 : torch::zeros({B}, torch::TensorOptions().dtype(torch::kBool).device(images.device()));
  return normalize_pixels(crop_resize(images, boxes, flip, opts.out_size));
}

torch::Tensor resize_area(const torch::Tensor& images, double scale, int64_t out_size) {
  ABLATE_CHECK(scale > 0 && scale <= 1 && images.dim() == 4, "scale {} images {}", scale,
               c10::str(images.sizes()));
  torch::Tensor x = images.to(torch::kFloat32);  // (B, 3, H, W)
  const int64_t th = std::max<int64_t>(1, std::llround(scale * static_cast<double>(x.size(2))));
  const int64_t tw = std::max<int64_t>(1, std::llround(scale * static_cast<double>(x.size(3))));
  if (th != x.size(2) || tw != x.size(3))
    x = F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions({th, tw}));
  if (th != out_size || tw != out_size)
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{out_size, out_size})
                              .mode(torch::kBilinear)
                              .align_corners(false));
  return x;  // (B, 3, out_size, out_size)
}

torch::Tensor resize_side(const torch::Tensor& images, int64_t side) {
  ABLATE_CHECK(side > 0 && images.dim() == 4, "side {} images {}", side, c10::str(images.sizes()));
  const torch::Tensor x = images.to(torch::kFloat32);  // (B, 3, H, W)
  if (x.size(2) == side && x.size(3) == side) return x;
  if (side <= x.size(2) && side <= x.size(3))
    return F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions({side, side}));
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{side, side})
                               .mode(torch::kBilinear)
                               .align_corners(false));  // (B, 3, side, side)
}

}  // namespace ablate
