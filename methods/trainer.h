// The pre-training loop: one explicit function, the same for every method.
//
// Methods plug in through PretrainMethod::forward (images -> named loss terms); data arrives through
// BatchSource (augmented, normalised batches already on the device). The loop owns the optimizer,
// the lr schedule, divergence detection, metrics, checkpoints and resume. On CUDA the whole step
// (forward, backward, clipping, fused AdamW) is captured once as a CUDA graph and replayed; the
// loop never synchronises with the GPU except at log and checkpoint points.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <torch/types.h>

#include "harness/config.h"

namespace ablate {

class JournalWriter;
class PretrainMethod;

// Where training batches come from (the app adapts datasets' loader + device augmentation).
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual torch::Tensor next() = 0;                   // (B, 3, S, S) float, normalised, on device
  virtual int64_t batches_per_epoch() const = 0;
  virtual int64_t epoch() const = 0;                  // epoch of the next batch
  virtual int64_t position() const = 0;               // samples of that epoch already returned
  virtual void seek(int64_t epoch, int64_t position) = 0;  // continue exactly from there
};

struct TrainOutcome {
  std::string status = "done";  // "done" | "diverged" | "stopped" (stop signal; checkpointed)
  std::string reason;           // why it stopped when not done
  int64_t steps = 0;            // optimizer steps completed
  int64_t diverged_step = -1;   // first bad step when diverged
  double final_loss = 0.0;      // last logged total loss
};

// Base lr of a run: train.lr when set, else blr * batch / 256, times the method's lr rule.
double base_lr(const RunConfig& cfg);
// Optimizer steps of a run: epochs * batches_per_epoch, capped by train.max_steps.
int64_t total_steps(const RunConfig& cfg, int64_t batches_per_epoch);

// Pre-trains `method` in place. Resumes from run_dir/ckpt/last.pt when it exists; writes metrics
// to `journal` and checkpoints to run_dir/ckpt/. `stop_after` > 0 stops (with a checkpoint) after
// that many steps of this call: used by tests to interrupt a run deterministically.
TrainOutcome pretrain(const RunConfig& cfg, PretrainMethod& method, BatchSource& data,
                      JournalWriter& journal, const std::filesystem::path& run_dir,
                      torch::Device device, int64_t stop_after = 0);

}  // namespace ablate
