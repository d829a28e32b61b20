// `ablate compare` on hand-made databases: identical databases pass, an injected 10% throughput
// drop over three seeds is a significant regression (non-zero exit), one-seed cells fall back to
// the tolerance alone, noisy drops are borderline, and accuracy uses absolute points.
#include "reports/compare.h"

#include <sstream>

#include "tests/reports/results_fixture.h"

using namespace ablate;
using ablate::test::Near;
using nlohmann::json;

namespace {

// Two cells (mask ratio 0.75 and 0.9) x `seeds` seeds. Throughput per step is
// base * factor * (1 + noise_s); KNN top-1 is acc + 0.002 s + acc_shift.
struct Fill {
  int seeds = 3;
  double throughput_factor = 1.0;
  double noise = 0.01;
  double acc_shift = 0.0;
};

void fill(test::ResultsFixture& f, const Fill& p) {
  for (double ratio : {0.75, 0.9})
    for (int s = 0; s < p.seeds; ++s) {
      const std::string id = "r" + std::to_string(static_cast<int>(ratio * 100)) + "s" + std::to_string(s);
      f.run(id, "mask", {{"method.mask_ratio", ratio}, {"seed", s}}, "done", "", std::nullopt,
            {{"train", {{"epochs", 10}}}});
      const double seed_noise = p.noise * (s - (p.seeds - 1) / 2.0);
      for (int step = 0; step < 5; ++step)
        f.metric(id, step * 10, "images_per_s", 1000 * ratio * p.throughput_factor * (1 + seed_noise));
      f.metric(id, 40, "peak_mem_mb", 5000);
      f.eval(id, "knn", "eurosat", 1.0, "top1", 0.8 + 0.002 * s + p.acc_shift);
    }
}

CompareResult compare_fixtures(const test::ResultsFixture& a, const test::ResultsFixture& b,
                               const json& tracked = nullptr) {
  CompareRequest req;
  req.db = a.path();
  req.against = b.path();
  req.experiment = "mask";
  req.tracked = tracked;
  return compare_databases(req);
}

const CellComparison& find(const CompareResult& r, const std::string& source, double ratio) {
  for (const CellComparison& c : r.cells)
    if (c.metric.source.text == source && c.cell["method.mask_ratio"] == ratio) return c;
  FAIL("no comparison of " << source << " at " << ratio);
  throw;  // unreachable: FAIL throws
}

}  // namespace

TEST_CASE("identical databases compare clean", "[reports][compare]") {
  test::ResultsFixture a("cmp_a"), b("cmp_b");
  fill(a, {});
  fill(b, {});
  CompareRequest req;
  req.db = a.path();
  req.against = b.path();
  std::ostringstream out;
  CHECK(compare_main(req, out) == 0);
  CHECK(out.str().find("0 regression(s)") != std::string::npos);
  const CompareResult r = compare_fixtures(a, b);
  // 2 cells x (throughput, peak memory, knn top-1).
  REQUIRE(r.cells.size() == 6);
  for (const CellComparison& c : r.cells) {
    CHECK(c.status == "ok");
    CHECK(c.change == Near(0).margin(1e-9));
    CHECK_FALSE(c.borderline);
  }
  CHECK(r.notes.empty());
}

TEST_CASE("an injected 10% throughput drop is a significant regression", "[reports][compare]") {
  test::ResultsFixture a("cmp_drop"), b("cmp_base");
  fill(a, {.throughput_factor = 0.9});
  fill(b, {});
  CompareRequest req;
  req.db = a.path();
  req.against = b.path();
  std::ostringstream out;
  CHECK(compare_main(req, out) != 0);
  CHECK(out.str().find("2 regression(s)") != std::string::npos);
  const CompareResult r = compare_fixtures(a, b);
  CHECK(r.regressions() == 2);
  const CellComparison& c = find(r, "metric:images_per_s:median", 0.75);
  CHECK(c.status == "regression");
  CHECK(c.tested);
  CHECK(c.p_worse < 0.05);
  CHECK(c.rel_change == Near(-0.10));
  CHECK(c.change == Near(-75.0));           // 750 -> 675 images/s
  CHECK(c.tolerance == Near(0.05 * 750.0));  // default 5% of the baseline
  CHECK(find(r, "eval:knn:eurosat:1:top1", 0.75).status == "ok");
  // A 3% drop stays within the default tolerance.
  test::ResultsFixture small("cmp_small");
  fill(small, {.throughput_factor = 0.97});
  CHECK(compare_fixtures(small, b).regressions() == 0);
  // The tolerance is configurable: 2% turns the 3% drop into a regression.
  const json tight = {{"metrics", {{{"source", "metric:images_per_s:median"}, {"rel_tol", 0.02}}}}};
  CHECK(compare_fixtures(small, b, tight).regressions() == 2);
}

