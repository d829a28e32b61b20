// The CUDA-graph train step computes the same thing as the eager step: from the same seed, weights
// and batches, the losses of graph replays equal the eager losses within bf16 tolerance. On the CPU
// graphs are off, so both paths are eager and must agree exactly. Batches are real EuroSAT images.
// With InfoBatch the step's objective is the weighted per-sample mean, checked through the
// gradient of a one-parameter method against hand-computed values, and graph replays read the
// per-step sample weights from the step's static buffer.
#include "ablate/build_info.h"
#include "datasets/augment.h"
#include "datasets/image_io.h"
#include "datasets/registry.h"
#include "datasets/shards.h"
#include "methods/method.h"
#include "pch/torch_pch.h"
#include "methods/train_step.h"
#include "tests/support/catch.h"
#include "tests/support/test_config.h"

namespace ablate {
namespace {

// n real EuroSAT images: from packed shards when ABLATE_TEST_SHARDS names a shard folder (the GPU
// machine has no OpenCV and no ../shared), else decoded from the JPEGs.
torch::Tensor real_batch(int n) {
  if (const char* dir = std::getenv("ABLATE_TEST_SHARDS")) {
    const auto shards = ShardSet::open(dir, /*verify=*/true);
    std::vector<torch::Tensor> out;
    const int64_t s = shards.image_size();
    for (int i = 0; i < n; ++i)
      out.push_back(torch::from_blob(const_cast<uint8_t*>(shards.chw(static_cast<size_t>(i) * 97 % shards.size())),
                                     {3, s, s}, torch::kUInt8)
                        .clone());
    return normalize_pixels(torch::stack(out));
  }
  const auto idx = open_dataset("eurosat", ABLATE_TEST_DATA_ROOT);
  std::vector<torch::Tensor> out;
  for (int i = 0; i < n; ++i) {
    const RgbImage img = read_image(idx.path(static_cast<size_t>((i % 10) * 2500 + i)));
    out.push_back(torch::from_blob(const_cast<uint8_t*>(img.pixels.data()), {img.height, img.width, 3}, torch::kUInt8)
                      .permute({2, 0, 1})
                      .clone());
  }
  return normalize_pixels(torch::stack(out));
}

std::vector<double> losses(const RunConfig& cfg, const torch::Tensor& batch, torch::Device device, int steps,
                           bool* graphed) {
  torch::manual_seed(3);
  auto method = make_method(cfg);
  method->to(device);
  std::vector<double> out;
  StepStream stream(device, cfg.train.cuda_graph);
  TrainStep step(cfg, *method, device);
  step.set_lr(1e-3);
  for (int i = 0; i < steps; ++i) {
    // InfoBatch weights that change every step: a replayed graph must read them from its buffer.
    const auto weights = (torch::arange(batch.size(0)) + i).remainder(2).to(torch::kFloat32) + 1.0;  // (B,)
    step(batch.to(device), cfg.method.infobatch ? weights.to(device) : torch::Tensor());
    out.push_back(step.loss());
  }
  *graphed = step.graphed();
  return out;
}

// per_sample_i = p * x_i with x_i the first pixel of image i and p one parameter (1 at the start), so
// the gradient of mean(w_i * per_sample_i) is mean(w_i * x_i) and the grad norm its absolute value.
class ScaledPixel : public PretrainMethod {
 public:
  ScaledPixel() { p_ = register_parameter("p", torch::ones({1})); }
  LossTerms forward(const StepInputs& in) override {
    auto per_sample = p_ * in.images.flatten(1).select(1, 0);  // (B,)
    auto total = per_sample.mean();
    return {total, {{"loss", total}}, per_sample};
  }
  VisionTransformer& encoder() override { return encoder_; }
  torch::Tensor reconstruct(const torch::Tensor&, torch::Tensor*, torch::Tensor*) override { return {}; }

 private:
  torch::Tensor p_;
  VisionTransformer encoder_{nullptr};
};

}  // namespace

TEST_CASE("with InfoBatch the step minimises mean(per_sample * weight); loss stays the plain mean",
          "[train_step][infobatch]") {
  auto images = torch::zeros({4, 3, 2, 2});
  images.select(1, 0).select(1, 0).select(1, 0).copy_(torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}));  // x
  const auto weights = torch::tensor({2.0f, 1.0f, 2.0f, 1.0f});
  RunConfig cfg;
  cfg.train.batch = 4;
  cfg.method.infobatch = true;
  ScaledPixel weighted;
  TrainStep step(cfg, weighted, torch::kCPU);
  step(images, weights);
  CHECK(step.grad_norm() == Approx((2 * 1 + 1 * 2 + 2 * 3 + 1 * 4) / 4.0));  // 3.5
  CHECK(step.loss() == Approx((1 + 2 + 3 + 4) / 4.0));                      // 2.5, unweighted
  CHECK(torch::equal(step.per_sample(), torch::tensor({1.0f, 2.0f, 3.0f, 4.0f})));
  // Without InfoBatch the same batch trains on the plain mean.
  cfg.method.infobatch = false;
  ScaledPixel plain;
  TrainStep plain_step(cfg, plain, torch::kCPU);
  plain_step(images);
  CHECK(plain_step.grad_norm() == Approx(2.5));
}

TEST_CASE("graph-captured train steps give the eager losses (exactly on CPU, bf16 tolerance on CUDA)",
          "[train_step][gpu]") {
  if (!std::getenv("ABLATE_TEST_SHARDS") &&
      (!ABLATE_HAVE_OPENCV || !std::filesystem::exists(std::filesystem::path(ABLATE_TEST_DATA_ROOT) / "eurosat_rgb")))
    ABLATE_SKIP("EuroSAT (JPEGs with OpenCV, or ABLATE_TEST_SHARDS) not available");
  const torch::Device device = torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  for (const std::string name : {"mae", "selectivemae", "mae+infobatch"}) {
    INFO(name << " on " << device.str());
    RunConfig cfg = test::tiny_config(name == "selectivemae" ? MethodKind::selectivemae : MethodKind::mae);
    cfg.method.infobatch = name == "mae+infobatch";
    cfg.model.dec_depth = 2;
    cfg.model.dec_dim = 64;
    cfg.model.dec_heads = 4;
    cfg.train.clip_grad = 1.0;
    const auto batch = real_batch(16);
    const int steps = TrainStep::kEagerWarmupSteps + 5;
    bool graphed = false, eager_graphed = true;
    cfg.train.cuda_graph = true;
    const auto with_graph = losses(cfg, batch, device, steps, &graphed);
    cfg.train.cuda_graph = false;
    const auto eager = losses(cfg, batch, device, steps, &eager_graphed);
    CHECK_FALSE(eager_graphed);
    CHECK(graphed == device.is_cuda());
    for (int i = 0; i < steps; ++i) {
      INFO("step " << i);
      REQUIRE(std::isfinite(with_graph[i]));
      if (device.is_cuda())
        CHECK(with_graph[i] == Approx(eager[i]).epsilon(2e-2));  // bf16 autocast
      else
        CHECK(with_graph[i] == eager[i]);
    }
    CHECK(with_graph.back() < with_graph.front());  // the replayed steps really train
  }
}

}  // namespace ablate
