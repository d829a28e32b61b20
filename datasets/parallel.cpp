// Work-sharing loop with exception propagation (see parallel.h).
#include "datasets/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>
#include <vector>

namespace ablate {

void parallel_for(size_t n, int threads, const std::function<void(size_t thread, size_t item)>& body) {
  std::atomic<size_t> next{0};
  std::vector<std::exception_ptr> failures(static_cast<size_t>(std::max(1, threads)));
  auto work = [&](size_t t) {
    try {
      for (size_t i; (i = next++) < n;) body(t, i);
    } catch (...) {
      failures[t] = std::current_exception();
      next = n;  // stop handing out work
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < failures.size(); ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  for (auto& f : failures)
    if (f) std::rethrow_exception(f);
}

}  // namespace ablate