TEST_CASE("single seeds use the tolerance alone; noisy drops are borderline", "[reports][compare]") {
  SECTION("one seed") {
    test::ResultsFixture a("cmp_1a"), b("cmp_1b");
    fill(a, {.seeds = 1, .throughput_factor = 0.9});
    fill(b, {.seeds = 1});
    const CompareResult r = compare_fixtures(a, b);
    const CellComparison& c = find(r, "metric:images_per_s:median", 0.9);
    CHECK(c.status == "regression");
    CHECK_FALSE(c.tested);
    CHECK(c.note.find("tolerance only") != std::string::npos);
    CHECK(render_compare(r, "md").find("tolerance only") != std::string::npos);
  }
  SECTION("one seed near the threshold is borderline") {
    test::ResultsFixture a("cmp_1c"), b("cmp_1d");
    fill(a, {.seeds = 1, .throughput_factor = 0.955});
    fill(b, {.seeds = 1});
    const CellComparison& c = find(compare_fixtures(a, b), "metric:images_per_s:median", 0.9);
    CHECK(c.status == "ok");
    CHECK(c.borderline);
  }
  SECTION("a drop beyond tolerance hidden in seed noise") {
    test::ResultsFixture a("cmp_na"), b("cmp_nb");
    fill(a, {.throughput_factor = 0.9, .noise = 0.3});
    fill(b, {.noise = 0.3});
    const CompareResult r = compare_fixtures(a, b);
    const CellComparison& c = find(r, "metric:images_per_s:median", 0.75);
    CHECK(c.status == "borderline");
    CHECK(c.borderline);
    CHECK(c.p_worse >= 0.05);
    CHECK(r.regressions() == 0);
    const json j = json::parse(render_compare(r, "json"));
    CHECK(j["borderline"].size() == 2);
    CHECK(j["borderline"][0]["runs_new"].size() == 3);
  }
}

TEST_CASE("accuracy is compared in absolute points", "[reports][compare]") {
  test::ResultsFixture base("cmp_acc");
  fill(base, {});
  test::ResultsFixture drop("cmp_acc2"), slight("cmp_acc3");
  fill(drop, {.acc_shift = -0.02});     // -2.0 points, every seed
  fill(slight, {.acc_shift = -0.005});  // -0.5 points: inside the 1-point default
  const CompareResult r = compare_fixtures(drop, base);
  const CellComparison& c = find(r, "eval:knn:eurosat:1:top1", 0.75);
  CHECK(c.status == "regression");
  CHECK(c.change == Near(-2.0));
  CHECK(c.tolerance == Near(1.0));
  CHECK(compare_fixtures(slight, base).regressions() == 0);
}

TEST_CASE("unmatched cells, failed runs and differing configs are reported", "[reports][compare]") {
  test::ResultsFixture a("cmp_ua"), b("cmp_ub");
  fill(b, {});
  a.run("x0", "mask", {{"method.mask_ratio", 0.75}, {"seed", 0}}, "failed", "OOM");
  a.run("y0", "mask", {{"method.mask_ratio", 0.5}, {"seed", 0}});
  const CompareResult r = compare_fixtures(a, b);
  const CellComparison& c = find(r, "metric:images_per_s:median", 0.75);
  CHECK(c.status == "incomparable");
  CHECK(c.note.find("failed: OOM") != std::string::npos);
  bool only_base = false, is_new = false, differs = false;
  for (const std::string& n : r.notes) {
    only_base = only_base || n.find("method.mask_ratio=0.9 is only in the baseline") != std::string::npos;
    is_new = is_new || n.find("method.mask_ratio=0.5 is new") != std::string::npos;
    differs = differs || n.find("configs differ at /train") != std::string::npos;
  }
  CHECK(only_base);
  CHECK(is_new);
  CHECK(differs);
  CHECK(r.regressions() == 0);
}
