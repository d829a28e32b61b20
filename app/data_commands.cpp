// `ablate data pack|crop|dedup`, `ablate bench loader` and `ablate sync`: thin command wrappers over
// datasets/ (packing, OpenCV decoding, OpticalRS-13M-style construction) and harness/journal.h.
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "datasets/bench.h"
#include "datasets/construct.h"
#include "datasets/registry.h"
#include "datasets/shards.h"
#include "harness/check.h"
#include "harness/journal.h"
#include "harness/store.h"

namespace ablate {
namespace {

std::vector<std::filesystem::path> image_files(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) throw DataError(fmt::format("{}: not a folder", dir.string()));
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file() && is_image_file(e.path())) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

int data_pack_main(const std::string& src, const std::string& out, int size, const std::string& dataset) {
  PackOptions o;
  o.src = src;
  o.out = out;
  o.size = size;
  o.dataset = dataset;
  const PackResult r = pack_dataset(o);
  fmt::print("packed {} images into {} shards in {} ({} reused from an earlier run, {} corrupt skipped), {:.1f} s\n",
             r.packed, r.shards, out, r.shards_reused, r.skipped, r.seconds);
  return 0;
}

int data_crop_main(const std::string& src, const std::string& out, int min_side, int max_side, int per_image,
                   uint64_t seed) {
  SubimageOptions o;
  o.min_side = min_side;
  o.max_side = max_side;
  o.per_image = per_image;
  o.seed = seed;
  const auto r = crop_subimages(image_files(src), out, o);
  fmt::print("wrote {} crops to {} ({} sources smaller than {} px skipped)\n", r.written.size(), out, r.too_small,
             min_side);
  return 0;
}

int data_dedup_main(const std::string& src, int threshold, const std::string& out_json) {
  const auto files = image_files(src);
  const auto groups = find_duplicates(files, threshold);
  nlohmann::json j = nlohmann::json::array();
  size_t dup = 0;
  for (const auto& g : groups) {
    nlohmann::json names = nlohmann::json::array();
    for (size_t i : g) names.push_back(std::filesystem::relative(files[i], src).string());
    j.push_back(names);
    dup += g.size() - 1;
    fmt::print("{}\n", names.dump());
  }
  fmt::print("{} images, {} duplicate groups, {} redundant images (pHash Hamming <= {})\n", files.size(),
             groups.size(), dup, threshold);
  if (!out_json.empty()) std::ofstream(out_json) << nlohmann::json{{"threshold", threshold}, {"groups", j}}.dump(2);
  return 0;
}

int bench_loader_main(const std::string& shards, const std::string& jpeg_dir, int images, int workers) {
  const auto r = bench_loader(shards, jpeg_dir, images, workers);
  fmt::print("loader, {} images of {}px, {} threads: packed shards {:.0f} img/s, OpenCV JPEG decode {:.0f} img/s, "
             "ratio {:.1f}x\n",
             r.images, r.image_size, r.workers, r.shard_images_per_s, r.decode_images_per_s, r.speedup);
  return 0;
}

int sync_main(Store& store) {
  int64_t lines = 0;
  size_t runs = 0;
  for (const auto& row : store.runs()) {
    if (row.run_dir.empty() || !std::filesystem::exists(journal_path(row.run_dir))) continue;
    lines += ingest_journal(store, row.id, row.run_dir).lines;
    ++runs;
  }
  fmt::print("ingested {} new journal lines from {} runs into {}\n", lines, runs, store.path().string());
  return 0;
}

}  // namespace ablate
