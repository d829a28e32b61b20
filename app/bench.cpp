// `ablate bench`: throughput of the exact train step the trainer runs (methods/train_step.h), on
// this machine's device, with the settings of ../shared/bench/mae_reference.py (harness/bench_preset.h;
// SelectiveMAE picks its reconstructed patches by HOG top-k among the masked).
// Protocol: warm-up (which includes the CUDA-graph capture), then the median over --steps steps,
// each timed with CUDA events (wall clock on CPU). In the same process it measures the GPU's bf16
// matmul rate (8192^3 products) for MFU, the peak memory of eager steps (as Python's
// max_memory_allocated; CUDA only, 0 on the CPU: methods/device_memory.h), a per-phase split from
// eagerly timed steps (forward, backward, optimizer, selection), and - with --input shards - how
// many images/s the data path (shard loader + device augmentation) can feed.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/data_source.h"
#include "app/version.h"
#include "datasets/bench.h"
#include "harness/bench_preset.h"
#include "harness/check.h"
#include "harness/config.h"
#include "harness/median.h"
#include "harness/model_sizes.h"
#include "methods/device_memory.h"
#include "methods/hog.h"
#include "methods/masking.h"
#include "methods/method.h"
#include "pch/torch_pch.h"
#include "methods/train_step.h"

#if ABLATE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#endif

namespace ablate {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string method = "mae";   // mae | selectivemae | crossmae | crossscale
  std::string model = "vit_b";
  int batch = 256;
  int steps = 60;               // timed steps (median reported), after warm-up
  int warmup = 10;
  int img_size = 224;
  std::string input = "synthetic";  // synthetic | shards (packed EuroSAT, see --shards)
  std::string shards;               // shard folder for --input shards
  bool no_graph = false;            // run the step eagerly (no CUDA graph)
  std::string precision = "auto";
  std::string db;                   // record results here when set
  std::string json_out;             // write the result JSON here when set
};

// `ablate bench loader`: images/s from packed shards vs decoding JPEGs with OpenCV.
struct BenchLoaderOptions {
  std::string shards, jpegs;
  int images = 4000, workers = 2;
};

RunConfig bench_config(const BenchOptions& o) {
  RunConfig c = bench_preset(*parse_choice<MethodKind>(o.method), o.model, o.img_size, o.batch);
  c.train.cuda_graph = !o.no_graph;
  c.train.precision = *parse_choice<Precision>(o.precision);
  return c;
}

void sync(torch::Device d) {
#if ABLATE_WITH_CUDA
  if (d.is_cuda()) at::cuda::getCurrentCUDAStream().synchronize();
#endif
}

