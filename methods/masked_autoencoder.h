// What MAE, CrossMAE, SelectiveMAE and Cross-Scale MAE share: a ViT encoder, a pixel decoder and
// one "view" pass (encode the visible patches, decode the chosen ones, MSE against the targets).
// Subclasses decide which patches are visible and which are reconstructed (plan) and combine views
// into loss terms (forward).
#pragma once

#include <cstdint>
#include <memory>

#include "harness/config.h"
#include "methods/decoder.h"
#include "methods/masking.h"
#include "methods/method.h"
#include "methods/vit.h"

namespace ablate {

struct MaskPlan {
  MaskSplit split;        // visible / masked patches
  torch::Tensor ids_rec;  // (B, N_rec) patches the decoder reconstructs (a subset of the masked)
};

class MaskedAutoencoder : public PretrainMethod {
 public:
  explicit MaskedAutoencoder(const RunConfig& config);
  // One view: tokens, plan, reconstruction loss as the single term loss_re (MAE, CrossMAE,
  // SelectiveMAE); Cross-Scale MAE overrides it.
  LossTerms forward(const StepInputs& inputs) override;
  VisionTransformer& encoder() override { return encoder_; }
  torch::Tensor reconstruct(const torch::Tensor& images, torch::Tensor* shown_mask,
                            torch::Tensor* selected_mask) override;

 protected:
  // Visible and reconstructed patches for images (B, 3, H, W) with embedded tokens (B, L, D);
  // psts_weights as in StepInputs.
  virtual MaskPlan plan(const torch::Tensor& images, const torch::Tensor& tokens,
                        const torch::Tensor& psts_weights) = 0;

  struct ViewOutput {
    // (B, 1 + N_vis, D) encoder output: after the final norm, or the last block's output when
    // final_norm_ is off (Cross-Scale MAE's public code computes the norm and discards it).
    torch::Tensor latent;
    DecoderOutput decoded;
    torch::Tensor loss_re;  // (B,) reconstruction MSE
  };
  ViewOutput run_view(const torch::Tensor& images, const torch::Tensor& tokens, const MaskPlan& plan);
  // Random masking with the first n_rec masked patches reconstructed (MAE, CrossMAE, Cross-Scale).
  MaskPlan random_plan(int64_t batch, torch::Device device) const;

  MethodConfig method_;
  bool final_norm_ = true;  // the encoder's final norm applied to what the decoder sees
  int64_t patches_, n_keep_, n_rec_;
  VisionTransformer encoder_{nullptr};
  std::shared_ptr<DecoderImpl> decoder_;
};

}  // namespace ablate
