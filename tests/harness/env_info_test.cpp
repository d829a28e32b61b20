// Environment facts: host name against the kernel's, code version against git itself in a scratch
// repository (clean commit, dirty suffix = sha256 of `git diff HEAD`, no repository), and the recorded
// keys.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>

#include "harness/env_info.h"
#include "harness/hash.h"
#include "tests/harness/run_fixtures.h"
#include "tests/support/catch.h"

using namespace ablate;
using ablate::test::TempDir;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Runs a shell command in `dir`; true on exit status 0.
bool sh(const std::filesystem::path& dir, const std::string& cmd) {
  return std::system(("cd '" + dir.string() + "' && { " + cmd + "; } >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace

TEST_CASE("env_info: host name is the kernel's", "[env_info]") {
  std::string kernel = slurp("/proc/sys/kernel/hostname");
  while (!kernel.empty() && kernel.back() == '\n') kernel.pop_back();
  CHECK(host_name() == kernel);
}

TEST_CASE("env_info: code version is the git commit plus a digest of uncommitted changes",
          "[env_info]") {
  TempDir tmp("envinfo");
  const auto repo = tmp.path();
  if (!sh(repo, "git init -q . && git -c user.name=t -c user.email=t@t commit -q --allow-empty -m "
                "empty && echo one > f.txt && git add f.txt && git -c user.name=t -c "
                "user.email=t@t commit -q -m one && git rev-parse HEAD > ../head-" +
                    repo.filename().string()))
    ABLATE_SKIP("git is not usable here");
  std::string head = slurp(repo.parent_path() / ("head-" + repo.filename().string()));
  std::filesystem::remove(repo.parent_path() / ("head-" + repo.filename().string()));
  head.pop_back();
  REQUIRE(std::regex_match(head, std::regex("[0-9a-f]{40}")));
  CHECK(code_version(repo) == head);

  std::ofstream(repo / "f.txt") << "two\n";
  REQUIRE(sh(repo, "git diff HEAD > ../diff.txt"));
  const std::string diff = slurp(repo.parent_path() / "diff.txt");
  std::filesystem::remove(repo.parent_path() / "diff.txt");
  REQUIRE_FALSE(diff.empty());
  const std::string dirty = code_version(repo);
  CHECK(dirty == head + "-dirty-" + sha256_hex(diff).substr(0, 12));

  std::ofstream(repo / "f.txt") << "three\n";
  CHECK(code_version(repo) != dirty);  // another change, another digest
  std::ofstream(repo / "f.txt") << "one\n";
  CHECK(code_version(repo) == head);  // reverted: clean again
  std::ofstream(repo / "untracked.txt") << "x\n";
  CHECK(code_version(repo) == head);  // untracked files are not part of `git diff HEAD`

  TempDir plain("envinfo-norepo");
  CHECK(code_version(plain.path()) == "unknown");
}

TEST_CASE("env_info: the recorded environment has every documented key", "[env_info]") {
  std::map<std::string, std::string> env = collect_env_info(build_source_dir());
  for (const char* key : {"host", "code_version", "os", "cpu", "compiler", "ablate_version",
                          "build_type", "sqlite", "opencv"}) {
    INFO(key);
    REQUIRE(env.count(key) == 1);
    CHECK_FALSE(env[key].empty());
  }
  CHECK(env["host"] == host_name());
  const std::string cpuinfo = slurp("/proc/cpuinfo");
  const std::string model = env["cpu"].substr(0, env["cpu"].rfind(" x"));
  CHECK(cpuinfo.find(model) != std::string::npos);
  CHECK(env["cpu"].substr(env["cpu"].rfind(" x") + 2) ==
        std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)));
}
