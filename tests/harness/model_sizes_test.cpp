// Parameter counts against figures published outside this code (timm's parameter totals, the
// papers' stated sizes) and FLOP counts against a hand-worked micro example.
#include "harness/model_sizes.h"

#include <cmath>

#include "harness/check.h"
#include "tests/support/catch.h"

using namespace ablate;

namespace {
int64_t enc(const char* name, int patch, bool qkv_bias = true) { return encoder_params(vit_size(name), patch, qkv_bias); }
double rel_err(double a, double b) { return std::fabs(a - b) / b; }
}  // namespace

TEST_CASE("encoder parameter counts match timm's ViT-B and ViT-L exactly", "[model_sizes]") {
  // timm's totals include a 1000-class head and a learned position embedding of (L + 1) x D;
  // ours has neither (sin-cos position embedding is fixed, no head).
  // vit_base_patch16_224: 86,567,656 - head (768*1000 + 1000) - pos (197*768)
  CHECK(enc("vit_b", 16) == 86567656 - (768 * 1000 + 1000) - 197 * 768);
  // vit_large_patch16_224: 304,326,632 - head (1024*1000 + 1000) - pos (197*1024)
  CHECK(enc("vit_l", 16) == 304326632 - (1024 * 1000 + 1000) - 197 * 1024);
}

TEST_CASE("encoder parameter counts are within 1% of the stated figures", "[model_sizes]") {
  CHECK(rel_err(enc("vit_b", 16), 86e6) < 0.01);
  CHECK(rel_err(enc("vit_l", 16), 304e6) < 0.01);
  CHECK(rel_err(enc("vit_h", 14), 632e6) < 0.01);
  CHECK(rel_err(enc("vit_l12x4", 16, false), 605.26e6) < 0.0005);  // the paper gives 5 digits
  CHECK(rel_err(enc("vit_2b4", 16, false), 2.4e9) < 0.01);
  // "1.3B" is a truncated count: 1.36B.
  int64_t b13 = enc("vit_1b3", 16, false);
  CHECK(b13 >= 1300000000);
  CHECK(b13 < 1400000000);
  for (const VitSize& s : vit_sizes()) {
    INFO(s.name);
    CHECK(s.dim % s.heads == 0);
    if (s.stated_params > 0) CHECK(rel_err(enc(s.name.c_str(), s.default_patch, s.branches == 1), s.stated_params) < 0.05);
  }
}

TEST_CASE("parallel branches: a 12x4 layer stack is four times the blocks of 12x1", "[model_sizes]") {
  // Same width, same patch: only the per-block parameters differ (x4).
  VitSize one = vit_size("vit_l12x4");
  one.branches = 1;
  int64_t four = enc("vit_l12x4", 16, false), single = encoder_params(one, 16, false);
  int64_t d = 1024, h = 4096;
  int64_t block = 2 * d + 3 * d * d + d * d + d + 2 * d + d * h + h + h * d + d;  // no qkv bias
  CHECK(four - single == 3 * 12 * block);
}

TEST_CASE("ViT-S as 6 x 2 parallel branches has exactly ViT-S's parameters", "[model_sizes]") {
  // 12 blocks either way (6 layers x 2 branches vs 12 x 1), same width, patch and stem.
  for (bool qkv_bias : {true, false}) CHECK(enc("vit_s6x2", 16, qkv_bias) == enc("vit_s", 16, qkv_bias));
  CHECK(enc("vit_s6x2", 16) == 21590016);  // the table in experiments/README.md
}

TEST_CASE("MAE decoder count by hand (ViT-B encoder, 8 x 512)", "[model_sizes]") {
  ModelConfig m;
  m.size = "vit_b";
  m.patch_size = 16;
  m.decoder = DecoderKind::mae;
  m.dec_depth = 8;
  m.dec_dim = 512;
  int64_t d = 512, block = 12 * d * d + 13 * d;  // qkv+proj 4d^2+4d, MLP 8d^2+5d, 2 LNs 4d
  int64_t expected = (768 * d + d) + d + 8 * block + 2 * d + (d * 768 + 768);
  CHECK(decoder_params(m) == expected);
}

