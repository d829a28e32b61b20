// The pre-training loop (see trainer.h). Reading order: setup and resume, then the loop, whose
// body is: (InfoBatch: plan a new epoch) -> fetch batch -> set lr and PSTS weights -> one TrainStep
// (eager or graph replay; InfoBatch: weighted, then the batch's losses become its scores) -> every
// log_every steps read the device-side loss/grad-norm/divergence flag (averaged over the ranks of a
// data-parallel run) and write metrics -> every ckpt_every steps write a checkpoint.
#include "methods/trainer.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>
#include <optional>

#include <ATen/Context.h>
#include <fmt/format.h>

#include "harness/check.h"
#include "harness/journal.h"
#include "methods/checkpoint.h"
#include "methods/distributed.h"
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

// What a log point decides from. With several ranks the loss, its terms and the grad norm are
// averaged over the ranks, the first bad step is the earliest any rank saw and `stop` is whether any
// rank was asked to stop: every rank then takes the same decisions, so none runs a collective the
// others will not.
struct LogScalars {
  double loss = 0, grad_norm = 0;
  std::vector<std::pair<std::string, double>> terms;
  int64_t first_bad = -1;
  bool stop = false;
};

LogScalars read_log_scalars(const TrainStep& step, DataParallel* dp, bool stop, torch::Device device) {
  LogScalars s{step.loss(), step.grad_norm(), step.terms(), step.first_bad_step(), stop};
  if (!dp) return s;
  const auto o = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  std::vector<double> v{s.loss, s.grad_norm};
  for (const auto& t : s.terms) v.push_back(t.second);
  const auto mean = dp->all_reduce_mean(torch::tensor(v, o)).cpu();
  s.loss = mean[0].item<double>();
  s.grad_norm = mean[1].item<double>();
  for (size_t i = 0; i < s.terms.size(); ++i) s.terms[i].second = mean[static_cast<int64_t>(i) + 2].item<double>();
  // max(-first_bad) over the bad ranks is minus the earliest bad step; a rank without one sends -inf.
  const double none = -std::numeric_limits<double>::infinity();
  const auto max = dp->all_reduce_max(
                         torch::tensor({stop ? 1.0 : 0.0, s.first_bad >= 0 ? -static_cast<double>(s.first_bad) : none}, o))
                       .cpu();
  s.stop = max[0].item<double>() > 0;
  const double bad = max[1].item<double>();
  s.first_bad = bad == none ? -1 : static_cast<int64_t>(-bad);
  return s;
}

