// reseeded_run: a stored config with another seed is exactly the run the experiment file plans for
// that seed (same id, same axes), a seed axis follows the new seed, and stored configs that no
// longer read are ConfigErrors naming the key.
#include "harness/reseed.h"

#include "harness/config_io.h"
#include "tests/support/catch.h"
#include "tests/support/errors.h"

using namespace ablate;

namespace {

const std::string kFile =
    "name: reseed\n"
    "description: \"two seeds of two mask ratios\"\n"
    "base:\n"
    "  model: {size: vit_micro, img_size: 32, patch_size: 8, decoder: mae, dec_depth: 1, dec_dim: 32, dec_heads: 4}\n"
    "  train: {epochs: 2, batch: 16}\n"
    "matrix:\n"
    "  product: {method.mask_ratio: [0.75, 0.85]}\n"
    "  seeds: [0, 1]\n";

}  // namespace

TEST_CASE("a stored config with another seed is the planned run of that seed", "[harness][reseed]") {
  const Experiment e = parse_experiment(kFile, "reseed.yaml", "", {});
  REQUIRE(e.runs.size() == 4);  // (0.75: seeds 0, 1), (0.85: seeds 0, 1)
  const PlannedRun& seed0 = e.runs[0];
  const PlannedRun& seed1 = e.runs[1];
  REQUIRE(seed1.seed == 1);
  const PlannedRun again = reseeded_run(config_to_json(seed0.config), seed0.axes, 1);
  CHECK(again.id == seed1.id);
  CHECK(again.seed == 1);
  CHECK(again.config.seed == 1);
  CHECK(again.axes == seed1.axes);
  CHECK(config_to_json(again.config) == config_to_json(seed1.config));

  const PlannedRun fresh = reseeded_run(config_to_json(seed0.config), seed0.axes, 7);
  CHECK(fresh.seed == 7);
  for (const PlannedRun& r : e.runs) CHECK(fresh.id != r.id);
  CHECK(fresh.config.method.mask_ratio == seed0.config.method.mask_ratio);
}

TEST_CASE("a seed axis follows the new seed", "[harness][reseed]") {
  const Experiment e = parse_experiment(kFile, "reseed.yaml", "", {});
  nlohmann::json axes = e.runs[0].axes;
  axes["seed"] = 0;
  CHECK(reseeded_run(config_to_json(e.runs[0].config), axes, 3).axes["seed"] == 3);
}

TEST_CASE("stored configs that no longer read are located errors", "[harness][reseed]") {
  const Experiment e = parse_experiment(kFile, "reseed.yaml", "", {});
  nlohmann::json config = config_to_json(e.runs[0].config);
  CHECK(error_of([&] { reseeded_run(config, e.runs[0].axes, -1); }).key == "seed");
  config["method"]["retired_knob"] = 1;
  CHECK(error_of([&] { reseeded_run(config, e.runs[0].axes, 2); }).key == "method.retired_knob");
  CHECK(error_of([&] { reseeded_run(nlohmann::json(), e.runs[0].axes, 2); }).where == "<json>");
}
