// The local runner's command-line settings, shared by `ablate run` and `ablate compare
// --rerun-borderline` (whose re-runs go into --db, the new database, only): what the user typed,
// turned into harness RunnerOptions in one place.
#pragma once

#include <string>
#include <vector>

#include "app/commands.h"
#include "harness/runner.h"

namespace ablate {

struct RunnerFlags {
  std::string db = kDefaultDb;
  std::string gpus;         // --gpus as typed, e.g. "0,1" or "0-7"; "" = CPU runs
  double gpu_mem_gib = 0;   // --gpu-mem-gib (`run` only; 0 = ask nvidia-smi)
  int jobs = 1;             // --jobs
  double dist_timeout_s = RunnerOptions{}.dist_timeout_s;  // --dist-timeout (`run` only)
};

// The runner options for `flags`, with this executable as the worker and the live progress line
// when stderr is a terminal. Throws ConfigError naming --gpus when the list does not parse.
RunnerOptions runner_options(const RunnerFlags& flags);

// "0,1,2" or "0-7" or "0-3,6" -> GPU ids.
std::vector<int> parse_gpu_list(const std::string& text);

}  // namespace ablate
