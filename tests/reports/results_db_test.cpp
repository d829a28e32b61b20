// Reports on databases written before evaluations became records (schema version 1, run ids that
// hashed the eval section): the committed quickstart database, read-only as committed and after
// its migration, gives every run planned today the same numbers.
#include "reports/results_db.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "harness/experiment.h"
#include "harness/store.h"
#include "reports/metric_source.h"
#include "tests/support/catch.h"
#include "tests/support/temp_dir.h"

using namespace ablate;

TEST_CASE("schema 1 databases: planned run ids find their runs, before and after migration", "[reports][results_db]") {
  const std::filesystem::path src(ABLATE_TEST_SOURCE_DIR);
  const Experiment ex = load_experiment((src / "experiments" / "quickstart.yaml").string(), "smoke", {});
  const MetricSource knn = MetricSource::parse("eval:knn:eurosat:1.0:top1", "test");
  const MetricSource loss = MetricSource::parse("metric:loss:last", "test");
  // The quickstart database as committed before evaluations became records (schema 1).
  const std::string committed = (src / "tests" / "data" / "quickstart_schema1.sqlite").string();

  std::vector<double> before;
  {
    const ResultsDb db(committed);
    for (const PlannedRun& r : ex.runs) {
      if (r.seed != 0 && !r.config.eval.random_init) continue;  // pre-trained seeds 1-3 were never run there
      const std::optional<double> v = db.value(r.id, knn);
      REQUIRE(v.has_value());
      before.push_back(*v);
      if (!r.config.eval.random_init) CHECK(db.value(r.id, loss).has_value());
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
    if (r.seed == 0 || r.config.eval.random_init) CHECK(db.value(r.id, knn) == before[k++]);
}
