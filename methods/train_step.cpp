// One pre-training step, eager or CUDA-graph replayed (see train_step.h).
#include "methods/train_step.h"

#include <chrono>
#include <deque>
#include <optional>

#include "harness/check.h"
#include "methods/distributed.h"
#include "methods/method.h"
#include "pch/torch_pch.h"

#include <ATen/autocast_mode.h>

#if ABLATE_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace ablate {

struct StepStream::Impl {
#if ABLATE_WITH_CUDA
  std::optional<c10::cuda::CUDAStreamGuard> guard;
#endif
};

StepStream::StepStream(torch::Device device, bool needed) : impl_(std::make_unique<Impl>()) {
#if ABLATE_WITH_CUDA
  if (needed && device.is_cuda())
    impl_->guard.emplace(c10::cuda::getStreamFromPool(false, device.has_index() ? device.index() : 0));
#endif
}
StepStream::~StepStream() = default;

struct TrainStep::Graph {
#if ABLATE_WITH_CUDA
  at::cuda::CUDAGraph graph;
#endif
};

namespace {

bool use_bf16(const TrainConfig& t, torch::Device device) {
  if (t.precision == Precision::bf16) return true;
  if (t.precision == Precision::fp32) return false;
  return device.is_cuda();
}

// bf16 autocast around the forward only (backward follows the forward's dtypes); the weight-cast
// cache is cleared on exit, as torch.autocast does, so updated weights are re-cast next step.
struct AutocastScope {
  torch::DeviceType type;
  bool on;
  AutocastScope(torch::DeviceType t, bool enable) : type(t), on(enable) {
    if (!on) return;
    at::autocast::set_autocast_enabled(type, true);
    at::autocast::set_autocast_dtype(type, at::kBFloat16);
  }
  ~AutocastScope() {
    if (!on) return;
    at::autocast::set_autocast_enabled(type, false);
    at::autocast::clear_cache();
  }
};

// Time marks between phases: CUDA events on the GPU (no sync until read), wall clock on the CPU.
class PhaseClock {
 public:
  explicit PhaseClock(torch::Device device) : cuda_(device.is_cuda()) {}
  void mark() {
#if ABLATE_WITH_CUDA
    if (cuda_) {
      events_.emplace_back(cudaEventDefault);
      events_.back().record();
      return;
    }
#endif
    wall_.push_back(std::chrono::steady_clock::now());
  }
  // Milliseconds between consecutive marks; synchronises with the device.
  std::vector<double> intervals_ms() {
    std::vector<double> out;
#if ABLATE_WITH_CUDA
    if (cuda_) {
      events_.back().synchronize();
      for (size_t i = 1; i < events_.size(); ++i) out.push_back(events_[i - 1].elapsed_time(events_[i]));
      return out;
    }
#endif
    for (size_t i = 1; i < wall_.size(); ++i)
      out.push_back(std::chrono::duration<double, std::milli>(wall_[i] - wall_[i - 1]).count());
    return out;
  }

 private:
  bool cuda_;
  std::vector<std::chrono::steady_clock::time_point> wall_;
#if ABLATE_WITH_CUDA
  std::deque<at::cuda::CUDAEvent> events_;
#endif
};

}  // namespace

TrainStep::TrainStep(const RunConfig& cfg, PretrainMethod& method, torch::Device device, DataParallel* dp)
    : cfg_(cfg),
      method_(method),
      device_(device),
      dp_(dp),
      bf16_(use_bf16(cfg.train, device)),
      opt_(method, cfg.train, device) {
  const auto o = torch::TensorOptions().device(device);
  psts_weights_ = torch::tensor({1.0f, 0.0f, 0.0f}, o.dtype(torch::kFloat32));
  step_ = torch::zeros({}, o.dtype(torch::kInt64));
  loss_ = torch::zeros({}, o.dtype(torch::kFloat32));
  grad_norm_ = torch::zeros({}, o.dtype(torch::kFloat32));
  first_bad_ = torch::full({}, -1, o.dtype(torch::kInt64));
}

TrainStep::~TrainStep() = default;

bool TrainStep::graphed() const { return graph_ != nullptr; }

void TrainStep::set_first_step(int64_t step) { step_.fill_(step); }

void TrainStep::set_lr(double lr) { opt_.lr().fill_(lr); }

void TrainStep::set_psts_weights(const std::array<double, 3>& w) {
  // Three scalar fills (kernel launches with the value as an argument): a copy from a host tensor
  // would make the host wait for the stream every step.
  for (int64_t i = 0; i < 3; ++i) psts_weights_.select(0, i).fill_(w[static_cast<size_t>(i)]);
}

