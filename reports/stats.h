// Statistics behind claim verdicts and run comparisons: descriptive statistics, Welch's t-test,
// the Mann–Whitney U test, the Shapiro–Wilk normality test that chooses between them, a seeded
// bootstrap interval of the difference of means and Cohen's d. Everything (incomplete beta, normal
// quantile) is implemented here so verdicts do not depend on which math library a machine has;
// reports/README.md documents the choices and the verdict rule.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "harness/median.h"  // median, shared with the trainer and bench

namespace ablate {

double mean(const std::vector<double>& x);
// Sample standard deviation (n - 1 denominator); 0 when n < 2.
double sample_std(const std::vector<double>& x);

// I_x(a, b), the regularised incomplete beta function (continued fraction, Lentz's method).
double regularized_incomplete_beta(double a, double b, double x);
// P(T > t) for Student's t with df degrees of freedom (df may be fractional).
double student_t_sf(double t, double df);
// P(Z <= z) and its inverse for the standard normal distribution.
double normal_cdf(double z);
double normal_quantile(double p);

// Outcome of a two-sample location test. "greater" is the alternative that sample a lies above b.
struct TestResult {
  std::string test;       // "welch", "mann-whitney exact", "mann-whitney normal"
  double statistic = 0;   // Welch: t of mean(a) - mean(b); Mann–Whitney: U of sample a
  double df = 0;          // Welch–Satterthwaite degrees of freedom (Welch only)
  double p_greater = 1;   // one-sided p, H1: a > b
  double p_less = 1;      // one-sided p, H1: a < b
  double p_two_sided = 1;
};

// Welch's unequal-variance t-test; needs n >= 2 on both sides.
TestResult welch_t_test(const std::vector<double>& a, const std::vector<double>& b);
// Mann–Whitney U: exact null distribution without ties when both n <= 50, otherwise the normal
// approximation with tie-corrected variance and continuity correction (as scipy's defaults).
TestResult mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b);

// Fisher's exact test on event counts of two groups (x_a events of n_a trials vs x_b of n_b):
// one-sided p-values from the hypergeometric law of a's count given the table's margins.
// p_less: H1 a's rate is below b's, P(X <= x_a); p_greater: H1 above, P(X >= x_a).
struct FisherResult {
  double p_less = 1, p_greater = 1;
};
FisherResult fisher_exact(int x_a, int n_a, int x_b, int n_b);

struct NormalityResult {
  double w = 1;  // Shapiro–Wilk W
  double p = 1;  // p-value of H0: the sample is normal
};
// Shapiro–Wilk test, Royston's (1995) algorithm AS R94; 3 <= n <= 5000. A constant sample gives
// W = 1, p = 1 (no evidence against normality).
NormalityResult shapiro_wilk(const std::vector<double>& x);

struct Interval {
  double lo = 0, hi = 0;
};
// Percentile bootstrap interval of mean(a) - mean(b) at `level` (e.g. 0.95), resampling each side
// with replacement `resamples` times from a generator seeded with `seed`.
Interval bootstrap_mean_diff_ci(const std::vector<double>& a, const std::vector<double>& b,
                                double level, int resamples, std::uint64_t seed);
// (mean(a) - mean(b)) / pooled standard deviation; 0 when the pooled deviation is 0.
double cohens_d(const std::vector<double>& a, const std::vector<double>& b);

enum class Verdict { reproduced, contradicted, inconclusive };
const char* to_string(Verdict v);

// Evaluation of the claim "a lies above b" on per-seed samples.
struct ClaimStats {
  Verdict verdict = Verdict::inconclusive;
  std::size_t n_a = 0, n_b = 0;
  double mean_a = 0, mean_b = 0, std_a = 0, std_b = 0;
  TestResult test;          // the test that decided (empty when n < 2 on a side)
  double p_claimed = 1;     // one-sided p in the claimed direction (a > b)
  double p_opposite = 1;    // one-sided p in the opposite direction (a < b)
  Interval ci;              // 95% bootstrap interval of mean(a) - mean(b)
  double effect_size = 0;   // Cohen's d
  std::string note;         // why the verdict is inconclusive, which test and why, ...
};

// Verdict rule: with n >= 2 per side, Welch's t-test, or Mann–Whitney U when Shapiro–Wilk rejects
// normality (p < 0.05) on a side with n >= 3 and Mann–Whitney can reach alpha at these sizes
// (1 / C(n_a + n_b, n_a) < alpha; not at 3 vs 3, where Welch decides and the note says so); reproduced when the one-sided p in the claimed
// direction is < alpha, contradicted when the opposite one-sided p is < alpha, else inconclusive.
// With n < 2 on a side: inconclusive, with a note.
ClaimStats judge_greater(const std::vector<double>& a, const std::vector<double>& b, double alpha,
                         std::uint64_t seed);

}  // namespace ablate
