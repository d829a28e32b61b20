// Paper-style result tables built from the results database: rows and column groups from
// experiment axes, one cell per metric aggregated over seeds (mean ± sample std, n), the best cell
// of each column marked, the paper's number and our delta beside it, and runs that produced no
// number shown as what happened to them. The YAML schema of a table is documented in
// reports/README.md; renderers (reports/render.h) only format what is computed here.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/choice.h"
#include "reports/metric_source.h"
#include "reports/results_db.h"

namespace ablate {

// A table metric's `better:`: which cell of each column is bold (none: no cell is).
enum class Better { higher, lower, none };
constexpr std::array<const char*, 3> choice_names(Better) { return {"higher", "lower", "none"}; }

struct MetricSpec {
  std::string name;      // unique within the table; paper entries refer to it
  std::string label;     // column header
  MetricSource source;
  double scale = 1.0;    // display = stored value * scale (e.g. 100 for %, 60 for per minute)
  Better better = Better::none;
  int digits = 2;
};

struct PaperValue {
  nlohmann::json row, col;  // selectors over the row / column axes
  std::string metric;       // MetricSpec::name
  double value = 0;         // in display units (after scale)
};

struct TableSpec {
  std::string name, caption;
  std::vector<std::string> rows, cols;  // axis keys
  nlohmann::json where = nlohmann::json::object();   // filter: only runs matching it
  nlohmann::json labels = nlohmann::json::object();  // axis key -> header text
  std::vector<MetricSpec> metrics;
  std::vector<PaperValue> paper;

  std::string axis_label(const std::string& key) const;
};

// Parses the `tables` section (a list; null = none). `where` is the experiment file for errors.
std::vector<TableSpec> parse_tables(const nlohmann::json& tables, const std::string& where);

struct TableCell {
  enum class State { value, no_value, not_run };
  State state = State::not_run;
  double mean = 0, std = 0;  // display units
  std::size_t n = 0;         // seeds that contributed
  std::size_t runs = 0;      // runs in the cell
  std::string problem;       // runs without a number: "diverged @ step 1234", "2 × failed: OOM"
  bool best = false;
  std::optional<double> paper, delta;  // delta = mean - paper
};

struct Table {
  TableSpec spec;
  std::vector<nlohmann::json> row_keys;  // objects over spec.rows
  std::vector<nlohmann::json> col_keys;  // objects over spec.cols; one empty object without cols
  std::vector<std::vector<std::vector<TableCell>>> cells;  // [row][col][metric]
  std::vector<bool> metric_has_paper;                      // [metric]

  const TableCell& at(std::size_t r, std::size_t c, std::size_t m) const { return cells[r][c][m]; }
  std::string row_label(std::size_t r) const;  // "near-far-random" or "a / b" for several axes
  std::string col_label(std::size_t c) const;
};

// `runs` are the experiment's runs (with the axes to use); `ordered` keeps their order for rows
// and columns instead of sorting axis values. Throws ConfigError when a cell would mix runs that
// differ in an axis that is neither a row, a column nor the seed.
Table build_table(const TableSpec& spec, const ResultsDb& db, const std::vector<RunRecord>& runs,
                  bool ordered, const std::string& where);

// Fixed-point with `digits` decimals, never "-0.0".
std::string format_number(double v, int digits);
// "92.13 ± 0.41 (n=3)", "92.13 (n=1)", the problem text, or "— (not run)"; Unicode, no markup.
std::string cell_text(const TableCell& c, int digits);

}  // namespace ablate
