// The precompiled header of every LibTorch-using target: parsing <torch/torch.h> costs ~20 s per
// translation unit, so it is compiled once per build and reused (cmake/AblateTorchTarget.cmake).
#pragma once
#include <torch/torch.h>
