// Data-parallel pre-training through pretrain(), with forked Gloo ranks on real EuroSAT shards read
// by the loader's rank slices:
// * two ranks on global batch 8 (4 each) end with the parameters of one process on batch 8. Each
//   rank's mask noise comes from its own generator, so random masking could never agree with the
//   one-process run; this test's MAE derives each image's mask from the image itself instead,
//   which makes the two runs see identical masks and turns the comparison into a real check of the
//   gradient averaging, clipping after it, and the loss averaged for the journal;
// * with random masking, the ranks draw different masks, and a run interrupted and resumed from
//   rank 0's checkpoint equals an uninterrupted one bitwise (per-step seeds from (seed, rank, step));
// * a stop signal that reaches one rank only stops both at the same log point, with a checkpoint.
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ablate/build_info.h"
#include "datasets/augment.h"
#include "datasets/loader.h"
#include "datasets/registry.h"
#include "datasets/shards.h"
#include "harness/check.h"
#include "harness/journal.h"
#include "methods/distributed.h"
#include "methods/mae.h"
#include "pch/torch_pch.h"
#include "methods/stop_signal.h"
#include "methods/trainer.h"
#include "tests/support/catch.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_config.h"
#include "tests/support/child_process.h"

namespace ablate {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using test::Child;

constexpr int kImages = 48;  // 6 global batches of 8 per epoch
constexpr int64_t kGlobalBatch = 8;

bool have_eurosat() {
  return ABLATE_HAVE_OPENCV && fs::exists(fs::path(ABLATE_TEST_DATA_ROOT) / "eurosat_rgb");
}


// kImages real EuroSAT images (the first files of each class, round-robin), packed once.
const fs::path& eurosat_shards() {
  static const fs::path dir = [] {
    const auto idx = open_dataset("eurosat", ABLATE_TEST_DATA_ROOT);
    std::vector<int64_t> pick;
    for (int i = 0; i < kImages; ++i) pick.push_back((i % 10) * 2700 + i / 10);  // classes are contiguous
    PackOptions o;
    o.out = test::scratch_dir("shards");
    o.size = 64;
    o.threads = 1;
    pack_index(idx.subset(pick), o);
    return o.out;
  }();
  return dir;
}

// Rank `rank` of `world`'s slice of every global batch, in the loader's order, normalised without
// random augmentation (the ranks' crops would differ from the one-process run's). `signal_at` > 0
// raises SIGTERM in this process when that batch (1-based) is fetched.
class ShardSlices : public BatchSource {
 public:
  ShardSlices(int rank, int world, int64_t signal_at = 0)
      : shards_(std::make_shared<const ShardSet>(ShardSet::open(eurosat_shards(), false))),
        rank_(rank),
        world_(world),
        signal_at_(signal_at) {
    seek(0, 0);
    pool_ = loader_->pool();
  }
  torch::Tensor next() override {
    auto b = loader_->next();
    ABLATE_CHECK(b.has_value(), "the loader ended (a planned epoch is over)");
    indices_ = b->indices;
    if (++fetched_ == signal_at_) ::raise(SIGTERM);
    return normalize_pixels(b->images);  // (B, 3, 64, 64)
  }
  int64_t batches_per_epoch() const override { return loader_->batches_per_epoch(); }
  int64_t epoch() const override { return epoch_offset_ + loader_->state().epoch; }
  int64_t position() const override { return loader_->state().position; }
  void seek(int64_t epoch, int64_t position) override {
    loader_.reset();
    loader_ = std::make_unique<Loader>(shards_, options(), LoaderState{epoch, position});
    epoch_offset_ = 0;
  }
  // InfoBatch: as app/data_source.cpp, each planned epoch is a loader of its own over the plan's
  // order, of which this rank reads its strided slice.
  std::vector<int64_t> pool() const override { return pool_; }
  torch::Tensor indices() const override { return indices_; }
  void seek_planned(int64_t epoch, int64_t position, const std::vector<int64_t>& order) override {
    loader_.reset();
    LoaderOptions o = options();
    o.indices = order;
    o.shuffle = false;
    o.max_epochs = 1;
    loader_ = std::make_unique<Loader>(shards_, o, LoaderState{0, position});
    epoch_offset_ = epoch;
  }

 private:
  LoaderOptions options() const {
    LoaderOptions o;
    o.batch = kGlobalBatch / world_;
    o.workers = 1;
    o.seed = 3;
    o.rank = rank_;
    o.world_size = world_;
    return o;
  }

