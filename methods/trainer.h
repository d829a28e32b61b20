// The pre-training loop: one explicit function, the same for every method.
//
// Methods plug in through PretrainMethod::forward (images -> named loss terms); data arrives through
// BatchSource (augmented, normalised batches already on the device). The loop owns the optimizer,
// the lr schedule, divergence detection, metrics, checkpoints and resume. On CUDA the whole step
// (forward, backward, clipping, fused AdamW) is captured once as a CUDA graph and replayed; the
// loop never synchronises with the GPU except at log and checkpoint points (and, with InfoBatch,
// once per epoch to plan it).
//
// Data-parallel runs (a DataParallel engine, one call per rank): every rank loads the checkpoint,
// rank 0's parameters are broadcast, and gradients are averaged in each step. The metrics logged
// are means over the ranks, and the decisions taken at log points (divergence, a stop signal) are
// taken from all-reduced values, so the ranks never disagree on how many steps they run. Only rank
// 0 writes the journal and the checkpoint. Each step's random draws on a rank come from a generator
// seeded with rank_step_seed(seed, rank, step) (distributed.h): independent between ranks, and
// identical for a resumed and an uninterrupted run without saving any rank's generator state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

#include "harness/config.h"

namespace ablate {

class DataParallel;
class JournalWriter;
class PretrainMethod;

// Where training batches come from (the app adapts datasets' loader + device augmentation).
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual torch::Tensor next() = 0;                   // (B, 3, S, S) float, normalised, on device
  virtual int64_t batches_per_epoch() const = 0;      // of the current epoch (full, or as planned)
  virtual int64_t epoch() const = 0;                  // epoch of the next batch
  virtual int64_t position() const = 0;               // samples of that epoch already returned
  virtual void seek(int64_t epoch, int64_t position) = 0;  // continue exactly from there

  // For InfoBatch, which decides each epoch's samples itself:
  virtual std::vector<int64_t> pool() const = 0;      // dataset indices a full epoch permutes
  virtual torch::Tensor indices() const = 0;          // (B,) int64 dataset indices of the last batch, on device
  // Continue at `position` of epoch `epoch`, which visits exactly `order` (dataset indices, in this
  // order, full batches only) and then ends: the next epoch needs another seek_planned.
  virtual void seek_planned(int64_t epoch, int64_t position, const std::vector<int64_t>& order) = 0;
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
// Optimizer steps of a run: epochs * batches_per_epoch, capped by train.max_steps. (With InfoBatch
// the count is only known once the last pruned epoch is planned.)
int64_t total_steps(const RunConfig& cfg, int64_t batches_per_epoch);

// Pre-trains `method` in place. Resumes from run_dir/ckpt/last.pt when it exists; writes metrics
// to `journal` and checkpoints to run_dir/ckpt/. `stop_after` > 0 stops (with a checkpoint) after
// that many steps of this call: used by tests to interrupt a run deterministically. With `dp`
// (not yet attached to `method`), trains as one rank of a data-parallel run; `journal` must then
// be null on every rank but rank 0, and `data` yields this rank's slice of each global batch.
//
// With method.infobatch, each epoch is planned from the samples' latest losses (methods/infobatch.h)
// and so may be shorter than a full one; the run still ends after train.epochs epochs (or
// train.max_steps steps), and the lr and PSTS schedules follow the epochs done, fractions included
// (as the public code's per-iteration schedule), not the steps. The journal gets `infobatch_kept`
// (samples the epoch visits) at each epoch's first step, and the progress total is an upper bound
// (unplanned epochs counted in full) that becomes exact with the last epoch.
TrainOutcome pretrain(const RunConfig& cfg, PretrainMethod& method, BatchSource& data,
                      JournalWriter* journal, const std::filesystem::path& run_dir,
                      torch::Device device, int64_t stop_after = 0, DataParallel* dp = nullptr);

}  // namespace ablate
