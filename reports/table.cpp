// Table specs and their aggregation over the results database (reports/table.h).
#include "reports/table.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "harness/check.h"
#include "reports/cells.h"
#include "reports/spec_reader.h"
#include "reports/stats.h"

namespace ablate {
namespace {

MetricSpec parse_metric(const nlohmann::json& j, const std::string& where, const std::string& path) {
  SpecReader r(j, where, path);
  r.only({"name", "label", "source", "scale", "better", "digits"});
  MetricSpec m;
  m.name = r.string("name");
  m.label = r.string("label", m.name);
  m.source = MetricSource::parse(r.string("source"), where, r.key_path("source"));
  m.scale = r.number("scale", 1.0);
  m.better = r.choice("better", Better::none);
  const double digits = r.number("digits", 2);
  if (digits != std::floor(digits) || digits < 0 || digits > 10)
    r.fail("digits", fmt::format("expected a whole number 0..10, got {}", digits));
  m.digits = static_cast<int>(digits);
  return m;
}

// Keys of `sel` must all be among `axes`.
void check_selector_keys(const SpecReader& r, const char* key, const nlohmann::json& sel,
                         const std::vector<std::string>& axes, const char* what) {
  for (auto it = sel.begin(); it != sel.end(); ++it)
    if (std::find(axes.begin(), axes.end(), it.key()) == axes.end())
      r.fail(key, fmt::format("'{}' is not one of the table's {} axes", it.key(), what));
}

nlohmann::json project(const nlohmann::json& axes, const std::vector<std::string>& keys) {
  nlohmann::json k = nlohmann::json::object();
  for (const std::string& key : keys) k[key] = axes.contains(key) ? axes[key] : nlohmann::json();
  return k;
}

// Distinct keys in first-seen order, or sorted by value.
void add_key(std::vector<nlohmann::json>& keys, const nlohmann::json& k) {
  if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
}

std::string join_key(const nlohmann::json& key, const std::vector<std::string>& order) {
  if (order.empty()) return "(all)";
  std::string s;
  for (const std::string& k : order) s += (s.empty() ? "" : " / ") + axis_value_label(key[k]);
  return s;
}

}  // namespace

std::string TableSpec::axis_label(const std::string& key) const {
  return labels.contains(key) && labels[key].is_string() ? labels[key].get<std::string>() : key;
}

std::vector<TableSpec> parse_tables(const nlohmann::json& tables, const std::string& where) {
  std::vector<TableSpec> out;
  if (tables.is_null()) return out;
  if (!tables.is_array()) throw ConfigError(where, "tables", "expected a list of tables");
  for (std::size_t i = 0; i < tables.size(); ++i) {
    SpecReader r(tables[i], where, fmt::format("tables[{}]", i));
    r.only({"name", "caption", "rows", "cols", "where", "labels", "metrics", "paper"});
    TableSpec t;
    t.name = r.string("name");
    if (t.name.empty() || t.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                   "0123456789_-") != std::string::npos)
      r.fail("name", "'" + t.name + "' is not a valid table name", "letters, digits, _ and -");
    for (const TableSpec& prev : out)
      if (prev.name == t.name) r.fail("name", "duplicate table name '" + t.name + "'");
    t.caption = r.string("caption", "");
    t.rows = r.strings("rows");
    t.cols = r.strings("cols");
    t.where = r.selector("where");
    t.labels = r.selector("labels");
    for (auto it = t.labels.begin(); it != t.labels.end(); ++it)
      if (!it->is_string()) r.fail("labels", "label of '" + it.key() + "' must be a string");
    const nlohmann::json& metrics = r.list("metrics");
    if (metrics.empty()) r.fail("metrics", "a table needs at least one metric");
    for (std::size_t j = 0; j < metrics.size(); ++j) {
      MetricSpec m = parse_metric(metrics[j], where, r.key_path("metrics") + fmt::format("[{}]", j));
      for (const MetricSpec& prev : t.metrics)
        if (prev.name == m.name)
          throw ConfigError(where, r.key_path("metrics") + fmt::format("[{}].name", j),
                            "duplicate metric name '" + m.name + "'");
      t.metrics.push_back(std::move(m));
    }
    const nlohmann::json& paper = r.list("paper");
    for (std::size_t j = 0; j < paper.size(); ++j) {
      SpecReader p(paper[j], where, r.key_path("paper") + fmt::format("[{}]", j));
      p.only({"row", "col", "metric", "value"});
      PaperValue v;
      v.row = p.selector("row");
      v.col = p.selector("col");
      check_selector_keys(p, "row", v.row, t.rows, "row");
      check_selector_keys(p, "col", v.col, t.cols, "column");
      v.metric = p.string("metric");
      if (std::none_of(t.metrics.begin(), t.metrics.end(),
                       [&](const MetricSpec& m) { return m.name == v.metric; }))
        p.fail("metric", "no metric named '" + v.metric + "' in this table");
      v.value = p.number("value");
      t.paper.push_back(std::move(v));
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::string Table::row_label(std::size_t r) const { return join_key(row_keys[r], spec.rows); }
std::string Table::col_label(std::size_t c) const {
  if (spec.cols.empty()) return "";
  std::string s;
  for (const std::string& k : spec.cols)
    s += (s.empty() ? "" : ", ") + spec.axis_label(k) + " = " + axis_value_label(col_keys[c][k]);
  return s;
}

namespace {

// The row and column keys: those of the selected runs (in run order, or sorted), then those only
// the paper reports; a table without rows (or columns) has one empty key.
void table_keys(Table& t, const std::vector<const RunRecord*>& selected, bool ordered) {
  const TableSpec& spec = t.spec;
  for (const RunRecord* r : selected) {
    add_key(t.row_keys, project(r->axes, spec.rows));
    add_key(t.col_keys, project(r->axes, spec.cols));
  }
  if (!ordered) {
    std::sort(t.row_keys.begin(), t.row_keys.end());
    std::sort(t.col_keys.begin(), t.col_keys.end());
  }
  // Rows and columns the paper reports but we never ran still appear, as "not run".
  for (const PaperValue& p : spec.paper) {
    if (p.row.size() == spec.rows.size()) add_key(t.row_keys, project(p.row, spec.rows));
    if (p.col.size() == spec.cols.size()) add_key(t.col_keys, project(p.col, spec.cols));
  }
  if (t.row_keys.empty()) t.row_keys.push_back(project(nlohmann::json::object(), spec.rows));
  if (t.col_keys.empty()) t.col_keys.push_back(project(nlohmann::json::object(), spec.cols));
}

// One cell's metric over its runs: mean and sample std (scaled), or why there is none.
TableCell aggregate_cell(const ResultsDb& db, const std::vector<const RunRecord*>& cell_runs, const MetricSpec& m) {
  TableCell cell;
  const Sample s = collect_sample(db, cell_runs, m.source);
  cell.runs = s.runs;
  cell.n = s.values.size();
  cell.problem = summarize_problems(s.problems);
  if (cell.n > 0) {
    cell.state = TableCell::State::value;
    cell.mean = mean(s.values) * m.scale;
    cell.std = sample_std(s.values) * std::fabs(m.scale);
  } else {
    cell.state = cell_runs.empty() ? TableCell::State::not_run : TableCell::State::no_value;
  }
  return cell;
}

// Every (row, column, metric) cell from the selected runs with that row and column key. A cell
// whose runs differ in an axis the table does not show is a ConfigError at `where`.
void fill_cells(Table& t, const ResultsDb& db, const std::vector<const RunRecord*>& selected,
                const std::string& where) {
  const TableSpec& spec = t.spec;
  const std::size_t nm = spec.metrics.size();
  t.cells.assign(t.row_keys.size(),
                 std::vector<std::vector<TableCell>>(t.col_keys.size(), std::vector<TableCell>(nm)));
  for (std::size_t ri = 0; ri < t.row_keys.size(); ++ri) {
    for (std::size_t ci = 0; ci < t.col_keys.size(); ++ci) {
      std::vector<const RunRecord*> cell_runs;
      for (const RunRecord* r : selected)
        if (project(r->axes, spec.rows) == t.row_keys[ri] &&
            project(r->axes, spec.cols) == t.col_keys[ci])
          cell_runs.push_back(r);
      if (const std::string axis = mixed_axis(cell_runs); !axis.empty())
        throw ConfigError(where, "tables." + spec.name,
                          fmt::format("cell '{}' mixes runs that differ in axis '{}'",
                                      cell_label(cell_key(cell_runs.front()->axes)), axis),
                          "add it to rows or cols, or fix it with where: {" + axis + ": ...}");
      for (std::size_t mi = 0; mi < nm; ++mi) t.cells[ri][ci][mi] = aggregate_cell(db, cell_runs, spec.metrics[mi]);
    }
  }
}

// The paper's values into the cells they select, with our mean's difference from them.
void attach_paper_values(Table& t) {
  const TableSpec& spec = t.spec;
  const std::size_t nm = spec.metrics.size();
  t.metric_has_paper.assign(nm, false);
  for (const PaperValue& p : spec.paper) {
    const auto mi = static_cast<std::size_t>(
        std::find_if(spec.metrics.begin(), spec.metrics.end(),
                     [&](const MetricSpec& m) { return m.name == p.metric; }) -
        spec.metrics.begin());
    ABLATE_CHECK(mi < nm, "paper metric '{}' passed parse_tables", p.metric);
    t.metric_has_paper[mi] = true;
    for (std::size_t ri = 0; ri < t.row_keys.size(); ++ri)
      for (std::size_t ci = 0; ci < t.col_keys.size(); ++ci)
        if (matches(t.row_keys[ri], p.row) && matches(t.col_keys[ci], p.col)) {
          TableCell& cell = t.cells[ri][ci][mi];
          cell.paper = p.value;
          if (cell.state == TableCell::State::value) cell.delta = cell.mean - p.value;
        }
  }
}

// Best cell per column and metric, compared at display precision so ties are all bold; a
// column with a single number has no "best".
void mark_best(Table& t) {
  const TableSpec& spec = t.spec;
  for (std::size_t ci = 0; ci < t.col_keys.size(); ++ci) {
    for (std::size_t mi = 0; mi < spec.metrics.size(); ++mi) {
      const MetricSpec& m = spec.metrics[mi];
      if (m.better == Better::none) continue;
      std::vector<std::pair<double, std::size_t>> shown;
      for (std::size_t ri = 0; ri < t.row_keys.size(); ++ri) {
        const TableCell& c = t.cells[ri][ci][mi];
        if (c.state == TableCell::State::value)
          shown.emplace_back(std::stod(format_number(c.mean, m.digits)), ri);
      }
      if (shown.size() < 2) continue;
      double best = shown.front().first;
      for (const auto& [v, ri] : shown) best = m.better == Better::higher ? std::max(best, v) : std::min(best, v);
      for (const auto& [v, ri] : shown)
        if (v == best) t.cells[ri][ci][mi].best = true;
    }
  }
}

}  // namespace

Table build_table(const TableSpec& spec, const ResultsDb& db, const std::vector<RunRecord>& runs,
                  bool ordered, const std::string& where) {
  Table t;
  t.spec = spec;
  std::vector<const RunRecord*> selected;
  for (const RunRecord& r : runs)
    if (matches(r.axes, spec.where)) selected.push_back(&r);
  table_keys(t, selected, ordered);
  fill_cells(t, db, selected, where);
  attach_paper_values(t);
  mark_best(t);
  return t;
}

std::string format_number(double v, int digits) {
  std::string s = fmt::format("{:.{}f}", v, digits);
  if (s.find_first_not_of("-0.") == std::string::npos && s.front() == '-') s.erase(0, 1);
  return s;
}

std::string cell_text(const TableCell& c, int digits) {
  switch (c.state) {
    case TableCell::State::not_run: return "— (not run)";
    case TableCell::State::no_value: return c.problem;
    case TableCell::State::value: break;
  }
  std::string s = format_number(c.mean, digits);
  if (c.n >= 2) s += " ± " + format_number(c.std, digits);
  s += fmt::format(" (n={}", c.n);
  if (!c.problem.empty()) s += "; " + c.problem;
  return s + ")";
}

}  // namespace ablate
