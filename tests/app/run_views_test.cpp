// The app's views of recorded runs (app/run_views.h): status counts with unregistered runs as
// queued, `show` by id prefix and by an id recorded before schema version 2, and the CSV / JSON
// export, checked against what was written into a fresh store.
#include <sqlite3.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "app/run_views.h"
#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/store.h"
#include "tests/harness/run_fixtures.h"
#include "tests/support/catch.h"

using namespace ablate;
using ablate::test::TempDir;

namespace {

// Who claims runs here: nobody checks it (no lost-run detection in these tests).
const ClaimInfo kNobody{};

// (id, config_json) of every run of a database, read with plain sqlite3 before Store migrates it.
std::vector<std::pair<std::string, std::string>> stored_runs(const std::filesystem::path& db) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, "SELECT id, config_json FROM runs", -1, &st, nullptr) == SQLITE_OK);
  std::vector<std::pair<std::string, std::string>> out;
  auto text = [&](int c) { return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, c))); };
  while (sqlite3_step(st) == SQLITE_ROW) out.emplace_back(text(0), text(1));
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

}  // namespace

TEST_CASE("run views: status_json counts the experiment's runs, unregistered ones as queued", "[run_views]") {
  TempDir tmp("run_views");
  Store store(tmp / "db.sqlite");
  Experiment e = test::experiment_of("e", {0, 1, 2, 3, 4});
  Experiment other = test::experiment_of("other", {9});
  std::vector<PlannedRun> registered(e.runs.begin(), e.runs.begin() + 4);
  store.upsert_planned(e.name, registered);
  store.upsert_planned(other.name, other.runs);
  REQUIRE(store.claim_run(e.runs[0].id, {"queued"}, kNobody) == 1);
  REQUIRE(store.finish(e.runs[0].id, 1, "done", ""));
  REQUIRE(store.claim_run(e.runs[1].id, {"queued"}, kNobody) == 1);
  REQUIRE(store.finish(e.runs[1].id, 1, "diverged", ""));
  REQUIRE(store.claim_run(e.runs[2].id, {"queued"}, kNobody) == 1);
  nlohmann::json j = status_json(store, e);
  CHECK(j == nlohmann::json{{"planned", 5}, {"done", 1}, {"failed", 0}, {"diverged", 1},
                            {"running", 1}, {"queued", 2}, {"lost", 0}});
}

TEST_CASE("run views: show_run finds a run by unique prefix and summarises it", "[run_views]") {
  TempDir tmp("run_views");
  Store store(tmp / "db.sqlite");
  Experiment e = test::experiment_of("e", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  store.upsert_planned(e.name, e.runs);
  const std::string id = e.runs[0].id;
  for (int s = 1; s <= 4; ++s) store.put_metric(id, s, s / 4.0, "loss", 5.0 - s);
  store.put_eval(id, {"knn", "eurosat", 0.5, "top1", 0.8125});
  std::string text = show_run(store, id.substr(0, 6));
  CHECK(text.find("run " + id) != std::string::npos);
  CHECK(text.find("[queued]") != std::string::npos);
  CHECK(text.find("4 points  steps 1..4  last 1  min 1") != std::string::npos);
  CHECK(text.find("0.8125") != std::string::npos);
  CHECK_THROWS_AS(show_run(store, "zzzz-not-an-id"), StoreError);
  // Ten 12-hex ids: the empty prefix matches them all.
  CHECK_THROWS_AS(show_run(store, ""), StoreError);
}

TEST_CASE("run views: export writes every run as csv rows and json objects", "[run_views]") {
  TempDir tmp("run_views");
  Store store(tmp / "db.sqlite");
  Experiment e = test::experiment_of("e", {0, 1});
  store.upsert_planned(e.name, e.runs);
  const std::string id = e.runs[1].id;
  store.put_metric(id, 1, 0.5, "loss", 2.0);
  store.put_metric(id, 2, 1.0, "loss", 1.25);
  store.put_eval(id, {"knn", "eurosat", 1.0, "top1", 0.75});
  store.put_env(id, "note", "has, comma and \"quotes\"");
  store.set_progress(id, 2, 2);
  const std::string failed = e.runs[0].id;
  REQUIRE(store.claim_run(failed, {"queued"}, kNobody) == 1);
  REQUIRE(store.finish(failed, 1, "failed", "exit code 3: \"boom\", at step 2"));

  std::ostringstream csv;
  export_db(store, "csv", csv);
  std::vector<std::string> lines;
  std::istringstream in(csv.str());
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  REQUIRE(lines.size() == 3);  // header + 2 runs
  CHECK(lines[0].find("axis.seed") != std::string::npos);
  CHECK(lines[0].find("eval.knn.eurosat.1.top1") != std::string::npos);
  CHECK(lines[0].find("metric.loss") != std::string::npos);
  const std::string& row = lines[1].rfind(id, 0) == 0 ? lines[1] : lines[2];
  CHECK(row.find(",0.75,") != std::string::npos);
  CHECK(row.substr(row.size() - 5) == ",1.25");  // last loss value, last column
  // RFC 4180: a field with a comma or quote is quoted, its quotes doubled.
  const std::string& failed_row = lines[1].rfind(failed, 0) == 0 ? lines[1] : lines[2];
  CHECK(failed_row.find(",\"exit code 3: \"\"boom\"\", at step 2\",") != std::string::npos);

  std::ostringstream js;
  export_db(store, "json", js);
  nlohmann::json doc = nlohmann::json::parse(js.str());
  REQUIRE(doc["runs"].size() == 2);
  for (const auto& r : doc["runs"]) {
    if (r["id"] != id) continue;
    CHECK(r["metrics"]["loss"]["step"] == nlohmann::json{1, 2});
    CHECK(r["metrics"]["loss"]["value"] == nlohmann::json{2.0, 1.25});
    CHECK(r["evals"][0]["value"] == 0.75);
    CHECK(r["env"]["note"] == "has, comma and \"quotes\"");
    CHECK(r["config"]["seed"] == 1);
  }
  std::ostringstream bad;
  CHECK_THROWS_AS(export_db(store, "xml", bad), ConfigError);
}

TEST_CASE("run views: show_run resolves ids recorded before schema version 2", "[run_views]") {
  TempDir tmp("run_views");
  const std::filesystem::path db = tmp / "old.sqlite";
  std::filesystem::copy_file(
      std::filesystem::path(ABLATE_TEST_SOURCE_DIR) / "tests" / "data" / "quickstart_schema1.sqlite", db);
  const auto before = stored_runs(db);
  REQUIRE_FALSE(before.empty());
  Store store(db, Store::Mode::existing);
  for (const auto& [old_id, config_json] : before) {
    // Schema 2 ids are the hashes of the stored configs (results/README.md).
    const std::string now = config_hash(config_from_json(nlohmann::json::parse(config_json)));
    CHECK(show_run(store, old_id).rfind("run " + now + "  [", 0) == 0);
  }
}
