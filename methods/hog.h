// Per-patch HOG on the device, SelectiveMAE's patch scores, and fixed-count selection by score.
//
// Gradient and orientation binning follow OpenCV's HOGDescriptor (so tests can compare against it):
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
//  * "official": the public SelectiveMAE code (HOGLayerC): L2-normalise each cell's histogram,
//    standardise each patch's vector (mean, unbiased variance + 1e-6) and average it. Standardised
//    values average to 0, so every patch scores ~0 and softmax(score) is ~uniform: selection is
//    effectively random. Kept to reproduce the released code. (The public code also uses Sobel
//    gradients per channel, hard binning and a Gaussian window; its score is ~0 either way.)
// Selection logits: official = the score itself (softmax(score) as in the code); paper =
// log(energy), i.e. multinomial sampling proportional to gradient energy.
#pragma once

#include <cstdint>
#include <string>

#include <torch/types.h>

namespace ablate {

inline constexpr int64_t kHogBins = 9;

enum class HogMode { paper, official };
HogMode parse_hog_mode(const std::string& name);  // "paper" | "official"

// images (B, C, H, W) float -> (B, 9, H, W): each pixel's magnitude split over its two bins.
torch::Tensor hog_pixel_histograms(const torch::Tensor& images);
// (B, C, H, W) -> (B, 9, H/cell, W/cell) un-normalised cell histograms (uniform sum of pixels).
torch::Tensor hog_cell_histograms(const torch::Tensor& images, int64_t cell);
// Cell side used for patches of side `patch`: 8, or the patch side when smaller.
int64_t hog_cell_for_patch(int64_t patch);
// (B, C, H, W) -> (B, L, cells_per_patch * 9): each patch's cell histograms, cells row-major.
// normalise_cells: L2-normalise every cell histogram (eps 1e-12).
torch::Tensor hog_patch_features(const torch::Tensor& images, int64_t patch, bool normalise_cells);
// (B, C, H, W) -> (B, L) float32 patch scores of `mode` (see above); no gradient.
torch::Tensor hog_patch_scores(const torch::Tensor& images, int64_t patch, HogMode mode);
// Scores -> selection logits of `mode` (see above).
torch::Tensor hog_selection_logits(const torch::Tensor& scores, HogMode mode);

// k positions per row of logits (B, N) -> (B, k) int64: the k largest (sample = false), or k
// draws without replacement from softmax(logits) via Gumbel-top-k (sample = true, default
// generator). Fixed count, no host sync.
torch::Tensor select_by_logits(const torch::Tensor& logits, int64_t k, bool sample);

}  // namespace ablate
