// Packing datasets into shards and reading them back (see shards.h).
#include "datasets/shards.h"
#include "datasets/parallel.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "datasets/image_io.h"
#include "datasets/split.h"
#include "harness/check.h"
#include "harness/hash.h"
#include "harness/sys_util.h"

namespace ablate {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kShardTargetBytes = size_t{64} << 20;

std::string shard_name(size_t k) { return fmt::format("shard-{:05d}.u8", k); }

// Every file of a pack is replaced atomically and durably (fsync, then rename: harness/sys_util.h),
// so a reader or a resumed pack never sees a half-written file, even after a power cut.
void write_atomic(const fs::path& path, std::string_view bytes) { write_file_atomically(path, bytes); }

void write_atomic(const fs::path& path, const void* data, size_t n) {
  write_atomic(path, std::string_view(static_cast<const char*>(data), n));
}

std::string file_sha256(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  std::vector<char> buf(size_t{1} << 20);
  Sha256 h;
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0)
    h.update(buf.data(), static_cast<size_t>(in.gcount()));
  return h.final_hex();
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// (N, N, 3) -> (3, N, N)
void hwc_to_chw(const uint8_t* src, uint8_t* dst, size_t plane) {
  for (size_t p = 0; p < plane; ++p)
    for (size_t c = 0; c < 3; ++c) dst[c * plane + p] = src[p * 3 + c];
}

struct ShardEntry {
  std::string name, sha256;
  int64_t count = 0, bytes = 0;
  int64_t src_begin = 0, src_end = 0;  // source images [begin, end) went into it (minus skipped)
};

struct SkippedEntry {
  int64_t src = 0;
  std::string path, error;
};

json file_entry(const std::string& name, size_t bytes, const std::string& sha) {
  return {{"name", name}, {"bytes", bytes}, {"sha256", sha}};
}

// Everything one pack run decides up front; the manifest is its JSON form plus progress.
struct PackPlan {
  const DatasetIndex& index;
  const PackOptions& opts;
  int64_t per_shard;
  size_t image_bytes;
  std::string source_fingerprint;  // source_fingerprint(index): the files as they are on disk
  std::string source_hash;         // inputs and settings: a resumed run must match it

