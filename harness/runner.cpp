// Local runner (see runner.h): one scheduling loop that claims runs through the shared lifecycle
// (lifecycle.h), launches their workers (process.h), polls them every 200 ms (reap, ingest
// journals, heartbeat, progress line), waits for runs other live runners hold, and records each
// outcome.
#include "harness/runner.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <system_error>
#include <iterator>
#include <thread>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/env_info.h"
#include "harness/eval_runner.h"
#include "harness/journal.h"
#include "harness/lifecycle.h"
#include "harness/memory_estimate.h"
#include "harness/model_sizes.h"
#include "harness/process.h"
#include "harness/progress.h"
#include "harness/store.h"
#include "harness/sys_util.h"

extern char** environ;

namespace ablate {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr auto kPollInterval = std::chrono::milliseconds(200);
constexpr auto kHeartbeatInterval = std::chrono::seconds(1);
constexpr auto kStopGrace = std::chrono::seconds(10);  // SIGTERM -> SIGKILL on interrupt
// How often runs held by other runners are looked at (and dead runners' runs declared lost).
constexpr auto kElsewhereInterval = std::chrono::seconds(2);

// Opens the runner's line in worker.log before each attempt.
constexpr const char* kLogBanner = "==== ablate runner: ";

// The rendezvous variables of data-parallel ranks: the runner sets them for a run's ranks and
// clears them for single-process runs, whatever its own environment holds.
constexpr const char* kRankVariables[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                                          "ABLATE_DIST_TIMEOUT_S"};

std::string join_ints(const std::vector<int>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += sep;
    s += std::to_string(v[i]);
  }
  return s;
}

// One worker process of a run: rank `rank` of its data-parallel ranks (0 of 1 for most runs).
struct RankProcess {
  int rank = 0;
  pid_t pid = -1;
  fs::path log;
  bool ended = false;
  int wstatus = 0;
  std::string signalled_by;  // who in ablate signalled it and why ("" = nobody in ablate)
  std::string killed_why;    // set when the runner killed it for outliving the rank deadline
};

// Why a worker process without a finish line ended, from its wait status. A signal names its
// sender when ablate sent it (this runner, or the claim step of another runner that found the
// worker a leftover of a dead runner); only an unexplained SIGKILL points at the OOM killer.
std::string describe_exit(const RankProcess& p) {
  if (!p.killed_why.empty()) return p.killed_why;
  std::string reason = wait_status_text(p.wstatus);
  if (exited_cleanly(p.wstatus)) reason += " without a finish line";
  std::string tail = last_log_line(p.log, kLogBanner);
  if (WIFSIGNALED(p.wstatus)) {
    const std::string note = leftover_kill_note(p.log, p.pid);
    if (!p.signalled_by.empty()) {
      reason += "; sent by " + p.signalled_by;
    } else if (!note.empty()) {
      reason += "; " + note;
      tail.clear();  // the note is that line
    } else if (WTERMSIG(p.wstatus) == SIGKILL) {
      reason += "; not sent by ablate: the kernel OOM killer is the usual sender (see dmesg)";
    }
  }
  if (!tail.empty()) reason += "; last log line: " + tail;
  return reason;
}

struct ActiveRun {
  std::string id;
  int attempt = 0;
  std::vector<RankProcess> ranks;  // ranks[0] writes the journal; its pid is the process group
  std::vector<int> gpus;
  fs::path dir;
  Clock::time_point started;
  ActiveRunProgress progress;
  std::vector<int> end_order;  // ranks in the order they were reaped
  // Set when a rank failed, or rank 0 ended: the ranks still alive then must end by this time.
  std::optional<Clock::time_point> rank_deadline;
  std::string deadline_cause;  // e.g. "rank 1 ended"

  pid_t group() const { return ranks.front().pid; }
  bool all_ended() const {
    for (const RankProcess& r : ranks)
      if (!r.ended) return false;
    return true;
  }
};

