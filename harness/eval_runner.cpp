// The evaluation stage (see eval_runner.h): register, claim, launch, poll, ingest, finish.
#include "harness/eval_runner.h"

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <deque>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/eval_task.h"
#include "harness/journal.h"
#include "harness/lifecycle.h"
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
constexpr auto kStopGrace = std::chrono::seconds(10);  // SIGTERM -> SIGKILL when stopping

// A task due to run: its record and where its weights come from, a run of the experiment or an
// external checkpoint row (exactly one of the two).
struct DueEval {
  EvalTask task;
  const PlannedRun* run = nullptr;
  const ExternalWeights* external = nullptr;
  RunStatus seen = RunStatus::queued;  // its status when chosen

  // "run <id>" or "checkpoint <name>", for progress notes.
  std::string source() const { return run ? "run " + run->id : "checkpoint " + external->name; }
};

struct ActiveEval {
  DueEval due;
  int attempt = 0;
  pid_t pid = -1;
  fs::path dir;
  std::string gpu;  // "" on the CPU
  Clock::time_point started;
};

constexpr const char* kLogBanner = "==== ablate runner: ";

// `exe worker --eval dir` on `gpu` ("" = the CPU, shared by `cpu_jobs` workers), logged to
// dir/worker.log.
pid_t spawn_eval_worker(const std::string& exe, const fs::path& dir, const std::string& gpu, int cpu_jobs,
                        int attempt, const std::string& host) {
  SpawnSpec spec;
  spec.argv = {exe, "worker", "--eval", dir.string()};
  for (char** e = environ; *e; ++e) {
    const std::string_view kv(*e);
    if (!gpu.empty() && kv.substr(0, kv.find('=')) == "CUDA_VISIBLE_DEVICES") continue;
    spec.env.emplace_back(kv);
  }
  if (!gpu.empty())
    spec.env.push_back("CUDA_VISIBLE_DEVICES=" + gpu);
  else
    for (std::string& v : cpu_thread_env(cpu_jobs)) spec.env.push_back(std::move(v));
  spec.log = dir / "worker.log";
  spec.banner = fmt::format("{}evaluation attempt {} on {}{} ====\n", kLogBanner, attempt, host, gpu.empty() ? "" : ", GPU " + gpu);
  return spawn_logged(spec);
}

// An evaluation's status (the run statuses; diverged never occurs).
RunStatus status_of_eval(const EvalTaskRow& row) {
  const std::optional<RunStatus> s = parse_run_status(row.status);
  ABLATE_CHECK(s.has_value(), "evaluation {} has the unknown status '{}'", row.id, row.status);
  return *s;
}

class EvalLoop {
 public:
  EvalLoop(const Experiment& exp, const RunnerOptions& opt, EvalStage& stage)
      : exp_(exp), opt_(opt), rerun_(parse_rerun(opt.rerun)), st_(stage) {
    free_gpus_ = opt_.gpus;
  }

  EvalStageResult run() {
    plan();
    if (!pending_.empty())
      st_.progress.note(fmt::format("{}: {} evaluation(s) to run, {} waiting for their run", exp_.name,
                                    pending_.size(), res_.waiting));
    Clock::time_point stop_deadline{};
    for (;;) {
      if (!res_.interrupted && st_.stop_requested && st_.stop_requested()) {
        res_.interrupted = true;
        stop_deadline = Clock::now() + kStopGrace;
        for (const ActiveEval& a : active_) ::kill(-a.pid, SIGTERM);
      }
      if (res_.interrupted && Clock::now() > stop_deadline)
        for (const ActiveEval& a : active_) ::kill(-a.pid, SIGKILL);
      if (!res_.interrupted) launch_ready();
      if (active_.empty() && (res_.interrupted || pending_.empty())) break;
      std::this_thread::sleep_for(kPollInterval);
      reap();
    }
    count_final();
    return res_;
  }

 private:
  // Registers the experiment's tasks and queues those this call should run.
  void plan() {
    std::vector<DueEval> all;
    for (const PlannedRun& r : exp_.runs)
      for (EvalTask& t : eval_tasks_of(r)) all.push_back({std::move(t), &r});
    for (const ExternalWeights& w : exp_.weights)
      for (EvalTask& t : eval_tasks_of(w)) all.push_back({std::move(t), nullptr, &w});
    st_.store.upsert_eval_tasks([&] {
      std::vector<EvalTask> tasks;
      for (const DueEval& d : all) tasks.push_back(d.task);
      return tasks;
    }());
    for (const std::string& id : st_.store.mark_lost_evals())
      st_.progress.note(fmt::format("evaluation {} lost: its runner is gone", id));
    res_.planned = static_cast<int>(all.size());
    for (DueEval& d : all) {
      const RunStatus seen = status_of_eval(*st_.store.eval_task(d.task.id));
      if (!wants_execution(seen, rerun_)) continue;
      if (d.run && status_of(*st_.store.run(d.run->id)) != RunStatus::done) {
        ++res_.waiting;
        continue;
      }
      d.seen = seen;
      pending_.push_back(std::move(d));
    }
  }

