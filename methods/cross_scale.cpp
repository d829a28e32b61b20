// Cross-Scale MAE step (see cross_scale.h).
#include "methods/cross_scale.h"

#include <cmath>

#include "harness/check.h"
#include "methods/losses.h"
#include "methods/pch/torch_pch.h"

namespace ablate {

ScaleView random_scale_view(const torch::Tensor& images, double area_min, double area_max, bool shared) {
  const int64_t B = images.size(0);
  auto o = images.options().dtype(torch::kFloat32);
  auto u = torch::rand({shared ? 1 : B, 3}, o).expand({B, 3});  // area, x, y draws
  auto side = torch::sqrt(area_min + (area_max - area_min) * u.select(1, 0));  // (B)
  // In affine_grid's [-1, 1] coordinates the crop spans centre +- side, so the centre may move
  // by up to 1 - side in each direction.
  auto cx = (2.0 * u.select(1, 1) - 1.0) * (1.0 - side);
  auto cy = (2.0 * u.select(1, 2) - 1.0) * (1.0 - side);
  auto zero = torch::zeros_like(side);
  auto theta = torch::stack({torch::stack({side, zero, cx}, 1), torch::stack({zero, side, cy}, 1)}, 1);
  auto grid = torch::nn::functional::affine_grid(theta, images.sizes(), /*align_corners=*/false);
  auto crops = torch::nn::functional::grid_sample(
      images.to(torch::kFloat32), grid,
      torch::nn::functional::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kBorder).align_corners(false));
  return {crops.to(images.dtype()), side};
}

CrossScaleMae::CrossScaleMae(const RunConfig& config)
    : MaskedAutoencoder(config), gsd_pos_(config.model.gsd_pos) {
  const MethodConfig& m = config.method;
  if (m.scale_min > m.scale_max)
    throw ConfigError("", "method.scale_min",
                      fmt::format("{} is above method.scale_max {}", m.scale_min, m.scale_max));
  const bool cc = m.multiscale && m.loss_cc, cp = m.multiscale && m.loss_cp;
  if (!m.loss_re && !cc && !cp)
    throw ConfigError("", "method.loss_re", "crossscale with no loss term enabled",
                      "enable loss_re, or multiscale with loss_cc / loss_cp");
  const int64_t D = encoder_->options().dim, d = config.model.dec_dim;
  if (cc && m.proj_head) projector = register_module("projector", Mlp(D, 4 * D, torch::TensorOptions()));
  if (cp) predictor = register_module("predictor", Mlp(d, 4 * d, torch::TensorOptions()));
}

MaskPlan CrossScaleMae::plan(const torch::Tensor& images, const torch::Tensor&, const torch::Tensor&) {
  return random_plan(images.size(0), images.device());
}

torch::Tensor CrossScaleMae::pooled(const torch::Tensor& latent) {
  auto f = method_.pool == "cls" ? latent.select(1, 0) : latent.slice(1, 1).mean(1);
  return projector ? projector(f) : f;
}

LossTerms CrossScaleMae::forward(const StepInputs& in) {
  const MethodConfig& m = method_;
  auto tokens = encoder_->embed(in.images);
  const MaskPlan mp = plan(in.images, tokens, in.psts_weights);
  const ViewOutput orig = run_view(in.images, tokens, mp);
  LossTerms out;
  torch::Tensor per_sample = torch::zeros_like(orig.loss_re);
  auto add = [&](const char* name, double weight, const torch::Tensor& loss) {  // loss (B,)
    out.terms.emplace_back(name, loss.mean());
    per_sample = per_sample + weight * loss;
  };
  if (!m.multiscale) {
    add("loss_re", m.w_re, orig.loss_re);
  } else {
    const ScaleView view = random_scale_view(in.images, m.scale_min, m.scale_max, m.shared_crop);
    auto crop_tokens = encoder_->embed(view.images, gsd_pos_ ? view.side : torch::Tensor());
    const ViewOutput low = run_view(view.images, crop_tokens, mp);
    if (m.loss_re) add("loss_re", m.w_re, 0.5 * (orig.loss_re + low.loss_re));
    if (m.loss_cc) {
      auto a = pooled(orig.latent), b = pooled(low.latent);
      add("loss_cc", m.w_cc, m.enc_negatives ? nt_xent(a, b, m.temperature) : cosine_loss(a, b));
    }
    if (m.loss_cp) {
      auto pred = predictor(low.decoded.hidden);
      const auto& target = orig.decoded.hidden;
      add("loss_cp", m.w_cp,
          m.dec_negatives ? token_infonce(pred, target, m.temperature) : token_mse(pred, target));
    }
  }
  out.total = per_sample.mean();
  out.per_sample = per_sample;
  return out;
}

}  // namespace ablate
