// The pre-training loop (see trainer.h). Reading order: the pieces, then pretrain(), which sets up
// (Schedule, resume) and loops over "the step" - (InfoBatch: plan a new epoch) -> fetch batch ->
// Schedule::apply (lr and PSTS weights) -> step_on (one TrainStep, eager or graph replay; InfoBatch:
// weighted, then the batch's losses become its scores) - and "diagnostics": every log_every steps
// read the device-side loss/grad-norm/divergence flag (averaged over the ranks of a data-parallel
// run), log_metrics, the divergence guard; every ckpt_every steps write_checkpoint.
#include "methods/trainer.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>
#include <optional>

#include <ATen/Context.h>
#include <fmt/format.h>

#include "harness/check.h"
#include "harness/journal.h"
#include "harness/median.h"
#include "methods/checkpoint.h"
#include "methods/device_memory.h"
#include "methods/distributed.h"
#include "methods/infobatch.h"
#include "methods/method.h"
#include "pch/torch_pch.h"
#include "methods/psts.h"
#include "methods/stop_signal.h"
#include "methods/train_step.h"

namespace ablate {
namespace {

using Clock = std::chrono::steady_clock;

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

// The run's length and where the lr and PSTS schedules stand. Without InfoBatch a fixed number of
// steps (epochs x full epochs, capped by max_steps) and the schedules run over steps; with it
// train.epochs epochs of varying length, and the schedules follow the epochs done, fractions
// included (as the public code's per-iteration schedule).
class Schedule {
 public:
  Schedule(const RunConfig& cfg, const BatchSource& data, const InfoBatch* ib, int world)
      : cfg_(cfg),
        data_(data),
        ib_(ib),
        per_epoch_(data.batches_per_epoch()),
        fixed_total_(total_steps(cfg, per_epoch_)),
        warmup_steps_(static_cast<int64_t>(cfg.train.warmup_epochs * static_cast<double>(per_epoch_))),
        batch_(cfg.train.batch / world),
        lr0_(base_lr(cfg)) {}

  // Steps of the run: fixed without InfoBatch. With it, the steps done + the rest of the current
  // epoch + the later epochs in full: an upper bound until the last epoch is planned, then exact.
  int64_t total(const TrainProgress& p) const {
    if (!ib_) return fixed_total_;
    const bool mid = p.position > 0;
    const int64_t n = p.step + (mid ? data_.batches_per_epoch() - p.position / batch_ : 0) +
                      (cfg_.train.epochs - p.epoch - (mid ? 1 : 0)) * per_epoch_;
    return cfg_.train.max_steps > 0 ? std::min<int64_t>(n, cfg_.train.max_steps) : n;
  }

  // The fractional epoch logged with each metric.
  double epoch(const TrainProgress& p) const {
    return ib_ ? epochs_done(p) : static_cast<double>(p.step) / static_cast<double>(per_epoch_);
  }

  // Sets the lr (and SelectiveMAE's PSTS stage weights) of the step about to run.
  void apply(TrainStep& step, const TrainProgress& p) const {
    const double at = ib_ ? epochs_done(p) : static_cast<double>(p.step);
    const double span = ib_ ? static_cast<double>(cfg_.train.epochs) : static_cast<double>(fixed_total_);
    const double warm = ib_ ? cfg_.train.warmup_epochs : static_cast<double>(warmup_steps_);
    step.set_lr(lr_at(at, span, warm, lr0_, cfg_.train.min_lr));
    if (cfg_.method.psts)
      step.set_psts_weights(psts_stage_weights(at / span, cfg_.method.psts_order, cfg_.method.psts_bounds));
  }

 private:
  // Epochs done, fractions included: InfoBatch's measure of progress (its epochs differ in length).
  double epochs_done(const TrainProgress& p) const {
    return static_cast<double>(p.epoch) +
           static_cast<double>(p.position) / static_cast<double>(data_.batches_per_epoch() * batch_);
  }

