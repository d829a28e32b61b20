// Parity with the public Cross-Scale MAE losses (golden case crossscale_losses: aicip/Cross-Scale-MAE
// f991ab7, util/contrast_loss.py NTXentLoss and models_mae/MLP.py + forward_loss_mse).
//  * L_cc: NT-Xent with the negatives-only denominator (method.cc_denominator: negatives) at the
//    class defaults (tau 0.1, mm similarity) and as the model calls it (tau 0.5, CosineSimilarity):
//    loss and gradients w.r.t. both views. The SimCLR denominator (cc_denominator: all) must NOT
//    match: that is the behaviour before issue 14.
//  * L_cp: the BatchNorm1d(L) predictor (method.cp_head: bn) loaded from the golden state dict by
//    name, in train mode (batch statistics over batch and hidden units per token position, running
//    statistics updated with momentum 0.1 and the unbiased variance) and in eval mode (running
//    statistics), with the MSE loss and every gradient.
// Tolerances: the golden reruns are bitwise equal; ours differs in float32 summation order and in
// computing log(sum exp + eps) as a logaddexp, so the loss (size ~1-5) is compared at 1e-5
// absolute, gradients (size ~0.01-0.1) at 1e-6 absolute + 1e-4 relative, predictor activations
// (size ~1) at 1e-5 absolute + 1e-5 relative, the running statistics at 1e-6.
#include "methods/cross_scale.h"
#include "methods/losses.h"

#include "methods/pch/torch_pch.h"

#include "tests/support/catch.h"
#include "tests/support/golden.h"

using namespace ablate;

namespace {

float max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat32) - b.to(torch::kFloat32)).abs().max().item<float>();
}

void check_close(const torch::Tensor& ours, const torch::Tensor& golden, double atol, double rtol, const char* what) {
  INFO(what);
  REQUIRE(ours.sizes() == golden.sizes());
  INFO("max |ours - official| = " << max_diff(ours, golden));
  CHECK(torch::allclose(ours, golden, rtol, atol));
}

struct NtXentResult {
  torch::Tensor loss, grad_zi, grad_zj;
};

NtXentResult run_nt_xent(const torch::Tensor& zi, const torch::Tensor& zj, double tau, NtXentDenominator d) {
  auto a = zi.clone().requires_grad_(true), b = zj.clone().requires_grad_(true);
  auto loss = nt_xent(a, b, tau, d).mean();  // the per-sample values average to the public loss
  loss.backward();
  return {loss.detach().reshape({1}), a.grad(), b.grad()};
}

}  // namespace

TEST_CASE("crossscale_losses: NT-Xent over negatives equals the official loss and gradients",
          "[parity][crossscale]") {
  const auto g = test::golden_tensors("crossscale_losses", "contrastive.safetensors").tensors;
  const torch::Tensor zi = g.at("zi"), zj = g.at("zj");  // (8, 32)
  for (const auto& [variant, tau] : {std::pair{"class_default", 0.1}, std::pair{"model_usage", 0.5}}) {
    INFO(variant);
    const std::string v = variant;
    const NtXentResult r = run_nt_xent(zi, zj, tau, NtXentDenominator::negatives);
    check_close(r.loss, g.at(v + ".loss"), 1e-5, 0.0, "loss");
    check_close(r.grad_zi, g.at(v + ".grad_zi"), 1e-6, 1e-4, "grad zi");
    check_close(r.grad_zj, g.at(v + ".grad_zj"), 1e-6, 1e-4, "grad zj");
    // The golden similarity pieces give the same number by the documented formula.
    const torch::Tensor by_formula =
        (-torch::log(g.at(v + ".sim_pos") / (g.at(v + ".sim_neg").sum(-1) + 1e-8))).mean().reshape({1});
    check_close(by_formula, g.at(v + ".loss"), 1e-5, 0.0, "formula on the golden similarities");
    // SimCLR's denominator (the positive included) is a different loss: at tau 0.1 the class
    // default's official value is negative, which a cross-entropy never is.
    const NtXentResult simclr = run_nt_xent(zi, zj, tau, NtXentDenominator::all);
    CHECK(max_diff(simclr.loss, g.at(v + ".loss")) > 1e-2);
  }
  CHECK(g.at("class_default.loss").item<float>() < 0.0f);
}

