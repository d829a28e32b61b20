// Data-parallel gradient averaging over a c10d process group (see distributed.h).
//
// The c10d backends come from LibTorch itself: ProcessGroupGloo is compiled into libtorch_cpu, but
// the torch wheel ships no Gloo headers, which ProcessGroupGloo.hpp includes; they come from the
// system (Debian/Ubuntu libgloo-dev). Only pointers to Gloo types cross this file, so the headers
// need not match the Gloo version inside LibTorch. Without them CPU runs stay single-process.
#include "methods/distributed.h"

#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "datasets/split.h"
#include "harness/check.h"
#include "pch/torch_pch.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#if defined(USE_C10D_GLOO) && __has_include(<gloo/context.h>)
#define ABLATE_DIST_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#else
#define ABLATE_DIST_GLOO 0
#endif

#if ABLATE_WITH_CUDA && defined(USE_C10D_NCCL) && defined(ABLATE_HAVE_NCCL_H)
#define ABLATE_DIST_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#else
#define ABLATE_DIST_NCCL 0
#endif

namespace ablate {
namespace {

using Clock = std::chrono::steady_clock;

std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, const std::string& value, int min, int max) {
  size_t used = 0;
  int v = 0;
  try {
    v = std::stoi(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || v < min || v > max)
    throw ConfigError("environment", name, fmt::format("'{}' is not an integer in [{}, {}]", value, min, max));
  return v;
}

// A positive number of seconds (fractions allowed: tests use short timeouts).
std::chrono::milliseconds env_seconds(const char* name, const std::string& value) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || !(v >= 0.001 && v <= 1e7))
    throw ConfigError("environment", name, fmt::format("'{}' is not a number of seconds in [0.001, 1e7]", value),
                      "e.g. 300");
  return std::chrono::milliseconds(static_cast<int64_t>(v * 1000.0));
}

// The first of `names` that is set, with the name it was found under.
std::optional<std::pair<const char*, std::string>> first_set(std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (auto v = env_value(n)) return std::make_pair(n, *v);
  return std::nullopt;
}

// Gloo writes to its sockets with writev, which raises SIGPIPE when a peer has died: the default
// action would kill this rank silently instead of failing the collective with EPIPE (Python hides
// this by ignoring SIGPIPE process-wide). Threads inherit their creator's signal mask, so blocking
// SIGPIPE while c10d starts its threads (store, transport loop, workers) blocks it in those
// threads only; the caller's mask is restored afterwards.
class SigpipeBlockedForNewThreads {
 public:
  SigpipeBlockedForNewThreads() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, &old_);
  }
  ~SigpipeBlockedForNewThreads() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  SigpipeBlockedForNewThreads(const SigpipeBlockedForNewThreads&) = delete;
  SigpipeBlockedForNewThreads& operator=(const SigpipeBlockedForNewThreads&) = delete;

 private:
  sigset_t old_;
};

}  // namespace

DistEnv DistEnv::from_environment() {
  DistEnv env;
  env.master_addr = env_value("MASTER_ADDR").value_or("");
  // srun sets only SLURM_*: they count when the user exported a rendezvous address, since a batch
  // script running one process also sees SLURM_NTASKS > 1.
  const bool slurm = !env.master_addr.empty();
  const auto world = slurm ? first_set({"WORLD_SIZE", "SLURM_NTASKS"}) : first_set({"WORLD_SIZE"});
  const auto rank = slurm ? first_set({"RANK", "SLURM_PROCID"}) : first_set({"RANK"});
  const auto local = slurm ? first_set({"LOCAL_RANK", "SLURM_LOCALID"}) : first_set({"LOCAL_RANK"});
  if (!world) {
    if (rank) throw ConfigError("environment", rank->first, "is set but WORLD_SIZE is not");
    return env;
  }
  env.world_size = env_int(world->first, world->second, 1, 1 << 20);
  if (!rank && env.world_size > 1)
    throw ConfigError("environment", "RANK", "is not set but WORLD_SIZE is", "torchrun sets both");
  if (rank) env.rank = env_int(rank->first, rank->second, 0, env.world_size - 1);
  if (local) env.local_rank = env_int(local->first, local->second, 0, 1 << 20);
  if (!env.enabled()) return env;
  if (env.master_addr.empty())
    throw ConfigError("environment", "MASTER_ADDR", "is required when WORLD_SIZE > 1",
                      "torchrun sets it; under srun export the first node's host name");
  const auto port = env_value("MASTER_PORT");
  if (!port) throw ConfigError("environment", "MASTER_PORT", "is required when WORLD_SIZE > 1");
  env.master_port = env_int("MASTER_PORT", *port, 1, 65535);
  if (const auto t = env_value("ABLATE_DIST_TIMEOUT_S")) env.timeout = env_seconds("ABLATE_DIST_TIMEOUT_S", *t);
  return env;
}

