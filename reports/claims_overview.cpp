// The one-page claims overview (reports/claims_overview.h).
#include "reports/claims_overview.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "harness/check.h"

namespace ablate {
namespace {

struct Candidate {
  ClaimResult result;
  std::string scale, db;
  std::optional<double> finished_at;
  int done = 0, planned = 0;
};

// Later finish wins; a candidate with a finish time beats one without.
bool later(const Candidate& x, const std::optional<Candidate>& best) {
  if (!best) return true;
  return x.finished_at.value_or(-1) > best->finished_at.value_or(-1);
}

std::string utc_text(double t) {
  const std::time_t s = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

std::string mean_text(const Sample& s) {
  return s.values.empty() ? std::string("—") : fmt::format("{:.4g}", mean(s.values));
}

// Our numbers in a few characters: "0.62 vs 0.59", a chain "0.51 → 0.55 → 0.58", counts.
std::string ours_text(const ClaimResult& c) {
  if (!c.ran) return "—";
  if (c.spec.relation == Relation::fewer_diverged)
    return fmt::format("{}/{} vs {}/{} diverged", c.diverged_a.diverged, c.diverged_a.finished,
                       c.diverged_b.diverged, c.diverged_b.finished);
  if (c.spec.relation == Relation::increasing) {
    std::string s;
    for (const Sample& x : c.chain) s += (s.empty() ? "" : " → ") + mean_text(x);
    return s;
  }
  std::string s = mean_text(c.a) + " vs " + mean_text(c.b);
  if (c.spec.relation == Relation::ratio_at_least && !c.a.values.empty() && !c.b.values.empty() && mean(c.b.values) != 0)
    s += fmt::format(" ({:.2f}×)", mean(c.a.values) / mean(c.b.values));
  return s;
}

std::string n_text(const ClaimResult& c) {
  if (!c.ran) return "—";
  if (c.spec.relation == Relation::increasing) {
    std::string s;
    for (const Sample& x : c.chain) s += (s.empty() ? "" : "/") + std::to_string(x.values.size());
    return s;
  }
  return fmt::format("{} vs {}", c.stats.n_a, c.stats.n_b);
}

std::string p_text(const ClaimResult& c) {
  if (!c.ran || c.stats.test.test.empty()) return "—";
  return fmt::format("{:.3g}", c.stats.p_claimed);
}

std::string md_cell(std::string s) {
  std::string out;
  for (char ch : s) out += ch == '|' ? std::string("\\|") : ch == '\n' ? std::string(" ") : std::string(1, ch);
  return out;
}

std::string devices_text(const ClaimResult& c) {
  std::string s;
  for (const std::string& d : c.devices) s += (s.empty() ? "" : "; ") + d;
  return s.empty() ? "—" : s;
}

}  // namespace

std::vector<ClaimsOverviewRow> claims_overview(const std::vector<ClaimsPlan>& plans,
                                               const std::vector<std::string>& db_paths, std::uint64_t seed) {
  std::vector<std::unique_ptr<ResultsDb>> dbs;
  for (const std::string& p : db_paths) dbs.push_back(std::make_unique<ResultsDb>(p));
  // Per file, its claims in file order and the latest candidate per claim.
  std::vector<std::string> files;
  std::map<std::string, std::vector<ClaimSpec>> specs;
  std::map<std::string, std::string> experiment_of;
  std::map<std::pair<std::string, std::string>, std::optional<Candidate>> best;
  for (const ClaimsPlan& plan : plans) {
    const std::vector<ClaimSpec> claims = parse_claims(plan.claims, plan.file);
    if (!specs.count(plan.file)) {
      files.push_back(plan.file);
      specs[plan.file] = claims;
      experiment_of[plan.file] = plan.experiment;
    }
    if (claims.empty()) continue;
    for (const auto& db : dbs) {
      std::vector<std::string> notes;
      const std::vector<RunRecord> runs = report_runs(*db, plan.experiment, plan.runs, notes);
      Candidate base;
      base.scale = plan.scale;
      base.db = db->path();
      for (const RunRecord& r : runs) {
        ++base.planned;
        if (is_done(r)) ++base.done;
        if (r.finished_at) base.finished_at = std::max(base.finished_at.value_or(*r.finished_at), *r.finished_at);
      }
      for (const ClaimSpec& spec : claims) {
        Candidate c = base;
        c.result = evaluate_claim(spec, *db, runs, seed, plan.file);
        if (!c.result.ran) continue;
        auto& slot = best[{plan.file, spec.id}];
        if (later(c, slot)) slot = std::move(c);
      }
    }
  }
  std::vector<ClaimsOverviewRow> rows;
  for (const std::string& file : files)
    for (const ClaimSpec& spec : specs[file]) {
      ClaimsOverviewRow row;
      row.file = file;
      row.experiment = experiment_of[file];
      const auto& slot = best[{file, spec.id}];
      if (slot) {
        row.result = slot->result;
        row.scale = slot->scale;
        row.db = slot->db;
        row.finished_at = slot->finished_at;
        row.runs_done = slot->done;
        row.runs_planned = slot->planned;
      } else {
        row.result.spec = spec;  // ran = false: "not run"
      }
      rows.push_back(std::move(row));
    }
  return rows;
}

std::string render_claims_overview(const std::vector<ClaimsOverviewRow>& rows, const std::string& format,
                                   const std::string& command) {
  if (format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const ClaimsOverviewRow& r : rows) {
      const ClaimResult& c = r.result;
      out.push_back({{"file", r.file},
                     {"experiment", r.experiment},
                     {"claim", c.spec.id},
                     {"text", c.spec.text},
                     {"relation", relation_text(c.spec)},
                     {"paper", c.spec.paper},
                     {"verdict", c.ran ? to_string(c.stats.verdict) : "not run"},
                     {"n_a", c.stats.n_a},
                     {"n_b", c.stats.n_b},
                     {"p", c.ran && !c.stats.test.test.empty() ? nlohmann::json(c.stats.p_claimed) : nlohmann::json()},
                     {"test", c.stats.test.test},
                     {"scale", r.scale},
                     {"devices", c.devices},
                     {"db", r.db},
                     {"runs_done", r.runs_done},
                     {"runs_planned", r.runs_planned},
                     {"finished_at", r.finished_at ? nlohmann::json(*r.finished_at) : nlohmann::json()},
                     {"note", c.stats.note}});
    }
    return out.dump(2) + "\n";
  }
  ABLATE_CHECK(format == "md", "unknown claims overview format '{}'", format);
  std::string out =
      "# Claims of the papers and where they stand\n\n"
      "Generated by `" + command + "`; nothing here is written by hand. Each verdict names the scale\n"
      "profile its runs were planned at: a *smoke*-scale verdict comes from a 0.1M-parameter ViT trained\n"
      "for seconds on a CPU and checks the pipeline, not the paper. *not run* means no database given holds\n"
      "a finished run of the claim at any scale. Our numbers are per-seed means in the metric's stored\n"
      "units (fractions for accuracies); the test and its notes are in each experiment's report.\n\n"
      "| experiment | claim | statement | paper | ours (a vs b) | n | p | verdict | device | database · runs |\n"
      "|---|---|---|---|---|---|--:|---|---|---|\n";
  for (const ClaimsOverviewRow& r : rows) {
    const ClaimResult& c = r.result;
    const std::string where =
        c.ran ? fmt::format("`{}` · {}/{} done{}", r.db, r.runs_done, r.runs_planned,
                            r.finished_at ? ", last " + utc_text(*r.finished_at) : std::string())
              : std::string("—");
    out += fmt::format("| `{}` | {} | {} | {} | {} | {} | {} | **{}** | {} | {} |\n", md_cell(r.file),
                       md_cell(c.spec.id), md_cell(c.spec.text + " (" + relation_text(c.spec) + ")"),
                       md_cell(c.spec.paper.empty() ? "—" : c.spec.paper), md_cell(ours_text(c)), n_text(c),
                       p_text(c), verdict_label(c, r.scale), md_cell(devices_text(c)), md_cell(where));
  }
  int counts[4] = {0, 0, 0, 0};  // reproduced, contradicted, inconclusive, not run
  for (const ClaimsOverviewRow& r : rows) ++counts[r.result.ran ? static_cast<int>(r.result.stats.verdict) : 3];
  out += fmt::format("\n{} claims: {} reproduced, {} contradicted, {} inconclusive, {} not run (at the scales named).\n",
                     rows.size(), counts[0], counts[1], counts[2], counts[3]);
  return out;
}

}  // namespace ablate
