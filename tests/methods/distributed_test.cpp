// Data-parallel training against single-process training: two forked ranks (Gloo over loopback,
// rendezvous through the environment as torchrun sets it) each train a small MLP with SGD on half
// of a fixed batch; their parameters must equal those of one process trained on the whole batch.
// Also: gradient buckets launch during backward, and a rank that is killed or stopped makes the
// survivor fail with an error within the timeout instead of hanging.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string>

#include "harness/check.h"
#include "methods/distributed.h"
#include "pch/torch_pch.h"
#include "tests/support/catch.h"
#include "tests/support/child_process.h"

namespace ablate {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using test::Child;
using test::write_all;

constexpr int64_t kBatch = 8;  // global batch; each of the 2 ranks trains on 4 rows
constexpr int kSteps = 4;
constexpr double kLr = 0.1;
// Bucket limit 8 KiB over the MLP below, parameters in reverse order: {fc3.bias, fc3.weight (2 KiB),
// fc2.bias}, {fc2.weight (16 KiB, alone)}, {fc1.bias, fc1.weight (4 KiB)}: 3 buckets.
constexpr size_t kBucketBytes = 8 << 10;
constexpr size_t kExpectedBuckets = 3;

struct MlpImpl : torch::nn::Module {
  torch::nn::Linear fc1{16, 64}, fc2{64, 64}, fc3{64, 8};
  MlpImpl() {
    register_module("fc1", fc1);
    register_module("fc2", fc2);
    register_module("fc3", fc3);
  }
  torch::Tensor forward(const torch::Tensor& x) {  // (B, 16) -> (B, 8)
    return fc3(torch::gelu(fc2(torch::gelu(fc1(x)))));
  }
};
TORCH_MODULE(Mlp);

Mlp make_mlp(uint64_t seed) {
  Mlp m;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.copy_(torch::randn(p.sizes(), gen) * 0.3);
  return m;
}

std::pair<torch::Tensor, torch::Tensor> fixed_batch() {  // (8, 16), (8, 8)
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  return {torch::randn({kBatch, 16}, gen), torch::randn({kBatch, 8}, gen)};
}

// One SGD step on the mean squared error; gradients averaged over the ranks when dp is given.
void sgd_step(Mlp& model, const torch::Tensor& x, const torch::Tensor& y, DataParallel* dp) {
  for (auto& p : model->parameters())
    if (p.grad().defined()) p.mutable_grad().zero_();
  torch::mse_loss(model->forward(x), y).backward();
  if (dp) dp->finish_gradient_sync();
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.sub_(p.grad() * kLr);
}

torch::Tensor flat_params(Mlp& model) {
  std::vector<torch::Tensor> v;
  for (const auto& p : model->parameters()) v.push_back(p.detach().reshape(-1));
  return torch::cat(v);
}

// The launcher's environment for rank `rank` of 2 on loopback, set inside a child.
void set_rank_environment(int rank, int port) {
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  setenv("WORLD_SIZE", "2", 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  setenv("GLOO_SOCKET_IFNAME", "lo", 1);
}

struct RankResult {
  std::vector<float> params;
  std::vector<double> launch_offsets_ms;  // of the last step
  size_t buckets = 0;
};

// Parses what `train_rank` wrote: [n][n floats][buckets][m][m doubles].
RankResult parse_result(const std::string& bytes) {
  RankResult r;
  size_t at = 0;
  auto take = [&](void* dst, size_t n) {
    REQUIRE(at + n <= bytes.size());
    std::memcpy(dst, bytes.data() + at, n);
    at += n;
  };
  int64_t n = 0;
  take(&n, sizeof(n));
  r.params.resize(static_cast<size_t>(n));
  take(r.params.data(), r.params.size() * sizeof(float));
  int64_t b = 0, m = 0;
  take(&b, sizeof(b));
  r.buckets = static_cast<size_t>(b);
  take(&m, sizeof(m));
  r.launch_offsets_ms.resize(static_cast<size_t>(m));
  take(r.launch_offsets_ms.data(), r.launch_offsets_ms.size() * sizeof(double));
  return r;
}

// Child body: rank `rank` of 2 trains on its half of the batch and reports parameters and timings.
// Rank 1 starts from different weights, so only the broadcast makes the replicas agree.
int train_rank(int fd, int rank, int port) {
  set_rank_environment(rank, port);
  const DistEnv env = DistEnv::from_environment();
  DataParallel dp(env, torch::kCPU, milliseconds(10000));
  Mlp model = make_mlp(rank == 0 ? 1 : 2);
  dp.broadcast_parameters(*model);
  dp.attach(*model, kBucketBytes);
  auto [x, y] = fixed_batch();
  const int64_t half = kBatch / env.world_size;
  for (int s = 0; s < kSteps; ++s)
    sgd_step(model, x.narrow(0, env.rank * half, half), y.narrow(0, env.rank * half, half), &dp);
  const auto flat = flat_params(model).contiguous();
  const int64_t n = flat.numel(), b = static_cast<int64_t>(dp.num_buckets());
  const auto offsets = dp.bucket_launch_offsets_ms();
  const int64_t m = static_cast<int64_t>(offsets.size());
  write_all(fd, &n, sizeof(n));
  write_all(fd, flat.data_ptr<float>(), static_cast<size_t>(n) * sizeof(float));
  write_all(fd, &b, sizeof(b));
  write_all(fd, &m, sizeof(m));
  write_all(fd, offsets.data(), offsets.size() * sizeof(double));
  dp.barrier();  // rank 0 hosts the store: stay until rank 1 is done with it
  return 0;
}

// Child body: trains until a collective fails; writes "s" once after a few steps, then the error.
int train_until_failure(int fd, int rank, int port, milliseconds timeout) {
  set_rank_environment(rank, port);
  DataParallel dp(DistEnv::from_environment(), torch::kCPU, timeout);
  Mlp model = make_mlp(1);
  dp.attach(*model, kBucketBytes);
  auto [x, y] = fixed_batch();
  try {
    for (int s = 0; s < 1000000; ++s) {
      sgd_step(model, x, y, &dp);
      if (s == 3) write_all(fd, "s", 1);
    }
  } catch (const DistributedError& e) {
    write_all(fd, e.what(), std::strlen(e.what()));
    return 3;
  }
  return 0;
}

}  // namespace

TEST_CASE("two data-parallel ranks on half batches match one process on the whole batch", "[distributed]") {
  if (!DataParallel::supports(torch::kCPU)) ABLATE_SKIP("built without Gloo headers");
  const int port = free_loopback_port();
  Child r0([&](int fd) { return train_rank(fd, 0, port); });
  Child r1([&](int fd) { return train_rank(fd, 1, port); });
  const std::string out0 = r0.read(1 << 20, milliseconds(20000));
  const std::string out1 = r1.read(1 << 20, milliseconds(20000));
  const int c0 = r0.wait(milliseconds(5000)), c1 = r1.wait(milliseconds(5000));
  INFO("rank 0: " << (c0 == 0 ? "" : out0) << " rank 1: " << (c1 == 0 ? "" : out1));
  REQUIRE(c0 == 0);
  REQUIRE(c1 == 0);
  const RankResult a = parse_result(out0), b = parse_result(out1);

  Mlp single = make_mlp(1);
  auto [x, y] = fixed_batch();
  for (int s = 0; s < kSteps; ++s) sgd_step(single, x, y, nullptr);
  const auto ref = flat_params(single);
  REQUIRE(static_cast<int64_t>(a.params.size()) == ref.numel());
  const auto pa = torch::from_blob(const_cast<float*>(a.params.data()), {ref.numel()});
  const auto pb = torch::from_blob(const_cast<float*>(b.params.data()), {ref.numel()});

  // The replicas apply the same averaged gradients, so they agree exactly with each other.
  CHECK(torch::equal(pa, pb));
  CHECK(torch::allclose(pa, ref, 1e-5, 1e-6));
  // The comparison is sensitive: training on rank 0's half alone ends far from the reference.
  Mlp half = make_mlp(1);
  for (int s = 0; s < kSteps; ++s) sgd_step(half, x.narrow(0, 0, kBatch / 2), y.narrow(0, 0, kBatch / 2), nullptr);
  CHECK((flat_params(half) - ref).abs().max().item<double>() > 1e-3);

  CHECK(a.buckets == kExpectedBuckets);
  REQUIRE(a.launch_offsets_ms.size() == kExpectedBuckets);
  // The first bucket (last layer) is full before backward reaches fc2 and fc1: launched during it.
  CHECK(a.launch_offsets_ms.front() < 0.0);
  CHECK(b.launch_offsets_ms.front() < 0.0);
}

TEST_CASE("a killed rank makes the surviving rank fail with an error, not hang", "[distributed]") {
  if (!DataParallel::supports(torch::kCPU)) ABLATE_SKIP("built without Gloo headers");
  const milliseconds timeout(3000);
  const int port = free_loopback_port();
  Child r0([&](int fd) { return train_until_failure(fd, 0, port, timeout); });
  Child r1([&](int fd) { return train_until_failure(fd, 1, port, timeout); });
  REQUIRE(r1.read(1, milliseconds(20000)) == "s");
  r1.signal(SIGKILL);
  const auto killed = Clock::now();
  const int c0 = r0.wait(timeout + milliseconds(5000));
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - killed).count();
  const std::string msg = r0.read(1 << 16, milliseconds(1000));
  INFO("rank 0 exit " << c0 << " after " << ms << " ms: " << msg);
  CHECK(c0 == 3);
  // Usually at once (the peer's socket closes); when Gloo misses the close, at the timeout.
  CHECK(ms < static_cast<double>(timeout.count()) + 2000.0);
  CHECK(msg.find("rank 0 of 2") != std::string::npos);
  CHECK(r1.wait(milliseconds(1000)) == 128 + SIGKILL);
}

