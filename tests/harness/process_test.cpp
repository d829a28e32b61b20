// Process plumbing: identity (live, pid reused, exited, zombie), the command line of a process,
// wait-status text against real children, a logged child that dies with its parent, commands
// with captured output, and the thread pools of CPU workers that share the cores.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness/process.h"
#include "tests/harness/run_fixtures.h"
#include "tests/support/catch.h"

using namespace ablate;
using ablate::test::TempDir;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int wait_for(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

}  // namespace

TEST_CASE("process: identity tells live, reused, exited and zombie pids apart",
          "[process]") {
  const std::optional<int64_t> mine = process_start_ticks(::getpid());
  REQUIRE(mine.has_value());
  CHECK(process_alive(::getpid(), mine));
  CHECK(process_alive(::getpid(), std::nullopt));
  CHECK_FALSE(process_alive(::getpid(), *mine + 1));  // same pid, another process's start time

  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  // Until reaped the child is a zombie: dead for our purposes.
  for (int i = 0; i < 200 && process_start_ticks(child) && process_alive(child, std::nullopt); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(process_start_ticks(child).has_value());
  CHECK_FALSE(process_alive(child, std::nullopt));
  ::waitpid(child, nullptr, 0);
  CHECK_FALSE(process_start_ticks(child).has_value());
  CHECK_FALSE(process_alive(child, std::nullopt));
  CHECK_FALSE(process_alive(-5, std::nullopt));
}

TEST_CASE("process: wait-status text of exits and signals", "[process]") {
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(3);
  CHECK(wait_status_text(wait_for(child)) == "exit code 3");
  child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  ::kill(child, SIGKILL);
  const int killed = wait_for(child);
  CHECK(wait_status_text(killed) == "killed by signal 9 (SIGKILL)");
  CHECK_FALSE(exited_cleanly(killed));
  CHECK(signal_name(SIGTERM) == "SIGTERM");
  CHECK(signal_name(64) == "signal 64");
}

TEST_CASE("process: a logged child gets its arguments, environment, log and own group", "[process]") {
  TempDir tmp("process");
  SpawnSpec spec;
  spec.argv = {"/bin/sh", "-c", "echo \"$GREETING $0\"; echo oops >&2; exit 4", "arg0"};
  spec.env = {"GREETING=hello"};
  spec.log = tmp / "child.log";
  spec.banner = "==== banner ====\n";
  const pid_t pid = spawn_logged(spec);
  CHECK(::getpgid(pid) == pid);  // leads its own group (checked before it can exit and be reaped)
  CHECK(wait_status_text(wait_for(pid)) == "exit code 4");
  CHECK(slurp(spec.log) == "==== banner ====\nhello arg0\noops\n");
  CHECK(last_log_line(spec.log) == "oops");
  CHECK(last_log_line(spec.log, "oo").empty());  // a line the parent wrote itself
  spec.argv = {(tmp / "missing").string()};
  CHECK(wait_status_text(wait_for(spawn_logged(spec))) == "exit code 127");
}

TEST_CASE("process: command line of a process, commands with captured output", "[process]") {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::vector<std::string> args;
  for (int i = 0; i < 200 && (args = process_cmdline(child)) != std::vector<std::string>{"sleep", "30"}; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(args == std::vector<std::string>{"sleep", "30"});
  CHECK(kill_and_wait(child, 5));
  wait_for(child);
  CHECK(process_cmdline(child).empty());

  const CommandResult r = run_command({"/bin/sh", "-c", "echo out; echo err >&2; exit 5"});
  CHECK(r.rc == 5);
  CHECK(r.out == "out\n");
  CHECK(r.err == "err\n");
  CHECK_THROWS_AS(run_command({"/nonexistent/tool"}), std::system_error);
}

TEST_CASE("process: CPU workers share the cores, unless the user sized the thread pools", "[process]") {
  // Restores the variables the test changes, whatever it ends with.
  struct SavedEnv {
    std::vector<std::pair<std::string, std::optional<std::string>>> saved;
    SavedEnv() {
      for (const char* name : {"OMP_NUM_THREADS", "MKL_NUM_THREADS"}) {
        const char* v = std::getenv(name);
        saved.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
        ::unsetenv(name);
      }
    }
    ~SavedEnv() {
      for (const auto& [name, v] : saved) v ? ::setenv(name.c_str(), v->c_str(), 1) : ::unsetenv(name.c_str());
    }
  } restore;
  const CommandResult nproc = run_command({"/usr/bin/nproc"});  // the cores this process may use
  REQUIRE(nproc.rc == 0);
  const int cores = std::stoi(nproc.out);
  const auto expect = [](int n) {
    return std::vector<std::string>{"OMP_NUM_THREADS=" + std::to_string(n), "MKL_NUM_THREADS=" + std::to_string(n)};
  };
  CHECK(cpu_thread_env(1) == expect(cores));
  CHECK(cpu_thread_env(2) == expect(std::max(1, cores / 2)));
  CHECK(cpu_thread_env(cores + 1) == expect(1));  // more jobs than cores: one thread each, never 0
  CHECK(cpu_thread_env(0) == expect(cores));      // --jobs below 1 counts as 1
  ::setenv("OMP_NUM_THREADS", "3", 1);
  CHECK(cpu_thread_env(2) == std::vector<std::string>{"MKL_NUM_THREADS=" + std::to_string(std::max(1, cores / 2))});
}
