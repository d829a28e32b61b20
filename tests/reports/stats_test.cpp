// Checks reports/stats against closed forms worked by hand and against reference values computed
// with scipy 1.x (scipy.special.betainc, scipy.stats.t.sf, ttest_ind(equal_var=False),
// mannwhitneyu, shapiro, norm.ppf), quoted in the comments.
#include "reports/stats.h"

#include <cmath>

#include "tests/reports/results_fixture.h"

using namespace ablate;
using ablate::test::Near;

TEST_CASE("incomplete beta: closed forms and scipy values", "[reports][stats]") {
  // I_x(1,1) = x, I_x(a,1) = x^a, I_x(a,b) = 1 - I_{1-x}(b,a).
  CHECK(regularized_incomplete_beta(1, 1, 0.3) == Near(0.3).epsilon(1e-12));
  CHECK(regularized_incomplete_beta(3, 1, 0.7) == Near(std::pow(0.7, 3)).epsilon(1e-12));
  CHECK(regularized_incomplete_beta(2.5, 3.5, 0.4) ==
        Near(1 - regularized_incomplete_beta(3.5, 2.5, 0.6)).epsilon(1e-12));
  CHECK(regularized_incomplete_beta(2.5, 3.5, 0.4) == Near(0.4869041915261176).epsilon(1e-10));
  CHECK(regularized_incomplete_beta(0.5, 0.5, 0.1) == Near(0.20483276469913345).epsilon(1e-10));
  CHECK(regularized_incomplete_beta(10, 2, 0.9) == Near(0.6973568802000002).epsilon(1e-10));
  CHECK(regularized_incomplete_beta(2, 2, 0) == 0);
  CHECK(regularized_incomplete_beta(2, 2, 1) == 1);
}

TEST_CASE("Student t upper tail", "[reports][stats]") {
  // df = 1 is Cauchy: P(T > 1) = 1/4. df = 2: P(T > t) = (1 - t / sqrt(2 + t^2)) / 2.
  CHECK(student_t_sf(1.0, 1.0) == Near(0.25).epsilon(1e-12));
  CHECK(student_t_sf(2.0, 2.0) == Near(0.5 * (1 - 2 / std::sqrt(6.0))).epsilon(1e-12));
  CHECK(student_t_sf(0.0, 5.0) == Near(0.5));
  CHECK(student_t_sf(2.0, 3.0) == Near(0.06966298427942152).epsilon(1e-10));
  CHECK(student_t_sf(1.5, 7.3) == Near(0.08778154640154305).epsilon(1e-10));
  CHECK(student_t_sf(-0.7, 12) == Near(0.7513629231046463).epsilon(1e-10));
}

TEST_CASE("normal quantile and cdf", "[reports][stats]") {
  CHECK(normal_quantile(0.975) == Near(1.959963984540054).epsilon(1e-13));
  CHECK(normal_quantile(1e-6) == Near(-4.753424308822899).epsilon(1e-12));
  CHECK(normal_quantile(0.3) == Near(-0.5244005127080409).epsilon(1e-12));
  CHECK(normal_quantile(0.5) == Near(0.0).margin(1e-15));
  for (double p : {0.001, 0.02, 0.4, 0.9, 0.9999}) CHECK(normal_cdf(normal_quantile(p)) == Near(p).epsilon(1e-12));
}

TEST_CASE("descriptive statistics by hand", "[reports][stats]") {
  const std::vector<double> x = {2, 4, 4, 4, 5, 5, 7, 9};
  CHECK(mean(x) == Near(5.0));
  CHECK(sample_std(x) == Near(std::sqrt(32.0 / 7.0)));
  CHECK(median(x) == Near(4.5));
  CHECK(median({3, 1, 2}) == Near(2));
  CHECK(sample_std({7.0}) == 0);
  // a = {1,2,3}, b = {4,5,6}: both sd 1, pooled sd 1, d = (2 - 5) / 1.
  CHECK(cohens_d({1, 2, 3}, {4, 5, 6}) == Near(-3.0));
}

