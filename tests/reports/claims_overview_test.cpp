// The one-page claims overview: each claim's latest verdict across databases and scales (the
// (scale, database) pair whose runs finished last), with n per side, scale, device and database;
// a claim that no database ran is "not run", never given a verdict.
#include "reports/claims_overview.h"

#include "tests/reports/results_fixture.h"

using namespace ablate;
using nlohmann::json;

namespace {

// Runs <prefix><method>_<seed> of "exp": KNN 0.80 + gap for selectivemae, 0.80 for mae, ±0.01 by seed.
void fill(test::ResultsFixture& f, const std::string& prefix, double gap, double finished_at, const std::string& device) {
  for (const char* m : {"mae", "selectivemae"})
    for (int s = 0; s < 3; ++s) {
      const std::string id = prefix + m + "_" + std::to_string(s);
      f.run(id, "exp", {{"method.name", m}, {"seed", s}});
      f.eval(id, "knn", "eurosat", 1.0, "top1", 0.80 + (m[0] == 's' ? gap : 0.0) + 0.01 * (s - 1));
      f.finished_at(id, finished_at + s);
      f.env(id, "device", device == "cpu" ? "cpu" : "cuda:0");
      if (device != "cpu") f.env(id, "gpu", device);
      else f.env(id, "cpu", "Test CPU x2");
    }
}

ClaimsPlan plan(const std::string& scale, const std::string& prefix) {
  ClaimsPlan p;
  p.file = "experiments/exp.yaml";
  p.experiment = "exp";
  p.scale = scale;
  p.claims = json::parse(R"J([
    {"id": "sel_beats_mae", "text": "SelectiveMAE beats MAE", "metric": "eval:knn:eurosat:1.0:top1",
     "a": {"method.name": "selectivemae"}, "b": {"method.name": "mae"}, "paper": "+1.2"},
    {"id": "never_run", "metric": "eval:knn:eurosat:1.0:top1",
     "a": {"method.name": "crossmae"}, "b": {"method.name": "mae"}}])J");
  for (const char* m : {"mae", "selectivemae", "crossmae"})
    for (int s = 0; s < 3; ++s)
      p.runs.push_back({prefix + m + "_" + std::to_string(s), {{"method.name", m}, {"seed", s}}});
  return p;
}

}  // namespace

TEST_CASE("claims overview: the latest run scale and database win, unrun claims say so", "[reports][claims]") {
  test::ResultsFixture smoke("overview_smoke"), gpu("overview_gpu");
  fill(smoke, "s_", -0.05, 1000, "cpu");            // smoke on a CPU, earlier: SelectiveMAE worse
  fill(gpu, "m_", 0.05, 2000, "NVIDIA H200");       // small on a GPU, later: SelectiveMAE better
  const std::vector<ClaimsPlan> plans = {plan("smoke", "s_"), plan("small", "m_")};

  std::vector<ClaimsOverviewRow> rows = claims_overview(plans, {smoke.path(), gpu.path()});
  REQUIRE(rows.size() == 2);
  const ClaimsOverviewRow& sel = rows[0];
  CHECK(sel.result.spec.id == "sel_beats_mae");
  CHECK(sel.scale == "small");
  CHECK(sel.db == gpu.path());
  CHECK(sel.result.stats.verdict == Verdict::reproduced);
  CHECK(sel.result.stats.n_a == 3);
  CHECK(sel.result.devices == std::vector<std::string>{"NVIDIA H200"});
  CHECK(sel.runs_done == 6);
  CHECK(sel.runs_planned == 9);  // crossmae is planned, never run
  CHECK(*sel.finished_at == 2002);
  CHECK(rows[1].result.spec.id == "never_run");
  CHECK_FALSE(rows[1].result.ran);

  // Only the smoke database: the smoke verdict (contradicted), named as such.
  rows = claims_overview(plans, {smoke.path()});
  CHECK(rows[0].scale == "smoke");
  CHECK(rows[0].result.stats.verdict == Verdict::contradicted);
  CHECK(rows[0].result.devices == std::vector<std::string>{"CPU Test CPU x2"});

  const std::string md = render_claims_overview(claims_overview(plans, {smoke.path(), gpu.path()}), "md", "ablate claims");
  CHECK(md.find("| `experiments/exp.yaml` | sel_beats_mae |") != std::string::npos);
  CHECK(md.find("**reproduced (small scale)**") != std::string::npos);
  CHECK(md.find("**not run**") != std::string::npos);
  CHECK(md.find("| +1.2 |") != std::string::npos);
  CHECK(md.find("| 3 vs 3 |") != std::string::npos);
  CHECK(md.find("`" + gpu.path() + "` · 6/9 done") != std::string::npos);
  CHECK(md.find("2 claims: 1 reproduced, 0 contradicted, 0 inconclusive, 1 not run") != std::string::npos);
  const json j = json::parse(render_claims_overview(rows, "json", "ablate claims"));
  CHECK(j[0]["verdict"] == "contradicted");
  CHECK(j[0]["scale"] == "smoke");
  CHECK(j[1]["verdict"] == "not run");
  CHECK(j[1]["p"].is_null());
}
