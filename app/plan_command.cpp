// `ablate plan FILE`: the runs an experiment file expands to, with their ids, model size, training
// FLOPs, estimated GPU-hours and peak memory, as a table or as JSON. Nothing is run or recorded.
//
// The cost model: a run trains epochs x max_images images at train_flops_per_image each
// (harness/model_sizes.h: 3 x the forward matmul FLOPs). Its GPU-hours are those FLOPs at a fixed
// fraction (kAssumedMfu) of an H100's dense bf16 matmul rate (kH100Bf16FlopsPerS), the same however
// many GPUs share the run; a run whose corpus size is only known when the dataset is opened
// (data.max_images = 0) counts 0.
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "harness/config_io.h"
#include "harness/eval_task.h"
#include "harness/memory_estimate.h"
#include "harness/model_sizes.h"

namespace ablate {
namespace {

// ~800 TFLOP/s: the bf16 8192^3 matmul rate `ablate bench` measures on an H100 (results/bench/).
constexpr double kH100Bf16FlopsPerS = 800e12;
// 40%: the model FLOPs utilisation the estimate assumes, about what the bench reaches for ViT-B MAE.
constexpr double kAssumedMfu = 0.4;
constexpr double kSecondsPerHour = 3600.0;

struct RunCost {
  double flops_per_image = 0;  // training FLOPs per image (forward + backward)
  double flops = 0;            // over the whole run; 0 when the corpus size is unknown
  double gpu_hours = 0;        // H100-hours at kAssumedMfu
};

RunCost estimate_cost(const RunConfig& config) {
  RunCost c;
  c.flops_per_image = train_flops_per_image(config);
  const double images = static_cast<double>(config.train.epochs) *
                        (config.data.max_images > 0 ? config.data.max_images : 0);
  c.flops = c.flops_per_image * images;
  c.gpu_hours = c.flops / (kAssumedMfu * kH100Bf16FlopsPerS) / kSecondsPerHour;
  return c;
}

struct PlanOptions {
  std::string file, scale;
  std::vector<std::string> overrides;
  bool json = false;
};

// Evaluation tasks as plan JSON: each task's identity plus its id.
nlohmann::json tasks_json(const std::vector<EvalTask>& tasks) {
  nlohmann::json out = nlohmann::json::array();
  for (const EvalTask& t : tasks) {
    out.push_back(t.key_json());
    out.back()["id"] = t.id;
  }
  return out;
}

nlohmann::json run_json(const PlannedRun& r, const RunCost& cost) {
  const ModelConfig& m = r.config.model;
  const auto encoder = encoder_params(vit_size(m.size), m.patch_size, m.qkv_bias);
  return {{"id", r.id},
          {"axes", r.axes},
          {"seed", r.seed},
          {"params", encoder + decoder_params(m)},
          {"encoder_params", encoder},
          {"train_flops_per_image", cost.flops_per_image},
          {"train_flops", cost.flops},
          {"gpus", r.config.resources.gpus},
          {"gpu_hours_h100_est", cost.gpu_hours},
          {"peak_mem_gib_est", planned_peak_gib(r.config)},
          {"evals", tasks_json(eval_tasks_of(r))},
          {"config", config_to_json(r.config)}};
}

int plan_main(const PlanOptions& opt) {
  const Experiment exp = load_checked_experiment(opt.file, opt.scale, opt.overrides);
  nlohmann::json runs = nlohmann::json::array();
  RunCost total;
  for (const PlannedRun& r : exp.runs) {
    const RunCost cost = estimate_cost(r.config);
    total.flops += cost.flops;
    total.gpu_hours += cost.gpu_hours;
    runs.push_back(run_json(r, cost));
  }
  // External checkpoint rows (`weights:`): evaluated only, nothing to pre-train.
  nlohmann::json files = nlohmann::json::array();
  for (const ExternalWeights& w : exp.weights)
    files.push_back({{"name", w.name}, {"file", w.path}, {"sha256", w.sha256}, {"layout", w.layout},
                     {"axes", w.axes}, {"evals", tasks_json(eval_tasks_of(w))}});
  if (opt.json) {
    nlohmann::json plan{{"experiment", exp.name}, {"scale", exp.scale}, {"runs", runs},
                        {"total_train_flops", total.flops}, {"total_gpu_hours_h100_est", total.gpu_hours}};
    if (!files.empty()) plan["weights"] = files;
    std::cout << plan.dump(2) << "\n";
    return 0;
  }
  if (exp.scale.empty()) fmt::print("{}: {} runs\n", exp.name, exp.runs.size());
  else fmt::print("{} ({} scale): {} runs\n", exp.name, exp.scale, exp.runs.size());
  for (const auto& r : runs)
    fmt::print("  {}  {:>9.2f}M params  {:>8.2f} GFLOP/img  {:>9.3f} GPU-h  {:>2} GPU x {:>6.1f} GiB  {}\n",
               r["id"].get<std::string>(), r["params"].get<double>() / 1e6,
               r["train_flops_per_image"].get<double>() / 1e9, r["gpu_hours_h100_est"].get<double>(),
               r["gpus"].get<int>(), r["peak_mem_gib_est"].get<double>(), r["axes"].dump());
  for (const auto& f : files)
    fmt::print("  {}  checkpoint {} ({}, sha256 {}), {} evaluation(s)  {}\n", f["name"].get<std::string>(),
               f["file"].get<std::string>(), f["layout"].get<std::string>(),
               f["sha256"].get<std::string>().substr(0, 12), f["evals"].size(), f["axes"].dump());
  fmt::print("total: {:.3g} train FLOPs, {:.3f} H100 GPU-hours (estimate at {:.0f}% MFU; 0 where the corpus "
             "size is only known at run time)\n",
             total.flops, total.gpu_hours, kAssumedMfu * 100);
  return 0;
}

}  // namespace

void add_plan_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<PlanOptions>();
  CLI::App* cmd = app.add_subcommand("plan", "expand an experiment file into runs with cost estimates");
  cmd->add_option("file", opt->file, "experiment YAML")->required();
  cmd->add_option("--scale", opt->scale, "smoke | small | paper (default: the file's default_scale)");
  cmd->add_flag("--json", opt->json, "JSON output");
  cmd->add_option("overrides", opt->overrides, "key=value overrides (dotted paths)");
  commands.push_back({cmd, [opt] { return plan_main(*opt); }});
}

}  // namespace ablate
