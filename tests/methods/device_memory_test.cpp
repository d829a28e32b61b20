// Peak memory against the kernel's and the allocator's own accounts: on the CPU the process's peak
// resident set lies between /proc/self/status's VmHWM read before and after (it can only grow), is
// at least the resident set (to within 1 MiB: the kernel updates it lazily), and no allocator peak
// exists; on CUDA the allocator's peak covers a tensor allocated after a reset and
// drops after the next reset once it is freed.
#include "methods/device_memory.h"

#include <fstream>
#include <string>

#include "pch/torch_pch.h"
#include "tests/support/catch.h"

using namespace ablate;

namespace {

// A field of /proc/self/status in bytes: VmHWM (the resident set's high water mark) or VmRSS.
int64_t proc_status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;  // "... kB"
  return -1;
}

}  // namespace

TEST_CASE("on the CPU the peak is the process's peak resident set", "[device_memory]") {
  CHECK_FALSE(allocator_peak_bytes(torch::kCPU).has_value());
  reset_allocator_peak(torch::kCPU);  // nothing to reset, and no error
  // 64 MiB written now are resident, so the peak is at least the resident set that holds them.
  const auto touched = torch::ones({int64_t{16} << 20}, torch::kFloat32);
  const int64_t rss = proc_status_bytes("VmRSS"), before = proc_status_bytes("VmHWM");
  REQUIRE(rss > (int64_t{64} << 20));
  const int64_t peak = process_peak_rss_bytes();
  const double mib = peak_memory_mib(torch::kCPU);
  const int64_t after = proc_status_bytes("VmHWM");
  // The kernel updates the high water mark getrusage reports lazily (a few pages behind VmHWM
  // when measured here), so the bounds allow 1 MiB.
  const int64_t slack = int64_t{1} << 20;
  CHECK(peak >= rss - slack);
  CHECK(peak >= before - slack);
  CHECK(peak <= after + slack);
  CHECK(mib * 1024 * 1024 >= static_cast<double>(peak));
  CHECK(mib * 1024 * 1024 <= static_cast<double>(after + slack));
  CHECK(touched.sum().item<double>() == static_cast<double>(int64_t{16} << 20));
}

TEST_CASE("on CUDA the peak is the allocator's since the last reset", "[device_memory][gpu]") {
  if (!torch::cuda::is_available()) ABLATE_SKIP("no CUDA device");
  const torch::Device cuda(torch::kCUDA, 0);
  const int64_t bytes = int64_t{256} << 20;
  reset_allocator_peak(cuda);
  {
    const auto t = torch::empty({bytes / 4}, torch::TensorOptions().device(cuda).dtype(torch::kFloat32));
    REQUIRE(allocator_peak_bytes(cuda).has_value());
    CHECK(*allocator_peak_bytes(cuda) >= bytes);
    CHECK(peak_memory_mib(cuda) >= 256.0);
  }
  reset_allocator_peak(cuda);  // the tensor is freed: the new peak is what is still allocated
  CHECK(*allocator_peak_bytes(cuda) < bytes);
  CHECK(allocator_peak_bytes(torch::Device(torch::kCUDA)) == allocator_peak_bytes(cuda));  // no index: device 0
}