TEST_CASE("a hung rank makes the surviving rank time out with an error", "[distributed]") {
  if (!DataParallel::supports(torch::kCPU)) ABLATE_SKIP("built without Gloo headers");
  const milliseconds timeout(1500);
  const int port = free_loopback_port();
  Child r0([&](int fd) { return train_until_failure(fd, 0, port, timeout); });
  Child r1([&](int fd) { return train_until_failure(fd, 1, port, timeout); });
  REQUIRE(r1.read(1, milliseconds(20000)) == "s");
  r1.signal(SIGSTOP);
  const auto stopped = Clock::now();
  const int c0 = r0.wait(timeout + milliseconds(5000));
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - stopped).count();
  const std::string msg = r0.read(1 << 16, milliseconds(1000));
  INFO("rank 0 exit " << c0 << " after " << ms << " ms: " << msg);
  CHECK(c0 == 3);
  CHECK(ms >= 0.5 * static_cast<double>(timeout.count()));
  CHECK(msg.find("rank 0 of 2") != std::string::npos);
  // r1's destructor kills and reaps the stopped process.
}

TEST_CASE("DistEnv reads the launcher's environment and rejects inconsistent values", "[distributed]") {
  auto run = [](const std::function<int()>& body) {
    Child c([&](int) { return body(); });
    return c.wait(milliseconds(5000));
  };
  auto clear = [] {
    for (const char* k : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID",
                          "SLURM_NTASKS", "SLURM_LOCALID", "ABLATE_DIST_TIMEOUT_S"})
      unsetenv(k);
  };
  auto config_error_key = [](const char* key) {
    try {
      DistEnv::from_environment();
    } catch (const ConfigError& e) {
      return e.key == key ? 0 : 2;
    }
    return 1;
  };
  CHECK(run([&] {
          clear();
          const DistEnv e = DistEnv::from_environment();
          return e.world_size == 1 && e.rank == 0 && !e.enabled() ? 0 : 1;
        }) == 0);
  CHECK(run([&] {
          clear();
          setenv("RANK", "3", 1), setenv("WORLD_SIZE", "4", 1), setenv("LOCAL_RANK", "1", 1);
          setenv("MASTER_ADDR", "node7", 1), setenv("MASTER_PORT", "29500", 1);
          const DistEnv e = DistEnv::from_environment();
          return e.rank == 3 && e.world_size == 4 && e.local_rank == 1 && e.master_addr == "node7" &&
                         e.master_port == 29500 && e.enabled()
                     ? 0
                     : 1;
        }) == 0);
  CHECK(run([&] {  // srun: SLURM_* once a rendezvous address is exported
          clear();
          setenv("SLURM_PROCID", "5", 1), setenv("SLURM_NTASKS", "8", 1), setenv("SLURM_LOCALID", "1", 1);
          setenv("MASTER_ADDR", "node0", 1), setenv("MASTER_PORT", "29400", 1);
          const DistEnv e = DistEnv::from_environment();
          return e.rank == 5 && e.world_size == 8 && e.local_rank == 1 ? 0 : 1;
        }) == 0);
  CHECK(run([&] {  // a batch script's SLURM_NTASKS alone does not make a distributed run
          clear();
          setenv("SLURM_PROCID", "0", 1), setenv("SLURM_NTASKS", "8", 1);
          return DistEnv::from_environment().world_size == 1 ? 0 : 1;
        }) == 0);
  CHECK(run([&] {
          clear();
          setenv("RANK", "2", 1), setenv("WORLD_SIZE", "2", 1);
          setenv("MASTER_ADDR", "a", 1), setenv("MASTER_PORT", "1", 1);
          return config_error_key("RANK");
        }) == 0);
  CHECK(run([&] {
          clear();
          setenv("RANK", "0", 1), setenv("WORLD_SIZE", "2", 1), setenv("MASTER_PORT", "1", 1);
          return config_error_key("MASTER_ADDR");
        }) == 0);
  CHECK(run([&] {
          clear();
          setenv("RANK", "0", 1), setenv("WORLD_SIZE", "two", 1);
          return config_error_key("WORLD_SIZE");
        }) == 0);
  CHECK(run([&] {
          clear();
          setenv("RANK", "1", 1), setenv("WORLD_SIZE", "2", 1), setenv("MASTER_ADDR", "a", 1);
          setenv("MASTER_PORT", "70000", 1);
          return config_error_key("MASTER_PORT");
        }) == 0);
  // The collective timeout: 300 s unless ABLATE_DIST_TIMEOUT_S says otherwise (fractions allowed).
  auto two_ranks = [] {
    setenv("RANK", "1", 1), setenv("WORLD_SIZE", "2", 1), setenv("MASTER_ADDR", "a", 1);
    setenv("MASTER_PORT", "29500", 1);
  };
  CHECK(run([&] {
          clear();
          two_ranks();
          return DistEnv::from_environment().timeout == std::chrono::seconds(300) ? 0 : 1;
        }) == 0);
  CHECK(run([&] {
          clear();
          two_ranks();
          setenv("ABLATE_DIST_TIMEOUT_S", "2.5", 1);
          return DistEnv::from_environment().timeout == milliseconds(2500) ? 0 : 1;
        }) == 0);
  for (const char* bad : {"0", "-1", "5min", ""}) {
    INFO("ABLATE_DIST_TIMEOUT_S=" << bad);
    CHECK(run([&] {
            clear();
            two_ranks();
            setenv("ABLATE_DIST_TIMEOUT_S", bad, 1);
            // An empty value counts as unset, like the launcher's variables.
            if (*bad == '\0') return DistEnv::from_environment().timeout == std::chrono::seconds(300) ? 0 : 1;
            return config_error_key("ABLATE_DIST_TIMEOUT_S");
          }) == 0);
  }
}

