// Test scratch folders: TempDir, a fresh folder removed when it goes out of scope, and
// scratch_dir(name), a fresh named folder under one root that the test process removes when it
// exits (for fixtures that outlive a test case, e.g. packed shards shared by several). Forked
// children leave through _exit, so they never remove the parent's folders.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace ablate::test {

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    std::string pattern = (std::filesystem::temp_directory_path() / ("ablate-" + tag + "-XXXXXX")).string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// An empty folder `name` under the process's scratch root (emptied if it existed).
inline std::filesystem::path scratch_dir(const std::string& name) {
  static const TempDir root("test");
  const std::filesystem::path d = root / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace ablate::test
