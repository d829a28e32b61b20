// Shared fixtures of the store, journal and runner tests: planned runs built the way experiment
// files build them (id = config_hash(config)), and (from tests/support/temp_dir.h) TempDir.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "harness/config_io.h"
#include "harness/experiment.h"
#include "tests/support/temp_dir.h"

namespace ablate::test {

// A planned run differing from the defaults in its seed (and, optionally, the GPUs it asks for).
inline PlannedRun planned_run(int seed, int gpus = 1) {
  PlannedRun r;
  r.config.seed = seed;
  r.config.resources.gpus = gpus;
  r.seed = seed;
  r.id = config_hash(r.config);
  r.axes = {{"seed", seed}};
  return r;
}

inline Experiment experiment_of(const std::string& name, const std::vector<int>& seeds) {
  Experiment e;
  e.name = name;
  for (int s : seeds) e.runs.push_back(planned_run(s));
  return e;
}

}  // namespace ablate::test
