// Read-only view of a results database written by the harness (runs, experiments, metrics, evals
// tables; see reports/README.md). Reports go through raw SQL here (on the shared SQLite layer,
// harness/sqlite.h) rather than harness/store.h so they can open any database read-only, including
// one copied back from another machine while a runner still writes to its original. Per-run series and evals are cached: a report asks for the same
// run many times (several tables, plots, claims).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/sqlite.h"
#include "reports/metric_source.h"

namespace ablate {

// One row of `runs`, plus the axes this report assigns to it.
struct RunRecord {
  std::string id, experiment, config_hash;
  nlohmann::json config;  // parsed config_json (null when absent or unparsable)
  nlohmann::json axes;    // object: axis key -> value for this matrix cell (includes "seed")
  std::int64_t seed = 0;
  std::string status;     // queued running done failed diverged lost; "not run" if only planned
  std::int64_t attempts = 0;
  std::string exit_reason, host, gpu, code_version;
  std::optional<std::int64_t> diverged_step, last_step;
  std::optional<double> finished_at;  // Unix seconds of the latest attempt's end
  // The evaluation tasks the experiment plans for this run now (harness/eval_task.h ids), copied
  // from its ReportRun: only their results are read, so a run evaluated again with other settings
  // (e.g. a larger KNN set) is reported with the evaluation the file asks for, never an older one
  // at the same address. Empty (no plan): every evaluation of the run, as in a schema 1 database,
  // whose results have no task ids.
  std::vector<std::string> eval_ids;
};

struct EvalRecord {
  std::string task_id;  // eval_tasks.id ("" in schema 1 databases)
  std::string protocol, dataset, metric;
  double scale = 1.0;
  double value = 0.0;
};

class ResultsDb {
 public:
  // Opens `path` read-only; StoreError if it is missing or not a results database.
  explicit ResultsDb(const std::string& path);
  ~ResultsDb();
  ResultsDb(const ResultsDb&) = delete;
  ResultsDb& operator=(const ResultsDb&) = delete;

  const std::string& path() const { return path_; }
  // Runs of an experiment (via `experiments` or runs.experiment), ordered by id; "" = all.
  std::vector<RunRecord> runs(const std::string& experiment) const;
  std::vector<std::string> experiment_names() const;
  // The (step, value) series of a logged metric, ordered by step.
  const std::vector<std::pair<std::int64_t, double>>& series(const std::string& run_id,
                                                             const std::string& name) const;
  // A run's evaluation results, those of its planned evaluations (RunRecord::eval_ids) when it
  // names any; for an external checkpoint row (id "file:<sha256>", the weights label of
  // harness/eval_task.h) those of the evaluations of that file.
  std::vector<EvalRecord> evals(const RunRecord& run) const;
  // An external checkpoint row as a run record (id = its label, "file:<sha256>"): done when any of
  // its evaluations is done, else the status of the first failed, lost, running or queued one (with
  // its exit reason); nothing when the database has no evaluation of the file.
  std::optional<RunRecord> weights_record(const std::string& label) const;
  // The run's number for a source, or nothing when the run did not log it.
  std::optional<double> value(const RunRecord& run, const MetricSource& source) const;
  // A provenance value of the `env` table (e.g. "device", "gpu", "cpu"), or nothing when the run
  // did not record it or the database has no env table (hand-made and old databases).
  std::optional<std::string> env(const std::string& run_id, const std::string& key) const;

 private:
  // The id a run is stored under, for a run id as planned now: they differ in databases of schema
  // version 1, written when run ids still hashed the eval section (results/README.md); this view
  // maps them read-only, so reports read such a database before any migration.
  const std::string& stored_id(const std::string& run_id) const;

  // Every evaluation result of a run (or checkpoint file label), unfiltered and cached.
  const std::vector<EvalRecord>& all_evals(const std::string& run_id) const;
  // Whether `e`, one of all_evals(run.id), is one of the run's planned evaluations.
  bool planned(const RunRecord& run, const EvalRecord& e) const;

  std::string path_;
  SqliteDb db_;
  std::map<std::string, std::string> stored_id_;  // schema 1 only: id now -> id stored
  std::int64_t schema_version_ = 0;  // PRAGMA user_version: eval_tasks exist from 2 on
  mutable std::map<std::pair<std::string, std::string>, std::vector<std::pair<std::int64_t, double>>>
      series_cache_;
  mutable std::map<std::string, std::vector<EvalRecord>> eval_cache_;
  bool has_env_ = false;
};

// Whether the run ended done (harness/lifecycle.h): only such runs contribute numbers.
bool is_done(const RunRecord& run);

// The problem of a run that contributes no number: "diverged @ step 1234", "failed: <reason>",
// "lost", "running", "queued", "not run".
std::string describe_outcome(const RunRecord& run);

}  // namespace ablate
