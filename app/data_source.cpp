// Shard location and packing, training batches and evaluation sets (see data_source.h).
#include "app/data_source.h"

#include <cstring>
#include <numeric>

#include <ATen/Context.h>
#include <fmt/format.h>

#include "datasets/augment.h"
#include "datasets/loader.h"
#include "datasets/registry.h"
#include "datasets/shard_cache.h"
#include "datasets/shards.h"
#include "datasets/split.h"
#include "harness/check.h"

namespace ablate {
namespace {

std::shared_ptr<const ShardSet> open_shards(const std::filesystem::path& dir) {
  // Checksums were verified when the shards were packed or last opened with verify; the loader
  // reads through mmap. A full re-hash on every run would cost seconds per run for nothing.
  return std::make_shared<const ShardSet>(ShardSet::open(dir, /*verify=*/false));
}

Split dataset_split(const ShardSet& shards, double train_ratio, uint64_t seed) {
  return make_split(shards.paths(), shards.labels(), train_ratio, seed);
}

// A seed-chosen subset of `idx` of at most `cap` elements (0 = all), in the permutation's order.
std::vector<int64_t> capped(const std::vector<int64_t>& idx, int64_t cap, uint64_t seed) {
  if (cap <= 0 || cap >= static_cast<int64_t>(idx.size())) return idx;
  const auto perm = seeded_permutation(static_cast<int64_t>(idx.size()), seed);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(cap));
  for (int64_t i = 0; i < cap; ++i) out.push_back(idx[static_cast<size_t>(perm[static_cast<size_t>(i)])]);
  return out;
}

// Gathers images (N, 3, S, S) uint8 and labels (N,) int64 of `idx` from the mapped shards.
std::pair<torch::Tensor, torch::Tensor> gather(const ShardSet& shards, const std::vector<int64_t>& idx) {
  const int64_t n = static_cast<int64_t>(idx.size()), s = shards.image_size();
  auto images = torch::empty({n, 3, s, s}, torch::kUInt8);
  auto labels = torch::empty({n}, torch::kInt64);
  auto* dst = images.data_ptr<uint8_t>();
  auto* lab = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(idx[static_cast<size_t>(i)]);
    std::memcpy(dst + i * shards.image_bytes(), shards.chw(k), shards.image_bytes());
    lab[i] = shards.label(k);
  }
  return {images, labels};
}

}  // namespace

std::filesystem::path shard_dir_for(const RunConfig& cfg, const std::string& dataset) {
  // data.shards names the packed pre-training set; evaluation on the same dataset uses it too.
  // Chosen deliberately, it is not checked against data.root: the run records the pack's own
  // source and fingerprint (ShardProvenance) instead.
  if (dataset == cfg.data.dataset && !cfg.data.shards.empty()) {
    const std::filesystem::path dir = cfg.data.shards;
    if (!std::filesystem::exists(dir / "manifest.json"))
      throw DataError(fmt::format("{}: no packed shards here (data.shards); create them with `ablate data pack`",
                                  dir.string()));
    return dir;
  }
  const DatasetSpec spec = dataset_spec(dataset);
  // Packed at the dataset's native side (KNN's multi-scale protocol downsamples from it), or at the
  // model input where the registry knows no single native size.
  const int side = spec.native_size > 0 ? spec.native_size : cfg.model.img_size;
  const CachedShards c = cached_shards(spec, cfg.data.root, side, cfg.data.skip_corrupt, shard_cache_root());
  if (c.pack)
    fmt::print(stderr, "packed {} images of {} into {} ({} shards, {:.1f} s{})\n", c.pack->packed, dataset,
               c.dir.string(), c.pack->shards, c.pack->seconds,
               c.pack->skipped ? fmt::format(", {} corrupt skipped", c.pack->skipped) : "");
  return c.dir;
}

ShardProvenance ShardProvenance::of(const ShardSet& shards) {
  return {std::filesystem::absolute(shards.dir()).lexically_normal().string(), shards.fingerprint(),
          shards.source(), shards.source_fingerprint()};
}

std::vector<std::pair<std::string, std::string>> ShardProvenance::env(const std::string& prefix) const {
  return {{prefix + "_shards", dir},
          {prefix + "_shards_fingerprint", fingerprint},
          {prefix + "_source", source},
          {prefix + "_source_fingerprint", source_fingerprint}};
}

void pack_datasets(const std::vector<PlannedRun>& runs) {
  for (const PlannedRun& r : runs) {
    if (!r.config.eval.random_init) shard_dir_for(r.config, r.config.data.dataset);
    if (!r.config.eval.protocols.empty()) shard_dir_for(r.config, r.config.eval.dataset);
  }
}

