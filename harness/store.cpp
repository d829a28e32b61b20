// SQLite results database (see store.h): connection setup, schema migrations, the run lifecycle
// transitions, journal application and the queries that `ablate status/show/export` present
// (app/run_views.h).
#include "harness/store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>
#include <tuple>

#include <fmt/format.h>

#include "ablate/build_info.h"
#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/env_info.h"
#include "harness/hash.h"
#include "harness/lifecycle.h"
#include "harness/process.h"
#include "harness/sys_util.h"

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
    // Version 2: evaluations become records of their own (eval_tasks + eval_metrics; `evals` is now
    // a view with the old columns) and run ids leave the eval section out. The old evals table is
    // kept as evals_v1 until migrate_eval_records() has turned its rows into records.
    R"sql(
CREATE TABLE eval_tasks(
  id             TEXT PRIMARY KEY,
  weights        TEXT NOT NULL,
  run_id         TEXT REFERENCES runs(id) ON DELETE CASCADE,
  protocol       TEXT NOT NULL,
  dataset        TEXT NOT NULL,
  scale          REAL NOT NULL,
  train_ratio    REAL NOT NULL,
  point          REAL NOT NULL,
  settings_json  TEXT NOT NULL,
  config_json    TEXT NOT NULL,
  status         TEXT NOT NULL DEFAULT 'queued'
                 CHECK(status IN ('queued','running','done','failed','diverged','lost')),
  attempts       INTEGER NOT NULL DEFAULT 0,
  created_at     REAL NOT NULL,
  started_at     REAL,
  finished_at    REAL,
  heartbeat_at   REAL,
  host           TEXT,
  gpu            TEXT,
  runner_pid     INTEGER,
  runner_start   INTEGER,
  worker_pid     INTEGER,
  worker_host    TEXT,
  exit_reason    TEXT,
  code_version   TEXT,
  run_dir        TEXT,
  slurm_job_id   TEXT,
  journal_offset INTEGER NOT NULL DEFAULT 0,
  journal_seq    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX eval_tasks_by_run ON eval_tasks(run_id);
CREATE INDEX eval_tasks_by_status ON eval_tasks(status);
CREATE TABLE eval_metrics(
  eval_id TEXT NOT NULL REFERENCES eval_tasks(id) ON DELETE CASCADE,
  metric  TEXT NOT NULL,
  value   REAL,
  PRIMARY KEY(eval_id, metric)
) WITHOUT ROWID;
CREATE TABLE run_id_map(
  old_id TEXT PRIMARY KEY,
  new_id TEXT NOT NULL
);
CREATE TABLE eval_env(
  eval_id TEXT NOT NULL REFERENCES eval_tasks(id) ON DELETE CASCADE,
  key     TEXT NOT NULL,
  value   TEXT NOT NULL,
  PRIMARY KEY(eval_id, key)
) WITHOUT ROWID;
ALTER TABLE evals RENAME TO evals_v1;
CREATE VIEW evals(run_id, protocol, dataset, scale, metric, value) AS
  SELECT t.run_id, t.protocol, t.dataset, t.point, m.metric, m.value
  FROM eval_metrics m JOIN eval_tasks t ON t.id = m.eval_id;
)sql",
};
constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == Store::kSchemaVersion);

// How long a writer keeps retrying BEGIN IMMEDIATE on top of SQLite's own 30 s busy wait.
constexpr auto kBusyTimeout = std::chrono::seconds(30);
constexpr int kBusyRetries = 10;

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