  const RunConfig& cfg_;
  const BatchSource& data_;
  const InfoBatch* ib_;
  int64_t per_epoch_;     // batches of a full epoch
  int64_t fixed_total_;   // steps of the run without InfoBatch
  int64_t warmup_steps_;  // warm-up in steps without InfoBatch
  int64_t batch_;         // this rank's samples per step
  double lr0_;
};

// Loads run_dir/ckpt/last.pt when it exists and points the data where that run stopped. With
// several ranks, checks that every rank resumed from the same step, then shares rank 0's weights
// and attaches the gradient averaging.
TrainProgress resume(const std::filesystem::path& ckpt, PretrainMethod& method, TrainStep& train_step,
                     BatchSource& data, InfoBatch* ib, JournalWriter* journal, DataParallel* dp,
                     torch::Device device) {
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
  return prog;
}

// InfoBatch, at an epoch's first step: plans the epoch from the samples' scores (the one host sync
// per epoch) and points the data at its order.
void plan_epoch_if_due(InfoBatch& ib, BatchSource& data, const TrainProgress& prog, JournalWriter* journal) {
  if (ib.current().epoch == prog.epoch) return;
  ABLATE_CHECK(prog.position == 0, "InfoBatch epoch {} entered at position {} without its plan", prog.epoch,
               prog.position);
  const InfoBatchEpoch& plan = ib.plan(prog.epoch);
  data.seek_planned(prog.epoch, 0, plan.order);
  if (journal)
    journal->metric(prog.step, static_cast<double>(prog.epoch), "infobatch_kept", static_cast<double>(plan.order.size()));
}

// The step itself: one TrainStep on `images` (B, 3, S, S). With InfoBatch the loss is weighted per
// sample and the batch's losses then become its samples' scores.
void step_on(TrainStep& train_step, const torch::Tensor& images, const BatchSource& data, InfoBatch* ib,
             DataParallel* dp) {
  if (!ib) {
    train_step(images);
    return;
  }
  const torch::Tensor idx = data.indices();  // (B,)
  train_step(images, ib->weights_of(idx));
  // Every rank records every rank's losses (as the public code's all_gather), so all ranks plan
  // the same epochs and rank 0's checkpoint holds every score.
  if (dp)
    ib->record(dp->all_gather(idx), dp->all_gather(train_step.per_sample()));
  else
    ib->record(idx, train_step.per_sample());
}

// Images trained on per second between log points (checkpoint time excluded).
struct Throughput {
  Clock::time_point since = Clock::now();
  int64_t images = 0;

