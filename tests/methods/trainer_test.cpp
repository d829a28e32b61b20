// The training engine against references: the lr schedule against hand-computed values, fused
// AdamW against LibTorch's torch::optim::AdamW, an interrupted-and-resumed run against an
// uninterrupted one (bitwise on the CPU), and an injected NaN and grad-norm spike that the divergence
// check must catch (the spike against the median of the logged norms, computed here by hand).
// InfoBatch runs: shorter pruned epochs, exactly `epochs` epochs with the last ones full, the lr
// over fractional epochs, and bitwise resume mid-plan. Training data are real EuroSAT images.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ablate/build_info.h"
#include "datasets/augment.h"
#include "datasets/image_io.h"
#include "datasets/registry.h"
#include "harness/check.h"
#include "harness/journal.h"
#include "methods/checkpoint.h"
#include "methods/infobatch.h"
#include "methods/method.h"
#include "methods/optim.h"
#include "pch/torch_pch.h"
#include "methods/trainer.h"
#include "tests/support/catch.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_config.h"

namespace ablate {
namespace {

// Batches cycling in order over a fixed set of real images, with an optional poisoned batch. A
// planned (InfoBatch) epoch visits its order instead and then ends, as ShardBatchSource's does.
class FixedBatches : public BatchSource {
 public:
  FixedBatches(torch::Tensor images, int64_t batch) : images_(std::move(images)), batch_(batch) {}
  torch::Tensor next() override {
    REQUIRE_FALSE(ended_);  // a planned epoch is over: the trainer must plan the next one first
    std::vector<int64_t> idx;
    for (int64_t k = position_; k < position_ + batch_; ++k) idx.push_back(order_.empty() ? k : order_[k]);
    indices_ = torch::tensor(idx);
    auto x = images_.index_select(0, indices_);
    if (served_ == poison_at) x.fill_(std::numeric_limits<float>::quiet_NaN());
    ++served_;
    position_ += batch_;
    if (position_ == batches_per_epoch() * batch_) {
      ended_ = !order_.empty();
      ++epoch_;
      position_ = 0;
    }
    return x;
  }
  int64_t batches_per_epoch() const override {
    return (order_.empty() ? images_.size(0) : static_cast<int64_t>(order_.size())) / batch_;
  }
  int64_t epoch() const override { return epoch_; }
  int64_t position() const override { return position_; }
  void seek(int64_t epoch, int64_t position) override {
    epoch_ = epoch, position_ = position, order_.clear(), ended_ = false;
  }
  std::vector<int64_t> pool() const override {
    std::vector<int64_t> p(static_cast<size_t>(images_.size(0)));
    std::iota(p.begin(), p.end(), int64_t{0});
    return p;
  }
  torch::Tensor indices() const override { return indices_; }
  void seek_planned(int64_t epoch, int64_t position, const std::vector<int64_t>& order) override {
    epoch_ = epoch, position_ = position, order_ = order, ended_ = false;
  }
  int64_t poison_at = -1;  // batch index to fill with NaN

 private:
  torch::Tensor images_;
  int64_t batch_;
  int64_t served_ = 0;  // batches returned since construction
  int64_t epoch_ = 0, position_ = 0;
  std::vector<int64_t> order_;  // the planned epoch's image indices; empty: all, in order
  bool ended_ = false;
  torch::Tensor indices_;
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

// The shared tiny config (tests/support/test_config.h) with this file's seed.
RunConfig tiny_config() {
  RunConfig c = test::tiny_config();
  c.seed = 7;
  return c;
}

struct MetricPoint {
  double epoch, value;
};

// Metric `name` of a run's journal by step (a step logged again after a resume: the last line).
std::map<int64_t, MetricPoint> journal_metric(const std::filesystem::path& run_dir, const std::string& name) {
  std::map<int64_t, MetricPoint> out;
  std::ifstream in(journal_path(run_dir));
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] == "metric" && j["name"] == name)
      out[j["step"].get<int64_t>()] = {j["epoch"].get<double>(), j["value"].get<double>()};
  }
  return out;
}

std::map<int64_t, double> journal_losses(const std::filesystem::path& run_dir) {
  std::map<int64_t, double> out;
  for (const auto& [step, m] : journal_metric(run_dir, "loss")) out[step] = m.value;
  return out;
}

// total_steps of the journal's last progress line.
int64_t last_progress_total(const std::filesystem::path& run_dir) {
  int64_t total = -1;
  std::ifstream in(journal_path(run_dir));
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] == "progress") total = j["total_steps"].get<int64_t>();
  }
  return total;
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
  c.method.lr_rule = LrRule::m_over_r;
  CHECK(base_lr(c) == Approx(1.5e-4 * 2 * 0.85 / 0.25));
  c.method.lr_rule = LrRule::r_over_m;
  CHECK(base_lr(c) == Approx(1.5e-4 * 2 * 0.25 / 0.85));
  c.method.lr_rule = LrRule::none;
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

  const auto dir_a = test::scratch_dir("a");
  {
    torch::manual_seed(static_cast<uint64_t>(cfg.seed));
    auto method = make_method(cfg);
    FixedBatches data(images, cfg.train.batch);
    JournalWriter journal(dir_a);
    const auto out = pretrain(cfg, *method, data, &journal, dir_a, torch::kCPU);
    REQUIRE(out.status == "done");
    REQUIRE(out.steps == 8);
  }
  const auto dir_b = test::scratch_dir("b");
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

