// The results database: one SQLite file (default results/ablate.sqlite) holding every planned run,
// its lifecycle (queued -> running -> done/failed/diverged, or lost when its runner vanished; the
// rules are in lifecycle.h, runs.status holds the words of RunStatus), and
// everything the run reported through its journal (metrics, evaluations, environment, artifacts).
// The store is data access only: what `ablate status/show/export` print of it is app/run_views.h.
//
// Many processes may open one database at once (a runner, `ablate status`, tests, a second
// runner), so every write is a short BEGIN IMMEDIATE transaction retried on SQLITE_BUSY, in WAL
// mode with a 30 s busy timeout. synchronous=NORMAL is enough: a kill -9 never loses a committed
// transaction, and after a power cut the per-run journals (fsynced at finish and at each
// checkpoint) are re-ingested idempotently from their stored offsets. The schema is documented for
// plain sqlite3 users in results/README.md; it is versioned by PRAGMA user_version and migrated by
// an ordered list of SQL steps.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/eval_task.h"
#include "harness/experiment.h"
#include "harness/sqlite.h"

namespace ablate {

// One row of the runs table. Optional columns are NULL until the lifecycle fills them.
struct RunRow {
  std::string id, experiment, config_hash, config_json, axes_json;
  int64_t seed = 0;
  std::string status;
  int attempts = 0;
  double created_at = 0;  // unix seconds
  std::optional<double> started_at, finished_at, heartbeat_at;
  std::string host, gpu, worker_host, exit_reason, code_version, run_dir, slurm_job_id;
  std::optional<int64_t> runner_pid, runner_start, worker_pid;
  std::optional<int64_t> diverged_step, last_step, total_steps;
};

struct MetricRow {
  int64_t step = 0;
  double epoch = 0;
  std::string name;
  double value = 0;  // NaN where the run logged NaN (stored as NULL)
};

struct EvalRow {
  std::string protocol, dataset;
  double scale = 1.0;
  std::string metric;
  double value = 0;
};

// One row of the eval_tasks table: an evaluation record (harness/eval_task.h) and its lifecycle,
// which has the statuses and columns of a run's (run_dir: the evaluation's own folder).
struct EvalTaskRow {
  std::string id, weights, run_id, protocol, dataset;  // run_id: "" unless weights is a run
  double scale = 1.0, train_ratio = 0.0, point = 1.0;
  std::string settings_json, config_json, status;
  int attempts = 0;
  std::optional<double> started_at, finished_at;
  std::string host, gpu, exit_reason, run_dir, slurm_job_id;
  std::optional<int64_t> runner_pid, runner_start, worker_pid;
};

struct ArtifactRow {
  std::string kind, path, sha256;
};

// Who takes a run when it is claimed: written into the run row for liveness checks and audit.
struct ClaimInfo {
  std::string host;          // this machine's host name
  int64_t runner_pid = 0;    // the runner process
  int64_t runner_start = 0;  // its start time (clock ticks since boot): pid reuse detection
  std::string gpu;           // CUDA_VISIBLE_DEVICES given to the worker ("" = CPU / unchanged)
  std::string code_version;  // env_info code_version() of the runner
  std::string run_dir;       // where the worker's config.json and journal live
};

// A running row that mark_lost_stale() turned into 'lost'.
struct LostRun {
  std::string id, host, run_dir, reason;
  std::optional<int64_t> worker_pid;
};

// Where ingestion of a run's journal stopped: byte offset after the last applied line and the
// sequence number of that line.
struct JournalOffset {
  int64_t offset = 0;
  int64_t seq = 0;
};

class Store {
 public:
  static constexpr int kSchemaVersion = 2;
  enum class Mode {
    create,   // create the file (and parent folders) when missing
    existing  // fail with StoreError when the file does not exist
  };

  explicit Store(const std::filesystem::path& path, Mode mode = Mode::create);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::filesystem::path& path() const { return db_.path(); }
  int schema_version();

  // Runs `body` inside one BEGIN IMMEDIATE transaction (retried while the database is busy) and
  // commits; rolls back and rethrows if body throws. Nested calls join the outer transaction.
  // `what` names the operation in error messages.
  void transaction(std::string_view what, const std::function<void()>& body);

  // ---- planning and lifecycle ----

  // Registers runs (new ones as 'queued'; existing rows keep their status and results) and their
  // membership in `experiment`.
  void upsert_planned(std::string_view experiment, const std::vector<PlannedRun>& runs);

