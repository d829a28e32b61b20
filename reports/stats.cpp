// Implementation of reports/stats.h. Numerical references: Numerical Recipes' continued fraction
// for the incomplete beta, Acklam's rational approximation of the normal quantile refined by one
// Halley step, Royston's AS R94 for Shapiro–Wilk, and the Gaussian binomial coefficient for the
// exact Mann–Whitney null distribution.
#include "reports/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include <fmt/format.h>

#include "harness/check.h"

namespace ablate {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Continued fraction of the incomplete beta function (modified Lentz); converges for
// x < (a + 1) / (a + b + 2).
double beta_continued_fraction(double a, double b, double x) {
  constexpr int kMaxIter = 500;
  constexpr double kEps = 1e-15, kTiny = 1e-300;
  const double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= kMaxIter; ++m) {
    const int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < kEps) break;
  }
  return h;
}

double poly(const double* c, int n, double x) {
  double r = 0;
  for (int i = n - 1; i >= 0; --i) r = r * x + c[i];
  return r;
}

// Counts of the exact Mann–Whitney U statistic over all C(m+n, m) arrangements without ties: the
// coefficients of the Gaussian binomial [m+n choose m]_q = prod_k (1 - q^(n+k)) / (1 - q^k).
std::vector<double> exact_u_counts(std::size_t m, std::size_t n) {
  std::vector<double> c(m * n + 1, 0.0);
  c[0] = 1;
  for (std::size_t k = 1; k <= m; ++k) {
    for (std::size_t u = c.size() - 1; u >= n + k; --u) c[u] -= c[u - (n + k)];  // * (1 - q^(n+k))
    for (std::size_t u = k; u < c.size(); ++u) c[u] += c[u - k];                // / (1 - q^k)
  }
  return c;
}

}  // namespace

double mean(const std::vector<double>& x) {
  ABLATE_CHECK(!x.empty(), "mean of an empty sample");
  return std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
}

double sample_std(const std::vector<double>& x) {
  if (x.size() < 2) return 0;
  const double m = mean(x);
  double ss = 0;
  for (double v : x) ss += (v - m) * (v - m);
  return std::sqrt(ss / static_cast<double>(x.size() - 1));
}

double regularized_incomplete_beta(double a, double b, double x) {
  ABLATE_CHECK(a > 0 && b > 0, "incomplete beta needs a, b > 0 (a={}, b={})", a, b);
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double front = std::exp(log_front);
  if (x < (a + 1) / (a + b + 2)) return front * beta_continued_fraction(a, b, x) / a;
  return 1 - front * beta_continued_fraction(b, a, 1 - x) / b;
}

double student_t_sf(double t, double df) {
  ABLATE_CHECK(df > 0, "t distribution needs df > 0 (df={})", df);
  if (std::isinf(t)) return t > 0 ? 0 : 1;
  // P(|T| > |t|) = I_{df/(df+t^2)}(df/2, 1/2); halve it for one tail.
  const double tail = 0.5 * regularized_incomplete_beta(df / 2, 0.5, df / (df + t * t));
  return t > 0 ? tail : 1 - tail;
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

double normal_quantile(double p) {
  ABLATE_CHECK(p > 0 && p < 1, "normal quantile needs 0 < p < 1 (p={})", p);
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155833372e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00, 2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double p_low = 0.02425;
  double x;
  if (p < p_low) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - p_low) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // One Halley step takes the 1e-9 relative error of the approximation to machine precision.
  const double e = normal_cdf(x) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

TestResult welch_t_test(const std::vector<double>& a, const std::vector<double>& b) {
  ABLATE_CHECK(a.size() >= 2 && b.size() >= 2, "Welch's test needs n >= 2 per side ({} vs {})",
               a.size(), b.size());
  TestResult r;
  r.test = "welch";
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  const double va = std::pow(sample_std(a), 2) / na, vb = std::pow(sample_std(b), 2) / nb;
  const double diff = mean(a) - mean(b);
  if (va + vb == 0) {
    // Both samples constant: the difference is known exactly.
    r.statistic = diff == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), diff);
    r.df = kNaN;
    r.p_greater = diff > 0 ? 0 : 1;
    r.p_less = diff < 0 ? 0 : 1;
    r.p_two_sided = diff != 0 ? 0 : 1;
    return r;
  }
  r.statistic = diff / std::sqrt(va + vb);
  r.df = (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1));
  r.p_greater = student_t_sf(r.statistic, r.df);
  r.p_less = student_t_sf(-r.statistic, r.df);
  r.p_two_sided = std::min(1.0, 2 * std::min(r.p_greater, r.p_less));
  return r;
}

