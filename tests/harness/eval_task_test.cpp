// Evaluations as records of their own: run ids ignore the eval section (but not random_init),
// `evals:` lists expand into per-protocol tasks whose ids hash only what each protocol reads, the
// eval lifecycle in the store, and the version 1 -> 2 migration of a committed database (new run
// ids from the stored configs, old eval rows turned into done eval records, old ids mapped).
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/eval_task.h"
#include "harness/experiment.h"
#include "harness/store.h"
#include "tests/harness/run_fixtures.h"
#include "tests/support/catch.h"

using namespace ablate;
using ablate::test::TempDir;

namespace {

const char* kExperiment = R"(
name: two_evals
description: "one pre-training, evaluations on two datasets"
base:
  eval: {max_train: 100, max_val: 50}
evals:
  - {protocol: knn, dataset: eurosat, scales: [0.5, 1.0]}
  - {protocol: knn, dataset: ucmerced}
)";

using EvalKey = std::tuple<std::string, std::string, double, std::string, double>;

// Every evals row of a version 1 database (plain sqlite3), per run id.
std::map<std::string, std::set<EvalKey>> v1_evals(const std::filesystem::path& db) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, "SELECT run_id, protocol, dataset, scale, metric, value FROM evals", -1, &st,
                             nullptr) == SQLITE_OK);
  std::map<std::string, std::set<EvalKey>> out;
  auto text = [&](int c) { return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, c))); };
  while (sqlite3_step(st) == SQLITE_ROW)
    out[text(0)].insert({text(1), text(2), sqlite3_column_double(st, 3), text(4), sqlite3_column_double(st, 5)});
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

}  // namespace

TEST_CASE("run ids leave evaluation settings out, except random_init", "[eval_task]") {
  RunConfig a;
  RunConfig b = a;
  b.eval.dataset = "aid";
  b.eval.protocols = {Protocol::knn, Protocol::finetune};
  b.eval.knn_k = 5;
  CHECK(config_hash(a) == config_hash(b));
  b.eval.random_init = true;  // no pre-training at all: another run
  CHECK(config_hash(a) != config_hash(b));
  b.eval.random_init = false;
  b.train.epochs = 2;
  CHECK(config_hash(a) != config_hash(b));
}

TEST_CASE("eval tasks: one per protocol and point, keyed by what the protocol reads", "[eval_task]") {
  const WeightsSource w{"run", "0123456789ab", ""};
  EvalConfig e;
  e.protocols = {Protocol::knn, Protocol::linprobe, Protocol::finetune};
  e.scales = {0.5, 1.0};
  e.ft_train_ratio = 0.2;
  const std::vector<EvalTask> tasks = expand_eval_tasks(w, {e, e});  // the repeat adds nothing
  REQUIRE(tasks.size() == 4);
  CHECK(tasks[0].protocol == Protocol::knn);
  CHECK(tasks[0].point() == 0.5);
  CHECK(tasks[1].point() == 1.0);
  CHECK(tasks[2].protocol == Protocol::linprobe);
  CHECK(tasks[3].protocol == Protocol::finetune);
  CHECK(tasks[3].point() == 0.2);  // a fine-tune ratio is addressable: eval:finetune:<ds>:0.2:top1
  std::set<std::string> ids;
  for (const EvalTask& t : tasks) {
    CHECK(t.id.size() == 12);
    CHECK(t.config.protocols == std::vector<Protocol>{t.protocol});
    ids.insert(t.id);
  }
  CHECK(ids.size() == 4);

  EvalConfig other = e;
  other.probe_lr = 0.5;  // read by linprobe only
  const std::vector<EvalTask> again = expand_eval_tasks(w, {other});
  CHECK(again[0].id == tasks[0].id);
  CHECK(again[2].id != tasks[2].id);
  CHECK(again[3].id == tasks[3].id);
  CHECK(expand_eval_tasks(WeightsSource{"run", "ba9876543210", ""}, {e})[0].id != tasks[0].id);
  CHECK(expand_eval_tasks(WeightsSource{"file", std::string(64, 'a'), "x.pth"}, {e})[0].id != tasks[0].id);
}

