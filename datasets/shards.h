// Packed shards: a dataset decoded once into fixed-size uint8 images, so training reads raw
// pixels with memcpy instead of decoding JPEGs every epoch (`ablate data pack SRC --out DIR --size N`).
//
// Folder layout (all little-endian):
//   manifest.json      dataset, classes, size, count, split protocol, skipped files, the source
//                      folder and its source_fingerprint, and per file its byte size and SHA-256
//   shard-NNNNN.u8     images_per_shard images (the last shard fewer), each (3, N, N) uint8, planar
//                      CHW: the loader's output layout, so a batch is filled by plain copies
//   labels.i32         int32 label per image (-1 = unlabelled)
//   index.txt          source path (relative to the dataset folder) per image, one per line
// Images keep the dataset's label order (class by class, sorted paths), so a split computed from
// index.txt (datasets/split.h) selects the same images as one computed from the source folder.
//
// Packing is resumable: each shard is written to a temporary name, fsync'ed and renamed, and the
// manifest is rewritten after every shard; a re-run with the same source files (same fingerprint)
// and settings keeps the leading shards whose size and SHA-256 still match and redoes the rest. Reading maps shards with mmap; open(dir, verify=true) re-hashes every shard,
// so a flipped byte is reported with the shard's name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/registry.h"

namespace ablate {

// The manifest's "format": a change in layout gets a new one, and with it new cache folders.
inline constexpr const char* kShardFormat = "ablate-shards-1";

struct PackOptions {
  std::filesystem::path src;     // dataset folder, e.g. ../shared/data/eurosat_rgb
  std::string dataset;           // registry name to verify against; "" = the registry entry whose
                                 // folder name matches src, else an unregistered folder
  std::filesystem::path out;     // shard folder (created)
  int size = 64;                 // output side N in pixels
  int64_t images_per_shard = 0;  // 0 = as many as fit in 64 MiB
  bool skip_corrupt = false;     // skip undecodable images (listed in the manifest) instead of failing
  int threads = 2;               // decoding threads
};

struct PackResult {
  int64_t packed = 0;   // images in the shard set
  int64_t skipped = 0;  // corrupt images left out (skip_corrupt)
  std::vector<std::string> skipped_files;
  int64_t shards = 0;         // shard files in the set
  int64_t shards_reused = 0;  // ... of which were kept from an earlier, interrupted run
  double seconds = 0.0;
};

// Identity of the images a pack of `index` reads, as they are on disk now: SHA-256 over the dataset
// name, the classes, and per image its relative path, label, byte size and modification time
// (nanoseconds). An image added, removed, relabelled, replaced or edited changes it. Costs one stat
// per file, no decoding. DataError naming a file that cannot be stat'ed.
std::string source_fingerprint(const DatasetIndex& index);

// Opens opts.src as a dataset (verifying it against the registry) and packs it.
PackResult pack_dataset(const PackOptions& opts);
// Packs the images of `index` in its order (opts.src and opts.dataset are ignored).
PackResult pack_index(const DatasetIndex& index, const PackOptions& opts);

// A packed shard folder, memory-mapped read-only. Reads are thread-safe.
class ShardSet {
 public:
  // DataError naming the file when the folder, manifest or a shard is missing, has the wrong size,
  // or (with verify, and always for labels and index) fails its SHA-256.
  static ShardSet open(const std::filesystem::path& dir, bool verify);
  ShardSet(ShardSet&&) noexcept;
  ShardSet& operator=(ShardSet&&) noexcept;
  ShardSet(const ShardSet&) = delete;
  ShardSet& operator=(const ShardSet&) = delete;
  ~ShardSet();

  size_t size() const { return labels_.size(); }
  int num_classes() const { return static_cast<int>(classes_.size()); }
  const std::vector<std::string>& classes() const { return classes_; }
  const std::string& dataset() const { return dataset_; }
  int image_size() const { return side_; }
  size_t image_bytes() const { return static_cast<size_t>(side_) * side_ * 3; }
  // SHA-256 over the manifest's file checksums: identifies the packed content.
  const std::string& fingerprint() const { return fingerprint_; }
  const std::filesystem::path& dir() const { return dir_; }
  // The folder it was packed from and source_fingerprint() of its files then ("" for packs made
  // before the manifest recorded it).
  const std::string& source() const { return source_; }
  const std::string& source_fingerprint() const { return source_fingerprint_; }

  // Image `index` as (N, N, 3) HWC into dst.
  void read(size_t index, uint8_t* dst) const;
  // Image `index` as (3, N, N) CHW: a pointer into the mapping, valid while this set lives.
  const uint8_t* chw(size_t index) const;
  int label(size_t index) const { return labels_.at(index); }
  const std::vector<int32_t>& labels() const { return labels_; }
  // Source path of each image, relative to the dataset folder.
  const std::vector<std::string>& paths() const { return paths_; }

 private:
  struct Mapping {
    const uint8_t* data = nullptr;
    size_t bytes = 0;
  };
  ShardSet() = default;
  void unmap();

  std::filesystem::path dir_;
  std::string dataset_, fingerprint_, source_, source_fingerprint_;
  std::vector<std::string> classes_, paths_;
  std::vector<int32_t> labels_;
  int side_ = 0;
  int64_t per_shard_ = 0;
  std::vector<Mapping> shards_;
};

}  // namespace ablate
