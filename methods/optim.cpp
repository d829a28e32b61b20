// Fused AdamW and the warm-up + cosine schedule (see optim.h).
#include "methods/optim.h"

#include <cmath>
#include <numbers>

#include "harness/check.h"
#include "pch/torch_pch.h"

namespace ablate {

FusedAdamW::FusedAdamW(const torch::nn::Module& model, const TrainConfig& cfg, torch::Device device)
    : beta1_(cfg.beta1), beta2_(cfg.beta2) {
  Group decay, no_decay;
  decay.weight_decay = cfg.weight_decay;
  for (const auto& p : model.parameters()) {
    if (!p.requires_grad()) continue;
    Group& g = p.dim() <= 1 ? no_decay : decay;
    g.params.push_back(p);
    g.exp_avg.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    g.exp_avg_sq.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    // Per-parameter step counters (float32 scalars on the parameter's device), as torch.optim keeps them.
    g.steps.push_back(torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(p.device())));
  }
  for (Group* g : {&decay, &no_decay})
    if (!g->params.empty()) groups_.push_back(std::move(*g));
  ABLATE_CHECK(!groups_.empty(), "model has no trainable parameters");
  lr_ = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
}

torch::Tensor FusedAdamW::clip_grad_norm(double max_norm) {
  std::vector<torch::Tensor> grads;
  for (auto& g : groups_)
    for (auto& p : g.params)
      if (p.grad().defined()) grads.push_back(p.grad());
  ABLATE_CHECK(!grads.empty(), "clip_grad_norm called before backward");
  auto norms = at::_foreach_norm(grads, 2);
  auto total = torch::linalg_vector_norm(torch::stack(norms).to(torch::kFloat32), 2);  // ()
  if (max_norm > 0) {
    auto coef = torch::clamp(max_norm / (total + 1e-6), std::nullopt, 1.0);
    at::_foreach_mul_(grads, coef);
  }
  return total;
}

void FusedAdamW::step() {
  for (auto& g : groups_) {
    std::vector<torch::Tensor> grads;
    grads.reserve(g.params.size());
    for (auto& p : g.params) {
      ABLATE_CHECK(p.grad().defined(), "parameter without gradient in optimizer step");
      grads.push_back(p.grad());
    }
    torch::NoGradGuard no_grad;
    // The fused kernel reads the step counters for bias correction but does not advance them
    // (torch.optim does this _foreach_add_ itself before calling it).
    at::_foreach_add_(g.steps, 1);
    at::_fused_adamw_(g.params, grads, g.exp_avg, g.exp_avg_sq, /*max_exp_avg_sqs=*/{}, g.steps, lr_,
                      beta1_, beta2_, g.weight_decay, eps_, /*amsgrad=*/false, /*maximize=*/false);
  }
}

void FusedAdamW::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params)
      if (p.grad().defined()) p.mutable_grad().zero_();
}

int64_t FusedAdamW::num_params() const {
  int64_t n = 0;
  for (const auto& g : groups_)
    for (const auto& p : g.params) n += p.numel();
  return n;
}

std::vector<torch::Tensor> FusedAdamW::state() const {
  std::vector<torch::Tensor> out;
  for (const auto& g : groups_)
    for (size_t i = 0; i < g.params.size(); ++i) {
      out.push_back(g.exp_avg[i]);
      out.push_back(g.exp_avg_sq[i]);
      out.push_back(g.steps[i]);
    }
  return out;
}

void FusedAdamW::load_state(const std::vector<torch::Tensor>& tensors) {
  size_t k = 0;
  torch::NoGradGuard no_grad;
  for (auto& g : groups_)
    for (size_t i = 0; i < g.params.size(); ++i) {
      ABLATE_CHECK(k + 3 <= tensors.size(), "optimizer state has {} tensors, model needs more", tensors.size());
      g.exp_avg[i].copy_(tensors[k++]);
      g.exp_avg_sq[i].copy_(tensors[k++]);
      g.steps[i].copy_(tensors[k++]);
    }
  ABLATE_CHECK(k == tensors.size(), "optimizer state has {} tensors, model needs {}", tensors.size(), k);
}

double lr_at(double at, double total, double warmup, double base_lr, double min_lr) {
  // MAE: lr = blr_scaled * epoch / warmup_epochs with fractional epochs, so step 0 has lr 0.
  if (at < warmup) return base_lr * at / warmup;
  const double t = total > warmup ? std::min(1.0, (at - warmup) / (total - warmup)) : 1.0;
  return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * t));
}

}  // namespace ablate
