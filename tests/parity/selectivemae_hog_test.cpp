// Parity with the public SelectiveMAE HOG (golden case selectivemae_hog: HOGLayerC of
// Fengxiang23/SelectiveMAE 02a47c3 on 4 UC Merced images at 224 px, patch 16), for
// method.hog_mode: official. Tolerances: the golden's own reruns are bitwise equal; ours differs
// only in float32 summation order (cell sums, normalisation, mean/var), so values of size <= ~1
// are compared at 2e-6 absolute + 1e-5 relative. The score is rounding residue of a mean that is
// mathematically 0 (|score| < 1e-6): it is compared at 2e-6 absolute, and the sampling
// distribution softmax(score) against the golden p_x at 1e-5 relative.
#include "methods/hog.h"

#include "pch/torch_pch.h"

#include "tests/support/catch.h"
#include "tests/support/golden.h"

using namespace ablate;

namespace {

// max |a - b|, for the failure message.
float max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<float>(); }

void check_close(const torch::Tensor& ours, const torch::Tensor& golden, double atol, double rtol, const char* what) {
  REQUIRE(ours.sizes() == golden.sizes());
  INFO(what << ": max |ours - official| = " << max_diff(ours, golden));
  CHECK(torch::allclose(ours, golden, rtol, atol));
}

}  // namespace

TEST_CASE("selectivemae_hog: window, Sobel kernels, cell histograms, features and score equal the official HOG",
          "[parity][hog]") {
  const auto in = test::golden_tensors("selectivemae_hog", "inputs.safetensors");
  const auto g = test::golden_tensors("selectivemae_hog", "hog.safetensors").tensors;
  const torch::Tensor imgs = in.tensors.at("imgs");  // (4, 3, 224, 224) normalised
  constexpr int64_t kPatch = 16, kCell = 8;

  check_close(hog_gaussian_window(kPatch), g.at("gkern"), 1e-8, 1e-6, "gkern");
  CHECK(torch::equal(hog_sobel_x(), g.at("weight_x")[0][0]));
  CHECK(torch::equal(hog_sobel_x().t(), g.at("weight_y")[0][0]));

  const auto raw = hog_official_cell_histograms(imgs, kCell, kPatch);  // (4, 3, 9, 28, 28)
  check_close(raw, g.at("cell_hist_raw"), 2e-6, 1e-5, "cell_hist_raw");
  const auto cells = torch::nn::functional::normalize(raw, torch::nn::functional::NormalizeFuncOptions().dim(2));
  check_close(cells, g.at("cell_hist"), 2e-6, 1e-5, "cell_hist");

  const auto f = hog_official_patch_features(imgs, kPatch, true);  // (4, 196, 108)
  check_close(f, g.at("patch_features"), 2e-6, 1e-5, "patch_features");
  check_close(f.mean(-1), g.at("patch_mean"), 2e-6, 1e-5, "patch_mean");
  check_close(f.var(-1), g.at("patch_var"), 2e-6, 1e-5, "patch_var");

  const auto score = hog_patch_scores(imgs, kPatch, HogMode::official);  // (4, 196)
  check_close(score, g.at("score"), 2e-6, 0.0, "score");
  check_close(hog_standardised_mean(hog_official_patch_features(imgs, kPatch, false)), g.at("score_norm_out_false"),
              2e-6, 0.0, "score_norm_out_false");
  check_close(torch::softmax(hog_selection_logits(score, HogMode::official), -1), g.at("p_x"), 0.0, 1e-5, "p_x");
}
