// Experiment files (experiments/*.yaml): a base config, an optional scale profile, and a matrix
// (product / zip / include / exclude / when / seeds) expanded into the planned runs, each with a
// fully resolved, validated RunConfig and its run id. The format and the expansion order are
// documented in experiments/README.md. Any malformed file yields a ConfigError naming
// file:line:col and the key; nothing else escapes (tests/harness/fuzz_test.cpp).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/config.h"

namespace ablate {

struct PlannedRun {
  std::string id;       // config_hash(config): the run id
  RunConfig config;     // resolved and validated
  nlohmann::json axes;  // axis key -> this run's value of it (JSON types as in config_to_json)
  int seed = 0;         // == config.seed
  // The evaluations of this run, each an eval section (the file's `evals:` entries over the run's
  // eval keys, or the run's own eval section alone); expanded into tasks by harness/eval_task.h.
  // Not part of the id: config.eval is only their common defaults.
  std::vector<EvalConfig> evals;
};

struct Experiment {
  std::string name, description, paper, file, scale;  // scale: the profile applied ("" = none)
  std::vector<std::string> axis_keys;  // product keys, zip keys, then keys only includes set
  std::vector<PlannedRun> runs;        // expansion order, duplicate configs collapsed
  nlohmann::json tables, claims;       // passed through from the file (null when absent)
  nlohmann::json compare;              // regression tolerances for `ablate compare` (null when absent)
  std::vector<std::string> notes;      // non-fatal remarks (collapsed duplicates, shadowed keys)
};

// Loads and expands `path`. `scale` picks a profile of `scales:` ("" = default_scale, or none);
// `overrides` are "key=value" assignments applied to every run (see README for the order).
Experiment load_experiment(const std::string& path, const std::string& scale,
                           const std::vector<std::string>& overrides);

// load_experiment on text already read; `file` names it in error locations.
Experiment parse_experiment(const std::string& text, const std::string& file, const std::string& scale,
                            const std::vector<std::string>& overrides);

}  // namespace ablate
