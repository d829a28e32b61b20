// Training augmentation on the device, for whole batches: random resized crop (torchvision's
// sampling rule), horizontal flip and ImageNet normalisation, plus the area resize of the
// multi-scale KNN protocol.
//
// Everything is fixed-shape tensor work on the images' device with randomness from a generator
// passed in: the crop's rejection sampling draws all 10 torchvision attempts at once and picks the
// first valid one with argmax, and the crop itself is one affine_grid + grid_sample (bilinear, no
// antialiasing). No host synchronisation, so it can sit inside a captured CUDA graph.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>

namespace ablate {

struct AugmentOptions {
  int64_t out_size = 64;                                // output side S
  double scale_min = 0.2, scale_max = 1.0;              // crop area as a fraction of the image
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // crop aspect ratio w/h
  bool hflip = true;                                    // flip with probability 1/2
};

// A generator of `device`'s type seeded with `seed` (independent of the global default one).
at::Generator make_generator(torch::Device device, uint64_t seed);

// Crop boxes for a batch of B images of H x W, as torchvision RandomResizedCrop.get_params:
// (B, 4) float (top, left, height, width) in pixels, integral values.
torch::Tensor sample_crop_boxes(int64_t batch, int64_t height, int64_t width, const AugmentOptions& opts,
                                at::Generator& gen, torch::Device device);
// Crops `boxes` (B, 4) out of images (B, 3, H, W) (uint8 or float) and resizes them bilinearly to
// (B, 3, S, S) float in pixel units; flip (B) bool mirrors the crop horizontally.
torch::Tensor crop_resize(const torch::Tensor& images, const torch::Tensor& boxes, const torch::Tensor& flip,
                          int64_t out_size);
// Per-channel mean and standard deviation of pixel values scaled to [0, 1].
struct PixelStats {
  std::array<double, 3> mean, std;
};
// ImageNet's (RGB): what every model input is normalised with unless the evaluation asks otherwise,
// and what an exported encoder expects (`ablate export --format timm` writes them into config.json).
inline constexpr PixelStats kImageNetStats{{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};

// (B, 3, H, W) pixel values 0..255 (uint8 or float) -> float (x / 255 - mean) / std, ImageNet
// statistics unless others are given.
torch::Tensor normalize_pixels(const torch::Tensor& images, const PixelStats& stats = kImageNetStats);
// The inverse: normalised (B, 3, H, W) float -> pixel values 0..255 (float, not clamped).
torch::Tensor denormalize_pixels(const torch::Tensor& images);
// The full training view: sampled crop + flip + normalisation. (B, 3, H, W) uint8 -> (B, 3, S, S) float.
torch::Tensor augment_batch(const torch::Tensor& images, const AugmentOptions& opts, at::Generator& gen);

// Multi-scale evaluation input: area-downsample (B, 3, H, W) to round(scale * H) x round(scale * W)
// (box averaging: identical to cv::INTER_AREA for integer factors; for fractional ones pooling
// bins overlap by a pixel where INTER_AREA weights fractions; skipped at scale 1), then bilinear
// resize to out_size x out_size (skipped when already that size). Float in pixel units, not
// normalised.
torch::Tensor resize_area(const torch::Tensor& images, double scale, int64_t out_size);

// Scale-MAE's evaluation input at a reduced scale (eval/knn.py): (B, 3, H, W) resized to
// side x side, box-averaged when smaller (F.interpolate mode "area", i.e. adaptive average
// pooling), bilinearly when larger (Scale-MAE's area mode would repeat pixels), unchanged when
// equal. Float in pixel units.
torch::Tensor resize_side(const torch::Tensor& images, int64_t side);

}  // namespace ablate
