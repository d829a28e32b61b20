// Reports on databases written before evaluations became records (schema version 1, run ids that
// hashed the eval section): the committed quickstart database, read-only as committed and after
// its migration, gives every run planned today the same numbers. And which of a run's evaluations
// a report reads: those its experiment plans now.
#include "reports/results_db.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "harness/eval_task.h"
#include "harness/experiment.h"
#include "harness/store.h"
#include "reports/metric_source.h"
#include "reports/report.h"
#include "tests/support/catch.h"
#include "tests/support/temp_dir.h"

using namespace ablate;

namespace {
RunRecord record(const std::string& id) {
  RunRecord r;
  r.id = id;
  return r;
}
}  // namespace

TEST_CASE("schema 1 databases: planned run ids find their runs, before and after migration", "[reports][results_db]") {
  const std::filesystem::path src(ABLATE_TEST_SOURCE_DIR);
  // The smoke profile as it was when that database was written (24 epochs, KNN on 4,000 / 1,000
  // images); the file has moved on since, and its runs with it.
  const Experiment ex = load_experiment((src / "experiments" / "quickstart.yaml").string(), "smoke",
                                        {"train.epochs=24", "eval.max_train=4000", "eval.max_val=1000"});
  const MetricSource knn = MetricSource::parse("eval:knn:eurosat:1.0:top1", "test");
  const MetricSource loss = MetricSource::parse("metric:loss:last", "test");
  // The quickstart database as committed before evaluations became records (schema 1).
  const std::string committed = (src / "tests" / "data" / "quickstart_schema1.sqlite").string();

  std::vector<double> before;
  {
    const ResultsDb db(committed);
    for (const PlannedRun& r : ex.runs) {
      if (r.seed != 0 && !r.config.eval.random_init) continue;  // pre-trained seeds 1-3 were never run there
      const std::optional<double> v = db.value(record(r.id), knn);
      REQUIRE(v.has_value());
      before.push_back(*v);
      RunRecord planned = record(r.id);  // schema 1 results have no task ids: a plan selects none away
      for (const EvalTask& t : eval_tasks_of(r)) planned.eval_ids.push_back(t.id);
      CHECK(db.value(planned, knn) == v);
      if (!r.config.eval.random_init) CHECK(db.value(record(r.id), loss).has_value());
    }
    std::vector<std::string> ids;
    for (const RunRecord& r : db.runs("quickstart")) ids.push_back(r.id);
    for (const PlannedRun& r : ex.runs)
      if (r.seed == 0 || r.config.eval.random_init) CHECK(std::find(ids.begin(), ids.end(), r.id) != ids.end());
  }
  CHECK(before[0] != before[1]);  // pre-trained vs random encoder: two distinct runs

  test::TempDir tmp("results_db");
  const std::filesystem::path copy = tmp / "db.sqlite";
  std::filesystem::copy_file(committed, copy);
  { Store migrate(copy, Store::Mode::existing); }
  const ResultsDb db(copy.string());
  size_t k = 0;
  for (const PlannedRun& r : ex.runs)
    if (r.seed == 0 || r.config.eval.random_init) CHECK(db.value(record(r.id), knn) == before[k++]);
}

// A run evaluated twice at one address (KNN on EuroSAT at scale 1: once on capped sets, again on
// the full ones) is reported with the evaluation its experiment plans now, whichever was recorded
// first; without a plan every result is listed.
TEST_CASE("reports read the planned evaluation of a run evaluated again with other settings", "[reports][results_db]") {
  test::TempDir tmp("results_db_evals");
  const std::filesystem::path path = tmp / "db.sqlite";
  PlannedRun run;
  run.id = "r1";
  run.config.eval.max_train = 4000;
  run.config.eval.max_val = 1000;
  EvalConfig full = run.config.eval;
  full.max_train = full.max_val = 0;
  run.evals = {run.config.eval, full};
  const std::vector<EvalTask> tasks = eval_tasks_of(run);
  REQUIRE(tasks.size() == 2);
  REQUIRE(tasks[0].point() == tasks[1].point());
  {
    Store store(path);
    store.upsert_planned("e", {run});
    store.upsert_eval_tasks(tasks);
    store.put_eval_metric(tasks[0].id, "top1", 0.61);  // capped
    store.put_eval_metric(tasks[1].id, "top1", 0.66);  // full
  }
  const ResultsDb db(path.string());
  const MetricSource knn = MetricSource::parse("eval:knn:eurosat:1.0:top1", "test");
  RunRecord rec = record("r1");
  CHECK(db.evals(rec).size() == 2);
  rec.eval_ids = {tasks[1].id};
  REQUIRE(db.evals(rec).size() == 1);
  CHECK(db.evals(rec)[0].task_id == tasks[1].id);
  CHECK(db.value(rec, knn) == 0.66);
  rec.eval_ids = {tasks[0].id};
  CHECK(db.value(rec, knn) == 0.61);
  rec.eval_ids = {"000000000000"};  // planned, not evaluated yet
  CHECK_FALSE(db.value(rec, knn).has_value());
}

TEST_CASE("planned report runs carry the evaluation tasks of their runs", "[reports][results_db]") {
  const std::filesystem::path src(ABLATE_TEST_SOURCE_DIR);
  const Experiment ex = load_experiment((src / "experiments" / "quickstart.yaml").string(), "smoke", {});
  const std::vector<ReportRun> planned = planned_report_runs(ex);
  REQUIRE(planned.size() == ex.runs.size());
  for (size_t i = 0; i < planned.size(); ++i) {
    CHECK(planned[i].id == ex.runs[i].id);
    std::vector<std::string> ids;
    for (const EvalTask& t : eval_tasks_of(ex.runs[i])) ids.push_back(t.id);
    CHECK(planned[i].eval_ids == ids);
    CHECK_FALSE(ids.empty());
  }
}
