// The Slurm backend of `ablate run --backend slurm`: instead of forking workers, the planned runs
// that still need running are submitted as Slurm jobs, each task executing
// `<ablate> worker --run-dir <run folder>` exactly as the local runner would.
//
// Single-GPU runs go into one job array (one task per run, at most --throttle at once); a task
// finds its run folder on line SLURM_ARRAY_TASK_ID + 1 of a list file written next to the script.
// A run with config.resources.gpus = N > 1 becomes its own job of N tasks started with srun, one
// per rank, each given RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT from SLURM_*.
//
// Tasks never open the database (it may sit on NFS, and a task can die at any moment): they
// report only through run_dir/journal.jsonl, and slurm_sync() (called by `ablate sync` and
// `ablate status`) ingests the journals and reconciles the runs with what squeue/sacct say.
//
// Preemption and time limits: the script asks for --requeue and --signal=B:USR1@<lead>. On
// preemption or `scontrol requeue` Slurm SIGTERMs the worker, which checkpoints and exits 99 and is
// requeued by Slurm; USR1 before the time limit is forwarded to the worker, which does the same,
// and the script then requeues its own task. Either way the next start resumes from
// run_dir/ckpt/last.pt. A task whose run already wrote a finish line since its submission exits
// at once, so a late requeue never runs a finished run twice.
#pragma once

#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "harness/experiment.h"
#include "harness/runner.h"

namespace ablate {

class Store;

// The Slurm client programs, as executable paths.
struct SlurmTools {
  std::string sbatch, squeue, sacct, scancel, scontrol;

