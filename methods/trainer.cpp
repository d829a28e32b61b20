// The pre-training loop (see trainer.h). Reading order: setup and resume, then the loop, whose
// body is: (InfoBatch: plan a new epoch) -> fetch batch -> set lr and PSTS weights -> one TrainStep
// (eager or graph replay; InfoBatch: weighted, then the batch's losses become its scores) -> every
// log_every steps read the device-side loss/grad-norm/divergence flag and write metrics -> every
// ckpt_every steps write a checkpoint.
#include "methods/trainer.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/journal.h"
#include "methods/checkpoint.h"
#include "methods/infobatch.h"
#include "methods/method.h"
#include "methods/pch/torch_pch.h"
#include "methods/psts.h"
#include "methods/stop_signal.h"
#include "methods/train_step.h"

#if ABLATE_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace ablate {
namespace {

using Clock = std::chrono::steady_clock;

double peak_memory_mb(torch::Device device) {
#if ABLATE_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0);
  }
#endif
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

double base_lr(const RunConfig& cfg) {
  const double lr = cfg.train.lr > 0 ? cfg.train.lr : cfg.train.blr * cfg.train.batch / 256.0;
  return lr * lr_rule_multiplier(cfg.method);
}

int64_t total_steps(const RunConfig& cfg, int64_t batches_per_epoch) {
  const int64_t n = static_cast<int64_t>(cfg.train.epochs) * batches_per_epoch;
  return cfg.train.max_steps > 0 ? std::min<int64_t>(n, cfg.train.max_steps) : n;
}

TrainOutcome pretrain(const RunConfig& cfg, PretrainMethod& method, BatchSource& data,
                      JournalWriter& journal, const std::filesystem::path& run_dir,
                      torch::Device device, int64_t stop_after) {
  const int64_t per_epoch = data.batches_per_epoch();  // a full epoch
  ABLATE_CHECK(per_epoch > 0, "data source yields no full batch");
  const int64_t fixed_total = total_steps(cfg, per_epoch);
  const int64_t warmup = static_cast<int64_t>(cfg.train.warmup_epochs * static_cast<double>(per_epoch));
  const double lr0 = base_lr(cfg);
  const int64_t batch = cfg.train.batch;

  method.to(device);
  method.train();
  StepStream stream(device, cfg.train.cuda_graph);
  TrainStep train_step(cfg, method, device);
  std::optional<InfoBatch> infobatch;
  if (cfg.method.infobatch) infobatch.emplace(cfg, data.pool(), device);
  InfoBatch* const ib = infobatch ? &*infobatch : nullptr;

  // ---- resume ----
  const auto ckpt = run_dir / "ckpt" / "last.pt";
  TrainProgress prog;
  if (load_checkpoint(ckpt, prog, method, train_step.optimizer(), ib)) {
    if (!ib)
      data.seek(prog.epoch, prog.position);
    else if (ib->current().epoch == prog.epoch)  // mid-epoch: continue its plan
      data.seek_planned(prog.epoch, prog.position, ib->current().order);
    // else the checkpoint ended an epoch: the loop plans the next one from the saved scores
    journal.env("resumed_from_step", std::to_string(prog.step));
  }
  train_step.set_first_step(prog.step);

  // Epochs done, fractions included: InfoBatch's measure of progress (its epochs differ in length).
  auto epochs_done = [&] {
    return static_cast<double>(prog.epoch) +
           static_cast<double>(prog.position) / static_cast<double>(data.batches_per_epoch() * batch);
  };
  // Steps of the run: fixed without InfoBatch. With it, the steps done + the rest of the current
  // epoch + the later epochs in full: an upper bound until the last epoch is planned, then exact.
  auto total = [&]() -> int64_t {
    if (!ib) return fixed_total;
    const bool mid = prog.position > 0;
    const int64_t n = prog.step + (mid ? data.batches_per_epoch() - prog.position / batch : 0) +
                      (cfg.train.epochs - prog.epoch - (mid ? 1 : 0)) * per_epoch;
    return cfg.train.max_steps > 0 ? std::min<int64_t>(n, cfg.train.max_steps) : n;
  };
  auto epoch_f = [&] {
    return ib ? epochs_done() : static_cast<double>(prog.step) / static_cast<double>(per_epoch);
  };

  TrainOutcome out;
  auto t_log = Clock::now();
  int64_t images_since_log = 0;
  int64_t steps_this_call = 0;

  // ---- the loop ----
  while (prog.step < total()) {
    if (ib && ib->current().epoch != prog.epoch) {
      ABLATE_CHECK(prog.position == 0, "InfoBatch epoch {} entered at position {} without its plan", prog.epoch,
                   prog.position);
      const InfoBatchEpoch& plan = ib->plan(prog.epoch);  // reads the scores: one sync per epoch
      data.seek_planned(prog.epoch, 0, plan.order);
      journal.metric(prog.step, static_cast<double>(prog.epoch), "infobatch_kept",
                     static_cast<double>(plan.order.size()));
    }
    const torch::Tensor images = data.next();  // (B, 3, S, S)
    // The schedules run over the steps of the fixed-length run, or over InfoBatch's epochs.
    const double at = ib ? epochs_done() : static_cast<double>(prog.step);
    const double span = ib ? static_cast<double>(cfg.train.epochs) : static_cast<double>(fixed_total);
    const double warm = ib ? cfg.train.warmup_epochs : static_cast<double>(warmup);
    train_step.set_lr(lr_at(at, span, warm, lr0, cfg.train.min_lr));
    if (cfg.method.psts)
      train_step.set_psts_weights(psts_stage_weights(at / span, cfg.method.psts_order, cfg.method.psts_bounds));
    if (ib) {
      const torch::Tensor idx = data.indices();  // (B,)
      train_step(images, ib->weights_of(idx));
      ib->record(idx, train_step.per_sample());
    } else {
      train_step(images);
    }
    ++prog.step;
    ++steps_this_call;
    images_since_log += images.size(0);
    prog.epoch = data.epoch();
    prog.position = data.position();

    const bool last = prog.step == total();
    const bool signalled = stop_requested();
    const bool interrupt = (stop_after > 0 && steps_this_call >= stop_after) || signalled;
    const bool checkpoint = prog.step % cfg.train.ckpt_every == 0 || last || interrupt;
    // Checkpoint points are log points too: a checkpoint is only written after the divergence
    // check has seen every step before it, so a resume never starts from poisoned weights.
    if (prog.step % cfg.train.log_every == 0 || checkpoint) {
      // The loop's host synchronisation (besides InfoBatch's once per epoch): the step's scalars.
      const int64_t bad = train_step.first_bad_step();
      const double loss = train_step.loss();
      const double gn = train_step.grad_norm();
      const double secs = std::chrono::duration<double>(Clock::now() - t_log).count();
      const double ips = secs > 0 ? static_cast<double>(images_since_log) / secs : 0.0;
      const double ep = epoch_f();
      journal.metric(prog.step, ep, "loss", loss);
      for (const auto& [name, v] : train_step.terms()) journal.metric(prog.step, ep, name, v);
      journal.metric(prog.step, ep, "grad_norm", gn);
      journal.metric(prog.step, ep, "lr", train_step.optimizer().lr().item<double>());
      journal.metric(prog.step, ep, "images_per_s", ips);
      journal.metric(prog.step, ep, "peak_mem_mb", peak_memory_mb(device));
      journal.progress(prog.step, total(), loss, ips);
      out.final_loss = loss;
      t_log = Clock::now();
      images_since_log = 0;

      if (bad >= 0) {
        out.status = "diverged";
        out.diverged_step = bad + 1;
        out.reason = fmt::format("non-finite loss or gradient at step {}", bad + 1);
      } else if (prog.grad_norm_history.size() >= 5 &&
                 gn > cfg.train.diverge_factor * median_of(prog.grad_norm_history)) {
        out.status = "diverged";
        out.diverged_step = prog.step;
        out.reason = fmt::format("grad-norm spike at step {}: {:.4g} > {} x median {:.4g}", prog.step, gn,
                                 cfg.train.diverge_factor, median_of(prog.grad_norm_history));
      }
      if (out.status == "diverged") {
        std::string hist;
        for (double h : prog.grad_norm_history) hist += fmt::format("{}{:.4g}", hist.empty() ? "" : ",", h);
        journal.env("diverged_grad_norm_history", hist);
        out.steps = prog.step;
        return out;  // no checkpoint: the weights are already poisoned
      }
      prog.grad_norm_history.push_back(gn);
      if (prog.grad_norm_history.size() > 50) prog.grad_norm_history.erase(prog.grad_norm_history.begin());
    }
    if (checkpoint) {
      const auto t0 = Clock::now();
      save_checkpoint(ckpt, prog, method, train_step.optimizer(), ib);
      journal.metric(prog.step, epoch_f(), "ckpt_seconds", std::chrono::duration<double>(Clock::now() - t0).count());
      t_log = Clock::now();  // checkpoint time is not training throughput
    }
    if (signalled) {
      out.status = "stopped";
      out.reason = fmt::format("stop signal at step {}: checkpointed for requeue", prog.step);
      break;
    }
    if (interrupt) break;
  }
  out.steps = prog.step;
  return out;
}

}  // namespace ablate
