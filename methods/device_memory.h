// Peak memory, for the training journal's peak_mem_mb (methods/trainer.cpp) and `ablate bench`.
// On a CUDA device it is the caching allocator's peak of allocated bytes, what Python's
// torch.cuda.max_memory_allocated reports: tensors only, and resettable, so a bench can measure one
// phase. On the CPU no allocator keeps a peak; the nearest measure is the process's peak resident
// set (getrusage's ru_maxrss), which counts everything the process touched (libraries, data,
// tensors) and can never be reset. Callers choose which of the two they mean: the trainer falls
// back to the resident set, the bench reports no peak on the CPU.
#pragma once

#include <cstdint>
#include <optional>

#include <torch/types.h>

namespace ablate {

// The caching allocator's peak allocated bytes on `device` since the last reset (or the start);
// nullopt on the CPU and in builds without CUDA.
std::optional<int64_t> allocator_peak_bytes(torch::Device device);

// Starts a new peak for allocator_peak_bytes on `device`; nothing on the CPU.
void reset_allocator_peak(torch::Device device);

// The process's peak resident set in bytes since it started (ru_maxrss).
int64_t process_peak_rss_bytes();

// The training journal's peak_mem_mb, in MiB: the allocator's peak on a CUDA device, else the
// process's peak resident set.
double peak_memory_mib(torch::Device device);

}  // namespace ablate
