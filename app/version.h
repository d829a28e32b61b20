// `ablate --version`: versions of ablate, LibTorch, CUDA, cuDNN, NCCL, OpenCV, SQLite and the git
// commit of the source tree, as one ordered list (also journaled into every run's env).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ablate {

std::vector<std::pair<std::string, std::string>> library_versions();

}  // namespace ablate