  json manifest(const std::vector<ShardEntry>& shards, const std::vector<SkippedEntry>& skipped,
                const json& extra_files, int64_t count, bool complete) const {
    json j;
    j["format"] = kShardFormat;
    j["complete"] = complete;
    j["dataset"] = index.spec.name;
    j["title"] = index.spec.title;
    j["source"] = fs::absolute(index.dir).lexically_normal().string();
    j["source_fingerprint"] = source_fingerprint;
    j["source_hash"] = source_hash;
    j["classes"] = index.classes;
    j["size"] = opts.size;
    j["channels"] = 3;
    j["layout"] = "CHW uint8";
    j["images_per_shard"] = per_shard;
    j["count"] = count;
    j["skip_corrupt"] = opts.skip_corrupt;
    j["skipped"] = json::array();
    for (auto& s : skipped) j["skipped"].push_back({{"src", s.src}, {"path", s.path}, {"error", s.error}});
    j["split"] = {{"train_ratios", index.spec.train_ratios},
                  {"rule",
                   "stratified: per class, paths sorted, Fisher-Yates with std::mt19937_64(seed), "
                   "first round(ratio * n) to train (datasets/split.h)"}};
    j["shards"] = json::array();
    for (auto& s : shards)
      j["shards"].push_back({{"name", s.name},
                             {"count", s.count},
                             {"bytes", s.bytes},
                             {"sha256", s.sha256},
                             {"src_begin", s.src_begin},
                             {"src_end", s.src_end}});
    for (auto& [k, v] : extra_files.items()) j[k] = v;
    return j;
  }
};

// The source's files (source_fingerprint: an image edited in place changes it) and the settings.
std::string source_hash(const DatasetIndex& index, const PackOptions& opts, int64_t per_shard,
                        const std::string& fingerprint) {
  Sha256 h;
  h.update(fmt::format("{}\n{}\n{}\n{}\n{}\n{}\n", kShardFormat, index.spec.name, opts.size, per_shard,
                       opts.skip_corrupt, fingerprint));
  for (auto& c : index.classes) h.update(c + "\n");
  for (size_t i = 0; i < index.files.size(); ++i)
    h.update(fmt::format("{}\t{}\n", index.files[i], index.labels[i]));
  return h.final_hex();
}

// Leading shards of an earlier run with the same inputs whose files still match their checksum.
std::vector<ShardEntry> reusable_shards(const PackPlan& plan, std::vector<SkippedEntry>& skipped) {
  const fs::path mpath = plan.opts.out / "manifest.json";
  if (!fs::exists(mpath)) return {};
  json old;
  try {
    old = json::parse(read_text(mpath));
  } catch (const json::exception&) {
    return {};  // unreadable manifest from an interrupted write: start over
  }
  if (old.value("format", "") != kShardFormat || old.value("source_hash", "") != plan.source_hash) return {};
  std::vector<ShardEntry> kept;
  for (auto& s : old["shards"]) {
    ShardEntry e{s["name"], s["sha256"], s["count"], s["bytes"], s["src_begin"], s["src_end"]};
    const fs::path p = plan.opts.out / e.name;
    if (e.name != shard_name(kept.size()) || !fs::exists(p) ||
        fs::file_size(p) != static_cast<uintmax_t>(e.bytes) || file_sha256(p) != e.sha256)
      break;
    kept.push_back(e);
  }
  const int64_t cursor = kept.empty() ? 0 : kept.back().src_end;
  for (auto& s : old["skipped"])
    if (s["src"].get<int64_t>() < cursor) skipped.push_back({s["src"], s["path"], s["error"]});
  return kept;
}

// Decodes sources [begin, end) of `index` into consecutive CHW slots of `pixels`, on `threads`
// threads. errors[i] is set when image begin+i is unreadable (DataError); anything else rethrows.
void decode_window(const PackPlan& plan, int64_t begin, int64_t end, std::vector<uint8_t>& pixels,
                   std::vector<std::string>& errors) {
  const int side = plan.opts.size;
  const size_t n = static_cast<size_t>(end - begin);
  pixels.resize(n * plan.image_bytes);
  errors.assign(n, "");
  std::vector<std::vector<uint8_t>> hwc(static_cast<size_t>(std::max(1, plan.opts.threads)),
                                       std::vector<uint8_t>(plan.image_bytes));
  parallel_for(n, plan.opts.threads, [&](size_t t, size_t i) {
    try {
      RgbImage img = read_image(plan.index.path(static_cast<size_t>(begin) + i));
      resize_square(img, side, hwc[t].data());
      hwc_to_chw(hwc[t].data(), pixels.data() + i * plan.image_bytes, static_cast<size_t>(side) * side);
    } catch (const DataError& e) {
      errors[i] = e.what();
    }
  });
}

// The options and source a pack cannot start without.
void check_pack_inputs(const DatasetIndex& index, const PackOptions& opts) {
  if (opts.size < 1 || opts.size > 8192)
    throw ConfigError("", "size", fmt::format("{} pixels", opts.size), "1..8192");
  if (opts.threads < 1) throw ConfigError("", "threads", fmt::format("{}", opts.threads), ">= 1");
  if (opts.images_per_shard < 0) throw ConfigError("", "images_per_shard", "negative", ">= 0 (0 = ~64 MiB)");
  if (!image_decoding_available())
    throw DataError(fmt::format("{}: this build has no OpenCV and cannot decode images to pack them",
                                index.dir.string()));
  if (index.files.empty()) throw DataError(fmt::format("{}: no images to pack", index.dir.string()));
}

// The plan of a pack: images_per_shard, or as many images as fit in ~64 MiB; the source's
// fingerprint and the hash a resumed pack must match.
PackPlan make_plan(const DatasetIndex& index, const PackOptions& opts) {
  const size_t image_bytes = static_cast<size_t>(opts.size) * opts.size * 3;
  const int64_t per_shard = opts.images_per_shard > 0
                                ? opts.images_per_shard
                                : std::max<int64_t>(1, static_cast<int64_t>(kShardTargetBytes / image_bytes));
  const std::string fingerprint = source_fingerprint(index);
  return PackPlan{index, opts, per_shard, image_bytes, fingerprint, source_hash(index, opts, per_shard, fingerprint)};
}

// Collects decoded images into the current shard and writes each full one, then the progress
// manifest, so an interrupted pack resumes after the last shard written.
class ShardWriter {
 public:
  ShardWriter(const PackPlan& plan, std::vector<ShardEntry>& shards, const std::vector<SkippedEntry>& skipped)
      : plan_(plan), shards_(shards), skipped_(skipped), begin_(shards.empty() ? 0 : shards.back().src_end) {
    buf_.reserve(static_cast<size_t>(plan.per_shard) * plan.image_bytes);
  }

