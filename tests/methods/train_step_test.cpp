// The CUDA-graph train step computes the same thing as the eager step: from the same seed, weights
// and batches, the losses of graph replays equal the eager losses within bf16 tolerance. On the CPU
// graphs are off, so both paths are eager and must agree exactly. Batches are real EuroSAT images.
#include "ablate/build_info.h"
#include "datasets/augment.h"
#include "datasets/image_io.h"
#include "datasets/registry.h"
#include "datasets/shards.h"
#include "methods/method.h"
#include "methods/pch/torch_pch.h"
#include "methods/train_step.h"
#include "tests/support/catch.h"

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
    step(batch.to(device));
    out.push_back(step.loss());
  }
  *graphed = step.graphed();
  return out;
}

}  // namespace

TEST_CASE("graph-captured train steps give the eager losses (exactly on CPU, bf16 tolerance on CUDA)",
          "[train_step][gpu]") {
  if (!std::getenv("ABLATE_TEST_SHARDS") &&
      (!ABLATE_HAVE_OPENCV || !std::filesystem::exists(std::filesystem::path(ABLATE_TEST_DATA_ROOT) / "eurosat_rgb")))
    ABLATE_SKIP("EuroSAT (JPEGs with OpenCV, or ABLATE_TEST_SHARDS) not available");
  const torch::Device device = torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  for (const std::string name : {"mae", "selectivemae"}) {
    INFO(name << " on " << device.str());
    RunConfig cfg;
    cfg.model.size = "vit_micro";
    cfg.model.img_size = 64;
    cfg.model.patch_size = 8;
    cfg.model.dec_depth = 2;
    cfg.model.dec_dim = 64;
    cfg.model.dec_heads = 4;
    cfg.method.name = name;
    if (name == "selectivemae") {
      cfg.model.decoder = "cross";
      cfg.method.mask_ratio = 0.85;
      cfg.method.recon_ratio = 0.25;
    }
    cfg.train.batch = 16;
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