class LocalRunner {
 public:
  LocalRunner(const Experiment& experiment, const RunnerOptions& options)
      : exp_(experiment),
        opt_(options),
        rerun_(parse_rerun(options.rerun)),
        store_(options.db),
        progress_(options.progress_tty, stderr) {
    runs_root_ = fs::absolute(opt_.runs_root.empty() ? fs::path(opt_.db).parent_path() / "runs"
                                                     : fs::path(opt_.runs_root));
    for (const PlannedRun& r : exp_.runs) planned_[r.id] = &r;
    free_gpus_ = opt_.gpus;
    gpu_gib_ = opt_.gpu_mem_gib;
    if (gpu_gib_ <= 0 && !opt_.gpus.empty()) {  // the smallest of the GPUs handed out
      const std::map<int, double> listed = gpu_memory_gib();
      for (int g : opt_.gpus) {
        const auto it = listed.find(g);
        if (it == listed.end()) {  // nvidia-smi missing or not listing it: no memory check
          gpu_gib_ = 0;
          break;
        }
        gpu_gib_ = gpu_gib_ <= 0 ? it->second : std::min(gpu_gib_, it->second);
      }
    }
    claim_.host = host_name();
    claim_.runner_pid = ::getpid();
    claim_.runner_start = process_start_ticks(::getpid()).value_or(0);
    claim_.code_version = code_version(build_source_dir());
  }

  int run() {
    const auto t0 = Clock::now();
    store_.upsert_planned(exp_.name, exp_.runs);
    for (const LostRun& l : store_.mark_lost_stale(opt_.lease_s))
      progress_.note(fmt::format("run {} lost: {}", l.id, l.reason));
    plan_queue();
    sweep_.runs_finished_at_start = sweep_.runs_finished;
    progress_.note(fmt::format("{}: {} planned, {} finished, {} to run, {} running elsewhere ({})", exp_.name,
                               exp_.runs.size(), sweep_.runs_finished, pending_.size(), elsewhere_.size(),
                               opt_.gpus.empty() ? fmt::format("{} CPU job(s)", opt_.jobs)
                                                 : "GPUs " + join_ints(opt_.gpus, ",")));
    StopSignals signals;
    auto last_heartbeat = Clock::now(), last_look_elsewhere = Clock::now();
    for (;;) {
      if (signals.count() > 0) stop_workers(signals);
      if (!stopping_) launch_ready();
      if (active_.empty() && (stopping_ || (pending_.empty() && elsewhere_.empty()))) break;
      std::this_thread::sleep_for(kPollInterval);
      reap();
      ingest_active();
      if (Clock::now() - last_heartbeat >= kHeartbeatInterval) {
        std::vector<std::pair<std::string, int>> beating;
        for (const ActiveRun& a : active_) beating.emplace_back(a.id, a.attempt);
        store_.heartbeat(beating);
        last_heartbeat = Clock::now();
      }
      if (!stopping_ && Clock::now() - last_look_elsewhere >= kElsewhereInterval) {
        look_elsewhere();
        last_look_elsewhere = Clock::now();
      }
      update_progress(t0);
    }
    // Then the evaluations, each its own task reading a finished run's checkpoint.
    EvalStage stage{store_, progress_, claim_, runs_root_, [&signals] { return signals.count() > 0; }};
    const EvalStageResult evals = stopping_ ? EvalStageResult{} : run_eval_stage(exp_, opt_, stage);
    stopping_ |= evals.interrupted;
    return summarize(t0, evals);
  }

 private:
  // Fills pending_ with the planned runs this call should execute (lifecycle.h: choose_runs), in
  // experiment order on the CPU, largest first on GPUs; runs other runners hold go to elsewhere_.
  void plan_queue() {
    for (RunChoice& c : choose_runs(store_, exp_, rerun_)) {
      seen_[c.run->id] = c.seen;
      switch (c.action) {
        case RunChoice::Action::execute: pending_.push_back(c.run->id); break;
        case RunChoice::Action::finished: ++sweep_.runs_finished; break;
        case RunChoice::Action::elsewhere: wait_for_elsewhere(c.row); break;
      }
    }
    sweep_.runs_total = static_cast<int>(exp_.runs.size());
    if (opt_.gpus.empty()) return;
    std::erase_if(pending_, [&](const std::string& id) { return !fits_gpus(*planned_.at(id)); });
    // Largest first, so runs needing many GPUs start while all are free and smaller runs fill the
    // gaps they leave; among equals the run with more FLOPs per image (the bigger model) first.
    std::stable_sort(pending_.begin(), pending_.end(), [&](const std::string& a, const std::string& b) {
      const PlannedRun& ra = *planned_.at(a);
      const PlannedRun& rb = *planned_.at(b);
      if (gpus_needed(ra) != gpus_needed(rb)) return gpus_needed(ra) > gpus_needed(rb);
      return train_flops_per_image(ra.config) > train_flops_per_image(rb.config);
    });
  }

