// Process plumbing (see process.h): POSIX signals, fork/exec, posix_spawn with captured pipes,
// wait statuses and /proc.
#include "harness/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>
#include <thread>

#include <fmt/format.h>

extern char** environ;

namespace ablate {
namespace {

// SIGINT/SIGTERM arrivals. File-scope because a signal handler can reach nothing else; only
// StopSignals writes the handler.
volatile std::sig_atomic_t g_stop_signals = 0;
volatile std::sig_atomic_t g_last_stop_signal = 0;
extern "C" void on_stop_signal(int sig) {
  g_stop_signals = g_stop_signals + 1;
  g_last_stop_signal = sig;
}
struct sigaction g_old_int {}, g_old_term {};

struct ProcStat {
  char state = '?';
  int64_t start_ticks = 0;
};

std::optional<ProcStat> read_proc_stat(int64_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  // Field 2 (comm) is parenthesised and may contain spaces: count fields after the last ')'.
  size_t p = stat.rfind(')');
  if (p == std::string::npos || p + 2 >= stat.size()) return std::nullopt;
  std::istringstream rest(stat.substr(p + 2));
  ProcStat ps;
  std::string field;
  for (int i = 3; i <= 22 && (rest >> field); ++i) {
    if (i == 3) ps.state = field[0];
    if (i == 22) {
      ps.start_ticks = std::stoll(field);
      return ps;
    }
  }
  return std::nullopt;
}

// Reads both pipes of a child until both close: a child filling one while we block on the other
// would hang.
void drain(int out_fd, int err_fd, CommandResult& r) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  for (int open_fds = 2; open_fds > 0;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        sinks[i]->append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (pollfd& f : fds)
    if (f.fd >= 0) ::close(f.fd);
}

}  // namespace

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
    case SIGUSR1: return "SIGUSR1";
    default: return fmt::format("signal {}", sig);
  }
}

// ---- stop signals ----

StopSignals::StopSignals() {
  g_stop_signals = 0;
  g_last_stop_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &g_old_int);
  ::sigaction(SIGTERM, &sa, &g_old_term);
}

StopSignals::~StopSignals() {
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
}

int StopSignals::count() const { return g_stop_signals; }
int StopSignals::last_signal() const { return g_last_stop_signal; }

// ---- starting processes ----

std::vector<std::string> cpu_thread_env(int jobs) {
  cpu_set_t set;
  CPU_ZERO(&set);
  const int cores = ::sched_getaffinity(0, sizeof(set), &set) == 0
                        ? CPU_COUNT(&set)
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = std::max(1, cores / std::max(1, jobs));
  std::vector<std::string> env;
  for (const char* name : {"OMP_NUM_THREADS", "MKL_NUM_THREADS"})
    if (!std::getenv(name)) env.push_back(fmt::format("{}={}", name, threads));
  return env;
}

pid_t spawn_logged(const SpawnSpec& spec) {
  // Everything the child needs is built before fork: between fork and exec only
  // async-signal-safe calls are allowed.
  std::vector<std::string> args = spec.argv, envs = spec.env;
  std::vector<char*> argv, envp;
  for (std::string& s : args) argv.push_back(s.data());
  for (std::string& s : envs) envp.push_back(s.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);

  int log_fd = ::open(spec.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::system_error(errno, std::generic_category(), "opening " + spec.log.string());
  if (!spec.banner.empty() && ::write(log_fd, spec.banner.data(), spec.banner.size()) < 0) {
    // The banner is a courtesy; the child's own output still goes to the log.
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t group = spec.group;
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Die with the parent, however it dies (kill -9 included), so no orphan keeps working.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(137);  // the parent died before prctl took effect
    ::setpgid(0, group);  // own group: the parent, not the terminal, decides how children stop
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    const char msg[] = "ablate: exec of the child executable failed\n";
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

CommandResult run_command(const std::vector<std::string>& argv) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw std::system_error(e, std::generic_category(), "pipe");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int spawn_rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (spawn_rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    throw std::system_error(spawn_rc, std::generic_category(), "starting " + argv[0]);
  }
  CommandResult r;
  drain(out_pipe[0], err_pipe[0], r);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  r.rc = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return r;
}

// ---- how processes ended ----

std::string wait_status_text(int wstatus) {
  if (WIFEXITED(wstatus)) return fmt::format("exit code {}", WEXITSTATUS(wstatus));
  if (WIFSIGNALED(wstatus)) {
    const int sig = WTERMSIG(wstatus);
    return fmt::format("killed by signal {} ({}){}", sig, signal_name(sig), WCOREDUMP(wstatus) ? ", core dumped" : "");
  }
  return fmt::format("ended with wait status {}", wstatus);
}

bool exited_cleanly(int wstatus) { return WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0; }

std::string log_tail(const std::filesystem::path& log, std::size_t max_bytes) {
  std::ifstream in(log, std::ios::binary | std::ios::ate);
  if (!in) return "";
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - static_cast<std::streamoff>(max_bytes));
  in.seekg(from);
  std::string tail(static_cast<size_t>(size - from), '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  return tail;
}

std::string last_log_line(const std::filesystem::path& log, std::string_view ignore_prefix) {
  std::string tail = log_tail(log);
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r' || tail.back() == ' '))
    tail.pop_back();
  size_t nl = tail.rfind('\n');
  std::string line = nl == std::string::npos ? tail : tail.substr(nl + 1);
  if (!ignore_prefix.empty() && line.rfind(ignore_prefix, 0) == 0) return "";
  if (line.size() > 300) line = line.substr(0, 300) + "...";
  return line;
}

// ---- /proc ----

std::vector<std::string> process_cmdline(int64_t pid) {
  std::vector<std::string> args;
  if (pid <= 0) return args;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t b = 0; b < cmdline.size();) {
    size_t e = cmdline.find('\0', b);
    if (e == std::string::npos) e = cmdline.size();
    args.push_back(cmdline.substr(b, e - b));
    b = e + 1;
  }
  return args;
}

std::optional<int64_t> process_start_ticks(int64_t pid) {
  auto ps = read_proc_stat(pid);
  return ps ? std::optional<int64_t>(ps->start_ticks) : std::nullopt;
}

bool process_alive(int64_t pid, std::optional<int64_t> start_ticks) {
  auto ps = read_proc_stat(pid);
  if (!ps || ps->state == 'Z' || ps->state == 'X') return false;
  return !start_ticks || ps->start_ticks == *start_ticks;
}

bool kill_and_wait(pid_t pid, double wait_s) {
  if (pid <= 0) return true;
  if (::getpgid(pid) == pid) ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
  while (process_alive(pid, std::nullopt)) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace ablate