TEST_CASE("Welch's t-test", "[reports][stats]") {
  SECTION("by hand") {
    // means 2 and 5, variances 1: se^2 = 1/3 + 1/3, t = -3 / sqrt(2/3); df = (2/3)^2 / (2 (1/3)^2 / 2) = 4.
    const TestResult r = welch_t_test({1, 2, 3}, {4, 5, 6});
    CHECK(r.statistic == Near(-3 / std::sqrt(2.0 / 3.0)));
    CHECK(r.df == Near(4.0));
    CHECK(r.p_greater + r.p_less == Near(1.0));
    CHECK(r.p_two_sided == Near(2 * r.p_greater < 1 ? 2 * r.p_greater : 2 * r.p_less));
  }
  SECTION("scipy ttest_ind(equal_var=False)") {
    const TestResult r = welch_t_test({20.1, 22.3, 19.8, 21.5, 23.0}, {18.2, 19.1, 17.9, 20.0});
    CHECK(r.statistic == Near(3.263929603975766).epsilon(1e-10));
    CHECK(r.df == Near(6.9082246465328385).epsilon(1e-10));
    CHECK(r.p_two_sided == Near(0.014047442963003205).epsilon(1e-8));
    CHECK(r.p_greater == Near(0.007023721481501603).epsilon(1e-8));
    CHECK(r.p_less == Near(0.9929762785184983).epsilon(1e-8));
  }
  SECTION("constant samples: the difference is exact") {
    const TestResult r = welch_t_test({2, 2, 2}, {1, 1});
    CHECK(r.p_greater == 0);
    CHECK(r.p_less == 1);
  }
}

TEST_CASE("Mann-Whitney U", "[reports][stats]") {
  SECTION("exact null distribution by hand") {
    // m = n = 2: the 6 arrangements give U = 0,1,2,2,3,4. a = {2,4}, b = {1,3}: U = 3.
    const TestResult r = mann_whitney_u({2, 4}, {1, 3});
    CHECK(r.test == "mann-whitney exact");
    CHECK(r.statistic == Near(3));
    CHECK(r.p_greater == Near(2.0 / 6.0));
    CHECK(r.p_less == Near(5.0 / 6.0));
  }
  SECTION("complete separation 3 vs 4: p = 1 / C(7,3); scipy method='exact'") {
    const TestResult r = mann_whitney_u({1.2, 3.4, 2.2}, {4.5, 5.1, 3.9, 6.0});
    CHECK(r.statistic == Near(0));
    CHECK(r.p_less == Near(1.0 / 35.0));
    CHECK(r.p_greater == Near(1.0));
    CHECK(r.p_two_sided == Near(0.05714285714285714));
  }
  SECTION("ties: normal approximation, scipy method='asymptotic'") {
    const TestResult r =
        mann_whitney_u({1, 2, 2, 3, 4, 5, 5, 5, 6, 7}, {3, 4, 4, 5, 6, 7, 8, 8, 9, 10, 11});
    CHECK(r.test == "mann-whitney normal");
    CHECK(r.statistic == Near(23.0));
    CHECK(r.p_two_sided == Near(0.02561664199019978).epsilon(1e-9));
    CHECK(r.p_greater == Near(0.9893558212946065).epsilon(1e-9));
    CHECK(r.p_less == Near(0.01280832099509989).epsilon(1e-9));
  }
}

TEST_CASE("Fisher's exact test: hypergeometric tails by hand", "[reports][stats]") {
  // 2 of 4 vs 1 of 4: 8 trials, 3 events, 4 on side a. P(X = x) = C(3,x) C(5,4-x) / C(8,4):
  // 5, 30, 30, 5 out of 70 for x = 0..3.
  FisherResult f = fisher_exact(2, 4, 1, 4);
  CHECK(f.p_less == Near(65.0 / 70).epsilon(1e-12));
  CHECK(f.p_greater == Near(35.0 / 70).epsilon(1e-12));
  // 0 of 5 vs 4 of 5: P(X <= 0) = C(6,5) / C(10,5) = 6 / 252; P(X >= 0) = 1.
  f = fisher_exact(0, 5, 4, 5);
  CHECK(f.p_less == Near(6.0 / 252).epsilon(1e-12));
  CHECK(f.p_greater == Near(1.0).epsilon(1e-12));
  // No events at all: nothing to tell apart.
  f = fisher_exact(0, 3, 0, 3);
  CHECK(f.p_less == Near(1.0).epsilon(1e-12));
  CHECK(f.p_greater == Near(1.0).epsilon(1e-12));
}

TEST_CASE("Shapiro-Wilk against scipy.stats.shapiro", "[reports][stats]") {
  struct Case {
    std::vector<double> x;
    double w, p;
  };
  std::vector<double> cubes;
  for (int i = 0; i < 20; ++i) cubes.push_back(std::round(std::pow(i / 19.0, 3) * 1e4) / 1e4);
  const std::vector<Case> cases = {
      {{2.1, 3.4, 1.9}, 0.8479899497487435, 0.23508923424205008},
      {{1, 2, 3, 4, 10}, 0.8357883166461942, 0.1536125843490888},
      {{5.1, 4.9, 5.3, 5.0, 5.2, 4.8, 5.1, 5.05}, 0.9849479311799382, 0.9831480109848025},
      {{1, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 10.0}, 0.4493819600987393,
       7.663224993189692e-06},
      {cubes, 0.8220082018800717, 0.001875002698525631},
  };
  for (const Case& c : cases) {
    const NormalityResult r = shapiro_wilk(c.x);
    CHECK(r.w == Near(c.w).epsilon(1e-5));
    CHECK(r.p == Near(c.p).epsilon(1e-3));
  }
  CHECK(shapiro_wilk({3, 3, 3}).p == 1);
}

