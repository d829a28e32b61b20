// Peak memory of the allocator or the process (see device_memory.h).
#include "methods/device_memory.h"

#include <sys/resource.h>

#include "pch/torch_pch.h"

#if ABLATE_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace ablate {
namespace {

#if ABLATE_WITH_CUDA
// A device without an index means the first one, as torch::Device(torch::kCUDA) does elsewhere here.
c10::DeviceIndex cuda_index(torch::Device device) { return device.has_index() ? device.index() : 0; }
#endif

}  // namespace

std::optional<int64_t> allocator_peak_bytes(torch::Device device) {
#if ABLATE_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(cuda_index(device));
    return stats.allocated_bytes[0].peak;  // [0]: the aggregate over small and large pools
  }
#endif
  (void)device;
  return std::nullopt;
}

void reset_allocator_peak(torch::Device device) {
#if ABLATE_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(cuda_index(device));
#endif
  (void)device;
}

int64_t process_peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;  // ru_maxrss is in KiB on Linux
}

double peak_memory_mib(torch::Device device) {
  const std::optional<int64_t> allocator = allocator_peak_bytes(device);
  return static_cast<double>(allocator ? *allocator : process_peak_rss_bytes()) / (1024.0 * 1024.0);
}

}  // namespace ablate
