// The training engine against references: the lr schedule against hand-computed values, fused
// AdamW against LibTorch's torch::optim::AdamW, an interrupted-and-resumed run against an
// uninterrupted one (bitwise on the CPU), and an injected NaN that the divergence check must catch.
// Training data are real EuroSAT images.
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "ablate/build_info.h"
#include "datasets/augment.h"
#include "datasets/image_io.h"
#include "datasets/registry.h"
#include "harness/check.h"
#include "harness/journal.h"
#include "methods/checkpoint.h"
#include "methods/method.h"
#include "methods/optim.h"
#include "methods/pch/torch_pch.h"
#include "methods/trainer.h"
#include "tests/support/catch.h"

namespace ablate {
namespace {

// Batches cycling in order over a fixed set of real images, with an optional poisoned batch.
class FixedBatches : public BatchSource {
 public:
  FixedBatches(torch::Tensor images, int64_t batch) : images_(std::move(images)), batch_(batch) {}
  torch::Tensor next() override {
    const int64_t per = batches_per_epoch();
    auto x = images_.narrow(0, (served_ % per) * batch_, batch_).clone();
    if (served_ == poison_at) x.fill_(std::numeric_limits<float>::quiet_NaN());
    ++served_;
    return x;
  }
  int64_t batches_per_epoch() const override { return images_.size(0) / batch_; }
  int64_t epoch() const override { return served_ / batches_per_epoch(); }
  int64_t position() const override { return (served_ % batches_per_epoch()) * batch_; }
  void seek(int64_t epoch, int64_t position) override { served_ = epoch * batches_per_epoch() + position / batch_; }
  int64_t poison_at = -1;  // batch index to fill with NaN

 private:
  torch::Tensor images_;
  int64_t batch_;
  int64_t served_ = 0;
};

// n real EuroSAT images (first files of each class, round-robin), normalised like training input.
torch::Tensor eurosat_images(int n) {
  const auto idx = open_dataset("eurosat", ABLATE_TEST_DATA_ROOT);
  std::vector<torch::Tensor> out;
  for (int i = 0; i < n; ++i) {
    const size_t k = static_cast<size_t>((i % 10) * 2700 + i / 10);  // classes are contiguous
    const RgbImage img = read_image(idx.path(k));
    auto t = torch::from_blob(const_cast<uint8_t*>(img.pixels.data()), {img.height, img.width, 3}, torch::kUInt8);
    out.push_back(t.permute({2, 0, 1}).clone());
  }
  return normalize_pixels(torch::stack(out));
}

RunConfig tiny_config() {
  RunConfig c;
  c.seed = 7;
  c.model.size = "vit_micro";
  c.model.img_size = 64;
  c.model.patch_size = 8;
  c.model.dec_depth = 1;
  c.model.dec_dim = 32;
  c.model.dec_heads = 2;
  c.train.batch = 16;
  c.train.epochs = 2;
  c.train.blr = 1e-3;
  c.train.warmup_epochs = 0.5;
  c.train.log_every = 1;
  c.train.ckpt_every = 1000;
  return c;
}

std::map<int64_t, double> journal_losses(const std::filesystem::path& run_dir) {
  std::map<int64_t, double> out;
  std::ifstream in(journal_path(run_dir));
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] == "metric" && j["name"] == "loss") out[j["step"].get<int64_t>()] = j["value"].get<double>();
  }
  return out;
}

std::filesystem::path fresh_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("ablate_trainer_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

bool have_eurosat() {
  return ABLATE_HAVE_OPENCV && std::filesystem::exists(std::filesystem::path(ABLATE_TEST_DATA_ROOT) / "eurosat_rgb");
}

}  // namespace