  // Each program looked up on PATH; "" where it is not there.
  static SlurmTools from_path();
  // Throws std::runtime_error naming every required program that is "" (sacct is optional:
  // clusters without accounting storage have none that works).
  void require() const;
};

// The Slurm options of `ablate run --backend slurm`.
struct SlurmOptions {
  std::string partition, time, account;  // --partition / --time / --account ("" = cluster default)
  int throttle = 0;                      // array tasks running at once (0 = no limit)
  int gpus_per_task = 1;                 // GPUs per task, i.e. per rank (0 = ask for none)
  int cpus_per_task = 0;                 // 0 = the cluster's default
  std::vector<std::string> extra_sbatch; // more sbatch options, one "#SBATCH <option>" line each
  int signal_lead_s = 120;               // USR1 this long before the time limit
  std::string jobs_dir;                  // scripts and Slurm logs; "" = <folder of db>/slurm
};

// One sbatch script to generate: a job array over a list file, or one multi-task (srun) job.
struct SlurmJobSpec {
  std::string job_name;             // Slurm job name ([A-Za-z0-9_.-] only)
  std::string ablate_exe;           // absolute path of the worker executable
  std::filesystem::path workdir;    // --chdir: relative paths in configs resolve from here
  std::filesystem::path log_dir;    // Slurm's own output files (the worker logs to its run folder)
  // Job array: array_size > 0 tasks; task i runs the run folder on line i + 1 of list_file.
  int array_size = 0;
  std::filesystem::path list_file;
  // Multi-task job (array_size == 0): `ntasks` ranks of the run in run_dir.
  std::filesystem::path run_dir;
  int ntasks = 1;
  double dist_timeout_s = 300;  // ABLATE_DIST_TIMEOUT_S of the ranks (RunnerOptions::dist_timeout_s)
  // Journal size when the run was submitted: a finish line after this offset means done already.
  // For arrays the offset is the second, tab-separated field of each list line.
  int64_t journal_offset = 0;
  // Arrays only: "--run-dir" (pre-training) or "--eval" (the list names evaluation folders,
  // harness/eval_runner.h), and the job that must complete first ("" = none): evaluations of a run
  // still training start after its job (--dependency=afterok).
  std::string worker_flag = "--run-dir";
  std::string after_ok;
};

// The sbatch script for `job`. Throws ConfigError when an option or path cannot be written into
// an #SBATCH line (whitespace, quotes, '%' in paths; a non-positive count).
std::string sbatch_script(const SlurmJobSpec& job, const SlurmOptions& options);

// One line of a job-array list file: "<run dir>\t<journal offset>".
std::string slurm_list_line(const std::filesystem::path& run_dir, int64_t journal_offset);

// Slurm's view of one job or array task.
struct SlurmJobState {
  std::string state;      // PENDING, RUNNING, COMPLETED, FAILED, ... ("" = unknown to Slurm)
  std::string reason;     // squeue's reason, or sacct's exit code ("0:15")
};

// Whether a Slurm state is final: the job will not run (again) by itself.
bool slurm_state_final(const std::string& state);

// The job id in `sbatch --parsable` output ("123" or "123;cluster"). Throws std::runtime_error
// on anything else.
std::string parse_sbatch_job_id(const std::string& out);

// `squeue -h -r -t all -o %i|%T|%r` or `sacct -n -P -X -o JobID,State,ExitCode` output: job or
// task id -> state. Collapsed array ranges ("12_[3-5,7%2]") are expanded to one entry per task;
// sacct's "CANCELLED by 0" becomes "CANCELLED". Malformed lines are skipped.
std::map<std::string, SlurmJobState> parse_slurm_jobs(const std::string& out);

// States of `job_ids` ("123" or "123_4"): squeue first, then sacct (when it works) for those
// squeue no longer knows. Ids that neither knows are absent. Throws std::runtime_error when
// squeue itself fails (controller unreachable): nothing may then be concluded about the jobs.
std::map<std::string, SlurmJobState> query_slurm_jobs(const SlurmTools& tools,
                                                      const std::vector<std::string>& job_ids);

// Evaluations under Slurm: slurm_submit ends by submitting, per run, one job array over the
// evaluation tasks that are due (as in the local eval stage: queued or lost, failed with --rerun)
// of runs that are done or whose pre-training job it just submitted or Slurm holds, the latter
// with --dependency=afterok:<that job>. Each task gets its folder and eval.json, is claimed and
// records its array task as slurm_job_id; slurm_sync ingests their journals and ends those whose
// job ended without a finish line (or whose dependency failed: cancelled, lost).
//
// Submits the runs of `experiment` that need running (queued and lost ones; failed or all with
// options.rerun as in the local runner) and returns how many it submitted. Uses runner.db,
// runner.rerun, runner.ablate_exe, runner.runs_root and runner.lease_s; reconciles the database with
// Slurm first (slurm_sync), and never submits a run whose previous job Slurm still holds. Each
// submitted run is claimed ('running', host "slurm:<submit host>"), gets run_dir/config.json,
// run_dir/sbatch.sh (an artifact of kind "sbatch") and its slurm_job_id ("<array job>_<task>" or
// "<job>"). Notes for the user go to `log`. Throws std::runtime_error when sbatch fails (the runs
// it would have started are then 'lost', so the next call submits them again).
int slurm_submit(const Experiment& experiment, const RunnerOptions& runner,
                 const SlurmOptions& options, const SlurmTools& tools, std::ostream& log);

struct SlurmSyncResult {
  int journal_lines = 0;  // journal lines ingested
  int finished = 0;       // runs that reached done/failed/diverged through their journal
  int failed = 0;         // runs whose job ended without a finish line, marked failed
  int lost = 0;           // runs whose job was cancelled, preempted or is gone: marked lost
};

// Reconciles the running Slurm runs (of `experiment`, or all when "") with Slurm: ingests their
// journals; a run whose job is still queued or running gets a heartbeat; one whose job ended
// without a finish line becomes failed (FAILED, OUT_OF_MEMORY, COMPLETED) or lost (cancelled,
// timed out, preempted, node failure, or no longer known to Slurm) with the reason and the path
// of its worker.log. Notes go to `log`.
SlurmSyncResult slurm_sync(Store& store, const SlurmTools& tools, const std::string& experiment,
                           std::ostream& log);

// One run of `ablate status` on a Slurm experiment.
struct SlurmRunStatus {
  std::string run_id, run_status, slurm_job_id;
  SlurmJobState job;  // state "" when Slurm no longer knows the job
};

// Runs slurm_sync for the experiment, then lists its runs that were submitted to Slurm, in
// experiment order, with their job states.
std::vector<SlurmRunStatus> slurm_status(Store& store, const Experiment& experiment,
                                         const SlurmTools& tools, std::ostream& log);
// The table printed by `ablate status` for slurm_status().
std::string format_slurm_status(const std::vector<SlurmRunStatus>& rows);

// `ablate cancel FILE`: scancel the jobs of the experiment's running Slurm runs and mark the runs
// lost (the next `ablate run --backend slurm` resumes them from their checkpoints). Returns the
// number of runs cancelled. Throws std::runtime_error when scancel fails.
int slurm_cancel(Store& store, const Experiment& experiment, const SlurmTools& tools,
                 std::ostream& log);

}  // namespace ablate
