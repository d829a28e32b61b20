// Threaded in-order batch loader over packed shards (see loader.h).
//
// Jobs (one batch each) are handed out in sequence order; at most `depth_` jobs are in flight or
// waiting to be consumed, each in its own slot seq % depth_, so memory stays bounded and batches
// come out in order whatever order the workers finish in.
#include "datasets/loader.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "datasets/split.h"
#include "harness/check.h"
#include "pch/torch_pch.h"

namespace ablate {

void to_json(nlohmann::json& j, const LoaderState& s) { j = {{"epoch", s.epoch}, {"position", s.position}}; }

void from_json(const nlohmann::json& j, LoaderState& s) {
  s.epoch = j.at("epoch").get<int64_t>();
  s.position = j.at("position").get<int64_t>();
}

namespace {

constexpr uint64_t kSubsetStream = ~uint64_t{0};  // the max_images subset, apart from epoch streams

}  // namespace

Loader::Loader(std::shared_ptr<const ShardSet> shards, LoaderOptions opts, LoaderState start)
    : shards_(std::move(shards)), opts_(std::move(opts)), state_(start), cursor_(start) {
  ABLATE_CHECK(shards_ != nullptr);
  if (opts_.batch < 1) throw ConfigError("", "train.batch", fmt::format("{}", opts_.batch), ">= 1");
  if (opts_.workers < 1) throw ConfigError("", "data.workers", fmt::format("{}", opts_.workers), ">= 1");
  if (opts_.world_size < 1 || opts_.rank < 0 || opts_.rank >= opts_.world_size)
    throw ConfigError("", "resources.gpus", fmt::format("rank {} of {}", opts_.rank, opts_.world_size),
                      "0 <= rank < world size");
  if (opts_.indices.empty()) {
    pool_.resize(shards_->size());
    for (size_t i = 0; i < pool_.size(); ++i) pool_[i] = static_cast<int64_t>(i);
  } else {
    pool_ = opts_.indices;
    for (int64_t i : pool_)
      if (i < 0 || static_cast<size_t>(i) >= shards_->size())
        throw DataError(
            fmt::format("{}: loader index {} out of range (the shard set holds {} images); "
                        "was the split computed for another shard set?",
                        shards_->dir().string(), i, shards_->size()));
  }
  if (opts_.max_images > 0 && opts_.max_images < static_cast<int64_t>(pool_.size())) {
    std::vector<int64_t> pick =
        seeded_permutation(static_cast<int64_t>(pool_.size()), mix_seed(opts_.seed, kSubsetStream));
    pick.resize(static_cast<size_t>(opts_.max_images));
    std::sort(pick.begin(), pick.end());
    std::vector<int64_t> capped;
    for (int64_t k : pick) capped.push_back(pool_[k]);
    pool_ = std::move(capped);
  }
  per_rank_ = static_cast<int64_t>(pool_.size()) / opts_.world_size;
  epoch_length_ = opts_.drop_last ? per_rank_ / opts_.batch * opts_.batch : per_rank_;
  if (epoch_length_ == 0)
    throw DataError(fmt::format("{}: {} images per rank cannot fill one batch of {} (drop_last)",
                                shards_->dir().string(), per_rank_, opts_.batch));
  if (start.epoch < 0 || start.position < 0 || start.position > epoch_length_)
    throw DataError(fmt::format("loader resume state (epoch {}, position {}) outside an epoch of {} samples",
                                start.epoch, start.position, epoch_length_));
  depth_ = static_cast<size_t>(std::max({2, opts_.prefetch, opts_.workers}));
  slots_.resize(depth_);
  for (int t = 0; t < opts_.workers; ++t) threads_.emplace_back([this] { worker(); });
}

Loader::~Loader() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

int64_t Loader::batches_per_epoch() const { return (epoch_length_ + opts_.batch - 1) / opts_.batch; }

std::shared_ptr<const std::vector<int64_t>> Loader::epoch_order(int64_t epoch) const {
  if (!opts_.shuffle) return std::make_shared<const std::vector<int64_t>>(pool_);
  const std::vector<int64_t> perm = seeded_permutation(static_cast<int64_t>(pool_.size()),
                                                       mix_seed(opts_.seed, static_cast<uint64_t>(epoch)));
  auto order = std::make_shared<std::vector<int64_t>>(perm.size());
  for (size_t k = 0; k < perm.size(); ++k) (*order)[k] = pool_[perm[k]];
  return order;
}

std::optional<Loader::Job> Loader::take_job() {
  if (cursor_.position >= epoch_length_) cursor_ = {cursor_.epoch + 1, 0};
  if (opts_.max_epochs > 0 && cursor_.epoch >= opts_.max_epochs) {
    total_jobs_ = next_seq_;
    return std::nullopt;
  }
  if (cursor_order_epoch_ != cursor_.epoch) {
    cursor_order_ = epoch_order(cursor_.epoch);
    cursor_order_epoch_ = cursor_.epoch;
  }
  Job job{next_seq_++, cursor_, std::min(opts_.batch, epoch_length_ - cursor_.position), cursor_order_};
  cursor_.position += job.count;
  return job;
}

void Loader::worker() {
  for (;;) {
    std::optional<Job> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] {
        return stop_ || total_jobs_ >= 0 || next_seq_ < consumed_ + static_cast<int64_t>(depth_);
      });
      if (stop_ || total_jobs_ >= 0) return;
      job = take_job();
      if (!job) {
        cv_.notify_all();  // the consumer may be waiting for a job that will never come
        return;
      }
    }
    Slot slot;
    slot.seq = job->seq;
    slot.start = job->start;
    slot.count = job->count;
    try {
      fill(*job, slot);
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard lock(mu_);
      slots_[static_cast<size_t>(job->seq) % depth_] = std::move(slot);
    }
    cv_.notify_all();
  }
}

