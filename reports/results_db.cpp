// Raw-SQL reader of the results database (reports/results_db.h).
#include "reports/results_db.h"

#include <sqlite3.h>

#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "harness/check.h"

namespace ablate {
namespace {

// A prepared statement that finalises itself; errors name the database and the statement.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& path, const char* sql) : db_(db), path_(path) {
    const int rc = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
    if (rc != SQLITE_OK)
      throw StoreError(rc, fmt::format("{}: cannot prepare '{}': {} (is this an ablate results "
                                       "database?)",
                                       path, sql, sqlite3_errmsg(db)));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.c_str(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw StoreError(rc, fmt::format("{}: query failed: {}", path_, sqlite3_errmsg(db_)));
  }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }
  std::optional<std::int64_t> maybe_integer(int col) const {
    if (is_null(col)) return std::nullopt;
    return integer(col);
  }

 private:
  sqlite3* db_;
  const std::string& path_;
  sqlite3_stmt* stmt_ = nullptr;
};

nlohmann::json parse_or_null(const std::string& s) {
  if (s.empty()) return nullptr;
  nlohmann::json j = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json() : j;
}

}  // namespace

ResultsDb::ResultsDb(const std::string& path) : path_(path) {
  if (!std::filesystem::exists(path))
    throw StoreError(SQLITE_CANTOPEN, fmt::format("{}: results database does not exist", path));
  const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    throw StoreError(rc, fmt::format("{}: cannot open results database: {}", path, msg));
  }
  // A runner may be writing; wait for its transactions rather than failing.
  sqlite3_busy_timeout(db_, 10000);
  Statement check(db_, path_, "SELECT count(*) FROM sqlite_master WHERE type='table' AND "
                              "name IN ('runs','experiments','metrics','evals')");
  check.step();
  if (check.integer(0) != 4) {
    sqlite3_close(db_);
    throw StoreError(SQLITE_ERROR, fmt::format("{}: not an ablate results database (needs tables "
                                               "runs, experiments, metrics, evals)",
                                               path));
  }
  Statement env(db_, path_, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='env'");
  env.step();
  has_env_ = env.integer(0) == 1;
}

ResultsDb::~ResultsDb() { sqlite3_close(db_); }

std::vector<RunRecord> ResultsDb::runs(const std::string& experiment) const {
  // A run shared by several experiments carries each experiment's axes in `experiments`.
  Statement q(db_, path_,
              "SELECT r.id, r.experiment, r.config_hash, r.config_json,"
              " COALESCE(NULLIF(e.axes_json, '{}'), r.axes_json), r.seed, r.status, r.attempts,"
              " r.exit_reason, r.host, r.gpu, r.code_version, r.diverged_step, r.last_step, r.finished_at"
              " FROM runs r LEFT JOIN experiments e ON e.run_id = r.id AND e.name = ?1"
              " WHERE ?1 = '' OR r.experiment = ?1 OR e.name IS NOT NULL ORDER BY r.id");
  q.bind(1, experiment);
  std::vector<RunRecord> out;
  while (q.step()) {
    RunRecord r;
    r.id = q.text(0);
    r.experiment = q.text(1);
    r.config_hash = q.text(2);
    r.config = parse_or_null(q.text(3));
    r.axes = parse_or_null(q.text(4));
    if (!r.axes.is_object()) r.axes = nlohmann::json::object();
    r.seed = q.integer(5);
    r.status = q.text(6);
    r.attempts = q.integer(7);
    r.exit_reason = q.text(8);
    r.host = q.text(9);
    r.gpu = q.text(10);
    r.code_version = q.text(11);
    r.diverged_step = q.maybe_integer(12);
    r.last_step = q.maybe_integer(13);
    if (!q.is_null(14)) r.finished_at = q.real(14);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> ResultsDb::experiment_names() const {
  Statement q(db_, path_,
              "SELECT name FROM experiments UNION SELECT experiment FROM runs"
              " WHERE experiment IS NOT NULL AND experiment != '' ORDER BY 1");
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0));
  return out;
}

const std::vector<std::pair<std::int64_t, double>>& ResultsDb::series(
    const std::string& run_id, const std::string& name) const {
  const auto key = std::make_pair(run_id, name);
  auto it = series_cache_.find(key);
  if (it != series_cache_.end()) return it->second;
  Statement q(db_, path_,
              "SELECT step, value FROM metrics WHERE run_id = ?1 AND name = ?2 ORDER BY step");
  q.bind(1, run_id);
  q.bind(2, name);
  std::vector<std::pair<std::int64_t, double>> s;
  while (q.step())
    if (!q.is_null(1)) s.emplace_back(q.integer(0), q.real(1));
  return series_cache_.emplace(key, std::move(s)).first->second;
}

const std::vector<EvalRecord>& ResultsDb::evals(const std::string& run_id) const {
  auto it = eval_cache_.find(run_id);
  if (it != eval_cache_.end()) return it->second;
  Statement q(db_, path_,
              "SELECT protocol, dataset, scale, metric, value FROM evals WHERE run_id = ?1"
              " ORDER BY protocol, dataset, scale, metric");
  q.bind(1, run_id);
  std::vector<EvalRecord> rows;
  while (q.step()) {
    if (q.is_null(4)) continue;
    rows.push_back({q.text(0), q.text(1), q.text(3), q.real(2), q.real(4)});
  }
  return eval_cache_.emplace(run_id, std::move(rows)).first->second;
}

std::optional<double> ResultsDb::value(const std::string& run_id,
                                       const MetricSource& source) const {
  if (source.kind == MetricSource::Kind::metric) {
    double v;
    if (aggregate_series(series(run_id, source.name), source.agg, v)) return v;
    return std::nullopt;
  }
  for (const EvalRecord& e : evals(run_id))
    if (e.protocol == source.protocol && e.dataset == source.dataset &&
        e.metric == source.eval_metric && std::fabs(e.scale - source.scale) < 1e-9 &&
        std::isfinite(e.value))
      return e.value;
  return std::nullopt;
}

std::optional<std::string> ResultsDb::env(const std::string& run_id, const std::string& key) const {
  if (!has_env_) return std::nullopt;
  Statement q(db_, path_, "SELECT value FROM env WHERE run_id = ?1 AND key = ?2");
  q.bind(1, run_id);
  q.bind(2, key);
  if (q.step() && !q.is_null(0)) return q.text(0);
  return std::nullopt;
}

std::string describe_outcome(const RunRecord& run) {
  std::string reason = run.exit_reason;
  // Keep a table cell readable: the first line, at most 60 characters.
  reason = reason.substr(0, reason.find('\n'));
  if (reason.size() > 60) reason = reason.substr(0, 57) + "...";
  if (run.status == "diverged")
    return run.diverged_step ? fmt::format("diverged @ step {}", *run.diverged_step) : "diverged";
  if (run.status == "failed") return reason.empty() ? "failed" : "failed: " + reason;
  if (run.status == "lost") return reason.empty() ? "lost" : "lost: " + reason;
  if (run.status == "done") return "done, no value";
  return run.status.empty() ? "unknown status" : run.status;
}

}  // namespace ablate
