// The evaluation stage of `ablate run`: after pre-training, every evaluation an experiment asks of
// its runs (harness/eval_task.h) that has no result yet runs as its own worker process
// (`<ablate_exe> worker --eval <runs_root>/evals/<eval id>`), one per GPU of --gpus or --jobs at a
// time on the CPU, so several evaluations of one checkpoint run at once. An evaluation runs once its
// run is done; one whose run failed or diverged stays queued. Adding an evaluation to the file and
// running again therefore evaluates the existing checkpoints only. The evaluations of the
// experiment's external checkpoint rows (`weights:`, harness/experiment.h) wait for nothing.
//
// Each task has the run lifecycle (queued -> running -> done/failed, lost when its runner vanished)
// in the eval_tasks table, claimed with an attempt number; the worker reports only through its
// folder's journal.jsonl, which the loop ingests (JournalOf::eval). Evaluations do not resume: an
// attempt starts in an emptied folder.
#pragma once

#include <filesystem>
#include <functional>

#include "harness/experiment.h"
#include "harness/runner.h"

namespace ablate {

class Store;
class ProgressLine;
struct ClaimInfo;

struct EvalStage {
  Store& store;
  ProgressLine& progress;
  const ClaimInfo& claim;                  // host, runner pid, code version of this runner
  std::filesystem::path runs_root;         // evaluations live in runs_root/evals/<eval id>
  std::function<bool()> stop_requested;    // polled; true stops the workers (their tasks end lost)
};

struct EvalStageResult {
  int planned = 0;   // tasks the experiment asks for
  int done = 0;      // done at the end of this call (run now or before)
  int failed = 0;    // failed at the end of this call
  int waiting = 0;   // not run: their run is not done
  int run = 0;       // workers started by this call
  bool interrupted = false;
};

// Registers every evaluation task of `experiment`'s runs and runs those that are due (queued or
// lost, and failed with --rerun failed) whose run is done. Re-running a run (--rerun all) has
// already dropped its evaluations (Store::requeue), so they are queued again here.
EvalStageResult run_eval_stage(const Experiment& experiment, const RunnerOptions& options, EvalStage& stage);

}  // namespace ablate
