// Local runner (see runner.h): one scheduling loop that launches workers with fork+exec, polls
// them every 200 ms (reap, ingest journals, heartbeat, progress line) and records each outcome.
#include "harness/runner.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <deque>
#include <map>
#include <optional>
#include <system_error>
#include <fstream>
#include <iterator>
#include <thread>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/env_info.h"
#include "harness/eval_runner.h"
#include "harness/journal.h"
#include "harness/memory_estimate.h"
#include "harness/model_sizes.h"
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

// SIGINT/SIGTERM arrivals. File-scope because a signal handler can reach nothing else; only the
// StopSignals guard below writes the handler, only the runner loop reads the count.
volatile std::sig_atomic_t g_stop_signals = 0;
volatile std::sig_atomic_t g_last_stop_signal = 0;
extern "C" void on_stop_signal(int sig) {
  g_stop_signals = g_stop_signals + 1;
  g_last_stop_signal = sig;
}

// Installs the stop handlers for the runner's lifetime and restores the previous ones.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signals = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

std::string signal_name(int sig) {
  switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGHUP: return "SIGHUP";
    case SIGPIPE: return "SIGPIPE";
    case SIGQUIT: return "SIGQUIT";
    default: return fmt::format("signal {}", sig);
  }
}

// Opens the runner's line in worker.log before each attempt.
constexpr const char* kLogBanner = "==== ablate runner: ";

// The rendezvous variables of data-parallel ranks: the runner sets them for a run's ranks and
// clears them for single-process runs, whatever its own environment holds.
constexpr const char* kRankVariables[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                                          "ABLATE_DIST_TIMEOUT_S"};

// Last non-empty line of a worker log (at most 300 characters), to say why a worker died.
std::string last_log_line(const fs::path& log) {
  std::ifstream in(log, std::ios::binary | std::ios::ate);
  if (!in) return "";
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - 4096);
  in.seekg(from);
  std::string tail(static_cast<size_t>(size - from), '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r' || tail.back() == ' '))
    tail.pop_back();
  size_t nl = tail.rfind('\n');
  std::string line = nl == std::string::npos ? tail : tail.substr(nl + 1);
  if (line.rfind(kLogBanner, 0) == 0) return "";  // the worker printed nothing
  if (line.size() > 300) line = line.substr(0, 300) + "...";
  return line;
}

// Why a worker without a finish line ended, from its wait status.
std::string describe_exit(int wstatus, bool signalled_by_runner, const fs::path& log) {
  std::string reason;
  if (WIFEXITED(wstatus)) {
    reason = fmt::format("exit code {}", WEXITSTATUS(wstatus));
    if (WEXITSTATUS(wstatus) == 0) reason += " without a finish line";
  } else if (WIFSIGNALED(wstatus)) {
    const int sig = WTERMSIG(wstatus);
    reason = fmt::format("killed by signal {} ({})", sig, signal_name(sig));
    if (WCOREDUMP(wstatus)) reason += ", core dumped";
    if (sig == SIGKILL && !signalled_by_runner)
      reason += "; not sent by the runner: the kernel OOM killer is the usual sender (see dmesg)";
  } else {
    reason = fmt::format("ended with wait status {}", wstatus);
  }
  std::string tail = last_log_line(log);
  if (!tail.empty()) reason += "; last log line: " + tail;
  return reason;
}

