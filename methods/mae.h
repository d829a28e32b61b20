// MAE (He et al. 2022) and CrossMAE (Fu et al. 2024): random masking, reconstruction of the masked
// patches (all, or floor(r * L) of them with recon_ratio), with the MAE or the cross decoder of
// model.decoder. One loss term, loss_re.
#pragma once

#include "methods/masked_autoencoder.h"

namespace ablate {

class Mae : public MaskedAutoencoder {
 public:
  explicit Mae(const RunConfig& config);

 protected:
  MaskPlan plan(const torch::Tensor& images, const torch::Tensor& tokens,
                const torch::Tensor& psts_weights) override;
};

}  // namespace ablate
