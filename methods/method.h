// The plug-in interface between the pre-training loop and a method (MAE, CrossMAE, SelectiveMAE,
// Cross-Scale MAE): one forward per step returning named loss terms, the encoder for evaluation,
// and a reconstruction for figures. make_method builds the configured method; lr_rule_multiplier is
// the method's learning-rate rule (SelectiveMAE scales lr with the masking / reconstruction ratio).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "harness/config.h"
#include "methods/vit.h"

namespace ablate {

struct StepInputs {
  torch::Tensor images;        // (B, 3, H, W) normalised float, on the device
  torch::Tensor psts_weights;  // (3,) float on the device: P(near, far, random); may be undefined
};

struct LossTerms {
  torch::Tensor total;  // () batch mean of per_sample: what the optimiser minimises without InfoBatch
  std::vector<std::pair<std::string, torch::Tensor>> terms;  // () named terms: "loss_re", "loss_cc", ...
  torch::Tensor per_sample;  // (B,) weighted sum of the terms per sample, with its graph: InfoBatch
                             // reweights it (TrainStep) and scores samples by it
};

class PretrainMethod : public torch::nn::Module {
 public:
  // One training step's loss. The same terms, in the same order, every step.
  virtual LossTerms forward(const StepInputs& inputs) = 0;
  virtual VisionTransformer& encoder() = 0;
  // For figures, no gradient: (B, 3, H, W) image showing the visible patches as given, the
  // reconstructed ones as predicted (de-normalised with the true patch statistics when the targets
  // are normalised) and the rest 0. shown_mask / selected_mask, when given, receive (B, L) float
  // masks of the visible and of the reconstructed patches.
  virtual torch::Tensor reconstruct(const torch::Tensor& images, torch::Tensor* shown_mask,
                                    torch::Tensor* selected_mask) = 0;
};

// The method of config.method.name, on the CPU (move it with ->to(device)). The config is
// validated (harness/config_io.h): a combination it cannot run (e.g. selectivemae without the cross
// decoder) is an internal error here.
std::shared_ptr<PretrainMethod> make_method(const RunConfig& config);

// lr multiplier of method.lr_rule: m_over_r = mask_ratio / r, r_over_m = r / mask_ratio,
// none = 1, where r = recon_ratio, or mask_ratio when recon_ratio = 0 (all masked reconstructed).
double lr_rule_multiplier(const MethodConfig& method);

}  // namespace ablate