TEST_CASE("evals: lists evaluations of every run without changing run ids", "[eval_task]") {
  const Experiment ex = parse_experiment(kExperiment, "two.yaml", "", {});
  REQUIRE(ex.runs.size() == 1);
  REQUIRE(ex.runs[0].evals.size() == 2);
  CHECK(ex.runs[0].evals[1].dataset == "ucmerced");
  CHECK(ex.runs[0].evals[1].max_train == 100);  // the eval section gives the entries' defaults
  const std::vector<EvalTask> tasks = eval_tasks_of(ex.runs[0]);
  REQUIRE(tasks.size() == 3);
  CHECK(tasks[2].dataset == "ucmerced");

  // A third evaluation, or an eval override on the command line, plans the same run.
  const std::string three = std::string(kExperiment) + "  - {protocol: finetune, dataset: ucmerced, train_ratio: 0.5}\n";
  const Experiment ex3 = parse_experiment(three, "three.yaml", "", {});
  REQUIRE(ex3.runs.size() == 1);
  CHECK(ex3.runs[0].id == ex.runs[0].id);
  const std::vector<EvalTask> tasks3 = eval_tasks_of(ex3.runs[0]);
  REQUIRE(tasks3.size() == 4);
  for (size_t i = 0; i < 3; ++i) CHECK(tasks3[i].id == tasks[i].id);
  CHECK(tasks3[3].point() == 0.5);
  CHECK(parse_experiment(kExperiment, "two.yaml", "", {"eval.dataset=aid"}).runs[0].id == ex.runs[0].id);

  CHECK_THROWS_AS(parse_experiment(std::string(kExperiment) + "  - {protocol: knn, random_init: true}\n", "x.yaml", "", {}),
                  ConfigError);
  CHECK_THROWS_AS(parse_experiment(std::string(kExperiment) + "  - {protocol: svm}\n", "x.yaml", "", {}), ConfigError);
}

TEST_CASE("eval records: claim, journal results, finish; results addressed through the evals view", "[eval_task]") {
  TempDir tmp("eval_task");
  Store store(tmp / "db.sqlite");
  PlannedRun run = test::planned_run(3);
  run.evals = {run.config.eval};
  store.upsert_planned("e", {run});
  const std::vector<EvalTask> tasks = eval_tasks_of(run);
  REQUIRE(tasks.size() == 1);
  store.upsert_eval_tasks(tasks);
  store.upsert_eval_tasks(tasks);  // idempotent
  CHECK(store.eval_task(tasks[0].id)->status == "queued");
  ClaimInfo who;
  who.run_dir = (tmp / "evals" / tasks[0].id).string();
  const std::optional<int> attempt = store.claim_eval(tasks[0].id, {"queued", "lost"}, who);
  REQUIRE(attempt == 1);
  CHECK_FALSE(store.claim_eval(tasks[0].id, {"queued", "lost"}, who));  // taken
  store.put_eval_metric(tasks[0].id, "top1", 0.625);
  CHECK(store.finish_eval(tasks[0].id, 1, "done", ""));
  CHECK_FALSE(store.finish_eval(tasks[0].id, 1, "failed", "late"));  // fenced by status
  const std::vector<EvalRow> evals = store.evals(run.id);
  REQUIRE(evals.size() == 1);
  CHECK(evals[0].protocol == "knn");
  CHECK(evals[0].dataset == run.config.eval.dataset);
  CHECK(evals[0].value == 0.625);
  // Re-training a run (--rerun all clears its results once claimed) drops the evaluations of its old weights.
  const std::optional<int> run_attempt = store.claim_run(run.id, {"queued"}, who);
  REQUIRE(run_attempt == 1);
  REQUIRE(store.clear_results(run.id, *run_attempt));
  CHECK_FALSE(store.eval_task(tasks[0].id).has_value());
  CHECK(store.evals(run.id).empty());
}

TEST_CASE("schema 1 databases migrate: new run ids, eval rows become records", "[eval_task]") {
  TempDir tmp("eval_task");
  const std::filesystem::path committed =
      std::filesystem::path(ABLATE_TEST_SOURCE_DIR) / "tests" / "data" / "quickstart_schema1.sqlite";
  REQUIRE(std::filesystem::exists(committed));
  const std::filesystem::path db = tmp / "old.sqlite";
  std::filesystem::copy_file(committed, db);
  const std::map<std::string, std::set<EvalKey>> before = v1_evals(db);
  REQUIRE_FALSE(before.empty());

  Store store(db, Store::Mode::existing);
  CHECK(store.schema_version() == 2);
  std::set<std::string> new_ids;
  for (const RunRow& r : store.runs()) {
    CHECK(r.id == config_hash(config_from_json(nlohmann::json::parse(r.config_json))));
    new_ids.insert(r.id);
  }
  for (const auto& [old_id, rows] : before) {
    const std::optional<std::string> now = store.migrated_id(old_id);
    const std::string id = now ? *now : old_id;
    REQUIRE(new_ids.count(id) == 1);
    std::set<EvalKey> after;
    for (const EvalRow& e : store.evals(id)) after.insert({e.protocol, e.dataset, e.scale, e.metric, e.value});
    CHECK(after == rows);
    for (const EvalTaskRow& t : store.eval_tasks_of(id)) CHECK(t.status == "done");
  }
}