  // The first source image that is not in a written shard.
  int64_t begin() const { return begin_; }

  // Appends source image `src` (CHW, plan.image_bytes); writes the shard when it is full.
  void add(int64_t src, const uint8_t* chw) {
    buf_.insert(buf_.end(), chw, chw + plan_.image_bytes);
    if (static_cast<int64_t>(buf_.size() / plan_.image_bytes) == plan_.per_shard) flush(src + 1);
  }

  // Writes the last, partial shard (if any); the sources end at `src_end`.
  void finish(int64_t src_end) {
    if (!buf_.empty()) flush(src_end);
  }

 private:
  void flush(int64_t src_end) {
    Sha256 h;
    h.update(buf_.data(), buf_.size());
    ShardEntry e{shard_name(shards_.size()),
                 h.final_hex(),
                 static_cast<int64_t>(buf_.size() / plan_.image_bytes),
                 static_cast<int64_t>(buf_.size()),
                 begin_,
                 src_end};
    write_atomic(plan_.opts.out / e.name, buf_.data(), buf_.size());
    shards_.push_back(e);
    write_atomic(plan_.opts.out / "manifest.json",
                 plan_.manifest(shards_, skipped_, json::object(), 0, false).dump(1));
    buf_.clear();
    begin_ = src_end;
  }

