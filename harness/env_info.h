// Facts about the machine and the build, recorded with every run so a
// result can be traced to the code and hardware that produced it: host name, code version (git
// commit plus a digest of uncommitted changes), OS, CPU model, compiler. The worker adds its
// library versions (LibTorch, CUDA, ...) to the same map before journaling it.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace ablate {

std::string host_name();

// "<git commit>" of the repository at source_dir, with "-dirty-<first 12 hex of sha256(git diff
// HEAD)>" appended when tracked files have uncommitted changes; "unknown" when git or the
// repository is unavailable.
std::string code_version(const std::filesystem::path& source_dir);

// host, code_version, os, cpu, compiler, ablate_version, build_type, sqlite, opencv.
std::map<std::string, std::string> collect_env_info(const std::filesystem::path& source_dir);

// Memory in GiB of each GPU `nvidia-smi` lists, by device index; empty when nvidia-smi is missing
// or lists none. Used by the runner to check that a run's memory estimate fits the GPUs it gets.
std::map<int, double> gpu_memory_gib();

// The source tree this binary was configured from (ABLATE_SOURCE_DIR).
std::filesystem::path build_source_dir();

}  // namespace ablate
