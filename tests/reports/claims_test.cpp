// The claim relations beyond "a beats b", against hand-computed values: non-inferiority and
// equivalence margins (Welch on shifted samples), monotone increase over several cells (adjacent
// steps at a Bonferroni-corrected alpha), divergence counts (Fisher's exact test), the grad-norm
// spike aggregation, the device a claim's runs ran on, and "not run" / scale in the verdict label.
// Each relation and aggregation word is read into its enumerator once and prints back as written.
//
// Samples are {x − 0.01, x, x + 0.01}: sample std 0.01 on each side, so Welch's t for a mean
// difference d is d / sqrt(2 · 0.01² / 3) = d / 0.0081650 on exactly 4 degrees of freedom, where
// the t distribution has a closed form: P(T > t) = 1/2 − (3/8) u (1 − t²/(12 (1 + t²/4))),
// u = t / sqrt(1 + t²/4).
#include "reports/claims.h"

#include <cmath>
#include <tuple>

#include "tests/reports/results_fixture.h"

using namespace ablate;
using ablate::test::Near;
using nlohmann::json;

namespace {

double t4_sf(double t) {
  const double u = t / std::sqrt(1 + t * t / 4);
  return 0.5 - 0.375 * u * (1 - t * t / (12 * (1 + t * t / 4)));
}
constexpr double kSe = 0.0081649658;  // sqrt(2 * 0.01^2 / 3)

// One cell per entry of `means` (axis "cell" = its index), three seeds at mean − 0.01, mean, mean + 0.01.
void add_cells(test::ResultsFixture& f, const std::vector<double>& means) {
  for (std::size_t c = 0; c < means.size(); ++c)
    for (int s = 0; s < 3; ++s) {
      const std::string id = "c" + std::to_string(c) + "_" + std::to_string(s);
      f.run(id, "exp", {{"cell", c}, {"seed", s}});
      f.eval(id, "knn", "eurosat", 1.0, "top1", means[c] + 0.01 * (s - 1));
    }
}

ClaimResult judge(const test::ResultsFixture& f, const json& spec) {
  const std::vector<ClaimSpec> specs = parse_claims(json::array({spec}), "exp.yaml");
  const ResultsDb db(f.path());
  return evaluate_claim(specs.at(0), db, db.runs("exp"), 1, "exp.yaml");
}

json two_sided(const std::string& relation, double margin) {
  return {{"id", "c"}, {"metric", "eval:knn:eurosat:1.0:top1"}, {"a", {{"cell", 0}}}, {"b", {{"cell", 1}}},
          {"relation", relation}, {"margin", margin}};
}

}  // namespace

TEST_CASE("non_inferior: a a little below b is on par within the margin", "[reports][claims]") {
  test::ResultsFixture f("non_inferior");
  add_cells(f, {0.81, 0.83});  // a is 2 points below b
  // Margin 5 points: a − (b − 0.05) = +0.03, t = 3.674, one-sided p = 0.01066.
  ClaimResult r = judge(f, two_sided("non_inferior", 0.05));
  CHECK(r.stats.verdict == Verdict::reproduced);
  CHECK(r.stats.p_claimed == Near(t4_sf(0.03 / kSe)).epsilon(1e-6));
  CHECK(r.stats.p_claimed == Near(0.010656).epsilon(1e-3));
  CHECK(r.stats.mean_a == Near(0.81));
  CHECK(r.stats.mean_b == Near(0.83));  // shown unshifted
  CHECK(r.stats.ci.hi < 0);             // the interval is of a − b itself: a is below b
  // Margin 0.1 point: a − (b − 0.001) = −0.019, t = −2.327: a is worse by more than the margin.
  r = judge(f, two_sided("non_inferior", 0.001));
  CHECK(r.stats.verdict == Verdict::contradicted);
  CHECK(r.stats.p_opposite == Near(t4_sf(0.019 / kSe)).epsilon(1e-6));
  // The same data fail "a > b" outright (contradicted): non-inferiority is the weaker claim.
  json greater = two_sided("greater", 0);
  greater.erase("margin");
  CHECK(judge(f, greater).stats.verdict == Verdict::contradicted);
}

