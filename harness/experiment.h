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
#include "harness/config_io.h"

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

// An encoder checkpoint `ablate` did not train, listed under `weights:` (experiments/README.md,
// "External checkpoints"): evaluated with the experiment's evaluations and shown as a table row
// beside the runs, e.g. a paper's released ViT-B next to our own pre-training.
struct ExternalWeights {
  std::string name;    // the row's label: its value of the `weights` axis (own runs: "ours")
  std::string path;    // the file (.pth / .safetensors); relative paths are read from the experiment file's folder
  std::string layout;  // the family the file comes from (mae, selectivemae, crossmae, crossscale, timm); the
                       // loader recognises the key names itself, the layout is recorded with each evaluation
  std::string sha256;  // of the file's bytes, computed on load: the weights' identity
  int heads = 0;           // attention heads (0: the named size with the file's width, else width / 64)
  double norm_eps = 1e-6;  // LayerNorm eps the weights were trained with
  // Whether `model` was given: then the file must fit that architecture exactly (a mismatch lists the
  // missing, unexpected and mis-shaped keys); otherwise the architecture is read from the shapes.
  bool model_declared = false;
  RunConfig config;                // base <- scale profile <- command line <- the entry's `model` keys
  std::vector<EvalConfig> evals;   // the file's `evals:` entries over config (or config.eval alone)
  nlohmann::json axes;             // {"weights": name} plus the entry's `axes` (table placement)

  std::string label() const { return "file:" + sha256; }  // the weights source of its evaluations
};

struct Experiment {
  std::string name, description, paper, file, scale;  // scale: the profile applied ("" = none)
  std::vector<std::string> axis_keys;  // product keys, zip keys, then keys only includes set
  std::vector<PlannedRun> runs;        // expansion order, duplicate configs collapsed
  // External checkpoints evaluated beside the runs; when there are any, every run's axes carry
  // "weights": "ours" so that tables can put both in one column.
  std::vector<ExternalWeights> weights;
  nlohmann::json tables, claims;       // passed through from the file (null when absent)
  nlohmann::json compare;              // regression tolerances for `ablate compare` (null when absent)
  SourceMarks section_marks;           // where each value of tables / claims / compare was written
  std::vector<std::string> notes;      // non-fatal remarks (collapsed duplicates, shadowed keys)

  // "file:line:col" of the value at `key_path` in tables / claims / compare ("tables[0].rows[1]"),
  // or of its closest written ancestor (a missing key points at its mapping); `file` otherwise.
  std::string where(const std::string& key_path) const;
};

// Loads and expands `path`. `scale` picks a profile of `scales:` ("" = default_scale, or none);
// `overrides` are "key=value" assignments applied to every run (see README for the order).
Experiment load_experiment(const std::string& path, const std::string& scale,
                           const std::vector<std::string>& overrides);

// load_experiment on text already read; `file` names it in error locations.
Experiment parse_experiment(const std::string& text, const std::string& file, const std::string& scale,
                            const std::vector<std::string>& overrides);

}  // namespace ablate
