// Linear probe on frozen features (see linear_probe.h for the recipe and its deviations from MAE).
#include "methods/linear_probe.h"

#include "pch/torch_pch.h"

#include <algorithm>

#include "datasets/augment.h"
#include "harness/check.h"
#include "methods/optim.h"

namespace ablate {

torch::nn::Sequential make_probe_head(int64_t dim, int64_t num_classes, torch::Generator& gen) {
  torch::nn::BatchNorm1d norm(torch::nn::BatchNorm1dOptions(dim).affine(false).eps(1e-6));
  torch::nn::Linear head(dim, num_classes);
  torch::NoGradGuard no_grad;
  head->weight.copy_(torch::randn({num_classes, dim}, gen) * 0.01);
  head->bias.zero_();
  return torch::nn::Sequential(norm, head);
}

ProbeResult linear_probe(const torch::Tensor& train_feats, const torch::Tensor& train_labels,
                         const torch::Tensor& val_feats, const torch::Tensor& val_labels,
                         int64_t num_classes, const EvalConfig& cfg, torch::Device device,
                         uint64_t seed, int64_t batch) {
  ABLATE_CHECK(train_feats.dim() == 2 && val_feats.dim() == 2 &&
                   train_feats.size(1) == val_feats.size(1) && train_feats.size(0) >= 2,
               "train {} val {}", c10::str(train_feats.sizes()), c10::str(val_feats.sizes()));
  ABLATE_CHECK(train_labels.size(0) == train_feats.size(0) && batch > 0 && num_classes > 0,
               "labels {} batch {} classes {}", c10::str(train_labels.sizes()), batch, num_classes);
  const int64_t n = train_feats.size(0), dim = train_feats.size(1);
  const int64_t bs = std::min(batch, n);
  const int64_t steps_per_epoch = n / bs;
  const int64_t total_steps = steps_per_epoch * cfg.probe_epochs;
  const double base_lr = cfg.probe_lr * static_cast<double>(bs) / 256.0;

  torch::Generator gen = make_generator(torch::kCPU, seed);
  torch::nn::Sequential probe = make_probe_head(dim, num_classes, gen);
  probe->to(device);
  torch::optim::SGD optimizer(probe->parameters(),
                              torch::optim::SGDOptions(base_lr).momentum(0.9).weight_decay(0.0));

  const torch::Tensor x = train_feats.to(device, torch::kFloat32);  // (N_t, D)
  const torch::Tensor y = train_labels.to(device, torch::kInt64);   // (N_t)
  ProbeResult result;
  int64_t step = 0;
  probe->train();
  for (int64_t epoch = 0; epoch < cfg.probe_epochs; ++epoch) {
    const torch::Tensor order = torch::randperm(n, gen, torch::kInt64).to(device);  // (N_t)
    torch::Tensor loss_sum = torch::zeros({}, x.options());
    for (int64_t s = 0; s < steps_per_epoch; ++s, ++step) {
      for (auto& group : optimizer.param_groups()) {
        static_cast<torch::optim::SGDOptions&>(group.options())
            .lr(lr_at(step, total_steps, /*warmup_steps=*/0, base_lr, /*min_lr=*/0.0));
      }
      const torch::Tensor idx = order.slice(0, s * bs, (s + 1) * bs);  // (b)
      const torch::Tensor loss = torch::nn::functional::cross_entropy(
          probe->forward(x.index_select(0, idx)), y.index_select(0, idx));
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      loss_sum += loss.detach();
    }
    result.epoch_loss.push_back(loss_sum.item<double>() / static_cast<double>(steps_per_epoch));
  }

  probe->eval();
  torch::NoGradGuard no_grad;
  result.val = topk_accuracy(probe->forward(val_feats.to(device, torch::kFloat32)), val_labels);
  return result;
}

}  // namespace ablate