  // What the GPUs can never hold is settled before a run is queued: a run needing more GPUs than
  // --gpus names stays queued (skipped), one whose memory does not fit is recorded as out of memory.
  bool fits_gpus(const PlannedRun& r) {
    if (opt_.gpus.empty()) return true;
    if (gpus_needed(r) > static_cast<int>(opt_.gpus.size())) {
      progress_.note(fmt::format("run {} needs {} GPUs but the runner has {} (--gpus): skipped", r.id,
                                 gpus_needed(r), opt_.gpus.size()));
      return false;
    }
    const double need = planned_peak_gib(r.config);
    if (gpu_gib_ > 0 && !fits_gpu(need, gpu_gib_)) {
      reject_out_of_memory(r, need);
      return false;
    }
    return true;
  }

  // A run another runner holds: a local runner's is waited for (it ends, or its runner dies and
  // this runner takes it over); a Slurm job's is left to Slurm (`ablate sync` records its end).
  void wait_for_elsewhere(const RunRow& row) {
    if (held_by_slurm(row)) {
      progress_.note(fmt::format("run {} is running as Slurm job {}: skipped", row.id,
                                 row.slurm_job_id.empty() ? "(being submitted)" : row.slurm_job_id));
      return;
    }
    progress_.note(fmt::format("run {} is running under another runner ({} pid {}): waiting for it", row.id,
                               row.host, row.runner_pid.value_or(0)));
    elsewhere_.push_back(row.id);
  }

  // Runs other runners hold: those that ended are counted, those whose runner died (declared lost
  // here) are taken over.
  void look_elsewhere() {
    if (elsewhere_.empty()) return;
    for (const LostRun& l : store_.mark_lost_stale(opt_.lease_s))
      progress_.note(fmt::format("run {} lost: {}", l.id, l.reason));
    std::erase_if(elsewhere_, [&](const std::string& id) {
      const RunRow row = *store_.run(id);
      const RunStatus s = status_of(row);
      if (s == RunStatus::running) return false;
      if (is_final(s)) {
        ++sweep_.runs_finished;
        progress_.note(fmt::format("run {} {} under another runner{}", id, row.status,
                                   row.exit_reason.empty() ? "" : ": " + row.exit_reason));
      } else {
        progress_.note(fmt::format("run {} is {} again: taking it over", id, row.status));
        seen_[id] = s;
        if (fits_gpus(*planned_.at(id))) pending_.push_back(id);
      }
      return true;
    });
  }

  // Records a run that cannot fit the GPUs as failed (out of memory) without launching it.
  void reject_out_of_memory(const PlannedRun& r, double need_gib) {
    const Claim c = claim_for_execution(store_, r, seen_.at(r.id), rerun_, claim_, runs_root_ / r.id);
    if (!took(r, c)) return;
    const std::string why = fmt::format(
        "out of memory (estimated before launch): needs {:.1f} GiB per GPU with {} rank(s), the GPUs have "
        "{:.1f} GiB; raise resources.gpus, lower train.batch, or set resources.mem_gb if the estimate is wrong",
        need_gib, gpus_needed(r), gpu_gib_);
    store_.finish(r.id, c.attempt, status_name(RunStatus::failed), why);
    ++sweep_.runs_finished;
    progress_.note(fmt::format("run {} failed: {}", r.id, why));
  }

