// One optimizer step of pre-training (forward, backward, clipping, fused AdamW) as an object the
// training loop and `ablate bench` share, so the benchmark times exactly the step that trains.
//
// Everything the step reads and writes lives in device tensors (input buffer, lr, PSTS stage
// weights, InfoBatch sample weights, loss, per-sample losses, grad norm, divergence flag, step
// counter), so the step never synchronises with the host. On CUDA with cuda_graph on, the first
// kEagerWarmupSteps run eagerly (autograd and the caching allocator settle), then the step is
// captured once with at::cuda::CUDAGraph and every later call is a single graph replay. All calls
// must then come from the same (side) stream: the caller holds a StepStream for the lifetime of
// the TrainStep.
//
// With a DataParallel engine (attached to the method by the caller), the step averages the
// gradients over the ranks between backward and clipping, so the grad norm, clipping and AdamW all
// see the global batch's gradient. Such steps always run eagerly: the engine's bucket bookkeeping
// (hooks counting gradients in, host-side waits on the collectives) happens on the host and would
// not be replayed by a CUDA graph.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "harness/config.h"
#include "methods/optim.h"

namespace ablate {

class DataParallel;
class PretrainMethod;

// Makes a non-default CUDA stream current while alive (graph capture needs one); no-op on CPU.
class StepStream {
 public:
  explicit StepStream(torch::Device device, bool needed);
  ~StepStream();
  StepStream(const StepStream&) = delete;
  StepStream& operator=(const StepStream&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Milliseconds per phase of one eagerly timed step (CUDA events on GPU, wall clock on CPU).
struct PhaseTimes {
  double forward_ms = 0, backward_ms = 0, optimizer_ms = 0, total_ms = 0;
};

class TrainStep {
 public:
  static constexpr int kEagerWarmupSteps = 3;

  // `dp`, when given, must outlive the TrainStep and already be attached to `method`.
  TrainStep(const RunConfig& cfg, PretrainMethod& method, torch::Device device, DataParallel* dp = nullptr);
  ~TrainStep();

  FusedAdamW& optimizer() { return opt_; }
  bool bf16() const { return bf16_; }
  bool graphed() const;  // whether calls now replay a captured graph

  void set_first_step(int64_t step);  // index of the next step (after a resume)
  void set_lr(double lr);
  void set_psts_weights(const std::array<double, 3>& w);
  // Runs one step on `images` (B, 3, S, S), normalised float on the device. With method.infobatch
  // the optimiser minimises mean(per_sample * sample_weights), `sample_weights` (B,) float on the
  // device (required then, ignored otherwise); without it, the method's plain mean.
  void operator()(const torch::Tensor& images, const torch::Tensor& sample_weights = {});
  // One eager step with per-phase timing (synchronises; for benchmarks only).
  PhaseTimes timed_eager(const torch::Tensor& images);

  // (B,) float32 per-sample losses of the last step, on the device, no sync (InfoBatch scores; only
  // kept with method.infobatch).
  const torch::Tensor& per_sample() const { return per_sample_; }

  // Device -> host reads (these synchronise; call at log points only). loss() is the batch's plain
  // mean also under InfoBatch, so loss curves stay comparable between runs with and without it.
  double loss() const;
  double grad_norm() const;
  int64_t first_bad_step() const;  // first step with a non-finite loss or gradient, -1 if none
  std::vector<std::pair<std::string, double>> terms() const;

 private:
  void run_eager();

  const RunConfig& cfg_;
  PretrainMethod& method_;
  torch::Device device_;
  DataParallel* dp_;
  bool bf16_;
  FusedAdamW opt_;
  torch::Tensor images_;        // (B, 3, S, S) static input buffer
  torch::Tensor weights_;       // (B,) static InfoBatch sample weights
  torch::Tensor per_sample_;    // (B,) per-sample losses of the last step (InfoBatch)
  torch::Tensor psts_weights_;  // (3,) stage probabilities near/far/random
  torch::Tensor step_;          // () int64, index of the step being run
  torch::Tensor loss_;          // () total loss of the last step
  torch::Tensor grad_norm_;     // () pre-clipping global grad norm of the last step
  torch::Tensor first_bad_;     // () int64
  std::vector<torch::Tensor> terms_;  // () per named loss term
  std::vector<std::string> term_names_;
  int eager_done_ = 0;
  struct Graph;
  std::unique_ptr<Graph> graph_;  // CUDA only
};

}  // namespace ablate
