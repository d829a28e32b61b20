// Linear probe: the head is BatchNorm without affine parameters + Linear (checked against the
// formula by hand), it separates linearly separable features perfectly even at an odd feature
// scale, and a seed reproduces a probe exactly.
#include "methods/linear_probe.h"

#include "pch/torch_pch.h"

#include "tests/support/catch.h"

using namespace ablate;

namespace {

// Class c of `classes` sits at 4 * e_c in `dim` dimensions with N(0, 0.5^2) noise; the features are
// then scaled and shifted far from unit range so the BatchNorm has work to do.
std::pair<torch::Tensor, torch::Tensor> blobs(int64_t n, int64_t classes, int64_t dim,
                                              uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const torch::Tensor labels = torch::arange(n, torch::kInt64).remainder(classes);  // (N)
  const torch::Tensor centres = torch::eye(classes, dim) * 4.0;                     // (C, D)
  const torch::Tensor x = centres.index_select(0, labels) + 0.5 * torch::randn({n, dim}, gen);
  return {x * 250.0 + 1000.0, labels};
}

}  // namespace

TEST_CASE("probe head is affine-free BatchNorm (eps 1e-6) then Linear", "[linear_probe]") {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  torch::nn::Sequential head = make_probe_head(6, 3, gen);
  const auto params = head->named_parameters();
  REQUIRE(params.size() == 2);  // Linear weight and bias only: the BatchNorm has no gamma/beta
  CHECK(params.contains("1.weight"));
  CHECK(params.contains("1.bias"));
  const torch::Tensor w = params["1.weight"];
  CHECK(std::abs(w.std().item<double>() - 0.01) < 0.005);
  CHECK(params["1.bias"].abs().max().item<double>() == 0.0);
  // Training-mode forward = W ((x - mean) / sqrt(biased var + 1e-6)) + b, by hand.
  const torch::Tensor x = torch::randn({8, 6}, gen) * 3.0 + 2.0;
  const torch::Tensor mean = x.mean(0, true);
  const torch::Tensor var = (x - mean).pow(2).mean(0, true);
  const torch::Tensor expect = ((x - mean) / (var + 1e-6).sqrt()).matmul(w.t());
  head->train();
  CHECK(torch::allclose(head->forward(x), expect, 1e-4, 1e-5));
}

TEST_CASE("probe separates linearly separable features perfectly", "[linear_probe]") {
  const auto [train_x, train_y] = blobs(400, 8, 32, 1);
  const auto [val_x, val_y] = blobs(160, 8, 32, 2);
  EvalConfig cfg;
  cfg.probe_epochs = 15;
  cfg.probe_lr = 0.1;
  const ProbeResult r = linear_probe(train_x, train_y, val_x, val_y, 8, cfg, torch::kCPU, 5, 64);
  CHECK(r.val.top1 == 1.0);
  CHECK(r.val.top5 == 1.0);
  REQUIRE(r.epoch_loss.size() == 15);
  CHECK(r.epoch_loss.back() < 0.5 * r.epoch_loss.front());
}

TEST_CASE("probe is reproducible from its seed", "[linear_probe]") {
  // Overlapping classes, so the result depends on the trajectory.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const torch::Tensor x = torch::randn({200, 8}, gen);
  const torch::Tensor y = torch::randint(0, 4, {200}, gen);
  EvalConfig cfg;
  cfg.probe_epochs = 3;
  const auto a = linear_probe(x, y, x, y, 4, cfg, torch::kCPU, 11, 32);
  const auto b = linear_probe(x, y, x, y, 4, cfg, torch::kCPU, 11, 32);
  const auto c = linear_probe(x, y, x, y, 4, cfg, torch::kCPU, 12, 32);
  CHECK(a.epoch_loss == b.epoch_loss);
  CHECK(a.val.top1 == b.val.top1);
  CHECK(a.epoch_loss != c.epoch_loss);
}

TEST_CASE("probe runs on CUDA", "[linear_probe][gpu]") {
  if (!torch::cuda::is_available()) ABLATE_SKIP("no CUDA device");
  const auto [train_x, train_y] = blobs(400, 8, 32, 1);
  const auto [val_x, val_y] = blobs(160, 8, 32, 2);
  EvalConfig cfg;
  cfg.probe_epochs = 15;
  const ProbeResult r = linear_probe(train_x, train_y, val_x, val_y, 8, cfg, torch::kCUDA, 5, 64);
  CHECK(r.val.top1 == 1.0);
}
