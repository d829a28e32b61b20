// Training checkpoints: everything needed to continue a run exactly where it stopped.
//
// A checkpoint holds a magic + format version, the step and data position, the model, the
// optimizer state (moments and step counters), every RNG the run owns (CPU and, when present, CUDA
// default generators) and the recent grad-norm history the divergence check uses. It is written to
// a temporary file, fsynced and renamed over the previous one, so a kill at any moment leaves either
// the old or the new checkpoint, never a torn one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include <torch/nn/module.h>

#include "methods/optim.h"

namespace ablate {

inline constexpr int64_t kCheckpointMagic = 0x41424C4154453031;  // "ABLATE01"
inline constexpr int64_t kCheckpointVersion = 1;

struct TrainProgress {
  int64_t step = 0;            // optimizer steps completed
  int64_t epoch = 0;           // loader epoch of the next batch
  int64_t position = 0;        // samples of that epoch already consumed
  std::vector<double> grad_norm_history;  // recent logged grad norms (divergence check)
};

void save_checkpoint(const std::filesystem::path& file, const TrainProgress& progress,
                     torch::nn::Module& model, const FusedAdamW& optimizer);

// Returns false when `file` does not exist; throws DataError on a bad magic/version or mismatch.
bool load_checkpoint(const std::filesystem::path& file, TrainProgress& progress,
                     torch::nn::Module& model, FusedAdamW& optimizer);

}  // namespace ablate