  // Reports what the claim step did; true when the run is now ours to launch.
  bool took(const PlannedRun& r, const Claim& c) {
    for (const std::string& n : c.notes) progress_.note(n);
    switch (c.outcome) {
      case Claim::Outcome::claimed: return true;
      case Claim::Outcome::finished:
        ++sweep_.runs_finished;
        if (c.notes.empty()) progress_.note(fmt::format("run {} {} under another runner", r.id, status_name(c.status)));
        return false;
      case Claim::Outcome::elsewhere: wait_for_elsewhere(*store_.run(r.id)); return false;
    }
    return false;
  }

  int gpus_needed(const PlannedRun& r) const { return std::max(1, r.config.resources.gpus); }

  void launch_ready() {
    for (auto it = pending_.begin(); it != pending_.end();) {
      const PlannedRun& r = *planned_.at(*it);
      if (opt_.gpus.empty()) {
        // A k-rank CPU run takes k of the --jobs slots (or all of them, alone, when k > --jobs).
        int busy = 0;
        for (const ActiveRun& a : active_) busy += gpus_needed(*planned_.at(a.id));
        const int slots = std::max(1, opt_.jobs);
        if (busy >= slots) return;
        if (!active_.empty() && busy + gpus_needed(r) > slots) {
          ++it;  // a smaller run may fit the free slots
          continue;
        }
      } else if (gpus_needed(r) > static_cast<int>(free_gpus_.size())) {
        ++it;  // a later, smaller run may fit now
        continue;
      }
      std::vector<int> gpus;
      if (!opt_.gpus.empty()) {
        gpus.assign(free_gpus_.begin(), free_gpus_.begin() + gpus_needed(r));
        free_gpus_.erase(free_gpus_.begin(), free_gpus_.begin() + gpus_needed(r));
      }
      it = pending_.erase(it);
      if (!start(r, gpus)) free_gpus_.insert(free_gpus_.end(), gpus.begin(), gpus.end());
    }
  }

  // Claims (lifecycle.h) and launches one run; false when it turned out not to be ours to run.
  bool start(const PlannedRun& r, const std::vector<int>& gpus) {
    const fs::path dir = runs_root_ / r.id;
    ClaimInfo who = claim_;
    who.gpu = join_ints(gpus, ",");
    const Claim c = claim_for_execution(store_, r, seen_.at(r.id), rerun_, who, dir);
    if (!took(r, c)) return false;
    ActiveRun a;
    a.id = r.id;
    a.attempt = c.attempt;
    a.gpus = gpus;
    a.dir = dir;
    a.started = Clock::now();
    a.progress.id = r.id;
    const int world = std::max(1, r.config.resources.gpus);
    try {
      const int port = world > 1 ? free_loopback_port() : 0;
      for (int rank = 0; rank < world; ++rank) {
        RankProcess p;
        p.rank = rank;
        p.log = dir / (rank == 0 ? std::string("worker.log") : fmt::format("worker.rank{}.log", rank));
        p.pid = spawn_logged(worker_spec(dir, gpus, c.attempt, rank, world, port, rank == 0 ? 0 : a.group(), p.log));
        a.ranks.push_back(std::move(p));
      }
    } catch (const std::system_error& e) {
      for (RankProcess& p : a.ranks) {  // ranks already started would wait for the rest in vain
        ::kill(p.pid, SIGKILL);
        ::waitpid(p.pid, nullptr, 0);
      }
      store_.finish(r.id, c.attempt, status_name(RunStatus::failed), fmt::format("could not start the worker: {}", e.what()));
      ++sweep_.runs_finished;
      progress_.note(fmt::format("run {} failed to start: {}", r.id, e.what()));
      return false;
    }
    store_.set_worker_pid(r.id, c.attempt, a.group());
    progress_.note(fmt::format("run {} started (attempt {}{}{})", r.id, c.attempt,
                               gpus.empty() ? "" : ", GPU " + who.gpu,
                               world > 1 ? fmt::format(", {} ranks", world) : ""));
    active_.push_back(std::move(a));
    return true;
  }

