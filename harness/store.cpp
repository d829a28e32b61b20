// SQLite results database (see store.h): connection setup, schema migrations, the run lifecycle
// transitions, journal application and the queries behind `ablate status/show/export`.
#include "harness/store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <limits>
#include <ostream>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "ablate/build_info.h"
#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/env_info.h"
#include "harness/hash.h"
#include "harness/lifecycle.h"
#include "harness/process.h"

namespace ablate {
namespace {

// Schema migrations: step i brings a database from user_version i to i + 1. Append, never edit.
// results/README.md documents the resulting schema.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE meta(
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE runs(
  id            TEXT PRIMARY KEY,
  experiment    TEXT NOT NULL,
  config_hash   TEXT NOT NULL,
  config_json   TEXT NOT NULL,
  axes_json     TEXT NOT NULL DEFAULT '{}',
  seed          INTEGER NOT NULL,
  status        TEXT NOT NULL DEFAULT 'queued'
                CHECK(status IN ('queued','running','done','failed','diverged','lost')),
  attempts      INTEGER NOT NULL DEFAULT 0,
  created_at    REAL NOT NULL,
  started_at    REAL,
  finished_at   REAL,
  heartbeat_at  REAL,
  host          TEXT,
  gpu           TEXT,
  runner_pid    INTEGER,
  runner_start  INTEGER,
  worker_pid    INTEGER,
  worker_host   TEXT,
  exit_reason   TEXT,
  code_version  TEXT,
  run_dir       TEXT,
  slurm_job_id  TEXT,
  diverged_step INTEGER,
  last_step     INTEGER,
  total_steps   INTEGER
);
CREATE INDEX runs_by_status ON runs(status);
CREATE TABLE experiments(
  name      TEXT NOT NULL,
  run_id    TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  axes_json TEXT NOT NULL DEFAULT '{}',
  added_at  REAL NOT NULL,
  PRIMARY KEY(name, run_id)
);
CREATE INDEX experiments_by_run ON experiments(run_id);
CREATE TABLE metrics(
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step   INTEGER NOT NULL,
  epoch  REAL,
  name   TEXT NOT NULL,
  value  REAL,
  PRIMARY KEY(run_id, name, step)
) WITHOUT ROWID;
CREATE TABLE evals(
  run_id   TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  protocol TEXT NOT NULL,
  dataset  TEXT NOT NULL,
  scale    REAL NOT NULL,
  metric   TEXT NOT NULL,
  value    REAL,
  PRIMARY KEY(run_id, protocol, dataset, scale, metric)
) WITHOUT ROWID;
CREATE TABLE env(
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key    TEXT NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY(run_id, key)
) WITHOUT ROWID;
CREATE TABLE artifacts(
  run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  kind       TEXT NOT NULL,
  path       TEXT NOT NULL,
  sha256     TEXT NOT NULL,
  created_at REAL NOT NULL,
  PRIMARY KEY(run_id, kind, path)
) WITHOUT ROWID;
CREATE TABLE journal_offsets(
  run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
  path   TEXT NOT NULL,
  offset INTEGER NOT NULL,
  seq    INTEGER NOT NULL
);
)sql",
};
constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == Store::kSchemaVersion);

