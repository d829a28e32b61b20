// SelectiveMAE (Wang et al. 2024, "Scaling Efficient Masked Image Modeling on Large Remote Sensing
// Dataset"): high masking (85% by default in its configs), visible patches chosen by HOG score
// (top-k or sampling, method.hog_select), optionally grown by PSTS from a HOG seed of half the
// visible budget (methods/psts.h), and partial reconstruction of floor(r * L) masked patches
// chosen by HOG score among the masked ones (or uniformly, method.recon_select), with the CrossMAE
// decoder. One loss term, loss_re.
#pragma once

#include "methods/hog.h"
#include "methods/masked_autoencoder.h"

namespace ablate {

class SelectiveMae : public MaskedAutoencoder {
 public:
  explicit SelectiveMae(const RunConfig& config);

 protected:
  MaskPlan plan(const torch::Tensor& images, const torch::Tensor& tokens,
                const torch::Tensor& psts_weights) override;

 private:
  HogMode hog_mode_;
  bool sample_;  // hog_select == "multinomial"
};

}  // namespace ablate