TEST_CASE("equivalent: two one-sided tests against ±margin", "[reports][claims]") {
  test::ResultsFixture f("equivalent");
  add_cells(f, {0.800, 0.805, 0.900});
  // a − b = −0.005 with margin 0.05: p(a − b > −0.05) from t = 0.045/se, p(a − b < 0.05) from
  // t = 0.055/se; the larger decides.
  ClaimResult r = judge(f, two_sided("equivalent", 0.05));
  CHECK(r.stats.verdict == Verdict::reproduced);
  CHECK(r.stats.p_claimed == Near(t4_sf(0.045 / kSe)).epsilon(1e-6));
  // Margin 0.01: t = 0.005/se = 0.61 and 0.015/se = 1.84, neither below alpha; the difference is
  // not outside the margin either: inconclusive.
  r = judge(f, two_sided("equivalent", 0.01));
  CHECK(r.stats.verdict == Verdict::inconclusive);
  CHECK(r.stats.p_claimed == Near(t4_sf(0.005 / kSe)).epsilon(1e-6));
  // a vs the cell 10 points above with margin 0.05: b − a − 0.05 = 0.05, t = 6.12: contradicted.
  json far = two_sided("equivalent", 0.05);
  far["b"] = {{"cell", 2}};
  r = judge(f, far);
  CHECK(r.stats.verdict == Verdict::contradicted);
  CHECK(r.stats.p_opposite == Near(t4_sf(0.05 / kSe)).epsilon(1e-6));
}

TEST_CASE("increasing: every adjacent step up at alpha / (cells - 1)", "[reports][claims]") {
  auto chain = [](int n) {
    json cells = json::array();
    for (int i = 0; i < n; ++i) cells.push_back({{"cell", i}});
    return json{{"id", "scaling"}, {"metric", "eval:knn:eurosat:1.0:top1"}, {"relation", "increasing"}, {"cells", cells}};
  };
  SECTION("three clear steps up") {
    test::ResultsFixture f("increasing");
    add_cells(f, {0.50, 0.60, 0.70});
    const ClaimResult r = judge(f, chain(3));
    CHECK(r.stats.verdict == Verdict::reproduced);
    REQUIRE(r.steps.size() == 2);
    CHECK(r.steps[0].p_claimed == Near(t4_sf(0.1 / kSe)).epsilon(1e-6));
    CHECK(r.chain.size() == 3);
    CHECK(r.stats.mean_a == Near(0.70));  // the last cell
    CHECK(r.stats.mean_b == Near(0.50));  // the first
  }
  SECTION("a step down contradicts") {
    test::ResultsFixture f("decreasing");
    add_cells(f, {0.50, 0.60, 0.55});
    const ClaimResult r = judge(f, chain(3));
    CHECK(r.stats.verdict == Verdict::contradicted);
    CHECK(r.steps[1].p_opposite == Near(t4_sf(0.05 / kSe)).epsilon(1e-6));  // 0.0018 < 0.025
  }
  SECTION("a step significant at alpha but not at alpha / 2 leaves it open") {
    test::ResultsFixture f("bonferroni");
    // Second step +0.0212: t = 2.60, p = 0.030: below 0.05, above 0.05 / 2.
    add_cells(f, {0.50, 0.60, 0.6212});
    const double p = t4_sf(0.0212 / kSe);
    REQUIRE(p > 0.025);
    REQUIRE(p < 0.05);
    const ClaimResult r = judge(f, chain(3));
    CHECK(r.steps[1].p_claimed == Near(p).epsilon(1e-6));
    CHECK(r.stats.verdict == Verdict::inconclusive);
    CHECK(r.stats.p_claimed == Near(p).epsilon(1e-6));  // the weakest step is reported
    CHECK(r.stats.note.find("weakest 2→3") != std::string::npos);
  }
}

TEST_CASE("fewer_diverged: Fisher's exact test on diverged seeds", "[reports][claims]") {
  test::ResultsFixture f("diverged");
  // a: 5 seeds, all done; b: 4 of 5 diverged. Margins 10 runs, 4 diverged, 5 on side a:
  // P(X <= 0) = C(4,0) C(6,5) / C(10,5) = 6 / 252.
  for (int s = 0; s < 5; ++s) {
    f.run("nfr" + std::to_string(s), "exp", {{"order", "nfr"}, {"seed", s}});
    const bool div = s < 4;
    f.run("fnr" + std::to_string(s), "exp", {{"order", "fnr"}, {"seed", s}}, div ? "diverged" : "done",
          div ? "grad-norm spike" : "", div ? std::optional<long>(100 + s) : std::nullopt);
  }
  f.run("fnr_failed", "exp", {{"order", "fnr"}, {"seed", 9}}, "failed", "exit code 3");  // not counted
  const json spec = {{"id", "stable"}, {"relation", "fewer_diverged"}, {"a", {{"order", "nfr"}}},
                     {"b", {{"order", "fnr"}}}};
  ClaimResult r = judge(f, spec);
  CHECK(r.diverged_a.diverged == 0);
  CHECK(r.diverged_a.finished == 5);
  CHECK(r.diverged_b.diverged == 4);
  CHECK(r.diverged_b.finished == 5);
  CHECK(r.stats.test.test == "fisher exact");
  CHECK(r.stats.p_claimed == Near(6.0 / 252.0));
  CHECK(r.stats.p_opposite == Near(1.0));
  CHECK(r.stats.verdict == Verdict::reproduced);
  // Swapped: the stable side is claimed to diverge more often.
  json swapped = spec;
  swapped["a"] = spec["b"];
  swapped["b"] = spec["a"];
  CHECK(judge(f, swapped).stats.verdict == Verdict::contradicted);

  test::ResultsFixture g("diverged_small");
  for (int s = 0; s < 3; ++s) {  // 0 of 3 vs 3 of 3: the smallest p, 1 / C(6,3) = 0.05, is not < 0.05
    g.run("nfr" + std::to_string(s), "exp", {{"order", "nfr"}, {"seed", s}});
    g.run("fnr" + std::to_string(s), "exp", {{"order", "fnr"}, {"seed", s}}, "diverged", "", 50);
  }
  r = judge(g, spec);
  CHECK(r.stats.p_claimed == Near(0.05));
  CHECK(r.stats.verdict == Verdict::inconclusive);
  CHECK(r.stats.note.find("more seeds are needed") != std::string::npos);
}