struct DataParallel::Impl {
  // One flat gradient buffer; its parameters' .grad are views into it.
  struct Bucket {
    torch::Tensor flat;     // (numel,) all member gradients back to back
    size_t members = 0;     // parameters whose gradient lands here
    size_t pending = 0;     // members whose gradient has not been accumulated this step
    c10::intrusive_ptr<c10d::Work> work;
    Clock::time_point launched;
  };

  // Runs after AccumulateGrad has added this step's gradient into the parameter's .grad.
  struct GradReady : torch::autograd::PostAccumulateGradHook {
    Impl* impl;
    size_t bucket;
    GradReady(Impl* i, size_t b) : impl(i), bucket(b) {}
    void operator()(const torch::autograd::Variable&) override { impl->grad_ready(bucket); }
  };

  DistEnv env;
  torch::Device device;
  std::chrono::milliseconds timeout;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  std::vector<Bucket> buckets;
  std::vector<torch::Tensor> params;  // attached parameters, for detaching the hooks
  size_t next_launch = 0;             // buckets launch strictly in order, the same on every rank
  std::vector<double> launch_offsets_ms;
  bool failed = false;  // a collective failed: tear down without waiting for peers
  // On CUDA the autograd engine calls the hooks from its device thread.
  std::mutex mutex;

  Impl(const DistEnv& e, torch::Device d, std::chrono::milliseconds t) : env(e), device(d), timeout(t) {}

  DistributedError failure(const std::string& what, const std::exception& e) {
    failed = true;
    return DistributedError(fmt::format(
        "data-parallel rank {} of {}: {} failed: {} (another rank died, hung for longer than the {} ms "
        "timeout, or ran a different sequence of steps)",
        env.rank, env.world_size, what, e.what(), timeout.count()));
  }

  c10::intrusive_ptr<c10d::Work> all_reduce(torch::Tensor t, c10d::ReduceOp op, const std::string& what) {
    std::vector<at::Tensor> ts{std::move(t)};
    c10d::AllreduceOptions o;
    o.reduceOp = op;
    try {
      return backend->allreduce(ts, o);
    } catch (const std::exception& e) {
      throw failure(what, e);
    }
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw failure(what, e);
    }
  }

  void grad_ready(size_t b) {
    std::lock_guard lock(mutex);
    ABLATE_CHECK(buckets[b].pending > 0,
                 "a gradient was accumulated twice before finish_gradient_sync (gradient accumulation "
                 "over several backward passes is not supported)");
    --buckets[b].pending;
    launch_ready();
  }

  // Launches the full buckets at the head of the launch order.
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) launch(next_launch++);
  }

  void launch(size_t b) {
    Bucket& bk = buckets[b];
    bk.launched = Clock::now();
    bk.work = all_reduce(bk.flat, c10d::ReduceOp::SUM, fmt::format("gradient all-reduce (bucket {} of {})", b + 1, buckets.size()));
  }
};

