// `ablate data pack|crop|dedup`: thin command wrappers over datasets/ (packing into shards, and the
// OpticalRS-13M-style construction steps: random sub-image crops, perceptual-hash deduplication).
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "datasets/construct.h"
#include "datasets/registry.h"
#include "datasets/shards.h"
#include "harness/check.h"

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

struct PackArgs {
  std::string src, out, dataset;  // dataset: registry name ("" = inferred from the folder)
  int size = 0;                   // side in pixels of the packed images
};

struct CropOptions {
  std::string src, out;
  int min_side = 64, max_side = 128;  // crop side range in pixels
  int per_image = 4;                  // crops per source image
  uint64_t seed = 0;
};

struct DedupOptions {
  std::string src, out_json;
  int threshold = 6;  // max Hamming distance of 64-bit pHashes
};

int data_pack_main(const PackArgs& a) {
  PackOptions o;
  o.src = a.src;
  o.out = a.out;
  o.size = a.size;
  o.dataset = a.dataset;
  const PackResult r = pack_dataset(o);
  fmt::print("packed {} images into {} shards in {} ({} reused from an earlier run, {} corrupt skipped), {:.1f} s\n",
             r.packed, r.shards, a.out, r.shards_reused, r.skipped, r.seconds);
  return 0;
}

int data_crop_main(const CropOptions& o) {
  SubimageOptions so;
  so.min_side = o.min_side;
  so.max_side = o.max_side;
  so.per_image = o.per_image;
  so.seed = o.seed;
  const auto r = crop_subimages(image_files(o.src), o.out, so);
  fmt::print("wrote {} crops to {} ({} sources smaller than {} px skipped)\n", r.written.size(), o.out, r.too_small,
             o.min_side);
  return 0;
}

int data_dedup_main(const DedupOptions& o) {
  const std::string& src = o.src;
  const int threshold = o.threshold;
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
  if (!o.out_json.empty()) std::ofstream(o.out_json) << nlohmann::json{{"threshold", threshold}, {"groups", j}}.dump(2);
  return 0;
}

}  // namespace

void add_data_command(CLI::App& app, Commands& commands) {
  CLI::App* data = app.add_subcommand("data", "dataset tools: pack, crop, dedup");
  data->require_subcommand(1);

  auto pack = std::make_shared<PackArgs>();
  CLI::App* p = data->add_subcommand("pack", "decode a dataset once into checksummed uint8 shards");
  p->add_option("src", pack->src, "dataset folder (class sub-folders)")->required();
  p->add_option("--out", pack->out, "output folder")->required();
  p->add_option("--size", pack->size, "side in pixels of the packed images")->required();
  p->add_option("--dataset", pack->dataset, "registry name (default: inferred from the folder)");
  commands.push_back({p, [pack] { return data_pack_main(*pack); }});

  auto crop = std::make_shared<CropOptions>();
  CLI::App* c = data->add_subcommand("crop", "random sub-images between a min and max side");
  c->add_option("src", crop->src, "image folder")->required();
  c->add_option("--out", crop->out, "output folder")->required();
  c->add_option("--min", crop->min_side, "min side (px)");
  c->add_option("--max", crop->max_side, "max side (px)");
  c->add_option("--per-image", crop->per_image, "crops per source image");
  c->add_option("--seed", crop->seed, "seed");
  commands.push_back({c, [crop] { return data_crop_main(*crop); }});

  auto dedup = std::make_shared<DedupOptions>();
  CLI::App* d = data->add_subcommand("dedup", "perceptual-hash duplicate groups");
  d->add_option("src", dedup->src, "image folder")->required();
  d->add_option("--threshold", dedup->threshold, "max Hamming distance of 64-bit pHashes");
  d->add_option("--out", dedup->out_json, "write the groups as JSON here");
  commands.push_back({d, [dedup] { return data_dedup_main(*dedup); }});
}

}  // namespace ablate
