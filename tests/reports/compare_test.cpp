// `ablate compare` on hand-made databases: identical databases pass, an injected 10% throughput
// drop over three seeds is a significant regression (non-zero exit), one-seed cells fall back to
// the tolerance alone, noisy drops are borderline, and accuracy uses absolute points. Re-running
// borderline cells goes through a fake runner that adds runs to the hand-made new database: extra
// seeds without a real change clear the cell, extra seeds with one confirm the regression, only
// borderline cells get exactly N new seeds (repeating a done run), re-runs of a cell shared with
// another experiment join the compared one, and failed re-runs leave the judgement to what exists.
#include "reports/compare.h"

#include <functional>
#include <sstream>

#include "tests/reports/results_fixture.h"
#include "tests/support/errors.h"

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
    CHECK(c.status == CompareStatus::ok);
    CHECK(c.change == Near(0).margin(1e-9));
    CHECK_FALSE(c.borderline);
  }
  CHECK(r.notes.empty());
}

TEST_CASE("a tracked metric's better word parses to its direction and prints back", "[reports][compare]") {
  auto tracked = [](const json& better) {
    json m = {{"source", "metric:images_per_s:median"}};
    if (!better.is_null()) m["better"] = better;
    return parse_compare({{"metrics", json::array({m})}}, "exp.yaml").metrics.at(0).better;
  };
  CHECK(tracked("higher") == Direction::higher);
  CHECK(tracked("lower") == Direction::lower);
  CHECK(name_of(tracked("higher")) == std::string("higher"));
  CHECK(name_of(tracked("lower")) == std::string("lower"));
  CHECK(choice_words<Direction>().size() == 2);
  CHECK(tracked(nullptr) == Direction::higher);
  // "none" marks no bold cell in a table; a comparison needs a direction.
  const std::string e = test::error_message([&] { tracked("none"); });
  CHECK(e.rfind("exp.yaml: 'compare.metrics[0].better': unknown value 'none'", 0) == 0);
  CHECK(e.find("allowed: higher, lower") != std::string::npos);
}

