// OpticalRS-13M-style corpus construction at small scale: cut random sub-images out of large
// scenes, and find near-duplicate images by perceptual hash so they can be dropped.
//
// pHash (as imagehash.phash): the image in grey, area-resized to 32 x 32, 2-D DCT (orthonormal),
// the 8 x 8 lowest frequencies, one bit per coefficient: above the median of those 64 or not.
// Re-encoding, mild resizing or brightness change flip few bits; different scenes differ in about
// half. Two images are duplicates when their hashes differ in at most max_distance bits; groups
// are the connected components of that relation (all pairs compared: fine for up to ~1e5 images).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/image_io.h"

namespace ablate {

struct SubimageOptions {
  int min_side = 64;  // crop side range in pixels (square crops)
  int max_side = 256;
  int per_image = 4;         // crops per source image
  uint64_t seed = 0;         // each source image draws from its own stream (seed, image index)
  std::string ext = ".png";  // ".png" (lossless) or ".jpg"
  int jpeg_quality = 95;
};

struct SubimageResult {
  std::vector<std::filesystem::path> written;  // in source order, then crop order
  int64_t too_small = 0;                       // sources with a side below min_side (no crops)
};

// Writes opts.per_image random square crops of every image in `inputs` to out_dir as
// <stem>_<k>_y<top>_x<left>_s<side><ext>. Unreadable inputs throw DataError.
SubimageResult crop_subimages(const std::vector<std::filesystem::path>& inputs,
                              const std::filesystem::path& out_dir, const SubimageOptions& opts);

// 64-bit perceptual hash of an RGB image.
uint64_t phash64(const RgbImage& img);
int hamming_distance(uint64_t a, uint64_t b);

// Groups (size >= 2) of indices into `hashes` whose members are linked by distance <= max_distance;
// each group ascending, groups ordered by their first member.
std::vector<std::vector<size_t>> duplicate_groups(const std::vector<uint64_t>& hashes, int max_distance);
// Hashes `files` (on `threads` threads) and groups them as above.
std::vector<std::vector<size_t>> find_duplicates(const std::vector<std::filesystem::path>& files,
                                                 int max_distance = 10, int threads = 2);

}  // namespace ablate