TEST_CASE("grad-norm spikes: metric:grad_norm:max_over_median", "[reports][claims]") {
  test::ResultsFixture f("spikes");
  // Per run: median of {1, 2, 3, s} and its max. Cell a: s = 3, 3.2, 3.4 -> 3 / 2.5, 3.2 / 2.5, 3.4 / 2.5.
  // Cell b: s = 20, 21, 22 -> 8, 8.4, 8.8.
  const double spike_a[] = {3.0, 3.2, 3.4}, spike_b[] = {20, 21, 22};
  for (int s = 0; s < 3; ++s)
    for (const char* side : {"a", "b"}) {
      const std::string id = std::string(side) + std::to_string(s);
      f.run(id, "exp", {{"side", side}, {"seed", s}});
      const double spike = side[0] == 'a' ? spike_a[s] : spike_b[s];
      const double series[] = {1, 2, 3, spike};
      for (int step = 0; step < 4; ++step) f.metric(id, (step + 1) * 10, "grad_norm", series[step]);
    }
  const ResultsDb db(f.path());
  const MetricSource src = MetricSource::parse("metric:grad_norm:max_over_median", "t");
  RunRecord a0, b2;
  a0.id = "a0";
  b2.id = "b2";
  CHECK(*db.value(a0, src) == Near(3.0 / 2.5));
  CHECK(*db.value(b2, src) == Near(22.0 / 2.5));
  const ClaimResult r = judge(f, {{"id", "spikes"}, {"metric", "metric:grad_norm:max_over_median"},
                                  {"a", {{"side", "a"}}}, {"b", {{"side", "b"}}}, {"relation", "less"}});
  CHECK(r.stats.verdict == Verdict::reproduced);
  CHECK(r.stats.mean_a == Near(3.2 / 2.5));
  double out = 0;
  CHECK_FALSE(aggregate_series({{1, 0.0}, {2, 0.0}, {3, 5.0}}, Aggregation::max_over_median, out));  // median 0
}

TEST_CASE("each relation word parses to its relation and prints back", "[reports][claims]") {
  // The spec each relation needs besides its word: its cells, ratio or margin, or no metric.
  json increasing = {{"id", "c"}, {"metric", "eval:knn:eurosat:1.0:top1"}, {"cells", json::array({{{"cell", 0}}, {{"cell", 1}}})}};
  json ratio = two_sided("", 0);
  ratio["ratio"] = 2.0;
  json counts = two_sided("", 0);
  counts.erase("metric");
  const std::vector<std::tuple<std::string, Relation, json>> words = {
      {"greater", Relation::greater, two_sided("", 0)},
      {"less", Relation::less, two_sided("", 0)},
      {"ratio_at_least", Relation::ratio_at_least, ratio},
      {"non_inferior", Relation::non_inferior, two_sided("", 0.01)},
      {"equivalent", Relation::equivalent, two_sided("", 0.01)},
      {"increasing", Relation::increasing, increasing},
      {"fewer_diverged", Relation::fewer_diverged, counts}};
  CHECK(words.size() == choice_words<Relation>().size());
  for (auto [word, relation, spec] : words) {
    INFO(word);
    spec["relation"] = word;
    const ClaimSpec c = parse_claims(json::array({spec}), "exp.yaml").at(0);
    CHECK(c.relation == relation);
    CHECK(name_of(c.relation) == word);
  }
  json absent = two_sided("", 0);
  absent.erase("relation");
  CHECK(parse_claims(json::array({absent}), "exp.yaml").at(0).relation == Relation::greater);
}

TEST_CASE("an unknown relation word names the key, the nearest word and the allowed ones", "[reports][claims]") {
  const std::string e = test::error_message([&] { parse_claims(json::array({two_sided("greatr", 0)}), "exp.yaml"); });
  CHECK(e.rfind("exp.yaml: 'claims[0].relation': unknown value 'greatr'", 0) == 0);
  CHECK(e.find("did you mean 'greater'?") != std::string::npos);
  CHECK(e.find("allowed: greater, less, ratio_at_least, non_inferior, equivalent, increasing, fewer_diverged") !=
        std::string::npos);
}

