// Database-against-database comparison (reports/compare.h).
#include "reports/compare.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <set>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/config_io.h"
#include "reports/spec_reader.h"
#include "reports/stats.h"

namespace ablate {
namespace {

// More extra seeds per cell than this is a typo, not a re-run: they belong in matrix.seeds.
constexpr int kMaxRerunsPerCell = 100;

using CellMap = std::map<std::pair<std::string, nlohmann::json>, std::vector<const RunRecord*>>;

// Cells by experiment and axes. Runs of a compared experiment (`experiment` != "") are all filed
// under it: runs.experiment names only the first experiment that planned a shared run, so keying
// on it would split the cell (and leave re-runs made under `experiment` out of it).
CellMap group(const std::vector<RunRecord>& runs, const std::string& experiment) {
  CellMap cells;
  for (const RunRecord& r : runs)
    cells[{experiment.empty() ? r.experiment : experiment, cell_key(r.axes)}].push_back(&r);
  return cells;
}

TrackedMetric parse_tracked(const nlohmann::json& j, const std::string& where, const std::string& path) {
  SpecReader r(j, where, path);
  r.only({"source", "better", "rel_tol", "abs_tol", "scale"});
  TrackedMetric m;
  m.source = MetricSource::parse(r.string("source"), where, r.key_path("source"));
  m.better = r.choice("better", Direction::higher);
  m.rel_tol = r.number("rel_tol", 0.0);
  m.abs_tol = r.number("abs_tol", 0.0);
  m.scale = r.number("scale", 1.0);
  if (m.rel_tol < 0 || m.abs_tol < 0) r.fail(nullptr, "tolerances must be >= 0");
  return m;
}

}  // namespace

CompareSpec parse_compare(const nlohmann::json& section, const std::string& where) {
  CompareSpec spec;
  if (section.is_null()) return spec;
  SpecReader r(section, where, "compare");
  r.only({"alpha", "defaults", "metrics"});
  spec.alpha = r.number("alpha", 0.05);
  if (!(spec.alpha > 0 && spec.alpha < 1)) r.fail("alpha", "expected 0 < alpha < 1");
  if (section.contains("defaults")) {
    if (!section["defaults"].is_boolean()) r.fail("defaults", "expected true or false");
    spec.defaults = section["defaults"].get<bool>();
  }
  const nlohmann::json& list = r.list("metrics");
  for (std::size_t i = 0; i < list.size(); ++i)
    spec.metrics.push_back(parse_tracked(list[i], where, fmt::format("compare.metrics[{}]", i)));
  return spec;
}

namespace {

// Tracked metrics from the `compare` section over the defaults (a listed source replaces the
// default of the same source; `defaults: false` drops the defaults).
std::vector<TrackedMetric> tracked_metrics(const CompareRequest& req, const std::vector<RunRecord>& base,
                                           const ResultsDb& db_b, double& alpha) {
  const CompareSpec spec = parse_compare(req.tracked, req.source.empty() ? "<compare>" : req.source);
  const bool defaults = spec.defaults;
  const std::vector<TrackedMetric>& listed = spec.metrics;
  alpha = spec.alpha;
  std::vector<TrackedMetric> out;
  if (defaults) {
    out = default_tracked_metrics();
    std::set<std::string> seen;
    for (const RunRecord& r : base)
      for (const EvalRecord& e : db_b.evals(r)) {
        const std::string text =
            fmt::format("eval:{}:{}:{:g}:{}", e.protocol, e.dataset, e.scale, e.metric);
        if (!seen.insert(text).second) continue;
        TrackedMetric m;
        m.source = MetricSource::parse(text, "default eval metric");
        m.abs_tol = 1.0;
        m.scale = 100;
        out.push_back(m);
      }
  }
  for (const TrackedMetric& m : listed) {
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const TrackedMetric& d) { return d.source.text == m.source.text; });
    if (it != out.end()) *it = m;
    else out.push_back(m);
  }
  return out;
}

// The run's identity (config_id: fields added later are left out at their default, so a
// database recorded before such a field existed compares equal) without its seed.
nlohmann::json seedless_config(const RunRecord& r) {
  if (!r.config.is_object()) return r.config;
  nlohmann::json c;
  try {
    c = config_id(config_from_json(r.config));
  } catch (const ConfigError&) {  // a config this build cannot read (another version): as stored
    c = r.config;
  }
  c.erase(kSeedAxis);
  return c;
}