  std::shared_ptr<const ShardSet> shards_;
  int rank_, world_;
  int64_t signal_at_, fetched_ = 0;
  std::unique_ptr<Loader> loader_;
  std::vector<int64_t> pool_;
  int64_t epoch_offset_ = 0;
  torch::Tensor indices_;  // (B,) of the last batch
};

// MAE with either random masking or a mask that is a function of each image alone (patches ranked
// by their mean red value, the darkest visible), and a record of the first step's visible patches.
class TestMae : public Mae {
 public:
  TestMae(const RunConfig& c, bool keyed) : Mae(c), keyed_(keyed) {}
  torch::Tensor first_keep;  // (B, N_vis) of the first step

 protected:
  MaskPlan plan(const torch::Tensor& images, const torch::Tensor&, const torch::Tensor&) override {
    MaskPlan mp;
    if (keyed_) {
      const int64_t p = encoder_->options().patch;
      const auto score = torch::avg_pool2d(images.select(1, 0).unsqueeze(1), p).flatten(1);  // (B, L)
      mp.split = split_from_shuffle(std::get<1>(score.sort(/*stable=*/true, 1)), n_keep_);
      mp.ids_rec = mp.split.ids_masked.slice(1, 0, n_rec_);
    } else {
      mp = random_plan(images.size(0), images.device());
    }
    if (!first_keep.defined()) first_keep = mp.split.ids_keep.clone();
    return mp;
  }

 private:
  bool keyed_;
};

// The shared tiny config (tests/support/test_config.h) with this file's batch and lr.
RunConfig tiny_config() {
  RunConfig c = test::tiny_config();
  c.seed = 5;
  c.train.batch = static_cast<int>(kGlobalBatch);  // 2 epochs: 12 steps
  c.train.lr = 2e-3;
  c.train.clip_grad = 0.5;  // below the early grad norms: clipping acts, on the averaged gradient
  c.train.diverge_factor = 1000;
  return c;
}

torch::Tensor flat_params(torch::nn::Module& m) {
  std::vector<torch::Tensor> v;
  for (const auto& p : m.parameters()) v.push_back(p.detach().reshape(-1));
  return torch::cat(v);
}

// What one rank's pretrain call produced, saved by the child for the parent.
struct RankResult {
  std::string status;
  int64_t steps = 0;
  torch::Tensor params, first_keep;
};

void save_result(const fs::path& file, const TrainOutcome& out, TestMae& m) {
  torch::serialize::OutputArchive ar;
  ar.write("steps", torch::tensor({out.steps}));
  ar.write("stopped", torch::tensor({int64_t{out.status == "stopped"}}));
  ar.write("done", torch::tensor({int64_t{out.status == "done"}}));
  ar.write("params", flat_params(m));
  ar.write("first_keep", m.first_keep);
  ar.save_to(file.string());
}

RankResult load_result(const fs::path& file) {
  torch::serialize::InputArchive ar;
  ar.load_from(file.string());
  torch::Tensor steps, stopped, done;
  RankResult r;
  ar.read("steps", steps);
  ar.read("stopped", stopped);
  ar.read("done", done);
  ar.read("params", r.params);
  ar.read("first_keep", r.first_keep);
  r.steps = steps.item<int64_t>();
  r.status = stopped.item<int64_t>() ? "stopped" : done.item<int64_t>() ? "done" : "other";
  return r;
}

struct RankJob {
  RunConfig cfg;
  bool keyed_masks = true;
  fs::path run_dir;
  int64_t stop_after = 0;
  int64_t signal_at = 0;  // rank 1 only
};

// Child body: rank `rank` of 2 (Gloo on loopback, rendezvous from the environment as the runner
// sets it) runs pretrain; rank 0 alone writes the journal. Saves its result to run_dir/rank<r>.pt.
int train_rank(int rank, int port, const RankJob& job) {
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  setenv("WORLD_SIZE", "2", 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  setenv("GLOO_SOCKET_IFNAME", "lo", 1);
  setenv("ABLATE_DIST_TIMEOUT_S", "20", 1);
  install_stop_handlers();
  const DistEnv env = DistEnv::from_environment();
  torch::manual_seed(static_cast<uint64_t>(job.cfg.seed));
  TestMae method(job.cfg, job.keyed_masks);
  ShardSlices data(env.rank, env.world_size, rank == 1 ? job.signal_at : 0);
  DataParallel dp(env, torch::kCPU, env.timeout);
  std::optional<JournalWriter> journal;
  if (rank == 0) journal.emplace(job.run_dir);
  const TrainOutcome out =
      pretrain(job.cfg, method, data, journal ? &*journal : nullptr, job.run_dir, torch::kCPU, job.stop_after, &dp);
  save_result(job.run_dir / fmt::format("rank{}.pt", rank), out, method);
  dp.barrier();  // rank 0 hosts the store: stay until rank 1 is done with it
  return 0;
}

// Runs both ranks of `job` to the end; their results.
std::pair<RankResult, RankResult> run_two_ranks(const RankJob& job) {
  eurosat_shards();  // packed once, here: ranks forked before it would both pack into one folder
  const int port = free_loopback_port();
  Child r0([&](int) { return train_rank(0, port, job); });
  Child r1([&](int) { return train_rank(1, port, job); });
  const int c0 = r0.wait(milliseconds(120000)), c1 = r1.wait(milliseconds(5000));
  INFO("rank 0: exit " << c0 << " " << r0.read(1 << 16, milliseconds(100)));
  INFO("rank 1: exit " << c1 << " " << r1.read(1 << 16, milliseconds(100)));
  REQUIRE(c0 == 0);
  REQUIRE(c1 == 0);
  return {load_result(job.run_dir / "rank0.pt"), load_result(job.run_dir / "rank1.pt")};
}

// One process, no DataParallel, on `data`.
RankResult run_one_process(const RunConfig& cfg, BatchSource& data, const fs::path& run_dir) {
  torch::manual_seed(static_cast<uint64_t>(cfg.seed));
  TestMae method(cfg, /*keyed=*/true);
  JournalWriter journal(run_dir);
  const TrainOutcome out = pretrain(cfg, method, data, &journal, run_dir, torch::kCPU);
  return {out.status, out.steps, flat_params(method), method.first_keep};
}

std::map<int64_t, double> journal_metric(const fs::path& run_dir, const std::string& name) {
  std::map<int64_t, double> out;
  std::ifstream in(journal_path(run_dir));
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] == "metric" && j["name"] == name) out[j["step"].get<int64_t>()] = j["value"].get<double>();
  }
  return out;
}

