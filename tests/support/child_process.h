// Test helper for multi-process tests (data-parallel ranks): a forked child running a function
// that reports back through a pipe, and a full write. (A rendezvous port: free_loopback_port() of
// harness/sys_util.h, included here.)
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <thread>

#include <ATen/Parallel.h>

#include "harness/sys_util.h"
#include "tests/support/catch.h"

namespace ablate::test {

inline void write_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w <= 0) return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// A forked process running `body(fd)`, which reports through the pipe `fd`; its return value is
// the exit status. Children leave through _exit (no Catch2, no static destructors of the parent's
// state); the destructor kills and reaps a child that is still running, so none leaks.
class Child {
 public:
  using Clock = std::chrono::steady_clock;
  using milliseconds = std::chrono::milliseconds;

  explicit Child(const std::function<int(int)>& body) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      close(fds[0]);
      int code = 99;
      try {
        at::set_num_threads(1);  // the parent's OpenMP pool does not survive fork
        code = body(fds[1]);
      } catch (const std::exception& e) {
        write_all(fds[1], e.what(), std::strlen(e.what()));
        code = 98;
      }
      _exit(code);
    }
    close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Up to n bytes, waiting at most `timeout` for them (fewer at end of stream or timeout).
  std::string read(size_t n, milliseconds timeout) {
    std::string out;
    const auto deadline = Clock::now() + timeout;
    while (out.size() < n) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      pollfd p{fd_, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) break;
      char buf[4096];
      const ssize_t r = ::read(fd_, buf, std::min(sizeof(buf), n - out.size()));
      if (r <= 0) break;
      out.append(buf, static_cast<size_t>(r));
    }
    return out;
  }
  // Exit status, or -1 when the child was still running after `timeout` (the destructor kills it).
  int wait(milliseconds timeout) {
    REQUIRE(pid_ > 0);  // waitpid(-1) would reap any child, kill(-1) signal every process
    const auto deadline = Clock::now() + timeout;
    int status = 0;
    pid_t got;
    while ((got = waitpid(pid_, &status, WNOHANG)) == 0) {
      if (Clock::now() > deadline) return -1;
      std::this_thread::sleep_for(milliseconds(5));
    }
    REQUIRE(got == pid_);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  void signal(int sig) {
    REQUIRE(pid_ > 0);
    kill(pid_, sig);
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
};

}  // namespace ablate::test
