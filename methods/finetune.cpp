// Fine-tuning with layer-wise lr decay (see finetune.h for the recipe and what is left out).
#include "methods/finetune.h"

#include "pch/torch_pch.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "datasets/augment.h"
#include "harness/check.h"
#include "methods/optim.h"
#include "methods/transformer.h"

namespace ablate {

namespace {

// The dotted components of a parameter name: "blocks.3.attn.qkv.weight" -> blocks, 3, attn, ...
std::vector<std::string> components(const std::string& name) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (true) {
    const size_t dot = name.find('.', begin);
    parts.push_back(name.substr(begin, dot - begin));
    if (dot == std::string::npos) return parts;
    begin = dot + 1;
  }
}

bool is_index(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_token(const std::string& component) {
  return component == "cls_token" || component == "pos_embed" || component == "mask_token";
}

// Number of transformer blocks: one more than the highest "blocks.<i>" index (0 without blocks).
int64_t count_blocks(const std::vector<std::string>& names) {
  int64_t blocks = 0;
  for (const auto& name : names) {
    const auto parts = components(name);
    for (size_t i = 0; i + 1 < parts.size(); ++i)
      if (parts[i] == "blocks" && is_index(parts[i + 1]))
        blocks = std::max<int64_t>(blocks, std::stoll(parts[i + 1]) + 1);
  }
  return blocks;
}

}  // namespace

int64_t layer_id_for_lr_decay(const std::string& name, int64_t num_layers) {
  const auto parts = components(name);
  for (size_t i = 0; i < parts.size(); ++i) {
    if (is_token(parts[i]) || parts[i] == "patch_embed") return 0;
    if (parts[i] == "blocks" && i + 1 < parts.size() && is_index(parts[i + 1]))
      return std::stoll(parts[i + 1]) + 1;
  }
  return num_layers;
}

void set_finetune_drop_path(torch::nn::Module& encoder, double rate) {
  std::vector<Block> blocks;
  for (const auto& m : encoder.modules(/*include_self=*/false))
    if (auto b = std::dynamic_pointer_cast<BlockImpl>(m)) blocks.emplace_back(b);
  const auto n = static_cast<int64_t>(blocks.size());
  for (int64_t i = 0; i < n; ++i) blocks[i]->drop_path_rate = n > 1 ? rate * double(i) / double(n - 1) : 0.0;
}

namespace {

// Parameters sharing a layer id and a weight-decay choice train as one AdamW group.
struct GroupPlan {
  std::vector<torch::Tensor> params;
  double lr_scale = 1.0;
  double weight_decay = 0.0;
};

// The AdamW groups of layer-wise lr decay and each group's lr scale, in the same order.
struct LayerDecayGroups {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  std::vector<double> lr_scales;
};

// Random resized crops (scale crop_min..1, as MAE's fine-tuning RandomResizedCrop) and flips.
AugmentOptions finetune_augment(const FinetuneOptions& options) {
  AugmentOptions augment;
  augment.out_size = options.input_size;
  augment.scale_min = options.crop_min;
  augment.scale_max = 1.0;
  augment.hflip = true;
  return augment;
}

// The classification head, initialised from `gen` as MAE's.
torch::nn::Linear make_head(int64_t feat_dim, int64_t num_classes, torch::Generator& gen) {
  torch::nn::Linear head(feat_dim, num_classes);
  // MAE: trunc_normal_(std=2e-5); at that std truncation at +-2 never triggers.
  torch::NoGradGuard no_grad;
  head->weight.copy_(torch::randn({num_classes, feat_dim}, gen) * 2e-5);
  head->bias.zero_();
  return head;
}

// Layer-wise lr decay groups over encoder + head (the head is in the last layer): one group per
// layer id and weight-decay choice (none on biases, norms and tokens), its lr scaled by
// layer_decay^(num_layers - layer id).
LayerDecayGroups layer_decay_groups(torch::nn::Module& encoder, torch::nn::Module& head,
                                    const FinetuneOptions& options, double base_lr) {
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : encoder.named_parameters()) named.emplace_back(item.key(), item.value());
  for (const auto& item : head.named_parameters())
    named.emplace_back("head." + item.key(), item.value());
  std::vector<std::string> names;
  for (const auto& [name, p] : named) names.push_back(name);
  const int64_t num_layers = count_blocks(names) + 1;
  std::map<std::pair<int64_t, bool>, GroupPlan> plans;
  for (const auto& [name, p] : named) {
    if (!p.requires_grad()) continue;
    const auto parts = components(name);
    const bool decay = p.dim() > 1 && std::none_of(parts.begin(), parts.end(), is_token);
    const int64_t layer = layer_id_for_lr_decay(name, num_layers);
    GroupPlan& plan = plans[{layer, decay}];
    plan.params.push_back(p);
    plan.lr_scale = std::pow(options.layer_decay, static_cast<double>(num_layers - layer));
    plan.weight_decay = decay ? options.weight_decay : 0.0;
  }
  LayerDecayGroups out;
  for (auto& [key, plan] : plans) {
    out.groups.emplace_back(plan.params, std::make_unique<torch::optim::AdamWOptions>(
                                             torch::optim::AdamWOptions(base_lr)
                                                 .betas({0.9, 0.999})
                                                 .weight_decay(plan.weight_decay)));
    out.lr_scales.push_back(plan.lr_scale);
  }
  return out;
}

// The step's lr, scaled per group.
void set_group_lrs(torch::optim::AdamW& optimizer, const std::vector<double>& lr_scales, double lr) {
  for (size_t g = 0; g < lr_scales.size(); ++g) {
    static_cast<torch::optim::AdamWOptions&>(optimizer.param_groups()[g].options())
        .lr(lr * lr_scales[g]);
  }
}

// One optimizer step on an augmented batch: forward under bf16 autocast on CUDA, cross-entropy in
// fp32. Returns the loss, detached (on the device: no host synchronisation per step).
torch::Tensor finetune_step(torch::nn::Linear& head, const EmbedFn& features_fn,
                            torch::optim::AdamW& optimizer, const torch::Tensor& input,
                            const torch::Tensor& target,
                            const torch::nn::functional::CrossEntropyFuncOptions& loss_options,
                            torch::Device device) {
  torch::Tensor loss;
  {
    CudaBf16Autocast autocast(device);
    const torch::Tensor logits = head->forward(features_fn(input));  // (b, C)
    loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), target, loss_options);
  }
  optimizer.zero_grad();
  loss.backward();
  optimizer.step();
  return loss.detach();
}

}  // namespace

