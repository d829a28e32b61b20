// Claim specs and verdicts (reports/claims.h).
#include "reports/claims.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/lifecycle.h"
#include "reports/spec_reader.h"

namespace ablate {
namespace {

// FNV-1a: a stable hash (std::hash is not stable across standard libraries).
std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::vector<const RunRecord*> select(const std::vector<RunRecord>& runs, const nlohmann::json& where,
                                     const nlohmann::json& side) {
  std::vector<const RunRecord*> out;
  for (const RunRecord& r : runs)
    if (matches(r.axes, where) && matches(r.axes, side)) out.push_back(&r);
  return out;
}

std::vector<double> shifted(std::vector<double> v, double by) {
  for (double& x : v) x += by;
  return v;
}

// "a < b" is "b > a": judged with the sides swapped, reported with a and b in their places.
ClaimStats swap_sides(ClaimStats st) {
  std::swap(st.n_a, st.n_b);
  std::swap(st.mean_a, st.mean_b);
  std::swap(st.std_a, st.std_b);
  st.ci = {-st.ci.hi, -st.ci.lo};
  st.effect_size = -st.effect_size;
  return st;
}

// A test of a shifted sample keeps the raw means, interval and effect size of a vs b for display.
ClaimStats unshift(ClaimStats st, const Sample& a, const Sample& b, std::uint64_t seed) {
  if (!b.values.empty()) st.mean_b = mean(b.values);
  if (st.n_a >= 2 && st.n_b >= 2) {
    st.ci = bootstrap_mean_diff_ci(a.values, b.values, 0.95, 10000, seed);
    st.effect_size = cohens_d(a.values, b.values);
  }
  return st;
}

Verdict decide(double p_claimed, double p_opposite, double alpha) {
  if (p_claimed < alpha) return Verdict::reproduced;
  if (p_opposite < alpha) return Verdict::contradicted;
  return Verdict::inconclusive;
}

// non_inferior: H1 mean(a) > mean(b) − m, i.e. Welch on a vs b − m; contradicted when a is
// significantly worse than b by more than the margin.
ClaimStats judge_non_inferior(const ClaimResult& r, std::uint64_t seed) {
  const double m = r.spec.margin;
  ClaimStats st = judge_greater(r.a.values, shifted(r.b.values, -m), r.spec.alpha, seed);
  st = unshift(st, r.a, r.b, seed);
  if (st.n_a >= 2 && st.n_b >= 2) st.note += fmt::format("{}tested as a vs b − {:g}", st.note.empty() ? "" : "; ", m);
  return st;
}

// equivalent (TOST): reproduced when both "a − b > −m" and "a − b < m" reject at alpha (p is the
// larger of the two); contradicted when the difference lies significantly outside ±m.
ClaimStats judge_equivalent(const ClaimResult& r, std::uint64_t seed) {
  const double m = r.spec.margin, alpha = r.spec.alpha;
  const std::vector<double>& a = r.a.values;
  const std::vector<double>& b = r.b.values;
  ClaimStats above_lower = judge_greater(a, shifted(b, -m), alpha, seed);   // a − b > −m
  if (a.size() < 2 || b.size() < 2) return unshift(above_lower, r.a, r.b, seed);
  const ClaimStats below_upper = judge_greater(b, shifted(a, -m), alpha, seed);  // a − b < m
  const ClaimStats beyond_upper = judge_greater(a, shifted(b, m), alpha, seed);  // a − b > m
  const ClaimStats beyond_lower = judge_greater(b, shifted(a, m), alpha, seed);  // a − b < −m
  ClaimStats st = unshift(above_lower, r.a, r.b, seed);
  st.p_claimed = std::max(above_lower.p_claimed, below_upper.p_claimed);
  st.p_opposite = std::min(beyond_upper.p_claimed, beyond_lower.p_claimed);
  st.verdict = decide(st.p_claimed, st.p_opposite, alpha);
  st.note += fmt::format("{}two one-sided tests at ±{:g}: p(a − b > −{:g}) = {:.3g}, p(a − b < {:g}) = {:.3g}",
                         st.note.empty() ? "" : "; ", m, m, above_lower.p_claimed, m, below_upper.p_claimed);
  return st;
}

// increasing: each adjacent step judged at alpha / (cells − 1) (Bonferroni); reproduced when every
// step goes up, contradicted when any step goes significantly down. `stats` is the weakest step.
ClaimStats judge_increasing(ClaimResult& r, std::uint64_t seed) {
  const std::size_t k = r.chain.size();
  const double step_alpha = r.spec.alpha / static_cast<double>(k - 1);
  std::size_t weakest = 0;
  bool all_up = true, any_down = false;
  std::string steps;
  for (std::size_t i = 0; i + 1 < k; ++i) {
    r.steps.push_back(judge_greater(r.chain[i + 1].values, r.chain[i].values, step_alpha, seed + i));
    const ClaimStats& s = r.steps.back();
    all_up = all_up && s.verdict == Verdict::reproduced;
    any_down = any_down || s.verdict == Verdict::contradicted;
    if (s.p_claimed > r.steps[weakest].p_claimed) weakest = i;
    steps += fmt::format("{}{}→{}: {}", steps.empty() ? "" : ", ", i + 1, i + 2,
                         s.test.test.empty() ? "n < 2" : fmt::format("p = {:.3g}", s.p_claimed));
  }
  ClaimStats st = r.steps[weakest];
  st.verdict = all_up ? Verdict::reproduced : any_down ? Verdict::contradicted : Verdict::inconclusive;
  st.n_a = r.chain.back().values.size();
  st.n_b = r.chain.front().values.size();
  st.mean_a = r.chain.back().values.empty() ? 0 : mean(r.chain.back().values);
  st.mean_b = r.chain.front().values.empty() ? 0 : mean(r.chain.front().values);
  st.note = fmt::format("{} adjacent steps, each at alpha {:.3g} (Bonferroni): {}; weakest {}→{}{}", k - 1,
                        step_alpha, steps, weakest + 1, weakest + 2,
                        r.steps[weakest].note.empty() ? "" : " (" + r.steps[weakest].note + ")");
  return st;
}

DivergenceCount count_divergences(const std::vector<const RunRecord*>& runs) {
  DivergenceCount c;
  for (const RunRecord* r : runs) {
    const std::optional<RunStatus> s = parse_run_status(r->status);
    if (s == RunStatus::diverged) ++c.diverged;
    if (s == RunStatus::diverged || s == RunStatus::done) ++c.finished;
  }
  return c;
}

// A run that ended (done, diverged or failed): evidence a claim was run, whatever it gave.
bool ended(const RunRecord& r) {
  const std::optional<RunStatus> s = parse_run_status(r.status);
  return s == RunStatus::done || s == RunStatus::diverged || s == RunStatus::failed;
}

// fewer_diverged: Fisher's exact test, one-sided, that a's divergence rate is below b's.
ClaimStats judge_fewer_diverged(const ClaimResult& r) {
  const DivergenceCount& a = r.diverged_a;
  const DivergenceCount& b = r.diverged_b;
  ClaimStats st;
  st.n_a = static_cast<std::size_t>(a.finished);
  st.n_b = static_cast<std::size_t>(b.finished);
  if (a.finished == 0 || b.finished == 0) {
    st.note = fmt::format("needs finished runs on both sides (have {} vs {})", a.finished, b.finished);
    return st;
  }
  st.mean_a = double(a.diverged) / a.finished;
  st.mean_b = double(b.diverged) / b.finished;
  const FisherResult f = fisher_exact(a.diverged, a.finished, b.diverged, b.finished);
  st.test.test = "fisher exact";
  st.test.p_less = f.p_less;
  st.test.p_greater = f.p_greater;
  st.p_claimed = f.p_less;
  st.p_opposite = f.p_greater;
  st.verdict = decide(st.p_claimed, st.p_opposite, r.spec.alpha);
  st.note = fmt::format("diverged {} of {} vs {} of {}", a.diverged, a.finished, b.diverged, b.finished);
  // The smallest p these sizes allow: every b run diverged, no a run (1 / C(n_a + n_b, n_b)).
  const FisherResult best = fisher_exact(0, a.finished, b.finished, b.finished);
  if (!(best.p_less < r.spec.alpha))
    st.note += fmt::format("; with {} vs {} runs even all of b diverging and none of a gives p = {:.3g} "
                           "(>= alpha {}): more seeds are needed to decide",
                           a.finished, b.finished, best.p_less, r.spec.alpha);
  return st;
}

// Where a run ran: the GPU's name for CUDA runs, the CPU's model otherwise.
std::string device_label(const ResultsDb& db, const RunRecord& r) {
  const std::string device = db.env(r.id, "device").value_or("");
  if (device.rfind("cuda", 0) == 0) return db.env(r.id, "gpu").value_or(device);
  if (device == "cpu") return "CPU " + db.env(r.id, "cpu").value_or("(model unknown)");
  if (!r.gpu.empty()) return "GPU " + r.gpu;
  return device.empty() ? "device not recorded" : device;
}

void check_one_cell(const std::vector<const RunRecord*>& runs, const std::string& where,
                    const std::string& key) {
  if (const std::string axis = mixed_axis(runs); !axis.empty())
    throw ConfigError(where, key, "selects runs that differ in axis '" + axis + "'",
                      "name its value in the selector or in where");
}

// The decisive test of the claimed relation over the samples (or, for fewer_diverged, the runs) of
// each side.
ClaimStats judge_relation(ClaimResult& r, const std::vector<std::vector<const RunRecord*>>& sides,
                          std::uint64_t seed) {
  const ClaimSpec& spec = r.spec;
  switch (spec.relation) {
    case Relation::greater: return judge_greater(r.a.values, r.b.values, spec.alpha, seed);
    case Relation::less: return swap_sides(judge_greater(r.b.values, r.a.values, spec.alpha, seed));
    case Relation::ratio_at_least: {
      // mean(a) >= r mean(b)  <=>  mean(a) - mean(r b) >= 0: Welch on a vs r b tests exactly that.
      std::vector<double> scaled = r.b.values;
      for (double& v : scaled) v *= spec.ratio;
      return judge_greater(r.a.values, scaled, spec.alpha, seed);
    }
    case Relation::non_inferior: return judge_non_inferior(r, seed);
    case Relation::equivalent: return judge_equivalent(r, seed);
    case Relation::increasing: return judge_increasing(r, seed);
    case Relation::fewer_diverged: break;
  }
  r.diverged_a = count_divergences(sides[0]);
  r.diverged_b = count_divergences(sides[1]);
  return judge_fewer_diverged(r);
}

}  // namespace

std::vector<ClaimSpec> parse_claims(const nlohmann::json& claims, const std::string& where) {
  std::vector<ClaimSpec> out;
  if (claims.is_null()) return out;
  if (!claims.is_array()) throw ConfigError(where, "claims", "expected a list of claims");
  for (std::size_t i = 0; i < claims.size(); ++i) {
    SpecReader r(claims[i], where, fmt::format("claims[{}]", i));
    r.only({"id", "text", "metric", "a", "b", "cells", "where", "relation", "ratio", "margin", "alpha", "paper"});
    ClaimSpec c;
    c.id = r.string("id");
    for (const ClaimSpec& prev : out)
      if (prev.id == c.id) r.fail("id", "duplicate claim id '" + c.id + "'");
    c.text = r.string("text", c.id);
    c.relation = r.choice("relation", Relation::greater);
    const bool counts = c.relation == Relation::fewer_diverged;
    const std::string metric = r.string("metric", counts ? std::optional<std::string>("") : std::nullopt);
    if (counts && !metric.empty()) r.fail("metric", "fewer_diverged counts diverged runs and takes no metric");
    if (!counts) c.source = MetricSource::parse(metric, where, r.key_path("metric"));
    c.a = r.selector("a");
    c.b = r.selector("b");
    if (c.relation == Relation::increasing) {
      if (!c.a.empty() || !c.b.empty())
        r.fail(c.a.empty() ? "b" : "a", "increasing takes its cells from 'cells', not a and b");
      const nlohmann::json& cells = r.list("cells");
      if (cells.size() < 2) r.fail("cells", "increasing needs at least two cells, lowest first");
      for (const nlohmann::json& cell : cells) {
        if (!cell.is_object() || cell.empty())
          r.fail("cells", "each cell is a non-empty mapping of axis key to value", "e.g. {model.size: vit_s}");
        c.cells.push_back(cell);
      }
    } else {
      if (!r.list("cells").empty()) r.fail("cells", "only relation increasing takes cells");
      if (c.a.empty() || c.b.empty())
        r.fail(c.a.empty() ? "a" : "b", "each side needs a selector", "e.g. {method.name: mae}");
    }
    c.where = r.selector("where");
    c.ratio = r.number("ratio", 1.0);
    if (c.relation == Relation::ratio_at_least && !(c.ratio > 0))
      r.fail("ratio", "ratio_at_least needs a positive ratio");
    if (c.relation != Relation::ratio_at_least && c.ratio != 1.0)
      r.fail("ratio", "ratio only applies to relation ratio_at_least");
    const bool margined = c.relation == Relation::non_inferior || c.relation == Relation::equivalent;
    c.margin = r.number("margin", 0.0);
    if (margined && !(c.margin > 0))
      r.fail("margin", "needs a positive margin in the metric's stored units", "e.g. 0.01 for one point of top-1");
    if (!margined && c.margin != 0.0) r.fail("margin", "margin only applies to non_inferior and equivalent");
    c.alpha = r.number("alpha", 0.05);
    if (!(c.alpha > 0 && c.alpha < 1)) r.fail("alpha", "expected 0 < alpha < 1");
    c.paper = r.string("paper", "");
    out.push_back(std::move(c));
  }
  return out;
}

std::string relation_text(const ClaimSpec& spec) {
  switch (spec.relation) {
    case Relation::greater: return "a > b";
    case Relation::less: return "a < b";
    case Relation::ratio_at_least: return fmt::format("a ≥ {:g}× b", spec.ratio);
    case Relation::non_inferior: return fmt::format("a > b − {:g}", spec.margin);
    case Relation::equivalent: return fmt::format("|a − b| < {:g}", spec.margin);
    case Relation::fewer_diverged: return "diverged(a) < diverged(b)";
    case Relation::increasing: break;
  }
  std::string chain;
  for (const nlohmann::json& c : spec.cells) chain += (chain.empty() ? "" : " < ") + cell_label(c);
  return chain;
}

std::string verdict_label(const ClaimResult& c, const std::string& scale) {
  if (!c.ran) return "not run";
  const std::string v = to_string(c.stats.verdict);
  return scale.empty() ? v : v + " (" + scale + " scale)";
}

ClaimResult evaluate_claim(const ClaimSpec& spec, const ResultsDb& db,
                           const std::vector<RunRecord>& runs, std::uint64_t seed,
                           const std::string& where) {
  ClaimResult res;
  res.spec = spec;
  const std::uint64_t s = seed ^ fnv1a(spec.id);
  // The cells of the claim: a and b, or the chain of an increasing claim.
  std::vector<std::vector<const RunRecord*>> sides;
  if (spec.relation == Relation::increasing) {
    for (std::size_t i = 0; i < spec.cells.size(); ++i) {
      sides.push_back(select(runs, spec.where, spec.cells[i]));
      check_one_cell(sides.back(), where, fmt::format("claims.{}.cells[{}]", spec.id, i));
      res.chain.push_back(collect_sample(db, sides.back(), spec.source));
    }
    res.a = res.chain.back();
    res.b = res.chain.front();
    res.spec.a = spec.cells.back();
    res.spec.b = spec.cells.front();
  } else {
    sides = {select(runs, spec.where, spec.a), select(runs, spec.where, spec.b)};
    check_one_cell(sides[0], where, "claims." + spec.id + ".a");
    check_one_cell(sides[1], where, "claims." + spec.id + ".b");
    if (spec.relation != Relation::fewer_diverged) {
      res.a = collect_sample(db, sides[0], spec.source);
      res.b = collect_sample(db, sides[1], spec.source);
    }
  }
  std::set<std::string> devices;
  res.ran = true;
  for (const auto& side : sides) {
    bool side_ran = false;
    for (const RunRecord* r : side) {
      side_ran = side_ran || ended(*r);
      if (ended(*r)) devices.insert(device_label(db, *r));
    }
    res.ran = res.ran && side_ran;
  }
  res.devices.assign(devices.begin(), devices.end());

  res.stats = judge_relation(res, sides, s);
  for (std::size_t i = 0; i < sides.size(); ++i)
    if (sides[i].empty()) {
      const std::string side = spec.relation == Relation::increasing ? fmt::format("cells[{}]", i) : (i == 0 ? "a" : "b");
      const std::string none = "no runs match " + side;
      res.stats.note = res.stats.note.empty() ? none : none + "; " + res.stats.note;
    }
  return res;
}

}  // namespace ablate
