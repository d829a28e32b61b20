// `ablate export RUN --format timm|pth -o OUT`: hands a run's pre-trained encoder to the ecosystem.
// timm: OUT is a folder with model.safetensors + config.json that
// `timm.create_model('local-dir:OUT', pretrained=True)` loads (num_classes 0, CLS-token pooling,
// the run's input size and ImageNet mean/std); pth: OUT is MAE's released-encoder file
// {'model': state_dict} in torch.save's format. Both hold the encoder only, under timm's / MAE's
// names (methods/pretrained.h); the decoder stays with the run.
#include <array>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "datasets/augment.h"
#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/store.h"
#include "methods/checkpoint.h"
#include "methods/method.h"
#include "pch/torch_pch.h"
#include "methods/pretrained.h"

namespace ablate {

TrainedRun load_trained_run(const std::string& db, const std::string& run_id) {
  Store store(db, Store::Mode::existing);
  const auto row = store.run(run_id);
  if (!row) throw ConfigError("<command line>", "run_id", fmt::format("no run '{}' in {}", run_id, db));
  TrainedRun run;
  run.config = config_from_json(nlohmann::json::parse(row->config_json));
  torch::manual_seed(static_cast<uint64_t>(run.config.seed));
  run.method = make_method(run.config);
  FusedAdamW opt(*run.method, run.config.train, torch::kCPU);
  TrainProgress progress;
  const std::filesystem::path ckpt = std::filesystem::path(row->run_dir) / "ckpt" / "last.pt";
  if (!load_checkpoint(ckpt, progress, *run.method, opt))
    throw DataError(fmt::format("{}: no checkpoint (the run has not trained yet)", ckpt.string()));
  run.method->eval();
  run.step = progress.step;
  return run;
}

int export_model_main(const std::string& db, const std::string& run_id, const std::string& format,
                      const std::string& out) {
  if (run_id.empty()) throw ConfigError("<command line>", "run_id", "missing", "the run whose encoder to export");
  if (out.empty())
    throw ConfigError("<command line>", "-o", "missing", "a folder for --format timm, a .pth file for --format pth");
  const TrainedRun run = load_trained_run(db, run_id);
  auto& vit = *run.method->encoder();
  if (format == "timm") {
    export_timm(vit, out, kImageNetStats.mean, kImageNetStats.std);
    fmt::print("wrote {}/model.safetensors and config.json ({} encoder, step {}): "
               "timm.create_model('local-dir:{}', pretrained=True)\n",
               out, timm_architecture(vit.options()), run.step, out);
  } else if (format == "pth") {
    export_mae_pth(vit, out);
    fmt::print("wrote {} ({{'model': encoder state dict}}, MAE layout, step {})\n", out, run.step);
  } else {
    throw ConfigError("<command line>", "--format", fmt::format("'{}' cannot export a run", format), "timm | pth");
  }
  return 0;
}

}  // namespace ablate
