// Cell selection and per-seed samples (reports/cells.h).
#include "reports/cells.h"

#include <map>

#include <fmt/format.h>

namespace ablate {

nlohmann::json cell_key(const nlohmann::json& axes) {
  nlohmann::json key = nlohmann::json::object();
  for (auto it = axes.begin(); it != axes.end(); ++it)
    if (it.key() != kSeedAxis) key[it.key()] = it.value();
  return key;
}

bool matches(const nlohmann::json& axes, const nlohmann::json& selector) {
  if (selector.is_null()) return true;
  for (auto it = selector.begin(); it != selector.end(); ++it) {
    auto a = axes.find(it.key());
    if (a == axes.end() || !(*a == it.value())) return false;
  }
  return true;
}

std::string axis_value_label(const nlohmann::json& v) {
  if (v.is_null()) return "(default)";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : "-") + axis_value_label(e);
    return s;
  }
  if (v.is_number_float()) return fmt::format("{:g}", v.get<double>());
  return v.dump();
}

std::string cell_label(const nlohmann::json& key) {
  std::string s;
  for (auto it = key.begin(); it != key.end(); ++it) {
    if (it.key() == kSeedAxis) continue;
    s += (s.empty() ? "" : ", ") + it.key() + "=" + axis_value_label(it.value());
  }
  return s.empty() ? "(all)" : s;
}

std::string mixed_axis(const std::vector<const RunRecord*>& runs) {
  if (runs.empty()) return "";
  const nlohmann::json first = cell_key(runs.front()->axes);
  for (const RunRecord* r : runs) {
    const nlohmann::json k = cell_key(r->axes);
    if (k == first) continue;
    for (auto it = k.begin(); it != k.end(); ++it)
      if (!first.contains(it.key()) || !(first[it.key()] == it.value())) return it.key();
    for (auto it = first.begin(); it != first.end(); ++it)
      if (!k.contains(it.key())) return it.key();
  }
  return "";
}

Sample collect_sample(const ResultsDb& db, const std::vector<const RunRecord*>& runs,
                      const MetricSource& source) {
  Sample s;
  s.runs = runs.size();
  for (const RunRecord* r : runs) {
    std::optional<double> v;
    if (is_done(*r)) v = db.value(*r, source);
    if (v) {
      s.values.push_back(*v);
      s.run_ids.push_back(r->id);
    } else {
      s.problems.push_back(describe_outcome(*r));
    }
  }
  return s;
}

std::string summarize_problems(const std::vector<std::string>& problems) {
  std::map<std::string, int> count;
  std::vector<std::string> order;
  for (const std::string& p : problems)
    if (count[p]++ == 0) order.push_back(p);
  std::string s;
  for (const std::string& p : order)
    s += (s.empty() ? "" : "; ") + (count[p] > 1 ? fmt::format("{} × {}", count[p], p) : p);
  return s;
}

}  // namespace ablate