void Loader::fill(const Job& job, Slot& slot) const {
  const int64_t n = job.count, side = shards_->image_size();
  const size_t bytes = shards_->image_bytes();
  // Pinned host memory makes the later copy truly asynchronous; the caching host allocator keeps a
  // block alive until that copy has finished, so each batch can own fresh tensors.
  const auto host = torch::TensorOptions().pinned_memory(opts_.device.is_cuda());
  slot.images = torch::empty({n, 3, side, side}, host.dtype(torch::kUInt8));  // (B, 3, N, N)
  slot.labels = torch::empty({n}, host.dtype(torch::kInt64));
  slot.indices = torch::empty({n}, host.dtype(torch::kInt64));
  auto* img = slot.images.data_ptr<uint8_t>();
  auto* lab = slot.labels.data_ptr<int64_t>();
  auto* idx = slot.indices.data_ptr<int64_t>();
  const std::vector<int64_t>& order = *job.order;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = order[static_cast<size_t>((job.start.position + k) * opts_.world_size + opts_.rank)];
    std::memcpy(img + static_cast<size_t>(k) * bytes, shards_->chw(static_cast<size_t>(i)), bytes);
    lab[k] = shards_->label(static_cast<size_t>(i));
    idx[k] = i;
  }
}

std::optional<Batch> Loader::next() {
  Slot slot;
  {
    std::unique_lock lock(mu_);
    const int64_t seq = consumed_;
    auto& s = slots_[static_cast<size_t>(seq) % depth_];
    cv_.wait(lock, [&] { return s.seq == seq || (total_jobs_ >= 0 && seq >= total_jobs_); });
    if (s.seq != seq) return std::nullopt;
    slot = std::move(s);
    s = Slot{};
    ++consumed_;
  }
  cv_.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  state_ = {slot.start.epoch, slot.start.position + slot.count};
  if (state_.position >= epoch_length_) state_ = {state_.epoch + 1, 0};
  Batch b{slot.images, slot.labels, slot.indices, slot.start};
  if (!opts_.device.is_cpu()) {
    b.images = b.images.to(opts_.device, /*non_blocking=*/true);
    b.labels = b.labels.to(opts_.device, /*non_blocking=*/true);
    b.indices = b.indices.to(opts_.device, /*non_blocking=*/true);
  }
  return b;
}

}  // namespace ablate
