// Parsing of metric source strings and reduction of logged series (reports/metric_source.h).
#include "reports/metric_source.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join

#include "harness/check.h"
#include "reports/stats.h"

namespace ablate {
namespace {

std::string syntax_hint() {
  return fmt::format("expected eval:<protocol>:<dataset>:<scale>:<metric> or metric:<name>:<agg> with agg one of {}",
                     fmt::join(choice_words<Aggregation>(), ", "));
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream ss(s);
  std::string p;
  while (std::getline(ss, p, sep)) parts.push_back(p);
  if (!s.empty() && s.back() == sep) parts.emplace_back();
  return parts;
}

}  // namespace

MetricSource MetricSource::parse(const std::string& text, const std::string& where, const std::string& key) {
  const std::vector<std::string> p = split(text, ':');
  for (const std::string& part : p)
    if (part.empty()) throw ConfigError(where, key, "empty field in metric source '" + text + "'", syntax_hint());
  MetricSource s;
  s.text = text;
  if (p.size() == 5 && p[0] == "eval") {
    s.kind = Kind::eval;
    s.protocol = p[1];
    s.dataset = p[2];
    s.eval_metric = p[4];
    std::size_t used = 0;
    try {
      s.scale = std::stod(p[3], &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != p[3].size() || !(s.scale > 0))
      throw ConfigError(where, key, "bad input scale '" + p[3] + "' in '" + text + "'",
                        "a positive number such as 1.0 or 0.25");
    return s;
  }
  if (p.size() == 3 && p[0] == "metric") {
    s.kind = Kind::metric;
    s.name = p[1];
    const std::optional<Aggregation> agg = parse_choice<Aggregation>(p[2]);
    if (!agg) throw ConfigError(where, key, "unknown aggregation '" + p[2] + "' in '" + text + "'", syntax_hint());
    s.agg = *agg;
    return s;
  }
  throw ConfigError(where, key, "cannot parse metric source '" + text + "'", syntax_hint());
}

bool aggregate_series(const std::vector<std::pair<std::int64_t, double>>& series,
                      Aggregation agg, double& out) {
  std::vector<double> v;
  for (const auto& [step, value] : series)
    if (std::isfinite(value)) v.push_back(value);
  if (v.empty()) return false;
  switch (agg) {
    case Aggregation::last: out = v.back(); return true;
    case Aggregation::first: out = v.front(); return true;
    case Aggregation::min: out = *std::min_element(v.begin(), v.end()); return true;
    case Aggregation::max: out = *std::max_element(v.begin(), v.end()); return true;
    case Aggregation::mean: out = mean(v); return true;
    case Aggregation::median: out = median(v); return true;
    case Aggregation::max_over_median: break;
  }
  // The largest spike relative to the run's typical value (the trainer's divergence guard
  // compares each grad norm with a running median the same way); undefined for a zero median.
  const double m = median(v);
  if (!(m > 0)) return false;
  out = *std::max_element(v.begin(), v.end()) / m;
  return true;
}

}  // namespace ablate
