// Shared fixtures of the store, journal and runner tests: a scratch folder removed afterwards and
// planned runs built the way experiment files build them (id = config_hash(config)).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness/config_io.h"
#include "harness/experiment.h"

namespace ablate::test {

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    std::string pattern = (std::filesystem::temp_directory_path() / ("ablate-" + tag + "-XXXXXX")).string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

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