// The rows of (N, K) as a sorted list: which masks a set of images got, whatever their order.
std::vector<std::vector<int64_t>> sorted_rows(const torch::Tensor& t) {
  std::vector<std::vector<int64_t>> rows;
  const auto c = t.contiguous();
  for (int64_t i = 0; i < c.size(0); ++i)
    rows.emplace_back(c[i].data_ptr<int64_t>(), c[i].data_ptr<int64_t>() + c.size(1));
  std::sort(rows.begin(), rows.end());
  return rows;
}

bool skip() { return !have_eurosat() || !DataParallel::supports(torch::kCPU); }

}  // namespace

TEST_CASE("two data-parallel ranks on half batches train a ViT MAE like one process on the whole batch",
          "[distributed][trainer]") {
  if (skip()) ABLATE_SKIP("EuroSAT, OpenCV or Gloo not available");
  const RunConfig cfg = tiny_config();
  RankJob job{cfg, /*keyed_masks=*/true, test::scratch_dir("two"), 0, 0};
  const auto [a, b] = run_two_ranks(job);
  REQUIRE(a.status == "done");
  REQUIRE(a.steps == 12);
  CHECK(b.steps == 12);

  const auto one_dir = test::scratch_dir("one");
  ShardSlices whole(0, 1);
  const RankResult ref = run_one_process(cfg, whole, one_dir);
  REQUIRE(ref.steps == 12);
  // The replicas apply the same averaged gradients: identical to each other, bit for bit.
  CHECK(torch::equal(a.params, b.params));
  // Not bitwise: the ranks sum their halves' gradients in another order than one batch of 8, and
  // AdamW's normalisation lifts those rounding differences where gradients are near zero. Measured
  // on a CPU: max 4e-5, mean 5e-9.
  const auto dev = (a.params - ref.params).abs();
  CHECK(dev.max().item<double>() < 2e-4);
  CHECK(dev.mean().item<double>() < 1e-7);
  // Sensitivity: training on rank 0's slice alone ends far from the reference (measured: max 0.018,
  // mean 1e-3).
  ShardSlices half(0, 2);
  const RankResult alone = run_one_process(cfg, half, test::scratch_dir("half"));
  const auto dev_half = (alone.params - ref.params).abs();
  CHECK(dev_half.max().item<double>() > 50 * dev.max().item<double>());
  CHECK(dev_half.mean().item<double>() > 1e4 * dev.mean().item<double>());
  // Together the ranks' first batches are the one process's first batch, with the same masks.
  CHECK(sorted_rows(torch::cat({a.first_keep, b.first_keep})) == sorted_rows(ref.first_keep));

  // Rank 0's journal holds the loss averaged over the ranks: the one process's loss, every step.
  const auto loss2 = journal_metric(job.run_dir, "loss"), loss1 = journal_metric(one_dir, "loss");
  REQUIRE(loss2.size() == 12);
  for (const auto& [step, v] : loss1) {
    INFO("step " << step);
    CHECK(loss2.at(step) == Approx(v).epsilon(1e-4));
  }
  CHECK(journal_metric(job.run_dir, "grad_norm").at(1) > cfg.train.clip_grad);  // clipping acted
}

