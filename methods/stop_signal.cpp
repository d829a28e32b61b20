// SIGTERM / SIGUSR1 -> a flag the training loop polls (see stop_signal.h).
#include "methods/stop_signal.h"

#include <csignal>

namespace ablate {
namespace {

volatile std::sig_atomic_t g_stop = 0;

void request_stop(int) { g_stop = 1; }

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = request_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

bool stop_requested() { return g_stop != 0; }

}  // namespace ablate
