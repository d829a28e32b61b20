// Loader benchmark (see bench.h).
#include "datasets/bench.h"
#include "datasets/parallel.h"

#include <chrono>
#include <memory>
#include <vector>

#include "ablate/build_info.h"
#include "datasets/loader.h"
#include "datasets/registry.h"
#include "datasets/split.h"
#include "harness/check.h"
#include "pch/torch_pch.h"

#if ABLATE_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace ablate {
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

#if ABLATE_HAVE_OPENCV
// Decodes `files` into a (n, 3, side, side) uint8 buffer on `workers` threads, as a loader without
// shards would: imread (BGR), area resize, channel-swapping copy to planar RGB.
double decode_images_per_s(const std::vector<fs::path>& files, int side, int workers) {
  const size_t plane = static_cast<size_t>(side) * side;
  std::vector<uint8_t> out(files.size() * plane * 3);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<cv::Mat> resized(static_cast<size_t>(std::max(1, workers)));
  parallel_for(files.size(), workers, [&](size_t t, size_t i) {
    const cv::Mat bgr = cv::imread(files[i].string(), cv::IMREAD_COLOR);
    if (bgr.empty()) throw DataError(files[i].string() + ": cannot decode");
    const cv::Mat* src = &bgr;
    if (bgr.rows != side || bgr.cols != side) {
      cv::resize(bgr, resized[t], cv::Size(side, side), 0, 0, cv::INTER_AREA);
      src = &resized[t];
    }
    uint8_t* dst = out.data() + i * plane * 3;
    const uint8_t* s = src->ptr<uint8_t>();
    for (size_t p = 0; p < plane; ++p)
      for (size_t c = 0; c < 3; ++c) dst[c * plane + p] = s[p * 3 + (2 - c)];
  });
  return static_cast<double>(files.size()) / seconds_since(t0);
}
#endif

}  // namespace

LoaderBench bench_loader(const fs::path& shard_dir, const fs::path& jpeg_dir, int64_t n_images, int workers) {
  ABLATE_CHECK(n_images > 0 && workers > 0, "n_images {} workers {}", n_images, workers);
  auto shards = std::make_shared<const ShardSet>(ShardSet::open(shard_dir, /*verify=*/false));
  LoaderBench r;
  r.images = n_images;
  r.workers = workers;
  r.image_size = shards->image_size();

  LoaderOptions lo;
  lo.batch = std::min<int64_t>(256, static_cast<int64_t>(shards->size()));
  lo.workers = workers;
  lo.seed = 1;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t seen = 0;
  {
    Loader loader(shards, lo);
    while (seen < n_images) seen += loader.next()->images.size(0);
  }
  r.shard_images_per_s = static_cast<double>(seen) / seconds_since(t0);

#if ABLATE_HAVE_OPENCV
  const DatasetIndex index = open_folder(jpeg_dir);
  const std::vector<int64_t> perm = seeded_permutation(static_cast<int64_t>(index.files.size()), 1);
  std::vector<fs::path> files;
  for (int64_t k = 0; k < n_images; ++k)
    files.push_back(index.path(static_cast<size_t>(perm[k % perm.size()])));
  r.decode_images_per_s = decode_images_per_s(files, r.image_size, workers);
  r.speedup = r.shard_images_per_s / r.decode_images_per_s;
#endif
  return r;
}

}  // namespace ablate
