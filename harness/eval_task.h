// Evaluations as records of their own: researchers pre-train once and evaluate many times, so an
// evaluation is keyed apart from the run whose weights it reads. One EvalTask is one protocol on
// one dataset at one point (a KNN input scale, or a fine-tune train ratio) with the settings that
// protocol reads; its id hashes exactly that key, so adding an evaluation to an experiment file
// plans one new task and re-trains nothing (the run id leaves the eval section out, config_io.h).
//
// An experiment asks for evaluations with `evals:` (a list of eval sections, each over the run's
// own `eval` keys) or, as before, with the single `eval:` section (experiments/README.md,
// "Evaluations"). Every entry expands into tasks per protocol: knn one per scale, linprobe one,
// finetune one per train ratio.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/config.h"

namespace ablate {

struct PlannedRun;
struct ExternalWeights;

// Where an evaluation's encoder weights come from: a run of this database (its final checkpoint,
// or its seeded initialisation for eval.random_init runs), or an external checkpoint file listed
// under an experiment's `weights:` (kind "file", key = its sha256, so the file's bytes, not its
// name, are part of the evaluation's identity).
struct WeightsSource {
  std::string kind = "run";  // "run" | "file"
  std::string key;           // run id, or the file's sha256
  std::string path;          // "file" only: where the file is (not part of the identity)

  std::string label() const { return kind + ":" + key; }  // e.g. "run:0123456789ab"
};

struct EvalTask {
  std::string id;             // first 12 hex digits of sha256(key_json())
  WeightsSource weights;
  Protocol protocol = Protocol::knn;
  std::string dataset;        // registry name
  double scale = 1.0;         // KNN input scale (1 for the other protocols)
  double train_ratio = 0.0;   // fine-tune train ratio (0 = the dataset's default split)
  nlohmann::json settings;    // the eval.* fields this protocol reads, e.g. {"knn_k": 20, ...}
  EvalConfig config;          // the run's eval section narrowed to this one task

  // The 4th part of the task's metric address eval:<protocol>:<dataset>:<point>:<metric>: the KNN
  // scale, the fine-tune train ratio when one is set, else 1.
  double point() const;
  // The identity: {"dataset", "protocol", "scale", "settings", "train_ratio", "weights"}.
  nlohmann::json key_json() const;
};

// What `ablate worker --eval DIR` reads from DIR/eval.json (the runner writes it): the task id, its
// weights (for a run: path = the run folder, whose ckpt/last.pt is read) and the run's config with
// the eval section narrowed to the task's.
struct EvalJob {
  std::string id;
  WeightsSource weights;
  RunConfig config;
  // "file" weights only (weights_options()): how the worker reads the file; null for a run.
  nlohmann::json weights_options;
};
nlohmann::json eval_job_json(const EvalJob& job);
// DataError-free inverse: ConfigError (where "<json>") on a malformed job.
EvalJob eval_job_from_json(const nlohmann::json& j);

// The eval section alone as JSON (config_to_json's "eval" object), and back.
nlohmann::json eval_config_json(const EvalConfig& eval);
EvalConfig eval_config_from_json(const nlohmann::json& eval);

// The one task of `protocol` at `scale` (KNN; 1 otherwise) that `eval` asks of `weights`.
EvalTask make_eval_task(const WeightsSource& weights, const EvalConfig& eval, Protocol protocol, double scale);

// The tasks that evaluating `weights` with each of `evals` asks for, deduplicated by id, in order.
std::vector<EvalTask> expand_eval_tasks(const WeightsSource& weights, const std::vector<EvalConfig>& evals);

// expand_eval_tasks for a planned run of this database (its PlannedRun::evals).
std::vector<EvalTask> eval_tasks_of(const PlannedRun& run);

// The evaluations of an external checkpoint row: its evals of WeightsSource{"file", sha256, path},
// with how the file is read in each task's settings (heads and LayerNorm eps change the features; a
// declared model decides whether the file loads at all).
std::vector<EvalTask> eval_tasks_of(const ExternalWeights& weights);
// What the evaluation worker needs to read such a file: {"heads", "norm_eps", "layout",
// "model_declared"} (methods/pretrained.h; model_declared: the file must fit config.model).
nlohmann::json weights_options(const ExternalWeights& weights);

}  // namespace ablate
