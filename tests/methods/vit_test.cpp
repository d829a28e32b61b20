// ViT encoder: parameter counts of every named size against harness/model_sizes.h (big sizes built
// on the meta device, small ones for real), MAE's sin-cos position embedding against its formula,
// patchify layout, and the encoder's masking / CLS / block-output contracts.
#include "methods/vit.h"

#include "pch/torch_pch.h"

#include <cmath>

#include "harness/model_sizes.h"
#include "methods/masking.h"
#include "tests/support/catch.h"
#include "tests/support/modules.h"

using namespace ablate;

namespace {

VitOptions options_of(const VitSize& s, int64_t img, int64_t patch, bool qkv_bias) {
  ModelConfig m;
  m.size = s.name;
  m.img_size = int(img);
  m.patch_size = int(patch);
  m.qkv_bias = qkv_bias;
  return VitOptions::from(m);
}

}  // namespace

TEST_CASE("every named size has exactly encoder_params() parameters (meta device)", "[vit]") {
  const auto meta = torch::TensorOptions().device(torch::kMeta);
  for (const VitSize& s : vit_sizes()) {
    for (bool qkv_bias : {true, false}) {
      const int patch = s.default_patch;
      VisionTransformer vit(options_of(s, patch * 14, patch, qkv_bias), meta);
      INFO(s.name << " qkv_bias " << qkv_bias);
      CHECK(numel_of(*vit) == encoder_params(s, patch, qkv_bias));
      CHECK(vit->blocks.size() == size_t(s.depth));
      CHECK(vit->blocks[0]->attn.size() == size_t(s.branches));
    }
  }
  // The paper's figure for the 12x4 model (no qkv bias) is stated to 10 k.
  VisionTransformer l12x4(options_of(vit_size("vit_l12x4"), 224, 16, false), meta);
  CHECK(std::abs(double(numel_of(*l12x4)) - 605.26e6) < 0.01e6);
}

TEST_CASE("small sizes built for real count the same and run", "[vit]") {
  for (const char* name : {"vit_micro", "vit_tiny"}) {
    VisionTransformer vit(options_of(vit_size(name), 64, 8, true));
    CHECK(numel_of(*vit) == encoder_params(vit_size(name), 8, true));
    auto f = vit->forward_features(torch::randn({2, 3, 64, 64}));
    CHECK(f.sizes() == torch::IntArrayRef({2, vit->options().dim}));
    CHECK(torch::isfinite(f).all().item<bool>());
  }
}

TEST_CASE("sin-cos position embedding follows MAE's formula", "[vit]") {
  // dim 8: omega = 10000^(-k/2), k = 0, 1 -> {1, 0.01}; token (i, j) =
  // [sin j, sin .01j, cos j, cos .01j, sin i, sin .01i, cos i, cos .01i].
  const int64_t G = 3;
  auto pe = sincos_pos_embed_2d(8, G);
  REQUIRE(pe.sizes() == torch::IntArrayRef({G * G, 8}));
  for (int64_t i = 0; i < G; ++i)
    for (int64_t j = 0; j < G; ++j) {
      const double e[8] = {std::sin(j), std::sin(0.01 * j), std::cos(j), std::cos(0.01 * j),
                           std::sin(i), std::sin(0.01 * i), std::cos(i), std::cos(0.01 * i)};
      for (int c = 0; c < 8; ++c) CHECK(pe[i * G + j][c].item<float>() == Approx(e[c]).margin(1e-6));
    }
  // GSD scaling multiplies positions: scale 2 on a 3x3 grid = the unscaled 5x5 grid at even positions.
  auto scaled = sincos_pos_embed_2d_scaled(16, 3, torch::tensor({1.0f, 2.0f}));
  auto big = sincos_pos_embed_2d(16, 5);
  CHECK(torch::allclose(scaled[0], sincos_pos_embed_2d(16, 3), 1e-5, 1e-6));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j)
      CHECK(torch::allclose(scaled[1][i * 3 + j], big[(2 * i) * 5 + 2 * j], 1e-5, 1e-5));
}

TEST_CASE("patchify lays out pixels as MAE and unpatchify inverts it", "[vit]") {
  const int64_t p = 4;
  auto img = torch::randn({2, 3, 8, 8});
  auto x = patchify(img, p);
  REQUIRE(x.sizes() == torch::IntArrayRef({2, 4, p * p * 3}));
  // patch (i, j) = l = i*2 + j, element (r*p + c)*3 + ch = img[ch, i*p + r, j*p + c].
  for (int64_t l : {0, 1, 3})
    for (int64_t r : {0, 3})
      for (int64_t c : {1, 2})
        for (int64_t ch = 0; ch < 3; ++ch)
          CHECK(x[1][l][(r * p + c) * 3 + ch].item<float>() ==
                img[1][ch][(l / 2) * p + r][(l % 2) * p + c].item<float>());
  CHECK(torch::equal(unpatchify(x, p), img));
}

TEST_CASE("encoder masking, CLS and block outputs", "[vit]") {
  torch::manual_seed(0);
  VisionTransformer vit(options_of(vit_size("vit_micro"), 32, 8, true));
  vit->eval();
  auto img = torch::randn({2, 3, 32, 32});
  auto tokens = vit->embed(img);  // (2, 16, 64)
  // Attention is permutation-equivariant and positions are added before gathering, so the CLS
  // output does not depend on the order of the kept tokens.
  auto all = vit->encode(tokens, {});
  auto perm = torch::stack({torch::randperm(16), torch::randperm(16)});
  std::vector<torch::Tensor> blocks;
  auto shuffled = vit->encode(tokens, perm, &blocks);
  CHECK(torch::allclose(all.select(1, 0), shuffled.select(1, 0), 1e-4, 1e-5));
  CHECK(blocks.size() == 2);
  CHECK(torch::allclose(vit->norm(blocks.back()), shuffled, 1e-5, 1e-6));
  // Keeping a subset gives 1 + N_vis tokens.
  auto split = random_masking(2, 16, 0.75, torch::kCPU);
  CHECK(vit->encode(tokens, split.ids_keep).sizes() == torch::IntArrayRef({2, 5, 64}));
}
