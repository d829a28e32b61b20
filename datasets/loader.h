// Streaming batch loader over packed shards: background threads copy images out of the mmapped
// shards into (pinned, when the target is CUDA) host batches, which are handed over in order and
// copied to the device without blocking the host.
//
// Sample order is a pure function of (seed, epoch): each epoch permutes the pool of indices (all
// images, or e.g. a split's train part, optionally capped at max_images by a seeded subset), so a
// run resumed from a LoaderState {epoch, position} sees exactly the batches an uninterrupted run
// would have seen after that point. For data-parallel runs, rank r of W reads elements
// r, r + W, r + 2W, ... of each epoch's permutation (the tail that does not divide by W is dropped,
// so ranks stay in lock-step); `position` counts samples of this rank's slice.
#pragma once

#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "datasets/shards.h"

namespace ablate {

// Where a loader stands: the next sample it yields is `position` of epoch `epoch` (this rank's slice).
struct LoaderState {
  int64_t epoch = 0;
  int64_t position = 0;
  bool operator==(const LoaderState&) const = default;
};
void to_json(nlohmann::json& j, const LoaderState& s);
void from_json(const nlohmann::json& j, LoaderState& s);

struct LoaderOptions {
  int64_t batch = 64;            // samples per batch on this rank
  int workers = 2;               // reader threads (config data.workers)
  int prefetch = 2;              // batches prepared ahead (at least 2 and at least `workers`)
  uint64_t seed = 0;             // permutation seed (run seed)
  std::vector<int64_t> indices;  // pool of ShardSet indices, e.g. Split::train; empty = all
  int64_t max_images = 0;        // cap on the pool, a seed-chosen subset (0 = whole pool)
  bool shuffle = true;           // false: pool order every epoch (evaluation passes)
  bool drop_last = true;         // only full batches (fixed shapes, e.g. for CUDA graphs)
  int64_t max_epochs = 0;        // stop after this many epochs (0 = endless)
  int rank = 0, world_size = 1;  // data-parallel slice
  torch::Device device = torch::kCPU;
};

struct Batch {
  torch::Tensor images;   // (B, 3, N, N) uint8 on the device
  torch::Tensor labels;   // (B) int64 on the device (-1 = unlabelled)
  torch::Tensor indices;  // (B) int64 ShardSet indices, on the device
  LoaderState start;      // position of the batch's first sample
};

class Loader {
 public:
  Loader(std::shared_ptr<const ShardSet> shards, LoaderOptions opts, LoaderState start = {});
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch, or nullopt once max_epochs are done. Blocks until it is ready.
  std::optional<Batch> next();
  // Position after the last batch next() returned: what a checkpoint stores.
  LoaderState state() const { return state_; }
  int64_t pool_size() const { return static_cast<int64_t>(pool_.size()); }
  // The pool of ShardSet indices epochs permute (after the max_images cap), in pool order.
  const std::vector<int64_t>& pool() const { return pool_; }
  // Samples of one epoch on this rank (after drop_last).
  int64_t epoch_length() const { return epoch_length_; }
  int64_t batches_per_epoch() const;

 private:
  struct Job {
    int64_t seq = 0;
    LoaderState start;
    int64_t count = 0;
    std::shared_ptr<const std::vector<int64_t>> order;  // the epoch's permutation of the pool
  };
  struct Slot {
    int64_t seq = -1;
    torch::Tensor images, labels, indices;  // host
    LoaderState start;
    int64_t count = 0;
    std::exception_ptr error;
  };

  std::optional<Job> take_job();  // called with mu_ held
  void worker();
  void fill(const Job& job, Slot& slot) const;
  std::shared_ptr<const std::vector<int64_t>> epoch_order(int64_t epoch) const;

  std::shared_ptr<const ShardSet> shards_;
  LoaderOptions opts_;
  std::vector<int64_t> pool_;
  int64_t per_rank_ = 0, epoch_length_ = 0;
  size_t depth_ = 2;
  LoaderState state_;  // consumer side

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  LoaderState cursor_;  // next job's start
  std::shared_ptr<const std::vector<int64_t>> cursor_order_;
  int64_t cursor_order_epoch_ = -1;
  int64_t next_seq_ = 0;     // next job to hand out
  int64_t consumed_ = 0;     // jobs the consumer has taken
  int64_t total_jobs_ = -1;  // known once max_epochs is reached
  std::vector<Slot> slots_;
  std::vector<std::thread> threads_;
};

}  // namespace ablate