TEST_CASE("crossscale_losses: the BatchNorm1d predictor equals the official one in train and eval mode",
          "[parity][crossscale]") {
  const auto g = test::golden_tensors("crossscale_losses", "predictor.safetensors").tensors;
  const torch::Tensor orig = g.at("dec_emb_orig"), crop = g.at("dec_emb_crop");  // (4, 17, 32)
  const int64_t L = orig.size(1) - 1, d = orig.size(2), hidden = g.at("weights.0.weight").size(0);
  auto load = [&] {
    CrossPredictor p(d, L, hidden, torch::TensorOptions());
    torch::NoGradGuard no_grad;
    auto params = p->named_parameters();
    auto buffers = p->named_buffers();
    for (const auto& [name, value] : g) {
      if (name.rfind("weights.", 0) != 0) continue;
      const std::string key = name.substr(8);
      torch::Tensor* dst = params.find(key) ? params.find(key) : buffers.find(key);
      INFO(key);
      REQUIRE(dst != nullptr);
      REQUIRE(dst->numel() == value.numel());  // num_batches_tracked is [1] there, a scalar here
      dst->copy_(value.reshape(dst->sizes()));
    }
    return p;
  };
  const torch::Tensor target = orig.slice(1, 1), source = crop.slice(1, 1);  // (4, 16, 32) patch tokens

  SECTION("train mode: batch statistics, loss, gradients, running statistics") {
    CrossPredictor p = load();
    p->train();
    auto x = source.clone().requires_grad_(true);
    auto h = p->fc1(x);  // (4, 16, 64)
    check_close(h, g.at("train.linear1_out"), 1e-5, 1e-5, "Linear 0");
    auto bn = p->norm(h);
    check_close(bn, g.at("train.bn_out"), 1e-5, 1e-5, "BatchNorm1d(L) train");
    auto pred = p->fc2(torch::relu(bn));
    check_close(pred, g.at("train.cross_pred"), 1e-5, 1e-5, "prediction");
    auto loss = token_mse(pred, target).mean();  // forward_loss_mse, mask None: the mean of all
    check_close(loss.reshape({1}), g.at("train.loss_cd"), 1e-6, 1e-5, "loss_cd");
    loss.backward();
    check_close(x.grad(), g.at("train.grad_input"), 1e-7, 1e-4, "d loss / d input");
    for (const auto& item : p->named_parameters()) {
      INFO(item.key());
      check_close(item.value().grad(), g.at("train.grad." + item.key()), 1e-7, 1e-4, "parameter gradient");
    }
    check_close(p->norm->running_mean, g.at("train.after.1.running_mean"), 1e-6, 0.0, "running mean");
    check_close(p->norm->running_var, g.at("train.after.1.running_var"), 1e-6, 0.0, "running var");
    CHECK(p->norm->num_batches_tracked.item<int64_t>() ==
          g.at("train.after.1.num_batches_tracked").item<int64_t>());
    // One forward through the module is the same as the pieces above.
    CrossPredictor again = load();
    again->train();
    check_close(again(source), g.at("train.cross_pred"), 1e-5, 1e-5, "CrossPredictor::forward");
  }
  SECTION("eval mode: running statistics") {
    CrossPredictor p = load();
    p->eval();
    torch::NoGradGuard no_grad;
    auto pred = p(source);
    check_close(pred, g.at("eval.cross_pred"), 1e-5, 1e-5, "prediction");
    check_close(token_mse(pred, target).mean().reshape({1}), g.at("eval.loss_cd"), 1e-6, 1e-5, "loss_cd");
  }
}