// Whether process `pid` is an ablate worker of run folder `run_dir` (its command line has
// "worker" and the folder): the only processes the runner may kill that it did not start.
bool is_worker_of(int64_t pid, const std::string& run_dir) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bool worker = false, dir = false;
  for (size_t b = 0; b < cmdline.size();) {
    size_t e = cmdline.find('\0', b);
    if (e == std::string::npos) e = cmdline.size();
    const std::string_view arg(cmdline.data() + b, e - b);
    worker |= arg == "worker";
    dir |= !run_dir.empty() && arg == run_dir;
    b = e + 1;
  }
  return worker && dir;
}

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
  bool signalled = false;  // the runner sent it a signal (interrupt, or the rank deadline below)
  std::string killed_why;  // set when the runner killed it for outliving the rank deadline
};

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
      : exp_(experiment), opt_(options), store_(options.db), progress_(options.progress_tty, stderr) {
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
    progress_.note(fmt::format("{}: {} planned, {} finished, {} to run ({})", exp_.name,
                               exp_.runs.size(), sweep_.runs_finished, pending_.size(),
                               opt_.gpus.empty() ? fmt::format("{} CPU job(s)", opt_.jobs)
                                                 : "GPUs " + join_ints(opt_.gpus, ",")));
    StopSignals signals;
    auto last_heartbeat = Clock::now();
    for (;;) {
      if (g_stop_signals > 0) stop_workers();
      if (!stopping_) launch_ready();
      if (active_.empty() && (stopping_ || pending_.empty())) break;
      std::this_thread::sleep_for(kPollInterval);
      reap();
      ingest_active();
      if (Clock::now() - last_heartbeat >= kHeartbeatInterval) {
        std::vector<std::pair<std::string, int>> beating;
        for (const ActiveRun& a : active_) beating.emplace_back(a.id, a.attempt);
        store_.heartbeat(beating);
        last_heartbeat = Clock::now();
      }
      update_progress(t0);
    }
    // Then the evaluations, each its own task reading a finished run's checkpoint.
    EvalStage stage{store_, progress_, claim_, runs_root_, [] { return g_stop_signals > 0; }};
    const EvalStageResult evals = stopping_ ? EvalStageResult{} : run_eval_stage(exp_, opt_, stage);
    stopping_ |= evals.interrupted;
    return summarize(t0, evals);
  }

 private:
  // Fills pending_ with the planned runs this call should execute: in experiment order on the CPU,
  // largest first on GPUs.
  void plan_queue() {
    for (const PlannedRun& r : exp_.runs) {
      std::optional<RunRow> row = store_.run(r.id);
      ABLATE_CHECK(row.has_value(), "planned run {} missing after upsert", r.id);
      const std::string& s = row->status;
      const bool final = s == "done" || s == "failed" || s == "diverged";
      bool run = s == "queued" || s == "lost";
      if (opt_.rerun == "failed") run |= s == "failed";
      if (opt_.rerun == "all") run |= final;
      if (s == "running")
        progress_.note(fmt::format("run {} is running under another runner ({} pid {}): skipped",
                                   r.id, row->host, row->runner_pid.value_or(0)));
      if (run) {
        pending_.push_back(r.id);
      } else if (final) {
        ++sweep_.runs_finished;
      }
    }
    sweep_.runs_total = static_cast<int>(exp_.runs.size());
    if (opt_.gpus.empty()) return;
    // What the GPUs can never hold is settled once, here: runs needing more GPUs than --gpus names
    // stay queued (skipped), runs whose memory does not fit are recorded as out of memory.
    std::erase_if(pending_, [&](const std::string& id) {
      const PlannedRun& r = *planned_.at(id);
      if (gpus_needed(r) > static_cast<int>(opt_.gpus.size())) {
        progress_.note(fmt::format("run {} needs {} GPUs but the runner has {} (--gpus): skipped", r.id,
                                   gpus_needed(r), opt_.gpus.size()));
        return true;
      }
      const double need = planned_peak_gib(r.config);
      if (gpu_gib_ > 0 && !fits_gpu(need, gpu_gib_)) {
        reject_out_of_memory(r, need);
        return true;
      }
      return false;
    });
    // Largest first, so runs needing many GPUs start while all are free and smaller runs fill the
    // gaps they leave; among equals the run with more FLOPs per image (the bigger model) first.
    std::stable_sort(pending_.begin(), pending_.end(), [&](const std::string& a, const std::string& b) {
      const PlannedRun& ra = *planned_.at(a);
      const PlannedRun& rb = *planned_.at(b);
      if (gpus_needed(ra) != gpus_needed(rb)) return gpus_needed(ra) > gpus_needed(rb);
      return train_flops_per_image(ra.config) > train_flops_per_image(rb.config);
    });
  }

  // Records a run that cannot fit the GPUs as failed (out of memory) without launching it.
  void reject_out_of_memory(const PlannedRun& r, double need_gib) {
    // pending_ holds only runs this call may run (plan_queue applied --rerun), so any final status
    // may be claimed here; a run another runner is running is not.
    const std::vector<std::string> from = {"queued", "lost", "failed", "done", "diverged"};
    ClaimInfo who = claim_;
    who.run_dir = (runs_root_ / r.id).string();
    const std::optional<int> attempt = store_.claim_run(r.id, from, who);
    if (!attempt) return;
    const std::string why = fmt::format(
        "out of memory (estimated before launch): needs {:.1f} GiB per GPU with {} rank(s), the GPUs have "
        "{:.1f} GiB; raise resources.gpus, lower train.batch, or set resources.mem_gb if the estimate is wrong",
        need_gib, gpus_needed(r), gpu_gib_);
    store_.finish(r.id, *attempt, "failed", why);
    ++sweep_.runs_finished;
    progress_.note(fmt::format("run {} failed: {}", r.id, why));
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

  // Claims and launches one run; false when it turned out not to need running.
  bool start(const PlannedRun& r, const std::vector<int>& gpus) {
    const fs::path dir = runs_root_ / r.id;
    std::optional<RunRow> row = store_.run(r.id);
    if (opt_.rerun == "all" && row->status != "running") {
      fs::remove_all(dir);  // first the folder, then the rows: a kill in between re-does both
      store_.requeue(r.id);
    }
    kill_stray_worker(*row);
    // A worker may have finished after its runner was killed: its journal decides, not a relaunch.
    IngestResult pre = ingest_journal(store_, r.id, dir);
    if (pre.finish_changed_status) {
      ++sweep_.runs_finished;
      progress_.note(fmt::format("run {} had already finished ({}) before its runner stopped",
                                 r.id, pre.finish->status));
      return false;
    }
    std::vector<std::string> from = {"queued", "lost"};
    if (opt_.rerun == "failed") from.push_back("failed");
    ClaimInfo who = claim_;
    who.gpu = join_ints(gpus, ",");
    who.run_dir = dir.string();
    std::optional<int> attempt = store_.claim_run(r.id, from, who);
    if (!attempt) {
      progress_.note(fmt::format("run {} was taken by another runner: skipped", r.id));
      return false;
    }
    fs::create_directories(dir);
    write_file_atomically(dir / "config.json", canonical_dump(config_to_json(r.config)) + "\n");
    ActiveRun a{r.id, *attempt, {}, gpus, dir, Clock::now(), {r.id}, {}, std::nullopt, ""};
    const int world = std::max(1, r.config.resources.gpus);
    try {
      const int port = world > 1 ? free_loopback_port() : 0;
      for (int rank = 0; rank < world; ++rank) {
        RankProcess p;
        p.rank = rank;
        p.log = dir / (rank == 0 ? std::string("worker.log") : fmt::format("worker.rank{}.log", rank));
        p.pid = spawn_worker(dir, gpus, *attempt, rank, world, port, rank == 0 ? 0 : a.group(), p.log);
        a.ranks.push_back(std::move(p));
      }
    } catch (const std::system_error& e) {
      for (RankProcess& p : a.ranks) {  // ranks already started would wait for the rest in vain
        ::kill(p.pid, SIGKILL);
        ::waitpid(p.pid, nullptr, 0);
      }
      store_.finish(r.id, *attempt, "failed", fmt::format("could not start the worker: {}", e.what()));
      ++sweep_.runs_finished;
      progress_.note(fmt::format("run {} failed to start: {}", r.id, e.what()));
      return false;
    }
    store_.set_worker_pid(r.id, *attempt, a.group());
    progress_.note(fmt::format("run {} started (attempt {}{}{})", r.id, *attempt,
                               gpus.empty() ? "" : ", GPU " + who.gpu,
                               world > 1 ? fmt::format(", {} ranks", world) : ""));
    active_.push_back(std::move(a));
    return true;
  }

  // fork + exec of `<ablate_exe> worker --run-dir <dir>` as rank `rank` of `world` (rendezvous on
  // 127.0.0.1:`port`), output appended to `log`. Rank 0 leads a new process group; the other ranks
  // join `group`, so one signal to the group reaches the whole run.
  pid_t spawn_worker(const fs::path& dir, const std::vector<int>& gpus, int attempt, int rank, int world, int port,
                     pid_t group, const fs::path& log) {
    // Everything the child needs is built before fork: between fork and exec only
    // async-signal-safe calls are allowed.
    std::vector<std::string> args = {opt_.ablate_exe, "worker", "--run-dir", dir.string()};
    std::vector<std::string> envs;
    bool gloo_interface_set = false;
    for (char** e = environ; *e; ++e) {
      const std::string_view kv(*e);
      const std::string_view name = kv.substr(0, kv.find('='));
      if (!gpus.empty() && name == "CUDA_VISIBLE_DEVICES") continue;
      if (std::find(std::begin(kRankVariables), std::end(kRankVariables), name) != std::end(kRankVariables)) continue;
      gloo_interface_set |= name == "GLOO_SOCKET_IFNAME";
      envs.emplace_back(kv);
    }
    if (!gpus.empty()) envs.push_back("CUDA_VISIBLE_DEVICES=" + join_ints(gpus, ","));
    if (world > 1) {
      // LOCAL_RANK = RANK: all ranks run here, rank i on the i-th of the run's GPUs.
      envs.push_back(fmt::format("RANK={}", rank));
      envs.push_back(fmt::format("WORLD_SIZE={}", world));
      envs.push_back(fmt::format("LOCAL_RANK={}", rank));
      envs.push_back("MASTER_ADDR=127.0.0.1");
      envs.push_back(fmt::format("MASTER_PORT={}", port));
      envs.push_back(fmt::format("ABLATE_DIST_TIMEOUT_S={}", opt_.dist_timeout_s));
      // Gloo would otherwise pick the interface of the host name's address; the ranks are local.
      if (!gloo_interface_set) envs.emplace_back("GLOO_SOCKET_IFNAME=lo");
    }
    std::vector<char*> argv, envp;
    for (std::string& s : args) argv.push_back(s.data());
    for (std::string& s : envs) envp.push_back(s.data());
    argv.push_back(nullptr);
    envp.push_back(nullptr);

    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::system_error(errno, std::generic_category(), "opening " + log.string());
    const std::string banner = fmt::format("{}attempt {} on {}{}{} ====\n", kLogBanner, attempt,
                                           claim_.host,
                                           gpus.empty() ? "" : ", GPUs " + join_ints(gpus, ","),
                                           world > 1 ? fmt::format(", rank {} of {}", rank, world) : "");
    if (::write(log_fd, banner.data(), banner.size()) < 0) {
      // The banner is a courtesy; the worker's own output still goes to the log.
    }
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Die with the runner, however it dies (kill -9 included), so no orphan keeps training.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(137);  // the runner died before prctl took effect
      ::setpgid(0, group);  // own group: the runner, not the terminal, decides how workers stop
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
      ::execve(argv[0], argv.data(), envp.data());
      const char msg[] = "ablate runner: exec of the worker executable failed\n";
      ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
      (void)ignored;
      ::_exit(127);
    }
    const int fork_errno = errno;
    if (pid > 0) ::setpgid(pid, group == 0 ? pid : group);  // also here: whichever runs first
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    if (pid < 0) throw std::system_error(fork_errno, std::generic_category(), "fork");
    return pid;
  }

  // Kills a worker of this run left over from a dead runner on this host (PDEATHSIG makes this
  // rare), so two workers never write one run folder.
  void kill_stray_worker(const RunRow& row) {
    if (!row.worker_pid || *row.worker_pid <= 0) return;
    const std::string& host = row.worker_host.empty() ? row.host : row.worker_host;
    if (host != claim_.host || !is_worker_of(*row.worker_pid, row.run_dir)) return;
    const pid_t pid = static_cast<pid_t>(*row.worker_pid);
    progress_.note(fmt::format("run {}: killing leftover worker pid {}", row.id, pid));
    if (::getpgid(pid) == pid) ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    for (auto until = Clock::now() + std::chrono::seconds(5);
         process_alive(pid, std::nullopt) && Clock::now() < until;)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
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
        const bool clean = WIFEXITED(p.wstatus) && WEXITSTATUS(p.wstatus) == 0;
        if (a.ranks.size() > 1 && !a.rank_deadline && (p.rank == 0 || !clean)) {
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
        signal_run(a, SIGKILL);
      }
      ++it;
    }
  }

  // Why an attempt without a finish line ended. One process: its exit. Several ranks: each rank
  // that did not exit cleanly, in the order they ended (the first is usually the cause, the
  // others' errors its consequence), or rank 0's exit when all exited 0.
  std::string describe_attempt(const ActiveRun& a, bool skip_rank0) const {
    auto describe = [&](const RankProcess& p) {
      return p.killed_why.empty() ? describe_exit(p.wstatus, p.signalled, p.log) : p.killed_why;
    };
    if (a.ranks.size() == 1) return describe(a.ranks.front());
    std::string out;
    for (int r : a.end_order) {
      const RankProcess& p = a.ranks[static_cast<size_t>(r)];
      if ((WIFEXITED(p.wstatus) && WEXITSTATUS(p.wstatus) == 0) || (skip_rank0 && r == 0)) continue;
      out += fmt::format("{}rank {} of {}: {}", out.empty() ? "" : " | ", r, a.ranks.size(), describe(p));
    }
    if (out.empty() && !skip_rank0) out = fmt::format("rank 0 of {}: {}", a.ranks.size(), describe(a.ranks.front()));
    return out;
  }

  void on_exit(const ActiveRun& a) {
    ingest_journal(store_, a.id, a.dir);  // the last lines, finish included
    std::optional<RunRow> row = store_.run(a.id);
    const bool unfinished = row->status == "running" && row->attempts == a.attempt;
    if (unfinished && stopping_) {
      store_.finish(a.id, a.attempt, "lost",
                    fmt::format("interrupted by {}: resumes on the next `ablate run`",
                                signal_name(g_last_stop_signal)));
    } else if (unfinished) {
      store_.finish(a.id, a.attempt, "failed", describe_attempt(a, false));
    } else if (row->status == "failed" && row->attempts == a.attempt && a.ranks.size() > 1) {
      // Rank 0 finished the run as failed when a collective failed; what the other ranks died of
      // comes first.
      const std::string others = describe_attempt(a, true);
      if (!others.empty())
        store_.amend_failure(a.id, a.attempt, others + " | rank 0 of " + std::to_string(a.ranks.size()) +
                                                  " reported: " + row->exit_reason);
    }
    row = store_.run(a.id);
    const double secs = std::chrono::duration<double>(Clock::now() - a.started).count();
    if (row->status == "done" || row->status == "failed" || row->status == "diverged")
      ++sweep_.runs_finished;
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
  // SIGKILL.
  void stop_workers() {
    if (!stopping_) {
      stopping_ = true;
      stop_deadline_ = Clock::now() + kStopGrace;
      stop_signals_seen_ = g_stop_signals;
      progress_.note(fmt::format("{}: stopping {} worker(s); their runs resume on the next run",
                                 signal_name(g_last_stop_signal), active_.size()));
      for (ActiveRun& a : active_) signal_run(a, SIGTERM);
    } else if (g_stop_signals > stop_signals_seen_ || Clock::now() > stop_deadline_) {
      stop_signals_seen_ = g_stop_signals;
      for (ActiveRun& a : active_) signal_run(a, SIGKILL);
    }
  }

  // `sig` to the run's process group while its leader lives, and to each rank still alive (a rank
  // that could not join the group is reached all the same; an unreaped child's pid is not reused).
  static void signal_run(ActiveRun& a, int sig) {
    if (!a.ranks.front().ended) ::kill(-a.group(), sig);
    for (RankProcess& p : a.ranks) {
      if (p.ended) continue;
      p.signalled = true;
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
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    progress_.note(fmt::format("{}: {} done, {} diverged, {} failed, {} lost, {} queued, {} running "
                               "elsewhere ({})",
                               exp_.name, c["done"], c["diverged"], c["failed"], c["lost"],
                               c["queued"], c["running"], format_duration(secs)));
    progress_.note(fmt::format("{}: evaluations {} done, {} failed, {} waiting for their run ({} run now)", exp_.name,
                               evals.done, evals.failed, evals.waiting, evals.run));
    if (stopping_) return 130;
    return c["done"] + c["diverged"] == static_cast<int>(ids.size()) && evals.failed == 0 ? 0 : 1;
  }

  const Experiment& exp_;
  const RunnerOptions& opt_;
  Store store_;
  ProgressLine progress_;
  fs::path runs_root_;
  ClaimInfo claim_;
  std::map<std::string, const PlannedRun*> planned_;
  std::deque<std::string> pending_;
  std::vector<ActiveRun> active_;
  std::vector<int> free_gpus_;
  double gpu_gib_ = 0;  // memory of the smallest GPU handed out; 0 = unknown (no memory check)
  SweepProgress sweep_;
  bool stopping_ = false;
  Clock::time_point stop_deadline_;
  int stop_signals_seen_ = 0;
};

}  // namespace

void check_runner_options(const RunnerOptions& o) {
  if (o.rerun != "" && o.rerun != "failed" && o.rerun != "all")
    throw ConfigError("<command line>", "--rerun", fmt::format("unknown value '{}'", o.rerun),
                      "failed or all");
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