// An evaluation protocol read back from the database or a journal.
Protocol stored_protocol(std::string_view word) {
  if (const std::optional<Protocol> p = parse_choice<Protocol>(word)) return *p;
  throw StoreError(SQLITE_MISMATCH, fmt::format("unknown evaluation protocol '{}' in the results", word));
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
    for (int i = v; i < kMigrationCount; ++i) {
      db_.exec(kMigrations[i], fmt::format("migrating the schema to version {}", i + 1));
      if (i + 1 == 2) migrate_eval_records();
    }
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

// Version 1 -> 2, the data: every run gets the id of what it pre-trained (config_hash now leaves
// the eval section out); runs that differed only in evaluation settings merge into one (the done one,
// else the first created, keeps its row; the others' experiments move to it); each old evals row
// becomes a done eval task of the new id, keyed by the run's stored eval section, with its log in the
// run's folder. Old ids are kept in run_id_map. Runs of the same id get foreign-key checks at commit.
void Store::migrate_eval_records() {
  db_.exec("PRAGMA defer_foreign_keys=ON", "deferring foreign keys for the id migration");
  struct OldRun {
    std::string id, config_json, run_dir, status;
    std::optional<double> started_at, finished_at;
  };
  std::vector<OldRun> runs;
  {
    Query q = query("SELECT id, config_json, run_dir, status, started_at, finished_at FROM runs "
                    "ORDER BY status='done' DESC, created_at, id",
                    "listing runs to migrate");
    while (q.next()) runs.push_back({q.text(0), q.text(1), q.text(2), q.text(3), q.opt_real(4), q.opt_real(5)});
  }
  std::set<std::string> kept;  // new ids that have their row already
  for (const OldRun& r : runs) {
    const RunConfig config = config_from_json(nlohmann::json::parse(r.config_json));
    const std::string id = config_hash(config);
    const WeightsSource weights{"run", id, ""};
    {
      Query q = query("SELECT protocol, dataset, scale, metric, value FROM evals_v1 WHERE run_id=?",
                      "reading version 1 evaluations");
      q.bind(r.id);
      while (q.next()) {
        const Protocol protocol = stored_protocol(q.text(0));
        const double scale = protocol == Protocol::knn ? q.real(2) : 1.0;
        EvalConfig eval = config.eval;
        eval.dataset = q.text(1);
        const EvalTask t = make_eval_task(weights, eval, protocol, scale);
        query("INSERT INTO eval_tasks(id, weights, run_id, protocol, dataset, scale, train_ratio, point, "
              "settings_json, config_json, status, attempts, created_at, started_at, finished_at, "
              "exit_reason, run_dir) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'done', 1, ?, ?, ?, '', ?) "
              "ON CONFLICT(id) DO NOTHING",
              "migrating an evaluation")
            .bind(t.id, weights.label(), id, name_of(t.protocol), t.dataset, t.scale, t.train_ratio, t.point(),
                  canonical_dump(t.settings), canonical_dump(eval_config_json(t.config)),
                  now_s(), r.started_at, r.finished_at, r.run_dir)
            .run();
        query("INSERT INTO eval_metrics(eval_id, metric, value) VALUES(?, ?, ?) ON CONFLICT DO NOTHING",
              "migrating an evaluation result")
            .bind(t.id, q.text(3), q.real(4))
            .run();
      }
    }
    if (id == r.id) {
      kept.insert(id);
      continue;
    }
    query("INSERT INTO run_id_map(old_id, new_id) VALUES(?, ?) ON CONFLICT(old_id) DO UPDATE SET "
          "new_id=excluded.new_id",
          "recording a migrated run id")
        .bind(r.id, id)
        .run();
    if (kept.insert(id).second) {
      query("UPDATE runs SET id=?, config_hash=? WHERE id=?", "migrating a run id")
          .bind(id, sha256_hex(config_id_json(config)), r.id)
          .run();
      for (const char* table : {"experiments", "metrics", "env", "artifacts", "journal_offsets"})
        query(fmt::format("UPDATE {} SET run_id=? WHERE run_id=?", table), "migrating a run id")
            .bind(id, r.id)
            .run();
    } else {  // merges into the run already holding the id
      query("INSERT INTO experiments(name, run_id, axes_json, added_at) SELECT name, ?, axes_json, "
            "added_at FROM experiments WHERE run_id=? ON CONFLICT(name, run_id) DO NOTHING",
            "merging a run's experiments")
          .bind(id, r.id)
          .run();
      query("DELETE FROM runs WHERE id=?", "removing a merged run").bind(r.id).run();
    }
  }
  db_.exec("DROP TABLE evals_v1", "dropping the version 1 evals table");
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

// ---- evaluation records ----

void Store::upsert_eval_tasks(const std::vector<EvalTask>& tasks) {
  transaction("registering evaluations", [&] {
    const double t = now_s();
    for (const EvalTask& e : tasks)
      query("INSERT INTO eval_tasks(id, weights, run_id, protocol, dataset, scale, train_ratio, point, "
            "settings_json, config_json, status, attempts, created_at) "
            "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?) ON CONFLICT(id) DO NOTHING",
            "inserting an evaluation")
          .bind(e.id, e.weights.label(),
                e.weights.kind == "run" ? std::optional<std::string>(e.weights.key) : std::nullopt,
                name_of(e.protocol), e.dataset, e.scale, e.train_ratio, e.point(), canonical_dump(e.settings),
                canonical_dump(eval_config_json(e.config)), t)
          .run();
  });
}

namespace {
constexpr const char* kEvalColumns =
    "id, weights, COALESCE(run_id, ''), protocol, dataset, scale, train_ratio, point, settings_json, "
    "config_json, status, attempts, started_at, finished_at, host, gpu, exit_reason, run_dir, "
    "slurm_job_id, runner_pid, runner_start, worker_pid";
}  // namespace

std::optional<EvalTaskRow> Store::eval_task(std::string_view id) {
  Query q = query(fmt::format("SELECT {} FROM eval_tasks WHERE id=?", kEvalColumns), "reading an evaluation");
  if (!q.bind(id).next()) return std::nullopt;
  return EvalTaskRow{q.text(0),  q.text(1),     q.text(2),     q.text(3),     q.text(4),
                     q.real(5),  q.real(6),     q.real(7),     q.text(8),     q.text(9),
                     q.text(10), static_cast<int>(q.i64(11)),  q.opt_real(12), q.opt_real(13),
                     q.text(14), q.text(15),    q.text(16),    q.text(17),    q.text(18),
                     q.opt_i64(19), q.opt_i64(20), q.opt_i64(21)};
}

std::vector<EvalTaskRow> Store::eval_tasks_of(std::string_view run_id) {
  std::vector<std::string> ids;
  {
    Query q = query("SELECT id FROM eval_tasks WHERE run_id=? ORDER BY protocol, dataset, point, id",
                    "listing a run's evaluations");
    q.bind(run_id);
    while (q.next()) ids.push_back(q.text(0));
  }
  std::vector<EvalTaskRow> rows;
  for (const std::string& id : ids) rows.push_back(*eval_task(id));
  return rows;
}

std::optional<int> Store::claim_eval(std::string_view id, const std::vector<std::string>& from,
                                     const ClaimInfo& who) {
  std::optional<int> attempt;
  transaction(fmt::format("claiming evaluation {}", id), [&] {
    std::optional<EvalTaskRow> row = eval_task(id);
    if (!row || std::find(from.begin(), from.end(), row->status) == from.end()) return;
    const double t = now_s();
    // A fresh attempt re-reads its journal from the start (the runner empties the folder).
    query("UPDATE eval_tasks SET status='running', attempts=attempts+1, started_at=?, finished_at=NULL, "
          "heartbeat_at=?, host=?, gpu=?, runner_pid=?, runner_start=?, worker_pid=NULL, "
          "worker_host=NULL, exit_reason=NULL, code_version=?, run_dir=?, slurm_job_id=NULL, journal_offset=0, "
          "journal_seq=0 WHERE id=?",
          "claiming an evaluation")
        .bind(t, t, who.host, who.gpu, who.runner_pid, who.runner_start, who.code_version,
              who.run_dir, id)
        .run();
    query("DELETE FROM eval_metrics WHERE eval_id=?", "clearing an evaluation's old results").bind(id).run();
    attempt = row->attempts + 1;
  });
  return attempt;
}

bool Store::finish_eval(std::string_view id, int attempt, std::string_view status,
                        std::string_view exit_reason) {
  int changed = 0;
  transaction(fmt::format("finishing evaluation {}", id), [&] {
    changed = query("UPDATE eval_tasks SET status=?, exit_reason=?, finished_at=? "
                    "WHERE id=? AND attempts=? AND status='running'",
                    "finishing an evaluation")
                  .bind(status, exit_reason, now_s(), id, attempt)
                  .run();
  });
  return changed > 0;
}

void Store::set_eval_worker_pid(std::string_view id, int attempt, int64_t pid) {
  transaction("recording an evaluation's worker pid", [&] {
    query("UPDATE eval_tasks SET worker_pid=? WHERE id=? AND attempts=? AND status='running'",
          "recording an evaluation's worker pid")
        .bind(pid, id, attempt)
        .run();
  });
}

void Store::set_eval_slurm_job_id(std::string_view id, int attempt, std::string_view job) {
  transaction("recording an evaluation's Slurm job id", [&] {
    query("UPDATE eval_tasks SET slurm_job_id=? WHERE id=? AND attempts=?", "recording an evaluation's Slurm job id")
        .bind(job, id, attempt)
        .run();
  });
}

std::vector<std::string> Store::mark_lost_evals() {
  std::vector<std::string> lost;
  transaction("marking stale evaluations lost", [&] {
    std::vector<std::tuple<std::string, int, int64_t, std::optional<int64_t>>> rows;
    {
      Query q = query("SELECT id, attempts, runner_pid, runner_start FROM eval_tasks "
                      "WHERE status='running' AND host=? AND runner_pid IS NOT NULL AND slurm_job_id IS NULL",
                      "listing running evaluations");
      q.bind(host_name());
      while (q.next()) rows.emplace_back(q.text(0), static_cast<int>(q.i64(1)), q.i64(2), q.opt_i64(3));
    }
    for (const auto& [id, attempts, pid, start] : rows) {
      if (process_alive(pid, start)) continue;
      query("UPDATE eval_tasks SET status='lost', exit_reason=?, finished_at=? WHERE id=? AND attempts=?",
            "marking an evaluation lost")
          .bind(fmt::format("runner process {} is gone", pid), now_s(), id, attempts)
          .run();
      lost.push_back(id);
    }
  });
  return lost;
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
    for (const char* sql : {"DELETE FROM metrics WHERE run_id=?", "DELETE FROM eval_tasks WHERE run_id=?",
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
  std::string config_json;
  {
    Query q = query("SELECT config_json FROM runs WHERE id=?", "reading a run's config");
    ABLATE_CHECK(q.bind(id).next(), "evaluation result of unknown run {}", id);
    config_json = q.text(0);
  }
  EvalConfig eval = config_from_json(nlohmann::json::parse(config_json)).eval;
  eval.dataset = e.dataset;
  const Protocol protocol = stored_protocol(e.protocol);
  const EvalTask t = make_eval_task(WeightsSource{"run", std::string(id), ""}, eval, protocol,
                                    protocol == Protocol::knn ? e.scale : 1.0);
  upsert_eval_tasks({t});
  query("UPDATE eval_tasks SET status='done', attempts=max(attempts, 1), finished_at=? WHERE id=?",
        "marking an evaluation done")
      .bind(now_s(), t.id)
      .run();
  put_eval_metric(t.id, e.metric, e.value);
}

void Store::put_eval_metric(std::string_view eval_id, std::string_view metric, double value) {
  query("INSERT INTO eval_metrics(eval_id, metric, value) VALUES(?, ?, ?) "
        "ON CONFLICT(eval_id, metric) DO UPDATE SET value=excluded.value",
        "storing an evaluation result")
      .bind(eval_id, metric, value)
      .run();
}

bool Store::apply_eval_finish(std::string_view eval_id, std::string_view status,
                              std::string_view exit_reason) {
  return query("UPDATE eval_tasks SET status=?, exit_reason=?, finished_at=? "
               "WHERE id=? AND status IN ('running','lost')",
               "finishing an evaluation from its journal")
             .bind(status, exit_reason, now_s(), eval_id)
             .run() > 0;
}

void Store::set_eval_worker(std::string_view eval_id, std::string_view worker_host, int64_t worker_pid) {
  query("UPDATE eval_tasks SET worker_host=?, worker_pid=? WHERE id=?", "recording an evaluation's worker")
      .bind(worker_host, worker_pid, eval_id)
      .run();
}

JournalOffset Store::eval_journal_offset(std::string_view eval_id) {
  Query q = query("SELECT journal_offset, journal_seq FROM eval_tasks WHERE id=?",
                  "reading an evaluation's journal offset");
  if (!q.bind(eval_id).next()) return {};
  return {q.i64(0), q.i64(1)};
}

void Store::set_eval_journal_offset(std::string_view eval_id, JournalOffset at) {
  query("UPDATE eval_tasks SET journal_offset=?, journal_seq=? WHERE id=?",
        "storing an evaluation's journal offset")
      .bind(at.offset, at.seq, eval_id)
      .run();
}

void Store::put_env(std::string_view id, std::string_view key, std::string_view value) {
  query("INSERT INTO env(run_id, key, value) VALUES(?, ?, ?) "
        "ON CONFLICT(run_id, key) DO UPDATE SET value=excluded.value",
        "storing an environment entry")
      .bind(id, key, value)
      .run();
}

void Store::put_eval_env(std::string_view eval_id, std::string_view key, std::string_view value) {
  query("INSERT INTO eval_env(eval_id, key, value) VALUES(?, ?, ?) "
        "ON CONFLICT(eval_id, key) DO UPDATE SET value=excluded.value",
        "storing an evaluation's environment entry")
      .bind(eval_id, key, value)
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

std::optional<std::string> Store::migrated_id(std::string_view old_id) {
  Query q = query("SELECT new_id FROM run_id_map WHERE old_id=?", "looking up a migrated run id");
  if (!q.bind(old_id).next()) return std::nullopt;
  return q.text(0);
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

}  // namespace ablate