TEST_CASE("CrossMAE decoder count by hand (micro)", "[model_sizes]") {
  ModelConfig m;
  m.size = "vit_micro";  // D = 64, depth 2
  m.patch_size = 8;
  m.decoder = DecoderKind::cross;
  m.dec_depth = 1;
  m.dec_dim = 32;
  // mask token 32; block: LN 64, q 1056, kv 64*64+64 = 4160, proj 1056, LN 64, MLP 8352;
  // final LN 64; prediction 32*192 + 192 = 6336.
  CHECK(decoder_params(m) == 32 + (64 + 1056 + 4160 + 1056 + 64 + 8352) + 64 + 6336);
  int64_t plain = decoder_params(m);
  m.dec_self_attn = true;  // + LN 64 + qkv 3*1024+96 + proj 1056 per block
  CHECK(decoder_params(m) - plain == 64 + 3168 + 1056);
  m.dec_self_attn = false;
  m.dec_depth = 2;
  int64_t two = decoder_params(m);
  m.dec_feature_map = true;  // mixing weights 2 layers x 2 blocks + one LN(64) per decoder block
  CHECK(decoder_params(m) - two == 2 * 2 + 2 * 128);
}

TEST_CASE("training FLOPs by hand (micro, 4 patches, half masked)", "[model_sizes]") {
  RunConfig c;
  c.model.size = "vit_micro";
  c.model.img_size = 16;
  c.model.patch_size = 8;  // L = 4, 192 pixels per patch
  c.model.decoder = DecoderKind::mae;
  c.model.dec_depth = 1;
  c.model.dec_dim = 32;
  c.method.mask_ratio = 0.5;  // 2 visible, T = 3 with cls
  // encoder: embed 2*2*192*64 = 49152; per layer qkv 73728 + QK 1152 + AV 1152 + proj 24576 +
  // fc1 98304 + fc2 98304 = 297216, two layers.
  double encoder = 49152 + 2 * 297216;
  // decoder over 5 tokens: embed 2*3*64*32 = 12288; block qkv 30720 + QK 1600 + AV 1600 +
  // proj 10240 + fc1 40960 + fc2 40960; prediction 2*4*32*192 = 49152.
  double decoder = 12288 + (30720 + 1600 + 1600 + 10240 + 40960 + 40960) + 49152;
  CHECK(train_flops_per_image(c) == 3 * (encoder + decoder));  // integers: exact in double

  // Cross decoder reconstructing 1 patch (recon 0.25): Q = 1, M = 3.
  c.model.decoder = DecoderKind::cross;
  c.method.recon_ratio = 0.25;
  // q 2*1*32*32 = 2048, kv 2*3*64*64 = 24576, QK 2*1*3*32 = 192, AV 192, proj 2048,
  // MLP 2*1*32*128*2 = 16384; prediction 2*1*32*192 = 12288.
  double cross = (2048 + 24576 + 192 + 192 + 2048 + 16384) + 12288;
  CHECK(train_flops_per_image(c) == 3 * (encoder + cross));
}

TEST_CASE("visible and reconstructed counts: MAE's int(L * (1 - m)) and floor(r * L)", "[model_sizes]") {
  CHECK(visible_count(196, 0.75) == 49);
  CHECK(visible_count(196, 0.85) == 29);  // 29.4
  CHECK(visible_count(64, 0.75) == 16);
  CHECK(visible_count(49, 0.9) == 4);     // 4.9
  CHECK(visible_count(196, 0.9) == 19);   // 19.6
  CHECK(recon_count(196, 0.75, 0.0) == 147);
  CHECK(recon_count(196, 0.85, 0.25) == 49);
  CHECK(recon_count(196, 0.85, 0.5) == 98);
  CHECK(recon_count(64, 0.75, 0.25) == 16);
  CHECK(recon_count(196, 0.75, 0.1) == 19);  // 19.6
  // token_counts (validation, FLOPs, memory) is the same arithmetic: 14 x 14 patches.
  ModelConfig m;
  m.img_size = 224;
  m.patch_size = 16;
  MethodConfig me;
  me.mask_ratio = 0.85;
  me.recon_ratio = 0.25;
  const TokenCounts t = token_counts(m, me);
  CHECK(t.patches == 196);
  CHECK(t.visible == 29);
  CHECK(t.masked == 167);
  CHECK(t.recon == 49);
}

TEST_CASE("unknown sizes are a ConfigError with suggestions", "[model_sizes]") {
  CHECK(find_vit_size("vit_q") == nullptr);
  try {
    vit_size("vit_bb");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.key == "model.size");
    CHECK(e.hint.find("did you mean 'vit_b'") != std::string::npos);
  }
}
