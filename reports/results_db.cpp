// Raw-SQL reader of the results database (reports/results_db.h).
#include "reports/results_db.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/lifecycle.h"

namespace ablate {
namespace {

nlohmann::json parse_or_null(const std::string& s) {
  if (s.empty()) return nullptr;
  nlohmann::json j = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json() : j;
}

}  // namespace

namespace {

// `path` when the file exists (SQLite would create an empty database in read-write mode and give a
// vaguer error in read-only mode).
const std::string& existing(const std::string& path) {
  if (!std::filesystem::exists(path))
    throw StoreError(SQLITE_CANTOPEN, fmt::format("{}: results database does not exist", path));
  return path;
}

// A runner may be writing; its transactions are waited for rather than failed on.
constexpr std::chrono::milliseconds kBusyTimeout{10000};

}  // namespace

ResultsDb::ResultsDb(const std::string& path)
    : path_(path), db_(existing(path), SqliteDb::Mode::read_only, kBusyTimeout) {
  // evals is a table before schema version 2 and a view over the eval records from then on.
  SqlQuery check = db_.query("SELECT count(*) FROM sqlite_master WHERE type IN ('table','view') AND "
                             "name IN ('runs','experiments','metrics','evals')",
                             "checking the tables");
  check.next();
  if (check.i64(0) != 4)
    throw StoreError(SQLITE_ERROR, fmt::format("{}: not an ablate results database (needs tables "
                                               "runs, experiments, metrics, evals)",
                                               path));
  SqlQuery env = db_.query("SELECT count(*) FROM sqlite_master WHERE type='table' AND name='env'",
                           "checking for the env table");
  env.next();
  has_env_ = env.i64(0) == 1;
  SqlQuery version = db_.query("PRAGMA user_version", "reading the schema version");
  version.next();
  schema_version_ = version.i64(0);
  if (schema_version_ != 1) return;  // 2 on: ids are today's; 0: not written by ablate's store
  SqlQuery q = db_.query("SELECT id, config_json FROM runs WHERE id = substr(config_hash, 1, 12)"
                         " ORDER BY status = 'done' DESC, created_at, id",
                         "mapping schema 1 run ids");
  while (q.next()) {
    try {
      stored_id_.emplace(config_hash(config_from_json(nlohmann::json::parse(q.text(1)))), q.text(0));
    } catch (const std::exception&) {  // a config this version cannot read: keep its stored id
      stored_id_.emplace(q.text(0), q.text(0));
    }
  }
}

const std::string& ResultsDb::stored_id(const std::string& run_id) const {
  const auto it = stored_id_.find(run_id);
  return it == stored_id_.end() ? run_id : it->second;
}

ResultsDb::~ResultsDb() = default;

std::vector<RunRecord> ResultsDb::runs(const std::string& experiment) const {
  // A run shared by several experiments carries each experiment's axes in `experiments`.
  SqlQuery q = db_.query("SELECT r.id, r.experiment, r.config_hash, r.config_json,"
                         " COALESCE(NULLIF(e.axes_json, '{}'), r.axes_json), r.seed, r.status, r.attempts,"
                         " r.exit_reason, r.host, r.gpu, r.code_version, r.diverged_step, r.last_step, r.finished_at"
                         " FROM runs r LEFT JOIN experiments e ON e.run_id = r.id AND e.name = ?1"
                         " WHERE ?1 = '' OR r.experiment = ?1 OR e.name IS NOT NULL ORDER BY r.id",
                         "reading runs");
  q.bind(experiment);
  std::vector<RunRecord> out;
  std::map<std::string, std::string> id_now;  // schema 1: stored id -> id now
  for (const auto& [now, stored] : stored_id_) id_now.emplace(stored, now);
  while (q.next()) {
    RunRecord r;
    r.id = q.text(0);
    if (const auto it = id_now.find(r.id); it != id_now.end()) r.id = it->second;
    r.experiment = q.text(1);
    r.config_hash = q.text(2);
    r.config = parse_or_null(q.text(3));
    r.axes = parse_or_null(q.text(4));
    if (!r.axes.is_object()) r.axes = nlohmann::json::object();
    r.seed = q.i64(5);
    r.status = q.text(6);
    r.attempts = q.i64(7);
    r.exit_reason = q.text(8);
    r.host = q.text(9);
    r.gpu = q.text(10);
    r.code_version = q.text(11);
    r.diverged_step = q.opt_i64(12);
    r.last_step = q.opt_i64(13);
    r.finished_at = q.opt_real(14);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> ResultsDb::experiment_names() const {
  SqlQuery q = db_.query("SELECT name FROM experiments UNION SELECT experiment FROM runs"
                         " WHERE experiment IS NOT NULL AND experiment != '' ORDER BY 1",
                         "listing experiments");
  std::vector<std::string> out;
  while (q.next()) out.push_back(q.text(0));
  return out;
}

const std::vector<std::pair<std::int64_t, double>>& ResultsDb::series(
    const std::string& run_id, const std::string& name) const {
  const auto key = std::make_pair(run_id, name);
  auto it = series_cache_.find(key);
  if (it != series_cache_.end()) return it->second;
  SqlQuery q = db_.query("SELECT step, value FROM metrics WHERE run_id = ?1 AND name = ?2 ORDER BY step",
                         "reading a metric series");
  q.bind(stored_id(run_id), name);
  std::vector<std::pair<std::int64_t, double>> s;
  while (q.next())
    if (!q.is_null(1)) s.emplace_back(q.i64(0), q.real(1));
  return series_cache_.emplace(key, std::move(s)).first->second;
}

namespace {
bool is_weights_label(const std::string& id) { return id.rfind("file:", 0) == 0; }
}  // namespace

const std::vector<EvalRecord>& ResultsDb::all_evals(const std::string& run_id) const {
  auto it = eval_cache_.find(run_id);
  if (it != eval_cache_.end()) return it->second;
  std::vector<EvalRecord> rows;
  const bool file = is_weights_label(run_id);
  if (file && schema_version_ < 2) return eval_cache_.emplace(run_id, std::move(rows)).first->second;
  // Schema 1 keeps results in an `evals` table without task ids; from 2 on they are task records.
  SqlQuery q = schema_version_ < 2
                   ? db_.query("SELECT '', protocol, dataset, scale, metric, value FROM evals WHERE run_id = ?1"
                               " ORDER BY protocol, dataset, scale, metric",
                               "reading evaluation results")
                   : db_.query(fmt::format("SELECT t.id, t.protocol, t.dataset, t.point, m.metric, m.value"
                                           " FROM eval_metrics m JOIN eval_tasks t ON t.id = m.eval_id"
                                           " WHERE t.{} = ?1 ORDER BY t.protocol, t.dataset, t.point, m.metric, t.id",
                                           file ? "weights" : "run_id"),
                               file ? "reading a checkpoint file's evaluation results" : "reading evaluation results");
  q.bind(file ? run_id : stored_id(run_id));
  while (q.next()) {
    if (q.is_null(5)) continue;
    rows.push_back({q.text(0), q.text(1), q.text(2), q.text(4), q.real(3), q.real(5)});
  }
  return eval_cache_.emplace(run_id, std::move(rows)).first->second;
}

bool ResultsDb::planned(const RunRecord& run, const EvalRecord& e) const {
  if (run.eval_ids.empty() || schema_version_ < 2) return true;  // schema 1 records have no task ids
  return std::find(run.eval_ids.begin(), run.eval_ids.end(), e.task_id) != run.eval_ids.end();
}

std::vector<EvalRecord> ResultsDb::evals(const RunRecord& run) const {
  std::vector<EvalRecord> out;
  for (const EvalRecord& e : all_evals(run.id))
    if (planned(run, e)) out.push_back(e);
  return out;
}

std::optional<RunRecord> ResultsDb::weights_record(const std::string& label) const {
  if (schema_version_ < 2) return std::nullopt;
  SqlQuery q = db_.query("SELECT status, COALESCE(exit_reason, ''), host, gpu FROM eval_tasks WHERE weights = ?1"
                         " ORDER BY CASE status WHEN 'done' THEN 0 WHEN 'failed' THEN 1 WHEN 'lost' THEN 2"
                         " WHEN 'running' THEN 3 ELSE 4 END, id",
                         "reading a checkpoint file's evaluations");
  q.bind(label);
  if (!q.next()) return std::nullopt;
  RunRecord r;
  r.id = label;
  r.status = q.text(0);
  r.exit_reason = q.text(1);
  r.host = q.text(2);
  r.gpu = q.text(3);
  return r;
}

std::optional<double> ResultsDb::value(const RunRecord& run, const MetricSource& source) const {
  if (source.kind == MetricSource::Kind::metric) {
    double v;
    if (aggregate_series(series(run.id, source.name), source.agg, v)) return v;
    return std::nullopt;
  }
  for (const EvalRecord& e : all_evals(run.id))
    if (planned(run, e) && e.protocol == source.protocol && e.dataset == source.dataset &&
        e.metric == source.eval_metric && std::fabs(e.scale - source.scale) < 1e-9 &&
        std::isfinite(e.value))
      return e.value;
  return std::nullopt;
}

bool is_done(const RunRecord& run) { return parse_run_status(run.status) == RunStatus::done; }

std::optional<std::string> ResultsDb::env(const std::string& run_id, const std::string& key) const {
  if (!has_env_) return std::nullopt;
  SqlQuery q = db_.query("SELECT value FROM env WHERE run_id = ?1 AND key = ?2", "reading env");
  q.bind(run_id, key);
  if (q.next() && !q.is_null(0)) return q.text(0);
  return std::nullopt;
}

std::string describe_outcome(const RunRecord& run) {
  std::string reason = run.exit_reason;
  // Keep a table cell readable: the first line, at most 60 characters.
  reason = reason.substr(0, reason.find('\n'));
  if (reason.size() > 60) reason = reason.substr(0, 57) + "...";
  const std::optional<RunStatus> status = parse_run_status(run.status);
  if (status == RunStatus::diverged)
    return run.diverged_step ? fmt::format("diverged @ step {}", *run.diverged_step) : "diverged";
  if (status == RunStatus::failed || status == RunStatus::lost)
    return reason.empty() ? run.status : run.status + ": " + reason;
  if (status == RunStatus::done) return "done, no value";
  return run.status.empty() ? "unknown status" : run.status;  // running, queued, "not run"
}

}  // namespace ablate
