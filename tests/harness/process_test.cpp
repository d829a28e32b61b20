// Process plumbing: identity (live, pid reused, exited, zombie), the command line of a process,
// wait-status text against real children, a logged child that dies with its parent, and commands
// with captured output.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

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