TestResult mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b) {
  ABLATE_CHECK(!a.empty() && !b.empty(), "Mann–Whitney needs non-empty samples");
  const std::size_t m = a.size(), n = b.size();
  // Ranks of the pooled sample, ties sharing their average rank.
  std::vector<std::pair<double, bool>> pooled;  // (value, from a)
  for (double v : a) pooled.emplace_back(v, true);
  for (double v : b) pooled.emplace_back(v, false);
  std::sort(pooled.begin(), pooled.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  double rank_sum_a = 0, tie_term = 0;
  for (std::size_t i = 0; i < pooled.size();) {
    std::size_t j = i;
    while (j < pooled.size() && pooled[j].first == pooled[i].first) ++j;
    const double avg_rank = 0.5 * static_cast<double>(i + 1 + j);
    for (std::size_t k = i; k < j; ++k)
      if (pooled[k].second) rank_sum_a += avg_rank;
    const double t = static_cast<double>(j - i);
    tie_term += t * t * t - t;
    i = j;
  }
  TestResult r;
  const double dm = static_cast<double>(m), dn = static_cast<double>(n);
  const double u = rank_sum_a - dm * (dm + 1) / 2;
  r.statistic = u;
  if (tie_term == 0 && m <= 50 && n <= 50) {
    r.test = "mann-whitney exact";
    const std::vector<double> counts = exact_u_counts(m, n);
    const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
    const auto ui = static_cast<std::size_t>(std::llround(u));
    double le = 0;
    for (std::size_t k = 0; k <= ui; ++k) le += counts[k];
    const double ge = total - le + counts[ui];
    r.p_greater = std::min(1.0, ge / total);
    r.p_less = std::min(1.0, le / total);
  } else {
    r.test = "mann-whitney normal";
    const double nn = dm + dn;
    const double mu = dm * dn / 2;
    const double var = dm * dn / 12 * ((nn + 1) - tie_term / (nn * (nn - 1)));
    if (var <= 0) {
      r.p_greater = r.p_less = 1;
    } else {
      const double sd = std::sqrt(var);
      r.p_greater = 1 - normal_cdf((u - mu - 0.5) / sd);
      r.p_less = normal_cdf((u - mu + 0.5) / sd);
    }
  }
  r.p_two_sided = std::min(1.0, 2 * std::min(r.p_greater, r.p_less));
  return r;
}

NormalityResult shapiro_wilk(const std::vector<double>& data) {
  const std::size_t n = data.size();
  ABLATE_CHECK(n >= 3 && n <= 5000, "Shapiro–Wilk needs 3 <= n <= 5000 (n={})", n);
  std::vector<double> x = data;
  std::sort(x.begin(), x.end());
  if (x.back() - x.front() == 0) return {};
  const double an = static_cast<double>(n);
  const std::size_t half = n / 2;

  // Coefficients a_1..a_half (AS R94): Blom scores corrected in the two outermost positions.
  std::vector<double> coef(half);
  if (n == 3) {
    coef[0] = std::sqrt(0.5);
  } else {
    static constexpr double c1[] = {0.0, 0.221157, -0.147981, -2.07119, 4.434685, -2.706056};
    static constexpr double c2[] = {0.0, 0.042981, -0.293762, -1.752461, 5.682633, -3.582633};
    std::vector<double> m(half);
    double summ2 = 0;
    for (std::size_t i = 0; i < half; ++i) {
      m[i] = normal_quantile((static_cast<double>(i + 1) - 0.375) / (an + 0.25));  // negative
      summ2 += m[i] * m[i];
    }
    summ2 *= 2;
    const double ssumm2 = std::sqrt(summ2), rsn = 1 / std::sqrt(an);
    const double a1 = poly(c1, 6, rsn) - m[0] / ssumm2;
    std::size_t first_plain;
    double fac;
    if (n > 5) {
      first_plain = 2;
      const double a2 = -m[1] / ssumm2 + poly(c2, 6, rsn);
      fac = std::sqrt((summ2 - 2 * m[0] * m[0] - 2 * m[1] * m[1]) / (1 - 2 * a1 * a1 - 2 * a2 * a2));
      coef[1] = a2;
    } else {
      first_plain = 1;
      fac = std::sqrt((summ2 - 2 * m[0] * m[0]) / (1 - 2 * a1 * a1));
    }
    coef[0] = a1;
    for (std::size_t i = first_plain; i < half; ++i) coef[i] = -m[i] / fac;
  }

  const double xm = mean(x);
  double ss = 0, num = 0;
  for (double v : x) ss += (v - xm) * (v - xm);
  for (std::size_t i = 0; i < half; ++i) num += coef[i] * (x[n - 1 - i] - x[i]);
  NormalityResult r;
  r.w = std::min(1.0, num * num / ss);

  if (n == 3) {
    // Exact distribution: p = 6/pi (asin(sqrt(W)) - asin(sqrt(3/4))).
    r.p = std::max(0.0, 6 / M_PI * (std::asin(std::sqrt(r.w)) - M_PI / 3));
    return r;
  }
  // Royston's normalising transformation of log(1 - W).
  const double w1 = std::log(1 - r.w);
  double y = w1, mu, sigma;
  if (n <= 11) {
    static constexpr double g[] = {-2.273, 0.459};
    static constexpr double c3[] = {0.544, -0.39978, 0.025054, -6.714e-4};
    static constexpr double c4[] = {1.3822, -0.77857, 0.062767, -0.0020322};
    const double gamma = poly(g, 2, an);
    if (y >= gamma) {
      r.p = 1e-99;
      return r;
    }
    y = -std::log(gamma - y);
    mu = poly(c3, 4, an);
    sigma = std::exp(poly(c4, 4, an));
  } else {
    static constexpr double c5[] = {-1.5861, -0.31082, -0.083751, 0.0038915};
    static constexpr double c6[] = {-0.4803, -0.082676, 0.0030302};
    const double xx = std::log(an);
    mu = poly(c5, 4, xx);
    sigma = std::exp(poly(c6, 3, xx));
  }
  r.p = 1 - normal_cdf((y - mu) / sigma);
  return r;
}

Interval bootstrap_mean_diff_ci(const std::vector<double>& a, const std::vector<double>& b,
                                double level, int resamples, std::uint64_t seed) {
  ABLATE_CHECK(!a.empty() && !b.empty() && resamples > 0 && level > 0 && level < 1,
               "bootstrap needs samples, resamples > 0 and 0 < level < 1");
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<std::size_t> pick_a(0, a.size() - 1), pick_b(0, b.size() - 1);
  std::vector<double> diffs(static_cast<std::size_t>(resamples));
  for (double& d : diffs) {
    double sa = 0, sb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) sa += a[pick_a(gen)];
    for (std::size_t i = 0; i < b.size(); ++i) sb += b[pick_b(gen)];
    d = sa / static_cast<double>(a.size()) - sb / static_cast<double>(b.size());
  }
  std::sort(diffs.begin(), diffs.end());
  auto at = [&](double q) {
    const double pos = q * static_cast<double>(diffs.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const std::size_t hi = std::min(lo + 1, diffs.size() - 1);
    return diffs[lo] + (pos - static_cast<double>(lo)) * (diffs[hi] - diffs[lo]);
  };
  return {at((1 - level) / 2), at((1 + level) / 2)};
}

double cohens_d(const std::vector<double>& a, const std::vector<double>& b) {
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  if (na + nb <= 2) return 0;
  const double sa = sample_std(a), sb = sample_std(b);
  const double pooled = std::sqrt(((na - 1) * sa * sa + (nb - 1) * sb * sb) / (na + nb - 2));
  return pooled > 0 ? (mean(a) - mean(b)) / pooled : 0;
}

FisherResult fisher_exact(int x_a, int n_a, int x_b, int n_b) {
  ABLATE_CHECK(0 <= x_a && x_a <= n_a && 0 <= x_b && x_b <= n_b, "bad counts {}/{} vs {}/{}", x_a, n_a, x_b, n_b);
  const int n = n_a + n_b, k = x_a + x_b;  // trials and events in all
  // Binomial coefficients as products: exact integers in a double at seed counts, so a tail that
  // is exactly alpha (0 of 3 vs 3 of 3: 1/20) is not rounded below it.
  auto choose = [](int m, int r) {
    double c = 1;
    for (int i = 1; i <= r; ++i) c = c * (m - r + i) / i;
    return c;
  };
  // a's count X given the margins: choose x of the k events for a, the rest of a's trials from the others.
  double below = 0, above = 0;
  for (int x = std::max(0, n_a - (n - k)); x <= std::min(k, n_a); ++x) {
    const double ways = choose(k, x) * choose(n - k, n_a - x);
    if (x <= x_a) below += ways;
    if (x >= x_a) above += ways;
  }
  const double all = choose(n, n_a);
  return {std::min(1.0, below / all), std::min(1.0, above / all)};
}

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::reproduced: return "reproduced";
    case Verdict::contradicted: return "contradicted";
    case Verdict::inconclusive: return "inconclusive";
  }
  return "?";
}

