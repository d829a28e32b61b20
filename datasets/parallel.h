// A small parallel loop for the decoding paths (packing, pHash, the loader benchmark): threads pull
// item indices from a shared counter, so uneven image sizes balance themselves, and the first
// exception any thread throws is rethrown to the caller after every thread has joined.
#pragma once

#include <cstddef>
#include <functional>

namespace ablate {

// Calls body(thread, item) for every item in [0, n) on max(1, threads) threads (the caller's
// thread is thread 0). `thread` indexes per-thread scratch the caller may keep.
void parallel_for(size_t n, int threads, const std::function<void(size_t thread, size_t item)>& body);

}  // namespace ablate
