// The plug-in methods end to end on vit_micro at 64x64: lr rules, config checks, a forward +
// backward of every method variant with finite loss and a finite gradient on every trainable
// parameter, the reconstruction figure's masks, SelectiveMAE's HOG-chosen visible set, and loss
// decrease over 30 Adam steps on a fixed batch of real EuroSAT images.
#include "methods/method.h"

#include "pch/torch_pch.h"

#include <filesystem>

#include <ATen/autocast_mode.h>

#include "datasets/augment.h"
#include "datasets/image_io.h"
#include "harness/check.h"
#include "harness/config_io.h"
#include "methods/hog.h"
#include "methods/masking.h"
#include "tests/support/catch.h"
#include "tests/support/test_config.h"

using namespace ablate;
using ablate::test::tiny_config;

namespace {

// A fixed batch of real EuroSAT images, ImageNet-normalised, or undefined when absent.
torch::Tensor eurosat_batch(int64_t n) {
  const auto root = std::filesystem::path(ABLATE_TEST_DATA_ROOT) / "eurosat_rgb";
  if (!std::filesystem::exists(root) || !image_decoding_available()) return {};
  const char* classes[] = {"AnnualCrop", "Forest", "Highway", "Industrial", "Residential", "SeaLake", "River", "Pasture"};
  std::vector<torch::Tensor> imgs;
  for (int64_t i = 0; i < n; ++i) {
    const std::string cls = classes[i % 8];
    RgbImage im = read_image(root / cls / (cls + "_" + std::to_string(i / 8 + 1) + ".jpg"));
    imgs.push_back(torch::from_blob(im.pixels.data(), {im.height, im.width, 3}, torch::kUInt8)
                       .permute({2, 0, 1}).clone());
  }
  return normalize_pixels(torch::stack(imgs));
}

}  // namespace

TEST_CASE("lr rules", "[method]") {
  MethodConfig m;
  m.mask_ratio = 0.85;
  m.recon_ratio = 0.25;
  m.lr_rule = LrRule::m_over_r;
  CHECK(lr_rule_multiplier(m) == Approx(3.4));
  m.lr_rule = LrRule::r_over_m;
  CHECK(lr_rule_multiplier(m) == Approx(0.25 / 0.85));
  m.lr_rule = LrRule::none;
  CHECK(lr_rule_multiplier(m) == 1.0);
  m.lr_rule = LrRule::m_over_r;
  m.recon_ratio = 0.0;  // all masked patches reconstructed: r = m
  CHECK(lr_rule_multiplier(m) == Approx(1.0));
}

TEST_CASE("configurations methods cannot run are refused by validation, and are bugs past it", "[method]") {
  RunConfig c = tiny_config(MethodKind::selectivemae);
  c.model.decoder = DecoderKind::mae;
  CHECK_THROWS_AS(validate(c), ConfigError);
  CHECK_THROWS_AS(make_method(c), InternalError);
  c = tiny_config(MethodKind::crossscale);
  c.method.loss_re = false;
  c.method.multiscale = false;
  CHECK_THROWS_AS(validate(c), ConfigError);
  CHECK_THROWS_AS(make_method(c), InternalError);
  c = tiny_config(MethodKind::crossscale);
  c.method.cp_head = CpHead::bn;
  c.method.cp_tokens = CpTokens::masked;
  c.method.view_masks = ViewMasks::shared;
  CHECK_THROWS_AS(validate(c), ConfigError);
  CHECK_THROWS_AS(make_method(c), InternalError);
  c = tiny_config(MethodKind::mae);
  c.method.recon_ratio = 0.9;
  CHECK_THROWS_AS(validate(c), ConfigError);
  CHECK_THROWS_AS(make_method(c), InternalError);
}

