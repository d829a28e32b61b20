// Per-patch HOG on the device, SelectiveMAE's patch scores, and fixed-count selection by score.
//
// The paper-mode HOG (hog_pixel_histograms .. hog_patch_features) follows OpenCV's HOGDescriptor in
// gradient and orientation binning (so tests can compare against it):
//  * centred differences [-1, 0, 1] in x and y, border BORDER_REFLECT_101 (torch "reflect");
//  * colour: per pixel, the channel with the largest gradient magnitude (OpenCV on 3-channel
//    images, skimage with channel_axis); ties go to the lowest channel index, as in OpenCV;
//  * 9 unsigned bins over [0, 180) degrees centred at (k + 0.5) * 20 degrees, each pixel's
//    magnitude split linearly between the two nearest bin centres (wrapping 180 -> 0).
// Cells are 8x8 (or the patch side when a patch is smaller) and sum their pixels uniformly.
// OpenCV instead weights pixels inside a block by a Gaussian window and a spatial (trilinear) tent,
// so its 8x8 cell histograms differ from plain sums by construction; the exact comparison is done
// with 1x1-pixel cells and blocks (winSigma huge), where OpenCV's spatial weights are all 1 and only
// gradient + binning remain (tests/methods/hog_test.cpp).
//
// Patch scores (config method.hog_mode):
//  * "paper": the L2 norm of the patch's un-normalised HOG vector, i.e. its oriented-gradient
//    energy. SelectiveMAE's text asks for semantically rich (textured, edged) patches; energy is
//    the HOG statistic that orders those above flat ones (water, fields), and it is what survives
//    the step the public code takes next.
//  * "official": the public SelectiveMAE code (HOGLayerC, Fengxiang23/SelectiveMAE 02a47c3),
//    computed as it does: per channel, Sobel gradients (reflect pad 1, cross-correlation),
//    orientation atan2(gx, gy) / pi * 9 hard-binned by floor mod 9, magnitudes weighted by a
//    Gaussian window tiled once per patch (side = patch, std = side / 2: its 16 / 8 at patch 16),
//    summed in cells, each cell's 9 bins L2-normalised, 108 values per 16-px patch ordered
//    (channel, bin, cell row, cell col); then each patch's vector is standardised (mean, unbiased
//    variance + 1e-6) and averaged. Standardised values average to 0, so every patch scores ~0 and
//    softmax(score) is ~uniform: selection is effectively random. Kept to reproduce the released
//    code; it equals the official tensors on the golden case (tests/parity/selectivemae_hog_test.cpp).
//    The public code's grid is hard-wired to 14x14 patches; here the model's patch grid is used
//    (the same thing at 224 px / patch 16).
// Selection logits: official = the score itself (softmax(score) as in the code, always sampled:
// top-k of ~0 scores would rank rounding noise, so config validation rejects it); paper =
// log(energy), i.e. sampling proportional to gradient energy, or its top-k.
#pragma once

#include <cstdint>
#include <string>

#include <torch/types.h>

#include "harness/config.h"  // HogMode

namespace ablate {

inline constexpr int64_t kHogBins = 9;


// images (B, C, H, W) float -> (B, 9, H, W): each pixel's magnitude split over its two bins.
torch::Tensor hog_pixel_histograms(const torch::Tensor& images);
// (B, C, H, W) -> (B, 9, H/cell, W/cell) un-normalised cell histograms (uniform sum of pixels).
torch::Tensor hog_cell_histograms(const torch::Tensor& images, int64_t cell);
// Cell side used for patches of side `patch`: 8, or the patch side when smaller.
int64_t hog_cell_for_patch(int64_t patch);
// (B, C, H, W) -> (B, L, cells_per_patch * 9): each patch's cell histograms, cells row-major.
// normalise_cells: L2-normalise every cell histogram (eps 1e-12).
torch::Tensor hog_patch_features(const torch::Tensor& images, int64_t patch, bool normalise_cells);
// The public code's pieces (mode "official"): the 3x3 Sobel-x kernel (Sobel-y is its transpose),
// the normalised Gaussian window of side `side` (std side / 2), cell histograms
// (B, C, H, W) -> (B, C, 9, H/cell, W/cell) of window-weighted magnitudes, and patch features
// (B, L, C * 9 * cells_per_patch) in the official (channel, bin, cell row, cell col) order.
torch::Tensor hog_sobel_x();
torch::Tensor hog_gaussian_window(int64_t side);
torch::Tensor hog_official_cell_histograms(const torch::Tensor& images, int64_t cell, int64_t window);
torch::Tensor hog_official_patch_features(const torch::Tensor& images, int64_t patch, bool normalise_cells);
// features (B, L, F) -> (B, L): the mean of each patch's standardised vector (the official score).
torch::Tensor hog_standardised_mean(const torch::Tensor& features);
// (B, C, H, W) -> (B, L) float32 patch scores of `mode` (see above); no gradient.
torch::Tensor hog_patch_scores(const torch::Tensor& images, int64_t patch, HogMode mode);
// Scores -> selection logits of `mode` (see above).
torch::Tensor hog_selection_logits(const torch::Tensor& scores, HogMode mode);

// k positions per row of logits (B, N) -> (B, k) int64: the k largest (sample = false), or k
// draws without replacement from softmax(logits) via Gumbel-top-k (sample = true, default
// generator). Fixed count, no host sync.
torch::Tensor select_by_logits(const torch::Tensor& logits, int64_t k, bool sample);

}  // namespace ablate