  // `<ablate_exe> worker --run-dir <dir>` as rank `rank` of `world` (rendezvous on
  // 127.0.0.1:`port`), output appended to `log`. Rank 0 leads a new process group; the other ranks
  // join `group`, so one signal to the group reaches the whole run.
  SpawnSpec worker_spec(const fs::path& dir, const std::vector<int>& gpus, int attempt, int rank, int world, int port,
                        pid_t group, const fs::path& log) const {
    SpawnSpec spec;
    spec.argv = {opt_.ablate_exe, "worker", "--run-dir", dir.string()};
    bool gloo_interface_set = false;
    for (char** e = environ; *e; ++e) {
      const std::string_view kv(*e);
      const std::string_view name = kv.substr(0, kv.find('='));
      if (!gpus.empty() && name == "CUDA_VISIBLE_DEVICES") continue;
      if (std::find(std::begin(kRankVariables), std::end(kRankVariables), name) != std::end(kRankVariables)) continue;
      gloo_interface_set |= name == "GLOO_SOCKET_IFNAME";
      spec.env.emplace_back(kv);
    }
    if (!gpus.empty())
      spec.env.push_back("CUDA_VISIBLE_DEVICES=" + join_ints(gpus, ","));
    else
      for (std::string& v : cpu_thread_env(opt_.jobs)) spec.env.push_back(std::move(v));
    if (world > 1) {
      // LOCAL_RANK = RANK: all ranks run here, rank i on the i-th of the run's GPUs.
      spec.env.push_back(fmt::format("RANK={}", rank));
      spec.env.push_back(fmt::format("WORLD_SIZE={}", world));
      spec.env.push_back(fmt::format("LOCAL_RANK={}", rank));
      spec.env.push_back("MASTER_ADDR=127.0.0.1");
      spec.env.push_back(fmt::format("MASTER_PORT={}", port));
      spec.env.push_back(fmt::format("ABLATE_DIST_TIMEOUT_S={}", opt_.dist_timeout_s));
      // Gloo would otherwise pick the interface of the host name's address; the ranks are local.
      if (!gloo_interface_set) spec.env.emplace_back("GLOO_SOCKET_IFNAME=lo");
    }
    spec.log = log;
    spec.banner = fmt::format("{}attempt {} on {}{}{} ====\n", kLogBanner, attempt, claim_.host,
                              gpus.empty() ? "" : ", GPUs " + join_ints(gpus, ","),
                              world > 1 ? fmt::format(", rank {} of {}", rank, world) : "");
    spec.group = group;
    return spec;
  }

