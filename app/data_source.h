// The app's bridge from datasets/ (packed shards, streaming loader, device augmentation) to what
// the trainer and evaluations consume: augmented training batches (a BatchSource) and the fixed
// evaluation image sets. Also decides where a dataset's packed shards live and packs them once.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "datasets/loader.h"
#include "harness/config.h"
#include "harness/experiment.h"
#include "pch/torch_pch.h"
#include "methods/trainer.h"

namespace ablate {

class ShardSet;

// Seed of the train/val split every run uses (pre-training takes the train part, evaluation the
// same split), so a sweep's runs see identical images and validation images stay unseen.
inline constexpr uint64_t kSplitSeed = 0;

// Packed shard folder of `dataset` for this config: data.shards when set (pre-training dataset
// only), else the cache folder of the dataset's folder under data.root as it is now
// (datasets/shard_cache.h), packed on first use. A missing dataset folder is a DataError saying
// where it looked.
std::filesystem::path shard_dir_for(const RunConfig& cfg, const std::string& dataset);
// Packs (once) every dataset the runs read, here, before their workers start in parallel.
void pack_datasets(const std::vector<PlannedRun>& runs);

// What a run read, for its journal: the shard folder, the SHA-256 of its content (ShardSet::
// fingerprint) and the folder and source_fingerprint it was packed from.
struct ShardProvenance {
  std::string dir, fingerprint, source, source_fingerprint;
  static ShardProvenance of(const ShardSet& shards);
  // env records <prefix>_shards, <prefix>_shards_fingerprint, <prefix>_source, <prefix>_source_fingerprint
  std::vector<std::pair<std::string, std::string>> env(const std::string& prefix) const;
};

// Pre-training batches: the train split of data.dataset (capped at data.max_images), shuffled per
// epoch with the run seed, random-resized-cropped to model.img_size, flipped and normalised on the
// device with the default device generator (which checkpoints save and restore). As rank `rank` of
// `world_size` data-parallel ranks it yields batches of train.batch / world_size: its strided slice
// of every global batch of the permutation all ranks share (`seed` must be the same on all). An
// InfoBatch epoch (seek_planned, one rank only) gets a loader of its own over the planned order
// that ends with the epoch, so no batch is prefetched from a plan the next epoch's scores would change.
class ShardBatchSource : public BatchSource {
 public:
  ShardBatchSource(const RunConfig& cfg, const std::string& shard_dir, torch::Device device, uint64_t seed,
                   int rank = 0, int world_size = 1);
  ~ShardBatchSource() override;

  torch::Tensor next() override;  // (B, 3, S, S) float
  int64_t batches_per_epoch() const override;
  int64_t epoch() const override;
  int64_t position() const override;
  void seek(int64_t epoch, int64_t position) override;
  std::vector<int64_t> pool() const override { return pool_; }
  torch::Tensor indices() const override { return indices_; }
  void seek_planned(int64_t epoch, int64_t position, const std::vector<int64_t>& order) override;

  const std::string& split_hash() const { return split_hash_; }
  const ShardProvenance& provenance() const { return provenance_; }
  int64_t num_images() const { return static_cast<int64_t>(pool_.size()); }

 private:
  LoaderOptions loader_options() const;

  const RunConfig& cfg_;
  torch::Device device_;
  uint64_t seed_;
  int rank_, world_size_;
  std::shared_ptr<const ShardSet> shards_;
  std::string split_hash_;
  ShardProvenance provenance_;
  std::vector<int64_t> pool_;     // the capped train split, as the loader permutes it
  std::unique_ptr<Loader> loader_;
  int64_t epoch_offset_ = 0;      // a planned epoch's loader counts from 0: its real epoch
  torch::Tensor indices_;         // (B,) dataset indices of the last batch
};

// Evaluation images of eval.dataset at native resolution, uint8 (N, 3, S, S) on the CPU, split with
// `train_ratio` (0 = data.train_fraction when eval.dataset is the pre-training dataset, else the
// dataset's default protocol ratio).
struct EvalImages {
  torch::Tensor train_images, val_images;  // (N, 3, S, S) uint8
  torch::Tensor train_labels, val_labels;  // (N,) int64
  int num_classes = 0;
  std::string split_hash;
  ShardProvenance provenance;
};
EvalImages load_eval_images(const RunConfig& cfg, uint64_t split_seed, double train_ratio = 0.0);

}  // namespace ablate