// How long a writer keeps retrying BEGIN IMMEDIATE on top of SQLite's own 30 s busy wait.
constexpr auto kBusyTimeout = std::chrono::seconds(30);
constexpr int kBusyRetries = 10;

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string utc_time(std::optional<double> t) {
  if (!t) return "-";
  std::time_t secs = static_cast<std::time_t>(*t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

// ---- connection ----

namespace {

// The database file for `mode`: a missing one is an error (existing) or gets its folders (create).
std::filesystem::path prepared_path(const std::filesystem::path& path, Store::Mode mode) {
  std::error_code ec;
  if (mode == Store::Mode::existing && !std::filesystem::exists(path, ec))
    throw StoreError(SQLITE_CANTOPEN,
                     fmt::format("no results database at {} (`ablate run` creates it)", path.string()));
  if (mode == Store::Mode::create && path.has_parent_path())
    std::filesystem::create_directories(path.parent_path(), ec);
  return path;
}

}  // namespace

Store::Store(const std::filesystem::path& path, Mode mode)
    : db_(prepared_path(path, mode), mode == Mode::create ? SqliteDb::Mode::create : SqliteDb::Mode::read_write,
          std::chrono::duration_cast<std::chrono::milliseconds>(kBusyTimeout)) {
  // Switching to WAL needs a moment of exclusive access; several processes opening a new
  // database at once can collide here beyond the busy handler, so retry.
  int rc = SQLITE_OK;
  for (int attempt = 0;; ++attempt) {
    rc = db_.exec_rc("PRAGMA journal_mode=WAL");
    if (rc == SQLITE_OK || !sqlite_busy(rc) || attempt == kBusyRetries) break;
  }
  if (rc != SQLITE_OK) db_.fail(rc, "switching the database to WAL mode");
  db_.exec("PRAGMA synchronous=NORMAL", "setting synchronous=NORMAL");
  db_.exec("PRAGMA foreign_keys=ON", "enabling foreign keys");
  migrate();
}

Store::~Store() = default;

int Store::schema_version() {
  Query q = query("PRAGMA user_version", "reading the schema version");
  q.next();
  return static_cast<int>(q.i64(0));
}

void Store::transaction(std::string_view what, const std::function<void()>& body) {
  if (db_.in_transaction()) {  // already inside a transaction: join it
    body();
    return;
  }
  for (int attempt = 0;; ++attempt) {
    int rc = db_.exec_rc("BEGIN IMMEDIATE");
    if (rc == SQLITE_OK) break;
    if (!sqlite_busy(rc) || attempt == kBusyRetries)
      db_.fail(rc, fmt::format("starting a write transaction for {}", what));
  }
  try {
    body();
    for (int attempt = 0;; ++attempt) {
      int rc = db_.exec_rc("COMMIT");
      if (rc == SQLITE_OK) break;
      if (!sqlite_busy(rc) || attempt == kBusyRetries) db_.fail(rc, fmt::format("committing {}", what));
    }
  } catch (...) {
    if (db_.in_transaction()) db_.exec_rc("ROLLBACK");
    throw;
  }
}

void Store::migrate() {
  if (schema_version() == kSchemaVersion) return;
  transaction("migrating the schema", [&] {
    int v = schema_version();  // re-read under the write lock: another process may have migrated
    if (v > kSchemaVersion)
      throw StoreError(SQLITE_MISMATCH,
                       fmt::format("{} has schema version {}, newer than this ablate ({}): use a "
                                   "newer ablate",
                                   path().string(), v, kSchemaVersion));
    for (int i = v; i < kMigrationCount; ++i)
      db_.exec(kMigrations[i], fmt::format("migrating the schema to version {}", i + 1));
    db_.exec(fmt::format("PRAGMA user_version={}", kSchemaVersion).c_str(), "setting user_version");
    auto put = [&](std::string_view k, std::string_view val) {
      query("INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            "writing meta")
          .bind(k, val)
          .run();
    };
    put("schema_version", std::to_string(kSchemaVersion));
    put("ablate_version", ABLATE_VERSION);
    if (v == 0) put("created_at", fmt::format("{:.3f}", now_s()));
  });
}

// ---- planning and lifecycle ----

void Store::upsert_planned(std::string_view experiment, const std::vector<PlannedRun>& runs) {
  transaction(fmt::format("registering the runs of experiment '{}'", experiment), [&] {
    const double t = now_s();
    for (const PlannedRun& r : runs) {
      const std::string config = canonical_dump(config_to_json(r.config));
      const std::string axes = r.axes.is_null() ? "{}" : r.axes.dump();
      query("INSERT INTO runs(id, experiment, config_hash, config_json, axes_json, seed, status, "
            "attempts, created_at) VALUES(?, ?, ?, ?, ?, ?, 'queued', 0, ?) "
            "ON CONFLICT(id) DO NOTHING",
            "inserting a planned run")
          .bind(r.id, experiment, sha256_hex(config_id_json(r.config)), config, axes, static_cast<int64_t>(r.seed), t)
          .run();
      query("INSERT INTO experiments(name, run_id, axes_json, added_at) VALUES(?, ?, ?, ?) "
            "ON CONFLICT(name, run_id) DO UPDATE SET axes_json=excluded.axes_json",
            "adding a run to its experiment")
          .bind(experiment, r.id, axes, t)
          .run();
    }
  });
}

std::optional<int> Store::claim_run(std::string_view id, const std::vector<std::string>& from,
                                    const ClaimInfo& who) {
  std::optional<int> attempt;
  transaction(fmt::format("claiming run {}", id), [&] {
    std::string status;
    {
      Query q = query("SELECT status FROM runs WHERE id=?", "reading a run's status");
      if (!q.bind(id).next()) return;
      status = q.text(0);
    }
    if (std::find(from.begin(), from.end(), status) == from.end()) return;
    const double t = now_s();
    query("UPDATE runs SET status='running', attempts=attempts+1, started_at=?, finished_at=NULL, "
          "heartbeat_at=?, host=?, gpu=?, runner_pid=?, runner_start=?, worker_pid=NULL, "
          "worker_host=NULL, exit_reason=NULL, code_version=?, run_dir=?, diverged_step=NULL "
          "WHERE id=?",
          "claiming a run")
        .bind(t, t, who.host, who.gpu, who.runner_pid, who.runner_start, who.code_version,
              who.run_dir, id)
        .run();
    Query q = query("SELECT attempts FROM runs WHERE id=?", "reading a run's attempts");
    q.bind(id).next();
    attempt = static_cast<int>(q.i64(0));
  });
  return attempt;
}

void Store::set_worker_pid(std::string_view id, int attempt, int64_t pid) {
  transaction("recording a worker pid", [&] {
    query("UPDATE runs SET worker_pid=? WHERE id=? AND attempts=? AND status='running'",
          "recording a worker pid")
        .bind(pid, id, attempt)
        .run();
  });
}

void Store::set_slurm_job_id(std::string_view id, int attempt, std::string_view job) {
  transaction("recording a Slurm job id", [&] {
    query("UPDATE runs SET slurm_job_id=? WHERE id=? AND attempts=?", "recording a Slurm job id")
        .bind(job, id, attempt)
        .run();
  });
}

void Store::heartbeat(const std::vector<std::pair<std::string, int>>& runs) {
  if (runs.empty()) return;
  transaction("heartbeat", [&] {
    const double t = now_s();
    for (const auto& [id, attempt] : runs)
      query("UPDATE runs SET heartbeat_at=? WHERE id=? AND attempts=? AND status='running'",
            "updating a heartbeat")
          .bind(t, id, attempt)
          .run();
  });
}

bool Store::finish(std::string_view id, int attempt, std::string_view status,
                   std::string_view exit_reason) {
  const std::optional<RunStatus> s = parse_run_status(status);
  ABLATE_CHECK(s && (is_final(*s) || *s == RunStatus::lost), "finish status '{}'", status);
  int changed = 0;
  transaction(fmt::format("finishing run {}", id), [&] {
    changed = query("UPDATE runs SET status=?, exit_reason=?, finished_at=? "
                    "WHERE id=? AND attempts=? AND status='running'",
                    "finishing a run")
                  .bind(status, exit_reason, now_s(), id, attempt)
                  .run();
  });
  return changed > 0;
}

bool Store::amend_failure(std::string_view id, int attempt, std::string_view exit_reason) {
  int changed = 0;
  transaction(fmt::format("amending the exit reason of run {}", id), [&] {
    changed = query("UPDATE runs SET exit_reason=? WHERE id=? AND attempts=? AND status='failed'",
                    "amending a failed run's exit reason")
                  .bind(exit_reason, id, attempt)
                  .run();
  });
  return changed > 0;
}

std::vector<LostRun> Store::mark_lost_stale(double lease_seconds) {
  std::vector<LostRun> lost;
  transaction("marking stale runs lost", [&] {
    struct Row {
      std::string id, host, run_dir;
      int attempts;
      std::optional<int64_t> runner_pid, runner_start, worker_pid;
      std::optional<double> heartbeat_at;
    };
    std::vector<Row> rows;
    {
      Query q = query("SELECT id, host, run_dir, attempts, runner_pid, runner_start, worker_pid, "
                      "heartbeat_at FROM runs WHERE status='running' AND slurm_job_id IS NULL",
                      "listing running runs");  // Slurm runs: liveness comes from Slurm (ablate sync)
      while (q.next())
        rows.push_back({q.text(0), q.text(1), q.text(2), static_cast<int>(q.i64(3)), q.opt_i64(4),
                        q.opt_i64(5), q.opt_i64(6), q.opt_real(7)});
    }
    const double t = now_s();
    const std::string here = host_name();
    for (const Row& r : rows) {
      const bool local = r.host == here && r.runner_pid;
      const bool runner_alive = local && process_alive(*r.runner_pid, r.runner_start);
      const double silent = r.heartbeat_at ? t - *r.heartbeat_at : t;
      std::string reason;
      if (local && !runner_alive) {
        reason = fmt::format("runner process {} on {} is gone", *r.runner_pid, r.host);
      } else if (!runner_alive && silent > lease_seconds) {
        // A live runner on this host is only slow, never lost: declaring it lost would let a
        // second worker write the same run folder.
        reason = fmt::format("no heartbeat from runner on {} for {:.0f} s (lease {:.0f} s)",
                             r.host.empty() ? "?" : r.host, silent, lease_seconds);
      }
      if (reason.empty()) continue;
      query("UPDATE runs SET status='lost', exit_reason=?, finished_at=? "
            "WHERE id=? AND attempts=? AND status='running'",
            "marking a run lost")
          .bind(reason, t, r.id, r.attempts)
          .run();
      lost.push_back({r.id, r.host, r.run_dir, reason, r.worker_pid});
    }
  });
  return lost;
}

bool Store::clear_results(std::string_view id, int attempt) {
  bool ours = false;
  transaction(fmt::format("clearing the results of run {}", id), [&] {
    ours = query("UPDATE runs SET last_step=NULL, total_steps=NULL WHERE id=? AND attempts=? AND status='running'",
                 "clearing a run's progress")
               .bind(id, attempt)
               .run() == 1;
    if (!ours) return;
    for (const char* sql : {"DELETE FROM metrics WHERE run_id=?", "DELETE FROM evals WHERE run_id=?",
                            "DELETE FROM env WHERE run_id=?", "DELETE FROM artifacts WHERE run_id=?",
                            "DELETE FROM journal_offsets WHERE run_id=?"})
      query(sql, "deleting a rerun's old results").bind(id).run();
  });
  return ours;
}

// ---- journal application ----

void Store::put_metric(std::string_view id, int64_t step, double epoch, std::string_view name,
                       double value) {
  query("INSERT INTO metrics(run_id, step, epoch, name, value) VALUES(?, ?, ?, ?, ?) "
        "ON CONFLICT(run_id, name, step) DO UPDATE SET epoch=excluded.epoch, value=excluded.value",
        "storing a metric")
      .bind(id, step, epoch, name, value)
      .run();
}

void Store::put_eval(std::string_view id, const EvalRow& e) {
  query("INSERT INTO evals(run_id, protocol, dataset, scale, metric, value) "
        "VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, protocol, dataset, scale, metric) "
        "DO UPDATE SET value=excluded.value",
        "storing an evaluation result")
      .bind(id, e.protocol, e.dataset, e.scale, e.metric, e.value)
      .run();
}

void Store::put_env(std::string_view id, std::string_view key, std::string_view value) {
  query("INSERT INTO env(run_id, key, value) VALUES(?, ?, ?) "
        "ON CONFLICT(run_id, key) DO UPDATE SET value=excluded.value",
        "storing an environment entry")
      .bind(id, key, value)
      .run();
}

void Store::put_artifact(std::string_view id, const ArtifactRow& a) {
  query("INSERT INTO artifacts(run_id, kind, path, sha256, created_at) VALUES(?, ?, ?, ?, ?) "
        "ON CONFLICT(run_id, kind, path) DO UPDATE SET sha256=excluded.sha256, "
        "created_at=excluded.created_at",
        "storing an artifact")
      .bind(id, a.kind, a.path, a.sha256, now_s())
      .run();
}

void Store::set_progress(std::string_view id, int64_t step, int64_t total_steps) {
  query("UPDATE runs SET last_step=?, total_steps=? WHERE id=?", "storing run progress")
      .bind(step, total_steps, id)
      .run();
}

void Store::set_worker(std::string_view id, std::string_view worker_host, int64_t worker_pid) {
  query("UPDATE runs SET worker_host=?, worker_pid=? WHERE id=?", "storing the worker identity")
      .bind(worker_host, worker_pid, id)
      .run();
}

bool Store::apply_finish(std::string_view id, std::string_view status,
                         std::string_view exit_reason, int64_t step) {
  const std::optional<RunStatus> s = parse_run_status(status);
  ABLATE_CHECK(s && is_final(*s), "journal finish status '{}'", status);
  return query("UPDATE runs SET status=?, exit_reason=?, finished_at=?, last_step=?, "
               "diverged_step=CASE WHEN ?='diverged' THEN ? ELSE NULL END "
               "WHERE id=? AND status IN ('running', 'lost')",
               "applying a run's finish line")
             .bind(status, exit_reason, now_s(), step, status, step, id)
             .run() > 0;
}

JournalOffset Store::journal_offset(std::string_view id) {
  Query q = query("SELECT offset, seq FROM journal_offsets WHERE run_id=?", "reading a journal offset");
  if (!q.bind(id).next()) return {};
  return {q.i64(0), q.i64(1)};
}

void Store::set_journal_offset(std::string_view id, const std::string& path, JournalOffset at) {
  query("INSERT INTO journal_offsets(run_id, path, offset, seq) VALUES(?, ?, ?, ?) "
        "ON CONFLICT(run_id) DO UPDATE SET path=excluded.path, offset=excluded.offset, "
        "seq=excluded.seq",
        "storing a journal offset")
      .bind(id, path, at.offset, at.seq)
      .run();
}

// ---- queries ----

namespace {
constexpr const char* kRunColumns =
    "id, experiment, config_hash, config_json, axes_json, seed, status, attempts, created_at, "
    "started_at, finished_at, heartbeat_at, host, gpu, worker_host, exit_reason, code_version, "
    "run_dir, slurm_job_id, runner_pid, runner_start, worker_pid, diverged_step, last_step, "
    "total_steps";
}  // namespace

RunRow Store::read_run(Query& q) {
  RunRow r;
  r.id = q.text(0);
  r.experiment = q.text(1);
  r.config_hash = q.text(2);
  r.config_json = q.text(3);
  r.axes_json = q.text(4);
  r.seed = q.i64(5);
  r.status = q.text(6);
  r.attempts = static_cast<int>(q.i64(7));
  r.created_at = q.real(8);
  r.started_at = q.opt_real(9);
  r.finished_at = q.opt_real(10);
  r.heartbeat_at = q.opt_real(11);
  r.host = q.text(12);
  r.gpu = q.text(13);
  r.worker_host = q.text(14);
  r.exit_reason = q.text(15);
  r.code_version = q.text(16);
  r.run_dir = q.text(17);
  r.slurm_job_id = q.text(18);
  r.runner_pid = q.opt_i64(19);
  r.runner_start = q.opt_i64(20);
  r.worker_pid = q.opt_i64(21);
  r.diverged_step = q.opt_i64(22);
  r.last_step = q.opt_i64(23);
  r.total_steps = q.opt_i64(24);
  return r;
}

std::optional<RunRow> Store::run(std::string_view id) {
  Query q = query(fmt::format("SELECT {} FROM runs WHERE id=?", kRunColumns), "reading a run");
  if (!q.bind(id).next()) return std::nullopt;
  return read_run(q);
}

std::vector<RunRow> Store::runs(std::string_view experiment) {
  const std::string sql =
      experiment.empty()
          ? fmt::format("SELECT {} FROM runs ORDER BY id", kRunColumns)
          : fmt::format("SELECT {} FROM runs WHERE id IN (SELECT run_id FROM experiments WHERE "
                        "name=?) ORDER BY id",
                        kRunColumns);
  std::vector<RunRow> rows;
  Query q = query(sql, "listing runs");
  if (!experiment.empty()) q.bind(experiment);
  while (q.next()) rows.push_back(read_run(q));
  return rows;
}

std::vector<std::string> Store::run_ids_with_prefix(std::string_view prefix) {
  std::vector<std::string> ids;
  // substr instead of LIKE: ids are matched literally, whatever characters they contain.
  Query q = query("SELECT id FROM runs WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id",
                  "looking up runs by id prefix");
  q.bind(prefix);
  while (q.next()) ids.push_back(q.text(0));
  return ids;
}

std::vector<std::string> Store::experiments_of(std::string_view id) {
  std::vector<std::string> names;
  Query q = query("SELECT name FROM experiments WHERE run_id=? ORDER BY name",
                  "listing a run's experiments");
  q.bind(id);
  while (q.next()) names.push_back(q.text(0));
  return names;
}

std::vector<MetricRow> Store::metrics(std::string_view id) {
  std::vector<MetricRow> rows;
  Query q = query("SELECT step, epoch, name, value FROM metrics WHERE run_id=? ORDER BY name, step",
                  "reading metrics");
  q.bind(id);
  while (q.next()) rows.push_back({q.i64(0), q.real(1), q.text(2), q.real(3)});
  return rows;
}

std::vector<EvalRow> Store::evals(std::string_view id) {
  std::vector<EvalRow> rows;
  Query q = query("SELECT protocol, dataset, scale, metric, value FROM evals WHERE run_id=? "
                  "ORDER BY protocol, dataset, scale, metric",
                  "reading evaluation results");
  q.bind(id);
  while (q.next()) rows.push_back({q.text(0), q.text(1), q.real(2), q.text(3), q.real(4)});
  return rows;
}

std::map<std::string, std::string> Store::env(std::string_view id) {
  std::map<std::string, std::string> kv;
  Query q = query("SELECT key, value FROM env WHERE run_id=?", "reading a run's environment");
  q.bind(id);
  while (q.next()) kv[q.text(0)] = q.text(1);
  return kv;
}

std::vector<ArtifactRow> Store::artifacts(std::string_view id) {
  std::vector<ArtifactRow> rows;
  Query q = query("SELECT kind, path, sha256 FROM artifacts WHERE run_id=? ORDER BY kind, path",
                  "reading a run's artifacts");
  q.bind(id);
  while (q.next()) rows.push_back({q.text(0), q.text(1), q.text(2)});
  return rows;
}

std::map<std::string, int> Store::status_counts(const std::vector<std::string>& ids) {
  std::map<std::string, int> counts;
  for (RunStatus s : kAllRunStatuses) counts[status_name(s)] = 0;
  std::map<std::string, std::string> status_of;
  {
    Query q = query("SELECT id, status FROM runs", "counting run statuses");
    while (q.next()) status_of[q.text(0)] = q.text(1);
  }
  for (const std::string& id : ids) {
    auto it = status_of.find(id);
    if (it != status_of.end()) ++counts[it->second];
  }
  return counts;
}

// ---- status / show / export ----

nlohmann::json status_json(Store& store, const Experiment& experiment) {
  std::vector<std::string> ids;
  for (const PlannedRun& r : experiment.runs) ids.push_back(r.id);
  std::map<std::string, int> counts = store.status_counts(ids);
  int known = 0;
  for (const auto& [status, n] : counts) known += n;
  counts[status_name(RunStatus::queued)] += static_cast<int>(ids.size()) - known;
  nlohmann::json j;
  j["planned"] = static_cast<int>(ids.size());
  for (RunStatus s : kAllRunStatuses) j[status_name(s)] = counts[status_name(s)];
  return j;
}

namespace {

// One CSV field, quoted when it holds a separator, quote or line break (RFC 4180).
std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\n\r") == std::string::npos) return v;
  std::string q = "\"";
  for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

void write_csv_row(const std::vector<std::string>& fields, std::ostream& out) {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out << ',';
    out << csv_field(fields[i]);
  }
  out << '\n';
}

std::string number(double v) { return std::isnan(v) ? "nan" : fmt::format("{}", v); }

// Nested axes objects flattened to dotted keys: {"method": {"mask_ratio": 0.75}} ->
// {"method.mask_ratio": "0.75"}.
void flatten(const nlohmann::json& j, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    out[prefix] = j.is_string() ? j.get<std::string>() : j.dump();
  }
}

std::optional<double> duration(const RunRow& r) {
  if (!r.started_at || !r.finished_at) return std::nullopt;
  return *r.finished_at - *r.started_at;
}

}  // namespace

std::string show_run(Store& store, std::string_view id) {
  std::vector<std::string> ids = store.run_ids_with_prefix(id);
  if (ids.empty())
    throw StoreError(SQLITE_NOTFOUND,
                     fmt::format("no run with id '{}' in {}", id, store.path().string()));
  if (ids.size() > 1 && ids[0] != id)
    throw StoreError(SQLITE_NOTFOUND, fmt::format("id prefix '{}' matches {} runs ({}, {}, ...): "
                                                  "give more characters",
                                                  id, ids.size(), ids[0], ids[1]));
  const RunRow r = *store.run(ids[0]);
  std::string s;
  auto out = std::back_inserter(s);
  std::string experiments;
  for (const std::string& e : store.experiments_of(r.id))
    experiments += (experiments.empty() ? "" : ", ") + e;
  fmt::format_to(out, "run {}  [{}]  experiments: {}\n", r.id, r.status, experiments);
  fmt::format_to(out, "  attempts {}  seed {}  host {}  gpu {}  code {}\n", r.attempts, r.seed,
                 r.host.empty() ? "-" : r.host, r.gpu.empty() ? "-" : r.gpu,
                 r.code_version.empty() ? "-" : r.code_version);
  fmt::format_to(out, "  started {}  finished {}", utc_time(r.started_at), utc_time(r.finished_at));
  if (r.started_at && r.finished_at)
    fmt::format_to(out, "  ({:.1f} s)", *r.finished_at - *r.started_at);
  fmt::format_to(out, "\n  steps {}/{}", r.last_step ? std::to_string(*r.last_step) : "-",
                 r.total_steps ? std::to_string(*r.total_steps) : "-");
  if (r.diverged_step) fmt::format_to(out, "  diverged at step {}", *r.diverged_step);
  fmt::format_to(out, "\n");
  if (!r.exit_reason.empty()) fmt::format_to(out, "  exit: {}\n", r.exit_reason);
  if (!r.run_dir.empty()) fmt::format_to(out, "  run dir: {}\n", r.run_dir);
  fmt::format_to(out, "  config hash: {}\naxes: {}\nconfig:\n", r.config_hash, r.axes_json);
  std::map<std::string, std::string> config;
  flatten(nlohmann::json::parse(r.config_json), "", config);
  for (const auto& [k, v] : config) fmt::format_to(out, "  {} = {}\n", k, v);

  std::vector<EvalRow> evals = store.evals(r.id);
  fmt::format_to(out, "evals:{}\n", evals.empty() ? " none" : "");
  for (const EvalRow& e : evals)
    fmt::format_to(out, "  {:<10} {:<12} scale {:<6} {:<12} {:.6g}\n", e.protocol, e.dataset,
                   e.scale, e.metric, e.value);

  std::vector<MetricRow> metrics = store.metrics(r.id);
  fmt::format_to(out, "metrics:{}\n", metrics.empty() ? " none" : "");
  for (size_t i = 0; i < metrics.size();) {
    size_t j = i;
    double lo = std::numeric_limits<double>::infinity();
    while (j < metrics.size() && metrics[j].name == metrics[i].name) {
      if (metrics[j].value < lo) lo = metrics[j].value;
      ++j;
    }
    fmt::format_to(out, "  {:<20} {} points  steps {}..{}  last {:.6g}  min {:.6g}\n",
                   metrics[i].name, j - i, metrics[i].step, metrics[j - 1].step,
                   metrics[j - 1].value, lo);
    i = j;
  }
  std::map<std::string, std::string> env = store.env(r.id);
  fmt::format_to(out, "env:{}\n", env.empty() ? " none" : "");
  for (const auto& [k, v] : env) fmt::format_to(out, "  {} = {}\n", k, v);
  std::vector<ArtifactRow> artifacts = store.artifacts(r.id);
  fmt::format_to(out, "artifacts:{}\n", artifacts.empty() ? " none" : "");
  for (const ArtifactRow& a : artifacts)
    fmt::format_to(out, "  {:<10} {}  sha256 {}\n", a.kind, a.path, a.sha256);
  return s;
}

namespace {

void export_json(Store& store, std::ostream& out) {
  nlohmann::json doc;
  doc["schema_version"] = store.schema_version();
  doc["runs"] = nlohmann::json::array();
  for (const RunRow& r : store.runs()) {
    nlohmann::json j;
    j["id"] = r.id;
    j["experiments"] = store.experiments_of(r.id);
    j["status"] = r.status;
    j["attempts"] = r.attempts;
    j["seed"] = r.seed;
    j["config_hash"] = r.config_hash;
    j["code_version"] = r.code_version;
    j["host"] = r.host;
    j["gpu"] = r.gpu;
    j["started_at"] = r.started_at ? nlohmann::json(*r.started_at) : nlohmann::json();
    j["finished_at"] = r.finished_at ? nlohmann::json(*r.finished_at) : nlohmann::json();
    j["exit_reason"] = r.exit_reason;
    j["last_step"] = r.last_step ? nlohmann::json(*r.last_step) : nlohmann::json();
    j["total_steps"] = r.total_steps ? nlohmann::json(*r.total_steps) : nlohmann::json();
    j["diverged_step"] = r.diverged_step ? nlohmann::json(*r.diverged_step) : nlohmann::json();
    j["config"] = nlohmann::json::parse(r.config_json);
    j["axes"] = nlohmann::json::parse(r.axes_json);
    nlohmann::json metrics = nlohmann::json::object();
    for (const MetricRow& m : store.metrics(r.id)) {
      nlohmann::json& series = metrics[m.name];
      series["step"].push_back(m.step);
      series["epoch"].push_back(m.epoch);
      series["value"].push_back(m.value);  // NaN is written as null
    }
    j["metrics"] = std::move(metrics);
    j["evals"] = nlohmann::json::array();
    for (const EvalRow& e : store.evals(r.id))
      j["evals"].push_back({{"protocol", e.protocol}, {"dataset", e.dataset}, {"scale", e.scale},
                            {"metric", e.metric}, {"value", e.value}});
    j["env"] = store.env(r.id);
    j["artifacts"] = nlohmann::json::array();
    for (const ArtifactRow& a : store.artifacts(r.id))
      j["artifacts"].push_back({{"kind", a.kind}, {"path", a.path}, {"sha256", a.sha256}});
    doc["runs"].push_back(std::move(j));
  }
  out << doc.dump(2) << "\n";
}

void export_csv(Store& store, std::ostream& out) {
  struct Line {
    RunRow run;
    std::map<std::string, std::string> cells;  // axis.*, eval.*, metric.* columns
  };
  std::vector<Line> lines;
  std::set<std::string> extra;
  for (RunRow& r : store.runs()) {
    Line l{std::move(r), {}};
    std::map<std::string, std::string> axes;
    flatten(nlohmann::json::parse(l.run.axes_json), "", axes);
    for (const auto& [k, v] : axes) l.cells["axis." + k] = v;
    for (const EvalRow& e : store.evals(l.run.id))
      l.cells[fmt::format("eval.{}.{}.{}.{}", e.protocol, e.dataset, e.scale, e.metric)] =
          number(e.value);
    for (const MetricRow& m : store.metrics(l.run.id))  // ordered by step: the last one wins
      l.cells["metric." + m.name] = number(m.value);
    for (const auto& [k, v] : l.cells) extra.insert(k);
    lines.push_back(std::move(l));
  }
  const char* fixed[] = {"id", "experiments", "status", "attempts", "seed", "config_hash",
                         "code_version", "host", "gpu", "started_at", "finished_at", "duration_s",
                         "last_step", "total_steps", "diverged_step", "exit_reason"};
  std::vector<std::string> header(std::begin(fixed), std::end(fixed));
  header.insert(header.end(), extra.begin(), extra.end());
  write_csv_row(header, out);
  auto opt = [](const auto& v) { return v ? fmt::format("{}", *v) : std::string(); };
  for (const Line& l : lines) {
    const RunRow& r = l.run;
    std::string experiments;
    for (const std::string& e : store.experiments_of(r.id))
      experiments += (experiments.empty() ? "" : ";") + e;
    std::vector<std::string> row = {r.id, experiments, r.status, std::to_string(r.attempts),
                                    std::to_string(r.seed), r.config_hash, r.code_version, r.host,
                                    r.gpu, opt(r.started_at), opt(r.finished_at), opt(duration(r)),
                                    opt(r.last_step), opt(r.total_steps), opt(r.diverged_step),
                                    r.exit_reason};
    for (const std::string& k : extra) {
      auto it = l.cells.find(k);
      row.push_back(it == l.cells.end() ? "" : it->second);
    }
    write_csv_row(row, out);
  }
}

}  // namespace

void export_db(Store& store, std::string_view fmt, std::ostream& out) {
  if (fmt == "json") return export_json(store, out);
  if (fmt == "csv") return export_csv(store, out);
  throw ConfigError("<export>", "format", fmt::format("unknown export format '{}'", fmt),
                    "csv or json");
}

}  // namespace ablate
