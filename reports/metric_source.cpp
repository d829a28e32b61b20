// Parsing of metric source strings and reduction of logged series (reports/metric_source.h).
#include "reports/metric_source.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "harness/check.h"
#include "reports/stats.h"

namespace ablate {
namespace {

constexpr const char* kAggs[] = {"last", "first", "min", "max", "mean", "median", "max_over_median"};
constexpr const char* kSyntax =
    "expected eval:<protocol>:<dataset>:<scale>:<metric> or metric:<name>:<agg> with agg one of "
    "last, first, min, max, mean, median, max_over_median";

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
    if (part.empty()) throw ConfigError(where, key, "empty field in metric source '" + text + "'", kSyntax);
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
    s.agg = p[2];
    if (std::find(std::begin(kAggs), std::end(kAggs), s.agg) == std::end(kAggs))
      throw ConfigError(where, key, "unknown aggregation '" + s.agg + "' in '" + text + "'", kSyntax);
    return s;
  }
  throw ConfigError(where, key, "cannot parse metric source '" + text + "'", kSyntax);
}

bool aggregate_series(const std::vector<std::pair<std::int64_t, double>>& series,
                      const std::string& agg, double& out) {
  std::vector<double> v;
  for (const auto& [step, value] : series)
    if (std::isfinite(value)) v.push_back(value);
  if (v.empty()) return false;
  if (agg == "last") out = v.back();
  else if (agg == "first") out = v.front();
  else if (agg == "min") out = *std::min_element(v.begin(), v.end());
  else if (agg == "max") out = *std::max_element(v.begin(), v.end());
  else if (agg == "mean") out = mean(v);
  else if (agg == "median") out = median(v);
  else if (agg == "max_over_median") {
    // The largest spike relative to the run's typical value (the trainer's divergence guard
    // compares each grad norm with a running median the same way); undefined for a zero median.
    const double m = median(v);
    if (!(m > 0)) return false;
    out = *std::max_element(v.begin(), v.end()) / m;
  }
  else ABLATE_CHECK(false, "aggregation '{}' passed MetricSource::parse", agg);
  return true;
}

}  // namespace ablate