  // Reaps ended ranks; a run's attempt ends when all its ranks have. Once a rank of a data-parallel
  // run has failed (or rank 0, which ends last, has ended), the others notice within the
  // collectives' timeout and end too; ranks still alive after twice that are hung, and killed.
  void reap() {
    for (auto it = active_.begin(); it != active_.end();) {
      ActiveRun& a = *it;
      for (RankProcess& p : a.ranks) {
        if (p.ended) continue;
        pid_t got = ::waitpid(p.pid, &p.wstatus, WNOHANG);
        if (got == 0 || (got < 0 && errno == EINTR)) continue;
        ABLATE_CHECK(got == p.pid, "waitpid({}) failed: errno {}", p.pid, errno);
        p.ended = true;
        a.end_order.push_back(p.rank);
        if (a.ranks.size() > 1 && !a.rank_deadline && (p.rank == 0 || !exited_cleanly(p.wstatus))) {
          a.rank_deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(2 * opt_.dist_timeout_s));
          a.deadline_cause = fmt::format("rank {} ended", p.rank);
        }
      }
      if (a.all_ended()) {
        on_exit(a);
        free_gpus_.insert(free_gpus_.end(), a.gpus.begin(), a.gpus.end());
        it = active_.erase(it);
        continue;
      }
      if (a.rank_deadline && Clock::now() > *a.rank_deadline) {
        for (RankProcess& p : a.ranks)
          if (!p.ended && p.killed_why.empty())
            p.killed_why = fmt::format("killed by the runner: still running {} s after {} (2 x the data-parallel "
                                       "timeout)",
                                       2 * opt_.dist_timeout_s, a.deadline_cause);
        signal_run(a, SIGKILL, "rank deadline");
      }
      ++it;
    }
  }

  // Why an attempt without a finish line ended. One process: its exit. Several ranks: each rank
  // that did not exit cleanly, in the order they ended (the first is usually the cause, the
  // others' errors its consequence), or rank 0's exit when all exited 0.
  std::string describe_attempt(const ActiveRun& a, bool skip_rank0) const {
    if (a.ranks.size() == 1) return describe_exit(a.ranks.front());
    std::string out;
    for (int r : a.end_order) {
      const RankProcess& p = a.ranks[static_cast<size_t>(r)];
      if (exited_cleanly(p.wstatus) || (skip_rank0 && r == 0)) continue;
      out += fmt::format("{}rank {} of {}: {}", out.empty() ? "" : " | ", r, a.ranks.size(), describe_exit(p));
    }
    if (out.empty() && !skip_rank0)
      out = fmt::format("rank 0 of {}: {}", a.ranks.size(), describe_exit(a.ranks.front()));
    return out;
  }

  void on_exit(const ActiveRun& a) {
    ingest_journal(store_, a.id, a.dir);  // the last lines, finish included
    std::optional<RunRow> row = store_.run(a.id);
    const bool unfinished = status_of(*row) == RunStatus::running && row->attempts == a.attempt;
    if (unfinished && stopping_) {
      store_.finish(a.id, a.attempt, status_name(RunStatus::lost),
                    fmt::format("interrupted by {}: resumes on the next `ablate run`", signal_name(stop_signal_)));
    } else if (unfinished) {
      store_.finish(a.id, a.attempt, status_name(RunStatus::failed), describe_attempt(a, false));
    } else if (status_of(*row) == RunStatus::failed && row->attempts == a.attempt && a.ranks.size() > 1) {
      // Rank 0 finished the run as failed when a collective failed; what the other ranks died of
      // comes first.
      const std::string others = describe_attempt(a, true);
      if (!others.empty())
        store_.amend_failure(a.id, a.attempt, others + " | rank 0 of " + std::to_string(a.ranks.size()) +
                                                  " reported: " + row->exit_reason);
    }
    row = store_.run(a.id);
    const double secs = std::chrono::duration<double>(Clock::now() - a.started).count();
    if (is_final(status_of(*row))) ++sweep_.runs_finished;
    progress_.note(fmt::format("run {} {} after {}{}", a.id, row->status, format_duration(secs),
                               row->exit_reason.empty() ? "" : ": " + row->exit_reason));
  }

  void ingest_active() {
    for (ActiveRun& a : active_) {
      IngestResult res = ingest_journal(store_, a.id, a.dir);
      if (res.progress) {
        a.progress.step = res.progress->step;
        a.progress.total_steps = res.progress->total_steps;
        a.progress.loss = res.progress->loss;
        a.progress.images_per_s = res.progress->images_per_s;
      }
      if (res.bad_lines > 0)
        progress_.note(fmt::format("run {}: skipped {} malformed journal line(s) in {}", a.id,
                                   res.bad_lines, journal_path(a.dir).string()));
    }
  }

  // First stop signal: SIGTERM to every worker group; after kStopGrace, or on a second signal,
  // SIGKILL. Runs other runners hold are no longer waited for.
  void stop_workers(const StopSignals& signals) {
    if (!stopping_) {
      stopping_ = true;
      stop_signal_ = signals.last_signal();
      stop_deadline_ = Clock::now() + kStopGrace;
      stop_signals_seen_ = signals.count();
      progress_.note(fmt::format("{}: stopping {} worker(s); their runs resume on the next run",
                                 signal_name(stop_signal_), active_.size()));
      for (ActiveRun& a : active_) signal_run(a, SIGTERM, "interrupt (" + signal_name(stop_signal_) + ")");
    } else if (signals.count() > stop_signals_seen_ || Clock::now() > stop_deadline_) {
      stop_signals_seen_ = signals.count();
      for (ActiveRun& a : active_) signal_run(a, SIGKILL, "interrupt, grace period over");
    }
  }

  // `sig` to the run's process group while its leader lives, and to each rank still alive (a rank
  // that could not join the group is reached all the same; an unreaped child's pid is not reused).
  // `why` goes into the exit reason of the ranks it ends.
  void signal_run(ActiveRun& a, int sig, const std::string& why) const {
    if (!a.ranks.front().ended) ::kill(-a.group(), sig);
    for (RankProcess& p : a.ranks) {
      if (p.ended) continue;
      p.signalled_by = fmt::format("this runner (pid {}): {}", claim_.runner_pid, why);
      ::kill(p.pid, sig);
    }
  }

  void update_progress(Clock::time_point t0) {
    sweep_.active.clear();
    for (const ActiveRun& a : active_) sweep_.active.push_back(a.progress);
    progress_.update(sweep_, std::chrono::duration<double>(Clock::now() - t0).count());
  }

  int summarize(Clock::time_point t0, const EvalStageResult& evals) {
    std::vector<std::string> ids;
    for (const PlannedRun& r : exp_.runs) ids.push_back(r.id);
    std::map<std::string, int> c = store_.status_counts(ids);
    auto n = [&](RunStatus s) { return c[status_name(s)]; };
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    progress_.note(fmt::format("{}: {} done, {} diverged, {} failed, {} lost, {} queued, {} running "
                               "elsewhere ({})",
                               exp_.name, n(RunStatus::done), n(RunStatus::diverged), n(RunStatus::failed),
                               n(RunStatus::lost), n(RunStatus::queued), n(RunStatus::running),
                               format_duration(secs)));
    progress_.note(fmt::format("{}: evaluations {} done, {} failed, {} waiting for their run ({} run now)", exp_.name,
                               evals.done, evals.failed, evals.waiting, evals.run));
    if (stopping_) return 130;
    return n(RunStatus::done) + n(RunStatus::diverged) == static_cast<int>(ids.size()) && evals.failed == 0 ? 0 : 1;
  }

  const Experiment& exp_;
  const RunnerOptions& opt_;
  const Rerun rerun_;
  Store store_;
  ProgressLine progress_;
  fs::path runs_root_;
  ClaimInfo claim_;
  std::map<std::string, const PlannedRun*> planned_;
  std::map<std::string, RunStatus> seen_;  // each run's status when this call chose it
  std::deque<std::string> pending_;
  std::vector<std::string> elsewhere_;  // runs other local runners hold, waited for
  std::vector<ActiveRun> active_;
  std::vector<int> free_gpus_;
  double gpu_gib_ = 0;  // memory of the smallest GPU handed out; 0 = unknown (no memory check)
  SweepProgress sweep_;
  bool stopping_ = false;
  int stop_signal_ = 0;
  Clock::time_point stop_deadline_;
  int stop_signals_seen_ = 0;
};

}  // namespace