void judge(CellComparison& c, double alpha) {
  const TrackedMetric& m = c.metric;
  const double ma = mean(c.a.values), mb = mean(c.b.values);
  c.change = (ma - mb) * m.scale;
  c.rel_change = mb != 0 ? (ma - mb) / std::fabs(mb) : 0;
  c.tolerance = std::max(m.abs_tol, m.rel_tol * std::fabs(mb * m.scale));
  const double worse = m.better == Direction::higher ? -c.change : c.change;  // > 0: A is worse
  if (c.a.values.size() >= 2 && c.b.values.size() >= 2) {
    const TestResult t = welch_t_test(c.a.values, c.b.values);
    c.tested = true;
    c.p_worse = m.better == Direction::higher ? t.p_less : t.p_greater;
    const double p_better = m.better == Direction::higher ? t.p_greater : t.p_less;
    if (worse > c.tolerance && c.p_worse < alpha) {
      c.status = CompareStatus::regression;
    } else if (worse > c.tolerance) {
      c.status = CompareStatus::borderline;
      c.borderline = true;
      c.note = "beyond tolerance but not significant: re-run with more seeds";
    } else if (-worse > c.tolerance && p_better < alpha) {
      c.status = CompareStatus::improvement;
    } else {
      c.status = CompareStatus::ok;
    }
    return;
  }
  c.note = "1 seed on a side: tolerance only, no significance test";
  c.status = worse > c.tolerance    ? CompareStatus::regression
             : -worse > c.tolerance ? CompareStatus::improvement
                                    : CompareStatus::ok;
  // Within a quarter of the tolerance of the threshold another seed could flip the status; and a
  // regression called on one new seed against >= 2 baseline seeds becomes testable with one more.
  c.borderline = (c.tolerance > 0 && std::fabs(worse - c.tolerance) <= 0.25 * c.tolerance) ||
                 (c.status == CompareStatus::regression && c.a.values.size() == 1 && c.b.values.size() >= 2);
}

// One order per cell with a borderline comparison: N new seeds after the largest seed of any of
// the cell's runs in the new database (failed ones included, so a seed is never reused), repeating
// the config of a done run of the cell (any run when none is done).
std::vector<RerunOrder> rerun_orders(const CompareRequest& req, const CompareResult& r) {
  const ResultsDb db_a(req.db);
  const std::vector<RunRecord> runs_a = db_a.runs(req.experiment);
  const CellMap cells_a = group(runs_a, req.experiment);
  std::vector<RerunOrder> orders;
  for (const CellComparison& c : r.cells) {
    if (!c.borderline) continue;
    const bool seen = std::any_of(orders.begin(), orders.end(), [&](const RerunOrder& o) {
      return o.experiment == c.experiment && o.cell == c.cell;
    });
    if (seen) continue;
    const std::vector<const RunRecord*>& runs = cells_a.at({c.experiment, c.cell});
    const RunRecord* tmpl = runs.front();
    std::int64_t max_seed = runs.front()->seed;
    for (const RunRecord* run : runs) {
      max_seed = std::max(max_seed, run->seed);
      if (is_done(*run) && !is_done(*tmpl)) tmpl = run;
    }
    // The compared experiment, not runs.experiment (the first to plan a shared run): the re-runs
    // are filed under the order's experiment, and the comparison after them reads that one.
    RerunOrder o{req.experiment.empty() ? c.experiment : req.experiment, c.cell, tmpl->axes,
                 tmpl->config, {}};
    for (int i = 1; i <= req.rerun_borderline; ++i) o.seeds.push_back(max_seed + i);
    orders.push_back(std::move(o));
  }
  return orders;
}

std::string seeds_label(const std::vector<std::int64_t>& seeds) {
  std::string s;
  for (std::int64_t x : seeds) s += (s.empty() ? "" : ", ") + std::to_string(x);
  return s;
}

std::string judgement_label(CompareStatus status, bool tested, double p) {
  if (tested) return fmt::format("{} (p {:.3g})", name_of(status), p);
  return status == CompareStatus::incomparable ? name_of(status) : name_of(status) + std::string(" (tolerance only)");
}

std::string side(const Sample& s, double scale) {
  if (s.values.empty()) return "—";
  std::vector<double> v = s.values;
  for (double& x : v) x *= scale;
  return v.size() > 1 ? fmt::format("{:.4g} ± {:.2g} (n={})", mean(v), sample_std(v), v.size())
                      : fmt::format("{:.4g} (n=1)", mean(v));
}

}  // namespace

std::vector<TrackedMetric> default_tracked_metrics() {
  TrackedMetric throughput;
  throughput.source = MetricSource::parse("metric:images_per_s:median", "default metric");
  throughput.rel_tol = 0.05;
  TrackedMetric memory;
  memory.source = MetricSource::parse("metric:peak_mem_mb:max", "default metric");
  memory.better = Direction::lower;
  memory.rel_tol = 0.10;
  return {throughput, memory};
}

int CompareResult::regressions() const {
  return static_cast<int>(std::count_if(cells.begin(), cells.end(), [](const CellComparison& c) {
    return c.status == CompareStatus::regression;
  }));
}