TEST_CASE("data-parallel ranks draw different masks, and a resumed two-rank run equals an uninterrupted one",
          "[distributed][trainer]") {
  if (skip()) ABLATE_SKIP("EuroSAT, OpenCV or Gloo not available");
  const RunConfig cfg = tiny_config();
  RankJob whole{cfg, /*keyed_masks=*/false, test::scratch_dir("uninterrupted"), 0, 0};
  const auto [u0, u1] = run_two_ranks(whole);
  REQUIRE(u0.steps == 12);
  // Same seed, same code, but each rank's draws come from (seed, rank, step): different masks.
  CHECK_FALSE(torch::equal(u0.first_keep, u1.first_keep));
  CHECK(torch::equal(u0.params, u1.params));

  RankJob part{cfg, false, test::scratch_dir("interrupted"), /*stop_after=*/5, 0};
  const auto [p0, p1] = run_two_ranks(part);
  REQUIRE(p0.steps == 5);
  REQUIRE(p1.steps == 5);
  REQUIRE(fs::exists(part.run_dir / "ckpt" / "last.pt"));  // rank 0's
  part.stop_after = 0;
  const auto [r0, r1] = run_two_ranks(part);  // both ranks load rank 0's checkpoint
  REQUIRE(r0.steps == 12);
  CHECK(torch::equal(r0.params, u0.params));  // bitwise
  CHECK(torch::equal(r1.params, u0.params));
  const auto lu = journal_metric(whole.run_dir, "loss"), lr = journal_metric(part.run_dir, "loss");
  REQUIRE(lr.size() == 12);
  for (const auto& [step, v] : lu) {
    INFO("step " << step);
    CHECK(lr.at(step) == v);
  }
}

TEST_CASE("a stop signal reaching one rank stops every rank at the same log point, checkpointed",
          "[distributed][trainer]") {
  if (skip()) ABLATE_SKIP("EuroSAT, OpenCV or Gloo not available");
  RunConfig cfg = tiny_config();
  cfg.train.log_every = 4;
  // SIGTERM on rank 1 while it fetches the 6th batch: rank 1 alone knows until the log point at
  // step 8, where both ranks agree to stop (acting at once, rank 1 would leave rank 0 waiting).
  RankJob job{cfg, false, test::scratch_dir("signal"), 0, /*signal_at=*/6};
  const auto [a, b] = run_two_ranks(job);
  CHECK(a.status == "stopped");
  CHECK(b.status == "stopped");
  CHECK(a.steps == 8);
  CHECK(b.steps == 8);
  CHECK(fs::exists(job.run_dir / "ckpt" / "last.pt"));
}

TEST_CASE("InfoBatch over two data-parallel ranks plans and trains as one process does", "[distributed][trainer]") {
  if (skip()) ABLATE_SKIP("EuroSAT, OpenCV or Gloo not available");
  RunConfig cfg = tiny_config();
  cfg.method.infobatch = true;
  cfg.train.epochs = 8;  // pruned epochs 1..6 (stop epoch floor(0.875 * 8) = 7)
  RankJob job{cfg, /*keyed_masks=*/true, test::scratch_dir("ib_two"), 0, 0};
  const auto [a, b] = run_two_ranks(job);
  REQUIRE(a.status == "done");
  const auto one_dir = test::scratch_dir("ib_one");
  ShardSlices whole(0, 1);
  const RankResult ref = run_one_process(cfg, whole, one_dir);
  // The ranks gather each step's losses, so their scores, hence every epoch's plan, are the one
  // process's: the same samples kept per epoch and the same number of steps.
  const auto kept2 = journal_metric(job.run_dir, "infobatch_kept"), kept1 = journal_metric(one_dir, "infobatch_kept");
  REQUIRE(kept1.size() == 8);
  CHECK(kept2 == kept1);
  int64_t pruned = 0;
  for (const auto& [step, k] : kept1) pruned += k < kImages;
  CHECK(pruned == 6);  // epochs 1..6
  CHECK(a.steps == ref.steps);
  CHECK(b.steps == ref.steps);
  CHECK(torch::equal(a.params, b.params));
  const auto dev = (a.params - ref.params).abs();
  CHECK(dev.max().item<double>() < 2e-4);  // the rounding of the plain two-rank test
  CHECK(dev.mean().item<double>() < 1e-7);
}

}  // namespace ablate