DataParallel::DataParallel(const DistEnv& env, torch::Device device, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(env, device, timeout)) {
  ABLATE_CHECK(env.world_size >= 1 && env.rank >= 0 && env.rank < env.world_size, "bad rank {} of {}",
               env.rank, env.world_size);
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env.master_port);
  so.isServer = env.rank == 0;
  so.numWorkers = static_cast<size_t>(env.world_size);
  so.waitWorkers = true;
  so.timeout = timeout;
  const std::string where = fmt::format("rendezvous at {}:{}", env.master_addr, env.master_port);
  SigpipeBlockedForNewThreads sigpipe_blocked;
  try {
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    if (device.is_cuda()) {
#if ABLATE_DIST_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      impl_->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world_size, opts);
#else
      throw DistributedError("this build has no NCCL (needs CUDA LibTorch and nccl.h)");
#endif
    } else {
#if ABLATE_DIST_GLOO
      // create_default picks the interface from GLOO_SOCKET_IFNAME, else the host name's address.
      auto opts = c10d::ProcessGroupGloo::Options::create_default(timeout);
      impl_->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world_size, opts);
#else
      throw DistributedError("this build has no Gloo headers (install libgloo-dev and rebuild)");
#endif
    }
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& e) {
    throw impl_->failure(where, e);
  }
}

DataParallel::~DataParallel() {
  for (auto& p : impl_->params) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
  // NCCL wants its communicators finalised before exit; after a failure a peer may be gone, so
  // they are aborted instead of waited for. (Gloo tears down in its destructor either way.)
  try {
    if (impl_->failed)
      impl_->backend->abort();
    else
      impl_->backend->shutdown();
  } catch (const std::exception&) {
    // Nothing left to report to: the run is ending.
  }
}

bool DataParallel::supports(torch::DeviceType type) {
  return type == torch::kCUDA ? ABLATE_DIST_NCCL : ABLATE_DIST_GLOO;
}

int DataParallel::rank() const { return impl_->env.rank; }
int DataParallel::world_size() const { return impl_->env.world_size; }

void DataParallel::broadcast_parameters(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  auto send = [&](const torch::Tensor& t) {
    ABLATE_CHECK(t.is_contiguous(), "broadcast needs contiguous tensors");
    std::vector<at::Tensor> ts{t.detach()};
    c10d::BroadcastOptions o;
    o.rootRank = 0;
    try {
      works.push_back(impl_->backend->broadcast(ts, o));
    } catch (const std::exception& e) {
      throw impl_->failure("parameter broadcast", e);
    }
  };
  for (const auto& p : model.parameters()) send(p);
  for (const auto& b : model.buffers()) send(b);
  for (const auto& w : works) impl_->wait(w, "parameter broadcast");
}

void DataParallel::attach(torch::nn::Module& model, size_t bucket_bytes) {
  ABLATE_CHECK(impl_->buckets.empty(), "attach called twice");
  ABLATE_CHECK(bucket_bytes > 0, "bucket size must be positive");
  // Reverse registration order: backward reaches the last layers first.
  std::vector<torch::Tensor> params;
  std::vector<const c10::TensorImpl*> seen;
  for (const auto& p : model.parameters()) {
    if (!p.requires_grad() || std::find(seen.begin(), seen.end(), p.unsafeGetTensorImpl()) != seen.end()) continue;
    seen.push_back(p.unsafeGetTensorImpl());
    params.push_back(p);
  }
  ABLATE_CHECK(!params.empty(), "model has no trainable parameters");
  std::reverse(params.begin(), params.end());

  // Greedy packing; a bucket never mixes dtypes or devices, a parameter never straddles buckets.
  std::vector<std::vector<size_t>> groups;
  size_t bytes = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    const size_t nbytes = static_cast<size_t>(p.numel()) * p.element_size();
    const bool fits = !groups.empty() && bytes + nbytes <= bucket_bytes &&
                      params[groups.back().front()].dtype() == p.dtype() &&
                      params[groups.back().front()].device() == p.device();
    if (!fits) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(i);
    bytes += nbytes;
  }

  torch::NoGradGuard no_grad;
  auto& buckets = impl_->buckets;
  buckets.resize(groups.size());
  for (size_t b = 0; b < groups.size(); ++b) {
    int64_t numel = 0;
    for (size_t i : groups[b]) numel += params[i].numel();
    const auto& first = params[groups[b].front()];
    buckets[b].flat = torch::zeros({numel}, first.options().requires_grad(false));
    buckets[b].members = buckets[b].pending = groups[b].size();
    int64_t offset = 0;
    for (size_t i : groups[b]) {
      auto& p = params[i];
      auto view = buckets[b].flat.narrow(0, offset, p.numel()).view(p.sizes());
      if (p.grad().defined()) view.copy_(p.grad());
      p.mutable_grad() = view;
      offset += p.numel();
      torch::autograd::impl::set_post_acc_grad_hooks(p, std::make_unique<Impl::GradReady>(impl_.get(), b));
    }
  }
  impl_->params = std::move(params);
}