TEST_CASE("comparison statuses print as their words in JSON and Markdown", "[reports][compare]") {
  const std::vector<std::pair<std::string, CompareStatus>> words = {
      {"ok", CompareStatus::ok}, {"regression", CompareStatus::regression},
      {"improvement", CompareStatus::improvement}, {"borderline", CompareStatus::borderline},
      {"incomparable", CompareStatus::incomparable}};
  CHECK(words.size() == choice_words<CompareStatus>().size());
  for (const auto& [word, status] : words) {
    INFO(word);
    CompareResult r;
    CellComparison c;
    c.experiment = "mask";
    c.cell = {{"method.mask_ratio", 0.75}};
    c.status = status;
    r.cells.push_back(c);
    CHECK(json::parse(render_compare(r, "json"))["cells"][0]["status"] == word);
    const std::string shown = status == CompareStatus::regression ? "**regression**" : word;
    CHECK(render_compare(r, "md").find("| " + shown + " |") != std::string::npos);
  }
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
  CHECK(c.status == CompareStatus::regression);
  CHECK(c.tested);
  CHECK(c.p_worse < 0.05);
  CHECK(c.rel_change == Near(-0.10));
  CHECK(c.change == Near(-75.0));           // 750 -> 675 images/s
  CHECK(c.tolerance == Near(0.05 * 750.0));  // default 5% of the baseline
  CHECK(find(r, "eval:knn:eurosat:1:top1", 0.75).status == CompareStatus::ok);
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
    CHECK(c.status == CompareStatus::regression);
    CHECK_FALSE(c.tested);
    CHECK(c.note.find("tolerance only") != std::string::npos);
    CHECK(render_compare(r, "md").find("tolerance only") != std::string::npos);
  }
  SECTION("one seed near the threshold is borderline") {
    test::ResultsFixture a("cmp_1c"), b("cmp_1d");
    fill(a, {.seeds = 1, .throughput_factor = 0.955});
    fill(b, {.seeds = 1});
    const CellComparison& c = find(compare_fixtures(a, b), "metric:images_per_s:median", 0.9);
    CHECK(c.status == CompareStatus::ok);
    CHECK(c.borderline);
  }
  SECTION("a drop beyond tolerance hidden in seed noise") {
    test::ResultsFixture a("cmp_na"), b("cmp_nb");
    fill(a, {.throughput_factor = 0.9, .noise = 0.3});
    fill(b, {.noise = 0.3});
    const CompareResult r = compare_fixtures(a, b);
    const CellComparison& c = find(r, "metric:images_per_s:median", 0.75);
    CHECK(c.status == CompareStatus::borderline);
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
  CHECK(c.status == CompareStatus::regression);
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
  CHECK(c.status == CompareStatus::incomparable);
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

// ---- re-running borderline cells (CompareRequest::rerun_borderline) ----

namespace {

// Throughput only, at the default 5% relative tolerance.
const json kThroughput = {{"defaults", false},
                          {"metrics", {{{"source", "metric:images_per_s:median"}, {"rel_tol", 0.05}}}}};

// One run of `experiment` (first to plan it) at `ratio` and `seed` logging `images_per_s` (nothing
// when not done).
void add_run(test::ResultsFixture& f, double ratio, std::int64_t seed, double images_per_s,
             const std::string& status = "done", const std::string& experiment = "mask") {
  const std::string id = "m" + std::to_string(static_cast<int>(ratio * 100)) + "s" + std::to_string(seed);
  f.run(id, experiment, {{"method.mask_ratio", ratio}, {"seed", seed}}, status, status == "done" ? "" : "OOM");
  if (status != "done") return;
  for (int step = 0; step < 3; ++step) f.metric(id, step * 10, "images_per_s", images_per_s);
}

void add_cell(test::ResultsFixture& f, double ratio, const std::vector<double>& per_seed) {
  for (std::size_t s = 0; s < per_seed.size(); ++s) add_run(f, ratio, static_cast<std::int64_t>(s), per_seed[s]);
}

// A stand-in for the runner: each order's new seeds become done runs of the order's experiment in
// `db` (the new database) with `value(ratio, seed)` images/s, filed as the runner files them
// (runs.experiment and `experiments` both name it); the orders it was given are kept in `seen`.
Rerunner fake_rerunner(test::ResultsFixture& db, std::vector<RerunOrder>& seen,
                       std::function<double(double, std::int64_t)> value) {
  return [&db, &seen, value](const std::vector<RerunOrder>& orders) {
    for (const RerunOrder& o : orders) {
      seen.push_back(o);
      const double ratio = o.axes.at("method.mask_ratio").get<double>();
      for (std::int64_t seed : o.seeds) add_run(db, ratio, seed, value(ratio, seed), "done", o.experiment);
    }
    return RerunOutcome{};
  };
}

CompareRequest rerun_request(const test::ResultsFixture& a, const test::ResultsFixture& b, int n) {
  CompareRequest req;
  req.db = a.path();
  req.against = b.path();
  req.experiment = "mask";
  req.tracked = kThroughput;
  req.rerun_borderline = n;
  return req;
}

// Baseline: 0.75 at 1000 ± 10 images/s, 0.9 at 900 ± 9, three seeds each.
void fill_baseline(test::ResultsFixture& b) {
  add_cell(b, 0.75, {1000, 1010, 990});
  add_cell(b, 0.9, {900, 909, 891});
}

}  // namespace

TEST_CASE("re-runs that show no real change clear a borderline cell", "[reports][compare][rerun]") {
  test::ResultsFixture a("rr_clear_a"), b("rr_clear_b");
  fill_baseline(b);
  add_cell(a, 0.75, {700, 1000, 1010});  // one slow seed: -9.7%, beyond 5% but not significant
  add_cell(a, 0.9, {900, 909, 891});
  REQUIRE(find(compare_databases(rerun_request(a, b, 0)), "metric:images_per_s:median", 0.75).status == CompareStatus::borderline);

  std::vector<RerunOrder> seen;
  std::ostringstream out;
  const int rc = compare_main(rerun_request(a, b, 4), out, fake_rerunner(a, seen, [](double, std::int64_t) { return 1000.0; }));
  CHECK(rc == 0);
  const CompareResult r = compare_with_reruns(rerun_request(a, b, 0), {});  // the database as it is now
  const CellComparison& c = find(r, "metric:images_per_s:median", 0.75);
  CHECK(c.a.values.size() == 7);
  CHECK(c.status == CompareStatus::ok);  // (700 + 1000 + 1010 + 4 x 1000) / 7 = 958.6: -4.1%, inside 5%
  CHECK_FALSE(c.borderline);
  // The output names the re-run cell, its new seeds and both verdicts.
  const std::string md = out.str();
  CHECK(md.find("## Borderline re-runs (4 more seed(s) per borderline cell)") != std::string::npos);
  CHECK(md.find("| mask | method.mask_ratio=0.75 | `metric:images_per_s:median` | 3, 4, 5, 6 | 3 → 7 | borderline (p ") != std::string::npos);
  CHECK(md.find("| ok (p ") != std::string::npos);
  CHECK(md.find("1 cell(s) re-run; 0 regression(s) after the re-runs.") != std::string::npos);
}

TEST_CASE("re-runs that confirm the drop make it a regression", "[reports][compare][rerun]") {
  test::ResultsFixture a("rr_conf_a"), b("rr_conf_b");
  fill_baseline(b);
  add_cell(a, 0.75, {700, 880, 1010});  // -13.7%, too noisy to be significant on three seeds
  add_cell(a, 0.9, {900, 909, 891});
  std::vector<RerunOrder> seen;
  CompareRequest req = rerun_request(a, b, 3);
  const CompareResult r = compare_with_reruns(req, fake_rerunner(a, seen, [](double, std::int64_t) { return 880.0; }));
  const CellComparison& c = find(r, "metric:images_per_s:median", 0.75);
  CHECK(c.status_before == CompareStatus::borderline);
  CHECK(c.n_before == 3);
  CHECK(c.tested_before);
  CHECK(c.p_before >= 0.05);
  CHECK(c.reruns == 3);
  CHECK(c.status == CompareStatus::regression);
  CHECK(c.p_worse < 0.05);
  CHECK(r.regressions() == 1);
  // compare_main exits non-zero on it (the database now has the six seeds; no further re-run).
  std::ostringstream out;
  req.rerun_borderline = 0;
  CHECK(compare_main(req, out) == 1);
  const json j = json::parse(render_compare(r, "json"));
  CHECK(j["reruns"].size() == 1);
  CHECK(j["reruns"][0]["seeds"] == json({3, 4, 5}));
  CHECK(j["cells"][0]["status_before"] == "borderline");
}

TEST_CASE("only borderline cells are re-run, each with exactly N new seeds", "[reports][compare][rerun]") {
  test::ResultsFixture a("rr_sel_a"), b("rr_sel_b");
  fill_baseline(b);
  add_cell(a, 0.75, {700, 1000, 1010});  // borderline
  add_cell(a, 0.9, {810, 818, 802});     // a clear -10% regression: decided, not re-run
  add_run(a, 0.75, 5, 0, "failed");      // a failed seed 5: the new seeds start after it
  // A failed run that sorts first in its cell, with a config of its own outside the cell's axes:
  // the template of the re-runs must still be a done run.
  a.run("m75a", "mask", {{"method.mask_ratio", 0.75}, {"seed", 4}}, "failed", "OOM", std::nullopt,
        {{"train", {{"epochs", 1}}}});

  SECTION("N = 0 only lists them") {
    const Rerunner never = [](const std::vector<RerunOrder>&) -> RerunOutcome {
      FAIL("re-run without --rerun-borderline");
      return {};
    };
    std::ostringstream out;
    CHECK(compare_main(rerun_request(a, b, 0), out, never) == 1);
    CHECK(out.str().find("Borderline re-runs") == std::string::npos);
  }
  SECTION("N = 2") {
    std::vector<RerunOrder> seen;
    int calls = 0;
    const Rerunner fake = fake_rerunner(a, seen, [](double, std::int64_t) { return 1000.0; });
    const Rerunner counted = [&](const std::vector<RerunOrder>& o) {
      ++calls;
      return fake(o);
    };
    const CompareResult r = compare_with_reruns(rerun_request(a, b, 2), counted);
    CHECK(calls == 1);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].experiment == "mask");
    CHECK(seen[0].cell == json({{"method.mask_ratio", 0.75}}));
    CHECK(seen[0].seeds == std::vector<std::int64_t>{6, 7});
    CHECK(seen[0].config.at("method.mask_ratio") == 0.75);
    CHECK_FALSE(seen[0].config.contains("train"));  // the template is a done run's config ...
    const std::int64_t tmpl_seed = seen[0].axes.at("seed").get<std::int64_t>();
    CHECK((tmpl_seed >= 0 && tmpl_seed <= 2));      // ... and axes, not the failed m75a's (seed 4)
    CHECK(find(r, "metric:images_per_s:median", 0.75).reruns == 2);
    CHECK(find(r, "metric:images_per_s:median", 0.75).a.values.size() == 5);
    CHECK(find(r, "metric:images_per_s:median", 0.9).reruns == 0);
    CHECK(find(r, "metric:images_per_s:median", 0.9).status == CompareStatus::regression);
  }
  SECTION("N out of range is a command-line error") {
    CHECK(error_of([&] { compare_with_reruns(rerun_request(a, b, -1), {}); }).key == "--rerun-borderline");
    CHECK(error_of([&] { compare_with_reruns(rerun_request(a, b, 101), {}); }).key == "--rerun-borderline");
  }
}

