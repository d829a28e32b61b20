// load_checked_experiment (app/commands.h): the harness expands the experiment file, the reports
// layer checks its report sections against the plan. The check lives here, at the top of the
// layers, because the harness cannot know what a table or a claim means.
#include "app/commands.h"
#include "reports/spec_check.h"

namespace ablate {

Experiment load_checked_experiment(const std::string& file, const std::string& scale,
                                   const std::vector<std::string>& overrides) {
  Experiment exp = load_experiment(file, scale, overrides);
  check_report_sections(exp);
  return exp;
}

}  // namespace ablate
