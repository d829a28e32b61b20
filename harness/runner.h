// The local runner behind `ablate run`: registers an experiment's planned runs in the results
// database and executes the runnable ones, each in its own worker process
// (`<ablate_exe> worker --run-dir <runs_root>/<run id>`), one per GPU (--gpus) or --jobs at a time
// on the CPU. A data-parallel run (config.resources.gpus = k > 1) is k worker processes, its ranks:
// with --gpus they get the run's k GPUs (CUDA_VISIBLE_DEVICES, rank i on cuda:i), without they are
// k Gloo ranks on the CPU. They rendezvous on 127.0.0.1 at a free port (RANK, WORLD_SIZE,
// LOCAL_RANK, MASTER_ADDR, MASTER_PORT, ABLATE_DIST_TIMEOUT_S), share one process group, write
// run_dir/worker.log (rank 0) and worker.rank<i>.log, and the attempt ends when all have ended.
// Once pre-training is over, the evaluation stage (eval_runner.h) runs the evaluations the
// experiment asks of its done runs, each its own `worker --eval` process.
//
// GPU packing: a run takes resources.gpus free devices of --gpus. Runs are started largest first
// (most GPUs, then most FLOPs per image), and whenever devices free up the first pending run that
// fits them starts, so no GPU idles while some runnable work fits. A run whose peak memory per rank
// (resources.mem_gb, else harness/memory_estimate.h) does not fit the GPUs' memory is recorded as
// failed (out of memory, estimated) without being launched.
//
// The worker reads run_dir/config.json and reports only through run_dir/journal.jsonl (see
// journal.h); the runner ingests journals, keeps heartbeats, reaps workers and records how each
// attempt ended. Killing the runner at any moment is safe: workers die with it (PDEATHSIG), the
// database stays consistent (short transactions), finished runs are never run again (a finish line
// in a journal wins over re-launching), and the next `ablate run` marks the orphaned runs lost and
// re-launches them; the worker resumes from run_dir/ckpt. Which runs execute and how one is claimed
// is the shared lifecycle (lifecycle.h), the same for the Slurm backend; process plumbing is
// process.h.
//
// Several runners may share one database (and a Slurm submission may run beside them): a run
// another live runner holds is waited for, not touched; when that runner dies (its pid is gone, or
// on another host its lease expires) the run is declared lost and taken over. Runs held by Slurm
// jobs are skipped (`ablate sync` records their end).
#pragma once

#include <string>
#include <vector>

#include "harness/experiment.h"

namespace ablate {

struct RunnerOptions {
  std::string db = "results/ablate.sqlite";
  std::vector<int> gpus;   // GPU ids to hand out (CUDA_VISIBLE_DEVICES); empty = CPU runs
  double gpu_mem_gib = 0;  // memory of each --gpus device in GiB, e.g. 79.6; 0 = ask nvidia-smi
                           // (no memory check when it lists none of them)
  int jobs = 1;            // concurrent runs without --gpus (ignored with --gpus); each gets
                           // cores / jobs threads (harness/process.h cpu_thread_env)
  std::string rerun;       // "": queued and lost runs; "failed": also failed ones (resumed from
                           // their checkpoint); "all": every run afresh (results and folder wiped)
  double lease_s = 60;     // a running row without heartbeat for this long is lost
  double dist_timeout_s = 300;  // data-parallel ranks: bound of every collective (the worker's
                                // ABLATE_DIST_TIMEOUT_S); once a rank has failed, or rank 0 ended,
                                // ranks still alive after twice this are killed
  std::string ablate_exe;  // the worker executable (normally the running `ablate` itself)
  std::string runs_root;   // run folders; "" = <folder of db>/runs
  bool progress_tty = false;  // draw the live progress line (normally isatty(stderr))
};

// Runs `experiment` to completion (or until SIGINT/SIGTERM, which stops the workers and leaves
// their runs 'lost', to be resumed by the next call), waiting for the runs other live runners hold.
// Returns 0 when every planned run ended done or diverged, 1 when some failed or were skipped (a
// run needing more GPUs than --gpus, a run held by a Slurm job), 130 when interrupted. Throws ConfigError on bad
// options, StoreError on database failures.
int run_experiment(const Experiment& experiment, const RunnerOptions& options);

// ConfigError naming the option when `options` are invalid (--rerun, --jobs, lease, --dist-timeout,
// --gpus, the worker executable); run_experiment and the Slurm backend both check with it.
void check_runner_options(const RunnerOptions& options);

}  // namespace ablate