CompareResult compare_databases(const CompareRequest& req) {
  const ResultsDb db_a(req.db), db_b(req.against);
  const std::vector<RunRecord> runs_a = db_a.runs(req.experiment), runs_b = db_b.runs(req.experiment);
  CompareResult res;
  res.db = req.db;
  res.against = req.against;
  const std::vector<TrackedMetric> tracked = tracked_metrics(req, runs_b, db_b, res.alpha);
  const CellMap cells_a = group(runs_a, req.experiment), cells_b = group(runs_b, req.experiment);
  for (const auto& [key, rb] : cells_b) {
    auto it = cells_a.find(key);
    const std::string label = key.first + ": " + cell_label(key.second);
    if (it == cells_a.end()) {
      res.notes.push_back(label + " is only in the baseline");
      continue;
    }
    const std::vector<const RunRecord*>& ra = it->second;
    const nlohmann::json diff = nlohmann::json::diff(seedless_config(*rb.front()), seedless_config(*ra.front()));
    if (!diff.empty()) {
      std::string paths;
      for (const auto& op : diff) paths += (paths.empty() ? "" : ", ") + op.value("path", std::string("?"));
      res.notes.push_back(label + ": configs differ at " + paths);
    }
    for (const TrackedMetric& m : tracked) {
      CellComparison c;
      c.experiment = key.first;
      c.cell = key.second;
      c.metric = m;
      c.a = collect_sample(db_a, ra, m.source);
      c.b = collect_sample(db_b, rb, m.source);
      if (c.a.values.empty() && c.b.values.empty()) continue;  // not logged by this cell at all
      if (c.a.values.empty() || c.b.values.empty()) {
        c.status = CompareStatus::incomparable;
        c.note = c.a.values.empty() ? "no value in the new database" : "no value in the baseline";
        const std::string problems = summarize_problems(c.a.values.empty() ? c.a.problems : c.b.problems);
        if (!problems.empty()) c.note += " (" + problems + ")";
      } else {
        judge(c, res.alpha);
      }
      res.cells.push_back(std::move(c));
    }
  }
  for (const auto& [key, ra] : cells_a)
    if (!cells_b.count(key)) res.notes.push_back(key.first + ": " + cell_label(key.second) + " is new");
  return res;
}

CompareResult compare_with_reruns(const CompareRequest& req, const Rerunner& rerun) {
  if (req.rerun_borderline < 0 || req.rerun_borderline > kMaxRerunsPerCell)
    throw ConfigError("<command line>", "--rerun-borderline",
                      fmt::format("{} is not a number of extra seeds from 0 to {}", req.rerun_borderline,
                                  kMaxRerunsPerCell),
                      "more seeds belong in the experiment file's matrix.seeds");
  CompareResult before = compare_databases(req);
  before.rerun_borderline = req.rerun_borderline;
  if (req.rerun_borderline == 0) return before;
  ABLATE_CHECK(static_cast<bool>(rerun), "compare: re-runs asked for without a runner");
  const std::vector<RerunOrder> orders = rerun_orders(req, before);
  if (orders.empty()) {
    before.rerun_note = "no borderline cell: nothing re-run";
    return before;
  }
  RerunOutcome outcome;
  try {
    outcome = rerun(orders);
  } catch (const std::exception& e) {
    outcome = RerunOutcome{false, e.what()};
  }
  CompareResult after = compare_databases(req);
  after.rerun_borderline = req.rerun_borderline;
  after.reruns = orders;
  if (!outcome.ok)
    after.rerun_note = "re-running failed: " + outcome.message + "; judged on the runs that exist";
  for (CellComparison& c : after.cells) {
    auto order = std::find_if(orders.begin(), orders.end(), [&](const RerunOrder& o) {
      return o.experiment == c.experiment && o.cell == c.cell;
    });
    if (order == orders.end()) continue;
    c.reruns = static_cast<int>(order->seeds.size());
    auto old = std::find_if(before.cells.begin(), before.cells.end(), [&](const CellComparison& b) {
      return b.experiment == c.experiment && b.cell == c.cell && b.metric.source.text == c.metric.source.text;
    });
    if (old == before.cells.end()) continue;  // not compared before: neither side had a value
    c.status_before = old->status;
    c.n_before = old->a.values.size();
    c.p_before = old->p_worse;
    c.tested_before = old->tested;
  }
  return after;
}

