// PSTS: the stage schedule (plateaus and linear blends, any order), per-sample stage draws from
// device weights, and on a constructed set of patch features that each stage adds the expected ones.
#include "methods/psts.h"

#include "pch/torch_pch.h"

#include "harness/check.h"
#include "tests/support/catch.h"

using namespace ablate;

namespace {

void check_weights(const PstsWeights& w, double near, double far, double random) {
  CHECK(w[kPstsNear] == Approx(near).margin(1e-12));
  CHECK(w[kPstsFar] == Approx(far).margin(1e-12));
  CHECK(w[kPstsRandom] == Approx(random).margin(1e-12));
}

// Features of 8 patches in 3-D. Patch 0 (the seed) points along x.
//   1, 2: 10 and 20 degrees from x (near);  3, 4: 90 degrees (orthogonal);
//   5, 6: 170 and 180 degrees (far);        7: 60 degrees.
torch::Tensor constructed() {
  const double deg[8] = {0, 10, 20, 90, 90, 170, 180, 60};
  auto f = torch::zeros({1, 8, 3});
  for (int i = 0; i < 8; ++i) {
    f[0][i][0] = std::cos(deg[i] * M_PI / 180);
    f[0][i][1] = std::sin(deg[i] * M_PI / 180);
  }
  f[0][4][1] = 0.0;  // patch 4 orthogonal along z instead
  f[0][4][2] = 1.0;
  return f * 3.0;  // cosine ignores the scale
}

std::vector<int64_t> sorted_added(const torch::Tensor& keep) {
  auto added = std::get<0>(keep.slice(1, 1).sort(1))[0];
  return std::vector<int64_t>(added.data_ptr<int64_t>(), added.data_ptr<int64_t>() + added.numel());
}

}  // namespace

TEST_CASE("stage weights: plateaus and linear blends", "[psts]") {
  const std::vector<PstsStage> order{PstsStage::near, PstsStage::far, PstsStage::random};
  const std::vector<double> b{0.35, 0.375, 0.725, 0.75};
  check_weights(psts_stage_weights(0.0, order, b), 1, 0, 0);
  check_weights(psts_stage_weights(0.34, order, b), 1, 0, 0);
  check_weights(psts_stage_weights(0.3625, order, b), 0.5, 0.5, 0);
  check_weights(psts_stage_weights(0.36875, order, b), 0.25, 0.75, 0);
  check_weights(psts_stage_weights(0.5, order, b), 0, 1, 0);
  check_weights(psts_stage_weights(0.7375, order, b), 0, 0.5, 0.5);
  check_weights(psts_stage_weights(0.9, order, b), 0, 0, 1);
  check_weights(psts_stage_weights(1.0, order, b), 0, 0, 1);
  // Another order.
  const std::vector<PstsStage> rev{PstsStage::random, PstsStage::near, PstsStage::far};
  check_weights(psts_stage_weights(0.1, rev, b), 0, 0, 1);
  check_weights(psts_stage_weights(0.3625, rev, b), 0.5, 0, 0.5);
  check_weights(psts_stage_weights(0.8, rev, b), 0, 1, 0);
  // validate() refuses these at load (config_io_test); reaching here would be a bug.
  CHECK_THROWS_AS(psts_stage_weights(0.5, {PstsStage::near, PstsStage::near, PstsStage::far}, b), InternalError);
  CHECK_THROWS_AS(psts_stage_weights(0.5, order, {0.5, 0.4, 0.6, 0.7}), InternalError);
}

TEST_CASE("per-sample stages follow the device weights", "[psts]") {
  torch::manual_seed(0);
  CHECK((psts_draw_stages(torch::tensor({0.f, 1.f, 0.f}), 500) == kPstsFar).all().item<bool>());
  CHECK((psts_draw_stages(torch::tensor({1.f, 0.f, 0.f}), 500) == kPstsNear).all().item<bool>());
  CHECK((psts_draw_stages(torch::tensor({0.f, 0.f, 1.f}), 500) == kPstsRandom).all().item<bool>());
  auto s = psts_draw_stages(torch::tensor({0.25f, 0.f, 0.75f}), 20000);
  auto freq = torch::bincount(s, {}, 3).to(torch::kFloat32) / 20000.0;
  CHECK(torch::allclose(freq, torch::tensor({0.25f, 0.f, 0.75f}), 0.0, 0.015));
}

TEST_CASE("each stage adds the expected patches", "[psts]") {
  auto f = constructed();
  auto seed = torch::tensor({{0}}, torch::kInt64);
  auto stage = [](int64_t s) { return torch::tensor({s}, torch::kInt64); };
  // near: the two most similar to the seed.
  CHECK(sorted_added(psts_fill(f, seed, 3, stage(kPstsNear), 1)) == std::vector<int64_t>{1, 2});
  // far: the two least similar (cos 180 = -1, cos 170).
  CHECK(sorted_added(psts_fill(f, seed, 3, stage(kPstsFar), 1)) == std::vector<int64_t>{5, 6});
  // Iterative: after adding 6 (opposite), the next far patch is the one farthest from {0, 6}:
  // 3 and 4 are at 90 degrees from both; 5 is 10 degrees from 6, 7 is 60 from 0.
  auto far2 = sorted_added(psts_fill(f, seed, 3, stage(kPstsFar), 2));
  CHECK(far2[1] == 6);
  CHECK((far2[0] == 3 || far2[0] == 4));
  // random: uniform over the 7 unselected patches.
  torch::manual_seed(0);
  const int64_t n = 7000;
  auto keep = psts_fill(f.expand({n, 8, 3}).contiguous(), seed.expand({n, 1}).contiguous(), 2,
                        stage(kPstsRandom).expand({n}).contiguous(), 1);
  auto freq = torch::bincount(keep.select(1, 1), {}, 8).to(torch::kFloat32) / double(n);
  CHECK(freq[0].item<float>() == 0.0f);
  CHECK(torch::allclose(freq.slice(0, 1), torch::full({7}, 1.0f / 7), 0.0, 0.02));
  // Mixed stages in one batch: each sample follows its own.
  auto mixed = psts_fill(torch::cat({f, f}), torch::cat({seed, seed}), 3,
                         torch::tensor({kPstsNear, kPstsFar}, torch::kInt64), 1);
  CHECK(sorted_added(mixed.slice(0, 0, 1)) == std::vector<int64_t>{1, 2});
  CHECK(sorted_added(mixed.slice(0, 1, 2)) == std::vector<int64_t>{5, 6});
  // The seed stays first and nothing repeats.
  CHECK(mixed.select(1, 0).eq(0).all().item<bool>());
}
