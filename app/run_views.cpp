// The views of recorded runs behind `ablate status`, `show` and `export` (see run_views.h): counts
// per status, one run in full, and the whole database as CSV or JSON, built from Store queries.
#include "app/run_views.h"

#include <sqlite3.h>

#include <cmath>
#include <ctime>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/eval_task.h"
#include "harness/lifecycle.h"
#include "reports/render.h"

namespace ablate {

// ---- status ----

nlohmann::json status_json(Store& store, const Experiment& experiment) {
  std::vector<std::string> ids;
  for (const PlannedRun& r : experiment.runs) ids.push_back(r.id);
  std::map<std::string, int> counts = store.status_counts(ids);
  int known = 0;
  for (const auto& [status, n] : counts) known += n;
  counts[status_name(RunStatus::queued)] += static_cast<int>(ids.size()) - known;
  nlohmann::json j;
  j["planned"] = static_cast<int>(ids.size());
  for (RunStatus s : kAllRunStatuses) j[status_name(s)] = counts[status_name(s)];
  // The evaluation records, when the experiment asks for any: counts per status, unregistered as queued.
  std::map<std::string, int> evals;
  int planned_evals = 0;
  for (const PlannedRun& r : experiment.runs)
    for (const EvalTask& t : eval_tasks_of(r)) {
      ++planned_evals;
      const std::optional<EvalTaskRow> row = store.eval_task(t.id);
      ++evals[row ? row->status : status_name(RunStatus::queued)];
    }
  if (planned_evals > 0) {
    j["evals"] = {{"planned", planned_evals}};
    for (RunStatus s : kAllRunStatuses)
      if (s != RunStatus::diverged) j["evals"][status_name(s)] = evals[status_name(s)];
  }
  return j;
}

namespace {

std::string utc_time(std::optional<double> t) {
  if (!t) return "-";
  std::time_t secs = static_cast<std::time_t>(*t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string number(double v) { return std::isnan(v) ? "nan" : fmt::format("{}", v); }

// Nested axes objects flattened to dotted keys: {"method": {"mask_ratio": 0.75}} ->
// {"method.mask_ratio": "0.75"}.
void flatten(const nlohmann::json& j, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    out[prefix] = j.is_string() ? j.get<std::string>() : j.dump();
  }
}

std::optional<double> duration(const RunRow& r) {
  if (!r.started_at || !r.finished_at) return std::nullopt;
  return *r.finished_at - *r.started_at;
}

// The experiments run `id` belongs to, joined by `sep`.
std::string experiments_text(Store& store, const std::string& id, const char* sep) {
  std::string experiments;
  for (const std::string& e : store.experiments_of(id))
    experiments += (experiments.empty() ? "" : sep) + e;
  return experiments;
}

// ---- show ----

// The run `id` names: an exact id, a unique prefix of one, or an id recorded before schema 2.
std::string resolve_run_id(Store& store, std::string_view id) {
  std::vector<std::string> ids = store.run_ids_with_prefix(id);
  if (ids.empty())
    if (std::optional<std::string> now = store.migrated_id(id)) ids = {*now};
  if (ids.empty())
    throw StoreError(SQLITE_NOTFOUND,
                     fmt::format("no run with id '{}' in {}", id, store.path().string()));
  if (ids.size() > 1 && ids[0] != id)
    throw StoreError(SQLITE_NOTFOUND, fmt::format("id prefix '{}' matches {} runs ({}, {}, ...): "
                                                  "give more characters",
                                                  id, ids.size(), ids[0], ids[1]));
  return ids[0];
}

// Status, attempts, where and when it ran, progress, how it ended, and its flattened config.
void show_lifecycle_and_config(Store& store, const RunRow& r, std::string& s) {
  auto out = std::back_inserter(s);
  fmt::format_to(out, "run {}  [{}]  experiments: {}\n", r.id, r.status,
                 experiments_text(store, r.id, ", "));
  fmt::format_to(out, "  attempts {}  seed {}  host {}  gpu {}  code {}\n", r.attempts, r.seed,
                 r.host.empty() ? "-" : r.host, r.gpu.empty() ? "-" : r.gpu,
                 r.code_version.empty() ? "-" : r.code_version);
  fmt::format_to(out, "  started {}  finished {}", utc_time(r.started_at), utc_time(r.finished_at));
  if (r.started_at && r.finished_at)
    fmt::format_to(out, "  ({:.1f} s)", *r.finished_at - *r.started_at);
  fmt::format_to(out, "\n  steps {}/{}", r.last_step ? std::to_string(*r.last_step) : "-",
                 r.total_steps ? std::to_string(*r.total_steps) : "-");
  if (r.diverged_step) fmt::format_to(out, "  diverged at step {}", *r.diverged_step);
  fmt::format_to(out, "\n");
  if (!r.exit_reason.empty()) fmt::format_to(out, "  exit: {}\n", r.exit_reason);
  if (!r.run_dir.empty()) fmt::format_to(out, "  run dir: {}\n", r.run_dir);
  fmt::format_to(out, "  config hash: {}\naxes: {}\nconfig:\n", r.config_hash, r.axes_json);
  std::map<std::string, std::string> config;
  flatten(nlohmann::json::parse(r.config_json), "", config);
  for (const auto& [k, v] : config) fmt::format_to(out, "  {} = {}\n", k, v);
}

// The evaluation results of the run's weights, then the evaluation records with their lifecycle.
void show_evaluations(Store& store, const std::string& id, std::string& s) {
  auto out = std::back_inserter(s);
  std::vector<EvalRow> evals = store.evals(id);
  fmt::format_to(out, "evals:{}\n", evals.empty() ? " none" : "");
  for (const EvalRow& e : evals)
    fmt::format_to(out, "  {:<10} {:<12} scale {:<6} {:<12} {:.6g}\n", e.protocol, e.dataset,
                   e.scale, e.metric, e.value);
  std::vector<EvalTaskRow> tasks = store.eval_tasks_of(id);
  fmt::format_to(out, "evaluation records:{}\n", tasks.empty() ? " none" : "");
  for (const EvalTaskRow& t : tasks)
    fmt::format_to(out, "  {} {:<10} {:<12} at {:<6} [{}] attempts {}{}{}\n", t.id, t.protocol, t.dataset,
                   t.point, t.status, t.attempts, t.exit_reason.empty() ? "" : "  exit: " + t.exit_reason,
                   t.run_dir.empty() ? "" : "  dir: " + t.run_dir);
}

// One line per metric series: points, step range, last and smallest value.
void show_metric_summaries(Store& store, const std::string& id, std::string& s) {
  auto out = std::back_inserter(s);
  std::vector<MetricRow> metrics = store.metrics(id);  // ordered by name, step
  fmt::format_to(out, "metrics:{}\n", metrics.empty() ? " none" : "");
  for (size_t i = 0; i < metrics.size();) {
    size_t j = i;
    double lo = std::numeric_limits<double>::infinity();
    while (j < metrics.size() && metrics[j].name == metrics[i].name) {
      if (metrics[j].value < lo) lo = metrics[j].value;
      ++j;
    }
    fmt::format_to(out, "  {:<20} {} points  steps {}..{}  last {:.6g}  min {:.6g}\n",
                   metrics[i].name, j - i, metrics[i].step, metrics[j - 1].step,
                   metrics[j - 1].value, lo);
    i = j;
  }
}

void show_env_and_artifacts(Store& store, const std::string& id, std::string& s) {
  auto out = std::back_inserter(s);
  std::map<std::string, std::string> env = store.env(id);
  fmt::format_to(out, "env:{}\n", env.empty() ? " none" : "");
  for (const auto& [k, v] : env) fmt::format_to(out, "  {} = {}\n", k, v);
  std::vector<ArtifactRow> artifacts = store.artifacts(id);
  fmt::format_to(out, "artifacts:{}\n", artifacts.empty() ? " none" : "");
  for (const ArtifactRow& a : artifacts)
    fmt::format_to(out, "  {:<10} {}  sha256 {}\n", a.kind, a.path, a.sha256);
}

}  // namespace

std::string show_run(Store& store, std::string_view id) {
  const RunRow r = *store.run(resolve_run_id(store, id));
  std::string s;
  show_lifecycle_and_config(store, r, s);
  show_evaluations(store, r.id, s);
  show_metric_summaries(store, r.id, s);
  show_env_and_artifacts(store, r.id, s);
  return s;
}

// ---- export ----

namespace {

void export_json(Store& store, std::ostream& out) {
  nlohmann::json doc;
  doc["schema_version"] = store.schema_version();
  doc["runs"] = nlohmann::json::array();
  for (const RunRow& r : store.runs()) {
    nlohmann::json j;
    j["id"] = r.id;
    j["experiments"] = store.experiments_of(r.id);
    j["status"] = r.status;
    j["attempts"] = r.attempts;
    j["seed"] = r.seed;
    j["config_hash"] = r.config_hash;
    j["code_version"] = r.code_version;
    j["host"] = r.host;
    j["gpu"] = r.gpu;
    j["started_at"] = r.started_at ? nlohmann::json(*r.started_at) : nlohmann::json();
    j["finished_at"] = r.finished_at ? nlohmann::json(*r.finished_at) : nlohmann::json();
    j["exit_reason"] = r.exit_reason;
    j["last_step"] = r.last_step ? nlohmann::json(*r.last_step) : nlohmann::json();
    j["total_steps"] = r.total_steps ? nlohmann::json(*r.total_steps) : nlohmann::json();
    j["diverged_step"] = r.diverged_step ? nlohmann::json(*r.diverged_step) : nlohmann::json();
    j["config"] = nlohmann::json::parse(r.config_json);
    j["axes"] = nlohmann::json::parse(r.axes_json);
    nlohmann::json metrics = nlohmann::json::object();
    for (const MetricRow& m : store.metrics(r.id)) {
      nlohmann::json& series = metrics[m.name];
      series["step"].push_back(m.step);
      series["epoch"].push_back(m.epoch);
      series["value"].push_back(m.value);  // NaN is written as null
    }
    j["metrics"] = std::move(metrics);
    j["evals"] = nlohmann::json::array();
    for (const EvalRow& e : store.evals(r.id))
      j["evals"].push_back({{"protocol", e.protocol}, {"dataset", e.dataset}, {"scale", e.scale},
                            {"metric", e.metric}, {"value", e.value}});
    j["env"] = store.env(r.id);
    j["artifacts"] = nlohmann::json::array();
    for (const ArtifactRow& a : store.artifacts(r.id))
      j["artifacts"].push_back({{"kind", a.kind}, {"path", a.path}, {"sha256", a.sha256}});
    doc["runs"].push_back(std::move(j));
  }
  out << doc.dump(2) << "\n";
}

void export_csv(Store& store, std::ostream& out) {
  struct Line {
    RunRow run;
    std::map<std::string, std::string> cells;  // axis.*, eval.*, metric.* columns
  };
  std::vector<Line> lines;
  std::set<std::string> extra;
  for (RunRow& r : store.runs()) {
    Line l{std::move(r), {}};
    std::map<std::string, std::string> axes;
    flatten(nlohmann::json::parse(l.run.axes_json), "", axes);
    for (const auto& [k, v] : axes) l.cells["axis." + k] = v;
    for (const EvalRow& e : store.evals(l.run.id))
      l.cells[fmt::format("eval.{}.{}.{}.{}", e.protocol, e.dataset, e.scale, e.metric)] =
          number(e.value);
    for (const MetricRow& m : store.metrics(l.run.id))  // ordered by step: the last one wins
      l.cells["metric." + m.name] = number(m.value);
    for (const auto& [k, v] : l.cells) extra.insert(k);
    lines.push_back(std::move(l));
  }
  const char* fixed[] = {"id", "experiments", "status", "attempts", "seed", "config_hash",
                         "code_version", "host", "gpu", "started_at", "finished_at", "duration_s",
                         "last_step", "total_steps", "diverged_step", "exit_reason"};
  std::vector<std::string> header(std::begin(fixed), std::end(fixed));
  header.insert(header.end(), extra.begin(), extra.end());
  out << csv_row(header);
  auto opt = [](const auto& v) { return v ? fmt::format("{}", *v) : std::string(); };
  for (const Line& l : lines) {
    const RunRow& r = l.run;
    std::vector<std::string> row = {r.id, experiments_text(store, r.id, ";"), r.status,
                                    std::to_string(r.attempts), std::to_string(r.seed),
                                    r.config_hash, r.code_version, r.host, r.gpu,
                                    opt(r.started_at), opt(r.finished_at), opt(duration(r)),
                                    opt(r.last_step), opt(r.total_steps), opt(r.diverged_step),
                                    r.exit_reason};
    for (const std::string& k : extra) {
      auto it = l.cells.find(k);
      row.push_back(it == l.cells.end() ? "" : it->second);
    }
    out << csv_row(row);
  }
}

}  // namespace

void export_db(Store& store, std::string_view fmt, std::ostream& out) {
  if (fmt == "json") return export_json(store, out);
  if (fmt == "csv") return export_csv(store, out);
  throw ConfigError("<export>", "format", fmt::format("unknown export format '{}'", fmt),
                    "csv or json");
}

}  // namespace ablate