std::string render_compare(const CompareResult& r, const std::string& format) {
  if (format == "json") {
    nlohmann::json j;
    j["db"] = r.db;
    j["against"] = r.against;
    j["alpha"] = r.alpha;
    j["regressions"] = r.regressions();
    j["notes"] = r.notes;
    j["cells"] = nlohmann::json::array();
    j["borderline"] = nlohmann::json::array();
    for (const CellComparison& c : r.cells) {
      nlohmann::json e = {{"experiment", c.experiment}, {"cell", c.cell},
                          {"metric", c.metric.source.text}, {"status", name_of(c.status)},
                          {"borderline", c.borderline}, {"change", c.change},
                          {"rel_change", c.rel_change}, {"tolerance", c.tolerance},
                          {"p_worse", c.tested ? nlohmann::json(c.p_worse) : nlohmann::json()},
                          {"n_new", c.a.values.size()}, {"n_baseline", c.b.values.size()},
                          {"runs_new", c.a.run_ids}, {"runs_baseline", c.b.run_ids},
                          {"note", c.note}};
      if (c.reruns > 0) {
        e["reruns"] = c.reruns;
        e["status_before"] = c.status_before ? name_of(*c.status_before) : "";
        e["n_new_before"] = c.n_before;
        e["p_worse_before"] = c.tested_before ? nlohmann::json(c.p_before) : nlohmann::json();
      }
      j["cells"].push_back(e);
      if (c.borderline) j["borderline"].push_back(e);
    }
    j["rerun_borderline"] = r.rerun_borderline;
    j["rerun_note"] = r.rerun_note;
    j["reruns"] = nlohmann::json::array();
    for (const RerunOrder& o : r.reruns)
      j["reruns"].push_back({{"experiment", o.experiment}, {"cell", o.cell}, {"seeds", o.seeds}});
    return j.dump(2) + "\n";
  }
  if (format != "md")
    throw ConfigError("<command line>", "format", "unknown compare format '" + format + "'", "md or json");
  std::string out = fmt::format("# Compare `{}` against baseline `{}`\n\n", r.db, r.against);
  out += "| experiment | cell | metric | baseline | new | change | tolerance | p(worse) | status | note |\n"
         "|---|---|---|---|---|--:|--:|--:|---|---|\n";
  for (const CellComparison& c : r.cells) {
    const bool has = c.status != CompareStatus::incomparable;
    out += fmt::format(
        "| {} | {} | `{}` | {} | {} | {} | {} | {} | {}{} | {} |\n", c.experiment,
        cell_label(c.cell), c.metric.source.text, side(c.b, c.metric.scale), side(c.a, c.metric.scale),
        has ? fmt::format("{:+.4g} ({:+.1f}%)", c.change, 100 * c.rel_change) : "—",
        has ? fmt::format("{:.4g}", c.tolerance) : "—",
        c.tested ? fmt::format("{:.3g}", c.p_worse) : "—",
        c.status == CompareStatus::regression ? "**regression**" : name_of(c.status), c.borderline && c.status != CompareStatus::borderline ? " (borderline)" : "",
        c.note);
  }
  const auto borderline = std::count_if(r.cells.begin(), r.cells.end(),
                                        [](const CellComparison& c) { return c.borderline; });
  out += fmt::format("\n{} regression(s), {} borderline (alpha = {:g}).\n", r.regressions(),
                     borderline, r.alpha);
  for (const std::string& n : r.notes) out += "- " + n + "\n";
  if (r.rerun_borderline == 0) return out;
  out += fmt::format("\n## Borderline re-runs ({} more seed(s) per borderline cell)\n\n", r.rerun_borderline);
  if (!r.rerun_note.empty()) out += r.rerun_note + ".\n\n";
  if (r.reruns.empty()) return out;
  out += "| experiment | cell | metric | new seeds | n new (before → after) | before | after |\n"
         "|---|---|---|---|--:|---|---|\n";
  for (const CellComparison& c : r.cells) {
    if (c.reruns == 0) continue;
    auto order = std::find_if(r.reruns.begin(), r.reruns.end(), [&](const RerunOrder& o) {
      return o.experiment == c.experiment && o.cell == c.cell;
    });
    out += fmt::format("| {} | {} | `{}` | {} | {} → {} | {} | {} |\n", c.experiment, cell_label(c.cell),
                       c.metric.source.text, order == r.reruns.end() ? "?" : seeds_label(order->seeds),
                       c.n_before, c.a.values.size(),
                       c.status_before ? judgement_label(*c.status_before, c.tested_before, c.p_before) : "—",
                       judgement_label(c.status, c.tested, c.p_worse));
  }
  out += fmt::format("\n{} cell(s) re-run; {} regression(s) after the re-runs.\n", r.reruns.size(),
                     r.regressions());
  return out;
}

int compare_main(const CompareRequest& req, std::ostream& out, const Rerunner& rerun) {
  const CompareResult r = compare_with_reruns(req, rerun);
  out << render_compare(r, req.format);
  return r.regressions() > 0 ? 1 : 0;
}

}  // namespace ablate