TEST_CASE("re-runs of a shared cell join the compared experiment", "[reports][compare][rerun]") {
  // The cell's runs were planned first by experiment "other" and joined "mask" later (the
  // `experiments` table links them): runs.experiment names "other" in both databases.
  test::ResultsFixture a("rr_shared_a"), b("rr_shared_b");
  const auto shared = [](test::ResultsFixture& f, const std::vector<double>& per_seed) {
    for (std::size_t s = 0; s < per_seed.size(); ++s) {
      add_run(f, 0.75, static_cast<std::int64_t>(s), per_seed[s], "done", "other");
      const std::string id = "m75s" + std::to_string(s);
      f.exec("INSERT INTO experiments(name, run_id, axes_json) VALUES('mask', '" + id + "', '" +
             json({{"method.mask_ratio", 0.75}, {"seed", s}}).dump() + "')");
    }
  };
  shared(b, {1000, 1010, 990});
  shared(a, {700, 1000, 1010});  // borderline, as in "re-runs that show no real change ..."
  const CompareResult before = compare_databases(rerun_request(a, b, 0));
  REQUIRE(before.cells.size() == 1);
  CHECK(before.cells[0].experiment == "mask");
  REQUIRE(before.cells[0].status == CompareStatus::borderline);

  std::vector<RerunOrder> seen;
  const CompareResult r =
      compare_with_reruns(rerun_request(a, b, 4), fake_rerunner(a, seen, [](double, std::int64_t) { return 1000.0; }));
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].experiment == "mask");  // not "other": the re-runs must join the compared experiment
  CHECK(seen[0].seeds == std::vector<std::int64_t>{3, 4, 5, 6});
  // The comparison after the re-runs sees them in the same cell as the shared runs.
  REQUIRE(r.cells.size() == 1);
  const CellComparison& c = r.cells[0];
  CHECK(c.experiment == "mask");
  CHECK(c.reruns == 4);
  CHECK(c.n_before == 3);
  CHECK(c.a.values.size() == 7);
  CHECK(c.status == CompareStatus::ok);
  CHECK(r.notes.empty());  // no "is new" cell split off under "mask"
}

