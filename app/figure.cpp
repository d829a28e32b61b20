// `ablate figure RUN_ID`: a reconstruction figure for one finished run, written as a PNG with
// OpenCV. One row per validation image: original | masked input (visible patches only) |
// reconstruction (visible patches as given, predicted ones as predicted) | for SelectiveMAE and
// CrossMAE the patches the decoder was asked to reconstruct (HOG-selected), highlighted. The
// weights come from the run's last checkpoint; `ablate report --figure PNG` embeds it in HTML.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/commands.h"
#include "app/data_source.h"
#include "datasets/augment.h"
#include "datasets/image_io.h"
#include "harness/check.h"
#include "methods/method.h"
#include "pch/torch_pch.h"

namespace ablate {
namespace {

// (B, L) patch mask -> (B, 1, H, W) pixel mask.
torch::Tensor pixel_mask(const torch::Tensor& patch_mask, int64_t patch) {
  const int64_t g = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(patch_mask.size(1)))));
  return patch_mask.reshape({-1, 1, g, g}).repeat_interleave(patch, 2).repeat_interleave(patch, 3);
}

// Normalised (B, 3, H, W) -> uint8 pixels.
torch::Tensor to_pixels(const torch::Tensor& x) { return denormalize_pixels(x).clamp(0, 255).round().to(torch::kUInt8); }

struct FigureOptions {
  std::string run_id, db = kDefaultDb;
  std::string out_png = "reconstruction.png";
  int count = 8;  // validation images (rows)
};

int figure_main(const FigureOptions& fo) {
  const TrainedRun run = load_trained_run(fo.db, fo.run_id);
  const RunConfig& cfg = run.config;
  auto& method = run.method;

  const EvalImages ev = load_eval_images(cfg, kSplitSeed);
  const int64_t n = std::min<int64_t>(fo.count, ev.val_images.size(0));
  const auto x = resize_area(ev.val_images.narrow(0, 0, n), 1.0, cfg.model.img_size);  // (n, 3, S, S) pixels
  const auto xn = normalize_pixels(x);
  torch::Tensor shown, selected, recon;
  {
    torch::NoGradGuard ng;
    recon = method->reconstruct(xn, &shown, &selected);
  }
  const int64_t p = cfg.model.patch_size;
  std::vector<torch::Tensor> cols{to_pixels(xn), to_pixels(xn * pixel_mask(shown, p)), to_pixels(recon)};
  if (cfg.model.decoder == DecoderKind::cross) {
    // Reconstructed patches at full brightness, the rest dimmed.
    const auto m = pixel_mask(selected, p);
    cols.push_back(to_pixels(xn * m + (xn - 2.0) * (1 - m) * 0.5));
  }
  // (n, 3, S, C*S) -> (n*S, C*S, 3) HWC
  const auto grid = torch::cat(cols, 3).permute({0, 2, 3, 1}).reshape({-1, static_cast<int64_t>(cols.size()) * x.size(3), 3}).contiguous();
  RgbImage img;
  img.height = static_cast<int>(grid.size(0));
  img.width = static_cast<int>(grid.size(1));
  img.pixels.assign(grid.data_ptr<uint8_t>(), grid.data_ptr<uint8_t>() + grid.numel());
  write_image(fo.out_png, img);
  fmt::print("wrote {} ({} images: original | masked | reconstruction{}; step {})\n", fo.out_png, n,
             cols.size() == 4 ? " | reconstructed patches" : "", run.step);
  return 0;
}

}  // namespace

void add_figure_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<FigureOptions>();
  CLI::App* cmd = app.add_subcommand("figure", "reconstruction figure of a finished run (PNG)");
  cmd->add_option("run_id", opt->run_id, "run id")->required();
  cmd->add_option("--db", opt->db, "results database");
  cmd->add_option("-o,--out", opt->out_png, "PNG to write");
  cmd->add_option("--images", opt->count, "validation images (rows)");
  commands.push_back({cmd, [opt] { return figure_main(*opt); }});
}

}  // namespace ablate
