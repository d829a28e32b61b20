// `ablate models`: every named ViT size with its parameter count (the analytic count, which the
// LibTorch modules are tested to match exactly), its stated figure and source, and the training
// FLOPs per image at the requested input size, mask ratio and decoder.
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "harness/config.h"
#include "harness/model_sizes.h"

namespace ablate {
namespace {

struct ModelsOptions {
  bool json = false;       // machine-readable output
  int img_size = 224;      // input side in pixels
  int patch_size = 16;     // patch side
  double mask_ratio = 0.75;
  std::string decoder = "mae";  // "mae" | "cross"
  double recon_ratio = 0.0;     // CrossMAE / SelectiveMAE: fraction of all patches reconstructed
};

int models_main(const ModelsOptions& opt) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& s : vit_sizes()) {
    RunConfig cfg;
    cfg.model.size = s.name;
    cfg.model.img_size = opt.img_size;
    cfg.model.patch_size = opt.patch_size;
    cfg.model.decoder = *parse_choice<DecoderKind>(opt.decoder);
    cfg.model.qkv_bias = s.branches == 1;  // the parallel-scaled family has no qkv bias
    cfg.method.mask_ratio = opt.mask_ratio;
    cfg.method.recon_ratio = opt.recon_ratio;
    const auto enc = encoder_params(s, opt.patch_size, cfg.model.qkv_bias);
    rows.push_back({{"name", s.name},
                    {"dim", s.dim},
                    {"depth", s.depth},
                    {"heads", s.heads},
                    {"branches", s.branches},
                    {"encoder_params", enc},
                    {"decoder_params", decoder_params(cfg.model)},
                    {"stated_params", s.stated_params},
                    {"source", s.source},
                    {"train_gflops_per_image", train_flops_per_image(cfg) / 1e9}});
  }
  if (opt.json) {
    std::cout << nlohmann::json{{"img_size", opt.img_size}, {"patch_size", opt.patch_size},
                                {"mask_ratio", opt.mask_ratio}, {"decoder", opt.decoder},
                                {"recon_ratio", opt.recon_ratio}, {"models", rows}}
                     .dump(2)
              << "\n";
    return 0;
  }
  fmt::print("input {}px, patch {}, mask {:.2f}, decoder {} (train FLOPs = 3 x forward matmul FLOPs)\n",
             opt.img_size, opt.patch_size, opt.mask_ratio, opt.decoder);
  fmt::print("{:<10} {:>5} {:>5} {:>5} {:>4} {:>12} {:>10} {:>10} {:>12}\n", "name", "dim", "depth", "heads",
             "par", "encoder", "decoder", "stated", "GFLOP/img");
  for (const auto& r : rows)
    fmt::print("{:<10} {:>5} {:>5} {:>5} {:>4} {:>11.2f}M {:>9.2f}M {:>9.2f}M {:>12.2f}\n",
               r["name"].get<std::string>(), r["dim"].get<int>(), r["depth"].get<int>(), r["heads"].get<int>(),
               r["branches"].get<int>(), r["encoder_params"].get<double>() / 1e6,
               r["decoder_params"].get<double>() / 1e6, r["stated_params"].get<double>() / 1e6,
               r["train_gflops_per_image"].get<double>());
  return 0;
}

}  // namespace

void add_models_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<ModelsOptions>();
  CLI::App* cmd = app.add_subcommand("models", "named ViT sizes with parameter counts and FLOPs");
  cmd->add_flag("--json", opt->json, "JSON output");
  cmd->add_option("--img", opt->img_size, "input size in pixels");
  cmd->add_option("--patch", opt->patch_size, "patch size");
  cmd->add_option("--mask", opt->mask_ratio, "mask ratio");
  cmd->add_option("--decoder", opt->decoder, "mae | cross")->check(CLI::IsMember(choice_words<DecoderKind>()));
  cmd->add_option("--recon", opt->recon_ratio, "reconstruction ratio (cross decoder)");
  commands.push_back({cmd, [opt] { return models_main(*opt); }});
}

}  // namespace ablate