ClaimStats judge_greater(const std::vector<double>& a, const std::vector<double>& b, double alpha,
                         std::uint64_t seed) {
  ClaimStats s;
  s.n_a = a.size();
  s.n_b = b.size();
  if (!a.empty()) s.mean_a = mean(a), s.std_a = sample_std(a);
  if (!b.empty()) s.mean_b = mean(b), s.std_b = sample_std(b);
  if (a.size() < 2 || b.size() < 2) {
    s.note = fmt::format("needs n >= 2 seeds per side (have {} vs {})", a.size(), b.size());
    return s;
  }
  // Welch unless Shapiro–Wilk rejects normality on a side that is large enough to test.
  std::string non_normal;
  for (const auto* side : {&a, &b}) {
    if (side->size() < 3) continue;
    const NormalityResult nr = shapiro_wilk(*side);
    if (nr.p < 0.05)
      non_normal = fmt::format("Shapiro–Wilk rejects normality of side {} (W={:.3f}, p={:.3g})",
                               side == &a ? "a" : "b", nr.w, nr.p);
  }
  // With few seeds Mann–Whitney cannot decide at all: its smallest one-sided p, every a above
  // every b, is 1 / C(n_a + n_b, n_a) (0.05 for 3 vs 3). Then Welch decides and the note says why;
  // with tied values (e.g. KNN accuracy in steps of 1/N) Shapiro–Wilk rejects small samples easily.
  double arrangements = 1;  // C(n_a + n_b, n_a), exact in a double at seed counts
  for (std::size_t i = 1; i <= a.size(); ++i) arrangements = arrangements * double(b.size() + i) / double(i);
  const double smallest_u_p = 1.0 / arrangements;
  const bool u_can_decide = smallest_u_p < alpha;
  s.test = non_normal.empty() || !u_can_decide ? welch_t_test(a, b) : mann_whitney_u(a, b);
  s.note = non_normal;
  if (!non_normal.empty() && !u_can_decide)
    s.note += fmt::format("; Mann–Whitney cannot reach alpha {} with n = {} vs {} (smallest p {:.3g}), so Welch's "
                          "t-test decides",
                          alpha, a.size(), b.size(), smallest_u_p);
  if (s.std_a == 0 && s.std_b == 0)
    s.note = "both sides constant across seeds: the difference is exact";
  s.p_claimed = s.test.p_greater;
  s.p_opposite = s.test.p_less;
  s.ci = bootstrap_mean_diff_ci(a, b, 0.95, 10000, seed);
  s.effect_size = cohens_d(a, b);
  if (s.p_claimed < alpha)
    s.verdict = Verdict::reproduced;
  else if (s.p_opposite < alpha)
    s.verdict = Verdict::contradicted;
  return s;
}

}  // namespace ablate
