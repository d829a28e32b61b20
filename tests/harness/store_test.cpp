// Results database: schema and WAL setup, idempotent planning, the claim/finish/lost lifecycle with
// its fencing by attempt number, idempotent metric upserts (NaN included), and 8 processes writing
// one database at once without losing a write or seeing "database is locked". What status, show
// and export print of it is tested in tests/app/run_views_test.cpp.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <set>
#include <sstream>

#include "harness/check.h"
#include "harness/env_info.h"
#include "harness/process.h"
#include "harness/hash.h"
#include "harness/store.h"
#include "tests/harness/run_fixtures.h"
#include "tests/support/catch.h"

using namespace ablate;
using ablate::test::TempDir;

namespace {

// One value from a plain sqlite3 connection, independent of Store (checks what users see).
std::string sql_value(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::string v = "<no row>";
  if (sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(st, 0);
    v = t ? reinterpret_cast<const char*>(t) : "NULL";
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return v;
}

void sql_exec(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(h);
}

ClaimInfo me() {
  ClaimInfo c;
  c.host = host_name();
  c.runner_pid = ::getpid();
  c.runner_start = process_start_ticks(::getpid()).value_or(0);
  c.run_dir = "/nonexistent";
  return c;
}

}  // namespace

TEST_CASE("store: a new database has the documented schema, WAL mode and version", "[store]") {
  TempDir tmp("store");
  const auto db = tmp / "sub/dir/ablate.sqlite";  // parent folders are created
  {
    Store store(db);
    CHECK(store.schema_version() == Store::kSchemaVersion);
  }
  CHECK(sql_value(db, "PRAGMA journal_mode") == "wal");
  CHECK(sql_value(db, "PRAGMA user_version") == std::to_string(Store::kSchemaVersion));
  CHECK(sql_value(db, "SELECT value FROM meta WHERE key='schema_version'") ==
        std::to_string(Store::kSchemaVersion));
  for (const char* table : {"meta", "runs", "experiments", "metrics", "eval_tasks", "eval_metrics", "env",
                            "artifacts", "journal_offsets", "run_id_map"})
    CHECK(sql_value(db, fmt::format("SELECT count(*) FROM sqlite_master WHERE type='table' AND "
                                    "name='{}'", table)) == "1");
  // evals keeps the version 1 columns as a view over the evaluation records.
  CHECK(sql_value(db, "SELECT count(*) FROM sqlite_master WHERE type='view' AND name='evals'") == "1");
  // Reopening does not migrate again.
  Store again(db);
  CHECK(again.schema_version() == Store::kSchemaVersion);
}

TEST_CASE("store: opening fails clearly for a missing file or a newer schema", "[store]") {
  TempDir tmp("store");
  CHECK_THROWS_AS(Store(tmp / "missing.sqlite", Store::Mode::existing), StoreError);
  { Store s(tmp / "db.sqlite"); }
  sql_exec(tmp / "db.sqlite", "PRAGMA user_version=99");
  try {
    Store s(tmp / "db.sqlite");
    FAIL("opened a database from the future");
  } catch (const StoreError& e) {
    CHECK(std::string(e.what()).find("newer") != std::string::npos);
    CHECK(e.code == SQLITE_MISMATCH);
  }
}

TEST_CASE("store: planning is idempotent and records experiment membership", "[store]") {
  TempDir tmp("store");
  Store store(tmp / "db.sqlite");
  Experiment a = test::experiment_of("a", {0, 1, 2});
  Experiment b = test::experiment_of("b", {2, 3});
  store.upsert_planned(a.name, a.runs);
  store.upsert_planned(a.name, a.runs);
  store.upsert_planned(b.name, b.runs);
  CHECK(store.runs().size() == 4);
  CHECK(store.runs("a").size() == 3);
  CHECK(store.runs("b").size() == 2);
  const std::string shared = a.runs[2].id;
  CHECK(store.experiments_of(shared) == std::vector<std::string>{"a", "b"});
  RunRow r = *store.run(shared);
  CHECK(r.status == "queued");
  CHECK(r.attempts == 0);
  CHECK(r.experiment == "a");  // the first experiment that planned it
  CHECK(r.seed == 2);
  CHECK(r.config_json == canonical_dump(config_to_json(a.runs[2].config)));
  CHECK(r.config_hash == sha256_hex(config_id_json(a.runs[2].config)));
  CHECK(r.config_hash.substr(0, 12) == r.id);
  CHECK(nlohmann::json::parse(r.axes_json) == nlohmann::json{{"seed", 2}});
}

TEST_CASE("store: claim, heartbeat and finish are fenced by the attempt number", "[store]") {
  TempDir tmp("store");
  Store store(tmp / "db.sqlite");
  Experiment e = test::experiment_of("e", {0});
  store.upsert_planned(e.name, e.runs);
  const std::string id = e.runs[0].id;

  std::optional<int> first = store.claim_run(id, {"queued", "lost"}, me());
  REQUIRE(first == 1);
  CHECK_FALSE(store.claim_run(id, {"queued", "lost"}, me()).has_value());  // already running
  RunRow r = *store.run(id);
  CHECK(r.status == "running");
  CHECK(r.runner_pid == ::getpid());
  CHECK(r.started_at.has_value());

  CHECK_FALSE(store.finish(id, 7, "done", ""));  // a stale attempt cannot finish it
  CHECK(store.run(id)->status == "running");
  CHECK(store.finish(id, 1, "failed", "exit code 3"));
  r = *store.run(id);
  CHECK(r.status == "failed");
  CHECK(r.exit_reason == "exit code 3");
  CHECK(r.finished_at >= r.started_at);
  CHECK_FALSE(store.finish(id, 1, "done", ""));  // finishing twice changes nothing
  CHECK(store.run(id)->status == "failed");
  CHECK_FALSE(store.amend_failure(id, 7, "stale attempt"));
  CHECK(store.amend_failure(id, 1, "rank 1 of 2: killed | rank 0 of 2 reported: exit code 3"));
  CHECK(store.run(id)->exit_reason == "rank 1 of 2: killed | rank 0 of 2 reported: exit code 3");

  CHECK_FALSE(store.claim_run(id, {"queued", "lost"}, me()).has_value());  // failed is not runnable
  CHECK(store.claim_run(id, {"queued", "lost", "failed"}, me()) == 2);     // unless --rerun failed
  CHECK_FALSE(store.amend_failure(id, 2, "not failed"));  // only a failed attempt's reason changes
  CHECK_THROWS_AS(store.finish(id, 2, "bogus", ""), InternalError);
}

TEST_CASE("store: metrics are upserted per (run, name, step); NaN reads back as NaN", "[store]") {
  TempDir tmp("store");
  Store store(tmp / "db.sqlite");
  Experiment e = test::experiment_of("e", {0});
  store.upsert_planned(e.name, e.runs);
  const std::string id = e.runs[0].id;
  store.transaction("test", [&] {
    store.put_metric(id, 10, 0.5, "loss", 2.0);
    store.put_metric(id, 10, 0.5, "loss", 1.5);  // a resumed worker re-logs step 10
    store.put_metric(id, 20, 1.0, "loss", std::nan(""));
    store.put_metric(id, 10, 0.5, "lr", 1e-4);
  });
  std::vector<MetricRow> m = store.metrics(id);
  REQUIRE(m.size() == 3);
  CHECK(m[0].name == "loss");
  CHECK(m[0].step == 10);
  CHECK(m[0].value == 1.5);
  CHECK(std::isnan(m[1].value));
  CHECK(m[2].name == "lr");
  CHECK(sql_value(tmp / "db.sqlite", "SELECT value IS NULL FROM metrics WHERE step=20") == "1");

  // Foreign keys are on: results for an unknown run are refused.
  CHECK_THROWS_AS(store.put_metric("no-such-run", 1, 0, "loss", 1), StoreError);
  // A failing transaction leaves nothing behind.
  CHECK_THROWS(store.transaction("test", [&] {
    store.put_metric(id, 30, 1.5, "loss", 3.0);
    throw std::runtime_error("boom");
  }));
  CHECK(store.metrics(id).size() == 3);
}

TEST_CASE("store: clear_results forgets a rerun's old results, only under its claim", "[store]") {
  TempDir tmp("store");
  Store store(tmp / "db.sqlite");
  Experiment e = test::experiment_of("e", {0});
  store.upsert_planned(e.name, e.runs);
  const std::string id = e.runs[0].id;
  REQUIRE(store.claim_run(id, {"queued"}, me()) == 1);
  store.put_metric(id, 1, 0, "loss", 1);
  store.put_eval(id, {"knn", "eurosat", 1.0, "top1", 0.9});
  store.put_env(id, "torch", "2.11");
  store.put_artifact(id, {"ckpt", "ckpt/last.pt", "abc"});
  store.set_progress(id, 1, 6);
  store.set_journal_offset(id, "j", {100, 5});
  REQUIRE(store.finish(id, 1, "done", ""));
  CHECK_FALSE(store.clear_results(id, 1));  // not running: nobody holds it
  CHECK(store.metrics(id).size() == 1);
  REQUIRE(store.claim_run(id, {"done"}, me()) == 2);
  CHECK_FALSE(store.clear_results(id, 1));  // a stale attempt
  CHECK(store.clear_results(id, 2));
  RunRow r = *store.run(id);
  CHECK(r.status == "running");
  CHECK(r.attempts == 2);  // attempts count every launch, across reruns
  CHECK_FALSE(r.last_step.has_value());
  CHECK(store.metrics(id).empty());
  CHECK(store.evals(id).empty());
  CHECK(store.env(id).empty());
  CHECK(store.artifacts(id).empty());
  CHECK(store.journal_offset(id).offset == 0);
}

TEST_CASE("store: stale running runs become lost, live ones stay", "[store]") {
  TempDir tmp("store");
  const auto db = tmp / "db.sqlite";
  Store store(db);
  Experiment e = test::experiment_of("e", {0, 1, 2, 3});
  store.upsert_planned(e.name, e.runs);
  std::vector<std::string> ids;
  for (const PlannedRun& r : e.runs) ids.push_back(r.id);

  // A runner process that has exited (and been reaped): its pid is dead.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  ClaimInfo gone = me();
  gone.runner_pid = dead;
  gone.runner_start = 1;

  REQUIRE(store.claim_run(ids[0], {"queued"}, me()));    // this live process: stays running
  REQUIRE(store.claim_run(ids[1], {"queued"}, gone));    // dead runner on this host: lost
  ClaimInfo remote = me();
  remote.host = "some-other-host";
  REQUIRE(store.claim_run(ids[2], {"queued"}, remote));  // other host, old heartbeat: lost
  REQUIRE(store.claim_run(ids[3], {"queued"}, remote));  // other host, fresh heartbeat: stays
  sql_exec(db, fmt::format("UPDATE runs SET heartbeat_at = heartbeat_at - 3600 WHERE id IN ('{}', '{}')",
                           ids[0], ids[2]));  // ids[0]: live local runner, merely slow

  std::vector<LostRun> lost = store.mark_lost_stale(60);
  std::set<std::string> lost_ids;
  for (const LostRun& l : lost) lost_ids.insert(l.id);
  CHECK(lost_ids == std::set<std::string>{ids[1], ids[2]});
  CHECK(store.run(ids[0])->status == "running");
  CHECK(store.run(ids[1])->status == "lost");
  CHECK(store.run(ids[1])->exit_reason.find("is gone") != std::string::npos);
  CHECK(store.run(ids[2])->status == "lost");
  CHECK(store.run(ids[2])->exit_reason.find("no heartbeat") != std::string::npos);
  CHECK(store.run(ids[3])->status == "running");
  CHECK(store.claim_run(ids[1], {"queued", "lost"}, me()) == 2);  // lost runs are runnable
}

TEST_CASE("store: 8 processes writing at once lose nothing and never see 'locked'", "[store]") {
  TempDir tmp("store");
  const auto db = tmp / "db.sqlite";
  constexpr int kWriters = 8, kSteps = 150;
  Experiment e = test::experiment_of("e", {0, 1, 2, 3, 4, 5, 6, 7});
  { Store(db).upsert_planned(e.name, e.runs); }

  std::vector<pid_t> kids;
  for (int w = 0; w < kWriters; ++w) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 0;
      try {
        Store store(db);  // each process its own connection, opened after fork
        const std::string& id = e.runs[w].id;
        std::optional<int> attempt = store.claim_run(id, {"queued"}, me());
        if (!attempt) ::_exit(2);
        for (int s = 1; s <= kSteps; ++s) {
          store.transaction("writer step", [&] {
            store.put_metric(id, s, s, "loss", 1.0 / s);
            store.put_metric(id, s, s, "shared_probe", w);
            store.set_progress(id, s, kSteps);
          });
          store.heartbeat({{id, *attempt}});
          if (s % 50 == 0) store.runs();  // readers interleave with writers
        }
        if (!store.finish(id, *attempt, "done", "")) rc = 3;
      } catch (const std::exception& ex) {
        std::fprintf(stderr, "writer %d: %s\n", w, ex.what());
        rc = 1;
      }
      ::_exit(rc);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  Store store(db);
  CHECK(sql_value(db, "SELECT count(*) FROM metrics") == std::to_string(kWriters * kSteps * 2));
  CHECK(sql_value(db, "SELECT count(*) FROM runs WHERE status='done' AND attempts=1 AND "
                      "last_step=" + std::to_string(kSteps)) == std::to_string(kWriters));
  CHECK(sql_value(db, "PRAGMA integrity_check") == "ok");
  for (int w = 0; w < kWriters; ++w) {
    std::vector<MetricRow> m = store.metrics(e.runs[w].id);
    REQUIRE(m.size() == 2 * kSteps);
    CHECK(m[kSteps - 1].step == kSteps);
    CHECK(m[kSteps - 1].value == 1.0 / kSteps);  // doubles round-trip exactly
    CHECK(m[kSteps].value == w);  // the probe series carries the writer's own number
  }
}
