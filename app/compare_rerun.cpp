// The Rerunner behind `ablate compare --rerun-borderline N` (app/commands.h): the comparison
// (reports/compare.h) decides which cells need more seeds; this turns each order into planned runs
// that repeat the cell's stored config with the new seeds and runs them with the local runner into
// the new database, one run_experiment per experiment so the runs join that experiment there.
#include <map>

#include <fmt/format.h>

#include "app/commands.h"
#include "app/data_source.h"
#include "harness/reseed.h"

namespace ablate {

Rerunner local_rerunner(const RunnerOptions& options) {
  return [options](const std::vector<RerunOrder>& orders) {
    std::map<std::string, Experiment> by_experiment;
    for (const RerunOrder& o : orders) {
      Experiment& e = by_experiment[o.experiment];
      e.name = o.experiment;
      for (std::int64_t seed : o.seeds) e.runs.push_back(reseeded_run(o.config, o.axes, seed));
    }
    RerunOutcome outcome;
    for (const auto& [name, exp] : by_experiment) {
      pack_datasets(exp.runs);
      fmt::print(stderr, "compare: re-running {} run(s) of {} into {}\n", exp.runs.size(), name, options.db);
      const int rc = run_experiment(exp, options);
      if (rc == 0) continue;
      outcome.ok = false;
      outcome.message += fmt::format("{}{}: {}", outcome.message.empty() ? "" : "; ", name,
                                     rc == 130 ? "interrupted"
                                               : "some re-runs did not finish (the runner's lines above say why)");
      if (rc == 130) break;  // a stop signal: leave the other experiments alone
    }
    return outcome;
  };
}

}  // namespace ablate