  void launch_ready() {
    const size_t slots = opt_.gpus.empty() ? static_cast<size_t>(std::max(1, opt_.jobs)) : opt_.gpus.size();
    while (!pending_.empty() && active_.size() < slots) {
      DueEval d = std::move(pending_.front());
      pending_.pop_front();
      std::string gpu;
      if (!opt_.gpus.empty()) {
        gpu = std::to_string(free_gpus_.front());
        free_gpus_.erase(free_gpus_.begin());
      }
      if (!start(std::move(d), gpu) && !gpu.empty()) free_gpus_.push_back(std::stoi(gpu));
    }
  }

  bool start(DueEval d, const std::string& gpu) {
    const fs::path dir = st_.runs_root / "evals" / d.task.id;
    ClaimInfo who = st_.claim;
    who.gpu = gpu;
    who.run_dir = dir.string();
    // From queued or lost, or from the final status --rerun asked for when it was chosen: a result
    // another runner produced meanwhile is kept.
    const std::optional<int> attempt =
        st_.store.claim_eval(d.task.id, {status_name(RunStatus::queued), status_name(RunStatus::lost), status_name(d.seen)}, who);
    if (!attempt) {
      st_.progress.note(fmt::format("evaluation {} was taken by another runner: skipped", d.task.id));
      return false;
    }
    EvalJob job{d.task.id, d.task.weights, d.run ? d.run->config : d.external->config,
                d.run ? nlohmann::json() : weights_options(*d.external)};
    if (d.run) {
      const std::string run_dir = st_.store.run(d.run->id)->run_dir;
      job.weights.path = run_dir.empty() ? (st_.runs_root / d.run->id).string() : run_dir;
    }
    job.config.eval = d.task.config;
    ActiveEval a{std::move(d), *attempt, -1, dir, gpu, Clock::now()};
    try {
      fs::remove_all(dir);  // evaluations do not resume: each attempt starts afresh
      fs::create_directories(dir);
      write_file_atomically(dir / "eval.json", canonical_dump(eval_job_json(job)) + "\n");
      a.pid = spawn_eval_worker(opt_.ablate_exe, dir, gpu, opt_.jobs, a.attempt, st_.claim.host);
    } catch (const std::exception& e) {
      st_.store.finish_eval(a.due.task.id, a.attempt, "failed", fmt::format("could not start the worker: {}", e.what()));
      return false;
    }
    st_.store.set_eval_worker_pid(a.due.task.id, a.attempt, a.pid);
    ++res_.run;
    st_.progress.note(fmt::format("evaluation {} ({} {} at {} of {}) started{}", a.due.task.id, name_of(a.due.task.protocol),
                                  a.due.task.dataset, a.due.task.point(), a.due.source(), gpu.empty() ? "" : " on GPU " + gpu));
    active_.push_back(std::move(a));
    return true;
  }

  void reap() {
    for (auto it = active_.begin(); it != active_.end();) {
      int wstatus = 0;
      const pid_t got = ::waitpid(it->pid, &wstatus, WNOHANG);
      if (got == 0 || (got < 0 && errno == EINTR)) {
        ingest_journal(st_.store, it->due.task.id, it->dir, JournalOf::eval);
        ++it;
        continue;
      }
      ABLATE_CHECK(got == it->pid, "waitpid({}) failed: errno {}", it->pid, errno);
      on_exit(*it, wstatus);
      if (!it->gpu.empty()) free_gpus_.push_back(std::stoi(it->gpu));
      it = active_.erase(it);
    }
  }

  void on_exit(const ActiveEval& a, int wstatus) {
    const std::string& id = a.due.task.id;
    ingest_journal(st_.store, id, a.dir, JournalOf::eval);
    std::optional<EvalTaskRow> row = st_.store.eval_task(id);
    if (status_of_eval(*row) == RunStatus::running && row->attempts == a.attempt) {
      const std::string tail = last_log_line(a.dir / "worker.log", kLogBanner);
      st_.store.finish_eval(id, a.attempt, status_name(res_.interrupted ? RunStatus::lost : RunStatus::failed),
                            res_.interrupted ? "interrupted: runs again on the next `ablate run`"
                                             : wait_status_text(wstatus) + " without a finish line" +
                                                   (tail.empty() ? "" : "; last log line: " + tail));
    }
    row = st_.store.eval_task(id);
    const double secs = std::chrono::duration<double>(Clock::now() - a.started).count();
    st_.progress.note(fmt::format("evaluation {} {} after {}{}", id, row->status, format_duration(secs),
                                  row->exit_reason.empty() ? "" : ": " + row->exit_reason));
  }

  void count_final() {
    std::vector<EvalTask> tasks;
    for (const PlannedRun& r : exp_.runs)
      for (EvalTask& t : eval_tasks_of(r)) tasks.push_back(std::move(t));
    for (const ExternalWeights& w : exp_.weights)
      for (EvalTask& t : eval_tasks_of(w)) tasks.push_back(std::move(t));
    for (const EvalTask& t : tasks) {
      const RunStatus s = status_of_eval(*st_.store.eval_task(t.id));
      res_.done += s == RunStatus::done;
      res_.failed += s == RunStatus::failed;
    }
  }

  const Experiment& exp_;
  const RunnerOptions& opt_;
  const Rerun rerun_;
  EvalStage& st_;
  std::deque<DueEval> pending_;
  std::vector<ActiveEval> active_;
  std::vector<int> free_gpus_;
  EvalStageResult res_;
};

}  // namespace

EvalStageResult run_eval_stage(const Experiment& experiment, const RunnerOptions& options, EvalStage& stage) {
  return EvalLoop(experiment, options, stage).run();
}

}  // namespace ablate
