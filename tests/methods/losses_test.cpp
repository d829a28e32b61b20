// Losses against hand-computed values on tiny tensors.
#include "methods/losses.h"

#include "methods/pch/torch_pch.h"

#include <cmath>

#include "tests/support/catch.h"

using namespace ablate;

TEST_CASE("normalised pixel targets and reconstruction MSE", "[losses]") {
  // One 2x2 image, patch 1: four patches of 3 channel values each.
  auto img = torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, 9.f, 10.f, 11.f, 12.f}).view({1, 3, 2, 2});
  auto ids = torch::tensor({{2, 0}}, torch::kInt64);
  auto raw = patch_targets(img, 1, ids, false);  // patch 2 = pixel (1, 0): channels 3, 7, 11
  CHECK(torch::equal(raw, torch::tensor({{{3.f, 7.f, 11.f}, {1.f, 5.f, 9.f}}})));
  // Normalised: mean 7, unbiased variance 16 -> (x - 7) / sqrt(16 + 1e-6).
  auto norm = patch_targets(img, 1, ids, true);
  const double s = std::sqrt(16.0 + 1e-6);
  CHECK(norm[0][0][0].item<float>() == Approx(-4.0 / s));
  CHECK(norm[0][1][2].item<float>() == Approx(4.0 / s));
  // MSE per sample: mean over patches and pixels.
  auto pred = torch::zeros({2, 2, 3});
  // Sample 0: all ones -> 1. Sample 1: errors 2 except one 0 -> five 4s over 6 values.
  auto target = torch::tensor({1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 0.f, 2.f, 2.f, 2.f, 2.f, 2.f}).view({2, 2, 3});
  auto l = reconstruction_loss(pred, target);
  CHECK(l[0].item<float>() == Approx(1.0));
  CHECK(l[1].item<float>() == Approx(20.0 / 6.0));
}

TEST_CASE("NT-Xent against the closed form", "[losses]") {
  // Two orthogonal samples, identical views: every view has positive sim 1 and two negatives at 0.
  const double t = 0.5;
  auto a = torch::tensor({{1.f, 0.f}, {0.f, 2.f}});
  auto l = nt_xent(a, a * 3.0, t);
  const double expect = std::log(2.0 + std::exp(1.0 / t)) - 1.0 / t;
  CHECK(l[0].item<float>() == Approx(expect));
  CHECK(l[1].item<float>() == Approx(expect));
  // Cross-Scale MAE's public form leaves the positive out of the denominator (and adds 1e-8).
  auto official = nt_xent(a, a * 3.0, t, NtXentDenominator::negatives);
  CHECK(official[0].item<float>() == Approx(std::log(2.0 + 1e-8) - 1.0 / t));
  CHECK(official[1].item<float>() == Approx(std::log(2.0 + 1e-8) - 1.0 / t));
  // Views at 60 degrees, samples at 90 degrees: a0 = (1, 0), b0 = (cos 60, sin 60), a1 = (0, 1),
  // b1 = (-sin 60, cos 60). Every anchor's positive is at cos 60 = 0.5. Negatives: a0 sees a1 (0)
  // and b1 (-sin 60); b0 sees a1 (sin 60) and b1 (0); a1 sees a0 (0) and b0 (sin 60); b1 sees a0
  // (-sin 60) and b0 (0). So each sample averages one anchor with negatives {0, -sin 60} and one
  // with {0, +sin 60}.
  const double r = M_PI / 3;
  auto a2 = torch::tensor({{1.f, 0.f}, {0.f, 1.f}});
  auto b2 = torch::tensor({{float(std::cos(r)), float(std::sin(r))}, {float(-std::sin(r)), float(std::cos(r))}});
  auto l2 = nt_xent(a2, b2, t);
  const double pos = 0.5 / t, s = std::sin(r) / t;
  auto ce = [&](double neg) { return -pos + std::log(std::exp(pos) + std::exp(0.0) + std::exp(neg)); };
  const double e2 = 0.5 * (ce(-s) + ce(s));
  CHECK(l2[0].item<float>() == Approx(e2).epsilon(1e-5));
  CHECK(l2[1].item<float>() == Approx(e2).epsilon(1e-5));
}

TEST_CASE("cosine (BYOL) loss", "[losses]") {
  auto a = torch::tensor({{1.f, 0.f}, {1.f, 0.f}, {2.f, 2.f}, {1.f, 0.f}});
  auto b = torch::tensor({{0.f, 5.f}, {3.f, 0.f}, {-1.f, -1.f}, {1.f, 1.f}});
  auto l = cosine_loss(a, b);
  CHECK(l[0].item<float>() == Approx(2.0));
  CHECK(l[1].item<float>() == Approx(0.0).margin(1e-6));
  CHECK(l[2].item<float>() == Approx(4.0));
  CHECK(l[3].item<float>() == Approx(2.0 - std::sqrt(2.0)));
}

TEST_CASE("token cross-prediction: MSE and InfoNCE over the batch at each position", "[losses]") {
  // B = 2, N = 2. Position 0: targets e1, e2 and predictions equal to them. Position 1: sample 0
  // predicts e2 but its target is e1 (the other sample's target e2 is its best match).
  auto target = torch::tensor({{{1.f, 0.f}, {1.f, 0.f}}, {{0.f, 1.f}, {0.f, 1.f}}});
  auto pred = torch::tensor({{{2.f, 0.f}, {0.f, 1.f}}, {{0.f, 1.f}, {0.f, 1.f}}});
  const double t = 0.5;
  auto l = token_infonce(pred, target, t);
  const double good = std::log(1.0 + std::exp(-1.0 / t));  // logits (1/t, 0), own first
  const double bad = std::log(1.0 + std::exp(1.0 / t));     // logits (0, 1/t), own first
  CHECK(l[0].item<float>() == Approx(0.5 * (good + bad)));
  CHECK(l[1].item<float>() == Approx(good));
  auto m = token_mse(pred, target);
  CHECK(m[0].item<float>() == Approx((1.0 + 1.0 + 1.0) / 4.0));  // (2-1)^2 + (0-1)^2 + (1-0)^2
  CHECK(m[1].item<float>() == Approx(0.0));
}