// Milliseconds of `fn`, timed with CUDA events on the GPU and the wall clock on the CPU.
template <class F>
double time_ms(torch::Device d, F&& fn) {
#if ABLATE_WITH_CUDA
  if (d.is_cuda()) {
    at::cuda::CUDAEvent a(cudaEventDefault), b(cudaEventDefault);
    a.record();
    fn();
    b.record();
    b.synchronize();
    return a.elapsed_time(b);
  }
#endif
  const auto t0 = Clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Measured dense matmul rate in TFLOP/s: bf16 8192^3 on CUDA, fp32 1024^3 on CPU.
double matmul_tflops(torch::Device d) {
  const int64_t n = d.is_cuda() ? 8192 : 1024;
  const auto dt = d.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  auto a = torch::randn({n, n}, torch::TensorOptions().device(d).dtype(dt));
  auto b = torch::randn({n, n}, torch::TensorOptions().device(d).dtype(dt));
  for (int i = 0; i < 3; ++i) torch::mm_out(a, a, b);  // warm-up; a is overwritten, values stay finite-ish
  a = torch::randn({n, n}, a.options());
  const int reps = d.is_cuda() ? 20 : 3;
  auto c = torch::empty_like(a);
  const double ms = time_ms(d, [&] {
    for (int i = 0; i < reps; ++i) torch::mm_out(c, a, b);
  });
  return 2.0 * n * n * n * reps / (ms * 1e-3) / 1e12;
}

// The allocator's peak since the last reset_allocator_peak, in GiB; 0 on the CPU, which keeps no
// resettable peak (the process's peak resident set would count everything before the phase too).
double peak_mem_gib(torch::Device d) {
  return static_cast<double>(allocator_peak_bytes(d).value_or(0)) / double(1 << 30);
}

// The bench's input: a fixed batch already on the device (as the Python reference), or the real
// data path (packed shards, device augmentation).
class BenchInput {
 public:
  BenchInput(const BenchOptions& o, const RunConfig& cfg, torch::Device device) {
    if (o.input == "shards") {
      shards_ = std::make_unique<ShardBatchSource>(cfg, o.shards, device, /*seed=*/0);
    } else {
      fixed_ = torch::randn({o.batch, 3, o.img_size, o.img_size}, torch::TensorOptions().device(device));
    }
  }
  torch::Tensor next() { return shards_ ? shards_->next() : fixed_; }  // (B, 3, S, S)
  bool from_shards() const { return shards_ != nullptr; }

 private:
  std::unique_ptr<ShardBatchSource> shards_;
  torch::Tensor fixed_;
};

// The timed steps, as the trainer runs them (CUDA graph unless --no-graph), after the warm-up.
struct TimedSteps {
  std::vector<double> step_ms, data_ms;
  bool graphed = false;
  double loss = 0;
  double peak_gib = 0;  // allocator peak over the timed steps (the graph pool's memory left out)
};

TimedSteps time_steps(const BenchOptions& o, const RunConfig& cfg, PretrainMethod& method, BenchInput& input,
                      torch::Device device) {
  TimedSteps out;
  {
    StepStream stream(device, cfg.train.cuda_graph);
    TrainStep step(cfg, method, device);
    step.set_lr(1.5e-4 * o.batch / 256.0);
    for (int i = 0; i < std::max(o.warmup, TrainStep::kEagerWarmupSteps + 2); ++i) step(input.next());
    sync(device);
    reset_allocator_peak(device);
    for (int i = 0; i < o.steps; ++i) {
      torch::Tensor x;
      out.data_ms.push_back(time_ms(device, [&] { x = input.next(); }));
      out.step_ms.push_back(time_ms(device, [&] { step(x); }));
    }
    out.graphed = step.graphed();
    out.loss = step.loss();
  }
  out.peak_gib = peak_mem_gib(device);
  return out;
}

// Per-phase split from eagerly timed steps (a separate TrainStep: no graph, same math). Its peak -
// from a fresh optimizer state through 12 steps - is the one comparable with Python's
// max_memory_allocated; the graphed steps' peak leaves out what the graph pool holds.
struct EagerPhases {
  std::vector<double> forward_ms, backward_ms, optimizer_ms;
  double peak_gib = 0;
};

EagerPhases time_eager_phases(const BenchOptions& o, const RunConfig& cfg, PretrainMethod& method,
                              BenchInput& input, torch::Device device) {
  EagerPhases out;
  sync(device);
  reset_allocator_peak(device);
  TrainStep eager(cfg, method, device);
  eager.set_lr(1.5e-4 * o.batch / 256.0);
  for (int i = 0; i < 12; ++i) {
    const auto t = eager.timed_eager(input.next());
    if (i < 2) continue;  // warm-up
    out.forward_ms.push_back(t.forward_ms);
    out.backward_ms.push_back(t.backward_ms);
    out.optimizer_ms.push_back(t.optimizer_ms);
  }
  sync(device);
  out.peak_gib = peak_mem_gib(device);
  return out;
}

// Selection alone, same batch and counts: MAE's random masking (argsort of noise); SelectiveMAE's
// HOG scoring of every patch plus top-k choice of the visible and the reconstructed patches.
std::vector<double> time_selection(const BenchOptions& o, const RunConfig& cfg, BenchInput& input,
                                   torch::Device device) {
  std::vector<double> sel_ms;
  torch::NoGradGuard ng;
  const auto x = input.next();
  const int64_t L = (o.img_size / cfg.model.patch_size) * (o.img_size / cfg.model.patch_size);
  const int64_t keep = visible_count(L, cfg.method.mask_ratio);
  const int64_t rec = recon_count(L, cfg.method.mask_ratio, cfg.method.recon_ratio);
  const HogMode mode = cfg.method.hog_mode;
  for (int i = 0; i < 12; ++i) {
    const double ms = time_ms(device, [&] {
      if (cfg.method.name == MethodKind::mae) {
        random_masking(o.batch, L, cfg.method.mask_ratio, device);
      } else {
        const auto logits = hog_selection_logits(hog_patch_scores(x, cfg.model.patch_size, mode), mode);
        select_by_logits(logits, keep, false);
        select_by_logits(-logits, rec, false);
      }
    });
    if (i >= 2) sel_ms.push_back(ms);
  }
  return sel_ms;
}

// Images/s the data path alone delivers (20 batches); 0 for the fixed synthetic batch.
double data_feed_images_per_s(const BenchOptions& o, BenchInput& input, torch::Device device) {
  if (!input.from_shards()) return 0;
  const double ms = time_ms(device, [&] {
    for (int i = 0; i < 20; ++i) input.next();
  });
  return 20.0 * o.batch / (ms * 1e-3);
}

int bench_main(const BenchOptions& o) {
  const torch::Device device = torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  RunConfig cfg = bench_config(o);
  torch::manual_seed(0);
  auto method = make_method(cfg);
  method->to(device);
  method->train();
  BenchInput input(o, cfg, device);

  const double tflops = matmul_tflops(device);
  const double flops_img = train_flops_per_image(cfg);
  const TimedSteps timed = time_steps(o, cfg, *method, input, device);
  const EagerPhases phases = time_eager_phases(o, cfg, *method, input, device);
  const std::vector<double> sel_ms = time_selection(o, cfg, input, device);
  const double feed_ips = data_feed_images_per_s(o, input, device);

  std::string device_name = "cpu";
  for (const auto& [k, v] : library_versions())
    if (k == "gpu") device_name = v;
  const double med = median(timed.step_ms);
  const double ips = o.batch / (med * 1e-3);
  const double mfu = flops_img * ips / (tflops * 1e12);
  nlohmann::json r{{"method", o.method},
                   {"model", o.model},
                   {"batch", o.batch},
                   {"img_size", o.img_size},
                   {"input", o.input},
                   {"device", device_name},
                   {"cuda_graph", timed.graphed},
                   {"steps", o.steps},
                   {"step_ms_median", med},
                   {"img_per_s", ips},
                   {"img_per_min", ips * 60},
                   {"train_gflops_per_image", flops_img / 1e9},
                   {"matmul_tflops_measured", tflops},
                   {"mfu", mfu},
                   {"peak_mem_gib", phases.peak_gib},
                   {"graph_peak_mem_gib", timed.peak_gib},
                   {"phase_ms",
                    {{"data", median(timed.data_ms)},
                     {"forward", median(phases.forward_ms)},
                     {"backward", median(phases.backward_ms)},
                     {"optimizer", median(phases.optimizer_ms)},
                     {"selection", median(sel_ms)}}},
                   {"data_feed_img_per_s", feed_ips},
                   {"loss", timed.loss}};
  fmt::print("{} {} batch {} ({}, graph {}): {:.1f} img/s ({:.0f} img/min), step {:.2f} ms, {:.1f} GFLOP/img, "
             "MFU {:.1f}% of measured {:.0f} TFLOP/s, peak {:.2f} GiB\n",
             o.method, o.model, o.batch, r["device"].get<std::string>(), timed.graphed ? "on" : "off", ips, ips * 60,
             med, flops_img / 1e9, mfu * 100, tflops, phases.peak_gib);
  fmt::print("  phases (eager, ms): forward {:.2f}  backward {:.2f}  optimizer {:.2f}  selection {:.2f}  data {:.2f}\n",
             median(phases.forward_ms), median(phases.backward_ms), median(phases.optimizer_ms), median(sel_ms),
             median(timed.data_ms));
  if (input.from_shards())
    fmt::print("  data path feeds {:.0f} img/s = {:.2f}x the step's consumption\n", feed_ips, feed_ips / ips);
  if (!o.json_out.empty()) {
    std::ofstream f(o.json_out);
    f << r.dump(2) << "\n";
  }
  std::cout << r.dump() << "\n";
  return 0;
}

int bench_loader_main(const BenchLoaderOptions& o) {
  const auto r = bench_loader(o.shards, o.jpegs, o.images, o.workers);
  fmt::print("loader, {} images of {}px, {} threads: packed shards {:.0f} img/s, OpenCV JPEG decode {:.0f} img/s, "
             "ratio {:.1f}x\n",
             r.images, r.image_size, r.workers, r.shard_images_per_s, r.decode_images_per_s, r.speedup);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "train-step throughput (median over timed steps)");
  cmd->add_option("--method", opt->method, "mae | selectivemae | crossmae | crossscale")
      ->check(CLI::IsMember(choice_words<MethodKind>()));
  cmd->add_option("--model", opt->model, "named size");
  cmd->add_option("--batch", opt->batch, "batch size");
  cmd->add_option("--steps", opt->steps, "timed steps (>= 50 for reported numbers)");
  cmd->add_option("--warmup", opt->warmup, "untimed warm-up steps");
  cmd->add_option("--img", opt->img_size, "input size");
  cmd->add_option("--input", opt->input, "synthetic | shards")->check(CLI::IsMember({"synthetic", "shards"}));
  cmd->add_option("--shards", opt->shards, "packed shard folder for --input shards");
  cmd->add_option("--precision", opt->precision, "auto | fp32 | bf16")->check(CLI::IsMember(choice_words<Precision>()));
  cmd->add_option("--db", opt->db, "also record the result in this database");
  cmd->add_option("--json-out", opt->json_out, "write the result as JSON here");
  cmd->add_flag("--no-graph", opt->no_graph, "run the step eagerly (no CUDA graph)");
  commands.push_back({cmd, [opt] { return bench_main(*opt); }});

  auto lopt = std::make_shared<BenchLoaderOptions>();
  CLI::App* loader = cmd->add_subcommand("loader", "images/s: packed shards vs OpenCV JPEG decoding");
  loader->add_option("--shards", lopt->shards, "packed shard folder")->required();
  loader->add_option("--jpegs", lopt->jpegs, "dataset folder of JPEGs")->required();
  loader->add_option("--images", lopt->images, "images to read");
  loader->add_option("--workers", lopt->workers, "reader threads");
  commands.push_back({loader, [lopt] { return bench_loader_main(*lopt); }});
}

}  // namespace ablate
