// Parity with Scale-MAE's KNN evaluation (golden case scalemae_knn: bair-climate-initiative/scale-mae
// 89280d8, mae/eval/knn.py kNN and the EuroSAT eval transform).
//  * The weighted vote (k = 20, T = 0.07) on fixed features: class scores sum exp(sim / T) over the
//    k nearest training samples, the predicted class and the accuracy. Scores reach exp(1 / 0.07)
//    ~ 1.6e6 and float32 cosine similarities differ by ~1e-7 with the summation order, so scores are
//    compared at 1e-5 relative (exactly 0 where no neighbour votes); predictions exactly (the
//    golden's smallest top-1 / top-2 gap is 6.6%).
//  * What the encoder receives at a reduced scale: the EuroSAT image normalised with Scale-MAE's
//    dataset statistics (eval.knn_norm: dataset) and area-interpolated to 16 and 32 px, encoded at
//    that size (eval.knn_resize: encode; "upsample", the behaviour before issue 14, hands the
//    encoder 64 px instead); positions scaled by input_res = 224 / size with --eval_gsd
//    (eval.knn_gsd, model.img_size 224), 1 without. Pixel values (size ~3) at 1e-5 absolute.
#include "methods/features.h"
#include "methods/knn.h"
#include "methods/vit.h"

#include "pch/torch_pch.h"

#include "tests/support/catch.h"
#include "tests/support/golden.h"

using namespace ablate;

namespace {

float max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<float>(); }

}  // namespace

TEST_CASE("scalemae_knn: the weighted KNN vote equals the official one", "[parity][knn]") {
  const auto g = test::golden_tensors("scalemae_knn", "knn.safetensors").tensors;
  const torch::Tensor train = g.at("train_features"), val = g.at("val_features");
  const torch::Tensor train_labels = g.at("train_labels"), val_labels = g.at("val_labels");
  const torch::Tensor probs = g.at("probs");  // (16, 4)
  const int64_t C = probs.size(1);

  const torch::Tensor scores = knn_class_scores(train, train_labels, val, C, /*k=*/20, /*t=*/0.07);
  INFO("max relative difference = " << ((scores - probs).abs() / probs.clamp_min(1.0)).max().item<float>());
  REQUIRE(scores.sizes() == probs.sizes());
  CHECK(torch::allclose(scores, probs, 1e-5, 0.0));
  CHECK(torch::equal(scores.eq(0), probs.eq(0)));
  CHECK(torch::equal(scores.argmax(1), g.at("pred_top1")));
  const TopkAccuracy acc = knn_accuracy(train, train_labels, val, val_labels, C, 20, 0.07);
  CHECK(acc.top1 == Approx(g.at("accuracy").item<float>()).margin(1e-7));
}

TEST_CASE("scalemae_knn: the encoder input at reduced scales equals the official one", "[parity][knn]") {
  const auto g = test::golden_tensors("scalemae_knn", "multiscale.safetensors").tensors;
  const torch::Tensor raw = g.at("imgs_raw_uint8");  // (4, 3, 64, 64) pixel values
  const int64_t S = raw.size(2);
  EvalConfig eval;
  eval.dataset = "eurosat";
  eval.knn_norm = KnnNorm::dataset;
  const ScaleProtocol official = scale_protocol(eval);
  REQUIRE(official.encode_at_scale);  // the default of eval.knn_resize

  auto check_close = [](const torch::Tensor& ours, const torch::Tensor& golden, const char* what) {
    INFO(what);
    REQUIRE(ours.sizes() == golden.sizes());
    INFO("max |ours - official| = " << max_diff(ours, golden));
    CHECK(torch::allclose(ours, golden, 0.0, 1e-5));
  };
  check_close(scaled_input(raw, 1.0, S, official), g.at("imgs"), "full scale, dataset statistics");
  for (int64_t side : {16, 32}) {
    INFO("eval_scale " << side);
    const std::string key = "scale" + std::to_string(side);
    const double scale = double(side) / double(S);
    check_close(scaled_input(raw, scale, S, official), g.at(key + ".encoder_input"), "encoder input");
    ScaleProtocol upsample = official;
    upsample.encode_at_scale = false;
    CHECK(scaled_input(raw, scale, S, upsample).size(2) == S);  // not what the official encoder sees
  }
}

TEST_CASE("scalemae_knn: a reduced image is encoded on its own grid, GSD-scaled as --eval_gsd", "[parity][knn]") {
  const auto g = test::golden_tensors("scalemae_knn", "multiscale.safetensors").tensors;
  torch::manual_seed(0);
  VitOptions o;
  o.img_size = 224;  // Scale-MAE's knn.py hard-codes 224 as the reference size of --eval_gsd
  o.patch = 8;
  o.dim = 32;
  o.depth = 1;
  o.heads = 2;
  o.mlp_hidden = 64;
  VisionTransformer vit(o);
  vit->eval();
  torch::NoGradGuard no_grad;
  for (int64_t side : {16, 32}) {
    INFO("eval_scale " << side);
    const std::string key = "scale" + std::to_string(side);
    const torch::Tensor x = g.at(key + ".encoder_input");  // (4, 3, side, side)
    const int64_t grid = side / o.patch;
    const torch::Tensor tokens = vit->patch_embed(x);  // (4, grid^2, D)
    CHECK(tokens.size(1) == grid * grid);
    // Without --eval_gsd input_res is 1: the plain sin-cos embedding of the reduced grid.
    const torch::Tensor res0 = g.at("gsd0." + key + ".input_res");
    const torch::Tensor plain = vit->encode(tokens + sincos_pos_embed_2d_scaled(o.dim, grid, res0), {}).select(1, 0);
    CHECK(torch::allclose(vit->forward_features(x), plain, 1e-5, 1e-6));
    // With it, positions are multiplied by the golden input_res (224 / side).
    const torch::Tensor res1 = g.at("gsd1." + key + ".input_res");
    const torch::Tensor scaled = vit->encode(tokens + sincos_pos_embed_2d_scaled(o.dim, grid, res1), {}).select(1, 0);
    CHECK(torch::allclose(vit->forward_features(x, /*gsd_relative=*/true), scaled, 1e-5, 1e-6));
    CHECK_FALSE(torch::allclose(plain, scaled, 1e-3, 1e-4));
  }
}