TEST_CASE("forward + backward of every method: finite loss, gradient on every parameter", "[method]") {
  std::vector<std::pair<std::string, RunConfig>> variants;
  variants.emplace_back("mae", tiny_config(MethodKind::mae));
  {
    RunConfig c = tiny_config(MethodKind::crossmae);
    c.model.dec_depth = 2;
    c.model.dec_self_attn = true;
    c.model.dec_feature_map = true;
    variants.emplace_back("crossmae+self+fm", c);
  }
  {
    RunConfig c = tiny_config(MethodKind::selectivemae);
    c.method.psts = true;
    c.method.hog_select = HogSelect::multinomial;
    c.method.hog_mode = HogMode::official;
    variants.emplace_back("selectivemae psts multinomial official", c);
  }
  {
    RunConfig c = tiny_config(MethodKind::selectivemae);
    c.method.psts = true;
    c.method.psts_mix = PstsMix::split;
    variants.emplace_back("selectivemae psts split", c);
  }
  {
    RunConfig c = tiny_config(MethodKind::selectivemae);
    c.method.recon_select = ReconSelect::random;
    variants.emplace_back("selectivemae topk paper", c);
  }
  {
    RunConfig c = tiny_config(MethodKind::crossscale);
    c.model.gsd_pos = true;
    c.method.pool = Pool::mean;
    c.method.dec_negatives = true;
    variants.emplace_back("crossscale all terms", c);
  }
  {
    RunConfig c = tiny_config(MethodKind::crossscale);
    c.method.enc_negatives = false;
    c.method.proj_head = false;
    c.model.decoder = DecoderKind::cross;
    c.method.recon_ratio = 0.25;
    c.method.cp_tokens = CpTokens::masked;  // the cross decoder has tokens for the reconstructed patches only
    c.method.view_masks = ViewMasks::shared;
    c.method.cp_head = CpHead::gelu;
    c.method.cs_final_norm = true;
    variants.emplace_back("crossscale cosine cross-decoder", c);
  }
  {
    RunConfig c = tiny_config(MethodKind::crossscale);
    c.method.cc_denominator = CcDenominator::all;
    c.method.re_reduction = ReReduction::mean;
    c.method.square_crop = true;
    c.method.cs_final_norm = true;
    variants.emplace_back("crossscale simclr mean shared-norm", c);
  }
  {
    RunConfig c = tiny_config(MethodKind::crossscale);
    c.method.multiscale = false;
    variants.emplace_back("crossscale single view", c);
  }
  torch::manual_seed(0);
  auto images = torch::randn({4, 3, 64, 64});
  for (auto& [label, cfg] : variants) {
    INFO(label);
    auto method = make_method(cfg);
    method->train();
    auto lt = method->forward(StepInputs{images, torch::tensor({0.3f, 0.3f, 0.4f})});
    REQUIRE(lt.total.dim() == 0);
    CHECK(std::isfinite(lt.total.item<double>()));
    CHECK(lt.per_sample.sizes() == torch::IntArrayRef({4}));
    CHECK(lt.per_sample.requires_grad());  // InfoBatch backpropagates through the reweighted samples
    CHECK(lt.per_sample.mean().item<double>() == Approx(lt.total.item<double>()).epsilon(1e-5));
    CHECK_FALSE(lt.terms.empty());
    lt.total.backward();
    // Cross-Scale MAE's public code discards the encoder's final norm (method.cs_final_norm off):
    // it is frozen like CrossMAE's under feature mapping; every other parameter gets a gradient.
    const bool norm_unused = cfg.method.name == MethodKind::crossscale && !cfg.method.cs_final_norm;
    for (const auto& p : method->named_parameters()) {
      INFO(p.key());
      // Only the encoder's final norm is frozen: under feature mapping, or discarded by Cross-Scale MAE.
      if (!p.value().requires_grad()) {
        CHECK(((label == "crossmae+self+fm" || norm_unused) && p.key().rfind("encoder.norm.", 0) == 0));
        continue;
      }
      REQUIRE(p.value().grad().defined());
      CHECK(torch::isfinite(p.value().grad()).all().item<bool>());
      CHECK(p.value().grad().abs().sum().item<double>() > 0.0);
    }
  }
}

TEST_CASE("crossscale reports the enabled terms, weighted", "[method]") {
  RunConfig c = tiny_config(MethodKind::crossscale);
  c.method.w_cc = 0.5;
  c.method.w_cp = 2.0;
  torch::manual_seed(0);
  auto lt = make_method(c)->forward(StepInputs{torch::randn({4, 3, 64, 64}), {}});
  REQUIRE(lt.terms.size() == 3);
  CHECK(lt.terms[0].first == "loss_re");
  CHECK(lt.terms[1].first == "loss_cc");
  CHECK(lt.terms[2].first == "loss_cp");
  const double expect = lt.terms[0].second.item<double>() + 0.5 * lt.terms[1].second.item<double>() +
                        2.0 * lt.terms[2].second.item<double>();
  CHECK(lt.total.item<double>() == Approx(expect).epsilon(1e-5));
}