TEST_CASE("each aggregation word parses to its aggregation and prints back", "[reports][claims]") {
  const std::vector<std::pair<std::string, Aggregation>> words = {
      {"last", Aggregation::last}, {"first", Aggregation::first}, {"min", Aggregation::min},
      {"max", Aggregation::max}, {"mean", Aggregation::mean}, {"median", Aggregation::median},
      {"max_over_median", Aggregation::max_over_median}};
  CHECK(words.size() == choice_words<Aggregation>().size());
  for (const auto& [word, agg] : words) {
    const MetricSource s = MetricSource::parse("metric:loss:" + word, "exp.yaml", "k");
    CHECK(s.agg == agg);
    CHECK(name_of(s.agg) == word);
  }
  // Each reduces the series {4, 1, 3, 2} (median 2.5) as its name says.
  const std::vector<std::pair<std::int64_t, double>> series = {{1, 4}, {2, 1}, {3, 3}, {4, 2}};
  const std::vector<double> expected = {2, 4, 1, 4, 2.5, 2.5, 4 / 2.5};
  for (std::size_t i = 0; i < words.size(); ++i) {
    INFO(words[i].first);
    double out = 0;
    REQUIRE(aggregate_series(series, words[i].second, out));
    CHECK(out == Near(expected[i]));
  }
}

TEST_CASE("claims name their devices, say 'not run' and carry the scale", "[reports][claims]") {
  test::ResultsFixture f("devices");
  add_cells(f, {0.5, 0.6});
  f.env("c0_0", "device", "cuda:0");
  f.env("c0_0", "gpu", "NVIDIA H200");
  f.env("c1_0", "device", "cpu");
  f.env("c1_0", "cpu", "Intel(R) Xeon(R) Processor x2");
  json spec = two_sided("greater", 0);
  spec.erase("margin");
  spec["a"] = {{"cell", 1}};
  spec["b"] = {{"cell", 0}};
  spec["paper"] = "+10 points (Table 1)";
  ClaimResult r = judge(f, spec);
  CHECK(r.ran);
  CHECK(r.spec.paper == "+10 points (Table 1)");
  // Runs without an env row are named as such; the others by GPU name or CPU model.
  CHECK(r.devices == std::vector<std::string>{"CPU Intel(R) Xeon(R) Processor x2", "NVIDIA H200",
                                               "device not recorded"});
  CHECK(verdict_label(r, "smoke") == "reproduced (smoke scale)");
  CHECK(verdict_label(r, "") == "reproduced");

  // The same claim over planned runs that are not in the database: not run, never a verdict.
  std::vector<RunRecord> planned(2);
  planned[0].id = "x0", planned[0].status = "not run", planned[0].axes = {{"cell", 0}, {"seed", 0}};
  planned[1].id = "x1", planned[1].status = "not run", planned[1].axes = {{"cell", 1}, {"seed", 0}};
  const ResultsDb db(f.path());
  r = evaluate_claim(parse_claims(json::array({spec}), "exp.yaml").at(0), db, planned, 1, "exp.yaml");
  CHECK_FALSE(r.ran);
  CHECK(verdict_label(r, "smoke") == "not run");
}

TEST_CASE("claim spec errors of the new relations", "[reports][claims]") {
  auto error = [](json spec) {
    return test::error_message([&] { parse_claims(json::array({spec}), "exp.yaml"); });
  };
  json ni = two_sided("non_inferior", 0.01);
  ni.erase("margin");
  CHECK(error(ni).find("'claims[0].margin': needs a positive margin") != std::string::npos);
  CHECK(error(two_sided("greater", 0.01)).find("margin only applies") != std::string::npos);
  json inc = {{"id", "i"}, {"metric", "eval:knn:eurosat:1.0:top1"}, {"relation", "increasing"},
              {"cells", json::array({{{"cell", 0}}})}};
  CHECK(error(inc).find("at least two cells") != std::string::npos);
  inc["cells"].push_back({{"cell", 1}});
  inc["a"] = {{"cell", 0}};
  CHECK(error(inc).find("takes its cells from 'cells'") != std::string::npos);
  json div = {{"id", "d"}, {"relation", "fewer_diverged"}, {"metric", "metric:loss:last"},
              {"a", {{"cell", 0}}}, {"b", {{"cell", 1}}}};
  CHECK(error(div).find("takes no metric") != std::string::npos);
  json cells = two_sided("greater", 0);
  cells.erase("margin");
  cells["cells"] = json::array({{{"cell", 0}}, {{"cell", 1}}});
  CHECK(error(cells).find("only relation increasing takes cells") != std::string::npos);
}
