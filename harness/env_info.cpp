// Host, build and process facts (see env_info.h). Everything degrades to "unknown" rather than
// failing: missing provenance is worth recording, not worth aborting a run over.
#include "harness/env_info.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <sqlite3.h>

#include "ablate/build_info.h"
#include "harness/hash.h"
#include "harness/sys_util.h"

namespace ablate {
namespace {

// Runs `cmd` through the shell, feeding its stdout to `sink`; returns the exit status (-1 when it
// could not start).
template <class Sink>
int run_command(const std::string& cmd, Sink&& sink) {
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 65536> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) sink(std::string_view(buf.data(), n));
  return ::pclose(pipe);
}

// Value of the first "key<sep>value" line of a text file, e.g. /proc/cpuinfo or /etc/os-release.
std::string file_field(const char* file, const std::string& key, char sep) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    size_t p = line.find(sep);
    if (p == std::string::npos) continue;
    std::string v = trim(line.substr(p + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return v;
  }
  return "unknown";
}

}  // namespace

std::string host_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0) return "unknown";
  return buf.data();
}

std::string code_version(const std::filesystem::path& source_dir) {
  const std::string git = "git -C " + shell_quote(source_dir.string()) + " ";
  std::string commit;
  if (run_command(git + "rev-parse HEAD 2>/dev/null", [&](std::string_view s) { commit += s; }) != 0)
    return "unknown";
  commit = trim(commit);
  if (commit.empty()) return "unknown";
  Sha256 diff_hash;
  size_t diff_bytes = 0;
  int rc = run_command(git + "--no-pager diff --no-ext-diff --no-color HEAD 2>/dev/null",
                       [&](std::string_view s) {
                         diff_hash.update(s);
                         diff_bytes += s.size();
                       });
  if (rc != 0) return commit + "-dirty-unknown";
  if (diff_bytes == 0) return commit;
  return commit + "-dirty-" + diff_hash.final_hex().substr(0, 12);
}

std::map<int, double> gpu_memory_gib() {
  std::string out;
  if (run_command("nvidia-smi --query-gpu=index,memory.total --format=csv,noheader,nounits 2>/dev/null",
                  [&](std::string_view chunk) { out += chunk; }) != 0)
    return {};
  std::map<int, double> gib;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    int index = -1;
    double mib = 0;
    if (std::sscanf(line.c_str(), "%d, %lf", &index, &mib) == 2) gib[index] = mib / 1024.0;
  }
  return gib;
}

std::filesystem::path build_source_dir() { return ABLATE_SOURCE_DIR; }

std::map<std::string, std::string> collect_env_info(const std::filesystem::path& source_dir) {
  std::map<std::string, std::string> env;
  env["host"] = host_name();
  env["code_version"] = code_version(source_dir);
  struct utsname u {};
  std::string os = ::uname(&u) == 0 ? fmt::format("{} {} {}", u.sysname, u.release, u.machine)
                                    : std::string("unknown");
  env["os"] = file_field("/etc/os-release", "PRETTY_NAME=", '=') + " (" + os + ")";
  env["cpu"] = file_field("/proc/cpuinfo", "model name", ':') +
               fmt::format(" x{}", ::sysconf(_SC_NPROCESSORS_ONLN));
  env["compiler"] = ABLATE_CXX_COMPILER;
  env["ablate_version"] = ABLATE_VERSION;
  env["build_type"] = ABLATE_BUILD_TYPE;
  env["sqlite"] = sqlite3_libversion();
  env["opencv"] = ABLATE_HAVE_OPENCV ? ABLATE_OPENCV_VERSION : "none";
  return env;
}

}  // namespace ablate

