// Load-time checks of an experiment's report sections against its plan (reports/spec_check.h).
#include "reports/spec_check.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join

#include "harness/check.h"
#include "harness/eval_results.h"
#include "reports/cells.h"
#include "reports/claims.h"
#include "reports/compare.h"
#include "reports/table.h"

namespace ablate {
namespace {

// "eval:knn:eurosat:1.0:top1": the source text naming a recorded result.
std::string eval_source_text(const EvalResultKey& k) {
  std::string scale = fmt::format("{:g}", k.scale);
  if (scale.find_first_of(".e") == std::string::npos) scale += ".0";
  return fmt::format("eval:{}:{}:{}:{}", k.protocol, k.dataset, scale, k.metric);
}

class SectionChecker {
 public:
  // The rows a report can show: the planned runs and the external checkpoint rows (`weights:`).
  explicit SectionChecker(const Experiment& exp) : exp_(exp) {
    auto add_row = [&](const nlohmann::json& axes, const std::vector<EvalConfig>& evals) {
      rows_.push_back(&axes);
      for (const EvalResultKey& k : eval_results(evals))
        if (std::find(recorded_.begin(), recorded_.end(), k) == recorded_.end()) recorded_.push_back(k);
    };
    for (const PlannedRun& r : exp.runs) add_row(r.axes, r.evals);
    for (const ExternalWeights& w : exp.weights) add_row(w.axes, w.evals);
  }

  // The parsers' errors name the file and a key path: moved to the line and column of that path.
  template <class F>
  auto located(F&& parse) const {
    try {
      return parse();
    } catch (const ConfigError& e) {
      if (e.where != exp_.file) throw;
      throw ConfigError(exp_.where(e.key), e.key, e.problem, e.hint);
    }
  }

  void tables(const std::vector<TableSpec>& specs) const {
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const TableSpec& t = specs[i];
      const std::string path = fmt::format("tables[{}]", i);
      axis_list(path + ".rows", t.rows, exp_.tables[i].value("rows", nlohmann::json()).is_array());
      axis_list(path + ".cols", t.cols, exp_.tables[i].value("cols", nlohmann::json()).is_array());
      selector(path + ".where", t.where, /*must_select=*/true);
      for (auto it = t.labels.begin(); it != t.labels.end(); ++it) axis(path + ".labels." + it.key(), it.key());
      for (std::size_t j = 0; j < t.metrics.size(); ++j)
        source(fmt::format("{}.metrics[{}].source", path, j), t.metrics[j].source);
    }
  }

  void claims(const std::vector<ClaimSpec>& specs) const {
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const ClaimSpec& c = specs[i];
      const std::string path = fmt::format("claims[{}]", i);
      source(path + ".metric", c.source);  // a default (metric) source where the relation takes none
      selector(path + ".where", c.where, /*must_select=*/false);
      // The selectors the relation compares: its ordered cells (increasing), else sides a and b.
      std::vector<std::pair<std::string, const nlohmann::json*>> sides;
      for (std::size_t j = 0; j < c.cells.size(); ++j) sides.emplace_back(fmt::format("{}.cells[{}]", path, j), &c.cells[j]);
      if (c.cells.empty()) sides = {{path + ".a", &c.a}, {path + ".b", &c.b}};
      for (const auto& [side_path, sel] : sides) {
        nlohmann::json both = c.where;
        both.update(*sel);
        selector(side_path, *sel, /*must_select=*/false);
        if (!selects_a_run(both))
          fail(side_path, "selects none of the planned runs", c.where.empty() ? "" : "together with the claim's where");
      }
    }
  }

  void compare(const CompareSpec& spec) const {
    for (std::size_t i = 0; i < spec.metrics.size(); ++i)
      source(fmt::format("compare.metrics[{}].source", i), spec.metrics[i].source);
  }

 private:
  [[noreturn]] void fail(const std::string& path, const std::string& problem, const std::string& hint = "") const {
    throw ConfigError(exp_.where(path), path, problem, hint);
  }

  // A matrix axis, or the seed: every run has one, a matrix axis or not (reports/cells.h).
  void axis(const std::string& path, const std::string& key) const {
    if (key == kSeedAxis) return;
    if (std::find(exp_.axis_keys.begin(), exp_.axis_keys.end(), key) == exp_.axis_keys.end())
      fail(path, fmt::format("'{}' is not an axis of the experiment's matrix", key),
           choices_hint(key, exp_.axis_keys));
  }

  // `rows` / `cols`: a list, or one key written as a plain string.
  void axis_list(const std::string& path, const std::vector<std::string>& keys, bool written_as_list) const {
    for (std::size_t j = 0; j < keys.size(); ++j)
      axis(written_as_list ? fmt::format("{}[{}]", path, j) : path, keys[j]);
  }

  // Each key an axis and each value one some planned run has; with `must_select`, all of them
  // together select at least one planned run.
  void selector(const std::string& path, const nlohmann::json& sel, bool must_select) const {
    for (auto it = sel.begin(); it != sel.end(); ++it) {
      const std::string key_path = path + "." + it.key();
      axis(key_path, it.key());
      std::vector<std::string> values;
      bool planned = false;
      for (const nlohmann::json* axes : rows_) {
        if (!axes->contains(it.key())) continue;  // a checkpoint row without that axis
        const nlohmann::json& v = axes->at(it.key());
        planned = planned || v == it.value();
        const std::string label = axis_value_label(v);
        if (std::find(values.begin(), values.end(), label) == values.end()) values.push_back(label);
      }
      if (!planned && !values.empty())  // values empty: the seed of a file without a seeds axis
        fail(key_path, fmt::format("no planned run has {} = {}", it.key(), it.value().dump()),
             "planned values: " + fmt::format("{}", fmt::join(values, ", ")));
    }
    if (must_select && !selects_a_run(sel)) fail(path, "selects none of the planned runs");
  }

  bool selects_a_run(const nlohmann::json& sel) const {
    return std::any_of(rows_.begin(), rows_.end(), [&](const nlohmann::json* axes) { return matches(*axes, sel); });
  }

  void source(const std::string& path, const MetricSource& s) const {
    if (s.kind != MetricSource::Kind::eval) return;
    const EvalResultKey wanted{s.protocol, s.dataset, s.scale, s.eval_metric};
    if (std::find(recorded_.begin(), recorded_.end(), wanted) != recorded_.end()) return;
    std::vector<std::string> names;
    for (const EvalResultKey& k : recorded_) names.push_back(eval_source_text(k));
    fail(path, fmt::format("no planned run records '{}'", s.text),
         names.empty() ? "the planned runs record no evaluation"
                       : fmt::format("the planned runs record {}", fmt::join(names, ", ")));
  }

  const Experiment& exp_;
  std::vector<const nlohmann::json*> rows_;  // axes of every row (runs, then checkpoint files)
  std::vector<EvalResultKey> recorded_;  // over all planned runs, first-seen order
};

}  // namespace

void check_report_sections(const Experiment& experiment) {
  const SectionChecker check(experiment);
  check.located([&] {
    check.tables(parse_tables(experiment.tables, experiment.file));
    check.claims(parse_claims(experiment.claims, experiment.file));
    check.compare(parse_compare(experiment.compare, experiment.file));
    return 0;
  });
}

}  // namespace ablate
