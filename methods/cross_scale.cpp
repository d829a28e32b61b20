// Cross-Scale MAE step (see cross_scale.h).
#include "methods/cross_scale.h"

#include <ATen/Context.h>

#include "datasets/augment.h"
#include "harness/check.h"
#include "methods/losses.h"
#include "pch/torch_pch.h"

namespace ablate {

ScaleView random_scale_view(const torch::Tensor& images, double area_min, double area_max, bool shared,
                            bool square) {
  const int64_t B = images.size(0), H = images.size(2), W = images.size(3);
  AugmentOptions o;
  o.scale_min = area_min;
  o.scale_max = area_max;
  if (square) o.ratio_min = o.ratio_max = 1.0;
  at::Generator gen = at::globalContext().defaultGenerator(images.device());
  auto boxes = sample_crop_boxes(shared ? 1 : B, H, W, o, gen, images.device()).expand({B, 4});
  auto no_flip = torch::zeros({B}, torch::TensorOptions().dtype(torch::kBool).device(images.device()));
  auto crops = crop_resize(images, boxes, no_flip, H);  // (B, 3, H, H)
  auto side = torch::sqrt(boxes.select(1, 2) * boxes.select(1, 3) / double(H * W));
  return {crops.to(images.dtype()), boxes, side};
}

CrossPredictorImpl::CrossPredictorImpl(int64_t dim, int64_t tokens, int64_t hidden,
                                       const torch::TensorOptions& options) {
  fc1 = register_module("0", Linear(dim, hidden, true, options));
  norm = register_module("1", torch::nn::BatchNorm1d(tokens));
  fc2 = register_module("3", Linear(hidden, dim, true, options));
}

torch::Tensor CrossPredictorImpl::forward(const torch::Tensor& x) {
  return fc2(torch::relu(norm(fc1(x))));  // (B, L, d) -> (B, L, hidden) -> (B, L, d)
}

CrossScaleMae::CrossScaleMae(const RunConfig& config)
    : MaskedAutoencoder(config), gsd_pos_(config.model.gsd_pos) {
  const MethodConfig& m = config.method;
  final_norm_ = m.cs_final_norm;
  // The public code discards the encoder's final norm: frozen at its initial identity, as under
  // CrossMAE feature mapping (methods/masked_autoencoder.cpp), so the optimizer never steps it.
  if (!final_norm_)
    for (auto& p : encoder_->norm->parameters()) p.set_requires_grad(false);
  // validate() (harness/config_io.cpp check_method) refused every combination below with a
  // located ConfigError; reaching one here is a bug.
  const bool cc = m.multiscale && m.loss_cc, cp = m.multiscale && m.loss_cp;
  ABLATE_CHECK(m.scale_min < m.scale_max, "scale_min {} >= scale_max {}", m.scale_min, m.scale_max);
  ABLATE_CHECK(m.loss_re || cc || cp, "crossscale with no loss term enabled");
  ABLATE_CHECK(!cp || m.cp_tokens != CpTokens::masked || m.view_masks == ViewMasks::shared,
               "cp_tokens masked needs view_masks shared");
  ABLATE_CHECK(!cp || m.cp_tokens != CpTokens::all || config.model.decoder == DecoderKind::mae,
               "cp_tokens all needs the mae decoder");
  ABLATE_CHECK(!cp || m.cp_head != CpHead::bn || m.cp_tokens == CpTokens::all,
               "the BatchNorm1d predictor needs cp_tokens all");
  const int64_t D = encoder_->options().dim, d = config.model.dec_dim;
  if (cc && m.proj_head) projector = register_module("projector", Mlp(D, 4 * D, torch::TensorOptions()));
  if (cp && m.cp_head == CpHead::bn) {
    bn_predictor = register_module("predictor", CrossPredictor(d, patches_, 4 * d, torch::TensorOptions()));
  } else if (cp) {
    predictor = register_module("predictor", Mlp(d, 4 * d, torch::TensorOptions()));
  }
}

MaskPlan CrossScaleMae::plan(const torch::Tensor& images, const torch::Tensor&, const torch::Tensor&) {
  return random_plan(images.size(0), images.device());
}

torch::Tensor CrossScaleMae::pooled(const torch::Tensor& latent) {
  auto f = method_.pool == Pool::cls ? latent.select(1, 0) : latent.slice(1, 1).mean(1);
  return projector ? projector(f) : f;
}

torch::Tensor CrossScaleMae::cross_prediction(const ViewOutput& orig, const ViewOutput& low) {
  const bool all = method_.cp_tokens == CpTokens::all;
  const auto& source = all ? low.decoded.all_hidden : low.decoded.hidden;   // (B, N, d)
  const auto& target = all ? orig.decoded.all_hidden : orig.decoded.hidden;  // (B, N, d)
  auto pred = bn_predictor ? bn_predictor(source) : predictor(source);
  return method_.dec_negatives ? token_infonce(pred, target, method_.temperature) : token_mse(pred, target);
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
    const ScaleView view = random_scale_view(in.images, m.scale_min, m.scale_max, m.shared_crop, m.square_crop);
    auto crop_tokens = encoder_->embed(view.images, gsd_pos_ ? view.side : torch::Tensor());
    const MaskPlan low_plan = m.view_masks == ViewMasks::shared ? mp : plan(view.images, crop_tokens, in.psts_weights);
    const ViewOutput low = run_view(view.images, crop_tokens, low_plan);
    if (m.loss_re) {
      auto both = orig.loss_re + low.loss_re;
      add("loss_re", m.w_re, m.re_reduction == ReReduction::sum ? both : 0.5 * both);
    }
    if (m.loss_cc) {
      auto a = pooled(orig.latent), b = pooled(low.latent);
      const auto denominator =
          m.cc_denominator == CcDenominator::all ? NtXentDenominator::all : NtXentDenominator::negatives;
      add("loss_cc", m.w_cc, m.enc_negatives ? nt_xent(a, b, m.temperature, denominator) : cosine_loss(a, b));
    }
    if (m.loss_cp) add("loss_cp", m.w_cp, cross_prediction(orig, low));
  }
  out.total = per_sample.mean();
  out.per_sample = per_sample;
  return out;
}

}  // namespace ablate
