// Expansion of eval sections into evaluation tasks and their identity (see eval_task.h).
#include "harness/eval_task.h"

#include <algorithm>
#include <set>

#include "harness/config_io.h"
#include "harness/experiment.h"
#include "harness/hash.h"

namespace ablate {
namespace {

// The eval.* fields each protocol reads besides dataset, scale and train ratio: only these enter a
// task's identity, so changing the probe lr never re-runs a KNN evaluation.
const std::vector<std::string>& protocol_fields(Protocol protocol) {
  static const std::vector<std::string> knn = {"knn_k", "knn_t", "max_train", "max_val", "knn_resize", "knn_gsd", "knn_norm"};
  static const std::vector<std::string> linprobe = {"probe_epochs", "probe_lr", "max_train", "max_val"};
  static const std::vector<std::string> finetune = {"ft_epochs", "ft_lr", "ft_drop_path", "max_train", "max_val"};
  if (protocol == Protocol::knn) return knn;
  if (protocol == Protocol::linprobe) return linprobe;
  return finetune;
}

std::string task_id(const EvalTask& t) { return sha256_hex(canonical_dump(t.key_json())).substr(0, 12); }

}  // namespace

nlohmann::json eval_config_json(const EvalConfig& eval) {
  RunConfig c;
  c.eval = eval;
  return config_to_json(c).at("eval");
}

EvalConfig eval_config_from_json(const nlohmann::json& eval) {
  return config_from_json({{"eval", eval}}).eval;
}

nlohmann::json eval_job_json(const EvalJob& job) {
  nlohmann::json j = {{"id", job.id},
                      {"weights", {{"kind", job.weights.kind}, {"key", job.weights.key}, {"path", job.weights.path}}},
                      {"config", config_to_json(job.config)}};
  if (!job.weights_options.is_null()) j["weights_options"] = job.weights_options;
  return j;
}

EvalJob eval_job_from_json(const nlohmann::json& j) {
  try {
    const nlohmann::json& w = j.at("weights");
    return EvalJob{j.at("id").get<std::string>(),
                   WeightsSource{w.at("kind").get<std::string>(), w.at("key").get<std::string>(),
                                 w.at("path").get<std::string>()},
                   config_from_json(j.at("config")), j.value("weights_options", nlohmann::json())};
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError("<json>", "eval job", e.what());
  }
}

EvalTask make_eval_task(const WeightsSource& weights, const EvalConfig& eval, Protocol protocol, double scale) {
  EvalTask t;
  t.weights = weights;
  t.protocol = protocol;
  t.dataset = eval.dataset;
  t.scale = scale;
  t.train_ratio = protocol == Protocol::finetune ? eval.ft_train_ratio : 0.0;
  const nlohmann::json all = eval_config_json(eval);
  const nlohmann::json defaults = eval_config_json(EvalConfig{});
  static const std::vector<FieldInfo> fields = config_fields();
  t.settings = nlohmann::json::object();
  // Fields added after evaluations were recorded are left out at their default (as in run ids).
  for (const std::string& f : protocol_fields(protocol))
    if (!find_field(fields, "eval." + f)->spec.id_omits_default || all.at(f) != defaults.at(f)) t.settings[f] = all.at(f);
  t.config = eval;
  t.config.protocols = {protocol};
  t.config.scales = {scale};
  t.id = task_id(t);
  return t;
}

double EvalTask::point() const {
  if (protocol == Protocol::knn) return scale;
  if (protocol == Protocol::finetune && train_ratio > 0) return train_ratio;
  return 1.0;
}

nlohmann::json EvalTask::key_json() const {
  return {{"weights", weights.label()}, {"protocol", name_of(protocol)}, {"dataset", dataset},
          {"scale", scale},             {"train_ratio", train_ratio}, {"settings", settings}};
}

std::vector<EvalTask> expand_eval_tasks(const WeightsSource& weights, const std::vector<EvalConfig>& evals) {
  std::vector<EvalTask> tasks;
  std::set<std::string> seen;
  auto add = [&](EvalTask t) {
    if (seen.insert(t.id).second) tasks.push_back(std::move(t));
  };
  for (const EvalConfig& e : evals)
    for (Protocol protocol : e.protocols) {
      if (protocol == Protocol::knn) {
        for (double scale : e.scales) add(make_eval_task(weights, e, protocol, scale));
      } else {
        add(make_eval_task(weights, e, protocol, 1.0));
      }
    }
  return tasks;
}

std::vector<EvalTask> eval_tasks_of(const PlannedRun& run) {
  return expand_eval_tasks(WeightsSource{"run", run.id, ""}, run.evals);
}

std::vector<EvalTask> eval_tasks_of(const ExternalWeights& weights) {
  std::vector<EvalTask> tasks = expand_eval_tasks(WeightsSource{"file", weights.sha256, weights.path}, weights.evals);
  for (EvalTask& t : tasks) {
    t.settings["weights_heads"] = weights.heads;
    t.settings["weights_norm_eps"] = weights.norm_eps;
    if (weights.model_declared) {
      const nlohmann::json model = config_to_json(weights.config).at("model");
      for (const char* key : {"size", "img_size", "patch_size", "qkv_bias"}) t.settings["weights_model"][key] = model.at(key);
    }
    t.id = task_id(t);
  }
  return tasks;
}

nlohmann::json weights_options(const ExternalWeights& weights) {
  return {{"heads", weights.heads},
          {"norm_eps", weights.norm_eps},
          {"layout", weights.layout},
          {"model_declared", weights.model_declared}};
}

}  // namespace ablate
