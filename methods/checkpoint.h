// Training checkpoints: everything needed to continue a run exactly where it stopped.
//
// A checkpoint holds a magic + format version, the step and data position, the model, the
// optimizer state (moments and step counters), every RNG the run owns (CPU and, when present, CUDA
// default generators), the recent grad-norm history the divergence check uses and, for InfoBatch
// runs, the sample scores and the current epoch's plan (format version 2; version 1 files, written
// before InfoBatch existed, are read the same way and simply have no InfoBatch state). It is written to
// a temporary file, fsynced and renamed over the previous one, so a kill at any moment leaves either
// the old or the new checkpoint, never a torn one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include <torch/nn/module.h>

#include "methods/optim.h"

namespace ablate {

class InfoBatch;

inline constexpr int64_t kCheckpointMagic = 0x41424C4154453031;  // "ABLATE01"
inline constexpr int64_t kCheckpointVersion = 2;

struct TrainProgress {
  int64_t step = 0;            // optimizer steps completed
  int64_t epoch = 0;           // loader epoch of the next batch
  int64_t position = 0;        // samples of that epoch already consumed
  std::vector<double> grad_norm_history;  // recent logged grad norms (divergence check)
};

// `infobatch`: the run's InfoBatch state, saved too (nullptr when the run does not prune).
void save_checkpoint(const std::filesystem::path& file, const TrainProgress& progress,
                     torch::nn::Module& model, const FusedAdamW& optimizer, const InfoBatch* infobatch = nullptr);

// The model weights alone (for evaluation, `ablate worker --eval`): loads `model` from `file` and
// returns the step it was written at. DataError when the file is missing, unreadable or not an
// ablate checkpoint.
int64_t load_checkpoint_weights(const std::filesystem::path& file, torch::nn::Module& model);

// Returns false when `file` does not exist; throws DataError on a bad magic/version or mismatch, or
// when `infobatch` is given and the file holds no InfoBatch state.
bool load_checkpoint(const std::filesystem::path& file, TrainProgress& progress,
                     torch::nn::Module& model, FusedAdamW& optimizer, InfoBatch* infobatch = nullptr);

}  // namespace ablate
