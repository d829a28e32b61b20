// Foreign weights in and out, against the golden outputs of the official code: MAE's checkpoint
// gives MAE's CLS feature and masked encoder latent, timm's save_for_hf file gives timm's
// forward_features, and exporting that model reproduces timm's files. Key-layout variants
// (prefixes, split qkv, no CLS position row, .pth vs .safetensors, parallel blocks) give the same
// features; a mismatch names the keys and shapes.
#include "methods/pretrained.h"

#include "methods/pch/torch_pch.h"

#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "harness/hash.h"
#include "methods/safetensors.h"
#include "methods/torch_checkpoint.h"
#include "tests/support/catch.h"
#include "tests/support/golden.h"
#include "tests/support/temp_dir.h"

using namespace ablate;

namespace {

std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a - b).abs().max().item<double>();
}

torch::Tensor timm_images() { return test::golden_tensors("timm_vit", "inputs.safetensors").tensors.at("imgs"); }

// All tokens after the final norm, nothing masked: timm's forward_features.  (B, 1 + L, D)
torch::Tensor all_tokens(PretrainedEncoder& enc, const torch::Tensor& imgs) {
  torch::NoGradGuard ng;
  return enc.vit->forward_encoder(imgs, {});
}

std::string data_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("pretrained: MAE's checkpoint gives MAE's CLS feature and masked encoder latent",
          "[pretrained][golden]") {
  const auto file = test::golden_dir() / "mae_tiny" / "checkpoint.pth";
  // The golden model is MaskedAutoencoderViT built directly: LayerNorm's class default eps 1e-5
  // (meta.json config.norm_layer), 4 heads of width 16.
  PretrainedOptions po;
  po.heads = 4;
  po.norm_eps = 1e-5;
  PretrainedEncoder enc = load_pretrained_encoder(file, po);
  CHECK(enc.sha256 == sha256_hex(file_bytes(file)));
  CHECK(enc.vit->options().img_size == 32);
  CHECK(enc.vit->options().patch == 8);
  CHECK(enc.vit->options().depth == 2);
  CHECK(enc.vit->options().cls_pos_embed);
  bool decoder_ignored = false;
  for (const auto& name : enc.ignored) decoder_ignored |= name.rfind("decoder_pred.weight [192, 32]", 0) == 0;
  CHECK(decoder_ignored);

  const auto in = test::golden_tensors("mae_tiny", "inputs.safetensors").tensors;
  const auto out = test::golden_tensors("mae_tiny", "outputs.safetensors").tensors;
  torch::NoGradGuard ng;
  CHECK(max_abs_diff(enc.vit->forward_features(in.at("imgs")), out.at("cls_feature")) < 1e-5);
  CHECK(max_abs_diff(enc.vit->forward_encoder(in.at("imgs"), {}), out.at("latent_full")) < 1e-5);

  // MAE's random_masking with the golden noise: keep the 4 lowest-noise patches, in that order.
  const auto ids_shuffle = torch::argsort(in.at("noise"), /*dim=*/int64_t{1});
  REQUIRE(torch::equal(ids_shuffle, out.at("ids_shuffle")));
  const auto latent = enc.vit->forward_encoder(in.at("imgs"), ids_shuffle.slice(1, 0, 4));
  CHECK(max_abs_diff(latent, out.at("latent")) < 1e-5);
}

TEST_CASE("pretrained: timm's save_for_hf weights give timm's forward_features", "[pretrained][golden]") {
  PretrainedEncoder enc = load_pretrained_encoder(test::golden_dir() / "timm_vit" / "model.safetensors");
  CHECK(enc.vit->options().heads == 3);  // vit_tiny's, from the named sizes
  CHECK(enc.ignored.empty());
  const auto out = test::golden_tensors("timm_vit", "outputs.safetensors").tensors;
  const auto imgs = timm_images();
  CHECK(max_abs_diff(all_tokens(enc, imgs), out.at("forward_features")) < 1e-5);
  torch::NoGradGuard ng;
  CHECK(max_abs_diff(enc.vit->forward_features(imgs), out.at("pooled")) < 1e-5);
}

TEST_CASE("pretrained: exporting timm's model reproduces its model.safetensors and config.json",
          "[pretrained][golden]") {
  const auto golden = test::golden_dir() / "timm_vit";
  PretrainedEncoder enc = load_pretrained_encoder(golden / "model.safetensors");
  test::TempDir dir("pretrained");
  export_timm(*enc.vit, dir / "export", {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5});

  const auto want = read_safetensors(golden / "model.safetensors").tensors;
  const auto got = read_safetensors(dir / "export" / "model.safetensors").tensors;
  REQUIRE(got.size() == want.size());
  for (const auto& [name, t] : want) {
    INFO(name);
    REQUIRE(got.count(name));
    CHECK(torch::equal(got.at(name), t));
  }
  CHECK(file_bytes(dir / "export" / "model.safetensors") == file_bytes(golden / "model.safetensors"));

  std::ifstream wf(golden / "config.json"), gf(dir / "export" / "config.json");
  const auto w = nlohmann::json::parse(wf), g = nlohmann::json::parse(gf);
  for (const char* key : {"architecture", "num_classes", "num_features", "global_pool"}) {
    INFO(key);
    CHECK(g.at(key) == w.at(key));
  }
  for (const auto& [key, value] : w.at("model_args").items()) {
    INFO(key);
    CHECK(g.at("model_args").at(key) == value);
  }
  // The fields ours adds spell out what vit_tiny_patch16_224 already is.
  CHECK(g["model_args"]["embed_dim"] == 192);
  CHECK(g["model_args"]["num_heads"] == 3);
  CHECK(g["model_args"]["mlp_ratio"] == 4.0);
  CHECK(g["pretrained_cfg"]["input_size"] == nlohmann::json({3, 32, 32}));
  CHECK(g["pretrained_cfg"]["mean"] == w["pretrained_cfg"]["mean"]);
}

