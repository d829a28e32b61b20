// The two step configurations `ablate bench` times against the Python reference
// (../shared/bench/mae_reference.py), as plain RunConfigs so that code without LibTorch (the
// memory estimate's tests) can use the very same shapes:
//   mae          75% masking, MAE decoder 8 x 512 (16 heads)
//   selectivemae 85% masking, 25% of all patches reconstructed, CrossMAE decoder 12 x 512 (16 heads)
// Both with patch 16; the other methods (crossmae, crossscale) are timed in the second shape.
#pragma once

#include <string>

#include "harness/config.h"

namespace ablate {

RunConfig bench_preset(MethodKind method, const std::string& model, int img_size, int batch);

}  // namespace ablate
