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
// SLURM_NTASKS, SLURM_LOCALID plus exported MASTER_ADDR/MASTER_PORT) set. Every collective is
// bounded by the timeout given at construction: a rank that dies or hangs makes the others throw
// DistributedError (naming the rank that reports it) instead of hanging.
#pragma once

#include <chrono>
#include <cstddef>
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
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr;
  int master_port = 0;

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

  // Mean of `value` over the ranks (e.g. the loss, for logging); a new tensor, same shape.
  torch::Tensor all_reduce_mean(const torch::Tensor& value);
  void barrier();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ablate