ShardBatchSource::ShardBatchSource(const RunConfig& cfg, const std::string& shard_dir, torch::Device device,
                                   uint64_t seed, int rank, int world_size)
    : cfg_(cfg), device_(device), seed_(seed), rank_(rank), world_size_(world_size) {
  // Validation (train.batch % resources.gpus) and the worker (world size = resources.gpus) ensure it.
  ABLATE_CHECK(cfg.train.batch % world_size == 0, "batch {} over {} ranks", cfg.train.batch, world_size);
  const auto dir = shard_dir.empty() ? shard_dir_for(cfg, cfg.data.dataset) : std::filesystem::path(shard_dir);
  shards_ = open_shards(dir);
  provenance_ = ShardProvenance::of(*shards_);
  std::vector<int64_t> train;
  if (cfg.data.split == PretrainSplit::all) {
    train.resize(shards_->size());
    std::iota(train.begin(), train.end(), int64_t{0});
    split_hash_ = "all:" + shards_->fingerprint();
  } else {
    const Split split = dataset_split(*shards_, cfg.data.train_fraction, kSplitSeed);
    train = split.train;
    split_hash_ = split.hash;
  }
  if (static_cast<int64_t>(train.size()) < cfg.train.batch)
    throw ConfigError("", "train.batch",
                      fmt::format("batch {} is larger than the {} pre-training images", cfg.train.batch, train.size()),
                      "lower train.batch or raise data.max_images");
  LoaderOptions o = loader_options();
  o.indices = std::move(train);
  o.max_images = cfg.data.max_images;
  loader_ = std::make_unique<Loader>(shards_, o);
  pool_ = loader_->pool();
}

ShardBatchSource::~ShardBatchSource() = default;

LoaderOptions ShardBatchSource::loader_options() const {
  LoaderOptions o;
  o.batch = cfg_.train.batch / world_size_;
  o.workers = cfg_.data.workers;
  o.seed = seed_;
  o.device = device_;
  o.rank = rank_;
  o.world_size = world_size_;
  return o;
}

void ShardBatchSource::seek(int64_t epoch, int64_t position) {
  loader_.reset();
  LoaderOptions o = loader_options();
  o.indices = pool_;  // already capped
  loader_ = std::make_unique<Loader>(shards_, o, LoaderState{epoch, position});
  epoch_offset_ = 0;
}

void ShardBatchSource::seek_planned(int64_t epoch, int64_t position, const std::vector<int64_t>& order) {
  loader_.reset();
  LoaderOptions o = loader_options();
  o.indices = order;
  o.shuffle = false;  // the plan's order is the epoch's order
  o.max_epochs = 1;
  loader_ = std::make_unique<Loader>(shards_, o, LoaderState{0, position});
  epoch_offset_ = epoch;
}

torch::Tensor ShardBatchSource::next() {
  auto b = loader_->next();
  ABLATE_CHECK(b.has_value(), "the loader ended (a planned epoch is over: seek_planned the next one)");
  indices_ = b->indices;
  AugmentOptions ao;
  ao.out_size = cfg_.model.img_size;
  ao.scale_min = cfg_.data.crop_min;
  ao.scale_max = cfg_.data.crop_max;
  ao.hflip = cfg_.data.hflip;
  // The device's default generator: the one checkpoints save and restore, so a resumed run draws
  // the same crops as an uninterrupted one.
  at::Generator gen = at::globalContext().defaultGenerator(device_);
  return augment_batch(b->images, ao, gen);
}

int64_t ShardBatchSource::batches_per_epoch() const { return loader_->batches_per_epoch(); }
int64_t ShardBatchSource::epoch() const { return epoch_offset_ + loader_->state().epoch; }
int64_t ShardBatchSource::position() const { return loader_->state().position; }

EvalImages load_eval_images(const RunConfig& cfg, uint64_t split_seed, double train_ratio) {
  const auto shards = open_shards(shard_dir_for(cfg, cfg.eval.dataset));
  const DatasetSpec spec = dataset_spec(cfg.eval.dataset);
  const double ratio = train_ratio > 0                        ? train_ratio
                       : cfg.eval.dataset == cfg.data.dataset ? cfg.data.train_fraction
                       : spec.train_ratios.empty()         ? 0.8
                                                           : spec.train_ratios.front();
  const Split split = dataset_split(*shards, ratio, split_seed);
  EvalImages ev;
  std::tie(ev.train_images, ev.train_labels) = gather(*shards, capped(split.train, cfg.eval.max_train, split_seed));
  std::tie(ev.val_images, ev.val_labels) = gather(*shards, capped(split.val, cfg.eval.max_val, split_seed + 1));
  ev.num_classes = shards->num_classes();
  ev.provenance = ShardProvenance::of(*shards);
  ev.split_hash = fmt::format("{}:max{}/{}", split.hash, cfg.eval.max_train, cfg.eval.max_val);
  return ev;
}

}  // namespace ablate