void TrainStep::run_eager() {
  opt_.zero_grad();
  LossTerms lt;
  {
    AutocastScope autocast(device_.type(), bf16_);
    lt = method_.forward(StepInputs{images_, psts_weights_});
  }
  // InfoBatch: kept well-learned samples weigh 1 / (1 - prune), so the pruned epoch's expected
  // gradient is the full data's. Without it the method's own mean, exactly as before.
  const torch::Tensor objective =  // ()
      cfg_.method.infobatch ? (lt.per_sample * weights_).mean() : lt.total;
  objective.backward();
  if (dp_) dp_->finish_gradient_sync();  // clipping and AdamW see the ranks' mean gradient
  auto gn = opt_.clip_grad_norm(cfg_.train.clip_grad);
  opt_.step();

  torch::NoGradGuard no_grad;
  const auto total = lt.total.detach().to(torch::kFloat32);
  loss_.copy_(total);
  if (cfg_.method.infobatch) {
    if (!per_sample_.defined()) per_sample_ = torch::empty(lt.per_sample.sizes(), loss_.options());
    per_sample_.copy_(lt.per_sample.detach());
  }
  if (terms_.empty())
    for (const auto& [name, t] : lt.terms) {
      term_names_.push_back(name);
      terms_.push_back(torch::zeros({}, loss_.options()));
    }
  ABLATE_CHECK(terms_.size() == lt.terms.size(), "method changed its loss terms between steps");
  for (size_t i = 0; i < lt.terms.size(); ++i) terms_[i].copy_(lt.terms[i].second.detach());
  grad_norm_.copy_(gn);
  const auto bad = torch::logical_not(torch::isfinite(total)) | torch::logical_not(torch::isfinite(gn));
  first_bad_.copy_(torch::where(bad & (first_bad_ < 0), step_, first_bad_));
  step_.add_(1);
}

void TrainStep::operator()(const torch::Tensor& images, const torch::Tensor& sample_weights) {
  if (!images_.defined()) images_ = torch::empty_like(images);
  ABLATE_CHECK(images.sizes() == images_.sizes(), "train step shapes are fixed per run");
  images_.copy_(images, /*non_blocking=*/true);
  if (cfg_.method.infobatch) {
    ABLATE_CHECK(sample_weights.defined() && sample_weights.dim() == 1 && sample_weights.size(0) == images.size(0),
                 "InfoBatch steps need one weight per sample");
    if (!weights_.defined()) weights_ = torch::empty({images.size(0)}, loss_.options());
    weights_.copy_(sample_weights, /*non_blocking=*/true);
  }
#if ABLATE_WITH_CUDA
  if (device_.is_cuda() && cfg_.train.cuda_graph && !dp_) {
    if (eager_done_ < kEagerWarmupSteps) {
      run_eager();
      ++eager_done_;
      return;
    }
    if (!graph_) {
      graph_ = std::make_unique<Graph>();
      // Captured kernels must read the weights themselves, not a cast cached outside the graph.
      at::autocast::set_autocast_cache_enabled(false);
      graph_->graph.capture_begin();
      run_eager();
      graph_->graph.capture_end();
      at::autocast::set_autocast_cache_enabled(true);
    }
    graph_->graph.replay();
    return;
  }
#endif
  run_eager();
}

PhaseTimes TrainStep::timed_eager(const torch::Tensor& images) {
  if (!images_.defined()) images_ = torch::empty_like(images);
  images_.copy_(images);
  PhaseClock clock(device_);
  opt_.zero_grad();
  clock.mark();
  LossTerms lt;
  {
    AutocastScope autocast(device_.type(), bf16_);
    lt = method_.forward(StepInputs{images_, psts_weights_});
  }
  clock.mark();
  lt.total.backward();
  if (dp_) dp_->finish_gradient_sync();
  clock.mark();
  opt_.clip_grad_norm(cfg_.train.clip_grad);
  opt_.step();
  clock.mark();
  const auto ms = clock.intervals_ms();
  loss_.copy_(lt.total.detach().to(torch::kFloat32));
  return PhaseTimes{ms[0], ms[1], ms[2], ms[0] + ms[1] + ms[2]};
}

double TrainStep::loss() const { return loss_.item<double>(); }
double TrainStep::grad_norm() const { return grad_norm_.item<double>(); }
int64_t TrainStep::first_bad_step() const { return first_bad_.item<int64_t>(); }

std::vector<std::pair<std::string, double>> TrainStep::terms() const {
  std::vector<std::pair<std::string, double>> out;
  for (size_t i = 0; i < terms_.size(); ++i) out.emplace_back(term_names_[i], terms_[i].item<double>());
  return out;
}

}  // namespace ablate
