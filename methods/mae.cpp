// MAE / CrossMAE step (see mae.h).
#include "methods/mae.h"

#include "pch/torch_pch.h"

namespace ablate {

Mae::Mae(const RunConfig& config) : MaskedAutoencoder(config) {}

MaskPlan Mae::plan(const torch::Tensor& images, const torch::Tensor&, const torch::Tensor&) {
  return random_plan(images.size(0), images.device());
}

}  // namespace ablate