  double images_per_s() const {
    const double secs = std::chrono::duration<double>(Clock::now() - since).count();
    return secs > 0 ? static_cast<double>(images) / secs : 0.0;
  }
  void restart() {
    since = Clock::now();
    images = 0;
  }
};

// The log point's metrics and progress line.
void log_metrics(JournalWriter& journal, const LogScalars& s, const TrainProgress& prog, const Schedule& schedule,
                 TrainStep& train_step, const Throughput& meter, torch::Device device) {
  const double ep = schedule.epoch(prog), ips = meter.images_per_s();
  journal.metric(prog.step, ep, "loss", s.loss);
  for (const auto& [name, v] : s.terms) journal.metric(prog.step, ep, name, v);
  journal.metric(prog.step, ep, "grad_norm", s.grad_norm);
  journal.metric(prog.step, ep, "lr", train_step.optimizer().lr().item<double>());
  journal.metric(prog.step, ep, "images_per_s", ips);
  journal.metric(prog.step, ep, "peak_mem_mb", peak_memory_mib(device));
  journal.progress(prog.step, schedule.total(prog), s.loss, ips);
}

// The divergence guard, at a log point: a non-finite loss or gradient (the device keeps the first
// bad step) or a grad norm over train.diverge_factor x the median of the last 50 logged norms
// (once 5 are known) ends the run as diverged, filling `out`. The median is harness/median.h's, as
// the reports': for an even-length history the mean of the two middle norms (before the fold into
// one median it was the upper of the two). Otherwise the norm joins the history, which checkpoints
// keep, so a resumed run judges as the uninterrupted one.
bool diverged(const LogScalars& s, const RunConfig& cfg, TrainProgress& prog, TrainOutcome& out) {
  auto& history = prog.grad_norm_history;
  if (s.first_bad >= 0) {
    out.diverged_step = s.first_bad + 1;
    out.reason = fmt::format("non-finite loss or gradient at step {}", s.first_bad + 1);
  } else if (history.size() >= 5 && s.grad_norm > cfg.train.diverge_factor * median(history)) {
    out.diverged_step = prog.step;
    out.reason = fmt::format("grad-norm spike at step {}: {:.4g} > {} x median {:.4g}", prog.step, s.grad_norm,
                             cfg.train.diverge_factor, median(history));
  } else {
    history.push_back(s.grad_norm);
    if (history.size() > 50) history.erase(history.begin());
    return false;
  }
  out.status = "diverged";
  out.steps = prog.step;
  return true;
}

// Saves the checkpoint (rank 0 only) and journals how long that took.
void write_checkpoint(const std::filesystem::path& ckpt, const TrainProgress& prog, PretrainMethod& method,
                      TrainStep& train_step, const InfoBatch* ib, JournalWriter* journal, const Schedule& schedule) {
  const auto t0 = Clock::now();
  save_checkpoint(ckpt, prog, method, train_step.optimizer(), ib);
  if (journal)
    journal->metric(prog.step, schedule.epoch(prog), "ckpt_seconds",
                    std::chrono::duration<double>(Clock::now() - t0).count());
}

// The grad norms that led up to a divergence, for the post-mortem.
void record_divergence(JournalWriter* journal, const TrainProgress& prog) {
  std::string hist;
  for (double h : prog.grad_norm_history) hist += fmt::format("{}{:.4g}", hist.empty() ? "" : ",", h);
  if (journal) journal->env("diverged_grad_norm_history", hist);
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
  ABLATE_CHECK(data.batches_per_epoch() > 0, "data source yields no full batch");
  const bool lead = !dp || dp->rank() == 0;  // writes the checkpoints
  ABLATE_CHECK(lead || journal == nullptr, "only rank 0 of a data-parallel run writes the journal");
  const int world = dp ? dp->world_size() : 1;

  method.to(device);
  method.train();
  StepStream stream(device, cfg.train.cuda_graph && !dp);
  TrainStep train_step(cfg, method, device, dp);
  std::optional<InfoBatch> infobatch;
  if (cfg.method.infobatch) infobatch.emplace(cfg, data.pool(), device);
  InfoBatch* const ib = infobatch ? &*infobatch : nullptr;
  const Schedule schedule(cfg, data, ib, world);
  const auto ckpt = run_dir / "ckpt" / "last.pt";
  TrainProgress prog = resume(ckpt, method, train_step, data, ib, journal, dp, device);

  TrainOutcome out;
  Throughput meter;
  int64_t steps_this_call = 0;
  while (prog.step < schedule.total(prog)) {
    // ---- the step ----
    if (ib) plan_epoch_if_due(*ib, data, prog, journal);
    if (dp) seed_step(rank_step_seed(static_cast<uint64_t>(cfg.seed), dp->rank(), prog.step), device);
    const torch::Tensor images = data.next();  // (B, 3, S, S)
    schedule.apply(train_step, prog);
    step_on(train_step, images, data, ib, dp);
    ++prog.step;
    ++steps_this_call;
    meter.images += images.size(0) * world;  // the ranks step together
    prog.epoch = data.epoch();
    prog.position = data.position();

    // ---- diagnostics, checkpoint, stop ----
    // One process acts on a stop signal at once; the ranks of a data-parallel run at the next log
    // point, where they agree on it.
    bool signalled = !dp && stop_requested();
    bool interrupt = (stop_after > 0 && steps_this_call >= stop_after) || signalled;
    bool checkpoint = prog.step % cfg.train.ckpt_every == 0 || prog.step == schedule.total(prog) || interrupt;
    // Checkpoint points are log points too: a checkpoint is only written after the divergence
    // guard has seen every step before it, so a resume never starts from poisoned weights.
    if (prog.step % cfg.train.log_every == 0 || checkpoint) {
      // The loop's host synchronisation (besides InfoBatch's once per epoch): the step's scalars.
      const LogScalars ls = read_log_scalars(train_step, dp, dp && stop_requested(), device);
      if (ls.stop && !signalled) signalled = interrupt = checkpoint = true;
      if (journal) log_metrics(*journal, ls, prog, schedule, train_step, meter, device);
      out.final_loss = ls.loss;
      meter.restart();
      if (diverged(ls, cfg, prog, out)) {
        record_divergence(journal, prog);
        return out;  // no checkpoint: the weights are already poisoned
      }
    }
    if (checkpoint && lead) {
      write_checkpoint(ckpt, prog, method, train_step, ib, journal, schedule);
      meter.restart();  // checkpoint time is not training throughput
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