TEST_CASE("pretrained: prefixes, split qkv, .pth and a pos_embed without CLS row load the same model",
          "[pretrained]") {
  const auto src = read_safetensors(test::golden_dir() / "timm_vit" / "model.safetensors").tensors;
  std::map<std::string, torch::Tensor> variant;
  for (const auto& [name, t] : src) {
    const auto qkv = name.find("attn.qkv.");
    if (qkv == std::string::npos) {
      variant["module.encoder." + name] = t;
      continue;
    }
    const auto kind = name.substr(qkv + 9);  // weight | bias
    const auto parts = t.chunk(3, 0);
    const auto base = "module.encoder." + name.substr(0, qkv) + "attn.";
    variant[base + "q." + kind] = parts[0];
    variant[base + "k." + kind] = parts[1];
    variant[base + "v." + kind] = parts[2];
  }
  // No CLS position row (timm no_embed_class): the row folded into the CLS token is the same model.
  const auto pos = src.at("pos_embed");
  variant["module.encoder.cls_token"] = src.at("cls_token") + pos.slice(1, 0, 1);
  variant["module.encoder.pos_embed"] = pos.slice(1, 1).contiguous();
  variant["module.decoder_embed.weight"] = torch::zeros({8, 192});  // a training head: ignored
  test::TempDir dir("pretrained");
  write_torch_state_dict(dir / "variant.pth", variant);

  PretrainedEncoder enc = load_pretrained_encoder(dir / "variant.pth");
  CHECK_FALSE(enc.vit->options().cls_pos_embed);
  REQUIRE(enc.ignored.size() == 1);
  CHECK(enc.ignored[0] == "decoder_embed.weight [8, 192]");
  const auto out = test::golden_tensors("timm_vit", "outputs.safetensors").tensors;
  CHECK(max_abs_diff(all_tokens(enc, timm_images()), out.at("forward_features")) < 1e-5);
}

TEST_CASE("pretrained: a mismatch lists missing, unexpected and mis-shaped keys with shapes", "[pretrained]") {
  auto t = read_safetensors(test::golden_dir() / "timm_vit" / "model.safetensors").tensors;
  t.erase("blocks.1.mlp.fc2.bias");
  t["blocks.0.ls1.gamma"] = torch::ones({192});  // layer scale: ablate's blocks have none
  t["norm.weight"] = torch::ones({191});
  test::TempDir dir("pretrained");
  write_safetensors(dir / "bad.safetensors", t);
  const std::string msg = data_error_of([&] { load_pretrained_encoder(dir / "bad.safetensors"); });
  CHECK(msg.find("bad.safetensors") != std::string::npos);
  CHECK(msg.find("missing: blocks.1.mlp.fc2.bias [192]") != std::string::npos);
  CHECK(msg.find("unexpected: blocks.0.ls1.gamma [192]") != std::string::npos);
  CHECK(msg.find("norm.weight [191] in the file, [192] in the model") != std::string::npos);

  CHECK(data_error_of([&] { load_pretrained_encoder(dir / "none.pth"); }).find("not found") != std::string::npos);
}

TEST_CASE("pretrained: our encoders export and reload (standard and two-branch parallel blocks)", "[pretrained]") {
  for (int64_t branches : {1, 2}) {
    INFO("branches " << branches);
    torch::manual_seed(7);
    VitOptions o;
    o.img_size = 32;
    o.patch = 8;
    o.dim = 64;
    o.depth = 2;
    o.heads = 4;
    o.mlp_hidden = 128;
    o.branches = branches;
    o.qkv_bias = branches == 1;
    VisionTransformer vit(o);
    vit->eval();
    const auto tensors = timm_encoder_tensors(*vit);
    CHECK(tensors.at("pos_embed").size(1) == 17);  // timm's layout: a (zero) CLS row
    CHECK(torch::equal(tensors.at("pos_embed")[0][0], torch::zeros({64})));
    CHECK(tensors.count(branches == 2 ? "blocks.1.ffns.1.mlp.fc2.weight" : "blocks.1.mlp.fc2.weight"));
    CHECK(timm_architecture(o) == (branches == 2 ? "vit_small_patch16_18x2_224" : "vit_base_patch16_224"));

    test::TempDir dir("pretrained");
    export_mae_pth(*vit, dir / "enc.pth");
    export_timm(*vit, dir / "timm", {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225});
    PretrainedOptions po;
    po.heads = 4;
    const auto x = torch::randn({2, 3, 32, 32});
    torch::NoGradGuard ng;
    const auto want = vit->forward_encoder(x, {});
    for (const auto& file : {dir / "enc.pth", dir / "timm" / "model.safetensors"}) {
      INFO(file.string());
      PretrainedEncoder back = load_pretrained_encoder(file, po);
      CHECK(back.vit->options().branches == branches);
      CHECK(back.vit->options().qkv_bias == o.qkv_bias);
      CHECK(back.vit->options().mlp_hidden == 128);
      CHECK(torch::equal(back.vit->forward_encoder(x, {}), want));
    }
  }
  VitOptions four;
  four.branches = 4;
  CHECK_THROWS_AS(timm_architecture(four), ConfigError);
}
