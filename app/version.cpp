// Library and build versions (see version.h).
#include "app/version.h"

#include <sqlite3.h>

#include <fmt/format.h>

#include <torch/version.h>

#include "ablate/build_info.h"
#include "harness/env_info.h"
#include "pch/torch_pch.h"

#if ABLATE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/detail/CUDAHooks.h>
#include <cuda_runtime_api.h>
#include <torch/csrc/cuda/nccl.h>
#endif

namespace ablate {

std::vector<std::pair<std::string, std::string>> library_versions() {
  std::vector<std::pair<std::string, std::string>> v;
  v.emplace_back("ablate", ABLATE_VERSION);
  v.emplace_back("git", code_version(build_source_dir()));
  v.emplace_back("libtorch", TORCH_VERSION);
#if ABLATE_WITH_CUDA
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv);
  v.emplace_back("cuda", fmt::format("{}.{} (driver {}.{})", rt / 1000, (rt % 1000) / 10, drv / 1000,
                                     (drv % 1000) / 10));
  const long cudnn = at::detail::getCUDAHooks().versionCuDNN();
  v.emplace_back("cudnn", fmt::format("{}.{}.{}", cudnn / 10000, (cudnn % 10000) / 100, cudnn % 100));
  // LibTorch's NCCL (the one its ProcessGroupNCCL uses), encoded as major*10000+minor*100+patch.
  const auto nccl = torch::cuda::nccl::version();
  v.emplace_back("nccl", fmt::format("{}.{}.{}{}", nccl / 10000, (nccl % 10000) / 100, nccl % 100,
                                     torch::cuda::nccl::version_suffix()));
  if (torch::cuda::is_available())
    v.emplace_back("gpu", at::cuda::getDeviceProperties(0)->name);
#else
  v.emplace_back("cuda", "none (CPU build)");
  v.emplace_back("cudnn", "none (CPU build)");
  v.emplace_back("nccl", "none (CPU build)");
#endif
  v.emplace_back("opencv", ABLATE_HAVE_OPENCV ? ABLATE_OPENCV_VERSION : "none (built without OpenCV)");
  v.emplace_back("sqlite", sqlite3_libversion());
  v.emplace_back("compiler", ABLATE_CXX_COMPILER);
  return v;
}

}  // namespace ablate