  const PackPlan& plan_;
  std::vector<ShardEntry>& shards_;
  const std::vector<SkippedEntry>& skipped_;
  int64_t begin_;  // source image the current shard starts at
  std::vector<uint8_t> buf_;
};

// Decodes the sources after the reused shards, a shard's worth at a time, into new shards. An
// unreadable image joins `skipped` with skip_corrupt and stops the pack without it.
void pack_sources(const PackPlan& plan, std::vector<ShardEntry>& shards, std::vector<SkippedEntry>& skipped) {
  ShardWriter writer(plan, shards, skipped);
  const auto n_src = static_cast<int64_t>(plan.index.files.size());
  std::vector<uint8_t> pixels;
  std::vector<std::string> errors;
  for (int64_t w = writer.begin(); w < n_src; w += plan.per_shard) {
    const int64_t w_end = std::min(n_src, w + plan.per_shard);
    decode_window(plan, w, w_end, pixels, errors);
    for (int64_t i = w; i < w_end; ++i) {
      const size_t k = static_cast<size_t>(i - w);
      if (!errors[k].empty()) {
        if (!plan.opts.skip_corrupt)
          throw DataError(errors[k] + " (skip such files with data.skip_corrupt=true / --skip-corrupt)");
        skipped.push_back({i, plan.index.files[i], errors[k]});
        continue;
      }
      writer.add(i, pixels.data() + k * plan.image_bytes);
    }
  }
  writer.finish(n_src);
}

// Labels and relative paths of the packed images, in pack order (index.txt: one path a line).
struct PackedImages {
  std::vector<int32_t> labels;
  std::vector<std::string> files;
  std::string index_text;
};

// Each shard's source range minus the skipped images; DataError when nothing was packed.
PackedImages packed_images(const DatasetIndex& index, const std::vector<ShardEntry>& shards,
                           const std::vector<SkippedEntry>& skipped) {
  std::set<int64_t> skipped_src;
  for (auto& s : skipped) skipped_src.insert(s.src);
  PackedImages out;
  for (auto& s : shards)
    for (int64_t i = s.src_begin; i < s.src_end; ++i)
      if (!skipped_src.count(i)) {
        out.labels.push_back(index.labels[i]);
        out.files.push_back(index.files[i]);
        out.index_text += index.files[i] + "\n";
      }
  if (out.labels.empty())
    throw DataError(fmt::format("{}: none of the images could be decoded", index.dir.string()));
  return out;
}

// Writes labels.i32 and index.txt, then the complete manifest listing them with the default
// split's summary (seed 0): the manifest is written last, so `complete` means everything is there.
void write_index_and_manifest(const PackPlan& plan, const std::vector<ShardEntry>& shards,
                              const std::vector<SkippedEntry>& skipped, const PackedImages& packed) {
  const fs::path& out = plan.opts.out;
  const size_t label_bytes = packed.labels.size() * sizeof(int32_t);
  write_atomic(out / "labels.i32", packed.labels.data(), label_bytes);
  write_atomic(out / "index.txt", packed.index_text);
  json files;
  files["labels"] = file_entry("labels.i32", label_bytes,
                               sha256_hex({reinterpret_cast<const char*>(packed.labels.data()), label_bytes}));
  files["labels"]["dtype"] = "int32";
  files["index"] = file_entry("index.txt", packed.index_text.size(), sha256_hex(packed.index_text));
  const auto& ratios = plan.index.spec.train_ratios;
  const Split default_split = make_split(packed.files, packed.labels, ratios.empty() ? 0.8 : ratios.front(), 0);
  json manifest = plan.manifest(shards, skipped, files, static_cast<int64_t>(packed.labels.size()), true);
  manifest["split"]["seed0"] = {{"train_ratio", default_split.train_ratio},
                                {"train", default_split.train.size()},
                                {"val", default_split.val.size()},
                                {"hash", default_split.hash}};
  write_atomic(out / "manifest.json", manifest.dump(1));
}

}  // namespace

std::string source_fingerprint(const DatasetIndex& index) {
  Sha256 h;
  h.update(fmt::format("{}\n", index.spec.name));
  for (auto& c : index.classes) h.update(c + "\n");
  for (size_t i = 0; i < index.files.size(); ++i) {
    struct stat st {};
    if (::stat(index.path(i).c_str(), &st) != 0)
      throw DataError(fmt::format("{}: cannot stat: {}", index.path(i).string(), std::strerror(errno)));
    h.update(fmt::format("{}\t{}\t{}\t{}.{:09d}\n", index.files[i], index.labels[i], st.st_size,
                         st.st_mtim.tv_sec, st.st_mtim.tv_nsec));
  }
  return h.final_hex();
}