TEST_CASE("crossscale L_re sums the two views (public code) or averages them", "[method]") {
  RunConfig c = tiny_config(MethodKind::crossscale);
  c.method.loss_cc = false;
  c.method.loss_cp = false;
  auto run = [&](ReReduction reduction, bool with_crop) {
    RunConfig v = c;
    v.method.re_reduction = reduction;
    v.method.multiscale = with_crop;
    torch::manual_seed(0);
    auto method = make_method(v);
    torch::manual_seed(1);  // same images, masks and crop for every variant
    return method->forward(StepInputs{torch::randn({4, 3, 64, 64}), {}}).total.item<double>();
  };
  const double sum = run(ReReduction::sum, true), mean = run(ReReduction::mean, true), single = run(ReReduction::sum, false);
  CHECK(sum == Approx(2.0 * mean).epsilon(1e-6));
  CHECK(sum > single);  // the original view's term plus the crop's
}

TEST_CASE("reconstruction figure and SelectiveMAE's HOG-chosen visible set", "[method]") {
  torch::manual_seed(0);
  auto images = torch::randn({3, 3, 64, 64});
  images.slice(3, 0, 32).fill_(0.5);  // flat left half: never chosen by top-k HOG energy
  for (MethodKind name : {MethodKind::mae, MethodKind::selectivemae}) {
    INFO(name_of(name));
    RunConfig c = tiny_config(name);
    auto method = make_method(c);
    method->eval();
    torch::Tensor shown, selected;
    auto rec = method->reconstruct(images, &shown, &selected);
    REQUIRE(rec.sizes() == images.sizes());
    const int64_t L = 64, keep = visible_count(L, c.method.mask_ratio),
                  n_rec = recon_count(L, c.method.mask_ratio, c.method.recon_ratio);
    CHECK(torch::equal(shown.sum(1), torch::full({3}, double(keep))));
    CHECK(torch::equal(selected.sum(1), torch::full({3}, double(n_rec))));
    CHECK((shown * selected).sum().item<double>() == 0.0);
    // Visible patches are shown as given.
    // (B, C, grid row, row in patch, grid col, col in patch) -> (B, C, H, W).
    auto vis = shown.view({3, 1, 8, 1, 8, 1}).expand({3, 3, 8, 8, 8, 8}).reshape({3, 3, 64, 64});
    CHECK(torch::allclose(rec * vis, images * vis));
    if (name == MethodKind::selectivemae) {
      auto scores = hog_patch_scores(images, 8, HogMode::paper);
      auto top = ids_to_mask(std::get<1>(scores.topk(keep, 1)), L);
      CHECK(torch::equal(shown, top));
    }
  }
}

TEST_CASE("losses decrease over 30 Adam steps on real EuroSAT images", "[method]") {
  auto images = eurosat_batch(16);
  if (!images.defined()) ABLATE_SKIP("EuroSAT not found");
  for (MethodKind name : {MethodKind::mae, MethodKind::selectivemae, MethodKind::crossscale}) {
    INFO(name_of(name));
    torch::manual_seed(0);
    auto method = make_method(tiny_config(name));
    method->train();
    torch::optim::Adam opt(method->parameters(), torch::optim::AdamOptions(1e-3));
    std::vector<double> losses;
    for (int step = 0; step < 30; ++step) {
      opt.zero_grad();
      auto lt = method->forward(StepInputs{images, {}});
      lt.total.backward();
      opt.step();
      losses.push_back(lt.total.item<double>());
    }
    const double first = (losses[0] + losses[1] + losses[2]) / 3, last = (losses[27] + losses[28] + losses[29]) / 3;
    WARN(name_of(name) << ": mean loss of steps 1-3 " << first << ", of steps 28-30 " << last);
    CHECK(last < 0.9 * first);
  }
}

TEST_CASE("forward under bf16 autocast gives a finite float32 loss", "[method]") {
  torch::manual_seed(0);
  auto images = torch::randn({4, 3, 64, 64});
  for (MethodKind name : {MethodKind::mae, MethodKind::crossmae, MethodKind::selectivemae, MethodKind::crossscale}) {
    INFO(name_of(name));
    RunConfig c = tiny_config(name);
    c.method.psts = name == MethodKind::selectivemae;
    auto method = make_method(c);
    at::autocast::set_autocast_enabled(torch::kCPU, true);
    at::autocast::set_autocast_dtype(torch::kCPU, at::kBFloat16);
    LossTerms lt;
    try {
      lt = method->forward(StepInputs{images, torch::tensor({0.f, 1.f, 0.f})});
    } catch (...) {
      at::autocast::set_autocast_enabled(torch::kCPU, false);
      throw;
    }
    at::autocast::set_autocast_enabled(torch::kCPU, false);
    at::autocast::clear_cache();
    CHECK(lt.total.scalar_type() == torch::kFloat32);
    CHECK(std::isfinite(lt.total.item<double>()));
    lt.total.backward();
    CHECK(torch::isfinite(method->encoder()->cls_token.grad()).all().item<bool>());
  }
}
