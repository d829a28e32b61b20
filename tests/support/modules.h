// Test helper: parameter count of a LibTorch module (what the models' analytic counts are checked
// against).
#pragma once

#include <cstdint>

#include <torch/nn/module.h>

namespace ablate {

inline int64_t numel_of(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace ablate