TEST_CASE("per-rank step seeds differ by run seed, rank and step, and depend on nothing else",
          "[distributed]") {
  std::set<uint64_t> seen;
  for (uint64_t seed : {0u, 1u})
    for (int rank = 0; rank < 4; ++rank)
      for (int64_t step = 0; step < 50; ++step) seen.insert(rank_step_seed(seed, rank, step));
  CHECK(seen.size() == 2 * 4 * 50);  // no two (seed, rank, step) share a stream
  // A pure function (a resumed run redraws the same): the global generators do not enter it.
  const uint64_t before = rank_step_seed(7, 1, 3);
  torch::manual_seed(12345);
  std::srand(6789);
  (void)torch::rand({4});
  CHECK(rank_step_seed(7, 1, 3) == before);
}

TEST_CASE("NCCL with one rank: the bucketed step equals the plain step on the GPU", "[distributed][gpu]") {
  if (!torch::cuda::is_available()) ABLATE_SKIP("no CUDA device");
  if (!DataParallel::supports(torch::kCUDA)) ABLATE_SKIP("built without NCCL");
  const torch::Device gpu(torch::kCUDA, 0);
  DistEnv env;
  env.master_addr = "127.0.0.1";
  env.master_port = free_loopback_port();
  DataParallel dp(env, gpu, milliseconds(30000));
  CHECK(dp.world_size() == 1);
  Mlp with = make_mlp(1), without = make_mlp(1);
  with->to(gpu);
  without->to(gpu);
  dp.broadcast_parameters(*with);
  dp.attach(*with, kBucketBytes);
  CHECK(dp.num_buckets() == kExpectedBuckets);
  auto [x, y] = fixed_batch();
  x = x.to(gpu);
  y = y.to(gpu);
  for (int s = 0; s < kSteps; ++s) {
    sgd_step(with, x, y, &dp);
    sgd_step(without, x, y, nullptr);
  }
  // The mean over one rank is the gradient itself: NCCL's all-reduce must leave it unchanged.
  CHECK(torch::allclose(flat_params(with), flat_params(without), 1e-6, 1e-7));
  Mlp start = make_mlp(1);
  CHECK((flat_params(with).cpu() - flat_params(start)).abs().max().item<double>() > 1e-4);  // it trained
  const auto v = torch::arange(5, torch::TensorOptions().dtype(torch::kFloat32).device(gpu));
  CHECK(torch::equal(dp.all_reduce_mean(v), v));
}

}  // namespace ablate