  // Atomically moves run `id` from one of `from` statuses to 'running', attempts + 1. Returns the
  // new attempt number (the fencing token for heartbeat/finish), or nullopt when the run was not
  // in one of those statuses (e.g. another runner took it).
  std::optional<int> claim_run(std::string_view id, const std::vector<std::string>& from,
                               const ClaimInfo& who);
  void set_worker_pid(std::string_view id, int attempt, int64_t pid);
  // Records the Slurm job (e.g. "1234_5") running attempt `attempt`; such runs are never marked
  // lost by heartbeat age (mark_lost_stale): Slurm's job state decides (slurm_sync).
  void set_slurm_job_id(std::string_view id, int attempt, std::string_view job);
  // Refreshes heartbeat_at of the given (id, attempt) runs that are still running, in one
  // transaction.
  void heartbeat(const std::vector<std::pair<std::string, int>>& runs);
  // Ends attempt `attempt` of a running run with status done|failed|diverged|lost. Returns false
  // when the row is no longer that running attempt (its journal already finished it, or it was
  // declared lost and re-claimed).
  bool finish(std::string_view id, int attempt, std::string_view status,
              std::string_view exit_reason);
  // Replaces the exit_reason of attempt `attempt` after it ended 'failed' (the local runner puts
  // what the other ranks of a data-parallel run died of before rank 0's own reason). Returns false
  // when the row is no longer that failed attempt.
  bool amend_failure(std::string_view id, int attempt, std::string_view exit_reason);
  // Running rows whose heartbeat is older than lease_seconds, or whose runner process (same host)
  // is gone, become 'lost'. Returns them.
  std::vector<LostRun> mark_lost_stale(double lease_seconds);
  // Forgets the results of a run that attempt `attempt` (just claimed) runs afresh (--rerun all):
  // metrics, env, artifacts, journal offset, progress and the evaluations of its weights deleted. The caller wipes the run
  // folder first. Returns false when the row is no longer that running attempt.
  bool clear_results(std::string_view id, int attempt);

  // ---- evaluation records (harness/eval_task.h): the same lifecycle as runs ----

  // Registers evaluation tasks; new ones 'queued', existing ones keep their status and results.
  void upsert_eval_tasks(const std::vector<EvalTask>& tasks);
  std::optional<EvalTaskRow> eval_task(std::string_view id);
  // The evaluations of run `run_id`'s weights, ordered by protocol, dataset, point.
  std::vector<EvalTaskRow> eval_tasks_of(std::string_view run_id);
  // claim_run, finish and set_worker_pid for an evaluation.
  std::optional<int> claim_eval(std::string_view id, const std::vector<std::string>& from,
                                const ClaimInfo& who);
  bool finish_eval(std::string_view id, int attempt, std::string_view status,
                   std::string_view exit_reason);
  void set_eval_worker_pid(std::string_view id, int attempt, int64_t pid);
  void set_eval_slurm_job_id(std::string_view id, int attempt, std::string_view job);
  // Running evaluations whose runner process on this host is gone become 'lost'. Returns their ids.
  std::vector<std::string> mark_lost_evals();

  // ---- journal application (ingest_journal calls these inside one transaction) ----

  void put_metric(std::string_view id, int64_t step, double epoch, std::string_view name,
                  double value);
  // A result of run `id`'s own evaluation as pre-training workers once journaled it: lands in the
  // eval task the run's stored eval section gives for (protocol, dataset, scale), marked done.
  void put_eval(std::string_view id, const EvalRow& e);
  // An evaluation worker's journal (ingest_journal with JournalOf::eval).
  void put_eval_metric(std::string_view eval_id, std::string_view metric, double value);
  bool apply_eval_finish(std::string_view eval_id, std::string_view status, std::string_view exit_reason);
  void set_eval_worker(std::string_view eval_id, std::string_view worker_host, int64_t worker_pid);
  JournalOffset eval_journal_offset(std::string_view eval_id);
  void set_eval_journal_offset(std::string_view eval_id, JournalOffset at);
  void put_env(std::string_view id, std::string_view key, std::string_view value);
  // What an evaluation worker recorded of its inputs and machine (the eval shards and their
  // source fingerprint, the weights file and its sha256, the device): table eval_env.
  void put_eval_env(std::string_view eval_id, std::string_view key, std::string_view value);
  void put_artifact(std::string_view id, const ArtifactRow& a);
  void set_progress(std::string_view id, int64_t step, int64_t total_steps);
  void set_worker(std::string_view id, std::string_view worker_host, int64_t worker_pid);
  // A journal's finish line: running|lost -> status (done|failed|diverged). Returns whether the
  // row changed (false when it had already finished).
  bool apply_finish(std::string_view id, std::string_view status, std::string_view exit_reason,
                    int64_t step);
  JournalOffset journal_offset(std::string_view id);
  void set_journal_offset(std::string_view id, const std::string& path, JournalOffset at);

  // ---- queries ----

  std::optional<RunRow> run(std::string_view id);
  // All runs, or those that belong to `experiment` when it is not empty; ordered by id.
  std::vector<RunRow> runs(std::string_view experiment = "");
  // Ids starting with `prefix` (for `ablate show <prefix>`).
  std::vector<std::string> run_ids_with_prefix(std::string_view prefix);
  // Experiments a run belongs to.
  std::vector<std::string> experiments_of(std::string_view id);
  std::vector<MetricRow> metrics(std::string_view id);  // ordered by name, step
  // The results of every evaluation of run `id`'s weights, addressed as in reports
  // (scale = EvalTask::point()).
  std::vector<EvalRow> evals(std::string_view id);
  // The new id of a run id recorded before schema version 2 (see results/README.md), if any.
  std::optional<std::string> migrated_id(std::string_view old_id);
  std::map<std::string, std::string> env(std::string_view id);
  std::vector<ArtifactRow> artifacts(std::string_view id);
  // Number of runs per status among `ids` (all statuses present as keys, 0 when none).
  std::map<std::string, int> status_counts(const std::vector<std::string>& ids);

 private:
  using Query = SqlQuery;
  // The cached statement for `sql`, ready to bind; `what` (a literal) names it in errors.
  Query query(std::string_view sql, const char* what) { return db_.query(sql, what); }
  static RunRow read_run(Query& q);
  void migrate();
  void migrate_eval_records();  // the data step of schema version 2

  SqliteDb db_;
};

}  // namespace ablate