TEST_CASE("lr schedule: linear warm-up from 0, then half-cycle cosine to min_lr", "[trainer]") {
  CHECK(lr_at(0, 100, 10, 1.0, 0.0) == Approx(0.0));
  CHECK(lr_at(5, 100, 10, 1.0, 0.0) == Approx(0.5));
  CHECK(lr_at(10, 100, 10, 1.0, 0.0) == Approx(1.0));
  CHECK(lr_at(55, 100, 10, 1.0, 0.1) == Approx(0.1 + 0.9 * 0.5));  // half-way through the cosine
  CHECK(lr_at(100, 100, 10, 1.0, 0.1) == Approx(0.1));
}

TEST_CASE("base lr: blr * batch / 256 times the method's lr rule", "[trainer]") {
  RunConfig c;
  c.train.blr = 1.5e-4;
  c.train.batch = 512;
  c.method.mask_ratio = 0.85;
  c.method.recon_ratio = 0.25;
  c.method.lr_rule = "m_over_r";
  CHECK(base_lr(c) == Approx(1.5e-4 * 2 * 0.85 / 0.25));
  c.method.lr_rule = "r_over_m";
  CHECK(base_lr(c) == Approx(1.5e-4 * 2 * 0.25 / 0.85));
  c.method.lr_rule = "none";
  c.train.lr = 0.01;
  CHECK(base_lr(c) == Approx(0.01));
}

TEST_CASE("fused AdamW matches torch::optim::AdamW with decay only on matrices", "[trainer]") {
  torch::manual_seed(0);
  auto ours = torch::nn::Linear(5, 3);
  auto ref = torch::nn::Linear(5, 3);
  {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < ours->parameters().size(); ++i) ref->parameters()[i].copy_(ours->parameters()[i]);
  }
  TrainConfig tc;
  tc.weight_decay = 0.05;
  FusedAdamW opt(*ours, tc, torch::kCPU);
  opt.lr().fill_(0.01);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{ref->weight},
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(0.01).betas({0.9, 0.95}).weight_decay(0.05)));
  groups.emplace_back(std::vector<torch::Tensor>{ref->bias},
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(0.01).betas({0.9, 0.95}).weight_decay(0.0)));
  torch::optim::AdamW ref_opt(groups, torch::optim::AdamWOptions(0.01));
  const auto x = torch::randn({8, 5});
  const auto w0 = ours->weight.detach().clone();
  for (int step = 0; step < 4; ++step) {
    opt.zero_grad();
    ours->forward(x).pow(2).sum().backward();
    opt.step();
    ref_opt.zero_grad();
    ref->forward(x).pow(2).sum().backward();
    ref_opt.step();
  }
  CHECK(torch::allclose(ours->weight, ref->weight, 1e-6, 1e-7));
  CHECK(torch::allclose(ours->bias, ref->bias, 1e-6, 1e-7));
  // And the updates really moved the weights (equal to the reference, not merely both unchanged).
  CHECK((ours->weight - w0).abs().max().item<double>() > 1e-3);
}

TEST_CASE("clip_grad_norm returns the global norm and scales gradients to max_norm", "[trainer]") {
  auto lin = torch::nn::Linear(2, 1);
  TrainConfig tc;
  FusedAdamW opt(*lin, tc, torch::kCPU);
  lin->weight.mutable_grad() = torch::tensor({{3.0f, 0.0f}});
  lin->bias.mutable_grad() = torch::tensor({4.0f});
  const double norm = opt.clip_grad_norm(1.0).item<double>();
  CHECK(norm == Approx(5.0));
  CHECK(lin->weight.grad()[0][0].item<double>() == Approx(3.0 / 5.0).epsilon(1e-5));
  CHECK(lin->bias.grad()[0].item<double>() == Approx(4.0 / 5.0).epsilon(1e-5));
}

