// AdamW over flat parameter lists with the fused kernel (at::_fused_adamw_), and the learning-rate
// schedule (linear warm-up, then half-cycle cosine) used by every pre-training method.
//
// Why not torch::optim::AdamW: it loops over parameters on the host (one kernel chain per tensor),
// keeps its step counter on the host and takes lr as a double, so a train step cannot be captured
// as a CUDA graph. Here the lr is a 0-dim device tensor and the step counters are device tensors,
// so `step()` launches a handful of multi-tensor kernels and never synchronises.
#pragma once

#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "harness/config.h"

namespace ablate {

class FusedAdamW {
 public:
  // Parameters with dim <= 1 (biases, norms, tokens) get no weight decay, as in MAE.
  FusedAdamW(const torch::nn::Module& model, const TrainConfig& cfg, torch::Device device);

  // Global L2 norm of all gradients, (), without a host sync; clips in place when max_norm > 0.
  torch::Tensor clip_grad_norm(double max_norm);
  // One AdamW update with the lr held in `lr()`.
  void step();
  // Zero gradients in place (keeps the tensors a CUDA graph captured).
  void zero_grad();

  torch::Tensor& lr() { return lr_; }  // (), float32, on the parameters' device
  int64_t num_params() const;

  // Optimizer state for checkpoints: exp_avg, exp_avg_sq and step per parameter, in order.
  std::vector<torch::Tensor> state() const;
  void load_state(const std::vector<torch::Tensor>& tensors);

 private:
  struct Group {
    std::vector<torch::Tensor> params, exp_avg, exp_avg_sq, steps;
    double weight_decay = 0.0;
  };
  std::vector<Group> groups_;
  torch::Tensor lr_;
  double beta1_, beta2_, eps_ = 1e-8;
};

// lr at point `at` of a run of length `total`: linear warm-up over `warmup`, then half-cycle cosine
// from `base_lr` to `min_lr` (MAE's lr_sched.adjust_learning_rate). All three in one unit: steps
// (0-based step index), or epochs with fractions, as InfoBatch runs schedule since their epochs
// differ in length.
double lr_at(double at, double total, double warmup, double base_lr, double min_lr);

}  // namespace ablate