TEST_CASE("a database without borderline cells re-runs nothing", "[reports][compare][rerun]") {
  test::ResultsFixture a("rr_none_a"), b("rr_none_b");
  fill_baseline(a);
  fill_baseline(b);
  std::vector<RerunOrder> seen;
  std::ostringstream out;
  CHECK(compare_main(rerun_request(a, b, 1), out, fake_rerunner(a, seen, [](double, std::int64_t) { return 0.0; })) == 0);
  CHECK(seen.empty());
  CHECK(out.str().find("no borderline cell: nothing re-run") != std::string::npos);
}

TEST_CASE("failed re-runs are reported and the comparison judges what exists", "[reports][compare][rerun]") {
  test::ResultsFixture a("rr_fail_a"), b("rr_fail_b");
  fill_baseline(b);
  add_cell(a, 0.75, {700, 1000, 1010});
  add_cell(a, 0.9, {900, 909, 891});
  SECTION("the runner throws") {
    const Rerunner broken = [](const std::vector<RerunOrder>&) -> RerunOutcome {
      throw std::runtime_error("cannot start workers");
    };
    std::ostringstream out;
    CHECK(compare_main(rerun_request(a, b, 1), out, broken) == 0);
    CHECK(out.str().find("re-running failed: cannot start workers; judged on the runs that exist") !=
          std::string::npos);
    const CompareResult r = compare_with_reruns(rerun_request(a, b, 1), broken);
    CHECK(find(r, "metric:images_per_s:median", 0.75).status == CompareStatus::borderline);
    CHECK(find(r, "metric:images_per_s:median", 0.75).a.values.size() == 3);
  }
  SECTION("the runs it made failed") {
    const Rerunner failing = [&a](const std::vector<RerunOrder>& orders) {
      for (const RerunOrder& o : orders)
        for (std::int64_t seed : o.seeds) add_run(a, 0.75, seed, 0, "failed");
      return RerunOutcome{false, "mask: some re-runs did not finish"};
    };
    const CompareResult r = compare_with_reruns(rerun_request(a, b, 2), failing);
    const CellComparison& c = find(r, "metric:images_per_s:median", 0.75);
    CHECK(c.status == CompareStatus::borderline);
    CHECK(c.n_before == 3);
    CHECK(c.a.values.size() == 3);
    CHECK(c.a.problems.size() == 2);
    CHECK(r.rerun_note.find("some re-runs did not finish") != std::string::npos);
    CHECK(render_compare(r, "md").find("| 3 → 3 | borderline") != std::string::npos);
  }
}

