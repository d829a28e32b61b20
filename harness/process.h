// Process plumbing shared by the local runner (workers it forks) and the Slurm backend (the
// sbatch/squeue/sacct/scancel it runs): stop-signal handling, spawning a logged child that dies
// with its parent, running a command with its output captured, the text of a wait status, and what
// /proc says about a process (alive? same process as before? whose worker?). No policy lives here:
// which process to start, signal or kill is the caller's decision.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ablate {

// "SIGKILL", "SIGTERM", ... or "signal N".
std::string signal_name(int sig);

// Counts SIGINT/SIGTERM arrivals while alive (installs the handlers, restores the previous ones on
// destruction). One at a time per process: a signal handler can only reach file-scope state.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  int count() const;        // stop signals received since construction
  int last_signal() const;  // the latest of them (SIGINT or SIGTERM), 0 before the first
};

// A child to start with spawn_logged().
struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is the executable's path
  std::vector<std::string> env;   // the whole environment, "NAME=value" each
  std::filesystem::path log;      // stdout and stderr are appended here (created when missing)
  std::string banner;             // written to the log before the child starts ("" = none)
  pid_t group = 0;                // process group to join; 0 = lead a new one
};

// The thread-pool variables of a CPU worker when `jobs` workers share this machine at once:
// OMP_NUM_THREADS and MKL_NUM_THREADS = max(1, cores / jobs), the cores those this process may run
// on (sched_getaffinity). LibTorch sizes its intra-op pool from them; left alone, every worker
// would start one thread per core, and two workers on two cores (`--jobs 2`) would run four
// spinning OpenMP threads on two cores: 54-145 img/s per quickstart worker against 348 with one
// thread each (2-core VM, 2026-12-02). A variable the environment already sets is left out: the
// user's choice stands.
std::vector<std::string> cpu_thread_env(int jobs);

// fork + exec of `spec`: stdin from /dev/null, output appended to spec.log, all signals
// unblocked, its own process group (or spec.group), and PDEATHSIG=SIGKILL so it dies with this
// process however this process dies (kill -9 included). Throws std::system_error when the log
// cannot be opened or fork fails; a failed exec is the child's exit code 127.
pid_t spawn_logged(const SpawnSpec& spec);

struct CommandResult {
  int rc = -1;  // exit code, or 128 + signal
  std::string out, err;
};

// Runs argv[0] (a path) with the given arguments and this process's environment, stdin from
// /dev/null, capturing stdout and stderr; waits for it. Throws std::system_error when it cannot be
// started.
CommandResult run_command(const std::vector<std::string>& argv);

// "exit code N", "killed by signal 9 (SIGKILL)[, core dumped]", or "ended with wait status N".
std::string wait_status_text(int wstatus);

// Whether a wait status is a clean exit (code 0).
bool exited_cleanly(int wstatus);

// Last non-empty line of a log file (at most 300 characters), "" when there is none or it starts
// with `ignore_prefix` (a line the parent wrote itself, e.g. its banner).
std::string last_log_line(const std::filesystem::path& log, std::string_view ignore_prefix = {});
// The last `max_bytes` bytes of `log` ("" when it cannot be read): where exit reasons and kill
// notes are looked for, without reading a long log whole.
std::string log_tail(const std::filesystem::path& log, std::size_t max_bytes = 4096);

// The arguments of process `pid` (/proc/<pid>/cmdline); empty when there is no such process.
std::vector<std::string> process_cmdline(int64_t pid);

// Start time of process `pid` in clock ticks since boot (/proc/<pid>/stat field 22), or nullopt
// when there is no such process.
std::optional<int64_t> process_start_ticks(int64_t pid);

// Whether process `pid` exists and, when start_ticks is given, is the same process that had that
// start time (not a later one that reused the pid). A zombie (exited, unreaped) is not alive.
bool process_alive(int64_t pid, std::optional<int64_t> start_ticks);

// SIGKILL to process `pid` and its process group (when it leads one), then waits up to
// `wait_s` seconds for it to disappear. Returns whether it is gone.
bool kill_and_wait(pid_t pid, double wait_s);

}  // namespace ablate