void check_runner_options(const RunnerOptions& o) {
  parse_rerun(o.rerun);
  if (o.jobs < 1)
    throw ConfigError("<command line>", "--jobs", fmt::format("{} is not a positive count", o.jobs));
  if (o.lease_s <= 0)
    throw ConfigError("<command line>", "lease", fmt::format("{} s is not a positive lease", o.lease_s));
  if (!(o.dist_timeout_s >= 0.001 && o.dist_timeout_s <= 1e7))
    throw ConfigError("<command line>", "--dist-timeout",
                      fmt::format("{} s is not a timeout in [0.001, 1e7] seconds", o.dist_timeout_s), "e.g. 300");
  for (size_t i = 0; i < o.gpus.size(); ++i) {
    if (o.gpus[i] < 0)
      throw ConfigError("<command line>", "--gpus", fmt::format("GPU id {} is negative", o.gpus[i]));
    for (size_t j = 0; j < i; ++j)
      if (o.gpus[j] == o.gpus[i])
        throw ConfigError("<command line>", "--gpus", fmt::format("GPU {} listed twice", o.gpus[i]));
  }
  if (o.ablate_exe.empty() || ::access(o.ablate_exe.c_str(), X_OK) != 0)
    throw ConfigError("<command line>", "worker executable",
                      fmt::format("'{}' is not an executable file", o.ablate_exe));
}

int run_experiment(const Experiment& experiment, const RunnerOptions& options) {
  check_runner_options(options);
  LocalRunner runner(experiment, options);
  return runner.run();
}

}  // namespace ablate