TEST_CASE("an interrupted and resumed run equals an uninterrupted one, bitwise on CPU", "[trainer]") {
  if (!have_eurosat()) ABLATE_SKIP("EuroSAT or OpenCV not available");
  const auto images = eurosat_images(64);  // 4 batches of 16 per epoch, 8 steps in all
  const RunConfig cfg = tiny_config();

  const auto dir_a = fresh_dir("a");
  {
    torch::manual_seed(static_cast<uint64_t>(cfg.seed));
    auto method = make_method(cfg);
    FixedBatches data(images, cfg.train.batch);
    JournalWriter journal(dir_a);
    const auto out = pretrain(cfg, *method, data, &journal, dir_a, torch::kCPU);
    REQUIRE(out.status == "done");
    REQUIRE(out.steps == 8);
  }
  const auto dir_b = fresh_dir("b");
  {
    torch::manual_seed(static_cast<uint64_t>(cfg.seed));
    auto method = make_method(cfg);
    FixedBatches data(images, cfg.train.batch);
    JournalWriter journal(dir_b);
    const auto out = pretrain(cfg, *method, data, &journal, dir_b, torch::kCPU, /*stop_after=*/3);
    REQUIRE(out.steps == 3);
  }
  {
    // A fresh process would start from other weights and RNG state: make that explicit.
    torch::manual_seed(12345);
    auto method = make_method(cfg);
    FixedBatches data(images, cfg.train.batch);
    JournalWriter journal(dir_b);
    const auto out = pretrain(cfg, *method, data, &journal, dir_b, torch::kCPU);
    REQUIRE(out.steps == 8);
  }
  const auto a = journal_losses(dir_a), b = journal_losses(dir_b);
  REQUIRE(a.size() == 8);
  for (int64_t s = 1; s <= 8; ++s) {
    INFO("step " << s);
    REQUIRE(b.count(s) == 1);
    CHECK(a.at(s) == b.at(s));  // bitwise: same floats, not approximately
  }
  CHECK(a.at(8) < a.at(1));  // and it learns
}

TEST_CASE("an injected NaN batch stops the run as diverged at that step, with no checkpoint after it",
          "[trainer]") {
  if (!have_eurosat()) ABLATE_SKIP("EuroSAT or OpenCV not available");
  RunConfig cfg = tiny_config();
  cfg.train.ckpt_every = 1;
  cfg.train.log_every = 2;  // the check must still name the exact step, between log points
  torch::manual_seed(0);
  auto method = make_method(cfg);
  FixedBatches data(eurosat_images(64), cfg.train.batch);
  data.poison_at = 4;  // the 5th step
  const auto dir = fresh_dir("nan");
  JournalWriter journal(dir);
  const auto out = pretrain(cfg, *method, data, &journal, dir, torch::kCPU);
  CHECK(out.status == "diverged");
  CHECK(out.diverged_step == 5);
  CHECK(out.reason.find("step 5") != std::string::npos);
  // The last checkpoint is from step 4: resuming never starts from poisoned weights.
  TrainProgress prog;
  auto fresh = make_method(cfg);
  FusedAdamW opt(*fresh, cfg.train, torch::kCPU);
  REQUIRE(load_checkpoint(dir / "ckpt" / "last.pt", prog, *fresh, opt));
  CHECK(prog.step == 4);
  for (const auto& p : fresh->parameters()) CHECK(torch::isfinite(p).all().item<bool>());
}

TEST_CASE("a checkpoint with a wrong magic number is rejected with the file named", "[trainer]") {
  const auto dir = fresh_dir("magic");
  torch::serialize::OutputArchive ar;
  ar.write("magic", torch::tensor({int64_t{42}}));
  ar.save_to((dir / "bad.pt").string());
  auto lin = torch::nn::Linear(2, 2);
  FusedAdamW opt(*lin, TrainConfig{}, torch::kCPU);
  TrainProgress prog;
  try {
    load_checkpoint(dir / "bad.pt", prog, *lin, opt);
    FAIL("expected DataError");
  } catch (const DataError& e) {
    CHECK(std::string(e.what()).find("bad.pt") != std::string::npos);
    CHECK(std::string(e.what()).find("magic") != std::string::npos);
  }
}

}  // namespace ablate
