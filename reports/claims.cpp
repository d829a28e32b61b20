// Claim specs and verdicts (reports/claims.h).
#include "reports/claims.h"

#include <fmt/format.h>

#include "harness/check.h"
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

}  // namespace

std::vector<ClaimSpec> parse_claims(const nlohmann::json& claims, const std::string& where) {
  std::vector<ClaimSpec> out;
  if (claims.is_null()) return out;
  if (!claims.is_array()) throw ConfigError(where, "claims", "expected a list of claims");
  for (std::size_t i = 0; i < claims.size(); ++i) {
    SpecReader r(claims[i], where, fmt::format("claims[{}]", i));
    r.only({"id", "text", "metric", "a", "b", "where", "relation", "ratio", "alpha"});
    ClaimSpec c;
    c.id = r.string("id");
    for (const ClaimSpec& prev : out)
      if (prev.id == c.id) r.fail("id", "duplicate claim id '" + c.id + "'");
    c.text = r.string("text", c.id);
    c.source = MetricSource::parse(r.string("metric"), where, r.key_path("metric"));
    c.a = r.selector("a");
    c.b = r.selector("b");
    if (c.a.empty() || c.b.empty())
      r.fail(c.a.empty() ? "a" : "b", "each side needs a selector", "e.g. {method.name: mae}");
    c.where = r.selector("where");
    c.relation = r.choice("relation", {"greater", "less", "ratio_at_least"});
    c.ratio = r.number("ratio", 1.0);
    if (c.relation == "ratio_at_least" && !(c.ratio > 0))
      r.fail("ratio", "ratio_at_least needs a positive ratio");
    if (c.relation != "ratio_at_least" && c.ratio != 1.0)
      r.fail("ratio", "ratio only applies to relation ratio_at_least");
    c.alpha = r.number("alpha", 0.05);
    if (!(c.alpha > 0 && c.alpha < 1)) r.fail("alpha", "expected 0 < alpha < 1");
    out.push_back(std::move(c));
  }
  return out;
}

std::string relation_text(const ClaimSpec& spec) {
  if (spec.relation == "greater") return "a > b";
  if (spec.relation == "less") return "a < b";
  return fmt::format("a ≥ {:g}× b", spec.ratio);
}

ClaimResult evaluate_claim(const ClaimSpec& spec, const ResultsDb& db,
                           const std::vector<RunRecord>& runs, std::uint64_t seed,
                           const std::string& where) {
  ClaimResult res;
  res.spec = spec;
  const auto runs_a = select(runs, spec.where, spec.a);
  const auto runs_b = select(runs, spec.where, spec.b);
  for (const auto* side : {&runs_a, &runs_b})
    if (const std::string axis = mixed_axis(*side); !axis.empty())
      throw ConfigError(where, "claims." + spec.id + "." + (side == &runs_a ? "a" : "b"),
                        "selects runs that differ in axis '" + axis + "'",
                        "name its value in the selector or in where");
  res.a = collect_sample(db, runs_a, spec.source);
  res.b = collect_sample(db, runs_b, spec.source);
  const std::uint64_t s = seed ^ fnv1a(spec.id);
  if (spec.relation == "greater") {
    res.stats = judge_greater(res.a.values, res.b.values, spec.alpha, s);
  } else if (spec.relation == "less") {
    // "a < b" is "b > a"; keep a and b in their places for the report.
    ClaimStats st = judge_greater(res.b.values, res.a.values, spec.alpha, s);
    std::swap(st.n_a, st.n_b);
    std::swap(st.mean_a, st.mean_b);
    std::swap(st.std_a, st.std_b);
    st.ci = {-st.ci.hi, -st.ci.lo};
    st.effect_size = -st.effect_size;
    res.stats = st;
  } else {
    // mean(a) >= r mean(b)  <=>  mean(a) - mean(r b) >= 0: Welch on a vs r b tests exactly that.
    std::vector<double> scaled = res.b.values;
    for (double& v : scaled) v *= spec.ratio;
    res.stats = judge_greater(res.a.values, scaled, spec.alpha, s);
  }
  if (runs_a.empty() || runs_b.empty()) {
    const std::string none = fmt::format("no runs match side {}", runs_a.empty() ? "a" : "b");
    res.stats.note = res.stats.note.empty() ? none : none + "; " + res.stats.note;
  }
  return res;
}

}  // namespace ablate
