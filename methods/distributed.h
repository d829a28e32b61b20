// Data-parallel training over k processes ("ranks") with c10d: NCCL between GPUs, Gloo on the CPU.
//
// Each rank holds a full model replica and trains on its slice of every global batch. After
// backward the ranks' gradients are averaged, so every replica applies the same update and they
// stay identical (the parameters are broadcast from rank 0 once at the start). To hide the
// communication behind the backward pass, gradients live in flat buckets (~25 MB, parameters in
// reverse registration order, which is roughly the order backward produces them): a hook after
// each parameter's gradient accumulation counts it in, and a bucket's all-reduce is launched as
// soon as its last gradient is ready, while backward is still computing earlier layers. The
// parameters' .grad tensors are views into the buckets, so no copies are made either way.
//
// Rendezvous is through a c10d::TCPStore hosted by rank 0, configured from the environment that
// torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or srun (SLURM_PROCID,
// SLURM_NTASKS, SLURM_LOCALID plus exported MASTER_ADDR/MASTER_PORT) set, or that `ablate run`
// sets for the k ranks of a run with resources.gpus: k. Every collective is bounded by the timeout
// (ABLATE_DIST_TIMEOUT_S): a rank that dies or hangs makes the others throw DistributedError
// (naming the rank that reports it) instead of hanging.
//
// How a run uses it (app/worker.cpp, methods/trainer.cpp, methods/train_step.cpp): every rank builds
// the model from the run seed and reads its strided slice of the same per-epoch permutation with
// batch train.batch / k; pretrain() loads the checkpoint on every rank, broadcasts rank 0's
// parameters, attaches the buckets, and TrainStep calls finish_gradient_sync() between backward and
// clipping (CUDA graphs are off: the bucket bookkeeping runs on the host). Log points all-reduce
// the loss terms, the grad norm, the divergence flag and the stop request, so every rank takes the
// same decisions. Only rank 0 writes the journal and checkpoints; the other ranks report failures
// on stderr (their own log) and exit non-zero.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

namespace ablate {

// A collective failed or timed out (a peer died, hung or diverged in its call sequence).
struct DistributedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct DistEnv {
  static constexpr std::chrono::seconds kDefaultTimeout{300};

  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr;
  int master_port = 0;
  // Bound of the rendezvous and of every collective (ABLATE_DIST_TIMEOUT_S, seconds). It must
  // exceed the longest time one rank may spend alone: writing a checkpoint (rank 0), or the slowest
  // rank reaching the rendezvous.
  std::chrono::milliseconds timeout = kDefaultTimeout;

  // From the launcher's environment; world_size 1 when no launcher variables are set. ConfigError
  // (key = the variable) for malformed or inconsistent values.
  static DistEnv from_environment();
  bool enabled() const { return world_size > 1; }
};

class DataParallel {
 public:
  static constexpr size_t kDefaultBucketBytes = 25u << 20;  // as torch DDP

  // Joins the process group (blocks until all world_size ranks have arrived, at most `timeout`).
  // CUDA devices use NCCL (cuda:local_rank is the caller's choice of `device`), the CPU uses Gloo.
  DataParallel(const DistEnv& env, torch::Device device, std::chrono::milliseconds timeout);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Whether this build has a process-group backend for `type` (Gloo: CPU, NCCL: CUDA).
  static bool supports(torch::DeviceType type);
  int rank() const;
  int world_size() const;

  // Copies rank 0's parameters and buffers to every rank (call once, after resume/initialisation).
  void broadcast_parameters(torch::nn::Module& model);
  // Makes `model`'s trainable parameters' gradients views into buckets of at most `bucket_bytes`
  // and installs the hooks that launch each bucket's all-reduce during backward. Call once, before
  // the first backward; gradients must then be zeroed in place (never reset to undefined).
  void attach(torch::nn::Module& model, size_t bucket_bytes = kDefaultBucketBytes);
  // After backward, before clipping and the optimizer step: launches buckets that did not fill up
  // (parameters unused this step), waits for all, and leaves the averaged gradients in .grad.
  void finish_gradient_sync();
  // Launch time of each bucket of the last step minus the time backward ended (when
  // finish_gradient_sync was entered), in ms, in launch order. Negative = overlapped with backward.
  std::vector<double> bucket_launch_offsets_ms() const;
  size_t num_buckets() const;

  // Mean / maximum of `value` over the ranks (e.g. the loss for logging, any rank's stop request);
  // a new tensor, same shape. `value` must be on the process group's device (CUDA for NCCL).
  torch::Tensor all_reduce_mean(const torch::Tensor& value);
  torch::Tensor all_reduce_max(const torch::Tensor& value);
  // Every rank's `value` (same shape and dtype on all), flattened and concatenated in rank order:
  // (world_size * value.numel()). Exact for any dtype (e.g. a batch's dataset indices and losses).
  torch::Tensor all_gather(const torch::Tensor& value);
  void barrier();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Seed of rank `rank`'s random draws (masking, augmentation) at step `step` of a data-parallel run
// with seed `run_seed`: a function of the three alone, so ranks draw independent noise and a resumed
// run draws exactly what an uninterrupted one would (no per-rank generator state to checkpoint).
uint64_t rank_step_seed(uint64_t run_seed, int rank, int64_t step);

}  // namespace ablate
