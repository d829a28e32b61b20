// More seeds of a recorded cell: the planned run that repeats a run's stored configuration
// (runs.config_json) with another seed. `ablate compare --rerun-borderline` adds seeds to a cell
// of the new results database this way, without the experiment file: the stored config is what
// actually ran, so a file edited since cannot change what the extra seeds measure.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "harness/experiment.h"

namespace ablate {

// `config` is a run's canonical config JSON (config_to_json), `axes` its axes in the experiment
// (a "seed" axis, if any, is set to the new seed). The result is read and validated like any
// planned run and identified by its config hash. ConfigError (where "<json>") when the stored
// config no longer reads (e.g. a field removed since) or `seed` is out of range.
PlannedRun reseeded_run(const nlohmann::json& config, const nlohmann::json& axes, std::int64_t seed);

}  // namespace ablate
