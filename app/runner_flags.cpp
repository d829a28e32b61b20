// Command-line runner settings to RunnerOptions (app/runner_flags.h).
#include "app/runner_flags.h"

#include <errno.h>  // program_invocation_name
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "harness/check.h"

namespace ablate {
namespace {

// The running executable, which the runner launches as the worker: /proc/self/exe, else argv[0].
std::string self_exe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(program_invocation_name) : p.string();
}

}  // namespace

std::vector<int> parse_gpu_list(const std::string& s) {
  std::vector<int> gpus;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const std::string part = s.substr(i, j - i);
    const auto dash = part.find('-');
    try {
      if (dash != std::string::npos) {
        const int a = std::stoi(part.substr(0, dash)), b = std::stoi(part.substr(dash + 1));
        if (b < a) throw std::invalid_argument("range");
        for (int g = a; g <= b; ++g) gpus.push_back(g);
      } else {
        gpus.push_back(std::stoi(part));
      }
    } catch (const std::exception&) {
      throw ConfigError("<command line>", "--gpus", fmt::format("cannot parse '{}'", part),
                        "a list like 0,1,2 or a range like 0-7");
    }
    i = j + 1;
  }
  return gpus;
}

RunnerOptions runner_options(const RunnerFlags& flags) {
  RunnerOptions ro;
  ro.db = flags.db;
  if (!flags.gpus.empty()) ro.gpus = parse_gpu_list(flags.gpus);
  ro.gpu_mem_gib = flags.gpu_mem_gib;
  ro.jobs = flags.jobs;
  ro.dist_timeout_s = flags.dist_timeout_s;
  ro.ablate_exe = self_exe();
  ro.progress_tty = isatty(STDERR_FILENO);
  return ro;
}

}  // namespace ablate
