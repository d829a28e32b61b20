// End-to-end fine-tuning of a pre-trained encoder with a linear classification head, following
// MAE's fine-tuning recipe (main_finetune.py): AdamW, layer-wise lr decay, linear warm-up then
// half-cycle cosine, label smoothing, random-resized-crop + flip augmentation (datasets/augment.h,
// crop area 0.08-1 as timm's default).
//
// Layer-wise lr decay (MAE / BEiT): with L = blocks + 1, the patch embedding and tokens are layer
// 0, block i is layer i + 1, everything else (final norm, head) layer L, and a parameter of layer l
// trains with lr * decay^(L - l), so layers near the input move least. Biases, 1-D parameters and
// position / class / mask tokens get no weight decay.
//
// Stochastic depth eval.ft_drop_path (MAE: 0.1) replaces the pre-training encoder's.
// Not done (documented deviations from MAE): RandAugment, random erasing, mixup / cutmix, and MAE's
// global-pool head (the head sits on whatever `features_fn` returns, the CLS token here).
// Randomness: head init and shuffling draw from a CPU generator seeded with `seed`, the
// augmentation from a generator on the training device seeded with seed + 1; dropout / drop-path
// inside the encoder draw from LibTorch's default generator.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "harness/config.h"
#include "methods/features.h"
#include "methods/knn.h"

namespace ablate {

struct LabelledImages {
  torch::Tensor images;  // (N, 3, S, S) uint8, any device
  torch::Tensor labels;  // (N) int64
};

struct FinetuneOptions {
  int64_t input_size = 64;    // model input side M
  double crop_min = 0.08;     // random resized crop area fraction, lower (upper 1)
  int64_t batch = 64;         // lr = cfg.ft_lr * batch / 256 (capped at the train set size)
  double layer_decay = 0.75;  // MAE (ViT-L); MAE uses 0.65 for ViT-B
  double weight_decay = 0.05;
  double warmup_fraction = 0.05;  // of all steps (MAE: 5 of 100 epochs)
  double min_lr = 1e-6;
  double label_smoothing = 0.1;
};

struct FinetuneResult {
  TopkAccuracy val;                // after the last epoch
  std::vector<double> epoch_loss;  // mean training loss (with label smoothing) per epoch
};

// Layer index of parameter `name` for lr decay, as in MAE's get_layer_id_for_vit; num_layers =
// number of blocks + 1. Names match by dotted component, so "encoder.blocks.3.attn.qkv.weight" is
// block 3.
int64_t layer_id_for_lr_decay(const std::string& name, int64_t num_layers);

// Stochastic depth of fine-tuning: the blocks of `encoder` (in module order) get rates rising
// linearly from 0 to `rate` (timm / MAE main_finetune --drop_path, default 0.1), whatever the
// pre-training encoder had (model.drop_path, MAE: none).
void set_finetune_drop_path(torch::nn::Module& encoder, double rate);

// Fine-tunes `encoder` (in place: pass a copy) plus a new Linear(feat_dim, num_classes) head for
// cfg.ft_epochs epochs at base lr cfg.ft_lr on `train`, then reports accuracy on `val` (images
// prepared as extract_features does at scale 1). `features_fn` maps normalised (B, 3, M, M)
// images to (B, feat_dim) through `encoder` with gradients. The number of blocks is read from
// parameter names ("blocks.<i>.").
FinetuneResult finetune(const std::shared_ptr<torch::nn::Module>& encoder,
                        const EmbedFn& features_fn, int64_t feat_dim, int64_t num_classes,
                        const LabelledImages& train, const LabelledImages& val,
                        const EvalConfig& cfg, const FinetuneOptions& options, torch::Device device,
                        uint64_t seed);

}  // namespace ablate
