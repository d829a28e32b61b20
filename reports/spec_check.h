// Checks an experiment's report sections (`tables`, `claims`, `compare`) when the experiment is
// loaded, so `ablate plan` and `ablate run` reject a typo there before any run, instead of
// `ablate report` failing (or showing empty cells) after the runs have finished. Beyond what
// parse_tables / parse_claims / parse_compare check on their own, the sections must fit the plan:
//   - table rows, columns, `where` filters and labels, and claim selectors, name matrix axes;
//   - every value a table filter or a claim side selects by is a value some planned run has, and
//     each claim side selects at least one planned run;
//   - every `eval:` source names an evaluation some planned run records (harness/eval_results.h).
// (`metric:` sources are only checked for syntax: which series a run logs depends on its method.)
// Every error is a ConfigError at the file:line:col where the offending value was written.
#pragma once

#include "harness/experiment.h"

namespace ablate {

void check_report_sections(const Experiment& experiment);

}  // namespace ablate