TEST_CASE("a one-seed regression against a multi-seed baseline is borderline", "[reports][compare][rerun]") {
  test::ResultsFixture a("rr_one_a"), b("rr_one_b");
  fill_baseline(b);
  add_cell(a, 0.75, {850});  // -15% on one seed: a regression by tolerance alone, testable with one more
  add_cell(a, 0.9, {900});   // unchanged: not borderline
  const CompareResult r = compare_databases(rerun_request(a, b, 0));
  CHECK(find(r, "metric:images_per_s:median", 0.75).status == CompareStatus::regression);
  CHECK(find(r, "metric:images_per_s:median", 0.75).borderline);
  CHECK_FALSE(find(r, "metric:images_per_s:median", 0.9).borderline);
  // Zero tolerance has no band around it: an unchanged one-seed cell is not borderline.
  const json exact = {{"defaults", false}, {"metrics", {{{"source", "metric:images_per_s:median"}}}}};
  CompareRequest req = rerun_request(a, b, 0);
  req.tracked = exact;
  test::ResultsFixture c("rr_one_c"), d("rr_one_d");
  add_cell(c, 0.75, {1000});
  add_cell(d, 0.75, {1000});
  req.db = c.path();
  req.against = d.path();
  const CompareResult same = compare_databases(req);
  REQUIRE(same.cells.size() == 1);
  CHECK(same.cells[0].status == CompareStatus::ok);
  CHECK_FALSE(same.cells[0].borderline);
}