TEST_CASE("InfoBatch: pruned epochs take fewer steps, the run ends after its epochs, the last ones full",
          "[trainer][infobatch]") {
  if (!have_eurosat()) ABLATE_SKIP("EuroSAT or OpenCV not available");
  const auto images = eurosat_images(64);  // a full epoch: 4 batches of 16
  RunConfig cfg = tiny_config();
  cfg.train.epochs = 8;  // stop epoch floor(0.875 * 8) = 7: epochs 1..6 pruned, 0 and 7 full
  cfg.method.infobatch = true;
  const auto dir = test::scratch_dir("infobatch");
  torch::manual_seed(static_cast<uint64_t>(cfg.seed));
  auto method = make_method(cfg);
  FixedBatches data(images, cfg.train.batch);
  TrainOutcome out;
  {
    JournalWriter journal(dir);
    out = pretrain(cfg, *method, data, &journal, dir, torch::kCPU);
  }
  REQUIRE(out.status == "done");

  // Kept samples per epoch, and steps per epoch counted from the losses' epoch stamps (e, e + 1].
  std::map<int64_t, int64_t> kept, steps;
  for (const auto& [step, m] : journal_metric(dir, "infobatch_kept")) kept[static_cast<int64_t>(m.epoch)] = static_cast<int64_t>(m.value);
  const auto losses = journal_metric(dir, "loss");
  for (const auto& [step, m] : losses) ++steps[static_cast<int64_t>(std::ceil(m.epoch)) - 1];
  REQUIRE(kept.size() == 8);
  REQUIRE(steps.size() == 8);
  int64_t sum = 0;
  for (int64_t e = 0; e < 8; ++e) {
    INFO("epoch " << e << ": " << kept[e] << " kept, " << steps[e] << " steps");
    CHECK(steps[e] == kept[e] / 16);  // full batches of the plan
    sum += steps[e];
    if (e == 0 || e == 7) {
      CHECK(kept[e] == 64);  // nothing scored yet / annealing: every sample
    } else {
      // 64 - ceil(well_learned / 2) with at least one sample below the mean loss.
      CHECK(kept[e] < 64);
      CHECK(kept[e] >= 32);
      CHECK(steps[e] < 4);
    }
  }
  CHECK(out.steps == sum);
  CHECK(out.steps < 8 * 4);
  CHECK(losses.rbegin()->second.epoch == 8.0);  // exactly `epochs` epochs
  CHECK(last_progress_total(dir) == out.steps);  // the progress bound ends exact
  // The lr follows epochs: the last batch starts 3/4 into the (full) last epoch.
  const auto lr = journal_metric(dir, "lr");
  CHECK(lr.rbegin()->second.value == Approx(lr_at(7.75, 8.0, 0.5, base_lr(cfg), 0.0)).epsilon(1e-6));
  CHECK(lr.at(4).value == Approx(lr_at(0.75, 8.0, 0.5, base_lr(cfg), 0.0)).epsilon(1e-6));
}

TEST_CASE("an interrupted and resumed InfoBatch run equals an uninterrupted one, bitwise on CPU",
          "[trainer][infobatch]") {
  if (!have_eurosat()) ABLATE_SKIP("EuroSAT or OpenCV not available");
  const auto images = eurosat_images(64);
  RunConfig cfg = tiny_config();
  cfg.train.epochs = 4;  // epochs 1 and 2 pruned (stop epoch floor(0.875 * 4) = 3)
  cfg.method.infobatch = true;
  auto run = [&](const std::filesystem::path& dir, std::vector<int64_t> stops) {
    std::shared_ptr<PretrainMethod> method;
    TrainOutcome out;
    stops.push_back(0);  // then to the end
    for (int64_t stop : stops) {
      // Each call as a fresh process would: other weights and RNG state until the checkpoint loads.
      torch::manual_seed(method ? 12345 : static_cast<uint64_t>(cfg.seed));
      method = make_method(cfg);
      FixedBatches data(images, cfg.train.batch);
      JournalWriter journal(dir);
      out = pretrain(cfg, *method, data, &journal, dir, torch::kCPU, stop);
    }
    REQUIRE(out.status == "done");
    return std::make_pair(out.steps, method);
  };
  const auto dir_a = test::scratch_dir("ib_a"), dir_b = test::scratch_dir("ib_b");
  const auto [steps_a, a] = run(dir_a, {});
  // Step 5 is the first of pruned epoch 1 (epoch 0: 4 steps; epoch 1: at least 2): resumed mid-plan.
  const auto [steps_b, b] = run(dir_b, {5, 3});
  REQUIRE(steps_a == steps_b);
  const auto la = journal_losses(dir_a), lb = journal_losses(dir_b);
  REQUIRE(la.size() == static_cast<size_t>(steps_a));
  for (int64_t s = 1; s <= steps_a; ++s) {
    INFO("step " << s);
    REQUIRE(lb.count(s) == 1);
    CHECK(la.at(s) == lb.at(s));  // bitwise
  }
  const auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) CHECK(torch::equal(pa[i], pb[i]));
  CHECK(journal_metric(dir_a, "infobatch_kept").size() == 4);
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
  const auto dir = test::scratch_dir("nan");
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

