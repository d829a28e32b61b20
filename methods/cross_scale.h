// Cross-Scale MAE (Tang et al. 2023). A second, low-scale view of every image is a random resized
// crop (area fraction in [scale_min, scale_max], square, resized back to the input side) made on
// the device with affine_grid + grid_sample (fixed shapes). Terms, each switchable:
//   loss_re  MAE reconstruction, averaged over both views (only the original without multiscale);
//   loss_cc  encoder cross-consistency between the pooled encoder features (cls or mean of patch
//            tokens, optional MLP projection head) of the two views: NT-Xent with negatives, or the
//            negative-free BYOL cosine loss (enc_negatives);
//   loss_cp  decoder cross-prediction: an MLP predictor maps the low-scale view's decoder tokens to
//            the original view's decoder tokens (not detached, as in the public code), MSE on the
//            positives or InfoNCE with the other images at the same position as negatives
//            (dec_negatives).
// Both views share one mask plan so their decoder tokens stand for the same patch positions (the
// public code's consistent_mask), which is what makes token-wise cross-prediction well defined for
// the cross decoder too. With model.gsd_pos the crop's positions are scaled by its side fraction
// (its ground sample distance relative to the original), Scale-MAE style.
#pragma once

#include "methods/masked_autoencoder.h"
#include "methods/transformer.h"

namespace ablate {

struct ScaleView {
  torch::Tensor images;  // (B, 3, H, W) crops resized to the input side
  torch::Tensor side;    // (B,) crop side / image side = sqrt(area fraction)
};
// Random square crops of area fraction U(area_min, area_max) at a uniform position inside each
// image (one box for the whole batch when shared), bilinearly resampled to the input size.
ScaleView random_scale_view(const torch::Tensor& images, double area_min, double area_max, bool shared);

class CrossScaleMae : public MaskedAutoencoder {
 public:
  explicit CrossScaleMae(const RunConfig& config);
  LossTerms forward(const StepInputs& inputs) override;

  Mlp projector{nullptr};  // encoder features -> L_cc space (when method.proj_head)
  Mlp predictor{nullptr};  // low-scale decoder tokens -> original decoder tokens (when loss_cp)

 protected:
  MaskPlan plan(const torch::Tensor& images, const torch::Tensor& tokens,
                const torch::Tensor& psts_weights) override;

 private:
  torch::Tensor pooled(const torch::Tensor& latent);  // (B, 1 + N, D) -> (B, D') for L_cc
  bool gsd_pos_;
};

}  // namespace ablate
