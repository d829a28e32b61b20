// Every claim of every experiment file on one page (`ablate claims`, results/CLAIMS.md): for each
// claim, the latest verdict any of the given databases supports, with n per side, the scale
// profile the runs were planned at, the device they ran on and the database that holds them. A
// claim no database has a finished run for is listed as "not run", never with a verdict.
//
// "Latest": a claim is evaluated on every (scale, database) pair whose planned runs the database
// holds (run ids differ between scales, so the ids say which scale a run belongs to); the pair
// whose runs finished last wins.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/report.h"

namespace ablate {

// One experiment file planned at one scale profile, as the harness expanded it.
struct ClaimsPlan {
  std::string file;              // experiment file, named in the page and in errors
  std::string experiment;        // its name
  std::string scale;             // scale profile of `runs` ("" = none)
  nlohmann::json claims;         // the file's `claims` section
  std::vector<ReportRun> runs;   // planned runs at that scale
};

struct ClaimsOverviewRow {
  std::string file, experiment;
  ClaimResult result;                  // the chosen evaluation (not run: evaluated on nothing)
  std::string scale, db;               // where the verdict comes from ("" when not run)
  std::optional<double> finished_at;   // latest finish among the experiment's runs there
  int runs_done = 0, runs_planned = 0; // the experiment's runs at that scale, done / planned
};

// Evaluates every claim of `plans` against every database; one row per claim (file order, then
// claim order). Plans of the same file at different scales must carry the same claims.
std::vector<ClaimsOverviewRow> claims_overview(const std::vector<ClaimsPlan>& plans,
                                               const std::vector<std::string>& db_paths,
                                               std::uint64_t seed = 0);

// The page: "md" (results/CLAIMS.md) or "json".
std::string render_claims_overview(const std::vector<ClaimsOverviewRow>& rows, const std::string& format,
                                   const std::string& command);

}  // namespace ablate
