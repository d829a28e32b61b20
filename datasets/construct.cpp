// Sub-image cropping and perceptual-hash deduplication (see construct.h).
#include "datasets/construct.h"
#include "datasets/parallel.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <numeric>
#include <random>

#include "ablate/build_info.h"
#include "datasets/split.h"
#include "harness/check.h"

#if ABLATE_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace ablate {
namespace fs = std::filesystem;

SubimageResult crop_subimages(const std::vector<fs::path>& inputs, const fs::path& out_dir,
                              const SubimageOptions& opts) {
  if (opts.min_side < 1 || opts.max_side < opts.min_side)
    throw ConfigError("", "side", fmt::format("min {} max {}", opts.min_side, opts.max_side),
                      "1 <= min <= max");
  if (opts.ext != ".png" && opts.ext != ".jpg")
    throw ConfigError("", "ext", "'" + opts.ext + "'", ".png or .jpg");
  fs::create_directories(out_dir);
  SubimageResult r;
  for (size_t n = 0; n < inputs.size(); ++n) {
    const RgbImage img = read_image(inputs[n]);
    const int limit = std::min({opts.max_side, img.height, img.width});
    if (limit < opts.min_side) {
      ++r.too_small;
      continue;
    }
    std::seed_seq seq{opts.seed, static_cast<uint64_t>(n)};
    std::mt19937_64 rng(seq);
    for (int k = 0; k < opts.per_image; ++k) {
      const int side = opts.min_side +
                       static_cast<int>(uniform_below(rng, static_cast<uint64_t>(limit - opts.min_side + 1)));
      const int top = static_cast<int>(uniform_below(rng, static_cast<uint64_t>(img.height - side + 1)));
      const int left = static_cast<int>(uniform_below(rng, static_cast<uint64_t>(img.width - side + 1)));
      RgbImage crop;
      crop.height = crop.width = side;
      crop.pixels.resize(static_cast<size_t>(side) * side * 3);
      for (int y = 0; y < side; ++y)
        std::copy_n(img.pixels.data() + (static_cast<size_t>(top + y) * img.width + left) * 3,
                    static_cast<size_t>(side) * 3, crop.pixels.data() + static_cast<size_t>(y) * side * 3);
      const fs::path out = out_dir / fmt::format("{}_{}_y{}_x{}_s{}{}", inputs[n].stem().string(), k, top,
                                                 left, side, opts.ext);
      write_image(out, crop, opts.jpeg_quality);
      r.written.push_back(out);
    }
  }
  return r;
}

#if ABLATE_HAVE_OPENCV
uint64_t phash64(const RgbImage& img) {
  const cv::Mat rgb(img.height, img.width, CV_8UC3, const_cast<uint8_t*>(img.pixels.data()));
  cv::Mat grey, small, f, freq;
  cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
  cv::resize(grey, small, cv::Size(32, 32), 0, 0, cv::INTER_AREA);
  small.convertTo(f, CV_32F);
  cv::dct(f, freq);
  std::vector<float> low;
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) low.push_back(freq.at<float>(y, x));
  std::vector<float> sorted = low;
  std::nth_element(sorted.begin(), sorted.begin() + 32, sorted.end());
  const float upper = sorted[32];
  const float lower = *std::max_element(sorted.begin(), sorted.begin() + 32);
  const float median = 0.5f * (lower + upper);
  uint64_t h = 0;
  for (size_t i = 0; i < 64; ++i)
    if (low[i] > median) h |= uint64_t{1} << i;
  return h;
}
#else
uint64_t phash64(const RgbImage&) {
  throw DataError("pHash: this ablate build has no OpenCV (needed for the DCT and resize)");
}
#endif

int hamming_distance(uint64_t a, uint64_t b) { return std::popcount(a ^ b); }

std::vector<std::vector<size_t>> duplicate_groups(const std::vector<uint64_t>& hashes, int max_distance) {
  // Union-find over all close pairs.
  std::vector<size_t> parent(hashes.size());
  std::iota(parent.begin(), parent.end(), size_t{0});
  auto root = [&](size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  };
  for (size_t i = 0; i < hashes.size(); ++i)
    for (size_t j = i + 1; j < hashes.size(); ++j)
      if (hamming_distance(hashes[i], hashes[j]) <= max_distance) {
        const size_t a = root(i), b = root(j);
        parent[std::max(a, b)] = std::min(a, b);
      }
  std::vector<std::vector<size_t>> by_root(hashes.size());
  for (size_t i = 0; i < hashes.size(); ++i) by_root[root(i)].push_back(i);
  std::vector<std::vector<size_t>> groups;
  for (auto& g : by_root)
    if (g.size() >= 2) groups.push_back(std::move(g));
  return groups;  // roots are the smallest members, so by_root order is first-member order
}

std::vector<std::vector<size_t>> find_duplicates(const std::vector<fs::path>& files, int max_distance,
                                                 int threads) {
  std::vector<uint64_t> hashes(files.size());
  parallel_for(files.size(), threads, [&](size_t, size_t i) { hashes[i] = phash64(read_image(files[i])); });
  return duplicate_groups(hashes, max_distance);
}

}  // namespace ablate
