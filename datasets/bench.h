// Loader throughput benchmark (`ablate bench loader`): images per second through the packed-shard
// loader (full path: worker threads, batching, to a CPU tensor) against decoding the same kind of
// JPEGs with OpenCV (cv::imread + resize + copy into a CHW batch) on the same number of threads.
// Not a test: the numbers depend on the machine and on the page cache (both paths read files that
// are usually cached after the first pass; run twice for warm numbers).
#pragma once

#include <cstdint>
#include <filesystem>

namespace ablate {

struct LoaderBench {
  int64_t images = 0;  // images timed on each path
  int workers = 0;
  int image_size = 0;                // shard side N (JPEGs are resized to it)
  double shard_images_per_s = 0.0;   // packed shards through Loader
  double decode_images_per_s = 0.0;  // JPEG decode with OpenCV (0 without OpenCV)
  double speedup = 0.0;              // shard / decode
};

// Times n_images from the shard set in `shard_dir` and n_images decoded from the image folder
// `jpeg_dir` (class folders or flat; the first n_images of a seeded shuffle), each with `workers` threads.
LoaderBench bench_loader(const std::filesystem::path& shard_dir, const std::filesystem::path& jpeg_dir,
                         int64_t n_images, int workers);

}  // namespace ablate
