// What `ablate status`, `ablate show` and `ablate export` print of the recorded runs. The store
// (harness/store.h) only answers queries; these views choose what to show and in which format.
// They need no LibTorch, so they live in a library of their own that tests/app links.
#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "harness/experiment.h"
#include "harness/store.h"

namespace ablate {

// {"planned", "done", "failed", "diverged", "running", "queued", "lost"} counts over the runs of
// `experiment`. Planned runs missing from the database count as queued. When the runs ask for
// evaluations, "evals" holds the same counts (diverged aside) over their evaluation records.
nlohmann::json status_json(Store& store, const Experiment& experiment);

// Human-readable report of one run (id, unique id prefix, or an id recorded before schema version
// 2): lifecycle, config, axes, evals, a summary of every metric series, environment and artifacts.
// Throws StoreError when no run or several runs match.
std::string show_run(Store& store, std::string_view id);

// Writes the whole database: fmt "json" (one object per run with its config, axes, metric series,
// evals, env and artifacts) or "csv" (one row per run: lifecycle columns, axis.*, eval.* and the
// last value of each metric as metric.*). Throws ConfigError on another fmt.
void export_db(Store& store, std::string_view fmt, std::ostream& out);

}  // namespace ablate