TEST_CASE("bootstrap interval of the difference of means", "[reports][stats]") {
  const std::vector<double> a = {10.1, 9.8, 10.3, 10.0, 9.9}, b = {8.0, 8.2, 7.9, 8.1};
  const Interval ci = bootstrap_mean_diff_ci(a, b, 0.95, 4000, 7);
  const Interval again = bootstrap_mean_diff_ci(a, b, 0.95, 4000, 7);
  CHECK(ci.lo == again.lo);  // seeded: reproducible
  CHECK(ci.hi == again.hi);
  // The resampled means stay within the samples' ranges: diff in [9.8 - 8.2, 10.3 - 7.9].
  CHECK(ci.lo >= 1.6);
  CHECK(ci.hi <= 2.4);
  CHECK(ci.lo < mean(a) - mean(b));
  CHECK(ci.hi > mean(a) - mean(b));
  const Interval exact = bootstrap_mean_diff_ci({5, 5}, {2, 2, 2}, 0.9, 100, 1);
  CHECK(exact.lo == Near(3));
  CHECK(exact.hi == Near(3));
}

TEST_CASE("claim verdicts on synthetic seed samples", "[reports][stats]") {
  // Seed noise of +-0.2 around 75.0 and 73.0: a known 2-point difference.
  const std::vector<double> noise = {-0.2, 0.1, 0.0, 0.2, -0.1};
  std::vector<double> high, low;
  for (double e : noise) high.push_back(75.0 + e), low.push_back(73.0 - e);
  SECTION("known difference in the claimed direction") {
    const ClaimStats s = judge_greater(high, low, 0.05, 1);
    CHECK(s.verdict == Verdict::reproduced);
    CHECK(s.test.test == "welch");
    CHECK(s.p_claimed < 1e-4);
    CHECK(s.n_a == 5);
    CHECK(s.n_b == 5);
    CHECK(s.mean_a - s.mean_b == Near(2.0));
    CHECK(s.ci.lo > 1.5);
    CHECK(s.ci.hi < 2.5);
  }
  SECTION("known difference against the claim") {
    CHECK(judge_greater(low, high, 0.05, 1).verdict == Verdict::contradicted);
  }
  SECTION("no difference") {
    const std::vector<double> same_a = {75.1, 74.8, 75.0, 75.3, 74.9};
    const std::vector<double> same_b = {74.9, 75.2, 75.0, 74.8, 75.1};
    const ClaimStats s = judge_greater(same_a, same_b, 0.05, 1);
    CHECK(s.verdict == Verdict::inconclusive);
    CHECK(s.p_claimed > 0.05);
    CHECK(s.p_opposite > 0.05);
  }
  SECTION("one seed per side") {
    const ClaimStats s = judge_greater({80.0}, {70.0}, 0.05, 1);
    CHECK(s.verdict == Verdict::inconclusive);
    CHECK(s.note.find("n >= 2") != std::string::npos);
    CHECK(s.test.test.empty());
  }
  SECTION("a clearly non-normal side switches to Mann-Whitney") {
    const std::vector<double> outlier = {1, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 10.0};
    const ClaimStats s = judge_greater(outlier, {0.1, 0.2, 0.3, 0.4, 0.5}, 0.05, 1);
    CHECK(s.test.test.rfind("mann-whitney", 0) == 0);
    CHECK(s.note.find("Shapiro") != std::string::npos);
    CHECK(s.verdict == Verdict::reproduced);  // every a above every b: exact p = 1 / C(17,5)
    CHECK(s.p_claimed == Near(1.0 / 6188.0));
  }
  SECTION("a non-normal side with 3 vs 3 seeds stays with Welch: Mann-Whitney could not decide") {
    // Two tied values and one apart: Shapiro-Wilk's W is at its n = 3 minimum (0.75), p < 0.05.
    const std::vector<double> tied = {57.0, 57.0, 58.6}, low = {55.0, 55.6, 56.2};
    const ClaimStats s = judge_greater(tied, low, 0.05, 1);
    CHECK(s.test.test == "welch");
    CHECK(s.note.find("Shapiro") != std::string::npos);
    CHECK(s.note.find("smallest p 0.05") != std::string::npos);  // 1 / C(6, 3)
    CHECK(s.p_claimed == Near(welch_t_test(tied, low).p_greater));
    CHECK(s.verdict == Verdict::reproduced);  // Welch: t = 3.04 on ~3.4 df, p ~ 0.02
  }
}
