// Planned runs from a stored config with a new seed (harness/reseed.h).
#include "harness/reseed.h"

#include "harness/check.h"
#include "harness/config_io.h"

namespace ablate {

PlannedRun reseeded_run(const nlohmann::json& config, const nlohmann::json& axes, std::int64_t seed) {
  if (!config.is_object())
    throw ConfigError("<json>", "", "the stored run config is not an object", "is the database from ablate?");
  nlohmann::json j = config;
  j["seed"] = seed;  // config_from_json checks the seed's range with the other fields
  PlannedRun r;
  r.config = config_from_json(j);
  validate(r.config);
  r.id = config_hash(r.config);
  r.seed = r.config.seed;
  r.evals = {r.config.eval};  // the stored eval section: the evaluations the run was planned with
  r.axes = axes.is_object() ? axes : nlohmann::json::object();
  if (r.axes.contains("seed")) r.axes["seed"] = r.seed;
  return r;
}

}  // namespace ablate
