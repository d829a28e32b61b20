// MAE's linear probe: a linear classifier on frozen encoder features, with a BatchNorm1d without
// affine parameters (eps 1e-6) in front of the Linear head. The normalisation only rescales
// features (it could be folded into the linear layer at inference) but makes the probe insensitive
// to the feature scale, which differs a lot between encoders (MAE appendix on linear
// probing; main_linprobe.py).
//
// Differences from MAE, for speed at our dataset sizes:
//  * trained on precomputed features (features.h) instead of images with random-resized-crop +
//    flip augmentation: the encoder is frozen either way, so only the augmentation is lost;
//  * SGD with momentum 0.9 and no weight decay instead of LARS (LARS matters at MAE's batch 16384);
//  * lr = probe_lr * batch / 256 on a per-step half-cycle cosine to 0, without MAE's warm-up.
// The head is initialised as in MAE (weights N(0, 0.01^2), bias 0) from the given seed, which also
// drives the shuffling, so a probe is reproducible.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/nn/modules/container/sequential.h>
#include <torch/types.h>

#include "harness/config.h"
#include "methods/knn.h"

namespace ablate {

struct ProbeResult {
  TopkAccuracy val;                // accuracy on the validation features
  std::vector<double> epoch_loss;  // mean training cross-entropy per epoch
};

// BatchNorm1d(dim, affine=false, eps=1e-6) -> Linear(dim, num_classes), weights N(0, 0.01^2) from
// `gen`, bias 0: (B, dim) -> logits (B, num_classes).
torch::nn::Sequential make_probe_head(int64_t dim, int64_t num_classes, torch::Generator& gen);

// train_feats (N_t, D), train_labels (N_t) int64, val_feats (N_v, D), val_labels (N_v); any device,
// moved to `device`. Uses cfg.probe_epochs and cfg.probe_lr. The batch is capped at N_t; the last
// incomplete batch of an epoch is dropped (as in MAE), so BatchNorm never sees a batch of one.
ProbeResult linear_probe(const torch::Tensor& train_feats, const torch::Tensor& train_labels,
                         const torch::Tensor& val_feats, const torch::Tensor& val_labels,
                         int64_t num_classes, const EvalConfig& cfg, torch::Device device,
                         uint64_t seed, int64_t batch = 256);

}  // namespace ablate