// Seeds the generators a rank draws from in a step (the CPU's and its device's) with `seed`; the
// other devices' generators are none of this rank's business.
void seed_step(uint64_t seed, torch::Device device) {
  for (const torch::Device d : {torch::Device(torch::kCPU), device}) {
    at::Generator gen = at::globalContext().defaultGenerator(d);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
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
                      JournalWriter* journal, const std::filesystem::path& run_dir,
                      torch::Device device, int64_t stop_after, DataParallel* dp) {
  const int64_t per_epoch = data.batches_per_epoch();  // a full epoch
  ABLATE_CHECK(per_epoch > 0, "data source yields no full batch");
  const int64_t fixed_total = total_steps(cfg, per_epoch);
  const int64_t warmup = static_cast<int64_t>(cfg.train.warmup_epochs * static_cast<double>(per_epoch));
  const double lr0 = base_lr(cfg);
  const bool lead = !dp || dp->rank() == 0;  // writes the checkpoints
  ABLATE_CHECK(lead || journal == nullptr, "only rank 0 of a data-parallel run writes the journal");
  const int world = dp ? dp->world_size() : 1;
  const int64_t batch = cfg.train.batch / world;  // this rank's samples per step

  method.to(device);
  method.train();
  StepStream stream(device, cfg.train.cuda_graph && !dp);
  TrainStep train_step(cfg, method, device, dp);
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
    if (journal) journal->env("resumed_from_step", std::to_string(prog.step));
  }
  if (dp) {
    // Every rank read the checkpoint itself; a rank that saw another one (a stale network file
    // system) would run a different number of steps and leave the others waiting.
    const double newest = dp->all_reduce_max(torch::tensor({static_cast<double>(prog.step)},
                                                           torch::TensorOptions().dtype(torch::kFloat64).device(device)))
                              .item<double>();
    if (newest != static_cast<double>(prog.step))
      throw DistributedError(fmt::format("data-parallel rank {} resumed from step {} of {}, another rank from step {}",
                                         dp->rank(), prog.step, ckpt.string(), newest));
    dp->broadcast_parameters(method);
    dp->attach(method);
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
      if (journal)
        journal->metric(prog.step, static_cast<double>(prog.epoch), "infobatch_kept",
                        static_cast<double>(plan.order.size()));
    }
    if (dp) seed_step(rank_step_seed(static_cast<uint64_t>(cfg.seed), dp->rank(), prog.step), device);
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
      // Every rank records every rank's losses (as the public code's all_gather), so all ranks
      // plan the same epochs and rank 0's checkpoint holds every score.
      if (dp)
        ib->record(dp->all_gather(idx), dp->all_gather(train_step.per_sample()));
      else
        ib->record(idx, train_step.per_sample());
    } else {
      train_step(images);
    }
    ++prog.step;
    ++steps_this_call;
    images_since_log += images.size(0) * world;  // the ranks step together
    prog.epoch = data.epoch();
    prog.position = data.position();

    const bool last = prog.step == total();
    // One process acts on a stop signal at once; the ranks of a data-parallel run at the next log
    // point, where they agree on it.
    bool signalled = !dp && stop_requested();
    bool interrupt = (stop_after > 0 && steps_this_call >= stop_after) || signalled;
    bool checkpoint = prog.step % cfg.train.ckpt_every == 0 || last || interrupt;
    // Checkpoint points are log points too: a checkpoint is only written after the divergence
    // check has seen every step before it, so a resume never starts from poisoned weights.
    if (prog.step % cfg.train.log_every == 0 || checkpoint) {
      // The loop's host synchronisation (besides InfoBatch's once per epoch): the step's scalars.
      const LogScalars ls = read_log_scalars(train_step, dp, dp && stop_requested(), device);
      if (ls.stop && !signalled) signalled = interrupt = checkpoint = true;
      const int64_t bad = ls.first_bad;
      const double loss = ls.loss;
      const double gn = ls.grad_norm;
      const double secs = std::chrono::duration<double>(Clock::now() - t_log).count();
      const double ips = secs > 0 ? static_cast<double>(images_since_log) / secs : 0.0;
      const double ep = epoch_f();
      if (journal) {
        journal->metric(prog.step, ep, "loss", loss);
        for (const auto& [name, v] : ls.terms) journal->metric(prog.step, ep, name, v);
        journal->metric(prog.step, ep, "grad_norm", gn);
        journal->metric(prog.step, ep, "lr", train_step.optimizer().lr().item<double>());
        journal->metric(prog.step, ep, "images_per_s", ips);
        journal->metric(prog.step, ep, "peak_mem_mb", peak_memory_mb(device));
        journal->progress(prog.step, total(), loss, ips);
      }
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
        if (journal) journal->env("diverged_grad_norm_history", hist);
        out.steps = prog.step;
        return out;  // no checkpoint: the weights are already poisoned
      }
      prog.grad_norm_history.push_back(gn);
      if (prog.grad_norm_history.size() > 50) prog.grad_norm_history.erase(prog.grad_norm_history.begin());
    }
    if (checkpoint && lead) {
      const auto t0 = Clock::now();
      save_checkpoint(ckpt, prog, method, train_step.optimizer(), ib);
      if (journal)
        journal->metric(prog.step, epoch_f(), "ckpt_seconds", std::chrono::duration<double>(Clock::now() - t0).count());
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