FinetuneResult finetune(const std::shared_ptr<torch::nn::Module>& encoder,
                        const EmbedFn& features_fn, int64_t feat_dim, int64_t num_classes,
                        const LabelledImages& train, const LabelledImages& val,
                        const EvalConfig& cfg, const FinetuneOptions& options, torch::Device device,
                        uint64_t seed) {
  ABLATE_CHECK(encoder && feat_dim > 0 && num_classes > 0 && options.batch > 0,
               "feat_dim {} classes {} batch {}", feat_dim, num_classes, options.batch);
  ABLATE_CHECK(train.images.dim() == 4 && train.images.size(0) == train.labels.size(0) &&
                   train.images.size(0) > 0,
               "train images {} labels {}", c10::str(train.images.sizes()),
               c10::str(train.labels.sizes()));
  const int64_t n = train.images.size(0);
  const int64_t bs = std::min(options.batch, n);
  const int64_t steps_per_epoch = n / bs;  // last incomplete batch dropped, as in MAE
  const int64_t total_steps = steps_per_epoch * cfg.ft_epochs;
  const int64_t warmup_steps =
      std::llround(options.warmup_fraction * static_cast<double>(total_steps));
  const double base_lr = cfg.ft_lr * static_cast<double>(bs) / 256.0;

  torch::Generator gen = make_generator(torch::kCPU, seed);
  torch::Generator augment_gen = make_generator(device, seed + 1);
  const AugmentOptions augment = finetune_augment(options);
  torch::nn::Linear head = make_head(feat_dim, num_classes, gen);
  encoder->to(device);
  head->to(device);
  set_finetune_drop_path(*encoder, cfg.ft_drop_path);
  // Every encoder parameter trains, including one pre-training left frozen (feature mapping).
  for (auto& p : encoder->parameters()) p.set_requires_grad(true);
  LayerDecayGroups decay = layer_decay_groups(*encoder, *head, options, base_lr);
  torch::optim::AdamW optimizer(std::move(decay.groups));

  const auto loss_options =
      torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(options.label_smoothing);
  const torch::Tensor labels = train.labels.to(torch::kCPU, torch::kInt64);  // (N)
  FinetuneResult result;
  int64_t step = 0;
  encoder->train();
  for (int64_t epoch = 0; epoch < cfg.ft_epochs; ++epoch) {
    const torch::Tensor order = torch::randperm(n, gen, torch::kInt64);  // (N)
    torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions(device));
    for (int64_t s = 0; s < steps_per_epoch; ++s, ++step) {
      set_group_lrs(optimizer, decay.lr_scales,
                    lr_at(step, total_steps, warmup_steps, base_lr, options.min_lr));
      const torch::Tensor idx = order.slice(0, s * bs, (s + 1) * bs);  // (b)
      const torch::Tensor images =
          train.images.index_select(0, idx.to(train.images.device())).to(device);  // (b, 3, S, S)
      const torch::Tensor target = labels.index_select(0, idx).to(device);         // (b)
      const torch::Tensor input = augment_batch(images, augment, augment_gen);     // (b, 3, M, M)
      loss_sum += finetune_step(head, features_fn, optimizer, input, target, loss_options, device);
    }
    result.epoch_loss.push_back(loss_sum.item<double>() / static_cast<double>(steps_per_epoch));
  }

  encoder->eval();
  const EmbedFn classify = [&](const torch::Tensor& x) { return head->forward(features_fn(x)); };
  result.val = topk_accuracy(
      extract_features(classify, val.images, /*scale=*/1.0, options.input_size, device, bs),
      val.labels);
  return result;
}

}  // namespace ablate
