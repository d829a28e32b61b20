// Cross-Scale MAE (Tang et al. 2023). A second, low-scale view of every image is a random resized
// crop (torchvision's RandomResizedCrop rule: area fraction in [scale_min, scale_max], aspect
// 3/4..4/3 or square, resized back to the input side) made on the device with affine_grid +
// grid_sample (fixed shapes). Terms, each switchable:
//   loss_re  MAE reconstruction of both views, summed (the public code) or averaged
//            (re_reduction; only the original without multiscale);
//   loss_cc  encoder cross-consistency between the pooled encoder features (mean of the patch
//            tokens or cls, optional MLP projection head) of the two views: NT-Xent with
//            negatives (denominator negatives-only as the public code, or SimCLR's), or the
//            negative-free BYOL cosine loss (enc_negatives);
//   loss_cp  decoder cross-prediction: a predictor maps the low-scale view's decoder tokens to
//            the original view's (not detached, as in the public code), MSE on the positives or
//            InfoNCE with the other images at the same position as negatives (dec_negatives).
//            The public predictor sees all L decoder tokens (cp_tokens "all") through
//            Linear -> BatchNorm1d(L) -> ReLU -> Linear (cp_head "bn", CrossPredictor below).
// The public code (aicip/Cross-Scale-MAE f991ab7) masks the two views independently and feeds the
// decoder and L_cc the encoder output before its final norm (the norm's result is discarded);
// view_masks "shared" and cs_final_norm are the alternatives (README, "official code differs").
// Predicting only the masked tokens needs the shared mask, so both views' tokens stand for the
// same positions. With model.gsd_pos the crop's positions are scaled by its side fraction
// (sqrt of its area fraction: its ground sample distance relative to the original), Scale-MAE
// style.
#pragma once

#include <torch/nn/modules/batchnorm.h>

#include "methods/masked_autoencoder.h"
#include "methods/transformer.h"

namespace ablate {

struct ScaleView {
  torch::Tensor images;  // (B, 3, H, W) crops resized to the input side
  torch::Tensor boxes;   // (B, 4) (top, left, height, width) of each crop in input pixels
  torch::Tensor side;    // (B,) sqrt(crop area / image area)
};
// Random crops as torchvision's RandomResizedCrop.get_params (datasets/augment.h): area fraction
// U(area_min, area_max), aspect ratio log-uniform in [3/4, 4/3] (1 when square), one box for the
// whole batch when shared (the public code crops the batch tensor at once), bilinearly resampled
// to the input size. Draws from the global generator of the images' device.
ScaleView random_scale_view(const torch::Tensor& images, double area_min, double area_max, bool shared,
                            bool square);

// The public cross-prediction head (models_mae/MLP.py): (B, L, d) -> (B, L, d) through
// Linear(d, hidden) -> BatchNorm1d(L) -> ReLU -> Linear(hidden, d). The BatchNorm's channels are
// the L token positions, so it normalises each position over the batch and the hidden units.
// Submodules are named "0", "1", "3" as in the public state dict.
class CrossPredictorImpl : public torch::nn::Module {
 public:
  CrossPredictorImpl(int64_t dim, int64_t tokens, int64_t hidden, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
};
TORCH_MODULE(CrossPredictor);

class CrossScaleMae : public MaskedAutoencoder {
 public:
  explicit CrossScaleMae(const RunConfig& config);
  LossTerms forward(const StepInputs& inputs) override;

  Mlp projector{nullptr};  // encoder features -> L_cc space (when method.proj_head)
  // Low-scale decoder tokens -> original decoder tokens (when loss_cp): one of the two.
  CrossPredictor bn_predictor{nullptr};  // cp_head "bn"
  Mlp predictor{nullptr};                // cp_head "gelu"

 protected:
  MaskPlan plan(const torch::Tensor& images, const torch::Tensor& tokens,
                const torch::Tensor& psts_weights) override;

 private:
  torch::Tensor pooled(const torch::Tensor& latent);  // (B, 1 + N, D) -> (B, D') for L_cc
  torch::Tensor cross_prediction(const ViewOutput& orig, const ViewOutput& low);  // (B,) L_cp
  bool gsd_pos_;
};

}  // namespace ablate
