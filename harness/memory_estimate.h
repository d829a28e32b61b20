// Peak GPU memory of one pre-training run per rank, estimated from the configuration alone, so the
// scheduler can decide whether a run fits a GPU (and how many GPUs `resources.gpus: 0` needs)
// without building the model. The model is the caching allocator's peak of allocated bytes
// (PyTorch's max_memory_allocated): persistent state (fp32 weights, gradients, AdamW moments, the
// bf16 weight copies autocast keeps for the step) plus the activations autograd saves at the end of
// the forward pass, counted per token and per block in memory_estimate.cpp. Checked against the
// Python reference's measured peaks on an H100 (tests/harness/memory_estimate_test.cpp).
#pragma once

#include <cstdint>

#include "harness/config.h"

namespace ablate {

struct MemoryEstimate {
  double state_gib = 0;        // weights, gradients, optimizer moments, bf16 weight copies
  double activations_gib = 0;  // tensors saved for backward at the end of the forward pass
  double workspace_gib = 0;    // cuBLAS / attention workspaces and the input batch
  double total_gib() const { return state_gib + activations_gib + workspace_gib; }
};

// Estimated peak per rank of `config` when its global batch train.batch is split over `ranks`.
MemoryEstimate estimate_peak_memory(const RunConfig& config, int ranks);

// Peak memory per rank the scheduler plans with: resources.mem_gb when set, else the estimate at
// resources.gpus ranks.
double planned_peak_gib(const RunConfig& config);

// Whether a run peaking at `peak_gib` (an estimate's total, or resources.mem_gb) fits a GPU of
// `gpu_gib` GiB, with a margin for allocator fragmentation and the CUDA context, which
// max_memory_allocated does not see.
bool fits_gpu(double peak_gib, double gpu_gib);

// resources.gpus: 0 ("derive from the model"): the fewest ranks, a power of two that divides
// train.batch, whose per-rank estimate fits resources.gpu_mem_gb; ConfigError (resources.gpus)
// when even one sample per rank does not fit.
int derive_gpu_count(const RunConfig& config);

}  // namespace ablate