void DataParallel::finish_gradient_sync() {
  const auto backward_end = Clock::now();
  auto& im = *impl_;
  std::lock_guard lock(im.mutex);
  // Buckets holding parameters that got no gradient this step still go out, in order, so every
  // rank issues the same collectives.
  while (im.next_launch < im.buckets.size()) im.launch(im.next_launch++);
  im.launch_offsets_ms.clear();
  torch::NoGradGuard no_grad;
  for (size_t b = 0; b < im.buckets.size(); ++b) {
    auto& bk = im.buckets[b];
    im.wait(bk.work, fmt::format("gradient all-reduce (bucket {} of {})", b + 1, im.buckets.size()));
    bk.work.reset();
    bk.flat.div_(im.env.world_size);
    bk.pending = bk.members;
    im.launch_offsets_ms.push_back(std::chrono::duration<double, std::milli>(bk.launched - backward_end).count());
  }
  im.next_launch = 0;
}

std::vector<double> DataParallel::bucket_launch_offsets_ms() const { return impl_->launch_offsets_ms; }

size_t DataParallel::num_buckets() const { return impl_->buckets.size(); }

torch::Tensor DataParallel::all_reduce_mean(const torch::Tensor& value) {
  ABLATE_CHECK(value.is_floating_point(), "all_reduce_mean needs a floating-point tensor");
  auto t = value.detach().clone(torch::MemoryFormat::Contiguous);
  impl_->wait(impl_->all_reduce(t, c10d::ReduceOp::SUM, "all_reduce_mean"), "all_reduce_mean");
  return t.div_(impl_->env.world_size);
}

torch::Tensor DataParallel::all_reduce_max(const torch::Tensor& value) {
  auto t = value.detach().clone(torch::MemoryFormat::Contiguous);
  impl_->wait(impl_->all_reduce(t, c10d::ReduceOp::MAX, "all_reduce_max"), "all_reduce_max");
  return t;
}

torch::Tensor DataParallel::all_gather(const torch::Tensor& value) {
  // Each rank's values in its own row, zeros in the others: their sum over the ranks is the
  // concatenation, exactly (x + 0 = x), with the one all-reduce every backend offers for every
  // dtype. The W-fold traffic does not matter for the small tensors this is for.
  const int64_t w = impl_->env.world_size;
  auto t = torch::zeros({w, value.numel()}, value.options());
  t[impl_->env.rank].copy_(value.detach().reshape(-1));
  impl_->wait(impl_->all_reduce(t, c10d::ReduceOp::SUM, "all_gather"), "all_gather");
  return t.view({w * value.numel()});
}

void DataParallel::barrier() {
  c10d::BarrierOptions o;
  o.device = impl_->device;
  try {
    impl_->wait(impl_->backend->barrier(o), "barrier");
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& e) {
    throw impl_->failure("barrier", e);
  }
}

uint64_t rank_step_seed(uint64_t run_seed, int rank, int64_t step) {
  // The splitmix64 finaliser of the loader's per-epoch seeds, applied per rank, then per step.
  return mix_seed(mix_seed(run_seed, static_cast<uint64_t>(rank)), static_cast<uint64_t>(step));
}

}  // namespace ablate