PackResult pack_index(const DatasetIndex& index, const PackOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  check_pack_inputs(index, opts);
  const PackPlan plan = make_plan(index, opts);
  fs::create_directories(opts.out);

  std::vector<SkippedEntry> skipped;
  std::vector<ShardEntry> shards = reusable_shards(plan, skipped);
  PackResult result;
  result.shards_reused = static_cast<int64_t>(shards.size());
  pack_sources(plan, shards, skipped);
  const PackedImages packed = packed_images(index, shards, skipped);
  write_index_and_manifest(plan, shards, skipped, packed);

  // Shard files left over from an earlier pack of this folder that the manifest no longer lists.
  for (size_t k = shards.size(); fs::exists(opts.out / shard_name(k)); ++k)
    fs::remove(opts.out / shard_name(k));

  result.packed = static_cast<int64_t>(packed.labels.size());
  result.skipped = static_cast<int64_t>(skipped.size());
  for (auto& s : skipped) result.skipped_files.push_back(s.path);
  result.shards = static_cast<int64_t>(shards.size());
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

PackResult pack_dataset(const PackOptions& opts) {
  DatasetSpec spec;
  if (!opts.dataset.empty()) {
    spec = dataset_spec(opts.dataset);
  } else {
    const std::string folder = opts.src.filename().empty() ? opts.src.parent_path().filename().string()
                                                           : opts.src.filename().string();
    for (auto& s : dataset_registry())
      if (s.folder == folder) spec = s;
    if (spec.name.empty()) return pack_index(open_folder(opts.src), opts);
  }
  return pack_index(open_dataset_dir(spec, opts.src), opts);
}

// ---- reading ----

namespace {

// The manifest of a completely packed folder; DataError when it is missing, not JSON, of another
// format, or from a pack that was interrupted.
json read_complete_manifest(const fs::path& dir, const fs::path& mpath) {
  if (!fs::exists(mpath))
    throw DataError(
        fmt::format("{}: no shard manifest; pack the dataset first: ablate data pack SRC --out {} --size N",
                    mpath.string(), dir.string()));
  json m;
  try {
    m = json::parse(read_text(mpath));
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: not valid JSON: {}", mpath.string(), e.what()));
  }
  if (m.value("format", "") != kShardFormat)
    throw DataError(
        fmt::format("{}: format '{}', expected '{}'", mpath.string(), m.value("format", ""), kShardFormat));
  if (!m.value("complete", false))
    throw DataError(
        fmt::format("{}: packing was interrupted; re-run `ablate data pack` with the same "
                    "arguments to finish it",
                    dir.string()));
  return m;
}

// A small file of the pack (labels, index) named by its manifest entry, always checked against
// the entry's size and SHA-256: a wrong label would silently corrupt every metric. Adds the
// checksum to the pack's fingerprint `fp`.
std::string read_checked_file(const fs::path& dir, const fs::path& mpath, const json& entry, Sha256& fp) {
  const fs::path p = dir / entry.at("name").get<std::string>();
  std::string bytes = read_text(p);
  if (bytes.size() != entry.at("bytes").get<size_t>() || sha256_hex(bytes) != entry.at("sha256").get<std::string>())
    throw DataError(
        fmt::format("{}: size or SHA-256 differs from {}: the file is corrupt; re-run "
                    "`ablate data pack`",
                    p.string(), mpath.string()));
  fp.update(entry.at("sha256").get<std::string>());
  return bytes;
}

// Shard file `p` memory-mapped read-only, once its size matches the manifest entry `s` (its
// `bytes`, and `count` images of `image_bytes`).
const uint8_t* map_shard(const fs::path& p, const json& s, size_t image_bytes) {
  const auto bytes = s.at("bytes").get<size_t>();
  const int fd = ::open(p.c_str(), O_RDONLY);
  if (fd < 0) throw DataError(fmt::format("{}: cannot open shard: {}", p.string(), std::strerror(errno)));
  struct stat st {};
  ::fstat(fd, &st);
  if (static_cast<size_t>(st.st_size) != bytes || bytes != s.at("count").get<size_t>() * image_bytes) {
    ::close(fd);
    throw DataError(
        fmt::format("{}: shard is {} bytes, manifest says {} ({} images of {} bytes): "
                    "truncated or replaced; re-run `ablate data pack`",
                    p.string(), st.st_size, bytes, s.at("count").get<int64_t>(), image_bytes));
  }
  void* addr = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (addr == MAP_FAILED) throw DataError(fmt::format("{}: mmap failed: {}", p.string(), std::strerror(errno)));
  return static_cast<const uint8_t*>(addr);
}

// DataError when the mapped shard's SHA-256 is not the manifest's `expected`.
void verify_shard(const fs::path& p, const uint8_t* data, size_t bytes, const std::string& expected) {
  Sha256 h;
  h.update(data, bytes);
  const std::string got = h.final_hex();
  if (got != expected)
    throw DataError(
        fmt::format("{}: SHA-256 {} differs from the manifest's {}: the shard is corrupt; "
                    "delete it and re-run `ablate data pack` to rebuild it",
                    p.string(), got, expected));
}

}  // namespace

ShardSet ShardSet::open(const fs::path& dir, bool verify) {
  const fs::path mpath = dir / "manifest.json";
  const json m = read_complete_manifest(dir, mpath);
  ShardSet set;
  set.dir_ = dir;
  try {
    set.dataset_ = m.at("dataset");
    set.classes_ = m.at("classes").get<std::vector<std::string>>();
    set.side_ = m.at("size");
    set.per_shard_ = m.at("images_per_shard");
    set.source_ = m.value("source", "");
    set.source_fingerprint_ = m.value("source_fingerprint", "");  // "" in packs made before it existed
    Sha256 fp;
    const std::string label_bytes = read_checked_file(dir, mpath, m.at("labels"), fp);
    set.labels_.resize(label_bytes.size() / sizeof(int32_t));
    std::memcpy(set.labels_.data(), label_bytes.data(), set.labels_.size() * sizeof(int32_t));
    const std::string index_text = read_checked_file(dir, mpath, m.at("index"), fp);
    for (size_t b = 0, e; (e = index_text.find('\n', b)) != std::string::npos; b = e + 1)
      set.paths_.push_back(index_text.substr(b, e - b));
    if (set.labels_.size() != m.at("count").get<size_t>() || set.paths_.size() != set.labels_.size())
      throw DataError(fmt::format("{}: count {} but {} labels and {} paths", mpath.string(),
                                  m.at("count").get<int64_t>(), set.labels_.size(), set.paths_.size()));
    size_t total = 0;
    for (auto& s : m.at("shards")) {
      const fs::path p = dir / s.at("name").get<std::string>();
      const auto bytes = s.at("bytes").get<size_t>();
      // Held by the set before it is verified: a throw unmaps it with the set.
      set.shards_.push_back({map_shard(p, s, set.image_bytes()), bytes});
      if (verify) verify_shard(p, set.shards_.back().data, bytes, s.at("sha256").get<std::string>());
      fp.update(s.at("sha256").get<std::string>());
      total += s.at("count").get<size_t>();
      if (set.shards_.size() < m.at("shards").size() && s.at("count").get<int64_t>() != set.per_shard_)
        throw DataError(fmt::format("{}: a shard other than the last holds {} images, not {}", p.string(),
                                    s.at("count").get<int64_t>(), set.per_shard_));
    }
    if (total != set.labels_.size())
      throw DataError(
          fmt::format("{}: shards hold {} images, labels {}", mpath.string(), total, set.labels_.size()));
    set.fingerprint_ = fp.final_hex();
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: missing or malformed field: {}", mpath.string(), e.what()));
  }
  return set;
}

ShardSet::ShardSet(ShardSet&& o) noexcept { *this = std::move(o); }

ShardSet& ShardSet::operator=(ShardSet&& o) noexcept {
  if (this != &o) {
    unmap();
    dir_ = std::move(o.dir_);
    dataset_ = std::move(o.dataset_);
    fingerprint_ = std::move(o.fingerprint_);
    source_ = std::move(o.source_);
    source_fingerprint_ = std::move(o.source_fingerprint_);
    classes_ = std::move(o.classes_);
    paths_ = std::move(o.paths_);
    labels_ = std::move(o.labels_);
    side_ = o.side_;
    per_shard_ = o.per_shard_;
    shards_ = std::move(o.shards_);
    o.shards_.clear();
  }
  return *this;
}

ShardSet::~ShardSet() { unmap(); }

void ShardSet::unmap() {
  for (auto& s : shards_) ::munmap(const_cast<uint8_t*>(s.data), s.bytes);
  shards_.clear();
}

const uint8_t* ShardSet::chw(size_t index) const {
  ABLATE_CHECK(index < size(), "image {} of {}", index, size());
  const auto& s = shards_[index / static_cast<size_t>(per_shard_)];
  return s.data + (index % static_cast<size_t>(per_shard_)) * image_bytes();
}

void ShardSet::read(size_t index, uint8_t* dst) const {
  const uint8_t* src = chw(index);
  const size_t plane = static_cast<size_t>(side_) * side_;
  for (size_t p = 0; p < plane; ++p)
    for (size_t c = 0; c < 3; ++c) dst[p * 3 + c] = src[c * plane + p];
}

}  // namespace ablate