// The median of a history as the divergence guard must take it, by hand: the middle value, or
// the mean of the two middle values of an even-length history.
double hand_median(std::vector<double> h) {
  std::sort(h.begin(), h.end());
  const size_t m = h.size() / 2;
  return h.size() % 2 ? h[m] : 0.5 * (h[m - 1] + h[m]);
}

TEST_CASE("a grad-norm spike over diverge_factor x the median of the logged norms stops the run",
          "[trainer]") {
  if (!have_eurosat()) ABLATE_SKIP("EuroSAT or OpenCV not available");
  // A reference run the guard never stops logs every step's norm (log_every 1; CPU runs are
  // bitwise reproducible). From step 6 on the guard compares a norm with the median of all the
  // norms before it (at least 5 of them; fewer than the window of 50 here).
  const auto run = [](double factor, const std::string& name) {
    RunConfig cfg = tiny_config();
    cfg.train.diverge_factor = factor;
    torch::manual_seed(0);
    auto method = make_method(cfg);
    FixedBatches data(eurosat_images(64), cfg.train.batch);
    const auto dir = test::scratch_dir(name);
    TrainOutcome out;
    {
      JournalWriter journal(dir);  // flushed when closed
      out = pretrain(cfg, *method, data, &journal, dir, torch::kCPU);
    }
    return std::make_pair(out, journal_metric(dir, "grad_norm"));
  };
  const auto [reference, norms] = run(1e12, "spike_ref");
  REQUIRE(reference.status == "done");
  std::vector<double> g;  // g[k - 1]: the norm of step k
  for (const auto& [step, m] : norms) g.push_back(m.value);
  REQUIRE(g.size() == static_cast<size_t>(reference.steps));
  REQUIRE(g.size() >= 7);

  // For each judged step k, a factor just under its norm / median: the run must stop at the first
  // step whose norm exceeds factor x the median of the norms before it, naming that median.
  bool even_history_judged = false;
  for (size_t k = 6; k <= g.size(); ++k) {
    const double factor = g[k - 1] / hand_median({g.begin(), g.begin() + static_cast<std::ptrdiff_t>(k - 1)}) *
                          (1 - 1e-9);
    size_t expected = 0;
    for (size_t j = 6; j <= g.size() && expected == 0; ++j) {
      const double median = hand_median({g.begin(), g.begin() + static_cast<std::ptrdiff_t>(j - 1)});
      if (g[j - 1] > factor * median) expected = j;
    }
    REQUIRE(expected != 0);  // step k itself qualifies
    const double median = hand_median({g.begin(), g.begin() + static_cast<std::ptrdiff_t>(expected - 1)});
    INFO("factor " << factor << " (from step " << k << "), expected stop at step " << expected);
    const auto [out, _] = run(factor, fmt::format("spike_{}", k));
    CHECK(out.status == "diverged");
    CHECK(out.diverged_step == static_cast<int64_t>(expected));
    CHECK(out.reason == fmt::format("grad-norm spike at step {}: {:.4g} > {} x median {:.4g}", expected,
                                    g[expected - 1], factor, median));
    even_history_judged |= (expected - 1) % 2 == 0;
  }
  CHECK(even_history_judged);  // the mean of the two middle norms, not the upper one, was tested
}

TEST_CASE("an InfoBatch run refuses a checkpoint without InfoBatch state, naming the file", "[trainer][infobatch]") {
  const auto dir = test::scratch_dir("ib_ckpt");
  auto lin = torch::nn::Linear(2, 2);
  FusedAdamW opt(*lin, TrainConfig{}, torch::kCPU);
  TrainProgress prog;
  save_checkpoint(dir / "plain.pt", prog, *lin, opt);  // a run without InfoBatch
  RunConfig cfg = tiny_config();
  cfg.method.infobatch = true;
  InfoBatch ib(cfg, {0, 1, 2, 3}, torch::kCPU);
  try {
    load_checkpoint(dir / "plain.pt", prog, *lin, opt, &ib);
    FAIL("expected DataError");
  } catch (const DataError& e) {
    CHECK(std::string(e.what()).find("plain.pt") != std::string::npos);
    CHECK(std::string(e.what()).find("no InfoBatch state") != std::string::npos);
  }
  CHECK(load_checkpoint(dir / "plain.pt", prog, *lin, opt));  // read as before without it
}

TEST_CASE("a checkpoint with a wrong magic number is rejected with the file named", "[trainer]") {
  const auto dir = test::scratch_dir("magic");
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
